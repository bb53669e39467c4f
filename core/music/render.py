"""Render MIDI to audio through a General MIDI soundfont with our synthesiser (:mod:`core.music.synth`).

The synthesiser is compiled with numba and releases the GIL, so several stems (and pieces of one long
stem) render at once in threads of this process, on every core, straight at the output rate.

A :class:`StemRenderer` takes stems as they are written and renders each at once. A stem longer than
:data:`PIECE_S` is cut at note starts into pieces that render at once (:func:`split_part`), so no core
waits for one long stem at the end. Long silences inside a part are not synthesised
(:func:`skip_silences`): the reverb and chorus would run on them. Rendering is deterministic: the same
MIDI and soundfont give bit-identical audio on one machine, with one thread or several (the cuts
depend only on the notes).

The soundfont is pretty_midi's bundled General MIDI ``TimGM6mb.sf2`` unless the ``SOUNDFONT`` setting
(or the ``soundfont`` argument) names another ``.sf2`` file.

Examples
--------
>>> from core.music.midi import Note, Part, parts_to_midi, midi_to_bytes
>>> pm = parts_to_midi([Part("keys", notes=[Note(0, 1, 60, 100)])], bpm=120.0)
>>> y = render_midi(midi_to_bytes(pm), sr=44100, seconds=1.0)
>>> y.shape, y.dtype
((2, 44100), dtype('float32'))
"""

from __future__ import annotations

import bisect
import io
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

from core.audio.checks import check_sample_rate
from core.config import SAMPLE_RATE, get_settings
from core.errors import InputError, ModelError
from core.music import synth
from core.music.midi import Part, encode_midi
from core.music.sf2 import load_soundfont
from core.music.theory import Key


def default_soundfont_path() -> Path:
    """The soundfont to use: the ``SOUNDFONT`` setting, else pretty_midi's bundled ``TimGM6mb.sf2``."""
    configured = get_settings().soundfont
    if configured:
        return Path(configured).expanduser()
    import pretty_midi

    return Path(pretty_midi.__file__).resolve().parent / "TimGM6mb.sf2"


def check_soundfont(path: str | Path | None = None) -> Path:
    """Return the soundfont path after checking that it exists and is a RIFF ``sfbk`` (SF2) file.

    Raises
    ------
    ModelError
        For a missing, unreadable or non-SF2 file (the message names the path).
    """
    p = Path(path).expanduser() if path is not None else default_soundfont_path()
    try:
        with open(p, "rb") as fh:
            head = fh.read(12)
    except OSError as exc:
        raise ModelError(
            f"Soundfont {str(p)!r} cannot be read ({exc.strerror or exc}); set SOUNDFONT to an .sf2 file."
        ) from exc
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"sfbk":
        raise ModelError(
            f"Soundfont {str(p)!r} is not a SoundFont 2 file (no RIFF 'sfbk' header); use an .sf2 file."
        )
    return p


def rewrite_midi(midi: bytes, *, time_scale: float = 1.0, transpose: int = 0) -> bytes:
    """One pass over a MIDI file: scale its tempo and transpose pitched notes.

    Parameters
    ----------
    midi : bytes
        A Standard MIDI File (type 0 or 1).
    time_scale : float
        Every duration is multiplied by this (each ``set_tempo`` is scaled; ticks are kept, so the notes
        and controllers keep their musical positions exactly). ``0.5`` plays twice as fast.
    transpose : int
        Semitones added to every note outside the drum channel (10), clamped to 0-127.

    Returns
    -------
    bytes
        The rewritten file (a type 2 file unchanged).

    Raises
    ------
    InputError
        For corrupt MIDI data.
    """
    return _rewrite(midi, time_scale=time_scale, transpose=transpose)[0][0]


def _rewrite(
    midi: bytes,
    *,
    time_scale: float = 1.0,
    transpose: int = 0,
    pack: bool = False,
    split: bool = False,
) -> list[tuple[bytes, list | None, float, bool]]:
    """:func:`rewrite_midi`, with ``split`` cut into pieces (:func:`_split_midi`) and with ``pack`` each
    piece's long silences cut out (:func:`_pack_silences`).

    Returns ``[(bytes, layout, start s, is last)]`` per piece (one piece without ``split`` or when there
    is nothing to cut; start and layout in the file's own seconds, before ``time_scale``).
    """
    import mido

    try:
        mf = mido.MidiFile(file=io.BytesIO(midi))
    except Exception as exc:  # mido raises many types for corrupt files
        raise InputError(f"Corrupt MIDI data: {exc}") from exc
    if mf.type == 2:
        return [(bytes(midi), None, 0.0, True)]
    has_tempo = any(msg.type == "set_tempo" for track in mf.tracks for msg in track)
    pieces = (_split_midi(mf) if split else None) or [(mf, 0.0, True)]
    out = []
    for piece, start, last in pieces:
        layout = _pack_silences(piece) if pack else None
        out.append((_transform(piece, time_scale, int(transpose), has_tempo), layout, start, last))
    return out


def _transform(mf, time_scale: float, semis: int, has_tempo: bool) -> bytes:
    """Scale the tempo and transpose a parsed MIDI file (changed in place); its bytes."""
    import mido

    for ti, track in enumerate(mf.tracks):
        new = mido.MidiTrack()
        if ti == 0 and not has_tempo and time_scale != 1.0:
            new.append(mido.MetaMessage("set_tempo", tempo=round(500000 * time_scale), time=0))
        for msg in track:
            if msg.type == "set_tempo" and time_scale != 1.0:
                msg = msg.copy(tempo=min(16777215, max(1, round(msg.tempo * time_scale))))
            elif semis and msg.type in ("note_on", "note_off") and msg.channel != 9:
                msg = msg.copy(note=min(127, max(0, msg.note + semis)))
            new.append(msg)
        mf.tracks[ti] = new
    buf = io.BytesIO()
    mf.save(file=buf)
    return buf.getvalue()


def _passages(spans, *, gap: float, tail: float) -> list[tuple[float, float, float]] | None:
    """Merge note ``(start, end)`` spans separated by less than ``gap`` into passages and lay them back
    to back, each followed by ``tail``: ``[(start, packed start, length)]``, or None when nothing would
    be cut (one passage starting within ``gap`` of the beginning). Any time unit."""
    passages: list[list[float]] = []
    for start, end in sorted(spans):
        if passages and start - passages[-1][1] < gap:
            passages[-1][1] = max(passages[-1][1], end)
        else:
            passages.append([start, end])
    if not passages or (len(passages) == 1 and passages[0][0] < gap):
        return None
    layout, cursor = [], 0.0
    for start, end in passages:
        layout.append((start, cursor, end - start + tail))
        cursor += end - start + tail
    return layout


def _scan(mf) -> tuple[int, list[tuple[list, dict]]] | None:
    """The tempo and, per track, its events ``[(tick, message)]`` and notes ``{note-off index: note-on
    index}`` of a parsed MIDI file with one tempo (set at the start); None for a file with tempo
    changes or a note that never ends."""
    tempo, tracks = 500000, []
    for track in mf.tracks:
        tick, held, events, pair = 0, {}, [], {}
        for i, msg in enumerate(track):
            tick += msg.time
            if msg.type == "set_tempo":
                if tick > 0:
                    return None
                tempo = msg.tempo
            elif msg.type == "note_on" and msg.velocity > 0:
                held.setdefault((msg.channel, msg.note), []).append(i)
            elif msg.type in ("note_on", "note_off") and held.get((msg.channel, msg.note)):
                pair[i] = held[(msg.channel, msg.note)].pop(0)
            events.append((tick, msg))
        if any(held.values()):
            return None  # a note never ends: leave the file alone
        tracks.append((events, pair))
    return tempo, tracks


def _pack_silences(mf) -> list[tuple[float, float, float]] | None:
    """:func:`skip_silences` for a parsed MIDI file (``mido.MidiFile``, changed in place).

    Only for files with one tempo (set at the start), where ticks and seconds are proportional; every
    event keeps its order, events inside a cut silence move to where the cut closes. Returns the layout
    in seconds (None: nothing cut, the file is unchanged).
    """
    scan = _scan(mf)
    if scan is None:
        return None
    tempo, tracks = scan
    notes = [(events[on][0], events[off][0]) for events, pair in tracks for off, on in pair.items()]
    if not notes:
        return None
    spt = tempo / 1e6 / mf.ticks_per_beat  # seconds per tick
    layout = _passages(notes, gap=MIN_SILENCE_S / spt, tail=TAIL_S / spt)
    if layout is None:
        return None
    keep = [(int(a), int(a + length)) for a, _, length in layout]  # tick spans kept, in order
    packed_at, cursor = [], 0
    for a, b in keep:
        packed_at.append(cursor)
        cursor += b - a

    def moved(t: int) -> int:
        k = bisect.bisect_right([a for a, _ in keep], t) - 1
        if k < 0:
            return 0
        a, b = keep[k]
        return packed_at[k] + min(t - a, b - a)

    for track in mf.tracks:
        tick, last = 0, 0
        for i, msg in enumerate(track):
            tick += msg.time
            new = moved(tick)
            track[i] = msg.copy(time=new - last)
            last = new
    return [(a * spt, p * spt, (b - a) * spt) for (a, b), p in zip(keep, packed_at, strict=True)]


def _split_midi(mf) -> list[tuple[object, float, bool]] | None:
    """:func:`split_part` for a parsed MIDI file with one tempo (set at the start).

    Piece ``k`` holds the notes that start in its span (with their note-offs, wherever they fall), every
    other event before its end (those before its start moved to its start: programs, controllers, the
    key), and ends :data:`TAIL_S` after its last note-off (the last piece where the file ends). Returns
    ``[(piece, start s, is last)]``, or None when the file is not cut.
    """
    import mido

    scan = _scan(mf)
    if scan is None:
        return None
    tempo, tracks = scan
    starts = [events[on][0] for events, pair in tracks for on in pair.values()]
    spt = tempo / 1e6 / mf.ticks_per_beat  # seconds per tick
    total = max((events[-1][0] for events, _ in tracks if events), default=0)
    cuts = _cuts(sorted(set(starts)), total=total, piece=PIECE_S / spt)
    if not cuts:
        return None
    bounds = [0, *cuts, total + 1]
    pieces = []
    for k in range(len(bounds) - 1):
        a, b, last = bounds[k], bounds[k + 1], k == len(bounds) - 2
        end = total
        if not last:
            offs = [ev[j][0] for ev, pair in tracks for j, i in pair.items() if a <= ev[i][0] < b]
            end = min(total, max(offs, default=a) + round(TAIL_S / spt))
        piece = mido.MidiFile(type=mf.type, ticks_per_beat=mf.ticks_per_beat)
        for events, pair in tracks:
            new, at = mido.MidiTrack(), 0
            for i, (t, msg) in enumerate(events):
                if msg.type == "note_on" and msg.velocity > 0:
                    keep = a <= t < b
                elif msg.type in ("note_on", "note_off"):
                    keep = i in pair and a <= events[pair[i]][0] < b
                else:
                    keep = t < end and msg.type != "end_of_track"
                if keep:
                    t = max(0, t - a)
                    new.append(msg.copy(time=t - at))
                    at = t
            new.append(mido.MetaMessage("end_of_track", time=max(0, end - a - at)))
            piece.tracks.append(new)
        pieces.append((piece, a * spt, last))
    return pieces


def _fit(y: np.ndarray, n: int | None) -> np.ndarray:
    """Stereo ``y`` cut or zero-padded to ``n`` samples (unchanged without ``n``)."""
    if n is None:
        return y
    if y.shape[1] >= n:
        return np.ascontiguousarray(y[:, :n])
    return np.pad(y, ((0, 0), (0, n - y.shape[1])))


def _check_midi(midi: bytes, name: str) -> None:
    if not isinstance(midi, bytes | bytearray) or bytes(midi[:4]) != b"MThd":
        raise InputError(f"Stem {name!r} is not MIDI data (no 'MThd' header).")


def render_midi(
    midi: bytes, *, sr: int = SAMPLE_RATE, seconds: float | None = None, soundfont: str | Path | None = None
) -> np.ndarray:
    """Render Standard MIDI File bytes to float32 stereo audio.

    Parameters
    ----------
    midi : bytes
        A Standard MIDI File.
    sr : int
        Output sample rate.
    seconds : float, optional
        Exact output length (zero-padded or trimmed); default: the rendered length.
    soundfont : str or Path, optional
        An ``.sf2`` file; default :func:`default_soundfont_path`.

    Returns
    -------
    np.ndarray
        float32 ``(2, n)``.
    """
    return render_stems({"midi": midi}, sr=sr, seconds=seconds, soundfont=soundfont, workers=1)["midi"]


def _check_args(sr: int, seconds: float | None) -> None:
    check_sample_rate(sr, what="Sample rate")
    if seconds is not None and not 0 < float(seconds) <= 3600:
        raise InputError(f"Render length {seconds} s is out of range: use 0-3600 s.")


def _workers(stems: int, seconds: float | None, workers: int | None) -> int | None:
    """One stem short enough to render in one piece renders in the calling thread (no thread pool)."""
    return 1 if stems <= 1 and (seconds is None or float(seconds) <= PIECE_S) else workers


def render_stems(
    midis: dict[str, bytes],
    *,
    sr: int = SAMPLE_RATE,
    seconds: float | None = None,
    soundfont: str | Path | None = None,
    workers: int | None = None,
) -> dict[str, np.ndarray]:
    """Render several MIDI stems to sample-aligned float32 ``(2, n)`` arrays of one length.

    Parameters
    ----------
    midis : dict of str to bytes
        Stem name -> Standard MIDI File bytes.
    sr : int
        Output sample rate.
    seconds : float, optional
        Exact length of every stem; default: the longest rendered stem (others are zero-padded).
    soundfont : str or Path, optional
        An ``.sf2`` file; default :func:`default_soundfont_path`.
    workers : int, optional
        Stems rendered at once in threads (default: the number of CPU cores). ``1`` renders in the
        calling thread, one stem after another.

    Raises
    ------
    ModelError
        For a missing or corrupt soundfont, or a synthesis failure.
    InputError
        For data that is not MIDI or a bad ``sr``/``seconds``.
    """
    for name, midi in midis.items():
        _check_midi(midi, name)
    with StemRenderer(
        sr=sr, seconds=seconds, soundfont=soundfont, workers=_workers(len(midis), seconds, workers)
    ) as renderer:
        for name, midi in midis.items():
            renderer.submit_midi(name, midi)
        return renderer.collect()


def render_parts(
    parts: dict[str, Part],
    *,
    bpm: float,
    key: Key | None = None,
    end_beat: float | None = None,
    sr: int = SAMPLE_RATE,
    seconds: float | None = None,
    soundfont: str | Path | None = None,
    workers: int | None = None,
) -> dict[str, np.ndarray]:
    """Render :class:`~core.music.midi.Part` objects (one stem each) like :func:`render_stems`.

    Writes each part's MIDI directly (:func:`core.music.midi.encode_midi`), so no MIDI has to be parsed
    and rewritten; the audio equals
    ``render_stems({name: encode_midi([part], ...)})`` -- bit for bit unless long silences are skipped,
    when the two paths (beats here, MIDI ticks there) may place a passage one synthesiser block (up to
    1.3 ms) apart.
    """
    with StemRenderer(
        sr=sr, seconds=seconds, soundfont=soundfont, workers=_workers(len(parts), seconds, workers)
    ) as renderer:
        for name, part in parts.items():
            renderer.submit_part(name, part, bpm=bpm, key=key, end_beat=end_beat)
        return renderer.collect()


#: Stems longer than this render as pieces of about this length at once (seconds; :func:`split_part`).
PIECE_S = 60.0
#: Silences at least this long inside a part are skipped when rendering (seconds).
MIN_SILENCE_S = 6.0
#: Audio kept after each passage before a skipped silence: the release and reverb tail (seconds).
TAIL_S = 3.0
_TAIL_FADE_S = 1.0


def skip_silences(part: Part, *, bpm: float) -> tuple[Part, float, list[tuple[float, float, float]]] | None:
    """The part with its long silences cut out, for rendering (None when there is nothing to cut).

    A lead that plays only in the verses and choruses is silent for a third of a song; the synthesiser's
    reverb would still run on every sample of that silence.
    Passages separated by at least :data:`MIN_SILENCE_S` (and the leading silence) are moved back to
    back, each keeping :data:`TAIL_S` of audio for its release and reverb tail (its last second faded
    out); after rendering, :func:`_unpack` puts each passage back at its place. Notes start on their
    exact sample, so a moved note lands within one sample of where a full render puts it.

    Returns
    -------
    (packed part, its end beat, layout) or None
        ``layout`` lists ``(original start beat, packed start beat, length in beats)`` per passage.
    """
    if not part.notes:
        return None
    spb = 60.0 / float(bpm)
    layout = _passages([(n.start, n.end) for n in part.notes], gap=MIN_SILENCE_S / spb, tail=TAIL_S / spb)
    if layout is None:
        return None
    cursor = layout[-1][1] + layout[-1][2]
    notes = []
    for n in part.notes:
        k = max(i for i, (start, _, _) in enumerate(layout) if start <= n.start + 1e-9)
        shift = layout[k][0] - layout[k][1]
        notes.append(n._replace(start=n.start - shift, end=n.end - shift))
    return replace(part, notes=notes), cursor, layout


def _cuts(starts: list[float], *, total: float, piece: float) -> list[float]:
    """Where to cut ``[0, total]`` into pieces of at most about ``piece`` (any time unit): for each of
    ``ceil(total / piece)`` equal divisions, the first of the sorted note ``starts`` at or after it (a
    cut at most once, never at or before the first note, and at least half a piece after the previous
    cut)."""
    cuts: list[float] = []
    k = int(np.ceil(total / piece)) if piece > 0 else 1
    for i in range(1, k):
        j = bisect.bisect_left(starts, total * i / k)
        if (
            j < len(starts)
            and starts[j] - (cuts[-1] if cuts else starts[0]) >= piece / 2
            and starts[j] < total
        ):
            cuts.append(starts[j])
    return cuts


def split_part(part: Part, *, bpm: float, end_beat: float) -> list[tuple[float, Part, float]]:
    """A long part cut into pieces that render separately, at once, on every core.

    Cuts fall at note starts near every :data:`PIECE_S` seconds (the same cuts on every machine, so the
    audio does not depend on the number of cores). Piece ``k`` holds the notes that start in its span,
    moved to start at 0, and lasts until :data:`TAIL_S` after its last note ends (the last piece until
    ``end_beat``); a note still held where the same pitch starts again is ended there, as in one render.
    The pieces, each rendered and added back at its start, sound as the whole part: the synthesiser's
    voices and its reverb and chorus add up linearly. What differs: a tail is cut (faded over its last
    second) :data:`TAIL_S` after a piece's last note, the reverb starts empty in each piece, and an open
    hi-hat sounding at a cut is not choked by a closed one
    struck after it (the soundfont's exclusive classes act within a piece).

    Returns
    -------
    list of (start beat, piece, piece end beat)
        One ``(0, part, end_beat)`` when the part is short enough.
    """
    spb = 60.0 / float(bpm)
    cuts = _cuts(sorted({float(n.start) for n in part.notes}), total=float(end_beat), piece=PIECE_S / spb)
    if not cuts:
        return [(0.0, part, float(end_beat))]
    notes = sorted(part.notes, key=lambda n: (n.start, n.pitch))
    next_start: dict[int, float] = {}
    ends = [0.0] * len(notes)
    for i in range(len(notes) - 1, -1, -1):  # each note ends at the latest where its pitch starts again
        n = notes[i]
        later = next_start.get(n.pitch)
        ends[i] = n.end if later is None or later <= n.start else min(n.end, later)
        next_start[n.pitch] = n.start
    bounds = [0.0, *cuts, float("inf")]
    pieces = []
    for k in range(len(bounds) - 1):
        a, b = bounds[k], bounds[k + 1]
        mine = [
            n._replace(start=n.start - a, end=e - a)
            for n, e in zip(notes, ends, strict=True)
            if a <= n.start < b
        ]
        end = float(end_beat) - a
        if k < len(bounds) - 2:  # a middle piece: until its tail has rung out
            end = min(end, max(n.end for n in mine) + TAIL_S / spb)
        pieces.append((a, replace(part, notes=mine), end))
    return pieces


def _unpack(y: np.ndarray, spec: tuple, n: int | None) -> np.ndarray:
    """Put the passages of a :func:`skip_silences` render back at their places in a ``(2, n)`` array."""
    layout, spb, sr = spec
    total = n if n is not None else max(round((a + length) * spb * sr) for a, _, length in layout)
    out = np.zeros((2, total), np.float32)
    for orig, packed, length in layout:
        dst, src, m = round(orig * spb * sr), round(packed * spb * sr), round(length * spb * sr)
        m = max(0, min(m, total - dst, y.shape[1] - src))
        out[:, dst : dst + m] += y[:, src : src + m]
        f = min(m, round(_TAIL_FADE_S * sr))  # what is left of the tail fades out instead of stopping
        if f > 0:
            out[:, dst + m - f : dst + m] *= np.linspace(1.0, 0.0, f, dtype=np.float32)
    return out


class StemRenderer:
    """Render stems while the rest of a song is still being written.

    Each submitted stem (or each piece of a long one, :func:`split_part`) starts rendering at once in a
    thread (or, with ``workers=1``, in the calling thread when :meth:`collect` is called); the pieces
    of a stem are added back in order. :meth:`collect` waits for all of them and returns
    sample-aligned float32 ``(2, n)`` arrays of one length, in submission order. Use as a context manager
    so helper threads are always shut down.

    Parameters
    ----------
    sr : int
        Output sample rate.
    seconds : float, optional
        Exact length of every stem; default: the longest rendered stem.
    soundfont : str or Path, optional
        An ``.sf2`` file; default :func:`default_soundfont_path` (checked here, before any work).
    workers : int, optional
        Stems or pieces rendered at once (default: CPU cores); ``1`` renders in the calling thread.

    Examples
    --------
    >>> from core.music.midi import Note, Part
    >>> with StemRenderer(sr=44100, seconds=1.0, workers=1) as r:
    ...     r.submit_part("keys", Part("keys", notes=[Note(0, 1, 60, 90)]), bpm=120.0)
    ...     stems = r.collect()
    >>> stems["keys"].shape
    (2, 44100)
    """

    def __init__(
        self,
        *,
        sr: int = SAMPLE_RATE,
        seconds: float | None = None,
        soundfont: str | Path | None = None,
        workers: int | None = None,
    ) -> None:
        _check_args(sr, seconds)
        self.sr = int(sr)
        self.seconds = seconds
        self.sf_path = check_soundfont(soundfont)
        self.workers = int(workers) if workers is not None else (os.cpu_count() or 1)
        self._font = load_soundfont(self.sf_path)
        self._jobs: dict[str, list] = {}  # stem -> its pieces (futures, or jobs run on collect)
        self._stems: dict[str, _Assembly] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=self.workers) if self.workers > 1 else None

    def __enter__(self) -> StemRenderer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop the helper threads (waiting for stems already rendering)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _n(self) -> int | None:
        return round(float(self.seconds) * self.sr) if self.seconds is not None else None

    def _piece(self, name: str, k: int, data: bytes, layout, offset: int, last: bool) -> None:
        """Render piece ``k`` of stem ``name`` and add it to the stem (pieces are added in order)."""
        n = self._n()
        n = None if n is None or not last else max(0, n - offset)  # a middle piece keeps its own length
        y = synth.render(self._font, data, sr=self.sr, n=None if layout else n)
        if layout is not None:
            y = _unpack(y, layout, n)
        elif not last:  # a middle piece's tail fades out (where its layout does not already do it)
            f = min(y.shape[1], round(_TAIL_FADE_S * self.sr))
            y[:, y.shape[1] - f :] *= np.linspace(1.0, 0.0, f, dtype=np.float32)
        with self._lock:
            self._stems[name].add(k, offset, y, self._n())

    def _submit(self, name: str, pieces: list[tuple[bytes, tuple | None, int, bool]]) -> None:
        """Queue one stem's pieces ``(midi, layout, offset in samples, is last)``."""
        if name in self._jobs:
            raise InputError(f"Stem {name!r} was submitted twice.")
        self._stems[name] = _Assembly(len(pieces))
        jobs = [(name, k, *piece) for k, piece in enumerate(pieces)]
        self._jobs[name] = jobs if self._pool is None else [self._pool.submit(self._piece, *j) for j in jobs]

    def submit_midi(self, name: str, midi: bytes, *, ratio: float = 1.0, semitones: int = 0) -> None:
        """Start rendering one stem given as Standard MIDI File bytes.

        ``ratio`` plays it that many times faster (tempo events scaled: every note keeps its musical
        position exactly) and ``semitones`` transposes its pitched notes (drums stay), in one pass over
        the file (:func:`rewrite_midi`). With a known length (``seconds``), a single-tempo
        file is cut into pieces rendered at once and long silences are skipped, as in
        :meth:`submit_part`.

        Raises
        ------
        InputError
            For data that is not MIDI, a corrupt file or a ratio outside 0.1-10.
        """
        _check_midi(midi, name)
        if not 0.1 <= float(ratio) <= 10.0:
            raise InputError(f"Tempo ratio {ratio} is out of range: use 0.1-10.")
        scale, semitones = 1.0 / float(ratio), int(semitones)
        known = self.seconds is not None
        pieces = _rewrite(bytes(midi), time_scale=scale, transpose=semitones, pack=known, split=known)
        jobs = []
        for data, layout, start, last in pieces:
            if layout is not None:  # in seconds of the output
                layout = ([(a * scale, p * scale, m * scale) for a, p, m in layout], 1.0, self.sr)
            jobs.append((data, layout, round(start * scale * self.sr), last))
        self._submit(name, jobs)

    def submit_part(
        self, name: str, part: Part, *, bpm: float, key: Key | None = None, end_beat: float | None = None
    ) -> None:
        """Start rendering one stem given as a :class:`~core.music.midi.Part` (notes in beats).

        With a known length (``seconds``) a long part is cut into pieces rendered at once
        (:func:`split_part`), and long silences inside a piece (see :func:`skip_silences`) are not
        synthesised: the passages between them are rendered back to back and put in place afterwards.
        """
        spb = 60.0 / float(bpm)
        pieces = [(0.0, part, end_beat)]
        if self.seconds is not None:
            end = float(end_beat) if end_beat is not None else max((n.end for n in part.notes), default=0.0)
            pieces = split_part(part, bpm=bpm, end_beat=end)
        jobs = []
        for k, (start, piece, piece_end) in enumerate(pieces):
            last = k == len(pieces) - 1
            offset = round(start * spb * self.sr)
            layout = None
            if self.seconds is not None:
                packed = skip_silences(piece, bpm=bpm)
                if packed is not None:
                    piece, piece_end, layout = packed
            data = encode_midi([piece], bpm=bpm, key=key, end_beat=piece_end)
            jobs.append((data, None if layout is None else (layout, spb, self.sr), offset, last))
        self._submit(name, jobs)

    def completed(self):
        """Yield ``(name, audio)`` as each stem finishes (submission order with ``workers=1``).

        Needs ``seconds`` (so every stem's length is known before the others finish); each array is
        float32 ``(2, round(seconds * sr))`` and owned by the caller.
        """
        if self.seconds is None:
            raise InputError("StemRenderer.completed() needs the stems' length: pass seconds=.")
        from concurrent.futures import as_completed

        owner = {}
        for name, jobs in self._jobs.items():
            if self._pool is None:
                for job in jobs:
                    self._piece(*job)
                yield name, self._stems.pop(name).out
            else:
                owner.update((future, name) for future in jobs)
        left = {name: len(jobs) for name, jobs in self._jobs.items()}
        for future in as_completed(owner):
            future.result()
            name = owner[future]
            left[name] -= 1
            if left[name] == 0:
                yield name, self._stems.pop(name).out

    def collect(self) -> dict[str, np.ndarray]:
        """Wait for every submitted stem; return them aligned to one length, in submission order."""
        for jobs in self._jobs.values():
            for job in jobs:
                job.result() if self._pool is not None else self._piece(*job)
        arrays = {name: self._stems.pop(name).out for name in self._jobs}
        n = self._n()
        n = n if n is not None else max((a.shape[1] for a in arrays.values()), default=0)
        return {name: _fit(a, n) for name, a in arrays.items()}


class _Assembly:
    """One stem's pieces, added into its array in piece order (so the sum is the same whatever piece
    finishes first) as soon as all earlier pieces are in."""

    def __init__(self, count: int) -> None:
        self.count, self.next, self.waiting = count, 0, {}
        self.out: np.ndarray | None = None

    def add(self, k: int, offset: int, y: np.ndarray, n: int | None) -> None:
        self.waiting[k] = (offset, y)
        while self.next in self.waiting:
            offset, y = self.waiting.pop(self.next)
            if self.count == 1:
                self.out = y  # the whole stem: no copy
            else:
                if self.out is None:
                    self.out = np.zeros((2, n), np.float32)
                m = max(0, min(y.shape[1], n - offset))
                self.out[:, offset : offset + m] += y[:, :m]
            self.next += 1
