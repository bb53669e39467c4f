"""Analysis on synthetic signals with a known tempo, key, chords and bar structure."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.audio.analysis import (
    Analysis,
    analyze,
    correct_tempo,
    quick_analysis,
    tempo_from_taps,
)
from core.errors import InputError

SR = 22050  # analysis runs at 22050 Hz: tests stay fast

NOTE = {"C": 0, "C#": 1, "D": 2, "Eb": 3, "E": 4, "F": 5, "F#": 6, "G": 7, "Ab": 8, "A": 9, "Bb": 10, "B": 11}


def _click(n, sr, amp=0.5, low=False):
    t = np.arange(int(0.04 * sr)) / sr
    rng = np.random.default_rng(n)
    burst = rng.standard_normal(t.size) * np.exp(-t * 120)
    if low:
        burst = burst * 0.3 + np.sin(2 * np.pi * 60 * t) * np.exp(-t * 40) * 2
    return amp * burst


def _pulse_track(beat_times, seconds, sr=SR, accents=()):
    y = np.zeros(int(seconds * sr))
    for k, bt in enumerate(beat_times):
        i = int(bt * sr)
        c = _click(k, sr, amp=0.6 if k in accents else 0.35, low=k in accents)
        j = min(y.size, i + c.size)
        if i < y.size:
            y[i:j] += c[: j - i]
    return y


def _harmonic(freq, seconds, sr=SR, amp=0.1):
    t = np.arange(int(seconds * sr)) / sr
    env = np.exp(-t * 1.5) * 0.8 + 0.2
    return amp * env * sum(np.sin(2 * np.pi * freq * k * t) / k for k in range(1, 6))


def _chord(root, quality, seconds, sr=SR):
    r = NOTE[root]
    third = 4 if quality == "maj" else 3
    midi = [48 + r, 60 + r, 60 + r + third, 60 + r + 7]  # bass root + close triad
    return sum(_harmonic(440.0 * 2 ** ((m - 69) / 12), seconds, sr) for m in midi)


def _song(progression, bpm=120.0, beats_per_chord=4, bars_repeat=3, sr=SR, accents=True):
    """Chords (one per bar) over a click track with accented downbeats."""
    beat = 60.0 / bpm
    seq = progression * bars_repeat
    seconds = len(seq) * beats_per_chord * beat
    y = np.concatenate([_chord(r, q, beats_per_chord * beat, sr) for r, q in seq])
    n = y.size
    beats = np.arange(0, seconds - 1e-6, beat)
    accent_idx = set(range(0, beats.size, 4)) if accents else set()
    y = y + _pulse_track(beats, seconds, sr, accents=accent_idx)[:n]
    return np.tile(y.astype(np.float32), (2, 1)), beats, seq


def _fmeasure(ref, est, window=0.07):
    ref, est = np.asarray(ref), np.asarray(est)
    hits = sum(np.any(np.abs(est - r) <= window) for r in ref)
    if hits == 0:
        return 0.0
    p, r = hits / max(est.size, 1), hits / ref.size
    return 2 * p * r / (p + r)


@pytest.mark.parametrize("bpm", [90.0, 120.0, 150.0])
def test_click_track_tempo(bpm, clicks):
    y = clicks(bpm=bpm, seconds=16.0, sr=SR)
    q = quick_analysis(y, sr=SR)
    assert q.tempo_bpm == pytest.approx(bpm, rel=0.03)
    assert np.median(np.diff(q.beats)) == pytest.approx(60.0 / bpm, rel=0.03)
    truth = np.arange(0, 16.0, 60.0 / bpm)
    assert _fmeasure(truth[2:-2], q.beats) > 0.9


def test_full_analysis_of_click_track_at_44100(clicks):
    y = clicks(bpm=120.0, seconds=12.0, sr=44100)
    a = analyze(y, sr=44100)
    assert a.tempo_bpm == pytest.approx(120.0, rel=0.03)
    assert 0.3 < a.tempo_confidence <= 1.0
    truth = np.arange(0, 12.0, 0.5)
    assert _fmeasure(truth[2:-2], a.beats) > 0.9
    assert _fmeasure(truth, a.onsets) > 0.9  # every click is an onset
    assert json.loads(json.dumps(a.to_dict()))["tempo_bpm"] == pytest.approx(120.0, rel=0.03)


def test_beats_follow_tempo_drift():
    # tempo glides from 100 to 124 BPM over ~25 s
    times, t, bpm = [], 0.0, 100.0
    while t < 25.0:
        times.append(t)
        bpm = 100.0 + 24.0 * t / 25.0
        t += 60.0 / bpm
    times = np.array(times)
    y = np.tile(_pulse_track(times, 26.0).astype(np.float32), (2, 1))
    a = analyze(y, sr=SR)
    inner = times[(times > 3.0) & (times < 23.0)]
    est = np.array(a.beats)
    assert _fmeasure(inner, est[(est > 2.9) & (est < 23.1)]) > 0.9


@pytest.mark.parametrize(
    ("progression", "key"),
    [
        ([("C", "maj"), ("F", "maj"), ("G", "maj"), ("C", "maj")], "C major"),
        ([("A", "min"), ("D", "min"), ("E", "maj"), ("A", "min")], "A minor"),
    ],
)
def test_key_of_chord_progressions(progression, key):
    y, _, _ = _song(progression, accents=False)
    assert quick_analysis(y, sr=SR).key == key
    a = analyze(y, sr=SR)
    assert a.key == key
    assert 0.5 < a.key_confidence <= 1.0


def test_chords_and_downbeats():
    prog = [("C", "maj"), ("A", "min"), ("F", "maj"), ("G", "maj")]
    y, beats, seq = _song(prog, bpm=120.0, bars_repeat=3)
    a = analyze(y, sr=SR)
    # chord labels, frame-wise at 10 Hz, away from the edges
    bar = 2.0
    correct = total = 0
    for t in np.arange(0.5, len(seq) * bar - 0.5, 0.1):
        root, q = seq[int(t // bar)]
        label = next((lab for s, e, lab in a.chords if s <= t < e), "N")
        total += 1
        correct += label == f"{root}:{q}"
    assert correct / total > 0.85
    assert all(lab == "N" or lab.split(":")[1] in ("maj", "min") for _, _, lab in a.chords)
    # downbeats on the accented bar starts
    truth_down = beats[::4]
    assert _fmeasure(truth_down[1:], a.downbeats) > 0.8
    assert set(np.round(a.downbeats, 3)) <= set(np.round(a.beats, 3))


def test_rhythm_steps_reflect_the_pattern():
    bpm, seconds = 120.0, 16.0
    beat = 60.0 / bpm
    quarter = np.arange(0, seconds, beat)
    eighth_off = quarter + beat / 2
    y = _pulse_track(quarter, seconds, accents=set(range(0, quarter.size, 4)))
    y = y + 0.4 * _pulse_track(eighth_off, seconds)
    a = analyze(np.tile(y.astype(np.float32), (2, 1)), sr=SR)
    steps = a.rhythm_steps
    assert steps.shape == (16,) and steps.max() == pytest.approx(1.0)
    on_beat, off_eighth = steps[[0, 4, 8, 12]], steps[[2, 6, 10, 14]]
    sixteenths = steps[1::2]
    assert off_eighth.min() > 2 * sixteenths.max()
    assert on_beat.min() > off_eighth.max() * 0.9
    assert steps[0] == pytest.approx(steps.max(), rel=0.3)  # the accented downbeat is strongest-ish
    grid = a.sixteenth_grid()
    assert np.median(np.diff(grid)) == pytest.approx(beat / 4, rel=0.03)


@pytest.mark.parametrize(
    "signal",
    [
        np.zeros((2, SR * 5), np.float32),
        np.zeros((2, 100), np.float32),
        np.zeros((2, 0), np.float32),
        (np.random.default_rng(0).standard_normal((2, SR // 2)) * 0.1).astype(np.float32),
    ],
    ids=["silence", "tiny", "empty", "half-second"],
)
def test_silent_or_short_input(signal):
    q = quick_analysis(signal, sr=SR)
    assert (q.tempo_bpm, q.key, q.beats) == (None, None, ())
    a = analyze(signal, sr=SR)
    assert (a.tempo_bpm, a.key, a.beats, a.chords, a.downbeats) == (None, None, (), (), ())
    assert not a.rhythm_steps.any()


def test_noise_does_not_crash():
    y = (np.random.default_rng(1).standard_normal((2, SR * 6)) * 0.1).astype(np.float32)
    a = analyze(y, sr=SR)
    assert a.tempo_bpm is None or 30 <= a.tempo_bpm <= 300
    assert a.key is None or a.key.split()[1] in ("major", "minor")


def test_progress_is_reported(clicks):
    seen = []
    analyze(clicks(bpm=100.0, seconds=6.0, sr=SR), sr=SR, progress=lambda f, m: seen.append(f))
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)


def test_analysis_validates_input():
    with pytest.raises(InputError, match="floating point"):
        analyze(np.zeros((2, 100), np.int16), sr=SR)
    with pytest.raises(InputError, match="sample rate"):
        quick_analysis(np.zeros((2, 100), np.float32), sr=3)


def _grid(bpm=60.0, n=17):
    beats = tuple(float(t) for t in np.arange(n) * 60.0 / bpm)
    return Analysis(
        duration_s=n * 60.0 / bpm,
        loudness_lufs=-14.0,
        tempo_bpm=bpm,
        tempo_confidence=0.9,
        beats=beats,
        downbeats=beats[1::4],
        onsets=(),
        rhythm_steps=np.zeros(16, np.float32),
        key="C major",
        key_confidence=0.8,
        chords=(),
    )


def test_correct_tempo_double_and_halve():
    a = _grid()
    d = correct_tempo(a, factor=2.0)
    assert d.tempo_bpm == 120.0
    assert len(d.beats) == 2 * len(a.beats)
    assert np.allclose(np.diff(d.beats), 0.5)
    assert d.downbeats[0] == a.downbeats[0]
    assert np.allclose(np.diff(d.downbeats), 2.0)  # a bar of the doubled grid is 4 half-beats
    h = correct_tempo(a, factor=0.5)
    assert h.tempo_bpm == 30.0
    assert np.allclose(np.diff(h.beats), 2.0)
    assert a.downbeats[0] in h.beats  # halving keeps the downbeat phase
    with pytest.raises(InputError, match=r"0\.5 or 2\.0"):
        correct_tempo(a, factor=3.0)


def test_tempo_from_taps():
    assert tempo_from_taps([0.0, 0.5, 1.0, 1.5, 2.0]) == pytest.approx(120.0)
    rng = np.random.default_rng(0)
    taps = np.arange(12) * 60.0 / 93.0 + rng.normal(0, 0.01, 12)
    assert tempo_from_taps(taps) == pytest.approx(93.0, rel=0.02)
    missed = np.delete(np.arange(10) * 0.6, 4)  # one tap missed
    assert tempo_from_taps(missed) == pytest.approx(100.0, rel=0.01)
    with pytest.raises(InputError, match="at least 3"):
        tempo_from_taps([0.0, 0.5])
    with pytest.raises(InputError, match="increasing"):
        tempo_from_taps([0.0, 0.5, 0.4])
    with pytest.raises(InputError, match="outside"):
        tempo_from_taps([0.0, 10.0, 20.0])


def test_cli_analyze_json(tmp_path, capsys, clicks):
    from core.__main__ import main
    from core.audio.io import encode

    path = tmp_path / "clicks.wav"
    path.write_bytes(encode(clicks(bpm=120.0, seconds=10.0, sr=48000, channels=1), sr=48000))
    assert main(["analyze", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    expected = {"duration_s", "sample_rate", "channels", "loudness_lufs", "tempo_bpm", "key", "beats"}
    assert expected | {"downbeats", "chords"} <= set(out)
    assert (out["sample_rate"], out["channels"]) == (48000, 1)
    assert out["duration_s"] == pytest.approx(10.0, abs=0.01)
    assert out["tempo_bpm"] == pytest.approx(120.0, rel=0.03)
    assert len(out["downbeats"]) >= 3
    assert out["tempo_alternatives"] == []  # isolated clicks: the click rate, no other level weighed


def test_cli_reads_local_files_over_the_upload_limit(tmp_path, capsys, monkeypatch, clicks):
    """The upload limit guards the server; a file on the user's own disk is bounded by duration and
    decoded size instead."""
    from core.__main__ import main
    from core.audio.io import AudioLimits, encode

    monkeypatch.setenv("BEATTOK_MAX_UPLOAD_MB", "0.1")
    path = tmp_path / "clicks.wav"
    path.write_bytes(encode(clicks(bpm=120.0, seconds=6.0, sr=44100, channels=2), sr=44100))
    assert path.stat().st_size > 0.1 * 1024 * 1024
    assert main(["analyze", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tempo_bpm"] == pytest.approx(120.0, rel=0.03)
    monkeypatch.setenv("BEATTOK_MAX_DURATION_S", "4")  # 1 s of slack: a 6 s file is over it
    assert main(["analyze", str(path)]) == 2
    assert "the limit is 4.0 s" in capsys.readouterr().err
    limits = AudioLimits.for_local_file()
    assert limits.max_bytes == limits.max_decoded_bytes and limits.max_duration_s == 4.0


def test_cli_analyze_summary_and_errors(tmp_path, capsys, clicks):
    from core.__main__ import main
    from core.audio.io import encode

    path = tmp_path / "c.flac"
    path.write_bytes(encode(clicks(bpm=100.0, seconds=6.0, sr=44100), sr=44100, fmt="flac"))
    assert main(["analyze", str(path), "--quick"]) == 0
    text = capsys.readouterr().out
    assert "tempo" in text and "BPM" in text
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    assert main(["analyze", str(bad)]) == 2
    assert "unsupported file type" in capsys.readouterr().err


def _busy_signal(seconds: float, sr: int = SR) -> np.ndarray:
    """A detuned tone with a wobbling level plus noise: something for spectrograms to differ on."""
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(3)
    y = 0.2 * np.sin(2 * np.pi * 447.0 * t) * (1 + np.sin(2 * np.pi * 1.7 * t)) + 0.05 * rng.standard_normal(
        t.size
    )
    return y.astype(np.float32)


def test_onset_spectrogram_in_blocks_equals_librosas_in_one_piece():
    import librosa

    from core.audio import analysis

    mono = _busy_signal(130.0)  # three blocks of frames, the last one partial
    ref = librosa.feature.melspectrogram(
        y=mono, sr=SR, hop_length=analysis.ONSET_HOP, n_fft=2048, n_mels=96, fmax=SR / 2
    )
    got = analysis._mel_power(mono)
    assert got.shape == ref.shape and got.dtype == np.float32
    assert np.abs(got - ref).max() <= 1e-5 * ref.max()


def test_tuning_is_estimated_on_the_middle_of_a_long_song(monkeypatch):
    import librosa

    from core.audio import analysis

    mono = _busy_signal(12.0)
    # a song within the window: librosa's own estimate, so chroma is what librosa computes unasked
    assert analysis._tuning(mono, bins_per_octave=36) == librosa.estimate_tuning(
        y=mono, sr=SR, bins_per_octave=36
    )
    chroma = librosa.feature.chroma_cqt(
        y=mono, sr=SR, hop_length=analysis.CHROMA_HOP, fmin=librosa.note_to_hz("C2"), n_octaves=5, norm=None
    )
    assert np.array_equal(analysis._chroma(mono), chroma.astype(np.float32))
    # a longer song: the middle window only (its full-length spectrogram would be 730 MB at 10 minutes)
    monkeypatch.setattr(analysis, "TUNING_WINDOW_S", 4.0)
    middle = mono[4 * SR : 8 * SR]
    expected = librosa.estimate_tuning(y=middle, sr=SR, bins_per_octave=12)
    assert analysis._tuning(mono, bins_per_octave=12) == expected
