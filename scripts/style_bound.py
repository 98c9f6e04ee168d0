#!/usr/bin/env python3
"""How far a style's network is from what the metrics allow: one held-out photo's pixels optimised (Gatys et al.
2016, Adam on the 640×480 frame) for the lowest style ratio at a content error under CAP, beside what the bundle
makes of the same photo. A network's output is one image among those the optimiser searches, so a bundle far above
the optimum has room to paint more at the same content error; one near it does not. With --search weights the
optimiser fits the bundle's network to the photo instead: what its architecture can paint there at most.

  scripts/style_bound.py BUNDLE PAINTING PHOTO [--cap 1.6] [--iters 1500] [--search pixels|weights] [--out optimum.png]
  e.g. scripts/style_bound.py candy ../shared/data/styles/candy.jpg ../shared/data/content/bsds_val_101087.jpg
       (about 75 min on one CPU core with bf16; 400 steps stop far above the optimum: candy 0.137 against 0.085)
"""
import argparse

import cv2
import numpy as np
import torch
from tqdm import tqdm

from stylecam import Stylizer
from stylecam.train.data import read_rgb, to_batch
from stylecam.train.losses import gram
from stylecam.train.metrics import bgr_batch, content_error, frame_photos, style_ratio
from stylecam.styles import resolve
from stylecam.train.models import load_generator
from stylecam.train.trainer import WithMargin, autocast
from stylecam.train.vgg import VGG16Features


class Metrics:
    """The style ratio and content error of ``stylecam eval``, differentiable, against one photo and painting."""

    def __init__(self, vgg: VGG16Features, photo: torch.Tensor, painting: torch.Tensor):
        self.vgg = vgg
        with torch.no_grad():
            self.targets = {k: gram(v) for k, v in vgg(painting).items()}
            self.photo = vgg(photo)

    def __call__(self, rgb01: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.vgg(rgb01)
        return style_ratio(self.targets, feats, self.photo), content_error(feats, self.photo)


class Pixels:
    """The photo's own pixels: the least style ratio any picture reaches at the cap (Gatys et al.)."""

    lr = 0.02

    def __init__(self, photo: torch.Tensor):
        self.x = photo.clone().requires_grad_(True)
        self.parameters = [self.x]

    def render(self) -> torch.Tensor:
        return self.x

    def project(self) -> None:
        with torch.no_grad():
            self.x.clamp_(0, 1)


class Weights:
    """The bundle's network weights, fitted to this one photo: the least its architecture reaches there (from the
    bundle's function). Far above the pixels' bound, the architecture is the limit; near it, the training is."""

    lr = 3e-4  # candy on one photo, 400 steps: 0.194 (1e-3: 0.224; 3e-3 was still at 0.62 after 187)

    def __init__(self, bundle: str, photo: torch.Tensor):
        self.net, self.photo = WithMargin(load_generator(resolve(bundle))), photo
        self.parameters = list(self.net.parameters())

    def render(self) -> torch.Tensor:
        return self.net(self.photo).clamp(0, 1)

    def project(self) -> None:
        pass


def optimum(metrics: Metrics, search: Pixels | Weights, photo: torch.Tensor, cap: float,
            iters: int) -> tuple[torch.Tensor, float, float]:
    """The lowest style ratio the search finds with the content error ≤ cap (a penalty holds it there)."""
    opt = torch.optim.Adam(search.parameters, lr=search.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, iters, eta_min=search.lr / 20)
    best = (photo, 1.0, 0.0)
    steps = tqdm(range(iters), desc="optimising " + type(search).__name__.lower())
    for _ in steps:
        opt.zero_grad()
        with autocast(photo.device):  # the search in bf16 where the CPU has it; measured in fp32
            image = search.render()
            ratio, error = metrics(image)
        if error.item() <= cap and ratio.item() < best[1]:
            best = (image.detach().float().clone(), ratio.item(), error.item())
            steps.set_postfix(best=f"{best[1]:.3f}")
        excess = torch.relu(error - cap)
        (ratio + 2.0 * excess + 50.0 * excess**2).backward()
        opt.step()
        schedule.step()
        search.project()
    image = torch.round(best[0].clamp(0, 1) * 255) / 255  # as a network's output is delivered: 8 bits
    with torch.no_grad():
        ratio, error = metrics(image)
    return image, ratio.item(), error.item()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("bundle", help="a bundled style or a bundle folder")
    p.add_argument("painting", help="the style image the metrics compare with (its longer side scaled to 512)")
    p.add_argument("photo", help="a held-out photo (centre-cropped and resized to 640×480, as stylecam eval does)")
    p.add_argument("--cap", type=float, default=1.6, help="content error allowed (default %(default)s)")
    p.add_argument("--iters", type=int, default=1500, help="optimiser steps (default %(default)s)")
    p.add_argument("--search", choices=("pixels", "weights"), default="pixels",
                   help="what the optimiser changes: the photo's pixels (what the metrics allow), or the bundle's "
                        "network weights on this photo (what its architecture allows); default %(default)s")
    p.add_argument("--out", default="optimum.png", help="the optimised photo beside the bundle's output")
    args = p.parse_args()
    bgr = cv2.imread(args.photo)
    if bgr is None:
        raise SystemExit(f"style_bound: cannot read the photo {args.photo!r}")
    frame = frame_photos([bgr])[0]
    stylizer = Stylizer(args.bundle, backend="onnxruntime", variant="fp32")
    vgg = VGG16Features(None).requires_grad_(False)
    photo = bgr_batch(frame)
    metrics = Metrics(vgg, photo, to_batch([read_rgb(args.painting, max_side=512)]))
    network = stylizer.stylize(frame)
    with torch.no_grad():
        net_ratio, net_error = (v.item() for v in metrics(bgr_batch(network)))
    search = Pixels(photo) if args.search == "pixels" else Weights(args.bundle, photo)
    image, ratio, error = optimum(metrics, search, photo, args.cap, args.iters)
    print(f"{args.bundle}: style ratio {net_ratio:.3f} at content error {net_error:.2f}; "
          f"the optimum ({args.search}) at content error ≤ {args.cap}: {ratio:.3f} at {error:.2f}")
    best = (image[0].permute(1, 2, 0).numpy()[:, :, ::-1] * 255).round().astype(np.uint8)
    cv2.imwrite(args.out, np.hstack([frame, network, best]))
    print(f"photo | {args.bundle} | optimum: {args.out}")


if __name__ == "__main__":
    main()
