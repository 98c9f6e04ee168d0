"""What a user waits for once per device: building a TensorRT engine, its size, and (on a GPU) loading it.

Builds are forced, so the numbers are fresh; the engines land in the normal cache and are used afterwards.
TensorRT-RTX builds ahead of time for a named compute capability on a machine without a GPU, so build time and
size are measured everywhere. ``load_s`` is what a process waits before its first frame: the backend's start
(deserialization, the execution context — where TensorRT-RTX compiles kernels unless its runtime cache has them —
and buffers) and the first inference at the profile's optimal shape. It needs the GPU the engine was built for:
without one, ``load_s`` is None and ``load_note`` says why.
"""
from __future__ import annotations

import json
import time

from stylecam.bundle import Bundle


def _load_seconds(bundle: Bundle, precision: str, shapes, sm: str | None) -> tuple[float | None, str | None]:
    """Seconds from nothing to the first frame out of the TensorRT backend, or (None, why) where this machine cannot
    run the engine."""
    import numpy as np

    from stylecam.backends.trt import TensorRTBackend
    from stylecam.export.engine import local_gpu

    if local_gpu() is None:
        return None, "no GPU here: engines load only on the GPU they were built for"
    if sm is not None:
        return None, f"built ahead of time for {sm}; the start is timed for this GPU's own engine (no --sm)"
    backend = TensorRTBackend(shapes=shapes)
    t0 = time.perf_counter()
    try:
        backend.load(bundle, precision)
        backend.infer(np.zeros(backend.profile.opt, np.float32))
    except Exception as e:  # noqa: BLE001 - a row that says why, not a failed benchmark
        return None, f"TensorRT could not run it on this GPU: {e}"
    finally:
        seconds = time.perf_counter() - t0
        backend.close()
    return round(seconds, 4), None


def bench_engine(bundle: Bundle, precision: str, shapes, sm: str | None = None) -> dict:
    from stylecam.export.engine import build_engine, tensorrt

    tensorrt()  # a clear error first where there is none
    path = build_engine(bundle, precision, shapes, sm=sm, force=True)
    meta = json.loads(path.with_suffix(".json").read_text())
    load_s, note = _load_seconds(bundle, precision, shapes, sm)
    return {"kind": "engine", "model": bundle.name, "precision": precision, "target": meta["device"]["target"],
            "tensorrt": meta["tensorrt"], "profile": meta["profile"], "build_s": meta["build_seconds"],
            "engine_mb": round(meta["bytes"] / 1e6, 2), "load_s": load_s, "load_note": note}
