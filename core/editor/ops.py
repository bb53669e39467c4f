"""Editor operations: typed, validated, serialisable edits applied on top of immutable stems.

Every operation is a frozen dataclass with a ``type`` tag. Values are validated on construction and an
:class:`~core.errors.InputError` names the field and its allowed range (``TrackGain.db = 60.0 is out of
range: use -60..12 dB.``). :func:`op_from_dict` / :meth:`Op.to_dict` convert to and from JSON-able dicts;
:func:`schema` is the JSON schema printed by ``python -m core edit --schema``.

Meaning of the operations (see :func:`core.editor.project.derive` for how a list of them becomes a mix):

* **Settings** -- the last one wins: :class:`SetTempo` (relative to the original tempo), :class:`Transpose`
  (semitones from the original key), :class:`TrackGain`, :class:`TrackPan`, :class:`Mute`, :class:`Solo`,
  :class:`TrackEffects` (the track's whole chain), :class:`MasterEffects`, :class:`Fade`.
* **Timeline edits** -- applied in order: :class:`Loop` and :class:`Trim`. Their times are seconds of
  the song *at its original tempo*, so a later tempo change keeps the same bars looped or trimmed.
* **Tracks** -- :class:`RemoveTrack`, :class:`AddTrack` (a new stem from the music engine that follows
  the project's tempo, key and chords), :class:`SplitHarmonicPercussive` (an audio track becomes
  ``<track>_harmonic`` and ``<track>_percussive``).

Examples
--------
>>> op = TrackGain(track="drums", db=-6.0)
>>> op.to_dict()
{'type': 'track_gain', 'track': 'drums', 'db': -6.0}
>>> op_from_dict({"type": "track_gain", "track": "drums", "db": -6}) == op
True
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from core.audio.effects import (
    EffectSpec,
    chain_from_list,
    check_fields,
    effects_schema,
    field_schema,
    flag,
    from_fields,
    integer,
    num,
    text,
)
from core.errors import InputError

#: Version of the project JSON format written by this code; newer files are refused.
FORMAT_VERSION = 1
#: Roles :class:`AddTrack` can ask the music engine for.
ADD_ROLES = ("drums", "bass", "keys", "pad", "lead")
#: Longest song position accepted in timeline operations (s).
MAX_SECONDS = 3600.0


@dataclass(frozen=True)
class Op:
    """Base of every operation."""

    type: ClassVar[str] = ""
    #: Short human label used in the history panel.
    verb: ClassVar[str] = ""

    def __post_init__(self) -> None:
        check_fields(self, type(self).__name__)
        self._check()

    def _check(self) -> None:
        """Cross-field checks of a subclass."""

    def to_dict(self) -> dict:
        """Plain JSON-able dict, ``type`` first."""
        out: dict[str, Any] = {"type": self.type}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "chain":
                value = [e.to_dict() for e in value]
            out[f.name] = value
        return out

    @property
    def track_refs(self) -> tuple[str, ...]:
        """Names of existing tracks this operation refers to."""
        return (self.track,) if hasattr(self, "track") else ()

    def label(self) -> str:
        """One-line human description for the history panel."""
        parts = [f"{k}={v}" for k, v in self.to_dict().items() if k != "type" and k != "chain"]
        return f"{self.verb} " + ", ".join(parts)


def _chain_field() -> Any:
    return field(default=(), metadata={"chain": True, "doc": "effect chain, first effect first"})


def _norm_chain(op: Op) -> None:
    object.__setattr__(op, "chain", chain_from_list(op.chain, where=f"{type(op).__name__}.chain"))


@dataclass(frozen=True)
class SetTempo(Op):
    """Set the tempo: an absolute ``bpm`` or a ``ratio`` (0.5-2.0) of the original tempo; exactly one."""

    type: ClassVar[str] = "set_tempo"
    verb: ClassVar[str] = "Tempo"
    bpm: float | None = field(
        default=None, metadata={"doc": "new tempo in bpm (20-400, within 0.5-2x of the original)"}
    )
    ratio: float | None = field(default=None, metadata={"doc": "new tempo / original tempo, 0.5-2.0"})

    def _check(self) -> None:
        if (self.bpm is None) == (self.ratio is None):
            raise InputError("SetTempo needs exactly one of bpm or ratio.")
        for name, lo, hi in (("bpm", 20.0, 400.0), ("ratio", 0.5, 2.0)):
            v = getattr(self, name)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= float(v) <= hi:
                raise InputError(f"SetTempo.{name} = {v!r} is out of range: use {lo:g}..{hi:g}.")
            object.__setattr__(self, name, float(v))

    def ratio_for(self, base_bpm: float) -> float:
        """The tempo ratio this op asks for, given the original tempo; validated to 0.5-2.0."""
        if self.ratio is not None:
            return self.ratio
        r = self.bpm / float(base_bpm)
        if not 0.5 - 1e-3 <= r <= 2.0 + 1e-3:  # tolerance: a UI rounds bpm values to 0.1
            raise InputError(
                f"SetTempo.bpm = {self.bpm:g} is out of range: "
                f"use {0.5 * base_bpm:.1f}..{2.0 * base_bpm:.1f} bpm "
                f"(0.5-2x the original {base_bpm:g} bpm)."
            )
        return min(2.0, max(0.5, r))

    def label(self) -> str:
        return f"Tempo {self.bpm:g} bpm" if self.bpm is not None else f"Tempo x{self.ratio:g}"


@dataclass(frozen=True)
class Transpose(Op):
    """Transpose by whole semitones from the original key (MIDI notes move; audio is pitch-shifted)."""

    type: ClassVar[str] = "transpose"
    verb: ClassVar[str] = "Transpose"
    semitones: int = integer(0, -12, 12, "semitones", "shift from the original key")

    def label(self) -> str:
        return f"Transpose {self.semitones:+d}"


@dataclass(frozen=True)
class TrackGain(Op):
    """Set a track's volume."""

    type: ClassVar[str] = "track_gain"
    verb: ClassVar[str] = "Volume"
    track: str = text(doc="track name")
    db: float = num(0.0, -60.0, 12.0, "dB", "gain")

    def label(self) -> str:
        return f"Volume {self.track} {self.db:+.1f} dB"


@dataclass(frozen=True)
class TrackPan(Op):
    """Set a track's stereo position (-1 left .. +1 right)."""

    type: ClassVar[str] = "track_pan"
    verb: ClassVar[str] = "Pan"
    track: str = text(doc="track name")
    pan: float = num(0.0, -1.0, 1.0, doc="-1 left, 0 centre, +1 right")

    def label(self) -> str:
        return f"Pan {self.track} {self.pan:+.2f}"


@dataclass(frozen=True)
class Mute(Op):
    """Mute or unmute a track."""

    type: ClassVar[str] = "mute"
    verb: ClassVar[str] = "Mute"
    track: str = text(doc="track name")
    on: bool = flag(True, "muted")

    def label(self) -> str:
        return f"{'Mute' if self.on else 'Unmute'} {self.track}"


@dataclass(frozen=True)
class Solo(Op):
    """Solo or un-solo a track (while any track is soloed only soloed tracks play)."""

    type: ClassVar[str] = "solo"
    verb: ClassVar[str] = "Solo"
    track: str = text(doc="track name")
    on: bool = flag(True, "soloed")

    def label(self) -> str:
        return f"{'Solo' if self.on else 'Unsolo'} {self.track}"


@dataclass(frozen=True)
class TrackEffects(Op):
    """Set a track's whole effect chain (an empty chain removes its effects)."""

    type: ClassVar[str] = "track_effects"
    verb: ClassVar[str] = "Effects"
    track: str = text(doc="track name")
    chain: tuple[EffectSpec, ...] = _chain_field()

    def _check(self) -> None:
        _norm_chain(self)

    def label(self) -> str:
        names = ", ".join(e.type for e in self.chain) or "none"
        return f"Effects {self.track}: {names}"


@dataclass(frozen=True)
class MasterEffects(Op):
    """Set the master bus effect chain (before loudness normalisation and limiting)."""

    type: ClassVar[str] = "master_effects"
    verb: ClassVar[str] = "Master effects"
    chain: tuple[EffectSpec, ...] = _chain_field()

    def _check(self) -> None:
        _norm_chain(self)

    def label(self) -> str:
        return "Master effects: " + (", ".join(e.type for e in self.chain) or "none")


@dataclass(frozen=True)
class Loop(Op):
    """Repeat the region ``start_s..end_s`` (song seconds at the original tempo) ``times`` times in place."""

    type: ClassVar[str] = "loop"
    verb: ClassVar[str] = "Loop"
    start_s: float = num(0.0, 0.0, MAX_SECONDS, "s", "region start")
    end_s: float = num(1.0, 0.0, MAX_SECONDS, "s", "region end")
    times: int = integer(2, 2, 16, doc="how many times the region plays in total")

    def _check(self) -> None:
        if self.end_s - self.start_s < 0.05:
            raise InputError(
                f"Loop.end_s = {self.end_s:g} must be at least 0.05 s after Loop.start_s = {self.start_s:g}."
            )

    def label(self) -> str:
        return f"Loop {self.start_s:.2f}-{self.end_s:.2f} s x{self.times}"


@dataclass(frozen=True)
class Trim(Op):
    """Keep only ``start_s..end_s`` (song seconds at the original tempo)."""

    type: ClassVar[str] = "trim"
    verb: ClassVar[str] = "Trim"
    start_s: float = num(0.0, 0.0, MAX_SECONDS, "s", "first kept second")
    end_s: float = num(1.0, 0.0, MAX_SECONDS, "s", "end of the kept part")

    def _check(self) -> None:
        if self.end_s - self.start_s < 0.1:
            raise InputError(
                f"Trim.end_s = {self.end_s:g} must be at least 0.1 s after Trim.start_s = {self.start_s:g}."
            )

    def label(self) -> str:
        return f"Trim {self.start_s:.2f}-{self.end_s:.2f} s"


@dataclass(frozen=True)
class Fade(Op):
    """Fade the whole mix in and out (seconds of the rendered song; 0 = no fade)."""

    type: ClassVar[str] = "fade"
    verb: ClassVar[str] = "Fade"
    in_s: float = num(0.0, 0.0, 60.0, "s", "fade-in length")
    out_s: float = num(0.0, 0.0, 60.0, "s", "fade-out length")

    def label(self) -> str:
        return f"Fade in {self.in_s:g} s, out {self.out_s:g} s"


@dataclass(frozen=True)
class RemoveTrack(Op):
    """Remove a track from the mix (its base stem is kept; undo brings it back)."""

    type: ClassVar[str] = "remove_track"
    verb: ClassVar[str] = "Remove"
    track: str = text(doc="track name")

    def label(self) -> str:
        return f"Remove {self.track}"


@dataclass(frozen=True)
class AddTrack(Op):
    """Add a new drums/bass/keys/pad/lead stem from the music engine (tempo, key and chords of the song)."""

    type: ClassVar[str] = "add_track"
    verb: ClassVar[str] = "Add"
    role: str = field(default="drums", metadata={"choices": ADD_ROLES, "doc": "instrument role"})
    seed: int = integer(0, 0, 2**31 - 1, doc="random seed of the part")
    name: str = field(default="", metadata={"doc": "track name (empty: chosen from the role)"})

    def _check(self) -> None:
        if not isinstance(self.name, str) or len(self.name) > 40:
            raise InputError(f"AddTrack.name must be text of at most 40 characters, got {self.name!r}.")

    @property
    def track_refs(self) -> tuple[str, ...]:
        return ()

    def label(self) -> str:
        return f"Add {self.role} (seed {self.seed})"


@dataclass(frozen=True)
class SplitHarmonicPercussive(Op):
    """Split an audio track into ``<track>_harmonic`` and ``<track>_percussive`` (drums) tracks."""

    type: ClassVar[str] = "split_hp"
    verb: ClassVar[str] = "Split"
    track: str = text(doc="audio track to split")

    def label(self) -> str:
        return f"Split {self.track} into harmonic + drums"


#: Operation type tag -> class.
OP_TYPES: dict[str, type[Op]] = {
    c.type: c
    for c in (
        SetTempo, Transpose, TrackGain, TrackPan, Mute, Solo, TrackEffects, MasterEffects, Loop, Trim, Fade,
        RemoveTrack, AddTrack, SplitHarmonicPercussive,
    )
}  # fmt: skip


def op_from_dict(data: dict, *, where: str = "operation") -> Op:
    """Build an operation from its dict form.

    Raises
    ------
    InputError
        For an unknown ``type``, unknown fields or out-of-range values; the message names the field.
    """
    if not isinstance(data, dict):
        raise InputError(f"{where} must be an object with a 'type', got {type(data).__name__}.")
    kind = data.get("type")
    cls = OP_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise InputError(
            f"{where}.type = {kind!r} is not a known operation; use one of {', '.join(OP_TYPES)}."
        )
    return from_fields(cls, data, where)


def ops_from_list(items, *, where: str = "ops") -> tuple[Op, ...]:
    """Validate a list of operation dicts (or ops) into a tuple of ops."""
    if not isinstance(items, list | tuple):
        raise InputError(f"{where} must be a list, got {type(items).__name__}.")
    return tuple(
        i if isinstance(i, Op) else op_from_dict(i, where=f"{where}[{n}]") for n, i in enumerate(items)
    )


def _op_schema(cls: type[Op]) -> dict:
    props: dict[str, Any] = {"type": {"const": cls.type}}
    required = ["type"]
    for f in dataclasses.fields(cls):
        if f.metadata.get("chain"):
            props[f.name] = {"type": "array", "items": {"$ref": "#/$defs/effect"}, "maxItems": 16}
        elif cls is SetTempo:
            lo, hi = (20, 400) if f.name == "bpm" else (0.5, 2.0)
            props[f.name] = {
                "type": ["number", "null"],
                "minimum": lo,
                "maximum": hi,
                "description": f.metadata["doc"],
            }
        elif cls is AddTrack and f.name == "name":
            props[f.name] = {"type": "string", "maxLength": 40, "description": f.metadata["doc"]}
        else:
            props[f.name] = field_schema(f)
        if f.default is dataclasses.MISSING or (cls is not SetTempo and "text" in f.metadata):
            required.append(f.name)
    return {
        "title": cls.__name__,
        "description": (cls.__doc__ or "").strip().splitlines()[0],
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": False,
    }


def schema() -> dict:
    """JSON schema of a project file (format version, stems, operations, history)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "BeatTok Studio editor project",
        "type": "object",
        "properties": {
            "format_version": {"type": "integer", "minimum": 1, "maximum": FORMAT_VERSION},
            "title": {"type": "string"},
            "sr": {"type": "integer"},
            "meta": {
                "type": "object",
                "description": "tempo_bpm, key, chords [[start_s, end_s, label]], duration_s of the original",
            },
            "stems": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "kind": {"enum": ["audio", "midi"]},
                        "audio": {
                            "type": ["string", "null"],
                            "description": "storage key, or a path relative to the JSON",
                        },
                        "midi": {
                            "type": ["string", "null"],
                            "description": "storage key, or a path relative to the JSON",
                        },
                        "role": {"type": "string"},
                        "is_drum": {"type": "boolean"},
                        "content_id": {"type": "string"},
                    },
                    "required": ["name", "kind"],
                },
            },
            "ops": {"type": "array", "items": {"$ref": "#/$defs/op"}},
            "history": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"label": {"type": "string"}, "op": {"$ref": "#/$defs/op"}},
                },
            },
            "position": {"type": "integer", "minimum": 0},
        },
        "required": ["format_version", "stems"],
        "$defs": {
            "op": {"oneOf": [_op_schema(c) for c in OP_TYPES.values()]},
            "effect": effects_schema(),
        },
    }
