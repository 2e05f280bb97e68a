"""``tspo eval``: compare frame-selection methods on a manifest with an oracle (README, Evaluation).

For every sample: candidate features once (cached), then for each method the k picks, then one
batched oracle call that answers all methods' selections of that sample. Reported per method:

- ``accuracy``: share of *answered* queries whose letter is the answer. A *failed* query
  (``OracleAnswer.is_failed``: an exception, an HTTP failure, malformed server JSON) is counted
  under ``failed`` and left out of the accuracy, never scored as wrong. An *unparsed* answer (the
  model answered but no option letter could be read) is a wrong answer: it enters the accuracy
  as 0 and is also counted under ``unparsed``;
- ``target_fraction``: mean fraction of picks inside the target spans (R_T), over the samples that
  have target spans; ``null`` when none has;
- ``seconds_per_sample``: mean wall time of scoring + the selection rule on the candidate features
  (feature extraction is shared by all scored methods and reported once, as
  ``feature_seconds_per_sample``);
- ``n``: samples with an answered query (unparsed ones included).

Every setting left unset (k, fps, max_candidates, frame size) is the selector's
(:class:`~tspo.settings.SelectionSettings`). Oracle frames are decoded whole (short side
``frame_size``, aspect ratio kept, no centre crop).

The same numbers are broken down by duration bucket (``by_duration``) and sample kind
(``by_kind``). ``evaluate_samples`` is the Python entry point (the demo calls it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tspo.agents import METHODS, get_method
from tspo.agents.methods import DRAWABLE_RULES
from tspo.errors import TSPOError
from tspo.evaluation.answer_log import AnswerLogger, draw_selections
from tspo.evaluation.judge import (
    DURATION_BUCKETS,
    Outcome,
    answered_accuracy,
    duration_bucket,
    judge_selections,
    outcome,
)
from tspo.evaluation.kind_report import format_kind_table, kind_table
from tspo.evaluation.readers import READERS, read_benchmark
from tspo.evaluation.reflect import check_reflection, select_and_answer
from tspo.features.cache import FeatureCache
from tspo.features.encoders import EncoderWeightsError
from tspo.features.extract import extract_features
from tspo.manifest import Sample, load_manifest
from tspo.progress import progress_bar
from tspo.rewards import SPEC_HELP, build_oracle
from tspo.rewards import check_oracle_fits as _check_oracle_fits
from tspo.selection.selector import TSPOSelector
from tspo.selection.zoom import sample_zoom_source
from tspo.selection.zoom_config import add_zoom_arguments, zoom_config_from_args
from tspo.settings import DEFAULT_ENCODER, add_settings_arguments
from tspo.video import VideoError

__all__ = ["DURATION_BUCKETS", "EvalConfigError", "Outcome", "check_methods", "duration_bucket", "evaluate_samples",
           "format_table", "main", "summarise"]

ON_ERROR = ("skip", "stop")
# What a broken sample raises while its video is read: skipped (or the run stopped) per --on-error.
SAMPLE_ERRORS = (VideoError, OSError, RuntimeError)



class EvalConfigError(TSPOError, ValueError):
    """Bad arguments to an evaluation (unknown method, missing selector, bad k, bad oracle spec)."""


def check_methods(methods: Sequence[str] | str) -> list[str]:
    """A list or comma-separated string of method names (``tspo.agents.METHODS`` or ``SCORER+RULE``)
    -> validated, de-duplicated list."""
    names = [m.strip() for m in (methods.split(",") if isinstance(methods, str) else methods) if m.strip()]
    bad = []
    for name in names:
        try:
            get_method(name)
        except ValueError:
            bad.append(name)
    if bad or not names:
        raise EvalConfigError(f"unknown or no methods {bad or names!r}; choose from {', '.join(METHODS)} "
                              "or SCORER+RULE (e.g. tspo+bin-max)")
    return list(dict.fromkeys(names))


def _stats(items: list[Outcome]) -> dict[str, Any]:
    answered = [o for o in items if o.correct is not None]
    with_target = [o.target_fraction for o in items if o.target_fraction is not None]
    return {
        "accuracy": answered_accuracy(items),
        "target_fraction": float(np.mean(with_target)) if with_target else None,
        "seconds_per_sample": float(np.mean([o.seconds for o in items])) if items else None,
        "n": len(answered),
        # zoom / reflection runs only (an eval without them keeps its eval.json shape)
        **({"frames_encoded": float(np.mean([o.frames_encoded for o in items])),
            "oracle_calls": float(np.mean([o.oracle_calls for o in items]))}
           if items and all(o.frames_encoded is not None for o in items) else {}),
    }


def summarise(outcomes: list[Outcome], methods: Sequence[str]) -> dict[str, Any]:
    """Outcomes -> the eval.json dict: ``methods``, ``by_duration``, ``by_kind``, ``failed``,
    ``unparsed`` (counts per method) and a few examples of each."""
    def table(subset: list[Outcome]) -> dict[str, Any]:
        return {m: _stats([o for o in subset if o.method == m]) for m in methods}

    buckets = [label for _, label in DURATION_BUCKETS if any(o.bucket == label for o in outcomes)]
    kinds = sorted({o.kind for o in outcomes})
    failures = [o for o in outcomes if o.correct is None]
    unparsed = [o for o in outcomes if o.unparsed]
    return {
        "methods": table(outcomes),
        "by_duration": {b: table([o for o in outcomes if o.bucket == b]) for b in buckets},
        "by_kind": {k: table([o for o in outcomes if o.kind == k]) for k in kinds},
        "failed": {m: sum(o.method == m for o in failures) for m in methods},
        "failure_examples": [{"sample_id": o.sample_id, "method": o.method, "error": o.error} for o in failures[:5]],
        "unparsed": {m: sum(o.method == m for o in unparsed) for m in methods},
        "unparsed_examples": [{"sample_id": o.sample_id, "method": o.method, "raw": o.raw} for o in unparsed[:5]],
    }


def evaluate_samples(
    samples: Sequence[Any],
    methods: Sequence[str] | str,
    oracle: Any,
    num_frames: int | None,
    selector: Any,
    fps: float | None = None,
    max_candidates: int | None = None,
    feature_fn: Callable[[Any], Any] | None = None,
    frame_size: int | None = None,
    progress: bool = True,
    per_sample: bool = False,
    log_draws: int = 0,
    log_temperature: float = 0.05,
    seed: int = 0,
    strategy: str = "single",
    zoom: Any = None,
    reflect: int = 0,
    reflect_threshold: float = 0.5,
    on_error: str = "skip",
    path_hint: str = "",
) -> dict[str, Any]:
    """Run every method on every sample and ask ``oracle``; returns the eval.json dict.

    ``samples``: manifest :class:`~tspo.data_synth.Sample` objects. ``selector``: a
    :class:`~tspo.TSPOSelector` (its agent scores ``tspo``; its encoder scores the CLIP-based
    baselines). ``feature_fn(sample) -> VideoFeatures`` overrides how candidate features are
    obtained (default: the selector's own :meth:`~tspo.TSPOSelector.features`, as at inference).
    ``num_frames``, ``fps``, ``max_candidates``, ``frame_size`` (short side of the whole frames decoded
    for oracles that need pixels): None takes the selector's :attr:`~tspo.TSPOSelector.settings`.
    ``per_sample``: also return every (sample, method) outcome under ``"samples"``.
    ``log_draws``: besides each method's own picks, ask the oracle about this many random
    selections per sample and method (Gumbel-top-k over the method's scores / ``log_temperature``;
    uniform: every k-subset equally likely), so a log of the answers (``--log-answers``) holds
    groups to build preference pairs from. Their answers do not enter the reported figures.
    ``strategy="zoom"`` (a :class:`~tspo.selection.zoom.ZoomConfig` in ``zoom``) selects coarse-to-fine with the
    scored methods (``uniform`` stays single-stage); ``reflect`` > 0 re-selects up to that many times
    while the oracle's confidence is below ``reflect_threshold`` (:mod:`tspo.evaluation.reflect`). Either adds
    ``frames_encoded`` and ``oracle_calls`` per method.
    ``on_error``: a sample whose video is missing or cannot be read is ``"skip"``-ped (its reason kept
    under ``"skipped"``, the others evaluated) or ``"stop"``-s the loop (``"stopped"``: the figures
    cover the samples before it). ``path_hint``: added to a missing video's reason (where its path
    resolves from). Samples with a question kind (``extra["qa_kind"]``, ``tspo synth``) add
    ``by_question_kind`` (:func:`tspo.evaluation.kind_report.kind_table`).
    """

    methods = check_methods(methods)
    if on_error not in ON_ERROR:
        raise EvalConfigError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    settings = selector.settings.override(num_frames, fps, max_candidates, frame_size)
    if not samples:
        raise EvalConfigError("no samples to evaluate; check the manifest")
    feature_fn = feature_fn or _default_feature_fn(selector, settings.fps, settings.max_candidates)
    drawn_methods = [m for m in methods if get_method(m).rule in DRAWABLE_RULES] if log_draws else []
    if log_draws and not drawn_methods:
        raise EvalConfigError(f"log_draws needs a method whose rule is one of {', '.join(DRAWABLE_RULES)} (random draws "
                              "from its scores), e.g. uniform, clip or tspo")
    generator = torch.Generator().manual_seed(seed)
    outcomes: list[Outcome] = []
    feature_seconds: list[float] = []
    skipped: list[dict[str, str]] = []
    stopped = None
    for sample in progress_bar(samples, desc="eval", unit="sample", disable=not progress):
        try:
            outcomes += _sample_outcomes(sample, methods, oracle, settings, selector, feature_fn, strategy, zoom,
                                         reflect, reflect_threshold, drawn_methods, log_draws, log_temperature,
                                         generator, feature_seconds)
        except SAMPLE_ERRORS as err:
            reason = {"sample_id": sample.id, "error": missing_source(sample, path_hint) or f"{type(err).__name__}: {err}"}
            if on_error == "stop":
                stopped = reason
                break
            skipped.append(reason)
    result = summarise(outcomes, methods)
    result["feature_seconds_per_sample"] = float(np.mean(feature_seconds)) if feature_seconds else None
    result["num_samples"] = len({o.sample_id for o in outcomes})
    result["skipped"] = skipped
    if stopped is not None:
        result["stopped"] = stopped
    samples_out = [dict(o.__dict__) for o in outcomes]
    if any("qa_kind" in s.extra for s in samples) and samples_out:
        result["by_question_kind"] = kind_table({"samples": samples_out}, samples)
    if per_sample:
        result["samples"] = samples_out
    return result


def missing_source(sample: Any, path_hint: str = "") -> str | None:
    """Why ``sample`` cannot be read when one of its video files does not exist (``path_hint``: where
    its path resolved from, e.g. the manifest's folder), else None."""
    for src in dict.fromkeys(sample.sources() if isinstance(sample, Sample) else []):
        if not Path(src).is_file():
            return f"video {src!r} does not exist" + (f" ({path_hint})" if path_hint else "")
    return None


def _sample_outcomes(sample: Any, methods: Sequence[str], oracle: Any, settings: Any, selector: Any,
                     feature_fn: Callable[[Any], Any], strategy: str, zoom: Any, reflect: int, reflect_threshold: float,
                     drawn_methods: Sequence[str], log_draws: int, log_temperature: float,
                     generator: torch.Generator, feature_seconds: list[float]) -> list[Outcome]:
    """Every method's outcome on one sample (one oracle call for the single-stage methods)."""
    if strategy != "single" or reflect:
        return _adaptive_outcomes(sample, methods, oracle, settings.num_frames, selector, feature_fn,
                                  strategy, zoom, reflect, reflect_threshold, settings.frame_size)
    start = time.perf_counter()
    feats = feature_fn(sample)
    feature_seconds.append(time.perf_counter() - start)
    picks, seconds, scores = {}, {}, {}
    for method in methods:
        start = time.perf_counter()
        positions, scores[method] = selector.select_from_features(feats.features, sample.question,
                                                                  settings.num_frames, method,
                                                                  options=sample.options or None)
        seconds[method] = time.perf_counter() - start
        picks[method] = np.asarray(positions, dtype=np.int64)
    num_t = int(feats.features.shape[0])
    drawn = {m: draw_selections(scores[m], (num_t,), int(picks[m].size), log_draws, log_temperature,
                                generator).numpy() for m in drawn_methods}                     # [G, k] each
    # Random draws per method, only for the answer log: one entry per draw, keyed "method#g"; their
    # answers come after the methods' and are left out of the figures.
    draw_picks = {f"{m}#{g}": p for m, d in drawn.items() for g, p in enumerate(d)}
    judged = judge_selections(oracle, [sample], [{**picks, **draw_picks}], [feats.timestamps_s],
                              settings.frame_size, [seconds])
    return judged[:len(methods)]


def _adaptive_outcomes(sample: Any, methods: Sequence[str], oracle: Any, num_frames: int, selector: Any,
                       feature_fn: Callable[[Any], Any], strategy: str, zoom: Any, reflect: int, threshold: float,
                       frame_size: int | None) -> list[Outcome]:
    """Zoom and/or reflection for one sample: one select-and-answer loop per method."""

    out = []
    feats = feature_fn(sample) if strategy == "single" or "uniform" in methods else None
    for method in methods:
        zoomed = strategy == "zoom" and method != "uniform"  # zoom needs scores to choose spans
        start = time.perf_counter()
        res = select_and_answer(selector, sample.video, sample.question, sample.options, oracle, num_frames,
                                rounds=reflect, threshold=threshold, strategy="zoom" if zoomed else "single",
                                method=method, zoom=zoom, features=feats,
                                source=sample_zoom_source(sample, selector, zoom) if zoomed else None,
                                sample_id=sample.id, meta=sample.oracle_meta(), frame_size=frame_size)
        out.append(outcome(sample, method, res.answer, res.timestamps_s, time.perf_counter() - start,
                           frames_encoded=res.frames_encoded, oracle_calls=res.oracle_calls))
    return out


def _default_feature_fn(selector: Any, fps: float, max_candidates: int | None) -> Callable[[Any], Any]:
    def features(sample: Any) -> Any:
        return selector.features(sample.video, fps=fps, max_candidates=max_candidates)

    return features


def check_oracle_fits(spec: str, samples: Sequence[Any]) -> None:
    """:func:`tspo.rewards.check_oracle_fits` (the one rule, shared with training) for ``--oracle``."""
    _check_oracle_fits(spec, samples, "--oracle")


def _fmt(v: Any, pct: bool = False) -> str:
    if v is None:
        return "-"
    return f"{v:.3f}" if not pct else f"{100 * v:.1f}%"


def format_table(result: dict[str, Any]) -> str:
    """The printed report: one overall table, then the duration and kind breakdowns."""
    def rows(title: str, table: dict[str, Any]) -> list[str]:
        out = [title, f"  {'method':<9} {'accuracy':>9} {'in target':>10} {'s/sample':>10} {'n':>5}"]
        for m, s in table.items():
            out.append(f"  {m:<9} {_fmt(s['accuracy'], True):>9} {_fmt(s['target_fraction'], True):>10} "
                       f"{_fmt(s['seconds_per_sample']):>10} {s['n']:>5}"
                       + (f"  frames {s['frames_encoded']:.0f}, oracle calls {s['oracle_calls']:.2f}"
                          if "frames_encoded" in s else ""))
        return out

    lines = rows(f"all samples ({result.get('num_samples', '?')})", result["methods"])
    for group in ("by_duration", "by_kind"):
        tables = result.get(group, {})
        if len(tables) > 1:  # a single group would repeat the overall table
            for name, table in tables.items():
                lines += rows(f"{group.replace('by_', '')} = {name}", table)
    failed = {m: n for m, n in result.get("failed", {}).items() if n}
    if failed:
        lines.append(f"oracle failures (not scored): {failed}")
    unparsed = {m: n for m, n in result.get("unparsed", {}).items() if n}
    if unparsed:
        lines.append(f"unparsed answers (scored as wrong): {unparsed}")
    return "\n".join(lines)


def format_kinds(result: dict[str, Any]) -> str:
    """The per-question-kind table (``by_question_kind``), or "" when the samples carry no kind."""

    if not result.get("by_question_kind"):
        return ""
    return ("per question kind (accuracy / share of selections that show the evidence [95 % bootstrap interval "
            "over target clips]; n = needles, clips = target clips):\n"
            + format_kind_table(result["by_question_kind"], list(result["methods"])))


def format_skipped(result: dict[str, Any]) -> str:
    """The samples left out (``skipped``) or the one that stopped the run (``stopped``), with reasons."""
    lines = []
    if result.get("skipped"):
        lines.append(f"skipped {len(result['skipped'])} sample(s) that could not be read (not scored):")
        lines += [f"  {r['sample_id']}: {r['error']}" for r in result["skipped"]]
    if result.get("stopped"):
        r = result["stopped"]
        lines.append(f"stopped at sample {r['sample_id']} (--on-error stop): {r['error']}; the figures cover the "
                     "samples before it")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tspo eval", description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="example:\n  tspo eval --manifest data/manifest.jsonl --selector runs/exp1/selector "
                                       "--methods tspo,uniform,aks -k 8 --oracle simulated --out eval.json")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--manifest", help="JSON Lines manifest (schema: docs/INTERFACES.md, Manifest)")
    src.add_argument("--benchmark", choices=sorted(READERS),
                     help="read a public benchmark's annotations instead (needs --annotations)")
    p.add_argument("--annotations", help="benchmark annotation file (MLVU: the json/ folder)")
    p.add_argument("--video-root", help="folder of the benchmark's videos (default: its published layout)")
    p.add_argument("--methods", default=None,
                   help="comma-separated: " + ",".join(METHODS) + " or SCORER+RULE (default: all of them, plus the "
                        "selector's own method when it is another, e.g. tspo+shot for a filter selector)")
    p.add_argument("--selector", help="trained selector directory (needed for the tspo method)")
    p.add_argument("--encoder", help="encoder spec for the other methods when no --selector is given "
                                     f"(default {DEFAULT_ENCODER}); with --selector it overrides the stored one")
    p.add_argument("--oracle", default="simulated", help=SPEC_HELP)
    add_settings_arguments(p, "the oracle's frames")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N samples")
    p.add_argument("--seed", type=int, default=0, help="seed of the oracle's guesses")
    p.add_argument("--feature-cache", metavar="DIR", help="candidate feature cache (default $TSPO_CACHE/features; "
                   "pass a training run's RUN/feature_cache to reuse what it encoded)")
    p.add_argument("--out", help="write the result as JSON here")
    p.add_argument("--per-sample", action="store_true", help="keep per-sample picks and answers in --out")
    p.add_argument("--log-answers", metavar="FILE",
                   help="append every oracle answer to this JSON Lines answer log (preference pairs for "
                        "`tspo train` with model.objective dpo / model.replay_ratio; format in docs/PREFERENCE.md)")
    p.add_argument("--log-draws", type=int, default=0, metavar="N",
                   help="with --log-answers: also ask about N random selections per sample and method "
                        "whose rule is top-k or uniform, so the log holds groups to compare (not in the figures)")
    p.add_argument("--log-temperature", type=float, default=0.05,
                   help="temperature of the --log-draws Gumbel-top-k over a method's scores (default 0.05)")
    p.add_argument("--reflect", type=int, default=0, metavar="R",
                   help="reflection: while the oracle's confidence is below --reflect-threshold, re-select with the "
                        "inspected spans suppressed, up to R more times (needs option probabilities; default 0)")
    p.add_argument("--reflect-threshold", type=float, default=0.5,
                   help="confidence (largest option probability) that ends reflection (default 0.5)")
    p.add_argument("--on-error", choices=ON_ERROR, default="skip",
                   help="a sample whose video is missing or unreadable: skip it (reason printed and counted in "
                        "--out) or stop there (default skip); either way the other samples' results are written")
    add_zoom_arguments(p)
    return p


def load_samples(args: argparse.Namespace) -> list[Any]:
    if args.manifest:
        samples = load_manifest(args.manifest)
    else:
        if not args.annotations:
            raise EvalConfigError("--benchmark needs --annotations FILE (the benchmark's annotation file)")
        samples = read_benchmark(args.benchmark, args.annotations, args.video_root)
    return samples[: args.limit] if args.limit is not None else samples


def make_selector(selector_dir: str | None, encoder: str | None, methods: Iterable[str],
                  feature_cache: str | None = None) -> Any:
    cache = FeatureCache(feature_cache) if feature_cache else None
    if selector_dir:
        return TSPOSelector.from_pretrained(selector_dir, encoder=encoder, cache=cache)
    agent_methods = [m for m in methods if get_method(m).needs_agent]
    if agent_methods:
        raise EvalConfigError(f"methods {agent_methods} score with the trained agent: each needs --selector DIR "
                              "(a trained selector); drop them from --methods to compare only the baselines")
    return TSPOSelector(encoder=encoder or DEFAULT_ENCODER, cache=cache)


def prefetch_features(samples: Sequence[Any], selector: Any, settings: Any, strategy: str = "single") -> Any:
    """The samples' candidate features into the selector's cache in one pass (``tspo.features.extract``:
    decode workers, packed encoder calls, each video once), before the per-sample loop reads them.
    Unreadable videos are reported here and left to the loop's own handling."""
    if selector.cache is None or strategy != "single":
        return None

    summary = extract_features([s.video for s in samples], selector.encoder, selector.cache, settings.fps,
                               settings.max_candidates)
    if summary.failed:
        print(summary.text())
    return summary


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        methods = check_methods(METHODS if args.methods is None else args.methods)
        if args.limit is not None and args.limit <= 0:
            raise EvalConfigError(f"--limit must be positive, got {args.limit}")
        samples = load_samples(args)
        selector = make_selector(args.selector, args.encoder, methods, args.feature_cache)
        selector.settings = selector.settings.override(cut_distance=args.cut_distance)   # the shot rule's cut
        if args.methods is None:  # the registry's named methods and the selector's own (tspo+shot: a filter selector)
            methods = list(dict.fromkeys([*methods, selector.method]))
        settings = selector.settings.override(args.num_frames, args.fps, args.max_candidates, args.frame_size)
        prefetch_features(samples, selector, settings, args.strategy)
        oracle = build_oracle(args.oracle, encoder=selector.encoder, seed=args.seed)
        check_oracle_fits(args.oracle, samples)
        check_reflection(args.reflect, args.reflect_threshold)
        zoom_cfg = zoom_config_from_args(args)
        if args.log_draws < 0 or (args.log_draws and not args.log_answers) or not args.log_temperature > 0:
            raise EvalConfigError("--log-draws must be >= 0 and needs --log-answers FILE; --log-temperature must be > 0")
        if args.log_answers:
            oracle = AnswerLogger(oracle, args.log_answers, policy="eval:" + ",".join(methods))
        hint = (f"a manifest's relative paths resolve from the manifest's folder, {Path(args.manifest).parent.resolve()}"
                if args.manifest else "benchmark videos resolve from --video-root")
        result = evaluate_samples(samples, methods, oracle, settings.num_frames, selector, fps=settings.fps,
                                  max_candidates=settings.max_candidates, frame_size=settings.frame_size,
                                  per_sample=args.per_sample, log_draws=args.log_draws,
                                  log_temperature=args.log_temperature, seed=args.seed, strategy=args.strategy,
                                  zoom=zoom_cfg, reflect=args.reflect, reflect_threshold=args.reflect_threshold,
                                  on_error=args.on_error, path_hint=hint)
    except (ValueError, EncoderWeightsError) as exc:  # our input errors: ValueError subclasses naming the fix
        print(f"tspo eval: error: {exc}", file=sys.stderr)
        return 2
    result["config"] = {"manifest": args.manifest, "benchmark": args.benchmark, "methods": methods,
                        "selector": args.selector, "encoder": selector.encoder.spec, "oracle": args.oracle,
                        **settings.sampling_config(), "selector_method": selector.method, "seed": args.seed,
                        **({"strategy": args.strategy, "zoom": asdict(zoom_cfg),
                            "reflect": args.reflect, "reflect_threshold": args.reflect_threshold}
                           if args.strategy != "single" or args.reflect else {})}
    if result["num_samples"]:
        print(format_table(result))
        if format_kinds(result):
            print(format_kinds(result))
    if format_skipped(result):
        print(f"tspo eval: {format_skipped(result)}", file=sys.stderr)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 1 if result.get("stopped") or not result["num_samples"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
