"""Latency harness: warm-up by time, then timed end-to-end calls (BGR8 in → BGR8 out) with per-stage times.

Every result carries the device block, so a number never travels without the machine that produced it.
Peers (any ONNX style network) run through the same harness with their own input contract, and all cases of a
run take turns at each frame size, so comparisons are ratios from one run that a drifting machine does not skew.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from stylecam.live import threads_per_worker
from stylecam.peer import Peer
from stylecam.stylizer import Stylizer
from stylecam.timing import summarize

CV_WARNING = 0.05
STOLEN_WARNING = 0.02  # above this share of CPU time taken by the hypervisor, the numbers are the VM's, not the CPU's


def rss_mb() -> float | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return None


def grown_mb(before: float | None) -> float | None:
    """How far the process's RSS grew since ``before`` (None where /proc is missing)."""
    after = rss_mb()
    return None if before is None or after is None else max(after - before, 0.0)


def cpu_ticks() -> tuple[int, int] | None:
    """(stolen, total) CPU ticks of all cores since boot (Linux /proc/stat); None elsewhere. Stolen ticks are
    time the hypervisor gave this virtual machine's cores to other guests: a busy cloud host runs the same VM 2-3x
    slower and far noisier, with the same CPU name."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:9]]  # user nice system idle iowait irq softirq steal
    except (OSError, ValueError):
        return None
    return (ticks[7], sum(ticks)) if len(ticks) == 8 else None


def stolen_share(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """The share of CPU time stolen between two ``cpu_ticks()`` readings (None where either is missing)."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


class Workers:
    """``n`` copies of a stylizer (``Stylizer.copy``) stylizing ``n`` frames at once, as ``stylecam run --workers n``
    does. The harness divides each call's time by ``frames_per_call``: its "end to end" is the wall time per frame
    at that throughput, not one frame's latency (each frame takes longer, as the copies share the machine)."""

    def __init__(self, stylizer: Stylizer, n: int):
        self.copies = [stylizer, *(stylizer.copy() for _ in range(n - 1))]
        self.frames_per_call, self.timer = n, stylizer.timer
        self._pool = ThreadPoolExecutor(n, thread_name_prefix="stylecam-bench-worker")

    def stylize(self, frame: np.ndarray) -> list[np.ndarray]:
        return list(self._pool.map(lambda copy: copy.stylize(frame), self.copies))


def time_models(models: list, size: tuple[int, int], warmup_s: float = 1.0, iters: int = 30, min_s: float = 0.0,
                block: int = 5) -> list[dict]:
    """Time several models side by side on one fixed random frame: each warms up for ``warmup_s``, then they take
    turns, ``block`` calls each, until every one has at least ``iters`` calls (and ``min_s`` seconds have passed).
    Taking turns spreads a machine's drift (a busy neighbour, a throttling clock) over all of them alike, so their
    ratios hold even where the absolute numbers move from minute to minute. ``stolen`` is the share of CPU time the
    hypervisor took meanwhile (``cpu_ticks``), the same for every model of the turn."""
    frame = np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8)
    warmup_mb = []  # what each model's first calls at this size allocated (its arena for this frame size)
    for model in models:
        t_end, before = time.perf_counter() + warmup_s, rss_mb()
        while True:  # at least one call: first-call allocations stay out of the numbers
            model.stylize(frame)
            if time.perf_counter() >= t_end:
                break
        warmup_mb.append(grown_mb(before))
        model.timer.reset()
    e2e, t0, ticks = [[] for _ in models], time.perf_counter(), cpu_ticks()
    while len(e2e[0]) < iters or time.perf_counter() - t0 < min_s:
        for model, samples in zip(models, e2e):
            for _ in range(min(block, max(iters - len(samples), 1))):
                t = time.perf_counter()
                model.stylize(frame)
                samples.append((time.perf_counter() - t) * 1e3 / getattr(model, "frames_per_call", 1))
    rows, stolen = [], stolen_share(ticks, cpu_ticks())
    for model, samples, grown in zip(models, e2e, warmup_mb):
        stats = summarize(samples)
        rows.append({"end_to_end_ms": stats, "fps": 1e3 / stats["median"],
                     "stages_ms": {k: v for k, v in model.timer.stats().items()},
                     "rss_mb": rss_mb(), "warmup_mb": grown, "unstable": stats["cv"] > CV_WARNING, "stolen": stolen})
    return rows


def run(cases: list[tuple[dict, object]], sizes, **timing) -> list[dict]:
    """One result per case and size; at each size the cases are timed side by side (``time_models``).
    ``rss_mb`` is the whole process, which holds every model of the run; ``model_mb`` is what this model added to it:
    its load, then its first calls at this size and the sizes before (an estimate: a model may reuse pages another
    one freed, so benchmark one model alone for its exact footprint)."""
    rows, held = [], [common.get("load_mb") for common, _ in cases]
    for size in sizes:
        timed = time_models([model for _, model in cases], size, **timing)
        for i, t in enumerate(timed):
            grown = t.pop("warmup_mb")
            held[i] = None if held[i] is None or grown is None else held[i] + grown
            t["model_mb"] = held[i]
        rows += [{**common, "size": list(size), **t} for (common, _), t in zip(cases, timed)]
    return rows


def load_style(style: str, backend: str, precision: str, threads: int | None = None,
               smoothing: float = 0.0, scale: float = 1.0, tile: int | None = None,
               workers: int = 1) -> tuple[dict, Stylizer | Workers]:
    """A bundled style (or bundle folder) on one backend and precision, optionally with runtime smoothing (its
    cost is the ``smooth`` stage), at another network scale, in tiles or as ``workers`` copies (``Workers``;
    ``threads`` is then each one's, by default its share of the cores), and what its results carry besides the
    timings."""
    if workers > 1 and smoothing:
        raise ValueError("workers stylize frames side by side and cannot smooth them: time smoothing with one")
    t0, before = time.perf_counter(), rss_mb()
    stylizer = Stylizer(style, backend=backend, variant=precision, threads=threads or threads_per_worker(workers),
                        smoothing=smoothing, scale=scale, tile=tile)
    model = Workers(stylizer, workers) if workers > 1 else stylizer
    load_s, load_mb = time.perf_counter() - t0, grown_mb(before)
    info = stylizer.info()
    arch = stylizer.bundle.manifest.get("architecture", {})
    label = (stylizer.style + (f" +smooth {smoothing:g}" if smoothing else "")
             + (f" @{scale:g}x" if scale != 1 else "") + (f" tile {tile}" if tile else "")
             + (f" ×{workers} workers" if workers > 1 else ""))
    metrics = stylizer.bundle.manifest.get("metrics", {})
    changed = smoothing or scale != 1  # other frames than the metrics were measured on (tiles give the same ones)
    quality = {} if changed else {k: metrics[k] for k in ("style_distance", "content_loss", "style_reference")
                                  if k in metrics}
    common = {"model": label, "smoothing": smoothing, "scale": scale, "tile": tile, "workers": workers,
              "arch": arch.get("name"),
              "params": arch.get("params"),
              "macs_480x640": arch.get("macs", {}).get("480x640"),
              "precision": info["variant"],  # what "auto" chose
              "backend": info, "load_s": round(load_s, 3), "load_mb": load_mb, "peer": False, "quality": quality}
    return common, model


def load_peer(spec: str, threads: int | None = None, device: str = "auto") -> tuple[dict, Peer]:
    """``path.onnx:CONTRACT``, and what its results carry besides the timings. ``device``: ONNX Runtime's
    (``backends.onnxrt.providers``); "tensorrt" runs it in FP16 on ONNX Runtime's TensorRT provider."""
    t0, before = time.perf_counter(), rss_mb()
    peer = Peer.from_spec(spec, threads, device)
    load_s, load_mb = time.perf_counter() - t0, grown_mb(before)
    # the input's type, or the TensorRT provider's FP16: all the harness can tell
    precision = "fp16" if device == "tensorrt" else {np.float16: "fp16", np.uint8: "uint8 input"}.get(peer.dtype,
                                                                                                       "fp32")
    common = {"model": peer.style, "arch": "peer", "params": None, "macs_480x640": None, "precision": precision,
              "backend": peer.info(), "load_s": round(load_s, 3), "load_mb": load_mb, "peer": True}
    return common, peer


def bench_style(style: str, backend: str, precision: str, sizes, threads: int | None = None,
                smoothing: float = 0.0, scale: float = 1.0, **timing) -> list[dict]:
    """One result per size for one style alone."""
    return run([load_style(style, backend, precision, threads, smoothing, scale)], sizes, **timing)


def bench_peer(spec: str, sizes, threads: int | None = None, **timing) -> list[dict]:
    """One result per size for one peer alone."""
    return run([load_peer(spec, threads)], sizes, **timing)
