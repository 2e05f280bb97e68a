"""Candidate frames of a video: which frames, at which seconds, decoded small and in chunks.

A *video* is a file path or a *virtual video*: a list of ``{"source", "start_s", "end_s"}``
segments played back to back (needle-in-a-haystack samples), so 10–60 minute
training videos cost no disk. Candidates are *sampled* on a fixed grid of the (composed) timeline,
``t_i = i / fps``; each takes the source frame whose presentation time (pts) is nearest (ties: the
earlier frame), and is *reported* at that frame's presentation time on the timeline, not at the
grid time: on a 29.97 fps file the candidate for 1 s is frame 30, shown at 1.001 s (frame 29 is at
0.968 s). Variable-frame-rate files are right for the same reason. Frames are decoded by decord at the encoder's size
(``size`` on the short side, centre-cropped square), ``chunk_size`` at a time: a full-resolution
video is never held in memory.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import numpy as np

from tspo.errors import TSPOError
from tspo.settings import DEFAULT_FPS

VideoLike = str | os.PathLike | Sequence[Mapping]


class VideoError(TSPOError, ValueError):
    """A video that cannot be used: missing, not a video, corrupt, no frames, audio-only."""


# A segment may end this far (or one frame, if longer) past its source's video stream: clamped, warned.
END_SLACK_S = 0.1


@dataclass(frozen=True)
class VideoInfo:
    path: str
    num_frames: int
    fps: float
    duration_s: float
    width: int
    height: int


@dataclass
class Candidates:
    """Candidate frames of one video. ``T`` candidates; times in seconds, indices in frames."""

    frame_indices: np.ndarray  # int64[T] frame index in the source file of each candidate
    timestamps_s: np.ndarray  # float64[T] presentation time (s) of each candidate's frame on the (composed) timeline
    frames: np.ndarray | None  # uint8[T, H, W, 3] or None
    duration_s: float
    segment_ids: np.ndarray | None = None  # int64[T] segment of each candidate (virtual videos)

    def __len__(self) -> int:
        return int(self.timestamps_s.shape[0])


@dataclass(frozen=True)
class _Segment:
    source: str
    start_s: float
    end_s: float


def _check_path(path: str | os.PathLike) -> str:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise VideoError(f"video file {path!r} does not exist; check the path (relative paths resolve from {os.getcwd()!r})")
    if os.path.isdir(path):
        raise VideoError(f"video {path!r} is a directory; pass a video file")
    if os.path.getsize(path) == 0:
        raise VideoError(f"video file {path!r} is empty (0 bytes)")
    return path


def _probe_streams(path: str) -> float | None:
    """Tell apart 'not a media file', 'audio only' and 'no frames' before decord sees the file.

    Returns the duration (s) the file *declares* for its video, when it declares one, so the
    caller can catch a truncated file that still opens (the decodable part is shorter).
    """
    import av

    try:
        with av.open(path) as container:
            if not container.streams.video:
                kinds = sorted({s.type for s in container.streams}) or ["none"]
                raise VideoError(
                    f"{path!r} has no video stream (streams: {', '.join(kinds)}); an audio-only file cannot be sampled"
                )
            stream = container.streams.video[0]
            declared = None
            if stream.duration is not None and stream.time_base is not None:
                declared = float(stream.duration * stream.time_base)
            elif container.duration is not None and len(container.streams) == 1:
                # Only trusted without other streams: an audio track may outlast the video.
                declared = container.duration / 1_000_000
            if next(container.decode(video=0), None) is None:
                raise VideoError(f"{path!r} has a video stream but zero decodable frames")
            return declared
    except VideoError:
        raise
    except Exception as err:  # av raises many InvalidDataError flavours
        raise VideoError(f"{path!r} is not a readable video file ({type(err).__name__}: {err})") from err


@lru_cache(maxsize=16)
def _reader(path: str, width: int, height: int, mtime_ns: int):
    """A decord reader per (file, decode size); cached because virtual videos revisit sources."""
    import decord

    try:
        return decord.VideoReader(path, ctx=decord.cpu(0), width=width, height=height, num_threads=1)
    except Exception as err:
        raise VideoError(f"{path!r} could not be opened for decoding; it may be truncated or corrupt ({err})") from err


_INHERITED_READERS: list = []


def _forget_readers_after_fork() -> None:
    # A forked child (a DataLoader decode worker) inherits the parent's open readers but not their
    # decoding threads: using one hangs, and so would freeing one. Keep them alive, never used.
    global _reader
    _INHERITED_READERS.append(_reader)
    _reader = lru_cache(maxsize=16)(_reader.__wrapped__)


os.register_at_fork(after_in_child=_forget_readers_after_fork)


@lru_cache(maxsize=64)
def _probe_cached(path: str, mtime_ns: int) -> tuple[VideoInfo, np.ndarray]:
    import decord

    declared = _probe_streams(path)
    # A throw-away native-size reader: kept open, its index and buffers cost hundreds of MB on
    # long videos while the small decoding reader works.
    try:
        reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
    except Exception as err:
        raise VideoError(f"{path!r} could not be opened for decoding; it may be truncated or corrupt ({err})") from err
    num = len(reader)
    if num == 0:
        raise VideoError(f"{path!r} has a video stream but zero decodable frames")
    pts = np.asarray(reader.get_frame_timestamp(range(num)), dtype=np.float64)
    fps = float(reader.get_avg_fps())
    height, width = reader[0].shape[:2]
    del reader
    end = float(pts[-1, 1]) if pts[-1, 1] > pts[-1, 0] else float(pts[-1, 0]) + 1.0 / max(fps, 1e-6)
    if declared is not None and declared - end > max(1.0, 0.05 * declared):
        raise VideoError(
            f"{path!r} declares {declared:.1f} s of video but only {end:.1f} s can be decoded; the file is "
            "truncated or corrupt (re-download or re-encode it)"
        )
    return VideoInfo(path, num, fps, end, int(width), int(height)), pts[:, 0].copy()


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Frame count, average fps, duration (s) and size of a video file, or a clear :class:`VideoError`."""
    path = _check_path(path)
    return _probe_cached(path, os.stat(path).st_mtime_ns)[0]


def candidate_times(duration_s: float, fps: float = DEFAULT_FPS, max_candidates: int | None = None) -> np.ndarray:
    """Candidate times on a timeline of ``duration_s`` seconds: float64[T].

    ``t_i = i / fps`` for every ``t_i < duration_s``; when more than ``max_candidates``, an evenly
    spaced subset of exactly ``max_candidates`` grid points (so candidates stay on the grid).
    """
    if not (isinstance(fps, int | float) and math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps (candidates per second) must be a positive number, got {fps!r}")
    if max_candidates is not None and (not isinstance(max_candidates, int) or max_candidates <= 0):
        raise ValueError(f"max_candidates must be a positive int or None, got {max_candidates!r}")
    if not duration_s > 0:
        raise ValueError(f"duration_s must be positive, got {duration_s!r}")
    count = max(1, math.ceil(duration_s * fps - 1e-9))
    return even_positions(count, max_candidates) / fps


def even_positions(count: int, cap: int | None) -> np.ndarray:
    """int64[min(count, cap)]: evenly spaced, ascending positions into a grid of ``count`` points (all
    of them when ``cap`` is None or not smaller): the one rule for capping a candidate grid."""
    if cap is None or count <= cap:
        return np.arange(count, dtype=np.int64)
    return np.linspace(0, count - 1, cap).round().astype(np.int64)


def _segments(video: VideoLike) -> list[_Segment]:
    if isinstance(video, str | os.PathLike):
        path = _check_path(video)
        return [_Segment(path, 0.0, probe_video(path).duration_s)]
    if isinstance(video, Mapping) or not isinstance(video, Sequence) or len(video) == 0:
        raise VideoError(
            "video must be a file path or a non-empty list of segments {'source', 'start_s', 'end_s'}, "
            f"got {type(video).__name__}"
        )
    segments = []
    for i, seg in enumerate(video):
        if not isinstance(seg, Mapping) or not {"source", "start_s", "end_s"} <= set(seg):
            raise VideoError(f"segment {i} of the virtual video must have keys source, start_s, end_s; got {seg!r}")
        source = _check_path(seg["source"])
        start, end = float(seg["start_s"]), float(seg["end_s"])
        info = probe_video(source)
        if not (0 <= start < end):
            raise VideoError(f"segment {i} ({source!r}) needs 0 <= start_s < end_s, got [{start}, {end}]")
        if end > info.duration_s + 1e-3:
            # Container durations (audio included) often run a frame past the video stream's end.
            slack = max(1.0 / info.fps if info.fps > 0 else 0.0, END_SLACK_S)
            if end > info.duration_s + slack:
                raise VideoError(
                    f"segment {i} ends at {end:.3f} s but {source!r} lasts {info.duration_s:.3f} s (video stream); "
                    "cut it inside the source"
                )
            warnings.warn(
                f"segment {i} ends at {end:.3f} s, {end - info.duration_s:.3f} s after the video stream of {source!r} "
                f"({info.duration_s:.3f} s); using {info.duration_s:.3f} s",
                stacklevel=3,
            )
            end = info.duration_s
            if not start < end:
                raise VideoError(f"segment {i} ({source!r}) starts at {start:.3f} s, at or after the video's end")
        segments.append(_Segment(source, start, end))
    return segments


def nearest_frames(pts: np.ndarray, times_s: np.ndarray, lo: int = 0, hi: int | None = None) -> np.ndarray:
    """int64[n]: the frame whose presentation time ``pts`` float64[N] (s, ascending) is nearest each of
    ``times_s`` float64[n], among frames ``lo .. hi-1``; a tie goes to the earlier frame."""
    hi = len(pts) if hi is None else hi
    t = np.asarray(times_s, dtype=np.float64)
    after = np.clip(np.searchsorted(pts[lo:hi], t, side="left") + lo, lo, hi - 1)   # first frame at or after t
    before = np.clip(after - 1, lo, hi - 1)
    return np.where(np.abs(pts[after] - t) < np.abs(t - pts[before]), after, before).astype(np.int64)


def _locate(
    video: VideoLike, timestamps_s: np.ndarray
) -> tuple[list[_Segment], np.ndarray, np.ndarray, float, np.ndarray]:
    """Map timeline seconds to (segment id, source frame index, that frame's presentation time on the
    timeline): int64[T], int64[T], float64[T], and the duration.

    The frame is the one nearest in presentation time, among the frames a segment shows: from the one on
    screen at its ``start_s`` to the last one presented before its ``end_s``. A frame presented before the
    cut is reported at the cut (where the timeline starts showing it)."""
    segments = _segments(video)
    lengths = np.array([s.end_s - s.start_s for s in segments])
    offsets = np.concatenate([[0.0], np.cumsum(lengths)])
    duration = float(offsets[-1])
    times = np.asarray(timestamps_s, dtype=np.float64)
    if times.size and (times.min() < 0 or times.max() >= duration + 1e-9):
        raise ValueError(f"timestamps must lie in [0, {duration:.3f}) seconds, got [{times.min()}, {times.max()}]")
    seg_ids = np.clip(np.searchsorted(offsets, times, side="right") - 1, 0, len(segments) - 1)
    starts = np.array([s.start_s for s in segments])
    source_times = starts[seg_ids] + (times - offsets[seg_ids])
    frame_idx = np.empty(times.shape, dtype=np.int64)
    shown = np.empty(times.shape, dtype=np.float64)
    for sid in np.unique(seg_ids):  # one vectorised lookup per segment, not per frame
        seg = segments[sid]
        pts = _probe_cached(seg.source, os.stat(seg.source).st_mtime_ns)[1]
        lo = max(int(np.searchsorted(pts, seg.start_s + 1e-6, side="right")) - 1, 0)   # on screen at start_s
        hi = max(int(np.searchsorted(pts, seg.end_s - 1e-9, side="left")), lo + 1)      # presented before end_s
        sel = seg_ids == sid
        frame_idx[sel] = nearest_frames(pts, source_times[sel], lo, hi)
        shown[sel] = offsets[sid] + np.clip(pts[frame_idx[sel]] - seg.start_s, 0.0, lengths[sid])
    return segments, seg_ids.astype(np.int64), frame_idx, duration, shown


def _decode_size(
    info: VideoInfo, size: int | tuple[int, int] | None, crop: bool = True
) -> tuple[int, int, tuple[int, int] | None]:
    """decord (width, height) keeping aspect with the short side at ``size``, and the crop (h, w)
    (``None``: no crop — the whole frame, e.g. for a video LLM that reads full frames). Whole
    frames are never upscaled: a source whose short side is already <= ``size`` stays native."""
    if size is None or (not crop and isinstance(size, int) and 0 < min(info.width, info.height) <= size):
        return -1, -1, None
    if isinstance(size, int):
        if size <= 0:
            raise ValueError(f"size must be a positive int or (height, width), got {size!r}")
        scale = size / min(info.width, info.height)
        width = max(size, round(info.width * scale))
        height = max(size, round(info.height * scale))
        return width, height, (size, size) if crop else None
    height, width = (int(v) for v in size)
    if height <= 0 or width <= 0:
        raise ValueError(f"size must be positive, got {size!r}")
    return width, height, None


def _decode(
    source: str, frame_idx: np.ndarray, size, chunk_size: int, crop: bool = True
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (positions within ``frame_idx``, uint8[n, H, W, 3]) chunks, decoding in frame order."""
    info = probe_video(source)
    width, height, crop = _decode_size(info, size, crop)
    mtime = os.stat(source).st_mtime_ns
    reader = _reader(source, width, height, mtime)
    rescale = False
    order = np.argsort(frame_idx, kind="stable")
    for lo in range(0, len(order), chunk_size):
        pos = order[lo : lo + chunk_size]
        indices = frame_idx[pos].tolist()
        if not rescale:
            try:
                batch = _get_batch(reader, indices, source)
            except VideoError as err:
                if width <= 0 or "must exactly match" not in str(err.__cause__):
                    raise
                # decord's scaler rejects some output sizes: decode natively, resize in torch.
                rescale, reader = True, _reader(source, -1, -1, mtime)
        if rescale:
            batch = _resize_to(_get_batch(reader, indices, source), (height, width))
        if crop is not None:
            top = (batch.shape[1] - crop[0]) // 2
            left = (batch.shape[2] - crop[1]) // 2
            batch = batch[:, top : top + crop[0], left : left + crop[1]]
        yield pos, batch


def _get_batch(reader, indices: list[int], source: str) -> np.ndarray:
    try:
        return reader.get_batch(indices).asnumpy()
    except Exception as err:
        raise VideoError(
            f"decoding frames {min(indices)}..{max(indices)} of {source!r} failed; "
            f"the file is probably truncated or corrupt ({err})"
        ) from err


def iter_frames_at(
    video: VideoLike,
    timestamps_s: np.ndarray,
    size: int | tuple[int, int] | None = 224,
    chunk_size: int = 32,
    crop: bool = True,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Decode the frames shown at ``timestamps_s`` (seconds), chunk by chunk.

    Yields ``(positions int64[n], frames uint8[n, H, W, 3])`` where positions index into
    ``timestamps_s``; chunks come in decode order, so callers scatter by position. ``size`` as in
    :func:`sample_candidates`; ``crop=False`` with an int size keeps the whole frame (short side
    at ``size``, aspect ratio kept), as a video LLM should see it.
    """
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    segments, seg_ids, frame_idx, _, _ = _locate(video, timestamps_s)
    for sid in np.unique(seg_ids):
        members = np.flatnonzero(seg_ids == sid)
        for pos, frames in _decode(segments[sid].source, frame_idx[members], size, chunk_size, crop):
            yield members[pos], frames


def _resize_to(frames: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize uint8[n, h, w, 3] -> uint8[n, H, W, 3] (mixed-aspect virtual videos)."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=shape, mode="bilinear", align_corners=False, antialias=True)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def read_frames_at(
    video: VideoLike, timestamps_s: np.ndarray, size: int | tuple[int, int] | None = 224, crop: bool = True
) -> np.ndarray:
    """The frames shown at ``timestamps_s`` (seconds, float[k]) as uint8[k, H, W, 3].

    ``crop=False`` keeps whole frames (short side at ``size``); when the sources of a virtual
    video differ in aspect ratio, later frames are resized to the first one's shape so the
    result is one array.
    """
    out = None
    for pos, frames in iter_frames_at(video, np.asarray(timestamps_s, dtype=np.float64), size, crop=crop):
        if out is None:
            out = np.empty((len(timestamps_s), *frames.shape[1:]), dtype=np.uint8)
        if frames.shape[1:] != out.shape[1:]:
            frames = _resize_to(frames, out.shape[1:3])
        out[pos] = frames
    if out is None:
        raise ValueError("timestamps_s is empty; nothing to read")
    return out


def source_frame_indices(video: VideoLike, timestamps_s: np.ndarray) -> np.ndarray:
    """int64[k]: the source frame taken for each of ``timestamps_s`` (seconds on the timeline): the one
    nearest in presentation time."""
    return _locate(video, np.asarray(timestamps_s, dtype=np.float64))[2]


def presentation_times(video: VideoLike, timestamps_s: np.ndarray) -> np.ndarray:
    """float64[k]: when the frame taken for each of ``timestamps_s`` (seconds) is really presented, in
    seconds on the (composed) timeline: what to tell a video LLM about the frame. Idempotent."""
    return _locate(video, np.asarray(timestamps_s, dtype=np.float64))[4]


def write_frames(path: str | os.PathLike, frames: Iterable[np.ndarray], rate: int | float | Fraction,
                 codec: str = "libx264", options: Mapping[str, str] | None = None) -> Path:
    """The one video writer: uint8[H, W, 3] RGB frames (or [n, H, W, 3] chunks) -> a file at ``rate``
    frames per second, yuv420p. ``options``: encoder options (default ``preset=ultrafast, crf=18``
    for libx264). Frame size comes from the first frame and must be even (4:2:0 chroma)."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if options is None:
        options = {"preset": "ultrafast", "crf": "18"} if codec == "libx264" else {}
    with av.open(str(path), "w") as container:
        stream = None
        for chunk in frames:
            for frame in chunk if chunk.ndim == 4 else chunk[None]:
                if stream is None:
                    stream = container.add_stream(codec, rate=rate)
                    stream.height, stream.width = frame.shape[:2]
                    stream.pix_fmt, stream.options = "yuv420p", dict(options)
                packet = stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24"))
                container.mux(packet)
        if stream is None:
            raise ValueError(f"no frames to write to {str(path)!r}")
        container.mux(stream.encode())
    return path


def read_whole_frames(video: VideoLike, timestamps_s: np.ndarray, size: int | None) -> np.ndarray:
    """Frames handed to a video LLM: float seconds ``[...]`` (any shape, repeats allowed) ->
    uint8[..., H, W, 3], whole (short side ``size`` px, aspect ratio kept, never centre-cropped,
    never upscaled).

    The one fetch of oracle / output frames: every distinct time is decoded once, so a GRPO group's
    overlapping selections, or several methods' picks, cost one read of their union."""
    times = np.asarray(timestamps_s, dtype=np.float64)
    uniq, inverse = np.unique(times, return_inverse=True)
    frames = read_frames_at(video, uniq, size=size, crop=False)
    return frames[inverse.reshape(times.shape)]


def segments_at(video: VideoLike, timestamps_s: np.ndarray) -> tuple[np.ndarray | None, list[str] | None]:
    """Which segment of a virtual video each timeline second falls in: (int64[k] segment ids, the
    source path of each); ``(None, None)`` for a file. No decoding (probes are cached)."""
    if isinstance(video, str | os.PathLike):
        return None, None
    segments, seg_ids, _, _, _ = _locate(video, np.asarray(timestamps_s, dtype=np.float64))
    return seg_ids, [segments[i].source for i in seg_ids]


def video_duration(video: VideoLike) -> float:
    """Length in seconds of a file or of a virtual video (sum of its segments)."""
    return float(sum(s.end_s - s.start_s for s in _segments(video)))


def plan_candidates(
    video: VideoLike, fps: float = DEFAULT_FPS, max_candidates: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Where the candidates of ``video`` are, without decoding anything.

    Returns ``(timestamps_s float64[T], segment_ids int64[T], frame_indices int64[T], duration_s)``:
    the frame nearest each grid point ``i / fps`` and its presentation time (not the grid time).
    Grid points that land on the same source frame (fps above the video's) are kept once.
    """
    times = candidate_times(video_duration(video), fps, max_candidates)
    _, seg_ids, frame_idx, duration, shown = _locate(video, times)
    key = seg_ids * (int(frame_idx.max()) + 1) + frame_idx
    keep = np.concatenate([[True], key[1:] != key[:-1]])
    return shown[keep], seg_ids[keep], frame_idx[keep], duration


def sample_candidates(
    video: VideoLike,
    fps: float = DEFAULT_FPS,
    max_candidates: int | None = None,
    size: int | tuple[int, int] | None = 224,
    return_frames: bool = True,
    chunk_size: int = 32,
) -> Candidates:
    """Candidate frames at ``fps`` per second (capped at ``max_candidates``), decoded at ``size``.

    ``video``: a path or a virtual video (list of segments). Returns :class:`Candidates` with
    ``T`` candidates: source frame indices, timeline seconds and, if ``return_frames``,
    ``uint8[T, size, size, 3]`` frames (short side resized to ``size`` then centre-cropped; a
    ``(height, width)`` tuple resizes exactly; ``None`` keeps the native size).
    """
    times, seg_ids, frame_idx, duration = plan_candidates(video, fps, max_candidates)
    frames = read_frames_at(video, times, size) if return_frames else None
    return Candidates(
        frame_indices=frame_idx,
        timestamps_s=times,
        frames=frames,
        duration_s=duration,
        segment_ids=None if isinstance(video, str | os.PathLike) else seg_ids,
    )


def file_identity(path: str | os.PathLike) -> str:
    """A cheap content identity of a file: its size and a hash of its first and last MiB.

    Hashing whole multi-GB videos on every call would cost more than decoding; size plus head and
    tail catches re-encodes and truncation, which is what invalidates cached features. Memoised
    per (path, size, mtime) so repeated questions about one video only ``stat`` it.
    """
    path = _check_path(path)
    st = os.stat(path)
    return _file_identity(os.path.abspath(path), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=1024)
def _file_identity(path: str, size: int, mtime_ns: int) -> str:
    import hashlib

    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as fh:
        digest.update(fh.read(1 << 20))
        if size > 2 << 20:
            fh.seek(-(1 << 20), os.SEEK_END)
            digest.update(fh.read(1 << 20))
    return digest.hexdigest()[:32]


def whole_frame_shape(height: int, width: int, size: int | np.ndarray | None) -> tuple:
    """(height, width) px of a whole frame handed on at short side ``size`` from a ``height`` x
    ``width`` source: aspect kept, never upscaled (what :func:`read_whole_frames` returns; ``size``
    may be an int array, giving arrays). The rule :func:`_decode_size` applies with ``crop=False``."""
    if size is None:
        return height, width
    s = np.asarray(size, dtype=np.int64)
    short = min(height, width)
    keep = s >= short
    scale = s / short
    h = np.where(keep, height, np.maximum(s, np.round(height * scale))).astype(np.int64)
    w = np.where(keep, width, np.maximum(s, np.round(width * scale))).astype(np.int64)
    return (int(h), int(w)) if h.ndim == 0 else (h, w)


def video_frame_shape(video: VideoLike) -> tuple[int, int]:
    """(height, width) px of the video's frames: a file's, or a virtual video's first source (later
    sources are resized to it when frames are read together, :func:`read_frames_at`)."""
    segments = _segments(video)
    info = probe_video(segments[0].source)
    return info.height, info.width
