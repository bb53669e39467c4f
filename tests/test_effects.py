"""Effect specs, chains, time-stretch/pitch-shift and harmonic-percussive separation, measured on signals
made in code."""

from __future__ import annotations

import numpy as np
import pytest

from core.audio import effects as fx
from core.audio.separate import split_harmonic_percussive
from core.errors import InputError
from tests.conftest import SR, click_track, sine


def _noise(seconds: float = 2.0, amp: float = 0.1) -> np.ndarray:
    rng = np.random.default_rng(1)
    return (amp * rng.standard_normal((2, int(seconds * SR)))).astype(np.float32)


def band_db(y: np.ndarray, lo: float, hi: float) -> float:
    spec = np.abs(np.fft.rfft(y[0].astype(np.float64))) ** 2
    f = np.fft.rfftfreq(y.shape[1], 1 / SR)
    return float(10 * np.log10(spec[(f >= lo) & (f < hi)].sum() + 1e-20))


def peak_hz(y: np.ndarray) -> float:
    x = y[0].astype(np.float64) * np.hanning(y.shape[1])
    spec = np.abs(np.fft.rfft(x))
    return float(np.fft.rfftfreq(y.shape[1], 1 / SR)[spec.argmax()])


def onset_times(y: np.ndarray, *, rel: float = 0.05) -> np.ndarray:
    """Times where a 5 ms energy envelope rises above ``rel`` of its maximum (one per click)."""
    hop = int(0.005 * SR)
    e = np.square(y[0, : y.shape[1] // hop * hop].reshape(-1, hop)).mean(axis=1)
    above = e > rel * e.max()
    starts = np.flatnonzero(above[1:] & ~above[:-1]) + 1
    return starts * hop / SR


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (lambda: fx.EQ(low_db=30.0), "EQ.low_db"),
        (lambda: fx.Reverb(room_size=1.5), "Reverb.room_size"),
        (lambda: fx.Delay(seconds=0.0), "Delay.seconds"),
        (lambda: fx.Compressor(ratio=0.5), "Compressor.ratio"),
        (lambda: fx.Chorus(rate_hz=50.0), "Chorus.rate_hz"),
        (lambda: fx.Distortion(drive_db=-1.0), "Distortion.drive_db"),
        (lambda: fx.Filter(mode="bandpass"), "Filter.mode"),
        (lambda: fx.Filter(cutoff_hz=float("nan")), "Filter.cutoff_hz"),
        (lambda: fx.Reverb(wet="loud"), "Reverb.wet"),
    ],
)
def test_bad_effect_values_name_the_field(spec, field):
    with pytest.raises(InputError, match=field.replace(".", r"\.")):
        spec()


def test_effect_dict_round_trip_and_unknowns():
    chain = (fx.Reverb(room_size=0.7), fx.EQ(high_db=-3), fx.Filter(mode="highpass", cutoff_hz=120))
    back = fx.chain_from_list([e.to_dict() for e in chain])
    assert back == chain
    with pytest.raises(InputError, match="flanger"):
        fx.effect_from_dict({"type": "flanger"})
    with pytest.raises(InputError, match="size"):
        fx.effect_from_dict({"type": "reverb", "size": 1})
    with pytest.raises(InputError, match="limit is 16"):
        fx.chain_from_list([{"type": "eq"}] * 17)
    schema = fx.effects_schema()
    assert {v["properties"]["type"]["const"] for v in schema["oneOf"]} == set(fx.EFFECT_TYPES)


def test_eq_moves_band_energy():
    y = _noise()
    out = fx.apply_chain(y, sr=SR, chain=[fx.EQ(low_db=12.0, high_db=-12.0)])
    assert band_db(out, 20, 100) - band_db(y, 20, 100) == pytest.approx(12.0, abs=1.5)
    assert band_db(out, 10000, 16000) - band_db(y, 10000, 16000) == pytest.approx(-12.0, abs=1.5)
    assert abs(band_db(out, 900, 1100) - band_db(y, 900, 1100)) < 2.0
    mid = fx.apply_chain(y, sr=SR, chain=[fx.EQ(mid_db=9.0, mid_hz=1000.0)])
    assert band_db(mid, 950, 1050) - band_db(y, 950, 1050) == pytest.approx(9.0, abs=1.0)


def test_reverb_adds_a_tail_and_chain_is_fresh_each_call():
    y = np.zeros((2, 2 * SR), np.float32)
    y[:, : SR // 2] = _noise(0.5, 0.3)
    dry_tail = np.abs(fx.apply_chain(y, sr=SR, chain=[])[:, SR // 2 + 2205 : SR]).max()
    out = fx.apply_chain(y, sr=SR, chain=[fx.Reverb(room_size=0.8, wet=0.5)])
    tail = np.sqrt(np.mean(out[:, SR // 2 + 2205 : SR] ** 2))
    assert dry_tail == 0.0
    assert tail > 1e-3
    again = fx.apply_chain(y, sr=SR, chain=[fx.Reverb(room_size=0.8, wet=0.5)])
    np.testing.assert_array_equal(out, again)  # no state carried between calls
    longer = fx.apply_chain(y, sr=SR, chain=[fx.Reverb(room_size=0.9)], tail_s=1.0)
    assert longer.shape[1] == 3 * SR


def test_delay_echoes_an_impulse_at_the_delay_time():
    y = np.zeros((2, SR), np.float32)
    y[:, 100] = 1.0
    out = fx.apply_chain(y, sr=SR, chain=[fx.Delay(seconds=0.25, feedback=0.0, mix=0.5)])
    late = np.abs(out[0, 1000:])
    assert (np.argmax(late) + 1000 - 100) / SR == pytest.approx(0.25, abs=0.002)


def test_filters_compressor_distortion_chorus():
    y = _noise()
    hp = fx.apply_chain(y, sr=SR, chain=[fx.Filter(mode="highpass", cutoff_hz=2000)])
    assert band_db(hp, 50, 300) - band_db(y, 50, 300) < -30
    lp = fx.apply_chain(y, sr=SR, chain=[fx.Filter(mode="lowpass", cutoff_hz=500)])
    assert band_db(lp, 8000, 16000) - band_db(y, 8000, 16000) < -30

    loud = sine(220, 1.0, amp=0.9)
    comp = fx.apply_chain(loud, sr=SR, chain=[fx.Compressor(threshold_db=-30, ratio=10, attack_ms=1)])
    assert np.abs(comp[:, SR // 2 :]).max() < 0.5 * np.abs(loud).max()

    tone = sine(220, 1.0, amp=0.5)
    dist = fx.apply_chain(tone, sr=SR, chain=[fx.Distortion(drive_db=30, output_db=0)])
    assert band_db(dist, 640, 680) - band_db(tone, 640, 680) > 30  # odd harmonic appears

    ch = fx.apply_chain(tone, sr=SR, chain=[fx.Chorus(depth=0.8, mix=0.5)])
    assert ch.shape == tone.shape and not np.allclose(ch, tone, atol=1e-3)


def test_apply_chain_does_not_mutate_and_rejects_bad_audio():
    y = _noise(0.5)
    before = y.copy()
    fx.apply_chain(y, sr=SR, chain=[fx.Reverb()])
    np.testing.assert_array_equal(y, before)
    with pytest.raises(InputError, match="channels"):
        fx.apply_chain(np.zeros((5, 10), np.float32), sr=SR, chain=[])
    with pytest.raises(InputError, match="tail_s"):
        fx.apply_chain(y, sr=SR, chain=[], tail_s=100)


def test_time_stretch_changes_duration_and_tempo_not_pitch():
    clicks = click_track(bpm=120.0, seconds=8.0)
    fast = fx.time_stretch(clicks, sr=SR, rate=1.25)
    assert fast.shape[1] == round(clicks.shape[1] / 1.25)
    ioi = np.median(np.diff(onset_times(fast)))
    assert 60.0 / ioi == pytest.approx(150.0, rel=0.03)

    tone = sine(440.0, 4.0)
    slow = fx.time_stretch(tone, sr=SR, rate=0.8)
    assert slow.shape[1] == round(tone.shape[1] / 0.8)
    assert peak_hz(slow[:, SR:-SR]) == pytest.approx(440.0, abs=3.0)


def test_pitch_shift_moves_the_pitch_keeps_length():
    tone = sine(440.0, 3.0)
    up = fx.pitch_shift(tone, sr=SR, semitones=3)
    assert up.shape == tone.shape
    assert peak_hz(up[:, SR // 2 : -SR // 2]) == pytest.approx(440.0 * 2 ** (3 / 12), rel=0.01)
    with pytest.raises(InputError, match="semitones"):
        fx.pitch_shift(tone, sr=SR, semitones=40)
    with pytest.raises(InputError, match="rate"):
        fx.time_stretch(tone, sr=SR, rate=0.1)


def test_hpss_puts_clicks_in_percussive_and_tones_in_harmonic():
    clicks = click_track(bpm=100.0, seconds=4.0)
    tone = sine(330.0, 4.0, amp=0.2)
    h, p = split_harmonic_percussive(clicks + tone, sr=SR)
    np.testing.assert_allclose(h + p, clicks + tone, atol=2e-3)  # soft masks sum to one
    # the tone's band lives in the harmonic part, the clicks' broadband highs in the percussive part
    assert band_db(h, 320, 340) - band_db(p, 320, 340) > 15
    assert band_db(p, 6000, 12000) - band_db(h, 6000, 12000) > 10
    with pytest.raises(InputError, match="kernel_size"):
        split_harmonic_percussive(tone, sr=SR, kernel_size=1)


@pytest.mark.parametrize("shape", ["stereo", "mono"])
def test_hpss_of_a_long_song_in_segments_equals_one_piece(monkeypatch, shape):
    from core.audio import separate

    y = click_track(bpm=100.0, seconds=9.0) + sine(330.0, 9.0, amp=0.2) + _noise(9.0, amp=0.02)
    if shape == "mono":
        y = y[0]
    whole = split_harmonic_percussive(y, sr=SR)
    monkeypatch.setattr(separate, "SEGMENT_S", 1.5)  # 6-7 segments, each with margins either side
    calls = []
    parts = split_harmonic_percussive(y, sr=SR, progress=lambda f, m: calls.append((f, m)))
    for a, b in zip(whole, parts, strict=True):
        assert a.shape == b.shape == y.shape
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-6)
    fractions = [f for f, _ in calls]
    total = len(calls)
    assert total >= 6 and fractions == sorted(fractions) and fractions[-1] == 1.0
    assert calls[-1][1] == f"part {total} of {total} done"


def test_hpss_takes_mono_1d_and_keeps_its_shape():
    tone = sine(330.0, 1.0, amp=0.2)[0]
    h, p = split_harmonic_percussive(tone, sr=SR)
    assert h.shape == p.shape == tone.shape
    assert h.dtype == p.dtype == np.float32
    np.testing.assert_allclose(h + p, tone, atol=2e-3)
    short = tone[:100]
    h, p = split_harmonic_percussive(short, sr=SR)
    assert h.shape == p.shape == short.shape
    np.testing.assert_array_equal(h, short)
    assert not p.any()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"y": np.zeros((3, 4096), np.float32)}, r"with 1-2 channels, got shape \(3, 4096\)"),
        ({"y": np.zeros((2, 4096), np.int16)}, "must be floating point .* got dtype int16"),
        ({"y": np.full((2, 4096), np.nan, np.float32)}, "NaN or infinite"),
        ({"sr": 44100.0}, "between 8000 and 192000 Hz, got 44100.0"),
        ({"sr": 4000}, "between 8000 and 192000 Hz, got 4000"),
        ({"power": 9.0}, r"power = 9.0 is out of range: use 1..4"),
    ],
)
def test_hpss_bad_input_names_the_value_and_range(kwargs, match):
    args = {"y": np.zeros((2, 4096), np.float32), "sr": SR, **kwargs}
    with pytest.raises(InputError, match=match):
        split_harmonic_percussive(args.pop("y"), **args)
