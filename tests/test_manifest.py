"""index.json: JSON Schema (committed, up to date, validates real manifests), round trip, versioning."""

from __future__ import annotations

import json

import jsonschema
import pytest

from geovr.shared.manifest import (
    FORMAT_VERSION,
    Manifest,
    StoreHeader,
    check_version,
    committed_schema_path,
    header_differences,
    json_schema,
)
from geovr.shared.safety import IncompatibleStoreError
from geovr.shared.stores import StoreWriter, finalize_store
from geovr.shared.stores.testing import make_clip, make_header


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("store")
    header = make_header("wds", "int8", sampling={"num_frames": 2, "policy": "uniform"})
    w = StoreWriter(root, header)
    w.write_shard([make_clip("a/00000", header, s=2)])
    finalize_store(root)
    return json.loads((root / "index.json").read_text())


def test_committed_schema_is_current() -> None:
    with open(committed_schema_path()) as f:
        committed = json.load(f)
    assert committed == json_schema(), "regenerate with: python -m geovr.shared.manifest"
    jsonschema.Draft202012Validator.check_schema(committed)


def test_real_manifest_validates_and_round_trips(index) -> None:
    schema = json_schema()
    jsonschema.validate(index, schema)
    m = Manifest.from_dict(index)
    assert m.to_dict() == index
    assert m.header.features.dtype == "int8"
    names = [t.name for t in m.targets]
    assert {"pose_enc", "depth", "frames", "feat_l04", "feat_l04_scale", "feat_l11_scale"} <= set(names)
    assert m.shards[0].samples == 1 and m.shards[0].files[0].path == "r000-00000.tar"
    for broken in ({**index, "shards": "nope"}, {k: v for k, v in index.items() if k != "header"},
                   {**index, "format_version": "one"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema)


def test_unknown_keys_warn(index) -> None:
    d = json.loads(json.dumps(index))
    d["extra_top"] = 1
    d["header"]["extra_header"] = 2
    d["shards"][0]["extra_shard"] = 3
    with pytest.warns(UserWarning) as rec:
        m = Manifest.from_dict(d)
    text = " ".join(str(r.message) for r in rec)
    assert "extra_top" in text and "extra_header" in text and "extra_shard" in text
    assert m.num_clips == 1


def test_version_rules() -> None:
    check_version(FORMAT_VERSION, FORMAT_VERSION, "x")
    with pytest.raises(IncompatibleStoreError, match=r"store.json: written with version 2\.0, this geovr reads up to 1\.0"):
        check_version("2.0", "1.0", "store.json")
    with pytest.raises(IncompatibleStoreError, match="old major version 0.3"):
        check_version("0.3", "1.0", "store.json")
    with pytest.warns(UserWarning, match="newer minor version 1.4"):
        check_version("1.4", "1.0", "store.json")
    with pytest.raises(IncompatibleStoreError, match="MAJOR.MINOR"):
        check_version("v1", "1.0", "store.json")


def test_header_round_trip_and_differences() -> None:
    h = make_header("zarr", "bf16")
    assert StoreHeader.from_dict(h.to_dict()) == h
    other = make_header("zarr", "bf16", depth_dtype="fp32", jpeg_quality=80)
    assert sorted(d.split(":")[0] for d in header_differences(h, other)) == ["depth_dtype", "jpeg_quality"]
    assert header_differences(h, {"teacher": h.teacher.to_dict()}) == []
    with pytest.raises(ValueError, match="depth_dtype"):
        make_header("zarr", "bf16", depth_dtype="int8")
