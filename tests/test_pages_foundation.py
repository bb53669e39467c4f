"""AppTest tests of the foundation screens: feed, share, upload, library, account, app router."""

from __future__ import annotations

import pytest
from sqlmodel import Session, func, select
from streamlit.testing.v1 import AppTest

from tests.conftest import cookie_parts, make_track, make_user, page_texts, sine

APP = "../app.py"
TIMEOUT = 60


def _app(page: str | None = None, *, user_id: int | None = None, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if user_id is not None:
        at.session_state["user_id"] = user_id
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    assert not at.exception, at.exception
    return at


def _count(engine, model) -> int:
    with Session(engine) as s:
        return s.exec(select(func.count()).select_from(model)).one()


def test_guest_sees_empty_feed(db):
    at = _app()
    assert "BeatTok" in [t.value for t in at.title]
    assert "Nothing here yet" in page_texts(at)
    assert "guest" in page_texts(at)


def test_first_page_after_a_start_skips_streamlits_repl_check(db, monkeypatch):
    # the check walks the script thread's stack with inspect.stack(): 170 ms of the first page
    from streamlit import delta_generator, env_util

    calls = []
    monkeypatch.setattr(delta_generator, "_use_warning_has_been_displayed", False)  # a new process
    monkeypatch.setattr(env_util, "is_repl", lambda: calls.append(1) or False)
    at = _app()
    assert "BeatTok" in [t.value for t in at.title]
    assert calls == []


def test_every_app_run_asks_for_a_garbage_collection_after_the_page(db):
    import time

    from components import resources

    before = resources.garbage_collector().collections
    _app()
    deadline = time.monotonic() + 10
    while resources.garbage_collector().collections == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert resources.garbage_collector().collections > before


def test_feed_lists_public_tracks_only_and_loads_more(db):
    engine, storage = db
    alice = make_user(engine)
    for i in range(12):
        make_track(engine, storage, alice.id, title=f"Public {i:02d}")
    make_track(engine, storage, alice.id, title="Secret demo", visibility="private")
    make_track(engine, storage, alice.id, title="Link only", visibility="unlisted")
    at = _app()
    text = page_texts(at)
    assert "Public 11" in text and "Public 07" in text  # newest first, a first batch of 5
    assert "Public 06" not in text
    assert "Secret demo" not in text and "Link only" not in text
    more = at.button(key="feed_more")
    assert "7 more" in more.label
    more.click().run()
    text = page_texts(at)
    assert "Public 00" in text and "Public 01" in text
    assert not any(b.key == "feed_more" for b in at.button)


def test_feed_loads_batch_after_batch_without_repeats(db):
    import re

    engine, storage = db
    alice = make_user(engine)
    for i in range(27):
        make_track(engine, storage, alice.id, title=f"Song {i:02d}")
    at = _app()
    for shown in (5, 15, 25):  # 5 first, then 10 at a time
        titles = re.findall(r"Song \d\d", page_texts(at))
        assert titles == [f"Song {i:02d}" for i in range(26, 26 - shown, -1)], titles
        more = at.button(key="feed_more")
        assert f"({27 - shown} more)" in more.label
        more.click().run()
        assert not at.exception, at.exception
    titles = re.findall(r"Song \d\d", page_texts(at))
    assert titles == [f"Song {i:02d}" for i in range(26, -1, -1)]  # all 27, newest first, none twice
    assert not any(b.key == "feed_more" for b in at.button) and "You reached the end" in page_texts(at)


def test_feed_batches_continue_past_the_first_ranked_chunk(db):
    from core.db import repo

    engine, _ = db
    alice = make_user(engine)
    with Session(engine) as s:
        repo.seed_fake_tracks(s, n=140, owner_id=alice.id, seed=3)
        expected = repo.feed_ids(s, limit=200)
        total = repo.count_feed(s)
    assert 100 < total < 140  # more public tracks than one ranking query (100 ids) returns
    at = _app()
    at.session_state["feed_batches"] = (total - 5) // 10 + 2  # as if "Load more" was pressed to the end
    at.run()
    assert not at.exception, at.exception
    shown = [int(b.key.split("_")[1]) for b in at.button if b.key and b.key.endswith("_like")]
    assert shown == expected
    assert "You reached the end" in page_texts(at)


def test_feed_filters_by_genre_and_search(db):
    engine, storage = db
    alice = make_user(engine)
    make_track(engine, storage, alice.id, title="Rock anthem", genre="rock")
    make_track(engine, storage, alice.id, title="Pop hit", genre="pop")
    at = _app()
    at.selectbox(key="feed_genre").select("rock").run()
    text = page_texts(at)
    assert "Rock anthem" in text and "Pop hit" not in text
    at.selectbox(key="feed_genre").select("All").run()
    at.text_input(key="feed_query").input("pop").run()
    text = page_texts(at)
    assert "Pop hit" in text and "Rock anthem" not in text


def test_html_in_titles_is_shown_as_text(db):
    engine, storage = db
    alice = make_user(engine)
    make_track(engine, storage, alice.id, title="<script>alert(1)</script>")
    at = _app()
    md = [m.value for m in at.markdown if "script" in m.value]
    assert md and all("<script>" not in m for m in md)  # escaped, never raw HTML


def test_like_needs_login_and_counts_once(db):
    engine, storage = db
    from core.db.models import Like

    alice = make_user(engine)
    tid = make_track(engine, storage, alice.id, title="Likeable")
    at = _app()
    at.button(key=f"feed_{tid}_like").click().run()
    assert _count(engine, Like) == 0
    bob = make_user(engine, "bob")
    at = _app(user_id=bob.id)
    at.button(key=f"feed_{tid}_like").click().run()
    assert not at.exception
    assert _count(engine, Like) == 1
    assert "♥ 1" in at.button(key=f"feed_{tid}_like").label
    at.button(key=f"feed_{tid}_like").click().run()  # unlike
    assert _count(engine, Like) == 0


def test_play_button_reveals_player_and_counts_a_play(db):
    engine, storage = db
    from core.config import get_settings
    from core.db.models import Track
    from core.library import PLAYBACK_LUFS

    alice = make_user(engine)
    tid = make_track(engine, storage, alice.id, title="Playable")
    with Session(engine) as s:
        assert s.get(Track, tid).loudness_lufs > PLAYBACK_LUFS + 1  # a loud tone: it plays turned down
    at = _app()
    assert len(at.get("audio")) == 0  # nothing is sent until asked for
    at.button(key=f"feed_{tid}_play").click().run()
    assert not at.exception
    assert len(at.get("audio")) == 1
    with Session(engine) as s:
        assert s.get(Track, tid).play_count == 1
    # the turned-down MP3 was made once, into the shared playback cache
    assert len(list((get_settings().data_dir / "cache" / "playback").glob("*.mp3"))) == 1


@pytest.mark.parametrize("visibility", ["public", "unlisted"])
def test_share_link_opens_visible_tracks_for_guests(db, visibility):
    engine, storage = db
    from core.db.models import Track

    alice = make_user(engine)
    tid = make_track(engine, storage, alice.id, title="Shared song", visibility=visibility)
    with Session(engine) as s:
        token = s.get(Track, tid).share_token
    at = _app(query={"t": token})
    assert "Shared song" in page_texts(at)
    assert "Track not found" not in page_texts(at)


@pytest.mark.parametrize("case", ["private", "unknown", "deleted"])
def test_share_link_hides_private_unknown_and_deleted(db, case):
    engine, storage = db
    from core.db.models import Track
    from core.library import delete_track

    alice = make_user(engine)
    tid = make_track(
        engine,
        storage,
        alice.id,
        title="Hidden song",
        visibility="private" if case == "private" else "public",
    )
    with Session(engine) as s:
        token = s.get(Track, tid).share_token
    if case == "unknown":
        token = "no-such-token"
    if case == "deleted":
        with Session(engine) as s:
            delete_track(s, storage, track_id=tid, user_id=alice.id)
    at = _app(query={"t": token})
    text = page_texts(at)
    assert "Track not found" in text and "Hidden song" not in text


@pytest.mark.parametrize("page", ["pages/upload.py", "pages/library.py"])
def test_studio_pages_ask_guests_to_log_in(db, page):
    at = _app(page)
    assert "Log in or sign up" in page_texts(at)


def test_upload_page_offers_upload_and_record(db):
    engine, _ = db
    alice = make_user(engine)
    at = _app("pages/upload.py", user_id=alice.id)
    assert len(at.get("file_uploader")) == 1
    assert len(at.get("audio_input")) == 1


def test_sign_up_log_out_and_log_in(db):
    engine, _ = db
    from core.db.models import User

    at = _app("pages/account.py")
    at.text_input(key="signup_name").input("Carol")
    at.text_input(key="signup_username").input("Carol")
    at.text_input(key="signup_email").input("carol@example.com")
    at.text_input(key="signup_pw1").input("a good password")
    at.text_input(key="signup_pw2").input("a good password")
    at.button[[b.label for b in at.button].index("Create account")].click().run()
    assert not at.exception
    assert _count(engine, User) == 1
    assert at.session_state["user_id"]
    assert "Welcome, Carol! You are logged in." in page_texts(at)
    # the remember-me cookie is written by a script in the page (no component, no extra rerun)
    from components import resources
    from components.session import decode_cookie_username

    token = _cookie_written(at)
    assert decode_cookie_username(token, key=resources.cookie_key()) == at.session_state["username"]
    at.run()  # drawn again on the next runs (a run cut short may not have reached the browser)
    assert _cookie_written(at) == token
    at.button[[b.label for b in at.button].index("Log out")].click().run()
    assert not at.exception
    assert "user_id" not in at.session_state
    assert _cookie_written(at) == ""  # deleted
    # duplicate (case-insensitive) is refused and stores nothing
    at2 = _app("pages/account.py")
    at2.text_input(key="signup_name").input("Other")
    at2.text_input(key="signup_username").input("CAROL")
    at2.text_input(key="signup_email").input("other@example.com")
    at2.text_input(key="signup_pw1").input("another password")
    at2.text_input(key="signup_pw2").input("another password")
    at2.button[[b.label for b in at2.button].index("Create account")].click().run()
    assert "already registered" in page_texts(at2)
    assert _count(engine, User) == 1
    # wrong password: generic message; right password: logged in
    at3 = _app("pages/account.py")
    at3.text_input(key="login_username").input("carol")
    at3.text_input(key="login_password").input("wrong password")
    at3.button[[b.label for b in at3.button].index("Log in")].click().run()
    assert "Wrong username or password" in page_texts(at3)
    assert not at3.session_state["user_id"] if "user_id" in at3.session_state else True
    at3.text_input(key="login_password").input("a good password")
    at3.button[[b.label for b in at3.button].index("Log in")].click().run()
    assert at3.session_state["user_id"]


def _cookie_written(at) -> str | None:
    """The remember-me cookie value the page's cookie script writes ("" deletes it), or None."""
    from components.session import COOKIE_NAME

    for el in at.get("html"):
        if parts := cookie_parts(el.proto.body):
            return parts[0].removeprefix(f"{COOKIE_NAME}=")
    return None


def test_library_edit_publish_and_delete(db):
    engine, storage = db
    from core.db.models import Track

    alice = make_user(engine)
    tid = make_track(engine, storage, alice.id, title="Draft", visibility="private")
    with Session(engine) as s:
        audio_key = s.get(Track, tid).audio_key
    assert storage.exists(audio_key)
    at = _app("pages/library.py", user_id=alice.id)
    assert "Draft" in page_texts(at)
    form_title = next(t for t in at.text_input if t.value == "Draft")
    form_title.input("Final mix")
    vis = next(s for s in at.selectbox if s.value == "private")
    vis.select("public")
    genre = next(s for s in at.selectbox if s.label == "Genre")
    assert genre.value == "pop" and genre.options[0] == "No genre"  # the empty choice reads as one
    at.button[[b.label for b in at.button].index("Save changes")].click().run()
    assert not at.exception
    with Session(engine) as s:
        row = s.get(Track, tid)
        assert row.title == "Final mix" and str(getattr(row.visibility, "value", row.visibility)) == "public"
    assert at.button(key=f"delete_{tid}").disabled  # no delete without the confirmation box
    at.checkbox(key=f"confirm_{tid}").check().run()
    at.button(key=f"delete_{tid}").click().run()
    assert _count(engine, Track) == 0
    assert not storage.exists(audio_key)


def test_other_users_cannot_see_private_tracks_in_library(db):
    engine, storage = db
    alice, bob = make_user(engine), make_user(engine, "bob")
    make_track(engine, storage, alice.id, title="Alice private", visibility="private")
    at = _app("pages/library.py", user_id=bob.id)
    assert "Alice private" not in page_texts(at)


def test_account_change_password_and_delete(db):
    engine, storage = db
    from core.db.models import Track, User

    alice = make_user(engine)
    make_track(engine, storage, alice.id, title="Mine")
    at = _app("pages/account.py", user_id=alice.id)
    assert "Your account" in page_texts(at)

    def expander(label: str):
        return next(e for e in at.expander if e.label == label)

    def change(old: str) -> None:
        next(t for t in at.text_input if t.label == "Current password").input(old)
        next(t for t in at.text_input if t.label == "New password").input("new password 2")
        next(t for t in at.text_input if t.label == "Repeat new password").input("new password 2")
        at.button[[b.label for b in at.button].index("Change password")].click().run()
        assert not at.exception, at.exception

    # an error is shown in its form, and the expander is open for it (it may have been redrawn closed)
    assert not expander("Change password").proto.expanded
    change("not my password")
    assert expander("Change password").proto.expanded
    assert [e.value for e in expander("Change password").error] and not at.success
    # success is shown above the expanders, where it cannot be folded away
    change("correct horse 1")
    assert [s.value for s in at.main.success] == ["Password changed."]
    assert not expander("Change password").success and not expander("Change password").proto.expanded
    next(c for c in at.checkbox if "delete everything" in c.label).check()
    at.button[[b.label for b in at.button].index("Delete my account")].click().run()
    assert expander("Delete account").proto.expanded and [e.value for e in expander("Delete account").error]
    at.text_input(key="delete_pw").input("new password 2")
    next(c for c in at.checkbox if "delete everything" in c.label).check()
    at.button[[b.label for b in at.button].index("Delete my account")].click().run()
    assert "was deleted" in page_texts(at)
    assert _count(engine, User) == 0 and _count(engine, Track) == 0


def test_library_opens_a_track_in_the_editor(db):
    engine, storage = db
    alice = make_user(engine)
    tid = make_track(engine, storage, alice.id, title="Edit me", seconds=2.0)
    at = _app("pages/library.py", user_id=alice.id)
    assert "Projects (0)" in [t.label for t in at.tabs]
    at.button(key=f"edit_in_editor_{tid}").click().run()
    assert not at.exception, at.exception
    assert "Edit me" in page_texts(at) + "".join(t.value for t in at.text_input)


def test_library_deletes_a_project_and_an_album(db):
    from core.covers_placeholder import placeholder_cover
    from core.db.models import Album, Project
    from core.editor import ops as O
    from core.editor.project import StorageSources, from_audio_stems, save_project
    from core.library import save_album

    engine, storage = db
    alice, bob = make_user(engine), make_user(engine, "bob")
    with Session(engine) as s:
        song = from_audio_stems({"a": sine(seconds=0.5)}, sources=StorageSources(storage), title="Sketch")
        pid = save_project(s, storage, owner_id=alice.id, project=song)
        v2 = save_project(s, storage, owner_id=alice.id, project=song.apply(O.TrackGain(track="a", db=-3.0)))
        bobs = save_project(s, storage, owner_id=bob.id, project=song)
        album = save_album(
            s, storage, owner_id=alice.id, name="Night LP", artist="Alice", titles=["One"],
            cover_png=placeholder_cover(title="Night LP", artist="Alice", size=64),
        )  # fmt: skip
        album_id, cover_key = album.id, album.cover_key
    at = _app("pages/library.py", user_id=alice.id)
    at.session_state["editor_project"], at.session_state["editor_row_id"] = song, pid  # open in the editor
    assert "Projects (2)" in [t.label for t in at.tabs] and "Albums (1)" in [t.label for t in at.tabs]
    at.button(key=f"delete_project_{pid}").click().run()
    assert not at.exception, at.exception
    assert "Projects (1)" in [t.label for t in at.tabs]
    with Session(engine) as s:
        assert s.get(Project, pid) is None and s.get(Project, v2) is not None
        assert s.get(Project, bobs) is not None
    assert storage.exists(song.stems[0].audio)  # the other version uses the same stem file
    assert "editor_project" not in at.session_state and "editor_row_id" not in at.session_state
    at.button(key=f"delete_album_{album_id}").click().run()
    assert not at.exception, at.exception
    assert "Albums (0)" in [t.label for t in at.tabs]
    assert _count(engine, Album) == 0 and not storage.exists(cover_key)


def test_library_shows_albums_whose_cover_file_is_damaged_without_it(db):
    from core.covers_placeholder import placeholder_cover
    from core.library import save_album

    engine, storage = db
    alice = make_user(engine)
    keys = []
    with Session(engine) as s:
        for name in ("Good LP", "Broken LP"):
            album = save_album(
                s, storage, owner_id=alice.id, name=name, artist="Alice", titles=["One"],
                cover_png=placeholder_cover(title=name, artist="Alice", size=64),
            )  # fmt: skip
            keys.append(album.cover_key)
    storage.open_path(keys[1]).write_bytes(b"damaged")
    at = _app("pages/library.py", user_id=alice.id)
    assert not at.exception, at.exception
    assert "Albums (2)" in [t.label for t in at.tabs]
    assert len(at.get("image")) == 1 and page_texts(at).count("Cover missing") == 1


def test_library_says_when_it_shows_only_the_newest_projects(db, monkeypatch):
    from core.editor import project as P

    engine, storage = db
    alice = make_user(engine)
    with Session(engine) as s:
        song = P.from_audio_stems({"a": sine(seconds=0.2)}, sources=P.StorageSources(storage), title="Take")
        for _ in range(3):
            P.save_project(s, storage, owner_id=alice.id, project=song)
    real = P.list_projects
    monkeypatch.setattr(
        P, "list_projects", lambda session, *, owner_id: real(session, owner_id=owner_id, limit=2)
    )
    at = _app("pages/library.py", user_id=alice.id)
    assert not at.exception, at.exception
    assert "Projects (3)" in [t.label for t in at.tabs]
    assert "The 2 most recently saved of your 3 projects." in page_texts(at)
