"""One error base: every error class tspo defines derives from TSPOError, and the CLI prints one on stderr."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import tspo
from tspo import cli
from tspo.errors import TSPOError

OPTIONAL = {"tspo.plugins.lmms_eval.models.tspo_video", "tspo.plugins.lmms_eval.tasks.tspo_manifest_mcq.utils"}


def _modules():
    # agents/, rewards/ and data_synth/ install inside tspo from folders of their own (setup.cfg package_dir)
    for pkg in (tspo, *(importlib.import_module(f"tspo.{sub}") for sub in ("agents", "rewards", "data_synth"))):
        yield pkg
        for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            if info.name in OPTIONAL or info.name.endswith("__main__"):
                continue
            yield importlib.import_module(info.name)


def test_every_error_class_derives_from_tspo_error():
    errors = {obj for mod in _modules() for obj in vars(mod).values()
              if isinstance(obj, type) and issubclass(obj, Exception) and obj.__module__.startswith("tspo.")}
    assert len(errors) >= 30
    # private control-flow exceptions (e.g. the OpenAI oracle's retry signal) never leave their module
    assert [e.__qualname__ for e in errors if not issubclass(e, TSPOError) and not e.__name__.startswith("_")] == []


def _subcommand_raising(monkeypatch, name: str, error: Exception) -> None:
    """Register a `tspo NAME` subcommand whose main raises ``error``."""

    class Command:
        @staticmethod
        def main(argv):
            raise error

    monkeypatch.setitem(cli.SUBCOMMANDS, name, (f"{name}_module", "test"))
    monkeypatch.setattr(cli.importlib, "import_module", lambda module: Command)


def test_the_cli_prints_a_tspo_error_on_stderr(monkeypatch, capsys):
    _subcommand_raising(monkeypatch, "boom", TSPOError("the manifest names no video; add a 'video' field"))
    assert cli.main(["boom"]) == 1
    out = capsys.readouterr()
    assert out.out == "" and out.err.strip() == "tspo boom: error: the manifest names no video; add a 'video' field"


def test_other_exceptions_still_raise(monkeypatch):
    _subcommand_raising(monkeypatch, "bug", KeyError("a bug, not an input problem"))
    with pytest.raises(KeyError):
        cli.main(["bug"])
