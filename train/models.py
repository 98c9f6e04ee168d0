"""Generator registry: builder functions, each with a config that carries the input contract (as timm does).

``johnson`` is the reference (Johnson et al. 2016, with resize-convolution upsampling and InstanceNorm).
``small_in``/``nano_in`` keep what made Johnson's network paint (InstanceNorm, full 3×3 residual convolutions,
a 5×5 stem and head, reflect padding in every convolution) at lower width. InstanceNorm stays a native op in ONNX
Runtime and TensorRT (FP16 between INT8 convolutions). Reflect padding, not zeros: a stride-2 convolution pads
only its left and top edges, so with zeros a network sees where those edges are and paints them differently
(a band 70-114 grey levels off at the left of candy's and of a zero-padded small_in's frames). Their input stride
is 8, not the 4 their two downsamplings need: reflect padding needs 2 pixels at 1/4 resolution, so a frame is
padded to at least 8×8 (a 1×1 frame works). And a 16 px reflect margin around the frame: padding by reflection
in every layer is not the mirrored frame a larger picture would give, and the border strips of wave at 2,750
steps were 20 grey levels from the same pixels inside a larger frame with no margin, 8.5 with 16 px, 7.5 with 32.
``small``/``nano`` are the earlier compact networks designed for TensorRT and INT8: strided 3×3 stems
instead of full-resolution 9×9 convolutions, zero padding inside with one reflect margin around the input (cropped
after: the edge artifacts of zero padding land in the margin; per-layer reflect/replicate padding doubled CPU
latency), depthwise-separable residual blocks at 1/4 resolution, BatchNorm that folds
into the convolutions at export, and nearest-upsample + depthwise-separable convolution (no checkerboard).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
import torch.nn.functional as F

INPUT_CONTRACT = {"layout": "NCHW", "channels": "RGB", "range": [0.0, 1.0], "dtype": "float32"}


@dataclass(frozen=True)
class GeneratorConfig:
    arch: str
    widths: tuple[int, int, int]
    blocks: int
    stride: int = 4
    margin: int = 16  # reflect-padded around the frame by pre-processing, cropped by post-processing
    edge_kernel: int = 3  # the InstanceNorm family's stem and head kernel

    def contract(self) -> dict:
        return {**INPUT_CONTRACT, "stride": self.stride, "margin": self.margin}


def conv_bn(cin, cout, k=3, s=1, groups=1, act=True) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, nn.ReLU(inplace=True)) if act else nn.Sequential(*layers)


def dw_separable(cin, cout, act=True) -> nn.Sequential:
    return nn.Sequential(conv_bn(cin, cin, 3, groups=cin), conv_bn(cin, cout, 1, act=act))


class DWResidual(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.body = nn.Sequential(dw_separable(c, c), dw_separable(c, c, act=False))

    def forward(self, x):
        return x + self.body(x)


class Upsample(nn.Module):
    def forward(self, x):
        return F.interpolate(x, scale_factor=2.0, mode="nearest")


class CompactGenerator(nn.Module):
    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        c1, c2, c3 = cfg.widths
        self.cfg = cfg
        self.net = nn.Sequential(
            conv_bn(3, c1, 3, 2),                     # H/2
            conv_bn(c1, c2, 3, 2),                    # H/4
            conv_bn(c2, c3, 1),
            *[DWResidual(c3) for _ in range(cfg.blocks)],
            conv_bn(c3, c2, 1),
            Upsample(), dw_separable(c2, c1),         # H/2
            Upsample(), dw_separable(c1, c1),         # H
            nn.Conv2d(c1, 3, 3, 1, 1),
        )

    def forward(self, x):
        return self.net(x)


class InstanceNorm(nn.InstanceNorm2d):
    """InstanceNorm2d computed in fp32: CPU autocast runs it in bf16, whose 8-bit mantissa loses the variance of a
    flat crop (sky, a wall) and sent a fine-tune at 480 px photos to NaN at step 220. The same state-dict keys,
    and the same ONNX graph (an fp32 input makes both casts no-ops)."""

    def forward(self, x):
        return super().forward(x.float()).to(x.dtype)


def conv_norm(cin, cout, k, s=1, up=False, act=True) -> nn.Sequential:
    """[nearest ×2] → k×k convolution (reflect padding) → InstanceNorm → ReLU."""
    layers = [Upsample()] if up else []
    layers.append(nn.Conv2d(cin, cout, k, s, k // 2, padding_mode="reflect"))
    if act:
        layers += [InstanceNorm(cout, affine=True), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class ResidualNorm(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.body = nn.Sequential(conv_norm(c, c, 3), conv_norm(c, c, 3, act=False), InstanceNorm(c, affine=True))

    def forward(self, x):
        return x + self.body(x)


class InstanceNormGenerator(nn.Module):
    """Johnson et al.'s layout: a k×k stem, two stride-2 3×3 convolutions, full 3×3 residual blocks at 1/4
    resolution, two resize-convolutions, a k×k head (k = ``edge_kernel``: 9 in Johnson's, 5 in the compact ones)."""

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        c1, c2, c3 = cfg.widths
        k = cfg.edge_kernel
        self.cfg = cfg
        self.net = nn.Sequential(
            conv_norm(3, c1, k), conv_norm(c1, c2, 3, 2), conv_norm(c2, c3, 3, 2),
            *[ResidualNorm(c3) for _ in range(cfg.blocks)],
            conv_norm(c3, c2, 3, up=True), conv_norm(c2, c1, 3, up=True), conv_norm(c1, 3, k, act=False))

    def forward(self, x):
        return self.net(x)


_REGISTRY: dict[str, tuple[type[nn.Module], GeneratorConfig]] = {
    "johnson": (InstanceNormGenerator, GeneratorConfig("johnson", (32, 64, 128), 5, 8, margin=0, edge_kernel=9)),
    "small_in": (InstanceNormGenerator, GeneratorConfig("small_in", (16, 32, 48), 5, 8, margin=16, edge_kernel=5)),
    "nano_in": (InstanceNormGenerator, GeneratorConfig("nano_in", (8, 16, 32), 4, 8, margin=16, edge_kernel=5)),
    "small": (CompactGenerator, GeneratorConfig("small", (32, 64, 128), 5)),
    "nano": (CompactGenerator, GeneratorConfig("nano", (16, 32, 64), 3)),
}


def architectures() -> list[str]:
    return list(_REGISTRY)


def build_generator(arch: str) -> nn.Module:
    if arch not in _REGISTRY:
        raise ValueError(f"unknown architecture '{arch}'; choose one of {architectures()}")
    cls, cfg = _REGISTRY[arch]
    return cls(cfg)


def describe(model: nn.Module) -> dict:
    """Architecture card for the manifest: name, config, params and MACs at two resolutions (counted)."""
    return {"name": model.cfg.arch, "config": asdict(model.cfg), "params": count_params(model),
            "macs": {"480x640": count_macs(model, 480, 640), "720x1280": count_macs(model, 720, 1280)}}


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, h: int, w: int) -> int:
    """Multiply-accumulates of every convolution for one h×w frame (what dominates these networks)."""
    total = 0

    def hook(m, _inp, out):
        nonlocal total
        k = m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups
        total += out.numel() * k

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, h, w, device=next(model.parameters()).device))
    model.train(was_training)
    for h_ in handles:
        h_.remove()
    return total


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every Conv2d→BatchNorm2d pair (eval statistics) into the convolution, in place."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for module in model.modules():
        if isinstance(module, nn.Sequential):
            for i in range(len(module) - 1):
                if isinstance(module[i], nn.Conv2d) and isinstance(module[i + 1], nn.BatchNorm2d):
                    module[i] = fuse_conv_bn_eval(module[i].eval(), module[i + 1].eval())
                    module[i + 1] = nn.Identity()
    return model


def load_generator(bundle) -> nn.Module:
    """The generator of a bundle, from its architecture name and weights.safetensors (no pickle)."""
    from safetensors.torch import load_file

    model = build_generator(bundle.manifest["architecture"]["name"])
    model.load_state_dict(load_file(bundle.file("weights.safetensors")))
    return model.eval()
