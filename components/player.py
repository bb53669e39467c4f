"""Audio players for arrays produced on a screen; one player at a time across the app, and groups of
players that keep to one timeline."""

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


# Installed once per browser tab (the flag survives page changes, which do not reload the document).
# Constant text, no user input. The rules:
# - one player at a time: a "play" event, caught on its way down to any <audio>, pauses every other one;
# - players in step, inside a container made by `players_in_step`: a player that starts goes to where
#   the group's player in use was -- the one playing, else the one played, paused or sought last if
#   that was after this player's own last use (a player that reached its end does not count);
# - a player of such a group whose source is swapped (an instrument picked with a radio button) goes
#   on from the same moment, playing if it was.
_PLAYERS_SCRIPT = """<script>
(() => {
  const doc = window.document;
  if (doc.__beattokPlayers) return;
  doc.__beattokPlayers = true;
  const GROUP = '[class*="st-key-%(prefix)s"]';
  const used = new WeakMap();  // when each player was last played, paused or sought
  const last = new WeakMap();  // [position, playing] at its last time update
  const carried = new WeakMap();  // [position, playing] of a grouped player whose source changed
  const isPlayer = (node) => node instanceof HTMLMediaElement;
  const end = (player) => (Number.isFinite(player.duration) ? player.duration : Infinity);
  const stamp = (event) => { if (isPlayer(event.target)) used.set(event.target, performance.now()); };
  doc.addEventListener("pause", stamp, true);
  doc.addEventListener("seeked", stamp, true);
  doc.addEventListener("timeupdate", (event) => {
    const p = event.target;
    if (isPlayer(p) && p.currentTime > 0) last.set(p, [p.currentTime, !p.paused]);
  }, true);
  doc.addEventListener("emptied", (event) => {
    const p = event.target;
    if (!isPlayer(p)) return;
    used.delete(p);
    if (last.has(p) && p.closest(GROUP)) carried.set(p, last.get(p));
    last.delete(p);
  }, true);
  doc.addEventListener("loadedmetadata", (event) => {
    const p = event.target;
    const state = isPlayer(p) && carried.get(p);
    if (!state) return;
    carried.delete(p);
    setTimeout(() => {  // after the player's own handler, which goes back to its start time
      p.currentTime = Math.min(state[0], end(p));
      used.set(p, performance.now());
      if (state[1]) p.play().catch(() => {});
    }, 0);
  }, true);
  doc.addEventListener("play", (event) => {
    const player = event.target;
    if (!isPlayer(player)) return;
    const group = player.closest(GROUP);
    if (group) {
      let lead = null;
      for (const other of group.querySelectorAll("audio")) {
        if (other === player || !used.has(other) || other.ended) continue;
        if (!other.paused) { lead = other; break; }
        if (!lead || used.get(other) > used.get(lead)) lead = other;
      }
      const own = used.has(player) ? used.get(player) : -Infinity;
      const follow = lead && (!lead.paused || used.get(lead) > own);
      if (follow && Math.abs(lead.currentTime - player.currentTime) > 0.05) {
        player.currentTime = Math.min(lead.currentTime, end(player));
      }
    }
    used.set(player, performance.now());
    for (const other of doc.querySelectorAll("audio")) {
      if (other !== player && !other.paused) other.pause();
    }
  }, true);
})();
</script>"""
_IN_STEP_PREFIX = "beattok-in-step-"


def install_player_rules() -> None:
    """Make starting any player pause the others (a second track in the feed, the other side of an
    A/B preview): two songs never play over each other; and keep the players of a
    :func:`players_in_step` group at the same moment (the rules: the comment above the script).
    Drawn on every run by :func:`components.frame.draw_frame`, in the sidebar.
    """
    st.html(_PLAYERS_SCRIPT % {"prefix": _IN_STEP_PREFIX}, unsafe_allow_javascript=True)


def players_in_step(name: str):
    """A container whose players share one timeline (a mix, its original and its stems): starting one
    continues from where the one in use was, so an A/B comparison hears the same moment on both sides;
    a player whose source is swapped (another instrument) goes on from the same moment.

    Parameters
    ----------
    name : str
        Names the group (letters, digits, ``-``); unique on the page.

    Returns
    -------
    streamlit container
        Use it as a context manager: ``with players_in_step("add-beats"): ...``.
    """
    return st.container(key=_IN_STEP_PREFIX + name)
