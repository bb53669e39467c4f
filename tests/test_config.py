"""Settings from the environment (core.config)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import get_settings
from core.errors import InputError


def test_empty_variables_count_as_unset(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for name in ("BEATTOK_DATA_DIR", "DATABASE_URL", "BEATTOK_MAX_UPLOAD_MB", "BEATTOK_MAX_DURATION_S"):
        monkeypatch.setenv(name, "")
    s = get_settings()
    # not the working folder itself: the database and the cookie key stay in ./data
    assert s.data_dir == Path(tmp_path / "data").resolve()
    assert s.database_url == f"sqlite:///{tmp_path.resolve() / 'data' / 'beattok.db'}"
    assert s.max_upload_bytes == 100 * 1024 * 1024
    assert s.max_duration_s == 600.0


def test_numbers_are_read(monkeypatch):
    monkeypatch.setenv("BEATTOK_MAX_UPLOAD_MB", " 2.5 ")
    monkeypatch.setenv("BEATTOK_MAX_DURATION_S", "30")
    s = get_settings()
    assert s.max_upload_bytes == int(2.5 * 1024 * 1024)
    assert s.max_duration_s == 30.0


@pytest.mark.parametrize("value", ["abc", "0", "-5", "nan", "inf", "1e999"])
@pytest.mark.parametrize("name", ["BEATTOK_MAX_UPLOAD_MB", "BEATTOK_MAX_DURATION_S"])
def test_bad_numbers_name_the_variable(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(InputError, match=name):
        get_settings()
