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

Every per-kind cell carries n, the number of target clips and a 95 % bootstrap interval over target
clips (needles built from one target clip are resampled together); each trained variant is compared
with CLIP top-k by the paired difference on the same needles, and checked against the goals.

Run: python -m benchmarks question   (the README's table; or: python -m benchmarks.bench_question).
The goal protocol (>= 1,000 training target clips, held-out confuser ratios 1.0 and 0.5, two
training seeds), resumable from --out:
    python -m benchmarks.bench_question --protocol goal --out runs/question-goal [--record question_goal]
smaller: add --num-train / --train-targets / --num-val / --steps / --seeds. A new variant is one
VARIANT_OPTIONS entry (TSPOModule options; ``accumulate_grad_batches`` goes to the Trainer). The
recommended recipe (examples/configs/question_warmstart.yaml) on the goal protocol, its training world
also holding needles at confuser ratio 0.5:
    python -m benchmarks.bench_question --protocol goal --variants filter+warmstart --agent-methods tspo+nms tspo
        --train-mix 0.5 --out runs/question-goal
"""

from __future__ import annotations

import copy
import hashlib
import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from tspo.cli.demo import QUESTION_RECIPE, DemoConfig
from tspo.settings import ORACLE_GRPO_RECIPE, PAPER_GRPO_RECIPE, SINGLE_STAGE_GRPO_DEFAULTS
from tspo.training.synth import QUESTION_WORLD_NUM_TRAIN, QUESTION_WORLD_NUM_VAL, QUESTION_WORLD_SEED

COMMAND = "python -m benchmarks question"
ENCODER = "tspo-synth"
K = 8
STEPS = 1500
CURVE = (0, 250, 500, 1000, 1500)
NUM_TRAIN, NUM_VAL = QUESTION_WORLD_NUM_TRAIN, QUESTION_WORLD_NUM_VAL   # the world's owner: tspo.training.synth
BASELINES = ("uniform", "clip", "bin-max", "aks")
# each variant: TSPOModule options on top of the shared recipe, which holds the paper's R_A and no KL
# (tspo.settings.PAPER_GRPO_RECIPE; see new_module). ``tspo`` is the paper's agent as the paper's recipe
# trains it; ``tspo/default`` as TSPOModule's defaults train it (tspo.settings.SINGLE_STAGE_GRPO_DEFAULTS);
# ``tspo+kl`` adds the paper's KL to the frozen initial agent (CLIP's ranking), the general guard against forgetting what the starting ranking already got right;
# ``tspo+qattn`` conditions the window attention on the question (beyond the paper, off by default).
VARIANT_OPTIONS: dict[str, dict] = {"tspo": {}, "tspo+kl": {"kl_beta": 0.1}, "tspo+kl0.01": {"kl_beta": 0.01},
                                    "tspo/default": dict(SINGLE_STAGE_GRPO_DEFAULTS),
                                    "tspo+soft": {"answer_reward": "soft"},
                                    "tspo+soft+kl0.01": {"answer_reward": "soft", "kl_beta": 0.01},
                                    "tspo+soft+kl0.005": {"answer_reward": "soft", "kl_beta": 0.005},
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
# the paper's agent trained by the recommended recipe's GRPO from the oracle (soft answer reward, no R_T,
# tau relative to the score spread, Plackett-Luce), no spans: goal 3's candidate default without annotations
VARIANT_OPTIONS["tspo+oracle-rl"] = dict(ORACLE_GRPO_RECIPE)
# the recommended recipe's GRPO alone, no warm start (what a user without span annotations can train): the
# filter agent starts as the paper's agent, its set head untrained (so tspo+nms / tspo+shot pick top-k)
VARIANT_OPTIONS["filter+rl"] = {k: v for k, v in QUESTION_RECIPE.items() if not k.startswith("warmstart")}
# the recommended recipe (examples/configs/question_warmstart.yaml, the demo's QUESTION_RECIPE, warm-start
# steps and questions per optimizer step): filter agent, warm start on every kind's spans, then the GRPO steps
VARIANT_OPTIONS["filter+warmstart"] = {**QUESTION_RECIPE, "warmstart_steps": DemoConfig.warmstart_steps,
                                       "accumulate_grad_batches": DemoConfig.accumulate_grad_batches}
# the same with three times the supervised steps
VARIANT_OPTIONS["filter+warmstart6k"] = {**VARIANT_OPTIONS["filter+warmstart"], "warmstart_steps": 3 * DemoConfig.warmstart_steps}
# the recipe with the warm start's learned loss scale (span_fit's learn_scale)
VARIANT_OPTIONS["filter+warmstart+scale"] = {**VARIANT_OPTIONS["filter+warmstart"], "warmstart_learn_scale": True}
# ... and batched as the best measured span fit (filter_goal_mix_base: 1,500 steps of 32 needles at lr 1e-3):
# 8 needles per warm-start step x 4
VARIANT_OPTIONS["filter+warmstart+batch"] = {**VARIANT_OPTIONS["filter+warmstart+scale"], "warmstart_steps": 1500,
                                             "lr": 1e-3, "warmstart_batch_size": 8}
# ... and GRPO moving only the filter's w(q) (the paper part and the set head keep the warm start's weights)
VARIANT_OPTIONS["filter+warmstart+batch/rl-filter"] = {**VARIANT_OPTIONS["filter+warmstart+batch"], "rl_trainable": "filter"}
# ... and GRPO at a tenth of the recipe's rl_lr (the learned loss scale leaves the agent's scores unamplified,
# so a GRPO step at 2e-3 moves them further relative to their spread)
VARIANT_OPTIONS["filter+warmstart+batch/rl2e-4"] = {**VARIANT_OPTIONS["filter+warmstart+batch"], "rl_lr": 2e-4}
# ... with twice the warm-start steps
VARIANT_OPTIONS["filter+warmstart3k+batch/rl2e-4"] = {**VARIANT_OPTIONS["filter+warmstart+batch/rl2e-4"], "warmstart_steps": 3000}
PAPER_LABEL = "the paper's recipe (R_A 0/1, no KL)"
# the warm start's learning rate where a variant sets none (GRPO's: rl_lr where set)
LR = 5e-4
VARIANTS = ("tspo", "tspo+kl", "tspo+adapter", "tspo+qattn", "tspo+evidence")
# keys of a VARIANT_OPTIONS entry that set the Lightning Trainer, not TSPOModule
TRAINER_KEYS = ("accumulate_grad_batches",)


def variant_options(variant: str) -> dict:
    """A variant's options over the benchmark's temperature schedule (the paper's tau 0.025 -> 0.01)."""
    return {"tau_start": 0.025, "tau_end": 0.01, **VARIANT_OPTIONS[variant]}


def split_options(options: dict) -> tuple[dict, dict]:
    """A variant's options -> (TSPOModule options, Trainer options)."""
    return ({k: v for k, v in options.items() if k not in TRAINER_KEYS},
            {k: v for k, v in options.items() if k in TRAINER_KEYS})


def new_module(module_options: dict, seed: int, encoder: str = ENCODER):
    """A TSPOModule as the benchmark trains it: its encoder, k, G and learning rate, the paper's R_A and no KL
    (:data:`tspo.settings.PAPER_GRPO_RECIPE`, so a variant's options read as changes to the paper's recipe),
    then the variant's ``module_options``."""
    from tspo.training import TSPOModule

    return TSPOModule(**{"encoder": encoder, "num_frames": K, "group_size": 8, "lr": LR, "seed": seed,
                         **PAPER_GRPO_RECIPE, **module_options})


def total_steps(module_options: dict, grpo_steps: int) -> int:
    """The Trainer's max_steps: ``grpo_steps`` GRPO steps after the variant's warm start, if it has one."""
    return module_options.get("warmstart_steps", 0) + grpo_steps


HELDOUT_DISTRACTORS = 8   # texture clips rendered for held-out haystacks below confuser ratio 1.0
WORLD_SEED = QUESTION_WORLD_SEED   # the training world's (its owner: tspo.training.synth)
MIX_SEED = 5              # the optional mixed-ratio training world's (bench_filter_goal.mix_world)
# The goals in evidence coverage (held-out question world, every confuser ratio, every seed):
# these kinds at least this much (and above the best baseline with the paired interval above 0 where
# the baseline is below it), every other kind >= best baseline - GOAL_SLACK, all kinds >= GOAL_ALL.
GOAL_COVERAGE = {"after": 0.95, "count": 0.95, "order": 0.90}
GOAL_SLACK, GOAL_ALL = 0.02, 0.93


@dataclass(frozen=True)
class Protocol:
    """What one run trains and evaluates. Sizes in needles and target clips (None: the question world's
    default, ``tspo.training.synth.question_world``); ``ratios``: the held-out sets' confuser ratios
    (training is always at 1.0, the world's own); ``seeds``: training seeds (every variant once each);
    ``curve``: steps at which the first seed is evaluated on the first held-out set along training;
    ``agent_methods``: how each trained variant picks (``tspo``, or a ``tspo+RULE`` method); ``train_mix``:
    also train on ``bench_filter_goal.mix_world``'s 1,200 needles at this confuser ratio (None: not);
    ``heldout_seeds``: more held-out needles (``num_val`` per seed and ratio, :func:`extra_worlds`) joined
    to each held-out set, for intervals narrow enough to separate methods near the ceiling."""

    num_train: int = NUM_TRAIN
    train_targets: int | None = None
    num_val: int = NUM_VAL
    val_targets: int | None = None
    ratios: tuple[float, ...] = (1.0,)
    seeds: tuple[int, ...] = (0,)
    steps: int = STEPS
    variants: tuple[str, ...] = VARIANTS
    curve: tuple[int, ...] = CURVE
    baselines: tuple[str, ...] = BASELINES
    agent_methods: tuple[str, ...] = ("tspo",)
    train_mix: float | None = None
    heldout_seeds: tuple[int, ...] = ()

    def check(self) -> Protocol:
        from tspo.agents import get_method

        unknown = [v for v in self.variants if v not in VARIANT_OPTIONS]
        if unknown:
            raise ValueError(f"unknown variants {unknown}; choose from {', '.join(VARIANT_OPTIONS)} (VARIANT_OPTIONS)")
        if not self.variants or not self.seeds or not self.ratios:
            raise ValueError("a protocol needs at least one variant, one seed and one held-out confuser ratio")
        if any(not 0.0 < r <= 1.0 for r in self.ratios):
            raise ValueError(f"held-out confuser ratios must be in (0, 1], got {self.ratios}")
        taken = [sd for sd in self.heldout_seeds if sd in (WORLD_SEED, MIX_SEED)]
        if taken or len(set(self.heldout_seeds)) != len(self.heldout_seeds):
            raise ValueError(f"heldout_seeds must be distinct world seeds other than the training world's ({WORLD_SEED}) "
                             f"and the mixed training world's ({MIX_SEED}), got {list(self.heldout_seeds)}")
        if self.train_mix is not None and not 0.0 < self.train_mix < 1.0:
            raise ValueError(f"train_mix must be a confuser ratio in (0, 1), e.g. 0.5; got {self.train_mix}")
        if self.steps < 1 or self.num_train < 1 or self.num_val < 1:
            raise ValueError(f"steps, num_train and num_val must be >= 1, got {self.steps}, {self.num_train}, "
                             f"{self.num_val}")
        if "clip" not in self.baselines:
            raise ValueError("the baselines must include clip (every variant is compared with CLIP top-k)")
        wrong = [m for m in self.agent_methods if not get_method(m).needs_agent]
        wrong += [m for m in self.baselines if get_method(m).needs_agent]
        if wrong:
            raise ValueError(f"agent_methods must score with the agent and baselines without it; misplaced: {wrong}")
        return self


# ``--protocol goal``: the goal measurement (>= 1,000 training target clips, held-out sets at
# confuser ratio 1.0 and 0.5, two training seeds); ``benchmark``: what ``python -m benchmarks question``
# runs (the README's table).
PROTOCOLS = {"benchmark": Protocol(),
             "goal": Protocol(num_train=2400, train_targets=1200, num_val=300, val_targets=150, ratios=(1.0, 0.5),
                              seeds=(0, 1), variants=("tspo",), curve=())}


def label(variant: str, method: str, seed: int) -> str:
    """A trained variant's column: ``tspo s0``; a ``tspo+RULE`` method of it: ``tspo+kl (tspo+nms) s1``."""
    return (variant if method == "tspo" else f"{variant} ({method})") + f" s{seed}"


def _key(obj: Any) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=list).encode()).hexdigest()[:10]


def _world_key(cfg) -> str:
    return _key({k: v for k, v in asdict(cfg).items() if k != "out_dir"})


def worlds(root: Path, p: Protocol) -> tuple[Any, dict[float, Any]]:
    """The training world (confuser ratio 1.0; its own held-out split is the ratio-1.0 set) and one
    world per other held-out ratio: same seed and sizes, so the same held-out target clips with their
    questions, a haystack cut that share from confusers and the rest from texture clips (its training
    split is one needle, never used)."""
    from tspo.training.synth import question_world

    sizes = {k: v for k, v in (("train_targets", p.train_targets), ("val_targets", p.val_targets)) if v is not None}
    train = question_world(str(root / "world"), num_train=p.num_train, num_val=p.num_val, **sizes)
    held = {}
    for r in p.ratios:
        held[r] = train if r == 1.0 else question_world(
            str(root / f"heldout-r{r:g}"), num_train=1, num_val=p.num_val,
            **{**sizes, "train_targets": 1}, confuser_ratio=r, distractors=HELDOUT_DISTRACTORS)
    return train, held


def extra_worlds(root: Path, p: Protocol) -> dict[float, list[Any]]:
    """``p.heldout_seeds``: per held-out ratio, one more world per seed holding only held-out needles
    (``p.num_val`` of them on ``p.val_targets`` target clips; the one training needle is never used),
    rendered with that world seed, so every clip (targets, confusers, textures) is a new draw, not the
    training world's. Ratio 1.0 haystacks are all confusers, as the training world's; below it the rest
    are texture clips, as the protocol's own held-out sets."""
    from tspo.training.synth import question_world

    sizes = {k: v for k, v in (("val_targets", p.val_targets),) if v is not None}
    return {r: [question_world(str(root / f"heldout-s{sd}-r{r:g}"), num_train=1, num_val=p.num_val, seed=sd,
                               train_targets=1, confuser_ratio=r, **sizes,
                               **({} if r == 1.0 else {"distractors": HELDOUT_DISTRACTORS}))
                for sd in p.heldout_seeds] for r in p.ratios}


def heldout_key(main_cfg: Any, extra_cfgs: Sequence[Any] = ()) -> str:
    """The cache key of one held-out set: its world's, with the extra worlds' too when there are any."""
    return _world_key(main_cfg) if not extra_cfgs else _key([_world_key(c) for c in (main_cfg, *extra_cfgs)])


def heldout_sets(root: Path, p: Protocol, held: dict[float, Any], progress: bool = False) -> dict[float, list]:
    """The held-out needles per confuser ratio: the protocol's held-out split of ``held[r]`` plus, for each
    of ``p.heldout_seeds``, the extra world's (:func:`extra_worlds`), whose needle ids and target clips are
    prefixed ``sSEED-`` (every world numbers its clips from 0, and the bootstrap resamples target clips)."""
    from tspo.data_synth import load_manifest
    from tspo.training.synth import ensure_synthetic

    out = {r: load_manifest(ensure_synthetic(cfg, progress=progress)[1]) for r, cfg in held.items()}
    for r, cfgs in extra_worlds(root, p).items():
        for cfg in cfgs:
            tag = f"s{cfg.seed}-"
            out[r] += [replace(s, id=tag + s.id, extra={**s.extra, "target_id": tag + str(s.extra.get("target_id", s.id))})
                       for s in load_manifest(ensure_synthetic(cfg, progress=progress)[1])]
    return out


def mixed_manifest(root: Path, train_manifest: Path, ratio: float, progress: bool) -> Path:
    """The training manifest plus ``bench_filter_goal.mix_world``'s needles at confuser ratio ``ratio`` (ids
    prefixed ``mix{ratio}-``: both worlds number their needles from 0) -> the combined manifest's path."""
    from benchmarks.bench_filter_goal import mix_world
    from tspo.data_synth import load_manifest
    from tspo.manifest import write_manifest

    mix = [replace(s, id=f"mix{ratio:g}-{s.id}") for s in mix_world(root, ratio, progress)]
    return write_manifest(root / f"train-with-mix-r{ratio:g}" / "manifest.jsonl", load_manifest(train_manifest) + mix)


def evaluate_world(selector, samples, methods, k: int) -> dict:
    """Per-kind accuracy / coverage (``tspo.evaluation.kind_report.kind_table``) of ``methods`` on ``samples``
    (candidates and k as the selector's settings say)."""
    from tspo.evaluation.kind_report import kind_table

    return kind_table({"samples": outcomes_of(selector, samples, methods, k)}, samples)


def outcomes_of(selector, samples, methods, k: int, rename: Callable[[str], str] = str) -> list[dict]:
    """Per-sample outcomes (``sample_id``, ``method`` renamed by ``rename``, ``correct``, ``timestamps_s``)
    of ``methods`` on ``samples``, answered by the SimulatedOracle (JSON-ready)."""
    from tspo.evaluation.evaluate import evaluate_samples
    from tspo.rewards import SimulatedOracle

    result = evaluate_samples(samples, methods, SimulatedOracle(), k, selector, progress=False, per_sample=True)
    return [{"sample_id": o["sample_id"], "method": rename(o["method"]), "correct": o["correct"],
             "timestamps_s": [float(t) for t in o["timestamps_s"]]} for o in result["samples"]]


def train_variant(root: Path, p: Protocol, variant: str, seed: int, train_cfg, held: dict[float, Any],
                  val_sets: dict[float, list], cache, progress: bool, train_manifest: Path | None = None) -> dict:
    """Train ``variant`` with ``seed`` (or reuse the selector a finished run with the same settings saved
    under ``root/runs``; ``train_manifest``: the needles to train on, None: ``train_cfg``'s) and return ``{"train_seconds", "curve": {step: kind table}, "outcomes": {ratio:
    [outcome]}}``; outcomes per held-out set are cached beside the selector too, so an interrupted run
    resumes where it stopped."""
    import lightning as L

    from tspo.selection.selector import TSPOSelector
    from tspo.settings import SelectionSettings
    from tspo.training import TSPODataModule
    from tspo.training.progress import quiet_lightning

    options = variant_options(variant)
    extras = extra_worlds(root, p)
    held_keys = {r: (held[r], extras[r]) for r in p.ratios}
    curve = sorted(c for c in p.curve if c <= p.steps)
    # the curve's held-out set keys the run only when there is a curve: extra held-out worlds then reuse a run
    recipe = {"options": options, "steps": p.steps, "seed": seed, "k": K, "group_size": 8, "lr": options.get("lr", LR),
              "world": _world_key(train_cfg), "encoder": ENCODER, "curve": curve,
              "curve_set": heldout_key(held[p.ratios[0]], extras[p.ratios[0]] if curve else ()),
              **({} if p.train_mix is None else {"train_mix": p.train_mix})}
    run_dir = root / "runs" / f"{variant.replace('/', '_')}-s{seed}-{_key(recipe)}"
    record_path = run_dir / "run.json"
    settings = SelectionSettings(num_frames=K, max_candidates=None)
    reused = record_path.is_file()
    if reused:
        record = json.loads(record_path.read_text())
        selector = TSPOSelector.from_pretrained(run_dir / "selector", cache=cache)
        selector.settings = settings
        print(f"{variant} seed {seed}: reusing {run_dir}", flush=True)
    else:
        L.seed_everything(seed, verbose=False)
        module_options, trainer_options = split_options(options)
        model = new_module(module_options, seed)
        dm = TSPODataModule(train_manifest=str(train_manifest or train_cfg.paths()[0]), val_manifest=None, encoder=ENCODER,
                            max_candidates=None, feature_cache=str(cache.root), seed=seed, progress=progress)
        record = {"recipe": recipe, "train_seconds": 0.0, "curve": {}}
        clock: dict[str, float] = {}
        curve_set = val_sets[p.ratios[0]]

        def check(module, step: int) -> None:
            sel = TSPOSelector(encoder=module.encoder, agent=copy.deepcopy(module.agent), cache=cache,
                               settings=settings)
            table = evaluate_world(sel, curve_set, ("tspo",), K)
            record["curve"][str(step)] = {kind: v["tspo"] for kind, v in table.items()}
            print(f"{variant} seed {seed} @ {step} steps: "
                  + ", ".join(f"{kd} {v['tspo']['coverage']:.2f}" for kd, v in table.items()), flush=True)

        class Curve(L.Callback):
            def on_train_start(self, trainer, pl_module):
                if 0 in recipe["curve"] and seed == p.seeds[0]:
                    check(pl_module, 0)

            def on_train_batch_start(self, trainer, *a):
                clock["t0"] = time.perf_counter()

            def on_train_batch_end(self, trainer, pl_module, *a):
                record["train_seconds"] += time.perf_counter() - clock["t0"]
                if trainer.global_step in recipe["curve"] and trainer.global_step > 0 and seed == p.seeds[0]:
                    check(pl_module, trainer.global_step)

        with quiet_lightning():
            L.Trainer(max_steps=total_steps(module_options, p.steps), accelerator="cpu", logger=False,
                      enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                      limit_val_batches=0, num_sanity_val_steps=0, callbacks=[Curve()], **trainer_options).fit(model, dm)
        selector = TSPOSelector(encoder=model.encoder, agent=copy.deepcopy(model.agent), cache=cache,
                                settings=settings)
        selector.save_pretrained(run_dir / "selector", {"bench_question": recipe})
        record_path.write_text(json.dumps(record, indent=1) + "\n")
    outcomes = {}
    for r, samples in val_sets.items():
        path = run_dir / f"heldout-{heldout_key(*held_keys[r])}-{_key(list(p.agent_methods))}.json"
        if path.is_file():
            outcomes[r] = json.loads(path.read_text())
        else:
            outcomes[r] = outcomes_of(selector, samples, p.agent_methods, K,
                                      rename=lambda m: label(variant, m, seed))
            path.write_text(json.dumps(outcomes[r]) + "\n")
    return {**record, "outcomes": outcomes, "reused": reused}


def best_baseline(coverage: dict[str, float | None]) -> str:
    """The baseline the goals compare with: the highest coverage (None: not measured for this kind), CLIP
    top-k on a tie. ``coverage``: {baseline name: coverage}. ``bench_filter_goal`` asks it too."""
    return max((b for b, c in coverage.items() if c is not None), key=lambda b: (coverage[b], b == "clip"))


def kind_goal_met(kind: str, coverage: float, best_baseline: float, lo_vs_best: float) -> bool:
    """The goal of one kind (the one owner of the rule; ``bench_filter_goal`` asks it too): ``coverage`` of
    the trained column, ``best_baseline`` the best baseline's coverage, ``lo_vs_best`` the lower end of the
    paired 95 % interval of (column - that baseline). After / count / order: >= GOAL_COVERAGE and, where the
    best baseline is below that, ``lo_vs_best`` > 0; ``all``: >= GOAL_ALL; other kinds: >= best - GOAL_SLACK."""
    if kind == "all":
        return coverage >= GOAL_ALL - 1e-9
    if kind in GOAL_COVERAGE:
        need = GOAL_COVERAGE[kind]
        return coverage >= need - 1e-9 and (best_baseline >= need - 1e-9 or lo_vs_best > 0)
    return coverage >= best_baseline - GOAL_SLACK - 1e-9


def goal_check(table: dict, vs_baselines: dict[str, dict], column: str, baselines: Sequence[str]) -> dict[str, str]:
    """The goals for one trained column on one held-out set, per kind: ``"yes"`` / ``"no"`` with
    the coverage. ``table``: ``kind_table`` (coverage per method); ``vs_baselines``: ``{baseline:
    kind_differences(column - baseline)}``. After / count / order need their GOAL_COVERAGE and, where
    the best baseline is below it, a paired interval above that baseline; other kinds need >= best
    baseline - GOAL_SLACK; ``all`` >= GOAL_ALL."""
    out = {}
    for kind, per in table.items():
        if column not in per or per[column]["coverage"] is None:
            continue
        cov = per[column]["coverage"]
        best = best_baseline({b: per[b]["coverage"] for b in baselines if b in per})
        lo = vs_baselines[best][kind]["ci"][0] if kind in GOAL_COVERAGE else float("nan")
        met = kind_goal_met(kind, cov, per[best]["coverage"], lo)
        out[kind] = f"{'yes' if met else 'no'} ({cov:.3f})"
    return out


def run(protocol: Protocol | None = None, out_dir: str | None = None, progress: bool = False, **overrides) -> dict:
    """Train every variant with every seed of ``protocol`` (default: ``PROTOCOLS["benchmark"]``, with
    ``overrides`` replacing its fields) on the question world and evaluate them and the baselines on
    each held-out set: per-kind accuracy / coverage with 95 % bootstrap intervals over target clips and
    each trained column minus CLIP top-k (paired). ``out_dir``: keep the worlds, the feature cache and the
    trained selectors there and reuse them on the next run (None: a temporary folder)."""
    from tspo.data_synth import load_manifest
    from tspo.evaluation.kind_report import (
        BOOTSTRAP_DRAWS,
        format_difference_table,
        format_kind_table,
        kind_differences,
        kind_table,
        same_picks_note,
    )
    from tspo.features.cache import FeatureCache
    from tspo.features.extract import extract_features
    from tspo.selection.selector import TSPOSelector
    from tspo.settings import DEFAULT_FPS, SelectionSettings
    from tspo.training.synth import ensure_synthetic

    p = replace(protocol or PROTOCOLS["benchmark"], **overrides).check()
    with tempfile.TemporaryDirectory(prefix="tspo-bench-question-") as tmp:
        root = Path(out_dir or tmp)
        t0 = time.perf_counter()
        train_cfg, held = worlds(root, p)
        train_manifest = Path(ensure_synthetic(train_cfg, progress=progress)[0])
        if p.train_mix is not None:
            train_manifest = mixed_manifest(root, train_manifest, p.train_mix, progress)
        val_sets = heldout_sets(root, p, held, progress)
        synth_s = time.perf_counter() - t0
        cache = FeatureCache(root / "features")
        baseline_selector = TSPOSelector(encoder=ENCODER, cache=cache,
                                         settings=SelectionSettings(num_frames=K, max_candidates=None))
        t0 = time.perf_counter()
        for samples in val_sets.values():   # one packed pass per held-out set (resumes from the cache)
            summary = extract_features([s.video for s in samples], baseline_selector.encoder, cache, fps=DEFAULT_FPS,
                                       max_candidates=None, progress=progress)
            if summary.failed:
                print(summary.text(), flush=True)
        outcomes = {r: outcomes_of(baseline_selector, s, p.baselines, K) for r, s in val_sets.items()}
        baseline_s = time.perf_counter() - t0
        runs = {}
        for variant in p.variants:
            for seed in p.seeds:
                runs[(variant, seed)] = train_variant(root, p, variant, seed, train_cfg, held, val_sets, cache,
                                                      progress, train_manifest)
                for r in p.ratios:
                    outcomes[r] += runs[(variant, seed)]["outcomes"][r]
        trained_on = load_manifest(train_manifest)
        n_train, n_main = len(trained_on), sum(not s.id.startswith("mix") for s in trained_on)
        # the mix world numbers its clips from 0 too: its (prefixed) needles count their clips apart
        train_clips = len({(s.id.startswith("mix"), s.extra["target_id"]) for s in trained_on})

    columns = [label(v, m, s) for v in p.variants for m in p.agent_methods for s in p.seeds]
    rows, sections, goals, aks = [], [], [], []
    for r, samples in val_sets.items():
        result = {"samples": outcomes[r]}
        table = kind_table(result, samples)
        vs = {c: {b: kind_differences(result, samples, c, b) for b in p.baselines} for c in columns}
        name = f"confuser ratio {_ratio(r)}"
        for kind, per in table.items():
            rows.append({"held-out": name, "kind": kind, "n": per["clip"]["n"], "clips": per["clip"]["targets"],
                         **{f"{m} acc / cov": _cell(per.get(m)) for m in columns + list(p.baselines)},
                         **{f"{c} − clip (cov)": _diff_cell(vs[c]["clip"].get(kind)) for c in columns}})
        sections.append(f"Held-out {name} ({len(samples)} needles, "
                        f"{table['all']['clip']['targets']} target clips), accuracy / coverage [95 % interval]:\n\n"
                        + format_kind_table(table, columns + list(p.baselines))
                        + "\n\nCoverage minus CLIP top-k on the same needles, paired 95 % interval over target "
                          "clips:\n\n" + format_difference_table({f"{c} − clip": vs[c]["clip"] for c in columns}))
        for c in columns:
            goals.append({"held-out": name, "column": c, **goal_check(table, vs[c], c, p.baselines)})
        if {"aks", "clip"} <= set(p.baselines):
            aks.append(f"{name}: " + same_picks_note(result, K))
    curve_md = _curve_markdown(p, runs)
    reused = [f"{v} s{s}" for (v, s), r in runs.items() if r["reused"]]
    goal_md = _goal_markdown(goals)
    mix = ("" if p.train_mix is None else f", {n_train - n_main} of them at confuser ratio {p.train_mix:g} with "
           "texture filler (bench_filter_goal.mix_world: world seed 5, clips disjoint from the held-out sets')")
    notes = (f"{n_train} training needles from {train_clips} target clips (2.5-10 min, 100 % confuser haystack{mix}); "
             f"held-out sets of {len(next(iter(val_sets.values())))} needles"
             + (f" ({p.num_val} from the training world's held-out split, {p.num_val} more from each of the held-out "
                f"worlds of seeds {', '.join(map(str, p.heldout_seeds))}: new clips, ids prefixed sSEED-)"
                if p.heldout_seeds else "")
             + " on target and confuser clips unseen in training, at confuser "
             f"ratio{'s' if len(p.ratios) > 1 else ''} {', '.join(_ratio(r) for r in p.ratios)} (below 1.0 the rest of "
             f"the haystack is texture clips); k = {K} of every-second candidates (150-600), G = 8, lr {LR:g}, "
             f"tau 0.025 -> 0.01 (where a variant sets none of these), {p.steps} GRPO steps (after a variant's "
             f"warm-start steps), training seeds {', '.join(map(str, p.seeds))}, `{ENCODER}` "
             f"encoder, SimulatedOracle (random guess among 4 options when the coverage rule fails). Columns: "
             f"`VARIANT sSEED` = the trained agent's top-k (variants as TSPOModule options: "
             + "; ".join(f"`{v}` {VARIANT_OPTIONS[v] or PAPER_LABEL}" for v in p.variants)
             + f"); every cell: accuracy / evidence coverage [95 % bootstrap interval of the coverage over target "
               f"clips, {BOOTSTRAP_DRAWS} resamples]; `X − clip`: paired difference in coverage. Data made (or "
               f"found in --out) in {synth_s:.0f} s; held-out features and baselines in {baseline_s:.0f} s; "
               "training time inside steps: "
             + ", ".join(f"{v} s{s} {runs[(v, s)]['train_seconds']:.0f} s" for v, s in runs) + ". "
             + (f"Resumed from --out: the trained selectors of {', '.join(reused)} were reused (their training "
                "time is the run's that made them; the wall time above does not include it). " if reused else "")
             + " ".join(aks) + "\n\n" + "\n\n".join(sections)
             + "\n\nThe goals (coverage: after >= 0.95, count >= 0.95, order >= 0.90 and above the best "
               "baseline with the paired interval above 0 where it is below that; other kinds >= best baseline "
               f"- {GOAL_SLACK}; all >= {GOAL_ALL}):\n\n" + goal_md
             + (f"\n\nHeld-out coverage per kind along training (seed {p.seeds[0]}, confuser ratio "
                f"{_ratio(p.ratios[0])}):\n\n{curve_md}" if curve_md else ""))
    title = "Question world: per-kind accuracy / evidence coverage on held-out confuser needles"
    if p != PROTOCOLS["benchmark"]:
        name = next((k for k, v in PROTOCOLS.items() if v == p), None)
        title += (f" ({name} protocol)" if name else
                  f" ({train_clips} training target clips, held-out ratios {', '.join(_ratio(r) for r in p.ratios)}, "
                  f"{len(p.seeds)} seed{'s' if len(p.seeds) > 1 else ''}, {p.steps} steps)")
    return {"title": title, "command": COMMAND, "rows": rows, "notes": notes, "goals": goals}


def _ratio(r: float) -> str:
    return f"{r:.1f}" if r == int(r) else f"{r:g}"


def _cell(v: dict | None) -> str:
    if v is None:
        return "-"
    if v["coverage"] is None:
        return f"{v['accuracy']:.2f} / -"
    lo, hi = v["coverage_ci"]
    return f"{v['accuracy']:.2f} / {v['coverage']:.2f} [{lo:.2f}, {hi:.2f}]"


def _diff_cell(d: dict | None) -> str:
    return "-" if d is None else f"{d['diff']:+.2f} [{d['ci'][0]:+.2f}, {d['ci'][1]:+.2f}]"


def _curve_markdown(p: Protocol, runs: dict) -> str:
    steps = sorted(c for c in p.curve if c <= p.steps)
    if not steps:
        return ""
    lines = ["| variant | kind | " + " | ".join(f"step {c}" for c in steps) + " |", "|---|---|" + "---|" * len(steps)]
    for v in p.variants:
        curve = runs[(v, p.seeds[0])]["curve"]
        kinds = list(next(iter(curve.values()), {}))
        for kind in [k for k in kinds if k != "all"] + ["all"]:
            cells = [f"{curve[str(c)][kind]['coverage']:.2f}" if str(c) in curve and kind in curve[str(c)] else "-"
                     for c in steps]
            lines.append(f"| {v} | {kind} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _goal_markdown(goals: list[dict]) -> str:
    kinds = list(dict.fromkeys(k for g in goals for k in g if k not in ("held-out", "column")))
    kinds = [k for k in kinds if k != "all"] + (["all"] if "all" in kinds else [])
    lines = ["| held-out | column | " + " | ".join(kinds) + " |", "|---|---|" + "---|" * len(kinds)]
    lines += [f"| {g['held-out']} | {g['column']} | " + " | ".join(g.get(k, "-") for k in kinds) + " |" for g in goals]
    return "\n".join(lines)


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
    from tspo.training import TSPODataModule
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
            options, trainer_options = split_options(variant_options(label))
            model = new_module(options, 0)
            r_t, r_a = [], []

            class Log(L.Callback):
                def on_train_batch_end(self, trainer, *a, _r_t=r_t, _r_a=r_a):
                    _r_t.append(float(trainer.callback_metrics.get("train/R_T", np.nan)))
                    _r_a.append(float(trainer.callback_metrics.get("train/R_A", np.nan)))

            L.Trainer(max_steps=total_steps(options, steps), accelerator="cpu", logger=False,
                      enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                      limit_val_batches=0, num_sanity_val_steps=0, callbacks=[Log()], **trainer_options).fit(model, dm)
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


def _parser():
    import argparse

    d = PROTOCOLS["benchmark"]
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_question",
        description="the question benchmark under a protocol, or a smaller exploration of some variants (prints the "
                    "tables; `--record NAME` also stores the result as benchmarks/results/NAME.json and rewrites "
                    "RESULTS.md; `python -m benchmarks question` runs the default protocol and records it)")
    p.add_argument("--protocol", choices=list(PROTOCOLS), default="benchmark",
                   help="benchmark: the README's table (384 / 210 needles, one seed, ratio 1.0, five variants); "
                        "goal: the goal measurement (2,400 training needles from 1,200 target clips, 300 held-out "
                        "needles at confuser ratio 1.0 and 0.5, seeds 0 and 1, the tspo variant). The options below "
                        "replace its fields")
    p.add_argument("--variants", nargs="+", metavar="V", help=f"VARIANT_OPTIONS names (default {' '.join(d.variants)}; "
                   f"all: {' '.join(VARIANT_OPTIONS)})")
    p.add_argument("--steps", type=int, help=f"GRPO steps per training run (default {d.steps})")
    p.add_argument("--seeds", type=int, nargs="+", help="training seeds (default: the protocol's)")
    p.add_argument("--num-train", type=int, help="training needles")
    p.add_argument("--train-targets", type=int, help="training target clips (default: training needles // 4)")
    p.add_argument("--num-val", type=int, help="held-out needles per held-out set")
    p.add_argument("--val-targets", type=int, help="held-out target clips (default: held-out needles // 2)")
    p.add_argument("--ratios", type=float, nargs="+", help="confuser ratios of the held-out sets")
    p.add_argument("--curve", type=int, nargs="*", help="steps at which to evaluate along training (none: no curve)")
    p.add_argument("--baselines", nargs="+", help=f"baseline methods (default {' '.join(d.baselines)})")
    p.add_argument("--train-mix", type=float, metavar="R", help="also train on 1,200 needles at confuser ratio R "
                   "with texture filler (bench_filter_goal.mix_world; e.g. 0.5)")
    p.add_argument("--heldout-seeds", type=int, nargs="+", metavar="S", help="also evaluate on num-val more "
                   "held-out needles per ratio from a world rendered with each of these seeds (new clips; not 0 or 5, "
                   "the training worlds'): narrower intervals near the ceiling")
    p.add_argument("--agent-methods", nargs="+", help="how each trained variant picks (default tspo; e.g. tspo+aks)")
    p.add_argument("--out", metavar="DIR", help="keep the worlds, features and trained selectors here and reuse "
                   "them when run again (resume); default: a temporary folder")
    p.add_argument("--progress", action="store_true", help="progress bars for rendering and feature extraction")
    p.add_argument("--record", metavar="NAME", help="store the result as benchmarks/results/NAME.json with this "
                   "command line and rewrite benchmarks/RESULTS.md")
    p.add_argument("--note", help="a sentence put before the notes (e.g. what the run is a baseline for)")
    p.add_argument("--only-kind", metavar="KIND", help="instead: train on this question kind alone and print the "
                   "training R_T / R_A per 500 steps and the held-out coverage (diagnose_kind)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    import sys

    from benchmarks.runner import finish, machine_info

    a = _parser().parse_args(argv)
    machine = machine_info()   # the load average before the run
    if a.only_kind:
        variants = tuple(a.variants or ("tspo", "tspo+evidence"))
        try:
            replace(PROTOCOLS["benchmark"], variants=variants).check()
        except ValueError as exc:
            print(f"bench_question: error: {exc}", file=sys.stderr)
            return 2
        print(json.dumps(diagnose_kind(a.only_kind, a.steps or 3000, variants), indent=2))
        return 0
    given = {"variants": a.variants, "steps": a.steps, "seeds": a.seeds, "num_train": a.num_train,
             "train_targets": a.train_targets, "num_val": a.num_val, "val_targets": a.val_targets,
             "ratios": a.ratios, "curve": a.curve, "baselines": a.baselines, "agent_methods": a.agent_methods,
             "train_mix": a.train_mix, "heldout_seeds": a.heldout_seeds}
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in given.items() if v is not None}
    start = time.perf_counter()
    try:
        result = run(PROTOCOLS[a.protocol], out_dir=a.out, progress=a.progress, **overrides)
    except ValueError as exc:
        print(f"bench_question: error: {exc}", file=sys.stderr)
        return 2
    return finish("benchmarks.bench_question", sys.argv[1:] if argv is None else list(argv), result, a.record, start,
                  machine, note=a.note)


if __name__ == "__main__":
    raise SystemExit(main())
