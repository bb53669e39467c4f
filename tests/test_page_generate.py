"""AppTest of the Generate page (pages/generate.py)."""

from __future__ import annotations

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.conftest import make_user, page_texts

PAGE = "../pages/generate.py"
TIMEOUT = 120


@pytest.fixture
def models(monkeypatch):
    """The committed checkpoints; while they are missing, the test doubles of tests/test_generate.py."""
    from tests.test_generate import FAKE, _have_checkpoints

    st.cache_resource.clear()
    st.cache_data.clear()
    if not _have_checkpoints():
        monkeypatch.setattr("core.music.arrange.load_samplers", lambda: FAKE)
    yield
    st.cache_resource.clear()
    st.cache_data.clear()


def test_guest_sees_the_page_but_must_log_in(db):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    text = page_texts(at)
    assert "Generate a song" in text and "Log in or sign up to generate songs" in text
    assert not at.get("form")  # no generator for guests


def _generate(at: AppTest, *, seconds=5, seed=2, genre="edm", key="A minor"):
    at.selectbox(key="gen_genre").set_value(genre)
    at.selectbox(key="gen_mood").set_value("energetic")
    at.selectbox(key="gen_key").set_value(key)
    at.checkbox(key="gen_auto_tempo").set_value(False)
    at.slider(key="gen_tempo").set_value(124)
    at.multiselect(key="gen_instruments").set_value(["drums", "bass", "pad", "lead"])
    at.slider(key="gen_seconds").set_value(seconds)
    at.number_input(key="gen_seed").set_value(seed)
    at.button(key="FormSubmitter:gen_form-Generate").click()
    at.run()


def test_logged_in_user_generates_and_gets_players_piano_roll_downloads_and_actions(db, models):
    engine, _ = db
    user = make_user(engine)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state["user_id"] = user.id
    at.run()
    assert not at.exception, at.exception
    _generate(at)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert "edm · energetic · A minor · 124 bpm · 5 s" in page_texts(at)
    assert len(at.get("audio")) == 2  # the mix and one stem
    assert [o for o in at.radio(key="gen_stem").options] == ["drums", "bass", "pad", "lead"]
    assert len(at.get("plotly_chart")) == 1
    labels = [b.label for b in at.get("download_button")]
    assert {"Download WAV", "Download MP3", "Download MIDI"} <= set(labels)
    assert any(b.label == "Save to library" for b in at.button)
    # another stem plays on its own
    at.radio(key="gen_stem").set_value("lead")
    at.run()
    assert not at.exception, at.exception
    assert len(at.get("audio")) == 2
    # open in editor stores a project with the stems (the editor page is not part of this AppTest run)
    at.button(key="gen_open_editor").click()
    at.run()
    assert not at.exception, at.exception
    pid = at.session_state["editor_project_id"]
    from sqlmodel import Session

    from core.db.models import Project

    with Session(engine) as s:
        row = s.get(Project, pid)
        assert row is not None and row.owner_id == user.id
    assert any(f"project #{pid}" in m.value for m in at.success)


def test_invalid_request_shows_an_error_not_an_exception(db, models):
    engine, _ = db
    user = make_user(engine)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state["user_id"] = user.id
    at.run()
    # a request the form cannot produce (e.g. a stale session) is still validated by core
    at.session_state["gen_request"] = {
        "genre": "pop", "mood": "happy", "tempo": 500.0, "key": None, "instruments": ("drums",),
        "seconds": 5.0, "seed": 0,
    }  # fmt: skip
    at.run()
    assert not at.exception, at.exception
    assert any("40-240" in e.value for e in at.error)
    assert not at.get("audio")


def test_album_factory_prefill_sets_genre_mood_and_title(db):
    """ "Make a track for this title" in the Album factory opens Generate prefilled."""
    from streamlit.testing.v1 import AppTest

    from tests.conftest import make_user

    engine, _ = db
    user = make_user(engine, "prefill")
    at = AppTest.from_file("../pages/generate.py", default_timeout=120)
    at.session_state["user_id"] = user.id
    at.session_state["generate_prefill"] = {"title": "Neon Rain", "genre": "rap", "mood": "dark"}
    at.run()
    assert not at.exception
    assert at.selectbox(key="gen_genre").value == "hip-hop"
    assert at.selectbox(key="gen_mood").value == "dark"
    assert any("Neon Rain" in i.value for i in at.info)


def test_after_a_song_at_the_genres_tempo_the_slider_shows_that_tempo(db, models):
    engine, _ = db
    user = make_user(engine, "tempo")
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state["user_id"] = user.id
    at.run()
    assert at.slider(key="gen_tempo").value == 120 and at.checkbox(key="gen_auto_tempo").value
    at.selectbox(key="gen_genre").set_value("hip-hop")
    at.multiselect(key="gen_instruments").set_value(["drums", "bass"])
    at.slider(key="gen_seconds").set_value(5)
    at.button(key="FormSubmitter:gen_form-Generate").click()
    at.run()
    assert not at.exception, at.exception
    chosen = at.session_state["gen_request"]
    assert chosen["tempo"] is None
    heading = next(t.value for t in at.subheader if t.value.startswith("hip-hop ·"))
    bpm = float(heading.split(" bpm")[0].rsplit("· ", 1)[1])
    assert bpm != 120 and at.slider(key="gen_tempo").value == round(bpm)
    # turning the genre's tempo off now starts from the same tempo: the same song again
    at.checkbox(key="gen_auto_tempo").set_value(False)
    at.button(key="FormSubmitter:gen_form-Generate").click()
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["gen_request"]["tempo"] == round(bpm)
    assert f"· {round(bpm):g} bpm ·" in page_texts(at)
