"""Memoise oracle answers by (sample id, selected timestamps, frame size, oracle id).

A GRPO run at low temperature draws the same selection again and again (within a group and across
steps); the frozen oracle's answer to it cannot change, so it is asked once. Failed answers
(``error`` set) are never cached (the next ask retries them); unparsed answers are (the model did
answer). With ``path`` the cache lives in SQLite, so a resumed run does not re-ask.

The selection is keyed by its timestamps, not its candidate positions: a position's meaning
depends on the candidate grid (fps, max_candidates), so a persisted cache reused with another
grid would hand back answers about other frames. The frames' pixel size (H x W) is part of the
key too, since the caller's resize changes what the oracle sees.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import numpy as np

from .errors import OracleConfigError
from .oracle import Oracle, OracleAnswer, OracleQuery, check_queries


def cache_key(query: OracleQuery, oracle_id: str) -> str:
    """JSON key: sample id, sorted timestamps in integer milliseconds, frame ``"HxW"`` (None without
    frames), oracle id. Positions are ignored (their meaning depends on the candidate grid)."""
    millis = sorted(int(m) for m in np.rint(query.timestamps_s * 1000.0))
    pixels = None if query.frames is None else f"{query.frames.shape[1]}x{query.frames.shape[2]}"
    return json.dumps([query.sample_id, "ms", millis, pixels, oracle_id], separators=(",", ":"))


class OracleCache:
    """An :class:`Oracle` that wraps another and memoises its answers (failed ones excepted).

    ``hits``/``misses`` count queries (a duplicate selection inside one batch is a hit: it is
    asked once); ``hit_rate`` = hits / (hits + misses).
    """

    def __init__(self, oracle: Oracle, path: str | Path | None = None):
        if not isinstance(oracle, Oracle):
            raise OracleConfigError(f"OracleCache wraps an Oracle (oracle_id, needs_frames, answer); got {type(oracle).__name__}")
        self.oracle = oracle
        self.oracle_id = oracle.oracle_id
        self.needs_frames = oracle.needs_frames
        self.hits = 0
        self.misses = 0
        self._memory: dict[str, OracleAnswer] = {}
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self.path = Path(path) if path is not None else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False)
            self._db.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, answer TEXT NOT NULL)")
            self._db.commit()

    def __repr__(self) -> str:
        return f"OracleCache({self.oracle!r}, path={str(self.path) if self.path else None}, hit_rate={self.hit_rate:.3f})"

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def stats(self) -> dict[str, float | int]:
        return {"hits": self.hits, "misses": self.misses, "hit_rate": self.hit_rate, "size": len(self)}

    def __len__(self) -> int:
        if self._db is not None:
            return int(self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0])
        return len(self._memory)

    def _lookup(self, key: str) -> OracleAnswer | None:
        if key in self._memory:
            return self._memory[key]
        if self._db is not None:
            row = self._db.execute("SELECT answer FROM answers WHERE key = ?", (key,)).fetchone()
            if row is not None:
                ans = OracleAnswer.from_dict(json.loads(row[0]))
                self._memory[key] = ans
                return ans
        return None

    def _store(self, items: list[tuple[str, OracleAnswer]]) -> None:
        for key, ans in items:
            self._memory[key] = ans
        if self._db is not None and items:
            self._db.executemany(
                "INSERT OR REPLACE INTO answers (key, answer) VALUES (?, ?)",
                [(key, json.dumps(ans.to_dict())) for key, ans in items],
            )
            self._db.commit()

    def answer(self, queries: list[OracleQuery]) -> list[OracleAnswer]:
        """Answers in order; only the distinct uncached selections reach the wrapped oracle, in one call."""
        queries = check_queries(queries, self.needs_frames, "OracleCache")
        with self._lock:
            keys = [cache_key(q, self.oracle_id) for q in queries]
            found = {k: a for k in set(keys) if (a := self._lookup(k)) is not None}
            to_ask: dict[str, OracleQuery] = {}
            for key, q in zip(keys, queries):
                if key not in found and key not in to_ask:
                    to_ask[key] = q
            self.misses += len(to_ask)
            self.hits += len(queries) - len(to_ask)
        fresh: dict[str, OracleAnswer] = {}
        if to_ask:
            answers = self.oracle.answer(list(to_ask.values()))
            if len(answers) != len(to_ask):
                raise RuntimeError(f"{self.oracle_id} returned {len(answers)} answers for {len(to_ask)} queries")
            fresh = dict(zip(to_ask, answers))
            with self._lock:
                self._store([(k, a) for k, a in fresh.items() if not a.is_failed])
        return [OracleAnswer(**vars(found.get(k) or fresh[k])) for k in keys]

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> OracleCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
