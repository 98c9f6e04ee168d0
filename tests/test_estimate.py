"""The Jetson estimator: its roofline arithmetic, its ordering on a real bundle, and the check against measurement."""
import json
import subprocess
import sys

import pytest

from conftest import BATCHNORM_STYLES
from stylecam.benchmarks import estimate, report, results
from stylecam.export.graph import ConvLayer, conv_layers
from stylecam.styles import resolve

pytest.importorskip("onnx")


def test_roofline_arithmetic_on_one_layer():
    # 1 SM at 1 GHz doing 1000 FMA/clock on tensor cores: 1e12 MAC/s fp16; 100 GB/s DRAM
    dev = estimate.Device("test", "test", "-", 1, 1.0, 100.0, 1000)
    eff = estimate.TENSOR_EFFICIENCY
    heavy = ConvLayer("c", macs=10**10, input_elems=10, output_elems=10, weight_elems=0, depthwise=False)
    r = estimate.predict([heavy], dev, "fp16", 2, 2)
    assert r["bound"] == "compute" and r["compute_ms"] == pytest.approx(1e10 / (1e12 * eff) * 1e3, rel=1e-3)
    wide = ConvLayer("m", macs=10, input_elems=10**9, output_elems=10**9, weight_elems=0, depthwise=True)
    r = estimate.predict([wide], dev, "int8", 2, 2)  # 2 GB at 1 byte each over 70 GB/s
    assert r["bound"] == "memory" and r["memory_ms"] == pytest.approx(2e9 / (100e9 * estimate.DRAM_EFFICIENCY) * 1e3,
                                                                      rel=1e-3)
    assert r["ms"] == pytest.approx(r["memory_ms"] + estimate.LAYER_OVERHEAD_S * 1e3 + r["prepost_ms"], abs=2e-3)


def test_graph_macs_match_the_manifest_and_predictions_order_sensibly():
    candy = resolve("candy")
    layers = conv_layers(candy.model_file("fp32"), 480, 640)
    assert sum(lr.macs for lr in layers) == candy.manifest["architecture"]["macs"]["480x640"]  # two counters agree
    rows = {(r["device"], r["precision"]): r["ms"] for r in
            estimate.estimate(candy.model_file("fp32"), "candy", ["fp32", "fp16", "int8"], [(480, 640)])}
    for device in estimate.JETSONS:
        assert rows[(device, "int8")] < rows[(device, "fp16")] < rows[(device, "fp32")]
    assert rows[("Jetson AGX Orin 64GB", "fp16")] < rows[("Jetson Orin Nano 8GB", "fp16")] < \
        rows[("Jetson Orin Nano 4GB", "fp16")]
    with pytest.raises(ValueError, match="predicts TensorRT on Jetsons.*int8-cpu"):
        estimate.estimate(candy.model_file("fp32"), "candy", ["int8-cpu"], [(480, 640)])


def test_mixed_int8_runs_its_float_convolutions_in_fp16():
    from stylecam.export.precision import int8_convs

    mosaic = resolve(BATCHNORM_STYLES / "mosaic")  # mixed: 18 of its 29 convolutions in INT8
    layers = conv_layers(mosaic.model_file("fp32"), 720, 1280)
    shipped = set(int8_convs(mosaic.model_file("int8")))  # the convolutions the shipped variant quantizes
    assert 0 < len(shipped) < len(layers)
    nano = estimate.DEVICES["Jetson Orin Nano 8GB"]
    ms = {p: estimate.predict(layers, nano, p, 720, 1280)["ms"] for p in ("fp32", "fp16", "int8")}
    mixed = estimate.predict(layers, nano, "int8", 720, 1280, int8_layers=shipped)["ms"]
    assert ms["int8"] < mixed < ms["fp16"]
    assert estimate.predict(layers, nano, "int8", 720, 1280, int8_layers=set())["ms"] == ms["fp16"]
    row = estimate.estimate(mosaic.model_file("fp32"), "mosaic", ["int8"], [(720, 1280)], int8_layers=shipped)[0]
    share = sum(lr.macs for lr in layers if lr.name in shipped) / sum(lr.macs for lr in layers)
    assert row["int8_mac_share"] == round(share, 3)


def test_check_sets_predictions_beside_measured_tensorrt_runs_and_the_report_shows_it(tmp_path):
    rows = estimate.estimate(resolve("candy").model_file("fp32"), "candy", ["fp16"], [(480, 640)],
                             devices=["NVIDIA H100 80GB HBM3"])
    estimate.save(rows, tmp_path / "estimate.json")
    text = report.render(tmp_path).read_text()
    assert "Jetson on paper" in text and "unchecked" in text
    # a TensorRT run recorded on an H100 (as `stylecam bench --backends tensorrt --save` would write it)
    device = {**results.device_block(), "gpu": {"name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"}}
    measured = {"model": "candy", "precision": "fp16", "size": [480, 640], "backend": {"backend": "tensorrt"},
                "arch": "small", "peer": False, "unstable": False, "fps": 500.0, "rss_mb": 1,
                "end_to_end_ms": {"median": 2.0, "p95": 2.1, "p99": 2.2},
                "stages_ms": {"infer": {"median": 0.5}}}
    results.save_run([measured], device, root=tmp_path)
    checked = estimate.check(rows, results.load_runs(tmp_path))
    assert len(checked) == 1 and checked[0]["measured_ms"] == 0.5
    assert checked[0]["ratio"] == pytest.approx(checked[0]["network_ms"] / 0.5, abs=0.01)
    text = report.render(tmp_path).read_text()
    assert "Checked against measured TensorRT" in text and f"| {checked[0]['ratio']:.2f} |" in text


def test_a_jetson_run_checks_the_estimate_of_its_own_module_and_names_another_power_mode(tmp_path):
    rows = estimate.estimate(resolve("candy").model_file("fp32"), "candy", ["fp16"], [(480, 640)],
                             devices=["Jetson Orin Nano 8GB", "Jetson AGX Orin 64GB"])
    estimate.save(rows, tmp_path / "estimate.json")
    measured = {"model": "candy", "precision": "fp16", "size": [480, 640], "backend": {"backend": "tensorrt"},
                "arch": "small", "peer": False, "unstable": False, "fps": 100.0, "rss_mb": 1,
                "end_to_end_ms": {"median": 10.0, "p95": 11.0, "p99": 12.0}, "stages_ms": {"infer": {"median": 8.0}}}
    board = {"module": "NVIDIA Jetson Orin Nano Developer Kit", "power_mode": "MAXN_SUPER (mode 2)"}
    for part, sku, ms in (("p3767-0004", "NVIDIA Jetson Orin Nano (4GB ram)", 8.0),  # half the SMs
                          ("p3701-0004", "NVIDIA Jetson AGX Orin (32GB ram)", 3.0)):  # 14 of 16 SMs
        device = {**results.device_block(), "jetson": {**board, "part_number": part, "sku": sku}}
        results.save_run([{**measured, "stages_ms": {"infer": {"median": ms}}}], device, root=tmp_path)
    assert estimate.check(rows, results.load_runs(tmp_path)) == []  # neither is the module estimated
    small = estimate.estimate(resolve("candy").model_file("fp32"), "candy", ["fp16"], [(480, 640)],
                              devices=["Jetson Orin Nano 4GB"])
    assert [c["measured_ms"] for c in estimate.check(small, results.load_runs(tmp_path))] == [8.0]  # its own
    unnamed = [{"device": {"jetson": {"module": "NVIDIA Jetson Orin Nano (4GB ram)"}}, "results": [measured]}]
    assert estimate.check(rows, unnamed) == [] and len(estimate.check(small, unnamed)) == 1  # no part: the name
    device = {**results.device_block(), "jetson": {**board, "power_mode": "15W (mode 0)", "part_number": "p3767-0005",
                                                    "sku": "NVIDIA Jetson Orin Nano (Developer kit)"}}
    results.save_run([measured], device, root=tmp_path)
    checked = estimate.check(rows, results.load_runs(tmp_path))
    assert [(c["device"], c["measured_ms"], c["measured_power_mode"]) for c in checked] == [
        ("Jetson Orin Nano 8GB", 8.0, "15W (mode 0)")]
    text = report.render(tmp_path).read_text()
    assert "| Jetson Orin Nano 8GB (measured in 15W (mode 0)) | fp16 |" in text
    device["jetson"]["power_mode"] = "MAXN_SUPER (mode 2)"  # the mode estimated: nothing to say
    results.save_run([measured], device, root=tmp_path)
    assert "| Jetson Orin Nano 8GB | fp16 | 480×640 |" in report.render(tmp_path).read_text().split("Checked")[1]


def test_saving_estimates_keeps_other_models_and_replaces_a_model_estimated_again(tmp_path, monkeypatch):
    path = tmp_path / "estimate.json"
    one = lambda name, size: estimate.estimate(resolve(name).model_file("fp32"), name, ["fp16"], [size],  # noqa: E731
                                               devices=["Jetson Orin Nano 8GB"])
    estimate.save(one("candy", (480, 640)) + one("wave", (480, 640)), path)
    estimate.save(one("wave_nano", (480, 640)) + one("candy", (720, 1280)), path)
    kept = json.loads(path.read_text())["estimates"]
    assert sorted((r["model"], tuple(r["size"])) for r in kept) == [
        ("candy", (720, 1280)), ("wave", (480, 640)), ("wave_nano", (480, 640))]
    monkeypatch.setattr(estimate, "DRAM_EFFICIENCY", 0.5)  # new assumptions: the old rows are not comparable
    estimate.save(one("wave_nano", (480, 640)), path)
    assert [r["model"] for r in json.loads(path.read_text())["estimates"]] == ["wave_nano"]


def test_cli_bench_estimate(tmp_path):
    r = subprocess.run([sys.executable, "-m", "stylecam.cli", "bench", "estimate", "--models", "wave",
                        "--sizes", "480x640", "--precisions", "fp16"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "predicted, not measured" in r.stdout and "Jetson Orin Nano 8GB" in r.stdout and "Thor" in r.stdout
