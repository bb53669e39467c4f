"""Safe display of user-supplied text in Markdown-rendering Streamlit elements."""

from __future__ import annotations

import re

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$])")


def md_escape(text: object) -> str:
    """Escape Markdown (and HTML angle brackets) so user text shows literally.

    Examples
    --------
    >>> md_escape("<b>*hi*</b>")
    '\\\\<b\\\\>\\\\*hi\\\\*\\\\</b\\\\>'
    """
    return _MD_SPECIAL.sub(r"\\\1", str(text)).replace("\n", " ")


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and the noun in the right number: ``"1 track"``, ``"2 tracks"``, ``"0 edits"``.

    Examples
    --------
    >>> count(1, "track"), count(3, "edit"), count(2, "match", "matches")
    ('1 track', '3 edits', '2 matches')
    """
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"
