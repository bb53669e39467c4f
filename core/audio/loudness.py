"""Loudness measurement (ITU-R BS.1770-4), true-peak metering and mastering.

* :func:`integrated_lufs` -- gated integrated loudness. The K-weighting filters are pyloudnorm's
  (``pyloudnorm.Meter``); the block gating is the same algorithm, vectorised with cumulative sums
  (pyloudnorm loops over blocks in Python: ~0.6 s for 3 min of stereo; this takes ~0.1 s).
* :func:`true_peak_dbfs` -- 4x oversampled peak (BS.1770-4 Annex 2: a 48-tap polyphase
  interpolation filter, 12 taps per phase).
* :func:`limit` -- a look-ahead true-peak limiter, vectorised with numpy/scipy (no per-sample Python).
* :func:`master` -- loudness-normalise then limit, with a hard guarantee that the output's true peak
  is at or below the ceiling.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from core.audio.checks import check_signal
from core.errors import InputError

#: Largest gain :func:`master` applies (dB); keeps near-silent input from being blown up.
MAX_GAIN_DB = 30.0
_ABS_GATE = -70.0
_OVERSAMPLE = 4
_TAPS = 48
_GAIN_HOP = 16  # samples per gain-computation block in the limiter
_BLOCK = 2048  # samples per block when only loud regions are oversampled


def _validate(y, *, sr) -> np.ndarray:
    return check_signal(y, sr=sr, min_sr=1000, max_sr=384000)


# --------------------------------------------------------------------------------------------------
# loudness


@lru_cache(maxsize=16)
def _k_weighting(sr: int) -> tuple[np.ndarray, float]:
    """pyloudnorm's BS.1770-4 K-weighting (high shelf + high pass) as second-order sections."""
    import pyloudnorm

    stages = list(pyloudnorm.Meter(sr)._filters.values())
    sos = np.array([np.concatenate([f.b, f.a]) for f in stages], dtype=np.float64)
    return sos, float(np.prod([f.passband_gain for f in stages]))


def _block_powers(y: np.ndarray, sr: int) -> np.ndarray:
    """Mean square of the K-weighted signal per 400 ms block (75 % overlap), summed over channels."""
    from scipy.signal import sosfilt

    sos, gain = _k_weighting(int(sr))
    z = sosfilt(sos.astype(np.float32), y.astype(np.float32, copy=False), axis=-1)
    if gain != 1.0:
        z *= gain
    n = z.shape[1]
    power = np.zeros(n, np.float32)
    for c in range(z.shape[0]):
        weight = 1.41 if z.shape[0] >= 5 and c in (3, 4) else 1.0  # BS.1770 surround channel weights
        power += np.float32(weight) * np.square(z[c])
    block = 0.4 * sr
    if n < int(block):
        return np.array(
            [power.mean(dtype=np.float64)]
        )  # shorter than one gating block: the clip is the block
    n_blocks = int(np.round((n / sr - 0.4) / 0.1)) + 1
    j = np.arange(n_blocks)
    step = 0.1 * sr
    if abs(step - round(step)) < 1e-9:
        # blocks are 4 consecutive 100 ms segments: sum the segments (fast pairwise sums), then the blocks
        step = round(step)
        nseg = n // step
        seg = power[: nseg * step].reshape(nseg, step).sum(axis=1, dtype=np.float64)
        cs = np.concatenate([[0.0], np.cumsum(seg), [seg.sum() + power[nseg * step :].sum(dtype=np.float64)]])
        return (cs[np.minimum(j + 4, nseg + 1)] - cs[j]) / block
    cs = np.concatenate([[0.0], np.cumsum(power, dtype=np.float64)])
    lo = (0.4 * (j * 0.25) * sr).astype(np.int64)
    hi = np.minimum((0.4 * (j * 0.25 + 1) * sr).astype(np.int64), n)
    return (cs[hi] - cs[lo]) / block


def integrated_lufs(y: np.ndarray, *, sr: int) -> float:
    """Integrated loudness in LUFS (ITU-R BS.1770-4, gated).

    Parameters
    ----------
    y : np.ndarray
        float audio ``(channels, samples)`` (1-D is mono).
    sr : int
        Sample rate in Hz.

    Returns
    -------
    float
        Loudness in LUFS; ``-inf`` for silence or empty input. A clip shorter than one 400 ms
        gating block is measured as a single block.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(44100 * 3) / 44100
    >>> y = np.tile(np.sin(2 * np.pi * 1000 * t), (2, 1)).astype(np.float32)
    >>> round(integrated_lufs(y, sr=44100), 1)  # full-scale 1 kHz sine in both channels
    0.0
    """
    y = _validate(y, sr=sr)
    if y.shape[1] == 0:
        return float("-inf")
    z = _block_powers(y, int(sr))
    with np.errstate(divide="ignore"):
        lk = -0.691 + 10.0 * np.log10(z)
    above = lk >= _ABS_GATE
    if not above.any():
        return float("-inf")
    rel = -0.691 + 10.0 * math.log10(z[above].mean()) - 10.0
    keep = above & (lk > rel)
    if not keep.any():
        return float("-inf")
    return float(-0.691 + 10.0 * math.log10(z[keep].mean()))


# --------------------------------------------------------------------------------------------------
# true peak


@lru_cache(maxsize=1)
def _polyphase() -> np.ndarray:
    """(4 phases, 12 taps) of a 48-tap Kaiser-windowed sinc interpolator (cut-off at the old Nyquist)."""
    from scipy.signal import firwin

    h = firwin(_TAPS, 1.0 / _OVERSAMPLE, window=("kaiser", 7.0)) * _OVERSAMPLE
    return np.ascontiguousarray(h.reshape(_TAPS // _OVERSAMPLE, _OVERSAMPLE).T.astype(np.float32))


def _tp_envelope(y: np.ndarray, floor: float | None = None) -> np.ndarray:
    """Per-sample true-peak envelope: max over channels of |x| and the 4x interpolated values near it.

    With ``floor``, the interpolated values are computed only where they *could* exceed ``floor``: an
    interpolated value is a 12-tap weighted sum, so it is at most ``sum(|taps|)`` times the largest
    |sample| within +-6 samples. Elsewhere the envelope is |x| (which is then below ``floor`` too). The
    result is exact wherever the true envelope exceeds ``floor``.

    Phase ``p`` of output ``m`` of the polyphase filter sits at time ``m + (p - 23.5) / 4`` (in input
    samples); it is credited to the nearest input sample.
    """
    n = y.shape[1]
    if floor is None or n < 8 * _BLOCK:
        return _tp_full(y)
    absmax = np.abs(y).max(axis=0).astype(np.float32)
    bound = float(np.abs(_polyphase()).sum(axis=1).max())
    nb = -(-n // _BLOCK)
    padded = np.zeros(nb * _BLOCK, np.float32)
    padded[:n] = absmax
    peak = padded.reshape(nb, _BLOCK).max(axis=1)
    # a block's interpolated values also depend on up to 6 samples of each neighbouring block
    near = np.maximum(peak, np.maximum(np.concatenate([[0.0], peak[:-1]]), np.concatenate([peak[1:], [0.0]])))
    flags = near * bound > floor
    if flags.mean() > 0.3:
        return _tp_full(y)
    env = absmax
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    margin = 16
    for b0, b1 in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
        lo, hi = b0 * _BLOCK, min(n, b1 * _BLOCK)
        s0, s1 = max(0, lo - margin), min(n, hi + margin)
        seg = _tp_full(y[:, s0:s1])
        env[lo:hi] = seg[lo - s0 : hi - s0]
    return env


def _tp_full(y: np.ndarray, *, chunk: int = 1 << 18) -> np.ndarray:
    """The envelope of :func:`_tp_envelope` computed everywhere.

    The four polyphase outputs are one matrix product of a sliding 12-sample window with the
    (12 taps x 4 phases) filter matrix, in chunks of ``chunk`` samples: BLAS makes this about 5x
    faster than 16 short ``np.convolve`` calls (0.26 s against 1.4 s for 3 minutes of stereo).
    Phase ``p`` of the full convolution at index ``m`` is credited to input sample ``m - shift_p``.
    """
    from numpy.lib.stride_tricks import sliding_window_view

    phases = _polyphase()
    taps = phases.shape[1]
    n = y.shape[1]
    delay = (_TAPS - 1) / 2 / _OVERSAMPLE
    shifts = [round(delay - p / _OVERSAMPLE) for p in range(_OVERSAMPLE)]
    kernel = np.ascontiguousarray(phases[:, ::-1].T)  # convolution = correlation with reversed taps
    hi = np.max(y, axis=0).astype(np.float32)
    lo = np.min(y, axis=0).astype(np.float32)
    for c in range(y.shape[0]):
        padded = np.concatenate(
            [np.zeros(taps - 1, np.float32), np.asarray(y[c], np.float32), np.zeros(taps, np.float32)]
        )
        for s0 in range(0, n, chunk):
            s1 = min(n, s0 + chunk)
            m0, m1 = s0 + min(shifts), s1 + max(shifts)  # full-convolution indices this chunk needs
            lo_pad = max(0, m0)
            vals = (
                sliding_window_view(padded[lo_pad : m1 + taps - 1], taps) @ kernel
            )  # row r: index lo_pad + r
            for p, shift in enumerate(shifts):
                a0 = s0 + shift - lo_pad
                seg = vals[max(0, a0) : a0 + (s1 - s0), p]
                out0 = s0 + max(0, -a0)
                np.maximum(hi[out0 : out0 + seg.size], seg, out=hi[out0 : out0 + seg.size])
                np.minimum(lo[out0 : out0 + seg.size], seg, out=lo[out0 : out0 + seg.size])
    return np.maximum(hi, -lo)


def true_peak_dbfs(y: np.ndarray, *, sr: int) -> float:
    """True peak in dBTP (dB relative to full scale, 4x oversampled, BS.1770-4 Annex 2).

    Parameters
    ----------
    y : np.ndarray
        float audio ``(channels, samples)``.
    sr : int
        Sample rate in Hz (the oversampling factor is 4 at any rate).

    Returns
    -------
    float
        Highest inter-sample peak in dB; ``-inf`` for silence.

    Examples
    --------
    >>> import numpy as np
    >>> n = np.arange(44100)
    >>> y = np.sin(np.pi / 2 * n + np.pi / 4)[None].astype(np.float32)  # fs/4 sine, samples at 0.707
    >>> round(true_peak_dbfs(y, sr=44100), 1)
    0.0
    """
    y = _validate(y, sr=sr)
    if y.shape[1] == 0:
        return float("-inf")
    peak = float(_tp_envelope(y).max())
    return 20.0 * math.log10(peak) if peak > 0 else float("-inf")


# --------------------------------------------------------------------------------------------------
# limiter and mastering


def _gain_curve(
    env: np.ndarray, *, sr: int, threshold: float, lookahead_ms: float, release_ms: float
) -> np.ndarray:
    """Smooth gain (<= 1) such that ``env * gain <= threshold`` at every sample.

    Computed at a decimated rate (blocks of 16 samples, with each block's peak taken over it and its
    neighbours) and linearly interpolated back; every interpolated value stays below the requirement of
    each sample because both block values it mixes are.
    """
    from scipy.ndimage import minimum_filter1d

    n = env.size
    hop = _GAIN_HOP
    nb = -(-n // hop)
    padded_env = np.zeros(nb * hop, np.float32)
    padded_env[:n] = env
    peak = padded_env.reshape(nb, hop).max(axis=1)
    peak = np.maximum(peak, np.concatenate([peak[1:], [0.0]]))
    peak = np.maximum(peak, np.concatenate([[0.0], peak[:-1]])).astype(np.float64)
    req = np.minimum(1.0, threshold / np.maximum(peak, 1e-12))
    rate = sr / hop
    look = max(1, math.ceil(lookahead_ms * 1e-3 * rate))
    # hold: g_min[k] = min(req[k : k + look])
    g_min = minimum_filter1d(np.concatenate([req, np.ones(look)]), size=look, mode="nearest")
    g_min = g_min[look // 2 : look // 2 + nb]
    # attack ramp: causal moving average over `look` blocks; each averaged window covers block k,
    # so the result is <= req[k] (never lets a peak through)
    cs = np.concatenate([[0.0], np.cumsum(np.concatenate([np.ones(look), g_min]))])
    attack = np.minimum((cs[look + 1 : look + 1 + nb] - cs[1 : 1 + nb]) / look, g_min)
    # release: attenuation in dB decays exponentially, att[k] = max(a[k], r * att[k-1]), in closed form
    # with a cumulative maximum in the log domain (no per-sample Python loop)
    att = -20.0 * np.log10(np.maximum(attack, 1e-12))
    if release_ms > 0 and att.max() > 0:
        log_r = -1.0 / (release_ms * 1e-3 * rate)
        k = np.arange(nb, dtype=np.float64)
        with np.errstate(divide="ignore"):
            v = np.log(att) - k * log_r
        held = np.exp(np.maximum.accumulate(v) + k * log_r)
        att = np.maximum(att, np.nan_to_num(held, nan=0.0, posinf=0.0))
    g_block = np.power(10.0, -att / 20.0).astype(np.float32)
    # linear ramps from each block start to the next block start
    nxt = np.concatenate([g_block[1:], g_block[-1:]])
    frac = (np.arange(hop, dtype=np.float32) / hop)[None, :]
    return (g_block[:, None] + (nxt - g_block)[:, None] * frac).ravel()[:n]


def limit(
    y: np.ndarray,
    *,
    sr: int,
    ceiling_dbtp: float = -1.0,
    lookahead_ms: float = 5.0,
    release_ms: float = 80.0,
) -> np.ndarray:
    """Look-ahead true-peak limiter.

    The gain is computed from the 4x-oversampled peak envelope (linked across channels); it ramps
    down over the look-ahead window before each peak and recovers with an exponential release.
    The output's true peak is guaranteed to be at or below ``ceiling_dbtp`` (a final safety scale is
    applied if the measured true peak is still above it).

    Parameters
    ----------
    y : np.ndarray
        float audio ``(channels, samples)``.
    sr : int
        Sample rate in Hz.
    ceiling_dbtp : float, optional
        Ceiling in dBTP, between -20 and 0.
    lookahead_ms : float, optional
        Look-ahead (attack) time in ms, 0.5-50.
    release_ms : float, optional
        Release time constant in ms, 0-2000.

    Returns
    -------
    np.ndarray
        float32 audio of the same shape. The signal is not delayed.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.random.default_rng(0).uniform(-1, 1, (2, 44100)).astype(np.float32)
    >>> true_peak_dbfs(limit(y, sr=44100, ceiling_dbtp=-1.0), sr=44100) <= -1.0
    True
    """
    y = _validate(y, sr=sr)
    if not -20.0 <= float(ceiling_dbtp) <= 0.0:
        raise InputError(f"ceiling_dbtp must be between -20 and 0 dBTP, got {ceiling_dbtp}")
    if not 0.5 <= float(lookahead_ms) <= 50.0:
        raise InputError(f"lookahead_ms must be between 0.5 and 50 ms, got {lookahead_ms}")
    if not 0.0 <= float(release_ms) <= 2000.0:
        raise InputError(f"release_ms must be between 0 and 2000 ms, got {release_ms}")
    x = np.asarray(y, dtype=np.float32)
    if x.shape[1] == 0:
        return x.copy()
    ceiling = 10.0 ** (float(ceiling_dbtp) / 20.0)
    env = _tp_envelope(x, floor=ceiling * 10 ** (-0.3 / 20))
    if float(env.max()) <= ceiling * 10 ** (-0.3 / 20):
        out = x.copy()
    else:
        gain = _gain_curve(
            env,
            sr=int(sr),
            threshold=ceiling * 10 ** (-0.3 / 20),
            lookahead_ms=lookahead_ms,
            release_ms=release_ms,
        )
        out = x * gain[None, :]
    return _safety(out, ceiling)


def _safety(out: np.ndarray, ceiling: float) -> np.ndarray:
    """Scale down if the true peak (measured) is above ``ceiling`` (linear)."""
    peak = float(_tp_envelope(out, floor=ceiling).max())
    if peak > ceiling:
        out = (out * np.float32(ceiling / peak * 0.9995)).astype(np.float32)
    return out


def master(y: np.ndarray, *, sr: int, target_lufs: float = -14.0, ceiling_dbtp: float = -1.0) -> np.ndarray:
    """Loudness-normalise to ``target_lufs`` then true-peak limit to ``ceiling_dbtp``.

    Guarantees: the output's true peak is <= ``ceiling_dbtp``; the loudness is within 1 LU of the
    target whenever the limiter can reach it (the gain is raised up to twice to make up for limiting);
    silence stays silence; the gain never exceeds +30 dB.

    Parameters
    ----------
    y : np.ndarray
        float audio ``(channels, samples)``.
    sr : int
        Sample rate in Hz.
    target_lufs : float, optional
        Target integrated loudness, between -40 and -5 LUFS.
    ceiling_dbtp : float, optional
        True-peak ceiling, between -20 and 0 dBTP.

    Returns
    -------
    np.ndarray
        float32 audio of the same shape.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(44100 * 2) / 44100
    >>> y = np.tile(0.01 * np.sin(2 * np.pi * 440 * t), (2, 1)).astype(np.float32)
    >>> out = master(y, sr=44100)
    >>> abs(integrated_lufs(out, sr=44100) + 14.0) < 1.0
    True
    """
    y = _validate(y, sr=sr)
    if not -40.0 <= float(target_lufs) <= -5.0:
        raise InputError(f"target_lufs must be between -40 and -5 LUFS, got {target_lufs}")
    if not -20.0 <= float(ceiling_dbtp) <= 0.0:
        raise InputError(f"ceiling_dbtp must be between -20 and 0 dBTP, got {ceiling_dbtp}")
    x = np.asarray(y, dtype=np.float32)
    lufs = integrated_lufs(x, sr=sr)
    if not math.isfinite(lufs):
        return x.copy()  # silence (or empty) stays as it is
    gain_db = min(MAX_GAIN_DB, float(target_lufs) - lufs)
    ceiling = 10.0 ** (float(ceiling_dbtp) / 20.0)
    threshold = ceiling * 10 ** (-0.3 / 20)
    # the true-peak envelope scales with the gain: measure it once, reuse it for every gain tried
    env = _tp_envelope(x)
    out = x
    for _ in range(3):
        g = np.float32(10.0 ** (gain_db / 20.0))
        if float(env.max()) * g <= threshold:
            out = x * g
        else:
            curve = _gain_curve(env * g, sr=int(sr), threshold=threshold, lookahead_ms=5.0, release_ms=80.0)
            out = x * (curve * g)[None, :]
        shortfall = float(target_lufs) - integrated_lufs(out, sr=sr)
        if shortfall < 0.5 or gain_db >= MAX_GAIN_DB:
            break
        gain_db = min(MAX_GAIN_DB, gain_db + shortfall * 1.1)
    return _safety(out.astype(np.float32, copy=False), ceiling)
