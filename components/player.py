"""Audio players for arrays produced on a screen."""

from __future__ import annotations

import numpy as np
import streamlit as st


def wav_bytes(y: np.ndarray, *, sr: int) -> bytes:
    """Encode ``y`` to WAV bytes for a player or a download."""
    from core.audio.io import encode

    return encode(y, sr=sr, fmt="wav")


def audio_player(y: np.ndarray, *, sr: int, label: str | None = None) -> None:
    """Show a labelled player for float32 ``(channels, n)`` audio."""
    if label:
        st.caption(label)
    st.audio(wav_bytes(y, sr=sr), format="audio/wav")


def download_buttons(y: np.ndarray, *, sr: int, basename: str, key: str, title: str | None = None) -> None:
    """WAV and MP3 download buttons; the files are encoded only when clicked."""
    from core.audio.io import encode

    safe = "".join(c if c.isalnum() or c in "-_ " else "_" for c in basename).strip() or "beattok"
    c1, c2 = st.columns(2)
    c1.download_button(
        "Download WAV",
        data=lambda: encode(y, sr=sr, fmt="wav", title=title),
        file_name=f"{safe}.wav",
        mime="audio/wav",
        key=f"{key}_wav",
        on_click="ignore",
    )
    c2.download_button(
        "Download MP3",
        data=lambda: encode(y, sr=sr, fmt="mp3", title=title),
        file_name=f"{safe}.mp3",
        mime="audio/mpeg",
        key=f"{key}_mp3",
        on_click="ignore",
    )
