"""End-to-end in headless Chromium: generate -> open in editor -> change tempo and add reverb -> export MP3.

When the music engine's trained models are not available (a fresh checkout before training), the journey
starts from an editor project saved in code (MIDI-backed stems, like a generated song) instead of the
Generate page; everything from "open in editor" on is the same.
"""

from __future__ import annotations

import re

import pytest

from tests.browser import (
    chromium_browser,
    download,
    require_chromium,
    sign_up,
    streamlit_server,
    uncaught_errors,
    visible,
)
from tests.conftest import SR

pytestmark = pytest.mark.browser
WAIT = 120_000
USER, PASSWORD = "e2e_editor", "e2e password 1"


def _nav(page, label: str) -> None:
    page.get_by_role("link", name=label).first.click()


def _engine_ready() -> bool:
    try:
        from core.music.arrange import load_samplers

        load_samplers()
    except Exception:  # missing checkpoints or engine: use the project made in code
        return False
    return True


def _seed_user_and_project() -> None:
    """A user and an editor project of MIDI stems (drums + keys, 8 s at 120 bpm), saved in the test DB."""
    from sqlmodel import Session

    from core.auth import sign_up
    from core.config import get_settings
    from core.db.engine import make_engine, migrate
    from core.editor.project import StorageSources, from_audio_stems, save_project
    from core.music.midi import Note, Part, midi_to_bytes, parts_to_midi
    from core.music.render import render_stems
    from core.music.theory import parse_key
    from core.storage import LocalStorage

    settings = get_settings()
    engine = make_engine(settings.database_url)
    migrate(engine)
    storage = LocalStorage(settings.media_dir)
    key = parse_key("A minor")
    drums = Part(
        "drums", is_drum=True, notes=[Note(b, b + 0.25, 36 if b % 2 == 0 else 38, 110) for b in range(16)]
    )
    keys = Part(
        "keys", program=0, notes=[Note(b, b + 3.9, p, 85) for b in range(0, 16, 4) for p in (57, 60, 64)]
    )
    midi = {p.name: midi_to_bytes(parts_to_midi([p], bpm=120.0, key=key, end_beat=16)) for p in (drums, keys)}
    audio = render_stems(midi, sr=SR, seconds=8.0, workers=1)
    with Session(engine) as session:
        user = sign_up(
            session, username=USER, email="e2e-editor@example.com", name="E2E Editor", password=PASSWORD
        )
        project = from_audio_stems(
            audio, sources=StorageSources(storage), title="E2E song", tempo_bpm=120.0, key="A minor",
            midi=midi, chords=[(0.0, 4.0, "A:min"), (4.0, 8.0, "F:maj")],
        )  # fmt: skip
        save_project(session, storage, owner_id=user.id, project=project)
    engine.dispose()


def _caption_numbers(page) -> tuple[float, float]:
    text = page.get_by_text(re.compile(r"\d+\.\d s · \d+\.\d bpm")).first.inner_text()
    m = re.search(r"(\d+\.\d) s · (\d+\.\d) bpm", text)
    return float(m.group(1)), float(m.group(2))


def test_generate_open_in_editor_change_tempo_add_reverb_export_mp3(tmp_path, _isolated_data_dir):
    require_chromium()
    use_generate = _engine_ready()
    if not use_generate:
        _seed_user_and_project()
    with streamlit_server(_isolated_data_dir) as base, chromium_browser() as chrome:
        page = chrome.new_context(accept_downloads=True).new_page()
        page.set_default_timeout(WAIT)
        try:
            _journey(page, base, use_generate=use_generate)
            assert not uncaught_errors(_isolated_data_dir), uncaught_errors(_isolated_data_dir)
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            print("screenshot:", tmp_path / "failure.png")
            print((_isolated_data_dir / "server.log").read_text()[-3000:])
            raise


def _stem_swap_keeps_playing(page) -> None:
    """Generate: play one instrument for 2 s, pick another with the radio buttons: the player goes on
    playing the new one from the same moment (its source is swapped; on its own it restarts at 0:00)."""
    player = page.locator(".st-key-beattok-in-step-generate audio").nth(1)
    player.wait_for()
    player.evaluate("p => p.play()")
    page.wait_for_timeout(2000)
    src = player.get_attribute("src")
    page.get_by_role("radio").nth(1).click(force=True)
    page.wait_for_function(
        "([p, src]) => p.getAttribute('src') !== src && !p.paused && p.currentTime > 1.8",
        arg=[player.element_handle(), src],
        timeout=10_000,
    )
    player.evaluate("p => p.pause()")


def _journey(page, base: str, *, use_generate: bool) -> None:
    from core.audio.io import decode

    page.goto(base)
    _nav(page, "Account")
    if use_generate:
        sign_up(page, artist="E2E Editor", username=USER, email="e2e-editor@example.com", password=PASSWORD)
        # generate a song with the form's defaults and open it in the editor
        _nav(page, "Generate")
        page.get_by_role("button", name="Generate").click()
        _stem_swap_keeps_playing(page)
        page.get_by_role("button", name="Open in editor").click()
    else:
        visible(page.get_by_role("textbox", name="Username", exact=True)).fill(USER)
        visible(page.get_by_role("textbox", name="Password", exact=True)).fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.get_by_text("You are logged in").first.wait_for()
        _nav(page, "Editor")
        page.get_by_role("button", name="Open project").click()

    page.get_by_text("Preview").first.wait_for()
    seconds, bpm = _caption_numbers(page)

    # change the tempo: +10 bpm with the keyboard (0.5 bpm per step)
    page.get_by_role("tab", name="Tempo & key").click()
    slider = visible(page.get_by_role("slider"))
    slider.focus()
    for _ in range(20):
        slider.press("ArrowRight")
    page.get_by_role("button", name="Apply tempo and key").click()
    new_bpm = bpm + 10.0
    page.get_by_text(re.compile(rf"· {new_bpm:.1f} bpm ·")).first.wait_for()
    page.get_by_text(re.compile(r"Tempo \d+(\.\d+)? bpm")).first.wait_for()  # history entry

    # add a reverb on the master bus
    page.get_by_role("tab", name="Master").click()
    combo = visible(page.get_by_role("combobox", name="Master effects"))
    combo.click()
    combo.press_sequentially("Reverb")
    combo.press("Enter")
    page.keyboard.press("Escape")
    page.get_by_text("Room size").first.wait_for()  # the reverb's parameters are shown
    visible(page.get_by_role("button", name="Apply effects")).click()
    page.get_by_text("Master effects: reverb").first.wait_for()

    # export the mix as MP3
    page.get_by_role("tab", name="Export").click()
    visible(page.get_by_role("button", name="Prepare download")).click()
    got = download(page, visible(page.get_by_role("button", name=re.compile(r"Download .*\.mp3"))))
    data = got.path().read_bytes()
    assert got.suggested_filename.endswith(".mp3")
    y = decode(data, filename="edit.mp3")
    assert y.shape[1] / SR == pytest.approx(seconds * bpm / new_bpm, abs=0.1)
    assert abs(y).max() > 0.05
