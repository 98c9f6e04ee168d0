"""Pre/post-processing kernels: cpp_ext's CUDA library when it can run here, the NumPy/OpenCV path otherwise.

``backend()`` says which path is active and why. The kernels follow ``frames.py`` (the reference) exactly:
BGR8 or NV12 → the network tensor (optional resize: area averaging down, bilinear up; reflect padding to the
stride), and the network output → BGR8 (crop, clamp, bilinear resize back to the frame, strength blend,
rounding). They take device arrays: anything with ``__cuda_array_interface__`` (torch and cupy tensors, pycuda
GPUArrays) or a ``DeviceArray`` over a raw pointer, and a CUDA stream, so one library serves every framework.
Given NumPy arrays instead, the library runs the same per-pixel code on the CPU (single-threaded, for checking the
kernels' arithmetic without a GPU, not for speed).
"""
from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from .frames import FrameError, check_strength, padded_size

LIBRARY = "libstylecam_ops.so"
_DTYPES = {np.dtype(np.float32): 0, np.dtype(np.float16): 1}


class OpsError(RuntimeError):
    """A kernel call failed; the message names CUDA's error."""


class Geometry(ctypes.Structure):
    """Where the frame lands in the network tensor (``stylecam_geometry`` in cpp_ext/include/stylecam_ops.h)."""
    _fields_ = [(name, ctypes.c_int) for name in ("out_h", "out_w", "content_h", "content_w", "top", "left")]

    def __repr__(self) -> str:
        return "Geometry(" + ", ".join(f"{n}={getattr(self, n)}" for n, _ in self._fields_) + ")"


def geometry(h: int, w: int, stride: int, margin: int = 0, size: tuple[int, int] | None = None) -> Geometry:
    """The layout ``frames.to_tensor`` gives an h×w frame, resized to ``size`` (H, W) first when given."""
    ch, cw = size or (h, w)
    return Geometry(*padded_size(ch, cw, stride, margin), ch, cw, margin, margin)


@dataclass(frozen=True)
class DeviceArray:
    """A raw device pointer (pycuda ``DeviceAllocation``, TensorRT buffers) seen as an array."""
    pointer: int
    shape: tuple[int, ...]
    dtype: np.dtype
    strides: tuple[int, ...] | None = None  # bytes; None = C-contiguous

    @property
    def __cuda_array_interface__(self) -> dict:
        return {"shape": self.shape, "typestr": np.dtype(self.dtype).str, "data": (int(self.pointer), False),
                "strides": self.strides, "version": 3}


@dataclass(frozen=True)
class OpsBackend:
    name: str  # "cuda" or "numpy"
    reason: str
    library: str | None = None
    architectures: tuple[int, ...] = ()


def find_library() -> Path | None:
    """``$STYLECAM_OPS_LIBRARY``, else the library the package build installed beside stylecam."""
    if os.environ.get("STYLECAM_OPS_LIBRARY"):
        return Path(os.environ["STYLECAM_OPS_LIBRARY"])
    import stylecam

    return next((Path(p) / LIBRARY for p in stylecam.__path__ if (Path(p) / LIBRARY).is_file()), None)


@cache
def library() -> ctypes.CDLL:
    """The loaded CUDA library; OpsError says why it cannot be had."""
    path = find_library()
    if path is None:
        raise OpsError("the CUDA extension was not built (no CUDA compiler when stylecam was installed); "
                       "reinstall with nvcc on PATH to build it")
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as e:
        raise OpsError(f"{path} does not load ({e}); reinstall stylecam to rebuild it") from e
    p, size, i, g = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, Geometry
    signatures = {
        "bgr8_to_tensor": [p, size, i, i, p, i, g],
        "nv12_to_tensor": [p, size, p, size, i, i, p, i, g],
        "tensor_to_bgr8": [p, i, g, i, i, p, size, p, size, ctypes.c_float],
    }
    for name, args in signatures.items():
        getattr(lib, f"stylecam_{name}").argtypes = [*args, p]  # + the stream
        getattr(lib, f"stylecam_host_{name}").argtypes = args
    lib.stylecam_ops_device_count.argtypes = [ctypes.POINTER(ctypes.c_int)]
    lib.stylecam_ops_error_string.restype = ctypes.c_char_p
    lib.stylecam_ops_architectures.restype = ctypes.c_char_p
    return lib


def architectures(lib: ctypes.CDLL) -> tuple[int, ...]:
    return tuple(int(a) for a in lib.stylecam_ops_architectures().decode().split(","))


@cache
def backend() -> OpsBackend:
    """Which pre/post-processing path runs here and why (``STYLECAM_OPS=numpy`` forces the NumPy path)."""
    if os.environ.get("STYLECAM_OPS", "").lower() == "numpy":
        return OpsBackend("numpy", "STYLECAM_OPS=numpy asks for the NumPy/OpenCV path")
    try:
        lib = library()
    except OpsError as e:
        return OpsBackend("numpy", str(e))
    where, archs = str(find_library()), architectures(lib)
    sms = ", ".join(f"sm_{a}" for a in archs)
    count = ctypes.c_int(0)
    err = lib.stylecam_ops_device_count(ctypes.byref(count))
    if err and not nvidia_driver():
        return OpsBackend("numpy", f"{where} ({sms}) is built, but this machine has no NVIDIA GPU or driver", where,
                          archs)
    if err:
        return OpsBackend("numpy", f"{where} ({sms}) cannot run here: {_error(lib, err)}", where, archs)
    if count.value == 0:
        return OpsBackend("numpy", f"{where} ({sms}) is built but there is no CUDA GPU", where, archs)
    return OpsBackend("cuda", f"{count.value} CUDA GPU(s); {where} ({sms})", where, archs)


def nvidia_driver() -> bool:
    """Whether the NVIDIA driver's CUDA library loads: without it every CUDA call says 'insufficient driver'
    (error 35), which reads like a version problem on a machine that has no GPU at all."""
    try:
        ctypes.CDLL("libcuda.so.1" if os.name != "nt" else "nvcuda.dll")
        return True
    except OSError:
        return False


def _error(lib: ctypes.CDLL, code: int) -> str:
    return f"{lib.stylecam_ops_error_string(code).decode()} (CUDA error {code})"


@dataclass(frozen=True)
class _View:
    pointer: int
    shape: tuple[int, ...]
    dtype: np.dtype
    strides: tuple[int, ...]
    device: bool


def _view(a, what: str) -> _View:
    if isinstance(a, np.ndarray):
        return _View(a.ctypes.data, a.shape, a.dtype, a.strides, False)
    cai = getattr(a, "__cuda_array_interface__", None)
    if cai is None:
        raise TypeError(f"{what}: expected a NumPy array or a CUDA array (__cuda_array_interface__), "
                        f"got {type(a).__name__}")
    dtype = np.dtype(cai["typestr"])
    shape = tuple(cai["shape"])
    return _View(cai["data"][0], shape, dtype, tuple(cai.get("strides") or _dense(shape, dtype)), True)


def _dense(shape: tuple[int, ...], dtype: np.dtype) -> tuple[int, ...]:
    """Byte strides of a C-contiguous array."""
    return tuple(int(np.prod(shape[i + 1:])) * dtype.itemsize for i in range(len(shape)))


def _image(a, what: str, h: int | None = None, w: int | None = None, channels: int = 3) -> _View:
    """An 8-bit image whose rows may be pitched but whose pixels are packed."""
    v = _view(a, what)
    shape = (h, w, channels) if h is not None else None
    packed = v.dtype == np.uint8 and len(v.shape) == 3 and v.shape[2] == channels and \
        v.strides[1:] == (channels, 1) and v.strides[0] >= v.shape[1] * channels  # rows top-down, not overlapping
    if not packed or (shape and v.shape != shape):
        raise FrameError(f"{what}: expected uint8 {shape or ('H', 'W', channels)} with packed pixels and top-down "
                         f"rows (the row pitch may vary), got {v.dtype} {v.shape} strides {v.strides}; "
                         "numpy.ascontiguousarray makes one")
    return v


def _tensor(a, what: str, g: Geometry) -> _View:
    v = _view(a, what)
    shape = (1, 3, g.out_h, g.out_w)
    if v.dtype not in _DTYPES or v.shape != shape or v.strides != _dense(shape, v.dtype):
        raise ValueError(f"{what}: expected a dense float32 or float16 tensor of shape {shape}, "
                         f"got {v.dtype} {v.shape} strides {v.strides}")
    return v


def _run(name: str, views: list[_View], args: list, stream: int) -> None:
    if len({v.device for v in views}) != 1:
        raise TypeError(f"{name}: pass all arrays on the GPU or all as NumPy arrays, not a mix")
    lib = library()
    if views[0].device:
        err = getattr(lib, f"stylecam_{name}")(*args, stream)
    else:
        err = getattr(lib, f"stylecam_host_{name}")(*args)
    if err:
        raise OpsError(f"{name} failed: {_error(lib, err)}")


def bgr8_to_tensor(src, dst, g: Geometry, stream: int = 0) -> None:
    """BGR8 H×W×3 (rows may be pitched, e.g. a crop) → ``dst`` 1×3×out_h×out_w RGB in [0, 1], queued on stream."""
    s, d = _image(src, "src"), _tensor(dst, "dst", g)
    _run("bgr8_to_tensor", [s, d], [s.pointer, s.strides[0], s.shape[0], s.shape[1], d.pointer,
                                    _DTYPES[d.dtype], g], stream)


def nv12_to_tensor(y, uv, dst, g: Geometry, stream: int = 0) -> None:
    """NV12 → the network tensor: ``y`` is H×W uint8, ``uv`` H/2×W/2×2 (interleaved U, V); H and W even."""
    yv = _view(y, "y")
    if yv.dtype != np.uint8 or len(yv.shape) != 2 or yv.strides[1] != 1 or yv.strides[0] < yv.shape[1] or \
            yv.shape[0] % 2 or yv.shape[1] % 2:
        raise FrameError(f"y: expected an H×W uint8 plane with even H and W, got {yv.dtype} {yv.shape}")
    h, w = yv.shape
    uvv = _image(uv, "uv", h // 2, w // 2, channels=2)
    d = _tensor(dst, "dst", g)
    _run("nv12_to_tensor", [yv, uvv, d], [yv.pointer, yv.strides[0], uvv.pointer, uvv.strides[0], h, w, d.pointer,
                                          _DTYPES[d.dtype], g], stream)


def tensor_to_bgr8(src, g: Geometry, original, dst, strength: float = 1.0, stream: int = 0) -> None:
    """Network output → ``dst`` BGR8, the size of ``original``: crop, clamp, resize where the network ran at
    another size (``frames.to_frame_size``), blend with ``original`` by strength."""
    strength = check_strength(strength)
    s = _tensor(src, "src", g)
    o = _image(original, "original")
    d = _image(dst, "dst", *o.shape[:2])
    _run("tensor_to_bgr8", [s, o, d], [s.pointer, _DTYPES[s.dtype], g, *o.shape[:2], o.pointer, o.strides[0],
                                       d.pointer, d.strides[0], strength], stream)


def stylize(frame, tensor_in, tensor_out, result, g: Geometry, strength: float, run, stream: int = 0) -> None:
    """One frame through a network with fused pre/post-processing: ``frame`` → ``tensor_in`` (resized to the content
    size of ``g``: a network scale), ``run()`` (the network, ``tensor_in`` → ``tensor_out``), ``tensor_out`` →
    ``result`` at the frame's size, blended with ``frame`` by strength. The TensorRT backend passes device arrays;
    NumPy arrays run the host twins, which is how this sequence is tested."""
    bgr8_to_tensor(frame, tensor_in, g, stream)
    run()
    tensor_to_bgr8(tensor_out, g, frame, result, strength, stream)
