"""``geovr eval geometry --model EXPORT``: the trained student's own geometry, read out by its
heads (camera -> pose, DPT head -> depth, scale token -> metric scale) on the clips of a target
store, scored against that store's targets (the teacher's, or ground truth from the oracle).

The student sees the cached frames exactly as in training (same processor, frame mode and
camera/scale placeholders); depth is predicted at the store's depth resolution. In ``pair``
mode a prediction covers two frames and is scored against the first of each pair.
"""

from __future__ import annotations

import numpy as np

from geovr.evaluate.geometry_eval import clip_metrics, mean_metrics


def readout_metrics(export_dir: str, ref_root: str, alignment: str = "median", threshold: float = 30.0,
                    max_clips: int | None = None, progress: bool = True) -> dict:
    """Per-clip and mean metrics of the exported student's head readout against ``ref_root``."""
    import torch
    from tqdm import tqdm

    from geovr.shared.geometry import pose_enc_to_extri_intri
    from geovr.shared.stores import StoreReader
    from geovr.train.data import clip_sample
    from geovr.train.export import load_exported
    from geovr.train.student.collate import prepare_sample

    student, adapter = load_exported(export_dir)
    student.eval().to("cuda" if torch.cuda.is_available() else "cpu")
    reader = StoreReader(ref_root)
    ids = reader.clip_ids[:max_clips] if max_clips else reader.clip_ids
    step = 1 if student.cfg.frame_mode == "duplicate" else 2
    per_clip = {}
    for cid in tqdm(ids, desc="readout", unit="clip", disable=not progress):
        clip = reader[cid]
        sample = prepare_sample(adapter, clip_sample(clip, reader.header.features.dtype, targets=False),
                                frame_mode=student.cfg.frame_mode, train=True)
        pred = {k: v.float().cpu().numpy() for k, v in student.predict(sample, clip.depth.shape[1:]).items()}
        t = len(pred["pose_enc"])
        pose = np.concatenate([pred["pose_enc"][:, :7], np.maximum(pred["pose_enc"][:, 7:], 1e-3)], -1)
        extr, _ = pose_enc_to_extri_intri(pose, clip.teacher_view.out_hw)  # pose_enc refers to the teacher input
        per_clip[cid] = clip_metrics(extr, pred["depth"], float(pred["metric_scale"]), clip.extrinsics[::step][:t],
                                     clip.depth[::step][:t], clip.metric_scale, alignment, threshold,
                                     where=f"clip {cid!r}")
    return {"model": str(export_dir), "ref": str(ref_root), "alignment": alignment, "threshold_deg": threshold,
            "num_clips": len(per_clip), "mean": mean_metrics(per_clip), "per_clip": per_clip}
