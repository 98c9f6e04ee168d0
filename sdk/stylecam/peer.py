"""Peers: any ONNX style network, behind the Stylizer's interface, so benchmarks and metrics treat it as ours.

A peer is given as ``path.onnx:CONTRACT``; the contract says how it wants its input (value range, channel order,
layout), and its output is read back the same way. A peer with a fixed input size (e.g. 224×224) gets the frame
resized to that size and its output resized back: ``native_size`` says so, and its label carries it, because its
latency is then not a latency at the frame's size. A network that only takes sizes divisible by its stride
(U-Nets, or Johnson-style networks with skips) rejects other frames: the peer then reflect-pads them to the
smallest multiple of 4, 8, … 64 that it takes, keeps that ``stride``, and crops the output. Any other output
size is resized to the frame.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .backends.onnxrt import providers, session_options
from .frames import check_frame
from .timing import StageTimer

STRIDES = (1, 4, 8, 16, 32, 64)  # frame size multiples tried, in turn, on a peer that rejects a frame's size


RANGES = {"01": (1 / 255, 0.0), "255": (1.0, 0.0), "-11": (2 / 255, -1.0)}  # uint8 × scale + offset
CONTRACT_HELP = "rgb01, rgb255, bgr255 or rgb-11 (−1..1); add ,nhwc for channels last and ,out255 (,out01, ,out-11) " \
                "when the output's range differs from the input's"


@dataclass(frozen=True)
class PeerContract:
    """How a peer network wants its input: value range, channel order, layout; its output uses the same
    channel order and layout, and the same range unless ``out_scale``/``out_offset`` say otherwise."""

    scale: float = 1 / 255  # uint8 × scale + offset
    offset: float = 0.0
    channels: str = "RGB"
    layout: str = "NCHW"
    out_scale: float | None = None
    out_offset: float | None = None

    @property
    def output_range(self) -> tuple[float, float]:
        return (self.scale if self.out_scale is None else self.out_scale,
                self.offset if self.out_offset is None else self.out_offset)

    @classmethod
    def parse(cls, text: str) -> PeerContract:
        """e.g. ``rgb01`` (default), ``rgb255``, ``bgr255``, ``rgb-11``, ``rgb-11,nhwc``, ``rgb01,out255``."""
        first, *options = text.lower().split(",")
        rng = next((r for r in RANGES if first.endswith(r)), None)
        order = first[:3].upper()
        if rng is None or order not in ("RGB", "BGR") or len(first) != 3 + len(rng):
            raise ValueError(f"unknown peer contract '{text}': use {CONTRACT_HELP}")
        layout, out = "NCHW", (None, None)
        for option in options:
            if option in ("nhwc", "nchw"):
                layout = option.upper()
            elif option.startswith("out") and option[3:] in RANGES:
                out = RANGES[option[3:]]
            else:
                raise ValueError(f"unknown option '{option}' in peer contract '{text}': use {CONTRACT_HELP}")
        return cls(*RANGES[rng], order, layout, *out)


class Peer:
    """A peer ONNX network on ONNX Runtime, on the providers our ``onnxruntime`` backend would use (CUDA where
    onnxruntime-gpu has it, else the CPU): ``stylize(frame)``, ``timer``, ``info()``, ``style``."""

    def __init__(self, path: str | Path, contract: PeerContract | None = None, threads: int | None = None,
                 device: str = "auto"):
        import onnxruntime as ort

        self.path, self.contract, self.timer = Path(path), contract or PeerContract(), StageTimer()
        if not self.path.is_file():
            raise FileNotFoundError(f"peer model {self.path} not found: give MODEL.onnx:CONTRACT, e.g. net.onnx:rgb255")
        try:  # the options and providers our backend runs with, so that the comparison is like for like
            self.session = ort.InferenceSession(str(self.path), session_options(threads), providers=providers(device))
        except Exception as e:  # onnxruntime raises its own exception types
            raise ValueError(f"{self.path}: ONNX Runtime could not load this peer ({e})") from e
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ValueError(f"{self.path}: it takes {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); "
                             "a peer is a feed-forward style network that takes one image (an arbitrary-style "
                             "network, e.g. AdaIN, also takes the painting: export it with that input fixed)")
        inp = inputs[0]
        self.input = inp.name
        dtypes = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(uint8)": np.uint8}
        if inp.type not in dtypes:
            raise ValueError(f"{self.path}: its input is {inp.type}; peers take float, float16 or uint8 images")
        self.dtype = dtypes[inp.type]
        hw = inp.shape[1:3] if self.contract.layout == "NHWC" else inp.shape[2:4]
        self.native_size = tuple(hw) if all(isinstance(d, int) and d > 0 for d in hw) else None
        self.style = self.path.stem + (f" @{hw[0]}×{hw[1]}" if self.native_size else "")
        self.stride = 1  # raised when the network rejects a size (see the module's docstring)

    @classmethod
    def from_spec(cls, spec: str, threads: int | None = None, device: str = "auto") -> Peer:
        """``path.onnx:CONTRACT`` (the contract defaults to rgb01)."""
        path, sep, contract = spec.rpartition(":")
        if not sep or spec.endswith(".onnx"):  # no contract given
            path, contract = spec, ""
        return cls(path, PeerContract.parse(contract or "rgb01"), threads, device)

    def reset_video(self) -> None:
        """Peers keep no state between frames."""

    def stylize(self, frame: np.ndarray) -> np.ndarray:
        bgr = check_frame(frame)
        error = None
        for stride in [1] if self.native_size else [s for s in STRIDES if s >= self.stride]:
            with self.timer("pre"):
                x = self._tensor(bgr, stride)
            try:
                with self.timer("infer"):
                    y = self.session.run(None, {self.input: x})[0]
            except Exception as e:  # onnxruntime's own types; most often a size the network cannot take
                error = e
                continue
            self.stride = stride
            with self.timer("post"):
                return self._frame(y, bgr.shape[:2])
        padded = "" if self.native_size else f", even padded to a multiple of {STRIDES[-1]}"
        raise ValueError(f"peer {self.path.name} failed on a {bgr.shape[1]}x{bgr.shape[0]} frame{padded} "
                         f"({error}); check its input contract and size") from error

    def _tensor(self, bgr: np.ndarray, stride: int) -> np.ndarray:
        c = self.contract
        if self.native_size:
            bgr = cv2.resize(bgr, self.native_size[::-1], interpolation=cv2.INTER_AREA)
        h, w = bgr.shape[:2]
        if stride > 1:
            bgr = cv2.copyMakeBorder(bgr, 0, -h % stride, 0, -w % stride, cv2.BORDER_REFLECT_101)
        img = bgr[:, :, ::-1] if c.channels == "RGB" else bgr
        x = img.astype(np.float32) * c.scale + c.offset
        x = x[None] if c.layout == "NHWC" else x.transpose(2, 0, 1)[None]
        if self.dtype == np.uint8:  # a network that takes 0..255 bytes
            x = np.clip(np.rint(x), 0, 255)
        return np.ascontiguousarray(x, dtype=self.dtype)

    def _frame(self, y: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """The network's output as a BGR8 frame of ``size``: the padding cropped off, any other size resized."""
        c, (h, w) = self.contract, size
        y = y[0] if c.layout == "NHWC" else y[0].transpose(1, 2, 0)
        if not self.native_size and y.shape[0] == -h % self.stride + h and y.shape[1] == -w % self.stride + w:
            y = y[:h, :w]
        scale, offset = c.output_range
        y = (y.astype(np.float32) - offset) / scale
        y = y[:, :, ::-1] if c.channels == "RGB" else y
        out = np.clip(np.rint(y), 0, 255).astype(np.uint8)
        if out.shape[:2] != (h, w):
            out = cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR)
        return np.ascontiguousarray(out)

    def info(self) -> dict:
        import onnxruntime as ort

        return {"backend": "onnxruntime", "version": ort.__version__, "variant": "peer", "model": self.path.name,
                "providers": self.session.get_providers(),
                "native_size": list(self.native_size) if self.native_size else None, "stride": self.stride}
