"""Target stores: sharded Zarr v3 or WebDataset, one API (see docs/architecture.md "Store layout").

Write with ``StoreWriter`` (one per shard prefix / rank), commit with ``finalize_store``, read
with ``StoreReader``. ``manifests/README.md`` shows how to read a store without geovr.
"""

from __future__ import annotations

from geovr.shared.manifest import Manifest, StoreHeader
from geovr.shared.safety import (
    CorruptStoreError,
    IncompatibleStoreError,
    NotFinalizedError,
    StoreError,
    UnsafeContentError,
)
from geovr.shared.stores.finalize import finalize_store
from geovr.shared.stores.reader import StoreReader
from geovr.shared.stores.sidecar import ClipFailure, ShardInfo
from geovr.shared.stores.verify import verify_store
from geovr.shared.stores.wds_shard import clip_key
from geovr.shared.stores.writer import StoreWriter

__all__ = [
    "ClipFailure",
    "CorruptStoreError",
    "IncompatibleStoreError",
    "Manifest",
    "NotFinalizedError",
    "ShardInfo",
    "StoreError",
    "StoreHeader",
    "StoreReader",
    "StoreWriter",
    "UnsafeContentError",
    "clip_key",
    "finalize_store",
    "verify_store",
]
