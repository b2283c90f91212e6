"""The DeepSpeed training loop: ZeRO-2 (default) or ZeRO-3, two learning-rate groups, warmup + cosine,
named loss terms to ``metrics.jsonl``, checkpoints with the data position, exact resume, export.

The step count comes from ``run.epochs`` over the items (or ``run.max_steps``) and the per-rank
accumulation from ``optim.global_batch`` and the world size (``geovr.train.config``); both are written
to ``config.yaml`` under ``_resolved``.

Runs as one process (``geovr train``) or under ``torchrun`` / the ``deepspeed`` launcher
(``python -m geovr.train.launch``); on CPU it uses gloo and fp32.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict
from pathlib import Path

from geovr.train.config import TrainConfig, accumulation, check_config, dump_config, total_steps


def _dist_env() -> None:
    """Single-process defaults so ``deepspeed.init_distributed`` needs no launcher (and no MPI)."""
    for k, v in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1"}.items():
        os.environ.setdefault(k, v)
    if "MASTER_PORT" not in os.environ:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            os.environ["MASTER_PORT"] = str(s.getsockname()[1])


def warmup_steps(total: int, warmup_ratio: float) -> int:
    """``ceil(warmup_ratio * total)``, as transformers' ``TrainingArguments.get_warmup_steps``."""
    return math.ceil(warmup_ratio * total)


def _skip_cpu_shm_op() -> None:
    """Keep DeepSpeed from building its CPU shared-memory communication op.

    On CPU, DeepSpeed's communication backend compiles that op with a C++ compiler and ninja when it starts
    (1-4 min the first time on a machine; processes sharing ``$TORCH_EXTENSIONS_DIR`` wait on one build lock).
    DeepSpeed uses the op only for ``inference_all_reduce``; training's all-reduce goes through
    ``torch.distributed`` (gloo on CPU) either way, so geovr's CPU runs skip the build."""
    import importlib

    ds_torch = importlib.import_module("deepspeed.comm.torch")  # not `import ... as`: deepspeed.comm.torch is torch
    if hasattr(ds_torch, "build_shm_op"):
        ds_torch.build_shm_op = lambda: None



def build_scheduler(optimizer, total: int, warmup_ratio: float):
    """transformers' cosine schedule: update ``k`` (0-based) has factor ``k / warmup`` during warmup (0 first),
    then ``0.5 * (1 + cos(pi * (k - warmup) / (total - warmup)))``."""
    from transformers import get_cosine_schedule_with_warmup

    return get_cosine_schedule_with_warmup(optimizer, warmup_steps(total, warmup_ratio), total)


def ds_config(cfg: TrainConfig, world: int, bf16: bool, accum: int) -> dict:
    zero: dict = {"stage": cfg.deepspeed.zero_stage}
    if cfg.deepspeed.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu"}
    if cfg.deepspeed.zero_stage == 3:
        zero["stage3_gather_16bit_weights_on_model_save"] = True
    return {
        "train_micro_batch_size_per_gpu": 1,
        "gradient_accumulation_steps": accum,
        "train_batch_size": world * accum,
        "gradient_clipping": cfg.optim.grad_clip,
        "zero_optimization": zero,
        "bf16": {"enabled": bf16},
        "steps_per_print": 10**9,
    }


def train(cfg: TrainConfig) -> dict:  # noqa: C901
    """Train; returns the last step's metrics."""
    import deepspeed
    import numpy as np
    import torch
    from tqdm import tqdm

    from geovr.train.data import TrainData
    from geovr.train.export import export
    from geovr.train.loader import PreparedSamples, sample_loader
    from geovr.train.objective import GeoObjective
    from geovr.train.student.model import load_student

    _dist_env()
    cuda = torch.cuda.is_available()
    if not cuda:
        _skip_cpu_shm_op()
    deepspeed.init_distributed(dist_backend="nccl" if cuda else "gloo")
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    check_config(cfg, world)
    accum = accumulation(cfg.optim, world)
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    bf16 = cfg.deepspeed.precision == "bf16" or (cfg.deepspeed.precision == "auto" and cuda)
    torch.manual_seed(cfg.run.seed)
    np.random.seed(cfg.run.seed)

    data = TrainData(cfg.data, cfg.run.seed)
    steps = total_steps(cfg.run, len(data), world * accum)
    resolved = {"items": len(data), "world": world, "grad_accum": accum, "global_batch": world * accum,
                "total_steps": steps, "warmup_steps": warmup_steps(steps, cfg.optim.warmup_ratio)}
    cfg.model.teacher_layers = data.teacher_layers
    cfg.model.teacher_feature_dim = data.teacher_dim or cfg.model.teacher_feature_dim
    # the store header's teacher records its layer count once extraction writes it (older stores: the config's)
    cfg.model.teacher_num_layers = getattr(data.readers[0].header.teacher, "num_layers", None) \
        or cfg.model.teacher_num_layers
    student, adapter = load_student(cfg.model, torch.bfloat16 if bf16 else torch.float32)
    objective = GeoObjective(student, cfg.loss)
    data.check_student(adapter.merged_patch)  # stored frames enter the processor without a resize
    opt = torch.optim.AdamW(
        [{"params": student.student_parameters(), "lr": cfg.optim.lr},
         {"params": student.head_parameters(), "lr": cfg.optim.head_lr}],
        weight_decay=cfg.optim.weight_decay,
    )
    sched = build_scheduler(opt, steps, cfg.optim.warmup_ratio)
    engine, _, _, sched = deepspeed.initialize(model=objective, optimizer=opt, lr_scheduler=sched,
                                               config=ds_config(cfg, world, bf16, accum))
    out = Path(cfg.run.out_dir)
    ckpt = out / "checkpoints"
    start = 0
    if cfg.run.resume and (ckpt / "latest").is_file():
        _, client = engine.load_checkpoint(str(ckpt))
        start = int(client["step"])
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        dump_config(cfg, out / "config.yaml", resolved)
    samples = sample_loader(PreparedSamples(cfg.data, cfg.run.seed, adapter, cfg.model.frame_mode, start,
                                            steps, rank, world, accum, data),
                            cfg.data.workers)
    batches = iter(samples)
    metrics_path = out / "metrics.jsonl"
    last: dict = {}
    bar = tqdm(range(start, steps), desc="train", unit="step", disable=rank != 0, initial=start, total=steps)
    for step in bar:
        t0 = time.perf_counter()
        sums: dict[str, float] = {}
        counts = torch.zeros(2, dtype=torch.float64)  # items replaced (video too long), samples cut (data.max_tokens)
        for _ in range(accum):
            batch = next(batches)
            meta = batch.pop("data_meta", {})
            counts += torch.tensor([meta.get("skipped", 0), meta.get("truncated", 0)], dtype=torch.float64)
            terms = engine([batch])
            engine.backward(terms["loss"])
            engine.step()
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach()) / accum
        if world > 1:
            counts = counts.to(engine.device)
            torch.distributed.all_reduce(counts)
        if not all(math.isfinite(v) for v in sums.values()):
            raise FloatingPointError(f"step {step}: non-finite loss terms {sums}")
        last = {"step": step + 1, "lr": sched.get_last_lr()[0], "head_lr": sched.get_last_lr()[1],
                "sec": time.perf_counter() - t0, "data_skipped": int(counts[0]), "data_truncated": int(counts[1]),
                **sums}
        if rank == 0:
            with open(metrics_path, "a") as f:
                f.write(json.dumps(last) + "\n")
            bar.set_postfix(loss=f"{sums['loss']:.3f}")
        stopping = cfg.run.stop_at > 0 and step + 1 >= cfg.run.stop_at
        if (step + 1) % cfg.run.save_every == 0 or step + 1 == steps or stopping:
            engine.save_checkpoint(str(ckpt), tag=f"step{step + 1}",
                                   client_state={"step": step + 1, "config": asdict(cfg)})
            if rank == 0:
                dump_config(cfg, ckpt / f"step{step + 1}" / "config.yaml", resolved)
        if stopping:
            return last
    if cfg.run.export:
        export(engine, adapter.processor, cfg, out / "export", rank)
    return last
