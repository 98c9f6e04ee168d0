import subprocess
import sys

import pytest


def test_import_stylecam_does_not_import_torch():
    code = "import sys, stylecam; s = stylecam.Stylizer; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_without_opencv_the_import_says_how_to_get_it():
    code = "import sys; sys.modules['cv2'] = None; import stylecam"  # None in sys.modules: cv2 fails to import
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode != 0
    assert "pip install opencv-python-headless" in out.stderr and "--system-site-packages" in out.stderr


def test_auto_says_why_a_gpu_it_finds_goes_unused(monkeypatch, caplog):
    import logging

    from stylecam import backends, load_bundle
    from stylecam.export import engine
    from stylecam.styles import STYLES_DIR

    bundle = load_bundle(STYLES_DIR / "candy_nano")
    auto = lambda: backends.open_backend("auto", bundle, threads=1)  # noqa: E731

    if backends.available()["tensorrt"]["ok"]:
        pytest.skip("TensorRT runs here: auto takes the GPU")
    caplog.set_level(logging.WARNING, logger="stylecam")
    monkeypatch.setattr(engine, "local_gpu", lambda: None)  # no GPU: nothing to say
    assert auto().name == "onnxruntime" and not caplog.records
    monkeypatch.setattr(engine, "local_gpu", lambda: {"name": "NVIDIA Orin", "compute_capability": "8.7"})
    monkeypatch.setattr(backends, "_warned", set())
    assert auto().name == "onnxruntime"  # a GPU it cannot use: the reason, and the fallback
    why = backends.available()["tensorrt"]["why"]
    assert len(caplog.records) == 1 and f"NVIDIA Orin found, but the tensorrt backend cannot run: {why}" in caplog.text
    auto()  # the next backend (a style switch): said once is enough
    assert len(caplog.records) == 1


def test_bundled_styles_are_listed():
    from stylecam import bundled_styles

    assert {"candy", "mosaic", "udnie", "starry_night", "the_scream", "wave"} <= set(bundled_styles())


def test_backends_report_every_backend_and_why_not():
    from stylecam.backends import available

    status = available()
    assert set(status) == {"tensorrt", "torch", "onnxruntime"}
    assert status["onnxruntime"]["ok"]
    for name, s in status.items():
        assert s["ok"] or s["why"], name
