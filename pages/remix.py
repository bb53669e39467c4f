"""Remix: one song in the musical style of another (neural style transfer on spectrograms).

Two inputs (upload/record, a track of my library, or a public track of the feed), the controls in a
form (strength, which part of each song, length, quality, seed), a progress bar with a Cancel button,
then the spectrograms of content, style and result side by side, a player, downloads and the
save/publish form. The result is cached by the inputs' digests and the settings
(:func:`components.resources.remix_result`), so it survives reruns without keeping audio in the session.
"""

from __future__ import annotations

import hashlib

import numpy as np
import streamlit as st
from sqlmodel import Session

from components import resources
from components.audio_input import audio_input
from components.frame import in_frame
from components.session import require_user
from core.errors import CancelledError, InputError, StudioError

in_frame()

SOURCES = ("Upload or record", "My library", "BeatTok feed")
QUALITY_LABELS = {
    "fast": "Fast (lighter style, about 3x quicker)",
    "balanced": "Balanced (30 s of music in under 30 s)",
    "high": "High (stronger style, about 3x slower)",
}

st.title("Remix")
st.caption(
    "Give two songs: the first keeps its melody and harmony, the second lends its sound — timbre, texture, "
    "groove colour. Neural style transfer on spectrograms (Ulyanov & Lebedev), with the result brought to "
    "a safe, even loudness."
)
user = require_user("remix songs")


def _choose(side: str, label: str):
    """Input widgets for one song; returns ``("bytes", data, name)``, ``("track", id, title)`` or None."""
    st.subheader(label)
    kind = st.radio("From", SOURCES, horizontal=True, key=f"remix_{side}_source")
    if kind == SOURCES[0]:
        inp = audio_input(f"{label}: audio file", key=f"remix_{side}")
        return None if inp is None else ("bytes", inp.data, inp.filename)
    from core.library import feed, list_user_tracks

    with Session(resources.engine()) as s:
        if kind == SOURCES[1]:
            tracks = list_user_tracks(s, owner_id=user.id)
        else:
            tracks = feed(s, sort="trending", limit=50)
        # plain string options (label -> id, name); the id keeps labels unique for equal titles
        options = {f"{_label(t)} (#{t.id})": (t.id, _label(t)) for t in tracks}
    if not options:
        st.info(
            "Your library has no tracks yet." if kind == SOURCES[1] else "The feed has no public tracks yet."
        )
        return None
    choice = st.selectbox("Track", list(options), key=f"remix_{side}_track")
    track_id, name = options[choice]
    return ("track", track_id, name)


def _label(track) -> str:
    return f"{track.title} — {track.artist_name}" if track.artist_name else track.title


def _resolve(choice, what: str) -> tuple[bytes, str, str]:
    """The bytes, a file name and a display name of a chosen input (tracks checked for visibility)."""
    if choice is None:
        raise InputError(f"choose the {what} song first (upload or record one, or pick a track)")
    kind, value, name = choice
    if kind == "bytes":
        return value, name, name
    from core.library import audio_bytes, get_for_viewer

    with Session(resources.engine()) as s:
        track = get_for_viewer(s, track_id=int(value), viewer_id=user.id)
        data, filename, _ = audio_bytes(s, resources.storage(), track=track)
    return data, filename, name


def _cancel() -> None:
    st.session_state["remix_cancel"] = True


left, right = st.columns(2)
with left:
    content_choice = _choose("content", "Content song")
with right:
    style_choice = _choose("style", "Style song")

with st.form("remix_form"):
    strength = st.slider(
        "Style strength",
        0.0,
        1.0,
        0.5,
        step=0.05,
        key="remix_strength",
        help="0 keeps the content as it is; 1 pushes as far towards the style's sound as the quality allows.",
    )
    c1, c2, c3 = st.columns(3)
    seconds = c1.slider("Length (s)", 5, 120, 30, step=5, key="remix_seconds")
    content_offset = c2.number_input(
        "Content starts at (s)", 0.0, 3600.0, 0.0, step=5.0, key="remix_content_offset"
    )
    style_offset = c3.number_input(
        "Style starts at (s)", 0.0, 3600.0, 0.0, step=5.0, key="remix_style_offset"
    )
    c1, c2 = st.columns(2)
    quality = c1.selectbox(
        "Quality", list(QUALITY_LABELS), index=1, format_func=QUALITY_LABELS.get, key="remix_quality"
    )
    seed = c2.number_input("Seed", 0, 2**31 - 1, 0, step=1, key="remix_seed")
    submitted = st.form_submit_button("Remix", type="primary")

if st.session_state.pop("remix_cancel", False) and not submitted:
    st.warning("Remix cancelled. Nothing was saved.")

if submitted:
    cancel_slot = st.empty()
    bar = st.progress(0.0, text="Loading the songs...")
    try:
        content_data, content_file, content_name = _resolve(content_choice, "content")
        style_data, style_file, style_name = _resolve(style_choice, "style")
        request = {
            "content_sha": hashlib.sha256(content_data).hexdigest(),
            "style_sha": hashlib.sha256(style_data).hexdigest(),
            "seconds": float(seconds),
            "strength": float(strength),
            "content_offset_s": float(content_offset),
            "style_offset_s": float(style_offset),
            "quality": str(quality),
            "seed": int(seed),
        }
        st.session_state["remix_cancel"] = False
        cancel_slot.button("Cancel", key="remix_cancel_button", on_click=_cancel)

        def _progress(fraction: float, message: str) -> None:
            if st.session_state.get("remix_cancel"):
                raise CancelledError("remix cancelled")
            bar.progress(fraction, text=message)

        settings = {k: v for k, v in request.items() if not k.endswith("_sha")}
        result = resources.compute_remix(
            (content_data, content_file), (style_data, style_file), progress=_progress, **settings
        )
        resources.remix_result(**request, _result=result)
        st.session_state["remix_request"] = request | {"names": (content_name, style_name)}
    except CancelledError:
        st.warning("Remix cancelled. Nothing was saved.")
    except StudioError as exc:
        st.error(str(exc))
    finally:
        bar.empty()
        cancel_slot.empty()
        st.session_state.pop("remix_cancel", None)


def _spectrogram(spec: np.ndarray, result, title: str, key: str) -> None:
    from components.plots import spectrogram_db_figure

    db = 20 * np.log10(np.expm1(spec[1:]) + 1e-3)
    times = np.arange(spec.shape[1]) * result.spec_frame_s
    st.plotly_chart(
        spectrogram_db_figure(db, freqs=result.spec_hz[1:], times=times, title=title, height=240),
        config={"displayModeBar": False},
        key=key,
    )


request = st.session_state.get("remix_request")
if request is not None:
    names = request.get("names", ("content", "style"))
    settings = {k: v for k, v in request.items() if k != "names"}
    try:
        result = resources.remix_result(**settings)
    except StudioError as exc:
        st.session_state.pop("remix_request", None)
        st.error(str(exc))
    else:
        from components.player import audio_player, download_buttons
        from components.track_actions import save_track_form

        st.divider()
        st.subheader(f"{names[0]} in the style of {names[1]}")
        for note in result.notes:
            st.caption(note)
        m1, m2, m3, m4 = st.columns(4)
        m1.metric("Style distance before", f"{result.style_loss_before:.3f}")
        m2.metric(
            "Style distance after",
            f"{result.style_loss_after:.3f}",
            delta=f"{result.style_loss_after - result.style_loss_before:+.3f}",
            delta_color="inverse",
        )
        m3.metric("Content change", f"{result.content_loss_after:.3f}")
        m4.metric("Time", f"{result.elapsed_s:.1f} s")
        s1, s2, s3 = st.columns(3)
        with s1:
            _spectrogram(result.content_spec, result, "Content", "remix_spec_content")
        with s2:
            _spectrogram(result.style_spec, result, "Style", "remix_spec_style")
        with s3:
            _spectrogram(result.result_spec, result, "Result", "remix_spec_result")
        audio_player(result.audio, sr=result.sr, label="Remix (normalized to -14 LUFS, peaks below -1 dBTP)")
        title = f"{names[0]} × {names[1]} (remix)"[:120]
        download_buttons(result.audio, sr=result.sr, basename=title, key="remix_dl", title=title)
        save_track_form(
            result.audio,
            sr=result.sr,
            key="remix",
            defaults={"title": title, "tags": ["remix"], "source": "remix"},
        )
