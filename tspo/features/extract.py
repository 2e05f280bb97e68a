"""Candidate features at dataset scale: every video decoded and encoded once, across decode
workers, ranks (GPUs) and nodes, into the feature cache that ``tspo train``, ``tspo eval`` and
``tspo select`` read (:mod:`tspo.features.cache` owns the keys, the layout and the atomic writes).

Per rank (:func:`extract_features`):

1. *plan*: the manifest's videos become cache entries (:func:`tspo.features.cache.cache_entries`: a needle
   video on the grid is its sources at the full grid). Each rank keys 1/W of them (a key reads
   2 MiB of each file), entries already whole on disk are skipped (a rerun after a kill finishes
   the rest only), unreadable files are recorded as failed with their reason;
2. *shard*: the missing entries, gathered on every rank, are dealt longest first (file size) to
   the least loaded rank, the same on every rank: each entry goes to exactly one rank of the job;
3. *decode* in ``num_workers`` DataLoader worker processes (each takes every W-th video of the
   rank's list), ``batch_frames`` frames per chunk at the encoder's input size, while
4. the rank's main process *encodes*: chunks of several videos are packed into encoder calls of
   exactly ``batch_frames`` frames (the last call is padded with black frames), so the shapes an
   encoder sees never depend on the sharding, and a frame's features are bit-identical whatever
   the number of ranks and workers;
5. a video whose rows are all encoded is written (temporary file + ``os.replace``): a reader sees
   nothing or a whole entry, never a half-written one. A video that fails to decode, or whose
   frames were in an encoder call that raised, is recorded with its reason and skipped (not
   written: a rerun tries it again); the run goes on.

Decode workers start by ``fork`` on Linux (:func:`worker_start_method`): a spawned worker imports
torch first, seconds of CPU each, which on a few cores cost more than the decoding they save.

Peak memory per rank, frames: at most ``(num_workers * PREFETCH + 2) * batch_frames`` decoded
frames of ``S x S x 3`` bytes (``S`` the encoder's input size; chunks prefetched by the workers,
the pack being filled, the batch being encoded); features: ``T x D`` float32 rows for each video
in flight (at most ``num_workers * PREFETCH + 2`` of them). ViT-L/14 (S = 224) with
``batch_frames=256`` and 8 workers: 18 x 256 x 147 KiB = 0.66 GiB of frames.

Why ``torch.distributed`` (launched by Lightning Fabric for ``--devices`` / ``--num-nodes``, or by
``torchrun`` / SLURM) and not ``Trainer.predict``: training must run the same extraction *inside*
an already running ``Trainer`` (``TSPODataModule.setup``, after DDP has started), where a nested
``Trainer.predict`` cannot run; a loop over one DataLoader under whatever process group exists
serves ``tspo features``, ``tspo train`` and ``tspo eval`` alike. Balancing by work (not by index,
as a ``DistributedSampler`` does) and skipping cached entries need the gathered plan anyway; all
that is asked of the process group is ``all_gather_object`` and ``barrier``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from tspo.features.cache import FeatureCache, VideoFeatures, cache_entries, entry_key
from tspo.settings import DEFAULT_FPS
from tspo.video import VideoLike, iter_frames_at, plan_candidates

logger = logging.getLogger(__name__)

DEFAULT_BATCH_FRAMES = 128
PREFETCH = 2  # chunks each decode worker may hold ready (DataLoader prefetch_factor)


def default_num_workers(local_processes: int = 1) -> int:
    """Decode workers per rank: this node's cores shared by its ``local_processes`` ranks, 1..8."""
    return max(1, min(8, (os.cpu_count() or 1) // max(1, local_processes)))


# -- the process group, or none ---------------------------------------------------------------

@dataclass(frozen=True)
class Ranks:
    """Where this process stands in the job: ``rank`` of ``world``, with the two collectives used."""

    rank: int = 0
    world: int = 1

    @classmethod
    def current(cls) -> Ranks:
        """The initialised ``torch.distributed`` group (Lightning DDP, Fabric, torchrun), else one rank."""
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank."""
        if self.world == 1:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()


# -- plan and shard ---------------------------------------------------------------------------

@dataclass
class Entry:
    """One cache entry to compute: a file (or off-grid virtual video) at ``max_candidates``."""

    key: str
    video: VideoLike
    max_candidates: int | None
    label: str            # printable name (the path; a virtual video's first source + count)
    weight: int           # bytes to decode, for balancing (file size; a virtual video: its sources')
    owners: list[int]     # indices into the caller's video list that need this entry


def _label(video: VideoLike) -> str:
    if isinstance(video, str | os.PathLike):
        return str(video)
    return f"{video[0]['source']} (+{len(video) - 1} segments)" if len(video) > 1 else str(video[0]["source"])


def _weight(video: VideoLike) -> int:
    paths = [video] if isinstance(video, str | os.PathLike) else [s["source"] for s in video]
    return int(sum(os.path.getsize(p) for p in paths))


def plan_entries(videos: Sequence[VideoLike], encoder, cache: FeatureCache, fps: float, max_candidates: int | None,
                 ranks: Ranks = Ranks()) -> tuple[list[Entry], int, list[dict]]:
    """This rank's share of the planning: -> (missing entries, cached count, failures).

    Rank ``r`` keys the distinct videos ``r, r + W, ...`` (in first-seen order); failures are
    ``{"video", "reason", "owners"}``.
    """
    distinct: dict[str, tuple[VideoLike, list[int]]] = {}
    for i, video in enumerate(videos):
        ident = repr(os.fspath(video)) if isinstance(video, str | os.PathLike) else repr(
            [(str(s.get("source")), s.get("start_s"), s.get("end_s")) for s in video])
        distinct.setdefault(ident, (video, []))[1].append(i)
    missing: dict[str, Entry] = {}
    cached: set[str] = set()
    failed: list[dict] = []
    for video, owners in list(distinct.values())[ranks.rank::ranks.world]:
        try:
            for part, cap in cache_entries(video, fps, max_candidates):
                key = entry_key(cache, part, encoder, fps, cap)
                if key in missing:
                    missing[key].owners += owners
                elif key not in cached:
                    if cache.has(key):
                        cached.add(key)
                    else:
                        missing[key] = Entry(key, part, cap, _label(part), _weight(part), list(owners))
        except Exception as err:  # a missing or unreadable file: recorded, the others go on
            failed.append({"video": _label(video) if video else repr(video), "reason": _reason(err), "owners": owners})
    return list(missing.values()), len(cached), failed


def _reason(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def assign(entries: Sequence[Entry], world: int) -> list[list[Entry]]:
    """Entries dealt to ``world`` ranks, longest first to the least loaded (ties: lower rank).

    Deterministic in the entries alone, so every rank computes the same assignment."""
    shards: list[list[Entry]] = [[] for _ in range(world)]
    load = np.zeros(world, dtype=np.int64)
    for e in sorted(entries, key=lambda e: (-e.weight, e.key)):
        r = int(np.argmin(load))
        shards[r].append(e)
        load[r] += max(e.weight, 1)
    return shards


def _merge(parts: Sequence[Sequence[Entry]]) -> list[Entry]:
    """One entry per key across ranks (two paths with the same content are one entry)."""
    merged: dict[str, Entry] = {}
    for part in parts:
        for e in part:
            if e.key in merged:
                merged[e.key].owners = sorted(set(merged[e.key].owners) | set(e.owners))
            else:
                merged[e.key] = dataclasses.replace(e, owners=sorted(set(e.owners)))
    return list(merged.values())


# -- decode (worker processes) ----------------------------------------------------------------

class DecodeStream(IterableDataset):
    """Decoded candidate frames of ``entries``, video after video, in chunks of <= ``chunk`` frames.

    Items: ``{"entry": i, "plan": (times, frame_idx, duration)}`` first, then ``{"entry": i,
    "pos": int64[n], "frames": uint8 tensor [n, S, S, 3]}`` chunks (``pos``: rows of the video;
    frames already at the encoder's input size, as a tensor so that a worker hands them over in
    shared memory rather than through a pipe), or
    ``{"entry": i, "error": reason}`` when the video cannot be decoded (possibly after some chunks).
    With several workers, worker ``w`` of ``W`` decodes entries ``w, w + W, ...``.
    """

    def __init__(self, entries: Sequence[Entry], fps: float, size: int, chunk: int) -> None:
        self.entries, self.fps, self.size, self.chunk = list(entries), fps, size, chunk

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
        for i in range(wid, len(self.entries), nw):
            e = self.entries[i]
            try:
                times, _, frame_idx, duration = plan_candidates(e.video, self.fps, e.max_candidates)
                yield {"entry": i, "plan": (times, frame_idx, duration)}
                for pos, frames in iter_frames_at(e.video, times, self.size, self.chunk):
                    yield {"entry": i, "pos": pos, "frames": torch.from_numpy(np.ascontiguousarray(frames))}
            except Exception as err:  # one bad video never ends the run
                yield {"entry": i, "error": _reason(err)}


def _as_is(item: dict) -> dict:
    return item


def worker_start_method() -> str:
    """How decode workers start: ``fork`` on Linux (milliseconds; :mod:`tspo.video` drops the
    readers a child inherits), else ``spawn`` (each worker imports torch: seconds of CPU)."""
    return "fork" if sys.platform.startswith("linux") else "spawn"


def decode_loader(entries: Sequence[Entry], fps: float, size: int, chunk: int, num_workers: int) -> DataLoader:
    """The :class:`DecodeStream` of ``entries`` in ``num_workers`` processes (0: in this one),
    each holding at most ``PREFETCH`` chunks ready. The extraction engine and its benchmark's
    decode-only floor both read through this."""
    return DataLoader(DecodeStream(entries, fps, size, chunk), batch_size=None, num_workers=num_workers,
                      collate_fn=_as_is, prefetch_factor=PREFETCH if num_workers > 0 else None,
                      multiprocessing_context=worker_start_method() if num_workers > 0 else None)


# -- encode (the rank's main process) ---------------------------------------------------------

@dataclass
class _Open:
    """A video being filled: its plan, its rows so far, and what encoding it cost."""

    times: np.ndarray
    frame_idx: np.ndarray
    duration: float
    features: torch.Tensor | None = None
    filled: int = 0
    frames_encoded: int = 0
    encoder_calls: int = 0
    failed: str | None = None


class Progress:
    """A progress line per rank every ``every_s`` seconds (and at the end): readable in a log file."""

    def __init__(self, ranks: Ranks, total: int, total_weight: int, every_s: float = 10.0, enabled: bool = True,
                 stream=None) -> None:
        self.prefix = f"[features rank {ranks.rank}/{ranks.world}]"
        self.total, self.total_weight, self.every_s, self.enabled = total, max(total_weight, 1), every_s, enabled
        self.stream = stream or sys.stderr
        self.start = self.last = time.perf_counter()

    def update(self, done: int, failed: int, frames: int, weight_done: int, final: bool = False) -> None:
        now = time.perf_counter()
        if not self.enabled or (not final and now - self.last < self.every_s):
            return
        self.last = now
        elapsed = max(now - self.start, 1e-9)
        left = self.total - done - failed
        eta = elapsed * (self.total_weight - weight_done) / weight_done if weight_done and left else 0.0
        print(f"{self.prefix} {done + failed}/{self.total} videos ({failed} failed) · {done / elapsed:.2f} videos/s · "
              f"{frames / elapsed:.1f} frames/s · {'done in' if final else 'ETA'} "
              f"{_clock(elapsed if final else eta)}", file=self.stream, flush=True)


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


@dataclass
class RankReport:
    """What one rank did: entries written, failed, frames and encoder calls (per video too), and
    where its time went (seconds): inside encoder calls, waiting for decoded frames, writing entries."""

    rank: int
    assigned: int = 0
    done: int = 0
    failed: list[dict] = field(default_factory=list)
    frames: int = 0
    encoder_calls: int = 0
    failed_encoder_calls: int = 0
    padded_frames: int = 0
    seconds: float = 0.0
    encode_s: float = 0.0
    decode_wait_s: float = 0.0
    store_s: float = 0.0
    videos: list[dict] = field(default_factory=list)   # {"key", "video", "frames", "encoder_calls"}


@contextlib.contextmanager
def _encoder_threads(encoder, num_workers: int) -> Iterator[None]:
    """On CPU with decode workers: torch's intra-op threads limited to the cores the workers leave
    free, for the extraction only (restored after)."""
    before = torch.get_num_threads()
    if torch.device(getattr(encoder, "device", "cpu")).type == "cpu" and num_workers > 0:
        # The decode workers share these cores: intra-op threads beyond the rest only spin-wait
        # (a small encoder on a busy 2-core machine ran 10x slower with 2 threads than with 1).
        torch.set_num_threads(min(before, max(1, (os.cpu_count() or 1) - num_workers)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def encode_shard(entries: Sequence[Entry], encoder, cache: FeatureCache, fps: float, num_workers: int,
                 batch_frames: int, progress: Progress | None = None,
                 on_stored: Callable[[Entry], None] | None = None, rank: int = 0) -> RankReport:
    """Decode (in ``num_workers`` processes) and encode ``entries`` into ``cache``: one rank's work.

    Encoder calls take exactly ``batch_frames`` frames (the last one padded), mixing videos.
    A video that cannot be decoded, or with frames in an encoder call that raised, is recorded in
    ``RankReport.failed`` with the reason and not written (a rerun tries it again); the rest go on.
    ``on_stored(entry)`` runs after each entry is written (tests interrupt there).
    """
    report = RankReport(rank=rank, assigned=len(entries))
    start = time.perf_counter()
    if not entries:
        return report
    with _encoder_threads(encoder, num_workers):
        _encode_all(entries, encoder, cache, fps, num_workers, batch_frames, progress, on_stored, report)
    report.seconds = time.perf_counter() - start
    return report


def _encode_all(entries: Sequence[Entry], encoder, cache: FeatureCache, fps: float, num_workers: int,
                batch_frames: int, progress: Progress | None, on_stored: Callable[[Entry], None] | None,
                report: RankReport) -> None:
    loader = decode_loader(entries, fps, encoder.image_size, batch_frames, num_workers)
    size = encoder.image_size
    batch = torch.zeros(batch_frames, size, size, 3, dtype=torch.uint8)   # reused: bounded memory
    owners: list[tuple[int, np.ndarray, int]] = []                      # (entry, rows, offset in batch)
    fill = 0
    state: dict[int, _Open] = {}
    closed: set[int] = set()                                             # written or failed: later items ignored
    weight_done = 0
    store = FeatureCache(cache.root, memory_entries=0)

    def finish(i: int) -> None:
        nonlocal weight_done
        st = state.pop(i)
        closed.add(i)
        e = entries[i]
        weight_done += e.weight
        if st.failed is not None:
            report.failed.append({"video": e.label, "reason": st.failed, "owners": e.owners})
            return
        t0 = time.perf_counter()
        store.store(e.key, VideoFeatures(st.features, st.times, st.frame_idx, st.duration))
        report.store_s += time.perf_counter() - t0
        report.done += 1
        report.videos.append({"key": e.key, "video": e.label, "frames": st.frames_encoded,
                              "encoder_calls": st.encoder_calls})
        if on_stored is not None:
            on_stored(e)

    def encode() -> torch.Tensor:
        t0 = time.perf_counter()
        try:
            feats = encoder.encode_frames(batch, batch_size=batch_frames)    # [B, D] float32
            if feats.dim() != 2 or feats.shape[0] != batch_frames:
                raise ValueError(f"the encoder returned shape {tuple(feats.shape)} for {batch_frames} frames, "
                                 f"expected [{batch_frames}, D]")
            return feats
        finally:
            report.encode_s += time.perf_counter() - t0

    def flush() -> None:
        nonlocal fill
        if fill == 0:
            return
        batch[fill:] = 0                                                 # padding: fixed shapes
        members = list(dict.fromkeys(i for i, _, _ in owners))
        report.encoder_calls += 1
        try:
            feats = encode()
        except Exception as err:  # one failing call costs the videos in it, never the run
            reason = f"encoder call failed ({fill} frames of {len(members)} videos): {_reason(err)}"
            logger.warning("%s; those videos are skipped: %s", reason,
                           ", ".join(entries[i].label for i in members))
            report.failed_encoder_calls += 1
            for i in members:
                if i in state and state[i].failed is None:
                    state[i].failed = reason
            feats = None
        else:
            report.frames += fill
            report.padded_frames += batch_frames - fill
        for i in members:
            if i in state:
                state[i].encoder_calls += 1
        for i, rows, off in owners if feats is not None else ():
            st = state.get(i)
            if st is None or st.failed is not None:
                continue
            if st.features is None:
                st.features = torch.empty(len(st.times), feats.shape[1], dtype=torch.float32)
            st.features[torch.from_numpy(rows)] = feats[off:off + len(rows)]
            st.filled += len(rows)
            st.frames_encoded += len(rows)
        done = [i for i in members
                if i in state and (state[i].failed is not None or state[i].filled == len(state[i].times))]
        owners.clear()
        fill = 0
        for i in done:
            finish(i)
        if progress is not None:
            progress.update(report.done, len(report.failed), report.frames, weight_done)

    items = iter(loader)
    while True:
        t0 = time.perf_counter()
        item = next(items, None)
        report.decode_wait_s += time.perf_counter() - t0
        if item is None:
            break
        i = int(item["entry"])
        if i in closed:                                                  # failed in an encoder call already
            continue
        if "plan" in item:
            times, frame_idx, duration = item["plan"]
            state[i] = _Open(np.asarray(times), np.asarray(frame_idx), float(duration))
            continue
        if "error" in item:
            if i not in state:
                state[i] = _Open(np.empty(0), np.empty(0, dtype=np.int64), 0.0)
            state[i].failed = item["error"]
            if not any(j == i for j, _, _ in owners):                    # else dropped at the next flush
                finish(i)
            continue
        pos, frames = np.asarray(item["pos"]), torch.as_tensor(item["frames"])
        lo = 0
        while lo < len(pos):                                             # a chunk may straddle two calls
            n = min(batch_frames - fill, len(pos) - lo)
            batch[fill:fill + n] = frames[lo:lo + n]
            owners.append((i, pos[lo:lo + n], fill))
            fill += n
            lo += n
            if fill == batch_frames:
                flush()
            if i in closed:                                              # its call failed: drop the rest
                break
    flush()
    for i in [i for i, st in state.items() if st.failed is not None]:
        finish(i)
    if progress is not None:
        progress.update(report.done, len(report.failed), report.frames, weight_done, final=True)


# -- the whole job ----------------------------------------------------------------------------

@dataclass
class Summary:
    """The job's outcome, the same on every rank. ``failed``: ``{"video", "reason", "owners"}``
    (``owners``: indices of the caller's videos that need it)."""

    videos: int
    entries: int
    done: int
    cached: int
    failed: list[dict]
    frames: int
    encoder_calls: int
    seconds: float
    ranks: list[RankReport]

    @property
    def failed_owners(self) -> dict[int, str]:
        """Index of each caller video that cannot have features -> the reason."""
        return {o: f["reason"] for f in self.failed for o in f["owners"]}

    def to_json(self) -> dict[str, Any]:
        return {"videos": self.videos, "entries": self.entries, "done": self.done, "cached": self.cached,
                "failed": [{"video": f["video"], "reason": f["reason"]} for f in self.failed],
                "frames": self.frames, "encoder_calls": self.encoder_calls,
                "failed_encoder_calls": sum(r.failed_encoder_calls for r in self.ranks),
                "seconds": round(self.seconds, 3),
                "videos_per_s": round(self.done / self.seconds, 4) if self.seconds else None,
                "frames_per_s": round(self.frames / self.seconds, 2) if self.seconds else None,
                "ranks": [dataclasses.asdict(r) | {"failed": [{k: f[k] for k in ("video", "reason")}
                                                              for f in r.failed]} for r in self.ranks]}

    def text(self) -> str:
        lines = [f"features: {self.entries} entries for {self.videos} videos: {self.done} encoded, "
                 f"{self.cached} already cached, {len(self.failed)} failed · {self.frames} frames in "
                 f"{self.encoder_calls} encoder calls · {self.seconds:.1f} s"
                 + (f" · {self.frames / self.seconds:.1f} frames/s" if self.seconds and self.frames else "")]
        busy = sum(r.seconds for r in self.ranks)
        if busy > 0:
            # which side bounds the job: the encoder (GPU) or decoding (CPU workers)
            lines.append(f"  rank time: {100 * sum(r.encode_s for r in self.ranks) / busy:.0f} % in encoder calls, "
                         f"{100 * sum(r.decode_wait_s for r in self.ranks) / busy:.0f} % waiting for decoded frames, "
                         f"{100 * sum(r.store_s for r in self.ranks) / busy:.0f} % writing entries")
        lines += [f"  failed: {f['video']}: {f['reason']}" for f in self.failed]
        return "\n".join(lines)


def extract_features(videos: Sequence[VideoLike], encoder, cache: FeatureCache, fps: float = DEFAULT_FPS,
                     max_candidates: int | None = None, num_workers: int | None = None,
                     batch_frames: int = DEFAULT_BATCH_FRAMES, ranks: Ranks | None = None, progress: bool = True,
                     progress_every_s: float = 10.0,
                     on_stored: Callable[[Entry], None] | None = None) -> Summary:
    """Every cache entry ``videos`` need (paths or virtual videos), computed once across the job.

    Call it on every rank of a job (``ranks``: default :meth:`Ranks.current`); each returns the
    same :class:`Summary` after a barrier, when every entry is on disk (or failed). Frames are
    candidates at ``fps`` per second, capped at ``max_candidates`` per video (as the readers ask).
    ``num_workers`` decode processes per rank (None: :func:`default_num_workers`); ``batch_frames``
    frames per encoder call. Failures (missing, unreadable videos) are in ``Summary.failed``.
    """
    if not isinstance(batch_frames, int) or batch_frames <= 0:
        raise ValueError(f"batch_frames must be a positive int (frames per encoder call), got {batch_frames!r}")
    if num_workers is not None and (not isinstance(num_workers, int) or num_workers < 0):
        raise ValueError(f"num_workers must be an int >= 0 (decode processes per rank; 0 decodes in-process), "
                         f"got {num_workers!r}")
    ranks = ranks or Ranks.current()
    workers = default_num_workers() if num_workers is None else num_workers
    start = time.perf_counter()
    missing, cached, failed = plan_entries(videos, encoder, cache, fps, max_candidates, ranks)
    gathered = ranks.gather((missing, cached, failed))
    entries = _merge([g[0] for g in gathered])
    cached = sum(g[1] for g in gathered)
    failed = [f for g in gathered for f in g[2]]
    mine = assign(entries, ranks.world)[ranks.rank]
    bar = Progress(ranks, len(mine), sum(e.weight for e in mine), progress_every_s, enabled=progress)
    report = encode_shard(mine, encoder, cache, fps, workers, batch_frames, bar, on_stored, ranks.rank)
    reports = ranks.gather(report)          # also the barrier: every entry is written when this returns
    failed += [f for r in reports for f in r.failed]
    return Summary(videos=len(videos), entries=len(entries) + cached + len([f for g in gathered for f in g[2]]),
                   done=sum(r.done for r in reports), cached=cached, failed=failed,
                   frames=sum(r.frames for r in reports), encoder_calls=sum(r.encoder_calls for r in reports),
                   seconds=time.perf_counter() - start, ranks=reports)


__all__ = ["DEFAULT_BATCH_FRAMES", "DecodeStream", "Entry", "Progress", "RankReport", "Ranks", "Summary",
           "assign", "decode_loader", "default_num_workers", "encode_shard", "extract_features", "plan_entries",
           "worker_start_method"]
