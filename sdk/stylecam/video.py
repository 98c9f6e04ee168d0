"""Frame-by-frame video stylization: a source (file, camera index, URL) to a video file and/or a window."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from .stylizer import Stylizer

DEMO_CLIP = Path(__file__).parent / "data" / "demo_640x360.mp4"
_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


class SourceError(RuntimeError):
    """A video source that cannot be opened or read."""


def open_source(source: str | int | os.PathLike) -> cv2.VideoCapture:
    """A camera index ("0", 0), a video file, or an RTSP/HTTP URL / GStreamer pipeline string."""
    spec = str(source)
    if spec == "demo":
        spec = str(DEMO_CLIP)
    if spec.isdigit():
        cap = cv2.VideoCapture(int(spec))
    elif "://" in spec:
        cap = cv2.VideoCapture(spec, cv2.CAP_FFMPEG)
    elif "!" in spec:
        cap = cv2.VideoCapture(spec, cv2.CAP_GSTREAMER)
    else:
        if not Path(spec).is_file():
            raise SourceError(f"{spec}: no such file (give a video file, a camera index like 0, or a URL)")
        cap = cv2.VideoCapture(spec)
    if not cap.isOpened():
        raise SourceError(f"{spec}: OpenCV could not open it (unsupported codec, busy camera, or bad URL)")
    return cap


def open_writer(path: str | os.PathLike, fps: float, size: tuple[int, int]) -> cv2.VideoWriter:
    path = Path(path)
    fourcc = _FOURCC.get(path.suffix.lower())
    if fourcc is None:
        raise ValueError(f"{path}: unsupported video extension; use one of {sorted(_FOURCC)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    if not writer.isOpened():
        raise RuntimeError(f"{path}: OpenCV could not open a {fourcc} writer here")
    return writer


def side_by_side(original: np.ndarray, stylized: np.ndarray, label: str = "") -> np.ndarray:
    pair = np.concatenate([original, stylized], axis=1)
    if label:
        cv2.putText(pair, label, (original.shape[1] + 8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2,
                    cv2.LINE_AA)
    return pair


def stylize_video(stylizer: Stylizer, source, output=None, show: bool = False, preview_png=None,
                  max_frames: int | None = None, progress: bool = True) -> int:
    """Stylize every frame of ``source``; returns the number of frames written/shown.

    Stage times (read, pre, infer, post, write) accumulate in ``stylizer.timer``.
    """
    timer = stylizer.timer
    cap = open_source(source)
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    if max_frames:
        total = min(total or max_frames, max_frames)
    writer, preview, n = None, None, 0
    bar = tqdm(total=total, unit="frame", disable=not progress, desc=f"stylizing ({stylizer.style})")
    try:
        while max_frames is None or n < max_frames:
            with timer("read"):
                ok, frame = cap.read()
            if not ok:
                break
            out = stylizer.stylize(frame)
            with timer("write"):
                if output is not None:
                    if writer is None:
                        writer = open_writer(output, fps, (out.shape[1], out.shape[0]))
                    writer.write(out)
                if show:
                    cv2.imshow("stylecam", out)
                    if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                        break
            if preview_png is not None and (preview is None or n == (total or 0) // 2):
                preview = side_by_side(frame, out, stylizer.style)
            n += 1
            bar.update()
    finally:
        bar.close()
        cap.release()
        if writer is not None:
            writer.release()
        if show:
            cv2.destroyAllWindows()
    if n == 0:
        raise SourceError(f"{source}: no frame could be read")
    if preview is not None:
        Path(preview_png).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(preview_png), preview)
    return n
