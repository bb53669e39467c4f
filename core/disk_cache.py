"""Small on-disk caches under the data folder, bounded in bytes, least recently used files first.

The app keeps two: the editor renderer's spill folder (``cache/editor``, arrays, see
:class:`core.editor.render.Renderer`) and :class:`BytesCache` for derived files that are cheap to
keep and slow to make, such as the feed's cover thumbnails (``cache/covers``). A cached file is always
derived from immutable inputs named in its key (stored media keys never change content), so a cache
can be deleted at any time: it only costs the work of making its files again.

"Recently used" is the file's modification time: a hit touches it. Files are written to a unique
temporary name and renamed into place, so a reader sees a whole file or none, and two sessions making
the same file at once both succeed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from core.errors import InputError


def prune_lru(folder: str | Path, *, suffix: str, budget_bytes: int) -> int:
    """Delete the least recently used ``*suffix`` files of ``folder`` until the rest fit ``budget_bytes``.

    Parameters
    ----------
    folder : str or Path
        The cache folder (a missing folder holds nothing).
    suffix : str
        Only files whose names end with it are counted and deleted (e.g. ``".npy"``).
    budget_bytes : int
        The most bytes those files may take together.

    Returns
    -------
    int
        How many files were deleted.
    """
    files = []
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if entry.name.endswith(suffix):
            try:
                info = entry.stat()
            except OSError:
                continue
            files.append((info.st_mtime, info.st_size, entry.path))
    total = sum(size for _, size, _ in files)
    deleted = 0
    for _, size, path in sorted(files):
        if total <= budget_bytes:
            break
        try:
            os.unlink(path)  # a file still open or mapped stays readable until it is closed
        except OSError:
            continue
        total -= size
        deleted += 1
    return deleted


def write_atomically(path: Path, write: Callable[[BinaryIO], object]) -> bool:
    """Write a cache file: ``write(f)`` into a temporary file unique to this process and thread, then
    renamed to ``path``. Returns False, leaving nothing behind, when the disk refuses (a full disk only
    costs making the file again later)."""
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        return False
    return True


class BytesCache:
    """Files of bytes under ``folder``, named by a hash of their key, kept within ``budget_mb``.

    Parameters
    ----------
    folder : str or Path
        Where the files live (created if missing).
    budget_mb : float
        Byte budget of the folder, in MiB: after every ``prune_every`` writes, and when the cache is
        made, the least recently used files go until the rest fit.
    suffix : str
        File name suffix, e.g. ``".jpg"``.
    prune_every : int
        Writes between two prunes.

    Examples
    --------
    >>> import tempfile
    >>> cache = BytesCache(tempfile.mkdtemp(), budget_mb=1, suffix=".txt")
    >>> cache.get_or_make(("greeting", 1), lambda: b"hello")
    b'hello'
    >>> cache.get_or_make(("greeting", 1), lambda: b"never called")
    b'hello'
    """

    def __init__(
        self, folder: str | Path, *, budget_mb: float, suffix: str = ".bin", prune_every: int = 64
    ) -> None:
        if not budget_mb > 0 or not prune_every >= 1:
            raise InputError("a cache needs a positive byte budget and prune interval")
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.suffix = suffix
        self.budget_bytes = int(budget_mb * 1024 * 1024)
        self._prune_every = int(prune_every)
        self._lock = threading.Lock()
        self._writes = 0
        #: ``hits`` (read from disk), ``made`` (made and written), ``failed`` (made, not written).
        self.counts = {"hits": 0, "made": 0, "failed": 0}
        prune_lru(self.folder, suffix=suffix, budget_bytes=self.budget_bytes)
        stale = time.time() - 600  # temporary files a crash left behind (a write takes milliseconds)
        for tmp in self.folder.glob("*.tmp"):
            with contextlib.suppress(OSError):
                if tmp.stat().st_mtime < stale:
                    tmp.unlink()

    def path(self, key: tuple) -> Path:
        """The file that holds (or would hold) the bytes of ``key``."""
        digest = hashlib.sha256(repr(key).encode("utf-8", "surrogatepass")).hexdigest()[:40]
        return self.folder / f"{digest}{self.suffix}"

    def get_or_make(self, key: tuple, make: Callable[[], bytes]) -> bytes:
        """The bytes cached under ``key``, or ``make()``'s, which are then written for next time.

        ``key`` must name everything the bytes depend on (inputs and a format version), as a tuple of
        plain values. An error raised by ``make`` propagates and nothing is written; a file that
        cannot be written (a full disk) only means it is made again next time.
        """
        path = self.path(key)
        try:
            data = path.read_bytes()
        except OSError:  # not cached yet, or pruned meanwhile
            data = None
        if data:
            with contextlib.suppress(OSError):
                os.utime(path)
            self._count("hits")
            return data
        data = bytes(make())
        if not write_atomically(path, lambda f: f.write(data)):
            self._count("failed")
            return data
        self._count("made")
        with self._lock:
            self._writes += 1
            due = self._writes % self._prune_every == 0
        if due:
            prune_lru(self.folder, suffix=self.suffix, budget_bytes=self.budget_bytes)
        return data

    def _count(self, what: str) -> None:
        with self._lock:
            self.counts[what] += 1
