"""Build the frozen reward oracle named in a training config (``model.oracle`` / ``model.oracle_args``)."""

from __future__ import annotations

import importlib
from typing import Any

import torch

ORACLES = ("simulated", "clip", "hf", "openai")


class OracleSpecError(ValueError):
    """The training config names an oracle that cannot be built."""


def build_oracle(name: str, args: dict[str, Any] | None = None, encoder: Any = None):
    """An :class:`~tspo.rewards.Oracle` from a config name and keyword arguments.

    ``simulated`` (synthetic data with known evidence), ``clip`` (zero-shot with the training
    encoder), ``hf`` (``HFVideoLLMOracle.from_pretrained(model_id=..., device=..., dtype=...)``),
    ``openai`` (an OpenAI-compatible server), or a dotted ``package.module.Class`` path.
    """
    from tspo import rewards

    args = dict(args or {})
    if name == "simulated":
        return rewards.SimulatedOracle(**args)
    if name == "clip":
        if encoder is None:
            raise OracleSpecError("oracle 'clip' needs the training encoder; set model.encoder")
        return rewards.ClipZeroShotOracle(encoder, **args)
    if name == "hf":
        if "model_id" not in args:
            raise OracleSpecError("oracle 'hf' needs oracle_args.model_id (a hub id or a local model directory)")
        if isinstance(args.get("dtype"), str):
            dtype = getattr(torch, args["dtype"], None)
            if not isinstance(dtype, torch.dtype):
                raise OracleSpecError(f"oracle_args.dtype {args['dtype']!r} is not a torch dtype (e.g. 'bfloat16')")
            args["dtype"] = dtype
        return rewards.HFVideoLLMOracle.from_pretrained(**args)
    if name == "openai":
        return rewards.OpenAICompatibleOracle(**args)
    if "." in name:
        module, _, cls = name.rpartition(".")
        try:
            return getattr(importlib.import_module(module), cls)(**args)
        except (ImportError, AttributeError) as exc:
            raise OracleSpecError(f"oracle {name!r} could not be imported: {exc}") from exc
    raise OracleSpecError(f"unknown oracle {name!r}; use one of {ORACLES} or a dotted 'module.Class' path")
