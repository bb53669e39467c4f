"""Accounts: sign-up, throttled log-in, password changes, account deletion, the cookie key.

Passwords are hashed with bcrypt (cost 12; ``BEATTOK_BCRYPT_ROUNDS`` may lower it for tests, never
below 4). bcrypt reads at most 72 bytes, so a password longer than that is first reduced to the
base64 of its SHA-256 (44 bytes), like passlib's ``bcrypt_sha256``: long passwords keep all their
entropy and no two passwords that share 72 bytes collide. Passwords of up to 72 bytes are hashed
as-is, which keeps the hashes compatible with plain bcrypt checkers (e.g. streamlit-authenticator).

Log-in throttling (per lowercased username, whether or not the account exists, so the throttle
reveals nothing): after :data:`MAX_FAILURES` consecutive failures the username is locked for
:data:`BASE_LOCK_S` seconds, doubling with every further failure, capped at :data:`MAX_LOCK_S`
(15 minutes), so an attacker can delay a victim but never lock them out for longer than that after
the attacker's last try. Attempts during a lock are refused without checking the password. A
successful log-in resets the counter; so does a day without failures.

Unknown usernames are checked against a dummy hash of the same cost, so a wrong username and a wrong
password take about the same time and give the same message.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import math
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import bcrypt
from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from core.config import Settings, get_settings
from core.db.models import STORAGE_KEY_COLUMNS, Job, Like, LoginAttempt, Project, Track, User, utcnow
from core.errors import AuthError, InputError, NotFoundError

#: Consecutive failures allowed before a username is locked.
MAX_FAILURES = 5
#: Lock after the MAX_FAILURES-th failure, in seconds; doubles per further failure.
BASE_LOCK_S = 30.0
#: Longest lock, in seconds (15 minutes).
MAX_LOCK_S = 900.0
#: Failures older than this are forgotten.
FAILURE_MEMORY = timedelta(hours=24)

DEFAULT_BCRYPT_ROUNDS = 12
MIN_BCRYPT_ROUNDS = 4
MAX_BCRYPT_ROUNDS = 16

USERNAME_RE = re.compile(r"^[a-z0-9_.-]{3,32}$")
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
PASSWORD_MIN, PASSWORD_MAX = 8, 128
NAME_MAX = 60

WRONG_CREDENTIALS = "Wrong username or password."
DUPLICATE_ACCOUNT = "That username or email is already registered."


@dataclass(frozen=True)
class UserInfo:
    """What the UI may know about a logged-in user (never the password hash)."""

    id: int
    username: str
    name: str
    email: str


def _info(user: User) -> UserInfo:
    return UserInfo(id=int(user.id), username=user.username, name=user.name, email=user.email)


# --------------------------------------------------------------------------- passwords


def bcrypt_rounds() -> int:
    """The bcrypt cost: ``BEATTOK_BCRYPT_ROUNDS`` clamped to [4, 16], default 12."""
    raw = os.environ.get("BEATTOK_BCRYPT_ROUNDS", "")
    try:
        rounds = int(raw) if raw.strip() else DEFAULT_BCRYPT_ROUNDS
    except ValueError:
        rounds = DEFAULT_BCRYPT_ROUNDS
    return min(MAX_BCRYPT_ROUNDS, max(MIN_BCRYPT_ROUNDS, rounds))


def _secret(password: str) -> bytes:
    raw = password.encode("utf-8")
    if len(raw) <= 72:
        return raw
    return base64.b64encode(hashlib.sha256(raw).digest())


def hash_password(password: str) -> str:
    """Return the bcrypt hash (``$2b$...``) of ``password`` at the configured cost.

    Examples
    --------
    >>> check_password("correct horse", hash_password("correct horse"))
    True
    """
    if not isinstance(password, str):
        raise InputError(f"Password must be text, got {type(password).__name__}.")
    return bcrypt.hashpw(_secret(password), bcrypt.gensalt(rounds=bcrypt_rounds())).decode("ascii")


def check_password(password: str, hashed: str) -> bool:
    """Whether ``password`` matches the bcrypt hash ``hashed`` (False for malformed hashes)."""
    if not isinstance(password, str) or not isinstance(hashed, str):
        return False
    try:
        return bcrypt.checkpw(_secret(password), hashed.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return False


@cache
def _dummy_hash(rounds: int) -> str:
    """A hash nobody's password matches, of the given cost (for timing-equal unknown-user checks)."""
    return bcrypt.hashpw(secrets.token_bytes(16).hex().encode(), bcrypt.gensalt(rounds=rounds)).decode()


# --------------------------------------------------------------------------- validation


def _text(value, what: str) -> str:
    if not isinstance(value, str):
        raise InputError(f"{what} must be text, got {type(value).__name__}.")
    return value


def normalize_username(username: str) -> str:
    """Return ``username`` stripped and lowercased after checking 3-32 characters of ``a-z 0-9 _ . -``."""
    name = _text(username, "Username").strip().lower()
    if not USERNAME_RE.fullmatch(name):
        shown = name if len(name) <= 40 else name[:37] + "..."
        raise InputError(
            f"Username {shown!r} is not valid: use 3-32 characters of a-z, 0-9, '_', '.' and '-'."
        )
    return name


def normalize_email(email: str) -> str:
    """Return ``email`` stripped and lowercased after a simple ``name@domain.tld`` check (<= 254 chars)."""
    addr = _text(email, "Email").strip().lower()
    if len(addr) > 254 or not EMAIL_RE.fullmatch(addr):
        shown = addr if len(addr) <= 60 else addr[:57] + "..."
        raise InputError(f"Email {shown!r} is not valid: expected name@domain.tld (at most 254 characters).")
    return addr


def _check_name(name: str) -> str:
    value = _text(name, "Name").strip()
    if not 1 <= len(value) <= NAME_MAX or any(ord(c) < 32 for c in value):
        raise InputError(f"Name must be 1-{NAME_MAX} printable characters, got {len(value)} characters.")
    return value


def _check_password(password: str, what: str = "Password") -> str:
    value = _text(password, what)
    if not PASSWORD_MIN <= len(value) <= PASSWORD_MAX:
        raise InputError(f"{what} must be {PASSWORD_MIN}-{PASSWORD_MAX} characters long, got {len(value)}.")
    return value


# --------------------------------------------------------------------------- accounts


def sign_up(session: Session, *, username: str, email: str, name: str, password: str) -> UserInfo:
    """Create an account and return its :class:`UserInfo`.

    Parameters
    ----------
    session : sqlmodel.Session
    username : str
        3-32 characters of ``a-z 0-9 _ . -``; case-insensitive, stored lowercase.
    email : str
        A ``name@domain.tld`` address; stored lowercase.
    name : str
        Display name, 1-60 characters.
    password : str
        8-128 characters.

    Raises
    ------
    InputError
        A value is invalid, or the username or email is taken (enforced by the database's unique
        constraints, so two simultaneous sign-ups cannot both win).
    """
    uname = normalize_username(username)
    addr = normalize_email(email)
    display = _check_name(name)
    pw = _check_password(password)
    user = User(username=uname, email=addr, name=display, password_hash=hash_password(pw))
    session.add(user)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise InputError(DUPLICATE_ACCOUNT) from None
    session.refresh(user)
    return _info(user)


def _as_utc(now: datetime | None) -> datetime:
    if now is None:
        return utcnow()
    if now.tzinfo is None:
        return now.replace(tzinfo=UTC)
    return now.astimezone(UTC)


def _throttle_key(username: str) -> str:
    return username.strip().lower()[:64] if isinstance(username, str) else ""


def lock_seconds(failures: int) -> float:
    """Lock length after ``failures`` consecutive failures (0 below MAX_FAILURES).

    Examples
    --------
    >>> [lock_seconds(n) for n in (4, 5, 6, 7)]
    [0.0, 30.0, 60.0, 120.0]
    >>> lock_seconds(50)
    900.0
    """
    if failures < MAX_FAILURES:
        return 0.0
    return min(MAX_LOCK_S, BASE_LOCK_S * 2.0 ** min(failures - MAX_FAILURES, 32))


def _record_failure(session: Session, key: str, now: datetime) -> None:
    rec = session.get(LoginAttempt, key)
    if rec is None:
        # New name: first forget stale records, so sprays of made-up names cannot grow the table forever.
        session.execute(
            delete(LoginAttempt).where(
                LoginAttempt.last_failure_at < now - FAILURE_MEMORY,
                or_(LoginAttempt.locked_until.is_(None), LoginAttempt.locked_until < now),
            )
        )
        rec = LoginAttempt(username=key, failures=0)
        session.add(rec)
    elif rec.last_failure_at is not None and now - rec.last_failure_at > FAILURE_MEMORY:
        rec.failures = 0
    rec.failures += 1
    rec.last_failure_at = now
    lock = lock_seconds(rec.failures)
    rec.locked_until = now + timedelta(seconds=lock) if lock > 0 else None
    try:
        session.commit()
    except IntegrityError:  # a concurrent first failure created the row; count ours on it
        session.rollback()
        session.execute(
            update(LoginAttempt)
            .where(LoginAttempt.username == key)
            .values(failures=LoginAttempt.failures + 1, last_failure_at=now)
        )
        session.commit()


def log_in(session: Session, *, username: str, password: str, now: datetime | None = None) -> UserInfo:
    """Check a username (case-insensitive) and password; return the user's :class:`UserInfo`.

    Parameters
    ----------
    session : sqlmodel.Session
    username, password : str
    now : datetime, optional
        The current time (UTC; naive values are taken as UTC). Tests pass it to simulate time.

    Raises
    ------
    AuthError
        ``"Wrong username or password."`` for any wrong username/password (same message and
        similar timing whether or not the account exists), or ``"Too many attempts, try again in N s."``
        while the username is locked (see the module docstring).
    """
    at = _as_utc(now)
    key = _throttle_key(username)
    rec = session.get(LoginAttempt, key) if key else None
    if rec is not None and rec.locked_until is not None:
        locked_until = _as_utc(rec.locked_until)
        if at < locked_until:
            wait = max(1, math.ceil((locked_until - at).total_seconds()))
            raise AuthError(f"Too many attempts, try again in {wait} s.")

    user = None
    if key:
        user = session.execute(select(User).where(User.username == key)).scalars().first()
    pw = password if isinstance(password, str) and len(password) <= 4 * PASSWORD_MAX else ""
    if user is None:
        check_password(pw, _dummy_hash(bcrypt_rounds()))
        ok = False
    else:
        ok = check_password(pw, user.password_hash) and bool(pw)
    if not ok:
        if key:
            _record_failure(session, key, at)
        raise AuthError(WRONG_CREDENTIALS)
    if rec is not None:
        session.execute(delete(LoginAttempt).where(LoginAttempt.username == key))
        session.commit()
    return _info(user)


def get_user(session: Session, user_id: int) -> UserInfo | None:
    """Return the :class:`UserInfo` of ``user_id``, or ``None`` if there is no such account."""
    if not isinstance(user_id, int) or isinstance(user_id, bool):
        return None
    user = session.get(User, user_id)
    return _info(user) if user is not None else None


def get_user_by_username(session: Session, username: str) -> UserInfo | None:
    """Return the :class:`UserInfo` of ``username`` (case-insensitive), or ``None`` if there is none."""
    if not isinstance(username, str):
        return None
    name = username.strip().lower()
    if not USERNAME_RE.fullmatch(name):
        return None
    user = session.execute(select(User).where(User.username == name)).scalars().first()
    return _info(user) if user is not None else None


def _require_password(session: Session, user_id: int, password: str) -> User:
    user = session.get(User, user_id) if isinstance(user_id, int) else None
    if user is None:
        raise NotFoundError("That account does not exist.")
    if not isinstance(password, str) or not check_password(password, user.password_hash):
        raise AuthError("Wrong password.")
    return user


def change_password(session: Session, *, user_id: int, old_password: str, new_password: str) -> None:
    """Replace a user's password after checking the old one.

    Raises
    ------
    AuthError
        ``old_password`` is wrong.
    InputError
        ``new_password`` is not 8-128 characters.
    NotFoundError
        There is no account ``user_id``.
    """
    new = _check_password(new_password, "New password")
    user = _require_password(session, user_id, old_password)
    user.password_hash = hash_password(new)
    session.add(user)
    session.commit()


def delete_account(session: Session, storage, *, user_id: int, password: str) -> None:
    """Delete an account and everything it owns, after checking its password.

    The keys of every file the user owns (track audio, MP3s and covers, project documents and the
    stems they mention, album covers, job results) are collected first; then, in one transaction,
    the like counters of the tracks the user liked are decremented and the user row is deleted (the
    database cascades to tracks, likes, projects, albums and jobs); only after that commit are the
    files removed. Files that another user's rows still reference are kept.

    Raises
    ------
    AuthError
        Wrong password.
    NotFoundError
        There is no account ``user_id``.
    """
    user = _require_password(session, user_id, password)
    keys = _owned_keys(session, storage, user.id)

    liked_elsewhere = (
        select(Like.track_id)
        .join(Track, Track.id == Like.track_id)
        .where(Like.user_id == user.id, Track.owner_id != user.id)
    )
    try:
        session.execute(
            update(Track)
            .where(Track.id.in_(liked_elsewhere))
            .values(like_count=case((Track.like_count > 0, Track.like_count - 1), else_=0))
            .execution_options(synchronize_session=False)
        )
        session.execute(delete(User).where(User.id == user.id).execution_options(synchronize_session=False))
        session.commit()
    except Exception:
        session.rollback()
        raise
    for key in sorted(keys):
        with contextlib.suppress(Exception):
            storage.delete(key)


def _owned_keys(session: Session, storage, user_id: int) -> set[str]:
    """Storage keys that belong to ``user_id`` and to nobody else.

    These are the keys in the user's rows, plus every key mentioned inside the user's project
    documents and job parameters (editor stems, for instance, are referenced only there), minus
    any key that a row of another user still references (an editor project may point at someone
    else's public track audio).
    """
    from core.storage import find_keys

    keys: set[str] = set()
    for column, owner in STORAGE_KEY_COLUMNS:
        keys.update(k for k in session.execute(select(column).where(owner == user_id)).scalars() if k)
    mentioned: set[str] = set()
    for data_key in session.execute(select(Project.data_key).where(Project.owner_id == user_id)).scalars():
        if data_key:
            with contextlib.suppress(Exception):  # a missing/corrupt document only hides its stems
                mentioned |= find_keys(storage.get(data_key).decode("utf-8", errors="replace"))
    for params in session.execute(select(Job.params_json).where(Job.owner_id == user_id)).scalars():
        mentioned |= find_keys(params or "")
    candidates = sorted(mentioned - keys)
    for i in range(0, len(candidates), 500):
        chunk = candidates[i : i + 500]
        for column, owner in STORAGE_KEY_COLUMNS:
            shared = session.execute(
                select(column).where(column.in_(chunk), or_(owner.is_(None), owner != user_id))
            ).scalars()
            mentioned.difference_update(shared)
    return keys | mentioned


# --------------------------------------------------------------------------- cookie key


def cookie_key(settings: Settings | None = None) -> str:
    """Return the secret that signs the login cookie.

    ``BEATTOK_COOKIE_KEY`` when set; otherwise the key stored in ``<data_dir>/cookie_key``; otherwise a
    new ``secrets.token_urlsafe(48)`` written there atomically with mode 0600 (if two processes race,
    both end up with the one that was written first). Never the public default ``"some_key"``.
    """
    settings = settings or get_settings()
    if settings.cookie_key:
        return settings.cookie_key
    path = Path(settings.data_dir) / "cookie_key"
    existing = _read_key(path)
    if existing:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    tmp = path.with_name(f".cookie_key.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(key)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # fails if another process won the race
        except FileExistsError:
            pass
        except OSError:  # file systems without hard links
            if not path.exists():
                os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    stored = _read_key(path)
    if not stored:
        raise AuthError(f"Could not store the cookie key in {path}.")
    return stored


def _read_key(path: Path) -> str | None:
    try:
        value = path.read_text(encoding="ascii").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    return value if len(value) >= 32 else None
