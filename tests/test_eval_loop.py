"""One evaluation loop: ``tspo eval``, the held-out check and ``validation_step`` judge the same
(sample, method) the same way (same picks asked, same answers, same figures)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from training_helpers import small_datamodule

from tspo.evaluation.evaluate import evaluate_samples
from tspo.evaluation.heldout import heldout_metrics
from tspo.evaluation.judge import judge_selections
from tspo.rewards import OracleAnswer, SimulatedOracle
from tspo.selection.selector import TSPOSelector
from tspo.training import TSPOModule

K = 8


class Recorder(SimulatedOracle):
    """The simulated oracle, remembering which picks (seconds) it was asked about for each sample."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: dict[str, list[float]] = {}

    def answer(self, queries):
        self.asked.update({q.sample_id: [round(float(t), 3) for t in q.timestamps_s] for q in queries})
        return super().answer(queries)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.getbasetemp() / "training_data"


def test_eval_heldout_and_validation_step_agree_on_the_same_samples(root):
    dm = small_datamodule(root)
    dm.setup("fit")
    data = dm.val_set
    oracles = {name: Recorder() for name in ("eval", "heldout", "validation")}
    module = TSPOModule(num_frames=K, oracle=oracles["validation"])

    logged = {}
    module.log = lambda name, value, **kw: logged.__setitem__(name, float(value))
    batch = dm.val_dataloader()
    batch = next(iter(batch if not isinstance(batch, list) else batch[0]))
    assert len(batch["samples"]) == len(data)                  # one validation batch covers the set
    module.validation_step(batch, 0)

    held = heldout_metrics(data, oracles["heldout"], K, module.agent, methods=("tspo",))["tspo"]

    selector = TSPOSelector(encoder=dm.encoder, agent=module.agent, cache=False, num_frames=K)
    index = {s.id: i for i, s in enumerate(data.samples)}

    def features(sample):
        i = index[sample.id]
        return SimpleNamespace(features=data.features(i), timestamps_s=data[i]["timestamps"].numpy())

    result = evaluate_samples(data.samples, "tspo", oracles["eval"], None, selector, feature_fn=features,
                              progress=False)["methods"]["tspo"]

    assert set(oracles["eval"].asked) == set(index)
    assert oracles["eval"].asked == oracles["heldout"].asked == oracles["validation"].asked   # same picks
    assert 0.0 < held["accuracy"] < 1.0 and held["target_fraction"] is not None
    assert result["accuracy"] == pytest.approx(held["accuracy"]) == pytest.approx(logged["val/accuracy"])
    assert result["target_fraction"] == pytest.approx(held["target_fraction"])
    assert held["target_fraction"] == pytest.approx(logged["val/in_target"])
    assert result["n"] == held["n"] == len(data)


def test_judge_selections_asks_once_sample_major_and_scores_failed_and_unparsed():
    from tspo.data_synth import Sample

    samples = [Sample(id=f"s{i}", video="unused.mp4", question="q?", options=["a", "b"], answer="A", kind="needle",
                      target_spans_s=[[0.0, 2.0]], evidence_spans_s=[[0.0, 2.0]], duration_s=10.0) for i in range(2)]
    calls = []

    class Scripted:
        needs_frames = False
        oracle_id = "scripted"

        def answer(self, queries):
            calls.append([(q.sample_id, len(q.timestamps_s)) for q in queries])
            return [OracleAnswer(letter="A"), OracleAnswer(letter=None, raw="hmm"), OracleAnswer(letter=None, error="x")]

    times = np.arange(10, dtype=np.float64)
    out = judge_selections(Scripted(), samples, [{"a": [0, 1], "b": [5, 6, 7]}, {"a": [8, 9]}], [times, times], 32,
                           [{"a": 0.5}, {}])
    assert calls == [[("s0", 2), ("s0", 3), ("s1", 2)]]              # one call, sample-major, ragged k
    assert [(o.sample_id, o.method, o.correct, o.unparsed) for o in out] == [
        ("s0", "a", True, False), ("s0", "b", False, True), ("s1", "a", None, False)]
    assert [o.target_fraction for o in out] == [1.0, 0.0, 0.0] and [o.seconds for o in out] == [0.5, 0.0, 0.0]
    with pytest.raises(ValueError, match="same length"):
        judge_selections(Scripted(), samples, [{}], [times, times], 32)
