"""Benchmark statistics, peers, a real 2-iteration CPU run, the results database and the report."""
import importlib.util
import itertools
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import BATCHNORM_STYLES
from stylecam.benchmarks import harness, report, results
from stylecam.peer import Peer, PeerContract
from stylecam.styles import STYLES_DIR
from stylecam.timing import summarize


def test_statistics_of_a_known_sequence():
    s = summarize(np.arange(1, 101))
    assert (s["n"], s["min"], s["mean"], s["median"]) == (100, 1.0, 50.5, 50.5)
    assert s["p90"] == pytest.approx(90.1) and s["p95"] == pytest.approx(95.05) and s["p99"] == pytest.approx(99.01)
    assert s["std"] == pytest.approx(29.0115, abs=1e-4) and s["cv"] == pytest.approx(29.0115 / 50.5, abs=1e-6)
    assert summarize([5.0])["cv"] == 0.0
    with pytest.raises(ValueError):
        summarize([])


def test_the_stage_timer_keeps_its_last_window_and_counts_every_frame():
    from stylecam.timing import StageTimer

    timer = StageTimer(window=3)
    for ms in (50.0, 40.0, 1.0, 2.0, 3.0):
        timer.add("infer", ms)
    assert len(timer.samples["infer"]) == 3 and timer.stats()["infer"]["median"] == 2.0
    assert timer.table().splitlines()[1].split()[:3] == ["infer", "5", "2.00"]  # all frames; the recent median
    timer.reset()
    assert timer.stats() == {} and timer.counts["infer"] == 0


@pytest.mark.parametrize("text,expect", [
    ("rgb01", (1 / 255, 0.0, "RGB", "NCHW")), ("bgr255", (1.0, 0.0, "BGR", "NCHW")),
    ("rgb-11,nhwc", (2 / 255, -1.0, "RGB", "NHWC"))])
def test_peer_contracts(text, expect):
    c = PeerContract.parse(text)
    assert c.scale == pytest.approx(expect[0]) and (c.offset, c.channels, c.layout) == expect[1:]
    assert c.output_range == (c.scale, c.offset)  # the output in the input's range unless told
    assert PeerContract.parse(text + ",out255").output_range == (1.0, 0.0)
    for bad in ("yuv", "rgb2555", "rgb01,nwhc", "rgb01,out2"):  # a typo is an error, not a silent default
        with pytest.raises(ValueError, match="unknown .*peer contract"):
            PeerContract.parse(bad)


def test_real_two_iteration_benchmark_and_a_peer_in_the_same_run():
    ours = harness.bench_style("candy", "onnxruntime", "fp32", [(64, 96)], threads=2, warmup_s=0, iters=2)
    peer = harness.bench_peer(f"{STYLES_DIR / 'candy' / 'model.onnx'}:rgb01", [(64, 96)], threads=2,
                              warmup_s=0, iters=2)
    for r in ours + peer:
        assert r["end_to_end_ms"]["n"] == 2 and r["end_to_end_ms"]["median"] > 0 and r["fps"] > 0
        assert {"pre", "infer", "post"} <= set(r["stages_ms"]) and r["stages_ms"]["infer"]["n"] == 2
    assert ours[0]["arch"] == "small_in" and ours[0]["macs_480x640"] > 0 and not ours[0]["peer"]
    assert peer[0]["peer"] and peer[0]["backend"]["model"] == "model.onnx"
    auto, _ = harness.load_style("candy", "onnxruntime", "auto", threads=1)
    assert ours[0]["precision"] == "fp32" and auto["precision"] == "int8-cpu"  # rows name what ran, not "auto"


@pytest.mark.skipif(harness.rss_mb() is None, reason="needs Linux /proc for RSS")
def test_host_memory_is_each_models_own_and_grows_with_the_frame():
    # two models in one process: each row says what that model holds, not the process's RSS (which holds both)
    cases = [harness.load_style(style, "onnxruntime", "fp32", threads=1) for style in ("candy", "candy_nano")]
    rows = {(r["model"], r["size"][0]): r for r in harness.run(cases, [(32, 48), (480, 640)], warmup_s=0, iters=2)}
    for style in ("candy", "candy_nano"):
        small, large = rows[(style, 32)]["model_mb"], rows[(style, 480)]["model_mb"]
        assert large > small + 10  # a 480×640 frame's activations: tens of MB of ONNX Runtime arena
        assert large < rows[(style, 480)]["rss_mb"]
    assert rows[("candy", 480)]["model_mb"] > rows[("candy_nano", 480)]["model_mb"]  # wider network, more memory


@pytest.mark.skipif(harness.rss_mb() is None, reason="needs Linux /proc for RSS")
def test_tiles_are_timed_as_their_own_case_in_less_memory():
    nano = str(BATCHNORM_STYLES / "candy_nano")  # InstanceNorm networks cannot be tiled
    rows = harness.run([harness.load_style(nano, "onnxruntime", "fp32", 1, tile=t) for t in (None, 160)],
                       [(480, 640)], warmup_s=0, iters=2)
    whole, tiled = rows
    assert tiled["model"] == "candy_nano tile 160" and tiled["tile"] == 160 and whole["tile"] is None
    assert tiled["quality"] == whole["quality"] != {}  # the same image, so the bundle's metrics still apply
    assert tiled["model_mb"] < whole["model_mb"] / 2  # a 160-pixel window's arena, not a 480×640 frame's


def test_cases_take_turns_so_a_drifting_machine_does_not_skew_their_ratio():
    import time

    from stylecam.timing import StageTimer

    calls = []

    class Drifting:  # the same work on a machine that slows down as it goes (a busy neighbour, a hot clock)
        def __init__(self, name):
            self.name, self.timer = name, StageTimer()

        def stylize(self, frame):
            calls.append(self.name)
            time.sleep(0.002 * (1 + len(calls) / 8))  # ms-scale, so a noisy VM's sleep jitter stays small against it

    a, b = Drifting("a"), Drifting("b")
    ta, tb = harness.time_models([a, b], (8, 8), warmup_s=0, iters=20, block=5)
    assert ta["end_to_end_ms"]["n"] == tb["end_to_end_ms"]["n"] == 20
    timed = calls[2:]  # after one warm-up call each
    assert timed[:10] == ["a"] * 5 + ["b"] * 5  # turns of five
    ratio = tb["end_to_end_ms"]["median"] / ta["end_to_end_ms"]["median"]
    # turns of five put b 5 calls behind a (about 1.18x); one after the other, b would come out about twice as slow
    assert 0.9 < ratio < 1.5, ratio


def test_smoothing_cost_is_its_own_stage():
    plain, smooth = (harness.bench_style("candy", "onnxruntime", "fp32", [(64, 96)], threads=2, smoothing=a,
                                         warmup_s=0, iters=3)[0] for a in (0.0, 0.5))
    assert "smooth" not in plain["stages_ms"] and smooth["stages_ms"]["smooth"]["n"] == 3
    assert smooth["model"] == "candy +smooth 0.5" and smooth["smoothing"] == 0.5


def test_workers_are_timed_as_frames_a_second_beside_one_stylizer(tmp_path):
    rows = harness.run([harness.load_style("candy_nano", "onnxruntime", "fp32", 1, workers=w) for w in (1, 2)],
                       [(64, 96)], warmup_s=0, iters=3)
    one, two = rows
    assert two["model"] == "candy_nano ×2 workers" and (one["workers"], two["workers"]) == (1, 2)
    assert one["stages_ms"]["infer"]["n"] == 3 and two["stages_ms"]["infer"]["n"] == 6  # two frames a call
    assert two["fps"] == pytest.approx(1e3 / two["end_to_end_ms"]["median"])  # ms per frame: wall time / 2
    assert one["quality"]["style_distance"] == two["quality"]["style_distance"]  # the same network
    results.save_run(rows, results.device_block(), root=tmp_path)
    text = report.render(tmp_path).read_text()
    rated = {line.split(" | ")[0]: line.split(" | ")[11] for line in text.splitlines() if "| candy_nano" in line}
    assert rated["| candy_nano ×2 workers"] == "–" and rated["| candy_nano"] != "–"  # not a latency: not plotted as one
    assert "not one frame's latency" in text
    with pytest.raises(ValueError, match="smooth"):
        harness.load_style("candy_nano", "onnxruntime", "fp32", 1, smoothing=0.5, workers=2)


def test_a_smaller_network_scale_is_timed_as_its_own_case():
    rows = harness.run([harness.load_style("candy", "onnxruntime", "fp32", 2, scale=s) for s in (1.0, 0.5)],
                       [(128, 192)], warmup_s=0, iters=3)
    full, half = rows
    assert half["model"] == "candy @0.5x" and half["scale"] == 0.5 and full["scale"] == 1.0
    assert full["quality"] and not half["quality"]  # the manifest's metrics were measured at full scale
    assert half["size"] == full["size"] == [128, 192]  # the frame size; the network ran at 64×96


def test_peer_output_is_a_frame_of_the_input_size():
    peer = Peer(str(STYLES_DIR / "candy" / "model.onnx"), PeerContract.parse("rgb01"), 2)
    out = peer.stylize(np.zeros((64, 96, 3), np.uint8))
    assert out.shape == (64, 96, 3) and out.dtype == np.uint8


def test_device_folder_names_the_cpu_vector_tier():
    import platform

    vm = {"cpu": "AMD EPYC", "cores": 2, "gpu": None, "jetson": None}
    assert results.device_slug(vm) == "amd-epyc-2c"  # runs saved before features were recorded
    assert results.device_slug({**vm, "cpu_features": ["avx2"]}) == "amd-epyc-avx2-2c"
    assert results.device_slug({**vm, "cpu_features": ["avx2", "avx512f", "avx512_vnni"]}) == "amd-epyc-avx512-vnni-2c"
    sapphire = {**vm, "cpu": "Intel(R) Xeon(R) Processor", "cpu_features": ["avx2", "avx512_vnni", "amx_int8"]}
    assert results.device_slug(sapphire) == "intel-r-xeon-r-processor-amx-2c"
    assert results.device_slug({**vm, "cpu_features": ["asimddp"]}) == "amd-epyc-2c"  # ARM: the name says it
    zen5 = {**vm, "cpu_features": ["avx2", "avx512f", "avx512_vnni"], "cpu_signature": "family 26 model 2 stepping 1"}
    assert results.device_slug(zen5) == "amd-epyc-family-26-avx512-vnni-2c"  # Zen 4 is family 25
    emerald = {**sapphire, "cpu_signature": "family 6 model 207 stepping 2"}
    assert results.device_slug(emerald) == "intel-r-xeon-r-processor-model-207-amx-2c"
    named = {**vm, "cpu": "AMD EPYC 9654 96-Core Processor", "cores": 96, "cpu_signature": zen5["cpu_signature"]}
    assert results.device_slug(named) == "amd-epyc-9654-96-core-processor-96c"  # the model number says it
    if platform.machine() == "x86_64" and results._read("/proc/cpuinfo"):
        assert "avx2" in results.cpu_features()


def test_cpu_signature_tells_generations_with_one_name_apart(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/cpuinfo").write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\n"
                                           "model\t\t: 2\nmodel name\t: AMD EPYC\nstepping\t: 1\n")
    assert results.cpu_signature(tmp_path) == "family 26 model 2 stepping 1"
    (tmp_path / "proc/cpuinfo").write_text("processor\t: 0\nBogoMIPS\t: 62.50\nCPU part\t: 0xd42\n")  # an Orin
    assert results.cpu_signature(tmp_path) is None
    here = {**results.device_block(), "jetson": None}  # a Jetson's line starts with its module
    line = report.device_line({**here, "cpu": "AMD EPYC", "cores": 2, "cpu_signature": "family 26 model 2 stepping 1"})
    assert line.startswith("CPU AMD EPYC (family 26 model 2 stepping 1, 2 cores")
    assert report.device_line({**here, "cpu_signature": None}).startswith(
        f"CPU {results.cpu_model()} ({os.cpu_count()} cores")  # runs from before it was recorded


def test_clocks_power_mode_and_gpu_state_are_read_where_the_system_shows_them(tmp_path):
    def put(path, text):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)

    assert results.clocks(tmp_path) == {} and results.jetson_power_mode(tmp_path) is None  # nothing readable
    put("proc/cpuinfo", "processor\t: 0\ncpu MHz\t\t: 2600.004\n")  # a VM: no cpufreq, the nominal clock
    assert results.clocks(tmp_path) == {"cpu0": {"cur": 2600.0}}
    for name, khz in (("scaling_cur_freq", "1510000"), ("scaling_min_freq", "729600"), ("cpuinfo_max_freq",
                                                                                          "1728000")):
        put(f"sys/devices/system/cpu/cpu0/cpufreq/{name}", khz)
    put("sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", "schedutil\n")
    gpu = "sys/class/devfreq/17000000.gpu"  # an Orin after jetson_clocks: min pinned to max
    for name, hz in (("cur_freq", "1020000000"), ("min_freq", "1020000000"), ("max_freq", "1020000000")):
        put(f"{gpu}/{name}", hz)
    put(f"{gpu}/governor", "nvhost_podgov")
    got = results.clocks(tmp_path)
    assert got["cpu0"] == {"cur": 1510.0, "min": 729.6, "max": 1728.0, "governor": "schedutil"}
    assert got["17000000.gpu"] == {"cur": 1020.0, "min": 1020.0, "max": 1020.0, "governor": "nvhost_podgov"}
    put("etc/nvpmodel.conf", "< POWER_MODEL ID=0 NAME=15W >\n< POWER_MODEL ID=2 NAME=MAXN_SUPER >\n"
                             "< PM_CONFIG DEFAULT=0 >\n")
    assert results.jetson_power_mode(tmp_path) == "15W (mode 0, the default)"  # nvpmodel has not run yet
    put("var/lib/nvpmodel/status", "pmode:0002 fmode:quiet")
    assert results.jetson_power_mode(tmp_path) == "MAXN_SUPER (mode 2)"
    smi = results.nvidia_smi_state("580.95.05, 1755, 1980, 2619, 2619, 700.00, P0\n")
    assert smi == {"driver": "580.95.05", "sm_mhz": 1755.0, "max_sm_mhz": 1980.0, "mem_mhz": 2619.0,
                   "max_mem_mhz": 2619.0, "power_limit_w": 700.0, "pstate": "P0"}
    assert results.nvidia_smi_state("580.95.05, [N/A], [N/A], [N/A], [N/A], [N/A], [N/A]\n") == {"driver": "580.95.05"}
    assert results.nvidia_smi_state("garbage") is None
    line = report.device_line({**results.device_block(), "clocks": got, "jetson": {
        "module": "NVIDIA Jetson Orin Nano", "power_mode": "MAXN_SUPER (mode 2)"},
        "gpu": {"name": "Orin", "compute_capability": "8.7", **smi}})
    assert "power mode MAXN_SUPER (mode 2)" in line and "17000000.gpu 1020 MHz (locked, nvhost_podgov)" in line
    assert "cpu0 1510 MHz (730–1728, schedutil)" in line and "SM 1755 of 1980 MHz, memory 2619 MHz, P0" in line
    assert "clocks: cpu0" in report.device_line(results.device_block()) or not results.clocks()


def test_a_jetson_is_named_by_its_module_part_number_and_release(tmp_path):
    def put(path, text):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)

    assert results.jetson_block(tmp_path) is None  # no device tree: not a Jetson
    put("proc/device-tree/model", "NVIDIA Jetson Orin Nano Developer Kit\x00")
    put("proc/device-tree/compatible", "nvidia,p3768-0000+p3767-0004\x00nvidia,p3767-0004\x00nvidia,tegra234\x00")
    put("etc/nv_tegra_release", "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, "
                                "DATE: Wed Jan  8 01:49:37 UTC 2025\n")
    put("etc/nvpmodel.conf", "< POWER_MODEL ID=0 NAME=15W >\n< PM_CONFIG DEFAULT=0 >\n")
    block = results.jetson_block(tmp_path)
    named = {"sku": "NVIDIA Jetson Orin Nano (4GB ram)", "jetpack": "6.2"} if importlib.util.find_spec("jtop") else {}
    assert block == {"module": "NVIDIA Jetson Orin Nano Developer Kit", "part_number": "p3767-0004", "l4t": "36.4.3",
                     "power_mode": "15W (mode 0, the default)", **named}  # jetson-stats' tables add the names
    device = {**results.device_block(), "jetson": block}
    assert results.device_slug(device) == "nvidia-jetson-orin-nano-developer-kit-p3767-0004"  # 4GB and 8GB apart
    line = report.device_line(device)
    assert line.startswith("NVIDIA Jetson Orin Nano Developer Kit (") and "p3767-0004), power mode 15W" in line
    assert ("JetPack 6.2 (L4T 36.4.3)" if named else "L4T 36.4.3") in line
    put("proc/device-tree/model", "Raspberry Pi 5 Model B Rev 1.0")
    assert results.jetson_block(tmp_path) is None


def test_nvidia_smi_is_asked_for_the_fields_it_is_parsed_for(tmp_path, monkeypatch):
    from stylecam.export import engine

    smi = tmp_path / "nvidia-smi"  # a stand-in on PATH (no GPU here) that answers the query it is given
    smi.write_text('#!/bin/sh\n[ "$1" = -i ] && shift 2  # one GPU asked for by index\ncase "$1" in\n  --query-gpu=name,compute_cap) echo "NVIDIA H100 80GB HBM3, 9.0";;\n'
                   '  --query-gpu=driver_version,clocks.sm,*) [ "$2" = --format=csv,noheader,nounits ] && '
                   'echo "580.95.05, 1755, 1980, 2619, 2619, 700.00, P0";;\nesac\n')
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    assert engine.smi_gpu() == {"name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"}
    assert results.nvidia_smi_state() == {"driver": "580.95.05", "sm_mhz": 1755.0, "max_sm_mhz": 1980.0,
                                          "mem_mhz": 2619.0, "max_mem_mhz": 2619.0, "power_limit_w": 700.0,
                                          "pstate": "P0"}
    smi.write_text("#!/bin/sh\nexit 9\n")  # a driver that fails: nothing, not an exception
    assert engine.smi_gpu() is None and results.nvidia_smi_state() is None


def test_device_block_and_results_database_and_report(tmp_path):
    from stylecam import live

    device = results.device_block()
    assert device["cores"] >= 1 and device["cpu"] and "onnxruntime" in device["versions"]
    assert device["freed_memory_kept"] is live.freed_memory_kept  # it moves pre/post times: the report says so
    assert "freed memory kept" in report.device_line({**device, "freed_memory_kept": True})
    assert "freed memory kept" not in report.device_line({**device, "freed_memory_kept": False})
    rows = harness.bench_style("wave", "onnxruntime", "fp32", [(32, 48), (64, 96)], threads=1, warmup_s=0,
                               iters=2)
    path = results.save_run(rows, device, root=tmp_path)
    run = json.loads(path.read_text())
    assert run["schema_version"] == results.SCHEMA_VERSION and len(run["results"]) == 2
    readme = report.render(tmp_path)
    text = readme.read_text()
    slug = results.device_slug(device)
    assert f"## {slug}" in text and "| wave |" in text and "32×48" in text and "64×96" in text
    assert (tmp_path / slug / "latency.png").stat().st_size > 1000
    # a later run adds its results beside the earlier ones; a repeated case is replaced by the newer number
    later = harness.bench_style("candy", "onnxruntime", "fp32", [(64, 96)], threads=1, warmup_s=0, iters=2)
    results.save_run(later + rows[1:], device, root=tmp_path)
    text = report.render(tmp_path).read_text()
    assert "| wave |" in text and "| candy |" in text and text.count("64×96") == 2 and "32×48" in text
    assert "speed against quality" in text  # the shipped styles carry style distances
    assert (tmp_path / slug / "quality.png").stat().st_size > 1000


def test_the_report_puts_devices_side_by_side_where_two_measured_the_same_case(tmp_path):
    rows = harness.bench_style("wave_nano", "onnxruntime", "fp32", [(48, 64)], threads=1, warmup_s=0, iters=2)
    at = lambda size, ms: [{**rows[0], "size": list(size), "unstable": False,  # noqa: E731
                            "end_to_end_ms": {**rows[0]["end_to_end_ms"], "median": ms}}]
    device = results.device_block()
    results.save_run(at((480, 640), 11.0) + at((720, 1280), 33.0), {**device, "cpu": "Alpha CPU"}, root=tmp_path)
    results.save_run(at((480, 640), 22.0), {**device, "cpu": "Beta CPU"}, root=tmp_path)
    text = report.render(tmp_path).read_text()
    table = text.split("## Devices side by side")[1].split("\n## ")[0]
    alpha, beta = (results.device_slug({**device, "cpu": c}) for c in ("Alpha CPU", "Beta CPU"))
    assert f"| frame | model | precision | backend | {alpha} | {beta} |" in table
    assert "| 480×640 | wave_nano | fp32 | onnxruntime | 11.0 | 22.0 |" in table
    assert "720×1280" not in table  # measured on one device only: its own section has it
    one = tmp_path / "one"
    results.save_run(at((480, 640), 11.0), device, root=one)
    assert "Devices side by side" not in report.render(one).read_text()


def test_cpu_time_a_virtual_machines_host_took_is_measured_and_reported(tmp_path, monkeypatch, capsys):
    assert harness.stolen_share((100, 1000), (150, 1500)) == 0.1
    assert harness.stolen_share(None, (150, 1500)) is None and harness.stolen_share((1, 9), (1, 9)) is None
    if harness.cpu_ticks() is not None:  # Linux: a real run records what its host took (most often nothing)
        row = harness.bench_style("wave", "onnxruntime", "fp32", [(32, 48)], threads=1, warmup_s=0, iters=2)[0]
        assert row["stolen"] is None or 0 <= row["stolen"] <= 1
    # a host that takes 30% of the time: the CLI says so under its table and the report on the run's line
    ticks = itertools.cycle([(0, 0), (30, 100)])  # read before and after each size's turns
    monkeypatch.setattr(harness, "cpu_ticks", lambda: next(ticks))
    from stylecam.cli import main

    main(["bench", "--models", "candy", "--sizes", "32x48,32x64", "--iters", "2", "--warmup", "0", "--threads", "1"])
    printed = capsys.readouterr().out
    assert "host took 30% at 32x48, 30% at 32x64 of its CPU time" in printed
    first = printed.splitlines()[0]  # the report's device line (its clocks may move between two readings)
    assert first.startswith("device: " + report.device_line(results.device_block()).split(";")[0] + ";")
    assert "onnxruntime 1." in first
    rows = harness.bench_style("candy", "onnxruntime", "fp32", [(32, 48)], threads=1, warmup_s=0, iters=2)
    calm = [{**rows[0], "stolen": 0.01}]
    results.save_run(rows, results.device_block(), root=tmp_path)
    text = report.render(tmp_path).read_text()
    assert "30% of CPU time stolen by the VM's host" in text
    results.save_run(calm, results.device_block(), root=tmp_path / "calm")
    assert "stolen by the VM's host)" not in report.render(tmp_path / "calm").read_text()


def test_cli_bench_prints_a_table():
    r = subprocess.run([sys.executable, "-m", "stylecam.cli", "bench", "--sizes", "32x48", "--iters", "2",
                        "--warmup", "0", "--threads", "1"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "candy" in r.stdout and "32x48" in r.stdout and "median ms" in r.stdout


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="the torch backend needs stylecam[train]")
def test_cli_bench_says_peers_are_not_on_the_backend_they_are_set_beside():
    peer = f"{STYLES_DIR / 'candy' / 'model.onnx'}:rgb01"
    common = ["--models", "candy", "--sizes", "32x48", "--iters", "2", "--warmup", "0", "--threads", "1",
              "--peer", peer]
    r = subprocess.run([sys.executable, "-m", "stylecam.cli", "bench", "--backends", "torch", *common],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "note: peers run on ONNX Runtime, not torch" in r.stdout and "--backends torch,onnxruntime" in r.stdout
    r = subprocess.run([sys.executable, "-m", "stylecam.cli", "bench", "--backends", "onnxruntime", *common],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "note: peers" not in r.stdout and "32x48" in r.stdout, r.stderr


def test_onnx_runtime_providers_are_chosen_alike_for_ours_and_peers(tmp_path, monkeypatch):
    from stylecam.backends.onnxrt import providers

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    gpu = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert providers("auto", gpu) == providers("cuda", gpu) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert providers("auto", ["CPUExecutionProvider"]) == providers("cpu", gpu) == ["CPUExecutionProvider"]
    with pytest.raises(RuntimeError, match="pip install onnxruntime-gpu"):
        providers("cuda", ["CPUExecutionProvider"])
    trt, *rest = providers("tensorrt", gpu)  # a peer beside our TensorRT engines: FP16, engines cached
    assert trt[0] == "TensorrtExecutionProvider" and trt[1]["trt_fp16_enable"] and trt[1]["trt_engine_cache_enable"]
    assert rest == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert trt[1]["trt_engine_cache_path"] == str(tmp_path / "stylecam" / "engines" / "ort-trt")
    with pytest.raises(RuntimeError, match="TensorRT's libraries"):
        providers("tensorrt", gpu[1:])
    peer = Peer(str(STYLES_DIR / "candy" / "model.onnx"), threads=1)
    assert peer.info()["providers"] == providers()  # here the CPU: no onnxruntime-gpu


def test_peers_stand_beside_tensorrt_on_onnx_runtimes_tensorrt_provider_where_there_is_one():
    from stylecam.cli import peer_device

    gpu = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert peer_device({"tensorrt", "onnxruntime"}, gpu) == ("tensorrt", [])
    assert peer_device({"tensorrt", "torch"}, gpu) == ("tensorrt", ["torch"])
    assert peer_device({"tensorrt"}, gpu[1:]) == ("auto", ["tensorrt"])  # onnxruntime-gpu without TensorRT
    assert peer_device({"onnxruntime"}, ["CPUExecutionProvider"]) == ("auto", [])


def test_cli_bench_skips_a_precision_a_bundle_lacks_and_times_the_rest(tmp_path):
    import shutil

    from stylecam import load_bundle
    from stylecam.bundle import write_manifest
    from stylecam.styles import STYLES_DIR

    slow = tmp_path / "slow"  # a bundle whose INT8-CPU lost the export's speed check: one table still runs
    shutil.copytree(STYLES_DIR / "candy_nano", slow)
    (slow / "model.int8-cpu.onnx").unlink(missing_ok=True)
    manifest = load_bundle(slow, verify=False).manifest
    manifest["variants"]["int8-cpu"] = {"status": "rejected by the speed check"}
    manifest["files"].pop("model.int8-cpu.onnx", None)
    write_manifest(slow, manifest)
    r = subprocess.run([sys.executable, "-m", "stylecam.cli", "bench", "--models", f"the_scream,{slow}",
                        "--precisions", "fp32,int8-cpu", "--sizes", "32x48", "--iters", "2", "--warmup", "0",
                        "--threads", "1"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert f"skipped: {slow} has no int8-cpu model (rejected by the speed check)" in r.stdout
    rows = [line.split()[1] for line in r.stdout.splitlines() if "32x48" in line]
    assert sorted(rows) == ["fp32", "fp32", "int8-cpu"], r.stdout


def test_kernel_benchmark_rows_and_their_report_table(tmp_path):
    from stylecam.benchmarks import kernels

    rows = kernels.cpu_rows((36, 54), iters=2)
    assert [(r["op"], r["scale"]) for r in rows] == [("bgr8_to_tensor", 1), ("nv12_to_tensor", 1),
                                                     ("tensor_to_bgr8", 1), ("bgr8_to_tensor", 0.5),
                                                     ("tensor_to_bgr8", 0.5)]
    assert all(r["path"] == "numpy" and r["ms"]["median"] > 0 and r["gb_s"] > 0 for r in rows)
    # bytes moved, e.g. BGR8 in (3 B/px) + the padded fp32 tensor out; at scale 0.5 the tensor of an 18×27 frame
    g, half = (kernels.ops.geometry(36, 54, kernels.STRIDE, kernels.MARGIN, size) for size in (None, (18, 27)))
    assert kernels.bytes_moved("bgr8_to_tensor", 36, 54, 4) == 3 * 36 * 54 + 12 * g.out_h * g.out_w
    assert kernels.bytes_moved("bgr8_to_tensor", 36, 54, 4, 0.5) == 3 * 36 * 54 + 12 * half.out_h * half.out_w
    assert kernels.bytes_moved("tensor_to_bgr8", 36, 54, 2, 0.5) == 6 * 18 * 27 + 6 * 36 * 54
    results.save_run(rows, results.device_block(), root=tmp_path)
    text = report.render(tmp_path).read_text()
    assert "Pre/post-processing alone" in text and "| tensor_to_bgr8 | numpy | fp32 | 36×54 | 1 |" in text
    assert "| tensor_to_bgr8 | numpy | fp32 | 36×54 | 0.5 |" in text
    assert "| model |" not in text  # no model rows: no empty model table


def test_cli_bench_kernels_names_the_active_path():
    r = subprocess.run([sys.executable, "-m", "stylecam.cli", "bench", "kernels", "--sizes", "36x54"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    from stylecam import ops

    assert f"pre/post-processing path: {ops.backend().name}" in r.stdout and "nv12_to_tensor" in r.stdout


def test_report_shows_tensorrt_gpu_stages_and_memory(tmp_path):
    # a TensorRT row as the backend records it (GPU-timed copies and kernels inside the host's device stage),
    # beside a real CPU row: the renderer must show both kinds
    cpu = harness.bench_style("candy", "onnxruntime", "fp32", [(32, 48)], threads=1, warmup_s=0, iters=2)[0]
    stage = lambda ms: harness.summarize([ms, ms])  # noqa: E731
    gpu = {**cpu, "precision": "fp16", "stages_ms": {"device": stage(2.5), "h2d": stage(0.31), "gpu": stage(1.62),
                                                     "d2h": stage(0.29)},
           "backend": {"backend": "tensorrt", "variant": "fp16",
                       "gpu_memory_mb": {"buffers": 21.1, "activations": 30.0, "device_used": 900.0,
                                         "device_total": 8000.0}}}
    results.save_run([cpu, gpu], results.device_block(), root=tmp_path)
    text = report.render(tmp_path).read_text()
    row = next(line for line in text.splitlines() if "| tensorrt |" in line)
    assert "device 2.5 (GPU: h2d 0.3, run 1.6, d2h 0.3)" in row and " + GPU 51 |" in row
    cpu_row = next(line for line in text.splitlines() if "| onnxruntime |" in line)
    assert "GPU" not in cpu_row and cpu_row.count(" / ") >= 2


def test_kernel_buffers_rotate_through_more_than_twice_the_l2():
    """On an H200 (60 MB of L2) a 1080p frame's buffers stay cached between back-to-back calls; the benchmark
    cycles through enough buffer sets that none is still there when its turn comes."""
    from stylecam.benchmarks.kernels import rotating, sets_to_rotate

    l2 = 60 << 20
    for set_bytes in (6 << 20, 31 << 20, 128 << 20):
        n = sets_to_rotate(set_bytes, l2)
        assert n >= 2 and (n - 1) * set_bytes >= 2 * l2  # the others, between two turns of one, fill L2 twice
    made, used = [], []
    call = rotating(lambda: (made.append(len(made)) or len(made) - 1,), 25 << 20, l2, used.append)
    for _ in range(12):
        call()
    assert len(made) == 6 and used == [0, 1, 2, 3, 4, 5] * 2  # each set again only after all the others


def test_the_gpu_check_runs_its_cpu_parts_here(tmp_path):
    """scripts/gpu_checks.sh's end-to-end trip (stylecam.benchmarks.gpu_check): on a machine without the kernels the
    same stages run through the host twins, into the same JSON, and the frame agrees with the Stylizer's."""
    import json
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "stylecam.benchmarks.gpu_check", "--out", str(tmp_path), "--iters", "2",
                        "--sizes", "64x96"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    record = json.loads(next((tmp_path / "gpu_check").glob("*.json")).read_text())
    trip = record["fused_trip"][0]
    assert trip["size"] == [64, 96] and set(trip["ms"]) == {"h2d", "pre", "network", "post", "d2h", "total"}
    assert trip["vs_host_path"]["max_lsb"] <= 2 and trip["fps"] > 0 and record["kernels"]
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "gpu_checks.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0 and "gpu_check" in script.read_text()
