"""BeatTok Studio: router and frame (page config, navigation, session restore, sidebar)."""

from __future__ import annotations

import streamlit as st

from components.frame import app_pages, draw_frame, page_config

page_config()
# st.navigation before anything slow: a click in the sidebar before this call, on a fresh server, would
# run a page file alone (components.frame.in_frame, called by each page, draws the frame then)
navigation = st.navigation(app_pages(shared_link=bool(st.query_params.get("t"))))
draw_frame(page=navigation.url_path)

from components import resources  # noqa: E402

try:
    navigation.run()
finally:
    # the page's namespace is a reference cycle holding its audio: free it after the page is drawn
    resources.garbage_collector().request()
