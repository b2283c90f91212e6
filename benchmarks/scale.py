"""Stage two at store scale: start-up time and per-sample read overhead vs the number of clips.

Synthetic stores of ``--sizes`` tiny clips (2 frames, 8x12 JPEGs, small targets; written with
``StoreWriter`` directly, ``--clips-per-shard`` clips per shard) in both formats. For each store:

- ``startup_s``: ``TrainData(...)`` construction with ``data.sampling`` unset (clip table, join,
  order, the first-clip feature probe).
- ``meta_read_s``: ``StoreReader.iter_meta()`` over every clip: the metadata-only read that stage
  two's sampling check (``data.sampling`` set) does before the first step (Zarr: group attributes
  per shard; WebDataset: each clip's ``meta.json`` by one small ranged read through the shard
  index). The per-clip comparison itself (``check_clip_matches``, pure CPU) is not included:
  these synthetic clips carry no real sampling plan.
- ``sample_ms``: mean wall time of ``TrainData.sample(position)`` over ``--samples`` positions in
  the training order (random clips, so random shards), after ``--warmup`` samples, with a fresh
  reader: at 100 shards most samples are the first read of their shard, so this includes opening it.
- ``again_ms``: the same positions read again (every shard handle already open: the steady state
  of a long run, whose reader keeps its shard handles, ``StoreReader.max_open_bytes``).
- ``x_vs_smallest`` / ``again_x``: ``sample_ms`` / ``again_ms`` relative to the smallest size of the
  same format.

All stores are written first, then measured in ``--rounds`` rounds, the sizes taking turns within
each round (so a change of load on a shared machine hits them alike), each round with a fresh
``TrainData`` and another epoch order; every figure is the median over the rounds. The load average
is printed before and after the measurements.

Goals (issue #15): start-up < 5 s at every size; per-sample overhead within 1.5x between the
smallest and the largest size.

    python benchmarks/scale.py [--sizes 1000 10000] [--big]   # --big adds 100000
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, table  # noqa: E402


def build_store(root: Path, fmt: str, n: int, per_shard: int) -> float:
    """Write ``n`` tiny clips into a finalised store at ``root``; returns seconds taken."""
    from geovr.shared.stores import StoreWriter, finalize_store
    from geovr.shared.stores.testing import make_clip, make_header

    t0 = time.perf_counter()
    header = make_header(fmt, "fp16", layers=(4,))
    tpl = make_clip("tpl/00000", header, s=2, hw=(8, 12), grid=(1, 2), channels=4)
    w = StoreWriter(root, header)
    for start in range(0, n, per_shard):
        clips = [dataclasses.replace(tpl, clip_id=f"scene{i // 100:05d}/{i % 100:05d}")
                 for i in range(start, min(n, start + per_shard))]
        w.write_shard(clips)
    finalize_store(root)
    return time.perf_counter() - t0


def measure(root: Path, samples: int, warmup: int, seed: int) -> dict:
    """One fresh ``TrainData`` (epoch order from ``seed``): start-up, metadata read, cold and repeated samples."""
    from geovr.train.config import DataConfig
    from geovr.train.data import TrainData

    t0 = time.perf_counter()
    data = TrainData(DataConfig(stores=[str(root)], mix_clips_without_qa=True), seed=seed)
    startup = time.perf_counter() - t0
    t0 = time.perf_counter()
    n_meta = sum(1 for _ in data.readers[0].iter_meta())
    meta_read = time.perf_counter() - t0
    assert n_meta == len(data.readers[0])
    for p in range(warmup):
        data.sample(p)
    out = {"startup_s": startup, "meta_read_s": meta_read}
    for key in ("sample_ms", "again_ms"):
        t0 = time.perf_counter()
        for p in range(warmup, warmup + samples):
            data.sample(p)
        out[key] = (time.perf_counter() - t0) / samples * 1e3
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000], help="Store sizes in clips.")
    ap.add_argument("--big", action="store_true", help="Also measure 100000 clips (minutes to write on 2 cores).")
    ap.add_argument("--formats", nargs="+", default=["zarr", "wds"], choices=["zarr", "wds"])
    ap.add_argument("--clips-per-shard", type=int, default=1000, help="Clips per shard (extraction default scale).")
    ap.add_argument("--samples", type=int, default=300, help="Samples timed per store.")
    ap.add_argument("--warmup", type=int, default=20, help="Samples read before timing.")
    ap.add_argument("--rounds", type=int, default=3,
                    help="Fresh readers per store, the sizes taking turns each round; medians are reported.")
    ap.add_argument("--dir", default=None, help="Where to write the stores (default: a temporary folder).")
    args = ap.parse_args()
    sizes = sorted(set(args.sizes + ([100_000] if args.big else [])))
    print(f"machine: {machine()}")
    rows = []
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        written = {}
        for fmt in args.formats:
            for n in sizes:
                written[fmt, n] = build_store(Path(tmp) / f"{fmt}-{n}", fmt, n, args.clips_per_shard)
                print(f"wrote {fmt} {n} clips in {written[fmt, n]:.3g} s", flush=True)
        print(f"load average before measuring: {os.getloadavg()[0]:.2f}", flush=True)
        got: dict[tuple[str, int], list[dict]] = {key: [] for key in written}
        for r in range(args.rounds):  # sizes take turns, so a change in load hits them alike
            for key in written:
                got[key].append(measure(Path(tmp) / f"{key[0]}-{key[1]}", args.samples, args.warmup, seed=r))
        for fmt in args.formats:
            base = None
            for n in sizes:
                m = {k: statistics.median(x[k] for x in got[fmt, n]) for k in got[fmt, n][0]}
                base = base or m
                rows.append({"format": fmt, "clips": n, "shards": -(-n // args.clips_per_shard),
                             "write_s": written[fmt, n], **m, "x_vs_smallest": m["sample_ms"] / base["sample_ms"],
                             "again_x": m["again_ms"] / base["again_ms"]})
        print(f"load average after measuring: {os.getloadavg()[0]:.2f}")
    cols = ["format", "clips", "shards", "write_s", "startup_s", "meta_read_s", "sample_ms", "again_ms",
            "x_vs_smallest", "again_x"]
    print("\n" + table(rows, cols))
    worst_start = max(r["startup_s"] + r["meta_read_s"] for r in rows)
    worst_x = max(r["x_vs_smallest"] for r in rows)
    print(f"\nstart-up incl. metadata read: worst {worst_start:.3g} s (goal < 5 s: {'met' if worst_start < 5 else 'MISSED'})")
    print(f"per-sample overhead: worst {worst_x:.3g}x the smallest store "
          f"(goal <= 1.5x: {'met' if worst_x <= 1.5 else 'MISSED'})")


if __name__ == "__main__":
    main()
