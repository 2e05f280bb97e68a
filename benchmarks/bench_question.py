"""The question world: TSPO vs a CLIP that works, per question kind, on held-out confuser needles.

Data (``tspo.training.synth.question_world``): 2.5-10 minute needles whose haystack is 100 %
confuser clips (other rendered target-family clips, cut to stretches that never show what the
question names), one contiguous target clip per needle, seven question kinds with their coverage
rules (colour / text / shape / after: one pick in the evidence; motion: two; order / count: every
key event). Held-out needles use target and confuser clips never seen in training.

Encoder: ``tspo-synth`` (the shipped open_clip model trained by ``tspo synth encoder``), so CLIP
top-k, bin-max and AKS rank by features that understand shapes, colours and words. Oracle: the
SimulatedOracle (right when the selection satisfies the kind's coverage rule, else a uniform
guess among the options). All methods: the same k and the same candidates (1 fps, every second).

Run: python -m benchmarks question   (or: python -m benchmarks.bench_question)
"""

from __future__ import annotations

import copy
import tempfile
import time
from pathlib import Path

from tspo.training.synth import QUESTION_WORLD_NUM_TRAIN, QUESTION_WORLD_NUM_VAL

COMMAND = "python -m benchmarks question"
ENCODER = "tspo-synth"
K = 8
STEPS = 1500
CURVE = (0, 250, 500, 1000, 1500)
NUM_TRAIN, NUM_VAL = QUESTION_WORLD_NUM_TRAIN, QUESTION_WORLD_NUM_VAL   # the world's owner: tspo.training.synth
BASELINES = ("uniform", "clip", "bin-max", "aks")
# each variant: TSPOModule options on top of the shared recipe. ``tspo`` is the paper's agent as
# the default recipe trains it; ``tspo+kl`` adds the paper's KL to the frozen initial agent (CLIP's
# ranking), the general guard against forgetting what the starting ranking already got right;
# ``tspo+qattn`` conditions the window attention on the question (beyond the paper, off by default).
VARIANT_OPTIONS: dict[str, dict] = {"tspo": {}, "tspo+kl": {"kl_beta": 0.1},
                                    "tspo+adapter": {"query_adapter": True},
                                    "tspo+qattn": {"question_attention": True},
                                    "tspo+evidence": {"temporal_spans": "evidence"},
                                    "tspo+explore": {"tau_start": 0.1, "tau_end": 0.025},
                                    "tspo+eps": {"explore_eps": 0.2},
                                    "tspo+span": {"span_loss": 0.1, "temporal_spans": "evidence"},
                                    "tspo+span1": {"span_loss": 1.0, "temporal_spans": "evidence"},
                                    "tspo/no-guess": {"oracle": "simulated:wrong"},
                                    "tspo+evidence/no-guess": {"oracle": "simulated:wrong", "temporal_spans": "evidence"},
                                    "tspo+eps+evidence": {"explore_eps": 0.2, "temporal_spans": "evidence"},
                                    "tspo+evidence+explore": {"temporal_spans": "evidence", "tau_start": 0.1,
                                                              "tau_end": 0.025}}
VARIANTS = ("tspo", "tspo+kl", "tspo+adapter", "tspo+qattn", "tspo+evidence")


def evaluate_world(selector, samples, methods, k: int) -> dict:
    """Per-kind accuracy / coverage (``tspo.evaluation.kind_report.kind_table``) of ``methods`` on ``samples``
    (candidates and k as the selector's settings say)."""
    from tspo.evaluation.evaluate import evaluate_samples
    from tspo.evaluation.kind_report import kind_table
    from tspo.rewards import SimulatedOracle

    result = evaluate_samples(samples, methods, SimulatedOracle(), k, selector, progress=False, per_sample=True)
    return kind_table(result, samples)


def run(steps: int = STEPS, curve: tuple[int, ...] = CURVE, num_train: int = NUM_TRAIN, num_val: int = NUM_VAL,
        out_dir: str | None = None, variants: tuple[str, ...] = VARIANTS) -> dict:
    import lightning as L

    from tspo.data_synth import load_manifest
    from tspo.evaluation.kind_report import format_kind_table
    from tspo.features.cache import FeatureCache
    from tspo.selection.selector import TSPOSelector
    from tspo.settings import SelectionSettings
    from tspo.training import TSPODataModule, TSPOModule
    from tspo.training.synth import ensure_synthetic, question_world

    tables: dict[str, dict] = {}
    train_seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="tspo-bench-question-") as tmp:
        root = Path(out_dir or tmp)
        synth = question_world(str(root / "synth"), num_train=num_train, num_val=num_val)
        t0 = time.perf_counter()
        train_manifest, val_manifest = ensure_synthetic(synth, progress=False)
        synth_s = time.perf_counter() - t0
        val = load_manifest(val_manifest)
        cache = FeatureCache(root / "features")
        dm = TSPODataModule(train_manifest=str(train_manifest), val_manifest=None, encoder=ENCODER,
                            max_candidates=None, feature_cache=str(root / "features"), progress=False)

        def evaluate(encoder, agent, methods, label: str, at: int) -> None:
            selector = TSPOSelector(encoder=encoder, agent=copy.deepcopy(agent), cache=cache,
                                    settings=SelectionSettings(num_frames=K, max_candidates=None))
            table = evaluate_world(selector, val, methods, K)
            tables[f"{label}@{at}"] = table
            print(f"{label} @ {at} steps: " + ", ".join(f"{k} {v['tspo']['accuracy']:.2f}" for k, v in table.items()),
                  flush=True)

        for label in variants:
            L.seed_everything(0)
            options = {"tau_start": 0.025, "tau_end": 0.01, **VARIANT_OPTIONS[label]}
            model = TSPOModule(encoder=ENCODER, num_frames=K, group_size=8, lr=5e-4, seed=0, **options)
            # step 0: the untrained agent, with the baselines, once: every variant's extra layers are
            # zero-initialised (tests/test_agent.py pins it), so all start as CLIP's ranking
            if tables:
                tables[f"{label}@0"] = tables[f"{variants[0]}@0"]
            else:
                evaluate(model.encoder, model.agent, ("tspo",) + BASELINES, label, 0)
            train_seconds[label] = 0.0

            class Curve(L.Callback):
                def on_train_batch_start(self, trainer, *a, _label=label):
                    train_seconds["_t0"] = time.perf_counter()

                def on_train_batch_end(self, trainer, pl_module, *a, _label=label):
                    train_seconds[_label] += time.perf_counter() - train_seconds["_t0"]
                    if trainer.global_step in curve and trainer.global_step > 0:
                        evaluate(pl_module.encoder, pl_module.agent, ("tspo",), _label, trainer.global_step)

            trainer = L.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                                enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                                num_sanity_val_steps=0, callbacks=[Curve()])
            trainer.fit(model, dm)
        n_train = len(dm.train_set)

    base = tables[f"{variants[0]}@0"]
    merged = {kind: {**{v: tables[f"{v}@{steps}"][kind]["tspo"] for v in variants},
                     **{m: base[kind][m] for m in BASELINES}} for kind in base}
    markdown = format_kind_table(merged, variants + BASELINES)
    rows = [{"kind": kind, "n": per["clip"]["n"],
             **{f"{m} acc / cov": f"{per[m]['accuracy']:.2f} / {per[m]['coverage']:.2f}" for m in variants + BASELINES}}
            for kind, per in merged.items()]
    verdicts = []
    for kind, per in merged.items():
        if kind == "all":
            continue
        c, best = per["clip"]["accuracy"], max(per[m]["accuracy"] for m in BASELINES)
        verdicts.append(f"{kind}: " + ", ".join(f"{v} {per[v]['accuracy']:.2f} ({per[v]['accuracy'] - c:+.2f} vs clip, "
                                                f"{per[v]['accuracy'] - best:+.2f} vs best baseline)" for v in variants))
    curve_md = ["| variant | kind | " + " | ".join(f"step {c}" for c in curve) + " |",
                "|---|---|" + "---|" * len(curve)]
    for v in variants:
        for kind in merged:
            cells = [f"{tables[f'{v}@{c}'][kind]['tspo']['accuracy']:.2f}" if f"{v}@{c}" in tables else "-"
                     for c in curve]
            curve_md.append(f"| {v} | {kind} | " + " | ".join(cells) + " |")
    return {
        "title": "Question world: per-kind accuracy / evidence coverage on held-out confuser needles",
        "command": COMMAND,
        "rows": rows,
        "table_markdown": markdown,
        "notes": (f"{n_train} training / {len(val)} held-out needles (2.5-10 min, 100 % confuser haystack, held-out "
                  f"target and confuser clips unseen in training), k = {K} of every-second candidates (150-600), "
                  f"G = 8, lr 5e-4, tau 0.025 -> 0.01, {steps} GRPO steps, `{ENCODER}` encoder, SimulatedOracle "
                  f"(random guess among 4 options when the coverage rule fails). `tspo` is the paper's agent with "
                  f"the default recipe; `tspo+kl` adds the paper's KL to the frozen initial agent (CLIP's ranking, "
                  f"kl_beta {VARIANT_OPTIONS['tspo+kl'].get('kl_beta')}); `tspo+adapter` adds a learnable query "
                  f"adapter on the text feature, `tspo+qattn` question-conditioned window attention and `tspo+evidence` "
                  f"R_T over the question's evidence spans instead of the whole target clip "
                  f"(`model.temporal_spans: evidence`; all three beyond the paper, off by default). Variants run: {', '.join(variants)}. Data made "
                  f"in {synth_s:.0f} s; training time inside steps: "
                  + ", ".join(f"{v} {train_seconds[v]:.0f} s" for v in variants)
                  + ". Table: accuracy / evidence coverage after training, per question kind (step 0 of every "
                  "variant = CLIP's ranking, evaluated once)."
                  + "\n\nHeld-out accuracy per kind along training:\n\n" + "\n".join(curve_md)
                  + "\n\nPer kind: " + "; ".join(verdicts) + "."),
    }


def diagnose_kind(kind: str = "after", steps: int = 3000, variants: tuple[str, ...] = ("tspo", "tspo+evidence"),
                  block: int = 500) -> dict:
    """Can the agent learn one question kind at all? Train only on ``kind`` (256 needles) and report,
    per ``block`` steps, the training R_T (share of picks in the target, or in the evidence with
    ``tspo+evidence``) and R_A, plus the held-out (64 needles) coverage of greedy top-k at the end.
    R_A rising while coverage stays flat means the policy is fitting the simulated oracle's guesses,
    which are fixed per (needle, selection), not the evidence."""
    import lightning as L
    import numpy as np

    from tspo.data_synth import load_manifest
    from tspo.features.cache import FeatureCache
    from tspo.selection.selector import TSPOSelector
    from tspo.settings import SelectionSettings
    from tspo.training import TSPODataModule, TSPOModule
    from tspo.training.synth import ensure_synthetic, question_world

    out: dict = {"kind": kind, "steps": steps, "variants": {}}
    with tempfile.TemporaryDirectory(prefix="tspo-bench-question-kind-") as tmp:
        root = Path(tmp)
        train_manifest, val_manifest = ensure_synthetic(
            question_world(str(root / "synth"), num_train=256, num_val=64, kinds=(kind,)), progress=False)
        val, cache = load_manifest(val_manifest), FeatureCache(root / "features")
        dm = TSPODataModule(train_manifest=str(train_manifest), val_manifest=None, encoder=ENCODER,
                            max_candidates=None, feature_cache=str(root / "features"), progress=False)
        for label in variants:
            L.seed_everything(0, verbose=False)
            options = {"tau_start": 0.025, "tau_end": 0.01, **VARIANT_OPTIONS[label]}
            model = TSPOModule(encoder=ENCODER, num_frames=K, group_size=8, lr=5e-4, seed=0, **options)
            r_t, r_a = [], []

            class Log(L.Callback):
                def on_train_batch_end(self, trainer, *a, _r_t=r_t, _r_a=r_a):
                    _r_t.append(float(trainer.callback_metrics.get("train/R_T", np.nan)))
                    _r_a.append(float(trainer.callback_metrics.get("train/R_A", np.nan)))

            L.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                      num_sanity_val_steps=0, callbacks=[Log()]).fit(model, dm)
            selector = TSPOSelector(encoder=model.encoder, agent=copy.deepcopy(model.agent), cache=cache,
                                    settings=SelectionSettings(num_frames=K, max_candidates=None))
            table = evaluate_world(selector, val, ("tspo", "clip"), K)[kind]
            out["variants"][label] = {
                "train_R_T": [round(float(np.nanmean(r_t[i:i + block])), 3) for i in range(0, steps, block)],
                "train_R_A": [round(float(np.nanmean(r_a[i:i + block])), 3) for i in range(0, steps, block)],
                "heldout_coverage": round(table["tspo"]["coverage"], 3),
                "heldout_accuracy": round(table["tspo"]["accuracy"], 3),
                "clip_heldout_coverage": round(table["clip"]["coverage"], 3)}
    return out


if __name__ == "__main__":
    import argparse
    import json

    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_question",
                                description="the question benchmark, or a smaller exploration of some variants "
                                            "(prints JSON; only `python -m benchmarks question` writes RESULTS.md)")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANT_OPTIONS))
    p.add_argument("--steps", type=int, default=STEPS)
    p.add_argument("--curve", type=int, nargs="+", default=list(CURVE), help="steps at which to evaluate")
    p.add_argument("--only-kind", metavar="KIND", help="instead: train on this question kind alone and print the "
                   "training R_T / R_A per 500 steps and the held-out coverage (diagnose_kind)")
    a = p.parse_args()
    if a.only_kind:
        print(json.dumps(diagnose_kind(a.only_kind, a.steps, tuple(a.variants)), indent=2))
    else:
        print(json.dumps(run(steps=a.steps, curve=tuple(a.curve), variants=tuple(a.variants)), indent=2))
