"""Add beats: drums and/or bass that fit a song (its tempo, groove and harmony).

Pipeline of :func:`add_beats`:

1. **Analysis** (:func:`core.audio.analysis.analyze`, or a given one): beats that follow tempo drift,
   downbeats, the onset envelope, key and chords. The user's corrections are applied on top: a tapped
   tempo (``tempo_override``; half/double of the detected tempo keeps the drifting grid, any other tempo
   lays a steady grid phase-aligned to the onsets) and a key (``key_override``).
2. **Grid**: the detected beats are extended by their local period to cover the whole song, and every
   16th-note step is mapped to time by *interpolating between detected beats* (the grid warps where the
   tempo drifts). Bars start on the detected downbeats.
3. **Drums**: the drum model (``models.drums``) in the chosen style, conditioned per step on the song's
   own onset strength at that step blended with its bar-level rhythm profile (Drumify-style "tap").
   ``complexity`` sets the hit density and sampling temperature; ``humanize`` how much of the model's
   micro-timing and velocity variation is kept.
4. **Bass**: the bass model (``models.bass``) conditioned on the detected chords converted to beat
   positions on the same grid, and on the generated kick pattern.
5. **Render**: both parts are written as MIDI whose "beats" are seconds (60 bpm), so the warped note times
   survive exactly (1 ms resolution), and rendered through the General MIDI soundfont
   (:mod:`core.music.render`), sample-aligned with the input.
6. **Mix**: drums and bass are level-matched to the song's integrated loudness (``drums_db``/``bass_db``
   relative to the defaults), the bass optionally ducks under each kick (sidechain-style, 6 dB, 5 ms
   attack, 150 ms release), and the sum is loudness-normalised and true-peak limited
   (:func:`core.audio.loudness.master`). The original stem is the decoded input, untouched.

Measured with ``bench/add_beats.py`` on the 2-core dev box (shared with other jobs, so CPU time is the
stable figure): a 3-minute song costs ~9-10 s of CPU: analysis ~3.4 s, models ~0.5 s, soundfont rendering
~1.5 s split over two threads, level matching and mastering ~2.5 s. The first call in a fresh
process adds librosa's numba compilation (~30 s on a fresh install) and model loading (a few seconds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from core.audio.checks import check_duration, check_signal
from core.errors import InputError
from core.music.arrange import DEFAULT_DRUM_PITCHES
from core.progress import ProgressFn, report

__all__ = [
    "MIN_SECONDS",
    "BeatSamplers",
    "BeatsResult",
    "add_beats",
    "apply_corrections",
    "auto_style",
    "load_beat_samplers",
    "style_choices",
]

#: Shortest song accepted (s): a bar or two is needed to find a tempo.
MIN_SECONDS = 4.0
#: Tempo confidence below which the result carries a warning.
LOW_TEMPO_CONFIDENCE = 0.3
#: Key confidence below which the result carries a warning.
LOW_KEY_CONFIDENCE = 0.5
#: Probability from which the tempo chooser's runner-up level is offered beside its choice (chosen on
#: POP909's validation songs: offered for 18 % of them, the right tempo is then on screen for 92.3 %
#: instead of 84.6 %).
OFFER_TEMPO_ALTERNATIVE = 0.2
#: Default levels of the added parts relative to the song's integrated loudness (LU).
DRUMS_REL_LU = -3.0
BASS_REL_LU = -5.0
#: Depth of the bass ducking under the kick (dB).
DUCK_DB = 6.0
#: Scale of the tap given to the drum model (measured with the current checkpoint: a full-strength tap
#: keeps the groove going through the song; weaker taps let some seeds fade out after a few bars).
TAP_SCALE = 1.0
#: Largest shift (s) of the beat grid towards the song's attacks (see :func:`attack_offset`).
MAX_ALIGN_S = 0.08
_STEPS_PER_BEAT = 4
_KICK = 0
_MAX_BARS_PER_CALL = 256


@dataclass(frozen=True)
class BeatSamplers:
    """The drum and bass models bound to their samplers.

    :class:`core.music.arrange.Samplers` (``components.resources.music_samplers()``) has the same
    attributes and can be passed wherever a :class:`BeatSamplers` is expected.
    """

    drums: Any
    bass: Any
    drum_styles: tuple[str, ...] = ()
    drum_pitches: tuple[int, ...] = DEFAULT_DRUM_PITCHES


def load_beat_samplers() -> BeatSamplers:
    """Load the drum and bass checkpoints (``core.loaders``) and bind their samplers.

    Raises
    ------
    core.errors.ModelError
        If a checkpoint is missing or corrupt.
    """
    from functools import partial

    from core import loaders
    from models import bass, drums

    d_model = loaders.load_drums()
    return BeatSamplers(
        drums=partial(drums.sample, d_model),
        bass=partial(bass.sample, loaders.load_bass()),
        drum_styles=tuple(getattr(d_model, "meta", {}).get("styles", drums.STYLES)),
        drum_pitches=tuple(drums.DRUM_CLASS_PITCHES),
    )


@dataclass(frozen=True, eq=False)
class BeatsResult:
    """What :func:`add_beats` returns.

    Attributes
    ----------
    mix : np.ndarray
        float32 ``(2, n)``: original + drums + bass, loudness-normalised and true-peak limited.
    stems : dict of str to np.ndarray
        ``"original"`` (the input, untouched), ``"drums"``, ``"bass"``: float32 ``(2, n)`` at ``sr``,
        sample-aligned, the length of the input. The original is a read-only view of the input when
        that was float32 stereo (not a copy: 211 MB for a 10-minute song). The added stems are at their
        mix levels (before the master gain); a part that was not asked for is silent.
    sr : int
        Sample rate (the input's).
    analysis : core.audio.analysis.Analysis
        The analysis the parts were placed on (after the user's corrections).
    style : str
        The drum style used.
    drum_notes, bass_notes : tuple of dict
        ``{"start", "end", "pitch", "velocity", "stem"}`` with times in seconds (for a piano roll).
    warnings : tuple of str
        Honest notes about low-confidence analysis (no steady beat, unclear key, no chords found).
    confidence : float
        0..1: the tempo confidence of the grid the parts follow (1 when the user set the tempo).
    """

    mix: np.ndarray
    stems: dict[str, np.ndarray]
    sr: int
    analysis: Any
    style: str
    drum_notes: tuple[dict, ...] = ()
    bass_notes: tuple[dict, ...] = ()
    warnings: tuple[str, ...] = ()
    confidence: float = 0.0
    meta: dict = field(default_factory=dict)

    @property
    def notes(self) -> list[dict]:
        """Drum and bass notes together (for :func:`components.plots.piano_roll_figure`)."""
        return [*self.drum_notes, *self.bass_notes]

    def to_dict(self) -> dict:
        """The CLI's ``--json`` object: tempo, beats, downbeats, key and chords (times in seconds)."""
        a = self.analysis
        return {
            "tempo_bpm": None if a.tempo_bpm is None else round(float(a.tempo_bpm), 2),
            "tempo_confidence": round(float(self.confidence), 3),
            "tempo_alternatives": a.tempo_alternatives_json(),
            "beats": [round(float(t), 3) for t in a.beats],
            "downbeats": [round(float(t), 3) for t in a.downbeats],
            "key": a.key,
            "key_confidence": round(float(a.key_confidence), 3),
            "chords": [{"start": round(s, 3), "end": round(e, 3), "label": lab} for s, e, lab in a.chords],
            "style": self.style,
            "drum_notes": len(self.drum_notes),
            "bass_notes": len(self.bass_notes),
            "warnings": list(self.warnings),
        }


# --------------------------------------------------------------------------------------------------
# validation and corrections


def _validate_audio(y, sr) -> np.ndarray:
    """The input as float32 ``(2, n)`` (mono duplicated); values are kept bit-exact for float32 input."""
    x = check_signal(y, sr=sr, max_channels=2).astype(np.float32, copy=False)
    return np.repeat(x, 2, axis=0) if x.shape[0] == 1 else x


def _check_range(name: str, value: float, lo: float, hi: float) -> float:
    v = float(value)
    if not math.isfinite(v) or not lo <= v <= hi:
        raise InputError(f"{name} must be between {lo:g} and {hi:g}, got {value!r}")
    return v


def _onset_phase(env: np.ndarray, rate: float, period: float, duration: float) -> float:
    """Grid phase (s, in ``[0, period)``) whose beats carry the most onset strength."""
    if env.size == 0:
        return 0.0
    best, best_score = 0.0, -1.0
    for phase in np.linspace(0.0, period, 48, endpoint=False):
        t = np.arange(phase, duration, period)
        idx = np.clip(np.round(t * rate).astype(int), 0, env.size - 1)
        score = float(env[idx].mean()) if idx.size else 0.0
        if score > best_score:
            best, best_score = float(phase), score
    return best


def _steady_grid(analysis, bpm: float):
    """A constant-tempo beat grid at ``bpm`` aligned to the onsets, downbeats near the detected ones."""
    period = 60.0 / bpm
    env = np.asarray(analysis.onset_envelope, dtype=np.float64)
    phase = _onset_phase(env, analysis.onset_rate, period, analysis.duration_s)
    beats = np.arange(phase, analysis.duration_s, period)
    if beats.size < 2:
        raise InputError(f"a tempo of {bpm:.1f} BPM gives fewer than 2 beats in this song")
    if analysis.downbeats:
        first = int(np.argmin(np.abs(beats - analysis.downbeats[0]))) % analysis.beats_per_bar
    else:  # the bar phase with the strongest onsets
        idx = np.clip(np.round(beats * analysis.onset_rate).astype(int), 0, max(env.size - 1, 0))
        vals = env[idx] if env.size else np.zeros(beats.size)
        bpb = analysis.beats_per_bar
        first = int(np.argmax([vals[p::bpb].mean() for p in range(bpb)]))
    return replace(
        analysis,
        tempo_bpm=float(bpm),
        beats=tuple(float(t) for t in beats),
        downbeats=tuple(float(t) for t in beats[first :: analysis.beats_per_bar]),
    )


def apply_corrections(analysis, *, tempo_override: float | None = None, key_override: str | None = None):
    """The analysis with the user's tempo and key corrections applied.

    Parameters
    ----------
    analysis : core.audio.analysis.Analysis
        A result of :func:`core.audio.analysis.analyze`.
    tempo_override : float, optional
        Tempo in BPM (30-300), e.g. from :func:`core.audio.analysis.tempo_from_taps`. Within 4% of the
        detected tempo the detected (drift-following) grid is kept; within 4% of half or double it the
        grid is halved/doubled (:func:`core.audio.analysis.correct_tempo`); any other tempo lays a steady
        grid aligned to the song's onsets.
    key_override : str, optional
        A key such as ``"A minor"`` or ``"Bb major"`` (:func:`core.music.theory.parse_key`). Chords whose
        tones leave that key are replaced by the closest chord of the key.

    Returns
    -------
    core.audio.analysis.Analysis
        A new analysis (the input is not changed).

    Raises
    ------
    core.errors.InputError
        For a tempo outside 30-300 BPM or an unreadable key.
    """
    from core.audio.analysis import correct_tempo

    a = analysis
    if tempo_override is not None:
        bpm = _check_range("tempo_override (BPM)", tempo_override, 30.0, 300.0)
        detected = a.tempo_bpm
        if detected and len(a.beats) >= 2:
            ratio = bpm / float(detected)
            if abs(ratio - 1.0) <= 0.04:
                a = a
            elif abs(ratio - 2.0) <= 0.08:
                a = correct_tempo(a, factor=2.0)
            elif abs(ratio - 0.5) <= 0.02:
                a = correct_tempo(a, factor=0.5)
            else:
                a = _steady_grid(a, bpm)
        else:
            a = _steady_grid(a, bpm)
        a = replace(a, tempo_confidence=1.0, tempo_alternatives=())  # the user's choice: nothing to offer
    if key_override is not None and str(key_override).strip():
        from core.music.theory import fit_chord_to_key, parse_key, prefers_flats

        key = parse_key(str(key_override))
        flats = prefers_flats(key)
        chords = []
        for s, e, label in a.chords:
            if label == "N":
                chords.append((s, e, label))
                continue
            fitted = fit_chord_to_key(label, key)
            chords.append((s, e, fitted.spelled(prefer_flats=flats) if fitted is not None else label))
        a = replace(a, key=key.name, key_confidence=1.0, chords=tuple(chords))
    return a


def offered_tempo_alternative(analysis) -> tuple[float, float, str] | None:
    """The other tempo worth offering beside the detected one, or None.

    The tempo chooser's most likely other metrical level when it has at least
    :data:`OFFER_TEMPO_ALTERNATIVE` probability: ``(bpm, probability, relation)``, ``relation`` saying
    how it relates to the detected tempo ("half time", "double time", "a 2/3 feel", "a 3/2 feel").

    Examples
    --------
    >>> from core.audio.analysis import Analysis
    >>> a = Analysis(8.0, -14.0, 118.0, 0.9, (), (), (), np.zeros(16), None, 0.0, (),
    ...              tempo_alternatives=((59.0, 0.35), (177.0, 0.02)))
    >>> offered_tempo_alternative(a)
    (59.0, 0.35, 'half time')
    """
    if analysis.tempo_bpm is None or not analysis.tempo_alternatives:
        return None
    bpm, p = analysis.tempo_alternatives[0]
    if p < OFFER_TEMPO_ALTERNATIVE:
        return None
    ratio = bpm / float(analysis.tempo_bpm)
    names = {0.5: "half time", 2.0: "double time", 2 / 3: "a 2/3 feel", 1.5: "a 3/2 feel"}
    near = min(names, key=lambda r: abs(math.log(ratio / r)))
    relation = names[near] if abs(math.log(ratio / near)) <= 0.08 else f"x{ratio:.2f}"
    return float(bpm), float(p), relation


# --------------------------------------------------------------------------------------------------
# style


def style_choices() -> list[str]:
    """Drum styles the model knows (Groove MIDI Dataset styles)."""
    from models.drums import STYLES

    return list(STYLES)


def auto_style(tempo_bpm: float | None, *, genre: str | None = None) -> str:
    """The drum style for a genre (its drum style) or, without one, for a tempo.

    Examples
    --------
    >>> auto_style(80.0), auto_style(110.0), auto_style(150.0)
    ('hiphop', 'rock', 'rock')
    """
    if genre:
        from core.music.instruments import get_genre

        return get_genre(genre).drum_style
    # Groove MIDI's "pop" takes are few and full of ghost-note fills; its rock and hip-hop grooves keep a
    # clear backbeat, which is what a song without drums needs.
    if tempo_bpm is None or tempo_bpm < 90.0:
        return "hiphop"
    return "rock"


def _resolve_style(style: str | None, genre: str | None, tempo: float | None, styles: tuple[str, ...]) -> str:
    if style is None or not str(style).strip():
        s = auto_style(tempo, genre=genre)
    else:
        from core.music.instruments import GENRES
        from models.drums import STYLE_ALIASES

        s = str(style).strip().lower()
        s = GENRES[s].drum_style if s in GENRES else STYLE_ALIASES.get(s, s)
    if styles and s not in styles:
        raise InputError(f"unknown drum style {style!r}; choose one of {', '.join(styles)}")
    return s


# --------------------------------------------------------------------------------------------------
# grid


def attack_offset(y: np.ndarray, *, sr: int, beats, max_shift: float = MAX_ALIGN_S) -> float:
    """Shift (s) that moves ``beats`` onto the song's attacks, measured at ~1.5 ms resolution.

    Beat trackers work on ~10 ms onset-envelope frames whose peaks sit a little after the audible attack;
    drums placed there flam against the song. This finds the single shift in ``[-max_shift, max_shift/2]``
    that maximises the rise of the short-time log energy at the shifted beats, and returns 0 when that
    peak is not clearly (5%) above the unshifted score.

    Examples
    --------
    >>> sr = 8000
    >>> y = np.zeros((1, sr * 4), np.float32)
    >>> for b in np.arange(0.5, 3.6, 0.5):
    ...     y[0, int(b * sr) : int(b * sr) + 400] = 0.5
    >>> round(attack_offset(y, sr=sr, beats=np.arange(0.5, 3.6, 0.5) + 0.03), 3)
    -0.03
    """
    b = np.asarray(beats, dtype=np.float64)
    if b.size < 4:
        return 0.0
    hop = max(8, round(sr / 690))
    x = np.asarray(y, dtype=np.float32)
    n = x.shape[1] // hop
    if n < 4:
        return 0.0
    energy = np.empty(n, dtype=np.float64)
    block = 1 << 16  # frames at a time: a full-length float64 copy would be 420 MB for 10 minutes
    for f0 in range(0, n, block):
        f1 = min(n, f0 + block)
        frames = x[:, f0 * hop : f1 * hop].mean(axis=0).reshape(f1 - f0, hop).astype(np.float64)
        energy[f0:f1] = np.square(frames).sum(axis=1)
    e = np.log10(energy + 1e-10)
    flux = np.maximum(np.diff(e, prepend=e[0]), 0.0)
    flux = flux + 0.5 * (np.roll(flux, 1) + np.roll(flux, -1))
    rate = sr / hop
    lags = np.arange(-round(max_shift * rate), round(max_shift * rate / 2) + 1)

    def score(lag: int) -> float:
        idx = np.round(b * rate).astype(int) + lag
        idx = idx[(idx >= 0) & (idx < n)]
        return float(flux[idx].mean()) if idx.size else 0.0

    scores = np.array([score(int(k)) for k in lags])
    best = int(np.argmax(scores))
    if scores[best] <= 1.05 * score(0):
        return 0.0
    return float(lags[best] / rate)


def _extended_grid(beats: np.ndarray, duration: float, beats_per_bar: int) -> np.ndarray:
    """Beats extended before the first and after the last by the local period, covering the song + a bar."""
    b = np.asarray(beats, dtype=np.float64)
    p_start = float(np.median(np.diff(b[: min(b.size, 5)])))
    p_end = float(np.median(np.diff(b[-min(b.size, 5) :])))
    n_pre = math.ceil(max(b[0], 0.0) / p_start) + beats_per_bar
    n_post = math.ceil(max(duration - b[-1], 0.0) / p_end) + beats_per_bar
    pre = b[0] - p_start * np.arange(n_pre, 0, -1)
    post = b[-1] + p_end * np.arange(1, n_post + 1)
    return np.concatenate([pre, b, post])


def _tap(times: np.ndarray, analysis, profile: np.ndarray) -> np.ndarray:
    """Onset strength (0..1) of the song at each step time, blended with its bar rhythm profile."""
    env = np.asarray(analysis.onset_envelope, dtype=np.float64)
    if env.size > 2:
        idx = np.clip(np.round(times * analysis.onset_rate).astype(int), 1, env.size - 2)
        vals = np.maximum(env[idx], np.maximum(env[idx - 1], env[idx + 1]))
        scale = float(np.percentile(env, 98)) or 1.0
        local = np.clip(vals / scale, 0.0, 1.0)
    else:  # an analysis without the envelope: onsets within half a step
        onsets = np.asarray(analysis.onsets, dtype=np.float64)
        half = np.gradient(times) / 2 if times.size > 1 else np.full(times.size, 0.05)
        pos = np.searchsorted(onsets, times)
        near = np.full(times.size, np.inf)
        for cand in (pos - 1, pos):
            ok = (cand >= 0) & (cand < onsets.size)
            near[ok] = np.minimum(near[ok], np.abs(onsets[cand[ok]] - times[ok]))
        local = (near <= half).astype(np.float64)
    prof = np.asarray(profile, dtype=np.float64)
    if prof.size != 16 or not np.isfinite(prof).all():
        prof = np.zeros(16)
    return np.clip(TAP_SCALE * (0.5 * local + 0.5 * prof[np.arange(times.size) % 16]), 0.0, 1.0)


# --------------------------------------------------------------------------------------------------
# parts


def _sample_drums(samplers, *, bars, style, seed, temperature, tap, density):
    """The drum pattern in chunks of at most 256 bars (each primed with the previous bar)."""
    hits, vel, off = [], [], []
    done = 0
    prime = None
    chunk = 0
    while done < bars:
        n = min(_MAX_BARS_PER_CALL, bars - done)
        kwargs = dict(
            bars=n,
            style=style,
            seed=seed + chunk,
            temperature=temperature,
            tap=tap[done * 16 : (done + n) * 16],
            density=density,
        )
        if prime is not None:
            kwargs["prime"] = prime
        pat = samplers.drums(**kwargs)
        hits.append(np.asarray(pat.hits, dtype=bool))
        vel.append(np.asarray(pat.velocity, dtype=np.float32))
        off.append(np.asarray(pat.offset, dtype=np.float32))
        prime = vel[-1][-16:]
        done += n
        chunk += 1
    return np.concatenate(hits), np.concatenate(vel), np.concatenate(off)


def _duck_gain(kicks: np.ndarray, *, n: int, sr: int, depth_db: float) -> np.ndarray:
    """Per-sample gain that dips by ``depth_db`` at each kick time (5 ms attack, 150 ms release)."""
    hop = 64
    m = n // hop + 2
    env = np.zeros(m, dtype=np.float64)
    idx = np.round(np.asarray(kicks) * sr / hop).astype(int)
    idx = idx[(idx >= 0) & (idx < m)]
    np.add.at(env, idx, 1.0)
    rate = sr / hop
    att = max(1, round(0.005 * rate))
    rel = np.exp(-np.arange(int(0.6 * rate)) / (0.15 * rate))
    kernel = np.concatenate([np.linspace(0.0, 1.0, att, endpoint=False), rel])
    shaped = np.minimum(np.convolve(env, kernel)[att : att + m], 1.0)  # peak at the kick itself
    g = (10.0 ** (-depth_db * shaped / 20.0)).astype(np.float32)
    # linear between the control points, written block by block into one float32 array: a float64
    # sample-position ramp for np.interp would take 8 bytes per sample twice over (200 MB for 10 min)
    frac = np.arange(hop, dtype=np.float32) / np.float32(hop)
    out = np.empty(n, dtype=np.float32)
    full = n // hop
    blocks = out[: full * hop].reshape(full, hop)
    np.multiply((g[1 : full + 1] - g[:full])[:, None], frac[None, :], out=blocks)
    blocks += g[:full, None]
    rest = n - full * hop
    out[full * hop :] = g[full] + (g[full + 1] - g[full]) * frac[:rest]
    return out


def _level_in_place(stem: np.ndarray, *, sr: int, target_lufs: float) -> None:
    """Scale ``stem`` (float32, owned by the caller) in place to ``target_lufs``; silence is left as is."""
    from core.audio.loudness import integrated_lufs

    # measured on every other sample: drum and bass stems differ from the full-rate value by <= 0.01 LU
    # (measured), at half the cost
    if sr >= 32000 and sr % 2 == 0:
        lufs = integrated_lufs(np.ascontiguousarray(stem[:, ::2]), sr=sr // 2)
    else:
        lufs = integrated_lufs(stem, sr=sr)
    if math.isfinite(lufs):
        stem *= np.float32(10.0 ** (float(np.clip(target_lufs - lufs, -40.0, 30.0)) / 20.0))


# --------------------------------------------------------------------------------------------------
# public API


def add_beats(
    y: np.ndarray,
    *,
    sr: int,
    drums: bool = True,
    bass: bool = True,
    style: str | None = None,
    genre: str | None = None,
    complexity: float = 0.5,
    humanize: float = 0.5,
    drums_db: float = 0.0,
    bass_db: float = 0.0,
    duck: bool = True,
    seed: int = 0,
    analysis=None,
    tempo_override: float | None = None,
    key_override: str | None = None,
    samplers=None,
    progress: ProgressFn | None = None,
) -> BeatsResult:
    """Add drums and/or bass that follow a song's beat grid, groove and chords.

    Parameters
    ----------
    y : np.ndarray
        float audio ``(channels, samples)`` (1 or 2 channels), at least 4 s, at most the configured
        maximum duration (``BEATTOK_MAX_DURATION_S``, default 10 min).
    sr : int
        Sample rate in Hz (8000-192000); the result has the same rate and length.
    drums, bass : bool
        Which parts to add (at least one). The bass follows the kick of a drum pattern sampled for the song
        even when the drums themselves are not added.
    style : str, optional
        A drum style (:func:`style_choices`), a style alias (``"hip-hop"``, ``"edm"``...) or a genre of
        :data:`core.music.instruments.GENRES`; default :func:`auto_style` of ``genre``/the tempo.
    genre : str, optional
        A genre of :data:`core.music.instruments.GENRES`: picks the default style, the bass instrument
        and register, and the swing.
    complexity : float
        0-1: how busy the parts are (drum density 0.57x-1.74x, sampling temperature 0.7-1, bass in 8ths
        below 0.4).
    humanize : float
        0-1: share of the model's micro-timing and velocity variation kept (0 = quantised to the grid).
    drums_db, bass_db : float
        Level of each part in dB (-24..12) relative to its default level under the song.
    duck : bool
        Duck the bass under the kick.
    seed : int
        Random seed; the same inputs and seed give bit-identical output.
    analysis : core.audio.analysis.Analysis, optional
        A previous analysis of ``y`` to reuse (the page analyses first, then generates).
    tempo_override : float, optional
        A tempo (BPM) set by the user, see :func:`apply_corrections`.
    key_override : str, optional
        A key set by the user, see :func:`apply_corrections`.
    samplers : BeatSamplers, optional
        Loaded models (:func:`load_beat_samplers` or ``core.music.arrange.load_samplers()``); loaded
        from the checkpoints when None.
    progress : callable, optional
        ``progress(fraction, message)``; may raise :class:`core.errors.CancelledError`.

    Returns
    -------
    BeatsResult
        Mix, stems (original/drums/bass), the analysis used, notes, warnings and confidence.

    Raises
    ------
    core.errors.InputError
        For silence, input shorter than 4 s, no beat found (without ``tempo_override``), or bad options.
    core.errors.LimitError
        For input longer than the maximum duration.
    core.errors.ModelError
        If a model checkpoint or the soundfont is missing.

    Examples
    --------
    >>> import numpy as np
    >>> add_beats(np.zeros((2, 44100 * 5), np.float32), sr=44100)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    core.errors.InputError: the song is silent ...
    """
    from core.audio.analysis import analyze
    from core.audio.loudness import master
    from core.config import get_settings
    from core.music.midi import Note, Part
    from core.music.render import render_parts

    x = _validate_audio(y, sr)
    sr = int(sr)
    n = x.shape[1]
    duration = n / sr
    if not (drums or bass):
        raise InputError("choose drums, bass or both to add")
    complexity = _check_range("complexity", complexity, 0.0, 1.0)
    humanize = _check_range("humanize", humanize, 0.0, 1.0)
    drums_db = _check_range("drums_db", drums_db, -24.0, 12.0)
    bass_db = _check_range("bass_db", bass_db, -24.0, 12.0)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= int(seed) < 2**31:
        raise InputError(f"seed must be an integer between 0 and 2147483647, got {seed!r}")
    if duration < MIN_SECONDS:
        raise InputError(
            f"the song is {duration:.1f} s long; adding beats needs at least {MIN_SECONDS:.0f} s of music"
        )
    check_duration(duration, max_seconds=float(get_settings().max_duration_s), what="the song")
    genre_obj = None
    if genre:
        from core.music.instruments import get_genre

        genre_obj = get_genre(genre)

    if analysis is not None and abs(float(analysis.duration_s) - duration) > 0.5:
        raise InputError(
            f"the analysis given is of a {analysis.duration_s:.1f} s song, but this song is {duration:.1f} s"
        )
    if analysis is None:
        analysis = analyze(x, sr=sr, progress=lambda f, m: report(progress, 0.35 * f, f"analysing: {m}"))
    report(progress, 0.35, "analysis done")
    if analysis.tempo_bpm is None and not math.isfinite(analysis.loudness_lufs):
        raise InputError("the song is silent: there is nothing to add beats to")
    if analysis.loudness_lufs < -60.0:
        raise InputError(
            f"the song is nearly silent ({analysis.loudness_lufs:.0f} LUFS; at least -60 LUFS is needed)"
        )
    a = apply_corrections(analysis, tempo_override=tempo_override, key_override=key_override)
    if a.tempo_bpm is None or len(a.beats) < 4:
        raise InputError("no steady beat was found in this song; tap or type its tempo to place the beats")
    offset = attack_offset(x, sr=sr, beats=a.beats)
    if offset:  # move the grid (and the chord changes on it) onto the song's attacks

        def shift(t: float) -> float:
            return float(min(max(t + offset, 0.0), duration))

        a = replace(
            a,
            beats=tuple(shift(t) for t in a.beats),
            downbeats=tuple(shift(t) for t in a.downbeats),
            chords=tuple((shift(s), shift(e), lab) for s, e, lab in a.chords if shift(e) > shift(s)),
        )

    warnings: list[str] = []
    confidence = float(a.tempo_confidence)
    if confidence < LOW_TEMPO_CONFIDENCE:
        warnings.append(
            f"No steady beat found (tempo confidence {confidence:.2f}): the beats may not follow this song. "
            "Tap the tempo to correct it."
        )
    if bass and (a.key is None or a.key_confidence < LOW_KEY_CONFIDENCE):
        warnings.append(
            f"The key is unclear (confidence {a.key_confidence:.2f}): check it, or set it yourself."
        )
    if bass and not any(lab != "N" for _, _, lab in a.chords):
        warnings.append("No chords were recognised: the bass has no harmony to follow.")

    samplers = samplers if samplers is not None else load_beat_samplers()
    styles = tuple(getattr(samplers, "drum_styles", ()) or ())
    style_name = _resolve_style(style, genre, a.tempo_bpm, styles)
    pitches = tuple(getattr(samplers, "drum_pitches", ()) or DEFAULT_DRUM_PITCHES)

    # grid: bars from the downbeat before (or at) the first detected beat to the bar holding the last
    bpb = int(a.beats_per_bar)
    beats = np.asarray(a.beats, dtype=np.float64)
    grid = _extended_grid(beats, duration, bpb)
    pre = int(np.searchsorted(grid, beats[0] - 1e-9))
    first_down = a.downbeats[0] if a.downbeats else beats[0]
    d_idx = int(np.argmin(np.abs(grid - first_down)))
    s0 = d_idx - bpb * math.ceil((d_idx - pre) / bpb) if d_idx > pre else d_idx
    last_idx = pre + beats.size - 1
    bars = max(1, math.ceil((last_idx + 1 - s0) / bpb))
    grid_idx = np.arange(grid.size, dtype=np.float64)
    start_t, stop_t = float(beats[0]) - 0.05, float(beats[-1]) + float(np.median(np.diff(beats[-5:])))
    stop_t = min(stop_t, duration)

    def to_time(beat_pos: np.ndarray | float) -> np.ndarray:
        return np.interp(s0 + np.asarray(beat_pos, dtype=np.float64), grid_idx, grid)

    steps = bars * bpb * _STEPS_PER_BEAT
    step_times = to_time(np.arange(steps) / _STEPS_PER_BEAT)
    temperature = 0.7 + 0.3 * complexity
    density = float(2.0 ** ((complexity - 0.5) * 1.6))
    swing = genre_obj.swing if genre_obj is not None else 0.0
    swing_unit = 0.5 if style_name == "jazz" else 0.25

    from core.music.arrange import sub_seed

    drum_notes: list[Note] = []
    kick_times: list[float] = []
    kick_steps = np.zeros(steps)
    if drums or bass:  # the bass follows the kick even when only the bass is added
        report(progress, 0.38, f"drums ({style_name})")
        tap = _tap(step_times, a, a.rhythm_steps)
        tap[step_times < start_t] = 0.0
        hits, vel, off = _sample_drums(
            samplers, bars=bars, style=style_name, seed=sub_seed(seed, "drums"), temperature=temperature,
            tap=tap, density=density,
        )  # fmt: skip
        kick_steps = np.where(hits[:, _KICK], vel[:, _KICK], 0.0)
        spread = 0.3 + 0.7 * humanize
        means = np.array(
            [vel[hits[:, c], c].mean() if hits[:, c].any() else 0.0 for c in range(hits.shape[1])]
        )
        ks, cs = np.nonzero(hits)
        pos = ks / _STEPS_PER_BEAT
        if swing > 0:  # delay the off-beat 16ths (8ths for jazz)
            late = (ks % 4 == 2) if swing_unit == 0.5 else (ks % 2 == 1)
            pos = pos + late * swing * swing_unit
        pos = pos + off[ks, cs] * humanize * 0.6 / _STEPS_PER_BEAT
        times = to_time(pos)
        v = np.clip(means[cs] + (vel[ks, cs] - means[cs]) * spread, 0.05, 1.0)
        for t, c, vv in zip(times.tolist(), cs.tolist(), v.tolist(), strict=True):
            if t < start_t or t >= stop_t:
                continue
            drum_notes.append(Note(t, t + 0.12, int(pitches[c]), int(min(127, max(1, round(127 * vv))))))
            if c == _KICK:
                kick_times.append(t)

    bass_notes: list[Note] = []
    if bass:
        report(progress, 0.5, "bass")
        spb = 2 if complexity < 0.4 else 4
        n_beats = bars * bpb
        beat_of = np.interp  # seconds -> grid position
        rel = []
        for s, e, label in a.chords:
            if label == "N":
                continue
            bs = float(beat_of(s, grid, grid_idx)) - s0
            be = float(beat_of(e, grid, grid_idx)) - s0
            if be > 0 and bs < n_beats and be > bs:
                rel.append((max(bs, 0.0), min(be, float(n_beats)), label))
        kick = kick_steps[:: _STEPS_PER_BEAT // spb]
        kick = kick / kick.max() if kick.max() > 0 else kick
        register = genre_obj.bass_register if genre_obj is not None else 36
        out = samplers.bass(
            chords=rel, steps_per_beat=spb, beats=n_beats, beats_per_bar=bpb, seed=sub_seed(seed, "bass"),
            temperature=min(1.0, temperature), kick=kick, register=int(register),
        )  # fmt: skip
        for s, e, p, vel_b in out:
            ts, te = float(to_time(float(s))), float(to_time(float(e)))
            if ts < start_t or ts >= stop_t:
                continue
            te = min(te, stop_t)
            bass_notes.append(Note(ts, max(te - 0.01, ts + 0.05), int(p), int(vel_b)))

    report(progress, 0.6, "rendering through the soundfont")
    parts: dict[str, Part] = {}
    if drums:
        parts["drums"] = Part("drums", program=0, is_drum=True, notes=drum_notes, pan=64)
    if bass:
        program = genre_obj.programs.get("bass", 33) if genre_obj is not None else 33
        parts["bass"] = Part("bass", program=int(program), notes=bass_notes, pan=64)
    rendered = render_parts(parts, bpm=60.0, end_beat=duration, sr=sr, seconds=duration)

    report(progress, 0.85, "mixing")
    # a 10-minute stereo stem is 211 MB: each rendered stem is levelled and ducked in place as it is
    # taken out of `rendered`, and the mix is summed into one new array (no temporaries)
    original = x.view()
    original.flags.writeable = False
    stems: dict[str, np.ndarray] = {"original": original}
    song_lufs = float(a.loudness_lufs)
    for name, rel_lu, extra in (("drums", DRUMS_REL_LU, drums_db), ("bass", BASS_REL_LU, bass_db)):
        if name not in rendered:
            stems[name] = np.zeros((2, n), dtype=np.float32)
            continue
        stem = _fit_len(rendered.pop(name), n)  # the renderer's own array (or a copy): ours to scale
        _level_in_place(stem, sr=sr, target_lufs=song_lufs + rel_lu + extra)
        if name == "bass" and duck and drums and kick_times:
            stem *= _duck_gain(np.asarray(kick_times), n=n, sr=sr, depth_db=DUCK_DB)[None, :]
        stems[name] = stem
    mix = stems["original"].copy()
    mix += stems["drums"]
    mix += stems["bass"]
    mix = master(mix, sr=sr, in_place=True)
    report(progress, 1.0, "done")

    def as_dicts(notes: list[Note], stem: str) -> tuple[dict, ...]:
        return tuple(
            {"start": nt.start, "end": nt.end, "pitch": nt.pitch, "velocity": nt.velocity, "stem": stem}
            for nt in notes
        )

    return BeatsResult(
        mix=mix.astype(np.float32, copy=False),
        stems=stems,
        sr=sr,
        analysis=a,
        style=style_name,
        drum_notes=as_dicts(drum_notes, "drums") if drums else (),
        bass_notes=as_dicts(bass_notes, "bass"),
        warnings=tuple(warnings),
        confidence=confidence,
        meta={
            "bars": bars,
            "grid_offset_s": offset, "density": density, "temperature": temperature, "seed": int(seed),
            "genre": genre_obj.name if genre_obj is not None else None,
        },
    )  # fmt: skip


def _fit_len(y: np.ndarray, n: int) -> np.ndarray:
    y = np.asarray(y, dtype=np.float32)
    if y.shape[1] >= n:
        return np.ascontiguousarray(y[:, :n])
    return np.pad(y, ((0, 0), (0, n - y.shape[1])))
