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


def test_feed_cards_draw_stored_peaks_scaled_like_the_upload_waveform():
    import json

    from components import resources
    from components.plots import display_peaks

    stored = json.dumps([[-0.02, 0.05], [-0.1, 0.08], [0.0, 0.0]])
    fig = resources.track_waveform(1, stored, "[0.5]", 3.0, 70)
    np.testing.assert_allclose(fig.data[0].y, [0.5, 0.8, 0.0], atol=1e-6)
    np.testing.assert_allclose(fig.data[1].y, [-0.2, -1.0, 0.0], atol=1e-6)
    assert display_peaks(np.zeros((0, 2))).shape == (0, 2)


def test_doctests():
    import doctest

    from components import plots

    result = doctest.testmod(plots)
    assert result.attempted >= 1 and result.failed == 0
