"""Album factory: a cover and a track list from an album name and artist.

Guests may generate (cheap, and the booth demo); saving needs an account. "Make a track for this
title" opens the Generate page with ``st.session_state["generate_prefill"] = {"title", "genre", "mood"}``.
"""

from __future__ import annotations

import contextlib
import json

import streamlit as st
from streamlit.errors import StreamlitAPIException

from components import resources
from components.frame import in_frame
from components.session import current_user
from components.text import md_escape
from core.album import GENRES, MOODS, STYLES, clean_text, generate_title_set
from core.errors import StudioError

in_frame()

N_COVERS = 4
STATE = "album_state"

st.title("Album factory")
st.caption(
    "Type an album name and an artist: get cover candidates and a track list. Titles come from a small "
    "language model we trained on song titles, and never repeat a title from its training data."
)


def _cover_plan(style: str, genre: str | None, round_: int) -> list[tuple[str, int]]:
    """Four (style, seed) candidates: four styles for "auto", else four seeds of the chosen style."""
    if style != "auto":
        return [(style, round_ * N_COVERS + i) for i in range(N_COVERS)]
    start = round_ % len(STYLES)
    picks = [STYLES[(start + i) % len(STYLES)] for i in range(N_COVERS)]
    return [(s, round_ * N_COVERS + i) for i, s in enumerate(picks)]


def _make_titles(state: dict, *, seed: int, locked: dict[int, str] | None, reset_locks: bool = False) -> None:
    ts = generate_title_set(
        album=state["name"],
        artist=state["artist"],
        genre=state["genre"],
        mood=state["mood"],
        n=state["n"],
        seed=seed,
        locked=locked,
        model=resources.album_title_model(),
        assets=resources.album_title_assets(),
    )
    state["titles"] = ts.titles
    state["title_track"] = ts.title_track_index
    state["notes"] = ts.notes
    state["title_seed"] = seed
    if reset_locks:  # only before the lock checkboxes exist in this run
        for i in range(len(ts.titles)):
            st.session_state[f"album_lock_{i}"] = False


with st.form("album_form"):
    name_in = st.text_input("Album name", max_chars=80, placeholder="e.g. Neon Skyline", key="album_name")
    artist_in = st.text_input("Artist", max_chars=80, placeholder="your artist name", key="album_artist")
    c1, c2, c3, c4 = st.columns(4)
    genre_in = c1.selectbox("Genre", ["any", *GENRES], key="album_genre")
    mood_in = c2.selectbox("Mood", ["any", *MOODS], key="album_mood")
    style_in = c3.selectbox("Cover style", ["auto", *STYLES], key="album_style")
    n_in = c4.number_input("Tracks", min_value=8, max_value=16, value=12, step=1, key="album_n")
    submitted = st.form_submit_button("Make album", type="primary", icon=":material/album:")

if submitted:
    try:
        prev = st.session_state.get(STATE) or {}
        round_ = int(prev.get("round", -1)) + 1
        state = {
            "name": clean_text(name_in, field="album name"),
            "artist": clean_text(artist_in, field="artist", required=False),
            "genre": None if genre_in == "any" else genre_in,
            "mood": None if mood_in == "any" else mood_in,
            "style": style_in,
            "n": int(n_in),
            "round": round_,
            "pick": 0,
        }
        with st.spinner("Writing track titles…"):
            _make_titles(state, seed=round_, locked=None, reset_locks=True)
        st.session_state[STATE] = state
        st.session_state["album_pick"] = 0
    except StudioError as exc:
        st.error(str(exc))

state = st.session_state.get(STATE)
if not state:
    st.info("Fill in the album name and press **Make album**.")
    st.stop()

for note in state.get("notes", []):
    st.caption(md_escape(note))

# --- covers ----------------------------------------------------------------------------------------
st.subheader("Cover")
plan = _cover_plan(state["style"], state["genre"], state["round"])
covers = []
try:
    with st.spinner("Painting covers…"):
        for style, seed in plan:
            covers.append(
                resources.album_cover(
                    state["name"], state["artist"], state["genre"], state["mood"], style, seed
                )
            )
except StudioError as exc:
    st.error(str(exc))
    st.stop()
cols = st.columns(N_COVERS)
for i, (col, cov) in enumerate(zip(cols, covers, strict=True)):
    col.image(resources.cover_thumbnail(cov.png, 560), caption=f"{i + 1}: {cov.style}", width="stretch")
pick = st.radio(
    "Pick a cover",
    list(range(N_COVERS)),
    format_func=lambda i: f"{i + 1} ({covers[i].style})",
    horizontal=True,
    key="album_pick",
)
chosen = covers[pick]
for note in chosen.notes:
    if note not in state.get("notes", []):
        st.caption(md_escape(note))
st.caption(f"Text contrast {chosen.contrast_ratio:.1f}:1 (WCAG AA needs 4.5:1).")
st.download_button(
    "Download cover (PNG)",
    data=chosen.png,
    file_name="cover.png",
    mime="image/png",
    icon=":material/download:",
    key="album_dl_png",
)

# --- track list ------------------------------------------------------------------------------------
st.subheader("Track list")
titles: list[str] = state["titles"]
for i, title in enumerate(titles):
    c_lock, c_title, c_make = st.columns([1, 6, 2], vertical_alignment="center")
    c_lock.checkbox("Lock", key=f"album_lock_{i}", help="Keep this title when regenerating")
    marker = " — *title track*" if i == state.get("title_track") else ""
    c_title.markdown(f"**{i + 1}.** {md_escape(title)}{marker}")
    if c_make.button("Make a track", key=f"album_make_{i}", icon=":material/music_note:"):
        st.session_state["generate_prefill"] = {
            "title": title,
            "genre": state["genre"],
            "mood": state["mood"],
        }
        try:
            st.switch_page("pages/generate.py")
        except StreamlitAPIException:  # the Generate page is not registered in this app build
            st.info("The Generate page is not available here; the title is kept for it.")

if st.button("Regenerate unlocked titles", icon=":material/refresh:", key="album_regen"):
    locked = {i: t for i, t in enumerate(titles) if st.session_state.get(f"album_lock_{i}")}
    try:
        _make_titles(state, seed=int(state.get("title_seed", 0)) + 1000, locked=locked)
        st.session_state[STATE] = state
        st.rerun()
    except StudioError as exc:
        st.error(str(exc))

text_list = "\n".join(f"{i + 1}. {t}" for i, t in enumerate(titles)) + "\n"
d1, d2 = st.columns(2)
d1.download_button(
    "Download list (TXT)", text_list, file_name="tracklist.txt", mime="text/plain", key="album_dl_txt"
)
d2.download_button(
    "Download list (JSON)",
    json.dumps(
        {"album": state["name"], "artist": state["artist"], "titles": titles}, ensure_ascii=False, indent=2
    ),
    file_name="tracklist.json",
    mime="application/json",
    key="album_dl_json",
)

# --- save ------------------------------------------------------------------------------------------
st.subheader("Keep it")
user = current_user()
if user is None:
    st.info("Log in to save this album to your library or use the cover on your tracks.")
    with contextlib.suppress(StreamlitAPIException):  # outside the app's navigation (tests, embedding)
        st.page_link("pages/account.py", label="Log in / Sign up", icon=":material/login:")
    st.stop()

from sqlmodel import Session  # noqa: E402

from core.library import list_user_tracks, save_album, set_cover_for_user_tracks  # noqa: E402

if st.button("Save album to library", type="primary", icon=":material/save:", key="album_save"):
    try:
        with Session(resources.engine()) as session:
            album = save_album(
                session,
                resources.storage(),
                owner_id=user.id,
                name=state["name"],
                artist=state["artist"] or user.name or user.username,
                genre=state["genre"] or "",
                mood=state["mood"] or "",
                style=chosen.style,
                cover_png=chosen.png,
                titles=titles,
            )
            st.success(f"Saved “{md_escape(album.name)}” to your library.")
    except StudioError as exc:
        st.error(str(exc))

with Session(resources.engine()) as session:
    my_tracks = [(t.id, t.title) for t in list_user_tracks(session, owner_id=user.id)]
if my_tracks:
    labels = dict(my_tracks)
    chosen_tracks = st.multiselect(
        "Use this cover for my tracks",
        list(labels),
        format_func=lambda i: labels[i],
        key="album_cover_tracks",
    )
    if st.button("Use as cover", icon=":material/image:", key="album_use_cover", disabled=not chosen_tracks):
        try:
            with Session(resources.engine()) as session:
                count = set_cover_for_user_tracks(
                    session,
                    resources.storage(),
                    user_id=user.id,
                    track_ids=chosen_tracks,
                    cover_png=chosen.png,
                )
            st.success(f"Cover set on {count} track(s).")
        except StudioError as exc:
            st.error(str(exc))
else:
    st.caption("Upload or generate tracks to give them this cover.")
