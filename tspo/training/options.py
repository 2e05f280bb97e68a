"""Typed option groups of a training run, each validated once where it is built.

``TSPOModule`` keeps its flat ``model.*`` signature (the YAML configs and ``tspo train fit --model.X``
are the user's interface); its ``__init__`` turns those keys into these groups, and every step reads
a group, never the raw hyper-parameters:

- :class:`GRPOOptions`: how selections are sampled and how the policy is updated;
- :class:`RewardOptions`: what a selection earns and how rewards become advantages;
- :class:`PreferenceOptions`: the offline DPO objective and replay of stored pairs;
- :class:`AgentOptions`: the temporal agent's shape and starting weights;
- :class:`~tspo.selection.zoom_config.ZoomConfig`: the coarse-to-fine budget (``model.zoom``), via :func:`zoom_options`.

:func:`check_combination` holds the rules that span groups (one place, not four).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tspo.agents.families import AGENT_FAMILIES, DEFAULT_FAMILY
from tspo.data_synth.events import QUESTION_KINDS
from tspo.errors import TSPOError
from tspo.objectives.grpo import ANSWER_REWARDS, TEMPORAL_SPANS
from tspo.objectives.warmstart import DEFAULT_GROUP_TAU
from tspo.selection.zoom_config import ZoomConfig
from tspo.settings import DEFAULT_FRAME_SIZE, PAPER_GRPO_RECIPE, check_frame_size, check_num_frames

ADVANTAGES = ("grouped", "decoupled")
LOGPROBS = ("per_frame", "plackett_luce")
RL_TRAINABLE = ("all", "filter")
OBJECTIVES = ("grpo", "dpo")
WARMSTART_LOSSES = ("group", "uniform")


class TrainingConfigError(TSPOError, ValueError):
    """A TSPOModule / TSPODataModule option has a value that cannot work."""


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float)


@dataclass(frozen=True)
class GRPOOptions:
    """Sampling and update options of GRPO (paper Eq. 4-9; extras beyond the paper are off by default).

    ``tau_steps`` None: the schedule spans ``trainer.max_steps``. ``explore_eps``: ε-uniform mixture in
    the sampling distribution. ``span_loss``: weight of the −log policy mass inside the spans R_T counts.
    ``tau_relative``: tau in units of each question's score spread (:func:`tspo.objectives.grpo.relative_logits`).
    ``rl_trainable``: what GRPO updates, ``"all"`` (the agent) or ``"filter"`` (the filter agent's
    question-conditioned filter ``w(q)`` only; the paper part and the set head keep what the warm start
    taught them: :func:`tspo.training.grpo_step.restrict_trainable`). ``rl_lr``: the learning rate from the
    first GRPO step on (None: ``model.lr`` throughout), so a warm start keeps its own.
    """

    num_frames: int
    group_size: int = 8
    tau_start: float = 0.025
    tau_end: float = 0.01
    tau_steps: int | None = None
    logprob: str = "per_frame"
    clip_eps: float | None = None
    num_iterations: int = 1
    kl_beta: float = PAPER_GRPO_RECIPE["kl_beta"]   # the paper's; TSPOModule resolves its own (grpo_reward_defaults)
    explore_eps: float = 0.0
    span_loss: float = 0.0
    seed: int = 0
    tau_relative: bool = False
    rl_trainable: str = "all"
    rl_lr: float | None = None

    def __post_init__(self) -> None:
        try:
            check_num_frames(self.num_frames, "model.num_frames")
        except ValueError as err:
            raise TrainingConfigError(str(err)) from None
        if not isinstance(self.group_size, int) or self.group_size < 2:
            raise TrainingConfigError(f"model.group_size must be an int >= 2 (GRPO compares members), got {self.group_size!r}")
        if self.logprob not in LOGPROBS:
            raise TrainingConfigError(f"model.logprob must be 'per_frame' or 'plackett_luce', got {self.logprob!r}")
        if self.clip_eps is not None and not self.clip_eps > 0:
            raise TrainingConfigError(f"model.clip_eps must be > 0 or null, got {self.clip_eps!r}")
        if not isinstance(self.num_iterations, int) or self.num_iterations < 1:
            raise TrainingConfigError(f"model.num_iterations must be an int >= 1, got {self.num_iterations!r}")
        if self.num_iterations > 1 and self.clip_eps is None:
            raise TrainingConfigError("model.num_iterations > 1 reuses a rollout; set model.clip_eps (e.g. 0.2) to bound the update")
        if self.kl_beta < 0:
            raise TrainingConfigError(f"model.kl_beta must be >= 0, got {self.kl_beta!r}")
        if self.tau_steps is not None and self.tau_steps < 1:
            raise TrainingConfigError(f"model.tau_steps must be >= 1 or null (= trainer.max_steps), got {self.tau_steps!r}")
        if not _number(self.explore_eps) or not 0 <= self.explore_eps < 1:
            raise TrainingConfigError(f"model.explore_eps must be a number in [0, 1) (0 = off), got {self.explore_eps!r}")
        if not _number(self.span_loss) or self.span_loss < 0:
            raise TrainingConfigError(f"model.span_loss must be a number >= 0 (0 = off), got {self.span_loss!r}")
        if not isinstance(self.tau_relative, bool):
            raise TrainingConfigError(f"model.tau_relative must be true or false, got {self.tau_relative!r}")
        if self.rl_trainable not in RL_TRAINABLE:
            raise TrainingConfigError(f"model.rl_trainable must be 'all' (GRPO updates the whole agent) or 'filter' "
                                      f"(only the filter agent's w(q)), got {self.rl_trainable!r}")
        if self.rl_lr is not None and (not _number(self.rl_lr) or not self.rl_lr > 0):
            raise TrainingConfigError(f"model.rl_lr must be a number > 0 (the GRPO learning rate) or null "
                                      f"(= model.lr), got {self.rl_lr!r}")


@dataclass(frozen=True)
class RewardOptions:
    """R_A + R_T weights (or, ``decoupled``, the weights of their separately normalised advantages),
    the spans R_T counts picks in, the short side (px) of frames fetched for oracles that need them, and
    (zoom training) ``w_zoom``, the weight of the zoom reward's advantage, which alone credits the span choice.
    ``answer_reward``: R_A as ``"hard"`` 0/1 (paper) or ``"soft"``, the oracle's probability of the right option."""

    w_accuracy: float = 1.0
    w_temporal: float = 1.0
    w_zoom: float = 1.0
    temporal_spans: str = "target"
    advantage: str = "grouped"
    frame_size: int = DEFAULT_FRAME_SIZE
    answer_reward: str = PAPER_GRPO_RECIPE["answer_reward"]   # the paper's; TSPOModule resolves its own

    def __post_init__(self) -> None:
        try:
            check_frame_size(self.frame_size, "model.frame_size")
        except ValueError as err:
            raise TrainingConfigError(str(err)) from None
        if self.answer_reward not in ANSWER_REWARDS:
            raise TrainingConfigError(f"model.answer_reward must be 'hard' (0/1) or 'soft' (the oracle's probability "
                                      f"of the right option), got {self.answer_reward!r}")
        if self.advantage not in ADVANTAGES:
            raise TrainingConfigError(f"model.advantage must be 'grouped' or 'decoupled', got {self.advantage!r}")
        if self.temporal_spans not in TEMPORAL_SPANS:
            raise TrainingConfigError(f"model.temporal_spans must be one of {TEMPORAL_SPANS}, got {self.temporal_spans!r}")


@dataclass(frozen=True)
class PreferenceOptions:
    """Offline DPO (``objective: dpo``) and DPO replay inside online GRPO (``replay_ratio`` > 0)."""

    objective: str = "grpo"
    preference_log: str | None = None
    preference_oracle_id: str | None = None
    replay_ratio: int = 0
    dpo_beta: float = 0.1
    pairs_per_step: int = 16
    min_margin: float = 0.0

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise TrainingConfigError(f"model.objective must be 'grpo' or 'dpo', got {self.objective!r}")
        if self.objective == "dpo" and not self.preference_log:
            raise TrainingConfigError("model.objective dpo trains offline from logged answers; set model.preference_log "
                                      "(collect one with `tspo eval --log-answers FILE` or model.answer_log)")
        if not isinstance(self.replay_ratio, int) or isinstance(self.replay_ratio, bool) or self.replay_ratio < 0:
            raise TrainingConfigError(f"model.replay_ratio must be an int >= 0 (replay updates per online update), "
                                      f"got {self.replay_ratio!r}")
        if self.objective == "dpo" and self.replay_ratio:
            raise TrainingConfigError("model.replay_ratio mixes replay into online GRPO; with objective dpo every step "
                                      "is already a replay step; set replay_ratio: 0")
        if not (isinstance(self.dpo_beta, (int, float)) and self.dpo_beta > 0):
            raise TrainingConfigError(f"model.dpo_beta must be > 0, got {self.dpo_beta!r}")
        if not isinstance(self.pairs_per_step, int) or self.pairs_per_step < 1:
            raise TrainingConfigError(f"model.pairs_per_step must be an int >= 1, got {self.pairs_per_step!r}")
        if self.min_margin < 0:
            raise TrainingConfigError(f"model.min_margin must be >= 0, got {self.min_margin!r}")

    def check_log_exists(self) -> None:
        """Refuse ``objective: dpo`` with a preference log that is not there yet (checked last, before any
        data is rendered or encoded: the log is made by an earlier step, not by this run)."""
        log = self.preference_log
        if self.objective == "dpo" and "://" not in str(log) and not Path(log).exists():
            raise TrainingConfigError(
                f"model.preference_log {str(log)!r} does not exist (relative paths resolve from "
                f"{str(Path.cwd())!r}); write it first with `tspo eval --manifest TRAIN_MANIFEST --methods uniform "
                f"--log-answers {log} --log-draws 4 ...` (README: Fewer oracle calls, the commands before this one)")

    @property
    def uses_pairs(self) -> bool:
        """Whether some steps are DPO updates on stored pairs."""
        return self.objective == "dpo" or self.replay_ratio > 0


@dataclass(frozen=True)
class AgentOptions:
    """The temporal agent's shape (paper: window 12, 8 heads), its options beyond the paper, and
    ``init_from``: a published TSPO checkpoint file or a TSPOSelector directory to start from.

    ``family`` (``model.agent_family``): ``"paper"`` or ``"filter"`` (:mod:`tspo.agents.families`);
    ``filter_radius`` / ``nms_radius`` (frames; None: the family's default) belong to ``filter`` only."""

    window: int = 12
    heads: int = 8
    query_adapter: bool = False
    question_attention: bool = False
    init_from: str | None = None
    family: str = DEFAULT_FAMILY
    filter_radius: int | None = None
    nms_radius: int | None = None

    def __post_init__(self) -> None:
        if self.family not in AGENT_FAMILIES:
            raise TrainingConfigError(f"model.agent_family must be one of {sorted(AGENT_FAMILIES)}, got {self.family!r}")
        for name, low in (("filter_radius", 0), ("nms_radius", 1)):
            value = getattr(self, name)
            if value is None:
                continue
            if self.family != "filter":
                raise TrainingConfigError(f"model.{name} belongs to the filter agent; set model.agent_family: filter "
                                          f"or remove model.{name}")
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise TrainingConfigError(f"model.{name} must be an int >= {low} (frames), got {value!r}")

    def agent_config(self, dim: int) -> dict[str, Any]:
        """The agent config :func:`tspo.agents.families.build_agent` takes, for features of ``dim``."""
        config: dict[str, Any] = {"dim": dim, "window": self.window, "heads": self.heads}
        config.update({name: True for name in ("query_adapter", "question_attention") if getattr(self, name)})
        if self.family != DEFAULT_FAMILY:
            config["family"] = self.family
            config.update({name: getattr(self, name) for name in ("filter_radius", "nms_radius")
                           if getattr(self, name) is not None})
        return config



# L-BFGS iterations of the full-batch set-head fit (the warm start's end, and span_fit's default): the
# value every recorded filter_goal_* run and the demo used (the fit is deterministic; more was not tried).
DEFAULT_HEAD_STEPS = 200

@dataclass(frozen=True)
class WarmStartOptions:
    """The supervised stage before GRPO (beyond the paper, off by default): the first ``steps`` optimizer
    steps fit the agent's scores to the evidence spans the samples annotate
    (:func:`tspo.objectives.warmstart.evidence_listwise_loss`), then GRPO continues. ``kinds``: only
    samples of these synthetic question kinds (``extra["qa_kind"]``) get span supervision (None: every
    sample with evidence spans), e.g. spans for colour / text / shape only, the time kinds left to GRPO.

    ``loss`` (``model.warmstart_loss``): ``"group"`` (default) = :func:`tspo.objectives.warmstart.evidence_group_loss`,
    softmax(S / ``tau``) mass on *each* evidence group (every appearance a count question counts;
    ``tau`` = ``model.warmstart_tau``, score units); ``"uniform"`` =
    :func:`~tspo.objectives.warmstart.evidence_listwise_loss`, one uniform target over all spans (``tau`` unused).
    ``multi_pick_frames`` (``model.warmstart_multi_pick_frames``): questions needing several picks inside one
    event (motion) get one evidence group per frame (:func:`tspo.training.warmstart_step.per_frame_groups`),
    so the loss asks for two picks there, not one (``loss="group"`` only). ``head_steps``
    (``model.warmstart_head_steps``): when the warm start ends, an agent with a set head (the filter family)
    gets it fitted full batch, ``head_steps`` L-BFGS iterations on every supervised training question
    (:func:`tspo.training.span_fit.fit_set_head`; 0 = off): minibatch steps leave this logistic regression on
    nearly collinear question embeddings far from its optimum. ``learn_scale``
    (``model.warmstart_learn_scale``): the loss reads ``exp(a) · S`` with a learned scalar ``a`` that is not
    part of the agent (:func:`tspo.objectives.warmstart.loss_scaled`; :class:`tspo.training.span_fit.SpanFit`'s
    option of the same name), so the agent need not amplify every similarity profile to meet ``tau``; off by
    default, so configurations recorded without it train as they did. ``batch_size``
    (``model.warmstart_batch_size``): None (default) = a warm-start step reads the DataModule's batch (one
    question per step at ``data.batch_size: 1``, as videos of different lengths cannot share a collated batch);
    N = each step draws N supervised training needles of its own, padded to one length
    (:class:`tspo.training.span_fit.SpanPool`), seeded like the step's noise, so an optimizer step sees
    ``N * trainer.accumulate_grad_batches`` needles (the DataModule's batch is not read in these steps)."""

    steps: int = 0
    kinds: tuple[str, ...] | None = None
    loss: str = "group"
    tau: float = DEFAULT_GROUP_TAU
    multi_pick_frames: bool = False
    head_steps: int = DEFAULT_HEAD_STEPS
    learn_scale: bool = False
    batch_size: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.steps, int) or isinstance(self.steps, bool) or self.steps < 0:
            raise TrainingConfigError(f"model.warmstart_steps must be an int >= 0 (0 = no warm start), got {self.steps!r}")
        if self.loss not in WARMSTART_LOSSES:
            raise TrainingConfigError(f"model.warmstart_loss must be one of {WARMSTART_LOSSES} ('group': mass on each "
                                      f"evidence group; 'uniform': one target over all spans), got {self.loss!r}")
        if not _number(self.tau) or not self.tau > 0:
            raise TrainingConfigError(f"model.warmstart_tau must be a number > 0 (softmax temperature in score units, "
                                      f"e.g. 0.1), got {self.tau!r}")
        if isinstance(self.head_steps, bool) or not isinstance(self.head_steps, int) or self.head_steps < 0:
            raise TrainingConfigError(f"model.warmstart_head_steps must be an int >= 0 (L-BFGS iterations of the set "
                                      f"head's fit when the warm start ends; 0 = off), got {self.head_steps!r}")
        if not isinstance(self.multi_pick_frames, bool):
            raise TrainingConfigError(f"model.warmstart_multi_pick_frames must be true or false, got {self.multi_pick_frames!r}")
        if not isinstance(self.learn_scale, bool):
            raise TrainingConfigError(f"model.warmstart_learn_scale must be true or false, got {self.learn_scale!r}")
        if self.learn_scale and not self.steps:
            raise TrainingConfigError("model.warmstart_learn_scale scales the warm start's loss, which is off: set "
                                      "model.warmstart_steps > 0, or leave warmstart_learn_scale false")
        if self.batch_size is not None:
            if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
                raise TrainingConfigError(f"model.warmstart_batch_size must be an int >= 1 (needles per warm-start step) "
                                          f"or null (the DataModule's batch), got {self.batch_size!r}")
            if not self.steps:
                raise TrainingConfigError("model.warmstart_batch_size sizes the warm start's batches, which is off: set "
                                          "model.warmstart_steps > 0, or leave warmstart_batch_size null")
        if self.multi_pick_frames and self.loss != "group":
            raise TrainingConfigError("model.warmstart_multi_pick_frames splits evidence groups, which only the 'group' "
                                      "warm-start loss reads: set model.warmstart_loss: group, or leave it false")
        if self.kinds is None:
            return
        if isinstance(self.kinds, str) or not all(isinstance(k, str) for k in self.kinds) or not self.kinds:
            raise TrainingConfigError(f"model.warmstart_kinds must be a non-empty list of question kinds or null (all), "
                                      f"got {self.kinds!r}")
        unknown = sorted(set(self.kinds) - set(QUESTION_KINDS))
        if unknown:
            raise TrainingConfigError(f"model.warmstart_kinds: unknown question kinds {unknown}; the synthetic "
                                      f"world's kinds are {sorted(QUESTION_KINDS)}")
        if not self.steps:
            raise TrainingConfigError("model.warmstart_kinds restricts the warm start, which is off: set "
                                      "model.warmstart_steps > 0, or leave warmstart_kinds null")

    def supervises(self, sample) -> bool:
        """Whether ``sample``'s spans teach the warm start: it has evidence spans, of an allowed kind."""
        return bool(sample.evidence_spans_s) and (self.kinds is None or sample.extra.get("qa_kind") in self.kinds)


def zoom_options(zoom: dict[str, Any] | None) -> ZoomConfig | None:
    """``model.zoom`` -> a validated :class:`ZoomConfig` (None: single-stage training)."""
    if zoom is None:
        return None
    if not isinstance(zoom, dict):
        raise TrainingConfigError(f"model.zoom must be a mapping of ZoomConfig fields or null, got {zoom!r}")
    unknown = set(zoom) - set(ZoomConfig.__dataclass_fields__)
    if unknown:
        raise TrainingConfigError(f"model.zoom: unknown keys {sorted(unknown)}; use {sorted(ZoomConfig.__dataclass_fields__)}")
    return ZoomConfig(**zoom)


def single_stage_grpo(preference: PreferenceOptions, zoom: dict[str, Any] | None) -> bool:
    """Whether the run is plain online GRPO: no zoom stage, no DPO / replay updates on stored pairs."""
    return zoom is None and not preference.uses_pairs


def check_combination(grpo: GRPOOptions, preference: PreferenceOptions, zoom: dict[str, Any] | None,
                      warmstart: WarmStartOptions | None = None, reward: RewardOptions | None = None) -> None:
    """The rules between groups: which training modes can share a run."""
    single_stage = single_stage_grpo(preference, zoom)
    if warmstart is not None and warmstart.steps and not single_stage:
        raise TrainingConfigError("model.warmstart_steps precedes single-stage GRPO; it cannot be combined with "
                                  "model.zoom, model.objective dpo or model.replay_ratio > 0")
    if (grpo.rl_trainable != "all" or grpo.rl_lr is not None) and not single_stage:
        raise TrainingConfigError("model.rl_trainable and model.rl_lr shape single-stage GRPO updates; leave them "
                                  "'all' / null with model.zoom, model.objective dpo or model.replay_ratio > 0")
    if grpo.tau_relative and not single_stage:
        raise TrainingConfigError("model.tau_relative shapes single-stage GRPO sampling; leave it false with "
                                  "model.zoom, model.objective dpo or model.replay_ratio > 0")
    if reward is not None and reward.answer_reward != "hard" and preference.uses_pairs:
        raise TrainingConfigError("model.answer_reward soft scores online GRPO answers; preference pairs "
                                  "(objective dpo / replay_ratio) rank by the 0/1 reward: leave answer_reward hard")
    if (grpo.explore_eps or grpo.span_loss) and (zoom is not None or preference.objective != "grpo"):
        raise TrainingConfigError("model.explore_eps and model.span_loss shape single-stage GRPO sampling; they do "
                                  "nothing with model.zoom or model.objective dpo: set them to 0 there")
    if preference.uses_pairs and grpo.num_iterations > 1:
        raise TrainingConfigError("model.num_iterations > 1 cannot be combined with DPO / replay updates")
    if zoom is not None and (grpo.num_iterations != 1 or grpo.kl_beta or preference.uses_pairs):
        raise TrainingConfigError("model.zoom trains on-policy with GRPO, one update per rollout: leave "
                                  "model.num_iterations 1, model.kl_beta 0, model.objective grpo, model.replay_ratio 0")
