"""Writing RGB frames to mp4 with PyAV (libx264 yuv420p, mpeg4 fallback)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np


def write_mp4(path: Path, frames: Iterable[np.ndarray], fps: int, crf: int) -> str:
    """Encode uint8 ``[H, W, 3]`` RGB frames to ``path``; returns the codec used.

    libx264 at ``crf`` when available, otherwise mpeg4 at a fixed high quality (qscale 2).
    """
    import av

    codec = "libx264" if "libx264" in av.codec.codecs_available else "mpeg4"
    with av.open(str(path), mode="w") as container:
        stream = None
        for frame in frames:
            if stream is None:
                stream = container.add_stream(codec, rate=fps)
                stream.width, stream.height = frame.shape[1], frame.shape[0]
                stream.pix_fmt = "yuv420p"
                if codec == "libx264":
                    stream.options = {"crf": str(crf), "preset": "medium"}
                else:
                    stream.codec_context.qscale = 2
                    stream.codec_context.flags |= "QSCALE"
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        if stream is None:
            raise ValueError(f"{path}: no frames to encode")
        for packet in stream.encode():
            container.mux(packet)
    return codec
