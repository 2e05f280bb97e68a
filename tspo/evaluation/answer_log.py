"""Answer logs: every (question, selection) -> answer an oracle gave, kept for later training.

Every oracle answer costs a call to a video LLM; GRPO uses each group once and throws it away.
:class:`AnswerLogger` writes every answer to an *answer log*, :func:`read_answer_log` reads one back
(JSON Lines, Parquet, or an :class:`~tspo.rewards.OracleCache` SQLite file), and
:func:`collect_answers` asks an oracle about random selections to make one. The preference pairs a
log gives are :func:`tspo.objectives.preference.pairs_from_log`'s job.

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
from pathlib import Path
from typing import Any

import torch

from tspo.agents import GumbelTopK
from tspo.agents.methods import AGENT_FREE_DRAWS, get_method
from tspo.errors import TSPOError
from tspo.features.dataset import collate
from tspo.rewards import Oracle, ask_about, group_picks
from tspo.settings import DEFAULT_FRAME_SIZE

LOG_VERSION = 1
LOG_COLUMNS = ("v", "sample_id", "timestamps_s", "positions", "letter", "error", "oracle_id", "policy")

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
