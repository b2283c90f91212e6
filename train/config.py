"""Typed training configuration: nested dataclasses, YAML recipes, ``a.b=value`` overrides.

``load_config("tiny_cpu", ["run.max_steps=5"])`` reads ``train/recipes/tiny_cpu.yaml`` (or any
YAML path), applies the overrides (values parsed as YAML), and refuses unknown keys by name.
The resolved config is written next to every checkpoint (``config.yaml``) with the git revision.
"""

from __future__ import annotations

import dataclasses
import math
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from geovr.shared.cliconfig import config_from_dict, read_yaml
from geovr.shared.errors import UsageError
from geovr.train.losses import LossConfig
from geovr.train.recipe_files import RECIPES, recipe_path  # noqa: F401  (RECIPES re-exported)
from geovr.train.student.config import StudentConfig

PAPER_PROMPT_STRIP = ("<image>\n", "These are frames of a video.\n")
"""What GeoVR's loaders remove from the first user turn (``dataset/vsi_590k.py``, ``dataset/vlm3r.py``)."""


@dataclass
class DataConfig:
    """Where samples come from."""

    stores: list[str] = field(default_factory=list)
    """Target stores (local folders) written by ``geovr extract``."""
    instructions: list[str] = field(default_factory=list)
    """JSONL conversation files (LLaVA / VSI-590K style) whose rows reference ``clip_id``."""
    prompt_strip: list[str] = field(default_factory=lambda: list(PAPER_PROMPT_STRIP))
    """Strings removed (every occurrence, in this order) from the first user turn of each instruction row; the
    video always goes before that turn's text. Default: the paper's ``"<image>\\n"`` then ``"These are frames of a
    video.\\n"``; anything else (``<video>`` included) stays in the text, as in the paper's code (docs/recipe.md)."""
    first_exchange: bool = True
    """Use only ``conversations[0]`` (question, with the video) and ``[1]`` (answer) of a row, as the paper's
    loaders do; false = every turn, each answer supervised."""
    mix_clips_without_qa: bool = False
    """Also train on every cached clip that no QA row references (geometry terms only, a fixed prompt and no
    answer). The paper's code trains on the QA samples only (false in the ``paper_*`` recipes)."""
    max_tokens: int = 0
    """Cut a prepared sample's text after the video so the sequence (camera/scale placeholders included) has
    at most this many tokens; the video block is never cut. A sample whose video alone is longer is replaced
    by another item (the same slot of a later epoch's order) and counted in ``metrics.jsonl``
    (``data_skipped``; cut samples: ``data_truncated``). 0 = no limit. Paper script: 16384 (docs/recipe.md)."""
    sampling: dict[str, Any] | None = None
    """Expected frame-sampling config (``geovr.shared.sampling.SamplingConfig`` fields); None = the stores' own,
    which must then agree with each other."""
    workers: int = 2
    """DataLoader worker processes preparing samples (store read, JPEG decode, processor); 0 = in the trainer."""
    verify: str = "all"
    """When shard hashes are checked against each store's ``index.json``: ``all`` = every shard before the model
    loads (verified file versions are cached in ``$GEOVR_CACHE/verified``, so restarts only stat files, or, for
    s3/http stores, ask for each object's size and ETag); ``lazy`` =
    each shard when a sample first reads it. Clip content (dtypes, shapes, finite values, frames) is always
    checked on read."""
    on_bad_clip: str = "stop"
    """A clip that fails a check (tampered shard, wrong dtype/shape, NaN/Inf, undecodable frame): ``stop`` = the
    run stops with the store error (before the first optimizer step for shards checked by ``verify: all``);
    ``skip`` = the clip is never trained on, the next item takes its place, each skip is reported on stderr."""


@dataclass
class OptimConfig:
    """AdamW + linear warmup from 0 + cosine to 0 (the paper's recipe: transformers' cosine schedule)."""

    lr: float = 2e-5
    """Learning rate of the MLLM (LLM + merger)."""
    head_lr: float = 1e-4
    """Learning rate of heads and camera/scale token embeddings."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    warmup_ratio: float = 0.03
    """Warmup steps = ``ceil(warmup_ratio * total steps)``; the learning rate of update ``k`` (0-based) is
    ``lr * k / warmup`` during warmup, so the first update has learning rate 0, then cosine to 0
    (``transformers.get_cosine_schedule_with_warmup``, as the paper's HF Trainer run)."""
    grad_clip: float = 1.0
    """Global gradient-norm clip."""
    global_batch: int = 0
    """Samples per optimizer step over all ranks (paper: 32). A micro-batch is one sample, so each rank
    accumulates ``global_batch / world size`` micro-batches (``--nproc 8`` -> 4); a world size that does
    not divide it is refused. 0 = use ``grad_accum`` as given."""
    grad_accum: int = 1
    """Micro-batches per optimizer step per rank, used when ``global_batch`` is 0."""


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
    epochs: float = 0.0
    """Passes over the training items (paper: 1). > 0: the run has ``ceil(epochs * ceil(items / global batch))``
    optimizer steps (the last step of a pass is filled from the next pass's order), capped by ``max_steps``
    when that is > 0. 0 = the run has ``max_steps`` steps."""
    max_steps: int = 100
    """Optimizer steps when ``epochs`` is 0; a cap on the epoch-derived count otherwise (0 = no cap)."""
    save_every: int = 50
    """Checkpoint every N steps (and at the end)."""
    seed: int = 0
    """Seed of data order and head initialisation."""
    resume: bool = False
    """Continue from the latest checkpoint in ``out_dir/checkpoints``."""
    stop_at: int = 0
    """Leave the loop after this step (a checkpoint is written there), e.g. to fit a job time limit; 0 = never.
    The schedule still spans the run's full step count; continue with ``run.resume=true``."""
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


RENAMED = {
    "data.geometry_only": "data.mix_clips_without_qa (same meaning: also train on clips without QA; "
                          "false in the paper recipes)",
}
"""Keys that no longer exist -> what replaced them (refused with that message)."""


class ConfigError(UsageError):
    """A config file or override names an unknown or renamed key, or has a value that cannot work (exit 2)."""


def _refuse_renamed(d: dict[str, Any], where: str, prefix: str = "") -> None:
    for k, v in d.items():
        if f"{prefix}{k}" in RENAMED:
            raise ConfigError(f"{where}: {prefix}{k} was renamed: use {RENAMED[prefix + k]}")
        if isinstance(v, dict):
            _refuse_renamed(v, where, f"{prefix}{k}.")


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
            raise ConfigError(f"override {o!r} must look like section.key=value")
        k, v = o.split("=", 1)
        try:
            value = yaml.safe_load(v)
        except yaml.YAMLError as exc:
            raise UsageError(f"override {o!r}: value is not valid YAML (quote it)") from exc
        _set(raw, k.strip(), value)
    _refuse_renamed(raw, str(path))
    return config_from_dict(TrainConfig, raw, str(path))


def accumulation(optim: OptimConfig, world: int) -> int:
    """Micro-batches each rank accumulates per optimizer step (one sample per micro-batch)."""
    if optim.global_batch <= 0:
        if optim.grad_accum < 1:
            raise ConfigError(f"optim.grad_accum must be >= 1, got {optim.grad_accum}")
        return optim.grad_accum
    if optim.grad_accum != 1:
        raise ConfigError(f"optim.global_batch={optim.global_batch} and optim.grad_accum={optim.grad_accum} are both "
                          "set: set one (global_batch derives grad_accum from the world size)")
    if optim.global_batch % world:
        raise ConfigError(f"optim.global_batch={optim.global_batch} is not divisible by the world size {world} "
                          "(processes x nodes): use a process count that divides it, or change optim.global_batch")
    return optim.global_batch // world


def total_steps(run: RunConfig, items: int, global_batch: int) -> int:
    """Optimizer steps of the run: from ``run.epochs`` over ``items`` (capped by ``run.max_steps``), or ``run.max_steps``."""
    if run.epochs > 0:
        steps = math.ceil(run.epochs * math.ceil(items / global_batch))
        return min(steps, run.max_steps) if run.max_steps > 0 else steps
    if run.max_steps <= 0:
        raise ConfigError("run.max_steps must be > 0 when run.epochs is 0")
    return run.max_steps


def check_config(cfg: TrainConfig, world: int) -> None:
    """Usage mistakes found before any data or model loads (raises ``ConfigError``)."""
    from geovr.train.heads.depth import DEPTH_HEADS

    accumulation(cfg.optim, world)
    if cfg.run.epochs < 0 or cfg.run.max_steps < 0:
        raise ConfigError("run.epochs and run.max_steps must be >= 0")
    if cfg.run.epochs == 0 and cfg.run.max_steps == 0:
        raise ConfigError("run.max_steps must be > 0 when run.epochs is 0")
    if cfg.data.sampling is not None:
        from geovr.shared.sampling import SamplingConfig

        try:
            SamplingConfig.from_dict(cfg.data.sampling)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"data.sampling: {exc}") from exc
    if Path(cfg.run.out_dir).exists() and not Path(cfg.run.out_dir).is_dir():
        raise ConfigError(f"run.out_dir {cfg.run.out_dir}: exists and is not a folder")
    for name, value, low in (("run.save_every", cfg.run.save_every, 1), ("run.stop_at", cfg.run.stop_at, 0),
                             ("data.workers", cfg.data.workers, 0), ("optim.lr", cfg.optim.lr, 0),
                             ("optim.head_lr", cfg.optim.head_lr, 0), ("optim.weight_decay", cfg.optim.weight_decay, 0),
                             ("optim.warmup_ratio", cfg.optim.warmup_ratio, 0), ("optim.grad_clip", cfg.optim.grad_clip, 0)):
        if value < low:
            raise ConfigError(f"{name} must be >= {low}, got {value}")
    if cfg.deepspeed.zero_stage not in (0, 1, 2, 3) or cfg.deepspeed.precision not in ("auto", "bf16", "fp32"):
        raise ConfigError("deepspeed.zero_stage must be 0-3 and deepspeed.precision auto|bf16|fp32, got "
                          f"{cfg.deepspeed.zero_stage} / {cfg.deepspeed.precision!r}")
    if cfg.data.max_tokens < 0:
        raise ConfigError(f"data.max_tokens must be >= 0 (0 = no limit), got {cfg.data.max_tokens}")
    if cfg.model.depth_head not in DEPTH_HEADS:
        raise ConfigError(f"model.depth_head {cfg.model.depth_head!r} not in {DEPTH_HEADS}")
    from geovr.train.student.tiny import TINY_MODELS

    if cfg.model.model not in TINY_MODELS:  # a local folder must exist; a hub id must be fetchable or cached
        from geovr.shared.modelref import check_model_ref

        check_model_ref(cfg.model.model, "model.model")


def git_revision() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=Path(__file__).parent).stdout.strip() or "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def dump_config(cfg: TrainConfig, path: Path, resolved: dict[str, Any] | None = None) -> None:
    """Write the resolved config plus geovr version and git revision (and ``resolved`` run values, e.g. steps)."""
    from geovr import __version__

    doc = {**dataclasses.asdict(cfg), "_provenance": {"geovr": __version__, "git": git_revision()}}
    if resolved:
        doc["_resolved"] = resolved
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
