"""How far apart two consecutive frames' features must be to cut a shot: the ``shot`` rule's cut distance.

The ``shot`` rule (``clip+shot``, ``tspo+shot``; :func:`tspo.agents.rules.select_nms` with
:func:`~tspo.agents.rules.shot_ids`) cuts the candidate sequence where the cosine distance of two
consecutive candidates' features exceeds a threshold, and stops each pick's suppression window at its
shot's cuts. This
benchmark sweeps the threshold on the goal protocol's world (``bench_filter_goal``'s, tspo-synth
features, 1 fps) and reports, per distance:

- **boundary recall**: the share of the evidence events' boundaries (their first and last second,
  where the synthesizer changes the background) that get a cut;
- **cuts inside**: cuts strictly inside an evidence event, per event (an event cut in two can take two
  picks);
- evidence coverage of ``clip+shot`` (radius on: every question suppresses) on the kinds that need one
  pick per key event, count and order, on the **training** needles — the default is chosen there — and
  on both held-out sets, with n and 95 % intervals over target clips.

No agent is trained: CLIP similarity scores every frame, so the sweep measures the cut rule alone.

    OMP_NUM_THREADS=1 python -m benchmarks.bench_shots --out runs/qgoal [--record shot_cut_distance]
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

DISTANCES = (0.03, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.3)
KINDS = ("count", "order")   # one pick in each key event (coverage rule "all")


def boundary_stats(times: np.ndarray, shots: np.ndarray, spans: Sequence[Sequence[float]]) -> tuple[int, int, int, int]:
    """Cuts at and inside evidence events: times float[T] (seconds, ascending), shots int[T] (shot ids),
    spans [[start_s, end_s], ...] (the events) -> (boundaries, boundaries cut, events, cuts inside events).

    A boundary is cut when the first candidate at or after it starts a new shot; a start at 0 s or an end
    after the last candidate is no boundary. Inside: cuts before candidates strictly inside the event."""
    times, shots = np.asarray(times, dtype=np.float64), np.asarray(shots)
    cut = np.concatenate([[False], shots[1:] != shots[:-1]])
    bounds = hit = events = inside = 0
    for start, end in spans:
        idx = np.flatnonzero((times >= start) & (times < end))
        if idx.size == 0:
            continue
        events += 1
        inside += int(cut[idx[1:]].sum())
        for edge in (idx[0], idx[-1] + 1):
            if 0 < edge < len(times):
                bounds += 1
                hit += int(cut[edge])
    return bounds, hit, events, inside


def sweep(dataset: Any, distances: Sequence[float], k: int) -> dict[str, Any]:
    """Per needle of ``dataset`` (a FeatureDataset) with a coverage rule of a :data:`KINDS` kind: kinds,
    clusters, and per distance the ``clip+shot`` coverage (0/1) and the boundary counts."""
    import torch

    from tspo.agents import get_method
    from tspo.agents.rules import DEFAULT_NMS_RADIUS, select_nms, shot_ids
    from tspo.rewards.simulated import covers_groups

    clip = get_method("clip")
    out: dict[str, Any] = {"kinds": [], "clusters": [], **{d: {"cover": [], "stats": np.zeros(4, np.int64)}
                                                              for d in distances}}
    with torch.no_grad():
        for i in range(len(dataset)):   # one needle at a time: lengths differ
            it = dataset[i]
            s = it["sample"]
            if s.extra.get("qa_kind") not in KINDS or s.extra.get("coverage") is None:
                continue
            out["kinds"].append(s.extra["qa_kind"])
            out["clusters"].append(s.extra.get("target_id", s.id))
            times, feats = it["timestamps"].numpy(), it["features"]
            scores = clip.score(None, feats[None], it["text"][None])[0]
            spans = [span for group in s.extra["evidence_groups_s"] for span in group]
            for d in distances:
                shots = shot_ids(feats, d)
                picks = select_nms(scores, min(k, len(times)), DEFAULT_NMS_RADIUS, shots).numpy()   # clip+shot
                out[d]["cover"].append(float(covers_groups(times[picks], s.extra["evidence_groups_s"],
                                                           s.extra["coverage"], s.id)))
                out[d]["stats"] += boundary_stats(times, shots.numpy(), spans)
    return out


def best_distance(result: dict[str, Any], distances: Sequence[float]) -> float:
    """The distance with the best mean of clip+shot's count and order coverage (ties: the smaller)."""
    kinds = np.asarray(result["kinds"])

    def merit(d: float) -> float:
        cover = np.asarray(result[d]["cover"])
        return float(np.mean([cover[kinds == kind].mean() for kind in KINDS]))

    return max(distances, key=lambda d: (merit(d), -d))


def overlaps(result: dict[str, Any], a: float, b: float) -> bool:
    """Whether distances ``a`` and ``b`` have overlapping 95 % intervals (cluster bootstrap over target clips)
    of clip+shot's coverage on every :data:`KINDS` kind: no kind tells them apart."""
    from tspo.evaluation.kind_report import cluster_bootstrap

    kinds, clusters = np.asarray(result["kinds"]), np.asarray(result["clusters"])
    for kind in KINDS:
        member = kinds == kind
        (lo_a, hi_a), (lo_b, hi_b) = (cluster_bootstrap(np.asarray(result[d]["cover"])[member], clusters[member])
                                      for d in (a, b))
        if hi_a < lo_b or hi_b < lo_a:
            return False
    return True


def rows_of(name: str, result: dict[str, Any], distances: Sequence[float]) -> list[dict[str, Any]]:
    """One row per distance: boundary recall, cuts inside per event, and clip+shot coverage per kind."""
    from tspo.evaluation.kind_report import cluster_bootstrap

    kinds, clusters = np.asarray(result["kinds"]), np.asarray(result["clusters"])
    rows = []
    for d in distances:
        bounds, hit, events, inside = (int(x) for x in result[d]["stats"])
        row: dict[str, Any] = {"needles": name, "cut distance": f"{d:g}",
                               "boundary recall": f"{hit / max(bounds, 1):.3f} (of {bounds})",
                               "cuts inside / event": f"{inside / max(events, 1):.2f}"}
        cover = np.asarray(result[d]["cover"])
        row["n (count / order)"] = " / ".join(str(int((kinds == kind).sum())) for kind in KINDS)
        for kind in KINDS:
            member = kinds == kind
            lo, hi = cluster_bootstrap(cover[member], clusters[member])
            row[f"clip+shot {kind}"] = f"{cover[member].mean():.3f} [{lo:.2f}, {hi:.2f}]"
        rows.append(row)
    return rows


def run(out_dir: str | None = None, distances: Sequence[float] = DISTANCES, progress: bool = False) -> dict[str, Any]:
    """Sweep the cut distance on the goal world's training needles and both held-out sets."""
    from benchmarks.bench_filter_goal import ENCODER, K, _world, mix_world
    from tspo.agents.rules import DEFAULT_NMS_RADIUS
    from tspo.features.cache import FeatureCache
    from tspo.features.dataset import FeatureDataset
    from tspo.features.encoders import shared_encoder
    from tspo.settings import DEFAULT_CUT_DISTANCE

    with tempfile.TemporaryDirectory(prefix="tspo-bench-shots-") as tmp:
        root = Path(out_dir or tmp)
        t0 = time.perf_counter()
        train, val = _world(root, progress)
        train = train + mix_world(root, 0.5, progress)
        encoder = shared_encoder(ENCODER)
        cache = FeatureCache(root / "features")
        sets = {"training": train, **{f"held-out, confuser ratio {r:g}": s for r, s in val.items()}}
        rows, best, kept = [], None, ""
        for name, samples in sets.items():
            ds = FeatureDataset(samples, encoder, max_candidates=None, cache=cache, progress=progress, options=False)
            result = sweep(ds, distances, K)
            rows += rows_of(name, result, distances)
            if name == "training":
                best = best_distance(result, distances)
                if best != DEFAULT_CUT_DISTANCE and DEFAULT_CUT_DISTANCE in distances:
                    kept = (", within the default's intervals on count and order" if overlaps(
                        result, best, DEFAULT_CUT_DISTANCE) else ", above the default beyond their intervals: "
                        "consider changing tspo.settings.DEFAULT_CUT_DISTANCE")
        seconds = time.perf_counter() - t0
    notes = (f"The goal protocol's world (bench_filter_goal: 2,400 training needles at confuser ratio 1.0 plus 1,200 "
             f"at 0.5, held-out sets at 1.0 and 0.5), encoder {ENCODER}, 1 fps candidates, k = {K}. Scores: CLIP "
             f"similarity; rule: every pick suppresses {DEFAULT_NMS_RADIUS} frames either side, never across a cut (no "
             "agent, no set head). Boundary recall: "
             "evidence-event boundaries with a cut; cuts inside: cuts strictly inside an evidence event, per event. "
             "Coverage cells: mean [95 % cluster bootstrap over target clips]. The default cut distance "
             f"(tspo.settings.DEFAULT_CUT_DISTANCE = {DEFAULT_CUT_DISTANCE:g}) was chosen on the training rows only, "
             "as the best mean of clip+shot's count and order coverage there, when the rule's picks suppressed "
             f"their whole shot; with the window stopped at cuts, that best is now {best:g}"
             + (" (the default)" if best == DEFAULT_CUT_DISTANCE else kept) + ". "
             f"{seconds:.0f} s.")
    return {"title": "The shot rule's cut distance: boundary recall, cuts inside events, clip+shot coverage",
            "command": "python -m benchmarks.bench_shots", "rows": rows, "notes": notes}


def main(argv: Sequence[str] | None = None) -> int:
    import argparse
    import sys

    from benchmarks.runner import finish, machine_info

    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_shots", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", metavar="DIR", help="keep (or reuse) the goal world and its features here")
    p.add_argument("--distances", type=float, nargs="+", default=list(DISTANCES),
                   help=f"cut distances to sweep (default {' '.join(map(str, DISTANCES))})")
    p.add_argument("--progress", action="store_true", help="progress bars")
    p.add_argument("--record", metavar="NAME", help="store as benchmarks/results/NAME.json and rewrite RESULTS.md")
    a = p.parse_args(argv)
    machine, start = machine_info(), time.perf_counter()
    result = run(a.out, a.distances, a.progress)
    from benchmarks.runner import markdown_table

    return finish("benchmarks.bench_shots", sys.argv[1:] if argv is None else list(argv), result, a.record, start,
                  machine, printed=lambda r: f"{r['command']}\n\n{markdown_table(r['rows'])}\n\n{r['notes']}")


if __name__ == "__main__":
    raise SystemExit(main())
