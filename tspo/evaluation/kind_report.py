"""Per-question-kind accuracy and evidence coverage of an evaluation (synthetic question world).

``tspo eval --per-sample`` / ``evaluate_samples(..., per_sample=True)`` keeps every (sample,
method) outcome with its picks; samples rendered by ``tspo synth`` carry their question kind
(``extra["qa_kind"]``) and coverage rule (``extra["coverage"]``, ``extra["evidence_groups_s"]``).
This module joins the two: for each kind and method, the oracle's accuracy and the share of
selections that show what the question needs (the coverage rule itself, guesses excluded).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tspo.rewards.simulated import covers_groups


def kind_table(result: dict[str, Any], samples: Sequence[Any]) -> dict[str, dict[str, dict[str, float]]]:
    """``{kind: {method: {"accuracy", "coverage", "n"}}}`` (plus kind ``"all"``) from a per-sample result.

    ``result["samples"]``: outcomes with ``sample_id``, ``method``, ``correct``, ``timestamps_s``.
    Samples without ``extra["qa_kind"]`` count as kind ``"other"``; coverage is None for samples
    without a coverage rule. Failed oracle calls (``correct`` None) are left out.
    """

    if "samples" not in result:
        raise ValueError("kind_table needs per-sample outcomes: evaluate with per_sample=True (tspo eval --per-sample)")
    by_id = {s.id: s for s in samples}
    rows: dict[tuple[str, str], list[tuple[float, float | None]]] = {}
    for o in result["samples"]:
        if o["correct"] is None:
            continue
        s = by_id.get(o["sample_id"])
        if s is None:
            raise ValueError(f"outcome for sample {o['sample_id']!r} is not among the given samples")
        kind = s.extra.get("qa_kind", "other")
        rule = s.extra.get("coverage")
        cov = None if rule is None else float(covers_groups(np.asarray(o["timestamps_s"]),
                                                            s.extra.get("evidence_groups_s"), rule, s.id))
        for k in (kind, "all"):
            rows.setdefault((k, o["method"]), []).append((float(o["correct"]), cov))
    table: dict[str, dict[str, dict[str, float]]] = {}
    for (kind, method), vals in sorted(rows.items()):
        acc = np.array([v[0] for v in vals])
        covs = [v[1] for v in vals if v[1] is not None]
        table.setdefault(kind, {})[method] = {"accuracy": float(acc.mean()),
                                              "coverage": float(np.mean(covs)) if covs else None, "n": len(vals)}
    return table


def format_kind_table(table: dict[str, dict[str, dict[str, float]]], methods: Sequence[str] | None = None) -> str:
    """A markdown table: one row per kind, ``accuracy / coverage`` per method."""
    methods = list(methods or next(iter(table.values())).keys())
    kinds = [k for k in table if k != "all"] + (["all"] if "all" in table else [])
    lines = ["| kind | n | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
    for kind in kinds:
        cells = []
        for m in methods:
            v = table[kind].get(m)
            cells.append("-" if v is None else f"{v['accuracy']:.2f} / "
                         + ("-" if v["coverage"] is None else f"{v['coverage']:.2f}"))
        n = max(v["n"] for v in table[kind].values())
        lines.append(f"| {kind} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cluster_bootstrap(values: Any, clusters: Sequence[Any], num: int = 2000, seed: int = 0,
                      level: float = 0.95) -> tuple[float, float]:
    """A ``level`` percentile bootstrap interval of the mean of ``values`` float[n] resampling whole
    ``clusters`` (one label per value, e.g. the target clip a needle was built from), so needles that
    share a target clip count as one draw. Deterministic per ``seed``."""
    vals = np.asarray(values, dtype=np.float64).reshape(-1)
    if vals.size == 0 or vals.size != len(clusters):
        raise ValueError(f"values [n] and clusters [n] must be non-empty and agree, got {vals.size} and {len(clusters)}")
    _, owner = np.unique(np.asarray([str(c) for c in clusters]), return_inverse=True)
    sums, counts = np.bincount(owner, weights=vals), np.bincount(owner).astype(np.float64)   # [C]
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(len(sums), np.full(len(sums), 1.0 / len(sums)), size=num)       # [B, C] cluster counts
    means = (draws @ sums) / (draws @ counts)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)
