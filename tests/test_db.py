"""Database layer: engine settings, migrations (idempotent, no drift), constraints, cascades, feed queries."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel

from core.db import repo
from core.db.engine import get_engine, make_engine, migrate
from core.db.models import Album, Job, Like, Project, Track, User, Visibility, utcnow
from core.errors import InputError

TABLES = {"users", "login_attempts", "tracks", "likes", "projects", "albums", "jobs"}


@pytest.fixture
def engine(tmp_path):
    eng = make_engine(f"sqlite:///{tmp_path / 'sub' / 'dir' / 'test.db'}")
    migrate(eng)
    yield eng
    eng.dispose()


def _user(s: Session, name: str) -> User:
    u = User(username=name, email=f"{name}@example.com", name=name.title(), password_hash="x")
    s.add(u)
    s.commit()
    s.refresh(u)
    return u


def _track(
    s: Session, owner: User, title: str = "t", *, vis=Visibility.public, age_h: float = 0.0, **kw
) -> Track:
    when = utcnow() - timedelta(hours=age_h)
    t = Track(
        owner_id=owner.id,
        title=title,
        audio_key="ab/" + "0" * 32 + ".wav",
        share_token=f"tok-{title}-{time.perf_counter_ns()}",
        visibility=vis,
        created_at=when,
        published_at=when if vis == Visibility.public else None,
        **kw,
    )
    s.add(t)
    s.commit()
    s.refresh(t)
    return t


def test_sqlite_pragmas_are_on_for_every_connection(engine, tmp_path):
    assert (tmp_path / "sub" / "dir" / "test.db").is_file()  # parent folders were created
    for _ in range(2):
        with engine.connect() as c:
            assert c.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert c.execute(text("PRAGMA journal_mode")).scalar().lower() == "wal"
            assert c.execute(text("PRAGMA busy_timeout")).scalar() == 5000
        engine.dispose()  # force a brand-new DBAPI connection next round


def test_migrate_creates_all_tables_and_is_idempotent(engine):
    insp = inspect(engine)
    assert set(insp.get_table_names()) >= TABLES
    with engine.connect() as c:
        rev = c.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    migrate(engine)
    migrate(engine)
    with engine.connect() as c:
        assert (
            c.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
            == rev
            == ["0002_feed_index"]
        )


def test_head_revision_read_from_the_files_is_alembics_head():
    from alembic.script import ScriptDirectory

    from core.db.engine import _alembic_config, head_revision

    assert head_revision() == ScriptDirectory.from_config(_alembic_config()).get_current_head()


def test_an_up_to_date_database_starts_without_importing_alembic(engine, tmp_path):
    url = str(engine.url)
    code = (
        "import sys; from core.db.engine import make_engine, migrate; "
        f"migrate(make_engine({url!r})); print('alembic' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[1]
    run = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False"
    # a new database still gets its tables (through Alembic)
    new = f"sqlite:///{tmp_path / 'new.db'}"
    code = code.replace(repr(url), repr(new))
    run = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "True", run.stderr
    fresh = make_engine(new)
    assert set(inspect(fresh).get_table_names()) >= TABLES
    fresh.dispose()


def test_migrations_match_models_exactly(engine):
    with engine.connect() as c:
        ctx = MigrationContext.configure(c, opts={"compare_type": True, "render_as_batch": True})
        diff = compare_metadata(ctx, SQLModel.metadata)
    assert diff == []


def test_concurrent_migrations_from_threads_and_processes(tmp_path):
    url = f"sqlite:///{tmp_path / 'race.db'}"
    code = f"from core.db.engine import make_engine, migrate; migrate(make_engine({url!r}))"
    root = Path(__file__).resolve().parents[1]
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=root) for _ in range(2)]
    errors: list[BaseException] = []

    def run():
        try:
            eng = make_engine(url)
            migrate(eng)
            eng.dispose()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert errors == []
    eng = make_engine(url)
    with eng.connect() as c:
        versions = c.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    assert versions == ["0002_feed_index"]
    eng.dispose()


def test_failed_migration_leaves_nothing_behind(tmp_path, monkeypatch):
    from alembic import command

    real_upgrade = command.upgrade

    def upgrade_then_crash(cfg, revision):
        real_upgrade(cfg, revision)  # every table is created ...
        raise RuntimeError("power cut")  # ... and then the process dies before the commit

    monkeypatch.setattr(command, "upgrade", upgrade_then_crash)
    eng = make_engine(f"sqlite:///{tmp_path / 'atomic.db'}")
    with pytest.raises(RuntimeError, match="power cut"):
        migrate(eng)
    assert inspect(eng).get_table_names() == []
    monkeypatch.undo()
    migrate(eng)  # and a later start migrates cleanly
    assert set(inspect(eng).get_table_names()) >= TABLES
    eng.dispose()


def test_upgrade_from_first_revision(tmp_path):
    from alembic import command

    from core.db.engine import _alembic_config

    eng = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    cfg = _alembic_config(eng)
    with eng.begin() as c:
        cfg.attributes["connection"] = c
        command.upgrade(cfg, "0001_initial")
    assert "ix_tracks_feed" not in {i["name"] for i in inspect(eng).get_indexes("tracks")}
    migrate(eng)
    assert "ix_tracks_feed" in {i["name"] for i in inspect(eng).get_indexes("tracks")}
    eng.dispose()


def test_downgrade_to_base_and_back(tmp_path):
    from alembic import command

    from core.db.engine import _alembic_config

    eng = make_engine(f"sqlite:///{tmp_path / 'down.db'}")
    migrate(eng)
    cfg = _alembic_config(eng)
    with eng.begin() as c:
        cfg.attributes["connection"] = c
        command.downgrade(cfg, "base")
    assert set(inspect(eng).get_table_names()) == {"alembic_version"}
    migrate(eng)
    assert set(inspect(eng).get_table_names()) >= TABLES
    eng.dispose()


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"genre": "lofi"}, {"tag": "chill"}, {"query": "rain"}, {"genre": "pop", "tag": "x", "query": "y"}],
)
@pytest.mark.parametrize("sort", ["new", "trending"])
def test_feed_queries_read_only_the_covering_index(engine, sort, kwargs):
    """The feed scales because no feed query touches the wide track rows (checked with the query plan)."""
    from sqlalchemy import and_, func, select
    from sqlalchemy.dialects import sqlite

    conds = repo.feed_conditions(**kwargs)
    if sort == "new":
        stmt = select(Track.id).where(and_(*conds)).order_by(Track.published_at.desc(), Track.id.desc())
    else:
        stmt = select(Track.id).where(and_(*conds)).order_by(repo.trending_score("sqlite", utcnow()).desc())
    count = select(func.count()).select_from(Track).where(and_(*conds))
    with engine.connect() as c:
        for q in (stmt.limit(10), count):
            sql = str(q.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
            plan = " | ".join(row[-1] for row in c.execute(text("EXPLAIN QUERY PLAN " + sql)))
            assert "COVERING INDEX" in plan, plan


def test_feed_indexes_exist(engine):
    idx = {i["name"]: i for i in inspect(engine).get_indexes("tracks")}
    assert idx["ix_tracks_visibility_created_at"]["column_names"] == ["visibility", "created_at"]
    assert idx["ix_tracks_feed"]["column_names"][:2] == ["visibility", "published_at"]
    assert idx["ix_tracks_genre"]["column_names"] == ["genre"]
    assert idx["ix_tracks_share_token"]["unique"]


def test_get_engine_uses_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("BEATTOK_DATA_DIR", str(tmp_path / "d2"))
    eng = get_engine()
    try:
        assert (tmp_path / "d2" / "beattok.db").is_file()
        assert set(inspect(eng).get_table_names()) >= TABLES
    finally:
        eng.dispose()


def test_unique_like_per_user_and_track(engine):
    with Session(engine) as s:
        u = _user(s, "alice")
        t = _track(s, u)
        s.add(Like(user_id=u.id, track_id=t.id))
        s.commit()
        s.add(Like(user_id=u.id, track_id=t.id))
        with pytest.raises(IntegrityError):
            s.commit()


def test_unique_username_and_share_token(engine):
    with Session(engine) as s:
        u = _user(s, "bob")
        s.add(User(username="bob", email="other@example.com", name="B", password_hash="x"))
        with pytest.raises(IntegrityError):
            s.commit()
        s.rollback()
        t = _track(s, u)
        s.add(Track(owner_id=u.id, title="dup", audio_key=t.audio_key, share_token=t.share_token))
        with pytest.raises(IntegrityError):
            s.commit()


def test_foreign_keys_reject_orphans(engine):
    with Session(engine) as s:
        s.add(Like(user_id=999, track_id=999))
        with pytest.raises(IntegrityError):
            s.commit()


def test_deleting_user_cascades_to_everything_they_own(engine):
    with Session(engine) as s:
        a, b = _user(s, "alice"), _user(s, "bob")
        ta, tb = _track(s, a, "a"), _track(s, b, "b")
        s.add_all(
            [
                Like(user_id=a.id, track_id=tb.id),
                Like(user_id=b.id, track_id=ta.id),
                Project(owner_id=a.id, title="p", track_id=tb.id),
                Project(owner_id=b.id, title="q", track_id=ta.id),
                Album(owner_id=a.id, name="al"),
                Job(owner_id=a.id, kind="train"),
            ]
        )
        s.commit()
        s.execute(text("DELETE FROM users WHERE id = :i"), {"i": a.id})
        s.commit()
        s.expire_all()
        assert s.execute(text("SELECT count(*) FROM tracks")).scalar() == 1
        assert s.execute(text("SELECT count(*) FROM likes")).scalar() == 0
        assert s.execute(text("SELECT count(*) FROM albums")).scalar() == 0
        assert s.execute(text("SELECT count(*) FROM jobs")).scalar() == 0
        # bob's project survives; its link to alice's deleted track is cleared
        rows = s.execute(text("SELECT title, track_id FROM projects")).all()
        assert [tuple(r) for r in rows] == [("q", None)]


def test_feed_new_is_public_only_and_newest_first(engine):
    with Session(engine) as s:
        u = _user(s, "alice")
        _track(s, u, "old", age_h=10)
        _track(s, u, "new", age_h=1)
        _track(s, u, "mid", age_h=5)
        _track(s, u, "secret", vis=Visibility.private)
        _track(s, u, "link", vis=Visibility.unlisted)
        titles = [t.title for t in repo.feed_page(s, sort="new")]
        assert titles == ["new", "mid", "old"]
        assert repo.count_feed(s) == 3
        assert [t.title for t in repo.feed_page(s, limit=2, offset=1)] == ["mid", "old"]


def test_feed_ids_rank_like_the_feed_and_public_tracks_keep_order_and_drop_hidden_ones(engine):
    with Session(engine) as s:
        u = _user(s, "alice")
        tracks = {name: _track(s, u, name, age_h=age) for name, age in (("old", 10), ("new", 1), ("mid", 5))}
        ids = repo.feed_ids(s, sort="new")
        assert ids == [t.id for t in repo.feed_page(s, sort="new")]
        assert ids == [tracks[n].id for n in ("new", "mid", "old")]
        assert repo.feed_ids(s, limit=1, offset=2) == [tracks["old"].id]
        hidden = s.get(Track, tracks["mid"].id)
        hidden.visibility = Visibility.private
        s.add(hidden)
        s.commit()
        got = repo.public_tracks(s, track_ids=[tracks["old"].id, tracks["mid"].id, tracks["new"].id, 10_000])
        assert [t.title for t in got] == ["old", "new"]  # the given order; private and unknown ids left out
        assert repo.public_tracks(s, track_ids=[]) == []


def test_feed_trending_formula(engine):
    with Session(engine) as s:
        u = _user(s, "alice")
        now = utcnow()
        # scores: (likes*2 + plays*0.5 + downloads) / (age_h + 2) ** 1.5
        _track(s, u, "fresh_few", age_h=0, like_count=1)  # 2 / 2**1.5 = 0.71
        _track(s, u, "old_many", age_h=98, like_count=200)  # 400 / 1000 = 0.4
        _track(s, u, "plays", age_h=2, play_count=40)  # 20 / 8 = 2.5
        _track(s, u, "downloads", age_h=7, download_count=30)  # 30 / 27 = 1.11
        got = [t.title for t in repo.feed_page(s, sort="trending", now=now)]
        assert got == ["plays", "downloads", "fresh_few", "old_many"]


def test_feed_filters(engine):
    with Session(engine) as s:
        u = _user(s, "alice")
        _track(s, u, "Rainy Night", genre="lofi", tags="chill,night", artist_name="Mira")
        _track(s, u, "Sunny 100%", genre="Pop", tags="summer,nightlife", artist_name="DJ X")
        _track(s, u, "Hidden lofi", genre="lofi", tags="chill", vis=Visibility.private)
        assert {t.title for t in repo.feed_page(s, genre="lofi")} == {"Rainy Night"}
        assert {t.title for t in repo.feed_page(s, genre="POP")} == {"Sunny 100%"}
        assert {t.title for t in repo.feed_page(s, tag="night")} == {"Rainy Night"}  # not "nightlife"
        assert {t.title for t in repo.feed_page(s, tag="NIGHTLIFE")} == {"Sunny 100%"}
        assert {t.title for t in repo.feed_page(s, query="rAiNy")} == {"Rainy Night"}
        assert {t.title for t in repo.feed_page(s, query="mira")} == {"Rainy Night"}
        assert {t.title for t in repo.feed_page(s, query="100%")} == {"Sunny 100%"}
        # '%' and '_' are literal, not wildcards
        assert {t.title for t in repo.feed_page(s, query="%")} == {"Sunny 100%"}
        assert repo.feed_page(s, query="_") == []
        assert repo.feed_page(s, query="y%n") == []
        assert repo.count_feed(s, genre="lofi", tag="chill") == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sort": "random"}, "Feed sort 'random' is not supported"),
        ({"limit": 0}, "Feed limit 0 is out of range: use 1-1000"),
        ({"limit": 1001}, "Feed limit 1001 is out of range"),
        ({"offset": -1}, "Feed offset -1 is out of range"),
        ({"query": "x" * 101}, "the limit is 100"),
        ({"tag": 5}, "must be text"),
    ],
)
def test_feed_rejects_bad_parameters(engine, kwargs, message):
    with Session(engine) as s, pytest.raises(InputError, match=message):
        repo.feed_page(s, **kwargs)


def test_seed_fake_tracks_and_feed_speed(engine):
    with Session(engine) as s:
        u = _user(s, "bench")
        assert repo.seed_fake_tracks(s, n=2000, owner_id=u.id, seed=1) == 2000
        assert s.execute(text("SELECT count(*) FROM tracks")).scalar() == 2000
        public = repo.count_feed(s)
        assert 1400 < public < 1800
        page = repo.feed_page(s, sort="trending", limit=10)
        assert len(page) == 10 and all(t.visibility == Visibility.public for t in page)
        newest = repo.feed_page(s, sort="new", limit=10)
        dates = [t.published_at for t in newest]
        assert dates == sorted(dates, reverse=True)
