"""Word error rate with a normaliser, so that a transcript is judged on its words, not on how
it writes them: case, punctuation, hyphens and digits ("25", "£45", "3:30", "2nd", "10%") are
written the same way on both sides (numbers in words, as espeak-ng speaks them)."""

from __future__ import annotations

import re

_ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
         "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_ORDINALS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
             "nine": "ninth", "twelve": "twelfth"}
# One spelling for words a recogniser writes more than one way.
_SPELLINGS = {"okay": "ok", "o'clock": "oclock", "mr": "mister", "mrs": "missus", "dr": "doctor",
              "%": "percent", "&": "and", "+": "plus"}


def number_words(n: int) -> str:
    """0 <= n < 10**9 in words, without "and": 125 -> "one hundred twenty five"."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    for size, name in ((10**6, "million"), (1000, "thousand"), (100, "hundred")):
        if n >= size:
            rest = n % size
            return f"{number_words(n // size)} {name}" + ("" if rest == 0 else " " + number_words(rest))
    raise AssertionError(n)


def ordinal_words(n: int) -> str:
    *head, last = number_words(n).split()
    if last in _ORDINALS:
        last = _ORDINALS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return " ".join([*head, last])


def _numbers(text: str) -> str:
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # 1,500 -> 1500
    for symbol, unit in (("$", "dollars"), ("£", "pounds"), ("€", "euros")):
        text = re.sub(rf"{re.escape(symbol)}(\d+(?:\.\d)?)\b", rf"\1 {unit}", text)
    # A time: 3:30, or 3.15 as British English writes it (spoken "three fifteen", like £2.50).
    text = re.sub(r"\b(\d{1,2})[:.](\d{2})\b",
                  lambda m: number_words(int(m[1])) + ("" if m[2] == "00" else " " + (
                      "oh " + _ONES[int(m[2])] if m[2][0] == "0" else number_words(int(m[2])))), text)
    text = re.sub(r"\b(\d+)\.(\d+)\b",
                  lambda m: number_words(int(m[1])) + " point " + " ".join(_ONES[int(d)] for d in m[2]), text)
    text = re.sub(r"\b(\d+)(st|nd|rd|th)\b", lambda m: ordinal_words(int(m[1])), text)
    return re.sub(r"\b\d{1,9}\b", lambda m: number_words(int(m[0])), text)


def normalize(text: str) -> list[str]:
    """Lowercase words, numbers spelled out, punctuation and hyphens gone, apostrophes kept
    inside words ("don't")."""
    text = _numbers(text.lower().replace("’", "'"))
    for symbol in ("%", "&", "+"):
        text = text.replace(symbol, f" {_SPELLINGS[symbol]} ")
    words = re.findall(r"[a-z0-9]+(?:'[a-z]+)*", text.replace("-", " "))
    return [_SPELLINGS.get(word, word) for word in words]


def edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    """Substitutions + deletions + insertions (Levenshtein on words)."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        current = [i] + [0] * len(hypothesis)
        for j, hyp in enumerate(hypothesis, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp))
        previous = current
    return previous[-1]


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Edit distance over the reference's word count, both sides normalised (can exceed 1)."""
    ref = normalize(reference)
    return edit_distance(ref, normalize(hypothesis)) / max(len(ref), 1)
