"""Checks on a user-named model or weights reference (a local path or a Hugging Face hub id), made
before anything loads: a missing local path is a usage error (exit 2), a hub id that cannot be
fetched because ``HF_HUB_OFFLINE`` is set and it is not cached is an environment problem (exit 3).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from geovr.shared.errors import UsageError, hub_offline

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
"""``owner/name`` (a hub repo id has exactly one slash)."""
LOCAL_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")


def offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) forbids downloads."""
    return any(os.environ.get(k, "").upper() in ("1", "ON", "YES", "TRUE")
               for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def check_model_ref(ref: str, what: str, filename: str = "config.json") -> None:
    """Refuse ``ref`` early: a local path must exist; a hub id (``owner/name``, optionally ``:file``) must be
    fetchable (online) or in the local cache (offline). ``filename`` is the file the loader reads first."""
    p = Path(ref).expanduser()
    if p.exists():
        return
    repo, _, name = ref.partition(":")
    if ref.startswith((".", "/", "~")) or p.suffix in LOCAL_SUFFIXES or not _REPO_ID.match(repo):
        raise UsageError(f"{what} {ref}: no such file or folder (nor a hub id owner/name)")
    if offline():
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(repo, name or filename), str):
            raise hub_offline(repo, what)
