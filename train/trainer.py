"""Train a feed-forward style generator with the perceptual loss and write a stylecam bundle.

Checkpoints are atomic (write, then rename) and hold only tensors and plain values, so ``--resume`` loads them
with ``torch.load(weights_only=True)`` and continues at the same step with the same data order. Optional parts:
a PatchGAN adversary (``adversarial.py``), distillation from a trained teacher bundle (output and VGG feature
matching), the temporal stability loss, and several processes under ``torchrun`` (``distributed.py``).
"""
from __future__ import annotations

import argparse
import copy
import csv
import io
import os
import platform
import statistics
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from stylecam.bundle import atomic_write_bytes, write_manifest
from stylecam.frames import image_grid
from stylecam.styles import resolve

from . import distributed
from .adversarial import Adversary, diversity, style_patches
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
    arch: str | None = None  # None: "small_in", or the --init bundle's architecture
    steps: int = 2000
    size: int = 256
    content_scale: int | None = None  # the photos' shorter side before cropping; None = size
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
    gan: str | None = None  # "hinge" or "lsgan": adversarial training against a PatchGAN
    spectral_norm: bool = True
    r1: float = 0.0  # R1 gradient penalty weight (γ); 0 = off
    d_lr: float = 2e-4
    teacher: str | None = None  # a trained bundle to distil from
    freeze_bn: bool | None = None  # keep BatchNorm statistics fixed; None = when fine-tuning (--init)

    def __post_init__(self):
        if self.init:  # fine-tuning keeps the network it starts from, and the recipe records it
            arch = resolve(self.init).manifest["architecture"]["name"]
            if self.arch not in (None, arch):
                raise ValueError(f"--arch {self.arch} does not match --init {self.init}, a {arch} network; "
                                 "leave --arch out when fine-tuning")
            self.arch = arch
        self.arch = self.arch or "small_in"
        if self.freeze_bn is None:
            self.freeze_bn = bool(self.init)


LOGGED = ("total", "content", "style", "tv", "temporal", "gan", "distill", "d_loss", "d_real", "d_fake",
          "diversity")


def _hardware(world: distributed.World) -> str:
    device = world.device
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    name += ", bf16 autocast" if uses_bf16(device) else ""
    return name if world.size == 1 else f"{world.size} processes × {name} ({world.backend})"


class Checkpoint:
    """``<bundle>/.train/checkpoint.pt``: model, optimizers, step and every process's data RNG state."""

    def __init__(self, out: Path):
        self.path = out / ".train" / "checkpoint.pt"

    def save(self, model, opt, step: int, rng: np.random.Generator, world: distributed.World,
             adversary: Adversary | None = None) -> None:
        rngs = distributed.gather(rng.bit_generator.state, world)  # every rank takes part; rank 0 writes
        if not world.main:
            return
        state = {"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "rng": rngs}
        if adversary is not None:
            state["adversary"] = adversary.state_dict()
        buf = io.BytesIO()
        torch.save(state, buf)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.path, buf.getvalue())

    def load(self, model, opt, rng: np.random.Generator, world: distributed.World,
             adversary: Adversary | None = None) -> int:
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as e:  # a checkpoint we cannot read is reported, never half-used
            raise RuntimeError(f"{self.path}: unreadable checkpoint ({e}); delete it to start over") from e
        rngs = state["rng"] if isinstance(state["rng"], list) else [state["rng"]]
        if len(rngs) != world.size:
            raise RuntimeError(f"{self.path} was written by {len(rngs)} process(es); resume with the same "
                               f"number (torchrun --nproc_per_node {len(rngs)})")
        if (adversary is None) != ("adversary" not in state):
            raise RuntimeError(f"{self.path}: {'has' if 'adversary' in state else 'has no'} discriminator state; "
                               "resume with the same --gan setting it was trained with")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        rng.bit_generator.state = rngs[world.rank]
        if adversary is not None:
            adversary.load_state_dict(state["adversary"])
        return int(state["step"])


def write_bundle(cfg: TrainConfig, model, step: int, hardware: str, seconds: float, last: dict,
                 extra: dict | None = None) -> None:
    """weights.safetensors + style.jpg + manifest.json (the model card); ONNX comes from `stylecam export`."""
    from safetensors.torch import save as save_safetensors

    out = Path(cfg.out)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write_bytes(out / "weights.safetensors", save_safetensors(state))
    thumb = read_rgb(cfg.style, max_side=256)[:, :, ::-1]
    atomic_write_bytes(out / "style.jpg", cv2.imencode(".jpg", thumb, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
    name = cfg.name or out.name
    recipe = {k: v for k, v in asdict(cfg).items() if k not in ("out", "resume", "vgg", "device")}
    for key in ("style", "content", "init", "teacher"):
        if recipe.get(key):
            recipe[key] = Path(recipe[key]).name
    training = {"recipe": recipe, "steps_done": step, "hardware": hardware, "seconds": round(seconds, 1),
                "final_losses": last, **(extra or {})}
    if cfg.init:
        training["phases"] = training_phases(resolve(cfg.init).manifest) + [_phase(training)]
    write_manifest(out, {
        "name": name,
        "title": cfg.title or name.replace("_", " ").title(),
        "architecture": describe(model),
        "input": model.cfg.contract(),
        "training": training,
        "style_image": {"file": Path(cfg.style).name, "licence": cfg.style_licence},
        "metrics": {},
    }, files=["weights.safetensors", "style.jpg"])


def training_phases(manifest: dict) -> list[dict]:
    """How a bundle was trained, one entry per run: a fine-tune (--init) inherits its starting bundle's phases,
    so a shipped style's manifest tells its whole history."""
    training = manifest.get("training", {})
    return list(training.get("phases") or ([_phase(training)] if training.get("recipe") else []))


def _phase(training: dict) -> dict:
    r = training["recipe"]
    w = r.get("weights", {})
    return {"steps": training.get("steps_done"), "from": r.get("init") or "scratch", "style_weight": w.get("style"),
            "temporal_weight": w.get("temporal"), "content_layer": w.get("content_layer"),
            "style_layer_weights": w.get("style_layer_weights"), "lr": r.get("lr"),
            "batch": r.get("batch"), "size": r.get("size"), "hardware": training.get("hardware"),
            "seconds": training.get("seconds")}


def write_samples(path: Path, model, photos: torch.Tensor) -> None:
    """Rows: the fixed sample photos, then the model's outputs for them (a JPEG per checkpoint)."""
    with torch.no_grad():
        outs = model(photos).float().clamp(0, 1)
    as_bgr = lambda t: [np.ascontiguousarray((i.permute(1, 2, 0).cpu().numpy()[:, :, ::-1] * 255).round()  # noqa: E731
                                             .astype(np.uint8)) for i in t]
    path.parent.mkdir(parents=True, exist_ok=True)
    grid = image_grid([as_bgr(photos), as_bgr(outs)], ["photos", "step " + path.stem.split("_")[-1]],
                      height=photos.shape[2], label_first_row=False)
    atomic_write_bytes(path, cv2.imencode(".jpg", grid, [cv2.IMWRITE_JPEG_QUALITY, 88])[1].tobytes())


def _sample_photos(data: ContentImages, size: int, count: int = 4) -> torch.Tensor:
    """Centre crops of the first photos: the same every checkpoint, so the sample grids compare."""
    crops = []
    for img in data.images[:count]:
        y, x = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
        crops.append(np.ascontiguousarray(img[y:y + size, x:x + size]))
    return to_batch(crops)


class Distiller:
    """Match a trained teacher's output (pixels) and its VGG16 relu3_3 features."""

    def __init__(self, teacher: str, vgg: VGG16Features, device: torch.device, weights: LossWeights):
        self.teacher = load_generator(resolve(teacher)).eval().to(device)
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.vgg, self.w = vgg, weights

    def __call__(self, x: torch.Tensor, y: torch.Tensor, features: dict[str, torch.Tensor] | None) -> torch.Tensor:
        """``features``: the VGG features of ``y`` (needed when the feature term is on)."""
        with torch.no_grad():
            t = self.teacher(x).float().clamp(0, 1)
            ft = self.vgg(t)["relu3_3"].float() if self.w.distill_feature else None
        loss = self.w.distill_pixel * torch.nn.functional.mse_loss(y.float(), t)
        if self.w.distill_feature:
            loss = loss + self.w.distill_feature * torch.nn.functional.mse_loss(features["relu3_3"].float(), ft)
        return loss


class WithMargin(torch.nn.Module):
    """The network as the runtime runs it: the input reflect-padded by the network's margin, the output cropped
    back, so training sees the same borders (and InstanceNorm the same statistics) as deployment."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net, self.margin = net, net.cfg.margin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.margin
        if not m:
            return self.net(x)
        y = self.net(torch.nn.functional.pad(x, (m, m, m, m), mode="reflect"))
        return y[:, :, m:-m, m:-m]


def uses_bf16(device: torch.device) -> bool:
    """bf16 autocast on CUDA, and on CPUs whose oneDNN has bf16 kernels (AMX or AVX-512 BF16: VGG16 forward +
    backward 1.9x faster than fp32 on a 2-core Zen 4); elsewhere fp32, where emulated bf16 would be slower."""
    return device.type == "cuda" or (device.type == "cpu" and cpu_has_bf16())


def autocast(device: torch.device) -> torch.autocast:
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=uses_bf16(device))


def cpu_has_bf16() -> bool:
    if os.environ.get("STYLECAM_CPU_BF16") in ("0", "1"):  # an override, e.g. to compare both on one CPU
        return os.environ["STYLECAM_CPU_BF16"] == "1"
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in flags.split() for f in ("amx_bf16", "avx512_bf16"))


def set_train_mode(model: torch.nn.Module, freeze_bn: bool) -> None:
    """Training mode, with BatchNorm on its running statistics when frozen; its scale and shift still learn.
    Updated at batch 2, the statistics turn noisy: a temporal fine-tune of candy then lost 20 % of its style
    (2 % frozen), and a fine-tune to a new painting blew up at step 400 (README)."""
    model.train()
    if freeze_bn:
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.eval()


def train(cfg: TrainConfig, progress: bool = True) -> Path:
    world = distributed.setup(cfg.device)
    try:
        out = _train(cfg, world, progress and world.main)
        distributed.finish(world)  # not in `finally`: after a failure on one rank the others would wait forever
        return out
    finally:
        distributed.teardown(world)


def _train(cfg: TrainConfig, world: distributed.World, progress: bool) -> Path:
    out, device = Path(cfg.out), world.device
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank
    rng = np.random.default_rng(cfg.seed + world.rank)  # different crops on every rank

    data = ContentImages(cfg.content, cfg.size, cfg.content_limit, cfg.content_scale)
    vgg = VGG16Features(cfg.vgg).to(device)
    style = to_batch([read_rgb(cfg.style, max_side=cfg.style_size)]).to(device)
    loss_fn = PerceptualLoss(vgg, style, cfg.weights)
    model = (load_generator(resolve(cfg.init)).train() if cfg.init else build_generator(cfg.arch)).to(device)
    net = model  # the plain module: saved, sampled, exported
    model = WithMargin(net)
    if world.size > 1:
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.index is not None
                                                          else None)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    adversary = Adversary(cfg.gan, device, cfg.d_lr, cfg.spectral_norm, cfg.r1) if cfg.gan else None
    distiller = Distiller(cfg.teacher, vgg, device, cfg.weights) if cfg.teacher else None
    w = cfg.weights
    needs_features = bool(w.content or w.style or (distiller and w.distill_feature))
    ckpt = Checkpoint(out)
    step = ckpt.load(net, opt, rng, world, adversary) if cfg.resume and ckpt.path.is_file() else 0
    if cfg.resume and step == 0 and world.main:
        print(f"no checkpoint at {ckpt.path}; starting from step 0")

    amp = autocast(device)
    log_path = out / ".train" / "log.csv"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    new_log = not log_path.exists() or step == 0
    hardware, t0, last, skipped = _hardware(world), time.time(), {}, 0
    guard = SpikeGuard({"model": net, "opt": opt} | ({"adversary": adversary} if adversary else {}))
    samples = _sample_photos(data, cfg.size).to(device)
    set_train_mode(net, cfg.freeze_bn)
    logf = open(log_path, "w" if new_log else "a", newline="") if world.main else io.StringIO()
    with logf, tqdm(total=cfg.steps, initial=step, disable=not progress, desc=f"train {out.name}") as bar:
        log = csv.writer(logf)
        if new_log:
            log.writerow(["step", *LOGGED, "seconds"])
        while step < cfg.steps:
            x = data.sample(cfg.batch, rng).to(device, non_blocking=True)
            with amp:
                y = model(x)
                features = vgg(y) if needs_features else None  # one VGG pass, shared by the loss terms
                parts = loss_fn(y, x, features)
                extra = {}
                if cfg.weights.temporal:
                    extra["temporal"] = (cfg.weights.temporal, temporal_loss(model, x, y, rng))
                if adversary:
                    extra["gan"] = (cfg.weights.gan, adversary.generator_loss(y))
                if distiller:
                    extra["distill"] = (1.0, distiller(x, y, features))
                for name, (weight, value) in extra.items():
                    parts[name] = value
                    parts["total"] = parts["total"] + weight * value
            opt.zero_grad(set_to_none=True)
            if not _backward_finite(parts, model, world):  # one bad batch must not poison the weights
                skipped = _skip_non_finite(skipped, step, parts)
                continue
            skipped = 0
            ratio = guard.spike(distributed.mean(parts["total"], world))  # the same on every rank
            if ratio is not None:
                opt.zero_grad(set_to_none=True)
                step = guard.roll_back(step, ratio)
                bar.n = step
                bar.refresh()
                continue
            guard.keep(step)
            opt.step()
            stats = {}
            if adversary:
                stats = adversary.step(style_patches(style, cfg.size, cfg.batch, rng), y)
                distributed.average_gradients(adversary.disc, world)  # no-op on one process
                stats["diversity"] = diversity(y, x)
            step += 1
            bar.update()
            if step % 20 == 0 or step == cfg.steps or step == 1:
                last = {k: round(v.item(), 6) for k, v in parts.items()} | {k: round(v, 6) for k, v in stats.items()}
                log.writerow([step, *(last.get(k, 0.0) for k in LOGGED), round(time.time() - t0, 1)])
                bar.set_postfix(style=f"{last['style']:.3g}", content=f"{last['content']:.3g}")
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                logf.flush()
                ckpt.save(net, opt, step, rng, world, adversary)
                identical = distributed.replicas_identical(net, world) if world.size > 1 else None
                if world.main:
                    net.eval()
                    write_samples(out / ".train" / "samples" / f"step_{step:06d}.jpg", WithMargin(net), samples)
                    dist_info = {"distributed": {"world_size": world.size, "backend": world.backend,
                                                 "replicas_identical": identical}} if world.size > 1 else {}
                    write_bundle(cfg, net, step, hardware, time.time() - t0, last, dist_info)
                    set_train_mode(net, cfg.freeze_bn)
    return out


MAX_SKIPPED = 10  # non-finite losses in a row before training stops: by then it is the weights, not a batch


class SpikeGuard:
    """Rolls training back to recent healthy weights when the loss jumps far above its recent median.

    A finite blow-up passes the non-finite check: `johnson` on candy went from a total loss of 3.6e5 to 2.9e10
    within 20 steps at step 4,930 of 6,000, Adam's moments were poisoned, and it ended with no style left (style
    ratio 1.03); before that, the logged losses of both 6,000-step candy runs stayed within 1.4× of their median.
    The guard keeps an in-memory copy of the weights and optimizer state every ``every`` healthy steps (a few MB)
    and restores it, with the step count, on a spike; the data order goes on, so the same batches do not come back.
    """

    factor = 10.0  # a spike: the loss this many times its recent median
    window = 50  # healthy steps the median is taken over
    every = 50  # steps between kept copies
    max_rollbacks = 5  # to the same copy, before training stops

    def __init__(self, parts: dict):
        self.parts = parts  # name -> what has state_dict()/load_state_dict(): network, optimizer, adversary
        self.recent: deque[float] = deque(maxlen=self.window)
        self.kept: tuple[int, dict] | None = None
        self.rollbacks = 0

    def spike(self, loss: float) -> float | None:
        """The loss's multiple of the recent median where it is a spike, else None (and the loss is counted)."""
        if len(self.recent) == self.recent.maxlen and loss > self.factor * statistics.median(self.recent):
            return loss / statistics.median(self.recent)
        self.recent.append(loss)
        return None

    def keep(self, step: int) -> None:
        """Copy the state at a healthy step (call it before the step's update) every ``every`` steps."""
        if self.kept is None or step - self.kept[0] >= self.every:
            self.kept = step, {name: copy.deepcopy(part.state_dict()) for name, part in self.parts.items()}
            self.rollbacks = 0

    def roll_back(self, step: int, ratio: float) -> int:
        """Restore the kept state; return its step. Raises after ``max_rollbacks`` to the same copy."""
        self.rollbacks += 1
        if self.kept is None or self.rollbacks > self.max_rollbacks:
            raise RuntimeError(f"step {step + 1}: the loss jumped to {ratio:.0f}× its recent median "
                               f"{self.rollbacks} times from the same weights; lower --lr, then --resume from "
                               "the last checkpoint")
        kept_step, states = self.kept
        for name, part in self.parts.items():  # a copy: the optimizer would alias the kept tensors
            part.load_state_dict(copy.deepcopy(states[name]))
        tqdm.write(f"step {step + 1}: loss {ratio:.0f}× its median over the last {len(self.recent)} steps; "
                   f"rolled back to step {kept_step} (weights and optimizer), going on with new batches")
        return kept_step


def _backward_finite(parts: dict[str, torch.Tensor], model: torch.nn.Module, world: distributed.World) -> bool:
    """Backpropagate the total loss; False, with the gradients cleared, where the loss or a gradient is not finite
    (DDP's gradients are already averaged, so every rank decides alike)."""
    if not distributed.all_finite(parts["total"], world):
        return False
    parts["total"].backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if torch.isfinite(torch.nn.utils.get_total_norm(grads)):
        return True
    parts["grad"] = torch.tensor(float("nan"))  # named in the message
    model.zero_grad(set_to_none=True)
    return False


def _skip_non_finite(skipped: int, step: int, parts: dict[str, torch.Tensor]) -> int:
    """Count a batch whose loss is not finite (it is skipped, the weights untouched); stop after MAX_SKIPPED."""
    bad = ", ".join(k for k, v in parts.items() if not torch.isfinite(v).all()) or "total"
    if skipped + 1 >= MAX_SKIPPED:
        raise RuntimeError(f"step {step + 1}: the loss ({bad}) was not finite for {MAX_SKIPPED} batches in a row; "
                           "lower --lr or the loss weights, then --resume from the last checkpoint")
    tqdm.write(f"step {step + 1}: non-finite loss ({bad}); batch skipped, weights unchanged")
    return skipped + 1


def main(args: argparse.Namespace) -> None:
    if args.qat:
        from .qat import main as qat_main

        return qat_main(args)
    if not args.style:
        raise SystemExit("stylecam train: --style PAINTING is required (except with --qat)")
    weights = LossWeights(content=args.content_weight, style=args.style_weight, tv=args.tv_weight,
                          temporal=args.temporal_weight, gan=args.gan_weight, distill_pixel=args.distill_weight,
                          distill_feature=args.distill_feature_weight, content_layer=args.content_layer,
                          style_layer_weights=args.style_layer_weights)
    cfg = TrainConfig(style=args.style, content=args.content, out=args.out, arch=args.arch, steps=args.steps,
                      size=args.size, content_scale=args.content_scale, style_size=args.style_size,
                      batch=args.batch, lr=args.lr or 1e-3, seed=args.seed,
                      weights=weights, vgg=args.vgg, device=args.device, checkpoint_every=args.checkpoint_every,
                      name=args.name, title=args.title, style_licence=args.style_licence,
                      content_limit=args.content_limit, init=args.init, resume=args.resume, gan=args.gan,
                      spectral_norm=args.stabilizer in ("sn", "both"),
                      r1=args.r1 if args.stabilizer in ("r1", "both") else 0.0, d_lr=args.d_lr,
                      teacher=args.teacher, freeze_bn=args.freeze_bn)
    out = train(cfg)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"bundle written: {out} (next: stylecam export {out})")
