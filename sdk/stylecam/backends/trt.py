"""TensorRT backend (Jetson and datacenter GPUs via ``tensorrt``, desktop RTX via ``tensorrt_rtx``).

The engine runner is not in this release yet: this module reports what is installed so that
``stylecam.backends.available()`` can say why TensorRT is not used, and ``auto`` falls back to ONNX Runtime.
"""
from __future__ import annotations

import importlib.util


def unavailable_reason() -> str | None:
    if not any(importlib.util.find_spec(m) for m in ("tensorrt", "tensorrt_rtx")):
        return ("neither tensorrt nor tensorrt_rtx is installed (Jetson: it comes with JetPack; "
                "desktop: pip install 'stylecam[tensorrt]')")
    if importlib.util.find_spec("pycuda") is None:
        return "pycuda is not installed (pip install pycuda on a machine with a CUDA driver)"
    return "the TensorRT engine runner is not implemented in this release; use backend='onnxruntime'"


def create(**options):
    raise RuntimeError(unavailable_reason())
