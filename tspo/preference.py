"""Preference pairs from logged oracle answers (a TPO-style objective for the sampler).

Every oracle answer costs a call to a video LLM; GRPO uses each group once and throws it away.
This module keeps them: :class:`AnswerLogger` writes every (question, selection) -> answer to an
*answer log*, :func:`read_answer_log` reads one back (JSON Lines, Parquet, or an
:class:`~tspo.rewards.OracleCache` SQLite file), and :func:`pairs_from_log` turns the logged
selections of each question into preference pairs: for two selections of the same question, the
one with the higher reward (``w_a R_A + w_t R_T`` for needles, ``w_a R_A + w_t`` otherwise) is
preferred; ties (and margins up to ``min_margin``) are dropped. :func:`tspo.grpo.dpo_loss` trains
on the pairs against a frozen reference agent.

Answer log record (one JSON object per line; Parquet: the same columns)::

    {"v": 1, "sample_id": "needle-00003", "timestamps_s": [12.0, 31.0, ...],   # seconds, ascending
     "positions": [12, 31, ...] | null,       # candidate positions on the logger's grid (informational)
     "letter": "B" | null, "error": null | "why it failed",
     "oracle_id": "simulated(...)", "policy": "uniform"}   # which rule picked the frames

Selections are matched to the training candidates by their timestamps (within half a
millisecond, the OracleCache's resolution), never by positions, so a log made on another
candidate grid is refused record by record (counted as ``off_grid``) instead of misread.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from tspo.agents import GumbelTopK
from tspo.agents.methods import AGENT_FREE_DRAWS, get_method
from tspo.errors import TSPOError
from tspo.grpo import picks_in_target
from tspo.judge import ask_about, group_picks
from tspo.rewards import Oracle, accuracy_reward
from tspo.settings import DEFAULT_FRAME_SIZE

LOG_VERSION = 1
LOG_COLUMNS = ("v", "sample_id", "timestamps_s", "positions", "letter", "error", "oracle_id", "policy")
# OracleCache keys hold integer milliseconds; a logged pick matches a candidate within half of that.
MATCH_TOL_S = 5e-4


class AnswerLogError(TSPOError, ValueError):
    """An answer log that cannot be read or used (unknown format, mixed oracles, nothing usable)."""


def answer_record(query: Any, answer: Any, oracle_id: str, policy: str) -> dict[str, Any]:
    """One log record (see the module docstring) from an ``OracleQuery`` and its ``OracleAnswer``."""
    return {"v": LOG_VERSION, "sample_id": query.sample_id,
            "timestamps_s": [round(float(t), 4) for t in query.timestamps_s],
            "positions": None if query.positions is None else [int(p) for p in query.positions],
            "letter": answer.letter, "error": answer.error, "oracle_id": oracle_id, "policy": policy}


class AnswerLogger:
    """An :class:`~tspo.rewards.Oracle` that answers through ``oracle`` and appends every answer
    (failed ones too, with their error) to the JSON Lines file ``path``.

    Put it *inside* an ``OracleCache`` (``OracleCache(AnswerLogger(base, path))``) to log only the
    calls that really reach the model. ``oracle_id`` and ``needs_frames`` are the wrapped oracle's,
    so caches keyed by it stay valid. ``policy`` labels the records (which rule picked the frames).
    """

    def __init__(self, oracle: Any, path: str | Path, policy: str = "unknown") -> None:
        if not isinstance(oracle, Oracle):
            raise AnswerLogError(f"AnswerLogger wraps an Oracle (oracle_id, needs_frames, answer); got {type(oracle).__name__}")
        self.oracle, self.policy = oracle, policy
        self.oracle_id, self.needs_frames = oracle.oracle_id, oracle.needs_frames
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.logged = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"AnswerLogger({self.oracle!r}, path={str(self.path)!r}, logged={self.logged})"

    def answer(self, queries: list) -> list:
        answers = self.oracle.answer(queries)
        lines = [json.dumps(answer_record(q, a, self.oracle_id, self.policy)) for q, a in zip(queries, answers)]
        with self._lock, self.path.open("a") as fh:
            fh.write("".join(line + "\n" for line in lines))
            self.logged += len(lines)
        return answers


# -- reading and writing logs -------------------------------------------------------------------
def _is_sqlite(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(16) == b"SQLite format 3\x00"


def _records_from_cache(path: Path) -> list[dict[str, Any]]:
    """Records of an OracleCache SQLite file (its keys hold sample id, milliseconds and oracle id)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT key, answer FROM answers").fetchall()
    except sqlite3.DatabaseError as exc:
        raise AnswerLogError(f"{path}: not an OracleCache file ({exc})") from exc
    finally:
        db.close()
    out = []
    for key, ans in rows:
        sample_id, unit, millis, _pixels, oracle_id = json.loads(key)
        if unit != "ms":
            raise AnswerLogError(f"{path}: cache key {key!r} is not in the timestamp format this reader knows")
        answer = json.loads(ans)
        out.append({"v": LOG_VERSION, "sample_id": sample_id, "timestamps_s": [m / 1000.0 for m in millis],
                    "positions": None, "letter": answer.get("letter"), "error": answer.get("error"),
                    "oracle_id": oracle_id, "policy": "cache"})
    return out


def read_answer_log(path: str | Path, oracle_id: str | None = None) -> list[dict[str, Any]]:
    """Records of an answer log: ``.jsonl``, ``.parquet`` (needs pyarrow) or an OracleCache SQLite file.

    A log that mixes oracles is refused unless ``oracle_id`` picks one: answers of different
    models are not comparable rewards.
    """
    path = Path(path)
    if not path.is_file():
        raise AnswerLogError(f"answer log {str(path)!r} does not exist; collect one with `tspo eval --log-answers FILE` "
                             "or model.answer_log during training")
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise AnswerLogError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow), or export JSON Lines") from exc
        records = pq.read_table(path).to_pylist()
    elif _is_sqlite(path):
        records = _records_from_cache(path)
    else:
        records = []
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise AnswerLogError(f"{path}:{n}: not a JSON object ({exc}); answer logs are JSON Lines") from exc
    missing = [(n, c) for n, r in enumerate(records, 1) for c in ("sample_id", "timestamps_s", "letter", "oracle_id")
               if c not in r]
    if missing:
        n, col = missing[0]
        raise AnswerLogError(f"{path}: record {n} has no {col!r} field (see docs/PREFERENCE.md for the format)")
    ids = sorted({r["oracle_id"] for r in records})
    if oracle_id is not None:
        records = [r for r in records if r["oracle_id"] == oracle_id]
        if not records:
            raise AnswerLogError(f"{path}: no answers by oracle {oracle_id!r}; it holds {ids}")
    elif len(ids) > 1:
        raise AnswerLogError(f"{path}: answers of several oracles {ids}; pick one (model.preference_oracle_id)")
    return records


def write_answer_log(records: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Write records as JSON Lines, or Parquet when ``path`` ends in ``.parquet`` (needs pyarrow)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [{c: r.get(c) for c in LOG_COLUMNS} for r in records]
    if path.suffix == ".parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise AnswerLogError("writing Parquet needs pyarrow (pip install pyarrow); use a .jsonl path") from exc
        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# -- pairs ----------------------------------------------------------------------------------------
def group_pairs(rewards: torch.Tensor, valid: torch.Tensor | None = None,
                min_margin: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every ordered pair of one group whose rewards differ by more than ``min_margin``.

    Args:
        rewards: float[Q, M], Q groups (questions) of M members; padding marked by ``valid``.
        valid: bool[Q, M] (None = all valid).
        min_margin: >= 0; pairs with ``r_chosen - r_rejected <= min_margin`` (ties) are dropped.
    Returns:
        ``(q, chosen, rejected)`` int64[P] each: group and member indices, ``r[q, chosen] > r[q, rejected]``.
    """
    if rewards.dim() != 2:
        raise AnswerLogError(f"group_pairs: rewards must be [Q, M], got {tuple(rewards.shape)}")
    if min_margin < 0:
        raise AnswerLogError(f"group_pairs: min_margin must be >= 0, got {min_margin}")
    valid = torch.ones_like(rewards, dtype=torch.bool) if valid is None else valid.to(torch.bool)
    if valid.shape != rewards.shape:
        raise AnswerLogError(f"group_pairs: valid {tuple(valid.shape)} must match rewards {tuple(rewards.shape)}")
    diff = rewards.unsqueeze(-1) - rewards.unsqueeze(-2)                       # [Q, M, M]: r_i - r_j
    keep = (diff > min_margin) & valid.unsqueeze(-1) & valid.unsqueeze(-2)
    q, chosen, rejected = keep.nonzero(as_tuple=True)
    return q, chosen, rejected


@dataclass
class PreferencePairs:
    """Preference pairs over the rows of a dataset: ``chosen`` earned more reward than ``rejected``.

    ``index`` int64[P] dataset row (question); ``chosen``/``rejected`` int64[P, k] candidate
    positions (ascending); ``margin`` float32[P] reward difference (> 0). ``stats`` counts what
    was read and what was dropped, and why.
    """

    index: torch.Tensor
    chosen: torch.Tensor
    rejected: torch.Tensor
    margin: torch.Tensor
    stats: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.index.shape[0])

    @classmethod
    def empty(cls, k: int) -> PreferencePairs:
        z = torch.zeros(0, k, dtype=torch.int64)
        return cls(torch.zeros(0, dtype=torch.int64), z, z.clone(), torch.zeros(0))

    def extend(self, other: PreferencePairs) -> PreferencePairs:
        """Both sets of pairs in one (``stats`` summed)."""
        stats = {key: self.stats.get(key, 0) + other.stats.get(key, 0) for key in {*self.stats, *other.stats}}
        return PreferencePairs(torch.cat([self.index, other.index]), torch.cat([self.chosen, other.chosen]),
                               torch.cat([self.rejected, other.rejected]), torch.cat([self.margin, other.margin]),
                               stats)


def pairs_from_groups(index: torch.Tensor, idx: torch.Tensor, rewards: torch.Tensor, valid: torch.Tensor,
                      min_margin: float = 0.0) -> PreferencePairs:
    """Pairs inside the groups of one GRPO rollout (for replay).

    ``index`` int64[B] dataset rows, ``idx`` int64[B, G, k] selections, ``rewards`` float[B, G]
    totals, ``valid`` bool[B, G] (failed answers are never paired).
    """
    q, i, j = group_pairs(rewards.float(), valid, min_margin)
    return PreferencePairs(index[q].long().cpu(), idx[q, i].cpu(), idx[q, j].cpu(),
                           (rewards[q, i] - rewards[q, j]).float().cpu(),
                           {"pairs": int(q.numel())})


def pairs_from_log(records: Sequence[dict[str, Any]], dataset: Any, num_frames: int, w_accuracy: float = 1.0,
                   w_temporal: float = 1.0, min_margin: float = 0.0) -> PreferencePairs:
    """Preference pairs from logged answers about the samples of ``dataset`` (a ``FeatureDataset``).

    Records are dropped and counted in ``stats`` when the query failed (``failed``), names a
    sample not in ``dataset`` (``unknown_sample``), has another number of frames than
    ``num_frames`` (``other_k``), or picks a time that is not one of the sample's candidates
    (``off_grid``); a selection logged twice counts once (``duplicates``). Each remaining
    selection is scored like a training rollout (an unparsed answer is wrong, R_A = 0) and every
    two selections of one question whose rewards differ by more than ``min_margin`` form a pair.
    """
    rows = {s.id: i for i, s in enumerate(dataset.samples)}
    stats = {"records": len(records), "failed": 0, "unknown_sample": 0, "other_k": 0, "off_grid": 0,
             "duplicates": 0}
    kept = []
    for r in records:
        if r.get("error") is not None:
            stats["failed"] += 1
        elif r["sample_id"] not in rows:
            stats["unknown_sample"] += 1
        elif len(r["timestamps_s"]) != num_frames:
            stats["other_k"] += 1
        else:
            kept.append(r)
    if not kept:
        raise AnswerLogError(f"no usable answers in the log: {stats}; the log must hold answered selections of "
                             f"{num_frames} frames about the training samples")
    sample_row = torch.tensor([rows[r["sample_id"]] for r in kept])                             # [N]
    times = torch.tensor([r["timestamps_s"] for r in kept], dtype=torch.float64)               # [N, k]
    used, row_of = sample_row.unique(return_inverse=True)                                      # [S], [N]
    items = [dataset[int(i)] for i in used]
    num_t = max(int(it["timestamps"].shape[0]) for it in items)
    cand = torch.full((len(items), num_t), float("inf"), dtype=torch.float64)                 # [S, T] padded
    mask = torch.zeros(len(items), num_t, dtype=torch.bool)
    for s, it in enumerate(items):
        n = int(it["timestamps"].shape[0])
        cand[s, :n], mask[s, :n] = it["timestamps"], it["target_mask"]
    # Nearest candidate of each pick: the insertion point or the one before it.
    cand_rows = cand[row_of]                                                                   # [N, T]
    hi = torch.searchsorted(cand_rows, times.sort(-1).values).clamp(max=num_t - 1)
    lo = (hi - 1).clamp(min=0)
    t_sorted = times.sort(-1).values
    d_hi, d_lo = (cand_rows.gather(-1, hi) - t_sorted).abs(), (cand_rows.gather(-1, lo) - t_sorted).abs()
    pos = torch.where(d_lo < d_hi, lo, hi)                                                     # [N, k]
    on_grid = (torch.minimum(d_lo, d_hi) <= MATCH_TOL_S).all(-1)
    on_grid &= (pos.diff(dim=-1) > 0).all(-1)        # k distinct candidates, as a policy draws them
    stats["off_grid"] = int((~on_grid).sum())
    # One entry per distinct (sample, selection).
    key = torch.cat([sample_row[:, None], pos], dim=-1)[on_grid]
    keep_ids = on_grid.nonzero().squeeze(-1)
    uniq, first = _first_occurrence(key)
    stats["duplicates"] = int(key.shape[0] - uniq.shape[0])
    ids = keep_ids[first]                                                                      # [U] into kept
    if ids.numel() == 0:
        raise AnswerLogError(f"no logged selection lies on the training candidate grid: {stats}; log with the same "
                             "fps / max_candidates as training")
    pos, row_of, sample_row = pos[ids], row_of[ids], sample_row[ids]
    # Rewards as in training: R_A from the letter, R_T from the target mask; general samples get R_T = 1.
    r_a = torch.tensor([accuracy_reward(kept[int(i)]["letter"], dataset.samples[int(s)].answer)
                        for i, s in zip(ids, sample_row)], dtype=torch.float32)
    needle = torch.tensor([dataset.samples[int(i)].kind == "needle" for i in sample_row])
    r_t = torch.where(needle, picks_in_target(mask[row_of], pos.unsqueeze(1)), torch.ones(len(ids)))
    total = w_accuracy * r_a + w_temporal * r_t
    # Group by question into a padded [Q, M] block, then compare members within each block.
    order = torch.argsort(sample_row, stable=True)
    groups, counts = sample_row[order].unique_consecutive(return_counts=True)
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(len(order)) - starts.repeat_interleave(counts)
    gid = torch.arange(len(groups)).repeat_interleave(counts)
    member = torch.full((len(groups), int(counts.max())), -1, dtype=torch.int64)
    member[gid, slot] = order
    valid = member >= 0
    r_pad = torch.where(valid, total[member.clamp(min=0)], torch.zeros(()))
    q, i, j = group_pairs(r_pad, valid, min_margin)
    a, b = member[q, i], member[q, j]
    stats.update(selections=int(len(ids)), questions=int(len(groups)), pairs=int(q.numel()),
                 questions_with_pairs=int(q.unique().numel()))
    return PreferencePairs(sample_row[a], pos[a], pos[b], (total[a] - total[b]).float(), stats)


def _first_occurrence(key: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unique rows of int64[N, C] and the index of each one's first occurrence (ascending)."""
    uniq, inverse = key.unique(dim=0, return_inverse=True)
    first = torch.full((uniq.shape[0],), key.shape[0], dtype=torch.int64)
    first.scatter_reduce_(0, inverse, torch.arange(key.shape[0]), reduce="amin")
    return uniq, first.sort().values


# -- collecting a log -----------------------------------------------------------------------------
COLLECT_POLICIES = AGENT_FREE_DRAWS  # ("uniform", "clip"): the method registry owns the list


def draw_selections(scores: torch.Tensor | None, shape: tuple[int, ...], num_frames: int, draws: int, tau: float,
                    generator: torch.Generator) -> torch.Tensor:
    """``draws`` random selections of ``num_frames`` candidates: Gumbel-top-k over ``scores / tau``.

    ``scores`` float[..., T] (CLIP similarity, agent scores) or None for uniform draws (every
    k-subset equally likely); ``shape`` is ``(..., T)``, used when ``scores`` is None.
    Returns int64[..., draws, k], ascending positions.
    """
    logits = torch.zeros(tuple(shape)) if scores is None else scores.float() / tau
    return GumbelTopK(num_frames).sample(logits, draws, generator)[0]


@torch.no_grad()
def collect_answers(dataset: Any, oracle: Any, num_frames: int, draws: int, policy: str = "uniform",
                    tau: float = 0.05, rows: Sequence[int] | None = None, seed: int = 0,
                    batch_size: int = 32, frame_size: int = DEFAULT_FRAME_SIZE) -> int:
    """Ask ``oracle`` about ``draws`` random selections of ``num_frames`` candidates per question.

    ``policy``: ``"uniform"`` (every k-subset equally likely) or ``"clip"`` (Gumbel-top-k over the
    CLIP cosine similarity of frame and question, divided by ``tau``). Wrap ``oracle`` in an
    :class:`AnswerLogger` (inside an ``OracleCache``) to keep the answers. ``rows``: dataset rows
    to ask about (default all). ``frame_size``: short side of the whole frames an oracle that needs
    pixels is shown. Returns the number of queries sent (cache hits included).
    """
    from tspo.training.datamodule import collate  # lazy: tspo.training imports this module

    if policy not in COLLECT_POLICIES:
        raise AnswerLogError(f"collect_answers: policy must be one of {COLLECT_POLICIES}, got {policy!r}")
    if not tau > 0:
        raise AnswerLogError(f"collect_answers: tau must be > 0, got {tau}")
    rows = list(range(len(dataset))) if rows is None else list(rows)
    gen, sent = torch.Generator().manual_seed(seed), 0
    for start in range(0, len(rows), batch_size):
        batch = collate([dataset[i] for i in rows[start:start + batch_size]])
        feats, text = batch["features"], batch["text"]
        scores = get_method(policy).score(None, feats, text)                              # None for uniform
        idx = draw_selections(scores, feats.shape[:2], num_frames, draws, tau, gen)        # [B, G, k]
        samples = list(batch["samples"])
        sent += len(ask_about(oracle, samples, group_picks(idx), list(batch["timestamps"].numpy()), frame_size))
    return sent
