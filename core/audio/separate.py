"""Harmonic-percussive separation of a mixed song, so its drums can be removed or replaced.

:func:`split_harmonic_percussive` uses median-filtering HPSS (Fitzgerald 2010, ``librosa.decompose.hpss``)
with soft Wiener masks on one STFT per channel. The masks sum to one, so ``harmonic + percussive``
reconstructs the input (up to STFT round-off): removing nothing changes nothing, and the percussive part
holds the drum hits (short broadband onsets) while sustained tones go to the harmonic part.

Examples
--------
>>> import numpy as np
>>> y = np.zeros((2, 22050), np.float32)
>>> h, p = split_harmonic_percussive(y, sr=44100)
>>> h.shape == p.shape == y.shape
True
"""

from __future__ import annotations

import numpy as np

from core.audio.checks import check_signal
from core.errors import InputError

N_FFT = 2048
HOP = 512


def split_harmonic_percussive(
    y: np.ndarray, *, sr: int, kernel_size: int = 31, power: float = 2.0
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``y`` into harmonic and percussive parts.

    Parameters
    ----------
    y : np.ndarray
        float32 ``(channels, samples)`` with 1-2 channels (1-D: mono); not modified.
    sr : int
        Sample rate, an integer in 8000-192000 Hz.
    kernel_size : int
        Median filter length in frames (time) and bins (frequency), 5-101.
    power : float
        Wiener mask exponent, 1-4 (higher: harder separation).

    Returns
    -------
    harmonic, percussive : np.ndarray
        float32, shaped like ``y``; ``harmonic + percussive ~= y``.

    Raises
    ------
    core.errors.InputError
        Bad audio or rate (see :func:`core.audio.checks.check_signal`), ``kernel_size`` or ``power``
        out of range (the message names the value and the range).
    """
    x = check_signal(y, sr=sr, max_channels=2).astype(np.float32, copy=False)
    if not 5 <= int(kernel_size) <= 101:
        raise InputError(f"kernel_size = {kernel_size!r} is out of range: use 5..101.")
    if not 1.0 <= float(power) <= 4.0:
        raise InputError(f"power = {power!r} is out of range: use 1..4.")
    n = x.shape[1]
    if n < N_FFT:
        return x.reshape(y.shape).copy(), np.zeros(y.shape, np.float32)
    import librosa

    spec = librosa.stft(x, n_fft=N_FFT, hop_length=HOP)
    harm_spec, perc_spec = librosa.decompose.hpss(
        spec, kernel_size=int(kernel_size), power=float(power), margin=1.0
    )
    harm = librosa.istft(harm_spec, hop_length=HOP, n_fft=N_FFT, length=n).astype(np.float32)
    perc = librosa.istft(perc_spec, hop_length=HOP, n_fft=N_FFT, length=n).astype(np.float32)
    return np.ascontiguousarray(harm).reshape(y.shape), np.ascontiguousarray(perc).reshape(y.shape)
