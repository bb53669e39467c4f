"""Groove MIDI Dataset -> 16th-note drum grids (hits, velocities, micro-timing offsets).

Each 4/4 performance is quantised to a 16th-note grid at the tempo of its MIDI file (Groove MIDI files
are written at the performance bpm, and the first downbeat is at time 0). General MIDI drum notes are
mapped to the 9 classes of Magenta's GrooVAE. For each step and class we keep the loudest hit: ``hit``
(0/1), ``velocity`` (0-1) and ``offset`` (position of the hit relative to the grid step, in steps,
-0.5..0.5).

The parsed data set is cached as one ``.npz`` file (default ``/tmp/beattok_cache/groove.npz``).
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DRUM_CLASSES = (
    "kick",
    "snare",
    "closed_hihat",
    "open_hihat",
    "low_tom",
    "mid_tom",
    "high_tom",
    "crash",
    "ride",
)
#: GM pitch used to play back each class.
DRUM_CLASS_PITCHES = (36, 38, 42, 46, 45, 48, 50, 49, 51)
#: GM drum notes -> class index (the GrooVAE 9-class reduction).
GM_TO_CLASS = {
    36: 0, 35: 0,
    38: 1, 40: 1, 37: 1,
    42: 2, 22: 2, 44: 2,
    46: 3, 26: 3,
    43: 4, 58: 4,
    47: 5, 45: 5,
    50: 6, 48: 6,
    49: 7, 52: 7, 55: 7, 57: 7,
    51: 8, 59: 8, 53: 8,
}  # fmt: skip
STEPS_PER_BAR = 16
DEFAULT_CACHE = Path("/tmp/beattok_cache")


@dataclass
class GrooveSet:
    """Quantised performances of one split, concatenated.

    ``hits``/``velocity``/``offset`` are ``(total_steps, 9)``; performance ``i`` occupies
    ``starts[i]:starts[i] + lengths[i]``; ``style`` holds each performance's style name.
    """

    hits: np.ndarray
    velocity: np.ndarray
    offset: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    style: list[str]
    bpm: np.ndarray

    def sequence(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(hits, velocity, offset)`` of performance ``i``."""
        s, n = int(self.starts[i]), int(self.lengths[i])
        return self.hits[s : s + n], self.velocity[s : s + n], self.offset[s : s + n]


def quantize_performance(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Quantise one Groove MIDI file to ``(hits bool, velocity, offset)`` grids of shape ``(steps, 9)``.

    Returns the arrays and the tempo (bpm) used. Steps run to the bar that contains the last onset.
    """
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(str(path))
    _, tempi = pm.get_tempo_changes()
    bpm = float(tempi[0]) if len(tempi) else 120.0
    step_s = 60.0 / bpm / 4.0
    notes = [n for inst in pm.instruments for n in inst.notes if n.pitch in GM_TO_CLASS]
    if not notes:
        z = np.zeros((0, 9))
        return z.astype(bool), z.astype(np.float32), z.astype(np.float32), bpm
    last = max(n.start for n in notes) / step_s
    steps = int(np.ceil((np.floor(last + 0.5) + 1) / STEPS_PER_BAR)) * STEPS_PER_BAR
    hits = np.zeros((steps, 9), dtype=bool)
    vel = np.zeros((steps, 9), dtype=np.float32)
    off = np.zeros((steps, 9), dtype=np.float32)
    for n in notes:
        pos = n.start / step_s
        k = int(np.floor(pos + 0.5))
        if k < 0 or k >= steps:
            continue
        c = GM_TO_CLASS[n.pitch]
        v = n.velocity / 127.0
        if not hits[k, c] or v > vel[k, c]:
            hits[k, c] = True
            vel[k, c] = v
            off[k, c] = np.clip(pos - k, -0.5, 0.5)
    return hits, vel, off, bpm


def _cache_file(data: Path, cache_dir: Path) -> Path:
    info = (data / "info.csv").read_bytes()
    digest = hashlib.sha1(info + b"groove-v1").hexdigest()[:12]
    return cache_dir / f"groove_{digest}.npz"


def load_groove(data: str | Path, *, cache_dir: str | Path | None = None) -> dict[str, GrooveSet]:
    """Parse (or read from cache) the 4/4 performances of the Groove MIDI Dataset, by split.

    Parameters
    ----------
    data : str or Path
        The ``groove`` folder (with ``info.csv``).
    cache_dir : str or Path, optional
        Where the parsed ``.npz`` is kept (default ``/tmp/beattok_cache``).

    Returns
    -------
    dict
        ``{"train": GrooveSet, "validation": GrooveSet, "test": GrooveSet}``.
    """
    data = Path(data)
    cache_dir = Path(cache_dir) if cache_dir else DEFAULT_CACHE
    cache = _cache_file(data, cache_dir)
    if not cache.exists():
        _build_cache(data, cache)
    z = np.load(cache, allow_pickle=False)
    out = {}
    for split in ("train", "validation", "test"):
        out[split] = GrooveSet(
            hits=z[f"{split}_hits"],
            velocity=z[f"{split}_velocity"],
            offset=z[f"{split}_offset"],
            starts=z[f"{split}_starts"],
            lengths=z[f"{split}_lengths"],
            style=[str(s) for s in z[f"{split}_style"]],
            bpm=z[f"{split}_bpm"],
        )
    return out


def _build_cache(data: Path, cache: Path) -> None:
    rows = list(csv.DictReader((data / "info.csv").open(newline="")))
    arrays: dict[str, np.ndarray] = {}
    for split in ("train", "validation", "test"):
        hs, vs, os_, styles, bpms, lengths = [], [], [], [], [], []
        for r in rows:
            if r["split"] != split or r["time_signature"] != "4-4":
                continue
            h, v, o, bpm = quantize_performance(data / r["midi_filename"])
            if len(h) < STEPS_PER_BAR:
                continue
            hs.append(h)
            vs.append(v)
            os_.append(o)
            styles.append(r["style"].split("/")[0])
            bpms.append(bpm)
            lengths.append(len(h))
        lengths_a = np.array(lengths, dtype=np.int64)
        arrays[f"{split}_hits"] = np.concatenate(hs)
        arrays[f"{split}_velocity"] = np.concatenate(vs)
        arrays[f"{split}_offset"] = np.concatenate(os_)
        arrays[f"{split}_lengths"] = lengths_a
        arrays[f"{split}_starts"] = np.concatenate([[0], np.cumsum(lengths_a)[:-1]]).astype(np.int64)
        arrays[f"{split}_style"] = np.array(styles)
        arrays[f"{split}_bpm"] = np.array(bpms, dtype=np.float32)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(cache)
