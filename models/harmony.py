"""Chord progression model: an LSTM over half-bar chord tokens, conditioned on mode and mood.

Chords come from POP909's ``chord_midi.txt``, one per half bar (the chord covering most of it),
with the root written relative to the key's tonic (so every song is effectively in C major or
A minor → tonic 0) and the quality reduced to :data:`HARMONY_QUALITIES`.

Mood. POP909 has no mood labels, so the mood id is derived from the data: the mode of the song's key
and its tempo (median beat rate; "fast" means >= :data:`TEMPO_SPLIT_BPM`):

========  =====  =====
mood      mode   tempo
========  =====  =====
happy     major  fast
chill     major  slow
sad       minor  slow
dark      minor  fast
========  =====  =====

The network is conditioned on the mode and the tempo bucket separately, so at sampling time ``mode``
comes from the requested key and ``mood`` only selects the tempo bucket (``"sad"`` in a major key gives
a slow major progression). :data:`MOOD_ALIASES` maps common mood words onto these four.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.common import (
    MODES,
    PITCH_CLASSES,
    QUALITIES,
    TokenStepper,
    check_temperature,
    input_error,
    make_token_lstm,
    parse_key,
    sample_categorical,
)

HARMONY_QUALITIES = ("maj", "min", "dim", "aug", "sus4", "sus2", "7", "maj7", "min7")
#: :data:`models.common.QUALITIES` -> index into :data:`HARMONY_QUALITIES`.
QUALITY_TO_HARMONY = {
    q: HARMONY_QUALITIES.index({"hdim7": "dim", "dim7": "dim", "maj6": "maj", "min6": "min"}.get(q, q))
    for q in QUALITIES
}
BOS, NO_CHORD, FIRST_CHORD = 0, 1, 2
VOCAB = FIRST_CHORD + 12 * len(HARMONY_QUALITIES)
TEMPO_SPLIT_BPM = 80.0
MOODS = ("happy", "chill", "sad", "dark")
#: mood -> tempo bucket (1 = fast).
MOOD_ENERGY = {"happy": 1, "chill": 0, "sad": 0, "dark": 1}
MOOD_ALIASES = {
    "energetic": "happy", "upbeat": "happy", "uplifting": "happy", "bright": "happy", "party": "happy",
    "joyful": "happy", "calm": "chill", "relaxed": "chill", "romantic": "chill", "dreamy": "chill",
    "peaceful": "chill", "lofi": "chill", "melancholic": "sad", "emotional": "sad", "nostalgic": "sad",
    "dramatic": "dark", "epic": "dark", "tense": "dark", "aggressive": "dark", "intense": "dark",
    "mysterious": "dark",
}  # fmt: skip
PHRASE_POSITIONS = 8  # half bars in a 4-bar phrase
COND_DIM = 2 + 2 + PHRASE_POSITIONS


@dataclass(frozen=True)
class HarmonyConfig:
    """Hyper-parameters of the chord LSTM."""

    vocab: int = VOCAB
    cond_dim: int = COND_DIM
    emb_dim: int = 16
    hidden: int = 128
    layers: int = 2
    dropout: float = 0.2


def build_model(cfg: HarmonyConfig):
    """The ``nn.Module`` for ``cfg`` (a token LSTM, see :func:`models.common.make_token_lstm`)."""
    return make_token_lstm(cfg)


def chord_token(rel_root: int, quality: str) -> int:
    """Token of a chord with root ``rel_root`` semitones above the tonic and a :data:`QUALITIES` quality."""
    return FIRST_CHORD + (rel_root % 12) * len(HARMONY_QUALITIES) + QUALITY_TO_HARMONY[quality]


def token_chord(token: int) -> tuple[int, str] | None:
    """``(rel_root, quality)`` of a chord token, ``None`` for no-chord/BOS."""
    if token < FIRST_CHORD:
        return None
    r, q = divmod(token - FIRST_CHORD, len(HARMONY_QUALITIES))
    return r, HARMONY_QUALITIES[q]


def resolve_mood(mood: str) -> str:
    """Canonical mood (one of :data:`MOODS`) for ``mood`` or its alias.

    Raises
    ------
    core.errors.InputError
        If the mood is unknown.
    """
    m = mood.strip().lower()
    m = MOOD_ALIASES.get(m, m)
    if m not in MOODS:
        raise input_error(f"unknown mood {mood!r}; expected one of {list(MOODS)} or {sorted(MOOD_ALIASES)}")
    return m


def condition(*, minor: bool, fast: bool, half_bar: int) -> np.ndarray:
    """Condition vector: mode one-hot, tempo bucket one-hot, half-bar position in a 4-bar phrase one-hot."""
    v = np.zeros(COND_DIM)
    v[int(minor)] = 1.0
    v[2 + int(fast)] = 1.0
    v[4 + half_bar % PHRASE_POSITIONS] = 1.0
    return v


def sample(
    model,
    *,
    key: str,
    mode: str,
    mood: str,
    bars: int,
    seed: int,
    temperature: float = 1.0,
    chords_per_bar: int = 1,
) -> list[str]:
    """Generate a chord progression.

    Parameters
    ----------
    model : nn.Module
        A trained harmony model (``core.loaders.load_harmony()``).
    key : str
        Tonic such as ``"C"``, ``"F#"``, ``"Bb"``.
    mode : {"major", "minor"}
        Mode of the key.
    mood : str
        One of :data:`MOODS` or an alias (:data:`MOOD_ALIASES`); selects the tempo bucket.
    bars : int
        Number of bars, 1-512.
    seed : int
        Random seed; the same seed gives the same progression.
    temperature : float
        Sampling temperature (0 = most likely chord each time, 1 = as trained, up to 5).
    chords_per_bar : {1, 2}
        One chord per bar, or one per half bar.

    Returns
    -------
    list of str
        ``bars * chords_per_bar`` labels such as ``"A:min"``, ``"G:7"`` with absolute roots in the key.

    Raises
    ------
    core.errors.InputError
        For an unknown key, mode or mood, or an out-of-range number.

    Examples
    --------
    >>> sample(load_harmony(), key="C", mode="major", mood="happy", bars=4, seed=0)  # doctest: +SKIP
    ['C:maj', 'G:maj', 'A:min', 'F:maj']
    """
    if mode not in MODES:
        raise input_error(f"unknown mode {mode!r}; expected one of {list(MODES)}")
    tonic, _ = parse_key(key, mode)
    canon = resolve_mood(mood)
    if not isinstance(bars, int | np.integer) or not 1 <= bars <= 512:
        raise input_error(f"bars must be an integer between 1 and 512, got {bars!r}")
    if chords_per_bar not in (1, 2):
        raise input_error(f"chords_per_bar must be 1 or 2, got {chords_per_bar!r}")
    temp = check_temperature(temperature)
    rng = np.random.default_rng(seed)
    minor, fast = mode == "minor", bool(MOOD_ENERGY[canon])
    conds = np.stack([condition(minor=minor, fast=fast, half_bar=hb) for hb in range(2 * int(bars))])
    stepper = TokenStepper(model, conds)
    mask = np.zeros(VOCAB)
    mask[[BOS, NO_CHORD]] = -np.inf
    labels: list[str] = []
    prev = BOS
    for hb in range(2 * int(bars)):
        logits = stepper.step(prev, hb) + mask
        if chords_per_bar == 1 and hb % 2 == 1:
            tok = prev  # second half of the bar keeps the bar's chord
        else:
            tok = sample_categorical(logits, rng=rng, temperature=temp)
            rel, q = token_chord(tok)
            labels.append(f"{PITCH_CLASSES[(tonic + rel) % 12]}:{q}")
        prev = tok
    return labels
