"""Device block and the results database: one JSON file per run under ``benchmarks/results/<device>/``."""
from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import re
import time
from pathlib import Path

from stylecam.bundle import atomic_write_bytes

SCHEMA_VERSION = 1
RESULTS_DIR = Path(__file__).parent / "results"


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(errors="replace").strip("\x00\n ")
    except OSError:
        return None


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    info = _read("/proc/cpuinfo") or ""
    m = re.search(r"^model name\s*:\s*(.+)$", info, re.M) or re.search(r"^Hardware\s*:\s*(.+)$", info, re.M)
    return m.group(1).strip() if m else (platform.processor() or platform.machine())


def cpu_signature(root: Path = Path("/")) -> str | None:
    """x86 family, model and stepping: a virtual machine's "AMD EPYC" names every generation alike (family 25 is
    Zen 3 or 4, 26 is Zen 5), and two of them ran ``make demo`` at 34.5 and 49.3 FPS. None off x86 Linux."""
    info = _read(str(root / "proc/cpuinfo")) or ""
    fields = [re.search(rf"^{key}\s*:\s*(\d+)\s*$", info, re.M) for key in ("cpu family", "model", "stepping")]
    return "family {} model {} stepping {}".format(*(f.group(1) for f in fields)) if all(fields) else None


# what ONNX Runtime's CPU kernels dispatch on: the same CPU name with and without VNNI runs INT8 at other speeds
# (and, with 8-bit weights, other accuracy: export/precision.py)
SPEED_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm", "sve")
X86_TIERS = (("amx_int8", "amx"), ("avx512_vnni", "avx512-vnni"), ("avx_vnni", "avx-vnni"), ("avx512f", "avx512"),
             ("avx2", "avx2"))


def cpu_features() -> list[str]:
    """The speed-relevant instruction-set extensions this CPU reports (Linux /proc/cpuinfo; empty elsewhere)."""
    info = _read("/proc/cpuinfo") or ""
    m = re.search(r"^(?:flags|Features)\s*:\s*(.+)$", info, re.M)
    have = set(m.group(1).split()) if m else set()
    return [f for f in SPEED_FEATURES if f in have]


def _mhz(path: Path, per_mhz: float) -> float | None:
    text = _read(str(path))
    return round(int(text) / per_mhz, 1) if text and text.isdigit() else None


def clocks(root: Path = Path("/")) -> dict:
    """Clocks where Linux shows them, in MHz. CPU 0: current, minimum, maximum and governor (cpufreq), else
    /proc/cpuinfo's "cpu MHz" (a VM's nominal clock). Each devfreq device, which on a Jetson is the GPU and the
    memory controller: current, minimum, maximum and governor. ``jetson_clocks`` pins the minimum to the
    maximum, so a locked board shows min == max."""
    freq = root / "sys/devices/system/cpu/cpu0/cpufreq"
    cpu = {k: _mhz(freq / f, 1e3) for k, f in (("cur", "scaling_cur_freq"), ("min", "scaling_min_freq"),
                                               ("max", "cpuinfo_max_freq"))}
    cpu["governor"] = _read(str(freq / "scaling_governor"))
    if cpu["cur"] is None:
        m = re.search(r"^cpu MHz\s*:\s*([\d.]+)", _read(str(root / "proc/cpuinfo")) or "", re.M)
        cpu["cur"] = round(float(m.group(1)), 1) if m else None
    out = {"cpu0": {k: v for k, v in cpu.items() if v is not None}} if cpu["cur"] is not None else {}
    devfreq = root / "sys/class/devfreq"
    for d in sorted(devfreq.iterdir()) if devfreq.is_dir() else []:
        entry = {k: _mhz(d / f, 1e6) for k, f in (("cur", "cur_freq"), ("min", "min_freq"), ("max", "max_freq"))}
        entry["governor"] = _read(str(d / "governor"))
        if entry["cur"] is not None:
            out[d.name] = {k: v for k, v in entry.items() if v is not None}
    return out


def jetson_power_mode(root: Path = Path("/")) -> str | None:
    """The active nvpmodel mode, e.g. "MAXN_SUPER (mode 2)", without root or the nvpmodel binary: nvpmodel writes
    its id to /var/lib/nvpmodel/status ("pmode:0002"), and /etc/nvpmodel.conf names each id
    ("< POWER_MODEL ID=2 NAME=MAXN_SUPER >"). Before nvpmodel has run, the conf's default mode."""
    conf = _read(str(root / "etc/nvpmodel.conf")) or ""
    status = re.search(r"pmode:0*(\d+)", _read(str(root / "var/lib/nvpmodel/status")) or "")
    default = re.search(r"PM_CONFIG\s+DEFAULT=(\d+)", conf)
    mode, note = (status.group(1), "") if status else (default.group(1), ", the default") if default else (None, "")
    if mode is None:
        return None
    name = re.search(rf"POWER_MODEL\s+ID={mode}\s+NAME=([^\s>]+)", conf)
    return f"{name.group(1) if name else '?'} (mode {mode}{note})"


def l4t_version(release: str | None) -> str | None:
    """"36.4.3" from /etc/nv_tegra_release's "# R36 (release), REVISION: 4.3, GCID: …"."""
    m = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", release or "")
    return f"{m.group(1)}.{m.group(2)}" if m else None


def jetson_block(root: Path = Path("/")) -> dict | None:
    """The Jetson this runs on, or None: the device tree's model (a carrier board's name, e.g. "NVIDIA Jetson Orin
    Nano Developer Kit"), the module's part number from its ``compatible`` list (p3767-0003: an Orin Nano 8GB, whose
    GPU has twice the SMs of the 4GB's p3767-0004 on the same carrier), L4T and the power mode. With jetson-stats
    installed, its tables add the module's name and the JetPack release (jtop's service is not needed)."""
    model = _read(str(root / "proc/device-tree/model"))
    if not model or "jetson" not in model.lower():
        return None
    compatible = (_read(str(root / "proc/device-tree/compatible")) or "").split("\x00")
    # "nvidia,p3768-0000+p3767-0003" (carrier+module), "nvidia,p3767-0003", "nvidia,tegra234"
    parts = [re.fullmatch(r"nvidia,(?:p\d{4}-\d{4}\+)?(p\d{4}-\d{4})", c.strip()) for c in compatible]
    block = {"module": model, "part_number": next((m.group(1) for m in parts if m), None),
             "l4t": l4t_version(_read(str(root / "etc/nv_tegra_release"))), "power_mode": jetson_power_mode(root)}
    try:  # jetson-stats (optional): the P-number → module and L4T → JetPack tables it keeps up to date
        from jtop.core.jetson_variables import MODULE_NAME_TABLE, NVIDIA_JETPACK
    except ImportError:
        MODULE_NAME_TABLE, NVIDIA_JETPACK = {}, {}
    block["sku"] = MODULE_NAME_TABLE.get(block["part_number"])
    block["jetpack"] = NVIDIA_JETPACK.get(block["l4t"])
    return {k: v for k, v in block.items() if v}


def nvidia_smi_state(query=None) -> dict | None:
    """Driver version, clocks (MHz), power limit (W) and performance state of GPU 0 from nvidia-smi, where it
    is installed (desktop and datacenter GPUs; a Jetson has devfreq instead, see ``clocks``)."""
    from stylecam.export.engine import nvidia_smi

    fields = ("driver_version", "clocks.sm", "clocks.max.sm", "clocks.mem", "clocks.max.mem", "power.limit",
              "pstate")
    if query is None and (query := nvidia_smi(",".join(fields), units=False)) is None:
        return None
    values = [v.strip() for v in (query.strip().splitlines() or [""])[0].split(",")]
    if len(values) != len(fields):
        return None
    number = lambda v: float(v) if re.fullmatch(r"[\d.]+", v) else None  # noqa: E731 - "[N/A]" where unreadable
    state = {"driver": values[0], "sm_mhz": number(values[1]), "max_sm_mhz": number(values[2]),
             "mem_mhz": number(values[3]), "max_mem_mhz": number(values[4]), "power_limit_w": number(values[5]),
             "pstate": values[6]}
    return {k: v for k, v in state.items() if v not in (None, "", "[N/A]")}


def device_block() -> dict:
    """What produced a number: CPU, GPU, driver, library versions, Jetson module and power mode."""
    from stylecam import live
    from stylecam.export.engine import local_gpu

    block = {"cpu": cpu_model(), "cpu_signature": cpu_signature(), "cpu_features": cpu_features(),
             "cores": os.cpu_count(), "machine": platform.machine(),
             "os": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
             "gpu": local_gpu(), "freed_memory_kept": live.freed_memory_kept, "clocks": clocks(),
             "versions": {d: _version(d) for d in ("onnxruntime", "onnxruntime-gpu", "opencv-python-headless",
                                                    "opencv-python", "numpy", "torch", "tensorrt",
                                                    "tensorrt-rtx", "pycuda")}}
    block["versions"] = {k: v for k, v in block["versions"].items() if v}
    if block["gpu"] and (smi := nvidia_smi_state()):
        block["gpu"] = {**block["gpu"], **smi}
    block["jetson"] = jetson_block()
    return block


def _generation(block: dict) -> str | None:
    """A CPU name without a model number ("AMD EPYC", "Intel(R) Xeon(R) Processor": a virtual machine's) is
    told apart by its x86 family (AMD) or model (Intel); a name with one says it already."""
    signature = block.get("cpu_signature")
    if not signature or re.search(r"\d", block["cpu"]):
        return None
    family, model = re.match(r"family (\d+) model (\d+)", signature).groups()
    return f"family {family}" if "AMD" in block["cpu"] else f"model {model}"


def device_slug(block: dict) -> str:
    """The results folder: the Jetson board and module part number, else the GPU, else the CPU with its generation
    where the name lacks one, its x86 vector tier and cores (a virtual machine's "AMD EPYC" is an AVX2 or an
    AVX-512 VNNI host of family 25 or 26). Runs from before ``cpu_features`` and ``cpu_signature`` were recorded
    keep the names without them."""
    features = block.get("cpu_features") or []
    tier = next((name for flag, name in X86_TIERS if flag in features), None)
    jetson = block["jetson"] or {}
    name = " ".join(filter(None, (jetson.get("module"), jetson.get("part_number")))) or \
        (block["gpu"] or {}).get("name") or \
        " ".join(filter(None, (block["cpu"], _generation(block), tier, f"{block['cores']}c")))
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60]


def save_run(results: list[dict], device: dict, root: Path = RESULTS_DIR) -> Path:
    run = {"schema_version": SCHEMA_VERSION, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
           "device": device, "results": results}
    now = time.time()  # milliseconds in the name: runs sort by time, and two in one second both stay
    stamp, n = time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + f"{now % 1:.3f}"[1:], 1
    path = root / device_slug(device) / f"{stamp}.json"
    while path.exists():
        n += 1
        path = path.with_name(f"{stamp}-{n}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(run, indent=1) + "\n").encode())
    return path


def load_runs(root: Path = RESULTS_DIR) -> list[dict]:
    runs = []
    for p in sorted(root.glob("*/*.json")):
        run = json.loads(p.read_text())
        if run.get("schema_version") != SCHEMA_VERSION:
            continue  # an older schema: re-run the benchmark on that device
        run["file"] = str(p.relative_to(root))
        runs.append(run)
    return runs
