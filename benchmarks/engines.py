"""What a user waits for once per device: building a TensorRT engine, its size, and (on a GPU) loading it.

Builds are forced, so the numbers are fresh; the engines land in the normal cache and are used afterwards.
TensorRT-RTX builds ahead of time for a named compute capability on a machine without a GPU, so build time and
size are measured everywhere. Loading deserializes the engine, which needs the GPU it was built for: without one,
``load_s`` is None and ``load_note`` says why.
"""
from __future__ import annotations

import json
import time

from stylecam.bundle import Bundle


def _load_seconds(trt, engine: bytes) -> tuple[float | None, str | None]:
    """Deserialization time, or (None, why) where this machine cannot load the engine."""
    from stylecam.export.engine import local_gpu

    if local_gpu() is None:
        return None, "no GPU here: engines load only on the GPU they were built for"
    runtime = trt.Runtime(trt.Logger(trt.Logger.ERROR))
    t0 = time.perf_counter()
    loaded = runtime.deserialize_cuda_engine(engine)
    seconds = time.perf_counter() - t0
    return (round(seconds, 4), None) if loaded is not None else (None, "TensorRT could not load it on this GPU")


def bench_engine(bundle: Bundle, precision: str, shapes, sm: str | None = None) -> dict:
    from stylecam.export.engine import build_engine, tensorrt

    trt, _ = tensorrt()
    path = build_engine(bundle, precision, shapes, sm=sm, force=True)
    meta = json.loads(path.with_suffix(".json").read_text())
    load_s, note = _load_seconds(trt, path.read_bytes())
    return {"kind": "engine", "model": bundle.name, "precision": precision, "target": meta["device"]["target"],
            "tensorrt": meta["tensorrt"], "profile": meta["profile"], "build_s": meta["build_seconds"],
            "engine_mb": round(meta["bytes"] / 1e6, 2), "load_s": load_s, "load_note": note}
