"""Exact resume: N steps in one go == N/2 steps, checkpoint, N/2 more from the checkpoint."""

from __future__ import annotations

import lightning as L
import torch
from training_helpers import MetricRecorder, small_datamodule, trainer

from tspo.training import TSPOModule

STEPS = 8


def _fit(root, max_steps, ckpt_dir=None, ckpt_path=None):
    L.seed_everything(0)
    rec = MetricRecorder()
    callbacks = [rec]
    if ckpt_dir is not None:
        callbacks.append(L.pytorch.callbacks.ModelCheckpoint(dirpath=ckpt_dir, every_n_train_steps=STEPS // 2,
                                                             save_top_k=-1, filename="{step}"))
    m = TSPOModule(num_frames=16, group_size=8, seed=3)
    t = trainer(max_steps, callbacks=callbacks, enable_checkpointing=ckpt_dir is not None)
    t.fit(m, small_datamodule(root), ckpt_path=ckpt_path)
    return m, rec.rows


def test_resume_gives_identical_weights_and_metrics(tmp_path_factory, tmp_path):
    root = tmp_path_factory.getbasetemp() / "training_data"
    full, full_rows = _fit(root, STEPS, ckpt_dir=tmp_path / "ckpt")
    ckpt = tmp_path / "ckpt" / f"step={STEPS // 2}.ckpt"
    assert ckpt.is_file()
    saved = torch.load(ckpt, weights_only=True)
    assert saved["tspo"]["batches_seen"] == STEPS // 2
    # no encoder, no oracle; the defaults' KL reference (the initial agent) travels with the checkpoint
    assert all(k.startswith(("agent.", "ref_agent.")) for k in saved["state_dict"])
    assert any(k.startswith("ref_agent.") for k in saved["state_dict"])
    assert saved["TSPODataModule"] == {"batches_consumed": STEPS // 2}    # the resume position: the DataModule's own

    resumed, resumed_rows = _fit(root, STEPS, ckpt_path=str(ckpt))
    assert resumed.batches_seen == full.batches_seen == STEPS
    for k, v in full.agent.state_dict().items():
        assert torch.equal(v, resumed.agent.state_dict()[k]), k
    for k, v in full.ref_agent.state_dict().items():                   # the reference is still the initial agent
        assert torch.equal(v, resumed.ref_agent.state_dict()[k]), k
    keys = ("train/reward", "train/R_A", "train/R_T", "train/in_target", "train/tau", "train/entropy", "train/loss")
    second_half = [{k: r[k] for k in keys} | {"step": r["step"]} for r in full_rows[STEPS // 2:]]
    assert second_half == [{k: r[k] for k in keys} | {"step": r["step"]} for r in resumed_rows]
    # the two halves of the run differ: the comparison above is not trivially true
    assert full_rows[0]["train/tau"] != full_rows[-1]["train/tau"]


def test_datamodule_resumes_from_its_own_state_and_shares_the_models_encoder(tmp_path_factory):
    """The resume position and the encoder come from the DataModule's own state and the encoder owner,
    never from the LightningModule's attributes."""
    from tspo.features.encoders import shared_encoder

    root = tmp_path_factory.getbasetemp() / "training_data"
    dm = small_datamodule(root, batch_size=2)
    m = TSPOModule(num_frames=16)
    dm.setup("fit")
    assert dm.encoder is m.encoder is shared_encoder("tiny-random")    # one frozen encoder per process
    m.batches_seen = 99                                                 # not read by the DataModule
    assert dm.train_dataloader().sampler.start == 0
    dm.load_state_dict({"batches_consumed": 3})
    order = list(dm.train_dataloader().sampler)
    assert dm.train_dataloader().sampler.start == 6                     # 3 batches of 2 already consumed
    fresh = small_datamodule(root, batch_size=2)
    fresh.setup("fit")
    assert order == list(fresh.train_dataloader().sampler)[6:6 + len(order)]
