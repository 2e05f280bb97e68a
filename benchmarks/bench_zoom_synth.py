"""The zoom benchmark with an encoder that understands the data: ``tspo-synth`` on question-world needles.

Same protocol as ``python -m benchmarks zoom`` (``benchmarks/bench_zoom.py``: 40 held-out 30-60 min
needles, one 20-40 s target clip asking about a 3-7 s event (colour / motion / text questions),
each needle also in an "evidence only" twin, k = 16, SimulatedOracle, reflection R = 1 at
threshold 0.5, the same zoom budget and the same methods), with two changes:

- encoder ``tspo-synth`` (issue 12's shipped open_clip model that knows the world's shapes,
  colours and words) instead of ``tiny-random``;
- two haystacks, each its own needles: texture videos (the paper's setting, as in the tiny-random
  run) and the question world's 100 % confuser clips (other target-family clips cut to stretches
  that never show what the question names, ``NeedleConfig.confuser_ratio = 1``), where the target
  cannot be found by "looks like a target clip" alone.

Agent: trained as in the tiny-random run (``bench_zoom.train_agent`` / ``train_zoom_agent``) on
this encoder's features and texture-haystack training needles; the untrained agent (CLIP's
ranking) is the ``clip (128)`` row. What an untrained agent does here: its coarse stage ranks by
similarity to the question, and a target clip's frames outside the evidence are no more similar to
the question than the haystack (measured: mean cosine ~0.05 inside the clip vs ~0.1-0.3 for texture
frames), so zoom opened spans on the evidence only when the grid already hit it; training teaches
the agent what target material looks like, which is what the coarse stage needs.

Run: python -m benchmarks zoom_synth   (or: python -m benchmarks.bench_zoom_synth)
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.bench_zoom import (
    NUM_HELDOUT,
    SEED,
    STEPS,
    ZOOM_STEPS,
    K,
    evaluate,
    heldout_needles,
    summarise,
    train_agent,
    train_zoom_agent,
    verdicts,
)

COMMAND = "python -m benchmarks zoom_synth"
ENCODER = "tspo-synth"
CONFUSERS = 24          # as many confuser clips as the question world renders per split


def coarse_grid_hits(samples) -> dict[str, float]:
    """Share of ``samples`` whose 128 uniform coarse candidates (the single-stage / zoom grid) include a
    time inside the evidence, and inside the target clip: the most any 128-candidate method can cover."""
    from tspo.selection.zoom import ZoomConfig
    from tspo.spans import in_spans
    from tspo.video import candidate_times

    grids = [candidate_times(s.duration_s, 1.0, ZoomConfig().coarse_candidates) for s in samples]
    return {key: float(np.mean([in_spans(g, getattr(s, f"{key}_spans_s")).any() for g, s in zip(grids, samples)]))
            for key in ("evidence", "target")}


def coarse_top_on_target(selector, samples, zoom_cfg) -> float:
    """Share of ``samples`` whose best-scored coarse candidate lies on the target clip: where zoom's
    first span opens (the agent's coarse ranking, measured on the same features as the table)."""
    from tspo.features.cache import video_features
    from tspo.selection.zoom import GridFeatureSource
    from tspo.spans import in_spans

    hits = []
    for s in samples:
        full = video_features(s.video, selector.encoder, fps=1.0, max_candidates=None, cache=selector.cache)
        res = selector.select_zoom_from_source(GridFeatureSource.from_video_features(full), s.question, K, "tspo",
                                               zoom_cfg)
        hits.append(bool(in_spans(res.coarse_times[[int(np.argmax(res.coarse_scores))]], s.target_spans_s).any()))
    return float(np.mean(hits))


def _row(rows: list[dict], evidence: str, method: str) -> dict:
    return next(r for r in rows if r["evidence"].startswith(evidence) and r["method"] == method)


HAYSTACKS = {
    # the paper's needle-in-a-haystack: the target clip is set among videos of another family
    "texture haystack": {"confusers": 0, "confuser_ratio": 0.0},
    # issue 12's question world: the haystack is other target-family clips, so only the
    # questioned event itself says where the answer is
    "confuser haystack": {"confusers": CONFUSERS, "confuser_ratio": 1.0},
}


def run(num: int = NUM_HELDOUT, seed: int = SEED, reflect_rounds: int = 1, threshold: float = 0.5,
        haystacks: tuple[str, ...] = tuple(HAYSTACKS), steps: int = STEPS, zoom_steps: int = ZOOM_STEPS) -> dict:
    import torch

    from tspo import TSPOSelector
    from tspo.features.cache import FeatureCache
    from tspo.features.encoders import load_encoder
    from tspo.rewards import SimulatedOracle
    from tspo.selection.zoom import ZoomConfig

    zoom_cfg = ZoomConfig(num_spans=2)   # the tiny-random run's budget (see bench_zoom.run)
    # a second budget: three spans stay under 10 % of the 1 fps frames on 30-60 min videos (four do not)
    wider_cfg = ZoomConfig(num_spans=3)
    encoder = load_encoder(ENCODER)
    with tempfile.TemporaryDirectory(prefix="tspo-bench-zoom-synth-train-") as tmp:
        # the tiny-random run's recipe on this encoder's features: GRPO on 2.5-5 min texture-haystack
        # needles, then GRPO over both zoom stages on 20-40 min needles (training clips only)
        torch.manual_seed(seed)
        agent, train_s = train_agent(Path(tmp), steps, seed, encoder=ENCODER)
        zoom_agent, zoom_train_s = train_zoom_agent(Path(tmp), agent, zoom_steps, seed, encoder=ENCODER)
    records, grid_hits, timing, minutes, ev, top_on_target = [], {}, [], [], [], {}
    for haystack in haystacks:
        with tempfile.TemporaryDirectory(prefix="tspo-bench-zoom-synth-") as tmp:
            root = Path(tmp)
            t0 = time.perf_counter()
            with_target, evidence = heldout_needles(root, num, seed, **HAYSTACKS[haystack])
            synth_s = time.perf_counter() - t0
            selector = TSPOSelector(encoder=encoder, agent=agent, cache=FeatureCache(root / "f"))
            zoom_selector = TSPOSelector(encoder=encoder, agent=zoom_agent, cache=selector.cache)
            oracle = SimulatedOracle(seed=seed)
            t0 = time.perf_counter()
            for label, samples in ((f"{haystack}: in target (20-40 s clip)", with_target),
                                   (f"{haystack}: evidence only", evidence)):
                records += evaluate(selector, oracle, samples, label, zoom_cfg, reflect_rounds, threshold,
                                    zoom_selector, wider_cfg)
                grid_hits[label] = coarse_grid_hits(samples)
            top_on_target[haystack] = coarse_top_on_target(selector, with_target, zoom_cfg)
            timing.append(f"{haystack}: rendering + composition {synth_s:.0f} s, encoding + evaluation "
                          f"{time.perf_counter() - t0:.0f} s")
        minutes += [s.duration_s / 60 for s in with_target]
        ev += [b - a for s in with_target for a, b in s.evidence_spans_s]
    rows = summarise(records)

    def cov(label: str, method: str) -> str:
        return f"{_row(rows, label, method)['evidence_coverage']:.2f}"

    hits = "; ".join(f"{label}: {v['evidence']:.3f} in the evidence, {v['target']:.3f} in the target clip"
                     for label, v in grid_hits.items())
    notes = [
        f"{num} held-out needles per haystack of {min(minutes):.1f}-{max(minutes):.1f} min (mean "
        f"{np.mean(minutes):.1f}), evidence {min(ev):.0f}-{max(ev):.0f} s (colour / motion / text questions), each "
        "in two variants (the 20-40 s target clip around the evidence, or the evidence alone); two haystacks: "
        "texture videos (the paper's needle-in-a-haystack: another visual family) and 100 % confuser clips "
        f"({CONFUSERS} rendered 60-120 s target-family clips, cut to stretches free of what each question names); "
        f"k = {K}; encoder `{ENCODER}`; agent: {steps} GRPO steps on 2.5-5 min texture-haystack needles at 128 "
        f"candidates ({train_s:.0f} s), as in the tiny-random run; 'zoom-GRPO agent': that agent fine-tuned "
        f"{zoom_steps} steps with GRPO over both zoom stages on 20-40 min needles of training clips "
        f"({zoom_train_s:.0f} s); both trained on texture haystacks only, so in the confuser haystack they meet a "
        "haystack kind they never saw; SimulatedOracle (guess: random among 4 options; confidence 0.9 when the evidence is "
        f"covered, flat 0.25 when guessing); reflection threshold {threshold}, R = {reflect_rounds}. "
        + "; ".join(timing) + ".",
        f"Zoom budget: {zoom_cfg}; rows 'tspo zoom, 3 spans': the same agent with {wider_cfg} (more spans open more "
        "chances on the target clip and cost more frames; with four, the frames exceed 10 % of the 1 fps run). "
        "Columns as in the tiny-random zoom section.",
        *verdicts(rows),
        "Where the 128 coarse candidates (one every ~21 s) land, the most any 128-candidate method can cover: "
        + hits + ".",
        "Why (measured here): with the evidence inside its 20-40 s target clip and a texture haystack, the "
        "trained agent ranks a coarse candidate on the clip first often enough that spans open on the clip and "
        "its 1 fps frames find the event; zoom then beats single-stage-128, whose grid offers the 3-7 s event "
        "only as often as it lands in it. What it still misses comes from the coarse ranking: the best coarse "
        "candidate of the single-stage agent lay on the target clip in "
        + " / ".join(f"{v:.2f}" for v in top_on_target.values()) + " of the in-target needles ("
        + " / ".join(top_on_target) + "), although the grid touches the clip in "
        + " / ".join(f"{grid_hits[f'{h}: in target (20-40 s clip)']['target']:.2f}" for h in top_on_target)
        + " of them. With the evidence alone, or in the confuser haystack (clips of the same shapes, colours, "
        "backgrounds and motions), nothing outside the event points to it, so spans open on the evidence only "
        "when a coarse candidate already lies in it and zoom stays at the grid's hit rate. Reflection "
        "re-selects with the inspected spans suppressed and costs 1 + (share of unsure answers) oracle calls: "
        "<= 1.5 calls needs >= 50 % first-try coverage. What would move the event-only cases: a denser coarse "
        "grid (spacing <= the event's 3-7 s, i.e. 14-33 % of the 1 fps frames, over the 10 % budget) or a "
        "coarse stage that infers the event from its surroundings, which these needles withhold by design.",
    ]
    return {"title": "Zoom with the synthetic-world encoder (tspo-synth, trained agent) on 30-60 min needles "
                     "with 3-7 s evidence (texture and confuser haystacks)",
            "command": COMMAND, "rows": rows, "notes": "\n\n".join(notes)}


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
