"""What one training step may use: :class:`StepContext`, built by ``TSPOModule`` for every step.

A step function (:mod:`~tspo.training.grpo_step`, :mod:`~tspo.training.zoom_step`,
:mod:`~tspo.training.replay_step`) gets this small context instead of the Lightning module, so it
reads top to bottom without reaching into the module's private state, and nothing imports the module
back (no circle).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from tspo.agents import GumbelTopK, TemporalAgent
from tspo.settings import clip_num_frames
from tspo.training.options import GRPOOptions, RewardOptions


def step_seed(seed: int, rank: int, batch: int) -> int:
    """A 63-bit seed for the Gumbel noise of one training batch on one rank.

    The noise depends only on (seed, rank, batches seen), not on a generator's history, so a run
    resumed from a checkpoint draws exactly the noise the uninterrupted run would have.
    """
    digest = hashlib.sha256(f"tspo|{seed}|{rank}|{batch}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def agent_scores(agent: TemporalAgent, features: torch.Tensor, text: torch.Tensor,
                 options: torch.Tensor | None = None, option_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Agent scores S float32[B, T] of features [B, T, D] and text [B, D], always in float32; ``options``
    [B, N, D] / ``option_mask`` bool[B, N] (a batch's padded option embeddings, :func:`batch_options`)
    reach agents that read them (the filter family; the paper's agent ignores them).

    Under bf16 autocast S in [-2, 2] would be rounded to ~2^-7, which S / tau at tau = 0.01
    magnifies to ~0.8 logits of noise; the agent is tiny, so full precision costs nothing.
    """
    with torch.autocast(device_type=features.device.type, enabled=False):
        if options is None:
            return agent(features.float(), text.float()).float()
        return agent(features.float(), text.float(), options.float(), option_mask).float()


def batch_options(batch: dict[str, Any]) -> dict[str, torch.Tensor | None]:
    """``{"options": [B, N, D] | None, "option_mask": bool[B, N] | None}`` of a collated batch
    (:func:`tspo.features.dataset.collate`), as keyword arguments of :func:`agent_scores`."""
    return {"options": batch.get("options"), "option_mask": batch.get("option_mask")}


def clipped_policy(policy: GumbelTopK, num_candidates: int) -> GumbelTopK:
    """The sampler for a batch of ``num_candidates`` candidates: k clipped to T by the one rule
    (:func:`tspo.settings.clip_num_frames`, as ``tspo select``; the module says so once at setup)."""
    k, _ = clip_num_frames(policy.k, num_candidates)
    return policy if k == policy.k else GumbelTopK(k)


@dataclass
class StepOutput:
    """A step's loss, the metrics to log (``train/...``), and the progress-bar value (None: not shown)."""

    loss: torch.Tensor
    metrics: dict[str, Any]
    batch_size: int
    progress: torch.Tensor | float | None = None


@dataclass
class StepContext:
    """The agent(s), sampler, oracle and options of one step, plus its seeded noise and temperature.

    ``update``: with several PPO iterations per rollout (manual optimisation), a callable that
    back-propagates a loss and takes one optimizer step; None when Lightning's automatic loop does.
    """

    agent: TemporalAgent
    policy: GumbelTopK
    oracle: Any
    generator: torch.Generator
    tau: float
    device: torch.device
    grpo: GRPOOptions
    reward: RewardOptions
    ref_agent: TemporalAgent | None = None
    update: Callable[[torch.Tensor], None] | None = field(default=None, repr=False)

    def scores(self, features: torch.Tensor, text: torch.Tensor, agent: TemporalAgent | None = None,
               options: torch.Tensor | None = None, option_mask: torch.Tensor | None = None) -> torch.Tensor:
        """S float32[B, T] of the trained agent (or ``agent``, e.g. the frozen reference); ``options`` /
        ``option_mask``: :func:`batch_options`."""
        return agent_scores(agent or self.agent, features, text, options, option_mask)
