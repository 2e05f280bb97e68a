"""Rewards and frozen video-LLM reward oracles.

Reward math (pure functions): :func:`parse_option`, :func:`accuracy_reward`,
:func:`temporal_reward`, :func:`compose_reward`. Oracles answer a whole GRPO group per call:
:class:`SimulatedOracle` (synthetic data with known evidence), :class:`ClipZeroShotOracle`,
:class:`HFVideoLLMOracle` (transformers, optional ``hf`` extra, imported lazily),
:class:`OpenAICompatibleOracle` (HTTP), and :class:`OracleCache` around any of them;
:func:`build_oracle` builds any of them from one spec grammar; :func:`ask_about` is the one path
from picked candidates to an oracle call (training, answer logs and evaluation alike).
"""

from __future__ import annotations

from tspo.spans import in_spans, span_hits, spans_around

from .ask import ask_about, decode_picks, group_picks
from .cache import OracleCache
from .clip_oracle import ClipZeroShotOracle
from .errors import OracleConfigError, OracleInputError, RewardInputError
from .factory import ORACLE_KINDS, SPEC_HELP, build_oracle, check_oracle_args, check_oracle_fits
from .hf_oracle import HFVideoLLMOracle
from .openai_oracle import OpenAICompatibleOracle
from .oracle import Oracle, OracleAnswer, OracleQuery
from .parsing import option_letters, parse_option
from .rewards import RewardParts, accuracy_reward, compose_reward, soft_accuracy_reward, temporal_reward
from .simulated import SimulatedOracle

__all__ = [
    "ORACLE_KINDS",
    "SPEC_HELP",
    "build_oracle",
    "check_oracle_args",
    "check_oracle_fits",
    "ClipZeroShotOracle",
    "HFVideoLLMOracle",
    "OpenAICompatibleOracle",
    "Oracle",
    "OracleAnswer",
    "OracleCache",
    "OracleConfigError",
    "OracleInputError",
    "OracleQuery",
    "RewardInputError",
    "RewardParts",
    "SimulatedOracle",
    "accuracy_reward",
    "ask_about",
    "compose_reward",
    "decode_picks",
    "group_picks",
    "in_spans",
    "option_letters",
    "parse_option",
    "soft_accuracy_reward",
    "span_hits",
    "spans_around",
    "temporal_reward",
]
