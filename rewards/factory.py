"""``build_oracle(spec, **args)``: the one way to name a frozen oracle (training, eval, filter, demo).

Grammar: ``NAME[:ARG]``, keyword arguments for the rest.

========================  =====================================================================
``simulated[:GUESS]``     :class:`SimulatedOracle`; GUESS = random | wrong | first (its ``guess``)
``clip``                  :class:`ClipZeroShotOracle` over ``encoder=`` (the selector's encoder)
``hf:MODEL``              :class:`HFVideoLLMOracle.from_pretrained` (hub id or local folder; also
                          ``hf`` with ``model_id=``); ``dtype="bfloat16"`` etc. become torch dtypes
``openai:URL#MODEL``      :class:`OpenAICompatibleOracle` (also ``openai`` with ``base_url=``, ``model=``)
``package.module.Class``  any class answering ``answer(queries)``, built with the keyword arguments
``{class_path, init_args}`` the LightningCLI shape of the line above (a YAML mapping, e.g.
                          ``model.oracle: {class_path: pkg.MyOracle, init_args: {k: 1}}``); the
                          oracle is still built lazily, in each process, by ``build_oracle``
========================  =====================================================================

An oracle object (anything with ``answer`` and ``oracle_id``) is returned as it is.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from typing import Any

import torch

from .clip_oracle import ClipZeroShotOracle
from .errors import OracleConfigError
from .hf_oracle import HFVideoLLMOracle
from .openai_oracle import OpenAICompatibleOracle
from .simulated import SimulatedOracle

ORACLE_KINDS = ("simulated", "clip", "hf", "openai")
SPEC_HELP = "simulated[:random|wrong|first] | clip | hf:MODEL | openai:URL#MODEL | package.module.Class"
# (in a training YAML, model.oracle may also be the mapping {class_path: package.module.Class, init_args: {...}})


def build_oracle(spec: Any, *, encoder: Any = None, seed: int | None = None, **args: Any) -> Any:
    """An :class:`~tspo.rewards.Oracle` from a spec string (see the module docstring) and keyword args.

    ``encoder``: the CLIP encoder, used by ``clip`` only. ``seed``: passed to oracles that draw
    random numbers (``simulated``, ``openai``, a class taking ``seed``); deterministic ones need none.
    Raises :class:`OracleConfigError` naming the grammar for a spec it cannot build.
    """
    if isinstance(spec, Mapping) and "class_path" in spec:
        extra = set(spec) - {"class_path", "init_args"}
        if extra or not isinstance(spec["class_path"], str) or "." not in spec["class_path"]:
            raise OracleConfigError(f"oracle mapping {dict(spec)!r}: give only class_path: package.module.Class "
                                    "and optionally init_args: {...}")
        return build_oracle(spec["class_path"], encoder=encoder, seed=seed, **{**(spec.get("init_args") or {}), **args})
    if not isinstance(spec, str):
        if callable(getattr(spec, "answer", None)) and hasattr(spec, "oracle_id"):
            return spec
        raise OracleConfigError(f"oracle spec must be a string ({SPEC_HELP}), a {{class_path, init_args}} mapping "
                               f"or an oracle object, got {spec!r}")
    name, _, arg = spec.partition(":")
    seeded = {} if seed is None else {"seed": seed}
    if name == "simulated":
        if arg:
            args["guess"] = arg
        return SimulatedOracle(**seeded, **args)
    if name == "clip" and not arg:
        if encoder is None:
            raise OracleConfigError("oracle 'clip' needs the CLIP encoder (encoder=...; the selector's or model.encoder)")
        return ClipZeroShotOracle(encoder, **args)
    if name == "hf":
        if arg:
            args["model_id"] = arg
        if "model_id" not in args:
            raise OracleConfigError("oracle 'hf' needs a model: hf:MODEL_ID_OR_DIR (or model_id=...)")
        if isinstance(args.get("dtype"), str):
            dtype = getattr(torch, args["dtype"], None)
            if not isinstance(dtype, torch.dtype):
                raise OracleConfigError(f"oracle dtype {args['dtype']!r} is not a torch dtype (e.g. 'bfloat16')")
            args["dtype"] = dtype
        return HFVideoLLMOracle.from_pretrained(**args)
    if name == "openai":
        if arg:
            if "#" not in arg:
                raise OracleConfigError(f"oracle spec {spec!r}: write openai:BASE_URL#MODEL")
            args["base_url"], _, args["model"] = arg.rpartition("#")
        return OpenAICompatibleOracle(**seeded, **args)
    if "." in name and not arg:
        module, _, cls_name = name.rpartition(".")
        try:
            cls = getattr(importlib.import_module(module), cls_name)
        except (ImportError, AttributeError) as exc:
            raise OracleConfigError(f"oracle {spec!r} could not be imported: {exc}") from exc
        if seed is not None and "seed" in inspect.signature(cls).parameters:
            args["seed"] = seed
        return cls(**args)
    raise OracleConfigError(f"unknown oracle spec {spec!r}; use {SPEC_HELP}")
