"""Music theory: pitch classes, keys, scales and modes, chord labels, voicings, progressions.

Everything here is pure and cheap (no numpy needed). Pitches are MIDI note numbers (60 = C4);
pitch classes are ``0..11`` with ``0 = C``. Chord labels use the Harte-style notation of
POP909's ``chord_midi.txt`` and of the harmony model: ``"C:maj"``, ``"A:min"``, ``"G:7"``,
``"B:dim"``, ``"F:maj7/3"``; ``"N"`` means no chord.

Examples
--------
>>> parse_key("A minor")
Key(tonic_pc=9, mode='minor')
>>> chord_pitch_classes("G:7")
(7, 11, 2, 5)
>>> in_key(61, parse_key("C major"))
False
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.errors import InputError

NOTE_NAMES_SHARP = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
NOTE_NAMES_FLAT = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
_LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}

#: Scale intervals (semitones above the tonic) of every mode we support.
SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "harmonic minor": (0, 2, 3, 5, 7, 8, 11),
    "major pentatonic": (0, 2, 4, 7, 9),
    "minor pentatonic": (0, 3, 5, 7, 10),
}
#: Modes a song key may have (seven-note modes; pentatonics are melodic scales only).
KEY_MODES = ("major", "minor", "dorian", "mixolydian", "phrygian", "lydian", "harmonic minor")
_MODE_ALIASES = {
    "": "major",
    "maj": "major",
    "major": "major",
    "ionian": "major",
    "m": "minor",
    "min": "minor",
    "minor": "minor",
    "aeolian": "minor",
    "dorian": "dorian",
    "mixolydian": "mixolydian",
    "mixo": "mixolydian",
    "phrygian": "phrygian",
    "lydian": "lydian",
    "harmonic minor": "harmonic minor",
    "harmonic": "harmonic minor",
}

#: Chord qualities: intervals above the root.
CHORD_QUALITIES: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "dim": (0, 3, 6),
    "aug": (0, 4, 8),
    "sus2": (0, 2, 7),
    "sus4": (0, 5, 7),
    "5": (0, 7),
    "7": (0, 4, 7, 10),
    "maj7": (0, 4, 7, 11),
    "min7": (0, 3, 7, 10),
    "minmaj7": (0, 3, 7, 11),
    "dim7": (0, 3, 6, 9),
    "hdim7": (0, 3, 6, 10),
    "maj6": (0, 4, 7, 9),
    "min6": (0, 3, 7, 9),
    "9": (0, 4, 7, 10, 14),
    "maj9": (0, 4, 7, 11, 14),
    "min9": (0, 3, 7, 10, 14),
    "add9": (0, 4, 7, 14),
}
#: Other spellings of :data:`CHORD_QUALITIES` (``"m7"`` = ``"min7"``, ``""`` = ``"maj"``, ...).
QUALITY_ALIASES = {
    "": "maj",
    "M": "maj",
    "major": "maj",
    "m": "min",
    "minor": "min",
    "-": "min",
    "o": "dim",
    "+": "aug",
    "sus": "sus4",
    "dom7": "7",
    "M7": "maj7",
    "m7": "min7",
    "-7": "min7",
    "m7b5": "hdim7",
    "o7": "dim7",
    "6": "maj6",
    "m6": "min6",
    "m9": "min9",
    "M9": "maj9",
}
_INTERVAL_DEGREES = {"1": 0, "b2": 1, "2": 2, "b3": 3, "3": 4, "4": 5, "#4": 6, "b5": 6, "5": 7}
_INTERVAL_DEGREES.update({"#5": 8, "b6": 8, "6": 9, "b7": 10, "7": 11})

_KEY_FORMS = 'a tonic A-G with optional #/b and a mode, e.g. "A minor", "F# major", "Bbm", "C", "D dorian"'


@dataclass(frozen=True)
class Key:
    """A key: tonic pitch class and mode (one of :data:`KEY_MODES`)."""

    tonic_pc: int
    mode: str

    @property
    def scale(self) -> tuple[int, ...]:
        """Pitch classes of the key's scale, tonic first."""
        return scale_pitch_classes(self.tonic_pc, self.mode)

    @property
    def is_minor(self) -> bool:
        """True for modes with a minor third (minor, dorian, phrygian, harmonic minor)."""
        return SCALES[self.mode][2] == 3

    @property
    def name(self) -> str:
        """Readable name such as ``"A minor"`` or ``"Bb major"``."""
        return f"{pc_name(self.tonic_pc, prefer_flats=prefers_flats(self))} {self.mode}"

    def __str__(self) -> str:
        return self.name


def pc_name(pc: int, *, prefer_flats: bool = False) -> str:
    """Name of a pitch class, with sharps (default) or flats."""
    return (NOTE_NAMES_FLAT if prefer_flats else NOTE_NAMES_SHARP)[pc % 12]


def note_name(pitch: int, *, prefer_flats: bool = False) -> str:
    """Scientific pitch name of a MIDI note: ``note_name(60) == "C4"``."""
    return f"{pc_name(pitch, prefer_flats=prefer_flats)}{pitch // 12 - 1}"


def prefers_flats(key: Key) -> bool:
    """Whether a key is conventionally spelled with flats (F major, D minor, Bb major, ...)."""
    relative_major = (key.tonic_pc - SCALES[key.mode][0] + (3 if key.is_minor else 0)) % 12
    return relative_major in (5, 10, 3, 8, 1)


def parse_pitch_class(text: str) -> int:
    """Parse a note name without octave (``"C"``, ``"F#"``, ``"Bb"``, ``"Eb"``) to a pitch class.

    Raises
    ------
    InputError
        If ``text`` is not a note name.
    """
    s = str(text).strip()
    if not s or s[0].upper() not in _LETTER_PC:
        raise InputError(
            f"Unknown note name {text!r}: use a letter A-G with optional # or b (e.g. 'F#', 'Bb')."
        )
    pc = _LETTER_PC[s[0].upper()]
    for ch in s[1:]:
        if ch in "#♯":
            pc += 1
        elif ch in "b♭":
            pc -= 1
        else:
            raise InputError(
                f"Unknown note name {text!r}: use a letter A-G with optional # or b (e.g. 'F#', 'Bb')."
            )
    return pc % 12


def parse_key(text: str) -> Key:
    """Parse a key name.

    Accepted forms: ``"A minor"``, ``"A min"``, ``"Am"``, ``"F# major"``, ``"F#"``, ``"Bbm"``,
    ``"Eb maj"``, ``"D dorian"``, ``"G mixolydian"``, ``"a:min"`` (case of the mode is ignored;
    a tonic alone means major).

    Raises
    ------
    InputError
        Naming the bad text and the accepted forms.

    Examples
    --------
    >>> parse_key("Bbm")
    Key(tonic_pc=10, mode='minor')
    >>> parse_key("F# major").name
    'F# major'
    """
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"Key {text!r} is empty or not text: use {_KEY_FORMS}.")
    s = text.strip().replace(":", " ").replace("_", " ")
    m = re.fullmatch(r"([A-Ga-g])([#♯b♭]?)\s*(.*)", s)
    if not m:
        raise InputError(f"Unknown key {text!r}: use {_KEY_FORMS}.")
    tonic = parse_pitch_class(m.group(1).upper() + m.group(2))
    rest = m.group(3).strip()
    mode = (
        _MODE_ALIASES.get(rest) if rest in ("m", "M") else _MODE_ALIASES.get(" ".join(rest.lower().split()))
    )
    if rest == "M":
        mode = "major"
    if mode is None:
        raise InputError(
            f"Unknown mode {rest!r} in key {text!r}: use {_KEY_FORMS}; modes: {', '.join(KEY_MODES)}."
        )
    return Key(tonic, mode)


def scale_pitch_classes(tonic_pc: int, mode: str) -> tuple[int, ...]:
    """Pitch classes of a scale, tonic first.

    Raises
    ------
    InputError
        For an unknown scale name (the message lists :data:`SCALES`).
    """
    if mode not in SCALES:
        raise InputError(f"Unknown scale {mode!r}: allowed {', '.join(SCALES)}.")
    return tuple((tonic_pc + i) % 12 for i in SCALES[mode])


def in_key(pitch: int, key: Key) -> bool:
    """Whether a MIDI pitch (or pitch class) belongs to the key's scale."""
    return pitch % 12 in key.scale


def scale_pitches(key: Key, *, low: int, high: int) -> list[int]:
    """All MIDI pitches of the key's scale in ``[low, high]``."""
    pcs = set(key.scale)
    return [p for p in range(low, high + 1) if p % 12 in pcs]


def nearest_in_scale(pitch: int, key: Key, *, prefer_down: bool = False) -> int:
    """The scale pitch closest to ``pitch`` (ties resolved upward unless ``prefer_down``)."""
    if in_key(pitch, key):
        return pitch
    order = (-1, 1) if prefer_down else (1, -1)
    for d in (1, 2):
        for sign in order:
            if in_key(pitch + sign * d, key):
                return pitch + sign * d
    return pitch  # unreachable for seven- and five-note scales


@dataclass(frozen=True)
class Chord:
    """A parsed chord label: root pitch class, quality and optional bass pitch class."""

    root_pc: int
    quality: str
    bass_pc: int | None = None

    @property
    def pitch_classes(self) -> tuple[int, ...]:
        """Pitch classes, root first (extensions above the octave folded in)."""
        out: list[int] = []
        for i in CHORD_QUALITIES[self.quality]:
            pc = (self.root_pc + i) % 12
            if pc not in out:
                out.append(pc)
        return tuple(out)

    @property
    def label(self) -> str:
        """The canonical label with sharps, e.g. ``"A:min"``, ``"A#:maj"``."""
        return self.spelled()

    def spelled(self, *, prefer_flats: bool = False) -> str:
        """The label spelled with flats or sharps, e.g. ``"Bb:maj"`` in F major."""
        base = f"{pc_name(self.root_pc, prefer_flats=prefer_flats)}:{self.quality}"
        if self.bass_pc is not None and self.bass_pc != self.root_pc:
            base += f"/{pc_name(self.bass_pc, prefer_flats=prefer_flats)}"
        return base

    @property
    def lowest_pc(self) -> int:
        """The bass note's pitch class (the root unless an inversion is given)."""
        return self.root_pc if self.bass_pc is None else self.bass_pc


_CHORD_RE = re.compile(r"([A-Ga-g][#b♯♭]*):?([^/(]*)(?:\([^)]*\))*(?:/(.+))?")


def split_chord_label(label: str) -> tuple[int, str, str | None] | None:
    """Split a chord label into its root pitch class, quality text and bass text, as written.

    The grammar is ``ROOT[:]QUALITY[(TONES)...][/BASS]``. Added/omitted tones in parentheses are
    dropped (``"sus4(b7)"`` gives ``"sus4"``); the quality is not resolved (:func:`parse_chord` maps it
    through :data:`QUALITY_ALIASES` onto :data:`CHORD_QUALITIES`). ``"N"``, ``"X"`` and ``""`` (no
    chord) give ``None``.

    Raises
    ------
    InputError
        If the label does not have that form or its root is not a note name.

    Examples
    --------
    >>> split_chord_label("F#:min7(9)/b7")
    (6, 'min7', 'b7')
    >>> split_chord_label("Bbm")
    (10, 'm', None)
    """
    s = str(label).strip()
    if s in ("N", "X", ""):
        return None
    m = _CHORD_RE.fullmatch(s)
    if not m:
        raise InputError(
            f"Unknown chord label {label!r}: use e.g. 'C:maj', 'A:min', 'G:7', 'B:dim', 'F:maj7/3'."
        )
    root = parse_pitch_class(m.group(1)[0].upper() + m.group(1)[1:])
    return root, m.group(2).strip(), None if m.group(3) is None else m.group(3).strip()


def parse_chord(label: str) -> Chord | None:
    """Parse a chord label; return None for ``"N"`` (no chord).

    Accepts ``"C:maj"``, ``"A:min7"``, ``"G:7"``, ``"B:dim"``, ``"F:maj/3"`` (bass as an interval),
    ``"F:maj/A"`` (bass as a note), ``"Bb:min"``, and short forms ``"Am"``, ``"G7"``, ``"C"``
    (see :func:`split_chord_label`).

    Raises
    ------
    InputError
        For an unknown root or quality (the message lists the allowed qualities).

    Examples
    --------
    >>> parse_chord("A:min").pitch_classes
    (9, 0, 4)
    >>> parse_chord("F:maj/3").lowest_pc
    9
    """
    parts = split_chord_label(label)
    if parts is None:
        return None
    root, written, bass_text = parts
    qual = QUALITY_ALIASES.get(written, written)
    if qual not in CHORD_QUALITIES:
        raise InputError(
            f"Unknown chord quality {written!r} in {label!r}: allowed {', '.join(CHORD_QUALITIES)}."
        )
    bass = None
    if bass_text:
        if bass_text in _INTERVAL_DEGREES:
            bass = (root + _INTERVAL_DEGREES[bass_text]) % 12
        elif bass_text.lstrip("b#").isdigit():
            bass = None  # extension-style bass interval we do not model (e.g. "/9"): root position
        else:
            bass = parse_pitch_class(bass_text)
    return Chord(root, qual, bass)


def chord_pitch_classes(label: str) -> tuple[int, ...]:
    """Pitch classes of a chord label (empty for ``"N"``)."""
    c = parse_chord(label)
    return () if c is None else c.pitch_classes


def diatonic_chord(key: Key, degree: int, *, sevenths: bool = False) -> Chord:
    """The chord built in thirds on scale degree ``degree`` (0-based) of a seven-note key."""
    scale = key.scale
    n = len(scale)
    tones = [scale[(degree + 2 * k) % n] for k in range(4 if sevenths else 3)]
    ivs = tuple((t - tones[0]) % 12 for t in tones)
    for q, pattern in CHORD_QUALITIES.items():
        if pattern == ivs:
            return Chord(tones[0], q)
    # Triads in thirds of a seven-note scale always match; keep a safe fallback for odd modes.
    return Chord(tones[0], "5")


def diatonic_chords(key: Key, *, sevenths: bool = False) -> list[Chord]:
    """The seven diatonic chords of a key (I..VII)."""
    return [diatonic_chord(key, d, sevenths=sevenths) for d in range(len(key.scale))]


def fit_chord_to_key(label: str, key: Key) -> Chord | None:
    """Return the chord if all its tones are in the key, else the diatonic chord closest to it.

    "Closest" = the diatonic triad (or seventh, for four-note chords) that shares the most pitch
    classes with the label, ties broken by root distance. Used to keep generated harmony in key.
    """
    c = parse_chord(label)
    if c is None:
        return None
    pcs = set(key.scale)
    if set(c.pitch_classes) <= pcs and (c.bass_pc is None or c.bass_pc in pcs):
        return c
    sevenths = len(c.pitch_classes) >= 4
    best, best_score = None, None
    for d, cand in enumerate(diatonic_chords(key, sevenths=sevenths)):
        shared = len(set(cand.pitch_classes) & set(c.pitch_classes))
        dist = min((cand.root_pc - c.root_pc) % 12, (c.root_pc - cand.root_pc) % 12)
        score = (shared, -dist, -d)
        if best_score is None or score > best_score:
            best, best_score = cand, score
    return best


def roman_progression(key: Key, degrees: list[int], *, sevenths: bool = False) -> list[str]:
    """Chord labels of a progression given as 0-based scale degrees (``[0, 4, 5, 3]`` = I-V-vi-IV)."""
    return [diatonic_chord(key, d % 7, sevenths=sevenths).label for d in degrees]


def voice_chord(
    pcs: tuple[int, ...] | list[int],
    *,
    low: int,
    high: int,
    previous: list[int] | None = None,
    size: int | None = None,
) -> list[int]:
    """Voice pitch classes as MIDI pitches in ``[low, high]`` with smooth voice leading.

    Every candidate voicing (close position, every inversion and octave placement in range) is
    scored by its total distance to ``previous`` (or to the middle of the range when there is no
    previous chord), and the smoothest one wins. ``size`` (default: number of pitch classes) adds
    doubled chord tones from the bottom.

    Examples
    --------
    >>> voice_chord((0, 4, 7), low=48, high=72)
    [55, 60, 64]
    >>> voice_chord((5, 9, 0), low=48, high=72, previous=[55, 60, 64])
    [57, 60, 65]
    """
    pcs = list(dict.fromkeys(p % 12 for p in pcs))
    if not pcs:
        return []
    size = size or len(pcs)
    centre = (low + high) / 2
    best: list[int] | None = None
    best_cost = None
    for inv in range(len(pcs)):
        order = pcs[inv:] + pcs[:inv]
        order = (order * ((size + len(order) - 1) // len(order)))[:size]
        for base in range(low, high + 1):
            if base % 12 != order[0]:
                continue
            voicing = [base]
            for pc in order[1:]:
                nxt = voicing[-1] + 1
                while nxt % 12 != pc:
                    nxt += 1
                voicing.append(nxt)
            if voicing[-1] > high:
                break
            cost = _cost(voicing, previous, centre)
            if best_cost is None or cost < best_cost:
                best, best_cost = voicing, cost
    if best is None:  # range too narrow for this chord size: stack from low without the range check
        best = sorted(low + ((pc - low) % 12) for pc in pcs)[:size]
    return best


def _cost(voicing: list[int], previous: list[int] | None, centre: float) -> float:
    if not previous:
        return abs(sum(voicing) / len(voicing) - centre)
    prev = sorted(previous)
    return float(sum(min(abs(v - p) for p in prev) for v in voicing)) + 0.5 * abs(voicing[0] - prev[0])
