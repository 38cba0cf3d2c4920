from __future__ import annotations

from resolvers.search import snippet, tokenise
from storage.search import MARK_CLOSE, MARK_OPEN, escape

OPEN, CLOSE = MARK_OPEN, MARK_CLOSE


def test_tokenise_keeps_only_letters_and_digits() -> None:
    assert tokenise('@text:foo -x foo|bar %%typo%% "q" {a} (b) \\ / 😀 שלום') == [
        "text", "foo", "x", "foo", "bar", "typo", "q", "a", "b", "שלום"]
    assert tokenise("ＦＵＬＬ width") == ["full", "width"]
    assert len(tokenise("w " * 100)) == 16


def test_escape_leaves_no_syntax() -> None:
    assert escape("a-b.c") == "a\\-b\\.c"
    assert escape("01ABC") == "01ABC"


def test_snippet_escapes_and_marks() -> None:
    assert snippet(f"<i>{OPEN}hi{CLOSE}</i> & co", "<i>hi</i> & co") == "&lt;i&gt;<b>hi</b>&lt;/i&gt; &amp; co"


def test_snippet_cuts_long_text_around_the_first_match() -> None:
    words = [f"w{i}" for i in range(200)]
    words[120] = f"{OPEN}needle{CLOSE}"
    text = " ".join(words).replace(OPEN, "").replace(CLOSE, "")
    result = snippet(" ".join(words), text)
    assert result.startswith("…") and result.endswith("…")
    assert "<b>needle</b>" in result and len(result) < 220
    assert result.count("<b>") == result.count("</b>") == 1


def test_snippet_ignores_markers_typed_by_the_user() -> None:
    text = f"sneaky {OPEN}x{CLOSE} text"
    assert snippet(text, text) == "sneaky x text"
