"""Evaluate the symbolic music models: held-out NLL vs baselines, sampling speed, drum statistics.

Usage::

    python bench/models_eval.py                 # NLL from models/results/*.json + speed + drum statistics
    python bench/models_eval.py --recompute     # recompute the NLLs from the checkpoints and the data sets
    python bench/models_eval.py --json          # one JSON object on stdout

Sampling speed is the median wall time of generating 60 s of music at 120 bpm (30 bars, 120 beats)
with each model on one thread. Drum statistics compare drums generated for the style of every
Groove test performance (8 bars each, seed = index) with the test performances themselves: onsets per
bar of each class, and syncopation = share of onsets on the off-beat 16ths (the 2nd and 4th 16th of
each beat).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

KINDS = ("drums", "harmony", "bass", "melody")


def nll_table(*, recompute: bool, groove: Path, pop909: Path, cache: str | None) -> dict:
    """Held-out NLL and baselines of each model (from ``models/results`` or recomputed)."""
    from core import loaders
    from models.common import RESULTS_DIR

    out = {}
    for kind in KINDS:
        if recompute:
            from models.train import evaluate

            model = getattr(loaders, f"load_{kind}")()
            res = evaluate(kind, model, data=groove if kind == "drums" else pop909, cache=cache)
        else:
            path = RESULTS_DIR / f"{kind}.json"
            res = json.loads(path.read_text()) if path.exists() else {}
        test = res.get("test", {})
        out[kind] = {
            "units": res.get("units", ""),
            "model": next(iter(test.values()), None),
            "baselines": {k: v for k, v in res.get("baselines", {}).items() if k.endswith("_bits")},
        }
        if kind == "drums" and "test_with_tap" in res:
            out[kind]["model_with_tap"] = res["test_with_tap"]["nll_bits_per_step_class"]
    return out


def _time(fn, repeats: int) -> float:
    times = []
    for r in range(repeats):
        t = time.perf_counter()
        fn(r)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def sampling_speed(repeats: int = 5) -> dict:
    """Median seconds to generate 60 s of music (120 bpm: 30 bars) with each model."""
    from core import loaders
    from models import bass, drums, harmony, melody

    d, b, h, m = loaders.load_drums(), loaders.load_bass(), loaders.load_harmony(), loaders.load_melody()
    prog = ["C:maj", "G:maj", "A:min", "F:maj"]
    chords = [(4.0 * i, 4.0 * i + 4.0, prog[i % 4]) for i in range(30)]
    return {
        "drums_s": _time(lambda s: drums.sample(d, bars=30, style="funk", seed=s), repeats),
        "harmony_s": _time(
            lambda s: harmony.sample(h, key="C", mode="major", mood="happy", bars=30, seed=s), repeats
        ),
        "bass_s": _time(
            lambda s: bass.sample(b, chords=chords, steps_per_beat=4, beats=120, seed=s), repeats
        ),
        "melody_s": _time(
            lambda s: melody.sample(m, key="C", mode="major", chords=chords, beats=120, seed=s), repeats
        ),
    }


def _drum_stats(patterns: list[np.ndarray]) -> dict:
    hits = np.concatenate(patterns)
    bars = hits.shape[0] / 16
    pos = np.concatenate([np.arange(len(p)) % 16 for p in patterns])
    onsets = hits.sum()
    return {
        "onsets_per_bar": {c: round(float(hits[:, i].sum() / bars), 2) for i, c in enumerate(_classes())},
        "syncopation": round(float(hits[pos % 2 == 1].sum() / max(onsets, 1)), 3),
        "bars": int(bars),
    }


def _classes() -> tuple[str, ...]:
    from models.drums import DRUM_CLASSES

    return DRUM_CLASSES


def drum_statistics(*, groove: Path, cache: str | None, bars: int = 8) -> dict:
    """Onset density per class and syncopation of generated drums vs the Groove test split."""
    from core import loaders
    from models import drums
    from models.data_groove import load_groove

    test = load_groove(groove, cache_dir=cache)["test"]
    model = loaders.load_drums()
    real = [test.sequence(i)[0] for i in range(len(test.lengths))]
    styles = list(model.meta.get("styles", drums.STYLES))
    gen = []
    for i, style in enumerate(test.style):
        s = style if style in styles else "rock"
        gen.append(drums.sample(model, bars=bars, style=s, seed=i).hits)
    return {"groove_test": _drum_stats(real), "generated": _drum_stats(gen)}


def _triad_in_key(root: int, quality: str, tonic: int, mode: str) -> bool:
    from models.common import QUALITY_INTERVALS
    from models.melody import key_scale

    scale = key_scale(tonic, mode)
    return all((root + i) % 12 in scale for i in QUALITY_INTERVALS[quality][:3])


def music_statistics(*, pop909: Path | None, cache: str | None, seeds: int = 4) -> dict:
    """Musical checks of generated parts, next to the same measures on the POP909 test songs.

    ``diatonic_chords``: share of chords whose triad lies in the key (minor: natural minor + leading
    tone); ``melody_in_scale``: share of melody notes in the scale (:func:`models.melody.in_scale_ratio`);
    ``bass_chord_tones_strong_beats``: share of bass notes on beats 1 and 3 that are the chord's root, third
    or fifth. Generated: progressions from the harmony model in 6 keys x 2 modes x 4 moods x ``seeds``
    (8 bars, one chord per bar), with a melody and a bass line sampled over each.
    """
    from core import loaders
    from models import bass, harmony, melody
    from models.common import QUALITIES, Chord, chord_tones, parse_chord, parse_key

    h, b, m = loaders.load_harmony(), loaders.load_bass(), loaders.load_melody()
    diatonic, in_scale, tones = [], [], []
    for key in ("C", "D", "Eb", "F#", "A", "Bb"):
        for mode in ("major", "minor"):
            tonic, _ = parse_key(key, mode)
            for mood in harmony.MOODS:
                for seed in range(seeds):
                    labels = harmony.sample(h, key=key, mode=mode, mood=mood, bars=8, seed=seed)
                    chords = [parse_chord(lbl) for lbl in labels]
                    diatonic += [_triad_in_key(c.root, c.quality, tonic, mode) for c in chords]
                    spans = [(4.0 * i, 4.0 * i + 4.0, lbl) for i, lbl in enumerate(labels)]
                    notes = melody.sample(m, key=key, mode=mode, chords=spans, beats=32, seed=seed)
                    in_scale.append(melody.in_scale_ratio(notes, key=key, mode=mode))
                    for n in bass.sample(b, chords=spans, steps_per_beat=4, beats=32, seed=seed):
                        if n.start_beat % 2 == 0:
                            tones.append(n.pitch % 12 in chord_tones(chords[int(n.start_beat // 4)])[:3])
    out = {
        "generated": {
            "diatonic_chords": round(float(np.mean(diatonic)), 3),
            "melody_in_scale": round(float(np.mean(in_scale)), 3),
            "bass_chord_tones_strong_beats": round(float(np.mean(tones)), 3),
        }
    }
    if pop909 is not None and pop909.exists():
        from models.data_pop909 import load_pop909
        from models.melody import key_scale

        a = load_pop909(pop909, cache_dir=cache)["test"].arrays
        mode_of = np.where(a["minor"], "minor", "major")
        mel = np.flatnonzero(a["mel_on"] >= 0)
        mel_ok = [a["mel_on"][k] % 12 in key_scale(int(a["tonic"][k]), mode_of[k]) for k in mel]
        ch = np.flatnonzero((a["pos"] % 8 == 0) & (a["root"] >= 0))
        ch_ok = [
            _triad_in_key(int(a["root"][k]), QUALITIES[a["quality"][k]], int(a["tonic"][k]), mode_of[k])
            for k in ch
        ]
        bs = np.flatnonzero((a["bass_on"] >= 0) & (a["pos"] % 8 == 0) & (a["root"] >= 0))
        bs_ok = [
            a["bass_on"][k] % 12 in chord_tones(Chord(int(a["root"][k]), QUALITIES[a["quality"][k]]))[:3]
            for k in bs
        ]
        out["pop909_test"] = {
            "diatonic_chords": round(float(np.mean(ch_ok)), 3),
            "melody_in_scale": round(float(np.mean(mel_ok)), 3),
            "bass_chord_tones_strong_beats": round(float(np.mean(bs_ok)), 3),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--recompute", action="store_true", help="recompute NLLs from checkpoints and data")
    p.add_argument("--groove", default=str(ROOT.parent / "shared" / "data" / "groove"))
    p.add_argument("--pop909", default=str(ROOT.parent / "shared" / "data" / "pop909"))
    p.add_argument("--cache", default=None, help="cache folder for parsed data sets")
    p.add_argument("--no-drum-stats", action="store_true", help="skip the drum statistics (needs the data)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    report = {
        "nll": nll_table(
            recompute=args.recompute, groove=Path(args.groove), pop909=Path(args.pop909), cache=args.cache
        ),
        "sampling_60s_of_music": sampling_speed(),
    }
    if not args.no_drum_stats and Path(args.groove).exists():
        report["drum_statistics"] = drum_statistics(groove=Path(args.groove), cache=args.cache)
    report["music_statistics"] = music_statistics(pop909=Path(args.pop909), cache=args.cache)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print("Held-out NLL (lower is better)")
    for kind, r in report["nll"].items():
        base = ", ".join(f"{k.removesuffix('_bits')} {v:.3f}" for k, v in r["baselines"].items())
        extra = f" (with tap {r['model_with_tap']:.3f})" if "model_with_tap" in r else ""
        model = f"{r['model']:.3f}" if r["model"] is not None else "n/a"
        print(f"  {kind:8s} model {model}{extra} | baselines: {base}")
        print(f"           [{r['units']}]")
    print("Sampling time for 60 s of music (120 bpm, 30 bars), median of 5, 1 thread")
    for k, v in report["sampling_60s_of_music"].items():
        print(f"  {k.removesuffix('_s'):8s} {v * 1000:.1f} ms")
    if "drum_statistics" in report:
        ds = report["drum_statistics"]
        print("Drum statistics: onsets per bar by class; syncopation = share of onsets on off-beat 16ths")
        for name, st in ds.items():
            dens = " ".join(f"{c}={v}" for c, v in st["onsets_per_bar"].items())
            print(f"  {name:11s} ({st['bars']} bars) syncopation {st['syncopation']:.3f} | {dens}")
    print(
        "Music statistics (share): diatonic chords, melody notes in scale, bass chord tones on beats 1 and 3"
    )
    for name, st in report["music_statistics"].items():
        print(f"  {name:11s} " + "  ".join(f"{k} {v:.3f}" for k, v in st.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
