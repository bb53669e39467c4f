"""End-to-end in headless Chromium: sign up -> upload or record a song -> add drums and bass -> A/B -> save.

Recording uses Chromium's fake microphone, which plays a WAV file made here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser import chromium_browser, require_chromium, sign_up, streamlit_server, uncaught_errors
from tests.conftest import SR
from tests.test_beats import make_song

pytestmark = pytest.mark.browser
WAIT = 180_000
PASSWORD = "e2e password 1"
# the fake microphone loops the file (10.6 s): a recording this long has every chord, so the key is clear
RECORD_S = 11


def test_upload_add_drums_and_bass_ab_and_save(tmp_path, _isolated_data_dir):
    require_chromium()
    song = tmp_path / "piano demo.wav"
    from core.audio.io import encode

    song.write_bytes(encode(make_song(bars=4)[0], sr=SR, fmt="wav"))

    def upload(page) -> None:
        page.locator('input[type="file"]').first.set_input_files(str(song))

    _run(tmp_path, _isolated_data_dir, upload, user="e2e_beats", key="C major")
    _check_saved_track("piano demo (with beats)", seconds=make_song(bars=4)[0].shape[1] / SR, tolerance=0.1)


def test_record_add_drums_and_bass_ab_and_save(tmp_path, _isolated_data_dir):
    require_chromium()
    import soundfile as sf

    song = tmp_path / "microphone.wav"
    sf.write(str(song), make_song(bars=4)[0].T, SR, subtype="PCM_16")

    def record(page) -> None:
        page.get_by_role("tab", name="Record").first.click()
        page.get_by_role("button", name="Record", exact=True).first.click()
        page.wait_for_timeout(RECORD_S * 1000)
        page.get_by_role("button", name=re.compile("Stop", re.I)).first.click()

    _run(tmp_path, _isolated_data_dir, record, user="e2e_record", key="C major", microphone=song)
    # about the time between the two clicks (the browser starts and stops with some latency)
    _check_saved_track("recording (with beats)", seconds=RECORD_S, tolerance=2.0)


def _run(tmp_path: Path, data_dir: Path, give_song, *, user: str, key: str, microphone: Path | None = None):
    with streamlit_server(data_dir, timeout=120.0) as base, chromium_browser(microphone=microphone) as chrome:
        context = chrome.new_context(accept_downloads=True)
        if microphone is not None:
            context.grant_permissions(["microphone"])
        page = context.new_page()
        page.set_default_timeout(WAIT)
        try:
            _journey(page, base, give_song, user=user, key=key)
            assert not uncaught_errors(data_dir), uncaught_errors(data_dir)
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            print("screenshot:", tmp_path / "failure.png")
            print((data_dir / "server.log").read_text()[-3000:])
            raise


def _journey(page, base: str, give_song, *, user: str, key: str) -> None:
    page.goto(base)
    page.get_by_role("link", name="Account").first.click()
    sign_up(page, artist="E2E Beats", username=user, email=f"{user}@example.com", password=PASSWORD)
    # the app's frame is around the page (the Account click above came straight after the first load:
    # Streamlit could run the page file alone then, without the sidebar or the player rules)
    page.locator('[data-testid="stSidebar"]').get_by_text(f"Logged in as {user}").wait_for()

    # upload or record the song: the analysis shows tempo and key
    page.get_by_role("link", name="Add beats").first.click()
    page.get_by_text("Upload or record a song").first.wait_for()
    give_song(page)
    page.get_by_text(re.compile(r"\d+\.\d BPM")).first.wait_for()
    page.get_by_text(key).first.wait_for()

    # add drums and bass (the form's defaults: both)
    page.get_by_role("button", name="Add beats").click()
    page.get_by_text(re.compile(r"\d+ drum hits · \d+ bass notes")).first.wait_for()
    _ab_in_step(page)

    # save to the library
    page.get_by_role("button", name="Save to library").click()
    page.get_by_text(re.compile("Saved .*to your library")).first.wait_for()


def _ab_in_step(page) -> None:
    """A/B: play A (with beats) for 2 s, then B (the original): B starts where A was and A pauses; then A
    again continues from where B is; paused and played again, A stays at its own moment."""
    group = page.locator(".st-key-beattok-in-step-add-beats")
    group.get_by_text("B · original").wait_for()
    a, b = group.locator("audio").nth(0), group.locator("audio").nth(1)
    a.evaluate("p => p.play()")
    page.wait_for_timeout(2000)
    for start, other in ((b, a), (a, b)):
        start.evaluate("p => p.play()")
        page.wait_for_function(
            "([p, q]) => !p.paused && q.paused && p.currentTime > 1.5"
            " && Math.abs(p.currentTime - q.currentTime) < 0.5",
            arg=[start.element_handle(), other.element_handle()],
            timeout=5_000,
        )
        page.wait_for_timeout(1000)
    # paused and started again, A goes on from its own moment (not from where B was left)
    at = a.evaluate("p => { p.pause(); return p.currentTime; }")
    page.wait_for_timeout(500)
    a.evaluate("p => p.play()")
    page.wait_for_timeout(300)
    assert at <= a.evaluate("p => p.currentTime") < at + 1.0
    a.evaluate("p => p.pause()")


def _check_saved_track(title: str, *, seconds: float, tolerance: float) -> None:
    from sqlmodel import Session, select

    from core.config import get_settings
    from core.db.engine import make_engine
    from core.db.models import Track

    engine = make_engine(get_settings().database_url)
    with Session(engine) as s:
        tracks = s.exec(select(Track).where(Track.source == "add_beats")).all()
    engine.dispose()
    assert len(tracks) == 1
    assert tracks[0].title == title
    assert tracks[0].duration_s == pytest.approx(seconds, abs=tolerance)
