"""Agent families: the one registry that turns a selector's ``config["agent"]`` into an agent.

``"paper"`` is TSPO's :class:`~tspo.agents.temporal.TemporalAgent` (its config has no ``family`` key,
so every selector written before families existed, and the published weights, load unchanged);
``"filter"`` is :class:`~tspo.agents.filter.FilterAgent`, the paper's agent plus a question-conditioned
temporal filter over similarity profiles and a set head. Every entry point (selector load, export,
training, plug-ins) builds agents through :func:`build_agent`.

Each family names the selection method its selectors use when a call names none
(:func:`default_method`, the class attribute ``default_method``): ``"paper"`` -> ``"tspo"`` (top-k of the
agent's scores), ``"filter"`` -> ``"tspo+shot"`` (where its set head says so, each pick suppresses a
window that stops at its shot's cuts, so distinct events get a pick each; elsewhere top-k). A selector's ``config.json`` may store
another (``"method"``); without one it is the family's.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from tspo.agents.filter import FilterAgent
from tspo.agents.temporal import TemporalAgent
from tspo.errors import TSPOError

DEFAULT_FAMILY = "paper"
AGENT_FAMILIES: dict[str, type[TemporalAgent]] = {"paper": TemporalAgent, "filter": FilterAgent}


class AgentConfigError(TSPOError, ValueError):
    """An agent config (``config.json``'s ``agent``, or training's agent options) that names no buildable agent."""


def family_of(agent_config: Mapping[str, Any]) -> str:
    """The family an agent config names (absent: ``"paper"``); unknown names raise :class:`AgentConfigError`."""
    family = agent_config.get("family", DEFAULT_FAMILY)
    if family not in AGENT_FAMILIES:
        raise AgentConfigError(f"agent family {family!r} is unknown; choose one of {sorted(AGENT_FAMILIES)}")
    return family


def default_method(family: str) -> str:
    """The selection method a selector of ``family`` uses when neither the call nor its ``config.json``
    names one (the family's class attribute ``default_method``); unknown families raise
    :class:`AgentConfigError`."""
    return AGENT_FAMILIES[family_of({"family": family})].default_method


def family_options(family: str) -> tuple[str, ...]:
    """The config keys (constructor arguments) an agent of ``family`` takes, ``dim`` included."""
    cls = AGENT_FAMILIES[family]
    return tuple(name for name in inspect.signature(cls.__init__).parameters if name not in ("self", "block"))


def build_agent(agent_config: Mapping[str, Any]) -> TemporalAgent:
    """A fresh (untrained) agent from its config: ``{"dim", "window", "heads", ["family", ...options]}``,
    as ``agent.config`` writes it. Unknown keys for the family raise :class:`AgentConfigError`."""
    family = family_of(agent_config)
    kwargs = {k: v for k, v in agent_config.items() if k != "family"}
    unknown = sorted(set(kwargs) - set(family_options(family)))
    if unknown:
        raise AgentConfigError(f"agent config has keys {unknown} that the {family!r} family does not take; "
                               f"it takes {list(family_options(family))}")
    try:
        return AGENT_FAMILIES[family](**kwargs)
    except (TypeError, ValueError) as err:
        raise AgentConfigError(f"cannot build a {family!r} agent from {dict(agent_config)}: {err}") from err


def paper_part(agent_config: Mapping[str, Any]) -> dict[str, Any]:
    """The paper agent's config inside any family's config (the keys :class:`TemporalAgent` takes)."""
    return {k: v for k, v in agent_config.items() if k in family_options("paper")}


def start_state(like: TemporalAgent, loaded: TemporalAgent) -> dict[str, Any]:
    """Weights for ``like`` from ``loaded``: the same config gives its weights; a paper agent of the
    same shape gives a filter agent its paper part (filter and set head stay zero, so it starts as
    that paper agent). Anything else raises :class:`AgentConfigError` naming both configs."""
    if loaded.config == like.config:
        return loaded.state_dict()
    if family_of(loaded.config) == "paper" and loaded.config == paper_part(like.config):
        return {**like.state_dict(), **loaded.state_dict()}
    raise AgentConfigError(f"the weights hold an agent {loaded.config}, the config asks {like.config}")


__all__ = ["AGENT_FAMILIES", "DEFAULT_FAMILY", "AgentConfigError", "build_agent", "default_method", "family_of",
           "family_options", "paper_part", "start_state"]
