"""ONNX export of a bundle's generator: BatchNorm folded, dynamic H/W, checked against torch on a real photo."""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from stylecam.bundle import VARIANT_FILES, load_bundle, sha256_file, write_manifest
from stylecam.frames import to_tensor
from stylecam.train.data import read_rgb
from stylecam.train.models import fold_batchnorm, load_generator

OPSET = 18
IR_VERSION = 10  # ONNX Runtime 1.18 and later load it; Python 3.10 (JetPack 6) gets ONNX Runtime 1.23 at most
PARITY_TOLERANCE = 1e-3


class ExportError(RuntimeError):
    pass


def _export(model: torch.nn.Module, path: Path, stride: int) -> None:
    x = torch.rand(1, 3, 8 * stride, 12 * stride)
    dims = {"x": {2: torch.export.Dim.DYNAMIC, 3: torch.export.Dim.DYNAMIC}}
    program = torch.onnx.export(model, (x,), dynamo=True, opset_version=OPSET, dynamic_shapes=dims,
                                input_names=["x"], output_names=["y"], optimize=True, verbose=False)
    for node in program.model.graph:  # stack traces name the exporting machine's files: not reproducible
        node.metadata_props.pop("pkg.torch.onnx.stack_trace", None)
    program.model.ir_version = IR_VERSION  # not the newest the installed onnx knows
    program.save(str(path))


def parity(model: torch.nn.Module, onnx_path: Path, image_bgr: np.ndarray, bundle) -> float:
    """Max abs difference between torch and ONNX Runtime (CPU) on one image."""
    import onnxruntime as ort

    x = to_tensor(image_bgr, bundle.stride, bundle.margin)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    return float(np.abs(ref - got).max())


def export_bundle(bundle_dir: str | Path, check_image: str | Path | None = None, precisions=("fp32",),
                  calib: str | Path | None = None, calib_count: int = 32, calib_method: str = "percentile",
                  eval_dir: str | Path | None = None, eval_count: int = 8) -> dict:
    """Write ``model.onnx`` (parity-checked against torch) and the asked-for FP16/INT8 variants (gated against
    FP32 on held-out photos) into the bundle, with every number in its manifest."""
    bundle = load_bundle(bundle_dir)
    model = fold_batchnorm(load_generator(bundle)).eval()
    image = check_image or bundle.file("style.jpg")
    bgr = read_rgb(image, max_side=512)[:, :, ::-1]
    # an odd size exercises the padding path as the runtime will
    bgr = np.ascontiguousarray(bgr[: bgr.shape[0] - 1, : bgr.shape[1] - 3])
    out = Path(bundle_dir) / "model.onnx"
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".export") as tmp:
        tmp_path = Path(tmp) / "model.onnx"
        _export(model, tmp_path, bundle.stride)
        err = parity(model, tmp_path, bgr, bundle)
        if not err <= PARITY_TOLERANCE:
            raise ExportError(f"ONNX output differs from torch by {err:.2e} (> {PARITY_TOLERANCE}); not written")
        unchanged = sha256_file(tmp_path) == bundle.manifest.get("files", {}).get("model.onnx", {}).get("sha256")
        tmp_path.replace(out)
    manifest = dict(bundle.manifest)
    # variants made from this very model.onnx stay, unless asked for again; the rest are stale
    kept = {p: v for p, v in manifest.get("variants", {}).items()
            if unchanged and p not in precisions and v.get("status") == "passed"}
    for stale in [f for v, f in VARIANT_FILES.items() if v != "fp32"]:
        if not any(v.get("file") == stale for v in kept.values()):
            manifest["files"].pop(stale, None)
            (Path(bundle_dir) / stale).unlink(missing_ok=True)
    manifest["export"] = {"opset": OPSET, "torch": torch.__version__, "batchnorm_folded": True,
                          "parity": {"image": Path(image).name, "size": list(bgr.shape[:2]),
                                     "max_abs_error_vs_torch": err}}
    manifest["variants"] = {"fp32": {"file": "model.onnx", "dtype": "float32", "status": "passed"}, **kept}
    manifest = write_manifest(bundle_dir, manifest)
    lower = [p for p in precisions if p != "fp32"]
    if lower:
        manifest = _export_variants(load_bundle(bundle_dir), lower, calib, calib_count, calib_method, eval_dir,
                                    eval_count)
    return manifest


def _export_variants(bundle, precisions, calib, calib_count, calib_method, eval_dir, eval_count) -> dict:
    from .precision import export_variants, images, shared_content

    content = shared_content()
    if eval_dir is None and content is None:
        raise ExportError("FP16/INT8 need held-out photos for the accuracy gate: pass --eval FOLDER")
    eval_photos = (images(eval_dir, eval_count) if eval_dir
                   else images(content, eval_count, pattern="bsds_val_*"))
    calib_photos = None
    if {"int8", "int8-cpu"} & set(precisions):
        if calib is None and content is None:
            raise ExportError("INT8 needs calibration photos: pass --calib FOLDER")
        calib_photos = (images(calib, calib_count, max_side=384) if calib
                        else images(content, calib_count, max_side=384, pattern="imagenet_*"))
    records = export_variants(bundle, precisions, eval_photos, calib_photos, calib_method)
    manifest = dict(bundle.manifest)
    manifest["variants"] = {**manifest.get("variants", {}), **records}
    return write_manifest(bundle.path, manifest)
