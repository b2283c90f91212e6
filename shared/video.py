"""Video input: PyAV decoding (mp4/mkv/webm/...) and image-folder clips, content hashing, crop+resize.

Every failure is a :class:`VideoError` naming the source, so the job runner can record it per clip
and go on.
"""

from __future__ import annotations

import hashlib
import io
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geovr.shared.schema import ResizeSpec
from geovr.shared.seek import NotIndexable, index_packets, read_sparse, stream_fps

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
"""Files of an image-folder clip (sorted by name = frame order)."""
MAX_IMAGE_PIXELS = 1 << 27
"""Largest image (width x height, ~134 Mpx) decoded; a larger declared size (decompression bomb) fails the clip
before any pixel is decoded."""


class VideoError(RuntimeError):
    """A source could not be read (missing, corrupt, truncated, empty)."""


@dataclass(frozen=True)
class SourceInfo:
    """What :func:`probe` learns about a source."""

    num_frames: int
    """Decodable frames."""
    fps: float
    """Native frame rate (NaN for image folders)."""
    hw: tuple[int, int]
    """Frame size ``(height, width)`` in pixels."""
    sha256: str
    """Content hash (file bytes; for folders, the sorted file names and bytes)."""


def _image_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise VideoError(f"{folder}: image folder has no {IMAGE_SUFFIXES} files")
    return files


def content_sha256(path: Path) -> str:
    """Streamed sha256 of a video file, or of an image folder's names + bytes."""
    h = hashlib.sha256()
    files = _image_files(path) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(f.name.encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise VideoError(f"{path}: video file not found")
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: empty (zero-length) video file")


def _decode(path: Path, wanted: set[int], count_all: bool = False) -> tuple[dict[int, np.ndarray], int, float]:
    """Sequential decode from the start: the wanted frames, the frames decoded, the stream fps."""
    import av

    _check_file(path)
    frames: dict[int, np.ndarray] = {}
    count = 0
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError(f"{path}: no video stream")
            stream = container.streams.video[0]
            fps = stream_fps(stream)
            for frame in container.decode(stream):
                if count in wanted:
                    frames[count] = frame.to_ndarray(format="rgb24")
                count += 1
                if not count_all and count > max(wanted, default=-1):
                    break
    except VideoError:
        raise
    except Exception as exc:  # PyAV raises several error types for corrupt/truncated input
        raise VideoError(f"{path}: cannot decode ({type(exc).__name__}: {exc})") from exc
    if count == 0:
        raise VideoError(f"{path}: no decodable frames")
    return frames, count, fps


def _count(path: Path) -> tuple[int, float, tuple[int, int]]:
    """``(frames, fps, (H, W))``: one demux pass (no decoding), or a full decode for streams
    without timestamps (container metadata is unreliable either way)."""
    _check_file(path)
    try:
        index = index_packets(path)
        return index.num_frames, index.fps, index.hw
    except NotIndexable:
        frames, count, fps = _decode(path, {0}, count_all=True)
        return count, fps, frames[0].shape[:2]


def count_frames(path: str | Path) -> tuple[int, float]:
    """``(frames, stream fps)`` of a video file (see :func:`probe`)."""
    count, fps, _ = _count(Path(path))
    return count, fps


_PROBED: OrderedDict[tuple, SourceInfo] = OrderedDict()
"""Recent :func:`probe` results of video files, keyed by the file's identity (path, device, inode, size, mtime)."""
PROBE_CACHE = 64
"""Video files whose probe is remembered per process: the clips of one long video (frame ranges of a corpus built
from instructions) then demux and hash it once, not once per clip."""


def probe(path: str | Path) -> SourceInfo:
    """Frame count, fps and frame size of a source, and its content hash. A video file's result is remembered while
    the file keeps its identity (a rewritten file, even of the same size, has a new mtime or inode)."""
    path = Path(path)
    if path.is_dir():
        files = _image_files(path)
        first = load_image(files[0])
        return SourceInfo(len(files), float("nan"), first.shape[:2], content_sha256(path))
    _check_file(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    if key in _PROBED:
        _PROBED.move_to_end(key)
        return _PROBED[key]
    count, fps, hw = _count(path)
    info = SourceInfo(count, fps, hw, content_sha256(path))
    _PROBED[key] = info
    while len(_PROBED) > PROBE_CACHE:
        _PROBED.popitem(last=False)
    return info


def load_image(path: Path, hw: tuple[int, int] | None = None) -> np.ndarray:
    """RGB uint8 ``[H, W, 3]`` of one image file; its declared size is checked (``MAX_IMAGE_PIXELS`` and, given
    ``hw``, exactly ``(H, W)``) before it is decoded. Every failure is a ``VideoError`` naming the file."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            w, h = img.size
            if w * h > MAX_IMAGE_PIXELS:
                raise VideoError(f"{path}: image declares {w}x{h} pixels, over the {MAX_IMAGE_PIXELS}-pixel limit")
            if hw is not None and (h, w) != tuple(hw):
                raise VideoError(f"{path}: frame is {w}x{h}, the clip's first frame is {hw[1]}x{hw[0]}; "
                                 "every frame of an image folder must have the same size")
            out = np.asarray(img.convert("RGB"))
    except VideoError:
        raise
    except Exception as exc:  # noqa: BLE001 - PIL raises many types (OSError, DecompressionBombError, ValueError...)
        raise VideoError(f"{path}: unreadable image ({type(exc).__name__}: {exc})") from exc
    if out.ndim != 3 or out.shape[:2] != (h, w):
        raise VideoError(f"{path}: decoded to shape {out.shape}, header said {w}x{h}")
    return out


def read_frames(path: str | Path, indices: np.ndarray, hw: tuple[int, int] | None = None) -> np.ndarray:
    """RGB uint8 ``[S, H, W, 3]`` of the given source frame indices; every frame must be ``hw`` (the probed
    size; default: the first frame's), else ``VideoError`` naming the frame."""
    path = Path(path)
    if path.is_dir():
        files = _image_files(path)
        if int(indices.max()) >= len(files):
            raise VideoError(f"{path}: frame {int(indices.max())} requested, folder has {len(files)} images")
        if hw is None:
            hw = load_image(files[0]).shape[:2]
        return np.stack([load_image(files[int(i)], hw) for i in indices])
    _check_file(path)
    try:  # seek to each wanted frame's keyframe instead of decoding everything before it
        frames = read_sparse(path, index_packets(path), indices)
    except Exception:  # noqa: BLE001 - not indexable, or any PyAV trouble: the sequential decode decides
        frames = {}
    if any(int(i) not in frames for i in indices):
        frames, count, _ = _decode(path, {int(i) for i in indices})
        missing = [int(i) for i in indices if int(i) not in frames]
        if missing:
            raise VideoError(f"{path}: truncated: frames {missing[:5]} not decodable ({count} frames decoded)")
    want = tuple(hw) if hw is not None else frames[int(indices[0])].shape[:2]
    for i in indices:
        if frames[int(i)].shape[:2] != want:
            raise VideoError(f"{path}: frame {int(i)} is {frames[int(i)].shape[1]}x{frames[int(i)].shape[0]}, "
                             f"expected {want[1]}x{want[0]} (frame size changes mid-stream)")
    return np.stack([frames[int(i)] for i in indices])


def crop_resize(frames: np.ndarray, resize: ResizeSpec) -> np.ndarray:
    """Apply ``resize`` to ``[S, H, W, 3]`` uint8 frames: its ``crop_box`` (maybe fractional) resized to ``out_hw``.

    PIL's ``resize(box=...)``: the filter samples the box's own coordinates (neighbours outside the
    box take part at its edges), so a fractional box gives the pixels of "resize the whole frame,
    then crop" (VGGT's ``crop`` mode) and the full box a plain resize.
    """
    from PIL import Image

    top, left, ch, cw = (float(x) for x in resize.crop_box)
    oh, ow = resize.out_hw
    if tuple(frames.shape[1:3]) != tuple(resize.src_hw):
        raise ValueError(f"frames are {tuple(frames.shape[1:3])}, the resize expects {tuple(resize.src_hw)}")
    filt = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR, "nearest": Image.NEAREST}[resize.interpolation]
    box = (left, top, left + cw, top + ch)
    if (oh, ow) == tuple(frames.shape[1:3]) and box == (0, 0, frames.shape[2], frames.shape[1]):
        return np.ascontiguousarray(frames)
    out = [np.asarray(Image.fromarray(f).resize((ow, oh), filt, box=box)) for f in frames]
    return np.stack(out)


def encode_jpeg(frame: np.ndarray, quality: int) -> bytes:
    """JPEG bytes of one ``[H, W, 3]`` uint8 frame."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def write_mp4(path: str | Path, frames, fps: float, crf: int = 18) -> str:
    """Encode uint8 ``[H, W, 3]`` RGB ``frames`` (any iterable) to the mp4 ``path``; returns the codec used.

    libx264 (yuv420p) at ``crf`` when PyAV has it, otherwise mpeg4 at a fixed high quality (qscale 2);
    ``fps`` may be fractional (e.g. 29.97, kept as a rational with denominator <= 1001).
    Raises ``ValueError`` when ``frames`` is empty.
    """
    from fractions import Fraction

    import av

    codec = "libx264" if "libx264" in av.codec.codecs_available else "mpeg4"
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = None
        for rgb in frames:
            if stream is None:
                stream = container.add_stream(codec, rate=rate)
                stream.width, stream.height = rgb.shape[1], rgb.shape[0]
                stream.pix_fmt = "yuv420p"
                if codec == "libx264":
                    stream.options = {"crf": str(crf), "preset": "medium"}
                else:
                    stream.codec_context.qscale = 2
                    stream.codec_context.flags |= "QSCALE"
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")):
                container.mux(packet)
        if stream is None:
            raise ValueError(f"{path}: no frames to encode")
        for packet in stream.encode():
            container.mux(packet)
    return codec
