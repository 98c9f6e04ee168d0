"""Training images: content photos held in memory at training scale, sampled as random crops."""
from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from stylecam.sources import IMAGE_SUFFIXES

_REDUCED = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4), (2, cv2.IMREAD_REDUCED_COLOR_2))


def _scale(h: int, w: int, max_side: int | None, min_side: int | None) -> float:
    scale = 1.0
    if max_side and max(h, w) > max_side:
        scale = max_side / max(h, w)
    if min_side:
        scale = min_side / min(h, w)
    return scale


def _decode_flag(path: str | Path, max_side: int | None, min_side: int | None) -> int:
    """For a JPEG, the largest decoder reduction (1/2, 1/4, 1/8) that still leaves the image at least as large as
    asked: a 12-megapixel photo decodes at 1/8 in 12 ms instead of 75. The header alone gives the size (Pillow)."""
    if not (max_side or min_side):
        return cv2.IMREAD_COLOR
    try:
        with Image.open(path) as im:
            (w, h), jpeg = im.size, im.format == "JPEG"  # size before EXIF rotation, which keeps the scale
    except Exception:  # noqa: BLE001 - a format Pillow does not know, or a broken file: OpenCV decides
        return cv2.IMREAD_COLOR
    if not jpeg:  # OpenCV would decode it whole, then shrink it bilinearly, dropping pixels at 1/4 and 1/8
        return cv2.IMREAD_COLOR
    scale = _scale(h, w, max_side, min_side)
    return next((flag for r, flag in _REDUCED if r * scale <= 1), cv2.IMREAD_COLOR)  # the largest first


def read_rgb(path: str | Path, max_side: int | None = None, min_side: int | None = None) -> np.ndarray:
    """An RGB uint8 image, scaled so its longer side ≤ max_side, or its shorter side = min_side."""
    bgr = cv2.imread(str(path), _decode_flag(path, max_side, min_side))
    if bgr is None:
        raise OSError(f"{path}: not a readable image")
    h, w = bgr.shape[:2]
    scale = _scale(h, w, max_side, min_side)
    if scale != 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    return np.ascontiguousarray(bgr[:, :, ::-1])


def _read_or_warning(path: Path, min_side: int) -> np.ndarray | str:
    try:
        return read_rgb(path, min_side=min_side)
    except OSError as e:
        return f"skipping {e}"


def to_batch(images: list[np.ndarray]) -> torch.Tensor:
    """RGB uint8 H×W×3 images of one size → N×3×H×W float in [0, 1]."""
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(255.0)


class ContentImages:
    """Every readable image under ``folder``, shorter side scaled to ``scale`` (default: the crop ``size``), sampled
    as ``size``×``size`` crops; unreadable ones are skipped."""

    def __init__(self, folder: str | Path, size: int, limit: int | None = None, scale: int | None = None):
        paths = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise FileNotFoundError(f"{folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        scale = scale or size
        if scale < size:
            raise ValueError(f"content scale {scale} is smaller than the crop size {size}; "
                             f"use a scale of at least {size}")
        self.size, self.images = size, []
        with ThreadPoolExecutor(os.cpu_count()) as pool:  # OpenCV decodes without the GIL: one photo per core
            for image in pool.map(lambda p: _read_or_warning(p, scale), paths[:limit]):
                if isinstance(image, str):
                    warnings.warn(image, stacklevel=2)
                else:
                    self.images.append(image)
        if not self.images:
            raise FileNotFoundError(f"{folder}: none of the {len(paths)} images could be read")

    def __len__(self) -> int:
        return len(self.images)

    def sample(self, batch: int, rng: np.random.Generator) -> torch.Tensor:
        """A batch of random size×size crops with random horizontal flips."""
        crops = []
        for i in rng.integers(0, len(self.images), batch):
            img = self.images[i]
            y = rng.integers(0, img.shape[0] - self.size + 1)
            x = rng.integers(0, img.shape[1] - self.size + 1)
            crop = img[y:y + self.size, x:x + self.size]
            crops.append(crop[:, ::-1] if rng.random() < 0.5 else crop)
        return to_batch([np.ascontiguousarray(c) for c in crops])
