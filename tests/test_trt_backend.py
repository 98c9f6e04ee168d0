"""The TensorRT backend, every line, on the CPU: a recording double of TensorRT and pycuda (tests/trt_double.py)
whose engine computes through ONNX Runtime and whose kernels are cpp_ext's host twins. What a GPU must still
confirm: the real libraries' behaviour behind the same calls (scripts/gpu_checks.sh)."""
import logging
import sys
import threading
import types

import numpy as np
import pytest

import stylecam
from stylecam import backends, ops
from stylecam.backends import trt as trt_backend
from stylecam.export import engine
from trt_double import FakeCuda, Recorder, fake_kernels, fake_tensorrt

GPUS = [{"name": "NVIDIA H200", "compute_capability": "9.0"}, {"name": "NVIDIA RTX 4060", "compute_capability": "8.9"}]


def frame(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


class Double:
    def __init__(self, monkeypatch, tmp_path, flavor="tensorrt", gpus=GPUS, fused=False, **trt_options):
        self.rec = Recorder()
        self.cuda = FakeCuda(self.rec, gpus=len(gpus))
        self.trt = fake_tensorrt(self.rec, self.cuda, name=flavor, **trt_options)
        pycuda = types.ModuleType("pycuda")
        pycuda.driver, pycuda.__path__ = self.cuda, []
        monkeypatch.setitem(sys.modules, "pycuda", pycuda)
        monkeypatch.setitem(sys.modules, "pycuda.driver", self.cuda)
        monkeypatch.setitem(sys.modules, "tensorrt", self.trt if flavor == "tensorrt" else None)
        monkeypatch.setitem(sys.modules, "tensorrt_rtx", self.trt if flavor == "tensorrt_rtx" else None)
        monkeypatch.setattr(engine, "local_gpu", lambda index=0: gpus[index] if index < len(gpus) else None)
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        monkeypatch.setattr(trt_backend.importlib.util, "find_spec",
                            lambda name, *a: object() if name == "pycuda" else None)
        if fused:
            monkeypatch.setattr(ops, "backend", lambda: ops.OpsBackend("cuda", "the host twins stand in"))
            monkeypatch.setattr(ops, "stylize", fake_kernels(self.cuda))
        for cached in (engine.probe_tensorrt, trt_backend.unavailable_reason):
            cached.cache_clear()
        monkeypatch.setattr(backends, "_warned", set())

    def clear(self):
        for cached in (engine.probe_tensorrt, trt_backend.unavailable_reason):
            cached.cache_clear()


@pytest.fixture
def double(monkeypatch, tmp_path):
    d = Double(monkeypatch, tmp_path)
    yield d
    d.clear()


@pytest.fixture
def reference():
    return stylecam.Stylizer("candy_nano", backend="onnxruntime", variant="fp32", threads=1)


def test_infer_runs_the_engine_with_every_call_a_real_tensorrt_needs(double, reference):
    s = stylecam.Stylizer("candy_nano", backend="tensorrt", variant="fp32")
    assert s.info()["backend"] == "tensorrt" and s.info()["device"] == 0
    for h, w in ((64, 96), (64, 96), (40, 52)):  # a second size sets the shape again, the same size does not
        img = frame(h, w, seed=h)
        assert np.abs(s.stylize(img).astype(int) - reference.stylize(img)).max() <= 1
    names = double.rec.names()
    assert names.count("set_input_shape") == 1 + 2  # the profile's largest (buffers), then two frame sizes
    first_exec = names.index("execute_async_v3")
    assert names.index("set_tensor_address") < first_exec  # addresses before any execution
    assert names.index("synchronize") > first_exec
    assert s.timer.stats()["h2d"]["n"] == 3 and s.info()["gpu_memory_mb"]["activations"] == 64.0
    s.close()
    assert double.cuda.live() == [] and double.rec.errors == []
    assert "detach" in names or "detach" in double.rec.names()


def test_the_fused_trip_matches_the_host_path(monkeypatch, tmp_path, reference):
    d = Double(monkeypatch, tmp_path, fused=True)
    for strength, scale in ((1.0, 1.0), (0.6, 0.5)):
        s = stylecam.Stylizer("candy_nano", backend="tensorrt", variant="fp32", strength=strength, scale=scale)
        reference.strength, reference.scale = strength, scale
        img = frame(72, 100, seed=5)
        out = s.stylize(img)
        assert "device" in s.timer.stats() and "pre" not in s.timer.stats()  # one trip through the "GPU"
        assert np.abs(out.astype(int) - reference.stylize(img)).max() <= 2
        s.close()
    reference.strength, reference.scale = 1.0, 1.0
    assert d.cuda.live() == [] and d.rec.errors == []
    d.clear()


def test_an_engine_whose_output_is_not_its_input_size_gets_no_fused_trip(monkeypatch, tmp_path):
    d = Double(monkeypatch, tmp_path, fused=True, output_shape=lambda s: (s[0], 3, s[2] // 2, s[3] // 2))
    b = trt_backend.TensorRTBackend()
    b.load(stylecam.load_bundle(stylecam.styles.STYLES_DIR / "candy_nano"), "fp32")
    assert not b.device_ops and b.host_out.size == int(np.prod(b.profile.max)) // 4  # sized from the engine
    y = b.infer(np.random.default_rng(0).random((1, 3, 64, 64), dtype=np.float32))
    assert y.shape == (1, 3, 32, 32)
    b.close()
    b.close()  # twice is fine
    assert d.cuda.live() == [] and d.rec.errors == []
    d.clear()


def test_shapes_outside_the_profile_and_refused_shapes_are_errors(double):
    b = trt_backend.TensorRTBackend(shapes=((32, 32), (64, 64)))
    b.load(stylecam.load_bundle(stylecam.styles.STYLES_DIR / "candy_nano"), "fp32")
    with pytest.raises(ValueError, match="outside the engine's profile"):
        b.infer(np.zeros((1, 3, 128, 128), np.float32))
    assert b.profile.min[2:] == (64, 64)  # 32 px frames and the 16 px margin
    assert not b.covers((1, 3, 48, 48)) and b.covers((1, 3, 80, 80))
    b.context.set_input_shape = lambda name, shape: False  # TensorRT says no
    with pytest.raises(RuntimeError, match="refused input shape"):
        b.infer(np.zeros((1, 3, 72, 72), np.float32))
    b.close()


def test_worker_copies_and_style_switches_free_everything_in_its_context(double, reference):
    s = stylecam.Stylizer("candy_nano", backend="tensorrt", variant="fp32")
    copy = s.copy()
    img = frame(48, 64, seed=2)
    outs = []
    t = threading.Thread(target=lambda: outs.append(copy.stylize(img)), name="worker")
    t.start()
    t.join()
    assert np.array_equal(outs[0], s.stylize(img))
    s.set_style("wave_nano", wait=False)  # loaded on a loader thread; the old backend closed by that thread
    for th in threading.enumerate():
        if th.name == "stylecam-style-loader":
            th.join()
    assert s.style == "wave_nano"
    s.set_mix("udnie_nano", 0.5)
    s.set_mix(None)
    copy.close()
    s.close()
    assert double.cuda.live() == [], f"{len(double.cuda.live())} allocations leaked"
    assert double.rec.errors == []
    threads = {c[2] for c in double.rec.calls if c[0] == "free"}
    assert "stylecam-style-loader" in threads  # freed where it was swapped out, with the context pushed there


def test_a_swapped_out_backend_is_closed_after_its_last_frame(double):
    s = stylecam.Stylizer("candy_nano", backend="tensorrt", variant="fp32")
    old = s._backend
    with s._lease():  # a frame running on the old backend
        s.set_style("wave_nano")
        assert old.cuda_context is not None  # not closed under the frame
    assert old.cuda_context is None  # closed when that frame ended
    s.close()


def test_auto_falls_back_to_onnxruntime_when_tensorrt_fails_to_load(monkeypatch, tmp_path, caplog):
    d = Double(monkeypatch, tmp_path, deserialize_fails=True)
    with caplog.at_level(logging.WARNING, logger="stylecam"):
        s = stylecam.Stylizer("candy_nano", backend="auto")
        s2 = stylecam.Stylizer("candy_nano", backend="auto")
    assert s.info()["backend"] == s2.info()["backend"] == "onnxruntime"
    assert caplog.text.count("could not load candy_nano") == 1 and "running on onnxruntime" in caplog.text
    with pytest.raises(engine.EngineError, match="could not load it"):
        stylecam.Stylizer("candy_nano", backend="tensorrt", variant="fp32")  # asked for by name: the reason
    assert d.cuda.live() == [] and d.rec.errors == []
    s.close()
    s2.close()
    d.clear()


def test_the_availability_answer_is_asked_once(double, monkeypatch):
    asked = []
    monkeypatch.setattr(double.cuda, "init", lambda: asked.append(1))
    trt_backend.unavailable_reason.cache_clear()
    for _ in range(3):
        assert trt_backend.unavailable_reason() is None
    assert len(asked) == 1


def test_cuda_n_builds_and_names_the_engine_for_that_gpu(double):
    b0, b1 = trt_backend.TensorRTBackend(), trt_backend.TensorRTBackend()
    bundle = stylecam.load_bundle(stylecam.styles.STYLES_DIR / "candy_nano")
    b0.load(bundle, "fp32", "cuda:0")
    b1.load(bundle, "fp32", "cuda:1")
    assert b0.engine_path != b1.engine_path and "SM89" in b1.engine_path.name and "SM90" in b0.engine_path.name
    sidecar = b1.engine_path.with_suffix(".json").read_text()
    assert "RTX 4060" in sidecar and "H200" not in sidecar
    timing = sorted(p.name for p in engine.cache_dir().glob("timing-*"))
    assert any("h200" in t for t in timing) and any("rtx-4060" in t for t in timing)
    with pytest.raises(engine.EngineError, match="has 2 CUDA GPU"):
        trt_backend.TensorRTBackend().load(bundle, "fp32", "cuda:2")
    with pytest.raises(ValueError, match="use auto, cuda or cuda:N"):
        trt_backend.device_index("gpu0")
    b0.close()
    b1.close()
    assert double.cuda.live() == [] and double.rec.errors == []


def test_tensorrt_rtx_refuses_a_datacenter_gpu_with_the_fix(monkeypatch, tmp_path):
    d = Double(monkeypatch, tmp_path, flavor="tensorrt_rtx", version="1.7.1")
    bundle = stylecam.load_bundle(stylecam.styles.STYLES_DIR / "candy_nano")
    with pytest.raises(engine.EngineError, match=r"cannot build for NVIDIA H200 \(SM90\).*tensorrt-full"):
        trt_backend.TensorRTBackend().load(bundle, "fp32", "cuda:0")
    assert d.cuda.live() == [] and d.rec.errors == []
    d.clear()


def test_tensorrt_rtx_targets_the_local_gpu_and_keeps_its_runtime_cache(monkeypatch, tmp_path, reference):
    d = Double(monkeypatch, tmp_path, flavor="tensorrt_rtx", version="1.7.1", gpus=GPUS[1:])
    s = stylecam.Stylizer("candy_nano", backend="tensorrt", variant="fp32")
    img = frame(40, 40)
    assert np.abs(s.stylize(img).astype(int) - reference.stylize(img)).max() <= 1
    assert ("set_compute_capability", ("CURRENT",), "MainThread") in d.rec.calls  # the GPU the build runs on
    cache = s._backend.engine_path.with_suffix(".rtxcache")
    assert cache.read_bytes() == b"compiled kernels"  # saved after the first run
    s.close()
    again = stylecam.Stylizer("candy_nano", backend="tensorrt", variant="fp32")  # the next start of a process
    assert ("runtime_cache.deserialize", (16,), "MainThread") in d.rec.calls
    again.close()
    assert d.cuda.live() == [] and d.rec.errors == []
    d.clear()


def test_the_double_catches_what_a_gpu_would_refuse(double):
    """The checks themselves: each misuse is recorded."""
    cuda, rec = double.cuda, double.rec
    cuda.mem_alloc(16)  # no context current
    ctx = cuda.Device(0).retain_primary_context()
    ctx.push()
    a = cuda.mem_alloc(16)
    ctx.pop()
    a.free()  # without its context
    e0, e1 = cuda.Event(), cuda.Event()
    e1.time_since(e0)  # never recorded and synchronized
    assert len(rec.errors) == 3 and "freed without its context" in rec.errors[1]


def test_the_double_covers_nine_tenths_of_the_backend(tmp_path):
    """Every line the double cannot reach is one a GPU would meet first; keep them few."""
    import subprocess

    pytest.importorskip("coverage")
    data = tmp_path / ".coverage"
    subprocess.run([sys.executable, "-m", "coverage", "run", f"--data-file={data}", "--include=*/backends/trt.py",
                    "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k", "not nine_tenths"],
                   check=True, capture_output=True, cwd=tmp_path)
    report = subprocess.run([sys.executable, "-m", "coverage", "report", f"--data-file={data}", "--format=total"],
                            check=True, capture_output=True, text=True).stdout
    assert int(report.strip()) >= 90, f"{report.strip()} % of backends/trt.py"


def test_engine_benchmark_times_the_start_to_the_first_frame(double):
    """bench engines' load time covers deserialization, the execution context and the first inference."""
    from stylecam.benchmarks.engines import bench_engine

    row = bench_engine(stylecam.load_bundle(stylecam.styles.STYLES_DIR / "candy_nano"), "fp32", ((32, 32), (64, 64)))
    assert row["load_s"] is not None and row["load_s"] > 0 and row["load_note"] is None
    names = double.rec.names()
    start = names.index("deserialize_cuda_engine")
    assert names.index("create_execution_context", start) < names.index("execute_async_v3", start)
    assert double.cuda.live() == [] and double.rec.errors == []
