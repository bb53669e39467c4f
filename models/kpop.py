"""Spectral LSTM of the K-pop generator: config, module and autoregressive sampling.

The model works on log-compressed, per-bin normalized mel magnitude frames of 16 kHz mono audio
(``n_fft=1024``, ``hop=256``, 128 mel bands up to 8 kHz). Frames are grouped ``group`` at a time
(4 frames = 64 ms per step): each LSTM step reads one group and predicts the next group as a
Laplace distribution (a mean and a per-value scale), trained with the Laplace negative
log-likelihood. Grouping makes one step long enough that "copy the last frame" is no longer a good
answer, and Gaussian noise added to the inputs during training (``input_noise``) makes the model
robust to its own sampling errors when it is fed its own output at generation time.

This module holds only the definition and sampling (nanoGPT style); features, training and audio
inversion live in :mod:`core.kpop`. A checkpoint is a plain dict loadable with
``torch.load(..., map_location="cpu", weights_only=True)``::

    {"model": state_dict, "config": asdict(cfg), "format_version": FORMAT_VERSION,
     "norm": {"mean": Tensor[n_mels], "std": Tensor[n_mels]},
     "primes": Tensor[P, F, n_mels] (normalized catalogue snippets), "history": {...}, "meta": {...}}
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
from torch import nn

#: Version of the checkpoint layout; bump it when the layout or the features change.
FORMAT_VERSION = 1

#: Bounds of the predicted log-scale (keeps the NLL finite and sampling noise sane).
LOG_SCALE_MIN = -5.0
LOG_SCALE_MAX = 1.5

#: Generated frames are clamped to this range in normalized units (std of each band).
FRAME_CLAMP = 5.0


@dataclass(frozen=True)
class KpopConfig:
    """Hyper-parameters of the features and of :class:`SpectralLSTM`.

    Attributes
    ----------
    sr : int
        Sample rate of the features (Hz).
    n_fft, hop : int
        STFT size and hop in samples (64 ms and 16 ms at 16 kHz).
    n_mels : int
        Mel bands (Slaney scale) between ``fmin`` and ``fmax``.
    fmin, fmax : float
        Mel filter bank range in Hz.
    db_floor : float
        Floor of the log compression in dB relative to full scale (silence maps here).
    group : int
        Frames read and predicted per LSTM step.
    hidden, layers : int
        LSTM width and depth.
    dropout : float
        Dropout between LSTM layers and after the input layer (training only).
    input_noise : float
        Std of Gaussian noise added to the input frames during training (normalized units).
    """

    sr: int = 16000
    n_fft: int = 1024
    hop: int = 256
    n_mels: int = 128
    fmin: float = 0.0
    fmax: float = 8000.0
    db_floor: float = -80.0
    group: int = 4
    hidden: int = 256
    layers: int = 2
    dropout: float = 0.1
    input_noise: float = 0.2

    @property
    def step_dim(self) -> int:
        """Values per LSTM step (``n_mels * group``)."""
        return self.n_mels * self.group

    @property
    def frames_per_second(self) -> float:
        """Spectral frames per second of audio."""
        return self.sr / self.hop

    @classmethod
    def from_dict(cls, data: dict) -> KpopConfig:
        """Build a config from a checkpoint dict, ignoring unknown keys.

        Examples
        --------
        >>> KpopConfig.from_dict({"hidden": 64, "unknown": 1}).hidden
        64
        """
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_dict(self) -> dict:
        """Plain dict (for checkpoints and JSON)."""
        return asdict(self)


class SpectralLSTM(nn.Module):
    """LSTM that predicts the next group of normalized mel frames as a Laplace distribution.

    Parameters
    ----------
    cfg : KpopConfig
        Sizes of the model.

    Examples
    --------
    >>> m = SpectralLSTM(KpopConfig(n_mels=8, hidden=16, group=2))
    >>> mu, log_b, state = m(torch.zeros(3, 5, 16))
    >>> tuple(mu.shape), tuple(log_b.shape)
    ((3, 5, 16), (3, 5, 16))
    """

    def __init__(self, cfg: KpopConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.step_dim
        self.inp = nn.Linear(d, cfg.hidden)
        self.inp_drop = nn.Dropout(cfg.dropout)
        self.lstm = nn.LSTM(
            cfg.hidden,
            cfg.hidden,
            num_layers=cfg.layers,
            dropout=cfg.dropout if cfg.layers > 1 else 0.0,
            batch_first=True,
        )
        self.head = nn.Linear(cfg.hidden, 2 * d)

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Run the LSTM over steps.

        Parameters
        ----------
        x : Tensor
            ``(batch, steps, n_mels * group)`` normalized frames.
        state : tuple of Tensor, optional
            LSTM ``(h, c)`` state to continue from.

        Returns
        -------
        mu, log_b : Tensor
            Mean and log-scale of the next step, each shaped like ``x``.
        state : tuple of Tensor
            The LSTM state after the last step.
        """
        h = self.inp_drop(torch.relu(self.inp(x)))
        out, state = self.lstm(h, state)
        mu, log_b = self.head(out).chunk(2, dim=-1)
        return mu, log_b.clamp(LOG_SCALE_MIN, LOG_SCALE_MAX), state


def laplace_nll(mu: torch.Tensor, log_b: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean Laplace negative log-likelihood (without the constant ``log 2``).

    Examples
    --------
    >>> z = torch.zeros(2, 3)
    >>> float(laplace_nll(z, z, z))
    0.0
    """
    return ((target - mu).abs() * torch.exp(-log_b) + log_b).mean()


def frames_to_steps(frames: torch.Tensor, group: int) -> torch.Tensor:
    """Reshape ``(..., n_frames, n_mels)`` into ``(..., n_frames // group, n_mels * group)``.

    A tail shorter than ``group`` frames is dropped.
    """
    n = (frames.shape[-2] // group) * group
    f = frames[..., :n, :]
    return f.reshape(*f.shape[:-2], n // group, group * f.shape[-1])


def steps_to_frames(steps: torch.Tensor, group: int) -> torch.Tensor:
    """Inverse of :func:`frames_to_steps`."""
    d = steps.shape[-1] // group
    return steps.reshape(*steps.shape[:-2], steps.shape[-2] * group, d)


@torch.no_grad()
def generate(
    model: SpectralLSTM,
    *,
    prime_frames: np.ndarray | torch.Tensor,
    n_frames: int,
    temperature: float = 0.8,
    noise: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """Sample new normalized mel frames autoregressively after a prime.

    The prime warms up the LSTM state; then each step draws the next group of frames from the
    predicted Laplace distribution with its scale multiplied by ``temperature`` (``0`` takes the
    mean), adds Gaussian ``noise`` to the frames fed back, and clamps them to ``+-FRAME_CLAMP``.
    All randomness comes from one ``torch.Generator`` seeded with ``seed``: the same inputs and seed
    give the same frames.

    Parameters
    ----------
    model : SpectralLSTM
        A trained model (put in eval mode here).
    prime_frames : array_like
        ``(P, n_mels)`` normalized frames, ``P >= group`` (a tail shorter than a group is dropped).
    n_frames : int
        Frames to generate (rounded up to whole groups, then cut to ``n_frames``).
    temperature : float
        Scale of the sampling noise relative to the predicted scale, ``0..2``.
    noise : float
        Std of extra Gaussian noise on the fed-back frames (normalized units), ``0..2``.
    seed : int
        Seed of the sampling noise.

    Returns
    -------
    numpy.ndarray
        ``(n_frames, n_mels)`` float32 normalized frames (the prime is not included).

    Examples
    --------
    >>> m = SpectralLSTM(KpopConfig(n_mels=8, hidden=16, group=2))
    >>> out = generate(m, prime_frames=np.zeros((4, 8), np.float32), n_frames=7, seed=1)
    >>> out.shape
    (7, 8)
    """
    cfg = model.cfg
    prime = torch.as_tensor(np.asarray(prime_frames, dtype=np.float32))
    if prime.ndim != 2 or prime.shape[1] != cfg.n_mels or prime.shape[0] < cfg.group:
        raise ValueError(f"prime_frames must be (P >= {cfg.group}, {cfg.n_mels}); got {tuple(prime.shape)}")
    model.eval()
    gen = torch.Generator().manual_seed(int(seed))
    steps = frames_to_steps(prime, cfg.group).unsqueeze(0)
    mu, log_b, state = model(steps)
    mu, log_b = mu[:, -1:], log_b[:, -1:]
    n_steps = math.ceil(n_frames / cfg.group)
    out = torch.empty(n_steps, cfg.step_dim)
    for i in range(n_steps):
        x = mu
        if temperature > 0:
            u = torch.rand(mu.shape, generator=gen) - 0.5
            lap = -torch.sign(u) * torch.log1p(-2 * u.abs()).clamp(min=-30.0)
            x = mu + temperature * torch.exp(log_b) * lap
        x = x.clamp(-FRAME_CLAMP, FRAME_CLAMP)
        out[i] = x[0, 0]
        if i + 1 < n_steps:
            fed = x + noise * torch.randn(x.shape, generator=gen) if noise > 0 else x
            mu, log_b, state = model(fed, state)
    return steps_to_frames(out, cfg.group)[:n_frames].numpy().astype(np.float32)
