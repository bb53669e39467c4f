"""Rendering: every operation's measured effect on the audio, the per-stem cache, exports."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from core.audio.effects import EQ, Reverb
from core.editor import ops as O
from core.editor.project import MemorySources, PathSources, Project, from_audio_stems
from core.editor.render import Renderer, bundle_zip, export_mix, project_midi, stems_zip
from tests.conftest import SR, click_track, sine
from tests.test_effects import band_db, onset_times, peak_hz


def _audio_project(**stems):
    src = MemorySources()
    return from_audio_stems(stems, sources=src, title="t", tempo_bpm=120.0, key="A minor"), src


def _render(project, src, renderer=None, mastered=False):
    return (renderer or Renderer()).render(project, sources=src, mastered=mastered)


@pytest.fixture(scope="module")
def midi_song():
    """Drums (kick on every beat) + keys (A4 whole notes) at 120 bpm as MIDI, rendered with the soundfont."""
    from core.music.midi import Note, Part, midi_to_bytes, parts_to_midi
    from core.music.render import render_stems
    from core.music.theory import parse_key

    key = parse_key("A minor")
    drums = Part("drums", is_drum=True, notes=[Note(b, b + 0.25, 36, 110) for b in range(16)])
    keys = Part("keys", program=0, notes=[Note(b, b + 3.9, 69, 90) for b in range(0, 16, 4)])
    midi = {p.name: midi_to_bytes(parts_to_midi([p], bpm=120.0, key=key, end_beat=16)) for p in (drums, keys)}
    audio = render_stems(midi, sr=SR, seconds=8.0, workers=1)
    return audio, midi


def _midi_project(midi_song):
    audio, midi = midi_song
    src = MemorySources()
    p = from_audio_stems(
        audio, sources=src, title="m", tempo_bpm=120.0, key="A minor", midi=midi,
        chords=[(0.0, 4.0, "A:min"), (4.0, 8.0, "F:maj")],
    )  # fmt: skip
    return p, src


def test_gain_pan_mute_solo_remove():
    p, src = _audio_project(a=sine(440, 2.0), b=sine(660, 2.0))
    base = _render(p, src)
    np.testing.assert_allclose(base.mix, base.stems["a"] + base.stems["b"], atol=1e-6)

    quieter = _render(p.apply(O.TrackGain(track="a", db=-6.0)).apply(O.Mute(track="b")), src).mix
    assert np.abs(quieter).max() / np.abs(base.stems["a"]).max() == pytest.approx(10 ** (-6 / 20), rel=1e-3)

    right = _render(p.apply(O.TrackPan(track="a", pan=1.0)).apply(O.Mute(track="b")), src).mix
    assert np.sqrt(np.mean(right[0] ** 2)) < 1e-6
    assert np.sqrt(np.mean(right[1] ** 2)) / np.sqrt(np.mean(base.stems["a"][1] ** 2)) == pytest.approx(
        np.sqrt(2)
    )
    half = _render(p.apply(O.TrackPan(track="a", pan=-0.5)).apply(O.Mute(track="b")), src).mix
    assert np.mean(half[0] ** 2) > 5 * np.mean(half[1] ** 2)

    muted = _render(p.apply(O.Mute(track="a")).apply(O.Mute(track="b")), src).mix
    assert not muted.any()

    solo = _render(p.apply(O.Solo(track="b")), src).mix
    np.testing.assert_array_equal(solo, base.stems["b"])
    removed = _render(p.apply(O.RemoveTrack(track="a")), src)
    assert list(removed.stems) == ["b"]
    np.testing.assert_array_equal(removed.mix, base.stems["b"])


def test_loop_repeats_exactly_and_trim_fade_shape_the_timeline():
    rng = np.random.default_rng(3)
    y = (0.2 * rng.standard_normal((2, 3 * SR))).astype(np.float32)
    p, src = _audio_project(a=y)
    looped = _render(p.apply(O.Loop(start_s=1.0, end_s=1.5, times=3)), src).mix
    a, b, seg = SR, int(1.5 * SR), int(0.5 * SR)
    assert looped.shape[1] == 3 * SR + 2 * seg
    np.testing.assert_array_equal(looped[:, b : b + seg], y[:, a:b])
    np.testing.assert_array_equal(looped[:, b + seg : b + 2 * seg], y[:, a:b])
    np.testing.assert_array_equal(looped[:, b + 2 * seg :], y[:, b:])

    trimmed = _render(p.apply(O.Trim(start_s=0.5, end_s=2.0)), src).mix
    assert trimmed.shape[1] == int(1.5 * SR)
    np.testing.assert_array_equal(trimmed, y[:, SR // 2 : 2 * SR])

    ones, src1 = _audio_project(a=np.full((2, 4 * SR), 0.5, np.float32))
    faded = _render(ones.apply(O.Fade(in_s=1.0, out_s=2.0)), src1).mix
    assert faded[0, 0] == 0.0 and faded[0, SR // 2] == pytest.approx(0.25, abs=1e-3)
    assert faded[0, SR + 10] == pytest.approx(0.5) and faded[0, -1] == pytest.approx(0.0, abs=1e-6)
    assert faded[0, 3 * SR] == pytest.approx(0.25, abs=1e-3)  # halfway through the 2 s fade-out


def test_tempo_change_on_audio_changes_duration_and_detected_tempo():
    p, src = _audio_project(drums=click_track(bpm=120.0, seconds=8.0))
    fast = _render(p.apply(O.SetTempo(bpm=150.0)), src).mix
    assert fast.shape[1] == round(8 * SR / 1.25)
    assert 60 / np.median(np.diff(onset_times(fast))) == pytest.approx(150.0, rel=0.03)
    # loops follow the music: 1 beat at the original tempo is 0.4 s at 150 bpm
    looped = _render(p.apply(O.SetTempo(bpm=150.0)).apply(O.Loop(start_s=1.0, end_s=1.5, times=2)), src).mix
    assert looped.shape[1] - fast.shape[1] == round(1.5 / 1.25 * SR) - round(1.0 / 1.25 * SR)


def test_transpose_shifts_audio_pitch():
    p, src = _audio_project(keys=sine(440.0, 3.0))
    up = _render(p.apply(O.Transpose(semitones=2)), src).mix
    assert up.shape[1] == 3 * SR
    assert peak_hz(up[:, SR // 2 : -SR // 2]) == pytest.approx(440 * 2 ** (2 / 12), rel=0.01)


def test_midi_stems_rerender_exactly_at_a_new_tempo_and_key(midi_song):
    p, src = _midi_project(midi_song)
    r = Renderer()
    base = r.render(p, sources=src, mastered=False)
    assert r.counts["midi"] == 0  # the stems' own audio is used while tempo and key are unchanged

    seen: list[tuple[float, str]] = []
    fast = r.render(
        p.apply(O.SetTempo(ratio=1.5)), sources=src, mastered=False, progress=lambda f, m: seen.append((f, m))
    )
    assert r.counts["midi"] == 2 and fast.mix.shape[1] == round(8 * SR / 1.5)
    # progress rises as each re-rendered track comes back
    assert [f for f, _ in seen] == sorted(f for f, _ in seen) and seen[-1][0] == 1.0
    assert [m for _, m in seen if m.startswith("Rendered")] == [
        "Rendered 1 of 2 tracks",
        "Rendered 2 of 2 tracks",
    ]
    kicks = onset_times(fast.stems["drums"], rel=0.2)
    assert np.median(np.diff(kicks)) == pytest.approx(0.5 / 1.5, abs=0.006)  # 180 bpm
    # level-matched to the original stem
    ratio = np.sqrt(np.mean(fast.stems["keys"] ** 2)) / np.sqrt(np.mean(base.stems["keys"] ** 2))
    assert ratio == pytest.approx(1.0, rel=0.25)

    up = r.render(p.apply(O.Transpose(semitones=3)), sources=src, mastered=False)
    assert up.rendered == ("keys",)  # drums are never transposed: their cached stem is reused
    seg = slice(int(0.3 * SR), int(1.5 * SR))
    assert peak_hz(up.stems["keys"][:, seg]) == pytest.approx(440 * 2 ** (3 / 12), rel=0.015)
    assert peak_hz(base.stems["keys"][:, seg]) == pytest.approx(440, rel=0.015)


def test_track_and_master_effects():
    rng = np.random.default_rng(5)
    noise = (0.1 * rng.standard_normal((2, 2 * SR))).astype(np.float32)
    p, src = _audio_project(a=noise, b=noise.copy())
    eq = _render(p.apply(O.TrackEffects(track="a", chain=(EQ(low_db=12.0),))), src)
    assert band_db(eq.stems["a"], 20, 100) - band_db(eq.stems["b"], 20, 100) == pytest.approx(12.0, abs=1.5)

    burst = np.zeros((2, 2 * SR), np.float32)
    burst[:, : SR // 2] = noise[:, : SR // 2]
    q, src2 = _audio_project(a=burst)
    dry = _render(q, src2).mix
    wet = _render(q.apply(O.MasterEffects(chain=(Reverb(room_size=0.8, wet=0.5),))), src2).mix
    tail = slice(SR // 2 + 4410, SR + SR // 2)
    assert not dry[:, tail].any()
    assert np.sqrt(np.mean(wet[:, tail] ** 2)) > 1e-3


def test_mastered_output_is_loudness_normalised_and_peak_limited():
    from core.audio.loudness import integrated_lufs, true_peak_dbfs

    p, src = _audio_project(drums=click_track(seconds=6.0), keys=sine(330, 6.0, amp=0.05))
    out = _render(p.apply(O.TrackGain(track="keys", db=12.0)), src, mastered=True).mix
    assert integrated_lufs(out, sr=SR) == pytest.approx(-14.0, abs=1.0)
    assert true_peak_dbfs(out, sr=SR) <= -0.9


def test_cache_invalidates_exactly_what_changed():
    p, src = _audio_project(a=sine(220, 2.0), b=sine(330, 2.0), c=click_track(seconds=2.0))
    r = Renderer()
    assert set(r.render(p, sources=src).rendered) == {"a", "b", "c"}
    p1 = (
        p.apply(O.TrackGain(track="a", db=-3.0))
        .apply(O.TrackPan(track="b", pan=0.3))
        .apply(O.Mute(track="c"))
    )
    assert r.render(p1, sources=src).rendered == ()  # mix-only changes re-mix
    assert r.render(p1.apply(O.Fade(in_s=0.5)), sources=src).rendered == ()
    p2 = p1.apply(O.TrackEffects(track="b", chain=(Reverb(),)))
    assert r.render(p2, sources=src).rendered == ("b",)
    assert r.render(p2.undo(), sources=src).rendered == ()  # undo hits the cache
    p3 = p2.apply(O.SetTempo(ratio=0.8))
    assert set(r.render(p3, sources=src).rendered) == {"a", "b", "c"}
    assert r.counts["stem"] == 7
    assert r.render(p3.apply(O.Loop(start_s=0.0, end_s=1.0)), sources=src).rendered == ("a", "b", "c")


def test_cache_is_bounded():
    p, src = _audio_project(a=sine(220, 2.0))
    r = Renderer(cache_mb=1)  # one 2 s stereo stem is ~0.7 MB
    r.render(p, sources=src)
    r.render(p.apply(O.TrackEffects(track="a", chain=(Reverb(),))), sources=src)
    assert r._bytes <= 1024 * 1024 and len(r._cache) >= 1


def test_add_track_follows_the_song(midi_song):
    p, src = _midi_project(midi_song)
    p2 = p.apply(O.AddTrack(role="bass", seed=4)).apply(O.AddTrack(role="drums", seed=1))
    out = Renderer().render(p2, sources=src, mastered=False)
    assert set(out.stems) == {"drums", "keys", "bass", "drums_2"}
    for name in ("bass", "drums_2"):
        assert out.stems[name].shape == out.stems["keys"].shape
        assert np.sqrt(np.mean(out.stems[name] ** 2)) > 1e-3
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(io.BytesIO(project_midi(p2, sources=src)))
    bass = next(i for i in pm.instruments if i.name == "bass")
    # roots of the chords: A for the first 4 s, F after
    assert {n.pitch % 12 for n in bass.notes if n.start < 4.0} <= {9, 4}
    assert {n.pitch % 12 for n in bass.notes if 4.0 <= n.start < 8.0} <= {5, 0}
    assert {i.name for i in pm.instruments} == {"drums", "keys", "bass", "drums_2"}
    assert pm.get_tempo_changes()[1][0] == pytest.approx(120.0)


def test_split_harmonic_percussive_lets_drums_be_removed():
    song = click_track(bpm=100.0, seconds=4.0) + sine(330.0, 4.0, amp=0.2)
    p, src = _audio_project(song=song)
    split = p.apply(O.SplitHarmonicPercussive(track="song"))
    said = []
    out = Renderer().render(split, sources=src, mastered=False, progress=lambda f, m: said.append(m))
    assert set(out.stems) == {"song_harmonic", "song_percussive"}
    assert any(m.startswith("Splitting song into harmonic + drums") for m in said)
    np.testing.assert_allclose(out.mix, song, atol=2e-3)
    no_drums = _render(split.apply(O.Mute(track="song_percussive")), src).mix
    assert band_db(song, 6000, 12000) - band_db(no_drums, 6000, 12000) > 10
    assert abs(band_db(song, 320, 340) - band_db(no_drums, 320, 340)) < 1.0


def test_exports_and_cli_bundle_render_identically(midi_song, tmp_path):
    from core.audio.io import decode

    p, src = _midi_project(midi_song)
    edited = p.apply(O.TrackGain(track="keys", db=-4.0)).apply(O.SetTempo(ratio=1.25))
    r = Renderer()
    out = r.render(edited, sources=src)
    for fmt in ("wav", "flac", "ogg", "mp3"):
        data = export_mix(out, fmt=fmt, title="Edit")
        y = decode(data, filename=f"x.{fmt}")
        assert abs(y.shape[1] - out.mix.shape[1]) < 0.06 * SR
    with zipfile.ZipFile(io.BytesIO(stems_zip(out))) as zf:
        assert sorted(zf.namelist()) == ["drums.flac", "keys.flac"]
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(io.BytesIO(project_midi(edited, sources=src)))
    assert pm.get_tempo_changes()[1][0] == pytest.approx(150.0)
    keys = next(i for i in pm.instruments if i.name == "keys")
    assert [round(n.start, 3) for n in keys.notes] == [0.0, 1.6, 3.2, 4.8]

    with zipfile.ZipFile(io.BytesIO(bundle_zip(edited, sources=src))) as zf:
        zf.extractall(tmp_path)
    doc = json.loads((tmp_path / "project.json").read_text())
    assert doc["stems"][0]["audio"] == "stems/drums.flac"
    again = Project.from_json((tmp_path / "project.json").read_text())
    cli = Renderer().render(again, sources=PathSources(tmp_path))
    # 24-bit FLAC stems: the CLI render matches the editor's to within quantisation noise
    assert np.max(np.abs(cli.mix - out.mix)) < 1e-4


def test_cli_renders_a_bundle_and_prints_the_schema(tmp_path, capsys):
    from core.__main__ import main
    from core.audio.io import load

    p, src = _audio_project(drums=click_track(seconds=3.0), keys=sine(330, 3.0, amp=0.1))
    edited = p.apply(O.TrackPan(track="keys", pan=-0.5)).apply(O.Trim(start_s=0.5, end_s=2.5))
    with zipfile.ZipFile(io.BytesIO(bundle_zip(edited, sources=src))) as zf:
        zf.extractall(tmp_path / "bundle")
    out = tmp_path / "out" / "song.flac"
    code = main(["edit", str(tmp_path / "bundle" / "project.json"), "--out", str(out), "--stems",
                 str(tmp_path / "stems"), "--json"])  # fmt: skip
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["tracks"] == ["drums", "keys"] and summary["seconds"] == pytest.approx(2.0)
    page = Renderer().render(edited, sources=src).mix
    assert np.max(np.abs(load(out) - page)) < 2e-4  # 16-bit FLAC of the same render
    assert sorted(f.name for f in (tmp_path / "stems").iterdir()) == ["drums.wav", "keys.wav"]

    assert main(["edit", "--schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert "set_tempo" in json.dumps(schema)
    assert main(["edit", str(tmp_path / "bundle" / "project.json"), "--out", str(tmp_path / "x.aac")]) == 2
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps({**json.loads((tmp_path / "bundle" / "project.json").read_text()), "format_version": 7})
    )
    assert main(["edit", str(bad), "--out", str(tmp_path / "x.wav")]) == 2
    assert "format_version = 7" in capsys.readouterr().err


def test_loop_regions_follow_timeline_edits_and_tempo():
    from core.editor.render import loop_regions

    p, _ = _audio_project(a=sine(220, 10.0))
    p = p.apply(O.Loop(start_s=1.0, end_s=2.0, times=3))  # region 1-4 s, song 12 s
    assert loop_regions(p.state()) == [(1.0, 4.0)]
    p = p.apply(O.Loop(start_s=0.0, end_s=0.5, times=2))  # earlier loop pushes the first one by 0.5 s
    assert loop_regions(p.state()) == [(1.5, 4.5), (0.0, 1.0)]
    p = p.apply(O.Trim(start_s=1.0, end_s=12.0))
    assert loop_regions(p.state()) == [(0.5, 3.5)]  # the second loop was trimmed away
    fast = p.apply(O.SetTempo(ratio=2.0))
    assert loop_regions(fast.state()) == [(0.25, 1.75)]


class _CountingSources(MemorySources):
    """MemorySources that count how often a stem's audio is fetched (decoded, for stored projects)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def audio(self, ref: str, *, sr: int) -> np.ndarray:
        self.reads += 1
        return super().audio(ref, sr=sr)


def _long_effected_project():
    src = _CountingSources()
    p = from_audio_stems(
        {"a": sine(220, 4.0), "b": click_track(seconds=4.0)}, sources=src, title="t", tempo_bpm=120.0
    )  # 4 s stereo stems: 1.4 MB each, bigger than the 1 MB cache below
    p = p.apply(O.TrackEffects(track="a", chain=(Reverb(),))).apply(O.TrackEffects(track="b", chain=(EQ(),)))
    return p, src


def test_a_project_bigger_than_the_cache_comes_back_from_the_spill_folder(tmp_path):
    p, src = _long_effected_project()
    spill = tmp_path / "spill"
    r = Renderer(cache_mb=1, spill_dir=spill)
    first = r.render(p, sources=src)
    r.flush()
    assert r.counts["spilled"] >= 2 and list(spill.glob("*.npy"))
    reads, stems = src.reads, r.counts["stem"]
    again = r.render(p, sources=src)
    assert np.array_equal(again.mix, first.mix)
    assert all(np.array_equal(again.stems[k], first.stems[k]) for k in first.stems)
    assert r.counts["stem"] == stems and src.reads == reads  # no decode, no effect re-run
    assert r.counts["unspilled"] >= 1
    assert not again.mix.flags.writeable

    # without a spill folder the same cache recomputes what it let go of
    r2 = Renderer(cache_mb=1)
    r2.render(p, sources=src)
    stems2 = r2.counts["stem"]
    r2.render(p, sources=src)
    assert r2.counts["stem"] > stems2


def test_spill_folder_keeps_its_budget_recovers_from_bad_files_and_starts_empty(tmp_path):
    spill = tmp_path / "spill"
    spill.mkdir()
    (spill / "0123.npy").write_bytes(b"left by an earlier process")
    p, src = _long_effected_project()
    r = Renderer(cache_mb=1, spill_dir=spill, spill_mb=3)
    assert not (spill / "0123.npy").exists()  # an earlier process's files may come from other code
    first = r.render(p, sources=src)
    for db in (-3.0, -6.0, -9.0):  # new mixes push older arrays out
        r.render(p.apply(O.TrackGain(track="a", db=db)), sources=src)
    r.flush()
    assert sum(f.stat().st_size for f in spill.glob("*.npy")) <= 3 * 2**20

    r.render(p, sources=src)
    r.flush()
    damaged = list(spill.glob("*.npy"))
    assert damaged
    for f in damaged:  # damaged files are recomputed, never served
        f.write_bytes(b"\x93NUMPY garbage")
    stems = r.counts["stem"]
    again = r.render(p, sources=src)
    r.flush()
    assert np.array_equal(again.mix, first.mix)
    assert r.counts["stem"] > stems
    for f in spill.glob("*.npy"):
        assert np.load(f, allow_pickle=False).dtype == np.float32  # rewritten whole, or gone
    r.clear()
    assert not list(spill.glob("*.npy"))
