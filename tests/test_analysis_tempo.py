"""The trained tempo-octave chooser: octave choice on synthetic pop textures, checkpoint, training."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.audio.analysis import (
    OCTAVE_FEATURES,
    TempoChooser,
    _chroma,
    _global_tempo,
    _mono,
    _octave_candidates,
    _rhythm_features,
    analyze,
    load_tempo_chooser,
    tempo_chooser_path,
)
from core.errors import ModelError

SR = 22050
_PROGRESSION = ((0, False), (9, True), (5, False), (7, False))  # C Am F G


def _tone(midi: int, seconds: float, amp: float) -> np.ndarray:
    f = 440.0 * 2 ** ((midi - 69) / 12)
    t = np.arange(int(seconds * SR)) / SR
    env = np.exp(-t * 3.0) * np.minimum(1.0, t / 0.005)
    return amp * env * sum(np.sin(2 * np.pi * f * k * t) / k**1.5 for k in range(1, 6))


def _add(y: np.ndarray, seg: np.ndarray, start: float) -> None:
    i = int(start * SR)
    if i < y.size:
        j = min(y.size, i + seg.size)
        y[i:j] += seg[: j - i]


def pop_texture(
    bpm: float,
    *,
    beats_per_chord: int,
    notes_per_beat: int,
    beats_per_bass: int = 0,
    seconds: float = 40.0,
    seed: int = 0,
) -> np.ndarray:
    """Piano-like pop accompaniment without drums (C Am F G): a block chord with its bass at every chord
    change, a bass note every ``beats_per_bass`` beats (0: none), an arpeggio of ``notes_per_beat`` notes
    per beat and a melody note on every beat, over a faint noise floor (a recording's room and hiss: its
    onset envelope is not that of isolated clicks)."""
    rng = np.random.default_rng(seed)
    beat = 60.0 / bpm
    y = np.zeros(int(seconds * SR))
    for b in range(int(seconds / beat)):
        root, minor = _PROGRESSION[(b // beats_per_chord) % len(_PROGRESSION)]
        chord = [48 + root, 60 + root, 60 + root + (3 if minor else 4), 60 + root + 7]
        t0 = b * beat
        if b % beats_per_chord == 0:
            for m in chord:
                _add(y, _tone(m, beats_per_chord * beat, 0.08), t0)
        elif beats_per_bass and b % beats_per_bass == 0:
            _add(
                y, _tone(36 + root + (7 if (b // beats_per_bass) % 2 else 0), beats_per_bass * beat, 0.1), t0
            )
        for k in range(notes_per_beat):
            m = chord[1 + (b * notes_per_beat + k) % 3] + 12
            _add(
                y,
                _tone(m, 2 * beat / notes_per_beat, 0.07 if k == 0 else 0.05),
                t0 + k * beat / notes_per_beat,
            )
        _add(y, _tone(72 + (0, 2, 4, 5, 7, 9, 11)[rng.integers(7)], beat, 0.08), t0)
    y = 0.5 * y / np.abs(y).max() + 0.003 * rng.standard_normal(y.size)
    return np.tile(y.astype(np.float32), (2, 1))


def _features(y: np.ndarray):
    mono = _mono(y, SR)
    env, bass = _rhythm_features(mono)
    return env, _chroma(mono), bass


@pytest.mark.parametrize(
    ("bpm", "beats_per_chord", "notes_per_beat", "beats_per_bass"),
    [
        (72.0, 4, 2, 1),  # a chord per bar, eighth-note arpeggio, bass on every beat
        (96.0, 2, 4, 1),  # two chords per bar, sixteenths
        (108.0, 4, 4, 1),
    ],
)
def test_chooser_picks_the_metrical_level(bpm, beats_per_chord, notes_per_beat, beats_per_bass):
    y = pop_texture(
        bpm, beats_per_chord=beats_per_chord, notes_per_beat=notes_per_beat, beats_per_bass=beats_per_bass
    )
    env, chroma, bass = _features(y)
    cands, feats, _ = _octave_candidates(env, chroma, bass)
    # the comb sees the same hierarchy an octave apart: both levels are candidates
    assert np.any(np.abs(cands / bpm - 1) <= 0.04)
    assert np.any(np.abs(cands / (bpm * 2) - 1) <= 0.04) or np.any(np.abs(cands / (bpm / 2) - 1) <= 0.04)
    probs = load_tempo_chooser().probabilities(feats)
    right = int(np.argmin(np.abs(np.log(cands / bpm))))
    assert probs[right] > 0.6
    assert _global_tempo(env, chroma, bass) == pytest.approx(bpm, rel=0.04)


def test_chooser_corrects_the_comb_on_a_ballad():
    # 56 BPM, a chord per bar over a sixteenth-note arpeggio: the comb with its fixed 95 BPM prior reads
    # the sixteenths as eighths of a 112 BPM song; the trained chooser keeps the ballad's tempo
    y = pop_texture(56.0, beats_per_chord=4, notes_per_beat=4)
    env, chroma, bass = _features(y)
    cands, feats, comb = _octave_candidates(env, chroma, bass)
    assert comb == pytest.approx(112.0, rel=0.04)
    probs = load_tempo_chooser().probabilities(feats)
    assert cands[int(np.argmax(probs))] == pytest.approx(56.0, rel=0.04)
    a = analyze(y, sr=SR)
    assert a.tempo_bpm == pytest.approx(56.0, rel=0.04)
    truth = np.arange(0.0, 40.0, 60.0 / 56.0)
    est = np.array(a.beats)
    hits = sum(np.any(np.abs(est - t) <= 0.07) for t in truth[3:-3])
    assert hits >= 0.9 * truth[3:-3].size and est.size <= 1.1 * truth.size


def test_analysis_reports_the_other_levels_the_chooser_weighed():
    from core.audio.analysis import _choose_tempo, correct_tempo

    y = pop_texture(56.0, beats_per_chord=4, notes_per_beat=4)
    env, chroma, bass = _features(y)
    cands, feats, _ = _octave_candidates(env, chroma, bass)
    probs = load_tempo_chooser().probabilities(feats)
    tempo, others = _choose_tempo(env, chroma, bass)
    # every candidate but the chosen one, most likely first, with the chooser's own probabilities
    assert tempo == cands[int(np.argmax(probs))]
    assert len(others) == cands.size - 1
    assert [p for _, p in others] == sorted((p for _, p in others), reverse=True)
    assert sorted(p for _, p in others) == pytest.approx(sorted(np.delete(probs, np.argmax(probs))))
    assert sum(p for _, p in others) + probs.max() == pytest.approx(1.0)

    a = analyze(y, sr=SR)
    alts = dict(a.tempo_alternatives)
    assert len(alts) == len(others)
    # scaled like the tracked tempo: the double-time level sits at twice the reported tempo
    double = min(alts, key=lambda b: abs(np.log(b / (2 * a.tempo_bpm))))
    assert double == pytest.approx(2 * a.tempo_bpm, rel=1e-6)
    assert a.to_dict()["tempo_alternatives"][0] == {
        "bpm": round(a.tempo_alternatives[0][0], 2), "probability": round(a.tempo_alternatives[0][1], 3)
    }  # fmt: skip

    # doubling the grid moves the choice to that level: the old tempo becomes an alternative instead
    d = correct_tempo(a, factor=2.0)
    d_alts = dict(d.tempo_alternatives)
    assert not any(abs(b / d.tempo_bpm - 1) <= 0.04 for b in d_alts)
    p_old = 1.0 - sum(alts.values())
    assert d_alts[a.tempo_bpm] == pytest.approx(p_old)
    assert sum(d_alts.values()) == pytest.approx(1.0 - alts[double])

    # a metronome (isolated clicks) has no chooser and so no alternatives
    clicks = np.zeros(SR * 12, np.float32)
    clicks[:: SR // 2] = 1.0
    assert analyze(clicks[None, :], sr=SR).tempo_alternatives == ()


def test_features_follow_the_candidate_tempo():
    y = pop_texture(120.0, beats_per_chord=2, notes_per_beat=2)
    env, chroma, bass = _features(y)
    cands, feats, comb = _octave_candidates(env, chroma, bass)
    assert feats.shape == (cands.size, len(OCTAVE_FEATURES))
    assert np.isfinite(feats).all()
    assert np.all(np.diff(cands) > 0) and cands.min() >= 40.0 and cands.max() <= 240.0
    assert np.any(np.abs(cands / comb - 1) <= 0.04)
    col = dict(zip(OCTAVE_FEATURES, feats.T, strict=True))
    np.testing.assert_allclose(col["log2_bpm"], np.log2(cands / 80.0))
    assert col["log_comb_salience"].max() == pytest.approx(0.0)
    # the autocorrelation at half a beat of one level is the one at a beat of the level above
    i = int(np.argmin(np.abs(np.log(cands / 60.0))))
    j = int(np.argmin(np.abs(np.log(cands / 120.0))))
    assert cands[j] / cands[i] == pytest.approx(2.0, rel=0.04)
    assert col["ac_half_beat"][i] == pytest.approx(col["ac_beat"][j], abs=0.1)
    assert col["bass_ac_half_beat"][i] == pytest.approx(col["bass_ac_beat"][j], abs=0.1)
    # octaves and ternary relations of the comb's tempo
    np.testing.assert_array_equal(col["ternary"], [float(abs(np.log2(c / comb)) % 1 > 0.3) for c in cands])


def test_without_bass_or_chroma_the_features_are_still_defined():
    y = pop_texture(96.0, beats_per_chord=2, notes_per_beat=2)
    env, _, _ = _features(y)
    cands, feats, _ = _octave_candidates(env, None, None)
    assert np.isfinite(feats).all() and cands.size >= 2


def test_committed_chooser_loads():
    c = load_tempo_chooser()
    assert tempo_chooser_path().is_file()
    assert c.features == OCTAVE_FEATURES
    for a in (c.mean, c.scale, c.weights):
        assert a.shape == (len(OCTAVE_FEATURES),) and np.isfinite(a).all()
    assert np.all(c.scale > 0) and np.any(c.weights != 0)


def _write(tmp_path, **changes) -> str:
    data = json.loads(tempo_chooser_path().read_text())
    data.update(changes)
    p = tmp_path / "chooser.json"
    p.write_text(json.dumps(data))
    return str(p)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"kind": "drums"}, "not a tempo-octave chooser"),
        ({"format_version": 99}, "format version 99"),
        ({"features": ["log2_bpm"]}, "uses features"),
        ({"features": 3}, "uses features"),
        ({"weights": [1.0, 2.0]}, "'weights' must hold"),
        ({"mean": [float("nan")] * len(OCTAVE_FEATURES)}, "'mean' must hold"),
        ({"scale": [0.0] * len(OCTAVE_FEATURES)}, "every 'scale' must be > 0"),
        ({"weights": ["a"] * len(OCTAVE_FEATURES)}, "'weights' is not a list of numbers"),
    ],
)
def test_bad_chooser_gives_a_clear_model_error(tmp_path, changes, message):
    with pytest.raises(ModelError, match=message):
        load_tempo_chooser(_write(tmp_path, **changes))


def test_missing_or_corrupt_chooser(tmp_path):
    with pytest.raises(ModelError, match="cannot read the tempo chooser"):
        load_tempo_chooser(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"\x80\x81 not json")
    with pytest.raises(ModelError, match="cannot read the tempo chooser"):
        load_tempo_chooser(bad)
    bad.write_text("[1, 2, 3]")
    with pytest.raises(ModelError, match="not a tempo-octave chooser"):
        load_tempo_chooser(bad)


def test_chooser_probabilities():
    n = len(OCTAVE_FEATURES)
    w = np.zeros(n)
    w[0] = 1.0  # prefers the faster candidate
    c = TempoChooser(OCTAVE_FEATURES, np.zeros(n), np.ones(n), w)
    feats = np.zeros((3, n))
    feats[:, 0] = [-1.0, 0.0, 1.0]
    p = c.probabilities(feats)
    assert p.sum() == pytest.approx(1.0) and int(np.argmax(p)) == 2
    np.testing.assert_allclose(c.scores(feats), [-1.0, 0.0, 1.0])


def _item(rng, label_feature_gap: float) -> dict:
    """A fake song: 3 candidates, the correct one (random) has a larger feature 2."""
    feats = rng.normal(size=(3, len(OCTAVE_FEATURES)))
    label = int(rng.integers(3))
    feats[label, 2] += label_feature_gap
    truth = 100.0
    cands = np.array([50.0, 100.0, 200.0]) * truth / [50.0, 100.0, 200.0][label]
    return {"cands": cands, "feats": feats, "comb": cands[1], "truth": truth, "label": label, "song": "x"}


def test_training_fits_a_separable_cue():
    from models.train_tempo import evaluate, fit

    rng = np.random.default_rng(0)
    train = [_item(rng, 3.0) for _ in range(120)]
    val = [_item(rng, 3.0) for _ in range(60)]
    model = fit(train, l2=0.1)
    assert int(np.argmax(np.abs(model["weights"]))) == 2 and model["weights"][2] > 0
    r = evaluate(model, val)
    assert r["accuracy"] > 0.9 and r["oracle_accuracy"] == 1.0
    assert r["comb_accuracy"] == pytest.approx(np.mean([v["label"] == 1 for v in val]))
    assert len(r["misses"]) == round((1 - r["accuracy"]) * len(val))


def _fake_pop909(tmp_path, songs: dict[int, float]):
    """POP909-like folders (annotations only) and a cache of analysis representations made in code."""
    from models.tempo_data import representations

    data, cache = tmp_path / "pop909", tmp_path / "cache"
    cache.mkdir()
    for num, bpm in songs.items():
        folder = data / f"{num:03d}"
        folder.mkdir(parents=True)
        (folder / f"{num:03d}.mid").write_bytes(b"")  # never read: the cache holds the representations
        beats = np.arange(0.0, 30.0, 60.0 / bpm)
        rows = np.column_stack([beats, np.arange(beats.size) % 2 == 0, np.arange(beats.size) % 4 == 0])
        np.savetxt(folder / "beat_midi.txt", rows, fmt="%.6f")
        np.savetxt(folder / "beat_audio.txt", np.column_stack([beats[::2], np.ones(beats[::2].size)]))
        y = pop_texture(bpm, beats_per_chord=4, notes_per_beat=2, beats_per_bass=1, seconds=30.0, seed=num)
        rep = representations(y, SR)
        rep["beats"] = beats
        np.savez(cache / f"{num:03d}.npz", **rep)
    return data, cache


def test_training_command_writes_a_loadable_chooser(tmp_path):
    from models.tempo_data import split_songs
    from models.train_tempo import main

    data, cache = _fake_pop909(tmp_path, {1: 72.0, 2: 96.0, 3: 84.0, 728: 90.0, 819: 100.0})
    assert [f.name for f in split_songs(data, "train")] == ["001", "002", "003"]
    assert [f.name for f in split_songs(data, "test")] == ["819"]
    out, results = tmp_path / "chooser.json", tmp_path / "results.json"
    argv = ["--data", str(data), "--cache", str(cache), "--train-every", "1", "--out", str(out)]
    assert main([*argv, "--results", str(results)]) == 0
    chooser = load_tempo_chooser(out)
    assert chooser.features == OCTAVE_FEATURES and np.isfinite(chooser.weights).all()
    r = json.loads(results.read_text())
    assert r["train"]["songs"] == 3 and r["validation"]["songs"] == 1 and r["test"]["songs"] == 1
    assert r["l2"] in (0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
    # beat_audio.txt of these fake songs runs at half the tempo of beat_midi.txt
    assert r["train"]["songs_whose_two_annotations_differ"] == 3
    assert 0.0 <= r["test"]["accuracy"] <= 1.0 and r["test"]["oracle_accuracy"] == 1.0


def test_bench_song_picks_and_octave_tolerance(tmp_path):
    from bench.analysis import octave_ok, pick_songs

    data, _ = _fake_pop909(tmp_path, {})
    for num in (819, 830, 850, 870, 909, 700):
        (data / f"{num:03d}").mkdir(parents=True)
        (data / f"{num:03d}" / f"{num:03d}.mid").write_bytes(b"")
        (data / f"{num:03d}" / "beat_midi.txt").write_text("0 1 1\n")
    assert [f.name for f in pick_songs(data, "test", None)] == ["819", "830", "850", "870", "909"]
    assert [f.name for f in pick_songs(data, "test", 3)] == ["819", "850", "909"]
    assert octave_ok(62.0, 124.0) and octave_ok(90.0, 30.0) and octave_ok(100.0, 101.0)
    assert not octave_ok(90.0, 60.0) and not octave_ok(110.0, 100.0)
