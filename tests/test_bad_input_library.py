"""Malformed-input corpus for the library and accounts: every case gets a clear message and stores nothing."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from core import auth, library
from core.covers_placeholder import placeholder_cover
from core.db.engine import make_engine, migrate
from core.db.models import Album, Like, LoginAttempt, Track, User
from core.errors import AuthError, InputError, LimitError, NotFoundError
from core.storage import LocalStorage

SR = 44100
TONE = np.tile((0.3 * np.sin(2 * np.pi * 220 * np.arange(SR // 2) / SR)).astype(np.float32), (2, 1))
PNG = placeholder_cover(title="ok", artist="ok", size=64)


@pytest.fixture(autouse=True)
def _fast_bcrypt(monkeypatch):
    monkeypatch.setenv("BEATTOK_BCRYPT_ROUNDS", "4")


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """One migrated database with a user and a track, built once and copied for every test."""
    root = tmp_path_factory.mktemp("template")
    eng = make_engine(f"sqlite:///{root / 'bad.db'}")
    migrate(eng)
    store = LocalStorage(root / "media")
    with pytest.MonkeyPatch.context() as mp, Session(eng) as s:
        mp.setenv("BEATTOK_BCRYPT_ROUNDS", "4")
        alice = auth.sign_up(s, username="alice", email="a@example.com", name="Alice", password="password-a")
        t = library.publish_audio(
            s, store, owner_id=alice.id, y=TONE, sr=SR, title="Keep", bpm=100.0, key="C major", beats=[]
        )
        ids = (alice, t.id)
    eng.dispose()  # checkpoints the WAL into bad.db
    return root, ids


@pytest.fixture
def env(template, tmp_path):
    root, (alice, tid) = template
    shutil.copy2(root / "bad.db", tmp_path / "bad.db")
    shutil.copytree(root / "media", tmp_path / "media")
    eng = make_engine(f"sqlite:///{tmp_path / 'bad.db'}")
    with Session(eng) as s:
        yield s, LocalStorage(tmp_path / "media"), alice, tid
    eng.dispose()


def _snapshot(s: Session, store: LocalStorage):
    counts = tuple(
        s.execute(select(func.count()).select_from(m)).scalar_one()
        for m in (User, Track, Like, Album, LoginAttempt)
    )
    files = sorted(p.relative_to(store.root).as_posix() for p in store.root.rglob("*") if p.is_file())
    return counts, files


def _tone(seconds: float) -> np.ndarray:
    return np.zeros((2, int(seconds * SR)), np.float32)


PUBLISH_CASES = [
    ({"title": ""}, InputError, "Title must be 1-120 characters long, got 0."),
    ({"title": "   "}, InputError, "Title must be 1-120 characters long, got 0."),
    ({"title": "x" * 121}, InputError, "Title must be 1-120 characters long, got 121."),
    ({"title": None}, InputError, "Title must be text, got NoneType."),
    ({"title": b"bytes"}, InputError, "Title must be text, got bytes."),
    ({"title": "two\nlines"}, InputError, "Title must not contain control characters"),
    ({"title": "nul\x00byte"}, InputError, "Title must not contain control characters"),
    ({"artist_name": "y" * 121}, InputError, "Artist name must be 0-120 characters long, got 121."),
    ({"genre": "g" * 41}, InputError, "Genre must be 0-40 characters long, got 41."),
    ({"genre": 7}, InputError, "Genre must be text, got int."),
    ({"tags": [f"t{i}" for i in range(11)]}, InputError, "11 tags given; the limit is 10."),
    ({"tags": ["x" * 31]}, InputError, "is 31 characters long; the limit is 30."),
    ({"tags": 5}, InputError, "Tags must be a list of text, got int."),
    ({"tags": [None]}, InputError, "Each tag must be text, got NoneType."),
    ({"tags": ["a\tb"]}, InputError, "must not contain commas or control characters"),
    (
        {"visibility": "secret"},
        InputError,
        "Visibility 'secret' is not valid: use one of private, unlisted, public.",
    ),
    ({"visibility": None}, InputError, "Visibility None is not valid"),
    ({"source": "hack"}, InputError, "Source 'hack' is not valid: use one of upload, record"),
    ({"y": None}, InputError, "audio must be a numpy array, got NoneType"),
    ({"y": [0.0] * 100}, InputError, "audio must be a numpy array, got list"),
    (
        {"y": np.zeros((2, 100), np.int16)},
        InputError,
        "audio must be floating point (float32), got dtype int16",
    ),
    (
        {"y": np.zeros((2, 10, 2), np.float32)},
        InputError,
        "audio must be shaped (channels, samples) with 1-8 channels, got shape (2, 10, 2)",
    ),
    ({"y": np.zeros((4410, 2), np.float32)}, InputError, "with 1-8 channels, got shape (4410, 2)"),
    ({"y": np.zeros((2, 0), np.float32)}, InputError, "audio is empty (0 samples)"),
    ({"y": np.full((2, 100), np.nan, np.float32)}, InputError, "audio contains NaN or infinite samples"),
    ({"y": np.full((1, 100), np.inf, np.float32)}, InputError, "audio contains NaN or infinite samples"),
    ({"sr": 0}, InputError, "sample rate must be an integer between 8000 and 192000 Hz, got 0"),
    ({"sr": 10**9}, InputError, "between 8000 and 192000 Hz, got 1000000000"),
    ({"sr": 44100.0}, InputError, "between 8000 and 192000 Hz, got 44100.0"),
    ({"sr": True}, InputError, "between 8000 and 192000 Hz, got True"),
    ({"original": b""}, InputError, "The original file must be non-empty bytes."),
    ({"original": "text"}, InputError, "The original file must be non-empty bytes."),
    (
        {"original": b"MZ\x90\x00", "original_ext": "exe"},
        InputError,
        "Original format 'exe' is not supported",
    ),
    ({"original": b"RIFF", "original_ext": None}, InputError, "Original format None is not supported"),
    (
        {"original": b"RIFF", "original_ext": "../wav"},
        InputError,
        "Original format '../wav' is not supported",
    ),
    ({"bpm": -5}, InputError, "Tempo -5 is out of range: use 1-400."),
    ({"bpm": float("nan")}, InputError, "Tempo nan is out of range"),
    ({"bpm": "fast"}, InputError, "Tempo must be a number, got 'fast'."),
    ({"key": "k" * 21}, InputError, "Key must be 0-20 characters long, got 21."),
    ({"beats": [-1.0]}, InputError, "Beats must be at most 20000 finite, non-negative times in seconds."),
    ({"beats": ["x"]}, InputError, "Beats must be a list of times in seconds."),
    ({"cover_png": b"GIF89a...."}, InputError, "Cover image is not a PNG file."),
    ({"cover_png": "png"}, InputError, "Cover image must be PNG bytes, got str."),
    ({"cover_png": b"\x89PNG\r\n\x1a\n" + b"0" * (11 * 2**20)}, LimitError, "the limit is 10 MB"),
    ({"owner_id": 999}, NotFoundError, "Account 999 does not exist."),
    ({"owner_id": "1"}, NotFoundError, "Account '1' does not exist."),
]


@pytest.mark.parametrize(("override", "exc", "message"), PUBLISH_CASES)
def test_publish_audio_rejects_bad_input_and_stores_nothing(env, override, exc, message):
    s, store, alice, _ = env
    kwargs = dict(owner_id=alice.id, y=TONE, sr=SR, title="Fine", bpm=100.0, key="C major", beats=[0.1])
    kwargs.update(override)
    before = _snapshot(s, store)
    with pytest.raises(exc, match=re.escape(message)):
        library.publish_audio(s, store, **kwargs)
    assert _snapshot(s, store) == before


def test_publish_audio_limits_from_settings(env, monkeypatch):
    s, store, alice, _ = env
    before = _snapshot(s, store)
    monkeypatch.setenv("BEATTOK_MAX_DURATION_S", "1")
    with pytest.raises(LimitError, match=re.escape("audio is 2.5 s long; the limit is 1.0 s")):
        library.publish_audio(
            s, store, owner_id=alice.id, y=_tone(2.5), sr=SR, title="t", bpm=90, key="C major"
        )
    monkeypatch.setenv("BEATTOK_MAX_DURATION_S", "600")
    monkeypatch.setenv("BEATTOK_MAX_UPLOAD_MB", "0.001")
    with pytest.raises(LimitError, match=re.escape("The file is 0.0 MB; the limit is 0 MB.")):
        library.publish_audio(
            s,
            store,
            owner_id=alice.id,
            y=TONE,
            sr=SR,
            title="t",
            bpm=90,
            key="C major",
            original=b"\x00" * 5000,
            original_ext="wav",
        )
    assert _snapshot(s, store) == before


SIGN_UP_CASES = [
    ({"username": "ab"}, "Username 'ab' is not valid: use 3-32 characters of a-z, 0-9, '_', '.' and '-'."),
    ({"username": "x" * 33}, "is not valid: use 3-32 characters"),
    ({"username": "bad name"}, "Username 'bad name' is not valid"),
    ({"username": "../../etc"}, "Username '../../etc' is not valid"),  # dots and dashes are fine, '/' is not
    ({"username": "<script>"}, "Username '<script>' is not valid"),
    ({"username": "ålice"}, "Username 'ålice' is not valid"),
    ({"username": "bob\n"}, None),  # stripped: fine (control case for the corpus)
    ({"username": None}, "Username must be text, got NoneType."),
    ({"email": "nope"}, "Email 'nope' is not valid: expected name@domain.tld (at most 254 characters)."),
    ({"email": "a@b"}, "Email 'a@b' is not valid"),
    ({"email": "a@@b.com"}, "Email 'a@@b.com' is not valid"),
    ({"email": "a b@c.com"}, "Email 'a b@c.com' is not valid"),
    ({"email": "x" * 60 + "@" + "d" * 200 + ".com"}, "is not valid: expected name@domain.tld"),
    ({"email": 5}, "Email must be text, got int."),
    ({"name": ""}, "Name must be 1-60 printable characters, got 0 characters."),
    ({"name": "n" * 61}, "Name must be 1-60 printable characters, got 61 characters."),
    ({"name": "a\x00b"}, "Name must be 1-60 printable characters, got 3 characters."),
    ({"password": "short"}, "Password must be 8-128 characters long, got 5."),
    ({"password": "p" * 129}, "Password must be 8-128 characters long, got 129."),
    ({"password": None}, "Password must be text, got NoneType."),
    ({"username": "ALICE"}, "That username or email is already registered."),
    ({"email": "A@EXAMPLE.COM"}, "That username or email is already registered."),
]


@pytest.mark.parametrize(("override", "message"), SIGN_UP_CASES)
def test_sign_up_rejects_bad_input_and_stores_nothing(env, override, message):
    s, store, _, _ = env
    kwargs = dict(username="bob", email="bob@example.com", name="Bob", password="password-b")
    kwargs.update(override)
    before = _snapshot(s, store)
    if message is None:
        assert auth.sign_up(s, **kwargs).username == "bob"
        return
    with pytest.raises(InputError, match=re.escape(message)):
        auth.sign_up(s, **kwargs)
    assert _snapshot(s, store) == before


@pytest.mark.parametrize("username", [None, "", "x" * 10_000, "alice'; DROP TABLE users; --", "\x00", 42])
@pytest.mark.parametrize("password", [None, "", "p" * 10_000, "password-a\x00", 3.14])
def test_log_in_with_garbage_fails_cleanly(env, username, password):
    s, *_ = env
    with pytest.raises(AuthError, match=re.escape("Wrong username or password.")):
        auth.log_in(s, username=username, password=password)
    assert s.execute(select(func.count()).select_from(User)).scalar_one() == 1


UPDATE_CASES = [
    ({"title": ""}, InputError, "Title must be 1-120 characters long, got 0."),
    ({"title": "ok", "visibility": "everyone"}, InputError, "Visibility 'everyone' is not valid"),
    ({"title": "ok", "tags": ["x" * 40]}, InputError, "the limit is 30"),
    ({"genre": "g" * 41}, InputError, "Genre must be 0-40 characters long, got 41."),
    ({"artist_name": "a\nb"}, InputError, "Artist name must not contain control characters"),
    ({"track_id": 12345}, NotFoundError, "That track does not exist or is not available."),
    ({"track_id": "1"}, NotFoundError, "That track does not exist or is not available."),
    ({"track_id": None}, NotFoundError, "That track does not exist or is not available."),
]


@pytest.mark.parametrize(("override", "exc", "message"), UPDATE_CASES)
def test_update_track_rejects_bad_input_and_changes_nothing(env, override, exc, message):
    s, store, alice, tid = env
    kwargs = dict(track_id=tid, user_id=alice.id)
    kwargs.update(override)
    before = _snapshot(s, store)
    row_before = s.get(Track, tid).model_dump()
    with pytest.raises(exc, match=re.escape(message)):
        library.update_track(s, **kwargs)
    s.expire_all()
    assert s.get(Track, tid).model_dump() == row_before
    assert _snapshot(s, store) == before


ALBUM_CASES = [
    ({"name": ""}, InputError, "Album name must be 1-120 characters long, got 0."),
    ({"artist": "a" * 121}, InputError, "Artist must be 1-120 characters long, got 121."),
    ({"mood": "m" * 41}, InputError, "Mood must be 0-40 characters long, got 41."),
    ({"titles": []}, InputError, "An album needs 1-50 song titles, got 0."),
    ({"titles": "One"}, InputError, "Album titles must be a list of text."),
    ({"titles": ["t"] * 51}, InputError, "An album needs 1-50 song titles, got 51."),
    ({"titles": ["ok", ""]}, InputError, "Song title must be 1-120 characters long, got 0."),
    ({"titles": ["ok", 3]}, InputError, "Song title must be text, got int."),
    ({"cover_png": b"JFIF"}, InputError, "Cover image is not a PNG file."),
    ({"owner_id": 404}, NotFoundError, "Account 404 does not exist."),
]


@pytest.mark.parametrize(("override", "exc", "message"), ALBUM_CASES)
def test_save_album_rejects_bad_input_and_stores_nothing(env, override, exc, message):
    s, store, alice, _ = env
    kwargs = dict(owner_id=alice.id, name="LP", artist="Alice", genre="pop", mood="", style="", cover_png=PNG)
    kwargs["titles"] = ["One", "Two"]
    kwargs.update(override)
    before = _snapshot(s, store)
    with pytest.raises(exc, match=re.escape(message)):
        library.save_album(s, store, **kwargs)
    assert _snapshot(s, store) == before


@pytest.mark.parametrize("token", [None, "", " ", "x" * 65, "../../etc/passwd", "%", "' OR 1=1 --", 123])
def test_share_tokens_garbage_is_not_found(env, token):
    s, *_ = env
    with pytest.raises(NotFoundError, match=re.escape("That track does not exist or is not available.")):
        library.by_share_token(s, token=token)


@pytest.mark.parametrize(
    ("cover", "message"),
    [(b"", "Cover image is not a PNG file."), (None, "Cover image must be PNG bytes, got NoneType.")],
)
def test_set_cover_rejects_bad_png(env, cover, message):
    s, store, alice, tid = env
    before = _snapshot(s, store)
    with pytest.raises(InputError, match=re.escape(message)):
        library.set_cover_for_user_tracks(s, store, user_id=alice.id, track_ids=[tid], cover_png=cover)
    assert _snapshot(s, store) == before
