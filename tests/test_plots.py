"""Figure builders of components.plots: what they draw, checked on the figure's data."""

from __future__ import annotations

import numpy as np
import pytest

from components.plots import ACCENT_2, MINOR_CHORD, chord_label, chords_figure, envelope, waveform_figure
from tests.conftest import SR


def _tone(amplitude: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    y = amplitude * np.sin(2 * np.pi * 220.0 * t)
    return np.stack([y, y]).astype(np.float32)


def _drawn_peak(fig) -> float:
    upper, lower = fig.data[0], fig.data[1]
    return float(max(np.max(np.abs(upper.y)), np.max(np.abs(lower.y))))


@pytest.mark.parametrize(
    ("amplitude", "expected"),
    [
        (0.9, 1.0),  # a normal level fills the height
        (0.1, 1.0),  # a quiet recording (-20 dBFS) too: its shape stays readable
        (0.001, 0.02),  # near-silence is raised by at most 26 dB and stays a flat line
        (0.0, 0.0),
    ],
)
def test_the_waveform_is_drawn_at_its_peak_but_near_silence_stays_flat(amplitude, expected):
    fig = waveform_figure(_tone(amplitude), sr=SR, beats=[0.25, 0.5], downbeats=[0.25])
    assert _drawn_peak(fig) == pytest.approx(expected, abs=2e-3)
    assert len(fig.data) == 4  # envelope (2 traces), beats, downbeats


def test_the_waveform_keeps_the_shape_of_a_quiet_song():
    y = _tone(0.1, seconds=2.0)
    y[:, SR:] *= 0.25  # second half 12 dB quieter
    fig = waveform_figure(y, sr=SR)
    top = np.asarray(fig.data[0].y, dtype=float)
    assert top[: top.size // 2].max() == pytest.approx(1.0, abs=1e-3)
    assert top[top.size // 2 + 5 :].max() == pytest.approx(0.25, abs=0.01)
    # the envelope itself is unscaled
    assert envelope(y).max() == pytest.approx(0.1, abs=1e-3)


def test_the_chord_lane_labels_colours_and_skips_no_chord():
    chords = [
        (0.0, 2.0, "C:maj"),
        (2.0, 4.0, "A:min"),
        (4.0, 4.5, "N"),
        (4.5, 6.0, "F:maj"),
        (6.0, 6.0, "G:maj"),
    ]
    fig = chords_figure(chords, duration_s=6.0)
    bar = fig.data[0]
    assert list(bar.text) == ["C", "Am", "F"]
    assert list(bar.base) == [0.0, 2.0, 4.5] and list(bar.x) == [2.0, 2.0, 1.5]
    assert list(bar.marker.color) == [ACCENT_2, MINOR_CHORD, ACCENT_2]
    assert "Am  2.0-4.0 s" in bar.hovertext
    # labels stay horizontal; those too small to read are hidden, not rotated or shrunk
    assert bar.textangle == 0
    assert fig.layout.uniformtext.mode == "hide" and fig.layout.uniformtext.minsize >= 9
    assert tuple(fig.layout.xaxis.range) == (0, 6.0)


def test_chord_labels():
    assert [chord_label(x) for x in ("C:maj", "F#:min", "N")] == ["C", "F#m", "N"]


def _polygon(svg: str) -> np.ndarray:
    import re

    points = re.search(r'<polygon points="([^"]+)"', svg).group(1)
    return np.array([[float(v) for v in p.split(",")] for p in points.split()])


def test_feed_cards_draw_stored_peaks_scaled_like_the_upload_waveform():
    import json

    from components import resources
    from components.waveform_svg import VIEW_WIDTH, display_peaks

    stored = json.dumps([[-0.02, 0.05], [-0.1, 0.08], [0.0, 0.0]])
    svg = resources.track_waveform(1, stored, "[0.5, 9.0]", 3.0, 70)
    assert svg.startswith("<svg") and 'viewBox="0 0 800 70"' in svg
    pts = _polygon(svg)  # the max line left to right, then the min line back
    np.testing.assert_allclose(pts[:, 0], [0, 400, 800, 800, 400, 0])
    # scaled to the peak like the upload waveform: 0.05 -> 0.5 and -0.1 -> -1 (of 95 % of half the height)
    half = 35 * 0.95
    np.testing.assert_allclose(pts[:3, 1], 35 - np.array([0.5, 0.8, 0.0]) * half, atol=0.06)
    np.testing.assert_allclose(pts[3:, 1], 35 - np.array([0.0, -1.0, -0.2]) * half, atol=0.06)
    # the beat at 0.5 s of 3 s is drawn; the one after the end is not
    assert f"M{0.5 / 3 * VIEW_WIDTH:.1f},0.0V70" in svg and svg.count("V70") == 1
    assert display_peaks(np.zeros((0, 2))).shape == (0, 2)


def test_waveform_svg_is_valid_markup_of_numbers_only():
    import xml.etree.ElementTree as ET

    from components.waveform_svg import waveform_svg

    for peaks in (np.zeros((0, 2)), np.array([[-0.3, 0.4]]), np.array([[np.nan, np.inf], [-2.0, 2.0]])):
        svg = waveform_svg(peaks, duration_s=0.0, beats=[-1.0, float("nan")])
        root = ET.fromstring(svg)  # well-formed XML
        assert root.tag.endswith("svg") and [c.tag.split("}")[-1] for c in root] == ["polygon"]
        ys = _polygon(svg)[:, 1]
        assert np.all(np.isfinite(ys)) and ys.min() >= 0 and ys.max() <= 70
    many = waveform_svg(np.zeros((400, 2)), duration_s=180.0, beats=np.arange(0, 180, 0.5))
    assert len(many) < 25_000  # a 3-minute song with 360 beats stays a few kB


def test_doctests():
    import doctest

    from components import waveform_svg

    for module in (waveform_svg,):
        result = doctest.testmod(module)
        assert result.attempted >= 1 and result.failed == 0, module
