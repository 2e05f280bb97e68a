"""`tspo export`: the agent alone, TorchScript and ONNX, same scores as PyTorch for any T."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tspo.agents import TemporalAgent
from tspo.cli import main as cli_main
from tspo.selection.export import (
    ExportableAgent,
    ExportError,
    check_round_trip,
    export_agent,
    main,
    run_exported,
)
from tspo.selection.selector import TSPOSelector

LENGTHS = (1, 3, 11, 12, 13, 64, 65, 150)  # T < window (12), around it, around the block (64)


def _random_agent(seed: int = 0) -> TemporalAgent:
    agent = TemporalAgent(dim=64, window=12, heads=8)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in agent.parameters():  # a "trained" agent: MLP branch far from zero
            param.copy_(torch.randn(param.shape, generator=generator) * 0.2)
    return agent.eval()


@pytest.fixture(scope="module")
def selector_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("selector")
    TSPOSelector(encoder="tiny-random", agent=_random_agent(), cache=False).save_pretrained(directory)
    return directory


def test_exportable_agent_matches_agent_math():
    agent = _random_agent(1)
    module = ExportableAgent(agent)
    generator = torch.Generator().manual_seed(3)
    for n in LENGTHS:
        features, text = torch.randn(n, 64, generator=generator), torch.randn(64, generator=generator)
        with torch.no_grad():
            torch.testing.assert_close(module(features, text), agent(features, text), atol=1e-5, rtol=0)


@pytest.mark.parametrize("fmt,name", [("torchscript", "agent.pt"), ("onnx", "agent.onnx")])
def test_cli_export_round_trips(selector_dir, tmp_path, fmt, name, capsys):
    out = tmp_path / name
    assert cli_main(["export", str(selector_dir), "--format", fmt, "--out", str(out)]) == 0
    assert "round-trip max |diff|" in capsys.readouterr().out
    agent = TSPOSelector.from_pretrained(selector_dir, cache=False).agent
    generator = torch.Generator().manual_seed(7)
    for n in LENGTHS:
        features, text = torch.randn(n, 64, generator=generator), torch.randn(64, generator=generator)
        with torch.no_grad():
            expected = agent(features, text).numpy()
        got = run_exported(out, features.numpy(), text.numpy())
        assert got.shape == (n,)
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    # Different inputs give different scores: the graph is not a constant of the trace example.
    assert not np.allclose(
        run_exported(out, np.ones((5, 64)), np.ones(64)), run_exported(out, np.eye(5, 64), np.ones(64))
    )


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_exported_files_carry_the_selector_config(selector_dir, tmp_path):
    import onnx

    agent = TSPOSelector.from_pretrained(selector_dir, cache=False).agent
    onnx_path = export_agent(agent, tmp_path / "a.onnx", "onnx", config={"encoder": "tiny-random"})
    props = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    assert json.loads(props["tspo_config"]) == {"encoder": "tiny-random"}
    graph = onnx.load(str(onnx_path)).graph
    assert [i.name for i in graph.input] == ["features", "text"]
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "T"
    ts_path = export_agent(agent, tmp_path / "a.pt", "torchscript", config={"encoder": "tiny-random"})
    extra = {"tspo_config.json": ""}
    torch.jit.load(str(ts_path), _extra_files=extra)
    assert json.loads(extra["tspo_config.json"]) == {"encoder": "tiny-random"}
    assert check_round_trip(agent, ts_path, lengths=(2, 40)) < 1e-5


def test_export_errors_name_the_fix(selector_dir, tmp_path, capsys):
    assert main([str(tmp_path / "missing"), "--format", "onnx", "--out", str(tmp_path / "a.onnx")]) == 2
    assert "save_pretrained" in capsys.readouterr().err
    assert main([str(selector_dir), "--format", "onnx", "--out", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(selector_dir), "--format", "tflite", "--out", str(tmp_path / "a")])
    with pytest.raises(ExportError, match="format"):
        export_agent(_random_agent(), tmp_path / "a.x", "tflite")
    module = ExportableAgent(_random_agent())
    with pytest.raises(ValueError, match=r"features must be float32\[T, D\]"):
        module(torch.zeros(3, 32), torch.zeros(64))
