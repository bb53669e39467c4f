"""``python -m core kpop generate|train``: the K-pop generator from the command line.

Generate 30 s with the shipped model (format from the extension: wav, flac, ogg, mp3)::

    python -m core kpop generate --seconds 30 --seed 7 --out kpop.wav [--model CKPT] [--temperature 0.8]
        [--seed-audio SONG.wav] [--seed-mix 0.5] [--guide 0.3] [--json]

Train a model on a folder of songs (progress bar on stderr; Ctrl-C stops and saves what was learned)::

    python -m core kpop train --audio SONGS/ --out my_model.pt [--epochs 20] [--minutes 30]
        [--resume OLD.pt] [--json]

With ``--json`` one JSON object is printed on stdout.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path


def register(sub) -> None:
    """Add the ``kpop`` subcommand with ``generate`` and ``train``."""
    p = sub.add_parser("kpop", help="generate audio with a spectral LSTM, or train one on your songs")
    kp = p.add_subparsers(dest="kpop_command", metavar="ACTION", required=True)

    g = kp.add_parser("generate", help="generate new audio from a model")
    g.add_argument("--seconds", type=float, default=30.0, help="length in seconds, 1-120 (default 30)")
    g.add_argument("--seed", type=int, default=0, help="random seed (same seed, same audio)")
    g.add_argument("--out", type=Path, required=True, help="output file (.wav, .flac, .ogg or .mp3)")
    g.add_argument("--model", type=Path, default=None, help="checkpoint (default: the shipped POP909 model)")
    g.add_argument("--temperature", type=float, default=0.8, help="sampling temperature, 0-2 (default 0.8)")
    g.add_argument("--noise", type=float, default=0.0, help="extra feedback noise, 0-2 (default 0)")
    g.add_argument("--seed-audio", type=Path, default=None, help="song to take the seed snippet from")
    g.add_argument("--seed-mix", type=float, default=0.5, help="share of the snippet in the seed, 0-1")
    g.add_argument(
        "--guide", type=float, default=0.3, help="steering by catalogue pieces, 0-0.8 (default 0.3)"
    )
    g.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    g.set_defaults(func=run_generate)

    t = kp.add_parser("train", help="train a model on a folder of songs")
    t.add_argument("--audio", type=Path, required=True, help="folder of songs (wav, flac, ogg, mp3, m4a)")
    t.add_argument("--out", type=Path, required=True, help="checkpoint to write (.pt)")
    t.add_argument("--epochs", type=int, default=20, help="epochs (default 20)")
    t.add_argument("--minutes", type=float, default=30.0, help="wall-time budget in minutes (default/max 30)")
    t.add_argument("--resume", type=Path, default=None, help="checkpoint to continue training from")
    t.add_argument("--seed", type=int, default=0, help="random seed")
    t.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    t.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    t.set_defaults(func=run_train)


def run_generate(args: argparse.Namespace) -> int:
    """Generate audio and write it; returns the exit status."""
    import time

    from core import kpop
    from core.audio.io import ENCODE_FORMATS, encode, load
    from core.audio.loudness import integrated_lufs
    from core.config import SAMPLE_RATE
    from core.errors import InputError
    from core.progress import text_progress

    fmt = args.out.suffix.lower().lstrip(".")
    if fmt not in ENCODE_FORMATS:
        raise InputError(f"--out must end in one of {', '.join(ENCODE_FORMATS)}; got {args.out.name!r}")
    seed_audio = load(args.seed_audio, sr=SAMPLE_RATE) if args.seed_audio is not None else None
    t0 = time.perf_counter()
    lm = kpop.load_model(args.model)
    y, _ = kpop.generate_audio(
        model_or_ckpt=lm,
        seconds=args.seconds,
        seed=args.seed,
        temperature=args.temperature,
        noise=args.noise,
        seed_audio=seed_audio,
        seed_mix=args.seed_mix,
        guide=args.guide,
        progress=None if args.json else text_progress(),
    )
    elapsed = time.perf_counter() - t0
    data = encode(
        y, sr=SAMPLE_RATE, fmt=fmt, title=f"K-pop generator, seed {args.seed}", artist="BeatTok Studio"
    )
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_bytes(data)
    except OSError as exc:
        raise InputError(f"cannot write {str(args.out)!r}: {exc}") from exc
    info = {
        "out": str(args.out),
        "seconds": round(y.shape[1] / SAMPLE_RATE, 3),
        "seed": args.seed,
        "temperature": args.temperature,
        "model": str(args.model) if args.model else "default",
        "loudness_lufs": round(integrated_lufs(y, sr=SAMPLE_RATE), 2),
        "elapsed_s": round(elapsed, 2),
    }
    if args.json:
        print(json.dumps(info))
    else:
        print(
            f"wrote {args.out} ({info['seconds']} s, {info['loudness_lufs']} LUFS) in {elapsed:.1f} s",
            file=sys.stderr,
        )
    return 0


def run_train(args: argparse.Namespace) -> int:
    """Train on a folder of songs and write the checkpoint; returns the exit status."""
    import torch

    from core import kpop
    from core.audio.io import SUPPORTED_FORMATS
    from core.errors import InputError
    from core.progress import text_progress

    if not args.audio.is_dir():
        raise InputError(f"--audio must be a folder of songs; {str(args.audio)!r} is not a folder")
    paths = sorted(
        p for p in args.audio.iterdir() if p.is_file() and p.suffix.lower().lstrip(".") in SUPPORTED_FORMATS
    )
    if not paths:
        raise InputError(f"no songs ({', '.join(SUPPORTED_FORMATS)}) in {str(args.audio)!r}")
    if len(paths) > kpop.MAX_SONGS:
        raise InputError(f"{len(paths)} songs in {str(args.audio)!r}: at most {kpop.MAX_SONGS} per training")
    torch.set_num_threads(max(1, int(args.threads)))
    bar = None if args.json else text_progress()
    cat = kpop.load_catalogue([(p.name, p.read_bytes()) for p in paths], progress=bar)
    for w in cat.warnings:
        print(f"warning: {w}", file=sys.stderr)

    stop = {"flag": False}

    def _on_sigint(signum, frame):  # first Ctrl-C: stop and save; second: abort
        if stop["flag"]:
            raise KeyboardInterrupt
        stop["flag"] = True
        print("\nstopping after this batch and saving the best model so far...", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, _on_sigint)
    try:
        result = kpop.train(
            cat.tracks,
            sr=cat.sr,
            names=cat.names,
            epochs=args.epochs,
            seed=args.seed,
            progress=bar,
            should_stop=lambda: stop["flag"],
            resume_from=args.resume,
            max_seconds=min(args.minutes * 60.0, kpop.MAX_TRAIN_SECONDS),
            meta={"name": args.out.stem, "songs_list": cat.names[:50]},
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_name(args.out.name + ".tmp")
        tmp.write_bytes(result.checkpoint)
        tmp.replace(args.out)
    except OSError as exc:
        raise InputError(f"cannot write {str(args.out)!r}: {exc}") from exc
    h = result.history
    info = {
        "out": str(args.out),
        "songs": len(cat.names),
        "audio_minutes": round(cat.seconds / 60, 2),
        "epochs": h["epoch"][-1] if h["epoch"] else 0,
        "stopped": result.stopped,
        "best_val_loss": round(result.best_val_loss, 4),
        "val_l1": round(min(h["val_l1"]), 4) if h["val_l1"] else None,
        "baselines": {k: round(v, 4) for k, v in result.baselines.items()},
        "frames_per_second": round(result.frames_per_second),
        "seconds": round(result.seconds, 1),
        "warnings": result.warnings + cat.warnings,
    }
    if args.json:
        print(json.dumps(info))
    else:
        print(
            f"wrote {args.out}: best validation loss {info['best_val_loss']} after {info['epochs']} epochs "
            f"({info['seconds']} s{', stopped: ' + result.stopped if result.stopped else ''})",
            file=sys.stderr,
        )
    return 0
