"""A *trained* feature network for the remix, to compare with the random one (``bench/remix.py``).

The network has the same shape as the product's random one (one 1-D convolution over time with the 1025
STFT bins as channels, ReLU, stride 2) and is trained as the encoder of a convolutional autoencoder
(decoder: the transposed convolution) to reconstruct ``log1p`` magnitude spectrograms of our own data:
POP909 songs (melody, bridge and piano tracks) and Groove MIDI drum performances, rendered with
``midirenderer`` and pretty_midi's ``TimGM6mb.sf2``. Training takes about a minute on one core.

Nothing here ships in the app: the bench decides between the two networks and the product uses the one
that measured better (see the module docstring of :mod:`core.remix`).
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _render_file(path: Path, seconds: float) -> np.ndarray:
    import pretty_midi

    from bench.remix import _render

    pm = pretty_midi.PrettyMIDI(str(path))
    for inst in pm.instruments:  # cut every event past the excerpt (the renderer plays to the last event)
        inst.notes = [n for n in inst.notes if n.start < seconds]
        for n in inst.notes:
            n.end = min(n.end, seconds)
        inst.control_changes = [c for c in inst.control_changes if c.time < seconds]
        inst.pitch_bends = [b for b in inst.pitch_bends if b.time < seconds]
    pm.lyrics = [x for x in pm.lyrics if x.time < seconds]
    pm.text_events = [x for x in pm.text_events if x.time < seconds]
    return _render(pm, seconds)


def training_clips(
    data: Path = DEFAULT_DATA, *, songs: int = 6, drums: int = 6, seconds: float = 20.0, seed: int = 0
):
    """Log-magnitude spectrograms ``(1025, frames)`` (torch) of rendered POP909 songs and Groove drums."""
    import torch

    from core.remix import WORK_SR, _resample, _stft

    rng = random.Random(seed)
    pop = sorted((data / "pop909").glob("[0-9][0-9][0-9]/[0-9][0-9][0-9].mid"))
    groove = sorted((data / "groove").glob("drummer*/**/*.mid"))
    if not pop or not groove:
        raise FileNotFoundError(f"POP909 / Groove MIDI files not found under {data}")
    files = rng.sample(pop, min(songs, len(pop))) + rng.sample(groove, min(drums, len(groove)))
    specs = []
    for path in files:
        y = _render_file(path, seconds)
        mono = _resample(y.mean(axis=0), sr_in=44100, sr_out=WORK_SR)
        rms = float(np.sqrt(np.mean(mono**2)))
        if rms < 1e-4:
            continue
        mono = mono * (0.1 / rms)
        with torch.no_grad():
            specs.append(torch.log1p(_stft(torch.from_numpy(mono), torch).abs()))
    return specs


def train_network(
    *,
    n_filters: int,
    kernel: int,
    stride: int = 2,
    steps: int = 120,
    batch: int = 4,
    frames: int = 128,
    data: Path = DEFAULT_DATA,
    seed: int = 0,
    verbose: bool = True,
):
    """Train the encoder of a spectrogram autoencoder; returns its weights ``(n_filters, 1025, kernel)``."""
    import torch

    from core.remix import make_network

    t0 = time.perf_counter()
    specs = training_clips(data, seed=seed)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    enc = torch.nn.Parameter(make_network(specs[0].shape[0], n_filters=n_filters, kernel=kernel, seed=seed))
    dec = torch.nn.Parameter(torch.randn(n_filters, specs[0].shape[0], kernel, generator=gen) * 0.01)
    opt = torch.optim.Adam([enc, dec], lr=1e-3)
    pad = kernel // 2
    for step in range(steps):
        xs = []
        for _ in range(batch):
            s = specs[int(torch.randint(len(specs), (1,), generator=gen))]
            start = int(torch.randint(max(1, s.shape[1] - frames), (1,), generator=gen))
            xs.append(s[:, start : start + frames])
        x = torch.stack(xs)
        h = torch.relu(torch.nn.functional.conv1d(x, enc, padding=pad, stride=stride))
        out = torch.nn.functional.conv_transpose1d(
            h, dec, padding=pad, stride=stride, output_padding=stride - 1
        )
        loss = ((out[..., : x.shape[-1]] - x) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if verbose and (step % 50 == 0 or step == steps - 1):
            print(f"#   autoencoder step {step:4d}: MSE {float(loss.detach()):.4f}", flush=True)
    if verbose:
        print(f"#   trained on {len(specs)} rendered clips in {time.perf_counter() - t0:.0f} s")
    # same features as the product (ReLU(W * x), no bias); rescaled to the random network's weight norm
    w = enc.detach()
    ref = make_network(w.shape[1], n_filters=n_filters, kernel=kernel, seed=seed)
    return w * (ref.norm() / w.norm().clamp_min(1e-12))
