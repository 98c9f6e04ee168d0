"""Adversarial training, distillation, the temporal loss and multi-process training, on real data and a
budget of seconds."""
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import BATCHNORM_STYLES, shared, tiny  # noqa: E402
from stylecam import load_bundle  # noqa: E402
from stylecam.styles import resolve  # noqa: E402
from stylecam.train import adversarial  # noqa: E402
from stylecam.train.losses import temporal_loss  # noqa: E402
from stylecam.train.trainer import train  # noqa: E402

pytestmark = pytest.mark.slow


def read_log(bundle):
    lines = (bundle / ".train" / "log.csv").read_text().splitlines()
    head = lines[0].split(",")
    return [dict(zip(head, map(float, line.split(",")))) for line in lines[1:]]


def quiet_train(cfg):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the deliberately broken photo
        return train(cfg, progress=False)


def test_gan_objectives_and_penalties_have_their_textbook_values():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.5])
    assert adversarial.d_loss("hinge", real, fake).item() == pytest.approx(0.25 + 0.75)
    assert adversarial.d_loss("lsgan", real, fake).item() == pytest.approx((1 + 0.25) / 2 + (4 + 0.25) / 2)
    assert adversarial.g_loss("hinge", fake).item() == pytest.approx(0.75)
    linear = torch.nn.Conv2d(3, 1, 4, bias=False)  # D(x) = <w, x> on a 4×4 input: ∇ = w
    x = torch.rand(2, 3, 4, 4)
    assert adversarial.r1_penalty(linear, x).item() == pytest.approx(linear.weight.pow(2).sum().item(), rel=1e-5)
    with pytest.raises(ValueError, match="hinge, lsgan"):
        adversarial.Adversary("wgan", torch.device("cpu"))


def test_spectral_norm_bounds_every_discriminator_layer():
    torch.manual_seed(0)  # the same draw in any test order
    disc = adversarial.PatchDiscriminator(width=8)
    x = torch.rand(2, 3, 64, 64)
    for _ in range(100):  # power iteration converges in training mode (20 left 1 seed in 40 at |σ-1| > 0.05)
        disc(x)
    assert disc(x).shape == (2, 1, 6, 6)  # one logit per overlapping patch
    disc.eval()
    convs = [m for m in disc.modules() if isinstance(m, torch.nn.Conv2d)]
    sigmas = [torch.linalg.matrix_norm(m.weight.flatten(1), 2).item() for m in convs]
    assert len(convs) == 5 and max(sigmas) == pytest.approx(1.0, abs=0.05)


def test_diversity_sees_mode_collapse():
    x = torch.rand(4, 3, 16, 16)
    assert adversarial.diversity(x, x) == pytest.approx(1.0)
    assert adversarial.diversity(torch.rand(1, 3, 16, 16).expand(4, -1, -1, -1), x) == pytest.approx(0.0)


def test_temporal_loss_is_zero_for_a_stable_model_and_not_for_a_fixed_texture():
    rng = np.random.default_rng(0)
    x = torch.rand(2, 3, 64, 64)
    identity = torch.nn.Identity()
    assert temporal_loss(identity, x, x, rng, noise=0.0).item() < 1e-10
    texture = torch.rand(1, 3, 64, 64)  # a pattern glued to the screen swims when the scene moves

    def glued(t):
        return 0.5 * t + 0.5 * texture

    assert temporal_loss(glued, x, glued(x), rng, noise=0.0).item() > 1e-3


def test_gan_training_logs_the_discriminator_and_resumes_only_with_it(content, tmp_path):
    out = tmp_path / "gan"
    quiet_train(tiny(content, out, 2, gan="hinge", r1=1.0))
    rows = read_log(out)
    assert rows[-1]["d_loss"] > 0 and rows[-1]["diversity"] > 0 and rows[-1]["gan"] != 0
    quiet_train(tiny(content, out, 4, gan="hinge", r1=1.0, resume=True))
    assert load_bundle(out).manifest["training"]["steps_done"] == 4
    with pytest.raises(RuntimeError, match="same --gan setting"):
        quiet_train(tiny(content, out, 6, resume=True))
    assert (out / ".train" / "samples" / "step_000004.jpg").stat().st_size > 1000


def test_distillation_pulls_the_student_to_the_teacher(content, tmp_path):
    from stylecam.train.options import LossWeights

    only_distill = LossWeights(content=0.0, style=0.0, tv=0.0, distill_pixel=1.0, distill_feature=0.0)
    out = tmp_path / "student"
    quiet_train(tiny(content, out, 40, teacher="candy", weights=only_distill, lr=3e-3))
    rows = read_log(out)
    assert rows[-1]["distill"] < 0.5 * rows[0]["distill"]
    assert load_bundle(out).manifest["training"]["recipe"]["teacher"] == "candy"


def test_two_process_ddp_run_with_gloo(content, tmp_path):
    out = tmp_path / "ddp"
    # a rank once died at exit with SIGABRT ("terminate called without an active exception"), 1 run in 100 or
    # fewer: if it comes back, faulthandler prints where each rank's Python threads were
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1", "TORCH_SHOW_CPP_STACKTRACES": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "stylecam.cli", "train", "--style", str(shared("styles/wave.jpg")), "--content", str(content),
           "--out", str(out), "--arch", "nano", "--steps", "4", "--size", "64", "--batch", "1",
           "--style-size", "96", "--checkpoint-every", "2", "--device", "cpu"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("bundle written") == 1  # rank 0 alone writes
    training = json.loads((out / "manifest.json").read_text())["training"]
    assert training["distributed"] == {"world_size": 2, "backend": "gloo", "replicas_identical": True}
    assert training["hardware"].startswith("2 processes")
    # a resume must use the same number of processes (each one's data order is in the checkpoint)
    r = subprocess.run([sys.executable, "-m", "stylecam.cli", "train", "--style", str(shared("styles/wave.jpg")),
                        "--content", str(content), "--out", str(out), "--arch", "nano", "--steps", "6",
                        "--size", "64", "--batch", "1", "--resume", "--device", "cpu"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "--nproc_per_node 2" in r.stderr


def test_fine_tune_starts_from_a_bundled_style_by_name(content, tmp_path):
    out = tmp_path / "mine"
    quiet_train(tiny(content, out, 2, init="candy"))
    m = load_bundle(out).manifest
    assert m["architecture"]["name"] == "small_in" and m["training"]["recipe"]["init"] == "candy"
    first = read_log(out)[0]
    assert first["step"] == 1 and first["style"] > 0
    # the history goes with it: candy's own phases, then this run
    phases, candy = m["training"]["phases"], resolve("candy").manifest["training"]["phases"]
    assert phases[:-1] == candy and phases[-1]["from"] == "candy" and phases[-1]["steps"] == 2
    again = tmp_path / "again"  # a fine-tune of the fine-tune adds one more
    quiet_train(tiny(content, again, 1, init=str(out)))
    assert load_bundle(again).manifest["training"]["phases"][:-1] == phases


def test_fine_tuning_records_the_network_it_keeps_and_refuses_another(content, tmp_path):
    from stylecam.train.trainer import TrainConfig

    assert tiny(content, tmp_path / "a", 2, init="wave_nano").arch == "nano_in"  # not the "small_in" default
    with pytest.raises(ValueError, match="--arch small does not match --init candy_nano, a nano_in network"):
        tiny(content, tmp_path / "b", 2, init="candy_nano", arch="small")
    assert TrainConfig(style="s.jpg", content="c", out="o").arch == "small_in"


def test_fine_tuning_keeps_the_batchnorm_statistics_unless_told_not_to(content, tmp_path):
    from safetensors.torch import load_file

    from stylecam.styles import resolve

    shipped = load_file(resolve(BATCHNORM_STYLES / "the_scream").file("weights.safetensors"))  # a BatchNorm network
    stats = [k for k in shipped if k.endswith(("running_mean", "running_var"))]
    convs = [k for k in shipped if k.endswith(".weight") and shipped[k].dim() == 4]
    frozen, free = tmp_path / "frozen", tmp_path / "free"
    quiet_train(tiny(content, frozen, 2, init=str(BATCHNORM_STYLES / "the_scream")))
    quiet_train(tiny(content, free, 2, init=str(BATCHNORM_STYLES / "the_scream"), freeze_bn=False))
    a, b = load_file(frozen / "weights.safetensors"), load_file(free / "weights.safetensors")
    assert stats and all(torch.equal(a[k], shipped[k]) for k in stats)
    assert not all(torch.equal(a[k], shipped[k]) for k in convs)  # the weights still learn
    assert not any(torch.equal(b[k], shipped[k]) for k in stats)
    assert load_bundle(frozen).manifest["training"]["recipe"]["freeze_bn"] is True
    assert load_bundle(free).manifest["training"]["recipe"]["freeze_bn"] is False


def test_the_content_loss_holds_the_layer_it_is_given():
    from stylecam.train.losses import PerceptualLoss
    from stylecam.train.options import LossWeights
    from stylecam.train.vgg import VGG16Features

    vgg, g = VGG16Features(shared("vgg16/vgg16_caffe_features.pth")), torch.Generator().manual_seed(0)
    photo = torch.rand(1, 3, 64, 64, generator=g)
    stylized = (photo + 0.2 * torch.rand(1, 3, 64, 64, generator=g)).clamp(0, 1)
    with torch.no_grad():
        fx, fy = vgg(photo), vgg(stylized)
        held = {layer: float(PerceptualLoss(vgg, photo, LossWeights(content_layer=layer))(stylized, photo)["content"])
                for layer in ("relu2_2", "relu3_3")}
    for layer, value in held.items():
        assert value == pytest.approx(float(torch.nn.functional.mse_loss(fy[layer], fx[layer])), rel=1e-4)
    assert held["relu2_2"] != pytest.approx(held["relu3_3"], rel=0.05)


def test_style_layer_weights_scale_each_layers_gram_term():
    from stylecam.train.losses import PerceptualLoss, gram
    from stylecam.train.options import LossWeights
    from stylecam.train.vgg import VGG16Features

    vgg, g = VGG16Features(shared("vgg16/vgg16_caffe_features.pth")), torch.Generator().manual_seed(0)
    painting, photo = torch.rand(1, 3, 64, 64, generator=g), torch.rand(1, 3, 64, 64, generator=g)
    with torch.no_grad():
        fy = vgg(photo)
        loss = PerceptualLoss(vgg, painting, LossWeights(style_layer_weights=(0.0, 1.0, 4.0, 0.5)))
        terms = {k: float(torch.nn.functional.mse_loss(gram(fy[k]), loss.targets[k])) for k in loss.targets}
        weighted = float(loss.style_distance(fy))
    assert weighted == pytest.approx(terms["relu2_2"] + 4 * terms["relu3_3"] + 0.5 * terms["relu4_3"], rel=1e-5)
    assert weighted != pytest.approx(sum(terms.values()), rel=0.05)


@pytest.mark.parametrize("text", ["1,1,4", "1,1,x,4", "1,1,-4,4", "1,1,nan,4", "1,1,inf,4"])
def test_style_layer_weights_option_says_what_it_expects(text):
    import argparse

    from stylecam.train.options import layer_weights

    assert layer_weights("1,1,4,4") == (1.0, 1.0, 4.0, 4.0)
    with pytest.raises(argparse.ArgumentTypeError, match="4 non-negative numbers.*relu1_2, relu2_2"):
        layer_weights(text)
