"""Song plans: sections (intro/verse/pre/chorus/bridge/outro) with bar counts fitted to a duration.

The music fills whole bars; after the last bar the song ends on a final chord that rings until the
requested duration (at least :data:`MIN_TAIL_S` seconds of ring-out). Each section has an *energy*
(0..1) from which the arranger derives density, velocity and which instruments play.

Examples
--------
>>> p = plan_song(seconds=60.0, bpm=120.0)
>>> p.bars, [s.name for s in p.sections][:4]
(29, ['intro', 'verse', 'pre', 'chorus'])
>>> sum(s.bars for s in p.sections) == p.bars
True
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import InputError

#: Seconds of ring-out kept after the last bar (when the duration allows it).
MIN_TAIL_S = 1.0
#: Energy of each section kind.
SECTION_ENERGY = {"intro": 0.35, "verse": 0.6, "pre": 0.75, "chorus": 1.0, "bridge": 0.5, "outro": 0.4}
#: Roles that sit out a section kind (only while at least one other chosen role keeps playing).
SECTION_REST = {
    "intro": ("bass", "lead", "brass", "arp"),
    "verse": ("brass", "strings"),
    "pre": ("brass",),
    "chorus": (),
    "bridge": ("drums", "lead", "pluck"),
    "outro": ("lead", "arp", "brass"),
}

_FORMS: tuple[tuple[int, tuple[tuple[str, int], ...]], ...] = (
    (0, (("chorus", 4),)),
    (6, (("intro", 2), ("verse", 8), ("chorus", 8), ("outro", 2))),
    (18, (("intro", 4), ("verse", 8), ("pre", 4), ("chorus", 8), ("outro", 4))),
    (26, (("intro", 4), ("verse", 8), ("pre", 4), ("chorus", 8), ("verse", 8), ("chorus", 8), ("outro", 4))),
    (
        46,
        (
            ("intro", 4), ("verse", 8), ("pre", 4), ("chorus", 8), ("verse", 8), ("pre", 4), ("chorus", 8),
            ("bridge", 8), ("chorus", 8), ("outro", 4),
        ),
    ),
)  # fmt: skip


@dataclass(frozen=True)
class Section:
    """One section: kind, first bar, length in bars, and energy 0..1."""

    name: str
    start_bar: int
    bars: int
    energy: float

    @property
    def end_bar(self) -> int:
        """First bar after the section."""
        return self.start_bar + self.bars


@dataclass(frozen=True)
class SongPlan:
    """The song's form at a fixed tempo; ``seconds`` is the exact output length."""

    bpm: float
    beats_per_bar: int
    bars: int
    seconds: float
    sections: tuple[Section, ...]

    @property
    def seconds_per_beat(self) -> float:
        """Length of one beat in seconds."""
        return 60.0 / self.bpm

    @property
    def end_beat(self) -> float:
        """Beat at which the song (including its ring-out) ends."""
        return self.seconds / self.seconds_per_beat

    @property
    def music_beats(self) -> int:
        """Beats covered by the sections (the final chord sits on this beat)."""
        return self.bars * self.beats_per_bar

    def to_dicts(self) -> list[dict]:
        """Sections as JSON-ready dicts with bar and second positions."""
        bar_s = self.beats_per_bar * self.seconds_per_beat
        return [
            {
                "name": s.name,
                "start_bar": s.start_bar,
                "bars": s.bars,
                "start_s": round(s.start_bar * bar_s, 4),
                "end_s": round(s.end_bar * bar_s, 4),
                "energy": s.energy,
            }
            for s in self.sections
        ]


def _form_for(bars: int) -> list[tuple[str, int]]:
    form = list(next(f for threshold, f in reversed(_FORMS) if bars >= threshold))
    if form[0][0] == "chorus":
        return [("chorus", bars)]
    while sum(b for _, b in form) * 1.25 < bars:  # long songs: more verse/chorus rounds before the bridge
        i = next(i for i, (n, _) in enumerate(form) if n == "bridge")
        form[i:i] = [("verse", 8), ("pre", 4), ("chorus", 8)]
    return form


def _fit(form: list[tuple[str, int]], bars: int) -> list[int]:
    """Scale nominal lengths to ``bars``: body sections in multiples of 4 (or 2), the rest in intro/outro."""
    f = bars / sum(b for _, b in form)
    edge = [i for i, (n, _) in enumerate(form) if n in ("intro", "outro")]
    body = [i for i in range(len(form)) if i not in edge]
    out = [0] * len(form)
    for i, (_, b) in enumerate(form):
        out[i] = max(1, round(b * f)) if i in edge else max(2, round(b * f / 4) * 4)
    diff = bars - sum(out)
    edges_last_first = sorted(edge, reverse=True)
    guard = 0
    while diff != 0 and guard < 10000:
        guard += 1
        step = 1 if diff > 0 else -1
        movable = [i for i in edges_last_first if 1 <= out[i] + step <= 8]
        if movable:
            i = min(movable, key=lambda j: out[j] if step > 0 else -out[j])
            out[i] += step
            diff -= step
            continue
        unit = 2 if abs(diff) >= 2 else 1
        cands = [i for i in body if out[i] + step * unit >= 2]
        if not cands:
            break
        # grow choruses first, shrink the longest section first
        if step > 0:
            i = max(cands, key=lambda j: (form[j][0] == "chorus", -out[j], -j))
        else:
            i = max(cands, key=lambda j: (out[j], -j))
        out[i] += step * unit
        diff -= step * unit
    return out


def plan_song(*, seconds: float, bpm: float, beats_per_bar: int = 4) -> SongPlan:
    """Fit a song form to ``seconds`` at ``bpm``.

    Parameters
    ----------
    seconds : float
        Output length, 5-600 s.
    bpm : float
        Tempo, 40-240.
    beats_per_bar : int
        Beats per bar (4).

    Raises
    ------
    InputError
        For a duration or tempo out of range.
    """
    if not 5.0 <= float(seconds) <= 600.0:
        raise InputError(f"Duration {seconds} s is out of range: use 5-600 seconds (10 minutes).")
    if not 40.0 <= float(bpm) <= 240.0:
        raise InputError(f"Tempo {bpm} bpm is out of range: use 40-240 bpm.")
    bar_s = beats_per_bar * 60.0 / float(bpm)
    bars = max(1, int((float(seconds) - MIN_TAIL_S) // bar_s))
    form = _form_for(bars)
    lengths = [bars] if len(form) == 1 else _fit(form, bars)
    sections, start = [], 0
    for (name, _), n in zip(form, lengths, strict=True):
        sections.append(Section(name, start, n, SECTION_ENERGY[name]))
        start += n
    return SongPlan(float(bpm), int(beats_per_bar), bars, float(seconds), tuple(sections))


def roles_for_section(section: Section, roles: tuple[str, ...]) -> tuple[str, ...]:
    """The chosen roles that play in ``section`` (a section never falls silent)."""
    resting = set(SECTION_REST.get(section.name, ()))
    playing = tuple(r for r in roles if r not in resting)
    if not playing:
        return roles
    return playing
