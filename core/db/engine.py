"""Database engine and Alembic migrations.

One engine per process (callers cache :func:`get_engine`, e.g. ``components.resources.engine``),
one ``Session`` per user action::

    from sqlmodel import Session
    from core.db.engine import get_engine

    with Session(get_engine()) as session:
        ...

SQLite (the default, ``<data dir>/beattok.db``) is opened in WAL mode with foreign keys ON and a
5 s busy timeout on every connection, so several Streamlit sessions can read while one writes.
Any other SQLAlchemy URL (``DATABASE_URL``, e.g. PostgreSQL) is used as-is.

Migrations
----------
The schema is owned by Alembic (``core/db/migrations``); :func:`migrate` runs ``upgrade head``
with a configuration built in code, so no ``alembic.ini`` is needed to run the app.
``SQLModel.metadata.create_all`` is never used outside tests.

To write a new migration after changing :mod:`core.db.models`, autogenerate it against a
database that is at ``head`` (no ``alembic.ini`` needed)::

    python -c "from core.db.engine import make_revision; make_revision('add foo to tracks')"

then read and adjust the new file in ``core/db/migrations/versions/`` and commit it.
``tests/test_db.py`` fails if the models and the migrations ever drift apart.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from functools import cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from core.config import Settings, get_settings

#: Folder of the Alembic environment (env.py, script.py.mako, versions/).
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

#: SQLite busy timeout in milliseconds.
BUSY_TIMEOUT_MS = 5000


@cache
def _sqlite_has_power() -> bool:
    """Whether the linked SQLite has the math functions (``power``) built in."""
    con = sqlite3.connect(":memory:")
    try:
        con.execute("SELECT power(2.0, 1.5)")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        con.close()


def _pow(x: float | None, y: float | None) -> float | None:
    """``power`` for SQLite builds without math functions."""
    if x is None or y is None:
        return None
    try:
        return float(x) ** float(y)
    except (OverflowError, ZeroDivisionError, ValueError):
        return None


def _on_sqlite_connect(dbapi_connection, _record) -> None:
    """Per-connection SQLite setup: WAL, foreign keys, busy timeout (and ``power`` if missing)."""
    cur = dbapi_connection.cursor()
    try:
        cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")
    finally:
        cur.close()
    if not _sqlite_has_power():
        dbapi_connection.create_function("power", 2, _pow, deterministic=True)


def make_engine(url: str) -> Engine:
    """Create an engine for ``url``.

    For SQLite files the parent folder is created, and every connection gets
    ``journal_mode=WAL``, ``foreign_keys=ON``, ``busy_timeout=5000`` and
    ``check_same_thread=False`` (Streamlit runs sessions on several threads). Other URLs are used as-is.

    Parameters
    ----------
    url : str
        Any SQLAlchemy URL, e.g. ``"sqlite:////tmp/x/beattok.db"`` or ``"postgresql+psycopg://..."``.

    Returns
    -------
    sqlalchemy.Engine

    Examples
    --------
    >>> from sqlalchemy import text
    >>> eng = make_engine("sqlite://")
    >>> with eng.connect() as c:
    ...     c.execute(text("PRAGMA foreign_keys")).scalar()
    1
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    database = parsed.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000})
    event.listen(engine, "connect", _on_sqlite_connect)
    return engine


def _alembic_config(engine: Engine | None = None):
    """An Alembic ``Config`` built in code (no ini file), bound to ``engine`` when given."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if engine is not None:
        # ConfigParser interpolation: escape '%' in URLs with passwords.
        url = engine.url.render_as_string(hide_password=False)
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


#: Alembic keeps its migration context in module globals, so one process migrates one database at a
#: time; this lock serialises callers on different threads (a lock, not mutable data).
_MIGRATE_LOCK = threading.Lock()


_REVISION_LINE = re.compile(r"""^(down_revision|revision)\b[^=\n]*=\s*(?:['"]([^'"]+)['"]|None)""", re.M)


@cache
def head_revision() -> str | None:
    """The newest migration's revision id, read from the files in ``versions/``.

    Reading two assignments per file avoids importing Alembic (about 0.3 s) on every app start,
    when the database is already up to date. None when the files do not name exactly one head
    (then :func:`migrate` leaves the question to Alembic).
    """
    revisions, parents = set(), set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        found = dict((m.group(1), m.group(2)) for m in _REVISION_LINE.finditer(path.read_text()))
        if found.get("revision"):
            revisions.add(found["revision"])
        if found.get("down_revision"):
            parents.add(found["down_revision"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _is_at_head(engine: Engine) -> bool:
    """Whether the database records exactly the newest revision (a read; no lock, no Alembic)."""
    head = head_revision()
    if head is None:
        return False
    try:
        with engine.connect() as connection:
            rows = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all()
    except DBAPIError:  # a new database: no version table yet
        return False
    return rows == [head]


def migrate(engine: Engine) -> None:
    """Bring the database of ``engine`` to the newest schema (Alembic ``upgrade head``).

    Migrating an empty database creates every table; migrating an up-to-date one does nothing (and
    does not import Alembic: the recorded revision is compared with :func:`head_revision`).
    On SQLite the whole upgrade runs in one ``BEGIN IMMEDIATE`` transaction: it is atomic (a crash
    half-way leaves the previous schema) and processes that start at the same time wait for each
    other (``busy_timeout``) instead of racing to create the same tables.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        Engine from :func:`make_engine`.
    """
    if _is_at_head(engine):
        return
    from alembic import command

    cfg = _alembic_config(engine)
    with _MIGRATE_LOCK, engine.connect() as connection:
        cfg.attributes["connection"] = connection
        if connection.dialect.name != "sqlite":
            with connection.begin():
                command.upgrade(cfg, "head")
            return
        # pysqlite does not BEGIN before DDL by itself: take control of the transaction.
        dbapi = connection.connection.driver_connection
        saved = dbapi.isolation_level
        dbapi.isolation_level = None
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                command.upgrade(cfg, "head")
            except BaseException:
                dbapi.rollback()
                raise
            dbapi.commit()
        finally:
            dbapi.isolation_level = saved
            connection.rollback()  # reset SQLAlchemy's view of the (already finished) transaction


def get_engine(settings: Settings | None = None) -> Engine:
    """Return a migrated engine for ``settings.database_url`` (callers cache the result).

    Parameters
    ----------
    settings : Settings, optional
        Defaults to :func:`core.config.get_settings`.
    """
    settings = settings or get_settings()
    engine = make_engine(settings.database_url)
    migrate(engine)
    return engine


def make_revision(message: str, *, url: str | None = None) -> None:
    """Autogenerate a new migration from the difference between the models and the database.

    The database (``url``, default: the configured one) is first migrated to ``head`` so that the
    new revision contains only the changes made to :mod:`core.db.models` since. Developer tool.

    Parameters
    ----------
    message : str
        Short description, used in the revision file name.
    url : str, optional
        Database URL; defaults to ``get_settings().database_url``.
    """
    from alembic import command

    engine = make_engine(url or get_settings().database_url)
    migrate(engine)
    cfg = _alembic_config(engine)
    with _MIGRATE_LOCK, engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.revision(cfg, message=message, autogenerate=True)
