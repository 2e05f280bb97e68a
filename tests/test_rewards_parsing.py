"""Option parsing from free text: examples from real model outputs and hypothesis invariants."""

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tspo.rewards import RewardInputError, parse_option

OPTIONS = ["red ball", "blue cup", "green", "dog"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("B", "B"),
        ("(B)", "B"),
        ("B.", "B"),
        ("b", "B"),
        ("(c)", "C"),
        ("  D  ", "D"),
        ("B) the blue cup", "B"),
        ("(B) the blue cup", "B"),
        ("B. blue cup", "B"),
        ("C: green", "C"),
        ("Answer: B", "B"),
        ("answer: b", "B"),
        ("The answer is (C).", "C"),
        ("The answer is: D", "D"),
        ("The best answer is D because the man leaves.", "D"),
        ("Looking at the frames, the answer is option A.", "A"),
        ("I think B.", "B"),
        ("Based on the frames, B", "B"),
        ("red ball", "A"),
        ("Blue cup.", "B"),
        ("green, clearly, since the wall is green", "C"),
    ],
)
def test_parse_option_reads_common_answer_forms(text, expected):
    assert parse_option(text, 4, OPTIONS) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        None,
        "I don't know.",
        "the answer is a dog",  # article, not the letter A
        "A dog runs across the yard",  # ditto
        "(B) or (C)",
        "It is B and not C.",
        "Option B is wrong; the answer is C",
        "The answer is E",  # out of range: never falls back to another rule
        "Z",
    ],
)
def test_parse_option_returns_none_when_no_single_option(text):
    assert parse_option(text, 4, OPTIONS) is None


def test_option_text_ambiguity_prefers_longest_then_gives_none():
    assert parse_option("red ball on the floor", 3, ["red", "red ball", "cup"]) == "B"
    assert parse_option("cup", 3, ["cup", "cup", "x"]) is None


@pytest.mark.parametrize("n", [0, 1, 27, 2.0, True])
def test_parse_option_rejects_bad_num_options(n):
    with pytest.raises(RewardInputError, match="num_options"):
        parse_option("A", n)


def test_parse_option_rejects_mismatched_options_and_non_text():
    with pytest.raises(RewardInputError, match="options has 2 entries"):
        parse_option("A", 4, ["x", "y"])
    with pytest.raises(RewardInputError, match="text must be a str"):
        parse_option(3, 4)


letters26 = st.sampled_from(string.ascii_uppercase)


@settings(max_examples=150, deadline=None)
@given(n=st.integers(2, 26), data=st.data())
def test_bare_letter_in_range_parses_to_itself(n, data):
    letter = data.draw(st.sampled_from(string.ascii_uppercase[:n]))
    wrap = data.draw(st.sampled_from(["{}", "({})", "{}.", " {} ", "[{}]", "{})", "Answer: {}", "The answer is ({})."]))
    lower = data.draw(st.booleans())
    text = wrap.format(letter.lower() if lower else letter)
    assert parse_option(text, n) == letter


@settings(max_examples=150, deadline=None)
@given(n=st.integers(2, 25), data=st.data())
def test_bare_letter_out_of_range_is_none(n, data):
    letter = data.draw(st.sampled_from(string.ascii_uppercase[n:]))
    assert parse_option(letter, n) is None
    assert parse_option(f"The answer is ({letter}).", n) is None


@settings(max_examples=150, deadline=None)
@given(n=st.integers(2, 26), data=st.data())
def test_two_different_standalone_letters_are_none(n, data):
    a, b = data.draw(st.lists(st.sampled_from(string.ascii_uppercase[:n]), min_size=2, max_size=2, unique=True))
    form = data.draw(st.sampled_from(["({}) or ({})", "{}. {}.", "Either {} or {}", "({}) ({})"]))
    assert parse_option(form.format(a, b), n) is None


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=60), n=st.integers(2, 26))
def test_never_raises_and_never_returns_a_letter_outside_the_options(text, n):
    out = parse_option(text, n)
    assert out is None or out in string.ascii_uppercase[:n]
