"""Latency harness: warm-up by time, then timed end-to-end calls (BGR8 in → BGR8 out) with per-stage times.

Every result carries the device block, so a number never travels without the machine that produced it.
Peers (any ONNX style network) run through the same harness with their own input contract, so comparisons
are ratios from one run.
"""
from __future__ import annotations

import os
import time

import numpy as np

from stylecam.peer import Peer
from stylecam.stylizer import Stylizer
from stylecam.timing import summarize

CV_WARNING = 0.05


def rss_mb() -> float | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return None


def time_model(model, size: tuple[int, int], warmup_s: float = 1.0, iters: int = 30, min_s: float = 0.0) -> dict:
    """Warm up for ``warmup_s``, then at least ``iters`` calls (and ``min_s`` seconds) on a fixed random frame."""
    frame = np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8)
    t_end = time.perf_counter() + warmup_s
    while True:  # at least one call: first-call allocations stay out of the numbers
        model.stylize(frame)
        if time.perf_counter() >= t_end:
            break
    model.timer.samples.clear()
    e2e, t0 = [], time.perf_counter()
    while len(e2e) < iters or time.perf_counter() - t0 < min_s:
        t = time.perf_counter()
        model.stylize(frame)
        e2e.append((time.perf_counter() - t) * 1e3)
    stats = summarize(e2e)
    return {"end_to_end_ms": stats, "fps": 1e3 / stats["median"],
            "stages_ms": {k: v for k, v in model.timer.stats().items()},
            "rss_mb": rss_mb(), "unstable": stats["cv"] > CV_WARNING}


def bench_style(style: str, backend: str, precision: str, sizes, threads: int | None = None,
                smoothing: float = 0.0, **timing) -> list[dict]:
    """One result per size for a bundled style (or bundle folder) on one backend and precision, optionally
    with runtime smoothing (its cost is the ``smooth`` stage)."""
    t0 = time.perf_counter()
    stylizer = Stylizer(style, backend=backend, variant=precision, threads=threads, smoothing=smoothing)
    load_s = time.perf_counter() - t0
    arch = stylizer.bundle.manifest.get("architecture", {})
    label = stylizer.style + (f" +smooth {smoothing:g}" if smoothing else "")
    metrics = stylizer.bundle.manifest.get("metrics", {})
    quality = {} if smoothing else {k: metrics[k] for k in ("style_distance", "content_loss", "style_reference")
                                    if k in metrics}  # smoothing changes the frames: those metrics do not apply
    common = {"model": label, "smoothing": smoothing, "arch": arch.get("name"), "params": arch.get("params"),
              "macs_480x640": arch.get("macs", {}).get("480x640"), "precision": precision,
              "backend": stylizer.info(), "load_s": round(load_s, 3), "peer": False, "quality": quality}
    return [{**common, "size": list(size), **time_model(stylizer, size, **timing)} for size in sizes]


def bench_peer(spec: str, sizes, threads: int | None = None, **timing) -> list[dict]:
    """``path.onnx:CONTRACT`` → one result per size."""
    t0 = time.perf_counter()
    peer = Peer.from_spec(spec, threads)
    load_s = time.perf_counter() - t0
    common = {"model": peer.style, "arch": "peer", "params": None, "macs_480x640": None, "precision": "fp32",
              "backend": peer.info(), "load_s": round(load_s, 3), "peer": True}
    return [{**common, "size": list(size), **time_model(peer, size, **timing)} for size in sizes]
