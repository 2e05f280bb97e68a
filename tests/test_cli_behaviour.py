"""What a user sees from the CLI: argument errors before any heavy import, exit codes (2 usage, 1
runtime), no tracebacks, where outputs went, --json scores, --version, examples in --help, and the
Python-side niceties (dir(tspo), a short repr of Selection)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tspo.cli import SUBCOMMANDS
from tspo.cli import main as tspo_main


def _probe(args: list[str]) -> dict:
    """Run `tspo select ARGS` in a fresh interpreter; report its exit code, stderr and heavy imports."""
    code = (
        "import contextlib, io, json, sys\n"
        "from tspo.cli import main\n"
        "err = io.StringIO()\n"
        "with contextlib.redirect_stderr(err):\n"
        f"    rc = main(['select', *{args!r}])\n"
        "print(json.dumps({'rc': rc, 'err': err.getvalue(), "
        "'heavy': sorted(m for m in ('torch', 'open_clip', 'matplotlib', 'decord') if m in sys.modules)}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "args,match",
    [
        (["MISSING.mp4", "q?"], "does not exist"),
        (["{video}", "q?", "--plot", "{tmp}/x.pdf"], "must end in .png"),
        (["{video}", "q?", "--save-frames", "{video}"], "is an existing file"),
        (["{video}", "q?", "-k", "0"], "num-frames must be a positive int"),
        (["{video}", "q?", "--scores"], "pass --json too"),
    ],
)
def test_usage_errors_come_before_torch(short_video, tmp_path, args, match):
    got = _probe([a.format(video=short_video, tmp=tmp_path) for a in args])
    assert got["rc"] == 2 and match in got["err"] and "Traceback" not in got["err"]
    assert got["heavy"] == []  # nothing that costs seconds was imported to say so


@pytest.mark.parametrize(
    "extra,code,match",
    [
        (["--encoder", "ViT-B-32:opnai"], 2, "valid tags: openai"),
        (["--encoder", "NoSuchArch:openai"], 2, "unknown open_clip architecture"),
        (["--encoder", "tiny-random", "--method", "best"], 2, "unknown selection method 'best'; choose one of tspo"),
        (["--encoder", "tiny-random", "--device", "warp9"], 2, "not a torch device"),
    ],
)
def test_setting_errors_exit_2_with_the_fix(short_video, capsys, extra, code, match):
    assert tspo_main(["select", str(short_video), "q?", *extra]) == code
    assert match in capsys.readouterr().err


def test_cuda_without_gpu_is_a_usage_error(short_video, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert tspo_main(["select", str(short_video), "q?", "--encoder", "tiny-random", "--device", "cuda"]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err


def test_damaged_selector_weights_exit_1(short_video, tmp_path, capsys):
    from tspo.selection.selector import TSPOSelector

    directory = TSPOSelector(encoder="tiny-random", cache=False).save_pretrained(tmp_path / "sel")
    weights = directory / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated copy
    assert tspo_main(["select", str(short_video), "q?", "--selector", str(directory)]) == 1
    err = capsys.readouterr().err
    assert "model.safetensors" in err and "damaged" in err and "Traceback" not in err


def test_outputs_are_announced_and_json_has_scores(short_video, tmp_path, capsys):
    frames, plot = tmp_path / "frames", tmp_path / "picks.png"
    assert tspo_main(["select", str(short_video), "q?", "-k", "3", "--encoder", "tiny-random", "--json", "--scores",
                      "--save-frames", str(frames), "--plot", str(plot)]) == 0  # fmt: skip
    captured = capsys.readouterr()
    out = json.loads(captured.out)  # stdout is the JSON alone
    assert len(out["scores"]) == len(out["candidate_timestamps"]) == out["num_candidates"] == 20
    picked = [out["candidate_timestamps"].index(t) for t in out["timestamps"]]
    assert sorted(np.argsort(out["scores"], kind="stable")[::-1][:3].tolist()) == sorted(picked)
    assert f"wrote 3 frames to {frames}" in captured.err and f"wrote plot to {plot}" in captured.err
    assert plot.is_file() and len(list(frames.glob("*.jpg"))) == 3


def test_version_and_examples_in_every_help(capsys):
    from tspo import __version__

    assert tspo_main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"tspo {__version__}"
    for name in SUBCOMMANDS:
        if name == "train":
            continue  # LightningCLI: checked below in a subprocess (it exits)
        try:
            code = tspo_main([name, "--help"])
        except SystemExit as stop:  # argparse's own exit
            code = stop.code
        assert code == 0, name
        text = capsys.readouterr().out
        assert f"tspo {name}" in text.split("example")[-1], name
        assert "DESIGN" not in text, name  # help points only at docs that ship with the repo
    out = subprocess.run([sys.executable, "-m", "tspo", "train", "--help"], capture_output=True, text=True)
    assert "example: tspo train fit --config" in out.stdout


def test_eval_on_a_video_instead_of_a_manifest(short_video, capsys):
    assert tspo_main(["eval", "--manifest", str(short_video), "--methods", "uniform", "--encoder", "tiny-random"]) == 2
    captured = capsys.readouterr()
    assert "is not a text file" in captured.out + captured.err


def test_dir_and_repr():
    import tspo
    from tspo.selection.selector import Selection

    assert {"TSPOSelector", "Selection", "select_frames", "__version__"} <= set(dir(tspo))
    assert "importlib" not in dir(tspo)
    sel = Selection(indices=np.arange(16) * 30, positions=np.arange(16), timestamps=np.arange(16.0),
                    scores=np.zeros(300, np.float32), candidate_timestamps=np.arange(300.0),
                    frames=np.zeros((16, 224, 224, 3), np.uint8), method="tspo", num_candidates=300)  # fmt: skip
    text = repr(sel)
    assert "\n" not in text and len(text) < 200 and "k=16 of 300" in text and "(16, 224, 224, 3)" in text


def test_feature_cache_option_shares_one_layout_between_training_select_and_eval(short_video, tmp_path, capsys):
    from tspo.evaluation.evaluate import make_selector
    from tspo.features.cache import FeatureCache, video_features
    from tspo.features.encoders import load_encoder
    from tspo.settings import DEFAULT_FPS, DEFAULT_MAX_CANDIDATES

    shared = tmp_path / "run" / "feature_cache"
    # what a training run stores (its DataModule uses FeatureCache(data.feature_cache) the same way)
    video_features(str(short_video), load_encoder("tiny-random"), DEFAULT_FPS, DEFAULT_MAX_CANDIDATES, FeatureCache(shared))
    stored = sorted(p.name for p in shared.rglob("*") if p.is_file())
    assert stored
    assert tspo_main(["select", str(short_video), "q?", "-k", "2", "--encoder", "tiny-random",
                      "--feature-cache", str(shared)]) == 0  # fmt: skip
    features = sorted(p.name for p in shared.rglob("*") if p.is_file() and p.relative_to(shared).parts[0]
                      not in ("encoders", "text"))  # fmt: skip
    assert features == stored  # a hit: no feature entry written
    # beside them: the encoder's card and the question's text embedding (tspo.features.encoder_cache)
    assert len(list((shared / "encoders").glob("*.json"))) == 1 and len(list((shared / "text").rglob("*.safetensors"))) == 1
    selector = make_selector(None, "tiny-random", ["uniform"], str(shared))
    assert selector.cache.root == shared
    selector.features(str(short_video))
    assert selector.cache.hits == 1 and selector.cache.misses == 0


def test_plot_redraws_from_files(short_video, tmp_path, capsys):
    run = tmp_path / "run" / "lightning_logs" / "version_0"
    run.mkdir(parents=True)
    rows = ["step,train/reward,train/r_a"] + [f"{s},{0.5 + s / 200},{0.4}" for s in range(100)]
    (run / "metrics.csv").write_text("\n".join(rows) + "\n")
    assert tspo_main(["plot", str(tmp_path / "run"), "--out", str(tmp_path / "curves.png")]) == 0
    assert f"wrote training curves to {tmp_path / 'curves.png'}" in capsys.readouterr().out
    (tmp_path / "eval.json").write_text(json.dumps(
        {"methods": {"uniform": {"accuracy": 0.5, "target_fraction": 0.2}, "aks": {"accuracy": 0.6, "target_fraction": None}}}
    ))  # fmt: skip
    assert tspo_main(["plot", str(tmp_path / "eval.json"), "--out", str(tmp_path / "eval.png")]) == 0
    capsys.readouterr()
    assert tspo_main(["select", str(short_video), "q?", "-k", "3", "--encoder", "tiny-random", "--json", "--scores"]) == 0
    (tmp_path / "picks.json").write_text(capsys.readouterr().out)
    assert tspo_main(["plot", str(tmp_path / "picks.json"), "--out", str(tmp_path / "picks.png")]) == 0
    assert all((tmp_path / f).stat().st_size > 1000 for f in ("curves.png", "eval.png", "picks.png"))
    capsys.readouterr()
    assert tspo_main(["plot", str(tmp_path / "eval.json"), "--out", str(tmp_path / "x.pdf")]) == 2
    assert tspo_main(["plot", str(short_video), "--out", str(tmp_path / "y.png")]) == 2
    assert "is not JSON" in capsys.readouterr().err
