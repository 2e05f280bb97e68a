"""The benchmark runner: runs bench modules, keeps other sections, records failures and the machine."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from benchmarks import runner


def _fake_module(name: str, run) -> None:
    mod = types.ModuleType(f"benchmarks.bench_{name}")
    mod.run = run
    sys.modules[f"benchmarks.bench_{name}"] = mod


@pytest.fixture
def fakes(monkeypatch):
    _fake_module("alpha", lambda: {"title": "Alpha speed", "command": "python -m benchmarks alpha",
                                   "rows": [{"T": 128, "ms": 1.23456}, {"T": 1024, "ms": 9.5, "peak_mb": 12.0}],
                                   "notes": "alpha notes"})
    _fake_module("beta", lambda: {"title": "Beta", "command": "x", "rows": [{"a": 1}], "notes": ""})
    _fake_module("broken", lambda: {"rows": []})
    monkeypatch.setattr(runner, "discover", lambda directory=runner.HERE: ["alpha", "beta", "broken"])
    yield
    for n in ("alpha", "beta", "broken"):
        sys.modules.pop(f"benchmarks.bench_{n}", None)


def test_run_all_then_one_keeps_other_sections(fakes, tmp_path: Path) -> None:
    res, md = tmp_path / "results", tmp_path / "RESULTS.md"
    records = runner.run_benchmarks(["alpha", "bench_beta"], res, md)
    assert [r["name"] for r in records] == ["alpha", "beta"]
    text = md.read_text()
    assert "## Alpha speed" in text and "## Beta" in text and "`python -m benchmarks alpha`" in text
    assert "| T | ms | peak_mb |" in text and "| 128 | 1.235 | - |" in text
    assert "cores), torch " in text and "alpha notes" in text
    runner.run_benchmarks(["beta"], res, md)  # one section re-run: alpha's figures stay
    assert "## Alpha speed" in md.read_text()


def test_bad_results_and_names_are_reported(fakes, tmp_path: Path) -> None:
    res, md = tmp_path / "results", tmp_path / "RESULTS.md"
    (record,) = runner.run_benchmarks(["broken"], res, md)
    assert "must return a dict with keys" in record["error"]
    assert "**FAILED**" in md.read_text()
    with pytest.raises(runner.BenchmarkError, match="no benchmark named"):
        runner.run_benchmarks(["gamma"], res, md)


def test_machine_info_names_cpu_cores_torch() -> None:
    info = runner.machine_info()
    assert info["cores"] >= 1 and info["cpu"] and info["torch"]


def test_record_result_stores_a_command_line_run_beside_the_others(fakes, tmp_path: Path) -> None:
    res, md = tmp_path / "results", tmp_path / "RESULTS.md"
    runner.run_benchmarks(["alpha"], res, md)
    result = {"title": "Gamma (small)", "command": "python -m benchmarks.bench_gamma --steps 5", "rows": [{"a": 2}],
              "notes": "n"}
    path = runner.record_result("gamma_small", result, 1.5, results_dir=res, results_md=md)
    assert path == res / "gamma_small.json"
    text = md.read_text()
    assert "## Alpha speed" in text and "## Gamma (small)" in text
    assert "`python -m benchmarks.bench_gamma --steps 5`" in text and "wall time 1.5 s" in text
    with pytest.raises(runner.BenchmarkError, match="must return a dict"):
        runner.record_result("bad", {"rows": []}, 1.0, results_dir=res, results_md=md)


def test_finish_sets_the_command_puts_the_note_first_prints_and_records(monkeypatch, tmp_path: Path, capsys) -> None:
    """The one epilogue of a benchmark's own command line (bench_agent, bench_train, bench_question, ...)."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    res, md = tmp_path / "results", tmp_path / "RESULTS.md"
    result = {"title": "Delta", "rows": [{"a": 1}], "notes": "measured"}
    status = runner.finish("benchmarks.bench_delta", ["--seeds", "0"], result, "delta", 0.0, {"cores": 2},
                           note="what it shows", results_dir=res, results_md=md)
    assert status == 0 and result["command"] == "python -m benchmarks.bench_delta --seeds 0"
    assert result["notes"] == "what it shows\n\nmeasured"
    out = capsys.readouterr().out
    assert out.startswith("python -m benchmarks.bench_delta --seeds 0\n\nwhat it shows") and "wrote" in out
    stored = json.loads((res / "delta.json").read_text())
    assert stored["command"] == result["command"] and "## Delta" in md.read_text()
    runner.finish("benchmarks.bench_delta", [], {"title": "E", "rows": [], "notes": "n"}, None, 0.0, {},
                  lambda r: "custom " + r["command"], results_dir=res, results_md=md)
    assert capsys.readouterr().out == "custom python -m benchmarks.bench_delta\n"
    assert not (res / "E.json").exists()


def test_command_line_is_the_exact_rerun_command(monkeypatch) -> None:
    """A recorded result's command re-runs it: thread counts that were set (they change timings) lead,
    arguments are shell-quoted."""
    from benchmarks.runner import command_line

    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    got = command_line("benchmarks.bench_question", ["--note", "two words", "--seeds", "0", "1"])
    assert got == "OMP_NUM_THREADS=1 python -m benchmarks.bench_question --note 'two words' --seeds 0 1"
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert command_line("benchmarks.bench_demo", []) == "python -m benchmarks.bench_demo"
