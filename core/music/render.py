"""Render MIDI to audio through a General MIDI soundfont with :mod:`midirenderer`.

``midirenderer`` synthesises Standard MIDI File bytes with SF2 bytes into 16-bit stereo WAV bytes at a
fixed 48 kHz (about 100-200x realtime per stem on one core; it holds the GIL).

**Rate conversion without resampling ("varispeed").** To get 44.1 kHz audio we do not resample the
48 kHz output (a polyphase resampler costs ~0.1 s per minute of stereo). Instead the MIDI is played
``48000/44100`` times faster (every tempo event scaled by ``44100/48000``) and ``+1.467`` semitones higher
(a pitch-bend event at time 0 on every channel); the 48 kHz samples, read as 44.1 kHz, then have exactly
the intended timing and pitch. What changes is only what is defined in absolute time or frequency inside
the synthesiser: envelopes and LFOs run ~9% slower and filter cutoffs sit ~9% lower (measured: band
levels within about 2 dB, overall level within 0.75 dB of resampled output). Files that use pitch bend
themselves, or rates whose shift would exceed the 2-semitone bend range, are rendered at 48 kHz and
resampled with :func:`scipy.signal.resample_poly` instead.

Several stems are rendered in parallel **processes**: a :class:`StemRenderer` starts one tiny helper
interpreter per core (``python -I -c ...`` importing only ``midirenderer``) as soon as it is created,
so their start-up overlaps the writing of the song, and sends them one stem after another through a
pipe; stems use every core. A stem longer than :data:`PIECE_S` is cut at note starts into pieces that
render at once (:func:`split_part`), so no core waits for one long stem at the end. Long silences
inside a part are not synthesised (:func:`skip_silences`). Rendering is deterministic: the same MIDI
and soundfont give bit-identical audio, in one process or several (the cuts depend only on the notes).

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
import contextlib
import io
import os
import queue
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from math import gcd
from pathlib import Path

import numpy as np

from core.audio.checks import check_sample_rate
from core.config import SAMPLE_RATE, get_settings
from core.errors import InputError, ModelError
from core.music.midi import Part, encode_midi
from core.music.theory import Key

#: The rate midirenderer synthesises at.
RENDER_RATE = 48000
_WORKER = (
    "import sys, midirenderer\n"
    "sf = open(sys.argv[1], 'rb').read()\n"
    "sys.stdout.buffer.write(midirenderer.render_wave_from(sf, sys.stdin.buffer.read()))\n"
)
#: A helper that renders one MIDI file after another: each request is an 8-byte little-endian length and
#: the MIDI bytes; each reply a status byte (0 ok, 1 error), an 8-byte length and the WAV (or message).
_LOOP_WORKER = (
    "import sys, midirenderer\n"
    "sf = open(sys.argv[1], 'rb').read()\n"
    "inp, out = sys.stdin.buffer, sys.stdout.buffer\n"
    "while True:\n"
    "    head = inp.read(8)\n"
    "    if len(head) < 8:\n"
    "        break\n"
    "    midi = inp.read(int.from_bytes(head, 'little'))\n"
    "    try:\n"
    "        data, status = midirenderer.render_wave_from(sf, midi), b'\\0'\n"
    "    except Exception as exc:\n"
    "        data, status = str(exc).encode(), b'\\1'\n"
    "    out.write(status + len(data).to_bytes(8, 'little'))\n"
    "    out.write(data)\n"
    "    out.flush()\n"
)


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


def varispeed_midi(midi: bytes, *, sr: int) -> bytes | None:
    """MIDI bytes that, rendered at :data:`RENDER_RATE` and read at ``sr``, sound as ``midi`` at ``sr``.

    Returns None when the trick does not apply (the file bends pitch itself or sets a bend range, or the
    needed shift is 2 semitones or more).
    """
    bend = _bend_for(int(sr))
    if bend is None:
        return None
    return rewrite_midi(midi, time_scale=float(sr) / RENDER_RATE, bend=bend)


def rewrite_midi(
    midi: bytes, *, time_scale: float = 1.0, transpose: int = 0, bend: int | None = None
) -> bytes | None:
    """One pass over a MIDI file: scale its tempo, transpose pitched notes, optionally add a pitch bend.

    Parameters
    ----------
    midi : bytes
        A Standard MIDI File (type 0 or 1).
    time_scale : float
        Every duration is multiplied by this (each ``set_tempo`` is scaled; ticks are kept, so the notes
        and controllers keep their musical positions exactly). ``0.5`` plays twice as fast.
    transpose : int
        Semitones added to every note outside the drum channel (10), clamped to 0-127.
    bend : int, optional
        A pitch-bend value set at time 0 on every channel used (the varispeed trick).

    Returns
    -------
    bytes or None
        The rewritten file; None when ``bend`` is asked for but the file bends pitch itself or sets a
        bend range (RPN), or is a type 2 file.

    Raises
    ------
    InputError
        For corrupt MIDI data.
    """
    pieces = _rewrite(midi, time_scale=time_scale, transpose=transpose, bend=bend)
    return None if pieces is None else pieces[0][0]


def _rewrite(
    midi: bytes,
    *,
    time_scale: float = 1.0,
    transpose: int = 0,
    bend: int | None = None,
    pack: bool = False,
    split: bool = False,
) -> list[tuple[bytes, list | None, float, bool]] | None:
    """:func:`rewrite_midi`, with ``split`` cut into pieces (:func:`_split_midi`) and with ``pack`` each
    piece's long silences cut out (:func:`_pack_silences`).

    Returns ``[(bytes, layout, start s, is last)]`` per piece (one piece without ``split`` or when there
    is nothing to cut; start and layout in the file's own seconds, before ``time_scale``), or None as
    :func:`rewrite_midi`.
    """
    import mido

    try:
        mf = mido.MidiFile(file=io.BytesIO(midi))
    except Exception as exc:  # mido raises many types for corrupt files
        raise InputError(f"Corrupt MIDI data: {exc}") from exc
    if mf.type == 2:
        return None if bend is not None else [(bytes(midi), None, 0.0, True)]
    channels: set[int] = set()
    has_tempo = False
    for track in mf.tracks:
        for msg in track:
            if bend is not None and (
                msg.type == "pitchwheel" or (msg.type == "control_change" and msg.control in (100, 101))
            ):
                return None
            if msg.type == "set_tempo":
                has_tempo = True
            elif hasattr(msg, "channel"):
                channels.add(msg.channel)
    pieces = (_split_midi(mf) if split else None) or [(mf, 0.0, True)]
    out = []
    for piece, start, last in pieces:
        layout = _pack_silences(piece) if pack else None
        out.append(
            (_transform(piece, time_scale, int(transpose), bend, channels, has_tempo), layout, start, last)
        )
    return out


def _transform(mf, time_scale: float, semis: int, bend: int | None, channels: set, has_tempo: bool) -> bytes:
    """Scale the tempo, transpose and bend a parsed MIDI file (changed in place); its bytes."""
    import mido

    for ti, track in enumerate(mf.tracks):
        new = mido.MidiTrack()
        if ti == 0 and not has_tempo and time_scale != 1.0:
            new.append(mido.MetaMessage("set_tempo", tempo=round(500000 * time_scale), time=0))
        if ti == 0 and bend is not None:
            new.extend(mido.Message("pitchwheel", channel=c, pitch=bend, time=0) for c in sorted(channels))
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


def _wav_to_float(wav: bytes, n: int | None = None) -> np.ndarray:
    """Decode midirenderer's 16-bit PCM WAV to float32 ``(2, n)`` (fast path, soundfile fallback).

    With ``n`` the result has exactly ``n`` samples (zero-padded or cut) and is written straight into
    its final array; mono is duplicated to stereo.
    """
    if wav[:4] == b"RIFF" and wav[8:12] == b"WAVE" and wav[12:16] == b"fmt ":
        fmt_len = int.from_bytes(wav[16:20], "little")
        tag, channels, rate = (int.from_bytes(wav[20:22], "little"), int.from_bytes(wav[22:24], "little"),
                               int.from_bytes(wav[24:28], "little"))  # fmt: skip
        bits = int.from_bytes(wav[34:36], "little")
        pos = 20 + fmt_len
        if (
            tag == 1
            and bits == 16
            and rate == RENDER_RATE
            and channels in (1, 2)
            and wav[pos : pos + 4] == b"data"
        ):
            size = int.from_bytes(wav[pos + 4 : pos + 8], "little")
            pcm = np.frombuffer(wav, dtype="<i2", count=min(size, len(wav) - pos - 8) // 2, offset=pos + 8)
            frames = pcm[: pcm.size - pcm.size % channels].reshape(-1, channels).T
            m = frames.shape[1] if n is None else min(n, frames.shape[1])
            out = np.zeros((2, frames.shape[1] if n is None else n), np.float32)
            np.multiply(frames[:, :m], np.float32(1.0 / 32768.0), out=out[:channels, :m])
            if channels == 1:
                out[1, :m] = out[0, :m]
            return out
    import soundfile as sf

    y, rate = sf.read(io.BytesIO(wav), dtype="float32", always_2d=True)
    out = np.ascontiguousarray(y.T)
    return _fit(out if rate == RENDER_RATE else _resample(out, src=rate, dst=RENDER_RATE), n)


def _resample(y: np.ndarray, *, src: int, dst: int) -> np.ndarray:
    if src == dst:
        return y
    from scipy.signal import resample_poly

    g = gcd(int(src), int(dst))
    return resample_poly(y, int(dst) // g, int(src) // g, axis=1).astype(np.float32, copy=False)


def _fit(y: np.ndarray, n: int | None) -> np.ndarray:
    if y.shape[0] == 1:
        y = np.repeat(y, 2, axis=0)
    if n is None:
        return y
    if y.shape[1] >= n:
        return np.ascontiguousarray(y[:, :n])
    return np.pad(y, ((0, 0), (0, n - y.shape[1])))


def _render_inprocess(midi: bytes, sf_path: Path) -> bytes:
    import midirenderer

    try:
        return midirenderer.render_wave_from(sf_path.read_bytes(), midi)
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"Rendering with soundfont {str(sf_path)!r} failed: {exc}") from exc


def _render_subprocess(midi: bytes, sf_path: Path) -> bytes:
    try:
        proc = subprocess.run(
            [sys.executable, "-I", "-c", _WORKER, str(sf_path)], input=midi, capture_output=True, check=False
        )
    except OSError:  # no way to start a helper process here: render in this process instead
        return _render_inprocess(midi, sf_path)
    if proc.returncode != 0:
        msg = proc.stderr.decode(errors="replace").strip().splitlines()
        raise ModelError(
            f"Rendering with soundfont {str(sf_path)!r} failed: {msg[-1] if msg else proc.returncode}"
        )
    return proc.stdout


class _Helpers:
    """Helper processes for one :class:`StemRenderer`, started when it is created.

    Their start-up (an interpreter, ``import midirenderer``, reading the soundfont: ~25 ms each) runs
    while the caller is still writing the song, and each then renders one stem after another, so a
    four-stem song starts two processes instead of four. A helper that dies (killed, out of memory) is
    replaced for the rest of the job by a one-shot process per stem (:func:`_render_subprocess`).
    """

    def __init__(self, n: int, sf_path: Path) -> None:
        self.sf_path = sf_path
        self._procs: list[subprocess.Popen] = []
        self._idle: queue.SimpleQueue = queue.SimpleQueue()
        for _ in range(n):
            try:
                proc = subprocess.Popen(
                    [sys.executable, "-I", "-c", _LOOP_WORKER, str(sf_path)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                )
            except OSError:  # no helper processes here: one-shot processes (or in-process) instead
                proc = None
            if proc is not None:
                self._procs.append(proc)
            self._idle.put(proc)

    def render(self, midi: bytes) -> bytes:
        proc = self._idle.get()
        if proc is None:
            self._idle.put(None)
            return _render_subprocess(midi, self.sf_path)
        try:
            proc.stdin.write(len(midi).to_bytes(8, "little"))
            proc.stdin.write(midi)
            proc.stdin.flush()
            head = proc.stdout.read(9)
            data = proc.stdout.read(int.from_bytes(head[1:], "little")) if len(head) == 9 else b""
            if len(head) < 9 or len(data) < int.from_bytes(head[1:], "little"):
                raise EOFError("the helper process stopped")
        except (OSError, ValueError, EOFError):
            proc.kill()
            proc.wait()
            self._idle.put(None)
            return _render_subprocess(midi, self.sf_path)
        self._idle.put(proc)
        if head[:1] != b"\0":
            raise ModelError(
                f"Rendering with soundfont {str(self.sf_path)!r} failed: {data.decode(errors='replace')}"
            )
        return data

    def close(self) -> None:
        """End the helpers (they exit when their input closes)."""
        for proc in self._procs:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        for proc in self._procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            with contextlib.suppress(OSError):
                proc.stdout.close()
        self._procs = []


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


def _bend_for(sr: int) -> int | None:
    """Pitch-bend value of the varispeed trick for output rate ``sr`` (None if out of bend range)."""
    semis = 12.0 * np.log2(RENDER_RATE / float(sr))
    return None if abs(semis) >= 1.99 else round(semis / 2.0 * 8192)


def _check_args(sr: int, seconds: float | None) -> None:
    check_sample_rate(sr, what="Sample rate")
    if seconds is not None and not 0 < float(seconds) <= 3600:
        raise InputError(f"Render length {seconds} s is out of range: use 0-3600 s.")


def _workers(stems: int, seconds: float | None, workers: int | None) -> int | None:
    """One stem short enough to render in one piece renders in this process (no helper start-up)."""
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
        Stems rendered at once in helper processes (default: the number of CPU cores). ``1`` renders in
        this process, one stem after another.

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

    Writes each part's varispeed MIDI directly (:func:`core.music.midi.encode_midi` with a scaled tempo
    and a pitch bend), so no MIDI has to be parsed and rewritten; the audio equals
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

    A lead that plays only in the verses and choruses is silent for a third of a song; synthesising
    that silence costs as much as the notes (the synthesiser's reverb and chorus run on every sample).
    Passages separated by at least :data:`MIN_SILENCE_S` (and the leading silence) are moved back to
    back, each keeping :data:`TAIL_S` of audio for its release and reverb tail (its last second faded
    out); after rendering, :func:`_unpack` puts each passage back at its place. The synthesiser starts
    notes on 64-sample blocks, so a moved note can land up to 1.3 ms away from where a full render puts
    it (the 10 ms envelopes of full and skipped renders of generated songs correlate at 0.99-1.0).

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
    second) :data:`TAIL_S` after a piece's last note, a note starts on the exact sample instead of the
    synthesiser's 64-sample block, and an open hi-hat sounding at a cut is not choked by a closed one
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
    helper process (or, with ``workers=1``, in this process when :meth:`collect` is called); the pieces
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
        Stems or pieces rendered at once (default: CPU cores); ``1`` renders in this process.

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
        self._bend = _bend_for(self.sr)
        self._jobs: dict[str, list] = {}  # stem -> its pieces (futures, or jobs run on collect)
        self._stems: dict[str, _Assembly] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=self.workers) if self.workers > 1 else None
        self._helpers = _Helpers(self.workers, self.sf_path) if self.workers > 1 else None

    def __enter__(self) -> StemRenderer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop the helper threads (waiting for stems already rendering)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._helpers is not None:
            self._helpers.close()
            self._helpers = None

    def _n(self) -> int | None:
        return round(float(self.seconds) * self.sr) if self.seconds is not None else None

    def _piece(self, name: str, k: int, data: bytes, resample: bool, layout, offset: int, last: bool) -> None:
        """Render piece ``k`` of stem ``name`` and add it to the stem (pieces are added in order)."""
        helpers = self._helpers
        render = (lambda midi, _path: helpers.render(midi)) if helpers is not None else _render_inprocess
        n = self._n()
        n = None if n is None or not last else max(0, n - offset)  # a middle piece keeps its own length
        if resample:
            y = _resample(_wav_to_float(render(data, self.sf_path)), src=RENDER_RATE, dst=self.sr)
            y = y if layout else _fit(y, n)
        else:
            y = _wav_to_float(render(data, self.sf_path), None if layout else n)  # at its final length
        if layout is not None:
            y = _unpack(y, layout, n)
        elif not last:  # a middle piece's tail fades out (where its layout does not already do it)
            f = min(y.shape[1], round(_TAIL_FADE_S * self.sr))
            y[:, y.shape[1] - f :] *= np.linspace(1.0, 0.0, f, dtype=np.float32)
        with self._lock:
            self._stems[name].add(k, offset, y, self._n())

    def _submit(self, name: str, pieces: list[tuple[bytes, bool, tuple | None, int, bool]]) -> None:
        """Queue one stem's pieces ``(midi, resample, layout, offset in samples, is last)``."""
        if name in self._jobs:
            raise InputError(f"Stem {name!r} was submitted twice.")
        self._stems[name] = _Assembly(len(pieces))
        jobs = [(name, k, *piece) for k, piece in enumerate(pieces)]
        self._jobs[name] = jobs if self._pool is None else [self._pool.submit(self._piece, *j) for j in jobs]

    def submit_midi(self, name: str, midi: bytes, *, ratio: float = 1.0, semitones: int = 0) -> None:
        """Start rendering one stem given as Standard MIDI File bytes.

        ``ratio`` plays it that many times faster (tempo events scaled: every note keeps its musical
        position exactly) and ``semitones`` transposes its pitched notes (drums stay), in the same single
        pass over the file as the varispeed rewrite. With a known length (``seconds``), a single-tempo
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
        pieces, resample = None, False
        if self._bend is not None:
            fast = scale * self.sr / RENDER_RATE
            pieces = _rewrite(
                bytes(midi), time_scale=fast, transpose=semitones, bend=self._bend, pack=known, split=known
            )
        if pieces is None:
            resample = True
            pieces = _rewrite(bytes(midi), time_scale=scale, transpose=semitones, pack=known, split=known)
        jobs = []
        for data, layout, start, last in pieces:
            if layout is not None:  # in seconds of the output
                layout = ([(a * scale, p * scale, m * scale) for a, p, m in layout], 1.0, self.sr)
            jobs.append((data, resample, layout, round(start * scale * self.sr), last))
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
            if self._bend is not None and self.seconds is not None:
                packed = skip_silences(piece, bpm=bpm)
                if packed is not None:
                    piece, piece_end, layout = packed
            if self._bend is None:
                data = encode_midi([piece], bpm=bpm, key=key, end_beat=piece_end)
                jobs.append((data, True, None, offset, last))
                continue
            data = encode_midi(
                [piece],
                bpm=bpm,
                key=key,
                end_beat=piece_end,
                tempo_scale=self.sr / RENDER_RATE,
                pitch_bend=self._bend,
            )
            jobs.append((data, False, None if layout is None else (layout, spb, self.sr), offset, last))
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
