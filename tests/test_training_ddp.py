"""Lightning DDP on 2 CPU processes (gloo): gradients are averaged, the agents stay identical."""

from __future__ import annotations

import torch
from training_helpers import SaveRankAgent, small_datamodule, trainer

from tspo.training import TSPOModule


def test_ddp_two_cpu_processes_keep_identical_agents(tmp_path_factory, tmp_path):
    root = tmp_path_factory.getbasetemp() / "training_data"
    dm = small_datamodule(root)
    dm.prepare_data()                                   # render once here, not in both workers
    m = TSPOModule(num_frames=16, group_size=4)
    initial = {k: v.clone() for k, v in m.agent.state_dict().items()}
    t = trainer(3, devices=2, strategy="ddp_spawn", callbacks=[SaveRankAgent(str(tmp_path))])
    t.fit(m, dm)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["world"] == r1["world"] == 2
    assert r0["batches_seen"] == r1["batches_seen"] == 3
    for k, v in r0["state"].items():
        assert torch.equal(v, r1["state"][k]), k
    assert any(not torch.equal(v, initial[k]) for k, v in r0["state"].items()), "the agents did train"
