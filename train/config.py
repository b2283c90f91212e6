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

from geovr.shared.cliconfig import config_from_dict, read_yaml
from geovr.shared.errors import UsageError
from geovr.train.losses import LossConfig
from geovr.train.recipe_files import RECIPES, recipe_path  # noqa: F401  (RECIPES re-exported)
from geovr.train.student.model import StudentConfig


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


def _set(d: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    for k in keys[:-1]:
        d = d.setdefault(k, {})
        if not isinstance(d, dict):
            raise UsageError(f"override {dotted}: {k} is not a section")
    d[keys[-1]] = value


def load_config(recipe: str, overrides: list[str] | None = None) -> TrainConfig:
    """A recipe name (``train/recipes/NAME.yaml``) or YAML path, plus ``a.b=value`` overrides.

    A missing recipe, an unknown key or a malformed override is a ``UsageError`` (exit 2)."""
    path = recipe_path(recipe)
    raw = read_yaml(path)
    for o in overrides or []:
        if "=" not in o:
            raise UsageError(f"override {o!r} must look like section.key=value")
        k, v = o.split("=", 1)
        try:
            value = yaml.safe_load(v)
        except yaml.YAMLError as exc:
            raise UsageError(f"override {o!r}: value is not valid YAML (quote it)") from exc
        _set(raw, k.strip(), value)
    return config_from_dict(TrainConfig, raw, str(path))


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
