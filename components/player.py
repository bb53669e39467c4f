"""Audio players for arrays produced on a screen, and one player at a time across the app."""

from __future__ import annotations

import numpy as np
import streamlit as st


def audio_player(y: np.ndarray, *, sr: int, label: str | None = None, cache_key: str | None = None) -> None:
    """Show a labelled player for float32 ``(channels, n)`` audio.

    ``cache_key`` names the audio's content (e.g. the song digest and request that made a result): its
    WAV is then encoded once, not on every rerun of the page (0.1 s per 3 minutes of stereo; a
    10-minute song's WAV is 106 MB).
    """
    from components import resources
    from core.audio.io import encode

    if label:
        st.caption(label)
    if cache_key is not None:
        data = resources.preview_wav(cache_key, y, sr)
    else:
        data = encode(y, sr=sr, fmt="wav", dither=False)
    st.audio(data, format="audio/wav")


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


# Installed once per browser tab (the flag survives page changes, which do not reload the document):
# a "play" event, caught on its way down to any <audio>, pauses every other player. Constant text, no
# user input.
_ONE_PLAYER_SCRIPT = """<script>
(() => {
  const doc = window.document;
  if (doc.__beattokOnePlayer) return;
  doc.__beattokOnePlayer = true;
  doc.addEventListener("play", (event) => {
    for (const other of doc.querySelectorAll("audio")) {
      if (other !== event.target && !other.paused) other.pause();
    }
  }, true);
})();
</script>"""


def one_player_at_a_time() -> None:
    """Make starting any player pause the others (a second track in the feed, the other side of an
    A/B preview): two songs never play over each other. Call once per run of the app, in the sidebar.
    """
    st.html(_ONE_PLAYER_SCRIPT, unsafe_allow_javascript=True)
