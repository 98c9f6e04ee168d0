"""cpp_ext's kernels against the NumPy/OpenCV reference (frames.py), within 1 LSB.

Without a GPU the library's host twins run the kernels' per-pixel code on the CPU, so the arithmetic (reflect
indices, bilinear taps, NV12 coefficients, fp16 conversion, rounding) is checked in CI; the kernel launches
themselves are checked by the GPU tests, which skip here with the reason ``ops.backend()`` gives.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from stylecam import frames, ops
from stylecam.frames import FrameError

LSB = 1 / 255
built = pytest.mark.skipif(ops.find_library() is None, reason="the CUDA extension was not built (no nvcc)")
on_gpu = pytest.mark.skipif(ops.backend().name != "cuda", reason=f"no CUDA kernels here: {ops.backend().reason}")

# (h, w, stride, margin, resize to): 1×1, odd widths, a margin larger than the frame, up- and down-scaling (area
# averaging at whole and fractional factors, down to a tenth and to one pixel)
PRE = [(1, 1, 4, 0, None), (1, 1, 4, 8, None), (1, 7, 8, 3, None), (37, 53, 4, 16, None), (37, 53, 8, 2, (20, 31)),
       (37, 53, 4, 0, (80, 101)), (480, 641, 4, 16, (360, 480)), (480, 640, 4, 16, (240, 320)),
       (480, 641, 4, 16, (48, 64)), (100, 100, 4, 0, (37, 37)), (1, 7, 4, 0, (1, 3)), (9, 9, 4, 2, (1, 1))]
# (frame h, w, network content h, w): the network at a scale of the frame, then resized back
SCALED = [(37, 53, 19, 27), (480, 641, 48, 64), (480, 640, 355, 473), (45, 77, 90, 154), (1, 7, 1, 3), (9, 9, 1, 1)]
DTYPES = [np.float32, np.float16]


def frame(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def lsb(a, b):
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())


def nv12(h, w, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (h, w), dtype=np.uint8), rng.integers(0, 256, (h // 2, w // 2, 2), dtype=np.uint8)


def network_output(g, dtype, seed=0):
    """Values a little outside [0, 1], as networks give, so clamping is exercised."""
    return (np.random.default_rng(seed).random((1, 3, g.out_h, g.out_w)) * 1.4 - 0.2).astype(dtype)


def test_backend_says_which_path_and_why(monkeypatch):
    active = ops.backend()
    assert active.name in ("cuda", "numpy") and active.reason
    if active.name == "numpy" and ops.find_library() is not None:
        assert str(ops.find_library()) in active.reason
        if ops.nvidia_driver():  # a driver that answers: its own words
            assert "CUDA error" in active.reason
        else:  # no driver at all: said plainly, not as "insufficient driver version" (CUDA error 35)
            assert "no NVIDIA GPU or driver" in active.reason and "error 35" not in active.reason
    monkeypatch.setenv("STYLECAM_OPS", "numpy")
    ops.backend.cache_clear()
    try:
        assert ops.backend() == ops.OpsBackend("numpy", "STYLECAM_OPS=numpy asks for the NumPy/OpenCV path")
    finally:
        monkeypatch.undo()
        ops.backend.cache_clear()


@pytest.mark.skipif(not (shutil.which("nvcc") or os.path.exists("/usr/local/cuda/bin/nvcc")),
                    reason="no CUDA compiler here")
def test_the_package_build_compiles_the_extension_for_jetson_rtx_and_hopper():
    assert ops.find_library() is not None, "nvcc is on PATH but the install built no libstylecam_ops.so"
    assert {75, 86, 87, 89, 90} <= set(ops.architectures(ops.library()))


@pytest.mark.skipif(not (shutil.which("nvcc") or os.path.exists("/usr/local/cuda/bin/nvcc")) or not shutil.which(
    "cmake"), reason="needs nvcc and cmake")
def test_cpp_ext_configures_alone_and_a_users_cmake_architectures_win(tmp_path):
    root = Path(__file__).parents[1]
    done = subprocess.run(["cmake", "-S", str(root / "cpp_ext"), "-B", str(tmp_path), "-DCMAKE_CUDA_ARCHITECTURES=90"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "building the CUDA extension for sm 90\n" in done.stdout  # not the default list
    assert "CMake Warning" not in done.stderr and "Warning" not in done.stdout


def _libasan() -> str | None:
    gcc = shutil.which("gcc")
    path = gcc and subprocess.run([gcc, "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    return path if path and os.path.isabs(path) else None


@pytest.mark.slow
@pytest.mark.skipif(not (shutil.which("nvcc") or os.path.exists("/usr/local/cuda/bin/nvcc")) or not shutil.which(
    "cmake") or _libasan() is None, reason="needs nvcc, cmake and gcc's AddressSanitizer")
def test_the_host_twins_touch_no_memory_outside_their_buffers(tmp_path):
    """The kernels' per-pixel code (reflect indices, area spans, bilinear taps) under AddressSanitizer, in the host
    twins, through this file's reference tests: an out-of-bounds read or write aborts the run. A GPU's own check is
    compute-sanitizer (scripts/gpu_checks.sh)."""
    root = Path(__file__).parents[1]
    flags = "-DCMAKE_CUDA_FLAGS=-Xcompiler=-fsanitize=address,-fno-omit-frame-pointer -lasan"
    for cmd in (["cmake", "-S", str(root), "-B", str(tmp_path), "-DSTYLECAM_CUDA_ARCHITECTURES=75", flags],
                ["cmake", "--build", str(tmp_path)]):
        done = subprocess.run(cmd, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    log = tmp_path / "asan"  # the report of the first bad access (pytest would swallow it from stderr)
    env = {**os.environ, "LD_PRELOAD": _libasan(), "ASAN_OPTIONS": f"detect_leaks=0:log_path={log}",
           "STYLECAM_OPS_LIBRARY": str(tmp_path / "cpp_ext" / "libstylecam_ops.so")}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k",
                           "matches or resizes or 4k or fused"], env=env, capture_output=True, text=True, cwd=root)
    reports = "".join(p.read_text()[:3000] for p in tmp_path.glob("asan*"))
    assert not reports, reports
    assert done.returncode == 0 and " passed" in done.stdout, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.mark.skipif(shutil.which("cmake") is None, reason="no cmake on PATH")
def test_the_package_build_needs_no_compiler_without_cuda(tmp_path):
    """A machine with no C/C++ or CUDA compiler (python:slim, a kiosk image) still configures the build."""
    root = Path(__file__).parents[1]
    env = {**os.environ, "CC": "/nonexistent", "CXX": "/nonexistent", "CUDACXX": "/nonexistent"}
    done = subprocess.run(["cmake", "-S", str(root), "-B", str(tmp_path)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "skipping the CUDA extension" in done.stdout


@built
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("h, w, stride, margin, size", PRE)
def test_bgr8_to_tensor_matches_the_reference(h, w, stride, margin, size, dtype):
    bgr = frame(h, w)
    g = ops.geometry(h, w, stride, margin, size)
    out = np.full((1, 3, g.out_h, g.out_w), np.nan, dtype)
    ops.bgr8_to_tensor(bgr, out, g)
    # without resize, exact up to fp16 rounding; with it, both round the resized image to 8 bits, OpenCV with
    # fixed-point weights: 1 LSB at a few pixels
    assert lsb(out, frames.to_tensor(bgr, stride, margin, size=size)) <= LSB + (1e-3 if dtype == np.float16 else 1e-6)


@built
def test_a_4k_frame_and_a_pitched_crop():
    big = frame(2160, 3840, seed=1)
    crop = big[7:1087, 5:1925]  # 1080×1920 with a 3840-pixel row pitch: no copy needed
    for src in (big, crop):
        g = ops.geometry(*src.shape[:2], 4, 16)
        out = np.empty((1, 3, g.out_h, g.out_w), np.float16)
        ops.bgr8_to_tensor(src, out, g)
        assert lsb(out, frames.to_tensor(src, 4, 16)) <= LSB
    y = network_output(g, np.float16)
    dst = np.empty_like(crop)
    ops.tensor_to_bgr8(y, g, crop, dst, 0.5)
    assert lsb(dst, frames.from_tensor(y.astype(np.float32), crop, 0.5, 16)) <= 1


@built
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("strength", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("h, w, margin", [(1, 1, 0), (1, 1, 8), (37, 53, 16), (480, 641, 3)])
def test_tensor_to_bgr8_matches_the_reference(h, w, margin, strength, dtype):
    bgr = frame(h, w)
    g = ops.geometry(h, w, 4, margin)
    y = network_output(g, dtype)
    out = np.zeros_like(bgr)
    ops.tensor_to_bgr8(y, g, bgr, out, strength)
    assert lsb(out, frames.from_tensor(y.astype(np.float32), bgr, strength, margin)) <= 1
    ops.tensor_to_bgr8(y, g, bgr, bgr, strength)  # in place, as a camera buffer would be reused
    assert np.array_equal(bgr, out)


@built
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("strength", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("h, w, ch, cw", SCALED)
def test_tensor_to_bgr8_resizes_to_the_frame_as_the_numpy_path(h, w, ch, cw, strength, dtype):
    bgr = frame(h, w)
    g = ops.geometry(h, w, 4, 16, (ch, cw))
    y = network_output(g, dtype)
    out = np.zeros_like(bgr)
    ops.tensor_to_bgr8(y, g, bgr, out, strength)
    # the Stylizer's path at a scale: the content to BGR8, resized to the frame (OpenCV), then blended
    content = frames.to_bgr8(frames.crop_output(y.astype(np.float32), ch, cw, 16), np.zeros((ch, cw, 3), np.uint8), 1)
    assert lsb(out, frames.to_frame_size(content, bgr, strength)) <= 1
    with pytest.raises(FrameError, match=rf"dst: expected uint8 \({h}, {w}, 3\)"):
        ops.tensor_to_bgr8(y, g, bgr, np.zeros((ch, cw, 3), np.uint8), strength)  # dst is the frame's size


@built
@pytest.mark.parametrize("h, w, size", [(2, 2, None), (36, 54, None), (480, 640, None), (480, 640, (360, 480)),
                                        (36, 54, (50, 70))])
def test_nv12_to_tensor_matches_opencv(h, w, size):
    y, uv = nv12(h, w)
    g = ops.geometry(h, w, 4, 8, size)
    out = np.empty((1, 3, g.out_h, g.out_w), np.float32)
    ops.nv12_to_tensor(y, uv, out, g)
    ref = frames.to_tensor(frames.nv12_to_bgr(y, uv), 4, 8, size=size)
    # OpenCV rounds the converted image to uint8, and with a resize rounds again: 0.5 LSB, or 1.5 with resize
    assert lsb(out, ref) <= (1.5 if size else 0.5) * LSB + 1e-6


@built
def test_bad_arguments_are_refused_with_what_was_expected():
    g = ops.geometry(8, 8, 4)
    good = np.empty((1, 3, 8, 8), np.float32)
    with pytest.raises(frames.FrameError, match="expected uint8"):
        ops.bgr8_to_tensor(np.zeros((8, 8, 3), np.float32), good, g)
    with pytest.raises(frames.FrameError, match="packed pixels"):
        ops.bgr8_to_tensor(frame(8, 16)[:, ::2], good, g)  # every other pixel: not packed
    with pytest.raises(frames.FrameError, match="packed pixels"):
        ops.bgr8_to_tensor(frame(8, 8)[::-1], good, g)  # bottom-up rows: a negative pitch
    with pytest.raises(ValueError, match=r"dense float32 or float16 tensor of shape \(1, 3, 8, 8\)"):
        ops.bgr8_to_tensor(frame(8, 8), np.empty((1, 3, 8, 12), np.float32), g)
    with pytest.raises(ValueError, match="strength must be in"):
        ops.tensor_to_bgr8(good, g, frame(8, 8), frame(8, 8), 1.5)
    with pytest.raises(frames.FrameError, match="even H and W"):
        ops.nv12_to_tensor(np.zeros((7, 8), np.uint8), np.zeros((3, 4, 2), np.uint8), good, g)
    # geometry that does not fit the tensor is refused by the library itself, with CUDA's name for it
    with pytest.raises(ops.OpsError, match="invalid argument"):
        ops.bgr8_to_tensor(frame(8, 8), good, ops.Geometry(8, 8, 8, 8, 4, 4))
    with pytest.raises(TypeError, match="all arrays on the GPU or all as NumPy"):
        ops.bgr8_to_tensor(frame(8, 8), ops.DeviceArray(1 << 20, (1, 3, 8, 8), np.dtype(np.float32)), g)


# --- on a GPU: the kernels themselves, through torch CUDA tensors --------------------------------------------------

@on_gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("h, w, stride, margin, size", [*PRE, (2160, 3840, 4, 16, None)])
def test_gpu_bgr8_to_tensor(h, w, stride, margin, size, dtype):
    torch = pytest.importorskip("torch")
    bgr = frame(h, w)
    g = ops.geometry(h, w, stride, margin, size)
    out = torch.full((1, 3, g.out_h, g.out_w), float("nan"), dtype=getattr(torch, np.dtype(dtype).name),
                     device="cuda")
    ops.bgr8_to_tensor(torch.from_numpy(bgr).cuda(), out, g)
    torch.cuda.synchronize()
    ref = frames.to_tensor(bgr, stride, margin, size=size)
    assert lsb(out.float().cpu().numpy(), ref) <= LSB + (1e-3 if dtype == np.float16 else 1e-6)


@on_gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("strength", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("h, w, margin", [(1, 1, 0), (37, 53, 16), (2160, 3840, 16)])
def test_gpu_tensor_to_bgr8(h, w, margin, strength, dtype):
    torch = pytest.importorskip("torch")
    bgr = frame(h, w)
    g = ops.geometry(h, w, 4, margin)
    y = network_output(g, dtype)
    padded = torch.zeros((h, w + 5, 3), dtype=torch.uint8, device="cuda")[:, :w]  # a pitched destination
    ops.tensor_to_bgr8(torch.from_numpy(y).cuda(), g, torch.from_numpy(bgr).cuda(), padded, strength)
    torch.cuda.synchronize()
    assert lsb(padded.cpu().numpy(), frames.from_tensor(y.astype(np.float32), bgr, strength, margin)) <= 1


@on_gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("h, w, ch, cw", [*SCALED, (1080, 1920, 540, 960), (720, 1280, 1152, 2048)])
def test_gpu_tensor_to_bgr8_resized(h, w, ch, cw, dtype):
    torch = pytest.importorskip("torch")
    bgr = frame(h, w)
    g = ops.geometry(h, w, 4, 16, (ch, cw))
    y = network_output(g, dtype)
    out = torch.zeros((h, w, 3), dtype=torch.uint8, device="cuda")
    ops.tensor_to_bgr8(torch.from_numpy(y).cuda(), g, torch.from_numpy(bgr).cuda(), out, 0.5)
    torch.cuda.synchronize()
    content = frames.to_bgr8(frames.crop_output(y.astype(np.float32), ch, cw, 16), np.zeros((ch, cw, 3), np.uint8), 1)
    assert lsb(out.cpu().numpy(), frames.to_frame_size(content, bgr, 0.5)) <= 1


@on_gpu
@pytest.mark.parametrize("h, w, size", [(2, 2, None), (1080, 1920, None), (1080, 1920, (720, 1280))])
def test_gpu_nv12_to_tensor(h, w, size):
    torch = pytest.importorskip("torch")
    y, uv = nv12(h, w)
    g = ops.geometry(h, w, 4, 8, size)
    out = torch.empty((1, 3, g.out_h, g.out_w), dtype=torch.float32, device="cuda")
    ops.nv12_to_tensor(torch.from_numpy(y).cuda(), torch.from_numpy(uv).cuda(), out, g,
                       torch.cuda.current_stream().cuda_stream)
    torch.cuda.synchronize()
    ref = frames.to_tensor(frames.nv12_to_bgr(y, uv), 4, 8, size=size)
    assert lsb(out.cpu().numpy(), ref) <= (1.5 if size else 0.5) * LSB + 1e-6


@built
@pytest.mark.parametrize("variant, strength, scale", [("fp32", 1.0, 1.0), ("fp16", 0.6, 1.0), ("fp32", 1.0, 0.5),
                                                      ("fp16", 0.6, 0.37), ("fp32", 0.8, 1.6)])
def test_fused_frame_path_matches_the_stylizer(variant, strength, scale):
    """ops.stylize, the TensorRT backend's one trip through the GPU, run here on the host twins with ONNX Runtime as
    the network: the frame equals the Stylizer's NumPy path within 1 LSB, at the network scales too."""
    import onnxruntime as ort

    from stylecam import Stylizer

    stylizer = Stylizer("candy", backend="onnxruntime", variant=variant, strength=strength, scale=scale)
    bundle = stylizer.bundle
    sess = ort.InferenceSession(str(bundle.model_file(variant)), providers=["CPUExecutionProvider"])
    bgr = frame(95, 131, seed=3)
    g = ops.geometry(95, 131, bundle.stride, bundle.margin, frames.scaled_size(95, 131, scale))
    x = np.empty((1, 3, g.out_h, g.out_w), np.float32)
    y = np.empty_like(x)
    out = np.empty_like(bgr)

    def run():
        y[...] = sess.run(None, {sess.get_inputs()[0].name: x})[0]

    ops.stylize(bgr, x, y, out, g, strength, run)
    ref = stylizer.stylize(bgr)
    # resized, the network's input is OpenCV's 8-bit image to within 1 LSB at a few pixels (its fixed-point
    # bilinear weights), and the network can turn that into 2
    assert lsb(out, ref) <= (1 if scale == 1.0 else 2)
    assert np.abs(out.astype(np.int16) - ref).mean() < 0.35


@built
def test_the_stylizer_takes_the_fused_trip_at_a_network_scale_where_the_frame_fits():
    """The Stylizer's choice between the TensorRT backend's fused trip and host pre/post, made here with a backend
    that does what TensorRTBackend does with cpp_ext (``stylize_frame``), on the host twins with ONNX Runtime."""
    from stylecam import Stylizer

    class FusedOnHost:
        device_ops = True

        def __init__(self, network, frame_bytes):
            self.network, self.frame_bytes, self.trips = network, frame_bytes, []
            self.min_side = 1  # the engine profile's smallest input side

        def covers(self, shape):
            return min(shape[2:]) >= self.min_side

        def infer(self, x):
            return self.network.infer(x)

        def stylize_frame(self, bgr, strength, stride, margin, size=None):
            self.trips.append(size)
            g = ops.geometry(*bgr.shape[:2], stride, margin, size)
            x = np.empty((1, 3, g.out_h, g.out_w), np.float32)
            y, out = np.empty_like(x), np.empty_like(bgr)
            ops.stylize(bgr, x, y, out, g, strength, lambda: y.__setitem__(..., self.network.infer(x)))
            return out

    stylizer = Stylizer("candy", backend="onnxruntime", variant="fp32", strength=0.7, scale=0.5)
    bgr = frame(120, 161, seed=4)
    host = stylizer.stylize(bgr)
    stylizer._backend = fused = FusedOnHost(stylizer._backend, frame_bytes=bgr.nbytes)
    assert lsb(stylizer.stylize(bgr), host) <= 2 and fused.trips == [(60, 80)]  # the network at half size
    fused.frame_bytes = bgr.nbytes - 1  # larger than the GPU's frame buffers: host pre/post, the same frame
    assert np.array_equal(stylizer.stylize(bgr), host) and fused.trips == [(60, 80)]
    fused.frame_bytes, fused.min_side = bgr.nbytes, 200  # under the profile's minimum: host pre/post too
    assert np.array_equal(stylizer.stylize(bgr), host) and fused.trips == [(60, 80)]
