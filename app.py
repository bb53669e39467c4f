"""BeatTok Studio: router and frame (page config, navigation, session restore, sidebar)."""

from __future__ import annotations

from components.frame import open_frame

# first, before anything slow: a click in the sidebar before st.navigation, on a fresh server, would
# run a page file alone (components.frame.in_frame, called by each page, draws the frame then)
navigation = open_frame()

from components import resources  # noqa: E402

try:
    navigation.run()
finally:
    # the page's namespace is a reference cycle holding its audio: free it after the page is drawn
    resources.garbage_collector().request()
    # once per server, after its first page: compile the numba code in the background (core.warmup)
    resources.start_warmup()
