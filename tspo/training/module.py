"""``TSPOModule``: the Lightning glue of TSPO training.

The module builds the typed option groups (:mod:`tspo.training.options`), owns the trainable agent,
the frozen references and the counters, and hands each step a :class:`~tspo.training.context.StepContext`.
The steps themselves live one per file: :func:`~tspo.training.grpo_step.grpo_step` (the paper's GRPO),
:func:`~tspo.training.warmstart_step.warmstart_step` (``model.warmstart_steps``: supervised on evidence spans first),
:func:`~tspo.training.zoom_step.zoom_step` (``model.zoom``), :func:`~tspo.training.replay_step.replay_step`
(``objective: dpo`` / ``replay_ratio``).

Only the agent is trainable state. The encoder and the oracle are references kept outside the
``nn.Module`` tree: never in the optimizer, never in ``state_dict`` or checkpoints.
"""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch

from tspo.agents import AgentConfigError, GumbelTopK, TemporalAgent, build_agent
from tspo.agents.families import start_state
from tspo.evaluation.answer_log import AnswerLogger, read_answer_log
from tspo.evaluation.judge import judge_selections, metrics_of
from tspo.features.encoders import shared_encoder
from tspo.objectives.grpo import temperature_at
from tspo.objectives.preference import PreferencePairs, pairs_from_groups, pairs_from_log
from tspo.objectives.set_rule import set_rule_targets
from tspo.objectives.warmstart import LOSS_SCALE_LR_FACTOR
from tspo.rewards import OracleCache, OracleConfigError, build_oracle, check_oracle_args, check_oracle_fits
from tspo.selection.selector import load_selector_agent
from tspo.settings import DEFAULT_FRAME_SIZE, DEFAULT_NUM_FRAMES, clip_num_frames, grpo_reward_defaults
from tspo.training.context import (
    StepContext,
    StepOutput,
    agent_scores,
    batch_options,
    clipped_policy,
    step_seed,
)
from tspo.training.grpo_step import check_rl_trainable, grpo_step, restrict_trainable
from tspo.training.options import (
    DEFAULT_GROUP_TAU,
    DEFAULT_HEAD_STEPS,
    AgentOptions,
    GRPOOptions,
    PreferenceOptions,
    RewardOptions,
    TrainingConfigError,
    WarmStartOptions,
    check_combination,
    single_stage_grpo,
    zoom_options,
)
from tspo.training.pooled_warmstart import pooled_warmstart_step
from tspo.training.replay_step import ReferenceScores, replay_step
from tspo.training.span_fit import SpanFitError, SpanPool, fit_set_head
from tspo.training.warmstart_step import warmstart_step
from tspo.training.zoom_step import zoom_step

__all__ = ["TSPOModule", "TrainingConfigError", "step_seed"]

logger = logging.getLogger(__name__)


class TSPOModule(L.LightningModule):
    """Temporal agent + GRPO objective. Options beyond the paper are off by default.

    Args:
        encoder: frozen CLIP spec (``"tiny-random"``, ``"ViT-L-14:openai"``) or a loaded ClipEncoder;
            fixes the agent's feature dim. The CLI links it to ``data.encoder``.
        num_frames: k, frames per selection (paper: 16 for needle data, 8 for general).
        group_size: G, selections per question.
        tau_start, tau_end, tau_steps: linear temperature schedule over ``tau_steps`` optimizer
            steps (default ``trainer.max_steps``).
        oracle, oracle_args: the frozen answerer, ``tspo.rewards.build_oracle(oracle, **oracle_args)``
            (``simulated``, ``clip``, ``hf:MODEL``, ``openai:URL#MODEL``, ``package.module.Class``, or in YAML
            the LightningCLI mapping ``{class_path: package.module.Class, init_args: {...}}``).
        oracle_cache_path: SQLite file memoising answers across runs (in memory when None).
        w_accuracy, w_temporal: reward weights of R_A and R_T (with ``"decoupled"``: the weights
            of their separately normalised advantages).
        temporal_spans: what R_T counts picks in: ``"target"`` (paper: the inserted needle material)
            or ``"evidence"`` (beyond the paper, off by default: the seconds that answer the question,
            which synthetic needles annotate; for questions whose evidence is only part of the target).
        explore_eps: beyond the paper, off by default: training samples (and scores the log-probability
            of) the mixture ``(1 - eps) softmax(S / tau) + eps / T`` (:func:`tspo.objectives.grpo.explore_logits`),
            so frames far below the top are still drawn now and then; single-stage GRPO only.
        span_loss: beyond the paper, off by default: weight of :func:`tspo.objectives.grpo.span_mass_loss`, the
            policy's −log probability mass inside the spans R_T counts (``temporal_spans``), added to
            the GRPO loss for needle questions: a dense use of the spans synthetic needles annotate.
        advantage: ``"grouped"`` (paper) or ``"decoupled"`` (R_A and R_T normalised separately,
            then ``w_accuracy A(R_A) + w_temporal A(R_T)``).
        logprob: ``"per_frame"`` (paper: log_softmax(S/tau) at the picks) or ``"plackett_luce"``.
        clip_eps, num_iterations: PPO clipped ratio and updates per rollout (1 = paper, on-policy).
        kl_beta: weight of KL to a frozen copy of the initial agent (0 = off, paper's Eq. 9). None (default):
            :func:`tspo.settings.grpo_reward_defaults` — 0.002 for single-stage GRPO, 0 with zoom or DPO / replay.
        init_from: published TSPO checkpoint file or a TSPOSelector directory to start from.
        frame_size: short side (px) of the frames fetched for oracles that need them; whole
            frames, aspect ratio kept (never centre-cropped).
        zoom: ``ZoomConfig`` fields (``coarse_candidates``, ``num_spans``, ``span_s``, ``fine_fps``)
            to train the coarse-to-fine policy with GRPO over both stages (needs the full candidate
            grid: ``data.max_candidates: null``, ``data.batch_size: 1``); None = single-stage.
        w_zoom: weight of the zoom reward's advantage, which alone credits the span choice.
        query_adapter: beyond the paper, off by default: a learnable residual MLP on the question
            embedding (``TemporalAgent(query_adapter=True)``), for questions whose answer does not
            look like their words.
        question_attention: beyond the paper, off by default: the window attention's inputs get a
            learnable projection of the question embedding (``TemporalAgent(question_attention=True)``),
            so which neighbours an event feature mixes in depends on the question.
        agent_family: ``"paper"`` (default, the paper's agent) or ``"filter"`` (beyond the paper:
            :class:`~tspo.agents.FilterAgent`, the paper's agent plus a question-conditioned temporal filter
            over the question's and the options' similarity profiles and a set head choosing the
            suppression radius of ``tspo+nms``; zero-initialised, so it starts as the paper's agent).
            ``init_from`` may name a paper selector or checkpoint of the same shape for a filter agent.
        filter_radius, nms_radius: the filter agent's reach (frames either side, default 8) and its
            suppression radius (frames, default 3); filter family only.
        objective: ``"grpo"`` (paper, online: every step asks the oracle) or ``"dpo"`` (offline:
            every step is a DPO update on preference pairs from ``preference_log``; no oracle call
            during training). See ``docs/PREFERENCE.md``.
        preference_log: answer log (JSON Lines, Parquet or an OracleCache SQLite file) whose
            selections of the training questions become preference pairs; ``preference_oracle_id``
            picks one oracle in a log that holds several.
        replay_ratio: with ``objective: grpo``, DPO replay updates per online GRPO update (0 = off,
            the paper). Replay draws pairs from ``preference_log`` and from every earlier online
            group, so only one step in ``replay_ratio + 1`` asks the oracle.
        dpo_beta, pairs_per_step, min_margin: DPO inverse temperature, pairs per DPO update, and the
            reward difference a pair must exceed (ties and smaller margins are dropped).
        answer_log: JSON Lines file to append every real oracle call of this run to (a log for a
            later offline run).
        warmstart_steps: beyond the paper, off by default (0): the first N optimizer steps are supervised
            on the evidence spans the samples annotate (:func:`tspo.objectives.warmstart.evidence_listwise_loss`,
            no oracle call), then GRPO continues; the temperature schedule and, with ``kl_beta`` > 0, the
            KL reference (a frozen copy of the warm-started agent) start when GRPO does.
        warmstart_kinds: synthetic question kinds (``extra["qa_kind"]``) whose spans the warm start uses
            (None: every sample with evidence spans); the others are skipped and counted.
        warmstart_loss, warmstart_tau: the warm start's loss, ``"group"`` (default: softmax(S / tau) mass on
            each evidence group, :func:`tspo.objectives.warmstart.evidence_group_loss`) or ``"uniform"``
            (one uniform target over all evidence spans, :func:`~tspo.objectives.warmstart.evidence_listwise_loss`);
            defaults owned by :class:`tspo.training.options.WarmStartOptions`.
        warmstart_multi_pick_frames: beyond the paper, off by default: questions that need several picks
            inside one event (motion) get one evidence group per frame in the warm start's group loss
            (:func:`tspo.training.warmstart_step.per_frame_groups`).
        warmstart_head_steps: when the warm start ends, a filter agent's set head is fitted full batch on the
            supervised training questions (this many L-BFGS iterations; 0 = off; default owned by
            :class:`tspo.training.options.WarmStartOptions`).
        warmstart_learn_scale: beyond the paper, off by default: the warm start's loss reads ``exp(a) · S``
            with a learned scalar ``a`` kept by the module, not the agent
            (:func:`tspo.objectives.warmstart.loss_scaled`), so the agent learns rankings rather than
            amplifying every similarity profile to meet ``warmstart_tau``.
        warmstart_batch_size: beyond the paper, None by default (a warm-start step reads the DataModule's
            batch): each warm-start step draws this many supervised training needles of its own, padded to
            one length (:func:`tspo.training.pooled_warmstart.pooled_warmstart_step`), so an optimizer step
            sees ``warmstart_batch_size * trainer.accumulate_grad_batches`` needles.
        answer_reward: ``"hard"`` (paper: R_A = 1 for the right option, else 0) or ``"soft"`` (beyond the
            paper: the oracle's probability of the right option, so a lucky guess earns 1/N, not 1;
            needs an oracle that reports option probabilities). None (default):
            :func:`tspo.settings.grpo_reward_defaults` — ``"soft"`` for single-stage GRPO, ``"hard"`` with zoom or
            DPO / replay (they rank by the 0/1 reward).
        tau_relative: beyond the paper, off by default: the sampling temperature is tau times each
            question's score spread (:func:`tspo.objectives.grpo.relative_logits`), so exploration does not
            vanish when training stretches the scores; then tau ~0.1-0.3, not the paper's 0.025 -> 0.01.
        rl_trainable: beyond the paper: what GRPO updates, ``"all"`` (default, the whole agent) or ``"filter"``
            (the filter agent's ``w(q)`` only: the paper part and the set head keep their warm-started weights).
        rl_lr: beyond the paper: the learning rate of the GRPO steps (None: ``lr`` throughout); with a warm
            start, ``lr`` stays the warm start's.
    """

    def __init__(
        self,
        encoder: Any = "tiny-random",
        num_frames: int = DEFAULT_NUM_FRAMES,
        group_size: int = 8,
        lr: float = 5e-4,
        weight_decay: float = 0.0,
        tau_start: float = 0.025,
        tau_end: float = 0.01,
        tau_steps: int | None = None,
        window: int = 12,
        heads: int = 8,
        oracle: str | dict[str, Any] = "simulated",
        oracle_args: dict[str, Any] | None = None,
        oracle_cache_path: str | None = None,
        w_accuracy: float = 1.0,
        w_temporal: float = 1.0,
        temporal_spans: Literal["target", "evidence"] = "target",
        explore_eps: float = 0.0,
        span_loss: float = 0.0,
        advantage: Literal["grouped", "decoupled"] = "grouped",
        logprob: Literal["per_frame", "plackett_luce"] = "per_frame",
        clip_eps: float | None = None,
        num_iterations: int = 1,
        kl_beta: float | None = None,
        init_from: str | None = None,
        frame_size: int = DEFAULT_FRAME_SIZE,
        seed: int = 0,
        zoom: dict[str, Any] | None = None,
        w_zoom: float = 1.0,
        query_adapter: bool = False,
        question_attention: bool = False,
        agent_family: str = "paper",
        filter_radius: int | None = None,
        nms_radius: int | None = None,
        objective: Literal["grpo", "dpo"] = "grpo",
        preference_log: str | None = None,
        preference_oracle_id: str | None = None,
        replay_ratio: int = 0,
        dpo_beta: float = 0.1,
        pairs_per_step: int = 16,
        min_margin: float = 0.0,
        answer_log: str | None = None,
        warmstart_steps: int = 0,
        warmstart_kinds: list[str] | None = None,
        warmstart_loss: Literal["group", "uniform"] = "group",
        warmstart_tau: float = DEFAULT_GROUP_TAU,
        warmstart_multi_pick_frames: bool = False,
        warmstart_head_steps: int = DEFAULT_HEAD_STEPS,
        warmstart_learn_scale: bool = False,
        warmstart_batch_size: int | None = None,
        answer_reward: Literal["hard", "soft"] | None = None,
        tau_relative: bool = False,
        rl_trainable: Literal["all", "filter"] = "all",
        rl_lr: float | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=[] if isinstance(encoder, str) else ["encoder"])
        self.preference = PreferenceOptions(objective, preference_log, preference_oracle_id, replay_ratio, dpo_beta,
                                            pairs_per_step, min_margin)
        # null R_A / KL: the defaults of this kind of training, asked of their owner and written back, so a
        # checkpoint's hyperparameters say what it trained with
        defaults = grpo_reward_defaults(single_stage_grpo(self.preference, zoom))
        answer_reward = defaults["answer_reward"] if answer_reward is None else answer_reward
        kl_beta = defaults["kl_beta"] if kl_beta is None else kl_beta
        self.hparams.update(answer_reward=answer_reward, kl_beta=kl_beta)
        self.grpo = GRPOOptions(num_frames, group_size, tau_start, tau_end, tau_steps, logprob, clip_eps,
                                num_iterations, kl_beta, explore_eps, span_loss, seed, tau_relative,
                                rl_trainable, rl_lr)
        self.reward_options = RewardOptions(w_accuracy, w_temporal, w_zoom, temporal_spans, advantage, frame_size,
                                            answer_reward)
        kinds = warmstart_kinds if warmstart_kinds is None or isinstance(warmstart_kinds, str) else tuple(warmstart_kinds)
        self.warmstart = WarmStartOptions(warmstart_steps, kinds, warmstart_loss, warmstart_tau, warmstart_multi_pick_frames,
                                          warmstart_head_steps, warmstart_learn_scale, warmstart_batch_size)
        check_combination(self.grpo, self.preference, zoom, self.warmstart, self.reward_options)
        self.preference.check_log_exists()
        # zoom: train coarse span choice + fine frame choice (tspo.training.zoom_step); None = single-stage
        self.zoom_config = zoom_options(zoom)
        agent_options = AgentOptions(window, heads, query_adapter, question_attention, init_from, agent_family,
                                     filter_radius, nms_radius)
        try:  # options written for another oracle must not reach this one (found now, not at the first step)
            check_oracle_args(oracle, oracle_args, "model.oracle_args")
        except OracleConfigError as err:
            raise TrainingConfigError(str(err)) from None
        enc = shared_encoder(encoder) if isinstance(encoder, str) else encoder
        # Plain dict: an nn.Module assigned as an attribute would join state_dict and the optimizer.
        self._frozen: dict[str, Any] = {"encoder": enc, "oracle": None}
        try:
            self.agent = build_agent(agent_options.agent_config(enc.dim))
        except AgentConfigError as err:
            raise TrainingConfigError(str(err)) from None
        check_rl_trainable(self.agent, rl_trainable)      # refused now, not at the first GRPO step
        if self.warmstart.batch_size and not getattr(self.agent, "reads_frame_mask", False):
            raise TrainingConfigError(f"model.warmstart_batch_size pads needles of different lengths into one batch, "
                                      f"which this agent ({type(self.agent).__name__}) cannot score (it reads no frame "
                                      f"mask); set model.agent_family: filter, or model.warmstart_batch_size: null")
        if agent_options.init_from:
            self.agent.load_state_dict(_load_agent_weights(agent_options.init_from, self.agent))
        uses_ref = kl_beta > 0 or self.preference.uses_pairs
        self.ref_agent = copy.deepcopy(self.agent).requires_grad_(False) if uses_ref else None
        # The warm start's learned loss scale (model.warmstart_learn_scale): the module's, not the agent's,
        # so a saved selector is unchanged; it has no gradient in GRPO steps, so AdamW leaves it there.
        self.warmstart_log_scale = torch.nn.Parameter(torch.zeros(())) if warmstart_learn_scale else None
        self.policy = GumbelTopK(num_frames)
        # Manual optimisation only for several PPO updates per rollout; the paper's one update
        # per rollout keeps Lightning's automatic loop (grad accumulation, clipping, precision).
        self.automatic_optimization = num_iterations == 1
        self.batches_seen = 0
        self.oracle_calls = 0                        # real (uncached) oracle calls made by training steps
        self._replay: PreferencePairs | None = None  # pairs DPO draws from (objective dpo / replay_ratio > 0)
        self._reference = ReferenceScores(self.ref_agent) if self.ref_agent is not None else None
        self._last_step_time: float | None = None
        # With a warm start, the KL reference is the warm-started agent: copied once, when GRPO starts.
        self.reference_is_warmstarted = False
        self.warmstart_skipped = 0                   # samples without span supervision in warm-start steps
        self._span_pool: SpanPool | None = None      # what a batched warm start draws from (built on first use)
        self.set_head_fitted = False                 # the full-batch set-head fit ran (once, when the warm start ends)
        self._steps_per_s = 0.0

    # -- frozen references -----------------------------------------------------------------------
    @property
    def encoder(self):
        return self._frozen["encoder"]

    @property
    def oracle(self):
        """The oracle behind an :class:`OracleCache`, built on first use in each process."""
        if self._frozen["oracle"] is None:
            path = self.hparams.oracle_cache_path
            if path and self.trainer_attached() and self.trainer.world_size > 1:
                path = f"{path}.rank{self.global_rank}"     # one SQLite writer per process
            base = build_oracle(self.hparams.oracle, encoder=self.encoder, **(self.hparams.oracle_args or {}))
            if self.hparams.answer_log:
                log = self.hparams.answer_log
                if self.trainer_attached() and self.trainer.world_size > 1:
                    log = f"{log}.rank{self.global_rank}"
                base = AnswerLogger(base, log, policy="train")
            self._frozen["oracle"] = OracleCache(base, path)
        return self._frozen["oracle"]

    def trainer_attached(self) -> bool:
        return self._trainer is not None

    # -- what a step gets -----------------------------------------------------------------------
    def current_tau(self) -> float:
        """The GRPO temperature now: the schedule runs over the GRPO steps, after any warm start."""
        g, warm = self.grpo, self.warmstart.steps
        if self.in_warmstart():
            return g.tau_start                     # a warm-start step samples nothing
        steps = g.tau_steps or (self.trainer.max_steps - warm if self.trainer_attached() else -1)
        if steps is None or steps <= 0:
            raise TrainingConfigError("the temperature schedule needs model.tau_steps or trainer.max_steps > 0 "
                                      "(more than model.warmstart_steps)")
        return temperature_at(self.global_step - warm, steps, g.tau_start, g.tau_end)

    def in_warmstart(self) -> bool:
        """Whether this step is a supervised warm-start step (the first ``model.warmstart_steps`` optimizer steps)."""
        return self.global_step < self.warmstart.steps

    def take_warmstarted_reference(self) -> None:
        """Once, at the first GRPO step after a warm start: the KL reference becomes a frozen copy of the
        warm-started agent (so GRPO is held near what the spans taught, not near the untrained agent)."""
        if self.warmstart.steps and self.ref_agent is not None and not self.reference_is_warmstarted:
            self.ref_agent.load_state_dict(self.agent.state_dict())
            self.reference_is_warmstarted = True

    def fit_set_head_after_warmstart(self) -> None:
        """Once, when a warm start ends (the first GRPO step, or the end of a warm-start-only run): an agent
        with a set head gets it fitted full batch on the training questions the warm start supervises
        (``model.warmstart_head_steps`` L-BFGS iterations, :func:`tspo.training.span_fit.fit_set_head`).
        Skipped, with a log line, where none of them has a set-rule preference or no training set is reachable."""
        w = self.warmstart
        if self.set_head_fitted or not w.steps or not w.head_steps or getattr(self.agent, "set_head", None) is None:
            return
        self.set_head_fitted = True
        data = getattr(getattr(self._trainer, "datamodule", None), "train_set", None) if self._trainer else None
        if data is None or not hasattr(data, "text"):
            logger.warning("warm start: no training FeatureDataset reachable (trainer.datamodule.train_set); the set "
                           "head keeps its minibatch fit")
            return
        rows = [i for i, s in enumerate(data.samples) if w.supervises(s)]
        samples = [data.samples[i] for i in rows]
        if not rows or not bool(set_rule_targets(samples)[1].any()):
            logger.info("warm start: no supervised question prefers a set rule (count / order / motion); the set "
                        "head is not fitted")
            return
        device = next(self.agent.parameters()).device
        loss = fit_set_head(self.agent, data.text[rows].to(device), samples, w.head_steps)
        logger.info("warm start: set head fitted on %d questions (%d L-BFGS iterations), loss %.4f",
                    len(rows), w.head_steps, loss)

    def span_pool(self) -> SpanPool:
        """The supervised training needles a batched warm start draws from (``model.warmstart_batch_size``;
        built once, from the DataModule's training FeatureDataset)."""
        if self._span_pool is None:
            data = getattr(getattr(self._trainer, "datamodule", None), "train_set", None) if self._trainer else None
            if data is None:
                raise TrainingConfigError("model.warmstart_batch_size draws needles from the DataModule's training set, "
                                          "and this run has none (trainer.datamodule.train_set); fit with a "
                                          "TSPODataModule, or set model.warmstart_batch_size: null")
            try:
                self._span_pool = SpanPool(data, self.warmstart.multi_pick_frames, self.warmstart.supervises)
            except SpanFitError as err:
                raise TrainingConfigError(f"model.warmstart_batch_size: {err}") from None
            logger.info("warm start: %d of %d training needles supervised, %d drawn per step",
                        self._span_pool.usable.size, len(data), self.warmstart.batch_size)
        return self._span_pool

    def on_train_end(self) -> None:
        self.fit_set_head_after_warmstart()   # a run that ended within its warm start (once only: a flag)

    def set_rl_lr(self) -> None:
        """At a GRPO step with ``model.rl_lr`` set: the optimizer's learning rate becomes it (idempotent; a
        resumed run's optimizer state already holds it)."""
        if self.grpo.rl_lr is None or not self.trainer_attached():
            return
        for group in self.optimizers().optimizer.param_groups:
            group["lr"] = self.grpo.rl_lr

    def scores(self, features: torch.Tensor, text: torch.Tensor, agent: TemporalAgent | None = None,
               options: torch.Tensor | None = None, option_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Agent scores S float32[B, T] (:func:`~tspo.training.context.agent_scores`)."""
        return agent_scores(agent or self.agent, features, text, options, option_mask)

    def step_context(self, oracle: bool = True) -> StepContext:
        """This step's context: seeded noise (:func:`step_seed` of seed, rank, batches seen), temperature,
        the oracle (``oracle`` False: none, so a replay-only run never builds one) and, for several PPO
        updates per rollout, the manual optimizer step."""
        rank = self.global_rank if self.trainer_attached() else 0
        generator = torch.Generator().manual_seed(step_seed(self.grpo.seed, rank, self.batches_seen))
        return StepContext(agent=self.agent, policy=self.policy, oracle=self.oracle if oracle else None,
                           generator=generator,
                           tau=self.current_tau(), device=self.device, grpo=self.grpo, reward=self.reward_options,
                           ref_agent=self.ref_agent, update=None if self.automatic_optimization else self._manual_update)

    def _manual_update(self, loss: torch.Tensor) -> None:
        opt = self.optimizers()
        opt.zero_grad()
        self.manual_backward(loss)
        if self.trainer.gradient_clip_val:
            self.clip_gradients(opt, self.trainer.gradient_clip_val, self.trainer.gradient_clip_algorithm)
        opt.step()

    def policy_for(self, num_candidates: int) -> GumbelTopK:
        """The sampler for a batch of ``num_candidates`` candidates (:func:`~tspo.training.context.clipped_policy`)."""
        return clipped_policy(self.policy, num_candidates)

    # -- Lightning hooks -------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        mode = ("warmstart" if self.in_warmstart() else "zoom" if self.zoom_config is not None
                else "replay" if self.is_replay_step() else "grpo")
        if mode == "grpo":
            self.fit_set_head_after_warmstart()
            self.take_warmstarted_reference()
            restrict_trainable(self.agent, self.grpo.rl_trainable)
            if self.warmstart_log_scale is not None:   # the warm start's alone: GRPO gives it no gradient
                self.warmstart_log_scale.requires_grad_(False)
            self.set_rl_lr()
        ctx = self.step_context(oracle=mode not in ("replay", "warmstart"))
        if mode == "warmstart":
            out = (pooled_warmstart_step(ctx, self.warmstart, self.span_pool(), self.warmstart_log_scale)
                   if self.warmstart.batch_size else warmstart_step(ctx, self.warmstart, batch, self.warmstart_log_scale))
            self.warmstart_skipped += int(out.metrics["train/warmstart_skipped"])
            out.metrics["train/warmstart_skipped"] = float(self.warmstart_skipped)
        elif mode == "zoom":
            out = zoom_step(ctx, self.zoom_config, batch)
        elif mode == "replay":
            out = replay_step(ctx, self.preference, self._replay, self._pair_dataset(), self._reference)
        else:
            calls_before = ctx.oracle.misses
            out = grpo_step(ctx, batch)
            self.oracle_calls += ctx.oracle.misses - calls_before
            self.remember_pairs(batch, out.idx, out.rewards)
        self._log_step(mode, out)
        self.batches_seen += 1
        return out.loss

    def _log_step(self, mode: str, out: StepOutput) -> None:
        metrics = dict(out.metrics)
        if mode != "zoom":                              # the single-stage steps count calls ...
            metrics["train/oracle_calls"] = float(self.oracle_calls)
        if mode == "grpo":                              # ... and online ones their speed
            metrics["perf/steps_per_s"] = self._steps_per_s
        self.log_dict(metrics, on_step=True, on_epoch=False, batch_size=out.batch_size, prog_bar=False)
        if out.progress is not None:
            self.log("reward", out.progress, on_step=True, prog_bar=True, logger=False, batch_size=out.batch_size)

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        now = time.perf_counter()
        if self._last_step_time is not None:
            rate = 1.0 / max(now - self._last_step_time, 1e-9)
            self._steps_per_s = rate if not self._steps_per_s else 0.9 * self._steps_per_s + 0.1 * rate
        self._last_step_time = now

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Held-out check: greedy top-k (no noise, as at inference), one oracle query per question, judged
        by the evaluation loop's core (:func:`tspo.evaluation.judge.judge_selections`, as ``tspo eval`` and
        :func:`~tspo.evaluation.heldout.heldout_metrics` do)."""
        scores = self.scores(batch["features"], batch["text"], **batch_options(batch))
        idx = self.policy_for(scores.shape[-1]).greedy(scores).cpu()                  # [B, k]
        samples = list(batch["samples"])
        outcomes = judge_selections(self.oracle, samples, [{"tspo": row} for row in idx.numpy()],
                                    list(batch["timestamps"].cpu().numpy()), self.reward_options.frame_size)
        got = metrics_of(outcomes)
        self.log("val/accuracy", float(got["accuracy"]), batch_size=len(samples), sync_dist=True)
        needles = sum(s.kind == "needle" for s in samples)
        if got["target_fraction"] is not None:
            self.log("val/in_target", float(got["target_fraction"]), batch_size=needles, sync_dist=True)

    def configure_optimizers(self):
        groups = [{"params": list(self.agent.parameters())}]
        if self.warmstart_log_scale is not None:    # its own lr, no decay toward scale 1
            groups.append({"params": [self.warmstart_log_scale], "lr": LOSS_SCALE_LR_FACTOR * self.hparams.lr,
                           "weight_decay": 0.0})
        return torch.optim.AdamW(groups, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["tspo"] = {"batches_seen": self.batches_seen, "agent_config": self.agent.config,
                              "oracle_calls": self.oracle_calls, "reference_is_warmstarted": self.reference_is_warmstarted,
                              "warmstart_skipped": self.warmstart_skipped, "set_head_fitted": self.set_head_fitted}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.batches_seen = int(checkpoint.get("tspo", {}).get("batches_seen", 0))
        self.oracle_calls = int(checkpoint.get("tspo", {}).get("oracle_calls", 0))
        self.reference_is_warmstarted = bool(checkpoint.get("tspo", {}).get("reference_is_warmstarted", False))
        self.warmstart_skipped = int(checkpoint.get("tspo", {}).get("warmstart_skipped", 0))
        self.set_head_fitted = bool(checkpoint.get("tspo", {}).get("set_head_fitted", False))

    # -- preference objective (objective: dpo, replay_ratio > 0) ---------------------------------
    def setup(self, stage: str) -> None:
        p = self.preference
        if stage == "fit":
            self.check_data()
        if stage != "fit" or not p.uses_pairs or self._replay is not None:
            return
        self._replay = self.logged_pairs(self._pair_dataset())
        if p.objective == "dpo" and not len(self._replay):
            raise TrainingConfigError(f"model.preference_log {p.preference_log!r} gives no preference pairs "
                                      f"({self._replay.stats}); log more selections per question")

    def check_data(self) -> None:
        """Before the first step, against the DataModule's samples: refuse an oracle that cannot judge
        them (the rule ``tspo eval`` applies), and say once which samples have no R_T and which clips
        have fewer candidates than k."""
        dm = getattr(self.trainer, "datamodule", None) if self.trainer_attached() else None
        sets = [(name, getattr(dm, f"{name}_set", None)) for name in ("train", "val")]
        sets = [(name, ds) for name, ds in sets if ds is not None]
        if not sets:
            return
        samples = [s for _, ds in sets for s in ds.samples]
        try:
            check_oracle_fits(self.hparams.oracle, samples, "model.oracle")
        except OracleConfigError as err:
            raise TrainingConfigError(str(err)) from None
        train = next((ds for name, ds in sets if name == "train"), None)
        if train is not None:
            plain = sum(not s.target_spans_s for s in train.samples)
            if plain:
                logger.warning(
                    "%d of %d training samples have no target spans: they have no R_T and train on R_A alone "
                    "(their reward is R_A + %g, a constant the group advantages cancel)",
                    plain, len(train.samples), self.hparams.w_temporal)
        if train is not None and self.warmstart.steps:
            taught = sum(self.warmstart.supervises(s) for s in train.samples)
            if not taught:
                raise TrainingConfigError(
                    f"model.warmstart_steps {self.warmstart.steps}: none of the {len(train.samples)} training samples "
                    f"has evidence spans{' of the kinds ' + str(list(self.warmstart.kinds)) if self.warmstart.kinds else ''}"
                    f" (model.warmstart_kinds), so the warm start would learn nothing; use a manifest with "
                    f"evidence_spans_s (tspo synth), other kinds, or model.warmstart_steps: 0")
            logger.info("warm start: %d of %d training samples have span supervision; the others are skipped",
                        taught, len(train.samples))
        k = self.hparams.num_frames
        short = [(name, n) for name, ds in sets for n in ds.num_candidates if n < k]
        if short:
            _, warning = clip_num_frames(k, min(n for _, n in short))
            logger.warning("%d sample(s) have fewer candidates than model.num_frames = %d; their selections take "
                           "all of their candidates (shortest: %s)", len(short), k, warning)

    def _pair_dataset(self):
        dm = getattr(self.trainer, "datamodule", None) if self.trainer_attached() else None
        dataset = getattr(dm, "train_set", None)
        if dataset is None:
            raise TrainingConfigError("objective dpo / replay_ratio need a TSPODataModule (its train_set holds the "
                                      "questions the pairs refer to)")
        return dataset

    def logged_pairs(self, dataset) -> PreferencePairs:
        """Preference pairs from ``preference_log`` about ``dataset`` (none without a log)."""
        p, r = self.preference, self.reward_options
        if not p.preference_log:
            return PreferencePairs.empty(self.grpo.num_frames)
        records = read_answer_log(p.preference_log, p.preference_oracle_id)
        return pairs_from_log(records, dataset, self.grpo.num_frames, r.w_accuracy, r.w_temporal, p.min_margin)

    def is_replay_step(self) -> bool:
        """Whether this step is a DPO update on stored pairs (no oracle call) rather than online GRPO."""
        p = self.preference
        if p.objective == "dpo":
            return True
        return p.replay_ratio > 0 and self.batches_seen % (p.replay_ratio + 1) != 0 and bool(self._replay)

    def remember_pairs(self, batch: dict[str, Any], idx: torch.Tensor, rewards) -> None:
        """Keep the preference pairs of this online group for replay (``replay_ratio`` > 0)."""
        if self._replay is None or not self.preference.replay_ratio:
            return
        pairs = pairs_from_groups(batch["index"], idx, rewards.total, rewards.valid, self.preference.min_margin)
        self._replay = self._replay.extend(pairs)


def _load_agent_weights(source: str, like: TemporalAgent) -> dict[str, torch.Tensor]:
    """A state dict for ``like`` from a TSPOSelector directory or a published TSPO checkpoint file (a paper
    agent's weights start a filter agent of the same shape: :func:`tspo.agents.families.start_state`)."""
    if Path(source).is_dir():
        agent, _ = load_selector_agent(source)
    else:
        agent = TemporalAgent.load_published(source)
    try:
        return start_state(like, agent)
    except AgentConfigError:
        raise TrainingConfigError(f"model.init_from {source!r} holds an agent {agent.config}, the config asks "
                                  f"{like.config}") from None
