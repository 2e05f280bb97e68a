"""Read the chosen option letter out of a model's free-text answer.

The parser never guesses: when no single option can be read it returns ``None``. Rules, in
order; the first rule that finds anything decides (an out-of-range or ambiguous find gives
``None`` rather than falling through to a weaker rule):

1. the whole answer is one letter, optionally wrapped/punctuated: ``"B"``, ``"(b)"``, ``"B."``;
2. explicit answer phrases: ``"Answer: B"``, ``"The answer is (C)"``, ``"option B"``;
   several phrases must agree;
3. a leading letter with a delimiter: ``"B) text"``, ``"(B) text"``, ``"B. text"``, ``"B: text"``
   (``None`` when the text names another letter too, as in ``"(B) or (C)"``);
4. option text: the answer equals an option's text, or starts with exactly one option's text
   (the longest such option when one option's text is a prefix of another's);
5. standalone capital letters in prose (``"I pick B because ..."``): exactly one distinct letter
   may appear. ``"A"``/``"I"`` followed by a lower-case word (``"A dog"``, ``"I think"``) are the
   article/pronoun, not letters; ``"B or C"`` reads as ``None``.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

from .errors import RewardInputError

LETTERS = string.ascii_uppercase

_BARE = re.compile(r"^\s*[\(\[\{<\"'*]*\s*([A-Za-z])\s*[\)\]\}>\"'*]*\s*[.:,;!]?\s*$")
# Keywords are case-insensitive; the letter is case-sensitive so that "the answer is a dog" does
# not read as "A": a lower-case letter counts only when bracketed or followed by punctuation/end.
_LETTER = r"(?:([A-Z])(?![A-Za-z0-9'])|([a-z])(?=\s*(?:[\)\]\}.,:;!*\"']|$)))"
_PHRASE = re.compile(
    r"(?i:\banswer\b(?:\s+is)?|\boption\b|\bchoice\b)\s*[:\-]?\s*(?i:is\s+)?[\(\[\{*\"']*\s*" + _LETTER
)
_LEADING = re.compile(r"^\s*[\(\[\{*]*\s*([A-Za-z])\s*(?:[\)\]\}]|[.:])(?![A-Za-z0-9])")
# A capital letter standing alone in prose, or a bracketed lower-case one; "A"/"I" followed by a
# lower-case word are the article/pronoun and are skipped (but not before "or"/"and": "A or B").
_STANDALONE = re.compile(r"(?<![A-Za-z0-9'])(?:([A-Z])|\(([a-z])\))(?![A-Za-z0-9'])")
_ARTICLE = re.compile(r"\s+(?!(?:or|and|nor|vs|versus|but)\b)[a-z]")
_NORMALISE = re.compile(r"[^a-z0-9]+")


def option_letters(num_options: int) -> str:
    """The first ``num_options`` capital letters, e.g. 4 -> ``"ABCD"`` (2..26 options)."""
    if isinstance(num_options, bool) or not isinstance(num_options, int) or not 2 <= num_options <= 26:
        raise RewardInputError(f"num_options must be an int in 2..26 (letters A-Z); got {num_options!r}")
    return LETTERS[:num_options]


def _normalise(text: str) -> str:
    return _NORMALISE.sub(" ", text.lower()).strip()


def _decide(found: Sequence[str], letters: str) -> str | None:
    """One distinct in-range letter -> it; none, several, or out of range -> None."""
    distinct = {f.upper() for f in found}
    if len(distinct) != 1:
        return None
    (letter,) = distinct
    return letter if letter in letters else None


def _match_option_text(text: str, options: Sequence[str]) -> str | None:
    norm = _normalise(text)
    opts = [_normalise(str(o)) for o in options]
    exact = [i for i, o in enumerate(opts) if o and o == norm]
    if exact:
        return LETTERS[exact[0]] if len(exact) == 1 else None
    prefixed = [i for i, o in enumerate(opts) if o and (norm + " ").startswith(o + " ")]
    if not prefixed:
        return None
    longest = max(len(opts[i]) for i in prefixed)
    best = [i for i in prefixed if len(opts[i]) == longest]
    return LETTERS[best[0]] if len(best) == 1 else None


def parse_option(text: str | None, num_options: int, options: Sequence[str] | None = None) -> str | None:
    """Return the option letter (``"A"``..) that ``text`` answers, or ``None`` if none can be read.

    ``num_options``: how many options the question has (2..26); letters beyond it are never
    returned. ``options``: the option texts (without letters), enabling rule 4 (text match).
    """
    letters = option_letters(num_options)
    if options is not None and len(options) != num_options:
        raise RewardInputError(f"options has {len(options)} entries but num_options is {num_options}; pass matching values")
    if text is None:
        return None
    if not isinstance(text, str):
        raise RewardInputError(f"text must be a str or None, got {type(text).__name__}")
    if not text.strip():
        return None
    if m := _BARE.match(text):
        return _decide([m.group(1)], letters)
    if phrases := _PHRASE.findall(text):
        return _decide(["".join(groups) for groups in phrases], letters)
    standalone = [
        s.group(1) or s.group(2)
        for s in _STANDALONE.finditer(text)
        if not (s.group(1) in ("A", "I") and _ARTICLE.match(text, s.end()))
    ]
    if m := _LEADING.match(text):
        # "B) text" — unless the text goes on to name another letter ("(B) or (C)")
        return _decide([m.group(1), *standalone], letters)
    if options is not None and (by_text := _match_option_text(text, options)) is not None:
        return by_text
    return _decide(standalone, letters) if standalone else None
