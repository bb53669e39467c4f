"""Instrument roles, General MIDI programs, and the genre and mood tables of the song generator.

A *role* is what a stem does in the arrangement (``drums``, ``bass``, ``keys``, ``pad``, ``lead``,
``arp``, ``strings``, ``guitar``, ``brass``, ``pluck``). Each genre maps every role to a General MIDI
program (0-based program numbers as :mod:`pretty_midi` uses them) and fixes its tempo range, default
instruments, drum style (one of the drum model's ``STYLES``), swing, chord voicing and comping style
and bass register. Each mood fixes the mode used when no key is given, the mood token passed to the
harmony model, and how dense, high and loud the parts are.

Examples
--------
>>> get_genre("k-pop").drum_style
'pop'
>>> get_mood("sad").mode
'minor'
>>> parse_instruments("drums, bass,keys")
('drums', 'bass', 'keys')
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.errors import InputError

#: Every instrument role a song can have, in mixing/listing order.
ROLES = ("drums", "bass", "keys", "pad", "strings", "guitar", "brass", "pluck", "arp", "lead")
#: Roles rendered from chord voicings by rule (the others come from the trained models).
CHORD_ROLES = ("keys", "pad", "strings", "guitar", "brass", "pluck", "arp")

# Comping rhythms: per bar of 4 beats, (start beat, length in beats, velocity scale).
COMP_PATTERNS: dict[str, tuple[tuple[float, float, float], ...]] = {
    "sustain": ((0.0, 4.0, 1.0),),
    "halves": ((0.0, 2.0, 1.0), (2.0, 2.0, 0.85)),
    "pop": ((0.0, 1.5, 1.0), (1.5, 1.0, 0.8), (2.5, 1.5, 0.85)),
    "kpop": ((0.0, 0.75, 1.0), (0.75, 0.75, 0.8), (1.5, 1.0, 0.9), (3.0, 0.5, 0.8), (3.5, 0.5, 0.85)),
    "offbeat": ((0.5, 0.4, 1.0), (1.5, 0.4, 0.9), (2.5, 0.4, 1.0), (3.5, 0.4, 0.9)),
    "eighths": tuple((i * 0.5, 0.45, 1.0 if i % 2 == 0 else 0.8) for i in range(8)),
    "funk": (
        (0.0, 0.2, 1.0),
        (0.75, 0.2, 0.8),
        (1.5, 0.2, 0.9),
        (2.25, 0.2, 0.75),
        (2.75, 0.2, 0.9),
        (3.5, 0.2, 0.8),
    ),
    "jazz": ((0.0, 0.9, 0.9), (1.5, 0.45, 1.0), (2.5, 1.0, 0.85), (3.5, 0.45, 0.8)),
    "montuno": (
        (0.0, 0.4, 1.0),
        (1.0, 0.4, 0.8),
        (1.5, 0.4, 0.9),
        (2.5, 0.4, 0.9),
        (3.0, 0.4, 0.8),
        (3.5, 0.4, 0.9),
    ),
}


@dataclass(frozen=True)
class Genre:
    """What a genre means to the arranger (see the module docstring)."""

    name: str
    tempo_range: tuple[int, int]
    default_tempo: int
    default_instruments: tuple[str, ...]
    drum_style: str
    programs: dict[str, int] = field(hash=False)
    swing: float = 0.0
    humanize: float = 0.3
    voicing: str = "triad"
    comp: str = "pop"
    bass_register: int = 36
    four_on_floor: bool = False
    chords_per_bar: int = 1


_BASE_PROGRAMS = {
    "bass": 33,  # electric bass (finger)
    "keys": 0,  # acoustic grand piano
    "pad": 89,  # pad 2 (warm)
    "strings": 48,  # string ensemble 1
    "guitar": 27,  # electric guitar (clean)
    "brass": 61,  # brass section
    "pluck": 45,  # pizzicato strings
    "arp": 81,  # lead 2 (sawtooth)
    "lead": 80,  # lead 1 (square)
}


def _programs(**over: int) -> dict[str, int]:
    out = dict(_BASE_PROGRAMS)
    out.update(over)
    return out


#: The genre table.
GENRES: dict[str, Genre] = {
    g.name: g
    for g in (
        Genre("pop", (90, 130), 112, ("drums", "bass", "keys", "lead"), "pop", _programs(), voicing="triad"),
        Genre(
            "k-pop", (95, 140), 122, ("drums", "bass", "keys", "pad", "lead"), "pop",
            _programs(bass=38, keys=4, pad=90, lead=81, arp=81, pluck=108), comp="kpop", voicing="seventh",
            bass_register=33,
        ),
        Genre(
            "hip-hop", (75, 100), 90, ("drums", "bass", "keys", "lead"), "hiphop",
            _programs(bass=38, keys=4, lead=11, pad=88), swing=0.25, comp="sustain", voicing="seventh",
            bass_register=31,
        ),
        Genre(
            "rock", (100, 160), 128, ("drums", "bass", "guitar", "lead"), "rock",
            _programs(bass=34, keys=16, guitar=29, lead=30), comp="eighths", voicing="power", humanize=0.4,
            bass_register=33,
        ),
        Genre(
            "edm", (118, 132), 126, ("drums", "bass", "pad", "arp", "lead"), "dance",
            _programs(bass=38, keys=90, pad=90, lead=81, arp=81, pluck=84), comp="offbeat", voicing="seventh",
            four_on_floor=True, humanize=0.0, bass_register=33,
        ),
        Genre(
            "funk", (95, 120), 104, ("drums", "bass", "guitar", "brass"), "funk",
            _programs(bass=36, keys=4, guitar=28, lead=66), swing=0.1, comp="funk", voicing="seventh",
            humanize=0.5, bass_register=31,
        ),
        Genre(
            "r&b", (65, 100), 84, ("drums", "bass", "keys", "pad", "lead"), "soul",
            _programs(keys=4, pad=89, lead=73), swing=0.15, comp="halves", voicing="seventh",
            bass_register=33,
        ),
        Genre(
            "lo-fi", (70, 92), 80, ("drums", "bass", "keys", "lead"), "hiphop",
            _programs(keys=4, bass=32, lead=11, pad=89), swing=0.3, comp="sustain", voicing="seventh",
            humanize=0.6, bass_register=33,
        ),
        Genre(
            "jazz", (90, 200), 132, ("drums", "bass", "keys", "lead"), "jazz",
            _programs(bass=32, keys=0, guitar=26, lead=65, brass=56), swing=0.33, comp="jazz",
            voicing="seventh", humanize=0.5, bass_register=33,
        ),
        Genre(
            "latin", (90, 130), 108, ("drums", "bass", "keys", "guitar", "brass"), "latin",
            _programs(bass=32, keys=0, guitar=24, lead=56, brass=61), comp="montuno", voicing="triad",
            humanize=0.4, bass_register=33,
        ),
    )
}  # fmt: skip


@dataclass(frozen=True)
class Mood:
    """What a mood changes: mode (when no key is given), harmony-model mood, density, register, loudness.

    ``model_mood`` is the harmony model's mood token (happy, chill, sad, dark); ``density`` scales how
    busy drums, comping and melody are; ``register`` shifts the lead (and chord voicings) in semitones;
    ``velocity`` scales loudness of the performance; ``temperature`` is the models' sampling temperature.
    """

    name: str
    mode: str
    model_mood: str
    density: float
    register: int
    velocity: float
    temperature: float


#: The mood table.
MOODS: dict[str, Mood] = {
    m.name: m
    for m in (
        Mood("happy", "major", "happy", 1.0, 0, 1.0, 0.9),
        Mood("sad", "minor", "sad", 0.7, -3, 0.8, 0.8),
        Mood("chill", "major", "chill", 0.65, -2, 0.75, 0.85),
        Mood("energetic", "major", "happy", 1.25, 2, 1.12, 1.0),
        Mood("dark", "minor", "dark", 0.9, -5, 0.95, 0.9),
        Mood("romantic", "major", "chill", 0.75, 0, 0.85, 0.85),
        Mood("epic", "minor", "dark", 1.15, 0, 1.1, 0.95),
        Mood("dreamy", "major", "chill", 0.6, 3, 0.7, 0.9),
    )
}


def get_genre(name: str) -> Genre:
    """Look up a genre (case-insensitive; ``"hiphop"``, ``"rnb"``, ``"lofi"``, ``"kpop"`` also work).

    Raises
    ------
    InputError
        Naming the bad genre and listing the allowed ones.
    """
    key = str(name).strip().lower()
    key = {"hiphop": "hip-hop", "hip hop": "hip-hop", "rnb": "r&b", "lofi": "lo-fi", "kpop": "k-pop"}.get(
        key, key
    )
    if key not in GENRES:
        raise InputError(f"Unknown genre {name!r}: choose one of {', '.join(GENRES)}.")
    return GENRES[key]


def get_mood(name: str) -> Mood:
    """Look up a mood (case-insensitive).

    Raises
    ------
    InputError
        Naming the bad mood and listing the allowed ones.
    """
    key = str(name).strip().lower()
    if key not in MOODS:
        raise InputError(f"Unknown mood {name!r}: choose one of {', '.join(MOODS)}.")
    return MOODS[key]


def parse_instruments(value: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Parse ``"drums,bass,keys"`` (or a list) into roles, in :data:`ROLES` order, without duplicates.

    Raises
    ------
    InputError
        For an unknown name (listing :data:`ROLES`) or an empty selection.
    """
    items = value.split(",") if isinstance(value, str) else list(value)
    names = [str(x).strip().lower() for x in items if str(x).strip()]
    aliases = {"chords": "keys", "piano": "keys", "melody": "lead", "arpeggio": "arp", "drum": "drums"}
    names = [aliases.get(n, n) for n in names]
    bad = [n for n in names if n not in ROLES]
    if bad:
        raise InputError(f"Unknown instrument {bad[0]!r}: choose from {', '.join(ROLES)}.")
    if not names:
        raise InputError(f"No instruments chosen: pick at least one of {', '.join(ROLES)}.")
    return tuple(r for r in ROLES if r in names)


def program_for(genre: Genre, role: str) -> int:
    """The General MIDI program (0-127) a genre uses for a pitched role."""
    return genre.programs.get(role, _BASE_PROGRAMS.get(role, 0))
