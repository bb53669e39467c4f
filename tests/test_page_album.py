"""AppTest tests of the album factory page: guest generation, lock + regenerate, save, cover for tracks."""

from __future__ import annotations

import json

from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from tests.conftest import make_track, make_user, page_texts

PAGE = "../pages/album.py"
TIMEOUT = 120


def _make(at: AppTest, name: str = "Neon Skyline", artist: str = "Mira Vale", genre: str = "edm") -> AppTest:
    at.text_input(key="album_name").input(name)
    at.text_input(key="album_artist").input(artist)
    at.selectbox(key="album_genre").select(genre)
    next(b for b in at.button if b.label == "Make album").click().run()
    assert not at.exception, at.exception
    return at


def _page(user_id: int | None = None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    if user_id is not None:
        at.session_state["user_id"] = user_id
    at.run()
    assert not at.exception, at.exception
    return at


def test_guest_generates_covers_and_titles_but_cannot_save(db):
    at = _page()
    assert "press **Make album**" in page_texts(at)
    _make(at)
    state = at.session_state["album_state"]
    titles = state["titles"]
    assert len(titles) == 12 and "Neon Skyline" in titles
    text = page_texts(at)
    for t in titles[:3]:
        assert t.split()[0] in text
    assert len(at.get("image")) == 4  # the gallery of cover candidates
    assert "Text contrast" in text
    assert "Log in to save" in text
    assert not any(b.key == "album_save" for b in at.button)


def test_lock_and_regenerate_keeps_locked_titles(db):
    at = _make(_page())
    before = list(at.session_state["album_state"]["titles"])
    at.checkbox(key="album_lock_2").check()
    at.checkbox(key="album_lock_7").check()
    at.button(key="album_regen").click().run()
    assert not at.exception, at.exception
    after = at.session_state["album_state"]["titles"]
    assert after[2] == before[2] and after[7] == before[7]
    assert len(set(after) - set(before)) >= 4  # the unlocked ones changed
    assert at.checkbox(key="album_lock_2").value is True


def test_bad_inputs_show_errors_not_crashes(db):
    at = _page()
    _make(at, name="   ")
    assert "empty" in page_texts(at)
    _make(at, name="<script>alert(1)</script>", genre="any")
    assert at.session_state["album_state"]["name"] == "alert(1)"
    _make(at, name="東京の夜")
    assert "Latin" in page_texts(at)


def test_logged_in_user_saves_album_and_sets_track_covers(db):
    engine, storage = db
    user = make_user(engine)
    track_id = make_track(engine, storage, user.id, title="Demo one")
    at = _make(_page(user.id))
    titles = list(at.session_state["album_state"]["titles"])
    at.button(key="album_save").click().run()
    assert not at.exception, at.exception
    assert "Saved" in page_texts(at)
    from core.db.models import Album, Track

    with Session(engine) as s:
        albums = s.exec(select(Album).where(Album.owner_id == user.id)).all()
        assert len(albums) == 1
        assert albums[0].name == "Neon Skyline" and json.loads(albums[0].titles_json) == titles
        assert albums[0].cover_key and storage.get(albums[0].cover_key)[:8] == b"\x89PNG\r\n\x1a\n"
    at.multiselect(key="album_cover_tracks").select(track_id).run()
    at.button(key="album_use_cover").click().run()
    assert not at.exception, at.exception
    assert "Cover set on 1 track" in page_texts(at)
    with Session(engine) as s:
        t = s.get(Track, track_id)
        assert t.cover_key and storage.get(t.cover_key)[:8] == b"\x89PNG\r\n\x1a\n"


def test_make_a_track_sets_the_generate_prefill(db):
    at = _make(_page())
    title = at.session_state["album_state"]["titles"][4]
    at.button(key="album_make_4").click().run()
    prefill = at.session_state["generate_prefill"]
    assert prefill == {"title": title, "genre": "edm", "mood": None}


def test_album_page_inside_the_app_opens_generate_with_prefill(db):
    at = AppTest.from_file("../app.py", default_timeout=TIMEOUT)
    at.run()
    at.switch_page("pages/album.py")
    at.run()
    assert not at.exception, at.exception
    assert "Album factory" in [t.value for t in at.title]
    _make(at, genre="rock")
    title = at.session_state["album_state"]["titles"][1]
    at.button(key="album_make_1").click().run()
    assert at.session_state["generate_prefill"] == {"title": title, "genre": "rock", "mood": None}
    assert "Album factory" not in [t.value for t in at.title]  # we are on the Generate page now
