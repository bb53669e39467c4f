"""Evaluate add-beats (core.beats.add_beats) on POP909 songs rendered without drums or bass.

The evaluation set is built in code by ``bench/analysis.py`` (imported, not duplicated): songs of
POP909's *test* split (819-909; nothing was fitted or tuned on it), their MELODY + BRIDGE + PIANO tracks
(no drums, no bass) rendered with midirenderer and the General MIDI soundfont at their true tempos,
compared with the annotations (``beat_midi.txt``, ``key_audio.txt``, ``chord_midi.txt``). By default 20
songs spread evenly over the split (about 6 s each: a few minutes). Rendered songs are cached (FLAC) in
the same folder as ``bench/analysis.py``'s.

Prints:

- tempo accuracy (share within 4% of the true tempo; target >= 95%), and for information "accuracy 2"
  (octave errors x2, x1/2, x3, x1/3 allowed) and the share within 4% of either of POP909's two beat
  annotations (``beat_midi.txt``, the truth, or ``beat_audio.txt``, made on the original recordings),
- beat F-measure of the detected beats (+-70 ms, first 5 s ignored; target >= 0.85),
- the same F-measure for the onsets of the added drum stem against the true beats,
- key accuracy (tonic + mode) and chord accuracy (root + maj/min, frame-wise at 10 Hz),
- share of bass notes on chord tones (of the annotated chord) among notes starting on strong beats
  (beats 1 and 3 of the annotated bars),
- time to add drums + bass, scaled to a 3-minute song (warm), and the first run in a fresh process
  (imports, model loading), with that process's peak memory (RSS; target <= 1.5 GB per job),
- the first run on a fresh install (an empty ``NUMBA_CACHE_DIR``: numba compiles librosa's code and the
  synthesiser), and again after ``python -m core warmup`` (which the app starts after its first page),
- the same fresh-process run on the longest song the app accepts (10 minutes: the first song repeated),
  for its time and peak memory.

Usage::

    python bench/add_beats.py [--data ../shared/data/pop909] [--split test] [--songs 20] [--cache DIR]
                              [--no-first-run] [--no-long] [--verbose]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.analysis import (  # noqa: E402
    SR,
    TempoScore,
    chord_accuracy,
    f_measure,
    load_cached,
    load_truth,
    pick_songs,
    pitch_class,
)
from core.audio import io as aio  # noqa: E402
from core.audio.analysis import PITCH_NAMES  # noqa: E402

_FIRST_RUN = """
import resource, time, sys
t0 = time.perf_counter()
import numpy as np
from core.audio import io as aio
from core.beats import add_beats
y = aio.load(sys.argv[1], sr=44100, limits=aio.AudioLimits(max_duration_s=1800.0))
t1 = time.perf_counter()
r = add_beats(y, sr=44100, seed=0)
t2 = time.perf_counter()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{t2 - t0:.2f} {t2 - t1:.2f} {y.shape[1] / 44100:.2f} {peak:.0f}")
"""


def _fresh_run(path: Path, env: dict | None = None) -> tuple[float, float, float, float] | None:
    """Add beats to ``path`` in a new process: (total s, add_beats s, song s, peak RSS MB), or None.
    ``env``: variables added to the environment (``NUMBA_CACHE_DIR`` for a fresh install)."""
    proc = subprocess.run(
        [sys.executable, "-c", _FIRST_RUN, str(path)], cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    if proc.returncode != 0:
        print(f"fresh process failed: {proc.stderr[-500:]}", file=sys.stderr)
        return None
    total_s, call_s, dur, peak = (float(v) for v in proc.stdout.split()[-4:])
    return total_s, call_s, dur, peak


def _fresh_install_runs(path: Path) -> tuple | None:
    """The first run on a fresh install, where numba has compiled nothing yet (an empty
    ``NUMBA_CACHE_DIR``), then ``python -m core warmup`` (what the app starts after its first page) in
    another process, then the first run again: ((run), warm-up s, (run after it)), or None."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-numba-") as cold_dir:
        cold = _fresh_run(path, {"NUMBA_CACHE_DIR": cold_dir})
    with tempfile.TemporaryDirectory(prefix="bench-numba-") as warm_dir:
        env = {"NUMBA_CACHE_DIR": warm_dir}
        t0 = time.perf_counter()
        warm = subprocess.run(
            [sys.executable, "-m", "core", "warmup"], cwd=ROOT, capture_output=True, text=True,
            env={**os.environ, **env},
        )  # fmt: skip
        warmup_s = time.perf_counter() - t0
        if warm.returncode != 0:
            print(f"warm-up failed: {warm.stderr[-500:]}", file=sys.stderr)
            return None
        return None if cold is None else (cold, warmup_s, _fresh_run(path, env))


def _long_song(path: Path, cache: Path, seconds: float) -> Path:
    """``path``'s song repeated to ``seconds`` (the app's length limit), cached as FLAC beside it."""
    out = cache / f"{path.stem}-{seconds:.0f}s.flac"
    if not out.exists():
        y = aio.load(path, sr=SR, limits=aio.AudioLimits(max_duration_s=1800.0))
        reps = int(np.ceil(seconds * SR / y.shape[1]))
        out.write_bytes(aio.encode(np.tile(y, (1, reps))[:, : int(seconds * SR)], sr=SR, fmt="flac"))
    return out


def _cpu() -> float:
    """CPU seconds of this process, all its threads (the synthesiser's included)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def chord_tones(label: str) -> set[int] | None:
    """Pitch classes of a POP909 chord label (None for no chord)."""
    from models.common import QUALITY_INTERVALS, parse_chord

    c = parse_chord(label)
    if c.root is None:
        return None
    return {(c.root + i) % 12 for i in QUALITY_INTERVALS[c.quality]}


def bass_on_chord_tones(notes, truth: dict, window: float = 0.07) -> tuple[int, int]:
    """(on chord tones, total) for bass notes starting within ``window`` of a true strong beat."""
    beats = truth["beats"]
    down = truth["downbeats"]
    bar_pos = np.zeros(beats.size, dtype=int)
    for i, t in enumerate(beats):
        k = np.searchsorted(down, t + 1e-6) - 1
        bar_pos[i] = i - int(np.searchsorted(beats, down[k] - 1e-6)) if k >= 0 else i
    strong = beats[bar_pos % 2 == 0]
    starts = np.array([c[0] for c in truth["chords"]])
    ok = total = 0
    for n in notes:
        if strong.size == 0 or np.min(np.abs(strong - n["start"])) > window:
            continue
        k = int(np.searchsorted(starts, n["start"] + window, side="right")) - 1
        if k < 0 or n["start"] >= truth["chords"][k][1]:
            continue
        tones = chord_tones(truth["chords"][k][2])
        if tones is None:
            continue
        total += 1
        ok += (n["pitch"] % 12) in tones
    return ok, total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "pop909"))
    parser.add_argument("--split", default="test", choices=("train", "validation", "test"))
    parser.add_argument("--songs", type=int, default=20, help="number of songs (spread over the split)")
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "beattok-bench" / "pop909"))
    parser.add_argument("--no-first-run", action="store_true", help="skip the fresh-process timing")
    parser.add_argument("--no-long", action="store_true", help="skip the 10-minute song")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)

    import librosa
    import pretty_midi

    from core.beats import add_beats, load_beat_samplers

    data = Path(args.data)
    folders = pick_songs(data, args.split, args.songs)
    if not folders:
        print(f"no POP909 songs of the {args.split} split under {data}", file=sys.stderr)
        return 2
    sf2 = (Path(pretty_midi.__file__).parent / "TimGM6mb.sf2").read_bytes()
    cache = Path(args.cache)
    paths = []
    for folder in folders:
        cached = cache / f"{folder.name}.flac"
        if not cached.exists():
            load_cached(folder, sf2, cache)
        paths.append(cached)

    first = None if args.no_first_run else _fresh_run(paths[0])
    fresh = None if args.no_first_run else _fresh_install_runs(paths[0])
    from core.config import get_settings

    longest = float(get_settings().max_duration_s)
    long_run = None if args.no_long else _fresh_run(_long_song(paths[0], cache, longest))

    samplers = load_beat_samplers()
    warm_y = aio.load(paths[0], sr=SR, limits=aio.AudioLimits(max_duration_s=1800.0))
    add_beats(warm_y[:, : SR * 20], sr=SR, samplers=samplers)  # warm-up: numba, caches

    tempo = TempoScore()
    beat_f, raw_f, drum_f, key_ok = [], [], [], []
    chord_c = chord_n = bass_ok = bass_n = 0
    seconds = audio_seconds = cpu_seconds = 0.0
    for folder, path in zip(folders, paths, strict=True):
        y = aio.load(path, sr=SR, limits=aio.AudioLimits(max_duration_s=1800.0))
        truth = load_truth(folder)
        t, c = time.perf_counter(), _cpu()
        r = add_beats(y, sr=SR, seed=0, samplers=samplers)
        dt = time.perf_counter() - t
        cpu_seconds += _cpu() - c
        a = r.analysis
        seconds += dt
        audio_seconds += a.duration_s
        est_tempo = a.tempo_bpm or 0.0
        tempo.add(folder.name, est_tempo, truth["tempo"], a, truth["audio_tempo"])
        beat_f.append(f_measure(truth["beats"], np.array(a.beats)))
        # the beats as core.audio.analysis found them, before add_beats moved them onto the attacks
        raw_f.append(f_measure(truth["beats"], np.array(a.beats) - r.meta["grid_offset_s"]))
        onsets = librosa.onset.onset_detect(y=r.stems["drums"].mean(axis=0), sr=SR, units="time")
        drum_f.append(f_measure(truth["beats"], onsets))
        est_key = None
        if a.key:
            tonic, mode = a.key.split()
            est_key = (pitch_class(tonic), mode)
        key_ok.append(est_key == truth["key"])
        c, n = chord_accuracy(truth["chords"], a.chords, a.duration_s)
        chord_c, chord_n = chord_c + c, chord_n + n
        bo, bn = bass_on_chord_tones(r.bass_notes, truth)
        bass_ok, bass_n = bass_ok + bo, bass_n + bn
        if args.verbose:
            print(
                f"{folder.name}: tempo {est_tempo:6.1f} (true {truth['tempo']:6.1f})  "
                f"beatF {beat_f[-1]:.3f}  drumF {drum_f[-1]:.3f}  "
                f"key {a.key} (true {PITCH_NAMES[truth['key'][0]]} {truth['key'][1]})  "
                f"chords {c / max(n, 1):.3f}  bass {bo}/{bn}  style {r.style}  "
                f"{a.duration_s:.0f} s song in {dt:.2f} s",
                flush=True,
            )
    n = len(folders)
    print(
        f"POP909 {args.split} songs: {n} ({folders[0].name}-{folders[-1].name}; MELODY+BRIDGE+PIANO rendered "
        f"with TimGM6mb.sf2, no drums or bass), {audio_seconds / 60:.1f} min of audio"
    )
    tempo.print(width=37)
    print(
        f"beat F-measure, detected (+-70 ms):  {np.mean(beat_f):.3f} "
        f"(grid aligned to the attacks; as analysed: {np.mean(raw_f):.3f})"
    )
    print(f"beat F-measure, drum-stem onsets:    {np.mean(drum_f):.3f}")
    print(f"key accuracy (tonic + mode):         {np.mean(key_ok) * 100:5.1f} %")
    print(
        f"chord accuracy (root+maj/min):       {chord_c / max(chord_n, 1) * 100:5.1f} % "
        f"of {chord_n} frames at 10 Hz"
    )
    print(f"bass on chord tones, strong beats:   {bass_ok / max(bass_n, 1) * 100:5.1f} % of {bass_n} notes")
    print(
        f"add drums+bass, per 3-min song:      {seconds / audio_seconds * 180:.2f} s wall (warm), "
        f"{cpu_seconds / audio_seconds * 180:.2f} s CPU (all threads); "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    if first is not None:
        total_s, call_s, dur, peak = first
        print(
            f"first run in a fresh process:        {total_s:.1f} s for a {dur:.0f} s song "
            f"(imports+decode {total_s - call_s:.1f} s, add_beats incl. model loading {call_s:.1f} s); "
            f"peak memory {peak:.0f} MB (target <= 1536 MB)"
        )
    if fresh is not None and fresh[2] is not None:
        (cold_s, _, dur, _), warmup_s, (after_s, _, _, _) = fresh
        print(
            f"first run on a fresh install:        {cold_s:.1f} s for a {dur:.0f} s song (numba compiles "
            f"librosa and the synthesiser); after `python -m core warmup` ({warmup_s:.1f} s, which the "
            f"app starts after its first page): {after_s:.1f} s"
        )
    if long_run is not None:
        total_s, call_s, dur, peak = long_run
        print(
            f"longest song allowed, fresh process: {total_s:.1f} s for a {dur:.0f} s song "
            f"(add_beats {call_s:.1f} s); peak memory {peak:.0f} MB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
