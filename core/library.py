"""The track library: publishing, the feed, visibility, likes, share links, downloads, albums.

Authorization lives here, not only in the UI:

- a *private* track is seen only by its owner; an *unlisted* one by its owner and anyone holding its
  share link; a *public* one by everyone (and it is listed in the feed);
- :func:`get_for_viewer` and :func:`by_share_token` raise the same :class:`NotFoundError` message for
  unknown, deleted and not-visible tracks, so probing ids or tokens reveals nothing;
- only the owner may edit, delete, re-cover a track or rotate its link (:class:`ForbiddenError` for a
  visible track of someone else, :class:`NotFoundError` for an invisible one).

Storage discipline: files are written before the row that points at them is committed; if anything
fails before the commit succeeds, the new files are deleted (nothing is stored half-way). Files of
deleted rows are removed after the deleting transaction commits. Every stored file belongs to
exactly one row.

User text (titles, artist names, tags) is stored verbatim as plain text: HTML has no special
meaning here, and the UI must render it as text.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import secrets
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np
from sqlalchemy import and_, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from core.audio.checks import check_duration, check_signal
from core.config import get_settings
from core.db import repo
from core.db.models import TRACK_SOURCES, Album, Like, Track, User, Visibility, utcnow
from core.errors import ForbiddenError, InputError, LimitError, NotFoundError

#: Message of every "cannot see this track" error (unknown, deleted, private, wrong token).
TRACK_NOT_FOUND = "That track does not exist or is not available."

TITLE_MAX = 120
ARTIST_MAX = 120
GENRE_MAX = 40
TAGS_MAX = 10
TAG_MAX = 30
KEY_MAX = 20
MAX_BEATS = 20_000
MAX_COVER_BYTES = 10 * 1024 * 1024
ALBUM_TITLES_MAX = 50
#: Points of the stored waveform envelope.
PEAK_POINTS = 400
#: Formats a stored original may have.
ORIGINAL_FORMATS = ("wav", "mp3", "flac", "ogg", "m4a", "aac")
DOWNLOAD_FORMATS = ("original", "mp3")
MIME_TYPES = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "m4a": "audio/mp4",
    "aac": "audio/aac",
}
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- validation


def _has_control(text: str) -> bool:
    return any(unicodedata.category(c) == "Cc" for c in text)


def _text(value, *, what: str, max_len: int, min_len: int = 0) -> str:
    """Strip and check a single-line text field."""
    if not isinstance(value, str):
        raise InputError(f"{what} must be text, got {type(value).__name__}.")
    value = value.strip()
    if not min_len <= len(value) <= max_len:
        raise InputError(f"{what} must be {min_len}-{max_len} characters long, got {len(value)}.")
    if _has_control(value):
        raise InputError(f"{what} must not contain control characters such as line breaks or tabs.")
    return value


def validate_title(title: str) -> str:
    """A track title: 1-120 characters after stripping, one line, stored verbatim.

    Examples
    --------
    >>> validate_title("  <b>Hi</b>  ")
    '<b>Hi</b>'
    """
    return _text(title, what="Title", max_len=TITLE_MAX, min_len=1)


def validate_tags(tags: Iterable[str] | str | None) -> list[str]:
    """Normalise tags: lowercased, stripped, leading ``#`` removed, duplicates dropped.

    ``tags`` is a sequence of strings or one comma-separated string; at most 10 tags of at most
    30 characters each, without commas or control characters.

    Examples
    --------
    >>> validate_tags(" Chill, #LoFi ,chill,, ")
    ['chill', 'lofi']
    """
    if tags is None:
        return []
    if isinstance(tags, str):
        items = tags.split(",")
    elif isinstance(tags, Iterable) and not isinstance(tags, bytes | bytearray | dict):
        items = list(tags)
    else:
        raise InputError(f"Tags must be a list of text, got {type(tags).__name__}.")
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise InputError(f"Each tag must be text, got {type(item).__name__}.")
        tag = item.strip().lstrip("#").strip().lower()
        if not tag:
            continue
        if len(tag) > TAG_MAX:
            raise InputError(f"Tag {tag[:40]!r} is {len(tag)} characters long; the limit is {TAG_MAX}.")
        if "," in tag or _has_control(tag):
            raise InputError(f"Tag {tag!r} must not contain commas or control characters.")
        if tag not in out:
            out.append(tag)
    if len(out) > TAGS_MAX:
        raise InputError(f"{len(out)} tags given; the limit is {TAGS_MAX}.")
    return out


def validate_visibility(visibility: Visibility | str) -> Visibility:
    """Return the :class:`Visibility` for ``"private"``, ``"unlisted"`` or ``"public"``."""
    try:
        return Visibility(visibility)
    except ValueError:
        allowed = ", ".join(v.value for v in Visibility)
        raise InputError(f"Visibility {visibility!r} is not valid: use one of {allowed}.") from None


def _check_png(data, what: str = "Cover") -> bytes:
    if not isinstance(data, bytes | bytearray):
        raise InputError(f"{what} image must be PNG bytes, got {type(data).__name__}.")
    if len(data) > MAX_COVER_BYTES:
        raise LimitError(
            f"{what} image is {len(data) / 1e6:.1f} MB; the limit is {MAX_COVER_BYTES / 1e6:.0f} MB."
        )
    if not bytes(data[:8]) == _PNG_MAGIC:
        raise InputError(f"{what} image is not a PNG file.")
    return bytes(data)


def _optional_float(value, *, what: str, lo: float, hi: float) -> float | None:
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a number, got {value!r}.") from None
    if not math.isfinite(v) or not lo <= v <= hi:
        raise InputError(f"{what} {value!r} is out of range: use {lo:g}-{hi:g}.")
    return v


def _beats(beats) -> list[float] | None:
    if beats is None:
        return None
    try:
        arr = np.asarray(beats, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise InputError("Beats must be a list of times in seconds.") from None
    if arr.size > MAX_BEATS or not np.isfinite(arr).all() or (arr < 0).any():
        raise InputError(f"Beats must be at most {MAX_BEATS} finite, non-negative times in seconds.")
    return [round(float(b), 3) for b in np.sort(arr)]


# --------------------------------------------------------------------------- helpers


def compute_peaks(y: np.ndarray, *, points: int = PEAK_POINTS) -> np.ndarray:
    """Waveform envelope: ``(points, 2)`` float32 ``[min, max]`` over all channels per time slice.

    Examples
    --------
    >>> compute_peaks(np.array([[0.0, 0.5, -0.25, 1.0]], np.float32), points=2).tolist()
    [[0.0, 0.5], [-0.25, 1.0]]
    """
    y = np.atleast_2d(np.asarray(y, dtype=np.float32))
    n = y.shape[1]
    if n == 0:
        return np.zeros((0, 2), np.float32)
    points = max(1, min(points, n))
    starts = (np.arange(points, dtype=np.int64) * n) // points
    lo = np.minimum.reduceat(y.min(axis=0), starts)
    hi = np.maximum.reduceat(y.max(axis=0), starts)
    return np.clip(np.stack([lo, hi], axis=1), -1.0, 1.0).astype(np.float32)


def peaks(track: Track) -> np.ndarray:
    """The stored waveform envelope of ``track`` as a ``(points, 2)`` float32 ``[min, max]`` array."""
    try:
        arr = np.asarray(json.loads(track.peaks_json or "[]"), dtype=np.float32)
    except (ValueError, TypeError):
        return np.zeros((0, 2), np.float32)
    return arr.reshape(-1, 2) if arr.size else np.zeros((0, 2), np.float32)


def _delete_quietly(storage, keys: Iterable[str | None]) -> None:
    for key in keys:
        if key:
            with contextlib.suppress(Exception):
                storage.delete(key)


@contextlib.contextmanager
def _commit_with_files(session: Session, storage) -> Iterator[Callable[..., str]]:
    """Run a block that stores new files and changes rows, then commit (the storage discipline above).

    Yields ``put(data, *, suffix) -> key``, :meth:`core.storage.Storage.put` remembering the key. If the
    block or the commit fails, the session is rolled back and every file the block stored is deleted.
    """
    written: list[str] = []

    def put(data: bytes, *, suffix: str) -> str:
        key = storage.put(data, suffix=suffix)
        written.append(key)
        return key

    try:
        yield put
        session.commit()
    except BaseException:
        session.rollback()
        _delete_quietly(storage, written)
        raise


def _user_or_404(session: Session, user_id) -> User:
    user = session.get(User, user_id) if isinstance(user_id, int) and not isinstance(user_id, bool) else None
    if user is None:
        raise NotFoundError(f"Account {user_id!r} does not exist.")
    return user


def _track(session: Session, track_id) -> Track | None:
    if not isinstance(track_id, int | np.integer) or isinstance(track_id, bool):
        return None
    return session.get(Track, int(track_id))


def _can_see(track: Track, viewer_id: int | None, *, unlisted_ok: bool = False) -> bool:
    if viewer_id is not None and track.owner_id == viewer_id:
        return True
    if track.visibility == Visibility.public:
        return True
    return unlisted_ok and track.visibility == Visibility.unlisted


def _owned(session: Session, track_id, user_id) -> Track:
    """The track if ``user_id`` owns it; NotFoundError if they cannot see it, ForbiddenError otherwise."""
    track = _track(session, track_id)
    if track is None or not _can_see(track, user_id):
        raise NotFoundError(TRACK_NOT_FOUND)
    if track.owner_id != user_id:
        raise ForbiddenError("Only the owner of this track can change it.")
    return track


def _finish(session: Session, obj):
    session.commit()
    session.refresh(obj)
    return obj


# --------------------------------------------------------------------------- publishing


def publish_audio(
    session: Session,
    storage,
    *,
    owner_id: int,
    y: np.ndarray,
    sr: int,
    title: str,
    artist_name: str | None = None,
    genre: str = "",
    tags: Sequence[str] | str = (),
    visibility: Visibility | str = "private",
    source: str = "upload",
    original: bytes | None = None,
    original_ext: str | None = None,
    bpm: float | None = None,
    key: str | None = None,
    cover_png: bytes | None = None,
    beats: Sequence[float] | None = None,
) -> Track:
    """Store audio in the user's library and return the committed :class:`Track`.

    Stores ``original`` (the uploaded bytes) when given, else a WAV of ``y``; precomputes the waveform
    envelope from ``y``; runs :func:`core.audio.analysis.quick_analysis` when ``bpm`` or ``key`` is
    missing and no ``beats`` are given (a caller that passes ``beats`` has analysed the audio
    already, so a missing tempo or key then means "none found"; otherwise only the loudness is
    measured); stores ``cover_png`` or a placeholder cover.

    Parameters
    ----------
    session : sqlmodel.Session
    storage : core.storage.Storage
    owner_id : int
        Id of an existing account.
    y : np.ndarray
        The audio, float ``(channels, samples)`` (1-D is mono), at most the configured duration.
    sr : int
        Sample rate of ``y``, 8000-192000 Hz.
    title : str
        1-120 characters; stored verbatim (HTML is not special).
    artist_name : str, optional
        Up to 120 characters; defaults to the owner's display name.
    genre : str
        Up to 40 characters.
    tags : sequence of str or str
        Up to 10 tags of up to 30 characters (or one comma-separated string); lowercased.
    visibility : {"private", "unlisted", "public"}
    source : str
        One of :data:`core.db.models.TRACK_SOURCES`.
    original, original_ext : bytes and str, optional
        The uploaded file and its format (one of :data:`ORIGINAL_FORMATS`).
    bpm, key, beats : optional
        Known analysis results (tempo in BPM, key like ``"A minor"``, beat times in seconds).
    cover_png : bytes, optional
        PNG artwork (at most 10 MB).

    Returns
    -------
    Track
        The committed row (attributes loaded).

    Raises
    ------
    InputError, LimitError
        An argument is invalid (nothing is stored).
    NotFoundError
        ``owner_id`` is not an account.
    """
    clean_title = validate_title(title)
    artist = None if artist_name is None else _text(artist_name, what="Artist name", max_len=ARTIST_MAX)
    clean_genre = _text(genre if genre is not None else "", what="Genre", max_len=GENRE_MAX)
    clean_tags = validate_tags(tags)
    vis = validate_visibility(visibility)
    if source not in TRACK_SOURCES:
        raise InputError(f"Source {source!r} is not valid: use one of {', '.join(TRACK_SOURCES)}.")
    y = check_signal(y, sr=sr, allow_empty=False)
    check_duration(y.shape[1] / int(sr), max_seconds=float(get_settings().max_duration_s))
    y = y.astype(np.float32, copy=False)
    sr = int(sr)
    fmt = "wav"
    if original is not None:
        if not isinstance(original, bytes | bytearray) or not original:
            raise InputError("The original file must be non-empty bytes.")
        fmt = str(original_ext or "").lower().lstrip(".")
        if fmt not in ORIGINAL_FORMATS:
            raise InputError(
                f"Original format {original_ext!r} is not supported: "
                f"use one of {', '.join(ORIGINAL_FORMATS)}."
            )
        limit = get_settings().max_upload_bytes
        if len(original) > limit:
            raise LimitError(
                f"The file is {len(original) / 2**20:.1f} MB; the limit is {limit / 2**20:.0f} MB."
            )
    bpm_v = _optional_float(bpm, what="Tempo", lo=1.0, hi=400.0)
    key_v = None if key is None else _text(key, what="Key", max_len=KEY_MAX) or None
    beat_list = _beats(beats)
    cover = None if cover_png is None else _check_png(cover_png)
    owner = _user_or_404(session, owner_id)
    artist = owner.name if artist is None else artist

    loudness: float | None
    if (bpm_v is None or key_v is None) and beat_list is None:
        from core.audio.analysis import quick_analysis

        qa = quick_analysis(y, sr=sr)
        if bpm_v is None:
            tempo = float(qa.tempo_bpm) if qa.tempo_bpm is not None else float("nan")
            bpm_v = round(tempo, 2) if math.isfinite(tempo) and tempo > 0 else None
        key_v = key_v if key_v is not None else (qa.key or None)
        if beat_list is None:
            beat_list = _beats(qa.beats) or []
        loudness = float(qa.loudness_lufs) if qa.loudness_lufs is not None else None
    else:
        from core.audio.loudness import integrated_lufs

        loudness = float(integrated_lufs(y, sr=sr))
    if loudness is not None and not math.isfinite(loudness):
        loudness = None  # silence
    if key_v is not None:
        key_v = key_v[:KEY_MAX]

    if original is not None:
        audio_data = bytes(original)
    else:
        from core.audio.io import encode

        audio_data = encode(y, sr=sr, fmt="wav", title=clean_title, artist=artist or None)
    if cover is None:
        from core.covers_placeholder import placeholder_cover

        cover = placeholder_cover(title=clean_title, artist=artist, size=512)
    env = compute_peaks(y)

    with _commit_with_files(session, storage) as put:
        audio_key = put(audio_data, suffix=fmt)
        cover_key = put(cover, suffix="png")
        now = utcnow()
        track = Track(
            owner_id=owner.id,
            title=clean_title,
            artist_name=artist,
            genre=clean_genre,
            tags=",".join(clean_tags),
            bpm=bpm_v,
            key=key_v,
            duration_s=round(y.shape[1] / sr, 3),
            loudness_lufs=None if loudness is None else round(loudness, 2),
            audio_key=audio_key,
            audio_format=fmt,
            cover_key=cover_key,
            peaks_json=json.dumps(np.round(env, 3).tolist(), separators=(",", ":")),
            beats_json=json.dumps(beat_list or [], separators=(",", ":")),
            visibility=vis,
            share_token=secrets.token_urlsafe(16),
            source=source,
            created_at=now,
            published_at=now if vis == Visibility.public else None,
        )
        session.add(track)
    session.refresh(track)
    return track


# --------------------------------------------------------------------------- reading


def feed(
    session: Session,
    *,
    sort: str = "new",
    genre: str | None = None,
    tag: str | None = None,
    query: str | None = None,
    limit: int = 10,
    offset: int = 0,
) -> list[Track]:
    """A page of the public feed (see :func:`core.db.repo.feed_page`; private/unlisted never listed)."""
    return repo.feed_page(session, sort=sort, genre=genre, tag=tag, query=query, limit=limit, offset=offset)


def feed_ids(
    session: Session,
    *,
    sort: str = "new",
    genre: str | None = None,
    tag: str | None = None,
    query: str | None = None,
    limit: int = 10,
    offset: int = 0,
) -> list[int]:
    """The ids of a page of the public feed, in order (see :func:`core.db.repo.feed_ids`)."""
    return repo.feed_ids(session, sort=sort, genre=genre, tag=tag, query=query, limit=limit, offset=offset)


def public_tracks(session: Session, *, track_ids: Sequence[int]) -> list[Track]:
    """The tracks of ``track_ids`` still public, in that order (:func:`core.db.repo.public_tracks`)."""
    return repo.public_tracks(session, track_ids=track_ids)


def count_feed(
    session: Session, *, genre: str | None = None, tag: str | None = None, query: str | None = None
) -> int:
    """Number of public tracks matching the feed filters."""
    return repo.count_feed(session, genre=genre, tag=tag, query=query)


def list_user_tracks(session: Session, *, owner_id: int) -> list[Track]:
    """Every track of ``owner_id`` (all visibilities), newest first. Call with the logged-in user's id."""
    return repo.user_tracks(session, owner_id=owner_id)


def get_for_viewer(session: Session, *, track_id: int, viewer_id: int | None) -> Track:
    """Return the track if ``viewer_id`` may see it by id: the owner always, others only if public.

    Unlisted tracks are reachable by others only through :func:`by_share_token`.

    Raises
    ------
    NotFoundError
        Unknown, deleted or not visible (one message for all).
    """
    track = _track(session, track_id)
    if track is None or not _can_see(track, viewer_id):
        raise NotFoundError(TRACK_NOT_FOUND)
    return track


def by_share_token(session: Session, *, token: str) -> Track:
    """Return the public or unlisted track with share token ``token``.

    Raises
    ------
    NotFoundError
        Unknown, rotated, deleted or private (one message for all).
    """
    if not isinstance(token, str) or not 1 <= len(token) <= 64:
        raise NotFoundError(TRACK_NOT_FOUND)
    track = session.execute(select(Track).where(Track.share_token == token)).scalars().first()
    if track is None or track.visibility == Visibility.private:
        raise NotFoundError(TRACK_NOT_FOUND)
    return track


def liked_ids(session: Session, *, user_id: int | None, track_ids: Sequence[int]) -> set[int]:
    """The subset of ``track_ids`` that ``user_id`` liked (empty for guests)."""
    if user_id is None:
        return set()
    return repo.liked_track_ids(session, user_id=user_id, track_ids=track_ids)


# --------------------------------------------------------------------------- owner actions


def update_track(
    session: Session,
    *,
    track_id: int,
    user_id: int,
    title: str | None = None,
    genre: str | None = None,
    tags: Sequence[str] | str | None = None,
    visibility: Visibility | str | None = None,
    artist_name: str | None = None,
) -> Track:
    """Change a track's metadata (owner only); ``None`` leaves a field as it is.

    Making a track public for the first time sets ``published_at``. All values are validated before
    anything changes.

    Raises
    ------
    NotFoundError, ForbiddenError, InputError
    """
    track = _owned(session, track_id, user_id)
    new_title = None if title is None else validate_title(title)
    new_genre = None if genre is None else _text(genre, what="Genre", max_len=GENRE_MAX)
    new_tags = None if tags is None else validate_tags(tags)
    new_vis = None if visibility is None else validate_visibility(visibility)
    new_artist = None if artist_name is None else _text(artist_name, what="Artist name", max_len=ARTIST_MAX)
    if new_title is not None:
        track.title = new_title
    if new_genre is not None:
        track.genre = new_genre
    if new_tags is not None:
        track.tags = ",".join(new_tags)
    if new_artist is not None:
        track.artist_name = new_artist
    if new_vis is not None:
        track.visibility = new_vis
        if new_vis == Visibility.public and track.published_at is None:
            track.published_at = utcnow()
    session.add(track)
    return _finish(session, track)


def delete_track(session: Session, storage, *, track_id: int, user_id: int) -> None:
    """Delete a track (owner only): its row and likes in one transaction, then its files.

    Raises
    ------
    NotFoundError, ForbiddenError
    """
    track = _owned(session, track_id, user_id)
    keys = [track.audio_key, track.mp3_key, track.cover_key]
    tid = track.id
    try:
        session.execute(delete(Track).where(Track.id == tid).execution_options(synchronize_session=False))
        session.commit()
    except BaseException:
        session.rollback()
        raise
    session.expunge(track)
    _delete_quietly(storage, keys)


def rotate_share_token(session: Session, *, track_id: int, user_id: int) -> str:
    """Give a track a new share token (owner only); the old link stops working. Returns the token."""
    track = _owned(session, track_id, user_id)
    track.share_token = secrets.token_urlsafe(16)
    session.add(track)
    return _finish(session, track).share_token


def set_cover_for_user_tracks(
    session: Session, storage, *, user_id: int, track_ids: Sequence[int], cover_png: bytes
) -> int:
    """Give several of the user's tracks a new cover (e.g. an album cover). Returns the count.

    Every track is checked before anything is written; each track gets its own copy of the image
    (every stored file belongs to one row); old covers are deleted after the commit.

    Raises
    ------
    NotFoundError, ForbiddenError, InputError
    """
    cover = _check_png(cover_png)
    if isinstance(track_ids, str | bytes) or not isinstance(track_ids, Iterable):
        raise InputError("track_ids must be a list of track ids.")
    ids = list(dict.fromkeys(track_ids))
    if len(ids) > 500:
        raise InputError(f"{len(ids)} tracks given; the limit is 500 per call.")
    tracks = [_owned(session, tid, user_id) for tid in ids]
    if not tracks:
        return 0
    old = [t.cover_key for t in tracks]
    with _commit_with_files(session, storage) as put:
        for t in tracks:
            t.cover_key = put(cover, suffix="png")
            session.add(t)
    _delete_quietly(storage, old)
    return len(tracks)


# --------------------------------------------------------------------------- engagement


def toggle_like(session: Session, *, track_id: int, user_id: int) -> tuple[bool, int]:
    """Like or unlike a track; returns ``(liked_now, like_count)``.

    Allowed on tracks the user can see: public ones, unlisted ones (whose ids reach the UI only through
    their share link) and their own. The like row and the denormalised ``like_count`` change in
    the same transaction; the database's unique constraint stops double likes from races.

    Raises
    ------
    NotFoundError
        The track does not exist or is private to someone else; or ``user_id`` is not an account.
    """
    _user_or_404(session, user_id)
    track = _track(session, track_id)
    if track is None or not _can_see(track, user_id, unlisted_ok=True):
        raise NotFoundError(TRACK_NOT_FOUND)
    tid = track.id
    existing = session.execute(
        select(Like.id).where(Like.user_id == user_id, Like.track_id == tid)
    ).scalar_one_or_none()
    try:
        if existing is None:
            session.add(Like(user_id=user_id, track_id=tid))
            session.flush()
            session.execute(
                update(Track)
                .where(Track.id == tid)
                .values(like_count=Track.like_count + 1)
                .execution_options(synchronize_session=False)
            )
            liked = True
        else:
            gone = session.execute(delete(Like).where(Like.id == existing)).rowcount
            if gone:
                session.execute(
                    update(Track)
                    .where(and_(Track.id == tid, Track.like_count > 0))
                    .values(like_count=Track.like_count - 1)
                    .execution_options(synchronize_session=False)
                )
            liked = False
        session.commit()
    except IntegrityError:  # a concurrent like by the same user won the race
        session.rollback()
        liked = True
    count = session.execute(select(Track.like_count).where(Track.id == tid)).scalar_one()
    session.expire(track)
    return liked, int(count)


def _bump(session: Session, track_id, column) -> None:
    if not isinstance(track_id, int | np.integer) or isinstance(track_id, bool):
        raise NotFoundError(TRACK_NOT_FOUND)
    result = session.execute(
        update(Track)
        .where(Track.id == int(track_id))
        .values({column.key: column + 1})
        .execution_options(synchronize_session=False)
    )
    session.commit()
    if result.rowcount == 0:
        raise NotFoundError(TRACK_NOT_FOUND)


def record_play(session: Session, *, track_id: int) -> None:
    """Count one play (atomic ``play_count = play_count + 1``)."""
    _bump(session, track_id, Track.play_count)


def record_download(session: Session, *, track_id: int) -> None:
    """Count one download (atomic ``download_count = download_count + 1``)."""
    _bump(session, track_id, Track.download_count)


# --------------------------------------------------------------------------- files


def _safe_filename(title: str) -> str:
    base = re.sub(r"[^\w\- ]+", "_", title or "").strip(" _")[:80]
    return base or "beattok"


def _stored_mp3(storage, *, track: Track, gain_db: float = 0.0) -> bytes:
    """An MP3 of a track's stored original, scaled by ``gain_db``. Decoded with library limits: a saved
    10-minute WAV (106 MB) is over the upload byte limit although its duration was checked when it was
    saved."""
    from core.audio.io import AudioLimits, decode, encode
    from core.config import SAMPLE_RATE

    original = storage.get(track.audio_key)
    y = decode(
        original,
        filename=f"{_safe_filename(track.title)}.{track.audio_format or 'wav'}",
        sr=SAMPLE_RATE,
        limits=AudioLimits.for_library(len(original)),
    )
    del original
    if gain_db:
        y *= np.float32(10.0 ** (gain_db / 20.0))
    return encode(y, sr=SAMPLE_RATE, fmt="mp3", title=track.title, artist=track.artist_name or None)


def audio_bytes(session: Session, storage, *, track: Track, fmt: str = "original") -> tuple[bytes, str, str]:
    """The audio of a track the caller has already been allowed to see.

    Parameters
    ----------
    session : sqlmodel.Session
    storage : core.storage.Storage
    track : Track
        From :func:`get_for_viewer` or :func:`by_share_token`.
    fmt : {"original", "mp3"}
        ``"mp3"`` is made from the stored original on the first request and cached in storage
        (``mp3_key``); an MP3 original is returned as-is.

    Returns
    -------
    (bytes, str, str)
        The file, a download file name and its MIME type.
    """
    if fmt not in DOWNLOAD_FORMATS:
        raise InputError(
            f"Download format {fmt!r} is not supported: use one of {', '.join(DOWNLOAD_FORMATS)}."
        )
    name = _safe_filename(track.title)
    src_fmt = track.audio_format or "wav"
    if fmt == "original" or src_fmt == "mp3":
        data = storage.get(track.audio_key)
        return data, f"{name}.{src_fmt}", MIME_TYPES.get(src_fmt, "application/octet-stream")
    cached = track.mp3_key
    if cached:
        with contextlib.suppress(NotFoundError):
            return storage.get(cached), f"{name}.mp3", MIME_TYPES["mp3"]
    data = _stored_mp3(storage, track=track)
    tid = track.id
    cond = Track.mp3_key.is_(None) if cached is None else Track.mp3_key == cached
    with _commit_with_files(session, storage) as put:
        new_key = put(data, suffix="mp3")
        result = session.execute(
            update(Track)
            .where(Track.id == tid, cond)
            .values(mp3_key=new_key)
            .execution_options(synchronize_session=False)
        )
    if result.rowcount == 0:  # deleted meanwhile, or another request cached its MP3 first
        _delete_quietly(storage, [new_key])
    else:
        _delete_quietly(storage, [cached])
    with contextlib.suppress(Exception):
        session.expire(track)
    return data, f"{name}.mp3", MIME_TYPES["mp3"]


#: Loudness the feed plays tracks at, at most (LUFS, as the streaming services): louder tracks are
#: turned down for playback so the next card never blasts; downloads are never changed.
PLAYBACK_LUFS = -14.0
#: Smaller turn-downs (dB) are not worth a second file: the track's own MP3 plays.
PLAYBACK_MIN_CUT_DB = 1.0
#: Version of the turned-down playback files (part of their cache key).
PLAYBACK_VERSION = 1


def playback_gain_db(track: Track) -> float:
    """The gain (dB, <= 0) the feed plays ``track`` with: down to :data:`PLAYBACK_LUFS`, rounded to
    0.1 dB, when its stored loudness is at least :data:`PLAYBACK_MIN_CUT_DB` louder; else 0.

    Quieter tracks are not raised: that would need limiting, and mastered results (add beats, the
    editor, generated songs) are at -14 LUFS already.

    Examples
    --------
    >>> playback_gain_db(Track(title="t", loudness_lufs=-6.04))
    -8.0
    >>> playback_gain_db(Track(title="t", loudness_lufs=-14.5)), playback_gain_db(Track(title="t"))
    (0.0, 0.0)
    """
    lufs = track.loudness_lufs
    if lufs is None or not math.isfinite(float(lufs)):
        return 0.0
    cut = PLAYBACK_LUFS - float(lufs)
    return round(cut, 1) if cut <= -PLAYBACK_MIN_CUT_DB else 0.0


def playback_bytes(session: Session, storage, *, track: Track, cache=None) -> tuple[bytes, str]:
    """The MP3 the feed plays for a track the caller has already been allowed to see.

    A track louder than :data:`PLAYBACK_LUFS` (:func:`playback_gain_db`) plays from an MP3 of its
    original turned down by that gain; any other plays from its own MP3 (:func:`audio_bytes`).

    Parameters
    ----------
    session : sqlmodel.Session
    storage : core.storage.Storage
    track : Track
        From :func:`get_for_viewer` or :func:`by_share_token`.
    cache : core.disk_cache.BytesCache, optional
        Where turned-down MP3s are kept (keyed by the stored original, which never changes under its
        key, and the gain); without one they are made on every call.

    Returns
    -------
    (bytes, str)
        The MP3 and its MIME type.
    """
    gain_db = playback_gain_db(track)
    if gain_db == 0.0:
        data, _name, mime = audio_bytes(session, storage, track=track, fmt="mp3")
        return data, mime

    def make() -> bytes:
        return _stored_mp3(storage, track=track, gain_db=gain_db)

    key = ("playback", PLAYBACK_VERSION, track.audio_key, gain_db)
    return (cache.get_or_make(key, make) if cache is not None else make()), MIME_TYPES["mp3"]


def cover_bytes(storage, track: Track) -> bytes:
    """The track's cover PNG (a placeholder if it has none or the file is missing)."""
    if track.cover_key:
        with contextlib.suppress(NotFoundError, InputError):
            return storage.get(track.cover_key)
    from core.covers_placeholder import placeholder_cover

    return placeholder_cover(title=track.title, artist=track.artist_name or "", size=512)


# --------------------------------------------------------------------------- albums


def save_album(
    session: Session,
    storage,
    *,
    owner_id: int,
    name: str,
    artist: str,
    genre: str = "",
    mood: str = "",
    style: str = "",
    cover_png: bytes | None = None,
    titles: Sequence[str] = (),
) -> Album:
    """Store an album factory result (cover image + track titles) for ``owner_id``.

    Raises
    ------
    InputError, LimitError
        Name/artist not 1-120 characters, genre/mood/style over 40, not 1-50 titles of 1-120
        characters, cover not a PNG (nothing is stored).
    NotFoundError
        ``owner_id`` is not an account.
    """
    clean_name = _text(name, what="Album name", max_len=TITLE_MAX, min_len=1)
    clean_artist = _text(artist, what="Artist", max_len=ARTIST_MAX, min_len=1)
    extras = {
        field: _text(value if value is not None else "", what=field.title(), max_len=GENRE_MAX)
        for field, value in (("genre", genre), ("mood", mood), ("style", style))
    }
    if isinstance(titles, str) or not isinstance(titles, Iterable):
        raise InputError("Album titles must be a list of text.")
    clean_titles = [_text(t, what="Song title", max_len=TITLE_MAX, min_len=1) for t in titles]
    if not 1 <= len(clean_titles) <= ALBUM_TITLES_MAX:
        raise InputError(f"An album needs 1-{ALBUM_TITLES_MAX} song titles, got {len(clean_titles)}.")
    cover = None if cover_png is None else _check_png(cover_png)
    owner = _user_or_404(session, owner_id)
    with _commit_with_files(session, storage) as put:
        cover_key = None if cover is None else put(cover, suffix="png")
        album = Album(
            owner_id=owner.id,
            name=clean_name,
            artist=clean_artist,
            cover_key=cover_key,
            titles_json=json.dumps(clean_titles, ensure_ascii=False),
            **extras,
        )
        session.add(album)
    session.refresh(album)
    return album


def list_albums(session: Session, *, owner_id: int) -> list[Album]:
    """Albums of ``owner_id``, newest first."""
    stmt = select(Album).where(Album.owner_id == owner_id).order_by(Album.created_at.desc(), Album.id.desc())
    return list(session.execute(stmt).scalars())


def delete_album(session: Session, storage, *, album_id: int, user_id: int) -> None:
    """Delete one of the user's albums and its cover file.

    Raises
    ------
    NotFoundError
        No such album of this user (others' albums are not revealed).
    """
    album = session.get(Album, album_id) if isinstance(album_id, int) else None
    if album is None or album.owner_id != user_id:
        raise NotFoundError("That album does not exist.")
    key = album.cover_key
    session.delete(album)
    session.commit()
    _delete_quietly(storage, [key])
