"""A SoundFont 2 synthesiser compiled with numba: Standard MIDI File bytes to float32 stereo audio.

It plays a :class:`~core.music.sf2.SoundFont` the way the ``rustysynth`` synthesiser (used through
``midirenderer`` before) does, with the same models and constants: linear-interpolated sample playback
with loops, a delay-attack-hold-decay-sustain-release volume envelope (exponential decay and release)
and modulation envelope, vibrato and modulation LFOs (triangle), a resonant two-pole low-pass filter
whose cutoff follows the modulation envelope and LFO, equal-power pan, a 0.5 master gain, and a
Freeverb reverb and a modulated-delay chorus fed by each voice's send (CC91, default 40; CC93; plus
the zone's own send). Parameters update every 64 samples and gains ramp across each block.

What differs, on purpose:

* It renders at any output rate (no 48 kHz then resampling), notes start on their exact sample, and a
  voice is rendered whole, one after another, instead of 64 voices side by side. So there is no
  polyphony limit (no voice stealing), and an exclusive class (an open hi-hat choked by a closed one)
  cuts the earlier voice on the exact sample the later one starts.
* The reverb and chorus run only when some voice sends to them, and only as long as the audio lasts.
* The compiled functions release the GIL, so stems render in threads, on every core, in one process.

SoundFont modulators are not read (as in rustysynth); see :mod:`core.music.sf2`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from core.errors import InputError
from core.music.sf2 import COL, SoundFont

#: Samples per parameter update.
BLOCK = 64
#: Voices quieter than this (linear) are not played or end.
NON_AUDIBLE = 1e-3
MASTER_GAIN = 0.5
_LOG_NON_AUDIBLE = math.log(NON_AUDIBLE)

# Per-voice parameter columns.
(_ON, _OFF, _KILL, _ROW, _START, _END, _LSTART, _LEND, _LOOP, _KEY, _ROOT, _SCALE, _TUNE, _RATE, _GAIN,
 _FC, _QDB, _VIBP, _MLFOP, _MENVP, _MLFOFC, _MENVFC, _MLFOVOL, _PAN, _REV, _CHO,
 _VDELAY, _VATT, _VHOLD, _VDECAY, _VSUS, _VREL, _MDELAY, _MATT, _MHOLD, _MDECAY, _MSUS, _MREL,
 _VIBDELAY, _VIBHZ, _MLFODELAY, _MLFOHZ, _NP) = range(43)  # fmt: skip
# Channel control columns (one row per channel per block).
_C_GAIN, _C_PAN, _C_PITCH, _C_MOD, _C_REV, _C_CHO, _NC = range(7)


@njit(cache=True, nogil=True)
def _lfo(t: float, delay: float, hz: float) -> float:
    if hz <= 1e-3 or t < delay:
        return 0.0
    period = 1.0 / hz
    phase = ((t - delay) % period) / period
    if phase < 0.25:
        return 4.0 * phase
    if phase < 0.75:
        return 4.0 * (0.5 - phase)
    return 4.0 * (phase - 1.0)


@njit(cache=True, nogil=True)
def _rise(t: float, delay: float, attack: float, hold_end: float) -> float:
    """An envelope's delay, linear attack and hold stages at time ``t``; -1 once the hold has ended."""
    if t < delay:
        return 0.0
    if t < delay + attack:
        return (t - delay) / attack
    return 1.0 if t < hold_end else -1.0


@njit(cache=True, nogil=True)
def _exp_cut(x: float) -> float:
    return 0.0 if x < _LOG_NON_AUDIBLE else math.exp(x)


@njit(cache=True, nogil=True)
def _lowpass(cutoff: float, resonance: float, sr: float):
    """Biquad low-pass coefficients ``(active, b0, b1, b2, a1, a2)`` normalised by a0."""
    if cutoff >= 0.499 * sr:
        return False, 1.0, 0.0, 0.0, 0.0, 0.0
    q = resonance - (1.0 - 1.0 / math.sqrt(2.0)) / (1.0 + 6.0 * (resonance - 1.0))
    w = 2.0 * math.pi * cutoff / sr
    cosw = math.cos(w)
    alpha = math.sin(w) / (2.0 * q)
    a0 = 1.0 + alpha
    return (
        True,
        (1.0 - cosw) / 2.0 / a0,
        (1.0 - cosw) / a0,
        (1.0 - cosw) / 2.0 / a0,
        -2.0 * cosw / a0,
        (1.0 - alpha) / a0,
    )


@njit(cache=True, nogil=True, fastmath={"contract"})
def _render_voices(data, vp, ctrl, sr, out, rev, cho):
    """Add every voice of ``vp`` into ``out`` (2, n) and its sends into ``rev`` (n) and ``cho`` (2, n)."""
    n = out.shape[1]
    nblocks = ctrl.shape[1]
    buf = np.empty(BLOCK, np.float64)
    ramp = np.empty(BLOCK, np.float64)
    inv_block = 1.0 / BLOCK
    min_len = sr // 500
    used_rev = False
    used_cho = False
    for v in range(vp.shape[0]):
        p = vp[v]
        on = int(p[_ON])
        off = p[_OFF]
        kill = min(float(n), p[_KILL])
        row = int(p[_ROW])
        end, lstart, lend = p[_END], p[_LSTART], p[_LEND]
        looping = (p[_LOOP] == 1.0 or p[_LOOP] == 3.0) and lend - lstart >= 2.0
        llen = lend - lstart
        pos = p[_START]
        # envelopes
        v_decay_start = p[_VDELAY] + p[_VATT] + p[_VHOLD]
        m_decay_start = p[_MDELAY] + p[_MATT] + p[_MHOLD]
        m_decay_end = m_decay_start + p[_MDECAY]
        m_rel_end = p[_MREL]
        released = False
        rel_t = 0.0
        v_rel_level = 0.0
        m_rel_level = 0.0
        vol = 0.0
        menv = 0.0
        dynamic_fc = p[_MLFOFC] != 0.0 or p[_MENVFC] != 0.0
        resonance = 10.0 ** (p[_QDB] / 20.0)
        cutoff = p[_FC]
        smoothed = cutoff
        active, b0, b1, b2, a1, a2 = _lowpass(cutoff, resonance, sr)
        x1 = x2 = y1 = y2 = 0.0
        # values computed per block only when their inputs change (transcendentals dominate otherwise)
        uses_mlfo = p[_MLFOP] != 0.0 or p[_MLFOFC] != 0.0 or p[_MLFOVOL] > 0.05
        last_pitch = -1e9
        ratio = 0.0
        last_fc = cutoff
        last_pan = -1e9
        pan_l = pan_r = 0.0
        prev_l = prev_r = prev_rv = prev_cl = prev_cr = 0.0
        length = 0
        s0 = on
        while s0 < kill:
            if not released and s0 >= off and length >= min_len:
                released = True
                rel_t = length / sr
                v_rel_level = vol
                m_rel_level = menv
                m_rel_end = p[_MREL] + rel_t
                if p[_LOOP] == 3.0:
                    looping = False
            t = (length + BLOCK) / sr
            if released:
                vol = v_rel_level * _exp_cut(-9.226 / p[_VREL] * (t - rel_t))
                if vol <= NON_AUDIBLE:
                    break
                menv = max(m_rel_level / p[_MREL] * (m_rel_end - t), 0.0) if p[_MREL] > 0 else 0.0
            else:
                vol = _rise(t, p[_VDELAY], p[_VATT], v_decay_start)
                if vol < 0.0:  # exponential decay towards the sustain level
                    vol = max(_exp_cut(-9.226 / p[_VDECAY] * (t - v_decay_start)), p[_VSUS])
                    if vol <= NON_AUDIBLE:
                        break
                menv = _rise(t, p[_MDELAY], p[_MATT], m_decay_start)
                if menv < 0.0:  # linear decay towards the sustain level
                    menv = max((m_decay_end - t) / p[_MDECAY], p[_MSUS])
            c = ctrl[row, min(s0 // BLOCK, nblocks - 1)]
            vib_depth = 0.01 * c[_C_MOD] + p[_VIBP]
            vib = _lfo(t, p[_VIBDELAY], p[_VIBHZ]) if vib_depth != 0.0 else 0.0
            mlfo = _lfo(t, p[_MLFODELAY], p[_MLFOHZ]) if uses_mlfo else 0.0
            pitch = p[_KEY] + vib_depth * vib + p[_MLFOP] * mlfo + p[_MENVP] * menv + c[_C_PITCH]
            if pitch != last_pitch:
                last_pitch = pitch
                ratio = p[_RATE] * 2.0 ** ((p[_SCALE] * (pitch - p[_ROOT]) + p[_TUNE]) / 12.0)
            # filter coefficients
            if dynamic_fc:
                cents = p[_MLFOFC] * mlfo + p[_MENVFC] * menv
                target = cutoff * 2.0 ** (cents / 1200.0)
                smoothed = min(max(target, 0.5 * smoothed), 2.0 * smoothed)
                if smoothed != last_fc:
                    last_fc = smoothed
                    active, b0, b1, b2, a1, a2 = _lowpass(smoothed, resonance, sr)
            # gains
            g = p[_GAIN] * c[_C_GAIN] * vol
            if p[_MLFOVOL] > 0.05:
                g *= 10.0 ** (p[_MLFOVOL] * mlfo / 20.0)
            if c[_C_PAN] != last_pan:
                last_pan = c[_C_PAN]
                angle = (math.pi / 200.0) * (c[_C_PAN] + p[_PAN] + 50.0)
                angle = min(max(angle, 0.0), 0.5 * math.pi)
                pan_l, pan_r = math.cos(angle), math.sin(angle)
            gl, gr = g * pan_l, g * pan_r
            rs = min(max(c[_C_REV] + p[_REV], 0.0), 1.0)
            cs = min(max(c[_C_CHO] + p[_CHO], 0.0), 1.0)
            cur_l, cur_r = MASTER_GAIN * gl, MASTER_GAIN * gr
            cur_rv = 0.015 * rs * (gl + gr)
            cur_cl, cur_cr = cs * gl, cs * gr
            if length == 0:
                prev_l, prev_r, prev_rv, prev_cl, prev_cr = cur_l, cur_r, cur_rv, cur_cl, cur_cr
            dl = (cur_l - prev_l) * inv_block
            dr = (cur_r - prev_r) * inv_block
            drv = (cur_rv - prev_rv) * inv_block
            chorus = cur_cl + cur_cr > 0.0 or prev_cl + prev_cr > 0.0
            used_rev = used_rev or cur_rv > 0.0 or prev_rv > 0.0
            used_cho = used_cho or chorus
            # oscillator and filter into buf, then the mix
            m = min(BLOCK, int(kill) - s0)
            filled = m
            if looping:
                for i in range(m):
                    if pos >= lend:
                        pos -= llen
                    i1 = int(pos)
                    i2 = i1 + 1 if i1 + 1 < lend else i1 + 1 - int(llen)
                    x = data[i1]
                    buf[i] = x + (pos - i1) * (data[i2] - x)
                    pos += ratio
            else:
                for i in range(m):
                    i1 = int(pos)
                    if i1 >= end:
                        filled = i
                        break
                    x = data[i1]
                    buf[i] = x + (pos - i1) * (data[i1 + 1] - x)
                    pos += ratio
            if active:
                for i in range(filled):
                    x = buf[i]
                    y = (b0 * x + b1 * x1 + b2 * x2 - a2 * y2) - a1 * y1  # y1 last: shortest chain
                    x2 = x1
                    x1 = x
                    y2 = y1
                    y1 = y
                    buf[i] = y
            elif filled >= 2:
                x2 = y2 = buf[filled - 2]
                x1 = y1 = buf[filled - 1]
            for i in range(filled):
                ramp[i] = i
            out0 = out[0, s0 : s0 + filled]
            out1 = out[1, s0 : s0 + filled]
            rv = rev[s0 : s0 + filled]
            for i in range(filled):
                y = buf[i]
                out0[i] += y * (prev_l + dl * ramp[i])
                out1[i] += y * (prev_r + dr * ramp[i])
                rv[i] += y * (prev_rv + drv * ramp[i])
            if chorus:
                dcl = (cur_cl - prev_cl) * inv_block
                dcr = (cur_cr - prev_cr) * inv_block
                cho0 = cho[0, s0 : s0 + filled]
                cho1 = cho[1, s0 : s0 + filled]
                for i in range(filled):
                    cho0[i] += buf[i] * (prev_cl + dcl * ramp[i])
                    cho1[i] += buf[i] * (prev_cr + dcr * ramp[i])
            prev_l, prev_r, prev_rv, prev_cl, prev_cr = cur_l, cur_r, cur_rv, cur_cl, cur_cr
            if filled < BLOCK:
                break  # the sample ended, or the voice was cut or reached the end of the output
            length += BLOCK
            s0 += BLOCK
    return used_rev, used_cho


_COMBS = np.array([1116, 1188, 1277, 1356, 1422, 1491, 1557, 1617], np.float64)
_ALLPASSES = np.array([556, 441, 341, 225], np.float64)
_SPREAD = 23.0


@njit(cache=True, nogil=True)
def _reverb(rev, out, sr: int) -> None:
    """Freeverb (room 0.5, damping 0.5, width 1) of the mono send ``rev``, added into ``out``.

    Eight parallel damped combs and four series all-passes per channel (the right channel's delays 23
    samples longer at 44.1 kHz), as in rustysynth; all sixteen combs run in one pass over the signal.
    """
    n = rev.shape[0]
    scale = sr / 44100.0
    csize = np.empty(16, np.int64)
    asize = np.empty(8, np.int64)
    for ch in range(2):
        for j in range(8):
            csize[8 * ch + j] = int(scale * (_COMBS[j] + _SPREAD * ch) + 0.5)
        for j in range(4):
            asize[4 * ch + j] = int(scale * (_ALLPASSES[j] + _SPREAD * ch) + 0.5)
    cbuf = np.zeros((16, csize.max()), np.float32)
    abuf = np.zeros((8, asize.max()), np.float32)
    cidx = np.zeros(16, np.int64)
    aidx = np.zeros(8, np.int64)
    store = np.zeros(16, np.float32)
    feedback, damp = np.float32(0.84), np.float32(0.2)
    undamp = np.float32(1.0) - damp
    tiny = np.float32(1e-6)
    gain = np.float32(MASTER_GAIN)
    for t in range(n):
        x = rev[t]
        for ch in range(2):
            acc = np.float32(0.0)
            for j in range(8 * ch, 8 * ch + 8):
                k = cidx[j]
                y = cbuf[j, k]
                if abs(y) < tiny:
                    y = np.float32(0.0)
                s = y * undamp + store[j] * damp
                if abs(s) < tiny:
                    s = np.float32(0.0)
                store[j] = s
                cbuf[j, k] = x + s * feedback
                acc += y
                k += 1
                cidx[j] = 0 if k == csize[j] else k
            for j in range(4 * ch, 4 * ch + 4):
                k = aidx[j]
                b = abuf[j, k]
                if abs(b) < tiny:
                    b = np.float32(0.0)
                abuf[j, k] = acc + b * np.float32(0.5)
                acc = b - acc
                k += 1
                aidx[j] = 0 if k == asize[j] else k
            out[ch, t] += gain * acc


@njit(cache=True, nogil=True)
def _chorus(cho, out, sr: int) -> None:
    """A 0.4 Hz modulated delay (2 ms +- 1.9 ms, the right channel a quarter period later)."""
    delay, depth, hz = 0.002, 0.0019, 0.4
    size = int(sr * (delay + depth)) + 2
    table_len = int(sr / hz + 0.5)
    n = cho.shape[1]
    for ch in range(2):
        buf = np.zeros(size, np.float32)
        k = 0
        j = 0 if ch == 0 else table_len // 4
        for t in range(n):
            d = float(np.float32(sr * (delay + depth * math.sin(2.0 * math.pi * j / table_len))))
            position = k - d
            if position < 0.0:
                position += size
            i1 = int(position)
            i2 = i1 + 1
            if i2 == size:
                i2 = 0
            x1 = buf[i1]
            out[ch, t] += MASTER_GAIN * (x1 + (position - i1) * (buf[i2] - x1))
            j += 1
            if j == table_len:
                j = 0
            buf[k] = cho[ch, t]
            k += 1
            if k == size:
                k = 0


def _varlen(data: bytes, pos: int) -> tuple[int, int]:
    """A MIDI variable-length quantity at ``pos``: its value and the position after it."""
    value = 0
    while True:
        b = data[pos]
        pos += 1
        value = (value << 7) | (b & 0x7F)
        if b < 0x80:
            return value, pos


def _track_events(data: bytes, pos: int, end: int, k: int, out: list) -> None:
    """Append ``(tick, track, order, status, data1, data2)`` for the channel and tempo events of one track
    chunk (tempo events have status 0x51 and the microseconds per beat in ``data1``)."""
    tick = 0
    running = 0
    order = 0
    while pos < end:
        delta, pos = _varlen(data, pos)
        tick += delta
        status = data[pos]
        if status < 0x80:  # running status
            status = running
        else:
            pos += 1
        if status == 0xFF:
            kind = data[pos]
            pos += 1
            length, pos = _varlen(data, pos)
            if kind == 0x51 and length == 3:
                out.append((tick, k, order, 0x51, int.from_bytes(data[pos : pos + 3], "big"), 0))
            elif kind == 0x2F:
                out.append((tick, k, order, 0x2F, 0, 0))
            pos += length
            continue
        if status in (0xF0, 0xF7):
            length, pos = _varlen(data, pos)
            pos += length
            continue
        running = status
        if status & 0xF0 in (0xC0, 0xD0):
            out.append((tick, k, order, status, data[pos], 0))
            pos += 1
        else:
            out.append((tick, k, order, status, data[pos], data[pos + 1]))
            pos += 2
        order += 1


def _events(midi: bytes, time_scale: float) -> tuple[list[tuple[float, int, int, int, int]], float]:
    """Channel events ``(seconds, status, channel, data1, data2)`` in playing order, and the end time.

    Reads format 0 and 1 files (tracks merged by time; at one tick, earlier tracks first).

    Raises
    ------
    InputError
        For bytes that are not a readable Standard MIDI File.
    """
    data = bytes(midi)
    if data[:4] != b"MThd" or len(data) < 14:
        raise InputError("Not a MIDI file: the data does not start with an 'MThd' header.")
    division = int.from_bytes(data[12:14], "big")
    if division & 0x8000 or division == 0:
        raise InputError("MIDI files timed in SMPTE frames are not supported: use ticks per beat.")
    raw: list[tuple[int, int, int, int, int, int]] = []
    pos = 8 + int.from_bytes(data[4:8], "big")
    k = 0
    try:
        while pos + 8 <= len(data):
            size = int.from_bytes(data[pos + 4 : pos + 8], "big")
            if data[pos : pos + 4] == b"MTrk":
                _track_events(data, pos + 8, min(len(data), pos + 8 + size), k, raw)
                k += 1
            pos += 8 + size
    except IndexError as exc:
        raise InputError("Corrupt MIDI file: a track ends in the middle of an event.") from exc
    raw.sort()
    scale = float(time_scale) / (1e6 * division)
    tempo = 500000
    last_tick = 0
    now = 0.0
    out = []
    for tick, _, _, status, a, b in raw:
        now += (tick - last_tick) * tempo * scale
        last_tick = tick
        if status == 0x51:
            tempo = max(1, a)
            continue
        if status == 0x2F:
            continue
        kind, ch = status & 0xF0, status & 0x0F
        if kind == 0x90 and b == 0:
            kind = 0x80
        if kind == 0xE0:
            out.append((now, 0xE0, ch, ((b << 7) | a) - 8192, 0))
        elif kind in (0x80, 0x90, 0xB0, 0xC0):
            out.append((now, kind, ch, a, b))
    return out, now


class _Channel:
    """MIDI channel state (the General MIDI defaults rustysynth starts with)."""

    def __init__(self, drum: bool) -> None:
        self.drum = drum
        self.bank = 128 if drum else 0
        self.program = 0
        self.volume, self.expression, self.pan = 100 << 7, 127 << 7, 64 << 7
        self.mod, self.reverb, self.chorus = 0, 40, 0
        self.bend, self.bend_range = 0.0, 2.0
        self.rpn, self.coarse, self.fine = -1, 0, 8192
        self.hold = False

    def control(self) -> tuple[float, ...]:
        ve = (self.volume / 16383.0) * (self.expression / 16383.0)
        tune = self.coarse + (self.fine - 8192) / 8192.0
        return (ve * ve, 100.0 / 16383.0 * self.pan - 50.0, tune + self.bend_range * self.bend,
                50.0 / 16383.0 * self.mod, self.reverb / 127.0, self.chorus / 127.0)  # fmt: skip

    def cc(self, number: int, value: int) -> None:
        if number == 0:
            self.bank = value + (128 if self.drum else 0)
        elif number in (1, 7, 10, 11):
            name = {1: "mod", 7: "volume", 10: "pan", 11: "expression"}[number]
            setattr(self, name, (getattr(self, name) & 0x7F) | (value << 7))
        elif number in (33, 39, 42, 43):
            name = {33: "mod", 39: "volume", 42: "pan", 43: "expression"}[number]
            setattr(self, name, (getattr(self, name) & 0x3F80) | value)
        elif number == 64:
            self.hold = value >= 64
        elif number == 91:
            self.reverb = value
        elif number == 93:
            self.chorus = value
        elif number == 101:
            self.rpn = (self.rpn & 0x7F if self.rpn >= 0 else 0) | (value << 7)
        elif number == 100:
            self.rpn = ((self.rpn & 0x3F80) if self.rpn >= 0 else 0) | value
        elif number in (98, 99):
            self.rpn = -2
        elif number == 6:
            if self.rpn == 0:
                self.bend_range = value + (self.bend_range % 1.0)
            elif self.rpn == 1:
                self.fine = (self.fine & 0x7F) | (value << 7)
            elif self.rpn == 2:
                self.coarse = value - 64
        elif number == 38:
            if self.rpn == 0:
                self.bend_range = int(self.bend_range) + 0.01 * value
            elif self.rpn == 1:
                self.fine = (self.fine & 0x3F80) | value
        elif number == 121:
            self.mod, self.expression, self.hold, self.rpn, self.bend = 0, 127 << 7, False, -1, 0.0


def render(
    font: SoundFont,
    midi: bytes,
    *,
    sr: int,
    n: int | None = None,
    time_scale: float = 1.0,
    transpose: int = 0,
) -> np.ndarray:
    """Render Standard MIDI File bytes to float32 ``(2, samples)`` audio.

    Parameters
    ----------
    font : SoundFont
        From :func:`core.music.sf2.load_soundfont`.
    midi : bytes
        A Standard MIDI File (format 0 or 1; channel 10 is percussion).
    sr : int
        Output sample rate.
    n : int, optional
        Exact length in samples; default: until the file's last event.
    time_scale : float
        Multiplies every time (2 = half speed; notes keep their musical positions).
    transpose : int
        Semitones added to every note outside channel 10.

    Raises
    ------
    InputError
        For bytes that are not a readable MIDI file.
    """
    events, end = _events(midi, float(time_scale))
    total = int(n) if n is not None else math.ceil(end * sr)
    out = np.zeros((2, max(total, 0)), np.float32)
    if total <= 0:
        return out
    nblocks = total // BLOCK + 1
    channels = [_Channel(c == 9) for c in range(16)]
    rows: dict[int, int] = {}
    ctrl_points: list[list[tuple[int, tuple[float, ...]]]] = []
    sounding: dict[tuple[int, int], list[int]] = {}
    pedal_held: dict[int, list[int]] = {}
    notes: list[list] = []  # [on sample, off sample, row, key, velocity, bank, program, drum]
    for t, status, ch, a, b in events:
        chan = channels[ch]
        s = round(t * sr)
        if status == 0x90:
            if ch not in rows:
                rows[ch] = len(ctrl_points)
                ctrl_points.append([(0, chan.control())])
            key = a if chan.drum else a + int(transpose)
            if 0 <= key <= 127:
                sounding.setdefault((ch, a), []).append(len(notes))
                notes.append([s, math.inf, rows[ch], key, b, chan.bank, chan.program, chan.drum])
            continue
        if status == 0x80:
            for i in sounding.pop((ch, a), []):
                if chan.hold:
                    pedal_held.setdefault(ch, []).append(i)
                else:
                    notes[i][1] = s
            continue
        if status == 0xC0:
            chan.program = a
            continue
        if status == 0xE0:
            chan.bend = a / 8192.0
        elif status == 0xB0:
            was_held = chan.hold
            chan.cc(a, b)
            if was_held and not chan.hold:  # pedal up: held notes release now
                for i in pedal_held.pop(ch, []):
                    notes[i][1] = s
            if a in (120, 123):  # all sound / notes off
                for (c2, k2), idx in list(sounding.items()):
                    if c2 == ch:
                        for i in idx:
                            notes[i][1] = s
                        del sounding[(c2, k2)]
        if ch in rows:
            ctrl_points[rows[ch]].append((s // BLOCK, chan.control()))
    if not notes:
        return out
    ctrl = np.empty((len(ctrl_points), nblocks, _NC), np.float64)
    for r, points in enumerate(ctrl_points):
        for k, (blk, values) in enumerate(points):
            stop = points[k + 1][0] if k + 1 < len(points) else nblocks
            if blk < nblocks:
                ctrl[r, blk:stop] = values
    vp = _voices(font, notes, sr)
    rev = np.zeros(total, np.float32)
    # the chorus send buffer only when a voice can send to it (most stems never do: 63 MB saved for 3 min)
    sends = bool(vp.size) and (vp[:, _CHO].max() > 0.0 or ctrl[..., _C_CHO].max() > 0.0)
    cho = np.zeros((2, total if sends else 0), np.float32)
    used_rev, used_cho = _render_voices(font.samples, vp, ctrl, sr, out, rev, cho)
    if used_rev:
        _reverb(rev, out, sr)
    if used_cho:
        _chorus(cho, out, sr)
    return out


def _voices(font: SoundFont, notes: list[list], sr: int) -> np.ndarray:
    """One parameter row per (note, matching region), sorted by start."""
    R = font.regions
    picks: list[tuple[int, int]] = []
    for i, (_, _, _, key, vel, bank, program, _) in enumerate(notes):
        rows = font.preset_regions(bank, program)
        sub = R[rows]
        ok = (
            (sub[:, COL["key_lo"]] <= key)
            & (key <= sub[:, COL["key_hi"]])
            & (sub[:, COL["vel_lo"]] <= vel)
            & (vel <= sub[:, COL["vel_hi"]])
        )
        picks.extend((i, int(r)) for r in rows[ok])
    if not picks:
        return np.zeros((0, _NP))
    note_idx = np.fromiter((i for i, _ in picks), np.int64, len(picks))
    reg = R[np.fromiter((r for _, r in picks), np.int64, len(picks))]
    N = np.asarray([nt[:5] for nt in notes], np.float64)[note_idx]
    key, vel = N[:, 3], N[:, 4]
    vp = np.zeros((len(picks), _NP))
    vp[:, _ON], vp[:, _OFF], vp[:, _ROW], vp[:, _KEY] = N[:, 0], N[:, 1], N[:, 2], key
    vp[:, _KILL] = np.inf
    for dst, src in ((_START, "start"), (_END, "end"), (_LSTART, "loop_start"), (_LEND, "loop_end"),
                     (_LOOP, "loop_mode"), (_ROOT, "root_key"), (_TUNE, "tune"), (_QDB, "filter_q_db"),
                     (_VIBP, "vib_lfo_to_pitch"), (_MLFOP, "mod_lfo_to_pitch"), (_MENVP, "mod_env_to_pitch"),
                     (_MLFOFC, "mod_lfo_to_fc"), (_MENVFC, "mod_env_to_fc"), (_MLFOVOL, "mod_lfo_to_volume"),
                     (_REV, "reverb"), (_CHO, "chorus"), (_VDELAY, "vol_env_delay"),
                     (_VATT, "vol_env_attack"), (_MDELAY, "mod_env_delay"), (_MREL, "mod_env_release"),
                     (_VIBDELAY, "vib_lfo_delay"), (_VIBHZ, "vib_lfo_hz"), (_MLFODELAY, "mod_lfo_delay"),
                     (_MLFOHZ, "mod_lfo_hz")):  # fmt: skip
        vp[:, dst] = reg[:, COL[src]]
    for col in (_VIBP, _MLFOP, _MENVP):
        vp[:, col] *= 0.01
    vp[:, _SCALE] = 0.01 * reg[:, COL["scale_tuning"]]
    vp[:, _RATE] = reg[:, COL["sample_rate"]] / float(sr)
    vp[:, _FC] = 8.176 * 2.0 ** (reg[:, COL["filter_fc_cents"]] / 1200.0)
    vp[:, _PAN] = np.clip(reg[:, COL["pan"]], -50.0, 50.0)
    # 40 log10(velocity / 127) dB, less 40 % of the zone's attenuation and half its filter resonance
    db = 40.0 * np.log10(vel / 127.0) - 0.4 * reg[:, COL["attenuation_db"]] - 0.5 * reg[:, COL["filter_q_db"]]
    vp[:, _GAIN] = 10.0 ** (db / 20.0)

    def by_key(col: str, base: str) -> np.ndarray:
        return reg[:, COL[base]] * 2.0 ** (reg[:, COL[col]] * (60.0 - key) / 1200.0)

    vp[:, _VHOLD] = by_key("key_to_vol_env_hold", "vol_env_hold")
    vp[:, _VDECAY] = by_key("key_to_vol_env_decay", "vol_env_decay")
    vp[:, _VSUS] = np.clip(10.0 ** (-reg[:, COL["vol_env_sustain_db"]] / 20.0), 0.0, 1.0)
    vp[:, _VREL] = np.maximum(reg[:, COL["vol_env_release"]], 0.01)
    vp[:, _MATT] = reg[:, COL["mod_env_attack"]] * (145.0 - vel) / 144.0
    vp[:, _MHOLD] = by_key("key_to_mod_env_hold", "mod_env_hold")
    vp[:, _MDECAY] = by_key("key_to_mod_env_decay", "mod_env_decay")
    vp[:, _MSUS] = np.clip(1.0 - reg[:, COL["mod_env_sustain"]] / 100.0, 0.0, 1.0)
    # an exclusive class (hi-hats) cuts the earlier voice of the same class on the same channel
    excl = reg[:, COL["exclusive_class"]]
    for cls in np.unique(excl[excl > 0]):
        for row in np.unique(vp[excl == cls, _ROW]):
            idx = np.flatnonzero((excl == cls) & (vp[:, _ROW] == row))
            ons = np.sort(vp[idx, _ON])
            later = np.searchsorted(ons, vp[idx, _ON], side="right")
            has = later < ons.size
            vp[idx[has], _KILL] = ons[later[has]]
    vp = vp[vp[:, _GAIN] >= NON_AUDIBLE]
    return vp[np.argsort(vp[:, _ON], kind="stable")]
