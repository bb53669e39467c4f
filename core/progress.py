"""Progress reporting for long jobs.

Long core functions take ``progress: ProgressFn | None = None``. They call it with a
fraction in ``[0, 1]`` and a short human message. Pages bind it to ``st.progress``;
the CLI binds it to :func:`text_progress`. A progress callback may raise
:class:`core.errors.CancelledError` to cancel the job.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

ProgressFn = Callable[[float, str], None]


def report(progress: ProgressFn | None, fraction: float, message: str = "") -> None:
    """Call ``progress`` if given, clamping ``fraction`` to ``[0, 1]``."""
    if progress is not None:
        progress(min(1.0, max(0.0, float(fraction))), message)


def text_progress(stream=None, width: int = 30) -> ProgressFn:
    """Return a progress callback that draws a text bar on ``stream`` (stderr by default)."""
    out = stream if stream is not None else sys.stderr

    def _draw(fraction: float, message: str) -> None:
        filled = round(fraction * width)
        out.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {fraction * 100:5.1f}% {message[:50]:<50}")
        if fraction >= 1.0:
            out.write("\n")
        out.flush()

    return _draw
