"""Bass line model: an LSTM over 16th-note steps that follows a chord progression (and optionally a kick).

Data (POP909, see :mod:`models.data_pop909`): the bass line is the lowest PIANO note below MIDI 60 on a
16th-note grid from the annotated beats. Each step is one token:

- ``0`` rest, ``1`` hold (the current note goes on),
- ``2 + 12 * octave + interval``: a new note ``interval`` semitones (0-11) above the current chord's root
  in octave bucket ``octave`` (0: MIDI 28-39, 1: MIDI 40-51; notes outside 28-51 are moved by octaves).

Writing notes relative to the chord root lets the network learn "root on the downbeat, fifth before the
change" once for all keys. Each step is conditioned on the current chord (absolute root, quality), the
next chord (its root relative to the current one, quality), the number of steps until the change, the
position in the bar and an optional kick channel.

Kick channel. POP909 has no drums, so during training the kick is a proxy made from the bass line itself:
each bass onset is kept with probability 0.75 and 3% of the 8th-note steps get a spurious hit; on half of
the training windows the channel is switched off (mask 0). The network thus learns to put notes where a
kick is without copying it blindly, and plays on its own when no kick is given.

Velocity is not modelled: 100 on the bar's downbeat, 92 on other beats, 84 off the beat (±4 at random).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.common import (
    QUALITIES,
    Note,
    TokenStepper,
    check_temperature,
    input_error,
    make_token_lstm,
    parse_chord,
    sample_categorical,
)

REST, HOLD, FIRST_ONSET = 0, 1, 2
LOW, OCTAVES = 28, 2
HIGH = LOW + 12 * OCTAVES - 1  # 51
VOCAB = FIRST_ONSET + 12 * OCTAVES
STEPS_PER_BEAT = 4
N_QUALITY = len(QUALITIES) + 1  # + "N"
CHANGE_BUCKETS = 9
COND_DIM = 12 + N_QUALITY + 12 + N_QUALITY + CHANGE_BUCKETS + 16 + 2


@dataclass(frozen=True)
class BassConfig:
    """Hyper-parameters of the bass LSTM."""

    vocab: int = VOCAB
    cond_dim: int = COND_DIM
    emb_dim: int = 16
    hidden: int = 128
    layers: int = 2
    dropout: float = 0.1


def build_model(cfg: BassConfig):
    """The ``nn.Module`` for ``cfg`` (a token LSTM, see :func:`models.common.make_token_lstm`)."""
    return make_token_lstm(cfg)


def fold_pitch(pitch: np.ndarray | int, low: int, high: int) -> np.ndarray:
    """Move pitches by whole octaves into ``low..high`` (``high - low >= 11``)."""
    p = np.asarray(pitch, dtype=np.int64).copy()
    while np.any(p < low):
        p[p < low] += 12
    while np.any(p > high):
        p[p > high] -= 12
    return p


def effective_roots(root: np.ndarray, fallback: np.ndarray | int) -> np.ndarray:
    """Chord roots with no-chord steps (-1) filled by the previous chord's root (else ``fallback``)."""
    r = np.asarray(root, dtype=np.int64).copy()
    fb = np.broadcast_to(np.asarray(fallback, dtype=np.int64), r.shape)
    last = -1
    for k in range(len(r)):
        if r[k] >= 0:
            last = r[k]
        else:
            r[k] = last if last >= 0 else fb[k]
    return r


def chord_context(root: np.ndarray, quality: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each step: root of the next different chord, its quality, and steps until the change.

    ``root`` is -1 for no chord, ``quality`` indexes :data:`QUALITIES`. The last chord's "next" is itself.
    """
    n = len(root)
    if n == 0:
        z = np.zeros(0, dtype=np.int64)
        return z, z, z
    change = np.r_[True, (root[1:] != root[:-1]) | (quality[1:] != quality[:-1])]
    seg_start = np.flatnonzero(change)
    seg_id = np.cumsum(change) - 1
    seg_end = np.r_[seg_start[1:], n]
    to_change = seg_end[seg_id] - np.arange(n)
    nxt = np.minimum(seg_id + 1, len(seg_start) - 1)
    return root[seg_start[nxt]], quality[seg_start[nxt]], to_change


def condition(
    *,
    root: np.ndarray,
    quality: np.ndarray,
    next_root: np.ndarray,
    next_quality: np.ndarray,
    to_change: np.ndarray,
    pos: np.ndarray,
    kick: np.ndarray,
    kick_mask: np.ndarray,
) -> np.ndarray:
    """Condition features ``(..., COND_DIM)`` float32 from per-step integer arrays.

    ``root``/``next_root`` are absolute pitch classes or -1 (no chord); ``quality``/``next_quality``
    index :data:`QUALITIES`; ``kick``/``kick_mask`` are floats in 0..1.
    """
    root = np.asarray(root)
    shape = root.shape
    out = np.zeros((*shape, COND_DIM), dtype=np.float32)
    has = root >= 0
    q = np.where(has, quality, N_QUALITY - 1)
    nhas = np.asarray(next_root) >= 0
    nq = np.where(nhas, next_quality, N_QUALITY - 1)
    rel_next = np.where(nhas & has, (np.asarray(next_root) - root) % 12, 0)
    idx = np.indices(shape)
    o = 0
    out[(*idx, np.where(has, root, 0) + o)] = has
    o += 12
    out[(*idx, q + o)] = 1.0
    o += N_QUALITY
    out[(*idx, rel_next + o)] = nhas
    o += 12
    out[(*idx, nq + o)] = 1.0
    o += N_QUALITY
    out[(*idx, np.minimum((np.asarray(to_change) + 1) // 2, CHANGE_BUCKETS - 1) + o)] = 1.0
    o += CHANGE_BUCKETS
    out[(*idx, np.asarray(pos) % 16 + o)] = 1.0
    o += 16
    out[..., o] = np.asarray(kick) * np.asarray(kick_mask)
    out[..., o + 1] = kick_mask
    return out


def tokens_from_line(on: np.ndarray, hold: np.ndarray, eff_root: np.ndarray) -> np.ndarray:
    """Tokens of a bass line given per-step onset pitches (-1 none), hold flags and effective roots."""
    tok = np.where(hold, HOLD, REST).astype(np.int64)
    has = on >= 0
    p = fold_pitch(np.where(has, on, LOW), LOW, HIGH)
    octave = (p - LOW) // 12
    interval = (p - eff_root) % 12
    tok[has] = FIRST_ONSET + 12 * octave[has] + interval[has]
    return tok


def token_pitch(token: int, root: int) -> int:
    """MIDI pitch (28-51) of an onset token over a chord root (pitch class)."""
    octave, interval = divmod(token - FIRST_ONSET, 12)
    pc = (root + interval) % 12
    return LOW + 12 * octave + (pc - LOW) % 12


def chords_to_steps(
    chords: list[tuple[float, float, str]], *, n_steps: int, steps_per_beat: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-step ``(root, quality index)`` arrays from ``(start_beat, end_beat, label)`` chords (-1 = none)."""
    root = np.full(n_steps, -1, dtype=np.int64)
    quality = np.zeros(n_steps, dtype=np.int64)
    for item in chords:
        try:
            start, end, label = item
            start, end = float(start), float(end)
        except (TypeError, ValueError) as exc:
            raise input_error(f"a chord must be (start_beat, end_beat, label), got {item!r}") from exc
        if not (np.isfinite(start) and np.isfinite(end)) or end <= start:
            raise input_error(f"chord {item!r} must have finite start_beat < end_beat")
        ch = parse_chord(str(label))
        a = max(round(start * steps_per_beat), 0)
        b = min(round(end * steps_per_beat), n_steps)
        if ch.root is None or b <= a:
            continue
        root[a:b] = ch.root
        quality[a:b] = QUALITIES.index(ch.quality)
    return root, quality


def sample(
    model,
    *,
    chords: list[tuple[float, float, str]],
    steps_per_beat: int,
    beats: int,
    beats_per_bar: int = 4,
    seed: int,
    temperature: float = 1.0,
    kick: np.ndarray | None = None,
    register: int = 36,
) -> list[Note]:
    """Generate a bass line over a chord progression.

    Parameters
    ----------
    model : nn.Module
        A trained bass model (``core.loaders.load_bass()``).
    chords : list of (float, float, str)
        ``(start_beat, end_beat, label)`` such as ``(0, 4, "C:maj")``; beats not covered have no chord.
    steps_per_beat : {1, 2, 4}
        Grid of note onsets (quarters, 8ths or 16ths) and of ``kick``. The model runs on 16ths and only
        places onsets on this grid.
    beats : int
        Length in beats, 1-4096.
    beats_per_bar : int
        Beats per bar, 1-8 (the model was trained on 4/4).
    seed : int
        Random seed; the same seed gives the same line.
    temperature : float
        Sampling temperature (0 = most likely token each step, 1 = as trained, up to 5).
    kick : np.ndarray, optional
        ``(beats * steps_per_beat,)`` kick strengths in 0..1; the bass tends to play with the kick.
    register : int
        MIDI pitch around which the line sits, 28-55 (36 = C2, the trained register).

    Returns
    -------
    list of Note
        ``Note(start_beat, end_beat, pitch, velocity)`` sorted by start, pitches within 28-55.

    Raises
    ------
    core.errors.InputError
        For out-of-range arguments or unparsable chord labels.

    Examples
    --------
    >>> from core.loaders import load_bass  # doctest: +SKIP
    >>> chords = [(0, 4, "C:maj"), (4, 8, "G:maj")]
    >>> notes = sample(load_bass(), chords=chords, steps_per_beat=2, beats=8, seed=0)  # doctest: +SKIP
    >>> notes[0]  # doctest: +SKIP
    Note(start_beat=0.0, end_beat=1.0, pitch=36, velocity=101)
    """
    if steps_per_beat not in (1, 2, 4):
        raise input_error(f"steps_per_beat must be 1, 2 or 4, got {steps_per_beat!r}")
    if not isinstance(beats, int | np.integer) or not 1 <= beats <= 4096:
        raise input_error(f"beats must be an integer between 1 and 4096, got {beats!r}")
    if not isinstance(beats_per_bar, int | np.integer) or not 1 <= beats_per_bar <= 8:
        raise input_error(f"beats_per_bar must be an integer between 1 and 8, got {beats_per_bar!r}")
    if not isinstance(register, int | np.integer) or not 28 <= register <= 55:
        raise input_error(f"register must be a MIDI pitch between 28 and 55, got {register!r}")
    temp = check_temperature(temperature)
    n = int(beats) * STEPS_PER_BEAT
    ratio = STEPS_PER_BEAT // steps_per_beat
    kick16 = np.zeros(n)
    kmask = 0.0
    if kick is not None:
        k = np.asarray(kick, dtype=np.float64).reshape(-1)
        if k.shape[0] != beats * steps_per_beat or not np.all(np.isfinite(k)):
            raise input_error(
                f"kick must hold beats * steps_per_beat = {beats * steps_per_beat} finite values"
            )
        kick16[::ratio] = np.clip(k, 0.0, 1.0)
        kmask = 1.0
    root, quality = chords_to_steps(list(chords), n_steps=n, steps_per_beat=STEPS_PER_BEAT)
    next_root, next_q, to_change = chord_context(root, quality)
    step_in_bar = np.arange(n) % (int(beats_per_bar) * STEPS_PER_BEAT)
    pos = step_in_bar % 16
    cond = condition(
        root=root, quality=quality, next_root=next_root, next_quality=next_q, to_change=to_change, pos=pos,
        kick=kick16, kick_mask=np.full(n, kmask),
    )  # fmt: skip
    eff = effective_roots(root, 0)
    shift = 12 * round((int(register) - 36) / 12)
    rng = np.random.default_rng(seed)
    stepper = TokenStepper(model, cond)
    on_grid_mask = np.zeros(VOCAB)
    off_grid_mask = np.zeros(VOCAB)
    off_grid_mask[FIRST_ONSET:] = -np.inf
    prev = REST
    toks = np.zeros(n, dtype=np.int64)
    for k in range(n):
        logits = stepper.step(prev, k) + (on_grid_mask if k % ratio == 0 else off_grid_mask)
        if prev == REST:
            logits[HOLD] = -np.inf
        tok = sample_categorical(logits, rng=rng, temperature=temp)
        toks[k] = tok
        prev = tok
    notes: list[Note] = []
    k = 0
    while k < n:
        if toks[k] >= FIRST_ONSET:
            j = k + 1
            while j < n and toks[j] == HOLD:
                j += 1
            pitch = int(fold_pitch(token_pitch(int(toks[k]), int(eff[k])) + shift, 28, 55))
            beat_pos = step_in_bar[k]
            base = 100 if beat_pos == 0 else 92 if beat_pos % STEPS_PER_BEAT == 0 else 84
            vel = int(np.clip(base + rng.integers(-4, 5), 1, 127))
            notes.append(Note(k / STEPS_PER_BEAT, j / STEPS_PER_BEAT, pitch, vel))
            k = j
        else:
            k += 1
    return notes
