"""The numba warm-up: core.warmup, ``python -m core warmup`` and the app's background start."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from core.__main__ import main
from core.warmup import warm_up

ROOT = Path(__file__).resolve().parents[1]


def test_warm_up_renders_and_analyses_its_song():
    took = warm_up()
    assert took["render_s"] > 0 and took["analysis_s"] > 0
    # the made-up song is at 120 BPM: the analysis really ran on real music
    assert took["tempo_bpm"] == pytest.approx(120.0, rel=0.04)


def test_cli_prints_the_timings(capsys):
    assert main(["warmup", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"render_s", "analysis_s", "tempo_bpm"}
    assert out["tempo_bpm"] == pytest.approx(120.0, rel=0.04)


@pytest.fixture
def fake_popen(monkeypatch):
    """subprocess.Popen replaced by a recorder; the list of the calls' (args, kwargs)."""
    import subprocess
    from types import SimpleNamespace

    from components import resources

    started: list = []

    def popen(args, **kwargs):
        started.append(SimpleNamespace(args=args, kwargs=kwargs, pid=-1, wait=lambda: 0))
        return started[-1]

    monkeypatch.setattr(subprocess, "Popen", popen)
    resources._warmup_process.clear()
    yield started
    resources._warmup_process.clear()


def test_server_starts_one_background_warmup(fake_popen, monkeypatch):
    from components import resources

    monkeypatch.setenv("BEATTOK_WARMUP", "1")
    resources.start_warmup()
    resources.start_warmup()
    assert len(fake_popen) == 1
    assert fake_popen[0].args == [sys.executable, "-m", "core", "warmup"]
    assert Path(fake_popen[0].kwargs["cwd"]) == ROOT


def test_warmup_can_be_switched_off(fake_popen, monkeypatch):
    from components import resources

    monkeypatch.setenv("BEATTOK_WARMUP", "0")
    resources.start_warmup()
    assert fake_popen == []


def test_the_app_starts_it_after_a_page(fake_popen, monkeypatch, db):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("BEATTOK_WARMUP", "1")
    at = AppTest.from_file("../app.py", default_timeout=60)
    at.run()
    assert not at.exception
    assert [p.args[-1] for p in fake_popen] == ["warmup"]
