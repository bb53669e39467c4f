"""The shipped ``.streamlit/config.toml``, as Streamlit itself reads it from the repository root (where
the README's ``streamlit run app.py`` and Community Cloud start the app)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from streamlit import config
from streamlit.watcher.path_watcher import NoOpPathWatcher, get_default_path_watcher_class

from core.config import get_settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo_config(monkeypatch):
    """Streamlit's options parsed from the repository's config file (and re-parsed afterwards)."""
    monkeypatch.chdir(ROOT)
    for name in list(os.environ):
        if name.startswith("STREAMLIT_"):  # options given by the environment would win over the file
            monkeypatch.delenv(name)
    config.get_config_options(force_reparse=True)
    yield config
    monkeypatch.undo()
    config.get_config_options(force_reparse=True)


def test_no_file_watcher_on_the_app_folder(repo_config):
    # with .venv inside the app's folder, the watcher cost 0.6-1.5 s of every cold start (README)
    assert repo_config.get_option("server.fileWatcherType") == "none"
    assert get_default_path_watcher_class() is NoOpPathWatcher


def test_browser_upload_limit_is_the_servers(repo_config, monkeypatch):
    monkeypatch.delenv("BEATTOK_MAX_UPLOAD_MB", raising=False)
    limit_mb = repo_config.get_option("server.maxUploadSize")
    assert limit_mb * 1024 * 1024 == get_settings().max_upload_bytes
