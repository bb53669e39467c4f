"""Tests of the trained symbolic music models (drums, bass, harmony, melody) and their loaders."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from core.errors import InputError, ModelError  # noqa: E402
from core.loaders import load_bass, load_drums, load_harmony, load_melody  # noqa: E402
from models import bass, drums, harmony, melody  # noqa: E402
from models.common import (  # noqa: E402
    FORMAT_VERSION,
    NumpyLSTM,
    chord_tones,
    parse_chord,
    save_checkpoint,
    scale_pitch_classes,
)

POP = [(0, 4, "C:maj"), (4, 8, "G:maj"), (8, 12, "A:min"), (12, 16, "F:maj")] * 4  # 16 bars


@pytest.fixture(scope="module")
def drum_model():
    return load_drums()


@pytest.fixture(scope="module")
def bass_model():
    return load_bass()


@pytest.fixture(scope="module")
def harmony_model():
    return load_harmony()


@pytest.fixture(scope="module")
def melody_model():
    return load_melody()


def _pop_chords(bars: int):
    prog = ["C:maj", "G:maj", "A:min", "F:maj"]
    return [(4.0 * b, 4.0 * b + 4.0, prog[b % 4]) for b in range(bars)]


# --------------------------------------------------------------------------------------------------- drums


def test_drum_constants():
    assert len(drums.DRUM_CLASSES) == 9
    assert drums.DRUM_CLASS_PITCHES == (36, 38, 42, 46, 45, 48, 50, 49, 51)
    assert "funk" in drums.STYLES and "rock" in drums.STYLES


def test_drums_sample_shapes_ranges_and_determinism(drum_model):
    a = drums.sample(drum_model, bars=4, style="funk", seed=3)
    b = drums.sample(drum_model, bars=4, style="funk", seed=3)
    c = drums.sample(drum_model, bars=4, style="funk", seed=4)
    assert a.hits.shape == a.velocity.shape == a.offset.shape == (64, 9)
    assert a.hits.dtype == bool and a.velocity.dtype == np.float32 and a.offset.dtype == np.float32
    np.testing.assert_array_equal(a.hits, b.hits)
    np.testing.assert_array_equal(a.velocity, b.velocity)
    assert not np.array_equal(a.hits, c.hits)
    assert a.velocity.min() >= 0.0 and a.velocity.max() <= 1.0
    assert a.offset.min() >= -0.5 and a.offset.max() <= 0.5
    assert np.all(a.velocity[~a.hits] == 0) and np.all(a.velocity[a.hits] > 0)
    # a groove: kick or snare in most bars, and some hi-hat/ride time keeping
    assert a.hits[:, :2].sum() >= 4
    assert a.hits[:, [2, 3, 8]].sum() >= 4


def test_drums_tap_conditioning_raises_kick_snare_on_tapped_steps(drum_model):
    rng = np.random.default_rng(0)
    tap = np.zeros(64)
    tapped = np.flatnonzero(rng.random(64) < 0.25)
    tap[tapped] = 1.0
    untapped = np.setdiff1d(np.arange(64), tapped)
    with_tap, without = [], []
    changed = False
    for seed in range(6):
        t = drums.sample(drum_model, bars=4, style="rock", seed=seed, tap=tap)
        f = drums.sample(drum_model, bars=4, style="rock", seed=seed)
        changed |= not np.array_equal(t.hits, f.hits)
        with_tap.append(t.hits[tapped][:, :2].any(axis=1).mean() - t.hits[untapped][:, :2].any(axis=1).mean())
        without.append(f.hits[tapped][:, :2].any(axis=1).mean() - f.hits[untapped][:, :2].any(axis=1).mean())
    assert changed
    assert np.mean(with_tap) > np.mean(without) + 0.1


def test_drums_density_and_temperature(drum_model):
    lo = sum(drums.sample(drum_model, bars=4, style="pop", seed=s, density=0.5).hits.sum() for s in range(3))
    hi = sum(drums.sample(drum_model, bars=4, style="pop", seed=s, density=2.0).hits.sum() for s in range(3))
    assert hi > lo
    g1 = drums.sample(drum_model, bars=2, style="jazz", seed=1, temperature=0)
    g2 = drums.sample(drum_model, bars=2, style="jazz", seed=2, temperature=0)
    np.testing.assert_array_equal(g1.hits, g2.hits)


def test_drums_prime_and_validation(drum_model):
    prime = np.zeros((16, 9))
    prime[::4, 0] = 0.9
    prime[4::8, 1] = 0.8
    p = drums.sample(drum_model, bars=2, style="hip-hop", seed=0, prime=prime)
    assert p.hits.shape == (32, 9)
    with pytest.raises(InputError, match="style"):
        drums.sample(drum_model, bars=2, style="polka-metal", seed=0)
    with pytest.raises(InputError, match="bars"):
        drums.sample(drum_model, bars=0, style="rock", seed=0)
    with pytest.raises(InputError, match="tap"):
        drums.sample(drum_model, bars=2, style="rock", seed=0, tap=np.ones(5))


def test_numpy_step_inference_matches_torch(drum_model):
    """The numpy sampling path computes exactly what the trained torch module computes."""
    g = torch.Generator().manual_seed(0)
    t = 20
    prev = (torch.rand(1, t, 27, generator=g) > 0.8).float()
    style = torch.tensor([1])
    pos = torch.arange(t)[None] % 16
    tap = torch.rand(1, t, generator=g)
    mask = torch.ones(1, t)
    with torch.no_grad():
        x = drum_model.features(prev, style, pos, tap, mask)
        h_torch, _ = drum_model.lstm(x)
    net = NumpyLSTM(drum_model.lstm)
    state = net.zero_state()
    for k in range(t):
        h, state = net.step(x[0, k].numpy(), state)
        np.testing.assert_allclose(h, h_torch[0, k].numpy(), atol=1e-4)


# ---------------------------------------------------------------------------------------------------- bass


def test_bass_notes_valid_deterministic_and_on_chord_tones(bass_model):
    chords = _pop_chords(16)
    a = bass.sample(bass_model, chords=chords, steps_per_beat=4, beats=64, seed=0)
    b = bass.sample(bass_model, chords=chords, steps_per_beat=4, beats=64, seed=0)
    c = bass.sample(bass_model, chords=chords, steps_per_beat=4, beats=64, seed=1)
    assert a == b and a != c
    assert len(a) >= 16
    strong_total, strong_tone = 0, 0
    for seed in range(4):
        notes = bass.sample(bass_model, chords=chords, steps_per_beat=4, beats=64, seed=seed)
        for n in notes:
            assert 28 <= n.pitch <= 55 and 1 <= n.velocity <= 127
            assert 0 <= n.start_beat < n.end_beat <= 64
            if n.start_beat % 2 == 0:  # beats 1 and 3
                ch = parse_chord(chords[int(n.start_beat // 4)][2])
                strong_total += 1
                strong_tone += n.pitch % 12 in chord_tones(ch)[:3]
    assert strong_total > 20
    assert strong_tone / strong_total > 0.6


def test_bass_grid_register_and_kick(bass_model):
    chords = _pop_chords(8)
    eighths = bass.sample(bass_model, chords=chords, steps_per_beat=2, beats=32, seed=2)
    assert all((n.start_beat * 2) % 1 == 0 for n in eighths)
    quarters = bass.sample(bass_model, chords=chords, steps_per_beat=1, beats=32, seed=2)
    assert all(n.start_beat % 1 == 0 for n in quarters)
    low = bass.sample(bass_model, chords=chords, steps_per_beat=4, beats=32, seed=2, register=30)
    high = bass.sample(bass_model, chords=chords, steps_per_beat=4, beats=32, seed=2, register=50)
    assert all(28 <= n.pitch <= 55 for n in low + high)
    assert np.mean([n.pitch for n in high]) > np.mean([n.pitch for n in low])
    # a kick on the "and" of every beat pulls bass onsets there
    kick = np.zeros(32 * 4)
    kick[2::4] = 1.0
    on_and = []
    off_and = []
    for seed in range(4):
        k = bass.sample(bass_model, chords=chords, steps_per_beat=4, beats=32, seed=seed, kick=kick)
        f = bass.sample(bass_model, chords=chords, steps_per_beat=4, beats=32, seed=seed)
        on_and.append(np.mean([(n.start_beat % 1) == 0.5 for n in k]))
        off_and.append(np.mean([(n.start_beat % 1) == 0.5 for n in f]))
    assert np.mean(on_and) > np.mean(off_and)
    with pytest.raises(InputError, match="register"):
        bass.sample(bass_model, chords=chords, steps_per_beat=4, beats=32, seed=0, register=80)
    with pytest.raises(InputError, match="steps_per_beat"):
        bass.sample(bass_model, chords=chords, steps_per_beat=3, beats=32, seed=0)
    with pytest.raises(InputError):
        bass.sample(bass_model, chords=[(0, 4, "Q:maj")], steps_per_beat=4, beats=4, seed=0)


# ------------------------------------------------------------------------------------------------- harmony


def test_harmony_progressions_are_diatonic_and_seeded(harmony_model):
    a = harmony.sample(harmony_model, key="C", mode="major", mood="happy", bars=8, seed=0)
    b = harmony.sample(harmony_model, key="C", mode="major", mood="happy", bars=8, seed=0)
    assert a == b and len(a) == 8
    differs = any(
        harmony.sample(harmony_model, key="C", mode="major", mood="happy", bars=8, seed=s) != a
        for s in range(1, 4)
    )
    assert differs
    for key, mode, mood in [
        ("C", "major", "happy"),
        ("A", "minor", "sad"),
        ("F#", "minor", "dark"),
        ("Eb", "major", "chill"),
    ]:
        tonic = parse_chord(f"{key}:maj").root
        scale = set(scale_pitch_classes(tonic, mode))
        if mode == "minor":
            scale.add((tonic + 11) % 12)  # harmonic minor's leading tone (the major V chord)
        labels = []
        for s in range(4):
            labels += harmony.sample(
                harmony_model, key=key, mode=mode, mood=mood, bars=8, seed=s, chords_per_bar=2
            )
        assert len(labels) == 64
        chords = [parse_chord(lbl) for lbl in labels]
        assert all(c.root is not None for c in chords)
        in_key = np.mean([all(t in scale for t in chord_tones(c)[:3]) for c in chords])
        assert in_key > 0.7, (key, mode, in_key)
    minor_a = harmony.sample(harmony_model, key="A", mode="minor", mood="sad", bars=16, seed=0)
    assert sum(lbl.startswith("A:min") for lbl in minor_a) >= 2
    with pytest.raises(InputError, match="mood"):
        harmony.sample(harmony_model, key="C", mode="major", mood="purple", bars=4, seed=0)
    with pytest.raises(InputError, match="mode"):
        harmony.sample(harmony_model, key="C", mode="lydian", mood="happy", bars=4, seed=0)


# -------------------------------------------------------------------------------------------------- melody


def test_melody_in_scale_seeded_and_in_register(melody_model):
    chords = _pop_chords(8)
    a = melody.sample(melody_model, key="C", mode="major", chords=chords, beats=32, seed=0)
    b = melody.sample(melody_model, key="C", mode="major", chords=chords, beats=32, seed=0)
    c = melody.sample(melody_model, key="C", mode="major", chords=chords, beats=32, seed=1)
    assert a == b and a != c and len(a) >= 8
    ratios = []
    for seed in range(4):
        notes = melody.sample(melody_model, key="C", mode="major", chords=chords, beats=32, seed=seed)
        assert all(0 <= n.start_beat < n.end_beat <= 32 and 1 <= n.velocity <= 127 for n in notes)
        ratios.append(melody.in_scale_ratio(notes, key="C", mode="major"))
        # rests are phrase breaks: at most a bar (+ up to a beat to reach the next beat) without a note
        starts_ends = [(0.0, 0.0), *[(n.start_beat, n.end_beat) for n in notes]]
        gaps = [b[0] - a[1] for a, b in itertools.pairwise(starts_ends)]
        assert max(gaps) <= 4.0 + 1.0
        assert 55 <= np.median([n.pitch for n in notes]) <= 90
    assert np.mean(ratios) > 0.9
    to_d = {"C:maj": "D:maj", "G:maj": "A:maj", "A:min": "B:min", "F:maj": "G:maj"}
    d_chords = [(s, e, to_d[lbl]) for s, e, lbl in chords]
    dm = melody.sample(melody_model, key="D", mode="major", chords=d_chords, beats=32, seed=0)
    assert melody.in_scale_ratio(dm, key="D", mode="major") > 0.8
    sparse = sum(
        len(melody.sample(melody_model, key="C", mode="major", chords=chords, beats=32, seed=s, density=0.4))
        for s in range(3)
    )
    dense = sum(
        len(melody.sample(melody_model, key="C", mode="major", chords=chords, beats=32, seed=s, density=2.5))
        for s in range(3)
    )
    assert dense > sparse


# ------------------------------------------------------------------------------------------------- loaders


def test_loaders_raise_model_error_on_bad_checkpoints(tmp_path, drum_model):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint" * 10)
    for loader in (load_drums, load_bass, load_harmony, load_melody):
        with pytest.raises(ModelError, match="corrupt"):
            loader(garbage)
        with pytest.raises(ModelError, match="not found"):
            loader(tmp_path / "missing.pt")
    old = tmp_path / "old.pt"
    torch.save(
        {"model": drum_model.state_dict(), "config": dataclasses.asdict(drum_model.cfg), "format_version": 99,
         "meta": {"kind": "drums"}},
        old,
    )  # fmt: skip
    with pytest.raises(ModelError, match="format_version"):
        load_drums(old)
    good = save_checkpoint(tmp_path / "d.pt", model=drum_model, config=drum_model.cfg, meta={"kind": "drums"})
    assert torch.load(good, weights_only=True)["format_version"] == FORMAT_VERSION
    assert isinstance(load_drums(good), drums.DrumsLSTM)
    with pytest.raises(ModelError, match="not a 'bass'"):
        load_bass(good)


# ------------------------------------------------------------------------------------------ training smoke


@pytest.fixture
def one_thread():
    """Train on one thread (many threads on a busy 2-core machine make tiny models crawl)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_training_smoke_losses_decrease(one_thread):
    from models.train import drum_losses, token_batch, token_loss

    torch.manual_seed(0)
    # token model: a repeating 4-token riff conditioned on a position one-hot
    net = bass.build_model(bass.BassConfig(hidden=32, layers=1))
    riff = np.array([2, 1, 9, 0] * 4)
    cond = np.zeros((16, bass.COND_DIM), dtype=np.float32)
    batch = token_batch([np.r_[0, riff[:-1]]] * 4, [cond] * 4, [riff] * 4)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = token_loss(net, batch)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    # drum model: a two-step beat (kick, snare) on a few sequences made in code
    dm = drums.DrumsLSTM(drums.DrumsConfig(hidden=32, layers=1))
    hits = np.zeros((4, 16, 9), dtype=np.float32)
    hits[:, 0::8, 0] = 1
    hits[:, 4::8, 1] = 1
    hits[:, ::2, 2] = 1
    prev = np.concatenate(
        [np.roll(hits, 1, axis=1), np.roll(hits, 1, axis=1) * 0.8, np.zeros_like(hits)], axis=2
    )
    b = {
        "prev": torch.from_numpy(prev), "style": torch.zeros(4, dtype=torch.long),
        "pos": torch.arange(16).repeat(4, 1), "tap": torch.zeros(4, 16), "tap_mask": torch.zeros(4, 16),
        "hits": torch.from_numpy(hits), "vel": torch.from_numpy(hits * 0.8), "off": torch.zeros(4, 16, 9),
        "mask": torch.ones(4, 16),
    }  # fmt: skip
    opt = torch.optim.Adam(dm.parameters(), lr=1e-2)
    first = last = None
    for _ in range(30):
        opt.zero_grad()
        bce, n, reg = drum_losses(dm, b)
        loss = bce / n + reg
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
        last = loss.item()
    assert last < 0.5 * first


# ----------------------------------------------------------------------------------------------- data prep


def test_chord_and_key_parsing():
    from models.common import parse_key

    assert parse_chord("C#:min7") == (1, "min7")
    assert parse_chord("G:sus4(b7)") == (7, "sus4")
    assert parse_chord("F:maj/3") == (5, "maj")
    assert parse_chord("Bbm") == (10, "min")
    assert parse_chord("N").root is None
    assert parse_chord("N.C.") == (None, "N")
    assert parse_key("A minor") == (9, "minor")
    assert parse_key("Eb", "major") == (3, "major")
    assert parse_key("a:min") == (9, "minor")
    assert parse_key("A minor", "major") == (9, "major")  # an explicit mode wins
    with pytest.raises(InputError, match="H"):
        parse_key("H")
    with pytest.raises(InputError, match="dorian"):
        parse_key("D dorian")
    with pytest.raises(InputError, match="lydian"):
        parse_key("D", "lydian")


#: Every chord quality POP909 writes (``chord_midi.txt``, ``key_audio.txt``) and what the models read it as.
#: The committed checkpoints were trained on this reading, so it must not change.
POP909_QUALITIES = {
    "7": "7", "7/3": "7", "7/5": "7", "7/b7": "7", "aug": "aug", "dim": "dim", "dim7": "dim7",
    "hdim7": "hdim7", "maj": "maj", "maj/3": "maj", "maj/5": "maj", "maj6": "maj6", "maj7": "maj7",
    "maj7/3": "maj7", "maj7/5": "maj7", "maj7/7": "maj7", "min": "min", "min/5": "min", "min/b3": "min",
    "min6": "min6", "min7": "min7", "min7/5": "min7", "min7/b7": "min7", "minmaj7": "min", "sus2": "sus2",
    "sus4": "sus4", "sus4(b7)": "sus4",
}  # fmt: skip
POP909_ROOTS = {
    "C": 0, "C#": 1, "Db": 1, "D": 2, "Eb": 3, "E": 4, "F": 5, "F#": 6, "Gb": 6, "G": 7, "Ab": 8, "A": 9,
    "Bb": 10, "B": 11,
}  # fmt: skip


def test_pop909_chord_labels_keep_their_model_encoding():
    from models.common import QUALITIES

    for name, pc in POP909_ROOTS.items():
        for written, quality in POP909_QUALITIES.items():
            assert parse_chord(f"{name}:{written}") == (pc, quality)
    assert QUALITIES == (
        "maj",
        "min",
        "dim",
        "aug",
        "sus4",
        "sus2",
        "7",
        "maj7",
        "min7",
        "hdim7",
        "dim7",
        "maj6",
        "min6",
    )


def test_the_pinned_pop909_table_covers_every_label_of_the_data_set():
    from pathlib import Path

    data = Path(__file__).resolve().parents[2] / "shared" / "data" / "pop909"
    files = sorted(data.glob("*/chord_midi.txt")) + sorted(data.glob("*/key_audio.txt"))
    if not files:
        pytest.skip(f"POP909 is not at {data}")
    labels = {line.split()[2] for f in files for line in f.read_text().splitlines() if len(line.split()) >= 3}
    assert len(labels) > 100
    for label in labels - {"N"}:
        root, written = label.split(":", 1)
        assert root in POP909_ROOTS and written in POP909_QUALITIES, label


def test_model_chords_agree_with_core_music_theory():
    from core.music import theory
    from models.common import QUALITIES

    labels = [f"D:{q}" for q in theory.CHORD_QUALITIES] + [f"E{a}" for a in theory.QUALITY_ALIASES]
    labels += ["Bb:min7/b7", "F#:sus4(b7)", "C:maj(9)/3", "Am", "G7", "Cm7b5", "C+", "Co7"]
    for label in labels:
        ours, theirs = parse_chord(label), theory.parse_chord(label)
        assert ours.root == theirs.root_pc and ours.quality in QUALITIES, label
        if theirs.quality != "5":  # a power chord has no third; the models read it as major
            assert set(chord_tones(ours)) <= set(theirs.pitch_classes), label


def test_groove_quantisation_of_a_midi_made_in_code(tmp_path):
    import pretty_midi

    from models.data_groove import quantize_performance

    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)  # a 16th note is 0.125 s
    kit = pretty_midi.Instrument(program=0, is_drum=True)
    for start, pitch, vel in [(0.0, 36, 100), (0.5, 38, 80), (0.26, 42, 64), (1.0, 35, 127), (1.0, 36, 50)]:
        kit.notes.append(pretty_midi.Note(velocity=vel, pitch=pitch, start=start, end=start + 0.05))
    kit.notes.append(pretty_midi.Note(velocity=90, pitch=60, start=0.75, end=0.8))  # not a drum class
    pm.instruments.append(kit)
    path = tmp_path / "groove.mid"
    pm.write(str(path))
    hits, vel, off, bpm = quantize_performance(path)
    assert bpm == pytest.approx(120.0, abs=0.01)
    assert hits.shape == (16, 9)
    assert sorted(zip(*np.nonzero(hits), strict=True)) == [(0, 0), (2, 2), (4, 1), (8, 0)]
    assert off[2, 2] == pytest.approx(0.08, abs=0.01)  # 0.26 s is 0.08 of a step late
    assert vel[8, 0] == pytest.approx(1.0)  # two kicks on one step: the louder is kept
    assert vel[4, 1] == pytest.approx(80 / 127)


def test_pop909_song_parsing_bass_melody_and_key_correction(tmp_path):
    import pretty_midi

    from models.data_pop909 import correct_keys, parse_song

    song = tmp_path / "001"
    song.mkdir()
    beats = [(0.5 * i, 1.0 if i % 2 == 0 else 0.0, 1.0 if i % 4 == 0 else 0.0) for i in range(16)]  # 120 bpm
    (song / "beat_midi.txt").write_text("\n".join(f"{t} {a} {b}" for t, a, b in beats))
    (song / "chord_midi.txt").write_text(
        "0.0\t2.0\tC:maj\n2.0\t4.0\tF:maj\n4.0\t6.0\tG:maj\n6.0\t8.0\tC:maj\n"
    )
    (song / "key_audio.txt").write_text("0.0\t8.0\tA:min\n")  # mislabelled: the chords say C major
    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    mel, bridge, piano = (pretty_midi.Instrument(0, name=n) for n in ("MELODY", "BRIDGE", "PIANO"))
    mel.notes.append(pretty_midi.Note(velocity=90, pitch=72, start=0.0, end=0.5))  # 4 steps
    mel.notes.append(pretty_midi.Note(velocity=90, pitch=74, start=1.0, end=1.25))
    piano.notes.append(pretty_midi.Note(velocity=80, pitch=36, start=0.0, end=1.0))  # bass C2, 8 steps
    piano.notes.append(pretty_midi.Note(velocity=80, pitch=48, start=0.0, end=2.0))  # sounds on after C2 ends
    piano.notes.append(pretty_midi.Note(velocity=80, pitch=41, start=2.0, end=2.5))  # F2 on the chord change
    piano.notes.append(pretty_midi.Note(velocity=80, pitch=64, start=2.0, end=2.5))  # above 59: not bass
    pm.instruments += [mel, bridge, piano]
    pm.write(str(song / "001.mid"))
    s = parse_song(song)
    assert len(s["pos"]) == 64 and list(s["pos"][:17]) == [*range(16), 0]
    assert s["mel_on"][0] == 72 and s["mel_hold"][1:4].all() and not s["mel_hold"][4]
    assert s["mel_on"][8] == 74
    assert s["bass_on"][0] == 36 and s["bass_hold"][1:8].all()
    assert s["bass_on"][8] == -1 and not s["bass_hold"][8:16].any()  # the held C3 is not a new bass note
    assert s["bass_on"][16] == 41
    assert (s["root"][:16] == 0).all() and (s["root"][16:32] == 5).all()
    # the A minor label is corrected to C major (the relative key) from the chords
    assert (s["tonic"] == 0).all() and not s["minor"].any()
    t, m = correct_keys(np.full(4, 9), np.ones(4, bool), np.array([9, 2, 4, 9]), np.array([1, 1, 0, 1]))
    assert (t == 9).all() and m.all()  # a real A minor progression keeps its label


def test_numpy_lstm_copy_is_made_once_and_again_after_the_weights_change():
    import torch

    from models.common import NumpyLSTM

    lstm = torch.nn.LSTM(3, 4, num_layers=2)
    first = NumpyLSTM.of(lstm)
    assert NumpyLSTM.of(lstm) is first  # reused: a song samples a dozen sequences from one model
    with torch.no_grad():
        lstm.weight_hh_l1.add_(1.0)  # e.g. a training step
    again = NumpyLSTM.of(lstm)
    assert again is not first and not np.allclose(again.stacked[0], first.stacked[0])
    x = np.ones((1, 1, 3), np.float32)
    h, _ = again.step(x[0, 0], again.zero_state())
    assert np.allclose(h, lstm(torch.from_numpy(x))[0].detach().numpy()[0, 0], atol=1e-5)
