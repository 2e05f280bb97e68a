"""The goal protocol for the filter agent trained *supervised* on the synthesizer's spans.

The world of ``python -m benchmarks.bench_question --protocol goal``: 2,400 training needles from
1,200 target clips (confuser ratio 1.0), held-out sets of 300 needles at confuser ratio 1.0 and 0.5
on target and confuser clips never seen in training. The filter agent
(:class:`tspo.agents.FilterAgent`) is fitted by :func:`tspo.training.span_fit.span_fit` (evidence
group loss + the set head's loss) once per training seed, then evaluated per question kind in
evidence coverage at k = 8 (the kind's rule, as the SimulatedOracle applies it), with n and 95 %
cluster-bootstrap intervals over held-out target clips, against CLIP top-k, CLIP + fixed-radius
temporal NMS and CLIP + shot suppression (``clip+shot``); ``filter`` = its top-k, ``tspo+nms`` = NMS with
the radius its set head chooses per question, ``tspo+shot`` = the same window stopping at the pick's
shot cuts. ``Δ`` columns: the paired difference with CLIP top-k on the same needles.

Run (resumable: the worlds, features and fitted agents stay in DIR):

    OMP_NUM_THREADS=1 python -m benchmarks.bench_filter_goal --out runs/filter-goal --seeds 0 1 \\
        --steps 1500 --batch-size 32 --lr 1e-3 --spread 1.0 [--base false] [--record filter_goal]
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.bench_question import (  # the goals' and the worlds' one owner
    GOAL_ALL,
    GOAL_COVERAGE,
    GOAL_SLACK,
    MIX_SEED,  # the mixed-ratio training world's seed: its clips differ from the held-out sets' (seed 0)
    PROTOCOLS,
    best_baseline,
    kind_goal_met,
)

ENCODER = "tspo-synth"
K = 8
BASELINES = ("clip", "clip+nms", "clip+shot")
AGENT_METHODS = {"filter": "tspo", "tspo+nms": "tspo+nms", "tspo+shot": "tspo+shot"}


def _world(root: Path, progress: bool, heldout_seeds: Sequence[int] = ()) -> tuple[Any, dict[float, Any]]:
    """The goal protocol's training manifest and held-out samples per confuser ratio (bench_question's worlds;
    ``heldout_seeds``: more held-out needles from worlds of these seeds, ``bench_question.heldout_sets``)."""
    from dataclasses import replace

    from benchmarks.bench_question import heldout_sets, worlds
    from tspo.data_synth import load_manifest
    from tspo.training.synth import ensure_synthetic

    protocol = replace(PROTOCOLS["goal"], heldout_seeds=tuple(heldout_seeds)).check()
    train_cfg, held = worlds(root, protocol)
    train_manifest = ensure_synthetic(train_cfg, progress=progress)[0]
    return load_manifest(train_manifest), heldout_sets(root, protocol, held, progress)


MIX_NEEDLES = 1200


def mix_world(root: Path, ratio: float, progress: bool) -> list:
    """``--train-mix R``: 1,200 more training needles (300 target clips) whose haystacks are a share ``R``
    confusers and the rest texture clips, rendered with world seed ``MIX_SEED`` (never the held-out
    sets' clips); -> its training samples."""
    from benchmarks.bench_question import HELDOUT_DISTRACTORS
    from tspo.data_synth import load_manifest
    from tspo.training.synth import ensure_synthetic, question_world

    if not 0.0 < ratio < 1.0:
        raise ValueError(f"--train-mix must be a confuser ratio in (0, 1), e.g. 0.5; got {ratio}")
    cfg = question_world(str(root / f"train-mix-r{ratio:g}"), num_train=MIX_NEEDLES, num_val=1, confuser_ratio=ratio,
                         distractors=HELDOUT_DISTRACTORS, seed=MIX_SEED)
    return load_manifest(ensure_synthetic(cfg, progress=progress)[0])


def _fit_key(fit: Any, num_train: int) -> str:
    from dataclasses import asdict

    spec = {**{k: v for k, v in asdict(fit).items() if k not in ("progress", "head_steps") and (k not in ("learn_scale", "multi_pick_frames", "worst_group") or v)}, "num_train": num_train, "encoder": ENCODER}
    return hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:10]


def fitted_agent(root: Path, train: Any, fit: Any, seed: int, dim: int, tag: str = "") -> tuple[Any, float]:
    """A FilterAgent fitted on ``train`` (a FeatureDataset) with seed ``seed``, loaded from ``root/agents``
    when this span fit was made before; the set-head fit (``fit.head_steps``, deterministic and cheap)
    runs after loading, so it does not key the cache. -> (agent in eval mode, the span fit's training seconds)."""
    from dataclasses import replace

    import torch

    from tspo.agents import FilterAgent
    from tspo.training.span_fit import fit_set_head, span_fit

    span = replace(fit, head_steps=0)
    path = root / "agents" / f"{_fit_key(span, len(train))}{tag}-s{seed}.pt"   # tag: what else made the training set
    torch.manual_seed(seed)
    agent = FilterAgent(dim=dim)
    timing = path.with_suffix(".json")   # the fit's training seconds, so a reused fit still reports them
    if path.is_file():
        agent.load_state_dict(torch.load(path, weights_only=True))
        seconds = float(json.loads(timing.read_text())["train_s"]) if timing.is_file() else float("nan")
    else:
        t0 = time.perf_counter()
        span_fit(agent, train, span, torch.Generator().manual_seed(seed))
        seconds = time.perf_counter() - t0
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(agent.state_dict(), path)
        timing.write_text(json.dumps({"train_s": round(seconds, 1)}))
    if fit.head_steps:
        fit_set_head(agent, train.text, train.samples, fit.head_steps)
    return agent.eval(), seconds


def coverage(agent: Any, dataset: Any, methods: dict[str, str], nms_radius: int | None = None) -> dict[str, Any]:
    """Evidence coverage (0/1) of each method's k picks on every held-out needle with a coverage rule:
    -> {"kinds": [n], "clusters": [n] (target clip), name: float[n] per method}."""
    import numpy as np
    import torch

    from tspo.agents import get_method
    from tspo.rewards.simulated import covers_groups

    if nms_radius is not None and agent is not None:
        agent.nms_radius = nms_radius
    out: dict[str, Any] = {"kinds": [], "clusters": [], **{m: [] for m in methods}}
    with torch.no_grad():
        for i in range(len(dataset)):   # one forward per needle (lengths differ)
            it = dataset[i]
            s = it["sample"]
            rule = s.extra.get("coverage")
            if rule is None:
                continue
            out["kinds"].append(s.extra.get("qa_kind", "other"))
            out["clusters"].append(s.extra.get("target_id", s.id))
            times = it["timestamps"].numpy()
            options = it["options"][None] if it["options"].shape[0] else None
            for name, method in methods.items():
                m = get_method(method)
                scores = m.score(agent, it["features"][None], it["text"][None], options)
                radius = m.set_radius(agent, it["text"][None])
                picks = m.pick(scores, scores.shape[-1], min(K, scores.shape[-1]), radius,
                           features=it["features"][None])[0]
                out[name].append(float(covers_groups(times[picks.numpy()], s.extra.get("evidence_groups_s"),
                                                     rule, s.id)))
    return {k: np.asarray(v) for k, v in out.items()}


def _cell(vals, clusters) -> str:
    from tspo.evaluation.kind_report import cluster_bootstrap

    lo, hi = cluster_bootstrap(vals, clusters)
    return f"{vals.mean():.2f} [{lo:.2f}, {hi:.2f}]"


def _diff(vals, base, clusters) -> str:
    from tspo.evaluation.kind_report import paired_bootstrap

    mean, lo, hi = paired_bootstrap(vals, base, clusters)
    return f"{mean:+.2f} [{lo:+.2f}, {hi:+.2f}]"


def table(ratio: float, cover: dict[str, Any], seeds: Sequence[int]) -> list[dict[str, Any]]:
    """Rows (one per kind, then ``all``) of one held-out set: n, clips, every method's coverage with its
    interval, and the paired difference of each trained column with CLIP top-k."""
    import numpy as np

    kinds, clusters = cover["kinds"], cover["clusters"]
    rows = []
    for kind in [*sorted(set(kinds.tolist())), "all"]:
        member = np.ones(len(kinds), bool) if kind == "all" else kinds == kind
        row: dict[str, Any] = {"confuser ratio": f"{ratio:g}", "kind": kind, "n": int(member.sum()),
                               "clips": int(len(set(clusters[member].tolist())))}
        for b in BASELINES:
            row[b] = _cell(cover[b][member], clusters[member])
        for seed in seeds:
            for name in AGENT_METHODS:
                row[f"{name} s{seed}"] = _cell(cover[f"{name} s{seed}"][member], clusters[member])
        for seed in seeds:
            for name in AGENT_METHODS:
                row[f"Δ {name} s{seed}"] = _diff(cover[f"{name} s{seed}"][member], cover["clip"][member],
                                                 clusters[member])
        rows.append(row)
    return rows


def goals(ratio: float, cover: dict[str, Any], column: str) -> dict[str, str]:
    """The goals for one trained column on one held-out set, per kind (``bench_question.kind_goal_met``):
    ``yes`` / ``no (value vs need)``; for after / count / order where the best baseline is below the goal,
    the paired interval against it follows."""
    import numpy as np

    from tspo.evaluation.kind_report import paired_bootstrap

    kinds, clusters = cover["kinds"], cover["clusters"]
    verdict: dict[str, str] = {"confuser ratio": f"{ratio:g}", "column": column}
    for kind in [*sorted(set(kinds.tolist())), "all"]:
        member = np.ones(len(kinds), bool) if kind == "all" else kinds == kind
        value = float(cover[column][member].mean())
        name = best_baseline({b: float(cover[b][member].mean()) for b in BASELINES})
        best = float(cover[name][member].mean())
        need = GOAL_ALL if kind == "all" else GOAL_COVERAGE.get(kind, best - GOAL_SLACK)
        lo, extra = float("nan"), ""
        if kind in GOAL_COVERAGE and best < GOAL_COVERAGE[kind]:
            diff, lo, hi = paired_bootstrap(cover[column][member], cover[name][member], clusters[member])
            extra = f"; vs {name} {diff:+.2f} [{lo:+.2f}, {hi:+.2f}]"
        met = kind_goal_met(kind, value, best, lo)
        verdict[kind] = ("yes" if met else "no") + f" ({value:.2f} vs {need:.2f}{extra})"
    return verdict


def run(out_dir: str | None = None, seeds: Sequence[int] = (0, 1), fit: Any = None, nms_radius: int | None = None,
        progress: bool = False, train_mix: float | None = None, heldout_seeds: Sequence[int] = ()) -> dict[str, Any]:
    """Build (or reuse) the world and features, fit one agent per seed (or reuse it), evaluate both
    held-out sets (``heldout_seeds``: each joined by as many needles again per seed from a world of that seed,
    ``bench_question.heldout_sets``); -> a runner result (title, command, rows, notes, goals)."""
    from tspo.features.cache import FeatureCache
    from tspo.features.dataset import FeatureDataset
    from tspo.features.encoders import shared_encoder
    from tspo.training.span_fit import SpanFit

    fit = fit or SpanFit(progress=progress)
    with tempfile.TemporaryDirectory(prefix="tspo-bench-filter-goal-") as tmp:
        root = Path(out_dir or tmp)
        t0 = time.perf_counter()
        train_samples, val_samples = _world(root, progress, heldout_seeds)
        protocol_train = len(train_samples)
        if train_mix is not None:
            train_samples = train_samples + mix_world(root, train_mix, progress)
        encoder = shared_encoder(ENCODER)
        cache = FeatureCache(root / "features")
        train = FeatureDataset(train_samples, encoder, max_candidates=None, cache=cache, progress=progress)
        val = {r: FeatureDataset(s, encoder, max_candidates=None, cache=cache, progress=progress)
               for r, s in val_samples.items()}
        data_s = time.perf_counter() - t0
        covers = {r: coverage(None, ds, {b: b for b in BASELINES}) for r, ds in val.items()}
        train_s = {}
        for seed in seeds:
            tag = "" if train_mix is None else f"-mix{train_mix:g}"
            agent, train_s[seed] = fitted_agent(root, train, fit, seed, encoder.dim, tag)
            for r, ds in val.items():
                got = coverage(agent, ds, {f"{n} s{seed}": m for n, m in AGENT_METHODS.items()}, nms_radius)
                covers[r].update({k: v for k, v in got.items() if k not in ("kinds", "clusters")})
        params = sum(p.numel() for p in agent.parameters())
        num_train_clips = len({s.extra.get("target_id", s.id) for s in train_samples})
    rows = [row for r, c in covers.items() for row in table(r, c, seeds)]
    goal_rows = [goals(r, c, f"{name} s{seed}") for r, c in covers.items() for seed in seeds for name in AGENT_METHODS]
    from benchmarks.runner import markdown_table

    mix = ("" if train_mix is None else f" plus {len(train_samples) - protocol_train} needles at confuser ratio "
           f"{train_mix:g} with texture filler (world seed {MIX_SEED}, clips disjoint from the held-out sets'; not "
           "the goal protocol, which trains at 1.0 only)")
    notes = (f"{protocol_train} training needles at confuser ratio 1.0{mix}, {num_train_clips} target clips in all; held-out "
             f"sets of {', '.join(str(len(v)) for v in val_samples.values())} needles at confuser ratio "
             f"{' and '.join(f'{r:g}' for r in val_samples)} on unseen target and confuser clips"
             + (f" ({PROTOCOLS['goal'].num_val} each from the training world's held-out split, as many more from "
                f"each held-out world of seeds {', '.join(map(str, heldout_seeds))}: new clips, ids and target clips prefixed sSEED-)"
                if heldout_seeds else "")
             + f"; encoder {ENCODER}; "
             f"k = {K}. FilterAgent ({params:,} parameters) fitted by span_fit: {fit.steps} Adam steps of "
             f"{fit.batch_size} needles, lr {fit.lr}, {fit.loss} evidence loss at tau {fit.tau}, set-head weight "
             f"{fit.spread}, paper part {'trained' if fit.base else 'frozen'}"
             + (", a learned score scale in the evidence loss" if fit.learn_scale else "")
             + (", one evidence group per frame for questions needing several picks" if fit.multi_pick_frames else "")
             + (", each needle's loss its worst group's" if fit.worst_group else "")
             + (f", then the set head fitted full batch ({fit.head_steps} L-BFGS iterations)" if fit.head_steps else "")
             + (f", tspo+nms radius {nms_radius} frames" if nms_radius is not None else "")
             + f"; seeds {', '.join(map(str, seeds))}. Data {data_s:.0f} s, training "
             + ", ".join(f"s{s} {t:.0f} s" for s, t in train_s.items()) + " (a fit made by an earlier run with "
               "the same options is reused from --out; nan: its time was not kept)"
             + " on a shared CPU. Cells: coverage [95 % cluster bootstrap over held-out target clips]; Δ: paired "
               "difference with CLIP top-k on the same needles. Supervised on spans, no GRPO.\n\n"
               f"The goals (after >= {GOAL_COVERAGE['after']}, count >= {GOAL_COVERAGE['count']}, order >= "
               f"{GOAL_COVERAGE['order']} and, where the best baseline is below that, above it with the paired "
               f"interval above 0; other kinds >= best baseline - {GOAL_SLACK}, all >= {GOAL_ALL}):\n\n"
             + markdown_table(goal_rows))
    return {"title": "Filter agent, supervised on spans, the goal protocol: evidence coverage per kind (k = 8)",
            "command": "python -m benchmarks.bench_filter_goal", "rows": rows, "notes": notes, "goals": goal_rows}


def _bool(text: str) -> bool:
    import argparse

    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def main(argv: Sequence[str] | None = None) -> int:
    import argparse
    import sys

    from benchmarks.runner import finish, machine_info, markdown_table
    from tspo.training.span_fit import SpanFit, SpanFitError

    d = SpanFit()
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_filter_goal", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", metavar="DIR", help="keep the worlds, features and fitted agents here (resume)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="training seeds (default 0 1)")
    p.add_argument("--steps", type=int, default=d.steps, help=f"Adam steps per seed (default {d.steps})")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"needles per step (default {d.batch_size})")
    p.add_argument("--lr", type=float, default=d.lr, help=f"learning rate (default {d.lr})")
    p.add_argument("--tau", type=float, default=d.tau, help=f"evidence loss temperature (default {d.tau})")
    p.add_argument("--spread", type=float, default=d.spread, help=f"set-head loss weight (default {d.spread})")
    p.add_argument("--base", type=_bool, default=d.base, help=f"train the paper part too (default {str(d.base).lower()})")
    p.add_argument("--loss", choices=("group", "uniform"), default=d.loss, help=f"evidence loss (default {d.loss})")
    p.add_argument("--learn-scale", type=_bool, default=d.learn_scale, help="the evidence loss reads a learned "
                   f"global scale of the scores (default {str(d.learn_scale).lower()})")
    p.add_argument("--multi-pick-frames", type=_bool, default=d.multi_pick_frames, help="questions needing several "
                   "picks in one event (motion) get one evidence group per frame (default "
                   f"{str(d.multi_pick_frames).lower()})")
    p.add_argument("--worst-group", type=_bool, default=d.worst_group, help="a needle's evidence loss is its worst "
                   "group's, not the mean over groups (default "
                   f"{str(d.worst_group).lower()})")
    p.add_argument("--head-steps", type=int, default=d.head_steps, help="L-BFGS iterations of a full-batch set-head "
                   f"fit after the span fit (default {d.head_steps}; 0 = off)")
    p.add_argument("--nms-radius", type=int, help="tspo+nms suppression radius in frames (default: the agent's)")
    p.add_argument("--train-mix", type=float, metavar="R", help="also train on 1,200 needles at confuser ratio R with "
                   "texture filler (clips disjoint from the held-out sets'; not the goal protocol)")
    p.add_argument("--heldout-seeds", type=int, nargs="+", default=[], metavar="S", help="also evaluate on "
                   f"{PROTOCOLS['goal'].num_val} more "
                   "held-out needles per ratio from a world rendered with each of these seeds (new clips; not 0 or 5, "
                   "the training worlds'): narrower intervals near the ceiling")
    p.add_argument("--progress", action="store_true", help="progress bars")
    p.add_argument("--record", metavar="NAME", help="store as benchmarks/results/NAME.json and rewrite RESULTS.md")
    a = p.parse_args(argv)
    machine = machine_info()
    start = time.perf_counter()
    try:
        fit = SpanFit(steps=a.steps, batch_size=a.batch_size, lr=a.lr, tau=a.tau, spread=a.spread, base=a.base,
                      loss=a.loss, head_steps=a.head_steps, learn_scale=a.learn_scale,
                      multi_pick_frames=a.multi_pick_frames, worst_group=a.worst_group,
                      progress=a.progress)
        result = run(a.out, tuple(a.seeds), fit, a.nms_radius, a.progress, a.train_mix, tuple(a.heldout_seeds))
    except (SpanFitError, ValueError) as exc:
        print(f"bench_filter_goal: error: {exc}", file=sys.stderr)
        return 2
    return finish("benchmarks.bench_filter_goal", sys.argv[1:] if argv is None else list(argv), result, a.record,
                  start, machine, lambda r: r["command"] + "\n\n" + markdown_table(r["rows"]) + "\n\n" + r["notes"])


if __name__ == "__main__":
    raise SystemExit(main())
