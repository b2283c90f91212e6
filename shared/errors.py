"""Error classes that decide ``geovr``'s exit code (one mapping, in ``geovr/cli.py``).

Exit codes, project-wide:

- ``0`` success;
- ``1`` partial: some clips / items failed (listed, recorded) and the rest is done;
- ``2`` bad usage: bad flags, bad config, bad corpus manifest, missing input files named by the user
  (:class:`UsageError`);
- ``3`` environment: disk full, missing optional package, hub / network unavailable, another job holding
  the same lock (:class:`EnvironmentProblem`);
- ``4`` store / data integrity: an untrusted store refused (:class:`geovr.shared.safety.StoreError`).
"""

from __future__ import annotations

import errno

from geovr.shared.safety import StoreError

__all__ = [
    "EXIT_ENVIRONMENT",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_STORE",
    "EXIT_USAGE",
    "EnvironmentProblem",
    "StoreError",
    "UsageError",
    "environment_problem",
]

EXIT_OK = 0
"""Everything done."""
EXIT_PARTIAL = 1
"""Some clips / items failed; the rest is done."""
EXIT_USAGE = 2
"""Bad flags, config, corpus manifest or missing input named by the user (``UsageError``)."""
EXIT_ENVIRONMENT = 3
"""Disk full, missing optional package, network / hub unavailable (``EnvironmentProblem``)."""
EXIT_STORE = 4
"""A store failed an integrity or trust check (``StoreError``)."""

_ENV_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EMFILE, errno.ENFILE}


class UsageError(ValueError):
    """The user asked for something invalid (flag, config, corpus manifest, missing input); exit 2."""


class EnvironmentProblem(RuntimeError):
    """The machine cannot do the job as asked (disk full, package missing, no network); exit 3."""


def environment_problem(exc: BaseException) -> EnvironmentProblem | None:
    """An ``EnvironmentProblem`` for an ``OSError`` that is about the machine (disk full, quota, read-only
    file system, out of file descriptors) found in ``exc`` or its causes; else None."""
    seen = 0
    cur: BaseException | None = exc
    while cur is not None and seen < 16:
        if isinstance(cur, OSError) and cur.errno in _ENV_ERRNOS:
            where = f" writing {cur.filename}" if cur.filename else ""
            return EnvironmentProblem(f"{cur.strerror or errno.errorcode.get(cur.errno, cur.errno)}{where}; "
                                      "free space (or fix the file system) and rerun: finished shards are kept")
        cur = cur.__cause__ or cur.__context__
        seen += 1
    return None
