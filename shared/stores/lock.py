"""Exclusive per-prefix (per-rank) locks in a store folder: two jobs never write one shard prefix.

``flock`` on ``STORE/.lock-<prefix>``: the kernel drops the lock when its holder dies (SIGKILL
included), so a killed job never leaves a stale lock; the file itself is removed on release (a
waiting opener that raced the removal re-checks the inode and tries again).
"""

from __future__ import annotations

import contextlib
import fcntl
import os

from geovr.shared.errors import UsageError

__all__ = ["LOCK_PREFIX", "PrefixLock", "held_locks"]

LOCK_PREFIX = ".lock-"
"""Lock file name prefix in the store root (``.lock-r000``)."""
_MINE: dict[str, list[int]] = {}
"""Real path -> ``[fd, holders]`` of the locks this process holds: a second writer of the same prefix in
the same process shares the lock (a test's stand-in for a crashed job); ``held_locks`` skips them."""


class PrefixLock:
    """Hold ``root/.lock-<prefix>`` exclusively until :meth:`release` (or process death)."""

    def __init__(self, root: str, prefix: str) -> None:
        self.path = os.path.join(root, f"{LOCK_PREFIX}{prefix}")
        self.prefix = prefix
        self.fd: int | None = None
        self._key = os.path.realpath(self.path)
        if self._key in _MINE:
            _MINE[self._key][1] += 1
            self.fd = _MINE[self._key][0]
            return
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise UsageError(
                    f"{root}: another job is writing shard prefix {prefix!r} into this store (lock {self.path} "
                    "is held); give each job its own --rank, or wait for the other job to finish"
                ) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self.fd = fd
                _MINE[self._key] = [fd, 1]
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                return
            os.close(fd)  # the previous holder removed the file after we opened it: try again

    def release(self) -> None:
        """Remove the lock file and drop the lock (idempotent)."""
        if self.fd is None:
            return
        self.fd = None
        entry = _MINE.get(self._key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] > 0:
            return
        del _MINE[self._key]
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.close(entry[0])

    def __enter__(self) -> PrefixLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def held_locks(root: str) -> list[str]:
    """Prefixes whose lock in ``root`` is held by another live process right now."""
    out = []
    try:
        entries = os.listdir(root)
    except FileNotFoundError:
        return out
    for entry in sorted(entries):
        if not entry.startswith(LOCK_PREFIX):
            continue
        path = os.path.join(root, entry)
        if os.path.realpath(path) in _MINE:
            continue
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            out.append(entry[len(LOCK_PREFIX):])
        else:
            # nobody holds it: a killed job's leftover; remove it while we hold it
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        finally:
            os.close(fd)
    return out
