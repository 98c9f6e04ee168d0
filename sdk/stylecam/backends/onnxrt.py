"""ONNX Runtime backend: the CPU fallback that runs everywhere (and CUDA when onnxruntime-gpu is present)."""
from __future__ import annotations

import os

import numpy as np

from ..bundle import Bundle


def unavailable_reason() -> str | None:
    try:
        import onnxruntime  # noqa: F401
    except ImportError as e:
        return f"onnxruntime is not installed ({e}); pip install onnxruntime"
    return None


def session_options(threads: int | None = None, spinning: bool = False):
    """ONNX Runtime options for every CPU session stylecam times or runs (ours and peers alike): all graph
    optimizations, ``threads`` intra-op threads (default: the cores, at most 8), and worker threads that sleep
    between calls instead of spinning. On a 2-core host spinning won nothing end to end when idle and lost 30-36 %
    of the demo's FPS beside one busy process: the spinning workers took the cores from the pipeline's capture and
    output threads and from the other process (README, Python)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads or min(os.cpu_count() or 1, 8)
    opts.inter_op_num_threads = 1
    if not spinning:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


def providers(device: str = "auto", available: list[str] | None = None) -> list:
    """The execution providers for ``device`` (auto, cpu, cuda/gpu, tensorrt): CUDA first where asked for or, on
    auto, where this ONNX Runtime has it (onnxruntime-gpu), then the CPU. ``tensorrt`` puts ONNX Runtime's TensorRT
    provider before them, in FP16 with its engines cached beside stylecam's: how a peer network, which has no
    bundle to build an engine from, stands beside our TensorRT engines. Our networks and peers get the same, so
    that a comparison between them is like for like."""
    if available is None:
        import onnxruntime as ort

        available = ort.get_available_providers()
    need = {"cuda": "CUDAExecutionProvider", "gpu": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}
    if device in need and need[device] not in available:
        raise RuntimeError(f"device '{device}' asked for, but this onnxruntime has only {available}; "
                           "pip install onnxruntime-gpu (with TensorRT's libraries for 'tensorrt') or use "
                           "device='cpu'")
    chosen = ["CPUExecutionProvider"]
    if device in need or (device == "auto" and "CUDAExecutionProvider" in available):
        chosen.insert(0, "CUDAExecutionProvider")
    if device == "tensorrt":
        from stylecam.export.engine import cache_dir

        (cache := cache_dir() / "ort-trt").mkdir(parents=True, exist_ok=True)
        chosen.insert(0, ("TensorrtExecutionProvider", {"trt_fp16_enable": True, "trt_engine_cache_enable": True,
                                                        "trt_engine_cache_path": str(cache)}))
    return chosen


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def __init__(self, threads: int | None = None, spinning: bool = False):
        self.threads, self.spinning = threads, spinning
        self.session = None

    @property
    def preferred_variant(self) -> str:
        """INT8-CPU on the CPU provider (its integer convolutions are the fastest there; FP16 and TensorRT's INT8
        run slower than FP32: benchmarks/results), FP32 where CUDA is present."""
        import onnxruntime as ort

        return "fp32" if "CUDAExecutionProvider" in ort.get_available_providers() else "int8-cpu"

    def load(self, bundle: Bundle, variant: str = "fp32", device: str = "auto") -> None:
        import onnxruntime as ort

        path = bundle.model_file(variant)
        opts = session_options(self.threads, self.spinning)
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=providers(device))
        except Exception as e:  # onnxruntime raises its own exception types
            raise RuntimeError(f"{path}: ONNX Runtime could not load the model ({e}); re-export the bundle") from e
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.input_dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
        self.variant = variant
        self.on_host = self.session.get_providers()[0] == "CPUExecutionProvider"  # its memory is the system's

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: tensor.astype(self.input_dtype, copy=False)})[0]

    def close(self) -> None:
        self.session = None  # ONNX Runtime frees the session's arena with it

    def info(self) -> dict:
        import onnxruntime as ort

        return {"backend": self.name, "version": ort.__version__, "variant": self.variant,
                "providers": self.session.get_providers(), "threads": self.threads,
                "spinning": self.spinning}


def create(**options) -> OnnxRuntimeBackend:
    return OnnxRuntimeBackend(**options)
