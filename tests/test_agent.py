"""TemporalAgent: math, shapes, banded memory, published-checkpoint import."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tspo.agents import PublishedCheckpointError, TemporalAgent, sinusoidal_positions
from tspo.agents.temporal import window_attention


def dense_reference(agent: TemporalAgent, feats: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """The agent's maths written the slow, obvious way: dense T x T logits with a band mask."""
    T, D = feats.shape
    H, w = agent.heads, agent.window
    pos = torch.arange(T, dtype=torch.float32) / T
    pe = torch.zeros(T, D)
    for j in range(D // 2):
        div = math.exp(2 * j * (-math.log(10000.0) / D))
        pe[:, 2 * j] = torch.sin(pos * div)
        pe[:, 2 * j + 1] = torch.cos(pos * div)
    x = feats + pe
    q, k, v = agent.q(x), agent.k(x), agent.v(x)
    rows = torch.arange(T)[:, None]
    cols = torch.arange(T)[None, :]
    allowed = torch.zeros(T, T, dtype=torch.bool)
    for m in range(w):  # the published clamp rule
        allowed[rows[:, 0], (rows[:, 0] - w // 2 + m).clamp(0, T - 1)] = True
    del cols
    qh, kh, vh = (t.view(T, H, D // H).transpose(0, 1) for t in (q, k, v))
    logits = (qh @ kh.transpose(-1, -2)) / math.sqrt(D / H)
    logits = logits.masked_fill(~allowed, -1e6)
    attn = (logits.softmax(-1) @ vh).transpose(0, 1).reshape(T, D)
    fe = agent.mlp(attn) + feats
    return F.cosine_similarity(fe, text[None], dim=-1) + F.cosine_similarity(feats, text[None], dim=-1)


def randomise(agent: TemporalAgent, seed: int = 0) -> TemporalAgent:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in agent.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return agent


@pytest.mark.parametrize("T", [1, 3, 11, 12, 13, 64, 65, 150])
def test_matches_dense_reference(T):
    agent = randomise(TemporalAgent(dim=32, window=12, heads=8, block=16))
    g = torch.Generator().manual_seed(T)
    feats, text = torch.randn(T, 32, generator=g), torch.randn(32, generator=g)
    torch.testing.assert_close(agent(feats, text), dense_reference(agent, feats, text), atol=1e-5, rtol=1e-5)


def test_block_size_does_not_change_scores():
    feats, text = torch.randn(100, 32), torch.randn(32)
    ref = randomise(TemporalAgent(dim=32, block=64))(feats, text)
    for block in (1, 5, 12, 100, 1000):
        torch.testing.assert_close(randomise(TemporalAgent(dim=32, block=block))(feats, text), ref)


def test_batched_equals_unbatched():
    agent = randomise(TemporalAgent(dim=32))
    feats, text = torch.randn(3, 40, 32), torch.randn(3, 32)
    batched = agent(feats, text)
    assert batched.shape == (3, 40)
    for b in range(3):
        torch.testing.assert_close(batched[b], agent(feats[b], text[b]))


def test_untrained_agent_ranks_like_clip_similarity():
    agent = TemporalAgent(dim=32)
    feats, text = torch.randn(50, 32), torch.randn(32)
    torch.testing.assert_close(agent(feats, text), 2 * F.cosine_similarity(feats, text[None], dim=-1))


def test_scores_bounded_and_gradients_flow():
    agent = randomise(TemporalAgent(dim=32))
    s = agent(torch.randn(20, 32), torch.randn(32))
    assert s.shape == (20,) and s.abs().max() <= 2 + 1e-5
    s.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in agent.parameters())


def test_positions_are_normalised_by_length():
    pe = sinusoidal_positions(10, 8)
    assert pe.shape == (10, 8)
    torch.testing.assert_close(pe[0], torch.tensor([0.0, 1.0] * 4))
    # position 5 of 10 equals position 50 of 100: the encoding depends on t / T only
    torch.testing.assert_close(sinusoidal_positions(100, 8)[50], pe[5])


def test_parameter_count_at_clip_large():
    n = sum(p.numel() for p in TemporalAgent(dim=768).parameters())
    assert n == 5 * (768 * 768 + 768)  # q, k, v, and the 2-layer MLP; no output projection


def test_band_attention_memory_is_linear_in_T():
    """T = 36,000 (10 h at 1 fps) must not build a T x T matrix: 36k^2 floats would be 5 GB."""
    agent = TemporalAgent(dim=16, heads=2)
    with torch.no_grad():
        s = agent(torch.randn(36_000, 16), torch.randn(16))
    assert s.shape == (36_000,) and torch.isfinite(s).all()


@pytest.mark.parametrize(
    "feats,text,match",
    [
        (torch.randn(10, 32), torch.randn(16), "text must be"),
        (torch.randn(10, 32, 2), torch.randn(32), "features must be"),
        (torch.randn(0, 32), torch.randn(32), "no candidate frames"),
    ],
)
def test_bad_shapes_raise(feats, text, match):
    with pytest.raises(ValueError, match=match):
        TemporalAgent(dim=32)(feats, text)


def test_bad_config_raises():
    with pytest.raises(ValueError, match="divisible by heads"):
        TemporalAgent(dim=30, heads=8)
    with pytest.raises(ValueError, match="window"):
        TemporalAgent(dim=32, window=0)


def _published_state(agent: TemporalAgent, prefix: str) -> dict[str, torch.Tensor]:
    names = {"q": "temporal.Self_q", "k": "temporal.Self_k", "v": "temporal.Self_v", "mlp.0": "mlp.0", "mlp.2": "mlp.2"}
    state = {}
    for native, pub in names.items():
        layer = agent.get_submodule(native)
        state[f"{prefix}{pub}.weight"] = layer.weight.detach().clone()
        state[f"{prefix}{pub}.bias"] = layer.bias.detach().clone()
    d = agent.dim
    state[f"{prefix}temporal.ffn_o.weight"] = torch.randn(d, d)  # present in the release, unused
    state[f"{prefix}temporal.ffn_o.bias"] = torch.randn(d)
    state["model.vision_tower.blocks.0.weight"] = torch.randn(3, 3)  # other parts are ignored
    return state


@pytest.mark.parametrize("prefix", ["selector.", "multiModal_align.", "model.multiModal_align."])
@pytest.mark.parametrize("fmt", ["bin", "safetensors", "dict"])
def test_published_import_round_trip(tmp_path, prefix, fmt):
    native = randomise(TemporalAgent(dim=64, heads=8), seed=3)
    state = _published_state(native, prefix)
    if fmt == "bin":
        src = tmp_path / "tspo_0.4b.bin"
        torch.save(state, src)
    elif fmt == "safetensors":
        from safetensors.torch import save_file

        src = tmp_path / "tspo.safetensors"
        save_file(state, str(src))
    else:
        src = state
    imported = TemporalAgent.load_published(src)
    feats, text = torch.randn(30, 64), torch.randn(64)
    torch.testing.assert_close(imported(feats, text), native(feats, text))


def test_published_import_errors(tmp_path):
    state = _published_state(randomise(TemporalAgent(dim=64)), "selector.")
    del state["selector.mlp.2.bias"]
    with pytest.raises(PublishedCheckpointError, match=r"missing \['selector.mlp.2.bias'\]"):
        TemporalAgent.load_published(state)
    state = _published_state(randomise(TemporalAgent(dim=64)), "selector.")
    state["selector.mlp.0.weight"] = torch.randn(64, 32)
    with pytest.raises(PublishedCheckpointError, match="wrong shapes"):
        TemporalAgent.load_published(state)
    with pytest.raises(PublishedCheckpointError, match="no TSPO selector"):
        TemporalAgent.load_published({"foo.weight": torch.randn(2)})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        TemporalAgent.load_published(tmp_path / "nope.bin")
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(PublishedCheckpointError, match="weights_only"):
        TemporalAgent.load_published(bad)


def test_window_attention_rejects_bad_heads():
    x = torch.randn(1, 5, 30)
    with pytest.raises(ValueError, match="divisible"):
        window_attention(x, x, x, window=4, heads=8)


def test_inference_cache_of_fused_projection_follows_weight_updates():
    agent = randomise(TemporalAgent(dim=32))
    feats, text = torch.randn(20, 32), torch.randn(32)
    with torch.no_grad():
        before = agent(feats, text)
        agent.k.weight.add_(0.5)  # in-place update: the cached fused weight must not be reused
        after = agent(feats, text)
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, dense_reference(agent, feats, text).detach(), atol=1e-5, rtol=1e-5)
    agent.load_state_dict(randomise(TemporalAgent(dim=32), seed=9).state_dict())
    with torch.no_grad():
        torch.testing.assert_close(agent(feats, text), dense_reference(agent, feats, text), atol=1e-5, rtol=1e-5)


def test_query_adapter_starts_as_the_paper_agent_and_learns_the_text_side(tmp_path):
    from tspo.selection.selector import TSPOSelector, load_selector_agent

    torch.manual_seed(0)
    with_adapter, plain = TemporalAgent(dim=64, heads=8, query_adapter=True), TemporalAgent(dim=64, heads=8)
    plain.load_state_dict({k: v for k, v in with_adapter.state_dict().items() if not k.startswith("query.")})
    feats, text = torch.randn(2, 40, 64), torch.randn(2, 64)
    assert torch.equal(with_adapter(feats, text), plain(feats, text))          # zero-initialised residual
    assert "query_adapter" not in plain.config and with_adapter.config["query_adapter"] is True
    with_adapter(feats, text).sum().backward()
    assert with_adapter.query[2].weight.grad.abs().sum() > 0                    # the text side gets gradient
    sel = TSPOSelector(encoder="tiny-random", agent=with_adapter, cache=False)
    agent, config = load_selector_agent(sel.save_pretrained(tmp_path / "sel"))
    assert agent.query_adapter and config["agent"]["query_adapter"] is True


def test_question_attention_starts_as_the_paper_agent_and_makes_mixing_depend_on_the_question(tmp_path):
    from tspo.selection.selector import TSPOSelector, load_selector_agent

    torch.manual_seed(0)
    cond, plain = TemporalAgent(dim=64, heads=8, question_attention=True), TemporalAgent(dim=64, heads=8)
    plain.load_state_dict({k: v for k, v in cond.state_dict().items() if not k.startswith("condition.")})
    feats, text = torch.randn(2, 40, 64), torch.randn(2, 64)
    assert torch.equal(cond(feats, text), plain(feats, text))                  # zero-initialised condition
    assert "question_attention" not in plain.config and cond.config["question_attention"] is True
    with pytest.raises(ValueError, match="question_attention"):
        cond.event_features(feats)
    # once trained, the same frames mix differently under two questions
    trained = randomise(TemporalAgent(dim=64, heads=8, question_attention=True), seed=3)
    other = torch.randn(2, 64)
    assert not torch.allclose(trained.event_features(feats, text), trained.event_features(feats, other))
    sel = TSPOSelector(encoder="tiny-random", agent=trained, cache=False)
    agent, config = load_selector_agent(sel.save_pretrained(tmp_path / "sel"))
    assert agent.question_attention and config["agent"]["question_attention"] is True
    torch.testing.assert_close(agent(feats, text), trained(feats, text))
