"""Lightning callbacks of a TSPO run: export the trained agent as a ``TSPOSelector`` directory."""

from __future__ import annotations

import copy
from pathlib import Path

import lightning as L


class ExportSelector(L.Callback):
    """At the end of training, write ``dirpath`` = ``model.safetensors`` + ``config.json``.

    The directory loads with ``TSPOSelector.from_pretrained(dirpath)`` and ``tspo select``.
    ``dirpath`` defaults to ``<trainer.log_dir or default_root_dir>/selector``. ``num_frames``
    (k at inference) defaults to the training k. Only global rank 0 writes.
    """

    def __init__(self, dirpath: str | None = None, num_frames: int | None = None) -> None:
        self.dirpath = dirpath
        self.num_frames = num_frames
        self.exported: Path | None = None

    def target_dir(self, trainer: L.Trainer) -> Path:
        if self.dirpath is not None:
            return Path(self.dirpath)
        return Path(trainer.log_dir or trainer.default_root_dir) / "selector"

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        from tspo.selector import TSPOSelector

        data = trainer.datamodule
        agent = copy.deepcopy(pl_module.agent).float().cpu().eval()
        selector = TSPOSelector(
            encoder=pl_module.encoder, agent=agent, cache=False,
            num_frames=self.num_frames or int(pl_module.hparams.num_frames),
            fps=float(getattr(data, "fps", 1.0)), max_candidates=getattr(data, "max_candidates", None),
        )
        extra = {"trained_with": {"method": "tspo", "oracle": str(pl_module.hparams.oracle),
                                  "steps": int(trainer.global_step), "group_size": int(pl_module.hparams.group_size),
                                  "train_num_frames": int(pl_module.hparams.num_frames)}}
        self.exported = selector.save_pretrained(self.target_dir(trainer), extra_config=extra)
        print(f"tspo: exported the trained selector to {self.exported}")
