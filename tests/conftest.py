"""Shared pytest fixtures: an isolated data dir and signals made in code."""

from __future__ import annotations

import numpy as np
import pytest

SR = 44100


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path, monkeypatch):
    """Every test gets its own data directory and database; no test touches ./data."""
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("BEATTOK_DATA_DIR", str(data))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("BEATTOK_COOKIE_KEY", "test-cookie-key-" + "x" * 32)
    # no background `python -m core warmup` from app runs and test servers (tests/test_warmup.py)
    monkeypatch.setenv("BEATTOK_WARMUP", "0")
    return data


def sine(freq: float = 440.0, seconds: float = 2.0, sr: int = SR, amp: float = 0.3, channels: int = 2):
    """A float32 ``(channels, n)`` sine tone."""
    t = np.arange(int(seconds * sr)) / sr
    y = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.tile(y, (channels, 1))


def click_track(bpm: float = 120.0, seconds: float = 8.0, sr: int = SR, channels: int = 2):
    """Short decaying noise bursts on every beat at ``bpm``: a signal with a known tempo."""
    rng = np.random.default_rng(0)
    n = int(seconds * sr)
    y = np.zeros(n, dtype=np.float32)
    burst = (rng.standard_normal(int(0.03 * sr)) * np.exp(-np.linspace(0, 8, int(0.03 * sr)))).astype(
        np.float32
    )
    step = 60.0 / bpm
    t = 0.0
    while t < seconds:
        i = int(t * sr)
        j = min(n, i + burst.size)
        y[i:j] += 0.5 * burst[: j - i]
        t += step
    return np.tile(y, (channels, 1))


@pytest.fixture
def tone():
    """Factory fixture for sine tones."""
    return sine


@pytest.fixture
def clicks():
    """Factory fixture for click tracks with a known tempo."""
    return click_track


@pytest.fixture
def fast_bcrypt(monkeypatch):
    """Cheap bcrypt rounds for tests that create many users."""
    monkeypatch.setenv("BEATTOK_BCRYPT_ROUNDS", "4")


@pytest.fixture
def db(fast_bcrypt):
    """A migrated engine on the test's own SQLite file, plus its media storage."""
    from core.config import get_settings
    from core.db.engine import make_engine, migrate
    from core.storage import LocalStorage

    settings = get_settings()
    engine = make_engine(settings.database_url)
    migrate(engine)
    yield engine, LocalStorage(settings.media_dir)
    engine.dispose()


def make_user(engine, username: str = "alice", password: str = "correct horse 1"):
    """Create a user and return its ``UserInfo``."""
    from sqlmodel import Session

    from core.auth import sign_up

    with Session(engine) as session:
        return sign_up(
            session,
            username=username,
            email=f"{username}@example.com",
            name=username.title(),
            password=password,
        )


def make_track(engine, storage, owner_id: int, title: str = "Song", visibility: str = "public", **kw):
    """Publish a short generated tone as a track and return its id (no analysis: bpm/key given)."""
    from sqlmodel import Session

    from core.library import publish_audio

    y = sine(220.0 + 20 * (hash(title) % 10), seconds=kw.pop("seconds", 1.0))
    with Session(engine) as session:
        track = publish_audio(
            session,
            storage,
            owner_id=owner_id,
            y=y,
            sr=SR,
            title=title,
            artist_name=kw.pop("artist_name", "Alice"),
            genre=kw.pop("genre", "pop"),
            tags=kw.pop("tags", ("chill",)),
            visibility=visibility,
            bpm=kw.pop("bpm", 120.0),
            key=kw.pop("key", "A minor"),
            beats=kw.pop("beats", [0.0, 0.5]),
            **kw,
        )
        return track.id


def page_texts(at) -> str:
    """Every text an AppTest run shows: markdown, titles, subheaders, captions and the alert boxes."""
    parts = [m.value for m in at.markdown] + [t.value for t in at.title] + [c.value for c in at.caption]
    parts += [e.value for e in at.info] + [e.value for e in at.warning] + [e.value for e in at.error]
    parts += [e.value for e in at.success] + [s.value for s in at.subheader]
    return "\n".join(str(p) for p in parts)


def cookie_parts(script: str) -> list[str] | None:
    """The cookie string a remember-me script (``components.session.cookie_script``) assigns to
    ``document.cookie``, split into its parts; None if the text has no such assignment."""
    import json
    import re

    found = re.search(r"document\.cookie = (\"[^\"]*\")", script)
    return None if found is None else [part.strip() for part in json.loads(found.group(1)).split(";")]
