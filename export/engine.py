"""TensorRT engines from a bundle's ONNX variant: one optimization profile, a shared timing cache, and a cache
of engines keyed by everything that makes an engine valid.

Works with ``tensorrt`` (TensorRT 10/11: Jetson, datacenter GPUs) or ``tensorrt_rtx`` (desktop RTX; builds
ahead of time for a chosen compute capability, also on a machine without a GPU). Both networks are strongly
typed: precision comes from the ONNX variant (FP32, FP16, or INT8 Q/DQ), not from builder flags.

Cache: ``$XDG_CACHE_HOME/stylecam/engines/`` (default ``~/.cache``). Each engine has a JSON sidecar that says
how it was built and holds its sha256. A missing sidecar, a different ONNX, precision, TensorRT version,
device or profile, or a truncated or modified engine makes it stale: it is rebuilt with a warning, never trusted.
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import importlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from stylecam.bundle import Bundle, atomic_write_bytes, sha256_file
from stylecam.frames import padded_size

log = logging.getLogger("stylecam")
SIDECAR_VERSION = 1
DEFAULT_SHAPES = ((1, 1), (720, 1280), (1080, 1920))  # any frame up to 1080p; optimized for 720p
CU_COMPUTE_CAPABILITY_MAJOR, CU_COMPUTE_CAPABILITY_MINOR = 75, 76  # CUdevice_attribute (cuda.h)
MIN_TENSORRT = 10  # strongly typed networks, named I/O tensors, execute_async_v3


class EngineError(RuntimeError):
    pass


def tensorrt():
    """(module, flavor): full TensorRT when installed, else TensorRT-RTX; EngineError if neither is."""
    found = probe_tensorrt()
    if isinstance(found, str):
        raise EngineError(found)
    return found


@functools.cache
def probe_tensorrt() -> tuple[object, str] | str:
    """The answer, once per process (every backend creation asks): the module and its flavor, or why there is none.
    Only strings are kept: a kept ImportError holds its frames, and with them whatever the callers held (a live
    style switch's replaced sessions, until a full collection)."""
    first_failure = None
    for name, flavor in (("tensorrt", "tensorrt"), ("tensorrt_rtx", "rtx")):
        try:
            module = importlib.import_module(name)
        except ImportError as e:
            first_failure = first_failure or str(e)
            continue
        if flavor == "tensorrt" and int(module.__version__.split(".")[0]) < MIN_TENSORRT:
            return (f"TensorRT {module.__version__} is too old: stylecam needs TensorRT {MIN_TENSORRT} or "
                    "newer (on a Jetson: JetPack 6 or later); the onnxruntime backend runs without it")
        return module, flavor
    return missing_tensorrt(first_failure)


def missing_tensorrt(error: ImportError | str, jetson_release: Path = Path("/etc/nv_tegra_release"),
                     system: Path = Path("/usr/lib")) -> str:
    """Why no TensorRT imports, and the fix. On a Jetson it is most often there but unseen: JetPack installs it
    for the system's Python, and a virtualenv made without --system-site-packages (or another Python) hides it."""
    if not jetson_release.exists():
        return "neither tensorrt nor tensorrt_rtx is installed: pip install 'stylecam[tensorrt]'"
    found = sorted(system.glob("python3*/dist-packages/tensorrt"))
    if found and str(found[0].parent) in sys.path:
        return (f"JetPack's TensorRT in {found[0]} does not import ({error}): reinstall it (sudo apt install "
                "--reinstall python3-libnvinfer)")
    if found:
        return (f"JetPack's TensorRT is in {found[0]}, which this Python ({sys.executable}) does not see: make the "
                "virtualenv with the system's Python and --system-site-packages (python3 -m venv "
                "--system-site-packages ENV)")
    return "TensorRT is not installed on this Jetson: sudo apt install nvidia-tensorrt (it comes with JetPack 6)"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "stylecam" / "engines"


@functools.cache
def local_gpu(index: int = 0) -> dict | None:
    """Name and compute capability of GPU ``index`` (None without it or a driver): from the CUDA driver, which a
    Jetson has too, else from nvidia-smi. Asked once per process and GPU."""
    return driver_gpu(index) or smi_gpu(index)


def driver_gpu(index: int = 0) -> dict | None:
    try:
        cuda = ctypes.CDLL("nvcuda.dll" if os.name == "nt" else "libcuda.so.1")
    except OSError:
        return None
    dev, major, minor, name = ctypes.c_int(), ctypes.c_int(), ctypes.c_int(), ctypes.create_string_buffer(256)
    if (cuda.cuInit(0) or cuda.cuDeviceGet(ctypes.byref(dev), index) or cuda.cuDeviceGetName(name, 256, dev)
            or cuda.cuDeviceGetAttribute(ctypes.byref(major), CU_COMPUTE_CAPABILITY_MAJOR, dev)
            or cuda.cuDeviceGetAttribute(ctypes.byref(minor), CU_COMPUTE_CAPABILITY_MINOR, dev)):
        return None  # a CUresult other than CUDA_SUCCESS (0): no usable GPU
    return {"name": name.value.decode(errors="replace"), "compute_capability": f"{major.value}.{minor.value}"}


def nvidia_smi(fields: str, units: bool = True, index: int | None = None) -> str | None:
    """nvidia-smi's CSV answer for ``--query-gpu=FIELDS`` (no header; every GPU, or GPU ``index``), or None
    without it or when it fails."""
    if not shutil.which("nvidia-smi"):
        return None
    try:
        return subprocess.run(["nvidia-smi", *(["-i", str(index)] if index is not None else []),
                               f"--query-gpu={fields}",
                               "--format=csv,noheader" + ("" if units else ",nounits")],
                              capture_output=True, text=True, timeout=10, check=True).stdout
    except (subprocess.SubprocessError, OSError):
        return None


def smi_gpu(index: int = 0) -> dict | None:
    out = nvidia_smi("name,compute_cap", index=index)
    return None if out is None else parse_smi(out)


def parse_smi(out: str) -> dict | None:
    """nvidia-smi's "name, compute_cap" line; None where a field is missing or "[N/A]" (as some Jetsons print)."""
    line = out.splitlines()[0] if out.strip() else ""
    name, _, cc = (f.strip() for f in line.rpartition(","))
    return {"name": name, "compute_capability": cc} if name and re.fullmatch(r"\d+\.\d+", cc) else None


def device_target(flavor: str, sm: str | None, index: int = 0) -> dict:
    """What the engine is built for: GPU ``index``, or (TensorRT-RTX) a named compute capability, e.g. SM86."""
    gpu = local_gpu(index)
    if sm:
        if flavor != "rtx":
            raise EngineError("--sm (ahead-of-time target) needs tensorrt_rtx; TensorRT builds for this GPU")
        check_rtx_target(sm.upper())
        return {"target": sm.upper(), "gpu": None}
    if gpu is None:
        if flavor != "rtx":
            raise EngineError("no GPU found: TensorRT builds engines on the GPU that will run them")
        return {"target": "SM86", "gpu": None}  # ahead of time for the common RTX 30xx when nothing is named
    target = "SM" + gpu["compute_capability"].replace(".", "")
    if flavor == "rtx":
        check_rtx_target(target, gpu["name"])
    return {"target": target, "gpu": gpu["name"]}


def check_rtx_target(target: str, gpu: str | None = None) -> None:
    """TensorRT-RTX builds only for desktop RTX compute capabilities; a datacenter GPU (SM90: H100, H200) or a
    Jetson (SM87) needs full TensorRT."""
    trt, _ = tensorrt()
    known = [c for c in dir(trt.ComputeCapability) if re.fullmatch(r"SM\d+", c)]
    if target not in known:
        raise EngineError(f"TensorRT-RTX {trt.__version__} cannot build for {gpu or target} ({target}): it targets "
                          f"{', '.join(known)}. Use full TensorRT for this GPU: pip install 'stylecam[tensorrt-full]' "
                          "with NVIDIA's package index as an extra index (docs/export.md); on a Jetson, JetPack's")


@dataclass(frozen=True)
class Profile:
    min: tuple[int, int, int, int]
    opt: tuple[int, int, int, int]
    max: tuple[int, int, int, int]

    def covers(self, shape) -> bool:
        return all(lo <= s <= hi for lo, s, hi in zip(self.min, shape, self.max))


def profile_for(bundle: Bundle, shapes=DEFAULT_SHAPES, opt: tuple[int, int] | None = None) -> Profile:
    """Frame sizes (H, W) → network input profile: min/max over them, opt at ``opt`` (default: the second)."""
    nets = [(1, 3, *padded_size(h, w, bundle.stride, bundle.margin)) for h, w in shapes]
    o = (1, 3, *padded_size(*opt, bundle.stride, bundle.margin)) if opt else nets[min(1, len(nets) - 1)]
    return Profile(tuple(map(min, zip(*nets))), o, tuple(map(max, zip(*nets))))


def expected_sidecar(bundle: Bundle, precision: str, profile: Profile, sm: str | None = None,
                     device: int = 0) -> dict:
    trt, flavor = tensorrt()
    return {"sidecar_version": SIDECAR_VERSION, "bundle": bundle.name, "precision": precision,
            "onnx_sha256": bundle.manifest["files"][bundle.model_file(precision).name]["sha256"],
            "tensorrt": {"module": trt.__name__, "version": trt.__version__},
            "device": device_target(flavor, sm, device), "profile": asdict(profile)}


def engine_path(expected: dict) -> Path:
    key = hashlib.sha256(json.dumps(expected, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir() / f"{expected['bundle']}-{expected['precision']}-{expected['device']['target']}-{key}.engine"


def stale_reason(path: Path, expected: dict) -> str | None:
    """Why the cached engine at ``path`` cannot be trusted, or None when it can."""
    sidecar = path.with_suffix(".json")
    if not path.is_file():
        return "not built yet"
    if not sidecar.is_file():
        return "its sidecar is missing"
    try:
        meta = json.loads(sidecar.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return "its sidecar is corrupt"
    for field, want in expected.items():
        if meta.get(field) != (json.loads(json.dumps(want))):
            return f"built for another {field} ({meta.get(field)!r}, need {want!r})"
    if path.stat().st_size != meta.get("bytes"):
        return f"truncated ({path.stat().st_size} of {meta.get('bytes')} bytes)"
    if sha256_file(path) != meta.get("engine_sha256"):
        return "its sha256 does not match the sidecar (modified)"
    return None


def _progress_monitor(trt):
    class Progress(trt.IProgressMonitor):
        """Prints each top-level build phase as it finishes."""

        def __init__(self):
            trt.IProgressMonitor.__init__(self)
            self.depth, self.t0 = 0, {}

        def phase_start(self, phase_name, parent_phase, num_steps):
            self.t0[phase_name] = time.perf_counter()

        def step_complete(self, phase_name, step):
            return True  # keep building

        def phase_finish(self, phase_name):
            if phase_name in self.t0:
                log.info("  %s: %.1f s", phase_name, time.perf_counter() - self.t0.pop(phase_name))

    return Progress()


def _build(bundle: Bundle, precision: str, profile: Profile, expected: dict) -> bytes:
    trt, flavor = tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    onnx_path = bundle.model_file(precision)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineError(f"{onnx_path}: TensorRT could not parse it: {errors}")
    config = builder.create_builder_config()
    opt_profile = builder.create_optimization_profile()
    opt_profile.set_shape(network.get_input(0).name, profile.min, profile.opt, profile.max)
    config.add_optimization_profile(opt_profile)
    if flavor == "rtx":  # the GPU the build runs on (its context is current), else the named target
        config.num_compute_capabilities = 1
        config.set_compute_capability(trt.ComputeCapability.CURRENT if expected["device"]["gpu"] else
                                      getattr(trt.ComputeCapability, expected["device"]["target"]), 0)
    # Tactic timings are measured on a GPU, and differ between cards of one SM (an RTX 4060 and an L40S):
    # the file is per GPU name. Ahead-of-time builds (no GPU here) have none to reuse.
    gpu_slug = re.sub(r"[^a-z0-9]+", "-", (expected["device"]["gpu"] or "none").lower()).strip("-")
    timing_file = cache_dir() / (f"timing-{trt.__name__}-{trt.__version__}-{expected['device']['target']}-"
                                 f"{gpu_slug}.cache")
    if expected["device"]["gpu"]:
        cache = config.create_timing_cache(timing_file.read_bytes() if timing_file.is_file() else b"")
        config.set_timing_cache(cache, ignore_mismatch=True)
    config.progress_monitor = _progress_monitor(trt)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise EngineError(f"TensorRT failed to build {onnx_path.name} ({precision}); see the messages above")
    if expected["device"]["gpu"]:
        atomic_write_bytes(timing_file, bytes(config.get_timing_cache().serialize()))
    return bytes(engine)


def build_engine(bundle: Bundle, precision: str = "fp16", shapes=DEFAULT_SHAPES, opt=None, sm: str | None = None,
                 force: bool = False, device: int = 0) -> Path:
    """The cached engine for this bundle/precision/profile/GPU ``device``, built first when missing or stale."""
    if precision == "int8-cpu":
        raise EngineError("int8-cpu is ONNX Runtime's CPU variant (its zero points are not TensorRT's); "
                          "build fp16 or int8")
    profile = profile_for(bundle, shapes, opt)
    expected = expected_sidecar(bundle, precision, profile, sm, device)
    path = engine_path(expected)
    reason = "rebuild asked for" if force else stale_reason(path, expected)
    if reason is None:
        return path
    if reason != "not built yet":
        log.warning("engine %s is stale: %s; rebuilding", path.name, reason)
    log.info("building %s engine for %s (%s %s, %s), profile %s..%s; this takes a while once",
             precision, bundle.name, expected["tensorrt"]["module"], expected["tensorrt"]["version"],
             expected["device"]["target"], profile.min[2:], profile.max[2:])
    t0 = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = _build(bundle, precision, profile, expected)
    atomic_write_bytes(path, engine)
    meta = {**expected, "bytes": len(engine), "engine_sha256": hashlib.sha256(engine).hexdigest(),
            "build_seconds": round(time.perf_counter() - t0, 2), "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    atomic_write_bytes(path.with_suffix(".json"), (json.dumps(meta, indent=2) + "\n").encode())
    log.info("engine written: %s (%.1f MB, %.1f s)", path, len(engine) / 1e6, meta["build_seconds"])
    return path
