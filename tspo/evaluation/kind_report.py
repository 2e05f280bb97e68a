"""Per-question-kind accuracy and evidence coverage of an evaluation (synthetic question world).

"Kind" in this module is always the *question* kind (``extra["qa_kind"]``: colour, text, shape,
motion, after, order, count), not the manifest's sample kind (needle / general, ``Outcome.kind``).

``tspo eval --per-sample`` / ``evaluate_samples(..., per_sample=True)`` keeps every (sample,
method) outcome with its picks; samples rendered by ``tspo synth`` carry their question kind
(``extra["qa_kind"]``) and coverage rule (``extra["coverage"]``, ``extra["evidence_groups_s"]``).
This module joins the two: for each kind and method, the oracle's accuracy and the share of
selections that show what the question needs (the coverage rule itself, guesses excluded), each
with n, the number of target clips and a 95 % bootstrap interval over target clips: needles built
from the same target clip share its events and question, so they are resampled together
(:func:`cluster_bootstrap`). Two methods on the same needles compare by the paired difference
(:func:`paired_bootstrap`, :func:`kind_differences`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tspo.agents.methods import get_method
from tspo.rewards.simulated import covers_groups

BOOTSTRAP_DRAWS = 2000    # resamples of the target clips per interval (the one owner of the default)
BOOTSTRAP_LEVEL = 0.95
BOOTSTRAP_SEED = 0


def cluster_of(sample: Any) -> str:
    """The unit a bootstrap resamples for ``sample``: its target clip (``extra["target_id"]``, set by
    ``tspo synth needle``), else its video file (questions on one video are not independent either),
    else its id (a virtual video without a target clip)."""
    target = sample.extra.get("target_id")
    if target is not None:
        return str(target)
    return sample.video if isinstance(sample.video, str) else str(sample.id)


def _cluster_draws(clusters: Sequence[Any], num: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``owner`` int[n] (each value's cluster index, clusters in sorted order) and ``draws`` float[num, C]:
    how often each of the C clusters is drawn in each resample (C draws with replacement)."""
    if num < 1:
        raise ValueError(f"bootstrap num (resamples) must be >= 1, got {num}")
    _, owner = np.unique(np.asarray([str(c) for c in clusters]), return_inverse=True)
    num_c = int(owner.max()) + 1
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(num_c, np.full(num_c, 1.0 / num_c), size=num).astype(np.float64)   # [B, C]
    return owner, draws


def cluster_bootstrap(values: Any, clusters: Sequence[Any], num: int = BOOTSTRAP_DRAWS, seed: int = BOOTSTRAP_SEED,
                      level: float = BOOTSTRAP_LEVEL) -> tuple[float, float]:
    """A ``level`` percentile bootstrap interval of the mean of ``values`` float[n] resampling whole
    ``clusters`` (one label per value, e.g. the target clip a needle was built from), so needles that
    share a target clip count as one draw. Deterministic per ``seed``: the same clusters and seed give
    the same resamples, so intervals of two methods on the same needles use the same draws."""
    vals = np.asarray(values, dtype=np.float64).reshape(-1)
    if vals.size == 0 or vals.size != len(clusters):
        raise ValueError(f"values [n] and clusters [n] must be non-empty and agree, got {vals.size} and {len(clusters)}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"bootstrap level must be in (0, 1), e.g. 0.95, got {level}")
    owner, draws = _cluster_draws(clusters, num, seed)
    sums, counts = np.bincount(owner, weights=vals), np.bincount(owner).astype(np.float64)   # [C]
    means = (draws @ sums) / (draws @ counts)                                                  # [B]
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def paired_bootstrap(values: Any, baseline: Any, clusters: Sequence[Any], num: int = BOOTSTRAP_DRAWS,
                     seed: int = BOOTSTRAP_SEED, level: float = BOOTSTRAP_LEVEL) -> tuple[float, float, float]:
    """``(mean difference, lo, hi)`` of ``values - baseline`` (float[n] each, the same n needles in the
    same order, e.g. two methods' coverage) with a cluster bootstrap interval of the difference: each
    resample draws target clips and takes both methods on the same needles, so what the needles share
    cancels. Identical inputs give ``(0, 0, 0)``."""
    a, b = (np.asarray(x, dtype=np.float64).reshape(-1) for x in (values, baseline))
    if a.shape != b.shape:
        raise ValueError(f"paired_bootstrap needs values [n] and baseline [n] on the same needles, got {a.size} and "
                         f"{b.size}")
    diff = a - b
    lo, hi = cluster_bootstrap(diff, clusters, num, seed, level)
    return float(diff.mean()), lo, hi


def _coverage(outcome: dict[str, Any], sample: Any) -> float | None:
    rule = sample.extra.get("coverage")
    return None if rule is None else float(covers_groups(np.asarray(outcome["timestamps_s"]),
                                                         sample.extra.get("evidence_groups_s"), rule, sample.id))


def _scored(result: dict[str, Any], samples: Sequence[Any]) -> list[tuple[str, str, Any, float, float | None]]:
    """``(kind, method, sample, correct, coverage)`` per answered outcome (failed oracle calls left out)."""
    if "samples" not in result:
        raise ValueError("kind_table needs per-sample outcomes: evaluate with per_sample=True (tspo eval --per-sample)")
    by_id = {s.id: s for s in samples}
    out = []
    for o in result["samples"]:
        if o["correct"] is None:
            continue
        s = by_id.get(o["sample_id"])
        if s is None:
            raise ValueError(f"outcome for sample {o['sample_id']!r} is not among the given samples")
        out.append((s.extra.get("qa_kind", "other"), o["method"], s, float(o["correct"]), _coverage(o, s)))
    return out


def kind_table(result: dict[str, Any], samples: Sequence[Any], num: int = BOOTSTRAP_DRAWS,
               seed: int = BOOTSTRAP_SEED) -> dict[str, dict[str, dict[str, Any]]]:
    """``{kind: {method: stats}}`` (plus kind ``"all"``) from a per-sample result; ``stats``:
    ``accuracy``, ``coverage`` (means), ``accuracy_ci``, ``coverage_ci`` (``[lo, hi]``, 95 % bootstrap
    over target clips, ``num`` resamples, ``seed``), ``n`` (needles) and ``targets`` (target clips).

    ``result["samples"]``: outcomes with ``sample_id``, ``method``, ``correct``, ``timestamps_s``.
    Samples without ``extra["qa_kind"]`` count as kind ``"other"``; coverage (and its interval) is None
    for samples without a coverage rule. Failed oracle calls (``correct`` None) are left out.
    """
    rows: dict[tuple[str, str], list[tuple[str, float, float | None]]] = {}
    for kind, method, s, correct, cov in _scored(result, samples):
        for k in (kind, "all"):
            rows.setdefault((k, method), []).append((cluster_of(s), correct, cov))
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for (kind, method), vals in sorted(rows.items()):
        clusters = [v[0] for v in vals]
        acc = np.array([v[1] for v in vals])
        with_cov = [(c, v) for c, _, v in vals if v is not None]
        cov = np.array([v for _, v in with_cov])
        table.setdefault(kind, {})[method] = {
            "accuracy": float(acc.mean()), "accuracy_ci": list(cluster_bootstrap(acc, clusters, num, seed)),
            "coverage": float(cov.mean()) if with_cov else None,
            "coverage_ci": list(cluster_bootstrap(cov, [c for c, _ in with_cov], num, seed)) if with_cov else None,
            "n": len(vals), "targets": len(set(clusters))}
    return table


def kind_differences(result: dict[str, Any], samples: Sequence[Any], method: str, baseline: str,
                     metric: str = "coverage", num: int = BOOTSTRAP_DRAWS,
                     seed: int = BOOTSTRAP_SEED) -> dict[str, dict[str, Any]]:
    """``{kind: {"diff", "ci", "n", "targets"}}`` (plus ``"all"``): ``method`` minus ``baseline`` in
    ``metric`` (``"coverage"`` or ``"accuracy"``) on the needles both have, with the paired bootstrap
    interval over target clips (:func:`paired_bootstrap`). Kinds where the two share no needle are left out."""
    if metric not in ("coverage", "accuracy"):
        raise ValueError(f"metric must be 'coverage' or 'accuracy', got {metric!r}")
    per: dict[tuple[str, str], dict[str, float]] = {}       # (method, sample id) -> value
    kinds: dict[str, tuple[str, str]] = {}                  # sample id -> (kind, cluster)
    for kind, m, s, correct, cov in _scored(result, samples):
        if m in (method, baseline):
            value = cov if metric == "coverage" else correct
            if value is not None:
                per.setdefault((m, s.id), {})["v"] = value
                kinds[s.id] = (kind, cluster_of(s))
    both = [sid for sid in kinds if (method, sid) in per and (baseline, sid) in per]
    if not both:
        names = sorted({m for _, m, *_ in _scored(result, samples)})
        raise ValueError(f"kind_differences: no needle has a {metric} for both {method!r} and {baseline!r} "
                         f"(methods in the result: {names})")
    out: dict[str, dict[str, Any]] = {}
    for kind in sorted({kinds[sid][0] for sid in both}) + ["all"]:
        ids = [sid for sid in both if kind == "all" or kinds[sid][0] == kind]
        clusters = [kinds[sid][1] for sid in ids]
        diff, lo, hi = paired_bootstrap([per[(method, sid)]["v"] for sid in ids],
                                        [per[(baseline, sid)]["v"] for sid in ids], clusters, num, seed)
        out[kind] = {"diff": diff, "ci": [lo, hi], "n": len(ids), "targets": len(set(clusters))}
    return out


def identical_picks(result: dict[str, Any], method: str, other: str) -> tuple[int, int]:
    """``(same, n)``: on how many of the ``n`` samples both methods answered ``method`` picked exactly the
    frames ``other`` picked (as sets of timestamps)."""
    if "samples" not in result:
        raise ValueError("identical_picks needs per-sample outcomes: evaluate with per_sample=True")
    picks: dict[str, dict[str, tuple[float, ...]]] = {}
    for o in result["samples"]:
        if o["method"] in (method, other):
            picks.setdefault(o["sample_id"], {})[o["method"]] = tuple(sorted(np.round(o["timestamps_s"], 6)))
    pairs = [p for p in picks.values() if len(p) == 2 or method == other]
    return sum(p[method] == p[other] for p in pairs), len(pairs)


def _ci(ci: Sequence[float] | None, signed: bool = False) -> str:
    if ci is None:
        return ""
    f = "{:+.2f}" if signed else "{:.2f}"
    return " [" + f.format(ci[0]) + ", " + f.format(ci[1]) + "]"


def _kinds_in_order(table: dict[str, Any]) -> list[str]:
    return [k for k in table if k != "all"] + (["all"] if "all" in table else [])


def format_kind_table(table: dict[str, dict[str, dict[str, Any]]], methods: Sequence[str] | None = None) -> str:
    """A markdown table: one row per kind with n (needles) and clips (target clips), per method
    ``accuracy / coverage [95 % interval of the coverage]`` (without a coverage rule: ``accuracy
    [its interval] / -``)."""
    methods = list(methods or next(iter(table.values())).keys())
    lines = ["| kind | n | clips | " + " | ".join(methods) + " |", "|---|---|---|" + "---|" * len(methods)]
    for kind in _kinds_in_order(table):
        cells = []
        for m in methods:
            v = table[kind].get(m)
            if v is None:
                cells.append("-")
            elif v["coverage"] is None:
                cells.append(f"{v['accuracy']:.2f}{_ci(v.get('accuracy_ci'))} / -")
            else:
                cells.append(f"{v['accuracy']:.2f} / {v['coverage']:.2f}{_ci(v.get('coverage_ci'))}")
        n = max(v["n"] for v in table[kind].values())
        clips = max(v.get("targets", 0) for v in table[kind].values()) or "-"
        lines.append(f"| {kind} | {n} | {clips} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_difference_table(diffs: dict[str, dict[str, dict[str, Any]]]) -> str:
    """A markdown table of paired differences: ``diffs`` ``{column label: kind_differences(...)}``, one
    row per kind, cells ``+0.05 [-0.02, +0.10]`` (mean difference, 95 % paired interval)."""
    labels = list(diffs)
    kinds = _kinds_in_order({k: None for d in diffs.values() for k in d})
    lines = ["| kind | n | " + " | ".join(labels) + " |", "|---|---|" + "---|" * len(labels)]
    for kind in kinds:
        cells = [f"{d[kind]['diff']:+.2f}{_ci(d[kind]['ci'], signed=True)}" if kind in d else "-"
                 for d in diffs.values()]
        n = max(d[kind]["n"] for d in diffs.values() if kind in d)
        lines.append(f"| {kind} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def baseline_methods(methods: Sequence[str]) -> list[str]:
    """The methods of ``methods`` that are baselines: those that score without the trained agent (a
    TSPO variant such as ``tspo+aks`` is not a baseline)."""
    return [m for m in methods if not get_method(m).needs_agent]


def same_picks_note(result: dict[str, Any], k: int, method: str = "aks", other: str = "clip") -> str:
    """One measured sentence on how often ``method`` (AKS) picked exactly ``other``'s (CLIP top-k's)
    frames in a per-sample ``result``; "" when either method is missing."""
    names = {"aks": "AKS", "clip": "CLIP top-k"}
    same, n = identical_picks(result, method, other)
    if not n:
        return ""
    a, b = names.get(method, method), names.get(other, other)
    if same == n:
        return f"{a} picks equal {b} on all {n} held-out needles at k = {k} (identical frames): its row repeats {b}'s."
    return f"{a} picks equal {b} on {same} of {n} held-out needles at k = {k} (identical frames)."
