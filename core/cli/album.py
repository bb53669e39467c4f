"""``python -m core album "NAME" "ARTIST" [--genre G] [--mood M] [--seed N] [--style S] --out DIR [--json]``.

Writes ``cover.png`` and ``titles.json`` into ``DIR``; with ``--json`` prints
``{"titles": [...], "cover": path, "style": ..., ...}`` on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub) -> None:
    """Add the ``album`` subcommand."""
    p = sub.add_parser("album", help="make an album cover and a track list from an album name and artist")
    p.add_argument("name", help="album name (1-80 visible characters)")
    p.add_argument("artist", help="artist name")
    p.add_argument("--genre", default=None, help="pop, rap, rock, latin, r&b or edm (others: general)")
    p.add_argument("--mood", default=None, help="happy, sad, dark, chill, energetic, romantic, dreamy, angry")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same album)")
    p.add_argument(
        "--style", default="auto", help="cover style: auto, gradient, bauhaus, flow, halftone, bokeh, minimal"
    )
    p.add_argument("--n", type=int, default=12, help="number of titles, 8-16 (default 12)")
    p.add_argument("--size", type=int, default=1024, help="cover edge in pixels, 1024-2048 (default 1024)")
    p.add_argument("--out", type=Path, required=True, help="output folder (created if missing)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Generate, write the files and report; returns the exit status."""
    from core.album import generate_title_set, make_cover
    from core.errors import InputError
    from core.progress import report, text_progress

    progress = text_progress() if not args.json else None
    report(progress, 0.0, "cover")
    cover = make_cover(
        album=args.name,
        artist=args.artist,
        genre=args.genre,
        mood=args.mood,
        style=args.style,
        seed=args.seed,
        size=args.size,
    )
    report(progress, 0.4, "titles")
    ts = generate_title_set(
        album=args.name, artist=args.artist, genre=args.genre, mood=args.mood, n=args.n, seed=args.seed
    )
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        cover_path = args.out / "cover.png"
        cover_path.write_bytes(cover.png)
        notes = list(dict.fromkeys([*ts.notes, *cover.notes]))
        (args.out / "titles.json").write_text(
            json.dumps(
                {"album": args.name, "artist": args.artist, "titles": ts.titles}, ensure_ascii=False, indent=2
            )
            + "\n",
            encoding="utf-8",
        )
    except OSError as exc:
        raise InputError(f"Cannot write to the output folder {str(args.out)!r}: {exc}") from exc
    report(progress, 1.0, "done")
    if args.json:
        print(
            json.dumps(
                {
                    "titles": ts.titles,
                    "cover": str(cover_path),
                    "style": cover.style,
                    "title_track_index": ts.title_track_index,
                    "contrast_ratio": cover.contrast_ratio,
                    "notes": notes,
                },
                ensure_ascii=False,
            )
        )
    else:
        for i, t in enumerate(ts.titles, 1):
            print(f"{i:2d}. {t}")
        print(f"cover: {cover_path} (style {cover.style}, text contrast {cover.contrast_ratio:.1f}:1)")
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
    return 0
