"""Editor benchmark: a 3-minute four-stem project, re-rendered after edits.

Run: ``python bench/editor.py [--seconds 180] [--repeats 3]``

Each scenario runs in a fresh subprocess so its peak memory (``ru_maxrss``) is its own (the synthesiser
renders in threads of that process, so it is included). Printed figures (median of ``--repeats``
timed edits after a warm-up render; every render is mastered, i.e. exactly what a user hears):

* **generated project** (MIDI + audio stems: drums, bass, keys, lead) -- first render, re-render after a
  volume change (target <= 0.5 s), after a tempo change (MIDI re-rendered at the new tempo; target
  <= 2 s), after a key change, after a reverb on one track, MP3 export of the mix.
  The song comes from :func:`core.music.generate.generate_song`; when its trained models are not
  available the bench writes four comparable MIDI stems with pretty_midi and renders them with
  :mod:`core.music.render` (the output says which).
* **audio project** (the same four stems as audio only, as after an upload) -- re-render after a volume
  change, after a tempo change (Rubber Band time-stretch of every stem), and after splitting one stem
  into harmonic + drums (HPSS; the peak memory is printed before and with it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _midi_song(seconds: float, seed: int = 1):
    """Four MIDI stems (drums, bass, keys, lead) at 120 bpm in A minor, rendered with the soundfont."""
    import numpy as np

    from core.music.midi import Note, Part, midi_to_bytes, parts_to_midi
    from core.music.render import render_stems
    from core.music.theory import parse_key

    rng = np.random.default_rng(seed)
    key = parse_key("A minor")
    beats = int(seconds * 2) - 2
    roots = [57, 53, 48, 55]  # Am F C G
    drums, bass, keys, lead = [], [], [], []
    for b in range(beats):
        drums.append(Note(b, b + 0.25, 36 if b % 2 == 0 else 38, 110))
        drums.extend(Note(b + h, b + h + 0.1, 42, 70) for h in (0.0, 0.5))
        root = roots[(b // 4) % 4]
        bass.append(Note(b, b + 0.9, root - 24, 100))
        if b % 4 == 0:
            keys.extend(Note(b, b + 3.9, p, 80) for p in (root, root + 3 + (b // 4 % 2), root + 7))
        if rng.random() < 0.7:
            lead.append(Note(b, b + 0.8, int(root + 12 + rng.choice([0, 3, 5, 7, 10])), 95))
    parts = [
        Part("drums", is_drum=True, notes=drums), Part("bass", program=33, notes=bass),
        Part("keys", program=0, notes=keys), Part("lead", program=80, notes=lead),
    ]  # fmt: skip
    midi = {p.name: midi_to_bytes(parts_to_midi([p], bpm=120.0, key=key, end_beat=beats + 2)) for p in parts}
    audio = render_stems(midi, sr=44100, seconds=seconds)
    chords = [
        (i * 2.0, i * 2.0 + 2.0, ("A:min", "F:maj", "C:maj", "G:maj")[i % 4]) for i in range(int(seconds / 2))
    ]
    return audio, midi, chords


def prepare(path: str, seconds: float) -> None:
    """Make the bench song once (in its own process, so its memory is not the editor's) and save it."""
    import json as _json

    import numpy as np

    from core.errors import StudioError

    origin = "pretty_midi stems rendered with core.music.render"
    try:
        from core.music.generate import generate_song

        song = generate_song(
            genre="pop", mood="happy", tempo=120, key="A minor", instruments="drums,bass,keys,lead",
            seconds=seconds, seed=1,
        )  # fmt: skip
        audio, midi = song.stems, song.midi
        chords = [(s * 60 / song.tempo_bpm, e * 60 / song.tempo_bpm, c) for s, e, c in song.chords]
        origin = "core.music.generate.generate_song"
    except (ImportError, StudioError):
        audio, midi, chords = _midi_song(seconds)
    arrays = {f"audio_{k}": v for k, v in audio.items()}
    arrays.update({f"midi_{k}": np.frombuffer(v, dtype=np.uint8) for k, v in midi.items()})
    meta = {"origin": origin, "chords": chords, "names": list(audio)}
    np.savez(path, meta=np.array(_json.dumps(meta)), **arrays)


def _make_project(path: str, kind: str):
    import json as _json

    import numpy as np

    from core.editor.project import MemorySources, from_audio_stems

    data = np.load(path)
    meta = _json.loads(str(data["meta"]))
    audio = {n: data[f"audio_{n}"] for n in meta["names"]}
    midi = {n: data[f"midi_{n}"].tobytes() for n in meta["names"]} if kind == "generated" else None
    src = MemorySources()
    project = from_audio_stems(
        audio, sources=src, title="bench", tempo_bpm=120.0, key="A minor", chords=meta["chords"], midi=midi,
    )  # fmt: skip
    return project, src, meta["origin"]


def stretch_quality() -> dict:
    """Quality of the audio tempo/pitch path (:func:`core.audio.effects.time_stretch`) on signals made here.

    * artefacts: energy outside the partials of a 440 + 660 Hz two-tone after a x1.25 stretch, in dB
      relative to the partials (lower is better);
    * tempo error: a 120 bpm click track stretched x1.25 should play at 150 bpm (median inter-onset
      interval of the result);
    * pitch error: a 440 Hz tone shifted +3 semitones, in cents from 523.25 Hz.
    """
    import numpy as np

    from core.audio.effects import pitch_shift, time_stretch

    sr = 44100
    t = np.arange(6 * sr) / sr
    tone = np.tile(
        (0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 660 * t)).astype(np.float32), (2, 1)
    )
    z = time_stretch(tone, sr=sr, rate=1.25)[0, sr:-sr].astype(np.float64)
    spec = np.abs(np.fft.rfft(z * np.hanning(z.size))) ** 2
    f = np.fft.rfftfreq(z.size, 1 / sr)
    band = (np.abs(f - 440) < 5) | (np.abs(f - 660) < 5)
    artefacts = 10 * np.log10(spec[~band].sum() / spec[band].sum())

    clicks = np.zeros(8 * sr, np.float32)
    burst = np.random.default_rng(0).standard_normal(int(0.03 * sr)) * np.exp(
        -np.linspace(0, 8, int(0.03 * sr))
    )
    for k in range(16):
        clicks[int(k * 0.5 * sr) : int(k * 0.5 * sr) + burst.size] += 0.5 * burst.astype(np.float32)
    fast = time_stretch(np.tile(clicks, (2, 1)), sr=sr, rate=1.25)[0]
    hop = int(0.005 * sr)
    e = np.square(fast[: fast.size // hop * hop].reshape(-1, hop)).mean(axis=1)
    above = e > 0.05 * e.max()
    onsets = (np.flatnonzero(above[1:] & ~above[:-1]) + 1) * hop / sr
    bpm = 60.0 / float(np.median(np.diff(onsets)))

    up = pitch_shift(
        np.tile(np.sin(2 * np.pi * 440 * t[: 3 * sr]).astype(np.float32) * 0.3, (2, 1)), sr=sr, semitones=3
    )
    seg = up[0, sr // 2 : -sr // 2].astype(np.float64)
    spec = np.abs(np.fft.rfft(seg * np.hanning(seg.size), n=8 * seg.size))
    peak = np.fft.rfftfreq(8 * seg.size, 1 / sr)[spec.argmax()]
    cents = 1200 * np.log2(peak / (440 * 2 ** (3 / 12)))
    return {
        "artefacts_db": round(float(artefacts), 1),
        "tempo_bpm": round(bpm, 2),
        "pitch_error_cents": round(float(cents), 1),
    }


def _cpu() -> float:
    """CPU seconds of this process, all its threads (the synthesiser's included)."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def _timed(fn, repeats: int) -> tuple[float, float]:
    """Median wall seconds and median CPU seconds of ``fn(i)`` over ``repeats`` calls."""
    walls, cpus = [], []
    for i in range(repeats):
        c0, t0 = _cpu(), time.perf_counter()
        fn(i)
        walls.append(time.perf_counter() - t0)
        cpus.append(_cpu() - c0)
    return statistics.median(walls), statistics.median(cpus)


def scenario(kind: str, path: str, repeats: int) -> dict:
    """Run one scenario in this process and return its figures (``(wall_s, cpu_s)`` pairs)."""
    from core.audio.effects import Reverb
    from core.editor import ops as O
    from core.editor.render import Renderer, export_mix

    project, src, origin = _make_project(path, kind)
    r = Renderer()
    first = None

    def first_render(i: int) -> None:
        nonlocal first
        first = r.render(project, sources=src)

    first_s = _timed(first_render, 1)
    out = {"kind": kind, "origin": origin, "seconds": round(first.seconds, 1), "stems": len(first.stems)}
    out["first_render_s"] = first_s
    gains = [-3.0, -4.5, -6.0, -1.5, -2.0]
    last: dict = {}

    def volume(i: int) -> None:
        last["r"] = r.render(project.apply(O.TrackGain(track="keys", db=gains[i % 5])), sources=src)

    out["volume_change_s"] = _timed(volume, repeats)
    out["volume_change_parts_s"] = {k: round(v, 3) for k, v in last["r"].timings.items()}
    ratios = [1.1, 0.9, 1.2, 0.85, 1.15]
    out["tempo_change_s"] = _timed(
        lambda i: r.render(project.apply(O.SetTempo(ratio=ratios[i % 5])), sources=src),
        repeats if kind == "generated" else 1,
    )
    if kind == "generated":
        out["key_change_s"] = _timed(
            lambda i: r.render(project.apply(O.Transpose(semitones=i + 1)), sources=src), repeats
        )
        out["reverb_on_one_track_s"] = _timed(
            lambda i: r.render(
                project.apply(O.TrackEffects(track="keys", chain=(Reverb(room_size=0.3 + 0.1 * i),))),
                sources=src,
            ),
            repeats,
        )
        out["mp3_export_s"] = _timed(lambda i: export_mix(first, fmt="mp3"), 1)
    else:
        out["peak_rss_mb_before_split"] = round(_peak_mb(), 1)
        out["split_drums_s"] = _timed(
            lambda i: r.render(project.apply(O.SplitHarmonicPercussive(track="keys")), sources=src), 1
        )
    out["peak_rss_mb"] = round(_peak_mb(), 1)
    out["load_avg_1min"] = round(os.getloadavg()[0], 1)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run every scenario in a subprocess and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=180.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--scenario", choices=("generated", "audio"), help=argparse.SUPPRESS)
    ap.add_argument("--prepare", help=argparse.SUPPRESS)
    ap.add_argument("--song", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.prepare:
        prepare(args.prepare, args.seconds)
        return 0
    if args.scenario:
        print(json.dumps(scenario(args.scenario, args.song, args.repeats)))
        return 0
    quality = stretch_quality()
    import tempfile

    env = {**os.environ, "PYTHONHASHSEED": "0"}
    tmp = tempfile.mkdtemp(prefix="bench-editor-")
    song = os.path.join(tmp, "song.npz")
    prep = subprocess.run(
        [sys.executable, __file__, "--prepare", song, "--seconds", str(args.seconds)],
        capture_output=True, text=True, env=env, cwd=ROOT, check=False,
    )  # fmt: skip
    if prep.returncode != 0:
        print(prep.stderr[-3000:], file=sys.stderr)
        return 1
    results = []
    for kind in ("generated", "audio"):
        proc = subprocess.run(
            [sys.executable, __file__, "--scenario", kind, "--song", song, "--repeats", str(args.repeats)],
            capture_output=True, text=True, env=env, cwd=ROOT, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            return 1
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    gen, aud = results

    def row(label: str, value, note: str = "") -> None:
        wall, cpu = value
        print(f"    {label:<37}{wall:7.2f} s wall {cpu:7.2f} s CPU   {note}".rstrip())

    print(
        f"Editor benchmark: {gen['seconds']:.0f} s, {gen['stems']}-stem project, {os.cpu_count()} CPU cores"
    )
    print(
        "  (wall = elapsed on this machine under its current load; CPU = CPU seconds the job used, which is"
    )
    print("   what wall time approaches on an idle machine when the work runs on one core)")
    print(f"  generated project ({gen['origin']}; MIDI + audio stems):")
    row("first render", gen["first_render_s"])
    row("re-render after a volume change", gen["volume_change_s"], "(target <= 0.5 s)")
    print(f"      split of the last one (wall s): {gen['volume_change_parts_s']}")
    row("re-render after a tempo change", gen["tempo_change_s"], "(target <= 2 s; MIDI re-rendered)")
    row("re-render after a key change", gen["key_change_s"], "(target <= 2 s)")
    row("re-render after a reverb on 1 track", gen["reverb_on_one_track_s"])
    row("MP3 export of the mix", gen["mp3_export_s"])
    print(f"    peak memory (RSS)                    {gen['peak_rss_mb']:7.0f} MB   (target <= 1536 MB)")
    print("  audio project (the same 4 stems as audio only, as after an upload):")
    row("first render", aud["first_render_s"])
    row("re-render after a volume change", aud["volume_change_s"], "(target <= 0.5 s)")
    print(f"      split of the last one (wall s): {aud['volume_change_parts_s']}")
    row("re-render after a tempo change", aud["tempo_change_s"], "(time-stretch of 4 stems)")
    before_split = aud["peak_rss_mb_before_split"]
    print(f"    peak memory (RSS)                    {before_split:7.0f} MB   (target <= 1536 MB)")
    row("split one stem into harmonic + drums", aud["split_drums_s"], "(HPSS of 1 stem)")
    print(f"    peak memory (RSS) with the split     {aud['peak_rss_mb']:7.0f} MB   (target <= 1536 MB)")
    print("  audio time-stretch / pitch-shift quality (Rubber Band via pedalboard, fast + mixed transients):")
    print(f"    two-tone x1.25: artefacts {quality['artefacts_db']} dB below the partials")
    print(f"    120 bpm clicks x1.25: detected {quality['tempo_bpm']} bpm (expected 150)")
    print(f"    440 Hz +3 semitones: {quality['pitch_error_cents']:+.1f} cents from 523.25 Hz")
    loads = f"{gen['load_avg_1min']}, {aud['load_avg_1min']}"
    print(f"  machine load (1-min average) at the end of each run: {loads}")
    print(json.dumps({"generated": gen, "audio": aud, "stretch_quality": quality}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
