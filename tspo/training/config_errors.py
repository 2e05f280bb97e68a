"""`tspo train` configuration mistakes as one message a person can act on (no usage dump, no traceback).

Pure helpers: the YAML syntax check of each ``--config`` file, where a key sits in those files
(file and line), the nearest valid keys of a misspelt one, and the wording of jsonargparse's errors.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from pathlib import Path

import yaml

from tspo.errors import TSPOError


class ConfigError(TSPOError, ValueError):
    """A `tspo train` configuration that cannot work; the message names the key, the file and the fix."""


def config_files(argv: Sequence[str]) -> list[str]:
    """The ``--config FILE`` / ``--config=FILE`` paths of a `tspo train` command line, in order."""
    files = []
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            files.append(argv[i + 1])
        elif arg.startswith("--config="):
            files.append(arg.split("=", 1)[1])
    return files


def check_yaml_syntax(files: Sequence[str]) -> None:
    """Raise ConfigError naming the file, line and column of the first YAML syntax error."""
    for name in files:
        path = Path(name)
        if not path.is_file():
            raise ConfigError(f"--config {name!r}: no such file (relative paths resolve from {str(Path.cwd())!r})")
        try:
            yaml.safe_load(path.read_text())
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise ConfigError(f"{name}{where}: YAML syntax error: {err.problem or err.context}") from err
        except yaml.YAMLError as err:
            raise ConfigError(f"{name}: YAML syntax error: {err}") from err


def key_location(key: str, files: Sequence[str]) -> str | None:
    """``"FILE, line N"`` of the last file that sets the dotted ``key`` (the one that wins), or None."""
    found = None
    for name in files:
        try:
            node = yaml.compose(Path(name).read_text())
        except (OSError, yaml.YAMLError):
            continue
        line = None
        for part in key.split("."):
            if not isinstance(node, yaml.MappingNode):
                line = None
                break
            match = next(((k, v) for k, v in node.value if getattr(k, "value", None) == part), None)
            if match is None:
                line = None
                break
            line, node = match[0].start_mark.line + 1, match[1]
        if line is not None:
            found = f"{name}, line {line}"
    return found


def nearest_keys(key: str, valid_keys: Sequence[str], n: int = 3) -> list[str]:
    """Up to ``n`` valid dotted keys closest to ``key`` (the same section first)."""
    section = key.rsplit(".", 1)[0] + "." if "." in key else ""
    same = [k for k in valid_keys if k.startswith(section)] if section else list(valid_keys)
    close = difflib.get_close_matches(key, same, n=n, cutoff=0.6)
    return close or difflib.get_close_matches(key, list(valid_keys), n=n, cutoff=0.6)


_UNKNOWN = re.compile(r"does not accept options? '?([\w.\-]+)")
_BAD_VALUE = re.compile(r'Parser key "([\w.\-]+)":\s*(.*)', re.S)


def explain_argument_error(message: str, valid_keys: Sequence[str], files: Sequence[str]) -> str:
    """jsonargparse's message about an unknown key or a bad value -> one short message with the key,
    where it is set, and (for an unknown key) the nearest valid ones."""
    unknown = _UNKNOWN.search(message)
    if unknown:
        key = unknown.group(1).lstrip("-")
        where = key_location(key, files)
        near = nearest_keys(key, valid_keys)
        hint = f"; did you mean {' or '.join(near)}?" if near else "; `tspo train fit --help` lists every key"
        return f"unknown key {key!r}" + (f" in {where}" if where else " on the command line") + hint
    bad = _BAD_VALUE.search(message)
    if bad:
        key, why = bad.group(1), " ".join(bad.group(2).split())
        where = key_location(key, files)
        return f"bad value for {key!r}" + (f" in {where}" if where else "") + f": {why[:300]}"
    return " ".join(message.split())[:500]
