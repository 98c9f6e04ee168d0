"""cpp_ext's kernels against the NumPy/OpenCV reference (frames.py), within 1 LSB.

Without a GPU the library's host twins run the kernels' per-pixel code on the CPU, so the arithmetic (reflect
indices, bilinear taps, NV12 coefficients, fp16 conversion, rounding) is checked in CI; the kernel launches
themselves are checked by the GPU tests, which skip here with the reason ``ops.backend()`` gives.
"""
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from stylecam import frames, ops

LSB = 1 / 255
built = pytest.mark.skipif(ops.find_library() is None, reason="the CUDA extension was not built (no nvcc)")
on_gpu = pytest.mark.skipif(ops.backend().name != "cuda", reason=f"no CUDA kernels here: {ops.backend().reason}")

# (h, w, stride, margin, resize to): 1×1, odd widths, a margin larger than the frame, up- and down-scaling
PRE = [(1, 1, 4, 0, None), (1, 1, 4, 8, None), (1, 7, 8, 3, None), (37, 53, 4, 16, None), (37, 53, 8, 2, (20, 31)),
       (37, 53, 4, 0, (80, 101)), (480, 641, 4, 16, (360, 480))]
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
        assert "CUDA" in active.reason and str(ops.find_library()) in active.reason  # the driver's own words
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
    # without resize, exact up to fp16 rounding; with it, OpenCV rounds the resized image to uint8 (≤ 0.5 LSB)
    assert lsb(out, frames.to_tensor(bgr, stride, margin, size=size)) <= LSB


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
    assert lsb(out.float().cpu().numpy(), frames.to_tensor(bgr, stride, margin, size=size)) <= LSB


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
@pytest.mark.parametrize("variant, strength", [("fp32", 1.0), ("fp16", 0.6)])
def test_fused_frame_path_matches_the_stylizer(variant, strength):
    """ops.stylize, the TensorRT backend's one trip through the GPU, run here on the host twins with ONNX Runtime as
    the network: the frame equals the Stylizer's NumPy path within 1 LSB."""
    import onnxruntime as ort

    from stylecam import Stylizer

    stylizer = Stylizer("candy", backend="onnxruntime", variant=variant, strength=strength)
    bundle = stylizer.bundle
    sess = ort.InferenceSession(str(bundle.model_file(variant)), providers=["CPUExecutionProvider"])
    bgr = frame(45, 77, seed=3)
    g = ops.geometry(45, 77, bundle.stride, bundle.margin)
    x = np.empty((1, 3, g.out_h, g.out_w), np.float32)
    y = np.empty_like(x)
    out = np.empty_like(bgr)

    def run():
        y[...] = sess.run(None, {sess.get_inputs()[0].name: x})[0]

    ops.stylize(bgr, x, y, out, g, strength, run)
    assert lsb(out, stylizer.stylize(bgr)) <= 1
