"""Render a project (stems + ops) to audio, incrementally: preview and export use this one chain.

Per track::

    base stem  ->  tempo / key           ->  loops and trims  ->  track effects  =  processed stem
               (MIDI: re-rendered exactly;                                        (cached by the hash of
                audio: time-stretched and                                          its source + the ops
                pitch-shifted)                                                     that affect it)

then the mix bus: ``sum(gain * pan(processed stem))`` over the audible tracks -> master effects ->
fade in/out -> :func:`core.audio.loudness.master` (-14 LUFS, true peak <= -1 dBTP).

Two cache levels hold read-only arrays, keyed by content hashes: the *tempo stage* (key: the stem's
content id, tempo ratio and semitones) and the *processed stem* (key: the tempo-stage key plus the
track's timeline edits and effect chain). Gain, pan, mute, solo, master effects and fades are applied
on the mix bus only, so changing a track's volume re-mixes without re-rendering any stem
(:attr:`Render.rendered` lists the stems computed by a call). A :class:`Renderer` is safe to share
between threads; its cache is bounded in bytes (least recently used entries go first). Given a
``spill_dir``, an array the cache lets go of is written there first and memory-mapped back when it is
needed again: a project bigger than the cache (a 10-minute song's stems are 211 MB each) then costs a
file read from the page cache per edit, not a decode, re-render or re-run of its effects.

Tempo changes of MIDI stems re-render their MIDI with every event time scaled by ``1 / ratio`` (the
notes are kept; drums are never transposed) and the result is level-matched to the stem's original
audio. Audio stems go through :func:`core.audio.effects.time_stretch`. Timeline edits (loop, trim) use
song seconds at the original tempo, converted to samples at the new tempo with one formula for every
stem, so all stems stay sample-aligned.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import threading
import time
import zipfile
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from core.audio.effects import apply_chain, time_stretch
from core.audio.loudness import active_rms
from core.disk_cache import prune_lru, write_atomically
from core.editor.ops import Loop, Op, Trim
from core.editor.project import MixState, Project, Sources, TrackState
from core.errors import InputError
from core.progress import ProgressFn, report

#: Default byte budget of a renderer's cache (six three-minute stereo stems; keeps a job under 1.5 GB).
DEFAULT_CACHE_MB = 384
#: Default byte budget of a renderer's spill folder (oldest files go first).
DEFAULT_SPILL_MB = 2048
#: Arrays smaller than this are not spilled (recomputing them is cheaper than the file).
_SPILL_MIN_BYTES = 1 << 20
#: RMS level (dBFS) an added track is balanced to, relative to the loudest existing stem at its role's level.
ROLE_LEVEL_DB = {"drums": -18.0, "bass": -19.5, "keys": -23.0, "pad": -27.0, "lead": -21.5}
_PROGRAMS = {"drums": 0, "bass": 33, "keys": 0, "pad": 89, "lead": 80}
_MIX_CHUNK = 1 << 16  # samples per step of the mix bus


# --------------------------------------------------------------------------------------------------
# helpers


def _digest(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    if y.shape[1] == n:
        return y
    if y.shape[1] > n:
        return y[:, :n]
    return np.pad(y, ((0, 0), (0, n - y.shape[1])))


def _frozen(y: np.ndarray) -> np.ndarray:
    y = np.ascontiguousarray(y, dtype=np.float32)
    y.setflags(write=False)
    return y


def pan_gains(pan: float) -> tuple[float, float]:
    """Left/right gains of a balance control: unity at centre, constant power, +3 dB at the hard side."""
    theta = (float(pan) + 1.0) * np.pi / 4.0
    return float(np.cos(theta) * np.sqrt(2.0)), float(np.sin(theta) * np.sqrt(2.0))


def timeline_samples(op: Op, *, ratio: float, sr: int) -> tuple[int, int]:
    """Sample positions of a loop/trim region at the rendered tempo (the same for every stem)."""
    return round(op.start_s / ratio * sr), round(op.end_s / ratio * sr)


def apply_timeline(y: np.ndarray, timeline: tuple[Op, ...], *, ratio: float, sr: int) -> np.ndarray:
    """Apply loops and trims, in order, to ``y`` rendered at tempo ``ratio``."""
    for op in timeline:
        a, b = timeline_samples(op, ratio=ratio, sr=sr)
        b = min(b, y.shape[1])
        a = min(a, b)
        if isinstance(op, Loop):
            seg = y[:, a:b]
            y = np.concatenate([y[:, :b]] + [seg] * (op.times - 1) + [y[:, b:]], axis=1)
        elif isinstance(op, Trim):
            y = y[:, a:b]
    return y


def loop_regions(state: MixState) -> list[tuple[float, float]]:
    """Where looped material sits in the rendered song: ``(start_s, end_s)`` per loop (for the timeline).

    Examples
    --------
    >>> from core.editor.project import MixState
    >>> st = MixState((), 2.0, 0, (Loop(start_s=1.0, end_s=2.0, times=3),), (), 0.0, 0.0, 6.0, 240.0)
    >>> loop_regions(st)
    [(0.5, 2.0)]
    """
    regions: list[tuple[float, float]] = []
    for op in state.timeline:
        a, b = op.start_s, op.end_s
        if isinstance(op, Loop):
            grow = (b - a) * (op.times - 1)
            moved = []
            for s, e in regions:
                if s >= b:
                    moved.append((s + grow, e + grow))
                elif e > b:
                    moved.append((s, e + grow))
                else:
                    moved.append((s, e))
            regions = [*moved, (a, b + grow)]
        else:
            regions = [(max(s, a) - a, min(e, b) - a) for s, e in regions if e > a and s < b]
    return [(round(s / state.ratio, 4), round(e / state.ratio, 4)) for s, e in regions]


def fade(y: np.ndarray, *, sr: int, in_s: float, out_s: float) -> np.ndarray:
    """Linear fade-in over ``in_s`` and fade-out over ``out_s`` seconds (returns a new array)."""
    out = np.array(y, dtype=np.float32, copy=True)
    n = out.shape[1]
    ni, no = min(n, round(in_s * sr)), min(n, round(out_s * sr))
    if ni > 0:
        out[:, :ni] *= np.linspace(0.0, 1.0, ni, endpoint=False, dtype=np.float32)
    if no > 0:
        out[:, n - no :] *= np.linspace(1.0, 0.0, no, dtype=np.float32)
    return out


# --------------------------------------------------------------------------------------------------
# MIDI


def retime_midi(
    data: bytes, *, ratio: float = 1.0, semitones: int = 0, timeline: tuple[Op, ...] = ()
) -> bytes:
    """MIDI at ``ratio`` times the tempo (every event time / ratio), pitched notes moved by ``semitones``.

    ``timeline`` loops/trims (song seconds at the original tempo) are applied to the notes too (the MIDI
    export); notes starting inside a looped region are repeated, notes cut by a trim are shortened.
    """
    import pretty_midi

    from core.music.midi import midi_from_bytes

    pm = midi_from_bytes(bytes(data))
    end = max(pm.get_end_time(), 1e-3)
    if ratio != 1.0:
        pm.adjust_times([0.0, end], [0.0, end / float(ratio)])
    for inst in pm.instruments:
        if not inst.is_drum and semitones:
            for n in inst.notes:
                n.pitch = int(min(127, max(0, n.pitch + int(semitones))))
    for op in timeline:
        a, b = op.start_s / ratio, op.end_s / ratio
        for inst in pm.instruments:
            notes = []
            for n in inst.notes:
                if isinstance(op, Trim):
                    if n.end <= a or n.start >= b:
                        continue
                    notes.append(
                        pretty_midi.Note(n.velocity, n.pitch, max(n.start, a) - a, min(n.end, b) - a)
                    )
                else:
                    shift = (b - a) * (op.times - 1)
                    if n.start >= b:
                        notes.append(pretty_midi.Note(n.velocity, n.pitch, n.start + shift, n.end + shift))
                        continue
                    notes.append(n)
                    if n.start >= a:
                        for k in range(1, op.times):
                            off = (b - a) * k
                            notes.append(
                                pretty_midi.Note(n.velocity, n.pitch, n.start + off, min(n.end, b) + off)
                            )
            inst.notes = sorted(notes, key=lambda x: (x.start, x.pitch))
            inst.control_changes = []
            inst.pitch_bends = []
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


def _chords_for(meta: dict, key) -> list[tuple[float, float, object]]:
    """The project's chords as ``(start_s, end_s, Chord)``; a I-V-vi-IV style loop when unknown."""
    from core.music.theory import diatonic_chord, parse_chord

    out = []
    for s, e, label in meta.get("chords") or ():
        try:
            c = parse_chord(label)
        except InputError:
            c = None
        if c is not None and e > s:
            out.append((float(s), float(e), c))
    if out:
        return out
    bpm = float(meta["tempo_bpm"])
    bar = 4 * 60.0 / bpm
    degrees = (0, 5, 2, 6) if key.is_minor else (0, 4, 5, 3)
    t0 = float(meta.get("first_beat_s") or 0.0)
    dur = float(meta["duration_s"])
    i, t = 0, t0
    while t < dur:
        out.append((t, t + bar, diatonic_chord(key, degrees[i % 4])))
        t += bar
        i += 1
    return out


def added_track_midi(role: str, *, seed: int, meta: dict) -> bytes:
    """A new ``role`` part (drums, bass, keys, pad or lead) that follows the song's tempo, key and chords.

    A small rule-based arranger over the music engine's public pieces (:mod:`core.music.theory` chord
    parsing and voice leading, :mod:`core.music.midi` writing); ``seed`` picks the pattern and variations.
    Times follow ``meta["first_beat_s"]`` so an upload's bar grid is kept.
    """
    from core.music.midi import Note, Part, midi_to_bytes, parts_to_midi
    from core.music.theory import nearest_in_scale, parse_key, voice_chord

    if role not in _PROGRAMS:
        raise InputError(f"AddTrack.role = {role!r} is not allowed: use one of {', '.join(_PROGRAMS)}.")
    bpm = float(meta["tempo_bpm"])
    key = parse_key(str(meta["key"]))
    rng = np.random.default_rng(int(seed))
    spb = 60.0 / bpm
    offset = float(meta.get("first_beat_s") or 0.0)
    total_beats = (float(meta["duration_s"]) - offset) / spb
    chords = [((s - offset) / spb, (e - offset) / spb, c) for s, e, c in _chords_for(meta, key)]
    notes: list[Note] = []
    if role == "drums":
        sixteenth_hats = bool(rng.random() < 0.4)
        extra_kick = float(rng.uniform(0.2, 0.7))
        bar = 0
        while bar * 4 < total_beats - 1:
            b0 = bar * 4.0
            for beat in (0.0, 2.0):
                notes.append(Note(b0 + beat, b0 + beat + 0.25, 36, int(rng.integers(100, 120))))
            if rng.random() < extra_kick:
                notes.append(Note(b0 + 2.5, b0 + 2.75, 36, int(rng.integers(80, 100))))
            for beat in (1.0, 3.0):
                notes.append(Note(b0 + beat, b0 + beat + 0.25, 38, int(rng.integers(95, 115))))
            step = 0.25 if sixteenth_hats else 0.5
            for k in range(int(4 / step)):
                t = b0 + k * step
                accent = 85 if (k * step) % 1 == 0 else 60
                notes.append(Note(t, t + step / 2, 42, int(accent + rng.integers(-8, 8))))
            if bar % 8 == 0:
                notes.append(Note(b0, b0 + 1.0, 49, 100))
            bar += 1
    else:
        pattern = int(rng.integers(3))
        prev: list[int] | None = None
        last = 60 + key.tonic_pc
        for s, e, chord in chords:
            s, e = max(0.0, s), min(e, total_beats)
            if e - s < 0.25:
                continue
            pcs = chord.pitch_classes
            if role == "bass":
                root = 36 + (chord.lowest_pc - 36) % 12
                fifth = root + 7
                t = s
                step = (1.0, 0.5, 1.0)[pattern]
                k = 0
                while t < e - 1e-6:
                    pitch = fifth if pattern == 2 and k % 2 == 1 else root
                    notes.append(Note(t, min(e, t + step * 0.9), pitch, int(rng.integers(90, 110))))
                    t += step
                    k += 1
            elif role in ("keys", "pad"):
                lo, hi = (52, 76) if role == "keys" else (48, 72)
                voicing = voice_chord(pcs, low=lo, high=hi, previous=prev, size=4 if role == "pad" else None)
                prev = voicing
                if role == "pad":
                    notes.extend(Note(s, e, p, 70) for p in voicing)
                else:
                    step = (1.0, 2.0, 0.5)[pattern]
                    t = s
                    while t < e - 1e-6:
                        notes.extend(
                            Note(t, min(e, t + step * 0.8), p, int(rng.integers(70, 90))) for p in voicing
                        )
                        t += step
            else:  # lead
                t = s
                while t < e - 1e-6:
                    dur = float(rng.choice([0.5, 1.0, 1.0, 2.0]))
                    if rng.random() < 0.2:
                        t += dur
                        continue
                    if rng.random() < 0.6:
                        cands = [p for p in range(62, 85) if p % 12 in pcs]
                        pitch = min(cands, key=lambda p: abs(p - last) + rng.random() * 3)
                    else:
                        pitch = nearest_in_scale(int(np.clip(last + rng.integers(-2, 3), 62, 84)), key)
                    notes.append(Note(t, min(e, t + dur * 0.95), pitch, int(rng.integers(85, 110))))
                    last = pitch
                    t += dur
    offset_beats = offset / spb
    notes = [Note(n.start + offset_beats, n.end + offset_beats, n.pitch, n.velocity) for n in notes]
    genre = meta.get("genre")
    program = _PROGRAMS[role]
    if genre and role != "drums":
        try:
            from core.music.instruments import get_genre, program_for

            program = program_for(get_genre(genre), role)
        except InputError:
            pass
    part = Part(
        role, program=program, is_drum=role == "drums", notes=sorted(notes, key=lambda n: (n.start, n.pitch))
    )
    bpm_clamped = min(240.0, max(40.0, bpm))
    if bpm_clamped != bpm:  # parts_to_midi writes 40-240 bpm; rescale beats so seconds stay exact
        f = bpm_clamped / bpm
        part.notes = [Note(n.start * f, n.end * f, n.pitch, n.velocity) for n in part.notes]
    end_beat = float(meta["duration_s"]) / (60.0 / bpm_clamped)
    return midi_to_bytes(parts_to_midi([part], bpm=bpm_clamped, key=key, end_beat=end_beat))


# --------------------------------------------------------------------------------------------------
# the renderer


@dataclass(frozen=True)
class Render:
    """A rendered project.

    Attributes
    ----------
    mix : np.ndarray
        float32 ``(2, n)``: mastered (or the raw bus when ``mastered=False``).
    sr : int
        Sample rate.
    stems : dict of str to np.ndarray
        Processed stems (after tempo, timeline and track effects; before gain/pan), read-only.
    state : MixState
        The mix state that was rendered.
    rendered : tuple of str
        Tracks whose processed stem was computed by this call (the rest came from the cache).
    timings : dict of str to float
        Seconds spent on ``stems`` (processing the stems not in the cache), ``mix`` (the bus, master
        effects and fades) and ``master`` (loudness normalisation and limiting).
    keys : dict of str to str
        Cache key of each processed stem (a content digest: equal keys, equal audio).
    """

    mix: np.ndarray
    sr: int
    stems: dict[str, np.ndarray]
    state: MixState
    rendered: tuple[str, ...]
    timings: dict = dataclasses.field(default_factory=dict)
    keys: dict = dataclasses.field(default_factory=dict)

    @property
    def seconds(self) -> float:
        """Length of the mix in seconds."""
        return self.mix.shape[1] / self.sr

    def post_fader(self, name: str) -> np.ndarray:
        """The processed stem ``name`` with its gain and pan applied (as it sits in the mix)."""
        t = self.state.track(name)
        g = 10 ** (t.gain_db / 20.0)
        left, right = pan_gains(t.pan)
        y = self.stems[name]
        return np.stack([y[0] * np.float32(g * left), y[1] * np.float32(g * right)]).astype(np.float32)


def _semitones(state: MixState, t: TrackState) -> int:
    """The key shift ``t`` is played with: drums are never transposed."""
    return 0 if t.is_drum else state.semitones


def _reshaped(state: MixState, t: TrackState) -> bool:
    """Whether the tempo/key stage changes ``t`` (else its base audio is used as it is)."""
    return state.ratio != 1.0 or _semitones(state, t) != 0


class Renderer:
    """Renders projects with a bounded, thread-safe cache of stems (share one per process).

    Parameters
    ----------
    cache_mb : int
        Byte budget of cached arrays in memory.
    workers : int
        Threads used for per-stem work (pedalboard releases the GIL) and MIDI render processes.
    spill_dir : str or Path, optional
        A folder for arrays evicted from memory (``.npy`` files, memory-mapped back on a later hit).
        It belongs to this renderer: files left there by an earlier process are removed, since they
        may come from other code. None (the default) keeps everything in memory only.
    spill_mb : int
        Byte budget of ``spill_dir`` (least recently used files go first).
    """

    def __init__(
        self,
        *,
        cache_mb: int = DEFAULT_CACHE_MB,
        workers: int = 2,
        spill_dir: str | Path | None = None,
        spill_mb: int = DEFAULT_SPILL_MB,
    ) -> None:
        self._cache: OrderedDict[str, object] = OrderedDict()
        self._refs: dict[int, int] = {}  # id(array) -> cache entries holding it (shared arrays count once)
        self._bytes = 0
        self._budget = int(cache_mb) * 1024 * 1024
        self._lock = threading.Lock()
        self.workers = max(1, int(workers))
        #: Counters: ``stem`` (processed stems computed), ``tempo`` (tempo/key stages),
        #: ``midi`` (MIDI renders), ``hpss`` (separations), ``spilled`` (arrays written to the spill
        #: folder), ``unspilled`` (arrays mapped back from it).
        self.counts: dict[str, int] = {
            "stem": 0,
            "tempo": 0,
            "midi": 0,
            "hpss": 0,
            "spilled": 0,
            "unspilled": 0,
        }
        self._spill = None if spill_dir is None else Path(spill_dir)
        self._spill_budget = int(spill_mb) * 1024 * 1024
        self._writer: ThreadPoolExecutor | None = None  # one thread writes spill files in the background
        self._pending: list = []
        if self._spill is not None:
            self._spill.mkdir(parents=True, exist_ok=True)
            self.clear()

    # cache -------------------------------------------------------------------------------------
    def _get(self, key: str):
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        return self._unspill(key)

    def _put(self, key: str, value):
        evicted = []
        with self._lock:
            if key in self._cache:
                return self._cache[key]
            self._cache[key] = value
            for a in value if isinstance(value, tuple) else (value,):
                self._refs[id(a)] = self._refs.get(id(a), 0) + 1
                if self._refs[id(a)] == 1:
                    self._bytes += a.nbytes
            while self._bytes > self._budget and len(self._cache) > 1:
                old_key, old = self._cache.popitem(last=False)
                evicted.append((old_key, old))
                for a in old if isinstance(old, tuple) else (old,):
                    self._refs[id(a)] -= 1
                    if self._refs[id(a)] == 0:
                        del self._refs[id(a)]
                        self._bytes -= a.nbytes
        if evicted and self._spill is not None:
            # written by a background thread: the render that evicted them does not wait for the disk
            with self._lock:
                if self._writer is None:
                    self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="beattok-spill")
                self._pending = [f for f in self._pending if not f.done()]
                self._pending.append(self._writer.submit(self._spill_out, evicted))
        return value

    def flush(self) -> None:
        """Wait until every evicted array queued for the spill folder is written."""
        with self._lock:
            pending = list(self._pending)
        for f in pending:
            f.result()

    def _spill_path(self, key: str) -> Path:
        return self._spill / f"{key}.npy"

    def _spill_out(self, evicted: list) -> None:
        """Write evicted single arrays to the spill folder (once each), then keep it within budget."""
        wrote = False
        for key, value in evicted:
            if not isinstance(value, np.ndarray) or value.nbytes < _SPILL_MIN_BYTES:
                continue
            path = self._spill_path(key)
            if path.exists():  # spilled before (or mapped from there): nothing to write
                continue
            if not write_atomically(path, lambda f, value=value: np.save(f, value, allow_pickle=False)):
                continue  # a full disk only costs the recomputation later
            self._count("spilled")
            wrote = True
        if wrote:
            self._prune_spill()

    def _unspill(self, key: str):
        """The array spilled under ``key``, memory-mapped read-only (and cached again), or None."""
        if self._spill is None:
            return None
        path = self._spill_path(key)
        try:
            value = np.load(path, mmap_mode="r", allow_pickle=False)
            os.utime(path)  # recently used: pruned last
        except FileNotFoundError:  # never spilled, or pruned meanwhile
            return None
        except (OSError, ValueError):  # unreadable: recompute it (and spill it afresh later)
            path.unlink(missing_ok=True)
            return None
        self._count("unspilled")
        return self._put(key, value)

    def _prune_spill(self) -> None:
        """Remove the least recently used spill files until the folder fits its budget."""
        prune_lru(self._spill, suffix=".npy", budget_bytes=self._spill_budget)

    def clear(self) -> None:
        """Drop every cached array, and the spill folder's files."""
        with self._lock:
            self._cache.clear()
            self._refs.clear()
            self._bytes = 0
            if self._spill is not None:
                for old in self._spill.iterdir():
                    if old.suffix in (".npy", ".tmp"):
                        old.unlink(missing_ok=True)

    def _count(self, what: str, n: int = 1) -> None:
        with self._lock:
            self.counts[what] += n

    # stages ------------------------------------------------------------------------------------
    def _base_audio(self, project: Project, stem_name: str, sources: Sources) -> np.ndarray:
        stem = project.stem(stem_name)
        key = _digest("base", stem.content_id, project.sr)
        hit = self._get(key)
        if hit is not None:
            return hit
        n = round(float(project.meta["duration_s"]) * project.sr)
        if stem.audio is not None:
            y = _fit(np.asarray(sources.audio(stem.audio, sr=project.sr), dtype=np.float32), n)
            if stem.gain != 1.0:
                y = y * np.float32(stem.gain)
        else:
            from core.music.render import render_midi

            self._count("midi")
            y = render_midi(sources.midi(stem.midi), sr=project.sr, seconds=n / project.sr)
        return self._put(key, _frozen(y))

    def _hpss(
        self, project: Project, stem_name: str, sources: Sources, progress: ProgressFn | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        stem = project.stem(stem_name)
        key = _digest("hpss", stem.content_id, project.sr)
        hit = self._get(key)
        if hit is not None:
            return hit
        from core.audio.separate import split_harmonic_percussive

        self._count("hpss")

        def told(fraction: float, message: str) -> None:
            report(progress, 0.1 + 0.4 * fraction, f"Splitting {stem_name} into harmonic + drums: {message}")

        h, p = split_harmonic_percussive(
            self._base_audio(project, stem_name, sources), sr=project.sr, progress=told
        )
        return self._put(key, (_frozen(h), _frozen(p)))

    def _source_id(self, project: Project, t: TrackState) -> list:
        if t.source[0] == "stem":
            return ["stem", project.stem(t.source[1]).content_id]
        if t.source[0] == "split":
            return ["split", project.stem(t.source[1]).content_id, t.source[2]]
        meta = {
            k: project.meta.get(k)
            for k in ("tempo_bpm", "key", "chords", "duration_s", "first_beat_s", "genre")
        }
        return ["added", t.source[1], t.source[2], meta]

    def _tempo_key(self, project: Project, state: MixState, t: TrackState) -> str:
        return _digest(
            "tempo", self._source_id(project, t), state.ratio, _semitones(state, t),
            project.meta["duration_s"], project.sr,
        )  # fmt: skip

    def _stem_key(self, project: Project, state: MixState, t: TrackState) -> str:
        return _digest(
            "stem", self._tempo_key(project, state, t), [op.to_dict() for op in state.timeline],
            [e.to_dict() for e in t.chain],
        )  # fmt: skip

    def _tempo_stage(
        self,
        project: Project,
        state: MixState,
        tracks: list[TrackState],
        sources: Sources,
        progress: ProgressFn | None = None,
    ) -> dict:
        """Tempo/key stage of ``tracks`` (cached); MIDI renders run in parallel processes (reported as
        each is back, between 10 % and 60 % of ``progress``)."""
        sr = project.sr
        n_base = round(float(project.meta["duration_s"]) * sr)
        n_t = round(n_base / state.ratio)
        out: dict[str, np.ndarray] = {}
        midi_jobs: dict[str, tuple[bytes, int]] = {}
        level_ref: dict[str, np.ndarray | None] = {}
        audio_jobs: dict[str, np.ndarray] = {}
        keys: dict[str, str] = {}
        missing: list[TrackState] = []
        for t in tracks:
            keys[t.name] = self._tempo_key(project, state, t)
            hit = self._get(keys[t.name])
            if hit is not None:
                out[t.name] = hit
            else:
                missing.append(t)
        bases = self._base_audios(project, state, missing, sources)
        for t in missing:
            semis = _semitones(state, t)
            unchanged = not _reshaped(state, t)
            if t.source[0] == "stem":
                stem = project.stem(t.source[1])
                if unchanged or stem.midi is None:
                    base = bases[stem.name]
                    if unchanged:
                        out[t.name] = base
                        continue
                    audio_jobs[t.name] = base
                    continue
                midi_jobs[t.name] = (bytes(sources.midi(stem.midi)), semis)
                level_ref[t.name] = bases[stem.name] if stem.audio else None
            elif t.source[0] == "split":
                h, p = self._hpss(project, t.source[1], sources, progress)
                base = h if t.source[2] == "harmonic" else p
                if unchanged:
                    out[t.name] = base
                    continue
                audio_jobs[t.name] = base
            else:
                raw = added_track_midi(t.source[1], seed=t.source[2], meta=project.meta)
                midi_jobs[t.name] = (raw, semis)
                level_ref[t.name] = None
        if midi_jobs:
            from core.music.render import StemRenderer

            self._count("midi", len(midi_jobs))
            # every stem queued at once (each core busy until the last one is done); a stem is level-matched
            # as soon as it is back, so only the renders in flight hold extra memory
            with StemRenderer(sr=sr, seconds=n_t / sr, workers=self.workers) as renderer:
                for name, (data, semis) in midi_jobs.items():
                    renderer.submit_midi(name, data, ratio=state.ratio, semitones=semis)
                for name, y in renderer.completed():
                    ref = level_ref.get(name)
                    t = next(t for t in tracks if t.name == name)
                    got = active_rms(y)
                    want = (
                        active_rms(ref) if ref is not None else self._added_level(project, state, t, sources)
                    )
                    if got > 1e-9 and want > 0:
                        y *= np.float32(want / got)  # y is this render's own array
                    self._count("tempo")
                    out[name] = self._put(keys[name], _frozen(y))
                    done, total = sum(1 for k in midi_jobs if k in out), len(midi_jobs)
                    report(progress, 0.1 + 0.5 * done / total, f"Rendered {done} of {total} tracks")
        if audio_jobs:
            semis_of = {t.name: _semitones(state, t) for t in tracks}

            def stretch(name: str) -> tuple[str, np.ndarray]:
                y = time_stretch(audio_jobs[name], sr=sr, rate=state.ratio, semitones=float(semis_of[name]))
                return name, _fit(y, n_t)

            with ThreadPoolExecutor(max_workers=self.workers) as pool:
                for name, y in pool.map(stretch, list(audio_jobs)):
                    self._count("tempo")
                    out[name] = self._put(keys[name], _frozen(y))
        return out

    def _base_audios(
        self, project: Project, state: MixState, tracks: list[TrackState], sources: Sources
    ) -> dict[str, np.ndarray]:
        """The base audio of the stems ``tracks`` play that the tempo stage needs, ``workers`` at a time.

        Decoding a stem's FLAC releases the GIL: a 10-minute three-stem project (an add-beats result)
        opened in the editor decodes in about 3 s instead of 5.7 s.
        """
        names = []
        for t in tracks:
            if t.source[0] != "stem":
                continue
            stem = project.stem(t.source[1])
            if (not _reshaped(state, t) or stem.midi is None or stem.audio) and stem.name not in names:
                names.append(stem.name)

        def base(name: str) -> np.ndarray:
            return self._base_audio(project, name, sources)

        if len(names) < 2 or self.workers < 2:
            return {name: base(name) for name in names}
        with ThreadPoolExecutor(max_workers=min(self.workers, len(names))) as pool:
            return dict(zip(names, pool.map(base, names), strict=True))

    def _added_level(self, project: Project, state: MixState, t: TrackState, sources: Sources) -> float:
        """Target active RMS of an added track: its role level relative to the loudest original stem."""
        best, best_role = 0.0, "drums"
        for s in project.stems:
            if s.audio is None:
                continue
            r = active_rms(self._base_audio(project, s.name, sources))
            if r > best:
                best, best_role = r, s.role if s.role in ROLE_LEVEL_DB else "drums"
        if best <= 0:
            return 10 ** (ROLE_LEVEL_DB[t.role] / 20)
        return best * 10 ** ((ROLE_LEVEL_DB[t.role] - ROLE_LEVEL_DB[best_role]) / 20)

    # public ------------------------------------------------------------------------------------
    def render(
        self,
        project: Project,
        *,
        sources: Sources,
        mastered: bool = True,
        progress: ProgressFn | None = None,
    ) -> Render:
        """Render ``project``: processed stems (cached) -> mix bus -> master.

        Parameters
        ----------
        project : Project
            The project; only its ops in effect are rendered.
        sources : Sources
            Resolves the stems' references.
        mastered : bool
            Finish with loudness normalisation and true-peak limiting (always on for what users hear;
            ``False`` exposes the raw bus for measurements).
        progress : callable, optional
            ``progress(fraction, message)``.

        Returns
        -------
        Render
        """
        state = project.state()
        sr = project.sr
        t0 = time.perf_counter()
        report(progress, 0.02, "Preparing stems")
        stems: dict[str, np.ndarray] = {}
        todo: list[TrackState] = []
        keys = {}
        for t in state.tracks:
            keys[t.name] = self._stem_key(project, state, t)
            hit = self._get(keys[t.name])
            if hit is not None:
                stems[t.name] = hit
            else:
                todo.append(t)
        if todo:
            report(progress, 0.1, f"Rendering {len(todo)} track(s)")
            staged = self._tempo_stage(project, state, todo, sources, progress=progress)
            report(progress, 0.6, "Effects")

            def finish(t: TrackState) -> tuple[str, np.ndarray]:
                y = apply_timeline(staged[t.name], state.timeline, ratio=state.ratio, sr=sr)
                if t.chain:
                    y = apply_chain(y, sr=sr, chain=t.chain)
                return t.name, y

            with ThreadPoolExecutor(max_workers=self.workers) as pool:
                for name, y in pool.map(finish, todo):
                    self._count("stem")
                    stems[name] = self._put(keys[name], _frozen(y))
        report(progress, 0.85, "Mixing")
        t1 = time.perf_counter()
        mix_key = _digest(
            "mix", [keys[t.name] for t in state.tracks],
            [[t.name, t.gain_db, t.pan, t.mute, t.solo] for t in state.tracks],
            [e.to_dict() for e in state.master_chain], state.fade_in_s, state.fade_out_s, mastered, sr,
        )  # fmt: skip
        bus = self._get(mix_key)
        t2 = t1
        if bus is None:
            bus = self.mix(stems, state, sr=sr, mastered=False)
            t2 = time.perf_counter()
            if mastered and bus.shape[1] > 0:
                from core.audio.loudness import master

                bus = master(bus, sr=sr, in_place=True)  # the bus is this render's own array
            bus = self._put(mix_key, _frozen(bus))
        timings = {"stems": t1 - t0, "mix": t2 - t1, "master": time.perf_counter() - t2}
        report(progress, 1.0, "Done")
        ordered = {t.name: stems[t.name] for t in state.tracks}
        return Render(
            mix=bus, sr=sr, stems=ordered, state=state, rendered=tuple(t.name for t in todo), timings=timings,
            keys={t.name: keys[t.name] for t in state.tracks},
        )  # fmt: skip

    @staticmethod
    def mix(stems: dict[str, np.ndarray], state: MixState, *, sr: int, mastered: bool = True) -> np.ndarray:
        """The mix bus: gains and pans of the audible tracks, master effects, fades, then mastering."""
        n = max((y.shape[1] for y in stems.values()), default=0)
        bus = np.zeros((2, n), dtype=np.float32)
        # one short scratch row, reused chunk by chunk (a full-length temporary costs fresh pages)
        tmp = np.empty(min(n, _MIX_CHUNK), dtype=np.float32)
        for t in state.audible():
            y = stems[t.name]
            m = y.shape[1]
            g = 10 ** (t.gain_db / 20.0)
            for c, side in enumerate(pan_gains(t.pan)):
                k = np.float32(g * side)
                for a in range(0, m, _MIX_CHUNK):
                    b = min(m, a + _MIX_CHUNK)
                    np.multiply(y[c, a:b], k, out=tmp[: b - a])
                    bus[c, a:b] += tmp[: b - a]
        if state.master_chain:
            bus = apply_chain(bus, sr=sr, chain=state.master_chain)
        if state.fade_in_s or state.fade_out_s:
            bus = fade(bus, sr=sr, in_s=state.fade_in_s, out_s=state.fade_out_s)
        if mastered and n > 0:
            from core.audio.loudness import master

            bus = master(bus, sr=sr, in_place=True)
        return np.ascontiguousarray(bus, dtype=np.float32)

    def render_original(self, project: Project, *, sources: Sources) -> Render:
        """The project with no edits (A/B reference), mastered like the edit."""
        return self.render(project.original(), sources=sources)


# --------------------------------------------------------------------------------------------------
# exports


def export_mix(render: Render, *, fmt: str, title: str | None = None, artist: str | None = None) -> bytes:
    """The mastered mix encoded as ``fmt`` (wav, mp3, flac, ogg)."""
    from core.audio.io import encode

    return encode(render.mix, sr=render.sr, fmt=fmt, title=title, artist=artist)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "track"


def stems_zip(render: Render, *, fmt: str = "flac") -> bytes:
    """A zip of the audible tracks as they sit in the mix (gain and pan applied, before the master bus)."""
    from core.audio.io import encode

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for t in render.state.audible():
            y = render.post_fader(t.name)
            zf.writestr(f"{_safe(t.name)}.{fmt}", encode(np.clip(y, -1, 1), sr=render.sr, fmt=fmt))
    return buf.getvalue()


def project_midi(project: Project, *, sources: Sources) -> bytes | None:
    """One MIDI file of every audible MIDI track at the edited tempo, key and timeline (None: no MIDI)."""
    import pretty_midi

    from core.music.midi import midi_from_bytes

    state = project.state()
    bpm = state.bpm or 120.0
    out = pretty_midi.PrettyMIDI(initial_tempo=float(bpm))
    for t in state.audible():
        if t.kind != "midi":
            continue
        if t.source[0] == "stem":
            raw = sources.midi(project.stem(t.source[1]).midi)
        else:
            raw = added_track_midi(t.source[1], seed=t.source[2], meta=project.meta)
        pm = midi_from_bytes(
            retime_midi(raw, ratio=state.ratio, semitones=_semitones(state, t), timeline=state.timeline)
        )
        for inst in pm.instruments:
            inst.name = t.name
            out.instruments.append(inst)
    if not out.instruments:
        return None
    buf = io.BytesIO()
    out.write(buf)
    return buf.getvalue()


def bundle_zip(project: Project, *, sources: Sources) -> bytes:
    """A self-contained project: ``project.json`` with stem paths relative to it, plus the stem files.

    ``python -m core edit project.json --out song.mp3`` renders an unzipped bundle exactly as the editor.
    """
    from core.audio.io import encode

    buf = io.BytesIO()
    stems = []
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for s in project.stems:
            audio = midi = None
            if s.audio is not None:
                audio = f"stems/{_safe(s.name)}.flac"
                y = sources.audio(s.audio, sr=project.sr)
                zf.writestr(audio, encode(y, sr=project.sr, fmt="flac", bit_depth=24))
            if s.midi is not None:
                midi = f"stems/{_safe(s.name)}.mid"
                zf.writestr(midi, sources.midi(s.midi))
            stems.append(replace(s, audio=audio, midi=midi))
        zf.writestr("project.json", replace(project, stems=tuple(stems)).to_json())
    return buf.getvalue()
