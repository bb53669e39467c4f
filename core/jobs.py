"""Background jobs: run a callable in a daemon thread and keep its state in the ``jobs`` table.

A :class:`JobRunner` is the one registry of running jobs in a process. The UI creates it once
(``st.cache_resource``) and passes it explicitly to whatever needs it; nothing here is global. A job
is a ``kind`` (e.g. ``"kpop_train"``) plus a callable taking a :class:`JobContext`. Everything a page
needs to show the job lives in its :class:`core.db.models.Job` row, so a rerun or a reloaded page
finds it again by owner and kind (:meth:`JobRunner.latest`):

- ``status``: ``queued`` -> ``running`` -> ``done`` | ``failed`` | ``cancelled``;
- ``progress`` and ``message``: the last progress report;
- ``params_json``: ``{"params": {...}, "state": {...}, "result": {...}}``: the submitted parameters,
  live state the job publishes with :meth:`JobContext.publish` (e.g. a loss history for a live
  chart) and the JSON result the callable returned;
- ``result_key``: a storage key the job set with :meth:`JobContext.set_result_key` (e.g. a model).

Rules: at most one active (queued or running) job per owner and kind, and at most
``max_active`` active jobs in the process (memory stays bounded); a second one is refused with
:class:`JobConflictError`. :meth:`JobRunner.cancel` sets a flag the callable reads through
:meth:`JobContext.should_stop` (or :meth:`JobContext.progress` raises
:class:`core.errors.CancelledError`). When a runner starts, jobs left ``queued``/``running`` by a
previous process (the app was restarted) are marked ``failed``: use one runner per database.

Examples
--------
>>> from core.db.engine import make_engine
>>> from sqlmodel import SQLModel
>>> eng = make_engine("sqlite://")
>>> SQLModel.metadata.create_all(eng)
>>> runner = JobRunner(eng)
>>> job_id = runner.submit(owner_id=None, kind="demo", fn=lambda ctx: {"answer": 42})
>>> runner.wait(job_id, timeout=5).result
{'answer': 42}
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from core.db.models import Job, utcnow
from core.errors import CancelledError, LimitError, NotFoundError, StudioError

log = logging.getLogger(__name__)

#: Statuses of a job that is not finished.
ACTIVE_STATUSES = ("queued", "running")
#: Seconds between two progress writes to the database (the last report is always written).
PROGRESS_WRITE_INTERVAL_S = 0.5


class JobConflictError(LimitError):
    """A job cannot start because a similar one is already active."""


@dataclass(frozen=True)
class JobState:
    """A snapshot of a job row, with its JSON decoded."""

    id: int
    owner_id: int | None
    kind: str
    status: str
    progress: float
    message: str
    params: dict
    state: dict
    result: dict
    result_key: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def active(self) -> bool:
        """Whether the job is queued or running."""
        return self.status in ACTIVE_STATUSES

    @classmethod
    def from_row(cls, row: Job) -> JobState:
        """Decode a :class:`Job` row."""
        try:
            doc = json.loads(row.params_json or "{}")
        except ValueError:
            doc = {}
        if not isinstance(doc, dict):
            doc = {}
        return cls(
            id=int(row.id),
            owner_id=row.owner_id,
            kind=row.kind,
            status=row.status,
            progress=float(row.progress),
            message=row.message,
            params=dict(doc.get("params") or {}),
            state=dict(doc.get("state") or {}),
            result=dict(doc.get("result") or {}),
            result_key=row.result_key,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class JobContext:
    """What a job's callable gets: its parameters, progress, cancellation and result channels."""

    def __init__(self, runner: JobRunner, job_id: int, params: dict, cancel: threading.Event) -> None:
        self.job_id = job_id
        self.params = params
        self._runner = runner
        self._cancel = cancel
        self._last_write = 0.0
        self._state: dict = {}

    def should_stop(self) -> bool:
        """Whether a cancel was requested."""
        return self._cancel.is_set()

    def progress(self, fraction: float, message: str = "") -> None:
        """Record progress (throttled database write); raises CancelledError once cancelled.

        Suitable as a ``core.progress.ProgressFn``.
        """
        now = time.monotonic()
        if fraction >= 1.0 or now - self._last_write >= PROGRESS_WRITE_INTERVAL_S:
            self._last_write = now
            self._runner._update(self.job_id, progress=min(1.0, max(0.0, float(fraction))), message=message)
        if self._cancel.is_set():
            raise CancelledError("the job was cancelled")

    def publish(self, **state: Any) -> None:
        """Merge JSON-serializable values into the job's live ``state`` (written at once)."""
        self._state.update(state)
        self._runner._update(self.job_id, state=dict(self._state))

    def set_result_key(self, key: str) -> None:
        """Attach a storage key (e.g. a trained model) to the job."""
        self._runner._update(self.job_id, result_key=key)


class JobRunner:
    """Run jobs in daemon threads; persist their state in the ``jobs`` table.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        Database with the ``jobs`` table.
    max_active : int
        Most jobs active at the same time in this process.
    recover : bool
        Mark jobs left active by a previous process as failed (default ``True``).
    """

    def __init__(self, engine: Engine, *, max_active: int = 2, recover: bool = True) -> None:
        self._engine = engine
        self._max_active = int(max_active)
        self._lock = threading.Lock()
        self._cancel: dict[int, threading.Event] = {}
        self._threads: dict[int, threading.Thread] = {}
        if recover:
            self.recover_stale()

    # ----------------------------------------------------------------- queries

    def get(self, job_id: int) -> JobState:
        """The current state of a job; :class:`NotFoundError` if there is none."""
        with Session(self._engine) as s:
            row = s.get(Job, job_id)
            if row is None:
                raise NotFoundError(f"job {job_id} does not exist")
            return JobState.from_row(row)

    def latest(self, *, owner_id: int | None, kind: str) -> JobState | None:
        """The owner's most recent job of ``kind`` (active or finished), or ``None``."""
        with Session(self._engine) as s:
            row = s.exec(
                select(Job)
                .where(Job.owner_id == owner_id, Job.kind == kind)
                .order_by(col(Job.id).desc())
                .limit(1)
            ).first()
            return JobState.from_row(row) if row is not None else None

    def jobs(
        self, *, owner_id: int | None, kind: str, statuses: tuple[str, ...] | None = None
    ) -> list[JobState]:
        """The owner's jobs of ``kind``, newest first, optionally only with the given statuses."""
        with Session(self._engine) as s:
            q = select(Job).where(Job.owner_id == owner_id, Job.kind == kind)
            if statuses:
                q = q.where(col(Job.status).in_(statuses))
            return [JobState.from_row(r) for r in s.exec(q.order_by(col(Job.id).desc()))]

    def active(self, *, owner_id: int | None, kind: str) -> JobState | None:
        """The owner's active job of ``kind``, if any."""
        jobs = self.jobs(owner_id=owner_id, kind=kind, statuses=ACTIVE_STATUSES)
        return jobs[0] if jobs else None

    def is_alive(self, job_id: int) -> bool:
        """Whether this runner's thread for the job is still running."""
        with self._lock:
            t = self._threads.get(job_id)
        return t is not None and t.is_alive()

    # ----------------------------------------------------------------- control

    def submit(
        self,
        *,
        owner_id: int | None,
        kind: str,
        fn: Callable[[JobContext], dict | None],
        params: dict | None = None,
    ) -> int:
        """Create a job row and start ``fn(ctx)`` in a daemon thread; return the job id.

        Raises
        ------
        JobConflictError
            The owner already has an active job of ``kind``, or ``max_active`` jobs are running.
        """
        params = dict(params or {})
        doc = json.dumps({"params": params, "state": {}, "result": {}})
        with self._lock:
            current = self.active(owner_id=owner_id, kind=kind)
            if current is not None:
                raise JobConflictError(
                    f"a {kind.replace('_', ' ')} job is already running (job {current.id}, "
                    f"{current.progress * 100:.0f}%): stop it or wait until it finishes (one per user)"
                )
            alive = sum(1 for t in self._threads.values() if t.is_alive())
            if alive >= self._max_active:
                raise JobConflictError(
                    f"the server is busy with {alive} jobs (at most {self._max_active} at a time): "
                    "try again later"
                )
            with Session(self._engine) as s:
                row = Job(owner_id=owner_id, kind=kind, status="queued", params_json=doc, message="queued")
                s.add(row)
                s.commit()
                job_id = int(row.id)
            cancel = threading.Event()
            ctx = JobContext(self, job_id, params, cancel)
            thread = threading.Thread(
                target=self._run, args=(job_id, fn, ctx), name=f"job-{kind}-{job_id}", daemon=True
            )
            self._cancel[job_id] = cancel
            self._threads[job_id] = thread
        thread.start()
        return job_id

    def cancel(self, job_id: int, *, owner_id: int | None) -> bool:
        """Ask a job to stop; returns whether it was active. Only its owner may cancel it."""
        state = self.get(job_id)
        if state.owner_id != owner_id:
            raise NotFoundError(f"job {job_id} does not exist")
        if not state.active:
            return False
        with self._lock:
            ev = self._cancel.get(job_id)
        if ev is None:  # not ours (stale): mark it directly
            self._update(job_id, status="cancelled", message="cancelled")
            return True
        ev.set()
        self._update(job_id, message="stopping...")
        return True

    def wait(self, job_id: int, *, timeout: float | None = None) -> JobState:
        """Block until the job's thread ends (or ``timeout``); return its state."""
        with self._lock:
            t = self._threads.get(job_id)
        if t is not None:
            t.join(timeout)
        return self.get(job_id)

    def recover_stale(self) -> int:
        """Mark active jobs that no thread of this runner runs as failed; return how many."""
        with self._lock:
            mine = set(self._threads)
        n = 0
        with Session(self._engine) as s:
            for row in s.exec(select(Job).where(col(Job.status).in_(ACTIVE_STATUSES))):
                if row.id in mine:
                    continue
                row.status = "failed"
                row.message = "interrupted: the app restarted while this job was running; start it again"
                row.updated_at = utcnow()
                s.add(row)
                n += 1
            s.commit()
        return n

    # ----------------------------------------------------------------- internals

    def _update(self, job_id: int, **fields: Any) -> None:
        state = fields.pop("state", None)
        result = fields.pop("result", None)
        with Session(self._engine) as s:
            row = s.get(Job, job_id)
            if row is None:
                return
            if state is not None or result is not None:
                try:
                    doc = json.loads(row.params_json or "{}")
                except ValueError:
                    doc = {}
                if state is not None:
                    doc["state"] = state
                if result is not None:
                    doc["result"] = result
                row.params_json = json.dumps(doc)
            for k, v in fields.items():
                if k == "message":
                    v = str(v)[:500]
                setattr(row, k, v)
            row.updated_at = utcnow()
            s.add(row)
            s.commit()

    def _run(self, job_id: int, fn: Callable[[JobContext], dict | None], ctx: JobContext) -> None:
        self._update(job_id, status="running", message="started")
        try:
            result = fn(ctx) or {}
        except CancelledError:
            self._update(job_id, status="cancelled", message="cancelled")
        except StudioError as exc:
            self._update(job_id, status="failed", message=str(exc))
        except Exception as exc:  # a job must never take the process down; keep the reason
            log.exception("job %s failed", job_id)
            self._update(
                job_id, status="failed", message=f"internal error ({type(exc).__name__}): {exc}"[:500]
            )
        else:
            stopped = ctx.should_stop()
            self._update(
                job_id,
                status="cancelled" if stopped else "done",
                progress=1.0 if not stopped else self.get(job_id).progress,
                message=str(result.get("message") or ("stopped" if stopped else "done")),
                result=result,
            )
        finally:
            with self._lock:
                self._cancel.pop(job_id, None)
