"""My library: tracks (edit, publish, share, delete), saved editor projects and albums (open, delete)."""

from __future__ import annotations

import streamlit as st
from sqlmodel import Session

from components import resources
from components.frame import in_frame
from components.session import require_user
from components.text import md_escape
from components.track_actions import GENRES, VISIBILITY_LABELS, genre_label, parse_tags
from components.track_card import CardData, card_fragment, card_list, share_url
from core.errors import StudioError

in_frame()

st.title("My library")
user = require_user("see your library")

from core.editor.project import count_projects, delete_project, list_projects  # noqa: E402
from core.library import (  # noqa: E402
    delete_album,
    delete_track,
    list_albums,
    list_user_tracks,
    rotate_share_token,
    update_track,
)

with Session(resources.engine()) as session:
    cards = [CardData.of(t) for t in list_user_tracks(session, owner_id=user.id)]
    albums = list_albums(session, owner_id=user.id)
    album_rows = [(a.id, a.name, a.artist, a.cover_key, a.titles_json) for a in albums]
    projects = [(p.id, p.title, p.updated_at) for p in list_projects(session, owner_id=user.id)]
    project_count = count_projects(session, owner_id=user.id)


def _delete(fn, done: str, **ids: int) -> bool:
    """Run one of core's owner-only deletes; a refusal is shown as a toast (the rerun clears the page)."""
    try:
        with Session(resources.engine()) as session:
            fn(session, resources.storage(), **ids)
    except StudioError as exc:
        st.toast(str(exc), icon=":material/error:")
        return False
    st.toast(done)
    return True


def _open_in_editor(**target: int) -> None:
    st.session_state.update(target)
    st.switch_page("pages/editor.py")


tab_tracks, tab_projects, tab_albums = st.tabs(
    [f"Tracks ({len(cards)})", f"Projects ({project_count})", f"Albums ({len(album_rows)})"]
)

with tab_tracks:
    if not cards:
        st.info("No tracks yet.")
        st.page_link("pages/upload.py", label="Upload or record your first track", icon=":material/upload:")
    with card_list():
        for card in cards:
            card_fragment(card, liked=False, key=f"lib_{card.id}")
            with st.expander(f"Edit “{card.title}”", icon=":material/edit:"):
                with st.form(f"edit_{card.id}"):
                    title = st.text_input("Title", value=card.title, max_chars=120)
                    c1, c2 = st.columns(2)
                    genre = c1.selectbox(
                        "Genre",
                        GENRES,
                        index=GENRES.index(card.genre) if card.genre in GENRES else 0,
                        format_func=genre_label,
                    )
                    vis = c2.selectbox(
                        "Visibility",
                        list(VISIBILITY_LABELS),
                        index=list(VISIBILITY_LABELS).index(card.visibility),
                        format_func=VISIBILITY_LABELS.get,
                    )
                    tags = st.text_input("Tags", value=", ".join(card.tags))
                    if st.form_submit_button("Save changes", type="primary"):
                        try:
                            with Session(resources.engine()) as session:
                                update_track(
                                    session,
                                    track_id=card.id,
                                    user_id=user.id,
                                    title=title,
                                    genre=genre,
                                    tags=parse_tags(tags),
                                    visibility=vis,
                                )
                            st.toast("Saved.")
                            st.rerun()
                        except StudioError as exc:
                            st.error(str(exc))
                c1, c2 = st.columns(2)
                if card.visibility != "private":
                    c1.caption("Share link")
                    c1.code(share_url(card.share_token), language=None)
                if c1.button("New share link (old one stops working)", key=f"rotate_{card.id}"):
                    with Session(resources.engine()) as session:
                        rotate_share_token(session, track_id=card.id, user_id=user.id)
                    st.rerun()
                if c2.button("Open in editor", key=f"edit_in_editor_{card.id}", icon=":material/tune:"):
                    _open_in_editor(editor_track_id=card.id)
                confirm = c2.checkbox("Yes, delete this track forever", key=f"confirm_{card.id}")
                if c2.button("Delete track", key=f"delete_{card.id}", disabled=not confirm, type="secondary"):
                    _delete(delete_track, "Track deleted.", track_id=card.id, user_id=user.id)
                    st.rerun()

with tab_projects:
    if not projects:
        st.info("No saved projects yet: generate a song or open a track in the editor and save it.")
    elif project_count > len(projects):
        st.caption(f"The {len(projects)} most recently saved of your {project_count} projects.")
    for pid, title, updated in projects:
        c1, c2, c3 = st.columns([4, 1, 1], vertical_alignment="center")
        c1.markdown(f"**{md_escape(title)}**  \n:gray[saved {updated:%Y-%m-%d %H:%M} UTC]")
        if c2.button("Open", key=f"open_project_{pid}", icon=":material/tune:"):
            _open_in_editor(editor_project_id=pid)
        with c3.popover("Delete", icon=":material/delete:"):
            st.write("Delete this project and the audio only it uses? Your tracks stay.")
            if st.button("Delete project", key=f"delete_project_{pid}", type="primary"):
                deleted = _delete(delete_project, "Project deleted.", project_id=pid, owner_id=user.id)
                if deleted and st.session_state.get("editor_row_id") == pid:  # open in the editor: close it
                    for k in ("editor_project", "editor_row_id", "editor_export"):
                        st.session_state.pop(k, None)
                st.rerun()

with tab_albums:
    import json

    if not album_rows:
        st.info("No albums yet.")
        if st.button("Open the Album factory"):
            st.switch_page("pages/album.py")
    for album_id, name, artist, cover_key, titles_json in album_rows:
        with st.container(border=True):
            c1, c2 = st.columns([1, 3])
            if cover_key:
                try:
                    c1.image(resources.stored_cover_thumbnail(cover_key), width="stretch")
                except StudioError:  # a lost or damaged cover file: the album shows without it
                    c1.caption("Cover missing")
            c2.markdown(f"#### {md_escape(name)}")
            c2.caption(f"by {artist}")
            for i, t in enumerate(json.loads(titles_json or "[]"), 1):
                c2.text(f"{i:2d}. {t}")
            with c1.popover("Delete", icon=":material/delete:"):
                st.write("Delete this album and its cover? Its tracks stay.")
                if st.button("Delete album", key=f"delete_album_{album_id}", type="primary"):
                    _delete(delete_album, "Album deleted.", album_id=album_id, user_id=user.id)
                    st.rerun()
