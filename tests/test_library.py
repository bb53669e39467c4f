"""Track library: publishing, visibility and share links, owner-only changes, likes, downloads, albums."""

from __future__ import annotations

import io
import json
import sys
import types

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select
from sqlmodel import Session

from core import library
from core.auth import sign_up
from core.covers_placeholder import placeholder_cover
from core.db.engine import make_engine, migrate
from core.db.models import Album, Like, Track, Visibility
from core.errors import ForbiddenError, InputError, NotFoundError
from core.storage import LocalStorage

SR = 44100
NOT_FOUND = "That track does not exist or is not available."


@pytest.fixture(autouse=True)
def _fast_bcrypt(monkeypatch):
    monkeypatch.setenv("BEATTOK_BCRYPT_ROUNDS", "4")


@pytest.fixture
def env(tmp_path):
    eng = make_engine(f"sqlite:///{tmp_path / 'lib.db'}")
    migrate(eng)
    store = LocalStorage(tmp_path / "media")
    with Session(eng) as s:
        alice = sign_up(s, username="alice", email="a@example.com", name="Alice", password="password-a")
        bob = sign_up(s, username="bob", email="b@example.com", name="Bob", password="password-b")
        yield s, store, alice, bob
    eng.dispose()


def _files(store: LocalStorage) -> list[str]:
    if not store.root.exists():
        return []
    return sorted(p.relative_to(store.root).as_posix() for p in store.root.rglob("*") if p.is_file())


def _tone(seconds: float = 1.0, freq: float = 220.0, amp: float = 0.4) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return np.tile((amp * np.sin(2 * np.pi * freq * t)).astype(np.float32), (2, 1))


def _pub(s, store, owner, title="Song", **kw):
    kw.setdefault("bpm", 120.0)
    kw.setdefault("key", "A minor")
    kw.setdefault("beats", [0.5, 1.0])
    return library.publish_audio(
        s, store, owner_id=owner.id, y=kw.pop("y", _tone()), sr=SR, title=title, **kw
    )


def test_publish_stores_wav_cover_peaks_and_metadata(env):
    s, store, alice, _ = env
    y = _tone(2.0)
    y[:, SR // 2 : SR] *= 0.25  # a quieter second quarter, visible in the envelope
    t = _pub(s, store, alice, "  <b>Night & Day</b>  ", y=y, genre="Lofi", tags=" Chill, #NIGHT ,chill")
    assert t.id is not None and t.owner_id == alice.id
    assert t.title == "<b>Night & Day</b>"  # stored verbatim, only stripped
    assert t.artist_name == "Alice" and t.genre == "Lofi" and t.tags == "chill,night"
    assert (t.bpm, t.key, t.audio_format, t.source) == (120.0, "A minor", "wav", "upload")
    assert t.visibility == Visibility.private and t.published_at is None
    assert t.duration_s == pytest.approx(2.0)
    assert t.loudness_lufs == pytest.approx(-10.4, abs=1.5)  # 0.4-amplitude sine, partly quieter
    assert json.loads(t.beats_json) == [0.5, 1.0]
    assert len(t.share_token) >= 20
    # audio: a decodable WAV of y
    from core.audio.io import decode

    wav = store.get(t.audio_key)
    assert wav[:4] == b"RIFF"
    back = decode(wav, filename="x.wav", sr=SR)
    assert back.shape == (2, 2 * SR) and np.abs(back - y).max() < 1e-3
    # cover: a PNG placeholder
    assert Image.open(io.BytesIO(store.get(t.cover_key))).size == (512, 512)
    # peaks: 400 [min, max] pairs matching the signal
    p = library.peaks(t)
    assert p.shape == (400, 2)
    assert p[:, 1].max() == pytest.approx(0.4, abs=0.01) and p[:, 0].min() == pytest.approx(-0.4, abs=0.01)
    assert p[110:190, 1].max() == pytest.approx(0.1, abs=0.01)  # the quieter quarter (points 100-200)
    assert sorted(_files(store)) == sorted([t.audio_key, t.cover_key])


def test_publish_original_bytes_and_cover(env):
    s, store, alice, _ = env
    from core.audio.io import encode

    mp3 = encode(_tone(), sr=SR, fmt="mp3")
    cover = placeholder_cover(title="x", artist="y", size=64)
    t = _pub(s, store, alice, "Up", original=mp3, original_ext=".MP3", cover_png=cover, artist_name="DJ A")
    assert t.audio_format == "mp3" and store.get(t.audio_key) == mp3
    assert store.get(t.cover_key) == cover and t.artist_name == "DJ A"
    data, name, mime = library.audio_bytes(s, store, track=t, fmt="mp3")
    assert (data, name, mime) == (mp3, "Up.mp3", "audio/mpeg")


def test_publish_public_sets_published_at_and_lists_in_feed(env):
    s, store, alice, _ = env
    t = _pub(s, store, alice, "Pub", visibility="public")
    assert t.published_at is not None
    assert [x.id for x in library.feed(s)] == [t.id] and library.count_feed(s) == 1


def test_publish_runs_quick_analysis_when_bpm_or_key_missing(env, monkeypatch):
    s, store, alice, _ = env
    calls = []

    def quick_analysis(y, *, sr):
        calls.append((y.shape, sr))
        return types.SimpleNamespace(
            duration_s=y.shape[1] / sr, loudness_lufs=-12.5, tempo_bpm=97.4, key="C major", beats=[0.2, 0.8]
        )

    fake = types.ModuleType("core.audio.analysis")
    fake.quick_analysis = quick_analysis
    monkeypatch.setitem(sys.modules, "core.audio.analysis", fake)
    t = library.publish_audio(s, store, owner_id=alice.id, y=_tone(), sr=SR, title="auto")
    assert calls == [((2, SR), SR)]
    assert (t.bpm, t.key, t.loudness_lufs, json.loads(t.beats_json)) == (97.4, "C major", -12.5, [0.2, 0.8])
    t2 = library.publish_audio(s, store, owner_id=alice.id, y=_tone(), sr=SR, title="half", key="D minor")
    assert (t2.bpm, t2.key) == (97.4, "D minor") and len(calls) == 2
    # beats given: the caller analysed already; a missing tempo/key means "none found"
    t3 = library.publish_audio(s, store, owner_id=alice.id, y=_tone(), sr=SR, title="ambient", beats=[])
    assert (t3.bpm, t3.key, t3.beats_json) == (None, None, "[]") and len(calls) == 2
    assert t3.loudness_lufs == pytest.approx(-8.9, abs=0.5)  # stereo 0.4 sine, measured without analysis


@pytest.mark.slow  # librosa's first beat_track compiles numba code (~15-30 s on a fresh install)
def test_publish_with_real_analysis(env, clicks):
    pytest.importorskip("core.audio.analysis")
    s, store, alice, _ = env
    t = library.publish_audio(
        s, store, owner_id=alice.id, y=clicks(bpm=120, seconds=8), sr=SR, title="clicks"
    )
    assert t.bpm == pytest.approx(120, rel=0.05) or t.bpm == pytest.approx(60, rel=0.05)
    assert len(json.loads(t.beats_json)) >= 6


def test_commit_failure_leaves_no_files(env, monkeypatch):
    s, store, alice, _ = env

    def broken_commit():
        raise RuntimeError("disk I/O error")

    monkeypatch.setattr(s, "commit", broken_commit)
    with pytest.raises(RuntimeError, match="disk I/O"):
        _pub(s, store, alice, "Doomed")
    monkeypatch.undo()
    assert _files(store) == []
    assert s.execute(select(func.count()).select_from(Track)).scalar_one() == 0


def test_storage_failure_midway_leaves_no_files(env, monkeypatch):
    s, store, alice, _ = env
    real_put = store.put

    def put(data, *, suffix):
        if suffix == "png":
            raise OSError(28, "No space left on device")
        return real_put(data, suffix=suffix)

    monkeypatch.setattr(store, "put", put)
    with pytest.raises(OSError):
        _pub(s, store, alice, "Doomed")
    assert _files(store) == []
    assert s.execute(select(func.count()).select_from(Track)).scalar_one() == 0


def test_every_writer_deletes_its_new_files_when_the_commit_fails(env, monkeypatch):
    s, store, alice, _ = env
    t1, t2 = _pub(s, store, alice, "one"), _pub(s, store, alice, "two")
    s.expire_all()
    before = _files(store)
    old_covers = [t1.cover_key, t2.cover_key]
    cover = placeholder_cover(title="LP", artist="Alice", size=64)

    def broken_commit():
        raise RuntimeError("disk I/O error")

    monkeypatch.setattr(s, "commit", broken_commit)
    ids = [t1.id, t2.id]
    writers = (
        lambda: library.set_cover_for_user_tracks(s, store, user_id=alice.id, track_ids=ids, cover_png=cover),
        lambda: library.save_album(
            s, store, owner_id=alice.id, name="LP", artist="A", cover_png=cover, titles=["a"]
        ),
        lambda: library.audio_bytes(s, store, track=s.get(Track, t1.id), fmt="mp3"),
    )
    for write in writers:
        with pytest.raises(RuntimeError, match="disk I/O"):
            write()
        assert _files(store) == before
    monkeypatch.undo()
    s.expire_all()
    assert [s.get(Track, t1.id).cover_key, s.get(Track, t2.id).cover_key] == old_covers
    assert s.get(Track, t1.id).mp3_key is None
    assert s.execute(select(func.count()).select_from(Album)).scalar_one() == 0


def test_visibility_rules_and_share_tokens(env):
    s, store, alice, bob = env
    priv = _pub(s, store, alice, "priv")
    unl = _pub(s, store, alice, "unl", visibility="unlisted")
    pub = _pub(s, store, alice, "pub", visibility="public")
    # the feed lists only public tracks
    assert [t.title for t in library.feed(s)] == ["pub"]
    # by id: the owner sees all; others (and guests) only public
    for t in (priv, unl, pub):
        assert library.get_for_viewer(s, track_id=t.id, viewer_id=alice.id).id == t.id
    assert library.get_for_viewer(s, track_id=pub.id, viewer_id=None).id == pub.id
    messages = set()
    for viewer in (bob.id, None):
        for tid in (priv.id, unl.id, 99999, "1", None):
            with pytest.raises(NotFoundError) as e:
                library.get_for_viewer(s, track_id=tid, viewer_id=viewer)
            messages.add(str(e.value))
    # by token: public and unlisted open; private, unknown, rotated and deleted give the same error
    assert library.by_share_token(s, token=unl.share_token).id == unl.id
    assert library.by_share_token(s, token=pub.share_token).id == pub.id
    old = pub.share_token
    new = library.rotate_share_token(s, track_id=pub.id, user_id=alice.id)
    assert new != old and library.by_share_token(s, token=new).id == pub.id
    tok_unl = unl.share_token
    library.delete_track(s, store, track_id=unl.id, user_id=alice.id)
    for token in (priv.share_token, old, tok_unl, "nope", "", "x" * 500, None):
        with pytest.raises(NotFoundError) as e:
            library.by_share_token(s, token=token)
        messages.add(str(e.value))
    assert messages == {NOT_FOUND}


def test_only_the_owner_can_update_delete_or_rotate(env):
    s, store, alice, bob = env
    pub = _pub(s, store, alice, "pub", visibility="public")
    priv = _pub(s, store, alice, "priv")
    with pytest.raises(ForbiddenError, match="Only the owner"):
        library.update_track(s, track_id=pub.id, user_id=bob.id, title="hacked")
    with pytest.raises(ForbiddenError):
        library.delete_track(s, store, track_id=pub.id, user_id=bob.id)
    with pytest.raises(ForbiddenError):
        library.rotate_share_token(s, track_id=pub.id, user_id=bob.id)
    with pytest.raises(NotFoundError, match=NOT_FOUND):  # bob may not even learn it exists
        library.update_track(s, track_id=priv.id, user_id=bob.id, title="hacked")
    with pytest.raises(NotFoundError):
        library.delete_track(s, store, track_id=priv.id, user_id=bob.id)
    s.expire_all()
    assert s.get(Track, pub.id).title == "pub" and s.get(Track, priv.id).title == "priv"
    assert store.exists(pub.audio_key) and store.exists(priv.audio_key)


def test_update_track(env):
    s, store, alice, _ = env
    t = _pub(s, store, alice, "old")
    t = library.update_track(
        s, track_id=t.id, user_id=alice.id, title=" <script>x</script> ", genre="Pop", tags=["A", "b"]
    )
    assert (t.title, t.genre, t.tags, t.published_at) == ("<script>x</script>", "Pop", "a,b", None)
    t = library.update_track(s, track_id=t.id, user_id=alice.id, visibility="public", artist_name="Ali")
    first = t.published_at
    assert first is not None and t.artist_name == "Ali"
    library.update_track(s, track_id=t.id, user_id=alice.id, visibility="private")
    t = library.update_track(s, track_id=t.id, user_id=alice.id, visibility="public")
    assert t.published_at == first  # set only the first time
    with pytest.raises(InputError, match="Visibility 'secret' is not valid"):
        library.update_track(s, track_id=t.id, user_id=alice.id, visibility="secret", title="new")
    assert s.get(Track, t.id).title == "<script>x</script>"  # nothing changed on a bad value


def test_delete_removes_files_and_likes(env):
    s, store, alice, bob = env
    t = _pub(s, store, alice, "gone", visibility="public")
    library.audio_bytes(s, store, track=t, fmt="mp3")  # creates the cached mp3
    s.refresh(t)
    keys = [t.audio_key, t.cover_key, t.mp3_key]
    assert all(k and store.exists(k) for k in keys)
    tid = t.id
    library.toggle_like(s, track_id=tid, user_id=bob.id)
    library.delete_track(s, store, track_id=tid, user_id=alice.id)
    assert _files(store) == []
    assert s.execute(select(func.count()).select_from(Like)).scalar_one() == 0
    with pytest.raises(NotFoundError):
        library.get_for_viewer(s, track_id=tid, viewer_id=alice.id)
    with pytest.raises(NotFoundError):
        library.delete_track(s, store, track_id=tid, user_id=alice.id)


def test_likes_toggle_count_and_visibility(env):
    s, store, alice, bob = env
    pub = _pub(s, store, alice, "pub", visibility="public")
    unl = _pub(s, store, alice, "unl", visibility="unlisted")
    priv = _pub(s, store, alice, "priv")
    assert library.toggle_like(s, track_id=pub.id, user_id=bob.id) == (True, 1)
    assert library.toggle_like(s, track_id=pub.id, user_id=alice.id) == (True, 2)
    assert library.toggle_like(s, track_id=pub.id, user_id=bob.id) == (False, 1)
    assert library.toggle_like(s, track_id=pub.id, user_id=bob.id) == (True, 2)
    assert library.toggle_like(s, track_id=unl.id, user_id=bob.id) == (True, 1)
    assert library.toggle_like(s, track_id=priv.id, user_id=alice.id) == (True, 1)  # own private track
    with pytest.raises(NotFoundError, match=NOT_FOUND):
        library.toggle_like(s, track_id=priv.id, user_id=bob.id)
    assert library.liked_ids(s, user_id=bob.id, track_ids=[pub.id, unl.id, priv.id]) == {pub.id, unl.id}
    assert library.liked_ids(s, user_id=None, track_ids=[pub.id]) == set()
    n_likes = s.execute(select(func.count()).select_from(Like).where(Like.track_id == pub.id)).scalar_one()
    s.expire_all()
    assert s.get(Track, pub.id).like_count == n_likes == 2


def test_plays_and_downloads_are_counted(env):
    s, store, alice, _ = env
    t = _pub(s, store, alice, "count", visibility="public")
    for _ in range(3):
        library.record_play(s, track_id=t.id)
    library.record_download(s, track_id=t.id)
    s.expire_all()
    assert (s.get(Track, t.id).play_count, s.get(Track, t.id).download_count) == (3, 1)
    with pytest.raises(NotFoundError):
        library.record_play(s, track_id=424242)


def test_mp3_made_once_then_cached(env, monkeypatch):
    s, store, alice, _ = env
    t = _pub(s, store, alice, "Intro: Part 1/2")
    data, name, mime = library.audio_bytes(s, store, track=t, fmt="original")
    assert (name, mime) == ("Intro_ Part 1_2.wav", "audio/wav") and data[:4] == b"RIFF"
    mp3, name, mime = library.audio_bytes(s, store, track=t, fmt="mp3")
    assert name.endswith(".mp3") and mime == "audio/mpeg" and len(mp3) > 1000
    s.refresh(t)
    assert t.mp3_key and store.get(t.mp3_key) == mp3

    import core.audio.io as aio

    def no_encode(*a, **k):
        raise AssertionError("the cached mp3 should be used")

    monkeypatch.setattr(aio, "encode", no_encode)
    assert library.audio_bytes(s, store, track=t, fmt="mp3")[0] == mp3
    assert len(_files(store)) == 3
    with pytest.raises(InputError, match="Download format 'flac' is not supported"):
        library.audio_bytes(s, store, track=t, fmt="flac")


def test_mp3_of_a_saved_wav_over_the_upload_limit_is_made(env, monkeypatch):
    """Results are saved as WAV (10 minutes: 106 MB, over the 100 MB upload limit); playing one in the
    feed makes its MP3 from that WAV, which must not be refused as an oversized upload."""
    s, store, alice, _ = env
    t = _pub(s, store, alice, "Long result")
    monkeypatch.setenv("BEATTOK_MAX_UPLOAD_MB", "0.01")  # 10 kB: the stored WAV is bigger
    assert len(store.get(t.audio_key)) > 0.01 * 1024 * 1024
    mp3, name, _ = library.audio_bytes(s, store, track=t, fmt="mp3")
    from core.audio.io import probe

    assert name == "Long result.mp3" and probe(mp3, filename=name).format == "mp3"


def test_loud_tracks_play_turned_down_and_download_unchanged(env, tmp_path):
    from core.audio.io import decode
    from core.audio.loudness import integrated_lufs
    from core.disk_cache import BytesCache

    s, store, alice, _ = env
    loud = _pub(s, store, alice, "Loud", y=_tone(3.0, amp=0.9))  # about -4 LUFS
    quiet = _pub(s, store, alice, "Quiet", y=_tone(3.0, amp=0.05))  # about -22 LUFS
    assert loud.loudness_lufs > library.PLAYBACK_LUFS + 5 and quiet.loudness_lufs < library.PLAYBACK_LUFS
    cache = BytesCache(tmp_path / "play", budget_mb=16, suffix=".mp3")
    data, mime = library.playback_bytes(s, store, track=loud, cache=cache)
    assert mime == "audio/mpeg"
    played = decode(data, filename="p.mp3", sr=SR)
    assert integrated_lufs(played, sr=SR) == pytest.approx(library.PLAYBACK_LUFS, abs=0.5)
    # the download is the artist's file, untouched, and its MP3 is not the turned-down one
    original = decode(library.audio_bytes(s, store, track=loud, fmt="original")[0], filename="o.wav", sr=SR)
    assert integrated_lufs(original, sr=SR) == pytest.approx(loud.loudness_lufs, abs=0.01)
    mp3 = library.audio_bytes(s, store, track=loud, fmt="mp3")[0]
    assert integrated_lufs(decode(mp3, filename="m.mp3", sr=SR), sr=SR) > library.PLAYBACK_LUFS + 5
    # made once, then read from the cache
    assert library.playback_bytes(s, store, track=loud, cache=cache)[0] == data
    assert cache.counts["made"] == 1 and cache.counts["hits"] == 1
    # quieter tracks play their own MP3: never raised
    assert (
        library.playback_bytes(s, store, track=quiet, cache=cache)[0]
        == library.audio_bytes(s, store, track=quiet, fmt="mp3")[0]
    )
    assert cache.counts["made"] == 1
    assert library.playback_gain_db(loud) == pytest.approx(
        library.PLAYBACK_LUFS - loud.loudness_lufs, abs=0.05
    )


def test_cover_bytes_falls_back_to_placeholder(env):
    s, store, alice, _ = env
    t = _pub(s, store, alice, "cov")
    assert library.cover_bytes(store, t) == store.get(t.cover_key)
    store.delete(t.cover_key)
    assert library.cover_bytes(store, t)[:8] == b"\x89PNG\r\n\x1a\n"


def test_set_cover_for_user_tracks(env):
    s, store, alice, bob = env
    a1, a2 = _pub(s, store, alice, "a1"), _pub(s, store, alice, "a2")
    b1 = _pub(s, store, bob, "b1", visibility="public")
    old = [a1.cover_key, a2.cover_key]
    cover = placeholder_cover(title="Album", artist="Alice", size=64)
    before = _files(store)
    with pytest.raises(ForbiddenError):
        library.set_cover_for_user_tracks(
            s, store, user_id=alice.id, track_ids=[a1.id, b1.id], cover_png=cover
        )
    assert _files(store) == before  # nothing written when one track is not hers
    assert (
        library.set_cover_for_user_tracks(
            s, store, user_id=alice.id, track_ids=[a1.id, a2.id], cover_png=cover
        )
        == 2
    )
    s.expire_all()
    new = [s.get(Track, a1.id).cover_key, s.get(Track, a2.id).cover_key]
    assert new[0] != new[1] and all(store.get(k) == cover for k in new)
    assert not any(store.exists(k) for k in old)


def test_albums(env):
    s, store, alice, bob = env
    cover = placeholder_cover(title="LP", artist="Alice", size=64)
    album = library.save_album(
        s,
        store,
        owner_id=alice.id,
        name="LP",
        artist="Alice",
        genre="pop",
        mood="happy",
        style="neon",
        cover_png=cover,
        titles=["One", "Two <i>"],
    )
    assert (
        album.id
        and json.loads(album.titles_json) == ["One", "Two <i>"]
        and store.get(album.cover_key) == cover
    )
    assert [a.id for a in library.list_albums(s, owner_id=alice.id)] == [album.id]
    assert library.list_albums(s, owner_id=bob.id) == []
    with pytest.raises(NotFoundError):
        library.delete_album(s, store, album_id=album.id, user_id=bob.id)
    library.delete_album(s, store, album_id=album.id, user_id=alice.id)
    assert s.execute(select(func.count()).select_from(Album)).scalar_one() == 0
    assert _files(store) == []


def test_feed_through_library_filters_and_sorts(env):
    s, store, alice, _ = env
    _pub(s, store, alice, "Rain", visibility="public", genre="lofi", tags="chill")
    hot = _pub(s, store, alice, "Fire", visibility="public", genre="trap", tags="hype")
    _pub(s, store, alice, "Hidden", visibility="unlisted", genre="lofi", tags="chill")
    for _ in range(5):
        library.record_play(s, track_id=hot.id)
    assert [t.title for t in library.feed(s, sort="new")] == ["Fire", "Rain"]
    assert library.feed(s, sort="trending")[0].title == "Fire"
    assert [t.title for t in library.feed(s, tag="chill")] == ["Rain"]
    assert [t.title for t in library.feed(s, genre="LOFI")] == ["Rain"]
    assert [t.title for t in library.feed(s, query="fir")] == ["Fire"]
    assert library.count_feed(s, genre="lofi") == 1
    assert [t.title for t in library.list_user_tracks(s, owner_id=alice.id)] == ["Hidden", "Fire", "Rain"]


def test_placeholder_cover_is_deterministic_png_with_text():
    a = placeholder_cover(title="Night Drive", artist="Luna", size=256)
    assert a == placeholder_cover(title="Night Drive", artist="Luna", size=256)
    assert a != placeholder_cover(title="Night Drive", artist="Luna", size=256, seed=1)
    assert a != placeholder_cover(title="Day Drive", artist="Luna", size=256)
    img = np.asarray(Image.open(io.BytesIO(a)).convert("RGB"), dtype=np.float32)
    assert img.shape == (256, 256, 3)
    top, bottom = img[:100], img[-60:]
    assert top.std() > 5  # a gradient/motif, not a flat fill
    # white text drawn on the dark bottom panel
    assert (bottom.min(axis=2) > 235).mean() > 0.01
    untitled = np.asarray(
        Image.open(io.BytesIO(placeholder_cover(title="", artist="", size=256))).convert("L")
    )
    assert (untitled[-60:] > 235).mean() > 0.005  # "Untitled" is drawn


@pytest.mark.parametrize("size", [0, 63, 4096, 512.0, True])
def test_placeholder_cover_rejects_bad_sizes(size):
    with pytest.raises(InputError, match="Cover size"):
        placeholder_cover(title="t", artist="a", size=size)


def test_placeholder_cover_survives_hostile_text():
    for title in ("<script>alert(1)</script>", "a\x00b\nc\u202e", "x" * 10_000, "🎵" * 40, "봄날"):
        assert placeholder_cover(title=title, artist=title, size=64)[:4] == b"\x89PNG"
