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

import contextlib
import math
import os
from dataclasses import dataclass
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
# Long signals get their true-peak envelope in spans of _TP_SPAN samples (95 s at 44.1 kHz), each read
# with _TP_MARGIN real neighbours on both sides (the interpolator reaches 6): the values are those of one
# pass, without a full-length envelope (101 MB for a 10-minute song). Up to _TP_ONE_PASS samples
# (3 min 10 s) it is one pass, as before.
_TP_SPAN = 1 << 22
_TP_ONE_PASS = 1 << 23
_TP_MARGIN = 2 * _GAIN_HOP
_WINDOW = 13  # input samples that the four interpolated values around one sample depend on
_CHUNK = 1 << 16  # rows per matrix product (bounds the memory of the gathered windows)


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


#: Samples of each channel K-weighted at once by :func:`_k_power` (4 MB of float32).
_K_BLOCK = 1 << 20


def _each_channel(fn, channels: int) -> list:
    """``[fn(c) for c in range(channels)]``, two channels at a time on a machine with two cores or more
    (the filters and matrix products inside release the GIL, so a stereo master takes about half the
    time)."""
    with _channel_pool(channels) as run:
        return run(fn)


@contextlib.contextmanager
def _channel_pool(channels: int):
    """:func:`_each_channel` as a ``run(fn)`` whose threads live as long as the ``with`` block."""
    workers = min(channels, os.cpu_count() or 1)
    if workers < 2:
        yield lambda fn: [fn(c) for c in range(channels)]
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers) as pool:
        yield lambda fn: list(pool.map(fn, range(channels)))


def _k_power_blocks(y: np.ndarray, sr: int, block: int = _K_BLOCK):
    """Yield ``(start, power)`` for consecutive runs of ``block`` samples (the last may be shorter):
    the per-sample power of the K-weighted signal, summed over channels (BS.1770 channel weights).

    The channels are filtered a block at a time, the filter state carried from block to block, so the
    values are those of one pass; no filtered copy of a whole channel exists (211 MB for a 10-minute
    stereo song).
    """
    from scipy.signal import sosfilt

    sos, gain = _k_weighting(int(sr))
    sos = sos.astype(np.float32)
    x = y.astype(np.float32, copy=False)
    channels, n = x.shape
    state = [np.zeros((sos.shape[0], 2), dtype=np.float32) for _ in range(channels)]

    def squared(c: int, s0: int, s1: int) -> np.ndarray:
        z, state[c] = sosfilt(sos, x[c, s0:s1], zi=state[c])
        z = z.astype(np.float32, copy=False)
        np.multiply(z, z, out=z)
        if channels >= 5 and c in (3, 4):  # surround: channels 4 and 5 weigh 1.41
            z *= np.float32(1.41)
        return z

    with _channel_pool(channels) as run:
        for s0 in range(0, n, block):
            s1 = min(n, s0 + block)
            parts = run(lambda c, s0=s0, s1=s1: squared(c, s0, s1))
            power = parts[0]
            for other in parts[1:]:
                power += other
            if gain != 1.0:
                power *= np.float32(gain * gain)
            yield s0, power


def _k_power(y: np.ndarray, sr: int) -> np.ndarray:
    """Per-sample power of the K-weighted signal, summed over channels (:func:`_k_power_blocks`)."""
    power = np.empty(y.shape[1], dtype=np.float32)
    for s0, block in _k_power_blocks(y, sr):
        power[s0 : s0 + block.size] = block
    return power


def _segmented(n: int, sr: int) -> bool:
    """Whether the gating blocks of ``n`` samples are sums of whole 100 ms segments (:func:`_k_sums`)."""
    return sr % 10 == 0 and n >= 0.4 * sr


def _k_sums(y: np.ndarray, sr: int, *, hops: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """The K-weighted power's sums over 100 ms segments and, with ``hops``, over each 16-sample block
    (float64), without the power itself at full length (101 MB for 10 minutes at 44.1 kHz).

    Only for :func:`_segmented` signals. The power is made in runs that hold whole segments and whole
    16-sample blocks, and each sum is taken over the same values, in the same order, as
    ``power[...].reshape(-1, k).sum(axis=1)`` over the whole array (:func:`_block_powers`,
    :func:`_hop_sums`); the last segment and block may be partial.
    """
    n = y.shape[1]
    step = sr // 10
    unit = math.lcm(step, _GAIN_HOP)
    block = unit * max(1, round(_K_BLOCK / unit))
    segs, hop_sums = [], []
    for _, power in _k_power_blocks(y, sr, block):
        whole = power.size // step * step
        segs.append(power[:whole].reshape(-1, step).sum(axis=1, dtype=np.float64))
        if hops:
            hop_sums.append(_hop_sums(power))
        if whole < power.size:  # only in the last run
            segs.append(np.array([power[whole:].sum(dtype=np.float64)]))
    if n % step == 0:
        segs.append(np.zeros(1))  # the (empty) partial last segment, as _block_powers appends it
    return np.concatenate(segs), (np.concatenate(hop_sums) if hops else None)


def _block_powers(power: np.ndarray, sr: int) -> np.ndarray:
    """Mean K-weighted power per 400 ms block (75 % overlap) from :func:`_k_power`."""
    n = power.size
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
        seg = np.append(seg, power[nseg * step :].sum(dtype=np.float64))  # the partial last segment
        return _blocks_from_segments(seg, n, sr)
    cs = np.concatenate([[0.0], np.cumsum(power, dtype=np.float64)])
    lo = (0.4 * (j * 0.25) * sr).astype(np.int64)
    hi = np.minimum((0.4 * (j * 0.25 + 1) * sr).astype(np.int64), n)
    return (cs[hi] - cs[lo]) / block


def _blocks_from_segments(seg: np.ndarray, n: int, sr: int) -> np.ndarray:
    """Mean power per 400 ms gating block from the sums over 100 ms segments (the last one partial)."""
    block = 0.4 * sr
    nseg = n // (sr // 10)
    j = np.arange(int(np.round((n / sr - 0.4) / 0.1)) + 1)
    seg = np.pad(seg, (0, max(0, nseg + 1 - seg.size)))[: nseg + 1]
    cs = np.concatenate([[0.0], np.cumsum(seg)])  # non-decreasing: differences are never negative
    return (cs[np.minimum(j + 4, nseg + 1)] - cs[j]) / block


def _gated_lufs(z: np.ndarray) -> float:
    """BS.1770-4 gating (-70 LUFS absolute, -10 LU relative) of block powers ``z``."""
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
    >>> abs(integrated_lufs(y, sr=44100)) < 0.05  # full-scale 1 kHz sine in both channels: 0 LUFS
    True
    """
    y = _validate(y, sr=sr)
    if y.shape[1] == 0:
        return float("-inf")
    sr = int(sr)
    if _segmented(y.shape[1], sr):
        return _gated_lufs(_blocks_from_segments(_k_sums(y, sr)[0], y.shape[1], sr))
    return _gated_lufs(_block_powers(_k_power(y, sr), sr))


def active_rms(y: np.ndarray, *, block: int = 4410) -> float:
    """RMS over the 100 ms blocks in which ``y`` is audible (within 40 dB of its loudest block).

    Sparse parts (a lead that plays half the song) are measured while they play, so stems compare
    fairly when they are balanced against each other.

    Parameters
    ----------
    y : np.ndarray
        float audio ``(channels, samples)``.
    block : int, optional
        Block length in samples (4410: 100 ms at 44.1 kHz).

    Returns
    -------
    float
        The RMS (linear), 0.0 for silence.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.zeros((2, 44100), np.float32)
    >>> y[:, :22050] = 0.5  # half a second at 0.5, then silence
    >>> round(active_rms(y), 3)
    0.5
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim == 1:
        y = y[None, :]
    n = y.shape[1] // block
    if n == 0:
        return float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) if y.size else 0.0
    frames = y[:, : n * block].reshape(y.shape[0], n, block)
    e = np.einsum("cnb,cnb->n", frames, frames, dtype=np.float64) / (y.shape[0] * block)
    peak = float(e.max())
    if peak <= 0:
        return 0.0
    return float(np.sqrt(e[e > peak * 1e-4].mean()))


# --------------------------------------------------------------------------------------------------
# true peak


@lru_cache(maxsize=1)
def _polyphase() -> np.ndarray:
    """(4 phases, 12 taps) of a 48-tap Kaiser-windowed sinc interpolator (cut-off at the old Nyquist)."""
    from scipy.signal import firwin

    h = firwin(_TAPS, 1.0 / _OVERSAMPLE, window=("kaiser", 7.0)) * _OVERSAMPLE
    return np.ascontiguousarray(h.reshape(_TAPS // _OVERSAMPLE, _OVERSAMPLE).T.astype(np.float32))


@lru_cache(maxsize=1)
def _window_kernel() -> np.ndarray:
    """(13, 4) matrix: the four interpolated values credited to sample ``n`` are ``y[n-6 : n+7] @ K``.

    Phase ``p`` of the full convolution at index ``m`` (``sum_j h[p, j] * y[m - j]``) sits at time
    ``m + (p - 23.5) / 4`` and is credited to the nearest input sample ``n = m - shift_p``.
    """
    phases = _polyphase()
    taps = phases.shape[1]
    delay = (_TAPS - 1) / 2 / _OVERSAMPLE
    kernel = np.zeros((_WINDOW, _OVERSAMPLE), np.float32)
    for p in range(_OVERSAMPLE):
        shift = round(delay - p / _OVERSAMPLE)
        for j in range(taps):
            kernel[shift - j + _WINDOW // 2, p] = phases[p, j]
    return kernel


@lru_cache(maxsize=1)
def _blas():
    """The process's BLAS thread pools (threadpoolctl), to run the interpolation on one thread.

    The interpolation is a tall, thin matrix product: with OpenBLAS's default of one thread per core it
    is about 3x *slower* (up to 10x) as soon as another process or session uses a core, because
    OpenBLAS threads spin-wait for each other.
    """
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _interpolated_peaks(x: np.ndarray, rows: np.ndarray | None, out: np.ndarray) -> None:
    """``out = max(out, |interpolated values|)`` for one channel ``x``.

    ``rows`` are the sample indices to compute, sorted (None: all, with ``out`` the full envelope) --
    ``out`` holds one value per row. Samples beyond the ends count as zeros; only the ``_WINDOW // 2``
    samples at each end are read from small zero-padded copies, the rest straight from ``x``.
    """
    from numpy.lib.stride_tricks import sliding_window_view

    half = _WINDOW // 2
    n = x.size
    if n < 4 * _WINDOW:  # short: one zero-padded copy
        padded = np.zeros(n + 2 * half, np.float32)
        padded[half : half + n] = x
        _window_peaks(sliding_window_view(padded, _WINDOW), rows, out)
        return
    head = np.zeros(3 * half, np.float32)
    head[half:] = x[: 2 * half]
    tail = np.zeros(3 * half, np.float32)
    tail[: 2 * half] = x[n - 2 * half :]
    # (windows, first sample they centre, last sample + 1)
    parts = (
        (sliding_window_view(head, _WINDOW), 0, half),
        (sliding_window_view(x, _WINDOW), half, n - half),
        (sliding_window_view(tail, _WINDOW), n - half, n),
    )
    for windows, lo, hi in parts:
        if rows is None:
            _window_peaks(windows[: hi - lo], None, out[lo:hi])
        else:
            a, b = np.searchsorted(rows, [lo, hi])
            if b > a:
                _window_peaks(windows, rows[a:b] - lo, out[a:b])


def _window_peaks(windows: np.ndarray, rows: np.ndarray | None, out: np.ndarray) -> None:
    """``out = max(out, |interpolated values|)`` of ``windows`` (all, or the given ones)."""
    kernel = _window_kernel()
    total = windows.shape[0] if rows is None else rows.size
    for a in range(0, total, _CHUNK):
        b = min(total, a + _CHUNK)
        block = windows[a:b] if rows is None else windows[rows[a:b]]
        vals = np.abs(block @ kernel)
        # the max of 4 columns as 3 element-wise maxima: a row-wise .max(axis=1) over 4 values is
        # several times slower
        vals = np.maximum(np.maximum(vals[:, 0], vals[:, 1]), np.maximum(vals[:, 2], vals[:, 3]))
        np.maximum(out[a:b], vals, out=out[a:b])


def _candidates(absmax: np.ndarray, level: float) -> np.ndarray:
    """Indices ``n`` with ``max(absmax[n-6 : n+7]) > level``: the loud samples, dilated by +-6.

    Works on the (few) loud samples only -- no sliding maximum over the whole signal, whose fresh
    full-length temporaries cost more (in page faults) than the arithmetic.
    """
    hits = np.flatnonzero(absmax > np.float32(level))
    if hits.size == 0:
        return hits
    n = absmax.size
    half = _WINDOW // 2
    mask = np.zeros(n + 2 * half, bool)
    for k in range(_WINDOW):
        mask[hits + k] = True  # mask index m is sample m - half
    return np.flatnonzero(mask[half : half + n])


def _abs_max(y: np.ndarray) -> np.ndarray:
    """``max over channels of |y|`` as a new float32 ``(samples,)`` array, the later channels taken in
    short chunks (a full-length ``|y[c]|`` temporary costs more in fresh pages than the arithmetic)."""
    out = np.abs(y[0]).astype(np.float32, copy=False)
    if y.shape[0] > 1:
        scratch = np.empty(min(out.size, _CHUNK), np.float32)
        for a in range(0, out.size, _CHUNK):
            b = min(out.size, a + _CHUNK)
            for c in range(1, y.shape[0]):
                np.abs(y[c, a:b], out=scratch[: b - a], casting="unsafe")
                np.maximum(out[a:b], scratch[: b - a], out=out[a:b])
    return out


def _tp_envelope(y: np.ndarray, floor: float | None = None) -> np.ndarray:
    """Per-sample true-peak envelope: max over channels of |x| and the 4x interpolated values near it.

    With ``floor``, the interpolated values are computed only at samples where they *could* exceed
    ``floor``: an interpolated value is a 12-tap weighted sum, so it is at most ``sum(|taps|)`` (1.74)
    times the largest |sample| within +-6 samples. Elsewhere the envelope is |x| (which is then below
    ``floor`` too). The result is exact wherever the true envelope exceeds ``floor``; on a mastered pop
    mix (peaks at -1 dBTP) about 3 % of the samples need interpolating.
    """
    n = y.shape[1]
    absmax = _abs_max(y)
    rows = None
    if floor is not None and n > 0:
        bound = float(np.abs(_polyphase()).sum(axis=1).max())
        rows = _candidates(absmax, floor / bound)
        if rows.size == 0:
            return absmax
        if rows.size > 0.3 * n:
            rows = None

    def channel_env(c: int) -> np.ndarray:
        env = absmax.copy() if rows is None else absmax[rows]
        _interpolated_peaks(np.ascontiguousarray(y[c], dtype=np.float32), rows, env)
        return env

    with _blas().limit(limits=1, user_api="blas"):  # set once here: the channels' threads share it
        envs = _each_channel(channel_env, y.shape[0])
    env = envs[0]
    for other in envs[1:]:
        np.maximum(env, other, out=env)
    if rows is None:
        return env
    absmax[rows] = env
    return absmax


def _tp_spans(y: np.ndarray, floor: float):
    """Yield the true-peak envelope of ``y`` (:func:`_tp_envelope` with ``floor``) span by span, in
    order: the concatenated spans equal the one-pass envelope value for value."""
    n = y.shape[1]
    if n <= _TP_ONE_PASS:
        yield _tp_envelope(y, floor)
        return
    for a in range(0, n, _TP_SPAN):
        b = min(n, a + _TP_SPAN)
        lo, hi = max(0, a - _TP_MARGIN), min(n, b + _TP_MARGIN)
        yield _tp_envelope(y[:, lo:hi], floor)[a - lo : b - lo]


def _tp_max(y: np.ndarray, floor: float) -> float:
    """The largest true-peak envelope value of ``y`` (exact wherever it exceeds ``floor``)."""
    return max(float(env.max()) for env in _tp_spans(y, floor))


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
    >>> round(true_peak_dbfs(y, sr=44100), 2)  # 4x oversampling lands 3/8 of a sample from the peak
    -0.06
    """
    y = _validate(y, sr=sr)
    if y.shape[1] == 0:
        return float("-inf")
    peak = _tp_max(y, float(np.abs(y).max()))  # exact at its maximum
    return 20.0 * math.log10(peak) if peak > 0 else float("-inf")


# --------------------------------------------------------------------------------------------------
# limiter and mastering


def _hop_max(env: np.ndarray) -> np.ndarray:
    """Peak of ``env`` per block of 16 samples (the last block may be shorter)."""
    n = env.size
    hop = _GAIN_HOP
    peak = env[: n // hop * hop].reshape(-1, hop).max(axis=1)
    if n % hop:
        peak = np.append(peak, env[n // hop * hop :].max())
    return peak


def _with_neighbours(peak: np.ndarray) -> np.ndarray:
    """Each block's peak raised to its two neighbours' (float64)."""
    peak = np.maximum(peak, np.concatenate([peak[1:], [0.0]]))
    return np.maximum(peak, np.concatenate([[0.0], peak[:-1]])).astype(np.float64)


def _hop_peaks(env: np.ndarray) -> np.ndarray:
    """Peak of ``env`` per block of 16 samples, taken over the block and its two neighbours (float64)."""
    return _with_neighbours(_hop_max(env))


def _tp_hop_peaks(y: np.ndarray, floor: float) -> np.ndarray:
    """:func:`_hop_peaks` of the true-peak envelope of ``y``, computed span by span (spans are whole
    blocks, so the result is the same as from the full envelope)."""
    return _with_neighbours(np.concatenate([_hop_max(env) for env in _tp_spans(y, floor)]))


def _block_gains(
    peaks: np.ndarray, *, sr: int, threshold: float, lookahead_ms: float, release_ms: float
) -> np.ndarray:
    """The limiter's gain (<= 1) at the start of each 16-sample block, from :func:`_hop_peaks`.

    A 10-minute song has 1.65 M blocks (13 MB per float64 array): the steps work in place on at most
    three such arrays at a time.
    """
    from scipy.ndimage import minimum_filter1d

    nb = peaks.size
    rate = sr / _GAIN_HOP
    look = max(1, math.ceil(lookahead_ms * 1e-3 * rate))
    # the gain each block needs, padded with `look` blocks of 1
    req = np.ones(nb + look)
    np.maximum(peaks, 1e-12, out=req[:nb])
    np.divide(threshold, req[:nb], out=req[:nb])
    np.minimum(req[:nb], 1.0, out=req[:nb])
    # hold: g_min[k] = min(req[k : k + look])
    g_min = minimum_filter1d(req, size=look, mode="nearest")[look // 2 : look // 2 + nb]
    del req
    # attack ramp: causal moving average over `look` blocks; each averaged window covers block k,
    # so the result is <= req[k] (never lets a peak through)
    cs = np.empty(nb + look + 1)
    cs[0] = 0.0
    cs[1 : look + 1] = 1.0
    cs[look + 1 :] = g_min
    np.cumsum(cs[1:], out=cs[1:])
    att = np.subtract(cs[look + 1 : look + 1 + nb], cs[1 : 1 + nb])
    del cs
    att /= look
    np.minimum(att, g_min, out=att)
    del g_min
    # release: attenuation in dB decays exponentially, att[k] = max(a[k], r * att[k-1]), in closed form
    # with a cumulative maximum in the log domain (no per-sample Python loop)
    np.maximum(att, 1e-12, out=att)
    np.log10(att, out=att)
    att *= -20.0
    if release_ms > 0 and att.max() > 0:
        log_r = -1.0 / (release_ms * 1e-3 * rate)
        k_log_r = np.arange(nb, dtype=np.float64)
        k_log_r *= log_r
        with np.errstate(divide="ignore"):
            held = np.log(att)
        held -= k_log_r
        np.maximum.accumulate(held, out=held)
        held += k_log_r
        del k_log_r
        np.exp(held, out=held)
        np.nan_to_num(held, copy=False, nan=0.0, posinf=0.0)
        np.maximum(att, held, out=att)
        del held
    np.negative(att, out=att)
    att /= 20.0
    np.power(10.0, att, out=att)
    return att.astype(np.float32)


def _expand(g_block: np.ndarray, n: int) -> np.ndarray:
    """Per-sample gain: linear ramps from each block start to the next block start."""
    hop = _GAIN_HOP
    step = (np.concatenate([g_block[1:], g_block[-1:]]) - g_block) * np.float32(1.0 / hop)
    out = np.empty((g_block.size, hop), np.float32)
    np.multiply(step[:, None], np.arange(hop, dtype=np.float32)[None, :], out=out)
    out += g_block[:, None]
    return out.reshape(-1)[:n]


#: Samples per step when a :class:`LimiterCurve` scales audio (1 MB of float32 gains at a time).
_APPLY_CHUNK = 1 << 18


@dataclass(frozen=True, eq=False)
class LimiterCurve:
    """The limiter's per-sample gain (<= 1), kept as the gains at its 16-sample block starts.

    Between block starts the gain ramps linearly to the next one. The per-sample values are made only
    a chunk at a time, as they are applied: the full curve would be another float32 array as long as
    the song (101 MB for 10 minutes at 44.1 kHz).

    Attributes
    ----------
    blocks : np.ndarray
        float32 gain at the start of each block of 16 samples.
    n : int
        Number of samples the curve covers.
    """

    blocks: np.ndarray
    n: int

    def samples(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Per-sample gains of samples ``start`` to ``stop`` (default: to the end), float32."""
        stop = self.n if stop is None else min(int(stop), self.n)
        start = min(max(0, int(start)), stop)
        k0 = start // _GAIN_HOP
        k1 = -(-stop // _GAIN_HOP)  # one block past the last: its start ends the last ramp
        first = k0 * _GAIN_HOP
        return _expand(self.blocks[k0 : k1 + 1], stop - first)[start - first :]

    def min(self) -> float:
        """Lowest gain of the curve (the block starts hold every extreme of the ramps)."""
        return float(self.blocks.min()) if self.n else 1.0

    def apply_in_place(self, y: np.ndarray) -> None:
        """Multiply the writeable float32 ``(channels, n)`` array ``y`` by the curve, chunk by chunk."""
        for a in range(0, self.n, _APPLY_CHUNK):
            b = min(self.n, a + _APPLY_CHUNK)
            y[:, a:b] *= self.samples(a, b)[None, :]


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
    threshold = ceiling * 10 ** (-0.3 / 20)
    peaks = _tp_hop_peaks(x, threshold)
    if float(peaks.max()) <= threshold:
        out = x.copy()
    else:
        g_block = _block_gains(
            peaks, sr=int(sr), threshold=threshold, lookahead_ms=lookahead_ms, release_ms=release_ms
        )
        out = x.copy()
        LimiterCurve(g_block, x.shape[1]).apply_in_place(out)
    return _safety(out, ceiling)


def _safety(out: np.ndarray, ceiling: float) -> np.ndarray:
    """Scale ``out`` (a float32 array the caller owns) down in place if its measured true peak is above
    ``ceiling`` (linear); returns it."""
    peak = _tp_max(out, ceiling)
    if peak > ceiling:
        out *= np.float32(ceiling / peak * 0.9995)
    return out


def master_gain(
    y: np.ndarray, *, sr: int, target_lufs: float = -14.0, ceiling_dbtp: float = -1.0
) -> tuple[float, np.ndarray | None]:
    """The gain :func:`master` applies: a make-up gain and the limiter's gain curve.

    The make-up gain brings ``y`` to ``target_lufs``; if the look-ahead true-peak limiter then takes
    0.3 LU or more, the gain is raised by the shortfall (at most twice more). The loudness of each
    limited candidate is computed from the K-weighted power of ``y`` times the squared gain curve (the
    K-weighting filter is measured only once): the limiter's gain moves slowly next to the filter's
    memory, so this matches measuring the limited signal to within 0.01 LU (0.002-0.007 LU measured on
    a mix limited by 4-12 dB).

    Parameters
    ----------
    y : np.ndarray
        float audio ``(channels, samples)``.
    sr : int
        Sample rate in Hz.
    target_lufs, ceiling_dbtp : float, optional
        As for :func:`master`.

    Returns
    -------
    gain : float
        Linear make-up gain (1.0 for silence).
    curve : LimiterCurve or None
        The limiter's per-sample gain (<= 1) to multiply after ``gain``; None when no limiting is
        needed. ``y * gain * curve`` has a true peak <= ``ceiling_dbtp`` up to the small inter-sample
        error of a moving gain, which :func:`master` removes with a final check.
    """
    y = _validate(y, sr=sr)
    if not -40.0 <= float(target_lufs) <= -5.0:
        raise InputError(f"target_lufs must be between -40 and -5 LUFS, got {target_lufs}")
    if not -20.0 <= float(ceiling_dbtp) <= 0.0:
        raise InputError(f"ceiling_dbtp must be between -20 and 0 dBTP, got {ceiling_dbtp}")
    x = np.asarray(y, dtype=np.float32)
    sr = int(sr)
    if x.shape[1] == 0:
        return 1.0, None
    n = x.shape[1]
    if _segmented(n, sr):
        # the sums are all the loudness needs: no full-length power beside the mix
        seg, hop_power = _k_sums(x, sr, hops=True)
        power = None
        lufs = _gated_lufs(_blocks_from_segments(seg, n, sr))
    else:
        power, hop_power = _k_power(x, sr), None
        lufs = _gated_lufs(_block_powers(power, sr))
    if not math.isfinite(lufs):
        return 1.0, None  # silence stays as it is
    gain_db = min(MAX_GAIN_DB, float(target_lufs) - lufs)
    threshold = 10.0 ** (float(ceiling_dbtp) / 20.0) * 10 ** (-0.3 / 20)
    # the true-peak envelope scales with the gain: measure it once (exact above threshold / gain, with
    # 3 dB to spare for the raises below) and reuse it for every gain tried
    peaks, env_floor = None, math.inf
    g_block = None
    for _ in range(3):
        g = 10.0 ** (gain_db / 20.0)
        if peaks is None or threshold / g < env_floor:
            env_floor = threshold / g / 10 ** (3 / 20)
            peaks = _tp_hop_peaks(x, env_floor)
        if float(peaks.max()) * g <= threshold:
            return g, None  # no limiting: the loudness is exactly the target (or the gain cap)
        g_block = _block_gains(peaks * g, sr=sr, threshold=threshold, lookahead_ms=5.0, release_ms=80.0)
        limited = _limited_lufs(power, hop_power, g_block, sr, n) + 20.0 * math.log10(g)
        shortfall = float(target_lufs) - limited
        if shortfall < 0.3 or gain_db >= MAX_GAIN_DB:
            break
        gain_db = min(MAX_GAIN_DB, gain_db + shortfall * 1.1)
    return g, LimiterCurve(g_block, n)


def _hop_sums(power: np.ndarray) -> np.ndarray:
    """Sum of ``power`` over each 16-sample block (the limiter's gain blocks), float64."""
    hop = _GAIN_HOP
    m = power.size // hop * hop
    sums = power[:m].reshape(-1, hop).sum(axis=1, dtype=np.float64)
    return np.append(sums, power[m:].sum(dtype=np.float64)) if m < power.size else sums


def _limited_lufs(
    power: np.ndarray | None, hop_power: np.ndarray | None, g_block: np.ndarray, sr: int, n: int
) -> float:
    """Loudness of the K-weighted ``power`` (``n`` samples) under the limiter's block gains (before
    make-up gain); with ``hop_power`` (its 16-sample sums), ``power`` is not needed.

    Each 16-sample block's power is weighted by its starting gain squared and credited to the 100 ms
    segment its first sample falls in; the limiter's gain moves little within 16 samples, and a block
    straddling a segment edge moves a few samples' power by 0.4 ms, so this is within 0.01 LU of
    measuring the limited signal (see :func:`master_gain`). Rates that are not a multiple of 10 Hz
    (or clips shorter than one 400 ms gating block) fall back to the per-sample computation.
    """
    if hop_power is None:
        return _gated_lufs(_block_powers(power * np.square(_expand(g_block, n)), sr))
    step = sr // 10
    seg_of_hop = np.arange(g_block.size) * _GAIN_HOP // step
    seg = np.bincount(seg_of_hop, weights=hop_power * np.square(g_block, dtype=np.float64))
    return _gated_lufs(_blocks_from_segments(seg, n, sr))


def apply_master_gain(
    y: np.ndarray,
    gain: float,
    curve: LimiterCurve | None,
    *,
    ceiling_dbtp: float = -1.0,
    in_place: bool = False,
) -> np.ndarray:
    """Apply what :func:`master_gain` returned: ``y * gain * curve``, then the true-peak guarantee.

    Parameters
    ----------
    y : np.ndarray
        The float32 audio ``master_gain`` measured, ``(channels, samples)``.
    gain, curve
        :func:`master_gain`'s result.
    ceiling_dbtp : float, optional
        The ceiling given to :func:`master_gain`: if the result's measured true peak is still above it
        (a moving gain can add a hair between samples), the whole result is scaled just below it.
    in_place : bool, optional
        Scale ``y`` itself (no copy: for long songs whose arrays are hundreds of MB).

    Returns
    -------
    np.ndarray
        float32 audio of the same shape.
    """
    out = y if in_place else np.array(y, dtype=np.float32)
    if gain != 1.0:
        out *= np.float32(gain)
    if curve is not None:
        curve.apply_in_place(out)
    return _safety(out, 10.0 ** (float(ceiling_dbtp) / 20.0))


def master(
    y: np.ndarray, *, sr: int, target_lufs: float = -14.0, ceiling_dbtp: float = -1.0, in_place: bool = False
) -> np.ndarray:
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
    in_place : bool, optional
        Write the result into ``y`` when it is a writeable float32 array (one the caller owns and no
        longer needs) instead of a new array: saves one full-length copy.

    Returns
    -------
    np.ndarray
        float32 audio of the same shape (``y`` itself when ``in_place``).

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(44100 * 2) / 44100
    >>> y = np.tile(0.01 * np.sin(2 * np.pi * 440 * t), (2, 1)).astype(np.float32)
    >>> out = master(y, sr=44100)
    >>> abs(integrated_lufs(out, sr=44100) + 14.0) < 1.0
    True
    """
    gain, curve = master_gain(y, sr=sr, target_lufs=target_lufs, ceiling_dbtp=ceiling_dbtp)
    own = in_place and isinstance(y, np.ndarray) and y.dtype == np.float32 and y.flags.writeable
    return apply_master_gain(y, gain, curve, ceiling_dbtp=ceiling_dbtp, in_place=own)
