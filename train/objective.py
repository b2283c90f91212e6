"""The training objective: named loss terms of the student's predictions against the cached targets.

``GeoObjective`` wraps a ``GeoStudent`` (this is the module DeepSpeed trains): it asks the student
for the heads whose weight is non-zero, aligns the targets with the student's temporal groups
(``frame_step``), calls the loss functions of ``geovr.train.losses`` and weights them. Every term
in ``TERMS`` is returned for every batch (an exact zero, carrying the graph, when masked out).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from geovr.train.losses import LossConfig, camera_loss, depth_loss, distill_loss, scale_loss
from geovr.train.student.model import HEADS

WEIGHTED = ("lm", "camera", "depth", "scale", "distill")
"""Terms summed into ``loss`` with the ``LossConfig`` weight of the same name (0 switches a term off)."""
PARTS = ("camera_t", "camera_quat", "camera_fov", "depth_l1", "depth_grad")
"""Unweighted parts reported next to their terms (already inside ``camera`` / ``depth``)."""
TERMS = (*WEIGHTED, *PARTS, "loss")
"""Every named term ``GeoObjective.forward`` returns (means over the micro-batch's samples)."""


def sample_terms(pred: dict, targets: dict, cfg: LossConfig) -> dict[str, torch.Tensor]:
    """Named terms of one sample's predictions (``GeoStudent.forward``) against its targets (``[S, ...]``).

    Targets are per teacher frame; group ``g`` of the prediction is frame ``g * frame_step``.
    """
    zero = pred["anchor"]
    terms = dict.fromkeys(TERMS[:-1], zero)
    dev = zero.device
    t, step = pred["groups"], pred["frame_step"]

    def frames(x: torch.Tensor) -> torch.Tensor:
        return x[::step][:t].to(dev)

    if cfg.lm and pred["lm_labels"].numel():  # logits come only at the supervised positions (GeoStudent)
        terms["lm"] = F.cross_entropy(pred["logits"].float(), pred["lm_labels"])
    if "pose_enc" in pred and "pose_enc" in targets:
        terms.update(camera_loss(pred["pose_enc"], frames(targets["pose_enc"]), cfg))
    if "metric_scale" in pred and "metric_scale" in targets:
        terms["scale"] = scale_loss(pred["metric_scale"], targets["metric_scale"].to(dev).reshape(1))
    if "features" in pred:
        feats = [frames(targets["features"][layer]) for layer in pred["features"]]
        terms["distill"] = distill_loss(list(pred["features"].values()), feats)
    if "depth" in pred and "depth" in targets:
        target = frames(targets["depth"])
        conf = frames(targets.get("depth_conf", torch.ones_like(targets["depth"])))
        terms.update(depth_loss(pred["depth"], target, conf, cfg))
    terms["loss"] = sum(getattr(cfg, k) * terms[k] for k in WEIGHTED)
    return terms


class GeoObjective(nn.Module):
    """``forward(samples) -> {term: scalar}`` for a ``GeoStudent``; the module DeepSpeed wraps.

    Under ZeRO every trainable parameter must get a (possibly zero) gradient on every rank: gradients
    are reduced bucket by bucket, and a head unused by one rank's sample (no QA, no scale...) would
    desynchronise it. The parameters that may go unused (heads, placeholder embeddings, the output
    embedding) are listed once, at the first forward (ZeRO-3 partitioned ones, which DeepSpeed's own
    hooks track, left out), and touched with weight 0.
    """

    def __init__(self, student: nn.Module, loss: LossConfig) -> None:
        super().__init__()
        self.student, self.loss_cfg = student, loss
        self._maybe_unused: list[nn.Parameter] | None = None

    def heads(self) -> tuple[str, ...]:
        """Student heads needed for the non-zero weights."""
        return tuple(h for h in HEADS if getattr(self.loss_cfg, h))  # each head's term has the head's name

    def maybe_unused(self) -> list[nn.Parameter]:
        """Trainable parameters a micro-batch may leave without gradient (built once)."""
        if self._maybe_unused is None:
            cands = [*self.student.head_parameters(), *self.student.hf_model.get_output_embeddings().parameters()]
            seen: set[int] = set()
            self._maybe_unused = [p for p in cands if p.requires_grad and not hasattr(p, "ds_status")
                                  and not (id(p) in seen or seen.add(id(p)))]
        return self._maybe_unused

    def forward(self, samples: list[dict]) -> dict[str, torch.Tensor]:
        preds = self.student(samples, self.heads())
        per = [sample_terms(p, s.get("targets", {}), self.loss_cfg) for p, s in zip(preds, samples, strict=True)]
        terms = {k: torch.stack([t[k] for t in per]).mean() for k in TERMS}
        unused = self.maybe_unused()
        if unused:
            terms["loss"] = terms["loss"] + sum(p.sum() for p in unused) * 0.0
        return terms
