"""The real-time pipeline: capture thread → latest-frame slot → stylize → output thread → sinks.

Live sources (cameras, streams) never queue latency: the capture thread overwrites the slot and counts the
frames it drops. Files keep every frame: the slot blocks the reader instead. Capture, inference and output
run in three threads, so each overlaps the others. A live source that fails is reopened with backoff.
``workers`` > 1 stylizes that many frames at once, each on a copy of the stylizer, and hands them to the output
in the order they were captured.
"""
from __future__ import annotations

import logging
import math
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .frames import SCALE_RANGE, draw_label
from .sinks import CallbackSink, StopPipeline
from .sources import open_source
from .styles import bundled_styles
from .stylizer import Stylizer

log = logging.getLogger("stylecam")
_END = object()


def keep_freed_memory() -> bool:
    """Let glibc keep up to 128 MB of freed memory instead of handing it back to the system at once. By default it
    maps blocks over a dynamic threshold afresh and trims the heap when a few megabytes are free at its top, so
    a loop that frees its frame buffers every frame page-faults them back in on the next: for candy_nano at
    480×640 on a 2-core EPYC, 7.8 → 1.4 ms of pre-processing and 3.4 → 1.7 ms of post. ``Pipeline.run`` and the
    CLI call this; a program that calls ``Stylizer.stylize`` in a loop of its own can too. Returns whether it
    applied: not on another C library, nor where the environment sets glibc's malloc already (GLIBC_TUNABLES,
    MALLOC_*_)."""
    import ctypes
    import os
    import platform

    if platform.libc_ver()[0] != "glibc" or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", "") or any(
            k.startswith("MALLOC_") and k.endswith("_") for k in os.environ):
        return False
    global freed_memory_kept
    mallopt = ctypes.CDLL("libc.so.6").mallopt
    m_trim_threshold, m_mmap_threshold = -1, -3  # malloc.h; the mmap threshold's largest value is 32 MB
    freed_memory_kept = bool(mallopt(m_mmap_threshold, 32 << 20)) and bool(mallopt(m_trim_threshold, 128 << 20))
    return freed_memory_kept


freed_memory_kept = False  # whether keep_freed_memory applied in this process (benchmarks record it)


def threads_per_worker(workers: int) -> int | None:
    """Each of ``workers`` stylizers' share of the cores, as its ONNX Runtime threads; None for one (its default).
    More threads than cores would make them take turns on the cores instead of running side by side."""
    return None if workers == 1 else max(1, (os.cpu_count() or 1) // workers)


@dataclass
class Frame:
    image: np.ndarray
    index: int
    t_capture: float
    stylized: np.ndarray | None = None
    name: str | None = None  # the source file's name, for image files and folders


class Slot:
    """One-item hand-over between threads. ``keep_all`` blocks the producer; otherwise the newest item wins."""

    def __init__(self, keep_all: bool):
        self.keep_all, self.dropped = keep_all, 0
        self._item, self._full, self._closed = None, False, False
        self._cond = threading.Condition()

    def put(self, item) -> bool:
        """Hand over ``item``; False once the slot is closed. The end marker waits behind the last frame
        instead of replacing it, so a source's last frame is always shown."""
        with self._cond:
            if self.keep_all or item is _END:
                self._cond.wait_for(lambda: not self._full or self._closed)
            elif self._full and self._item is not _END:
                self.dropped += 1
            if self._closed:
                return False
            if self._full and self._item is _END:
                return True  # the end marker is never overwritten
            self._item, self._full = item, True
            self._cond.notify_all()
            return True

    def get(self, timeout: float | None = None):
        with self._cond:
            if not self._cond.wait_for(lambda: self._full or self._closed, timeout):
                return None
            if not self._full:
                return _END
            item, self._item, self._full = self._item, None, False
            self._cond.notify_all()
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class TooSoon(ValueError):
    """A request that comes faster than its rate limit allows (HTTP 429)."""

    http_status = 429

    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.headers = {"Retry-After": str(max(1, math.ceil(retry_after)))}


class Controls:
    """Commands shared by window keys, HTTP and code: style, strength, original view, screenshot, quit.

    Screenshots are at most one per ``screenshot_interval`` seconds and stop while the folder's disk has under
    ``min_free_bytes`` free. A ``remote`` command (HTTP) names styles only by bundled name or favourite."""

    def __init__(self, stylizer: Stylizer, styles: list[str] | None = None, step: float = 0.1,
                 screenshot_dir: str | Path = ".", profile: str | Path | None = None,
                 screenshot_interval: float = 1.0, min_free_bytes: int = 256 << 20):
        self.stylizer, self.step, self.profile = stylizer, step, profile
        self.styles = styles or bundled_styles()
        self.show_original, self.quit_requested = False, False
        self.screenshot_dir, self._screenshot = Path(screenshot_dir), False
        self.screenshot_interval, self.min_free_bytes = screenshot_interval, min_free_bytes
        self._last_screenshot = -math.inf
        self._lock = threading.Lock()  # commands from the window and from HTTP threads apply one at a time
        self.fit: FitFrameRate | None = None  # set by a Pipeline that fits a frame rate: it owns the scale

    def state(self) -> dict:
        mix = self.stylizer.mix
        return {"style": self.stylizer.style, "loading": self.stylizer.loading, "strength": self.stylizer.strength,
                "mix": mix[0] if mix else None, "mix_amount": mix[1] if mix else 0.0,
                "smoothing": self.stylizer.smoothing, "scale": self.stylizer.scale, "original": self.show_original,
                "fit_fps": self.fit.fps if self.fit else None}

    def save_profile(self) -> Path:
        """Store the current look in the user's profile (favourites are kept)."""
        from .profile import Profile

        state = self.state()
        scale = self.fit.ceiling if self.fit and self.fit.ceiling is not None else state["scale"]  # the user's
        profile = Profile.load(self.profile).update(
            style=self.stylizer.loading or self.stylizer.style, strength=state["strength"], mix=state["mix"],
            mix_amount=state["mix_amount"], smoothing=state["smoothing"], scale=scale)
        return profile.save(self.profile)

    def _cycle(self, delta: int) -> str:
        current = self.stylizer.loading or self.stylizer.style
        i = self.styles.index(current) if current in self.styles else -1
        name = self.styles[(i + delta) % len(self.styles)]
        self.stylizer.set_style(name, wait=False)
        return name

    def _check_remote_style(self, value: str) -> None:
        """Over HTTP a style is a name, never a path: a web page must not make us load files of its choosing."""
        known = [*dict.fromkeys([*self.styles, *bundled_styles()])]
        if value not in known:
            raise ValueError(f"unknown style {value!r}: over HTTP, name a bundled style or a favourite "
                             f"({', '.join(known)}); bundle folders load from the command line or Python")

    def _request_screenshot(self) -> str:
        now = time.monotonic()
        wait = self._last_screenshot + self.screenshot_interval - now
        if wait > 0:
            raise TooSoon(f"one screenshot every {self.screenshot_interval:g} s: try again in {wait:.1f} s", wait)
        folder = next((p for p in (self.screenshot_dir, *self.screenshot_dir.resolve().parents) if p.exists()))
        free = shutil.disk_usage(folder).free
        if free < self.min_free_bytes:
            raise ValueError(f"only {free >> 20} MB free in {self.screenshot_dir}: screenshots stop below "
                             f"{self.min_free_bytes >> 20} MB; free some space or choose --screenshots DIR")
        self._last_screenshot, self._screenshot = now, True
        return "screenshot requested"

    def handle(self, command: str, remote: bool = False) -> str:
        """Apply one command; returns what it did. Unknown commands and bad values raise ValueError.
        ``remote``: the command came over the network (style and mix take names only)."""
        with self._lock:
            return self._handle(command, remote)

    def _handle(self, command: str, remote: bool) -> str:
        name, _, value = command.partition("=")
        if remote and name in ("style", "mix") and value:
            self._check_remote_style(value)
        if name == "next":
            return f"style {self._cycle(+1)}"
        if name == "prev":
            return f"style {self._cycle(-1)}"
        if name in ("stronger", "weaker"):
            s = self.stylizer.strength + (self.step if name == "stronger" else -self.step)
            self.stylizer.strength = round(min(1.0, max(0.0, s)), 3)
            return f"strength {self.stylizer.strength}"
        if name == "strength":
            self.stylizer.strength = float(value)
            return f"strength {self.stylizer.strength}"
        if name == "style":
            self.stylizer.set_style(value, wait=False)
            return f"style {value}"
        if name == "smoothing":
            self.stylizer.smoothing = float(value)
            return f"smoothing {self.stylizer.smoothing}"
        if name == "smooth":
            self.stylizer.smoothing = 0.0 if self.stylizer.smoothing else 0.5
            return f"smoothing {self.stylizer.smoothing}"
        if name == "scale":
            self.stylizer.scale = float(value)
            return f"scale {self.stylizer.scale}"
        if name in ("bigger", "finer"):  # strokes: the network's resolution down or up a step of 1.25×
            s = self.stylizer.scale / 1.25 if name == "bigger" else self.stylizer.scale * 1.25
            self.stylizer.scale = round(min(SCALE_RANGE[1], max(SCALE_RANGE[0], s)), 3)
            return f"scale {self.stylizer.scale}"
        if name == "mix":
            mix = self.stylizer.mix
            self.stylizer.set_mix(value or None, mix[1] if mix else 0.5)
            return f"mix {value or 'off'}"
        if name == "mix_amount":
            mix = self.stylizer.mix
            if mix is None:
                raise ValueError("no style to mix in: send mix=NAME first")
            self.stylizer.set_mix(mix[0], float(value))
            return f"mix_amount {float(value)}"
        if name == "save":
            return f"profile saved: {self.save_profile()}"
        if name == "original":
            self.show_original = not self.show_original
            return f"original {'on' if self.show_original else 'off'}"
        if name == "screenshot":
            return self._request_screenshot()
        if name == "quit":
            self.quit_requested = True
            return "quit"
        raise ValueError(f"unknown command {command!r}; use next, prev, stronger, weaker, strength=X, "
                         "style=NAME, mix=NAME, mix_amount=X, smoothing=X, smooth, scale=X, bigger, finer, save, "
                         "original, screenshot or quit")

    def take_screenshot(self, view: np.ndarray) -> Path | None:
        if not self._screenshot:
            return None
        self._screenshot = False
        self.screenshot_dir.mkdir(parents=True, exist_ok=True)
        path = self.screenshot_dir / f"stylecam_{time.strftime('%Y%m%d_%H%M%S')}_{int(time.time() * 1e3) % 1000}.png"
        cv2.imwrite(str(path), view)
        log.info("screenshot: %s", path)
        return path


def compose(frame: Frame, side_by_side: bool, overlay: str | None, original: bool) -> np.ndarray:
    """What the sinks show: stylized (or original), optionally beside the original, optionally labelled."""
    view = frame.image if original else frame.stylized
    if side_by_side:
        view = np.concatenate([frame.image, view], axis=1)
    if overlay:
        view = view.copy()
        draw_label(view, overlay, (8, 22))
    return view


class FitFrameRate:
    """Holds a pipeline at ``fps`` by moving the network scale (``Stylizer.scale``) instead of dropping frames.

    Every ``window`` frames the median stylize time is compared with the frame's budget (``headroom`` of 1/fps, as
    capture and output run in their own threads). Compute grows with scale², so the scale is multiplied by the
    square root of budget / time, rounded down to ``step``, between ``floor`` and the ceiling: the scale the
    stylizer had at the start, or the one someone set since (live keys, HTTP), which becomes the new ceiling. It
    rises only with clear headroom (1.5× the time), and not to a scale it measured too slow in the last
    ``memory`` windows (fixed costs make small scales cheaper than scale² says), so it does not hunt between two
    steps; after that it tries again, as the machine's load may have changed.
    """

    def __init__(self, fps: float, floor: float = 0.25, window: int = 8, step: float = 0.05,
                 headroom: float = 0.9, memory: int = 20):
        if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
            raise ValueError(f"the frame rate to fit must be a positive number of frames a second, got {fps!r}")
        self.fps, self.budget_ms = float(fps), 1e3 / fps * headroom
        self.floor, self.window, self.step = max(floor, SCALE_RANGE[0]), window, step
        self.samples: list[float] = []
        self.ceiling = self.scale = None  # the scale it may not exceed, and the one it last set
        self.memory, self.windows = memory, 0
        self.too_slow: dict[float, int] = {}  # scale → the window in which it last ran over budget

    def observe(self, stylizer: Stylizer, ms: float) -> float | None:
        """One frame's stylize time; returns the new scale when it changed it."""
        if stylizer.scale != self.scale:  # the first frame, or someone else moved the scale
            self.ceiling = self.scale = stylizer.scale
            self.samples.clear()
        self.samples.append(ms)
        if len(self.samples) < self.window:
            return None
        median = float(np.median(self.samples))
        self.samples.clear()
        self.windows += 1
        ratio = self.budget_ms / median
        if ratio < 1.0:
            self.too_slow[self.scale] = self.windows
        if 1.0 <= ratio < 1.5:
            return None
        wanted = math.floor(self.scale * math.sqrt(ratio) / self.step + 1e-9) * self.step
        slow = [s for s, w in self.too_slow.items() if s > self.scale and self.windows - w < self.memory]
        cap = min([self.ceiling, *(s - self.step for s in slow)])  # below any scale measured too slow lately
        new = round(min(cap, max(min(self.floor, self.ceiling), wanted)), 4)
        if new == self.scale or (ratio >= 1.0 and new < self.scale):  # headroom never lowers the scale
            return None
        log.info("fitting %.0f FPS: network scale %.2f → %.2f (stylize %.0f ms, budget %.0f ms)", self.fps,
                 self.scale, new, median, self.budget_ms)
        stylizer.scale = self.scale = new
        return new


@dataclass
class PipelineStats:
    frames: int = 0
    dropped: int = 0
    reconnects: int = 0
    stop_reason: str = ""
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


class Pipeline:
    """Run ``source`` through ``stylizer`` into ``sinks`` until the source ends, a sink stops it, or ``stop()``.

    ``source``: anything ``open_source`` takes, or an opened source. ``realtime`` (default: the source is live)
    drops stale frames instead of queueing them; a file or folder run in real time is paced at its frame rate.
    ``fit_fps`` (a number, or "source" for the source's own frame rate) lowers the network scale until
    stylizing keeps up with that rate (``FitFrameRate``). ``workers`` > 1 stylizes that many frames at once on
    copies of ``stylizer`` (``Stylizer.copy``), still in order: more frames a second where one stylizer leaves the
    cores or the GPU idle part of the time (its pre/post-processing, its own threads' ramp-up). Give the stylizer
    its share of the cores (``threads=threads_per_worker(workers)``). Workers need no state between frames, so
    they do not take runtime smoothing, ``fit_fps`` or ``controls``. Timings go to ``stylizer.timer``: read, pre,
    infer, post, write, and ``latency`` (capture to sinks).
    """

    def __init__(self, source, stylizer: Stylizer, sinks: list, *, controls: Controls | None = None,
                 realtime: bool | None = None, max_frames: int | None = None, side_by_side: bool = False,
                 overlay: bool = False, reconnect_backoff: tuple[float, float] = (0.5, 8.0),
                 max_reconnects: int | None = None, fit_fps: float | str | None = None, workers: int = 1):
        if max_frames is not None and (not isinstance(max_frames, int) or max_frames < 1):
            raise ValueError(f"max_frames must be a whole number of at least 1 (or None: the whole source), "
                             f"got {max_frames!r}")
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a whole number of at least 1, got {workers!r}")
        if workers > 1 and (stylizer.smoothing or fit_fps is not None or controls is not None):
            raise ValueError("workers > 1 stylize frames side by side, so they cannot smooth one frame against the "
                             "last, fit a frame rate or take live controls: use one worker for those")
        self.source = open_source(source) if isinstance(source, (str, int, Path)) else source
        self.fit = None if fit_fps is None else FitFrameRate(self.source.fps if fit_fps == "source" else fit_fps)
        if controls is not None:
            controls.fit = self.fit
        self.stylizer, self.sinks, self.controls = stylizer, sinks, controls
        self.realtime = self.source.live if realtime is None else realtime
        self.max_frames, self.side_by_side, self.overlay = max_frames, side_by_side, overlay
        self.backoff, self.max_reconnects = reconnect_backoff, max_reconnects
        self.stats = PipelineStats()
        self._stop = threading.Event()
        self._frames_in = Slot(keep_all=not self.realtime)
        self._frames_out = Slot(keep_all=not self.realtime)
        self.stylizers = [stylizer, *(stylizer.copy() for _ in range(workers - 1))]
        self._taking = threading.Lock()  # a frame and its place in the output order are taken together
        self._taken = self._handed = 0
        self._turns = threading.Condition()  # a worker waits for its frame's turn to go to the output
        self._error: Exception | None = None  # the first failure of a worker thread, raised by run()

    def stop(self, reason: str = "stopped") -> None:
        if not self._stop.is_set():
            self.stats.stop_reason = self.stats.stop_reason or reason
            self._stop.set()
            self._frames_in.close()
            self._frames_out.close()
            with self._turns:
                self._turns.notify_all()

    # -- capture thread -------------------------------------------------------------------------------------
    def _reconnect(self) -> bool:
        delay = self.backoff[0]
        while not self._stop.is_set():
            if self.max_reconnects is not None and self.stats.reconnects >= self.max_reconnects:
                return False
            self.stats.reconnects += 1
            log.warning("source %s lost; reconnecting in %.1f s (attempt %d)", self.source.name, delay,
                        self.stats.reconnects)
            if self._stop.wait(delay):
                return False
            try:
                self.source.open()
                log.warning("source %s reconnected", self.source.name)
                return True
            except Exception as e:  # noqa: BLE001 - any open failure means: wait longer and retry
                log.warning("source %s: reconnect failed (%s)", self.source.name, e)
                delay = min(delay * 2, self.backoff[1])
        return False

    def _capture(self) -> None:
        timer, index, start = self.stylizer.timer, 0, time.perf_counter()
        pace = 1.0 / self.source.fps if self.realtime and not self.source.live else 0.0
        try:
            while not self._stop.is_set() and (self.max_frames is None or index < self.max_frames):
                if pace and self._stop.wait(max(0.0, start + index * pace - time.perf_counter())):
                    break
                t0 = time.perf_counter()
                image = self.source.read()
                if image is None:
                    if self.source.live and self._reconnect():
                        continue
                    break
                timer.add("read", (time.perf_counter() - t0) * 1e3)
                name = getattr(self.source, "last_name", None)
                if not self._frames_in.put(Frame(image, index, time.perf_counter(), name=name)):
                    return
                index += 1
            if index == self.max_frames:
                self.stats.stop_reason = self.stats.stop_reason or f"frame limit {index} reached"
        except Exception as e:  # noqa: BLE001 - reported, then the pipeline ends cleanly
            log.error("capture failed: %s", e)
            self.stats.stop_reason = f"capture failed: {e}"
        self._frames_in.put(_END)

    # -- output thread --------------------------------------------------------------------------------------
    def _output(self) -> None:
        timer = self.stylizer.timer
        while True:
            item = self._frames_out.get()
            if item is _END or item is None:
                break
            view, frame = item
            t0 = time.perf_counter()
            try:
                for sink in self.sinks:
                    sink.write(view, frame)
            except StopPipeline as e:
                log.warning("%s", e)
                self.stop(str(e))
                break
            except Exception as e:  # noqa: BLE001 - a failing sink ends the run; it must not hang it
                log.error("output failed: %s: %s", type(sink).__name__, e)
                self.stop(f"output failed: {type(sink).__name__}: {e}")
                break
            now = time.perf_counter()
            timer.add("write", (now - t0) * 1e3)
            timer.add("latency", (now - frame.t_capture) * 1e3)
            self.stats.frames += 1
            if self.controls is not None:
                self.controls.take_screenshot(view)
                if self.controls.quit_requested:
                    self.stop("quit")
                    break

    def _label(self) -> str:
        s, mix = self.stylizer, self.stylizer.mix
        return (f"{s.style} {s.strength:.1f}" + (f" + {mix[0]} {mix[1]:.1f}" if mix else "")
                + (f" smooth {s.smoothing:.1f}" if s.smoothing else "") + (f" @{s.scale:g}x" if s.scale != 1 else ""))

    # -- workers (inference) --------------------------------------------------------------------------------
    def _stylize_frames(self, stylizer: Stylizer) -> None:
        """One worker: take a frame, stylize it, hand it to the output when the frames taken before it are there."""
        while not self._stop.is_set():
            with self._taking:
                frame = self._frames_in.get(timeout=0.5)
                if frame is None:
                    continue
                if frame is _END:
                    self._frames_in.put(_END)  # for the other workers
                    return
                turn, self._taken = self._taken, self._taken + 1
            original = self.controls is not None and self.controls.show_original
            t = time.perf_counter()
            frame.stylized = frame.image if original else stylizer.stylize(frame.image)
            if self.fit is not None and not original:
                self.fit.observe(stylizer, (time.perf_counter() - t) * 1e3)
            label = self._label() if self.overlay else None
            view = compose(frame, self.side_by_side, label, original)
            with self._turns:
                self._turns.wait_for(lambda: self._handed == turn or self._stop.is_set())
            if self._stop.is_set() or not self._frames_out.put((view, frame)):
                return
            with self._turns:
                self._handed += 1
                self._turns.notify_all()

    def _worker_thread(self, stylizer: Stylizer) -> None:
        try:
            self._stylize_frames(stylizer)
        except Exception as e:  # noqa: BLE001 - raised again by run(), in the caller's thread
            self._error = self._error or e
            self.stop(f"stylize failed: {e}")

    def run(self) -> PipelineStats:
        keep_freed_memory()  # a frame loop frees its buffers every frame
        t0 = time.perf_counter()
        threads = [threading.Thread(target=self._capture, name="stylecam-capture", daemon=True),
                   threading.Thread(target=self._output, name="stylecam-output", daemon=True)]
        workers = [threading.Thread(target=self._worker_thread, args=(s,), name=f"stylecam-worker-{i}", daemon=True)
                   for i, s in enumerate(self.stylizers[1:], 1)]
        for t in threads + workers:
            t.start()
        try:
            self._stylize_frames(self.stylizers[0])  # in the caller's thread: Ctrl-C and its errors land here
            for t in workers:
                t.join()
            if self._error is not None:
                raise self._error
            self._frames_out.put(_END)
            threads[1].join()
        except KeyboardInterrupt:
            self.stop("interrupted")
        finally:
            self.stop(self.stats.stop_reason or "end of source")
            for t in threads + workers:
                t.join(timeout=5.0)
            self.source.close()
            for copy in self.stylizers[1:]:  # the workers' copies are the pipeline's; the stylizer is the caller's
                copy.close()
            for sink in self.sinks:
                try:
                    sink.close()
                except Exception as e:  # noqa: BLE001 - one sink failing to close must not lose the others
                    log.error("closing %s failed: %s", type(sink).__name__, e)
            self.stats.dropped = self._frames_in.dropped + self._frames_out.dropped
            self.stats.seconds = time.perf_counter() - t0
        return self.stats


def stream(source, style="candy", *, strength: float = 1.0, backend: str = "auto", **pipeline_options):
    """Iterate over stylized frames: ``for frame in stylecam.stream(0, style="wave"): ...``.

    The pipeline runs in a background thread; leaving the loop stops it and releases the source.
    """
    import queue

    stylizer = style if isinstance(style, Stylizer) else Stylizer(style, backend=backend, strength=strength)
    frames: queue.Queue = queue.Queue(maxsize=2)
    closed, done = threading.Event(), object()

    def offer(item) -> None:  # blocks while the consumer is behind, gives up once it has left
        while not closed.is_set():
            try:
                frames.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    pipeline = Pipeline(source, stylizer, [CallbackSink(offer)], **pipeline_options)

    def run():
        try:
            pipeline.run()
        finally:
            offer(done)

    worker = threading.Thread(target=run, name="stylecam-stream", daemon=True)
    worker.start()
    try:
        while (item := frames.get()) is not done:
            yield item
    finally:
        closed.set()
        pipeline.stop("iterator closed")
        worker.join(timeout=5.0)
        if stylizer is not style:  # made here: its backend is freed here
            stylizer.close()
