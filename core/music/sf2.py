"""Read a SoundFont 2 (``.sf2``) file into flat arrays the synthesiser (:mod:`core.music.synth`) plays.

A SoundFont holds 16-bit sample data and, per preset (bank, program), zones that map key and velocity
ranges to instrument zones, each naming a sample and generators (envelopes, filter, tuning, LFOs...).
:func:`load_soundfont` resolves every (preset zone, instrument zone) pair once into one row of
:attr:`SoundFont.regions` in physical units, following the SoundFont 2.04 specification: instrument
generators (global zone, then local) set values, preset generators (global, then local) add to them.

Modulators are not read. Like the ``rustysynth`` synthesiser this replaces, the synthesiser applies
the specification's fixed behaviour instead: velocity and initial attenuation set the note's level,
CC7/CC11 the channel volume, CC10 the pan, CC1 the vibrato depth, CC91/CC93 the effect sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from core.errors import ModelError

# Generator numbers (SoundFont 2.04, section 8.1.2).
_START, _END, _START_LOOP, _END_LOOP, _START_COARSE = 0, 1, 2, 3, 4
_MOD_LFO_PITCH, _VIB_LFO_PITCH, _MOD_ENV_PITCH, _FC, _Q = 5, 6, 7, 8, 9
_MOD_LFO_FC, _MOD_ENV_FC, _END_COARSE, _MOD_LFO_VOL = 10, 11, 12, 13
_CHORUS, _REVERB, _PAN = 15, 16, 17
_DELAY_MOD_LFO, _FREQ_MOD_LFO, _DELAY_VIB_LFO, _FREQ_VIB_LFO = 21, 22, 23, 24
_MOD_ENV = 25  # delay, attack, hold, decay, sustain, release, key->hold, key->decay: 25..32
_VOL_ENV = 33  # the same for the volume envelope: 33..40
_INSTRUMENT, _KEY_RANGE, _VEL_RANGE, _START_LOOP_COARSE = 41, 43, 44, 45
_ATTENUATION, _END_LOOP_COARSE, _COARSE, _FINE, _SAMPLE_ID, _MODES = 48, 50, 51, 52, 53, 54
_SCALE_TUNING, _EXCLUSIVE, _ROOT_KEY = 56, 57, 58
_N_GEN = 61

#: Columns of :attr:`SoundFont.regions` (physical units; times in seconds, pitches in semitones).
COLUMNS = (
    "start", "end", "loop_start", "loop_end", "sample_rate", "loop_mode", "root_key", "tune",
    "scale_tuning", "attenuation_db", "filter_q_db", "filter_fc_cents", "mod_lfo_to_pitch",
    "vib_lfo_to_pitch", "mod_env_to_pitch", "mod_lfo_to_fc", "mod_env_to_fc", "mod_lfo_to_volume",
    "chorus", "reverb", "pan", "mod_lfo_delay", "mod_lfo_hz", "vib_lfo_delay", "vib_lfo_hz",
    "mod_env_delay", "mod_env_attack", "mod_env_hold", "mod_env_decay", "mod_env_sustain",
    "mod_env_release", "key_to_mod_env_hold", "key_to_mod_env_decay", "vol_env_delay", "vol_env_attack",
    "vol_env_hold", "vol_env_decay", "vol_env_sustain_db", "vol_env_release", "key_to_vol_env_hold",
    "key_to_vol_env_decay", "exclusive_class", "key_lo", "key_hi", "vel_lo", "vel_hi",
)  # fmt: skip
COL = {name: i for i, name in enumerate(COLUMNS)}

_PHDR = np.dtype([("name", "S20"), ("preset", "<u2"), ("bank", "<u2"), ("bag", "<u2"), ("rest", "S12")])
_BAG = np.dtype([("gen", "<u2"), ("mod", "<u2")])
_GEN = np.dtype([("oper", "<u2"), ("amount", "<i2")])
_INST = np.dtype([("name", "S20"), ("bag", "<u2")])
_SHDR = np.dtype(
    [("name", "S20"), ("start", "<u4"), ("end", "<u4"), ("loop_start", "<u4"), ("loop_end", "<u4"),
     ("rate", "<u4"), ("pitch", "u1"), ("correction", "i1"), ("link", "<u2"), ("type", "<u2")]
)  # fmt: skip

_INSTRUMENT_DEFAULTS = {_FC: 13500, _KEY_RANGE: 0x7F00, _VEL_RANGE: 0x7F00, _SCALE_TUNING: 100, _ROOT_KEY: -1}
for _g in (_DELAY_MOD_LFO, _DELAY_VIB_LFO, *range(_MOD_ENV, _MOD_ENV + 4), _MOD_ENV + 5,
           *range(_VOL_ENV, _VOL_ENV + 4), _VOL_ENV + 5):  # fmt: skip
    _INSTRUMENT_DEFAULTS[_g] = -12000


@dataclass(frozen=True)
class SoundFont:
    """A parsed soundfont.

    Attributes
    ----------
    samples : numpy.ndarray
        All sample data as float32 in [-1, 1), with zeros after the last sample.
    regions : numpy.ndarray
        float64 ``(n_regions, len(COLUMNS))``: one row per playable (preset zone, instrument zone) pair.
    presets : dict
        ``(bank, program) -> int array`` of row numbers in :attr:`regions` (percussion kits in bank 128).
    """

    samples: np.ndarray
    regions: np.ndarray
    presets: dict[tuple[int, int], np.ndarray]

    def preset_regions(self, bank: int, program: int) -> np.ndarray:
        """Rows for a preset, falling back like General MIDI players do.

        An unknown melodic preset falls back to bank 0 with the same program, an unknown kit to the
        standard kit (128, 0), and then to the preset with the lowest bank and program.
        """
        for key in ((bank, program), (0, program) if bank < 128 else (128, 0)):
            if key in self.presets:
                return self.presets[key]
        return self.presets[min(self.presets)]


def _chunks(data: bytes, start: int, end: int) -> dict[bytes, tuple[int, int]]:
    """The sub-chunks of a RIFF list body: ``id -> (offset, size)``; LISTs are keyed by their type."""
    found: dict[bytes, tuple[int, int]] = {}
    pos = start
    while pos + 8 <= end:
        cid, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        body = pos + 8
        if body + size > len(data):
            raise ValueError(f"chunk {cid!r} runs past the end of the file")
        if cid == b"LIST":
            found[data[body : body + 4]] = (body + 4, size - 4)
        else:
            found[cid] = (body, size)
        pos = body + size + (size & 1)
    return found


def _records(data: bytes, chunks: dict, cid: bytes, dtype: np.dtype) -> np.ndarray:
    if cid not in chunks:
        raise ValueError(f"the {cid.decode()!r} chunk is missing")
    off, size = chunks[cid]
    return np.frombuffer(data, dtype=dtype, count=size // dtype.itemsize, offset=off)


def _zones(
    bags: np.ndarray, gens: np.ndarray, first: int, last: int, terminal: int
) -> tuple[dict[int, int], list[dict[int, int]]]:
    """Generator dicts of the zones ``first..last-1``: ``(global zone, local zones)``.

    The first zone is global when it lacks the ``terminal`` generator (instrument or sample ID); other
    zones without it are ignored, as the specification says.
    """
    zones = []
    for b in range(first, last):
        g0, g1 = int(bags["gen"][b]), int(bags["gen"][b + 1])
        opers, amounts = gens["oper"][g0:g1], gens["amount"][g0:g1]
        zones.append({int(o): int(a) for o, a in zip(opers, amounts, strict=True)})
    glob = zones[0] if zones and terminal not in zones[0] else {}
    return glob, [z for z in zones[1 if glob else 0 :] if terminal in z]


def _range(value: int) -> tuple[int, int]:
    v = value & 0xFFFF
    return v & 0xFF, (v >> 8) & 0xFF


def _tc(x: float) -> float:
    return float(2.0 ** (x / 1200.0))


def _row(inst: dict[int, int], pre: dict[int, int], shdr) -> list[float]:
    """One region row from merged instrument generators ``inst`` and preset offsets ``pre``."""

    def g(k: int) -> int:
        return inst.get(k, 0) + pre.get(k, 0)

    def addr(fine: int, coarse: int) -> int:
        return 32768 * inst.get(coarse, 0) + inst.get(fine, 0)

    root = inst[_ROOT_KEY] if inst.get(_ROOT_KEY, -1) != -1 else int(shdr["pitch"])
    ikl, ikh = _range(inst[_KEY_RANGE])
    pkl, pkh = _range(pre.get(_KEY_RANGE, 0x7F00))
    ivl, ivh = _range(inst[_VEL_RANGE])
    pvl, pvh = _range(pre.get(_VEL_RANGE, 0x7F00))
    me, ve = _MOD_ENV, _VOL_ENV
    return [
        int(shdr["start"]) + addr(_START, _START_COARSE),
        int(shdr["end"]) + addr(_END, _END_COARSE),
        int(shdr["loop_start"]) + addr(_START_LOOP, _START_LOOP_COARSE),
        int(shdr["loop_end"]) + addr(_END_LOOP, _END_LOOP_COARSE),
        max(1, int(shdr["rate"])),
        inst.get(_MODES, 0) & 3,
        root,
        g(_COARSE) + 0.01 * (g(_FINE) + int(shdr["correction"])),
        g(_SCALE_TUNING),
        0.1 * g(_ATTENUATION),
        0.1 * g(_Q),
        g(_FC),
        g(_MOD_LFO_PITCH),
        g(_VIB_LFO_PITCH),
        g(_MOD_ENV_PITCH),
        g(_MOD_LFO_FC),
        g(_MOD_ENV_FC),
        0.1 * g(_MOD_LFO_VOL),
        0.001 * g(_CHORUS),
        0.001 * g(_REVERB),
        0.1 * g(_PAN),
        _tc(g(_DELAY_MOD_LFO)),
        8.176 * _tc(g(_FREQ_MOD_LFO)),
        _tc(g(_DELAY_VIB_LFO)),
        8.176 * _tc(g(_FREQ_VIB_LFO)),
        _tc(g(me)), _tc(g(me + 1)), _tc(g(me + 2)), _tc(g(me + 3)), 0.1 * g(me + 4), _tc(g(me + 5)),
        g(me + 6), g(me + 7),
        _tc(g(ve)), _tc(g(ve + 1)), _tc(g(ve + 2)), _tc(g(ve + 3)), 0.1 * g(ve + 4), _tc(g(ve + 5)),
        g(ve + 6), g(ve + 7),
        inst.get(_EXCLUSIVE, 0),
        max(ikl, pkl), min(ikh, pkh), max(ivl, pvl), min(ivh, pvh),
    ]  # fmt: skip


def parse_soundfont(data: bytes) -> SoundFont:
    """Parse SoundFont 2 bytes.

    Raises
    ------
    ValueError
        For data that is not a well-formed SoundFont 2 file (the message says what is wrong).
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"sfbk":
        raise ValueError("not a SoundFont 2 file (no RIFF 'sfbk' header)")
    top = _chunks(data, 12, min(len(data), 8 + int.from_bytes(data[4:8], "little")))
    if b"sdta" not in top or b"pdta" not in top:
        raise ValueError("the 'sdta' or 'pdta' list is missing")
    sdta = _chunks(data, top[b"sdta"][0], sum(top[b"sdta"]))
    pdta = _chunks(data, top[b"pdta"][0], sum(top[b"pdta"]))
    if b"smpl" not in sdta:
        raise ValueError("the 'smpl' chunk is missing")
    off, size = sdta[b"smpl"]
    pcm = np.frombuffer(data, dtype="<i2", count=size // 2, offset=off)
    samples = np.zeros(pcm.size + 64, np.float32)
    np.multiply(pcm, np.float32(1.0 / 32768.0), out=samples[: pcm.size])
    phdr, pbag, pgen, inst, ibag, igen, shdr = (
        _records(data, pdta, cid, dtype)
        for cid, dtype in ((b"phdr", _PHDR), (b"pbag", _BAG), (b"pgen", _GEN), (b"inst", _INST),
                           (b"ibag", _BAG), (b"igen", _GEN), (b"shdr", _SHDR))
    )  # fmt: skip
    if len(phdr) < 2 or len(inst) < 2 or len(shdr) < 2:
        raise ValueError("the soundfont has no presets, instruments or samples")
    instruments = []
    for i in range(len(inst) - 1):
        glob, local = _zones(ibag, igen, int(inst["bag"][i]), int(inst["bag"][i + 1]), _SAMPLE_ID)
        merged = []
        for z in local:
            m = dict(_INSTRUMENT_DEFAULTS)
            m.update(glob)
            m.update(z)
            if 0 <= m[_SAMPLE_ID] < len(shdr) - 1:
                merged.append(m)
        instruments.append(merged)
    rows: list[list[float]] = []
    presets: dict[tuple[int, int], np.ndarray] = {}
    for p in range(len(phdr) - 1):
        glob, local = _zones(pbag, pgen, int(phdr["bag"][p]), int(phdr["bag"][p + 1]), _INSTRUMENT)
        mine = []
        for z in local:
            pre = dict(glob)
            pre.update(z)
            k = pre.pop(_INSTRUMENT)
            if not 0 <= k < len(instruments):
                continue
            for izone in instruments[k]:
                row = _row(izone, pre, shdr[izone[_SAMPLE_ID]])
                if row[COL["key_lo"]] <= row[COL["key_hi"]] and row[COL["vel_lo"]] <= row[COL["vel_hi"]]:
                    mine.append(len(rows))
                    rows.append(row)
        key = (int(phdr["bank"][p]), int(phdr["preset"][p]))
        if mine and key not in presets:
            presets[key] = np.asarray(mine, np.int64)
    if not presets:
        raise ValueError("no preset has a playable zone")
    regions = np.asarray(rows, np.float64)
    n = float(pcm.size)
    for c in ("start", "end", "loop_start", "loop_end"):  # addresses stay inside the sample data
        regions[:, COL[c]] = np.clip(regions[:, COL[c]], 0.0, n)
    return SoundFont(samples=samples, regions=regions, presets=presets)


@lru_cache(maxsize=2)
def _load(path: str, mtime_ns: int, size: int) -> SoundFont:
    try:
        return parse_soundfont(Path(path).read_bytes())
    except ValueError as exc:
        raise ModelError(f"Soundfont {path!r} cannot be read: {exc}.") from exc


def load_soundfont(path: str | Path) -> SoundFont:
    """Parse an ``.sf2`` file, once per file version (kept while the file is unchanged).

    Raises
    ------
    ModelError
        For an unreadable or malformed file (the message names the path).
    """
    p = Path(path)
    try:
        st = p.stat()
    except OSError as exc:
        raise ModelError(f"Soundfont {str(p)!r} cannot be read ({exc.strerror or exc}).") from exc
    return _load(str(p), st.st_mtime_ns, st.st_size)
