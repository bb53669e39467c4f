"""Deterministic placeholder covers for tracks without artwork.

:func:`placeholder_cover` derives everything (two colours, gradient angle, a geometric motif) from a
SHA-256 of the title and artist, so a track always gets the same cover, and draws the title and
artist on it. Text is drawn as plain glyphs with Pillow: nothing in it is interpreted as markup.
Fonts: DejaVu Sans (Bold) where installed, a Noto CJK font for Chinese/Japanese/Korean titles where
installed, else Pillow's built-in scalable font. About 40 ms for a 512 px cover on one core.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import unicodedata
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.errors import InputError, StudioError

if TYPE_CHECKING:
    from core.disk_cache import BytesCache

MIN_SIZE, MAX_SIZE = 64, 2048

_LATIN_FONTS = {
    True: (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf",
        "/Library/Fonts/Arial Bold.ttf",
        "C:/Windows/Fonts/arialbd.ttf",
    ),
    False: (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans.ttf",
        "/Library/Fonts/Arial.ttf",
        "C:/Windows/Fonts/arial.ttf",
    ),
}
_CJK_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
)


def _has_cjk(text: str) -> bool:
    return any(
        0x1100 <= ord(c) <= 0x11FF or 0x2E80 <= ord(c) <= 0x9FFF or 0xAC00 <= ord(c) <= 0xD7AF for c in text
    )


@cache
def _font(size: int, bold: bool, cjk: bool):
    """The best available font of ``size`` px (cached: fonts are immutable once loaded)."""
    from PIL import ImageFont

    candidates = (_CJK_FONTS if cjk else ()) + _LATIN_FONTS[bold]
    for path in candidates:
        if Path(path).is_file():
            try:
                return ImageFont.truetype(path, size=size)
            except OSError:
                continue
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow built without FreeType
        return ImageFont.load_default()


def _clean(text: str, limit: int) -> str:
    """Drop control/format characters (they render as boxes) and collapse whitespace."""
    kept = "".join(" " if c.isspace() else c for c in text if unicodedata.category(c)[0] != "C")
    return " ".join(kept.split())[:limit]


def _wrap(draw, text: str, font, max_width: float, max_lines: int) -> list[str]:
    """Greedy word wrap into at most ``max_lines`` lines, the last one ellipsised if needed."""

    def width(s: str) -> float:
        return draw.textlength(s, font=font)

    def fit(s: str) -> str:
        if width(s) <= max_width:
            return s
        while s and width(s + "…") > max_width:
            s = s[:-1]
        return s.rstrip() + "…"

    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        trial = f"{current} {word}".strip()
        if current and width(trial) > max_width:
            lines.append(current)
            current = word
        else:
            current = trial
    if current:
        lines.append(current)
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], " ".join(lines[max_lines - 1 :])]
    return [fit(line) for line in lines[:max_lines]]


def _rgb(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float32) * 255.0


def placeholder_cover(*, title: str, artist: str, size: int = 512, seed: int | None = None) -> bytes:
    """Draw a square cover (PNG bytes) with a gradient, a geometric motif, the title and the artist.

    Parameters
    ----------
    title, artist : str
        Drawn on the cover (as plain text) and hashed to choose colours and motif.
    size : int
        Width and height in pixels, 64-2048.
    seed : int, optional
        Varies the design for the same title and artist.

    Returns
    -------
    bytes
        A PNG image; the same arguments always give the same bytes.

    Examples
    --------
    >>> png = placeholder_cover(title="Night Drive", artist="Luna", size=128)
    >>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
    """
    from PIL import Image, ImageDraw, ImageFilter

    if not isinstance(title, str) or not isinstance(artist, str):
        raise InputError("Cover title and artist must be text.")
    if not isinstance(size, int) or isinstance(size, bool) or not MIN_SIZE <= size <= MAX_SIZE:
        raise InputError(f"Cover size {size!r} is out of range: use {MIN_SIZE}-{MAX_SIZE} pixels.")
    title_txt = _clean(title, 200) or "Untitled"
    artist_txt = _clean(artist, 200)
    digest = hashlib.sha256(f"{title_txt}\x00{artist_txt}\x00{seed}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))

    # Background: a diagonal gradient between two colours at a hashed hue distance.
    hue = digest[8] / 255.0
    c1 = _rgb(hue, 0.55 + 0.35 * digest[9] / 255, 0.55 + 0.3 * digest[10] / 255)
    c2 = _rgb(
        hue + 0.12 + 0.4 * digest[11] / 255, 0.6 + 0.3 * digest[12] / 255, 0.25 + 0.3 * digest[13] / 255
    )
    angle = digest[14] / 255.0 * 2 * np.pi
    ramp = np.linspace(-0.5, 0.5, size, dtype=np.float32)
    t = ramp[None, :] * np.float32(np.cos(angle)) + ramp[:, None] * np.float32(np.sin(angle))
    t -= t.min()
    t /= max(float(t.max()), 1e-6)
    base = (c1[None, None, :] + t[..., None] * (c2 - c1)[None, None, :]).astype(np.uint8)
    img = Image.fromarray(base, "RGB").convert("RGBA")

    # Motif: rings, bubbles or stripes in a light or complementary tint.
    overlay = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    accent = (*tuple(int(v) for v in _rgb(hue + 0.5, 0.35, 1.0)), 0)
    motif = digest[15] % 3
    if motif == 0:  # concentric rings around a hashed centre
        cx, cy = rng.uniform(0.2, 0.8, size=2) * size
        step = size * rng.uniform(0.05, 0.09)
        for k in range(1, 16):
            r = k * step
            alpha = int(90 * (1 - k / 16))
            draw.ellipse(
                (cx - r, cy - r, cx + r, cy + r), outline=(*accent[:3], alpha), width=max(1, size // 90)
            )
    elif motif == 1:  # soft bubbles
        for _ in range(9):
            cx, cy = rng.uniform(0, 1, size=2) * size
            r = rng.uniform(0.06, 0.28) * size
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(*accent[:3], int(rng.uniform(25, 70))))
        overlay = overlay.filter(ImageFilter.GaussianBlur(radius=size / 160))
    else:  # diagonal stripes
        width_px = size * rng.uniform(0.03, 0.07)
        for k in range(-size, 2 * size, int(width_px * 3) or 1):
            draw.polygon(
                [(k, 0), (k + width_px, 0), (k + width_px - size, size), (k - size, size)],
                fill=(*accent[:3], int(rng.uniform(20, 55))),
            )
    img = Image.alpha_composite(img, overlay)

    # Text panel at the bottom: a dark translucent band keeps any colour scheme readable.
    draw = ImageDraw.Draw(img)
    margin = int(size * 0.07)
    max_w = size - 2 * margin
    cjk = _has_cjk(title_txt + artist_txt)
    title_font = _font(max(10, int(size * 0.1)), True, cjk)
    artist_font = _font(max(8, int(size * 0.055)), False, cjk)
    title_lines = _wrap(draw, title_txt, title_font, max_w, 2)
    artist_lines = _wrap(draw, artist_txt, artist_font, max_w, 1) if artist_txt else []
    t_h = int(size * 0.12)
    a_h = int(size * 0.075)
    panel_h = margin + len(title_lines) * t_h + len(artist_lines) * a_h + margin // 2
    panel = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    ImageDraw.Draw(panel).rectangle((0, size - panel_h, size, size), fill=(10, 10, 20, 150))
    img = Image.alpha_composite(img, panel)
    draw = ImageDraw.Draw(img)
    y = size - panel_h + margin // 2
    shadow = max(1, size // 256)
    for line in title_lines:
        draw.text((margin + shadow, y + shadow), line, font=title_font, fill=(0, 0, 0, 160))
        draw.text((margin, y), line, font=title_font, fill=(255, 255, 255, 255))
        y += t_h
    for line in artist_lines:
        draw.text((margin, y), line, font=artist_font, fill=(225, 225, 235, 255))
        y += a_h

    out = io.BytesIO()
    img.convert("RGB").save(out, format="PNG", compress_level=4)
    return out.getvalue()


def cover_thumbnail(data: bytes, *, size: int = 400, quality: int = 85) -> bytes:
    """A JPEG of a cover image scaled down to fit ``size`` x ``size`` pixels (never scaled up).

    Feed cards and lists show covers at about 200 px, while a stored cover can be a 1024 px PNG of
    1.5 MB (the Album factory's painted styles): serving this instead keeps a page of ten cards to a
    few hundred kB. Transparent pixels are laid on black.

    Parameters
    ----------
    data : bytes
        The image file (PNG, JPEG or any format Pillow reads).
    size : int
        Largest width and height of the thumbnail, 64 to 2048 pixels.
    quality : int
        JPEG quality, 50 to 95.

    Returns
    -------
    bytes
        The JPEG file.

    Raises
    ------
    InputError
        If ``data`` is not a readable image, or ``size`` or ``quality`` is out of range.
    """
    from PIL import Image, UnidentifiedImageError

    if isinstance(size, bool) or not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE:
        raise InputError(f"thumbnail size must be an integer from {MIN_SIZE} to {MAX_SIZE}, got {size!r}")
    if isinstance(quality, bool) or not isinstance(quality, int) or not 50 <= quality <= 95:
        raise InputError(f"JPEG quality must be an integer from 50 to 95, got {quality!r}")
    try:
        with Image.open(io.BytesIO(bytes(data))) as src:
            src.draft("RGB", (size, size))  # JPEG sources decode at a reduced scale directly
            img = src.convert("RGBA")
    except (UnidentifiedImageError, OSError, ValueError, TypeError) as exc:
        raise InputError(f"the cover is not a readable image ({exc})") from None
    img.thumbnail((size, size), Image.Resampling.LANCZOS)
    flat = Image.new("RGB", img.size, (0, 0, 0))
    flat.paste(img, mask=img.getchannel("A"))
    out = io.BytesIO()
    flat.save(out, format="JPEG", quality=quality, optimize=True)
    return out.getvalue()


#: Bump when :func:`placeholder_cover` or :func:`cover_thumbnail` draws differently, so cached
#: thumbnails (:class:`core.disk_cache.BytesCache`) are made afresh.
THUMBNAIL_VERSION = 1


def stored_cover_thumbnail(
    *, storage, cover_key: str, size: int = 400, cache: BytesCache | None = None
) -> bytes:
    """The JPEG thumbnail (:func:`cover_thumbnail`) of the stored cover ``cover_key``.

    Stored files never change under their key, so the thumbnail is kept in ``cache`` by key and
    size: a restarted server reads a 15 kB file instead of decoding a 1.5 MB PNG (about 40 ms each,
    ten per feed page).

    Parameters
    ----------
    storage : core.storage.Storage
        Where the cover is stored.
    cover_key : str
        Its storage key.
    size : int
        Largest width and height of the thumbnail, in pixels.
    cache : core.disk_cache.BytesCache, optional
        Where thumbnails are kept between calls and restarts.

    Raises
    ------
    NotFoundError
        If no file is stored under ``cover_key``.
    InputError
        If the key is malformed or the file is not a readable image.
    """

    def make() -> bytes:
        return cover_thumbnail(storage.get(cover_key), size=size)

    return _cached(cache, ("stored", THUMBNAIL_VERSION, cover_key, size), make)


def card_cover(
    *,
    storage,
    cover_key: str | None,
    title: str,
    artist: str,
    size: int = 400,
    cache: BytesCache | None = None,
) -> bytes:
    """The JPEG a track card shows: its stored cover's thumbnail, else a placeholder for its title.

    A missing or unreadable cover file never fails a card: the placeholder drawn from the title and
    artist (:func:`placeholder_cover`, at 256 px, 8 ms) takes its place. Both are kept in ``cache``.

    Parameters
    ----------
    storage : core.storage.Storage
        Where covers are stored.
    cover_key : str or None
        The track's stored cover, if it has one.
    title, artist : str
        For the placeholder.
    size : int
        Largest width and height of the JPEG, in pixels.
    cache : core.disk_cache.BytesCache, optional
        Where thumbnails are kept between calls and restarts.

    Returns
    -------
    bytes
        A JPEG file.
    """
    if cover_key:
        try:
            return stored_cover_thumbnail(storage=storage, cover_key=cover_key, size=size, cache=cache)
        except (StudioError, OSError):  # a lost, unreadable or damaged file, or a mangled key
            pass

    def make() -> bytes:
        return cover_thumbnail(placeholder_cover(title=title, artist=artist, size=256), size=size)

    return _cached(cache, ("placeholder", THUMBNAIL_VERSION, title, artist, size), make)


def _cached(cache: BytesCache | None, key: tuple, make) -> bytes:
    """``make()``, through ``cache`` when there is one."""
    return make() if cache is None else cache.get_or_make(key, make)
