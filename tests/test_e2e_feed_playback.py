"""End-to-end in headless Chromium: the feed plays one track at a time, loud tracks turned down."""

from __future__ import annotations

import pytest

from tests.browser import chromium_browser, require_chromium, streamlit_server, uncaught_errors
from tests.conftest import SR, sine

pytestmark = pytest.mark.browser
WAIT = 60_000
# the title of the feed card an element is in (the nearest enclosing block with a card title, h4)
_CARD_TITLE = """e => {
  for (let n = e.parentElement; n; n = n.parentElement) {
    const h = n.querySelector("h4");
    if (h) return h.innerText.trim();
  }
  return null;
}"""


def _publish_two_tracks() -> list[float]:
    """A quiet and a loud public track, published in code (newest first in the feed: the loud one);
    returns their stored loudness (LUFS)."""
    from sqlmodel import Session

    from core.auth import sign_up
    from core.config import get_settings
    from core.db.engine import make_engine, migrate
    from core.library import publish_audio
    from core.storage import LocalStorage

    settings = get_settings()
    engine = make_engine(settings.database_url)
    migrate(engine)
    storage = LocalStorage(settings.media_dir)
    loudness = []
    with Session(engine) as s:
        mia = sign_up(s, username="mia", email="mia@example.com", name="Mia", password="mia password 1")
        for title, amp in (("Quiet tone", 0.05), ("Loud tone", 0.9)):
            track = publish_audio(
                s, storage, owner_id=mia.id, y=sine(220.0, seconds=40.0, amp=amp), sr=SR, title=title,
                visibility="public", bpm=120.0, key="A minor", beats=[0.0, 0.5],
            )  # fmt: skip
            loudness.append(track.loudness_lufs)
    engine.dispose()
    return loudness


def test_one_player_at_a_time_and_loud_tracks_turned_down(_isolated_data_dir, fast_bcrypt):
    require_chromium()
    from core.audio.io import decode
    from core.audio.loudness import integrated_lufs
    from core.library import PLAYBACK_LUFS

    quiet_lufs, loud_lufs = _publish_two_tracks()
    assert loud_lufs > PLAYBACK_LUFS + 5 and quiet_lufs < PLAYBACK_LUFS
    with streamlit_server(_isolated_data_dir) as base, chromium_browser() as browser:
        page = browser.new_page()
        page.set_default_timeout(WAIT)
        page.goto(base)
        page.get_by_text("Quiet tone").first.wait_for()
        played, players = [], []
        for title in ("Loud tone", "Quiet tone"):
            # the Play button of that card (cards are drawn piece by piece: wait for it) opens a
            # player in that card
            page.wait_for_function(
                "() => [...document.querySelectorAll('button')].some(b => b.innerText.trim() === '▶ Play'"
                f" && ({_CARD_TITLE})(b) === {title!r})"
            )
            buttons = page.get_by_role("button", name="▶ Play")
            titles = [b.evaluate(_CARD_TITLE) for b in buttons.all()]
            buttons.nth(titles.index(title)).click()
            page.wait_for_function(
                f"() => [...document.querySelectorAll('audio')].some(a => ({_CARD_TITLE})(a) === {title!r})"
            )
            audio = next(a for a in page.locator("audio").all() if a.evaluate(_CARD_TITLE) == title)
            audio = audio.element_handle()
            audio.evaluate("a => a.play()")  # whether or not autoplay has started it already
            src = audio.get_attribute("src")
            body = page.request.get(src if src.startswith("http") else base.rstrip("/") + src).body()
            played.append(integrated_lufs(decode(body, filename="play.mp3", sr=SR), sr=SR))
            players.append(audio)
        # starting the second paused the first; starting the first again pauses the second
        # (within 5 s: the tones last 40 s, so neither has simply ended)
        first, second = players
        page.wait_for_function("([a, b]) => a.paused && !b.paused", arg=[first, second], timeout=5_000)
        first.evaluate("a => a.play()")
        page.wait_for_function("([a, b]) => !a.paused && b.paused", arg=[first, second], timeout=5_000)
        loud, quiet = played
        assert loud == pytest.approx(PLAYBACK_LUFS, abs=0.5)  # turned down
        assert quiet == pytest.approx(quiet_lufs, abs=0.5)  # quieter tracks are never raised
        assert not uncaught_errors(_isolated_data_dir), uncaught_errors(_isolated_data_dir)
