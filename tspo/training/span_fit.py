"""A supervised fit of an agent to the synthesizer's evidence spans, outside Lightning (beyond the paper).

The warm start of :mod:`tspo.training.warmstart_step` runs inside ``tspo train fit``; this is the same
supervision as a plain loop over a :class:`tspo.features.dataset.FeatureDataset`, for benchmarks and
quick experiments (``benchmarks/bench_filter_goal.py``):

    S = agent(F_f, F_t, options, frame_mask)     [B, T]      needles padded to one T (``pad_needles``)
    G = candidates inside each evidence group    [B, G, T]   (``evidence_groups_s``; one group per key event)
    L = evidence_group_loss(S, G, tau)                       (``loss="group"``; ``"uniform"``: the
        + spread · set_rule_loss(set_logit(F_t))              listwise loss on the union, at S / tau)

``spread`` trains the filter agent's set head (suppress for count / order, keep for motion,
:mod:`tspo.objectives.set_rule`); ``base=False`` freezes the paper part, so only the filter and the
set head learn (the agent keeps CLIP's ranking wherever the filter stays at zero). The set head is a
logistic regression on the question embedding, and question embeddings are nearly collinear (an
"after" question and its cue at cosine 0.99), so minibatch Adam leaves it far from its optimum (on the
goal world: on for 18 % of count questions after 1,500 steps); ``head_steps`` > 0 then fits it to
convergence, full batch (L-BFGS) on every training question (:func:`fit_set_head`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

from tspo.agents.filter import train_only
from tspo.errors import TSPOError
from tspo.features.dataset import pad_options
from tspo.objectives.set_rule import set_head_loss, set_rule_loss, set_rule_targets
from tspo.objectives.warmstart import (
    DEFAULT_GROUP_TAU,
    LOSS_SCALE_LR_FACTOR,
    evidence_group_loss,
    evidence_listwise_loss,
    loss_scaled,
)
from tspo.progress import progress_bar
from tspo.training.options import DEFAULT_HEAD_STEPS, WARMSTART_LOSSES
from tspo.training.warmstart_step import evidence_groups, group_masks, pad_group_masks, per_frame_groups

HEAD_PARTS = ("filter", "set_head")   # the filter agent's parts that train with base=False


class SpanFitError(TSPOError, ValueError):
    """A span fit that cannot run: bad options, an agent without the parts asked for, no supervised sample."""


@dataclass(frozen=True)
class SpanFit:
    """Options of :func:`span_fit`. ``steps`` Adam steps of ``batch_size`` needles at learning rate ``lr``;
    ``tau``: softmax temperature of the evidence loss (score units); ``spread``: weight of the set head's
    loss (0 = off); ``base``: whether the paper part trains too (False: only ``filter`` and ``set_head``);
    ``loss``: ``"group"`` or ``"uniform"`` (:class:`tspo.training.options.WarmStartOptions`);
    ``head_steps``: L-BFGS iterations of the full-batch set-head fit after the span fit (0 = off; skipped
    for agents without a set head or data without a set-rule preference; :func:`fit_set_head`); ``learn_scale``: the evidence loss reads ``exp(a) · S`` with a learned scalar ``a`` (not part of
    the agent: rankings do not change with it), so the loss's temperature need not be met by the filter
    amplifying every profile (the paper part's ``2 cos`` spans ~0.1, and at tau 0.1 the filter otherwise
    learns to scale up the scores of kinds the similarity already ranks right); ``multi_pick_frames``: questions
    needing several picks in one event get one group per evidence frame (:func:`needle_groups`);
    ``worst_group``: a needle's evidence loss is its worst group's, not the mean over its groups
    (``evidence_group_loss(reduce="max")``; ``loss="group"`` only); ``progress``: a progress bar.

    Defaults: the configuration measured best on the goal protocol's ratio-1.0 training world over two
    seeds (``benchmarks/results/filter_goal_scale.json``: paper part frozen, learned loss scale, set head
    fitted full batch). ``multi_pick_frames`` stays off: it helps motion only together with ratio-0.5
    needles in training and cost colour / count at ratio 0.5 without them. With them (``--train-mix 0.5``),
    ``base=True, multi_pick_frames=True`` is the best measured (``filter_goal_mix_base``: every goal met
    on seeds 0 and 1, both held-out ratios, but count 0.85-0.94 on seeds 2 and 3, ``filter_goal_mix_base_s23``;
    with the paper part frozen, count at ratio 0.5 stays at 0.82-0.88, its misses picks on texture filler). ``worst_group`` gave no gain on count."""

    steps: int = 1500
    batch_size: int = 32
    lr: float = 1e-3
    tau: float = DEFAULT_GROUP_TAU
    spread: float = 1.0
    base: bool = False
    loss: str = "group"
    head_steps: int = DEFAULT_HEAD_STEPS
    learn_scale: bool = True
    multi_pick_frames: bool = False
    worst_group: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        for name, low in (("steps", 1), ("batch_size", 1), ("head_steps", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise SpanFitError(f"SpanFit.{name} must be an int >= {low}, got {value!r}")
        for name, low_ok in (("lr", False), ("tau", False), ("spread", True)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not (value >= 0 if low_ok else value > 0):
                raise SpanFitError(f"SpanFit.{name} must be a number {'>= 0' if low_ok else '> 0'}, got {value!r}")
        for name in ("base", "learn_scale", "multi_pick_frames", "worst_group"):
            if not isinstance(getattr(self, name), bool):
                raise SpanFitError(f"SpanFit.{name} must be true or false, got {getattr(self, name)!r}")
        if self.loss not in WARMSTART_LOSSES:
            raise SpanFitError(f"SpanFit.loss must be one of {WARMSTART_LOSSES}, got {self.loss!r}")


def needle_groups(item: dict[str, Any], multi_pick_frames: bool = False) -> torch.Tensor:
    """bool[G, T] of one dataset item (``FeatureDataset[i]``: ``timestamps`` float[T] seconds and
    ``sample``): the candidates inside each of its evidence groups (G = 0 without evidence).

    ``multi_pick_frames``: a question whose coverage rule needs several picks (``min_picks`` >= 2, the
    motion kind) gets one group per evidence frame instead (:func:`~tspo.training.warmstart_step.per_frame_groups`)."""
    groups = group_masks(item["timestamps"].numpy(), evidence_groups(item["sample"]))
    return torch.from_numpy(per_frame_groups(groups, item["sample"]) if multi_pick_frames else groups)


class SpanPool:
    """The needles a span fit draws its batches from: every item of a dataset (``FeatureDataset``) and its
    evidence groups (:func:`needle_groups`); ``usable`` int64[U]: the items with evidence inside their
    candidates that ``keep`` (a predicate on the manifest sample; None: all) accepts. Used by
    :func:`span_fit` and by the Lightning warm start with ``model.warmstart_batch_size``."""

    def __init__(self, dataset: Any, multi_pick_frames: bool = False, keep: Any = None) -> None:
        self.items = [dataset[i] for i in range(len(dataset))]
        self.groups = [needle_groups(it, multi_pick_frames) for it in self.items]
        self.usable = np.asarray([i for i, (it, g) in enumerate(zip(self.items, self.groups))
                                  if bool(g.any()) and (keep is None or keep(it["sample"]))], dtype=np.int64)
        if self.usable.size == 0:
            raise SpanFitError("span fit: no sample of the dataset has evidence spans inside its candidates (of the "
                               "kinds supervised); span supervision needs a synthetic manifest with "
                               "evidence_spans_s / evidence_groups_s")

    def draw(self, batch_size: int, generator: torch.Generator) -> tuple[dict[str, Any], list[Any]]:
        """``batch_size`` usable needles drawn uniformly with replacement by ``generator`` -> (their padded
        batch, :func:`pad_needles` with groups; their manifest samples)."""
        pick = self.usable[torch.randint(0, self.usable.size, (batch_size,), generator=generator).numpy()]
        batch = pad_needles([self.items[i] for i in pick], [self.groups[i] for i in pick])
        return batch, [self.items[i]["sample"] for i in pick]


def pad_needles(items: Sequence[dict[str, Any]], groups: Sequence[torch.Tensor] | None = None) -> dict[str, Any]:
    """Batch needles of different lengths: items (``FeatureDataset[i]``: features [T_i, D], text [D],
    options [N_i, D]) and their groups bool[G_i, T_i] -> ``features`` [B, T, D] (zeros past T_i),
    ``text`` [B, D], ``options`` [B, N, D] | None (no item has options), ``option_mask`` bool[B, N] | None,
    ``frame_mask`` bool[B, T] (True = a real frame), ``timestamps`` float64[B, T] seconds (NaN where padded;
    when the items carry them) and ``groups`` bool[B, G, T] (False where padded)."""
    if not items:
        raise SpanFitError("pad_needles: no items; give at least one FeatureDataset item")
    lengths = torch.tensor([int(it["features"].shape[0]) for it in items])                  # [B]
    features = pad_sequence([it["features"].float() for it in items], batch_first=True)      # [B, T, D]
    frame_mask = torch.arange(features.shape[1])[None, :] < lengths[:, None]                  # [B, T]
    out: dict[str, Any] = {"features": features, "text": torch.stack([it["text"] for it in items]).float(),
                           "frame_mask": frame_mask, "options": None, "option_mask": None}
    if all("timestamps" in it for it in items):   # NaN past T_i: no span holds a padded frame
        out["timestamps"] = pad_sequence([it["timestamps"].double() for it in items], batch_first=True,
                                         padding_value=float("nan"))                          # [B, T] seconds
    if any(int(it["options"].shape[0]) for it in items if "options" in it):
        out["options"], out["option_mask"] = pad_options([it["options"].float() for it in items])
    if groups is not None:
        if len(groups) != len(items):
            raise SpanFitError(f"pad_needles: {len(groups)} group masks for {len(items)} items; give one per item")
        bad = [i for i, (g, n) in enumerate(zip(groups, lengths.tolist())) if g.dim() != 2 or g.shape[1] != n]
        if bad:
            raise SpanFitError(f"pad_needles: group masks must be bool[G_i, T_i] with the item's T_i; rows {bad} are not")
        out["groups"] = pad_group_masks(groups, features.shape[1])
    return out


def trainable_parameters(agent: torch.nn.Module, base: bool) -> list[torch.nn.Parameter]:
    """The parameters a span fit updates: all (``base``) or only the filter agent's ``filter`` and
    ``set_head``; the others get ``requires_grad = False``."""
    if base:
        return [p for p in agent.parameters() if p.requires_grad]
    heads = train_only(agent, HEAD_PARTS)
    if not heads:
        raise SpanFitError("SpanFit(base=False) trains only the filter agent's filter and set head; this agent has "
                           "neither (build a FilterAgent, or set base=True)")
    return heads


def padded_scores(agent: torch.nn.Module, batch: dict[str, Any]) -> torch.Tensor:
    """The agent's scores float32[B, T] of a padded batch (:func:`pad_needles`): -inf on padded frames;
    options reach agents that read them. Full precision, as :func:`tspo.training.context.agent_scores`."""
    if not getattr(agent, "reads_frame_mask", False):
        raise SpanFitError(f"padded_scores: {type(agent).__name__} cannot score a padded batch of needles of different "
                           f"lengths (it reads no frame mask); use the filter family (FilterAgent)")
    kwargs = {"frame_mask": batch["frame_mask"]}
    if getattr(agent, "reads_options", False) and batch["options"] is not None:
        kwargs.update(options=batch["options"].float(), option_mask=batch["option_mask"])
    with torch.autocast(device_type=batch["features"].device.type, enabled=False):
        return agent(batch["features"].float(), batch["text"].float(), **kwargs).float()


def span_loss(agent: torch.nn.Module, batch: dict[str, Any], samples: Sequence[Any], options: SpanFit,
              log_scale: torch.Tensor | None = None, scores: torch.Tensor | None = None
              ) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss of one padded batch (:func:`pad_needles` with groups; ``samples`` its manifest samples):
    evidence loss (of ``exp(log_scale) · S``; None: of S) + ``spread`` · set-rule loss -> (scalar,
    {"evidence": float, "set": float}). ``scores``: the agent's scores of the batch when the caller has
    them already (:func:`padded_scores`; None: computed here)."""
    scores = loss_scaled(padded_scores(agent, batch) if scores is None else scores, log_scale, batch["frame_mask"])
    groups = batch["groups"]
    if options.loss == "group":
        evidence = evidence_group_loss(scores, groups, options.tau, "max" if options.worst_group else "mean")
    else:
        evidence = evidence_listwise_loss(scores / options.tau, groups.any(1))
    parts = {"evidence": float(evidence.detach())}
    loss = evidence
    aux = set_head_loss(agent, batch["text"], samples) if options.spread else None
    if aux is not None:
        parts["set"] = float(aux.detach())
        loss = loss + options.spread * aux
    return loss, parts


def fit_set_head(agent: torch.nn.Module, text: torch.Tensor, samples: Sequence[Any],
                 steps: int = DEFAULT_HEAD_STEPS) -> float:
    """Fit the filter agent's set head alone, full batch, to :func:`set_rule_targets` of ``samples``:
    text float[N, D] (their question embeddings), ``steps`` L-BFGS iterations (deterministic, no
    randomness) -> the final set-rule loss. The rest of the agent is untouched."""
    head = getattr(agent, "set_head", None)
    if head is None:
        raise SpanFitError("fit_set_head: the agent has no set head (build a FilterAgent)")
    if text.dim() != 2 or text.shape[0] != len(samples):
        raise SpanFitError(f"fit_set_head: text must be [N, D] with one row per sample (N = {len(samples)}), "
                           f"got {tuple(text.shape)}")
    target, weight = set_rule_targets(samples)
    if not bool(weight.any()):
        raise SpanFitError("fit_set_head: no sample has a set-rule preference (count / order / motion coverage "
                           "rules); nothing to fit")
    text = text.detach().float()
    for p in head.parameters():
        p.requires_grad_(True)
    optimizer = torch.optim.LBFGS(head.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = set_rule_loss(agent.set_logit(text), target, weight)   # targets computed once, not per iteration
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        return float(set_rule_loss(agent.set_logit(text), target, weight))


def span_fit(agent: torch.nn.Module, dataset: Any, options: SpanFit, generator: torch.Generator | None = None
             ) -> list[float]:
    """Fit ``agent`` to the evidence groups of ``dataset`` (a :class:`~tspo.features.dataset.FeatureDataset`;
    samples without evidence are skipped) for ``options.steps`` Adam steps; batches drawn with
    ``generator`` (None: seed 0), so a seed and the agent's initial weights fix the run. Leaves the agent
    in eval mode and returns the loss of every step (float, length ``steps``)."""
    if not isinstance(options, SpanFit):
        raise SpanFitError(f"span_fit: options must be a SpanFit, got {type(options).__name__}")
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    pool = SpanPool(dataset, options.multi_pick_frames)
    groups_of_params = [{"params": trainable_parameters(agent, options.base)}]
    log_scale = None
    if options.learn_scale:   # a scalar on the loss side (loss_scaled), at its own learning rate
        log_scale = torch.zeros((), requires_grad=True)
        groups_of_params.append({"params": [log_scale], "lr": LOSS_SCALE_LR_FACTOR * options.lr})
    optimizer = torch.optim.Adam(groups_of_params, lr=options.lr)
    agent.train()
    losses: list[float] = []
    bar = progress_bar(range(options.steps), desc="span fit", unit="step", disable=not options.progress)
    for _ in bar:
        batch, samples = pool.draw(options.batch_size, generator)
        loss, parts = span_loss(agent, batch, samples, options, log_scale)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        if options.progress:
            bar.set_postfix({k: f"{v:.3f}" for k, v in parts.items()}, refresh=False)
    samples = [it["sample"] for it in pool.items]
    if options.head_steps and hasattr(agent, "set_head") and bool(set_rule_targets(samples)[1].any()):
        fit_set_head(agent, torch.stack([it["text"] for it in pool.items]), samples, options.head_steps)
    agent.eval()
    return losses


__all__ = ["SpanFit", "SpanFitError", "SpanPool", "fit_set_head", "needle_groups", "pad_needles", "padded_scores", "span_fit",
           "span_loss", "trainable_parameters"]
