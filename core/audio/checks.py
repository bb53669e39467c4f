"""Validation of audio arrays passed to core functions (one place for the rules and messages)."""

from __future__ import annotations

import numpy as np

from core.errors import InputError


def check_signal(y, *, sr, min_sr: int = 1000, max_sr: int = 384000) -> np.ndarray:
    """Return ``y`` as ``(channels, samples)`` after checking type, shape, values and ``sr``.

    A 1-D array is treated as mono. Raises :class:`core.errors.InputError` naming the bad value.

    Examples
    --------
    >>> check_signal(np.zeros(4, np.float32), sr=44100).shape
    (1, 4)
    """
    if not isinstance(y, np.ndarray):
        raise InputError(f"audio must be a numpy array, got {type(y).__name__}")
    if not np.issubdtype(y.dtype, np.floating):
        raise InputError(f"audio must be floating point (float32), got dtype {y.dtype}")
    if y.ndim == 1:
        y = y[None, :]
    if y.ndim != 2 or not 1 <= y.shape[0] <= 8:
        raise InputError(f"audio must be shaped (channels, samples) with 1-8 channels, got shape {y.shape}")
    if isinstance(sr, bool) or not isinstance(sr, int | np.integer) or not min_sr <= int(sr) <= max_sr:
        raise InputError(f"sample rate must be an integer between {min_sr} and {max_sr} Hz, got {sr!r}")
    if not np.isfinite(y).all():
        raise InputError("audio contains NaN or infinite samples")
    return y
