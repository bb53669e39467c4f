"""A malformed-input corpus, made in code: every file must fail cleanly (or decode its valid part).

Each case asserts the error class, a message that names the bad value or the limit, and that no
temporary files are left behind.
"""

from __future__ import annotations

import io
import struct
import tempfile

import numpy as np
import pytest
import soundfile as sf

from core.audio import io as aio
from core.errors import AudioDecodeError, InputError, LimitError, StudioError

SR = 44100


@pytest.fixture(autouse=True)
def private_tmp(tmp_path, monkeypatch):
    """Point tempfile at an empty folder and check it is empty after the test."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    yield folder
    assert list(folder.iterdir()) == [], "temporary files were left behind"


def _tone(seconds=1.0, sr=SR, channels=2):
    t = np.arange(int(seconds * sr)) / sr
    return np.tile(0.3 * np.sin(2 * np.pi * 330 * t), (channels, 1)).astype(np.float32)


def _riff(*, channels=2, rate=44100, bits=16, data_bytes=4096, fmt_tag=1):
    block_align = channels * bits // 8
    fmt = struct.pack(
        "<HHIIHH", fmt_tag, channels, rate, (rate * block_align) & 0xFFFFFFFF, block_align, bits
    )
    payload = bytes(data_bytes)
    body = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", data_bytes)
        + payload
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _flac_declaring(total_samples: int) -> bytes:
    """A real tiny FLAC whose STREAMINFO claims ``total_samples`` frames."""
    buf = io.BytesIO()
    sf.write(buf, np.zeros((4410, 2), np.float32), SR, format="FLAC")
    b = bytearray(buf.getvalue())
    assert b[:4] == b"fLaC" and (b[4] & 0x7F) == 0  # STREAMINFO first
    word = int.from_bytes(b[18:26], "big")
    word = (word & ~((1 << 36) - 1)) | total_samples
    b[18:26] = word.to_bytes(8, "big")
    return bytes(b)


@pytest.mark.parametrize(
    ("name", "label"), [("song.mp3", "MP3"), ("song.wav", "WAV"), ("song.flac", "FLAC"), ("song.m4a", "M4A")]
)
def test_non_audio_bytes_with_audio_extension(name, label):
    data = b"<html><body>This is not audio at all, just a web page.</body></html>" * 20
    with pytest.raises(AudioDecodeError, match=f"'{name}' is not a valid {label} file"):
        aio.decode(data, filename=name)


def test_random_bytes_named_ogg():
    data = np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    with pytest.raises(AudioDecodeError, match="not a valid OGG file"):
        aio.decode(b"\x00\x01" + data, filename="x.ogg")


def test_zero_length():
    with pytest.raises(AudioDecodeError, match=r"empty \(0 bytes\)"):
        aio.decode(b"", filename="empty.wav")


@pytest.mark.parametrize("name", ["virus.exe", "notes.txt", "noext"])
def test_disallowed_extension(name):
    with pytest.raises(InputError, match="unsupported file type") as err:
        aio.decode(aio.encode(_tone(), sr=SR), filename=name)
    assert "wav, flac, ogg, mp3, m4a, aac" in str(err.value)
    assert not isinstance(err.value, LimitError)


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3", "ogg"])
@pytest.mark.parametrize("keep", [0.5, 0.02])
def test_truncated_files_fail_cleanly_or_keep_the_valid_part(fmt, keep):
    full = aio.encode(_tone(seconds=2.0), sr=SR, fmt=fmt)
    cut = full[: max(8, int(len(full) * keep))]
    try:
        y = aio.decode(cut, filename=f"cut.{fmt}")
    except AudioDecodeError as exc:
        assert "cut." in str(exc)
    else:
        assert y.dtype == np.float32 and y.shape[0] == 2
        assert 0 < y.shape[1] <= 2 * SR + 0.05 * SR
        assert np.isfinite(y).all()


def test_truncated_wav_header_only():
    data = aio.encode(_tone(), sr=SR)[:30]
    with pytest.raises(AudioDecodeError, match=r"cut\.wav"):
        aio.decode(data, filename="cut.wav")


def test_flac_declaring_hours_is_rejected_before_decoding():
    data = _flac_declaring(SR * 3 * 3600)  # 3 hours declared in a ~1 KB file
    assert len(data) < 20_000
    info = aio.probe(data, filename="silence.flac")
    assert info.duration_s == pytest.approx(3 * 3600)
    with pytest.raises(LimitError, match=r"is 3\.0 h long; the limit is 10 min$"):
        aio.decode(data, filename="silence.flac")


def test_flac_declaring_gigabytes_is_rejected_by_decoded_size():
    data = _flac_declaring(SR * 3 * 3600)
    limits = aio.AudioLimits(max_duration_s=24 * 3600.0)  # duration allowed: the memory check must catch it
    with pytest.raises(LimitError, match=r"would decode to \d+\.\d+ GB of samples; the limit is 1\.50 GB"):
        aio.decode(data, filename="silence.flac", limits=limits)


def test_real_long_silent_flac_is_rejected(tmp_path):
    path = tmp_path / "long.flac"
    with sf.SoundFile(path, "w", samplerate=8000, channels=1, format="FLAC", subtype="PCM_16") as f:
        block = np.zeros(8000 * 60, np.int16)
        for _ in range(11):  # 11 minutes of silence, written in blocks
            f.write(block)
    data = path.read_bytes()
    assert len(data) < 1_000_000
    with pytest.raises(LimitError, match=r"is 11 min long; the limit is 10 min$"):
        aio.decode(data, filename="long.flac")


def test_wav_declaring_1024_channels():
    with pytest.raises(LimitError, match="has 1024 channels; between 1 and 8 are supported"):
        aio.decode(_riff(channels=1024, data_bytes=2048 * 4), filename="many.wav")


@pytest.mark.parametrize(("rate", "shown"), [(1, "1 Hz"), (2_000_000_000, "2000000000 Hz")])
def test_wav_with_absurd_sample_rate(rate, shown):
    with pytest.raises(LimitError, match=f"sample rate of {shown}; supported rates are 8000-192000 Hz"):
        aio.decode(_riff(rate=rate), filename="rate.wav")


def test_oversize_upload():
    data = aio.encode(_tone(seconds=1.0), sr=SR)
    limits = aio.AudioLimits(max_bytes=100_000)
    with pytest.raises(LimitError, match=r"is 172\.3 KB; the upload limit is 97\.7 KB: save it as FLAC"):
        aio.decode(data, filename="big.wav", limits=limits)
    flac = aio.encode(_tone(seconds=1.0), sr=SR, fmt="flac")
    with pytest.raises(LimitError, match=r"the upload limit is 1000 bytes$"):  # no hint: already compressed
        aio.decode(flac, filename="big.flac", limits=aio.AudioLimits(max_bytes=1000))


def test_library_tracks_over_the_upload_limit_still_decode(monkeypatch):
    """A result the app saved as WAV may be bigger than the upload limit (10 minutes: 106 MB against 100):
    reading it back from the library lifts only the byte limit."""
    monkeypatch.setenv("BEATTOK_MAX_UPLOAD_MB", "0.1")
    monkeypatch.setenv("BEATTOK_MAX_DURATION_S", "2")
    data = aio.encode(_tone(seconds=1.0), sr=SR)
    with pytest.raises(LimitError, match="upload limit"):
        aio.decode(data, filename="saved.wav", limits=aio.AudioLimits.from_settings())
    limits = aio.AudioLimits.for_library(len(data))
    assert limits.max_bytes == len(data) and limits.max_duration_s == 2.0
    assert aio.decode(data, filename="saved.wav", limits=limits).shape == (2, SR)
    assert aio.AudioLimits.for_library(10).max_bytes == int(0.1 * 1024 * 1024)  # never lowered
    long = aio.encode(_tone(seconds=3.5), sr=SR)
    with pytest.raises(LimitError, match=r"limit is 2\.0 s"):  # the duration limit still holds
        aio.decode(long, filename="long.wav", limits=aio.AudioLimits.for_library(len(long)))


def test_oversize_file_on_disk_is_not_read(tmp_path):
    p = tmp_path / "big.wav"
    p.write_bytes(aio.encode(_tone(seconds=1.0), sr=SR))
    with pytest.raises(LimitError, match="upload limit"):
        aio.load(p, limits=aio.AudioLimits(max_bytes=1000))


def test_too_long():
    data = aio.encode(_tone(seconds=3.0), sr=SR, fmt="flac")
    with pytest.raises(LimitError, match=r"is 3\.0 s long; the limit is 1\.0 s"):
        aio.decode(data, filename="long.flac", limits=aio.AudioLimits(max_duration_s=1.0))


def test_a_second_of_slack_and_over_it_the_length_never_reads_as_the_limit_itself():
    limits = aio.AudioLimits(max_duration_s=600.0)
    # a "10:00" song padded by its encoder still fits
    padded = aio.encode(_tone(seconds=600.4, sr=8000, channels=1), sr=8000, fmt="flac")
    assert aio.decode(padded, filename="song.flac", sr=8000, limits=limits).shape[1] == round(600.4 * 8000)
    # past the slack: "10 min 2 s", never "10.0 min", the limit itself
    data = aio.encode(_tone(seconds=601.2, sr=8000, channels=1), sr=8000, fmt="flac")
    with pytest.raises(LimitError, match=r"is 10 min 2 s long; the limit is 10 min$"):
        aio.decode(data, filename="song.flac", sr=8000, limits=limits)


@pytest.mark.parametrize(
    ("seconds", "round_up", "text"),
    [
        (42.46, False, "42.5 s"),
        (600.0, False, "10 min"),
        (600.2, False, "10 min"),
        (600.2, True, "10 min 1 s"),
        (754.0, False, "12 min 34 s"),
        (3 * 3600.0, False, "3.0 h"),
    ],
)
def test_format_duration(seconds, round_up, text):
    assert aio.format_duration(seconds, round_up=round_up) == text


def test_nan_samples_in_float_wav():
    x = _tone().T.copy()
    x[100, 0] = np.nan
    buf = io.BytesIO()
    sf.write(buf, x, SR, format="WAV", subtype="FLOAT")
    with pytest.raises(AudioDecodeError, match="NaN or infinity"):
        aio.decode(buf.getvalue(), filename="nan.wav")


def test_garbage_after_id3_tag():
    tag = b"ID3\x03\x00\x00\x00\x00\x00\x20" + bytes(32)
    data = tag + b"definitely not an mpeg stream " * 50
    with pytest.raises(AudioDecodeError, match=r"bad\.mp3"):
        aio.decode(data, filename="bad.mp3")


def test_garbage_m4a_with_ftyp_box():
    data = b"\x00\x00\x00\x18ftypM4A \x00\x00\x02\x00isomM4A " + b"\x00garbage" * 100
    with pytest.raises(AudioDecodeError, match=r"fake\.m4a"):
        aio.decode(data, filename="fake.m4a")


def test_target_rate_is_validated():
    with pytest.raises(InputError, match="target sample rate"):
        aio.decode(aio.encode(_tone(), sr=SR), filename="a.wav", sr=5)


def test_every_failure_is_a_studio_error():
    cases = [
        (b"", "a.wav"),
        (b"RIFF\x00\x00\x00\x00WAVEjunk", "a.wav"),
        (b"fLaC" + bytes(3), "a.flac"),
        (b"OggS" + bytes(100), "a.ogg"),
        (b"\xff\xfb\x90\x44" + bytes(200), "a.mp3"),
        (b"\xff\xf1" + bytes(300), "a.aac"),
    ]
    for data, name in cases:
        with pytest.raises(StudioError):
            aio.decode(data, filename=name)
