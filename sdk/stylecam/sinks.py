"""Frame sinks: video file, window, preview PNG, Python callback (MJPEG over HTTP: server.py).

A sink has ``write(view, frame)`` where ``view`` is what is shown (stylized, maybe side by side) and ``frame``
the pipeline's Frame record, and ``close()``. A sink raises ``StopPipeline`` to end the run cleanly.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import cv2
import numpy as np

from .frames import resize
from .sources import IMAGE_SUFFIXES

log = logging.getLogger("stylecam")
_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}
H264_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv")  # written as H.264 where PyAV is installed
ANIMATION_SUFFIXES = (".gif", ".webp")  # many frames: an animated image (a WebP of one frame is a photo)


class H264Writer:
    """cv2.VideoWriter's interface over PyAV's libx264 (CRF 18, preset superfast, 4:2:0): a file that browsers and
    phones play, where OpenCV's MPEG-4 Part 2 ("mp4v") plays in neither. On 40 stylized frames of the demo clip:
    31.6 dB PSNR in 555 KB at 3.9 ms of CPU a frame, against mp4v's 31.2 dB in 675 KB at 1.4 ms (4:2:0 itself
    costs most of the rest). 4:2:0 needs even sides: an odd one loses its last row or column, as in OpenCV's own
    writers."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int]):
        from fractions import Fraction

        from .audio import pyav

        av = pyav()
        self.container = av.open(str(path), "w")
        self.stream = self.container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001),
                                                options={"crf": "18", "preset": "superfast"})
        self.width, self.height = size[0] // 2 * 2, size[1] // 2 * 2
        self.stream.width, self.stream.height = self.width, self.height
        self.stream.pix_fmt = "yuv420p"
        self.frame = av.VideoFrame

    def isOpened(self) -> bool:  # noqa: N802 - cv2.VideoWriter's name
        return True

    def write(self, bgr: np.ndarray) -> None:
        bgr = np.ascontiguousarray(bgr[:self.height, :self.width])
        self.container.mux(self.stream.encode(self.frame.from_ndarray(bgr, format="bgr24")))

    def release(self) -> None:
        self.container.mux(self.stream.encode(None))  # the frames the encoder still holds
        self.container.close()


class AnimationWriter:
    """cv2.VideoWriter's interface over OpenCV's animated WebP and GIF (``cv2.imwriteanimation``, OpenCV 4.11+): a
    clip that chats and web pages show where a video would not play. The file is written at ``release``, so the
    frames wait in memory, ``max_bytes`` of them at most. On 40 stylized demo frames (candy, 640×360): WebP 30.4 dB
    PSNR in 904 KB, written in 0.85 s; GIF (256 colours, dithered) 29.7 dB in 4.6 MB, 4.1 s."""

    PARAMS = {".gif": [cv2.IMWRITE_GIF_DITHER, 3]} if hasattr(cv2, "IMWRITE_GIF_DITHER") \
        else {}  # without dithering OpenCV's GIF palette gives 21.6 dB there

    def __init__(self, path: Path, fps: float, max_bytes: int = 512 << 20):
        self.path, self.fps, self.max_bytes = path, fps, max_bytes
        self.frames: list[np.ndarray] = []

    def isOpened(self) -> bool:  # noqa: N802 - cv2.VideoWriter's name
        return hasattr(cv2, "imwriteanimation")

    def write(self, bgr: np.ndarray) -> None:
        if (len(self.frames) + 1) * bgr.nbytes > self.max_bytes:
            raise StopPipeline(f"{self.path}: an animation keeps its frames in memory until it is written; stopped at "
                               f"{len(self.frames)} frames ({self.max_bytes >> 20} MiB), which it holds. For longer "
                               "clips write a video file (.mp4), or pick a part with --max-frames")
        self.frames.append(bgr.copy())

    def release(self) -> None:
        if not self.frames:
            return
        animation = cv2.Animation()
        animation.frames, animation.loop_count = self.frames, 0  # loop forever
        animation.durations = [max(1, round(1000 / self.fps))] * len(self.frames)
        ok = cv2.imwriteanimation(str(self.path), animation, self.PARAMS.get(self.path.suffix.lower(), []))
        self.frames = []
        if not ok:
            raise OSError(f"{self.path}: OpenCV could not write this animation (is the folder writable?)")


def _video_writer(path: Path, fourcc: str, fps: float, size: tuple[int, int]):
    """An animation for .gif and .webp; H.264 through PyAV where it is installed and the container takes it;
    else OpenCV's writer."""
    from .audio import pyav

    if path.suffix.lower() in ANIMATION_SUFFIXES:
        return AnimationWriter(path, fps)
    if path.suffix.lower() in H264_SUFFIXES and min(size) >= 2 and pyav() is not None:
        return H264Writer(path, fps, size)
    return cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)


class StopPipeline(Exception):
    """Raised by a sink (or control) to end the run; the message says why."""


def letterbox(view: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``view`` scaled to fit ``size`` (W, H) whole, aspect kept, centred on black."""
    (w, h), (vh, vw) = size, view.shape[:2]
    scale = min(w / vw, h / vh)
    fw, fh = max(round(vw * scale), 1), max(round(vh * scale), 1)
    fitted = resize(view, (fh, fw))
    out = np.zeros((h, w, 3), np.uint8)
    top, left = (h - fh) // 2, (w - fw) // 2
    out[top:top + fh, left:left + fw] = fitted
    return out


class VideoFileSink:
    """Writes frames to a video file; stops cleanly, with a playable file, before the disk fills up. A video has
    one frame size, its first frame's: OpenCV's writer silently drops frames of any other (a folder of mixed
    photos, a stream that reconnects at another resolution), so those are letterboxed into it, said once."""

    def __init__(self, path, fps: float = 30.0, min_free_bytes: int = 64 << 20):
        self.path = Path(path)
        self.fourcc = _FOURCC.get(self.path.suffix.lower()) or \
            ("animation" if self.path.suffix.lower() in ANIMATION_SUFFIXES else None)
        if self.fourcc is None:
            raise ValueError(f"{self.path}: unsupported video extension; use one of "
                             f"{sorted([*_FOURCC, *ANIMATION_SUFFIXES])}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fps, self.min_free = fps, min_free_bytes
        self.writer: cv2.VideoWriter | None = None
        self.size: tuple[int, int] | None = None  # (W, H) of the video
        self.frames = 0
        self.letterboxed = 0

    def write(self, view: np.ndarray, frame) -> None:
        if view.shape[2] == 4:  # a photo with transparency: a video has none
            view = cv2.cvtColor(view, cv2.COLOR_BGRA2BGR)
        if self.frames % 30 == 0 and shutil.disk_usage(self.path.parent).free < self.min_free:
            raise StopPipeline(f"{self.path}: less than {self.min_free >> 20} MiB free on its disk; stopped "
                               f"after {self.frames} frames, the file is finalized and playable")
        if self.writer is None:
            self.size = view.shape[1::-1]
            self.writer = _video_writer(self.path, self.fourcc, self.fps, self.size)
            if not self.writer.isOpened():
                raise StopPipeline(f"{self.path}: OpenCV could not open a {self.fourcc} writer here")
        elif view.shape[1::-1] != self.size:
            if not self.letterboxed:
                log.warning("%s: frame %d is %dx%d (width x height), the video %dx%d (its first frame's): frames of "
                            "another size are letterboxed into it", self.path, self.frames + 1, *view.shape[1::-1],
                            *self.size)
            self.letterboxed += 1
            view = letterbox(view, self.size)
        self.writer.write(view)
        self.frames += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()  # writes the index: the file is playable
            self.writer = None


class ImageFileSink:
    """Writes stylized frames as images: the one frame to ``path`` when it has an image suffix, else every frame
    into the folder ``path``, under its source file's name (a frame of a video: ``frame_000042.png``)."""

    def __init__(self, path):
        self.path = Path(path)
        self.single = self.path.suffix.lower() in IMAGE_SUFFIXES
        (self.path.parent if self.single else self.path).mkdir(parents=True, exist_ok=True)
        self.frames = 0

    def write(self, view: np.ndarray, frame) -> None:
        if self.single and self.frames:
            raise StopPipeline(f"{self.path}: an image file holds one frame; give a folder or a video file to keep "
                               "them all")
        target = self.path if self.single else self.path / (frame.name or f"frame_{frame.index:06d}.png")
        if not cv2.imwrite(str(target), view):
            raise StopPipeline(f"{target}: OpenCV could not write this image (is the folder writable?)")
        self.frames += 1

    def close(self) -> None:
        pass


def output_kind(path, frames: int | None = None) -> str:
    """'video', 'animation' (.gif; .webp unless ``frames`` is 1), 'image' or 'folder' (a path without a suffix),
    by the path's suffix; ValueError for any other, or for an animation this OpenCV cannot write."""
    suffix, animates = Path(path).suffix.lower(), hasattr(cv2, "imwriteanimation")
    if suffix in _FOURCC:
        return "video"
    if suffix == ".gif" or (suffix in ANIMATION_SUFFIXES and frames != 1 and (animates or frames is not None)):
        if not animates:
            raise ValueError(f"{path}: animated {suffix[1:].upper()} needs OpenCV 4.11 or newer (this is "
                             f"{cv2.__version__}); write a video file (.mp4) instead")
        return "animation"
    if suffix in IMAGE_SUFFIXES or not suffix:
        return "image" if suffix else "folder"
    raise ValueError(f"{path}: unknown output type; give a video file ({', '.join(sorted(_FOURCC))}), an animation "
                     f"({', '.join(ANIMATION_SUFFIXES)}), an image ({', '.join(IMAGE_SUFFIXES)}) or a folder")


def file_sink(path, fps: float = 30.0, frames: int | None = None):
    """A video file or an animation (by its suffix; ``frames``, where known, makes a .webp of one frame a photo), an
    image file, or a folder of images (a path without a suffix)."""
    video = output_kind(path, frames) in ("video", "animation")
    return VideoFileSink(path, fps=fps) if video else ImageFileSink(path)


class PreviewSink:
    """Keeps one original | stylized pair (the middle frame when the length is known) and writes it as PNG."""

    def __init__(self, path, at_frame: int = 0):
        self.path, self.at, self.pair = Path(path), at_frame, None

    def write(self, view: np.ndarray, frame) -> None:
        if self.pair is None or frame.index == self.at:
            self.pair = np.concatenate([frame.image, frame.stylized], axis=1)

    def close(self) -> None:
        if self.pair is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(self.path), self.pair)


class CallbackSink:
    def __init__(self, fn):
        self.fn = fn

    def write(self, view: np.ndarray, frame) -> None:
        self.fn(view)

    def close(self) -> None:
        pass


class WindowUnavailable(RuntimeError):
    """No window can open here: a headless OpenCV build, or no display."""


# Keys in the window → control commands (stylecam.live.Controls.handle).
KEYS = {ord("n"): "next", 83: "next", ord("p"): "prev", 81: "prev", ord("+"): "stronger", ord("="): "stronger",
        ord("-"): "weaker", ord("o"): "original", ord("s"): "screenshot", ord("q"): "quit", 27: "quit",
        ord("f"): "fullscreen", ord("t"): "smooth", ord("k"): "save", ord("["): "bigger", ord("]"): "finer"}


class WindowSink:
    """An OpenCV window; keys steer the controls (n/p style, +/- strength, t smoothing on/off, [/] bigger/finer
    strokes, k keep the look in the profile, o original, s screenshot, f fullscreen, q quit)."""

    def __init__(self, controls=None, fullscreen: bool = False, title: str = "stylecam",
                 instead: str = "--http HOST:PORT or --output FILE"):
        """``instead``: what the caller can use without a window, named in the error when there is none."""
        self.controls, self.title, self.fullscreen = controls, title, fullscreen
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise WindowUnavailable("this OpenCV cannot open a window (opencv-python-headless, or no display): "
                                    f"use {instead}, or pip install opencv-python for windows") from None
        self._apply_fullscreen()

    def _apply_fullscreen(self):
        mode = cv2.WINDOW_FULLSCREEN if self.fullscreen else cv2.WINDOW_NORMAL
        cv2.setWindowProperty(self.title, cv2.WND_PROP_FULLSCREEN, mode)

    def write(self, view: np.ndarray, frame) -> None:
        cv2.imshow(self.title, view)
        key = cv2.waitKey(1) & 0xFF
        command = KEYS.get(key)
        if command == "fullscreen":
            self.fullscreen = not self.fullscreen
            self._apply_fullscreen()
        elif command and self.controls is not None:
            try:
                self.controls.handle(command)
            except ValueError as e:  # a key pressed too often, a disk too full for a screenshot
                log.warning("%s", e)

    def close(self) -> None:
        cv2.destroyWindow(self.title)


class ProgressSink:
    """A tqdm progress bar over the frames written."""

    def __init__(self, total: int | None = None, desc: str = "stylizing"):
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="frame", desc=desc)

    def write(self, view: np.ndarray, frame) -> None:
        self.bar.update()

    def close(self) -> None:
        self.bar.close()
