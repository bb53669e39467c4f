"""Album factory benchmark: speed, title novelty, relevance and cover diversity.

Usage::

    python -m bench.album [--data ../shared/data/spotify_songs/spotify_songs.csv] [--albums 20]

Prints:

* time for one 1024x1024 cover + 12 titles, cold (fresh process: imports, model load) and warm;
* title novelty: share of generated titles not in the training data (the shipped hashed set, and the
  full CSV when ``--data`` exists) and the mean nearest-neighbour character-trigram cosine similarity
  of each generated title to the training titles;
* relevance: titles generated for an album vs titles generated for a different album, both scored
  against the album name with :func:`core.album.relevance` (title track excluded, so the score is about
  the generated titles): both means and the share of albums where own > other;
* cover diversity: mean pairwise perceptual distance (CIE Lab, ΔE76 on 32x32 thumbnails) across seeds.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ALBUMS = [
    "Neon Skyline",
    "Paper Lanterns",
    "Concrete Garden",
    "Fuego Lento",
    "Midnight Static",
    "Velvet Thunder",
    "Salt and Honey",
    "Glass Ocean",
    "Broken Compass",
    "Summer Ghosts",
    "Electric Orchard",
    "Silver Rain",
    "Wild Hearts Club",
    "Cold Fire",
    "Golden Hour Radio",
    "Dark Matter Love",
    "Sunday Riot",
    "Blue Cathedral",
    "Last Train Home",
    "Diamond Dust",
]
GENRES = ["edm", "pop", "rap", "latin", "rock", "r&b"]

COLD = """
import time, json
t0 = time.perf_counter()
import torch
torch.set_num_threads(1)
from core.album import generate_titles, make_cover
titles = generate_titles(album="Neon Skyline", artist="Mira Vale", genre="edm", seed=1)
cover = make_cover(album="Neon Skyline", artist="Mira Vale", genre="edm", seed=1)
print(json.dumps({"s": time.perf_counter() - t0, "cpu": time.process_time(), "n": len(titles)}))
"""


def _lab(rgb: np.ndarray) -> np.ndarray:
    c = rgb.astype(np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def _thumb_lab(png: bytes) -> np.ndarray:
    from PIL import Image

    return _lab(np.asarray(Image.open(io.BytesIO(png)).convert("RGB").resize((32, 32), Image.Resampling.BOX)))


def _mean_pairwise(labs: list[np.ndarray]) -> float:
    d = [
        float(np.linalg.norm(labs[i] - labs[j], axis=-1).mean())
        for i in range(len(labs))
        for j in range(i + 1, len(labs))
    ]
    return statistics.fmean(d)


def _trigram_matrix(titles: list[str], dim: int = 1 << 18):
    import zlib

    from scipy import sparse

    from core.album import _trigrams

    rows, cols, vals = [], [], []
    for r, t in enumerate(titles):
        for g, c in _trigrams(t).items():
            rows.append(r)
            cols.append(zlib.crc32(g.encode()) % dim)
            vals.append(float(c))
    m = sparse.csr_matrix((vals, (rows, cols)), shape=(len(titles), dim))
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel()) + 1e-12
    return sparse.diags(1 / norms) @ m


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    ap = argparse.ArgumentParser(description="Album factory benchmark")
    ap.add_argument("--data", type=Path, default=Path("../shared/data/spotify_songs/spotify_songs.csv"))
    ap.add_argument("--albums", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from core.album import (
        generate_title_set,
        is_known_title,
        load_title_assets,
        load_title_model,
        make_cover,
        normalize_title,
        relevance,
    )

    print(f"album factory benchmark  (torch threads 1, {len(ALBUMS[: args.albums])} albums)")
    # --- speed ---
    out = subprocess.run([sys.executable, "-c", COLD], capture_output=True, text=True, check=True)
    cold_info = json.loads(out.stdout.strip().splitlines()[-1])
    model, assets = load_title_model(), load_title_assets()
    generate_title_set(album="Warm Up", genre="pop", seed=0, model=model, assets=assets)
    make_cover(album="Warm Up", seed=0)
    warm, t_cov, t_tit, cpu = [], [], [], []
    for i in range(args.repeats):
        c0 = time.process_time()
        t0 = time.perf_counter()
        make_cover(album=ALBUMS[i], artist="Mira Vale", genre=GENRES[i % 6], seed=i)
        t1 = time.perf_counter()
        generate_title_set(
            album=ALBUMS[i], artist="Mira Vale", genre=GENRES[i % 6], seed=i, model=model, assets=assets
        )
        t2 = time.perf_counter()
        warm.append(t2 - t0)
        cpu.append(time.process_time() - c0)
        t_cov.append(t1 - t0)
        t_tit.append(t2 - t1)
    load = os.getloadavg()[0]
    print(
        f"machine: {os.cpu_count()} cores, 1-min load average {load:.1f} "
        "(wall times include waiting for a core)"
    )
    print(
        f"time, cover 1024x1024 + 12 titles: cold {cold_info['s']:.2f} s wall, {cold_info['cpu']:.2f} s CPU "
        "(fresh process incl. torch import + model load)"
    )
    print(
        f"time, cover 1024x1024 + 12 titles: warm median {statistics.median(warm):.2f} s wall "
        f"(cover {statistics.median(t_cov):.2f} s, titles {statistics.median(t_tit):.2f} s), "
        f"{statistics.median(cpu):.2f} s CPU; target <= 3 s"
    )

    # --- titles for every album ---
    albums = ALBUMS[: args.albums]
    sets = {}
    for i, a in enumerate(albums):
        sets[a] = generate_title_set(
            album=a, artist="Mira Vale", genre=GENRES[i % 6], seed=i, model=model, assets=assets
        )
    generated = [t for ts in sets.values() for j, t in enumerate(ts.titles) if j != ts.title_track_index]
    shipped_new = np.mean([not is_known_title(t, assets.known) for t in generated])
    print(f"titles generated: {len(generated)} (title tracks excluded)")
    print(f"novelty vs shipped hashed set: {shipped_new * 100:.1f}% new")
    if args.data.is_file():
        from models.titles import clean_title

        with open(args.data, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        known = {normalize_title(n) for r in rows for n in (r["track_name"], clean_title(r["track_name"]))}
        csv_new = np.mean([normalize_title(t) not in known for t in generated])
        train_titles = sorted({clean_title(r["track_name"]) for r in rows})
        sims = (_trigram_matrix(generated) @ _trigram_matrix(train_titles).T).max(axis=1).toarray().ravel()
        print(f"novelty vs full training CSV: {csv_new * 100:.1f}% new")
        print(
            f"nearest training title, char-trigram cosine: mean {sims.mean():.3f}, "
            f"median {np.median(sims):.3f}, "
            f"share >= 0.9: {(sims >= 0.9).mean() * 100:.1f}%"
        )
    else:
        print(f"(training CSV not found at {args.data}: full-data novelty skipped)")

    # --- relevance ---
    own_s, other_s, wins = [], [], 0
    for i, a in enumerate(albums):
        other = albums[(i + 1) % len(albums)]
        mine = [t for j, t in enumerate(sets[a].titles) if j != sets[a].title_track_index]
        theirs = [t for j, t in enumerate(sets[other].titles) if j != sets[other].title_track_index]
        o = statistics.fmean(relevance(t, album=a) for t in mine)
        x = statistics.fmean(relevance(t, album=a) for t in theirs)
        own_s.append(o)
        other_s.append(x)
        wins += o > x
    print(
        f"relevance to album name: own titles {statistics.fmean(own_s):.3f} vs another album's titles "
        f"{statistics.fmean(other_s):.3f}; own > other for {wins}/{len(albums)} albums"
    )
    echo = statistics.fmean(
        sum(bool(set(normalize_title(t).split()) & set(normalize_title(a).split())) for t in sets[a].titles)
        / len(sets[a].titles)
        for a in albums
    )
    print(f"share of titles sharing a word with the album name (incl. title track): {echo * 100:.1f}%")
    for a in albums[:3]:
        print(f"  {a}: " + " | ".join(sets[a].titles))

    # --- cover diversity ---
    per_album = []
    for a in albums[:5]:
        labs = [_thumb_lab(make_cover(album=a, artist="Mira Vale", seed=s).png) for s in range(6)]
        per_album.append(_mean_pairwise(labs))
    per_style = {}
    from core.album import STYLES

    for st_name in STYLES:
        labs = [
            _thumb_lab(make_cover(album="Neon Skyline", artist="Mira", style=st_name, seed=s).png)
            for s in range(4)
        ]
        per_style[st_name] = _mean_pairwise(labs)
    print(
        "cover diversity across seeds (mean pairwise ΔE76, 32x32 Lab): "
        f"auto style {statistics.fmean(per_album):.1f}; "
        + ", ".join(f"{k} {v:.1f}" for k, v in per_style.items())
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
