"""Tiled inference: frames larger than a TensorRT engine's profile, or than a memory budget, run in windows.

The shipped generators are fully convolutional with BatchNorm folded, so an output pixel depends only on the input
within its receptive field. Windows that overlap by that radius, each keeping only its core, stitch into the
whole-frame result: bit for bit on ONNX Runtime FP32 (tests/test_tiles.py). Windows start on the network's
stride, so every window sees the same sampling grid as the whole frame. A network whose output depends on the
whole frame (InstanceNorm, global pooling) is refused rather than tiled with seams.
"""
from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np

PROBE_SIZES = (128, 256, 512, 1024)  # probe frame sides tried in turn until one holds the receptive field


class TileError(ValueError):
    """The network cannot be tiled exactly, or the tile is too small for its receptive field."""


@functools.lru_cache(maxsize=16)
def receptive_radius(model: Path, stride: int) -> int:
    """How far, in input pixels and rounded up to the stride, a change at one pixel reaches in the output of the
    FP32 ONNX network ``model``: a stride-aligned block in the middle of a random probe is inverted and the
    outputs compared (the radius is the architecture's, whatever precision then runs it)."""
    import onnxruntime as ort

    from .backends.onnxrt import session_options

    session = ort.InferenceSession(str(model), session_options(threads=1), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    for size in PROBE_SIZES:
        x = np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32)
        c = size // 2 // stride * stride
        changed = x.copy()
        changed[:, :, c:c + stride, c:c + stride] = 1.0 - changed[:, :, c:c + stride, c:c + stride]
        reached = np.abs(session.run(None, {name: changed})[0] - session.run(None, {name: x})[0]).max(axis=(0, 1)) > 0
        rows, cols = np.nonzero(reached)
        if rows.size == 0:
            return 0
        reach = max(c - rows.min(), rows.max() - (c + stride - 1), c - cols.min(), cols.max() - (c + stride - 1), 0)
        if reach < c - stride:  # it stopped short of the probe's border: the whole field was seen
            return -(-int(reach) // stride) * stride
    raise TileError(f"{model.name}: a change at one pixel reaches more than {PROBE_SIZES[-1] // 2} px (the whole "
                    "frame: InstanceNorm or global pooling?), so it cannot be tiled without seams; run frames that "
                    "fit (scale < 1, or rebuild the engine with: stylecam build BUNDLE --shapes HxW,...)")


def windows(length: int, limit: int, context: int, stride: int) -> list[tuple[int, int, int, int]]:
    """Windows along one axis of ``length`` (a stride multiple), each at most ``limit``: (window start, window end,
    core start, core end), the cores covering the axis once, each window reaching ``context`` beyond its core
    where the axis goes on. Cores are made equal so that most windows share one shape."""
    limit = limit // stride * stride
    if length <= limit:
        return [(0, length, 0, length)]
    core = limit - 2 * context
    if core < stride:
        raise TileError(f"a tile of {limit} px leaves no core: this network needs {context} px of context on each "
                        f"side; use tiles of at least {2 * context + stride} px ({2 * context + 256} or more wastes "
                        "less)")
    n = math.ceil(length / core)
    core = -(-math.ceil(length / n) // stride) * stride
    out = []
    for i in range(n):
        a, b = i * core, min((i + 1) * core, length)
        if a < b:
            out.append((max(a - context, 0), min(b + context, length), a, b))
    return out


def check_tile(tile: int | None) -> int | None:
    """A tile side in pixels (None: no limit of the caller's own), or TileError saying what is wrong."""
    if tile is None:
        return None
    if isinstance(tile, bool) or not isinstance(tile, (int, np.integer)) or tile < 1:
        raise TileError(f"tile must be a whole number of pixels (e.g. 1024) or None, got {tile!r}")
    return int(tile)


# ONNX Runtime's peak working memory per network-input pixel, as a multiple of the first layer's FP32 activation
# (its width × 4 bytes). Measured on a 12 MP photo: candy FP32 3.8, candy_nano FP32 3.6, candy INT8-CPU 1.5;
# these leave half as much again to spare.
WORKING_MEMORY = {"int8-cpu": 2.5}
WORKING_MEMORY_OTHERS = 6.0


def working_memory(manifest: dict, variant: str, h: int, w: int) -> int | None:
    """Estimated bytes ONNX Runtime on the CPU takes to run an h×w network input; None where the bundle's
    manifest does not give its layer widths (a model from elsewhere)."""
    widths = manifest.get("architecture", {}).get("config", {}).get("widths")
    if not widths:
        return None
    return int(h * w * widths[0] * 4 * WORKING_MEMORY.get(variant, WORKING_MEMORY_OTHERS))


CGROUP_MEMORY = {"": ("", "memory.max", "memory.current"),  # v2; v1 below
                 "memory": ("memory", "memory.limit_in_bytes", "memory.usage_in_bytes")}


def available_memory() -> int | None:
    """Bytes this process may still take: the system's MemAvailable, or what its cgroup's memory limit leaves
    (a container, a systemd unit) where that is less; None where neither can be read (not Linux)."""
    found = []
    try:
        with open("/proc/meminfo") as f:
            found += [int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:")]
        with open("/proc/self/cgroup") as f:
            groups = [line.rstrip("\n").split(":", 2) for line in f]
    except OSError:
        groups = []
    for _, controllers, path in groups:
        for controller in set(controllers.split(",")) & CGROUP_MEMORY.keys():
            mount, limit_file, usage_file = CGROUP_MEMORY[controller]
            folder = Path("/sys/fs/cgroup", mount, path.lstrip("/"))
            try:
                limit = (folder / limit_file).read_text().strip()
                if limit != "max" and int(limit) < 1 << 60:  # v1 says "no limit" with a huge number
                    found.append(int(limit) - int((folder / usage_file).read_text()))
            except (OSError, ValueError):
                continue
    return min(found) if found else None


def memory_tile(need: int, h: int, w: int, available: int) -> int | None:
    """The side of square tiles whose working memory fits in half of ``available`` bytes, for an h×w input that
    needs ``need`` bytes whole; None where the whole input fits."""
    if need <= available // 2:
        return None
    return max(1, int(math.sqrt(available / 2 / (need / (h * w)))))


def needs_tiles(shape: tuple[int, ...], limit: tuple[int, int] | None) -> bool:
    """Whether a 1×3×H×W network input exceeds ``limit`` (H, W; None: no limit)."""
    return limit is not None and (shape[2] > limit[0] or shape[3] > limit[1])


def infer_tiled(infer, x: np.ndarray, limit: tuple[int, int], context: int, stride: int) -> np.ndarray:
    """``infer`` (1×3×h×w → 1×3×h×w) over the 1×3×H×W tensor ``x`` in windows of at most ``limit`` (H, W),
    stitched from their cores: the same result as ``infer(x)`` for a network whose receptive radius is ``context``."""
    out = np.empty(x.shape, np.float32)
    for wy0, wy1, cy0, cy1 in windows(x.shape[2], limit[0], context, stride):
        for wx0, wx1, cx0, cx1 in windows(x.shape[3], limit[1], context, stride):
            y = infer(np.ascontiguousarray(x[:, :, wy0:wy1, wx0:wx1]))
            out[:, :, cy0:cy1, cx0:cx1] = y[:, :, cy0 - wy0:cy1 - wy0, cx0 - wx0:cx1 - wx0]
    return out
