"""Typed training configuration: nested dataclasses, YAML recipes, ``a.b=value`` overrides.

``load_config("tiny_cpu", ["run.max_steps=5"])`` reads ``train/recipes/tiny_cpu.yaml`` (or any
YAML path), applies the overrides (values parsed as YAML), and refuses unknown keys by name.
The resolved config is written next to every checkpoint (``config.yaml``) with the git revision.
"""

from __future__ import annotations

import dataclasses
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from geovr.train.losses import LossConfig
from geovr.train.student.model import StudentConfig

RECIPES = Path(__file__).parent / "recipes"


@dataclass
class DataConfig:
    """Where samples come from."""

    stores: list[str] = field(default_factory=list)
    """Target stores (local folders) written by ``geovr extract``."""
    instructions: list[str] = field(default_factory=list)
    """JSONL conversation files (LLaVA / VSI-590K style) whose rows reference ``clip_id``."""
    geometry_only: bool = True
    """Also train on clips that have no QA (geometry terms only)."""
    sampling: dict[str, Any] | None = None
    """Expected frame-sampling config (``geovr.shared.sampling.SamplingConfig`` fields); None = the stores' own,
    which must then agree with each other."""
    workers: int = 2
    """DataLoader worker processes preparing samples (store read, JPEG decode, processor); 0 = in the trainer."""
    verify: str = "all"
    """When shard hashes are checked against each store's ``index.json``: ``all`` = every shard before the model
    loads (verified file versions are cached in ``$GEOVR_CACHE/verified``, so restarts only stat files); ``lazy`` =
    each shard when a sample first reads it. Clip content (dtypes, shapes, finite values, frames) is always
    checked on read."""
    on_bad_clip: str = "stop"
    """A clip that fails a check (tampered shard, wrong dtype/shape, NaN/Inf, undecodable frame): ``stop`` = the
    run stops with the store error (before the first optimizer step for shards checked by ``verify: all``);
    ``skip`` = the clip is never trained on, the next item takes its place, each skip is reported on stderr."""


@dataclass
class OptimConfig:
    """AdamW + warmup/cosine (the paper's recipe)."""

    lr: float = 2e-5
    """Learning rate of the MLLM (LLM + merger)."""
    head_lr: float = 1e-4
    """Learning rate of heads and camera/scale token embeddings."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    warmup_ratio: float = 0.03
    """Fraction of steps with linear warmup."""
    grad_clip: float = 1.0
    """Global gradient-norm clip."""
    grad_accum: int = 1
    """Micro-batches per optimizer step (per rank)."""


@dataclass
class DeepSpeedConfig:
    """DeepSpeed engine settings."""

    zero_stage: int = 2
    """ZeRO stage (2 default, 3 supported)."""
    precision: str = "auto"
    """``auto`` (bf16 on GPU, fp32 on CPU), ``bf16`` or ``fp32``."""
    offload_optimizer: bool = False
    """Offload optimizer states to CPU (ZeRO-Offload)."""


@dataclass
class RunConfig:
    """Run bookkeeping."""

    out_dir: str = "runs/geovr"
    """Checkpoints, metrics.jsonl, config.yaml and the final export go here."""
    max_steps: int = 100
    """Optimizer steps."""
    save_every: int = 50
    """Checkpoint every N steps (and at the end)."""
    seed: int = 0
    """Seed of data order and head initialisation."""
    resume: bool = False
    """Continue from the latest checkpoint in ``out_dir/checkpoints``."""
    stop_at: int = 0
    """Leave the loop after this step (a checkpoint is written there), e.g. to fit a job time limit; 0 = never.
    The schedule still spans ``max_steps``; continue with ``run.resume=true``."""
    export: bool = True
    """Write ``out_dir/export`` (plain HF folder + heads) at the end."""


@dataclass
class TrainConfig:
    """Everything ``geovr train`` needs."""

    model: StudentConfig = field(default_factory=StudentConfig)
    """The student."""
    loss: LossConfig = field(default_factory=LossConfig)
    """Loss switches and weights."""
    data: DataConfig = field(default_factory=DataConfig)
    """Stores and instructions."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """Optimizer and schedule."""
    deepspeed: DeepSpeedConfig = field(default_factory=DeepSpeedConfig)
    """Engine."""
    run: RunConfig = field(default_factory=RunConfig)
    """Bookkeeping."""


def _build(cls: type, d: dict[str, Any], where: str) -> Any:
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(d) - set(names)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(names)}")
    kwargs = {}
    for k, v in d.items():
        sub = names[k].default_factory if names[k].default_factory is not dataclasses.MISSING else None
        if sub is not None and dataclasses.is_dataclass(sub) and isinstance(v, dict):
            kwargs[k] = _build(sub, v, f"{where}.{k}")
        else:
            kwargs[k] = v
    return cls(**kwargs)


def _set(d: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    for k in keys[:-1]:
        d = d.setdefault(k, {})
    d[keys[-1]] = value


def load_config(recipe: str, overrides: list[str] | None = None) -> TrainConfig:
    """A recipe name (``train/recipes/NAME.yaml``) or YAML path, plus ``a.b=value`` overrides."""
    path = Path(recipe)
    if not path.is_file():
        path = RECIPES / f"{recipe}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in RECIPES.glob("*.yaml"))
        raise FileNotFoundError(f"{recipe}: no such config file or recipe (recipes: {known})")
    raw = yaml.safe_load(path.read_text()) or {}
    for o in overrides or []:
        if "=" not in o:
            raise ValueError(f"override {o!r} must look like section.key=value")
        k, v = o.split("=", 1)
        _set(raw, k.strip(), yaml.safe_load(v))
    return _build(TrainConfig, raw, str(path))


def git_revision() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=Path(__file__).parent).stdout.strip() or "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def dump_config(cfg: TrainConfig, path: Path) -> None:
    """Write the resolved config plus geovr version and git revision."""
    from geovr import __version__

    doc = {**dataclasses.asdict(cfg), "_provenance": {"geovr": __version__, "git": git_revision()}}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
