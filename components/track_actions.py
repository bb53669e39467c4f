"""Save-to-library / publish form used by every screen that produces audio."""

from __future__ import annotations

import contextlib

import numpy as np
import streamlit as st
from sqlmodel import Session

from components import resources
from components.session import current_user
from components.text import md_escape
from core.errors import StudioError

VISIBILITY_LABELS = {
    "private": "Private (only me)",
    "unlisted": "Unlisted (anyone with the link)",
    "public": "Public (in the BeatTok feed)",
}
GENRES = ["", "pop", "k-pop", "hip-hop", "rock", "edm", "funk", "r&b", "lo-fi", "jazz", "latin", "other"]


def genre_label(genre: str) -> str:
    """How a genre choice reads in a select box: the empty choice is "No genre" (not a blank box that
    looks like a required field)."""
    return genre or "No genre"


def parse_tags(text: str) -> list[str]:
    """Split a comma-separated tag field into clean tags."""
    return [t.strip().lstrip("#") for t in (text or "").split(",") if t.strip().lstrip("#")]


def save_track_form(
    y: np.ndarray,
    *,
    sr: int,
    key: str,
    defaults: dict | None = None,
    original: bytes | None = None,
    original_ext: str | None = None,
) -> int | None:
    """Show a title/genre/tags/visibility form; on submit save the audio to the user's library.

    Returns the new track id on the run the form was submitted successfully, else None.
    The ``defaults`` dict may hold ``title``, ``genre``, ``tags``, ``visibility``, ``source``,
    ``bpm``, ``key``, ``cover_png``.
    """
    d = dict(defaults or {})
    user = current_user()
    if user is None:
        st.info("Log in to save this to your library.")
        return None
    with st.form(f"{key}_save_form"):
        title = st.text_input("Title", value=d.get("title", ""), max_chars=120)
        c1, c2 = st.columns(2)
        genre_default = d.get("genre", "")
        genre = c1.selectbox(
            "Genre",
            GENRES,
            index=GENRES.index(genre_default) if genre_default in GENRES else 0,
            format_func=genre_label,
        )
        visibility = c2.selectbox(
            "Visibility",
            list(VISIBILITY_LABELS),
            index=list(VISIBILITY_LABELS).index(d.get("visibility", "private")),
            format_func=VISIBILITY_LABELS.get,
        )
        tags = st.text_input("Tags (comma separated)", value=", ".join(d.get("tags", [])))
        submitted = st.form_submit_button("Save to library", type="primary")
    if not submitted:
        return None
    from core.library import publish_audio

    try:
        with st.spinner("Saving..."), Session(resources.engine()) as session:
            track = publish_audio(
                session,
                resources.storage(),
                owner_id=user.id,
                y=y,
                sr=sr,
                title=title,
                artist_name=user.name,
                genre=genre,
                tags=parse_tags(tags),
                visibility=visibility,
                source=d.get("source", "upload"),
                original=original,
                original_ext=original_ext,
                bpm=d.get("bpm"),
                key=d.get("key"),
                cover_png=d.get("cover_png"),
                beats=d.get("beats"),
            )
            track_id = track.id
    except StudioError as exc:
        st.error(str(exc))
        return None
    st.success(f"Saved “{md_escape(title.strip())}” to your library.")
    from streamlit.errors import StreamlitAPIException

    # a page run on its own (tests, `streamlit run pages/x.py`) has no library page to link
    with contextlib.suppress(StreamlitAPIException):
        st.page_link("pages/library.py", label="Open my library", icon=":material/library_music:")
    return track_id
