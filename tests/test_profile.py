"""Personalisation: style mixing, the profile file (API and CLI), and overlapping style switches."""
import json
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from stylecam import Profile, ProfileError, Stylizer
from stylecam.live import Controls

CLI = [sys.executable, "-m", "stylecam.cli"]


@pytest.fixture(scope="module")
def pair():
    return Stylizer("candy", threads=2), Stylizer("mosaic", threads=2)


def test_mix_is_the_blend_of_both_styles(pair, photo):
    candy, mosaic = (s.stylize(photo).astype(np.float32) for s in pair)
    mixed = Stylizer("candy", threads=2, mix=("mosaic", 0.3))
    assert mixed.mix == ("mosaic", 0.3)
    out = mixed.stylize(photo).astype(np.float32)
    assert np.abs(out - (0.7 * candy + 0.3 * mosaic)).max() <= 1.0  # rounding of the two references only
    backend = mixed._mix[1]
    mixed.set_mix("mosaic", 0.8)  # a new amount loads nothing
    assert mixed._mix[1] is backend and mixed.mix == ("mosaic", 0.8)
    mixed.set_mix(None)
    np.testing.assert_array_equal(mixed.stylize(photo), candy.astype(np.uint8))


def test_missing_profile_is_the_default_look_and_roundtrips(private_profile):
    assert not private_profile.exists()
    assert Profile.load() == Profile()
    p = Profile(style="wave", strength=0.7, mix="udnie", mix_amount=0.25, smoothing=0.4, scale=0.5,
                favourites=["wave", "udnie"])
    assert p.save() == private_profile
    assert Profile.load() == p


@pytest.mark.parametrize("text,message", [
    ("{not json", "not a readable JSON profile"),
    ('["wave"]', "expected a JSON object"),
    ('{"stlye": "wave"}', "unknown profile keys"),
    ('{"strength": 3}', "strength must be in"),
    ('{"smoothing": 1.5}', "smoothing must be in"),
    ('{"scale": 0}', "scale must be in"),
    ('{"favourites": "wave"}', "favourites must be a list"),
])
def test_broken_profile_is_refused_with_its_path(private_profile, text, message):
    private_profile.write_text(text)
    with pytest.raises(ProfileError, match=message) as e:
        Profile.load()
    assert str(private_profile) in str(e.value)
    assert private_profile.read_text() == text  # nothing lost


def test_stylizer_from_profile_applies_it_and_overrides_win(tmp_path):
    path = Profile(style="mosaic", strength=0.6, mix="candy", mix_amount=0.2, smoothing=0.5,
                   scale=0.75).save(tmp_path / "p.json")
    s = Stylizer.from_profile(path, threads=2)
    assert (s.style, s.strength, s.mix, s.smoothing, s.scale) == ("mosaic", 0.6, ("candy", 0.2), 0.5, 0.75)
    assert Stylizer.from_profile(path, strength=1.0, mix=None, threads=2).strength == 1.0


def test_cli_profile_set_then_run_uses_it(private_profile, tmp_path):
    subprocess.run([*CLI, "profile", "set", "style=mosaic", "strength=0.5", "favourites=mosaic,wave"],
                   check=True, capture_output=True, text=True)
    assert json.loads(private_profile.read_text())["favourites"] == ["mosaic", "wave"]
    r = subprocess.run([*CLI, "run", "--input", "demo", "--max-frames", "3", "--threads", "2",
                        "--output", str(tmp_path / "o.mp4")], check=True, capture_output=True, text=True)
    assert "mosaic on onnxruntime" in r.stdout
    r = subprocess.run([*CLI, "run", "--input", "demo", "--max-frames", "2", "--style", "wave", "--threads", "2",
                        "--output", str(tmp_path / "o.mp4")], check=True, capture_output=True, text=True)
    assert "wave on onnxruntime" in r.stdout  # a flag beats the profile


def test_cli_profile_set_refuses_a_typo_and_keeps_the_file(private_profile):
    Profile(style="wave").save()
    before = private_profile.read_text()
    r = subprocess.run([*CLI, "profile", "set", "style=wavve"], capture_output=True, text=True)
    assert r.returncode != 0 and "no style named 'wavve'" in r.stderr
    r = subprocess.run([*CLI, "profile", "set", "colour=red"], capture_output=True, text=True)
    assert r.returncode != 0 and "unknown profile keys" in r.stderr
    assert private_profile.read_text() == before


def test_controls_mix_smoothing_and_save(private_profile):
    stylizer = Stylizer("candy", threads=2)
    controls = Controls(stylizer, styles=["candy", "wave"])
    controls.handle("mix=mosaic")
    controls.handle("mix_amount=0.4")
    controls.handle("smoothing=0.3")
    state = controls.state()
    assert (state["mix"], state["mix_amount"], state["smoothing"]) == ("mosaic", 0.4, 0.3)
    controls.handle("smooth")
    assert stylizer.smoothing == 0.0
    controls.handle("strength=0.8")
    assert controls.handle("bigger") == "scale 0.8" and controls.handle("finer") == "scale 1.0"
    controls.handle("scale=0.5")
    controls.handle("save")
    saved = Profile.load()
    assert (saved.style, saved.strength, saved.mix, saved.mix_amount, saved.scale) == ("candy", 0.8, "mosaic", 0.4, 0.5)
    with pytest.raises(ValueError, match="smoothing"):
        controls.handle("smoothing=2")
    with pytest.raises(ValueError, match="scale must be in"):
        controls.handle("scale=5")
    for _ in range(20):  # the keys stop at the range's ends
        controls.handle("finer")
    assert stylizer.scale == 2.0


def test_overlapping_style_switches_end_on_the_last_request(monkeypatch):
    stylizer = Stylizer("candy", threads=2)
    load = stylizer._load

    def slow_for_mosaic(style):
        if style == "mosaic":
            time.sleep(0.6)  # the first request finishes last
        return load(style)

    monkeypatch.setattr(stylizer, "_load", slow_for_mosaic)
    stylizer.set_style("mosaic", wait=False)
    time.sleep(0.05)
    stylizer.set_style("wave", wait=False)
    deadline = time.time() + 10
    while any(t.name == "stylecam-style-loader" for t in threading.enumerate()) and time.time() < deadline:
        time.sleep(0.05)
    assert stylizer.style == "wave" and stylizer.loading is None
