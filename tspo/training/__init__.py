"""TSPO training in Lightning: the GRPO module, the cached-feature data module, callbacks, CLI."""

from tspo.features.dataset import DataConfigError, SampleBatch
from tspo.training.callbacks import ExportSelector
from tspo.training.datamodule import StepSampler, TSPODataModule
from tspo.training.module import TrainingConfigError, TSPOModule
from tspo.training.synth import SynthConfig, ensure_synthetic

__all__ = [
    "DataConfigError",
    "ExportSelector",
    "SampleBatch",
    "StepSampler",
    "SynthConfig",
    "TSPODataModule",
    "TSPOModule",
    "TrainingConfigError",
    "ensure_synthetic",
]
