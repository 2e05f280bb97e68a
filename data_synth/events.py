"""Ground truth of synthetic target clips: events (which seconds show what) and their questions.

Pure and seeded: a ``numpy.random.Generator`` in, a :class:`ClipTruth` out; ``render.py`` draws it.
A clip is a back-to-back sequence of events, each occupying whole seconds ``[start_s, end_s)``, so
every second of the clip has exactly one event. The questioned ("key") events use shapes that no
other event of the clip uses, so every question has exactly one right option.
"""

from __future__ import annotations

import string
from dataclasses import asdict, dataclass, field

import numpy as np

from tspo.errors import TSPOError

SHAPES = ("circle", "square", "triangle", "star", "cross", "diamond", "ring")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (235, 30, 30), "green": (30, 205, 60), "blue": (40, 80, 250), "yellow": (250, 225, 30),
    "magenta": (235, 40, 205), "cyan": (40, 225, 235), "orange": (250, 140, 20), "white": (245, 245, 245),
}
# Dark solid backgrounds: bright shapes stand out, and target clips look unlike the textured haystack.
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0), "grey": (95, 95, 95), "navy": (15, 20, 90), "maroon": (95, 15, 20),
    "forest": (15, 75, 25), "purple": (75, 20, 95),
}
MOTIONS = ("still", "left", "right", "up", "down")
WORDS = ("CAT", "SUN", "BOX", "KEY", "MAP", "CUP", "HAT", "PEN", "DOG", "CAR")
QUESTION_KINDS = ("colour", "order", "motion", "text", "count", "shape", "after")
# The question of each kind, worded once: the renderer asks these and the synthetic encoder
# (``tspo synth encoder``) learns to match them to frames.
QUESTION_TEMPLATES = {
    "colour": "What colour is the {shape} that appears?",
    "motion": "Which way does the {shape} move?",
    "text": "Which word is written on the screen?",
    "order": "Which came first, {a} or {b}?",
    "count": "How many times does a {shape} appear?",
    "shape": "Which shape is {colour}?",
    "after": "What appears right after the {colour} {shape}?",
}
# The smallest frame (short side, px, of a frame rendered at 64 px and shrunk) whose written word the
# ``tspo-synth`` encoder still reads as well as at full size: zero-shot word top-1 0.90 at 64, 56, 52
# and 48 px, 0.79 at 44, 0.57 at 40, 0.49 at 32 (600 held-out frames;
# `python -m benchmarks legibility`, benchmarks/RESULTS.md). Below it a word is not legible.
TEXT_MIN_PX = 48
# What a selection must show for each kind (``extra["coverage"]`` of a sample; the simulated oracle
# applies it): "any" = at least ``min_picks`` picks inside the evidence (any group), "all" = at least
# ``min_picks`` picks inside every evidence group (one group per key event); ``min_px``: the frames
# must be at least this many world pixels (short side; the world renders at 64) for it to count.
COVERAGE_RULES: dict[str, dict] = {
    "colour": {"rule": "any", "min_picks": 1}, "text": {"rule": "any", "min_picks": 1, "min_px": TEXT_MIN_PX},
    "shape": {"rule": "any", "min_picks": 1}, "after": {"rule": "any", "min_picks": 1},
    "order": {"rule": "all", "min_picks": 1}, "count": {"rule": "all", "min_picks": 1},
    "motion": {"rule": "any", "min_picks": 2},
}


class RenderError(TSPOError, ValueError):
    """Bad arguments to the synthetic renderer (durations, sizes, option counts)."""


@dataclass
class Event:
    """What the clip shows during ``[start_s, end_s)`` (whole seconds)."""

    start_s: int
    end_s: int
    shape: str
    colour: str
    background: str
    motion: str = "still"
    text: str | None = None

    def describe(self) -> str:
        """Caption-like description, e.g. 'a red star moving left on a navy background'."""
        move = "standing still" if self.motion == "still" else f"moving {self.motion}"
        words = f" with the word {self.text} written below it" if self.text else ""
        return f"a {self.colour} {self.shape} {move} on a {self.background} background{words}"


@dataclass
class ClipTruth:
    """Exact ground truth of a rendered target clip and its multiple-choice question."""

    duration_s: int
    events: list[Event]
    question: str
    options: list[str]
    answer: str                       # letter
    evidence_spans_s: list[list[float]]
    qa_kind: str
    key_events: list[int] = field(default_factory=list)  # indices into events (the evidence)
    cue_events: list[int] = field(default_factory=list)  # "after" questions: the event named in the question

    def event_at(self, t: float) -> Event:
        """The event on screen at second ``t`` of the clip."""
        for ev in self.events:
            if ev.start_s <= t < ev.end_s:
                return ev
        raise RenderError(f"t={t} s is outside the clip [0, {self.duration_s})")

    def exclusion(self) -> dict:
        """What no other clip may show next to this one (confuser haystacks): the shapes and colours
        the question names or asks about, and whether any written word is allowed."""
        key = [self.events[i] for i in self.key_events]
        cue = [self.events[i] for i in self.cue_events]
        if self.qa_kind == "after":
            return {"shapes": sorted({e.shape for e in cue}), "colours": [], "text": False}
        if self.qa_kind == "shape":
            return {"shapes": sorted({e.shape for e in key}), "colours": sorted({e.colour for e in key}),
                    "text": False}
        return {"shapes": sorted({e.shape for e in key}), "colours": [], "text": self.qa_kind == "text"}

    def to_extra(self) -> dict:
        return {"family": "target", "qa_kind": self.qa_kind, "key_events": self.key_events,
                "cue_events": self.cue_events, "coverage": dict(COVERAGE_RULES[self.qa_kind]),
                "evidence_groups_s": [[span] for span in self.evidence_spans_s],
                "exclude": self.exclusion(), "events": [asdict(e) for e in self.events]}


def excluded(event: Event | dict, exclude: dict) -> bool:
    """Whether ``event`` shows something a sample's ``extra["exclude"]`` rules out."""
    e = asdict(event) if isinstance(event, Event) else event
    return (e["shape"] in exclude.get("shapes", ()) or e["colour"] in exclude.get("colours", ())
            or (bool(exclude.get("text")) and e.get("text") is not None))


def events_from_extra(extra: dict) -> list[Event]:
    """Events back from a manifest sample's ``extra["events"]``."""
    return [Event(**e) for e in extra.get("events", [])]


def _durations(rng: np.random.Generator, total: int, lo: int, hi: int) -> list[int]:
    """Split ``total`` seconds into event lengths in [lo, hi] (the last may be longer, never < lo)."""
    out: list[int] = []
    left = total
    while left > 0:
        d = int(rng.integers(lo, hi + 1))
        if left - d < lo:  # a tail shorter than lo would be hard to see: this event takes it
            d = left
        out.append(d)
        left -= d
    return out


def _letters(options: list[str], correct: str, rng: np.random.Generator) -> tuple[list[str], str]:
    order = rng.permutation(len(options))
    shuffled = [options[i] for i in order]
    return shuffled, string.ascii_uppercase[shuffled.index(correct)]


def _pick(rng: np.random.Generator, pool: list[str] | tuple[str, ...], n: int, exclude=()) -> list[str]:
    choices = [p for p in pool if p not in exclude]
    if len(choices) < n:
        raise RenderError(f"need {n} distinct values from {len(choices)}; lower num_options")
    return [choices[i] for i in rng.choice(len(choices), size=n, replace=False)]


def make_clip_truth(rng: np.random.Generator, duration_s: int, event_seconds: tuple[int, int] = (3, 6),
                    num_options: int = 4, kinds: tuple[str, ...] = QUESTION_KINDS) -> ClipTruth:
    """Lay out events over ``duration_s`` seconds and ask one question about its key event(s)."""
    lo, hi = event_seconds
    if not 1 <= lo <= hi:
        raise RenderError(f"event_seconds must be 1 <= lo <= hi, got {event_seconds}")
    if duration_s < 2 * lo:
        raise RenderError(f"a clip of {duration_s} s cannot hold two events of >= {lo} s; lengthen it")
    if not 2 <= num_options <= 8:
        raise RenderError(f"num_options must be in 2..8, got {num_options}")
    bad = [k for k in kinds if k not in QUESTION_KINDS]
    if not kinds or bad:
        raise RenderError(f"question kinds must be a non-empty subset of {QUESTION_KINDS}, got {kinds}")
    if "motion" in kinds and num_options > len(MOTIONS):
        raise RenderError(f"motion questions have {len(MOTIONS)} options at most; drop 'motion' from kinds "
                          f"or use num_options <= {len(MOTIONS)}")
    lengths = _durations(rng, duration_s, lo, hi)
    n = len(lengths)
    qa_kind = str(kinds[rng.integers(len(kinds))])
    if qa_kind in ("order", "after") and n < 2:
        qa_kind = "colour"
    n_key = {"order": 2, "count": int(rng.integers(1, min(4, n) + 1))}.get(qa_kind, 1)
    if qa_kind == "after":  # the cue (unique shape) never ends the clip: an event follows it
        key_slots = [int(rng.integers(n - 1))]
    else:
        key_slots = sorted(int(i) for i in rng.choice(n, size=n_key, replace=False))
    key_shapes = _pick(rng, SHAPES, 1 if qa_kind == "count" else n_key)
    other_shapes = [s for s in SHAPES if s not in key_shapes]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(int)
    events: list[Event] = []
    prev_bg = None
    key_colour = list(COLOURS)[rng.integers(len(COLOURS))] if qa_kind == "shape" else None
    for i, (s, d) in enumerate(zip(starts, lengths)):
        backgrounds = [b for b in BACKGROUNDS if b != prev_bg]  # a visible change at every boundary
        bg = backgrounds[rng.integers(len(backgrounds))]
        prev_bg = bg
        if i in key_slots:
            shape = key_shapes[0] if qa_kind == "count" else key_shapes[key_slots.index(i)]
        else:
            shape = other_shapes[rng.integers(len(other_shapes))]
        colour = list(COLOURS)[rng.integers(len(COLOURS))]
        if qa_kind == "shape" and i not in key_slots and colour == key_colour:  # the asked colour is unique
            colour = _pick(rng, list(COLOURS), 1, exclude=(key_colour,))[0]
        motion = MOTIONS[rng.integers(len(MOTIONS))]
        if qa_kind == "shape" and i in key_slots:
            colour = key_colour
        events.append(Event(int(s), int(s + d), shape, colour, bg, motion, None))
    if qa_kind == "order" and events[key_slots[0]].colour == events[key_slots[1]].colour:
        events[key_slots[1]].colour = _pick(rng, list(COLOURS), 1, exclude=(events[key_slots[0]].colour,))[0]
    cue_slots: list[int] = []
    if qa_kind == "after":  # the evidence is the event after the cue, not the cue the question names
        cue_slots, key_slots = key_slots, [key_slots[0] + 1]
    key = [events[i] for i in key_slots]
    evidence = [[float(e.start_s), float(e.end_s)] for e in key]
    ask = QUESTION_TEMPLATES[qa_kind]
    if qa_kind == "colour":
        question = ask.format(shape=key[0].shape)
        correct = key[0].colour
        options = [correct] + _pick(rng, list(COLOURS), num_options - 1, exclude=(correct,))
    elif qa_kind == "motion":
        question = ask.format(shape=key[0].shape)
        names = {m: ("it stays still" if m == "still" else m) for m in MOTIONS}
        correct = names[key[0].motion]
        pool = [names[m] for m in MOTIONS]
        options = [correct] + _pick(rng, pool, num_options - 1, exclude=(correct,))
    elif qa_kind == "text":
        key[0].text = WORDS[rng.integers(len(WORDS))]
        question = ask
        correct = key[0].text
        options = [correct] + _pick(rng, WORDS, num_options - 1, exclude=(correct,))
    elif qa_kind == "order":
        a, b = (f"the {e.colour} {e.shape}" for e in key)
        swap = bool(rng.integers(2))
        question = ask.format(a=b if swap else a, b=a if swap else b)
        correct = a  # key slots are sorted by time
        combos = [f"the {c} {s}" for s in SHAPES for c in COLOURS]
        options = [a, b] + _pick(rng, combos, num_options - 2, exclude=(a, b))
    elif qa_kind == "shape":
        question = ask.format(colour=key[0].colour)
        correct = key[0].shape
        options = [correct] + _pick(rng, SHAPES, num_options - 1, exclude=(correct,))
    elif qa_kind == "after":
        cue = events[cue_slots[0]]
        question = ask.format(colour=cue.colour, shape=cue.shape)
        correct = key[0].shape
        options = [correct] + _pick(rng, SHAPES, num_options - 1, exclude=(correct, cue.shape))
    else:  # count
        question = ask.format(shape=key[0].shape)
        correct = str(n_key)
        pool = [str(i) for i in range(1, max(num_options, 4) + 1)]
        options = [correct] + _pick(rng, pool, num_options - 1, exclude=(correct,))
        options = sorted(options, key=int)
        return ClipTruth(duration_s, events, question, options, string.ascii_uppercase[options.index(correct)],
                         evidence, qa_kind, key_slots)
    options, answer = _letters(options, correct, rng)
    return ClipTruth(duration_s, events, question, options, answer, evidence, qa_kind, key_slots, cue_slots)
