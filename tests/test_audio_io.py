"""Round trips and behaviour of core.audio.io (signals made in code)."""

from __future__ import annotations

import io
import subprocess
import sys
import tracemalloc
from pathlib import Path

import mutagen
import numpy as np
import pytest
import soundfile as sf

from core.audio import io as aio
from core.errors import InputError

SR = 44100


def _tone(freq=440.0, seconds=1.5, sr=SR, channels=2, amp=0.4):
    t = np.arange(int(seconds * sr)) / sr
    rows = [amp * np.sin(2 * np.pi * freq * (1 + 0.5 * c) * t) for c in range(channels)]
    return np.array(rows, dtype=np.float32)


def _corr(a, b):
    n = min(a.shape[-1], b.shape[-1])
    a, b = a[..., :n].ravel(), b[..., :n].ravel()
    return float(np.dot(a, b) / np.sqrt(np.dot(a, a) * np.dot(b, b)))


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3"])
def test_round_trip_per_format(fmt):
    x = _tone()
    data = aio.encode(x, sr=SR, fmt=fmt)
    info = aio.probe(data, filename=f"song.{fmt}")
    assert (info.format, info.sample_rate, info.channels) == (fmt, SR, 2)
    assert info.duration_s == pytest.approx(1.5, abs=0.06)
    y = aio.decode(data, filename=f"song.{fmt}")
    assert y.dtype == np.float32 and y.shape[0] == 2
    assert abs(y.shape[1] - x.shape[1]) <= 0.03 * SR
    if fmt in ("wav", "flac"):
        assert y.shape == x.shape
        assert np.max(np.abs(y - x)) < 2.5 / 32768  # 16-bit with +-1 LSB TPDF dither
    else:
        assert _corr(x, y) > 0.98  # lossy, but the same signal (no channel swap, no offset)


def test_wav_24_bit_is_more_precise_than_16():
    x = _tone(amp=0.3)
    y24 = aio.decode(aio.encode(x, sr=SR, bit_depth=24), filename="a.wav")
    assert sf.info(io.BytesIO(aio.encode(x, sr=SR, bit_depth=24))).subtype == "PCM_24"
    assert np.max(np.abs(y24 - x)) < 1e-6


def test_dither_is_deterministic_and_decorrelates_quantisation():
    x = np.full((2, SR), 0.25 / 32768, dtype=np.float32)  # a quarter of an LSB: truncates to 0 without dither
    a, b = aio.encode(x, sr=SR), aio.encode(x, sr=SR)
    assert a == b
    y = aio.decode(a, filename="d.wav")
    assert abs(float(y.mean()) - 0.25 / 32768) < 0.05 / 32768  # the average survives thanks to dither


def test_long_ogg_is_encoded_without_crashing_the_process():
    # libvorbis overflows its stack on one long write (a segfault from about a minute of stereo up):
    # encode() writes blocks. Run in a child process, so a crash fails this test, not the whole run.
    code = (
        "import numpy as np\n"
        "from core.audio import io as aio\n"
        "x = np.random.default_rng(0).uniform(-0.3, 0.3, (2, 44100 * 150)).astype(np.float32)\n"
        "data = aio.encode(x, sr=44100, fmt='ogg')\n"
        "print(aio.probe(data, filename='long.ogg').duration_s)\n"
    )
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert float(proc.stdout.split()[-1]) == pytest.approx(150.0, abs=0.1)


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3"])
def test_encoding_works_block_by_block(fmt):
    # 60 s of stereo is 21 MB of float32: no full-length float64, int16 or clipped copy is made
    x = np.random.default_rng(1).uniform(-0.5, 0.5, (2, SR * 60)).astype(np.float32)
    tracemalloc.start()
    try:
        data = aio.encode(x, sr=SR, fmt=fmt)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2.2 * len(data) + 8 * 2**20, (peak, len(data))  # the file (and one copy of it) + blocks
    y = aio.decode(data, filename=f"x.{fmt}")
    assert abs(y.shape[1] - x.shape[1]) <= 0.03 * SR
    if fmt != "mp3":
        assert np.max(np.abs(y - x)) < 2.5 / 32768


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3"])
def test_title_and_artist_tags_read_back(fmt):
    data = aio.encode(_tone(seconds=0.5), sr=SR, fmt=fmt, title="Night Drive", artist="Mina & Co")
    with sf.SoundFile(io.BytesIO(data)) as f:
        assert f.title == "Night Drive"
        assert f.artist == "Mina & Co"
    if fmt == "mp3":
        tags = mutagen.File(io.BytesIO(data))
        assert str(tags.tags["TIT2"]) == "Night Drive"
        assert str(tags.tags["TPE1"]) == "Mina & Co"


def test_mp3_is_at_least_192_kbps():
    data = aio.encode(_tone(seconds=4.0), sr=SR, fmt="mp3")
    kbps = len(data) * 8 / 4.0 / 1000
    assert kbps >= 192


@pytest.mark.parametrize("rate", [22050, 48000])
def test_resampling_to_project_rate(rate):
    x = _tone(freq=1000.0, seconds=2.0, sr=rate)
    y = aio.decode(aio.encode(x, sr=rate, bit_depth=24), filename="r.wav")
    assert y.shape == (2, 2 * SR)
    spec = np.abs(np.fft.rfft(y[0]))
    peak_hz = np.argmax(spec) * SR / y.shape[1]
    assert peak_hz == pytest.approx(1000.0, abs=1.0)  # pitch preserved
    assert np.max(np.abs(y[0, 1000:-1000])) == pytest.approx(0.4, abs=0.01)  # level preserved


def test_decode_to_other_rate():
    y = aio.decode(aio.encode(_tone(seconds=1.0), sr=SR), filename="a.wav", sr=22050)
    assert y.shape == (2, 22050)


def test_mono_is_duplicated_to_stereo():
    x = _tone(channels=1)
    y = aio.decode(aio.encode(x, sr=SR, bit_depth=24), filename="m.flac")
    assert y.shape == (2, x.shape[1])
    np.testing.assert_allclose(y[0], y[1])
    np.testing.assert_allclose(y[0], x[0], atol=1e-6)


def test_six_channels_are_downmixed_without_lfe():
    n = SR // 2
    x = np.zeros((6, n), dtype=np.float32)
    x[0] = 0.5  # left
    x[3] = 0.9  # LFE: dropped from the stereo downmix
    buf = io.BytesIO()
    sf.write(buf, x.T, SR, format="WAV", subtype="FLOAT")
    y = aio.decode(buf.getvalue(), filename="surround.wav")
    assert y.shape == (2, n)
    assert y[0].mean() > 0.1 and abs(float(y[1].mean())) < 1e-6


def test_misnamed_audio_is_decoded_by_content():
    data = aio.encode(_tone(seconds=0.5), sr=SR, fmt="flac")
    y = aio.decode(data, filename="actually_flac.mp3")
    assert y.shape == (2, SR // 2)


def _ffmpeg_encode(x, sr, suffix, tmp_path):
    import imageio_ffmpeg

    src = tmp_path / "src.wav"
    src.write_bytes(aio.encode(x, sr=sr, bit_depth=24))
    dst = tmp_path / f"out.{suffix}"
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(src),
            "-c:a",
            "aac",
            "-b:a",
            "192k",
            str(dst),
        ],
        check=True,
    )
    return dst.read_bytes()


@pytest.mark.parametrize("suffix", ["m4a", "aac"])
def test_m4a_and_aac_decode_via_ffmpeg(suffix, tmp_path):
    x = _tone(seconds=2.0, sr=48000, channels=1)
    data = _ffmpeg_encode(x, 48000, suffix, tmp_path)
    info = aio.probe(data, filename=f"phone.{suffix}")
    assert (info.format, info.sample_rate, info.channels) == (suffix, 48000, 1)
    assert info.duration_s == pytest.approx(2.0, abs=0.1)
    y = aio.decode(data, filename=f"phone.{suffix}")
    assert y.shape[0] == 2 and abs(y.shape[1] - 2 * SR) < 0.08 * SR
    ref = aio.resample(x, sr_in=48000, sr_out=SR)
    # AAC adds encoder delay: compare spectra rather than samples
    spec = np.abs(np.fft.rfft(y[0]))
    assert np.argmax(spec) * SR / y.shape[1] == pytest.approx(440.0, abs=2.0)
    assert np.sqrt(np.mean(y[0] ** 2)) == pytest.approx(np.sqrt(np.mean(ref[0] ** 2)), rel=0.1)


def test_load_from_path(tmp_path):
    p = tmp_path / "clip.ogg"
    p.write_bytes(aio.encode(_tone(seconds=1.0), sr=SR, fmt="ogg"))
    y = aio.load(p)
    assert y.shape[0] == 2 and abs(y.shape[1] - SR) < 0.02 * SR


def test_load_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        aio.load(tmp_path / "nope.wav")


def test_limits_from_settings(monkeypatch):
    monkeypatch.setenv("BEATTOK_MAX_UPLOAD_MB", "5")
    monkeypatch.setenv("BEATTOK_MAX_DURATION_S", "42")
    lim = aio.AudioLimits.from_settings()
    assert lim.max_bytes == 5 * 1024 * 1024 and lim.max_duration_s == 42.0
    assert (lim.max_channels, lim.min_sr, lim.max_sr) == (8, 8000, 192000)


@pytest.mark.parametrize(
    ("bad", "kwargs", "match"),
    [
        (np.zeros((2, 100), np.int16), {}, "floating point"),
        (np.zeros((2, 100, 1), np.float32), {}, "shaped"),
        (np.zeros((100, 2), np.float32), {}, "channels"),
        (np.full((2, 100), np.nan, np.float32), {}, "NaN"),
        (np.zeros((2, 0), np.float32), {}, "empty"),
        ([0.0, 0.1], {}, "numpy array"),
        (np.zeros((2, 100), np.float32), {"fmt": "aiff"}, "allowed formats: wav, flac, ogg, mp3"),
        (np.zeros((2, 100), np.float32), {"sr": 1}, "sample rate"),
        (np.zeros((2, 100), np.float32), {"bit_depth": 12}, "bit_depth"),
    ],
)
def test_encode_validates_input(bad, kwargs, match):
    args = {"sr": SR, **kwargs}
    with pytest.raises(InputError, match=match):
        aio.encode(bad, **args)


def test_encode_clips_instead_of_wrapping():
    x = np.full((2, 1000), 1.7, dtype=np.float32)
    y = aio.decode(aio.encode(x, sr=SR), filename="c.wav")
    assert y.min() > 0.99  # clipped to full scale, not wrapped around to negative


def test_mp3_at_unsupported_rate_is_resampled():
    data = aio.encode(_tone(seconds=1.0, sr=96000), sr=96000, fmt="mp3")
    assert aio.probe(data, filename="x.mp3").sample_rate == 48000


def test_encode_does_not_mutate_input():
    x = _tone() * 3
    before = x.copy()
    aio.encode(x, sr=SR, fmt="flac")
    np.testing.assert_array_equal(x, before)
