"""Frame sources: camera index (V4L2), video file, RTSP/HTTP URL, GStreamer pipeline, image folder.

A source is opened, read until ``read()`` returns None, and closed. ``live`` sources (cameras, streams) are
the ones the pipeline reconnects to after a failure and whose stale frames it drops.
"""
from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path

import cv2
import numpy as np

DEMO_CLIP = Path(__file__).parent / "data" / "demo_640x360.mp4"
log = logging.getLogger("stylecam")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


ALPHA_SUFFIXES = (".png", ".webp", ".tif", ".tiff")  # formats that can carry transparency


def _may_have_alpha(path: Path) -> bool:
    """Whether decoding ``path`` again for its alpha can pay: a PNG says so before its pixels (colour type 4 or 6
    in its header, or a tRNS chunk: a palette or a colour made transparent), WebP and TIFF only when decoded."""
    suffix = path.suffix.lower()
    if suffix == ".png":
        with open(path, "rb") as f:
            return _png_has_alpha(f)
    return suffix in ALPHA_SUFFIXES


def _png_has_alpha(f) -> bool:
    header = f.read(26)  # signature (8), IHDR's length and type (8), width, height, depth, colour type
    if len(header) < 26:
        return False
    if header[25] in (4, 6):
        return True
    f.seek(8 + 8 + 13 + 4)  # past IHDR's data and CRC; tRNS must come before the first IDAT
    while len(chunk := f.read(8)) == 8 and chunk[4:] != b"IDAT":
        if chunk[4:] == b"tRNS":
            return True
        f.seek(int.from_bytes(chunk[:4], "big") + 4, 1)  # data and CRC
    return False


def jpeg_truncated(path: Path) -> bool:
    """A JPEG whose compressed data ends before its end-of-image marker: libjpeg decodes it with a warning and
    fills the rest grey, which must not pass for a stylized photo. Markers are walked to the first scan (so an
    EXIF thumbnail's own end marker does not count); a motion photo's appended video after the end is fine."""
    try:
        data = path.read_bytes()
    except OSError:
        return False
    if data[:2] != b"\xff\xd8":
        return False
    i = 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker, length = data[i + 1], int.from_bytes(data[i + 2:i + 4], "big")
        if marker == 0xDA:  # start of scan: entropy-coded data follows, up to the end marker
            return data.find(b"\xff\xd9", i + 2 + length) < 0
        if marker == 0xFF:  # a fill byte before the marker
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            i += 2
            continue
        i += 2 + length
    return True  # the headers themselves are cut short


def read_image(path: str | os.PathLike) -> np.ndarray | None:
    """A photo as BGR8 (EXIF orientation applied, 16-bit and gray converted), or BGRA8 where it has an alpha
    channel (PNG, WebP, TIFF), which the Stylizer keeps; None where OpenCV cannot decode it or it is cut short."""
    if Path(path).suffix.lower() in (".jpg", ".jpeg") and jpeg_truncated(Path(path)):
        return None
    frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if frame is None or not _may_have_alpha(Path(path)):
        return frame
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.ndim != 3 or raw.shape[2] != 4 or raw.shape[:2] != frame.shape[:2]:
        return frame
    alpha = raw[:, :, 3:] if raw.dtype == np.uint8 else (raw[:, :, 3:] >> 8).astype(np.uint8)  # 16-bit: top byte
    return np.concatenate([frame, alpha], axis=2)


class SourceError(RuntimeError):
    """A source that cannot be opened; the message says which and why."""


def csi_pipeline(sensor_id: int = 0, width: int = 1280, height: int = 720, fps: int = 30, flip: int = 0) -> str:
    """GStreamer pipeline for a Jetson CSI camera (nvarguscamerasrc), ending in BGR frames for OpenCV."""
    return (f"nvarguscamerasrc sensor-id={sensor_id} ! "
            f"video/x-raw(memory:NVMM), width={width}, height={height}, framerate={fps}/1, format=NV12 ! "
            f"nvvidconv flip-method={flip} ! video/x-raw, width={width}, height={height}, format=BGRx ! "
            "videoconvert ! video/x-raw, format=BGR ! appsink drop=true max-buffers=1 sync=false")


def opencv_build(info: str | None = None) -> dict[str, bool]:
    """What this OpenCV can capture from and show, from its build information: GStreamer (JetPack's OpenCV has
    it, pip's wheels do not), FFmpeg (files, RTSP), V4L2 (Linux cameras) and a window (not the headless wheel)."""
    info = cv2.getBuildInformation() if info is None else info

    def built(key: str) -> bool:
        m = re.search(rf"^\s*{key}:\s*(\S+)", info, re.MULTILINE)
        return bool(m) and m.group(1).upper() not in ("NO", "NONE")

    return {"GStreamer": built("GStreamer"), "FFmpeg": built("FFMPEG"), "V4L2": built("v4l/v4l2"),
            "window": built("GUI")}


def check_gstreamer(spec: str) -> None:
    if not opencv_build()["GStreamer"]:
        raise SourceError(
            f"{spec}: this OpenCV ({cv2.__version__}, {Path(cv2.__file__).parent}) was built without GStreamer, "
            "which GStreamer pipelines and csi cameras need; pip's opencv-python wheels lack it. On a Jetson, use "
            "JetPack's OpenCV: pip uninstall opencv-python opencv-python-headless, in a virtualenv made with "
            "--system-site-packages (README: Jetson)")


class CaptureSource:
    """Anything cv2.VideoCapture opens. ``loop`` restarts a file at its end."""

    def __init__(self, spec: str, *, live: bool, api: int = cv2.CAP_ANY, loop: bool = False,
                 width: int | None = None, height: int | None = None, fps: float | None = None):
        self.spec, self.live, self.api, self.loop = spec, live, api, loop
        self.width, self.height, self.fps_wanted = width, height, fps
        self.cap: cv2.VideoCapture | None = None
        self._first: np.ndarray | None = None  # a file's first frame, decoded at open to prove it decodes

    @property
    def name(self) -> str:
        return self.spec

    def _target(self):
        return int(self.spec) if self.spec.isdigit() else self.spec

    def open(self) -> None:
        self.close()
        if self.api == cv2.CAP_GSTREAMER:
            check_gstreamer(self.spec)
        cap = cv2.VideoCapture(self._target(), self.api)
        if not cap.isOpened() and self.api == cv2.CAP_GSTREAMER:
            raise SourceError(f"{self.spec}: GStreamer could not start this pipeline (try it with gst-launch-1.0, "
                              "appsink replaced by fakesink; for csi: is the camera connected, nvargus-daemon "
                              "running?)")
        if not cap.isOpened():
            raise SourceError(f"{self.spec}: OpenCV could not open it (unsupported codec, busy or missing camera, "
                              "or unreachable URL)")
        if self.spec.isdigit():  # a camera: newest frame only, compressed transfer, asked-for mode
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
        for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, self.width), (cv2.CAP_PROP_FRAME_HEIGHT, self.height),
                            (cv2.CAP_PROP_FPS, self.fps_wanted)):
            if value:
                cap.set(prop, value)
        if not self.live:
            ok, self._first = cap.read()
            if not ok:
                cap.release()
                raise SourceError(f"{self.spec}: opened, but not one frame decodes (a truncated or corrupt file, "
                                  "or a codec this OpenCV build lacks; re-encode it, e.g. to H.264 MP4)")
        self.cap = cap

    def read(self) -> np.ndarray | None:
        if self.cap is None:
            return None
        if self._first is not None:
            frame, self._first = self._first, None
            return frame
        ok, frame = self.cap.read()
        if not ok and self.loop and not self.live:
            self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self.cap.read()
        return frame if ok else None

    @property
    def fps(self) -> float:
        fps = self.cap.get(cv2.CAP_PROP_FPS) if self.cap is not None else 0.0
        return fps if 0 < fps < 1000 else 30.0

    @property
    def frame_count(self) -> int | None:
        n = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT)) if self.cap is not None and not self.live else 0
        return n if n > 0 and not self.loop else None

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None
        self._first = None


class ImageFolderSource:
    """Every image in a folder, in name order (optionally looping), or one image file; unreadable files are
    skipped with a warning. ``last_name`` is the file name of the frame ``read`` returned last."""

    live = False

    def __init__(self, folder: str, loop: bool = False, fps: float = 10.0):
        self.folder, self.loop, self.fps = Path(folder), loop, fps
        self.paths: list[Path] = []
        self.i = 0
        self.last_name: str | None = None
        self.skipped: list[str] = []  # unreadable files, by name

    @property
    def name(self) -> str:
        return str(self.folder)

    @property
    def frame_count(self) -> int | None:
        return None if self.loop else len(self.paths)

    def open(self) -> None:
        if self.folder.is_file():
            self.paths = [self.folder]
        else:
            self.paths = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.paths:
            raise SourceError(f"{self.folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
        self.i = 0

    def read(self) -> np.ndarray | None:
        while self.paths:
            if self.i >= len(self.paths):
                if not self.loop:
                    return None
                self.i = 0
            path = self.paths[self.i]
            frame = read_image(path)
            self.i += 1
            if frame is not None:
                self.last_name = path.name
                return frame
            if len(self.paths) == 1:
                raise SourceError(f"{path}: not a readable image (corrupt, cut short, or not "
                                  f"{', '.join(IMAGE_SUFFIXES)})")
            log.warning("%s: not a readable image (corrupt or cut short), skipped", path)
            if path.name not in self.skipped:
                self.skipped.append(path.name)
        return None

    def close(self) -> None:
        pass


def open_source(spec: str | int | os.PathLike, *, loop: bool = False, width: int | None = None,
                height: int | None = None, fps: float | None = None):
    """A source from a camera index, video file, image folder, URL, GStreamer pipeline, 'csi[:N]' or 'demo'."""
    spec = str(spec)
    if spec == "demo":
        spec = str(DEMO_CLIP)
    if spec.startswith("csi"):
        sensor = int(spec.split(":")[1]) if ":" in spec else 0
        spec = csi_pipeline(sensor, width or 1280, height or 720, int(fps or 30))
    size = {"width": width, "height": height, "fps": fps}
    if spec.isdigit():
        api = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
        src = CaptureSource(spec, live=True, api=api, **size)
    elif "://" in spec:
        src = CaptureSource(spec, live=True, api=cv2.CAP_FFMPEG)
    elif "!" in spec:
        src = CaptureSource(spec, live=True, api=cv2.CAP_GSTREAMER)
    elif Path(spec).is_dir() or (Path(spec).is_file() and Path(spec).suffix.lower() in IMAGE_SUFFIXES):
        src = ImageFolderSource(spec, loop=loop, fps=fps or 10.0)
    elif Path(spec).is_file():
        src = CaptureSource(spec, live=False, loop=loop)
    else:
        raise SourceError(f"{spec}: no such file or folder (give a video file, an image folder, a camera index "
                          "like 0, a URL, a GStreamer pipeline, csi, or demo)")
    src.open()
    return src
