"""The real training path on a tiny budget: VGG16 loss, checkpoints, resume, ONNX export and the runtime."""
import json
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from safetensors.torch import load_file, save_file  # noqa: E402

from conftest import shared, tiny  # noqa: E402
from stylecam import Stylizer, load_bundle  # noqa: E402
from stylecam.bundle import write_manifest  # noqa: E402
from stylecam.train.trainer import train, training_phases  # noqa: E402

pytestmark = pytest.mark.slow


def test_resume_after_a_stop_gives_the_same_weights(content, tmp_path):
    with pytest.warns(UserWarning, match="broken.jpg"):
        train(tiny(content, tmp_path / "straight", 4), progress=False)
    train(tiny(content, tmp_path / "stopped", 2), progress=False)
    # another seed: only a real resume (weights, optimizer and data order from the checkpoint) matches
    train(tiny(content, tmp_path / "stopped", 4, resume=True, seed=123), progress=False)
    a = load_file(tmp_path / "straight" / "weights.safetensors")
    b = load_file(tmp_path / "stopped" / "weights.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=k)
    m = load_bundle(tmp_path / "stopped").manifest
    assert m["training"]["steps_done"] == 4 and m["architecture"]["name"] == "nano"
    log = (tmp_path / "stopped" / ".train" / "log.csv").read_text().splitlines()
    assert log[0].startswith("step,") and len(log) >= 2


def test_half_written_checkpoint_is_reported(content, tmp_path):
    ckpt = tmp_path / "b" / ".train" / "checkpoint.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"PK\x03\x04 half a zip")
    with pytest.raises(RuntimeError, match="unreadable checkpoint"):
        train(tiny(content, tmp_path / "b", 2, resume=True), progress=False)


def test_a_non_finite_loss_skips_its_batch_and_ten_in_a_row_stop_training(content, tmp_path):
    from stylecam.train.options import LossWeights

    with pytest.warns(UserWarning, match="broken.jpg"), \
            pytest.raises(RuntimeError, match="not finite for 10 batches in a row; lower --lr"):
        train(tiny(content, tmp_path / "b", 4, weights=LossWeights(style=float("inf"))), progress=False)
    assert not (tmp_path / "b" / ".train" / "checkpoint.pt").exists()  # nothing half-trained was written


def test_a_non_finite_gradient_is_not_applied():
    from stylecam.train import distributed
    from stylecam.train.trainer import _backward_finite

    model = torch.nn.Linear(2, 1)
    finite = {"total": model(torch.ones(1, 2)).sum()}
    assert _backward_finite(finite, model, distributed.World()) and model.weight.grad is not None
    model.zero_grad(set_to_none=True)
    inf_grad = {"total": torch.sqrt(model.weight * 0).sum()}  # the loss is 0, its gradient is not finite
    assert not _backward_finite(inf_grad, model, distributed.World())
    assert model.weight.grad is None and not torch.isfinite(inf_grad["grad"])


def test_a_loss_spike_rolls_back_weights_and_optimizer_to_the_kept_step():
    from stylecam.train.trainer import SpikeGuard

    model = torch.nn.Linear(2, 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    guard = SpikeGuard({"model": model, "opt": opt})
    steps = guard.window + guard.every // 2
    for step in range(steps):  # healthy steps: counted, a copy kept every `every` of them
        assert guard.spike(1.0 + 0.1 * (step % 3)) is None
        guard.keep(step)
        model(torch.ones(1, 2)).sum().backward()
        opt.step()
    kept_step = (steps - 1) // guard.every * guard.every
    kept = {k: v.clone() for k, v in guard.kept[1]["model"].items()}
    with torch.no_grad():
        model.weight.fill_(1e6)  # thrown off
    ratio = guard.spike(100.0)
    assert ratio == pytest.approx(100.0 / 1.1)
    assert guard.roll_back(steps, ratio) == kept_step == guard.kept[0]
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, kept[k], rtol=0, atol=0, msg=k)
    assert opt.state_dict()["state"][0]["step"] == kept_step  # Adam's moments went back too
    kept_moment = guard.kept[1]["opt"]["state"][0]["exp_avg"].clone()
    model(torch.ones(1, 2)).sum().backward()
    opt.step()  # stepping on must not change the kept copy (the optimizer updates its state in place)
    assert guard.kept[1]["opt"]["state"][0]["step"] == kept_step
    torch.testing.assert_close(guard.kept[1]["opt"]["state"][0]["exp_avg"], kept_moment, rtol=0, atol=0)
    for _ in range(guard.max_rollbacks - 1):
        guard.roll_back(steps, ratio)
    with pytest.raises(RuntimeError, match="jumped to 91× its recent median 6 times.*lower --lr"):
        guard.roll_back(steps, ratio)


def test_training_rolls_back_over_a_loss_spike_and_finishes(content, tmp_path, monkeypatch, capsys):
    from stylecam.train import trainer
    from stylecam.train.data import ContentImages

    monkeypatch.setattr(trainer.SpikeGuard, "window", 3)
    monkeypatch.setattr(trainer.SpikeGuard, "every", 2)
    sample, calls = ContentImages.sample, []

    def sample_with_one_wild_batch(self, batch, rng):  # a finite blow-up: the batch 300× too bright
        calls.append(1)
        return sample(self, batch, rng) * (300.0 if len(calls) == 6 else 1.0)

    monkeypatch.setattr(ContentImages, "sample", sample_with_one_wild_batch)
    with pytest.warns(UserWarning, match="broken.jpg"):
        train(tiny(content, tmp_path / "b", 8), progress=False)
    out = capsys.readouterr().out
    assert "step 6: loss" in out and "rolled back to step 4 (weights and optimizer)" in out, out
    assert len(calls) == 8 + 2  # the spike's batch, and step 4 (the kept copy is from before it) done again
    assert load_bundle(tmp_path / "b").manifest["training"]["steps_done"] == 8
    assert all(torch.isfinite(v).all() for v in load_file(tmp_path / "b" / "weights.safetensors").values())


def test_cli_train_then_export_then_stylize(content, tmp_path, photo):
    out = tmp_path / "mine"
    cli = [sys.executable, "-m", "stylecam.cli"]
    subprocess.run([*cli, "train", "--style", str(shared("styles/udnie.jpg")), "--content", str(content),
                    "--out", str(out), "--arch", "nano", "--steps", "2", "--size", "64", "--batch", "1",
                    "--style-size", "96", "--content-layer", "relu3_3", "--style-layer-weights", "1,1,4,4"],
                   check=True, capture_output=True)
    r = subprocess.run([*cli, "export", str(out), "--check-image", str(shared("content/bsds_val_3096.jpg"))],
                       check=True, capture_output=True, text=True)
    assert "fp32: parity with torch" in r.stdout
    import onnx

    assert onnx.load(str(out / "model.onnx")).ir_version == 10  # what ONNX Runtime 1.18+ loads
    m = json.loads((out / "manifest.json").read_text())
    assert m["training"]["recipe"]["weights"]["content_layer"] == "relu3_3"
    assert [p["content_layer"] for p in training_phases(m)] == ["relu3_3"]
    assert [p["style_layer_weights"] for p in training_phases(m)] == [[1.0, 1.0, 4.0, 4.0]]
    assert m["export"]["parity"]["max_abs_error_vs_torch"] <= 1e-3
    assert m["export"]["parity"]["image"] == "bsds_val_3096.jpg"
    onnx_out = Stylizer(out, backend="onnxruntime", variant="fp32").stylize(photo)
    torch_out = Stylizer(out, backend="torch", device="cpu").stylize(photo)
    assert onnx_out.shape == photo.shape
    assert np.abs(onnx_out.astype(int) - torch_out).max() <= 1


def test_cli_train_reports_a_missing_content_folder(tmp_path):
    r = subprocess.run([sys.executable, "-m", "stylecam.cli", "train", "--style", str(shared("styles/wave.jpg")),
                        "--content", str(tmp_path / "nope"), "--out", str(tmp_path / "b"), "--steps", "1"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "no images" in r.stderr


def test_reexport_keeps_variants_only_while_model_onnx_is_unchanged(candy_copy):
    from stylecam.export.onnx_export import export_bundle

    export_bundle(candy_copy)  # the same weights give the same model.onnx: its FP16/INT8 variants still hold
    if "fp16" not in load_bundle(candy_copy).manifest["variants"]:  # another torch/onnx/onnxscript made them
        export_bundle(candy_copy, precisions=("fp32", "fp16"), eval_dir=shared("content"), eval_count=1)
        export_bundle(candy_copy)  # this exporter, twice
    m = load_bundle(candy_copy).manifest
    assert "fp16" in m["variants"] and (candy_copy / "model.fp16.onnx").is_file()
    weights = candy_copy / "weights.safetensors"
    save_file({k: v * 1.01 if v.is_floating_point() else v for k, v in load_file(weights).items()}, weights)
    write_manifest(candy_copy, m)
    export_bundle(candy_copy)  # new weights: the old variants are stale and go
    m = load_bundle(candy_copy).manifest
    assert list(m["variants"]) == ["fp32"] and not (candy_copy / "model.fp16.onnx").exists()
    assert "model.int8.onnx" not in m["files"]


@pytest.mark.parametrize("arch", ["small_in", "nano_in"])
def test_instance_norm_networks_export_and_keep_their_output_when_the_stem_is_fed_2x_minus_1(arch, tmp_path):
    """The InstanceNorm family pads by reflection inside the graph (Pad before each Conv): the INT8 schemes' signed
    stem moves 2x − 1 in front of the first Pad, and the network computes the same image; a flat frame gives a
    flat output (reflect padding leaves no edge for InstanceNorm to amplify)."""
    import io

    import onnx
    import onnxruntime as ort

    from stylecam.export.precision import signed_input
    from stylecam.train.models import build_generator

    torch.manual_seed(0)
    net = build_generator(arch).eval()
    for m in net.modules():  # an untrained InstanceNorm has scale 1, shift 0: give it some of each
        if isinstance(m, torch.nn.InstanceNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    buf = io.BytesIO()
    torch.onnx.export(net, (torch.rand(1, 3, 64, 64),), buf, dynamo=True, opset_version=18,
                      dynamic_shapes=({2: torch.export.Dim("h"), 3: torch.export.Dim("w")},))
    model = onnx.load_from_string(buf.getvalue())
    assert model.graph.node[0].op_type == "Pad" and "InstanceNormalization" in {n.op_type for n in model.graph.node}
    run = lambda m, x: ort.InferenceSession(m.SerializeToString()).run(None, {m.graph.input[0].name: x})[0]  # noqa
    x = np.random.default_rng(0).random((1, 3, 72, 96), dtype=np.float32)
    assert np.abs(run(signed_input(model), x) - run(model, x)).max() < 1e-4
    flat = run(model, np.full((1, 3, 72, 96), 0.5, np.float32))
    assert flat.std(axis=(2, 3)).max() < 1e-4


def test_an_instance_norm_bundle_stylizes_frames_down_to_one_pixel(content, tmp_path):
    """Reflect padding needs two pixels at 1/4 resolution: the contract's stride 8 pads any frame to that."""
    from stylecam.export.onnx_export import export_bundle

    out = tmp_path / "in"
    train(tiny(content, out, 1, arch="nano_in"), progress=False)
    export_bundle(out)
    s = Stylizer(out, backend="onnxruntime", variant="fp32")
    assert s.bundle.stride == 8
    for h, w in ((1, 1), (3, 5), (9, 13), (64, 40)):
        assert s.stylize(np.full((h, w, 3), 90, np.uint8)).shape == (h, w, 3)
