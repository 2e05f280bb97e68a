"""The offline demo end to end (`tspo demo`): held-out table per method and the wall time of each stage.

Run: python -m benchmarks demo (seed 0, the `make demo` run), or python -m benchmarks.bench_demo --seed 1
     --record demo_seed1 (another training and world seed, for the second-seed check)
"""

from __future__ import annotations

import tempfile
import time


def run(seed: int | None = None) -> dict:
    """The demo with its defaults (``seed`` None: DemoConfig's) in a temporary folder -> a benchmark record."""
    from tspo.cli.demo import DemoConfig, run_demo
    from tspo.evaluation.kind_report import format_kind_table

    with tempfile.TemporaryDirectory(prefix="tspo_bench_demo_") as tmp:
        cfg = DemoConfig(out_dir=tmp, progress=False, **({} if seed is None else {"seed": seed}))
        start = time.perf_counter()
        result = run_demo(cfg)
        total = time.perf_counter() - start
    rows = [{"method": m, "accuracy": s["accuracy"], "picks_in_target": s["target_fraction"],
             "select_ms_per_sample": 1e3 * s["seconds_per_sample"], "n": s["n"]}
            for m, s in result["methods"].items()]
    kinds = format_kind_table(result["by_question_kind"], cfg.methods)
    return {
        "title": "Offline demo: TSPO vs baselines on held-out synthetic needles (question world)"
                 + ("" if seed is None else f", seed {seed}"),
        "command": "tspo demo --out DIR   (make demo; here: python -m benchmarks demo)",
        "rows": rows,
        "notes": (f"Seed {cfg.seed} (world and training). {cfg.num_train} training / {cfg.num_val} held-out needle videos (2.5-"
                  f"{cfg.synth_overrides.get('max_minutes', 10.0):g} min, 100 % confuser "
                  f"haystack, seven question kinds), k = {cfg.num_frames} of every-second candidates, "
                  f"G = {cfg.group_size}, the filter agent: {cfg.warmstart_steps} warm-start steps on the evidence spans "
                  f"of every kind, then {cfg.steps} GRPO steps against the SimulatedOracle ({cfg.accumulate_grad_batches} "
                  f"questions per step, lr {cfg.lr:g}; options {cfg.model_overrides}); `tspo+shot` (the filter "
                  f"family's own method) = its scores, each pick suppressing nms_radius frames either side but never "
                  f"across a shot cut, where its set head says so; `tspo+nms` = the same window, cuts ignored; `tspo` = its top-k; `clip+shot` / "
                  f"`clip+nms` = CLIP similarity with the shot rule / a 3-frame window; `{cfg.encoder}` encoder (trained on the synthetic "
                  f"world, so CLIP top-k works). Whole demo {total:.0f} s wall; per stage "
                  f"(s): {', '.join(f'{k} {v:.0f}' for k, v in result['stage_seconds'].items())}. Selection time "
                  f"excludes feature extraction ({1e3 * result['feature_seconds_per_sample']:.1f} ms/sample from "
                  f"the cache). Per question kind (accuracy / evidence coverage [95 % bootstrap interval over "
                  f"target clips]):\n\n{kinds}\n\n{result['kind_verdict']}\n\n"
                  "`tspo demo --world texture` is the earlier demo (texture haystack, random-weight encoder)."),
    }


if __name__ == "__main__":
    import argparse
    import sys

    from benchmarks.runner import finish, machine_info

    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_demo", description=__doc__.split("\n")[0])
    p.add_argument("--seed", type=int, default=None, help="world and training seed (default: the demo's)")
    p.add_argument("--record", metavar="NAME", help="store the result as benchmarks/results/NAME.json and "
                   "regenerate RESULTS.md, its command this command line")
    a = p.parse_args()
    machine = machine_info()
    start = time.perf_counter()
    got = run(a.seed)
    raise SystemExit(finish("benchmarks.bench_demo", sys.argv[1:], got, a.record, start, machine))
