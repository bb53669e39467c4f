"""Plotly figures: waveform with beats, chord lane, spectrogram, loss curve, piano roll.

The figure builders are pure functions of arrays (testable without a browser); pages show
them with ``st.plotly_chart``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from components.waveform_svg import ACCENT, display_peaks

ACCENT_2 = "#7c4dff"
MINOR_CHORD = "#00a58e"
_MARGIN = dict(l=0, r=0, t=0, b=0)


def envelope(y: np.ndarray, *, points: int = 400) -> np.ndarray:
    """Min/max envelope of ``y`` (channels, n) as an array ``(points, 2)`` in [-1, 1]."""
    mono = np.asarray(y, dtype=np.float32)
    if mono.ndim == 2:
        mono = mono.mean(axis=0)
    if mono.size == 0:
        return np.zeros((points, 2), dtype=np.float32)
    edges = np.linspace(0, mono.size, points + 1).astype(int)
    out = np.zeros((points, 2), dtype=np.float32)
    for i in range(points):
        seg = mono[edges[i] : max(edges[i + 1], edges[i] + 1)]
        out[i] = (seg.min(), seg.max())
    return np.clip(out, -1.0, 1.0)


def peaks_figure(
    peaks: np.ndarray,
    *,
    duration_s: float,
    beats: Sequence[float] | None = None,
    downbeats: Sequence[float] | None = None,
    height: int = 90,
) -> go.Figure:
    """A compact waveform from a precomputed min/max envelope, with beat markers.

    Beat markers are one line trace with gaps (not layout shapes, which cost plotly
    ~0.5 ms each to validate), so a 3-minute track with 360 beats builds in ~15 ms.

    Parameters
    ----------
    peaks : ndarray, shape (points, 2)
        Min and max per point (see :func:`envelope`).
    duration_s : float
        Duration the envelope spans, for the time axis.
    beats, downbeats : sequences of float, optional
        Times in seconds drawn as thin (beats) and stronger (downbeats) lines.
    """
    peaks = np.asarray(peaks, dtype=np.float32).reshape(-1, 2) if np.size(peaks) else np.zeros((1, 2))
    span = max(float(duration_s), 1e-3)
    t = np.linspace(0.0, span, peaks.shape[0])
    quiet = dict(mode="lines", hoverinfo="skip", showlegend=False)
    data = [
        dict(type="scatter", x=t, y=peaks[:, 1], line=dict(width=0), **quiet),
        dict(
            type="scatter", x=t, y=peaks[:, 0], line=dict(width=0), fill="tonexty", fillcolor=ACCENT, **quiet
        ),
    ]
    styles = ((beats, "rgba(255,255,255,0.28)", 1), (downbeats, "rgba(255,255,255,0.7)", 1.5))
    for times, color, width in styles:
        marks = [float(b) for b in (times or []) if 0.0 <= b <= span][:4000]
        if marks:
            xs = np.repeat(np.asarray(marks), 3).astype(object)
            xs[2::3] = None
            ys = np.tile(np.array([-1.0, 1.0, None], dtype=object), len(marks))
            data.append(dict(type="scatter", x=xs, y=ys, line=dict(width=width, color=color), **quiet))
    layout = dict(
        height=height,
        margin=_MARGIN,
        xaxis=dict(visible=False, range=[0, span], fixedrange=True),
        yaxis=dict(visible=False, range=[-1.05, 1.05], fixedrange=True),
        plot_bgcolor="rgba(0,0,0,0)",
        paper_bgcolor="rgba(0,0,0,0)",
        dragmode=False,
    )
    return go.Figure(data=data, layout=layout)


def waveform_figure(
    y: np.ndarray,
    *,
    sr: int,
    beats: Sequence[float] | None = None,
    downbeats: Sequence[float] | None = None,
    height: int = 120,
) -> go.Figure:
    """Waveform of ``y`` (channels, n) with optional beat/downbeat markers.

    The drawing is scaled to the signal's peak (:func:`display_peaks`), so a quietly recorded song
    shows its shape rather than a flat line; the level itself is reported elsewhere (loudness in LUFS).
    """
    duration = np.asarray(y).shape[-1] / float(sr)
    peaks = display_peaks(envelope(y))
    return peaks_figure(peaks, duration_s=duration, beats=beats, downbeats=downbeats, height=height)


def chord_label(label: str) -> str:
    """Short display form of a chord label: ``"A:min"`` -> ``"Am"``, ``"C:maj"`` -> ``"C"``."""
    return label.replace(":maj", "").replace(":min", "m")


def chords_figure(
    chords: Sequence[tuple[float, float, str]], *, duration_s: float, height: int = 90
) -> go.Figure:
    """A chord lane: one bar per chord segment ``(start, end, label)``, minor chords in their own colour.

    No-chord segments (``"N"``) are left empty. Labels stay horizontal and are hidden where a segment
    is too short to hold them legibly (the chord is still in the bar's hover text).
    """
    shown = [(float(s), float(e), lab) for s, e, lab in chords if lab != "N" and e > s]
    fig = go.Figure(
        go.Bar(
            base=[s for s, _, _ in shown],
            x=[e - s for s, e, _ in shown],
            y=["chords"] * len(shown),
            orientation="h",
            text=[chord_label(lab) for _, _, lab in shown],
            textposition="inside",
            insidetextanchor="middle",
            textangle=0,
            marker=dict(
                color=[MINOR_CHORD if lab.endswith(":min") else ACCENT_2 for _, _, lab in shown],
                line=dict(width=1),
            ),
            hovertext=[f"{chord_label(lab)}  {s:.1f}-{e:.1f} s" for s, e, lab in shown],
            hoverinfo="text",
        )
    )
    fig.update_layout(
        height=height,
        margin=dict(l=0, r=0, t=0, b=22),
        xaxis=dict(range=[0, max(float(duration_s), 1e-3)], title=None),
        yaxis=dict(visible=False),
        showlegend=False,
        bargap=0.1,
        dragmode=False,
        uniformtext=dict(minsize=10, mode="hide"),
        plot_bgcolor="rgba(0,0,0,0)",
        paper_bgcolor="rgba(0,0,0,0)",
    )
    return fig


def spectrogram_figure(y: np.ndarray, *, sr: int, title: str = "", height: int = 260) -> go.Figure:
    """Log-frequency dB spectrogram heatmap of ``y`` (channels, n)."""
    from scipy.signal import stft

    mono = np.asarray(y, dtype=np.float32)
    mono = mono.mean(axis=0) if mono.ndim == 2 else mono
    nper = 2048
    if mono.size < nper:
        mono = np.pad(mono, (0, nper - mono.size))
    hop = max(512, mono.size // 600)
    f, t, z = stft(mono, fs=sr, nperseg=nper, noverlap=nper - min(hop, nper - 1), boundary=None)
    db = 20 * np.log10(np.abs(z) + 1e-6)
    keep = (f >= 30) & (f <= min(16000, sr / 2))
    return spectrogram_db_figure(db[keep], freqs=f[keep], times=t, title=title, height=height)


def spectrogram_db_figure(
    db: np.ndarray, *, freqs: np.ndarray, times: np.ndarray, title: str = "", height: int = 260
) -> go.Figure:
    """Heatmap of a dB spectrogram (bins, frames) on a log-frequency axis."""
    top = float(np.max(db)) if db.size else 0.0
    fig = go.Figure(
        go.Heatmap(
            z=np.clip(db, top - 80, top),
            x=times,
            y=freqs,
            colorscale="Magma",
            showscale=False,
            hovertemplate="%{x:.2f} s, %{y:.0f} Hz<extra></extra>",
        )
    )
    fig.update_layout(
        title=dict(text=title, x=0.01, font=dict(size=14)) if title else None,
        height=height,
        margin=dict(l=0, r=0, t=30 if title else 0, b=0),
        yaxis=dict(type="log", title="Hz"),
        xaxis=dict(title="s"),
    )
    return fig


def loss_curve_figure(train: Sequence[float], val: Sequence[float] | None = None, *, height: int = 260):
    """Training (and validation) loss per epoch."""
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(y=list(train), x=list(range(1, len(train) + 1)), name="train", line=dict(color=ACCENT))
    )
    if val:
        fig.add_trace(
            go.Scatter(
                y=list(val), x=list(range(1, len(val) + 1)), name="validation", line=dict(color=ACCENT_2)
            )
        )
    fig.update_layout(
        height=height, margin=dict(l=0, r=0, t=10, b=0), xaxis_title="epoch", yaxis_title="loss"
    )
    return fig


def piano_roll_figure(notes: Sequence[dict], *, height: int = 320) -> go.Figure:
    """Piano roll of notes given as dicts with ``start``, ``end`` (s), ``pitch``, ``stem``.

    Drum notes (``stem == "drums"``) are drawn as short ticks in their own colour.
    """
    palette = ["#ff3d7f", "#7c4dff", "#00c2a8", "#ffb300", "#29b6f6", "#ef5350", "#9ccc65", "#ab47bc"]
    fig = go.Figure()
    stems = sorted({n["stem"] for n in notes})
    for i, stem in enumerate(stems):
        xs, ys = [], []
        for n in notes:
            if n["stem"] != stem:
                continue
            xs += [n["start"], n["end"], None]
            ys += [n["pitch"], n["pitch"], None]
        fig.add_trace(
            go.Scattergl(
                x=xs, y=ys, mode="lines", name=stem, line=dict(color=palette[i % len(palette)], width=5)
            )
        )
    fig.update_layout(
        height=height,
        margin=dict(l=0, r=0, t=10, b=0),
        xaxis_title="seconds",
        yaxis_title="MIDI pitch",
        legend=dict(orientation="h"),
    )
    return fig
