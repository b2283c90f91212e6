"""``verify_store``: recompute hashes and counts of a finalised store; list every problem."""

from __future__ import annotations

import os
from typing import Any

from geovr.shared.hashing import sha256_file
from geovr.shared.manifest import Manifest
from geovr.shared.safety import StoreError, check_regular_file, is_local_fs, read_json_file
from geovr.shared.stores.fsio import resolve
from geovr.shared.stores.lock import LOCK_PREFIX

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
    check_regular_file(path, fs, root if is_local_fs(fs) else None)
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

    Checks: ``index.json`` parses, is compatible and names only safe relative paths; every listed
    file is a plain file (no symlink, FIFO, device) inside the store with the listed size
    (truncation) and sha256 (bit flips, when ``hashes``); ``header.json`` and every sidecar are
    covered by a hash (``meta_files``); ``clips.parquet`` matches its hash and the shard sample
    counts; every WebDataset shard's offset index describes its tar exactly (rebuilt from the tar's
    headers: the clip table's samples in row order, no duplicate or appended member, zero padding after
    the last sample; ``wds_index.verify_tar_index``); every Zarr shard's ``clip_index.npy`` describes its group
    exactly (``zarr_shard.verify_zarr_index``); no unknown extra files.
    """
    url = os.fspath(root).rstrip("/")
    fs, root, _local = resolve(url)
    url = root if _local else url
    problems: list[str] = []
    try:
        man = load_manifest(fs, root)
    except StoreError as e:
        return [str(e)]
    known = {"index.json", "header.json", man.clips_table}
    entries = [(f"shards/{f.path}", f, f"for shard {shard.name}") for shard in man.shards for f in shard.files]
    entries += [(f.path, f, "as a meta file") for f in man.meta_files]
    for shard in man.shards:
        known.add(f"shards/{shard.name}.json")
    indexed = _indexed_tars(man) if man.header.format == "wds" and hashes else {}
    bad_files: set[str] = set()
    for rel, f, why in entries:
        known.add(rel)
        # an indexed tar is hashed by the index check below, in the same pass that scans its headers
        found = _check_file(fs, root, rel, f, why, hashes and rel not in indexed, _local)
        if found:
            bad_files.add(rel)
        problems.extend(found)
    uncovered = sorted(man.expected_meta_files() - {f.path for f in man.meta_files})
    if uncovered:
        problems.append(f"{root}/index.json: {len(uncovered)} file(s) not covered by a hash, first {uncovered[0]!r} "
                        f"(format {man.format_version} store; re-finalize it with `geovr extract --finalize`)")
    tpath = f"{root}/{man.clips_table}"
    table = None
    try:
        check_regular_file(tpath, fs, root if _local else None)
    except StoreError as e:
        problems.append(str(e))
    else:
        digest, _n = sha256_file(tpath, fs)
        if man.clips_table_sha256 and digest != man.clips_table_sha256:
            problems.append(f"{tpath}: sha256 does not match index.json (corrupted)")
        else:
            found, table = _check_counts(fs, tpath, man)
            problems.extend(found)
    if indexed:
        problems.extend(_check_wds_indexes(fs, root, indexed, table, bad_files))
    unknown = [rel for rel in list_store_files(fs, root)
               if rel not in known and not rel.startswith(LOCK_PREFIX)]  # a writer's lock file is not store content
    if man.header.format == "zarr" and hashes:
        problems.extend(_check_zarr_indexes(fs, root, url, _local, man, bad_files | set(unknown)))
    for rel in unknown:
        problems.append(f"{root}/{rel}: unknown file, not listed in index.json")
    return problems


def _check_zarr_indexes(fs: Any, root: str, url: str, local: bool, man: Manifest, bad: set[str]) -> list[str]:
    """``verify_zarr_index`` of every Zarr shard that lists a ``clip_index.npy``, whose listed files all passed and
    whose folder holds no unknown file (the rebuild reads the group through zarr)."""
    from geovr.shared.stores.zarr_shard import INDEX_FILE, verify_zarr_index

    out = []
    for shard in man.shards:
        listed = {f.path for f in shard.files}
        if {f"{shard.name}/{INDEX_FILE}", f"{shard.name}/zarr.json"} <= listed and not any(
                b.startswith(f"shards/{shard.name}/") for b in bad):
            out.extend(verify_zarr_index(f"{url}/shards/{shard.name}", local, fs, f"{root}/shards/{shard.name}",
                                         shard.samples))
    return out


def _check_file(fs: Any, root: str, rel: str, f: Any, why: str, hashes: bool, local: bool) -> list[str]:
    path = f"{root}/{rel}"
    try:
        check_regular_file(path, fs, root if local else None)
    except StoreError as e:
        return [f"{e} (listed in index.json {why})"]
    size = int(fs.size(path))
    if size != f.bytes:
        return [f"{path}: {size} bytes, index.json says {f.bytes} (truncated or rewritten)"]
    if hashes:
        digest, _n = sha256_file(path, fs)
        if digest != f.sha256:
            return [f"{path}: sha256 {digest[:16]}... != index.json {f.sha256[:16]}... (corrupted)"]
    return []


def _indexed_tars(man: Manifest) -> dict[str, tuple[Any, Any, Any]]:
    """``shards/<name>.tar -> (shard, tar entry, index entry)`` of every WebDataset shard that lists an offset index."""
    from geovr.shared.stores.wds_index import INDEX_SUFFIX

    out = {}
    for shard in man.shards:
        files = {f.path: f for f in shard.files}
        tar, idx = files.get(f"{shard.name}.tar"), files.get(f"{shard.name}{INDEX_SUFFIX}")
        if tar is not None and idx is not None:
            out[f"shards/{tar.path}"] = (shard, tar, idx)
    return out


def _check_wds_indexes(fs: Any, root: str, indexed: dict[str, tuple[Any, Any, Any]], table: list[dict] | None,
                       bad_files: set[str]) -> list[str]:
    """``verify_tar_index`` (sha256 + every member against the index and the clip table's keys, one pass over the
    tar) of every indexed WebDataset shard whose files passed the plain-file and size checks."""
    from geovr.shared.stores.wds_index import verify_tar_index
    from geovr.shared.stores.wds_shard import clip_key

    rows: dict[str, list[tuple[int, str]]] | None = None
    if table is not None:
        rows = {}
        try:
            for r in table:
                if r["status"] == "ok":
                    rows.setdefault(str(r["shard"]), []).append((int(r["row"]), str(r["clip_id"])))
        except (KeyError, TypeError, ValueError):
            rows = None  # the clip table's own problems are reported by _check_counts
    out = []
    for rel, (shard, tar, idx) in indexed.items():
        if {rel, f"shards/{idx.path}"} & bad_files:
            continue
        keys = None if rows is None else [clip_key(cid) for _row, cid in sorted(rows.get(shard.name, []))]
        out.extend(verify_tar_index(fs, f"{root}/{rel}", f"{root}/shards/{idx.path}", shard.samples, keys, tar.sha256))
    return out


def _check_counts(fs: Any, tpath: str, man: Manifest) -> tuple[list[str], list[dict] | None]:
    """Problems of the clip table's counts against ``index.json``, and its rows (None when unreadable)."""
    from geovr.shared.tables import read_rows

    try:
        with fs.open(tpath, "rb") as f:
            table = read_rows(f)
    except Exception as e:
        return [f"{tpath}: unreadable parquet ({type(e).__name__}: {e})"], None
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
    return out, table
