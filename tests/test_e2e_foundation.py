"""End-to-end in headless Chromium: sign up -> upload -> publish -> feed as guest -> like -> download
-> share link."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
import soundfile as sf

from tests.browser import (
    chromium_browser,
    download,
    require_chromium,
    sign_up,
    streamlit_server,
    uncaught_errors,
    visible,
)
from tests.conftest import click_track, sine

pytestmark = pytest.mark.browser
WAIT = 60_000


def _wav_file(path):
    y = click_track(bpm=120.0, seconds=6.0) + sine(330.0, seconds=6.0, amp=0.1)
    buf = io.BytesIO()
    sf.write(buf, y.T, 44100, format="WAV", subtype="PCM_16")
    path.write_bytes(buf.getvalue())
    return path


def _choose(page, label: str, option, tries: int = 4) -> None:
    """Pick ``option`` in the selectbox ``label``; retried because a rerun can close an open dropdown."""
    for attempt in range(tries):
        page.get_by_label(label).locator("..").click()
        try:
            page.get_by_role("option", name=option).click(timeout=5_000)
            return
        except Exception:
            if attempt == tries - 1:
                raise
            page.keyboard.press("Escape")


def _nav(page, label: str, ready) -> None:
    """Open the page ``label`` from the sidebar and wait for ``ready`` (a locator). One click: the
    remember-me cookie no longer reruns the page, which could cancel a click right after logging in."""
    page.get_by_role("link", name=label).first.click()
    ready.wait_for(timeout=10_000)


def test_sign_up_upload_publish_feed_like_download_share(tmp_path, _isolated_data_dir):
    require_chromium()
    wav = _wav_file(tmp_path / "e2e groove.wav")
    with streamlit_server(_isolated_data_dir) as base, chromium_browser() as browser:
        artist = browser.new_context(accept_downloads=True)
        page = artist.new_page()
        try:
            _journey(page, browser, base, wav)
            assert not uncaught_errors(_isolated_data_dir), uncaught_errors(_isolated_data_dir)
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            print("screenshot:", tmp_path / "failure.png")
            print((_isolated_data_dir / "server.log").read_text()[-3000:])
            raise


def _journey(page, browser, base, wav):
    if True:
        page.set_default_timeout(WAIT)
        page.goto(base)
        page.get_by_text("Nothing here yet").wait_for()

        # sign up
        _nav(page, "Account", page.get_by_role("tab", name="Sign up"))
        pw = "e2e password 1"
        sign_up(page, artist="E2E Artist", username="e2e_artist", email="e2e@example.com", password=pw)

        # upload a generated WAV, see the analysis, publish it
        _nav(page, "Upload", page.get_by_text("Choose an audio file").first)
        page.locator("input[type=file]").first.set_input_files(str(wav))
        page.get_by_text("Tempo").first.wait_for()
        title = visible(page.get_by_role("textbox", name="Title", exact=True))
        title.fill("E2E Groove")
        _choose(page, "Visibility", re.compile("Public"))
        page.get_by_role("button", name="Save to library").click()
        page.get_by_text("Saved").first.wait_for()

        # a guest sees it in the feed
        guest = browser.new_context(accept_downloads=True)
        gpage = guest.new_page()
        gpage.set_default_timeout(WAIT)
        gpage.goto(base)
        gpage.get_by_text("E2E Groove").first.wait_for()

        # the artist (still logged in through the remember-me cookie) likes it
        page.goto(base)
        page.get_by_text("E2E Groove").first.wait_for()
        page.get_by_role("button", name="♡ 0").click()
        page.get_by_role("button", name="♥ 1").wait_for()

        # download the original
        data = download(page, page.get_by_role("button", name="⬇ WAV")).path().read_bytes()
        assert data[:4] == b"RIFF" and len(data) > 100_000
        y, sr = sf.read(io.BytesIO(data))
        assert sr == 44100 and abs(len(y) / sr - 6.0) < 0.05

        # open the share link as a guest
        page.get_by_role("button", name="🔗 Share").click()
        url = page.locator("code").filter(has_text="?t=").first.inner_text().strip()
        assert url.startswith(base)
        gpage.goto(url)
        gpage.get_by_text("Shared with you").wait_for()
        gpage.get_by_text("E2E Groove").first.wait_for()
        assert np.isfinite(len(url))
