"""Train the symbolic music models (drums, bass, harmony, melody) and write their held-out evaluation.

One command per model (seeded, single-threaded by default, each under ~10 minutes of wall time)::

    python -m models.train drums   --data ../shared/data/groove --out models/checkpoints/drums.pt
    python -m models.train harmony --data ../shared/data/pop909 --out models/checkpoints/harmony.pt
    python -m models.train bass    --data ../shared/data/pop909 --out models/checkpoints/bass.pt
    python -m models.train melody  --data ../shared/data/pop909 --out models/checkpoints/melody.pt

The committed checkpoints were trained on a busy 2-core machine in two or three such runs each: the
command above, then the same command with ``--resume models/checkpoints/<model>.pt`` and a lower ``--lr``,
each stopped by ``--max-minutes`` (8-10 minutes). Every run's exact command and the epochs it reached are
in ``models/results/<model>.json`` (``commands``, ``history`` with a ``stage`` per run); for an exact
replay on a faster machine give those ``--epochs`` and a large ``--max-minutes``.

Each run keeps the epoch with the best validation loss (early stopping), evaluates it on the test split
against simple baselines (:func:`evaluate`) and writes ``models/results/<model>.json``. Parsed data sets
are cached under ``--cache`` (default ``/tmp/beattok_cache``), never in the repository.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from models.common import RESULTS_DIR, save_checkpoint

LN2 = math.log(2.0)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _setup(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(max(1, int(args.threads)))
    torch.manual_seed(args.seed)


def _fit(
    *,
    model,
    batches: Callable[[np.random.Generator], list],
    loss_fn: Callable,
    val_fn: Callable[[], float],
    epochs: int,
    lr: float,
    seed: int,
    max_minutes: float,
    name: str,
) -> tuple[object, list[dict]]:
    """Generic training loop with Adam, gradient clipping, early stopping on ``val_fn`` and a time budget."""
    import torch

    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs), eta_min=lr * 0.1)
    best, best_val, history = None, float("inf"), []
    t0 = time.monotonic()
    patience = 0
    for epoch in range(epochs):
        model.train()
        total, n = 0.0, 0
        for batch in batches(rng):
            opt.zero_grad()
            loss = loss_fn(model, batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            total += loss.item()
            n += 1
            if (time.monotonic() - t0) / 60 > max_minutes:
                break
        sched.step()
        model.eval()
        with torch.no_grad():
            val = val_fn()
        history.append({"epoch": epoch + 1, "train_loss": total / max(n, 1), "val": val})
        _log(
            f"[{name}] epoch {epoch + 1}: train {total / max(n, 1):.4f} val {val:.4f} "
            f"({time.monotonic() - t0:.0f}s)"
        )
        if val < best_val - 1e-4:
            best_val, best, patience = val, copy.deepcopy(model.state_dict()), 0
        else:
            patience += 1
            if patience >= 3:
                _log(f"[{name}] early stop")
                break
        if (time.monotonic() - t0) / 60 > max_minutes:
            _log(f"[{name}] time budget of {max_minutes} min reached")
            break
    if best is not None:
        model.load_state_dict(best)
    model.eval()
    return model, history


def _init_model(args: argparse.Namespace, config_cls: type, module_cls) -> tuple:
    """A fresh ``(config, model)``, or the ones of ``--resume`` (a checkpoint to continue training from)."""
    import torch

    if args.resume:
        ckpt = torch.load(args.resume, map_location="cpu", weights_only=True)
        cfg = config_cls(**ckpt["config"])
        model = module_cls(cfg)
        model.load_state_dict(ckpt["model"])
        _log(f"resuming from {args.resume}")
        return cfg, model
    cfg = config_cls(hidden=args.hidden or config_cls.hidden)
    return cfg, module_cls(cfg)


def _write_results(name: str, results: dict, out_dir: str | Path | None = None) -> Path:
    out_dir = Path(out_dir) if out_dir else RESULTS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    _log(f"[{name}] wrote {path}")
    return path


# ----------------------------------------------------------------------------------------------------------
# drums


def drum_windows(gs, *, length: int, hop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Window start indices (into the concatenated arrays), their performance end and performance start."""
    starts, ends, perf = [], [], []
    for s, n in zip(gs.starts, gs.lengths, strict=True):
        last = max(int(n) - length, 0)
        for w in range(0, last + 1, hop):
            starts.append(int(s) + w)
            ends.append(int(s + n))
            perf.append(int(s))
    return np.array(starts), np.array(ends), np.array(perf)


def drum_features(gs) -> np.ndarray:
    """``(total_steps, 27)`` float32 step features (hits, velocities, offsets) of a split."""
    return np.concatenate([gs.hits.astype(np.float32), gs.velocity, gs.offset], axis=1)


def drum_batch(gs, feats, style_idx: np.ndarray, starts, ends, perf, *, length: int, rng, tap_prob: float):
    """Tensors for a batch of windows: inputs (previous step), targets, tap and padding mask."""
    import torch

    idx = starts[:, None] + np.arange(length)[None, :]
    valid = idx < ends[:, None]
    idx_c = np.minimum(idx, ends[:, None] - 1)
    prev_idx = idx_c - 1
    prev = feats[np.maximum(prev_idx, 0)]
    prev[prev_idx < perf[:, None]] = 0.0
    pos = (idx_c - perf[:, None]) % 16
    hits = gs.hits[idx_c].astype(np.float32)
    vel = gs.velocity[idx_c]
    off = gs.offset[idx_c]
    tap = vel.max(axis=2)
    tap_mask = (rng.random(len(starts)) < tap_prob).astype(np.float32)[:, None] * np.ones(
        (1, length), np.float32
    )
    t = torch.from_numpy
    return {
        "prev": t(prev.astype(np.float32)),
        "style": t(style_idx.astype(np.int64)),
        "pos": t(pos.astype(np.int64)),
        "tap": t(tap.astype(np.float32)),
        "tap_mask": t(tap_mask),
        "hits": t(hits),
        "vel": t(vel.astype(np.float32)),
        "off": t(off.astype(np.float32)),
        "mask": t(valid.astype(np.float32)),
    }


def drum_losses(model, b) -> tuple:
    """``(bce per step-class summed, number of step-classes, regression loss)`` of a batch."""
    import torch.nn.functional as F

    logits, v, o = model(b["prev"], b["style"], b["pos"], b["tap"], b["tap_mask"])
    m = b["mask"][..., None].expand_as(logits)
    bce = F.binary_cross_entropy_with_logits(logits, b["hits"], reduction="none") * m
    hm = b["hits"] * m
    reg = (((v - b["vel"]) ** 2 + 4.0 * (o - b["off"]) ** 2) * hm).sum() / hm.sum().clamp(min=1.0)
    return bce.sum(), m.sum(), reg


def _drum_style_idx(gs, styles) -> np.ndarray:
    return np.array([styles.index(s) if s in styles else 0 for s in gs.style])


def drum_eval(model, gs, styles, *, tap: bool) -> dict:
    """Teacher-forced test metrics over whole performances: hit NLL (bits per step-class), velocity MAE."""
    import torch

    sidx = _drum_style_idx(gs, styles)
    tot_bce, tot_n, v_err, o_err, n_hits = 0.0, 0.0, 0.0, 0.0, 0.0
    order = np.argsort(gs.lengths)
    rng = np.random.default_rng(0)
    feats = drum_features(gs)
    for i in range(0, len(order), 32):
        sel = order[i : i + 32]
        length = int(gs.lengths[sel].max())
        b = drum_batch(
            gs, feats, sidx[sel], gs.starts[sel], gs.starts[sel] + gs.lengths[sel], gs.starts[sel],
            length=length, rng=rng, tap_prob=1.0 if tap else 0.0,
        )  # fmt: skip
        with torch.no_grad():
            bce, n, _ = drum_losses(model, b)
            _, v, o = model(b["prev"], b["style"], b["pos"], b["tap"], b["tap_mask"])
        hm = b["hits"] * b["mask"][..., None]
        tot_bce += float(bce)
        tot_n += float(n)
        v_err += float((abs(v - b["vel"]) * hm).sum())
        o_err += float((abs(o - b["off"]) * hm).sum())
        n_hits += float(hm.sum())
    return {
        "nll_bits_per_step_class": tot_bce / tot_n / LN2,
        "velocity_mae": v_err / n_hits,
        "offset_mae_steps": o_err / n_hits,
    }


def drum_baselines(train, valid, test) -> dict:
    """Hit NLL (bits per step-class) of unigram (class x bar position) and repeat-previous-bar baselines."""
    eps = 1e-4
    pos_tr = np.concatenate([np.arange(n) % 16 for n in train.lengths])
    uni = np.stack([train.hits[pos_tr == p].mean(axis=0) for p in range(16)])  # (16, 9)
    uni = np.clip(uni, eps, 1 - eps)

    def nll(p, y):
        p = np.clip(p, eps, 1 - eps)
        return float(-(y * np.log2(p) + (1 - y) * np.log2(1 - p)).mean())

    def predictions(gs, lam):
        pu, prb = [], []
        for i in range(len(gs.lengths)):
            h, _, _ = gs.sequence(i)
            pos = np.arange(len(h)) % 16
            u = uni[pos]
            r = u.copy()
            r[16:] = lam * h[:-16] + (1 - lam) * u[16:]
            pu.append(u)
            prb.append(r)
        return np.concatenate(pu), np.concatenate(prb)

    yv = valid.hits.astype(float)
    lams = [0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95]
    best_lam = min(lams, key=lambda lam: nll(predictions(valid, lam)[1], yv))
    pu, pr = predictions(test, best_lam)
    yt = test.hits.astype(float)
    return {
        "unigram_class_bar_position_bits": nll(pu, yt),
        "repeat_previous_bar_bits": nll(pr, yt),
        "repeat_previous_bar_mix": best_lam,
    }


def train_drums(args: argparse.Namespace) -> dict:
    """Train the drum model (see the module docstring)."""
    from models.data_groove import load_groove
    from models.drums import STYLES, DrumsConfig, DrumsLSTM

    _setup(args)
    data = load_groove(args.data, cache_dir=args.cache)
    train, valid = data["train"], data["validation"]
    styles = list(STYLES)
    cfg, model = _init_model(args, DrumsConfig, DrumsLSTM)
    length = 64
    starts, ends, perf = drum_windows(train, length=length, hop=16)
    sidx_perf = _drum_style_idx(train, styles)
    perf_of_start = np.searchsorted(train.starts, perf)
    win_style = sidx_perf[perf_of_start]
    per_epoch = min(len(starts), args.windows_per_epoch)
    bs = 64
    feats = drum_features(train)

    def batches(rng):
        sel = rng.permutation(len(starts))[:per_epoch]
        for i in range(0, len(sel), bs):
            s = sel[i : i + bs]
            yield drum_batch(
                train, feats, win_style[s], starts[s], ends[s], perf[s], length=length, rng=rng, tap_prob=0.5
            )

    def loss_fn(m, b):
        bce, n, reg = drum_losses(m, b)
        return bce / n + reg

    def val_fn():
        return drum_eval(model, valid, styles, tap=False)["nll_bits_per_step_class"]

    _log(f"[drums] {len(starts)} training windows, {sum(p.numel() for p in model.parameters())} parameters")
    model, history = _fit(
        model=model, batches=batches, loss_fn=loss_fn, val_fn=val_fn, epochs=args.epochs, lr=args.lr,
        seed=args.seed, max_minutes=args.max_minutes, name="drums",
    )  # fmt: skip
    meta = {
        "kind": "drums",
        "styles": styles,
        "classes": list(__import__("models.drums", fromlist=["DRUM_CLASSES"]).DRUM_CLASSES),
        "trained_on": "Groove MIDI Dataset v1.0.0 (4/4 performances, train split)",
        "seed": args.seed,
    }
    save_checkpoint(args.out, model=model, config=cfg, meta=meta)
    model.meta = meta
    res = {**evaluate("drums", model, data=args.data, cache=args.cache), "history": history}
    res["command"] = " ".join(sys.argv)
    _write_results("drums", res, args.results_dir)
    return res


def _eval_drums(model, data) -> dict:
    import torch

    from models.drums import STYLES

    train, valid, test = data["train"], data["validation"], data["test"]
    styles = list(getattr(model, "meta", {}).get("styles", STYLES))
    with torch.no_grad():
        return {
            "model": "drums",
            "units": "bits per step and drum class (hit/no hit), Groove test split, teacher forced",
            "test": drum_eval(model, test, styles, tap=False),
            "test_with_tap": drum_eval(model, test, styles, tap=True),
            "baselines": drum_baselines(train, valid, test),
            "parameters": sum(p.numel() for p in model.parameters()),
        }


# ----------------------------------------------------------------------------------------------------------
# token models on POP909 (harmony, bass, melody)


def _pad(seqs: list[np.ndarray], fill) -> np.ndarray:
    n = max(len(x) for x in seqs)
    out = np.full((len(seqs), n, *seqs[0].shape[1:]), fill, dtype=seqs[0].dtype)
    for i, x in enumerate(seqs):
        out[i, : len(x)] = x
    return out


def token_batch(prev: list[np.ndarray], cond: list[np.ndarray], target: list[np.ndarray]) -> dict:
    """Padded tensors of a batch of token sequences (target -100 on padding)."""
    import torch

    return {
        "prev": torch.from_numpy(_pad(prev, 0)),
        "cond": torch.from_numpy(_pad(cond, 0.0)),
        "target": torch.from_numpy(_pad(target, -100)),
    }


def token_loss(model, b):
    """Mean cross entropy (nats per token) of a batch."""
    import torch.nn.functional as F

    logits = model(b["prev"], b["cond"])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), b["target"].reshape(-1), ignore_index=-100)


def token_nll_bits(model, seqs: list[tuple[np.ndarray, np.ndarray, np.ndarray]], bs: int = 16) -> float:
    """Teacher-forced NLL in bits per token over ``(prev, cond, target)`` sequences."""
    import torch
    import torch.nn.functional as F

    tot, n = 0.0, 0
    order = np.argsort([len(s[0]) for s in seqs])
    for i in range(0, len(order), bs):
        chunk = [seqs[j] for j in order[i : i + bs]]
        b = token_batch([c[0] for c in chunk], [c[1] for c in chunk], [c[2] for c in chunk])
        with torch.no_grad():
            logits = model(b["prev"], b["cond"])
            loss = F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]),
                b["target"].reshape(-1),
                ignore_index=-100,
                reduction="sum",
            )
        tot += float(loss)
        n += int((b["target"] >= 0).sum())
    return tot / n / LN2


def token_baselines(train_tok, valid_tok, test_tok, pos_of, vocab: int, period: int) -> dict:
    """Bits per token of unigram, unigram-by-position, repeat-previous-token and repeat-previous-period.

    ``*_tok`` are lists of token arrays; ``pos_of(split_index, seq_index)`` gives positions for the
    by-position unigram. The repeat baselines mix ``lam * [token == previous] + (1 - lam) * unigram``
    with ``lam`` chosen on the validation split.
    """
    allt = np.concatenate(train_tok)
    uni = (np.bincount(allt, minlength=vocab) + 0.5) / (len(allt) + 0.5 * vocab)
    n_pos = max(int(np.max(pos_of(0, i))) for i in range(len(train_tok))) + 1
    upos = np.full((n_pos, vocab), 0.5)
    for i, t in enumerate(train_tok):
        np.add.at(upos, (pos_of(0, i), t), 1.0)
    upos /= upos.sum(axis=1, keepdims=True)

    def bits_uni(toks):
        t = np.concatenate(toks)
        return float(-np.log2(uni[t]).mean())

    def bits_upos(toks, split):
        return float(-np.concatenate([np.log2(upos[pos_of(split, i), t]) for i, t in enumerate(toks)]).mean())

    def bits_repeat(toks, lag, lam):
        out = []
        for t in toks:
            p = uni[t].copy()
            same = np.zeros(len(t))
            same[lag:] = t[lag:] == t[:-lag]
            p[lag:] = lam * same[lag:] + (1 - lam) * p[lag:]
            out.append(np.log2(p))
        return float(-np.concatenate(out).mean())

    lams = [0.05, 0.1, 0.2, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
    l1 = min(lams, key=lambda lam: bits_repeat(valid_tok, 1, lam))
    lp = min(lams, key=lambda lam: bits_repeat(valid_tok, period, lam))
    return {
        "unigram_bits": bits_uni(test_tok),
        "unigram_by_position_bits": bits_upos(test_tok, 2),
        "repeat_previous_bits": bits_repeat(test_tok, 1, l1),
        "repeat_previous_mix": l1,
        f"repeat_previous_{period}_bits": bits_repeat(test_tok, period, lp),
        f"repeat_previous_{period}_mix": lp,
    }


def harmony_sequences(ds) -> list[dict]:
    """Half-bar chord token sequences of a POP909 split (leading/trailing no-chord trimmed)."""
    from models.common import QUALITIES
    from models.harmony import NO_CHORD, TEMPO_SPLIT_BPM, chord_token

    out = []
    for i in range(len(ds.lengths)):
        a = ds.song_arrays(i)
        starts = np.flatnonzero(a["pos"] % 8 == 0)
        starts = starts[starts + 8 <= len(a["pos"])]
        toks, minor, half = [], [], []
        for s in starts:
            r = a["root"][s : s + 8].astype(np.int64)
            q = a["quality"][s : s + 8].astype(np.int64)
            code = (r + 1) * 32 + q
            vals, counts = np.unique(code, return_counts=True)
            c = int(vals[np.argmax(counts)])
            root, qual = c // 32 - 1, c % 32
            tonic = int(a["tonic"][s])
            toks.append(NO_CHORD if root < 0 else chord_token(root - tonic, QUALITIES[qual]))
            minor.append(bool(a["minor"][s]))
            half.append(int(a["pos"][s] // 8))
        toks = np.array(toks)
        keep = np.flatnonzero(toks != NO_CHORD)
        if len(keep) < 4:
            continue
        lo, hi = keep[0], keep[-1] + 1
        half_idx = (np.arange(hi - lo) + half[lo]).astype(np.int64)
        out.append({
            "tokens": toks[lo:hi], "minor": np.array(minor[lo:hi]), "half": half_idx,
            "fast": bool(ds.bpm[i] >= TEMPO_SPLIT_BPM),
        })  # fmt: skip
    return out


def _harmony_triples(seqs) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    from models.harmony import BOS, condition

    out = []
    for s in seqs:
        t = s["tokens"]
        prev = np.r_[BOS, t[:-1]].astype(np.int64)
        cond = np.stack(
            [
                condition(minor=m, fast=s["fast"], half_bar=h)
                for m, h in zip(s["minor"], s["half"], strict=True)
            ]
        )
        out.append((prev, cond.astype(np.float32), t.astype(np.int64)))
    return out


def train_harmony(args: argparse.Namespace) -> dict:
    """Train the chord progression model (see the module docstring)."""
    from models.data_pop909 import load_pop909
    from models.harmony import HarmonyConfig, build_model

    _setup(args)
    data = load_pop909(args.data, cache_dir=args.cache)
    seqs = {k: harmony_sequences(v) for k, v in data.items()}
    trip = {k: _harmony_triples(v) for k, v in seqs.items()}
    cfg, model = _init_model(args, HarmonyConfig, build_model)

    def batches(rng):
        sel = rng.permutation(len(trip["train"]))
        for i in range(0, len(sel), 16):
            chunk = [trip["train"][j] for j in sel[i : i + 16]]
            yield token_batch([c[0] for c in chunk], [c[1] for c in chunk], [c[2] for c in chunk])

    model, history = _fit(
        model=model, batches=batches, loss_fn=token_loss,
        val_fn=lambda: token_nll_bits(model, trip["validation"]),
        epochs=args.epochs, lr=args.lr, seed=args.seed, max_minutes=args.max_minutes, name="harmony",
    )  # fmt: skip
    from models.harmony import MOOD_ENERGY, MOODS, TEMPO_SPLIT_BPM

    meta = {
        "kind": "harmony", "moods": list(MOODS), "mood_energy": MOOD_ENERGY,
        "tempo_split_bpm": TEMPO_SPLIT_BPM,
        "trained_on": "POP909 songs 001-727 (chord_midi.txt, key_audio.txt)", "seed": args.seed,
    }  # fmt: skip
    save_checkpoint(args.out, model=model, config=cfg, meta=meta)
    res = {**_eval_harmony(model, seqs, trip["test"]), "history": history, "command": " ".join(sys.argv)}
    _write_results("harmony", res, args.results_dir)
    return res


def _eval_harmony(model, seqs: dict, test_trip: list) -> dict:
    from models.harmony import VOCAB

    toks = {k: [s["tokens"] for s in v] for k, v in seqs.items()}
    halves = [[s["half"] % 8 for s in seqs[k]] for k in ("train", "validation", "test")]
    return {
        "model": "harmony",
        "units": "bits per half-bar chord token (key-relative root x 9 qualities + N), POP909 songs 819-909",
        "test": {"nll_bits_per_token": token_nll_bits(model, test_trip)},
        "baselines": token_baselines(
            toks["train"], toks["validation"], toks["test"], lambda sp, i: halves[sp][i], VOCAB, 8
        ),
        "sequences": {k: len(v) for k, v in seqs.items()},
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def _pop_features(kind: str, a: dict, rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray]:
    """``(tokens, cond)`` of one POP909 song for the bass or melody model (kick proxy drawn with ``rng``)."""
    if kind == "bass":
        from models import bass as B

        root = a["root"].astype(np.int64)
        quality = a["quality"].astype(np.int64)
        eff = B.effective_roots(root, a["tonic"].astype(np.int64))
        tok = B.tokens_from_line(a["bass_on"].astype(np.int64), a["bass_hold"], eff)
        nr, nq, tc = B.chord_context(root, quality)
        n = len(tok)
        if rng is None:
            kick, kmask = np.zeros(n), np.zeros(n)
        else:
            onset = tok >= B.FIRST_ONSET
            kick = ((onset & (rng.random(n) < 0.75)) | ((rng.random(n) < 0.03) & (a["pos"] % 2 == 0))).astype(
                float
            )
            kmask = np.full(n, float(rng.random() < 0.5))
        cond = B.condition(
            root=root, quality=quality, next_root=nr, next_quality=nq, to_change=tc, pos=a["pos"],
            kick=kick, kick_mask=kmask,
        )  # fmt: skip
        return tok, cond
    from models import melody as M

    tonic = a["tonic"].astype(np.int64)
    tok = M.tokens_from_line(a["mel_on"].astype(np.int64), a["mel_hold"], tonic)
    root = a["root"].astype(np.int64)
    rel = np.where(root >= 0, (root - tonic) % 12, -1)
    cond = M.condition(rel_root=rel, quality=a["quality"].astype(np.int64), pos=a["pos"], minor=a["minor"])
    return tok, cond


def _train_steps_model(args: argparse.Namespace, kind: str) -> dict:

    from models.data_pop909 import load_pop909

    if kind == "bass":
        from models.bass import BassConfig as Cfg
        from models.bass import build_model
    else:
        from models.melody import MelodyConfig as Cfg
        from models.melody import build_model

    _setup(args)
    data = load_pop909(args.data, cache_dir=args.cache)
    cfg, model = _init_model(args, Cfg, build_model)
    train = data["train"]
    length = 128
    songs = [train.song_arrays(i) for i in range(len(train.lengths))]
    win = [(i, s) for i, a in enumerate(songs) for s in range(0, max(len(a["pos"]) - length, 0) + 1, 16)]
    if kind == "melody":
        from models.melody import MIN_COVERAGE

        def coverage(i, s):
            a = songs[i]
            return float(((a["mel_on"][s : s + length] >= 0) | a["mel_hold"][s : s + length]).mean())

        win = [(i, s) for i, s in win if coverage(i, s) >= MIN_COVERAGE]
    _log(f"[{kind}] {len(win)} training windows, {sum(p.numel() for p in model.parameters())} parameters")
    per_epoch = min(len(win), args.windows_per_epoch)

    def batches(rng):
        sel = rng.permutation(len(win))[:per_epoch]
        for i in range(0, len(sel), 32):
            prevs, conds, tgts = [], [], []
            for j in sel[i : i + 32]:
                si, s = win[j]
                a = {k: v[s : s + length + 1] for k, v in songs[si].items()}
                tok, cond = _pop_features(kind, a, rng)
                prevs.append(tok[:-1])
                conds.append(cond[1:])
                tgts.append(tok[1:])
            yield token_batch(prevs, conds, tgts)

    val_trip = _pop_triples(kind, data["validation"])
    model, history = _fit(
        model=model, batches=batches, loss_fn=token_loss, val_fn=lambda: token_nll_bits(model, val_trip),
        epochs=args.epochs, lr=args.lr, seed=args.seed, max_minutes=args.max_minutes, name=kind,
    )  # fmt: skip
    meta = {"kind": kind, "trained_on": "POP909 songs 001-727", "seed": args.seed, "steps_per_beat": 4}
    save_checkpoint(args.out, model=model, config=cfg, meta=meta)
    res = {**_eval_steps_model(kind, model, data), "history": history, "command": " ".join(sys.argv)}
    _write_results(kind, res, args.results_dir)
    return res


def _pop_triples(kind: str, ds) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Whole-song ``(prev, cond, target)`` sequences of a split (no kick channel)."""
    out = []
    for i in range(len(ds.lengths)):
        tok, cond = _pop_features(kind, ds.song_arrays(i), None)
        out.append((np.r_[0, tok[:-1]].astype(np.int64), cond, tok))
    return out


def _eval_steps_model(kind: str, model, data) -> dict:
    import torch

    from models.bass import VOCAB as BASS_VOCAB
    from models.melody import VOCAB as MELODY_VOCAB

    vocab = BASS_VOCAB if kind == "bass" else MELODY_VOCAB
    trip = {k: _pop_triples(kind, v) for k, v in data.items()}
    test_trip = trip["test"]
    toks = {k: [t for _, _, t in v] for k, v in trip.items()}
    pos = {
        k: [v.song_arrays(i)["pos"].astype(np.int64) for i in range(len(v.lengths))] for k, v in data.items()
    }
    pos_l = [pos["train"], pos["validation"], pos["test"]]
    with torch.no_grad():
        res = {
            "model": kind,
            "units": "bits per 16th-note step (rest/hold/onset token), POP909 songs 819-909, teacher forced",
            "test": {"nll_bits_per_step": token_nll_bits(model, test_trip)},
            "baselines": token_baselines(
                toks["train"], toks["validation"], toks["test"], lambda sp, i: pos_l[sp][i], vocab, 16
            ),
            "parameters": sum(p.numel() for p in model.parameters()),
        }
    return res


def train_bass(args: argparse.Namespace) -> dict:
    """Train the bass model (see the module docstring)."""
    return _train_steps_model(args, "bass")


def train_melody(args: argparse.Namespace) -> dict:
    """Train the melody model (see the module docstring)."""
    return _train_steps_model(args, "melody")


def evaluate(kind: str, model, *, data: str | Path, cache: str | Path | None = None) -> dict:
    """Held-out evaluation of a trained model against its baselines (what training writes to results/).

    Parameters
    ----------
    kind : {"drums", "bass", "harmony", "melody"}
        Which model.
    model : nn.Module
        The model in eval mode (e.g. from :mod:`core.loaders`).
    data : str or Path
        The data set folder (``groove`` for drums, ``pop909`` for the others).
    cache : str or Path, optional
        Cache folder for the parsed data set.
    """
    if kind == "drums":
        from models.data_groove import load_groove

        return _eval_drums(model, load_groove(data, cache_dir=cache))
    from models.data_pop909 import load_pop909

    ds = load_pop909(data, cache_dir=cache)
    if kind == "harmony":
        seqs = {k: harmony_sequences(v) for k, v in ds.items()}
        return _eval_harmony(model, seqs, _harmony_triples(seqs["test"]))
    return _eval_steps_model(kind, model, ds)


# ----------------------------------------------------------------------------------------------------------
# CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m models.train", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="model", required=True)
    defaults = {  # data, epochs, learning rate, training windows per epoch
        "drums": ("../shared/data/groove", 16, 2e-3, 4000),
        "harmony": ("../shared/data/pop909", 40, 3e-3, 4000),
        "bass": ("../shared/data/pop909", 10, 2e-3, 1500),
        "melody": ("../shared/data/pop909", 14, 2e-3, 1500),
    }
    for name, (data, epochs, lr, windows) in defaults.items():
        sp = sub.add_parser(name, help=f"train the {name} model")
        sp.add_argument("--data", default=data, help="data set folder (default %(default)s)")
        sp.add_argument("--out", default=f"models/checkpoints/{name}.pt", help="checkpoint path")
        sp.add_argument("--epochs", type=int, default=epochs)
        sp.add_argument("--lr", type=float, default=lr)
        sp.add_argument("--seed", type=int, default=0)
        sp.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
        sp.add_argument(
            "--cache", default=None, help="cache folder for parsed data (default /tmp/beattok_cache)"
        )
        sp.add_argument("--hidden", type=int, default=0, help="LSTM width (default: the config's)")
        sp.add_argument("--max-minutes", type=float, default=9.0, help="wall-clock budget for training")
        sp.add_argument("--windows-per-epoch", type=int, default=windows, help="training windows per epoch")
        sp.add_argument("--resume", default=None, help="checkpoint to continue training from")
        sp.add_argument(
            "--results-dir", default=None, help="folder for <model>.json (default models/results)"
        )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    trainers = {"drums": train_drums, "harmony": train_harmony, "bass": train_bass, "melody": train_melody}
    res = trainers[args.model](args)
    print(json.dumps({k: v for k, v in res.items() if k != "history"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
