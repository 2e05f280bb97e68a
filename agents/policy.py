"""The TSPO sampling policy: Gumbel-top-k over the agent's scores (paper Eq. 4-5).

Training draws G selections of k candidate frames from the categorical ``softmax(S / tau)``
without replacement. Adding i.i.d. Gumbel(0, 1) noise to the logits and taking the top k is
exactly a Plackett-Luce (sequential, without replacement) draw, and it does all G draws in one
tensor op: no loop over group members or picks.
"""

from __future__ import annotations

import torch

from tspo.agents.rules import select_topk
from tspo.errors import TSPOError
from tspo.settings import check_num_frames


class PolicyInputError(TSPOError, ValueError):
    """Bad input to the sampling policy (shape, k larger than the number of candidates, ...)."""


def gumbel_noise(shape: tuple[int, ...], generator: torch.Generator | None = None,
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """i.i.d. Gumbel(0, 1) samples of ``shape``, drawn from ``generator``.

    The noise is drawn on the generator's device (a CPU generator cannot fill a CUDA tensor) and
    then moved, so the same seed gives the same noise whatever device the logits live on.
    """
    gen_device = generator.device if generator is not None else torch.device("cpu")
    u = torch.rand(shape, generator=generator, device=gen_device, dtype=torch.float64)
    # Clamp away from 0 and 1 so -log(-log(u)) stays finite.
    u = u.clamp_(torch.finfo(torch.float64).tiny, 1.0 - 1e-12)
    return (-torch.log(-torch.log(u))).to(device=device, dtype=dtype)


class GumbelTopK:
    """Sample k of T candidates per draw, G draws at once (paper Eq. 4).

    ``GumbelTopK(k).sample(S / tau, num_samples=G, generator=g)`` returns
    ``idx`` int64[..., G, k] (candidate positions, ascending per draw) and
    ``logp`` float[..., G, k] = ``log_softmax(S / tau)[idx]`` (per-frame log-probability, no noise).
    """

    def __init__(self, k: int) -> None:
        try:
            self.k = check_num_frames(k, "GumbelTopK: k")
        except ValueError as err:
            raise PolicyInputError(str(err)) from None

    def __repr__(self) -> str:
        return f"GumbelTopK(k={self.k})"

    def _check(self, logits: torch.Tensor, num_samples: int) -> None:
        if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
            raise PolicyInputError("GumbelTopK: logits must be a float tensor [T] or [B, T] (pass S / tau)")
        if logits.dim() not in (1, 2):
            raise PolicyInputError(f"GumbelTopK: logits must be [T] or [B, T], got shape {tuple(logits.shape)}")
        if self.k > logits.shape[-1]:
            raise PolicyInputError(
                f"GumbelTopK: k={self.k} exceeds the number of candidates T={logits.shape[-1]}; "
                "lower k or sample more candidates (higher fps)")
        if not isinstance(num_samples, int) or num_samples < 1:
            raise PolicyInputError(f"GumbelTopK: num_samples must be a positive int, got {num_samples!r}")
        if not torch.isfinite(logits).all():
            raise PolicyInputError("GumbelTopK: logits contain NaN or inf; check the agent scores and tau")

    def sample(self, logits: torch.Tensor, num_samples: int = 8, generator: torch.Generator | None = None,
               return_order: bool = False):
        """Draw ``num_samples`` selections of ``k`` candidates from ``softmax(logits)``.

        Args:
            logits: ``S / tau``, float[T] or float[B, T].
            num_samples: group size G.
            generator: source of the Gumbel noise (reproducibility); the global RNG when None.
            return_order: also return ``order`` int64[..., G, k], the draw rank of each selected
                frame (0 = drawn first); needed for the exact Plackett-Luce log-probability.

        Returns:
            ``(idx, logp)`` or ``(idx, logp, order)``; idx int64[..., G, k] ascending per draw,
            logp float[..., G, k] = log_softmax(logits)[idx]. logp carries the gradient of logits.
        """
        self._check(logits, num_samples)
        shape = (*logits.shape[:-1], num_samples, logits.shape[-1])            # [..., G, T]
        noise = gumbel_noise(shape, generator, device=logits.device, dtype=logits.dtype)
        perturbed = logits.detach().unsqueeze(-2) + noise
        drawn = perturbed.topk(self.k, dim=-1).indices                        # [..., G, k] in draw order
        idx, perm = drawn.sort(dim=-1)                                         # ascending by time
        logp_all = torch.log_softmax(logits, dim=-1).unsqueeze(-2).expand(shape)
        logp = logp_all.gather(-1, idx)
        if return_order:
            return idx, logp, perm
        return idx, logp

    def greedy(self, scores: torch.Tensor) -> torch.Tensor:
        """Inference rule: top-k of the scores without noise, ascending. [T] | [B, T] -> int64[..., k]."""
        self._check(scores, 1)

        return select_topk(scores, self.k)
