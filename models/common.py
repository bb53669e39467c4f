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
import re
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

FORMAT_VERSION = 1
CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
RESULTS_DIR = Path(__file__).resolve().parent / "results"

PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_PC_OF = {
    "C": 0, "B#": 0, "C#": 1, "Db": 1, "D": 2, "D#": 3, "Eb": 3, "E": 4, "Fb": 4, "E#": 5, "F": 5,
    "F#": 6, "Gb": 6, "G": 7, "G#": 8, "Ab": 8, "A": 9, "A#": 10, "Bb": 10, "B": 11, "Cb": 11,
}  # fmt: skip

#: Chord qualities the models know, in token order. ``N`` (no chord) is handled separately.
QUALITIES = ("maj", "min", "dim", "aug", "sus4", "sus2", "7", "maj7", "min7", "hdim7", "dim7", "maj6", "min6")
#: Chord tones (semitones above the root) of each quality.
QUALITY_INTERVALS = {
    "maj": (0, 4, 7), "min": (0, 3, 7), "dim": (0, 3, 6), "aug": (0, 4, 8), "sus4": (0, 5, 7),
    "sus2": (0, 2, 7), "7": (0, 4, 7, 10), "maj7": (0, 4, 7, 11), "min7": (0, 3, 7, 10),
    "hdim7": (0, 3, 6, 10), "dim7": (0, 3, 6, 9), "maj6": (0, 4, 7, 9), "min6": (0, 3, 7, 9),
}  # fmt: skip
_QUALITY_ALIASES = {
    "": "maj", "M": "maj", "major": "maj", "m": "min", "minor": "min", "5": "maj", "1": "maj",
    "maj9": "maj7", "min9": "min7", "m7": "min7", "9": "7", "11": "7", "13": "7", "7sus4": "sus4",
    "sus": "sus4", "minmaj7": "min", "aug7": "aug", "dom7": "7", "6": "maj6", "m6": "min6",
    "dim6": "dim", "hdim": "hdim7", "min11": "min7", "maj11": "maj7", "maj13": "maj7", "min13": "min7",
}  # fmt: skip

MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
NATURAL_MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)
MODES = ("major", "minor")


class Note(NamedTuple):
    """One note of a generated part: times in beats, MIDI pitch and velocity (1-127)."""

    start_beat: float
    end_beat: float
    pitch: int
    velocity: int


class Chord(NamedTuple):
    """A parsed chord label: root pitch class (0-11, ``None`` for no chord) and quality."""

    root: int | None
    quality: str


def model_error(message: str) -> Exception:
    """Return a :class:`core.errors.ModelError` (imported lazily so ``models`` stays light)."""
    from core.errors import ModelError

    return ModelError(message)


def input_error(message: str) -> Exception:
    """Return a :class:`core.errors.InputError` for a bad sampling argument."""
    from core.errors import InputError

    return InputError(message)


def pitch_class(name: str) -> int:
    """Pitch class (0-11) of a note name such as ``"C#"``, ``"Bb"`` or ``"g"``.

    Raises
    ------
    core.errors.InputError
        If the name is not a note name A-G with an optional ``#``/``b``.
    """
    key = name.strip()
    key = key[:1].upper() + key[1:]
    if key not in _PC_OF:
        raise input_error(f"unknown note name {name!r}; expected A-G with an optional '#' or 'b'")
    return _PC_OF[key]


def normalize_quality(text: str) -> str:
    """Map a Harte/POP909-style chord quality (``min7``, ``sus4(b7)``, ``maj/3``) to :data:`QUALITIES`."""
    q = text.split("/")[0]
    q = re.sub(r"\(.*\)", "", q).strip()
    if q in QUALITY_INTERVALS:
        return q
    if q in _QUALITY_ALIASES:
        return _QUALITY_ALIASES[q]
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
    """Parse a chord label such as ``"C:maj"``, ``"F#:min7"``, ``"Bb"``, ``"Am"`` or ``"N"``.

    Examples
    --------
    >>> parse_chord("A:min")
    Chord(root=9, quality='min')
    >>> parse_chord("N")
    Chord(root=None, quality='N')
    """
    s = label.strip()
    if s in ("N", "X", "") or s.startswith("N"):
        return Chord(None, "N")
    if ":" in s:
        root_s, q = s.split(":", 1)
    else:
        m = re.match(r"^([A-Ga-g][#b]?)(.*)$", s)
        if not m:
            raise input_error(f"cannot parse chord label {label!r}; expected e.g. 'C:maj', 'A:min' or 'N'")
        root_s, q = m.group(1), m.group(2)
    return Chord(pitch_class(root_s), normalize_quality(q))


def chord_label(root: int, quality: str) -> str:
    """Format a chord as ``"C#:min"`` (sharps for black keys)."""
    return f"{PITCH_CLASSES[root % 12]}:{quality}"


def chord_tones(chord: Chord) -> tuple[int, ...]:
    """Absolute pitch classes of a chord's tones (empty for no chord)."""
    if chord.root is None:
        return ()
    return tuple((chord.root + i) % 12 for i in QUALITY_INTERVALS[chord.quality])


def parse_key(key: str, mode: str | None = None) -> tuple[int, str]:
    """Parse a key into ``(tonic pitch class, mode)``.

    Accepts ``key="A", mode="minor"``, ``key="A minor"``, ``key="A:min"`` or ``key="Am"``.

    Raises
    ------
    core.errors.InputError
        For an unknown tonic or a mode other than ``"major"``/``"minor"``.
    """
    s = key.strip()
    m_found = None
    m = re.match(r"^([A-Ga-g][#b]?)\s*[: ]?\s*(major|minor|maj|min|m)?$", s)
    if not m:
        raise input_error(
            f"cannot parse key {key!r}; expected a tonic like 'C', 'F#' or 'Bb' (optionally 'A minor')"
        )
    tonic = pitch_class(m.group(1))
    if m.group(2):
        m_found = "major" if m.group(2) in ("major", "maj") else "minor"
    if mode is not None:
        if mode not in MODES:
            raise input_error(f"unknown mode {mode!r}; expected one of {list(MODES)}")
        return tonic, mode
    return tonic, m_found or "major"


def scale_pitch_classes(tonic: int, mode: str) -> frozenset[int]:
    """Pitch classes of the major or natural-minor scale on ``tonic``."""
    steps = MAJOR_SCALE if mode == "major" else NATURAL_MINOR_SCALE
    return frozenset((tonic + s) % 12 for s in steps)


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


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


class NumpyLSTM:
    """A numpy copy of a (multi-layer, unidirectional, batch-first) ``torch.nn.LSTM`` for one-step inference.

    Parameters
    ----------
    lstm : torch.nn.LSTM
        The trained module; its weights are copied (float64 for exact agreement with torch up to 1e-5).
    """

    def __init__(self, lstm: Any) -> None:
        self.layers = []
        for k in range(lstm.num_layers):
            w_ih = getattr(lstm, f"weight_ih_l{k}").detach().double().numpy()
            w_hh = getattr(lstm, f"weight_hh_l{k}").detach().double().numpy()
            b = (getattr(lstm, f"bias_ih_l{k}") + getattr(lstm, f"bias_hh_l{k}")).detach().double().numpy()
            self.layers.append((np.ascontiguousarray(w_ih.T), np.ascontiguousarray(w_hh.T), b))
        self.hidden = lstm.hidden_size

    def zero_state(self, batch: int = 1) -> list[tuple[np.ndarray, np.ndarray]]:
        """All-zero ``(h, c)`` per layer for ``batch`` sequences."""
        z = np.zeros((batch, self.hidden))
        return [(z.copy(), z.copy()) for _ in self.layers]

    def step(self, x: np.ndarray, state: list) -> tuple[np.ndarray, list]:
        """Advance one step: ``x`` is ``(batch, input)``; returns the top layer's ``h`` and the new state."""
        new_state = []
        inp = x
        n = self.hidden
        for (w_ih, w_hh, b), (h, c) in zip(self.layers, state, strict=True):
            g = inp @ w_ih + h @ w_hh + b
            i = _sigmoid(g[:, :n])
            f = _sigmoid(g[:, n : 2 * n])
            gg = np.tanh(g[:, 2 * n : 3 * n])
            o = _sigmoid(g[:, 3 * n :])
            c = f * c + i * gg
            h = o * np.tanh(c)
            new_state.append((h, c))
            inp = h
        return inp, new_state


def linear_np(layer: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(W.T, b)`` of a ``torch.nn.Linear`` as float64 numpy arrays."""
    return (
        np.ascontiguousarray(layer.weight.detach().double().numpy().T),
        layer.bias.detach().double().numpy(),
    )


def sample_categorical(logits: np.ndarray, *, rng: np.random.Generator, temperature: float) -> int:
    """Draw an index from ``softmax(logits / temperature)``; ``temperature <= 0`` picks the arg-max."""
    if temperature <= 1e-6:
        return int(np.argmax(logits))
    z = logits / temperature
    z = z - np.max(z)
    p = np.exp(z)
    p /= p.sum()
    return int(rng.choice(p.size, p=p))


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


def make_token_lstm(
    *, vocab: int, cond_dim: int, emb_dim: int, hidden: int, layers: int, dropout: float
) -> Any:
    """Build a ``TokenLSTM`` (its class is created lazily so importing this module does not need torch)."""
    return _token_lstm_class()(
        vocab=vocab, cond_dim=cond_dim, emb_dim=emb_dim, hidden=hidden, layers=layers, dropout=dropout
    )


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

    The LSTM state is kept on the instance: make one stepper per generated sequence.
    """

    def __init__(self, net: Any) -> None:
        self.emb = net.emb.weight.detach().double().numpy()
        self.lstm = NumpyLSTM(net.lstm)
        self.w, self.b = linear_np(net.head)
        self.state = self.lstm.zero_state()

    def step(self, prev_token: int, cond: np.ndarray) -> np.ndarray:
        """Feed one token and its condition vector; return the logits for the next token."""
        x = np.concatenate([self.emb[prev_token], cond])[None, :]
        h, self.state = self.lstm.step(x, self.state)
        return (h @ self.w + self.b)[0]
