"""Audio effects as data: frozen effect specs -> a fresh :class:`pedalboard.Pedalboard` per call.

An effect chain is a tuple of small frozen dataclasses (:class:`Reverb`, :class:`Delay`, :class:`EQ`,
:class:`Compressor`, :class:`Chorus`, :class:`Distortion`, :class:`Filter`). Each spec validates its
values on construction (an :class:`~core.errors.InputError` names the field and its allowed range),
serialises to a plain dict with a ``type`` tag (:meth:`EffectSpec.to_dict`, :func:`effect_from_dict`)
and describes itself as JSON schema (:func:`effects_schema`). :func:`apply_chain` builds a new
``Pedalboard`` for every call, so no stateful plugin is ever shared between users or renders.

Length-changing processing is not part of a chain: :func:`time_stretch` changes tempo and/or pitch of
audio with pedalboard's Rubber Band stretcher (``pedalboard.time_stretch``). We use its
``high_quality=False, transient_mode="mixed"`` setting, chosen by measurement on 2 shared CPU cores
(stretch x1.3 of a 440+660 Hz two-tone; energy outside the two partials relative to them; speed on
30 s of stereo noise):

=========================  ================  ===============
setting                    artefacts (dB)    speed
=========================  ================  ===============
high_quality, crisp        -41.9             3.7x realtime
high_quality, mixed        -41.9             4.3x realtime
fast, crisp                -0.5              11x realtime
**fast, mixed (used)**     **-39.3**         **11.4x realtime**
fast, smooth               -64.1             10.4x realtime (smears drum hits)
=========================  ================  ===============

The chain effects themselves run at roughly 100-3000x realtime.

Examples
--------
>>> import numpy as np
>>> chain = (EQ(low_db=3.0), Reverb(room_size=0.3))
>>> y = apply_chain(np.zeros((2, 4410), np.float32), sr=44100, chain=chain)
>>> y.shape, y.dtype
((2, 4410), dtype('float32'))
>>> effect_from_dict(chain[1].to_dict()) == chain[1]
True
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from core.audio.checks import check_signal
from core.errors import InputError

# --------------------------------------------------------------------------------------------------
# spec machinery shared with core.editor.ops


def num(default: float, lo: float, hi: float, unit: str = "", doc: str = "") -> Any:
    """A numeric spec field with an inclusive allowed range (used for validation and JSON schema)."""
    return field(default=default, metadata={"range": (lo, hi), "unit": unit, "doc": doc})


def choice(default: str, options: tuple[str, ...], doc: str = "") -> Any:
    """A text spec field restricted to ``options``."""
    return field(default=default, metadata={"choices": options, "doc": doc})


def integer(default: int, lo: int, hi: int, unit: str = "", doc: str = "") -> Any:
    """An integer spec field with an inclusive allowed range."""
    return field(default=default, metadata={"range": (lo, hi), "integer": True, "unit": unit, "doc": doc})


def text(default: str = "", max_len: int = 40, doc: str = "") -> Any:
    """A short non-empty text spec field (a track name)."""
    return field(default=default, metadata={"text": max_len, "doc": doc})


def flag(default: bool = True, doc: str = "") -> Any:
    """A boolean spec field."""
    return field(default=default, metadata={"flag": True, "doc": doc})


def _fmt(v: float) -> str:
    return f"{v:g}"


def check_fields(obj: Any, where: str) -> None:
    """Validate every ``num``/``choice`` field of the dataclass ``obj``; coerce numbers to float.

    Raises
    ------
    InputError
        Naming ``where.field``, the bad value and the allowed range.
    """
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if "range" in f.metadata:
            lo, hi = f.metadata["range"]
            unit = f" {f.metadata['unit']}" if f.metadata.get("unit") else ""
            if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
                raise InputError(
                    f"{where}.{f.name} must be a number in {_fmt(lo)}..{_fmt(hi)}{unit}, got {value!r}."
                )
            x = float(value)
            if not math.isfinite(x) or not lo <= x <= hi:
                raise InputError(
                    f"{where}.{f.name} = {value!r} is out of range: use {_fmt(lo)}..{_fmt(hi)}{unit}."
                )
            if f.metadata.get("integer"):
                if x != int(x):
                    raise InputError(
                        f"{where}.{f.name} = {value!r} must be a whole number in {lo}..{hi}{unit}."
                    )
                object.__setattr__(obj, f.name, int(x))
            else:
                object.__setattr__(obj, f.name, x)
        elif "text" in f.metadata:
            limit = f.metadata["text"]
            if not isinstance(value, str) or not value.strip() or len(value) > limit:
                raise InputError(f"{where}.{f.name} must be a name of 1-{limit} characters, got {value!r}.")
        elif "flag" in f.metadata:
            if not isinstance(value, bool | np.bool_):
                raise InputError(f"{where}.{f.name} must be true or false, got {value!r}.")
            object.__setattr__(obj, f.name, bool(value))
        elif "choices" in f.metadata and value not in f.metadata["choices"]:
            allowed = ", ".join(f.metadata["choices"])
            raise InputError(f"{where}.{f.name} = {value!r} is not allowed: use one of {allowed}.")


def field_schema(f: dataclasses.Field) -> dict:
    """JSON schema of one ``num``/``choice`` spec field."""
    doc = f.metadata.get("doc", "")
    if "text" in f.metadata:
        out = {"type": "string", "minLength": 1, "maxLength": f.metadata["text"]}
        return {**out, "description": doc} if doc else out
    if "flag" in f.metadata:
        out = {"type": "boolean", "default": f.default}
        return {**out, "description": doc} if doc else out
    if "range" in f.metadata:
        lo, hi = f.metadata["range"]
        kind = "integer" if f.metadata.get("integer") else "number"
        out = {"type": kind, "minimum": lo, "maximum": hi, "default": f.default}
        if f.metadata.get("unit"):
            out["description"] = f"{doc} ({f.metadata['unit']})".strip()
        elif doc:
            out["description"] = doc
        return out
    if "choices" in f.metadata:
        out = {"type": "string", "enum": list(f.metadata["choices"]), "default": f.default}
        if doc:
            out["description"] = doc
        return out
    raise TypeError(f"field {f.name} has no schema metadata")


def from_fields(cls, data: dict, where: str):
    """Build the spec dataclass ``cls`` from a dict (``type`` ignored); unknown fields are refused."""
    if not isinstance(data, dict):
        raise InputError(f"{where} must be an object, got {type(data).__name__}.")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names - {"type"})
    if unknown:
        raise InputError(
            f"{where} has unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(names))}."
        )
    return cls(**{k: v for k, v in data.items() if k != "type"})


# --------------------------------------------------------------------------------------------------
# effect specs


@dataclass(frozen=True)
class EffectSpec:
    """Base of every effect spec: validated on construction, serialisable, builds pedalboard plugins."""

    type: ClassVar[str] = ""

    def __post_init__(self) -> None:
        check_fields(self, type(self).__name__)

    def to_dict(self) -> dict:
        """Plain JSON-able dict with the ``type`` tag first."""
        return {"type": self.type, **dataclasses.asdict(self)}

    def plugins(self, sr: int) -> list:
        """Fresh pedalboard plugins implementing this spec."""
        raise NotImplementedError


@dataclass(frozen=True)
class Reverb(EffectSpec):
    """Freeverb-style room reverb (adds a decaying tail)."""

    type: ClassVar[str] = "reverb"
    room_size: float = num(0.5, 0.0, 1.0, doc="room size")
    damping: float = num(0.5, 0.0, 1.0, doc="high-frequency damping")
    wet: float = num(0.3, 0.0, 1.0, doc="reverberated level")
    dry: float = num(0.8, 0.0, 1.0, doc="direct level")
    width: float = num(1.0, 0.0, 1.0, doc="stereo width")

    def plugins(self, sr: int) -> list:
        import pedalboard as pb

        return [
            pb.Reverb(
                room_size=self.room_size, damping=self.damping, wet_level=self.wet, dry_level=self.dry,
                width=self.width,
            )
        ]  # fmt: skip


@dataclass(frozen=True)
class Delay(EffectSpec):
    """Feedback echo."""

    type: ClassVar[str] = "delay"
    seconds: float = num(0.25, 0.01, 2.0, "s", "echo time")
    feedback: float = num(0.3, 0.0, 0.95, doc="echo feedback")
    mix: float = num(0.3, 0.0, 1.0, doc="wet/dry mix")

    def plugins(self, sr: int) -> list:
        import pedalboard as pb

        return [pb.Delay(delay_seconds=self.seconds, feedback=self.feedback, mix=self.mix)]


@dataclass(frozen=True)
class EQ(EffectSpec):
    """Three-band EQ: low shelf, mid peak and high shelf."""

    type: ClassVar[str] = "eq"
    low_db: float = num(0.0, -24.0, 24.0, "dB", "low shelf gain")
    mid_db: float = num(0.0, -24.0, 24.0, "dB", "mid peak gain")
    high_db: float = num(0.0, -24.0, 24.0, "dB", "high shelf gain")
    low_hz: float = num(200.0, 20.0, 1000.0, "Hz", "low shelf corner")
    mid_hz: float = num(1000.0, 200.0, 8000.0, "Hz", "mid peak centre")
    high_hz: float = num(4000.0, 1000.0, 16000.0, "Hz", "high shelf corner")
    mid_q: float = num(0.7, 0.1, 10.0, doc="mid peak Q")

    def plugins(self, sr: int) -> list:
        import pedalboard as pb

        nyq = 0.45 * sr
        return [
            pb.LowShelfFilter(cutoff_frequency_hz=min(self.low_hz, nyq), gain_db=self.low_db),
            pb.PeakFilter(cutoff_frequency_hz=min(self.mid_hz, nyq), gain_db=self.mid_db, q=self.mid_q),
            pb.HighShelfFilter(cutoff_frequency_hz=min(self.high_hz, nyq), gain_db=self.high_db),
        ]


@dataclass(frozen=True)
class Compressor(EffectSpec):
    """Dynamic range compressor with make-up gain."""

    type: ClassVar[str] = "compressor"
    threshold_db: float = num(-18.0, -60.0, 0.0, "dBFS", "threshold")
    ratio: float = num(4.0, 1.0, 20.0, doc="compression ratio")
    attack_ms: float = num(5.0, 0.1, 100.0, "ms", "attack")
    release_ms: float = num(100.0, 10.0, 1000.0, "ms", "release")
    makeup_db: float = num(0.0, 0.0, 24.0, "dB", "make-up gain")

    def plugins(self, sr: int) -> list:
        import pedalboard as pb

        out = [
            pb.Compressor(
                threshold_db=self.threshold_db, ratio=self.ratio, attack_ms=self.attack_ms,
                release_ms=self.release_ms,
            )
        ]  # fmt: skip
        if self.makeup_db:
            out.append(pb.Gain(gain_db=self.makeup_db))
        return out


@dataclass(frozen=True)
class Chorus(EffectSpec):
    """Modulated-delay chorus."""

    type: ClassVar[str] = "chorus"
    rate_hz: float = num(1.0, 0.05, 10.0, "Hz", "modulation rate")
    depth: float = num(0.25, 0.0, 1.0, doc="modulation depth")
    centre_delay_ms: float = num(7.0, 1.0, 30.0, "ms", "centre delay")
    feedback: float = num(0.0, 0.0, 0.9, doc="feedback")
    mix: float = num(0.5, 0.0, 1.0, doc="wet/dry mix")

    def plugins(self, sr: int) -> list:
        import pedalboard as pb

        return [
            pb.Chorus(
                rate_hz=self.rate_hz, depth=self.depth, centre_delay_ms=self.centre_delay_ms,
                feedback=self.feedback, mix=self.mix,
            )
        ]  # fmt: skip


@dataclass(frozen=True)
class Distortion(EffectSpec):
    """tanh waveshaping distortion with an output trim."""

    type: ClassVar[str] = "distortion"
    drive_db: float = num(20.0, 0.0, 60.0, "dB", "drive")
    output_db: float = num(-6.0, -40.0, 0.0, "dB", "output trim")

    def plugins(self, sr: int) -> list:
        import pedalboard as pb

        return [pb.Distortion(drive_db=self.drive_db), pb.Gain(gain_db=self.output_db)]


@dataclass(frozen=True)
class Filter(EffectSpec):
    """24 dB/octave ladder high-pass or low-pass filter."""

    type: ClassVar[str] = "filter"
    mode: str = choice("lowpass", ("lowpass", "highpass"), "filter kind")
    cutoff_hz: float = num(1000.0, 20.0, 20000.0, "Hz", "cutoff frequency")
    resonance: float = num(0.0, 0.0, 0.9, doc="resonance")

    def plugins(self, sr: int) -> list:
        import pedalboard as pb

        mode = pb.LadderFilter.Mode.LPF24 if self.mode == "lowpass" else pb.LadderFilter.Mode.HPF24
        return [
            pb.LadderFilter(mode=mode, cutoff_hz=min(self.cutoff_hz, 0.45 * sr), resonance=self.resonance)
        ]


#: Effect type tag -> spec class.
EFFECT_TYPES: dict[str, type[EffectSpec]] = {
    c.type: c for c in (Reverb, Delay, EQ, Compressor, Chorus, Distortion, Filter)
}
#: Longest effect chain accepted.
MAX_CHAIN = 16


def effect_from_dict(data: dict, *, where: str = "effect") -> EffectSpec:
    """Build an effect spec from its dict form (``{"type": "reverb", ...}``).

    Raises
    ------
    InputError
        For an unknown ``type``, unknown fields or out-of-range values.
    """
    if not isinstance(data, dict):
        raise InputError(f"{where} must be an object with a 'type', got {type(data).__name__}.")
    kind = data.get("type")
    cls = EFFECT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise InputError(f"{where}.type = {kind!r} is not an effect; use one of {', '.join(EFFECT_TYPES)}.")
    return from_fields(cls, data, where)


def chain_from_list(items, *, where: str = "chain") -> tuple[EffectSpec, ...]:
    """Validate a chain given as effect specs or their dicts; returns a tuple of specs."""
    if isinstance(items, EffectSpec | dict) or not isinstance(items, list | tuple):
        raise InputError(f"{where} must be a list of effects, got {type(items).__name__}.")
    if len(items) > MAX_CHAIN:
        raise InputError(f"{where} has {len(items)} effects; the limit is {MAX_CHAIN}.")
    out = []
    for i, item in enumerate(items):
        if isinstance(item, EffectSpec):
            out.append(item)
        else:
            out.append(effect_from_dict(item, where=f"{where}[{i}]"))
    return tuple(out)


def effects_schema() -> dict:
    """JSON schema (``oneOf``) of a single effect spec."""
    variants = []
    for name, cls in EFFECT_TYPES.items():
        props = {"type": {"const": name}}
        props.update({f.name: field_schema(f) for f in dataclasses.fields(cls)})
        variants.append(
            {
                "title": cls.__name__,
                "description": (cls.__doc__ or "").strip().splitlines()[0],
                "type": "object",
                "properties": props,
                "required": ["type"],
                "additionalProperties": False,
            }
        )
    return {"oneOf": variants}


def _check_audio(y: np.ndarray, sr: int) -> np.ndarray:
    """``y`` as C-contiguous float32 ``(channels, samples)`` with 1-2 channels (1-D is mono)."""
    return np.ascontiguousarray(check_signal(y, sr=sr, max_channels=2), dtype=np.float32)


def build_board(chain, *, sr: int):
    """A new :class:`pedalboard.Pedalboard` for ``chain`` (never reuse it across renders)."""
    import pedalboard as pb

    plugins = []
    for spec in chain_from_list(chain):
        plugins.extend(spec.plugins(int(sr)))
    return pb.Pedalboard(plugins)


def apply_chain(y: np.ndarray, *, sr: int, chain, tail_s: float = 0.0) -> np.ndarray:
    """Run ``y`` through a fresh board built from ``chain``.

    Parameters
    ----------
    y : np.ndarray
        float32 ``(channels, samples)``; not modified.
    sr : int
        Sample rate.
    chain : sequence of EffectSpec or dict
        The effect chain, first effect first. An empty chain returns a copy of ``y``.
    tail_s : float
        Seconds of silence appended before processing so reverb/delay tails are kept (0-30 s).

    Returns
    -------
    np.ndarray
        float32, ``y``'s length plus ``tail_s``.
    """
    x = _check_audio(y, sr)
    if not 0.0 <= float(tail_s) <= 30.0:
        raise InputError(f"tail_s = {tail_s!r} is out of range: use 0..30 s.")
    if tail_s:
        x = np.pad(x, ((0, 0), (0, round(float(tail_s) * sr))))
    specs = chain_from_list(chain)
    if not specs:
        return x.copy()
    out = build_board(specs, sr=sr)(x, float(sr), reset=True)
    return np.ascontiguousarray(out[:, : x.shape[1]], dtype=np.float32)


def time_stretch(y: np.ndarray, *, sr: int, rate: float = 1.0, semitones: float = 0.0) -> np.ndarray:
    """Change tempo by ``rate`` and pitch by ``semitones``, independently, in one pass.

    Parameters
    ----------
    y : np.ndarray
        float32 ``(channels, samples)``; not modified.
    sr : int
        Sample rate.
    rate : float
        Speed factor 0.25-4.0: 2.0 plays twice as fast (half the length), same pitch.
    semitones : float
        Pitch shift -24..+24 semitones, same length.

    Returns
    -------
    np.ndarray
        float32 ``(channels, round(n / rate))``. ``rate == 1`` and ``semitones == 0`` return a copy.

    Examples
    --------
    >>> import numpy as np
    >>> time_stretch(np.zeros((2, 44100), np.float32), sr=44100, rate=2.0).shape
    (2, 22050)
    """
    x = _check_audio(y, sr)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.25 <= float(rate) <= 4.0:
        raise InputError(f"rate = {rate!r} is out of range: use 0.25..4.0.")
    if (
        isinstance(semitones, bool)
        or not isinstance(semitones, int | float)
        or not -24 <= float(semitones) <= 24
    ):
        raise InputError(f"semitones = {semitones!r} is out of range: use -24..+24.")
    n_out = round(x.shape[1] / float(rate))
    if float(rate) == 1.0 and float(semitones) == 0.0:
        return x.copy()
    if x.shape[1] == 0:
        return np.zeros((x.shape[0], 0), np.float32)
    import pedalboard as pb

    out = pb.time_stretch(
        x,
        float(sr),
        stretch_factor=float(rate),
        pitch_shift_in_semitones=float(semitones),
        high_quality=False,
        transient_mode="mixed",
    )
    out = np.asarray(out, dtype=np.float32)
    if out.shape[1] >= n_out:
        return np.ascontiguousarray(out[:, :n_out])
    return np.pad(out, ((0, 0), (0, n_out - out.shape[1])))


def pitch_shift(y: np.ndarray, *, sr: int, semitones: float) -> np.ndarray:
    """Shift pitch by ``semitones`` (-24..+24) keeping the length and tempo."""
    return time_stretch(y, sr=sr, rate=1.0, semitones=semitones)
