import cv2
import numpy as np
import pytest

from stylecam import FrameError, Stylizer


@pytest.fixture(scope="module")
def stylizer():
    return Stylizer("candy", backend="onnxruntime", threads=2)


@pytest.mark.parametrize("h,w", [(1, 1), (481, 639), (720, 1280)])
def test_any_size_in_same_size_out(stylizer, h, w):
    frame = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    out = stylizer.stylize(frame)
    assert out.shape == (h, w, 3) and out.dtype == np.uint8
    assert out.flags.c_contiguous  # OpenCV's drawing functions refuse other layouts
    cv2.putText(out, "ok", (0, 0), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255))


def test_output_is_stylized_not_copied(stylizer, photo):
    out = stylizer.stylize(photo)
    assert np.abs(out.astype(int) - photo).mean() > 20  # candy repaints the photo


def test_strength_zero_returns_input_and_half_is_between(stylizer, photo):
    np.testing.assert_array_equal(stylizer.stylize(photo, strength=0.0), photo)
    full = stylizer.stylize(photo, strength=1.0).astype(np.float32)
    half = stylizer.stylize(photo, strength=0.5).astype(np.float32)
    assert np.abs(half - (full + photo) / 2).max() <= 1.0  # rounding only


def test_strength_changes_at_runtime_and_is_checked(stylizer, photo):
    stylizer.set_strength(0.0)
    try:
        np.testing.assert_array_equal(stylizer(photo), photo)
    finally:
        stylizer.strength = 1.0
    with pytest.raises(ValueError, match="strength"):
        stylizer.strength = 1.5


def test_scale_runs_the_network_smaller_and_blends_at_full_resolution(stylizer, photo):
    h, w = photo.shape[:2]
    full = stylizer.stylize(photo)
    stylizer.scale = 0.5
    try:
        out = stylizer.stylize(photo)
        half = stylizer.stylize(photo, strength=0.5)
        one_px = stylizer.stylize(photo[:1, :1])
    finally:
        stylizer.scale = 1.0
    assert out.shape == photo.shape and out.dtype == np.uint8 and out.flags.c_contiguous and one_px.shape == (1, 1, 3)
    # the reference: area-downscale, stylize at the frame's own size, bilinear back up
    small = cv2.resize(photo, (round(w / 2), round(h / 2)), interpolation=cv2.INTER_AREA)
    ref = cv2.resize(stylizer.stylize(small), (w, h), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(out, ref)
    assert np.abs(out.astype(int) - full).mean() > 10  # a different painting of the scene, not the same one resized
    # strength blends with the full-resolution frame, so its detail survives the network's lower resolution
    assert np.abs(half.astype(np.float32) - (out.astype(np.float32) + photo) / 2).max() <= 1.0
    for bad in (0.0, 3.0, float("nan")):
        with pytest.raises(ValueError, match="scale must be in"):
            stylizer.scale = bad
    assert stylizer.scale == 1.0 and stylizer.info()["scale"] == 1.0


def test_gray_becomes_bgr_and_bgra_keeps_alpha(stylizer, photo):
    gray = photo[:, :, 1].copy()
    assert stylizer.stylize(gray).shape == photo.shape
    bgra = np.dstack([photo, np.arange(photo.shape[1], dtype=np.uint8)[None].repeat(photo.shape[0], 0)])
    out = stylizer.stylize(bgra)
    assert out.shape == bgra.shape
    np.testing.assert_array_equal(out[:, :, 3], bgra[:, :, 3])
    np.testing.assert_array_equal(out[:, :, :3], stylizer.stylize(photo))


def test_bad_frame_errors_reach_the_user(stylizer):
    with pytest.raises(FrameError, match="uint8"):
        stylizer.stylize(np.zeros((8, 8, 3), np.float64))


def test_set_style_switches(stylizer, photo):
    before = stylizer.stylize(photo)
    stylizer.set_style("wave")
    try:
        assert stylizer.style == "wave"
        assert np.abs(stylizer.stylize(photo).astype(int) - before).mean() > 10
    finally:
        stylizer.set_style("candy")


def test_torch_backend_matches_onnxruntime_on_a_real_photo(stylizer, photo):
    pytest.importorskip("torch")
    ref = Stylizer("candy", backend="torch", device="cpu")
    onnx_fp32 = Stylizer("candy", backend="onnxruntime", variant="fp32", threads=2)
    diff = np.abs(ref.stylize(photo).astype(int) - onnx_fp32.stylize(photo))
    assert diff.max() <= 1  # ONNX vs torch: at most one rounding step per channel


def test_unknown_backend_and_style_are_clear():
    from stylecam.bundle import BundleError

    with pytest.raises(ValueError, match="unknown backend"):
        Stylizer("candy", backend="coreml")
    with pytest.raises(BundleError, match="bundled styles: .*candy"):
        Stylizer("no_such_style")


def test_auto_variant_is_the_backends_best_that_the_bundle_has(scream_copy, photo):
    import json

    from stylecam import backends, load_bundle
    from stylecam.backends.onnxrt import OnnxRuntimeBackend
    from stylecam.backends.trt import TensorRTBackend

    scream = load_bundle(scream_copy)
    assert backends.choose_variant(TensorRTBackend, scream) == "fp16"  # what a Jetson should get
    assert backends.choose_variant(OnnxRuntimeBackend(), scream) == "int8-cpu"  # the CPU provider's integer kernels
    assert backends.choose_variant(TensorRTBackend, scream, "int8") == "int8"  # asked for: kept
    s = Stylizer(scream_copy, backend="onnxruntime", threads=1)
    assert s.info()["variant"] == "int8-cpu"
    int8_cpu = s.stylize(photo)
    manifest = json.loads((scream_copy / "manifest.json").read_text())
    for f in ("model.fp16.onnx", "model.int8-cpu.onnx"):  # e.g. a bundle exported with FP32 only
        del manifest["files"][f]
    (scream_copy / "manifest.json").write_text(json.dumps(manifest))
    assert backends.choose_variant(TensorRTBackend, load_bundle(scream_copy)) == "fp32"
    s = Stylizer(scream_copy, backend="onnxruntime", threads=1)
    assert s.info()["variant"] == "fp32"
    fp32 = s.stylize(photo)
    assert fp32.shape == photo.shape and np.abs(int8_cpu.astype(int) - fp32).mean() < 4  # the gate's 30 dB


def test_onnxruntime_workers_sleep_between_calls_unless_asked(stylizer):
    from stylecam.backends.onnxrt import OnnxRuntimeBackend, session_options

    # spinning workers took the cores from the pipeline's own threads and from other processes (README, Python)
    assert session_options().get_session_config_entry("session.intra_op.allow_spinning") == "0"
    with pytest.raises(RuntimeError, match="allow_spinning"):  # not set: ONNX Runtime's default, spinning
        session_options(2, spinning=True).get_session_config_entry("session.intra_op.allow_spinning")
    assert session_options(3).intra_op_num_threads == 3
    assert stylizer.info()["spinning"] is False
    spinning = OnnxRuntimeBackend(threads=1, spinning=True)
    spinning.load(stylizer.bundle)
    assert spinning.info()["spinning"] is True
