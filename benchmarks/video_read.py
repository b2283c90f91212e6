"""Reading a clip's sampled frames: packet index + keyframe seeks vs decoding every frame.

One synthetic long video (default 60 s of 640x480 at 30 fps, H.264 with a keyframe every
``--gop`` frames, B-frames) is read two ways, side by side:

- ``sequential``: count frames by decoding the whole file, then decode from the start up to the
  last wanted frame (what a naive reader does; geovr's fallback for streams without timestamps);
- ``seek``: ``geovr.shared.video.count_frames`` + ``read_frames`` (one demux pass to index the
  packets, then a seek to the keyframe before each wanted frame).

Both return identical frames (checked here, and in ``tests/test_video_seek.py``). Two samplings:
the extraction default (2 fps, i.e. every 15th frame) and 32 uniform frames (VSI-Bench evaluation).

    python benchmarks/video_read.py [--seconds 60] [--gop 30]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, table, timeit  # noqa: E402


def render(path: Path, frames: int, gop: int, hw: tuple[int, int] = (480, 640)) -> None:
    import av

    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, size=(hw[0] // 8, hw[1] // 8, 3), dtype=np.uint8)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264" if "libx264" in av.codec.codecs_available else "mpeg4", rate=30)
        s.height, s.width = hw
        s.pix_fmt = "yuv420p"
        s.options = {"g": str(gop), "bf": "2", "preset": "veryfast"}
        for i in range(frames):  # a slowly panning texture: realistic inter-frame compression
            img = np.roll(np.kron(base, np.ones((8, 8, 1), np.uint8)), shift=i, axis=1)
            for pk in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pk)
        for pk in s.encode():
            c.mux(pk)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--gop", type=int, default=30, help="keyframe interval of the test video")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from geovr.shared import video

    n = 30 * args.seconds
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "long.mp4"
        render(path, n, args.gop)
        rows = []
        for name, idx in (("2 fps (every 15th)", np.arange(0, n, 15)),
                          ("32 uniform", np.linspace(0, n - 1, 32).astype(int))):

            def sequential(idx=idx) -> np.ndarray:
                video._decode(path, set(), count_all=True)
                frames, _, _ = video._decode(path, {int(i) for i in idx})
                return np.stack([frames[int(i)] for i in idx])

            def seek(idx=idx) -> np.ndarray:
                video.count_frames(path)
                return video.read_frames(path, idx)

            assert np.array_equal(sequential(), seek()), "seek and sequential reads differ"
            t_seq, t_seek = timeit(sequential, args.repeat), timeit(seek, args.repeat)
            rows.append({"sampling": name, "frames": len(idx), "sequential_s": t_seq, "seek_s": t_seek,
                         "speedup": t_seq / t_seek})
    print(f"machine: {machine()}")
    print(f"video: {args.seconds} s, 640x480, 30 fps, {n} frames, keyframe every {args.gop}\n")
    print(table(rows, list(rows[0])))


if __name__ == "__main__":
    main()
