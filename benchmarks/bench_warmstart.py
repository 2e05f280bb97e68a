"""What RL adds where spans are missing: warm start on some kinds' spans, then GRPO on all kinds.

Question world (``tspo.training.synth.question_world``), ``tspo-synth`` encoder, SimulatedOracle. One
training run per (recipe, seed): ``model.warmstart_steps`` supervised steps on the evidence spans of
colour / text / shape needles only (``model.warmstart_kinds``; ``--span-kinds`` names others, all seven
measure the recommended recipe), then GRPO on every kind from the oracle alone. The held-out needles are evaluated at the end of the warm start ("before RL") and at
the end ("after RL"): per-kind evidence coverage with 95 % bootstrap intervals over target clips, and
CLIP top-k on the same needles.

Recipes: ``paper`` (GRPO as the paper: 0/1 answer reward, tau 0.025 -> 0.01 on raw scores, no KL) and
``adds`` (``answer_reward: soft``, ``tau_relative: true`` with tau 0.3 -> 0.1, ``kl_beta`` to the
warm-started agent) and ``oracle`` (the answer alone: soft reward, ``w_temporal: 0`` so no R_T, exact
Plackett-Luce log-probabilities, relative tau, no KL; with ``--accumulate 4``). ``--agent-options '{"agent_family": ...}'`` passes more TSPOModule options
(e.g. another agent family) to every run.

Run: python -m benchmarks.bench_warmstart [--num-train N --num-val N --warm W --grpo G --seeds 0 1 --accumulate Q
     --span-kinds KIND ... --record NAME]
     (``python -m benchmarks warmstart`` runs the defaults and writes RESULTS.md)
"""

from __future__ import annotations

import copy
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from tspo.settings import ORACLE_GRPO_RECIPE, PAPER_GRPO_RECIPE

COMMAND = "python -m benchmarks warmstart"
ENCODER = "tspo-synth"
K = 8
WARM_STEPS, GRPO_STEPS = 500, 1500
NUM_TRAIN, NUM_VAL = 384, 210
SPAN_KINDS = ("colour", "text", "shape")
RECIPES: dict[str, dict] = {
    "paper": {"tau_start": 0.025, "tau_end": 0.01, **PAPER_GRPO_RECIPE},
    "adds": {"answer_reward": "soft", "tau_relative": True, "tau_start": 0.3, "tau_end": 0.1, "kl_beta": 0.05,
             "oracle_args": {"confidence": 1.0}},
    # from the answer alone: no R_T (it counts picks in the annotated target clip: a label, and noise to
    # the kinds whose evidence is not what matches the question), exact Plackett-Luce log-probabilities,
    # no KL; with --accumulate 4 (several questions per update) and the filter family
    "oracle": ORACLE_GRPO_RECIPE,
}
REPORT_KINDS = ("after", "order", "count", "motion", "colour", "text", "shape", "all")


def coverage_rows(selector, samples, methods) -> dict[str, dict[str, list[float]]]:
    """{method: {kind: [coverage of each held-out needle]}} (kind "all" too), from the evaluation loop."""
    from tspo.evaluation.evaluate import evaluate_samples
    from tspo.rewards import SimulatedOracle
    from tspo.rewards.simulated import covers_groups

    result = evaluate_samples(samples, methods, SimulatedOracle(), K, selector, progress=False, per_sample=True)
    by_id = {s.id: s for s in samples}
    out: dict[str, dict[str, list[tuple[float, str]]]] = {}
    for o in result["samples"]:
        s = by_id[o["sample_id"]]
        cov = float(covers_groups(np.asarray(o["timestamps_s"]), s.extra["evidence_groups_s"], s.extra["coverage"], s.id))
        for kind in (s.extra["qa_kind"], "all"):
            out.setdefault(o["method"], {}).setdefault(kind, []).append((cov, s.extra["target_id"]))
    return out


def summary(rows: list[tuple[float, str]]) -> dict:
    """Mean coverage, its 95 % bootstrap interval over target clips, and n."""
    from tspo.evaluation.kind_report import cluster_bootstrap

    vals, clips = [v for v, _ in rows], [c for _, c in rows]
    lo, hi = cluster_bootstrap(vals, clips)
    return {"mean": float(np.mean(vals)), "lo": lo, "hi": hi, "n": len(vals)}


def train_and_measure(recipe: str, seed: int, train_manifest: str, val, root: Path, warm: int, grpo: int,
                      extra: dict, accumulate: int = 1, span_kinds: tuple[str, ...] = SPAN_KINDS) -> dict:
    import lightning as L

    from tspo.features.cache import FeatureCache
    from tspo.selection.selector import TSPOSelector
    from tspo.settings import SelectionSettings
    from tspo.training import TSPODataModule, TSPOModule

    cache = FeatureCache(root / "features")
    dm = TSPODataModule(train_manifest=train_manifest, val_manifest=None, encoder=ENCODER, max_candidates=None,
                        feature_cache=str(root / "features"), progress=False, seed=seed)
    L.seed_everything(seed, verbose=False)
    model = TSPOModule(encoder=ENCODER, num_frames=K, group_size=8, seed=seed, warmstart_steps=warm,
                       warmstart_kinds=list(span_kinds), **{"lr": 5e-4, **RECIPES[recipe], **extra})
    stages: dict[str, dict] = {}
    seconds = {"warm": 0.0, "grpo": 0.0}

    def measure(agent, methods) -> dict:
        selector = TSPOSelector(encoder=model.encoder, agent=copy.deepcopy(agent), cache=cache,
                                settings=SelectionSettings(num_frames=K, max_candidates=None))
        return coverage_rows(selector, val, methods)

    class Stages(L.Callback):
        def on_train_batch_start(self, trainer, *a):
            self.t0 = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, *a):
            seconds["warm" if trainer.global_step <= warm else "grpo"] += time.perf_counter() - self.t0
            if trainer.global_step == warm and "before RL" not in stages:   # once (micro-batches share a step)
                stages["before RL"] = measure(pl_module.agent, ("tspo", "clip"))

    L.Trainer(max_steps=warm + grpo, accumulate_grad_batches=accumulate, accelerator="cpu", logger=False, enable_checkpointing=False,
              enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
              callbacks=[Stages()]).fit(model, dm)
    # the selector's own method too (the filter family's is tspo+shot), as a user of the trained selector gets it
    own = model.agent.default_method
    stages["after RL"] = measure(model.agent, tuple(dict.fromkeys(("tspo", own))))
    return {"stages": stages, "seconds": seconds}


def run(num_train: int = NUM_TRAIN, num_val: int = NUM_VAL, warm: int = WARM_STEPS, grpo: int = GRPO_STEPS,
        seeds: tuple[int, ...] = (0, 1), recipes: tuple[str, ...] = ("paper", "adds"), extra: dict | None = None,
        out_dir: str | None = None, accumulate: int = 1, span_kinds: tuple[str, ...] = SPAN_KINDS) -> dict:
    from tspo.data_synth import load_manifest
    from tspo.training.synth import ensure_synthetic, question_world

    extra = extra or {}
    runs: dict[tuple[str, int], dict] = {}
    with tempfile.TemporaryDirectory(prefix="tspo-bench-warmstart-") as tmp:
        root = Path(out_dir or tmp)
        t0 = time.perf_counter()
        train_manifest, val_manifest = ensure_synthetic(
            question_world(str(root / "synth"), num_train=num_train, num_val=num_val), progress=False)
        data_s = time.perf_counter() - t0
        val = load_manifest(val_manifest)
        for recipe in recipes:
            for seed in seeds:
                runs[(recipe, seed)] = train_and_measure(recipe, seed, str(train_manifest), val, root, warm, grpo, extra,
                                                         accumulate, span_kinds)
                print(f"{recipe} seed {seed}: done", flush=True)
    rows = []
    clip = runs[(recipes[0], seeds[0])]["stages"]["before RL"]["clip"]
    fmt = lambda s: f"{s['mean']:.2f} [{s['lo']:.2f}, {s['hi']:.2f}]"   # noqa: E731
    for kind in REPORT_KINDS:
        if kind not in clip:
            continue
        row = {"kind": kind, "n": len(clip[kind]), "clip": fmt(summary(clip[kind]))}
        for (recipe, seed), got in runs.items():
            for stage in ("before RL", "after RL"):
                for method, cells in got["stages"][stage].items():
                    if method != "clip":
                        label = "" if method == "tspo" else f" {method}"
                        row[f"{recipe} s{seed} {stage}{label}"] = fmt(summary(cells[kind]))
        rows.append(row)
    header = list(rows[0])
    table = "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                      + ["| " + " | ".join(str(r[h]) for h in header) + " |" for r in rows])
    secs = "; ".join(f"{r} s{s}: warm {g['seconds']['warm']:.0f} s, GRPO {g['seconds']['grpo']:.0f} s"
                     for (r, s), g in runs.items())
    return {
        "title": f"Warm start on {'/'.join(span_kinds)} spans, then GRPO on all kinds (held-out evidence coverage)",
        "command": COMMAND,
        "rows": rows,
        "table_markdown": table,
        "notes": (f"Question world: {num_train} training / {num_val} held-out needles, k = {K}, `{ENCODER}` encoder, "
                  f"SimulatedOracle. {warm} warm-start steps (listwise loss on evidence membership, spans of "
                  f"{'/'.join(span_kinds)} needles only; the other kinds skipped) then {grpo} GRPO steps on every kind "
                  f"from the oracle alone (G = 8, lr 5e-4"
                  + (f", {accumulate} questions per optimizer step (trainer.accumulate_grad_batches), warm start "
                     f"included" if accumulate > 1 else "") + "). Recipes: " + "; ".join(f"{r}: {json.dumps(RECIPES[r])}"
                                                                                   for r in recipes)
                  + (f"; every run also {json.dumps(extra)}" if extra else "")
                  + f". Cells: coverage [95 % bootstrap over target clips]. Data {data_s:.0f} s; {secs}."),
    }


# GRPO with every GRPO option beyond the paper on (soft answer reward, tau relative to the score spread, KL to the
# warm-started agent) vs today's default, both on the demo config (tiny-random encoder, SimulatedOracle)
ADDS_FLAGS = ("--model.answer_reward", "soft", "--model.tau_relative", "true", "--model.tau_start", "0.3",
              "--model.tau_end", "0.1", "--model.kl_beta", "0.05")


def step_time_ratio(steps: int = 150, repeats: int = 2) -> dict:
    """Steps/s of the demo config's GRPO loop with ``ADDS_FLAGS`` vs without, interleaved (default, options,
    default, ...) so both see the same load; the ratio of the medians (goal: options <= 1.5x the step time)."""
    import statistics

    from benchmarks.bench_train import demo_steps_per_s

    rates: dict[str, list[float]] = {"default": [], "options": []}
    with tempfile.TemporaryDirectory(prefix="tspo-bench-warmstart-speed-") as tmp:
        for _ in range(repeats):
            rates["default"].append(demo_steps_per_s(Path(tmp), steps))
            rates["options"].append(demo_steps_per_s(Path(tmp), steps, extra=ADDS_FLAGS))
    med = {k: statistics.median(v) for k, v in rates.items()}
    return {"default_steps_per_s": rates["default"], "options_steps_per_s": rates["options"],
            "step_time_ratio": round(med["default"] / med["options"], 3), "options": " ".join(ADDS_FLAGS)}


def grpo_step_ratio(repeats: int = 40, num_t: int = 128, dim: int = 768) -> dict:
    """Median seconds of one GRPO step (``grpo_step``: agent forward, Gumbel-top-k of G = 8, SimulatedOracle
    answers, advantages, loss; then backward) with the GRPO options beyond the paper vs the default, interleaved, on one
    fixed needle (T = 128 candidates, D = 768 as ViT-L/14, k = 16): the training step without Lightning's
    loop, so the ratio is the options' own cost."""
    import statistics

    import torch

    from tspo.agents import GumbelTopK, TemporalAgent
    from tspo.manifest import Sample
    from tspo.rewards import OracleCache, SimulatedOracle
    from tspo.training.context import StepContext
    from tspo.training.grpo_step import grpo_step
    from tspo.training.options import GRPOOptions, RewardOptions

    torch.manual_seed(0)
    agent = TemporalAgent(dim=dim, window=12, heads=8)
    ref = copy.deepcopy(agent).requires_grad_(False)
    sample = Sample(id="n0", video="v.mp4", question="q?", options=["a", "b", "c", "d"], answer="B", kind="needle",
                    target_spans_s=[[30.0, 50.0]], evidence_spans_s=[[40.0, 44.0]], duration_s=float(num_t))
    batch = {"features": torch.randn(1, num_t, dim), "text": torch.randn(1, dim), "samples": [sample],
             "timestamps": torch.arange(num_t, dtype=torch.float64)[None],
             "target_mask": (torch.arange(num_t) >= 30) & (torch.arange(num_t) < 50)}
    batch["target_mask"] = batch["target_mask"][None]
    configs = {"default": (GRPOOptions(16), RewardOptions(), None, 0.025),     # the paper's recipe
               "options": (GRPOOptions(16, kl_beta=0.05, tau_relative=True), RewardOptions(answer_reward="soft"), ref, 0.3)}
    times: dict[str, list[float]] = {k: [] for k in configs}
    for i in range(repeats + 5):
        for name, (grpo, reward, ref_agent, tau) in configs.items():
            oracle = OracleCache(SimulatedOracle())           # fresh: every step asks the oracle
            ctx = StepContext(agent=agent, policy=GumbelTopK(16), oracle=oracle,
                              generator=torch.Generator().manual_seed(i), tau=tau, device=torch.device("cpu"),
                              grpo=grpo, reward=reward, ref_agent=ref_agent)
            agent.zero_grad(set_to_none=True)
            t0 = time.perf_counter()
            grpo_step(ctx, batch).loss.backward()
            if i >= 5:
                times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"default_ms": round(med["default"] * 1e3, 2), "options_ms": round(med["options"] * 1e3, 2),
            "ratio": round(med["options"] / med["default"], 3), "repeats": repeats}


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_warmstart", description=__doc__.split("\n")[0])
    p.add_argument("--num-train", type=int, default=NUM_TRAIN)
    p.add_argument("--num-val", type=int, default=NUM_VAL)
    p.add_argument("--warm", type=int, default=WARM_STEPS)
    p.add_argument("--grpo", type=int, default=GRPO_STEPS)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    p.add_argument("--span-kinds", nargs="+", default=list(SPAN_KINDS),
                   help=f"question kinds whose evidence spans the warm start sees (model.warmstart_kinds; default "
                        f"{' '.join(SPAN_KINDS)}); the others learn from the oracle alone")
    p.add_argument("--agent-options", type=json.loads, default={}, help="more TSPOModule options, JSON")
    p.add_argument("--out-dir", help="keep the data and features here (reused by a later run)")
    p.add_argument("--accumulate", type=int, default=1,
                   help="questions per optimizer step (trainer.accumulate_grad_batches; warm start and GRPO)")
    p.add_argument("--record", metavar="NAME", help="store the result as benchmarks/results/NAME.json and "
                   "regenerate RESULTS.md (benchmarks.runner.record_result), its command this command line")
    p.add_argument("--note", help="a paragraph put before the notes (what the run shows)")
    p.add_argument("--speed", action="store_true", help="instead: one GRPO step's time with the options vs the default")
    a = p.parse_args()
    if a.speed:
        print(json.dumps({"grpo_step": grpo_step_ratio(), "lightning_loop": step_time_ratio()}, indent=2))
        raise SystemExit(0)
    if a.accumulate < 1:
        p.error(f"--accumulate must be >= 1, got {a.accumulate}")
    import sys

    from benchmarks.runner import finish, machine_info

    machine = machine_info()   # the load average before the run
    start = time.perf_counter()
    got = run(a.num_train, a.num_val, a.warm, a.grpo, tuple(a.seeds), tuple(a.recipes), a.agent_options, a.out_dir,
              a.accumulate, tuple(a.span_kinds))
    argv = [x if x != a.out_dir else "DIR" for x in sys.argv[1:]]
    if "--note" in argv:                 # the note is in the notes, not needed to re-run
        del argv[argv.index("--note"):argv.index("--note") + 2]
    finish("benchmarks.bench_warmstart", argv, got, a.record, start, machine,
           lambda r: r["table_markdown"] + "\n" + r["notes"], note=a.note)
