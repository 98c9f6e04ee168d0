"""Quality metrics of trained styles on held-out photos (``stylecam eval``).

The two headline numbers, comparable with any other network on the same photos:
- style ratio: Σ over relu1_2, relu2_2, relu3_3, relu4_3 of ‖G(stylized) − G(painting)‖² divided by the same sum
  for the unstyled photo (Gram matrices normalised by C·H·W, the painting's longer side 512 px); 1 = no style,
  lower = closer to the painting's statistics;
- content error: mean((relu3_3(stylized) − relu3_3(photo))²) ÷ mean(relu3_3(photo)²); 0 = the photo's content.
Both are averaged over photos centre-cropped and resized to 640×480 (``frame_photos``). Beside them, the edge
band (``stylecam.quality.edge_band``): how far, in grey levels, a frame's 8-px border strips are from the same
pixels stylized inside a larger frame (the worst of the photos' mean and a flat grey frame).

And the older ones, which other stylecam tables used:
- content loss: the training content term (VGG16 relu2_2 MSE, stylized vs photo), lower keeps more content;
- style distance: the training style term (Gram MSE over relu1_2..relu4_3 against the style image);
- VGG16-KID: kernel inception distance computed on VGG16 relu4_3 features (mean-pooled, both sets divided by
  the RMS of the style-crop features so the cubic kernel sees O(1) values), between stylized outputs and random
  crops of the style image. It is *not* Inception-based KID/FID (those weights cannot be
  downloaded here), so its numbers only compare models with each other;
- edge SSIM: SSIM between the Sobel edge maps of the photo and the output, i.e. how well structure survives.

Outputs come from the bundle's FP32 ONNX model through the runtime (what users get), so the numbers include
the padding margin and post-processing.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from stylecam.frames import image_grid
from stylecam.quality import edge_band, ssim
from stylecam.stylizer import Stylizer

from .data import read_rgb, to_batch
from .losses import PerceptualLoss, gram
from .options import LossWeights
from .vgg import VGG16Features


def _edges(bgr: np.ndarray) -> np.ndarray:
    g = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.float32)
    mag = cv2.magnitude(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1))
    return np.clip(mag / 4, 0, 255).astype(np.uint8)


FRAME = (480, 640)  # (H, W) the photos are judged at: a camera frame


def bgr_batch(bgr: np.ndarray) -> torch.Tensor:
    """An OpenCV BGR uint8 frame → a 1×3×H×W RGB batch in [0, 1], as VGG16 sees it."""
    return to_batch([np.ascontiguousarray(bgr[:, :, ::-1])])


def frame_photos(photos: list[np.ndarray], size: tuple[int, int] = FRAME) -> list[np.ndarray]:
    """Each photo centre-cropped to the frame's aspect ratio, then resized to it (area down, bilinear up)."""
    from stylecam.frames import resize

    out = []
    for p in photos:
        h, w = p.shape[:2]
        ch, cw = min(h, round(w * size[0] / size[1])), min(w, round(h * size[1] / size[0]))
        y, x = (h - ch) // 2, (w - cw) // 2
        out.append(np.ascontiguousarray(resize(p[y:y + ch, x:x + cw], size)))
    return out


def kid(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² with the cubic polynomial kernel (Bińkowski et al. 2018) between two feature sets."""
    d = x.shape[1]
    k = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
    m, n = len(x), len(y)
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2 * kxy.mean())


class Evaluator:
    """Holds VGG16 and the held-out photos; ``evaluate(bundle)`` returns the metrics of one style."""

    def __init__(self, photos: list[np.ndarray], vgg: str | None = None, weights: LossWeights | None = None,
                 crops: int = 64, seed: int = 0):
        self.vgg, self.w = VGG16Features(vgg), weights or LossWeights()
        self.photos, self.crops, self.seed = photos, crops, seed

    def _features(self, bgr: np.ndarray) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return self.vgg(bgr_batch(bgr))

    def _style_crops(self, style_rgb: np.ndarray, size: int = 128) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        h, w = style_rgb.shape[:2]
        size = min(size, h, w)  # a small painting: crops as large as it allows
        feats = []
        for _ in range(self.crops):
            y, x = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
            crop = np.ascontiguousarray(style_rgb[y:y + size, x:x + size])
            with torch.no_grad():
                feats.append(self.vgg(to_batch([crop]))["relu4_3"].mean((2, 3))[0].numpy())
        return np.stack(feats)

    def evaluate(self, model, style_image: str | Path, style_size: int = 512,
                 strength: float = 1.0) -> tuple[dict, list[np.ndarray]]:
        """Metrics (means over photos) and the stylized photos of a bundle, or of anything with ``stylize(frame)``
        (a ``stylecam.peer.Peer``: another project's network judged by the same numbers)."""
        style_rgb = read_rgb(style_image, max_side=style_size)
        loss = PerceptualLoss(self.vgg, to_batch([style_rgb]), self.w)  # the training terms, same targets
        stylizer = model if hasattr(model, "stylize") else Stylizer(model, backend="onnxruntime", variant="fp32",
                                                                       strength=strength)
        content, style, ratio, error, edge, band, pooled, outputs = [], [], [], [], [], [], [], []
        for photo in self.photos:
            out = stylizer.stylize(photo)
            outputs.append(out)
            fo, fp = self._features(out), self._features(photo)
            content.append(float(torch.mean((fo[self.w.content_layer] - fp[self.w.content_layer]) ** 2)))
            style.append(float(loss.style_distance(fo)))
            ratio.append(float(style_ratio(loss.targets, fo, fp)))
            error.append(float(content_error(fo, fp)))
            edge.append(ssim(_edges(photo), _edges(out)))
            band.append(edge_band(stylizer.stylize, photo))
            pooled.append(fo["relu4_3"].mean((2, 3))[0].numpy())
        crops = self._style_crops(style_rgb)
        scale = float(np.sqrt(np.mean(crops**2))) or 1.0
        grey = np.full_like(self.photos[0], 128)
        metrics = {"style_ratio": float(np.mean(ratio)), "content_error": float(np.mean(error)),
                   "edge_band": float(max(np.mean(band), edge_band(stylizer.stylize, grey))),
                   "content_loss": float(np.mean(content)), "style_distance": float(np.mean(style)),
                   "vgg16_kid": kid(np.stack(pooled) / scale, crops / scale),
                   "edge_ssim": float(np.mean(edge)), "photos": len(self.photos)}
        return metrics, outputs


def gram_distance(targets: dict[str, torch.Tensor], feats: dict[str, torch.Tensor]) -> torch.Tensor:
    """Σ over the style layers of the squared Frobenius distance between Gram matrices (the style ratio's terms)."""
    return sum(((gram(feats[k]) - targets[k]) ** 2).sum() for k in STYLE_RATIO_LAYERS)


def style_ratio(targets: dict[str, torch.Tensor], stylized: dict[str, torch.Tensor],
                photo: dict[str, torch.Tensor]) -> torch.Tensor:
    """The stylized frame's Gram distance to the painting's ``targets`` over the unstyled photo's (1 = no style)."""
    return gram_distance(targets, stylized) / gram_distance(targets, photo)


def content_error(stylized: dict[str, torch.Tensor], photo: dict[str, torch.Tensor]) -> torch.Tensor:
    """mean((relu3_3(stylized) − relu3_3(photo))²) ÷ mean(relu3_3(photo)²): 0 = the photo's content."""
    return torch.mean((stylized["relu3_3"] - photo["relu3_3"]) ** 2) / torch.mean(photo["relu3_3"] ** 2)


STYLE_RATIO_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")


def contact_sheet(photos: list[np.ndarray], columns: dict[str, list[np.ndarray]], path: str | Path,
                  height: int = 160, paintings: dict[str, np.ndarray] | None = None) -> Path:
    """Rows: photos; columns: the input, then each model. Labels on the first row. With ``paintings`` (label →
    BGR image), a first row shows each model's painting above its outputs, to judge them side by side."""
    rows = [[photo] + [outs[i] for outs in columns.values()] for i, photo in enumerate(photos)]
    if paintings:
        blank = np.zeros_like(photos[0])
        rows.insert(0, [blank] + [paintings.get(label, blank) for label in columns])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image_grid(rows, ["photo", *columns], height))
    return Path(path)
