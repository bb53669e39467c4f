"""Benchmark and quality evaluation of song generation (``python -m bench.generate``).

Prints:

1. compute time of a 60 s four-stem song (drums, bass, keys, lead), median of 3 warm runs, wall and CPU
   seconds (this process + the rendering helper processes), the share spent rendering and the other
   stages (target: <= 1 s on 2 cores);
2. the rendering realtime factor (seconds of audio per second of compute), one stem in-process and four
   stems in parallel helper processes;
3. each trained model's held-out negative log-likelihood against its baselines (from
   ``models/results/*.json``, written by the training script);
4. drum statistics of patterns sampled from the drum model vs the Groove test split: onsets per bar of
   each class, share of onsets off the 8th-note grid, and a syncopation score (Longuet-Higgins & Lee
   metrical weights on the kick+snare rhythm, per bar).

Usage::

    python -m bench.generate [--groove ../shared/data/groove] [--repeats 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: Longuet-Higgins & Lee metrical weights of the 16 steps of a 4/4 bar.
LHL = np.array([0, -4, -3, -4, -2, -4, -3, -4, -1, -4, -3, -4, -2, -4, -3, -4])


def _cpu() -> tuple[float, float]:
    """CPU seconds of this process and of its finished children (the rendering helpers)."""
    a = resource.getrusage(resource.RUSAGE_SELF)
    b = resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime, b.ru_utime + b.ru_stime


def timing(samplers, repeats: int) -> dict:
    """Median wall/CPU time of a 60 s four-stem song and its stage breakdown."""
    from core.music.generate import generate_song

    args = dict(
        genre="pop", mood="happy", tempo=120, key="A minor", instruments="drums,bass,keys,lead", seed=1
    )
    generate_song(seconds=10, samplers=samplers, **args)  # warm-up: imports, first-call setup
    walls, cpus, render_cpus, stages = [], [], [], []
    for _ in range(repeats):
        (s0, c0), t0 = _cpu(), time.perf_counter()
        song = generate_song(seconds=60, samplers=samplers, **args)
        walls.append(time.perf_counter() - t0)
        s1, c1 = _cpu()
        cpus.append((s1 - s0) + (c1 - c0))
        render_cpus.append(c1 - c0)
        stages.append(song.timings)
    i = walls.index(statistics.median(walls))
    return {
        "wall_s": round(walls[i], 3),
        "cpu_s": round(cpus[i], 3),
        "render_cpu_s": round(render_cpus[i], 3),
        "main_cpu_s": round(cpus[i] - render_cpus[i], 3),
        "all_wall_s": [round(w, 3) for w in walls],
        "stages_s": {k: round(v, 3) for k, v in stages[i].items()},
        "render_share": round(render_cpus[i] / cpus[i], 3),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "cores": os.cpu_count(),
    }


def render_speed(samplers) -> dict:
    """Realtime factor of rendering: one 60 s stem in-process and four 60 s stems in parallel."""
    from core.music.arrange import arrange
    from core.music.instruments import get_genre, get_mood
    from core.music.plan import plan_song
    from core.music.render import render_parts
    from core.music.theory import parse_key

    plan = plan_song(seconds=60, bpm=120)
    arr = arrange(
        plan=plan,
        key=parse_key("A minor"),
        genre=get_genre("pop"),
        mood=get_mood("happy"),
        roles=("drums", "bass", "keys", "lead"),
        seed=1,
        samplers=samplers,
    )
    kw = dict(bpm=120.0, end_beat=plan.end_beat, seconds=60.0)
    render_parts({"keys": arr.parts["keys"]}, workers=1, **kw)  # warm
    t0 = time.perf_counter()
    render_parts({"keys": arr.parts["keys"]}, workers=1, **kw)
    one = time.perf_counter() - t0
    t0 = time.perf_counter()
    render_parts(arr.parts, **kw)
    four = time.perf_counter() - t0
    return {
        "one_stem_x_realtime": round(60 / one, 1),
        "four_stems_parallel_x_realtime": round(4 * 60 / four, 1),
    }


def model_results() -> dict:
    """Held-out NLL and baselines of each model, as recorded by its training run."""
    out = {}
    for name in ("drums", "bass", "harmony", "melody"):
        path = ROOT / "models" / "results" / f"{name}.json"
        if not path.exists():
            out[name] = {"test": "no results file", "baselines": None}
            continue
        data = json.loads(path.read_text())
        out[name] = {k: data[k] for k in ("test", "baselines", "parameters") if k in data}
    return out


def _rhythm_stats(hits: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> dict:
    """Onsets per bar per class, off-8th share and LHL syncopation per bar of whole-bar pieces."""
    from models.drums import DRUM_CLASSES

    bars_total, per_class, off8, onsets, sync = 0, np.zeros(hits.shape[1]), 0, 0, []
    for s, n in zip(starts, lengths, strict=True):
        nb = int(n) // 16
        if nb == 0:
            continue
        h = hits[s : s + nb * 16]
        bars_total += nb
        per_class += h.sum(axis=0)
        any_on = h.any(axis=1)
        steps = np.nonzero(any_on)[0]
        onsets += steps.size
        off8 += int(np.sum(steps % 2 == 1))
        ks = h[:, 0] | h[:, 1]  # kick + snare rhythm
        for b in range(nb):
            bar = ks[b * 16 : (b + 1) * 16]
            score = 0
            on = np.nonzero(bar)[0]
            for j, i in enumerate(on):
                nxt = on[j + 1] if j + 1 < on.size else 16 + (on[0] if on.size else 0)
                rest = [p % 16 for p in range(i + 1, nxt)]
                if rest:
                    strongest = max(LHL[r] for r in rest)
                    if strongest > LHL[i]:
                        score += int(strongest - LHL[i])
            sync.append(score)
    return {
        "bars": bars_total,
        "onsets_per_bar": {
            c: round(float(v / max(1, bars_total)), 3) for c, v in zip(DRUM_CLASSES, per_class, strict=True)
        },
        "off_8th_share": round(off8 / max(1, onsets), 3),
        "syncopation_per_bar": round(float(np.mean(sync)) if sync else 0.0, 3),
    }


def drum_stats(samplers, groove: Path, *, max_pieces: int = 120) -> dict:
    """Drum statistics of model samples (same styles and lengths as the test pieces) vs the test split."""
    from models.data_groove import load_groove

    test = load_groove(groove)["test"]
    styles = [str(s) for s in getattr(test, "style", [])]
    real = _rhythm_stats(test.hits.astype(bool), test.starts, test.lengths)
    gen_hits, gen_starts, gen_lengths, pos = [], [], [], 0
    known = set(samplers.drum_styles) if samplers.drum_styles else None
    for i, n in enumerate(test.lengths[:max_pieces]):
        bars = int(min(32, max(1, int(n) // 16)))
        style = styles[i] if i < len(styles) else "rock"
        if known is not None and style not in known:
            style = "rock"
        pat = samplers.drums(bars=bars, style=style, seed=i, temperature=1.0, density=1.0)
        gen_hits.append(np.asarray(pat.hits, bool))
        gen_starts.append(pos)
        gen_lengths.append(bars * 16)
        pos += bars * 16
    gen = _rhythm_stats(np.concatenate(gen_hits), np.array(gen_starts), np.array(gen_lengths))
    return {"groove_test": real, "model": gen}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--groove", default=str(ROOT.parent / "shared" / "data" / "groove"))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    args = p.parse_args(argv)

    from core.music.arrange import load_samplers

    t0 = time.perf_counter()
    samplers = load_samplers()
    load_s = time.perf_counter() - t0
    report = {"model_load_s": round(load_s, 3)}
    report["song_60s_4_stems"] = timing(samplers, args.repeats)
    report["rendering"] = render_speed(samplers)
    report["models_nll"] = model_results()
    groove = Path(args.groove)
    if (groove / "info.csv").exists():
        report["drums"] = drum_stats(samplers, groove)
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    t = report["song_60s_4_stems"]
    print(f"models loaded in {report['model_load_s']} s (once per process; cached by the app)")
    print(
        f"60 s song, 4 stems (drums, bass, keys, lead): {t['wall_s']} s wall (median of {args.repeats}: "
        f"{t['all_wall_s']}), {t['cpu_s']} s CPU ({t['main_cpu_s']} s in this process, {t['render_cpu_s']} s "
        f"in render helpers); {t['cores']} cores, load average {t['load_avg_1min']}"
    )
    print(
        f"  rendering = {t['render_share'] * 100:.0f}% of the compute; "
        f"stages (wall s, rendering overlaps 'arrange'): {t['stages_s']}"
    )
    r = report["rendering"]
    print(
        f"rendering: {r['one_stem_x_realtime']}x realtime for one stem in-process, "
        f"{r['four_stems_parallel_x_realtime']}x realtime for four stems in parallel helpers"
    )
    print("held-out NLL vs baselines (models/results/*.json):")
    for name, res in report["models_nll"].items():
        print(f"  {name}: test {res.get('test')}  baselines {res.get('baselines')}")
    if "drums" in report:
        d = report["drums"]
        print(
            "drum statistics (onsets per bar per class; off-8th share; kick+snare LHL syncopation per bar):"
        )
        for who in ("groove_test", "model"):
            s = d[who]
            print(
                f"  {who:11s} bars={s['bars']:5d} {s['onsets_per_bar']} off8={s['off_8th_share']} "
                f"sync={s['syncopation_per_bar']}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
