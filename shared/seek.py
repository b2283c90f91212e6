"""Sparse frame reading from video files: index the packets once (demux, no decoding), then for
each wanted frame seek to the keyframe before it and decode forward only from there.

Clips sample a few dozen frames from videos of thousands (2 fps from 30 fps, or 32 frames of a
VSI-Bench video), so decoding every frame would cost ~15-100x the decoding actually needed.

Frame ``i`` is the ``i``-th frame in presentation order, i.e. the ``i``-th smallest packet pts:
exactly the ``i``-th frame a full sequential decode yields. Streams whose packets lack a pts
(some raw elementary streams) are not indexable; callers fall back to sequential decoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


class NotIndexable(RuntimeError):
    """The stream cannot be read by seeking (no pts, unreadable container): decode sequentially."""


@dataclass(frozen=True)
class PacketIndex:
    """Where each frame of a video stream is, from one demux pass."""

    pts: np.ndarray
    """int64 ``[N]``: presentation timestamp of frame ``i`` (sorted), in ``time_base`` units."""
    keyframes: np.ndarray
    """int64 ``[K]``: sorted pts of the keyframes (where decoding can start)."""
    fps: float
    """Average frame rate of the stream (NaN if unknown)."""
    hw: tuple[int, int]
    """Frame size ``(height, width)`` in pixels, from the codec parameters."""

    @property
    def num_frames(self) -> int:
        return int(len(self.pts))


def stream_fps(stream) -> float:
    """Average frame rate of a PyAV video stream (NaN if the container does not say)."""
    return float(stream.average_rate) if stream.average_rate else float("nan")


def index_packets(path: Path) -> PacketIndex:
    """Demux ``path``'s first video stream without decoding; raises ``NotIndexable``."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise NotIndexable(f"{path}: no video stream")
            stream = container.streams.video[0]
            fps, hw = stream_fps(stream), (int(stream.codec_context.height), int(stream.codec_context.width))
            pts, keys = [], []
            for packet in container.demux(stream):
                if packet.size == 0:  # the demuxer's final flush packet
                    continue
                if packet.pts is None:
                    raise NotIndexable(f"{path}: packets without pts")
                pts.append(int(packet.pts))
                if packet.is_keyframe:
                    keys.append(int(packet.pts))
    except NotIndexable:
        raise
    except Exception as exc:  # PyAV raises several error types for corrupt input
        raise NotIndexable(f"{path}: cannot demux ({type(exc).__name__}: {exc})") from exc
    if not pts or not keys or len(set(pts)) != len(pts) or min(hw) <= 0:
        raise NotIndexable(f"{path}: no usable packet index")
    return PacketIndex(np.sort(np.asarray(pts, np.int64)), np.sort(np.asarray(keys, np.int64)), fps, hw)


def read_sparse(path: Path, index: PacketIndex, indices: np.ndarray) -> dict[int, np.ndarray]:
    """RGB uint8 ``[H, W, 3]`` frames for the wanted frame ``indices`` (missing ones absent)."""
    import av

    wanted = sorted({int(i) for i in indices if 0 <= int(i) < index.num_frames})
    by_pts = {int(index.pts[i]): i for i in wanted}
    out: dict[int, np.ndarray] = {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames, last = None, None  # the running decoder, and the pts of the last frame it gave
        for i in wanted:
            if i in out:
                continue
            target = int(index.pts[i])
            k = np.searchsorted(index.keyframes, target, side="right") - 1
            key = int(index.keyframes[max(k, 0)])
            if frames is None or last is None or last >= target or key > last:
                container.seek(key, stream=stream, backward=True, any_frame=False)
                frames = container.decode(stream)
            for frame in frames:
                if frame.pts is None:
                    raise NotIndexable(f"{path}: decoded frame without pts")
                last = int(frame.pts)
                j = by_pts.get(last)
                if j is not None and j not in out:
                    out[j] = frame.to_ndarray(format="rgb24")
                if last >= target:
                    break
    return out
