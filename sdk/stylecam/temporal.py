"""Video stability: optical flow on the input frames, a flicker metric, and runtime smoothing.

Flow is OpenCV's DIS (Kroeger et al. 2016), computed on the *input* frames, never on the stylized ones, so both
the metric and the smoother follow the scene's motion rather than the style's texture.

* ``WarpingError`` is the temporal warping error of Lai et al. (2018): the mean squared difference between each
  stylized frame and the previous one warped to it, over the pixels that the flow's forward-backward check marks
  as visible in both. The same number for the input frames is the floor that real motion, lighting and flow
  error leave; ``relative`` = stylized / input, so 1.0 means "no flicker beyond what the camera saw".
* ``TemporalSmoother`` blends each stylized frame with the flow-warped previous output where the warped input
  agrees with the current input (so moving edges and disocclusions are not smeared).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from .frames import image_grid

_PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
            "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}


def gray(bgr: np.ndarray) -> np.ndarray:
    return bgr if bgr.ndim == 2 else cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)


def dis(preset: str = "medium") -> cv2.DISOpticalFlow:
    if preset not in _PRESETS:
        raise ValueError(f"unknown flow preset '{preset}'; use {', '.join(_PRESETS)}")
    return cv2.DISOpticalFlow_create(_PRESETS[preset])


@lru_cache(maxsize=4)
def _grid(h: int, w: int) -> np.ndarray:
    grid = np.mgrid[0:h, 0:w][::-1].transpose(1, 2, 0).astype(np.float32)  # H×W×2, (x, y)
    grid.flags.writeable = False
    return grid


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``image`` sampled at ``x + flow(x)``: with flow from frame t to frame t-1, frame t-1 aligned to frame t."""
    return cv2.remap(image, _grid(*flow.shape[:2]) + flow, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def visible_mask(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """Pixels of frame t whose motion is consistent both ways and stays inside frame t-1 (Sundaram et al. 2010).

    ``backward``: flow t → t-1; ``forward``: flow t-1 → t. Returns a bool H×W mask.
    """
    fwd_at = warp(forward, backward)  # forward flow read where each pixel of t came from
    gap = np.sum((backward + fwd_at) ** 2, axis=2)
    consistent = gap <= 0.01 * (np.sum(backward ** 2, axis=2) + np.sum(fwd_at ** 2, axis=2)) + 0.5
    h, w = backward.shape[:2]
    src = _grid(h, w) + backward
    inside = (src[..., 0] >= 0) & (src[..., 0] <= w - 1) & (src[..., 1] >= 0) & (src[..., 1] <= h - 1)
    return consistent & inside


@dataclass
class PairError:
    stylized: float
    input: float
    visible: float


class WarpingError:
    """Streaming temporal warping error: feed (input, stylized) frame pairs in order, then read ``result()``."""

    def __init__(self, preset: str = "medium"):
        self._flow = dis(preset)
        self._prev: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.pairs: list[PairError] = []

    def update(self, frame: np.ndarray, stylized: np.ndarray) -> PairError | None:
        if frame.shape[:2] != stylized.shape[:2]:
            raise ValueError(f"input {frame.shape} and stylized {stylized.shape} frames differ in size")
        g = gray(frame)
        pair = None
        if self._prev is not None and self._prev[0].shape == g.shape:
            prev_g, prev_in, prev_out = self._prev
            backward = self._flow.calc(g, prev_g, None)
            forward = self._flow.calc(prev_g, g, None)
            mask = visible_mask(backward, forward)
            if mask.any():
                pair = PairError(stylized=_masked_mse(stylized, warp(prev_out, backward), mask),
                                 input=_masked_mse(frame, warp(prev_in, backward), mask),
                                 visible=float(mask.mean()))
                self.pairs.append(pair)
        self._prev = (g, frame, stylized)
        return pair

    def result(self) -> dict:
        if not self.pairs:
            raise ValueError("need at least two frames of one size to measure flicker")
        stylized = float(np.mean([p.stylized for p in self.pairs]))
        inp = float(np.mean([p.input for p in self.pairs]))
        return {"warping_error": stylized, "input_warping_error": inp, "relative": stylized / max(inp, 1e-12),
                "pairs": len(self.pairs), "visible": float(np.mean([p.visible for p in self.pairs]))}


def _masked_mse(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Mean squared difference over the mask, in [0, 1] intensity units."""
    d = (a.astype(np.float32) - b.astype(np.float32)) / 255.0
    return float(np.mean(d[mask] ** 2))


def check_smoothing(amount: float) -> float:
    a = float(amount)
    if not 0.0 <= a < 1.0:
        raise ValueError(f"smoothing must be in [0, 1) (0 = off, 0.5 = half the previous frame), got {amount}")
    return a


class TemporalSmoother:
    """Runtime flicker reduction: ``out = stylized + weight · (warp(previous out) − stylized)``.

    The flow is computed at ``scale`` of the frame (DIS ultrafast: about a millisecond at 160×90), and the weight
    is ``amount`` where the previous *input*, warped the same way, matches the current input, falling to 0 where
    it differs by ``tolerance`` gray levels or more (occlusions, flow errors); a frame that differs that much on
    average is a scene cut and is not blended at all. Feed consecutive frames
    of one video; a new size restarts it, and ``reset()`` starts a new clip.
    """

    def __init__(self, amount: float = 0.5, scale: float = 0.25, tolerance: float = 16.0,
                 preset: str = "ultrafast"):
        if not 0.0 < scale <= 1.0:
            raise ValueError(f"flow scale must be in (0, 1], got {scale}")
        self.amount, self.scale, self.tolerance = check_smoothing(amount), float(scale), float(tolerance)
        self._flow = dis(preset)
        self._prev: tuple[np.ndarray, np.ndarray] | None = None

    def reset(self) -> None:
        self._prev = None

    def __call__(self, frame: np.ndarray, stylized: np.ndarray) -> np.ndarray:
        h, w = stylized.shape[:2]
        small = cv2.resize(gray(frame), (max(8, round(w * self.scale)), max(8, round(h * self.scale))),
                           interpolation=cv2.INTER_AREA)
        prev, self._prev = self._prev, None
        out = stylized
        if self.amount > 0 and prev is not None and prev[0].shape == small.shape and prev[1].shape == stylized.shape:
            prev_small, prev_out = prev
            flow = self._flow.calc(small, prev_small, None)  # t → t-1
            mismatch = cv2.blur(cv2.absdiff(warp(prev_small, flow), small).astype(np.float32), (3, 3))
            if mismatch.mean() > self.tolerance:  # a scene cut: nothing of the old scene may bleed in
                self._prev = (small, stylized)
                return stylized
            weight = self.amount * np.clip(1.0 - mismatch / self.tolerance, 0.0, 1.0)
            flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
            flow *= (w / small.shape[1], h / small.shape[0])
            weight = cv2.resize(weight, (w, h), interpolation=cv2.INTER_LINEAR)
            out = cv2.blendLinear(warp(prev_out, flow), stylized, weight, 1.0 - weight)
        self._prev = (small, out)
        return out


def read_clip(path: str, max_frames: int | None = None) -> list[np.ndarray]:
    """The first ``max_frames`` frames of a video file (or image folder) as BGR arrays."""
    from .sources import open_source

    source, frames = open_source(path), []
    try:
        while max_frames is None or len(frames) < max_frames:
            frame = source.read()
            if frame is None:
                break
            frames.append(frame)
    finally:
        source.close()
    if len(frames) < 2:
        raise ValueError(f"{path}: need at least two frames to measure flicker, got {len(frames)}")
    return frames


def measure_flicker(stylizer, frames: list[np.ndarray], preset: str = "medium") -> tuple[dict, list[np.ndarray]]:
    """Warping error of ``stylizer`` over consecutive ``frames`` (with its current smoothing), and its outputs."""
    stylizer.reset_video()
    metric, outputs = WarpingError(preset), []
    for frame in frames:
        outputs.append(stylizer.stylize(frame))
        metric.update(frame, outputs[-1])
    return metric.result(), outputs


def flicker_strip(frames: list[np.ndarray], rows: dict[str, list[np.ndarray]], start: int = 0, count: int = 4,
                  height: int = 160) -> np.ndarray:
    """Rows: the input, then each model; columns: ``count`` consecutive frames, then a heat map of the mean
    |frame t − warped frame t−1| over them (brighter = more flicker; same scale in every row)."""
    flow = dis("medium")
    window = frames[start:start + count]
    backward = [flow.calc(gray(b), gray(a), None) for a, b in zip(window, window[1:])]
    grid = []
    for seq in [window, *(r[start:start + count] for r in rows.values())]:
        diffs = [cv2.absdiff(b, warp(a, f)).mean(axis=2) for a, b, f in zip(seq, seq[1:], backward)]
        heat = np.clip(np.mean(diffs, axis=0) * 4, 0, 255).astype(np.uint8)
        grid.append([*seq, cv2.applyColorMap(heat, cv2.COLORMAP_INFERNO)])
    return image_grid(grid, ["input", *rows], height, label_first_row=False)
