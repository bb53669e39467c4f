"""Add beats: upload or record a song (or pick one from the library) and get drums and/or bass that fit it.

Flow: the song -> its analysis (waveform with beats and downbeats, chords lane, tempo and key with their
confidence, warnings when they are unsure) -> corrections (tap tempo, halve/double, reset) -> choices in a
form (parts, style, complexity, humanize, volumes, ducking, key, seed) -> progress -> A/B preview, stems,
piano roll, downloads, save/publish, open in the editor (a project with the original, drums and bass).

The analysis and the result are cached by the song's digest and the request
(:mod:`components.resources`, add-beats section); the session keeps only the digest, the corrections and
the request.
"""

from __future__ import annotations

import json
import time

import streamlit as st

from components import resources
from components.audio_input import audio_input
from components.frame import in_frame
from components.player import audio_player, download_buttons, players_in_step
from components.plots import chords_figure, piano_roll_figure, waveform_figure
from components.session import require_user
from components.text import count
from components.track_actions import save_track_form
from core.errors import StudioError

in_frame()

SOURCES = ("Upload or record", "My library")
NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
KEYS = [f"{n} {m}" for m in ("major", "minor") for n in NOTE_NAMES]
DETECTED = "Detected"
TAP_GAP_S = 3.0

st.title("Add beats")
st.caption(
    "Upload or record a song — a vocal, a guitar loop, a piano demo — and get drums and bass that lock to "
    "its tempo, follow its groove and sit on its chords. Your original stays untouched as its own stem."
)
user = require_user("add beats to your songs")


# ---------------------------------------------------------------------------------------------- input
def _song():
    """``(y, sr, name, digest)`` of the chosen song, or None."""
    kind = st.radio("Song from", SOURCES, horizontal=True, key="ab_source")
    if kind == SOURCES[0]:
        inp = audio_input("Your song", key="ab_in")
        if inp is None:
            return None
        name = inp.filename.rsplit(".", 1)[0] or "My song"
        return inp.y, inp.sr, name, inp.digest
    from sqlmodel import Session

    from core.library import list_user_tracks

    with Session(resources.engine()) as s:
        options = {f"{t.title} (#{t.id})": t.id for t in list_user_tracks(s, owner_id=user.id)}
    if not options:
        st.info("Your library has no tracks yet: upload or record a song instead.")
        return None
    choice = st.selectbox("Track", list(options), key="ab_track")
    try:
        y, sr, title, digest = resources.beats_track_audio(options[choice], user.id)
    except StudioError as exc:
        st.error(str(exc))
        return None
    return y, sr, title, digest


def _tap() -> None:
    now = time.monotonic()
    taps = st.session_state.get("ab_taps", [])
    if taps and now - taps[-1] > TAP_GAP_S:
        taps = []
    st.session_state["ab_taps"] = [*taps, now][-16:]


def _set_tempo(bpm: float | None) -> None:
    st.session_state["ab_tempo"] = None if bpm is None else round(float(bpm), 2)
    st.session_state["ab_taps"] = []


song = _song()
if song is None:
    st.stop()
y, sr, name, digest = song
if st.session_state.get("ab_song") != digest:  # a new song: forget the previous corrections and result
    st.session_state["ab_song"] = digest
    for k in ("ab_tempo", "ab_taps", "ab_request"):
        st.session_state.pop(k, None)

try:
    analysis = resources.beats_analysis(digest, y, sr)
except StudioError as exc:
    st.error(str(exc))
    st.stop()

from core.audio.analysis import tempo_from_taps  # noqa: E402
from core.beats import (  # noqa: E402
    LOW_KEY_CONFIDENCE,
    LOW_TEMPO_CONFIDENCE,
    MIN_SECONDS,
    apply_corrections,
    offered_tempo_alternative,
)

if analysis.duration_s < MIN_SECONDS:
    st.error(
        f"This song is {analysis.duration_s:.1f} s long: adding beats needs at least {MIN_SECONDS:.0f} s of "
        "music. Upload or record a longer take."
    )
    st.stop()
if analysis.tempo_bpm is None and analysis.key is None and not analysis.onsets:
    st.error("This recording is silent: there is nothing to add beats to.")
    st.stop()

tempo_override = st.session_state.get("ab_tempo")
try:
    shown = apply_corrections(analysis, tempo_override=tempo_override)
except StudioError as exc:
    st.error(str(exc))
    _set_tempo(None)
    shown = analysis

# ------------------------------------------------------------------------------------------- analysis
st.subheader("Analysis")
c1, c2, c3 = st.columns(3)
if shown.tempo_bpm is None:
    c1.metric("Tempo", "no beat found")
else:
    label = "set by you" if tempo_override else f"confidence {shown.tempo_confidence:.0%}"
    c1.metric("Tempo", f"{shown.tempo_bpm:.1f} BPM", label, delta_color="off", delta_arrow="off")
c2.metric(
    "Key", shown.key or "unknown", f"confidence {shown.key_confidence:.0%}" if shown.key else None,
    delta_color="off", delta_arrow="off",
)  # fmt: skip
c3.metric("Length", f"{shown.duration_s:.1f} s")
if shown.tempo_bpm is None:
    st.warning("No steady beat was found. Tap along with the song below to set its tempo.")
elif shown.tempo_confidence < LOW_TEMPO_CONFIDENCE and not tempo_override:
    st.warning(
        f"The beat is unclear (confidence {shown.tempo_confidence:.0%}): the drums may not follow the song. "
        "Check the beat markers, halve or double the tempo, or tap it."
    )
alternative = offered_tempo_alternative(shown)
if alternative is not None:
    alt_bpm, alt_p, relation = alternative
    a1, a2 = st.columns([3, 1], vertical_alignment="center")
    a1.info(
        f"It could also be **{alt_bpm:.1f} BPM** ({relation}): the tempo model gives it {alt_p:.0%}. "
        "Songs are often felt at two speeds; pick the one your drums should follow."
    )
    a2.button(f"Use {alt_bpm:.1f} BPM", key="ab_use_alt", on_click=_set_tempo, args=(alt_bpm,))
if shown.key and shown.key_confidence < LOW_KEY_CONFIDENCE:
    st.warning(
        f"The key is unclear (confidence {shown.key_confidence:.0%}): set it in the options if needed."
    )
st.plotly_chart(
    waveform_figure(y, sr=sr, beats=shown.beats, downbeats=shown.downbeats, height=140),
    width="stretch", key="ab_wave",
)  # fmt: skip
if shown.chords:
    st.plotly_chart(
        chords_figure(shown.chords, duration_s=shown.duration_s), width="stretch", key="ab_chords"
    )
else:
    st.caption("No chords recognised.")

with st.expander("Correct the tempo", expanded=shown.tempo_bpm is None):
    t1, t2, t3, t4 = st.columns(4)
    t1.button("Tap", key="ab_tap", on_click=_tap, help="Tap along with the beat (at least 3 taps).")
    taps = st.session_state.get("ab_taps", [])
    tapped = None
    if len(taps) >= 3:
        try:
            tapped = tempo_from_taps(taps)
        except StudioError as exc:
            st.caption(str(exc))
    t2.button(
        f"Use {tapped:.1f} BPM" if tapped else "Use tapped tempo", key="ab_use_tap", disabled=tapped is None,
        on_click=_set_tempo, args=(tapped,),
    )  # fmt: skip
    current = shown.tempo_bpm
    t3.button(
        "Halve", key="ab_halve", disabled=current is None or current / 2 < 30, on_click=_set_tempo,
        args=((current or 0) / 2,),
    )  # fmt: skip
    t3.button(
        "Double", key="ab_double", disabled=current is None or current * 2 > 300, on_click=_set_tempo,
        args=((current or 0) * 2,),
    )  # fmt: skip
    t4.button("Reset", key="ab_reset", disabled=tempo_override is None, on_click=_set_tempo, args=(None,))
    st.caption(count(len(taps), "tap") + (f": {tapped:.1f} BPM" if tapped else ""))

# -------------------------------------------------------------------------------------------- options
from core.beats import style_choices  # noqa: E402

with st.form("ab_form"):
    st.subheader("Beats")
    c1, c2, c3 = st.columns(3)
    want_drums = c1.checkbox("Drums", value=True, key="ab_drums")
    want_bass = c2.checkbox("Bass", value=True, key="ab_bass")
    duck = c3.checkbox("Duck the bass under the kick", value=True, key="ab_duck")
    c1, c2 = st.columns(2)
    style = c1.selectbox("Drum style", ["auto", *style_choices()], key="ab_style")
    key_choice = c2.selectbox(
        "Key", [DETECTED, *KEYS], key="ab_key", help="Set the key if the detected one is wrong."
    )
    c1, c2 = st.columns(2)
    complexity = c1.slider("Complexity", 0.0, 1.0, 0.5, 0.05, key="ab_complexity")
    humanize = c2.slider("Humanize", 0.0, 1.0, 0.5, 0.05, key="ab_humanize")
    c1, c2, c3 = st.columns(3)
    drums_db = c1.slider("Drums volume (dB)", -24.0, 12.0, 0.0, 1.0, key="ab_drums_db")
    bass_db = c2.slider("Bass volume (dB)", -24.0, 12.0, 0.0, 1.0, key="ab_bass_db")
    seed = c3.number_input("Seed", 0, 2**31 - 1, 0, step=1, key="ab_seed")
    submitted = st.form_submit_button("Add beats", type="primary", disabled=shown.tempo_bpm is None)

if submitted:
    if not (want_drums or want_bass):
        st.error("Choose drums, bass or both.")
    else:
        st.session_state["ab_request"] = {
            "sr": int(sr), "drums": bool(want_drums), "bass": bool(want_bass),
            "style": None if style == "auto" else style, "complexity": float(complexity),
            "humanize": float(humanize), "drums_db": float(drums_db), "bass_db": float(bass_db),
            "duck": bool(duck), "seed": int(seed), "tempo_override": tempo_override,
            "key_override": None if key_choice == DETECTED else key_choice,
        }  # fmt: skip

request = st.session_state.get("ab_request")
if not request:
    st.stop()
request_json = json.dumps(request, sort_keys=True)
try:
    result = resources.beats_result(digest, request_json, y, analysis)
except StudioError as exc:
    st.error(str(exc))
    st.stop()

# --------------------------------------------------------------------------------------------- result
st.subheader("Result")
st.caption(
    f"Style {result.style} · {len(result.drum_notes)} drum hits · {len(result.bass_notes)} bass notes · "
    f"{result.analysis.tempo_bpm:.1f} BPM · {result.analysis.key or 'key unknown'}"
)
for w in result.warnings:
    st.warning(w)
mix_key, original_key = f"add-beats/{digest}/{request_json}/mix", f"add-beats/{digest}/original"
with players_in_step("add-beats"):
    a_side, b_side = st.columns(2)
    with a_side:
        audio_player(result.mix, sr=result.sr, label="A · with beats", cache_key=mix_key)
    with b_side:
        audio_player(result.stems["original"], sr=result.sr, label="B · original", cache_key=original_key)
    st.caption(
        "A/B: the players keep in step. Press play on the other one to hear the same moment with or "
        "without the beats."
    )
    with st.expander("Stems and notes"):
        for stem in ("drums", "bass"):
            if (stem == "drums" and request["drums"]) or (stem == "bass" and request["bass"]):
                stem_key = f"add-beats/{digest}/{request_json}/{stem}"
                audio_player(result.stems[stem], sr=result.sr, label=stem.title(), cache_key=stem_key)
        if result.notes:
            st.plotly_chart(piano_roll_figure(result.notes, height=260), width="stretch", key="ab_roll")
download_buttons(result.mix, sr=result.sr, basename=f"{name} with beats", key="ab_dl", title=name)

c1, c2 = st.columns(2)
with c1:
    st.caption("Save it to your library — choose Public to publish it to the BeatTok feed.")
    save_track_form(
        result.mix,
        sr=result.sr,
        key="ab_save",
        defaults={
            "title": f"{name} (with beats)"[:120],
            "source": "add_beats",
            "bpm": result.analysis.tempo_bpm,
            "key": result.analysis.key,
            "beats": [round(t, 3) for t in result.analysis.beats],
        },
    )
with c2:
    st.write("Change levels, effects, tempo or key of each part in the editor.")
    if st.button("Open in editor", key="ab_open_editor"):
        from components.editor_link import save_and_open_in_editor
        from core.editor.project import from_audio_stems

        def build(sources):
            stems = {k: result.stems[k] for k in ("original", "drums", "bass")}
            a = result.analysis
            return from_audio_stems(
                stems, sources=sources, title=f"{name} (with beats)", sr=result.sr, tempo_bpm=a.tempo_bpm,
                key=a.key, chords=a.chords,
            )  # fmt: skip

        # a long song's result (844 MB for 10 minutes) is let go: the editor holds the same audio now
        save_and_open_in_editor(
            build, user_id=user.id, on_saved=lambda: resources.release_beats_result(digest, request_json)
        )
