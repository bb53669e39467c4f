"""POP909 songs rendered to audio, and the analysis representations the tempo-octave chooser learns from.

A song is rendered exactly as the analysis benchmarks render it (``bench/analysis.py``): its MELODY,
BRIDGE and PIANO tracks (no drums, no bass) through ``midirenderer`` and pretty_midi's General MIDI
soundfont (TimGM6mb.sf2) at the song's own tempo. Of the audio we keep only what
:mod:`core.audio.analysis` computes before it chooses a tempo: the onset envelope, the bass-band onset
envelope and the chroma (:func:`representations`), plus the annotated beat times (``beat_midi.txt``).
They are cached per song as ``NNN.npz`` under a cache folder (default ``/tmp/beattok_cache/tempo``), never
in the repository.

Splits by song number, the same as every POP909 model (:data:`models.data_pop909.SPLITS`):
001-727 train, 728-818 validation, 819-909 test.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from models.data_pop909 import SPLITS

DEFAULT_CACHE = Path("/tmp/beattok_cache/tempo")
RENDER_SR = 44100
_TRACKS = ("MELODY", "BRIDGE", "PIANO")


def soundfont_bytes() -> bytes:
    """The General MIDI soundfont bundled with pretty_midi (TimGM6mb.sf2)."""
    import pretty_midi

    return (Path(pretty_midi.__file__).resolve().parent / "TimGM6mb.sf2").read_bytes()


def render_song(folder: Path, sf2: bytes) -> np.ndarray:
    """Render MELODY+BRIDGE+PIANO of a POP909 song to float32 stereo ``(2, n)`` at 44.1 kHz."""
    import midirenderer
    import pretty_midi

    from core.audio import io as aio

    pm = pretty_midi.PrettyMIDI(str(Path(folder) / f"{Path(folder).name}.mid"))
    pm.instruments = [inst for inst in pm.instruments if not inst.is_drum and inst.name.upper() in _TRACKS]
    buf = io.BytesIO()
    pm.write(buf)
    wav = midirenderer.render_wave_from(sf2, buf.getvalue())
    return aio.decode(wav, filename="render.wav", sr=RENDER_SR, limits=aio.AudioLimits(max_duration_s=1800.0))


def true_beats(folder: Path) -> np.ndarray:
    """Annotated beat times (s) of a POP909 song (first column of ``beat_midi.txt``)."""
    return np.loadtxt(Path(folder) / "beat_midi.txt", ndmin=2)[:, 0]


def true_tempo(beats: np.ndarray) -> float:
    """Tempo (BPM) of an annotated beat sequence: 60 over the median inter-beat interval."""
    return 60.0 / float(np.median(np.diff(beats)))


def split_songs(data: Path, split: str, *, every: int = 1) -> list[Path]:
    """Song folders of a split (``train``, ``validation``, ``test``), every ``every``-th one."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {list(SPLITS)}")
    lo, hi = SPLITS[split]
    out = []
    for num in range(lo, hi + 1, max(1, int(every))):
        folder = Path(data) / f"{num:03d}"
        if (folder / "beat_midi.txt").is_file() and (folder / f"{num:03d}.mid").is_file():
            out.append(folder)
    return out


def representations(y: np.ndarray, sr: int) -> dict[str, np.ndarray]:
    """What the analysis computes before choosing a tempo: ``env``, ``bass`` and ``chroma``."""
    from core.audio.analysis import _chroma, _mono, _rhythm_features

    mono = _mono(y, int(sr))
    env, bass = _rhythm_features(mono)
    return {"env": env, "bass": bass, "chroma": _chroma(mono)}


def load_song(
    folder: Path, *, cache: Path = DEFAULT_CACHE, sf2: bytes | None = None
) -> dict[str, np.ndarray]:
    """Cached representations + ``beats`` (annotated) of one song, rendering it on a cache miss."""
    folder = Path(folder)
    path = Path(cache) / f"{folder.name}.npz"
    if path.is_file():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    y = render_song(folder, sf2 if sf2 is not None else soundfont_bytes())
    rep = representations(y, RENDER_SR)
    rep["beats"] = true_beats(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **rep)
    tmp.replace(path)
    return rep
