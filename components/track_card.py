"""A BeatTok track card: cover, title, artist, badges, waveform, lazy player, like, download, share."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import streamlit as st
from sqlmodel import Session

from components import resources
from components.text import md_escape
from core.errors import StudioError

# cover thumbnails: the card draws its cover about 200 px wide; twice that stays sharp on HiDPI screens
CARD_COVER_PX = 400


@dataclass(frozen=True)
class CardData:
    """A plain snapshot of a track row, safe to keep after its DB session closes."""

    id: int
    title: str
    artist: str
    genre: str
    tags: tuple[str, ...]
    bpm: float | None
    key: str | None
    duration_s: float
    like_count: int
    play_count: int
    download_count: int
    share_token: str
    visibility: str
    audio_format: str
    cover_key: str | None
    peaks_json: str
    beats_json: str | None

    @classmethod
    def of(cls, t) -> CardData:
        """Snapshot a ``core.db.models.Track``."""
        vis = getattr(t.visibility, "value", t.visibility)
        return cls(
            id=t.id,
            title=t.title,
            artist=t.artist_name or "",
            genre=t.genre or "",
            tags=tuple(x for x in (t.tags or "").split(",") if x),
            bpm=t.bpm,
            key=t.key,
            duration_s=float(t.duration_s or 0.0),
            like_count=int(t.like_count or 0),
            play_count=int(t.play_count or 0),
            download_count=int(t.download_count or 0),
            share_token=t.share_token,
            visibility=str(vis),
            audio_format=t.audio_format or "wav",
            cover_key=t.cover_key,
            peaks_json=t.peaks_json or "[]",
            beats_json=t.beats_json,
        )


def share_url(token: str) -> str:
    """The absolute share link of a track for the current browser's host."""
    base = None
    try:
        base = st.context.url
    except Exception:
        base = None
    base = (base or "http://localhost:8501/").split("?")[0]
    root = base.split("/", 3)
    origin = "/".join(root[:3]) if len(root) >= 3 else base.rstrip("/")
    return f"{origin}/?t={token}"


@st.cache_data(show_spinner=False, max_entries=256)
def _cover(cover_key: str | None, title: str, artist: str) -> bytes:
    """The card's cover as a small JPEG (a stored cover can be a 1.6 MB PNG; the card shows ~200 px)."""
    from core.covers_placeholder import card_cover

    return card_cover(
        storage=resources.storage(), cover_key=cover_key, title=title, artist=artist,
        size=CARD_COVER_PX, cache=resources.cover_cache(),
    )  # fmt: skip


def _badges(card: CardData) -> str:
    parts = []
    if card.genre:
        parts.append(f":violet-badge[{md_escape(card.genre)}]")
    if card.bpm:
        parts.append(f":blue-badge[{card.bpm:.0f} bpm]")
    if card.key:
        parts.append(f":green-badge[{md_escape(card.key)}]")
    mins, secs = divmod(round(card.duration_s), 60)
    parts.append(f":gray-badge[{mins}:{secs:02d}]")
    parts += [f":orange-badge[#{md_escape(t)}]" for t in card.tags[:5]]
    return " ".join(parts)


class _AudioSource:
    """Fetches a card's audio for one viewer, re-checking access on every call.

    It holds the engine, storage and viewer captured during the script run, so the deferred
    download callables (run by the server when the browser asks, outside any script run) never
    touch ``st.session_state``.
    """

    def __init__(self, card: CardData, *, via_token: bool) -> None:
        viewer = st.session_state.get("user_id")
        self.card, self.via_token = card, via_token
        self.viewer = int(viewer) if viewer else None
        self.engine, self.storage = resources.engine(), resources.storage()

    def get(self, fmt: str) -> tuple[bytes, str, str]:
        """(bytes, file name, mime type) of the track in ``fmt`` ("original" or "mp3")."""
        from core.library import audio_bytes

        with Session(self.engine) as session:
            return audio_bytes(session, self.storage, track=self._track(session), fmt=fmt)

    def _track(self, session: Session):
        """The track, if this viewer may still see it (raises NotFoundError otherwise)."""
        from core.library import by_share_token, get_for_viewer

        if self.via_token:
            return by_share_token(session, token=self.card.share_token)
        return get_for_viewer(session, track_id=self.card.id, viewer_id=self.viewer)

    def play(self) -> tuple[bytes, str]:
        """(MP3, mime type) the player gets: loud tracks turned down (:func:`core.library.playback_bytes`)."""
        from core.library import playback_bytes

        with Session(self.engine) as session:
            return playback_bytes(
                session, self.storage, track=self._track(session), cache=resources.playback_cache()
            )

    def download(self, fmt: str) -> bytes:
        """The file for a download button; counts the download."""
        from core.library import record_download

        data = self.get(fmt)[0]
        with Session(self.engine) as session:
            record_download(session, track_id=self.card.id)
        return data


def _start_playing(track_id: int, state_key: str) -> None:
    from core.library import record_play

    st.session_state[state_key] = True
    with Session(resources.engine()) as session:
        record_play(session, track_id=track_id)


def _like(track_id: int) -> None:
    user_id = st.session_state.get("user_id")
    if not user_id:
        st.toast("Log in to like tracks.")
        return
    from core.library import toggle_like

    try:
        with Session(resources.engine()) as session:
            toggle_like(session, track_id=track_id, user_id=int(user_id))
    except StudioError as exc:
        st.toast(str(exc))


def track_card(card: CardData, *, liked: bool, key: str, via_token: bool = False) -> None:
    """Render one card (call inside a fragment so its buttons rerun only the card)."""
    with st.container(border=True):
        left, right = st.columns([1, 4], vertical_alignment="top")
        left.image(_cover(card.cover_key, card.title, card.artist), width="stretch", output_format="JPEG")
        with right:
            st.markdown(f"#### {md_escape(card.title)}")
            st.caption(f"by {card.artist}" if card.artist else "unknown artist")
            st.markdown(_badges(card))
            # 800 x 100 units: about 80 px high on a desktop card, 40 px on a phone (cards stack there)
            st.image(
                resources.track_waveform(card.id, card.peaks_json, card.beats_json, card.duration_s, 100),
                width="stretch",
            )
            _player(card, key=key, via_token=via_token)
            _actions(card, liked=liked, key=key, via_token=via_token)


def _player(card: CardData, *, key: str, via_token: bool) -> None:
    state_key = f"{key}_playing"
    if not st.session_state.get(state_key):
        st.button("▶ Play", key=f"{key}_play", on_click=_start_playing, args=(card.id, state_key))
        return
    try:
        # the first play of a track makes its MP3 (about 9 s for 10 minutes); the spinner shows after 0.5 s
        with st.spinner("Preparing playback…"):
            data, mime = _AudioSource(card, via_token=via_token).play()
    except StudioError as exc:
        st.error(str(exc))
        return
    st.audio(data, format=mime, autoplay=True)


def _actions(card: CardData, *, liked: bool, key: str, via_token: bool) -> None:
    c1, c2, c3, c4 = st.columns(4)
    heart = "♥" if liked else "♡"
    c1.button(f"{heart} {card.like_count}", key=f"{key}_like", help="Like", on_click=_like, args=(card.id,))
    source = _AudioSource(card, via_token=via_token)
    base = "".join(ch if ch.isalnum() or ch in "-_ " else "_" for ch in card.title).strip() or "beattok"
    c2.download_button(
        f"⬇ {card.audio_format.upper()}",
        data=lambda: source.download("original"),
        file_name=f"{base}.{card.audio_format}",
        mime="application/octet-stream",
        key=f"{key}_dl",
        on_click="ignore",
    )
    c3.download_button(
        "⬇ MP3",
        data=lambda: source.download("mp3"),
        file_name=f"{base}.mp3",
        mime="audio/mpeg",
        key=f"{key}_dlmp3",
        on_click="ignore",
    )
    with c4.popover("🔗 Share"):
        if card.visibility == "private":
            st.write("This track is private. Make it unlisted or public in your library to share it.")
        else:
            st.caption("Copy the link:")
            st.code(share_url(card.share_token), language=None)


_LIST_FLAG = "_card_list_running"


@contextmanager
def card_list() -> Iterator[None]:
    """Mark a full render of a list of cards (so cards use the data they are given)."""
    st.session_state[_LIST_FLAG] = True
    try:
        yield
    finally:
        st.session_state[_LIST_FLAG] = False


@st.fragment
def card_fragment(card: CardData, *, liked: bool, key: str, via_token: bool = False) -> None:
    """A card in its own fragment: a like or play reruns only this card, reloading its row."""
    if not st.session_state.get(_LIST_FLAG):  # rerun of this card alone: refresh its numbers
        from core.db.models import Track
        from core.library import liked_ids

        user_id = st.session_state.get("user_id")
        with Session(resources.engine()) as session:
            row = session.get(Track, card.id)
            if row is None:
                st.info("This track was removed.")
                return
            card = CardData.of(row)
            liked = bool(user_id) and card.id in liked_ids(session, user_id=int(user_id), track_ids=[card.id])
    track_card(card, liked=liked, key=key, via_token=via_token)
