"""Melody model: an LSTM over 16th-note steps of a key-relative melody, conditioned on the chords.

Data (POP909 MELODY tracks, see :mod:`models.data_pop909`), transposed so that every song is in C major
or A minor. Each step is one token:

- ``0`` rest, ``1`` hold (the current note goes on),
- ``2 + (rel + 12)``: a new note ``rel`` semitones above the reference tonic, ``rel`` in -12..24
  (the reference tonic is the tonic pitch class placed between MIDI 54 and 65; notes outside are
  moved by octaves).

Each step is conditioned on the current chord (root relative to the tonic, quality), the position in the
4/4 bar and the mode. Training windows where the melody sounds on fewer than half of the steps (intros,
interludes, outros) are skipped, so the model sings rather than waits. Velocity is not modelled: 96 on
beats, 86 off the beat (±5 at random).

Sampling keeps the melody in the key: an onset whose pitch class is neither in the scale (for minor keys
the natural minor plus the raised leading tone) nor a tone of the current chord gets its logit lowered
by :data:`CHROMATIC_PENALTY` (so it is e^-2, about 7 times, less likely than the model says). Rests are
kept to phrase breaks: after :data:`MAX_REST_STEPS` steps (one bar) of rest, the next beat starts a note.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.bass import chords_to_steps
from models.common import (
    MODES,
    QUALITIES,
    Chord,
    Note,
    TokenStepper,
    check_temperature,
    chord_tones,
    input_error,
    make_token_lstm,
    parse_key,
    sample_categorical,
    scale_pitch_classes,
)

REST, HOLD, FIRST_ONSET = 0, 1, 2
REL_LOW, REL_HIGH = -12, 24
VOCAB = FIRST_ONSET + REL_HIGH - REL_LOW + 1
STEPS_PER_BEAT = 4
N_QUALITY = len(QUALITIES) + 1
COND_DIM = 12 + N_QUALITY + 16 + 2
CHROMATIC_PENALTY = 2.0
MAX_REST_STEPS = 16
MIN_COVERAGE = 0.5


@dataclass(frozen=True)
class MelodyConfig:
    """Hyper-parameters of the melody LSTM."""

    vocab: int = VOCAB
    cond_dim: int = COND_DIM
    emb_dim: int = 24
    hidden: int = 128
    layers: int = 2
    dropout: float = 0.1


def build_model(cfg: MelodyConfig):
    """The ``nn.Module`` for ``cfg`` (a token LSTM, see :func:`models.common.make_token_lstm`)."""
    return make_token_lstm(cfg)


def tonic_reference(tonic: np.ndarray | int) -> np.ndarray:
    """MIDI pitch of the tonic between 54 and 65 (the zero of the relative pitch tokens)."""
    t = np.asarray(tonic, dtype=np.int64)
    return 60 + (t + 6) % 12 - 6


def condition(*, rel_root: np.ndarray, quality: np.ndarray, pos: np.ndarray, minor: np.ndarray) -> np.ndarray:
    """Condition features ``(..., COND_DIM)``.

    From the chord root relative to the tonic (-1 = no chord), its quality, the bar position and the mode.
    """
    rel_root = np.asarray(rel_root)
    shape = rel_root.shape
    out = np.zeros((*shape, COND_DIM), dtype=np.float32)
    idx = np.indices(shape)
    has = rel_root >= 0
    out[(*idx, np.where(has, rel_root, 0))] = has
    out[(*idx, 12 + np.where(has, quality, N_QUALITY - 1))] = 1.0
    out[(*idx, 12 + N_QUALITY + np.asarray(pos) % 16)] = 1.0
    out[(*idx, 12 + N_QUALITY + 16 + np.asarray(minor).astype(np.int64))] = 1.0
    return out


def tokens_from_line(on: np.ndarray, hold: np.ndarray, tonic: np.ndarray) -> np.ndarray:
    """Tokens of a melody from per-step onset pitches (-1 none), hold flags and key tonics (pitch classes)."""
    tok = np.where(hold, HOLD, REST).astype(np.int64)
    has = on >= 0
    ref = tonic_reference(tonic)
    rel = np.where(has, on - ref, 0)
    while np.any(rel < REL_LOW):
        rel[rel < REL_LOW] += 12
    while np.any(rel > REL_HIGH):
        rel[rel > REL_HIGH] -= 12
    tok[has] = FIRST_ONSET + rel[has] - REL_LOW
    return tok


def sample(
    model,
    *,
    key: str,
    mode: str,
    chords: list[tuple[float, float, str]],
    beats: int,
    seed: int,
    temperature: float = 1.0,
    register: int = 72,
    density: float = 1.0,
) -> list[Note]:
    """Generate a melody over a chord progression in a key (4/4, 16th-note grid).

    Parameters
    ----------
    model : nn.Module
        A trained melody model (``core.loaders.load_melody()``).
    key : str
        Tonic such as ``"C"``, ``"F#"``, ``"Bb"``.
    mode : {"major", "minor"}
        Mode of the key.
    chords : list of (float, float, str)
        ``(start_beat, end_beat, label)`` with absolute roots, e.g. ``(0, 4, "A:min")``.
    beats : int
        Length in beats, 1-4096.
    seed : int
        Random seed; the same seed gives the same melody.
    temperature : float
        Sampling temperature (0 = most likely token each step, 1 = as trained, up to 5).
    register : int
        MIDI pitch around which the melody sits, 48-96 (72 = C5, the trained register).
    density : float
        Multiplies the odds of starting a new note at each step (0.25-4; 1 = as trained).

    Returns
    -------
    list of Note
        ``Note(start_beat, end_beat, pitch, velocity)`` sorted by start.

    Raises
    ------
    core.errors.InputError
        For an unknown key/mode, unparsable chords or out-of-range numbers.

    Examples
    --------
    >>> from core.loaders import load_melody  # doctest: +SKIP
    >>> chords = [(0, 4, "A:min"), (4, 8, "F:maj")]
    >>> notes = sample(load_melody(), key="A", mode="minor", chords=chords, beats=8, seed=0)  # doctest: +SKIP
    >>> in_scale_ratio(notes, key="A", mode="minor")  # doctest: +SKIP
    1.0
    """
    if mode not in MODES:
        raise input_error(f"unknown mode {mode!r}; expected one of {list(MODES)}")
    tonic, _ = parse_key(key, mode)
    if not isinstance(beats, int | np.integer) or not 1 <= beats <= 4096:
        raise input_error(f"beats must be an integer between 1 and 4096, got {beats!r}")
    if not isinstance(register, int | np.integer) or not 48 <= register <= 96:
        raise input_error(f"register must be a MIDI pitch between 48 and 96, got {register!r}")
    if not 0.25 <= float(density) <= 4.0:
        raise input_error(f"density must be between 0.25 and 4, got {density!r}")
    temp = check_temperature(temperature)
    n = int(beats) * STEPS_PER_BEAT
    root, quality = chords_to_steps(list(chords), n_steps=n, steps_per_beat=STEPS_PER_BEAT)
    rel_root = np.where(root >= 0, (root - tonic) % 12, -1)
    pos = np.arange(n) % 16
    cond = condition(rel_root=rel_root, quality=quality, pos=pos, minor=np.full(n, mode == "minor"))
    ref = int(tonic_reference(tonic)) + 12 * round((int(register) - 72) / 12)
    rng = np.random.default_rng(seed)
    stepper = TokenStepper(model, cond)
    bias = np.zeros(VOCAB)
    bias[FIRST_ONSET:] = np.log(float(density))
    onset_pc = (ref + np.arange(REL_LOW, REL_HIGH + 1)) % 12
    allowed = set(key_scale(tonic, mode))
    penalties: dict[tuple[int, int], np.ndarray] = {}
    prev = REST
    rest_run = 0
    toks = np.zeros(n, dtype=np.int64)
    for k in range(n):
        chord_key = (int(root[k]), int(quality[k]))
        if chord_key not in penalties:
            chord = Chord(None if root[k] < 0 else int(root[k]), QUALITIES[int(quality[k])])
            ok = list(allowed | set(chord_tones(chord)))
            pen = bias.copy()
            pen[FIRST_ONSET:] -= CHROMATIC_PENALTY * ~np.isin(onset_pc, ok)
            penalties[chord_key] = pen
        logits = stepper.step(prev, k) + penalties[chord_key]
        if prev == REST:
            logits[HOLD] = -np.inf
            if rest_run >= MAX_REST_STEPS and k % STEPS_PER_BEAT == 0:
                logits[REST] = -np.inf
        toks[k] = prev = sample_categorical(logits, rng=rng, temperature=temp)
        rest_run = rest_run + 1 if prev == REST else 0
    notes: list[Note] = []
    k = 0
    while k < n:
        if toks[k] >= FIRST_ONSET:
            j = k + 1
            while j < n and toks[j] == HOLD:
                j += 1
            pitch = int(np.clip(ref + int(toks[k]) - FIRST_ONSET + REL_LOW, 0, 127))
            vel = int(np.clip((96 if k % STEPS_PER_BEAT == 0 else 86) + rng.integers(-5, 6), 1, 127))
            notes.append(Note(k / STEPS_PER_BEAT, j / STEPS_PER_BEAT, pitch, vel))
            k = j
        else:
            k += 1
    return notes


def key_scale(tonic: int, mode: str) -> frozenset[int]:
    """Pitch classes a melody may use freely: the major scale, or natural minor plus the leading tone."""
    scale = set(scale_pitch_classes(tonic, mode))
    if mode == "minor":
        scale.add((tonic + 11) % 12)
    return frozenset(scale)


def in_scale_ratio(notes: list[Note], *, key: str, mode: str) -> float:
    """Share of notes whose pitch class is in :func:`key_scale` of the key; 1.0 for no notes."""
    if not notes:
        return 1.0
    tonic, mode = parse_key(key, mode)
    scale = key_scale(tonic, mode)
    return float(np.mean([n.pitch % 12 in scale for n in notes]))
