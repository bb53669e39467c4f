"""Tests of core.remix: style transfer on spectrograms, phase reconstruction, loudness safety."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pyloudnorm
import pytest
from scipy.signal import resample_poly

from core.errors import CancelledError, InputError
from core.remix import PRESETS, _chunks, _crossfade_ramp, remix

SR = 44100


def melody(seconds: float, *, sr: int = SR, seed: int = 0, channels: int = 2) -> np.ndarray:
    """Piano-like content: decaying harmonic tones on a C major scale, one every 0.25 s."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    y = np.zeros(n)
    t = 0.0
    while t < seconds:
        midi = (60, 62, 64, 65, 67, 69, 71, 72)[rng.integers(8)]
        f0 = 440.0 * 2 ** ((midi - 69) / 12)
        tt = np.arange(int(0.6 * sr)) / sr
        tone = sum(0.5**k * np.sin(2 * np.pi * f0 * (k + 1) * tt) for k in range(6)) * np.exp(-4 * tt)
        i = int(t * sr)
        j = min(n, i + tt.size)
        y[i:j] += 0.2 * tone[: j - i]
        t += 0.25
    return np.tile(y.astype(np.float32), (channels, 1))


def beat(seconds: float, *, sr: int = SR, seed: int = 1, channels: int = 2) -> np.ndarray:
    """Style: noise snare hits and sine kicks at 128 bpm over a sawtooth bass."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    tt = np.arange(n) / sr
    y = 0.15 * (2 * ((tt * 55.0) % 1.0) - 1)
    step = 60.0 / 128
    for k in range(int(seconds / step) + 1):
        i = int(k * step * sr)
        hit_t = np.arange(int(0.15 * sr)) / sr
        if k % 2:
            hit = 0.3 * rng.standard_normal(hit_t.size) * np.exp(-30 * hit_t)
        else:
            hit = 0.5 * np.sin(2 * np.pi * (50 + 100 * np.exp(-30 * hit_t)) * hit_t) * np.exp(-20 * hit_t)
        j = min(n, i + hit.size)
        if i < n:
            y[i:j] += hit[: j - i]
    return np.tile(y.astype(np.float32), (channels, 1))


@pytest.fixture(scope="module")
def pair():
    return melody(4.0), beat(4.0)


@pytest.fixture(scope="module")
def fast_result(pair):
    content, style = pair
    return remix(content, style, sr=SR, quality="fast", seed=3, threads=1)


def test_optimization_lowers_style_loss(fast_result):
    r = fast_result
    assert r.style_loss_before > 0.05  # a melody and a beat really differ in style
    assert r.style_loss_after < 0.6 * r.style_loss_before
    assert 0.0 < r.content_loss_after < 1.0
    assert r.evaluations > 0
    # the result spectrogram moved away from the content's
    assert not np.allclose(r.result_spec, r.content_spec)


def test_output_length_rate_and_format(fast_result):
    r = fast_result
    assert r.sr == SR
    assert r.audio.dtype == np.float32
    assert r.audio.shape == (2, 4 * SR)
    assert r.seconds == pytest.approx(4.0)
    assert np.all(np.isfinite(r.audio))
    assert r.content_spec.shape[0] == r.result_spec.shape[0] == r.spec_hz.size


def test_loudness_normalized_and_true_peak_limited(fast_result):
    y = fast_result.audio
    lufs = pyloudnorm.Meter(SR).integrated_loudness(y.T.astype(np.float64))
    assert abs(lufs - (-14.0)) <= 1.0
    true_peak = np.abs(resample_poly(y, 4, 1, axis=-1)).max()
    assert 20 * np.log10(true_peak) <= -1.0 + 0.1
    assert np.abs(y).max() <= 10 ** (-1.0 / 20)


def test_same_seed_same_output_other_seed_differs(pair, fast_result):
    content, style = pair
    again = remix(content, style, sr=SR, quality="fast", seed=3, threads=1)
    np.testing.assert_array_equal(again.audio, fast_result.audio)
    other = remix(content, style, sr=SR, quality="fast", seed=4, threads=1)
    assert not np.array_equal(other.audio, fast_result.audio)


def test_identical_inputs_return_quickly_with_the_content(pair):
    content, _ = pair
    r = remix(content, content.copy(), sr=SR, quality="balanced", threads=1)
    assert r.style_loss_before == pytest.approx(0.0, abs=1e-6)
    assert r.style_loss_after == r.style_loss_before and r.content_loss_after == 0.0
    assert r.evaluations == 0
    assert any("already has the style" in note for note in r.notes)
    ref = content.mean(axis=0)
    corr = np.corrcoef(r.audio[0], ref[: r.audio.shape[1]])[0, 1]
    assert corr > 0.99


def test_more_strength_moves_further_towards_the_style(pair):
    content, style = pair
    mild = remix(content, style, sr=SR, quality="fast", strength=0.2, seed=3, threads=1)
    strong = remix(content, style, sr=SR, quality="fast", strength=0.9, seed=3, threads=1)
    assert strong.style_loss_after < mild.style_loss_after
    assert strong.content_loss_after > mild.content_loss_after


def test_strength_zero_keeps_the_content(pair):
    content, style = pair
    r = remix(content, style, sr=SR, quality="fast", strength=0.0, threads=1)
    assert r.evaluations == 0
    assert r.style_loss_after == pytest.approx(r.style_loss_before)
    assert np.corrcoef(r.audio[0], content[0])[0, 1] > 0.99


def test_mismatched_rates_and_channels_and_trimming():
    content = melody(5.0, sr=22050, channels=1)  # mono at 22.05 kHz
    style = beat(3.0, sr=48000, channels=2)  # stereo at 48 kHz
    r = remix(
        content, style, sr=22050, style_sr=48000, seconds=2.0, content_offset_s=1.0, quality="fast", threads=1
    )
    assert r.audio.shape == (2, 2 * SR)
    assert r.sr == SR
    assert any("resampled" in note for note in r.notes)
    assert any("used 2.0 s from 1.0 s" in note for note in r.notes)
    assert r.style_loss_after < r.style_loss_before


def test_long_input_is_processed_in_crossfaded_chunks(pair):
    content, style = melody(5.0), beat(3.0)
    cfg = dataclasses.replace(PRESETS["fast"], chunk_seconds=2.0, max_evals=8, lbfgs_iters=8)
    r = remix(content, style, sr=SR, config=cfg, threads=1)
    assert r.audio.shape == (2, 5 * SR)
    assert r.evaluations > 8  # more than one chunk was optimized
    assert r.style_loss_after < r.style_loss_before
    # no silent gap or blast at the seams: short-term RMS stays within a sane range everywhere
    frames = r.audio[0, : 5 * SR // 2205 * 2205].reshape(-1, 2205)
    rms = np.sqrt((frames**2).mean(axis=1))
    assert rms.min() > 1e-3 and rms.max() < 0.9


def test_chunks_cover_everything_with_overlaps():
    spans = _chunks(1292, chunk=431, overlap=43)
    assert spans[0][0] == 0 and spans[-1][1] == 1292
    assert len({b - a for a, b in spans}) == 1
    for (_, b0), (a1, _) in itertools.pairwise(spans):
        assert b0 - a1 >= 43
    import torch

    weights = torch.zeros(1292)
    for i, (a, b) in enumerate(spans):
        weights[a:b] += _crossfade_ramp(spans, i, torch)
    assert float(weights.min()) > 0.5
    assert _chunks(100, chunk=431, overlap=43) == [(0, 100)]


@pytest.mark.parametrize(
    ("content", "style", "kwargs", "match"),
    [
        (np.zeros((2, 3 * SR), np.float32), beat(2.0), {}, "content is silent"),
        (melody(2.0), np.full((2, 3 * SR), 1e-6, np.float32), {}, "style is silent"),
        (melody(0.5), beat(2.0), {}, "content is too short"),
        (melody(2.0), beat(0.8), {}, "style is too short"),
        (melody(2.0), beat(2.0), {"strength": 1.5}, "strength must be between 0 and 1"),
        (melody(2.0), beat(2.0), {"seconds": 500.0}, "seconds must be between 1 and 120"),
        (melody(2.0), beat(2.0), {"quality": "ultra"}, "quality must be one of fast, balanced, high"),
        (melody(2.0), beat(2.0), {"content_offset_s": 1.5}, "content offset 1.5 s leaves less than"),
        (melody(2.0), beat(2.0), {"style_offset_s": -1.0}, "style offset must be >= 0"),
        (melody(2.0)[:, :100].reshape(2, 10, 10), beat(2.0), {}, "shaped"),
        (np.full((2, 3 * SR), np.nan, np.float32), beat(2.0), {}, "NaN"),
        (melody(2.0)[:1].repeat(9, axis=0), beat(2.0), {}, r"content audio .* 1-8 channels, got shape \(9, "),
        (melody(2.0), beat(2.0).astype(np.int16), {}, "style audio must be floating point"),
        (
            melody(2.0),
            beat(2.0),
            {"style_sr": 999},
            "style sample rate .* between 1000 and 384000 Hz, got 999",
        ),
        (melody(2.0), beat(2.0), {"style_sr": 48000.0}, "style sample rate .* got 48000.0"),
        (melody(2.0), beat(2.0), {"out_sr": 4000}, "output sample rate .* 8000 and 192000 Hz, got 4000"),
    ],
)
def test_bad_input_gives_a_clear_error(content, style, kwargs, match):
    with pytest.raises(InputError, match=match):
        remix(content, style, sr=SR, threads=1, **kwargs)


@pytest.mark.parametrize("sr", [500, 400_000, 44100.0, True])
def test_bad_sample_rate_names_the_value_and_range(sr):
    with pytest.raises(
        InputError, match=f"sample rate must be an integer between 1000 and 384000 Hz, got {sr!r}"
    ):
        remix(melody(2.0), beat(2.0), sr=sr, threads=1)


def test_bad_config_is_rejected():
    with pytest.raises(InputError, match="n_filters must be an integer from 1 to 8192"):
        dataclasses.replace(PRESETS["fast"], n_filters=0)
    with pytest.raises(InputError, match="chunk_seconds must be from 2"):
        dataclasses.replace(PRESETS["fast"], chunk_seconds=0.5)


def test_cancel_raises_and_restores_thread_count(pair):
    import torch

    content, style = pair
    before = torch.get_num_threads()
    calls = []

    def progress(fraction, message):
        calls.append((fraction, message))
        if len(calls) >= 4:
            raise CancelledError("cancelled by the user")

    with pytest.raises(CancelledError):
        remix(content, style, sr=SR, quality="fast", progress=progress, threads=1)
    assert torch.get_num_threads() == before
    assert len(calls) == 4
    assert all(0.0 <= f <= 1.0 for f, _ in calls)


def test_progress_reaches_one(pair):
    content, style = pair
    seen = []
    remix(content[:, : 2 * SR], style[:, : 2 * SR], sr=SR, quality="fast", threads=1,
          progress=lambda f, m: seen.append(f))  # fmt: skip
    assert seen[-1] == 1.0
    assert seen == sorted(seen)


def test_cli_writes_the_remix_and_prints_json(tmp_path, capsys):
    import json

    import soundfile as sf

    from core.__main__ import main

    sf.write(tmp_path / "content.wav", melody(3.0).T, SR)
    sf.write(tmp_path / "style.flac", beat(3.0, sr=48000).T, 48000)
    out = tmp_path / "out" / "remix.wav"
    argv = ["remix", str(tmp_path / "content.wav"), str(tmp_path / "style.flac"), "--out", str(out)]
    argv += [
        "--seconds",
        "2",
        "--strength",
        "0.7",
        "--seed",
        "1",
        "--quality",
        "fast",
        "--threads",
        "1",
        "--json",
    ]
    assert main(argv) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(figures) == {
        "seconds",
        "style_loss_before",
        "style_loss_after",
        "content_loss_after",
        "elapsed_s",
    }
    assert figures["seconds"] == pytest.approx(2.0)
    assert figures["style_loss_after"] < figures["style_loss_before"]
    y, rate = sf.read(out, always_2d=True)
    assert rate == SR and y.shape == (2 * SR, 2)
    assert main(["remix", str(tmp_path / "content.wav"), str(tmp_path / "nope.wav"), "--out", str(out)]) == 2
    assert "no such file" in capsys.readouterr().err


def test_previews_share_one_time_scale_when_the_style_is_longer():
    r = remix(melody(2.0), beat(5.0), sr=SR, strength=0.0, threads=1)
    assert r.audio.shape == (2, 2 * SR)
    assert r.result_spec.shape == r.content_spec.shape
    assert r.style_spec.shape[1] > 2 * r.content_spec.shape[1]
    assert r.style_spec.shape[1] * r.spec_frame_s == pytest.approx(5.0, abs=0.1)
    assert r.content_spec.shape[1] * r.spec_frame_s == pytest.approx(2.0, abs=0.1)
    assert r.spec_hz[0] < 50 and r.spec_hz[-1] > 10000 and np.all(np.diff(r.spec_hz) > 0)
