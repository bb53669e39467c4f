"""Static waveforms as SVG: the feed cards' picture of a track, without plotly.

A feed card's waveform is a picture (no hover, no zoom), so it is drawn as a few kB of SVG shown
with ``st.image``: the browser draws it at once, where a plotly chart first has to load plotly.js
(about 4.5 MB of JavaScript) before the card appears. Only numbers go into the markup, and an
``<img>`` never runs anything in it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ACCENT = "#ff3d7f"
BEAT_COLOUR = "rgba(255,255,255,0.28)"
# a quiet recording's waveform is drawn up to this much louder (26 dB), so its shape stays readable;
# near-silence stays near the centre line
MAX_DISPLAY_GAIN = 20.0
# drawing width in SVG units: the image keeps the aspect ratio VIEW_WIDTH : height
VIEW_WIDTH = 800
MAX_BEATS = 4000


def display_peaks(peaks: np.ndarray) -> np.ndarray:
    """A min/max envelope scaled to its peak for drawing, by at most 26 dB (near-silence stays flat).

    Examples
    --------
    >>> display_peaks(np.array([[-0.1, 0.2], [-0.05, 0.05]], np.float32)).tolist()
    [[-0.5, 1.0], [-0.25, 0.25]]
    """
    peaks = np.asarray(peaks, dtype=np.float32)
    top = float(np.abs(peaks).max()) if peaks.size else 0.0
    return peaks * np.float32(min(1.0 / max(top, 1e-9), MAX_DISPLAY_GAIN))


def _coords(xs: np.ndarray, ys: np.ndarray) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs.tolist(), ys.tolist(), strict=True))


def waveform_svg(
    peaks: np.ndarray,
    *,
    duration_s: float,
    beats: Sequence[float] | None = None,
    height: int = 70,
    colour: str = ACCENT,
) -> str:
    """An SVG picture of a min/max envelope, with thin beat lines.

    Parameters
    ----------
    peaks : ndarray, shape (points, 2)
        Min and max per point, in [-1, 1] (drawn as given: scale with :func:`display_peaks` first).
    duration_s : float
        Duration the envelope spans, to place the beats.
    beats : sequence of float, optional
        Beat times in seconds; those outside the track are left out.
    height : int
        Height of the drawing in SVG units (the width is :data:`VIEW_WIDTH`).
    colour : str
        Fill colour of the waveform (a CSS colour made by the app, never user text).

    Returns
    -------
    str
        The ``<svg>`` document.

    Examples
    --------
    >>> svg = waveform_svg(np.array([[-1.0, 1.0], [0.0, 0.0]]), duration_s=2.0, beats=[1.0], height=10)
    >>> 'viewBox="0 0 800 10"' in svg, "M400.0,0.0V10" in svg
    (True, True)
    """
    env = np.asarray(peaks, dtype=np.float64).reshape(-1, 2) if np.size(peaks) else np.zeros((2, 2))
    if env.shape[0] == 1:
        env = np.repeat(env, 2, axis=0)
    env = np.clip(np.nan_to_num(env), -1.0, 1.0)
    h = float(height)
    mid, half = h / 2.0, h / 2.0 * 0.95
    xs = np.linspace(0.0, VIEW_WIDTH, env.shape[0])
    outline = _coords(xs, mid - env[:, 1] * half) + " " + _coords(xs[::-1], mid - env[::-1, 0] * half)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {VIEW_WIDTH} {height}" '
        f'width="{VIEW_WIDTH}" height="{height}" preserveAspectRatio="none">',
        f'<polygon points="{outline}" fill="{colour}"/>',
    ]
    span = max(float(duration_s), 1e-3)
    marks = [float(b) for b in ([] if beats is None else beats) if 0.0 <= float(b) <= span][:MAX_BEATS]
    if marks:
        path = "".join(f"M{b / span * VIEW_WIDTH:.1f},0.0V{height}" for b in marks)
        parts.append(f'<path d="{path}" stroke="{BEAT_COLOUR}" stroke-width="1" fill="none"/>')
    parts.append("</svg>")
    return "".join(parts)
