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
