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


def _takes(fn: Any, *skip: str) -> set[str] | None:
    """Keyword names ``fn`` accepts (None: any, it takes ``**kwargs``)."""
    params = inspect.signature(fn).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.name not in ("self", *skip)}


def oracle_options(spec: Any) -> set[str] | None:
    """The keyword options the oracle named by ``spec`` takes (its constructor's), or None when the
    spec is not one of :data:`ORACLE_KINDS` (a class path or an object: not checked here)."""
    name = spec.partition(":")[0] if isinstance(spec, str) else None
    if name == "simulated":
        return _takes(SimulatedOracle.__init__)
    if name == "clip":
        return _takes(ClipZeroShotOracle.__init__, "encoder")
    if name == "hf":
        return (_takes(HFVideoLLMOracle.from_pretrained) or set()) | (_takes(HFVideoLLMOracle.__init__, "model",
                                                                             "processor") or set())
    if name == "openai":
        return _takes(OpenAICompatibleOracle.__init__)
    return None


def check_oracle_args(spec: Any, args: Mapping[str, Any] | None, option: str = "oracle arguments") -> None:
    """Refuse options the oracle named by ``spec`` does not take, before anything is built.

    Options written for one oracle (e.g. the simulated oracle's ``min_needle_picks`` in a config) must
    not leak into another: raise :class:`OracleConfigError` naming them, the options this oracle takes,
    and where they came from (``option``, e.g. ``model.oracle_args``).
    """
    takes = oracle_options(spec)
    bad = sorted(set(args or {}) - takes) if takes is not None else []
    if bad:
        name = spec.partition(":")[0]
        raise OracleConfigError(
            f"oracle {spec!r} does not take {', '.join(bad)} (from {option}); it takes "
            f"{', '.join(sorted(takes)) or 'no options'}. Options of another oracle left in a config? "
            f"Drop them (on the command line: --model.oracle_args '{{}}') when switching to {name!r}")


def check_oracle_fits(spec: Any, samples: Any, option: str = "--oracle") -> None:
    """The one rule for an oracle that needs annotations: the simulated oracle answers from known
    evidence, so on samples with neither evidence nor target spans (real clips, public benchmarks) it
    would call every selection right. Refuse (training and ``tspo eval`` alike) instead of a silent
    maximum reward; ``option`` names the setting to change in the message."""
    simulated = (isinstance(spec, str) and spec.partition(":")[0] == "simulated") or isinstance(spec, SimulatedOracle)
    if simulated:
        blind = [s.id for s in samples if not s.evidence_spans_s and not s.target_spans_s]
        if blind:
            raise OracleConfigError(
                f"{len(blind)} samples (e.g. {blind[0]!r}) have no evidence or target spans, so the simulated "
                f"oracle cannot judge them (it would call every selection right); set {option} to clip (CLIP "
                "zero-shot, CPU), hf:MODEL or openai:URL#MODEL, or add spans to the manifest")


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
    check_oracle_args(spec, args)
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
