"""GRPO over both zoom stages as small pure functions (coarse span choice, fine frame choice).

One agent scores both stages. For one question and a group of ``G`` rollouts:

    S_c = agent(F[coarse], q)                 [C]      coarse candidates (uniform, on the fine grid)
    spans_g ~ GumbelTopK(num_spans)(S_c / tau)  [G, S]  stage 1: which coarse candidates open spans
    pool = coarse U every member's span frames  [P]      one agent pass over the shared pool
    picks_g ~ GumbelTopK(k)(S_p / tau | member g's own coarse + span frames)   [G, k]   stage 2
    R_A (oracle on the picks), R_T (picks in target), R_Z (share of the evidence inside g's spans)

Credit is assigned per stage (Zoom-Zero's token-selective credit; our decoupled advantages):
the span choice is credited by the zoom reward, ``A_span = w_z A(R_Z)``; the frame choice by
the answer and the temporal reward, ``A_frames = w_a A(R_A) + w_t A(R_T)``, each ``A`` the
group-normalised advantage of :func:`tspo.objectives.grpo.group_advantages`. The loss is the TSPO loss of
each stage with its own advantages, summed.

Shapes: ``G`` group members, ``C`` coarse candidates, ``S`` spans per member, ``P`` pool frames,
``k`` picks, ``E`` evidence spans. Seconds unless named ``_idx``/positions.
"""

from __future__ import annotations

import numpy as np
import torch

from tspo.objectives.grpo import ObjectiveInputError, group_advantages, tspo_loss
from tspo.spans import in_spans, span_hits, spans_around
from tspo.video import even_positions

# A logit no Gumbel draw can lift above a real one (finite, so the policy's checks accept it).
MASKED_LOGIT = -1e9
_EVIDENCE_STEP_S = 0.05


def coarse_positions(timestamps_s: np.ndarray, num_coarse: int) -> np.ndarray:
    """int64[C]: evenly spaced positions into a fine grid of ``T`` candidates (``C = min(num_coarse, T)``),
    the grid points :func:`tspo.video.candidate_times` keeps when it caps the grid."""
    num = len(timestamps_s)
    if num < 1 or num_coarse < 1:
        raise ObjectiveInputError(f"coarse_positions: need T >= 1 and num_coarse >= 1, got {num}, {num_coarse}")
    return even_positions(num, num_coarse)


def spans_from_picks(coarse_times_s: torch.Tensor, picks: torch.Tensor, width_s: float,
                     duration_s: float) -> torch.Tensor:
    """Spans ``[t - w/2, t + w/2)`` (clipped to the video) around picked coarse candidates.

    ``coarse_times_s`` float[C], ``picks`` int64[G, S] -> float64[G, S, 2].
    """
    t = coarse_times_s.to(torch.float64)[picks]
    return torch.from_numpy(spans_around(t.numpy(), width_s, duration_s))


def member_pool_mask(pool_times_s: torch.Tensor, is_coarse: torch.Tensor, spans_s: torch.Tensor) -> torch.Tensor:
    """bool[G, P]: pool frames member ``g`` may pick (the coarse ones and those inside its own spans).

    ``pool_times_s`` float[P], ``is_coarse`` bool[P], ``spans_s`` float[G, S, 2].
    """
    groups, num_spans = spans_s.shape[:2]
    hits = span_hits(pool_times_s.double().numpy(), spans_s.reshape(-1, 2).double().numpy())   # [P, G * S]
    inside = torch.from_numpy(hits.reshape(-1, groups, num_spans).any(-1).T.copy())         # [G, P]
    return inside | is_coarse[None, :]


def masked_logits(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``logits`` [P] broadcast to each member's choice set: [P], bool[G, P] -> [G, P]."""
    if mask.shape[-1] != logits.shape[-1]:
        raise ObjectiveInputError(f"masked_logits: mask {tuple(mask.shape)} does not match logits {tuple(logits.shape)}")
    return torch.where(mask, logits.unsqueeze(0), torch.full_like(logits, MASKED_LOGIT).unsqueeze(0))


def zoom_reward(spans_s: torch.Tensor | np.ndarray, evidence_s) -> np.ndarray:
    """R_Z per member: the share of the evidence seconds inside the member's spans, in [0, 1].

    ``spans_s`` float[G, S, 2]; ``evidence_s`` [[start, end], ...] (the evidence spans, or the
    target spans when a sample has none). Measured on a 50 ms grid over the evidence.
    """
    spans = np.asarray(spans_s, dtype=np.float64)
    ev = np.asarray(evidence_s, dtype=np.float64).reshape(-1, 2)
    if ev.shape[0] == 0:
        raise ObjectiveInputError("zoom_reward: the sample has no evidence or target spans to reward zooming into")
    # midpoints of 50 ms steps over every evidence span
    points = np.concatenate([np.arange(a, b, _EVIDENCE_STEP_S) + _EVIDENCE_STEP_S / 2 for a, b in ev])
    points = points[in_spans(points, ev)]
    groups, num_spans = spans.shape[:2]
    inside = span_hits(points, spans.reshape(-1, 2)).reshape(-1, groups, num_spans).any(-1)   # [N, G]
    return inside.mean(0)


def zoom_advantages(r_zoom: torch.Tensor, r_a: torch.Tensor, r_t: torch.Tensor, valid: torch.Tensor | None = None,
                    w_zoom: float = 1.0, w_a: float = 1.0, w_t: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-stage advantages: ``(A_span, A_frames)``, each float[B, G] (or [G]).

    ``A_span = w_zoom A(R_Z)`` credits the coarse span choice; ``A_frames = w_a A(R_A) + w_t A(R_T)``
    credits the fine frame choice. Failed oracle answers (``valid`` False) get 0 in both.
    """
    if not (r_zoom.shape == r_a.shape == r_t.shape):
        raise ObjectiveInputError(f"zoom_advantages: rewards differ in shape: {tuple(r_zoom.shape)}, "
                                  f"{tuple(r_a.shape)}, {tuple(r_t.shape)}")
    a_span = w_zoom * group_advantages(r_zoom, valid)
    a_frames = w_a * group_advantages(r_a, valid) + w_t * group_advantages(r_t, valid)
    return a_span, a_frames


def zoom_loss(logp_span: torch.Tensor, logp_frames: torch.Tensor, adv_span: torch.Tensor, adv_frames: torch.Tensor,
              valid: torch.Tensor | None = None) -> torch.Tensor:
    """Sum of the TSPO loss of each stage under its own advantages (on-policy, paper Eq. 9).

    ``logp_span`` float[B, G, S], ``logp_frames`` float[B, G, k], advantages float[B, G] (the
    unbatched [G, ...] forms work too).
    """
    return tspo_loss(logp_span, None, adv_span, valid) + tspo_loss(logp_frames, None, adv_frames, valid)
