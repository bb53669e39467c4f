"""Generate a multi-stem song from genre, mood, tempo, key, instruments, duration and seed.

Pipeline: validate -> :func:`core.music.plan.plan_song` -> :func:`core.music.arrange.arrange` (trained
drum, bass, harmony and melody models + rule-based chord parts) -> one MIDI file per stem at the exact
tempo -> :class:`core.music.render.StemRenderer` (General MIDI soundfont; each stem starts rendering in a
thread as soon as the arranger has finished it, so rendering overlaps the model sampling; stems
come back sample-aligned and exactly ``seconds`` long) -> balance -> master.

How the stems relate to the mix
-------------------------------
Each rendered stem ``r_i`` is first given a role gain ``b_i`` that sets its RMS to the role's level in
:data:`ROLE_LEVEL_DB` (so the balance does not depend on how loud the soundfont's instruments are). The
balanced sum ``sum(b_i * r_i)`` is then brought to -14 LUFS by one common gain ``g``. The returned stems
are ``stems[i] = g * b_i * r_i``, so **``sum(stems)`` is the loudness-normalised mix before the limiter**
(``Song.premix``), and **``mix = core.audio.loudness.master(sum(stems))``**: the true-peak limiter (-1 dBTP)
is the only difference between the sum of the stems and the mix. The editor can therefore re-mix the
stems with unity gains and master the sum to get back exactly this mix.

Examples
--------
>>> song = generate_song(genre="pop", mood="happy", tempo=120, key="C major",  # doctest: +SKIP
...                      instruments="drums,bass,keys,lead", seconds=30, seed=1)
>>> sorted(song.stems), song.tempo_bpm, song.key                                  # doctest: +SKIP
(['bass', 'drums', 'keys', 'lead'], 120.0, 'C major')
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.config import SAMPLE_RATE
from core.errors import InputError
from core.music.arrange import Samplers, arrange, load_samplers, sub_seed
from core.music.instruments import ROLES, get_genre, get_mood, parse_instruments
from core.music.midi import encode_midi
from core.music.plan import plan_song
from core.music.render import StemRenderer, check_soundfont
from core.music.theory import Key, parse_key
from core.progress import ProgressFn, report

#: RMS level (dBFS, before the common loudness gain) each role is balanced to.
ROLE_LEVEL_DB = {
    "drums": -20.0, "bass": -19.5, "keys": -23.0, "pad": -27.0, "strings": -26.0, "guitar": -23.5,
    "brass": -25.0, "pluck": -25.5, "arp": -26.5, "lead": -21.0,
}  # fmt: skip
TARGET_LUFS = -14.0
CEILING_DBTP = -1.0
#: Fade applied to the last seconds of every stem (identical on all stems, so the sum is unchanged).
FADE_S = 0.25


@dataclass
class Song:
    """A generated song.

    Attributes
    ----------
    stems : dict of str to np.ndarray
        One float32 ``(2, n)`` array per instrument role, sample-aligned, all ``n`` long; their sum is the
        mix before the limiter (see the module docstring). Being pre-limiter, a stem's peaks may exceed
        1.0 (drum transients): export stems as float (or scale them together), never clip them one by one.
    mix : np.ndarray
        ``master(sum(stems))``: -14 LUFS, true peak <= -1 dBTP.
    sr : int
        Sample rate (44100).
    midi : dict of str to bytes
        One Standard MIDI File per stem (same tempo and key signature).
    midi_all : bytes
        All stems in one MIDI file (drums on channel 10).
    notes : list of dict
        ``{"stem", "start", "end", "pitch", "velocity"}`` with times in seconds (piano roll).
    tempo_bpm : float
        The exact tempo.
    key : str
        The key, e.g. ``"A minor"``.
    sections : list of dict
        ``{"name", "start_bar", "bars", "start_s", "end_s", "energy"}``.
    chords : list of tuple
        ``(start_beat, end_beat, label)`` for the whole song (the last one is the final chord).
    pitched_notes, chromatic_notes : int
        Pitched notes in the song and how many of them are deliberate chromatic passing tones.
    timings : dict of str to float
        Wall seconds spent in ``arrange`` (the models and rules; stems already render meanwhile),
        ``midi`` (writing the MIDI files), ``render_wait`` (waiting for the rendering to finish after
        arranging) and ``mix`` (balance, loudness, limiter).
    """

    stems: dict[str, np.ndarray]
    mix: np.ndarray
    sr: int
    midi: dict[str, bytes]
    midi_all: bytes
    notes: list[dict]
    tempo_bpm: float
    key: str
    genre: str
    mood: str
    seed: int
    seconds: float
    sections: list[dict]
    chords: list[tuple[float, float, str]]
    pitched_notes: int = 0
    chromatic_notes: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def premix(self) -> np.ndarray:
        """``sum(stems)``: the loudness-normalised mix before the limiter."""
        return _sum(list(self.stems.values()), self.mix.shape[1])

    def summary(self) -> dict:
        """JSON-ready description (what the CLI's ``--json`` prints)."""
        return {
            "tempo_bpm": self.tempo_bpm,
            "key": self.key,
            "seconds": round(self.mix.shape[1] / self.sr, 4),
            "stems": list(self.stems),
            "sections": self.sections,
            "genre": self.genre,
            "mood": self.mood,
            "seed": self.seed,
            "chords": [[round(s, 4), round(e, 4), c] for s, e, c in self.chords],
            "pitched_notes": self.pitched_notes,
            "chromatic_notes": self.chromatic_notes,
        }


def validate_request(
    *,
    genre: str,
    mood: str,
    tempo: float | None,
    key: str | None,
    instruments: str | list[str] | tuple[str, ...] | None,
    seconds: float,
    seed: int,
):
    """Check and normalise the inputs of :func:`generate_song`.

    Returns
    -------
    genre, mood, tempo, key, roles
        ``Genre``, ``Mood``, float bpm, :class:`Key`, tuple of roles.

    Raises
    ------
    InputError
        Naming the bad value and the allowed values or range.
    """
    g = get_genre(genre)
    m = get_mood(mood)
    if tempo is None:
        bpm = float(g.default_tempo)
    else:
        try:
            bpm = float(tempo)
        except (TypeError, ValueError):
            raise InputError(f"Tempo {tempo!r} is not a number: use 40-240 bpm.") from None
    if not math.isfinite(bpm) or not 40.0 <= bpm <= 240.0:
        raise InputError(f"Tempo {tempo} bpm is out of range: use 40-240 bpm.")
    try:
        secs = float(seconds)
    except (TypeError, ValueError):
        raise InputError(f"Duration {seconds!r} is not a number: use 5-600 seconds.") from None
    if not math.isfinite(secs) or not 5.0 <= secs <= 600.0:
        raise InputError(f"Duration {seconds} s is out of range: use 5-600 seconds (10 minutes).")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= int(seed) < 2**32:
        raise InputError(f"Seed {seed!r} must be a whole number from 0 to {2**32 - 1}.")
    if key is None or (isinstance(key, str) and key.strip().lower() in ("", "auto")):
        rng = np.random.default_rng(sub_seed(int(seed), "key"))
        k = Key(int(rng.integers(12)), m.mode)
    else:
        k = parse_key(key)
    roles = g.default_instruments if instruments is None else parse_instruments(instruments)
    return g, m, bpm, k, roles


def generate_song(
    *,
    genre: str,
    mood: str,
    tempo: float | None = None,
    key: str | None = None,
    instruments: str | list[str] | tuple[str, ...] | None = None,
    seconds: float = 30.0,
    seed: int = 0,
    progress: ProgressFn | None = None,
    samplers: Samplers | None = None,
    soundfont: str | Path | None = None,
    workers: int | None = None,
) -> Song:
    """Generate a song: one rendered stem per instrument, their MIDI, and the mastered mix.

    Parameters
    ----------
    genre : str
        One of :data:`core.music.instruments.GENRES` (pop, k-pop, hip-hop, rock, edm, funk, r&b, lo-fi,
        jazz, latin).
    mood : str
        One of :data:`core.music.instruments.MOODS`.
    tempo : float, optional
        Beats per minute, 40-240 (default: the genre's usual tempo).
    key : str, optional
        E.g. ``"A minor"``, ``"F#"``, ``"Bbm"``, ``"D dorian"``; default (or ``"auto"``): a tonic chosen
        from the seed in the mood's mode.
    instruments : str or list of str, optional
        Roles from :data:`core.music.instruments.ROLES`, e.g. ``"drums,bass,keys,lead"`` (default: the
        genre's line-up).
    seconds : float
        Exact length of the output, 5-600 s.
    seed : int
        Same seed (and inputs), same song: bit-identical audio.
    progress : callable, optional
        ``progress(fraction, message)``; may raise ``CancelledError``.
    samplers : Samplers, optional
        The trained models (default: :func:`core.music.arrange.load_samplers`; pass a loaded set to
        avoid reloading checkpoints on every call).
    soundfont : str or Path, optional
        An ``.sf2`` file (default: the ``SOUNDFONT`` setting, else pretty_midi's ``TimGM6mb.sf2``).
    workers : int, optional
        Processes rendering stems at once (default: CPU cores).

    Raises
    ------
    InputError
        For an unknown genre, mood or instrument, a tempo outside 40-240, an unparseable key or a
        duration outside 5-600 s.
    ModelError
        For a missing or corrupt checkpoint or soundfont.
    """
    g, m, bpm, k, roles = validate_request(
        genre=genre, mood=mood, tempo=tempo, key=key, instruments=instruments, seconds=seconds, seed=seed
    )
    seed = int(seed)
    timings: dict[str, float] = {}
    check_soundfont(soundfont)  # a missing or corrupt soundfont fails before any model work
    report(progress, 0.02, "Loading models")
    if samplers is None:
        samplers = load_samplers()
    report(progress, 0.1, "Writing the song")
    t0 = time.perf_counter()
    plan = plan_song(seconds=float(seconds), bpm=bpm)
    with StemRenderer(sr=SAMPLE_RATE, seconds=plan.seconds, soundfont=soundfont, workers=workers) as renderer:
        # each part starts rendering (in a thread) as soon as the arranger has finished it
        arr = arrange(
            plan=plan,
            key=k,
            genre=g,
            mood=m,
            roles=roles,
            seed=seed,
            samplers=samplers,
            on_part=lambda role, part: renderer.submit_part(
                role, part, bpm=bpm, key=k, end_beat=plan.end_beat
            ),
        )
        timings["arrange"] = time.perf_counter() - t0

        report(progress, 0.3, f"Rendering {len(arr.parts)} instruments")
        t0 = time.perf_counter()
        midi = {
            role: encode_midi([part], bpm=bpm, key=k, end_beat=plan.end_beat)
            for role, part in arr.parts.items()
        }
        midi_all = encode_midi(list(arr.parts.values()), bpm=bpm, key=k, end_beat=plan.end_beat)
        timings["midi"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        # each stem is balanced as soon as it is back, while the others still render
        done = {role: _balance(role, y, sr=SAMPLE_RATE) for role, y in renderer.completed()}
    rendered = {role: done[role] for role in arr.parts}
    timings["render_wait"] = time.perf_counter() - t0

    report(progress, 0.85, "Mixing and mastering")
    t0 = time.perf_counter()
    stems, mix = _master(rendered, sr=SAMPLE_RATE)
    timings["mix"] = time.perf_counter() - t0

    spb = 60.0 / bpm
    notes = [
        {
            "stem": role,
            "start": round(n.start * spb, 5),
            "end": round(n.end * spb, 5),
            "pitch": int(n.pitch),
            "velocity": int(n.velocity),
        }
        for role, part in arr.parts.items()
        for n in part.notes
    ]
    report(progress, 1.0, "Done")
    return Song(
        stems=stems,
        mix=mix,
        sr=SAMPLE_RATE,
        midi=midi,
        midi_all=midi_all,
        notes=notes,
        tempo_bpm=bpm,
        key=k.name,
        genre=g.name,
        mood=m.name,
        seed=seed,
        seconds=plan.seconds,
        sections=plan.to_dicts(),
        chords=arr.chords,
        pitched_notes=arr.pitched_notes,
        chromatic_notes=arr.chromatic_notes,
        timings=timings,
    )


def _sum(arrays: list[np.ndarray], n: int) -> np.ndarray:
    out = np.zeros((2, n), dtype=np.float32)
    for a in arrays:
        out += a
    return out


def _balance(role: str, y: np.ndarray, *, sr: int) -> np.ndarray:
    """Scale a fresh stem (in place) to its role's level (:data:`ROLE_LEVEL_DB`, RMS while audible) and
    fade its last :data:`FADE_S` seconds out; returns it."""
    from core.audio.loudness import active_rms

    level = active_rms(y)
    y *= np.float32(10 ** (ROLE_LEVEL_DB.get(role, -24.0) / 20) / level if level > 1e-7 else 1.0)
    n = y.shape[1]
    nf = min(n, int(FADE_S * sr))
    if nf > 0:
        y[:, n - nf :] *= np.linspace(1.0, 0.0, nf, dtype=np.float32)
    return y


def _master(stems: dict[str, np.ndarray], *, sr: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Scale balanced stems (:func:`_balance`) by one gain and limit their sum.

    The common gain and the limiter's gain curve come from :func:`core.audio.loudness.master_gain`
    (-14 LUFS, -1 dBTP, the gain raised when limiting costs loudness). The stems are scaled by that
    gain, so ``sum(stems)`` is the signal that enters the limiter (to float rounding) and
    ``mix = limit(sum(stems))``. The sum is taken in the stems' (arrangement) order, so the result does
    not depend on which render finished first.

    The arrays of ``stems`` (fresh render outputs owned by the caller) are scaled **in place** and
    returned: a 10-minute stem is 200 MB, so no copies are made.

    Returns
    -------
    stems, mix
    """
    from core.audio.loudness import apply_master_gain, master_gain

    n = next(iter(stems.values())).shape[1] if stems else 0
    premix = _sum(list(stems.values()), n)
    gain, curve = master_gain(premix, sr=sr, target_lufs=TARGET_LUFS, ceiling_dbtp=CEILING_DBTP)
    g = np.float32(gain)
    for y in stems.values():
        y *= g
    # premix * gain equals the sum of the scaled stems to float rounding (~1e-7)
    mix = apply_master_gain(premix, gain, curve, ceiling_dbtp=CEILING_DBTP, in_place=True)
    return stems, mix


__all__ = ["ROLES", "Song", "generate_song", "validate_request"]
