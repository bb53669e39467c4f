"""The ONE module that wraps core objects in Streamlit caches.

``st.cache_resource`` holds objects shared by every session (engine, storage, models): they
are thread-safe and never mutated. ``st.cache_data`` holds derived values. Each screen owns
a labelled section at the end of this file; edit only your own section.
"""

from __future__ import annotations

import streamlit as st

from core.config import get_settings


@st.cache_resource(show_spinner=False)
def _engine(url: str):
    from core.db.engine import make_engine, migrate

    eng = make_engine(url)
    migrate(eng)
    return eng


def engine():
    """The SQLAlchemy engine for the configured database, migrated to the latest schema."""
    return _engine(get_settings().database_url)


@st.cache_resource(show_spinner=False)
def _storage(root: str):
    from pathlib import Path

    from core.storage import LocalStorage

    return LocalStorage(Path(root))


def storage():
    """The media storage for the configured data directory."""
    return _storage(str(get_settings().media_dir))


@st.cache_resource(show_spinner=False)
def _cookie_key(data_dir: str) -> str:
    from core.auth import cookie_key

    return cookie_key(get_settings())


def cookie_key() -> str:
    """The auth cookie signing key (env var, Streamlit secrets, or generated once into the data dir)."""
    try:
        secret = st.secrets.get("cookie_key")  # type: ignore[union-attr]
    except Exception:  # no secrets.toml: the normal case for a local run
        secret = None
    if secret:
        return str(secret)
    return _cookie_key(str(get_settings().data_dir))


@st.cache_data(show_spinner=False, max_entries=512)
def track_figure_data(track_id: int, peaks_json: str, beats_json: str | None):
    """Decoded waveform peaks and beats of a track (cheap, cached by the stored JSON)."""
    import json

    import numpy as np

    peaks = np.asarray(json.loads(peaks_json or "[]"), dtype=np.float32)
    beats = json.loads(beats_json) if beats_json else []
    return peaks, beats


# --- music engine ---

# --- remix ---

# --- kpop ---

# --- album ---
