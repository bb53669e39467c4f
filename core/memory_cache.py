"""A thread-safe in-memory cache of big results, bounded by their size in bytes.

Streamlit's caches bound entries by count. For audio that is the wrong unit: one add-beats result of a
10-minute song is 844 MB (mix, drums, bass and the input it keeps alive), one of a 3-minute song 250 MB,
so "three entries" is 0.75 GB or 2.5 GB depending on the songs. One user trying three seeds on a
10-minute song took the process from 0.8 to 3.6 GB (with the garbage :class:`BackgroundCollector`
is about), past the 2.7 GB of a Community Cloud app.
:class:`SizedLRU` keeps the least recently used entries out once the total passes its budget, counting
every NumPy buffer and bytes object a value holds (:func:`nbytes_of`).

Values are shared between sessions as they are: callers must treat them as read-only.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import numpy as np

from core.errors import InputError

T = TypeVar("T")


def nbytes_of(value: Any, *, _depth: int = 0, _seen: set[int] | None = None) -> int:
    """Bytes of the NumPy arrays and ``bytes`` a value holds, looking into dataclasses, dicts, lists and
    tuples (four levels deep). A view counts the whole array it keeps alive, once.

    Examples
    --------
    >>> y = np.zeros((2, 1000), np.float32)
    >>> nbytes_of({"mix": y, "left": y[0], "wav": b"1234"})
    8004
    """
    seen = set() if _seen is None else _seen
    if isinstance(value, np.ndarray):
        base = value
        while isinstance(base.base, np.ndarray):
            base = base.base
        if id(base) in seen:
            return 0
        seen.add(id(base))
        return int(base.nbytes)
    if isinstance(value, bytes | bytearray):
        return len(value)
    if _depth >= 4:
        return 0
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        items = [getattr(value, f.name) for f in dataclasses.fields(value)]
    elif isinstance(value, dict):
        items = list(value.values())
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        return 0
    return sum(nbytes_of(item, _depth=_depth + 1, _seen=seen) for item in items)


class SizedLRU:
    """Values by key, least recently used out first once their total size passes ``budget_mb``.

    The value just stored always stays, even alone over the budget: the page that asked for it reruns
    and needs it again. Two callers asking for the same missing key at once compute it once (the
    second waits); different keys compute in parallel.

    Parameters
    ----------
    budget_mb : float
        The most MiB the cached values may take together (by :func:`nbytes_of`).
    ttl_s : float, optional
        Entries unused for this long are dropped (checked on every call).
    sizeof : callable, optional
        Size of a value in bytes (default :func:`nbytes_of`).

    Examples
    --------
    >>> cache = SizedLRU(budget_mb=1)
    >>> cache.get_or_make("a", lambda: np.zeros(100_000, np.float32)).nbytes
    400000
    >>> cache.get_or_make("b", lambda: np.zeros(200_000, np.float32)).nbytes  # "a" goes: 1.2 MB > 1 MiB
    800000
    >>> "a" in cache, "b" in cache
    (False, True)
    """

    def __init__(
        self, *, budget_mb: float, ttl_s: float | None = None, sizeof: Callable[[Any], int] = nbytes_of
    ) -> None:
        if not budget_mb > 0 or (ttl_s is not None and not ttl_s > 0):
            raise InputError("a cache needs a positive budget (and a positive ttl, if any)")
        self.budget_bytes = int(budget_mb * 1024 * 1024)
        self.ttl_s = ttl_s
        self._sizeof = sizeof
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[Any, int, float]] = OrderedDict()  # value, size, used
        self._making: dict[Hashable, threading.Lock] = {}
        self._bytes = 0
        #: ``hits``, ``made`` and ``evicted`` (dropped for the budget or the ttl) counts.
        self.counts = {"hits": 0, "made": 0, "evicted": 0}

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            self._expire(time.monotonic())
            return key in self._entries

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    @property
    def total_bytes(self) -> int:
        """Bytes the cached values take together."""
        with self._lock:
            return self._bytes

    def get_or_make(self, key: Hashable, make: Callable[[], T], *, expected_bytes: int = 0) -> T:
        """The value cached under ``key``, else ``make()``'s, cached. An error in ``make`` propagates and
        nothing is cached.

        ``expected_bytes``, the size the new value will probably have, makes room for it *before*
        ``make`` runs: old entries are let go first, so that (unless something else still holds them)
        the new value is not made while they take memory too.
        """
        hit, value = self._get(key)
        if hit:
            return value
        with self._lock:
            making = self._making.setdefault(key, threading.Lock())
        with making:
            try:
                hit, value = self._get(key)  # made by another caller while this one waited
                if hit:
                    return value
                if expected_bytes > 0:
                    with self._lock:
                        self._evict(self.budget_bytes - int(expected_bytes), keep=0)
                value = make()
                self._put(key, value)
                return value
            finally:
                with self._lock:
                    self._making.pop(key, None)

    def size(self, key: Hashable) -> int | None:
        """Bytes of the entry of ``key`` (as counted when it was stored), or None if there is none."""
        with self._lock:
            entry = self._entries.get(key)
            return None if entry is None else entry[1]

    def discard(self, key: Hashable) -> bool:
        """Drop the entry of ``key`` (whether there was one)."""
        with self._lock:
            entry = self._entries.pop(key, None)
            if entry is not None:
                self._bytes -= entry[1]
            return entry is not None

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def _get(self, key: Hashable) -> tuple[bool, Any]:
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            entry = self._entries.get(key)
            if entry is None:
                return False, None
            self._entries[key] = (entry[0], entry[1], now)
            self._entries.move_to_end(key)
            self.counts["hits"] += 1
            return True, entry[0]

    def _put(self, key: Hashable, value: Any) -> None:
        size = int(self._sizeof(value))
        now = time.monotonic()
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._entries[key] = (value, size, now)
            self._bytes += size
            self.counts["made"] += 1
            self._evict(self.budget_bytes, keep=1)
            self._expire(now)

    def _evict(self, budget: int, *, keep: int) -> None:
        """Drop least recently used entries until they fit ``budget`` or ``keep`` are left (lock held)."""
        while self._bytes > budget and len(self._entries) > keep:
            _, (_, dropped, _) = self._entries.popitem(last=False)
            self._bytes -= dropped
            self.counts["evicted"] += 1

    def _expire(self, now: float) -> None:
        """Drop entries unused for ``ttl_s`` (call with the lock held)."""
        if self.ttl_s is None:
            return
        while self._entries:
            key, (_, size, used) = next(iter(self._entries.items()))
            if now - used < self.ttl_s:
                break
            del self._entries[key]
            self._bytes -= size
            self.counts["evicted"] += 1


def resident_mb() -> float | None:
    """This process's resident memory in MiB (Linux; None where ``/proc`` is not available)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)


class BackgroundCollector:
    """Runs Python's cyclic garbage collector in a background thread when asked, at most once per
    ``min_interval_s``.

    Why: every run of a Streamlit page executes the script in a new module namespace, and the functions
    the page defines point back at that namespace, so it is a reference cycle. Its big values (a decoded
    song, an add-beats result, a rendered mix) then stay in memory until a full collection, which Python
    starts only after many new container objects (with the app's 300,000 long-lived objects, tens of
    reruns). One user adding beats to a 10-minute song with four seeds held 5.8 GB that way, 1.9 GB
    with a collection after each run. A full collection takes about 130 ms with the models loaded:
    asked for at the end of each run, it runs after the page is drawn, not in front of it.

    Parameters
    ----------
    min_interval_s : float
        Least time between two collections; requests in between are merged into the next one.
    delay_s : float
        Wait before collecting, so the run that asked finishes first.
    """

    def __init__(self, *, min_interval_s: float = 2.0, delay_s: float = 0.05) -> None:
        self.min_interval_s = float(min_interval_s)
        self.delay_s = float(delay_s)
        self._wanted = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._last = -float("inf")
        #: Collections run so far.
        self.collections = 0

    def collect_now(self, *, above_mb: float = 0.0) -> bool:
        """Collect at once, in the calling thread, when the garbage must go before what comes next, if
        the process holds more than ``above_mb`` (or its size is unknown). Returns whether it did."""
        rss = resident_mb()
        if rss is not None and rss <= above_mb:
            return False
        gc.collect()
        self._done()
        return True

    def request(self) -> None:
        """Ask for a collection soon (returns at once)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="beattok-gc", daemon=True)
                self._thread.start()
        self._wanted.set()

    def _loop(self) -> None:
        while True:
            self._wanted.wait()
            time.sleep(max(self.delay_s, self._last + self.min_interval_s - time.monotonic()))
            self._wanted.clear()
            gc.collect()
            self._done()

    def _done(self) -> None:
        with self._lock:
            self._last = time.monotonic()
            self.collections += 1
