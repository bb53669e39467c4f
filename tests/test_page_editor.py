"""AppTest of the editor page: a logged-in user opens a project made in code, changes a gain, undoes it,
exports MP3, saves and publishes."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from core.editor import ops as O
from tests.conftest import SR, click_track, make_user, sine

PAGE = "../pages/editor.py"
TIMEOUT = 90


def _saved_project(engine, storage, owner_id: int) -> int:
    from core.editor.project import StorageSources, from_audio_stems, save_project

    stems = {"drums": click_track(seconds=4.0), "keys": sine(440.0, 4.0, amp=0.2)}
    project = from_audio_stems(
        stems, sources=StorageSources(storage), title="Page demo", tempo_bpm=120.0, key="A minor"
    )
    with Session(engine) as session:
        return save_project(session, storage, owner_id=owner_id, project=project)


def _open(user_id: int, project_id: int | None = None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state["user_id"] = user_id
    if project_id is not None:
        at.session_state["editor_project_id"] = project_id
    at.run()
    assert not at.exception, at.exception
    return at


def test_guest_is_asked_to_log_in(db):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert any("Log in" in i.value for i in at.info)


def test_open_change_gain_undo_export_save_publish(db):
    from core.audio.io import decode
    from core.db.models import Project as ProjectRow
    from core.db.models import Track

    engine, storage = db
    user = make_user(engine)
    pid = _saved_project(engine, storage, user.id)
    at = _open(user.id, pid)
    assert [s.value for s in at.subheader] == ["Page demo"]
    assert at.session_state["editor_row_id"] == pid

    rev = at.session_state["editor_rev"]
    at.slider(key=f"ed_{rev}_keys_gain").set_value(-6.0).run()
    assert not at.exception, at.exception
    project = at.session_state["editor_project"]
    assert project.ops == (O.TrackGain(track="keys", db=-6.0),)
    assert "Volume keys -6.0 dB" in at.code[0].value

    at.button(key="ed_undo").click().run()
    assert not at.exception, at.exception
    assert at.session_state["editor_project"].ops == ()
    at.button(key="ed_redo").click().run()
    assert at.session_state["editor_project"].ops == (O.TrackGain(track="keys", db=-6.0),)

    at.selectbox(key="ed_export_kind").set_value("Mix (MP3)").run()
    at.button(key="ed_export_prepare").click().run()
    assert not at.exception, at.exception
    ready = at.session_state["editor_export"]
    assert ready["name"] == "Page demo.mp3" and ready["mime"] == "audio/mpeg"
    y = decode(ready["data"], filename="x.mp3")
    assert abs(y.shape[1] / SR - 4.0) < 0.1

    at.text_input(key="ed_title").set_value("Page demo v2")
    at.button(key="FormSubmitter:ed_save_form-Save project").click().run()
    assert not at.exception, at.exception
    assert any("Saved project" in s.value for s in at.success)
    at.button(key="FormSubmitter:ed_publish_form-Publish to feed").click().run()
    assert not at.exception, at.exception
    with Session(engine) as s:
        row = s.get(ProjectRow, pid)
        assert row.title == "Page demo v2"
        tracks = s.exec(select(Track)).all()
        assert [(t.source, t.owner_id) for t in tracks] == [("editor", user.id)]
        assert tracks[0].duration_s == pytest.approx(4.0, abs=0.05)


def test_other_users_project_is_not_opened_and_tracks_open_as_audio_projects(db):
    from tests.conftest import make_track

    engine, storage = db
    alice = make_user(engine, "alice")
    bob = make_user(engine, "bob")
    at = _open(bob.id, _saved_project(engine, storage, alice.id))
    assert any("not found" in e.value for e in at.error)
    assert "editor_project" not in at.session_state
    assert any("Open a saved project" in i.value for i in at.info)

    tid = make_track(engine, storage, bob.id, title="Bob song", seconds=3.0)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state["user_id"] = bob.id
    at.session_state["editor_track_id"] = tid
    at.run()
    assert not at.exception, at.exception
    project = at.session_state["editor_project"]
    assert [s.name for s in project.stems] == ["song"] and project.meta["tempo_bpm"] == 120.0
    assert any("· 1 track · 0 edits" in c.value for c in at.caption)
    rev = at.session_state["editor_rev"]
    at.toggle(key=f"ed_{rev}_song_mute").set_value(True).run()
    assert at.session_state["editor_project"].ops == (O.Mute(track="song", on=True),)
    assert any("· 1 track · 1 edit" in c.value for c in at.caption)
