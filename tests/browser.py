"""Helpers for end-to-end tests: a real ``streamlit run`` server and Debian's headless Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",  # players started from a test's script may play
]


def require_chromium() -> None:
    """Skip locally without Chromium; in CI (CI=true) a missing browser is a failure."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing: .ci/run installs the Debian chromium package")
        pytest.skip("Debian chromium is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def streamlit_server(data_dir: Path, *, timeout: float = 90.0, script: str = "app.py"):
    """Run ``streamlit run <script>`` (the app by default) on a free loopback port; yield its base URL."""
    port = _free_port()
    env = {**os.environ, "BEATTOK_DATA_DIR": str(data_dir), "BEATTOK_BCRYPT_ROUNDS": "4"}
    log = open(data_dir / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            script,
            "--server.headless=true",
            "--server.address=127.0.0.1",
            f"--server.port={port}",
            "--browser.gatherUsageStats=false",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"streamlit did not start: {(data_dir / 'server.log').read_text()[-2000:]}"
                )
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def uncaught_errors(data_dir: Path) -> list[str]:
    """The uncaught page exceptions in the server's log (Streamlit logs each as "Uncaught app execution").

    A journey can pass while a page fails in a rerun the browser redraws a moment later (the cookie
    component's extra rerun, for instance); the log still has it.
    """
    text = (Path(data_dir) / "server.log").read_text(errors="replace")
    return [chunk[:1500] for chunk in text.split("Uncaught app execution")[1:]]


@contextmanager
def chromium_browser(*, microphone: Path | None = None):
    """A headless Chromium driven by Playwright (no Playwright browser download).

    With ``microphone`` (a 16-bit PCM WAV file), pages get a fake microphone that plays that file, and
    the permission prompt is accepted, so recording in the browser can be tested.
    """
    from playwright.sync_api import sync_playwright

    args = list(CHROMIUM_ARGS)
    if microphone is not None:
        args += [
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={microphone}",
        ]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def visible(locator):
    """The first visible element of ``locator`` (Streamlit keeps hidden copies of some widgets)."""
    return locator.locator("visible=true").first


def sign_up(page, *, artist: str, username: str, email: str, password: str) -> None:
    """Fill the Account page's sign-up tab (already open) and wait until the new user is logged in."""
    page.get_by_role("tab", name="Sign up").click()
    visible(page.get_by_role("textbox", name="Artist name", exact=True)).fill(artist)
    visible(page.get_by_role("textbox", name="Username", exact=True)).fill(username)
    visible(page.get_by_role("textbox", name="Email", exact=True)).fill(email)
    visible(page.get_by_role("textbox", name="Password", exact=True)).fill(password)
    visible(page.get_by_role("textbox", name="Repeat password", exact=True)).fill(password)
    page.get_by_role("button", name="Create account").click()
    page.get_by_text("You are logged in").first.wait_for()


def download(page, button, *, tries: int = 3, timeout: float = 20_000):
    """Click the download ``button`` (a locator) and return the Playwright download.

    Retried: a download button gets a new file id on every run that draws it (its fragment's, or the
    page's) and Streamlit revokes the old one at once, so a click that lands just before the browser
    has the new button asks for a revoked id and nothing downloads ("A click that still holds the old
    id fails until the browser receives the new delta", streamlit/runtime/media_file_manager.py). With one
    try, the foundation and editor journeys downloaded at the first click 10 times out of 10 on
    2026-11-22 (after the cookie component and its reruns were removed), where 3 of 6 foundation runs
    had failed a day before; which change did it is not known, so the retry stays.
    """
    for attempt in range(tries):
        try:
            with page.expect_download(timeout=timeout) as dl:
                button.click()
            return dl.value
        except Exception:
            if attempt == tries - 1:
                raise
            time.sleep(1.0)
