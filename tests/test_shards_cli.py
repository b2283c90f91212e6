"""``geovr shards`` verbs through the real typer app: info, verify, publish/pull, merge, show."""

from __future__ import annotations

import uuid

import fsspec
import numpy as np
import pytest
from conftest import run_geovr
from PIL import Image

from geovr.shared.stores import StoreReader, StoreWriter, finalize_store
from geovr.shared.stores.testing import make_clip, make_header


class _Runner:
    @staticmethod
    def invoke(_app, args):
        return run_geovr(*args)


runner, app = _Runner(), None


def build(root, fmt="zarr", prefix="r000", ids=("a/00000", "b/00000"), **hkw):
    header = make_header(fmt, "bf16", **hkw)
    w = StoreWriter(root, header, shard_prefix=prefix)
    clips = [make_clip(cid, header, s=3, seed=i) for i, cid in enumerate(ids)]
    w.write_shard(clips[:1])
    w.write_shard(clips[1:])
    finalize_store(root)
    return clips


def same(a, b) -> None:
    assert a.frames == b.frames and a.meta_dict() == b.meta_dict()
    for n in ("pose_enc", "extrinsics", "intrinsics", "depth", "depth_conf"):
        np.testing.assert_array_equal(getattr(a, n), getattr(b, n))
    for k in a.features:
        np.testing.assert_array_equal(a.features[k], b.features[k])


def test_info_and_verify(tmp_path) -> None:
    build(tmp_path)
    res = runner.invoke(app, ["shards", "info", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "fake tiny" in res.output and "clips_ok" in res.output and "feat_l04 uint16" in res.output
    res = runner.invoke(app, ["shards", "verify", str(tmp_path)])
    assert res.exit_code == 0 and "OK" in res.output
    (tmp_path / "shards" / "stray.bin").write_bytes(b"x")
    (tmp_path / "shards" / "r000-00000.json").unlink()
    res = runner.invoke(app, ["shards", "verify", str(tmp_path)])
    assert res.exit_code == 4
    assert "stray.bin: unknown file" in res.output
    res = runner.invoke(app, ["shards", "info", str(tmp_path / "nope")])
    assert res.exit_code == 2 and res.stderr == f"error: {tmp_path / 'nope'}: no such store\n"
    (tmp_path / "unfinished").mkdir()
    res = runner.invoke(app, ["shards", "verify", str(tmp_path / "unfinished")])
    assert res.exit_code == 2 and "not finalised" in res.stderr and "geovr extract --finalize" in res.stderr
    res = runner.invoke(app, ["shards", "info", str(tmp_path), "--clips"])
    assert res.exit_code == 0 and res.stdout.split() == ["a/00000", "b/00000"]


@pytest.mark.parametrize("fmt", ["zarr", "wds"])
def test_publish_pull_verify_read(tmp_path, fmt) -> None:
    clips = build(tmp_path / "src", fmt)
    url = f"memory://geovr-test-{uuid.uuid4().hex[:8]}/store"
    res = runner.invoke(app, ["shards", "publish", str(tmp_path / "src"), url])
    assert res.exit_code == 0, res.output
    remote = StoreReader(url, verify=True)  # read straight from the fsspec URL
    for c in clips:
        same(c, remote[c.clip_id])
    dest = tmp_path / "pulled"
    res = runner.invoke(app, ["shards", "pull", url, str(dest)])
    assert res.exit_code == 0 and "0 already present" in res.output
    assert runner.invoke(app, ["shards", "verify", str(dest)]).exit_code == 0
    res = runner.invoke(app, ["shards", "publish", str(dest), url])  # unchanged: nothing to copy
    assert res.exit_code == 0 and res.stdout.startswith("0 file(s) copied (0 bytes)"), res
    local = StoreReader(dest)
    for c in clips:
        same(c, local[c.clip_id])
    # resume: hashed files already present are skipped; a damaged one is fetched again
    shard_file = sorted(p for p in (dest / "shards").rglob("*") if p.is_file() and p.suffix != ".json")[0]
    shard_file.write_bytes(b"damaged")
    res = runner.invoke(app, ["shards", "pull", url, str(dest)])
    assert res.exit_code == 0
    man = StoreReader(dest).manifest
    n_hashed = len(man.shards[0].files) + len(man.shards[1].files) + 1 + len(man.meta_files)
    assert f"{n_hashed - 1} already present" in res.output
    assert runner.invoke(app, ["shards", "verify", str(dest)]).exit_code == 0


def test_pull_refuses_corrupt_source(tmp_path) -> None:
    build(tmp_path / "src", "wds")
    url = f"memory://geovr-test-{uuid.uuid4().hex[:8]}/store"
    assert runner.invoke(app, ["shards", "publish", str(tmp_path / "src"), url]).exit_code == 0
    fs = fsspec.filesystem("memory")
    tar = url[len("memory://"):] + "/shards/r000-00001.tar"
    data = bytearray(fs.cat(tar))
    data[100] ^= 0xFF
    fs.pipe(tar, bytes(data))
    res = runner.invoke(app, ["shards", "pull", url, str(tmp_path / "dst")])
    assert res.exit_code == 4 and "r000-00001.tar" in res.output and "sha256" in res.output
    left = sorted(p.name for p in (tmp_path / "dst").rglob("*"))
    assert "r000-00001.tar" not in left and not any(n.startswith(".tmp-") for n in left)
    assert "index.json" not in left


def test_merge(tmp_path) -> None:
    a = build(tmp_path / "a", "wds", prefix="r000", ids=("a/00000", "b/00000"))
    b = build(tmp_path / "b", "wds", prefix="r000", ids=("c/00000", "d/00000"))
    res = runner.invoke(app, ["shards", "merge", str(tmp_path / "m"), str(tmp_path / "a"), str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    r = StoreReader(tmp_path / "m", verify=True)
    assert sorted(r.clip_ids) == ["a/00000", "b/00000", "c/00000", "d/00000"]
    for c in a + b:
        same(c, r[c.clip_id])
    build(tmp_path / "dup", "wds", ids=("a/00000", "x/00000"))
    res = runner.invoke(app, ["shards", "merge", str(tmp_path / "m2"), str(tmp_path / "a"), str(tmp_path / "dup")])
    assert res.exit_code == 2 and "a/00000" in res.output and not (tmp_path / "m2" / "index.json").exists()
    build(tmp_path / "other", "wds", ids=("y/00000", "z/00000"), depth_dtype="fp32")
    res = runner.invoke(app, ["shards", "merge", str(tmp_path / "m3"), str(tmp_path / "a"), str(tmp_path / "other")])
    assert res.exit_code == 2 and "depth_dtype" in res.output


def test_show_writes_png(tmp_path) -> None:
    build(tmp_path / "s", "zarr")
    out = tmp_path / "clip.png"
    res = runner.invoke(app, ["shards", "show", str(tmp_path / "s"), "b/00000", "--out", str(out),
                              "--width", "640", "--height", "400", "--layer", "11"])
    assert res.exit_code == 0, res.output
    img = Image.open(out)
    assert img.format == "PNG" and img.size == (640, 400)
    assert np.asarray(img.convert("L")).std() > 10  # not blank
    res = runner.invoke(app, ["shards", "show", str(tmp_path / "s"), "zz/00000", "--out", str(out)])
    assert res.exit_code == 2 and res.stderr.count("\n") == 1
    assert res.stderr.startswith("error: clip zz/00000 is not stored") and "shards info" in res.stderr


def test_camera_centres_invert_camera_from_world() -> None:
    from geovr.shared.shards.show import camera_centres

    theta = 0.3
    r = np.array([[np.cos(theta), 0, np.sin(theta)], [0, 1, 0], [-np.sin(theta), 0, np.cos(theta)]])
    centre = np.array([1.0, -2.0, 3.0])
    ext = np.concatenate([r, (-r @ centre)[:, None]], axis=1)[None].astype(np.float32)
    c, f = camera_centres(ext)
    np.testing.assert_allclose(c[0], centre, atol=1e-5)
    np.testing.assert_allclose(r @ f[0], [0, 0, 1], atol=1e-6)  # forward maps to the camera's +z
