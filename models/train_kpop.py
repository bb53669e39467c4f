"""Train the shipped default K-pop model on POP909 songs rendered to audio.

Reproduce the committed checkpoint (rendering 48 songs takes 2-18 minutes depending on the machine's
load, then 11 minutes of training on one CPU thread; ``--cache FILE.npz`` keeps the rendered frames
for a later run, ``--render-only`` stops after rendering)::

    python -m models.train_kpop --data ../shared/data/pop909 --songs 48 --seconds 90 --minutes 11 \\
        --out models/checkpoints/kpop_default.pt

Training is bounded by ``--minutes`` (wall time), so the number of epochs reached, and with it the
exact weights, depend on the machine's speed; the data, split and seed are fixed.

Each POP909 song (``NNN/NNN.mid``, tracks MELODY, BRIDGE and PIANO) gets one of a few General MIDI
instrument palettes and a simple drum part on the annotated beats (kick on the strong beats, snare
between, closed hi-hat on eighths), is rendered with ``midirenderer`` and pretty_midi's bundled
``TimGM6mb.sf2`` soundfont, and is analysed into 16 kHz log-mel frames (``--seconds`` per song, taken
from ``--offset`` s in). One song in ten is held out for validation (whole songs). Training stops after
``--epochs`` or ``--minutes``, whichever comes first, and keeps the weights with the lowest validation
loss. The script writes the checkpoint and ``models/results/kpop.json`` with the validation loss
against the baselines "repeat the last frame" and "predict the mean frame".

Data: POP909 (Wang, Chen, Jiang et al., ISMIR 2020), MIT licence.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

#: General MIDI programs for (MELODY, BRIDGE, PIANO), rotated over the songs.
PALETTES: tuple[tuple[int, int, int], ...] = (
    (0, 48, 0),  # piano melody, strings, piano
    (81, 89, 4),  # saw lead, warm pad, electric piano
    (11, 49, 5),  # vibraphone, slow strings, electric piano 2
    (73, 25, 0),  # flute, steel guitar, piano
    (80, 50, 4),  # square lead, synth strings, electric piano
)
_TRACKS = ("MELODY", "BRIDGE", "PIANO")


def soundfont_bytes() -> bytes:
    """The General MIDI soundfont bundled with pretty_midi (TimGM6mb.sf2)."""
    import pretty_midi

    return (Path(pretty_midi.__file__).resolve().parent / "TimGM6mb.sf2").read_bytes()


def arrange(song_dir: Path, *, palette: tuple[int, int, int], end: float | None = None) -> bytes:
    """Set the instrument programs of a POP909 song, add drums on its beats, return MIDI bytes.

    Notes starting after ``end`` seconds are dropped, so that rendering stops there.
    """
    import pretty_midi

    num = song_dir.name
    pm = pretty_midi.PrettyMIDI(str(song_dir / f"{num}.mid"))
    for inst in pm.instruments:
        if inst.name.upper() in _TRACKS:
            inst.program = palette[_TRACKS.index(inst.name.upper())]
        if end is not None:
            inst.notes = [n for n in inst.notes if n.start < end]
            inst.control_changes = [c for c in inst.control_changes if c.time < end]
    beats_file = song_dir / "beat_midi.txt"
    if beats_file.is_file():
        beats = np.loadtxt(beats_file, ndmin=2)
        drums = pretty_midi.Instrument(program=0, is_drum=True, name="DRUMS")
        times = beats[:, 0]
        for k, (t, strong) in enumerate(zip(times, beats[:, 1], strict=True)):
            nxt = (
                times[k + 1] if k + 1 < len(times) else t + (times[-1] - times[-2] if len(times) > 1 else 0.5)
            )
            pitch, vel = (36, 100) if strong >= 0.5 else (38, 90)
            drums.notes.append(pretty_midi.Note(velocity=vel, pitch=pitch, start=t, end=t + 0.1))
            for h in (t, (t + nxt) / 2):
                drums.notes.append(pretty_midi.Note(velocity=60, pitch=42, start=h, end=h + 0.05))
        pm.instruments.append(drums)
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


def render(midi: bytes, sf2: bytes) -> tuple[np.ndarray, int]:
    """Render MIDI bytes to float32 ``(channels, n)`` audio with midirenderer."""
    import midirenderer
    import soundfile as sf

    wav = midirenderer.render_wave_from(sf2, midi)
    y, sr = sf.read(io.BytesIO(wav), dtype="float32", always_2d=True)
    return np.ascontiguousarray(y.T), int(sr)


def song_dirs(data: Path, n: int) -> list[Path]:
    """The first ``n`` POP909 song folders in numeric order."""
    dirs = sorted(
        p for p in data.iterdir() if p.is_dir() and p.name.isdigit() and (p / f"{p.name}.mid").is_file()
    )
    return dirs[:n]


def main(argv: list[str] | None = None) -> int:
    """Render, train and write the default checkpoint and its results file."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/pop909"), help="POP909 folder")
    parser.add_argument("--songs", type=int, default=48, help="songs to render (first N)")
    parser.add_argument("--seconds", type=float, default=90.0, help="seconds used per song")
    parser.add_argument("--offset", type=float, default=10.0, help="skip this many seconds at the start")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--minutes", type=float, default=11.0, help="wall-time budget of the training")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rank", type=int, default=8, help="low-rank directions of the output covariance")
    parser.add_argument("--residual", action="store_true", help="predict changes from the last frame")
    parser.add_argument("--resume", type=Path, default=None, help="continue training this checkpoint")
    parser.add_argument("--cache", type=Path, default=None, help="npz file caching the rendered frames")
    parser.add_argument("--render-only", action="store_true", help="only render into --cache")
    parser.add_argument("--out", type=Path, default=Path("models/checkpoints/kpop_default.pt"))
    parser.add_argument("--results", type=Path, default=Path("models/results/kpop.json"))
    args = parser.parse_args(argv)

    import torch

    from core import kpop
    from core.progress import text_progress
    from models.kpop import KpopConfig

    torch.set_num_threads(args.threads)
    cfg = KpopConfig(rank=args.rank, residual=args.residual)
    sf2 = soundfont_bytes()
    basis = kpop._mel_basis(cfg)
    songs, names, t0 = [], [], time.perf_counter()
    dirs = song_dirs(args.data, args.songs)
    if len(dirs) < kpop.MIN_SONGS:
        print(f"error: found {len(dirs)} POP909 songs under {args.data}", file=sys.stderr)
        return 2
    if args.cache is not None and args.cache.is_file():
        with np.load(args.cache) as z:
            names = [str(n) for n in z["names"]]
            songs = [z[f"song_{i}"].astype(np.float32) for i in range(len(names))]
        print(f"loaded {len(songs)} rendered songs from {args.cache}", file=sys.stderr)
    for i, d in enumerate(dirs if not songs else []):
        midi = arrange(d, palette=PALETTES[i % len(PALETTES)], end=args.offset + args.seconds)
        y, sr = render(midi, sf2)
        a = int(args.offset * sr)
        y = y[:, a : a + int(args.seconds * sr)]
        frames, warning = kpop.song_frames(y, sr=sr, name=f"POP909 {d.name}", cfg=cfg, basis=basis)
        if warning:
            print(warning, file=sys.stderr)
        if frames is not None:
            songs.append(frames)
            names.append(d.name)
        print(f"\rrendered {i + 1}/{len(dirs)} songs", end="", file=sys.stderr)
    if args.cache is not None and not args.cache.is_file():
        arrays = {f"song_{i}": s.astype(np.float16) for i, s in enumerate(songs)}
        np.savez(args.cache, names=np.array(names), **arrays)
    if args.render_only:
        return 0
    render_s = time.perf_counter() - t0
    seconds = sum(s.shape[0] for s in songs) * cfg.hop / cfg.sr
    print(
        f"\n{len(songs)} songs, {seconds / 60:.1f} min of audio, rendered in {render_s:.0f} s",
        file=sys.stderr,
    )
    ds = kpop.FrameDataset(songs=songs, names=names, seconds=seconds)
    result = kpop.train(
        ds,
        sr=cfg.sr,
        epochs=args.epochs,
        cfg=cfg,
        seed=args.seed,
        max_seconds=args.minutes * 60,
        resume_from=args.resume,
        progress=text_progress(),
        meta={
            "name": "Default (POP909)",
            "data": f"POP909 songs {names[0]}-{names[-1]} rendered with TimGM6mb.sf2",
            "command": "python -m models.train_kpop " + " ".join(argv if argv is not None else sys.argv[1:]),
        },
    )
    print(file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_bytes(result.checkpoint)
    tmp.replace(args.out)
    h = result.history
    best = int(np.argmin(h["val_loss"]))
    summary = {
        "model": "SpectralLSTM",
        "config": cfg.to_dict(),
        "songs": len(songs),
        "audio_minutes": round(seconds / 60, 1),
        "train_frames": result.train_frames,
        "epochs_run": h["epoch"][-1],
        "stopped": result.stopped,
        "best_epoch": h["epoch"][best],
        "val_nll": round(h["val_loss"][best], 4),
        "val_l1": round(h["val_l1"][best], 4),
        "baseline_repeat_last_l1": round(result.baselines["repeat_last_l1"], 4),
        "baseline_mean_frame_l1": round(result.baselines["mean_frame_l1"], 4),
        "baseline_mean_frame_nll": round(result.baselines["mean_frame_nll"], 4),
        "train_frames_per_second": round(result.frames_per_second),
        "train_seconds": round(result.seconds),
        "checkpoint_bytes": len(result.checkpoint),
        "history": h,
        "command": "python -m models.train_kpop " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k not in ("history", "config")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
