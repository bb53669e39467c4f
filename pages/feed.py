"""BeatTok: the endless feed of published tracks and beats."""

from __future__ import annotations

import streamlit as st
from sqlmodel import Session

from components import resources
from components.frame import in_frame
from components.track_actions import GENRES
from components.track_card import CardData, card_fragment, card_list

in_frame()

# the first batch is short: it is what a visitor waits for (the whole first page drawn in Chromium
# after a restart: 3.6 s with 10 cards, 3.2 s with 5); "Load more" then adds 10 at a time
FIRST_BATCH = 5
BATCH = 10
# track ids ranked per database query as the user scrolls
RANK_CHUNK = 100

st.title("BeatTok")
st.caption("Fresh tracks and beats from small artists. Play, like, download, share.")

with st.container(horizontal=True, vertical_alignment="bottom"):
    sort = st.segmented_control("Sort", ["New", "Trending"], default="New", key="feed_sort") or "New"
    genre = st.selectbox("Genre", ["All"] + [g for g in GENRES if g], key="feed_genre")
    tag = st.text_input("Tag", key="feed_tag", placeholder="e.g. chill")
    query = st.text_input("Search", key="feed_query", placeholder="title or artist")

filters = (
    sort.lower(),
    None if genre == "All" else genre,
    tag.strip().lstrip("#") or None,
    query.strip() or None,
)
if st.session_state.get("feed_filters") != filters:
    st.session_state["feed_filters"] = filters
    st.session_state["feed_batches"] = 1
# Each full run of the page ranks the feed afresh; "Load more" continues this ranking (a snapshot of
# track ids, extended as the user scrolls), so a track published or liked meanwhile never shows twice.
st.session_state["feed_snapshot"] = {"ids": [], "offset": 0, "done": False}


def _bounds(index: int) -> tuple[int, int]:
    """Positions ``[start, end)`` of batch ``index`` in the ranking."""
    start = 0 if index == 0 else FIRST_BATCH + BATCH * (index - 1)
    return start, start + (FIRST_BATCH if index == 0 else BATCH)


def _batch_ids(index: int) -> tuple[list[int], bool]:
    """The track ids of batch ``index`` and whether more follow, from the session's ranking snapshot."""
    from core.library import feed_ids

    sort_, genre_, tag_, query_ = st.session_state["feed_filters"]
    snap = st.session_state["feed_snapshot"]
    start, end = _bounds(index)
    while len(snap["ids"]) <= end and not snap["done"]:
        with Session(resources.engine()) as session:
            ranked = feed_ids(
                session, sort=sort_, genre=genre_, tag=tag_, query=query_,
                limit=RANK_CHUNK, offset=snap["offset"],
            )  # fmt: skip
        seen = set(snap["ids"])
        snap["ids"] += [i for i in ranked if i not in seen]
        snap["offset"] += len(ranked)
        snap["done"] = len(ranked) < RANK_CHUNK
    return snap["ids"][start:end], len(snap["ids"]) > end


def _remaining(index: int) -> int:
    """How many tracks follow batch ``index``: counted in the snapshot once it holds the whole ranking."""
    from core.library import count_feed

    snap = st.session_state["feed_snapshot"]
    shown = _bounds(index)[1]
    if snap["done"]:
        return len(snap["ids"]) - shown
    _, genre_, tag_, query_ = st.session_state["feed_filters"]
    with Session(resources.engine()) as session:
        return max(count_feed(session, genre=genre_, tag=tag_, query=query_) - shown, 1)


@st.fragment
def _feed_batch(index: int) -> None:
    """Batch ``index`` of the feed and, once loaded, the next batch nested in this fragment.

    "Load more" reruns only the last batch's fragment: its own cards and the new ones, not every card
    loaded before (a rerun of the whole list grew from 1 s at 20 cards to 2.7 s at 130).
    """
    from core.library import liked_ids, public_tracks

    ids, more = _batch_ids(index)
    user_id = st.session_state.get("user_id")
    with Session(resources.engine()) as session:
        cards = [CardData.of(t) for t in public_tracks(session, track_ids=ids)]
        liked = (
            liked_ids(session, user_id=int(user_id), track_ids=[c.id for c in cards]) if user_id else set()
        )
    if index == 0 and not cards and not more:
        st.info("Nothing here yet. Upload a track and make it public to start the feed!")
        return
    with card_list():
        for card in cards:
            card_fragment(card, liked=card.id in liked, key=f"feed_{card.id}")
    if index + 1 < int(st.session_state.get("feed_batches", 1)) and more:
        _feed_batch(index + 1)
    elif more:
        st.button(
            f"Load more ({_remaining(index)} more)",
            key="feed_more",
            width="stretch",
            on_click=lambda: st.session_state.update(feed_batches=index + 2),
        )
    else:
        st.caption("You reached the end. 🎧")


_feed_batch(0)
