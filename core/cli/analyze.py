"""``python -m core analyze IN [--json] [--quick]``: tempo, beats, downbeats, key and chords of a file.

With ``--json`` prints one object on stdout::

    {"duration_s", "sample_rate", "channels", "loudness_lufs", "tempo_bpm", "tempo_confidence",
     "tempo_alternatives", "key", "key_confidence", "beats", "downbeats", "chords", "onsets", "rhythm_steps"}

``tempo_alternatives`` lists the other metrical levels the tempo model weighed,
``[{"bpm", "probability"}]``, most likely first.

``sample_rate`` and ``channels`` are those of the input file (as probed). ``--quick`` skips downbeats,
chords, onsets and the rhythm profile. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path


def register(sub) -> None:
    """Add the ``analyze`` subcommand."""
    p = sub.add_parser("analyze", help="analyse an audio file: tempo, beats, downbeats, key, chords")
    p.add_argument("input", type=Path, help="audio file (wav, flac, ogg, mp3, m4a, aac)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--quick", action="store_true", help="tempo, beats and key only (faster)")
    p.set_defaults(func=run)


def _num(v: float | None, digits: int = 2) -> float | None:
    if v is None or not math.isfinite(v):
        return None
    return round(float(v), digits)


def run(args: argparse.Namespace) -> int:
    """Decode, analyse and print; returns the exit status."""
    from core.audio import io as aio
    from core.audio.analysis import analyze, quick_analysis
    from core.config import SAMPLE_RATE
    from core.errors import InputError, LimitError
    from core.progress import report, text_progress

    path: Path = args.input
    limits = aio.AudioLimits.for_local_file()
    aio._extension(path.name)
    if not path.is_file():
        raise InputError(f"audio file not found: '{path}'")
    if path.stat().st_size > limits.max_bytes:
        raise LimitError(f"'{path.name}' is larger than the {limits.max_bytes // (1024 * 1024)} MB limit")
    data = path.read_bytes()
    info = aio.probe(data, filename=path.name)
    y = aio.decode(data, filename=path.name, sr=SAMPLE_RATE, limits=limits)
    progress = text_progress()
    out: dict = {
        "duration_s": round(y.shape[1] / SAMPLE_RATE, 3),
        "sample_rate": info.sample_rate,
        "channels": info.channels,
    }
    if args.quick:
        report(progress, 0.0, "analysing")
        q = quick_analysis(y, sr=SAMPLE_RATE)
        report(progress, 1.0, "done")
        out.update(
            loudness_lufs=_num(q.loudness_lufs),
            tempo_bpm=_num(q.tempo_bpm),
            key=q.key,
            beats=[round(t, 3) for t in q.beats],
            downbeats=[],
            chords=[],
        )
    else:
        a = analyze(y, sr=SAMPLE_RATE, progress=progress)
        d = a.to_dict()
        out.update(
            loudness_lufs=d["loudness_lufs"],
            tempo_bpm=d["tempo_bpm"],
            tempo_confidence=d["tempo_confidence"],
            tempo_alternatives=d["tempo_alternatives"],
            key=d["key"],
            key_confidence=d["key_confidence"],
            beats=d["beats"],
            downbeats=d["downbeats"],
            chords=d["chords"],
            onsets=d["onsets"],
            rhythm_steps=d["rhythm_steps"],
        )
    if args.json:
        print(json.dumps(out))
        return 0
    _print_summary(path.name, out)
    return 0


def _print_summary(name: str, out: dict) -> None:
    w = sys.stdout.write
    w(f"{name}: {out['duration_s']:.1f} s, {out['sample_rate']} Hz, {out['channels']} channel(s)\n")
    lufs = out["loudness_lufs"]
    w(f"  loudness : {'silent' if lufs is None else f'{lufs:.1f} LUFS'}\n")
    tempo = out["tempo_bpm"]
    conf = out.get("tempo_confidence")
    conf_s = f" (confidence {conf:.2f})" if conf is not None and tempo is not None else ""
    w(f"  tempo    : {'no beat found' if tempo is None else f'{tempo:.1f} BPM'}{conf_s}\n")
    alts = [alt for alt in out.get("tempo_alternatives") or [] if alt["probability"] >= 0.05]
    if tempo is not None and alts:
        shown = ", ".join(f"{alt['bpm']:.1f} BPM ({alt['probability']:.0%})" for alt in alts)
        w(f"  or       : {shown}\n")
    w(f"  key      : {out['key'] or 'unknown'}\n")
    w(f"  beats    : {len(out['beats'])}, downbeats: {len(out['downbeats'])}\n")
    chords = out["chords"]
    if chords:
        shown = " ".join(lab for _, _, lab in chords[:16])
        more = f" ... (+{len(chords) - 16})" if len(chords) > 16 else ""
        w(f"  chords   : {shown}{more}\n")
