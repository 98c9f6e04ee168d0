"""Train a feed-forward style generator with the perceptual loss and write a stylecam bundle.

Checkpoints are atomic (write, then rename) and hold only tensors and plain values, so ``--resume`` loads them
with ``torch.load(weights_only=True)`` and continues at the same step with the same data order.
"""
from __future__ import annotations

import argparse
import csv
import io
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from stylecam.bundle import atomic_write_bytes, write_manifest
from stylecam.styles import resolve

from .data import ContentImages, read_rgb, to_batch
from .losses import PerceptualLoss, temporal_loss
from .models import build_generator, describe, load_generator
from .options import LossWeights
from .vgg import VGG16Features


@dataclass
class TrainConfig:
    style: str
    content: str
    out: str
    arch: str = "small"
    steps: int = 2000
    size: int = 256
    style_size: int = 512
    batch: int = 4
    lr: float = 1e-3
    seed: int = 0
    weights: LossWeights = field(default_factory=LossWeights)
    vgg: str | None = None
    device: str = "auto"
    checkpoint_every: int = 200
    name: str | None = None
    title: str | None = None
    style_licence: str = "unknown"
    content_limit: int | None = None
    init: str | None = None
    resume: bool = False


LOGGED = ("total", "content", "style", "tv", "temporal")


def _device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def _hardware(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


class Checkpoint:
    """``<bundle>/.train/checkpoint.pt``: model, optimizer, step and the data RNG state."""

    def __init__(self, out: Path):
        self.path = out / ".train" / "checkpoint.pt"

    def save(self, model, opt, step: int, rng: np.random.Generator) -> None:
        buf = io.BytesIO()
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                    "rng": rng.bit_generator.state}, buf)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.path, buf.getvalue())

    def load(self, model, opt, rng: np.random.Generator) -> int:
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as e:  # a checkpoint we cannot read is reported, never half-used
            raise RuntimeError(f"{self.path}: unreadable checkpoint ({e}); delete it to start over") from e
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        rng.bit_generator.state = state["rng"]
        return int(state["step"])


def write_bundle(cfg: TrainConfig, model, step: int, hardware: str, seconds: float, last: dict) -> None:
    """weights.safetensors + style.jpg + manifest.json (the model card); ONNX comes from `stylecam export`."""
    from safetensors.torch import save as save_safetensors

    out = Path(cfg.out)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write_bytes(out / "weights.safetensors", save_safetensors(state))
    thumb = read_rgb(cfg.style, max_side=256)[:, :, ::-1]
    atomic_write_bytes(out / "style.jpg", cv2.imencode(".jpg", thumb, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
    name = cfg.name or out.name
    recipe = {k: v for k, v in asdict(cfg).items() if k not in ("out", "resume", "vgg", "device")}
    recipe["style"] = Path(cfg.style).name
    recipe["content"] = Path(cfg.content).name
    if cfg.init:
        recipe["init"] = Path(cfg.init).name
    write_manifest(out, {
        "name": name,
        "title": cfg.title or name.replace("_", " ").title(),
        "architecture": describe(model),
        "input": model.cfg.contract(),
        "training": {"recipe": recipe, "steps_done": step, "hardware": hardware,
                     "seconds": round(seconds, 1), "final_losses": last},
        "style_image": {"file": Path(cfg.style).name, "licence": cfg.style_licence},
        "metrics": {},
    }, files=["weights.safetensors", "style.jpg"])


def train(cfg: TrainConfig, progress: bool = True) -> Path:
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    device = _device(cfg.device)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)

    data = ContentImages(cfg.content, cfg.size, cfg.content_limit)
    vgg = VGG16Features(cfg.vgg).to(device)
    style = to_batch([read_rgb(cfg.style, max_side=cfg.style_size)]).to(device)
    loss_fn = PerceptualLoss(vgg, style, cfg.weights)
    model = build_generator(cfg.arch)
    if cfg.init:
        model = load_generator(resolve(cfg.init)).train()
    model = model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    ckpt = Checkpoint(out)
    step = ckpt.load(model, opt, rng) if cfg.resume and ckpt.path.is_file() else 0
    if cfg.resume and step == 0:
        print(f"no checkpoint at {ckpt.path}; starting from step 0")

    amp = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    log_path = out / ".train" / "log.csv"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    new_log = not log_path.exists() or step == 0
    hardware, t0, last = _hardware(device), time.time(), {}
    model.train()
    with open(log_path, "w" if new_log else "a", newline="") as logf, \
            tqdm(total=cfg.steps, initial=step, disable=not progress, desc=f"train {out.name}") as bar:
        log = csv.writer(logf)
        if new_log:
            log.writerow(["step", *LOGGED, "seconds"])
        while step < cfg.steps:
            x = data.sample(cfg.batch, rng).to(device, non_blocking=True)
            with amp:
                y = model(x)
                parts = loss_fn(y, x)
                if cfg.weights.temporal:
                    parts["temporal"] = temporal_loss(model, x, y, rng)
                    parts["total"] = parts["total"] + cfg.weights.temporal * parts["temporal"]
            opt.zero_grad(set_to_none=True)
            parts["total"].backward()
            opt.step()
            step += 1
            bar.update()
            if step % 20 == 0 or step == cfg.steps:
                last = {k: round(v.item(), 6) for k, v in parts.items()}
                log.writerow([step, *(last.get(k, 0.0) for k in LOGGED), round(time.time() - t0, 1)])
                bar.set_postfix(style=f"{last['style']:.3g}", content=f"{last['content']:.3g}")
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                logf.flush()
                ckpt.save(model, opt, step, rng)
                model.eval()
                write_bundle(cfg, model, step, hardware, time.time() - t0, last)
                model.train()
    return out


def main(args: argparse.Namespace) -> None:
    weights = LossWeights(content=args.content_weight, style=args.style_weight, tv=args.tv_weight,
                          temporal=args.temporal_weight)
    cfg = TrainConfig(style=args.style, content=args.content, out=args.out, arch=args.arch, steps=args.steps,
                      size=args.size, style_size=args.style_size, batch=args.batch, lr=args.lr, seed=args.seed,
                      weights=weights, vgg=args.vgg, device=args.device, checkpoint_every=args.checkpoint_every,
                      name=args.name, title=args.title, style_licence=args.style_licence,
                      content_limit=args.content_limit, init=args.init, resume=args.resume)
    out = train(cfg)
    print(f"bundle written: {out} (next: stylecam export {out})")
