"""One owner of the default selection method: each agent family names its own (paper -> tspo, filter ->
tspo+nms), a selector stores it in config.json (an older one without the field means its family's),
and every entry point (select_frames, the selector's methods, zoom, clips, `tspo select`, `tspo eval`,
reflection) asks the selector when the caller names no method. An explicit method always wins."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import write_video

from tspo import TSPOSelector, select_frames
from tspo.agents import (
    AGENT_FAMILIES,
    AgentConfigError,
    FilterAgent,
    TemporalAgent,
    default_method,
    get_method,
)
from tspo.cli import main as tspo_main
from tspo.data_synth import Sample, write_manifest
from tspo.evaluation.evaluate import main as eval_main
from tspo.evaluation.reflect import select_and_answer
from tspo.rewards import SimulatedOracle
from tspo.selection.hub import model_card
from tspo.selection.selector import SelectorConfigError
from tspo.selection.zoom import ZoomConfig
from tspo.settings import SelectionSettings

QUESTION = "What colour is the screen?"
ZOOM = ZoomConfig(coarse_candidates=8, num_spans=2, max_frames=20)
CLIPS = {"unit": "clip", "token_budget": 2000, "model": "llava-onevision"}


@pytest.fixture(scope="module")
def block_video(tmp_path_factory):
    """24 s in six 4-second blocks of one colour each: at 1 fps a block is 4 near-identical candidates,
    so plain top-k takes one block, and temporal NMS (radius 3) or the shot rule one frame per block."""
    colours = np.repeat(np.random.default_rng(3).integers(0, 256, size=(6, 3), dtype=np.uint8), 4, axis=0)
    return write_video(tmp_path_factory.mktemp("blocks") / "blocks.mp4", seconds=24, fps=4, colours=colours)


def _filter_selector(encoder, suppress: bool = True, **kw) -> TSPOSelector:
    """An untrained filter agent (scores = the paper's = 2 cos) whose set head says suppress (radius 3)
    for every question, or plain top-k (radius 0)."""
    agent = FilterAgent(dim=encoder.dim, nms_radius=3)
    with torch.no_grad():
        agent.set_head.bias.fill_(1.0 if suppress else -1.0)
    return TSPOSelector(encoder=encoder, agent=agent, cache=False, num_frames=4, **kw)


def _blocks(positions) -> int:
    """How many of block_video's 4-second blocks (4 candidates each at 1 fps) the picks fall in."""
    return len({int(p) // 4 for p in positions})


def test_each_family_names_its_default_method():
    assert default_method("paper") == TemporalAgent.default_method == "tspo"
    assert default_method("filter") == FilterAgent.default_method == "tspo+shot"
    for family in AGENT_FAMILIES:
        assert get_method(default_method(family)).needs_agent   # every family's own method scores with its agent
    with pytest.raises(AgentConfigError, match="agent family 'transformer' is unknown"):
        default_method("transformer")


def test_a_saved_filter_selector_selects_with_tspo_shot_by_default(tiny_encoder, block_video, tmp_path):
    sel = _filter_selector(tiny_encoder)
    assert sel.method == "tspo+shot" and sel.settings.method == "tspo+shot"
    path = sel.save_pretrained(tmp_path / "filter")
    assert json.loads((path / "config.json").read_text())["method"] == "tspo+shot"
    default = select_frames(block_video, QUESTION, selector=str(path))
    explicit = select_frames(block_video, QUESTION, selector=str(path), method="tspo+shot")
    plain = select_frames(block_video, QUESTION, selector=str(path), method="tspo")
    assert default.method == explicit.method == "tspo+shot" and plain.method == "tspo"
    assert default.indices.tolist() == explicit.indices.tolist()
    # the default is not plain top-k: top-k takes one block, the set head spreads the picks over blocks
    assert default.indices.tolist() != plain.indices.tolist()
    assert _blocks(plain.positions) == 1 and _blocks(default.positions) == 4   # tspo+shot: one pick per block
    # the selector's own methods agree: select_from_features, score
    loaded = TSPOSelector.from_pretrained(path, cache=False)
    feats = loaded.features(block_video)
    positions, scores = loaded.select_from_features(feats.features, QUESTION)
    assert positions.tolist() == default.positions.tolist()
    np.testing.assert_allclose(loaded.score(feats.features, QUESTION).numpy(), scores.numpy())


def test_a_paper_selector_and_an_untrained_one_select_with_tspo(tiny_encoder, block_video, tmp_path):
    path = TSPOSelector(encoder=tiny_encoder, cache=False, num_frames=4).save_pretrained(tmp_path / "paper")
    assert json.loads((path / "config.json").read_text())["method"] == "tspo"
    default = select_frames(block_video, QUESTION, selector=str(path))
    assert default.method == "tspo"
    assert default.indices.tolist() == select_frames(block_video, QUESTION, selector=str(path),
                                                     method="tspo").indices.tolist()
    assert select_frames(block_video, QUESTION, num_frames=4, encoder="tiny-random").method == "tspo"


def test_config_json_round_trips_a_stored_method_and_explicit_wins(tiny_encoder, block_video, tmp_path):
    # a stored method beats the family's: a paper selector saved with clip, a filter one with plain tspo
    paper = TSPOSelector(encoder=tiny_encoder, cache=False, num_frames=4, method="clip")
    filt = _filter_selector(tiny_encoder, method="tspo")
    for sel, name, method in ((paper, "paper", "clip"), (filt, "filter", "tspo")):
        path = sel.save_pretrained(tmp_path / name)
        back = TSPOSelector.from_pretrained(path, cache=False)
        assert json.loads((path / "config.json").read_text())["method"] == method
        assert back.method == method and back.settings == sel.settings
        got = select_frames(block_video, QUESTION, selector=back)
        assert got.method == method
        assert got.indices.tolist() == select_frames(block_video, QUESTION, selector=back,
                                                     method=method).indices.tolist()
        assert select_frames(block_video, QUESTION, selector=back, method="uniform").method == "uniform"
    # replacing the settings without a method falls back to the family's own
    filt.settings = SelectionSettings(num_frames=4)
    assert filt.method == "tspo+shot"


def test_an_old_config_without_method_loads_with_its_familys(tiny_encoder, block_video, tmp_path):
    for sel, name, expected in ((TSPOSelector(encoder=tiny_encoder, cache=False, num_frames=4), "paper", "tspo"),
                                (_filter_selector(tiny_encoder), "filter", "tspo+shot")):
        path = sel.save_pretrained(tmp_path / name)
        config = json.loads((path / "config.json").read_text())
        del config["method"]                                  # as written before the field existed
        (path / "config.json").write_text(json.dumps(config))
        back = TSPOSelector.from_pretrained(path, cache=False)
        assert back.method == expected and select_frames(block_video, QUESTION, selector=back).method == expected
        assert back.config["method"] == expected              # saved again, it names the method
        config["method"] = "best"
        (path / "config.json").write_text(json.dumps(config))
        with pytest.raises(SelectorConfigError, match="unknown selection method 'best'; choose one of tspo"):
            TSPOSelector.from_pretrained(path, cache=False)


def test_an_unknown_explicit_method_is_refused_by_name(tiny_encoder, block_video):
    sel = _filter_selector(tiny_encoder)
    match = "unknown selection method 'best'; choose one of tspo"
    for call in (lambda: select_frames(block_video, QUESTION, selector=sel, method="best"),
                 lambda: sel.select_from_features(torch.zeros(5, tiny_encoder.dim), QUESTION, method="best"),
                 lambda: TSPOSelector(encoder=tiny_encoder, cache=False, method="best"),
                 lambda: TSPOSelector(encoder=tiny_encoder, cache=False, settings=SelectionSettings(method="best"))):
        with pytest.raises(ValueError, match=match):
            call()
    with pytest.raises(ValueError, match="method must be a selection method name"):
        SelectionSettings(method=3)


def test_zoom_and_clips_follow_the_default_and_the_set_head(tiny_encoder, block_video):
    """Zoom and clip selection default to the selector's method too, and tspo+shot there takes the set
    head's radius (not the fixed default of clip+nms): a head that says top-k gives top-k's picks."""
    for kw in ({"strategy": "zoom", "zoom": ZOOM}, CLIPS):
        suppress = _filter_selector(tiny_encoder)
        default = suppress.select(block_video, QUESTION, **kw)
        assert default.method == "tspo+shot"
        assert default.positions.tolist() == suppress.select(block_video, QUESTION, method="tspo+shot",
                                                             **kw).positions.tolist()
        assert default.positions.tolist() != suppress.select(block_video, QUESTION, method="tspo",
                                                             **kw).positions.tolist()
        topk = _filter_selector(tiny_encoder, suppress=False)
        assert topk.select(block_video, QUESTION, **kw).positions.tolist() == \
            topk.select(block_video, QUESTION, method="tspo", **kw).positions.tolist()
        assert topk.select(block_video, QUESTION, **kw).positions.tolist() != \
            topk.select(block_video, QUESTION, method="clip+nms", **kw).positions.tolist()  # fixed radius 3


def test_reflection_selects_with_the_selectors_method(tiny_encoder, block_video):
    sel = _filter_selector(tiny_encoder)
    feats = sel.features(block_video)
    kwargs = {"rounds": 0, "strategy": "single", "features": feats, "meta": {"answer": "A", "kind": "general"}}
    default = select_and_answer(sel, block_video, QUESTION, ["red", "blue"], SimulatedOracle(), 4, **kwargs)
    explicit = select_and_answer(sel, block_video, QUESTION, ["red", "blue"], SimulatedOracle(), 4,
                                 method="tspo+shot", **kwargs)
    plain = select_and_answer(sel, block_video, QUESTION, ["red", "blue"], SimulatedOracle(), 4, method="tspo",
                              **kwargs)
    assert default.timestamps_s.tolist() == explicit.timestamps_s.tolist() != plain.timestamps_s.tolist()


def test_cli_select_defaults_to_the_selectors_method(tiny_encoder, block_video, tmp_path, capsys):
    filt = _filter_selector(tiny_encoder).save_pretrained(tmp_path / "filter")
    paper = TSPOSelector(encoder=tiny_encoder, cache=False, num_frames=4).save_pretrained(tmp_path / "paper")
    base = ["select", str(block_video), QUESTION, "--json"]

    def run(*extra: str) -> dict:
        assert tspo_main([*base, *extra]) == 0
        return json.loads(capsys.readouterr().out)

    default = run("--selector", str(filt))
    expected = select_frames(block_video, QUESTION, selector=str(filt), method="tspo+shot")
    assert default["method"] == "tspo+shot" and default["indices"] == expected.indices.tolist()
    overridden = run("--selector", str(filt), "--method", "tspo")
    plain = select_frames(block_video, QUESTION, selector=str(filt), method="tspo")
    assert overridden["method"] == "tspo" and overridden["indices"] == plain.indices.tolist() != default["indices"]
    assert run("--selector", str(paper))["method"] == "tspo"
    assert run("--encoder", "tiny-random", "-k", "4")["method"] == "tspo"
    assert tspo_main([*base, "--selector", str(filt), "--method", "best"]) == 2
    assert "unknown selection method 'best'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tspo_main(["select", "--help"])
    assert "default: the selector's own, e.g. tspo+shot for a filter selector" in " ".join(
        capsys.readouterr().out.split())


def test_tspo_eval_adds_the_selectors_own_method_by_default(tiny_encoder, short_video, tmp_path):
    path = _filter_selector(tiny_encoder).save_pretrained(tmp_path / "filter")
    sample = Sample(id="s0", video=str(short_video), question=QUESTION, options=["red", "blue"], answer="A",
                    kind="needle", target_spans_s=[[4.0, 8.0]], evidence_spans_s=[[4.0, 8.0]], duration_s=20.0)
    manifest = write_manifest(tmp_path / "m.jsonl", [sample])
    out = tmp_path / "eval.json"
    assert eval_main(["--manifest", str(manifest), "--selector", str(path), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert list(result["methods"])[-1] == "tspo+shot" and "tspo" in result["methods"]
    assert result["config"]["selector_method"] == "tspo+shot" and "method" not in result["config"]
    # the shot rule's cut distance is a setting: --cut-distance is checked before any sample runs
    assert eval_main(["--manifest", str(manifest), "--selector", str(path), "--cut-distance", "3",
                      "--out", str(tmp_path / "bad.json")]) == 2
    assert not (tmp_path / "bad.json").exists()
    assert eval_main(["--manifest", str(manifest), "--selector", str(path), "--methods", "uniform",
                      "--out", str(out)]) == 0
    assert list(json.loads(out.read_text())["methods"]) == ["uniform"]   # an explicit list is kept as given


def test_model_card_names_the_default_method(tiny_encoder):
    config = _filter_selector(tiny_encoder).config                  # what push_to_hub writes the card from
    assert "| selection method | `tspo+shot`" in model_card(config)
    assert "| selection method | its agent family's own" in model_card({"encoder": "x", "agent": {"dim": 8}})  # old
    assert "| selection method | `clip`" in model_card({"encoder": "x", "agent": {}, "method": "clip"})
