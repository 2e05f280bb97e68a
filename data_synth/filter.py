"""Comprehensive-temporal filter (TSPO paper, training data): keep questions that need search.

A sample is dropped as *too easy* when the oracle answers it from ``easy_frames`` (4) uniform
frames, and as *too hard* when it still fails from ``hard_frames`` (64) uniform frames; what is
left needs several well-chosen frames. Uniform frames are evenly spaced positions on the
sample's candidate grid (the ``uniform`` baseline), so the filter sees what training sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from tspo.agents.rules import select_uniform
from tspo.manifest import Sample
from tspo.progress import progress_bar
from tspo.rewards import OracleQuery
from tspo.settings import DEFAULT_FPS, DEFAULT_FRAME_SIZE, DEFAULT_MAX_CANDIDATES
from tspo.video import candidate_times, read_whole_frames


@dataclass
class FilterReport:
    """Counts and ids per outcome; ``reasons[id]`` says why a sample was dropped."""

    kept: list[str] = field(default_factory=list)
    too_easy: list[str] = field(default_factory=list)
    too_hard: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)        # failed oracle query or unreadable video
    unparsed: list[str] = field(default_factory=list)      # an answer had no readable option (scored wrong)
    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def num_dropped(self) -> int:
        return len(self.too_easy) + len(self.too_hard) + len(self.failed)

    def summary(self) -> str:
        total = len(self.kept) + self.num_dropped
        lines = [f"filter: kept {len(self.kept)} of {total}; dropped {len(self.too_easy)} too easy, "
                 f"{len(self.too_hard)} too hard, {len(self.failed)} failed"]
        if self.unparsed:
            lines.append(f"  {len(self.unparsed)} samples had an answer with no readable option (scored as wrong)")
        lines += [f"  {sid}: {self.reasons[sid]}" for sid in self.failed[:20]]
        return "\n".join(lines)


def uniform_timestamps(sample: Sample, k: int, fps: float = DEFAULT_FPS,
                       max_candidates: int | None = DEFAULT_MAX_CANDIDATES) -> tuple[np.ndarray, np.ndarray]:
    """(positions int64[k'], seconds float64[k']) of ``k`` uniform picks on the sample's candidate
    grid; ``k' = min(k, T)``."""
    times = candidate_times(sample.duration_s, fps, max_candidates)
    pos = select_uniform(len(times), min(k, len(times))).numpy()
    return pos.astype(np.int64), times[pos]


def _query(sample: Sample, k: int, fps: float, max_candidates: int | None, frame_size: int | None, needs_frames: bool):
    pos, ts = uniform_timestamps(sample, k, fps, max_candidates)
    frames = read_whole_frames(sample.video, ts, frame_size) if needs_frames else None
    return OracleQuery.for_sample(sample, ts, pos, frames)


def filter_samples(samples: Sequence[Sample], oracle, easy_frames: int = 4, hard_frames: int = 64,
                   fps: float = DEFAULT_FPS, max_candidates: int | None = DEFAULT_MAX_CANDIDATES,
                   frame_size: int = DEFAULT_FRAME_SIZE,
                   batch_size: int = 16, progress: bool = True) -> tuple[list[Sample], FilterReport]:
    """Keep the samples the oracle gets wrong with ``easy_frames`` and right with ``hard_frames``.

    ``oracle``: any ``tspo.rewards.Oracle``. Failed oracle queries (``OracleAnswer.is_failed``)
    and unreadable videos drop the sample with its reason (listed in the report); the run never
    stops half-way. An answer with no readable option is a wrong answer (listed in
    ``report.unparsed``). Oracle frames are whole (short side ``frame_size``, aspect kept).
    """

    if not 1 <= easy_frames < hard_frames:
        raise ValueError(f"need 1 <= easy_frames < hard_frames, got {easy_frames}, {hard_frames}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    needs_frames = bool(getattr(oracle, "needs_frames", False))
    report, kept = FilterReport(), []
    bar = progress_bar(total=len(samples), desc="filter", unit="sample", disable=not progress)
    for lo in range(0, len(samples), batch_size):
        batch = list(samples[lo: lo + batch_size])
        queries, ok = [], []
        for s in batch:  # build easy + hard queries; a bad video drops only its own sample
            try:
                queries += [_query(s, k, fps, max_candidates, frame_size, needs_frames) for k in (easy_frames, hard_frames)]
                ok.append(s)
            except ValueError as exc:
                report.failed.append(s.id)
                report.reasons[s.id] = f"unreadable: {exc}"
        answers = oracle.answer(queries) if queries else []
        for i, s in enumerate(ok):
            easy, hard = answers[2 * i], answers[2 * i + 1]
            if easy.unparsed or hard.unparsed:
                report.unparsed.append(s.id)
            if easy.is_failed or hard.is_failed:
                report.failed.append(s.id)
                report.reasons[s.id] = f"oracle error: {easy.error or hard.error}"
            elif easy.letter == s.answer:
                report.too_easy.append(s.id)
                report.reasons[s.id] = f"answered from {easy_frames} uniform frames"
            elif hard.letter != s.answer:
                report.too_hard.append(s.id)
                report.reasons[s.id] = f"not answered from {hard_frames} uniform frames"
            else:
                report.kept.append(s.id)
                kept.append(s)
        bar.update(len(batch))
    bar.close()
    return kept, report
