"""AppTest of the remix page (pages/remix.py): guest view and a remix of two library tracks end to end."""

from __future__ import annotations

from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from tests.conftest import make_user, page_texts
from tests.test_remix import SR, beat, melody

PAGE = "../pages/remix.py"
TIMEOUT = 120


def _publish(
    engine, storage, owner_id: int, title: str, y, visibility: str = "private", artist="Alice"
) -> int:
    from core.library import publish_audio

    with Session(engine) as s:
        return publish_audio(
            s, storage, owner_id=owner_id, y=y, sr=SR, title=title, artist_name=artist,
            visibility=visibility, bpm=120.0, key="C major", beats=[0.0, 0.5],
        ).id  # fmt: skip


def test_guest_is_asked_to_log_in(db):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    assert "Log in or sign up to remix songs" in page_texts(at)
    assert not at.get("form")
    assert not at.slider


def test_remix_of_a_library_track_in_the_style_of_a_feed_track_end_to_end(db):
    engine, storage = db
    user = make_user(engine)
    _publish(engine, storage, user.id, "Scale tune", melody(6.0))
    bob = make_user(engine, "bob")
    _publish(
        engine, storage, bob.id, "Beat loop", beat(6.0), visibility="public", artist="Bob"
    )  # someone else's, public
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.session_state["user_id"] = user.id
    at.run()
    assert not at.exception, at.exception

    # without songs chosen the page explains what is missing instead of failing
    at.button(key="FormSubmitter:remix_form-Remix").click()
    at.run()
    assert any("choose the content song first" in e.value for e in at.error)

    at.radio(key="remix_content_source").set_value("My library")
    at.radio(key="remix_style_source").set_value("BeatTok feed")
    at.run()
    _pick(at, "remix_content_track", "Scale tune")
    _pick(at, "remix_style_track", "Beat loop")
    at.slider(key="remix_seconds").set_value(5)
    at.selectbox(key="remix_quality").set_value("fast")
    at.number_input(key="remix_seed").set_value(2)
    at.button(key="FormSubmitter:remix_form-Remix").click()
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert "Scale tune — Alice in the style of Beat loop — Bob" in page_texts(at)
    assert len(at.get("audio")) == 1
    assert len(at.get("plotly_chart")) == 3  # content, style and result spectrograms
    assert {b.label for b in at.get("download_button")} == {"Download WAV", "Download MP3"}
    metrics = {m.label: m.value for m in at.metric}
    assert float(metrics["Style distance after"]) < float(metrics["Style distance before"])

    # the result survives a rerun (cached by inputs + settings) and can be saved to the library
    at.run()
    assert len(at.get("audio")) == 1
    assert any(b.label == "Save to library" for b in at.button)  # the save/publish form
    # (submitting it ends in st.page_link to the library page, which needs app.py's navigation)


def _pick(at: AppTest, key: str, title: str) -> None:
    box = at.selectbox(key=key)
    box.set_value(next(label for label in box.options if title in label))
