"""AppTest of the Add beats page (pages/add_beats.py), with the song taken from the user's library."""

from __future__ import annotations

import json

import pytest
import streamlit as st
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from tests.conftest import SR, make_user, page_texts
from tests.test_beats import make_song

PAGE = "../pages/add_beats.py"
TIMEOUT = 240


@pytest.fixture
def clean_caches():
    st.cache_resource.clear()
    st.cache_data.clear()
    yield
    st.cache_resource.clear()
    st.cache_data.clear()


def _publish_song(engine, storage, owner_id: int) -> int:
    from core.library import publish_audio

    y, beats, _ = make_song(bars=4)
    with Session(engine) as s:
        track = publish_audio(
            s, storage, owner_id=owner_id, y=y, sr=SR, title="Piano demo", artist_name="Alice",
            bpm=100.0, key="C major", beats=[float(b) for b in beats],
        )  # fmt: skip
        return track.id


def _library_song_page(db) -> AppTest:
    """The page for a logged-in user with one published song, that song picked from the library."""
    engine, storage = db
    user = make_user(engine)
    _publish_song(engine, storage, user.id)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state["user_id"] = user.id
    at.run()
    assert not at.exception
    at.radio(key="ab_source").set_value("My library").run()
    assert not at.exception, at.exception
    return at


def test_guest_must_log_in(db):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception
    assert "log in" in page_texts(at).lower()
    assert [b.key for b in at.button] == ["require_user_login"]
    assert not at.radio and not at.get("plotly_chart")


def test_library_song_analysed_corrected_beats_added_ab_saved_and_opened(db, clean_caches, monkeypatch):
    # the save form ends with st.page_link to the library page, which only exists under app.py's navigation
    monkeypatch.setattr(st, "page_link", lambda *a, **k: None)
    engine, storage = db
    at = _library_song_page(db)
    user_id = at.session_state["user_id"]
    assert at.selectbox(key="ab_track").value.startswith("Piano demo")
    # analysis: tempo and key with confidence, waveform and chords lane
    metrics = {m.label: m.value for m in at.metric}
    bpm = float(metrics["Tempo"].split()[0])
    assert abs(bpm - 100.0) <= 4.0
    assert metrics["Key"] == "C major"
    assert len(at.get("plotly_chart")) >= 2

    # corrections: halve, reset, then tapped taps (0.6 s apart = 100 BPM)
    at.button(key="ab_halve").click().run()
    assert abs(float(at.metric[0].value.split()[0]) - bpm / 2) < 1.0
    at.button(key="ab_reset").click().run()
    assert abs(float(at.metric[0].value.split()[0]) - bpm) < 0.01
    at.session_state["ab_taps"] = [10.0, 10.6, 11.2, 11.8]
    at.run()
    use = at.button(key="ab_use_tap")
    assert "100.0 BPM" in use.label and not use.disabled
    use.click().run()
    assert at.session_state["ab_tempo"] == pytest.approx(100.0, abs=0.01)
    assert "set by you" in str(at.metric[0].delta)

    # generate drums and bass
    at.checkbox(key="ab_duck").uncheck()
    at.number_input(key="ab_seed").set_value(3)
    next(b for b in at.button if b.label == "Add beats").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert "Result" in page_texts(at)
    assert at.session_state["ab_request"]["seed"] == 3 and at.session_state["ab_request"]["duck"] is False
    # A/B: the mix and the original side by side in one group kept in step, the stems in it too
    group = at.get_by_key("beattok-in-step-add-beats")
    assert len(group.get("audio")) == len(at.get("audio")) == 4
    assert {"A · with beats", "B · original", "Drums", "Bass"} <= {c.value for c in group.get("caption")}

    # save to the library with source add_beats
    save = next(b for b in at.button if b.label == "Save to library")
    save.click().run()
    assert not at.exception, at.exception
    assert "Saved" in page_texts(at)
    from sqlmodel import select

    from core.db.models import Track

    with Session(engine) as s:
        saved = s.exec(select(Track).where(Track.source == "add_beats")).all()
    assert len(saved) == 1 and saved[0].owner_id == user_id and saved[0].title == "Piano demo (with beats)"

    # open in the editor: a project with the original, drums and bass stems
    from components import resources

    released = []
    monkeypatch.setattr(resources, "release_beats_result", lambda *a, **k: released.append(a))
    at.button(key="ab_open_editor").click().run()
    assert not at.exception, at.exception
    request_json = json.dumps(at.session_state["ab_request"], sort_keys=True)
    assert released == [(at.session_state["ab_song"], request_json)]
    pid = at.session_state["editor_project_id"]
    from core.editor.project import load_project

    with Session(engine) as s:
        project = load_project(s, storage, project_id=pid, owner_id=user_id)
    assert [st_.name for st_ in project.stems] == ["original", "drums", "bass"]
    assert project.meta["key"] == "C major"


def test_a_saved_song_bigger_than_the_upload_limit_opens_from_the_library(db, clean_caches, monkeypatch):
    """Results are saved as WAV: a 10-minute one is 106 MB, over the 100 MB upload limit. Here the limit
    is 0.2 MB and the saved 10-second song 1.7 MB: it must still be analysed, not refused as an upload."""
    monkeypatch.setenv("BEATTOK_MAX_UPLOAD_MB", "0.2")
    at = _library_song_page(db)
    assert not at.error, [e.value for e in at.error]
    assert abs(float({m.label: m.value for m in at.metric}["Tempo"].split()[0]) - 100.0) <= 4.0


def test_results_are_kept_within_the_memory_budget_and_remade_when_needed(db, clean_caches, monkeypatch):
    """A byte-bounded cache holds the results (one 10-minute one is 844 MB): with a budget smaller than one
    result only the newest stays, and asking again for an evicted one remakes it."""
    from components import resources

    monkeypatch.setattr(resources, "RESULT_CACHE_MB", 0.001)
    at = _library_song_page(db)
    results = resources.memory_cache("results", 0.001, 3600.0)
    for seed in (0, 1, 0):
        at.number_input(key="ab_seed").set_value(seed)
        next(b for b in at.button if b.label == "Add beats").click().run()
        assert not at.exception, at.exception
        assert "Result" in page_texts(at) and at.session_state["ab_request"]["seed"] == seed
        assert len(results) == 1
    assert results.counts["made"] == 3 and results.counts["evicted"] == 2
    at.run()  # a rerun uses the cached result
    assert not at.exception and results.counts["made"] == 3 and results.counts["hits"] >= 1
    # opened in the editor, a long song's result is let go; a short one's (this one) stays
    request_json = json.dumps(at.session_state["ab_request"], sort_keys=True)
    assert not resources.release_beats_result(at.session_state["ab_song"], request_json)
    assert resources.release_beats_result(at.session_state["ab_song"], request_json, min_mb=0)
    assert len(results) == 0 and results.total_bytes == 0


def test_a_likely_other_tempo_is_offered_and_taken_in_one_click(db, clean_caches, monkeypatch):
    from dataclasses import replace

    import core.audio.analysis as analysis

    real = analysis.analyze

    def unsure(y, *, sr, progress=None):  # the chooser weighed half time at 30 %
        a = real(y, sr=sr, progress=progress)
        return replace(a, tempo_alternatives=((a.tempo_bpm / 2, 0.3), (a.tempo_bpm * 2, 0.05)))

    monkeypatch.setattr(analysis, "analyze", unsure)
    at = _library_song_page(db)
    bpm = float(at.metric[0].value.split()[0])
    offer = " ".join(i.value for i in at.info)
    assert f"{bpm / 2:.1f} BPM" in offer and "half time" in offer and "30%" in offer
    at.button(key="ab_use_alt").click().run()
    assert not at.exception, at.exception
    assert at.session_state["ab_tempo"] == pytest.approx(bpm / 2, rel=0.01)
    assert float(at.metric[0].value.split()[0]) == pytest.approx(bpm / 2, rel=0.02)
    assert "set by you" in str(at.metric[0].delta)
    assert not [b for b in at.button if b.key == "ab_use_alt"]  # the user chose: no offer any more


def test_empty_library_says_so(db, clean_caches):
    engine, _ = db
    user = make_user(engine, "bob")
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state["user_id"] = user.id
    at.run()
    at.radio(key="ab_source").set_value("My library").run()
    assert not at.exception
    assert "no tracks yet" in page_texts(at)


def test_too_short_song_gets_a_clear_message(db, clean_caches):
    from tests.conftest import make_track

    engine, storage = db
    user = make_user(engine, "carol")
    make_track(engine, storage, user.id, title="Blip", seconds=2.0)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state["user_id"] = user.id
    at.run()
    at.radio(key="ab_source").set_value("My library").run()
    assert not at.exception
    assert any("at least 4 s" in e.value for e in at.error)
    assert not any(b.label == "Add beats" for b in at.button)
