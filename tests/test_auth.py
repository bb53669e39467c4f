"""Accounts: sign-up validation and uniqueness, log-in, throttling, password change, cookie key."""

from __future__ import annotations

import os
import stat
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session

from core import auth
from core.config import get_settings
from core.db.engine import make_engine, migrate
from core.db.models import LoginAttempt, User
from core.errors import AuthError, InputError

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
WRONG = "Wrong username or password."


@pytest.fixture(autouse=True)
def _fast_bcrypt(monkeypatch):
    monkeypatch.setenv("BEATTOK_BCRYPT_ROUNDS", "4")


@pytest.fixture
def session(tmp_path):
    eng = make_engine(f"sqlite:///{tmp_path / 'auth.db'}")
    migrate(eng)
    with Session(eng) as s:
        yield s
    eng.dispose()


def _alice(s):
    return auth.sign_up(
        s, username="Alice", email="Alice@Example.com", name="Alice A", password="s3cret-pass"
    )


def test_sign_up_stores_lowercase_and_bcrypt_hash(session):
    info = _alice(session)
    assert info == auth.UserInfo(id=info.id, username="alice", name="Alice A", email="alice@example.com")
    row = session.get(User, info.id)
    assert row.password_hash.startswith("$2b$04$") and "s3cret" not in row.password_hash
    assert auth.get_user(session, info.id) == info
    assert auth.get_user(session, 12345) is None
    assert auth.get_user_by_username(session, " ALICE ") == info
    assert auth.get_user_by_username(session, "bob") is None
    assert auth.get_user_by_username(session, "../x") is None


@pytest.mark.parametrize(
    ("username", "email"),
    [("alice", "new@example.com"), ("ALICE", "new@example.com"), ("bob", "ALICE@example.com")],
)
def test_duplicates_are_rejected_case_insensitively(session, username, email):
    _alice(session)
    with pytest.raises(InputError, match=r"^That username or email is already registered\.$"):
        auth.sign_up(session, username=username, email=email, name="X", password="password123")
    assert session.query(User).count() == 1
    # the session is usable after the rollback
    auth.sign_up(session, username="carol", email="carol@example.com", name="C", password="password123")


def test_log_in_case_insensitive_username(session):
    info = _alice(session)
    assert auth.log_in(session, username="  ALICE ", password="s3cret-pass", now=T0) == info


def test_wrong_password_and_unknown_user_same_message_and_similar_time(session, monkeypatch):
    monkeypatch.setenv("BEATTOK_BCRYPT_ROUNDS", "10")  # long enough to measure
    auth.sign_up(session, username="dave", email="d@example.com", name="D", password="password123")
    with pytest.raises(AuthError) as e1:
        auth.log_in(session, username="dave", password="nope-nope", now=T0)
    with pytest.raises(AuthError) as e2:
        auth.log_in(session, username="nobody", password="nope-nope", now=T0)
    assert str(e1.value) == str(e2.value) == WRONG

    def timed(username):
        t = time.perf_counter()
        with pytest.raises(AuthError):
            auth.log_in(session, username=username, password="wrong-pass", now=T0)
        return time.perf_counter() - t

    known = min(timed("dave") for _ in range(3))
    unknown = min(timed("nobody2") for _ in range(3))
    assert 0.5 < known / unknown < 2.0


def test_throttle_grows_is_capped_and_expires(session):
    _alice(session)
    now = T0
    for _ in range(4):
        with pytest.raises(AuthError, match=WRONG):
            auth.log_in(session, username="alice", password="bad-password", now=now)
    # 5th failure locks for 30 s
    with pytest.raises(AuthError, match=WRONG):
        auth.log_in(session, username="alice", password="bad-password", now=now)
    with pytest.raises(AuthError, match=r"^Too many attempts, try again in 30 s\.$"):
        auth.log_in(session, username="alice", password="s3cret-pass", now=now)  # even the right one
    with pytest.raises(AuthError, match=r"try again in 20 s"):
        auth.log_in(session, username="alice", password="s3cret-pass", now=now + timedelta(seconds=10))
    # each further failure doubles the lock: 60, 120, 240, 480, 900 (cap), 900
    locks = []
    for _ in range(6):
        now = now + timedelta(seconds=901)
        with pytest.raises(AuthError, match=WRONG):
            auth.log_in(session, username="alice", password="bad-password", now=now)
        with pytest.raises(AuthError) as e:
            auth.log_in(session, username="alice", password="bad-password", now=now)
        locks.append(int(str(e.value).split(" in ")[1].split(" ")[0]))
    assert locks == [60, 120, 240, 480, 900, 900]
    # the lock expires: the right password works after 15 minutes and resets the counter
    now = now + timedelta(seconds=900)
    assert auth.log_in(session, username="alice", password="s3cret-pass", now=now).username == "alice"
    assert session.get(LoginAttempt, "alice") is None
    for _ in range(4):
        with pytest.raises(AuthError, match=WRONG):
            auth.log_in(session, username="alice", password="bad-password", now=now)
    assert auth.log_in(session, username="alice", password="s3cret-pass", now=now).username == "alice"


def test_unknown_user_is_throttled_identically(session):
    _alice(session)
    for name in ("alice", "ghost"):
        for _ in range(5):
            with pytest.raises(AuthError, match=WRONG):
                auth.log_in(session, username=name, password="bad-password", now=T0)
        with pytest.raises(AuthError, match=r"^Too many attempts, try again in 30 s\.$"):
            auth.log_in(session, username=name, password="bad-password", now=T0)
    a, g = session.get(LoginAttempt, "alice"), session.get(LoginAttempt, "ghost")
    assert (a.failures, a.locked_until) == (g.failures, g.locked_until)


def test_throttle_is_per_username(session):
    _alice(session)
    auth.sign_up(session, username="bob", email="b@example.com", name="Bob", password="bobs-password")
    for _ in range(5):
        with pytest.raises(AuthError):
            auth.log_in(session, username="alice", password="bad-password", now=T0)
    assert auth.log_in(session, username="bob", password="bobs-password", now=T0).username == "bob"


def test_old_failures_are_forgotten(session):
    _alice(session)
    for _ in range(4):
        with pytest.raises(AuthError):
            auth.log_in(session, username="alice", password="bad-password", now=T0)
    later = T0 + timedelta(days=2)
    with pytest.raises(AuthError, match=WRONG):
        auth.log_in(session, username="alice", password="bad-password", now=later)
    assert session.get(LoginAttempt, "alice").failures == 1


def test_stale_throttle_records_are_pruned(session):
    for name in ("spray1", "spray2"):
        with pytest.raises(AuthError):
            auth.log_in(session, username=name, password="bad-password", now=T0)
    with pytest.raises(AuthError):
        auth.log_in(session, username="spray3", password="bad-password", now=T0 + timedelta(days=2))
    assert sorted(r.username for r in session.query(LoginAttempt).all()) == ["spray3"]


def test_change_password(session):
    info = _alice(session)
    with pytest.raises(AuthError, match="Wrong password"):
        auth.change_password(session, user_id=info.id, old_password="nope-nope", new_password="brand-new-pw")
    with pytest.raises(InputError, match="New password must be 8-128 characters long, got 3"):
        auth.change_password(session, user_id=info.id, old_password="s3cret-pass", new_password="abc")
    auth.change_password(session, user_id=info.id, old_password="s3cret-pass", new_password="brand-new-pw")
    with pytest.raises(AuthError, match=WRONG):
        auth.log_in(session, username="alice", password="s3cret-pass", now=T0)
    assert auth.log_in(session, username="alice", password="brand-new-pw", now=T0).id == info.id


def test_long_passwords_use_all_characters():
    a = "x" * 100 + "A"
    b = "x" * 100 + "B"
    h = auth.hash_password(a)
    assert auth.check_password(a, h)
    assert not auth.check_password(b, h)  # plain bcrypt would truncate at 72 bytes and accept b
    assert not auth.check_password(a, "not-a-hash")


def test_bcrypt_rounds_env(monkeypatch):
    monkeypatch.setenv("BEATTOK_BCRYPT_ROUNDS", "1")
    assert auth.bcrypt_rounds() == 4
    monkeypatch.setenv("BEATTOK_BCRYPT_ROUNDS", "junk")
    assert auth.bcrypt_rounds() == 12
    monkeypatch.delenv("BEATTOK_BCRYPT_ROUNDS")
    assert auth.bcrypt_rounds() == 12


def test_cookie_key_from_env_then_generated_once(monkeypatch, _isolated_data_dir):
    assert auth.cookie_key() == os.environ["BEATTOK_COOKIE_KEY"]
    monkeypatch.delenv("BEATTOK_COOKIE_KEY")
    key = auth.cookie_key()
    path = _isolated_data_dir / "cookie_key"
    assert len(key) >= 64 and key != "some_key"
    assert path.read_text() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert auth.cookie_key(get_settings()) == key  # stable across calls
    assert [p.name for p in _isolated_data_dir.iterdir()] == ["cookie_key"]  # no temp files left


def test_delete_account_removes_rows_files_and_fixes_like_counts(session, tmp_path):
    from core.db.models import Album, Like, Project, Track
    from core.storage import LocalStorage

    store = LocalStorage(tmp_path / "media")
    alice = _alice(session)
    bob = auth.sign_up(session, username="bob", email="b@example.com", name="Bob", password="bobs-password")
    keys = [
        store.put(b"audio", suffix="wav"),
        store.put(b"cover", suffix="png"),
        store.put(b"{}", suffix="json"),
    ]
    bob_key = store.put(b"bob audio", suffix="wav")
    ta = Track(owner_id=alice.id, title="a", audio_key=keys[0], cover_key=keys[1], share_token="ta")
    tb = Track(owner_id=bob.id, title="b", audio_key=bob_key, share_token="tb", like_count=1)
    session.add_all([ta, tb])
    session.commit()
    session.add_all(
        [
            Like(user_id=alice.id, track_id=tb.id),
            Project(owner_id=alice.id, title="p", data_key=keys[2]),
            Album(owner_id=alice.id, name="al"),
        ]
    )
    session.commit()
    with pytest.raises(AuthError, match="Wrong password"):
        auth.delete_account(session, store, user_id=alice.id, password="not-the-password")
    assert all(store.exists(k) for k in keys)
    auth.delete_account(session, store, user_id=alice.id, password="s3cret-pass")
    assert auth.get_user(session, alice.id) is None
    assert not any(store.exists(k) for k in keys)
    assert store.exists(bob_key)
    assert session.query(Track).count() == 1 and session.query(Like).count() == 0
    assert session.query(Project).count() == 0 and session.query(Album).count() == 0
    assert session.get(Track, tb.id).like_count == 0


def test_delete_account_removes_project_stems_but_not_others_files(session, tmp_path):
    import json as _json

    from core.db.models import Job, Project, Track
    from core.storage import LocalStorage

    store = LocalStorage(tmp_path / "media")
    alice = _alice(session)
    bob = auth.sign_up(session, username="bob", email="b@example.com", name="Bob", password="bobs-password")
    bob_audio = store.put(b"bob's public song", suffix="wav")
    session.add(Track(owner_id=bob.id, title="b", audio_key=bob_audio, share_token="tb", visibility="public"))
    own_stem, own_midi, ckpt = (
        store.put(b"flac", suffix="flac"),
        store.put(b"midi", suffix="mid"),
        store.put(b"pt", suffix="pt"),
    )
    # alice's project uses two stems of her own and bob's public track as a third
    doc = {"stems": [{"audio": own_stem}, {"midi": own_midi}, {"audio": bob_audio}], "note": "../etc/passwd"}
    data_key = store.put(_json.dumps(doc).encode(), suffix="json")
    session.add(Project(owner_id=alice.id, title="p", data_key=data_key))
    session.add(Job(owner_id=alice.id, kind="train", result_key=ckpt, params_json='{"x": 1}'))
    session.commit()
    auth.delete_account(session, store, user_id=alice.id, password="s3cret-pass")
    assert not any(store.exists(k) for k in (own_stem, own_midi, ckpt, data_key))
    assert store.exists(bob_audio) and store.get(bob_audio) == b"bob's public song"
