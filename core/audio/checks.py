"""Validation of audio arrays passed to core functions (one place for the rules and messages).

Imports only numpy and :mod:`core.errors`, so light modules (:mod:`core.audio.io`) can use it.
"""

from __future__ import annotations

import numpy as np

from core.errors import InputError, LimitError


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
    if not np.isfinite(y).all():
        raise InputError(f"{what} contains NaN or infinite samples")
    return y
