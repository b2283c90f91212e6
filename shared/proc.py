"""Worker processes that never outlive their parent (DataLoader ``worker_init_fn``)."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from typing import Any

__all__ = ["die_with_parent"]

_PR_SET_PDEATHSIG = 1


def _watch(parent: int, interval: float) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(interval)


def die_with_parent(_worker_id: Any = None) -> None:
    """Make this process die when its parent does, even after the parent's SIGKILL.

    Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``; elsewhere (and as a belt for the race where the parent died
    before the call, this one may miss) a daemon thread that exits the process once ``getppid()`` changes. Usable directly as a
    ``DataLoader(worker_init_fn=...)``.
    """
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    threading.Thread(target=_watch, args=(parent, 1.0), daemon=True, name="die-with-parent").start()
