"""VGG16 loss network (ImageNet weights, Caffe convention), truncated at relu4_3.

The weights are a torchvision-numbered ``features`` state dict: ``.pth`` (loaded with weights_only=True) or
``.safetensors``. Input convention (shared/data/vgg16/README.md): BGR, 0..255, minus the Caffe mean.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

# torchvision vgg16().features: conv channel counts with "M" for max-pool, up to relu4_3.
_LAYOUT = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512]
# Outputs are taken after these ReLUs (torchvision indices).
LAYERS = {"relu1_2": 3, "relu2_2": 8, "relu3_3": 15, "relu4_3": 22}
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_SEARCH = ("../shared/data/vgg16/vgg16_caffe_features.pth", "shared/data/vgg16/vgg16_caffe_features.pth")


def default_weights() -> Path:
    """$STYLECAM_VGG16, else shared/data/vgg16 beside or inside the working directory."""
    env = os.environ.get("STYLECAM_VGG16")
    candidates = [env] if env else [*_SEARCH, *(str(Path(__file__).resolve().parents[2] / p) for p in _SEARCH)]
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    raise FileNotFoundError("VGG16 weights not found: pass --vgg PATH or set STYLECAM_VGG16 "
                            "(shared/data/vgg16/vgg16_caffe_features.pth)")


def load_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        return load_file(path)
    return torch.load(path, map_location="cpu", weights_only=True)


class VGG16Features(nn.Module):
    def __init__(self, weights: str | os.PathLike | None = None):
        super().__init__()
        layers, cin = [], 3
        for v in _LAYOUT:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=False)]
                cin = v
        self.features = nn.Sequential(*layers)
        state = load_state(weights or default_weights())
        own = self.state_dict()
        self.load_state_dict({k: state[k].float() for k in own})
        self.requires_grad_(False)
        self.eval()
        self.register_buffer("mean", torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True):  # always frozen, always eval
        return super().train(False)

    def forward(self, rgb01: torch.Tensor) -> dict[str, torch.Tensor]:
        """RGB in [0, 1] → features at each of LAYERS."""
        x = rgb01.flip(1) * 255.0 - self.mean
        out, wanted = {}, {i: n for n, i in LAYERS.items()}
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in wanted:
                out[wanted[i]] = x
        return out
