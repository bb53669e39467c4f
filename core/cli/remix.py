"""``python -m core remix CONTENT STYLE --out OUT.wav``: one song in the style of another."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.errors import InputError

QUALITIES = ("fast", "balanced", "high")


def register(sub) -> None:
    """Add the ``remix`` subcommand."""
    p = sub.add_parser(
        "remix",
        help="render CONTENT in the style of STYLE (spectrogram style transfer)",
        description=(
            "Render the content song in the musical style of the style song by neural style transfer "
            "on spectrograms. The result is loudness-normalized (-14 LUFS, -1 dBTP)."
        ),
    )
    p.add_argument("content", type=Path, help="audio file whose content (melody, harmony) is kept")
    p.add_argument("style", type=Path, help="audio file whose style (timbre, texture) is applied")
    p.add_argument("--out", type=Path, required=True, help="output file (.wav, .mp3, .flac or .ogg)")
    p.add_argument("--seconds", type=float, default=None, help="length of the result, 1-120 s (default 30)")
    p.add_argument("--strength", type=float, default=0.5, help="style strength 0-1 (default 0.5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random network (default 0)")
    p.add_argument("--quality", choices=QUALITIES, default="balanced", help="speed/quality preset")
    p.add_argument("--content-offset", type=float, default=0.0, help="start of the content excerpt, s")
    p.add_argument("--style-offset", type=float, default=0.0, help="start of the style excerpt, s")
    p.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: $BEATTOK_TORCH_THREADS or 1)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object with the figures on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run a remix from files and write the result; returns the exit status."""
    from core.audio.io import encode, load
    from core.config import SAMPLE_RATE
    from core.progress import text_progress
    from core.remix import remix

    fmt = args.out.suffix.lower().lstrip(".")
    if fmt not in ("wav", "mp3", "flac", "ogg"):
        raise InputError(f"--out must end in .wav, .mp3, .flac or .ogg; got {args.out.name!r}")
    for path in (args.content, args.style):
        if not path.is_file():
            raise InputError(f"no such file: {path}")
    content = load(args.content, sr=SAMPLE_RATE)
    style = load(args.style, sr=SAMPLE_RATE)
    result = remix(
        content,
        style,
        sr=SAMPLE_RATE,
        seconds=args.seconds,
        strength=args.strength,
        content_offset_s=args.content_offset,
        style_offset_s=args.style_offset,
        quality=args.quality,
        seed=args.seed,
        threads=args.threads,
        progress=text_progress(),
    )
    title = f"{args.content.stem} x {args.style.stem} (remix)"
    data = encode(result.audio, sr=result.sr, fmt=fmt, title=title)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(args.out)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    figures = {
        "seconds": round(result.seconds, 3),
        "style_loss_before": result.style_loss_before,
        "style_loss_after": result.style_loss_after,
        "content_loss_after": result.content_loss_after,
        "elapsed_s": round(result.elapsed_s, 3),
    }
    if args.json:
        print(json.dumps(figures))
    else:
        print(
            f"wrote {args.out} ({result.seconds:.1f} s) in {result.elapsed_s:.1f} s; style loss "
            f"{result.style_loss_before:.3g} -> {result.style_loss_after:.3g}, "
            f"content loss {result.content_loss_after:.3g}"
        )
    return 0
