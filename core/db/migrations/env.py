"""Alembic environment of BeatTok Studio.

Run through :func:`core.db.engine.migrate` (which passes an open connection in
``config.attributes["connection"]``); no ``alembic.ini`` is needed. When no connection is given, the
URL is ``sqlalchemy.url`` from the config, else :func:`core.config.get_settings`'s ``database_url``.
"""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import core.db.models  # noqa: F401  (registers every table on SQLModel.metadata)

config = context.config
target_metadata = SQLModel.metadata


def _configure(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_migrations_offline() -> None:
    """Emit SQL to stdout instead of running it (``alembic upgrade --sql``)."""
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        from core.config import get_settings

        url = get_settings().database_url
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run migrations on the connection passed by ``migrate`` (or a new engine)."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return

    from core.db.engine import make_engine

    url = config.get_main_option("sqlalchemy.url")
    if not url:
        from core.config import get_settings

        url = get_settings().database_url
    engine = make_engine(url)
    with engine.begin() as conn:
        _configure(conn)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
