"""Small PyAV helpers the synthesizer needs: probe a source, decode frames, materialize a needle.

Materialization copies the sources' decoded YUV planes into a *lossless* H.264 stream (``qp=0``),
so a candidate decoded from the materialized mp4 is bit-identical to the same candidate decoded
from its source: feature-space composition and encoding the materialized video then agree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from tspo.errors import TSPOError


class SourceError(TSPOError, ValueError):
    """A source video is missing, unreadable or has no video frames."""


@dataclass
class SourceInfo:
    path: str
    duration_s: float
    fps: float
    num_frames: int
    width: int
    height: int


def probe_source(path: str | Path) -> SourceInfo:
    """Duration (seconds), frame rate and size of a video file; :class:`SourceError` if unusable."""
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"source video {path} does not exist")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise SourceError(f"{path} has no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 0)
            frames = int(stream.frames or 0)
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration:
                duration = container.duration / 1e6
            else:
                duration = frames / fps if fps else 0.0
            if not frames and fps:
                frames = int(round(duration * fps))
            width, height = stream.codec_context.width, stream.codec_context.height
    except SourceError:
        raise
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise SourceError(f"{path} is not a readable video ({exc})") from None
    if fps <= 0 or frames <= 0 or duration <= 0:
        raise SourceError(f"{path} has no decodable frames (fps={fps}, frames={frames}, duration={duration})")
    return SourceInfo(str(path), duration, fps, frames, width, height)


def grid_steps(duration_s: float, fps: float) -> int:
    """How many whole candidate steps of ``1/fps`` fit in ``duration_s`` (the usable grid length)."""
    return int(math.floor(duration_s * fps + 1e-6))


def read_source_frames(path: str | Path, frame_indices: Sequence[int], fmt: str = "rgb24") -> list[np.ndarray]:
    """Decode the frames with the given indices (any order, repeats allowed) in one pass.

    Returns arrays in the order asked (``rgb24`` -> uint8[H,W,3]; ``yuv420p`` -> uint8[H*3/2,W]).
    """
    wanted = np.asarray(frame_indices, dtype=np.int64)
    if wanted.size == 0:
        return []
    lookup = set(int(i) for i in wanted)
    got: dict[int, np.ndarray] = {}
    last = int(wanted.max())
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for i, frame in enumerate(container.decode(stream)):
            if i in lookup:
                got[i] = frame.to_ndarray(format=fmt)
            if i >= last:
                break
    missing = sorted(lookup - set(got))
    if missing:
        raise SourceError(f"{path} ended before frame(s) {missing[:5]}; the segment runs past the video")
    return [got[int(i)] for i in wanted]


def segment_frame_plan(segments: Sequence[Mapping], fps_out: float, source_fps: Mapping[str, float]) -> list[tuple[str, np.ndarray]]:
    """For each segment: its source and the source frame indices of its output frames at ``fps_out``.

    Output frame ``n`` of a segment shows composed time ``offset + n / fps_out``, i.e. source time
    ``start_s + n / fps_out`` -> source frame ``floor(time * fps_source)``.
    """
    plan = []
    for seg in segments:
        n = int(round((seg["end_s"] - seg["start_s"]) * fps_out))
        src_t = seg["start_s"] + np.arange(n) / fps_out
        idx = np.floor(src_t * source_fps[seg["source"]] + 1e-6).astype(np.int64)
        plan.append((seg["source"], idx))
    return plan


def materialize(segments: Sequence[Mapping], out_path: str | Path, fps: float | None = None) -> Path:
    """Write a virtual video (segments played back to back) as a lossless H.264 mp4.

    ``fps``: output frame rate (default: the first source's). Every source must have the output's
    frame size; otherwise frames are rescaled and exactness against the sources is lost.
    """
    infos = {s["source"]: probe_source(s["source"]) for s in segments}
    first = infos[segments[0]["source"]]
    fps_out = float(fps or first.fps)
    rate = round(fps_out) if abs(fps_out - round(fps_out)) < 1e-6 else fps_out
    width, height = first.width - first.width % 2, first.height - first.height % 2
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(out_path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "qp": "0"}  # lossless: decoded frames stay bit-identical
        for source, idx in segment_frame_plan(segments, fps_out, {k: v.fps for k, v in infos.items()}):
            info = infos[source]
            same = (info.width, info.height) == (width, height)
            for plane in read_source_frames(source, idx, fmt="yuv420p" if same else "rgb24"):
                if same:
                    frame = av.VideoFrame.from_ndarray(plane, format="yuv420p")
                else:
                    frame = av.VideoFrame.from_ndarray(plane, format="rgb24").reformat(width, height, "yuv420p")
                for packet in stream.encode(frame):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out_path
