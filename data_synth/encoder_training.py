"""A small open_clip model that understands the synthetic world (``tspo synth encoder``).

Trained contrastively from scratch on rendered frames of the target family (shapes, colours,
backgrounds, written words; ``tspo.data_synth.render.event_frames``) and captions about them: the
events' own descriptions (``Event.describe``), short phrases, and the renderer's question wordings
(``tspo.data_synth.events.QUESTION_TEMPLATES``). A caption usually fits many frames of a batch
("a red shape"), so the loss is a multi-positive InfoNCE: every frame whose attributes satisfy a
caption is one of its positives. Motion is not learnt (one frame does not show it).

The result is an open_clip checkpoint of the ``tspo-synth`` architecture
(``tspo/model_configs/tspo-synth.json``): ``DIR/open_clip_model.safetensors`` (float16) and
``DIR/open_clip_config.json``, loadable as ``tspo-synth:DIR/open_clip_model.safetensors`` or
``local-dir:DIR``; the copy shipped with the package is the spec ``tspo-synth``.
Everything is seeded: the same seed gives the same weights on the same machine.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tspo.data_synth.events import BACKGROUNDS, COLOURS, MOTIONS, QUESTION_TEMPLATES, SHAPES, WORDS, Event
from tspo.data_synth.render import event_frames
from tspo.features.encoders import model_config, preprocess_frames, register_model_configs

ARCH = "tspo-synth"
WEIGHTS_NAME = "open_clip_model.safetensors"
CONFIG_NAME = "open_clip_config.json"
# Attribute codes in a caption constraint: a field equal to ANY matches every frame, SOME matches
# a frame with any written word; NONE (no word) is the frame attribute -1 itself.
ANY, SOME, NONE = -2, -3, -1


@dataclass
class EncoderTrainConfig:
    """Training knobs (steps of ``batch`` frame-caption pairs; seconds budget on 2 CPU cores: ~3 min)."""

    seed: int = 0
    steps: int = 1500
    batch: int = 128
    lr: float = 2e-3
    warmup: int = 50
    pool: int = 4000          # rendered training frames (re-used across steps)
    heldout: int = 1000       # rendered held-out frames, for the retrieval report
    text_prob: float = 0.4    # share of frames with a written word
    sizes: tuple[int, ...] = (64, 96)  # render sizes (the encoder resizes to its 48 px input)
    # One thread by default: on a shared 2-core machine, two OpenMP threads of a small model spend
    # most of their time waiting for each other (measured ~10x slower under load).
    threads: int = 1


def _vocab():

    return list(SHAPES), list(COLOURS), list(BACKGROUNDS), list(WORDS)


def sample_attributes(rng: np.random.Generator, n: int, text_prob: float) -> np.ndarray:
    """int64[n, 4] random events: (shape, colour, background, word or -1) indices into the world's lists."""
    shapes, colours, bgs, words = _vocab()
    out = np.stack([rng.integers(len(shapes), size=n), rng.integers(len(colours), size=n),
                    rng.integers(len(bgs), size=n), rng.integers(len(words), size=n)], axis=1)
    out[rng.random(n) >= text_prob, 3] = NONE
    return out


def render_attributes(attrs: np.ndarray, rng: np.random.Generator, sizes: tuple[int, ...]) -> list[np.ndarray]:
    """One uint8[H, W, 3] frame per row of ``attrs``, at a random point of a random motion."""

    shapes, colours, bgs, words = _vocab()
    frames = []
    for (s, c, b, w), motion, size, at in zip(attrs, rng.integers(len(MOTIONS), size=len(attrs)),
                                              rng.choice(sizes, size=len(attrs)), rng.integers(4, size=len(attrs))):
        ev = Event(0, 1, shapes[s], colours[c], bgs[b], MOTIONS[motion], None if w < 0 else words[w])
        frames.append(event_frames(ev, 4, int(size))[at])  # rendering is per event; a few ms each
    return frames


def make_caption(a: np.ndarray, rng: np.random.Generator) -> tuple[str, np.ndarray]:
    """A caption about event ``a`` (shape, colour, bg, word) and its constraint int64[2, 4].

    A frame satisfies the caption when it matches either row of the constraint field by field.
    """

    shapes, colours, bgs, words = _vocab()
    s, c, b, w = (int(x) for x in a)
    shape, colour, bg = shapes[s], colours[c], bgs[b]
    only = lambda ss=ANY, cc=ANY, bb=ANY, ww=ANY: np.array([[ss, cc, bb, ww]] * 2)  # noqa: E731
    choices = [
        lambda: (Event(0, 1, shape, colour, bg, "still", None if w < 0 else words[w]).describe()
                 .replace("standing still ", ""), only(s, c, b, w if w >= 0 else ANY)),
        lambda: (f"a {colour} {shape}", only(s, c)),
        lambda: (f"a {shape}", only(s)),
        lambda: (f"a {colour} shape", only(cc=c)),
        lambda: (f"the {colour} {shape} on a {bg} background", only(s, c, b)),
        lambda: (QUESTION_TEMPLATES["colour"].format(shape=shape), only(s)),
        lambda: (QUESTION_TEMPLATES["motion"].format(shape=shape), only(s)),
        lambda: (QUESTION_TEMPLATES["count"].format(shape=shape), only(s)),
        lambda: (QUESTION_TEMPLATES["shape"].format(colour=colour), only(cc=c)),
        lambda: (QUESTION_TEMPLATES["after"].format(colour=colour, shape=shape), only(s, c)),
    ]
    if w >= 0:
        wording = [lambda: (f"the word {words[w]}", only(ww=w)), lambda: (f"{words[w]} is written", only(ww=w)),
                   lambda: (QUESTION_TEMPLATES["text"], only(ww=SOME))]
        if rng.random() < 0.5:  # words are small in the frame: ask about them often or they are never learnt
            return wording[int(rng.integers(len(wording)))]()
        choices += wording

    def order():
        s2, c2 = int((s + rng.integers(1, len(shapes))) % len(shapes)), int(rng.integers(len(colours)))
        first, second = (f"the {colours[c]} {shape}", f"the {colours[c2]} {shapes[s2]}")
        if rng.integers(2):
            first, second = second, first
        return QUESTION_TEMPLATES["order"].format(a=first, b=second), np.array([[s, c, ANY, ANY], [s2, c2, ANY, ANY]])

    choices.append(order)
    return choices[int(rng.integers(len(choices)))]()


def caption_matches(attrs: np.ndarray, constraints: np.ndarray) -> np.ndarray:
    """bool[N, M]: frame ``i`` (attrs int64[N, 4]) satisfies caption ``j`` (constraints int64[M, 2, 4])."""
    a = attrs[:, None, None, :]                     # [N, 1, 1, 4]
    c = constraints[None]                           # [1, M, 2, 4]
    ok = (c == ANY) | (c == a) | ((c == SOME) & (a >= 0))
    return ok.all(axis=-1).any(axis=-1)


def _model(seed: int):
    import open_clip

    register_model_configs()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return open_clip.create_model(ARCH, pretrained=None)


def _images(frames: list[np.ndarray], image_size: int) -> torch.Tensor:
    """float32[N, 3, S, S]: frames of mixed sizes through the encoder's own preprocessing."""

    by_size: dict[int, list[int]] = {}
    for i, f in enumerate(frames):
        by_size.setdefault(f.shape[0], []).append(i)
    out = torch.empty(len(frames), 3, image_size, image_size)
    for idx in by_size.values():
        out[idx] = preprocess_frames(torch.from_numpy(np.stack([frames[i] for i in idx])), image_size)
    return out


def retrieval_accuracy(model, tokenizer, images: torch.Tensor, attrs: np.ndarray) -> dict[str, float]:
    """Zero-shot top-1 on held-out frames: shape among 7 ("a star"), colour among 8 ("a red shape"),
    word among 10 ("the word CAT", frames with a word only)."""
    shapes, colours, _, words = _vocab()
    with torch.no_grad():
        img = F.normalize(torch.cat([model.encode_image(x) for x in images.split(256)]), dim=-1)
        out = {}
        for name, field, prompts in (("shape", 0, [f"a {s}" for s in shapes]),
                                     ("colour", 1, [f"a {c} shape" for c in colours]),
                                     ("word", 3, [f"the word {w}" for w in words])):
            txt = F.normalize(model.encode_text(tokenizer(prompts)), dim=-1)
            keep = attrs[:, field] >= 0
            pred = (img[torch.from_numpy(keep)] @ txt.T).argmax(dim=1).numpy()
            out[name] = float((pred == attrs[keep, field]).mean())
    return out


def train_encoder(cfg: EncoderTrainConfig, progress: bool = True):
    """Train the ``tspo-synth`` open_clip model; returns (model, held-out retrieval dict, seconds)."""
    t0 = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        return _train(cfg, progress, t0)
    finally:
        torch.set_num_threads(threads)


def _train(cfg: EncoderTrainConfig, progress: bool, t0: float):
    import open_clip

    rng = np.random.default_rng(cfg.seed)
    model = _model(cfg.seed)
    tokenizer = open_clip.get_tokenizer(ARCH)
    size = int(model.visual.image_size[0] if isinstance(model.visual.image_size, tuple) else model.visual.image_size)
    attrs = sample_attributes(rng, cfg.pool, cfg.text_prob)
    images = _images(render_attributes(attrs, rng, cfg.sizes), size)
    held_rng = np.random.default_rng(cfg.seed + 10_007)  # a separate stream: held-out events are unseen draws
    held_attrs = sample_attributes(held_rng, cfg.heldout, cfg.text_prob)
    held = _images(render_attributes(held_attrs, held_rng, cfg.sizes), size)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1.0, (i + 1) / cfg.warmup) * 0.5 * (1 + np.cos(np.pi * min(i, cfg.steps) / cfg.steps)))
    gen = torch.Generator().manual_seed(cfg.seed)
    model.train()
    for step in range(cfg.steps):
        idx = torch.randperm(cfg.pool, generator=gen)[: cfg.batch]
        a = attrs[idx.numpy()]
        texts, cons = zip(*(make_caption(row, rng) for row in a))
        match = torch.from_numpy(caption_matches(a, np.stack(cons))).float()           # [B, B], diagonal true
        img = model.encode_image(images[idx], normalize=True)
        txt = model.encode_text(tokenizer(list(texts)), normalize=True)
        logits = model.logit_scale.exp() * img @ txt.T
        loss = 0.5 * (-(match / match.sum(1, keepdim=True) * logits.log_softmax(1)).sum(1).mean()
                      - (match.T / match.T.sum(1, keepdim=True) * logits.T.log_softmax(1)).sum(1).mean())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, np.log(100))
        if progress and (step % 100 == 0 or step == cfg.steps - 1):
            print(f"step {step:4d}  loss {loss.item():.3f}  {time.perf_counter() - t0:.0f} s", flush=True)
    model.eval()
    metrics = retrieval_accuracy(model, tokenizer, held, held_attrs)
    return model, metrics, time.perf_counter() - t0


def save_encoder(model, out_dir: str | Path, cfg: EncoderTrainConfig, metrics: dict, seconds: float) -> Path:
    """Write ``open_clip_model.safetensors`` (float16) and ``open_clip_config.json``; returns the weights path."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    path = out / WEIGHTS_NAME
    save_file(state, str(path))
    (out / CONFIG_NAME).write_text(json.dumps({
        "model_cfg": model_config(ARCH),
        "preprocess_cfg": {"mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711]},
        "tspo": {"architecture": ARCH, "train": asdict(cfg), "heldout_top1": metrics,
                 "train_seconds": round(seconds, 1), "command": f"tspo synth encoder --out {out} --seed {cfg.seed}"},
    }, indent=2, default=list) + "\n")
    return path
