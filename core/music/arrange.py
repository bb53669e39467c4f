"""Arrange a song: harmony, drums, bass and melody from the trained models, chord parts by rule.

The arranger works in beats on a 16th-note grid. For every section of the :class:`~core.music.plan.SongPlan`:

- **harmony**: the harmony model writes a 4-bar progression per section kind (verse, pre, chorus,
  bridge; the intro borrows the verse's, the outro the chorus's), looped over the section; labels that
  leave the key are replaced by the closest diatonic chord (:func:`core.music.theory.fit_chord_to_key`);
  genres with seventh voicings use the diatonic seventh chords. The song ends on the tonic chord.
- **drums**: the drum model, style from the genre, density from the mood and the section energy; a crash
  marks each chorus and a fill (tom run; snare roll in EDM) leads into it; EDM adds four-on-the-floor
  kicks; the model's micro-timing is kept, scaled by the genre's ``humanize`` (at most ~19 ms at 120 bpm).
- **bass**: the bass model, conditioned on the chords and on the kick pattern of the drums.
- **lead**: the melody model, conditioned on key, mode and chords, register and density from the mood.
- **keys, pad, strings, guitar, brass, pluck, arp**: voicings of the chords with smooth voice leading
  (:func:`core.music.theory.voice_chord`) played in the genre's comping rhythm.

Every pitched note is then checked against the key's scale: a note outside it is kept only as a
deliberate chromatic passing tone (short, approached and left by step in one direction, at most 1.5% of
the notes) and counted; any other is moved to the nearest scale tone. Swing (per genre) delays the
off-beat 16ths (8ths for jazz). Sampling of each section kind uses its own seed derived from the song
seed, so repeated sections repeat their material and the same seed always gives the same song.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from core.music.instruments import COMP_PATTERNS, Genre, Mood, program_for
from core.music.midi import Note, Part
from core.music.plan import Section, SongPlan, roles_for_section
from core.music.theory import (
    Chord,
    Key,
    diatonic_chords,
    fit_chord_to_key,
    in_key,
    nearest_in_scale,
    pc_name,
    prefers_flats,
    voice_chord,
)

STEPS_PER_BEAT = 4
#: Harmony-model draws per section kind before settling for the most varied progression.
HARMONY_TRIES = 6
#: Melody-model draws per section kind before settling for the busiest one.
MELODY_TRIES = 4
#: Largest share of pitched notes allowed to stay outside the scale as chromatic passing tones.
MAX_CHROMATIC_SHARE = 0.015
#: General MIDI drum pitches of the drum model's 9 classes (kick, snare, closed hat, open hat, low/mid/high
#: tom, crash, ride).
DEFAULT_DRUM_PITCHES = (36, 38, 42, 46, 45, 48, 50, 49, 51)
_KICK, _SNARE, _CRASH = 0, 1, 7

_ROLE_RANGE = {
    "keys": (52, 76),
    "pad": (55, 79),
    "strings": (60, 86),
    "guitar": (52, 74),
    "brass": (58, 79),
    "pluck": (64, 86),
    "arp": (60, 88),
}
_ROLE_VELOCITY = {
    "drums": 100, "bass": 96, "keys": 84, "pad": 70, "strings": 72, "guitar": 86, "brass": 92,
    "pluck": 80, "arp": 74, "lead": 96,
}  # fmt: skip
#: Stereo position (MIDI CC10, 64 = centre) per role.
ROLE_PAN = {
    "drums": 64, "bass": 64, "keys": 50, "pad": 64, "strings": 80, "guitar": 84, "brass": 44,
    "pluck": 40, "arp": 88, "lead": 64,
}  # fmt: skip


@dataclass(frozen=True)
class Samplers:
    """The trained models as sampling functions (model already bound), as the arranger calls them.

    ``drums(bars=, style=, seed=, temperature=, density=, tap=)`` -> pattern with ``hits``/``velocity``/
    ``offset`` ``(steps, 9)``; ``bass(chords=, steps_per_beat=, beats=, beats_per_bar=, seed=, temperature=,
    kick=, register=)`` -> ``[(start, end, pitch, velocity)]``; ``harmony(key=, mode=, mood=, bars=, seed=,
    temperature=, chords_per_bar=)`` -> labels; ``melody(key=, mode=, chords=, beats=, seed=, temperature=,
    register=, density=)`` -> notes. ``moods`` lists the harmony model's mood tokens (empty: any).
    """

    drums: Callable[..., Any]
    bass: Callable[..., list]
    harmony: Callable[..., list]
    melody: Callable[..., list]
    drum_styles: tuple[str, ...] = ()
    moods: tuple[str, ...] = ()
    drum_pitches: tuple[int, ...] = DEFAULT_DRUM_PITCHES


def load_samplers() -> Samplers:
    """Load the four trained models from their checkpoints (``core.loaders``) and bind their samplers.

    The drum and bass part is :func:`core.beats.load_beat_samplers` (the same two checkpoints, bound the
    same way); harmony and melody are added here.

    Raises
    ------
    core.errors.ModelError
        If a checkpoint is missing or corrupt.
    """
    from core import loaders
    from core.beats import load_beat_samplers
    from models import harmony, melody

    rhythm = load_beat_samplers()
    h_model = loaders.load_harmony()
    return Samplers(
        drums=rhythm.drums,
        bass=rhythm.bass,
        harmony=partial(harmony.sample, h_model),
        melody=partial(melody.sample, loaders.load_melody()),
        drum_styles=rhythm.drum_styles,
        moods=tuple(getattr(h_model, "meta", {}).get("moods", getattr(harmony, "MOODS", ()))),
        drum_pitches=rhythm.drum_pitches,
    )


@dataclass
class Arrangement:
    """The arranged song in beats: one :class:`Part` per role, the chord timeline and key statistics."""

    parts: dict[str, Part]
    chords: list[tuple[float, float, str]]
    pitched_notes: int = 0
    chromatic_notes: int = 0
    meta: dict = field(default_factory=dict)


def sub_seed(seed: int, *tags: object) -> int:
    """A deterministic 31-bit seed for one sampling call, derived from the song seed and tags."""
    words = [int(seed) & 0xFFFFFFFF] + [zlib.crc32(str(t).encode()) for t in tags]
    return int(np.random.SeedSequence(words).generate_state(1)[0] & 0x7FFFFFFF)


def _swing(beat: float, *, amount: float, unit: float) -> float:
    """Delay the second ``unit`` of every pair by ``amount * unit`` (grid positions only)."""
    if amount <= 0:
        return beat
    pos = beat / unit
    k = round(pos)
    if abs(pos - k) < 1e-6 and k % 2 == 1:
        return beat + amount * unit
    return beat


def _vel(base: float, scale: float) -> int:
    return min(127, max(1, round(float(base * scale))))  # float(): round() of a numpy scalar is ~50x slower


def _model_mood(mood: Mood, moods: tuple[str, ...]) -> str:
    if not moods or mood.model_mood in moods:
        return mood.model_mood
    for cand in (mood.name, "happy" if mood.mode == "major" else "sad"):
        if cand in moods:
            return cand
    return moods[0]


def _progression_kind(name: str, kinds: set[str]) -> str:
    if name == "intro":
        return "verse" if "verse" in kinds else "chorus"
    if name == "outro":
        return "chorus" if "chorus" in kinds else "verse"
    return name


def _section_chords(
    plan: SongPlan, key: Key, genre: Genre, mood: Mood, samplers: Samplers, seed: int
) -> list[tuple[float, float, str]]:
    kinds = {s.name for s in plan.sections}
    model_mode = "minor" if key.is_minor else "major"
    mood_token = _model_mood(mood, samplers.moods)
    sevenths = genre.voicing == "seventh"
    diatonic = diatonic_chords(key)
    diatonic7 = diatonic_chords(key, sevenths=True)
    cpb = genre.chords_per_bar
    flats = prefers_flats(key)
    roots = [c.root_pc for c in diatonic]

    def fitted(labels: list[str]) -> list[str]:
        out = []
        for label in labels:
            chord = fit_chord_to_key(label, key) or diatonic[0]
            if sevenths and chord.root_pc in roots and len(chord.pitch_classes) == 3:
                chord = diatonic7[roots.index(chord.root_pc)]
            out.append(chord.spelled(prefer_flats=flats))
        return out or [diatonic[0].spelled(prefer_flats=flats)]

    progressions: dict[str, list[str]] = {}
    for kind in sorted({_progression_kind(s.name, kinds) for s in plan.sections}):
        # Rejection sampling for variety: a 4-bar loop should move (>= 3 different chords) and differ from
        # the other sections' loops; up to HARMONY_TRIES draws, else the most varied draw.
        best, best_score = None, None
        for attempt in range(HARMONY_TRIES):
            prog = fitted(
                samplers.harmony(
                    key=pc_name(key.tonic_pc),
                    mode=model_mode,
                    mood=mood_token,
                    bars=4,
                    seed=sub_seed(seed, "harmony", kind, attempt),
                    temperature=mood.temperature,
                    chords_per_bar=cpb,
                )
            )
            distinct = len(set(prog))
            score = (min(distinct, 3), prog not in progressions.values(), distinct)
            if best_score is None or score > best_score:
                best, best_score = prog, score
            if distinct >= 3 and prog not in progressions.values():
                break
        progressions[kind] = best
    bpb = plan.beats_per_bar
    span = bpb / cpb
    out: list[tuple[float, float, str]] = []
    for sec in plan.sections:
        prog = progressions[_progression_kind(sec.name, kinds)]
        n = sec.bars * cpb
        for i in range(n):
            label = prog[i % len(prog)]
            if sec.name == "outro" and i == n - 1:
                label = (diatonic7 if sevenths else diatonic)[0].spelled(prefer_flats=flats)
            s = sec.start_bar * bpb + i * span
            out.append((s, s + span, label))
    tonic = (diatonic7 if sevenths else diatonic)[0].spelled(prefer_flats=flats)
    out.append((float(plan.music_beats), float(plan.end_beat), tonic))
    return out


def _chords_in(
    chords: list[tuple[float, float, str]], start: float, end: float
) -> list[tuple[float, float, str]]:
    return [(max(s, start), min(e, end), c) for s, e, c in chords if e > start and s < end]


def _parse(label: str) -> Chord:
    from core.music.theory import parse_chord

    c = parse_chord(label)
    return c if c is not None else Chord(0, "maj")


def _drums(
    plan: SongPlan,
    genre: Genre,
    mood: Mood,
    samplers: Samplers,
    seed: int,
    roles: tuple[str, ...],
) -> tuple[list[Note], dict[str, np.ndarray]]:
    """Drum notes and, per section kind, the kick steps of its longest occurrence (for the bass)."""
    notes: list[Note] = []
    kicks: dict[str, np.ndarray] = {}
    pitches = samplers.drum_pitches
    style = genre.drum_style
    if samplers.drum_styles and style not in samplers.drum_styles:
        style = samplers.drum_styles[0]
    patterns: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for sec in plan.sections:
        if "drums" not in roles_for_section(sec, roles):
            continue
        if sec.name not in patterns:  # one draw per section kind: repeated sections repeat their groove
            density = float(np.clip(mood.density * (0.55 + 0.5 * sec.energy), 0.25, 4.0))
            pat = samplers.drums(
                bars=_longest(plan, sec.name),
                style=style,
                seed=sub_seed(seed, "drums", sec.name),
                temperature=mood.temperature,
                density=density,
            )
            hits = np.array(pat.hits, dtype=bool)
            vel = np.array(pat.velocity, dtype=np.float32)
            off = np.array(pat.offset, dtype=np.float32)
            if genre.four_on_floor:
                beat_steps = np.arange(0, hits.shape[0], STEPS_PER_BEAT)
                hits[:, _KICK] = False
                hits[beat_steps, _KICK] = True
                vel[beat_steps, _KICK] = np.maximum(vel[beat_steps, _KICK], 0.85)
                off[:, _KICK] = 0.0
            patterns[sec.name] = (hits, vel, off)
            kicks[sec.name] = hits[:, _KICK].copy()
        steps = sec.bars * plan.beats_per_bar * STEPS_PER_BEAT
        hits, vel, off = (a[:steps].copy() for a in patterns[sec.name])
        if sec.name == "chorus" and hits.shape[0]:
            hits[0, _CRASH] = True
            vel[0, _CRASH] = max(float(vel[0, _CRASH]), 0.8)
        nxt = next((t for t in plan.sections if t.start_bar == sec.end_bar), None)
        if nxt is not None and nxt.name == "chorus":
            _fill(hits, vel, off, genre)
        vscale = mood.velocity * (0.8 + 0.25 * sec.energy)
        base = sec.start_bar * plan.beats_per_bar
        steps, classes = np.nonzero(hits)
        for k, c in zip(steps.tolist(), classes.tolist(), strict=True):
            beat = _swing(base + k / STEPS_PER_BEAT, amount=genre.swing, unit=_swing_unit(genre))
            beat += float(off[k, c]) * genre.humanize / STEPS_PER_BEAT
            v = _vel(127 * max(0.05, float(vel[k, c])), vscale)
            notes.append(Note(max(0.0, beat), max(0.0, beat) + 0.25, pitches[c], v))
    if "drums" in roles:
        end = float(plan.music_beats)
        notes.append(Note(end, end + 1.0, pitches[_KICK], _vel(110, mood.velocity)))
        notes.append(Note(end, end + 2.0, pitches[_CRASH], _vel(105, mood.velocity)))
    return notes, kicks


#: Fill played on the last beat(s) before a chorus, per genre (default: a tom run).
_FILLS = {"edm": "roll", "hip-hop": None, "lo-fi": None, "jazz": None}
_TOMS = (6, 6, 5, 4)  # high, high, mid, low tom on the last four 16ths


def _fill(hits: np.ndarray, vel: np.ndarray, off: np.ndarray, genre: Genre) -> None:
    """Write a fill into the end of a pattern (in place): a tom run, or a snare roll for EDM."""
    kind = _FILLS.get(genre.name, "toms")
    if kind is None or hits.shape[0] < 8:
        return
    n = hits.shape[0]
    if kind == "roll":  # the last two beats: 16th snares, rising
        span = range(n - 8, n)
        for j, k in enumerate(span):
            hits[k, 1:] = False
            hits[k, 1] = True
            vel[k, 1] = 0.45 + 0.5 * j / 7
            off[k, :] = 0.0
        return
    for j, k in enumerate(range(n - 4, n)):
        hits[k, 1:] = False  # keep the kick, clear snare/hats/cymbals under the fill
        hits[k, _TOMS[j]] = True
        vel[k, _TOMS[j]] = 0.7 + 0.08 * j
        off[k, _TOMS[j]] = 0.0


def _longest(plan: SongPlan, name: str) -> int:
    """Bars of the longest section of kind ``name``."""
    return max(s.bars for s in plan.sections if s.name == name)


def _model_part(plan: SongPlan, roles: tuple[str, ...], role: str, draw) -> list[tuple[Section, list]]:
    """Draw a model part once per section kind (at its longest length) and give each section its prefix.

    ``draw(section)`` samples for the longest section of that kind; shorter occurrences start the same
    way (same progression loop, same kick pattern), so their material is the beginning of that draw.
    """
    drawn: dict[str, list] = {}
    out = []
    for sec in plan.sections:
        if role not in roles_for_section(sec, roles):
            continue
        if sec.name not in drawn:
            longest = next(
                s for s in plan.sections if s.name == sec.name and s.bars == _longest(plan, sec.name)
            )
            drawn[sec.name] = list(draw(longest))
        beats = sec.bars * plan.beats_per_bar
        out.append((sec, [n for n in drawn[sec.name] if float(n[0]) < beats - 1e-9]))
    return out


def _swing_unit(genre: Genre) -> float:
    return 0.5 if genre.name == "jazz" else 0.25


def _bass(
    plan: SongPlan,
    genre: Genre,
    mood: Mood,
    samplers: Samplers,
    seed: int,
    roles: tuple[str, ...],
    chords: list[tuple[float, float, str]],
    kicks: dict[str, np.ndarray],
) -> list[Note]:
    notes: list[Note] = []
    bpb = plan.beats_per_bar

    def draw(sec: Section) -> list:
        start, beats = sec.start_bar * bpb, sec.bars * bpb
        rel = [(s - start, e - start, c) for s, e, c in _chords_in(chords, start, start + beats)]
        return samplers.bass(
            chords=rel,
            steps_per_beat=STEPS_PER_BEAT,
            beats=beats,
            beats_per_bar=bpb,
            seed=sub_seed(seed, "bass", sec.name),
            temperature=mood.temperature,
            kick=kicks.get(sec.name),
            register=genre.bass_register,
        )

    for sec, out in _model_part(plan, roles, "bass", draw):
        start, beats = sec.start_bar * bpb, sec.bars * bpb
        vscale = mood.velocity * (0.85 + 0.2 * sec.energy)
        for s, e, p, v in out:
            s2 = _swing(start + float(s), amount=genre.swing, unit=_swing_unit(genre))
            e2 = min(start + float(e), start + beats)
            notes.append(Note(s2, max(e2, s2 + 0.1), int(p), _vel(float(v), vscale)))
    if "bass" in roles:
        tonic = _parse(chords[-1][2]).root_pc
        p = genre.bass_register + (tonic - genre.bass_register) % 12
        notes.append(Note(float(plan.music_beats), float(plan.music_beats) + 2.0, p, _vel(96, mood.velocity)))
    return notes


def _lead(
    plan: SongPlan,
    key: Key,
    mood: Mood,
    genre: Genre,
    samplers: Samplers,
    seed: int,
    roles: tuple[str, ...],
    chords: list[tuple[float, float, str]],
) -> list[Note]:
    notes: list[Note] = []
    bpb = plan.beats_per_bar
    mode = "minor" if key.is_minor else "major"

    def draw(sec: Section) -> list:
        start, beats = sec.start_bar * bpb, sec.bars * bpb
        rel = [(s - start, e - start, c) for s, e, c in _chords_in(chords, start, start + beats)]
        # a lead that hardly plays is no lead: redraw (up to MELODY_TRIES) until it has a note per bar
        best: list = []
        for attempt in range(MELODY_TRIES):
            notes = list(
                samplers.melody(
                    key=pc_name(key.tonic_pc),
                    mode=mode,
                    chords=rel,
                    beats=beats,
                    seed=sub_seed(seed, "melody", sec.name, attempt),
                    temperature=mood.temperature,
                    register=72 + mood.register,
                    density=float(np.clip(mood.density * (0.6 + 0.5 * sec.energy), 0.25, 2.0)),
                )
            )
            if len(notes) > len(best):
                best = notes
            if len(notes) >= sec.bars:
                break
        return best

    for sec, out in _model_part(plan, roles, "lead", draw):
        start, beats = sec.start_bar * bpb, sec.bars * bpb
        vscale = mood.velocity * (0.85 + 0.2 * sec.energy)
        for s, e, p, v in out:
            s2 = _swing(start + float(s), amount=genre.swing, unit=_swing_unit(genre))
            e2 = min(start + float(e), start + beats)
            notes.append(Note(s2, max(e2, s2 + 0.1), int(p), _vel(float(v), vscale)))
    return notes


def _comp_events(start: float, end: float, pattern, bpb: int) -> list[tuple[float, float, float]]:
    out = []
    bar0 = int(start // bpb)
    bar1 = int(np.ceil(end / bpb))
    for bar in range(bar0, bar1):
        for off, dur, v in pattern:
            t = bar * bpb + off
            if start - 1e-9 <= t < end - 1e-9:
                out.append((t, min(dur, end - t), v))
    return out


def _chord_part(
    role: str,
    plan: SongPlan,
    genre: Genre,
    mood: Mood,
    roles: tuple[str, ...],
    chords: list[tuple[float, float, str]],
) -> list[Note]:
    low, high = _ROLE_RANGE[role]
    shift = int(np.clip(mood.register, -5, 5))
    low, high = low + shift, high + shift
    bpb = plan.beats_per_bar
    notes: list[Note] = []
    previous: list[int] | None = None
    base = _ROLE_VELOCITY[role] * mood.velocity
    for sec in plan.sections:
        if role not in roles_for_section(sec, roles):
            previous = None
            continue
        vscale = 0.78 + 0.25 * sec.energy
        busy = mood.density * (0.5 + 0.6 * sec.energy)
        start, end = sec.start_bar * bpb, sec.end_bar * bpb
        for s, e, label in _chords_in(chords, start, end):
            chord = _parse(label)
            pcs = chord.pitch_classes
            if genre.voicing == "power" and role in ("guitar", "keys"):
                pcs = (pcs[0], pcs[2 if len(pcs) > 2 else -1])
                voicing = voice_chord(pcs, low=low - 8, high=high - 6, previous=previous, size=3)
            else:
                voicing = voice_chord(pcs, low=low, high=high, previous=previous, size=max(3, len(pcs)))
            previous = voicing
            notes += _play_chord(role, voicing, s, e, genre, busy, bpb, base * vscale)
    if any(r == role for r in roles) and role in ("keys", "pad", "strings", "guitar"):
        chord = _parse(chords[-1][2])
        voicing = voice_chord(chord.pitch_classes, low=low, high=high, previous=previous)
        end_b, stop = float(plan.music_beats), float(plan.end_beat)
        notes += [Note(end_b, max(end_b + 0.5, stop - 0.05), p, _vel(base, 0.9)) for p in voicing]
    return notes


def _play_chord(
    role: str, voicing: list[int], s: float, e: float, genre: Genre, busy: float, bpb: int, vel: float
) -> list[Note]:
    out: list[Note] = []
    if role in ("pad", "strings"):
        return [Note(s, e, p, _vel(vel, 1.0)) for p in voicing]
    if role == "arp":
        step = 0.25 if busy >= 0.75 else 0.5
        seq = voicing + [p + 12 for p in voicing]
        seq = seq + seq[-2:0:-1]
        t, i = s, 0
        while t < e - 1e-9:
            tt = _swing(t, amount=genre.swing, unit=_swing_unit(genre))
            out.append(Note(tt, tt + step * 0.9, seq[i % len(seq)], _vel(vel, 1.0 if i % 4 == 0 else 0.8)))
            t += step
            i += 1
        return out
    if role == "pluck":
        t, i = s, 0
        while t < e - 1e-9:
            tt = _swing(t, amount=genre.swing, unit=_swing_unit(genre))
            p = voicing[(i * 2) % len(voicing)] if i % 2 == 0 else voicing[-1]
            out.append(Note(tt, tt + 0.4, p, _vel(vel, 1.0 if i % 2 == 0 else 0.8)))
            t += 0.5
            i += 1
        return out
    if role == "brass":
        pattern = ((0.0, 0.5, 1.0), (2.5, 0.5, 0.9)) if busy >= 0.7 else ((0.0, 1.5, 0.9),)
    elif busy < 0.45:
        pattern = COMP_PATTERNS["halves"]
    else:
        pattern = COMP_PATTERNS[genre.comp]
    for t, dur, v in _comp_events(s, e, pattern, bpb):
        tt = _swing(t, amount=genre.swing, unit=_swing_unit(genre))
        out += [Note(tt, tt + dur * 0.95, p, _vel(vel, v)) for p in voicing]
    return out


def keep_in_key(notes: list[Note], key: Key, *, budget: int) -> tuple[list[Note], int]:
    """Move out-of-scale notes of one part to the scale, keeping up to ``budget`` chromatic passing tones.

    A kept note is short (<= half a beat) and lies strictly between its neighbours, each a step (1-2
    semitones) away and in the scale, in one direction (e.g. C-C#-D). Returns the notes and how many
    chromatic notes were kept.
    """
    ordered = sorted(notes, key=lambda n: (n.start, n.pitch))
    out: list[Note] = []
    kept = 0
    for i, n in enumerate(ordered):
        if in_key(n.pitch, key):
            out.append(n)
            continue
        prev = out[-1].pitch if out else None
        nxt = ordered[i + 1].pitch if i + 1 < len(ordered) else None
        passing = (
            prev is not None
            and nxt is not None
            and in_key(prev, key)
            and in_key(nxt, key)
            and n.end - n.start <= 0.5
            and 1 <= abs(n.pitch - prev) <= 2
            and 1 <= abs(nxt - n.pitch) <= 2
            and (n.pitch - prev) * (nxt - n.pitch) > 0
        )
        if passing and kept < budget:
            kept += 1
            out.append(n)
            continue
        direction_down = prev is not None and prev < n.pitch
        out.append(n._replace(pitch=nearest_in_scale(n.pitch, key, prefer_down=direction_down)))
    return out, kept


def arrange(
    *,
    plan: SongPlan,
    key: Key,
    genre: Genre,
    mood: Mood,
    roles: tuple[str, ...],
    seed: int,
    samplers: Samplers,
    on_part: Callable[[str, Part], None] | None = None,
) -> Arrangement:
    """Arrange a song (see the module docstring). Returns one :class:`Part` per role, notes in beats.

    ``on_part(role, part)`` is called as soon as each part is final (chord parts first, then drums, then
    bass and lead), so a caller can start rendering while the models are still writing.
    """

    def make(role: str, notes: list[Note]) -> Part:
        program = 0 if role == "drums" else program_for(genre, role)
        ordered = sorted(notes, key=lambda n: (n.start, n.pitch))
        part = Part(role, program=program, is_drum=role == "drums", notes=ordered, pan=ROLE_PAN[role])
        if on_part is not None:
            on_part(role, part)
        return part

    chords = _section_chords(plan, key, genre, mood, samplers, seed)
    parts: dict[str, Part] = {}
    pitched = 0
    # chord parts: diatonic chord tones by construction (keep_in_key with no budget only guarantees it)
    for role in roles:
        if role not in ("drums", "bass", "lead"):
            notes, _ = keep_in_key(_chord_part(role, plan, genre, mood, roles, chords), key, budget=0)
            pitched += len(notes)
            parts[role] = make(role, notes)
    kicks: dict[str, np.ndarray] = {}
    if "drums" in roles:
        drum_notes, kicks = _drums(plan, genre, mood, samplers, seed, roles)
        parts["drums"] = make("drums", drum_notes)
    raw: dict[str, list[Note]] = {}
    if "bass" in roles:
        raw["bass"] = _bass(plan, genre, mood, samplers, seed, roles, chords, kicks)
    if "lead" in roles:
        raw["lead"] = _lead(plan, key, mood, genre, samplers, seed, roles, chords)
    pitched += sum(len(v) for v in raw.values())
    budget = int(MAX_CHROMATIC_SHARE * pitched)
    chromatic = 0
    for role, notes in raw.items():
        fixed, kept = keep_in_key(notes, key, budget=budget - chromatic)
        chromatic += kept
        parts[role] = make(role, fixed)
    ordered = {role: parts[role] for role in roles}
    return Arrangement(parts=ordered, chords=chords, pitched_notes=pitched, chromatic_notes=chromatic)


def section_of(plan: SongPlan, beat: float) -> Section | None:
    """The section that contains ``beat`` (None in the final ring-out)."""
    bar = int(beat // plan.beats_per_bar)
    return next((s for s in plan.sections if s.start_bar <= bar < s.end_bar), None)
