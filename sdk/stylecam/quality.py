"""Image similarity on uint8 frames: PSNR and SSIM, the edge band, and the style trade-off plot (NumPy/OpenCV,
matplotlib for the plot; shared by export, eval and `stylecam styles`)."""
from __future__ import annotations

from pathlib import Path

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


def tradeoff_plot(points: list[dict], path: str | Path) -> Path:
    """Style ratio against content error, one marker per model (``label``, ``arch``, ``style_ratio``,
    ``content_error``), one colour per architecture: the trade-off that the style weight moves along. Lower left is
    better; the shaded corner is the full tier's target (ratio ≤ 0.13, content error ≤ 1.6)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5), dpi=110)
    ax.add_patch(plt.Rectangle((0, 0), 1.6, 0.13, color="tab:green", alpha=0.12, label="full-tier target"))
    archs = sorted({p["arch"] for p in points})
    for i, arch in enumerate(archs):
        mine = [p for p in points if p["arch"] == arch]
        ax.scatter([p["content_error"] for p in mine], [p["style_ratio"] for p in mine], color=f"C{i}", label=arch)
        for p in mine:
            ax.annotate(p["label"], (p["content_error"], p["style_ratio"]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
    ax.set_xlabel("content error (relu3_3, relative)")
    ax.set_ylabel("style ratio (1 = the photo's, lower = closer to the painting)")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
