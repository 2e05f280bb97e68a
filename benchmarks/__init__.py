"""Benchmarks of tspo: speed, memory and learning figures that the README quotes.

Every ``benchmarks/bench_*.py`` module defines ``run() -> dict`` returning
``{"title": str, "command": str, "rows": list[dict], "notes": str}``. ``python -m benchmarks``
runs them all (``python -m benchmarks NAME ...`` runs some), stores each result with the date and
the machine in ``benchmarks/results/NAME.json`` and rewrites ``benchmarks/RESULTS.md`` from every
stored result, so running one benchmark keeps the others' figures.
"""

from benchmarks.runner import discover, machine_info, render_results, run_benchmarks

__all__ = ["discover", "machine_info", "render_results", "run_benchmarks"]
