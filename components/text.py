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
