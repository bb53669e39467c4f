"""Soundfont rendering: length, sample rate (pitch and timing), determinism, alignment, bad soundfonts."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from core.errors import InputError, ModelError
from core.music.midi import Note, Part, encode_midi
from core.music.render import render_midi, render_parts, render_stems

SR = 44100


def _f0(y: np.ndarray, sr: int, t0: float, t1: float) -> float:
    x = y[0, int(t0 * sr) : int(t1 * sr)].astype(np.float64)
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size), n=x.size * 16))
    return float(np.fft.rfftfreq(x.size * 16, 1 / sr)[np.argmax(spec)])


def _onset(y: np.ndarray, sr: int) -> float:
    return float(np.argmax(np.abs(y).max(axis=0) > 1e-3) / sr)


def _onsets(y: np.ndarray, sr: int, hop: int = 64) -> np.ndarray:
    """Times where the 1.5 ms-frame peak level jumps by 10x over the 10 ms before the previous frame (one
    per 100 ms; skipping one frame finds a note that starts late in a frame)."""
    env = np.abs(y).max(axis=0)
    frames = env[: env.size // hop * hop].reshape(-1, hop).max(axis=1)
    out: list[float] = []
    frames = np.concatenate([np.zeros(9), frames])
    for k in range(9, frames.size):
        if (
            frames[k] > 0.01
            and frames[k] > 10 * frames[k - 9 : k - 1].max()
            and (not out or (k - 9) * hop / sr - out[-1] > 0.1)
        ):
            out.append((k - 9) * hop / sr)
    return np.asarray(out)


def _a4(bpm=120.0, start=1.0, program=80):
    return encode_midi(
        [Part("lead", program=program, notes=[Note(start, start + 2.0, 69, 100)])], bpm=bpm, end_beat=8
    )


def test_render_length_rate_pitch_and_timing():
    y = render_midi(_a4(), sr=SR, seconds=3.0)
    assert y.dtype == np.float32 and y.shape == (2, 3 * SR)
    assert float(np.sqrt(np.mean(y**2))) > 1e-3  # not silent
    # A4 sounds at 440 Hz (within ~6 cents) and starts at beat 1 = 0.5 s at 120 bpm
    assert abs(_f0(y, SR, 0.7, 1.4) - 440.0) < 1.5
    assert abs(_onset(y, SR) - 0.5) < 0.005
    # natural length follows the MIDI end marker (8 beats = 4 s)
    assert abs(render_midi(_a4(), sr=SR).shape[1] / SR - 4.0) < 0.01


def test_render_other_rates_and_fallback_path():
    y = render_midi(_a4(), sr=22050, seconds=2.0)  # too far for the varispeed bend: resampled
    assert y.shape == (2, 44100)
    assert abs(_f0(y, 22050, 0.7, 1.4) - 440.0) < 1.5
    assert abs(_onset(y, 22050) - 0.5) < 0.005
    # a file that bends pitch itself takes the resampling path too (pitch must still be right)
    import io

    import pretty_midi

    pm = pretty_midi.PrettyMIDI(io.BytesIO(_a4()))
    pm.instruments[0].pitch_bends.append(pretty_midi.PitchBend(0, 0.0))
    buf = io.BytesIO()
    pm.write(buf)
    y2 = render_midi(buf.getvalue(), sr=SR, seconds=2.0)
    assert abs(_f0(y2, SR, 0.7, 1.4) - 440.0) < 1.5


def test_render_is_the_same_in_one_thread_and_in_two():
    midis = {
        "lead": _a4(),
        "drums": encode_midi(
            [Part("drums", is_drum=True, notes=[Note(i, i + 0.25, 36, 110) for i in range(6)])], bpm=120
        ),
        "bass": encode_midi([Part("bass", program=33, notes=[Note(0, 4, 40, 100)])], bpm=120),
    }
    a = render_stems(midis, sr=SR, workers=1)
    b = render_stems(midis, sr=SR, workers=2)
    assert list(a) == ["lead", "drums", "bass"]
    n = {v.shape[1] for v in a.values()}
    assert len(n) == 1  # padded to one length: sample-aligned
    for k in a:
        assert np.array_equal(a[k], b[k])
    # drums hit every beat: onsets every 0.5 s
    hits = _onsets(a["drums"], SR)
    assert len(hits) == 6
    assert np.allclose(hits, np.arange(6) * 0.5, atol=0.006)


def test_render_parts_matches_render_stems():
    part = Part("keys", program=0, notes=[Note(0, 1, 60, 100), Note(1, 2, 64, 100)])
    a = render_parts({"keys": part}, bpm=100.0, end_beat=4, sr=SR, seconds=2.5, workers=1)["keys"]
    b = render_stems({"keys": encode_midi([part], bpm=100.0, end_beat=4)}, sr=SR, seconds=2.5, workers=1)[
        "keys"
    ]
    assert np.array_equal(a, b)


def test_missing_soundfont_names_path(tmp_path):
    missing = tmp_path / "nope.sf2"
    with pytest.raises(ModelError, match=r"nope\.sf2"):
        render_midi(_a4(), sr=SR, soundfont=missing)


def test_corrupt_soundfont_from_setting(tmp_path, monkeypatch):
    bad = tmp_path / "bad.sf2"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00sfbk" + np.random.default_rng(0).bytes(2000))
    monkeypatch.setenv("SOUNDFONT", str(bad))
    with pytest.raises(ModelError, match=r"bad\.sf2"):
        render_midi(_a4(), sr=SR)
    junk = tmp_path / "junk.sf2"
    junk.write_bytes(b"hello")
    with pytest.raises(ModelError, match=r"junk\.sf2"):
        render_midi(_a4(), sr=SR, soundfont=junk)


def test_bad_inputs():
    with pytest.raises(InputError, match="not MIDI"):
        render_stems({"x": b"RIFF...."}, sr=SR)
    with pytest.raises(InputError, match="Sample rate"):
        render_midi(_a4(), sr=100)
    with pytest.raises(InputError, match="Render length"):
        render_midi(_a4(), sr=SR, seconds=-1)


def test_submit_midi_with_ratio_and_semitones_plays_faster_and_higher_but_keeps_drums():
    from core.music.midi import midi_to_bytes, parts_to_midi
    from core.music.render import StemRenderer

    keys = midi_to_bytes(parts_to_midi([Part("keys", notes=[Note(2, 3, 69, 100)])], bpm=120.0))  # A4 at 1 s
    snare = Part("drums", is_drum=True, notes=[Note(2, 2.5, 38, 110)])
    drums = midi_to_bytes(parts_to_midi([snare], bpm=120.0))
    with StemRenderer(sr=SR, seconds=2.0, workers=2) as r:
        r.submit_midi("keys", keys, ratio=2.0, semitones=3)
        r.submit_midi("drums", drums, ratio=2.0, semitones=3)
        r.submit_midi("plain", drums)
        got = dict(r.completed())
    assert sorted(got) == ["drums", "keys", "plain"] and all(y.shape == (2, 2 * SR) for y in got.values())
    assert _onset(got["keys"], SR) == pytest.approx(0.5, abs=0.01)  # beat 2 at 240 bpm
    assert _f0(got["keys"], SR, 0.55, 0.7) == pytest.approx(440 * 2 ** (3 / 12), rel=0.01)
    assert _onset(got["drums"], SR) == pytest.approx(0.5, abs=0.01)
    # the snare is not transposed: until its (earlier) note-off, the faster render is the plain one
    # moved earlier (aligned on their onsets: the synthesiser starts notes on 64-sample blocks)
    ia, ib = (int(np.argmax(np.abs(got[k][0]) > 1e-3)) for k in ("drums", "plain"))
    a, b = got["drums"][:, ia : ia + SR // 10], got["plain"][:, ib : ib + SR // 10]
    assert np.abs(b).max() > 0.05 and np.abs(a - b).max() < 1e-4


def test_rewrite_midi_scales_time_transposes_and_keeps_bends():
    import io

    import pretty_midi

    from core.music.render import rewrite_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    inst = pretty_midi.Instrument(program=0)
    inst.notes.append(pretty_midi.Note(100, 60, 0.0, 1.0))
    inst.pitch_bends.append(pretty_midi.PitchBend(1000, 0.5))
    pm.instruments.append(inst)
    buf = io.BytesIO()
    pm.write(buf)
    out = pretty_midi.PrettyMIDI(io.BytesIO(rewrite_midi(buf.getvalue(), time_scale=0.5, transpose=-2)))
    note = out.instruments[0].notes[0]
    assert (note.pitch, note.start, note.end) == (58, 0.0, pytest.approx(0.5, abs=1e-3))
    bend = out.instruments[0].pitch_bends[0]
    assert (bend.pitch, bend.time) == (1000, pytest.approx(0.25, abs=1e-3))
    with pytest.raises(InputError, match="Corrupt MIDI"):
        rewrite_midi(b"MThd\x00garbage")


def test_long_silences_are_skipped_and_the_passages_put_back_in_place():
    from core.music.render import StemRenderer, skip_silences

    # a lead that plays at 8 s and at 20 s of a 30 s song (120 bpm: 2 beats a second)
    part = Part("lead", program=80, notes=[Note(16 + i, 16.5 + i, 69, 100) for i in range(4)])
    part.notes += [Note(40 + i, 40.5 + i, 72, 100) for i in range(4)]
    packed, end_beat, layout = skip_silences(part, bpm=120.0)
    assert [(a, b) for a, b, _ in layout] == [(16, 0.0), (40, 9.5)]  # 3.5 beats of notes + 6 of tail
    assert min(n.start for n in packed.notes) == 0.0 and end_beat == pytest.approx(19.0)
    assert skip_silences(Part("keys", notes=[Note(0, 40, 60, 90)]), bpm=120.0) is None  # nothing to cut
    with StemRenderer(sr=SR, seconds=30.0, workers=1) as r:
        r.submit_part("lead", part, bpm=120.0, end_beat=60)
        y = r.collect()["lead"]
    assert y.shape == (2, 30 * SR)
    # each passage starts where its first note is (the notes inside a passage overlap their releases)
    assert np.allclose(_onsets(y, SR), [8.0, 20.0], atol=0.006)
    assert _f0(y, SR, 20.05, 20.4) == pytest.approx(523.25, rel=0.01)
    assert np.abs(y[:, : 8 * SR - 100]).max() == 0.0  # the skipped intro is silent


def test_midi_files_skip_long_silences_too_but_only_with_one_tempo():
    import io

    import mido

    from core.music.midi import midi_to_bytes, parts_to_midi
    from core.music.render import StemRenderer, _pack_silences

    part = Part("lead", program=80, notes=[Note(16 + i, 16.5 + i, 69, 100) for i in range(4)])
    part.notes += [Note(40 + i, 40.5 + i, 72, 100) for i in range(4)]
    midi = midi_to_bytes(parts_to_midi([part], bpm=120.0, end_beat=60))
    with StemRenderer(sr=SR, seconds=20.0, workers=1) as r:
        r.submit_midi("lead", midi, ratio=1.5, semitones=-12)  # 180 bpm: passages at 5.33 s and 13.33 s
        y = r.collect()["lead"]
    assert y.shape == (2, 20 * SR)
    assert np.allclose(_onsets(y, SR), [16 / 3, 40 / 3], atol=0.006)
    assert _f0(y, SR, 40 / 3 + 0.05, 40 / 3 + 0.3) == pytest.approx(261.63, rel=0.01)
    assert np.abs(y[:, : 5 * SR]).max() == 0.0
    # a tempo change after the start: ticks are not proportional to seconds, nothing is cut
    mf = mido.MidiFile(file=io.BytesIO(midi))
    mf.tracks[0].insert(1, mido.MetaMessage("set_tempo", tempo=400000, time=960))
    assert _pack_silences(mf) is None


def test_a_malformed_soundfont_is_a_model_error_naming_it(tmp_path):
    junk = tmp_path / "junk.sf2"
    junk.write_bytes(b"RIFF\x10\x00\x00\x00sfbkLIST" + b"\x00" * 16)  # the right header, no data
    with pytest.raises(ModelError, match=r"junk\.sf2"):
        render_midi(_a4(), sr=SR, soundfont=junk)


def test_parts_and_midi_skip_the_same_silences():
    from core.music.midi import encode_midi

    part = Part("lead", program=80, notes=[Note(16 + i, 16.5 + i, 69, 100) for i in range(4)])
    part.notes += [Note(40.3 + i, 40.8 + i, 72, 100) for i in range(4)]
    a = render_parts({"lead": part}, bpm=113.0, end_beat=60, sr=SR, seconds=30.0, workers=1)["lead"]
    b = render_stems({"lead": encode_midi([part], bpm=113.0, end_beat=60)}, sr=SR, seconds=30.0, workers=1)
    b = b["lead"]
    for t0 in (5, 15):  # each passage starts within one synthesiser block (1.3 ms) in both renders
        starts = [t0 + np.argmax(np.abs(y[0, t0 * SR :]) > 1e-3) / SR for y in (a, b)]
        assert abs(starts[0] - starts[1]) < 0.0015

    def env(y, hop=441):
        return np.sqrt(np.square(y[:, : y.shape[1] // hop * hop]).reshape(2, -1, hop).mean(axis=(0, 2)))

    assert np.corrcoef(env(a), env(b))[0, 1] > 0.99


def _long_part() -> Part:
    """100 s at 120 bpm: a short note every beat, and a held C4 that a later piece strikes again."""
    notes = [Note(float(b), b + 0.5, 52 + b % 5, 100) for b in range(200)]
    notes.append(Note(60.0, 160.0, 60, 90))  # held from 30 s, struck again at 70.5 s
    notes += [Note(float(b), b + 1.0, 60, 90) for b in (141, 150)]
    return Part("lead", program=80, notes=notes)


def test_split_part_cuts_at_note_starts_and_keeps_every_note_once():
    from core.music.render import PIECE_S, TAIL_S, split_part

    part = _long_part()
    pieces = split_part(part, bpm=120.0, end_beat=210.0)
    starts = [a for a, _, _ in pieces]
    assert len(pieces) == int(np.ceil(105.0 / PIECE_S)) and starts[0] == 0.0
    assert all(a in {n.start for n in part.notes} for a in starts[1:])  # cuts at note starts
    assert all(abs(b - a - 210.0 / len(pieces)) < 2 for a, b in itertools.pairwise(starts))
    back = sorted((a + n.start, n.pitch) for a, piece, _ in pieces for n in piece.notes)
    assert back == sorted((n.start, n.pitch) for n in part.notes)  # every note once, in place
    for k, (a, piece, end) in enumerate(pieces):
        assert min(n.start for n in piece.notes) == 0.0
        if k < len(pieces) - 1:  # a middle piece lasts TAIL_S (in beats) past its last note
            assert end == pytest.approx(max(n.end for n in piece.notes) + TAIL_S * 2)
        else:
            assert end == pytest.approx(210.0 - a)
    # the held C4 ends where C4 starts again (beat 141), as one render of the whole part would
    held = [a + n.end for a, piece, _ in pieces for n in piece.notes if n.pitch == 60 and a + n.start == 60.0]
    assert held == [141.0]
    short = Part("keys", notes=[Note(0, 1, 60, 90)])
    assert split_part(short, bpm=120.0, end_beat=8.0) == [(0.0, short, 8.0)]
    # a part that starts late is never cut before its first note: no piece is empty
    for first in (110, 150, 230):
        late = Part("lead", notes=[Note(float(b), b + 0.5, 60, 90) for b in range(first, 400)])
        assert all(piece.notes for _, piece, _ in split_part(late, bpm=120.0, end_beat=400.0))


def _env(y: np.ndarray, hop: int = 2205) -> np.ndarray:
    return np.sqrt(np.square(y[:, : y.shape[1] // hop * hop]).reshape(2, -1, hop).mean(axis=(0, 2)))


def test_long_stems_render_in_pieces_that_sound_as_one_render(monkeypatch):
    import core.music.render as R

    part = _long_part()
    whole_midi = encode_midi([part], bpm=120.0, end_beat=210)
    pieces = render_parts({"lead": part}, bpm=120.0, end_beat=210, sr=SR, seconds=105.0, workers=2)["lead"]
    in_process = render_parts({"lead": part}, bpm=120.0, end_beat=210, sr=SR, seconds=105.0, workers=1)[
        "lead"
    ]
    assert np.array_equal(pieces, in_process)  # the cuts do not depend on the number of cores
    from_midi = render_stems({"lead": whole_midi}, sr=SR, seconds=105.0, workers=2)["lead"]
    monkeypatch.setattr(R, "PIECE_S", 1e9)
    whole = render_parts({"lead": part}, bpm=120.0, end_beat=210, sr=SR, seconds=105.0, workers=1)["lead"]
    assert pieces.shape == whole.shape == from_midi.shape == (2, 105 * SR)
    loud = _env(whole) > 1e-3
    for y in (pieces, from_midi):
        # 50 ms levels within 1 dB nearly everywhere (notes start on the exact sample in a piece,
        # on the synthesiser's 64-sample block in one render), and every onset in place
        diff = np.abs(20 * np.log10(_env(y)[loud] / _env(whole)[loud]))
        assert np.median(diff) < 0.05 and np.mean(diff > 1.0) < 0.01
        assert np.corrcoef(_env(y), _env(whole))[0, 1] > 0.999
        hits_a, hits_b = _onsets(y, SR), _onsets(whole, SR)
        assert len(hits_a) == len(hits_b) and np.abs(hits_a - hits_b).max() < 0.0015


def test_midi_files_split_at_the_same_note_starts_only_with_one_tempo():
    import io

    import mido

    from core.music.render import _split_midi, split_part

    part = _long_part()
    midi = encode_midi([part], bpm=120.0, end_beat=210)
    pieces = _split_midi(mido.MidiFile(file=io.BytesIO(midi)))
    assert [round(s, 6) for _, s, _ in pieces] == [
        a / 2 for a, _, _ in split_part(part, bpm=120.0, end_beat=210)
    ]
    assert [last for _, _, last in pieces] == [False] * (len(pieces) - 1) + [True]
    # each piece keeps the program and starts with a note
    for piece, _, _ in pieces:
        msgs = [m for m in mido.merge_tracks(piece.tracks)]
        assert any(m.type == "program_change" for m in msgs)
        notes = [m for m in msgs if m.type == "note_on" and m.velocity > 0]
        assert notes and sum(m.time for m in msgs[: msgs.index(notes[0]) + 1]) == 0
    mf = mido.MidiFile(file=io.BytesIO(midi))
    mf.tracks[0].insert(1, mido.MetaMessage("set_tempo", tempo=400000, time=960))
    assert _split_midi(mf) is None


def test_pieces_are_assembled_in_order_whatever_order_they_arrive_in():
    from core.music.render import _Assembly

    rng = np.random.default_rng(5)
    n = 1000
    # overlapping tails, a gap, a piece running past the end and one starting beyond it
    spans = [(0, 300), (250, 200), (600, 150), (700, 500), (1100, 50)]
    pieces = [rng.standard_normal((2, m)).astype(np.float32) for _, m in spans]
    expected = np.zeros((2, n), np.float32)
    for (offset, _), y in zip(spans, pieces, strict=True):
        m = max(0, min(y.shape[1], n - offset))
        expected[:, offset : offset + m] += y[:, :m]
    for order in ([0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [2, 0, 4, 1, 3]):
        asm = _Assembly(len(spans))
        for k in order:
            asm.add(k, spans[k][0], pieces[k], n)
        np.testing.assert_array_equal(asm.out, expected)
        assert asm.out.shape == (2, n) and asm.out.dtype == np.float32
    single = _Assembly(1)
    single.add(0, 0, pieces[0], None)
    assert single.out is pieces[0]
