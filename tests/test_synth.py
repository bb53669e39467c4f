"""The SoundFont reader and the numba synthesiser, on notes made here."""

from __future__ import annotations

import io

import numpy as np
import pytest

from core.errors import InputError
from core.music import sf2, synth
from core.music.midi import Note, Part, encode_midi
from core.music.render import default_soundfont_path

SR = 44100


@pytest.fixture(scope="module")
def font() -> sf2.SoundFont:
    return sf2.load_soundfont(default_soundfont_path())


def _pitch_hz(y: np.ndarray, sr: int, lo: float = 50.0, hi: float = 2000.0) -> float:
    """The strongest spectral peak of the mono mix between lo and hi (parabolic interpolation)."""
    x = y.mean(axis=0).astype(np.float64)
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    f = np.fft.rfftfreq(x.size, 1 / sr)
    band = np.flatnonzero((f >= lo) & (f <= hi))
    k = band[np.argmax(spec[band])]
    a, b, c = np.log(spec[k - 1 : k + 2] + 1e-12)
    return float((k + 0.5 * (a - c) / (a - 2 * b + c)) * sr / x.size)


def _rms(y: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))


def _note(pitch=69, velocity=100, program=0, start=0.0, end=2.0, bpm=60.0, end_beat=3.0, pan=None) -> bytes:
    part = Part("x", program=program, notes=[Note(start, end, pitch, velocity)], pan=pan)
    return encode_midi([part], bpm=bpm, end_beat=end_beat)


def test_the_bundled_soundfont_parses_into_playable_regions(font):
    assert (0, 0) in font.presets and (128, 0) in font.presets  # a piano and the standard kit
    r = font.regions
    c = sf2.COL
    assert r.shape[1] == len(sf2.COLUMNS) and r.shape[0] > 1000
    assert np.all(r[:, c["start"]] < r[:, c["end"]]) and np.all(r[:, c["end"]] <= font.samples.size)
    assert np.all((r[:, c["key_lo"]] <= r[:, c["key_hi"]]) & (r[:, c["key_hi"]] <= 127))
    assert font.samples.dtype == np.float32 and np.abs(font.samples).max() <= 1.0
    # an unknown program falls back to bank 0, an unknown kit to the standard kit
    assert np.array_equal(font.preset_regions(5, 0), font.presets[(0, 0)])
    assert np.array_equal(font.preset_regions(128 + 99, 0), font.presets[(128, 0)])


def test_malformed_soundfonts_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="RIFF"):
        sf2.parse_soundfont(b"not a soundfont")
    with pytest.raises(ValueError, match="missing"):
        sf2.parse_soundfont(b"RIFF\x04\x00\x00\x00sfbk")


@pytest.mark.parametrize(("transpose", "expected"), [(0, 440.0), (12, 880.0), (-5, 440.0 * 2 ** (-5 / 12))])
def test_a_note_sounds_at_its_pitch_and_transposes(font, transpose, expected):
    y = synth.render(font, _note(program=80), sr=SR, transpose=transpose)  # square lead: steady partials
    assert y.shape[0] == 2 and y.dtype == np.float32
    hz = _pitch_hz(y[:, SR // 4 : 2 * SR], SR, lo=0.8 * expected, hi=1.25 * expected)
    assert abs(1200 * np.log2(hz / expected)) < 10  # cents


def test_pitch_bend_moves_the_pitch_by_the_bend_range(font):
    y = synth.render(font, _note(program=80), sr=SR)
    midi = encode_midi(
        [Part("x", program=80, notes=[Note(0, 2, 69, 100)])], bpm=60.0, end_beat=3, pitch_bend=8191
    )
    bent = synth.render(font, midi, sr=SR)  # full bend up, default range 2 semitones
    held = slice(SR // 4, 2 * SR)
    ratio = _pitch_hz(bent[:, held], SR, 400, 600) / _pitch_hz(y[:, held], SR, 400, 600)
    assert abs(1200 * np.log2(ratio) - 200) < 10


def test_velocity_sets_the_level_as_its_square(font):
    soft = _rms(synth.render(font, _note(velocity=40), sr=SR))
    loud = _rms(synth.render(font, _note(velocity=120), sr=SR))
    # 40 dB log of (v/127) (rustysynth's curve); the soundfont's velocity layers may differ a little
    assert 20 * np.log10(loud / soft) == pytest.approx(40 * np.log10(120 / 40), abs=4.0)


def test_pan_moves_energy_between_channels(font):
    left = synth.render(font, _note(pan=0), sr=SR)
    right = synth.render(font, _note(pan=127), sr=SR)
    # the dry note is fully to one side; only the (centred) reverb reaches the other channel
    assert _rms(left[0]) > 4 * _rms(left[1]) and _rms(right[1]) > 4 * _rms(right[0])


def test_a_note_releases_after_its_note_off(font):
    y = synth.render(font, _note(program=80, end=1.0, end_beat=4.0), sr=SR)  # 1 s note, 4 s file
    assert y.shape[1] == 4 * SR  # until the last event
    held, after = _rms(y[:, SR // 2 : SR]), _rms(y[:, 2 * SR :])
    assert held > 0.01 and after < held / 100  # the release and the reverb have died away


def test_time_scale_moves_every_event(font):
    midi = encode_midi(
        [Part("x", program=80, notes=[Note(0, 0.5, 69, 100), Note(2, 2.5, 69, 100)])], bpm=120, end_beat=4
    )
    for scale in (1.0, 2.0):
        y = synth.render(font, midi, sr=SR, time_scale=scale)
        assert y.shape[1] == round(2.0 * scale * SR)
        start = round(0.75 * scale * SR)  # after the first note's release, before the second note
        onset = start + np.argmax(np.abs(y[0, start:]) > 0.01)  # the second note: at 1 s x scale
        assert abs(onset / SR - 1.0 * scale) < 0.01


def test_a_closed_hihat_chokes_an_open_one(font):
    def hats(notes):
        midi = encode_midi([Part("d", is_drum=True, notes=notes)], bpm=60, end_beat=3)
        return synth.render(font, midi, sr=SR)

    open_alone = hats([Note(0, 2, 46, 110)])
    choked = hats([Note(0, 2, 46, 110), Note(0.5, 0.6, 42, 110)])
    closed_alone = hats([Note(0.5, 0.6, 42, 110)])
    # once the closed hat (struck at 0.5 s) has died away, the open one rings on alone, but not when choked
    tail = slice(int(0.9 * SR), int(1.3 * SR))
    assert _rms(open_alone[:, tail]) > 0.0003
    assert _rms(choked[:, tail]) < 0.25 * _rms(open_alone[:, tail]) + 1.5 * _rms(closed_alone[:, tail])


def test_rendering_is_deterministic_and_has_a_given_length(font):
    midi = _note(program=0)
    a = synth.render(font, midi, sr=22050, n=12345)
    b = synth.render(font, midi, sr=22050, n=12345)
    assert a.shape == (2, 12345) and np.array_equal(a, b)


def test_events_match_mido_with_running_status_and_tempo_changes():
    import mido

    mf = mido.MidiFile(ticks_per_beat=480)
    conductor, track = mido.MidiTrack(), mido.MidiTrack()
    conductor.append(mido.MetaMessage("set_tempo", tempo=500000, time=0))
    conductor.append(mido.MetaMessage("set_tempo", tempo=250000, time=960))
    for i in range(6):  # note_on with velocity 0 as note-off: written with running status by mido
        track += [mido.Message("note_on", note=60 + i, velocity=90, time=0 if i == 0 else 240),
                  mido.Message("note_on", note=60 + i, velocity=0, time=240)]  # fmt: skip
    track.append(mido.Message("control_change", control=10, value=20, time=0))
    mf.tracks += [conductor, track]
    buf = io.BytesIO()
    mf.save(file=buf)
    events, end = synth._events(buf.getvalue(), 1.0)
    ons = [t for t, status, *_ in events if status == 0x90]
    offs = [t for t, status, *_ in events if status == 0x80]
    # one note per beat: beats 0 and 1 at 120 bpm (0.5 s each), then 240 bpm (0.25 s per beat)
    assert ons == pytest.approx([0.0, 0.5, 1.0, 1.25, 1.5, 1.75])
    assert offs == pytest.approx([0.25, 0.75, 1.125, 1.375, 1.625, 1.875])
    assert events[-1][1:] == (0xB0, 0, 10, 20) and end == pytest.approx(1.875)
    with pytest.raises(InputError):
        synth._events(b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\x00\x00\x00\x04\x00\x90", 1.0)
    with pytest.raises(InputError):
        synth._events(b"RIFF....", 1.0)
