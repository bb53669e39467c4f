"""Editor operations and the project model: validation, JSON, history, saved versions."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from sqlmodel import Session

from core.audio.effects import EQ, Reverb
from core.db.models import Project as ProjectRow
from core.editor import ops as O
from core.editor.project import (
    MemorySources,
    Project,
    StorageSources,
    count_projects,
    delete_project,
    from_audio_stems,
    from_track,
    list_projects,
    load_project,
    save_project,
)
from core.errors import InputError, NotFoundError
from tests.conftest import SR, click_track, make_track, make_user, sine


@pytest.fixture
def project():
    src = MemorySources()
    stems = {"drums": click_track(seconds=4.0), "keys": sine(440, 4.0), "bass": sine(110, 4.0)}
    return from_audio_stems(stems, sources=src, title="Demo", tempo_bpm=120.0, key="A minor")


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: O.SetTempo(ratio=0.1), "SetTempo.ratio"),
        (lambda: O.SetTempo(ratio=1.2, bpm=100), "exactly one"),
        (lambda: O.SetTempo(), "exactly one"),
        (lambda: O.Transpose(semitones=40), "Transpose.semitones"),
        (lambda: O.Transpose(semitones=1.5), "Transpose.semitones"),
        (lambda: O.TrackGain(track="drums", db=60.0), "TrackGain.db"),
        (lambda: O.TrackGain(track="", db=0.0), "TrackGain.track"),
        (lambda: O.TrackPan(track="drums", pan=2.0), "TrackPan.pan"),
        (lambda: O.Mute(track="drums", on="yes"), "Mute.on"),
        (lambda: O.Loop(start_s=1.0, end_s=2.0, times=1), "Loop.times"),
        (lambda: O.Loop(start_s=2.0, end_s=1.0), "Loop.end_s"),
        (lambda: O.Trim(start_s=0.0, end_s=-1.0), "Trim.end_s"),
        (lambda: O.Fade(in_s=100.0), "Fade.in_s"),
        (lambda: O.AddTrack(role="choir"), "AddTrack.role"),
        (lambda: O.TrackEffects(track="keys", chain=[{"type": "eq", "low_db": 40}]), "low_db"),
        (lambda: O.MasterEffects(chain=[{"type": "wah"}]), "wah"),
    ],
)
def test_out_of_range_values_are_refused_naming_the_field(make, field):
    with pytest.raises(InputError, match=field.replace(".", r"\.")):
        make()


def test_every_op_round_trips_through_dict():
    examples = [
        O.SetTempo(bpm=140.0), O.SetTempo(ratio=0.75), O.Transpose(semitones=-3),
        O.TrackGain(track="a", db=-3.5), O.TrackPan(track="a", pan=0.25), O.Mute(track="a"),
        O.Solo(track="a", on=False), O.TrackEffects(track="a", chain=(EQ(low_db=3.0), Reverb())),
        O.MasterEffects(chain=(Reverb(wet=0.1),)), O.Loop(start_s=1.0, end_s=2.0, times=4),
        O.Trim(start_s=0.5, end_s=3.0), O.Fade(in_s=1.0, out_s=2.0), O.RemoveTrack(track="a"),
        O.AddTrack(role="pad", seed=7, name="pad"), O.SplitHarmonicPercussive(track="a"),
    ]  # fmt: skip
    assert {type(e) for e in examples} == set(O.OP_TYPES.values())
    for op in examples:
        again = O.op_from_dict(json.loads(json.dumps(op.to_dict())))
        assert again == op
        assert op.label()


def test_unknown_type_and_fields_are_refused():
    with pytest.raises(InputError, match="'explode' is not a known operation"):
        O.op_from_dict({"type": "explode"})
    with pytest.raises(InputError, match="volume"):
        O.op_from_dict({"type": "track_gain", "track": "a", "volume": 3})


def test_schema_lists_every_operation_and_effect():
    schema = O.schema()
    consts = {v["properties"]["type"]["const"] for v in schema["$defs"]["op"]["oneOf"]}
    assert consts == set(O.OP_TYPES)
    gain = next(v for v in schema["$defs"]["op"]["oneOf"] if v["title"] == "TrackGain")
    assert gain["properties"]["db"]["minimum"] == -60 and gain["properties"]["db"]["maximum"] == 12
    assert "track" in gain["required"]
    json.dumps(schema)  # serialisable


def test_apply_undo_redo_round_trip(project):
    p1 = project.apply(O.TrackGain(track="keys", db=-6.0))
    p2 = p1.apply(O.TrackPan(track="bass", pan=-0.5), label="Bass left")
    assert [e.label for e in p2.history] == ["Volume keys -6.0 dB", "Bass left"]
    assert p2.undo().undo().ops == () and p2.undo().undo().redo().redo() == p2
    assert p2.state().track("keys").gain_db == -6.0
    # undo then a new edit drops the redo branch
    p3 = p2.undo().apply(O.Mute(track="drums"))
    assert [type(o) for o in p3.ops] == [O.TrackGain, O.Mute] and not p3.can_redo
    assert project.ops == ()  # the original never changes
    assert p2.undo().undo().undo() == p2.goto(0)


def test_last_setting_wins_and_solo_logic(project):
    p = project.apply(O.TrackGain(track="keys", db=-6.0)).apply(O.TrackGain(track="keys", db=-12.0))
    assert p.state().track("keys").gain_db == -12.0
    p = p.apply(O.Solo(track="bass")).apply(O.Mute(track="drums"))
    assert [t.name for t in p.state().audible()] == ["bass"]
    p = p.apply(O.Solo(track="bass", on=False))
    assert [t.name for t in p.state().audible()] == ["keys", "bass"]


def test_refused_ops_leave_the_project_unchanged(project):
    before = project.to_json()
    with pytest.raises(InputError, match=r"TrackGain\.track = 'vocals' does not exist"):
        project.apply(O.TrackGain(track="vocals", db=-3.0))
    with pytest.raises(InputError, match=r"Loop\.end_s = 10 is past the end"):
        project.apply(O.Loop(start_s=1.0, end_s=10.0))
    with pytest.raises(InputError, match=r"SetTempo\.bpm = 300 is out of range"):
        project.apply(O.SetTempo(bpm=300.0))
    removed = project.apply(O.RemoveTrack(track="drums"))
    with pytest.raises(InputError, match="'drums' does not exist"):
        removed.apply(O.Mute(track="drums"))
    assert project.to_json() == before


def test_timeline_lengths_and_limits(project):
    p = project.apply(O.Loop(start_s=1.0, end_s=2.0, times=3))
    assert p.state().base_seconds == pytest.approx(6.0)
    p = p.apply(O.Trim(start_s=0.5, end_s=5.5))
    assert p.state().base_seconds == pytest.approx(5.0)
    with pytest.raises(InputError, match=r"Trim\.end_s"):
        p.apply(O.Trim(start_s=0.0, end_s=5.6))
    fast = p.apply(O.SetTempo(bpm=150.0))
    assert fast.state().seconds == pytest.approx(5.0 * 120 / 150)
    with pytest.raises(InputError, match="the limit is 1800 s"):
        long = project.apply(O.Loop(start_s=0.0, end_s=4.0, times=16)).apply(
            O.Loop(start_s=0.0, end_s=64.0, times=16)
        )
        long.apply(O.Loop(start_s=0.0, end_s=1024.0, times=2))


def test_add_and_split_tracks(project):
    p = project.apply(O.AddTrack(role="bass", seed=3))
    assert p.ops[-1].name == "bass_2"  # "bass" exists already
    assert p.state().track("bass_2").kind == "midi"
    p = p.apply(O.SplitHarmonicPercussive(track="keys"))
    names = [t.name for t in p.state().tracks]
    assert "keys" not in names and {"keys_harmonic", "keys_percussive"} <= set(names)
    assert p.state().track("keys_percussive").is_drum
    with pytest.raises(InputError, match="not an original audio track"):
        p.apply(O.SplitHarmonicPercussive(track="bass_2"))
    no_key = from_audio_stems({"x": sine(seconds=1.0)}, sources=MemorySources(), title="t")
    with pytest.raises(InputError, match="tempo and key"):
        no_key.apply(O.AddTrack(role="drums"))


def test_json_round_trip_and_bad_files(project):
    p = (
        project.apply(O.SetTempo(ratio=1.1))
        .apply(O.TrackEffects(track="keys", chain=(Reverb(room_size=0.6),)))
        .apply(O.Loop(start_s=0.5, end_s=1.5, times=2))
        .undo()
    )
    back = Project.from_json(p.to_json())
    assert back == p and back.position == 2 and back.can_redo
    data = json.loads(p.to_json())

    newer = {**data, "format_version": 99}
    with pytest.raises(InputError, match="format_version = 99 is newer"):
        Project.from_dict(newer)
    unknown = {**data, "history": [{"label": "x", "op": {"type": "teleport"}}], "position": 1}
    with pytest.raises(InputError, match=r"history\[0\]\.op\.type = 'teleport'"):
        Project.from_dict(unknown)
    missing = {**data, "history": [{"label": "x", "op": {"type": "mute", "track": "ghost"}}], "position": 1}
    with pytest.raises(InputError, match=r"history\[0\]: Mute\.track = 'ghost' does not exist"):
        Project.from_dict(missing)
    past_end = {**data, "history": [], "ops": [{"type": "loop", "start_s": 1, "end_s": 99, "times": 2}]}
    del past_end["history"]
    with pytest.raises(InputError, match=r"ops\[0\]: Loop\.end_s = 99 is past the end"):
        Project.from_dict(past_end)
    with pytest.raises(InputError, match="not valid JSON"):
        Project.from_json("{nope")
    with pytest.raises(InputError, match=r"stems\[0\]\.kind"):
        Project.from_dict({**data, "stems": [{"name": "a", "kind": "video"}]})
    for sr in (4000, 44100.0, True, "44100"):
        with pytest.raises(InputError, match=f"sr must be an integer between 8000 and 192000 Hz, got {sr!r}"):
            Project.from_dict({**data, "sr": sr})
    assert Project.from_dict({**data, "sr": 48000}).sr == 48000


def test_save_load_versions_and_ownership(db, project):
    engine, storage = db
    alice = make_user(engine, "alice")
    bob = make_user(engine, "bob")
    with Session(engine) as s:
        pid = save_project(s, storage, owner_id=alice.id, project=project)
    edited = project.apply(O.TrackGain(track="keys", db=-3.0))
    with Session(engine) as s:
        assert save_project(s, storage, owner_id=alice.id, project=edited, project_id=pid) == pid
        assert load_project(s, storage, project_id=pid, owner_id=alice.id) == edited
        assert [r.id for r in list_projects(s, owner_id=alice.id)] == [pid]
        assert list_projects(s, owner_id=bob.id) == []
        with pytest.raises(NotFoundError):
            load_project(s, storage, project_id=pid, owner_id=bob.id)
        with pytest.raises(Exception, match="owner"):
            save_project(s, storage, owner_id=bob.id, project=project, project_id=pid)
    # exactly one JSON document is kept for the row (the old one is deleted on update)
    assert len(list(storage.root.rglob("*.json"))) == 1


def test_a_project_opened_from_a_track_outlives_the_track_and_its_owner(db):
    from core.auth import delete_account
    from core.db.models import Track
    from core.library import delete_track

    engine, storage = db
    alice = make_user(engine, "alice")
    bob = make_user(engine, "bob")
    tids = [make_track(engine, storage, alice.id, title=t, seconds=2.0) for t in ("one", "two")]
    with Session(engine) as s:
        # bob opens alice's public tracks in the editor and saves the projects
        projects = [from_track(s, storage, track_id=t, viewer_id=bob.id) for t in tids]
        pids = [save_project(s, storage, owner_id=bob.id, project=p) for p in projects]
        originals = [StorageSources(storage).audio(p.stems[0].audio, sr=SR) for p in projects]
        track_keys = [s.get(Track, t).audio_key for t in tids]
    # the stem is a copy of the track's file under its own key, byte for byte
    for p, key in zip(projects, track_keys, strict=True):
        assert p.stems[0].audio != key and storage.get(p.stems[0].audio) == storage.get(key)
    with Session(engine) as s:
        delete_track(s, storage, track_id=tids[0], user_id=alice.id)
        delete_account(s, storage, user_id=alice.id, password="correct horse 1")
    assert not any(storage.exists(k) for k in track_keys)
    with Session(engine) as s:
        for pid, y in zip(pids, originals, strict=True):
            project = load_project(s, storage, project_id=pid, owner_id=bob.id)
            np.testing.assert_array_equal(StorageSources(storage).audio(project.stems[0].audio, sr=SR), y)
    # a track the viewer may not see is not opened (and nothing is copied)
    carol = make_user(engine, "carol")
    private = make_track(engine, storage, carol.id, title="secret", visibility="private")
    files = sorted(storage.root.rglob("*.*"))
    with Session(engine) as s, pytest.raises(NotFoundError):
        from_track(s, storage, track_id=private, viewer_id=bob.id)
    assert sorted(storage.root.rglob("*.*")) == files


def test_deleting_a_project_removes_its_files_but_keeps_stems_that_another_version_or_a_track_uses(db):
    engine, storage = db
    alice = make_user(engine, "alice")
    bob = make_user(engine, "bob")
    src = StorageSources(storage)
    with Session(engine) as s:
        song = from_audio_stems(
            {"a": sine(seconds=1.0), "b": sine(330.0, seconds=1.0)}, sources=src, title="v1"
        )
        v1 = save_project(s, storage, owner_id=bob.id, project=song)
        v2 = save_project(s, storage, owner_id=bob.id, project=song.apply(O.TrackGain(track="a", db=-3.0)))
        # a project saved before the editor copied library tracks: its stem is the track's own file
        tid = make_track(engine, storage, alice.id, title="theirs", seconds=1.0)
        from core.db.models import Track

        track_key = s.get(Track, tid).audio_key
        legacy = replace(song, title="legacy", stems=(replace(song.stems[0], audio=track_key),))
        v3 = save_project(s, storage, owner_id=bob.id, project=legacy)
        docs = {pid: s.get(ProjectRow, pid).data_key for pid in (v1, v2, v3)}
    stems = [stem.audio for stem in song.stems]
    assert all(storage.exists(k) for k in [*stems, *docs.values(), track_key])

    with Session(engine) as s:
        # only the owner can delete, and others' projects are not revealed
        for pid, who in ((v1, alice.id), (10_000, bob.id)):
            with pytest.raises(NotFoundError):
                delete_project(s, storage, project_id=pid, owner_id=who)
        assert (count_projects(s, owner_id=bob.id), count_projects(s, owner_id=alice.id)) == (3, 0)
        delete_project(s, storage, project_id=v1, owner_id=bob.id)
        assert count_projects(s, owner_id=bob.id) == 2
        assert not storage.exists(docs[v1]) and all(storage.exists(k) for k in stems)  # v2 uses them
        assert [p.id for p in list_projects(s, owner_id=bob.id)] == [v3, v2]
        y = src.audio(load_project(s, storage, project_id=v2, owner_id=bob.id).stems[0].audio, sr=SR)
        np.testing.assert_allclose(y, sine(seconds=1.0), atol=1e-4)

        delete_project(s, storage, project_id=v3, owner_id=bob.id)
        assert storage.exists(track_key) and s.get(Track, tid) is not None  # alice's track is untouched
        delete_project(s, storage, project_id=v2, owner_id=bob.id)
        assert not any(storage.exists(k) for k in [*stems, *docs.values()])
        assert list_projects(s, owner_id=bob.id) == []
        with pytest.raises(NotFoundError):
            load_project(s, storage, project_id=v2, owner_id=bob.id)


def test_deleting_a_project_whose_document_is_lost_still_deletes_it(db):
    engine, storage = db
    bob = make_user(engine, "bob")
    with Session(engine) as s:
        song = from_audio_stems({"a": sine(seconds=0.5)}, sources=StorageSources(storage), title="x")
        pid = save_project(s, storage, owner_id=bob.id, project=song)
        storage.delete(s.get(ProjectRow, pid).data_key)
        delete_project(s, storage, project_id=pid, owner_id=bob.id)
        assert s.get(ProjectRow, pid) is None
    # its stem is left to `python -m core sweep` (the document that named it is gone)
    assert storage.exists(song.stems[0].audio)


def test_project_requires_valid_stems():
    with pytest.raises(InputError, match="at least one stem"):
        from_audio_stems({}, sources=MemorySources(), title="x")
    with pytest.raises(InputError, match="channels"):
        from_audio_stems({"a": np.zeros((3, 100), np.float32)}, sources=MemorySources(), title="x")


def test_project_files_validate_against_the_schema(project):
    jsonschema = pytest.importorskip("jsonschema")
    p = project
    for op in (
        O.SetTempo(bpm=130.0), O.TrackEffects(track="keys", chain=(Reverb(), EQ(mid_db=-3.0))),
        O.Loop(start_s=0.5, end_s=1.5, times=3), O.AddTrack(role="pad", seed=2), O.Fade(in_s=0.5),
        O.MasterEffects(chain=({"type": "compressor", "ratio": 3},)),
    ):  # fmt: skip
        p = p.apply(op)
    doc = json.loads(p.to_json())
    jsonschema.validate(doc, O.schema())
    bad = {**doc, "ops": [{"type": "track_gain", "track": "keys", "db": 99}]}
    with pytest.raises(jsonschema.ValidationError, match="99"):
        jsonschema.validate(bad, O.schema())


def test_upload_project_takes_tempo_key_chords_and_bar_grid_from_the_analysis():
    from types import SimpleNamespace

    from core.editor.project import from_upload

    analysis = SimpleNamespace(
        tempo_bpm=100.0, key="C major", chords=((0.6, 3.0, "C:maj"), (3.0, 5.4, "G:maj")),
        beats=(0.0, 0.6, 1.2), downbeats=(0.6, 3.0),
    )  # fmt: skip
    p = from_upload(sine(seconds=6.0), sr=SR, sources=MemorySources(), title="Up", analysis=analysis)
    assert [s.name for s in p.stems] == ["song"] and p.stems[0].kind == "audio" and not p.stems[0].is_drum
    assert p.meta["tempo_bpm"] == 100.0 and p.meta["key"] == "C major" and p.meta["first_beat_s"] == 0.6
    assert p.meta["chords"] == [[0.6, 3.0, "C:maj"], [3.0, 5.4, "G:maj"]]
    p = p.apply(O.SplitHarmonicPercussive(track="song")).apply(O.AddTrack(role="drums", seed=1))
    assert [t.name for t in p.state().tracks] == ["song_harmonic", "song_percussive", "drums"]
    unknown = from_upload(
        sine(seconds=2.0), sr=SR, sources=MemorySources(), title="x",
        analysis=SimpleNamespace(tempo_bpm=None, key=None, beats=()),
    )  # fmt: skip
    assert unknown.meta["tempo_bpm"] is None
    with pytest.raises(InputError, match="original tempo"):
        unknown.apply(O.SetTempo(bpm=100.0))
    assert unknown.apply(O.SetTempo(ratio=1.2)).state().seconds == pytest.approx(2.0 / 1.2)
