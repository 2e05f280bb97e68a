"""Feature cache: atomic, safe with several writer processes, damaged entries recomputed."""

from __future__ import annotations

import multiprocessing as mp

import numpy as np
import torch

from tspo.features.cache import FeatureCache, VideoFeatures


def _writer(root: str, seed: int) -> None:
    cache = FeatureCache(root)
    value = VideoFeatures(torch.full((500, 64), float(seed)), np.arange(500.0), np.arange(500), 500.0)
    for _ in range(20):
        cache.store("ab" + "0" * 38, value)


def test_concurrent_writers_never_expose_a_partial_entry(tmp_path):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), s)) for s in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    got = FeatureCache(tmp_path).load("ab" + "0" * 38)
    assert got is not None and got.features.shape == (500, 64)
    assert float(got.features.unique().numel()) == 1  # one writer's whole entry, never a mix
    assert not list(tmp_path.rglob("*.tmp"))


def test_damaged_entry_is_ignored(tmp_path):
    cache = FeatureCache(tmp_path, memory_entries=0)
    value = VideoFeatures(torch.ones(3, 4), np.arange(3.0), np.arange(3), 3.0)
    path = cache.store("cd" + "1" * 38, value)
    assert cache.load("cd" + "1" * 38) is not None
    path.write_bytes(b"garbage")
    assert cache.load("cd" + "1" * 38) is None
