"""Background job runner (core.jobs), without Streamlit."""

from __future__ import annotations

import threading

import pytest
from sqlmodel import Session

from core.db.engine import make_engine, migrate
from core.db.models import Job
from core.errors import InputError, NotFoundError
from core.jobs import JobConflictError, JobContext, JobRunner


@pytest.fixture
def engine(tmp_path):
    eng = make_engine(f"sqlite:///{tmp_path / 'jobs.db'}")
    migrate(eng)
    return eng


def test_job_runs_in_background_and_reports_progress_state_and_result(engine):
    runner = JobRunner(engine)
    gate = threading.Event()

    def work(ctx: JobContext) -> dict:
        ctx.progress(0.5, "half way")
        ctx.publish(history=[3.0, 2.0])
        gate.wait(5)
        ctx.set_result_key("ab/abc.pt")
        return {"best": 2.0, "n": ctx.params["n"]}

    job_id = runner.submit(owner_id=None, kind="demo", fn=work, params={"n": 3})
    # the caller is not blocked: the job is still running while we look at it
    for _ in range(100):
        st = runner.get(job_id)
        if st.state.get("history"):
            break
        threading.Event().wait(0.02)
    assert st.status == "running" and st.progress == 0.5 and st.message == "half way"
    assert st.state == {"history": [3.0, 2.0]} and st.params == {"n": 3}
    gate.set()
    done = runner.wait(job_id, timeout=5)
    assert done.status == "done" and done.progress == 1.0
    assert done.result == {"best": 2.0, "n": 3} and done.result_key == "ab/abc.pt"
    assert not runner.is_alive(job_id)


def test_a_reloaded_page_finds_the_job_through_a_new_runner_view(engine):
    runner = JobRunner(engine)
    gate = threading.Event()
    job_id = runner.submit(owner_id=None, kind="train", fn=lambda ctx: gate.wait(5) and {})
    # a page reload only has the database: latest() by owner and kind finds the same job
    found = runner.latest(owner_id=None, kind="train")
    assert found is not None and found.id == job_id and found.active
    assert runner.active(owner_id=None, kind="other") is None
    gate.set()
    runner.wait(job_id, timeout=5)
    assert runner.latest(owner_id=None, kind="train").status == "done"


def test_one_active_job_per_owner_and_kind_and_a_global_cap(engine):
    runner = JobRunner(engine, max_active=2)
    gate = threading.Event()
    first = runner.submit(owner_id=None, kind="train", fn=lambda ctx: gate.wait(5) and {})
    with pytest.raises(JobConflictError, match="already running"):
        runner.submit(owner_id=None, kind="train", fn=lambda ctx: {})
    assert isinstance(JobConflictError("x"), InputError)  # pages catch StudioError
    second = runner.submit(owner_id=None, kind="render", fn=lambda ctx: gate.wait(5) and {})
    with pytest.raises(JobConflictError, match="busy"):
        runner.submit(owner_id=None, kind="third", fn=lambda ctx: {})
    gate.set()
    runner.wait(first, timeout=5)
    runner.wait(second, timeout=5)
    again = runner.submit(owner_id=None, kind="train", fn=lambda ctx: {"ok": True})
    assert runner.wait(again, timeout=5).result == {"ok": True}


def test_cancel_sets_the_flag_read_by_should_stop(engine):
    runner = JobRunner(engine)
    started = threading.Event()

    def work(ctx: JobContext) -> dict:
        started.set()
        steps = 0
        while not ctx.should_stop() and steps < 500:
            threading.Event().wait(0.01)
            steps += 1
        return {"steps": steps, "saved": True}

    job_id = runner.submit(owner_id=None, kind="train", fn=work)
    started.wait(5)
    assert runner.cancel(job_id, owner_id=None) is True
    st = runner.wait(job_id, timeout=5)
    assert st.status == "cancelled"
    assert st.result["saved"] is True and st.result["steps"] < 500  # what it had is kept
    assert runner.cancel(job_id, owner_id=None) is False  # already finished


def test_progress_raises_cancelled_after_cancel(engine):
    runner = JobRunner(engine)
    started = threading.Event()

    def work(ctx: JobContext) -> dict:
        started.set()
        for i in range(500):
            ctx.progress(i / 500, "working")
            threading.Event().wait(0.01)
        return {}

    job_id = runner.submit(owner_id=None, kind="train", fn=work)
    started.wait(5)
    runner.cancel(job_id, owner_id=None)
    assert runner.wait(job_id, timeout=5).status == "cancelled"


def test_failures_are_recorded_with_their_message(engine):
    runner = JobRunner(engine)

    def bad_input(ctx):
        raise InputError("need at least 2 songs, got 1")

    def crash(ctx):
        raise ZeroDivisionError("boom")

    a = runner.submit(owner_id=None, kind="a", fn=bad_input)
    b = runner.submit(owner_id=None, kind="b", fn=crash)
    sa, sb = runner.wait(a, timeout=5), runner.wait(b, timeout=5)
    assert sa.status == "failed" and sa.message == "need at least 2 songs, got 1"
    assert sb.status == "failed" and "ZeroDivisionError" in sb.message


def test_only_the_owner_can_cancel(engine):
    from core.auth import sign_up

    with Session(engine) as s:
        u = sign_up(s, username="ann", email="ann@example.com", name="Ann", password="correct horse 1")
    runner = JobRunner(engine)
    gate = threading.Event()
    job_id = runner.submit(owner_id=u.id, kind="train", fn=lambda ctx: gate.wait(5) and {})
    with pytest.raises(NotFoundError):
        runner.cancel(job_id, owner_id=None)
    assert runner.latest(owner_id=None, kind="train") is None
    gate.set()
    runner.wait(job_id, timeout=5)
    with pytest.raises(NotFoundError):
        runner.get(99999)


def test_stale_running_jobs_are_marked_failed_on_restart(engine):
    with Session(engine) as s:
        s.add(Job(owner_id=None, kind="train", status="running", progress=0.4))
        s.add(Job(owner_id=None, kind="train", status="done", progress=1.0))
        s.commit()
    runner = JobRunner(engine)  # a new process starts
    jobs = runner.jobs(owner_id=None, kind="train")
    assert [j.status for j in jobs] == ["done", "failed"]
    assert "restarted" in jobs[1].message
    # and a new job of that kind may start
    job_id = runner.submit(owner_id=None, kind="train", fn=lambda ctx: {})
    assert runner.wait(job_id, timeout=5).status == "done"
