"""Train the tempo-octave chooser of :mod:`core.audio.analysis` and write its held-out evaluation.

Reproduce the committed chooser (renders and analyses ~460 POP909 songs once, ~6 s each on one busy
core, cached under ``--cache``; the fit itself takes a second)::

    python -m models.train_tempo --data ../shared/data/pop909 --out models/checkpoints/tempo_octave.json

The analysis finds a beat period with a metrical comb over the onset autocorrelation; which *level* of
the hierarchy is the beat (62 or 124 BPM?) is the hard part. For every song the comb's choice gives
candidates at half, the same and double the tempo (:func:`core.audio.analysis._octave_candidates`), each
described by :data:`core.audio.analysis.OCTAVE_FEATURES` (learned tempo prior, comb salience, onset
autocorrelation at 1/2..4 beats, chord changes per beat, onsets per beat). A conditional logit (one
linear score per candidate, softmax over a song's candidates, L2-regularised) is fitted on the train
split (songs 001-727, every ``--train-every``-th), its regularisation chosen by the log loss on the
validation split (728-818), and it is evaluated once on the test split (819-909). A candidate is
correct when it is within 4 % of the annotated tempo (60 / median inter-beat interval of ``beat_midi.txt``).

POP909 has a second beat annotation, ``beat_audio.txt``, made on the original recordings; for about a
quarter of the songs it runs at twice (a few: half, 2/3) the tempo of ``beat_midi.txt``. The results
count, per split, the songs whose two annotations differ and the chooser's misses that agree with
``beat_audio.txt``: the metrical level of those songs is ambiguous in the data set itself.

The chooser is a JSON file (features, standardisation, weights; no pickle), read by
:func:`core.audio.analysis.load_tempo_chooser`. Results: ``models/results/tempo_octave.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from models.common import CHECKPOINT_DIR, RESULTS_DIR
from models.tempo_data import DEFAULT_CACHE, load_song, soundfont_bytes, split_songs, true_tempo

TOLERANCE = 0.04
L2_GRID = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def song_candidates(rep: dict[str, np.ndarray], ratios: tuple[float, ...] | None = None) -> dict:
    """Candidates, features, comb tempo, true tempo and the index of the correct candidate (-1: none)."""
    from core.audio.analysis import OCTAVE_RATIOS, _octave_candidates

    cands, feats, comb = _octave_candidates(
        rep["env"], rep["chroma"], rep["bass"], OCTAVE_RATIOS if ratios is None else ratios
    )
    truth = true_tempo(rep["beats"])
    err = np.abs(cands / truth - 1.0)
    label = int(np.argmin(err)) if cands.size and float(err.min()) <= TOLERANCE else -1
    return {"cands": cands, "feats": feats, "comb": comb, "truth": truth, "label": label}


def audio_annotation_tempo(folder: Path) -> float | None:
    """Tempo of POP909's other beat annotation, ``beat_audio.txt`` (made on the original recording)."""
    path = Path(folder) / "beat_audio.txt"
    if not path.is_file():
        return None
    beats = np.loadtxt(path, ndmin=2)[:, 0]
    return true_tempo(beats) if beats.size > 2 else None


def load_split(data: Path, split: str, *, every: int, cache: Path, sf2: bytes) -> list[dict]:
    folders = split_songs(data, split, every=every)
    out, t0 = [], time.perf_counter()
    for i, folder in enumerate(folders):
        item = song_candidates(load_song(folder, cache=cache, sf2=sf2))
        item["song"] = folder.name
        item["audio_tempo"] = audio_annotation_tempo(folder)
        out.append(item)
        if (i + 1) % 20 == 0 or i + 1 == len(folders):
            _log(f"{split}: {i + 1}/{len(folders)} songs ({time.perf_counter() - t0:.0f} s)")
    return out


def fit(songs: list[dict], *, l2: float) -> dict:
    """Fit the conditional logit on the songs that have a correct candidate; returns mean/scale/weights."""
    from scipy.optimize import minimize

    usable = [s for s in songs if s["label"] >= 0 and len(s["cands"]) > 1]
    stacked = np.concatenate([s["feats"] for s in usable])
    mean = stacked.mean(axis=0)
    scale = stacked.std(axis=0)
    scale[scale < 1e-9] = 1.0
    xs = [(s["feats"] - mean) / scale for s in usable]
    labels = [s["label"] for s in usable]
    d = stacked.shape[1]

    def loss(w):
        total, grad = 0.0, np.zeros(d)
        for x, y in zip(xs, labels, strict=True):
            z = x @ w
            z = z - z.max()
            p = np.exp(z) / np.exp(z).sum()
            total -= math.log(max(p[y], 1e-300))
            grad += x.T @ p - x[y]
        n = len(xs)
        return total / n + 0.5 * l2 * float(w @ w) / n, grad / n + l2 * w / n

    res = minimize(loss, np.zeros(d), jac=True, method="L-BFGS-B")
    return {"mean": mean, "scale": scale, "weights": res.x, "train_loss": float(res.fun), "songs": len(xs)}


def choose(model: dict, item: dict) -> float:
    """Tempo of the candidate the fitted model scores highest."""
    s = ((item["feats"] - model["mean"]) / model["scale"]) @ model["weights"]
    return float(item["cands"][int(np.argmax(s))])


def _ok(tempo: float, truth: float) -> bool:
    return abs(tempo / truth - 1.0) <= TOLERANCE


def _octave_ok(tempo: float, truth: float) -> bool:
    return any(abs(tempo / (truth * r) - 1.0) <= TOLERANCE for r in (0.5, 1.0, 2.0, 1 / 3, 3.0))


def log_loss(model: dict, songs: list[dict]) -> float:
    """Mean negative log probability of the correct candidate (songs that have one)."""
    losses = []
    for s in songs:
        if s["label"] < 0:
            continue
        z = ((s["feats"] - model["mean"]) / model["scale"]) @ model["weights"]
        z = z - z.max()
        losses.append(-(z[s["label"]] - math.log(np.exp(z).sum())))
    return float(np.mean(losses)) if losses else float("nan")


def evaluate(model: dict | None, songs: list[dict]) -> dict:
    """Accuracy (within 4 %) of the chooser and of the comb alone, octave-tolerant accuracy, oracle."""
    chosen = [choose(model, s) if model is not None else s["comb"] for s in songs]
    return {
        "songs": len(songs),
        "log_loss": log_loss(model, songs) if model is not None else None,
        "accuracy": float(np.mean([_ok(t, s["truth"]) for t, s in zip(chosen, songs, strict=True)])),
        "accuracy_octave_errors_allowed": float(
            np.mean([_octave_ok(t, s["truth"]) for t, s in zip(chosen, songs, strict=True)])
        ),
        "comb_accuracy": float(np.mean([_ok(s["comb"], s["truth"]) for s in songs])),
        "oracle_accuracy": float(np.mean([s["label"] >= 0 for s in songs])),
        "misses": [
            {
                "song": s["song"],
                "truth": round(s["truth"], 2),
                "chosen": round(t, 2),
                "beat_audio_tempo": None if s.get("audio_tempo") is None else round(s["audio_tempo"], 2),
            }
            for t, s in zip(chosen, songs, strict=True)
            if not _ok(t, s["truth"])
        ],
        # POP909's two annotations at different metrical levels (beat_audio.txt vs beat_midi.txt)
        "songs_whose_two_annotations_differ": sum(
            1 for s in songs if s.get("audio_tempo") is not None and not _ok(s["audio_tempo"], s["truth"])
        ),
        "misses_matching_beat_audio": sum(
            1
            for t, s in zip(chosen, songs, strict=True)
            if not _ok(t, s["truth"]) and s.get("audio_tempo") is not None and _ok(t, s["audio_tempo"])
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/pop909"
    )
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="per-song analysis representations")
    parser.add_argument("--train-every", type=int, default=4, help="use every N-th train song")
    parser.add_argument("--no-test", action="store_true", help="skip the test split (development)")
    parser.add_argument("--out", type=Path, default=CHECKPOINT_DIR / "tempo_octave.json")
    parser.add_argument("--results", type=Path, default=RESULTS_DIR / "tempo_octave.json")
    args = parser.parse_args(argv)

    from core.audio.analysis import OCTAVE_FEATURES, TEMPO_CHOOSER_FORMAT

    sf2 = soundfont_bytes()
    train = load_split(args.data, "train", every=args.train_every, cache=args.cache, sf2=sf2)
    val = load_split(args.data, "validation", every=1, cache=args.cache, sf2=sf2)
    by_l2 = {}
    for l2 in L2_GRID:
        m = fit(train, l2=l2)
        r = evaluate(m, val)
        by_l2[l2] = (r["log_loss"], m)
        _log(
            f"l2 {l2:g}: train loss {m['train_loss']:.3f}, validation log loss {r['log_loss']:.3f}, "
            f"accuracy {r['accuracy'] * 100:.1f} %"
        )
    best_l2 = min(by_l2, key=lambda k: by_l2[k][0])
    model = by_l2[best_l2][1]
    results = {
        "model": "tempo_octave: conditional logit over the comb tempo's half / same / double",
        "features": list(OCTAVE_FEATURES),
        "l2": best_l2,
        "train_songs_used": model["songs"],
        "tolerance": TOLERANCE,
        "train": evaluate(model, train),
        "validation": evaluate(model, val),
        "command": "python -m models.train_tempo " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    if not args.no_test:
        test = load_split(args.data, "test", every=1, cache=args.cache, sf2=sf2)
        results["test"] = evaluate(model, test)
    for split in ("train", "validation", "test"):
        if split in results:
            r = results[split]
            _log(
                f"{split}: chooser {r['accuracy'] * 100:.1f} % within 4 % "
                f"(comb alone {r['comb_accuracy'] * 100:.1f} %, oracle {r['oracle_accuracy'] * 100:.1f} %, "
                f"octave errors allowed {r['accuracy_octave_errors_allowed'] * 100:.1f} %) "
                f"on {r['songs']} songs; {r['misses_matching_beat_audio']} of {len(r['misses'])} misses "
                f"match POP909's beat_audio.txt level ({r['songs_whose_two_annotations_differ']} songs "
                "whose two annotations differ)"
            )
    checkpoint = {
        "kind": "tempo_octave",
        "format_version": TEMPO_CHOOSER_FORMAT,
        "features": list(OCTAVE_FEATURES),
        "mean": [float(v) for v in model["mean"]],
        "scale": [float(v) for v in model["scale"]],
        "weights": [float(v) for v in model["weights"]],
        "meta": {"l2": best_l2, "train_songs": model["songs"], "data": "POP909 train split, rendered"},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(checkpoint, indent=1) + "\n")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=1) + "\n")
    _log(f"wrote {args.out} and {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
