"""``TSPOModule``: GRPO training of the temporal agent against a frozen oracle (DESIGN section 5).

A training step, top to bottom (paper Fig. 2 / Eq. 4-11):

    S = agent(F_f, F_t)                    [B, T]   (cached features in, no video decode)
    idx, logp ~ GumbelTopK(k)(S / tau, G)  [B, G, k]
    answers = oracle(B * G queries)        one batched call, memoised by OracleCache
    r = R_A + R_T (needle) | R_A + 1       [B, G]   (failed queries masked; unparsed -> R_A = 0)
    A = group_advantages(r)                [B, G]
    L = tspo_loss(logp, logp_old, A)       scalar -> agent only

Only the agent is trainable state. The encoder and the oracle are references kept outside the
``nn.Module`` tree: never in the optimizer, never in ``state_dict`` or checkpoints.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import time
from pathlib import Path
from typing import Any, Literal

import lightning as L
import numpy as np
import torch

from tspo.agents import GumbelTopK, TemporalAgent
from tspo.encoders import shared_encoder
from tspo.grpo import (
    decoupled_advantages,
    dpo_loss,
    explore_logits,
    group_advantages,
    plackett_luce_logp,
    policy_entropy,
    policy_stats,
    selection_logp,
    span_mass_loss,
    temperature_at,
    tspo_loss,
)
from tspo.judge import judge_selections, metrics_of
from tspo.preference import AnswerLogger, PreferencePairs, pairs_from_groups, pairs_from_log, read_answer_log
from tspo.rewards import (
    OracleCache,
    OracleConfigError,
    build_oracle,
    check_oracle_args,
    check_oracle_fits,
    in_spans,
)
from tspo.selector import load_selector_agent
from tspo.settings import (
    DEFAULT_FRAME_SIZE,
    DEFAULT_NUM_FRAMES,
    check_frame_size,
    check_num_frames,
    clip_num_frames,
)
from tspo.training.datamodule import collate
from tspo.training.rollout import TEMPORAL_SPANS, ask_oracle, picks_in_target, reward_spans
from tspo.training.zoom_step import check_zoom_options, zoom_training_step

logger = logging.getLogger(__name__)


class TrainingConfigError(ValueError):
    """A TSPOModule / TSPODataModule option has a value that cannot work."""


def step_seed(seed: int, rank: int, batch: int) -> int:
    """A 63-bit seed for the Gumbel noise of one training batch on one rank.

    The noise depends only on (seed, rank, batches seen), not on a generator's history, so a run
    resumed from a checkpoint draws exactly the noise the uninterrupted run would have.
    """
    digest = hashlib.sha256(f"tspo|{seed}|{rank}|{batch}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


class TSPOModule(L.LightningModule):
    """Temporal agent + GRPO objective. Options mirror DESIGN section 5; all are off by default.

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
            of) the mixture ``(1 - eps) softmax(S / tau) + eps / T`` (:func:`tspo.grpo.explore_logits`),
            so frames far below the top are still drawn now and then; single-stage GRPO only.
        span_loss: beyond the paper, off by default: weight of :func:`tspo.grpo.span_mass_loss`, the
            policy's −log probability mass inside the spans R_T counts (``temporal_spans``), added to
            the GRPO loss for needle questions: a dense use of the spans synthetic needles annotate.
        advantage: ``"grouped"`` (paper) or ``"decoupled"`` (R_A and R_T normalised separately,
            then ``w_accuracy A(R_A) + w_temporal A(R_T)``).
        logprob: ``"per_frame"`` (paper: log_softmax(S/tau) at the picks) or ``"plackett_luce"``.
        clip_eps, num_iterations: PPO clipped ratio and updates per rollout (1 = paper, on-policy).
        kl_beta: weight of KL to a frozen copy of the initial agent (0 = off, paper's Eq. 9).
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
        kl_beta: float = 0.0,
        init_from: str | None = None,
        frame_size: int = DEFAULT_FRAME_SIZE,
        seed: int = 0,
        zoom: dict[str, Any] | None = None,
        w_zoom: float = 1.0,
        query_adapter: bool = False,
        question_attention: bool = False,
        objective: Literal["grpo", "dpo"] = "grpo",
        preference_log: str | None = None,
        preference_oracle_id: str | None = None,
        replay_ratio: int = 0,
        dpo_beta: float = 0.1,
        pairs_per_step: int = 16,
        min_margin: float = 0.0,
        answer_log: str | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=[] if isinstance(encoder, str) else ["encoder"])
        _check_options(num_frames, frame_size, group_size, advantage, logprob, clip_eps, num_iterations, kl_beta, tau_steps)
        if isinstance(explore_eps, bool) or not isinstance(explore_eps, int | float) or not 0 <= explore_eps < 1:
            raise TrainingConfigError(f"model.explore_eps must be a number in [0, 1) (0 = off), got {explore_eps!r}")
        if isinstance(span_loss, bool) or not isinstance(span_loss, int | float) or span_loss < 0:
            raise TrainingConfigError(f"model.span_loss must be a number >= 0 (0 = off), got {span_loss!r}")
        if temporal_spans not in TEMPORAL_SPANS:
            raise TrainingConfigError(f"model.temporal_spans must be one of {TEMPORAL_SPANS}, got {temporal_spans!r}")
        if (explore_eps or span_loss) and (zoom is not None or objective != "grpo"):
            raise TrainingConfigError("model.explore_eps and model.span_loss shape single-stage GRPO sampling; they do "
                                      "nothing with model.zoom or model.objective dpo: set them to 0 there")
        _check_preference_options(objective, preference_log, replay_ratio, dpo_beta, pairs_per_step, min_margin,
                                  num_iterations)
        try:  # options written for another oracle must not reach this one (found now, not at the first step)
            check_oracle_args(oracle, oracle_args, "model.oracle_args")
        except OracleConfigError as err:
            raise TrainingConfigError(str(err)) from None
        enc = shared_encoder(encoder) if isinstance(encoder, str) else encoder
        # Plain dict: an nn.Module assigned as an attribute would join state_dict and the optimizer.
        self._frozen: dict[str, Any] = {"encoder": enc, "oracle": None}
        self.agent = TemporalAgent(dim=enc.dim, window=window, heads=heads, query_adapter=query_adapter,
                                   question_attention=question_attention)
        if init_from:
            self.agent.load_state_dict(_load_agent_weights(init_from, self.agent).state_dict())
        uses_ref = kl_beta > 0 or objective == "dpo" or replay_ratio > 0
        self.ref_agent = copy.deepcopy(self.agent).requires_grad_(False) if uses_ref else None
        self.policy = GumbelTopK(num_frames)
        # zoom: train coarse span choice + fine frame choice (tspo.training.zoom_step); None = single-stage
        self.zoom_config = check_zoom_options(zoom, num_iterations, kl_beta, objective, replay_ratio)
        # Manual optimisation only for several PPO updates per rollout; the paper's one update
        # per rollout keeps Lightning's automatic loop (grad accumulation, clipping, precision).
        self.automatic_optimization = num_iterations == 1
        self.batches_seen = 0
        self.oracle_calls = 0                        # real (uncached) oracle calls made by training steps
        self._replay: PreferencePairs | None = None  # pairs DPO draws from (objective dpo / replay_ratio > 0)
        self._ref_cache: dict[int, torch.Tensor] = {}  # dataset row -> reference scores [T]
        self._last_step_time: float | None = None
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

    # -- pieces of the step ----------------------------------------------------------------------
    def current_tau(self) -> float:
        h = self.hparams
        steps = h.tau_steps or (self.trainer.max_steps if self.trainer_attached() else -1)
        if steps is None or steps <= 0:
            raise TrainingConfigError("the temperature schedule needs model.tau_steps or trainer.max_steps > 0")
        return temperature_at(self.global_step, steps, h.tau_start, h.tau_end)

    def scores(self, features: torch.Tensor, text: torch.Tensor, agent: TemporalAgent | None = None) -> torch.Tensor:
        """Agent scores S float32[B, T], always computed in float32.

        Under bf16 autocast S in [-2, 2] would be rounded to ~2^-7, which S / tau at tau = 0.01
        magnifies to ~0.8 logits of noise; the agent is tiny, so full precision costs nothing.
        """
        with torch.autocast(device_type=self.device.type, enabled=False):
            return (agent or self.agent)(features.float(), text.float()).float()

    def _generator(self) -> torch.Generator:
        rank = self.global_rank if self.trainer_attached() else 0
        return torch.Generator().manual_seed(step_seed(self.hparams.seed, rank, self.batches_seen))

    def _logp(self, logits: torch.Tensor, idx: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
        if self.hparams.logprob == "plackett_luce":
            return plackett_luce_logp(logits, idx, order)
        return torch.log_softmax(logits, -1).unsqueeze(-2).expand(*idx.shape[:-1], logits.shape[-1]).gather(-1, idx)

    def policy_for(self, num_candidates: int) -> GumbelTopK:
        """The sampler for a batch of ``num_candidates`` candidates: k clipped to T by the one rule
        (:func:`tspo.settings.clip_num_frames`, as ``tspo select``; said once, in :meth:`setup`)."""
        k, _ = clip_num_frames(self.policy.k, num_candidates)
        return self.policy if k == self.policy.k else GumbelTopK(k)

    def rollout(self, batch: dict[str, Any], logits: torch.Tensor):
        """Sample G selections per question and score them with the oracle: -> (idx, order, Rewards)."""
        policy = self.policy_for(logits.shape[-1])
        idx, _, order = policy.sample(logits.detach(), self.hparams.group_size, self._generator(), return_order=True)
        h = self.hparams
        _, rewards = ask_oracle(self.oracle, list(batch["samples"]), idx, batch["timestamps"], h.frame_size,
                                h.w_accuracy, h.w_temporal, h.temporal_spans)
        return idx, order, rewards

    def advantages(self, rewards) -> torch.Tensor:
        """Advantages float32[B, G]; failed queries (``rewards.valid`` False) get 0.

        ``grouped``: GRPO over ``total = w_a R_A + w_t R_T``. ``decoupled``:
        :func:`tspo.grpo.decoupled_advantages` with the same weights.
        """
        h = self.hparams
        if h.advantage == "decoupled":
            return decoupled_advantages(rewards.accuracy, rewards.temporal, rewards.valid,
                                        w_a=h.w_accuracy, w_t=h.w_temporal)
        return group_advantages(rewards.total, rewards.valid)

    def reward_span_mask(self, batch: dict[str, Any]) -> torch.Tensor:
        """bool[B, T]: candidates inside the spans R_T counts (``temporal_spans``); general questions: none."""
        if self.hparams.temporal_spans == "target":     # the DataModule already marks the target
            return batch["target_mask"].to(self.device)
        times = batch["timestamps"].cpu().numpy()
        rows = [in_spans(times[b], reward_spans(s, self.hparams.temporal_spans)) if s.kind == "needle"
                else np.zeros(times.shape[1], dtype=bool) for b, s in enumerate(batch["samples"])]
        return torch.from_numpy(np.stack(rows)).to(self.device)

    def policy_logits(self, features: torch.Tensor, text: torch.Tensor, tau: float, agent=None) -> torch.Tensor:
        """The sampling distribution's logits [B, T]: ``S / tau``, mixed with uniform when ``explore_eps`` > 0."""
        return explore_logits(self.scores(features, text, agent) / tau, self.hparams.explore_eps)

    # -- Lightning hooks -------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        if self.zoom_config is not None:
            return zoom_training_step(self, batch)
        h = self.hparams
        if self.is_replay_step():
            return self.replay_step()
        tau = self.current_tau()
        features, text = batch["features"], batch["text"]
        logits = self.policy_logits(features, text, tau)                        # [B, T]
        calls_before = self.oracle.misses
        idx, order, rewards = self.rollout(batch, logits)
        self.oracle_calls += self.oracle.misses - calls_before
        self.remember_pairs(batch, idx, rewards)
        valid = rewards.valid.to(self.device)
        adv = self.advantages(rewards).to(self.device)
        logp_new = self._logp(logits, idx, order)                               # once per step
        logp_old = logp_new.detach()
        logp_ref = None
        if self.ref_agent is not None and h.kl_beta:     # the reference also serves DPO replay steps
            with torch.no_grad():
                logp_ref = self._logp(self.policy_logits(features, text, tau, self.ref_agent), idx, order)
        loss_kw = {"valid": valid, "clip_eps": h.clip_eps, "logp_ref": logp_ref, "kl_beta": h.kl_beta}
        span_mask = self.reward_span_mask(batch) if h.span_loss else None              # [B, T], once per step
        if self.automatic_optimization:
            loss = tspo_loss(logp_new, logp_old, adv, **loss_kw)
            if span_mask is not None:
                loss = loss + h.span_loss * span_mass_loss(logits, span_mask)
            stats = policy_stats(logp_new, logp_old, h.clip_eps)
        else:
            opt = self.optimizers()
            for it in range(h.num_iterations):
                if it:  # the first update reuses the rollout's log-probs; later ones see the moved agent
                    logits = self.policy_logits(features, text, tau)
                    logp_new = self._logp(logits, idx, order)
                stats = policy_stats(logp_new, logp_old, h.clip_eps)            # before this update, as CleanRL
                loss = tspo_loss(logp_new, logp_old, adv, **loss_kw)
                if span_mask is not None:
                    loss = loss + h.span_loss * span_mass_loss(logits, span_mask)
                opt.zero_grad()
                self.manual_backward(loss)
                if self.trainer.gradient_clip_val:
                    self.clip_gradients(opt, self.trainer.gradient_clip_val, self.trainer.gradient_clip_algorithm)
                opt.step()
        self._log_step(batch, logits, idx, rewards, adv, tau, loss, stats)
        self.batches_seen += 1
        return loss

    def _log_step(self, batch, logits, idx, rewards, adv, tau, loss, stats) -> None:
        valid = rewards.valid
        needle = torch.tensor([s.kind == "needle" for s in batch["samples"]])
        metrics = {
            "train/loss": loss.detach(),
            "train/reward": _masked_mean(rewards.total, valid),
            "train/R_A": _masked_mean(rewards.accuracy, valid),
            "train/adv_std": adv[valid.to(adv.device)].std() if int(valid.sum()) > 1 else 0.0,
            "train/tau": tau,
            "train/entropy": policy_entropy(logits).mean(),
            "train/oracle_failures": float(rewards.failures),
            "train/oracle_unparsed": float(rewards.num_unparsed),
            "train/cache_hit_rate": self.oracle.hit_rate,
            "train/approx_kl": stats["approx_kl"],
            "train/oracle_calls": float(self.oracle_calls),
            "train/clipfrac": stats["clipfrac"],
            "perf/steps_per_s": self._steps_per_s,
        }
        if bool(needle.any()):
            inside = picks_in_target(batch["target_mask"], idx)                        # [B]
            metrics["train/R_T"] = _masked_mean(rewards.temporal[needle], valid[needle])
            metrics["train/in_target"] = inside[needle.to(inside.device)].mean()
        self.log_dict(metrics, on_step=True, on_epoch=False, batch_size=len(needle), prog_bar=False)
        self.log("reward", metrics["train/reward"], on_step=True, prog_bar=True, logger=False, batch_size=len(needle))

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        now = time.perf_counter()
        if self._last_step_time is not None:
            rate = 1.0 / max(now - self._last_step_time, 1e-9)
            self._steps_per_s = rate if not self._steps_per_s else 0.9 * self._steps_per_s + 0.1 * rate
        self._last_step_time = now

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Held-out check: greedy top-k (no noise, as at inference), one oracle query per question, judged
        by the evaluation loop's core (:func:`tspo.judge.judge_selections`, as ``tspo eval`` and
        :func:`~tspo.training.heldout.heldout_metrics` do)."""
        scores = self.scores(batch["features"], batch["text"])
        idx = self.policy_for(scores.shape[-1]).greedy(scores).cpu()                  # [B, k]
        samples = list(batch["samples"])
        outcomes = judge_selections(self.oracle, samples, [{"tspo": row} for row in idx.numpy()],
                                    list(batch["timestamps"].cpu().numpy()), self.hparams.frame_size)
        got = metrics_of(outcomes)
        self.log("val/accuracy", float(got["accuracy"]), batch_size=len(samples), sync_dist=True)
        needles = sum(s.kind == "needle" for s in samples)
        if got["target_fraction"] is not None:
            self.log("val/in_target", float(got["target_fraction"]), batch_size=needles, sync_dist=True)

    def configure_optimizers(self):
        return torch.optim.AdamW(self.agent.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["tspo"] = {"batches_seen": self.batches_seen, "agent_config": self.agent.config,
                              "oracle_calls": self.oracle_calls}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.batches_seen = int(checkpoint.get("tspo", {}).get("batches_seen", 0))
        self.oracle_calls = int(checkpoint.get("tspo", {}).get("oracle_calls", 0))

    # -- preference objective (objective: dpo, replay_ratio > 0) ---------------------------------
    def setup(self, stage: str) -> None:
        h = self.hparams
        if stage == "fit":
            self.check_data()
        if stage != "fit" or not (h.objective == "dpo" or h.replay_ratio > 0) or self._replay is not None:
            return
        self._replay = self.logged_pairs(self._pair_dataset())
        if h.objective == "dpo" and not len(self._replay):
            raise TrainingConfigError(f"model.preference_log {h.preference_log!r} gives no preference pairs "
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
        h = self.hparams
        if not h.preference_log:
            return PreferencePairs.empty(h.num_frames)
        records = read_answer_log(h.preference_log, h.preference_oracle_id)
        return pairs_from_log(records, dataset, h.num_frames, h.w_accuracy, h.w_temporal, h.min_margin)

    def is_replay_step(self) -> bool:
        """Whether this step is a DPO update on stored pairs (no oracle call) rather than online GRPO."""
        h = self.hparams
        if h.objective == "dpo":
            return True
        return h.replay_ratio > 0 and self.batches_seen % (h.replay_ratio + 1) != 0 and bool(self._replay)

    def remember_pairs(self, batch: dict[str, Any], idx: torch.Tensor, rewards) -> None:
        """Keep the preference pairs of this online group for replay (``replay_ratio`` > 0)."""
        if self._replay is None or not self.hparams.replay_ratio:
            return
        pairs = pairs_from_groups(batch["index"], idx, rewards.total, rewards.valid, self.hparams.min_margin)
        self._replay = self._replay.extend(pairs)

    @torch.no_grad()
    def reference_scores(self, rows: torch.Tensor, features: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """The frozen reference agent's scores float32[U, T] of dataset ``rows`` int64[U], each row
        computed once per run (the reference never changes, and a pair is replayed many times)."""
        cache = self._ref_cache
        missing = [i for i, r in enumerate(rows.tolist()) if r not in cache]
        if missing:
            fresh = self.scores(features[missing], text[missing], self.ref_agent)
            cache.update(zip(rows[missing].tolist(), fresh))
        return torch.stack([cache[r] for r in rows.tolist()])

    def replay_step(self) -> torch.Tensor:
        """One DPO update on ``pairs_per_step`` stored pairs (drawn with the step's seed)."""
        h = self.hparams
        pairs = self._replay
        tau = self.current_tau()
        pick = torch.randint(len(pairs), (h.pairs_per_step,), generator=self._generator())
        rows, inverse = pairs.index[pick].unique(return_inverse=True)
        dataset = self._pair_dataset()
        batch = collate([dataset[int(r)] for r in rows])
        features, text = batch["features"].to(self.device), batch["text"].to(self.device)
        chosen, rejected = pairs.chosen[pick].to(self.device), pairs.rejected[pick].to(self.device)
        inverse = inverse.to(self.device)

        def sel_logp(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            logp = torch.log_softmax(scores / tau, -1)[inverse]                                 # [P, T]
            return selection_logp(logp.gather(-1, chosen)), selection_logp(logp.gather(-1, rejected))

        lc, lr = sel_logp(self.scores(features, text))
        rc, rr = sel_logp(self.reference_scores(rows, features, text))
        loss = dpo_loss(lc, lr, rc, rr, h.dpo_beta)
        with torch.no_grad():
            won = ((lc - rc) > (lr - rr)).float().mean()
        self.log_dict({"train/loss": loss.detach(), "train/dpo_accuracy": won, "train/tau": tau,
                       "train/replay_pairs": float(len(pairs)), "train/oracle_calls": float(self.oracle_calls)},
                      on_step=True, on_epoch=False, batch_size=h.pairs_per_step)
        self.batches_seen += 1
        return loss


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mask = mask.to(x.device)
    return (x * mask).sum() / mask.sum().clamp(min=1)


def _check_options(num_frames, frame_size, group_size, advantage, logprob, clip_eps, num_iterations, kl_beta, tau_steps) -> None:
    for check, value, name in ((check_num_frames, num_frames, "model.num_frames"),
                               (check_frame_size, frame_size, "model.frame_size")):
        try:
            check(value, name)
        except ValueError as err:
            raise TrainingConfigError(str(err)) from None
    if not isinstance(group_size, int) or group_size < 2:
        raise TrainingConfigError(f"model.group_size must be an int >= 2 (GRPO compares members), got {group_size!r}")
    if advantage not in ("grouped", "decoupled"):
        raise TrainingConfigError(f"model.advantage must be 'grouped' or 'decoupled', got {advantage!r}")
    if logprob not in ("per_frame", "plackett_luce"):
        raise TrainingConfigError(f"model.logprob must be 'per_frame' or 'plackett_luce', got {logprob!r}")
    if clip_eps is not None and not clip_eps > 0:
        raise TrainingConfigError(f"model.clip_eps must be > 0 or null, got {clip_eps!r}")
    if not isinstance(num_iterations, int) or num_iterations < 1:
        raise TrainingConfigError(f"model.num_iterations must be an int >= 1, got {num_iterations!r}")
    if num_iterations > 1 and clip_eps is None:
        raise TrainingConfigError("model.num_iterations > 1 reuses a rollout; set model.clip_eps (e.g. 0.2) to bound the update")
    if kl_beta < 0:
        raise TrainingConfigError(f"model.kl_beta must be >= 0, got {kl_beta!r}")
    if tau_steps is not None and tau_steps < 1:
        raise TrainingConfigError(f"model.tau_steps must be >= 1 or null (= trainer.max_steps), got {tau_steps!r}")


def _check_preference_options(objective, preference_log, replay_ratio, dpo_beta, pairs_per_step, min_margin,
                              num_iterations) -> None:
    if objective not in ("grpo", "dpo"):
        raise TrainingConfigError(f"model.objective must be 'grpo' or 'dpo', got {objective!r}")
    if objective == "dpo" and not preference_log:
        raise TrainingConfigError("model.objective dpo trains offline from logged answers; set model.preference_log "
                                  "(collect one with `tspo eval --log-answers FILE` or model.answer_log)")
    if not isinstance(replay_ratio, int) or isinstance(replay_ratio, bool) or replay_ratio < 0:
        raise TrainingConfigError(f"model.replay_ratio must be an int >= 0 (replay updates per online update), "
                                  f"got {replay_ratio!r}")
    if objective == "dpo" and replay_ratio:
        raise TrainingConfigError("model.replay_ratio mixes replay into online GRPO; with objective dpo every step "
                                  "is already a replay step; set replay_ratio: 0")
    if (objective == "dpo" or replay_ratio) and num_iterations > 1:
        raise TrainingConfigError("model.num_iterations > 1 cannot be combined with DPO / replay updates")
    if not (isinstance(dpo_beta, (int, float)) and dpo_beta > 0):
        raise TrainingConfigError(f"model.dpo_beta must be > 0, got {dpo_beta!r}")
    if not isinstance(pairs_per_step, int) or pairs_per_step < 1:
        raise TrainingConfigError(f"model.pairs_per_step must be an int >= 1, got {pairs_per_step!r}")
    if min_margin < 0:
        raise TrainingConfigError(f"model.min_margin must be >= 0, got {min_margin!r}")
    if objective == "dpo" and "://" not in str(preference_log) and not Path(preference_log).exists():
        # before any data is rendered or encoded: the log is made by an earlier step, not by this run
        raise TrainingConfigError(
            f"model.preference_log {str(preference_log)!r} does not exist (relative paths resolve from "
            f"{str(Path.cwd())!r}); write it first with `tspo eval --manifest TRAIN_MANIFEST --methods uniform "
            f"--log-answers {preference_log} --log-draws 4 ...` (README: Fewer oracle calls, the commands before this one)")


def _load_agent_weights(source: str, like: TemporalAgent) -> TemporalAgent:
    """Agent weights from a TSPOSelector directory or a published TSPO checkpoint file."""
    from pathlib import Path

    if Path(source).is_dir():
        agent, _ = load_selector_agent(source)
    else:
        agent = TemporalAgent.load_published(source)
    if agent.config != like.config:
        raise TrainingConfigError(f"model.init_from {source!r} holds an agent {agent.config}, the config asks {like.config}")
    return agent
