"""Loudness, true peak, limiter and mastering (signals made in code)."""

from __future__ import annotations

import math
import time

import numpy as np
import pyloudnorm
import pytest
from scipy.signal import upfirdn

from core.audio.loudness import integrated_lufs, limit, master, true_peak_dbfs
from core.errors import InputError

SR = 44100


def _sine(freq=1000.0, seconds=3.0, amp=1.0, channels=2, sr=SR, phase=0.0):
    t = np.arange(int(seconds * sr)) / sr
    return np.tile(amp * np.sin(2 * np.pi * freq * t + phase), (channels, 1)).astype(np.float32)


def _music_like(seconds=10.0, seed=0):
    """Chords of harmonic tones with a decaying kick: a crest factor like real music."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    y = np.zeros(n)
    for k, f0 in enumerate([110.0, 220.0 * 1.26, 330.0, 440.0 * 1.5]):
        y += 0.15 * np.sin(2 * np.pi * f0 * t + k) * (1 + 0.3 * np.sin(2 * np.pi * 0.5 * t))
    beat = (t % 0.5) < 0.08
    y += 0.8 * np.sin(2 * np.pi * 60 * t) * np.exp(-((t % 0.5) * 40)) * beat
    y += 0.02 * rng.standard_normal(n)
    return np.stack([y, 0.9 * y]).astype(np.float32)


def test_full_scale_sine_reads_minus_3_per_channel():
    mono = _sine(channels=1)
    assert integrated_lufs(mono, sr=SR) == pytest.approx(-3.01, abs=0.1)
    assert integrated_lufs(_sine(), sr=SR) == pytest.approx(0.0, abs=0.1)  # two channels add 3 dB
    assert integrated_lufs(_sine(amp=0.1), sr=SR) == pytest.approx(-20.0, abs=0.1)


@pytest.mark.parametrize("sr", [22050, 44100, 48000])
def test_matches_pyloudnorm(sr):
    y = _music_like(seconds=6.0)
    y[:, : SR // 2] *= 0.001  # a quiet intro exercises the gates
    ours = integrated_lufs(y, sr=sr)
    ref = pyloudnorm.Meter(sr).integrated_loudness(y.T.astype(np.float64))
    assert ours == pytest.approx(ref, abs=0.01)


def test_silence_and_empty_are_minus_inf():
    assert integrated_lufs(np.zeros((2, SR), np.float32), sr=SR) == -math.inf
    assert integrated_lufs(np.zeros((2, 0), np.float32), sr=SR) == -math.inf
    assert true_peak_dbfs(np.zeros((2, SR), np.float32), sr=SR) == -math.inf


def test_clip_shorter_than_a_gating_block_is_measured():
    short = _sine(seconds=0.2, amp=0.1)
    assert integrated_lufs(short, sr=SR) == pytest.approx(-20.0, abs=0.3)


def test_true_peak_finds_inter_sample_peaks():
    # fs/4 sine sampled at 45 degrees: every sample is 0.707, the waveform reaches 1.0
    n = np.arange(SR)
    y = np.sin(np.pi / 2 * n + np.pi / 4)[None].astype(np.float32)
    assert 20 * np.log10(np.abs(y).max()) == pytest.approx(-3.01, abs=0.01)
    assert true_peak_dbfs(y, sr=SR) == pytest.approx(0.0, abs=0.15)


def test_true_peak_agrees_with_dense_oversampling():
    y = _music_like(seconds=2.0)
    dense = upfirdn(np.sinc(np.arange(-64, 64.25, 0.25)) * np.kaiser(513, 8), y[0].astype(np.float64), 4)
    ref = 20 * np.log10(np.abs(dense).max())
    assert true_peak_dbfs(y[:1], sr=SR) == pytest.approx(ref, abs=0.2)


def _peaky(seconds=6.0):
    """Quiet pad with sharp full-scale transients: crest factor above 20 dB."""
    y = 0.03 * _sine(freq=220.0, seconds=seconds)
    rng = np.random.default_rng(3)
    for start in np.arange(0.25, seconds - 0.1, 0.75):
        i = int(start * SR)
        y[:, i : i + 200] += rng.uniform(-1, 1, (1, 200)).astype(np.float32)
    return y


@pytest.mark.parametrize(
    "make",
    [
        lambda: 3.0 * _music_like(),  # loud, clipping-level input
        lambda: 0.03 * _music_like(),  # quiet input (about -40 LUFS)
        _peaky,  # peaky input
    ],
    ids=["loud", "quiet", "peaky"],
)
def test_master_hits_target_and_ceiling(make):
    y = make()
    out = master(y, sr=SR, target_lufs=-14.0, ceiling_dbtp=-1.0)
    assert out.shape == y.shape and out.dtype == np.float32
    assert true_peak_dbfs(out, sr=SR) <= -1.0
    assert integrated_lufs(out, sr=SR) == pytest.approx(-14.0, abs=1.0)


@pytest.mark.parametrize("target", [-23.0, -16.0, -9.0])
def test_master_other_targets(target):
    out = master(_music_like(seed=1), sr=SR, target_lufs=target, ceiling_dbtp=-1.0)
    assert true_peak_dbfs(out, sr=SR) <= -1.0
    assert integrated_lufs(out, sr=SR) == pytest.approx(target, abs=1.0)


def test_master_keeps_silence_silent():
    z = np.zeros((2, SR), np.float32)
    out = master(z, sr=SR)
    assert np.array_equal(out, z)


def test_master_caps_gain_on_near_silence():
    y = 1e-6 * _sine(seconds=2.0)  # about -120 LUFS
    out = master(y, sr=SR)
    assert np.isfinite(out).all()
    assert np.abs(out).max() <= 1e-6 * 10 ** (30 / 20) * 1.01  # at most +30 dB


def test_master_does_not_mutate_input():
    y = _music_like(seconds=2.0)
    before = y.copy()
    master(y, sr=SR)
    np.testing.assert_array_equal(y, before)


def test_master_in_place_writes_the_same_result_into_its_input():
    y = 4.0 * _music_like(seconds=3.0)  # loud: the limiter works
    expected = master(y, sr=SR)
    own = y.copy()
    out = master(own, sr=SR, in_place=True)
    assert out is own
    np.testing.assert_array_equal(out, expected)
    f64 = y.astype(np.float64)  # not float32: left alone, a new float32 array comes back
    out64 = master(f64, sr=SR, in_place=True)
    assert out64 is not f64 and out64.dtype == np.float32
    np.testing.assert_array_equal(f64, y.astype(np.float64))


def test_abs_max_is_the_largest_magnitude_over_channels():
    from core.audio.loudness import _CHUNK, _abs_max

    rng = np.random.default_rng(3)
    for channels in (1, 2, 3):
        y = rng.standard_normal((channels, 2 * _CHUNK + 123)).astype(np.float32)
        np.testing.assert_array_equal(_abs_max(y), np.abs(y).max(axis=0))
    assert _abs_max(np.zeros((2, 0), np.float32)).shape == (0,)


def test_master_gain_estimate_matches_the_measured_loudness_of_a_heavily_limited_mix():
    from core.audio.loudness import _block_powers, _gated_lufs, _k_power, apply_master_gain, master_gain

    y = _music_like(seconds=8.0, seed=3)
    # -9 LUFS asks for more than the -1 dBTP ceiling allows without limiting: the gain is raised on
    # estimates made from the input's K-weighted power times the squared limiter curve
    gain, curve = master_gain(y, sr=SR, target_lufs=-9.0, ceiling_dbtp=-1.0)
    assert curve is not None and float(curve.min()) < 0.5  # the limiter works hard here
    out = apply_master_gain(y, gain, curve, ceiling_dbtp=-1.0)
    measured = integrated_lufs(out, sr=SR)
    assert true_peak_dbfs(out, sr=SR) <= -1.0
    assert measured == pytest.approx(-9.0, abs=1.0)
    # the estimate master_gain decides with (block gains on 16-sample power sums) is within 0.02 LU of
    # measuring the limited signal, and so is the per-sample version it falls back to
    from core.audio.loudness import _block_gains, _expand, _hop_peaks, _hop_sums, _limited_lufs, _tp_envelope

    power = _k_power(y, SR)
    peaks = _hop_peaks(_tp_envelope(y)) * gain
    g_block = _block_gains(peaks, sr=SR, threshold=10 ** (-1.3 / 20), lookahead_ms=5.0, release_ms=80.0)
    limited = integrated_lufs(y * _expand(g_block, y.shape[1])[None, :], sr=SR)
    assert _limited_lufs(None, _hop_sums(power), g_block, SR, power.size) == pytest.approx(limited, abs=0.02)
    assert _limited_lufs(power, None, g_block, SR, power.size) == pytest.approx(limited, abs=0.02)
    assert _gated_lufs(_block_powers(power, SR)) == pytest.approx(integrated_lufs(y, sr=SR), abs=1e-9)


def test_the_limiter_curve_is_made_and_applied_a_chunk_at_a_time():
    import tracemalloc

    from core.audio.loudness import _APPLY_CHUNK, LimiterCurve, _expand

    rng = np.random.default_rng(5)
    n = 12 * _APPLY_CHUNK + 37  # a partial last chunk and a partial last 16-sample block
    blocks = rng.uniform(0.2, 1.0, -(-n // 16)).astype(np.float32)
    full = _expand(blocks, n)
    curve = LimiterCurve(blocks, n)
    for a, b in (
        (0, n),
        (5, 21),
        (16, 32),
        (15, 17),
        (n - 3, n),
        (_APPLY_CHUNK - 1, _APPLY_CHUNK + 1),
        (7, 7),
    ):
        np.testing.assert_array_equal(curve.samples(a, b), full[a:b])
    assert curve.min() == float(full.min())
    y = rng.standard_normal((2, n)).astype(np.float32)
    want = y * full[None, :]
    tracemalloc.start()
    curve.apply_in_place(y)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    np.testing.assert_array_equal(y, want)  # the same values as the whole curve at once
    assert peak < full.nbytes / 4  # never a full-length curve


def test_k_weighted_sums_are_made_run_by_run_with_the_same_values(monkeypatch):
    import tracemalloc

    from core.audio import loudness
    from core.audio.loudness import _hop_sums, _k_power, _k_sums

    rng = np.random.default_rng(8)
    monkeypatch.setattr(loudness, "_K_BLOCK", 20_000)  # several runs even for short signals
    for sr, n in ((44100, 4410 * 23), (44100, 4410 * 23 + 1000), (48000, 123_457), (22050, 35_280 * 2 + 7)):
        y = (0.1 * rng.standard_normal((2, n))).astype(np.float32)
        power = _k_power(y, sr)
        step = sr // 10
        whole = n // step * step
        want = np.append(
            power[:whole].reshape(-1, step).sum(axis=1, dtype=np.float64), power[whole:].sum(dtype=np.float64)
        )
        seg, hops = _k_sums(y, sr, hops=True)
        np.testing.assert_array_equal(seg, want)  # not merely close: the same sums in the same order
        np.testing.assert_array_equal(hops, _hop_sums(power))
        assert _k_sums(y, sr)[1] is None
    monkeypatch.undo()
    y = (0.1 * rng.standard_normal((1, 8_000_000))).astype(np.float32)
    tracemalloc.start()
    _k_sums(y, 44100, hops=True)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < y.nbytes / 2  # the power is never held at full length


def test_master_gain_without_limiting_is_exact_and_leaves_no_curve():
    from core.audio.loudness import master_gain

    y = 0.01 * _sine(seconds=2.0)  # a quiet sine: no limiting needed at -14 LUFS
    gain, curve = master_gain(y, sr=SR, target_lufs=-14.0)
    assert curve is None
    assert integrated_lufs(y * np.float32(gain), sr=SR) == pytest.approx(-14.0, abs=1e-3)


def test_candidates_are_the_samples_whose_neighbourhood_is_loud():
    from scipy.ndimage import maximum_filter1d

    from core.audio.loudness import _candidates

    rng = np.random.default_rng(2)
    for n in (1, 6, 12, 13, 14, 999):
        a = rng.random(n).astype(np.float32) ** 8
        want = np.flatnonzero(maximum_filter1d(np.pad(a, 6), 13)[6 : 6 + n] > 0.5)
        np.testing.assert_array_equal(_candidates(a, 0.5), want)


def test_limiter_respects_ceiling_and_leaves_quiet_parts_alone():
    y = 0.1 * _music_like(seconds=4.0)
    y[:, 2 * SR : 2 * SR + 300] = 1.5  # one huge spike in the middle
    out = limit(y, sr=SR, ceiling_dbtp=-1.0)
    assert true_peak_dbfs(out, sr=SR) <= -1.0
    np.testing.assert_allclose(out[:, :SR], y[:, :SR], atol=1e-6)  # far from the spike: untouched
    # look-ahead: gain is already reduced a few ms *before* the spike
    pre = slice(2 * SR - 100, 2 * SR)
    assert np.all(np.abs(out[:, pre]) <= np.abs(y[:, pre]) + 1e-7)
    assert np.abs(out[:, pre]).sum() < 0.9 * np.abs(y[:, pre]).sum()


def test_limiter_on_loud_noise_keeps_the_ceiling():
    y = np.random.default_rng(0).uniform(-1, 1, (2, 2 * SR)).astype(np.float32) * 4
    out = limit(y, sr=SR, ceiling_dbtp=-2.0)
    assert true_peak_dbfs(out, sr=SR) <= -2.0


def test_limiter_speed_three_minutes_stereo():
    y = np.tile(_music_like(seconds=10.0), (1, 18)) * 2.0  # 3 minutes, heavily limited
    limit(y[:, :SR], sr=SR)  # warm caches
    t0 = time.perf_counter()
    out = limit(y, sr=SR)
    elapsed = time.perf_counter() - t0
    assert true_peak_dbfs(out, sr=SR) <= -1.0
    # ~0.3 s on an idle core; CI machines are shared, so assert only what rules out a per-sample
    # Python loop (which takes minutes): at least 20x realtime
    assert elapsed < 9.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ceiling_dbtp": 3.0}, "ceiling_dbtp"),
        ({"lookahead_ms": 0.0}, "lookahead_ms"),
        ({"release_ms": -1.0}, "release_ms"),
    ],
)
def test_limiter_validates(kwargs, match):
    with pytest.raises(InputError, match=match):
        limit(_sine(seconds=0.5), sr=SR, **kwargs)


def test_master_validates():
    with pytest.raises(InputError, match="target_lufs"):
        master(_sine(seconds=0.5), sr=SR, target_lufs=3.0)
    with pytest.raises(InputError, match="NaN"):
        master(np.full((2, 100), np.nan, np.float32), sr=SR)
    with pytest.raises(InputError, match="floating point"):
        integrated_lufs(np.zeros((2, 100), np.int16), sr=SR)


def test_partial_oversampling_is_exact_where_it_matters():
    from core.audio.loudness import _tp_envelope

    rng = np.random.default_rng(5)
    y = _music_like(seconds=40.0) * np.repeat(rng.uniform(0.2, 1.0, (1, 40)), SR, axis=1).astype(np.float32)
    full = _tp_envelope(y)
    for floor in (0.3, 0.6, 0.9):
        part = _tp_envelope(y, floor=floor)
        above = full > floor
        np.testing.assert_array_equal(part[above], full[above])
        assert np.all(part[~above] <= floor)


def test_block_powers_are_never_negative_when_a_song_ends_in_silence():
    from core.audio.loudness import _block_powers, _k_power

    rng = np.random.default_rng(4)
    for n in (SR * 3 + 17, SR * 5, SR * 7 + 4409):
        y = (0.3 * rng.standard_normal((2, n))).astype(np.float32)
        y[:, n // 3 :] = 0.0  # the running sums must not dip below the last loud block's
        assert (_block_powers(_k_power(y, SR), SR) >= 0).all()


def test_long_signals_get_the_same_true_peaks_span_by_span(monkeypatch):
    """Songs longer than about 3 minutes have their true-peak envelope computed in spans (no
    full-length envelope: 101 MB for 10 minutes); the peaks, the limiter's gain and the mastered audio
    are exactly those of one pass, also with loud inter-sample peaks right at the span edges."""
    import core.audio.loudness as L

    rng = np.random.default_rng(5)
    n = 50_000
    y = (0.3 * rng.standard_normal((2, n))).astype(np.float32)
    for edge in (4096, 8192, 12288, 40960):  # alternating full-scale samples: peaks between them
        y[:, edge - 3 : edge + 3] = np.array([1, -1, 1, -1, 1, -1], np.float32) * 0.99
    one = (L._hop_peaks(L._tp_envelope(y, floor=0.5)), L._tp_envelope(y, floor=0.5).max(), master(y, sr=SR))
    monkeypatch.setattr(L, "_TP_SPAN", 4096)
    monkeypatch.setattr(L, "_TP_ONE_PASS", 8192)
    spans = (L._tp_hop_peaks(y, 0.5), L._tp_max(y, 0.5), master(y, sr=SR))
    assert len(list(L._tp_spans(y, 0.5))) == 13
    assert np.array_equal(one[0], spans[0]) and one[1] == spans[1] and one[1] > 1.0
    assert np.array_equal(one[2], spans[2])
    assert true_peak_dbfs(spans[2], sr=SR) <= -1.0
