"""Tiled inference: the stitched image equals the whole-frame image, and what cannot be tiled is refused."""
import subprocess
import sys

import cv2
import numpy as np
import pytest

from stylecam import Stylizer
from stylecam.frames import to_tensor
from stylecam.sources import DEMO_CLIP
from stylecam.styles import resolve
from stylecam.tiles import TileError, infer_tiled, receptive_radius, windows

from conftest import BATCHNORM_STYLES

NANO = BATCHNORM_STYLES / "candy_nano"  # a BatchNorm nano: InstanceNorm networks see the whole frame, no tiles


@pytest.fixture(scope="module")
def photo():
    cap = cv2.VideoCapture(str(DEMO_CLIP))
    ok, frame = cap.read()
    assert ok
    return cv2.resize(frame, (700, 530))  # not a tile multiple: ragged last tiles on both axes


@pytest.mark.parametrize("style", [BATCHNORM_STYLES / "the_scream", NANO])
def test_tiles_stitch_into_the_whole_frame_image_bit_for_bit(photo, style):
    whole = Stylizer(style, backend="onnxruntime", variant="fp32", threads=1)
    tiled = Stylizer(style, backend="onnxruntime", variant="fp32", threads=1, tile=160)
    assert np.array_equal(tiled(photo), whole(photo))
    # the measured radius is tight: one stride less context leaves seams
    bundle = whole.bundle
    x = to_tensor(photo, bundle.stride, bundle.margin)
    radius = receptive_radius(bundle.model_file("fp32"), bundle.stride)
    infer = whole._backend.infer
    assert np.array_equal(infer_tiled(infer, x, (160, 160), radius, bundle.stride), infer(x))
    seams = infer_tiled(infer, x, (160, 160), radius - bundle.stride, bundle.stride)
    assert np.abs(seams - infer(x)).max() > 1e-3


def test_a_frame_too_large_for_the_memory_left_runs_in_tiles_into_the_same_image(monkeypatch, caplog):
    import logging

    import stylecam.stylizer
    from stylecam.tiles import available_memory, memory_tile, working_memory

    big = cv2.resize(cv2.VideoCapture(str(DEMO_CLIP)).read()[1], (1300, 1100))
    manifest = resolve(BATCHNORM_STYLES / "the_scream").manifest
    need = working_memory(manifest, "fp32", 1132, 1332)  # the padded input: 16 px margins, stride 4
    assert need == 1132 * 1332 * 32 * 4 * 6 and need > 1 << 30  # over the floor below which no one looks
    assert working_memory(manifest, "int8-cpu", 1132, 1332) < need and working_memory({}, "fp32", 9, 9) is None
    assert memory_tile(need, 1132, 1332, 4 * need) is None and memory_tile(need, 1132, 1332, 1 << 30) == 836

    whole = Stylizer(BATCHNORM_STYLES / "the_scream", backend="onnxruntime", variant="fp32", threads=2)(big)
    monkeypatch.setattr(stylecam.stylizer, "available_memory", lambda: 1 << 30)
    s = Stylizer(BATCHNORM_STYLES / "the_scream", backend="onnxruntime", variant="fp32", threads=2)
    with caplog.at_level(logging.INFO, logger="stylecam"):
        assert np.array_equal(s(big), whole)
    assert "1132x1332 frame needs about 1.1 GB at once and 1.0 GB is free: running it in tiles of 836 px" in caplog.text
    assert available_memory() is None or available_memory() > 0


def test_the_receptive_radius_is_found_once_per_bundle(photo, monkeypatch):
    import stylecam.bundle

    s = Stylizer(NANO, backend="onnxruntime", variant="fp32", threads=1, tile=160)
    first = s(photo)
    hashed = []
    check = stylecam.bundle.sha256_file
    monkeypatch.setattr(stylecam.bundle, "sha256_file", lambda path: hashed.append(path) or check(path))
    assert np.array_equal(s(photo), first) and hashed == []  # the second frame neither hashes nor probes


def whole_frame_network(path):
    """An ONNX network whose every output pixel depends on every input pixel: input minus its mean."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "h", "w"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, "h", "w"])
    axes = helper.make_tensor("axes", TensorProto.INT64, [2], [2, 3])
    graph = helper.make_graph([helper.make_node("ReduceMean", ["x", "axes"], ["m"], keepdims=1),
                               helper.make_node("Sub", ["x", "m"], ["y"])], "global", [x], [y], [axes])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10), path)
    return path


def test_a_network_that_cannot_be_tiled_runs_whole_when_memory_is_short(scream_copy, monkeypatch, caplog):
    import logging

    import stylecam.stylizer
    from stylecam.bundle import load_bundle, write_manifest

    whole_frame_network(scream_copy / "model.onnx")  # 32 channels at full resolution: a 1 GB working set here
    write_manifest(scream_copy, load_bundle(scream_copy, verify=False).manifest)
    probes = []
    monkeypatch.setattr(stylecam.stylizer, "receptive_radius", lambda *a: probes.append(a) or receptive_radius(*a))
    monkeypatch.setattr(stylecam.stylizer, "available_memory", lambda: 1 << 30)
    s = Stylizer(scream_copy, backend="onnxruntime", variant="fp32", threads=1)
    big = np.full((1100, 1300, 3), 128, np.uint8)
    with caplog.at_level(logging.WARNING, logger="stylecam"):
        assert s(big).shape == big.shape and s(big).shape == big.shape
    assert caplog.text.count("cannot be tiled: trying it whole") == 1 and len(probes) == 1  # said and probed once


def test_receptive_radius_follows_the_architecture():
    small, nano = resolve(BATCHNORM_STYLES / "the_scream"), resolve(NANO)
    r_small = receptive_radius(small.model_file("fp32"), small.stride)
    r_nano = receptive_radius(nano.model_file("fp32"), nano.stride)
    assert 0 < r_nano < r_small < 128 and r_small % small.stride == 0  # nano has fewer residual blocks


def test_a_network_that_sees_the_whole_frame_is_refused(tmp_path):
    with pytest.raises(TileError, match="cannot be tiled"):
        receptive_radius(whole_frame_network(tmp_path / "global.onnx"), 4)


def test_windows_cover_the_axis_once_within_the_limit():
    for length, limit in [(1000, 256), (532, 160), (256, 256), (4, 104)]:
        wins = windows(length, limit, 48, 4)
        cores = [(a, b) for _, _, a, b in wins]
        assert cores[0][0] == 0 and cores[-1][1] == length
        assert all(b0 == a1 for (_, b0), (a1, _) in zip(cores, cores[1:]))  # no gap, no overlap
        for w0, w1, c0, c1 in wins:
            assert w1 - w0 <= limit and w0 % 4 == 0 and w0 <= c0 < c1 <= w1
            assert c0 - w0 == min(48, c0) and w1 - c1 == min(48, length - c1)  # full context where the axis goes on
    with pytest.raises(TileError, match="at least 100 px"):
        windows(1000, 96, 48, 4)


@pytest.mark.parametrize("tile", [0, -5, 2.5, "big", True])
def test_a_bad_tile_is_refused_by_name(tile):
    with pytest.raises(TileError, match="tile must be"):
        Stylizer(NANO, backend="onnxruntime", tile=tile)


def test_a_backends_own_maximum_tiles_too(photo):
    # TensorRT sets max_input from its engine profile; a frame beyond it runs in tiles instead of failing
    whole = Stylizer(NANO, backend="onnxruntime", variant="fp32", threads=1)
    limited = Stylizer(NANO, backend="onnxruntime", variant="fp32", threads=1)
    limited._backend.max_input = (200, 300)
    calls = []
    infer = limited._backend.infer
    limited._backend.infer = lambda x: calls.append(x.shape) or infer(x)
    assert np.array_equal(limited(photo), whole(photo))
    assert len(calls) > 1 and all(s[2] <= 200 and s[3] <= 300 for s in calls)


def test_cli_run_with_tiles_writes_the_same_photo(tmp_path, photo):
    src = tmp_path / "photo.png"
    cv2.imwrite(str(src), photo)
    outs = []
    for extra in ([], ["--tile", "256"]):
        out = tmp_path / f"out{len(outs)}.png"
        r = subprocess.run([sys.executable, "-m", "stylecam.cli", "run", "--style", str(NANO), "--backend",
                            "onnxruntime", "--variant", "fp32", "--input", str(src), "--output", str(out), *extra],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        outs.append(cv2.imread(str(out)))
    assert np.array_equal(outs[0], outs[1])
    r = subprocess.run([sys.executable, "-m", "stylecam.cli", "run", "--style", str(NANO), "--input", str(src),
                        "--output", str(tmp_path / "x.png"), "--tile", "40"], capture_output=True, text=True)
    assert r.returncode != 0 and "at least" in r.stderr and not (tmp_path / "x.png").exists()
    # InstanceNorm normalizes over the whole frame: a tile would get other statistics, so it is refused
    r = subprocess.run([sys.executable, "-m", "stylecam.cli", "run", "--style", "candy", "--input", str(src),
                        "--output", str(tmp_path / "y.png"), "--tile", "256"], capture_output=True, text=True)
    assert r.returncode != 0 and "cannot be tiled" in r.stderr and not (tmp_path / "y.png").exists()
