"""Training options that the CLI reads without importing torch."""
from __future__ import annotations

import argparse
from dataclasses import dataclass


@dataclass
class LossWeights:
    content: float = 1.0
    style: float = 5.0
    tv: float = 1e3
    temporal: float = 0.0  # video stability (losses.temporal_loss); 0 = off
    gan: float = 1e4  # adversarial term, used with --gan (the perceptual terms are O(1e5))
    distill_pixel: float = 1e5  # with --teacher: output MSE in [0, 1] units
    distill_feature: float = 1.0  # with --teacher: VGG16 relu3_3 MSE, the scale of the content term
    content_layer: str = "relu2_2"
    style_layers: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
    # each style layer's share of the style term: the Gram MSE averages over C² entries, so with equal shares the
    # deep layers (the painting's motifs, C = 256, 512) count 16-64x less than relu1_2 (its palette, C = 64)
    style_layer_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)


def layer_weights(text: str) -> tuple[float, ...]:
    """``--style-layer-weights 1,1,4,4`` → (1.0, 1.0, 4.0, 4.0), one per style layer."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != len(LossWeights.style_layers) or not all(0 <= v < float("inf") for v in values):  # nan too
        raise argparse.ArgumentTypeError(f"expected {len(LossWeights.style_layers)} non-negative numbers separated "
                                         f"by commas, one per style layer ({', '.join(LossWeights.style_layers)}), "
                                         f"got {text!r}")
    return values


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--style", help="style painting (jpg/png); not needed with --qat")
    p.add_argument("--content", required=True, help="folder of content photos")
    p.add_argument("--out", required=True, help="bundle folder to write")
    p.add_argument("--arch", help="small_in (default: the full tier), nano_in (the fast tier), johnson (the reference), or the earlier small and nano; with --init, the bundle's")
    p.add_argument("--steps", type=int, default=2000, help="optimizer steps (default %(default)s)")
    p.add_argument("--size", type=int, default=256, help="training crop size")
    p.add_argument("--content-scale", type=int, metavar="PX",
                   help="shorter side the photos are scaled to before cropping (default: --size); 480 trains at the "
                        "scale of a 640×480 camera frame, where a photo has less detail per pixel")
    p.add_argument("--style-size", type=int, default=512, help="longer side of the style image")
    p.add_argument("--batch", type=int, default=4, help="crops per step (default %(default)s)")
    p.add_argument("--lr", type=float, help="learning rate (default 1e-3; with --qat 1e-4)")
    p.add_argument("--seed", type=int, default=0, help="seeds the weights and the data order (default %(default)s)")
    p.add_argument("--content-weight", type=float, default=LossWeights.content,
                   help="VGG16 content loss weight (default %(default)g)")
    p.add_argument("--content-layer", choices=("relu2_2", "relu3_3"), default=LossWeights.content_layer,
                   help="VGG16 layer the content loss holds: relu3_3 keeps the scene's shapes but frees its colours "
                        "and strokes to the style (default %(default)s)")
    p.add_argument("--style-weight", type=float, default=LossWeights.style,
                   help="Gram style loss weight: more paints more (default %(default)g)")
    p.add_argument("--style-layer-weights", type=layer_weights, default=LossWeights.style_layer_weights,
                   metavar="W1,W2,W3,W4", help="shares of relu1_2, relu2_2, relu3_3, relu4_3 in the style term: "
                   "more on the deep layers paints the painting's motifs rather than its palette (default 1,1,1,1)")
    p.add_argument("--tv-weight", type=float, default=LossWeights.tv,
                   help="total variation weight: more smooths more (default %(default)g)")
    p.add_argument("--temporal-weight", type=float, default=LossWeights.temporal,
                   help="video stability loss weight (0 = off; 5e6 measured best, see the README)")
    p.add_argument("--vgg", help="VGG16 weights (default: $STYLECAM_VGG16 or shared/data/vgg16)")
    p.add_argument("--device", default="auto", help="auto (CUDA when there is one), cpu, cuda or cuda:N")
    p.add_argument("--checkpoint-every", type=int, default=200,
                   help="steps between checkpoints --resume continues from (default %(default)s)")
    p.add_argument("--content-limit", type=int, help="use only the first N content photos")
    p.add_argument("--name", help="the style's name in its manifest (default: the --out folder's)")
    p.add_argument("--title", help="a human title for the model card, e.g. the painting's")
    p.add_argument("--style-licence", default="unknown", help="licence of the style image, for the model card")
    p.add_argument("--init", help="start from this bundle's weights, a folder or a bundled style name (fine-tune a "
                   "new style from an old one)")
    p.add_argument("--freeze-bn", action=argparse.BooleanOptionalAction, default=None,
                   help="keep BatchNorm statistics fixed while training (default: on with --init, off from scratch)")
    p.add_argument("--gan", choices=["hinge", "lsgan"], help="add adversarial training against a PatchGAN "
                   "discriminator on style-image patches")
    p.add_argument("--gan-weight", type=float, default=LossWeights.gan,
                   help="with --gan: the generator's adversarial loss weight (default %(default)g)")
    p.add_argument("--stabilizer", default="sn", choices=["sn", "r1", "both"],
                   help="discriminator stabiliser: spectral norm, R1 gradient penalty, or both")
    p.add_argument("--r1", type=float, default=0.1,
                   help="R1 penalty weight γ (with --stabilizer r1/both; 1.0 held D at chance here)")
    p.add_argument("--d-lr", type=float, default=2e-4, help="discriminator learning rate")
    p.add_argument("--teacher", help="distil from this trained bundle (e.g. a johnson model of the same style)")
    p.add_argument("--distill-weight", type=float, default=LossWeights.distill_pixel,
                   help="with --teacher: weight of the output match")
    p.add_argument("--distill-feature-weight", type=float, default=LossWeights.distill_feature,
                   help="with --teacher: weight of the VGG16 relu3_3 feature match")
    p.add_argument("--resume", action="store_true", help="continue from <out>/.train/checkpoint.pt")
    p.add_argument("--qat", action="store_true", help="quantization-aware fine-tuning: an INT8 variant of the --init "
                   "bundle, distilled from its FP32 model and gated against it (for styles whose post-training "
                   "INT8 misses the gate); writes the bundle with it to --out")
    p.add_argument("--float-tail", type=int, default=0, help="with --qat: keep the last N convolutions in float")
