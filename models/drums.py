"""Drum groove model: a style-conditioned LSTM over 16th-note steps of 9 drum classes (GrooVAE classes).

Per step the network reads the previous step's hits, velocities and micro-timing offsets, a style
embedding, the position in the bar and an optional *tap* (the onset strength the user or an analysed
song wants at this step, as in Magenta's Drumify). It predicts 9 Bernoulli hit logits plus a velocity
and an offset for each class. Trained on the Groove MIDI Dataset (see :mod:`models.train`).

Examples
--------
>>> from core.loaders import load_drums               # doctest: +SKIP
>>> pat = sample(load_drums(), bars=4, style="funk", seed=1)  # doctest: +SKIP
>>> pat.hits.shape                                     # doctest: +SKIP
(64, 9)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from models.common import NumpyLSTM, check_temperature, input_error, linear_np
from models.data_groove import DRUM_CLASS_PITCHES, DRUM_CLASSES, STEPS_PER_BAR

__all__ = [
    "DRUM_CLASSES",
    "DRUM_CLASS_PITCHES",
    "STYLES",
    "STYLE_ALIASES",
    "DrumPattern",
    "DrumsConfig",
    "DrumsLSTM",
    "resolve_style",
    "sample",
]

#: Styles of the Groove MIDI Dataset (first token of its ``style`` column), most frequent first.
STYLES = (
    "rock", "funk", "hiphop", "jazz", "latin", "afrocuban", "punk", "neworleans", "soul", "country", "pop",
    "reggae", "gospel", "afrobeat", "dance", "blues", "highlife", "middleeastern",
)  # fmt: skip
#: Common genre names mapped to the closest Groove style.
STYLE_ALIASES = {
    "hip-hop": "hiphop", "hip hop": "hiphop", "rap": "hiphop", "trap": "hiphop", "lofi": "hiphop",
    "lo-fi": "hiphop", "r&b": "soul", "rnb": "soul", "edm": "dance", "electronic": "dance", "house": "dance",
    "disco": "dance", "techno": "dance", "kpop": "pop", "k-pop": "pop", "metal": "punk", "indie": "rock",
    "swing": "jazz", "bossa": "latin", "bossa nova": "latin", "samba": "latin", "salsa": "afrocuban",
    "afro": "afrobeat", "ballad": "pop", "folk": "country", "ska": "reggae", "dancehall": "reggae",
}  # fmt: skip
N_CLASSES = len(DRUM_CLASSES)
STEP_FEATURES = 3 * N_CLASSES  # hits, velocities, offsets of the previous step


@dataclass(frozen=True)
class DrumsConfig:
    """Hyper-parameters of :class:`DrumsLSTM`."""

    n_styles: int = len(STYLES)
    style_dim: int = 8
    hidden: int = 192
    layers: int = 2
    dropout: float = 0.1
    steps_per_bar: int = STEPS_PER_BAR


@dataclass
class DrumPattern:
    """A generated drum pattern on a 16th-note grid.

    Attributes
    ----------
    hits : np.ndarray
        ``(steps, 9)`` bool, one column per :data:`DRUM_CLASSES`.
    velocity : np.ndarray
        ``(steps, 9)`` float32 in 0..1 (0 where there is no hit).
    offset : np.ndarray
        ``(steps, 9)`` float32 in -0.5..0.5: micro-timing in steps (0 where there is no hit).
    """

    hits: np.ndarray
    velocity: np.ndarray
    offset: np.ndarray

    @property
    def steps(self) -> int:
        """Number of 16th-note steps."""
        return int(self.hits.shape[0])


class DrumsLSTM(nn.Module):
    """The drum LSTM (see the module docstring). ``forward`` runs whole sequences (teacher forcing)."""

    def __init__(self, cfg: DrumsConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.style_emb = nn.Embedding(cfg.n_styles, cfg.style_dim)
        self.input_size = STEP_FEATURES + cfg.style_dim + cfg.steps_per_bar + 2
        self.lstm = nn.LSTM(
            self.input_size, cfg.hidden, num_layers=cfg.layers, batch_first=True,
            dropout=cfg.dropout if cfg.layers > 1 else 0.0,
        )  # fmt: skip
        self.head = nn.Linear(cfg.hidden, 3 * N_CLASSES)

    def features(
        self,
        prev: torch.Tensor,
        style: torch.Tensor,
        pos: torch.Tensor,
        tap: torch.Tensor,
        tap_mask: torch.Tensor,
    ) -> torch.Tensor:
        """LSTM input from ``prev (B,T,27)``, ``style (B,)``, ``pos (B,T)``, ``tap``/``tap_mask (B,T)``."""
        b, t, _ = prev.shape
        s = self.style_emb(style)[:, None, :].expand(b, t, -1)
        p = nn.functional.one_hot(pos, self.cfg.steps_per_bar).float()
        return torch.cat([prev, s, p, (tap * tap_mask)[..., None], tap_mask[..., None]], dim=-1)

    def forward(
        self,
        prev: torch.Tensor,
        style: torch.Tensor,
        pos: torch.Tensor,
        tap: torch.Tensor,
        tap_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return ``(hit_logits, velocity, offset)``, each ``(B, T, 9)``."""
        h, _ = self.lstm(self.features(prev, style, pos, tap, tap_mask))
        out = self.head(h)
        logits, v, o = out.split(N_CLASSES, dim=-1)
        return logits, torch.sigmoid(v), 0.5 * torch.tanh(o)


def resolve_style(style: str, styles: tuple[str, ...] | list[str] = STYLES) -> int:
    """Index of ``style`` (or of its alias, see :data:`STYLE_ALIASES`) in ``styles``.

    Raises
    ------
    core.errors.InputError
        If the style is unknown.
    """
    s = style.strip().lower()
    s = STYLE_ALIASES.get(s, s)
    if s not in styles:
        raise input_error(
            f"unknown drum style {style!r}; expected one of {list(styles)} "
            f"(or an alias: {sorted(STYLE_ALIASES)})"
        )
    return list(styles).index(s)


def sample(
    model: DrumsLSTM,
    *,
    bars: int,
    style: str,
    seed: int,
    temperature: float = 1.0,
    tap: np.ndarray | None = None,
    density: float = 1.0,
    prime: np.ndarray | None = None,
) -> DrumPattern:
    """Generate a drum pattern of ``bars`` 4/4 bars (16 steps each).

    Parameters
    ----------
    model : DrumsLSTM
        A trained model (``core.loaders.load_drums()``).
    bars : int
        Number of bars, 1-512.
    style : str
        One of :data:`STYLES` or an alias in :data:`STYLE_ALIASES`.
    seed : int
        Random seed; the same seed gives the same pattern.
    temperature : float
        Sampling temperature for the hits (0 = most likely hits only, 1 = as trained, up to 5).
    tap : np.ndarray, optional
        ``(bars * 16,)`` onset strengths in 0..1 the drums should follow (e.g. onsets of a song or taps
        of the user); without it the model plays freely.
    density : float
        Multiplies the odds of every hit (0.25-4; 1 = as trained).
    prime : np.ndarray, optional
        ``(k, 9)`` velocities in 0..1 (0 = no hit) of a pattern to continue; it is fed to the model first
        and the returned pattern is its continuation (bar positions continue after ``k`` steps).

    Returns
    -------
    DrumPattern
        ``bars * 16`` steps.

    Raises
    ------
    core.errors.InputError
        For an out-of-range argument or an unknown style.
    """
    if not isinstance(bars, int | np.integer) or not 1 <= bars <= 512:
        raise input_error(f"bars must be an integer between 1 and 512, got {bars!r}")
    temp = check_temperature(temperature)
    if not 0.25 <= float(density) <= 4.0:
        raise input_error(f"density must be between 0.25 and 4, got {density!r}")
    styles = tuple(getattr(model, "meta", {}).get("styles", STYLES))
    style_idx = resolve_style(style, styles)
    steps = int(bars) * STEPS_PER_BAR
    tap_arr = None
    if tap is not None:
        tap_arr = np.asarray(tap, dtype=np.float64).reshape(-1)
        if tap_arr.shape[0] != steps or not np.all(np.isfinite(tap_arr)):
            raise input_error(f"tap must be {steps} finite values (bars * 16), got shape {np.shape(tap)}")
        tap_arr = np.clip(tap_arr, 0.0, 1.0)
    prime_arr = np.zeros((0, N_CLASSES))
    if prime is not None:
        prime_arr = np.asarray(prime, dtype=np.float64)
        if prime_arr.ndim != 2 or prime_arr.shape[1] != N_CLASSES or not np.all(np.isfinite(prime_arr)):
            raise input_error(f"prime must be shaped (steps, {N_CLASSES}), got {np.shape(prime)}")
        prime_arr = np.clip(prime_arr, 0.0, 1.0)

    rng = np.random.default_rng(seed)
    cfg = model.cfg
    net = NumpyLSTM.of(model.lstm)
    w_head, b_head = linear_np(model.head)
    style_vec = model.style_emb.weight.detach().float().numpy()[style_idx]
    log_density = float(np.log(density))
    spb = cfg.steps_per_bar
    k0 = prime_arr.shape[0]
    total = k0 + steps
    # everything but the previous step's drums is known up front: project it in one product
    static = np.zeros((total, net.input_weights.shape[0]), dtype=np.float32)
    static[:, STEP_FEATURES : STEP_FEATURES + len(style_vec)] = style_vec
    static[np.arange(total), STEP_FEATURES + len(style_vec) + np.arange(total) % spb] = 1.0
    if tap_arr is not None:
        static[k0:, -2] = tap_arr
        static[k0:, -1] = 1.0
    pre = net.project(static)
    w_prev = net.input_weights[:STEP_FEATURES]

    state = net.zero_state()
    prev = np.zeros(STEP_FEATURES, dtype=np.float32)
    for k in range(k0):
        _, state = net.step_projected(pre[k] + prev @ w_prev, state)
        v = prime_arr[k]
        prev = np.concatenate([(v > 0), v, np.zeros(N_CLASSES)]).astype(np.float32)
    hits = np.zeros((steps, N_CLASSES), dtype=bool)
    vel = np.zeros((steps, N_CLASSES), dtype=np.float32)
    off = np.zeros((steps, N_CLASSES), dtype=np.float32)
    for k in range(steps):
        h, state = net.step_projected(pre[k0 + k] + prev @ w_prev, state)
        out = h @ w_head + b_head
        logits = out[:N_CLASSES] + log_density
        if temp <= 1e-6:
            hit = logits > 0
        else:
            p = 0.5 + 0.5 * np.tanh(0.5 * logits / temp)
            hit = rng.random(N_CLASSES) < p
        v = 0.5 + 0.5 * np.tanh(0.5 * out[N_CLASSES : 2 * N_CLASSES])
        o = 0.5 * np.tanh(out[2 * N_CLASSES :])
        if temp > 1e-6:
            noise = rng.normal(0.0, min(temp, 1.5), 2 * N_CLASSES)
            v = v + 0.06 * noise[:N_CLASSES]
            o = o + 0.04 * noise[N_CLASSES:]
        v = np.clip(v, 0.05, 1.0) * hit
        o = np.clip(o, -0.5, 0.5) * hit
        hits[k] = hit
        vel[k] = v
        off[k] = o
        prev = np.concatenate([hit, v, o]).astype(np.float32)
    return DrumPattern(hits=hits, velocity=vel, offset=off)
