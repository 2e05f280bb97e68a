"""The one path from selections to the oracle: picks of samples -> queries -> ONE ``oracle.answer`` call.

Training's rollout (:func:`tspo.training.grpo_step.ask_oracle`), the answer logs and the evaluation
loop (:func:`tspo.evaluation.judge.judge_selections`) all ask through :func:`ask_about`, so a query is
built the same way everywhere: :meth:`~tspo.rewards.OracleQuery.for_sample`, with whole frames decoded
once per sample only when the oracle needs pixels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tspo.video import read_whole_frames

from .errors import OracleInputError
from .oracle import OracleQuery

if TYPE_CHECKING:
    import torch


def decode_picks(sample: Any, cand_times: np.ndarray, picks: Mapping[str, np.ndarray],
                 frame_size: int) -> dict[str, np.ndarray]:
    """Whole frames of every selection's picks, the union decoded once: -> {key: uint8[k, H, W, 3]}."""
    frames = read_whole_frames(sample.video, cand_times[np.concatenate(list(picks.values()))], frame_size)
    ends = np.cumsum([len(p) for p in picks.values()])
    return dict(zip(picks, np.split(frames, ends[:-1])))


def ask_about(oracle: Any, samples: Sequence[Any], picks: Sequence[Mapping[Any, Any]],
              cand_times: Sequence[np.ndarray], frame_size: int) -> list[Any]:
    """The one selections -> oracle path: one query per selection (:meth:`OracleQuery.for_sample`), whole
    frames (short side ``frame_size``) decoded once per sample only when the oracle needs pixels, ONE
    ``oracle.answer`` call; -> answers, sample-major in the order of each ``picks[b]``.

    ``picks[b]``: {key: int[k] candidate positions} of ``samples[b]`` (k may differ per key);
    ``cand_times[b]`` float64[T] seconds of its candidates.
    """
    if not (len(samples) == len(picks) == len(cand_times)):
        raise OracleInputError(f"ask_about: {len(samples)} samples, {len(picks)} pick sets and "
                         f"{len(cand_times)} candidate time arrays must have the same length")
    needs_frames = getattr(oracle, "needs_frames", False)
    queries = []
    for sample, row, t in zip(samples, picks, cand_times):
        row = {m: np.asarray(p, dtype=np.int64).reshape(-1) for m, p in row.items()}
        t = np.asarray(t, dtype=np.float64)
        frames = decode_picks(sample, t, row, frame_size) if needs_frames else {}
        queries += [OracleQuery.for_sample(sample, t[p], p, frames.get(m)) for m, p in row.items()]
    return oracle.answer(queries)


def group_picks(idx: torch.Tensor) -> list[dict[int, np.ndarray]]:
    """idx int64[B, G, k] -> per sample {member g: int64[k]} (the pick sets :func:`ask_about` takes)."""
    positions = idx.cpu().numpy()
    return [dict(enumerate(row)) for row in positions]
