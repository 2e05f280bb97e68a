"""Selection methods = a scorer x a rule: the one registry every entry point asks.

A *scorer* turns candidate features and the question's text feature into one score per candidate
(``tspo``: the temporal agent's S; ``clip``: cosine similarity). A *rule* turns scores into k
candidate positions (``top-k``, ``uniform`` — needs no scores —, ``bin-max``, ``aks``, ``nms``:
temporal non-max suppression, set-aware; ``shot``: the same, a pick's window stopping at its shot's cuts,
which needs the candidates' features to find the cuts; the rule functions live in :mod:`tspo.agents.rules` as separately tested pure functions). The named
methods are fixed combinations; any other ``SCORER+RULE`` (e.g. ``tspo+bin-max``) works as well.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from tspo.agents.rules import (
    DEFAULT_NMS_RADIUS,
    select_aks,
    select_bin_max,
    select_nms,
    select_topk,
    select_uniform,
    shot_ids,
)


def score_agent(agent: torch.nn.Module, features: torch.Tensor, text: torch.Tensor,
                options: torch.Tensor | None = None, option_mask: torch.Tensor | None = None) -> torch.Tensor:
    """The temporal agent's scores: features [..., T, D], text [..., D], options [..., N, D] (a multiple-choice
    question's option embeddings, or None), option_mask bool[..., N] -> float32 [..., T]."""
    if options is None:
        return agent(features, text).float()
    return agent(features, text, options, option_mask).float()


def score_clip(agent: torch.nn.Module | None, features: torch.Tensor, text: torch.Tensor,
               options: torch.Tensor | None = None, option_mask: torch.Tensor | None = None) -> torch.Tensor:
    """CLIP cosine similarity of every candidate with the question: [..., T, D], [..., D] -> [..., T]
    (the baseline ignores options)."""
    return F.cosine_similarity(features, text[..., None, :], dim=-1).float()


SCORERS: dict[str, Callable[..., torch.Tensor]] = {
    "tspo": score_agent,
    "clip": score_clip,
}


@dataclass(frozen=True)
class Rule:
    """A selection rule: ``pick(scores [T] | [B, T] | None, T, k) -> int64 positions``, ascending.

    ``needs_scores``: False for rules that only look at the grid. ``batched``: the rule takes a
    batch ``[B, T]`` of score rows at once and keeps exactly k per row. ``drawable``: the rule has a
    random version, Gumbel-top-k over its scores (uniform: over none), which GRPO, ``--log-draws`` and
    answer collection draw from. ``set_aware``: ``pick`` takes a fourth argument, the suppression
    radius (frames; int or int64[B]; None = the rule's default). ``needs_features``: ``pick`` also takes
    the candidates' features [T, D] | [B, T, D] (keyword ``features``) and the cut (keyword
    ``cut_distance``, None: ``tspo.settings.DEFAULT_CUT_DISTANCE``), to find shot cuts."""

    name: str
    pick: Callable[[torch.Tensor | None, int, int], torch.Tensor]
    needs_scores: bool = True
    batched: bool = False
    drawable: bool = False
    set_aware: bool = False
    needs_features: bool = False


def _uniform(scores: torch.Tensor | None, num_candidates: int, k: int) -> torch.Tensor:
    idx = select_uniform(num_candidates, k)
    return idx if scores is None or scores.dim() == 1 else idx.expand(*scores.shape[:-1], k)


RULES: dict[str, Rule] = {
    "top-k": Rule("top-k", lambda scores, num, k: select_topk(scores, k), batched=True, drawable=True),
    "uniform": Rule("uniform", _uniform, needs_scores=False, batched=True, drawable=True),
    "bin-max": Rule("bin-max", lambda scores, num, k: select_bin_max(scores, k)),
    "aks": Rule("aks", lambda scores, num, k: select_aks(scores, k)),
    # Fixed radius unless the scorer's agent chooses one per question (Method.set_radius).
    "nms": Rule("nms", lambda scores, num, k, radius=None: select_nms(
        scores, k, DEFAULT_NMS_RADIUS if radius is None else radius), batched=True, set_aware=True),
    # As nms, a pick's window stopping at its shot's cuts (cuts from the features); radius 0: top-k.
    "shot": Rule("shot", lambda scores, num, k, radius=None, features=None, cut_distance=None: select_nms(
        scores, k, DEFAULT_NMS_RADIUS if radius is None else radius, shot_ids(features, cut_distance)),
        batched=True, set_aware=True, needs_features=True),
}


@dataclass(frozen=True)
class Method:
    """A named selection method: ``scorer`` (a :data:`SCORERS` key, or None when the rule needs no
    scores) and ``rule`` (a :data:`RULES` key)."""

    name: str
    scorer: str | None
    rule: str

    @property
    def needs_scores(self) -> bool:
        return RULES[self.rule].needs_scores

    @property
    def needs_agent(self) -> bool:
        """Whether the method scores with the (trained) temporal agent."""
        return self.scorer == "tspo"

    def score(self, agent: torch.nn.Module | None, features: torch.Tensor, text: torch.Tensor,
              options: torch.Tensor | None = None, option_mask: torch.Tensor | None = None) -> torch.Tensor | None:
        """Scores [..., T] of the candidates (None for a rule that needs none); ``options`` [..., N, D]
        and ``option_mask`` bool[..., N]: a multiple-choice question's option embeddings, for agents that
        read them (the filter family; the paper's agent and CLIP ignore them)."""
        if not self.needs_scores:
            return None
        return SCORERS[self.scorer](agent, features, text, options, option_mask)

    def set_radius(self, agent: torch.nn.Module | None, text: torch.Tensor) -> torch.Tensor | None:
        """The suppression radius (frames) of a set-aware rule, per question: int64[...] from the agent's
        set head when the method scores with an agent that has one (``tspo+nms`` with the filter family),
        else None (the rule's fixed default)."""
        if not RULES[self.rule].set_aware or not self.needs_agent or not hasattr(agent, "set_radius"):
            return None
        with torch.no_grad():
            return agent.set_radius(text)

    @property
    def needs_features(self) -> bool:
        """Whether :meth:`pick` needs the candidates' features (the ``shot`` rule finds cuts in them)."""
        return RULES[self.rule].needs_features

    def pick(self, scores: torch.Tensor | None, num_candidates: int, k: int,
             radius: int | torch.Tensor | None = None, features: torch.Tensor | None = None,
             cut_distance: float | None = None) -> torch.Tensor:
        """Positions int64[k'] (or [B, k] for a batched rule) of the chosen candidates, ascending.
        ``radius``: a set-aware rule's suppression radius (:meth:`set_radius`; None: its default);
        ``features`` [T, D] | [B, T, D]: the candidates' features, for a rule that needs them
        (:attr:`needs_features`; other rules ignore them); ``cut_distance``: the shot rule's cut (cosine
        distance; None: ``tspo.settings.DEFAULT_CUT_DISTANCE``; a selector passes its settings')."""
        rule = RULES[self.rule]
        if rule.needs_features:
            if features is None:
                raise ValueError(f"method {self.name!r} finds shot cuts in the candidates' features; pass "
                                 "features=[T, D] (the encoder's frame features) to pick, or use a rule without "
                                 "them (e.g. nms)")
            if scores is not None and tuple(features.shape[:-1]) != tuple(scores.shape):
                raise ValueError(f"features {tuple(features.shape)} must be the scores' shape "
                                 f"{tuple(scores.shape)} plus a feature axis D")
            return rule.pick(scores, num_candidates, k, radius, features=features, cut_distance=cut_distance)
        if rule.set_aware:
            return rule.pick(scores, num_candidates, k, radius)
        return rule.pick(scores, num_candidates, k)


METHOD_TABLE: dict[str, Method] = {
    m.name: m
    for m in (
        Method("tspo", "tspo", "top-k"),
        Method("uniform", None, "uniform"),
        Method("clip", "clip", "top-k"),
        Method("bin-max", "clip", "bin-max"),
        Method("aks", "clip", "aks"),
        Method("tspo+aks", "tspo", "aks"),
    )
}
METHODS: tuple[str, ...] = tuple(METHOD_TABLE)
# Rules with a random version (Rule.drawable), and the named methods that draw without a trained agent.
DRAWABLE_RULES: tuple[str, ...] = tuple(name for name, rule in RULES.items() if rule.drawable)
AGENT_FREE_DRAWS: tuple[str, ...] = tuple(m.name for m in METHOD_TABLE.values()
                                          if RULES[m.rule].drawable and not m.needs_agent)


def get_method(name: str) -> Method:
    """The method called ``name``: a :data:`METHODS` name or any ``SCORER+RULE`` combination."""
    if name in METHOD_TABLE:
        return METHOD_TABLE[name]
    scorer, plus, rule = str(name).partition("+")
    if plus and scorer in SCORERS and rule in RULES:
        return Method(name, scorer if RULES[rule].needs_scores else None, rule)
    raise ValueError(
        f"unknown selection method {name!r}; choose one of {', '.join(METHODS)} or SCORER+RULE with a scorer "
        f"in {sorted(SCORERS)} and a rule in {sorted(RULES)}"
    )
