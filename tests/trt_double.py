"""A recording test double for TensorRT (``tensorrt`` or ``tensorrt_rtx``) and pycuda (``pycuda.driver``), so the
TensorRT backend runs, line by line, on a machine without a GPU.

- Device memory is host memory at real addresses, so cpp_ext's host twins can stand in for the kernels.
- Work queued on a stream (copies, events, the engine's execution, kernels) runs only at ``synchronize()``: a
  backend that reads its host buffer before the sync reads stale data, as it would on a GPU.
- The engine computes through ONNX Runtime on the ONNX file it was "built" from.
- Every call is recorded with its thread and the CUDA context current there; what a real TensorRT or driver would
  refuse (executing before the tensor addresses are set, reading an output shape before the input's, freeing
  memory without its context current, work with no context at all) goes to ``errors``.
"""
from __future__ import annotations

import json
import threading
import types
from dataclasses import dataclass, field

import numpy as np

MAGIC = b"FAKEENGINE1\n"


@dataclass
class Recorder:
    calls: list = field(default_factory=list)
    errors: list = field(default_factory=list)

    def call(self, name: str, *args) -> None:
        self.calls.append((name, args, threading.current_thread().name))

    def error(self, message: str) -> None:
        self.errors.append(f"{message} (thread {threading.current_thread().name})")

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


# -- pycuda.driver ------------------------------------------------------------------------------------------------
class FakeCuda(types.ModuleType):
    """``pycuda.driver`` with ``gpus`` devices (names only matter to the engine cache)."""

    def __init__(self, rec: Recorder, gpus: int = 1, total: int = 80 << 30):
        super().__init__("pycuda.driver")
        self.rec, self.gpus, self.total = rec, gpus, total
        self.allocations: list[DeviceAllocation] = []
        self.streams: dict[int, Stream] = {}
        self._local = threading.local()
        cuda = self

        class Device:
            def __init__(self, index: int):
                if not 0 <= index < cuda.gpus:
                    raise RuntimeError(f"cuDeviceGet failed: invalid device ordinal {index}")
                self.index = index

            @staticmethod
            def count() -> int:
                return cuda.gpus

            def retain_primary_context(self):
                rec.call("retain_primary_context", self.index)
                return Context(cuda, self.index)

        class Stream_(Stream):
            def __init__(self):
                super().__init__(cuda)

        class Event_(Event):
            def __init__(self):
                super().__init__(cuda)

        self.Device, self.Stream, self.Event = Device, Stream_, Event_

    # context stack: per thread, as CUDA's
    @property
    def stack(self) -> list:
        if not hasattr(self._local, "stack"):
            self._local.stack = []
        return self._local.stack

    def current(self):
        return self.stack[-1] if self.stack else None

    def need_context(self, what: str):
        ctx = self.current()
        if ctx is None:
            self.rec.error(f"{what} with no CUDA context current")
        return ctx

    def init(self) -> None:
        self.rec.call("init")

    def mem_alloc(self, nbytes: int):
        ctx = self.need_context("mem_alloc")
        a = DeviceAllocation(self, nbytes, ctx)
        self.allocations.append(a)
        self.rec.call("mem_alloc", nbytes)
        return a

    def pagelocked_empty(self, count: int, dtype) -> np.ndarray:
        ctx = self.need_context("pagelocked_empty")
        dtype = np.dtype(dtype)
        host = HostAllocation(self, count * dtype.itemsize, ctx)
        self.allocations.append(host)
        self.rec.call("pagelocked_empty", count, dtype.name)
        return np.ndarray(count, dtype, buffer=host)

    def mem_get_info(self) -> tuple[int, int]:
        self.need_context("mem_get_info")
        used = sum(a.nbytes for a in self.allocations if not a.freed)
        return self.total - used, self.total

    def memcpy_htod_async(self, dest, src: np.ndarray, stream) -> None:
        self.need_context("memcpy_htod_async")
        self.rec.call("memcpy_htod_async", src.nbytes)
        view = self.view(int(dest), (src.nbytes,), np.uint8)
        stream.enqueue(lambda: view.__setitem__(..., src.reshape(-1).view(np.uint8)))

    def memcpy_dtoh_async(self, dest: np.ndarray, src, stream) -> None:
        self.need_context("memcpy_dtoh_async")
        self.rec.call("memcpy_dtoh_async", dest.nbytes)
        view = self.view(int(src), (dest.nbytes,), np.uint8)
        stream.enqueue(lambda: dest.reshape(-1).view(np.uint8).__setitem__(..., view))

    def view(self, pointer: int, shape, dtype) -> np.ndarray:
        """A NumPy view of fake device memory at ``pointer`` (inside one live allocation)."""
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape)) * dtype.itemsize
        for a in self.allocations:
            if isinstance(a, DeviceAllocation) and not a.freed and a.address <= pointer and \
                    pointer + nbytes <= a.address + a.nbytes:
                return np.ndarray(shape, dtype, buffer=a.memory, offset=pointer - a.address)
        raise AssertionError(f"no live device allocation holds {nbytes} bytes at {pointer:#x}")

    def live(self) -> list:
        return [a for a in self.allocations if not a.freed]


class Context:
    def __init__(self, cuda: FakeCuda, device: int):
        self.cuda, self.device, self.detached = cuda, device, False

    def push(self) -> None:
        self.cuda.rec.call("push", self.device)
        self.cuda.stack.append(self)

    def pop(self) -> None:
        self.cuda.rec.call("pop", self.device)
        if not self.cuda.stack or self.cuda.stack[-1] is not self:
            self.cuda.rec.error("pop of a context that is not current")
            return
        self.cuda.stack.pop()

    def detach(self) -> None:
        self.cuda.rec.call("detach", self.device)
        if self.detached:
            self.cuda.rec.error("context detached twice")
        self.detached = True


class _Freeable:
    def free(self) -> None:
        self.cuda.rec.call("free", self.nbytes)
        if self.freed:
            self.cuda.rec.error("double free")
        if self.cuda.current() is not self.context:  # pycuda: "clean-up operation failed" and a leak
            self.cuda.rec.error("memory freed without its context current")
        self.freed = True


class DeviceAllocation(_Freeable):
    def __init__(self, cuda: FakeCuda, nbytes: int, context):
        self.cuda, self.nbytes, self.context, self.freed = cuda, nbytes, context, False
        self.memory = bytearray(max(nbytes, 1))
        self.address = np.frombuffer(self.memory, np.uint8).ctypes.data

    def __int__(self) -> int:
        return self.address


class HostAllocation(bytearray, _Freeable):
    """Pinned host memory: a NumPy array's base, as pycuda's pagelocked arrays have."""

    def __init__(self, cuda: FakeCuda, nbytes: int, context):
        super().__init__(max(nbytes, 1))
        self.cuda, self.nbytes, self.context, self.freed = cuda, nbytes, context, False


class Stream:
    _next = 1

    def __init__(self, cuda: FakeCuda):
        cuda.need_context("Stream()")
        self.cuda, self.queue = cuda, []
        self.handle, Stream._next = 0x5000 + Stream._next, Stream._next + 1
        cuda.streams[self.handle] = self

    def enqueue(self, work) -> None:
        self.queue.append(work)

    def synchronize(self) -> None:
        self.cuda.rec.call("synchronize", self.handle)
        while self.queue:
            self.queue.pop(0)()


class Event:
    def __init__(self, cuda: FakeCuda):
        self.cuda, self.time = cuda, None

    def record(self, stream: Stream) -> None:
        self.time = None
        stream.enqueue(lambda: setattr(self, "time", len(self.cuda.rec.calls) * 0.01))

    def time_since(self, other: Event) -> float:
        if self.time is None or other.time is None:
            self.cuda.rec.error("time_since on an event that has not completed (no synchronize?)")
            return 0.0
        return self.time - other.time


# -- tensorrt ------------------------------------------------------------------------------------------------------
def fake_tensorrt(rec: Recorder, cuda: FakeCuda, name: str = "tensorrt", version: str = "10.13.0",
                  deserialize_fails: bool = False, output_shape=None) -> types.ModuleType:
    """A ``tensorrt`` (or, named ``tensorrt_rtx``, TensorRT-RTX with compute capabilities and a runtime cache)
    module. ``output_shape(input_shape)`` makes a foreign engine whose output is not its input's size."""
    trt = types.ModuleType(name)
    trt.__version__ = version
    trt.TensorIOMode = types.SimpleNamespace(INPUT="INPUT", OUTPUT="OUTPUT")
    trt.DataType = types.SimpleNamespace(FLOAT="FLOAT", HALF="HALF")
    trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(STRONGLY_TYPED=0)
    trt.nptype = lambda dt: {"FLOAT": np.float32, "HALF": np.float16}[dt]
    rtx = name == "tensorrt_rtx"
    if rtx:
        trt.ComputeCapability = types.SimpleNamespace(CURRENT="CURRENT", SM75="SM75", SM80="SM80", SM86="SM86",
                                                      SM89="SM89", SM120="SM120", SM121="SM121")

    class Logger:
        WARNING = 2

        def __init__(self, level):
            self.level = level

    class IProgressMonitor:
        def __init__(self):
            pass

    class Parser:
        def __init__(self, network, logger):
            self.network, self.num_errors = network, 0

        def parse(self, data: bytes) -> bool:
            rec.call("parse", len(data))
            self.network.onnx = data
            return data[:1] != b"\x00"

        def get_error(self, i):
            return "fake parse error"

    class Network:
        onnx = b""

        def get_input(self, i):
            return types.SimpleNamespace(name="input")

    class OptProfile:
        def set_shape(self, name, lo, opt, hi):
            self.shapes = (tuple(lo), tuple(opt), tuple(hi))

    class TimingCache:
        def __init__(self, data: bytes):
            self.data = data or b"timings"

        def serialize(self):
            return self.data

    class Config:
        progress_monitor = None
        num_compute_capabilities = 0

        def add_optimization_profile(self, p):
            self.profile = p

        def set_compute_capability(self, cc, i):
            rec.call("set_compute_capability", cc)
            self.cc = cc

        def create_timing_cache(self, data):
            return TimingCache(data)

        def set_timing_cache(self, cache, ignore_mismatch):
            self.timing = cache

        def get_timing_cache(self):
            return self.timing

    class Builder:
        def __init__(self, logger):
            pass

        def create_network(self, flags):
            return Network()

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return OptProfile()

        def build_serialized_network(self, network, config):
            rec.call("build", getattr(config, "cc", None))
            monitor = config.progress_monitor
            if monitor is not None:
                monitor.phase_start("Building", None, 1)
                monitor.step_complete("Building", 0)
                monitor.phase_finish("Building")
            lo, opt, hi = config.profile.shapes
            header = json.dumps({"min": lo, "opt": opt, "max": hi}).encode()
            return MAGIC + len(header).to_bytes(4, "little") + header + network.onnx

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, blob: bytes):
            cuda.need_context("deserialize_cuda_engine")
            rec.call("deserialize_cuda_engine", len(blob))
            if deserialize_fails or not blob.startswith(MAGIC):
                return None
            n = int.from_bytes(blob[len(MAGIC):len(MAGIC) + 4], "little")
            profile = json.loads(blob[len(MAGIC) + 4:len(MAGIC) + 4 + n])
            return Engine(blob[len(MAGIC) + 4 + n:], profile)

    class RuntimeCache:
        def __init__(self):
            self.data = b""

        def serialize(self):
            rec.call("runtime_cache.serialize")
            return self.data or b"compiled kernels"

        def deserialize(self, data: bytes) -> bool:
            rec.call("runtime_cache.deserialize", len(data))
            self.data = data
            return data == b"compiled kernels"

    class RuntimeConfig:
        def create_runtime_cache(self):
            return RuntimeCache()

        def set_runtime_cache(self, cache):
            rec.call("set_runtime_cache")
            self.cache = cache

    class Engine:
        num_io_tensors = 2
        device_memory_size_v2 = 64 << 20

        def __init__(self, onnx: bytes, profile: dict):
            import onnxruntime as ort

            self.session = ort.InferenceSession(onnx, providers=["CPUExecutionProvider"])
            self.profile = [tuple(profile[k]) for k in ("min", "opt", "max")]

        def get_tensor_name(self, i):
            return ("input", "output")[i]

        def get_tensor_mode(self, name):
            return trt.TensorIOMode.INPUT if name == "input" else trt.TensorIOMode.OUTPUT

        def get_tensor_dtype(self, name):
            return trt.DataType.FLOAT

        def get_tensor_profile_shape(self, name, i):
            return self.profile

        def create_execution_context(self, config=None):
            cuda.need_context("create_execution_context")
            rec.call("create_execution_context", config is not None)
            return ExecutionContext(self)

        if rtx:
            def create_runtime_config(self):
                return RuntimeConfig()

    class ExecutionContext:
        def __init__(self, engine: Engine):
            self.engine, self.shape, self.addresses = engine, None, {}

        def set_input_shape(self, name, shape) -> bool:
            rec.call("set_input_shape", tuple(shape))
            lo, _, hi = self.engine.profile
            if not all(a <= s <= b for a, s, b in zip(lo, shape, hi)):
                return False
            self.shape = tuple(shape)
            return True

        def set_tensor_address(self, name, address):
            rec.call("set_tensor_address", name)
            self.addresses[name] = int(address)

        def get_tensor_shape(self, name):
            if name == "output" and self.shape is None:
                rec.error("get_tensor_shape(output) before set_input_shape")
                return (-1, 3, -1, -1)
            shape = self.shape
            return tuple(output_shape(shape)) if output_shape and name == "output" else shape

        def execute_async_v3(self, stream_handle) -> bool:
            cuda.need_context("execute_async_v3")
            rec.call("execute_async_v3", self.shape)
            if set(self.addresses) != {"input", "output"} or self.shape is None:
                rec.error("execute_async_v3 before every tensor address and the input shape were set")
                return False
            shape, out_shape = self.shape, self.get_tensor_shape("output")
            src, dst = self.addresses["input"], self.addresses["output"]
            session = self.engine.session

            def run():
                x = cuda.view(src, shape, np.float32)
                y = session.run(None, {session.get_inputs()[0].name: x})[0]
                cuda.view(dst, out_shape, np.float32)[...] = y[tuple(slice(0, s) for s in out_shape)]

            cuda.streams[stream_handle].enqueue(run)
            return True

    trt.Logger, trt.IProgressMonitor, trt.OnnxParser, trt.Builder, trt.Runtime = \
        Logger, IProgressMonitor, Parser, Builder, Runtime
    return trt


def fake_kernels(cuda: FakeCuda):
    """``stylecam.ops.stylize`` on fake device memory: the host twins, queued on the stream as kernels are."""
    from stylecam import ops

    def view(a):
        return cuda.view(a.__cuda_array_interface__["data"][0], a.__cuda_array_interface__["shape"],
                         np.dtype(a.__cuda_array_interface__["typestr"]))

    def stylize(frame, tensor_in, tensor_out, result, g, strength, run, stream=0):
        s = cuda.streams[stream]
        s.enqueue(lambda: ops.bgr8_to_tensor(view(frame), view(tensor_in), g))
        run()
        s.enqueue(lambda: ops.tensor_to_bgr8(view(tensor_out), g, view(frame), view(result), strength))

    return stylize
