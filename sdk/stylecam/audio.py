"""A video's sound, kept: OpenCV reads and writes pictures only, so a stylized clip would come out silent.

With PyAV (``pip install 'stylecam[av]'``), ``keep_audio`` copies the input's audio streams into the stylized
video packet for packet, without re-encoding, cut at the video's length and aligned with its first frame. A
codec the output's container cannot hold (PCM in MP4) is re-encoded to AAC. The video's own packets are copied
too, so the pictures are not encoded twice.
"""
from __future__ import annotations

import heapq
import logging
import os
from fractions import Fraction
from pathlib import Path

log = logging.getLogger("stylecam")


def pyav():
    """PyAV, or None where it is not installed."""
    try:
        import av
    except ImportError:
        return None
    return av


def keep_audio(source: str | os.PathLike, video: str | os.PathLike) -> int:
    """Copy ``source``'s audio into ``video`` (which a sink wrote from its frames), in place; returns the number of
    audio streams copied. The file is replaced only once the new one is complete."""
    av = pyav()
    if av is None:
        raise RuntimeError("copying the sound needs PyAV: pip install 'stylecam[av]' (or: pip install av)")
    video = Path(video)
    partial = video.with_name(f".{video.stem}.audio{video.suffix}")
    with av.open(str(source)) as src:
        if not src.streams.audio:  # a silent source: the video is left as it is, unopened
            return 0
        try:
            with av.open(str(video)) as pictures, av.open(str(partial), "w") as out:
                copied = _mux(av, src, pictures, out)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    if copied:
        os.replace(partial, video)
    else:
        partial.unlink(missing_ok=True)
    return copied


def _mux(av, src, pictures, out) -> int:
    if not pictures.streams.video:
        return 0
    picture_in = pictures.streams.video[0]
    picture_out = out.add_stream_from_template(picture_in)
    duration = _seconds(picture_in.duration, picture_in.time_base) or (
        pictures.duration / av.time_base if pictures.duration else None)
    start = _seconds(src.streams.video[0].start_time, src.streams.video[0].time_base) if src.streams.video else 0.0
    tracks = [_Track(av, stream, out, start or 0.0, duration) for stream in src.streams.audio]
    out.start_encoding()  # the header: a codec the container cannot hold fails here, before any packet
    pictures_packets = ((p, picture_out) for p in pictures.demux(picture_in) if p.dts is not None)
    by_index = {track.stream.index: track for track in tracks}
    sound = (pair for packet in src.demux(*(t.stream for t in tracks))  # one pass: a demuxer reads the whole file
             for pair in by_index[packet.stream.index].convert(packet))
    for packet, stream in heapq.merge(pictures_packets, sound, key=lambda ps: float(ps[0].dts * ps[0].time_base)):
        packet.stream = stream
        out.mux(packet)
    for track in tracks:
        for packet in track.flush():
            out.mux(packet)
    return len(tracks)


def _seconds(value, time_base) -> float | None:
    return None if value is None else float(value * time_base)


class _Track:
    """One audio stream of the source: copied where the output's container takes its codec, else re-encoded to
    AAC; shifted so that the source's first video frame is at 0, and cut at ``duration`` seconds."""

    def __init__(self, av, stream, out, start: float, duration: float | None):
        self.stream, self.start, self.duration = stream, start, duration
        self.resampler, self.samples = None, 0
        if stream.codec_context.name in out.supported_codecs:
            self.target = out.add_stream_from_template(stream)
        else:
            log.info("%s audio cannot go into a %s file as it is: re-encoded to AAC", stream.codec_context.name,
                     out.format.name)
            self.target = out.add_stream("aac", rate=stream.codec_context.sample_rate)
            self.target.layout = stream.codec_context.layout
            self.resampler = av.AudioResampler(format="fltp", layout=stream.codec_context.layout,
                                             rate=stream.codec_context.sample_rate)
        self.shift = round(start / stream.time_base) if start else 0

    def _keep(self, t: float | None) -> bool:
        return t is not None and t >= self.start and (self.duration is None or t - self.start < self.duration)

    def convert(self, packet):
        """(packet, output stream) pairs for one of the source's packets: none outside the video's time."""
        if packet.dts is None or not self._keep(_seconds(packet.pts, packet.time_base)):
            return
        if self.resampler is None:
            packet.pts -= self.shift
            packet.dts -= self.shift
            yield packet, self.target
            return
        for frame in packet.decode():
            for resampled in self.resampler.resample(frame):
                resampled.pts, resampled.time_base = self.samples, Fraction(1, resampled.sample_rate)
                self.samples += resampled.samples  # numbered from 0: the first kept sample is at the video's start
                yield from ((p, self.target) for p in self.target.encode(resampled))

    def flush(self):
        return self.target.encode(None) if self.resampler is not None else []

