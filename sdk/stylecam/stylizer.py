"""``Stylizer``: a style bundle on a backend, applied to OpenCV BGR frames."""
from __future__ import annotations

import logging
import os
import threading

import numpy as np

from . import backends
from .bundle import Bundle
from .frames import check_frame, check_strength, from_tensor, split_alpha, to_tensor
from .styles import DEFAULT_STYLE, resolve
from .timing import StageTimer

log = logging.getLogger("stylecam")

class Stylizer:
    """Restyle frames with one trained style.

    >>> s = Stylizer("candy")                  # bundled style name or a bundle folder
    >>> out = s.stylize(frame)                 # uint8 BGR H×W×3 in, same shape out
    >>> s.strength = 0.5                       # blend with the original, at runtime

    ``backend``: "auto" (TensorRT, else ONNX Runtime), "onnxruntime", "torch" or "tensorrt";
    ``variant``: "fp32", "fp16" or "int8" where the bundle has it; ``threads``: CPU threads for ONNX Runtime.
    Frame layouts: see ``stylecam.frames`` (gray is expanded to BGR, BGRA keeps its alpha).
    """

    def __init__(self, style: str | os.PathLike | Bundle = DEFAULT_STYLE, backend: str = "auto",
                 strength: float = 1.0, variant: str = "fp32", device: str = "auto", threads: int | None = None,
                 timer: StageTimer | None = None):
        self.strength = strength
        self.timer = timer or StageTimer()
        self._backend_name, self._variant, self._device = backend, variant, device
        self._options = {"threads": threads} if threads else {}
        self._lock = threading.Lock()
        self._loading: str | None = None
        self._bundle, self._backend = self._load(style)

    def _load(self, style) -> tuple[Bundle, backends.Backend]:
        bundle = resolve(style)
        backend = backends.create(self._backend_name, **self._options)
        backend.load(bundle, self._variant, self._device)
        return bundle, backend

    @property
    def strength(self) -> float:
        return self._strength

    @strength.setter
    def strength(self, value: float) -> None:
        self._strength = check_strength(value)

    def set_strength(self, value: float) -> None:
        """Thread-safe: the next frame uses it (a float assignment; nothing to lock)."""
        self.strength = value

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

    def set_style(self, style: str | os.PathLike | Bundle, wait: bool = True) -> None:
        """Switch style. The new one is loaded first and swapped in at once, so frames never stall; with
        ``wait=False`` the load runs in a background thread (a failure is logged and the old style stays)."""
        if wait:
            loaded = self._load(style)
            with self._lock:
                self._bundle, self._backend = loaded
            return
        self._loading = str(getattr(style, "name", style))

        def load():
            try:
                self.set_style(style)
            except Exception as e:  # noqa: BLE001 - keep running the current style
                log.error("could not switch to style %s: %s", style, e)
            finally:
                self._loading = None

        threading.Thread(target=load, name="stylecam-style-loader", daemon=True).start()

    def info(self) -> dict:
        return {"style": self.style, "strength": self.strength, **self._backend.info()}

    def stylize(self, frame: np.ndarray, strength: float | None = None) -> np.ndarray:
        """Stylize one uint8 BGR frame (any H, W ≥ 1); returns a new frame of the same size."""
        frame = check_frame(frame)
        alpha = check_strength(self._strength if strength is None else strength)
        bgr, extra = split_alpha(frame)
        if alpha == 0.0:
            out = bgr.copy()
        else:
            with self._lock:
                bundle, backend = self._bundle, self._backend
            with self.timer("pre"):
                x = to_tensor(bgr, bundle.stride, bundle.margin)
            with self.timer("infer"):
                y = backend.infer(x)
            with self.timer("post"):
                out = from_tensor(y, bgr, alpha, bundle.margin)
        return out if extra is None else np.concatenate([out, extra], axis=2)

    __call__ = stylize
