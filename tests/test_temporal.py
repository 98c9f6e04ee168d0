"""Flicker metric and runtime smoothing on synthetic motion with known answers, then on a real clip."""
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import BATCHNORM_STYLES, shared

from stylecam import Stylizer, TemporalSmoother, WarpingError
from stylecam.sources import DEMO_CLIP
from stylecam.temporal import dis, read_clip, visible_mask, warp

CLI = [sys.executable, "-m", "stylecam.cli"]


def panning_clip(frames=8, shift=3, size=(120, 160)):
    """A smooth random texture panned right by ``shift`` px per frame."""
    rng = np.random.default_rng(0)
    h, w = size
    world = cv2.GaussianBlur(rng.integers(0, 256, (h, w + shift * frames, 3), dtype=np.uint8), (0, 0), 2.0)
    world = cv2.normalize(world, None, 0, 255, cv2.NORM_MINMAX)
    return [np.ascontiguousarray(world[:, (frames - i) * shift:(frames - i) * shift + w]) for i in range(frames)]


def test_warp_aligns_the_previous_frame_and_masks_what_entered():
    a, b = panning_clip(2)
    flow = dis().calc(cv2.cvtColor(b, cv2.COLOR_BGR2GRAY), cv2.cvtColor(a, cv2.COLOR_BGR2GRAY), None)
    assert np.median(flow[..., 0]) == pytest.approx(-3, abs=0.3)  # b's pixels came from 3 px to the left in a
    aligned = warp(a, flow)
    assert np.abs(aligned[:, 10:-10].astype(int) - b[:, 10:-10]).mean() < 3
    forward = dis().calc(cv2.cvtColor(a, cv2.COLOR_BGR2GRAY), cv2.cvtColor(b, cv2.COLOR_BGR2GRAY), None)
    mask = visible_mask(flow, forward)
    assert not mask[:, :2].any()  # the strip that scrolled in was not in the previous frame
    assert mask[:, 10:-10].mean() > 0.95


def test_warping_error_is_one_for_a_stable_copy_and_high_for_flicker():
    clip = panning_clip()
    stable, flicker = WarpingError(), WarpingError()
    rng = np.random.default_rng(1)
    for frame in clip:
        stable.update(frame, frame)
        noisy = np.clip(frame + rng.normal(0, 12, frame.shape), 0, 255).astype(np.uint8)
        flicker.update(frame, noisy)
    s, f = stable.result(), flicker.result()
    assert s["pairs"] == len(clip) - 1 and s["relative"] == pytest.approx(1.0)
    assert s["input_warping_error"] < 1e-3  # the flow really aligns the frames
    assert f["relative"] > 5


def test_warping_error_needs_two_frames_of_one_size():
    metric = WarpingError()
    metric.update(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="two frames"):
        metric.result()
    with pytest.raises(ValueError, match="differ in size"):
        metric.update(np.zeros((8, 8, 3), np.uint8), np.zeros((9, 8, 3), np.uint8))


def test_smoother_removes_flicker_but_not_a_scene_cut():
    clip = panning_clip(10)
    rng = np.random.default_rng(2)
    smoother, raw, smoothed = TemporalSmoother(0.6), WarpingError(), WarpingError()
    for frame in clip:
        noisy = np.clip(frame + rng.normal(0, 12, frame.shape), 0, 255).astype(np.uint8)
        raw.update(frame, noisy)
        smoothed.update(frame, smoother(frame, noisy))
    assert smoothed.result()["warping_error"] < 0.6 * raw.result()["warping_error"]
    cut = 255 - clip[0]  # a different scene: nothing of the old output may bleed in
    np.testing.assert_array_equal(smoother(cut, cut), cut)


def test_smoothing_amount_is_checked_and_zero_is_identity():
    with pytest.raises(ValueError, match="smoothing"):
        TemporalSmoother(1.0)
    off, clip = TemporalSmoother(0.0), panning_clip(3)
    for frame in clip:
        np.testing.assert_array_equal(off(frame, 255 - frame), 255 - frame)


def test_stylized_clip_flickers_more_than_its_input_and_smoothing_helps():
    # vtest: on the demo clip the quarter-resolution flow cuts only about 10 % (measured, README)
    frames = read_clip(str(shared("video/vtest.avi")), 10)
    stylizer = Stylizer(BATCHNORM_STYLES / "mosaic", backend="onnxruntime", threads=2)  # the flickeriest style we have
    from stylecam.temporal import measure_flicker

    raw, _ = measure_flicker(stylizer, frames)
    stylizer.smoothing = 0.6
    smoothed, _ = measure_flicker(stylizer, frames)
    assert raw["relative"] > 1.2
    assert smoothed["relative"] < 0.85 * raw["relative"]
    assert stylizer.timer.stats()["smooth"]["n"] == len(frames)


def test_a_tuned_smoother_keeps_its_flow_settings_through_the_slider():
    from stylecam.temporal import measure_flicker

    frames = read_clip(str(DEMO_CLIP), 5)
    stylizer = Stylizer(BATCHNORM_STYLES / "mosaic", backend="onnxruntime", threads=2, smoothing=TemporalSmoother(0.6, scale=0.5))
    tuned = measure_flicker(stylizer, frames)[1]
    stylizer.smoothing = 0.0  # the slider off and on again, as the live controls do
    assert stylizer.smoothing == 0.0
    raw = stylizer.stylize(frames[0])
    stylizer.smoothing = 0.6
    assert np.array_equal(stylizer.stylize(frames[0]), raw)  # not blended with the frame from before it was off
    again = measure_flicker(stylizer, frames)[1]
    assert all(np.array_equal(a, b) for a, b in zip(tuned, again))
    stylizer.smoothing = TemporalSmoother(0.6)  # the default quarter-resolution flow blends differently
    default = measure_flicker(stylizer, frames)[1]
    assert np.array_equal(default[0], tuned[0]) and not np.array_equal(default[-1], tuned[-1])


def test_eval_video_cli_prints_flicker_and_writes_a_strip(tmp_path):
    strip = tmp_path / "strip.png"
    r = subprocess.run([*CLI, "eval", "candy", "starry_night_nano", "--video", str(DEMO_CLIP), "--frames", "6",
                        "--smoothing", "0.5", "--strip", str(strip), "--threads", "2"],
                       capture_output=True, text=True, check=True)
    lines = [line for line in r.stdout.splitlines() if line.startswith(("style", "candy", "starry_night_nano"))]
    rows = [line.split() for line in lines[1:]]
    assert [row[0] for row in rows] == ["candy", "starry_night_nano"]
    assert len({len(line) for line in lines}) == 1  # columns aligned under the header, long names too
    for row in rows:
        relative, smoothed = float(row[5]), float(row[6])
        assert relative > 1.0 and smoothed < relative
    image = cv2.imread(str(strip))
    assert image.shape[0] == 3 * 160  # input, candy, starry_night_nano
