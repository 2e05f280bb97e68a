"""``TSPODataModule``: manifests in, batches of cached candidate features out.

Every sample's candidate features are computed once (``tspo.features.cache.video_features``:
plain videos through the on-disk feature cache, virtual needle videos composed in feature space
from their sources' cached rows) before training starts, so no video is decoded during training.
Frames are fetched later only when the oracle needs pixels, only for the selected indices
(``tspo.rewards.ask_about``).

Batches are dicts: ``features`` float32[B, T, D], ``text`` float32[B, D], ``timestamps``
float64[B, T] seconds, ``target_mask`` bool[B, T] (candidate inside a target span), ``index``
int64[B], ``samples`` (a :class:`SampleBatch` of manifest samples, for the oracle).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

from tspo.features.cache import FeatureCache
from tspo.features.dataset import DataConfigError, FeatureDataset, collate, unequal_batches
from tspo.features.encoders import shared_encoder
from tspo.features.extract import extract_features
from tspo.manifest import Sample, load_manifest
from tspo.settings import DEFAULT_FPS, DEFAULT_MAX_CANDIDATES
from tspo.training.synth import SynthConfig, ensure_synthetic


class StepSampler(DistributedSampler):
    """Sample order as a pure function of (seed, position), resumable mid-run.

    Epoch ``e`` covers positions ``[e * length, (e + 1) * length)``. Position ``c`` on rank
    ``r`` of ``W`` is global draw ``g = c * W + r``: pass ``g // N`` over
    the data uses permutation ``perm(seed, g // N)``, and the draw is its ``g % N``-th entry. So
    ranks never share a draw within a pass, and a resumed run continues at ``start`` with exactly
    the samples the uninterrupted run would have seen. Subclasses ``DistributedSampler`` only so
    Lightning does not wrap it in another one.
    """

    def __init__(self, num_items: int, length: int, seed: int = 0, shuffle: bool = True,
                 rank: int = 0, world_size: int = 1, start: int = 0) -> None:
        # No super().__init__: that would require an initialised process group.
        self.num_items, self.length, self.seed, self.shuffle = num_items, length, seed, shuffle
        self.rank, self.num_replicas, self.start, self.epoch = rank, world_size, start, 0

    def set_epoch(self, epoch: int) -> None:      # Lightning calls this; the position already encodes it
        self.epoch = epoch

    def _perm(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.num_items)
        return np.random.default_rng([self.seed, epoch]).permutation(self.num_items)

    def __iter__(self) -> Iterator[int]:
        pos = self.epoch * self.length + np.arange(self.start, self.length)
        draws = pos * self.num_replicas + self.rank
        passes, within = draws // self.num_items, draws % self.num_items
        out = np.empty(len(pos), dtype=np.int64)
        for p in np.unique(passes):                # one permutation per pass over the data
            sel = passes == p
            out[sel] = self._perm(int(p))[within[sel]]
        self.start = 0                             # a resume skips only once
        return iter(out.tolist())

    def __len__(self) -> int:
        return self.length - self.start


class TSPODataModule(L.LightningDataModule):
    """Training / held-out samples from manifests, as cached features.

    Args:
        train_manifest, val_manifest: JSON Lines manifests. Left out with ``synth`` given (or
            pointing at missing files with ``synth`` given), synthetic needle data is made first.
        encoder: frozen CLIP spec; the CLI links ``model.encoder`` to it.
        fps, max_candidates: candidate sampling (paper: 1 fps; 128 candidates keeps batches equal).
        batch_size: questions per step (paper: 1, with grad-accum 2).
        feature_cache: feature cache directory (default: ``<trainer.default_root_dir>/feature_cache``,
            or ``$TSPO_CACHE`` outside a Trainer). Give the same path to several runs, and to
            ``tspo eval --feature-cache``, to encode each video once.
        synth: a :class:`SynthConfig` (``tspo.training.synth``) to make offline data with.
        features_from: ``"cache"`` (train from cached features) or ``"decode"`` (every step; benchmarks only).
        encoder_device: where features are computed (default: the trainer's device).
        feature_workers: decode processes per rank while features are extracted (``tspo.features.extract``;
            0: decode in the training process, None: this node's cores per rank). Extraction is sharded
            across the ranks, each video once; pre-extract with ``tspo features`` to keep it out of the run.
    """

    def __init__(self, train_manifest: str | None = None, val_manifest: str | None = None,
                 encoder: str = "tiny-random", fps: float = DEFAULT_FPS,
                 max_candidates: int | None = DEFAULT_MAX_CANDIDATES,
                 batch_size: int = 1, val_batch_size: int = 16, num_workers: int = 0, feature_cache: str | None = None,
                 shuffle: bool = True, seed: int = 0, synth: SynthConfig | None = None,
                 features_from: Literal["cache", "decode"] = "cache", encoder_device: str | None = None,
                 progress: bool = True, feature_workers: int | None = 0) -> None:
        super().__init__()
        if batch_size < 1 or val_batch_size < 1:
            raise DataConfigError(f"data.batch_size and data.val_batch_size must be >= 1, got {batch_size}, {val_batch_size}")
        if features_from not in ("cache", "decode"):
            raise DataConfigError(f"data.features_from must be 'cache' or 'decode', got {features_from!r}")
        self.train_manifest, self.val_manifest = train_manifest, val_manifest
        self.encoder_spec = encoder
        self.fps, self.max_candidates = fps, max_candidates
        self.batch_size, self.val_batch_size, self.num_workers = batch_size, val_batch_size, num_workers
        self.feature_cache, self.shuffle, self.seed = feature_cache, shuffle, seed
        self.synth, self.features_from, self.progress = synth, features_from, progress
        self.encoder_device = encoder_device
        self.feature_workers = feature_workers
        self.encoder = None
        self.train_set: FeatureDataset | None = None
        self.val_set: FeatureDataset | None = None
        # What setup() decided (read by the export callback, never re-derived there): the manifests
        # used and whether they were made from data.synth.
        self.used: dict[str, Any] | None = None
        # Training batches handed to the model so far: the resume position, saved in checkpoints by
        # Lightning through state_dict / load_state_dict (the DataModule's own state, not the model's).
        self.batches_consumed = 0
        if train_manifest is None and synth is None:
            raise DataConfigError("give data.train_manifest (a JSON Lines manifest) or a data.synth block to make "
                                  "synthetic needle data")

    def _run_dir(self) -> Path | None:
        """The run folder everything of this run derives from (``trainer.default_root_dir``)."""
        trainer = getattr(self, "trainer", None)
        return Path(trainer.default_root_dir) if trainer is not None else None

    def resolved_synth(self) -> SynthConfig | None:
        """``synth`` with ``out_dir`` filled in (``<run folder>/data`` when left out)."""
        if self.synth is None or self.synth.out_dir is not None or self._run_dir() is None:
            return self.synth
        return dataclasses.replace(self.synth, out_dir=str(self._run_dir() / "data"))

    def _feature_cache_dir(self) -> str | None:
        if self.feature_cache is not None or self._run_dir() is None:
            return self.feature_cache
        return str(self._run_dir() / "feature_cache")

    def _manifests(self) -> tuple[str, str | None]:
        train, val = self.train_manifest, self.val_manifest
        missing = train is None or not Path(train).is_file() or (val is not None and not Path(val).is_file())
        if missing and self.synth is not None:
            # Reuses what an earlier call (prepare_data on rank 0) made with the same config.
            synth_train, synth_val = ensure_synthetic(self.resolved_synth(), progress=self.progress)
            return str(synth_train), str(synth_val)
        if train is None or not Path(train).is_file():
            raise DataConfigError(f"data.train_manifest {train!r} does not exist; write one (tspo synth ...) or add data.synth")
        if val is not None and not Path(val).is_file():
            raise DataConfigError(f"data.val_manifest {val!r} does not exist")
        return train, val

    def prepare_data(self) -> None:
        """Rank 0 only: make the synthetic data when the config asks for it (before the ranks load it)."""
        self._manifests()

    def _encoder_device(self) -> torch.device:
        if self.encoder_device is not None:
            return torch.device(self.encoder_device)
        root = getattr(getattr(self.trainer, "strategy", None), "root_device", None)
        return root if root is not None else torch.device("cpu")

    def setup(self, stage: str | None = None) -> None:
        if stage == "fit":
            # A new fit starts at position 0; a resumed one gets its position from load_state_dict,
            # which Lightning calls after setup.
            self.batches_consumed = 0
        if self.train_set is not None:
            return

        train, val = self._manifests()
        made = train != self.train_manifest or val != self.val_manifest
        self.used = {"train_manifest": train, "val_manifest": val, "synth": self.resolved_synth() if made else None}
        # Asks the encoder owner, as the module does: one frozen encoder per process, not two.
        self.encoder = shared_encoder(self.encoder_spec, self._encoder_device())
        cache = FeatureCache(self._feature_cache_dir())
        kw = {"fps": self.fps, "max_candidates": self.max_candidates, "cache": cache, "progress": self.progress,
              "options": self._agent_reads_options()}
        train_samples, val_samples = load_manifest(train), load_manifest(val) if val is not None else []
        train_samples, val_samples = self._extract(train_samples, val_samples, cache)
        self.train_set = FeatureDataset(train_samples, self.encoder, source=self.features_from, **kw)
        if val is not None:
            self.val_set = FeatureDataset(val_samples, self.encoder, **kw)
        # Found now, not some steps in (held-out batches are checked as they are made: a run may never
        # validate, e.g. trainer.limit_val_batches: 0).
        why = unequal_batches(self.train_set.num_candidates, self.batch_size, "data.batch_size")
        if why:
            raise DataConfigError(why)

    def _agent_reads_options(self) -> bool:
        """Whether the agent being trained reads multiple-choice options (the filter family does, the
        paper's does not); True when no module is attached to ask (e.g. setup called by hand)."""
        module = getattr(self.trainer, "lightning_module", None) if self.trainer is not None else None
        agent = getattr(module, "agent", None)
        return True if agent is None else bool(getattr(agent, "reads_options", True))

    def _extract(self, train: list[Sample], val: list[Sample], cache: FeatureCache) -> tuple[list[Sample], list[Sample]]:
        """Every sample's features into ``cache``, sharded across the ranks (each video once in the
        job, ``tspo.features.extract``), then every rank reads them; samples whose video failed are dropped
        with a count and their reasons (logged), never ending the run."""
        import logging

        summary = extract_features([s.video for s in train + val], self.encoder, cache, self.fps, self.max_candidates,
                                   self.feature_workers, progress=self.progress)
        failed = summary.failed_owners
        if failed:
            reasons = sorted(set(failed.values()))
            logging.getLogger(__name__).warning("skipping %d of %d samples whose videos cannot be read: %s",
                                                len(failed), len(train) + len(val), "; ".join(reasons[:5]))
        kept_train = [s for i, s in enumerate(train) if i not in failed]
        kept_val = [s for i, s in enumerate(val) if i + len(train) not in failed]
        if not kept_train:
            raise DataConfigError(f"none of the {len(train)} training samples has a readable video "
                                  f"(first reason: {reasons[0]})")
        return kept_train, kept_val

    def train_dataloader(self) -> DataLoader:
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        # Step-based (max_steps): one "epoch" covers the whole run, so a resume never restarts a
        # data pass. Epoch-based: an epoch is one pass; positions continue across epochs.
        if trainer is not None and trainer.max_steps > 0:
            length = trainer.max_steps * trainer.accumulate_grad_batches * self.batch_size
        else:
            length = (math.ceil(len(self.train_set) / world) // self.batch_size) * self.batch_size
        if length < 1:
            raise DataConfigError(f"{len(self.train_set)} training samples cannot fill one batch of {self.batch_size} "
                                  f"on each of {world} processes; add samples or lower data.batch_size")
        epoch = trainer.current_epoch if trainer is not None else 0
        start = max(0, self.batches_consumed * self.batch_size - epoch * length)
        sampler = StepSampler(len(self.train_set), length, self.seed, self.shuffle, rank, world, start=start)
        return DataLoader(self.train_set, batch_size=self.batch_size, sampler=sampler, collate_fn=collate,
                          num_workers=self.num_workers, drop_last=True, persistent_workers=self.num_workers > 0)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Counts training batches (not validation ones): each is one step of the resume position."""
        if self.trainer is not None and self.trainer.training:
            self.batches_consumed += 1
        return batch

    def state_dict(self) -> dict[str, Any]:
        return {"batches_consumed": self.batches_consumed}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.batches_consumed = int(state_dict["batches_consumed"])

    def val_dataloader(self) -> DataLoader | list:
        if self.val_set is None:
            return []
        return DataLoader(self.val_set, batch_size=self.val_batch_size, shuffle=False,
                          collate_fn=functools.partial(collate, option="data.val_batch_size", batch_size=self.val_batch_size), num_workers=self.num_workers)
