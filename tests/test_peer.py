"""Peers: another project's ONNX network, in its own input contract, benchmarked and judged like ours.

The peers here are real ONNX graphs: candy's network wrapped to take RGB 0..255 NHWC (as many exported style
networks do), and one with a fixed input size (as the ONNX model zoo's are).
"""
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from conftest import shared

from stylecam.peer import Peer, PeerContract
from stylecam.sources import DEMO_CLIP
from stylecam.styles import STYLES_DIR

CLI = [sys.executable, "-m", "stylecam.cli"]
CANDY = STYLES_DIR / "candy" / "model.onnx"


def wrapped_rgb255_nhwc(path, fixed=None):
    """candy's graph behind Transpose + ×1/255 and in front of ×255 + Transpose; ``fixed`` = (h, w) pins the size."""
    model = onnx.load(str(CANDY))
    g = model.graph
    inner_in, inner_out = g.input[0].name, g.output[0].name
    h, w = fixed or ("h", "w")
    consts = [helper.make_tensor("inv255", TensorProto.FLOAT, [], [1 / 255]),
              helper.make_tensor("k255", TensorProto.FLOAT, [], [255.0])]
    pre = [helper.make_node("Transpose", ["image"], ["nchw"], perm=[0, 3, 1, 2]),
           helper.make_node("Mul", ["nchw", "inv255"], [inner_in])]
    post = [helper.make_node("Mul", [inner_out, "k255"], ["y255"]),
            helper.make_node("Transpose", ["y255"], ["stylized"], perm=[0, 2, 3, 1])]
    nodes = [*pre, *g.node, *post]
    del g.node[:]
    g.node.extend(nodes)
    g.initializer.extend(consts)
    del g.input[:]
    g.input.append(helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, h, w, 3]))
    del g.output[:]
    g.output.append(helper.make_tensor_value_info("stylized", TensorProto.FLOAT, [1, h, w, 3]))
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def test_a_peer_in_another_contract_gives_the_same_frames(tmp_path):
    frame = np.random.default_rng(0).integers(0, 256, (48, 80, 3), dtype=np.uint8)
    ours = Peer(CANDY, PeerContract.parse("rgb01"), threads=1)
    theirs = Peer.from_spec(f"{wrapped_rgb255_nhwc(tmp_path / 'peer.onnx')}:rgb255,nhwc", threads=1)
    a, b = ours.stylize(frame), theirs.stylize(frame)
    assert a.shape == b.shape == frame.shape and theirs.native_size is None
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1  # float rounding of the ×1/255, ×255 pair
    wrong = Peer.from_spec(f"{tmp_path / 'peer.onnx'}:rgb01,nhwc", threads=1).stylize(frame)
    assert np.abs(wrong.astype(int) - b.astype(int)).mean() > 10  # the contract matters


def test_a_fixed_size_peer_runs_at_its_size_and_says_so(tmp_path):
    peer = Peer.from_spec(f"{wrapped_rgb255_nhwc(tmp_path / 'fixed.onnx', fixed=(64, 96))}:rgb255,nhwc", threads=1)
    assert peer.native_size == (64, 96) and peer.style == "fixed @64×96"
    frame = np.random.default_rng(1).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    out = peer.stylize(frame)
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert peer.info()["native_size"] == [64, 96]


def test_an_fp16_peer_takes_its_input_in_fp16_and_is_listed_so(tmp_path):
    from stylecam.benchmarks import harness

    from onnxruntime.transformers.float16 import convert_float_to_float16

    fp16 = tmp_path / "fp16_io.onnx"  # FP16 all through, input and output too (ours keep FP32 I/O)
    onnx.save(convert_float_to_float16(onnx.load(str(CANDY)), keep_io_types=False), str(fp16))
    frame = np.random.default_rng(2).integers(0, 256, (48, 80, 3), dtype=np.uint8)
    peer = Peer(fp16, threads=1)
    out = peer.stylize(frame)
    ours = Peer(CANDY, threads=1).stylize(frame)
    assert peer.dtype == np.float16 and np.abs(out.astype(int) - ours.astype(int)).mean() < 1.0
    assert harness.load_peer(f"{fp16}:rgb01", threads=1)[0]["precision"] == "fp16"


def test_a_missing_or_broken_peer_says_what_to_give(tmp_path):
    with pytest.raises(FileNotFoundError, match="MODEL.onnx:CONTRACT"):
        Peer.from_spec(f"{tmp_path / 'none.onnx'}:rgb255")
    with pytest.raises(FileNotFoundError, match="peer model none not found"):  # named, even without .onnx or a contract
        Peer.from_spec("none")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="could not load this peer"):
        Peer.from_spec(str(broken))


def test_eval_judges_a_peer_by_the_same_metrics_and_flicker(tmp_path):
    pytest.importorskip("torch")
    shared("content")
    peer = wrapped_rgb255_nhwc(tmp_path / "their_candy.onnx")
    r = subprocess.run([*CLI, "eval", "candy", "--peer", f"{CANDY}:rgb01", "--peer", f"{peer}:rgb255,nhwc",
                        "--count", "2", "--size", "128x96", "--threads", "1"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line.split()[1:] for line in r.stdout.splitlines()[1:]}
    assert rows["their_candy"][:2] == ["(peer)", "peer"] and rows["model"][:2] == ["(peer)", "peer"]
    # the same network in two contracts: the same numbers (content, style distance, KID, edge SSIM)
    assert [float(v) for v in rows["their_candy"][2:]] == pytest.approx([float(v) for v in rows["model"][2:]],
                                                                           rel=0.01)
    assert float(rows["candy"][1]) > 0  # our bundle beside them (its reflect margin makes its numbers differ)
    r = subprocess.run([*CLI, "eval", "--peer", f"{peer}:rgb255,nhwc", "--count", "1"], capture_output=True, text=True)
    assert r.returncode != 0 and "--style-image" in r.stderr
    r = subprocess.run([*CLI, "eval", "candy", "--peer", f"{peer}:rgb255,nhwc", "--video", str(DEMO_CLIP),
                        "--frames", "4", "--smoothing", "0.5", "--threads", "1"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    peer_row = next(line for line in r.stdout.splitlines() if line.startswith("their_candy (peer)"))
    assert peer_row.split()[-1] == "–" and float(peer_row.split()[-2]) > 0  # no runtime smoothing for a peer


def test_a_peer_with_a_second_input_is_refused_at_load_with_its_inputs_named(tmp_path):
    x, style = (helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3, "h", "w"]) for n in ("content", "style"))
    graph = helper.make_graph([helper.make_node("Add", ["content", "style"], ["y"])], "adain", [x, style],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, "h", "w"])])
    path = tmp_path / "adain.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10), str(path))
    with pytest.raises(ValueError, match=r"takes 2 inputs \(content, style\).*fixed"):
        Peer(path, threads=1)


def stride4_peer(path, channels=3):
    """(x + nearest-upsampled 4×4 average) / 2 in RGB 0..1: an Add that only lines up at multiples of 4."""
    nodes = [helper.make_node("AveragePool", ["x"], ["pooled"], kernel_shape=[4, 4], strides=[4, 4]),
             helper.make_node("Resize", ["pooled", "", "scales"], ["up"], mode="nearest"),
             helper.make_node("Add", ["x", "up"], ["sum"]),
             helper.make_node("Mul", ["sum", "half"], ["y"])]
    inits = [helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, 4, 4]),
             helper.make_tensor("half", TensorProto.FLOAT, [], [0.5])]
    graph = helper.make_graph(nodes, "stride4", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                              [1, channels, "h", "w"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels, "h", "w"])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10), str(path))
    return path


def expected_stride4(frame):
    h, w = frame.shape[:2]
    import cv2
    x = cv2.copyMakeBorder(frame, 0, -h % 4, 0, -w % 4, cv2.BORDER_REFLECT_101).astype(np.float32)
    up = x.reshape(x.shape[0] // 4, 4, x.shape[1] // 4, 4, 3).mean(axis=(1, 3)).repeat(4, 0).repeat(4, 1)
    return np.clip(np.rint((x + up) / 2), 0, 255).astype(np.uint8)[:h, :w]


def test_a_peer_that_needs_a_stride_multiple_gets_the_frame_padded_and_its_output_cropped(tmp_path):
    peer = Peer(stride4_peer(tmp_path / "unet.onnx"), threads=1)
    rng = np.random.default_rng(0)
    even = rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    assert np.abs(peer.stylize(even).astype(int) - expected_stride4(even)).max() <= 1 and peer.stride == 1
    odd = rng.integers(0, 256, (63, 97, 3), dtype=np.uint8)  # the Add fails at 63×97: padded to 64×100
    out = peer.stylize(odd)
    assert out.shape == odd.shape and peer.stride == 4 and peer.info()["stride"] == 4
    assert np.abs(out.astype(int) - expected_stride4(odd)).max() <= 1
    assert len(peer.timer.samples["infer"]) == 2  # the rejected try is not counted as a latency


def test_a_peer_that_takes_no_size_says_so(tmp_path):
    peer = Peer(stride4_peer(tmp_path / "rgba.onnx", channels=4), threads=1)
    with pytest.raises(ValueError, match="rgba.onnx failed on a 96x64 frame, even padded to a multiple of 64"):
        peer.stylize(np.zeros((64, 96, 3), np.uint8))


def test_a_peer_whose_output_range_differs_from_its_input_is_read_back_in_that_range(tmp_path):
    frame = np.random.default_rng(1).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    ours = Peer(CANDY, threads=1).stylize(frame)
    # candy's graph in front of ×255: input 0..1, output 0..255
    model = onnx.load(str(CANDY))
    g = model.graph
    g.initializer.append(helper.make_tensor("k255", TensorProto.FLOAT, [], [255.0]))
    g.node.append(helper.make_node("Mul", [g.output[0].name, "k255"], ["y255"]))
    g.output[0].name = "y255"
    onnx.save(model, str(tmp_path / "out255.onnx"))
    theirs = Peer.from_spec(f"{tmp_path / 'out255.onnx'}:rgb01,out255", threads=1).stylize(frame)
    assert np.abs(theirs.astype(int) - ours.astype(int)).max() <= 1
    unread = Peer.from_spec(f"{tmp_path / 'out255.onnx'}:rgb01", threads=1).stylize(frame)
    assert (unread == 255).mean() > 0.9  # read in the input's range, everything saturates


def test_a_peer_that_takes_bytes_is_fed_bytes(tmp_path):
    from stylecam.benchmarks import harness

    frame = np.random.default_rng(2).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    model = onnx.load(str(wrapped_rgb255_nhwc(tmp_path / "f.onnx")))
    g = model.graph
    g.node.insert(0, helper.make_node("Cast", ["bytes"], ["image"], to=TensorProto.FLOAT))
    g.input[0].CopyFrom(helper.make_tensor_value_info("bytes", TensorProto.UINT8, [1, "h", "w", 3]))
    onnx.save(model, str(tmp_path / "u8.onnx"))
    peer = Peer.from_spec(f"{tmp_path / 'u8.onnx'}:rgb255,nhwc", threads=1)
    assert peer.dtype == np.uint8
    assert np.abs(peer.stylize(frame).astype(int) - Peer(CANDY, threads=1).stylize(frame).astype(int)).max() <= 1
    assert harness.load_peer(f"{tmp_path / 'u8.onnx'}:rgb255,nhwc", threads=1)[0]["precision"] == "uint8 input"
    g.input[0].CopyFrom(helper.make_tensor_value_info("bytes", TensorProto.INT32, [1, "h", "w", 3]))
    g.node[0].CopyFrom(helper.make_node("Cast", ["bytes"], ["image"], to=TensorProto.FLOAT))
    onnx.save(model, str(tmp_path / "i32.onnx"))
    with pytest.raises(ValueError, match="its input is tensor.int32.; peers take float, float16 or uint8"):
        Peer(tmp_path / "i32.onnx")
