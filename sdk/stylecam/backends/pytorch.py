"""PyTorch backend: the reference path (CUDA when present), built from weights.safetensors.

Needs the ``train`` extra; torch is imported only when this backend is used.
"""
from __future__ import annotations

import importlib.util

import numpy as np

from ..bundle import Bundle


def unavailable_reason() -> str | None:
    for mod in ("torch", "safetensors"):
        if importlib.util.find_spec(mod) is None:
            return f"{mod} is not installed; pip install 'stylecam[train]'"
    return None


class TorchBackend:
    name = "torch"
    preferred_variant = "fp32"  # the reference path

    def __init__(self, threads: int | None = None):
        self.threads = threads

    def load(self, bundle: Bundle, variant: str = "fp32", device: str = "auto") -> None:
        import torch

        from stylecam.train.models import load_generator

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if variant not in ("fp32", "fp16"):
            raise ValueError(f"the torch backend runs fp32 or fp16, not {variant}")
        if self.threads:
            torch.set_num_threads(self.threads)
        self.device = torch.device(device)
        self.dtype = torch.float16 if variant == "fp16" else torch.float32
        self.model = load_generator(bundle).to(self.device, self.dtype).eval()
        self.variant = variant

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(tensor)).to(self.device, self.dtype)
            return self.model(x).float().cpu().numpy()

    def close(self) -> None:
        import torch

        self.__dict__.pop("model", None)
        if getattr(self, "device", None) is not None and self.device.type == "cuda":
            torch.cuda.empty_cache()  # hand the weights' memory back, not only to torch's caching allocator

    def info(self) -> dict:
        import torch

        return {"backend": self.name, "version": torch.__version__, "variant": self.variant,
                "device": str(self.device)}


def create(**options) -> TorchBackend:
    return TorchBackend(**options)
