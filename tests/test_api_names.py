"""The README's Python API and the real signatures agree: one name per setting (issue 21, item 4)."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from tspo import TSPOSelector, select_frames

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_calls_use_real_keywords():
    """Every keyword the README passes to select_frames / .select is a parameter of that function."""
    allowed = {"select_frames": set(inspect.signature(select_frames).parameters),
               "select": set(inspect.signature(TSPOSelector.select).parameters)}
    seen = 0
    for block in _python_blocks():
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name in allowed:
                    seen += 1
                    bad = [kw.arg for kw in node.keywords if kw.arg not in allowed[name]]
                    assert not bad, f"README calls {name}(..., {bad}=...), which {name} does not take"
    assert seen >= 2


def test_readme_settings_comment_names_parameters():
    """The comment listing the settings one may leave out names the keywords select_frames takes."""
    params = set(inspect.signature(select_frames).parameters)
    lines = [ln for b in _python_blocks() for ln in b.splitlines() if "left out" in ln and ln.lstrip().startswith("#")]
    assert lines, "the README's API block should say which settings may be left out"
    listed = re.sub(r"\([^)]*\)", "", lines[0].split("#", 1)[1].split(":")[0])   # drop "(k)" glosses
    names = [n.strip() for n in listed.split(",")]
    assert names and set(names) <= params, f"README names {set(names) - params}, not parameters of select_frames"


def test_select_frames_refuses_an_unknown_keyword(short_video):
    with pytest.raises(TypeError, match="'k'"):
        select_frames(short_video, "what?", k=4, encoder="tiny-random")


def test_select_frames_shows_and_forwards_every_select_keyword(short_video):
    """select_frames owns no copy of select's defaults: its signature lists them from select, and a
    keyword given to it reaches select (here method='uniform': evenly spaced picks)."""
    facade = inspect.signature(select_frames).parameters
    for name, p in list(inspect.signature(TSPOSelector.select).parameters.items())[4:]:
        assert name in facade and facade[name].default == p.default and facade[name].kind is p.KEYWORD_ONLY
    sel = select_frames(short_video, "what?", num_frames=4, encoder="tiny-random", method="uniform", fps=2.0)
    direct = TSPOSelector(encoder="tiny-random").select(short_video, "what?", 4, method="uniform", fps=2.0)
    assert sel.indices.tolist() == direct.indices.tolist() and len(sel.indices) == 4 and sel.method == "uniform"
