"""Settings read from environment variables (no global mutable state).

Call :func:`get_settings` where a setting is needed; it reads the environment each time,
so tests can set variables with ``monkeypatch.setenv``. A variable set to an empty string counts as
unset (``BEATTOK_DATA_DIR=`` would otherwise put the database in the working folder).

| variable | meaning | default |
|---|---|---|
| ``BEATTOK_DATA_DIR`` | folder for the SQLite file, media and the cookie key | ``./data`` |
| ``DATABASE_URL`` | any SQLAlchemy URL | ``sqlite:///<data dir>/beattok.db`` |
| ``BEATTOK_MAX_UPLOAD_MB`` | largest accepted upload | ``100`` |
| ``BEATTOK_MAX_DURATION_S`` | longest accepted audio | ``600`` |
| ``BEATTOK_COOKIE_KEY`` | auth cookie signing key (else generated once into the data dir) | unset |
| ``SOUNDFONT`` | path of a .sf2/.sf3 General MIDI soundfont | pretty_midi's TimGM6mb.sf2 |
| ``BEATTOK_WARMUP`` | ``0`` stops the app compiling its numba code in the background at start | ``1`` |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from core.errors import InputError

#: The project sample rate: every decoded upload and rendered stem uses it.
SAMPLE_RATE = 44100


@dataclass(frozen=True)
class Settings:
    """Resolved settings; see the module docstring for the variables."""

    data_dir: Path
    database_url: str
    max_upload_bytes: int
    max_duration_s: float
    cookie_key: str | None
    soundfont: str | None
    warmup: bool

    @property
    def media_dir(self) -> Path:
        """Folder of the local media store."""
        return self.data_dir / "media"


def get_settings() -> Settings:
    """Read the settings from the environment.

    Examples
    --------
    >>> get_settings().max_duration_s > 0
    True
    """
    data_dir = Path(os.environ.get("BEATTOK_DATA_DIR") or "data").expanduser().resolve()
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{data_dir / 'beattok.db'}"
    return Settings(
        data_dir=data_dir,
        database_url=url,
        max_upload_bytes=int(_positive("BEATTOK_MAX_UPLOAD_MB", 100.0) * 1024 * 1024),
        max_duration_s=_positive("BEATTOK_MAX_DURATION_S", 600.0),
        cookie_key=os.environ.get("BEATTOK_COOKIE_KEY") or None,
        soundfont=os.environ.get("SOUNDFONT") or None,
        warmup=(os.environ.get("BEATTOK_WARMUP") or "1").strip().lower() not in ("0", "false", "no", "off"),
    )


def _positive(name: str, default: float) -> float:
    """The positive number in environment variable ``name`` (``default`` when unset or empty).

    Raises
    ------
    core.errors.InputError
        For a value that is not a positive finite number (the message names the variable).
    """
    raw = (os.environ.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0.0 < value < float("inf"):
        raise InputError(f"{name} = {raw!r} is not a positive number (default: {default:g}).")
    return value
