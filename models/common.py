"""Shared pieces of the symbolic music models: checkpoints, chord labels, numpy inference, sampling.

Every model in :mod:`models` is a config dataclass + an ``nn.Module`` + a ``sample`` function.
Training lives in :mod:`models.train`. Checkpoints are plain dictionaries::

    {"model": state_dict, "config": asdict(cfg), "format_version": 1, "meta": {...}}

loaded with ``torch.load(path, map_location="cpu", weights_only=True)``.

Sampling runs step by step through small recurrent networks. Doing that with torch costs tens of
microseconds of dispatch per operation, so the sampling loops use :class:`NumpyLSTM`, a numpy copy of a
trained ``nn.LSTM`` (identical arithmetic, verified against torch in the tests), which makes one step
cost a few microseconds.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from core.errors import InputError, ModelError
from core.music import theory
from core.music.theory import CHORD_QUALITIES, NOTE_NAMES_SHARP, QUALITY_ALIASES, split_chord_label

FORMAT_VERSION = 1
CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
RESULTS_DIR = Path(__file__).resolve().parent / "results"

#: Note names with sharps, index = pitch class (from :mod:`core.music.theory`).
PITCH_CLASSES = NOTE_NAMES_SHARP

#: Chord qualities the models know, in token order. ``N`` (no chord) is handled separately.
QUALITIES = ("maj", "min", "dim", "aug", "sus4", "sus2", "7", "maj7", "min7", "hdim7", "dim7", "maj6", "min6")
#: Chord tones (semitones above the root) of each quality (from :data:`core.music.theory.CHORD_QUALITIES`).
QUALITY_INTERVALS = {q: CHORD_QUALITIES[q] for q in QUALITIES}
#: How qualities outside :data:`QUALITIES` are folded into it: the other qualities of
#: :data:`core.music.theory.CHORD_QUALITIES`, then Harte qualities that theory does not know.
#: POP909 uses ``minmaj7`` only. Changing this changes what the trained checkpoints were fed.
_FOLD = {
    "5": "maj", "add9": "maj", "minmaj7": "min", "9": "7", "maj9": "maj7", "min9": "min7",
    "1": "maj", "11": "7", "13": "7", "7sus4": "sus4", "aug7": "aug", "dim6": "dim", "hdim": "hdim7",
    "min11": "min7", "maj11": "maj7", "maj13": "maj7", "min13": "min7",
}  # fmt: skip

#: Key modes the models know.
MODES = ("major", "minor")


class Note(NamedTuple):
    """One note of a generated part: times in beats, MIDI pitch and velocity (1-127)."""

    start_beat: float
    end_beat: float
    pitch: int
    velocity: int


class Chord(NamedTuple):
    """A chord in the models' terms: root pitch class (0-11, ``None`` for no chord) and a :data:`QUALITIES`
    quality (``"N"`` for no chord)."""

    root: int | None
    quality: str


def model_error(message: str) -> Exception:
    """Return a :class:`core.errors.ModelError`."""
    return ModelError(message)


def input_error(message: str) -> Exception:
    """Return a :class:`core.errors.InputError` for a bad sampling argument."""
    return InputError(message)


def normalize_quality(quality: str) -> str:
    """Fold a chord quality as :func:`core.music.theory.split_chord_label` gives it into :data:`QUALITIES`.

    Spellings are resolved with :data:`core.music.theory.QUALITY_ALIASES`, richer chords are folded to
    their nearest model quality (``"9"`` -> ``"7"``, ``"minmaj7"`` -> ``"min"``), and anything else by
    its prefix (``"min..."``, ``"maj..."``, ``"sus..."``, ``"dim..."``, ``"aug..."``; else ``"maj"``).

    Examples
    --------
    >>> normalize_quality("m7"), normalize_quality("maj9"), normalize_quality("sus4")
    ('min7', 'maj7', 'sus4')
    """
    q = QUALITY_ALIASES.get(quality, quality)
    q = _FOLD.get(q, q)
    if q in QUALITY_INTERVALS:
        return q
    if q.startswith("min"):
        return "min7" if "7" in q else "min"
    if q.startswith("maj"):
        return "maj7" if "7" in q else "maj"
    if q.startswith("sus"):
        return "sus2" if q.startswith("sus2") else "sus4"
    if q.startswith("dim"):
        return "dim"
    if q.startswith("aug"):
        return "aug"
    return "maj"


def parse_chord(label: str) -> Chord:
    """Parse a chord label (``"C:maj"``, ``"F#:min7"``, ``"Bb"``, ``"Am"``, ``"N"``) into model terms.

    The label grammar is :func:`core.music.theory.split_chord_label`'s; the quality is folded with
    :func:`normalize_quality` and the bass note is dropped. Any label starting with ``N`` (``"N"``,
    ``"N.C."``) and ``"X"`` mean no chord.

    Raises
    ------
    core.errors.InputError
        If the label is not a chord label.

    Examples
    --------
    >>> parse_chord("A:min")
    Chord(root=9, quality='min')
    >>> parse_chord("N")
    Chord(root=None, quality='N')
    """
    s = label.strip()
    parts = None if s.startswith("N") else split_chord_label(s)
    if parts is None:
        return Chord(None, "N")
    root, quality, _bass = parts
    return Chord(root, normalize_quality(quality))


def chord_tones(chord: Chord) -> tuple[int, ...]:
    """Absolute pitch classes of a chord's tones (empty for no chord)."""
    if chord.root is None:
        return ()
    return tuple((chord.root + i) % 12 for i in QUALITY_INTERVALS[chord.quality])


def parse_key(key: str, mode: str | None = None) -> tuple[int, str]:
    """Parse a key into ``(tonic pitch class, mode)`` with :func:`core.music.theory.parse_key`.

    Accepts ``key="A", mode="minor"``, ``key="A minor"``, ``key="A:min"`` or ``key="Am"``; ``mode``,
    when given, overrides the key's own mode.

    Raises
    ------
    core.errors.InputError
        For an unknown tonic or a mode other than ``"major"``/``"minor"``.
    """
    parsed = theory.parse_key(key)
    mode = parsed.mode if mode is None else mode
    if mode not in MODES:
        raise input_error(f"unknown mode {mode!r}; expected one of {list(MODES)}")
    return parsed.tonic_pc, mode


def scale_pitch_classes(tonic: int, mode: str) -> frozenset[int]:
    """Pitch classes of the major or natural-minor scale on ``tonic``."""
    return frozenset(theory.scale_pitch_classes(tonic, mode))


# ----------------------------------------------------------------------------------------------------------
# checkpoints


def save_checkpoint(path: str | Path, *, model: Any, config: Any, meta: dict) -> Path:
    """Write ``{"model", "config", "format_version", "meta"}`` to ``path`` (atomically, via a temp file)."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ckpt = {
        "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "config": dataclasses.asdict(config),
        "format_version": FORMAT_VERSION,
        "meta": meta,
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(ckpt, tmp)
    tmp.replace(path)
    return path


def load_checkpoint(path: str | Path, *, kind: str, config_cls: type, module_cls: type) -> Any:
    """Load a checkpoint written by :func:`save_checkpoint` into a fresh module in eval mode.

    Parameters
    ----------
    path : str or Path
        Checkpoint file.
    kind : str
        Expected ``meta["kind"]`` (``"drums"``, ``"bass"``, ...): a bass checkpoint never loads as drums.
    config_cls, module_cls : type
        The config dataclass and the ``nn.Module`` built from it (``module_cls(config)``).

    Returns
    -------
    nn.Module
        The model in eval mode with ``.meta`` (the checkpoint's meta dict) attached.

    Raises
    ------
    core.errors.ModelError
        If the file is missing, unreadable, of another format version or kind, or does not fit the module.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise model_error(f"{kind} checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise model_error(
            f"{kind} checkpoint {path} is corrupt or not a torch checkpoint ({exc.__class__.__name__})"
        ) from exc
    if not isinstance(ckpt, dict) or not {"model", "config", "format_version"} <= set(ckpt):
        raise model_error(f"{kind} checkpoint {path} lacks 'model', 'config' or 'format_version'")
    if ckpt["format_version"] != FORMAT_VERSION:
        raise model_error(
            f"{kind} checkpoint {path} has format_version {ckpt['format_version']!r}; "
            f"this code reads format_version {FORMAT_VERSION}"
        )
    meta = ckpt.get("meta") or {}
    if meta.get("kind") != kind:
        raise model_error(f"checkpoint {path} holds a {meta.get('kind')!r} model, not a {kind!r} model")
    fields = {f.name for f in dataclasses.fields(config_cls)}
    cfg_dict = ckpt["config"]
    if not isinstance(cfg_dict, dict) or set(cfg_dict) - fields:
        raise model_error(f"{kind} checkpoint {path} has an incompatible config {cfg_dict!r}")
    try:
        cfg = config_cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg_dict.items()})
        model = module_cls(cfg)
        model.load_state_dict(ckpt["model"])
    except Exception as exc:
        raise model_error(f"{kind} checkpoint {path} does not fit the {kind} model: {exc}") from exc
    model.meta = meta
    model.eval()
    return model


# ----------------------------------------------------------------------------------------------------------
# numpy inference


def sparse_matmul(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``x @ w`` for a 2-D ``x`` with few non-zeros per row (one-hot features), without BLAS.

    A multi-threaded BLAS product of these small matrices can wait tens of milliseconds for its worker
    threads on a busy machine; gathering the rows of ``w`` that the non-zeros select does not.
    """
    rows, cols = np.nonzero(x)  # row-major: each row's non-zeros are consecutive
    out = np.zeros((x.shape[0], w.shape[1]), dtype=np.float32)
    if rows.size == 0:
        return out
    counts = np.bincount(rows, minlength=x.shape[0])
    slot = np.arange(rows.size) - (np.cumsum(counts) - counts)[rows]  # position within its row
    vals = x[rows, cols]
    # the k-th non-zero of every row at once: the same additions in the same order as np.add.at
    # (bit-identical results), without its slow per-element loop
    for k in range(int(counts.max())):
        sel = slot == k
        out[rows[sel]] += vals[sel][:, None] * w[cols[sel]]
    return out


class NumpyLSTM:
    """A numpy float32 copy of a (multi-layer, unidirectional) ``torch.nn.LSTM`` for one-step inference.

    One step of one sequence costs a handful of small matrix products. The weights are pre-scaled so
    that a single ``tanh`` gives all four gates (``sigmoid(x) = 0.5 + 0.5 * tanh(x / 2)``).

    Parameters
    ----------
    lstm : torch.nn.LSTM
        The trained module (its weights are copied).
    """

    def __init__(self, lstm: Any) -> None:
        n = lstm.hidden_size
        scale = np.full(4 * n, 0.5, dtype=np.float32)
        scale[2 * n : 3 * n] = 1.0  # the cell-input gate uses tanh directly
        self.hidden = n
        self.layers: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for k in range(lstm.num_layers):
            w_ih = getattr(lstm, f"weight_ih_l{k}").detach().float().numpy().T * scale
            w_hh = getattr(lstm, f"weight_hh_l{k}").detach().float().numpy().T * scale
            bias = getattr(lstm, f"bias_ih_l{k}") + getattr(lstm, f"bias_hh_l{k}")
            b = bias.detach().float().numpy() * scale
            self.layers.append((np.ascontiguousarray(w_ih), np.ascontiguousarray(w_hh), b.astype(np.float32)))
        #: stacked ``[W_ih; W_hh]`` of the layers above the first (one product per step)
        self.stacked = [np.ascontiguousarray(np.vstack([wi, wh])) for wi, wh, _ in self.layers[1:]]

    @classmethod
    def of(cls, lstm: Any) -> NumpyLSTM:
        """The numpy copy of ``lstm``, made once per module and again only after its weights change
        (kept on the module; copying costs ~1.5 ms, and a song samples a dozen sequences)."""
        version = tuple(p._version for p in lstm.parameters())
        cached = lstm.__dict__.get("_numpy_copy")
        if cached is None or cached[0] != version:
            cached = (version, cls(lstm))
            lstm.__dict__["_numpy_copy"] = cached
        return cached[1]

    @property
    def input_weights(self) -> np.ndarray:
        """Pre-scaled ``W_ih.T`` of the first layer, ``(input, 4 * hidden)``."""
        return self.layers[0][0]

    def zero_state(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """All-zero ``(h, c)`` per layer."""
        z = np.zeros(self.hidden, dtype=np.float32)
        return [(z.copy(), z.copy()) for _ in self.layers]

    def project(self, x: np.ndarray) -> np.ndarray:
        """First-layer input contribution (with bias) of ``x`` shaped ``(input,)`` or ``(steps, input)``.

        Whole sequences of (mostly one-hot) inputs are projected with :func:`sparse_matmul`.
        """
        w, _, b = self.layers[0]
        x = np.asarray(x, dtype=np.float32)
        return (x @ w if x.ndim == 1 else sparse_matmul(x, w)) + b

    def _cell(self, g: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = self.hidden
        t = np.tanh(g)
        c = (0.5 + 0.5 * t[n : 2 * n]) * c + (0.5 + 0.5 * t[:n]) * t[2 * n : 3 * n]
        h = (0.5 + 0.5 * t[3 * n :]) * np.tanh(c)
        return h, c

    def step_projected(self, gx0: np.ndarray, state: list) -> tuple[np.ndarray, list]:
        """Advance one step given the first layer's projected input ``gx0`` (see :meth:`project`)."""
        h0, c0 = state[0]
        h, c = self._cell(gx0 + h0 @ self.layers[0][1], c0)
        new_state = [(h, c)]
        for (_, _, b), w, (hk, ck) in zip(self.layers[1:], self.stacked, state[1:], strict=True):
            h, c = self._cell(np.concatenate([h, hk]) @ w + b, ck)
            new_state.append((h, c))
        return h, new_state

    def step(self, x: np.ndarray, state: list) -> tuple[np.ndarray, list]:
        """Advance one step with input ``x`` ``(input,)``; returns the top layer's ``h`` and the new state."""
        return self.step_projected(self.project(x), state)


def linear_np(layer: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(W.T, b)`` of a ``torch.nn.Linear`` as float32 numpy arrays."""
    return (
        np.ascontiguousarray(layer.weight.detach().float().numpy().T),
        layer.bias.detach().float().numpy(),
    )


def sample_categorical(logits: np.ndarray, *, rng: np.random.Generator, temperature: float) -> int:
    """Draw an index from ``softmax(logits / temperature)``; ``temperature <= 0`` picks the arg-max."""
    if temperature <= 1e-6:
        return int(np.argmax(logits))
    z = np.asarray(logits, dtype=np.float64) / temperature
    cdf = np.cumsum(np.exp(z - np.max(z)))
    return min(int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right")), len(cdf) - 1)


def check_temperature(temperature: float) -> float:
    """Validate a sampling temperature (0 = greedy, up to 5)."""
    t = float(temperature)
    if not math.isfinite(t) or t < 0.0 or t > 5.0:
        raise input_error(f"temperature must be between 0 and 5, got {temperature!r}")
    return t


def one_hot(index: int, size: int) -> np.ndarray:
    """A float64 one-hot vector (all zeros when ``index`` is outside ``0..size-1``)."""
    v = np.zeros(size)
    if 0 <= index < size:
        v[index] = 1.0
    return v


# ----------------------------------------------------------------------------------------------------------
# token sequence model shared by the bass, melody and harmony models


def make_token_lstm(cfg: Any) -> Any:
    """Build a ``TokenLSTM`` from a config with ``vocab, cond_dim, emb_dim, hidden, layers, dropout``.

    The config is attached as ``.cfg``. The class is created lazily so importing this module does not
    need torch.
    """
    m = _token_lstm_class()(
        vocab=cfg.vocab, cond_dim=cfg.cond_dim, emb_dim=cfg.emb_dim, hidden=cfg.hidden, layers=cfg.layers,
        dropout=cfg.dropout,
    )  # fmt: skip
    m.cfg = cfg
    return m


@functools.lru_cache(maxsize=1)
def _token_lstm_class() -> type:
    import torch
    from torch import nn

    class TokenLSTM(nn.Module):
        """Embedding of the previous token + per-step condition features -> LSTM -> next-token logits."""

        def __init__(
            self, *, vocab: int, cond_dim: int, emb_dim: int, hidden: int, layers: int, dropout: float
        ):
            super().__init__()
            self.emb = nn.Embedding(vocab, emb_dim)
            self.lstm = nn.LSTM(
                emb_dim + cond_dim, hidden, num_layers=layers, batch_first=True,
                dropout=dropout if layers > 1 else 0.0,
            )  # fmt: skip
            self.drop = nn.Dropout(dropout)
            self.head = nn.Linear(hidden, vocab)

        def forward(self, prev: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
            """``prev (B, T)`` int64 tokens, ``cond (B, T, C)`` float -> logits ``(B, T, vocab)``."""
            x = torch.cat([self.emb(prev), cond], dim=-1)
            h, _ = self.lstm(x)
            return self.head(self.drop(h))

    return TokenLSTM


class TokenStepper:
    """Numpy one-step inference for a token LSTM (``.emb``, ``.lstm``, ``.head``) of :func:`make_token_lstm`.

    Parameters
    ----------
    net : nn.Module
        The trained token model.
    cond : np.ndarray
        ``(steps, cond_dim)`` condition features of the whole sequence (projected once, up front).

    Notes
    -----
    The LSTM state is kept on the instance: make one stepper per generated sequence.
    """

    def __init__(self, net: Any, cond: np.ndarray) -> None:
        self.lstm = NumpyLSTM.of(net.lstm)
        self.emb = net.emb.weight.detach().float().numpy()
        e = self.emb.shape[1]
        self.w_emb = self.lstm.input_weights[:e]
        self.emb_proj: dict[int, np.ndarray] = {}
        self.cond_proj = self.lstm.project(np.concatenate([np.zeros((len(cond), e)), cond], axis=1))
        self.w, self.b = linear_np(net.head)
        self.state = self.lstm.zero_state()

    def step(self, prev_token: int, k: int) -> np.ndarray:
        """Feed the previous token at step ``k``; return the logits for step ``k``'s token."""
        if prev_token not in self.emb_proj:
            self.emb_proj[prev_token] = self.emb[prev_token] @ self.w_emb
        h, self.state = self.lstm.step_projected(self.emb_proj[prev_token] + self.cond_proj[k], self.state)
        return h @ self.w + self.b
