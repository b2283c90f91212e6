"""``finalize_store``: merge every committed shard sidecar into ``clips.parquet`` + ``index.json``."""

from __future__ import annotations

import io
import os
import shutil

from geovr.shared.errors import UsageError
from geovr.shared.hashing import sha256_bytes, sha256_file
from geovr.shared.manifest import FORMAT_NAME, FORMAT_VERSION, FileEntry, Manifest, StoreHeader, target_specs
from geovr.shared.safety import CorruptStoreError, StoreError, check_regular_file, read_json_file
from geovr.shared.stores.fsio import TMP_PREFIX, atomic_write_bytes, resolve
from geovr.shared.stores.lock import held_locks
from geovr.shared.stores.sidecar import SHARD_NAME_RE, ShardInfo

__all__ = ["finalize_store", "read_sidecars", "remove_temporaries"]


def read_sidecars(shards_dir: str) -> list[ShardInfo]:
    """Committed shards (sidecar present) of a local ``shards/`` folder, sorted by name."""
    out = []
    if not os.path.isdir(shards_dir):
        return out
    for entry in sorted(os.listdir(shards_dir)):
        if entry.endswith(".json") and SHARD_NAME_RE.match(entry[:-5]):
            path = os.path.join(shards_dir, entry)
            out.append(ShardInfo.from_dict(read_json_file(path), path))
    return out


def remove_temporaries(root: str) -> list[str]:
    """Delete every ``.tmp-*`` left in the store root and ``shards/`` by a killed writer, header creation
    or finalize (call only while no job writes the store); return the removed paths."""
    removed = []
    for d in (root, os.path.join(root, "shards")):
        if not os.path.isdir(d):
            continue
        for entry in os.listdir(d):
            if entry.startswith(TMP_PREFIX):
                full = os.path.join(d, entry)
                shutil.rmtree(full) if os.path.isdir(full) and not os.path.islink(full) else os.remove(full)
                removed.append(full)
    return removed


def finalize_store(root: str | os.PathLike[str]) -> Manifest:
    """Write ``clips.parquet`` then ``index.json`` (last, atomically) for a local store; return the manifest.

    Duplicate stored clip ids across shards are refused (``StoreError`` naming both shards). A
    clip recorded as failed in one shard and stored in another (a successful retry) counts as
    stored; its failure record is dropped. Refused (``UsageError``) while a writer still holds a
    prefix lock; temporaries of killed runs (``.tmp-*``) are removed first.
    ``index.json`` lists ``header.json`` and every sidecar with their sha256 (``meta_files``).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    _fs, root, is_local = resolve(root)
    if not is_local:
        raise ValueError(f"{root}: finalize a local store, then `geovr shards publish` it")
    busy = held_locks(root)
    if busy:
        raise UsageError(f"{root}: shard prefix(es) {busy} are still being written by a running job; "
                         "finalize after every rank has finished")
    remove_temporaries(root)
    header_path = os.path.join(root, "header.json")
    header = StoreHeader.from_dict(read_json_file(header_path), header_path)
    shards_dir = os.path.join(root, "shards")
    infos = read_sidecars(shards_dir)
    where_ok: dict[str, str] = {}
    rows: dict[str, dict] = {}
    for info in infos:
        if info.format != header.format:
            raise CorruptStoreError(f"{shards_dir}/{info.name}.json: shard format {info.format!r} != store {header.format!r}")
        for f in info.files:
            check_regular_file(os.path.join(shards_dir, f.path), root=root)
        for row, (cid, n) in enumerate(zip(info.clips, info.num_frames, strict=True)):
            if cid in where_ok:
                raise StoreError(f"{root}: clip {cid!r} is stored twice, in shards {where_ok[cid]} and {info.name}")
            where_ok[cid] = info.name
            rows[cid] = {"clip_id": cid, "shard": info.name, "row": row, "status": "ok", "reason": "", "num_frames": n}
    for info in infos:
        for fail in info.failures:
            if fail.clip_id not in where_ok:
                rows[fail.clip_id] = {"clip_id": fail.clip_id, "shard": info.name, "row": -1,
                                      "status": "failed", "reason": fail.reason, "num_frames": 0}
    ordered = sorted(rows.values(), key=lambda r: (r["shard"], r["row"] if r["row"] >= 0 else 1 << 40, r["clip_id"]))
    schema = pa.schema([("clip_id", pa.string()), ("shard", pa.string()), ("row", pa.int64()),
                        ("status", pa.string()), ("reason", pa.string()), ("num_frames", pa.int64())])
    table = pa.Table.from_pylist(ordered, schema=schema)
    buf = io.BytesIO()
    pq.write_table(table, buf)
    data = buf.getvalue()
    atomic_write_bytes(os.path.join(root, "clips.parquet"), data)
    meta_files = []
    for rel in ["header.json"] + [f"shards/{i.name}.json" for i in infos]:
        digest, size = sha256_file(os.path.join(root, rel))
        meta_files.append(FileEntry(path=rel, bytes=size, sha256=digest))
    manifest = Manifest(
        format=FORMAT_NAME, format_version=FORMAT_VERSION, header=header, targets=target_specs(header),
        shards=[i.entry() for i in infos], num_clips=len(where_ok),
        num_failed=sum(1 for r in ordered if r["status"] == "failed"),
        clips_table="clips.parquet", clips_table_sha256=sha256_bytes(data), meta_files=meta_files,
    )
    atomic_write_bytes(os.path.join(root, "index.json"), (manifest.to_json() + "\n").encode())
    return manifest
