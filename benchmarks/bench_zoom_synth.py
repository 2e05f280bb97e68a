"""The zoom benchmark with an encoder that understands the data: ``tspo-synth`` on question-world needles.

Same protocol as ``python -m benchmarks zoom`` (``benchmarks/bench_zoom.py``: 40 held-out 30-60 min
needles, one 20-40 s target clip asking about a 3-7 s event (colour / motion / text questions),
each needle also in an "evidence only" twin, k = 16, SimulatedOracle, reflection R = 1 at
threshold 0.5, the same zoom budget and the same methods), with two changes:

- encoder ``tspo-synth`` (issue 12's shipped open_clip model that knows the world's shapes,
  colours and words) instead of ``tiny-random``;
- the question world's haystack: 100 % confuser clips (other target-family clips cut to stretches
  that never show what the question names, ``NeedleConfig.confuser_ratio = 1``) instead of
  texture videos, so the target cannot be found by "looks like a target clip" alone.

Agent: the untrained TemporalAgent (seeded), whose scores rank candidates as the encoder's CLIP
similarity does; the question benchmark measured that 1500 GRPO steps on this world leave its
overall held-out accuracy where CLIP's ranking is (0.81 -> 0.80), so no training is spent here and
the zoom-GRPO agent row of the tiny-random run is not repeated.

Run: python -m benchmarks zoom_synth   (or: python -m benchmarks.bench_zoom_synth)
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.bench_zoom import NUM_HELDOUT, SEED, K, evaluate, heldout_needles, summarise, verdicts

COMMAND = "python -m benchmarks zoom_synth"
ENCODER = "tspo-synth"
CONFUSERS = 24          # as many confuser clips as the question world renders per split


def coarse_grid_hits(samples) -> dict[str, float]:
    """Share of ``samples`` whose 128 uniform coarse candidates (the single-stage / zoom grid) include a
    time inside the evidence, and inside the target clip: the most any 128-candidate method can cover."""
    from tspo.rewards import in_spans
    from tspo.video import candidate_times
    from tspo.zoom import ZoomConfig

    grids = [candidate_times(s.duration_s, 1.0, ZoomConfig().coarse_candidates) for s in samples]
    return {key: float(np.mean([in_spans(g, getattr(s, f"{key}_spans_s")).any() for g, s in zip(grids, samples)]))
            for key in ("evidence", "target")}


def _row(rows: list[dict], evidence: str, method: str) -> dict:
    return next(r for r in rows if r["evidence"].startswith(evidence) and r["method"] == method)


def run(num: int = NUM_HELDOUT, seed: int = SEED, reflect_rounds: int = 1, threshold: float = 0.5) -> dict:
    import torch

    from tspo import TSPOSelector
    from tspo.agents import TemporalAgent
    from tspo.cache import FeatureCache
    from tspo.encoders import load_encoder
    from tspo.rewards import SimulatedOracle
    from tspo.zoom import ZoomConfig

    zoom_cfg = ZoomConfig(num_spans=2)   # the tiny-random run's budget (see bench_zoom.run)
    with tempfile.TemporaryDirectory(prefix="tspo-bench-zoom-synth-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        with_target, evidence = heldout_needles(root, num, seed, confusers=CONFUSERS, confuser_ratio=1.0)
        synth_s = time.perf_counter() - t0
        encoder = load_encoder(ENCODER)
        torch.manual_seed(seed)
        agent = TemporalAgent(dim=encoder.dim).eval()
        selector = TSPOSelector(encoder=encoder, agent=agent, cache=FeatureCache(root / "f"))
        oracle = SimulatedOracle(seed=seed)
        t0 = time.perf_counter()
        records = (evaluate(selector, oracle, with_target, "in target (20-40 s clip)", zoom_cfg, reflect_rounds,
                            threshold)
                   + evaluate(selector, oracle, evidence, "evidence only", zoom_cfg, reflect_rounds, threshold))
        eval_s = time.perf_counter() - t0
    rows = summarise(records)
    grid_hits = {name: coarse_grid_hits(ss) for name, ss in (("in target", with_target), ("evidence only", evidence))}
    minutes = [s.duration_s / 60 for s in with_target]
    ev = [b - a for s in with_target for a, b in s.evidence_spans_s]
    notes = [
        f"{len(with_target)} held-out needles of {min(minutes):.1f}-{max(minutes):.1f} min (mean "
        f"{np.mean(minutes):.1f}), evidence {min(ev):.0f}-{max(ev):.0f} s (colour / motion / text questions), each "
        f"in two variants; haystack 100 % confuser clips ({CONFUSERS} rendered 60-120 s target-family clips, cut "
        f"to stretches free of what each question names); k = {K}; encoder `{ENCODER}`; agent untrained (seeded "
        "TemporalAgent: ranks as CLIP similarity does, no GRPO steps); SimulatedOracle (guess: random among 4 "
        "options; confidence 0.9 when the evidence is covered, flat 0.25 when guessing); reflection threshold "
        f"{threshold}, R = {reflect_rounds}. Held-out rendering + composition {synth_s:.0f} s; encoding + "
        f"evaluation {eval_s:.0f} s.",
        f"Zoom budget: {zoom_cfg}. Columns as in the tiny-random zoom section.",
        *verdicts(rows),
        "Why (measured here): the encoder finds the event whenever it is offered (exhaustive 1 fps coverage "
        f"{_row(rows, 'in target', 'tspo exhaustive (1 fps)')['evidence_coverage']:.2f} / "
        f"{_row(rows, 'evidence only', 'tspo exhaustive (1 fps)')['evidence_coverage']:.2f}), but the 128 "
        "coarse candidates (one every ~21 s) fall inside the 3-7 s evidence in only "
        + " / ".join(f"{v['evidence']:.3f}" for v in grid_hits.values())
        + " of the needles (in target / evidence only; inside the 20-40 s target clip: "
        + " / ".join(f"{v['target']:.3f}" for v in grid_hits.values())
        + "). Single-stage-128, CLIP and AKS cover the evidence exactly when the grid offers it. Zoom stays at "
        "the grid's evidence hit rate although the grid touches the target clip far more often. The confuser "
        "haystack shows the same shapes, colours, backgrounds and motions as the target clip, so a coarse "
        "candidate on the clip but outside the evidence has nothing the question names and, as these figures "
        "imply, scores no higher than confuser frames: spans open on the evidence only when a coarse candidate "
        "already lies in it (spans then add a needle, or lose one when the final top-k over the pool "
        "drops a lone coarse hit). Reflection re-selects with the inspected spans suppressed, which seldom "
        "finds evidence the grid did not offer, and costs 1 + (share of unsure answers) oracle "
        "calls: <= 1.5 calls needs >= 50 % first-try coverage. What would move it: a denser coarse grid "
        "(spacing <= the event's 3-7 s, i.e. 14-33 % of the 1 fps frames) or a question-aware "
        "coarse stage that can infer where the event is from its surroundings, which this world withholds "
        "by design.",
        "The tiny-random zoom section's evidence-only accuracy column was measured before `evidence_only` moved "
        "the oracle's per-event evidence groups with the evidence (the oracle mostly guessed on "
        "evidence-only twins); its coverage and accuracy_expected columns do not depend on that and stand. "
        "This section was measured after the fix.",
    ]
    return {"title": "Zoom with the synthetic-world encoder (tspo-synth) on 30-60 min confuser needles with "
                     "3-7 s evidence",
            "command": COMMAND, "rows": rows, "notes": "\n\n".join(notes)}


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
