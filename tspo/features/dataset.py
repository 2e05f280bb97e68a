"""Samples with their candidate features, question embeddings and target masks, and how they stack
into batches: what training, the held-out check and answer collection read (features come from the
feature cache, :mod:`tspo.features.cache`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset

from tspo.errors import TSPOError
from tspo.features.cache import encode_candidates, video_features
from tspo.manifest import Sample
from tspo.progress import progress_bar
from tspo.settings import DEFAULT_FPS, DEFAULT_MAX_CANDIDATES
from tspo.spans import in_spans


class DataConfigError(TSPOError, ValueError):
    """A TSPODataModule option that cannot work (no manifest, mismatched candidate counts, ...)."""


class SampleBatch:
    """The manifest samples of a batch. Not a list or dataclass on purpose: Lightning's
    batch-to-device transfer leaves it alone instead of rebuilding every sample."""

    def __init__(self, samples: Sequence[Sample]) -> None:
        self.samples = list(samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> Sample:
        return self.samples[i]


class FeatureDataset(Dataset):
    """Samples with their candidate features, question embeddings and target masks.

    ``source="cache"`` (training): features from the feature cache, computed up front.
    ``source="decode"``: decode and encode the video on every access (only to measure what the
    cache saves; ``benchmarks/bench_train.py``).
    ``options``: also embed every sample's multiple-choice options (items then carry ``"options"``
    [N_i, D]); ``False`` for agents that do not read them (the paper's), which saves one text
    encoding per option (about 4x the question encoding on a four-option benchmark).
    """

    def __init__(self, samples: Sequence[Sample], encoder, fps: float = DEFAULT_FPS,
                 max_candidates: int | None = DEFAULT_MAX_CANDIDATES, cache=None, source: Literal["cache", "decode"] = "cache", progress: bool = True,
                 options: bool = True) -> None:
        if not samples:
            raise DataConfigError("the manifest has no samples; check data.train_manifest / data.val_manifest")
        self.samples = list(samples)
        self.encoder, self.fps, self.max_candidates, self.cache, self.source = encoder, fps, max_candidates, cache, source
        self.text = encoder.encode_texts([s.question for s in self.samples])                  # [N, D]
        self.option_text = (option_embeddings(self.samples, encoder, int(self.text.shape[-1]))   # [N_i, D] each
                            if options else None)
        self._features: list[torch.Tensor] = []
        self._times: list[np.ndarray] = []
        for s in progress_bar(self.samples, desc="candidate features", unit="video", disable=not progress):
            vf = video_features(s.video, encoder, fps, max_candidates, cache)
            self._times.append(np.asarray(vf.timestamps_s, dtype=np.float64))
            self._features.append(vf.features.float() if source == "cache" else torch.empty(0))

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def num_candidates(self) -> list[int]:
        """T of every sample, in order."""
        return [len(t) for t in self._times]

    def features(self, i: int) -> torch.Tensor:
        if self.source == "cache":
            return self._features[i]
        video = self.samples[i].video
        return encode_candidates(video, self.encoder, self.fps, self.max_candidates).features

    def __getitem__(self, i: int) -> dict[str, Any]:
        sample, times = self.samples[i], self._times[i]
        spans = sample.target_spans_s if sample.kind == "needle" else []
        item = {"features": self.features(i), "text": self.text[i], "timestamps": torch.from_numpy(times),
                "target_mask": torch.from_numpy(in_spans(times, spans)), "index": i, "sample": sample}
        if self.option_text is not None:
            item["options"] = self.option_text[i]
        return item


def option_embeddings(samples: Sequence[Sample], encoder, dim: int) -> list[torch.Tensor]:
    """Text embeddings of every sample's options: one ``[N_i, D]`` tensor per sample (``[0, D]`` without
    options); each distinct option text is encoded once."""
    unique = sorted({o for s in samples for o in s.options})
    table = encoder.encode_texts(unique) if unique else None                                  # [U, D]
    row = {text: i for i, text in enumerate(unique)}
    empty = torch.zeros(0, dim)
    return [table[[row[o] for o in s.options]] if s.options else empty for s in samples]


def pad_options(rows: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample option embeddings ``[N_i, D]`` -> padded ``[B, N, D]`` (N = max N_i, zeros past N_i) and
    ``option_mask`` bool[B, N] (True = a real option)."""
    options = pad_sequence(list(rows), batch_first=True)                                     # [B, N, D]
    lengths = torch.tensor([int(r.shape[0]) for r in rows])                                  # [B]
    return options, torch.arange(options.shape[1])[None, :] < lengths[:, None]


def unequal_batches(num_candidates: Sequence[int], batch_size: int, option: str) -> str | None:
    """Why samples with these candidate counts cannot share batches of ``batch_size`` (None: they can);
    ``option`` is the setting to change (``data.batch_size`` or ``data.val_batch_size``)."""
    sizes = sorted(set(num_candidates))
    if batch_size == 1 or len(sizes) <= 1:
        return None
    return (f"{option}={batch_size} puts samples with different candidate counts (T from {sizes[0]} to {sizes[-1]}: "
            f"videos shorter than data.max_candidates / data.fps) in one batch; set {option}=1, or "
            f"data.max_candidates no larger than the shortest video's candidates ({sizes[0]})")


def collate(items: list[dict[str, Any]], option: str = "data.batch_size", batch_size: int | None = None) -> dict[str, Any]:
    """Stack a batch; every sample must have the same number of candidates T (``option`` = ``batch_size``:
    the setting to name when they do not). Option embeddings are padded: ``options`` [B, N, D] and
    ``option_mask`` bool[B, N] (:func:`pad_options`; absent when the items carry none)."""
    sizes = [int(it["features"].shape[0]) for it in items]
    why = unequal_batches(sizes, batch_size or len(items), option) if len(set(sizes)) > 1 else None
    if why:
        raise DataConfigError(why)
    return {
        "features": torch.stack([it["features"] for it in items]),
        "text": torch.stack([it["text"] for it in items]),
        "timestamps": torch.stack([it["timestamps"] for it in items]),
        "target_mask": torch.stack([it["target_mask"] for it in items]),
        "index": torch.tensor([it["index"] for it in items]),
        "samples": SampleBatch([it["sample"] for it in items]),
        **(dict(zip(("options", "option_mask"), pad_options([it["options"] for it in items])))
           if all("options" in it for it in items) else {}),
    }


__all__ = ["DataConfigError", "FeatureDataset", "SampleBatch", "collate", "option_embeddings", "pad_options",
           "unequal_batches"]
