"""Benchmark and quality evaluation of the K-pop generator's shipped model.

    python -m bench.kpop --data ../shared/data/pop909 [--test-songs 4] [--train-songs 12] [--seeds 3]

Prints:

1. next-step validation loss of the shipped model on POP909 songs it never saw (rendered like the
   training data, songs from the end of the list), against the baselines "repeat the last frame" and
   "predict the mean frame" (L1 in normalized units; Gaussian NLL for the model); plus the validation
   figures recorded at training time;
2. generation time for 30 s of audio (median of ``--seeds`` runs, torch on 2 threads; target <= 5 s);
3. training throughput in frames per second (one thread, 20 s of training on test songs);
4. copy detection: the longest stretch of generated frames that follows a training song within
   ``core.kpop.COPY_THRESHOLD`` (normalized RMS), against the first ``--train-songs`` training songs,
   next to unseen songs (what unrelated music scores) and a verbatim excerpt (what a copy scores).

Without ``--data`` only 2. and the recorded validation figures are printed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def _render_frames(dirs: list[Path], cfg, *, offset: float, seconds: float) -> list[np.ndarray]:
    from core import kpop
    from models.train_kpop import PALETTES, arrange, render, soundfont_bytes

    sf2 = soundfont_bytes()
    basis = kpop._mel_basis(cfg)
    out = []
    for i, d in enumerate(dirs):
        idx = int(d.name) - 1  # the palette the training script gave this song
        y, sr = render(arrange(d, palette=PALETTES[idx % len(PALETTES)], end=offset + seconds), sf2)
        a = int(offset * sr)
        frames, _ = kpop.song_frames(y[:, a : a + int(seconds * sr)], sr=sr, cfg=cfg, basis=basis)
        if frames is not None:
            out.append(frames)
        print(f"\r  rendered {i + 1}/{len(dirs)}", end="", file=sys.stderr)
    print(file=sys.stderr)
    return out


def _next_step_losses(lm, songs: list[np.ndarray]) -> dict:
    import torch

    from core.kpop import _baselines
    from models.kpop import frames_to_steps

    steps = [frames_to_steps(torch.as_tensor(lm.normalize(s)), lm.cfg.group).numpy() for s in songs]
    nll = l1 = 0.0
    count = 0
    with torch.no_grad():
        for s in steps:
            x = torch.as_tensor(s[None])
            mu, aux, _ = lm.model(x[:, :-1])
            tgt = x[:, 1:]
            nll += float(lm.model.nll(mu, aux, tgt)) * tgt.numel()
            l1 += float((mu - tgt).abs().sum())
            count += tgt.numel()
    base = _baselines(steps, lm.cfg.group)
    return {
        "model_nll": round(nll / count, 4),
        "model_l1": round(l1 / count, 4),
        "repeat_last_l1": round(base["repeat_last_l1"], 4),
        "mean_frame_l1": round(base["mean_frame_l1"], 4),
        "mean_frame_nll": round(base["mean_frame_nll"], 4),
        "frames": int(sum(s.shape[0] for s in songs)),
    }


def _change(z: np.ndarray, lag: int = 4) -> float:
    """Mean absolute change of normalized frames over ``lag`` frames."""
    return float(np.abs(z[lag:] - z[:-lag]).mean())


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description="K-pop generator benchmark")
    parser.add_argument(
        "--data", type=Path, default=None, help="POP909 folder (for held-out and copy figures)"
    )
    parser.add_argument("--test-songs", type=int, default=4, help="unseen songs from the end of POP909")
    parser.add_argument("--train-songs", type=int, default=12, help="training songs to check copying against")
    parser.add_argument("--seeds", type=int, default=3, help="generations to time and check")
    parser.add_argument("--offset", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    import torch

    from core import kpop
    from models.train_kpop import song_dirs

    torch.set_num_threads(2)
    lm = kpop.load_model()
    cfg = lm.cfg
    report: dict = {
        "checkpoint_mb": round(kpop.DEFAULT_CHECKPOINT.stat().st_size / 2**20, 2),
        "params": sum(p.numel() for p in lm.model.parameters()),
    }
    h, base = lm.history, lm.meta.get("baselines", {})
    if h.get("val_loss"):
        best = int(np.argmin(h["val_loss"]))
        report["recorded_validation"] = {
            "epochs": h["epoch"][-1],
            "val_nll": round(h["val_loss"][best], 4),
            "val_l1": round(h["val_l1"][best], 4),
            "repeat_last_l1": round(base.get("repeat_last_l1", float("nan")), 4),
            "mean_frame_l1": round(base.get("mean_frame_l1", float("nan")), 4),
            "mean_frame_nll": round(base.get("mean_frame_nll", float("nan")), 4),
        }

    # 2. generation time for 30 s
    kpop.generate_audio(model_or_ckpt=lm, seconds=5, seed=0)  # warm-up
    times, gens = [], []
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        gens.append(kpop.generate_audio(model_or_ckpt=lm, seconds=30, seed=seed))
        times.append(time.perf_counter() - t0)
    report["generate_30s_seconds"] = {
        "median": round(statistics.median(times), 2),
        "runs": [round(t, 2) for t in times],
    }
    report["generated_flatness"] = round(float(np.mean([kpop.spectral_flatness(g.y) for g in gens])), 4)
    # liveliness: mean change of the normalized frames over 64 ms (a static drone scores ~0)
    report["generated_change_64ms"] = round(
        float(np.mean([_change(lm.normalize(g.spectrogram.T)) for g in gens])), 3
    )

    if args.data is not None:
        all_dirs = song_dirs(args.data, 10_000)
        test_dirs = all_dirs[-args.test_songs :]
        print(
            f"rendering {len(test_dirs)} unseen songs ({test_dirs[0].name}-{test_dirs[-1].name})",
            file=sys.stderr,
        )
        test = _render_frames(test_dirs, cfg, offset=args.offset, seconds=args.seconds)
        report["held_out_test"] = {"songs": [d.name for d in test_dirs], **_next_step_losses(lm, test)}
        report["data_change_64ms"] = round(float(np.mean([_change(lm.normalize(f)) for f in test])), 3)

        # 3. training throughput (one thread)
        torch.set_num_threads(1)
        ds = kpop.FrameDataset(songs=test, names=[d.name for d in test_dirs], seconds=0.0)
        tr = kpop.train(ds, sr=cfg.sr, epochs=50, cfg=cfg, max_seconds=20.0)
        report["train_frames_per_second_1_thread"] = round(tr.frames_per_second)
        torch.set_num_threads(2)

        # 4. copy detection against training songs
        train_dirs = all_dirs[: args.train_songs]
        print(f"rendering {len(train_dirs)} training songs for the copy check", file=sys.stderr)
        train_frames = [
            lm.normalize(f) for f in _render_frames(train_dirs, cfg, offset=args.offset, seconds=args.seconds)
        ]
        runs = []
        for g in gens:
            rep = kpop.copy_score(lm.normalize(g.spectrogram.T), train_frames, group=cfg.group)
            runs.append(rep)
        control = kpop.copy_score(train_frames[0][500:2375], train_frames, group=cfg.group)
        unseen = [kpop.copy_score(lm.normalize(f[:1875]), train_frames, group=cfg.group) for f in test]
        report["copy_detection"] = {
            "threshold": runs[0].threshold,
            "generated_longest_run_s": [round(r.longest_run_seconds, 2) for r in runs],
            "generated_near_fraction": [round(r.near_fraction, 3) for r in runs],
            "unseen_songs_longest_run_s": [round(r.longest_run_seconds, 2) for r in unseen],
            "unseen_songs_near_fraction": [round(r.near_fraction, 3) for r in unseen],
            "control_verbatim_30s_longest_run_s": round(control.longest_run_seconds, 2),
        }

    if args.json:
        print(json.dumps(report))
    else:
        for k, v in report.items():
            print(f"{k}: {json.dumps(v)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
