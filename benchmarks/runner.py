"""Run ``benchmarks/bench_*.py`` modules and rewrite ``benchmarks/RESULTS.md`` (see the package doc)."""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import shlex
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS_DIR = HERE / "results"
RESULTS_MD = HERE / "RESULTS.md"
REQUIRED = ("title", "command", "rows", "notes")


class BenchmarkError(ValueError):
    """A benchmark name that does not exist, or a ``run()`` that returned the wrong shape."""


def discover(directory: Path = HERE) -> list[str]:
    """Short names (``agent`` for ``bench_agent.py``) of every benchmark module, sorted."""
    return sorted(p.stem[len("bench_"):] for p in directory.glob("bench_*.py"))


def _short(name: str) -> str:
    return name[len("bench_"):] if name.startswith("bench_") else name.removesuffix(".py")


def machine_info() -> dict[str, Any]:
    """CPU model, logical cores, torch and python versions, and the GPU when one is visible."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
                            "platform": platform.platform(terse=True)}
    if hasattr(os, "getloadavg"):  # > cores: the figures were taken on cores shared with other work
        info["load_1min"] = round(os.getloadavg()[0], 2)
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        info["torch"] = None
    return info


def check_result(name: str, result: Any) -> dict[str, Any]:
    """Validate a ``run()`` return value: the four keys, rows a list of dicts."""
    if not isinstance(result, dict) or any(k not in result for k in REQUIRED):
        raise BenchmarkError(f"bench_{name}.run() must return a dict with keys {REQUIRED}, got "
                             f"{sorted(result) if isinstance(result, dict) else type(result).__name__}")
    if not isinstance(result["rows"], list) or not all(isinstance(r, dict) for r in result["rows"]):
        raise BenchmarkError(f"bench_{name}.run()['rows'] must be a list of dicts (one per table row)")
    return result


def run_one(name: str) -> dict[str, Any]:
    """Import ``benchmarks.bench_NAME``, call ``run()``, return the result with date, machine, wall time.

    A benchmark that raises is recorded with its error (and an empty table), not lost.
    """
    start = time.perf_counter()
    record: dict[str, Any] = {"name": name, "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
                              "machine": machine_info()}
    try:
        module = importlib.import_module(f"benchmarks.bench_{name}")
        record.update(check_result(name, module.run()))
        record["error"] = None
    except Exception as exc:  # recorded and reported; the other benchmarks still run
        record.update({"title": f"bench_{name}", "command": f"python -m benchmarks {name}", "rows": [],
                       "notes": "", "error": f"{type(exc).__name__}: {exc}"})
        traceback.print_exc()
    record["wall_s"] = round(time.perf_counter() - start, 2)
    return record


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def command_line(module: str, argv: list[str]) -> str:
    """The exact command that ran ``python -m MODULE ARGV`` here, with the thread-count variables
    that were set (they change the timings), for a recorded result's ``command``."""
    threads = " ".join(f"{v}={os.environ[v]}" for v in THREAD_VARIABLES if v in os.environ)
    return (((threads + " ") if threads else "") + f"python -m {module} " + shlex.join(argv)).rstrip()


def finish(module: str, argv: list[str], result: dict[str, Any], record: str | None, start_s: float,
           machine: dict[str, Any], printed: Callable[[dict[str, Any]], str] | None = None,
           note: str | None = None, results_dir: Path = RESULTS_DIR, results_md: Path = RESULTS_MD) -> int:
    """The end of a benchmark's own command line: ``result["command"]`` = :func:`command_line` of ``argv``,
    ``note`` (a ``--note``) put before the notes, ``printed`` (a callable of the result, or None: the command,
    then the notes) printed, and with ``record`` the result stored (:func:`record_result`, wall time
    since ``start_s``, a ``time.perf_counter()`` value) -> the exit status 0."""
    result["command"] = command_line(module, argv)
    if note:
        result["notes"] = f"{note.strip()}\n\n{result['notes']}"
    print(printed(result) if callable(printed) else f"{result['command']}\n\n{result['notes']}")
    if record:
        path = record_result(record, check_result(record, result), time.perf_counter() - start_s, machine,
                             results_dir, results_md)
        print(f"wrote {path} and {results_md}")
    return 0


def record_result(name: str, result: dict[str, Any], wall_s: float, machine: dict[str, Any] | None = None,
                  results_dir: Path = RESULTS_DIR, results_md: Path = RESULTS_MD) -> Path:
    """Store a result that a benchmark's own command line made (e.g. ``python -m benchmarks.bench_question
    --record NAME``, its ``command`` the exact command) as ``results/NAME.json``, shaped like
    :func:`run_one`'s, and rewrite RESULTS.md; returns the JSON path."""
    record = {"name": name, "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
              "machine": machine or machine_info(), **check_result(name, result), "error": None,
              "wall_s": round(wall_s, 2)}
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{name}.json"
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    results_md.write_text(render_results(results_dir))
    return path


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "nan"
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:,.0f}"
    if value is None:
        return "-"
    return str(value).replace("|", "\\|")


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """Rows -> a Markdown table; columns in order of first appearance across rows."""
    if not rows:
        return "_(no rows)_"
    cols = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def render_section(record: dict[str, Any]) -> str:
    m = record["machine"]
    machine = f"{m.get('cpu')} ({m.get('cores')} cores), torch {m.get('torch')}, python {m.get('python')}"
    if m.get("gpu"):
        machine += f", GPU {m['gpu']}"
    if m.get("load_1min") is not None:
        machine += f", load average {m['load_1min']} at the start"
    parts = [f"## {record['title']} (`{record['name']}`)", "", f"- command: `{record['command']}`",
             f"- date: {record['date']} · wall time {record.get('wall_s', '?')} s",
             f"- machine: {machine}", ""]
    if record.get("error"):
        parts += [f"**FAILED**: `{record['error']}`", ""]
    parts += [markdown_table(record["rows"]), ""]
    if record.get("notes"):
        parts += [record["notes"].strip(), ""]
    return "\n".join(parts)


def render_results(results_dir: Path = RESULTS_DIR) -> str:
    """RESULTS.md text from every stored ``results/*.json`` (sorted by benchmark name)."""
    records = [json.loads(p.read_text()) for p in sorted(results_dir.glob("*.json"))]
    head = ["# Benchmark results", "",
            "Written by `python -m benchmarks` (every `benchmarks/bench_*.py`) or `python -m benchmarks NAME` "
            "(one section; the others keep their last figures). Each section names the command, the date and "
            "the machine it ran on. Do not edit by hand: the next run rewrites this file.", ""]
    if not records:
        head.append("_No results yet: run `python -m benchmarks`._")
    return "\n".join(head + [render_section(r) for r in records]).rstrip() + "\n"


def run_benchmarks(names: Sequence[str] | None = None, results_dir: Path = RESULTS_DIR,
                   results_md: Path = RESULTS_MD) -> list[dict[str, Any]]:
    """Run the named benchmarks (all when None), store their results, rewrite RESULTS.md."""
    available = discover()
    wanted = [_short(n) for n in names] if names else available
    unknown = [n for n in wanted if n not in available]
    if unknown:
        raise BenchmarkError(f"no benchmark named {unknown}; available: {', '.join(available) or '(none)'}")
    results_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for name in wanted:
        print(f"== bench_{name}", flush=True)
        record = run_one(name)
        (results_dir / f"{name}.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
        print(render_section(record), flush=True)
        records.append(record)
    results_md.write_text(render_results(results_dir))
    print(f"wrote {results_md}")
    return records


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description="run tspo benchmarks, rewrite RESULTS.md")
    p.add_argument("names", nargs="*", help="benchmarks to run (e.g. agent or bench_agent); default: all")
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    if args.list:
        print("\n".join(discover()))
        return 0
    try:
        records = run_benchmarks(args.names or None)
    except BenchmarkError as exc:
        print(f"python -m benchmarks: error: {exc}", file=sys.stderr)
        return 2
    return 1 if any(r.get("error") for r in records) else 0
