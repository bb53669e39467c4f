"""Feed benchmark: first-page server time with 10,000 tracks, and the app's cold start.

Run: ``python bench/feed.py [--tracks 10000] [--repeats 7]``

Prints the median server time of one run of the feed page (the page script's own execution
inside the Streamlit runtime, driven by AppTest without a browser; a first warm-up run is not
counted), against a baseline page that only draws a title, measured in the same run; the cold start
of the app in headless Chromium (``streamlit run`` to the feed drawn), for a new install (the database
is created) and for a restart on the seeded database, against a one-line Streamlit app, interleaved and
repeated (``--cold-repeats``, medians); a feed card's cover made from a stored 1024 px PNG against
read back from the cover cache on disk (what a restart costs per card); and the imports + first page
run in a fresh interpreter, with whether torch was imported on that path.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COLD_START = r"""
import json, sys, time
t0 = time.perf_counter()
from streamlit.testing.v1 import AppTest
at = AppTest.from_file("app.py", default_timeout=60)
at.run()
t1 = time.perf_counter()
print(json.dumps({"cold_start_s": t1 - t0, "torch_imported": "torch" in sys.modules,
                  "librosa_imported": "librosa" in sys.modules, "errors": len(at.exception)}))
"""


WRAPPER = """
import runpy, time
import streamlit as st
t0 = time.perf_counter()
runpy.run_path({path!r}, run_name="__main__")
st.session_state["_bench_server_s"] = time.perf_counter() - t0
"""


def _time_page(path: str, repeats: int, tmp: str) -> list[float]:
    """Server time of one run of a page script: the script's own execution inside the
    Streamlit runtime (AppTest), without AppTest's start-up overhead."""
    from streamlit.testing.v1 import AppTest

    wrapper = Path(tmp) / f"bench_{Path(path).stem}.py"
    wrapper.write_text(WRAPPER.format(path=str(path)))
    times = []
    for _ in range(repeats):
        at = AppTest.from_file(str(wrapper), default_timeout=120)
        at.run()
        if at.exception:
            raise SystemExit(f"page failed: {at.exception[0].value}")
        times.append(at.session_state["_bench_server_s"])
    return times


def _browser_cold_start(script: str, data_dir: str, wait_text: str) -> tuple[float, float] | None:
    """(server start s, first page s): ``streamlit run`` from a fresh process to the page drawn
    in headless Chromium (browser launched beforehand, not counted). None without Chromium."""
    from tests.browser import CHROMIUM, chromium_browser, streamlit_server

    if not Path(CHROMIUM).exists():
        return None
    with chromium_browser() as browser:
        page = browser.new_page()
        t0 = time.perf_counter()
        with streamlit_server(Path(data_dir), script=script) as base:
            t1 = time.perf_counter()
            page.goto(base)
            page.get_by_text(wait_text).first.wait_for(timeout=60_000)
            t2 = time.perf_counter()
    return t1 - t0, t2 - t1


def _cold_starts(data_dir: str, repeats: int) -> dict[str, list[tuple[float, float]]]:
    """Cold starts, interleaved so that machine noise hits all alike: the app on a new data folder
    (first start ever: the database is created), the app restarted on ``data_dir`` (its database
    already migrated, the feed full), and a one-line Streamlit app (what Streamlit itself costs)."""
    runs: dict[str, list[tuple[float, float]]] = {"new": [], "restart": [], "one-line": []}
    with tempfile.TemporaryDirectory() as tmp:
        hello = Path(tmp) / "hello.py"
        hello.write_text("import streamlit as st\nst.title('Hello')\nst.write('Nothing here yet')\n")
        for i in range(repeats):
            fresh = Path(tmp) / f"new{i}"
            fresh.mkdir()
            for kind, args in (
                ("new", ("app.py", str(fresh), "Nothing here yet")),
                ("restart", ("app.py", data_dir, "Load more")),
                ("one-line", (str(hello), tmp, "Nothing here yet")),
            ):
                got = _browser_cold_start(*args)
                if got is None:
                    return {}
                runs[kind].append(got)
    return runs


def _cover_times(tmp: str, repeats: int) -> tuple[float, float]:
    """(made, from disk) median seconds of a feed card's cover for a 1024 px painted album cover: made
    from the stored PNG (what every card cost after a restart before the disk cache), and read from
    the cover cache by a new cache object (a restarted server)."""
    from core.album import make_cover
    from core.covers_placeholder import card_cover
    from core.disk_cache import BytesCache
    from core.storage import LocalStorage

    storage = LocalStorage(Path(tmp) / "cover-bench")
    keys = [
        storage.put(make_cover(album=f"Bench {i}", artist="Bench", seed=i).png, suffix="png")
        for i in range(repeats)
    ]
    made, read = [], []
    for key in keys:
        for times in (made, read):
            cache = BytesCache(Path(tmp) / "cover-cache", budget_mb=64, suffix=".jpg")
            t0 = time.perf_counter()
            card_cover(storage=storage, cover_key=key, title="Bench", artist="Bench", cache=cache)
            times.append(time.perf_counter() - t0)
    return statistics.median(made), statistics.median(read)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--cold-repeats", type=int, default=3, help="cold starts of each kind")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["BEATTOK_DATA_DIR"] = tmp
        from sqlmodel import Session

        from core.auth import sign_up
        from core.config import get_settings
        from core.db.engine import make_engine, migrate
        from core.db.repo import seed_fake_tracks

        os.environ.setdefault("BEATTOK_BCRYPT_ROUNDS", "4")
        engine = make_engine(get_settings().database_url)
        migrate(engine)
        t0 = time.perf_counter()
        with Session(engine) as session:
            user = sign_up(
                session, username="bench", email="bench@example.com", name="Bench", password="benchmark1"
            )
            seed_fake_tracks(session, n=args.tracks, owner_id=user.id, seed=0)
        seed_s = time.perf_counter() - t0

        baseline = Path(tmp) / "baseline_page.py"
        baseline.write_text("import streamlit as st\nst.title('baseline')\n")
        _time_page(str(baseline), 2, tmp)  # warm the runtime
        base = _time_page(str(baseline), args.repeats, tmp)
        _time_page(str(ROOT / "pages" / "feed.py"), 1, tmp)  # warm imports and caches
        feed_new = _time_page(str(ROOT / "pages" / "feed.py"), args.repeats, tmp)

        cover_made, cover_read = _cover_times(tmp, args.repeats)
        cold_runs = _cold_starts(tmp, args.cold_repeats)
    cold = subprocess.run(
        [sys.executable, "-c", COLD_START],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "BEATTOK_DATA_DIR": tempfile.mkdtemp()},
    )
    cold_info = (
        json.loads(cold.stdout.strip().splitlines()[-1])
        if cold.returncode == 0
        else {"error": cold.stderr[-500:]}
    )

    med_base, med_feed = statistics.median(base), statistics.median(feed_new)
    print(f"tracks in DB                      : {args.tracks} (seeded in {seed_s:.1f} s)")
    print(f"baseline page (title only), median: {med_base * 1000:7.1f} ms")
    print(f"feed first page, median           : {med_feed * 1000:7.1f} ms  (target <= 300 ms)")
    print(f"feed / baseline                   : {med_feed / med_base:7.1f} x")
    lo, hi = min(feed_new) * 1000, max(feed_new) * 1000
    print(f"feed min / max                    : {lo:.1f} / {hi:.1f} ms")
    cold_s = cold_info.get("cold_start_s", float("nan"))
    totals = {kind: statistics.median(a + b for a, b in runs) for kind, runs in cold_runs.items()}
    for kind, label in (("new", "new install"), ("restart", "restart"), ("one-line", "one-line app")):
        if kind in cold_runs:
            server_s = statistics.median(a for a, _ in cold_runs[kind])
            page_s = statistics.median(b for _, b in cold_runs[kind])
            print(
                f"cold start, {label:<12}         : server up {server_s:.2f} s, feed drawn in Chromium "
                f"{page_s:.2f} s later, total {totals[kind]:.2f} s (median of {len(cold_runs[kind])})"
            )
    if cold_runs:
        print(
            f"cold start / one-line app (total)  : new install {totals['new'] / totals['one-line']:.2f} x, "
            f"restart {totals['restart'] / totals['one-line']:.2f} x  (target <= 3 s to the first page)"
        )
    print(
        f"card cover, 1024 px painted cover : made {cover_made * 1000:.1f} ms, from the disk cache "
        f"{cover_read * 1000:.2f} ms ({cover_made / cover_read:.0f}x; 5 cards on the first page)"
    )
    print(f"imports + first run (AppTest)     : {cold_s:7.2f} s")
    print(f"torch imported on the feed path   : {cold_info.get('torch_imported')}")
    print(f"librosa imported on the feed path : {cold_info.get('librosa_imported')}")


if __name__ == "__main__":
    main()
