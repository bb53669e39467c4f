"""The orphaned-media sweep (core.maintenance, ``python -m core sweep``) and LocalStorage.iter_keys."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import pytest
from sqlmodel import Session

from core.db.models import STORAGE_KEY_COLUMNS, Job, Project, Track
from core.errors import InputError
from core.maintenance import sweep_orphans
from core.storage import LocalStorage
from tests.conftest import SR, make_track, make_user, sine

NOW = 2_000_000_000.0  # a fixed "now" (2033) so ages are exact
OLD = NOW - 3 * 86400  # older than the default two-day threshold
FRESH = NOW - 3600  # one hour old


def _png(color=(200, 30, 90)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buf, format="PNG")
    return buf.getvalue()


def _midi() -> bytes:
    import pretty_midi

    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program=33)
    inst.notes.append(pretty_midi.Note(velocity=90, pitch=40, start=0.0, end=0.5))
    pm.instruments.append(inst)
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


def _editor_project(storage, title: str, freq: float):
    """An editor project whose audio and MIDI stems are written to ``storage`` (as the editor does)."""
    from core.editor.project import StorageSources, from_audio_stems

    stems = {"song": sine(freq, seconds=0.5), "bass": sine(freq / 2, seconds=0.5)}
    return from_audio_stems(stems, sources=StorageSources(storage), title=title, midi={"bass": _midi()})


def _stem_keys(project) -> set[str]:
    return {k for s in project.stems for k in (s.audio, s.midi) if k}


def _stored(storage: LocalStorage) -> set[str]:
    return {k for k, _ in storage.iter_keys()}


def _age_all(storage: LocalStorage, mtime: float) -> None:
    for key, _ in storage.iter_keys():
        os.utime(storage.open_path(key), (mtime, mtime))


@pytest.fixture
def world(db):
    """A database and store holding referenced files of every kind, old orphans and a fresh orphan."""
    from core.audio.io import encode
    from core.editor.project import save_project
    from core.library import audio_bytes, save_album

    engine, storage = db
    alice = make_user(engine, "alice")
    bob = make_user(engine, "bob")
    t1 = make_track(engine, storage, alice.id, title="One", cover_png=_png())
    make_track(engine, storage, bob.id, title="Two", visibility="private")
    with Session(engine) as s:
        track = s.get(Track, t1)
        audio_bytes(s, storage, track=track, fmt="mp3")  # stores the MP3 (mp3_key)
        save_album(s, storage, owner_id=alice.id, name="Neon", artist="Alice", cover_png=_png((1, 2, 3)),
                   titles=["A", "B"])  # fmt: skip
        saved = _editor_project(storage, "Saved", 330.0)
        project_id = save_project(s, storage, owner_id=alice.id, project=saved)
        # a job whose result is a model file and whose parameters mention an input file
        job_input = storage.put(encode(sine(440.0, seconds=0.2), sr=SR, fmt="wav"), suffix="wav")
        job_result = storage.put(b"checkpoint-bytes", suffix="pt")
        s.add(Job(owner_id=bob.id, kind="kpop_train", status="done", result_key=job_result,
                  params_json=json.dumps({"params": {"audio_keys": [job_input]}})))  # fmt: skip
        s.commit()

    referenced = _stored(storage)
    # Orphans: the stems of an editor session that was never saved, and a stray cover.
    unsaved = _editor_project(storage, "Never saved", 550.0)
    stray = storage.put(_png((9, 9, 9)), suffix="png")
    old_orphans = _stem_keys(unsaved) | {stray}
    _age_all(storage, OLD)
    fresh = storage.put(b"written a moment ago", suffix="flac")
    os.utime(storage.open_path(fresh), (FRESH, FRESH))
    # Not keys: an old temp file of an interrupted write and a foreign file; the sweep never lists them.
    folder = storage.root / fresh[:2]
    tmp = folder / ".tmp-0123456789abcdef0123456789abcdef.part"
    other = folder / "README.txt"
    for p in (tmp, other):
        p.write_bytes(b"not a key")
        os.utime(p, (OLD, OLD))
    return {
        "engine": engine,
        "storage": storage,
        "referenced": referenced,
        "saved_stems": _stem_keys(saved),
        "project_id": project_id,
        "owner": alice.id,
        "job_keys": {job_input, job_result},
        "old_orphans": old_orphans,
        "fresh": fresh,
        "not_keys": (tmp, other),
    }


def test_world_covers_every_key_column(world):
    """Every storage-key column holds a value in the fixture, so each kind of reference is exercised."""
    from sqlalchemy import select

    with Session(world["engine"]) as s:
        for column, _owner in STORAGE_KEY_COLUMNS:
            values = [v for v in s.execute(select(column)).scalars() if v]
            assert values, f"no row sets {column}"
            assert set(values) <= world["referenced"]
    # the saved project's stems are referenced only inside its JSON document
    assert world["saved_stems"] and world["saved_stems"] <= world["referenced"]
    assert len(world["old_orphans"]) == 4  # song + bass FLAC, bass MIDI, stray PNG


def test_sweep_deletes_exactly_the_old_orphans(world):
    storage = world["storage"]
    before = _stored(storage)
    sizes = {k: storage.open_path(k).stat().st_size for k in world["old_orphans"]}
    with Session(world["engine"]) as s:
        report = sweep_orphans(s, storage, now=NOW)
    assert report.blocked == () and report.failed == ()
    assert set(report.deleted) == world["old_orphans"] == set(report.orphans)
    assert list(report.deleted) == sorted(report.deleted)
    assert report.found == len(before)
    assert report.referenced == len(world["referenced"])
    assert report.fresh == 1
    assert report.bytes_freed == report.orphan_bytes == sum(sizes.values()) > 0
    assert _stored(storage) == before - world["old_orphans"]
    assert world["fresh"] in _stored(storage)
    assert all(p.exists() for p in world["not_keys"])

    # every referenced file still works: the project loads with all its stems, the job files exist
    from core.editor.project import StorageSources, load_project

    with Session(world["engine"]) as s:
        project = load_project(s, storage, project_id=world["project_id"], owner_id=world["owner"])
        src = StorageSources(storage)
        for stem in project.stems:
            assert src.audio(stem.audio, sr=SR).shape[0] == 2
            if stem.midi:
                assert src.midi(stem.midi).startswith(b"MThd")
    assert all(storage.exists(k) for k in world["job_keys"])

    # idempotent: a second sweep finds nothing more to delete
    with Session(world["engine"]) as s:
        again = sweep_orphans(s, storage, now=NOW)
    assert again.deleted == () and again.orphans == () and again.found == len(before) - 4


def test_dry_run_deletes_nothing(world):
    storage = world["storage"]
    before = _stored(storage)
    with Session(world["engine"]) as s:
        report = sweep_orphans(s, storage, dry_run=True, now=NOW)
    assert report.dry_run and report.deleted == () and report.bytes_freed == 0
    assert set(report.orphans) == world["old_orphans"] and report.orphan_bytes > 0
    assert _stored(storage) == before
    assert "would delete 4 file(s)" in report.summary()


def test_threshold_decides_which_orphans_are_old_enough(world):
    storage = world["storage"]
    with Session(world["engine"]) as s:
        # 4 days: even the 3-day-old orphans are too young
        assert sweep_orphans(s, storage, older_than_s=4 * 86400, now=NOW).deleted == ()
        # zero: the fresh orphan goes too
        report = sweep_orphans(s, storage, older_than_s=0, now=NOW)
    assert set(report.deleted) == world["old_orphans"] | {world["fresh"]}
    assert _stored(storage) == world["referenced"]


@pytest.mark.parametrize("damage", ["missing", "corrupt", "not-utf8"])
def test_unreadable_project_document_blocks_all_deletion(world, damage):
    storage = world["storage"]
    with Session(world["engine"]) as s:
        data_key = s.get(Project, world["project_id"]).data_key
    path = storage.open_path(data_key)
    if damage == "missing":
        path.unlink()
    elif damage == "corrupt":
        path.write_bytes(path.read_bytes()[:40])  # truncated JSON
    else:
        path.write_bytes(b"\xff\xfe" + path.read_bytes())
    before = _stored(storage)
    with Session(world["engine"]) as s:
        report = sweep_orphans(s, storage, now=NOW)
    assert report.deleted == () and report.bytes_freed == 0
    assert _stored(storage) == before
    assert world["saved_stems"] <= before  # the stems nobody else mentions survive
    assert any(f"project {world['project_id']}" in r and data_key in r for r in report.blocked)
    # the orphans are still reported, so the operator sees what is waiting
    assert world["old_orphans"] <= set(report.orphans)
    assert "NOTHING WAS DELETED" in report.summary()


def test_empty_database_blocks_deletion(db):
    """A store next to a database that references nothing (wrong DATABASE_URL?) is left alone."""
    engine, storage = db
    keys = {storage.put(b"x" * 10, suffix="wav"), storage.put(b"y", suffix="png")}
    _age_all(storage, OLD)
    with Session(engine) as s:
        report = sweep_orphans(s, storage, now=NOW)
    assert report.deleted == () and set(report.orphans) == keys
    assert any("DATABASE_URL" in r for r in report.blocked)
    assert _stored(storage) == keys


class _FlakyStorage(LocalStorage):
    """Fails to delete one key."""

    def __init__(self, root, bad: str) -> None:
        super().__init__(root)
        self.bad = bad

    def delete(self, key: str) -> None:
        if key == self.bad:
            raise PermissionError(f"read-only: {key}")
        super().delete(key)


def test_an_error_on_one_file_does_not_stop_the_sweep(world):
    bad = sorted(world["old_orphans"])[0]
    storage = _FlakyStorage(world["storage"].root, bad)
    with Session(world["engine"]) as s:
        report = sweep_orphans(s, storage, now=NOW)
    assert set(report.deleted) == world["old_orphans"] - {bad}
    assert [k for k, _ in report.failed] == [bad] and "PermissionError" in report.failed[0][1]
    assert _stored(storage) == world["referenced"] | {bad, world["fresh"]}


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "48", True])
def test_bad_threshold_is_rejected(db, bad):
    engine, storage = db
    with Session(engine) as s, pytest.raises(InputError, match="older_than_s"):
        sweep_orphans(s, storage, older_than_s=bad)


def test_cli_sweep_json_and_exit_status(world, capsys):
    from core.__main__ import main

    storage = world["storage"]
    # the CLI uses the real clock: make the orphans really old and the fresh one really fresh
    now = time.time()
    for key in _stored(storage):
        t = now - 60 if key == world["fresh"] else now - 3 * 86400
        os.utime(storage.open_path(key), (t, t))

    assert main(["sweep", "--dry-run", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dry_run"] is True and out["deleted"] == []
    assert set(out["orphans"]) == world["old_orphans"] and out["older_than_s"] == 48 * 3600

    assert main(["sweep", "--older-than-hours", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["deleted"]) == world["old_orphans"] and out["bytes_freed"] > 0
    assert _stored(storage) == world["referenced"] | {world["fresh"]}

    assert main(["sweep"]) == 0
    text = capsys.readouterr().out
    assert "deleted 0 file(s)" in text and "1 unreferenced but younger than 48 h" in text


def test_cli_blocked_sweep_exits_1(world, capsys):
    from core.__main__ import main

    with Session(world["engine"]) as s:
        data_key = s.get(Project, world["project_id"]).data_key
    world["storage"].delete(data_key)
    assert main(["sweep", "--older-than-hours", "0", "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["deleted"] == [] and out["blocked"]


def test_cli_refuses_without_a_database(tmp_path, monkeypatch, capsys):
    from core.__main__ import main

    monkeypatch.setenv("BEATTOK_DATA_DIR", str(tmp_path / "elsewhere"))
    assert main(["sweep"]) == 2
    assert "No database" in capsys.readouterr().err
    assert not (tmp_path / "elsewhere" / "beattok.db").exists()  # none was created


def test_cli_rejects_negative_hours(capsys):
    from core.__main__ import main

    with pytest.raises(SystemExit) as exc:
        main(["sweep", "--older-than-hours", "-1"])
    assert exc.value.code == 2
    assert "out of range" in capsys.readouterr().err


def test_cli_runs_as_a_module(world):
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, "-m", "core", "sweep", "--dry-run", "--json"],
        cwd=root, env=os.environ.copy(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["found"] == len(_stored(world["storage"])) and out["deleted"] == []


# --------------------------------------------------------------------------- LocalStorage.iter_keys


def test_iter_keys_lists_only_valid_keys_with_mtimes(tmp_path):
    store = LocalStorage(tmp_path / "media")
    assert list(store.iter_keys()) == []  # store not created yet
    keys = [store.put(bytes([i]) * (i + 1), suffix=s) for i, s in enumerate(["wav", "png", "tar.gz"])]
    os.utime(store.open_path(keys[0]), (OLD, OLD))
    folder = store.root / keys[1][:2]
    (folder / ".tmp-0123456789abcdef0123456789abcdef.part").write_bytes(b"partial")
    (folder / "notes.txt").write_bytes(b"x")
    (folder / ("0" * 32 + ".WAV")).write_bytes(b"x")  # upper-case suffix: not a key
    (folder / ("1" * 32 + ".wav")).mkdir()  # a folder with a key-like name
    (store.root / "zz").mkdir()  # not a hex folder
    (store.root / "zz" / ("2" * 32 + ".wav")).write_bytes(b"x")
    (store.root / "stray.wav").write_bytes(b"x")
    outside = tmp_path / "outside.wav"
    outside.write_bytes(b"secret")
    (folder / ("3" * 32 + ".wav")).symlink_to(outside)  # symlinks are never listed

    listed = dict(store.iter_keys())
    assert set(listed) == set(keys)
    assert listed[keys[0]] == OLD
    assert all(abs(listed[k] - store.open_path(k).stat().st_mtime) < 1e-6 for k in keys)
    assert [k for k, _ in store.iter_keys()] == sorted(listed)  # deterministic order


def test_iter_keys_of_a_file_root_is_empty(tmp_path):
    f = tmp_path / "not-a-folder"
    f.write_bytes(b"x")
    assert list(LocalStorage(f).iter_keys()) == []
