"""Temporal agents (families: the paper's, the filter), sampling policy, selection rules and the method
registry (imported as ``tspo.agents``)."""

from tspo.agents.families import AGENT_FAMILIES, AgentConfigError, build_agent, default_method, family_of
from tspo.agents.filter import FilterAgent
from tspo.agents.methods import METHODS, RULES, SCORERS, Method, get_method
from tspo.agents.policy import GumbelTopK as GumbelTopK  # re-export (policy.py)
from tspo.agents.rules import select_aks, select_bin_max, select_nms, select_topk, select_uniform
from tspo.agents.temporal import PublishedCheckpointError, TemporalAgent, sinusoidal_positions

__all__ = [
    "AGENT_FAMILIES",
    "AgentConfigError",
    "FilterAgent",
    "build_agent",
    "default_method",
    "family_of",
    "select_nms",
    "METHODS",
    "RULES",
    "SCORERS",
    "Method",
    "PublishedCheckpointError",
    "TemporalAgent",
    "get_method",
    "select_aks",
    "select_bin_max",
    "select_topk",
    "select_uniform",
    "sinusoidal_positions",
]
