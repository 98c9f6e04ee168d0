"""``Stylizer``: a style bundle on a backend, applied to OpenCV BGR frames."""
from __future__ import annotations

import logging
import os
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from . import backends
from .bundle import Bundle
from .frames import (check_frame, check_scale, check_strength, crop_output, padded_size, resize, scaled_size,
                     split_alpha, to_bgr8, to_frame_size, to_tensor)
from .profile import Profile
from .styles import DEFAULT_STYLE, resolve
from .temporal import TemporalSmoother, check_smoothing
from .tiles import (TileError, available_memory, check_tile, infer_tiled, memory_tile, needs_tiles, receptive_radius,
                    working_memory)
from .timing import StageTimer

log = logging.getLogger("stylecam")

class Stylizer:
    """Restyle frames with one trained style.

    >>> s = Stylizer("candy")                  # bundled style name or a bundle folder
    >>> out = s.stylize(frame)                 # uint8 BGR H×W×3 in, same shape out
    >>> s.strength = 0.5                       # blend with the original, at runtime
    >>> s.set_mix("mosaic", 0.3)               # 70% candy, 30% mosaic (runs both networks)
    >>> s.smoothing = 0.5                      # video: blend with the flow-warped previous output
    >>> s.scale = 0.5                          # network at half the frame's size: bigger strokes, ~4x faster

    ``backend``: "auto" (TensorRT, else ONNX Runtime), "onnxruntime", "torch" or "tensorrt";
    ``variant``: "auto" (the backend's best: FP16 on TensorRT, INT8-CPU on ONNX Runtime's CPU provider, FP32 on
    torch), "fp32", "fp16", "int8" (TensorRT's) or "int8-cpu";
    ``threads``: CPU threads for ONNX Runtime.
    ``scale`` (0.1–2): the network's resolution relative to the frame. Below 1 the frame is area-downscaled, stylized
    and upscaled back (strokes grow with 1/scale, compute falls with scale²), and the strength blend uses the
    full-resolution frame; above 1, finer strokes at more compute. The styles were trained on crops of photos about
    500 px wide, so on 1080p or 4K frames their strokes look small; 0.5 or less brings back that look.
    ``tile`` (pixels): the largest network input side per call. Larger frames run in overlapping windows stitched
    into the same image (``stylecam.tiles``), so a 12 MP photo needs the memory of a tile, not of the photo.
    TensorRT tiles frames beyond its engine's profile on its own.
    ``smoothing`` > 0 treats consecutive ``stylize`` calls as frames of one video (``reset_video()`` between
    clips); a ``stylecam.TemporalSmoother`` instead of a number sets its flow resolution and tolerance too
    (``TemporalSmoother(0.5, scale=0.5)``: steadier on slow, detailed scenes at about 1 ms more a frame).
    ``Stylizer.from_profile()`` starts from the user's saved look (``stylecam.profile``).
    Frame layouts: see ``stylecam.frames`` (gray is expanded to BGR, BGRA keeps its alpha).
    """

    def __init__(self, style: str | os.PathLike | Bundle = DEFAULT_STYLE, backend: str = "auto",
                 strength: float = 1.0, variant: str = "auto", device: str = "auto", threads: int | None = None,
                 timer: StageTimer | None = None, mix: tuple[str | os.PathLike | Bundle, float] | None = None,
                 smoothing: float | TemporalSmoother = 0.0, scale: float = 1.0, tile: int | None = None):
        self.strength = strength
        self.scale = scale
        self.tile = check_tile(tile)
        self._memory_said: set[tuple[int, int]] = set()  # frame sizes too large for the memory left, said once each
        self._radii: dict[Path, int | str] = {}  # receptive radius per bundle, or why it cannot be tiled
        self.timer = timer or StageTimer()
        self._backend_name, self._variant, self._device = backend, variant, device
        self._options = {"threads": threads} if threads else {}
        self._lock = threading.Lock()
        self._in_use: dict = {}  # backend → frames running on it now
        self._retired: list = []  # backends swapped out, closed when their last frame ends
        self._loading: str | None = None
        self._requests = 0  # the newest style request wins, however the loads finish
        self._bundle, self._backend = self._load(style)
        self._mix: tuple[Bundle, backends.Backend, float] | None = None
        self._smoother = TemporalSmoother(0.0)
        self.smoothing = smoothing
        if mix is not None:
            self.set_mix(*mix)

    @classmethod
    def from_profile(cls, profile: Profile | str | os.PathLike | None = None, **overrides) -> Stylizer:
        """A Stylizer with the user's saved look (default: ``stylecam.profile.profile_path()``); keyword
        arguments override it."""
        if not isinstance(profile, Profile):
            profile = Profile.load(profile)
        return cls(**{**profile.stylizer_options(), **overrides})

    def _load(self, style) -> tuple[Bundle, backends.Backend]:
        bundle = resolve(style)
        return bundle, backends.open_backend(self._backend_name, bundle, self._variant, self._device, **self._options)

    @contextmanager
    def _lease(self):
        """(bundle, backend, mix) for one frame; a backend swapped out meanwhile is closed when its last frame ends,
        not under it."""
        with self._lock:
            bundle, backend, mix = self._bundle, self._backend, self._mix
            held = [backend, *([mix[1]] if mix else [])]
            for b in held:
                self._in_use[b] = self._in_use.get(b, 0) + 1
        try:
            yield bundle, backend, mix
        finally:
            done = []
            with self._lock:
                for b in held:
                    self._in_use[b] -= 1
                    if not self._in_use[b]:
                        del self._in_use[b]
                        if b in self._retired:
                            self._retired.remove(b)
                            done.append(b)
            for b in done:
                backends.close(b)

    def _retire(self, backend):
        """A backend swapped out (the caller holds ``_lock``): returned for the caller to close once it has let go
        of the lock, or, while frames still run on it, closed by the last of them."""
        if backend in self._in_use:
            self._retired.append(backend)
            return None
        return backend

    def close(self) -> None:
        """Free the style's and the mix's backends (GPU memory, sessions). The Stylizer cannot stylize after."""
        with self._lock:
            held = [self._backend, *([self._mix[1]] if self._mix else [])]
            self._mix = None
        for b in held:
            backends.close(b)

    def __enter__(self) -> Stylizer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def strength(self) -> float:
        return self._strength

    @strength.setter
    def strength(self, value: float) -> None:
        self._strength = check_strength(value)

    @property
    def scale(self) -> float:
        return self._scale

    @scale.setter
    def scale(self, value: float) -> None:
        self._scale = check_scale(value)

    def set_strength(self, value: float) -> None:
        """Thread-safe: the next frame uses it (a float assignment; nothing to lock)."""
        self.strength = value

    @property
    def smoothing(self) -> float:
        return self._smoother.amount

    @smoothing.setter
    def smoothing(self, amount: float | TemporalSmoother) -> None:
        if isinstance(amount, TemporalSmoother):
            self._smoother = amount
            return
        was_off = not self._smoother.amount
        self._smoother.amount = check_smoothing(amount)  # on to on keeps the previous frame, and the flow settings
        if was_off:
            self._smoother.reset()  # a frame from before smoothing was off must not bleed in

    def reset_video(self) -> None:
        """Start a new clip: the next frame is not smoothed against the last one."""
        self._smoother.reset()

    @property
    def style(self) -> str:
        return self._bundle.name

    @property
    def bundle(self) -> Bundle:
        return self._bundle

    @property
    def loading(self) -> str | None:
        """The style being loaded in the background, if any."""
        return self._loading

    @property
    def mix(self) -> tuple[str, float] | None:
        """(second style, amount) when two styles are blended, else None."""
        mix = self._mix
        return (mix[0].name, mix[2]) if mix else None

    def set_style(self, style: str | os.PathLike | Bundle, wait: bool = True) -> None:
        """Switch style. The new one is loaded first and swapped in at once, so frames never stall; with
        ``wait=False`` the load runs in a background thread (a failure is logged and the old style stays).
        When requests overlap, the last one asked for wins. The loader is not a daemon thread: a program that
        exits during a load waits for it, instead of the runtime tearing down under it (an abort at exit)."""
        with self._lock:  # the request number and what is loading change together
            self._requests += 1
            request = self._requests
            self._loading = None if wait else str(getattr(style, "name", style))
        if wait:
            self._swap(request, *self._load(style))
            return

        def load():
            try:
                self._swap(request, *self._load(style))
            except Exception as e:  # noqa: BLE001 - keep running the current style
                log.error("could not switch to style %s: %s", style, e)
            finally:
                with self._lock:
                    if request == self._requests:
                        self._loading = None

        threading.Thread(target=load, name="stylecam-style-loader").start()

    def _swap(self, request: int, bundle: Bundle, backend: backends.Backend) -> None:
        with self._lock:
            if request == self._requests:
                old, (self._bundle, self._backend) = self._backend, (bundle, backend)
            else:  # a newer request won while this one loaded
                old = backend
            done = self._retire(old)
        if done is not None:
            backends.close(done)

    def set_mix(self, style: str | os.PathLike | Bundle | None, amount: float = 0.5) -> None:
        """Blend a second style's output in by ``amount`` (0..1); ``None`` or 0 turns it off. Costs a second
        network pass per frame. Changing only the amount of the current mix loads nothing."""
        amount = check_strength(amount, "mix amount", "0 = the first style only, 1 = the second only")
        current = self._mix
        if style is not None and amount and current and \
                str(getattr(style, "name", style)) in (current[0].name, str(current[0].path)):
            self._mix = (current[0], current[1], amount)
            return
        new = (*self._load(style), amount) if style is not None and amount else None
        with self._lock:
            old, self._mix = self._mix, new
            done = self._retire(old[1]) if old else None
        if done is not None:
            backends.close(done)

    def copy(self) -> Stylizer:
        """Another Stylizer with this one's style, mix, strength, scale and tile, and its timer, on a backend of its
        own (an ONNX Runtime session, a TensorRT execution context and stream): copies can stylize frames at the
        same time, which one Stylizer cannot (``Pipeline(workers=N)``), each with this one's ONNX Runtime threads.
        Runtime smoothing is not copied: it needs the frames in order through one Stylizer."""
        with self._lock:
            bundle, mix = self._bundle, self._mix
        return Stylizer(bundle, backend=self._backend_name, strength=self.strength, variant=self._variant,
                        device=self._device, threads=self._options.get("threads"), timer=self.timer,
                        mix=(mix[0], mix[2]) if mix else None, scale=self.scale, tile=self.tile)

    def info(self) -> dict:
        mix = self.mix
        return {"style": self.style, "strength": self.strength, "smoothing": self.smoothing, "scale": self.scale,
                "tile": self.tile,
                **({"mix": mix[0], "mix_amount": mix[1]} if mix else {}), **self._backend.info()}

    def stylize(self, frame: np.ndarray, strength: float | None = None) -> np.ndarray:
        """Stylize one uint8 BGR frame (any H, W ≥ 1); returns a new frame of the same size."""
        frame = check_frame(frame)
        alpha = check_strength(self._strength if strength is None else strength)
        bgr, extra = split_alpha(frame)
        if alpha == 0.0:
            return self._finish(bgr, bgr.copy(), extra, smooth=False)
        with self._lease() as (bundle, backend, mix):
            out = self._stylize(bgr, alpha, bundle, backend, mix)
        return self._finish(bgr, out, extra)

    def _stylize(self, bgr: np.ndarray, alpha: float, bundle: Bundle, backend, mix) -> np.ndarray:
        size = scaled_size(*bgr.shape[:2], self._scale)
        # TensorRT + cpp_ext: the frame's one trip through the GPU, where its buffers and the engine's profile take it
        net_shape = (1, 3, *padded_size(*(size or bgr.shape[:2]), bundle.stride, bundle.margin))
        one_trip = getattr(backend, "device_ops", False) and not mix and bgr.nbytes <= backend.frame_bytes
        if one_trip and backend.covers(net_shape) and not needs_tiles(net_shape, self._limit(backend)):
            with self.timer("device"):
                out = backend.stylize_frame(bgr, alpha, bundle.stride, bundle.margin, size)
            self._record_gpu_stages(backend)
            return out
        with self.timer("pre"):
            net_in = bgr if size is None else resize(bgr, size)
            x = to_tensor(net_in, bundle.stride, bundle.margin)
        h, w = net_in.shape[:2]
        with self.timer("infer"):
            y = crop_output(self._infer(backend, bundle, x), h, w, bundle.margin)
            self._record_gpu_stages(backend)
            if mix:
                other, other_backend, amount = mix
                if (other.stride, other.margin) != (bundle.stride, bundle.margin):
                    x = to_tensor(net_in, other.stride, other.margin)
                y2 = crop_output(self._infer(other_backend, other, x), h, w, other.margin)
                y = (1.0 - amount) * np.clip(y, 0.0, 1.0) + amount * np.clip(y2, 0.0, 1.0)  # mix the images
        with self.timer("post"):
            return to_bgr8(y, bgr, alpha) if size is None else to_frame_size(to_bgr8(y, net_in, 1.0), bgr, alpha)

    def _limit(self, backend) -> tuple[int, int] | None:
        """The largest network input (H, W) one call may take: ``tile`` and the TensorRT profile's maximum."""
        limits = [lim for lim in ((self.tile, self.tile) if self.tile else None, getattr(backend, "max_input", None))
                  if lim]
        return tuple(min(sides) for sides in zip(*limits)) if limits else None

    def _memory_limit(self, backend, bundle: Bundle, h: int, w: int) -> tuple[int, int] | None:
        """Without a ``tile`` of the caller's, tiles for an input too large for the memory left, on the CPU: the
        same image, where the whole one would get the process killed (a 24 MP photo needs about 5 GB in INT8-CPU)."""
        need = working_memory(bundle.manifest, getattr(backend, "variant", ""), h, w)
        if self.tile or not getattr(backend, "on_host", False) or need is None or need < 1 << 30:
            return None  # under 1 GB it is not worth reading the system's memory for every frame
        available = available_memory()
        side = memory_tile(need, h, w, available) if available else None
        if side is None:
            return None
        first = (h, w) not in self._memory_said
        self._memory_said.add((h, w))
        try:  # tiles smaller than this are mostly overlap (stylecam.tiles)
            side = max(side, 2 * self._radius(bundle) + 256)
        except TileError:
            if first:
                log.warning("a %dx%d frame may need %.1f GB, %.1f GB is free, and %s cannot be tiled: trying it "
                            "whole (scale < 1 needs less)", h, w, need / 2**30, available / 2**30, bundle.name)
            return None
        if first:
            log.info("a %dx%d frame needs about %.1f GB at once and %.1f GB is free: running it in tiles of %d px "
                     "(the same image; tile= or --tile sets your own)", h, w, need / 2**30, available / 2**30, side)
        return side, side

    def _infer(self, backend, bundle: Bundle, x: np.ndarray) -> np.ndarray:
        """The network on ``x``, in tiles where it exceeds the limit or the memory left (the same image:
        ``stylecam.tiles``)."""
        limit = self._limit(backend) or self._memory_limit(backend, bundle, *x.shape[2:])
        if not needs_tiles(x.shape, limit):
            return backend.infer(x)
        return infer_tiled(backend.infer, x, limit, self._radius(bundle), bundle.stride)

    def _radius(self, bundle: Bundle) -> int:
        """The bundle's receptive radius (``stylecam.tiles``), found once per bundle: later frames skip the
        model's sha256 check and, for a network that cannot be tiled, the probe's four inferences."""
        if bundle.path not in self._radii:
            try:
                self._radii[bundle.path] = receptive_radius(bundle.model_file("fp32"), bundle.stride)
            except TileError as e:
                self._radii[bundle.path] = str(e)
        radius = self._radii[bundle.path]
        if isinstance(radius, str):
            raise TileError(radius)
        return radius

    def _record_gpu_stages(self, backend) -> None:
        """TensorRT's GPU-timed copies and kernels (h2d, gpu, d2h), inside the host's ``infer``/``device`` time."""
        for stage, ms in getattr(backend, "last_stages_ms", {}).items():
            self.timer.add(stage, ms)

    def _finish(self, bgr: np.ndarray, out: np.ndarray, extra: np.ndarray | None, smooth: bool = True) -> np.ndarray:
        """Runtime smoothing, then the alpha channel back on."""
        if smooth and self._smoother.amount:
            with self.timer("smooth"):
                out = self._smoother(bgr, out)
        return out if extra is None else np.concatenate([out, extra], axis=2)

    __call__ = stylize
