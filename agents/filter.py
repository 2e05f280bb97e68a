"""The question-conditioned temporal filter agent (beyond the paper; agent family ``"filter"``).

The paper's agent (:class:`~tspo.agents.temporal.TemporalAgent`) scores a frame by how much it, and
its event context, *looks like* the question. It cannot express "the frames just after the ones that
match the question": its positions are divided by T (neighbours differ by ~0.004 at T = 400 against a
feature norm of ~8.7) and its temporal mixing acts on frame content, not on the similarity profile.
This agent adds a learned, question-conditioned 1-D filter over the similarity profiles::

    S_t = agent_t + sum_{c, d = -R..R} w_{c,d}(q) · z_c(t + d)
    z_0 = z(cos(F_t, q))                          the question's similarity profile
    z_1 = z(max_j cos(F_t, o_j))                  the best option's profile (0 without options)
    w(q) = Linear(D -> 2 · (2R + 1))(q)           zero-initialised

``z`` standardises a profile over the video's T frames (mean 0, std 1; out-of-range offsets read 0,
the mean). With ``w`` zero the agent *is* the paper's agent (same weight names, so a paper selector
or a published checkpoint initialises it and the filter starts at zero). The filter is a grouped
``conv1d`` with one kernel per sample: O(T · R), a 10-hour video at 1 fps (T = 36,000) runs on CPU.

``z_1`` makes a multiple-choice question look for its options ("which came first, A or B" names
both), gated by the question through ``w``: zero-initialised, so colour / count questions are not
touched unless training finds the options help them.

The set head (``set_logit``, a ``Linear(D -> 1)``, zero-initialised) says whether the question needs
picks spread over distinct events (count, order: temporal non-max suppression with ``nms_radius``
frames) or several picks inside one event (motion: plain top-k): :meth:`FilterAgent.set_radius` is
the radius the ``tspo+nms`` method uses (0 = plain top-k, which an untrained head gives); ``tspo+shot``
uses the same radius but stops the window at the pick's shot cuts (cuts in the frame features). Its
training target is :func:`tspo.objectives.set_rule.set_rule_targets`. ``tspo+shot`` is this family's
:attr:`~FilterAgent.default_method`: a filter selector uses it wherever a call names no method. (It was
``tspo+nms`` until the shot rule measured better on count: ``benchmarks/RESULTS.md``, ``filter_goal_shot``;
a selector whose ``config.json`` names ``"method": "tspo+nms"`` keeps it.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tspo.agents.rules import DEFAULT_NMS_RADIUS
from tspo.agents.temporal import TemporalAgent, _cosine

FILTER_CHANNELS = 2  # question profile, option profile
DEFAULT_FILTER_RADIUS = 8  # frames; the prototype's ±8


def standardise(profile: torch.Tensor, eps: float = 1e-6, mask: torch.Tensor | None = None) -> torch.Tensor:
    """z-score of each row over its last axis (frames): [..., T] -> [..., T]; a flat row gives 0.

    ``mask`` bool[..., T] (True = a real frame; None: all real): mean and std over the real frames
    only, and padded frames read 0 (the mean) so a filter never sees them."""
    if mask is None:
        mean = profile.mean(dim=-1, keepdim=True)
        std = profile.std(dim=-1, keepdim=True, unbiased=False)
        return (profile - mean) / std.clamp_min(eps)
    mask = mask.to(device=profile.device, dtype=torch.bool).expand_as(profile)
    weight = mask.to(profile.dtype)
    count = weight.sum(-1, keepdim=True).clamp_min(1.0)
    mean = (profile * weight).sum(-1, keepdim=True) / count
    centred = torch.where(mask, profile - mean, torch.zeros_like(profile))
    std = (centred.square().sum(-1, keepdim=True) / count).sqrt()
    return centred / std.clamp_min(eps)


def train_only(agent: nn.Module, parts: tuple[str, ...]) -> list[nn.Parameter]:
    """Leave ``requires_grad`` on only the parameters of ``agent``'s submodules named in ``parts`` (e.g.
    ``("filter",)`` for ``w(q)``, ``("filter", "set_head")``) and return those parameters. An agent with
    none of them is left unchanged and gives [] (the caller says what to do instead)."""
    prefixes = tuple(f"{part}." for part in parts)
    named = list(agent.named_parameters())
    chosen = [p for n, p in named if n.startswith(prefixes)]
    if chosen:
        for n, p in named:
            p.requires_grad_(n.startswith(prefixes))
    return chosen


def _unit(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(eps)


def option_profile(features: torch.Tensor, options: torch.Tensor | None,
                   option_mask: torch.Tensor | None = None) -> torch.Tensor:
    """``max_j cos(F_t, o_j)`` over a sample's valid options: features [B, T, D], options [B, N, D],
    option_mask bool[B, N] (None: all valid) -> [B, T]; rows without a valid option (or ``options``
    None / N = 0) are 0."""
    bsz, num_frames, _ = features.shape
    if options is None or options.shape[1] == 0:
        return features.new_zeros(bsz, num_frames)
    # divide the dot products by the frame norms: no normalised [B, T, D] copy of the features
    norms = features.norm(dim=-1).clamp_min(1e-8)                                # [B, T]
    cos = torch.einsum("btd,bnd->bnt", features, _unit(options)) / norms[:, None, :]   # [B, N, T]
    if option_mask is None:
        return cos.max(dim=1).values
    mask = option_mask.to(torch.bool)
    best = cos.masked_fill(~mask[:, :, None], float("-inf")).max(dim=1).values  # [B, T]
    return torch.where(mask.any(dim=1, keepdim=True), best, torch.zeros_like(best))


def profile_filter(profiles: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """``out[b, t] = sum_{c,d} kernels[b, c, d + R] · profiles[b, c, t + d]`` (zero outside the video):
    profiles [B, C, T], kernels [B, C, 2R + 1] -> [B, T]. One grouped conv1d, one kernel per sample."""
    bsz, channels, num_frames = profiles.shape
    radius = (kernels.shape[-1] - 1) // 2
    out = F.conv1d(profiles.reshape(1, bsz * channels, num_frames), kernels, padding=radius, groups=bsz)
    return out.reshape(bsz, num_frames)


class FilterAgent(TemporalAgent):
    """The paper's agent plus a question-conditioned filter over similarity profiles (module docstring):
    ``(F_f [T, D] | [B, T, D], F_t [D] | [B, D], options [N, D] | [B, N, D] | None, option_mask) -> S``.

    ``filter_radius`` R: the filter sees frames t − R … t + R. ``nms_radius``: the suppression radius
    (frames) the set head switches on. Other arguments are :class:`TemporalAgent`'s.
    """

    family = "filter"
    reads_options = True
    reads_frame_mask = True   # scores padded batches of needles of different lengths (span fit, batched warm start)
    # temporal NMS with the radius the set head picks per question (0 = plain top-k): what this agent is for
    default_method = "tspo+shot"

    def __init__(self, dim: int = 768, window: int = 12, heads: int = 8, block: int = 64,
                 query_adapter: bool = False, question_attention: bool = False,
                 filter_radius: int = DEFAULT_FILTER_RADIUS, nms_radius: int = DEFAULT_NMS_RADIUS) -> None:
        super().__init__(dim, window, heads, block, query_adapter, question_attention)
        for name, value, low in (("filter_radius", filter_radius, 0), ("nms_radius", nms_radius, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"FilterAgent {name} must be an int >= {low} (frames), got {value!r}")
        self.filter_radius, self.nms_radius = filter_radius, nms_radius
        self.taps = 2 * filter_radius + 1
        self.filter = nn.Linear(dim, FILTER_CHANNELS * self.taps)
        self.set_head = nn.Linear(dim, 1)
        for layer in (self.filter, self.set_head):  # zero: an untrained agent is the paper's agent, top-k
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    @property
    def config(self) -> dict:
        return {**super().config, "family": self.family, "filter_radius": self.filter_radius,
                "nms_radius": self.nms_radius}

    def kernels(self, text: torch.Tensor) -> torch.Tensor:
        """The filter of each question: text [B, D] -> [B, C, 2R + 1] (channel 0: question, 1: options)."""
        return self.filter(text).reshape(text.shape[0], FILTER_CHANNELS, self.taps)

    def profiles(self, features: torch.Tensor, text: torch.Tensor, options: torch.Tensor | None = None,
                 option_mask: torch.Tensor | None = None, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The standardised profiles the filter reads: [B, T, D], [B, D], [B, N, D] -> [B, C, T];
        ``frame_mask`` bool[B, T] (True = real frame): statistics over real frames, padding reads 0."""
        question = _cosine(features, text)                                          # [B, T]
        return torch.stack([standardise(question, mask=frame_mask),
                            standardise(option_profile(features, options, option_mask), mask=frame_mask)], 1)

    def forward(self, features: torch.Tensor, text: torch.Tensor, options: torch.Tensor | None = None,
                option_mask: torch.Tensor | None = None, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Scores S [T] | [B, T] of candidate frames (module docstring).

        ``frame_mask`` bool[T] | bool[B, T] (True = a real frame; None: all real) scores a batch of
        videos padded to one T: the profiles are standardised over each row's real frames, padded
        frames do not reach the filter, and their scores are -inf (never picked, no softmax mass).
        The paper part (positions t / T, window attention) sees the padded length: rows match their
        unpadded scores exactly when that part is untrained or frozen at its start (``S = 2 cos``),
        otherwise up to its edge and position effects."""
        unbatched = features.dim() == 2
        base = super().forward(features, text)  # checks the shapes
        if unbatched:
            features, text = features[None], text.reshape(1, -1)
            base = base[None]
            if options is not None:
                options = options[None]
                option_mask = None if option_mask is None else option_mask.reshape(1, -1)
            if frame_mask is not None:
                frame_mask = frame_mask.reshape(1, -1)
        options, option_mask = self._check_options(features, options, option_mask)
        if frame_mask is not None:
            if tuple(frame_mask.shape) != tuple(features.shape[:2]) or frame_mask.dtype != torch.bool:
                raise ValueError(f"frame_mask must be bool[B, T] = {tuple(features.shape[:2])} like the features "
                                 f"(True = a real frame), got {frame_mask.dtype} {tuple(frame_mask.shape)}")
            frame_mask = frame_mask.to(features.device)
        profiles = self.profiles(features, text, options, option_mask, frame_mask)
        scores = base + profile_filter(profiles, self.kernels(text))
        if frame_mask is not None:
            scores = scores.masked_fill(~frame_mask, float("-inf"))
        return scores[0] if unbatched else scores

    def _check_options(self, features: torch.Tensor, options: torch.Tensor | None,
                       option_mask: torch.Tensor | None) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        if options is None:
            if option_mask is not None:
                raise ValueError("option_mask given without options; pass options [B, N, D] too")
            return None, None
        bsz = features.shape[0]
        if options.dim() != 3 or options.shape[0] != bsz or options.shape[2] != self.dim:
            raise ValueError(f"options must be [N, {self.dim}] (or [B, N, {self.dim}] with batched features, "
                             f"B = {bsz}), got {tuple(options.shape)}")
        if option_mask is not None and tuple(option_mask.shape) != tuple(options.shape[:2]):
            raise ValueError(f"option_mask must be [B, N] = {tuple(options.shape[:2])} like options, "
                             f"got {tuple(option_mask.shape)}")
        return options.to(features.dtype), option_mask

    def set_logit(self, text: torch.Tensor) -> torch.Tensor:
        """Logit that the question needs picks over distinct events (suppress): [B, D] | [D] -> [B] | []."""
        return self.set_head(text)[..., 0]

    def set_radius(self, text: torch.Tensor) -> torch.Tensor:
        """The suppression radius (frames) for each question: ``nms_radius`` where :meth:`set_logit` > 0,
        else 0 (plain top-k): [B, D] | [D] -> int64[B] | int64[]."""
        logit = self.set_logit(text)
        return torch.where(logit > 0, torch.full_like(logit, self.nms_radius), torch.zeros_like(logit)).long()
