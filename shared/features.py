"""Feature target codecs: which teacher features are stored, and how their numbers are encoded.

Encodings (``FeatureSpec.dtype``), all of a float32 ``[S, h, w, C]`` array:

- ``fp32``: stored as float32, exact.
- ``fp16``: stored as float16 (IEEE half, round-to-nearest-even).
- ``bf16``: numpy has no bfloat16, so the store holds the **uint16 bit pattern** of the
  bfloat16 value (the upper 16 bits of the float32, rounded to nearest even; NaN kept quiet).
  A plain reader converts it with ``torch.from_numpy(a).view(torch.bfloat16)`` or
  ``a.view(ml_dtypes.bfloat16)``, or to float32 in numpy with
  ``(a.astype(np.uint32) << 16).view(np.float32)``.
- ``int8``: per-channel symmetric quantisation: ``scales[c] = max|x[..., c]| / 127`` (1 for an
  all-zero channel), ``q = clip(round(x / scales), -127, 127)``; decode ``q * scales``. Scales
  are float32 ``[C]`` and travel next to the array (``feat_lXX_scale``).

Optional PCA (``FeatureSpec.pca_dims = k``): before encoding, each clip's features of a layer
are projected onto their own top-``k`` principal directions, fit on that clip's tokens:
``codes = (x - mean) @ basis.T`` with ``mean`` float32 ``[C]`` and ``basis`` float16 ``[k, C]``
(orthonormal rows, sorted by explained variance). The stored array is ``codes`` ``[S, h, w, k]``
in the chosen dtype; ``mean`` and ``basis`` travel with the clip (``feat_lXX_pca_mean``,
``feat_lXX_pca_basis``); decode ``codes @ basis + mean``. A per-clip basis needs no corpus-wide
fitting pass or coordination between ranks, and its cost (``2 k C + 4 C`` bytes per layer and
clip) is amortised over the clip's frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from geovr.shared.teacher_layers import VGGT_DPT_LAYERS

__all__ = [
    "FEATURE_DTYPES",
    "FeatureSpec",
    "bf16_bits_to_f32",
    "decode_features",
    "encode_features",
    "pca_decode",
    "pca_encode",
    "f32_to_bf16_bits",
    "pool_features",
    "select_channels",
    "stored_numpy_dtype",
]

FEATURE_DTYPES = ("bf16", "fp16", "fp32", "int8")
"""Allowed ``FeatureSpec.dtype`` values."""
CHANNEL_SLICES = ("frame", "global", "both")
"""Allowed ``FeatureSpec.channels`` values (VGGT layers are ``cat(frame, global)``)."""


@dataclass(frozen=True)
class FeatureSpec:
    """Which teacher features a store keeps, and how they are reduced and encoded."""

    layers: tuple[int, ...] = VGGT_DPT_LAYERS
    """Teacher layer indices to store (default: VGGT's DPT layers, ``geovr.shared.teacher_layers``)."""
    channels: str = "both"
    """Channel slice of each ``2C``-wide layer output: ``frame`` (``0:C``), ``global`` (``C:2C``) or ``both``."""
    pool: int = 1
    """Spatial average pooling factor over the patch grid (2 = 2x2 average); 1 = none."""
    dtype: str = "fp16"
    """Storage encoding: ``bf16`` (uint16 bit pattern), ``fp16``, ``fp32`` or ``int8`` (per-channel scales)."""
    pca_dims: int | None = None
    """If set, features were projected to this many PCA dimensions before encoding (basis stored by the extractor)."""

    def __post_init__(self) -> None:
        if self.dtype not in FEATURE_DTYPES:
            raise ValueError(f"FeatureSpec.dtype {self.dtype!r} not in {FEATURE_DTYPES}")
        if self.channels not in CHANNEL_SLICES:
            raise ValueError(f"FeatureSpec.channels {self.channels!r} not in {CHANNEL_SLICES}")
        if int(self.pool) < 1:
            raise ValueError(f"FeatureSpec.pool must be >= 1, got {self.pool}")
        if self.pca_dims is not None and int(self.pca_dims) < 1:
            raise ValueError(f"FeatureSpec.pca_dims must be >= 1 or None, got {self.pca_dims}")
        if len(set(self.layers)) != len(self.layers):
            raise ValueError(f"FeatureSpec.layers has duplicates: {self.layers}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "layers": [int(x) for x in self.layers],
            "channels": self.channels,
            "pool": int(self.pool),
            "dtype": self.dtype,
            "pca_dims": None if self.pca_dims is None else int(self.pca_dims),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureSpec:
        pca = d.get("pca_dims")
        return cls(
            layers=tuple(int(x) for x in d.get("layers", ())),
            channels=str(d.get("channels", "both")),
            pool=int(d.get("pool", 1)),
            dtype=str(d.get("dtype", "fp16")),
            pca_dims=None if pca is None else int(pca),
        )


def stored_numpy_dtype(dtype: str) -> np.dtype:
    """numpy dtype of the stored array for a ``FeatureSpec.dtype``."""
    table = {"bf16": np.uint16, "fp16": np.float16, "fp32": np.float32, "int8": np.int8}
    if dtype not in table:
        raise ValueError(f"unknown feature dtype {dtype!r}; expected one of {FEATURE_DTYPES}")
    return np.dtype(table[dtype])


def f32_to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """float32 -> uint16 bfloat16 bit pattern, round-to-nearest-even (NaN stays a quiet NaN)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    bits = x.view(np.uint32)
    rounding = ((bits >> 16) & 1) + np.uint32(0x7FFF)
    out = ((bits + rounding) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    if nan.any():
        out[nan] = ((bits[nan] >> 16) | 0x0040).astype(np.uint16)
    return out


def bf16_bits_to_f32(bits: np.ndarray) -> np.ndarray:
    """uint16 bfloat16 bit pattern -> float32 (exact)."""
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def encode_features(x: np.ndarray, dtype: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Encode float32 features ``[S, h, w, C]`` (any leading shape) for storage.

    Returns ``(stored, scales)``: ``stored`` has ``stored_numpy_dtype(dtype)``; ``scales`` is
    float32 ``[C]`` for ``int8`` and ``None`` otherwise.
    """
    x = np.asarray(x, dtype=np.float32)
    if dtype == "fp32":
        return x.copy(), None
    if dtype == "fp16":
        return x.astype(np.float16), None
    if dtype == "bf16":
        return f32_to_bf16_bits(x), None
    if dtype == "int8":
        if not np.all(np.isfinite(x)):
            raise ValueError("int8 feature encoding needs finite values")
        amax = np.abs(x.reshape(-1, x.shape[-1])).max(axis=0) if x.size else np.zeros(x.shape[-1], np.float32)
        scales = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
        q = np.clip(np.rint(x / scales), -127, 127).astype(np.int8)
        return q, scales
    raise ValueError(f"unknown feature dtype {dtype!r}; expected one of {FEATURE_DTYPES}")


def decode_features(stored: np.ndarray, dtype: str, scales: np.ndarray | None = None) -> np.ndarray:
    """Inverse of ``encode_features``: stored array (+ int8 scales ``[C]``) -> float32."""
    if dtype == "fp32":
        return np.asarray(stored, dtype=np.float32)
    if dtype == "fp16":
        return np.asarray(stored).astype(np.float32)
    if dtype == "bf16":
        return bf16_bits_to_f32(stored)
    if dtype == "int8":
        if scales is None:
            raise ValueError("int8 features need their per-channel scales to decode")
        scales = np.asarray(scales, dtype=np.float32)
        if scales.shape != (stored.shape[-1],):
            raise ValueError(f"int8 scales have shape {scales.shape}, expected ({stored.shape[-1]},)")
        return np.asarray(stored, dtype=np.int8).astype(np.float32) * scales
    raise ValueError(f"unknown feature dtype {dtype!r}; expected one of {FEATURE_DTYPES}")


def select_channels(x: np.ndarray, channels: str) -> np.ndarray:
    """Slice a ``[..., 2C]`` layer output: ``frame`` -> ``0:C``, ``global`` -> ``C:2C``, ``both`` -> all."""
    if channels == "both":
        return x
    c2 = x.shape[-1]
    if c2 % 2:
        raise ValueError(f"channel slice {channels!r} needs an even channel count, got {c2}")
    if channels == "frame":
        return x[..., : c2 // 2]
    if channels == "global":
        return x[..., c2 // 2 :]
    raise ValueError(f"channels {channels!r} not in {CHANNEL_SLICES}")


def pool_features(x: np.ndarray, pool: int) -> np.ndarray:
    """Average-pool ``[S, h, w, C]`` by ``pool x pool`` (h, w must be divisible by ``pool``)."""
    if pool == 1:
        return x
    s, h, w, c = x.shape
    if h % pool or w % pool:
        raise ValueError(f"feature grid {h}x{w} not divisible by pool {pool}")
    return x.reshape(s, h // pool, pool, w // pool, pool, c).mean(axis=(2, 4), dtype=np.float32)


def pca_encode(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Project float32 ``[..., C]`` onto its own top-``k`` principal directions.

    Returns ``(codes [..., k] float32, mean [C] float32, basis [k, C] float16)``. The codes are
    computed with the float16 basis as stored, so decoding sees exactly what was encoded. With
    fewer tokens than ``k`` the extra directions have zero variance (codes ~ 0), still orthonormal.
    """
    x = np.asarray(x, dtype=np.float32)
    c = x.shape[-1]
    if not 1 <= k <= c:
        raise ValueError(f"PCA to {k} dims needs 1 <= k <= C={c}")
    flat = x.reshape(-1, c)
    mean = flat.mean(axis=0, dtype=np.float64)
    centred = flat - mean.astype(np.float32)
    cov = centred.T.astype(np.float64) @ centred.astype(np.float64)
    _, vecs = np.linalg.eigh(cov)  # ascending eigenvalues, orthonormal columns
    basis = np.ascontiguousarray(vecs[:, ::-1][:, :k].T).astype(np.float16)
    codes = centred @ basis.astype(np.float32).T
    return codes.reshape(*x.shape[:-1], k), mean.astype(np.float32), basis


def pca_decode(codes: np.ndarray, mean: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Inverse of ``pca_encode``: ``codes [..., k] @ basis [k, C] + mean [C]`` -> float32 ``[..., C]``."""
    codes = np.asarray(codes, dtype=np.float32)
    basis = np.asarray(basis, dtype=np.float32)
    if basis.ndim != 2 or basis.shape[0] != codes.shape[-1] or np.shape(mean) != (basis.shape[1],):
        raise ValueError(f"PCA codes [..., {codes.shape[-1]}] do not fit basis {basis.shape} / mean {np.shape(mean)}")
    return codes @ basis + np.asarray(mean, dtype=np.float32)
