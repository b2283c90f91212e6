"""Final export: a plain Hugging Face folder (no geovr needed to load it) plus the geometry heads.

``export/`` holds ``save_pretrained`` of the inference model (the unchanged HF architecture; the
camera/scale placeholders exist only in training) and the processor; ``export/geovr_heads/``
holds ``heads.safetensors`` (camera/scale embeddings, camera, scale, distill and depth heads) and
``heads.json`` (the student config needed to rebuild them) for depth/pose readout.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path


def export(engine, processor, cfg, out: Path, rank: int) -> None:
    """Write the export folder from rank 0 (gathers ZeRO-3 partitions first)."""
    import deepspeed
    from safetensors.torch import save_file

    module = engine.module.student  # engine.module is the GeoObjective around the student
    params = list(engine.module.parameters())
    gather = deepspeed.zero.GatheredParameters(params, modifier_rank=None) if cfg.deepspeed.zero_stage == 3 \
        else _Null()
    with gather:
        if rank != 0:
            return
        out.mkdir(parents=True, exist_ok=True)
        module.inference_model().save_pretrained(out)
        processor.save_pretrained(out)
        heads = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items() if not k.startswith("hf_model.")}
        (out / "geovr_heads").mkdir(exist_ok=True)
        save_file(heads, out / "geovr_heads" / "heads.safetensors")
        (out / "geovr_heads" / "heads.json").write_text(json.dumps(
            {"student": asdict(cfg.model), "layer_map": module.layers}, indent=2))


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def load_exported(export_dir: str | Path):
    """``(GeoStudent, adapter)``: the training-time student (HF model + heads) rebuilt from an export folder."""
    from safetensors.torch import load_file

    from geovr.train.student.model import StudentConfig, load_student

    export_dir = Path(export_dir)
    meta = json.loads((export_dir / "geovr_heads" / "heads.json").read_text())
    cfg = StudentConfig(**{**meta["student"], "model": str(export_dir), "layer_map": meta["layer_map"]})
    student, adapter = load_student(cfg)
    missing, unexpected = student.load_state_dict(load_file(export_dir / "geovr_heads" / "heads.safetensors"),
                                                  strict=False)
    missing = [k for k in missing if not k.startswith("hf_model.")]
    if missing or unexpected:
        raise ValueError(f"{export_dir}: heads do not match the student (missing {missing[:5]}, unexpected "
                         f"{unexpected[:5]})")
    return student, adapter
