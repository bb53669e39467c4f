"""Database layer: SQLModel tables (:mod:`core.db.models`), engine and Alembic migrations
(:mod:`core.db.engine`) and plain queries taking a ``Session`` (:mod:`core.db.repo`).

Importing this package is cheap (no torch, no audio libraries).
"""
