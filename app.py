"""BeatTok Studio: router and frame (page config, navigation, session restore, sidebar)."""

from __future__ import annotations

import streamlit as st

# An emoji favicon is drawn inline; a Material icon favicon would be fetched from fonts.gstatic.com.
st.set_page_config(page_title="BeatTok Studio", page_icon="🎧", layout="wide")

from components import resources  # noqa: E402
from components.player import one_player_at_a_time  # noqa: E402
from components.session import current_user, restore_session, sync_cookie  # noqa: E402

restore_session()

shared_link = bool(st.query_params.get("t"))
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
navigation = st.navigation(pages)
if st.session_state.get("_page") != navigation.url_path:
    # another page: the last one's audio (a 10-minute add-beats result is 0.8 GB) is garbage now; free
    # it before this page makes its own (130 ms, only when the page changes and the server is big)
    if "_page" in st.session_state:
        resources.garbage_collector().collect_now(above_mb=1024)
    st.session_state["_page"] = navigation.url_path

user = current_user()
with st.sidebar:
    if user is None:
        st.caption("Browsing as a guest.")
        st.page_link("pages/account.py", label="Log in / Sign up", icon=":material/login:")
    else:
        st.caption(f"Logged in as **{user.username}**")
    sync_cookie()
    one_player_at_a_time()
try:
    navigation.run()
finally:
    # the page's namespace is a reference cycle holding its audio: free it after the page is drawn
    resources.garbage_collector().request()
