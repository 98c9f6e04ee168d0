"""Quantization-aware fine-tuning: an INT8 variant for a bundle whose post-training INT8 misses the gate.

A copy of the bundle's generator (BatchNorm folded, as exported) gets torch.ao FakeQuantize modules where TensorRT
quantizes: every convolution's input (per-tensor, symmetric) and weights (per-channel, symmetric). It is then
distilled into the FP32 original on content crops, so the INT8 model learns to match the FP32 frames, which is
what the accuracy gate compares. The ONNX Q/DQ nodes come from the learned scales through torch's exporter, not
from a separate calibration. The bundle's FP32 model is unchanged; only ``model.int8.onnx`` is new.
"""
from __future__ import annotations

import copy
import sys
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.ao.quantization as tq
from torch.nn.utils import parametrize
from tqdm import tqdm

from stylecam.export.precision import to_fp16

from .data import ContentImages
from .models import fold_batchnorm, load_generator


def _fake_quant(per_channel: bool) -> tq.FakeQuantize:
    if per_channel:
        return tq.FakeQuantize(observer=tq.MovingAveragePerChannelMinMaxObserver, quant_min=-128, quant_max=127,
                               dtype=torch.qint8, qscheme=torch.per_channel_symmetric, ch_axis=0)
    return tq.FakeQuantize(observer=tq.MovingAverageMinMaxObserver, quant_min=-128, quant_max=127, dtype=torch.qint8,
                           qscheme=torch.per_tensor_symmetric)


class _WeightFakeQuant(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fq = _fake_quant(per_channel=True)

    def forward(self, weight):
        return self.fq(weight)


def _quantize_input(conv, args):
    return (conv.input_fq(args[0]),)


class SignedInput(torch.nn.Module):
    """``2x − 1``, padded with −1 where the stem padded ``x`` with zeros (``export.precision.signed_input``)."""

    def __init__(self, pad_h: int, pad_w: int):
        super().__init__()
        self.pad = (pad_w, pad_w, pad_h, pad_h)

    def forward(self, x):
        return torch.nn.functional.pad(2 * x - 1, self.pad, value=-1.0)


def sign_stem(model: torch.nn.Module) -> torch.nn.Module:
    """The same network with its stem fed ``2x − 1`` (weights halved, bias raised by half their sum), so the
    stem's INT8 input gets all 255 symmetric levels, as the post-training variants do. Changes ``model``."""
    stem = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    if stem.padding_mode != "zeros" or stem.bias is None:
        raise ValueError("sign_stem: the stem must zero-pad and have a bias (BatchNorm folded)")
    with torch.no_grad():
        stem.bias += stem.weight.sum((1, 2, 3)) / 2
        stem.weight /= 2
    pad_h, pad_w = stem.padding
    stem.padding = (0, 0)
    return torch.nn.Sequential(SignedInput(pad_h, pad_w), model)


def prepare(model: torch.nn.Module, float_tail: int = 0) -> list[torch.nn.Conv2d]:
    """Fake-quantize every convolution but the last ``float_tail`` (in place); returns the quantized ones."""
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    quantized = convs[:len(convs) - float_tail]
    for conv in quantized:
        conv.input_fq = _fake_quant(per_channel=False)
        conv.register_forward_pre_hook(_quantize_input)
        parametrize.register_parametrization(conv, "weight", _WeightFakeQuant())
    return quantized


def freeze(model: torch.nn.Module) -> None:
    """Stop the observers: the scales the ONNX model will carry are fixed from here on."""
    model.apply(tq.disable_observer)


def export_int8(model: torch.nn.Module, path: Path, stride: int) -> None:
    """ONNX with QuantizeLinear/DequantizeLinear from the learned scales, dynamic H and W."""
    x = torch.rand(1, 3, 8 * stride, 12 * stride)
    # torch.export cannot trace the parametrized weights; the TorchScript exporter maps FakeQuantize to Q/DQ
    torch.onnx.export(model.eval(), (x,), str(path), dynamo=False, opset_version=18, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {2: "h", 3: "w"}, "y": {2: "h", 3: "w"}})
    onnx.save(to_fp16(onnx.load(str(path))), str(path))  # the float tail in FP16, as post-training INT8 has it


def finetune(bundle, content: str | Path, steps: int = 1000, size: int = 256, batch: int = 2, lr: float = 1e-4,
             float_tail: int = 0, seed: int = 0, content_limit: int | None = 400,
             progress: bool = True) -> tuple[torch.nn.Module, list[float]]:
    """The fake-quantized student after ``steps`` of pixel distillation into the FP32 bundle, and its loss log."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    teacher = fold_batchnorm(load_generator(bundle)).eval()
    student = sign_stem(copy.deepcopy(teacher))
    prepare(student, float_tail)
    student.train()
    data = ContentImages(content, size, content_limit)
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    losses = []
    for _ in tqdm(range(steps), disable=not progress, desc=f"qat {bundle.name}"):
        x = data.sample(batch, rng)
        with torch.no_grad():
            target = teacher(x).clamp(0, 1)
        loss = torch.nn.functional.mse_loss(student(x).clamp(0, 1), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    freeze(student)
    return student.eval(), losses


def make_int8_variant(init: str | Path, out: str | Path, content: str | Path, eval_photos=None, **tune) -> dict:
    """Copy bundle ``init`` to ``out`` (or work in place when they are the same folder), fine-tune an INT8 student
    and gate it against the FP32 model. A student that passes becomes ``model.int8.onnx``; one that misses is only
    recorded (``manifest["qat"]``) and an INT8 variant already there is kept."""
    import shutil
    import tempfile

    from stylecam.bundle import load_bundle, write_manifest
    from stylecam.export.precision import GATE_DB, GateError, check_gate, compare, conv_macs, images, shared_content
    from stylecam.styles import resolve

    src, out = resolve(init), Path(out)
    if not out.exists() or out.resolve() != src.path.resolve():
        shutil.copytree(src.path, out, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".train", ".export*"))
    bundle = load_bundle(out)
    if eval_photos is None:
        if shared_content() is None:
            raise FileNotFoundError("the INT8 gate needs held-out photos: pass eval_photos (no shared/data here)")
        eval_photos = images(shared_content(), 8, pattern="bsds_val_*")
    student, losses = finetune(bundle, content, **tune)
    macs = list(conv_macs(bundle.model_file("fp32")).values())
    int8_macs = sum(macs[:len(macs) - tune.get("float_tail", 0)])
    record = {"file": "model.int8.onnx", "gate_psnr_db": GATE_DB["int8"], "dtype": "int8 Q/DQ",
              "int8_mac_share": round(int8_macs / sum(macs), 3),
              "scheme": "quantization-aware: symmetric per-channel weights, symmetric per-tensor inputs, float bias, "
                        "stem fed 2x - 1",
              "qat": {**{k: v for k, v in tune.items() if k != "progress"},
                      "final_loss": float(np.mean(losses[-50:]))}}
    manifest = dict(bundle.manifest)
    with tempfile.TemporaryDirectory(dir=out, prefix=".export") as tmp:
        candidate = Path(tmp) / "model.int8.onnx"
        export_int8(student, candidate, bundle.stride)
        record["accuracy"] = compare(bundle, candidate, eval_photos)
        try:
            check_gate(bundle.name, "int8", record["accuracy"])
        except GateError as e:
            manifest["qat"] = {**record, "status": "rejected by the accuracy gate", "message": str(e)}
        else:
            candidate.replace(out / "model.int8.onnx")
            manifest["variants"] = {**manifest.get("variants", {}), "int8": {**record, "status": "passed"}}
            manifest.pop("qat", None)
    write_manifest(out, manifest)
    return manifest["variants"]["int8"] if "qat" not in manifest else manifest["qat"]


def main(args) -> None:
    if not args.init:
        raise SystemExit("stylecam train --qat needs --init BUNDLE: the FP32 style to make an INT8 variant of")
    record = make_int8_variant(args.init, args.out, args.content, steps=args.steps, size=args.size, batch=args.batch,
                               lr=args.lr or 1e-4, float_tail=args.float_tail, seed=args.seed,
                               content_limit=args.content_limit or 400)
    acc = record["accuracy"]
    print(f"int8 (quantization-aware, {args.steps} steps): {record['status']}: PSNR {acc['psnr_db']} dB, "
          f"SSIM {acc['ssim']} vs fp32 (gate {record['gate_psnr_db']} dB) → {args.out}")
    if record["status"] != "passed":
        sys.exit("stylecam train --qat: below the gate; try more --steps, or --float-tail N to keep the last N "
                 "convolutions in float")
