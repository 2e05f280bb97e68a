"""How small may a question-world frame get before its written word is lost? The text kind's
resolution rule (``tspo.data_synth.events.TEXT_MIN_PX``, applied by the SimulatedOracle).

Held-out frames of the synthetic world with a word (unseen draws of shape / colour / background /
word / motion phase, rendered at the world's 64 px), shrunk to ``s`` px (antialiased bilinear, as a
video LLM's resize would), then read by the shipped ``tspo-synth`` encoder zero-shot: top-1 among
the world's words ("the word CAT", ...). The threshold is the smallest size whose accuracy stays
within 0.02 of the full-size accuracy.

Run: python -m benchmarks legibility   (or: python -m benchmarks.bench_legibility)
"""

from __future__ import annotations

COMMAND = "python -m benchmarks legibility"
SIZES = (64, 56, 52, 48, 44, 40, 36, 32, 28, 24, 16)
WORLD_PX = 64
NUM, SEED = 600, 123
TOLERANCE = 0.02


def word_accuracy(sizes: tuple[int, ...] = SIZES, num: int = NUM, seed: int = SEED) -> dict[int, float]:
    """``{size px: zero-shot word top-1}`` of ``num`` held-out word frames shrunk to each size."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from tspo.data_synth.encoder_training import _vocab, render_attributes, sample_attributes
    from tspo.features.encoders import load_encoder

    encoder = load_encoder("tspo-synth")
    rng = np.random.default_rng(seed)
    attrs = sample_attributes(rng, num, text_prob=1.0)
    frames = torch.from_numpy(np.stack(render_attributes(attrs, rng, (WORLD_PX,)))).permute(0, 3, 1, 2).float()
    words = _vocab()[3]
    text = F.normalize(encoder.encode_texts([f"the word {w}" for w in words]).float(), dim=-1)
    out = {}
    for size in sizes:
        small = F.interpolate(frames, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        small = small.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
        img = F.normalize(encoder.encode_frames(small).float(), dim=-1)
        out[int(size)] = float(((img @ text.T).argmax(dim=1).numpy() == attrs[:, 3]).mean())
    return out


def threshold(accuracy: dict[int, float], tolerance: float = TOLERANCE) -> int:
    """The smallest size from which every larger size reads words within ``tolerance`` of full size."""
    full = accuracy[max(accuracy)]
    last = max(accuracy)
    for s in sorted(accuracy, reverse=True):
        if accuracy[s] < full - tolerance:
            break
        last = s
    return last


def run() -> dict:
    from tspo.data_synth.events import TEXT_MIN_PX, WORDS

    acc = word_accuracy()
    found = threshold(acc)
    rows = [{"frame short side (px)": s, "share of the 64 px frame": round(s / WORLD_PX, 3),
             "word top-1": round(a, 3), "legible": s >= found} for s, a in acc.items()]
    return {
        "title": "Question-world legibility: tspo-synth zero-shot word accuracy vs frame size (text kind's rule)",
        "command": COMMAND,
        "rows": rows,
        "notes": (f"{NUM} held-out frames with a word (seed {SEED}), rendered at {WORLD_PX} px and shrunk to each size; "
                  f"top-1 among the world's {len(WORDS)} words. Threshold (smallest size within {TOLERANCE} of full-size "
                  f"accuracy): {found} px; the oracle's constant `TEXT_MIN_PX` = {TEXT_MIN_PX} px"
                  f"{' (agrees)' if found == TEXT_MIN_PX else ' (DISAGREES: update tspo.data_synth.events)'}. "
                  "The SimulatedOracle counts a text question covered only when the frames shown are at least "
                  "that size (in the world's pixels); a clip selection whose planned frames are smaller loses it."),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
