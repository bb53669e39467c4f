"""Editor projects: immutable base stems + an ordered list of operations with a named, undoable history.

A :class:`Project` never changes its stems. Every edit is an :class:`~core.editor.ops.Op` appended to the
history; :meth:`Project.apply` validates the op against the state it would produce (missing tracks,
loop regions past the end, tempo range) and returns a *new* project, so a refused edit leaves the
project exactly as it was. :meth:`Project.undo` / :meth:`Project.redo` move a cursor in the history.

Stems are referenced, not embedded: ``Stem.audio`` / ``Stem.midi`` are references resolved by a
:class:`Sources` object -- storage keys in the app (:class:`StorageSources`), paths relative to the
project file in the CLI (:class:`PathSources`) or in-memory arrays in tests (:class:`MemorySources`).

Opening a project from another page
-----------------------------------
Any page can open a saved project in the editor with::

    st.session_state["editor_project_id"] = project_row_id
    st.switch_page("pages/editor.py")

or a library track with ``st.session_state["editor_track_id"] = track_id`` (the editor makes an audio
project of it). Use :func:`save_project` to store a project made in code (e.g. from a generated
:class:`core.music.generate.Song` via :func:`from_song`) and get the row id.

Examples
--------
>>> import numpy as np
>>> src = MemorySources()
>>> stems = {"mix": np.zeros((2, 44100), np.float32)}
>>> p = from_audio_stems(stems, sources=src, title="Demo", tempo_bpm=120.0)
>>> from core.editor.ops import TrackGain
>>> p2 = p.apply(TrackGain(track="mix", db=-6.0))
>>> len(p2.ops), len(p2.undo().ops), p2.undo().redo() == p2
(1, 0, True)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from core.audio.checks import check_sample_rate
from core.config import SAMPLE_RATE
from core.editor.ops import (
    FORMAT_VERSION,
    AddTrack,
    Fade,
    Loop,
    MasterEffects,
    Mute,
    Op,
    RemoveTrack,
    SetTempo,
    Solo,
    SplitHarmonicPercussive,
    TrackEffects,
    TrackGain,
    TrackPan,
    Transpose,
    Trim,
    op_from_dict,
)
from core.errors import ForbiddenError, InputError, NotFoundError

#: Longest rendered song the editor accepts (s).
MAX_SONG_SECONDS = 1800.0
#: Most operations a project may hold.
MAX_OPS = 2000


# --------------------------------------------------------------------------------------------------
# stems and their sources


@dataclass(frozen=True)
class Stem:
    """One immutable base stem.

    Attributes
    ----------
    name : str
        Track name (unique in the project).
    kind : str
        ``"midi"`` (has MIDI: tempo/key changes re-render it exactly) or ``"audio"`` (time-stretched and
        pitch-shifted).
    audio, midi : str or None
        References resolved by a :class:`Sources` (storage key, relative path or memory id).
    role : str
        Instrument role (``drums``, ``bass``, ...) or ``""``.
    is_drum : bool
        Drums are never transposed or pitch-shifted.
    content_id : str
        Hash of the stem's content: the cache identity of its audio.
    gain : float
        Linear gain applied to the stored audio when it is read (stems peaking above full scale are
        stored scaled down by their peak, so 24-bit files never clip them).
    """

    name: str
    kind: str
    audio: str | None = None
    midi: str | None = None
    role: str = ""
    is_drum: bool = False
    content_id: str = ""
    gain: float = 1.0

    def to_dict(self) -> dict:
        """JSON-able dict."""
        return {
            "name": self.name, "kind": self.kind, "audio": self.audio, "midi": self.midi, "role": self.role,
            "is_drum": self.is_drum, "content_id": self.content_id, "gain": self.gain,
        }  # fmt: skip

    @staticmethod
    def from_dict(d: dict, *, where: str = "stem") -> Stem:
        """Validate and build a stem from its dict form."""
        if not isinstance(d, dict):
            raise InputError(f"{where} must be an object, got {type(d).__name__}.")
        name = d.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 40:
            raise InputError(f"{where}.name must be a name of 1-40 characters, got {name!r}.")
        kind = d.get("kind")
        if kind not in ("audio", "midi"):
            raise InputError(f"{where}.kind = {kind!r} is not allowed: use 'audio' or 'midi'.")
        audio, midi = d.get("audio"), d.get("midi")
        for fld, v in (("audio", audio), ("midi", midi)):
            if v is not None and (not isinstance(v, str) or not v):
                raise InputError(f"{where}.{fld} must be a reference string or null, got {v!r}.")
        if kind == "midi" and midi is None:
            raise InputError(f"{where}.midi is missing: a 'midi' stem needs MIDI data.")
        if kind == "audio" and audio is None:
            raise InputError(f"{where}.audio is missing: an 'audio' stem needs audio data.")
        content_id = d.get("content_id") or hashlib.sha256(f"{audio}|{midi}".encode()).hexdigest()[:32]
        gain = d.get("gain", 1.0)
        if isinstance(gain, bool) or not isinstance(gain, int | float) or not 0.0 < float(gain) <= 1000.0:
            raise InputError(f"{where}.gain = {gain!r} is out of range: use 0..1000.")
        return Stem(
            name=name, kind=kind, audio=audio, midi=midi, role=str(d.get("role") or ""),
            is_drum=bool(d.get("is_drum", False)), content_id=str(content_id), gain=float(gain),
        )  # fmt: skip


class Sources(Protocol):
    """Resolves stem references to audio and MIDI, and stores new stems."""

    def audio(self, ref: str, *, sr: int) -> np.ndarray:
        """float32 ``(2, n)`` audio of ``ref`` at ``sr``."""

    def midi(self, ref: str) -> bytes:
        """Standard MIDI File bytes of ``ref``."""

    def put_audio(self, y: np.ndarray, *, sr: int) -> str:
        """Store audio; return its reference."""

    def put_midi(self, data: bytes) -> str:
        """Store MIDI; return its reference."""


def _stereo(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=np.float32)
    if y.ndim == 1:
        y = y[None, :]
    if y.ndim != 2 or y.shape[0] not in (1, 2):
        raise InputError(f"stem audio must be shaped (channels, samples) with 1-2 channels, got {y.shape}.")
    if y.shape[0] == 1:
        y = np.repeat(y, 2, axis=0)
    return np.ascontiguousarray(y)


class MemorySources:
    """In-memory stems (tests, benchmarks, a fresh upload before it is saved)."""

    def __init__(self) -> None:
        self._audio: dict[str, np.ndarray] = {}
        self._midi: dict[str, bytes] = {}

    def audio(self, ref: str, *, sr: int) -> np.ndarray:
        if ref not in self._audio:
            raise NotFoundError(f"Stem audio {ref!r} is not available.")
        return self._audio[ref]

    def midi(self, ref: str) -> bytes:
        if ref not in self._midi:
            raise NotFoundError(f"Stem MIDI {ref!r} is not available.")
        return self._midi[ref]

    def put_audio(self, y: np.ndarray, *, sr: int) -> str:
        arr = _stereo(y).copy()
        arr.setflags(write=False)
        ref = "mem:" + _hash_array(arr)
        self._audio[ref] = arr
        return ref

    def put_midi(self, data: bytes) -> str:
        ref = "mem:" + hashlib.sha256(bytes(data)).hexdigest()[:32]
        self._midi[ref] = bytes(data)
        return ref


class StorageSources:
    """Stems in a :class:`core.storage.Storage` (audio as 24-bit FLAC, MIDI as ``.mid``)."""

    def __init__(self, storage) -> None:
        self.storage = storage

    def audio(self, ref: str, *, sr: int) -> np.ndarray:
        from core.audio.io import AudioLimits, decode

        data = self.storage.get(ref)
        limits = replace(
            AudioLimits.from_settings(), max_bytes=max(len(data), 1), max_duration_s=MAX_SONG_SECONDS
        )
        return _stereo(decode(data, filename=Path(ref).name, sr=sr, limits=limits))

    def midi(self, ref: str) -> bytes:
        return self.storage.get(ref)

    def put_audio(self, y: np.ndarray, *, sr: int) -> str:
        from core.audio.io import encode

        return self.storage.put(encode(_stereo(y), sr=sr, fmt="flac", bit_depth=24), suffix="flac")

    def put_midi(self, data: bytes) -> str:
        return self.storage.put(bytes(data), suffix="mid")


class PathSources:
    """Stems as files next to a project JSON (the CLI form): references are relative paths."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    def _path(self, ref: str) -> Path:
        p = (self.root / ref).resolve()
        if not p.is_file():
            raise NotFoundError(f"Stem file {ref!r} not found (looked in {self.root}).")
        return p

    def audio(self, ref: str, *, sr: int) -> np.ndarray:
        from core.audio.io import AudioLimits, load

        limits = replace(AudioLimits.from_settings(), max_duration_s=MAX_SONG_SECONDS)
        return _stereo(load(self._path(ref), sr=sr, limits=limits))

    def midi(self, ref: str) -> bytes:
        return self._path(ref).read_bytes()

    def _new(self, data: bytes, suffix: str) -> str:
        name = f"stems/{hashlib.sha256(data).hexdigest()[:16]}.{suffix}"
        p = self.root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if not p.exists():
            p.write_bytes(data)
        return name

    def put_audio(self, y: np.ndarray, *, sr: int) -> str:
        from core.audio.io import encode

        return self._new(encode(_stereo(y), sr=sr, fmt="flac", bit_depth=24), "flac")

    def put_midi(self, data: bytes) -> str:
        return self._new(bytes(data), "mid")


# --------------------------------------------------------------------------------------------------
# derived mix state


@dataclass(frozen=True)
class TrackState:
    """A track as the ops leave it. ``source`` is ``("stem", name)``, ``("split", stem, part)`` or
    ``("added", role, seed)``."""

    name: str
    source: tuple
    kind: str
    is_drum: bool
    role: str = ""
    gain_db: float = 0.0
    pan: float = 0.0
    mute: bool = False
    solo: bool = False
    chain: tuple = ()


@dataclass(frozen=True)
class MixState:
    """Everything a render needs, derived from stems + ops by :func:`derive`."""

    tracks: tuple[TrackState, ...]
    ratio: float
    semitones: int
    timeline: tuple[Op, ...]
    master_chain: tuple
    fade_in_s: float
    fade_out_s: float
    base_seconds: float
    bpm: float | None

    @property
    def seconds(self) -> float:
        """Length of the rendered song in seconds (after timeline edits and the tempo change)."""
        return self.base_seconds / self.ratio

    def track(self, name: str) -> TrackState:
        """The track called ``name``."""
        for t in self.tracks:
            if t.name == name:
                return t
        raise NotFoundError(f"No track named {name!r}.")

    def audible(self) -> tuple[TrackState, ...]:
        """Tracks that play: soloed ones while any is soloed, else the unmuted ones."""
        soloed = [t for t in self.tracks if t.solo]
        pool = soloed if soloed else list(self.tracks)
        return tuple(t for t in pool if not t.mute)


def _missing(op: Op, name: str, tracks: dict) -> InputError:
    have = ", ".join(tracks) or "none"
    return InputError(f"{type(op).__name__}.track = {name!r} does not exist; tracks: {have}.")


def _added_name(role: str, tracks: dict) -> str:
    if role not in tracks:
        return role
    i = 2
    while f"{role}_{i}" in tracks:
        i += 1
    return f"{role}_{i}"


def derive(project: Project, ops: tuple[Op, ...] | None = None, *, label: str | None = None) -> MixState:
    """Fold ``ops`` (default: the project's) over its stems into a :class:`MixState`.

    ``label`` (e.g. ``"history"``) prefixes an error with the index of the operation at fault.

    Raises
    ------
    InputError
        Naming the operation field at fault: a missing track, a loop or trim past the end, a tempo out of
        range, an added track without tempo/key, a split of a MIDI track, a song grown too long.
    """
    ops = project.ops if ops is None else ops
    tracks: dict[str, TrackState] = {
        s.name: TrackState(s.name, ("stem", s.name), s.kind, s.is_drum, s.role) for s in project.stems
    }
    ratio, semitones = 1.0, 0
    timeline: list[Op] = []
    master_chain: tuple = ()
    fade = (0.0, 0.0)
    length = float(project.meta.get("duration_s") or 0.0)
    base_bpm = project.meta.get("tempo_bpm")
    for i, op in enumerate(ops):
        try:
            if not isinstance(op, Op):
                raise InputError(f"operation must be an editor Op, got {type(op).__name__}.")
            for name in op.track_refs:
                if name not in tracks:
                    raise _missing(op, name, tracks)
            if isinstance(op, SetTempo):
                if op.bpm is not None and not base_bpm:
                    raise InputError(
                        "SetTempo.bpm needs the song's original tempo, which is unknown: use ratio."
                    )
                ratio = op.ratio_for(float(base_bpm)) if op.bpm is not None else op.ratio
            elif isinstance(op, Transpose):
                semitones = op.semitones
            elif isinstance(op, TrackGain):
                tracks[op.track] = replace(tracks[op.track], gain_db=op.db)
            elif isinstance(op, TrackPan):
                tracks[op.track] = replace(tracks[op.track], pan=op.pan)
            elif isinstance(op, Mute):
                tracks[op.track] = replace(tracks[op.track], mute=op.on)
            elif isinstance(op, Solo):
                tracks[op.track] = replace(tracks[op.track], solo=op.on)
            elif isinstance(op, TrackEffects):
                tracks[op.track] = replace(tracks[op.track], chain=op.chain)
            elif isinstance(op, MasterEffects):
                master_chain = op.chain
            elif isinstance(op, Fade):
                fade = (op.in_s, op.out_s)
            elif isinstance(op, Loop):
                if op.end_s > length + 1e-6:
                    raise InputError(
                        f"Loop.end_s = {op.end_s:g} is past the end of the song "
                        f"({length:.2f} s at the original tempo)."
                    )
                length += (op.end_s - op.start_s) * (op.times - 1)
                if length > MAX_SONG_SECONDS:
                    raise InputError(
                        f"Loop.times = {op.times} makes the song {length:.0f} s long; "
                        f"the limit is {MAX_SONG_SECONDS:.0f} s."
                    )
                timeline.append(op)
            elif isinstance(op, Trim):
                if op.end_s > length + 1e-6:
                    raise InputError(
                        f"Trim.end_s = {op.end_s:g} is past the end of the song "
                        f"({length:.2f} s at the original tempo)."
                    )
                length = op.end_s - op.start_s
                timeline.append(op)
            elif isinstance(op, RemoveTrack):
                del tracks[op.track]
            elif isinstance(op, AddTrack):
                if not base_bpm or not project.meta.get("key"):
                    raise InputError(
                        "AddTrack needs the song's tempo and key, which are unknown for this project."
                    )
                name = op.name or _added_name(op.role, tracks)
                if name in tracks:
                    raise InputError(f"AddTrack.name = {name!r} is already a track; choose another name.")
                tracks[name] = TrackState(
                    name, ("added", op.role, op.seed), "midi", op.role == "drums", op.role
                )
            elif isinstance(op, SplitHarmonicPercussive):
                t = tracks[op.track]
                if t.kind != "audio" or t.source[0] != "stem":
                    raise InputError(
                        f"SplitHarmonicPercussive.track = {op.track!r} is not an original audio track; "
                        "only uploaded audio can be split."
                    )
                for part in ("harmonic", "percussive"):
                    if f"{op.track}_{part}" in tracks:
                        raise InputError(
                            f"SplitHarmonicPercussive.track = {op.track!r}: {op.track}_{part} already exists."
                        )
                del tracks[op.track]
                for part in ("harmonic", "percussive"):
                    tracks[f"{op.track}_{part}"] = TrackState(
                        f"{op.track}_{part}", ("split", t.source[1], part), "audio", part == "percussive",
                        "drums" if part == "percussive" else t.role,
                    )  # fmt: skip
            else:  # pragma: no cover - every Op subclass is handled above
                raise InputError(f"operation type {op.type!r} is not supported by this version.")
        except InputError as exc:
            if label is None:
                raise
            raise InputError(f"{label}[{i}]: {exc}") from None
    return MixState(
        tracks=tuple(tracks.values()), ratio=float(ratio), semitones=int(semitones), timeline=tuple(timeline),
        master_chain=master_chain, fade_in_s=fade[0], fade_out_s=fade[1], base_seconds=length,
        bpm=float(base_bpm) * ratio if base_bpm else None,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------------
# the project


@dataclass(frozen=True)
class HistoryEntry:
    """One named step of the history: the operation it appended and its label."""

    label: str
    op: Op


@dataclass(frozen=True)
class Project:
    """Immutable stems + a history of operations with a cursor (``position`` ops are applied).

    Attributes
    ----------
    title : str
        Project title.
    stems : tuple of Stem
        The immutable base stems.
    meta : dict
        ``tempo_bpm``, ``key``, ``chords`` (``[[start_s, end_s, label], ...]``), ``duration_s`` (of the
        original), and for generated songs ``genre``, ``mood``, ``seed``.
    history : tuple of HistoryEntry
        Every applied op, including undone ones after ``position``.
    position : int
        How many history entries are in effect.
    sr : int
        Sample rate.
    """

    title: str
    stems: tuple[Stem, ...]
    meta: dict = field(default_factory=dict)
    history: tuple[HistoryEntry, ...] = ()
    position: int = 0
    sr: int = SAMPLE_RATE

    def __post_init__(self) -> None:
        names = [s.name for s in self.stems]
        if not names:
            raise InputError("A project needs at least one stem.")
        if len(set(names)) != len(names):
            raise InputError(f"stems: duplicate track names in {names}.")
        if not 0 <= self.position <= len(self.history):
            raise InputError(f"position = {self.position} is out of range: use 0..{len(self.history)}.")
        dur = self.meta.get("duration_s")
        if not isinstance(dur, int | float) or not 0 < float(dur) <= MAX_SONG_SECONDS:
            raise InputError(f"meta.duration_s = {dur!r} is out of range: use 0..{MAX_SONG_SECONDS:g} s.")

    # history -----------------------------------------------------------------------------------
    @property
    def ops(self) -> tuple[Op, ...]:
        """The operations in effect, in order."""
        return tuple(e.op for e in self.history[: self.position])

    @property
    def can_undo(self) -> bool:
        """True when there is a step to undo."""
        return self.position > 0

    @property
    def can_redo(self) -> bool:
        """True when an undone step can be redone."""
        return self.position < len(self.history)

    def state(self) -> MixState:
        """The derived mix state of the ops in effect."""
        return derive(self)

    def apply(self, op: Op, *, label: str | None = None) -> Project:
        """Return a new project with ``op`` appended (redo steps after the cursor are dropped).

        Raises
        ------
        InputError
            If ``op`` is invalid for this project; ``self`` is unchanged (it is immutable).
        """
        if not isinstance(op, Op):
            raise InputError(f"operation must be an editor Op, got {type(op).__name__}.")
        if self.position >= MAX_OPS:
            raise InputError(f"This project has {MAX_OPS} edits, the limit; save it and start a new version.")
        if isinstance(op, AddTrack) and not op.name:
            op = replace(op, name=_added_name(op.role, {t.name: t for t in self.state().tracks}))
        derive(self, (*self.ops, op))
        entry = HistoryEntry(label or op.label(), op)
        return replace(self, history=(*self.history[: self.position], entry), position=self.position + 1)

    def undo(self) -> Project:
        """One step back (no-op at the start)."""
        return replace(self, position=max(0, self.position - 1))

    def redo(self) -> Project:
        """One step forward (no-op at the end)."""
        return replace(self, position=min(len(self.history), self.position + 1))

    def goto(self, position: int) -> Project:
        """Jump to a history position (0 = the original)."""
        if not 0 <= int(position) <= len(self.history):
            raise InputError(f"position = {position} is out of range: use 0..{len(self.history)}.")
        return replace(self, position=int(position))

    def original(self) -> Project:
        """The project with no operations in effect (for A/B against the original)."""
        return replace(self, position=0)

    def stem(self, name: str) -> Stem:
        """The base stem called ``name``."""
        for s in self.stems:
            if s.name == name:
                return s
        raise NotFoundError(f"No stem named {name!r}.")

    @property
    def has_midi(self) -> bool:
        """True when any track of the current state has MIDI."""
        return any(t.kind == "midi" for t in self.state().tracks)

    # JSON --------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-able dict (format version, stems, meta, history, position)."""
        return {
            "format_version": FORMAT_VERSION,
            "title": self.title,
            "sr": self.sr,
            "meta": self.meta,
            "stems": [s.to_dict() for s in self.stems],
            "ops": [op.to_dict() for op in self.ops],
            "history": [{"label": e.label, "op": e.op.to_dict()} for e in self.history],
            "position": self.position,
        }

    def to_json(self) -> str:
        """Pretty JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), indent=2)

    @staticmethod
    def from_dict(d: dict) -> Project:
        """Validate and build a project from its dict form.

        A file without ``history`` uses ``ops`` as its history (every op applied).

        Raises
        ------
        InputError
            For a newer ``format_version``, bad stems, unknown or invalid operations, or operations that
            do not fit the stems (the message names the field).
        """
        if not isinstance(d, dict):
            raise InputError(f"project must be a JSON object, got {type(d).__name__}.")
        version = d.get("format_version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InputError(
                f"format_version = {version!r} is not valid: expected an integer 1..{FORMAT_VERSION}."
            )
        if version > FORMAT_VERSION:
            raise InputError(
                f"format_version = {version} is newer than this app supports ({FORMAT_VERSION}); "
                "update BeatTok Studio."
            )
        stems_in = d.get("stems")
        if not isinstance(stems_in, list):
            raise InputError("stems must be a list of stems.")
        stems = tuple(Stem.from_dict(s, where=f"stems[{i}]") for i, s in enumerate(stems_in))
        meta = d.get("meta") or {}
        if not isinstance(meta, dict):
            raise InputError("meta must be an object.")
        if "history" in d:
            hist_in = d["history"]
            if not isinstance(hist_in, list):
                raise InputError("history must be a list.")
            history = []
            for i, e in enumerate(hist_in):
                if not isinstance(e, dict):
                    raise InputError(f"history[{i}] must be an object with 'label' and 'op'.")
                op = op_from_dict(e.get("op"), where=f"history[{i}].op")
                history.append(HistoryEntry(str(e.get("label") or op.label())[:200], op))
            position = d.get("position", len(history))
        else:
            ops_in = d.get("ops", [])
            if not isinstance(ops_in, list):
                raise InputError("ops must be a list.")
            history = [
                HistoryEntry(op.label(), op)
                for op in (op_from_dict(o, where=f"ops[{i}]") for i, o in enumerate(ops_in))
            ]
            position = len(history)
        if isinstance(position, bool) or not isinstance(position, int):
            raise InputError(f"position = {position!r} must be an integer.")
        sr = check_sample_rate(d.get("sr", SAMPLE_RATE), what="sr")
        title = str(d.get("title") or "Untitled")[:120]
        project = Project(
            title=title, stems=stems, meta=dict(meta), history=tuple(history), position=position, sr=sr
        )
        # the whole history (redo steps too) must apply in order
        derive(project, tuple(e.op for e in history), label="history" if "history" in d else "ops")
        return project

    @staticmethod
    def from_json(text: str | bytes) -> Project:
        """Parse project JSON text (see :meth:`from_dict`)."""
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputError(f"project file is not valid JSON ({exc}).") from None
        return Project.from_dict(data)


# --------------------------------------------------------------------------------------------------
# making projects


def _store_audio(y: np.ndarray, sources: Sources, sr: int) -> tuple[str, float]:
    """Store ``y`` (scaled into full scale when it peaks above it); return its reference and read gain."""
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak > 1.0:
        return sources.put_audio((y / np.float32(peak)).astype(np.float32, copy=False), sr=sr), peak
    return sources.put_audio(y, sr=sr), 1.0


def _hash_array(y: np.ndarray) -> str:
    """SHA-256 of the float32 samples (hashed in place: a 10-minute stem is not copied to bytes first)."""
    return hashlib.sha256(memoryview(np.ascontiguousarray(y, dtype=np.float32)).cast("B")).hexdigest()[:32]


def _clean_chords(chords, *, bpm: float | None, in_beats: bool) -> list[list]:
    out = []
    for c in chords or ():
        s, e, label = c[0], c[1], c[2]
        if in_beats and bpm:
            s, e = float(s) * 60.0 / bpm, float(e) * 60.0 / bpm
        out.append([round(float(s), 4), round(float(e), 4), str(label)])
    return out


def from_song(song, *, sources: Sources, title: str = "Generated song") -> Project:
    """A project of a generated :class:`core.music.generate.Song`: its stems' audio and MIDI.

    The stems' audio is used as-is while tempo and key are unchanged; a tempo or key change re-renders
    their MIDI exactly (times scaled, pitches moved, drums kept).
    """
    stems = []
    for name, y in song.stems.items():
        audio_ref, gain = _store_audio(_stereo(y), sources, song.sr)
        midi = song.midi.get(name)
        midi_ref = sources.put_midi(midi) if midi else None
        digest = hashlib.sha256(_hash_array(y).encode() + (midi or b"")).hexdigest()[:32]
        stems.append(
            Stem(
                name=name, kind="midi" if midi else "audio", audio=audio_ref, midi=midi_ref, role=name,
                is_drum=name == "drums", content_id=digest, gain=gain,
            )
        )  # fmt: skip
    n = max(y.shape[1] for y in song.stems.values())
    meta = {
        "tempo_bpm": float(song.tempo_bpm), "key": str(song.key), "duration_s": n / song.sr,
        "chords": _clean_chords(song.chords, bpm=float(song.tempo_bpm), in_beats=True),
        "sections": list(getattr(song, "sections", []) or []), "genre": getattr(song, "genre", ""),
        "mood": getattr(song, "mood", ""), "seed": getattr(song, "seed", 0), "source": "generate",
    }  # fmt: skip
    return Project(title=str(title)[:120], stems=tuple(stems), meta=meta, sr=int(song.sr))


def from_audio_stems(
    stems: dict[str, np.ndarray],
    *,
    sources: Sources,
    title: str,
    sr: int = SAMPLE_RATE,
    tempo_bpm: float | None = None,
    key: str | None = None,
    chords=None,
    midi: dict[str, bytes] | None = None,
    drums: tuple[str, ...] = ("drums",),
) -> Project:
    """A project of audio stems made in code (optionally with their MIDI and known tempo/key/chords).

    ``chords`` are ``(start_s, end_s, label)`` in seconds. Stems named in ``drums`` are never pitch-shifted.
    """
    if not stems:
        raise InputError("A project needs at least one stem.")
    from concurrent.futures import ThreadPoolExecutor

    midi = midi or {}

    def store(name: str, y: np.ndarray) -> tuple[Stem, int]:
        y2 = _stereo(y)
        ref, gain = _store_audio(y2, sources, sr)
        m = midi.get(name)
        digest = hashlib.sha256(_hash_array(y2).encode() + (m or b"")).hexdigest()[:32]
        stem = Stem(
            name=name, kind="midi" if m else "audio", audio=ref, midi=sources.put_midi(m) if m else None,
            role=name, is_drum=name in drums, content_id=digest, gain=gain,
        )  # fmt: skip
        return stem, y2.shape[1]

    # two stems at once: FLAC encoding, hashing and file writes release the GIL (a 3-minute song with
    # beats is stored in 1.3-1.4 s instead of 1.8-2.1 s)
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = list(pool.map(store, stems.keys(), stems.values()))
    out = [stem for stem, _ in done]
    n = max(length for _, length in done)
    meta = {
        "tempo_bpm": float(tempo_bpm) if tempo_bpm else None, "key": key, "duration_s": n / sr,
        "chords": _clean_chords(chords, bpm=None, in_beats=False), "source": "code",
    }  # fmt: skip
    return Project(title=str(title)[:120], stems=tuple(out), meta=meta, sr=int(sr))


def from_upload(y: np.ndarray, *, sr: int, sources: Sources, title: str, analysis=None) -> Project:
    """A one-stem audio project of an uploaded song; tempo, key and chords come from its analysis.

    Parameters
    ----------
    y : np.ndarray
        Decoded float32 ``(2, n)`` audio.
    analysis : object, optional
        A ``core.audio.analysis`` result with ``tempo_bpm``, ``key`` and optionally ``chords`` and
        ``downbeats`` (default: :func:`core.audio.analysis.analyze`, so added instruments follow the
        song's chords and bars).
    """
    y = _stereo(y)
    if analysis is None:
        try:
            from core.audio.analysis import analyze

            analysis = analyze(y, sr=sr)
        except ImportError:  # analysis module not installed: tempo and key stay unknown
            analysis = None
    tempo = getattr(analysis, "tempo_bpm", None)
    key = getattr(analysis, "key", None)
    chords = getattr(analysis, "chords", None)
    project = from_audio_stems(
        {"song": y}, sources=sources, title=title, sr=sr, tempo_bpm=tempo if tempo and tempo > 0 else None,
        key=str(key) if key else None, chords=chords, drums=(),
    )  # fmt: skip
    beats = list(getattr(analysis, "downbeats", []) or []) or list(getattr(analysis, "beats", []) or [])
    meta = {**project.meta, "source": "upload", "first_beat_s": float(beats[0]) if beats else 0.0}
    return replace(project, meta=meta)


# --------------------------------------------------------------------------------------------------
# database: saved versions


def save_project(session, storage, *, owner_id: int, project: Project, project_id: int | None = None) -> int:
    """Store the project JSON and create (or update, for ``project_id``) its ``Project`` row.

    The JSON is written to storage before the row is committed; the previous JSON of an updated row is
    deleted after the commit. Returns the row id.

    Raises
    ------
    NotFoundError, ForbiddenError
        For an unknown ``project_id`` or one owned by someone else.
    """
    from core.db.models import Project as ProjectRow
    from core.db.models import utcnow

    key = storage.put(project.to_json().encode(), suffix="json")
    old_key = None
    try:
        if project_id is None:
            row = ProjectRow(owner_id=int(owner_id), title=project.title[:120], kind="editor", data_key=key)
        else:
            row = session.get(ProjectRow, int(project_id))
            if row is None:
                raise NotFoundError(f"Project {project_id} does not exist.")
            if row.owner_id != int(owner_id):
                raise ForbiddenError("Only the owner can save this project.")
            old_key, row.data_key, row.title, row.updated_at = (
                row.data_key,
                key,
                project.title[:120],
                utcnow(),
            )
        session.add(row)
        session.commit()
        session.refresh(row)
    except BaseException:
        session.rollback()
        storage.delete(key)
        raise
    if old_key and old_key != key:
        storage.delete(old_key)
    return int(row.id)


def load_project(session, storage, *, project_id: int, owner_id: int) -> Project:
    """Load a saved project the caller owns.

    Raises
    ------
    NotFoundError
        For an unknown id, or a project of another user (not revealed as existing).
    """
    from core.db.models import Project as ProjectRow

    row = session.get(ProjectRow, int(project_id))
    if row is None or row.owner_id != int(owner_id) or not row.data_key:
        raise NotFoundError(f"Project {project_id} not found.")
    return Project.from_json(storage.get(row.data_key))


def list_projects(session, *, owner_id: int, limit: int = 100) -> list:
    """The caller's editor projects, newest first (``Project`` rows)."""
    from sqlmodel import select

    from core.db.models import Project as ProjectRow

    stmt = (
        select(ProjectRow)
        .where(ProjectRow.owner_id == int(owner_id), ProjectRow.kind == "editor")
        .order_by(ProjectRow.updated_at.desc(), ProjectRow.id.desc())
        .limit(int(limit))
    )
    return list(session.exec(stmt).all())


def count_projects(session, *, owner_id: int) -> int:
    """How many editor projects the caller has saved (:func:`list_projects` returns at most ``limit``)."""
    from sqlalchemy import func, select

    from core.db.models import Project as ProjectRow

    stmt = select(func.count()).where(ProjectRow.owner_id == int(owner_id), ProjectRow.kind == "editor")
    return int(session.execute(stmt).scalar_one())


def delete_project(session, storage, *, project_id: int, owner_id: int) -> None:
    """Delete a saved project the caller owns: its row, its document and the stems nothing else uses.

    The row is deleted and committed first; the files go after the commit. A stem the document
    mentions is kept when another of the owner's saved projects mentions it too (versions saved with
    "Save as a new version" share their stems), when a row stores it (a project saved before the
    editor copied library tracks points at the track's own audio), or when a job's parameters mention
    it. Stems are written per project (generated, uploaded, copied from a track), so only the owner's
    own projects can share them. An unreadable document deletes the row and the document only.

    Raises
    ------
    NotFoundError
        For an unknown id, or a project of another user (not revealed as existing).
    """
    from sqlalchemy import delete, select

    from core.db.models import STORAGE_KEY_COLUMNS, Job
    from core.db.models import Project as ProjectRow
    from core.errors import StudioError
    from core.storage import find_keys

    row = session.get(ProjectRow, int(project_id)) if isinstance(project_id, int) else None
    if row is None or row.owner_id != int(owner_id):
        raise NotFoundError(f"Project {project_id} not found.")
    data_key = row.data_key
    stems: set[str] = set()
    if data_key:
        with contextlib.suppress(StudioError, OSError, UnicodeDecodeError):
            stems = find_keys(storage.get(data_key).decode("utf-8")) - {data_key}
    others = session.execute(
        select(ProjectRow.data_key).where(
            ProjectRow.owner_id == int(owner_id), ProjectRow.id != row.id, ProjectRow.data_key.is_not(None)
        )
    ).scalars()
    for other in others:
        if not stems:
            break
        try:
            stems -= find_keys(storage.get(other).decode("utf-8", errors="replace"))
        except (StudioError, OSError):
            stems.clear()  # a document we cannot read may use any of them: keep them all
    for column, _owner in STORAGE_KEY_COLUMNS:
        if stems:
            stems -= set(session.execute(select(column).where(column.in_(sorted(stems)))).scalars())
    stems = {
        key
        for key in stems
        if session.execute(select(Job.id).where(Job.params_json.contains(key)).limit(1)).first() is None
    }
    try:
        session.execute(
            delete(ProjectRow).where(ProjectRow.id == row.id).execution_options(synchronize_session=False)
        )
        session.commit()
    except BaseException:
        session.rollback()
        raise
    session.expunge(row)
    for key in [data_key, *sorted(stems)]:
        if key:
            with contextlib.suppress(Exception):
                storage.delete(key)


def from_track(session, storage, *, track_id: int, viewer_id: int) -> Project:
    """An audio project of a library track the viewer may see, its stem a private copy of the track's audio.

    The copy (the stored file's bytes under a new key, mentioned only by the project) makes the project
    independent of the track: deleting the track, or its owner's account, leaves the project whole. Until
    the project is saved the copy is an orphan that ``python -m core sweep`` removes after two days, like
    the stems of an upload opened and never saved.

    Raises
    ------
    NotFoundError
        If the track does not exist or the viewer may not see it.
    """
    from core.library import get_for_viewer

    track = get_for_viewer(session, track_id=int(track_id), viewer_id=viewer_id)
    if track is None:
        raise NotFoundError(f"Track {track_id} not found.")
    src = StorageSources(storage)
    y = src.audio(track.audio_key, sr=SAMPLE_RATE)  # decoded first: a broken file is refused, not copied
    copy = storage.put(storage.get(track.audio_key), suffix=Path(track.audio_key).suffix or ".bin")
    tempo = float(track.bpm) if track.bpm and math.isfinite(track.bpm) else None
    beats = json.loads(track.beats_json or "[]")
    meta = {
        "tempo_bpm": tempo, "key": track.key, "duration_s": y.shape[1] / SAMPLE_RATE, "chords": [],
        "source": "track", "track_id": int(track.id), "first_beat_s": float(beats[0]) if beats else 0.0,
    }  # fmt: skip
    stem = Stem(name="song", kind="audio", audio=copy, content_id=f"track-{track.audio_key}")
    return Project(title=str(track.title)[:120], stems=(stem,), meta=meta, sr=SAMPLE_RATE)
