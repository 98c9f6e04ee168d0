"""`stylecam run` end to end on the bundled demo clip, read back with OpenCV."""
import subprocess
import sys

import cv2
import numpy as np

from stylecam.sources import DEMO_CLIP

CLI = [sys.executable, "-m", "stylecam.cli"]


def test_run_writes_a_readable_video_and_a_timing_table(tmp_path):
    out, png = tmp_path / "out.mp4", tmp_path / "side.png"
    r = subprocess.run([*CLI, "run", "--style", "candy", "--input", str(DEMO_CLIP), "--output", str(out),
                        "--preview", str(png), "--threads", "2"], capture_output=True, text=True, check=True)
    src, dst = cv2.VideoCapture(str(DEMO_CLIP)), cv2.VideoCapture(str(out))
    size = lambda c: (int(c.get(cv2.CAP_PROP_FRAME_WIDTH)), int(c.get(cv2.CAP_PROP_FRAME_HEIGHT)))  # noqa: E731
    assert size(dst) == size(src) == (640, 360)
    frames = 0
    while dst.read()[0]:
        frames += 1
    assert frames == int(src.get(cv2.CAP_PROP_FRAME_COUNT)) == 80
    for stage in ("read", "pre", "infer", "post", "write"):
        assert any(line.startswith(stage) for line in r.stdout.splitlines()), stage
    assert "FPS end to end" in r.stdout
    preview = cv2.imread(str(png))
    assert preview.shape == (360, 1280, 3)


def test_run_on_a_missing_file_says_so(tmp_path):
    r = subprocess.run([*CLI, "run", "--input", str(tmp_path / "nope.mp4"), "--output", str(tmp_path / "o.mp4")],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "no such file" in r.stderr


def test_run_on_a_corrupt_video_says_so(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 4096)
    r = subprocess.run([*CLI, "run", "--input", str(bad), "--output", str(tmp_path / "o.mp4")],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "bad.mp4" in r.stderr


def _photos(folder, names=("a.jpg", "b.png")):
    """Real frames of the demo clip saved as photos, plus a broken file."""
    folder.mkdir()
    cap = cv2.VideoCapture(str(DEMO_CLIP))
    for name in names:
        cv2.imwrite(str(folder / name), cap.read()[1])
    (folder / "broken.jpg").write_bytes(b"not an image")
    return folder


def test_run_stylizes_a_photo_and_a_folder_of_photos(tmp_path):
    photos = _photos(tmp_path / "photos", names=("a.jpg", "b.png", "c.TIFF"))
    one = tmp_path / "one.png"
    subprocess.run([*CLI, "run", "--style", "wave", "--input", str(photos / "b.png"), "--output", str(one),
                    "--threads", "2"], capture_output=True, text=True, check=True)
    original, styled = cv2.imread(str(photos / "b.png")), cv2.imread(str(one))
    assert styled.shape == original.shape and abs(styled.astype(int) - original).mean() > 10
    r = subprocess.run([*CLI, "run", "--style", "wave", "--input", str(photos), "--output", str(tmp_path / "styled"),
                        "--threads", "2"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "styled").iterdir()) == ["a.jpg", "b.png", "c.TIFF"]  # same names
    assert "broken.jpg: not a readable image (corrupt or cut short), skipped" in r.stderr
    assert "1 unreadable skipped (broken.jpg)" in r.stdout  # counted in the summary
    assert abs(cv2.imread(str(tmp_path / "styled" / "b.png")).astype(int) - styled).max() <= 1  # the same frame
    coarse = tmp_path / "coarse.png"
    subprocess.run([*CLI, "run", "--style", "wave", "--input", str(photos / "b.png"), "--output", str(coarse),
                    "--scale", "0.5", "--threads", "2"], capture_output=True, text=True, check=True)
    coarse = cv2.imread(str(coarse))
    assert coarse.shape == original.shape and abs(coarse.astype(int) - styled).mean() > 5  # bigger strokes
    r = subprocess.run([*CLI, "run", "--input", str(photos / "b.png"), "--output", str(tmp_path / "x.png"),
                        "--scale", "9"], capture_output=True, text=True)
    assert r.returncode != 0 and "scale must be in" in r.stderr and not (tmp_path / "x.png").exists()


def test_workers_write_the_same_frames_in_the_same_order(tmp_path):
    import json

    photos = _photos(tmp_path / "photos", names=("a.jpg", "b.png", "c.png", "d.png"))
    outputs = {}
    for workers in ("1", "2"):
        out = tmp_path / f"styled{workers}"
        r = subprocess.run([*CLI, "run", "--style", "candy_nano", "--variant", "fp32", "--input", str(photos),
                            "--output", str(out), "--threads", "1", "--workers", workers],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        outputs[workers] = {p.name: cv2.imread(str(p)) for p in sorted(out.iterdir())}
    assert "(fp32, 2 workers): 4 frames" in r.stdout
    assert list(outputs["1"]) == list(outputs["2"]) == ["a.jpg", "b.png", "c.png", "d.png"]
    assert all((outputs["1"][n] == outputs["2"][n]).all() for n in outputs["1"])
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps({"style": "candy_nano", "smoothing": 0.5}))
    for args, says in [(["--workers", "0"], "at least 1"),
                       (["--workers", "2", "--profile", str(profile)], "smoothing 0.5, from your profile")]:
        r = subprocess.run([*CLI, "run", "--input", str(photos), "--output", str(tmp_path / "x"), *args],
                           capture_output=True, text=True)
        assert r.returncode != 0 and says in r.stderr, (args, r.stderr)
    r = subprocess.run([*CLI, "run", "--input", str(photos), "--output", str(tmp_path / "y"), "--workers", "2",
                        "--profile", str(profile), "--smoothing", "0"], capture_output=True, text=True)
    assert r.returncode == 0 and len(list((tmp_path / "y").iterdir())) == 4, r.stderr


def test_a_photo_with_transparency_keeps_it(tmp_path):
    import numpy as np
    from PIL import Image  # matplotlib's dependency; it writes the palette PNG, which OpenCV cannot

    frame = cv2.VideoCapture(str(DEMO_CLIP)).read()[1]
    alpha = np.zeros(frame.shape[:2], np.uint8)
    alpha[:, 200:] = 255  # a cut-out: transparent left, opaque right
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "cutout.png"), np.dstack([frame, alpha]))
    cv2.imwrite(str(photos / "deep.png"), np.dstack([frame, alpha]).astype(np.uint16) * 257)  # 16-bit RGBA
    palette = Image.fromarray(frame[:, :, ::-1]).quantize(64)  # a GIF-like PNG: 64 colours, index 0 transparent
    indices = np.array(palette)
    indices[:, :200] = 0
    palette.putdata(indices.ravel().tolist())
    palette.save(photos / "palette.png", transparency=0)
    palette_alpha = np.where(indices == 0, 0, 255)
    r = subprocess.run([*CLI, "run", "--style", "wave", "--input", str(photos), "--output", str(tmp_path / "out"),
                        "--threads", "2"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for name, kept in (("cutout.png", alpha), ("deep.png", alpha), ("palette.png", palette_alpha)):
        out = cv2.imread(str(tmp_path / "out" / name), cv2.IMREAD_UNCHANGED)
        assert out.shape == (*frame.shape[:2], 4) and (out[:, :, 3] == kept).all(), name
        assert abs(out[:, :, :3].astype(int) - frame).mean() > 10  # the colours are stylized
    r = subprocess.run([*CLI, "run", "--style", "wave", "--input", str(photos), "--output", str(tmp_path / "v.avi"),
                        "--threads", "2"], capture_output=True, text=True)  # a video has no alpha: dropped there
    assert r.returncode == 0, r.stderr
    cap, n = cv2.VideoCapture(str(tmp_path / "v.avi")), 0
    while cap.read()[0]:
        n += 1
    assert n == 3


def test_run_refuses_outputs_that_would_lose_something(tmp_path):
    photos = _photos(tmp_path / "photos")
    for args, says in [(["--input", str(photos), "--output", str(photos)], "would overwrite it"),
                       (["--input", str(photos), "--output", str(tmp_path / "x.jpg")], "is one image"),
                       (["--input", str(DEMO_CLIP), "--output", str(tmp_path / "x.flv")], "unknown output type"),
                       (["--input", str(DEMO_CLIP), "--output", str(tmp_path / "x.flv"), "--style", "nonexistent"],
                        "unknown output type"),  # said before the model loads
                       (["--input", str(photos / "broken.jpg"), "--output", str(tmp_path / "b.png")],
                        "not a readable image")]:
        r = subprocess.run([*CLI, "run", *args], capture_output=True, text=True)
        assert r.returncode != 0 and says in r.stderr, (args, r.stderr)
    assert sorted(p.name for p in photos.iterdir()) == ["a.jpg", "b.png", "broken.jpg"]  # nothing touched
    assert not (tmp_path / "b.png").exists()


def test_styles_lists_every_bundled_style_in_aligned_columns():
    from stylecam import bundled_styles

    lines = subprocess.run([*CLI, "styles"], capture_output=True, text=True, check=True).stdout.splitlines()
    assert [line.split()[0] for line in lines] == bundled_styles()
    assert len({line.index("params") for line in lines}) == 1, lines  # one column, however long a title
    assert "int8-cpu" in lines[bundled_styles().index("candy")] and "int8-cpu" in lines[bundled_styles().index("candy_nano")]


def test_styles_plots_the_trade_off_they_shipped_with(tmp_path):
    from stylecam import bundled_styles
    from stylecam.styles import resolve

    plot = tmp_path / "styles.png"
    r = subprocess.run([*CLI, "styles", "--plot", str(plot)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert f"trade-off plot: {plot}" in r.stdout
    img = cv2.imread(str(plot))
    assert img.shape[:2] == (550, 770)
    archs = sorted({resolve(s).manifest["architecture"]["name"] for s in bundled_styles()})
    tab10 = {0: (180, 119, 31), 1: (14, 127, 255), 2: (44, 160, 44), 3: (40, 39, 214)}  # BGR
    for i, arch in enumerate(archs):  # every architecture's markers are drawn in its colour
        hits = np.all(np.abs(img.astype(int) - tab10[i]) <= 2, axis=2).sum()
        assert hits > 100, (arch, hits)  # a marker and its legend entry: about 140 pixels


def test_every_option_of_every_command_says_what_it_does():
    import argparse

    from stylecam.cli import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    silent = [f"{name} {action.option_strings or action.dest}" for name, command in commands.items()
              for action in command._actions if not action.help and not isinstance(action, argparse._HelpAction)]
    assert not silent, silent


def test_run_writes_an_animated_webp_or_gif_and_a_webp_photo(tmp_path):
    for name in ("clip.webp", "clip.gif"):
        out = tmp_path / name
        r = subprocess.run([*CLI, "run", "--style", "candy_nano", "--input", str(DEMO_CLIP), "--output", str(out),
                            "--max-frames", "12"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        ok, animation = cv2.imreadanimation(str(out))
        assert ok and len(animation.frames) == 12 and animation.frames[0].shape[:2] == (360, 640)
        assert list(animation.durations) == [100] * 12  # the clip's 10 FPS
        first = cv2.VideoCapture(str(DEMO_CLIP)).read()[1]
        # stylized, not the input (a stylized frame is far from its photo) and not blank
        assert 8 < cv2.PSNR(animation.frames[0][:, :, :3], first) < 25 and animation.frames[0].std() > 20
    photo = tmp_path / "a.png"
    cv2.imwrite(str(photo), cv2.VideoCapture(str(DEMO_CLIP)).read()[1])
    r = subprocess.run([*CLI, "run", "--style", "candy_nano", "--input", str(photo), "--output",
                        str(tmp_path / "a.webp")], capture_output=True, text=True)
    assert r.returncode == 0 and cv2.imread(str(tmp_path / "a.webp")).shape == (360, 640, 3), r.stderr


def test_an_animation_stops_at_its_memory_budget_and_keeps_what_it_holds(tmp_path, monkeypatch):
    import pytest

    from stylecam import sinks

    frame = np.full((40, 60, 3), 128, np.uint8)
    writer = sinks.AnimationWriter(tmp_path / "a.webp", fps=5, max_bytes=3 * frame.nbytes)
    for value in (60, 120, 180):  # distinct frames (WebP merges repeated ones)
        writer.write(frame // 2 + value // 2)
    with pytest.raises(sinks.StopPipeline, match="stopped at 3 frames"):
        writer.write(frame)
    writer.release()
    ok, animation = cv2.imreadanimation(str(tmp_path / "a.webp"))
    assert ok and len(animation.frames) == 3 and list(animation.durations) == [200] * 3
    monkeypatch.delattr(cv2, "imwriteanimation")  # OpenCV before 4.11 (JetPack 6 has 4.8)
    with pytest.raises(ValueError, match="needs OpenCV 4.11"):
        sinks.output_kind("clip.gif")
    assert sinks.output_kind("photo.webp") == "image" and sinks.output_kind("photo.webp", frames=1) == "image"
    with pytest.raises(ValueError, match="needs OpenCV 4.11"):
        sinks.output_kind("clip.webp", frames=80)


def test_a_truncated_jpeg_is_an_error_alone_and_a_counted_skip_in_a_folder(tmp_path):
    from stylecam.sources import jpeg_truncated, read_image

    photos = _photos(tmp_path / "photos", names=("a.jpg",))
    (photos / "broken.jpg").unlink()
    whole = (photos / "a.jpg").read_bytes()
    (photos / "b_cut.jpg").write_bytes(whole[:2048])  # the first 2 KB of a photo
    assert jpeg_truncated(photos / "b_cut.jpg") and not jpeg_truncated(photos / "a.jpg")
    (tmp_path / "motion.jpg").write_bytes(whole + b"\x00\x00\x00\x18ftypmp42" + bytes(4000))  # video appended
    assert not jpeg_truncated(tmp_path / "motion.jpg") and read_image(tmp_path / "motion.jpg") is not None
    r = subprocess.run([*CLI, "run", "--input", str(photos / "b_cut.jpg"), "--output", str(tmp_path / "o.png")],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "b_cut.jpg: not a readable image (corrupt, cut short" in r.stderr
    assert not (tmp_path / "o.png").exists()
    r = subprocess.run([*CLI, "run", "--input", str(photos), "--output", str(tmp_path / "out"), "--threads", "1"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.jpg"]
    assert "1 unreadable skipped (b_cut.jpg)" in r.stdout and "1 image stylized in" in r.stdout  # one line


def test_cli_messages_say_what_was_wrong(tmp_path):
    out = str(tmp_path / "o.mp4")
    cases = {
        ("--max-frames", "0"): "--max-frames: takes a whole number of at least 1",
        ("--max-frames", "-3"): "--max-frames: takes a whole number of at least 1",
        ("--threads", "-1"): "--threads: takes a whole number of at least 1",
        ("--mix", "wave", "--mix-amount", "2"): "mix amount must be in [0, 1]",
    }
    for extra, message in cases.items():
        r = subprocess.run([*CLI, "run", "--input", "demo", "--output", out, *extra], capture_output=True, text=True)
        assert r.returncode != 0 and message in r.stderr, (extra, r.stderr[-500:])
    r = subprocess.run([*CLI, "run", "--input", "demo"], capture_output=True, text=True)
    assert r.returncode != 0 and "nothing to write: add --output" in r.stderr
    r = subprocess.run([*CLI, "run", "--style", "candy_nano", "--output", out, "--max-frames", "3", "--threads", "1"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "no --input given: stylizing the bundled demo clip" in r.stdout
    assert "3 frames in" in r.stdout and "(frame limit 3 reached)" in r.stdout and "end of source" not in r.stdout


def test_backends_says_when_there_is_no_gpu_at_all():
    from stylecam.ops import nvidia_driver

    r = subprocess.run([*CLI, "backends"], capture_output=True, text=True, check=True)
    line = next(line for line in r.stdout.splitlines() if line.startswith("pre/post"))
    if nvidia_driver():
        assert "no NVIDIA GPU or driver" not in line
    else:
        assert "error 35" not in line and ("no NVIDIA GPU or driver" in line or "not built" in line or "nvcc" in line)


def test_live_without_a_window_serves_http_and_says_so(tmp_path):
    import cv2 as _cv2

    from stylecam.sources import opencv_build

    if opencv_build()["window"] and _cv2.__name__:  # a window could open here: the headless path is not taken
        import pytest

        pytest.skip("this OpenCV has window support")
    r = subprocess.run([*CLI, "live", "--source", "demo", "--http", "127.0.0.1:0", "--max-frames", "5",
                        "--style", "candy_nano", "--threads", "1"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "no window here" in r.stderr and "streaming on http://127.0.0.1:" in r.stderr
    r = subprocess.run([*CLI, "live", "--source", "demo", "--max-frames", "5"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode != 0 and "cannot open a window" in r.stderr and "--no-window" in r.stderr
