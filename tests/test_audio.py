"""A stylized video keeps its input's sound: real clips written by PyAV's FFmpeg, stylized by `stylecam run`, read
back by PyAV and OpenCV."""
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from stylecam.audio import keep_audio
from stylecam.sinks import VideoFileSink
from stylecam.sources import DEMO_CLIP

av = pytest.importorskip("av", reason="the av extra (PyAV) is not installed")
CLI = [sys.executable, "-m", "stylecam.cli"]


def audio_streams(path) -> int:
    with av.open(str(path)) as container:
        return len(container.streams.audio)


def clip_with_sound(path, codec="aac", frames=20, fps=10, seconds=2.0, rate=48000, tones=(440,)):
    """Frames that brighten one step a frame, and a tone as long as the pictures on each of its audio tracks."""
    out = av.open(str(path), "w")
    video = out.add_stream("mpeg4", rate=fps)
    video.width, video.height, video.pix_fmt = 96, 64, "yuv420p"
    tracks = [out.add_stream(codec, rate=rate) for _ in tones]
    for sound in tracks:
        sound.layout = "mono"
    for i in range(frames):
        picture = np.full((64, 96, 3), 40 + i * 8, np.uint8)
        picture[:, : 4 + i * 4] = 255
        out.mux(video.encode(av.VideoFrame.from_ndarray(picture, format="bgr24")))
    for sound, hz in zip(tracks, tones):
        tone = (0.3 * 32767 * np.sin(2 * np.pi * hz * np.arange(int(rate * seconds)) / rate)).astype(np.int16)
        step = sound.codec_context.frame_size or 1024
        for k in range(0, len(tone), step):
            frame = av.AudioFrame.from_ndarray(tone[None, k:k + step].copy(), format="s16", layout="mono")
            frame.sample_rate = rate
            out.mux(sound.encode(frame))
        out.mux(sound.encode(None))
    out.mux(video.encode(None))
    out.close()
    return path


def decoded(path, kind, track=0):
    with av.open(str(path)) as c:
        if kind == "audio":
            return np.concatenate([f.to_ndarray().ravel() for f in c.decode(audio=track)])
    cap, frames = cv2.VideoCapture(str(path)), []
    while (got := cap.read())[0]:
        frames.append(got[1])
    return frames


def test_run_copies_the_sound_of_a_video_into_the_stylized_one(tmp_path):
    src = clip_with_sound(tmp_path / "talk.mp4")
    out = tmp_path / "styled.mp4"
    r = subprocess.run([*CLI, "run", "--style", "candy_nano", "--input", str(src), "--output", str(out),
                        "--threads", "1"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "sound:   1 audio stream copied" in r.stdout and audio_streams(out) == 1
    sound = decoded(out, "audio")  # the same packets, so the same samples, up to the video's 2 s
    assert len(sound) >= 96000 and np.array_equal(sound, decoded(src, "audio")[:len(sound)])
    assert len(decoded(out, "video")) == 20
    cut = tmp_path / "first_second.mp4"  # --max-frames 10 at 10 FPS: the sound stops with the pictures
    subprocess.run([*CLI, "run", "--style", "candy_nano", "--input", str(src), "--output", str(cut),
                    "--max-frames", "10"], capture_output=True, text=True, check=True)
    samples = len(decoded(cut, "audio"))
    assert 48000 <= samples <= 48000 + 2048, samples  # one second, give or take the last packet


def test_video_files_are_h264_where_pyav_is_installed(tmp_path):
    frames = decoded(DEMO_CLIP, "video")[:8]
    for name, codec, rows in (("a.mp4", "h264", 360), ("a.mkv", "h264", 360), ("a.avi", "mjpeg", 360),
                              ("odd.mp4", "h264", 359)):
        sink = VideoFileSink(tmp_path / name, fps=10)
        for f in frames:
            sink.write(f[:rows], None)
        sink.close()
        with av.open(str(tmp_path / name)) as c:
            assert c.streams.video[0].codec_context.name == codec, name
        back = decoded(tmp_path / name, "video")  # 4:2:0 takes even sides: an odd one loses a row, as in OpenCV
        assert len(back) == 8 and all(g.shape == (rows // 2 * 2, 640, 3) for g in back), name
        assert np.mean([cv2.PSNR(f[:rows // 2 * 2], g) for f, g in zip(frames, back)]) > 30, name


def test_the_pictures_are_not_encoded_again_and_every_audio_track_is_kept(tmp_path):
    src = clip_with_sound(tmp_path / "talk.mp4", tones=(440, 660))  # say, the sound and a commentary
    video = tmp_path / "styled.avi"
    sink = VideoFileSink(video, fps=10)
    for frame in decoded(src, "video"):
        sink.write(255 - frame, None)
    sink.close()
    silent = tmp_path / "silent.avi"
    shutil.copy(video, silent)
    assert keep_audio(src, video) == 2
    for track in (0, 1):
        sound = decoded(video, "audio", track)
        assert len(sound) >= 96000 and np.array_equal(sound, decoded(src, "audio", track)[:len(sound)])
    assert all(np.array_equal(a, b) for a, b in zip(decoded(video, "video"), decoded(silent, "video"), strict=True))
    assert not list(tmp_path.glob(".*"))  # the partial file is gone


def test_a_codec_the_container_cannot_hold_is_encoded_to_aac(tmp_path):
    src = clip_with_sound(tmp_path / "talk.mkv", codec="libopus")
    out = tmp_path / "styled.avi"  # AVI takes no Opus
    subprocess.run([*CLI, "run", "--style", "candy_nano", "--input", str(src), "--output", str(out)],
                   capture_output=True, text=True, check=True)
    with av.open(str(out)) as c:
        assert [s.codec_context.name for s in c.streams.audio] == ["aac"]
    sound, original = decoded(out, "audio"), decoded(src, "audio")
    assert abs(len(sound) - len(original)) <= 2048  # about the same length
    spectrum = np.abs(np.fft.rfft(sound[4096:4096 + 48000]))
    assert abs(np.argmax(spectrum) - 440) <= 1  # still the 440 Hz tone


def test_without_pyav_run_says_how_to_keep_the_sound(tmp_path):
    src = clip_with_sound(tmp_path / "talk.mp4")
    code = ("import sys; sys.modules['av'] = None; from stylecam.cli import main; "
            f"main(['run', '--style', 'candy_nano', '--input', {str(src)!r}, '--output', {str(tmp_path / 'o.mp4')!r}])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "the output has no sound" in r.stderr and "stylecam[av]" in r.stderr
    assert audio_streams(tmp_path / "o.mp4") == 0 and len(decoded(tmp_path / "o.mp4", "video")) == 20
    r = subprocess.run([*CLI, "run", "--style", "candy_nano", "--input", "demo", "--output",
                        str(tmp_path / "demo.mp4"), "--max-frames", "3"], capture_output=True, text=True, check=True)
    assert "sound" not in r.stdout + r.stderr  # the bundled clip is silent: nothing to say
