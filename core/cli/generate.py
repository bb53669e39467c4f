"""``python -m core generate``: a multi-stem song from genre, mood, tempo, key, instruments and seed.

Example::

    python -m core generate --genre k-pop --mood energetic --tempo 128 --key "F# minor" \\
        --instruments drums,bass,keys,pad,lead --seconds 60 --seed 7 --out song.mp3 \\
        --stems stems/ --midi song.mid --json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

OUT_FORMATS = ("wav", "mp3", "flac", "ogg")


def register(sub) -> None:
    """Add the ``generate`` subcommand."""
    from core.music.instruments import GENRES, MOODS, ROLES

    p = sub.add_parser(
        "generate",
        help="generate a multi-stem song from genre, mood, tempo, key and instruments",
        description="Generate a song with the trained drum, bass, harmony and melody models, rendered "
        "through a General MIDI soundfont, mixed and mastered to -14 LUFS.",
    )
    p.add_argument("--genre", required=True, help=f"one of: {', '.join(GENRES)}")
    p.add_argument("--mood", default="happy", help=f"one of: {', '.join(MOODS)} (default happy)")
    p.add_argument(
        "--tempo", type=float, default=None, help="beats per minute, 40-240 (default: the genre's)"
    )
    p.add_argument("--key", default=None, help='e.g. "A minor", "F#", "Bbm" (default: chosen from the seed)')
    p.add_argument(
        "--instruments",
        default=None,
        help=f"comma-separated roles from: {','.join(ROLES)} (default: the genre's)",
    )
    p.add_argument("--seconds", type=float, default=30.0, help="length in seconds, 5-600 (default 30)")
    p.add_argument("--seed", type=int, default=0, help="random seed: same seed, same song (default 0)")
    p.add_argument("--out", required=True, help="output audio file (.wav, .mp3, .flac or .ogg)")
    p.add_argument(
        "--stems",
        default=None,
        help="folder for one 32-bit float WAV per stem (the stems sum to the mix before its limiter)",
    )
    p.add_argument("--midi", default=None, help="write all stems as one MIDI file here")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.set_defaults(func=run)


def _format_of(path: Path) -> str:
    from core.errors import InputError

    fmt = path.suffix.lower().lstrip(".")
    if fmt not in OUT_FORMATS:
        raise InputError(
            f"Output format {fmt or path.name!r} is not supported: use .{', .'.join(OUT_FORMATS)}."
        )
    return fmt


def run(args: argparse.Namespace) -> int:
    """Generate, write the files, and print the summary (``--json``) or a short report."""
    from core.audio.io import encode
    from core.music.generate import generate_song, validate_request
    from core.progress import text_progress

    out = Path(args.out)
    fmt = _format_of(out)
    # validate everything before loading models or rendering
    validate_request(
        genre=args.genre, mood=args.mood, tempo=args.tempo, key=args.key, instruments=args.instruments,
        seconds=args.seconds, seed=args.seed,
    )  # fmt: skip
    song = generate_song(
        genre=args.genre,
        mood=args.mood,
        tempo=args.tempo,
        key=args.key,
        instruments=args.instruments,
        seconds=args.seconds,
        seed=args.seed,
        progress=text_progress(),
    )
    title = f"{song.genre} {song.mood} {song.key} ({song.seed})"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(encode(song.mix, sr=song.sr, fmt=fmt, title=title, artist="BeatTok Studio"))
    if args.stems:
        folder = Path(args.stems)
        folder.mkdir(parents=True, exist_ok=True)
        import soundfile as sf

        for name, y in song.stems.items():
            # float WAV: pre-limiter stems may peak above 1.0 and must not be clipped one by one
            sf.write(folder / f"{name}.wav", y.T, song.sr, subtype="FLOAT")
    if args.midi:
        Path(args.midi).parent.mkdir(parents=True, exist_ok=True)
        Path(args.midi).write_bytes(song.midi_all)
    summary = song.summary()
    if args.json:
        summary["timings"] = {k: round(v, 4) for k, v in song.timings.items()}
        print(json.dumps(summary))
    else:
        print(
            f"{out}: {summary['seconds']:.1f} s, {song.tempo_bpm:g} bpm, {song.key}, "
            f"stems {', '.join(song.stems)}; sections {' '.join(s['name'] for s in song.sections)}",
            file=sys.stdout,
        )
    return 0
