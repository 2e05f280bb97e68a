"""Temporal agent, sampling policy and baseline selection rules (imported as ``tspo.agents``)."""

from tspo.agents.baselines import (
    METHODS,
    select_aks,
    select_bin_max,
    select_by_method,
    select_topk,
    select_uniform,
)
from tspo.agents.policy import GumbelTopK as GumbelTopK  # re-export (policy.py)
from tspo.agents.temporal import PublishedCheckpointError, TemporalAgent, sinusoidal_positions

__all__ = [
    "METHODS",
    "PublishedCheckpointError",
    "TemporalAgent",
    "select_aks",
    "select_bin_max",
    "select_by_method",
    "select_topk",
    "select_uniform",
    "sinusoidal_positions",
]
