"""GumbelTopK: the TSPO sampling policy (paper Eq. 4-5)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from tspo.agents.policy import GumbelTopK, PolicyInputError
from tspo.objectives.grpo import plackett_luce_logp


def test_shapes_sorted_unique_and_logp_is_log_softmax_1d():
    logits = torch.randn(20, requires_grad=True)
    idx, logp = GumbelTopK(5).sample(logits, num_samples=7, generator=torch.Generator().manual_seed(0))
    assert idx.shape == (7, 5) and idx.dtype == torch.int64 and logp.shape == (7, 5)
    assert (idx[:, 1:] > idx[:, :-1]).all(), "each draw is ascending and has no repeats"
    expected = torch.log_softmax(logits, -1)[idx]
    torch.testing.assert_close(logp, expected)
    logp.sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_batched_matches_shapes_and_rows_are_independent():
    logits = torch.randn(3, 30)
    idx, logp = GumbelTopK(4).sample(logits, num_samples=8, generator=torch.Generator().manual_seed(1))
    assert idx.shape == (3, 8, 4) and logp.shape == (3, 8, 4)
    for b in range(3):
        torch.testing.assert_close(logp[b], torch.log_softmax(logits[b], -1)[idx[b]])


def test_generator_makes_draws_reproducible_and_seeds_differ():
    logits = torch.zeros(64)
    pol = GumbelTopK(8)
    a, _ = pol.sample(logits, 8, generator=torch.Generator().manual_seed(3))
    b, _ = pol.sample(logits, 8, generator=torch.Generator().manual_seed(3))
    c, _ = pol.sample(logits, 8, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_low_temperature_picks_the_top_k_and_greedy_agrees():
    scores = torch.randn(50)
    tau = 1e-4
    idx, _ = GumbelTopK(6).sample(scores / tau, 4, generator=torch.Generator().manual_seed(0))
    top = GumbelTopK(6).greedy(scores)
    assert torch.equal(top, scores.topk(6).indices.sort().values)
    assert all(torch.equal(row, top) for row in idx)


def test_first_pick_frequency_follows_softmax():
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0])
    idx, _ = GumbelTopK(1).sample(logits, 20000, generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(idx[:, 0], minlength=4).float() / 20000
    torch.testing.assert_close(freq, torch.softmax(logits, -1), atol=0.015, rtol=0)


def test_ordered_draw_frequencies_match_plackett_luce():
    """Gumbel-top-k is a Plackett-Luce draw: the empirical law of ordered pairs matches PL exactly."""
    logits = torch.tensor([1.5, 0.5, 0.0, -1.0])
    n = 40000
    idx, _, order = GumbelTopK(2).sample(logits, n, generator=torch.Generator().manual_seed(0), return_order=True)
    drawn = idx.gather(-1, order.argsort(-1))                    # draw order
    pl = plackett_luce_logp(logits, idx, order).sum(-1).exp()   # [n]
    counts: dict[tuple[int, int], int] = {}
    for pair in map(tuple, drawn.tolist()):
        counts[pair] = counts.get(pair, 0) + 1
    probs = {}
    for pair, p in zip(map(tuple, drawn.tolist()), pl.tolist()):
        probs[pair] = p
    for pair, c in counts.items():
        assert abs(c / n - probs[pair]) < 0.01, pair
    # PL probabilities of all ordered pairs sum to 1.
    total = 0.0
    for a, b in itertools.permutations(range(4), 2):
        i = torch.tensor([[min(a, b), max(a, b)]])
        o = torch.tensor([[0, 1]]) if a < b else torch.tensor([[1, 0]])
        total += math.exp(float(plackett_luce_logp(logits, i, o).sum()))
    assert abs(total - 1.0) < 1e-5


def test_noise_on_logit_device_is_same_as_cpu():
    logits = torch.randn(16, dtype=torch.float64)
    a, la = GumbelTopK(3).sample(logits, 4, generator=torch.Generator().manual_seed(9))
    b, lb = GumbelTopK(3).sample(logits.float(), 4, generator=torch.Generator().manual_seed(9))
    assert torch.equal(a, b) and la.dtype == torch.float64 and lb.dtype == torch.float32


@pytest.mark.parametrize(
    ("k", "logits", "num_samples", "match"),
    [
        (0, torch.zeros(4), 2, "k must be a positive int"),
        (5, torch.zeros(4), 2, "exceeds the number of candidates"),
        (2, torch.zeros(2, 3, 4), 2, r"\[T\] or \[B, T\]"),
        (2, torch.zeros(4, dtype=torch.long), 2, "float tensor"),
        (2, torch.tensor([0.0, float("nan"), 1.0]), 2, "NaN"),
        (2, torch.zeros(4), 0, "num_samples"),
    ],
)
def test_bad_inputs_raise_clear_errors(k, logits, num_samples, match):
    with pytest.raises(PolicyInputError, match=match):
        GumbelTopK(k).sample(logits, num_samples)
