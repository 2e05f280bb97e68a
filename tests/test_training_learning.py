"""THE learning check (quick version; the long one is benchmarks/bench_learning.py).

Rendered needle videos shaped like the paper's data (target 12-25 % of 128 candidates, k = 16,
evidence a few seconds inside the target), the tiny-random encoder, SimulatedOracle. GRPO must
raise the held-out fraction of picks inside the target from the untrained level to >= 0.8 and
simulated accuracy to >= uniform + 0.15, on needles whose target clips training never saw.
"""

from __future__ import annotations

import lightning as L
import pytest
from training_helpers import small_datamodule, trainer

from tspo.evaluation.heldout import heldout_metrics
from tspo.rewards import SimulatedOracle
from tspo.training import TSPOModule

K = 16


@pytest.mark.slow
def test_grpo_learns_to_pick_the_target_on_heldout_needles(tmp_path_factory):
    dm = small_datamodule(tmp_path_factory.getbasetemp() / "training_data")
    dm.setup("fit")
    train_targets = {s.extra["target_id"] for s in dm.train_set.samples}
    assert not train_targets & {s.extra["target_id"] for s in dm.val_set.samples}, "held-out means unseen"
    shares = [s.extra["target_fraction"] for s in dm.val_set.samples]
    assert 0.12 - 1e-6 <= min(shares) and max(shares) <= 0.25 + 1e-6     # 16-32 of 128 candidates

    L.seed_everything(0)
    m = TSPOModule(num_frames=K, group_size=8, lr=5e-4, tau_start=0.025, tau_end=0.01, seed=0)
    oracle = SimulatedOracle()
    before = heldout_metrics(dm.val_set, oracle, K, m.agent)
    trainer(300).fit(m, dm)
    after = heldout_metrics(dm.val_set, oracle, K, m.agent, methods=("tspo",))["tspo"]
    print("held-out before:", before, "\nheld-out after:", after)

    assert before["tspo"]["target_fraction"] < 0.4                    # untrained ~ chance
    assert after["target_fraction"] >= 0.8
    assert after["accuracy"] >= before["uniform"]["accuracy"] + 0.15
    # A random encoder's CLIP similarity knows nothing about the question: chance level.
    assert before["clip"]["target_fraction"] < 0.4
    assert after["target_fraction"] - before["clip"]["target_fraction"] >= 0.4
