"""MIDI writing and reading: exact tempo, notes, drums channel, key signature, round trips."""

from __future__ import annotations

import io

import pretty_midi
import pytest

from core.errors import InputError
from core.music.midi import (
    Note,
    Part,
    encode_midi,
    key_signature_number,
    midi_from_bytes,
    midi_to_bytes,
    midi_to_parts,
    parts_to_midi,
)
from core.music.theory import parse_key


def _song():
    keys = Part(
        "keys", program=4, notes=[Note(0.0, 1.0, 60, 100), Note(1.5, 2.25, 64, 80), Note(3.0, 4.0, 67, 90)]
    )
    drums = Part(
        "drums",
        is_drum=True,
        notes=[Note(i * 0.5, i * 0.5 + 0.25, 36 if i % 2 == 0 else 42, 110) for i in range(8)],
    )
    return [keys, drums]


@pytest.mark.parametrize("bpm", [40.0, 97.0, 120.0, 173.5, 240.0])
def test_encoded_midi_has_exact_tempo_and_note_times(bpm):
    data = encode_midi(_song(), bpm=bpm, key=parse_key("A minor"), end_beat=8)
    pm = pretty_midi.PrettyMIDI(io.BytesIO(data))  # read by an independent parser
    _, tempi = pm.get_tempo_changes()
    assert len(tempi) == 1 and abs(tempi[0] - bpm) < 1e-3
    keys, drums = pm.instruments
    spb = 60.0 / bpm
    assert [round(n.start / spb, 4) for n in keys.notes] == [0.0, 1.5, 3.0]
    assert [round(n.end / spb, 4) for n in keys.notes] == [1.0, 2.25, 4.0]
    assert [n.pitch for n in keys.notes] == [60, 64, 67] and [n.velocity for n in keys.notes] == [100, 80, 90]
    assert keys.program == 4 and keys.name == "keys" and not keys.is_drum
    assert drums.is_drum and len(drums.notes) == 8
    # MIDI stores whole microseconds per beat: the drift stays under a microsecond per beat
    assert all(abs(n.start / spb - i * 0.5) < 1e-5 for i, n in enumerate(drums.notes))
    assert pm.key_signature_changes[0].key_number == 12 + 9  # A minor
    assert pm.time_signature_changes[0].numerator == 4
    # the end marker keeps the file going to beat 8
    assert abs(pm.get_end_time() - 8 * spb) < 1e-5


def test_drums_on_channel_10_and_programs():
    import mido

    mf = mido.MidiFile(file=io.BytesIO(encode_midi(_song(), bpm=100)))
    channels = {(i, m.channel) for i, t in enumerate(mf.tracks) for m in t if m.type == "note_on"}
    assert channels == {(1, 0), (2, 9)}


def test_round_trip_parts_and_tempo():
    pm = parts_to_midi(_song(), bpm=97.0, key=parse_key("Eb major"))
    parts, bpm = midi_to_parts(midi_from_bytes(midi_to_bytes(pm)))
    assert abs(bpm - 97.0) < 1e-3
    orig = _song()
    for a, b in zip(parts, orig, strict=True):
        assert a.name == b.name and a.is_drum == b.is_drum
        assert len(a.notes) == len(b.notes)
        for x, y in zip(a.notes, b.notes, strict=True):
            assert abs(x.start - y.start) < 1e-3 and abs(x.end - y.end) < 1e-3
            assert (x.pitch, x.velocity) == (y.pitch, y.velocity)


def test_same_pitch_overlap_ends_previous_note():
    part = Part("lead", notes=[Note(0.0, 2.0, 60, 100), Note(1.0, 3.0, 60, 100)])
    pm = midi_from_bytes(encode_midi([part], bpm=120))
    notes = sorted(pm.instruments[0].notes, key=lambda n: n.start)
    assert len(notes) == 2
    assert (
        abs(notes[0].end - 0.5) < 1e-6 and abs(notes[1].start - 0.5) < 1e-6 and abs(notes[1].end - 1.5) < 1e-6
    )


def test_key_signature_numbers_follow_accidentals():
    assert key_signature_number(parse_key("C major")) == 0
    assert key_signature_number(parse_key("A minor")) == 21
    # D dorian has C major's notes: written as the minor key with no accidentals (A minor)
    assert key_signature_number(parse_key("D dorian")) == 21
    assert key_signature_number(parse_key("G mixolydian")) == 0
    pm = midi_from_bytes(encode_midi(_song(), bpm=120, key=parse_key("Bb major")))
    assert pretty_midi.key_number_to_key_name(pm.key_signature_changes[0].key_number) == "Bb Major"


@pytest.mark.parametrize("bpm", [39.9, 241, 0])
def test_bad_tempo(bpm):
    with pytest.raises(InputError, match="40-240"):
        encode_midi(_song(), bpm=bpm)


def test_corrupt_midi_is_an_input_error():
    with pytest.raises(InputError):
        midi_from_bytes(b"not midi at all")
    good = encode_midi(_song(), bpm=120)
    with pytest.raises(InputError):
        midi_from_bytes(good[:30] + b"\xff" * 10)
