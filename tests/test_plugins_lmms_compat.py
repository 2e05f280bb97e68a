"""The lmms-eval plug-in's environment guard and the `lmms` extra that carries its pins.

Runs in the main suite (no lmms-eval needed): the rules are pure functions of installed metadata,
tested with injected look-ups. `tests/test_plugins_lmms_eval_real.py` checks the guard under the
real lmms-eval command line (`make test-lmms`).
"""

from __future__ import annotations

import configparser
import re
from importlib import metadata
from pathlib import Path

import pytest

from tspo.plugins.lmms_eval import compat

ROOT = Path(__file__).resolve().parents[1]


def _env(versions: dict[str, str], modules: set[str]):
    def find_spec(name: str):
        return object() if name in modules else None

    def version(dist: str) -> str:
        if dist not in versions:
            raise metadata.PackageNotFoundError(dist)
        return versions[dist]

    return {"find_spec": find_spec, "version": version}


def test_filelock_4_without_its_private_api_is_named_with_the_version():
    (line,) = compat.problems(**_env({"filelock": "4.3.2", "av": "15.1.0"}, {"filelock"}))
    assert "filelock 4.3.2" in line and "filelock._api" in line and "exit 0" in line


def test_a_working_environment_has_no_problems():
    assert compat.problems(**_env({"filelock": "3.32.7", "av": "15.1.0"}, {"filelock", "filelock._api"})) == []
    assert compat.problems(**_env({}, set())) == []  # neither installed: nothing known to fail


def test_pyav_16_is_flagged():
    (line,) = compat.problems(**_env({"av": "16.0.1"}, set()))
    assert "PyAV 16.0.1" in line and "< 16" in line


def test_check_in_python_raises_one_line_with_the_fix():
    with pytest.raises(compat.LmmsEvalEnvironmentError) as info:
        compat.check(found=["filelock 4.3.2 has no filelock._api"], cli=False)
    message = str(info.value)
    assert "\n" not in message and "pip install 'tspo[lmms]'" in message
    assert isinstance(info.value, ImportError)  # what an import of the plug-in raises
    compat.check(found=[], cli=False)  # nothing found: no error


def test_check_under_the_lmms_eval_command_line_exits_non_zero(capsys):
    # lmms-eval's CLI catches every Exception and exits 0, so the guard must leave with a status.
    with pytest.raises(SystemExit) as info:
        compat.check(found=["filelock 4.3.2 has no filelock._api"], cli=True)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'tspo[lmms]'" in err[0]


def test_lmms_eval_command_line_is_recognised():
    class Spec:
        name = "lmms_eval.__main__"

    class Main:
        __spec__ = Spec

    assert compat.under_lmms_eval_cli(Main, argv0="")
    assert compat.under_lmms_eval_cli(object(), argv0="/venv/bin/lmms-eval")
    assert not compat.under_lmms_eval_cli(object(), argv0="/venv/bin/pytest")


def test_the_lmms_extra_carries_lmms_eval_and_the_pins_it_needs():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    extra = [line.strip() for line in cfg["options.extras_require"]["lmms"].splitlines() if line.strip()]
    pins = {re.split(r"[<>=!]", line, maxsplit=1)[0]: line for line in extra}
    assert set(pins) == {"lmms-eval", "filelock", "av"}
    assert "<4" in pins["filelock"] and "<16" in pins["av"] and ">=0.7.3" in pins["lmms-eval"]


def test_make_test_lmms_builds_from_the_extra_alone():
    makefile = (ROOT / "Makefile").read_text()
    (install,) = [line for line in makefile.splitlines() if "LMMS_VENV)/bin/python -m pip install" in line and "-e" in line]
    assert ".[dev,lmms]" in install and "lmms-eval" not in install.replace("LMMS_VENV", "")


def test_readme_installs_lmms_eval_through_the_extra():
    readme = (ROOT / "README.md").read_text()
    assert "pip install 'tspo[lmms]'" in readme
    assert "pip install 'lmms-eval" not in readme and "pip install lmms-eval" not in readme
