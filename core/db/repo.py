"""Plain queries taking a ``Session`` (no authorization here: :mod:`core.library` checks it).

The feed queries run entirely in SQL so they scale with the number of tracks:

- ``sort="new"``: public tracks, newest first by ``published_at`` (index ``(visibility, published_at)``).
- ``sort="trending"``: ``(likes * 2 + plays * 0.5 + downloads) / (age_hours + 2) ** 1.5`` with
  ``age_hours`` counted from ``published_at``, computed by the database for every public track.
- filters: ``genre`` (exact, case-insensitive), ``tag`` (an exact member of the comma-joined tag
  list), ``query`` (case-insensitive substring of title or artist; ``%``, ``_`` and ``\\`` in it
  are matched literally).

:func:`seed_fake_tracks` fills the table with fake rows for benchmarks and tests.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Float, and_, case, cast, func, insert, literal, or_, select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from core.db.models import Like, Track, Visibility, utcnow
from core.errors import InputError

#: Feed orders.
FEED_SORTS = ("new", "trending")
#: Largest feed page.
MAX_PAGE = 1000
#: Longest text search / tag / genre filter accepted.
MAX_FILTER_LEN = 100

_ESCAPE = "\\"


def escape_like(text: str) -> str:
    """Escape ``%``, ``_`` and ``\\`` so ``text`` matches literally in ``LIKE ... ESCAPE '\\'``.

    Examples
    --------
    >>> escape_like("100%_a")
    '100\\\\%\\\\_a'
    """
    return text.replace(_ESCAPE, _ESCAPE * 2).replace("%", _ESCAPE + "%").replace("_", _ESCAPE + "_")


def _filter_text(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(f"Feed {what} filter must be text, got {type(value).__name__}.")
    value = value.strip().lower()
    if len(value) > MAX_FILTER_LEN:
        raise InputError(
            f"Feed {what} filter is {len(value)} characters long; the limit is {MAX_FILTER_LEN}."
        )
    return value or None


def feed_conditions(
    *, genre: str | None = None, tag: str | None = None, query: str | None = None
) -> list[ColumnElement[bool]]:
    """The WHERE conditions of the public feed with its filters (inputs validated here)."""
    genre = _filter_text(genre, "genre")
    tag = _filter_text(tag, "tag")
    query = _filter_text(query, "search")
    conds: list[ColumnElement[bool]] = [Track.visibility == Visibility.public]
    if genre:
        conds.append(func.lower(Track.genre) == genre)
    if tag:
        wrapped = literal(",") + Track.tags + literal(",")
        conds.append(wrapped.like(f"%,{escape_like(tag)},%", escape=_ESCAPE))
    if query:
        pattern = f"%{escape_like(query)}%"
        conds.append(
            or_(
                func.lower(Track.title).like(pattern, escape=_ESCAPE),
                func.lower(Track.artist_name).like(pattern, escape=_ESCAPE),
            )
        )
    return conds


def trending_score(dialect_name: str, now: datetime) -> ColumnElement[float]:
    """SQL expression of the trending score of a track at time ``now`` (UTC)."""
    published = func.coalesce(Track.published_at, Track.created_at)
    if dialect_name == "sqlite":
        # SQLAlchemy stores SQLite datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC); julianday reads it.
        now_text = now.strftime("%Y-%m-%d %H:%M:%S.%f")
        age_h = (func.julianday(literal(now_text)) - func.julianday(published)) * 24.0
    else:
        age_h = func.extract("epoch", literal(now) - published) / 3600.0
    age_h = case((age_h > 0, age_h), else_=0.0)
    engagement = (
        cast(Track.like_count, Float) * 2.0
        + cast(Track.play_count, Float) * 0.5
        + cast(Track.download_count, Float)
    )
    return engagement / func.power(age_h + 2.0, 1.5)


def _page(limit: int, offset: int) -> tuple[int, int]:
    for what, value in (("limit", limit), ("offset", offset)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise InputError(f"Feed {what} must be an integer, got {value!r}.")
    if not 1 <= limit <= MAX_PAGE:
        raise InputError(f"Feed limit {limit} is out of range: use 1-{MAX_PAGE}.")
    if offset < 0:
        raise InputError(f"Feed offset {offset} is out of range: use 0 or more.")
    return limit, offset


def feed_page(
    session: Session,
    *,
    sort: str = "new",
    genre: str | None = None,
    tag: str | None = None,
    query: str | None = None,
    limit: int = 10,
    offset: int = 0,
    now: datetime | None = None,
) -> list[Track]:
    """One page of public tracks.

    Parameters
    ----------
    session : sqlmodel.Session
    sort : {"new", "trending"}
    genre, tag, query : str, optional
        Filters (see the module docstring).
    limit : int
        1 to :data:`MAX_PAGE` rows.
    offset : int
        Rows to skip.
    now : datetime, optional
        Reference time of the trending score (default: now).
    """
    ids = feed_ids(session, sort=sort, genre=genre, tag=tag, query=query, limit=limit, offset=offset, now=now)
    return public_tracks(session, track_ids=ids)


def feed_ids(
    session: Session,
    *,
    sort: str = "new",
    genre: str | None = None,
    tag: str | None = None,
    query: str | None = None,
    limit: int = 10,
    offset: int = 0,
    now: datetime | None = None,
) -> list[int]:
    """The ids of one page of public tracks, in feed order (parameters as :func:`feed_page`).

    Ranked from the covering index alone: rows skipped by the offset are never read in full.
    """
    if sort not in FEED_SORTS:
        raise InputError(f"Feed sort {sort!r} is not supported: use one of {', '.join(FEED_SORTS)}.")
    limit, offset = _page(limit, offset)
    conds = feed_conditions(genre=genre, tag=tag, query=query)
    if sort == "new":
        order = (Track.published_at.desc(), Track.id.desc())
    else:
        score = trending_score(session.get_bind().dialect.name, now or utcnow())
        order = (score.desc(), Track.published_at.desc(), Track.id.desc())
    ranked = select(Track.id).where(and_(*conds)).order_by(*order).limit(limit).offset(offset)
    return list(session.execute(ranked).scalars())


def public_tracks(session: Session, *, track_ids: Sequence[int]) -> list[Track]:
    """The rows of ``track_ids`` that the feed may still show, in the given order.

    A track made private or deleted since its id was ranked is left out.
    """
    ids = [int(i) for i in track_ids]
    if not ids:
        return []
    conds = feed_conditions(genre=None, tag=None, query=None)
    stmt = select(Track).where(and_(Track.id.in_(ids), *conds))
    rows = {t.id: t for t in session.execute(stmt).scalars()}
    return [rows[i] for i in ids if i in rows]


def count_feed(
    session: Session, *, genre: str | None = None, tag: str | None = None, query: str | None = None
) -> int:
    """Number of public tracks matching the filters."""
    conds = feed_conditions(genre=genre, tag=tag, query=query)
    return int(session.execute(select(func.count()).select_from(Track).where(and_(*conds))).scalar_one())


def user_tracks(session: Session, *, owner_id: int) -> list[Track]:
    """All tracks of ``owner_id`` (every visibility), newest first."""
    stmt = select(Track).where(Track.owner_id == owner_id).order_by(Track.created_at.desc(), Track.id.desc())
    return list(session.execute(stmt).scalars())


def liked_track_ids(session: Session, *, user_id: int, track_ids: Sequence[int]) -> set[int]:
    """The subset of ``track_ids`` that ``user_id`` has liked."""
    ids = [int(i) for i in track_ids]
    if not ids:
        return set()
    stmt = select(Like.track_id).where(Like.user_id == user_id, Like.track_id.in_(ids))
    return set(session.execute(stmt).scalars())


_FAKE_WORDS = (
    *("midnight", "neon", "summer", "echo", "velvet", "golden", "paper", "city", "river", "lights"),
    *("heart", "ocean", "dream", "fire", "shadow", "sugar", "rain", "satellite", "drive", "moon"),
)
_FAKE_ARTISTS = ("Luna Park", "DJ Kettle", "Mira", "The Static", "Hanbit", "Oslo Nights", "Juno B")
_FAKE_GENRES = ("pop", "hiphop", "lofi", "kpop", "house", "rock", "jazz", "trap")
_FAKE_TAGS = ("chill", "dance", "study", "night", "drums", "vocal", "remix", "beat", "summer")


def seed_fake_tracks(session: Session, *, n: int, owner_id: int, seed: int = 0) -> int:
    """Insert ``n`` fake track rows for benchmarks and tests (no audio files are written).

    FOR BENCHMARKS AND TESTS ONLY: the rows have plausible metadata, counters, dates within the last
    60 days, a realistic ~400-pair waveform envelope and a well-formed ``audio_key`` that points at no
    file, so downloading one fails. The counters are random and no ``likes`` rows back ``like_count``.
    About 80 % are public, 10 % unlisted, 10 % private. Rows are inserted with one executemany per
    1,000 rows and committed in one transaction.

    Parameters
    ----------
    session : sqlmodel.Session
    n : int
        Number of rows, 0-1,000,000.
    owner_id : int
        Existing user id that owns the rows.
    seed : int
        Seed of the metadata (tokens are always random, so seeding twice is fine).

    Returns
    -------
    int
        Number of rows inserted.
    """
    import numpy as np

    if not isinstance(n, int) or not 0 <= n <= 1_000_000:
        raise InputError(f"n={n!r} is out of range: use 0-1000000.")
    rng = np.random.default_rng(seed)
    now = utcnow()
    envelope = np.abs(np.sin(np.linspace(0, 12, 400))) * 0.8
    peaks = json.dumps([[round(-float(v), 3), round(float(v), 3)] for v in envelope], separators=(",", ":"))
    visibilities = (Visibility.private, Visibility.unlisted, Visibility.public)
    vis = rng.choice(3, size=n, p=[0.1, 0.1, 0.8])
    age_min = rng.uniform(0, 60 * 24 * 60, size=n)
    words = rng.integers(0, len(_FAKE_WORDS), size=(n, 2))
    artists = rng.integers(0, len(_FAKE_ARTISTS), size=n)
    genres = rng.integers(0, len(_FAKE_GENRES), size=n)
    tag_masks = rng.random((n, len(_FAKE_TAGS))) < 0.15
    bpms = rng.integers(70, 170, size=n)
    durations = rng.uniform(30, 240, size=n)
    plays = rng.integers(0, 5000, size=n)
    downloads = rng.integers(0, 300, size=n)
    likes = rng.integers(0, 800, size=n)
    batch: list[dict] = []
    done = 0
    for i in range(n):
        created = now - timedelta(minutes=float(age_min[i]))
        visibility = visibilities[int(vis[i])]
        batch.append(
            {
                "owner_id": owner_id,
                "title": f"{_FAKE_WORDS[words[i, 0]].title()} {_FAKE_WORDS[words[i, 1]].title()} {i}",
                "artist_name": _FAKE_ARTISTS[artists[i]],
                "genre": _FAKE_GENRES[genres[i]],
                "tags": ",".join(t for t, on in zip(_FAKE_TAGS, tag_masks[i], strict=True) if on),
                "bpm": float(bpms[i]),
                "key": "A minor",
                "duration_s": round(float(durations[i]), 2),
                "loudness_lufs": -14.0,
                "audio_key": f"{secrets.token_hex(1)}/{secrets.token_hex(16)}.wav",
                "audio_format": "wav",
                "visibility": visibility,
                "share_token": secrets.token_urlsafe(16),
                "play_count": int(plays[i]),
                "download_count": int(downloads[i]),
                "like_count": int(likes[i]),
                "source": "generate",
                "created_at": created,
                "published_at": created if visibility is Visibility.public else None,
                "peaks_json": peaks,
                "beats_json": "[]",
            }
        )
        if len(batch) >= 1000:
            session.execute(insert(Track), batch)
            done += len(batch)
            batch = []
    if batch:
        session.execute(insert(Track), batch)
        done += len(batch)
    session.commit()
    return done
