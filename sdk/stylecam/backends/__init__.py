"""Inference backends behind one small protocol.

A backend is created by name, then ``load(bundle, variant, device)`` once and ``infer(tensor)`` per frame:
the tensor is the network contract (N×3×H×W RGB float in [0, 1], H and W multiples of the stride) and the
result has the same shape. Heavy imports happen inside each module, so ``import stylecam`` stays light.
"""
from __future__ import annotations

import importlib
import logging
from typing import Protocol

import numpy as np

from ..bundle import Bundle

# name → module; "auto" tries them in this order (fastest first).
_MODULES = {"tensorrt": "trt", "torch": "pytorch", "onnxruntime": "onnxrt"}
AUTO_ORDER = ("tensorrt", "onnxruntime")
log = logging.getLogger("stylecam")


class BackendUnavailable(RuntimeError):
    """The backend cannot run here; the message says why and what to install."""


class Backend(Protocol):
    name: str
    preferred_variant: str  # what variant="auto" runs where the bundle has it

    def load(self, bundle: Bundle, variant: str = "fp32", device: str = "auto") -> None: ...

    def infer(self, tensor: np.ndarray) -> np.ndarray: ...

    def info(self) -> dict: ...


def choose_variant(backend: Backend, bundle: Bundle, variant: str = "auto") -> str:
    """``auto``: the backend's preferred variant where the bundle has it (only variants that passed their accuracy
    gate are listed), else FP32; any other name is kept as asked."""
    if variant != "auto":
        return variant
    return backend.preferred_variant if backend.preferred_variant in bundle.variants else "fp32"


def _module(name: str):
    if name not in _MODULES:
        raise ValueError(f"unknown backend '{name}'; choose one of {['auto', *_MODULES]}")
    return importlib.import_module(f".{_MODULES[name]}", __name__)


def available() -> dict[str, dict]:
    """Every backend with ``ok`` and, for those that cannot run here, ``why``."""
    out = {}
    for name in _MODULES:
        why = _module(name).unavailable_reason()
        out[name] = {"ok": why is None, **({"why": why} if why else {})}
    return out


_warned: set[str] = set()  # once per reason: a live style switch creates a backend each time


def _warn_if_a_gpu_idles(why: str) -> None:
    """A GPU that ``auto`` cannot use is worth a line: otherwise the frames are just slow, with no reason given."""
    from stylecam.export.engine import local_gpu

    gpu = None if why in _warned else local_gpu()
    if gpu:
        _warned.add(why)
        log.warning("%s found, but the tensorrt backend cannot run: %s; running on the CPU instead", gpu["name"], why)


def create(name: str = "auto", **options) -> Backend:
    """A backend instance; ``auto`` picks the first that can run here."""
    if name == "auto":
        for candidate in AUTO_ORDER:
            why = _module(candidate).unavailable_reason()
            if why is None:
                return _module(candidate).create(**options)
            if candidate == "tensorrt":
                _warn_if_a_gpu_idles(why)
        raise BackendUnavailable(f"no backend can run here: {available()}")
    mod = _module(name)
    why = mod.unavailable_reason()
    if why:
        raise BackendUnavailable(f"backend '{name}' cannot run here: {why}")
    return mod.create(**options)
