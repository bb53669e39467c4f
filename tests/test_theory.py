"""Music theory (keys, scales, chords, diatonic harmony, voicings), instrument tables and song plans."""

from __future__ import annotations

import pytest

from core.errors import InputError
from core.music import instruments, plan, theory


@pytest.mark.parametrize(
    ("text", "tonic", "mode"),
    [
        ("A minor", 9, "minor"),
        ("F# major", 6, "major"),
        ("Bbm", 10, "minor"),
        ("C", 0, "major"),
        ("Eb maj", 3, "major"),
        ("a:min", 9, "minor"),
        ("D dorian", 2, "dorian"),
        ("G Mixolydian", 7, "mixolydian"),
        ("Am", 9, "minor"),
        ("C harmonic minor", 0, "harmonic minor"),
    ],
)
def test_parse_key_forms(text, tonic, mode):
    assert theory.parse_key(text) == theory.Key(tonic, mode)


@pytest.mark.parametrize("bad", ["H minor", "", "   ", "C blah", "major", "C##x"])
def test_parse_key_errors_name_value_and_forms(bad):
    with pytest.raises(InputError) as err:
        theory.parse_key(bad)
    msg = str(err.value)
    assert repr(bad) in msg
    assert "A minor" in msg  # the accepted forms are listed


def test_parse_key_rejects_non_text():
    with pytest.raises(InputError):
        theory.parse_key(5)  # type: ignore[arg-type]


def test_scales():
    assert theory.parse_key("C major").scale == (0, 2, 4, 5, 7, 9, 11)
    assert theory.parse_key("A minor").scale == (9, 11, 0, 2, 4, 5, 7)
    assert set(theory.parse_key("D dorian").scale) == set(theory.parse_key("C major").scale)
    assert theory.scale_pitch_classes(9, "minor pentatonic") == (9, 0, 2, 4, 7)
    assert theory.scale_pitch_classes(0, "major pentatonic") == (0, 2, 4, 7, 9)
    assert theory.scale_pitch_classes(9, "harmonic minor")[-1] == 8  # G#
    with pytest.raises(InputError, match="Unknown scale 'blues'"):
        theory.scale_pitch_classes(0, "blues")


def test_in_key_and_nearest():
    c = theory.parse_key("C major")
    assert theory.in_key(60, c) and theory.in_key(71, c)
    assert not theory.in_key(61, c)
    assert theory.nearest_in_scale(61, c) == 62
    assert theory.nearest_in_scale(61, c, prefer_down=True) == 60
    assert theory.scale_pitches(c, low=60, high=72) == [60, 62, 64, 65, 67, 69, 71, 72]


def test_key_names_and_spelling():
    assert theory.parse_key("Bbm").name == "Bb minor"
    assert theory.parse_key("F#").name == "F# major"
    assert theory.parse_key("d minor").name == "D minor"
    assert theory.note_name(60) == "C4"
    assert theory.note_name(70, prefer_flats=True) == "Bb4"


@pytest.mark.parametrize(
    ("label", "pcs"),
    [
        ("C:maj", (0, 4, 7)),
        ("A:min", (9, 0, 4)),
        ("G:7", (7, 11, 2, 5)),
        ("B:dim", (11, 2, 5)),
        ("F:maj7", (5, 9, 0, 4)),
        ("Bb:min7", (10, 1, 5, 8)),
        ("D:sus4", (2, 7, 9)),
        ("Am", (9, 0, 4)),
        ("G7", (7, 11, 2, 5)),
        ("C", (0, 4, 7)),
        ("E:min(9)", (4, 7, 11)),
        ("N", ()),
    ],
)
def test_chord_labels(label, pcs):
    assert theory.chord_pitch_classes(label) == pcs


def test_chord_inversions_and_labels():
    c = theory.parse_chord("F:maj/3")
    assert c.lowest_pc == 9 and c.pitch_classes == (5, 9, 0)
    assert theory.parse_chord("C:maj/G").lowest_pc == 7
    assert theory.parse_chord("A:min").label == "A:min"
    assert theory.parse_chord("N") is None


@pytest.mark.parametrize(
    ("label", "parts"),
    [
        ("F#:min7(9)/b7", (6, "min7", "b7")),
        ("Bbm", (10, "m", None)),
        ("C:maj(9)(11)", (0, "maj", None)),
        ("G:sus4(b7)", (7, "sus4", None)),
        (" a:min ", (9, "min", None)),
        ("Db:maj/A", (1, "maj", "A")),
        ("E:(1,3,5)", (4, "", None)),
        ("N", None),
        ("X", None),
        ("", None),
    ],
)
def test_split_chord_label(label, parts):
    assert theory.split_chord_label(label) == parts


def test_chords_with_several_added_tone_groups_parse():
    assert theory.parse_chord("C:maj(9)(11)/3") == theory.Chord(0, "maj", 4)


@pytest.mark.parametrize("bad", ["C:blah", "H:maj", "123"])
def test_chord_label_errors(bad):
    with pytest.raises(InputError) as err:
        theory.parse_chord(bad)
    if not bad.startswith("C"):
        with pytest.raises(InputError, match=bad):
            theory.split_chord_label(bad)
    assert bad.split(":")[-1] in str(err.value) or bad in str(err.value)


def test_diatonic_chords():
    c = theory.parse_key("C major")
    assert [ch.label for ch in theory.diatonic_chords(c)] == [
        "C:maj", "D:min", "E:min", "F:maj", "G:maj", "A:min", "B:dim",
    ]  # fmt: skip
    sevenths = [ch.label for ch in theory.diatonic_chords(c, sevenths=True)]
    assert sevenths[4] == "G:7" and sevenths[6] == "B:hdim7" and sevenths[0] == "C:maj7"
    a = theory.parse_key("A minor")
    assert theory.roman_progression(a, [0, 5, 2, 6]) == ["A:min", "F:maj", "C:maj", "G:maj"]


def test_fit_chord_to_key_keeps_diatonic_and_fixes_others():
    c = theory.parse_key("C major")
    assert theory.fit_chord_to_key("F:maj", c).label == "F:maj"
    fixed = theory.fit_chord_to_key("Bb:maj", c)
    assert set(fixed.pitch_classes) <= set(c.scale)
    a = theory.parse_key("A minor")
    assert theory.fit_chord_to_key("E:maj", a).label == "E:min"  # raised third brought back to the key
    assert theory.fit_chord_to_key("N", a) is None


def test_voicings_in_range_and_smooth():
    prev = None
    moves = []
    for label in ["C:maj", "F:maj", "G:maj", "C:maj", "A:min", "F:maj"]:
        pcs = theory.chord_pitch_classes(label)
        v = theory.voice_chord(pcs, low=52, high=76, previous=prev)
        assert all(52 <= p <= 76 for p in v)
        assert sorted({p % 12 for p in v}) == sorted(set(pcs))
        if prev:
            moves.append(sum(min(abs(a - b) for b in prev) for a in v))
        prev = v
    # voice leading: common tones held, others move by step (root-position jumps would move 5-7 each)
    assert max(moves) <= 5
    assert theory.voice_chord((0, 4, 7), low=48, high=72, size=4)[0] % 12 in (0, 4, 7)


def test_genre_and_mood_tables():
    required = {"pop", "k-pop", "hip-hop", "rock", "edm", "funk", "r&b", "lo-fi", "jazz", "latin"}
    assert required <= set(instruments.GENRES)
    for g in instruments.GENRES.values():
        lo, hi = g.tempo_range
        assert 40 <= lo <= g.default_tempo <= hi <= 240
        assert set(g.default_instruments) <= set(instruments.ROLES)
        for role in instruments.ROLES:
            if role != "drums":
                assert 0 <= instruments.program_for(g, role) <= 127
        assert g.comp in instruments.COMP_PATTERNS
    assert instruments.get_genre("HipHop").name == "hip-hop"
    assert instruments.get_mood("sad").mode == "minor" and instruments.get_mood("happy").mode == "major"
    assert instruments.get_mood("energetic").density > instruments.get_mood("chill").density
    with pytest.raises(InputError, match=r"Unknown genre 'polka'.*k-pop"):
        instruments.get_genre("polka")
    with pytest.raises(InputError, match=r"Unknown mood 'meh'.*happy"):
        instruments.get_mood("meh")


def test_parse_instruments():
    assert instruments.parse_instruments("lead, drums,bass") == ("drums", "bass", "lead")
    assert instruments.parse_instruments(["piano", "keys"]) == ("keys",)
    with pytest.raises(InputError, match=r"Unknown instrument 'kazoo'.*drums"):
        instruments.parse_instruments("drums,kazoo")
    with pytest.raises(InputError, match="No instruments"):
        instruments.parse_instruments(" , ")


@pytest.mark.parametrize(
    ("seconds", "bpm"), [(5, 120), (5, 40), (12, 90), (30, 90), (60, 120), (61, 97), (600, 240)]
)
def test_plan_fits_duration(seconds, bpm):
    p = plan.plan_song(seconds=seconds, bpm=bpm)
    bar_s = 4 * 60 / bpm
    assert sum(s.bars for s in p.sections) == p.bars
    assert p.sections[0].start_bar == 0
    for a, b in zip(p.sections, p.sections[1:], strict=False):
        assert b.start_bar == a.end_bar
    # music ends at least 1 s before the end (ring-out), and leaves less than one bar unused
    if bar_s + 1 <= seconds:
        assert p.bars * bar_s <= seconds - 1.0 + 1e-9
        assert seconds - p.bars * bar_s < bar_s + 1.0 + 1e-9
    assert p.seconds == seconds


def test_plan_form_of_a_full_song():
    p = plan.plan_song(seconds=180, bpm=100)
    names = [s.name for s in p.sections]
    assert names[0] == "intro" and names[-1] == "outro"
    assert names.count("chorus") >= 2 and "verse" in names
    energy = {s.name: s.energy for s in p.sections}
    assert energy["chorus"] > energy["verse"] > energy["intro"]
    for s in p.sections:
        if s.name in ("verse", "chorus", "pre", "bridge"):
            assert s.bars % 2 == 0


@pytest.mark.parametrize(("seconds", "bpm"), [(4.9, 120), (601, 120), (30, 39), (30, 241)])
def test_plan_rejects_out_of_range(seconds, bpm):
    with pytest.raises(InputError):
        plan.plan_song(seconds=seconds, bpm=bpm)


def test_roles_for_section_never_silent():
    intro = plan.Section("intro", 0, 4, 0.35)
    assert "lead" not in plan.roles_for_section(intro, ("drums", "keys", "lead"))
    assert plan.roles_for_section(intro, ("lead",)) == ("lead",)
