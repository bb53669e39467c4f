"""POP909 -> per-song 16th-note grids of key, chords, melody and bass (cached as one ``.npz``).

For every song ``NNN`` we read ``NNN.mid`` (tracks MELODY, BRIDGE, PIANO), ``beat_midi.txt`` (one row per
beat: time, half-bar flag, downbeat flag), ``chord_midi.txt`` and ``key_audio.txt``, and build arrays on a
grid of 4 steps per beat between consecutive annotated beats:

- ``pos``: position in the 4/4 bar (0-15), counted from the annotated downbeats;
- ``tonic``/``minor``: the key at each step (key changes are followed);
- ``root``/``quality``: the chord at each step (``root`` -1 for ``N``; quality index into
  :data:`models.common.QUALITIES`; inversions are dropped);
- ``mel_on``/``mel_hold``: MELODY onset pitch (MIDI, -1 none) and whether a melody note sounds on;
- ``bass_on``/``bass_hold``: the bass line, i.e. the lowest PIANO note below MIDI 60 at each step: an onset
  where that note starts, a hold while it sounds, and a rest when nothing below 60 sounds or when the
  lowest note is one that started earlier under a lower note (that is the end of a bass note, not a new one).

Only songs whose downbeats are 4 beats apart (4/4) are kept. Splits by song number: 001-727 train,
728-818 validation, 819-909 test. ``bpm`` is the median beat rate of each song.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.common import QUALITIES, parse_chord

STEPS_PER_BEAT = 4
STEPS_PER_BAR = 16
BASS_MAX_PITCH = 59
DEFAULT_CACHE = Path("/tmp/beattok_cache")
SPLITS = {"train": (1, 727), "validation": (728, 818), "test": (819, 909)}
FIELDS = ("pos", "tonic", "minor", "root", "quality", "mel_on", "mel_hold", "bass_on", "bass_hold")


@dataclass
class Pop909Set:
    """Concatenated per-step arrays (see the module docstring) of the songs of one split."""

    arrays: dict[str, np.ndarray]
    starts: np.ndarray
    lengths: np.ndarray
    song: np.ndarray
    bpm: np.ndarray

    def song_arrays(self, i: int) -> dict[str, np.ndarray]:
        """The arrays of song ``i`` of this split."""
        s, n = int(self.starts[i]), int(self.lengths[i])
        return {k: v[s : s + n] for k, v in self.arrays.items()}


def _key_at(times: np.ndarray, keys: list[tuple[float, int, bool]]) -> tuple[np.ndarray, np.ndarray]:
    tonic = np.full(len(times), keys[0][1])
    minor = np.full(len(times), keys[0][2])
    for start, t, m in keys[1:]:
        sel = times >= start
        tonic[sel] = t
        minor[sel] = m
    return tonic, minor


_MAJORISH = {QUALITIES.index(q) for q in ("maj", "maj7", "maj6", "sus2", "sus4", "7")}
_MINORISH = {QUALITIES.index(q) for q in ("min", "min7", "min6")}


def key_fit(tonic: int, minor: bool, root: np.ndarray, quality: np.ndarray) -> float:
    """How well chords fit a key.

    The share of chord time whose triad lies in the scale (in minor the major V chord is allowed too),
    plus half the share of time spent on the tonic chord (I in major, i in minor).
    """
    from models.common import QUALITY_INTERVALS, scale_pitch_classes

    has = root >= 0
    if not np.any(has):
        return 0.0
    scale = set(scale_pitch_classes(tonic, "minor" if minor else "major"))
    if minor:
        scale.add((tonic + 11) % 12)
    r, q = root[has].astype(np.int64), quality[has].astype(np.int64)
    combos, inverse = np.unique(np.stack([r, q], 1), axis=0, return_inverse=True)
    ok = np.array(
        [all((rr + i) % 12 in scale for i in QUALITY_INTERVALS[QUALITIES[qq]][:3]) for rr, qq in combos]
    )
    fits = ok[inverse.reshape(-1)]
    tonic_q = _MINORISH if minor else _MAJORISH
    on_tonic = (r == tonic) & np.isin(q, list(tonic_q))
    return float(fits.mean() + 0.5 * on_tonic.mean())


def correct_keys(
    tonic: np.ndarray, minor: np.ndarray, root: np.ndarray, quality: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Fix major/minor confusions of the audio key annotations using the chord annotations.

    For each stretch of constant annotated key, the annotated key, its parallel and its relative key are
    scored with :func:`key_fit`; the annotation is replaced when another candidate fits better by 0.05.
    """
    tonic, minor = tonic.copy(), minor.copy()
    change = np.r_[True, (tonic[1:] != tonic[:-1]) | (minor[1:] != minor[:-1])]
    bounds = np.r_[np.flatnonzero(change), len(tonic)]
    for a, b in itertools.pairwise(bounds):
        t, m = int(tonic[a]), bool(minor[a])
        rel = ((t + 3) % 12, False) if m else ((t + 9) % 12, True)
        cands = [(t, m), (t, not m), rel]
        scores = [key_fit(ct, cm, root[a:b], quality[a:b]) for ct, cm in cands]
        best = int(np.argmax(scores))
        if best != 0 and scores[best] > scores[0] + 0.05:
            tonic[a:b], minor[a:b] = cands[best]
    return tonic, minor


def parse_song(folder: Path) -> dict[str, np.ndarray] | None:
    """Parse one POP909 song folder into per-step arrays, or ``None`` if it is not in 4/4."""
    import pretty_midi

    sid = folder.name
    beats = np.loadtxt(folder / "beat_midi.txt", ndmin=2)
    if len(beats) < 16:
        return None
    down = np.flatnonzero(beats[:, 2] > 0.5)
    if len(down) < 4 or np.median(np.diff(down)) != 4:
        return None
    bt = beats[:, 0]
    ext = np.append(bt, bt[-1] + (bt[-1] - bt[-2]))
    n_steps = len(bt) * STEPS_PER_BEAT
    grid_idx = np.arange(len(ext)) * STEPS_PER_BEAT
    step_times = np.interp(np.arange(n_steps), grid_idx, ext)

    def frac_step(t: float) -> float:
        return float(np.interp(t, ext, grid_idx, left=-1.0, right=n_steps + 1.0))

    beat_in_bar = (np.arange(len(bt)) - down[0]) % 4
    pos = (np.repeat(beat_in_bar, STEPS_PER_BEAT) * STEPS_PER_BEAT + np.tile(np.arange(4), len(bt))).astype(
        np.int8
    )

    keys = []
    for line in (folder / "key_audio.txt").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3 and ":" in parts[2]:
            ch = parse_chord(parts[2])
            if ch.root is not None:
                keys.append((float(parts[0]), ch.root, ch.quality.startswith("min")))
    if not keys:
        return None
    tonic, minor = _key_at(step_times, keys)

    root = np.full(n_steps, -1, dtype=np.int16)
    quality = np.zeros(n_steps, dtype=np.int8)
    for line in (folder / "chord_midi.txt").read_text().splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        a, b = round(frac_step(float(parts[0]))), round(frac_step(float(parts[1])))
        ch = parse_chord(parts[2])
        a, b = max(a, 0), min(b, n_steps)
        if b <= a or ch.root is None:
            continue
        root[a:b] = ch.root
        quality[a:b] = QUALITIES.index(ch.quality)

    tonic, minor = correct_keys(tonic, minor, root, quality)

    pm = pretty_midi.PrettyMIDI(str(folder / f"{sid}.mid"))
    tracks = {inst.name.upper(): inst.notes for inst in pm.instruments}

    mel_on = np.full(n_steps, -1, dtype=np.int16)
    mel_hold = np.zeros(n_steps, dtype=bool)
    for n in sorted(tracks.get("MELODY", []), key=lambda n: n.start):
        a = round(frac_step(n.start))
        b = max(round(frac_step(n.end)), a + 1)
        if a < 0 or a >= n_steps:
            continue
        mel_on[a] = n.pitch
        mel_hold[a + 1 : min(b, n_steps)] = True
        mel_hold[a] = False
    # a hold is only a hold of the last onset: clear holds that follow a later onset's end
    bass_on = np.full(n_steps, -1, dtype=np.int16)
    bass_hold = np.zeros(n_steps, dtype=bool)
    low = [n for n in tracks.get("PIANO", []) if n.pitch <= BASS_MAX_PITCH]
    lowest = np.full(n_steps, 999, dtype=np.int32)
    owner = np.full(n_steps, -1, dtype=np.int64)
    onset_step = []
    for j, n in enumerate(low):
        a = round(frac_step(n.start))
        b = max(round(frac_step(n.end)), a + 1)
        onset_step.append(a)
        a0, b0 = max(a, 0), min(b, n_steps)
        if b0 <= a0:
            continue
        seg = lowest[a0:b0]
        better = n.pitch < seg
        seg[better] = n.pitch
        owner[a0:b0][better] = j
    prev_owner = -1
    for k in range(n_steps):
        j = owner[k]
        if j < 0:
            prev_owner = -1
            continue
        if onset_step[j] == k:
            bass_on[k] = low[j].pitch
        elif j == prev_owner:
            bass_hold[k] = True
        else:
            j = -1  # lowest note started earlier under another note: treat as rest
        prev_owner = j
    return {
        "pos": pos,
        "tonic": tonic.astype(np.int8),
        "minor": minor.astype(bool),
        "root": root.astype(np.int8),
        "quality": quality,
        "mel_on": mel_on,
        "mel_hold": mel_hold,
        "bass_on": bass_on,
        "bass_hold": bass_hold,
        "bpm": np.array([60.0 / np.median(np.diff(bt))]),
    }


def _cache_file(data: Path, cache_dir: Path) -> Path:
    names = sorted(p.name for p in data.iterdir() if p.is_dir())
    digest = hashlib.sha1(("|".join(names) + "pop909-v2").encode()).hexdigest()[:12]
    return cache_dir / f"pop909_{digest}.npz"


def load_pop909(data: str | Path, *, cache_dir: str | Path | None = None) -> dict[str, Pop909Set]:
    """Parse (or read from the cache) all 4/4 songs of POP909, split by song number.

    Returns
    -------
    dict
        ``{"train": Pop909Set, "validation": Pop909Set, "test": Pop909Set}``.
    """
    data = Path(data)
    cache = _cache_file(data, Path(cache_dir) if cache_dir else DEFAULT_CACHE)
    if not cache.exists():
        _build_cache(data, cache)
    z = np.load(cache, allow_pickle=False)
    out = {}
    for split in SPLITS:
        out[split] = Pop909Set(
            arrays={f: z[f"{split}_{f}"] for f in FIELDS},
            starts=z[f"{split}_starts"],
            lengths=z[f"{split}_lengths"],
            song=z[f"{split}_song"],
            bpm=z[f"{split}_bpm"],
        )
    return out


def _build_cache(data: Path, cache: Path) -> None:
    arrays: dict[str, np.ndarray] = {}
    for split, (lo, hi) in SPLITS.items():
        songs = []
        for i in range(lo, hi + 1):
            folder = data / f"{i:03d}"
            if not folder.is_dir():
                continue
            s = parse_song(folder)
            if s is not None:
                songs.append((i, s))
        lengths = np.array([len(s["pos"]) for _, s in songs], dtype=np.int64)
        for f in FIELDS:
            arrays[f"{split}_{f}"] = np.concatenate([s[f] for _, s in songs])
        arrays[f"{split}_lengths"] = lengths
        arrays[f"{split}_starts"] = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        arrays[f"{split}_song"] = np.array([i for i, _ in songs], dtype=np.int64)
        arrays[f"{split}_bpm"] = np.array([s["bpm"][0] for _, s in songs], dtype=np.float32)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(cache)
