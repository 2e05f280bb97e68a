"""Done-when: a selector trained by `tspo train` (ExportSelector after real GRPO steps) loads, selects
on a real video and goes through every adapter; the model inputs hold the selection's frames (count,
order) and times."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch
from plugins_helpers import frame_value, llava_fed_values, qwen_fed_values, render_time_coded_video
from training_helpers import small_datamodule, trainer

from tspo.plugins.generic import image_list_prompt, openai_messages
from tspo.plugins.llava import llava_inputs
from tspo.plugins.qwen import qwen_inputs
from tspo.plugins.tiny import tiny_llava_onevision, tiny_qwen_vl
from tspo.selection.selector import TSPOSelector
from tspo.training import ExportSelector, TSPOModule

QUESTION = "what is in the video ?"
K = 5


TRAIN_STEPS = 4


@pytest.fixture(scope="module")
def trained_selector(tmp_path_factory):
    """A selector exported by ExportSelector (what `tspo train` writes) after a few GRPO steps on the
    training tests' small synthetic needles (rendered once per session, reused by them)."""
    data = small_datamodule(tmp_path_factory.getbasetemp() / "training_data")
    L.seed_everything(0)
    model = TSPOModule(num_frames=16, group_size=8, seed=0)
    initial = {k: v.clone() for k, v in model.agent.state_dict().items()}
    export = ExportSelector(dirpath=str(tmp_path_factory.mktemp("trained") / "selector"))
    trainer(TRAIN_STEPS, callbacks=[export]).fit(model, data)
    assert any(not torch.equal(v, initial[k]) for k, v in model.agent.state_dict().items()), "no training happened"
    return export.exported


def test_trained_selector_records_its_training(trained_selector):
    sel = TSPOSelector.from_pretrained(trained_selector, cache=False)
    assert sel.config["trained_with"]["steps"] == TRAIN_STEPS
    assert sel.config["metrics"]["training steps"] == TRAIN_STEPS
    assert sel.config["metrics"]["held-out check"] == "not run: trainer.limit_val_batches is 0"  # the real reason
    assert any(line.startswith("train: ") for line in sel.config["training_data"])


@pytest.fixture(scope="module")
def selection(tmp_path_factory, trained_selector):
    root = tmp_path_factory.mktemp("e2e")
    video = render_time_coded_video(root / "v.mp4", seconds=12)
    selector = TSPOSelector.from_pretrained(trained_selector, cache=False)
    sel = selector.select(str(video), QUESTION, num_frames=K, return_frames=True)
    assert len(sel.timestamps) == K and np.all(np.diff(sel.timestamps) > 0)
    return sel


def _expected(sel) -> list[float]:
    return [frame_value(int(round(t))) for t in sel.timestamps]  # candidates at 1 fps: t = whole seconds


@pytest.mark.parametrize("variant", ["qwen2_vl", "qwen2_5_vl"])
def test_qwen(selection, variant):
    model, processor = tiny_qwen_vl(variant)
    built = qwen_inputs(processor, selection, QUESTION)
    fed = qwen_fed_values(built.inputs, processor)
    np.testing.assert_allclose(fed[:K], _expected(selection), atol=4)
    np.testing.assert_array_equal(built.timestamps_s, selection.timestamps)
    with torch.no_grad():
        model.generate(**built.inputs, max_new_tokens=2, do_sample=False)


def test_llava(selection):
    model, processor = tiny_llava_onevision()
    built = llava_inputs(processor, selection, QUESTION, style="llava_video")
    np.testing.assert_allclose(llava_fed_values(built.inputs, processor), _expected(selection), atol=4)
    times = ",".join(f"{t:.2f}s" for t in selection.timestamps)
    assert f"These frames are located at {times}." in built.text
    assert "The video lasts for 12.00 seconds" in built.text
    with torch.no_grad():
        model.generate(**built.inputs, max_new_tokens=2, do_sample=False)


def test_generic(selection):
    prompt = image_list_prompt(selection, QUESTION)
    np.testing.assert_allclose([np.asarray(im).mean() for im in prompt.images], _expected(selection), atol=4)
    assert prompt.text.splitlines()[0] == f"Frame at {selection.timestamps[0]:.1f} s: <image>"
    content = openai_messages(selection, QUESTION)[0]["content"]
    assert sum(c["type"] == "image_url" for c in content) == K
