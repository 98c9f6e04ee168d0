"""The ``stylecam`` GStreamer element: a ``GstBase.BaseTransform`` that stylizes raw video in place.

    gst-launch-1.0 v4l2src ! videoconvert ! stylecam style=candy strength=0.8 ! videoconvert ! autovideosink

Caps: ``video/x-raw`` in BGR, BGRx, RGB or RGBx, any size and frame rate; the output keeps the input's caps and
timestamps (the frame is rewritten in place). Properties change while the pipeline plays: a new style or mix loads
in the background and is swapped in when ready, and so does another backend or variant, so the stream never
stalls. The latency reported to the pipeline
is the measured stylize time. A style that cannot load at start is an error on the bus; one asked for later is a
warning, and the current style stays.
"""
from __future__ import annotations

import threading

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstBase", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import GLib, GObject, Gst, GstBase, GstVideo  # noqa: E402

import numpy as np  # noqa: E402

FORMATS = {"BGR": (3, [0, 1, 2]), "BGRx": (4, [0, 1, 2]), "RGB": (3, [2, 1, 0]), "RGBx": (4, [2, 1, 0])}
CAPS = Gst.Caps.from_string(f"video/x-raw,format={{{','.join(FORMATS)}}},width=[1,2147483647],"
                            "height=[1,2147483647],framerate=[0/1,2147483647/1]")
RW = GObject.ParamFlags.READWRITE


class StylecamFilter(GstBase.BaseTransform):
    __gstmetadata__ = ("stylecam", "Filter/Effect/Video", "Real-time neural style transfer on raw video frames",
                       "stylecam")
    __gsttemplates__ = (Gst.PadTemplate.new("src", Gst.PadDirection.SRC, Gst.PadPresence.ALWAYS, CAPS),
                        Gst.PadTemplate.new("sink", Gst.PadDirection.SINK, Gst.PadPresence.ALWAYS, CAPS))
    __gproperties__ = {
        "style": (str, "style", "bundled style name or bundle folder", "candy", RW),
        "strength": (float, "strength", "0 = the original frame, 1 = fully stylized", 0.0, 1.0, 1.0, RW),
        "scale": (float, "scale", "the network's resolution relative to the frame (0.5: bigger strokes, ~4x less "
                  "compute)", 0.1, 2.0, 1.0, RW),
        "smoothing": (float, "smoothing", "blend with the flow-warped previous output against flicker", 0.0, 0.95,
                      0.0, RW),
        "backend": (str, "backend", "auto, onnxruntime, tensorrt or torch", "auto", RW),
        "variant": (str, "variant", "auto, fp32, fp16, int8 or int8-cpu", "auto", RW),
        "mix": (str, "mix", "a second style blended in ('' for none)", "", RW),
        "mix-amount": (float, "mix amount", "share of the mix style, 0..1", 0.0, 1.0, 0.5, RW),
    }

    def __init__(self):
        super().__init__()
        self.set_in_place(True)
        self.get_static_pad("src").add_probe(Gst.PadProbeType.QUERY_UPSTREAM | Gst.PadProbeType.PULL,
                                             self._add_latency)
        self.props_ = {"style": "candy", "strength": 1.0, "scale": 1.0, "smoothing": 0.0, "backend": "auto",
                       "variant": "auto", "mix": "", "mix-amount": 0.5}
        self.stylizer = None
        self._swapping = threading.Lock()  # a frame and a swap of the whole stylizer take turns
        self.info = None
        self.stylize_ns = 0  # the median stylize time, reported as latency

    # -- properties -----------------------------------------------------------------------------------------------
    def do_get_property(self, prop):
        return self.props_[prop.name]

    def do_set_property(self, prop, value):
        self.props_[prop.name] = value
        if self.stylizer is None:
            return  # read at start
        if prop.name == "style":
            threading.Thread(target=self._switch, args=(value,), name="stylecam-gst-style").start()
        elif prop.name in ("mix", "mix-amount"):
            threading.Thread(target=self._mix, name="stylecam-gst-mix").start()
        elif prop.name in ("backend", "variant"):
            threading.Thread(target=self._restart, name="stylecam-gst-backend").start()
        elif prop.name in ("strength", "scale", "smoothing"):
            setattr(self.stylizer, prop.name, value)

    def _switch(self, style: str) -> None:
        try:
            self.stylizer.set_style(style)  # loads here, off the streaming thread, then swaps in at once
        except Exception as e:  # noqa: BLE001 - the stream goes on with the current style
            self._warn(f"stylecam: could not switch to style {style!r} ({e}); keeping {self.stylizer.style}")

    def _mix(self) -> None:
        try:
            self.stylizer.set_mix(self.props_["mix"] or None, self.props_["mix-amount"])
        except Exception as e:  # noqa: BLE001
            self._warn(f"stylecam: could not mix in {self.props_['mix']!r} ({e})")

    def _restart(self) -> None:
        """Another backend or variant: a new stylizer made beside the running one, then swapped in."""
        try:
            new = self._new_stylizer()
        except Exception as e:  # noqa: BLE001
            return self._warn(f"stylecam: could not switch to backend {self.props_['backend']!r}, variant "
                              f"{self.props_['variant']!r} ({e}); keeping {self.stylizer.info()['backend']}")
        with self._swapping:
            old, self.stylizer = self.stylizer, new
        old.close()

    def _new_stylizer(self):
        from stylecam.stylizer import Stylizer

        p = self.props_
        style = self.stylizer.style if self.stylizer is not None else p["style"]
        return Stylizer(style, backend=p["backend"], variant=p["variant"], strength=p["strength"], scale=p["scale"],
                        smoothing=p["smoothing"], mix=(p["mix"], p["mix-amount"]) if p["mix"] else None)

    def _warn(self, message: str) -> None:
        self.post_message(Gst.Message.new_warning(self, GLib.Error(message), message))

    # -- lifecycle --------------------------------------------------------------------------------------------------
    def do_start(self):
        p = self.props_
        try:
            self.stylizer = self._new_stylizer()
        except Exception as e:  # noqa: BLE001 - any load failure is the pipeline's error, with its reason
            message = f"stylecam: cannot start with style {p['style']!r}: {e}"
            self.post_message(Gst.Message.new_error(self, GLib.Error(message), message))
            return False
        return True

    def do_stop(self):
        if self.stylizer is not None:
            self.stylizer.close()
            self.stylizer = None
        return True

    def do_set_caps(self, incaps, outcaps):
        self.info = GstVideo.VideoInfo.new_from_caps(incaps)
        return self.info is not None

    def _add_latency(self, pad, probe):
        """After upstream has answered a LATENCY query through our source pad: our stylize time added to it.
        (A probe, as PyGObject cannot override BaseTransform's query vfunc: Element has one of the same name.)"""
        query = probe.get_query()
        if query is not None and query.type == Gst.QueryType.LATENCY:
            live, lo, hi = query.parse_latency()
            query.set_latency(live, lo + self.stylize_ns, hi if hi == Gst.CLOCK_TIME_NONE else hi + self.stylize_ns)
        return Gst.PadProbeReturn.OK

    # -- frames ------------------------------------------------------------------------------------------------------
    def do_transform_ip(self, buf):
        info = self.info
        channels, order = FORMATS[info.finfo.name]
        h, w, stride = info.height, info.width, info.stride[0]
        ok, mapped = buf.map(Gst.MapFlags.READ)
        if not ok:
            return Gst.FlowReturn.ERROR
        try:
            data = np.frombuffer(mapped.data, np.uint8, count=stride * (h - 1) + w * channels).copy()
        finally:
            buf.unmap(mapped)
        frame = np.lib.stride_tricks.as_strided(data, (h, w, channels), (stride, channels, 1))
        t = Gst.util_get_timestamp()
        try:
            with self._swapping:
                out = self.stylizer.stylize(np.ascontiguousarray(frame[:, :, order]))
        except Exception as e:  # noqa: BLE001 - the pipeline's error, not a crash of its process
            message = f"stylecam: stylizing a {w}x{h} {info.finfo.name} frame failed: {e}"
            self.post_message(Gst.Message.new_error(self, GLib.Error(message), message))
            return Gst.FlowReturn.ERROR
        self._observe(Gst.util_get_timestamp() - t)
        frame[:, :, order] = out  # the x byte and any row padding stay as they came
        buf.fill(0, data.tobytes())
        return Gst.FlowReturn.OK

    def _observe(self, ns: int) -> None:
        """A running median-ish estimate of the stylize time; a change over 20 % re-announces the latency."""
        old = self.stylize_ns
        self.stylize_ns = ns if not old else int(0.9 * old + 0.1 * ns)
        if not old or abs(self.stylize_ns - old) > 0.2 * old:
            self.post_message(Gst.Message.new_latency(self))


GObject.type_register(StylecamFilter)


def register() -> bool:
    """Register the element in this process (``Gst.init`` first): what a Python program embedding GStreamer calls
    instead of setting ``GST_PLUGIN_PATH``."""
    return Gst.Element.register(None, "stylecam", Gst.Rank.NONE, StylecamFilter)
