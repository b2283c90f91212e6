"""``render_corpus``: scenes -> mp4 videos + ground truth + ``corpus.parquet``."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .camera import intrinsics, trajectory
from .config import SynthConfig
from .render import render_frame
from .scene import Room, Scene, place_objects
from .video import write_mp4

MANIFEST_NAME = "corpus.parquet"


def clip_id(index: int) -> str:
    """Dot-free clip key, ``synth_0000``."""
    return f"synth_{index:04d}"


def make_scene(cfg: SynthConfig, index: int) -> tuple[Scene, np.ndarray]:
    """Scene and camera extrinsics ``[N, 3, 4]`` of clip ``index`` (deterministic in ``(seed, index)``)."""
    rng = np.random.default_rng([cfg.seed, index])
    room = Room((float(rng.uniform(*cfg.room_xy_m)), float(rng.uniform(*cfg.room_xy_m)),
                 float(rng.uniform(*cfg.room_height_m))))
    ext, eyes = trajectory(rng, room, cfg)
    count = int(rng.integers(cfg.objects[0], cfg.objects[1] + 1))
    objects = place_objects(rng, room, count, eyes[:, :2], cfg.clearance_m)
    return Scene(scene_id=f"s{cfg.seed}_{index:04d}", room=room, objects=objects), ext


def render_clip(out_dir: Path, cfg: SynthConfig, index: int) -> dict:
    """Render clip ``index`` into ``out_dir``; returns its manifest row."""
    cid = clip_id(index)
    scene, ext = make_scene(cfg, index)
    k = intrinsics(cfg)
    hw = (cfg.height, cfg.width)
    n = cfg.frames
    depth = np.zeros((n, *hw), dtype=np.float32)
    counts = np.zeros((len(scene.objects), n), dtype=np.int64)

    def frames():
        for i in range(n):
            rgb, depth[i], ids = render_frame(scene, ext[i], k, hw)
            if scene.objects:
                counts[:, i] = np.bincount(ids[ids >= 0].ravel(), minlength=len(scene.objects))
            yield rgb

    video = out_dir / "videos" / f"{cid}.mp4"
    video.parent.mkdir(parents=True, exist_ok=True)
    write_mp4(video, frames(), cfg.fps, cfg.crf)
    scene.visible_pixels = counts.tolist()
    scene.first_visible_frame = [
        int(np.flatnonzero(c)[0]) if np.any(c) else None for c in counts
    ]
    gt = out_dir / "gt" / cid
    gt.mkdir(parents=True, exist_ok=True)
    np.save(gt / "extrinsics.npy", ext.astype(np.float64))
    np.save(gt / "intrinsics.npy", np.broadcast_to(k, (n, 3, 3)).astype(np.float64))
    np.save(gt / "depth.npy", depth)
    meta = scene.to_json()
    meta["config"] = {k_: list(v) if isinstance(v, tuple) else v for k_, v in asdict(cfg).items()}
    (gt / "scene.json").write_text(json.dumps(meta, indent=1))
    return {
        "clip_id": cid, "uri": f"videos/{cid}.mp4", "start_frame": 0, "end_frame": None,
        "gt_dir": f"gt/{cid}", "scene_id": scene.scene_id, "num_frames": n, "fps": cfg.fps,
        "height": cfg.height, "width": cfg.width,
    }


def render_corpus(out_dir: str | Path, cfg: SynthConfig | None = None, progress: bool = True) -> Path:
    """Render ``cfg.clips`` clips under ``out_dir`` and write the manifest; returns its path.

    Layout: ``videos/{clip_id}.mp4``, ``gt/{clip_id}/{extrinsics,intrinsics,depth}.npy`` +
    ``scene.json``, ``corpus.parquet`` (columns of docs/architecture.md plus ``scene_id``,
    ``num_frames``, ``fps``, ``height``, ``width``).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm import tqdm

    cfg = cfg or SynthConfig()
    cfg.validate()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = [render_clip(out, cfg, i) for i in tqdm(range(cfg.clips), desc="synth", unit="clip",
                                                   disable=not progress)]
    schema = pa.schema([
        ("clip_id", pa.string()), ("uri", pa.string()), ("start_frame", pa.int64()),
        ("end_frame", pa.int64()), ("gt_dir", pa.string()), ("scene_id", pa.string()),
        ("num_frames", pa.int64()), ("fps", pa.int64()), ("height", pa.int64()), ("width", pa.int64()),
    ])
    path = out / MANIFEST_NAME
    tmp = out / (MANIFEST_NAME + ".tmp")
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp)
    tmp.replace(path)
    return path
