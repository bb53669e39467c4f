"""Display helpers of components.text."""

from __future__ import annotations

import pytest

from components.text import count, md_escape


@pytest.mark.parametrize(
    ("n", "noun", "plural", "expected"),
    [(0, "edit", None, "0 edits"), (1, "track", None, "1 track"), (2, "tap", None, "2 taps"),
     (1, "match", "matches", "1 match"), (5, "match", "matches", "5 matches")],
)  # fmt: skip
def test_count_puts_the_noun_in_the_right_number(n, noun, plural, expected):
    assert count(n, noun, plural) == expected


def test_md_escape_shows_markdown_and_html_literally():
    assert md_escape("**bold** <b>x</b> [a](b)\nnext") == r"\*\*bold\*\* \<b\>x\</b\> \[a\]\(b\) next"
