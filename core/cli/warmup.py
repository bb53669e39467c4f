"""``python -m core warmup [--json]``: compile the app's numba code once, e.g. after installing.

Runs :func:`core.warmup.warm_up` (the synthesiser and the analysis on a made-up 8-second song), so the
compiled code is cached on disk before the first user needs it: on a fresh install this takes about
35 s, afterwards 1-4 s. The app also starts it by itself in the background after its first page. With
``--json`` prints ``{"render_s", "analysis_s", "tempo_bpm"}`` (the made-up song is at 120 BPM).
"""

from __future__ import annotations

import argparse
import json


def register(sub) -> None:
    """Add the ``warmup`` subcommand."""
    p = sub.add_parser("warmup", help="compile the synthesiser and the analysis ahead of the first user")
    p.add_argument("--json", action="store_true", help="print the seconds each step took as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Warm up; print the timings."""
    from core.warmup import warm_up

    took = warm_up()
    if args.json:
        print(json.dumps({k: None if v is None else round(v, 3) for k, v in took.items()}))
    else:
        print(f"compiled: synthesiser {took['render_s']:.1f} s, analysis {took['analysis_s']:.1f} s")
    return 0
