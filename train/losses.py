"""Perceptual loss (Johnson et al. 2016): content + Gram style + total variation, on VGG16 features; and a
temporal stability loss for video."""
from __future__ import annotations

import numpy as np
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
        return sum(share * F.mse_loss(gram(feats[k]), self.targets[k].expand(feats[k].shape[0], -1, -1))
                   for k, share in zip(self.w.style_layers, self.w.style_layer_weights, strict=True))

    def forward(self, stylized: torch.Tensor, content: torch.Tensor,
                features: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """``features``: VGG features of ``stylized`` when the caller has them already (one pass per step)."""
        tv = total_variation(stylized.float())
        if not (self.w.content or self.w.style):  # e.g. pure distillation: no VGG pass at all
            zero = tv.new_zeros(())
            return {"content": zero, "style": zero, "tv": tv, "total": self.w.tv * tv}
        fy = features if features is not None else self.vgg(stylized)
        with torch.no_grad():
            fx = self.vgg(content)[self.w.content_layer]
        parts = {"content": F.mse_loss(fy[self.w.content_layer].float(), fx.float()),
                 "style": self.style_distance(fy),
                 "tv": tv}
        parts["total"] = (self.w.content * parts["content"] + self.w.style * parts["style"]
                          + self.w.tv * parts["tv"])
        return parts


def random_motion(x: torch.Tensor, rng: np.random.Generator, shift: float = 0.02, degrees: float = 1.0,
                  zoom: float = 0.02) -> torch.Tensor:
    """Per-image affine sampling grids for a small random camera motion (shift as a fraction of the size)."""
    n = x.shape[0]
    a = np.deg2rad(rng.uniform(-degrees, degrees, n))
    z = 1.0 + rng.uniform(-zoom, zoom, n)
    t = rng.uniform(-2 * shift, 2 * shift, (n, 2))  # affine_grid coordinates span 2 per image side
    theta = np.stack([np.stack([z * np.cos(a), -z * np.sin(a), t[:, 0]], 1),
                      np.stack([z * np.sin(a), z * np.cos(a), t[:, 1]], 1)], 1)
    theta = torch.as_tensor(theta, dtype=torch.float32, device=x.device)
    return torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)


def temporal_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator,
                  noise: float = 0.02) -> torch.Tensor:
    """Stability under a next frame (Wang et al. 2020, compound regularisation): the output for a slightly moved
    and re-noised input must equal the output moved the same way, ``G(W(x) + n) ≈ W(G(x))``, on pixels that the
    motion keeps inside the frame. Mean squared error in [0, 1] units."""
    grid = random_motion(x, rng)
    gen = torch.Generator(device=x.device).manual_seed(int(rng.integers(2 ** 31)))
    moved = F.grid_sample(x, grid, align_corners=False, padding_mode="border")
    moved = moved + noise * torch.randn(moved.shape, generator=gen, device=x.device)
    inside = F.grid_sample(torch.ones_like(x[:, :1]), grid, align_corners=False) > 0.999
    target = F.grid_sample(y.float(), grid, align_corners=False, padding_mode="border")
    err = (model(moved.clamp(0, 1)).float() - target) ** 2
    return err.mul(inside).sum() / (inside.sum() * err.shape[1]).clamp(min=1)
