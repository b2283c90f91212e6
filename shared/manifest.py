"""The store manifest (``STORE/index.json``) and the store header (``STORE/header.json``).

``index.json`` is the contract and the commit point of a target store: format name and
version, the header (teacher, sampling, feature spec, depth/frame encodings, provenance),
the target list with dtypes/shapes/units, and every shard with its files, bytes, sample
count and sha256. It is written last and atomically by ``geovr.shared.stores.finalize_store``.

Versioning (``format_version`` = ``MAJOR.MINOR``, lerobot-style): a reader refuses a store
whose major version is newer than its own (``IncompatibleStoreError`` naming both versions
and the fix: upgrade geovr) and warns on a newer minor (new optional fields are ignored).
``from_dict`` warns about unknown keys and ignores them (forward compatibility).

The JSON Schema in ``geovr/shared/schemas/manifest.schema.json`` is generated from these
dataclasses by ``json_schema()`` (a test keeps the committed copy up to date).
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
import warnings
from dataclasses import dataclass, field
from typing import Any

from geovr.shared.features import FeatureSpec
from geovr.shared.safety import IncompatibleStoreError, UnsafeContentError, check_rel_path
from geovr.shared.schema import SCHEMA_VERSION, TeacherInfo

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "FileEntry",
    "Manifest",
    "ShardEntry",
    "SHARD_NAME_RE",
    "StoreHeader",
    "TargetSpec",
    "check_manifest_names",
    "check_version",
    "header_differences",
    "json_schema",
    "target_specs",
]

FORMAT_NAME = "geovr-targets"
"""Value of ``Manifest.format``."""
FORMAT_VERSION = "1.1"
"""Store format version this code writes and reads, ``MAJOR.MINOR`` (1.1 added ``Manifest.meta_files``)."""
SHARD_NAME_RE = re.compile(r"^([A-Za-z0-9_-]+)-(\d{5})$")
"""Committed shard names: ``<prefix>-<seq:05d>`` (also the only shard names a reader accepts)."""
STORE_FORMATS = ("zarr", "wds")
"""Shard formats: Zarr v3 sharded groups or WebDataset tars."""


def _parse_version(v: str, what: str) -> tuple[int, int]:
    try:
        major, minor = str(v).split(".")
        return int(major), int(minor)
    except ValueError as e:
        raise IncompatibleStoreError(f"{what}: version {v!r} is not MAJOR.MINOR") from e


def check_version(found: str, supported: str, what: str) -> None:
    """Refuse a newer major version, warn on a newer minor (``what`` names the file / field)."""
    fmaj, fmin = _parse_version(found, what)
    smaj, smin = _parse_version(supported, what)
    if fmaj > smaj:
        raise IncompatibleStoreError(
            f"{what}: written with version {found}, this geovr reads up to {supported}; "
            f"upgrade geovr (pip install -U geovr) to read it"
        )
    if fmaj < smaj:
        raise IncompatibleStoreError(
            f"{what}: written with old major version {found}, this geovr reads {supported}; "
            f"re-extract the store or migrate it with a geovr release that reads {fmaj}.x"
        )
    if fmin > smin:
        warnings.warn(
            f"{what}: written with newer minor version {found} (this geovr: {supported}); "
            "fields it does not know are ignored",
            stacklevel=3,
        )


def _known(cls: type, d: dict[str, Any], what: str) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        warnings.warn(f"{what}: ignoring unknown keys {unknown}", stacklevel=3)
    return {k: v for k, v in d.items() if k in names}


@dataclass(frozen=True)
class StoreHeader:
    """Everything that makes two stores' targets comparable; ``STORE/header.json``."""

    format: str
    """Shard format: ``zarr`` (Zarr v3 sharded group per shard) or ``wds`` (WebDataset tar per shard)."""
    teacher: TeacherInfo
    """The teacher that produced the targets."""
    sampling: dict[str, Any] = field(default_factory=dict)
    """Frame sampling + preprocessing config (JSON-serialisable dict, as resolved by the extractor)."""
    features: FeatureSpec = field(default_factory=FeatureSpec)
    """Which teacher features are stored and their encoding."""
    depth_dtype: str = "fp16"
    """Storage dtype of ``depth`` and ``depth_conf``: ``fp16`` or ``fp32``."""
    depth_downsample: int = 1
    """Depth resolution factor: depth is stored at ``frame_hw // depth_downsample``."""
    frame_encoding: str = "jpeg"
    """Encoding of the stored frames: ``jpeg`` or ``png``."""
    jpeg_quality: int = 95
    """JPEG quality of the stored frames (ignored for png)."""
    schema_version: str = SCHEMA_VERSION
    """``geovr.shared.schema.SCHEMA_VERSION`` of the clips."""
    created_by: dict[str, str] = field(default_factory=dict)
    """Provenance: ``{"geovr": version, "git": rev, ...}`` (not part of the compatibility key)."""

    def __post_init__(self) -> None:
        if self.format not in STORE_FORMATS:
            raise ValueError(f"StoreHeader.format {self.format!r} not in {STORE_FORMATS}")
        if self.depth_dtype not in ("fp16", "fp32"):
            raise ValueError(f"StoreHeader.depth_dtype {self.depth_dtype!r} not in ('fp16', 'fp32')")
        if self.frame_encoding not in ("jpeg", "png"):
            raise ValueError(f"StoreHeader.frame_encoding {self.frame_encoding!r} not in ('jpeg', 'png')")
        if int(self.depth_downsample) < 1:
            raise ValueError(f"StoreHeader.depth_downsample must be >= 1, got {self.depth_downsample}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "teacher": self.teacher.to_dict(),
            "sampling": dict(self.sampling),
            "features": self.features.to_dict(),
            "depth_dtype": self.depth_dtype,
            "depth_downsample": int(self.depth_downsample),
            "frame_encoding": self.frame_encoding,
            "jpeg_quality": int(self.jpeg_quality),
            "schema_version": self.schema_version,
            "created_by": dict(self.created_by),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], what: str = "header") -> StoreHeader:
        d = _known(cls, d, what)
        try:
            return cls(
                format=str(d["format"]),
                teacher=TeacherInfo.from_dict(d["teacher"]),
                sampling=dict(d.get("sampling", {})),
                features=FeatureSpec.from_dict(d.get("features", {})),
                depth_dtype=str(d.get("depth_dtype", "fp16")),
                depth_downsample=int(d.get("depth_downsample", 1)),
                frame_encoding=str(d.get("frame_encoding", "jpeg")),
                jpeg_quality=int(d.get("jpeg_quality", 95)),
                schema_version=str(d.get("schema_version", SCHEMA_VERSION)),
                created_by={str(k): str(v) for k, v in d.get("created_by", {}).items()},
            )
        except (KeyError, TypeError, ValueError) as e:
            raise IncompatibleStoreError(f"{what}: malformed store header ({type(e).__name__}: {e})") from e

    def compat_key(self) -> dict[str, Any]:
        """The header fields two stores must share to be read or merged together."""
        d = self.to_dict()
        d.pop("created_by")
        return d


def header_differences(a: StoreHeader | dict[str, Any], b: StoreHeader | dict[str, Any]) -> list[str]:
    """Dotted names of compatibility fields that differ between two headers (or partial dicts of ``b``).

    A dict ``b`` may be partial (e.g. only ``{"teacher": ..., "sampling": ...}``): only its keys
    are compared.
    """
    da = a.compat_key() if isinstance(a, StoreHeader) else dict(a)
    db = b.compat_key() if isinstance(b, StoreHeader) else dict(b)
    if not isinstance(b, StoreHeader):
        da = {k: da.get(k) for k in db}
    out: list[str] = []

    def walk(x: Any, y: Any, path: str) -> None:
        if isinstance(x, dict) and isinstance(y, dict):
            for k in sorted(set(x) | set(y)):
                walk(x.get(k), y.get(k), f"{path}.{k}" if path else str(k))
        elif x != y:
            out.append(f"{path}: {x!r} != {y!r}")

    walk(da, db, "")
    return out


@dataclass(frozen=True)
class FileEntry:
    """One file of a shard, relative to ``STORE/shards/``."""

    path: str
    """Path relative to ``STORE/shards/`` (``<name>.tar`` or ``<name>/<zarr key>``), ``/``-separated."""
    bytes: int
    """Size in bytes."""
    sha256: str
    """Hex sha256 of the file's bytes."""


@dataclass(frozen=True)
class ShardEntry:
    """One committed shard."""

    name: str
    """Shard name, ``<prefix>-<seq:05d>``."""
    format: str
    """``zarr`` or ``wds``."""
    files: list[FileEntry]
    """Every file of the shard (one tar, or the files of one Zarr group)."""
    bytes: int
    """Total bytes of ``files``."""
    samples: int
    """Number of clips stored (status ok)."""
    failed: int
    """Number of clips that failed extraction (recorded in ``clips.parquet``, not stored)."""
    num_frames: int
    """Total frames over the shard's stored clips."""
    sha256: str
    """Shard digest: sha256 of the tar, or of the sorted ``"<path> <sha256>\\n"`` lines of a Zarr group."""


@dataclass(frozen=True)
class TargetSpec:
    """One cached target, described for readers that do not have geovr."""

    name: str
    """Array name in Zarr groups and member extension in tars (``depth``, ``feat_l04`` ...)."""
    dtype: str
    """numpy dtype string of the stored array (``float16``, ``uint16`` for bf16 bits, ...)."""
    shape: list[str]
    """Symbolic per-clip shape, e.g. ``["S", "Hd", "Wd"]``."""
    units: str
    """Units / encoding, e.g. ``"teacher depth units (metres = metric_scale * depth)"``."""
    description: str = ""
    """Free text: frame conventions, how to decode."""


@dataclass(frozen=True)
class Manifest:
    """``STORE/index.json``."""

    format: str
    """Always ``geovr-targets``."""
    format_version: str
    """``MAJOR.MINOR`` of the store format (``FORMAT_VERSION`` when written)."""
    header: StoreHeader
    """Teacher, sampling, feature spec, encodings, provenance."""
    targets: list[TargetSpec]
    """Stored arrays with dtypes, shapes and units."""
    shards: list[ShardEntry]
    """Committed shards, sorted by name."""
    num_clips: int
    """Clips stored (status ok) over all shards."""
    num_failed: int
    """Clips that failed extraction over all shards."""
    clips_table: str = "clips.parquet"
    """Per-clip table (clip_id, shard, row, status, reason, num_frames), relative to the store root."""
    clips_table_sha256: str = ""
    """Hex sha256 of ``clips_table``."""
    meta_files: list[FileEntry] = field(default_factory=list)
    """``header.json`` and every shard sidecar (``shards/<name>.json``), relative to the store root, with
    bytes and sha256 (format >= 1.1), so every file of a store is covered by a hash in ``index.json``."""

    def expected_meta_files(self) -> set[str]:
        """Store-root-relative paths ``meta_files`` must cover: ``header.json`` and each shard's sidecar."""
        return {"header.json"} | {f"shards/{s.name}.json" for s in self.shards}

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["header"] = self.header.to_dict()
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any], what: str = "index.json") -> Manifest:
        if not isinstance(d, dict):
            raise IncompatibleStoreError(f"{what}: manifest must be a JSON object")
        if d.get("format") != FORMAT_NAME:
            raise IncompatibleStoreError(f"{what}: format is {d.get('format')!r}, expected {FORMAT_NAME!r}")
        check_version(str(d.get("format_version", "")), FORMAT_VERSION, f"{what} format_version")
        d = _known(cls, d, what)
        try:
            header = StoreHeader.from_dict(d["header"], f"{what} header")
            check_version(header.schema_version, SCHEMA_VERSION, f"{what} header.schema_version")
            shards = [
                ShardEntry(
                    **{
                        **_known(ShardEntry, s, f"{what} shard"),
                        "files": [FileEntry(**_known(FileEntry, f, f"{what} file")) for f in s["files"]],
                    }
                )
                for s in d["shards"]
            ]
            targets = [TargetSpec(**_known(TargetSpec, t, f"{what} target")) for t in d.get("targets", [])]
            man = cls(
                format=d["format"],
                format_version=str(d["format_version"]),
                header=header,
                targets=targets,
                shards=shards,
                num_clips=int(d["num_clips"]),
                num_failed=int(d["num_failed"]),
                clips_table=str(d.get("clips_table", "clips.parquet")),
                clips_table_sha256=str(d.get("clips_table_sha256", "")),
                meta_files=[FileEntry(**_known(FileEntry, f, f"{what} meta file")) for f in d.get("meta_files", [])],
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise IncompatibleStoreError(f"{what}: malformed manifest ({type(e).__name__}: {e})") from e
        check_manifest_names(man, what)
        return man


def check_manifest_names(man: Manifest, what: str = "index.json") -> None:
    """The trust boundary for names read from ``index.json``: every shard name, file path, the clip
    table and the meta files must be safe relative paths of the right shape, before any I/O uses them.

    Raises ``UnsafeContentError`` naming ``what`` and the offending entry.
    """
    names: set[str] = set()
    paths: set[str] = set()
    for s in man.shards:
        if not isinstance(s.name, str) or not SHARD_NAME_RE.match(s.name):
            raise UnsafeContentError(f"{what}: shard name {s.name!r} is not '<prefix>-<seq:05d>'; refused")
        if s.name in names:
            raise UnsafeContentError(f"{what}: shard {s.name!r} listed twice")
        names.add(s.name)
        if s.format != man.header.format:
            raise UnsafeContentError(f"{what}: shard {s.name!r} has format {s.format!r}, store {man.header.format!r}")
        for f in s.files:
            check_rel_path(f.path, f"{what} shard {s.name}")
            ok = (f.path in (f"{s.name}.tar", f"{s.name}.idx.npy") if s.format == "wds"  # tar + its offset index
                  else f.path.startswith(f"{s.name}/"))
            if not ok or f.path in paths:
                raise UnsafeContentError(f"{what}: file {f.path!r} does not belong to shard {s.name!r} "
                                         "(or is listed twice); refused")
            if not isinstance(f.bytes, int) or f.bytes < 0 or not isinstance(f.sha256, str):
                raise UnsafeContentError(f"{what}: file {f.path!r} has an invalid size or hash")
            paths.add(f.path)
    check_rel_path(man.clips_table, f"{what} clips_table")
    if man.clips_table in ("index.json", "header.json") or man.clips_table.startswith("shards/"):
        raise UnsafeContentError(f"{what}: clips_table {man.clips_table!r} names a file the store uses otherwise")
    allowed = man.expected_meta_files()
    seen: set[str] = set()
    for f in man.meta_files:
        check_rel_path(f.path, f"{what} meta_files")
        if f.path not in allowed or f.path in seen:
            raise UnsafeContentError(f"{what}: meta file {f.path!r} is not header.json or a shard sidecar "
                                     "(or is listed twice); refused")
        seen.add(f.path)


def target_specs(header: StoreHeader) -> list[TargetSpec]:
    """The target list a store written with ``header`` holds."""
    from geovr.shared.features import stored_numpy_dtype

    ddt = "float16" if header.depth_dtype == "fp16" else "float32"
    cam = "OpenCV camera-from-world [R|t], frame 0 = world, translation in depth units"
    out = [
        TargetSpec("pose_enc", "float32", ["S", "9"], "t: depth units; quaternion xyzw; fov_h, fov_w: radians",
                   "VGGT absT_quaR_FoV"),
        TargetSpec("extrinsics", "float32", ["S", "3", "4"], "depth units", cam),
        TargetSpec("intrinsics", "float32", ["S", "3", "3"], "pixels of the teacher input (clip teacher_input.out_hw)",
                   "pinhole K"),
        TargetSpec("depth", ddt, ["S", "Hd", "Wd"], "teacher depth units (metres = metric_scale * depth)",
                   "z along the optical axis on the teacher input's pixel grid; 0 = invalid"),
        TargetSpec("depth_conf", ddt, ["S", "Hd", "Wd"], "teacher confidence", "VGGT: 1 + exp(c) >= 1"),
        TargetSpec("frames", "uint8", ["S", "bytes"], header.frame_encoding,
                   "encoded images the student sees, at its resolution (clip resize.out_hw); the teacher input "
                   "was derived from them (clip teacher_input) (zarr: concatenated bytes + frame_offsets)"),
    ]
    fdt = str(stored_numpy_dtype(header.features.dtype))
    for layer in header.features.layers:
        enc = {"bf16": "bfloat16 bit pattern in uint16", "int8": "int8, multiply by feat_lXX_scale [C]"}
        out.append(TargetSpec(f"feat_l{layer:02d}", fdt, ["S", "h", "w", "C"],
                              enc.get(header.features.dtype, header.features.dtype),
                              f"teacher layer {layer} patch tokens on their grid"))
        if header.features.dtype == "int8":
            out.append(TargetSpec(f"feat_l{layer:02d}_scale", "float32", ["C"], "dequantisation scale per channel"))
    return out


# ---------------------------------------------------------------- JSON Schema generation


def _type_schema(tp: Any) -> dict[str, Any]:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [_type_schema(a) for a in args]}
    if tp is type(None):
        return {"type": "null"}
    if tp is str:
        return {"type": "string"}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer"}
    if tp is float:
        return {"type": "number"}
    if origin in (list, tuple):
        return {"type": "array", "items": _type_schema(args[0]) if args else {}}
    if origin is dict or tp is dict:
        return {"type": "object"}
    if dataclasses.is_dataclass(tp):
        return _dataclass_schema(tp)
    return {}


def _dataclass_schema(cls: Any) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    props = {f.name: _type_schema(hints[f.name]) for f in dataclasses.fields(cls)}
    required = [
        f.name for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    return {"type": "object", "properties": props, "required": required, "additionalProperties": True}


def json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of ``index.json``, generated from the dataclasses."""
    s = _dataclass_schema(Manifest)
    s["properties"]["format"] = {"const": FORMAT_NAME}
    s["properties"]["format_version"] = {"type": "string", "pattern": r"^[0-9]+\.[0-9]+$"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://geovr.dev/schemas/manifest.schema.json",
        "title": "geovr target store manifest (index.json)",
        **s,
    }


def committed_schema_path() -> str:
    """Path of the committed ``manifest.schema.json`` (package data of ``geovr.shared``)."""
    from importlib.resources import files

    return str(files("geovr.shared") / "schemas" / "manifest.schema.json")


if __name__ == "__main__":  # regenerate: python -m geovr.shared.manifest
    with open(committed_schema_path(), "w") as f:
        f.write(json.dumps(json_schema(), indent=1, sort_keys=True) + "\n")
