"""The SQLModel tables of BeatTok Studio (the one models module).

Every table the product uses is declared here, so that Alembic autogenerate sees all of them
(``core/db/migrations``). Timestamps are timezone-aware UTC datetimes (:func:`utcnow`); SQLModel's
``UTCDateTime`` column type rejects naive values and returns UTC-aware ones on every backend.

Tables
------
``users``           accounts (username and email unique, stored lowercase; bcrypt hash).
``login_attempts``  login throttling state per lowercased username, also for names that do not
                    exist, so the throttle reveals nothing about which accounts exist.
``tracks``          published or private audio with precomputed analysis and waveform peaks.
``likes``           one row per (user, track); ``tracks.like_count`` is kept in sync with it in
                    the same transaction by :mod:`core.library`.
``projects``        editor / generator projects (project JSON in storage).
``albums``          album factory results (cover + track titles).
``jobs``            long-running jobs (training, rendering) with progress.

Every foreign key to ``users`` is ``ON DELETE CASCADE``; SQLite enforces it because
:func:`core.db.engine.make_engine` turns ``PRAGMA foreign_keys`` on for every connection.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

#: Job states, in the order a job normally passes through them.
JOB_STATUSES = ("queued", "running", "done", "failed", "cancelled")

#: Where a track came from (the screen that published it).
TRACK_SOURCES = ("upload", "record", "generate", "remix", "kpop", "add_beats", "editor")

#: Stored audio formats of track originals.
AUDIO_FORMATS = ("wav", "mp3", "flac", "ogg", "m4a")


def utcnow() -> datetime:
    """Return the current time as a timezone-aware UTC datetime (the form every table stores).

    Examples
    --------
    >>> utcnow().utcoffset().total_seconds()
    0.0
    """
    return datetime.now(UTC)


class Visibility(StrEnum):
    """Who can see a track: only its owner, anyone with its share link, or everyone (the feed)."""

    private = "private"
    unlisted = "unlisted"
    public = "public"


class User(SQLModel, table=True):
    """An account. ``username`` and ``email`` are unique and always stored lowercase."""

    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=32, unique=True, index=True)
    email: str = Field(max_length=254, unique=True, index=True)
    name: str = Field(max_length=60)
    password_hash: str = Field(max_length=100)
    created_at: datetime = Field(default_factory=utcnow)


class LoginAttempt(SQLModel, table=True):
    """Consecutive failed logins for one lowercased username (whether or not the account exists)."""

    __tablename__ = "login_attempts"

    username: str = Field(max_length=64, primary_key=True)
    failures: int = Field(default=0)
    last_failure_at: datetime | None = Field(default=None)
    locked_until: datetime | None = Field(default=None)


class Track(SQLModel, table=True):
    """A stored piece of audio with its metadata, counters, visibility and share token."""

    __tablename__ = "tracks"
    __table_args__ = (
        Index("ix_tracks_visibility_created_at", "visibility", "created_at"),
        # Covering index of the feed, led by (visibility, published_at): every feed query (new and
        # trending, counts, genre/tag/text filters) is answered from it without reading the wide rows
        # (which carry the waveform JSON). It replaces the plain (visibility, published_at) index.
        Index(
            "ix_tracks_feed",
            "visibility",
            "published_at",
            "created_at",
            "like_count",
            "play_count",
            "download_count",
            "genre",
            "tags",
            "title",
            "artist_name",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    title: str = Field(max_length=120)
    artist_name: str = Field(default="", max_length=120)
    genre: str = Field(default="", max_length=40, index=True)
    #: Comma-joined lowercase tags, e.g. ``"lofi,chill"`` (no spaces around commas).
    tags: str = Field(default="", max_length=400)
    bpm: float | None = Field(default=None)
    key: str | None = Field(default=None, max_length=20)
    duration_s: float = Field(default=0.0)
    loudness_lufs: float | None = Field(default=None)
    #: Storage key of the stored original (upload bytes, or a WAV of rendered audio).
    audio_key: str = Field(max_length=100)
    audio_format: str = Field(default="wav", max_length=8)
    #: Storage key of the MP3 made lazily on the first MP3 download.
    mp3_key: str | None = Field(default=None, max_length=100)
    cover_key: str | None = Field(default=None, max_length=100)
    visibility: Visibility = Field(default=Visibility.private)
    share_token: str = Field(max_length=64, unique=True, index=True)
    play_count: int = Field(default=0)
    download_count: int = Field(default=0)
    like_count: int = Field(default=0)
    source: str = Field(default="upload", max_length=16)
    created_at: datetime = Field(default_factory=utcnow)
    #: Set when the track is first made public; never cleared.
    published_at: datetime | None = Field(default=None)
    # The large JSON columns come last, so scans that read only the counters and dates above
    # (trending, filters) never touch their overflow pages.
    #: JSON list of ``[min, max]`` pairs (~400) of the waveform envelope.
    peaks_json: str = Field(default="[]")
    #: JSON list of beat times in seconds.
    beats_json: str = Field(default="[]")


class Like(SQLModel, table=True):
    """A user's like of a track (at most one per pair, enforced by the database)."""

    __tablename__ = "likes"
    __table_args__ = (UniqueConstraint("user_id", "track_id", name="uq_likes_user_track"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    track_id: int = Field(foreign_key="tracks.id", ondelete="CASCADE", index=True)
    created_at: datetime = Field(default_factory=utcnow)


class Project(SQLModel, table=True):
    """An editor/generator project; its JSON document lives in storage under ``data_key``."""

    __tablename__ = "projects"

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    title: str = Field(max_length=120)
    kind: str = Field(default="editor", max_length=32)
    data_key: str | None = Field(default=None, max_length=100)
    track_id: int | None = Field(default=None, foreign_key="tracks.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Album(SQLModel, table=True):
    """An album factory result: a cover image in storage and a JSON list of track titles."""

    __tablename__ = "albums"

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    name: str = Field(max_length=120)
    artist: str = Field(default="", max_length=120)
    genre: str = Field(default="", max_length=40)
    mood: str = Field(default="", max_length=40)
    style: str = Field(default="", max_length=40)
    cover_key: str | None = Field(default=None, max_length=100)
    titles_json: str = Field(default="[]")
    created_at: datetime = Field(default_factory=utcnow)


class Job(SQLModel, table=True):
    """A long-running job (training, rendering) with its progress; ``status`` is one of JOB_STATUSES."""

    __tablename__ = "jobs"

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int | None = Field(default=None, foreign_key="users.id", ondelete="CASCADE", index=True)
    kind: str = Field(max_length=32)
    status: str = Field(default="queued", max_length=16)
    progress: float = Field(default=0.0)
    message: str = Field(default="", max_length=500)
    params_json: str = Field(default="{}")
    result_key: str | None = Field(default=None, max_length=100)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


#: Every column that holds a :mod:`core.storage` key, paired with the owner column of its table.
#: Account deletion (:mod:`core.auth`) and the orphan sweep (:mod:`core.maintenance`) both read it;
#: a new column holding a storage key must be added here, or the sweep will delete its files.
#: Keys are also mentioned *inside* project documents and ``Job.params_json`` (editor stems):
#: those readers scan that text with :func:`core.storage.find_keys` as well.
STORAGE_KEY_COLUMNS = (
    (Track.audio_key, Track.owner_id),
    (Track.mp3_key, Track.owner_id),
    (Track.cover_key, Track.owner_id),
    (Project.data_key, Project.owner_id),
    (Album.cover_key, Album.owner_id),
    (Job.result_key, Job.owner_id),
)
