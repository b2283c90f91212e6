"""Issue #12 item 3, end to end: ``geovr train`` (a real subprocess, as a user runs it) on a tampered store.

Each case tampers a copy of a finalised oracle store (the session's; Zarr, or WebDataset), then runs
``geovr train --config tiny_cpu`` on it, all cases at once. The run must exit 4 (store integrity) with one
``error: ...`` line naming the shard (and the clip, for content found by reading it), no traceback, and
nothing written anywhere but ``$GEOVR_CACHE/verified`` (hashes of the *good* files); no run folder, the
store untouched. ``model.model`` points at an empty folder (no model in it), so a run that got as far as
loading the model would end in a different error: every case here is refused before any model loads.
Hash and name problems are found by ``data.verify: all``; hash-consistent content (a Zarr shape the
attacker re-hashed) by the first clip read, which ``geovr train`` also does before the model loads
(``TrainData`` probes the first item); a bad clip met later is refused when it is first read (README,
"What is verified when").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.conftest import _oracle_store
from tests.security.conftest import edit_index
from tests.security.test_stage_two import rehash


def _flip_depth_chunk(root: Path) -> None:
    chunk = next(p for p in sorted((root / "shards" / "r000-00000" / "depth").rglob("*"))
                 if p.is_file() and p.name != "zarr.json")
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))


def _zarr_shape_rehashed(root: Path) -> None:
    meta = root / "shards" / "r000-00000" / "depth" / "zarr.json"
    d = json.loads(meta.read_text())
    d["shape"] = [d["shape"][0], 20000, 20000]  # 2.4 GB of float16 per 3 frames, from a few bytes of JSON
    meta.write_text(json.dumps(d))
    rehash(root, "r000-00000", "zarr")  # every sha256 matches again


def _dotdot_shard_file(root: Path) -> None:
    edit_index(root, lambda d: d["shards"][0]["files"][0].update(path="../../../outside.tar"))


def _absolute_clips_table(root: Path) -> None:
    edit_index(root, lambda d: d.update(clips_table="/etc/passwd"))


def _appended_duplicate_member(root: Path) -> None:
    import io

    data = b"\x93NUMPY forged"
    info = tarfile.TarInfo("synth_0000.depth.npy")
    info.size = len(data)
    with tarfile.open(root / "shards" / "r000-00000.tar", "a") as tf:  # after the indexed samples
        tf.addfile(info, io.BytesIO(data))
    rehash(root, "r000-00000", "wds")


CASES = {  # name: (store format, tamper, stderr pattern after "error: ")
    "flipped byte in a depth chunk": ("zarr", _flip_depth_chunk,
                                      r"r000-00000/depth/\S+: sha256 .* \(corrupted\); training refused"),
    "zarr shape re-hashed": ("zarr", _zarr_shape_rehashed,
                             r"r000-00000 clip 'synth_000[01]': array 'depth' has per-frame shape \(20000, 20000\)"),
    "'..' shard file path": ("wds", _dotdot_shard_file, r"\.\./\.\./\.\./outside\.tar"),
    "absolute clips_table": ("zarr", _absolute_clips_table, r"/etc/passwd"),
    "duplicate tar member appended": ("wds", _appended_duplicate_member,
                                      r"r000-00000\.tar: member 'synth_0000\.depth\.npy' appears after other samples"),
}


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="module")
def refused_runs(oracle_store, synth_corpus, tmp_path_factory, env):
    """Run ``geovr train`` on every tampered copy at once; ``case -> (returncode, stderr, before, after, work)``."""
    import shutil

    stores = {"zarr": oracle_store[0], "wds": _oracle_store(synth_corpus, tmp_path_factory, fmt="wds")[0]}
    qa = oracle_store[1]
    procs = {}
    for i, (name, (fmt, tamper, _pattern)) in enumerate(CASES.items()):
        work = tmp_path_factory.mktemp(f"tampered{i}")
        store = work / "store"
        shutil.copytree(stores[fmt], store)
        os.environ["GEOVR_CACHE"], old = str(work / "scratch-cache"), os.environ.get("GEOVR_CACHE")
        try:
            tamper(store)  # (re-finalising writes nothing to the cache)
        finally:
            os.environ.pop("GEOVR_CACHE") if old is None else os.environ.__setitem__("GEOVR_CACHE", old)
        shutil.rmtree(work / "scratch-cache", ignore_errors=True)
        shutil.copy(qa, work / "qa.jsonl")
        (work / "not-a-model").mkdir()
        before = _snapshot(work)
        cmd = [sys.executable, "-m", "geovr", "train", "--config", "tiny_cpu", f"data.stores=[{store}]",
               f"data.instructions=[{work / 'qa.jsonl'}]", f"run.out_dir={work / 'run'}",
               f"model.model={work / 'not-a-model'}", "run.max_steps=1"]
        run_env = {**env, "GEOVR_CACHE": str(work / "cache")}
        procs[name] = (subprocess.Popen(cmd, cwd=work, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True), before, work)
    out = {}
    for name, (proc, before, work) in procs.items():
        _stdout, stderr = proc.communicate(timeout=120)
        out[name] = (proc.returncode, stderr, before, _snapshot(work), work)
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_train_refuses_a_tampered_store_before_the_model_loads(refused_runs, case) -> None:
    import re

    rc, stderr, before, after, work = refused_runs[case]
    lines = stderr.strip().splitlines()
    assert rc == 4, stderr[-2000:]  # EXIT_STORE: a store failed an integrity or trust check
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in stderr, stderr[-2000:]
    assert re.search(CASES[case][2], lines[0]), lines[0]
    written = {p for p in after if p not in before or after[p] != before[p]}
    cache = {p for p in written if p == "cache" or p.startswith("cache/")}
    assert written == cache, sorted(written - cache)  # the store, the QA file and the work folder untouched
    assert all(p in ("cache", "cache/verified") or re.fullmatch(r"cache/verified/[0-9a-f]{32}\.json", p) for p in cache)
    assert not (work / "run").exists()
