"""``geovr shards info``: one-screen summary of a store."""

from __future__ import annotations

from typing import Any

from geovr.shared.stores.fsio import resolve
from geovr.shared.stores.verify import load_manifest

__all__ = ["format_summary", "store_summary"]


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{n} B"


def store_summary(root: str) -> dict[str, Any]:
    """Key facts of the finalised store at ``root`` (local or fsspec URL)."""
    fs, path, _ = resolve(root)
    m = load_manifest(fs, path)
    h = m.header
    return {
        "store": root,
        "format": f"{m.format} {m.format_version} ({h.format})",
        "teacher": f"{h.teacher.name} {h.teacher.version}"
        + (f" sha256:{h.teacher.weights_sha256[:12]}" if h.teacher.weights_sha256 else "")
        + (f" ({h.teacher.num_layers} layers)" if h.teacher.num_layers else ""),
        "random_init": h.teacher.random_init,
        "clips_ok": m.num_clips,
        "clips_failed": m.num_failed,
        "shards": len(m.shards),
        "frames": sum(s.num_frames for s in m.shards),
        "bytes": sum(s.bytes for s in m.shards),
        "features": f"layers {list(h.features.layers)} {h.features.dtype} channels={h.features.channels} "
        f"pool={h.features.pool}" + (f" pca={h.features.pca_dims}" if h.features.pca_dims else ""),
        "depth": f"{h.depth_dtype} (1/{h.depth_downsample} of frame size)",
        "frames_encoding": f"{h.frame_encoding}" + (f" q{h.jpeg_quality}" if h.frame_encoding == "jpeg" else ""),
        "sampling": h.sampling,
        "created_by": h.created_by,
        "targets": [f"{t.name} {t.dtype} [{', '.join(t.shape)}]" for t in m.targets],
    }


def format_summary(s: dict[str, Any]) -> str:
    """Plain-text table of ``store_summary``."""
    rows = [(k, _human(v) if k == "bytes" else v) for k, v in s.items() if k != "targets"]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k.ljust(width)}  {v}" for k, v in rows]
    if s.get("random_init"):  # first line: targets of an untrained teacher must not pass for real ones
        lines.insert(0, "WARNING: RANDOM-INIT TEACHER (untrained weights): these targets are not a real teacher's")
    lines.append("targets".ljust(width) + "  " + ("\n" + " " * (width + 2)).join(s["targets"]))
    return "\n".join(lines)
