"""Validation of audio arrays passed to core functions (one place for the rules and messages).

Imports only numpy and :mod:`core.errors`, so light modules (:mod:`core.audio.io`) can use it.
"""

from __future__ import annotations

import math

import numpy as np

from core.errors import InputError, LimitError

#: Audio up to this much longer than a length limit still fits (seconds): a "10:00" song that its
#: encoder padded by a fraction of a second is not refused, in the upload header check, the decoders,
#: saving (:func:`core.library.publish_audio`) or adding beats alike (:func:`check_duration`).
DURATION_SLACK_S = 1.0


def check_sample_rate(sr, *, min_sr: int = 8000, max_sr: int = 192000, what: str = "sample rate") -> int:
    """Return ``sr`` as an ``int`` after checking it is an integer (not a bool) in ``[min_sr, max_sr]`` Hz.

    Raises :class:`core.errors.InputError` naming ``what``, the bad value and the range.

    Examples
    --------
    >>> check_sample_rate(np.int64(48000))
    48000
    >>> check_sample_rate(44100.0)
    Traceback (most recent call last):
    core.errors.InputError: sample rate must be an integer between 8000 and 192000 Hz, got 44100.0
    """
    if isinstance(sr, bool) or not isinstance(sr, int | np.integer) or not min_sr <= int(sr) <= max_sr:
        raise InputError(f"{what} must be an integer between {min_sr} and {max_sr} Hz, got {sr!r}")
    return int(sr)


def check_signal(
    y,
    *,
    sr,
    min_sr: int = 8000,
    max_sr: int = 192000,
    max_channels: int = 8,
    allow_empty: bool = True,
    max_seconds: float | None = None,
    what: str = "audio",
) -> np.ndarray:
    """Return ``y`` as ``(channels, samples)`` after checking type, shape, values and ``sr``.

    A 1-D array is treated as mono. The array is returned as given (same dtype, no copy; a 1-D input
    becomes a ``(1, n)`` view), so callers that need float32 convert it themselves.

    Parameters
    ----------
    y : numpy.ndarray
        Floating-point audio ``(channels, samples)`` or 1-D mono.
    sr : int
        Sample rate in Hz; must be an integer in ``[min_sr, max_sr]``.
    min_sr, max_sr : int, optional
        Allowed sample-rate range (Hz); the default is the range the app accepts for uploads
        (:class:`core.audio.io.AudioLimits`).
    max_channels : int, optional
        Most channels allowed (at least 1 is always required).
    allow_empty : bool, optional
        Whether a signal of 0 samples is accepted.
    max_seconds : float, optional
        Longest accepted duration; a longer signal raises :class:`core.errors.LimitError`.
    what : str, optional
        What the signal is called in messages (``"audio"``, a file name, ...).

    Returns
    -------
    numpy.ndarray
        ``y``, 2-D.

    Raises
    ------
    core.errors.InputError
        Naming the bad value (type, dtype, shape, rate, empty, NaN/inf samples) and what is allowed.
    core.errors.LimitError
        If ``max_seconds`` is given and the signal is longer.

    Examples
    --------
    >>> check_signal(np.zeros(4, np.float32), sr=44100).shape
    (1, 4)
    >>> check_signal(np.zeros((3, 4), np.float32), sr=44100, max_channels=2)
    Traceback (most recent call last):
    core.errors.InputError: audio must be shaped (channels, samples) with 1-2 channels, got shape (3, 4)
    """
    if not isinstance(y, np.ndarray):
        raise InputError(f"{what} must be a numpy array, got {type(y).__name__}")
    if not np.issubdtype(y.dtype, np.floating):
        raise InputError(f"{what} must be floating point (float32), got dtype {y.dtype}")
    if y.ndim == 1:
        y = y[None, :]
    if y.ndim != 2 or not 1 <= y.shape[0] <= max_channels:
        raise InputError(
            f"{what} must be shaped (channels, samples) with 1-{max_channels} channels, got shape {y.shape}"
        )
    check_sample_rate(sr, min_sr=min_sr, max_sr=max_sr)
    if not allow_empty and y.shape[1] == 0:
        raise InputError(f"{what} is empty (0 samples)")
    if max_seconds is not None and y.shape[1] > max_seconds * int(sr):
        raise LimitError(f"{what} is {y.shape[1] / int(sr):.1f} s long; the limit is {max_seconds:g} s")
    # min and max see every NaN (they propagate) and every infinity without a temporary array (an
    # isfinite mask of a 10-minute stereo song is 53 MB)
    if y.size and not (np.isfinite(y.min()) and np.isfinite(y.max())):
        raise InputError(f"{what} contains NaN or infinite samples")
    return y


def format_duration(seconds: float, *, round_up: bool = False) -> str:
    """A length for messages: ``"42.5 s"``, ``"10 min 1 s"``, ``"3.0 h"``.

    Parameters
    ----------
    seconds : float
        The length in seconds.
    round_up : bool
        Round whole seconds up, for a length that is over a limit: 600.2 s reads "10 min 1 s", never
        "10 min", the limit itself.

    Returns
    -------
    str
        The length in seconds below two minutes, in minutes and seconds below two hours, else in hours.
    """
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        mins, secs = divmod(math.ceil(seconds) if round_up else round(seconds), 60)
        return f"{mins} min {secs} s" if secs else f"{mins} min"
    return f"{seconds / 3600:.1f} h"


def check_duration(seconds: float, *, max_seconds: float, what: str = "audio") -> None:
    """Raise :class:`core.errors.LimitError` when ``seconds`` is over ``max_seconds`` (with
    :data:`DURATION_SLACK_S` to spare), naming ``what``, its length and the limit.

    Examples
    --------
    >>> check_duration(600.4, max_seconds=600)
    >>> check_duration(601.2, max_seconds=600, what="the song")
    Traceback (most recent call last):
    core.errors.LimitError: the song is 10 min 2 s long; the limit is 10 min
    """
    if seconds > max_seconds + DURATION_SLACK_S:
        length = format_duration(seconds, round_up=True)
        raise LimitError(f"{what} is {length} long; the limit is {format_duration(max_seconds)}")
