"""``geovr shards merge``: combine finalised stores (runs, ranks, labs) into one new store.

Headers must agree on every compatibility field (``StoreHeader.compat_key``); stored clip ids
must be unique over all inputs. Shards are copied (not moved) and renamed
``m<input:02d>_<prefix>-<seq>`` so names cannot collide; their sidecars are rewritten with the
new names; the result is finalised with ``finalize_store``.

Inputs are untrusted: each is verified in full (hashes of every file, sidecars included) and each
sidecar must list exactly the clips that ``clips.parquet`` and the shard itself hold, before
anything is written. The output must not lie inside an input (nor an input inside the output).
"""

from __future__ import annotations

import dataclasses
import os
import shutil

from geovr.shared.errors import UsageError
from geovr.shared.manifest import Manifest, header_differences
from geovr.shared.safety import CorruptStoreError, IncompatibleStoreError, StoreError, read_json_file
from geovr.shared.stores.finalize import finalize_store
from geovr.shared.stores.fsio import atomic_write_json, resolve
from geovr.shared.stores.reader import StoreReader
from geovr.shared.stores.sidecar import SHARD_NAME_RE, ShardInfo, file_entries
from geovr.shared.stores.verify import verify_store
from geovr.shared.stores.wds_shard import clip_key
from geovr.shared.stores.writer import open_or_create_header

__all__ = ["merge_stores"]


def _check_sidecar(r: StoreReader, name: str, info: ShardInfo, side_path: str) -> None:
    """The sidecar must list the clips ``clips.parquet`` puts in this shard, in row order, and the shard
    must hold exactly those clips (read from its metadata only)."""
    table = sorted((row, cid) for cid, (shard, row) in r._rows.items() if shard == name)
    if [cid for _row, cid in table] != list(info.clips) or [row for row, _ in table] != list(range(len(table))):
        raise CorruptStoreError(f"{side_path}: lists clips {info.clips[:3]}... that differ from "
                                f"{r.manifest.clips_table} for shard {name}; merge refused")
    shard = r._shard(name)
    if r.header.format == "zarr":
        stored = [str(m.get("clip_id")) if isinstance(m, dict) else None for m in shard.metas]
        ok = stored == list(info.clips)
    else:
        try:
            metas = shard.read_metas([clip_key(c) for c in info.clips], list(range(len(info.clips))))
        except StoreError:
            metas = []
        ok = [m.get("clip_id") if isinstance(m, dict) else None for m in metas] == list(info.clips)
    if not ok:
        raise CorruptStoreError(f"{side_path}: the shard {name} does not hold the clips its sidecar lists; merge refused")


def merge_stores(out: str, stores: list[str]) -> Manifest:
    """Merge local finalised ``stores`` into the new local store ``out``; return its manifest."""
    if len(stores) < 1:
        raise UsageError("merge needs at least one input store")
    _fs, out, is_local = resolve(out)
    if not is_local:
        raise UsageError(f"{out}: merge into a local folder, then publish it")
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"{out}: output exists and is not a folder")
    if os.path.exists(out) and os.listdir(out):
        raise UsageError(f"{out}: output folder exists and is not empty")
    real_out = os.path.realpath(out)
    for s in stores:
        fs_s, path_s, local_s = resolve(s)
        if not local_s:
            raise UsageError(f"{s}: merge reads local stores; pull it first")
        real_in = os.path.realpath(path_s)
        if os.path.commonpath([real_in, real_out]) in (real_in, real_out):
            raise UsageError(f"{out}: output folder overlaps the input store {s} (one is inside the other); "
                             "merge into a folder outside every input")
        if not os.path.isfile(os.path.join(path_s, "index.json")):  # a named input that is not a store: usage
            raise UsageError(f"{s}: " + ("no index.json; the store is not finalised" if os.path.isdir(path_s)
                                         else "no such store"))
        problems = verify_store(path_s)
        if problems:
            raise CorruptStoreError(f"{s}: input store does not verify; merge refused:\n  " + "\n  ".join(problems))
    readers = [StoreReader(s) for s in stores]
    ref = readers[0]
    for s, r in zip(stores[1:], readers[1:], strict=True):
        diffs = header_differences(ref.header, r.header)
        if diffs:
            raise IncompatibleStoreError(f"{s}: header differs from {stores[0]}: " + "; ".join(diffs))
    seen: dict[str, str] = {}
    for s, r in zip(stores, readers, strict=True):
        for cid in r.clip_ids:
            if cid in seen:
                raise UsageError(f"clip {cid!r} is stored in both {seen[cid]} and {s}; merge refused")
            seen[cid] = s
    open_or_create_header(out, ref.header)
    shards_out = os.path.join(out, "shards")
    os.makedirs(shards_out, exist_ok=True)
    for i, r in enumerate(readers):
        if not r.is_local:
            raise UsageError(f"{r.url}: merge reads local stores; pull it first")
        src_dir = os.path.join(r.root, "shards")
        for entry in r.manifest.shards:
            m = SHARD_NAME_RE.match(entry.name)
            if m is None:
                raise StoreError(f"{r.root}: invalid shard name {entry.name!r}")
            new = f"m{i:02d}_{m.group(1)}-{m.group(2)}"
            side_path = os.path.join(src_dir, f"{entry.name}.json")
            info = ShardInfo.from_dict(read_json_file(side_path), side_path)
            _check_sidecar(r, entry.name, info, side_path)
            if r.header.format == "wds":  # the tar and (when present) its offset index
                for f in entry.files:
                    shutil.copyfile(os.path.join(src_dir, f.path),
                                    os.path.join(shards_out, new + f.path[len(entry.name):]))
            else:
                shutil.copytree(os.path.join(src_dir, entry.name), os.path.join(shards_out, new))
            files = file_entries(shards_out, new, r.header.format)
            old = {f.path.split("/", 1)[-1] if r.header.format == "zarr" else f.path[len(entry.name):]: f.sha256
                   for f in entry.files}
            got = {f.path.split("/", 1)[-1] if r.header.format == "zarr" else f.path[len(new):]: f.sha256 for f in files}
            if old != got:
                raise StoreError(f"{r.root}/shards/{entry.name}: copied files do not match the source index.json hashes")
            atomic_write_json(os.path.join(shards_out, f"{new}.json"),
                              dataclasses.replace(info, name=new, files=files).to_dict())
    return finalize_store(out)
