"""Issue #12 items 1, 2, 7, 8, 9: one trust boundary for names, paths and files read from a store."""

from __future__ import annotations

import json
import os
import threading

import pytest

from geovr.shared.errors import UsageError
from geovr.shared.safety import CorruptStoreError, StoreError, UnsafeContentError, check_rel_path
from geovr.shared.shards.merge import merge_stores
from geovr.shared.shards.transfer import transfer_store
from geovr.shared.stores import StoreReader, finalize_store, verify_store
from tests.security.conftest import edit_index, tree


@pytest.mark.parametrize("bad", ["../x", "a/../../x", "/etc/passwd", "C:/x", "a\\b", "a//b", "./a", "", "a\x00b"])
def test_rel_path_rules(bad) -> None:
    with pytest.raises(UnsafeContentError):
        check_rel_path(bad, "index.json")
    assert check_rel_path("shards/r000-00000.tar", "x") == "shards/r000-00000.tar"


def _escape_file(d: dict) -> None:  # item 1: a file path escaping the store
    d["shards"][0]["files"][0]["path"] = "../../evil.bin"


def _escape_table(d: dict) -> None:
    d["clips_table"] = "/tmp/evil.parquet"


def _bad_shard_name(d: dict) -> None:
    d["shards"][0]["name"] = "../../r000-00000"


@pytest.mark.parametrize("change", [_escape_file, _escape_table, _bad_shard_name])
@pytest.mark.parametrize("fmt", ["zarr", "wds"])
def test_item01_traversal_refused_by_verify_reader_and_pull(store_copy, tmp_path, fmt, change) -> None:
    src = store_copy(fmt)
    edit_index(src, change)
    problems = verify_store(str(src))
    assert problems and "refused" in problems[0] and "index.json" in problems[0]
    with pytest.raises(UnsafeContentError, match="index.json"):
        StoreReader(src)
    before = tree(tmp_path)
    dest = tmp_path / "pulled"
    with pytest.raises(UnsafeContentError, match="index.json"):
        transfer_store(str(src), str(dest))
    assert tree(tmp_path) == before  # nothing written anywhere, destination included


def test_item01_fsspec_source_cannot_write_absolute_paths(store_copy, tmp_path) -> None:
    import fsspec

    src = store_copy("wds")
    mem = fsspec.filesystem("memory")
    for p in src.rglob("*"):
        if p.is_file():
            mem.pipe(f"/evilsrc/{p.relative_to(src)}", p.read_bytes())
    d = json.loads(mem.cat("/evilsrc/index.json"))
    target = tmp_path / "outside.bin"
    d["shards"][0]["files"][0]["path"] = str(target)
    mem.pipe("/evilsrc/index.json", json.dumps(d).encode())
    with pytest.raises(UnsafeContentError, match="absolute"):
        transfer_store("memory://evilsrc", str(tmp_path / "dest"))
    assert not target.exists() and not (tmp_path / "dest").exists()


@pytest.mark.parametrize("fmt", ["zarr", "wds"])
def test_item02_header_and_sidecars_are_hashed(store_copy, tmp_path, fmt) -> None:
    src = store_copy(fmt)
    idx = json.loads((src / "index.json").read_text())
    assert {f["path"] for f in idx["meta_files"]} == {"header.json", "shards/r000-00000.json", "shards/r000-00001.json"}
    side = src / "shards" / "r000-00001.json"
    d = json.loads(side.read_text())
    d["clips"] = ["forged/00000"]  # a lying sidecar
    side.write_text(json.dumps(d))
    assert any("r000-00001.json" in p and "index.json says" in p for p in verify_store(str(src)))
    with pytest.raises(CorruptStoreError, match="r000-00001.json"):
        transfer_store(str(src), str(tmp_path / "dest"))
    assert not (tmp_path / "dest").exists()
    with pytest.raises(CorruptStoreError, match="does not verify"):
        merge_stores(str(tmp_path / "merged"), [str(src)])


def test_item02_symlinked_header_never_copied(store_copy, tmp_path) -> None:
    src = store_copy("zarr")
    secret = tmp_path / "private.txt"
    secret.write_text("SECRET")
    (src / "header.json").unlink()
    (src / "header.json").symlink_to(secret)
    assert any("header.json" in p and "symlink" in p for p in verify_store(str(src)))
    with pytest.raises(UnsafeContentError, match="header.json.*symlink"):
        transfer_store(str(src), str(tmp_path / "dest"))
    assert not any("SECRET" in p.read_text(errors="ignore") for p in tmp_path.rglob("*")
                   if p.is_file() and not p.is_symlink() and p != secret)


def test_item02_forged_but_rehashed_sidecar_cannot_merge(store_copy, tmp_path) -> None:
    """An attacker who rewrites a sidecar *and* re-finalises: the store hashes fine, but the sidecar
    no longer matches what the shard holds, so merge refuses instead of writing an unreadable store."""
    src = store_copy("wds")
    side = src / "shards" / "r000-00001.json"
    d = json.loads(side.read_text())
    d["clips"] = ["forged/00000"]
    side.write_text(json.dumps(d))
    finalize_store(src)
    # every hash matches; verify still sees it, as the tar's samples (its index rebuilt) are not the clip table's
    problems = verify_store(str(src))
    assert len(problems) == 1 and "['b__00000'] differ from the clip table's ['forged__00000']" in problems[0]
    out = tmp_path / "merged"
    with pytest.raises(CorruptStoreError, match="r000-00001.*(does not hold|differ from the clip table)"):
        merge_stores(str(out), [str(src)])


def test_item02_deeply_nested_sidecar_is_a_store_error(store_copy, tmp_path) -> None:
    src = store_copy("zarr")
    (src / "shards" / "r000-00000.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(StoreError, match="r000-00000.json"):
        finalize_store(src)
    with pytest.raises(StoreError, match="r000-00000.json"):
        merge_stores(str(tmp_path / "merged"), [str(src)])


@pytest.mark.parametrize("fmt", ["zarr", "wds"])
def test_item07_fifo_shard_refused_without_hanging(store_copy, tmp_path, fmt) -> None:
    src = store_copy(fmt)
    rel = "r000-00000.tar" if fmt == "wds" else "r000-00000/zarr.json"
    victim = src / "shards" / rel
    victim.unlink()
    os.mkfifo(victim)
    result: dict = {}

    def attempt() -> None:
        result["verify"] = verify_store(str(src))
        for name, fn in (("pull", lambda: transfer_store(str(src), str(tmp_path / "dest"))),
                         ("read", lambda: StoreReader(src)["a/00000"])):
            try:
                fn()
            except StoreError as e:
                result[name] = str(e)

    t = threading.Thread(target=attempt, daemon=True)
    t.start()
    t.join(20)
    assert not t.is_alive(), "a FIFO in the store made a reader hang"
    assert any(rel in p and "FIFO" in p for p in result["verify"])
    assert "FIFO" in result["pull"] and "FIFO" in result["read"]
    assert not (tmp_path / "dest").exists()


def test_item08_pull_refuses_destination_holding_another_store(store_copy, tmp_path) -> None:
    src, other = store_copy("zarr", "src"), store_copy("wds", "other")
    before = {p: p.read_bytes() for p in other.rglob("*") if p.is_file()}
    with pytest.raises(UsageError, match="not empty"):
        transfer_store(str(src), str(other))
    assert {p: p.read_bytes() for p in other.rglob("*") if p.is_file()} == before
    # an empty folder is fine; pulling the same store again is a no-op
    dest = tmp_path / "empty"
    dest.mkdir()
    rep = transfer_store(str(src), str(dest))
    assert "index.json" in rep.copied and verify_store(str(dest)) == []
    assert transfer_store(str(src), str(dest)).copied == []
    assert not any(p.name.startswith(".tmp-") for p in tmp_path.iterdir())


def test_item09_merge_output_inside_input_refused(store_copy) -> None:
    src = store_copy("zarr")
    before = tree(src)
    with pytest.raises(UsageError, match="overlaps"):
        merge_stores(str(src / "shards" / "merged"), [str(src)])
    assert tree(src) == before and verify_store(str(src)) == []


@pytest.mark.parametrize("fmt,rel", [("zarr", "r000-00000/pose_enc/zarr.json"), ("zarr", "r000-00000/depth/c/0/0/0"),
                                     ("wds", "r000-00000.tar")])
def test_unlisted_shard_file_is_refused_by_lazy_and_full_shard_checks(store_copy, tmp_path, fmt, rel) -> None:
    """A shard file the reader would open but ``index.json`` does not list (here a symlink to a copy outside the
    store) escapes the hash and plain-file checks of ``verify_shard``: it is refused, as ``shards verify`` does."""
    src = store_copy(fmt)
    edit_index(src, lambda d: d["shards"][0].update(files=[f for f in d["shards"][0]["files"] if f["path"] != rel]))
    victim = src / "shards" / rel
    outside = tmp_path / "outside.bin"
    victim.rename(outside)
    victim.symlink_to(outside)
    assert any(rel in p for p in verify_store(str(src)))
    r = StoreReader(src)
    bad = r.verify_all_shards()  # data.verify: all
    assert "r000-00000" in bad and "not listed" in bad["r000-00000"]
    with pytest.raises(StoreError, match="not listed"):
        StoreReader(src)["a/00000"]  # data.verify: lazy (first open of the shard)


@pytest.mark.parametrize("fmt,rel", [("zarr", "r000-00000/zarr.json"), ("wds", "r000-00000.tar")])
def test_unlisted_fifo_never_opened_by_the_metadata_only_read(store_copy, fmt, rel) -> None:
    """``iter_meta`` (stage two's sampling check, run before any shard is verified with ``data.verify: lazy``)
    opens only listed files: an unlisted FIFO in place of the group metadata / the tar is refused, no hang."""
    src = store_copy(fmt)
    edit_index(src, lambda d: d["shards"][0].update(files=[f for f in d["shards"][0]["files"] if f["path"] != rel]))
    victim = src / "shards" / rel
    victim.unlink()
    os.mkfifo(victim)
    result: dict = {}

    def attempt() -> None:
        try:
            list(StoreReader(src).iter_meta())
        except StoreError as e:
            result["err"] = str(e)

    t = threading.Thread(target=attempt, daemon=True)
    t.start()
    t.join(20)
    assert not t.is_alive(), "an unlisted FIFO made the metadata-only read hang"
    assert "not listed" in result.get("err", "")
