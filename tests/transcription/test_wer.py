"""The word error rate and the normaliser that `make bench-stt` judges transcripts with."""

from __future__ import annotations

import pytest

from bench.wer import edit_distance, normalize, number_words, ordinal_words, word_error_rate


@pytest.mark.parametrize(("n", "words"), [
    (0, "zero"), (7, "seven"), (15, "fifteen"), (20, "twenty"), (45, "forty five"), (100, "one hundred"),
    (125, "one hundred twenty five"), (1500, "one thousand five hundred"), (2_000_003, "two million three"),
])
def test_numbers_are_spelled_as_espeak_speaks_them(n: int, words: str) -> None:
    assert number_words(n) == words


@pytest.mark.parametrize(("n", "words"), [(1, "first"), (2, "second"), (3, "third"), (12, "twelfth"),
                                          (20, "twentieth"), (21, "twenty first"), (44, "forty fourth")])
def test_ordinals(n: int, words: str) -> None:
    assert ordinal_words(n) == words


@pytest.mark.parametrize(("text", "words"), [
    ("Hi, Priya!", "hi priya"),
    ("about 20 minutes", "about twenty minutes"),
    ("about twenty-five minutes", "about twenty five minutes"),
    ("it costs £45.", "it costs forty five pounds"),
    ("$1,500 or €2.5", "one thousand five hundred dollars or two point five euros"),
    ("at 3:30, or 3:00, or 10:05", "at three thirty or three or ten oh five"),
    ("until 3.15, £2.50 each, 2.5 times", "until three fifteen two pounds fifty each two point five times"),
    ("the 21st and the 2nd", "the twenty first and the second"),
    ("10% more & Mr. Smith's", "ten percent more and mister smith's"),
    ("I don’t know, OK?", "i don't know ok"),
    ("Okay.", "ok"),
])
def test_normalize_writes_both_sides_the_same_way(text: str, words: str) -> None:
    assert normalize(text) == words.split()


def test_edit_distance_counts_substitutions_deletions_and_insertions() -> None:
    assert edit_distance([], []) == 0
    assert edit_distance(["a", "b", "c"], ["a", "b", "c"]) == 0
    assert edit_distance(["a", "b", "c"], ["a", "x", "c"]) == 1  # substitution
    assert edit_distance(["a", "b", "c"], ["a", "c"]) == 1  # deletion
    assert edit_distance(["a", "b", "c"], ["a", "b", "b", "c"]) == 1  # insertion
    assert edit_distance(["a", "b", "c"], []) == 3
    assert edit_distance([], ["a", "b"]) == 2


def test_word_error_rate_is_over_the_reference_words() -> None:
    reference = "Hi Priya, the train is running about twenty minutes late."
    assert word_error_rate(reference, "hi priya the train is running about 20 minutes late") == 0
    assert word_error_rate(reference, "Hyperion, the train is running about 20 minutes late.") == pytest.approx(2 / 10)
    assert word_error_rate("one two", "one two three four") == 1.0  # insertions can pass 1 only by adding words
    assert word_error_rate("one two", "") == 1.0
    assert word_error_rate("", "") == 0.0
