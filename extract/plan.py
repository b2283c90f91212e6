"""``geovr extract --plan``: bytes per frame / clip and the corpus total, before anything runs.

Frame counts come from the sampling contract applied to each source's container metadata (no
decoding); per-frame sizes from the store header and the teacher's feature width. Stored frames
are at the student's size (the sampling contract's budget), depth and features at the teacher
input's.
"""

from __future__ import annotations

from pathlib import Path

from geovr.extract.corpus import read_corpus
from geovr.shared.sampling import SamplingConfig, frame_count, student_size, teacher_resize

JPEG_BYTES_PER_PIXEL = 0.3
"""Rough JPEG size at quality 95 for natural indoor frames (measured on the synthetic corpus: ~0.29)."""


def _meta(uri: Path) -> tuple[int, float, tuple[int, int]]:
    import av

    if uri.is_dir():
        from geovr.shared.video import IMAGE_SUFFIXES, load_image

        files = sorted(p for p in uri.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        return len(files), float("nan"), load_image(files[0]).shape[:2]
    with av.open(str(uri)) as c:
        s = c.streams.video[0]
        return int(s.frames), float(s.average_rate or 30), (s.height, s.width)


def bytes_per_frame(out_hw: tuple[int, int], feature_channels: int, n_layers: int, pool: int, feat_itemsize: int,
                    depth_downsample: int, patch: int = 14, pca_dims: int | None = None,
                    frames_per_clip: int = 1, frame_hw: tuple[int, int] | None = None) -> dict[str, float]:
    """Stored bytes of one frame, by target (a clip's PCA basis is spread over its frames).

    ``out_hw`` is the teacher input (depth, features), ``frame_hw`` the stored student frame (JPEG;
    defaults to ``out_hw``)."""
    frame_hw = frame_hw or out_hw
    gh, gw = out_hw[0] // patch // pool, out_hw[1] // patch // pool
    dh, dw = out_hw[0] // depth_downsample, out_hw[1] // depth_downsample
    stored_c = pca_dims or feature_channels
    pca_basis = n_layers * (2 * pca_dims * feature_channels + 4 * feature_channels) / max(frames_per_clip, 1) \
        if pca_dims else 0.0
    return {
        "features": n_layers * gh * gw * stored_c * feat_itemsize + pca_basis,
        "depth+conf": 2 * 2 * dh * dw,
        "jpeg": JPEG_BYTES_PER_PIXEL * frame_hw[0] * frame_hw[1],
        "pose": 9 * 4 + 12 * 4 + 9 * 4,
    }


def plan(corpus: str, sampling: SamplingConfig, feature_channels: int, n_layers: int, pool: int, dtype: str,
         depth_downsample: int, pca_dims: int | None = None) -> str:
    """A text report of the storage the job will write."""
    itemsize = {"bf16": 2, "fp16": 2, "fp32": 4, "int8": 1}[dtype]
    rows = read_corpus(corpus)
    total, frames_total, per_frame, sizes = 0.0, 0, {}, {}
    unreadable = 0
    for r in rows:
        try:
            n, fps, hw = _meta(r.uri)
        except Exception:  # noqa: BLE001 - the plan reports unreadable sources instead of failing
            unreadable += 1
            continue
        end = n if r.end_frame is None else min(r.end_frame, n)
        s = frame_count(max(end - r.start_frame, 0), fps, sampling)
        try:
            frame_hw = student_size(hw, s, sampling)
        except ValueError:
            unreadable += 1
            continue
        teacher_hw = teacher_resize(frame_hw, sampling).out_hw
        sizes[(frame_hw, teacher_hw)] = sizes.get((frame_hw, teacher_hw), 0) + 1
        per_frame = bytes_per_frame(teacher_hw, feature_channels, n_layers, pool,
                                    itemsize, depth_downsample, pca_dims=pca_dims, frames_per_clip=s,
                                    frame_hw=frame_hw)
        frames_total += s
        total += s * sum(per_frame.values())
    lines = [f"corpus: {len(rows)} clips ({unreadable} unreadable), {frames_total} sampled frames"]
    for (fhw, thw), n in sorted(sizes.items(), key=lambda kv: -kv[1])[:3]:
        tok = (fhw[0] // sampling.student_patch) * (fhw[1] // sampling.student_patch)
        lines.append(f"  {n} clips: student frames {fhw[0]}x{fhw[1]} ({tok} tokens/frame), teacher input "
                     f"{thw[0]}x{thw[1]} ({sampling.teacher_mode})")
    lines += [f"  {k:<11} {v / 1e3:10.1f} KB/frame" for k, v in per_frame.items()]
    if rows and frames_total:
        lines.append(f"  per clip    {total / max(len(rows) - unreadable, 1) / 1e6:10.2f} MB (mean)")
    lines.append(f"  total       {total / 1e9:10.3f} GB")
    return "\n".join(lines)
