"""Jetson on paper: frames per second on Orin Nano, Orin NX, AGX Orin and Thor, predicted from a model's graph.

A roofline per layer, because these networks mix compute-bound full convolutions with memory-bound depthwise ones:

    layer time = max(MACs / (peak MAC/s × efficiency), bytes / (DRAM bandwidth × DRAM_EFFICIENCY)) + LAYER_OVERHEAD
    frame time = Σ layers + pre/post-processing (cpp_ext's kernels: memory-bound, bytes / bandwidth)

Assumptions, each a number here so that a measurement can replace it:
* peak rates come from NVIDIA's datasheets (``DEVICES``), GPU only (no DLA), in the named power mode;
* TensorRT fuses Conv + bias + ReLU + residual Add into one kernel: a layer moves its input, output and weights
  once (the Add's second read is not counted) at the precision's element size (fp32 4, fp16 2, int8 1 bytes);
* full convolutions run on tensor cores at TENSOR_EFFICIENCY of peak (16–128 channels is far from the shapes
  tensor cores like; fp32 runs as TF32 at half the fp16 rate). Depthwise ones run on CUDA cores at
  CUDA_CORE_EFFICIENCY;
* Jetson memory is shared by CPU and GPU: no host-to-device copy, the frame is read where the camera wrote it;
* a mixed INT8 variant runs its INT8 convolutions in INT8 and the rest in FP16, the types its ONNX file holds
  (precision.py) and a strongly typed TensorRT network keeps.

These efficiencies are guesses until a TensorRT run on a real GPU calibrates them: ``check`` sets predictions
beside the measured TensorRT results in the results database for any device listed here (H100 included).
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

from stylecam.benchmarks.kernels import bytes_moved

TENSOR_EFFICIENCY = 0.30
CUDA_CORE_EFFICIENCY = 0.50
DRAM_EFFICIENCY = 0.70
LAYER_OVERHEAD_S = 4e-6  # a kernel launch and its tail on a Jetson, per fused layer
BYTES = {"fp32": 4, "fp16": 2, "int8": 1}


@dataclass(frozen=True)
class Device:
    name: str
    match: str  # how a measured device's name (GPU or Jetson module) is recognised
    power_mode: str
    sms: int
    clock_ghz: float
    dram_gb_s: float
    tensor_fp16_per_sm: int  # dense FP16 tensor-core FMA per clock per SM
    int8_speedup: float = 2.0  # dense INT8 over FP16 on tensor cores
    cuda_fp16_per_sm: int = 256  # FP16 FMA per clock per SM on CUDA cores (half2)
    part_numbers: tuple[str, ...] = ()  # the Jetson modules it is (device tree), which a measured run names

    def tensor_macs_s(self, precision: str) -> float:
        rate = self.sms * self.clock_ghz * 1e9 * self.tensor_fp16_per_sm
        return rate * {"fp32": 0.5, "fp16": 1.0, "int8": self.int8_speedup}[precision]

    def cuda_macs_s(self, precision: str) -> float:
        rate = self.sms * self.clock_ghz * 1e9 * self.cuda_fp16_per_sm
        return rate * (0.5 if precision == "fp32" else 1.0)


# Ampere (Orin): 1024 dense FP16 tensor FMA/clock/SM reproduces the datasheets' sparse INT8 TOPS
# (e.g. Orin Nano Super: 8 SMs × 1.02 GHz × 1024 × 2 (FMA) × 2 (INT8) × 2 (sparse) = 67 TOPS).
# Thor (Blackwell): 2070 sparse FP4 TFLOPS halved per step to dense FP16 (259 TFLOPS) over 20 SMs at 1.575 GHz.
# H100 SXM: 989 dense FP16 TFLOPS over 132 SMs at 1.83 GHz; for checking the model against a measured GPU.
# Orin Nano 4GB: half the 8GB's GPU and memory bus (34 sparse INT8 TOPS and 51 GB/s in MAXN SUPER).
DEVICES = {d.name: d for d in (
    Device("Jetson Orin Nano 8GB", "Orin Nano", "MAXN SUPER (25 W)", 8, 1.02, 102.0, 1024,
           part_numbers=("p3767-0003", "p3767-0005")),  # the module, the developer kit's
    Device("Jetson Orin Nano 4GB", "Orin Nano", "MAXN SUPER (25 W)", 4, 1.02, 51.2, 1024, part_numbers=("p3767-0004",)),
    Device("Jetson Orin NX 16GB", "Orin NX", "MAXN SUPER (40 W)", 8, 1.173, 102.4, 1024, part_numbers=("p3767-0000",)),
    Device("Jetson AGX Orin 64GB", "AGX Orin", "MAXN (60 W)", 16, 1.3, 204.8, 1024, part_numbers=("p3701-0005",)),
    Device("Jetson AGX Thor T5000", "Thor", "MAXN (130 W)", 20, 1.575, 273.0, 4096),
    Device("NVIDIA H100 80GB HBM3", "H100", "700 W", 132, 1.83, 3350.0, 2048, cuda_fp16_per_sm=512),
)}
JETSONS = [name for name in DEVICES if name.startswith("Jetson")]


def predict(layers, device: Device, precision: str, h: int, w: int, int8_layers: set[str] | None = None) -> dict:
    """Predicted ms for one h×w frame: the layers (from ``export.graph.conv_layers`` at that size) + pre/post.
    ``int8_layers``: with precision int8, the convolutions a mixed variant runs in INT8 (None: all of them)."""
    bandwidth = device.dram_gb_s * 1e9 * DRAM_EFFICIENCY
    compute_s = memory_s = total_s = 0.0
    for layer in layers:
        p = "fp16" if precision == "int8" and int8_layers is not None and layer.name not in int8_layers else precision
        rate = device.cuda_macs_s(p) * CUDA_CORE_EFFICIENCY if layer.depthwise else \
            device.tensor_macs_s(p) * TENSOR_EFFICIENCY
        c = layer.macs / rate
        m = (layer.input_elems + layer.output_elems + layer.weight_elems) * BYTES[p] / bandwidth
        compute_s, memory_s = compute_s + c, memory_s + m
        total_s += max(c, m) + LAYER_OVERHEAD_S
    # the network's input and output stay fp32 in every variant (precision.py)
    prepost_s = (bytes_moved("bgr8_to_tensor", h, w, 4) + bytes_moved("tensor_to_bgr8", h, w, 4)) / bandwidth
    ms = (total_s + prepost_s) * 1e3
    return {"device": device.name, "power_mode": device.power_mode, "precision": precision, "size": [h, w],
            "ms": round(ms, 3), "fps": round(1e3 / ms, 1), "compute_ms": round(compute_s * 1e3, 3),
            "memory_ms": round(memory_s * 1e3, 3), "prepost_ms": round(prepost_s * 1e3, 3),
            "bound": "memory" if memory_s > compute_s else "compute"}


def estimate(onnx_path: str | Path, model: str, precisions, sizes, devices=JETSONS,
             int8_layers: set[str] | None = None) -> list[dict]:
    """Rows per size, device and precision; ``int8_layers`` as in ``predict`` (a shipped mixed INT8 variant)."""
    from stylecam.export.graph import conv_layers

    unknown = set(precisions) - set(BYTES)
    if unknown:
        raise ValueError(f"the estimator predicts TensorRT on Jetsons: {', '.join(BYTES)}, not {sorted(unknown)}")
    rows = []
    for h, w in sizes:
        layers = conv_layers(onnx_path, h, w)
        macs = sum(lr.macs for lr in layers)
        gmacs = macs / 1e9
        int8_share = 1.0 if int8_layers is None else sum(lr.macs for lr in layers if lr.name in int8_layers) / macs
        for name in devices:
            for precision in precisions:
                rows.append({"model": model, "gmacs": round(gmacs, 2),
                             **({"int8_mac_share": round(int8_share, 3)} if precision == "int8" else {}),
                             **predict(layers, DEVICES[name], precision, h, w, int8_layers)})
    return rows


def save(rows: list[dict], path: Path) -> Path:
    """Write ``rows`` to ``path``, keeping the rows of other models already there when they were estimated under
    the same assumptions (a model estimated again replaces its own rows)."""
    import json
    import time

    from stylecam.bundle import atomic_write_bytes

    old = json.loads(path.read_text()) if path.is_file() else {}
    models = {r["model"] for r in rows}
    kept = [r for r in old.get("estimates", []) if r["model"] not in models] \
        if old.get("assumptions") == json.loads(json.dumps(assumptions())) else []
    doc = {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "assumptions": assumptions(), "estimates": kept + rows}
    atomic_write_bytes(path, (json.dumps(doc, indent=1) + "\n").encode())
    return path


def assumptions() -> dict:
    return {"tensor_efficiency": TENSOR_EFFICIENCY, "cuda_core_efficiency": CUDA_CORE_EFFICIENCY,
            "dram_efficiency": DRAM_EFFICIENCY, "layer_overhead_us": LAYER_OVERHEAD_S * 1e6,
            "devices": [asdict(d) for d in DEVICES.values()]}


def check(estimates: list[dict], runs: list[dict]) -> list[dict]:
    """Predicted network time beside the measured TensorRT ``infer`` stage (newest run) for every device and case
    both have. Pre/post-processing is left out on both sides: on a discrete GPU it crosses PCIe, which the Jetson
    model does not count."""
    measured = {}
    for run in runs:
        jetson = run["device"].get("jetson") or {}
        name = " ".join(filter(None, (jetson.get("sku"), jetson.get("module")))) or \
            (run["device"].get("gpu") or {}).get("name", "")
        for r in run["results"]:
            if r.get("kind") is None and r.get("backend", {}).get("backend") == "tensorrt" and "infer" in r["stages_ms"]:
                measured[(name, jetson.get("part_number"), r["model"], r["precision"], tuple(r["size"]))] = \
                    (r["stages_ms"]["infer"]["median"], jetson.get("power_mode"))
    out = []
    for e in estimates:
        for (name, part, model, precision, size), (ms, power_mode) in measured.items():
            if _same_device(DEVICES[e["device"]], name, part) and \
                    (e["model"], e["precision"], tuple(e["size"])) == (model, precision, size):
                network_ms = e["ms"] - e["prepost_ms"]
                out.append({**e, "network_ms": round(network_ms, 3), "measured_ms": ms,
                            "ratio": round(network_ms / ms, 2), "measured_power_mode": power_mode})
    return out


def _same_device(device: Device, measured: str, part_number: str | None = None) -> bool:
    """Whether a measured device is the one estimated: by the Jetson module's part number where both have one
    (an Orin Nano 4GB, p3767-0004, has half the 8GB's SMs on the same carrier board; an AGX Orin 32GB 14 of 16),
    else by name, and a memory size that both name must agree."""
    if part_number and device.part_numbers:
        return part_number in device.part_numbers
    sizes = [re.findall(r"(\d+)\s*GB", text) for text in (device.name, measured)]
    return device.match.lower() in measured.lower() and not (all(sizes) and sizes[0][0] not in sizes[1])
