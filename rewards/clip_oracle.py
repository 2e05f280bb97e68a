"""Zero-shot CLIP oracle: the option whose text best matches the selected frames.

Score of option j for a query = mean over its k frames of ``cos(frame_i, text_j)``, where
``text_j`` embeds ``template.format(question=..., option=...)``. Cheap, real, weak: a floor for
what "the frozen model" can read from the frames, useful when no video LLM fits.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .errors import OracleConfigError
from .oracle import OracleAnswer, OracleQuery, check_queries


class ClipZeroShotOracle:
    """Oracle over a frozen CLIP-style encoder.

    ``encoder``: has ``encode_frames(uint8[k,H,W,3]) -> [k,D]`` and ``encode_texts(list[str]) -> [N,D]``
    (e.g. ``tspo.features.encoders.load_encoder(...)``). ``logit_scale`` turns mean cosines into option
    probabilities (CLIP's trained scale is 100).
    """

    needs_frames = True

    def __init__(self, encoder: Any, template: str = "{question} {option}", logit_scale: float = 100.0,
                 oracle_id: str | None = None):
        for attr in ("encode_frames", "encode_texts"):
            if not callable(getattr(encoder, attr, None)):
                raise OracleConfigError(f"ClipZeroShotOracle: encoder lacks {attr}(); pass a tspo ClipEncoder")
        try:
            template.format(question="q", option="o")
        except (KeyError, IndexError) as exc:
            raise OracleConfigError(
                f"ClipZeroShotOracle: template may only use {{question}} and {{option}}, got {template!r}"
            ) from exc
        self.encoder = encoder
        self.template = template
        self.logit_scale = float(logit_scale)
        # the encoder resizes every frame to its input resolution: part of what it sees
        pixels = getattr(encoder, "image_size", None)
        self.oracle_id = oracle_id or (
            f"clip-zeroshot({getattr(encoder, 'spec', type(encoder).__name__)},px={pixels or 'input'})"
        )

    def __repr__(self) -> str:
        return f"ClipZeroShotOracle({self.oracle_id})"

    def _encode_frames(self, queries: list[OracleQuery]) -> torch.Tensor:
        """All queries' frames -> [sum k, D]; one encoder call when the frame sizes agree."""
        if len({q.frames.shape[1:] for q in queries}) == 1:
            return torch.as_tensor(self.encoder.encode_frames(np.concatenate([q.frames for q in queries])))
        return torch.cat([torch.as_tensor(self.encoder.encode_frames(q.frames)) for q in queries])

    @torch.no_grad()
    def answer(self, queries: list[OracleQuery]) -> list[OracleAnswer]:
        queries = check_queries(queries, True, "ClipZeroShotOracle")
        if not queries:
            return []
        texts = [self.template.format(question=q.question, option=o) for q in queries for o in q.options]
        unique = list(dict.fromkeys(texts))  # a GRPO group repeats one question G times
        text_emb = F.normalize(torch.as_tensor(self.encoder.encode_texts(unique)).float(), dim=-1)
        row = {t: i for i, t in enumerate(unique)}
        text_emb = text_emb[torch.tensor([row[t] for t in texts])]  # [sum N, D]
        frame_emb = F.normalize(self._encode_frames(queries).float(), dim=-1)  # [sum k, D]

        n_q = len(queries)
        k_per = torch.tensor([q.num_frames for q in queries])
        n_per = torch.tensor([len(q.options) for q in queries])
        frame_owner = torch.repeat_interleave(torch.arange(n_q), k_per)  # [sum k]
        text_owner = torch.repeat_interleave(torch.arange(n_q), n_per)  # [sum N]
        # mean over each query's frames of the per-frame cosines, for every text: [Q, sum N]
        sims = frame_emb @ text_emb.T
        mean_sims = torch.zeros(n_q, sims.shape[1]).index_add_(0, frame_owner, sims) / k_per[:, None]
        # keep each query's own options, padded to [Q, N_max] with -inf
        slot = torch.arange(len(texts)) - torch.repeat_interleave(torch.cumsum(n_per, 0) - n_per, n_per)
        scores = torch.full((n_q, int(n_per.max())), float("-inf"))
        scores[text_owner, slot] = mean_sims[text_owner, torch.arange(len(texts))]
        probs = torch.softmax(self.logit_scale * scores, dim=-1)
        best = scores.argmax(dim=-1)
        return [
            OracleAnswer(
                letter=q.letters[int(best[i])],
                option_probs={c: float(probs[i, j]) for j, c in enumerate(q.letters)},
                raw=None,
            )
            for i, q in enumerate(queries)
        ]
