"""Error classes that decide ``geovr``'s exit code (one mapping, ``exit_code_for`` in ``geovr/cli.py``).

Exit codes, project-wide:

- ``0`` success;
- ``1`` partial: some clips / items failed (listed, recorded) and the rest is done;
- ``2`` bad usage: bad flags, bad config, bad corpus manifest, missing input files named by the user,
  unknown names, a store whose sampling does not match the recipe (:class:`UsageError`);
- ``3`` environment: disk full, missing optional package, hub / network unavailable offline
  (:class:`EnvironmentProblem`);
- ``4`` store / data integrity: an untrusted store refused (:class:`geovr.shared.safety.StoreError`).

Raise these where a mistake is found; the console script turns them into one line on stderr.
This module imports nothing heavy (it is on the ``geovr --help`` path).
"""

from __future__ import annotations

import errno

__all__ = [
    "EXIT_ENVIRONMENT",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_STORE",
    "EXIT_USAGE",
    "EnvironmentProblem",
    "UsageError",
    "environment_problem",
    "hub_offline",
    "missing_package",
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
"""A store failed an integrity or trust check (``geovr.shared.safety.StoreError``)."""

_ENV_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EMFILE, errno.ENFILE}


class UsageError(ValueError):
    """Bad usage: a wrong flag, config key, name or manifest, or a user-named input that is missing (exit 2)."""

    exit_code = EXIT_USAGE


class EnvironmentProblem(RuntimeError):
    """The machine, not the user's command, is the problem: a missing optional package, no network while
    offline, a full disk (exit 3)."""

    exit_code = EXIT_ENVIRONMENT


def missing_package(package: str, extra: str, what: str) -> EnvironmentProblem:
    """The error for an optional dependency that is not installed, naming the pip command that adds it."""
    return EnvironmentProblem(f"{what} needs the optional package {package}: pip install \"geovr[{extra}]\"")


def hub_offline(repo: str, what: str) -> EnvironmentProblem:
    """The error for a hub id that is not in the local cache while ``HF_HUB_OFFLINE`` is set."""
    return EnvironmentProblem(f"{what} {repo!r}: no such local path, and as a hub id it is not in the local "
                              "Hugging Face cache while HF_HUB_OFFLINE=1 forbids downloading it (download it once "
                              "online, or pass an existing local path)")


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
