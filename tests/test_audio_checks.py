"""Tests of core.audio.checks.check_signal, the one validation of audio arrays, and of its callers."""

from __future__ import annotations

import doctest
import subprocess
import sys

import numpy as np
import pytest

from core.audio import checks
from core.audio.checks import check_sample_rate, check_signal
from core.errors import InputError, LimitError

SR = 44100
TONE = (0.5 * np.sin(2 * np.pi * 440 * np.arange(SR // 10) / SR)).astype(np.float32)


def test_accepts_good_audio_without_copying():
    y = np.stack([TONE, -TONE])
    out = check_signal(y, sr=SR)
    assert out is y
    mono = check_signal(TONE, sr=SR)
    assert mono.shape == (1, TONE.size) and np.shares_memory(mono, TONE)
    f64 = check_signal(TONE.astype(np.float64), sr=np.int64(48000))
    assert f64.dtype == np.float64  # the caller decides about float32


@pytest.mark.parametrize(
    ("y", "kwargs", "exc", "message"),
    [
        (TONE.tolist(), {}, InputError, "audio must be a numpy array, got list"),
        (np.zeros((2, 10), np.int16), {}, InputError, "must be floating point (float32), got dtype int16"),
        (np.zeros((2, 10, 2), np.float32), {}, InputError, "with 1-8 channels, got shape (2, 10, 2)"),
        (np.zeros((9, 10), np.float32), {}, InputError, "with 1-8 channels, got shape (9, 10)"),
        (np.zeros((0, 10), np.float32), {}, InputError, "with 1-8 channels, got shape (0, 10)"),
        (
            np.zeros((3, 10), np.float32),
            {"max_channels": 2},
            InputError,
            "with 1-2 channels, got shape (3, 10)",
        ),
        (np.zeros((2, 10), np.float32), {"sr": 7999}, InputError, "between 8000 and 192000 Hz, got 7999"),
        (np.zeros((2, 10), np.float32), {"sr": 192001}, InputError, "between 8000 and 192000 Hz, got 192001"),
        (np.zeros((2, 10), np.float32), {"sr": 44100.0}, InputError, "got 44100.0"),
        (np.zeros((2, 10), np.float32), {"sr": True}, InputError, "got True"),
        (np.zeros((2, 10), np.float32), {"sr": 500, "min_sr": 1000}, InputError, "between 1000 and"),
        (np.zeros((2, 0), np.float32), {"allow_empty": False}, InputError, "audio is empty (0 samples)"),
        (np.full((2, 10), np.nan, np.float32), {}, InputError, "audio contains NaN or infinite samples"),
        (np.array([0.0, -np.inf], np.float32), {}, InputError, "audio contains NaN or infinite samples"),
        (
            np.zeros((1, 3 * SR), np.float32),
            {"max_seconds": 2},
            LimitError,
            "is 3.0 s long; the limit is 2 s",
        ),
        (
            np.zeros((2, 10, 1)),
            {"what": "song.wav"},
            InputError,
            "song.wav must be shaped (channels, samples)",
        ),
        (np.full((1, 4), np.inf), {"what": "song.wav"}, InputError, "song.wav contains NaN or infinite"),
    ],
)
def test_rejects_bad_audio_naming_the_value_and_the_range(y, kwargs, exc, message):
    args = {"sr": SR, **kwargs}
    with pytest.raises(exc) as err:
        check_signal(y, **args)
    assert message in str(err.value)
    assert type(err.value) is exc


def test_options_widen_or_narrow_the_rules():
    assert check_signal(np.zeros((2, 0), np.float32), sr=SR).shape == (2, 0)  # empty is allowed by default
    assert check_signal(np.zeros((1, 10), np.float32), sr=500, min_sr=100).shape == (1, 10)
    assert check_signal(np.zeros((1, 2 * SR), np.float32), sr=SR, max_seconds=2).shape == (1, 2 * SR)
    assert check_signal(np.zeros((8, 10), np.float32), sr=SR).shape == (8, 10)


def test_check_sample_rate_returns_an_int_and_names_what_it_checks():
    assert check_sample_rate(np.int32(22050)) == 22050 and type(check_sample_rate(np.int32(22050))) is int
    assert check_sample_rate(500, min_sr=100, max_sr=1000) == 500
    for bad in (7999, 192001, 44100.0, "44100", None, False):
        with pytest.raises(InputError, match="sample rate must be an integer between 8000 and 192000 Hz"):
            check_sample_rate(bad)
    with pytest.raises(
        InputError, match=r"^target sample rate must be an integer between 8000 and 192000 Hz, got 5$"
    ):
        check_sample_rate(5, what="target sample rate")


def test_doctests():
    assert doctest.testmod(checks).failed == 0


def test_checks_and_io_import_no_heavy_modules():
    code = (
        "import sys, core.audio.checks, core.audio.io; "
        "print(sorted(m for m in ('librosa', 'torch', 'scipy', 'pedalboard', 'numba') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------------------- callers


def test_encode_uses_the_shared_rules():
    from core.audio.io import encode

    with pytest.raises(InputError, match="got shape \\(9, 10\\)"):
        encode(np.zeros((9, 10), np.float32), sr=SR)
    with pytest.raises(InputError, match="empty"):
        encode(np.zeros((1, 0), np.float32), sr=SR)
    assert encode(TONE, sr=SR)[:4] == b"RIFF"  # 1-D is mono


def test_effects_accept_mono_and_reject_nan_int_and_float_rates():
    from core.audio import effects as fx

    out = fx.apply_chain(TONE, sr=SR, chain=[])
    assert out.shape == (1, TONE.size) and out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_array_equal(out[0], TONE)
    bad = np.stack([TONE, TONE])
    bad[1, 7] = np.nan
    for y, kwargs, word in (
        (bad, {}, "NaN"),
        (np.zeros((2, 100), np.int16), {}, "floating point"),
        (np.zeros((3, 100), np.float32), {}, "1-2 channels"),
        (np.zeros((2, 100), np.float32), {"sr": 44100.0}, "sample rate"),
    ):
        with pytest.raises(InputError, match=word):
            fx.apply_chain(y, sr=kwargs.get("sr", SR), chain=[])
        with pytest.raises(InputError, match=word):
            fx.time_stretch(y, sr=kwargs.get("sr", SR), rate=1.5)


def test_kpop_names_the_bad_song():
    from core import kpop

    y = np.stack([TONE, TONE])
    y[0, 3] = np.inf
    with pytest.raises(InputError, match=r"my song\.wav contains NaN or infinite samples"):
        kpop.song_frames(y, sr=SR, name="my song.wav")
    with pytest.raises(
        InputError, match="sample rate must be an integer between 8000 and 192000 Hz, got 4000"
    ):
        kpop.song_frames(np.stack([TONE, TONE]), sr=4000, name="x")
    with pytest.raises(InputError, match="audio must be floating point"):
        kpop.to_model_audio(np.zeros((1, 100), np.int32), sr=SR)
    mono = kpop.to_model_audio(np.stack([TONE, TONE]).astype(np.float64), sr=SR)
    assert mono.dtype == np.float32 and mono.ndim == 1


def test_beats_validation_duplicates_mono_and_keeps_float32_bits():
    from core.beats import _validate_audio

    x = _validate_audio(TONE, SR)
    assert x.shape == (2, TONE.size) and x.dtype == np.float32
    np.testing.assert_array_equal(x[0], TONE)
    np.testing.assert_array_equal(x[1], TONE)
    stereo = np.stack([TONE, -TONE])
    assert _validate_audio(stereo, SR) is stereo
    with pytest.raises(InputError, match="1-2 channels"):
        _validate_audio(np.zeros((4, 100), np.float32), SR)
