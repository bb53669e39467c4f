"""End-to-end in headless Chromium: sign up -> upload a song -> add drums and bass -> A/B -> save."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser import chromium_browser, require_chromium, sign_up, streamlit_server, uncaught_errors
from tests.conftest import SR
from tests.test_beats import make_song

pytestmark = pytest.mark.browser
WAIT = 180_000
USER, PASSWORD = "e2e_beats", "e2e password 1"


def test_upload_add_drums_and_bass_ab_and_save(tmp_path, _isolated_data_dir):
    require_chromium()
    song = tmp_path / "piano demo.wav"
    from core.audio.io import encode

    song.write_bytes(encode(make_song(bars=4)[0], sr=SR, fmt="wav"))
    with streamlit_server(_isolated_data_dir, timeout=120.0) as base, chromium_browser() as chrome:
        page = chrome.new_context(accept_downloads=True).new_page()
        page.set_default_timeout(WAIT)
        try:
            _journey(page, base, song)
            assert not uncaught_errors(_isolated_data_dir), uncaught_errors(_isolated_data_dir)
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            print("screenshot:", tmp_path / "failure.png")
            print((_isolated_data_dir / "server.log").read_text()[-3000:])
            raise
    _check_saved_track()


def _journey(page, base: str, song: Path) -> None:
    page.goto(base)
    page.get_by_role("link", name="Account").first.click()
    sign_up(page, artist="E2E Beats", username=USER, email="e2e-beats@example.com", password=PASSWORD)

    # upload the song: the analysis shows tempo and key
    page.get_by_role("link", name="Add beats").first.click()
    page.get_by_text("Upload or record a song").first.wait_for()
    page.locator('input[type="file"]').first.set_input_files(str(song))
    page.get_by_text(re.compile(r"\d+\.\d BPM")).first.wait_for()
    page.get_by_text("C major").first.wait_for()

    # add drums and bass (the form's defaults: both)
    page.get_by_role("button", name="Add beats").click()
    page.get_by_text(re.compile(r"\d+ drum hits · \d+ bass notes")).first.wait_for()
    assert page.locator("audio").count() >= 1

    # A/B: switch to the original and back
    page.get_by_text("Original", exact=True).first.click()
    page.wait_for_timeout(1500)
    page.get_by_text("With beats", exact=True).first.click()
    page.wait_for_timeout(1500)
    assert page.locator("audio").count() >= 1

    # save to the library
    page.get_by_role("button", name="Save to library").click()
    page.get_by_text(re.compile("Saved .*to your library")).first.wait_for()


def _check_saved_track() -> None:
    from sqlmodel import Session, select

    from core.config import get_settings
    from core.db.engine import make_engine
    from core.db.models import Track

    engine = make_engine(get_settings().database_url)
    with Session(engine) as s:
        tracks = s.exec(select(Track).where(Track.source == "add_beats")).all()
    engine.dispose()
    assert len(tracks) == 1
    assert tracks[0].title == "piano demo (with beats)"
    assert tracks[0].duration_s == pytest.approx(make_song(bars=4)[0].shape[1] / SR, abs=0.1)
