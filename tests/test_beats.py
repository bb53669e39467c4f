"""Add beats (core.beats and ``python -m core add-beats``) on songs made in code with a known grid and key.

The test song: a I-vi-IV-V progression in C major (one chord per bar, harmonic tones re-struck on every
beat) over a click, at 100 bpm unless told otherwise; its true beat times and chords are known.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.errors import InputError, StudioError

SR = 44100
PROG = [
    ("C:maj", (48, 52, 55, 60)),
    ("A:min", (45, 52, 57, 60)),
    ("F:maj", (41, 53, 57, 60)),
    ("G:maj", (43, 55, 59, 62)),
]


def make_song(bpm: float = 100.0, bars: int = 12, drift: float = 0.0, start: float = 0.5):
    """``(y, beats, chords)``: the test song, its true beat times (s) and chords ``(start, end, label)``.

    ``drift`` makes the beat period change linearly from ``1 - drift`` to ``1 + drift`` times ``60/bpm``.
    """
    nbeats = bars * 4
    periods = 60.0 / bpm * (1.0 + drift * np.linspace(-1.0, 1.0, nbeats))
    beats = start + np.concatenate([[0.0], np.cumsum(periods[:-1])])
    end = beats[-1] + periods[-1]
    n = int((end + 1.0) * SR)
    y = np.zeros(n, np.float64)
    chords = []
    for b in range(bars):
        label, notes = PROG[b % 4]
        s = beats[4 * b]
        e = beats[4 * b + 4] if 4 * b + 4 < nbeats else end
        chords.append((float(s), float(e), label))
        for k in range(4):
            t0 = beats[4 * b + k]
            i0, i1 = int(t0 * SR), int(e * SR)
            tt = np.arange(i1 - i0) / SR
            env = np.exp(-tt * (1.5 if k == 0 else 3.0)) * (1 - np.exp(-tt * 200))
            for p in notes if k == 0 else notes[1:]:
                f = 440.0 * 2 ** ((p - 69) / 12)
                for h in range(1, 5 if k == 0 else 2):
                    y[i0:i1] += (0.12 if k == 0 else 0.05) / h * env * np.sin(2 * np.pi * f * h * tt)
    rng = np.random.default_rng(0)
    burst = rng.standard_normal(int(0.02 * SR)) * np.exp(-np.linspace(0, 8, int(0.02 * SR)))
    for i, t in enumerate(beats):
        j = int(t * SR)
        y[j : j + burst.size] += (0.35 if i % 4 == 0 else 0.2) * burst
    y = 0.5 * y / np.abs(y).max()
    return np.tile(y.astype(np.float32), (2, 1)), beats, chords


def f_measure(ref, est, window: float = 0.07) -> float:
    """Beat F-measure (one-to-one matches within ``window`` s)."""
    ref, est = np.sort(np.asarray(ref)), np.sort(np.asarray(est))
    i = j = hits = 0
    while i < ref.size and j < est.size:
        d = est[j] - ref[i]
        if abs(d) <= window:
            hits, i, j = hits + 1, i + 1, j + 1
        elif d < 0:
            j += 1
        else:
            i += 1
    return 0.0 if hits == 0 else 2 * hits / (ref.size + est.size)


def chord_tone_share(notes, beats, chords) -> tuple[float, int]:
    """Share of bass notes starting on a strong beat (1 or 3 of the bar) whose pitch is in the chord."""
    from core.music.theory import parse_chord

    ok = total = 0
    for n in notes:
        k = int(np.argmin(np.abs(beats - n["start"])))
        if abs(beats[k] - n["start"]) > 0.06 or k % 2:
            continue
        label = [c[2] for c in chords if c[0] - 0.06 <= n["start"]][-1]  # notes may lead a change a little
        total += 1
        ok += n["pitch"] % 12 in parse_chord(label).pitch_classes
    return ok / max(total, 1), total


@pytest.fixture(scope="module")
def samplers():
    from core.beats import load_beat_samplers

    return load_beat_samplers()


def test_beat_samplers_load_two_checkpoints_and_the_arranger_shares_them(samplers, monkeypatch):
    from core import loaders
    from core.music.arrange import load_samplers

    calls = []
    for name in ("drums", "bass", "harmony", "melody"):
        real = getattr(loaders, f"load_{name}")
        monkeypatch.setattr(
            loaders, f"load_{name}", lambda real=real, name=name: calls.append(name) or real()
        )
    from core.beats import load_beat_samplers

    small = load_beat_samplers()
    assert sorted(calls) == ["bass", "drums"]
    calls.clear()
    full = load_samplers()
    assert sorted(calls) == ["bass", "drums", "harmony", "melody"]
    assert full.drum_styles == small.drum_styles == samplers.drum_styles and "rock" in small.drum_styles
    assert full.drum_pitches == small.drum_pitches and len(small.drum_pitches) == 9
    a = full.drums(bars=2, style=small.drum_styles[0], seed=4)
    b = small.drums(bars=2, style=small.drum_styles[0], seed=4)
    np.testing.assert_array_equal(np.asarray(a.hits), np.asarray(b.hits))
    assert np.asarray(a.hits).shape[1] == 9 and np.asarray(a.hits).any()


@pytest.fixture(scope="module")
def song():
    return make_song()


@pytest.fixture(scope="module")
def result(song, samplers):
    from core.beats import add_beats

    return add_beats(song[0], sr=SR, seed=0, samplers=samplers)


def test_stems_aligned_same_length_and_original_bit_identical(song, result):
    y = song[0]
    assert set(result.stems) == {"original", "drums", "bass"}
    assert result.sr == SR
    for name, stem in result.stems.items():
        assert stem.shape == y.shape, name
        assert stem.dtype == np.float32, name
    assert result.mix.shape == y.shape and result.mix.dtype == np.float32
    assert np.array_equal(result.stems["original"], y)
    assert result.stems["original"] is not y
    for name in ("drums", "bass"):
        assert np.sqrt(np.mean(result.stems[name] ** 2)) > 1e-3, f"{name} stem is silent"


def test_analysis_finds_the_known_tempo_key_and_chords(song, result):
    a = result.analysis
    assert abs(a.tempo_bpm - 100.0) <= 4.0
    assert a.key == "C major"
    assert result.confidence > 0.3 and not result.warnings
    labels = {lab for _, _, lab in a.chords}
    assert {"C:maj", "A:min", "F:maj", "G:maj"} <= labels
    # downbeats on bar starts (every 4th true beat, within 70 ms)
    assert f_measure(song[1][::4], a.downbeats) > 0.8


def test_drum_onsets_land_on_the_true_beat_grid(song, samplers):
    import librosa

    from core.beats import add_beats

    y, beats, _ = song
    r = add_beats(y, sr=SR, bass=False, complexity=0.3, seed=1, samplers=samplers)
    onsets = librosa.onset.onset_detect(y=r.stems["drums"].mean(axis=0), sr=SR, units="time")
    assert onsets.size >= beats.size // 2
    assert f_measure(beats, onsets) > 0.7
    # the drum notes themselves sit on the 16th grid of the true beats
    grid = np.interp(np.arange(beats.size * 4) / 4, np.arange(beats.size), beats)
    starts = np.array([n["start"] for n in r.drum_notes])
    dev = np.min(np.abs(starts[:, None] - grid[None, :]), axis=1)
    assert np.mean(dev < 0.04) > 0.9
    assert not r.bass_notes and np.array_equal(r.stems["bass"], np.zeros_like(y))


def test_bass_plays_chord_tones_on_strong_beats(song, result):
    share, total = chord_tone_share(result.bass_notes, song[1], song[2])
    assert total >= 6
    assert share >= 0.8
    pitches = [n["pitch"] for n in result.bass_notes]
    assert min(pitches) >= 28 and max(pitches) <= 55


def test_mix_is_mastered(result):
    from core.audio.loudness import integrated_lufs, true_peak_dbfs

    assert abs(integrated_lufs(result.mix, sr=SR) + 14.0) <= 1.0
    assert true_peak_dbfs(result.mix, sr=SR) <= -1.0 + 0.05


def test_same_seed_same_output_other_seed_differs(song, result, samplers):
    from core.beats import add_beats

    again = add_beats(song[0], sr=SR, seed=0, samplers=samplers, analysis=result.analysis)
    assert np.array_equal(again.mix, result.mix)
    assert again.drum_notes == result.drum_notes
    other = add_beats(song[0], sr=SR, seed=5, samplers=samplers, analysis=result.analysis)
    assert other.drum_notes != result.drum_notes


def test_grid_warps_with_tempo_drift(samplers):
    """Beats that slow down from 92 to 108 bpm-equivalents: the notes follow the drifting beats."""
    from core.beats import add_beats

    y, beats, _ = make_song(bars=10, drift=0.08)
    r = add_beats(y, sr=SR, bass=False, humanize=0.0, complexity=0.3, seed=2, samplers=samplers)
    grid = np.interp(np.arange(beats.size * 4) / 4, np.arange(beats.size), beats)
    starts = np.array([n["start"] for n in r.drum_notes])
    dev = np.min(np.abs(starts[:, None] - grid[None, :]), axis=1)
    assert np.mean(dev < 0.04) > 0.9
    # a steady grid at the mean tempo would be off by far more at the ends
    steady = beats[0] + np.arange(beats.size * 4) * np.mean(np.diff(beats)) / 4
    dev_steady = np.min(np.abs(starts[:, None] - steady[None, :]), axis=1)
    assert np.mean(dev_steady < 0.04) < np.mean(dev < 0.04)


def test_long_songs_are_drummed_in_primed_chunks(samplers, monkeypatch):
    """Songs longer than one sampling call (256 bars, ~8.5 min at 120 bpm) continue the groove seamlessly."""
    import core.beats as beats

    monkeypatch.setattr(beats, "_MAX_BARS_PER_CALL", 2)
    tap = np.tile([1.0, 0, 0.5, 0] * 4, 5)
    kw = dict(bars=5, style="rock", seed=4, temperature=0.8, tap=tap, density=1.0)
    hits, vel, off = beats._sample_drums(samplers, **kw)
    assert hits.shape == vel.shape == off.shape == (80, 9)
    assert all(hits[k * 32 : (k + 1) * 32].sum() >= 4 for k in range(3))  # every chunk plays
    again = beats._sample_drums(samplers, **kw)
    assert np.array_equal(hits, again[0]) and np.array_equal(vel, again[1])


def test_ducking_dips_the_bass_under_each_kick():
    from core.beats import DUCK_DB, _duck_gain

    g = _duck_gain(np.array([1.0, 3.0]), n=SR * 4, sr=SR, depth_db=DUCK_DB)
    db = 20 * np.log10(g)
    assert g.shape == (SR * 4,)
    assert abs(db[int(1.005 * SR)] + DUCK_DB) < 0.5
    assert db[int(0.5 * SR)] > -0.01 and db[int(2.5 * SR)] > -0.5
    assert abs(db[int(3.005 * SR)] + DUCK_DB) < 0.5
    # linear between the 64-sample control points, to the last sample of a length that is not a multiple
    n = SR * 4 + 37
    g = _duck_gain(np.array([1.0, 3.0]), n=n, sr=SR, depth_db=DUCK_DB)
    hop = 64
    ctl = g[::hop].astype(np.float64)  # every control point falls on a block start
    ref = np.interp(np.arange(n) / hop, np.arange(ctl.size), ctl)
    assert g.dtype == np.float32 and g.shape == (n,)
    assert np.abs(g[: ctl.size * hop - hop] - ref[: ctl.size * hop - hop]).max() < 1e-6


def test_tempo_and_key_corrections(song, result, samplers):
    from core.audio.analysis import tempo_from_taps
    from core.beats import add_beats, apply_corrections

    half = apply_corrections(result.analysis, tempo_override=50.0)
    assert abs(half.tempo_bpm - 50.0) < 2.0
    assert len(half.beats) == pytest.approx(len(result.analysis.beats) / 2, abs=1)
    taps = song[1][4:12]
    tapped = apply_corrections(result.analysis, tempo_override=tempo_from_taps(taps))
    assert abs(tapped.tempo_bpm - result.analysis.tempo_bpm) < 4.0
    steady = apply_corrections(result.analysis, tempo_override=75.0)  # not a simple ratio: steady grid
    assert np.allclose(np.diff(steady.beats), 0.8)
    keyed = add_beats(song[0], sr=SR, key_override="A minor", samplers=samplers, analysis=result.analysis)
    assert keyed.analysis.key == "A minor" and keyed.analysis.key_confidence == 1.0
    with pytest.raises(InputError, match="30"):
        apply_corrections(result.analysis, tempo_override=500.0)
    with pytest.raises(StudioError):
        apply_corrections(result.analysis, key_override="H minor")


def test_too_long_song_is_refused_before_any_work(monkeypatch, samplers):
    from core.beats import add_beats
    from core.errors import LimitError

    monkeypatch.setenv("BEATTOK_MAX_DURATION_S", "5")
    with pytest.raises(LimitError, match=r"the song is 8\.0 s long; the limit is 5\.0 s$"):
        add_beats(np.full((2, SR * 8), 0.1, np.float32), sr=SR, samplers=samplers)


def test_bad_inputs_give_clear_messages_or_low_confidence(samplers):
    from core.beats import add_beats

    with pytest.raises(InputError, match="silent"):
        add_beats(np.zeros((2, SR * 6), np.float32), sr=SR, samplers=samplers)
    with pytest.raises(InputError, match="at least 4 s"):
        add_beats(make_song(bars=1)[0][:, : 2 * SR], sr=SR, samplers=samplers)
    y = make_song(bars=4)[0]
    for kwargs, word in (
        ({"complexity": 2.0}, "complexity"),
        ({"drums": False, "bass": False}, "drums, bass or both"),
        ({"style": "polka"}, "polka"),
        ({"drums_db": 40.0}, "drums_db"),
    ):
        with pytest.raises(InputError, match=word):
            add_beats(y, sr=SR, samplers=samplers, **kwargs)
    from core.audio.analysis import analyze

    with pytest.raises(InputError, match="analysis given"):
        add_beats(y[:, : SR * 5], sr=SR, samplers=samplers, analysis=analyze(y, sr=SR))
    bad = y.copy()
    bad[0, 100] = np.nan
    with pytest.raises(InputError, match="NaN"):
        add_beats(bad, sr=SR, samplers=samplers)
    noise = np.random.default_rng(3).uniform(-0.3, 0.3, (2, SR * 8)).astype(np.float32)
    try:
        r = add_beats(noise, sr=SR, samplers=samplers)
    except InputError as exc:
        assert "beat" in str(exc)
    else:
        assert r.confidence < 0.3 and any("No steady beat" in w for w in r.warnings)
        assert r.mix.shape == noise.shape


def test_cli_json_and_stems(tmp_path, song):
    import contextlib
    import io

    from core.__main__ import main
    from core.audio import io as aio

    src = tmp_path / "song.wav"
    src.write_bytes(aio.encode(song[0], sr=SR, fmt="wav"))
    out, stems = tmp_path / "out" / "mix.wav", tmp_path / "stems"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(
            ["add-beats", str(src), "--drums", "--bass", "--out", str(out), "--stems", str(stems), "--json"]
        )
    assert rc == 0
    info = json.loads(buf.getvalue())
    assert {"tempo_bpm", "beats", "downbeats", "key", "chords", "tempo_alternatives"} <= set(info)
    alts = info["tempo_alternatives"]
    assert all(set(a) == {"bpm", "probability"} and 0.0 <= a["probability"] <= 1.0 for a in alts)
    assert [a["probability"] for a in alts] == sorted((a["probability"] for a in alts), reverse=True)
    assert abs(info["tempo_bpm"] - 100.0) <= 4.0 and info["key"] == "C major"
    assert all(set(c) == {"start", "end", "label"} for c in info["chords"]) and info["chords"]
    assert all(isinstance(t, float) for t in info["beats"]) and set(info["downbeats"]) <= set(info["beats"])
    import soundfile as sf

    mix_info = sf.info(str(out))
    for name in ("original", "drums", "bass"):
        si = sf.info(str(stems / f"{name}.wav"))
        assert (si.samplerate, si.frames, si.channels) == (mix_info.samplerate, mix_info.frames, 2)
    assert mix_info.frames == song[0].shape[1]
    # a missing file and a bad output format: exit status 2 and a message, no traceback
    assert main(["add-beats", str(tmp_path / "nope.wav"), "--out", str(out)]) == 2
    assert main(["add-beats", str(src), "--out", str(tmp_path / "x.txt")]) == 2


def test_the_runner_up_tempo_is_offered_only_when_likely_enough():
    from dataclasses import replace

    from core.audio.analysis import Analysis
    from core.beats import OFFER_TEMPO_ALTERNATIVE, apply_corrections, offered_tempo_alternative

    base = Analysis(30.0, -14.0, 120.0, 0.8, (0.0, 0.5, 1.0, 1.5), (0.0,), (), np.zeros(16), None, 0.0, ())
    assert offered_tempo_alternative(base) is None  # no chooser, nothing to offer
    cases = [
        ((60.0, 0.3), (60.0, 0.3, "half time")),
        ((240.0, 0.45), (240.0, 0.45, "double time")),
        ((80.0, 0.25), (80.0, 0.25, "a 2/3 feel")),
        ((180.0, 0.21), (180.0, 0.21, "a 3/2 feel")),
        ((60.0, OFFER_TEMPO_ALTERNATIVE - 0.01), None),
    ]
    for alt, expected in cases:
        a = replace(base, tempo_alternatives=(alt, (999.0, 0.01)))
        assert offered_tempo_alternative(a) == expected
    # once the user sets the tempo, nothing else is offered
    a = replace(base, tempo_alternatives=((60.0, 0.4),))
    assert offered_tempo_alternative(apply_corrections(a, tempo_override=60.0)) is None
    assert offered_tempo_alternative(replace(a, tempo_bpm=None)) is None


def test_the_original_stem_is_the_input_itself_read_only_and_the_input_is_untouched(song, samplers):
    from core.beats import add_beats

    y = song[0].copy()
    before = y.copy()
    r = add_beats(y, sr=SR, samplers=samplers, seed=1)
    assert np.array_equal(y, before)  # nothing was written into the caller's array
    original = r.stems["original"]
    assert np.shares_memory(original, y) and not original.flags.writeable  # no 211 MB copy at 10 minutes
    for name in ("drums", "bass"):
        assert not np.shares_memory(r.stems[name], y) and not np.shares_memory(r.stems[name], r.mix)
    assert not np.shares_memory(r.mix, y)
