"""The offline demo end to end (`tspo demo`): held-out table per method and the wall time of each stage."""

from __future__ import annotations

import tempfile
import time


def run() -> dict:
    from tspo.demo import DemoConfig, run_demo

    with tempfile.TemporaryDirectory(prefix="tspo_bench_demo_") as tmp:
        cfg = DemoConfig(out_dir=tmp, progress=False)
        start = time.perf_counter()
        result = run_demo(cfg)
        total = time.perf_counter() - start
    rows = [{"method": m, "accuracy": s["accuracy"], "picks_in_target": s["target_fraction"],
             "select_ms_per_sample": 1e3 * s["seconds_per_sample"], "n": s["n"]}
            for m, s in result["methods"].items()]
    return {
        "title": "Offline demo: TSPO vs baselines on held-out synthetic needles",
        "command": "tspo demo --out DIR   (make demo; here: python -m benchmarks demo)",
        "rows": rows,
        "notes": (f"{cfg.num_train} training / {cfg.num_val} held-out needle videos (1-5 min, target 12-25 % of "
                  f"{cfg.max_candidates} candidates), k = {cfg.num_frames}, G = {cfg.group_size}, {cfg.steps} GRPO "
                  f"steps, `tiny-random` encoder (random weights: CLIP top-k, bin-max and AKS rank by random "
                  f"features, so they are at chance), SimulatedOracle. Whole demo {total:.0f} s wall; per stage "
                  f"(s): {', '.join(f'{k} {v:.0f}' for k, v in result['stage_seconds'].items())}. Selection time excludes feature extraction "
                  f"({1e3 * result['feature_seconds_per_sample']:.1f} ms/sample from the cache)."),
    }
