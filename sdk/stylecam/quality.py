"""Image similarity on uint8 frames: PSNR and SSIM (NumPy/OpenCV only, shared by export and eval)."""
from __future__ import annotations

import cv2
import numpy as np


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM over channels (Wang et al. 2004: 11×11 Gaussian window, σ = 1.5)."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    a, b = a.astype(np.float64), b.astype(np.float64)
    blur = lambda x: cv2.GaussianBlur(x, (11, 11), 1.5)  # noqa: E731
    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b, cov = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2, blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(s.mean())


def edge_band(stylize, frame: np.ndarray, strip: int = 8, pad: int = 64) -> float:
    """How differently a network paints a frame's border: the mean absolute difference, in grey levels, between
    each ``strip``-pixel border strip of ``stylize(frame)`` and the same pixels stylized inside a larger frame
    (reflect-padded by ``pad``, cropped back); the worst of the four sides. 0 = no edge band."""
    out = stylize(frame).astype(np.int16)
    big = cv2.copyMakeBorder(frame, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    ref = stylize(big)[pad:-pad, pad:-pad].astype(np.int16)
    d = np.abs(out - ref)
    return float(max(d[:, :strip].mean(), d[:, -strip:].mean(), d[:strip].mean(), d[-strip:].mean()))
