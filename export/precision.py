"""FP16 and INT8 (Q/DQ) variants of a bundle's model.onnx, each behind an accuracy gate against FP32.

FP16: every float tensor inside the network, through ONNX Runtime's converter. Inputs and outputs stay FP32:
an FP16 input alone cost mosaic 11 dB (54.7 → 43.4 dB PSNR), since its hard tile edges amplify input rounding.
INT8: ONNX Runtime's static quantizer in Q/DQ form. Weights are symmetric per channel, activations symmetric,
and biases are left in float (TensorRT-RTX builds Q/DQ only that way; PLATFORM.md). Calibration runs on content
photos with Percentile (99.99 %) or MinMax. The stem is fed 2x − 1 (``signed_input``), so the frame gets all 255
symmetric levels rather than 128. Whatever is not INT8 runs in FP16 (a float part in FP32 would make the
mixed model slower than plain FP16 on a GPU). INT8-CPU is the same quantizer in the form ONNX Runtime's CPU
provider runs fast: unsigned asymmetric activations (the frame's [0, 1] gets all 256 levels without the signed
stem), int32 biases and an FP32 float part, which it fuses into integer ``QLinearConv`` nodes (the FP16 float part
of INT8 it cannot fuse, and runs 5–7× slower than FP32). Its weights use 7 bits (``reduce_range``): an x86 CPU
without VNNI (AVX2 only) adds pairs of uint8 × int8 products in int16, which saturates with 8-bit weights: on an
AVX2 EPYC they lost 10–14 dB (candy 37.1 → 27.2 dB against FP32, udnie 42.3 → 28.4). 7-bit weights give the same
integers on every x86 CPU, at about 1 dB where 8 bits did not saturate (candy 36.3 dB). TensorRT does not take its
zero points. Two exact graph rewrites (``cpu_kernels``) keep its last convolution and its upsampling on ONNX
Runtime's fast integer kernels. Since it exists only to be faster, it also has to beat FP32 on the exporting
CPU by ``MIN_CPU_SPEEDUP`` (small networks and mixed ones with many float islands may not), and, being for live
video, flicker at most ``FLICKER_GATE`` times as much as FP32 on the demo clip, or it is not written.
If INT8 everywhere misses the gate, some nodes stay in float, in one
of two orders: the most sensitive first (each node put in INT8 alone, the rest float, and judged on calibration
photos), or the decoder first (its residual stream spans ±220 in candy, against ±1 at the input). Bisection finds
the fewest nodes of each order that pass on the calibration photos, and the order that leaves more MACs in INT8
wins. The gate itself is then measured on held-out photos that took no part in the choice; if they come out
harder than the calibration photos (a lower PSNR), the search runs once more aiming that much higher.
INT8-CPU that still misses the gate or flickers (after lower calibration percentiles), and INT8 whose mixed precision
misses it on the held-out photos, keep INT8 in the residual trunk only, the lowest-resolution convolutions, whose
rounding neither flickers nor costs much accuracy.
"""
from __future__ import annotations

import functools
import inspect
import logging
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from stylecam.backends.onnxrt import session_options
from stylecam.bundle import VARIANT_FILES, Bundle
from stylecam.export.cpu_kernels import for_cpu_kernels
from stylecam.export.graph import conv_layers
from stylecam.frames import from_tensor, resize, to_tensor
from stylecam.quality import psnr, ssim
from stylecam.sources import IMAGE_SUFFIXES

log = logging.getLogger("stylecam")
MIN_SIDE = 32  # pixels: the smallest photo side the metrics and gates take (images())
GATE_DB = {"fp16": 45.0, "int8": 30.0, "int8-cpu": 30.0}
INT8_SCHEMES = {  # how each INT8 variant is quantized, and the line its manifest record carries
    "int8": {"activation": "QInt8", "symmetric": True, "quantize_bias": False, "signed_stem": True, "float": "fp16",
             "reduce_range": False,
             "scheme": "symmetric, per-channel weights, float bias, stem fed 2x - 1",
             "dtype": "int8 Q/DQ, float16 elsewhere, float32 input and output"},
    "int8-cpu": {"activation": "QUInt8", "symmetric": False, "quantize_bias": True, "signed_stem": False,
                 "float": "fp32", "reduce_range": True,
                 "scheme": "asymmetric uint8 activations, symmetric per-channel 7-bit weights, "
                           "int32 bias (fused into QLinearConv by ONNX Runtime)",
                 "dtype": "uint8/int8 Q/DQ, float32 elsewhere, float32 input and output"},
}
# No "entropy": quantize_static runs ONNX Runtime's Entropy calibrator with 128 histogram bins into 128 quantized
# bins, which leaves one candidate threshold, MinMax's (the same model to the byte on 1.23.2 and 1.32.0).
CALIBRATION_METHODS = ("percentile", "minmax")
# INT8-CPU tries lower percentiles while it flickers too much: each clips more of the ranges for finer steps
CALIB_PERCENTILES = (99.99, 99.98, 99.95, 99.9)
MIN_CPU_SPEEDUP = 1.1  # INT8-CPU against FP32 on the exporting CPU, or it is not worth its accuracy loss
FLICKER_GATE = 1.25  # INT8-CPU's warping error over FP32's on the demo clip, at most: it is for live video
FLICKER_FRAMES = 30


class GateError(RuntimeError):
    """A variant too far from FP32's output (or, for INT8-CPU, not faster); the message gives the numbers,
    ``record`` the details."""

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
    """Up to ``count`` BGR photos from ``folder`` (name order), longer side scaled to ≤ max_side. Unreadable ones,
    and ones whose shorter side is then under ``MIN_SIDE`` (VGG16's deepest style layer sees 1/8 of it, and the
    network's own margin is larger), are skipped with a warning."""
    paths = sorted(p for p in Path(folder).glob(pattern) if p.suffix.lower() in IMAGE_SUFFIXES)
    out = []
    for p in paths:
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is None:
            log.warning("%s: not a readable image, skipped", p)
            continue
        (h, w), s = img.shape[:2], max_side / max(img.shape[:2])
        if s < 1:
            img = resize(img, (max(round(h * s), 1), max(round(w * s), 1)))
        if min(img.shape[:2]) < MIN_SIDE:
            log.warning("%s: %dx%d is too small to judge (its shorter side is under %d px at a longer side of at "
                        "most %d), skipped", p, img.shape[1], img.shape[0], MIN_SIDE, max_side)
            continue
        out.append(img)
        if len(out) == count:
            break
    if not out:
        raise FileNotFoundError(f"{folder}: no readable images matching {pattern}")
    return out


def _session(path: Path):
    """A CPU session with the runtime's options (``stylecam.backends.onnxrt.session_options``)."""
    import onnxruntime as ort

    return ort.InferenceSession(str(path), session_options(), providers=["CPUExecutionProvider"])


@functools.cache
def fp16_quantize_rounds() -> bool:
    """Whether this ONNX Runtime rounds a float16 QuantizeLinear to nearest, as ONNX and TensorRT do. Its CPU
    kernel truncated toward zero before 1.30 (microsoft/onnxruntime#18576, fixed by #32452): there the gate
    would judge that bug, not TensorRT's numbers (candy's INT8: 22.8 dB on ONNX Runtime 1.18–1.29, 37.9 on 1.30)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    consts = [helper.make_tensor("scale", TensorProto.FLOAT16, [], [0.1]),
              helper.make_tensor("zero", TensorProto.INT8, [], [0])]
    graph = helper.make_graph([helper.make_node("QuantizeLinear", ["x", "scale", "zero"], ["q"])], "probe",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [2])],
                              [helper.make_tensor_value_info("q", TensorProto.INT8, [2])], consts)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)], ir_version=10)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": np.array([0.07, -0.07], np.float16)})[0].tolist() == [1, -1]  # 0.7 steps


def check_fp16_quantize() -> None:
    if not fp16_quantize_rounds():
        import onnxruntime as ort

        raise RuntimeError(f"ONNX Runtime {ort.__version__} truncates float16 QuantizeLinear (fixed in 1.30), so it "
                           "cannot judge the TensorRT INT8 variant: pip install 'onnxruntime>=1.30' (Python 3.11 "
                           "or newer) and export again; fp16 and int8-cpu do not depend on it")


def _stylize(sess, bundle: Bundle, bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 frame, raw output) of one ONNX session on one photo, as the runtime computes them."""
    inp = sess.get_inputs()[0]
    dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
    y = sess.run(None, {inp.name: to_tensor(bgr, bundle.stride, bundle.margin, dtype)})[0]
    return from_tensor(y, bgr, 1.0, bundle.margin), y


class Reference:
    """FP32's frames for a set of photos, computed once, when a variant is first judged against them."""

    def __init__(self, bundle: Bundle, photos: list[np.ndarray]):
        self.bundle, self.photos = bundle, photos

    @functools.cached_property
    def outputs(self) -> list[tuple[np.ndarray, np.ndarray]]:
        sess = _session(self.bundle.model_file("fp32"))
        return [_stylize(sess, self.bundle, p) for p in self.photos]

    def compare(self, variant_path: Path) -> dict:
        """PSNR/SSIM of the variant's frames against FP32's (worst photo), and the max abs error of the tensors."""
        var = _session(variant_path)
        worst_psnr, worst_ssim, max_abs = float("inf"), 1.0, 0.0
        for bgr, (a, ya) in zip(self.photos, self.outputs):
            b, yb = _stylize(var, self.bundle, bgr)
            worst_psnr, worst_ssim = min(worst_psnr, psnr(a, b)), min(worst_ssim, ssim(a, b))
            max_abs = max(max_abs, float(np.abs(np.clip(ya, 0, 1) - np.clip(yb.astype(np.float32), 0, 1)).max()))
        return {"psnr_db": round(worst_psnr, 2), "ssim": round(worst_ssim, 5), "max_abs_error": round(max_abs, 5),
                "photos": len(self.photos)}

    def psnr_db(self, variant_path: Path) -> float:
        """Worst-photo PSNR only: what the mixed-precision search needs, without SSIM's cost."""
        var = _session(variant_path)
        return min(psnr(a, _stylize(var, self.bundle, bgr)[0]) for bgr, (a, _) in zip(self.photos, self.outputs))


def compare(bundle: Bundle, variant_path: Path, photos: list[np.ndarray]) -> dict:
    return Reference(bundle, photos).compare(variant_path)


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
def to_fp16(model):
    """Every float tensor inside ``model`` in FP16, input and output kept FP32, in topological order. Q/DQ scales
    become FP16 too (opset 19), so an INT8 convolution reads FP16 straight from its DequantizeLinear, with no Cast
    between them that could stop TensorRT fusing the pair."""
    import onnx_ir as ir
    from onnxruntime.transformers.float16 import convert_float_to_float16

    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            opset.version = max(opset.version, 19)
    converted = ir.from_proto(convert_float_to_float16(model, keep_io_types=True))
    converted.graph.sort()  # the converter appends its input and output casts at the end
    return ir.to_proto(converted)


def make_fp16(bundle: Bundle, out: Path) -> None:
    import onnx

    onnx.save(to_fp16(onnx.load(str(bundle.model_file("fp32")))), str(out))


def center_square(bgr: np.ndarray, size: int) -> np.ndarray:
    s = size / min(bgr.shape[:2])
    img = cv2.resize(bgr, None, fx=s, fy=s, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    y, x = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
    return img[y:y + size, x:x + size]


SIGNED_INPUT_NODES = ("signed_input_double", "signed_input_shift", "signed_input_pad")


def signed_input(model):
    """The same network with its stem fed ``2x − 1`` instead of the frame ``x`` in [0, 1]: the stem's weights
    halved, its bias raised by half their sum, and its zero padding made explicit as −1 (which is 0 before the
    shift), so the output is unchanged. Symmetric INT8 (what TensorRT runs) gives [0, 1] only 128 of its levels;
    [−1, 1] gets all 255. The full-resolution stem is where starry_night and wave lost the most (measured: INT8
    everywhere 22.6 → 32.0 dB and 28.3 → 33.6 dB). The three new nodes (``SIGNED_INPUT_NODES``) stay float."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.ModelProto.FromString(model.SerializeToString())  # a copy
    g = model.graph
    x = g.input[0].name
    reflect = next((n for n in g.node if n.op_type == "Pad" and n.input[0] == x and
                    any(a.name == "mode" and a.s == b"reflect" for a in n.attribute)), None)
    if reflect is not None:  # reflect padding in the graph: shift before it (reflection commutes with 2x − 1)
        return _signed_before_reflect(model, reflect)
    stem = next(n for n in g.node if n.op_type == "Conv" and n.input[0] == x)
    if any(a.name == "auto_pad" and a.s not in (b"", b"NOTSET") for a in stem.attribute):
        raise ValueError("signed_input: the stem uses auto_pad; export with explicit pads")
    inits = {t.name: t for t in g.initializer}
    weight = numpy_helper.to_array(inits[stem.input[1]]).astype(np.float64)
    bias = (numpy_helper.to_array(inits[stem.input[2]]).astype(np.float64) if len(stem.input) > 2
            else np.zeros(weight.shape[0]))
    inits[stem.input[1]].CopyFrom(numpy_helper.from_array((weight / 2).astype(np.float32), stem.input[1]))
    bias_name = stem.input[2] if len(stem.input) > 2 else "signed_input_bias"
    new_bias = numpy_helper.from_array((bias + weight.sum(axis=(1, 2, 3)) / 2).astype(np.float32), bias_name)
    if len(stem.input) > 2:
        inits[bias_name].CopyFrom(new_bias)
    else:
        g.initializer.append(new_bias)
        stem.input.append(bias_name)
    pads = next((list(a.ints) for a in stem.attribute if a.name == "pads"), [0, 0, 0, 0])
    for a in stem.attribute:
        if a.name == "pads":
            a.ints[:] = [0, 0, 0, 0]
    g.initializer.extend([numpy_helper.from_array(np.array(2.0, np.float32), "signed_input_two"),
                          numpy_helper.from_array(np.array(-1.0, np.float32), "signed_input_minus_one"),
                          numpy_helper.from_array(np.array([0, 0, pads[0], pads[1], 0, 0, pads[2], pads[3]],
                                                           np.int64), "signed_input_pads")])
    nodes = [helper.make_node("Mul", [x, "signed_input_two"], ["signed_input_doubled"], name=SIGNED_INPUT_NODES[0]),
             helper.make_node("Add", ["signed_input_doubled", "signed_input_minus_one"], ["signed_input_unpadded"],
                              name=SIGNED_INPUT_NODES[1]),
             helper.make_node("Pad", ["signed_input_unpadded", "signed_input_pads", "signed_input_minus_one"],
                              ["signed_input"], mode="constant", name=SIGNED_INPUT_NODES[2])]
    stem.input[0] = "signed_input"
    rest = list(g.node)
    del g.node[:]
    g.node.extend(nodes + rest)
    return model


def _signed_before_reflect(model, pad):
    """``signed_input`` for a stem behind a reflect Pad (the InstanceNorm networks): Mul and Add go in front of
    the Pad, whose mirrored pixels are then shifted too, and the stem's weights and bias change as above."""
    from onnx import helper, numpy_helper

    g = model.graph
    stem = next(n for n in g.node if n.op_type == "Conv" and n.input[0] == pad.output[0])
    if any(a.name == "pads" and any(a.ints) for a in stem.attribute):
        raise ValueError("signed_input: a stem with both a reflect Pad and zero padding of its own")
    inits = {t.name: t for t in g.initializer}
    weight = numpy_helper.to_array(inits[stem.input[1]]).astype(np.float64)
    bias = numpy_helper.to_array(inits[stem.input[2]]).astype(np.float64) if len(stem.input) > 2 else \
        np.zeros(weight.shape[0])
    inits[stem.input[1]].CopyFrom(numpy_helper.from_array((weight / 2).astype(np.float32), stem.input[1]))
    new_bias = (bias + weight.sum(axis=(1, 2, 3)) / 2).astype(np.float32)
    if len(stem.input) > 2:
        inits[stem.input[2]].CopyFrom(numpy_helper.from_array(new_bias, stem.input[2]))
    else:
        g.initializer.append(numpy_helper.from_array(new_bias, "signed_input_bias"))
        stem.input.append("signed_input_bias")
    g.initializer.extend([numpy_helper.from_array(np.array(2.0, np.float32), "signed_input_two"),
                          numpy_helper.from_array(np.array(-1.0, np.float32), "signed_input_minus_one")])
    x = pad.input[0]
    nodes = [helper.make_node("Mul", [x, "signed_input_two"], ["signed_input_doubled"], name=SIGNED_INPUT_NODES[0]),
             helper.make_node("Add", ["signed_input_doubled", "signed_input_minus_one"], ["signed_input"],
                              name=SIGNED_INPUT_NODES[1])]
    pad.input[0] = "signed_input"
    rest = list(g.node)
    del g.node[:]
    g.node.extend(nodes + rest)
    return model


class _Calibration:
    """ONNX Runtime CalibrationDataReader over content photos (one shape: the histogram methods need it),
    preprocessed as the runtime does."""

    def __init__(self, bundle: Bundle, input_name: str, photos: list[np.ndarray], size: int = 256):
        self._items = iter([{input_name: to_tensor(center_square(p, size), bundle.stride, bundle.margin)}
                            for p in photos])

    def get_next(self):
        return next(self._items, None)


def make_int8(bundle: Bundle, out: Path, calib_photos: list[np.ndarray], method: str = "percentile",
              exclude: list[str] | None = None, only: list[str] | None = None,
              calibration_cache: Path | None = None, signed: bool | None = None, precision: str = "int8",
              percentile: float = CALIB_PERCENTILES[0]) -> None:
    """Q/DQ model of the bundle's FP32 one in ``precision``'s scheme (``INT8_SCHEMES``); ``exclude`` keeps nodes
    out of INT8, ``only`` quantizes just those; ``signed`` overrides whether the stem is fed 2x − 1
    (``signed_input``); ``percentile`` is the range Percentile calibration keeps. With ``calibration_cache`` the
    tensor ranges are computed once and reused by later calls with the same method and percentile."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    methods = {"percentile": CalibrationMethod.Percentile, "minmax": CalibrationMethod.MinMax}
    if method not in methods:
        why = " (ONNX Runtime's quantizer gives MinMax's ranges for it)" if method == "entropy" else ""
        raise ValueError(f"unknown calibration method '{method}'{why}; choose one of {CALIBRATION_METHODS}")
    scheme = INT8_SCHEMES[precision]
    signed = scheme["signed_stem"] if signed is None else signed
    src = Path(out).with_name(f".{Path(out).stem}.signed_input.onnx")  # removed below
    model = onnx.load(str(bundle.model_file("fp32")))
    onnx.save(signed_input(model) if signed else model, str(src))
    try:
        # ONNX Runtime ≥ 1.32 can reuse tensor ranges; an older one calibrates on every call (slower, same result)
        reuse = calibration_cache and "calibration_cache_path" in inspect.signature(quantize_static).parameters
        cache = {"calibration_cache_path": str(calibration_cache)} if reuse else {}
        reader = None if reuse and Path(calibration_cache).is_file() else \
            _Calibration(bundle, _session(src).get_inputs()[0].name, calib_photos)  # only when it will be read
        quantize_static(str(src), str(out), reader,
                        quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=getattr(QuantType, scheme["activation"]),
                        weight_type=QuantType.QInt8, reduce_range=scheme["reduce_range"],
                        calibrate_method=methods[method],
                        nodes_to_exclude=[*(exclude or []), *SIGNED_INPUT_NODES], nodes_to_quantize=only or [],
                        **cache, extra_options={"QuantizeBias": scheme["quantize_bias"],
                                                "ActivationSymmetric": scheme["symmetric"],
                                                "WeightSymmetric": True, "CalibPercentile": percentile})
    finally:
        src.unlink(missing_ok=True)
    if scheme["float"] == "fp16":  # what is not INT8 runs in FP16, not FP32
        onnx.save(to_fp16(onnx.load(str(out))), str(out))
    if precision == "int8-cpu":  # exact rewrites onto ONNX Runtime's fast integer kernels
        onnx.save(for_cpu_kernels(onnx.load(str(out))), str(out))


def _graph(path: Path):
    import onnx

    graph = onnx.load(str(path)).graph
    return graph, {t for n in graph.node if n.op_type == "DequantizeLinear" for t in n.output}


def quantized_nodes(path: Path) -> list[str]:
    """The nodes of a Q/DQ model that read a dequantized tensor, in graph order: what the search ranks."""
    graph, dequantized = _graph(path)
    return [n.name for n in graph.node
            if n.op_type not in ("QuantizeLinear", "DequantizeLinear") and dequantized & set(n.input)]


def int8_convs(path: Path) -> list[str]:
    """Convolutions whose input and weights are both dequantized INT8: the ones TensorRT runs in INT8."""
    graph, dequantized = _graph(path)
    return [n.name for n in graph.node if n.op_type == "Conv" and set(n.input[:2]) <= dequantized]


def conv_macs(path: Path, size: int = 256) -> dict[str, int]:
    """Every convolution's MACs for a size×size input, in graph order (encoder first)."""
    return {layer.name: layer.macs for layer in conv_layers(path, size, size)}


SEARCH_PHOTOS = 16  # calibration photos that judge each node during the mixed-precision search
# The search aims this far over the gate: a worst-of-N PSNR moves by about that much between photo sets
# (starry_night with 18 nodes in float: 31.42 dB on the search photos, 30.87 dB on the gate's held-out ones).
SEARCH_MARGIN_DB = 1.0


def _int8_share(int8: list[str], macs: dict[str, int]) -> float:
    return round(sum(macs[c] for c in int8) / sum(macs.values()), 3)


def _fewest_in_float(quantize, out: Path, search: Reference, order: list[str], target: float, lo: int = 0
                     ) -> tuple[int | None, dict]:
    """Bisection over the prefixes of ``order`` longer than ``lo``: the fewest nodes in float that bring
    ``search``'s worst PSNR to ``target`` (None if only all-float does), and the PSNR of each try. It assumes that
    keeping more of the order in float does not lower the PSNR, as measured on the six shipped styles."""
    hi, tries = len(order), {}
    while hi - lo > 1:
        k = (lo + hi) // 2
        quantize(exclude=order[:k])
        tries[k] = round(search.psnr_db(out), 2)
        lo, hi = (lo, k) if tries[k] >= target else (k, hi)
    return (hi if hi < len(order) else None), tries


def _int8_mixed(quantize, out: Path, search: Reference, gate: Reference, macs: dict[str, int],
                everywhere: dict, gate_db: float) -> dict:
    """Keep some nodes in float, in one of two orders: the most sensitive first (each node put in INT8 alone and
    judged on ``search``), or the decoder first (its activations span the widest range). Each order keeps the
    fewest nodes that pass on ``search``; the one with more INT8 MACs wins. The result, in ``out``, is then
    judged once on the held-out ``gate`` photos."""
    units = quantized_nodes(out)
    sensitivity = {}
    for unit in units:  # that node alone in INT8
        quantize(only=[unit])
        sensitivity[unit] = search.psnr_db(out)
    orders = {"most sensitive first": sorted(units, key=sensitivity.get), "decoder first": units[::-1]}
    candidates = {}
    for name, order in orders.items():
        k, tries = _fewest_in_float(quantize, out, search, order, gate_db + SEARCH_MARGIN_DB)
        if k is not None:
            quantize(exclude=order[:k])
        share = _int8_share(int8_convs(out), macs) if k is not None else None
        candidates[name] = {"float_nodes": k, "int8_mac_share": share,
                            "search": [{"float_nodes": n, "psnr_db": db} for n, db in sorted(tries.items())]}
    passing = [n for n in orders if candidates[n]["float_nodes"] is not None]
    best = max(passing, key=lambda n: candidates[n]["int8_mac_share"], default=None)
    in_float = orders[best][:candidates[best]["float_nodes"]] if best else []  # none: INT8 everywhere, rejected
    quantize(exclude=in_float)
    accuracy, widened = gate.compare(out), None
    if best and accuracy["psnr_db"] < gate_db:
        in_float, accuracy, widened = _widened(quantize, out, search, gate, orders[best], candidates[best], accuracy,
                                               gate_db)
    int8 = int8_convs(out)
    return {"accuracy": accuracy, "mixed_precision": {
        "order": best, "float_nodes": in_float, "float_convs": len(macs) - len(int8),
        "of_convs": len(macs), "int8_mac_share": _int8_share(int8, macs),
        "int8_everywhere_psnr_db": everywhere["psnr_db"],
        "chosen_on": f"{len(search.photos)} calibration photos, aiming {SEARCH_MARGIN_DB} dB over the gate; "
                     f"the gate on {len(gate.photos)} held-out ones",
        "candidates": candidates, "widened": widened,
        "sensitivity_db": {u: (round(sensitivity[u], 2) if np.isfinite(sensitivity[u]) else None)
                           for u in orders["most sensitive first"]}}}


def _widened(quantize, out: Path, search: Reference, gate: Reference, order: list[str], chosen: dict,
             accuracy: dict, gate_db: float) -> tuple[list[str], dict, dict]:
    """The held-out photos came out harder than the calibration ones (udnie: 31.4 dB on these, 29.5 on those):
    search the same order again, aiming that much higher, and judge its choice once more. Keeps the first choice if
    this one misses too or needs every node in float (then the trunk-only fallback follows)."""
    k = chosen["float_nodes"]
    shortfall = next(t["psnr_db"] for t in chosen["search"] if t["float_nodes"] == k) - accuracy["psnr_db"]
    target = gate_db + SEARCH_MARGIN_DB + shortfall
    wider, tries = _fewest_in_float(quantize, out, search, order, target, lo=k)
    record = {"aim_db": round(target, 2), "float_nodes": wider,
              "search": [{"float_nodes": n, "psnr_db": db} for n, db in sorted(tries.items())]}
    if wider is not None:
        quantize(exclude=order[:wider])
        record["psnr_db"] = (wider_accuracy := gate.compare(out))["psnr_db"]
        if wider_accuracy["psnr_db"] >= gate_db:
            return order[:wider], wider_accuracy, record
    quantize(exclude=order[:k])
    return order[:k], accuracy, record


def _steadier(quantize, out: Path, bundle: Bundle, search: Reference, gate: Reference, flicker: float) -> dict:
    """INT8-CPU that flickers too much (``flicker``) at the first percentile: the next lower ones, in turn, until one
    passes the flicker gate with ``search``'s worst PSNR the margin over the accuracy gate. Lower ones only lose more
    PSNR, so the search stops at the first that misses it. The chosen model is left in ``out`` and judged on the
    held-out ``gate`` photos; with none chosen, the flicker of the steadiest try that kept the PSNR is rejected."""
    target = GATE_DB["int8-cpu"] + SEARCH_MARGIN_DB
    tries = [{"percentile": CALIB_PERCENTILES[0], "flicker_vs_fp32": flicker}]
    search_record = {"chosen": None, "tries": tries,
                     "chosen_on": f"the demo clip's flicker and {len(search.photos)} calibration photos, aiming "
                                  f"{SEARCH_MARGIN_DB} dB over the gate"}
    for percentile in CALIB_PERCENTILES[1:]:
        quantize(percentile)
        psnr_db, flicker = round(search.psnr_db(out), 2), flicker_ratio(bundle, out)
        tries.append({"percentile": percentile, "search_psnr_db": psnr_db, "flicker_vs_fp32": flicker})
        if psnr_db < target:
            break
        if flicker <= FLICKER_GATE:
            search_record["chosen"] = percentile
            return {"accuracy": gate.compare(out), "flicker_vs_fp32": flicker, "percentile_search": search_record}
    kept = [t["flicker_vs_fp32"] for t in tries if t.get("search_psnr_db", target) >= target]
    return {"flicker_vs_fp32": min(kept), "percentile_search": search_record}


def trunk_convs(path: Path) -> list[str]:
    """The convolutions at the network's lowest resolution: its residual trunk."""
    layers = conv_layers(path)
    lowest = min(layer.output_pixels for layer in layers)
    return [layer.name for layer in layers if layer.output_pixels == lowest]


def _trunk_only(quantize, out: Path, bundle: Bundle, gate: Reference, record: dict, macs: dict[str, int],
                missed: str) -> None:
    """Only the residual trunk in INT8, after more INT8 ``missed`` a check. In the InstanceNorm networks the rounding
    of the thin full- and half-resolution layers is what flickers and loses accuracy (wave: 1.44× FP32's flicker
    with every convolution in INT8, 1.36× with only those, 1.01× with only the trunk, at 1.33× FP32's speed; udnie:
    29.7 dB everywhere). Updates ``record`` and leaves the model in ``out``."""
    tried = {"psnr_db": record["accuracy"]["psnr_db"], "flicker_vs_fp32": record.get("flicker_vs_fp32")}
    trunk = trunk_convs(bundle.model_file("fp32"))
    quantize(only=trunk)
    flicker = flicker_ratio(bundle, out)
    record.update(accuracy=gate.compare(out), flicker_vs_fp32=flicker,
                  int8_mac_share=_int8_share(int8_convs(out), macs),
                  trunk_only={"convs": trunk, "flicker_vs_fp32": flicker, "because": {"missed": missed, **tried}})


def _settle_int8(quantize, out: Path, bundle: Bundle, precision: str, search: Reference, gate: Reference,
                 record: dict, macs: dict[str, int], method: str) -> None:
    """INT8 after the accuracy gate's search (``record``). INT8-CPU that passed but flickers tries lower calibration
    percentiles first. Either precision that still misses the accuracy gate on the held-out photos (a mixed-precision
    choice made on calibration photos can), or INT8-CPU that still flickers, keeps INT8 in the trunk only. Updates
    ``record`` and leaves the chosen model in ``out``."""
    passed = record["accuracy"]["psnr_db"] >= GATE_DB[precision]
    if precision == "int8-cpu" and passed:
        record["flicker_vs_fp32"] = flicker_ratio(bundle, out)
        if record["flicker_vs_fp32"] > FLICKER_GATE and method == "percentile" and "mixed_precision" not in record:
            record.update(_steadier(quantize, out, bundle, search, gate, record["flicker_vs_fp32"]))
            if record["percentile_search"]["chosen"]:  # a new model: the held-out photos judged it again
                record["calibration"]["percentile"] = record["percentile_search"]["chosen"]
    missed = ("accuracy gate" if record["accuracy"]["psnr_db"] < GATE_DB[precision] else
              "flicker check" if record.get("flicker_vs_fp32", 0) > FLICKER_GATE else None)
    if missed:
        _trunk_only(quantize, out, bundle, gate, record, macs, missed)


def cpu_speedup(bundle: Bundle, variant_path: Path, size: tuple[int, int] = (480, 640), rounds: int = 6,
                calls: int = 3) -> float:
    """FP32's time over the variant's for one frame on this CPU. The two take turns, and each keeps its fastest
    call: a busy or drifting machine slows single calls, not the best of many. Their worker threads do not spin
    between calls, as at runtime: spinning, one session's threads fought the other's and a busy process's for the
    cores, and FP32 against itself came out at 0.46x or 2.2x in one run of five on a loaded 2-core host."""
    sessions = [_session(bundle.model_file("fp32")), _session(variant_path)]
    x = to_tensor(np.zeros((*size, 3), np.uint8), bundle.stride, bundle.margin)
    best = [float("inf")] * 2
    for s in sessions:
        s.run(None, {s.get_inputs()[0].name: x})  # warm-up
    for _ in range(rounds):
        for i, s in enumerate(sessions):
            for _ in range(calls):
                t0 = time.perf_counter()
                s.run(None, {s.get_inputs()[0].name: x})
                best[i] = min(best[i], time.perf_counter() - t0)
    return round(best[0] / best[1], 2)


def flicker_ratio(bundle: Bundle, variant_path: Path, frames: int = FLICKER_FRAMES) -> float:
    """The variant's temporal warping error over FP32's on the first ``frames`` of the bundled demo clip. INT8
    rounding that changes from frame to frame shows as flicker, which a PSNR on still photos does not see: the
    nanos' INT8-CPU passed at 34-41 dB and flickered 37-51 % more than their FP32."""
    from stylecam.sources import DEMO_CLIP
    from stylecam.temporal import WarpingError, read_clip

    clip, errors = read_clip(str(DEMO_CLIP), frames), []
    for path in (bundle.model_file("fp32"), variant_path):
        sess, metric = _session(path), WarpingError()
        for frame in clip:
            metric.update(frame, _stylize(sess, bundle, frame)[0])
        errors.append(metric.result()["warping_error"])
    return round(errors[1] / errors[0], 3)


def check_flicker(name: str, ratio: float) -> None:
    """Raise GateError when INT8-CPU flickers more than ``FLICKER_GATE`` times as much as FP32."""
    if not ratio <= FLICKER_GATE:
        raise GateError(f"{name} int8-cpu: {ratio}× FP32's flicker on the demo clip, above the {FLICKER_GATE}× "
                        "gate; not written (FP32 stays the CPU's choice)")


def check_speed(name: str, speedup: float) -> None:
    """Raise GateError when INT8-CPU is not ``MIN_CPU_SPEEDUP`` times as fast as FP32."""
    if not speedup >= MIN_CPU_SPEEDUP:
        raise GateError(f"{name} int8-cpu: {speedup}× FP32's speed on this CPU, below the {MIN_CPU_SPEEDUP}× it "
                        "must gain for its accuracy loss; not written (FP32 stays the CPU's choice)")


def check_gate(name: str, precision: str, accuracy: dict) -> None:
    """Raise GateError when a variant's worst-photo PSNR against FP32 is under its precision's gate."""
    if not accuracy["psnr_db"] >= GATE_DB[precision]:
        raise GateError(f"{name} {precision}: {accuracy['psnr_db']} dB PSNR against FP32 on the worst of "
                        f"{accuracy['photos']} photos, below the {GATE_DB[precision]} dB gate; not written")


def build_variant(bundle: Bundle, precision: str, out_dir: Path, eval_photos: list[np.ndarray],
                  calib_photos: list[np.ndarray] | None = None, method: str = "percentile") -> dict:
    """Write the variant into ``out_dir`` and return its gate record; raise GateError if it misses the gate."""
    out = Path(out_dir) / VARIANT_FILES[precision]
    record: dict = {"file": out.name, "gate_psnr_db": GATE_DB[precision]}
    gate = Reference(bundle, eval_photos)
    if precision == "fp16":
        make_fp16(bundle, out)
        extreme_inputs_finite(bundle, out)
        record.update(dtype="float16 inside, float32 input and output", extreme_inputs="finite")
        record["accuracy"] = gate.compare(out)
    else:
        if not calib_photos:
            raise ValueError("INT8 needs calibration photos (--calib FOLDER)")
        if precision == "int8":
            check_fp16_quantize()

        def quantize(percentile: float = CALIB_PERCENTILES[0], **nodes):
            cache = Path(out_dir) / f".calibration.{precision}.{method}.{percentile}.json"  # ranges per percentile
            make_int8(bundle, out, calib_photos, method, precision=precision, percentile=percentile,
                      calibration_cache=cache, **nodes)

        quantize()
        scheme = INT8_SCHEMES[precision]
        record.update(dtype=scheme["dtype"], calibration={"method": method, "photos": len(calib_photos)},
                      scheme=scheme["scheme"])
        record["accuracy"] = gate.compare(out)
        macs, search = conv_macs(bundle.model_file("fp32")), Reference(bundle, calib_photos[:SEARCH_PHOTOS])
        if record["accuracy"]["psnr_db"] < GATE_DB[precision]:
            record.update(_int8_mixed(quantize, out, search, gate, macs, record["accuracy"], GATE_DB[precision]))
        record["int8_mac_share"] = _int8_share(int8_convs(out), macs)  # 1.0: INT8 everywhere passed
        _settle_int8(quantize, out, bundle, precision, search, gate, record, macs, method)
    check = "accuracy gate"
    try:
        check_gate(bundle.name, precision, record["accuracy"])
        if precision == "int8-cpu":
            check = "flicker check"
            check_flicker(bundle.name, record["flicker_vs_fp32"])
            check = "speed check"
            record["cpu_speedup_vs_fp32"] = cpu_speedup(bundle, out)
            check_speed(bundle.name, record["cpu_speedup_vs_fp32"])
    except GateError as e:
        out.unlink(missing_ok=True)
        e.record = {**record, "status": f"rejected by the {check}"}
        raise
    record["status"] = "passed"
    return record


def export_variants(bundle: Bundle, precisions: list[str], eval_photos: list[np.ndarray],
                    calib_photos: list[np.ndarray] | None = None, method: str = "percentile") -> dict:
    """Build and gate every asked-for variant in a scratch folder; move each into the bundle once it passes.
    Returns {precision: record}; a rejected variant's record says so and its file is not written."""
    if "int8" in precisions:
        check_fp16_quantize()  # before any variant is written
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
