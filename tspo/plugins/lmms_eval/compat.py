"""Known-bad states of lmms-eval's environment, checked before ``tspo_video`` is used.

lmms-eval 0.7.3 catches errors inside ``simple_evaluate``, logs "Error during evaluation" and exits 0
without writing results, so a broken dependency looks like a run that worked. The states below are
ones we have seen fail that way; each comes with the one-line fix (the ``tspo[lmms]`` extra carries
the pins, setup.cfg is their owner). Run ``python -m tspo.plugins.lmms_eval.compat`` to check an
environment: it prints the problems and exits 1, or exits 0.

Imports nothing heavy (no torch, no lmms-eval): it looks at installed metadata and module specs only.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from importlib import metadata

from tspo.errors import TSPOError

FIX = "pip install 'tspo[lmms]'"


class LmmsEvalEnvironmentError(TSPOError, ImportError):
    """lmms-eval or one of its dependencies is in a state known to fail inside lmms-eval."""


def _version(dist: str, version: Callable[[str], str] = metadata.version) -> tuple[int, ...] | None:
    """The leading numeric release of an installed distribution, or None if it is not installed."""
    try:
        raw = version(dist)
    except metadata.PackageNotFoundError:
        return None
    parts = []
    for piece in raw.split("."):
        digits = "".join(c for c in piece if c.isdigit()) if piece[:1].isdigit() else ""
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def problems(
    find_spec: Callable[[str], object] = importlib.util.find_spec,
    version: Callable[[str], str] = metadata.version,
) -> list[str]:
    """One sentence per known-bad state of the current environment; empty when none is found.

    ``find_spec`` and ``version`` are injectable so the rules are testable without breaking a real
    environment.
    """
    found = []
    filelock = _version("filelock", version)
    if find_spec("filelock") is not None and find_spec("filelock._api") is None:
        shown = ".".join(map(str, filelock)) if filelock else "installed"
        found.append(
            f"filelock {shown} has no filelock._api, which lmms-eval 0.7 imports inside every evaluation "
            f"(it would log 'Error during evaluation' and exit 0 with no results)"
        )
    av = _version("av", version)
    if av is not None and av >= (16,):
        found.append(f"PyAV {'.'.join(map(str, av))} is newer than the PyAV < 16 lmms-eval 0.7 is tested with")
    return found


def under_lmms_eval_cli(main_module: object | None = None, argv0: str | None = None) -> bool:
    """True when this process is lmms-eval's command line (``python -m lmms_eval`` or ``lmms-eval``)."""
    main_module = sys.modules.get("__main__") if main_module is None else main_module
    spec = getattr(main_module, "__spec__", None)
    if spec is not None and getattr(spec, "name", "") == "lmms_eval.__main__":
        return True
    argv0 = (sys.argv[0] if sys.argv else "") if argv0 is None else argv0
    return argv0.replace("\\", "/").rsplit("/", 1)[-1] in ("lmms-eval", "lmms_eval")


def check(found: list[str] | None = None, cli: bool | None = None) -> None:
    """Stop if :func:`problems` finds any, with one line that names the fix.

    In Python: raise :class:`LmmsEvalEnvironmentError`. Under lmms-eval's command line, print the line
    on stderr and exit 2, because lmms-eval catches every ``Exception`` raised while it loads a model or
    evaluates, logs it and exits 0 without results: an exception alone would look like success.
    """
    found = problems() if found is None else found
    if not found:
        return
    message = f"tspo_video cannot run here: {'; '.join(found)}. Fix: {FIX}"
    if under_lmms_eval_cli() if cli is None else cli:
        print(message, file=sys.stderr)
        raise SystemExit(2)
    raise LmmsEvalEnvironmentError(message)


def main() -> int:
    found = problems()
    for line in found:
        print(f"tspo lmms-eval check: {line}", file=sys.stderr)
    if found:
        print(f"Fix: {FIX}", file=sys.stderr)
        return 1
    print("tspo lmms-eval check: ok")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
