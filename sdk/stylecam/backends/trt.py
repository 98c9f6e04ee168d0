"""TensorRT backend (Jetson and datacenter GPUs via ``tensorrt``, desktop RTX via ``tensorrt_rtx``).

The engine comes from the engine cache (``stylecam build``), built on first use when missing or stale. Buffers
are pycuda device memory sized for the profile's largest frame plus pinned host staging, on one CUDA stream.
I/O uses named tensors and ``execute_async_v3`` (the TensorRT 10/11 API), and the input shape is set whenever
the frame size changes. Where cpp_ext's kernels run (``stylecam.ops.backend()``), ``stylize_frame`` keeps the
frame on the GPU: BGR8 up (3 bytes a pixel instead of 12), fused pre-processing (with the resize to a network
scale), inference, fused post-processing (with the resize back and the strength blend), BGR8 down; otherwise
pre/post-processing runs on the CPU around ``infer``. Each call leaves CUDA-event times of its copies and kernels
in ``last_stages_ms`` (h2d, gpu, d2h), which the Stylizer's timer and the benchmarks record; ``info()`` says what
the backend holds in GPU memory.
"""
from __future__ import annotations

import importlib.util

import numpy as np

from ..bundle import Bundle


def unavailable_reason() -> str | None:
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
        return f"CUDA is not usable here ({e})"
    return None


class TensorRTBackend:
    name = "tensorrt"
    preferred_variant = "fp16"  # INT8 is faster only on paper until measured on a GPU (README, Export)

    def __init__(self, threads: int | None = None, shapes=None):
        from stylecam.export.engine import DEFAULT_SHAPES

        self.shapes = shapes or DEFAULT_SHAPES

    def load(self, bundle: Bundle, variant: str = "fp16", device: str = "auto") -> None:
        import pycuda.driver as cuda

        from stylecam.export.engine import EngineError, Profile, build_engine, tensorrt

        trt, _ = tensorrt()
        cuda.init()
        # the device's primary context: the one the CUDA runtime (TensorRT, cpp_ext's kernels) uses as well, so all
        # three share pycuda's allocations and stream
        self.cuda_context = cuda.Device(0 if device in ("auto", "cuda") else int(device.split(":")[-1])
                                        ).retain_primary_context()
        self.cuda_context.push()
        try:
            self.engine_path = build_engine(bundle, variant, self.shapes)
            self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
            self.engine = self.runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
            if self.engine is None:
                raise EngineError(f"{self.engine_path}: TensorRT could not load it (built for another GPU or "
                                  "version?); run: stylecam build --force")
            self.context = self.engine.create_execution_context()
            names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
            self.input = next(n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
            self.output = next(n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT)
            self.in_dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(self.input)))
            self.out_dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(self.output)))
            self.profile = Profile(*(tuple(s) for s in self.engine.get_tensor_profile_shape(self.input, 0)))
            self.max_input = tuple(self.profile.max[2:])  # larger frames run in tiles (stylecam.tiles)
            largest = int(np.prod(self.profile.max))  # output has the input's shape
            self.host_in = cuda.pagelocked_empty(largest, self.in_dtype)
            self.host_out = cuda.pagelocked_empty(largest, self.out_dtype)
            self.dev_in = cuda.mem_alloc(self.host_in.nbytes)
            self.dev_out = cuda.mem_alloc(self.host_out.nbytes)
            self.context.set_tensor_address(self.input, int(self.dev_in))
            self.context.set_tensor_address(self.output, int(self.dev_out))
            self.stream = cuda.Stream()
            # GPU-side stage times without extra synchronisation: events around the copies, read after the sync
            self.events = [cuda.Event() for _ in range(4)]
            self.last_stages_ms: dict[str, float] = {}
            self.shape, self.variant = None, variant
            from .. import ops

            self.device_ops = ops.backend().name == "cuda"
            if self.device_ops:  # a frame has as many bytes as the largest input tensor has elements
                self.frame_bytes = largest  # a larger frame (at a network scale < 1) takes the host path
                self.host_frame = cuda.pagelocked_empty(largest, np.uint8)
                self.dev_frame, self.dev_result = cuda.mem_alloc(largest), cuda.mem_alloc(largest)
        finally:
            self.cuda_context.pop()

    def _set_shape(self, shape: tuple[int, ...]) -> None:
        if not self.profile.covers(shape):
            raise ValueError(f"input {shape} is outside the engine's profile {self.profile.min}.."
                             f"{self.profile.max}; rebuild with: stylecam build BUNDLE --shapes HxW,...")
        if shape != self.shape:
            self.context.set_input_shape(self.input, shape)
            self.shape = shape

    def _execute(self) -> None:
        if not self.context.execute_async_v3(self.stream.handle):
            raise RuntimeError("TensorRT execution failed")

    def _mark(self, i: int) -> None:
        self.events[i].record(self.stream)

    def _read_stages(self) -> None:
        """After the stream's sync: host→device copy, the GPU work between (kernels), device→host copy, in ms."""
        e = self.events
        self.last_stages_ms = {"h2d": e[1].time_since(e[0]), "gpu": e[2].time_since(e[1]),
                               "d2h": e[3].time_since(e[2])}

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
            self.stream.synchronize()
            self._read_stages()  # "gpu": pre-processing, inference and post-processing kernels
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
            self.stream.synchronize()
            self._read_stages()
            return host_out.astype(np.float32)  # a copy: the pinned buffer is reused by the next frame
        finally:
            self.cuda_context.pop()

    def info(self) -> dict:
        from stylecam.export.engine import tensorrt

        trt, _ = tensorrt()
        return {"backend": self.name, "version": trt.__version__, "variant": self.variant,
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
