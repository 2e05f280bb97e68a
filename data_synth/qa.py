"""QA augmentation: event descriptions of a target clip -> a localising multiple-choice question.

Generic questions ("What is happening?") cannot be answered once a clip is buried in an hour of
haystack: the question must name something only this clip shows. As in the paper (event
descriptions by a captioner, reformatted as multiple choice), the right option is a description
of one of the clip's events and the distractor options are descriptions of *other* clips, so the
question localises the clip; temporal variants ask what happens right after/before an event.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from tspo.errors import TSPOError
from tspo.manifest import Sample
from tspo.progress import progress_bar

QA_STYLES = ("which", "after", "before")


class QAError(TSPOError, ValueError):
    """Not enough material to build a question (no events, too few distractor descriptions)."""


@dataclass(frozen=True)
class EventDescription:
    """A described moment of a clip: ``[start_s, end_s)`` seconds and a caption."""

    start_s: float
    end_s: float
    text: str


def merge_descriptions(events: Sequence[EventDescription]) -> list[EventDescription]:
    """Join consecutive events with the same text (a captioner repeats itself over a static shot)."""
    out: list[EventDescription] = []
    for ev in sorted(events, key=lambda e: e.start_s):
        if out and out[-1].text == ev.text and abs(out[-1].end_s - ev.start_s) < 1e-6:
            out[-1] = EventDescription(out[-1].start_s, ev.end_s, ev.text)
        else:
            out.append(ev)
    return out


def make_mcq(events: Sequence[EventDescription], other_descriptions: Sequence[str], rng: np.random.Generator,
             num_options: int = 4, styles: Sequence[str] = QA_STYLES) -> dict:
    """One question from a clip's events; returns question, options, answer, evidence_spans_s, qa_style.

    Distractor options come from ``other_descriptions`` (other clips), never from this clip, so
    exactly one option describes this clip. Temporal styles need an anchor event whose text is
    unique in the clip; without one the question falls back to ``"which"``.
    """
    events = merge_descriptions(events)
    if not events:
        raise QAError("the clip has no event descriptions; caption it first")
    bad = [s for s in styles if s not in QA_STYLES]
    if not styles or bad:
        raise QAError(f"styles must be a non-empty subset of {QA_STYLES}, got {list(styles)}")
    own = {e.text for e in events}
    pool = sorted({d for d in other_descriptions if d and d not in own})
    if len(pool) < num_options - 1:
        raise QAError(f"need {num_options - 1} distractor descriptions from other clips, found {len(pool)}; "
                      "caption more clips or lower num_options")
    counts = {t: sum(e.text == t for e in events) for t in own}
    style = str(styles[rng.integers(len(styles))])
    anchors = [i for i, e in enumerate(events) if counts[e.text] == 1
               and ((style == "after" and i + 1 < len(events)) or (style == "before" and i > 0))]
    if style != "which" and not anchors:
        style = "which"
    if style == "which":
        i = int(rng.integers(len(events)))
        correct, question = events[i], "Which of these events happens in the video?"
        evidence = [[events[i].start_s, events[i].end_s]]
    else:
        a = anchors[int(rng.integers(len(anchors)))]
        j = a + 1 if style == "after" else a - 1
        correct = events[j]
        question = f"What happens right {style} {events[a].text}?"
        evidence = sorted([[events[a].start_s, events[a].end_s], [events[j].start_s, events[j].end_s]])
    picks = [pool[k] for k in rng.choice(len(pool), size=num_options - 1, replace=False)]
    options = [correct.text] + picks
    order = rng.permutation(num_options)
    options = [options[k] for k in order]
    return {"question": question, "options": options,
            "answer": string.ascii_uppercase[options.index(correct.text)],
            "evidence_spans_s": [[float(x), float(y)] for x, y in evidence], "qa_style": style}


def augment_sample(sample: Sample, events: Sequence[EventDescription], other_descriptions: Sequence[str],
                   rng: np.random.Generator, num_options: int = 4, styles: Sequence[str] = QA_STYLES) -> Sample:
    """A copy of ``sample`` with a localising question built from ``events`` (original QA kept in extra)."""
    qa = make_mcq(events, other_descriptions, rng, num_options, styles)
    extra = {**sample.extra, "qa_style": qa["qa_style"],
             "original_qa": {"question": sample.question, "options": sample.options, "answer": sample.answer},
             "descriptions": [[e.start_s, e.end_s, e.text] for e in merge_descriptions(events)]}
    return replace(sample, question=qa["question"], options=qa["options"], answer=qa["answer"],
                   evidence_spans_s=qa["evidence_spans_s"], extra=extra)


def augment_samples(samples: Sequence[Sample], captioner, seed: int = 0, num_options: int = 4,
                    styles: Sequence[str] = QA_STYLES, progress: bool = True) -> list[Sample]:
    """Caption every sample, then give each a question whose distractors are other clips' captions."""

    described = [captioner.describe(s) for s in progress_bar(samples, desc="caption", unit="clip", disable=not progress)]
    rng = np.random.default_rng(seed)
    out = []
    for i, (s, events) in enumerate(zip(samples, described)):
        others = [e.text for j, evs in enumerate(described) if j != i for e in evs]
        out.append(augment_sample(s, events, others, rng, num_options, styles))
    return out
