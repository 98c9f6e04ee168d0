"""TensorRT backend (Jetson and datacenter GPUs via ``tensorrt``, desktop RTX via ``tensorrt_rtx``).

The engine comes from the engine cache (``stylecam build``), built on first use when missing or stale, for the
GPU ``device`` names. Buffers are pycuda device memory sized for the profile's largest input and output, plus
pinned host staging, on one CUDA stream, all in that GPU's primary context (the one TensorRT and cpp_ext's kernels
use too). I/O uses named tensors and ``execute_async_v3`` (the TensorRT 10/11 API); the input shape is set whenever
the frame size changes. Where cpp_ext's kernels run (``stylecam.ops.backend()``), ``stylize_frame`` keeps the
frame on the GPU: BGR8 up (3 bytes a pixel instead of 12), fused pre-processing (with the resize to a network
scale), inference, fused post-processing (with the resize back and the strength blend), BGR8 down; otherwise
pre/post-processing runs on the CPU around ``infer``. Each call leaves CUDA-event times of its copies and kernels
in ``last_stages_ms`` (h2d, gpu, d2h). TensorRT-RTX compiles kernels when a context first runs a shape: its runtime
cache is kept beside the engine, so the next start of a process skips that.

pycuda frees memory only with its context current, so ``close()`` pushes the context and frees every allocation,
the stream and the events, from whichever thread calls it (a style switch's loader, the Stylizer's owner).
"""
from __future__ import annotations

import functools
import importlib.util
import logging

import numpy as np

from ..bundle import Bundle, atomic_write_bytes

log = logging.getLogger("stylecam")


@functools.cache
def unavailable_reason() -> str | None:
    """Why this backend cannot run here (None when it can); asked once per process."""
    from stylecam.export.engine import EngineError, tensorrt

    try:
        tensorrt()
    except EngineError as e:  # neither tensorrt nor tensorrt_rtx, or too old a TensorRT: it says which and the fix
        return str(e)
    if importlib.util.find_spec("pycuda") is None:
        return "pycuda is not installed (pip install pycuda on a machine with a CUDA driver)"
    try:
        import pycuda.driver as cuda

        cuda.init()
        if cuda.Device.count() == 0:
            return "no CUDA GPU found"
    except Exception as e:  # noqa: BLE001 - any driver failure means: not here
        return f"CUDA is not usable here ({type(e).__name__}: {e})"
    return None


def device_index(device: str) -> int:
    """'auto', 'cuda' → 0; 'cuda:N' or 'N' → N."""
    if device in ("auto", "cuda"):
        return 0
    text = device.split(":")[-1]
    if not text.isdigit():
        raise ValueError(f"device {device!r}: use auto, cuda or cuda:N")
    return int(text)


class TensorRTBackend:
    name = "tensorrt"
    preferred_variant = "fp16"  # INT8 is faster only on paper until measured on a GPU (docs/export.md)

    def __init__(self, threads: int | None = None, shapes=None):
        from stylecam.export.engine import DEFAULT_SHAPES

        self.shapes = shapes or DEFAULT_SHAPES
        self.cuda_context = None
        self._allocations: list = []  # device and pinned host memory, freed by close()
        self._runtime_cache = None  # TensorRT-RTX: (cache, file), saved after the first run and at close
        self._cache_saved = False

    def load(self, bundle: Bundle, variant: str = "fp16", device: str = "auto") -> None:
        import pycuda.driver as cuda

        from stylecam.export.engine import EngineError, build_engine, tensorrt

        trt, flavor = tensorrt()
        index = device_index(device)
        cuda.init()
        if index >= cuda.Device.count():
            raise EngineError(f"device {device!r}: this machine has {cuda.Device.count()} CUDA GPU(s)")
        self.device = index
        self.cuda_context = cuda.Device(index).retain_primary_context()
        self.cuda_context.push()
        try:
            self.engine_path = build_engine(bundle, variant, self.shapes, device=index)
            self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
            self.engine = self.runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
            if self.engine is None:
                raise EngineError(f"{self.engine_path}: TensorRT could not load it (built for another GPU or "
                                  "version?); run: stylecam build --force")
            self.context = self._execution_context(flavor)
            self._bind(trt, cuda)
            self.variant, self.flavor = variant, flavor
        except BaseException:  # nothing half-made stays on the GPU
            self._release()
            self.cuda_context.pop()
            self.cuda_context.detach()
            self.cuda_context = None
            raise
        self.cuda_context.pop()

    def _execution_context(self, flavor: str):
        """An execution context; on TensorRT-RTX one whose JIT-compiled kernels come from (and go to) the runtime
        cache beside the engine."""
        if flavor != "rtx" or not hasattr(self.engine, "create_runtime_config"):
            return self.engine.create_execution_context()
        config = self.engine.create_runtime_config()
        cache = config.create_runtime_cache()
        path = self.engine_path.with_suffix(".rtxcache")
        if path.is_file() and not cache.deserialize(path.read_bytes()):
            log.info("%s was written for another GPU, driver or TensorRT-RTX: compiling afresh", path.name)
        config.set_runtime_cache(cache)
        self._runtime_cache = (cache, path)
        return self.engine.create_execution_context(config)

    def _bind(self, trt, cuda) -> None:
        """I/O names and types, the profile, and buffers for its largest shapes, their addresses set."""
        from stylecam.export.engine import EngineError, Profile

        from .. import ops

        engine = self.engine
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.input = next(n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
        self.output = next(n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT)
        self.in_dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(self.input)))
        self.out_dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(self.output)))
        self.profile = Profile(*(tuple(s) for s in engine.get_tensor_profile_shape(self.input, 0)))
        self.max_input = tuple(self.profile.max[2:])  # larger frames run in tiles (stylecam.tiles)
        self.shape = None
        self._set_shape(self.profile.max)  # the output's largest shape comes from the engine, not assumed
        out_max = tuple(self.context.get_tensor_shape(self.output))
        if any(d < 0 for d in out_max):
            raise EngineError(f"{self.engine_path}: output shape {out_max} is unknown at the profile's largest input")
        self.host_in = self._pinned(cuda, int(np.prod(self.profile.max)), self.in_dtype)
        self.host_out = self._pinned(cuda, int(np.prod(out_max)), self.out_dtype)
        self.dev_in, self.dev_out = self._device(cuda, self.host_in.nbytes), self._device(cuda, self.host_out.nbytes)
        self.context.set_tensor_address(self.input, int(self.dev_in))
        self.context.set_tensor_address(self.output, int(self.dev_out))
        self.stream = cuda.Stream()
        # GPU-side stage times without extra synchronisation: events around the copies, read after the sync
        self.events = [cuda.Event() for _ in range(4)]
        self.last_stages_ms: dict[str, float] = {}
        # the fused path writes a frame-sized image from the output: only for a network whose output is its input's
        # size in RGB (every stylecam network; a foreign engine may differ)
        same_size = out_max[1] == 3 and out_max[2:] == tuple(self.profile.max[2:])
        self.device_ops = ops.backend().name == "cuda" and same_size
        if self.device_ops:  # a frame has as many bytes as the largest input tensor has elements
            self.frame_bytes = int(np.prod(self.profile.max))  # larger frames (scale < 1) take the host path
            self.host_frame = self._pinned(cuda, self.frame_bytes, np.dtype(np.uint8))
            self.dev_frame, self.dev_result = self._device(cuda, self.frame_bytes), self._device(cuda, self.frame_bytes)

    def _pinned(self, cuda, count: int, dtype: np.dtype) -> np.ndarray:
        array = cuda.pagelocked_empty(count, dtype)
        self._allocations.append(array.base)  # pycuda's HostAllocation: free() unpins it
        return array

    def _device(self, cuda, nbytes: int):
        allocation = cuda.mem_alloc(nbytes)
        self._allocations.append(allocation)
        return allocation

    def covers(self, shape: tuple[int, ...]) -> bool:
        """Whether a network input of this shape fits the engine's profile (min and max)."""
        return self.profile.covers(shape)

    def _set_shape(self, shape: tuple[int, ...]) -> None:
        shape = tuple(int(s) for s in shape)
        if not self.profile.covers(shape):
            raise ValueError(f"input {shape} is outside the engine's profile {self.profile.min}.."
                             f"{self.profile.max}; rebuild with: stylecam build BUNDLE --shapes HxW,...")
        if shape != self.shape:
            if not self.context.set_input_shape(self.input, shape):
                raise RuntimeError(f"TensorRT refused input shape {shape} for {self.engine_path.name}")
            self.shape = shape

    def _execute(self) -> None:
        if not self.context.execute_async_v3(self.stream.handle):
            raise RuntimeError("TensorRT execution failed")

    def _mark(self, i: int) -> None:
        self.events[i].record(self.stream)

    def _finish(self) -> None:
        """Wait for the stream, then read the stage times; the first run on TensorRT-RTX saves its kernels."""
        self.stream.synchronize()
        e = self.events
        self.last_stages_ms = {"h2d": e[1].time_since(e[0]), "gpu": e[2].time_since(e[1]),
                               "d2h": e[3].time_since(e[2])}
        if self._runtime_cache is not None and not self._cache_saved:
            self._save_runtime_cache()
            self._cache_saved = True

    def _save_runtime_cache(self) -> None:
        cache, path = self._runtime_cache
        try:
            atomic_write_bytes(path, bytes(cache.serialize()))
        except OSError as e:  # a read-only cache folder costs start-up time, not frames
            log.warning("could not save the TensorRT-RTX runtime cache %s: %s", path, e)

    def stylize_frame(self, bgr: np.ndarray, strength: float, stride: int, margin: int,
                      size: tuple[int, int] | None = None) -> np.ndarray:
        """BGR8 H×W×3 → stylized BGR8, everything between the two copies on the GPU (needs ``device_ops``); the
        network runs at ``size`` (H, W) where given (a scale of the frame), and its output is resized back."""
        import pycuda.driver as cuda

        from .. import ops

        if bgr.nbytes > self.frame_bytes:
            raise ValueError(f"a {bgr.shape[1]}x{bgr.shape[0]} frame is larger than the GPU frame buffers "
                             f"({self.frame_bytes} bytes, the engine profile's largest input); Stylizer runs such "
                             "frames through host pre/post-processing")
        g = ops.geometry(*bgr.shape[:2], stride, margin, size)
        shape = (1, 3, g.out_h, g.out_w)
        self.cuda_context.push()
        try:
            self._set_shape(shape)
            host = self.host_frame[:bgr.size].reshape(bgr.shape)
            np.copyto(host, bgr)
            self._mark(0)
            cuda.memcpy_htod_async(self.dev_frame, host, self.stream)
            self._mark(1)
            ops.stylize(ops.DeviceArray(int(self.dev_frame), bgr.shape, np.dtype(np.uint8)),
                        ops.DeviceArray(int(self.dev_in), shape, self.in_dtype),
                        ops.DeviceArray(int(self.dev_out), shape, self.out_dtype),
                        ops.DeviceArray(int(self.dev_result), bgr.shape, np.dtype(np.uint8)), g, strength,
                        self._execute, self.stream.handle)
            self._mark(2)
            cuda.memcpy_dtoh_async(host, self.dev_result, self.stream)
            self._mark(3)
            self._finish()  # "gpu": pre-processing, inference and post-processing kernels
            return host.copy()  # the pinned buffer is reused by the next frame
        finally:
            self.cuda_context.pop()

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        import pycuda.driver as cuda

        self.cuda_context.push()
        try:
            self._set_shape(tensor.shape)
            host_in = self.host_in[:tensor.size].reshape(tensor.shape)
            np.copyto(host_in, tensor, casting="same_kind")
            self._mark(0)
            cuda.memcpy_htod_async(self.dev_in, host_in, self.stream)
            self._mark(1)
            self._execute()
            self._mark(2)
            out_shape = tuple(self.context.get_tensor_shape(self.output))
            host_out = self.host_out[:int(np.prod(out_shape))].reshape(out_shape)
            cuda.memcpy_dtoh_async(host_out, self.dev_out, self.stream)
            self._mark(3)
            self._finish()
            return host_out.astype(np.float32)  # a copy: the pinned buffer is reused by the next frame
        finally:
            self.cuda_context.pop()

    def close(self) -> None:
        """Free the engine, its context, every buffer, the stream and the events, in the GPU's context; then
        release that context. Safe to call twice and from any thread."""
        if self.cuda_context is None:
            return
        self.cuda_context.push()
        try:
            if self._runtime_cache is not None:
                self._save_runtime_cache()
            self._release()
        finally:
            self.cuda_context.pop()
            self.cuda_context.detach()
            self.cuda_context = None

    def _release(self) -> None:
        """Drop what load() made, newest first (the context before its engine), with the GPU context current."""
        for name in ("context", "engine", "runtime", "stream", "events", "host_in", "host_out", "host_frame"):
            self.__dict__.pop(name, None)
        self._runtime_cache = None
        while self._allocations:
            self._allocations.pop().free()

    def info(self) -> dict:
        from stylecam.export.engine import tensorrt

        trt, _ = tensorrt()
        return {"backend": self.name, "version": trt.__version__, "variant": self.variant, "device": self.device,
                "engine": str(self.engine_path), "profile": [self.profile.min, self.profile.max],
                "pre_post": "cuda" if self.device_ops else "numpy", "gpu_memory_mb": self.gpu_memory_mb()}

    def gpu_memory_mb(self) -> dict:
        """What this backend holds on the GPU: its I/O buffers and TensorRT's activation memory for the
        profile's largest shape; and the whole device's use (other processes and the CUDA context included)."""
        import pycuda.driver as cuda

        buffers = self.host_in.nbytes + self.host_out.nbytes
        if self.device_ops:
            buffers += 2 * self.host_frame.nbytes
        engine = self.engine
        activations = getattr(engine, "device_memory_size_v2", None) or getattr(engine, "device_memory_size", 0)
        self.cuda_context.push()
        try:
            free, total = cuda.mem_get_info()
        finally:
            self.cuda_context.pop()
        mb = 1 / 2 ** 20
        return {"buffers": round(buffers * mb, 1), "activations": round(activations * mb, 1),
                "device_used": round((total - free) * mb, 1), "device_total": round(total * mb, 1)}


def create(**options) -> TensorRTBackend:
    return TensorRTBackend(**options)
