"""Operator maintenance: find and delete stored media files that nothing references.

Files can outlive every reference to them: the editor stores an upload's stems (or its copy of a library
track's audio) as soon as a song is opened or generated, and if the project is never saved no row ever
points at them; a crash between a storage write and its database commit leaves the same kind of orphan.
:func:`sweep_orphans` removes them. It is run by an operator (``python -m core sweep``, see
:mod:`core.cli.sweep`), never by a page.

A stored key is *referenced*, and kept, when

- it is the value of any storage-key column (:data:`core.db.models.STORAGE_KEY_COLUMNS`: track audio,
  MP3 and cover, project document, album cover, job result), or
- it is mentioned inside any project document (editor stems are referenced only there) or any job's
  ``params_json`` (found with :func:`core.storage.find_keys`).

Only unreferenced files older than ``older_than_s`` (two days by default) are deleted: a file written a
moment ago may belong to a request in flight, or to an editor session that has not saved yet. The
store is listed *before* the references are read, so a file written during the sweep is never a
candidate.

Safety: when a project document cannot be read (missing, unreadable, not UTF-8 JSON) the stems it
mentions are unknown, so the sweep deletes nothing and names the document in
:attr:`SweepReport.blocked`; fix or delete that project and run it again. It also deletes nothing when
the database references no file at all while the store holds files (almost always a wrong
``DATABASE_URL`` or data folder, where every file would look orphaned). A dry run reports what would
be deleted. Deleting is idempotent, and an error on one file is recorded and does not stop the sweep.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass

from sqlalchemy import select
from sqlmodel import Session

from core.db.models import STORAGE_KEY_COLUMNS, Job, Project
from core.errors import InputError, StudioError
from core.storage import find_keys

log = logging.getLogger(__name__)

#: Default minimum age of a file the sweep may delete: two days.
DEFAULT_OLDER_THAN_S = 2 * 86400.0


@dataclass(frozen=True)
class SweepReport:
    """What :func:`sweep_orphans` found and did.

    Attributes
    ----------
    found : int
        Stored files (valid keys) listed.
    referenced : int
        Of those, how many the database references (columns, project documents, job parameters).
    fresh : int
        Unreferenced files kept because they are younger than ``older_than_s``.
    orphans : tuple of str
        Unreferenced files older than ``older_than_s``, sorted: deleted, or that would be deleted.
    orphan_bytes : int
        Total size of ``orphans``.
    deleted : tuple of str
        Files actually deleted (empty for a dry run or a blocked sweep).
    bytes_freed : int
        Total size of ``deleted``.
    failed : tuple of (str, str)
        ``(key, error)`` for each orphan whose deletion raised.
    blocked : tuple of str
        Why nothing was deleted (e.g. an unreadable project document); empty when deletion ran.
    dangling : int
        References to keys that are not in the store (informational; nothing to delete).
    dry_run : bool
        Whether this was a dry run.
    older_than_s : float
        The age threshold used.
    """

    found: int
    referenced: int
    fresh: int
    orphans: tuple[str, ...]
    orphan_bytes: int
    deleted: tuple[str, ...]
    bytes_freed: int
    failed: tuple[tuple[str, str], ...]
    blocked: tuple[str, ...]
    dangling: int
    dry_run: bool
    older_than_s: float

    def to_dict(self) -> dict:
        """A JSON-ready dict of every field (tuples become lists)."""
        d = asdict(self)
        d["failed"] = [list(pair) for pair in self.failed]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def summary(self) -> str:
        """A few human-readable lines for the CLI."""
        mb = 1024 * 1024
        verb = "would delete" if self.dry_run or self.blocked else "deleted"
        count = len(self.orphans) if self.dry_run or self.blocked else len(self.deleted)
        size = self.orphan_bytes if self.dry_run or self.blocked else self.bytes_freed
        lines = [
            f"{self.found} stored file(s): {self.referenced} referenced, {self.fresh} unreferenced but "
            f"younger than {self.older_than_s / 3600:g} h (kept), {len(self.orphans)} orphan(s)",
            f"{verb} {count} file(s), {size / mb:.1f} MB" + (" (dry run)" if self.dry_run else ""),
        ]
        if self.dangling:
            lines.append(f"{self.dangling} reference(s) to files missing from the store")
        lines += [f"failed to delete {key}: {err}" for key, err in self.failed]
        if self.blocked:
            lines.append("NOTHING WAS DELETED:")
            lines += [f"  {reason}" for reason in self.blocked]
        return "\n".join(lines)


def referenced_keys(session: Session, storage) -> tuple[set[str], list[str]]:
    """Every storage key the database references, and the project documents that could not be read.

    Returns
    -------
    keys : set of str
        Values of every :data:`~core.db.models.STORAGE_KEY_COLUMNS` column, plus every key mentioned
        in a readable project document or in any job's ``params_json``.
    unreadable : list of str
        One message per project document that could not be read, decoded as UTF-8 or parsed as JSON.
    """
    keys: set[str] = set()
    for column, _owner in STORAGE_KEY_COLUMNS:
        keys.update(k for k in session.execute(select(column).where(column.is_not(None))).scalars() if k)
    unreadable: list[str] = []
    rows = session.execute(
        select(Project.id, Project.data_key).where(Project.data_key.is_not(None)).order_by(Project.id)
    ).all()
    for project_id, data_key in rows:
        try:
            text = storage.get(data_key).decode("utf-8")
            json.loads(text)
        except (StudioError, OSError, ValueError) as exc:
            unreadable.append(f"project {project_id}: document {data_key!r} cannot be read ({exc})")
            continue
        keys |= find_keys(text)
    for params in session.execute(select(Job.params_json)).scalars():
        keys |= find_keys(params or "")
    return keys, unreadable


def _size(storage, key: str) -> int:
    try:
        path = storage.open_path(key)
        return path.stat().st_size if path is not None else len(storage.get(key))
    except (StudioError, OSError):
        return 0  # vanished meanwhile: nothing to free


def sweep_orphans(
    session: Session,
    storage,
    *,
    older_than_s: float = DEFAULT_OLDER_THAN_S,
    dry_run: bool = False,
    now: float | None = None,
) -> SweepReport:
    """Delete stored files that nothing references and that are older than ``older_than_s``.

    Parameters
    ----------
    session : sqlmodel.Session
        A session on the product's database (only read).
    storage : core.storage.Storage
        The media store; needs ``iter_keys`` besides the usual methods.
    older_than_s : float, optional
        Minimum age in seconds (by modification time) of a file that may be deleted; >= 0.
        Default two days: keep it longer than an editing session may stay unsaved.
    dry_run : bool, optional
        Report what would be deleted without deleting anything.
    now : float, optional
        The current POSIX time (default ``time.time()``), for tests.

    Returns
    -------
    SweepReport

    Raises
    ------
    InputError
        ``older_than_s`` is negative or not finite.

    Notes
    -----
    Nothing is deleted (and :attr:`SweepReport.blocked` says why) when a project document cannot
    be read, or when the database references no file at all while the store holds some.
    """
    if isinstance(older_than_s, bool) or not isinstance(older_than_s, int | float):
        raise InputError(f"older_than_s must be a number of seconds, got {older_than_s!r}.")
    if not math.isfinite(older_than_s) or older_than_s < 0:
        raise InputError(f"older_than_s = {older_than_s!r} is out of range: use 0 or more seconds.")
    now = time.time() if now is None else float(now)
    cutoff = now - float(older_than_s)

    # List the store first: a file written after this point is never a candidate, even if its row
    # is committed only after the references below were read.
    stored = dict(storage.iter_keys())
    references, unreadable = referenced_keys(session, storage)

    unreferenced = {k: m for k, m in stored.items() if k not in references}
    orphans = tuple(sorted(k for k, m in unreferenced.items() if m < cutoff))
    sizes = {k: _size(storage, k) for k in orphans}
    blocked = list(unreadable)
    if blocked:
        blocked.append("fix or delete the project(s) above, then sweep again")
    if not references and stored:
        blocked.append(
            f"the database references none of the {len(stored)} stored file(s): check DATABASE_URL and "
            "BEATTOK_DATA_DIR point at the same installation (if every account really is gone, "
            "remove the media folder by hand)"
        )

    deleted: list[str] = []
    failed: list[tuple[str, str]] = []
    if not dry_run and not blocked:
        for key in orphans:
            try:
                storage.delete(key)
            except Exception as exc:  # one bad file must not stop the sweep
                log.warning("sweep: could not delete %s: %s", key, exc)
                failed.append((key, f"{type(exc).__name__}: {exc}"))
                continue
            log.info("sweep: deleted orphan %s (%d bytes)", key, sizes[key])
            deleted.append(key)

    return SweepReport(
        found=len(stored),
        referenced=len(stored.keys() & references),
        fresh=len(unreferenced) - len(orphans),
        orphans=orphans,
        orphan_bytes=sum(sizes.values()),
        deleted=tuple(deleted),
        bytes_freed=sum(sizes[k] for k in deleted),
        failed=tuple(failed),
        blocked=tuple(blocked),
        dangling=len(references - stored.keys()),
        dry_run=bool(dry_run),
        older_than_s=float(older_than_s),
    )
