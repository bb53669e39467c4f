"""Music analysis: tempo, beats, downbeats, onsets, rhythm profile, key and chords.

Everything is computed on a mono 22050 Hz version of the signal.

* Onsets/tempo/beats: a spectral-flux onset envelope (librosa); a metrical comb over the onset
  autocorrelation proposes a beat period, and a trained tempo-octave chooser (a conditional logit fitted
  on POP909's train split by ``python -m models.train_tempo``; ``models/checkpoints/tempo_octave.json``)
  picks the metrical level among its half, 2/3, itself, 3/2 and double from a learned tempo prior, the
  comb salience, onset and bass-band autocorrelations, chord changes per beat and onsets per beat; then
  dynamic-programming beat tracking (librosa) follows a *local* tempo curve (so ritardandi and drifting
  live tempos are tracked).
* Key: Krumhansl-Schmuckler correlation of the track's average chroma with rotated major/minor profiles.
* Chords: beat-synchronous chroma decoded with an HMM (Viterbi) over 24 major/minor triad templates plus
  ``N`` (no chord), with a self-transition prior.
* Downbeats: the bar phase (4/4) whose beats carry most chord changes, low-frequency onsets and accents.
* Rhythm profile: mean onset strength at each of the 16 sixteenth-note positions of a bar
  (``rhythm_steps``), the "tap" that conditions the drum model.

librosa is imported inside the functions (never at import time). Its numba code is compiled on the
first call of a fresh install (about 30 s once; later calls take ~1 s for a 3-minute song).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from core.audio.checks import check_signal
from core.errors import InputError, ModelError
from core.progress import ProgressFn, report

#: Rate the analysis runs at.
ANALYSIS_SR = 22050
#: Hop of the onset envelope (samples at :data:`ANALYSIS_SR`, ~11.6 ms).
ONSET_HOP = 256
#: Hop of the chroma features (~93 ms).
CHROMA_HOP = 2048
#: Tuning is estimated on at most this much of a song, its middle: librosa's estimate takes a
#: full-length spectrogram (730 MB for a 10-minute song), and a song's tuning does not change along it.
TUNING_WINDOW_S = 240.0
#: Frames of the onset spectrogram computed at once (~48 s of audio, 17 MB).
_MEL_BLOCK = 4096

PITCH_NAMES: tuple[str, ...] = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
# Albrecht & Shanahan (2013) key profiles, derived from a corpus of popular music
_MAJOR_PROFILE = np.array(
    [0.238, 0.006, 0.111, 0.006, 0.137, 0.094, 0.016, 0.214, 0.009, 0.080, 0.008, 0.081]
)
_MINOR_PROFILE = np.array(
    [0.220, 0.006, 0.104, 0.123, 0.019, 0.103, 0.012, 0.214, 0.062, 0.022, 0.061, 0.052]
)

_MIN_SECONDS = 2.0  # shorter input: no tempo/key
_SILENCE_LUFS = -60.0
_TEMPO_MIN, _TEMPO_MAX = 30.0, 300.0
_PRIOR_BPM, _PRIOR_OCTAVES = 95.0, 1.2
_SHARP_RATE = ANALYSIS_SR / 512


@dataclass(frozen=True)
class QuickAnalysis:
    """Fast summary of a track (for the feed, uploads and the library).

    Attributes
    ----------
    duration_s : float
        Length in seconds.
    loudness_lufs : float
        Integrated loudness (``-inf`` for silence).
    tempo_bpm : float or None
        Tempo in BPM, None when no beat was found.
    key : str or None
        Key like ``"A minor"``, None for silence/very short input.
    beats : tuple of float
        Beat times in seconds.
    """

    duration_s: float
    loudness_lufs: float
    tempo_bpm: float | None
    key: str | None
    beats: tuple[float, ...]


@dataclass(frozen=True, eq=False)
class Analysis:
    """Full analysis of a track (the "add beats" screen and the drum/bass models use it).

    Attributes
    ----------
    duration_s, loudness_lufs : float
        Length (s) and integrated loudness (LUFS).
    tempo_bpm : float or None
        Global tempo (BPM, median of the beat grid), None when no beat was found.
    tempo_confidence : float
        0..1, how periodic the onsets are at that tempo.
    beats : tuple of float
        Beat times (s).
    downbeats : tuple of float
        Times of the first beat of each bar (4/4), a subset of ``beats``.
    onsets : tuple of float
        Onset times (s).
    rhythm_steps : np.ndarray
        float32 ``(16,)``: mean onset strength at each sixteenth-note position of a bar (position 0 is the
        downbeat), scaled so the largest is 1; zeros when there is no beat grid.
    key : str or None
        Key like ``"A minor"``.
    key_confidence : float
        0..1: correlation of the chroma with the chosen key profile.
    chords : tuple of (float, float, str)
        ``(start, end, label)`` with labels ``"C:maj"``, ``"A:min"``, or ``"N"`` (no chord).
    beats_per_bar : int
        4.
    tempo_alternatives : tuple of (float, float)
        The other metrical levels the tempo chooser weighed, ``(bpm, probability)``, most likely first
        (half or double time, or a 2/3 or 3/2 feel), scaled like ``tempo_bpm``; the chosen level has
        the rest of the probability. Empty when no chooser was used (no beat, or isolated clicks).
    """

    duration_s: float
    loudness_lufs: float
    tempo_bpm: float | None
    tempo_confidence: float
    beats: tuple[float, ...]
    downbeats: tuple[float, ...]
    onsets: tuple[float, ...]
    rhythm_steps: np.ndarray
    key: str | None
    key_confidence: float
    chords: tuple[tuple[float, float, str], ...]
    beats_per_bar: int = 4
    tempo_alternatives: tuple[tuple[float, float], ...] = ()
    onset_envelope: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32), repr=False)
    onset_rate: float = ANALYSIS_SR / ONSET_HOP

    def sixteenth_grid(self) -> np.ndarray:
        """Times (s) of the sixteenth notes of the beat grid (4 per beat, linear between beats)."""
        return _subdivide(np.asarray(self.beats, dtype=np.float64), 4)

    def tempo_alternatives_json(self) -> list[dict]:
        """:attr:`tempo_alternatives` as ``[{"bpm", "probability"}]`` (rounded), the CLIs' JSON form."""
        return [{"bpm": round(b, 2), "probability": round(p, 3)} for b, p in self.tempo_alternatives]

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (rounded times; ``-inf`` loudness becomes None)."""
        return {
            "duration_s": round(self.duration_s, 3),
            "loudness_lufs": _json_float(self.loudness_lufs),
            "tempo_bpm": None if self.tempo_bpm is None else round(self.tempo_bpm, 2),
            "tempo_confidence": round(self.tempo_confidence, 3),
            "tempo_alternatives": self.tempo_alternatives_json(),
            "key": self.key,
            "key_confidence": round(self.key_confidence, 3),
            "beats": [round(t, 3) for t in self.beats],
            "downbeats": [round(t, 3) for t in self.downbeats],
            "onsets": [round(t, 3) for t in self.onsets],
            "rhythm_steps": [round(float(v), 3) for v in self.rhythm_steps],
            "chords": [[round(s, 3), round(e, 3), lab] for s, e, lab in self.chords],
        }


def _json_float(v: float) -> float | None:
    return round(v, 2) if math.isfinite(v) else None


# --------------------------------------------------------------------------------------------------
# helpers


def _validate(y, *, sr) -> np.ndarray:
    return check_signal(y, sr=sr, min_sr=8000, max_sr=192000)


def _mono(y: np.ndarray, sr: int) -> np.ndarray:
    m = y.astype(np.float32, copy=False).mean(axis=0)
    if int(sr) != ANALYSIS_SR:
        import soxr

        m = soxr.resample(m, int(sr), ANALYSIS_SR, quality="MQ")
    return np.ascontiguousarray(m, dtype=np.float32)


def _segment_mean(x: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Mean of the columns of ``x`` (d, n) between consecutive frame ``bounds``.

    An empty segment takes the nearest frame.
    """
    n = x.shape[1]
    b = np.clip(bounds.astype(int), 0, n)
    cs = np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(x, axis=1, dtype=np.float64)], axis=1)
    lo, hi = b[:-1], np.maximum(b[1:], b[:-1] + 1)
    hi = np.minimum(hi, n)
    lo = np.minimum(lo, hi - 1)
    return ((cs[:, hi] - cs[:, lo]) / (hi - lo)[None, :]).astype(np.float32)


def _subdivide(beats: np.ndarray, k: int) -> np.ndarray:
    """Split each inter-beat interval into ``k`` equal steps (the last beat's step repeats its interval)."""
    if beats.size < 2:
        return beats.copy()
    ext = np.concatenate([beats, [beats[-1] + (beats[-1] - beats[-2])]])
    frac = np.arange(k) / k
    return (ext[:-1, None] + np.diff(ext)[:, None] * frac[None, :]).ravel()


def _rhythm_features(mono: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Onset envelope (spectral flux of a log-mel spectrogram) and the same for the bass band (< 250 Hz)."""
    import librosa

    db = librosa.power_to_db(_mel_power(mono))
    env = librosa.onset.onset_strength(S=db, sr=ANALYSIS_SR, hop_length=ONSET_HOP)
    n_low = int(np.searchsorted(librosa.mel_frequencies(n_mels=96, fmax=ANALYSIS_SR / 2), 250.0))
    bass = librosa.onset.onset_strength(S=db[: max(n_low, 2)], sr=ANALYSIS_SR, hop_length=ONSET_HOP)
    return env.astype(np.float32), bass.astype(np.float32)


def _mel_power(mono: np.ndarray, *, n_fft: int = 2048, n_mels: int = 96) -> np.ndarray:
    """``librosa.feature.melspectrogram`` of ``mono`` (centred frames, zero padding), a block at a time.

    The values are librosa's up to float rounding; only :data:`_MEL_BLOCK` frames of the linear
    spectrogram exist at once, where librosa holds all of them (640 MB for a 10-minute song).
    """
    import librosa

    hop = ONSET_HOP
    frames = 1 + mono.size // hop
    padded = np.pad(np.asarray(mono, dtype=np.float32), n_fft // 2)
    basis = librosa.filters.mel(sr=ANALYSIS_SR, n_fft=n_fft, n_mels=n_mels, fmax=ANALYSIS_SR / 2)
    out = np.empty((n_mels, frames), dtype=np.float32)
    for f0 in range(0, frames, _MEL_BLOCK):
        f1 = min(frames, f0 + _MEL_BLOCK)
        seg = padded[f0 * hop : (f1 - 1) * hop + n_fft]
        spec = np.abs(librosa.stft(seg, n_fft=n_fft, hop_length=hop, center=False)) ** 2
        out[:, f0:f1] = basis @ spec
    return out


def _tuning(mono: np.ndarray, *, bins_per_octave: int) -> float:
    """librosa's tuning estimate (fractions of a bin) from at most :data:`TUNING_WINDOW_S` of ``mono``."""
    import librosa

    n = int(TUNING_WINDOW_S * ANALYSIS_SR)
    if mono.size > n:
        start = (mono.size - n) // 2
        mono = mono[start : start + n]
    return float(librosa.estimate_tuning(y=mono, sr=ANALYSIS_SR, bins_per_octave=bins_per_octave))


def _onset_envelope(mono: np.ndarray) -> np.ndarray:
    return _rhythm_features(mono)[0]


def _is_silent(loudness: float, duration: float) -> bool:
    return not math.isfinite(loudness) or loudness < _SILENCE_LUFS or duration < _MIN_SECONDS


# --------------------------------------------------------------------------------------------------
# tempo and beats


def _autocorrelation(env: np.ndarray) -> np.ndarray:
    """Normalised autocorrelation of the onset envelope, summed over +-1 lag (merges split peaks)."""
    x = env.astype(np.float64) - float(env.mean())
    n = x.size
    ac = np.fft.irfft(np.abs(np.fft.rfft(x, 2 * n)) ** 2)[:n]
    if ac[0] <= 0:
        return np.zeros(n)
    return np.convolve(ac / ac[0], np.ones(3), mode="same")


def _tempo_salience(env: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Metrical comb over the onset autocorrelation on a 40-240 BPM grid.

    Returns ``(bpm, salience, ac)``: the salience of a tempo adds the autocorrelation at the beat lag, at 2
    and 4 beats (half bar, bar) and at half a beat, so levels that fit a metrical hierarchy win.
    """
    rate = ANALYSIS_SR / ONSET_HOP
    ac = _autocorrelation(env)
    bpm = np.arange(40.0, 240.0, 0.25)
    lag = 60.0 / bpm * rate
    lags = np.arange(ac.size)

    def at(x):
        return np.interp(x, lags, ac, right=0.0)

    salience = at(lag) + 0.5 * at(2 * lag) + 0.25 * at(4 * lag) + 0.25 * at(lag / 2)
    return bpm, salience, ac


def _chord_change_rate(chroma: np.ndarray) -> float:
    """Chord changes per second, from triads decoded frame by frame (no beat grid needed).

    A sticky Viterbi over the 24 major/minor triads on the normalised chroma frames; it counts spurious
    changes too (melody notes), but its rate relative to a candidate beat period still tells metrical
    levels apart: pop harmony changes every 2-4 beats at the right level.
    """
    import librosa

    if chroma.shape[1] < 2:
        return 0.0
    templates, _ = _chord_templates()
    c = chroma / np.maximum(np.linalg.norm(chroma, axis=0, keepdims=True), 1e-9)
    sim = templates @ c
    prob = np.exp(20.0 * (sim - sim.max(axis=0, keepdims=True)))
    prob /= prob.sum(axis=0, keepdims=True)
    states = librosa.sequence.viterbi(prob, librosa.sequence.transition_loop(24, 0.95))
    return float(np.count_nonzero(np.diff(states))) / (chroma.shape[1] * CHROMA_HOP / ANALYSIS_SR)


def _onset_rate(env: np.ndarray) -> float:
    """Onsets per second (librosa's peak picking on the onset envelope, as :func:`analyze` reports)."""
    import librosa

    on = librosa.onset.onset_detect(onset_envelope=env, sr=ANALYSIS_SR, hop_length=ONSET_HOP, units="frames")
    return float(on.size) / (env.size * ONSET_HOP / ANALYSIS_SR)


#: Names of the features the tempo-octave chooser scores each candidate tempo with (in order).
OCTAVE_FEATURES: tuple[str, ...] = (
    "log2_bpm",
    "log2_bpm_sq",
    "log_comb_salience",
    "ac_beat",
    "ac_half_beat",
    "ac_two_beats",
    "ac_bar",
    "chord_changes_per_beat_sq",
    "onsets_per_beat_sq",
    "bass_ac_half_beat",
    "bass_ac_beat",
    "ternary",
)
#: Metrical levels tried around the comb's tempo (its half, two thirds, itself, 3/2 and double).
OCTAVE_RATIOS: tuple[float, ...] = (0.5, 2 / 3, 1.0, 1.5, 2.0)


def _octave_candidates(
    env: np.ndarray,
    chroma: np.ndarray | None,
    bass: np.ndarray | None = None,
    ratios: tuple[float, ...] = OCTAVE_RATIOS,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Candidate tempi (BPM) at the metrical levels around the comb's choice, their features and that choice.

    The comb's choice is the salience maximum under a wide log-normal prior around 95 BPM (1.2 octaves);
    each candidate (``ratios`` times it, within 40-240 BPM) is refined to the salience maximum within
    +-4 %. Features are in the order of :data:`OCTAVE_FEATURES`: ``log2(bpm/80)`` and its square (a
    learned tempo prior), the log of the comb salience relative to the candidates' largest, the onset
    autocorrelation at 1/2, 1, 2 and 4 beats, the squared log2 of the chord changes per beat and of the
    onsets per beat (their linear log2 would add nothing: within a song it is ``-log2_bpm`` plus a
    constant, and constants cancel when candidates are compared; the square makes the song's own rates
    interact with the candidate tempo), the autocorrelation of the bass-band onsets at half a beat and a
    beat (low accompaniment notes move on the beat's subdivisions), and 1 for the ternary relations (2/3
    and 3/2 of the comb's tempo: a shuffle or 12/8 feel grouped the wrong way), 0 for the octaves.
    """
    rate = ANALYSIS_SR / ONSET_HOP
    bpm, salience, ac = _tempo_salience(env)
    lags = np.arange(ac.size)
    prior = np.exp(-0.5 * (np.log2(bpm / _PRIOR_BPM) / _PRIOR_OCTAVES) ** 2)
    comb = float(bpm[np.argmax(np.maximum(salience, 0.0) * prior)])
    chord_rate = _chord_change_rate(chroma) if chroma is not None else 0.0
    onset_rate = _onset_rate(env)
    bass_ac = _autocorrelation(bass) if bass is not None and bass.size > 2 else np.zeros(2)
    bass_lags = np.arange(bass_ac.size)
    cands, rows = [], []
    for ratio in ratios:
        b = comb * ratio
        if not 40.0 <= b <= 240.0:
            continue
        near = np.abs(np.log(bpm / b)) <= 0.04
        b = float(bpm[near][np.argmax(salience[near])])
        lag = 60.0 / b * rate
        ac_at = np.interp([lag / 2, lag, 2 * lag, 4 * lag], lags, ac, right=0.0)
        x = math.log2(b / 80.0)
        per_beat = 60.0 / b
        cands.append(b)
        rows.append(
            [
                x,
                x * x,
                float(np.interp(b, bpm, salience)),
                ac_at[1],
                ac_at[0],
                ac_at[2],
                ac_at[3],
                math.log2(max(chord_rate * per_beat, 1.0 / 64)) ** 2,
                math.log2(max(onset_rate * per_beat, 1.0 / 64)) ** 2,
                float(np.interp(lag / 2, bass_lags, bass_ac, right=0.0)),
                float(np.interp(lag, bass_lags, bass_ac, right=0.0)),
                float(ratio in (2 / 3, 1.5)),
            ]
        )
    feats = np.array(rows, dtype=np.float64)
    # log of the salience relative to the best candidate: with the log2_bpm terms, the comb's own choice
    # (salience times a log-normal prior) is one setting of the weights
    feats[:, 2] = np.log(np.maximum(feats[:, 2] / max(float(feats[:, 2].max()), 1e-9), 1e-3))
    return np.array(cands), feats, comb


@dataclass(frozen=True, eq=False)
class TempoChooser:
    """A trained chooser of the metrical level (tempo octave): a linear score per candidate tempo.

    The candidate with the largest ``weights @ ((features - mean) / scale)`` wins (a conditional logit:
    the softmax of the scores over a song's candidates is the probability of each level). Trained by
    ``python -m models.train_tempo`` on POP909's train split; see :func:`load_tempo_chooser`.

    Attributes
    ----------
    features : tuple of str
        Feature names, equal to :data:`OCTAVE_FEATURES`.
    mean, scale, weights : np.ndarray
        float64 ``(len(features),)`` standardisation and weights.
    """

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray

    def scores(self, feats: np.ndarray) -> np.ndarray:
        """Scores ``(k,)`` of ``k`` candidates' features ``(k, len(features))``."""
        return ((np.asarray(feats, dtype=np.float64) - self.mean) / self.scale) @ self.weights

    def probabilities(self, feats: np.ndarray) -> np.ndarray:
        """Softmax of :meth:`scores` over the candidates."""
        s = self.scores(feats)
        e = np.exp(s - s.max())
        return e / e.sum()


TEMPO_CHOOSER_FORMAT = 1


def tempo_chooser_path() -> Path:
    """Path of the committed tempo-octave chooser (``models/checkpoints/tempo_octave.json``)."""
    from models.common import CHECKPOINT_DIR

    return CHECKPOINT_DIR / "tempo_octave.json"


def load_tempo_chooser(path: str | Path | None = None) -> TempoChooser:
    """Load a tempo-octave chooser written by ``python -m models.train_tempo``.

    Parameters
    ----------
    path : str or Path, optional
        JSON file; default :func:`tempo_chooser_path` (the committed one).

    Returns
    -------
    TempoChooser

    Raises
    ------
    core.errors.ModelError
        If the file is missing or unreadable, is not a tempo chooser of format version
        :data:`TEMPO_CHOOSER_FORMAT`, names other features than :data:`OCTAVE_FEATURES`, or holds
        arrays of the wrong length or non-finite values (a zero or negative scale included).

    Examples
    --------
    >>> chooser = load_tempo_chooser()
    >>> chooser.features == OCTAVE_FEATURES
    True
    """
    import json

    path = Path(path) if path is not None else tempo_chooser_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelError(f"cannot read the tempo chooser {path}: {exc}") from exc
    if not isinstance(data, dict) or data.get("kind") != "tempo_octave":
        kind = data.get("kind") if isinstance(data, dict) else type(data).__name__
        raise ModelError(f"{path} is not a tempo-octave chooser (kind {kind!r}, expected 'tempo_octave')")
    if data.get("format_version") != TEMPO_CHOOSER_FORMAT:
        raise ModelError(
            f"tempo chooser {path} has format version {data.get('format_version')!r}; "
            f"this code reads version {TEMPO_CHOOSER_FORMAT}"
        )
    features = data.get("features")
    if not isinstance(features, list) or tuple(features) != OCTAVE_FEATURES:
        raise ModelError(
            f"tempo chooser {path} uses features {data.get('features')!r}; expected {list(OCTAVE_FEATURES)}"
        )
    arrays = {}
    for name in ("mean", "scale", "weights"):
        try:
            a = np.asarray(data.get(name), dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"tempo chooser {path}: {name!r} is not a list of numbers") from exc
        if a.shape != (len(OCTAVE_FEATURES),) or not np.isfinite(a).all():
            raise ModelError(
                f"tempo chooser {path}: {name!r} must hold {len(OCTAVE_FEATURES)} finite numbers, "
                f"got shape {a.shape}"
            )
        arrays[name] = a
    if np.any(arrays["scale"] <= 0):
        raise ModelError(f"tempo chooser {path}: every 'scale' must be > 0, got {arrays['scale'].tolist()}")
    return TempoChooser(features=OCTAVE_FEATURES, **arrays)


def _global_tempo(env: np.ndarray, chroma: np.ndarray | None = None, bass: np.ndarray | None = None) -> float:
    """Tempo (BPM) of :func:`_choose_tempo`."""
    return _choose_tempo(env, chroma, bass)[0]


def _choose_tempo(
    env: np.ndarray, chroma: np.ndarray | None = None, bass: np.ndarray | None = None
) -> tuple[float, tuple[tuple[float, float], ...]]:
    """Tempo (BPM): the metrical level a trained chooser prefers among the comb's half, own and double;
    and the other levels it weighed, ``(bpm, probability)`` most likely first (empty without a chooser).

    The comb (:func:`_tempo_salience`) finds the beat period of a metrical hierarchy; a trained chooser
    (:func:`load_tempo_chooser`) then picks the octave from the comb salience, the onset autocorrelation
    at half a beat to a bar, the harmonic rhythm (chord changes per beat) and the onset density per
    beat. A sparse envelope (isolated clicks, a metronome) has no hierarchy: there the tempo is the click
    rate, preferring the octave nearer 120 BPM.
    """
    rate = ANALYSIS_SR / ONSET_HOP
    cands, feats, tempo = _octave_candidates(env, chroma, bass)
    if float(np.median(env)) < 0.1 * float(env.mean()):  # isolated impulses
        ac = _autocorrelation(env)
        lags = np.arange(ac.size)

        def at(lag):
            return float(np.interp(lag, lags, ac, right=0.0))

        for ratio in (2.0, 0.5):
            other = tempo * ratio
            a1, a2 = at(60.0 / tempo * rate), at(60.0 / other * rate)
            closer = abs(math.log2(other / 120.0)) < abs(math.log2(tempo / 120.0))
            if 40.0 <= other <= 240.0 and a1 > 0 and abs(a2 / a1 - 1.0) <= 0.05 and closer:
                return other, ()
        return tempo, ()
    if not cands.size:
        return tempo, ()
    probs = load_tempo_chooser().probabilities(feats)
    order = np.argsort(-probs, kind="stable")
    chosen = float(cands[order[0]])
    # each level at its exact metrical relation to the chosen one (the candidates themselves are each
    # refined to their own salience peak, a percent or so apart from the exact multiple)
    ratios = np.array(OCTAVE_RATIOS)
    nominal = ratios[np.argmin(np.abs(np.log(cands[:, None] / tempo / ratios[None, :])), axis=1)]
    others = tuple((chosen * float(nominal[i] / nominal[order[0]]), float(probs[i])) for i in order[1:])
    return chosen, others


def _track_beats(
    env: np.ndarray,
    bass: np.ndarray | None = None,
    chroma: np.ndarray | None = None,
    mono: np.ndarray | None = None,
) -> tuple[float | None, np.ndarray, float, tuple[tuple[float, float], ...]]:
    """Global tempo, beat times, a tempo confidence and the other metrical levels weighed
    (:func:`_choose_tempo`, scaled to the tracked tempo).

    The tempo comes from ``env``; the beats are tracked (dynamic programming along a local tempo curve) on
    ``env`` plus the bass-band envelope, which favours the on-beat over syncopated off-beats. With
    tonal ``chroma`` (peaky pitch-class frames, not noise or clicks), a last global check moves the grid by
    half a beat when harmonic changes fall between the beats rather than on them -- only when a second,
    sharper-in-time chroma of ``mono`` agrees (the low bins of the main chroma smear chord changes).
    """
    import librosa

    rate = ANALYSIS_SR / ONSET_HOP
    if env.size < rate * _MIN_SECONDS or float(env.max()) <= 1e-6:
        return None, np.zeros(0), 0.0, ()
    tempo, others = _choose_tempo(env, chroma, bass)
    local = _local_tempo(env, tempo)
    strength = env / max(float(env.std()), 1e-9)
    if bass is not None and bass.size:
        n = min(strength.size, bass.size)
        strength = strength[:n] + bass[:n] / max(float(bass.std()), 1e-9)
        local = local[:n]
    _, frames = librosa.beat.beat_track(
        onset_envelope=strength, sr=ANALYSIS_SR, hop_length=ONSET_HOP, bpm=local, tightness=100, trim=True
    )
    beats = librosa.frames_to_time(frames, sr=ANALYSIS_SR, hop_length=ONSET_HOP)
    if beats.size < 2:
        return None, np.zeros(0), 0.0, ()
    period = float(np.median(np.diff(beats)))
    tonal = (
        chroma is not None
        and float(np.mean(chroma.max(axis=0) / np.maximum(chroma.mean(axis=0), 1e-9))) > 2.5
    )
    if tonal and beats.size >= 4:
        mids = beats[:-1] + np.diff(beats) / 2
        # squared novelty: a chord change exactly on a beat outweighs two half-changes around it
        on = float(np.mean(_harmonic_novelty(chroma, beats[1:-1], period / 2) ** 2))
        off = float(np.mean(_harmonic_novelty(chroma, mids[1:-1], period / 2) ** 2))
        if on < 0.95 * off and mono is not None:
            sharp = _sharp_chroma(mono)
            on2 = float(np.mean(_harmonic_novelty(sharp, beats[1:-1], period / 2, rate=_SHARP_RATE) ** 2))
            off2 = float(np.mean(_harmonic_novelty(sharp, mids[1:-1], period / 2, rate=_SHARP_RATE) ** 2))
            if on2 < off2:
                beats = mids
    bpm = 60.0 / float(np.median(np.diff(beats)))
    others = tuple((bpm * b / tempo, p) for b, p in others)
    return bpm, beats, _tempo_confidence(env, 60.0 / bpm * rate), others


def _sharp_chroma(mono: np.ndarray) -> np.ndarray:
    """Chroma with short analysis windows (12 bins/octave from C3, hop 512): sharp chord boundaries."""
    import librosa

    fmin = librosa.note_to_hz("C3")
    c = np.abs(
        librosa.cqt(
            mono, sr=ANALYSIS_SR, hop_length=512, fmin=fmin, n_bins=48, bins_per_octave=12,
            tuning=_tuning(mono, bins_per_octave=12),
        )
    )  # fmt: skip
    return librosa.feature.chroma_cqt(
        C=c, sr=ANALYSIS_SR, hop_length=512, fmin=fmin, bins_per_octave=12, n_octaves=4, norm=None
    )


def _local_tempo(env: np.ndarray, tempo: float) -> np.ndarray:
    """Per-frame tempo curve within +-10 % of ``tempo`` (follows drift, cannot jump metrical levels).

    Autocorrelation of 8 s windows every second (one batched FFT), peak picked near the global tempo with
    a mild preference for it, median-smoothed over 5 s and interpolated to the envelope's frames.
    """
    from numpy.lib.stride_tricks import sliding_window_view
    from scipy.ndimage import median_filter

    rate = ANALYSIS_SR / ONSET_HOP
    n = env.size
    win, step = int(8 * rate), int(rate)
    if n <= win:
        return np.full(n, tempo)
    x = np.pad(env.astype(np.float64), (win // 2, win // 2))
    frames = sliding_window_view(x, win)[::step]
    frames = (frames - frames.mean(axis=1, keepdims=True)) * np.hanning(win)[None, :]
    ac = np.fft.irfft(np.abs(np.fft.rfft(frames, 2 * win, axis=1)) ** 2, axis=1)[:, :win]
    bpm = tempo * np.exp(np.linspace(np.log(1 / 1.1), np.log(1.1), 81))
    lag = 60.0 / bpm * rate
    lo = np.floor(lag).astype(int)
    frac = lag - lo
    val = ac[:, lo] * (1 - frac) + ac[:, np.minimum(lo + 1, win - 1)] * frac
    val *= np.exp(-0.5 * (np.log(bpm / tempo) / 0.05) ** 2)[None, :]
    curve = median_filter(bpm[np.argmax(val, axis=1)], size=5, mode="nearest")
    centers = np.arange(curve.size) * step
    return np.interp(np.arange(n), centers, curve)


def _harmonic_novelty(
    chroma: np.ndarray, times: np.ndarray, span: float, gap: float = 0.0, rate: float | None = None
) -> np.ndarray:
    """1 - cosine similarity of the mean chroma over ``span`` s before and after each time.

    ``gap`` leaves out the frames within ``gap`` s of the time itself (where percussive onsets smear the
    chroma).
    """
    rate = ANALYSIS_SR / CHROMA_HOP if rate is None else rate
    n = chroma.shape[1]
    cs = np.concatenate([np.zeros((chroma.shape[0], 1)), np.cumsum(chroma, axis=1, dtype=np.float64)], axis=1)

    def mean(a, b):
        lo = np.clip(np.round(a * rate).astype(int), 0, n - 1)
        hi = np.clip(np.round(b * rate).astype(int), lo + 1, n)
        m = (cs[:, hi] - cs[:, lo]) / (hi - lo)
        return m / np.maximum(np.linalg.norm(m, axis=0), 1e-9)

    before = mean(times - gap - span, times - gap)
    after = mean(times + gap, times + gap + span)
    return 1.0 - np.sum(before * after, axis=0)


def _tempo_confidence(env: np.ndarray, period_frames: float) -> float:
    x = env.astype(np.float64) - float(env.mean())
    n = x.size
    spec = np.fft.rfft(x, 2 * n)
    ac = np.fft.irfft(np.abs(spec) ** 2)[:n]
    if ac[0] <= 0:
        return 0.0
    ac /= ac[0]
    lag = round(period_frames)
    if lag + 2 >= n:
        return 0.0
    return float(np.clip(ac[max(1, lag - 2) : lag + 3].max(), 0.0, 1.0))


# --------------------------------------------------------------------------------------------------
# key


def _chroma(mono: np.ndarray) -> np.ndarray:
    import librosa

    c = librosa.feature.chroma_cqt(
        y=mono, sr=ANALYSIS_SR, hop_length=CHROMA_HOP, fmin=librosa.note_to_hz("C2"), n_octaves=5, norm=None,
        tuning=_tuning(mono, bins_per_octave=36),
    )  # fmt: skip
    return c.astype(np.float32)


def _key_profile(chroma: np.ndarray) -> np.ndarray:
    """Pitch-class profile of a track: chroma frames scaled to a maximum of 1, then summed."""
    return (chroma / np.maximum(chroma.max(axis=0, keepdims=True), 1e-9)).sum(axis=1)


def _key_from_chroma(profile: np.ndarray) -> tuple[str | None, float]:
    if not np.isfinite(profile).all() or float(profile.sum()) <= 1e-9 or float(profile.std()) <= 1e-12:
        return None, 0.0
    best, best_r = None, -2.0
    for mode, ref in (("major", _MAJOR_PROFILE), ("minor", _MINOR_PROFILE)):
        for tonic in range(12):
            r = float(np.corrcoef(profile, np.roll(ref, tonic))[0, 1])
            if r > best_r:
                best, best_r = f"{PITCH_NAMES[tonic]} {mode}", r
    return best, float(np.clip(best_r, 0.0, 1.0))


# --------------------------------------------------------------------------------------------------
# chords


def _chord_templates() -> tuple[np.ndarray, list[str]]:
    rows, labels = [], []
    for quality, third in (("maj", 4), ("min", 3)):
        for root in range(12):
            t = np.zeros(12)
            t[[root, (root + third) % 12, (root + 7) % 12]] = 1.0
            rows.append(t / np.linalg.norm(t))
            labels.append(f"{PITCH_NAMES[root]}:{quality}")
    return np.array(rows), labels


def _decode_chords(
    chroma_sync: np.ndarray, energy: np.ndarray, bounds: np.ndarray, *, self_prob: float = 0.6
) -> list[tuple[float, float, str]]:
    """Viterbi over 24 triads + N on beat-synchronous chroma (12, n); ``bounds`` has n + 1 times."""
    import librosa

    templates, labels = _chord_templates()
    n = chroma_sync.shape[1]
    norm = np.linalg.norm(chroma_sync, axis=0, keepdims=True)
    c = chroma_sync / np.maximum(norm, 1e-9)
    sim = templates @ c  # (24, n) cosine similarity
    quiet = energy < 0.05 * max(float(np.median(energy)), 1e-9)
    sim_n = np.where(quiet, 1.0, 0.55)[None, :]
    scores = np.concatenate([sim, sim_n], axis=0)
    prob = np.exp(30.0 * (scores - scores.max(axis=0, keepdims=True)))
    prob /= prob.sum(axis=0, keepdims=True)
    trans = librosa.sequence.transition_loop(25, self_prob)
    states = librosa.sequence.viterbi(prob, trans)
    labels = [*labels, "N"]
    out: list[tuple[float, float, str]] = []
    start = 0
    for i in range(1, n + 1):
        if i == n or states[i] != states[start]:
            out.append((float(bounds[start]), float(bounds[i]), labels[states[start]]))
            start = i
    return out


# --------------------------------------------------------------------------------------------------
# downbeats and rhythm


def _downbeats(beats: np.ndarray, chroma: np.ndarray, bass: np.ndarray) -> np.ndarray:
    """Downbeats (4/4) by Viterbi decoding of the bar position of every beat.

    Evidence for "first beat of a bar": a bass-band onset and a harmonic change (chroma of the two beats
    before vs. the two after). States are the 4 bar positions; each beat advances the position by one,
    with a small probability of a jump (a beat the tracker dropped or added).
    """
    n = beats.size
    if n < 8:
        return beats[:1].copy()
    rate = ANALYSIS_SR / ONSET_HOP
    period = float(np.median(np.diff(beats)))

    def zscore(x):
        return (x - x.mean()) / max(float(x.std()), 1e-9)

    idx = np.clip(np.round(beats * rate).astype(int), 1, bass.size - 2)
    low = np.maximum(bass[idx], np.maximum(bass[idx - 1], bass[idx + 1]))
    score = zscore(low) + 0.5 * zscore(_harmonic_novelty(chroma, beats, 2 * period))
    states, eps = 4, 1e-3
    trans = np.full((states, states), math.log(eps / (states - 1)))
    for p in range(states):
        trans[p, (p + 1) % states] = math.log(1 - eps)
    delta = np.zeros(states)
    delta[0] = score[0]
    back = np.zeros((n, states), dtype=int)
    for i in range(1, n):
        m = delta[:, None] + trans
        back[i] = m.argmax(axis=0)
        delta = m.max(axis=0)
        delta[0] += score[i]
    path = np.zeros(n, dtype=int)
    path[-1] = int(delta.argmax())
    for i in range(n - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    return beats[path == 0]


def _rhythm_steps(beats: np.ndarray, downbeats: np.ndarray, env: np.ndarray, rate: float) -> np.ndarray:
    steps = np.zeros(16, np.float32)
    if beats.size < 4 or downbeats.size == 0:
        return steps
    grid = _subdivide(beats, 4)
    first = int(np.searchsorted(beats, downbeats[0] - 1e-6))
    grid = grid[first * 4 :]
    idx = np.round(grid * rate).astype(int)
    ok = idx < env.size - 1
    idx = idx[ok]
    # max over +-1 frame: tolerate small grid/onset misalignment
    vals = np.maximum(env[idx], np.maximum(env[np.maximum(idx - 1, 0)], env[idx + 1]))
    pos = np.arange(vals.size) % 16
    for p in range(16):
        sel = vals[pos == p]
        steps[p] = float(sel.mean()) if sel.size else 0.0
    top = float(steps.max())
    return steps / top if top > 0 else steps


# --------------------------------------------------------------------------------------------------
# public API


def quick_analysis(y: np.ndarray, *, sr: int) -> QuickAnalysis:
    """Duration, loudness, tempo, key and beats of a track.

    Parameters
    ----------
    y : np.ndarray
        float audio ``(channels, samples)``.
    sr : int
        Sample rate in Hz.

    Returns
    -------
    QuickAnalysis
        ``tempo_bpm``/``key`` are None for silence or input shorter than 2 s.

    Examples
    --------
    >>> import numpy as np
    >>> quick_analysis(np.zeros((2, 44100), np.float32), sr=44100).tempo_bpm is None
    True
    """
    from core.audio.loudness import integrated_lufs

    y = _validate(y, sr=sr)
    duration = y.shape[1] / float(sr)
    loudness = integrated_lufs(y, sr=int(sr)) if y.shape[1] else float("-inf")
    if _is_silent(loudness, duration):
        return QuickAnalysis(duration, loudness, None, None, ())
    mono = _mono(y, int(sr))
    env, bass = _rhythm_features(mono)
    chroma = _chroma(mono)
    tempo, beats, _, _ = _track_beats(env, bass, chroma, mono)
    key, _ = _key_from_chroma(_key_profile(chroma))
    return QuickAnalysis(duration, loudness, tempo, key, tuple(float(t) for t in beats))


def analyze(y: np.ndarray, *, sr: int, progress: ProgressFn | None = None) -> Analysis:
    """Full analysis: tempo, beats, downbeats, onsets, rhythm profile, key and chords.

    Parameters
    ----------
    y : np.ndarray
        float audio ``(channels, samples)``.
    sr : int
        Sample rate in Hz.
    progress : callable, optional
        ``progress(fraction, message)``; may raise :class:`core.errors.CancelledError`.

    Returns
    -------
    Analysis
        See :class:`Analysis`. Silence or input shorter than 2 s gives no tempo, beats, key or chords.

    Examples
    --------
    >>> import numpy as np
    >>> a = analyze(np.zeros((2, 22050), np.float32), sr=22050)
    >>> (a.tempo_bpm, a.key, a.chords)
    (None, None, ())
    """
    import librosa

    from core.audio.loudness import integrated_lufs

    y = _validate(y, sr=sr)
    report(progress, 0.0, "measuring loudness")
    duration = y.shape[1] / float(sr)
    loudness = integrated_lufs(y, sr=int(sr)) if y.shape[1] else float("-inf")
    rate = ANALYSIS_SR / ONSET_HOP
    if _is_silent(loudness, duration):
        report(progress, 1.0, "done")
        return Analysis(duration, loudness, None, 0.0, (), (), (), np.zeros(16, np.float32), None, 0.0, ())
    mono = _mono(y, int(sr))
    report(progress, 0.1, "onsets")
    env, bass = _rhythm_features(mono)
    onsets = librosa.onset.onset_detect(
        onset_envelope=env, sr=ANALYSIS_SR, hop_length=ONSET_HOP, units="time", backtrack=False
    )
    report(progress, 0.3, "harmony")
    chroma = _chroma(mono)
    key, key_conf = _key_from_chroma(_key_profile(chroma))
    report(progress, 0.5, "tempo and beats")
    tempo, beats, tempo_conf, alternatives = _track_beats(env, bass, chroma, mono)
    chords: list[tuple[float, float, str]] = []
    downbeats = np.zeros(0)
    if beats.size >= 2:
        chroma_rate = ANALYSIS_SR / CHROMA_HOP
        bounds = np.concatenate([[0.0], beats, [duration]])
        seg = _segment_mean(chroma, np.round(bounds * chroma_rate))  # segment i+1 is beat i's chroma
        report(progress, 0.7, "chords")
        chords = _decode_chords(seg, seg.sum(axis=0), bounds)
        report(progress, 0.85, "downbeats")
        downbeats = _downbeats(beats, chroma, bass)
    steps = _rhythm_steps(beats, downbeats, env, rate)
    report(progress, 1.0, "done")
    return Analysis(
        duration_s=duration,
        loudness_lufs=loudness,
        tempo_bpm=tempo,
        tempo_confidence=tempo_conf,
        beats=tuple(float(t) for t in beats),
        downbeats=tuple(float(t) for t in downbeats),
        onsets=tuple(float(t) for t in onsets),
        rhythm_steps=steps,
        key=key,
        key_confidence=key_conf,
        chords=tuple(chords),
        tempo_alternatives=alternatives,
        onset_envelope=env,
        onset_rate=rate,
    )


def correct_tempo(analysis: Analysis, *, factor: float) -> Analysis:
    """Halve or double the beat grid (fix an octave error), keeping the downbeats.

    Parameters
    ----------
    analysis : Analysis
        A result of :func:`analyze`.
    factor : float
        2.0 doubles the tempo (a beat between each pair), 0.5 halves it (every other beat, aligned with
        the downbeats).

    Returns
    -------
    Analysis
        A new analysis with tempo, beats, downbeats and rhythm profile updated.

    Examples
    --------
    >>> beats = (0.0, 1.0, 2.0, 3.0, 4.0)
    >>> a = Analysis(8.0, -14.0, 60.0, 0.9, beats, (0.0, 4.0), (), np.zeros(16), None, 0.0, ())
    >>> correct_tempo(a, factor=2.0).tempo_bpm
    120.0
    """
    if factor not in (0.5, 2.0):
        raise InputError(f"tempo correction factor must be 0.5 or 2.0, got {factor!r}")
    beats = np.asarray(analysis.beats, dtype=np.float64)
    if analysis.tempo_bpm is None or beats.size < 2:
        raise InputError("this analysis has no beat grid to correct")
    downbeats = np.asarray(analysis.downbeats, dtype=np.float64)
    if factor == 2.0:
        new_beats = _subdivide(beats, 2)
        # a bar of the doubled grid lasts two old beats: every 4th new beat from the first downbeat
        first = int(np.searchsorted(new_beats, downbeats[0] - 1e-9)) if downbeats.size else 0
        new_down = new_beats[first::4] if downbeats.size else downbeats
    else:
        start = int(np.argmin(np.abs(beats - downbeats[0]))) % 2 if downbeats.size else 0
        new_beats = beats[start::2]
        new_down = downbeats[::2]
    steps = analysis.rhythm_steps
    if analysis.onset_envelope.size:
        steps = _rhythm_steps(new_beats, new_down, analysis.onset_envelope, analysis.onset_rate)
    tempo = float(analysis.tempo_bpm * factor)
    # the levels weighed stay what they were: the one now chosen leaves the alternatives, the old one joins
    others = analysis.tempo_alternatives
    levels = [(float(analysis.tempo_bpm), max(0.0, 1.0 - sum(p for _, p in others))), *others]
    others = tuple(sorted(((b, p) for b, p in levels if abs(b / tempo - 1.0) > 0.04), key=lambda bp: -bp[1]))
    return replace(
        analysis,
        tempo_bpm=tempo,
        beats=tuple(float(t) for t in new_beats),
        downbeats=tuple(float(t) for t in new_down),
        rhythm_steps=steps,
        tempo_alternatives=others if analysis.tempo_alternatives else (),
    )


def tempo_from_taps(times) -> float:
    """Tempo (BPM) from tap times, robust to one missed or doubled tap.

    Parameters
    ----------
    times : sequence of float
        Tap times in seconds (at least 3, increasing).

    Returns
    -------
    float
        Tempo in BPM from a least-squares fit of tap index against time.

    Examples
    --------
    >>> round(tempo_from_taps([0.0, 0.5, 1.0, 1.5, 2.0]), 1)
    120.0
    """
    t = np.asarray(list(times), dtype=np.float64)
    if t.ndim != 1 or t.size < 3:
        raise InputError(f"tap at least 3 times to set a tempo, got {t.size}")
    if not np.isfinite(t).all() or np.any(np.diff(t) <= 0):
        raise InputError("tap times must be finite and strictly increasing")
    d = np.diff(t)
    period = float(np.median(d))
    # index every tap by the number of periods since the first: a missed tap counts as two steps
    idx = np.round((t - t[0]) / period)
    if np.unique(idx).size < 2:
        raise InputError("taps are too irregular to find a tempo")
    slope = float(np.polyfit(idx, t, 1)[0])
    bpm = 60.0 / slope
    if not _TEMPO_MIN <= bpm <= _TEMPO_MAX:
        raise InputError(f"tapped tempo {bpm:.0f} BPM is outside {_TEMPO_MIN:.0f}-{_TEMPO_MAX:.0f} BPM")
    return bpm
