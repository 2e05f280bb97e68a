"""The event-aware temporal agent of TSPO (paper §3.1, Fig. 2).

Scores every candidate frame against the question:

    X   = F_f + PE                      (PE: sinusoidal, positions normalised by T)
    F_e = MLP(WindowAttn(X)) + F_f      (8 heads, window w, no output projection)
    S   = cos(F_e, F_t) + cos(F_f, F_t)

The window attention is computed in blocks of query frames against the keys that block can see,
so memory grows with T·(block + w), never T²: a 10-hour video at 1 fps (T = 36,000) runs on CPU.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from tspo.errors import TSPOError

# Published TSPO checkpoints name the selector `selector` (TSPO repo) or `multiModal_align`
# (LLaVA-side checkpoints), possibly under a `model.` prefix.
_PUBLISHED_TO_NATIVE = {
    "temporal.Self_q.": "q.",
    "temporal.Self_k.": "k.",
    "temporal.Self_v.": "v.",
    "mlp.0.": "mlp.0.",
    "mlp.2.": "mlp.2.",
}
_PUBLISHED_UNUSED = ("temporal.ffn_o.",)


class PublishedCheckpointError(TSPOError, ValueError):
    """A checkpoint that does not hold a TSPO selector in the published layout."""


def sinusoidal_positions(num_frames: int, dim: int, device=None, dtype=torch.float32) -> torch.Tensor:
    return _positions(num_frames, dim).to(device=device, dtype=dtype)


@lru_cache(maxsize=16)
def _positions(num_frames: int, dim: int) -> torch.Tensor:
    """Sinusoidal PE with positions normalised by T: [T] frames -> [T, D].

    ``pos_t = t / T``; ``PE[t, 2j] = sin(pos_t · div_j)``, ``PE[t, 2j+1] = cos(pos_t · div_j)``,
    ``div_j = exp(2j · (−ln 10000 / D))``. Normalising by T makes the encoding independent of the
    video's length, so a selector trained on 128 candidates scores 3,600 the same way.
    """
    if dim % 2:
        raise ValueError(f"dim must be even for sinusoidal positions, got dim={dim}")
    pos = torch.arange(num_frames, dtype=torch.float32) / max(num_frames, 1)
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    angles = pos[:, None] * div[None, :]
    pe = torch.stack([angles.sin(), angles.cos()], dim=-1)  # [T, D/2, 2] interleaves sin/cos
    return rearrange(pe, "t j two -> t (j two)")


@lru_cache(maxsize=32)
def _band_bias(num_frames: int, block: int, window: int) -> torch.Tensor:
    """Additive mask [nb, 1, block, block + w − 1]: 0 where query s of block n may see key l, else −1e6.

    Key l of block n sits at absolute position n·block − w//2 + l, query s at n·block + s. Padded
    query rows (past T) see everything: they are discarded, and a fully masked row would only
    invite NaNs into the backward pass.
    """
    left, span = window // 2, block + window - 1
    num_blocks = -(-num_frames // block)
    offs = torch.arange(span)[None, :] - torch.arange(block)[:, None]
    in_window = (offs >= 0) & (offs < window)  # [s, l]
    abs_key = torch.arange(num_blocks)[:, None] * block - left + torch.arange(span)
    in_range = (abs_key >= 0) & (abs_key < num_frames)  # [n, l]
    abs_query = torch.arange(num_blocks)[:, None] * block + torch.arange(block)
    valid = (in_window[None] & in_range[:, None, :]) | (abs_query >= num_frames)[:, :, None]
    return torch.zeros(valid.shape).masked_fill_(~valid, -1e6)[:, None]


def window_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int, heads: int, block: int = 64
) -> torch.Tensor:
    """Local multi-head self-attention: [B, T, D] x3 -> [B, T, D].

    Frame ``j`` attends to frames ``j − w//2 … j + w − 1 − w//2`` that exist (out-of-range keys
    get logit −1e6, as in the published model). Queries are processed in blocks of ``block``
    frames against the ``block + w − 1`` keys the block can see; all blocks in one fused
    attention call, so memory is O(T·(block + w)), never O(T²).
    """
    return window_attention_qkv(torch.cat([q, k, v], dim=-1), window, heads, block)


def window_attention_qkv(qkv: torch.Tensor, window: int, heads: int, block: int = 64) -> torch.Tensor:
    """:func:`window_attention` on fused projections ``[B, T, 3D]`` (q | k | v): -> [B, T, D].

    One padded copy serves queries, keys and values (the agent's hot path): the key windows are
    strided views of it, so the only other copies are the ones the attention kernel needs.
    """
    bsz, num_frames, dim3 = qkv.shape
    dim = dim3 // 3
    if dim3 % 3 or dim % heads:
        raise ValueError(f"feature dim {dim} is not divisible by heads={heads}")
    left = window // 2
    block = max(1, min(block, num_frames))
    num_blocks = -(-num_frames // block)
    span = block + window - 1
    padded = num_blocks * block
    # Padded so that block n's keys are rows [n·block, n·block + span) = positions n·block − left + l.
    qkv_p = F.pad(qkv, (0, 0, left, padded - num_frames + window - 1 - left))
    q_blk = rearrange(qkv_p[:, left : left + padded, :dim], "b (n s) (h d) -> (b n) h s d", s=block, h=heads)
    k_win = rearrange(qkv_p[..., dim : 2 * dim].unfold(1, span, block), "b n (h d) l -> (b n) h l d", h=heads)
    v_win = rearrange(qkv_p[..., 2 * dim :].unfold(1, span, block), "b n (h d) l -> (b n) h l d", h=heads)
    bias = _band_bias(num_frames, block, window).to(device=qkv.device, dtype=qkv.dtype)
    bias = bias.repeat(bsz, 1, 1, 1) if bsz > 1 else bias
    out = F.scaled_dot_product_attention(q_blk, k_win, v_win, attn_mask=bias)  # scale 1/sqrt(D/H)
    out = rearrange(out, "(b n) h s d -> b (n s) (h d)", b=bsz)
    return out[:, :num_frames]


class TemporalAgent(nn.Module):
    """Event-aware frame scorer: ``(F_f [T,D] | [B,T,D], F_t [D] | [B,D]) -> S [T] | [B,T]``.

    ``F_f`` are projected (not normalised) CLIP image embeddings of the candidate frames and
    ``F_t`` the CLIP text embedding of the question. ``S`` lies in [−2, 2]; training samples from
    ``softmax(S / τ)`` and inference takes its top-k.
    """

    family = "paper"  # tspo.agents.families.AGENT_FAMILIES (its config names no family: old selectors load unchanged)
    reads_options = False  # a multiple-choice question's options do not change this agent's scores
    reads_frame_mask = False  # one video per row: no padded batches of needles of different lengths
    # The selection method a selector with this agent uses when no call names one (the one owner:
    # tspo.agents.families.default_method reads it; a selector's config.json may store another).
    default_method = "tspo"

    def __init__(self, dim: int = 768, window: int = 12, heads: int = 8, block: int = 64,
                 query_adapter: bool = False, question_attention: bool = False) -> None:
        super().__init__()
        for name, value in (("dim", dim), ("window", window), ("heads", heads), ("block", block)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"TemporalAgent {name} must be a positive int, got {value!r}")
        if dim % heads or dim % 2:
            raise ValueError(f"TemporalAgent dim={dim} must be even and divisible by heads={heads}")
        self.dim, self.window, self.heads, self.block = dim, window, heads, block
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))
        # Zero-initialised output layer: an untrained agent has F_e = F_f, so its scores rank
        # frames exactly as CLIP similarity does, and training starts from that baseline.
        nn.init.zeros_(self.mlp[2].weight)
        nn.init.zeros_(self.mlp[2].bias)
        # Beyond the paper (off by default): a learnable text side, F_t' = F_t + MLP_q(F_t). The
        # paper's agent scores against the frozen question embedding, so a question whose answer
        # does not look like its words ("what comes right after X?") may be unlearnable; the
        # adapter can move the query. Zero-initialised, so it too starts as CLIP's ranking.
        self.query_adapter = bool(query_adapter)
        if self.query_adapter:
            self.query = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))
            nn.init.zeros_(self.query[2].weight)
            nn.init.zeros_(self.query[2].bias)
        # Beyond the paper (off by default): question-conditioned attention. The paper's window
        # attention mixes neighbours the same way for every question, so "what comes right after X"
        # (the answer is the event after the one that looks like the question) and "what colour is
        # X" (the answer is the frame that looks like it) must share one temporal mixing. Adding a
        # projection of F_t to every attention input makes the keys, queries and values depend on
        # the question. Zero-initialised, so an untrained agent is still CLIP's ranking.
        self.question_attention = bool(question_attention)
        if self.question_attention:
            self.condition = nn.Linear(dim, dim)
            nn.init.zeros_(self.condition.weight)
            nn.init.zeros_(self.condition.bias)

    def _fused_qkv(self) -> tuple[torch.Tensor, torch.Tensor]:
        """q, k, v as one [3D, D] projection: one matmul and one padded copy instead of three.

        At inference the concatenation is cached until a weight changes (tensor versions and
        storage), because at small T copying 3·D² weights costs as much as the attention.
        """
        params = (self.q.weight, self.k.weight, self.v.weight, self.q.bias, self.k.bias, self.v.bias)
        if torch.is_grad_enabled() and any(p.requires_grad for p in params):
            return torch.cat(params[:3]), torch.cat(params[3:])
        key = tuple((p.data_ptr(), p._version, p.dtype, p.device) for p in params)
        if getattr(self, "_fused_key", None) != key:
            with torch.no_grad():
                self._fused = (torch.cat(params[:3]), torch.cat(params[3:]))
            self._fused_key = key
        return self._fused

    @property
    def config(self) -> dict:
        extra = {name: True for name in ("query_adapter", "question_attention")
                 if getattr(self, name)}  # absent = the paper's agent
        return {"dim": self.dim, "window": self.window, "heads": self.heads, **extra}

    def event_features(self, features: torch.Tensor, text: torch.Tensor | None = None) -> torch.Tensor:
        """``F_e = MLP(WindowAttn(F_f + PE)) + F_f``: [B, T, D] -> [B, T, D]. With question
        attention, ``text`` [B, D] (required then) adds ``W_c F_t`` to every attention input."""
        x = features + sinusoidal_positions(features.shape[1], self.dim, features.device, features.dtype)
        if self.question_attention:
            if text is None:
                raise ValueError("event_features: this agent has question_attention; pass the question text [B, D]")
            x = x + self.condition(text)[:, None, :]
        weight, bias = self._fused_qkv()
        attn = window_attention_qkv(F.linear(x, weight, bias), self.window, self.heads, self.block)
        return self.mlp(attn) + features

    def forward(self, features: torch.Tensor, text: torch.Tensor, options: torch.Tensor | None = None,
                option_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Scores S [T] | [B, T]. ``options`` / ``option_mask`` (a multiple-choice question's option
        embeddings) are accepted for a common agent interface and not used by the paper's agent."""
        unbatched = features.dim() == 2
        if unbatched:
            features, text = features[None], text.reshape(1, -1)
        if features.dim() != 3 or features.shape[-1] != self.dim:
            raise ValueError(
                f"features must be [T, {self.dim}] or [B, T, {self.dim}], got {tuple(features.shape)}; "
                "the agent's dim must match the encoder's embedding size"
            )
        if features.shape[1] == 0:
            raise ValueError("features has no candidate frames (T = 0); nothing to score")
        if text.dim() != 2 or text.shape != (features.shape[0], self.dim):
            raise ValueError(
                f"text must be [{self.dim}] (or [B, {self.dim}] with batched features), got {tuple(text.shape)}"
            )
        if self.query_adapter:
            text = text + self.query(text)
        scores = _cosine(self.event_features(features, text), text) + _cosine(features, text)
        return scores[0] if unbatched else scores

    @classmethod
    def load_published(
        cls, checkpoint: str | Path | Mapping[str, torch.Tensor], window: int = 12, heads: int = 8
    ) -> TemporalAgent:
        """Build an agent from a published TSPO checkpoint (the official release's key names).

        ``checkpoint``: a ``.bin``/``.pt`` file (read with ``torch.load(weights_only=True)``), a
        ``.safetensors`` file, or a state dict. Keys may live under ``selector.`` or
        ``multiModal_align.``, optionally prefixed by ``model.``; other keys (CLIP, the LLM) are
        ignored. ``temporal.ffn_o`` is present in the published weights but unused by the model.
        """
        state = _read_state_dict(checkpoint)
        prefix = _find_published_prefix(state)
        native: dict[str, torch.Tensor] = {}
        for key, tensor in state.items():
            if not key.startswith(prefix):
                continue
            rest = key[len(prefix) :]
            if rest.startswith(_PUBLISHED_UNUSED):
                continue
            for pub, nat in _PUBLISHED_TO_NATIVE.items():
                if rest.startswith(pub):
                    native[nat + rest[len(pub) :]] = tensor
                    break
        weight = native["q.weight"]
        dim = int(weight.shape[0])
        agent = cls(dim=dim, window=window, heads=heads)
        expected = {k: tuple(v.shape) for k, v in agent.state_dict().items()}
        missing = sorted(set(expected) - set(native))
        wrong = {k: tuple(v.shape) for k, v in native.items() if k in expected and tuple(v.shape) != expected[k]}
        if missing or wrong:
            raise PublishedCheckpointError(
                f"published checkpoint under prefix {prefix!r} does not match a TSPO selector of dim {dim}: "
                f"missing {[_native_to_published(prefix, k) for k in missing]}, "
                f"wrong shapes {({_native_to_published(prefix, k): s for k, s in wrong.items()})} "
                f"(expected {[(_native_to_published(prefix, k), s) for k, s in expected.items()]})"
            )
        agent.load_state_dict({k: v.float() for k, v in native.items() if k in expected})
        return agent


def _cosine(frames: torch.Tensor, text: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """cos(frames[b, t], text[b]) as a matvec: [B, T, D], [B, D] -> [B, T]."""
    text = text / text.norm(dim=-1, keepdim=True).clamp_min(eps)
    dots = torch.einsum("btd,bd->bt", frames, text)
    return dots / frames.norm(dim=-1).clamp_min(eps)


def _native_to_published(prefix: str, key: str) -> str:
    for pub, nat in _PUBLISHED_TO_NATIVE.items():
        if key.startswith(nat):
            return prefix + pub + key[len(nat) :]
    return prefix + key


def _read_state_dict(checkpoint: str | Path | Mapping[str, torch.Tensor]) -> Mapping[str, torch.Tensor]:
    if isinstance(checkpoint, Mapping):
        return checkpoint
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(
            f"published checkpoint {str(path)!r} does not exist; pass the path of the TSPO selector "
            "weights (.bin or .safetensors)"
        )
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - re-raised with the path and the fix
        raise PublishedCheckpointError(
            f"could not read {str(path)!r} as a tensor checkpoint with torch.load(weights_only=True): {err}"
        ) from err
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise PublishedCheckpointError(f"{str(path)!r} holds a {type(state).__name__}, not a state dict")
    return state


def _find_published_prefix(state: Mapping[str, torch.Tensor]) -> str:
    anchors = [k for k in state if k.endswith("temporal.Self_q.weight")]
    if not anchors:
        sample = sorted(state)[:8]
        raise PublishedCheckpointError(
            "no TSPO selector found in the checkpoint: expected keys like 'selector.temporal.Self_q.weight' or "
            f"'multiModal_align.temporal.Self_q.weight'; first keys seen: {sample}"
        )
    if len(anchors) > 1:
        raise PublishedCheckpointError(f"checkpoint holds several selectors {anchors}; pass one state dict")
    return anchors[0][: -len("temporal.Self_q.weight")]
