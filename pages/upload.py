"""Upload or record a track, see its analysis, save it to the library."""

from __future__ import annotations

import streamlit as st

from components.audio_input import audio_input
from components.frame import in_frame
from components.plots import waveform_figure
from components.session import require_user
from components.track_actions import save_track_form
from core.errors import StudioError

in_frame()

st.title("Upload")
require_user("upload tracks")

audio = audio_input("Choose an audio file", key="upload")
if audio is None:
    st.caption("Your file stays private until you choose to publish it.")
    st.stop()

from core.audio.analysis import quick_analysis  # noqa: E402 - heavy import only once audio is there

try:
    with st.spinner("Analysing tempo, key and loudness..."):
        info = quick_analysis(audio.y, sr=audio.sr)
except StudioError as exc:
    st.error(str(exc))
    st.stop()

c1, c2, c3, c4 = st.columns(4)
mins, secs = divmod(round(info.duration_s), 60)
c1.metric("Duration", f"{mins}:{secs:02d}")
c2.metric("Tempo", f"{info.tempo_bpm:.0f} bpm" if info.tempo_bpm else "no clear beat")
c3.metric("Key", info.key or "unclear")
c4.metric("Loudness", f"{info.loudness_lufs:.1f} LUFS" if info.loudness_lufs > -70 else "silent")
st.plotly_chart(
    waveform_figure(audio.y, sr=audio.sr, beats=list(info.beats)),
    config={"displayModeBar": False},
    key="upload_wave",
)
st.audio(audio.data)

ext = audio.filename.rsplit(".", 1)[-1].lower() if "." in audio.filename else None
title = audio.filename.rsplit(".", 1)[0].replace("_", " ").strip() or "Untitled"
track_id = save_track_form(
    audio.y,
    sr=audio.sr,
    key="upload",
    defaults={
        "title": title if audio.filename != "recording.wav" else "My recording",
        "source": "record" if audio.filename == "recording.wav" else "upload",
        "bpm": info.tempo_bpm,
        "key": info.key,
        "beats": list(info.beats),
    },
    original=audio.data,
    original_ext=ext,
)
