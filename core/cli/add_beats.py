"""``python -m core add-beats IN --drums --bass [--style S] --out OUT.wav [--stems DIR] [--json]``.

Adds drums and/or bass that follow the song's beat grid, groove and chords (:func:`core.beats.add_beats`)
and writes the mastered mix to ``--out`` (format from its extension: wav, mp3, flac, ogg). Without
``--drums``/``--bass`` both are added. ``--stems DIR`` also writes ``original.wav``, ``drums.wav`` and
``bass.wav``: the same sample rate and length as the output, sample-aligned with it.

With ``--json`` prints one object on stdout (times in seconds)::

    {"tempo_bpm", "tempo_confidence", "tempo_alternatives": [{"bpm", "probability"}], "beats", "downbeats",
     "key", "key_confidence", "chords": [{"start", "end", "label"}], "style", "drum_notes", "bass_notes",
     "warnings", "sample_rate", "duration_s", "out", "stems"}

Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

_FORMATS = ("wav", "mp3", "flac", "ogg")


def register(sub) -> None:
    """Add the ``add-beats`` subcommand."""
    p = sub.add_parser("add-beats", help="add drums and/or bass that fit a song")
    p.add_argument("input", type=Path, help="audio file (wav, flac, ogg, mp3, m4a, aac)")
    p.add_argument("--drums", action="store_true", help="add drums (default: drums and bass)")
    p.add_argument("--bass", action="store_true", help="add a bass line (default: drums and bass)")
    p.add_argument("--style", default=None, help="drum style or genre (default: from the tempo)")
    p.add_argument("--genre", default=None, help="genre: style, bass sound and swing (e.g. funk, lo-fi)")
    p.add_argument("--out", type=Path, required=True, help="output file: .wav, .mp3, .flac or .ogg")
    p.add_argument("--stems", type=Path, default=None, help="folder for original.wav, drums.wav, bass.wav")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same result)")
    p.add_argument("--complexity", type=float, default=0.5, help="0-1, how busy the parts are")
    p.add_argument("--humanize", type=float, default=0.5, help="0-1, timing/velocity feel (0 = on the grid)")
    p.add_argument("--drums-db", type=float, default=0.0, help="drum level in dB relative to the default")
    p.add_argument("--bass-db", type=float, default=0.0, help="bass level in dB relative to the default")
    p.add_argument("--no-duck", action="store_true", help="do not duck the bass under the kick")
    p.add_argument("--tempo", type=float, default=None, help="set the tempo (BPM) instead of detecting it")
    p.add_argument("--key", default=None, help='set the key, e.g. "A minor"')
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Decode, add beats, write the outputs; returns the exit status."""
    from core.audio import io as aio
    from core.beats import add_beats
    from core.config import SAMPLE_RATE
    from core.errors import InputError, LimitError
    from core.progress import text_progress

    path: Path = args.input
    out: Path = args.out
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in _FORMATS:
        raise InputError(f"output '{out.name}' must end in one of: {', '.join('.' + f for f in _FORMATS)}")
    limits = aio.AudioLimits.for_local_file()
    if not path.is_file():
        raise InputError(f"audio file not found: '{path}'")
    if path.stat().st_size > limits.max_bytes:
        raise LimitError(f"'{path.name}' is larger than the {limits.max_bytes // (1024 * 1024)} MB limit")
    y = aio.decode(path.read_bytes(), filename=path.name, sr=SAMPLE_RATE, limits=limits)
    drums, bass = (args.drums, args.bass) if (args.drums or args.bass) else (True, True)
    result = add_beats(
        y, sr=SAMPLE_RATE, drums=drums, bass=bass, style=args.style, genre=args.genre,
        complexity=args.complexity, humanize=args.humanize, drums_db=args.drums_db, bass_db=args.bass_db,
        duck=not args.no_duck, seed=args.seed, tempo_override=args.tempo, key_override=args.key,
        progress=text_progress(),
    )  # fmt: skip
    title = path.stem + " (with beats)"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(aio.encode(result.mix, sr=result.sr, fmt=fmt, title=title))
    stem_paths = []
    if args.stems is not None:
        args.stems.mkdir(parents=True, exist_ok=True)
        for name in ("original", "drums", "bass"):
            p = args.stems / f"{name}.wav"
            p.write_bytes(aio.encode(result.stems[name], sr=result.sr, fmt="wav"))
            stem_paths.append(str(p))
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    info = result.to_dict()
    info.update(
        sample_rate=result.sr,
        duration_s=round(result.mix.shape[1] / result.sr, 3),
        out=str(out),
        stems=stem_paths,
    )
    if args.json:
        print(json.dumps(info))
        return 0
    a = result.analysis
    tempo = "unknown" if a.tempo_bpm is None else f"{a.tempo_bpm:.1f} BPM"
    print(f"{path.name}: {tempo} (confidence {result.confidence:.2f}), key {a.key or 'unknown'}")
    print(f"  style {result.style}: {len(result.drum_notes)} drum hits, {len(result.bass_notes)} bass notes")
    print(f"  wrote {out}" + (f" and stems in {args.stems}" if stem_paths else ""))
    return 0
