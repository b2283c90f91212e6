"""Exceptions that carry a process exit code (mapped to ``error: ...`` + exit code in ``geovr/cli.py``).

The project-wide exit codes: 0 success; 1 some clips/items failed; 2 bad usage (bad flags, config
or manifest, missing user-named inputs, unknown names, a store whose sampling does not match the
recipe); 3 environment (disk full, missing optional package, hub unreachable offline); 4 store or
data integrity (``geovr.shared.safety.StoreError``: an untrusted store refused).

Raise these where a mistake is found; the console script turns them into one line on stderr.
This module imports nothing heavy (it is on the ``geovr --help`` path).
"""

from __future__ import annotations


class UsageError(ValueError):
    """Bad usage: a wrong flag, config key, name or manifest, or a user-named input that is missing (exit 2)."""

    exit_code = 2


class EnvironmentProblem(RuntimeError):
    """The machine, not the user's command, is the problem: a missing optional package, no network while
    offline, a full disk (exit 3)."""

    exit_code = 3


def missing_package(package: str, extra: str, what: str) -> EnvironmentProblem:
    """The error for an optional dependency that is not installed, naming the pip command that adds it."""
    return EnvironmentProblem(f"{what} needs the optional package {package}: pip install \"geovr[{extra}]\"")


def hub_offline(repo: str, what: str) -> EnvironmentProblem:
    """The error for a hub id that is not in the local cache while ``HF_HUB_OFFLINE`` is set."""
    return EnvironmentProblem(f"{what} {repo!r}: no such local path, and as a hub id it is not in the local "
                              "Hugging Face cache while HF_HUB_OFFLINE=1 forbids downloading it (download it once "
                              "online, or pass an existing local path)")
