"""The filter agent family on the question world, trained *supervised* on the synthesizer's spans.

What the model side (the question-conditioned scorer, set rules and options) can express, measured apart from GRPO: the filter agent
(:class:`tspo.agents.FilterAgent`) is trained with a listwise loss on evidence membership
(``-log`` of the softmax mass on the evidence frames) plus the set head's loss
(:func:`tspo.objectives.set_rule.set_rule_loss`), then evaluated per question kind on held-out needles,
in evidence coverage (the kind's rule, as the SimulatedOracle applies it), against CLIP top-k and
CLIP + fixed-radius temporal NMS, all at k = 8 on every second (1 fps). ``filter`` = its top-k,
``filter+nms`` = ``tspo+nms`` (radius from the set head), ``... -opts`` = the same agent scored without
the question's options. 95 % bootstrap intervals over held-out target clips (a clip's needles resampled together).

Not the GRPO pipeline (no oracle in the loop; helper work 20b owns the warm-start stage and GRPO).

Run: python -m benchmarks filter   (or: python -m benchmarks.bench_filter)
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

COMMAND = "python -m benchmarks filter"
ENCODER = "tspo-synth"
K = 8
NUM_TRAIN, NUM_VAL = 400, 200
STEPS, BATCH, LR = 400, 16, 2e-3
SEED = 0


def run(num_train: int = NUM_TRAIN, num_val: int = NUM_VAL, steps: int = STEPS, out_dir: str | None = None) -> dict:
    import numpy as np
    import torch

    from tspo.agents import FilterAgent, get_method
    from tspo.data_synth import load_manifest
    from tspo.evaluation.kind_report import cluster_bootstrap
    from tspo.features.cache import FeatureCache
    from tspo.features.dataset import FeatureDataset
    from tspo.features.encoders import shared_encoder
    from tspo.objectives.set_rule import set_rule_loss, set_rule_targets
    from tspo.rewards.simulated import covers_groups
    from tspo.spans import in_spans
    from tspo.training.synth import ensure_synthetic, question_world

    torch.manual_seed(SEED)
    with tempfile.TemporaryDirectory(prefix="tspo-bench-filter-") as tmp:
        root = Path(out_dir or tmp)
        t0 = time.perf_counter()
        train_m, val_m = ensure_synthetic(question_world(str(root / "synth"), num_train=num_train, num_val=num_val),
                                          progress=False)
        encoder = shared_encoder(ENCODER)
        cache = FeatureCache(root / "features")
        train = FeatureDataset(load_manifest(train_m), encoder, max_candidates=None, cache=cache, progress=False)
        val = FeatureDataset(load_manifest(val_m), encoder, max_candidates=None, cache=cache, progress=False)
        data_s = time.perf_counter() - t0

        def item(ds, i):
            it = ds[i]
            evidence = in_spans(it["timestamps"].numpy(), it["sample"].evidence_spans_s or [])
            return it, torch.from_numpy(evidence)

        agent = FilterAgent(dim=encoder.dim)
        opt = torch.optim.Adam(agent.parameters(), lr=LR)
        gen = torch.Generator().manual_seed(SEED)
        usable = [i for i in range(len(train)) if item(train, i)[1].any()]
        t0 = time.perf_counter()
        for _ in range(steps):
            idx = torch.randint(0, len(usable), (BATCH,), generator=gen).tolist()
            loss = 0.0
            for i in idx:  # needles differ in length T: one forward each
                it, ev = item(train, usable[i])
                s = agent(it["features"], it["text"], it["options"])
                logp = torch.log_softmax(s / 0.1, -1)
                loss = loss + (-(logp[ev]).logsumexp(-1)) / BATCH       # listwise: mass on the evidence
            samples = [train.samples[usable[i]] for i in idx]
            target, weight = set_rule_targets(samples)
            texts = torch.stack([train.text[usable[i]] for i in idx])
            loss = loss + set_rule_loss(agent.set_logit(texts), target, weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
        train_s = time.perf_counter() - t0
        agent.eval()

        methods = {"clip": ("clip", False), "clip+nms": ("clip+nms", False), "filter": ("tspo", True),
                   "filter+nms": ("tspo+nms", True), "filter+nms -opts": ("tspo+nms", False)}
        cover: dict[str, list[float]] = {m: [] for m in methods}
        kinds, clusters = [], []
        with torch.no_grad():
            for i in range(len(val)):
                it, _ = item(val, i)
                s = it["sample"]
                rule = s.extra.get("coverage")
                if rule is None:
                    continue
                kinds.append(s.extra.get("qa_kind", "other"))
                clusters.append(s.extra.get("target_id", s.id))
                times = it["timestamps"].numpy()
                for name, (method, with_options) in methods.items():
                    m = get_method(method)
                    scores = m.score(agent, it["features"][None], it["text"][None],
                                     it["options"][None] if with_options else None)
                    radius = m.set_radius(agent, it["text"][None])
                    picks = m.pick(scores, scores.shape[-1], min(K, scores.shape[-1]), radius,
                           features=it["features"][None])[0]
                    cover[name].append(float(covers_groups(times[picks.numpy()], s.extra.get("evidence_groups_s"),
                                                           rule, s.id)))
        kinds_arr, clusters_arr = np.asarray(kinds), np.asarray(clusters)
        rows = []
        for kind in [*sorted(set(kinds)), "all"]:
            member = np.ones(len(kinds), bool) if kind == "all" else kinds_arr == kind
            row = {"kind": kind, "n": int(member.sum()), "clips": int(len(set(clusters_arr[member])))}
            for name in methods:
                vals = np.asarray(cover[name])[member]
                lo, hi = cluster_bootstrap(vals, clusters_arr[member])
                row[name] = f"{vals.mean():.2f} [{lo:.2f}, {hi:.2f}]"
            rows.append(row)
    params = sum(p.numel() for p in agent.parameters())
    return {
        "title": "Filter agent family, supervised on the spans: evidence coverage per kind (question world, k = 8)",
        "command": COMMAND,
        "rows": rows,
        "notes": (f"{num_train} training / {num_val} held-out needles (confuser ratio 1.0), encoder {ENCODER}, "
                  f"{steps} Adam steps of {BATCH} needles (lr {LR}, listwise evidence loss at tau 0.1 + set-head "
                  f"BCE), {params:,} agent parameters; data {data_s:.0f} s, training {train_s:.0f} s on a shared "
                  "CPU. Coverage = the kind's rule met by the k picks; [95 % bootstrap over held-out target clips]. "
                  "filter+nms -opts: the same agent without the options. Supervised on spans, not GRPO."),
    }


if __name__ == "__main__":
    result = run()
    for row in result["rows"]:
        print(row)
    print(result["notes"])
