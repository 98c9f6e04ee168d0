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

    def close(self) -> None: ...


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


def create(name: str, **options) -> Backend:
    """An instance of the backend ``name`` (``open_backend`` resolves ``auto``), or why it cannot run here."""
    mod = _module(name)
    why = mod.unavailable_reason()
    if why:
        raise BackendUnavailable(f"backend '{name}' cannot run here: {why}")
    return mod.create(**options)


def open_backend(name: str, bundle: Bundle, variant: str = "auto", device: str = "auto", **options) -> Backend:
    """A backend with ``bundle`` loaded. ``auto`` tries them fastest first, and a TensorRT that fails to load (no
    engine and a failed build, an engine it cannot deserialize, a CUDA error, a GPU it does not support) costs one
    log line, not the Stylizer: ONNX Runtime runs instead."""
    candidates = [c for c in AUTO_ORDER if _module(c).unavailable_reason() is None] if name == "auto" else [name]
    if not candidates:
        raise BackendUnavailable(f"no backend can run here: {available()}")
    if name == "auto" and "tensorrt" not in candidates:
        _warn_if_a_gpu_idles(_module("tensorrt").unavailable_reason())
    for i, candidate in enumerate(candidates):
        backend = create(candidate, **options)
        try:
            backend.load(bundle, choose_variant(backend, bundle, variant), device)
            return backend
        except Exception as e:  # noqa: BLE001 - auto moves on; a backend asked for by name says why it failed
            close(backend)
            if name != "auto" or i == len(candidates) - 1:
                raise
            _warn_once(f"the {candidate} backend could not load {bundle.name} ({type(e).__name__}: {e}); running on "
                       f"{candidates[i + 1]} instead")
    raise AssertionError("unreachable")


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        log.warning("%s", message)


def close(backend) -> None:
    """Free what a backend holds (GPU memory, a session); a failure to free is logged, never raised."""
    try:
        getattr(backend, "close", lambda: None)()
    except Exception as e:  # noqa: BLE001 - closing must not take the caller down
        log.warning("closing the %s backend failed: %s", getattr(backend, "name", "?"), e)
