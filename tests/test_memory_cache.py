"""The byte-bounded result cache (core.memory_cache) that holds add-beats results, songs and previews."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import pytest

from core.errors import InputError
from core.memory_cache import SizedLRU, nbytes_of

MB = 1024 * 1024


def _mb(n: float) -> np.ndarray:
    return np.zeros(int(n * MB) // 4, np.float32)


@dataclass(frozen=True)
class _Result:
    mix: np.ndarray
    stems: dict
    notes: list
    sr: int = 44100


def test_sizes_count_every_buffer_once_including_what_views_keep_alive():
    song = _mb(2)
    result = _Result(mix=_mb(1), stems={"original": song[: len(song) // 2], "drums": _mb(1)}, notes=[1, 2])
    assert nbytes_of(result) == 4 * MB  # the half view keeps the whole 2 MB song alive
    assert nbytes_of((song, song[::2], b"x" * 10)) == 2 * MB + 10
    assert nbytes_of("text") == 0 and nbytes_of(None) == 0
    deep = [[[[[_mb(1)]]]]]  # deeper than four levels: not looked into
    assert nbytes_of(deep) == 0


def test_least_recently_used_go_first_and_the_newest_always_stays():
    cache = SizedLRU(budget_mb=3)
    for key in "abc":
        cache.get_or_make(key, lambda: _mb(1))
    assert len(cache) == 3 and cache.total_bytes == 3 * MB
    cache.get_or_make("a", lambda: pytest.fail("a is cached"))  # "a" is now the most recent
    cache.get_or_make("d", lambda: _mb(1))  # over budget: "b" (least recently used) goes
    assert "b" not in cache and all(k in cache for k in "acd")
    big = cache.get_or_make("big", lambda: _mb(5))  # alone over the budget: kept, everything else goes
    assert len(cache) == 1 and "big" in cache and cache.total_bytes == big.nbytes
    assert cache.counts == {"hits": 1, "made": 5, "evicted": 4}
    assert cache.size("big") == big.nbytes and cache.size("a") is None
    assert cache.discard("big") and not cache.discard("big") and cache.total_bytes == 0
    cache.get_or_make("e", lambda: _mb(1))
    cache.clear()
    assert len(cache) == 0 and cache.total_bytes == 0


def test_room_is_made_before_a_big_value_is_made_when_its_size_is_expected():
    cache = SizedLRU(budget_mb=3)
    for key in "abc":
        cache.get_or_make(key, lambda: _mb(1))

    def make():
        assert len(cache) == 1 and "c" in cache  # "a" and "b" let go first: 1 MB + 2 MB fit in 3
        return _mb(2)

    cache.get_or_make("d", make, expected_bytes=2 * MB)
    assert cache.total_bytes == 3 * MB and "c" in cache and "d" in cache
    cache.get_or_make("huge", lambda: _mb(0.5) if len(cache) == 0 else pytest.fail("not emptied"),
                      expected_bytes=10 * MB)  # fmt: skip
    cache.get_or_make("huge", lambda: pytest.fail("cached"), expected_bytes=10 * MB)  # a hit evicts nothing
    assert len(cache) == 1


def test_a_failed_make_caches_nothing_and_the_next_caller_makes_it():
    cache = SizedLRU(budget_mb=1)

    def broken():
        raise InputError("bad song")

    with pytest.raises(InputError, match="bad song"):
        cache.get_or_make("k", broken)
    assert "k" not in cache and cache.get_or_make("k", lambda: b"ok") == b"ok"


def test_concurrent_callers_of_one_key_make_it_once_and_other_keys_in_parallel():
    cache = SizedLRU(budget_mb=16)
    calls: list[str] = []
    inside = threading.Barrier(2, timeout=10)

    def slow(name: str):
        def make():
            calls.append(name)
            if name != "same":
                inside.wait()  # both different keys are inside make at once
            time.sleep(0.1)
            return _mb(0.5)

        return make

    results = {}

    def worker(i: int, key: str) -> None:
        results[i] = cache.get_or_make(key, slow(key))

    threads = [threading.Thread(target=worker, args=(i, "same")) for i in range(4)]
    threads += [threading.Thread(target=worker, args=(10 + i, f"k{i}")) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert calls.count("same") == 1 and sorted(c for c in calls if c != "same") == ["k0", "k1"]
    assert all(results[i] is results[0] for i in range(4))  # one shared value


def test_entries_unused_for_their_ttl_are_dropped():
    cache = SizedLRU(budget_mb=1, ttl_s=0.2)
    cache.get_or_make("old", lambda: b"1")
    time.sleep(0.3)
    cache.get_or_make("new", lambda: b"2")
    assert "old" not in cache and "new" in cache and cache.total_bytes == 1
    with pytest.raises(InputError, match="positive"):
        SizedLRU(budget_mb=0)
    with pytest.raises(InputError, match="positive"):
        SizedLRU(budget_mb=1, ttl_s=0)


def test_doctests():
    import doctest

    import core.disk_cache
    import core.memory_cache

    for module in (core.memory_cache, core.disk_cache):
        assert doctest.testmod(module).failed == 0


def test_background_collector_frees_cycles_that_hold_audio_soon_after_a_request():
    import gc
    import weakref

    from core.memory_cache import BackgroundCollector

    class Namespace:  # like a page's module namespace, which its functions point back at
        pass

    collector = BackgroundCollector(min_interval_s=0.3, delay_s=0.01)
    gc.disable()  # only the collector may collect during the test
    try:
        ns = Namespace()
        ns.audio = _mb(8)
        ns.me = ns
        alive = weakref.ref(ns.audio)
        del ns
        time.sleep(0.1)
        assert alive() is not None  # nothing frees a cycle by itself
        for _ in range(5):  # a burst of runs: merged into one or two collections
            collector.request()
        deadline = time.monotonic() + 5
        while (alive() is not None or not collector.collections) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert alive() is None and 1 <= collector.collections <= 2
        time.sleep(0.5)
        assert collector.collections <= 2  # no request, no collection
    finally:
        gc.enable()


def test_collect_now_frees_cycles_at_once_when_the_process_is_big_enough():
    import gc
    import sys
    import weakref

    from core.memory_cache import BackgroundCollector, resident_mb

    rss = resident_mb()
    if sys.platform.startswith("linux"):
        assert rss is not None and 10 < rss < 1_000_000
    collector = BackgroundCollector()

    class Namespace:
        pass

    gc.disable()
    try:
        ns = Namespace()
        ns.audio, ns.me = _mb(4), ns
        alive = weakref.ref(ns.audio)
        del ns
        if rss is not None:  # a small process is left alone (no 130 ms pause on every page change)
            assert not collector.collect_now(above_mb=1e9) and alive() is not None
        assert collector.collect_now(above_mb=0) and alive() is None and collector.collections == 1
    finally:
        gc.enable()
