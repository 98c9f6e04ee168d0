"""Perceptual loss (Johnson et al. 2016): content + Gram style + total variation, on VGG16 features."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .options import LossWeights
from .vgg import VGG16Features


def gram(f: torch.Tensor) -> torch.Tensor:
    """Gram matrix normalised by C·H·W, in fp32 (bf16 loses the small entries)."""
    n, c, h, w = f.shape
    f = f.float().reshape(n, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)


def total_variation(x: torch.Tensor) -> torch.Tensor:
    return (x[:, :, 1:] - x[:, :, :-1]).abs().mean() + (x[:, :, :, 1:] - x[:, :, :, :-1]).abs().mean()


class PerceptualLoss(torch.nn.Module):
    """Losses of a stylized batch against its content batch and one style image's Gram targets."""

    def __init__(self, vgg: VGG16Features, style_rgb01: torch.Tensor, weights: LossWeights):
        super().__init__()
        self.vgg, self.w = vgg, weights
        with torch.no_grad():
            feats = vgg(style_rgb01)
            self.targets = {k: gram(feats[k]) for k in weights.style_layers}

    def style_distance(self, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        return sum(F.mse_loss(gram(feats[k]), self.targets[k].expand(feats[k].shape[0], -1, -1))
                   for k in self.w.style_layers)

    def forward(self, stylized: torch.Tensor, content: torch.Tensor) -> dict[str, torch.Tensor]:
        fy = self.vgg(stylized)
        with torch.no_grad():
            fx = self.vgg(content)[self.w.content_layer]
        parts = {"content": F.mse_loss(fy[self.w.content_layer].float(), fx.float()),
                 "style": self.style_distance(fy),
                 "tv": total_variation(stylized.float())}
        parts["total"] = (self.w.content * parts["content"] + self.w.style * parts["style"]
                          + self.w.tv * parts["tv"])
        return parts
