"""Song generation: validation, stems/mix relation, determinism, tempo and key, the CLI.

Most tests run the whole pipeline (arranger, MIDI, soundfont rendering, mastering) with small rule-based
test doubles for the four trained models, so they check the engine around the models exactly and fast.
Tests marked ``real models`` run the committed checkpoints (skipped while a checkpoint is missing).
"""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

import numpy as np
import pretty_midi
import pytest

from core.errors import InputError
from core.music.arrange import Samplers, keep_in_key
from core.music.generate import generate_song
from core.music.midi import Note
from core.music.theory import Key, in_key, parse_chord, parse_key, parse_pitch_class, roman_progression

SR = 44100


# ------------------------------------------------------------------ test doubles of the trained models


def _drums(*, bars, style, seed, temperature=1.0, density=1.0, tap=None):
    rng = np.random.default_rng(seed)
    steps = bars * 16
    hits = np.zeros((steps, 9), bool)
    hits[0::8, 0] = True  # kick on 1 and 3
    hits[4::8, 1] = True  # snare on 2 and 4
    hits[0::2, 2] = rng.random(steps // 2) < 0.9  # 8th hats
    vel = np.where(hits, 0.75, 0.0).astype(np.float32)
    off = np.where(hits, rng.uniform(-0.5, 0.5, hits.shape), 0.0).astype(np.float32)
    return SimpleNamespace(hits=hits, velocity=vel, offset=off)


def _harmony(*, key, mode, mood, bars, seed, temperature=1.0, chords_per_bar=1):
    k = Key(parse_pitch_class(key), mode)
    prog = roman_progression(k, [0, 4, 5, 3] if mode == "major" else [0, 5, 2, 6])
    prog[1] = "C#:maj" if key == "C" else prog[1]  # a non-diatonic chord the arranger must bring into the key
    return [prog[(i + seed % 2) % 4] for i in range(bars * chords_per_bar)]


def _bass(*, chords, steps_per_beat, beats, beats_per_bar=4, seed, temperature=1.0, kick=None, register=36):
    assert kick is None or len(kick) == beats * steps_per_beat
    out = []
    for s, e, c in chords:
        p = register + (parse_chord(c).root_pc - register) % 12
        b = s
        while b < e:
            out.append(Note(b, min(e, b + 1.0), p, 90))
            b += 1.0
    return out


def _melody(*, key, mode, chords, beats, seed, temperature=1.0, register=72, density=1.0):
    """Chord tones in 8ths, a chromatic run (e.g. C-C#-D) and a stray tritone in every chord span."""
    rng = np.random.default_rng(seed)
    k = Key(parse_pitch_class(key), mode)
    base = register + (k.tonic_pc - register) % 12
    out = []
    for s, e, c in chords:
        pcs = parse_chord(c).pitch_classes
        b = s
        while b < e - 1.0 - 1e-9:
            out.append(Note(b, b + 0.5, register + (pcs[rng.integers(len(pcs))] - register) % 12, 90))
            b += 0.5
        out += [
            Note(e - 1.0, e - 0.75, base, 80),
            Note(e - 0.75, e - 0.5, base + 1, 80),
            Note(e - 0.5, e, base + 2, 80),
        ]
        out.append(Note(s + 0.25, s + 0.5, base + 6, 70))
    return sorted(out)


FAKE = Samplers(drums=_drums, bass=_bass, harmony=_harmony, melody=_melody)


def _song(samplers=FAKE, **kw):
    args = dict(
        genre="pop",
        mood="happy",
        tempo=120,
        key="C major",
        instruments="drums,bass,keys,lead",
        seconds=12,
        seed=3,
    )
    args.update(kw)
    return generate_song(samplers=samplers, **args)


@pytest.fixture(scope="module")
def song():
    return _song()


# ------------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"genre": "polka"}, "Unknown genre 'polka'"),
        ({"mood": "grumpy"}, "Unknown mood 'grumpy'"),
        ({"instruments": "drums,kazoo"}, "Unknown instrument 'kazoo'"),
        ({"instruments": ""}, "No instruments"),
        ({"tempo": 39}, "40-240"),
        ({"tempo": 241}, "40-240"),
        ({"tempo": float("nan")}, "40-240"),
        ({"tempo": "fast"}, "not a number"),
        ({"key": "H minor"}, "'H minor'"),
        ({"key": "C weird"}, "'C weird'"),
        ({"seconds": 4.9}, "5-600"),
        ({"seconds": 601}, "5-600"),
        ({"seed": -1}, "Seed"),
        ({"seed": 1.5}, "Seed"),
    ],
)
def test_bad_input_is_a_clear_input_error(kw, needle):
    with pytest.raises(InputError) as err:
        _song(**kw)
    assert needle in str(err.value)


def test_error_messages_list_allowed_values():
    with pytest.raises(InputError, match="pop, k-pop, hip-hop, rock, edm, funk, r&b, lo-fi, jazz, latin"):
        _song(genre="disco")
    with pytest.raises(InputError, match="drums, bass, keys"):
        _song(instruments="theremin")


# ------------------------------------------------------------------------------------- song properties


def test_stems_are_aligned_and_sum_to_the_premaster_mix(song):
    from core.audio.loudness import integrated_lufs, limit, true_peak_dbfs

    assert list(song.stems) == ["drums", "bass", "keys", "lead"]
    n = 12 * SR
    assert song.sr == SR and song.mix.shape == (2, n) and song.mix.dtype == np.float32
    for y in song.stems.values():
        assert y.shape == (2, n) and y.dtype == np.float32
        assert float(np.sqrt(np.mean(y**2))) > 1e-3  # every stem plays
    total = np.sum(np.stack(list(song.stems.values())), axis=0)
    assert np.allclose(total, song.premix, atol=1e-6)
    # the stems sum to exactly what enters the limiter: limiting their sum gives the mix
    assert np.allclose(limit(total, sr=SR, ceiling_dbtp=-1.0), song.mix, atol=1e-6)
    assert integrated_lufs(song.mix, sr=SR) == pytest.approx(-14.0, abs=0.5)
    assert true_peak_dbfs(song.mix, sr=SR) <= -1.0 + 1e-3
    # the limiter only shaves peaks: the mix stays the sum of the stems
    assert np.corrcoef(song.mix.ravel(), total.ravel())[0, 1] > 0.98


def test_same_seed_same_song_other_seed_other_song(song):
    again = _song()
    assert np.array_equal(again.mix, song.mix)
    for k in song.stems:
        assert np.array_equal(again.stems[k], song.stems[k])
    assert again.midi == song.midi and again.notes == song.notes
    other = _song(seed=4)
    assert not np.array_equal(other.stems["lead"], song.stems["lead"])


def test_midi_holds_the_exact_tempo_and_drums_on_the_grid(song):
    pm = pretty_midi.PrettyMIDI(io.BytesIO(song.midi["drums"]))
    _, tempi = pm.get_tempo_changes()
    assert tempi[0] == pytest.approx(120.0, abs=1e-3)
    (inst,) = pm.instruments
    assert inst.is_drum
    sixteenth = 60.0 / 120 / 4
    dev = np.array([n.start / sixteenth - round(n.start / sixteenth) for n in inst.notes]) * sixteenth
    # micro-timing stays within pop's humanize bound (0.3 * half a 16th = 9.4 ms)
    assert np.abs(dev).max() <= 0.3 * 0.5 * sixteenth + 1e-4
    assert np.abs(dev).max() > 0  # humanised, not robotic
    all_pm = pretty_midi.PrettyMIDI(io.BytesIO(song.midi_all))
    assert [i.name for i in all_pm.instruments] == ["drums", "bass", "keys", "lead"]
    assert sum(len(i.notes) for i in all_pm.instruments) == len(song.notes)


def test_audio_holds_the_tempo():
    import librosa

    s = _song(seconds=20, instruments="drums,bass,keys")
    # drum onsets in the audio sit on the 16th grid
    drums = s.stems["drums"].mean(axis=0)
    onsets = librosa.onset.onset_detect(y=drums, sr=SR, units="time", hop_length=256, backtrack=False)
    sixteenth = 0.125
    dev = np.abs(onsets / sixteenth - np.round(onsets / sixteenth)) * sixteenth
    assert len(onsets) > 40
    assert np.mean(dev < 0.03) > 0.9
    tempo, _ = librosa.beat.beat_track(y=s.mix.mean(axis=0), sr=SR, hop_length=512)
    assert float(np.atleast_1d(tempo)[0]) == pytest.approx(120.0, rel=0.04)


def _check_key(song, key: Key):
    pitched = [n for n in song.notes if n["stem"] != "drums"]
    out = [n for n in pitched if not in_key(n["pitch"], key)]
    assert len(pitched) == song.pitched_notes
    assert len(out) == song.chromatic_notes
    assert len(out) / len(pitched) < 0.02
    return out


def test_every_pitched_note_in_key_except_counted_passing_tones(song):
    out = _check_key(song, parse_key("C major"))
    assert song.chromatic_notes > 0  # the doubles wrote chromatic runs: some are kept as passing tones
    for n in out:
        assert n["end"] - n["start"] <= 0.5 * 60 / 120 + 1e-6
    for _, _, label in song.chords:
        assert set(parse_chord(label).pitch_classes) <= set(parse_key("C major").scale)
    assert song.chords[-1][2] == "C:maj" and song.chords[-1][1] == pytest.approx(12 / 0.5)


@pytest.mark.parametrize(
    ("genre", "mood", "key", "tempo", "instruments"),
    [
        ("k-pop", "energetic", "F# minor", 128, "drums,bass,keys,pad,arp,lead"),
        ("jazz", "chill", "Bb major", 140, "drums,bass,keys,brass,lead"),
        ("rock", "dark", "E minor", 150, "drums,bass,guitar,strings,pluck"),
        ("lo-fi", "sad", "D dorian", 80, "drums,bass,keys,lead"),
        ("edm", "epic", None, 126, None),
    ],
)
def test_genres_moods_and_keys(genre, mood, key, tempo, instruments):
    s = _song(genre=genre, mood=mood, key=key, tempo=tempo, instruments=instruments, seconds=8)
    k = parse_key(s.key)
    if key:
        assert k == parse_key(key)
    _check_key(s, k)
    assert s.tempo_bpm == tempo
    assert s.mix.shape == (2, 8 * SR)
    summary = s.summary()
    json.dumps(summary)
    assert set(summary) >= {"tempo_bpm", "key", "seconds", "stems", "sections"}


def test_mood_changes_mode_register_and_density():
    happy = _song(key=None, mood="happy", seconds=10)
    sad = _song(key=None, mood="sad", seconds=10)
    assert happy.key.endswith("major") and sad.key.endswith("minor")
    lead_h = np.mean([n["pitch"] for n in happy.notes if n["stem"] == "lead"])
    lead_s = np.mean([n["pitch"] for n in sad.notes if n["stem"] == "lead"])
    assert lead_h > lead_s  # sad sits lower


def test_progress_is_reported_in_order():
    seen = []
    _song(seconds=6, instruments="keys", progress=lambda f, m: seen.append(f))
    assert seen[0] < 0.1 and seen[-1] == 1.0 and seen == sorted(seen)


def test_keep_in_key_keeps_only_stepwise_short_passing_tones():
    c = parse_key("C major")
    notes = [
        Note(0, 0.5, 60, 90),
        Note(0.5, 0.75, 61, 90),
        Note(0.75, 1, 62, 90),
        Note(1, 2, 66, 90),
        Note(2, 3, 64, 90),
    ]
    out, kept = keep_in_key(notes, c, budget=5)
    assert kept == 1
    assert [n.pitch for n in out] == [60, 61, 62, 65, 64]  # C# kept (C-C#-D), F# (a leap) moved to F
    out, kept = keep_in_key(notes, c, budget=0)
    assert kept == 0 and all(in_key(n.pitch, c) for n in out)


# ------------------------------------------------------------------------------------------------ CLI


def test_cli_rejects_bad_input_with_exit_code_2(capsys, tmp_path):
    from core.__main__ import main

    rc = main(["generate", "--genre", "polka", "--out", str(tmp_path / "x.wav")])
    assert rc == 2
    assert "Unknown genre 'polka'" in capsys.readouterr().err
    rc = main(["generate", "--genre", "pop", "--tempo", "300", "--out", str(tmp_path / "x.wav")])
    assert rc == 2 and "40-240" in capsys.readouterr().err
    rc = main(["generate", "--genre", "pop", "--out", str(tmp_path / "x.xyz")])
    assert rc == 2 and "xyz" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ real models


def _have_checkpoints() -> bool:
    try:
        from core.loaders import checkpoint_path
    except ImportError:
        return False
    return all(checkpoint_path(n).exists() for n in ("drums", "bass", "harmony", "melody"))


real = pytest.mark.skipif(not _have_checkpoints(), reason="model checkpoints not committed yet")


@pytest.fixture(scope="module")
def real_samplers():
    from core.music.arrange import load_samplers

    return load_samplers()


@real
def test_real_models_song_holds_tempo_key_and_is_deterministic(real_samplers):
    import librosa

    a = _song(
        samplers=real_samplers, seconds=20, key="A minor", mood="sad", instruments="drums,bass,keys,lead"
    )
    b = _song(
        samplers=real_samplers, seconds=20, key="A minor", mood="sad", instruments="drums,bass,keys,lead"
    )
    assert np.array_equal(a.mix, b.mix) and a.midi == b.midi
    _check_key(a, parse_key("A minor"))
    tempo, _ = librosa.beat.beat_track(y=a.mix.mean(axis=0), sr=SR, hop_length=512)
    assert float(np.atleast_1d(tempo)[0]) == pytest.approx(120.0, rel=0.04)
    for role in ("drums", "bass", "lead"):
        assert any(n["stem"] == role for n in a.notes)


@real
def test_cli_writes_audio_stems_midi_and_json(tmp_path, capsys):
    from core.__main__ import main

    out = tmp_path / "song.flac"
    rc = main([
        "generate", "--genre", "funk", "--mood", "happy", "--tempo", "104", "--key", "E minor",
        "--instruments", "drums,bass,guitar", "--seconds", "8", "--seed", "7", "--out", str(out),
        "--stems", str(tmp_path / "stems"), "--midi", str(tmp_path / "song.mid"), "--json",
    ])  # fmt: skip
    assert rc == 0
    info = json.loads(capsys.readouterr().out)
    assert (
        info["tempo_bpm"] == 104 and info["key"] == "E minor" and info["stems"] == ["drums", "bass", "guitar"]
    )
    assert info["seconds"] == pytest.approx(8.0) and info["sections"]
    from core.audio.io import load

    y = load(out)
    assert y.shape[1] == pytest.approx(8 * SR, abs=2)
    assert sorted(p.name for p in (tmp_path / "stems").iterdir()) == ["bass.wav", "drums.wav", "guitar.wav"]
    import soundfile as sf

    stems = [
        sf.read(tmp_path / "stems" / f"{n}.wav", dtype="float32")[0].T for n in ("drums", "bass", "guitar")
    ]
    mix = sf.read(out, dtype="float32")[0].T
    total = np.sum(stems, axis=0)
    assert total.shape == mix.shape
    assert np.corrcoef(total.ravel(), mix.ravel())[0, 1] > 0.98  # the stems add up to the mix
    pm = pretty_midi.PrettyMIDI(str(tmp_path / "song.mid"))
    assert len(pm.instruments) == 3 and pm.get_tempo_changes()[1][0] == pytest.approx(104, abs=1e-3)


def test_missing_or_corrupt_soundfont_is_a_model_error_before_any_work(tmp_path, monkeypatch):
    from core.errors import ModelError

    calls = []
    spy = Samplers(
        drums=_drums, bass=_bass, harmony=lambda **kw: calls.append(kw) or _harmony(**kw), melody=_melody
    )
    with pytest.raises(ModelError, match=r"nope\.sf2"):
        _song(samplers=spy, soundfont=tmp_path / "nope.sf2")
    bad = tmp_path / "bad.sf2"
    bad.write_bytes(b"not a soundfont")
    monkeypatch.setenv("SOUNDFONT", str(bad))
    with pytest.raises(ModelError, match=r"bad\.sf2"):
        _song(samplers=spy)
    assert not calls  # the soundfont is checked before the models run


def test_missing_or_corrupt_checkpoint_is_a_model_error(tmp_path, monkeypatch):
    from core import loaders
    from core.errors import ModelError
    from core.music.arrange import load_samplers

    corrupt = tmp_path / "drums.pt"
    corrupt.write_bytes(b"\x00garbage" * 100)
    monkeypatch.setattr(
        loaders, "checkpoint_path", lambda name: corrupt if name == "drums" else tmp_path / "missing.pt"
    )
    with pytest.raises(ModelError):
        load_samplers()


def test_cli_reports_a_bad_soundfont(tmp_path, monkeypatch, capsys):
    from core.__main__ import main

    monkeypatch.setenv("SOUNDFONT", str(tmp_path / "gone.sf2"))
    rc = main(["generate", "--genre", "pop", "--seconds", "5", "--out", str(tmp_path / "x.wav")])
    assert rc == 2 and "gone.sf2" in capsys.readouterr().err
    assert not (tmp_path / "x.wav").exists()


def test_fill_leads_into_the_chorus():
    s = _song(seconds=40, instruments="drums,keys")
    chorus = next(x for x in s.sections if x.get("name") == "chorus")
    t = chorus["start_s"]
    beat = 0.5
    toms = [n for n in s.notes if n["stem"] == "drums" and n["pitch"] in (45, 48, 50)]
    assert any(t - beat - 0.01 <= n["start"] < t for n in toms)  # a tom run on the beat before the chorus
    crash = [n for n in s.notes if n["stem"] == "drums" and n["pitch"] == 49]
    assert any(abs(n["start"] - t) < 0.02 for n in crash)
