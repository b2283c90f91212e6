"""Tiny stores for the security suite: built once per session, each test works on its own copy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from geovr.shared.stores import StoreWriter, finalize_store
from geovr.shared.stores.testing import make_clip, make_header


def build_store(root: Path, fmt: str, clips: tuple[str, ...] = ("a/00000", "b/00000"), prefix: str = "r000") -> Path:
    """A finalised store with one shard per clip."""
    header = make_header(fmt, "fp16")
    with StoreWriter(root, header, shard_prefix=prefix) as w:
        for i, cid in enumerate(clips):
            w.write_shard([make_clip(cid, header, seed=i)])
    finalize_store(root)
    return root


@pytest.fixture(scope="session")
def pristine(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("pristine")
    return {fmt: build_store(base / fmt, fmt) for fmt in ("zarr", "wds")}


@pytest.fixture
def store_copy(pristine, tmp_path):
    """``copy(fmt) -> Path``: a fresh copy of the pristine store of that format."""

    def copy(fmt: str = "zarr", name: str = "store") -> Path:
        dst = tmp_path / f"{name}-{fmt}"
        shutil.copytree(pristine[fmt], dst, symlinks=True)
        return dst

    return copy


def edit_index(root: Path, change) -> dict:
    """Apply ``change(index_dict)`` to ``root/index.json`` and write it back."""
    d = json.loads((root / "index.json").read_text())
    change(d)
    (root / "index.json").write_text(json.dumps(d))
    return d


def tree(root: Path) -> set[str]:
    """Every path under ``root`` (files, folders, links), relative."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}
