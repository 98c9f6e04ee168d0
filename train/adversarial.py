"""Optional adversarial training: a PatchGAN discriminator on style-image patches (Isola et al. 2017).

The perceptual loss matches Gram statistics; a discriminator that sees local patches of the painting can add
what Gram matrices miss (brush-stroke shape). Two objectives (hinge, LSGAN) and two stabilisers (spectral norm on
every discriminator conv, or the R1 gradient penalty on real patches, Mescheder et al. 2018) can be combined.
Mode collapse is watched with ``diversity``: the spread of the outputs across a batch relative to the spread of
the inputs; a generator that paints the same texture whatever the photo drives it towards 0.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

OBJECTIVES = ("hinge", "lsgan")


class PatchDiscriminator(nn.Module):
    """Conv 4×4 stride 2 stack → one logit per patch (receptive field 70 px with the default 3 layers)."""

    def __init__(self, width: int = 64, layers: int = 3, spectral_norm: bool = True):
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm if spectral_norm else (lambda m: m)
        chans = [3] + [width * 2 ** min(i, 3) for i in range(layers + 1)]
        body = []
        for i in range(layers + 1):
            stride = 2 if i < layers else 1
            body += [sn(nn.Conv2d(chans[i], chans[i + 1], 4, stride, 1)), nn.LeakyReLU(0.2, inplace=True)]
        self.body = nn.Sequential(*body, sn(nn.Conv2d(chans[-1], 1, 4, 1, 1)))

    def forward(self, rgb01: torch.Tensor) -> torch.Tensor:
        return self.body(rgb01 * 2.0 - 1.0)


def d_loss(kind: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    if kind == "hinge":
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
    return ((real - 1.0) ** 2).mean() + (fake ** 2).mean()


def g_loss(kind: str, fake: torch.Tensor) -> torch.Tensor:
    return -fake.mean() if kind == "hinge" else ((fake - 1.0) ** 2).mean()


def r1_penalty(disc: nn.Module, real: torch.Tensor) -> torch.Tensor:
    """E‖∇D(real)‖², the zero-centred gradient penalty on real samples."""
    real = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(disc(real).sum(), real, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def style_patches(style: torch.Tensor, size: int, batch: int, rng: np.random.Generator) -> torch.Tensor:
    """Random ``size``×``size`` crops (with flips) of a 1×3×H×W style image; smaller images are upscaled."""
    _, _, h, w = style.shape
    if min(h, w) < size:
        style = F.interpolate(style, scale_factor=size / min(h, w), mode="bilinear", align_corners=False)
        _, _, h, w = style.shape
    crops = []
    for _ in range(batch):
        y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
        crop = style[:, :, y:y + size, x:x + size]
        crops.append(crop.flip(3) if rng.random() < 0.5 else crop)
    return torch.cat(crops)


def diversity(outputs: torch.Tensor, inputs: torch.Tensor) -> float:
    """Per-pixel standard deviation across the batch, outputs over inputs (≈ 0 means mode collapse)."""
    with torch.no_grad():
        return float(outputs.float().std(0).mean() / inputs.float().std(0).mean().clamp(min=1e-6))


class Adversary:
    """The discriminator, its optimizer and one training step; the generator side is ``generator_loss``."""

    def __init__(self, kind: str, device: torch.device, lr: float = 2e-4, spectral_norm: bool = True,
                 r1: float = 0.0):
        if kind not in OBJECTIVES:
            raise ValueError(f"unknown adversarial objective '{kind}'; use {', '.join(OBJECTIVES)}")
        self.kind, self.r1 = kind, r1
        self.disc = PatchDiscriminator(spectral_norm=spectral_norm).to(device)
        self.opt = torch.optim.Adam(self.disc.parameters(), lr=lr, betas=(0.5, 0.999))

    def generator_loss(self, fake: torch.Tensor) -> torch.Tensor:
        for p in self.disc.parameters():
            p.requires_grad_(False)
        try:
            return g_loss(self.kind, self.disc(fake.float()))
        finally:
            for p in self.disc.parameters():
                p.requires_grad_(True)

    def step(self, real: torch.Tensor, fake: torch.Tensor) -> dict[str, float]:
        """One discriminator update on style patches (real) and detached generator outputs (fake)."""
        real_logits, fake_logits = self.disc(real), self.disc(fake.detach().float())
        loss = d_loss(self.kind, real_logits, fake_logits)
        if self.r1:
            loss = loss + 0.5 * self.r1 * r1_penalty(self.disc, real)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"d_loss": loss.item(), "d_real": real_logits.mean().item(), "d_fake": fake_logits.mean().item()}

    def state_dict(self) -> dict:
        return {"disc": self.disc.state_dict(), "opt": self.opt.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.disc.load_state_dict(state["disc"])
        self.opt.load_state_dict(state["opt"])
