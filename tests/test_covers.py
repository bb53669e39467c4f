"""Cover thumbnails: what pages send to the browser instead of the stored (up to 1.6 MB) PNG."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from core.covers_placeholder import cover_thumbnail
from core.errors import InputError
from tests.conftest import make_track, make_user


def _png(width: int, height: int, mode: str = "RGB", colour=(200, 40, 90)) -> bytes:
    fill = colour if mode == "RGB" else (*colour, 0)
    out = io.BytesIO()
    Image.new(mode, (width, height), fill).save(out, format="PNG")
    return out.getvalue()


def _open(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def test_a_big_painted_cover_becomes_a_small_jpeg_that_looks_the_same():
    from core.album import make_cover

    cover = make_cover(album="Neon Skyline", artist="Mira Vale", style="gradient", seed=1)
    thumb = cover_thumbnail(cover.png, size=400)
    img = _open(thumb)
    assert img.format == "JPEG" and img.size == (400, 400)
    assert len(thumb) < len(cover.png) / 20  # 1.6 MB -> tens of kB
    big = np.asarray(_open(cover.png).convert("RGB").resize((400, 400), Image.Resampling.BOX), np.float32)
    diff = np.abs(np.asarray(img.convert("RGB"), np.float32) - big)
    assert diff.mean() < 6.0  # same picture: mean error of a few levels out of 255


def test_thumbnails_keep_the_aspect_ratio_never_grow_and_flatten_transparency():
    assert _open(cover_thumbnail(_png(1200, 600), size=400)).size == (400, 200)
    assert _open(cover_thumbnail(_png(64, 64), size=400)).size == (64, 64)
    clear = _open(cover_thumbnail(_png(100, 100, mode="RGBA"), size=400)).convert("RGB")
    assert np.asarray(clear).max() < 10  # fully transparent pixels are drawn black, not garbage


@pytest.mark.parametrize(
    ("data", "kw", "message"),
    [(b"not an image", {}, "not a readable image"), (_png(10, 10), {"size": 10}, "thumbnail size"),
     (_png(10, 10), {"size": 400.0}, "thumbnail size"), (_png(10, 10), {"quality": 100}, "JPEG quality")],
)  # fmt: skip
def test_bad_thumbnail_input_is_an_input_error(data, kw, message):
    with pytest.raises(InputError, match=message):
        cover_thumbnail(data, **kw)


def test_feed_cards_show_a_jpeg_thumbnail_of_the_stored_cover(db):
    from sqlmodel import Session
    from streamlit.testing.v1 import AppTest

    from components.track_card import CARD_COVER_PX, _cover
    from core.db.models import Track

    engine, storage = db
    user = make_user(engine)
    big = _png(1024, 1024)
    tid = make_track(engine, storage, user.id, title="Big cover", cover_png=big)
    with Session(engine) as s:
        cover_key = s.get(Track, tid).cover_key
    assert storage.get(cover_key) == big  # the library keeps the full cover
    img = _open(_cover(cover_key, "Big cover", "Alice"))
    assert img.format == "JPEG" and img.size == (CARD_COVER_PX, CARD_COVER_PX)
    assert np.abs(np.asarray(img, np.float32) - (200, 40, 90)).max() < 8
    # a missing file gives the placeholder, still a JPEG
    lost = _open(_cover("0" * 64 + ".png", "Lost", "Alice"))
    assert lost.format == "JPEG" and lost.size[0] == lost.size[1] <= CARD_COVER_PX

    at = AppTest.from_file("../app.py", default_timeout=60).run()
    assert not at.exception, at.exception
    urls = [u for img in at.get("image") for u in img.value]
    svg = [u for u in urls if u.startswith("data:image/svg+xml")]  # the card's waveform
    covers = [u for u in urls if u not in svg]
    assert len(covers) == len(svg) == 1 and covers[0].endswith(".jpg"), urls


def test_disk_cache_makes_once_survives_a_restart_and_keeps_its_budget(tmp_path):
    import os

    from core.disk_cache import BytesCache

    calls = []

    def make(n: int):
        def inner() -> bytes:
            calls.append(n)
            return bytes([n % 256]) * 1000

        return inner

    cache = BytesCache(tmp_path / "c", budget_mb=0.005, suffix=".bin", prune_every=1)  # 5,242 bytes
    assert cache.get_or_make(("a", 1), make(1)) == b"\x01" * 1000
    assert cache.get_or_make(("a", 1), make(99)) == b"\x01" * 1000 and calls == [1]
    assert cache.counts == {"hits": 1, "made": 1, "failed": 0}
    # a new process (a restarted server) reads the file, and removes what a crash left half-written
    import time as _time

    for name, age in (("old.123.456.tmp", 3600), ("new.123.456.tmp", 0)):
        (tmp_path / "c" / name).write_bytes(b"partial")
        os.utime(tmp_path / "c" / name, (_time.time() - age, _time.time() - age))
    again = BytesCache(tmp_path / "c", budget_mb=0.005, suffix=".bin")
    assert sorted(p.name for p in (tmp_path / "c").glob("*.tmp")) == ["new.123.456.tmp"]
    (tmp_path / "c" / "new.123.456.tmp").unlink()
    assert again.get_or_make(("a", 1), make(99)) == b"\x01" * 1000 and calls == [1]
    # keys are exact: another value is another file
    assert again.get_or_make(("a", 2), make(2)) == b"\x02" * 1000
    # over budget, the least recently used go first: touch "a1" so that "a2" is the oldest
    for path, age in ((cache.path(("a", 2)), 100), (cache.path(("a", 1)), 50)):
        os.utime(path, (path.stat().st_atime - age, path.stat().st_mtime - age))
    cache.get_or_make(("a", 1), make(99))  # a hit makes it recent
    for n in range(3, 7):  # six files for a budget of five
        cache.get_or_make(("b", n), make(n))
    files = sorted(p.name for p in (tmp_path / "c").glob("*.bin"))
    assert len(files) == 5 and sum((tmp_path / "c" / f).stat().st_size for f in files) <= 5242
    assert not cache.path(("a", 2)).exists() and cache.path(("a", 1)).exists()
    assert not list((tmp_path / "c").glob("*.tmp"))


def test_disk_cache_writes_nothing_when_making_fails_and_serves_when_it_cannot_write(tmp_path):
    from core.disk_cache import BytesCache
    from core.errors import InputError as Bad

    cache = BytesCache(tmp_path / "c", budget_mb=1, suffix=".jpg")

    def broken() -> bytes:
        raise Bad("not an image")

    with pytest.raises(Bad, match="not an image"):
        cache.get_or_make(("x",), broken)
    assert not list((tmp_path / "c").iterdir())
    cache.folder = tmp_path / "gone"  # a folder removed under the running app: still answers
    assert cache.get_or_make(("y",), lambda: b"data") == b"data" and cache.counts["failed"] == 1
    with pytest.raises(Bad, match="budget"):
        BytesCache(tmp_path / "d", budget_mb=0)


def test_card_covers_come_from_the_disk_cache_after_a_restart(db, tmp_path):
    from sqlmodel import Session

    from core.covers_placeholder import card_cover, stored_cover_thumbnail
    from core.db.models import Track
    from core.disk_cache import BytesCache

    engine, storage = db
    user = make_user(engine)
    tid = make_track(engine, storage, user.id, title="Cached", cover_png=_png(1024, 1024))
    with Session(engine) as s:
        cover_key = s.get(Track, tid).cover_key

    class CountingStorage:
        def __init__(self) -> None:
            self.reads = 0

        def get(self, key: str) -> bytes:
            self.reads += 1
            return storage.get(key)

    counting = CountingStorage()
    first = card_cover(storage=counting, cover_key=cover_key, title="Cached", artist="A",
                       cache=BytesCache(tmp_path / "covers", budget_mb=8, suffix=".jpg"))  # fmt: skip
    restarted = BytesCache(tmp_path / "covers", budget_mb=8, suffix=".jpg")
    second = card_cover(storage=counting, cover_key=cover_key, title="Cached", artist="A", cache=restarted)
    assert first == second and counting.reads == 1 and restarted.counts["hits"] == 1
    assert _open(second).format == "JPEG" and _open(second).size == (400, 400)
    assert stored_cover_thumbnail(storage=counting, cover_key=cover_key, cache=restarted) == second
    # a lost or damaged file gives the title's placeholder, which is not cached under the cover's key
    lost = card_cover(storage=storage, cover_key="ab/" + "0" * 32 + ".png", title="Lost", artist="A",
                      cache=restarted)  # fmt: skip
    bad_key = storage.put(b"not a picture", suffix="png")
    damaged = card_cover(storage=storage, cover_key=bad_key, title="Lost", artist="A", cache=restarted)
    assert lost == damaged and _open(lost).format == "JPEG"
    assert not restarted.path(("stored", 1, bad_key, 400)).exists()
    with pytest.raises(InputError, match="not a readable image"):
        stored_cover_thumbnail(storage=storage, cover_key=bad_key, cache=restarted)
