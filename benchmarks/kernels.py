"""Pre/post-processing throughput at one frame size (1080p by default).

The CPU path (frames.py: NumPy/OpenCV) is timed everywhere. Where cpp_ext's kernels run (``ops.backend()`` is
"cuda", with torch for device buffers and CUDA events), each kernel's effective bandwidth (bytes it must read and
write / time) is set against a device-to-device copy measured in the same run: the ceiling for a one-pass kernel.
Pre- and post-processing are also timed at network scale 0.5 (``Stylizer(scale=0.5)``, ``--fit-fps``): the frame
shrunk into the tensor, and the output resized back to the frame. Each timed call gets the next of several
buffer sets, together over twice the GPU's L2 (60 MB on an H200 holds a whole 1080p frame and its tensor), so
neither the kernels nor the copy they are set against run from cache.
"""
from __future__ import annotations

import time

import numpy as np

from stylecam import frames, ops
from stylecam.timing import summarize

STRIDE, MARGIN = 4, 16  # the shipped bundles' contract
SCALED = ("bgr8_to_tensor", "tensor_to_bgr8")  # the ops also timed at network scale 0.5


def geometry(h: int, w: int, scale: float = 1.0) -> ops.Geometry:
    return ops.geometry(h, w, STRIDE, MARGIN, frames.scaled_size(h, w, scale))


def bytes_moved(op: str, h: int, w: int, itemsize: int, scale: float = 1.0) -> int:
    """What a kernel must move: its reads plus its writes (at a scale, the tensor is the smaller one)."""
    g = geometry(h, w, scale)
    tensor = 3 * g.out_h * g.out_w * itemsize
    return {"bgr8_to_tensor": 3 * h * w + tensor, "nv12_to_tensor": h * w * 3 // 2 + tensor,
            "tensor_to_bgr8": 3 * g.content_h * g.content_w * itemsize + 2 * 3 * h * w}[op]


def _row(op: str, path: str, dtype: str, size, ms: list[float], nbytes: int, copy_gb_s: float | None,
         scale: float = 1.0) -> dict:
    stats = summarize(ms)
    gb_s = nbytes / stats["median"] / 1e6
    return {"kind": "kernel", "op": op, "path": path, "dtype": dtype, "size": list(size), "scale": scale, "ms": stats,
            "gb_s": round(gb_s, 2), "copy_gb_s": copy_gb_s and round(copy_gb_s, 2),
            "of_copy": copy_gb_s and round(gb_s / copy_gb_s, 3)}


def _time_cpu(fn, iters: int) -> list[float]:
    fn()
    out = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1e3)
    return out


def cpu_rows(size=(1080, 1920), iters: int = 20) -> list[dict]:
    h, w = size
    rng = np.random.default_rng(0)
    bgr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    y, uv = rng.integers(0, 256, (h, w), dtype=np.uint8), rng.integers(0, 256, (h // 2, w // 2, 2), dtype=np.uint8)
    out = frames.to_tensor(bgr, STRIDE, MARGIN)
    cases = {"bgr8_to_tensor": lambda: frames.to_tensor(bgr, STRIDE, MARGIN),
             "nv12_to_tensor": lambda: frames.to_tensor(frames.nv12_to_bgr(y, uv), STRIDE, MARGIN),
             "tensor_to_bgr8": lambda: frames.from_tensor(out, bgr, 0.5, MARGIN)}
    rows = [_row(op, "numpy", "fp32", size, _time_cpu(fn, iters), bytes_moved(op, h, w, 4), None)
            for op, fn in cases.items()]
    small = frames.scaled_size(h, w, 0.5)  # what the Stylizer does at a scale
    small_out = frames.to_tensor(bgr, STRIDE, MARGIN, size=small)
    cases = {"bgr8_to_tensor": lambda: frames.to_tensor(bgr, STRIDE, MARGIN, size=small),
             "tensor_to_bgr8": lambda: frames.to_frame_size(
                 frames.to_bgr8(frames.crop_output(small_out, *small, MARGIN), bgr, 1.0), bgr, 0.5)}
    return rows + [_row(op, "numpy", "fp32", size, _time_cpu(fn, iters), bytes_moved(op, h, w, 4, 0.5), None, 0.5)
                   for op, fn in cases.items()]


def sets_to_rotate(set_bytes: int, l2_bytes: int) -> int:
    """How many buffer sets of ``set_bytes`` to cycle through so that none is still in an L2 of ``l2_bytes`` when
    its turn comes again: their total is over twice the L2."""
    return max(2, -(-2 * l2_bytes // max(set_bytes, 1)) + 1)


def rotating(make_set, set_bytes: int, l2_bytes: int, run):
    """A no-argument call that runs ``run(*buffers)`` on the next of ``sets_to_rotate`` sets from ``make_set()``."""
    sets = [make_set() for _ in range(sets_to_rotate(set_bytes, l2_bytes))]
    turn = iter(range(1 << 62))
    return lambda: run(*sets[next(turn) % len(sets)])


def _time_gpu(torch, fn, iters: int) -> list[float]:
    """ms per call, from CUDA events around batches of 10 calls queued behind a GPU spin, so the events time the
    GPU's work and not Python's launch overhead (a 1080p kernel takes tens of µs on a large GPU)."""
    for _ in range(10):
        fn()
    out = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda._sleep(20_000_000)
        start.record()
        for _ in range(10):
            fn()
        end.record()
        end.synchronize()
        out.append(start.elapsed_time(end) / 10)
    return out


def gpu_rows(size=(1080, 1920), iters: int = 50) -> list[dict]:
    """Kernel rows with the copy bandwidth of the same run; empty where the kernels cannot run."""
    if ops.backend().name != "cuda":
        return []
    import torch

    h, w = size
    stream = torch.cuda.current_stream().cuda_stream
    l2 = torch.cuda.get_device_properties(torch.cuda.current_device()).L2_cache_size
    u8 = lambda *shape: torch.randint(0, 256, shape, dtype=torch.uint8, device="cuda")  # noqa: E731
    big = 64 << 20
    copy = rotating(lambda: (u8(big), torch.empty(big, dtype=torch.uint8, device="cuda")), 2 * big, l2,
                    lambda a, b: b.copy_(a))
    copy_ms = summarize(_time_gpu(torch, copy, iters))["median"]
    copy_gb_s = 2 * big / copy_ms / 1e6  # read + write, counted as the kernels are
    rows = []
    for dtype, scale in ((torch.float32, 1.0), (torch.float16, 1.0), (torch.float16, 0.5)):
        g = geometry(h, w, scale)
        name, itemsize = ("fp32", 4) if dtype == torch.float32 else ("fp16", 2)
        tensor = lambda: torch.rand((1, 3, g.out_h, g.out_w), device="cuda").to(dtype)  # noqa: E731
        frame_set = lambda: (u8(h, w, 3), u8(h, w), u8(h // 2, w // 2, 2), tensor(), u8(h, w, 3))  # noqa: E731
        set_bytes = 3 * h * w * 2 + h * w * 3 // 2 + 3 * g.out_h * g.out_w * itemsize
        cases = {"bgr8_to_tensor": lambda bgr, y, uv, t, out: ops.bgr8_to_tensor(bgr, t, g, stream),
                 "nv12_to_tensor": lambda bgr, y, uv, t, out: ops.nv12_to_tensor(y, uv, t, g, stream),
                 "tensor_to_bgr8": lambda bgr, y, uv, t, out: ops.tensor_to_bgr8(t, g, bgr, out, 0.5, stream)}
        rows += [_row(op, "cuda", name, size, _time_gpu(torch, rotating(frame_set, set_bytes, l2, fn), iters),
                      bytes_moved(op, h, w, itemsize, scale), copy_gb_s, scale)
                 for op, fn in cases.items() if scale == 1.0 or op in SCALED]
    return rows


def bench_kernels(size=(1080, 1920)) -> list[dict]:
    return cpu_rows(size) + gpu_rows(size)
