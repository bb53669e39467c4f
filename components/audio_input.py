"""Upload-or-record audio input: one component for every screen that takes a song."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from core.config import SAMPLE_RATE
from core.errors import StudioError


@dataclass(frozen=True)
class InputAudio:
    """Decoded input: float32 ``(2, n)`` audio at ``sr``, its file name, its original bytes and their
    SHA-256 (hex; computed once, so pages need not hash a 100 MB upload again on every rerun)."""

    y: np.ndarray
    sr: int
    filename: str
    data: bytes
    digest: str


def decode_input(data: bytes, *, filename: str, digest: str | None = None) -> InputAudio:
    """Decode uploaded/recorded bytes with the configured limits (raises StudioError); ``digest`` is
    their SHA-256 when the caller has it already."""
    import hashlib

    from core.audio.io import AudioLimits, decode

    y = decode(data, filename=filename, sr=SAMPLE_RATE, limits=AudioLimits.from_settings())
    digest = digest or hashlib.sha256(data).hexdigest()
    return InputAudio(y=y, sr=SAMPLE_RATE, filename=filename, data=data, digest=digest)


def audio_input(label: str, *, key: str, allow_record: bool = True) -> InputAudio | None:
    """Let the user upload a file or record in the browser; return the decoded audio or None.

    Errors (bad format, too long, corrupt) are shown with ``st.error`` and give None.
    """
    from core.audio.io import SUPPORTED_FORMATS

    tabs = st.tabs(["Upload a file", "Record"]) if allow_record else [st.container()]
    data = name = None
    with tabs[0]:
        up = st.file_uploader(
            label,
            type=list(SUPPORTED_FORMATS),
            key=f"{key}_upload",
            help="WAV, FLAC, OGG, MP3 or M4A/AAC, up to 10 minutes.",
        )
        if up is not None:
            data, name = up.getvalue(), up.name
    if allow_record:
        with tabs[1]:
            rec = st.audio_input("Record with your microphone", sample_rate=48000, key=f"{key}_record")
            if rec is not None and data is None:
                data, name = rec.getvalue(), "recording.wav"
            with st.expander("Microphone not working? Try the classic recorder"):
                from audio_recorder_streamlit import audio_recorder

                classic = audio_recorder(text="Click to record", sample_rate=44100, key=f"{key}_classic")
                if classic and data is None:
                    data, name = classic, "recording.wav"
    if data is None:
        return None
    return _decode_cached(data, name or "upload.wav")


def _decode_cached(data: bytes, filename: str) -> InputAudio | None:
    """Decode once per distinct upload (uploads stay in RAM; decoding is the costly part)."""
    import hashlib

    digest = hashlib.sha256(data).hexdigest()
    cache = st.session_state.setdefault("_decoded_inputs", {})
    if digest in cache:
        return cache[digest]
    try:
        with st.spinner("Reading audio..."):
            result = decode_input(data, filename=filename, digest=digest)
    except StudioError as exc:
        st.error(str(exc))
        return None
    cache.clear()  # keep at most one decoded input per session
    cache[digest] = result
    return result
