"""AppTest of the K-pop generator page (pages/kpop.py)."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core import kpop
from tests.conftest import make_track, make_user, page_texts

PAGE = "../pages/kpop.py"
TIMEOUT = 120


def test_guest_is_asked_to_log_in(db):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    assert "Log in or sign up" in page_texts(at)
    assert not at.tabs  # nothing of the generator is shown


@pytest.mark.slow
def test_logged_in_user_generates_and_sees_player_spectrogram_and_save_form(db):
    engine, _ = db
    user = make_user(engine)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state["user_id"] = user.id
    at.run()
    assert not at.exception, at.exception
    assert [t.label for t in at.tabs] == ["Generate", "Train"]
    at.slider(key="kpop_seconds").set_value(5)
    at.number_input(key="kpop_seed").set_value(3)
    at.button(key="FormSubmitter:kpop_generate_form-Generate").click()
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert "Seed 3 · 5 s" in page_texts(at)
    audio = at.get("audio")
    assert len(audio) == 1
    charts = at.get("plotly_chart")
    assert len(charts) == 1
    assert any(b.label == "Save to library" for b in at.button)
    assert any(b.label == "Download WAV" for b in at.get("download_button"))
    # the result survives a rerun (it is cached by its settings)
    at.run()
    assert not at.exception, at.exception
    assert len(at.get("audio")) == 1


def test_library_seed_without_a_song_and_training_with_too_few_songs_show_errors(db):
    engine, _ = db
    user = make_user(engine)
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state["user_id"] = user.id
    at.run()
    at.radio(key="kpop_seed_kind").set_value("A song from my library")
    at.button(key="FormSubmitter:kpop_generate_form-Generate").click()
    at.run()
    assert not at.exception, at.exception
    assert any("choose a song from your library" in e.value for e in at.error)
    assert not at.get("audio")
    text = page_texts(at)
    assert "60 minutes" in text and "one training at a time per user" in text  # limits stated
    at.button(key="FormSubmitter:kpop_train_form-Start training").click()
    at.run()
    assert not at.exception, at.exception
    assert any("at least 2 songs" in e.value for e in at.error)


@pytest.mark.slow
def test_training_runs_in_the_background_and_the_new_model_can_be_chosen(db):
    import time

    engine, storage = db
    user = make_user(engine)
    ids = [make_track(engine, storage, user.id, title=f"Demo {i}", seconds=6.0) for i in range(2)]
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state["user_id"] = user.id
    at.run()
    at.text_input(key="kpop_train_name").input("Sines")
    at.multiselect(key="kpop_train_tracks").set_value(ids)
    epochs = at.number_input(key="kpop_train_epochs")
    assert epochs.max == kpop.MAX_EPOCHS  # the limit the page states is the one the form allows
    epochs.set_value(1)
    at.button(key="FormSubmitter:kpop_train_form-Start training").click()
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    # the page (and any reload of it) shows the running job, or its result once it has finished
    deadline = time.monotonic() + 90
    while "Training finished" not in page_texts(at) and time.monotonic() < deadline:
        time.sleep(1.0)
        at.run()
    text = page_texts(at)
    assert "Training finished after 1 epoch;" in text, text
    labels = at.selectbox(key="kpop_model").options
    assert any(label.startswith("Sines (") for label in labels)
