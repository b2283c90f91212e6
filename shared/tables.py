"""Small Parquet tables (corpus manifests, per-clip tables, benchmark rows), read without threads.

A pyarrow read through a Python file object starts an IO-pool worker thread, and a worker still
alive when the interpreter exits can abort it ("terminate called without an active exception",
apache/arrow#34314): ``geovr shards verify`` died that way in a few % of runs on a loaded machine.
These tables are small, so ``read_rows`` reads the bytes first and parses them from memory,
single-threaded: no pyarrow thread is ever started.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def read_rows(source: str | Path | Any) -> list[dict]:
    """Rows of a Parquet file (a path, or an open binary file) as dicts."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if hasattr(source, "read"):
        data = source.read()
    else:
        data = Path(source).read_bytes()
    return pq.ParquetFile(pa.BufferReader(data)).read(use_threads=False).to_pylist()
