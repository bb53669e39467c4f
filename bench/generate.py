"""Benchmark and quality evaluation of song generation (``python -m bench.generate``).

Prints:

1. compute time of a 60 s four-stem song (drums, bass, keys, lead), median of 3 warm runs, wall and CPU
   seconds (this process, every thread: the synthesiser renders the stems in threads) and the wall time
   of each stage (target: <= 1 s on 2 cores);
2. the rendering realtime factor (seconds of audio per second of compute), one stem alone and four
   stems in parallel threads;
3. each trained model's held-out negative log-likelihood against its baselines and
4. drum statistics of patterns sampled from the drum model vs the Groove test split (onsets per bar of
   each class; syncopation = share of onsets on off-beat 16ths) -- both computed by the model
   evaluation helpers in :mod:`bench.models_eval` (imported, not duplicated);
5. with ``--long``: the longest song allowed (10 minutes, the same four stems) made in a fresh process,
   its time and the process's peak memory (RSS; target <= 1.5 GB per job).

Usage::

    python -m bench.generate [--groove ../shared/data/groove] [--repeats 3] [--long] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _cpu() -> float:
    """CPU seconds of this process, all its threads (the synthesiser's included)."""
    a = resource.getrusage(resource.RUSAGE_SELF)
    return a.ru_utime + a.ru_stime


def timing(samplers, repeats: int) -> dict:
    """Median wall/CPU time of a 60 s four-stem song and its stage breakdown."""
    from core.music.generate import generate_song

    args = dict(
        genre="pop", mood="happy", tempo=120, key="A minor", instruments="drums,bass,keys,lead", seed=1
    )
    # warm-up with a song of the measured size: imports, first-call setup, and the allocator's first
    # growth to 60 s arrays (a running app has made songs before); its time is printed as 'first'
    t0 = time.perf_counter()
    generate_song(seconds=60, samplers=samplers, **args)
    first = time.perf_counter() - t0
    walls, cpus, stages = [], [], []
    for _ in range(repeats):
        c0, t0 = _cpu(), time.perf_counter()
        song = generate_song(seconds=60, samplers=samplers, **args)
        walls.append(time.perf_counter() - t0)
        cpus.append(_cpu() - c0)
        stages.append(song.timings)
    i = walls.index(statistics.median(walls))
    return {
        "wall_s": round(walls[i], 3),
        "first_wall_s": round(first, 3),
        "cpu_s": round(cpus[i], 3),
        "all_wall_s": [round(w, 3) for w in walls],
        "stages_s": {k: round(v, 3) for k, v in stages[i].items()},
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "cores": os.cpu_count(),
    }


def render_speed(samplers) -> dict:
    """Realtime factor of rendering: one 60 s stem alone and four 60 s stems in parallel threads."""
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


_LONG_SONG = """
import resource, sys, time
from core.music.generate import generate_song
t0 = time.perf_counter()
song = generate_song(genre="pop", mood="happy", tempo=120, key="A minor", instruments="drums,bass,keys,lead",
                     seconds=float(sys.argv[1]), seed=1)
t1 = time.perf_counter()
arrays = sum(a.nbytes for a in song.stems.values()) + song.mix.nbytes
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{t1 - t0:.2f} {peak:.0f} {arrays / 2**20:.0f}")
"""


def long_song() -> dict:
    """The longest song allowed, made in a fresh process (models loaded on the way): wall time, peak RSS
    and the size of the song's own arrays (the mix and the stems), in MB."""
    from core.config import get_settings

    seconds = float(get_settings().max_duration_s)
    out = subprocess.run(
        [sys.executable, "-c", _LONG_SONG, str(seconds)], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    wall, peak, arrays = (float(v) for v in out[-3:])
    return {"seconds": seconds, "wall_s": wall, "peak_mb": peak, "song_arrays_mb": arrays}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--groove", default=str(ROOT.parent / "shared" / "data" / "groove"))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--long", action="store_true", help="also make a 10-minute song in a fresh process")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    args = p.parse_args(argv)

    from core.music.arrange import load_samplers

    t0 = time.perf_counter()
    samplers = load_samplers()
    load_s = time.perf_counter() - t0
    report = {"model_load_s": round(load_s, 3)}
    report["song_60s_4_stems"] = timing(samplers, args.repeats)
    report["rendering"] = render_speed(samplers)
    from bench.models_eval import drum_statistics, nll_table

    groove = Path(args.groove)
    report["models_nll"] = nll_table(
        recompute=False, groove=groove, pop909=groove.parent / "pop909", cache=None
    )
    if (groove / "info.csv").exists():
        report["drums"] = drum_statistics(groove=groove, cache=None)
    if args.long:
        report["long_song"] = long_song()
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    t = report["song_60s_4_stems"]
    print(f"models loaded in {report['model_load_s']} s (once per process; cached by the app)")
    print(
        f"60 s song, 4 stems (drums, bass, keys, lead): {t['wall_s']} s wall (median of {args.repeats}: "
        f"{t['all_wall_s']}), {t['cpu_s']} s CPU (all threads); {t['cores']} cores, "
        f"load average {t['load_avg_1min']}"
    )
    print(f"  first 60 s song of the process (the warm-up, models loaded): {t['first_wall_s']} s")
    print(f"  stages (wall s, rendering overlaps 'arrange'): {t['stages_s']}")
    r = report["rendering"]
    print(
        f"rendering: {r['one_stem_x_realtime']}x realtime for one stem alone, "
        f"{r['four_stems_parallel_x_realtime']}x realtime for four stems in parallel threads"
    )
    print("held-out NLL (bits) vs baselines, from models/results/*.json:")
    for name, res in report["models_nll"].items():
        m = res.get("model")
        shown = f"{m:.3f}" if isinstance(m, float) else str(m)
        print(f"  {name:8s} model {shown} {res.get('units', '')}  baselines {res.get('baselines')}")
    if "drums" in report:
        print("drum statistics (onsets per bar by class; syncopation = share of onsets on off-beat 16ths):")
        for who, st in report["drums"].items():
            print(f"  {who:11s} bars={st['bars']:5d} syncopation={st['syncopation']} {st['onsets_per_bar']}")
    if "long_song" in report:
        lg = report["long_song"]
        print(
            f"longest song allowed ({lg['seconds']:.0f} s, 4 stems), fresh process: {lg['wall_s']:.1f} s; "
            f"peak memory {lg['peak_mb']:.0f} MB (target <= 1536 MB), of which the song's own arrays "
            f"(mix and stems) {lg['song_arrays_mb']:.0f} MB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
