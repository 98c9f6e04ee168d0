"""FP16 and INT8 (Q/DQ) variants of a bundle's model.onnx, each behind an accuracy gate against FP32.

FP16: every float tensor inside the network, through ONNX Runtime's converter. Inputs and outputs stay FP32:
an FP16 input alone cost mosaic 11 dB (54.7 → 43.4 dB PSNR), since its hard tile edges amplify input rounding.
INT8: ONNX Runtime's static quantizer in Q/DQ form. Weights are symmetric per channel, activations symmetric,
and biases are left in float (TensorRT-RTX builds Q/DQ only that way; PLATFORM.md). Calibration runs on content
photos with MinMax, Entropy or Percentile. If INT8 misses the gate, a growing tail of the graph (the decoder) stays
in float until it passes or the search runs out, and the record says how much stayed in float. The decoder goes
first because its activations span the widest range: up to ±220 in candy, against ±1 at the input. A torch
simulation of candy bears this out. INT8 weights alone keep 40 dB. Per-tensor INT8 activations in any single
layer cost little. INT8 activations in the last five convolutions take the output from 30 to 20 dB.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np

from stylecam.bundle import Bundle
from stylecam.export.graph import conv_layers
from stylecam.frames import from_tensor, to_tensor
from stylecam.quality import psnr, ssim
from stylecam.sources import IMAGE_SUFFIXES

GATE_DB = {"fp16": 45.0, "int8": 30.0}
CALIBRATION_METHODS = ("percentile", "entropy", "minmax")


class GateError(RuntimeError):
    """A variant whose output is too far from FP32's; the message gives the numbers, ``record`` the details."""

    def __init__(self, message: str, record: dict | None = None):
        super().__init__(message)
        self.record = record or {}


def shared_content() -> Path | None:
    """../shared/data/content beside the working directory or the checkout, when there is one."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        for c in (base / "../shared/data/content", base / "shared/data/content"):
            if c.is_dir():
                return c.resolve()
    return None


def images(folder: str | Path, count: int, max_side: int = 512, pattern: str = "*") -> list[np.ndarray]:
    """Up to ``count`` BGR photos from ``folder`` (name order), longer side scaled to ≤ max_side."""
    paths = sorted(p for p in Path(folder).glob(pattern) if p.suffix.lower() in IMAGE_SUFFIXES)
    out = []
    for p in paths:
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is None:
            continue
        s = max_side / max(img.shape[:2])
        out.append(cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else img)
        if len(out) == count:
            break
    if not out:
        raise FileNotFoundError(f"{folder}: no readable images matching {pattern}")
    return out


def _session(path: Path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _stylize(sess, bundle: Bundle, bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 frame, raw output) of one ONNX session on one photo, as the runtime computes them."""
    inp = sess.get_inputs()[0]
    dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
    y = sess.run(None, {inp.name: to_tensor(bgr, bundle.stride, bundle.margin, dtype)})[0]
    return from_tensor(y, bgr, 1.0, bundle.margin), y


def compare(bundle: Bundle, variant_path: Path, photos: list[np.ndarray]) -> dict:
    """PSNR/SSIM of the variant's frames against FP32's (worst photo), and the max abs error of the tensors."""
    ref, var = _session(bundle.model_file("fp32")), _session(variant_path)
    worst_psnr, worst_ssim, max_abs = float("inf"), 1.0, 0.0
    for bgr in photos:
        (a, ya), (b, yb) = _stylize(ref, bundle, bgr), _stylize(var, bundle, bgr)
        worst_psnr, worst_ssim = min(worst_psnr, psnr(a, b)), min(worst_ssim, ssim(a, b))
        max_abs = max(max_abs, float(np.abs(np.clip(ya, 0, 1) - np.clip(yb.astype(np.float32), 0, 1)).max()))
    return {"psnr_db": round(worst_psnr, 2), "ssim": round(worst_ssim, 5), "max_abs_error": round(max_abs, 5),
            "photos": len(photos)}


def extreme_inputs_finite(bundle: Bundle, variant_path: Path) -> None:
    """FP16 overflow check: all black, all white, noise and a 4K frame must give finite outputs."""
    sess = _session(variant_path)
    rng = np.random.default_rng(0)
    for name, frame in (("black", np.zeros((256, 256, 3), np.uint8)),
                        ("white", np.full((256, 256, 3), 255, np.uint8)),
                        ("noise", rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)),
                        ("4K", rng.integers(0, 256, (2160, 3840, 3), dtype=np.uint8))):
        y = _stylize(sess, bundle, frame)[1]
        if not np.isfinite(y).all():
            raise GateError(f"{variant_path.name}: NaN/Inf in the output for a {name} frame")


# -- variants ---------------------------------------------------------------------------------------------------
def make_fp16(bundle: Bundle, out: Path) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(bundle.model_file("fp32"))), keep_io_types=True)
    onnx.save(model, str(out))


def center_square(bgr: np.ndarray, size: int) -> np.ndarray:
    s = size / min(bgr.shape[:2])
    img = cv2.resize(bgr, None, fx=s, fy=s, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    y, x = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
    return img[y:y + size, x:x + size]


class _Calibration:
    """ONNX Runtime CalibrationDataReader over content photos (one shape: the histogram methods need it),
    preprocessed as the runtime does."""

    def __init__(self, bundle: Bundle, input_name: str, photos: list[np.ndarray], size: int = 256):
        self._items = iter([{input_name: to_tensor(center_square(p, size), bundle.stride, bundle.margin)}
                            for p in photos])

    def get_next(self):
        return next(self._items, None)


def make_int8(bundle: Bundle, out: Path, calib_photos: list[np.ndarray], method: str = "percentile",
              exclude: list[str] | None = None) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    methods = {"percentile": CalibrationMethod.Percentile, "entropy": CalibrationMethod.Entropy,
               "minmax": CalibrationMethod.MinMax}
    if method not in methods:
        raise ValueError(f"unknown calibration method '{method}'; choose one of {CALIBRATION_METHODS}")
    src = bundle.model_file("fp32")
    quantize_static(str(src), str(out), _Calibration(bundle, _session(src).get_inputs()[0].name, calib_photos),
                    quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8, calibrate_method=methods[method], nodes_to_exclude=exclude or [],
                    extra_options={"QuantizeBias": False, "ActivationSymmetric": True, "WeightSymmetric": True,
                                   "CalibPercentile": 99.99})


def conv_macs(path: Path, size: int = 256) -> dict[str, int]:
    """Every convolution's MACs for a size×size input, in graph order (encoder first)."""
    return {layer.name: layer.macs for layer in conv_layers(path, size, size)}


def float_tails(n: int) -> list[int]:
    """How many trailing convolutions to keep in float, try by try: 2, 3, 4, 6, 9, 14, … (about ×1.5), under n."""
    tails, k = [], 2
    while k < n:
        tails.append(k)
        k = max(k + 1, round(k * 1.5))
    return tails


def _int8_with_float_tail(bundle: Bundle, out: Path, calib_photos, method: str, eval_photos,
                          everywhere: dict) -> dict:
    """Keep more of the decoder in float until the gate passes (or the tails run out); the last try stays in out."""
    import onnx

    fp32 = bundle.model_file("fp32")
    nodes = [n.name for n in onnx.load(str(fp32)).graph.node]
    macs = conv_macs(fp32)
    convs, search = list(macs), [{"float_convs": 0, "psnr_db": everywhere["psnr_db"]}]
    for k in float_tails(len(convs)):
        # every node from that convolution on: residual adds and upsampling too, not only the convolutions
        make_int8(bundle, out, calib_photos, method, exclude=nodes[nodes.index(convs[-k]):])
        accuracy = compare(bundle, out, eval_photos)
        search.append({"float_convs": k, "psnr_db": accuracy["psnr_db"]})
        if accuracy["psnr_db"] >= GATE_DB["int8"]:
            break
    return {"accuracy": accuracy, "mixed_precision": {
        "float_from": convs[-k], "float_convs": k, "of_convs": len(convs),
        "int8_mac_share": round(sum(macs[c] for c in convs[:-k]) / sum(macs.values()), 3),
        "int8_everywhere_psnr_db": everywhere["psnr_db"], "search": search}}


def check_gate(name: str, precision: str, accuracy: dict) -> None:
    """Raise GateError when a variant's worst-photo PSNR against FP32 is under its precision's gate."""
    if not accuracy["psnr_db"] >= GATE_DB[precision]:
        raise GateError(f"{name} {precision}: {accuracy['psnr_db']} dB PSNR against FP32 on the worst of "
                        f"{accuracy['photos']} photos, below the {GATE_DB[precision]} dB gate; not written")


def build_variant(bundle: Bundle, precision: str, out_dir: Path, eval_photos: list[np.ndarray],
                  calib_photos: list[np.ndarray] | None = None, method: str = "percentile") -> dict:
    """Write the variant into ``out_dir`` and return its gate record; raise GateError if it misses the gate."""
    out = Path(out_dir) / {"fp16": "model.fp16.onnx", "int8": "model.int8.onnx"}[precision]
    record: dict = {"file": out.name, "gate_psnr_db": GATE_DB[precision]}
    if precision == "fp16":
        make_fp16(bundle, out)
        extreme_inputs_finite(bundle, out)
        record.update(dtype="float16 inside, float32 input and output", extreme_inputs="finite")
    else:
        if not calib_photos:
            raise ValueError("INT8 needs calibration photos (--calib FOLDER)")
        make_int8(bundle, out, calib_photos, method)
        record.update(dtype="int8 Q/DQ", calibration={"method": method, "photos": len(calib_photos)},
                      scheme="symmetric, per-channel weights, float bias")
    record["accuracy"] = compare(bundle, out, eval_photos)
    if precision == "int8" and record["accuracy"]["psnr_db"] < GATE_DB["int8"]:
        record.update(_int8_with_float_tail(bundle, out, calib_photos, method, eval_photos, record["accuracy"]))
    try:
        check_gate(bundle.name, precision, record["accuracy"])
    except GateError as e:
        out.unlink(missing_ok=True)
        e.record = {**record, "status": "rejected by the accuracy gate"}
        raise
    record["status"] = "passed"
    return record


def export_variants(bundle: Bundle, precisions: list[str], eval_photos: list[np.ndarray],
                    calib_photos: list[np.ndarray] | None = None, method: str = "percentile") -> dict:
    """Build and gate every asked-for variant in a scratch folder; move each into the bundle once it passes.
    Returns {precision: record}; a rejected variant's record says so and its file is not written."""
    records = {}
    with tempfile.TemporaryDirectory(dir=bundle.path, prefix=".export") as tmp:
        for p in precisions:
            try:
                records[p] = build_variant(bundle, p, Path(tmp), eval_photos, calib_photos, method)
            except GateError as e:
                records[p] = {**e.record, "message": str(e)}
                continue
            (Path(tmp) / records[p]["file"]).replace(bundle.path / records[p]["file"])
    return records
