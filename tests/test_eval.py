"""`stylecam eval`: the metrics move the right way, and the CLI writes a contact sheet."""
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from conftest import shared

pytest.importorskip("torch")
from stylecam import load_bundle  # noqa: E402
from stylecam.export.precision import images  # noqa: E402
from stylecam.styles import STYLES_DIR  # noqa: E402
from stylecam.train.metrics import Evaluator, kid  # noqa: E402


def test_metrics_separate_the_photo_from_its_stylization():
    photos = images(shared("content"), 2, max_side=160, pattern="bsds_val_*")
    ev = Evaluator(photos, crops=8)
    candy = load_bundle(STYLES_DIR / "candy")
    style = shared("styles/candy.jpg")
    stylized, outs = ev.evaluate(candy, style)
    identity, same = ev.evaluate(candy, style, strength=0.0)  # the photo itself
    assert identity["content_loss"] == 0.0 and identity["edge_ssim"] == pytest.approx(1.0)
    assert identity["style_ratio"] == pytest.approx(1.0) and identity["content_error"] == 0.0  # by definition
    assert 0 < stylized["style_ratio"] < 0.9 and stylized["content_error"] > 0
    assert stylized["content_loss"] > 0 and stylized["edge_ssim"] < 1.0
    assert stylized["style_distance"] < 0.5 * identity["style_distance"]  # closer to candy than the photo is
    assert stylized["vgg16_kid"] < identity["vgg16_kid"]
    assert outs[0].shape == photos[0].shape and (same[0] == photos[0]).all()


def test_photos_too_small_to_judge_or_unreadable_are_skipped_with_a_warning(tmp_path, caplog):
    import numpy as np

    rng = np.random.default_rng(0)
    for name, (h, w) in {"a_ok.png": (120, 160), "b_dot.png": (1, 1), "c_strip.png": (3, 2000),
                         "d_narrow.png": (40, 640)}.items():
        cv2.imwrite(str(tmp_path / name), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    (tmp_path / "e_empty.jpg").write_bytes(b"")
    with caplog.at_level("WARNING", logger="stylecam"):
        kept = images(tmp_path, 10, max_side=320)
    assert [p.shape for p in kept] == [(120, 160, 3)]  # d_narrow is 20 px high at a longer side of 320
    assert "b_dot.png: 1x1 is too small" in caplog.text and "c_strip.png: 320x1 is too small" in caplog.text
    assert "d_narrow.png: 320x20 is too small" in caplog.text and "e_empty.jpg: not a readable image" in caplog.text
    assert len(images(tmp_path, 10, max_side=640)) == 2  # d_narrow at its own size, 40 px high, is kept
    photos = images(tmp_path, 10, max_side=640)
    shared("vgg16")
    ev = Evaluator(photos, crops=4)  # the metrics run on the smallest photo it keeps
    metrics, _ = ev.evaluate(load_bundle(STYLES_DIR / "wave_nano"), shared("styles/wave.jpg"), style_size=128)
    assert metrics["content_loss"] > 0


def test_kid_is_zero_for_the_same_distribution_and_grows_with_a_shift():
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 16)), rng.normal(size=(200, 16))
    assert abs(kid(a, b)) < 0.05 and kid(a, b + 1.0) > 0.5


def test_cli_eval_writes_a_contact_sheet(tmp_path):
    shared("content")  # skips without the shared data
    sheet = tmp_path / "sheet.png"
    plot = tmp_path / "tradeoff.png"
    r = subprocess.run([sys.executable, "-m", "stylecam.cli", "eval", "candy", "wave", "--count", "2", "--size",
                        "128x96", "--sheet", str(sheet), "--plot", str(plot)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "candy" in r.stdout and "style ratio" in r.stdout
    img = cv2.imread(str(sheet))
    assert img.shape[0] == 3 * 160 and img.shape[1] % 3 == 0  # rows: the paintings, then photos; 3 columns
    assert img.shape[1] // 3 >= round(128 * 160 / 96)
    assert img[:160, : img.shape[1] // 3].mean() < 10 and img[:160, img.shape[1] // 3:].std() > 10  # paintings
    assert cv2.imread(str(plot)).shape[:2] == (550, 770)  # 7x5 inches at 110 dpi


def test_eval_write_manifest_keeps_the_flicker_numbers(candy_copy):
    import json

    shared("content")
    path = candy_copy / "manifest.json"
    m = json.loads(path.read_text())
    m["metrics"]["flicker"] = {"vtest.avi": {"relative_warping_error": 2.0, "frames": 60}}
    path.write_text(json.dumps(m))
    r = subprocess.run([sys.executable, "-m", "stylecam.cli", "eval", str(candy_copy), "--count", "1", "--size", "96x72",
                        "--write-manifest"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    metrics = load_bundle(candy_copy, verify=False).manifest["metrics"]
    assert metrics["photos"] == 1 and metrics["size"] == "96x72"  # the photo metrics are new
    assert metrics["flicker"] == {"vtest.avi": {"relative_warping_error": 2.0, "frames": 60}}


def test_cli_eval_judges_each_network_scale_as_its_own_column(candy_copy):
    shared("content")
    cli = [sys.executable, "-m", "stylecam.cli", "eval", "--count", "2", "--size", "128x96"]
    r = subprocess.run([*cli, "candy", "--scale", "1,0.5"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rows = {line[:16].strip(): line[16:].split() for line in r.stdout.splitlines()[1:]}  # label, then arch, metrics
    full, half = rows["candy"], rows["candy @0.5x"]
    assert full[0] == half[0] == "small_in" and full[1:] != half[1:]  # another picture, measured as such
    before = (candy_copy / "manifest.json").read_text()
    r = subprocess.run([*cli, str(candy_copy), "--scale", "0.5", "--write-manifest"], capture_output=True, text=True)
    assert r.returncode != 0 and "drop --scale" in r.stderr
    assert (candy_copy / "manifest.json").read_text() == before


def test_cli_eval_judges_against_the_painting_wherever_the_photos_are(candy_copy, tmp_path):
    """Photos from another folder are still judged against the original painting, not the bundle's thumbnail (whose
    smaller picture has other Gram matrices: bsds_val_101087 at 640x480 measured 0.48 against it, 0.25 against the
    painting); where the painting cannot be found, it says so."""
    import json
    import shutil

    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(shared("content/bsds_val_101087.jpg"), photos)
    cli = [sys.executable, "-m", "stylecam.cli", "eval", "--photos", str(photos), "--count", "1", "--size", "128x96"]
    runs = {how: subprocess.run([*cli, "candy", *extra], capture_output=True, text=True) for how, extra in {
        "default": [], "painting": ["--style-image", str(shared("styles/candy.jpg"))],
        "thumbnail": ["--style-image", str(STYLES_DIR / "candy" / "style.jpg")]}.items()}
    assert all(r.returncode == 0 for r in runs.values()), [r.stderr for r in runs.values()]
    row = {how: r.stdout.splitlines()[1] for how, r in runs.items()}
    assert row["default"] == row["painting"] != row["thumbnail"] and "thumbnail" not in runs["default"].stderr
    manifest = candy_copy / "manifest.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "style_image": {"file": "lost.jpg"}}))
    r = subprocess.run([*cli, str(candy_copy)], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.splitlines()[1].split()[1:] == row["thumbnail"].split()[1:]
    assert "'lost.jpg' is not in a styles folder" in r.stderr and "--style-image" in r.stderr


@pytest.mark.parametrize("search, cap", [("pixels", 0.5), ("weights", 2.0)])
def test_style_bound_finds_more_style_within_the_content_error_cap(tmp_path, search, cap):
    """scripts/style_bound.py: a few pixel steps already paint (style ratio under the photo's 1) without passing the
    cap; a few weight steps start from the network's own picture (under this cap) and find no less style than it.
    It writes the photo, the network's output and the optimum side by side."""
    import re

    shared("vgg16")
    out = tmp_path / "optimum.png"
    script = Path(__file__).resolve().parents[1] / "scripts" / "style_bound.py"
    run = subprocess.run([sys.executable, str(script), "candy", str(shared("styles/candy.jpg")),
                          str(sorted(shared("content").glob("bsds_val_*"))[1]), "--cap", str(cap), "--iters", "4",
                          "--search", search, "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    found = re.search(rf"style ratio ([\d.]+) at content error ([\d.]+); the optimum \({search}\) at content error "
                      rf"≤ {cap}: ([\d.]+) at ([\d.]+)", run.stdout)
    assert found, run.stdout
    network, network_error, optimum, error = (float(v) for v in found.groups())
    assert 0 < network < 1 and 0 < optimum < 1 and error <= cap + 0.02  # 8-bit rounding moves it a little
    if search == "weights":  # the first step renders the network itself (in bf16 here, so not to the digit)
        assert network_error < cap and optimum <= network + 0.01
    assert cv2.imread(str(out)).shape == (480, 3 * 640, 3)
