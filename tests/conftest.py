"""Shared pytest fixtures: an isolated data dir and signals made in code."""

from __future__ import annotations

import numpy as np
import pytest

SR = 44100


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path, monkeypatch):
    """Every test gets its own data directory and database; no test touches ./data."""
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("BEATTOK_DATA_DIR", str(data))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("BEATTOK_COOKIE_KEY", "test-cookie-key-" + "x" * 32)
    return data


def sine(freq: float = 440.0, seconds: float = 2.0, sr: int = SR, amp: float = 0.3, channels: int = 2):
    """A float32 ``(channels, n)`` sine tone."""
    t = np.arange(int(seconds * sr)) / sr
    y = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.tile(y, (channels, 1))


def click_track(bpm: float = 120.0, seconds: float = 8.0, sr: int = SR, channels: int = 2):
    """Short decaying noise bursts on every beat at ``bpm``: a signal with a known tempo."""
    rng = np.random.default_rng(0)
    n = int(seconds * sr)
    y = np.zeros(n, dtype=np.float32)
    burst = (rng.standard_normal(int(0.03 * sr)) * np.exp(-np.linspace(0, 8, int(0.03 * sr)))).astype(np.float32)
    step = 60.0 / bpm
    t = 0.0
    while t < seconds:
        i = int(t * sr)
        j = min(n, i + burst.size)
        y[i:j] += 0.5 * burst[: j - i]
        t += step
    return np.tile(y, (channels, 1))


@pytest.fixture
def tone():
    """Factory fixture for sine tones."""
    return sine


@pytest.fixture
def clicks():
    """Factory fixture for click tracks with a known tempo."""
    return click_track
