"""The GPU end-to-end path that a borrowed GPU machine times (``scripts/gpu_checks.sh``), and that runs on the CPU
everywhere else so the code stays true until then.

One frame's trip as a GPU deployment makes it, with torch holding the buffers: BGR8 up (pinned host → device),
cpp_ext's fused pre-processing into an FP16 tensor, the network (the torch backend's model, FP16), the fused
post-processing with the strength blend, BGR8 down. CUDA events time each stage. On a machine without the kernels
the same stages run on the CPU (host twins, FP32 network) at a small size, and the record says so.

    python3 -m stylecam.benchmarks.gpu_check [--sizes 720x1280,1080x1920] [--style candy] [--out DIR]

writes one JSON under benchmarks/results/<device>/gpu_check/ (not a benchmark run: the report reads those).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from stylecam import ops
from stylecam.bundle import atomic_write_bytes
from stylecam.styles import resolve
from stylecam.timing import summarize

STAGES = ("h2d", "pre", "network", "post", "d2h")


def fused_trip(style: str = "candy", size=(720, 1280), iters: int = 30, strength: float = 0.8) -> dict:
    """Median ms of each stage and the whole trip, and the frame's agreement with the Stylizer's host path."""
    import torch

    from stylecam.stylizer import Stylizer
    from stylecam.train.models import load_generator

    bundle = resolve(style)
    gpu = ops.backend().name == "cuda" and torch.cuda.is_available()
    device, dtype = ("cuda", torch.float16) if gpu else ("cpu", torch.float32)
    model = load_generator(bundle).to(device, dtype).eval()
    h, w = size
    g = ops.geometry(h, w, bundle.stride, bundle.margin)
    frame = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    host_in = torch.from_numpy(frame).pin_memory() if gpu else torch.from_numpy(frame.copy())
    host_out = torch.empty_like(host_in).pin_memory() if gpu else torch.empty_like(host_in)
    dev_frame = torch.empty((h, w, 3), dtype=torch.uint8, device=device)
    dev_result = torch.empty_like(dev_frame)
    x = torch.empty((1, 3, g.out_h, g.out_w), dtype=dtype, device=device)
    as_array = (lambda t: t) if gpu else (lambda t: t.numpy())  # the host twins take NumPy views of CPU tensors
    stream = torch.cuda.current_stream().cuda_stream if gpu else 0
    clock = _Clock(torch, gpu)

    def trip():
        clock.mark("start")
        dev_frame.copy_(host_in, non_blocking=True)
        clock.mark("h2d")
        ops.bgr8_to_tensor(as_array(dev_frame), as_array(x), g, stream)
        clock.mark("pre")
        with torch.inference_mode():
            y = model(x).contiguous()
        clock.mark("network")
        ops.tensor_to_bgr8(as_array(y), g, as_array(dev_frame), as_array(dev_result), strength, stream)
        clock.mark("post")
        host_out.copy_(dev_result, non_blocking=True)
        clock.mark("d2h")
        clock.wait()

    trip()  # warm-up: kernels picked, memory allocated
    samples = {s: [] for s in (*STAGES, "total")}
    for _ in range(iters):
        trip()
        for stage, ms in clock.stages().items():
            samples[stage].append(ms)
    reference = Stylizer(bundle, backend="onnxruntime", variant="fp32", strength=strength).stylize(frame)
    diff = np.abs(host_out.numpy().astype(np.int16) - reference)
    return {"style": bundle.name, "size": [h, w], "path": "cuda" if gpu else "cpu (host twins, fp32)",
            "dtype": "fp16" if gpu else "fp32", "iters": iters,
            "ms": {s: round(summarize(v)["median"], 3) for s, v in samples.items()},
            "fps": round(1e3 / summarize(samples["total"])["median"], 1),
            "vs_host_path": {"max_lsb": int(diff.max()), "mean_lsb": round(float(diff.mean()), 3)}}


class _Clock:
    """Stage boundaries: CUDA events on a GPU (read after the trip's sync), perf_counter on the CPU."""

    def __init__(self, torch, gpu: bool):
        self.torch, self.gpu, self.marks = torch, gpu, {}

    def mark(self, name: str) -> None:
        if self.gpu:
            self.marks[name] = e = self.torch.cuda.Event(enable_timing=True)
            e.record()
        else:
            self.marks[name] = time.perf_counter()

    def wait(self) -> None:
        if self.gpu:
            self.torch.cuda.synchronize()

    def stages(self) -> dict[str, float]:
        names = ["start", *STAGES]
        gap = (lambda a, b: a.elapsed_time(b)) if self.gpu else (lambda a, b: (b - a) * 1e3)
        out = {b: gap(self.marks[a], self.marks[b]) for a, b in zip(names, names[1:])}
        out["total"] = gap(self.marks["start"], self.marks["d2h"])
        return out


def run(sizes, style: str, out: Path | None = None, iters: int = 30) -> Path:
    from stylecam.benchmarks import kernels, results

    device = results.device_block()
    gpu = ops.backend().name == "cuda"
    record = {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "device": device,
              "kernels_on": ops.backend().name, "kernels_why": ops.backend().reason,
              "fused_trip": [fused_trip(style, size, iters) for size in sizes],
              "kernels": [row for size in sizes
                          for row in (kernels.gpu_rows(size) if gpu else kernels.cpu_rows(size, 3))]}
    folder = (out or results.RESULTS_DIR / results.device_slug(device)) / "gpu_check"
    path = folder / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(record, indent=1) + "\n").encode())
    return path


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python3 -m stylecam.benchmarks.gpu_check", description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default=None, help="HxW list (default: 720x1280,1080x1920 on a GPU, 96x128 on the CPU)")
    p.add_argument("--style", default="candy", help="bundled style or bundle folder (default candy)")
    p.add_argument("--iters", type=int, default=30, help="timed trips per size (default 30)")
    p.add_argument("--out", type=Path, help="results folder (default benchmarks/results/<device>)")
    args = p.parse_args(argv)
    default = "720x1280,1080x1920" if ops.backend().name == "cuda" else "96x128"
    sizes = [tuple(int(v) for v in s.split("x")) for s in (args.sizes or default).split(",")]
    path = run(sizes, args.style, args.out, args.iters)
    record = json.loads(path.read_text())
    for r in record["fused_trip"]:
        print(f"{r['style']} {r['size'][0]}x{r['size'][1]} {r['path']}: " +
              ", ".join(f"{s} {ms:.2f}" for s, ms in r["ms"].items()) +
              f" ms; {r['fps']} FPS; vs host path max {r['vs_host_path']['max_lsb']} LSB")
    print(f"kernels: {record['kernels_on']} ({record['kernels_why']})\nwritten: {path}")


if __name__ == "__main__":
    main()
