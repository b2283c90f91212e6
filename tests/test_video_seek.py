"""Sparse frame reading (seek to keyframes) returns exactly what a full sequential decode does."""

import av
import numpy as np
import pytest

from geovr.shared import video
from geovr.shared.seek import NotIndexable, index_packets
from geovr.shared.video import VideoError, count_frames, read_frames


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    """300 frames, keyframe every 12, B-frames: every frame visibly distinct."""
    path = tmp_path_factory.mktemp("seek") / "long.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264" if "libx264" in av.codec.codecs_available else "mpeg4", rate=30)
        s.width, s.height, s.pix_fmt = 160, 96, "yuv420p"
        s.options = {"g": "12", "bf": "2"}
        for i in range(300):
            img = np.zeros((96, 160, 3), np.uint8)
            img[:, :, 0] = i % 256
            img[(3 * i) % 96, :, 1] = 255
            img[:, (5 * i) % 160, 2] = 255
            for pk in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pk)
        for pk in s.encode():
            c.mux(pk)
    return path


def _sequential(path, indices):
    frames, count, _ = video._decode(path, {int(i) for i in indices}, count_all=True)
    return np.stack([frames[int(i)] for i in indices]), count


def test_seeking_equals_sequential_decoding(long_video):
    rng = np.random.default_rng(0)
    index = index_packets(long_video)
    assert len(index.keyframes) > 10  # the test really seeks
    for idx in (np.sort(rng.choice(300, 24, replace=False)), np.array([299, 0, 150, 150, 13]), np.arange(300)):
        expect, count = _sequential(long_video, idx)
        np.testing.assert_array_equal(read_frames(long_video, idx), expect)
    assert count_frames(long_video) == (count, 30.0) == (300, 30.0)
    assert video.probe(long_video).hw == expect.shape[1:3] == (96, 160)  # from codec parameters, no decode


def test_streams_without_an_index_fall_back_to_sequential_decoding(long_video, monkeypatch):
    def no_index(path):
        raise NotIndexable("test")

    monkeypatch.setattr(video, "index_packets", no_index)
    idx = np.array([5, 100, 250])
    np.testing.assert_array_equal(read_frames(long_video, idx), _sequential(long_video, idx)[0])
    assert count_frames(long_video)[0] == 300


def test_a_truncated_video_names_the_missing_frames(long_video, tmp_path):
    cut = tmp_path / "cut.mp4"
    data = long_video.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError, match="cut.mp4"):
        read_frames(cut, np.array([0, 299]))


def test_probe_is_remembered_per_file_identity(long_video, tmp_path, monkeypatch):
    """The clips of one long video probe (demux + hash) it once; a rewritten file is probed again."""
    import os
    import shutil

    calls = []
    real = video.content_sha256
    monkeypatch.setattr(video, "content_sha256", lambda p: calls.append(p) or real(p))
    path = tmp_path / "v.mp4"
    shutil.copy(long_video, path)
    first = video.probe(path)
    assert video.probe(path) == first and video.probe(str(path)) == first and len(calls) == 1
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # rewritten in place (truncated): probed again, and refused
    with pytest.raises(VideoError):
        video.probe(path)
    path.write_bytes(data)  # the same bytes again, same size: the new mtime still misses
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert video.probe(path) == first and len(calls) == 2
