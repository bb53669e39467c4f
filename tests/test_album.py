"""Album factory: titles (model + filters + ordering), covers (styles, typography, contrast), CLI."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.album import (
    MOODS,
    STYLES,
    clean_text,
    contrast_ratio,
    generate_title_set,
    generate_titles,
    is_known_title,
    load_title_assets,
    load_title_model,
    make_cover,
    normalize_title,
    relative_luminance,
    relevance,
    renderable_text,
    resolve_genre,
    title_similarity,
)
from core.errors import InputError, ModelError

DATA_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "spotify_songs" / "spotify_songs.csv"
BAD_NAMES = ["🔥🔥🔥", "東京の夜", "서울의 밤", "ليلة القاهرة", "<script>alert(1)</script>", "x" * 500]
ALBUMS = [
    ("Neon Skyline", "edm"),
    ("Paper Lanterns", "pop"),
    ("Concrete Garden", "rap"),
    ("Fuego Lento", "latin"),
]


@pytest.fixture(scope="module")
def model():
    import torch

    torch.set_num_threads(1)
    return load_title_model()


@pytest.fixture(scope="module")
def assets():
    return load_title_assets()


def _titles(model, assets, **kw):
    kw.setdefault("artist", "Mira Vale")
    return generate_title_set(model=model, assets=assets, **kw)


# --- inputs ------------------------------------------------------------------------------------------


def test_clean_text_strips_markup_controls_and_limits_length():
    assert clean_text("  <b>Night\x00 Drive</b>\n") == "Night Drive"
    assert clean_text("<script>alert(1)</script>") == "alert(1)"
    long = clean_text("word " * 100)
    assert 0 < len(long) <= 80 and not long.endswith(" ")
    assert len(clean_text("x" * 500)) == 80
    assert clean_text("🔥🔥") == "🔥🔥"
    zalgo = clean_text("Z" + "\u0301\u0316\u0317\u0318" * 10 + "algo")
    assert zalgo.endswith("algo") and len(zalgo) <= 3 + 4
    for bad in ["", "   ", "\x00\x01", "<b></b>", None]:
        with pytest.raises(InputError, match="empty"):
            clean_text(bad)


def test_unknown_genre_and_mood_fall_back_with_a_note(model, assets):
    assert resolve_genre("Hip-Hop") == ("rap", None)
    g, note = resolve_genre("polka")
    assert g is None and "polka" in note and "pop" in note
    ts = _titles(model, assets, album="Neon Skyline", genre="polka", mood="bittersweet", seed=3)
    assert len(ts.titles) == 12
    assert any("polka" in n for n in ts.notes) and any("bittersweet" in n for n in ts.notes)


# --- titles ------------------------------------------------------------------------------------------


def test_titles_deterministic_per_seed_and_different_across_seeds(model, assets):
    a = generate_titles(album="Neon Skyline", artist="Mira", genre="edm", seed=5, model=model, assets=assets)
    b = generate_titles(album="Neon Skyline", artist="Mira", genre="edm", seed=5, model=model, assets=assets)
    c = generate_titles(album="Neon Skyline", artist="Mira", genre="edm", seed=6, model=model, assets=assets)
    assert a == b
    assert len(set(a) ^ set(c)) >= 6  # most titles change with the seed


@pytest.mark.parametrize("n", [8, 12, 16])
def test_title_count_order_and_well_formed(model, assets, n):
    ts = _titles(model, assets, album="Paper Lanterns", genre="pop", mood="dreamy", n=n, seed=1)
    assert len(ts.titles) == n
    keys = [normalize_title(t) for t in ts.titles]
    assert len(set(keys)) == n, ts.titles  # no duplicates
    assert all(2 <= len(t) <= 80 and t == t.strip() for t in ts.titles)
    # the title track is the album name, early-middle, neither the opener nor the closer
    assert ts.titles[ts.title_track_index] == "Paper Lanterns"
    assert 1 <= ts.title_track_index <= n // 2
    # variety: no two titles are near-identical
    sims = [title_similarity(x, y) for i, x in enumerate(ts.titles) for y in ts.titles[i + 1 :]]
    assert max(sims) < 0.95


def test_bad_title_counts_and_lock_positions_raise(model, assets):
    for n in (0, 7, 17, 100):
        with pytest.raises(InputError, match="8 to 16"):
            _titles(model, assets, album="Neon Skyline", n=n)
    with pytest.raises(InputError, match="position"):
        _titles(model, assets, album="Neon Skyline", n=8, locked={8: "Too Far"})
    with pytest.raises(InputError, match="empty"):
        _titles(model, assets, album="   ")


def test_locked_titles_stay_at_their_positions(model, assets):
    first = _titles(model, assets, album="Concrete Garden", genre="rap", seed=2)
    locked = {0: first.titles[0], 5: first.titles[5], 11: "My Own Closer"}
    again = _titles(model, assets, album="Concrete Garden", genre="rap", seed=9, locked=locked)
    for pos, title in locked.items():
        assert again.titles[pos] == title
    assert len({normalize_title(t) for t in again.titles}) == 12
    assert set(again.titles) != set(first.titles)  # the unlocked ones were regenerated


def test_everything_locked_returns_the_locks(model, assets):
    locked = {i: f"Song Number {i}" for i in range(8)}
    ts = _titles(model, assets, album="Neon Skyline", n=8, locked=locked)
    assert ts.titles == [locked[i] for i in range(8)]
    locked.pop(3)
    ts = _titles(model, assets, album="Neon Skyline", n=8, locked=locked)
    assert ts.titles[3] == "Neon Skyline" and ts.title_track_index == 3


def test_titles_are_never_known_titles_shipped_set(model, assets):
    for i, (album, genre) in enumerate(ALBUMS):
        for t in generate_titles(album=album, genre=genre, seed=i, model=model, assets=assets):
            assert not is_known_title(t, assets.known), t


def test_album_name_that_is_a_known_title_gets_a_new_title_track(model, assets):
    assert is_known_title("Memories", assets.known)
    ts = _titles(model, assets, album="Memories", genre="pop", seed=0)
    track = ts.titles[ts.title_track_index]
    assert "Memories" in track and not is_known_title(track, assets.known)


@pytest.mark.skipif(not DATA_CSV.is_file(), reason="training data set not present")
def test_titles_are_not_in_the_full_training_csv(model, assets):
    from models.titles import clean_title

    known = set()
    with open(DATA_CSV, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            for name in (row["track_name"], row["album"]):
                known.add(normalize_title(name))
                known.add(normalize_title(clean_title(name)))
    assert normalize_title("Memories") in known
    for i, (album, genre) in enumerate(ALBUMS):
        ts = generate_titles(album=album, genre=genre, seed=10 + i, n=16, model=model, assets=assets)
        clash = [t for t in ts if normalize_title(t) in known]
        assert not clash, clash


@pytest.mark.parametrize("name", BAD_NAMES)
def test_titles_handle_bad_album_names(model, assets, name):
    ts = _titles(model, assets, album=name, genre="pop", seed=4)
    assert len(ts.titles) == 12
    assert all(t and "<" not in t for t in ts.titles)
    if name in ("東京の夜", "서울의 밤", "ليلة القاهرة", "🔥🔥🔥"):
        assert any("Latin" in n for n in ts.notes)


def test_relevance_prefers_own_album(model, assets):
    assert relevance("Neon Heart", album="Neon Skyline") > relevance("Cold Water", album="Neon Skyline")
    own = other = 0.0
    for album, genre in ALBUMS[:3]:
        mine = generate_titles(album=album, genre=genre, seed=1, model=model, assets=assets)
        theirs = generate_titles(album="Velvet Thunder", genre=genre, seed=1, model=model, assets=assets)
        own += np.mean([relevance(t, album=album) for t in mine])
        other += np.mean([relevance(t, album=album) for t in theirs])
    assert own > other


def test_missing_checkpoint_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_title_model(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError):
        load_title_model(bad)


# --- covers ------------------------------------------------------------------------------------------


def _decode(png: bytes) -> np.ndarray:
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG"
    return np.asarray(img.convert("RGB"))


def _ring_contrast(arr: np.ndarray, box, text_rgb, width: int = 10) -> float:
    """Independent check: the padding ring inside the text panel holds no glyph pixels."""
    x0, y0, x1, y1 = box
    region = arr[y0:y1, x0:x1]
    ring = np.concatenate(
        [
            region[:width].reshape(-1, 3),
            region[-width:].reshape(-1, 3),
            region[:, :width].reshape(-1, 3),
            region[:, -width:].reshape(-1, 3),
        ]
    )
    lum = relative_luminance(ring)
    lt = float(relative_luminance(np.array(text_rgb)))
    worst = lum.max() if lt > 0.5 else lum.min()
    return float(contrast_ratio(lt, worst))


@pytest.mark.parametrize("style", STYLES)
def test_cover_styles_size_format_and_contrast(style):
    r = make_cover(album="Neon Skyline", artist="Mira Vale", genre="edm", mood="dreamy", style=style, seed=2)
    assert r.style == style
    arr = _decode(r.png)
    assert arr.shape == (1024, 1024, 3)
    assert r.contrast_ratio >= 4.5
    (box,) = r.text_boxes
    assert _ring_contrast(arr, box, r.text_color) >= 4.5
    # the text really is drawn: pixels of the exact text colour inside the panel, none of it outside
    x0, y0, x1, y1 = box
    inside = np.all(arr[y0:y1, x0:x1] == np.array(r.text_color), axis=-1).mean()
    assert inside > 0.02
    assert arr.std() > 10  # artwork, not a flat fill


def test_cover_deterministic_and_varied():
    a = make_cover(album="Paper Lanterns", artist="Mira", genre="pop", seed=7)
    b = make_cover(album="Paper Lanterns", artist="Mira", genre="pop", seed=7)
    assert a.png == b.png
    imgs = [
        _decode(make_cover(album="Paper Lanterns", artist="Mira", genre="pop", seed=s).png) for s in range(4)
    ]
    small = [np.asarray(Image.fromarray(x).resize((32, 32)), dtype=np.float32) for x in imgs]
    dists = [np.abs(small[i] - small[j]).mean() for i in range(4) for j in range(i + 1, 4)]
    assert min(dists) > 8.0, dists
    big = make_cover(album="Paper Lanterns", artist="Mira", seed=1, size=1536)
    assert _decode(big.png).shape == (1536, 1536, 3) and big.contrast_ratio >= 4.5


def test_cover_moods_and_unknown_genre():
    for mood in MOODS:
        assert make_cover(album="Neon Skyline", artist="X", mood=mood, seed=1).contrast_ratio >= 4.5
    r = make_cover(album="Neon Skyline", artist="X", genre="polka", seed=1)
    assert r.contrast_ratio >= 4.5 and any("polka" in n for n in r.notes)


@pytest.mark.parametrize("name", BAD_NAMES)
def test_cover_bad_names_render_safely(name):
    r = make_cover(album=name, artist="🎧 DJ Ünïcødé", seed=1)
    arr = _decode(r.png)
    assert arr.shape == (1024, 1024, 3) and r.contrast_ratio >= 4.5
    title = r.drawn_text[0] if len(r.drawn_text) else ""
    joined = " ".join(r.drawn_text)
    assert "🔥" not in joined and "🎧" not in joined  # no tofu: glyph-less characters are dropped
    assert "DJ Ünïcødé" in joined
    if name in ("🔥🔥🔥", "東京の夜", "서울의 밤"):
        assert joined.lower().startswith("untitled") and any("glyph" in n for n in r.notes)
    if name.startswith("<script>"):
        assert title == "alert(1)"
    if name.startswith("ليلة"):
        assert "ليلة" in joined  # DejaVu has Arabic glyphs; Pillow's layout engine shapes them


def test_renderable_text_drops_missing_glyphs():
    assert renderable_text("Night 🌙 Drive") == "Night Drive"
    assert renderable_text("Café Ñandú") == "Café Ñandú"
    assert renderable_text("東京") == ""


def test_cover_bad_parameters():
    with pytest.raises(InputError, match="style"):
        make_cover(album="A", style="vaporwave")
    with pytest.raises(InputError, match="1024"):
        make_cover(album="A", size=512)
    with pytest.raises(InputError, match="empty"):
        make_cover(album="<i></i>")


# --- CLI ---------------------------------------------------------------------------------------------


def test_cli_writes_cover_and_titles(tmp_path, capsys):
    from core.__main__ import main

    out = tmp_path / "album"
    rc = main(
        ["album", "Neon Skyline", "Mira Vale", "--genre", "edm", "--seed", "3", "--out", str(out), "--json"]
    )
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["cover"] == str(out / "cover.png") and printed["style"] in STYLES
    assert len(printed["titles"]) == 12
    saved = json.loads((out / "titles.json").read_text(encoding="utf-8"))
    assert saved["titles"] == printed["titles"]
    assert _decode((out / "cover.png").read_bytes()).shape == (1024, 1024, 3)
    rc = main(["album", "  ", "X", "--out", str(out)])
    assert rc == 2
