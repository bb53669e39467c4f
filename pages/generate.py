"""Generate a song: genre, mood, tempo, key, instruments, length and seed -> a multi-stem song.

The choices sit in a form, so nothing runs until "Generate". Generation is deterministic for its settings,
so the result is cached by them (``components.resources.generated_song``) and survives reruns; only the
settings live in the session. Results: the mix player, a player for any single stem, a piano roll of
every part, WAV/MP3/MIDI downloads, "save to library" and "open in editor" (stores an editor project
with the stems and their MIDI).
"""

from __future__ import annotations

import json

import streamlit as st

from components import resources
from components.frame import in_frame
from components.session import require_user
from components.text import md_escape
from core.errors import StudioError
from core.music.instruments import GENRES, MOODS, ROLES
from core.music.theory import NOTE_NAMES_FLAT, NOTE_NAMES_SHARP

in_frame()

st.title("Generate a song")
st.caption(
    "Pick a genre, mood, tempo, key and instruments: trained drum, bass, chord and melody models write "
    "the parts, a General MIDI soundfont plays them, and you get one track per instrument, ready to edit."
)
user = require_user("generate songs")

_KEY_AUTO = "Auto (from the mood)"
_TONICS = [
    NOTE_NAMES_FLAT[i]
    if NOTE_NAMES_FLAT[i] != NOTE_NAMES_SHARP[i] and i in (3, 8, 10)
    else NOTE_NAMES_SHARP[i]
    for i in range(12)
]
KEYS = [_KEY_AUTO] + [f"{t} {m}" for m in ("major", "minor") for t in _TONICS]
# the Album factory's genres, as the engine names them
_ALBUM_GENRES = {"rap": "hip-hop", "hip hop": "hip-hop", "kpop": "k-pop", "lofi": "lo-fi", "rnb": "r&b"}

st.session_state.setdefault("gen_genre", "pop")
st.session_state.setdefault("gen_tempo", 120)
# after a song at the genre's tempo, the slider shows that tempo (set before the slider exists)
if (chosen_tempo := st.session_state.pop("gen_tempo_chosen", None)) is not None:
    st.session_state["gen_tempo"] = chosen_tempo
if prefill := st.session_state.pop("generate_prefill", None):  # "Make a track" in the Album factory
    wanted = _ALBUM_GENRES.get(
        str(prefill.get("genre") or "").lower(), str(prefill.get("genre") or "").lower()
    )
    if wanted in GENRES:
        st.session_state["gen_genre"] = wanted
    if prefill.get("mood") in MOODS:
        st.session_state["gen_mood"] = prefill["mood"]
    st.session_state["gen_title"] = str(prefill.get("title") or "").strip()[:120]
if st.session_state.get("gen_title"):
    st.info(f"Making a track for “{md_escape(st.session_state['gen_title'])}”: pick the sound, then save it.")

with st.form("gen_form"):
    c1, c2 = st.columns(2)
    genre = c1.selectbox("Genre", list(GENRES), key="gen_genre")
    mood = c2.selectbox("Mood", list(MOODS), key="gen_mood")
    c1, c2, c3 = st.columns([1, 2, 2])
    auto_tempo = c1.checkbox(
        "Genre's tempo", value=True, key="gen_auto_tempo", help="Use the genre's usual tempo"
    )
    tempo = c2.slider(
        "Tempo (bpm)", 40, 240, key="gen_tempo", help="Used when 'Genre's tempo' is off; after a song at the "
        "genre's tempo it shows that tempo, to start from",
    )  # fmt: skip
    key_name = c3.selectbox("Key", KEYS, key="gen_key")
    instruments = st.multiselect(
        "Instruments", list(ROLES), default=["drums", "bass", "keys", "lead"], key="gen_instruments"
    )
    c1, c2 = st.columns(2)
    seconds = c1.slider("Length (s)", 5, 600, 30, step=5, key="gen_seconds")
    seed = c2.number_input("Seed (same seed, same song)", 0, 2**31 - 1, 0, step=1, key="gen_seed")
    go = st.form_submit_button("Generate", type="primary")

if go:
    st.session_state["gen_request"] = {
        "genre": genre,
        "mood": mood,
        "tempo": None if auto_tempo else float(tempo),
        "key": None if key_name == _KEY_AUTO else key_name,
        "instruments": tuple(instruments),
        "seconds": float(seconds),
        "seed": int(seed),
    }

request = st.session_state.get("gen_request")
song = None
if request is not None:
    try:
        song = resources.generated_song(**request)
    except StudioError as exc:
        st.error(str(exc))
    if go and song is not None and request["tempo"] is None:
        shown = min(max(round(song.tempo_bpm), 40), 240)
        if st.session_state.get("gen_tempo") != shown:
            st.session_state["gen_tempo_chosen"] = shown
            st.rerun()  # the form above was drawn with the old tempo

if song is not None:
    from components.player import audio_player, download_buttons, players_in_step
    from components.plots import piano_roll_figure
    from components.track_actions import save_track_form

    dur = song.mix.shape[1] / song.sr
    st.subheader(f"{song.genre} · {song.mood} · {song.key} · {song.tempo_bpm:g} bpm · {dur:.0f} s")
    st.caption(
        "Sections: "
        + " → ".join(f"{s['name']} ({s['bars']})" for s in song.sections)
        + f" · chords: {' '.join(c for _, _, c in song.chords[:8])}"
        + ("…" if len(song.chords) > 8 else "")
    )
    song_key = "generate/" + json.dumps(request, sort_keys=True)

    @st.fragment
    def _stem_player() -> None:
        stem = st.radio("Play one instrument", list(song.stems), horizontal=True, key="gen_stem")
        audio_player(song.stems[stem], sr=song.sr, cache_key=f"{song_key}/{stem}")

    with players_in_step("generate"):  # the mix and each instrument on one timeline
        audio_player(song.mix, sr=song.sr, label="Mix", cache_key=f"{song_key}/mix")
        _stem_player()
    st.plotly_chart(piano_roll_figure(song.notes), config={"displayModeBar": False}, key="gen_piano_roll")

    base = f"{song.genre}_{song.mood}_{song.seed}".replace("&", "n")
    download_buttons(song.mix, sr=song.sr, basename=base, key="gen_dl", title=f"{song.genre} {song.mood}")
    st.download_button(
        "Download MIDI", data=song.midi_all, file_name=f"{base}.mid", mime="audio/midi", key="gen_dl_midi"
    )

    c1, c2 = st.columns(2)
    with c1:
        save_track_form(
            song.mix,
            sr=song.sr,
            key="gen",
            defaults={
                "title": st.session_state.get("gen_title")
                or f"{song.genre.title()} {song.mood} in {song.key}",
                "genre": song.genre,
                "tags": [song.mood],
                "source": "generate",
                "bpm": song.tempo_bpm,
                "key": song.key,
            },
        )
    with c2:
        st.write("Edit volumes, effects, tempo and key, or add and remove instruments.")
        if st.button("Open in editor", key="gen_open_editor"):
            from components.editor_link import save_and_open_in_editor
            from core.editor.project import from_song

            save_and_open_in_editor(
                lambda sources: from_song(song, sources=sources, title=f"{song.genre} {song.mood}"),
                user_id=user.id,
            )
