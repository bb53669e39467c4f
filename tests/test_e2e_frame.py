"""End-to-end in headless Chromium: a page's own URL opened first on a fresh server runs inside the app.

Streamlit runs a page file alone (no app.py: no login from the cookie, no sidebar, the pages folder's
file names as navigation) until a run of app.py has called ``st.navigation``; ``components.frame``
repairs that. The real case: the server restarts (a deploy, Streamlit Cloud waking up) and people
reload the page they were on.
"""

from __future__ import annotations

import pytest

from tests.browser import chromium_browser, require_chromium, sign_up, streamlit_server, uncaught_errors

pytestmark = pytest.mark.browser
WAIT = 60_000


def _sidebar(page):
    return page.locator('[data-testid="stSidebar"]')


def test_a_page_opened_first_after_a_restart_has_the_app_around_it(_isolated_data_dir):
    require_chromium()
    with chromium_browser() as browser:
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(WAIT)
        with streamlit_server(_isolated_data_dir) as base:
            page.goto(f"{base}/library")  # the server's very first request
            _sidebar(page).get_by_text("Browsing as a guest.").wait_for()
            _sidebar(page).get_by_text("K-pop generator").wait_for()  # the app's navigation
            page.get_by_text("Log in or sign up to").first.wait_for()
            assert page.url.rstrip("/").endswith("/library")
            assert _sidebar(page).get_by_text("kpop", exact=True).count() == 0  # not the file names
            _sidebar(page).get_by_role("link", name="Account").click()
            sign_up(
                page, artist="Frame", username="frame", email="frame@example.com", password="frame pass 1"
            )
            _sidebar(page).get_by_text("Logged in as frame").wait_for()
            assert not uncaught_errors(_isolated_data_dir)
        # a restart; the browser reloads the page it was on: logged in from the cookie, inside the app
        with streamlit_server(_isolated_data_dir) as base:
            page.goto(f"{base}/library")
            _sidebar(page).get_by_text("Logged in as frame").wait_for()
            page.get_by_role("heading", name="My library").wait_for()
            assert page.get_by_text("Log in or sign up to").count() == 0
            assert not uncaught_errors(_isolated_data_dir)
