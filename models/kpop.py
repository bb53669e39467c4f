"""Spectral LSTM of the K-pop generator: config, module and autoregressive sampling.

The model works on log-compressed, per-bin normalized mel magnitude frames of 16 kHz mono audio
(``n_fft=1024``, ``hop=256``, 128 mel bands up to 8 kHz). Frames are grouped ``group`` at a time
(4 frames = 64 ms per step): each LSTM step reads one group and predicts the next group as a
Gaussian with a low-rank covariance (see :class:`SpectralLSTM`), trained with its negative
log-likelihood. Gaussian noise added to the inputs during training (``input_noise``) makes the model
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
    rank : int
        Rank of the low-rank part of the predicted covariance (0: independent values).
    residual : bool
        Predict the next group as the last input frame plus a learned change (the network starts out
        as "repeat the last frame"). Better one-step predictions, but sampled errors add up like a
        random walk when the model is fed its own output, so the default is off.
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
    residual: bool = False
    rank: int = 8

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
        values = {k: v for k, v in data.items() if k in names}
        values.setdefault("residual", False)  # checkpoints written before these options existed
        values.setdefault("rank", 0)
        return cls(**values)

    def to_dict(self) -> dict:
        """Plain dict (for checkpoints and JSON)."""
        return asdict(self)


class SpectralLSTM(nn.Module):
    """LSTM that predicts the next group of normalized mel frames as a low-rank Gaussian.

    The next step ``x`` (``d = n_mels * group`` values) is modelled as
    ``N(mu, B diag(a)^2 B^T + diag(sigma)^2)``: a mean, an independent spread per value and a few
    shared directions ``B`` (a learned ``d x rank`` basis) whose weights ``a`` the network predicts per
    step. The shared directions let sampling make coherent changes (an onset lifts many bands at
    once, a new note moves a whole harmonic series) instead of independent per-band jitter, which
    an autoregressive frame model would otherwise smooth back to a static drone.

    Parameters
    ----------
    cfg : KpopConfig
        Sizes of the model.

    Examples
    --------
    >>> m = SpectralLSTM(KpopConfig(n_mels=8, hidden=16, group=2, rank=3))
    >>> mu, aux, state = m(torch.zeros(3, 5, 16))
    >>> tuple(mu.shape), tuple(aux.shape)
    ((3, 5, 16), (3, 5, 19))
    >>> bool(m.nll(mu, aux, torch.zeros(3, 5, 16)).isfinite())
    True
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
        self.head = nn.Linear(cfg.hidden, 2 * d + cfg.rank)
        if cfg.rank > 0:
            self.basis = nn.Parameter(torch.randn(d, cfg.rank) / math.sqrt(d))
        if cfg.residual:  # start as "repeat the last frame" with unit spread
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

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
        mu : Tensor
            Mean of the next step, shaped like ``x``.
        aux : Tensor
            ``(batch, steps, d + rank)`` spread parameters (log sigma per value, log weight per
            direction) for :meth:`nll` and :meth:`sample`.
        state : tuple of Tensor
            The LSTM state after the last step.
        """
        h = self.inp_drop(torch.relu(self.inp(x)))
        out, state = self.lstm(h, state)
        d = self.cfg.step_dim
        out = self.head(out)
        mu, aux = out[..., :d], out[..., d:]
        if self.cfg.residual:
            mu = mu + x[..., -self.cfg.n_mels :].repeat(*([1] * (x.dim() - 1)), self.cfg.group)
        return mu, aux, state

    def _spread(self, aux: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``log sigma`` per value and the weight ``a`` of each shared direction (``None`` if rank 0)."""
        d = self.cfg.step_dim
        log_sigma = aux[..., :d].clamp(LOG_SCALE_MIN, LOG_SCALE_MAX)
        if self.cfg.rank == 0:
            return log_sigma, None
        return log_sigma, torch.exp(aux[..., d:].clamp(LOG_SCALE_MIN, LOG_SCALE_MAX))

    def nll(self, mu: torch.Tensor, aux: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood per value of ``target`` under the predicted distribution.

        The low-rank case uses the Woodbury identity with ``W = B diag(a)``: the capacitance
        ``C = I + W^T D^-1 W`` is ``rank x rank`` and ``B^T D^-1 B`` is one matrix product with the
        precomputed outer products of the basis columns, so no ``(.., d, rank)`` tensor is built.
        """
        log_sigma, a = self._spread(aux)
        r = target - mu
        inv = torch.exp(-2 * log_sigma)
        maha = (r * r * inv).sum(-1)
        logdet = 2 * log_sigma.sum(-1)
        if a is not None:
            k = self.cfg.rank
            outer = (self.basis.unsqueeze(2) * self.basis.unsqueeze(1)).reshape(-1, k * k)
            m = (inv @ outer).reshape(*inv.shape[:-1], k, k)
            cap = a.unsqueeze(-1) * m * a.unsqueeze(-2) + torch.eye(k)
            chol = torch.linalg.cholesky(cap)
            u = a * ((r * inv) @ self.basis)
            y = torch.linalg.solve_triangular(chol, u.unsqueeze(-1), upper=False).squeeze(-1)
            maha = maha - (y * y).sum(-1)
            logdet = logdet + 2 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
        d = self.cfg.step_dim
        return 0.5 * ((maha + logdet) / d + math.log(2 * math.pi)).mean()

    def sample(
        self, mu: torch.Tensor, aux: torch.Tensor, *, temperature: float, generator: torch.Generator
    ) -> torch.Tensor:
        """Draw a next step; the spread is multiplied by ``temperature`` (``0`` returns ``mu``)."""
        if temperature <= 0:
            return mu
        log_sigma, a = self._spread(aux)
        x = mu + temperature * torch.exp(log_sigma) * torch.randn(mu.shape, generator=generator)
        if a is not None:
            z = torch.randn((*mu.shape[:-1], self.cfg.rank), generator=generator)
            x = x + temperature * (a * z) @ self.basis.T
        return x


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


class NumpyStepper:
    """A numpy float32 copy of a trained :class:`SpectralLSTM` for one-step sampling.

    Same arithmetic as the module in eval mode (checked against it in the tests).

    Parameters
    ----------
    model : SpectralLSTM
        The trained module (its weights are copied).
    """

    def __init__(self, model: SpectralLSTM) -> None:
        cfg = model.cfg
        self.cfg = cfg

        def arr(t: torch.Tensor) -> np.ndarray:
            return np.ascontiguousarray(t.detach().float().numpy())

        self.w_in, self.b_in = arr(model.inp.weight.T), arr(model.inp.bias)
        self.layers = []
        for k in range(cfg.layers):
            w_ih = arr(getattr(model.lstm, f"weight_ih_l{k}").T)
            w_hh = arr(getattr(model.lstm, f"weight_hh_l{k}").T)
            b = arr(getattr(model.lstm, f"bias_ih_l{k}") + getattr(model.lstm, f"bias_hh_l{k}"))
            self.layers.append((w_ih, w_hh, b))
        self.w_head, self.b_head = arr(model.head.weight.T), arr(model.head.bias)
        self.basis_t = arr(model.basis.T) if cfg.rank > 0 else None

    def step(
        self, x: np.ndarray, h: list[np.ndarray], c: list[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], list[np.ndarray]]:
        """One step: input ``x`` ``(d,)`` and per-layer states -> ``mu``, ``aux`` and the new states."""
        n = self.cfg.hidden
        a = np.maximum(x @ self.w_in + self.b_in, 0.0)
        h2, c2 = [], []
        for (w_ih, w_hh, b), hk, ck in zip(self.layers, h, c, strict=True):
            g = a @ w_ih + hk @ w_hh + b
            i_g = 1.0 / (1.0 + np.exp(-g[:n]))
            f_g = 1.0 / (1.0 + np.exp(-g[n : 2 * n]))
            o_g = 1.0 / (1.0 + np.exp(-g[3 * n :]))
            ck = f_g * ck + i_g * np.tanh(g[2 * n : 3 * n])
            a = o_g * np.tanh(ck)
            h2.append(a)
            c2.append(ck)
        out = a @ self.w_head + self.b_head
        d = self.cfg.step_dim
        mu, aux = out[:d], out[d:]
        if self.cfg.residual:
            mu = mu + np.tile(x[-self.cfg.n_mels :], self.cfg.group)
        return mu, aux, h2, c2

    def sample(
        self, mu: np.ndarray, aux: np.ndarray, *, temperature: float, rng: np.random.Generator
    ) -> np.ndarray:
        """Draw a next step (as :meth:`SpectralLSTM.sample`, with a numpy generator)."""
        if temperature <= 0:
            return mu
        d = self.cfg.step_dim
        sigma = np.exp(np.clip(aux[:d], LOG_SCALE_MIN, LOG_SCALE_MAX))
        x = mu + temperature * sigma * rng.standard_normal(d, dtype=np.float32)
        if self.basis_t is not None:
            a = np.exp(np.clip(aux[d:], LOG_SCALE_MIN, LOG_SCALE_MAX))
            x = x + temperature * (a * rng.standard_normal(a.shape[0], dtype=np.float32)) @ self.basis_t
        return x.astype(np.float32)


@torch.no_grad()
def generate(
    model: SpectralLSTM,
    *,
    prime_frames: np.ndarray | torch.Tensor,
    n_frames: int,
    temperature: float = 0.8,
    noise: float = 0.0,
    seed: int = 0,
    guide: np.ndarray | torch.Tensor | None = None,
    guide_weight: float = 0.0,
) -> np.ndarray:
    """Sample new normalized mel frames autoregressively after a prime.

    The prime warms up the LSTM state; then each step draws the next group of frames from the
    predicted distribution with its spread multiplied by ``temperature`` (``0`` takes the
    mean), adds Gaussian ``noise`` to the frames fed back, and clamps them to ``+-FRAME_CLAMP``.
    All randomness comes from one ``numpy.random.Generator`` seeded with ``seed``: the same inputs and
    seed give the same frames. The prime runs through the torch module in one call; the step-by-step
    loop runs on :class:`NumpyStepper` (a few microseconds per operation instead of torch's dispatch
    overhead, and no intra-op threads fighting over a busy CPU).

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
    guide : array_like, optional
        ``(G, n_mels)`` normalized frames blended into the frames fed back (tiled when shorter than
        the output). The output stays the model's own prediction; the guide only steers its input.
    guide_weight : float
        Share of the guide in the fed-back frames, ``0..1``.

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
    rng = np.random.default_rng(int(seed))
    steps = frames_to_steps(prime, cfg.group).unsqueeze(0)
    mu_t, aux_t, (h_t, c_t) = model(steps)
    stepper = NumpyStepper(model)
    mu, aux = mu_t[0, -1].numpy(), aux_t[0, -1].numpy()
    h, c = list(h_t[:, 0].numpy()), list(c_t[:, 0].numpy())
    n_steps = math.ceil(n_frames / cfg.group)
    out = np.empty((n_steps, cfg.step_dim), np.float32)
    g_steps = None
    if guide is not None and guide_weight > 0:
        g = torch.as_tensor(np.asarray(guide, dtype=np.float32))
        if g.ndim != 2 or g.shape[1] != cfg.n_mels or g.shape[0] < cfg.group:
            raise ValueError(f"guide must be (G >= {cfg.group}, {cfg.n_mels}); got {tuple(g.shape)}")
        g_steps = frames_to_steps(g, cfg.group).numpy()
        g_steps = np.tile(g_steps, (math.ceil(n_steps / g_steps.shape[0]), 1))[:n_steps]
    for i in range(n_steps):
        x = np.clip(stepper.sample(mu, aux, temperature=temperature, rng=rng), -FRAME_CLAMP, FRAME_CLAMP)
        out[i] = x
        if i + 1 < n_steps:
            fed = x + np.float32(noise) * rng.standard_normal(x.shape, dtype=np.float32) if noise > 0 else x
            if g_steps is not None:
                fed = (1.0 - guide_weight) * fed + guide_weight * g_steps[i + 1]
            mu, aux, h, c = stepper.step(fed.astype(np.float32), h, c)
    return out.reshape(n_steps * cfg.group, cfg.n_mels)[:n_frames].astype(np.float32)
