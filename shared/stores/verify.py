"""``verify_store``: recompute hashes and counts of a finalised store; list every problem."""

from __future__ import annotations

import os
from typing import Any

from geovr.shared.hashing import sha256_file
from geovr.shared.manifest import Manifest
from geovr.shared.safety import StoreError, read_json_file
from geovr.shared.stores.fsio import resolve

__all__ = ["list_store_files", "load_manifest", "verify_store"]


def load_manifest(fs: Any, root: str) -> Manifest:
    """Parse ``root/index.json`` (``NotFinalizedError`` if absent)."""
    from geovr.shared.safety import NotFinalizedError

    path = f"{root}/index.json"
    if not fs.exists(path):
        if not fs.exists(root):
            raise NotFinalizedError(f"{root}: no such store")
        raise NotFinalizedError(f"{path}: no index.json; the store is not finalised (let `geovr extract` finish, "
                                f"or run `geovr extract --finalize --out {root}` after all ranks finished)")
    return Manifest.from_dict(read_json_file(path, fs), path)


def list_store_files(fs: Any, root: str) -> list[str]:
    """Every file under ``root``, as ``/``-separated paths relative to it."""
    out = []
    for p in fs.find(root):
        rel = p[len(root):].lstrip("/") if p.startswith(root) else os.path.relpath(p, root)
        out.append(rel.replace(os.sep, "/"))
    return sorted(out)


def verify_store(root: str, hashes: bool = True) -> list[str]:
    """Problems found in the store at ``root`` (local or fsspec URL); empty list = verified.

    Checks: ``index.json`` parses and is compatible; every listed file exists with the listed
    size (truncation) and sha256 (bit flips, when ``hashes``); ``clips.parquet`` matches its
    hash and the shard sample counts; no unknown extra files under ``shards/``.
    """
    fs, root, _local = resolve(root)
    problems: list[str] = []
    try:
        man = load_manifest(fs, root)
    except StoreError as e:
        return [str(e)]
    known = {"index.json", "header.json", man.clips_table}
    for shard in man.shards:
        known.add(f"shards/{shard.name}.json")
        for f in shard.files:
            rel = f"shards/{f.path}"
            known.add(rel)
            path = f"{root}/{rel}"
            if not fs.exists(path):
                problems.append(f"{path}: missing (listed in index.json for shard {shard.name})")
                continue
            size = int(fs.size(path))
            if size != f.bytes:
                problems.append(f"{path}: {size} bytes, index.json says {f.bytes} (truncated or rewritten)")
                continue
            if hashes:
                digest, _n = sha256_file(path, fs)
                if digest != f.sha256:
                    problems.append(f"{path}: sha256 {digest[:16]}... != index.json {f.sha256[:16]}... (corrupted)")
    tpath = f"{root}/{man.clips_table}"
    if not fs.exists(tpath):
        problems.append(f"{tpath}: missing")
    else:
        digest, _n = sha256_file(tpath, fs)
        if man.clips_table_sha256 and digest != man.clips_table_sha256:
            problems.append(f"{tpath}: sha256 does not match index.json (corrupted)")
        else:
            problems.extend(_check_counts(fs, tpath, man))
    for rel in list_store_files(fs, root):
        if rel not in known:
            problems.append(f"{root}/{rel}: unknown file, not listed in index.json")
    return problems


def _check_counts(fs: Any, tpath: str, man: Manifest) -> list[str]:
    from geovr.shared.tables import read_rows

    try:
        with fs.open(tpath, "rb") as f:
            table = read_rows(f)
    except Exception as e:
        return [f"{tpath}: unreadable parquet ({type(e).__name__}: {e})"]
    out = []
    ok: dict[str, int] = {}
    for r in table:
        if r["status"] == "ok":
            ok[r["shard"]] = ok.get(r["shard"], 0) + 1
    for s in man.shards:
        if ok.get(s.name, 0) != s.samples:
            out.append(f"{tpath}: {ok.get(s.name, 0)} ok clips for shard {s.name}, index.json says {s.samples}")
    if sum(ok.values()) != man.num_clips:
        out.append(f"{tpath}: {sum(ok.values())} ok clips in total, index.json says {man.num_clips}")
    return out
