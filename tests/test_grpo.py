"""The TSPO objective (tspo.objectives.grpo): advantages, loss and its options, temperature schedule."""

from __future__ import annotations

import math

import pytest
import torch

from tspo.objectives.grpo import (
    ObjectiveInputError,
    decoupled_advantages,
    group_advantages,
    kl_to_reference,
    plackett_luce_logp,
    policy_entropy,
    policy_stats,
    temperature_at,
    tspo_loss,
)


def test_group_advantages_formula_unbiased_std():
    r = torch.tensor([[1.0, 0.0, 2.0, 1.0]])
    a = group_advantages(r)
    expected = (r - r.mean()) / (r.std(unbiased=True) + 1e-4)
    torch.testing.assert_close(a, expected)
    assert abs(float(a.sum())) < 1e-5


def test_degenerate_group_gives_exact_zero_not_nan():
    r = torch.tensor([[0.3] * 8, [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    a = group_advantages(r)
    assert torch.isfinite(a).all()
    assert torch.equal(a[0], torch.zeros(8))
    assert a[1, 0] > 0 and (a[1, 1:] < 0).all()


def test_invalid_members_are_dropped_from_the_group_statistics():
    r = torch.tensor([[1.0, 0.0, 5.0, 1.0, 0.0]])
    valid = torch.tensor([[True, True, False, True, True]])
    a = group_advantages(r, valid)
    kept = torch.tensor([1.0, 0.0, 1.0, 0.0])
    expected = (kept - kept.mean()) / (kept.std() + 1e-4)
    torch.testing.assert_close(a[0, [0, 1, 3, 4]], expected)
    assert a[0, 2] == 0
    # one valid member left: no comparison possible -> zero, no NaN
    one = group_advantages(r, torch.tensor([[True, False, False, False, False]]))
    assert torch.equal(one, torch.zeros_like(r))


def test_decoupled_advantages_weight_accuracy_and_temporal_equally():
    r_a = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    r_t = torch.tensor([[0.0, 0.05, 0.06, 0.07]])
    summed = group_advantages(r_a + r_t)
    dec = decoupled_advantages(r_a, r_t)
    torch.testing.assert_close(dec, group_advantages(r_a) + group_advantages(r_t))
    assert not torch.allclose(summed, dec)
    # summed, the small R_T spread hardly separates the wrong answers; decoupled, it counts as much as R_A
    gap_summed = float(summed[0, 3] - summed[0, 1])
    gap_dec = float(dec[0, 3] - dec[0, 1])
    assert gap_dec > 3 * gap_summed > 0
    with pytest.raises(ObjectiveInputError, match="differ"):
        decoupled_advantages(r_a, r_t[:, :3])


def test_default_loss_value_and_gradient_are_the_paper_policy_gradient():
    torch.manual_seed(0)
    logits = torch.randn(2, 10, requires_grad=True)
    idx = torch.tensor([[[0, 3], [1, 2], [4, 9]], [[5, 6], [7, 8], [0, 1]]])
    adv = torch.tensor([[1.0, -0.5, -0.5], [0.2, 0.3, -0.5]])
    logp = torch.log_softmax(logits, -1).unsqueeze(1).expand(2, 3, 10).gather(-1, idx)
    loss = tspo_loss(logp, None, adv)
    torch.testing.assert_close(loss, -adv.mean())        # ratio == 1 on-policy
    loss.backward()
    g1 = logits.grad.clone()
    logits.grad = None
    logp2 = torch.log_softmax(logits, -1).unsqueeze(1).expand(2, 3, 10).gather(-1, idx)
    reinforce = -(logp2.mean(-1) * adv).mean(-1).mean()
    reinforce.backward()
    torch.testing.assert_close(g1, logits.grad)


def test_loss_accepts_unbatched_and_ignores_invalid_members():
    logp = torch.log(torch.full((3, 2), 0.1, requires_grad=True))
    adv = torch.tensor([1.0, -1.0, 100.0])
    valid = torch.tensor([True, True, False])
    loss = tspo_loss(logp, None, adv, valid=valid)
    torch.testing.assert_close(loss, torch.tensor(0.0))
    assert float(tspo_loss(logp, None, adv).detach()) == pytest.approx(-100 / 3)


def test_clip_option_stops_gradient_beyond_the_trust_region():
    logp_old = torch.log(torch.full((1, 2, 1), 0.1))
    # member 0: ratio 2 with A > 0 (clipped: no gradient); member 1: ratio 2 with A < 0 (kept)
    logp_new = (logp_old + torch.log(torch.tensor(2.0))).clone().requires_grad_(True)
    adv = torch.tensor([[1.0, -1.0]])
    tspo_loss(logp_new, logp_old, adv, clip_eps=0.2).backward()
    assert logp_new.grad[0, 0, 0] == 0
    assert logp_new.grad[0, 1, 0] != 0
    logp_new.grad = None
    tspo_loss(logp_new, logp_old, adv).backward()         # unclipped: both move
    assert (logp_new.grad != 0).all()
    stats = policy_stats(logp_new, logp_old, clip_eps=0.2)
    assert stats["clipfrac"] == 1.0 and stats["approx_kl"] == pytest.approx(2 - 1 - 0.6931, abs=1e-3)
    with pytest.raises(ObjectiveInputError, match="clip_eps"):
        tspo_loss(logp_new, logp_old, adv, clip_eps=0.0)


def test_kl_option_pulls_toward_the_reference():
    logp_ref = torch.log(torch.tensor([[[0.5, 0.5]]]))
    logp_new = torch.log(torch.tensor([[[0.9, 0.1]]])).requires_grad_(True)
    assert torch.all(kl_to_reference(logp_new, logp_ref) >= 0)
    assert float(kl_to_reference(logp_ref, logp_ref).abs().max()) == 0.0
    adv = torch.zeros(1, 1)
    base = tspo_loss(logp_new, None, adv)
    with_kl = tspo_loss(logp_new, None, adv, logp_ref=logp_ref, kl_beta=0.1)
    assert float(with_kl) > float(base)
    with_kl.backward()
    # gradient descent raises the under-weighted frame (0.1 -> toward 0.5) and lowers the other
    assert logp_new.grad[0, 0, 1] < 0 < logp_new.grad[0, 0, 0]
    with pytest.raises(ObjectiveInputError, match="logp_ref"):
        tspo_loss(logp_new, None, adv, kl_beta=0.1)


def test_kl_to_reference_is_k3_then_its_tangent_so_the_gradient_stays_bounded():
    d = torch.tensor([-3.0, 0.0, 2.0, 5.0, 8.0, 40.0])
    logp_new = (-d).clone().requires_grad_(True)                 # logp_ref = 0, so ref - new = d
    kl = kl_to_reference(logp_new, torch.zeros(6))
    c = 5.0
    exact = torch.exp(d) - d - 1
    tangent = math.exp(c) - c - 1 + math.expm1(c) * (d - c)
    assert torch.allclose(kl, torch.where(d <= c, exact, tangent))
    assert torch.all(kl >= 0) and torch.isfinite(kl).all()
    kl.sum().backward()
    # d(k3)/d(logp_new) = 1 - exp(d) below the bound, 1 - exp(c) above: exp(40) would be 2e17
    assert torch.allclose(logp_new.grad, 1 - torch.exp(d.clamp(max=c)))
    assert float(logp_new.grad.abs().max()) == pytest.approx(math.expm1(c))
    with pytest.raises(ObjectiveInputError, match="max_log_ratio"):
        kl_to_reference(logp_new, torch.zeros(6), max_log_ratio=0.0)


def test_plackett_luce_differs_from_per_frame_logp_only_after_the_first_pick():
    logits = torch.tensor([3.0, 1.0, 0.0, -1.0])
    idx = torch.tensor([[0, 1, 2]])
    order = torch.tensor([[0, 1, 2]])
    pl = plackett_luce_logp(logits, idx, order)[0]
    per_frame = torch.log_softmax(logits, -1)[idx[0]]
    torch.testing.assert_close(pl[0], per_frame[0])
    assert (pl[1:] > per_frame[1:]).all(), "later picks exclude the mass already drawn"
    torch.testing.assert_close(pl[1], logits[1] - torch.logsumexp(logits[1:], -1))


def test_plackett_luce_batched_matches_unbatched():
    logits = torch.randn(2, 12)
    idx = torch.tensor([[[1, 4, 7], [0, 2, 11]], [[3, 5, 6], [8, 9, 10]]])
    order = torch.tensor([[[2, 0, 1], [0, 1, 2]], [[1, 2, 0], [2, 1, 0]]])
    pl = plackett_luce_logp(logits, idx, order)
    for b in range(2):
        torch.testing.assert_close(pl[b], plackett_luce_logp(logits[b], idx[b], order[b]))
    with pytest.raises(ObjectiveInputError):
        plackett_luce_logp(logits, idx[0], order[0])


def test_temperature_schedule_is_linear_and_held():
    assert temperature_at(0, 100) == pytest.approx(0.025)
    assert temperature_at(50, 100) == pytest.approx(0.0175)
    assert temperature_at(100, 100) == pytest.approx(0.01)
    assert temperature_at(500, 100) == pytest.approx(0.01)
    assert temperature_at(10, 20, start=1.0, end=0.5) == pytest.approx(0.75)
    with pytest.raises(ObjectiveInputError, match="max_steps"):
        temperature_at(0, 0)
    with pytest.raises(ObjectiveInputError, match="> 0"):
        temperature_at(0, 10, end=0.0)


def test_entropy_is_log_t_for_uniform_and_drops_when_peaked():
    assert float(policy_entropy(torch.zeros(16))) == pytest.approx(torch.log(torch.tensor(16.0)).item())
    assert float(policy_entropy(torch.tensor([10.0, 0.0, 0.0]))) < 0.01


def test_shape_errors_name_the_inputs():
    with pytest.raises(ObjectiveInputError, match="advantages"):
        tspo_loss(torch.zeros(2, 3, 4), None, torch.zeros(2, 4))
    with pytest.raises(ObjectiveInputError, match="rewards"):
        group_advantages(torch.zeros(2, 3, 4))
    with pytest.raises(ObjectiveInputError, match="valid mask"):
        group_advantages(torch.zeros(2, 3), torch.ones(3, dtype=torch.bool))


# -- DPO on preference pairs of selections -----------------------------------------------------------
def _pair_logps(logits: torch.Tensor, chosen: torch.Tensor, rejected: torch.Tensor):
    from tspo.objectives.grpo import selection_logp

    logp = torch.log_softmax(logits, -1)
    return selection_logp(logp.gather(-1, chosen)), selection_logp(logp.gather(-1, rejected))


def test_dpo_loss_value_is_minus_log_sigmoid_of_the_margin():
    from tspo.objectives.preference import dpo_loss

    lc, lr = torch.tensor([-1.0, -3.0]), torch.tensor([-2.0, -1.0])
    rc, rr = torch.tensor([-1.5, -2.0]), torch.tensor([-1.5, -2.0])
    beta = 0.5
    expected = -torch.nn.functional.logsigmoid(beta * ((lc - rc) - (lr - rr))).mean()
    torch.testing.assert_close(dpo_loss(lc, lr, rc, rr, beta), expected)
    # weights: a weighted mean over pairs
    w = torch.tensor([3.0, 1.0])
    per = -torch.nn.functional.logsigmoid(beta * ((lc - rc) - (lr - rr)))
    torch.testing.assert_close(dpo_loss(lc, lr, rc, rr, beta, w), (per * w).sum() / 4)


def test_dpo_gradient_raises_the_chosen_selection_and_lowers_the_rejected_one():
    from tspo.objectives.preference import dpo_loss

    torch.manual_seed(0)
    logits = torch.randn(1, 12, requires_grad=True)
    chosen, rejected = torch.tensor([[0, 1, 2, 3]]), torch.tensor([[2, 3, 7, 9]])
    ref = logits.detach().clone()
    lc, lr = _pair_logps(logits, chosen, rejected)
    rc, rr = _pair_logps(ref, chosen, rejected)
    loss = dpo_loss(lc, lr, rc, rr, beta=1.0)
    torch.testing.assert_close(loss, torch.log(torch.tensor(2.0)))      # policy == reference -> log 2
    loss.backward()
    g = logits.grad[0]
    assert (g[[0, 1]] < 0).all()          # only in chosen: pushed up (gradient descent raises them)
    assert (g[[7, 9]] > 0).all()          # only in rejected: pushed down
    # shared frames (2, 3) appear in both selections: their direct terms cancel, only the softmax
    # normaliser is left, and it cancels too since both selections have k frames
    torch.testing.assert_close(g[[2, 3]], torch.zeros(2), atol=1e-7, rtol=0)
    # one gradient step raises the chosen selection's log-prob and lowers the rejected one's
    with torch.no_grad():
        stepped = logits - 0.5 * logits.grad
    lc2, lr2 = _pair_logps(stepped, chosen, rejected)
    assert float(lc2) > float(lc) and float(lr2) < float(lr)


def test_dpo_identical_selections_give_log2_and_zero_gradient():
    from tspo.objectives.preference import dpo_loss

    logits = torch.randn(1, 8, requires_grad=True)
    sel = torch.tensor([[1, 4, 6]])
    lc, lr = _pair_logps(logits, sel, sel)
    ref = torch.randn(1)
    loss = dpo_loss(lc, lr, ref, ref, beta=2.0)
    torch.testing.assert_close(loss, torch.log(torch.tensor(2.0)))
    loss.backward()
    assert torch.count_nonzero(logits.grad) == 0


def test_dpo_beta_to_zero_limit_is_log2_with_a_vanishing_linear_gradient():
    from tspo.objectives.preference import dpo_loss

    torch.manual_seed(1)
    lc = torch.randn(5, requires_grad=True)
    lr, rc, rr = torch.randn(5), torch.randn(5), torch.randn(5)
    margin = (lc.detach() - rc) - (lr - rr)
    for beta in (1e-2, 1e-4):
        lc.grad = None
        loss = dpo_loss(lc, lr, rc, rr, beta)
        # -log sigmoid(beta m) = log 2 - beta m / 2 + O(beta^2)
        torch.testing.assert_close(loss, torch.log(torch.tensor(2.0)) - beta * margin.mean() / 2, atol=beta**2, rtol=0)
        loss.backward()
        torch.testing.assert_close(lc.grad, torch.full((5,), -beta / 2 / 5), atol=beta**2, rtol=0)


def test_dpo_reference_terms_carry_no_gradient_and_bad_inputs_raise():
    from tspo.objectives.grpo import selection_logp
    from tspo.objectives.preference import dpo_loss

    lc, lr = torch.zeros(3, requires_grad=True), torch.zeros(3, requires_grad=True)
    rc, rr = torch.zeros(3, requires_grad=True), torch.zeros(3, requires_grad=True)
    dpo_loss(lc, lr, rc, rr, 1.0).backward()
    assert rc.grad is None and rr.grad is None and lc.grad is not None
    with pytest.raises(ObjectiveInputError, match="beta"):
        dpo_loss(lc, lr, rc, rr, 0.0)
    with pytest.raises(ObjectiveInputError, match=r"float\[P\]"):
        dpo_loss(lc, lr[:2], rc, rr, 1.0)
    with pytest.raises(ObjectiveInputError, match="no pairs"):
        dpo_loss(*(torch.zeros(0),) * 4, 1.0)
    with pytest.raises(ObjectiveInputError, match="weights"):
        dpo_loss(lc, lr, rc, rr, 1.0, torch.tensor([1.0, -1.0, 1.0]))
    torch.testing.assert_close(selection_logp(torch.tensor([[-1.0, -2.0], [-0.5, -0.5]])), torch.tensor([-3.0, -1.0]))


def test_explore_logits_is_the_eps_uniform_mixture_and_draws_far_frames():
    from tspo.agents.policy import GumbelTopK
    from tspo.objectives.grpo import explore_logits

    logits = torch.tensor([[40.0, 39.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])          # S / tau at a small tau
    mixed = explore_logits(logits, 0.2)
    want = 0.8 * torch.softmax(logits, -1) + 0.2 / 8
    torch.testing.assert_close(mixed.exp(), want)
    assert explore_logits(logits, 0.0) is logits
    with pytest.raises(ValueError, match=r"in \[0, 1\)"):
        explore_logits(logits, 1.0)
    # without the mixture the 6 low frames are never drawn; with it, about eps of the time
    policy, g = GumbelTopK(1), torch.Generator().manual_seed(0)
    plain, _ = policy.sample(logits, 2000, g)
    explored, _ = policy.sample(mixed, 2000, g)
    assert (plain >= 2).float().mean() == 0.0
    assert 0.1 < (explored >= 2).float().mean() < 0.2                             # 0.2 * 6 / 8 = 0.15
    # the gradient reaches the agent's scores through the mixture
    s = logits.clone().requires_grad_(True)
    explore_logits(s, 0.2)[0, 3].backward()
    assert s.grad.abs().sum() > 0


def test_span_mass_loss_is_minus_log_mass_in_the_spans_and_ignores_rows_without():
    import math

    from tspo.objectives.grpo import span_mass_loss

    logits = torch.zeros(2, 4, requires_grad=True)
    inside = torch.tensor([[True, False, False, False], [False, False, False, False]])
    loss = span_mass_loss(logits, inside)
    assert math.isclose(float(loss), math.log(4), rel_tol=1e-6)          # mass 1/4 in row 0; row 1 has no span
    loss.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad[1].abs().sum() == 0
    assert logits.grad[0, 0] < 0 < logits.grad[0, 1]                     # descent raises the span, lowers the rest
    assert float(span_mass_loss(torch.zeros(1, 3), torch.zeros(1, 3, dtype=torch.bool))) == 0.0
    with pytest.raises(ObjectiveInputError, match="span_mass_loss"):
        span_mass_loss(torch.zeros(1, 3), torch.zeros(1, 4, dtype=torch.bool))
