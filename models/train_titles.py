"""Train the track-title model on the Spotify titles data set.

Usage (from the repository root; CPU, one thread, stops by itself after ``--max-minutes``)::

    python -m models.train_titles --data ../shared/data/spotify_songs/spotify_songs.csv \\
        --out models/checkpoints/titles.pt

Besides the checkpoint it writes ``models/results/titles.json`` (validation NLL of the model, with and
without the album-theme conditioning, against unigram and bigram character baselines) and the hashed
set of normalised training titles ``core/album_data/known_titles.npy`` that the app uses to never
return a title that exists verbatim in the data, and the word list ``core/album_data/title_words.txt.gz``
(a generated title must be made of real words).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import itertools
import json
import math
import random
import sys
import time
import unicodedata
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from core.album import normalize_title, title_hashes
from models.titles import (
    ANY_GENRE,
    BOS,
    EOS,
    GENRES,
    N_SPECIAL,
    PAD,
    TitleModel,
    TitlesConfig,
    batch_theme,
    clean_title,
    encode_title,
    genre_index,
    save_checkpoint,
)


def _latin_ok(ch: str) -> bool:
    if ch.isascii():
        return ch.isprintable()
    return "LATIN" in unicodedata.name(ch, "")


def load_rows(path: Path) -> tuple[list[dict], list[str]]:
    """Read the CSV; return cleaned, de-duplicated rows and every raw name (for the novelty set)."""
    with open(path, newline="", encoding="utf-8") as f:
        raw_rows = list(csv.DictReader(f))
    known: list[str] = []
    for r in raw_rows:
        for name in (r["track_name"], r["album"]):
            known.append(name)
            known.append(clean_title(name))
    cleaned = []
    for r in raw_rows:
        t = clean_title(r["track_name"])
        if not (2 <= len(t) <= 44) or not all(_latin_ok(ch) for ch in t):
            continue
        cleaned.append({"title": t, "album": clean_title(r["album"]), "genre": r["genres"].strip().lower()})
    counts = Counter(ch for r in cleaned for ch in r["title"])
    rows, seen = [], set()
    for r in cleaned:
        key = normalize_title(r["title"])
        if not key or key in seen or any(counts[ch] < 8 for ch in r["title"]):
            continue
        seen.add(key)
        rows.append(r)
    return rows, known


def write_word_list(rows: list[dict], path: Path) -> int:
    """Write the gzip-compressed list ``word<TAB>count`` of every word in the cleaned titles.

    The app accepts a generated title only if each of its words is a real word from this list
    (preferring words used in at least two titles).
    """
    counts = Counter(w for r in rows for w in normalize_title(r["title"]).split())
    lines = [f"{w}\t{c}" for w, c in sorted(counts.items())]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))
    return len(lines)


def write_bigram_set(rows: list[dict], path: Path) -> int:
    """Write the hashed set of adjacent word pairs seen in the cleaned titles; return its size.

    The app uses it to reject ungrammatical runs of function words ("The Me", "A Are") that the
    training titles never contain, and to prefer titles whose word pairs are idiomatic.
    """
    pairs = {f"{a} {b}" for r in rows for a, b in itertools.pairwise(normalize_title(r["title"]).split())}
    hashes = title_hashes(pairs)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, hashes)
    return int(hashes.size)


def _split(rows: list[dict], val_share: float) -> tuple[list[dict], list[dict]]:
    train, val = [], []
    for r in rows:
        h = zlib.crc32(normalize_title(r["title"]).encode()) % 1000
        (val if h < val_share * 1000 else train).append(r)
    return train, val


def _is_title_track(r: dict) -> bool:
    a, t = normalize_title(r["album"]), normalize_title(r["title"])
    return bool(a) and (a in t or t in a)


def _batch(rows: list[dict], cfg: TitlesConfig, rng: random.Random, *, train: bool, theme: bool = True):
    enc = [encode_title(r["title"], cfg.vocab) for r in rows]
    width = max(len(e) for e in enc)
    toks = torch.full((len(rows), width), PAD, dtype=torch.long)
    for i, e in enumerate(enc):
        toks[i, : len(e)] = torch.tensor(e)
    genres, themes = [], []
    for r in rows:
        g = genre_index(r["genre"])
        t = r["album"] if theme else ""
        if train:
            if rng.random() < 0.1:
                g = ANY_GENRE
            # Singles and title tracks name the album after the song: mostly hide the theme there,
            # otherwise the model learns to copy the album name instead of writing around it.
            if (_is_title_track(r) and rng.random() < 0.7) or rng.random() < 0.1:
                t = ""
        genres.append(g)
        themes.append(t)
    tids, toffs = batch_theme(themes, buckets=cfg.theme_buckets)
    return toks, torch.tensor(genres, dtype=torch.long), tids, toffs


@torch.no_grad()
def evaluate(model: TitleModel, rows: list[dict], *, theme: bool, batch_size: int = 256) -> float:
    """Validation NLL in nats per predicted character (EOS included)."""
    model.eval()
    rng = random.Random(0)
    total, count = 0.0, 0
    for i in range(0, len(rows), batch_size):
        toks, g, tids, toffs = _batch(rows[i : i + batch_size], model.cfg, rng, train=False, theme=theme)
        logits, _ = model(toks[:, :-1], g, tids, toffs)
        tgt = toks[:, 1:]
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), ignore_index=PAD, reduction="sum"
        )
        total += float(loss)
        count += int((tgt != PAD).sum())
    return total / count


def ngram_baselines(train: list[dict], val: list[dict], vocab: str) -> dict[str, float]:
    """Add-one smoothed unigram and add-0.1 bigram character models: validation NLL per character."""
    v = N_SPECIAL + len(vocab)
    uni = np.ones(v)
    bi = np.full((v, v), 0.1)
    for r in train:
        e = encode_title(r["title"], vocab)
        for a, b in itertools.pairwise(e):
            uni[b] += 1
            bi[a, b] += 1
    uni[[PAD, BOS]] = 0
    bi[:, [PAD, BOS]] = 0
    with np.errstate(divide="ignore"):
        lu = np.log(uni / uni.sum())
        lb = np.log(bi / bi.sum(axis=1, keepdims=True))
    nu = nb = 0.0
    n = 0
    for r in val:
        e = encode_title(r["title"], vocab)
        for a, b in itertools.pairwise(e):
            nu -= lu[b]
            nb -= lb[a, b]
            n += 1
    return {"unigram": float(nu / n), "bigram": float(nb / n)}


def main(argv: list[str] | None = None) -> int:
    """Train, evaluate and save; see the module docstring."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="spotify_songs.csv")
    ap.add_argument("--out", type=Path, default=Path("models/checkpoints/titles.pt"))
    ap.add_argument("--results", type=Path, default=Path("models/results/titles.json"))
    ap.add_argument("--known-out", type=Path, default=Path("core/album_data/known_titles.npy"))
    ap.add_argument("--words-out", type=Path, default=Path("core/album_data/title_words.txt.gz"))
    ap.add_argument("--bigrams-out", type=Path, default=Path("core/album_data/title_bigrams.npy"))
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--max-minutes", type=float, default=20.0)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    t0 = time.monotonic()

    rows, known = load_rows(args.data)
    vocab = "".join(sorted({ch for r in rows for ch in r["title"]}))
    train, val = _split(rows, 0.1)
    print(f"{len(rows)} titles ({len(train)} train / {len(val)} val), vocab {len(vocab)}")

    hashes = title_hashes(known)
    args.known_out.parent.mkdir(parents=True, exist_ok=True)
    np.save(args.known_out, hashes)
    print(f"novelty set: {hashes.size} hashed names -> {args.known_out}")
    n_words = write_word_list(rows, args.words_out)
    print(f"word list: {n_words} words -> {args.words_out}")
    n_pairs = write_bigram_set(rows, args.bigrams_out)
    print(f"word pairs: {n_pairs} hashed -> {args.bigrams_out}")

    cfg = TitlesConfig(vocab=vocab, hidden=args.hidden, layers=args.layers)
    model = TitleModel(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    total_steps = args.epochs * math.ceil(len(train) / args.batch_size)
    budget = args.max_minutes * 60

    def lr_at(step: int) -> float:
        # Warm-up, then cosine decay over whichever runs out first: the epochs or the time budget,
        # so a run cut short by a busy machine still ends with a low learning rate.
        done = max(step / total_steps, (time.monotonic() - t0) / budget)
        warm = min(1.0, (step + 1) / 200)
        return args.lr * warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, done))))

    best, best_state, history = float("inf"), None, []
    step = 0
    for epoch in range(args.epochs):
        model.train()
        order = sorted(train, key=lambda r: rng.random())
        tl, tn = 0.0, 0
        for i in range(0, len(order), args.batch_size):
            if time.monotonic() - t0 > budget:
                break
            toks, g, tids, toffs = _batch(order[i : i + args.batch_size], cfg, rng, train=True)
            logits, _ = model(toks[:, :-1], g, tids, toffs)
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), toks[:, 1:].reshape(-1), ignore_index=PAD
            )
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            for group in opt.param_groups:
                group["lr"] = lr_at(step)
            opt.step()
            step += 1
            tl += float(loss.detach())
            tn += 1
        v = evaluate(model, val, theme=True)
        history.append({"epoch": epoch + 1, "train_nll": tl / tn, "val_nll": v})
        print(
            f"epoch {epoch + 1}: train {tl / tn:.4f}  val {v:.4f}  ({time.monotonic() - t0:.0f} s)",
            flush=True,
        )
        if v < best:
            best = v
            best_state = {k: t.detach().clone() for k, t in model.state_dict().items()}
        if time.monotonic() - t0 >= budget * 0.995:
            break
    model.load_state_dict(best_state)
    val_theme = evaluate(model, val, theme=True)
    val_plain = evaluate(model, val, theme=False)
    base = ngram_baselines(train, val, vocab)
    metrics = {
        "data": "spotify_songs.csv (TidyTuesday 2020-01-21)",
        "titles": len(rows),
        "train": len(train),
        "val": len(val),
        "vocab": len(vocab),
        "params": n_params,
        "genres": list(GENRES),
        "val_nll_per_char": {
            "model_with_album_theme": val_theme,
            "model_without_theme": val_plain,
            "bigram_baseline": base["bigram"],
            "unigram_baseline": base["unigram"],
        },
        "val_bits_per_char_model": val_theme / math.log(2),
        "epochs_run": len(history),
        "history": history,
        "train_seconds": round(time.monotonic() - t0, 1),
        "command": "python -m models.train_titles " + " ".join(argv if argv is not None else sys.argv[1:]),
        "batch_size": args.batch_size,
        "max_minutes": args.max_minutes,
        "threads": args.threads,
        "special_tokens": {"pad": PAD, "bos": BOS, "eos": EOS},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(model, args.out, metrics={k: metrics[k] for k in ("val_nll_per_char", "epochs_run")})
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics["val_nll_per_char"], indent=2))
    print(f"checkpoint {args.out} ({args.out.stat().st_size / 1e6:.2f} MB), params {n_params}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
