"""Content checks of one stored clip, applied by every read: metadata, array dtypes and shapes against
the header, finite values, frame image headers, and size bounds checked *before* anything is allocated.

A store can be hash-consistent and still hold wrong content (int16 depth, NaN features, a PNG that
declares 30000 x 30000 pixels); every problem is a ``StoreError`` naming the shard and clip.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from geovr.shared.features import stored_numpy_dtype
from geovr.shared.manifest import StoreHeader, check_version
from geovr.shared.safety import CorruptStoreError, StoreError, UnsafeContentError
from geovr.shared.schema import SCHEMA_VERSION
from geovr.shared.stores.clipcodec import FRAME_ARRAYS, feat_name, pca_names, scale_name

__all__ = ["ReadLimits", "check_arrays", "check_frames", "check_meta", "check_shape", "expected_arrays"]


@dataclass(frozen=True)
class ReadLimits:
    """Bounds a reader applies to a clip before reading its arrays and frames."""

    max_frames: int = 4096
    """Most frames one clip may have."""
    max_side: int = 8192
    """Largest stored frame height or width in pixels."""
    max_feature_values: int = 1 << 24
    """Most feature values per frame and layer (``h * w * C``)."""
    max_frame_bytes: int = 64 << 20
    """Largest encoded frame in bytes."""


def _bad(where: str, msg: str) -> CorruptStoreError:
    return CorruptStoreError(f"{where}: {msg}")


def _hw(d: Any, where: str, what: str, limits: ReadLimits) -> tuple[int, int]:
    try:
        out_hw = d["out_hw"]
        h, w = int(out_hw[0]), int(out_hw[1])
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise _bad(where, f"{what}.out_hw missing or malformed ({type(e).__name__}: {e})") from e
    if not (1 <= h <= limits.max_side and 1 <= w <= limits.max_side):
        raise UnsafeContentError(f"{where}: {what} size {h}x{w} outside 1..{limits.max_side} px; refused")
    return h, w


def check_meta(meta: Any, where: str, limits: ReadLimits) -> tuple[int, tuple[int, int], tuple[int, int]]:
    """Check the per-clip metadata record; return ``(S, stored frame (H, W), teacher input (H, W))`` (the targets
    refer to the teacher input; without one, to the stored frames)."""
    if not isinstance(meta, dict):
        raise _bad(where, f"per-clip metadata is a {type(meta).__name__}, not an object")
    check_version(str(meta.get("schema_version", "")), SCHEMA_VERSION, f"{where} schema_version")
    idx = meta.get("frame_indices")
    if not isinstance(idx, list) or not 1 <= len(idx) <= limits.max_frames:
        raise _bad(where, f"frame_indices must be a list of 1..{limits.max_frames} frames")
    frame_hw = _hw(meta.get("resize"), where, "resize", limits)
    ti = meta.get("teacher_input")
    target_hw = frame_hw if ti is None else _hw(ti, where, "teacher_input", limits)
    return len(idx), frame_hw, target_hw


def expected_arrays(header: StoreHeader, hw: tuple[int, int]) -> dict[str, tuple[np.dtype, tuple[int, ...] | None]]:
    """``name -> (dtype, per-frame shape or None = checked by rule)`` of every array a clip must have; ``hw`` is
    the teacher input's size, which the targets refer to.

    Per-clip arrays (scales, PCA) are listed with their full shape ``None`` (checked against the feature width).
    """
    ddt = np.dtype(np.float16 if header.depth_dtype == "fp16" else np.float32)
    ds = header.depth_downsample
    hd, wd = -(-hw[0] // ds), -(-hw[1] // ds)  # the writer keeps every ds-th row and column
    f32 = np.dtype(np.float32)
    out: dict[str, tuple[np.dtype, tuple[int, ...] | None]] = {
        "pose_enc": (f32, (9,)), "extrinsics": (f32, (3, 4)), "intrinsics": (f32, (3, 3)),
        "depth": (ddt, (hd, wd)), "depth_conf": (ddt, (hd, wd)),
    }
    fdt = np.dtype(stored_numpy_dtype(header.features.dtype))
    for layer in header.features.layers:
        out[feat_name(layer)] = (fdt, None)
        if header.features.dtype == "int8":
            out[scale_name(layer)] = (f32, None)
        if header.features.pca_dims:
            mean, basis = pca_names(layer)
            out[mean] = (f32, None)
            out[basis] = (np.dtype(np.float16), None)
    assert set(FRAME_ARRAYS) <= set(out)
    return out


def check_shape(name: str, dtype: Any, shape: tuple[int, ...], s: int, hw: tuple[int, int], header: StoreHeader,
                where: str, limits: ReadLimits, per_frame: bool = True) -> None:
    """Check one array's dtype and shape (``shape`` without the leading ``S`` when ``per_frame``) before it
    is read. Raises ``StoreError`` naming the array."""
    spec = expected_arrays(header, hw)
    if name not in spec:
        raise _bad(where, f"unexpected array {name!r}")
    want_dt, want_shape = spec[name]
    if np.dtype(dtype) != want_dt:
        raise _bad(where, f"array {name!r} has dtype {np.dtype(dtype)}, the store header says {want_dt}")
    if want_shape is not None:
        if tuple(shape) != want_shape:
            raise _bad(where, f"array {name!r} has per-frame shape {tuple(shape)}, expected {want_shape}")
        return
    if name.startswith("feat_l") and per_frame and name.count("_") == 1:
        if len(shape) != 3 or int(np.prod(shape, dtype=np.int64)) > limits.max_feature_values or min(shape) < 1:
            raise UnsafeContentError(f"{where}: feature array {name!r} per-frame shape {tuple(shape)} is not [h, w, C] "
                                     f"within {limits.max_feature_values} values; refused")
        if header.features.pca_dims and shape[-1] != header.features.pca_dims:
            raise _bad(where, f"array {name!r} has {shape[-1]} channels, header pca_dims {header.features.pca_dims}")


def check_arrays(arrays: dict[str, np.ndarray], s: int, hw: tuple[int, int], header: StoreHeader, where: str,
                 limits: ReadLimits) -> None:
    """Full check of a clip's loaded arrays: names, dtypes, shapes, one feature width, finite values."""
    spec = expected_arrays(header, hw)
    missing = sorted(set(spec) - set(arrays))
    extra = sorted(set(arrays) - set(spec))
    if missing or extra:
        raise _bad(where, f"arrays missing {missing} / unexpected {extra}")
    width = None
    for layer in header.features.layers:
        f = arrays[feat_name(layer)]
        if f.ndim != 4 or f.shape[0] != s:
            raise _bad(where, f"{feat_name(layer)} has shape {f.shape}, expected [S={s}, h, w, C]")
        check_shape(feat_name(layer), f.dtype, f.shape[1:], s, hw, header, where, limits)
        if width is not None and f.shape[-1] != width:
            raise _bad(where, f"{feat_name(layer)} has {f.shape[-1]} channels, other layers {width}")
        width = f.shape[-1]
    for name, a in arrays.items():
        dt, shape = spec[name]
        if a.dtype != dt:
            raise _bad(where, f"array {name!r} has dtype {a.dtype}, the store header says {dt}")
        if shape is not None and (a.ndim != len(shape) + 1 or a.shape[0] != s or tuple(a.shape[1:]) != shape):
            raise _bad(where, f"array {name!r} has shape {a.shape}, expected [S={s}, {', '.join(map(str, shape))}]")
        if name.endswith("_scale") and a.shape != (width,):
            raise _bad(where, f"array {name!r} has shape {a.shape}, expected [{width}]")
        if name.endswith("_pca_basis"):
            mean = arrays[name[: -len("_basis")] + "_mean"]
            if mean.ndim != 1 or a.shape != (header.features.pca_dims, mean.shape[0]):
                raise _bad(where, f"array {name!r} has shape {a.shape}, mean {mean.shape}")
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise _bad(where, f"array {name!r} has NaN or Inf values")
        if name.startswith("feat_l") and header.features.dtype == "bf16" and ((a & 0x7F80) == 0x7F80).any():
            raise _bad(where, f"array {name!r} has NaN or Inf values (bf16 bit patterns)")


_FORMATS = {"jpeg": "JPEG", "png": "PNG"}


def check_frames(frames: list[bytes], s: int, hw: tuple[int, int], header: StoreHeader, where: str,
                 limits: ReadLimits) -> None:
    """Each encoded frame: bounded bytes, the store's image format and exactly the clip's frame size, read
    from the image header only (a decompression bomb is refused before it is decoded)."""
    from PIL import Image, UnidentifiedImageError

    if len(frames) != s:
        raise _bad(where, f"{len(frames)} frames for {s} frame indices")
    want = _FORMATS[header.frame_encoding]
    for i, b in enumerate(frames):
        if len(b) > limits.max_frame_bytes:
            raise UnsafeContentError(f"{where}: frame {i} is {len(b)} bytes, over {limits.max_frame_bytes}; refused")
        try:
            with Image.open(io.BytesIO(b)) as img:
                fmt, size = img.format, img.size
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as e:
            raise _bad(where, f"frame {i} is not a readable image ({type(e).__name__}: {e})") from e
        if fmt != want:
            raise _bad(where, f"frame {i} is {fmt}, the store holds {want}")
        if (size[1], size[0]) != tuple(hw):
            raise UnsafeContentError(f"{where}: frame {i} declares {size[0]}x{size[1]} px, the clip is "
                                     f"{hw[1]}x{hw[0]}; refused before decoding")


def decode_frame(b: bytes, hw: tuple[int, int], where: str) -> np.ndarray:
    """RGB uint8 ``[H, W, 3]`` of a frame already passed by ``check_frames``; decode errors are store errors."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(b)) as img:
            if (img.size[1], img.size[0]) != tuple(hw):
                raise UnsafeContentError(f"{where}: frame size {img.size} != {hw[::-1]}; refused")
            return np.asarray(img.convert("RGB"))
    except StoreError:
        raise
    except Exception as e:  # noqa: BLE001 - PIL raises many types for truncated or bad data
        raise CorruptStoreError(f"{where}: frame does not decode ({type(e).__name__}: {e})") from e
