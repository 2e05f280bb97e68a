"""Needle-in-a-haystack composer: long *virtual* training videos from target clips + haystack.

As in the TSPO paper (§ training data): each target clip (with its QA) is repeated 1–4 times,
every repetition is cut into segments (``target_segment_seconds``), and the target segments are
shuffled at segment level with segments cut from irrelevant videos into a 10–60 minute timeline
(``target_order``: ``"shuffle"`` scatters every segment, ``"ordered"`` scatters them but keeps each
repetition's segments in their order, ``"contiguous"`` keeps each repetition in one piece). The
output is a segment list plus pseudo-labels (``target_spans_s``: where target material sits on the
composed timeline; ``evidence_spans_s``: the seconds that answer the question, followed into
whichever target segments carry them; touching spans are merged).

Every cut lies on the ``1/fps`` candidate grid (integer seconds at ``fps=1``), so the composed
candidate ``t_i = i / fps`` reads exactly source candidate ``j = (start_s + t_i - offset) * fps``
and features compose from each source's cached rows (``features.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tspo.data_synth.events import excluded
from tspo.errors import TSPOError
from tspo.manifest import Sample, load_manifest
from tspo.progress import progress_bar
from tspo.settings import DEFAULT_FPS
from tspo.video import probe_video

from .media import grid_steps

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".avi", ".webm", ".mov", ".m4v")
TARGET_ORDERS = ("shuffle", "ordered", "contiguous")


class SynthError(TSPOError, ValueError):
    """Bad composer input: empty pools, targets longer than the timeline, bad parameters."""


@dataclass
class NeedleConfig:
    """All composer knobs (seconds unless named otherwise); defaults follow the paper."""

    min_minutes: float = 10.0
    max_minutes: float = 60.0
    repeats: tuple[int, int] = (1, 4)              # target repetitions, inclusive
    target_fraction: tuple[float, float] | None = (0.12, 0.25)  # share of the timeline; None: any
    segment_seconds: tuple[float, float] = (10.0, 60.0)         # haystack segment length range
    fps: float = DEFAULT_FPS                               # candidate grid: every cut is a multiple of 1/fps
    id_prefix: str = "needle"
    target_segment_seconds: tuple[float, float] = (10.0, 30.0)  # length range of a repetition's cuts
    target_order: str = "shuffle"                  # one of TARGET_ORDERS (paper: shuffle at segment level)
    # Share of the haystack drawn from confuser clips (other target-family clips, cut to stretches
    # that show nothing the question names) instead of the texture haystack; 0 = textures only.
    confuser_ratio: float = 0.0

    def validate(self) -> None:
        if not 0 < self.min_minutes <= self.max_minutes:
            raise SynthError(f"need 0 < min_minutes <= max_minutes, got {self.min_minutes}, {self.max_minutes}")
        if not 1 <= self.repeats[0] <= self.repeats[1]:
            raise SynthError(f"repeats must be 1 <= lo <= hi, got {self.repeats}")
        if self.target_fraction is not None and not 0 < self.target_fraction[0] <= self.target_fraction[1] <= 1:
            raise SynthError(f"target_fraction must be 0 < lo <= hi <= 1, got {self.target_fraction}")
        if not 0 < self.segment_seconds[0] <= self.segment_seconds[1]:
            raise SynthError(f"segment_seconds must be 0 < lo <= hi, got {self.segment_seconds}")
        if self.fps <= 0:
            raise SynthError(f"fps must be > 0, got {self.fps}")
        if not 0 < self.target_segment_seconds[0] <= self.target_segment_seconds[1]:
            raise SynthError(f"target_segment_seconds must be 0 < lo <= hi, got {self.target_segment_seconds}")
        if not 0.0 <= self.confuser_ratio <= 1.0:
            raise SynthError(f"confuser_ratio must be in [0, 1], got {self.confuser_ratio}")
        if self.target_order not in TARGET_ORDERS:
            raise SynthError(f"target_order must be one of {TARGET_ORDERS}, got {self.target_order!r}")


@dataclass
class PoolVideo:
    path: str
    steps: int                      # usable length in grid steps of 1/fps
    sample: Sample | None = None    # the target's QA sample (None for haystack videos)


@dataclass
class ConfuserClip:
    """A target-family clip offered as haystack; ``events`` as in its manifest ``extra["events"]``."""

    path: str
    steps: int
    events: list[dict]


def confuser_runs(clip: ConfuserClip, exclude: dict, fps: float) -> list[tuple[int, int]]:
    """(start step, length) of each maximal stretch of ``clip`` whose events are all allowed by ``exclude``."""

    runs: list[tuple[int, int]] = []
    for ev in clip.events:  # a handful of events per clip: loop over events, not frames
        a, b = grid_steps(ev["start_s"], fps), min(clip.steps, grid_steps(ev["end_s"], fps))
        if excluded(ev, exclude) or b <= a:
            continue
        if runs and runs[-1][0] + runs[-1][1] == a:
            runs[-1] = (runs[-1][0], b - runs[-1][0])
        else:
            runs.append((a, b - a))
    return runs


@dataclass
class NeedleReport:
    """What a composer run did: counts, and every skipped source with the reason."""

    num_samples: int = 0
    num_targets: int = 0
    num_distractors: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (path or id, reason)
    minutes: list[float] = field(default_factory=list)
    target_fractions: list[float] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"needle samples: {self.num_samples} (targets usable: {self.num_targets}, "
                 f"haystack videos usable: {self.num_distractors})"]
        if self.minutes:
            lines.append(f"duration: {min(self.minutes):.1f}-{max(self.minutes):.1f} min "
                         f"(mean {np.mean(self.minutes):.1f}); target share "
                         f"{min(self.target_fractions):.2f}-{max(self.target_fractions):.2f}")
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} unusable source(s):")
            lines += [f"  {name}: {why}" for name, why in self.skipped[:20]]
            if len(self.skipped) > 20:
                lines.append(f"  ... and {len(self.skipped) - 20} more")
        return "\n".join(lines)


def find_videos(dir_or_manifest: str | Path, root: str | Path | None = None) -> list[str]:
    """Haystack paths: every video file under a directory (sorted), or the plain videos of a manifest."""
    p = Path(dir_or_manifest)
    if p.is_dir():
        return sorted(str(f.resolve()) for f in p.rglob("*") if f.suffix.lower() in VIDEO_EXTENSIONS and f.is_file())
    if p.is_file():
        return [s.video for s in load_manifest(p, root) if isinstance(s.video, str)]
    raise SynthError(f"distractors {p} is neither a directory of videos nor a manifest file")


def source_duration(path: str) -> float:
    """Usable length in seconds, as ``tspo.video`` (which decodes the candidates) sees the file."""
    return probe_video(path).duration_s


def probe_pool(paths: Sequence[str], fps: float, report: NeedleReport, progress: bool = False) -> list[PoolVideo]:
    """Probe every path; unusable ones go to ``report.skipped`` instead of raising."""

    out = []
    for path in progress_bar(paths, desc="probe haystack", unit="video", disable=not progress):
        try:
            steps = grid_steps(source_duration(path), fps)
        except ValueError as exc:  # tspo.video.VideoError: missing, empty, corrupt, audio-only
            report.skipped.append((str(path), str(exc)))
            continue
        if steps < 1:
            report.skipped.append((str(path), f"shorter than one candidate step (1/{fps} s)"))
            continue
        out.append(PoolVideo(str(path), steps))
    return out


def probe_targets(samples: Sequence[Sample], fps: float, report: NeedleReport, progress: bool = False) -> list[PoolVideo]:
    """Usable target clips (a plain video with its QA); others go to ``report.skipped``."""

    out = []
    for s in progress_bar(samples, desc="probe targets", unit="clip", disable=not progress):
        if not isinstance(s.video, str):
            report.skipped.append((s.id, "target is itself a virtual video; targets must be plain clips"))
            continue
        try:
            steps = grid_steps(min(source_duration(s.video), s.duration_s), fps)
        except ValueError as exc:
            report.skipped.append((s.id, str(exc)))
            continue
        ev = s.evidence_spans_s
        if steps < 1 or (ev and all(a >= steps / fps for a, _ in ev)):
            report.skipped.append((s.id, "no evidence inside the clip's whole candidate steps"))
            continue
        out.append(PoolVideo(s.video, steps, s))
    return out


def _choose_length(rng: np.random.Generator, clip: int, lo: int, hi: int, cfg: NeedleConfig) -> tuple[int, int]:
    """(repeats, total steps): a timeline in [lo, hi] whose target share is in range where possible."""
    r_lo, r_hi = cfg.repeats[0], min(cfg.repeats[1], hi // clip)
    r_lo = min(r_lo, r_hi)
    r = int(rng.integers(r_lo, r_hi + 1))
    if cfg.target_fraction is None:
        return r, int(rng.integers(max(lo, r * clip), hi + 1))
    f = rng.uniform(*cfg.target_fraction)

    def total_for(reps: int) -> int:
        return int(np.clip(round(reps * clip / f), max(lo, reps * clip), hi))

    f_lo, f_hi = cfg.target_fraction
    ok = [x for x in range(r_lo, r_hi + 1) if f_lo - 1e-9 <= x * clip / total_for(x) <= f_hi + 1e-9]
    if r not in ok and ok:  # the sampled repeat count cannot reach the share: take the nearest that can
        r = min(ok, key=lambda x: abs(x - r))
    return r, total_for(r)


def _cut(rng: np.random.Generator, steps: int, lo: int, hi: int) -> list[int]:
    """Segment lengths in grid steps, each drawn from [lo, hi] (the last one takes what is left)."""
    out = []
    while steps > 0:
        n = min(int(rng.integers(lo, hi + 1)), steps)
        out.append(n)
        steps -= n
    return out


def _step_range(seconds: tuple[float, float], fps: float) -> tuple[int, int]:
    lo = max(1, grid_steps(seconds[0], fps))
    return lo, max(lo, grid_steps(seconds[1], fps))


def merge_spans(spans: Sequence[Sequence[float]], tol: float = 1e-9) -> list[list[float]]:
    """Sorted spans with touching/overlapping ones joined: ``[[0, 2], [2, 5], [7, 8]] -> [[0, 5], [7, 8]]``."""
    out: list[list[float]] = []
    for a, b in sorted([float(a), float(b)] for a, b in spans):
        if out and a <= out[-1][1] + tol:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return out


# A placed piece: (source path, start step in the source, length in steps, repetition index or -1).
Piece = tuple[str, int, int, int]


def _haystack_cut(rng: np.random.Generator, seg: tuple[int, int], left: int, haystack: Sequence[PoolVideo],
                  runs: Sequence[tuple[str, int, int]], use_confuser: bool) -> Piece:
    """One haystack piece of at most ``left`` steps: from a confuser run or from a texture video."""
    if use_confuser:
        path, a, length = runs[int(rng.integers(len(runs)))]
    else:
        src = haystack[int(rng.integers(len(haystack)))]
        path, a, length = src.path, 0, src.steps
    n = min(int(rng.integers(seg[0], seg[1] + 1)), left, length)
    return (path, a + int(rng.integers(0, length - n + 1)), n, -1)


def _arrange(target: PoolVideo, reps: int, haystack_steps: int, haystack: Sequence[PoolVideo],
             rng: np.random.Generator, cfg: NeedleConfig,
             runs: Sequence[tuple[str, int, int]] = ()) -> list[Piece]:
    """The timeline's pieces in order: target repetitions cut into segments, shuffled with haystack cuts."""
    t_lo, t_hi = _step_range(cfg.target_segment_seconds, cfg.fps)
    repeats: list[list[Piece]] = []
    for r in range(reps):  # each repetition gets its own cut points
        lengths = _cut(rng, target.steps, t_lo, t_hi)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        repeats.append([(target.path, int(a), int(n), r) for a, n in zip(starts, lengths)])
    if cfg.target_order == "contiguous":
        units = list(repeats)                                  # a repetition moves as one block
    else:
        units = [[piece] for rep in repeats for piece in rep]  # every target segment moves alone
    seg_lo, seg_hi = _step_range(cfg.segment_seconds, cfg.fps)
    left = haystack_steps
    while left > 0:
        use_confuser = bool(runs) and (not haystack or rng.random() < cfg.confuser_ratio)
        piece = _haystack_cut(rng, (seg_lo, seg_hi), left, haystack, runs, use_confuser)
        units.append([piece])
        left -= piece[2]
    placed = [piece for k in rng.permutation(len(units)) for piece in units[k]]
    if cfg.target_order == "ordered":  # same slots, but each repetition's segments in their order
        for r, rep in enumerate(repeats):
            slots = [i for i, piece in enumerate(placed) if piece[3] == r]
            for i, piece in zip(slots, rep):
                placed[i] = piece
    return placed


def _confuser_runs_for(target: PoolVideo, confusers: Sequence[ConfuserClip], fps: float) -> list[tuple[str, int, int]]:
    """Every allowed confuser stretch (path, start step, steps) for ``target``'s question."""
    exclude = target.sample.extra.get("exclude")
    if exclude is None:
        raise SynthError(f"target {target.sample.id} has no extra['exclude'] (what confusers must not show); "
                         "render targets with `tspo synth render` or set confuser_ratio=0")
    runs = [(c.path, a, n) for c in confusers if c.path != target.path for a, n in confuser_runs(c, exclude, fps)]
    if not runs:
        raise SynthError(f"no confuser clip has a stretch free of what {target.sample.id}'s question names "
                         f"({exclude}); render more confuser clips")
    return runs


def _moved(spans: Sequence[Sequence[float]], start: int, n: int, offset: int, fps: float) -> list[list[float]]:
    """The parts of source ``spans`` inside source window [start, start + n) steps, on the composed timeline."""
    out = []
    for a, b in spans:
        a0, b0 = max(a, start / fps), min(b, (start + n) / fps)
        if a0 < b0:
            out.append([(offset - start) / fps + a0, (offset - start) / fps + b0])
    return out


def compose_needle(target: PoolVideo, haystack: Sequence[PoolVideo], rng: np.random.Generator,
                   cfg: NeedleConfig, sample_id: str, confusers: Sequence[ConfuserClip] = ()) -> Sample:
    """One virtual needle sample around ``target`` (its QA carried over, spans on the new timeline)."""
    fps = cfg.fps
    lo, hi = grid_steps(cfg.min_minutes * 60, fps), grid_steps(cfg.max_minutes * 60, fps)
    if target.steps > hi:
        raise SynthError(f"target {target.sample.id} ({target.steps / fps:.0f} s) is longer than the "
                         f"longest timeline ({cfg.max_minutes} min); raise max_minutes or drop the clip")
    reps, total = _choose_length(rng, target.steps, lo, hi, cfg)
    runs = _confuser_runs_for(target, confusers, fps) if cfg.confuser_ratio > 0 else []
    placed = _arrange(target, reps, total - reps * target.steps, haystack, rng, cfg, runs)
    source_evidence = target.sample.evidence_spans_s or []
    source_groups = target.sample.extra.get("evidence_groups_s")
    groups: list[list[list[float]]] = [[] for _ in source_groups or ()]
    segments, roles, rep_of, target_spans, evidence = [], [], [], [], []
    offset = 0
    for path, start, n, rep in placed:
        segments.append({"source": path, "start_s": start / fps, "end_s": (start + n) / fps})
        roles.append("target" if rep >= 0 else "distractor")
        rep_of.append(rep)
        if rep >= 0:
            target_spans.append([offset / fps, (offset + n) / fps])
            # Evidence inside this segment's source window [start, start + n) moves with it; a span
            # cut by a segment boundary continues in whichever segment holds its other part.
            evidence += _moved(source_evidence, start, n, offset, fps)
            for g, spans in zip(groups, source_groups or ()):
                g += _moved(spans, start, n, offset, fps)
        offset += n
    src = target.sample
    duration = total / fps
    return Sample(
        id=sample_id, video=segments, question=src.question, options=list(src.options), answer=src.answer,
        kind="needle", target_spans_s=merge_spans(target_spans),
        evidence_spans_s=merge_spans(evidence) if src.evidence_spans_s is not None else None,
        duration_s=duration,
        extra={"target_id": src.id, "repeats": reps,
               "target_fraction": reps * target.steps / total, "segment_roles": roles,
               "segment_repeat": rep_of, "target_order": cfg.target_order, "fps": fps,
               **({"qa_kind": src.extra["qa_kind"]} if "qa_kind" in src.extra else {}),
               **({"coverage": src.extra["coverage"], "evidence_groups_s": [merge_spans(g) for g in groups]}
                  if source_groups is not None and "coverage" in src.extra else {}),
               **({"confuser_ratio": cfg.confuser_ratio} if runs else {})})


def compose_needles(targets: Sequence[Sample], distractors: Sequence[str], num: int, seed: int = 0,
                    config: NeedleConfig | None = None, progress: bool = True,
                    confusers: Sequence[Sample] = ()) -> tuple[list[Sample], NeedleReport]:
    """Compose ``num`` needle samples (targets drawn round-robin in a seeded shuffle).

    ``confusers``: target-family clips (manifest samples with ``extra["events"]``) that make up
    ``config.confuser_ratio`` of each haystack, cut to stretches that never show what the question
    names (the sample's ``extra["exclude"]``); with ratio 1 no texture haystack is needed.
    Missing/unreadable sources are skipped and listed in the report; empty pools and targets longer
    than the longest timeline raise :class:`SynthError` before any work.
    """

    cfg = config or NeedleConfig()
    cfg.validate()
    if num < 1:
        raise SynthError(f"num must be >= 1, got {num}")
    report = NeedleReport()
    if not targets:
        raise SynthError("the target pool is empty; pass a manifest of target clips with QA")
    if cfg.confuser_ratio > 0 and not confusers:
        raise SynthError(f"confuser_ratio={cfg.confuser_ratio} but the confuser pool is empty; pass target-family "
                         "clips as confusers (--confusers MANIFEST) or set the ratio to 0")
    if not distractors and cfg.confuser_ratio < 1:
        raise SynthError("the haystack pool is empty; pass a directory or manifest of distractor videos")
    pool_t = probe_targets(targets, cfg.fps, report, progress)
    pool_d = probe_pool(distractors, cfg.fps, report, progress)
    pool_c = [ConfuserClip(p.path, p.steps, p.sample.extra.get("events", []))
              for p in probe_targets(confusers, cfg.fps, report, progress)]
    report.num_targets, report.num_distractors = len(pool_t), len(pool_d)
    if not pool_t:
        raise SynthError(f"no usable target clip ({len(report.skipped)} skipped):\n{report.summary()}")
    if cfg.confuser_ratio > 0 and not any(c.events for c in pool_c):
        raise SynthError("no usable confuser clip with extra['events']; render confusers with `tspo synth render`")
    if not pool_d and cfg.confuser_ratio < 1:
        raise SynthError(f"no usable haystack video ({len(report.skipped)} skipped):\n{report.summary()}")
    hi = grid_steps(cfg.max_minutes * 60, cfg.fps)
    too_long = [t for t in pool_t if t.steps > hi]
    if too_long:
        names = ", ".join(f"{t.sample.id} ({t.steps / cfg.fps:.0f} s)" for t in too_long[:5])
        raise SynthError(f"{len(too_long)} target clip(s) are longer than --max-minutes {cfg.max_minutes}: "
                         f"{names}; raise --max-minutes or remove them from the targets manifest")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(pool_t))
    samples = []
    for i in progress_bar(range(num), desc="compose needles", unit="sample", disable=not progress):
        target = pool_t[order[i % len(order)]]
        s = compose_needle(target, pool_d, rng, cfg, f"{cfg.id_prefix}-{seed}-{i:05d}", pool_c)
        samples.append(s)
        report.minutes.append(s.duration_s / 60)
        report.target_fractions.append(s.extra["target_fraction"])
    report.num_samples = len(samples)
    return samples, report


def segment_offsets(segments: Sequence[dict]) -> np.ndarray:
    """float64[S+1]: where each segment starts on the composed timeline (and the total at the end)."""
    lengths = np.array([s["end_s"] - s["start_s"] for s in segments], dtype=np.float64)
    return np.concatenate([[0.0], np.cumsum(lengths)])


def locate(segments: Sequence[dict], t: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Composed time(s) -> (segment index int64[...], source time float64[...] in that segment)."""
    offsets = segment_offsets(segments)
    t = np.asarray(t, dtype=np.float64)
    if np.any(t < 0) or np.any(t >= offsets[-1] + 1e-9):
        raise SynthError(f"time outside the composed timeline [0, {offsets[-1]})")
    seg = np.clip(np.searchsorted(offsets, t + 1e-9, side="right") - 1, 0, len(segments) - 1)
    starts = np.array([s["start_s"] for s in segments], dtype=np.float64)
    return seg.astype(np.int64), starts[seg] + (t - offsets[seg])


def evidence_only(sample: Sample) -> Sample:
    """The same needle with each target segment cut down to the evidence it carries.

    The rest of the target clip is dropped, so the question's evidence (a few seconds) sits alone
    in the haystack with no longer target material around it to hint where it is. Target and
    evidence spans of the result are the evidence spans on the new (shorter) timeline.
    """
    roles = sample.extra.get("segment_roles")
    if not isinstance(sample.video, list) or roles is None or not sample.evidence_spans_s:
        raise SynthError(f"evidence_only needs a composed needle with evidence spans; {sample.id!r} is not one")
    offsets = segment_offsets(sample.video)
    segments, new_roles, spans, moves = [], [], [], []
    t = 0.0
    for seg, role, off in zip(sample.video, roles, offsets[:-1]):  # one pass over segments
        length = float(seg["end_s"]) - float(seg["start_s"])
        if role != "target":
            segments.append(dict(seg))
            new_roles.append(role)
            t += length
            continue
        for a, b in sample.evidence_spans_s:
            a0, b0 = max(float(a), off), min(float(b), off + length)
            if a0 < b0:
                start = float(seg["start_s"]) + a0 - off
                segments.append({"source": seg["source"], "start_s": start, "end_s": start + b0 - a0})
                new_roles.append("target")
                spans.append([t, t + b0 - a0])
                moves.append((a0, b0, t))
                t += b0 - a0
    spans = merge_spans(spans)
    extra = {k: v for k, v in sample.extra.items() if k != "segment_repeat"}
    extra.update(segment_roles=new_roles, evidence_only=True,
                 target_fraction=sum(b - a for a, b in spans) / t)
    if extra.get("evidence_groups_s") is not None:
        # the per-key-event groups the oracle's coverage rule reads move with the evidence they lie in
        extra["evidence_groups_s"] = [merge_spans([[t0 + max(ga, a0) - a0, t0 + min(gb, b0) - a0]
                                                   for ga, gb in group for a0, b0, t0 in moves
                                                   if max(ga, a0) < min(gb, b0)])
                                      for group in extra["evidence_groups_s"]]
    return Sample(id=f"{sample.id}-evidence", video=segments, question=sample.question, options=list(sample.options),
                  answer=sample.answer, kind=sample.kind, target_spans_s=spans, evidence_spans_s=spans,
                  duration_s=t, extra=extra)
