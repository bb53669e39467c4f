"""``python -m core sweep [--older-than-hours H] [--dry-run] [--json]``: delete orphaned media files.

Deletes stored files that no database row, project document or job references and that are older
than ``H`` hours (default 48); see :mod:`core.maintenance`. With ``--json`` prints one object on
stdout (:meth:`core.maintenance.SweepReport.to_dict`)::

    {"found", "referenced", "fresh", "orphans", "orphan_bytes", "deleted", "bytes_freed", "failed",
     "blocked", "dangling", "dry_run", "older_than_s"}

Exit status: 0 when the sweep ran (or a dry run finished), 1 when it was blocked (nothing deleted,
reasons in ``blocked``) or a file could not be deleted, 2 on bad arguments or a missing database.
"""

from __future__ import annotations

import argparse
import json
import math


def _hours(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of hours") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is out of range: use 0 or more hours")
    return value


def register(sub) -> None:
    """Add the ``sweep`` subcommand."""
    p = sub.add_parser(
        "sweep", help="delete stored media files that nothing references (operators; see --dry-run)"
    )
    p.add_argument(
        "--older-than-hours",
        type=_hours,
        default=48.0,
        metavar="H",
        help="only delete files at least this old (default 48; newer ones may belong to requests in flight)",
    )
    p.add_argument("--dry-run", action="store_true", help="report what would be deleted, delete nothing")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Open the configured database and store, sweep, print; returns the exit status."""
    from sqlalchemy.engine import make_url
    from sqlmodel import Session

    from core.config import get_settings
    from core.db.engine import get_engine
    from core.errors import NotFoundError
    from core.maintenance import sweep_orphans
    from core.storage import get_storage

    settings = get_settings()
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        from pathlib import Path

        if not url.database or url.database == ":memory:" or not Path(url.database).is_file():
            # Never create an empty database here: every stored file would look orphaned.
            raise NotFoundError(
                f"No database at {url.database!r}: set BEATTOK_DATA_DIR or DATABASE_URL to the "
                "installation whose media should be swept."
            )
    engine = get_engine(settings)
    try:
        with Session(engine) as session:
            report = sweep_orphans(
                session,
                get_storage(settings),
                older_than_s=args.older_than_hours * 3600.0,
                dry_run=args.dry_run,
            )
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        print(f"media: {settings.media_dir}")
        print(report.summary())
    return 1 if report.blocked or report.failed else 0
