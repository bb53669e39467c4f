"""Editor widgets: track lanes, the mixer strip and the effect-chain editor. They return plain values.

The page turns those values into :mod:`core.editor.ops` operations; nothing here changes a project.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import streamlit as st

from core.audio.effects import EFFECT_TYPES, EffectSpec

LOOP_FILL = "rgba(124,77,255,0.25)"


def lane_peaks(y: np.ndarray, *, points: int = 400) -> np.ndarray:
    """Min/max envelope ``(points, 2)`` of ``y`` (channels, n), vectorised (a 3-minute stem in ~10 ms)."""
    mono = y[0] if y.shape[0] == 1 else (y[0] * 0.5 + y[1] * 0.5)
    n = mono.size
    if n == 0:
        return np.zeros((points, 2), np.float32)
    hop = max(1, n // points)
    used = min(n, hop * points)
    blocks = mono[:used].reshape(-1, hop)
    out = np.stack([blocks.min(axis=1), blocks.max(axis=1)], axis=1)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def lane_figure(y: np.ndarray, *, sr: int, regions: Sequence[tuple[float, float]] = (), height: int = 70):
    """A track's waveform lane with loop regions (seconds of the rendered song) shaded.

    The envelope is scaled to the lane's own peak so quiet stems stay readable (the mixer shows levels).
    """
    from components.plots import peaks_figure

    peaks = lane_peaks(y)
    top = float(np.abs(peaks).max())
    if top > 1e-6:
        peaks = peaks / np.float32(top)
    fig = peaks_figure(
        peaks, duration_s=peaks.shape[0] * max(1, y.shape[1] // peaks.shape[0]) / sr, height=height
    )
    fig.update_xaxes(range=[0, y.shape[1] / sr])
    for start, end in regions:
        fig.add_vrect(x0=start, x1=end, fillcolor=LOOP_FILL, line_width=0, layer="below")
    return fig


@dataclasses.dataclass(frozen=True)
class StripValues:
    """What the mixer strip of one track shows: volume (dB), pan, mute and solo."""

    gain_db: float
    pan: float
    mute: bool
    solo: bool


def mixer_strip(
    name: str, current: StripValues, *, key: str, on_change=None, args: tuple = ()
) -> StripValues:
    """Volume / pan sliders and mute / solo toggles for one track; returns the values shown.

    ``on_change(*args)`` runs when any control changes. Widget keys are ``{key}_gain``, ``{key}_pan``,
    ``{key}_mute`` and ``{key}_solo``.
    """
    c1, c2, c3, c4 = st.columns([3, 3, 1, 1])
    gain = c1.slider(
        f"{name} volume (dB)",
        -60.0,
        12.0,
        float(current.gain_db),
        0.5,
        key=f"{key}_gain",
        on_change=on_change,
        args=args,
    )
    pan = c2.slider(
        f"{name} pan", -1.0, 1.0, float(current.pan), 0.05, key=f"{key}_pan", on_change=on_change, args=args
    )
    mute = c3.toggle("Mute", value=bool(current.mute), key=f"{key}_mute", on_change=on_change, args=args)
    solo = c4.toggle("Solo", value=bool(current.solo), key=f"{key}_solo", on_change=on_change, args=args)
    return StripValues(float(gain), float(pan), bool(mute), bool(solo))


def _effect_controls(cls: type[EffectSpec], current: EffectSpec | None, *, key: str) -> dict:
    values = {}
    for f in dataclasses.fields(cls):
        now = getattr(current, f.name) if current is not None else f.default
        label = f.name.replace("_", " ").capitalize()
        if f.metadata.get("unit"):
            label += f" ({f.metadata['unit']})"
        if "choices" in f.metadata:
            opts = list(f.metadata["choices"])
            values[f.name] = st.selectbox(label, opts, index=opts.index(now), key=f"{key}_{f.name}")
        elif "range" in f.metadata:
            lo, hi = f.metadata["range"]
            step = 0.01 if hi - lo <= 2 else (0.1 if hi - lo <= 100 else 1.0)
            values[f.name] = st.slider(
                label,
                float(lo),
                float(hi),
                float(now),
                step,
                key=f"{key}_{f.name}",
                help=f.metadata.get("doc"),
            )
    return values


def effect_chain_editor(
    chain: Sequence[EffectSpec], *, key: str, title: str = "Effects"
) -> list[dict] | None:
    """Edit an effect chain in a form; returns the new chain as effect dicts when applied, else None.

    The user picks effects (in chain order), then sets each one's parameters inside a form, so a
    parameter slider reruns nothing until "Apply effects" is pressed. The result is plain data for
    :class:`core.editor.ops.TrackEffects` / :class:`core.editor.ops.MasterEffects`.
    """
    by_type = {e.type: e for e in chain}
    names = list(EFFECT_TYPES)
    chosen = st.multiselect(
        title,
        names,
        default=[e.type for e in chain if e.type in names],
        format_func=lambda n: EFFECT_TYPES[n].__name__,
        key=f"{key}_types",
        help="Effects run in the order picked here.",
    )
    with st.form(key=f"{key}_form", border=False):
        result = []
        for n in chosen:
            st.markdown(f"**{EFFECT_TYPES[n].__name__}**")
            result.append({"type": n, **_effect_controls(EFFECT_TYPES[n], by_type.get(n), key=f"{key}_{n}")})
        applied = st.form_submit_button("Apply effects")
    return result if applied else None
