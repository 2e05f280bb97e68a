"""The training console: one bar over the whole run, ``step 812/3000``, with smoothed metrics; plain
lines instead of redraws when stdout is not a terminal (the pace: :mod:`tspo.progress`)."""

from __future__ import annotations

import logging
import sys
import warnings
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar

from tspo.progress import LineProgress, is_terminal

# Lightning/torch notes that say nothing about this run (deprecations inside Lightning, the
# TensorBoard tip, the logging-interval hint for short runs); real warnings still show.
QUIET = (
    r".*LeafSpec.*is deprecated.*",
    r"Starting from v1\.9\.0, `tensorboardX` has been removed.*",
    r"The number of training batches .* is smaller than the logging interval.*",
)


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Inside: Lightning's INFO lines ("GPU available: False", "`Trainer.fit` stopped", the logger
    tip) and the :data:`QUIET` warnings are off; real warnings still show. Used by every training
    console we print (``tspo train``, ``tspo demo``)."""
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            for pattern in QUIET:
                warnings.filterwarnings("ignore", message=pattern)
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


class StepProgressBar(TQDMProgressBar):
    """A TQDM bar that counts optimizer steps of the whole run (``step N/max_steps``) instead of
    batches of an epoch (step-based runs have one endless "epoch"), drops Lightning's ``v_num``, and
    shows each progress-bar metric as the mean of its last ``window`` values (one raw GRPO reward
    says little)."""

    def __init__(self, refresh_rate: int = 1, window: int = 50) -> None:
        super().__init__(refresh_rate=refresh_rate)
        self.window = window
        self._recent: dict[str, deque] = defaultdict(lambda: deque(maxlen=self.window))

    # Redirected stdout (`tspo train fit ... > log.txt`): LineProgress bars, whose pace tspo.progress
    # owns, instead of Lightning's redrawn ones.
    def init_train_tqdm(self):
        if is_terminal(sys.stdout):
            return super().init_train_tqdm()
        return LineProgress(desc="step", disable=self.is_disabled, leave=True, file=sys.stdout, smoothing=0)

    def init_validation_tqdm(self):
        if is_terminal(sys.stdout):
            return super().init_validation_tqdm()
        return LineProgress(desc=self.validation_description, disable=self.is_disabled, leave=False, file=sys.stdout)

    def init_sanity_tqdm(self):
        if is_terminal(sys.stdout):
            return super().init_sanity_tqdm()
        return LineProgress(desc=self.sanity_check_description, disable=self.is_disabled, leave=False, file=sys.stdout)

    def _describe(self, bar, step: int, trainer: L.Trainer) -> None:
        if not isinstance(bar, LineProgress):  # a line already says "n/total"
            bar.set_description(f"step {step}/{self._total(trainer)}", refresh=False)

    def _total(self, trainer: L.Trainer) -> int | None:
        if trainer.max_steps and trainer.max_steps > 0:
            return int(trainer.max_steps)
        total = trainer.estimated_stepping_batches
        return int(total) if total != float("inf") else None

    def on_train_epoch_start(self, trainer: L.Trainer, *_: Any) -> None:
        bar = self.train_progress_bar
        bar.reset(total=self._total(trainer))
        bar.n = trainer.global_step  # a resumed run starts where it stopped
        self._describe(bar, trainer.global_step, trainer)
        bar.refresh()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:  # fmt: skip
        for name, value in trainer.progress_bar_metrics.items():
            self._recent[name].append(float(value))
        step = trainer.global_step
        bar = self.train_progress_bar
        if step % max(self.refresh_rate, 1) == 0 or step == self._total(trainer):
            bar.n = step
            self._describe(bar, step, trainer)
            bar.set_postfix(self.get_metrics(trainer, pl_module), refresh=False)
            bar.refresh()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pass  # the bar spans the run, not an epoch

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        for name, values in self._recent.items():
            if name in items and values:
                items[name] = f"{sum(values) / len(values):.3f}"
        return items
