"""A shared track, opened from a link ``/?t=<token>``: public and unlisted tracks, for anyone."""

from __future__ import annotations

import streamlit as st
from sqlmodel import Session

from components import resources
from components.frame import in_frame
from components.track_card import CardData, card_fragment
from core.errors import NotFoundError

in_frame()

token = st.query_params.get("t", "")
card = None
if token:
    from core.library import by_share_token, liked_ids

    try:
        with Session(resources.engine()) as session:
            track = by_share_token(session, token=token)
            card = CardData.of(track)
            user_id = st.session_state.get("user_id")
            liked = bool(user_id) and card.id in liked_ids(session, user_id=int(user_id), track_ids=[card.id])
    except NotFoundError:
        card = None

if card is None:
    st.title("Track not found")
    st.warning("This link does not lead to a track. It may have been made private, deleted, or mistyped.")
else:
    st.title("Shared with you")
    card_fragment(card, liked=liked, key=f"share_{card.id}", via_token=True)

if st.button("Explore the BeatTok feed", type="primary"):
    st.query_params.clear()
    st.switch_page("pages/feed.py")
