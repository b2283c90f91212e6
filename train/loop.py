"""The DeepSpeed training loop: ZeRO-2 (default) or ZeRO-3, two learning-rate groups, warmup + cosine,
named loss terms to ``metrics.jsonl``, checkpoints with the data position, exact resume, export.

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

from geovr.train.config import TrainConfig, dump_config


def _dist_env() -> None:
    """Single-process defaults so ``deepspeed.init_distributed`` needs no launcher (and no MPI)."""
    for k, v in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1"}.items():
        os.environ.setdefault(k, v)
    if "MASTER_PORT" not in os.environ:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            os.environ["MASTER_PORT"] = str(s.getsockname()[1])


def lr_lambda(total: int, warmup_ratio: float):
    """Linear warmup over ``ceil(warmup_ratio * total)`` steps, then cosine to 0."""
    warm = max(1, math.ceil(warmup_ratio * total))

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))

    return f


def ds_config(cfg: TrainConfig, world: int, bf16: bool) -> dict:
    zero: dict = {"stage": cfg.deepspeed.zero_stage}
    if cfg.deepspeed.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu"}
    if cfg.deepspeed.zero_stage == 3:
        zero["stage3_gather_16bit_weights_on_model_save"] = True
    return {
        "train_micro_batch_size_per_gpu": 1,
        "gradient_accumulation_steps": cfg.optim.grad_accum,
        "train_batch_size": world * cfg.optim.grad_accum,
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
    deepspeed.init_distributed(dist_backend="nccl" if cuda else "gloo")
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    bf16 = cfg.deepspeed.precision == "bf16" or (cfg.deepspeed.precision == "auto" and cuda)
    torch.manual_seed(cfg.run.seed)
    np.random.seed(cfg.run.seed)

    data = TrainData(cfg.data, cfg.run.seed)
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
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg.run.max_steps, cfg.optim.warmup_ratio))
    engine, _, _, sched = deepspeed.initialize(model=objective, optimizer=opt, lr_scheduler=sched,
                                               config=ds_config(cfg, world, bf16))
    out = Path(cfg.run.out_dir)
    ckpt = out / "checkpoints"
    start = 0
    if cfg.run.resume and (ckpt / "latest").is_file():
        _, client = engine.load_checkpoint(str(ckpt))
        start = int(client["step"])
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        dump_config(cfg, out / "config.yaml")
    samples = sample_loader(PreparedSamples(cfg.data, cfg.run.seed, adapter, cfg.model.frame_mode, start,
                                            cfg.run.max_steps, rank, world, cfg.optim.grad_accum, data),
                            cfg.data.workers)
    batches = iter(samples)
    metrics_path = out / "metrics.jsonl"
    last: dict = {}
    bar = tqdm(range(start, cfg.run.max_steps), desc="train", unit="step", disable=rank != 0,
               initial=start, total=cfg.run.max_steps)
    for step in bar:
        t0 = time.perf_counter()
        sums: dict[str, float] = {}
        for _ in range(cfg.optim.grad_accum):
            terms = engine([next(batches)])
            engine.backward(terms["loss"])
            engine.step()
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach()) / cfg.optim.grad_accum
        if not all(math.isfinite(v) for v in sums.values()):
            raise FloatingPointError(f"step {step}: non-finite loss terms {sums}")
        last = {"step": step + 1, "lr": sched.get_last_lr()[0], "head_lr": sched.get_last_lr()[1],
                "sec": time.perf_counter() - t0, **sums}
        if rank == 0:
            with open(metrics_path, "a") as f:
                f.write(json.dumps(last) + "\n")
            bar.set_postfix(loss=f"{sums['loss']:.3f}")
        stopping = cfg.run.stop_at > 0 and step + 1 >= cfg.run.stop_at
        if (step + 1) % cfg.run.save_every == 0 or step + 1 == cfg.run.max_steps or stopping:
            engine.save_checkpoint(str(ckpt), tag=f"step{step + 1}",
                                   client_state={"step": step + 1, "config": asdict(cfg)})
            if rank == 0:
                dump_config(cfg, ckpt / f"step{step + 1}" / "config.yaml")
        if stopping:
            return last
    if cfg.run.export:
        export(engine, adapter.processor, cfg, out / "export", rank)
    return last
