"""The app's frame: page config, the pages (for ``st.navigation``), session restore and the sidebar;
drawn by app.py around every page, or by the page itself when Streamlit runs it alone.

Streamlit runs a page file alone until a run of the server process has called ``st.navigation``: it
treats an app with a ``pages/`` folder as an old-style multipage app, and for a request to a page's URL
-- the first visit after a (re)start opening a bookmarked page or reloading one, or a click on the file
list it shows in the sidebar for an instant on the first visit -- it runs that page file without app.py:
no remember-me login, no sidebar, no player rules, the file names as navigation. It goes on doing so for
that session until a run of app.py reaches ``st.navigation``. So every page calls :func:`in_frame`
first, which then draws the frame itself (and ends the old mode for the whole process).
"""

from __future__ import annotations

import base64

import streamlit as st


def app_pages(*, shared_link: bool) -> dict[str, list]:
    """The navigation's sections and pages; with ``shared_link`` (a ``?t=`` token in the URL) the
    shared-track page is added and is the default."""
    pages = {
        "BeatTok": [
            st.Page("pages/feed.py", title="Feed", icon=":material/home:", default=not shared_link),
        ],
        "Studio": [
            st.Page("pages/generate.py", title="Generate", icon=":material/piano:"),
            st.Page("pages/add_beats.py", title="Add beats", icon=":material/music_note:"),
            st.Page("pages/editor.py", title="Editor", icon=":material/tune:"),
            st.Page("pages/remix.py", title="Remix", icon=":material/shuffle:"),
            st.Page("pages/kpop.py", title="K-pop generator", icon=":material/graphic_eq:"),
            st.Page("pages/album.py", title="Album factory", icon=":material/album:"),
        ],
        "You": [
            st.Page("pages/upload.py", title="Upload", icon=":material/upload:"),
            st.Page("pages/library.py", title="My library", icon=":material/library_music:"),
            st.Page("pages/account.py", title="Account", icon=":material/account_circle:"),
        ],
    }
    if shared_link:
        pages["BeatTok"].append(
            st.Page("pages/share.py", title="Shared track", icon=":material/link:", default=True)
        )
    return pages


# The favicon: four equaliser bars on the brand colour, inline. Not an emoji (Streamlit then loads its
# emoji catalog, 75 ms of the first page after a start) nor a Material icon (fetched from
# fonts.gstatic.com by the browser).
_FAVICON_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64">'
    '<rect width="64" height="64" rx="14" fill="#ff3d7f"/>'
    '<g fill="#fff"><rect x="12" y="26" width="7" height="26" rx="3.5"/>'
    '<rect x="23" y="12" width="7" height="40" rx="3.5"/>'
    '<rect x="34" y="20" width="7" height="32" rx="3.5"/>'
    '<rect x="45" y="32" width="7" height="20" rx="3.5"/></g></svg>'
)
FAVICON = "data:image/svg+xml;base64," + base64.b64encode(_FAVICON_SVG.encode()).decode()


def page_config() -> None:
    """Title, favicon (:data:`FAVICON`) and wide layout."""
    st.set_page_config(page_title="BeatTok Studio", page_icon=FAVICON, layout="wide")


def draw_frame(*, page: str) -> None:
    """Everything around the page: log-in from the remember-me cookie, freeing the last page's audio
    when ``page`` (the navigation's url path) changes, and the sidebar (who is logged in, the
    remember-me cookie script, the player rules)."""
    from components import resources
    from components.player import install_player_rules
    from components.session import current_user, restore_session, sync_cookie

    restore_session()
    if st.session_state.get("_page") != page:
        # another page: the last one's audio (a 10-minute add-beats result is 0.8 GB) is garbage now;
        # free it before this page makes its own (130 ms, only when the page changes and the server
        # is big)
        if "_page" in st.session_state:
            resources.garbage_collector().collect_now(above_mb=1024)
        st.session_state["_page"] = page
    user = current_user()
    with st.sidebar:
        if user is None:
            st.caption("Browsing as a guest.")
            st.page_link("pages/account.py", label="Log in / Sign up", icon=":material/login:")
        else:
            st.caption(f"Logged in as **{user.username}**")
        sync_cookie()
        install_player_rules()


def _run_alone() -> bool:
    """Whether Streamlit is still in its old pages-folder mode, in which it runs page files alone."""
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # another Streamlit layout: nothing to repair
        return False
    return bool(getattr(PagesManager, "uses_pages_directory", False))


def _skip_repl_check() -> None:
    """Spare the first page after a start Streamlit's once-per-process REPL check.

    Before its first element Streamlit asks whether it runs in a Python REPL (to print "use streamlit
    run"), with ``inspect.stack()`` on the script thread: 170 ms of the first page after a start (a
    realpath of every loaded module's file). Inside a Streamlit runtime the answer is always no and the
    warning is never printed, so the check is marked done; run bare (``python app.py``), the warning
    stays.
    """
    from streamlit import delta_generator, runtime

    if runtime.exists() and hasattr(delta_generator, "_use_warning_has_been_displayed"):
        delta_generator._use_warning_has_been_displayed = True


def open_frame():
    """Page config, the app's navigation and the frame around the page; returns the page to run (what
    ``st.navigation`` returns). app.py calls it first; :func:`in_frame` when a page runs alone."""
    _skip_repl_check()
    page_config()
    navigation = st.navigation(app_pages(shared_link=bool(st.query_params.get("t"))))
    draw_frame(page=navigation.url_path)
    return navigation


def in_frame() -> None:
    """Call first in every page. If Streamlit runs the page alone (see the module's docstring), open the
    frame here (:func:`open_frame`: its navigation ends that mode for the whole server process); the
    page then goes on in the same run, with the user's action (a form submitted, a button clicked)
    intact. Otherwise, that is always after the first run of app.py, it does nothing.
    """
    if not _run_alone():
        return
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    # the frame is drawn as app.py draws it, with the main script active (st.navigation also makes it
    # the active script of the rest of the run); on exit the scope gives the page back its own: its
    # widgets' ids, and so their values, depend on it
    with ctx.run_with_active_hash(ctx.pages_manager.main_script_hash):
        open_frame()
