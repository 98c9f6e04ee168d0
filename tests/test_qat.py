"""Quantization-aware fine-tuning: fake-quant placement, the Q/DQ export, the gate, a rejected try losing nothing."""
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from conftest import BATCHNORM_STYLES, shared

pytest.importorskip("onnxruntime.quantization")
torch = pytest.importorskip("torch")


def test_prepare_quantizes_all_but_the_float_tail_and_exports_qdq(tmp_path):
    import onnx
    import onnxruntime as ort

    from stylecam.styles import resolve
    from stylecam.train.models import fold_batchnorm, load_generator
    from stylecam.train.qat import export_int8, freeze, prepare

    candy = resolve("candy")
    model = fold_batchnorm(load_generator(candy)).eval()
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    quantized = prepare(model, float_tail=3)
    assert len(quantized) == len(convs) - 3 and quantized == convs[:-3]
    model(torch.rand(1, 3, 64, 64))  # the observers see one batch
    freeze(model)
    export_int8(model, tmp_path / "q.onnx", candy.stride)
    ops = Counter(n.op_type for n in onnx.load(str(tmp_path / "q.onnx")).graph.node)
    # an input and a weight Q/DQ pair for every quantized convolution, none for the float tail
    assert ops["QuantizeLinear"] == ops["DequantizeLinear"] == 2 * len(quantized) and ops["Conv"] == len(convs)
    sess = ort.InferenceSession(str(tmp_path / "q.onnx"), providers=["CPUExecutionProvider"])
    for h, w in ((64, 96), (100, 52)):  # dynamic H and W
        assert sess.run(None, {"x": np.random.rand(1, 3, h, w).astype(np.float32)})[0].shape == (1, 3, h, w)


def test_a_signed_stem_is_the_same_network():
    import copy

    from stylecam.styles import resolve
    from stylecam.train.models import fold_batchnorm, load_generator
    from stylecam.train.qat import sign_stem

    model = fold_batchnorm(load_generator(resolve(BATCHNORM_STYLES / "starry_night"))).eval()  # a zero-padded BatchNorm network
    signed = sign_stem(copy.deepcopy(model)).eval()
    x = torch.rand(1, 3, 36, 52)  # the borders see the explicit −1 padding
    with torch.no_grad():
        assert (model(x) - signed(x)).abs().max() < 1e-5
        assert signed[0](x).min() < -0.99  # what the stem's input quantizer sees spans [−1, 1]


def test_a_short_qat_run_is_gated_and_a_rejected_one_keeps_the_variant_there(content, tmp_path):
    import json

    from stylecam.export.precision import images
    from stylecam.train.qat import make_int8_variant

    out = tmp_path / "mosaic"  # INT8 everywhere gives about 10 dB (the_scream passes without QAT)
    photos = images(shared("content"), 2, 256, "bsds_val_*")
    record = make_int8_variant(BATCHNORM_STYLES / "mosaic", out, content, eval_photos=photos, steps=3, size=64, batch=1, lr=1.0,
                               progress=False)
    assert record["qat"]["steps"] == 3 and record["accuracy"]["photos"] == 2 and record["int8_mac_share"] == 1.0
    assert record["status"] == "rejected by the accuracy gate"  # a learning rate that wrecks the student
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["qat"]["accuracy"] == record["accuracy"]
    # the post-training INT8 variant that was there (it passed its own gate) is still there and still verified
    assert manifest["variants"]["int8"]["status"] == "passed" and "qat" not in manifest["variants"]["int8"]
    from stylecam import load_bundle

    assert load_bundle(out).model_file("int8").is_file()


def test_cli_qat_needs_a_bundle_to_start_from(tmp_path):
    r = subprocess.run([sys.executable, "-m", "stylecam.cli", "train", "--qat", "--content", str(tmp_path),
                        "--out", str(tmp_path / "x")], capture_output=True, text=True)
    assert r.returncode != 0 and "needs --init BUNDLE" in r.stderr
    r = subprocess.run([sys.executable, "-m", "stylecam.cli", "train", "--content", str(tmp_path),
                        "--out", str(tmp_path / "x")], capture_output=True, text=True)
    assert r.returncode != 0 and "--style PAINTING is required" in r.stderr
