"""BeatTok: the endless feed of published tracks and beats."""

from __future__ import annotations

import streamlit as st
from sqlmodel import Session

from components import resources
from components.track_actions import GENRES
from components.track_card import CardData, card_fragment, card_list

BATCH = 10

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


@st.fragment
def _feed_list() -> None:
    from core.library import count_feed, feed, liked_ids

    sort_, genre_, tag_, query_ = st.session_state["feed_filters"]
    batches = int(st.session_state.get("feed_batches", 1))
    user_id = st.session_state.get("user_id")
    with Session(resources.engine()) as session:
        rows = feed(
            session, sort=sort_, genre=genre_, tag=tag_, query=query_, limit=BATCH * batches, offset=0
        )
        cards = [CardData.of(t) for t in rows]
        total = count_feed(session, genre=genre_, tag=tag_, query=query_)
        liked = (
            liked_ids(session, user_id=int(user_id), track_ids=[c.id for c in cards]) if user_id else set()
        )
    if not cards:
        st.info("Nothing here yet. Upload a track and make it public to start the feed!")
        return
    with card_list():
        for card in cards:
            card_fragment(card, liked=card.id in liked, key=f"feed_{card.id}")
    if len(cards) < total:
        st.button(
            f"Load more ({total - len(cards)} more)",
            key="feed_more",
            width="stretch",
            on_click=lambda: st.session_state.update(feed_batches=batches + 1),
        )
    else:
        st.caption("You reached the end. 🎧")


_feed_list()
