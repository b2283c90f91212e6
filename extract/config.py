"""``ExtractConfig``: the one typed config of ``geovr extract`` (its flags are built from it).

Import-light (no numpy, no torch): ``geovr --help`` builds the command's flags from these fields.
Defaults live here only; the teacher's default layers and feature widths come from its registry
entry (``geovr.extract.teachers.REGISTRY``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geovr.shared.errors import UsageError
from geovr.shared.sampling import SamplingConfig

PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"dtype": "bf16", "depth_downsample": 1, "pca_dims": None},
    "compact": {"dtype": "int8", "depth_downsample": 2, "pca_dims": None},
    "compact-pca": {"dtype": "int8", "depth_downsample": 2, "pca_dims": 256},
}
"""Storage presets: ``paper`` is the exact recipe (bf16 features, full-resolution depth);
``compact`` int8 features + half-resolution depth; ``compact-pca`` additionally keeps each
clip's top-256 principal directions per layer (see ``geovr.shared.features``)."""
SCALE_FROM = ("auto", "ground_truth", "metric_teacher", "none")
"""Allowed ``ExtractConfig.scale_from`` values."""
FORMATS = ("zarr", "wds")
"""Store formats."""
CHANNELS = ("frame", "global", "both")
"""Allowed ``ExtractConfig.channels`` values."""
SHARD_WRITERS = ("process", "thread")
"""Where the extraction job writes shards (``ExtractConfig.shard_writer``; see ``geovr.extract.shardwriter``)."""


@dataclass
class ExtractConfig:
    """One extraction job."""

    corpus: str
    """Corpus manifest (.parquet or .jsonl; columns in docs/architecture.md)."""
    out: str
    """Target store folder (created, or resumed if it exists with the same header)."""
    teacher: str = "vggt"
    """Teacher registry name: vggt | oracle | da3 (Depth Anything 3, optional package)."""
    weights: str = ""
    """Teacher weights: VGGT .pt/.safetensors file or hub id (owner/name[:file]); DA3 folder or hub id (e.g.
    depth-anything/DA3-LARGE)."""
    random_init: bool = False
    """Run the teacher (vggt, da3) with seeded random weights instead of --weights (tests, demos; recorded in the
    store header)."""
    vggt_config: str = "vggt_1b"
    """VGGT architecture preset: vggt_1b | tiny."""
    device: str = ""
    """Teacher and metric-depth device (empty: cuda if available, else cpu)."""
    teacher_kwargs: dict[str, Any] = field(default_factory=dict)
    """Further keyword arguments of the teacher factory (YAML --config only)."""
    format: str = "zarr"
    """Store format: zarr | wds."""
    preset: str = "paper"
    """Storage preset: paper | compact | compact-pca."""
    layers: tuple[int, ...] | None = None
    """Teacher layers whose features are cached (None = the teacher registry entry's; YAML --config only)."""
    channels: str = "frame"
    """Channel half of VGGT's cat(frame, global) tokens: frame (paper) | global | both."""
    pool: int = 2
    """Average pooling of the feature grid (2 = 2x2, the paper's)."""
    pca_dims: int | None = None
    """Override the preset's PCA channels (unset = the preset's; 0 = no PCA)."""
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    """Frame-sampling contract (shared with stage two)."""
    metric_depth: str = ""
    """Metric depth model for the scale of clips without ground truth: da3:depth-anything/DA3METRIC-LARGE (the
    paper's; needs the depth-anything-3 package) or a transformers folder / hub id, e.g.
    depth-anything/Depth-Anything-V2-Metric-Indoor-Large-hf; empty = none (those clips get scale_source none)."""
    scale_from: str = "auto"
    """Scale source: auto (teacher's own > ground truth > metric model > none) | ground_truth | metric_teacher
    | none."""
    clips_per_shard: int = 16
    """Clips per shard (a shard is written whole, atomically)."""
    workers: int = 2
    """Decoding workers (DataLoader processes; 0 = decode in the main process)."""
    shard_writer: str = "process"
    """Where targets are encoded and shards written while the teacher runs: process (a forked child: its work
    does not share the teacher's GIL) | thread (in the job's process; the fallback where fork is missing)."""
    jpeg_quality: int = 95
    """Quality of the cached JPEG frames."""
    rank: int | None = None
    """This process's rank (unset: RANK / SLURM_PROCID / 0)."""
    world_size: int | None = None
    """Number of extraction processes (unset: WORLD_SIZE / SLURM_NTASKS / 1)."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        if isinstance(self.sampling, dict):
            self.sampling = SamplingConfig(**self.sampling)

    def teacher_layers(self) -> tuple[int, ...]:
        """The layers to cache: this config's, else the teacher registry entry's."""
        from geovr.extract.teachers import teacher_entry

        return tuple(self.layers) if self.layers else teacher_entry(self.teacher).layers

    def teacher_options(self) -> dict[str, Any]:
        """Keyword arguments of the teacher factory (factories ignore the ones they do not take)."""
        opts = {"weights": self.weights or None, "device": self.device or None, "layers": self.teacher_layers(),
                "random_init": self.random_init}
        if self.teacher == "vggt":
            opts["config"] = self.vggt_config
        return {**opts, **self.teacher_kwargs}

    def feature_dim(self) -> int:
        """Stored feature channels, from the teacher registry entry (for the storage plan)."""
        from geovr.extract.teachers import teacher_entry

        dims = teacher_entry(self.teacher).feature_dims
        if self.teacher_kwargs.get("feature_dim"):
            return int(self.teacher_kwargs["feature_dim"])
        key = self.vggt_config if self.vggt_config in dims else ""
        if key not in dims:
            raise UsageError(f"unknown {self.teacher} architecture {self.vggt_config!r}; known: {sorted(dims)}")
        return dims[key] * (2 if self.channels == "both" else 1)

    def validate(self, inputs: bool = True) -> None:
        """Every check that needs no model: names, ranges and (``inputs``) the user-named files.

        Raises ``UsageError`` (exit 2) or ``EnvironmentProblem`` (exit 3, a hub id while offline).
        """
        from geovr.extract.teachers import teacher_entry

        entry = teacher_entry(self.teacher)
        if inputs and not Path(self.corpus).is_file():  # the first thing a user names: report it first
            raise UsageError(f"{self.corpus}: corpus manifest not found")
        if inputs and "://" not in self.out and Path(self.out).exists() and not Path(self.out).is_dir():
            raise UsageError(f"--out {self.out}: exists and is not a folder")
        weights = self.weights or self.teacher_kwargs.get("weights")
        random_init = self.random_init or bool(self.teacher_kwargs.get("random_init"))
        if entry.needs_weights and inputs and bool(weights) == random_init:
            raise UsageError("--weights and --random-init exclude each other" if weights else
                             f"--teacher {self.teacher} needs --weights (a checkpoint file, folder or hub id); pass "
                             "--random-init to run an untrained teacher on purpose")
        for name, value, allowed in (("--format", self.format, FORMATS), ("--preset", self.preset, tuple(PRESETS)),
                                     ("--scale-from", self.scale_from, SCALE_FROM),
                                     ("--channels", self.channels, CHANNELS),
                                     ("--shard-writer", self.shard_writer, SHARD_WRITERS)):
            if value not in allowed:
                raise UsageError(f"{name} {value!r} is not one of: {', '.join(allowed)}")
        if self.scale_from == "metric_teacher" and not self.metric_depth:
            raise UsageError("--scale-from metric_teacher needs a metric depth model (--metric-depth)")
        if self.teacher == "vggt":
            self.feature_dim()  # a known architecture preset
        for name, value, low in (("--pool", self.pool, 1), ("--clips-per-shard", self.clips_per_shard, 1),
                                 ("--workers", self.workers, 0), ("--jpeg-quality", self.jpeg_quality, 1)):
            if value < low:
                raise UsageError(f"{name} must be >= {low}, got {value}")
        if self.jpeg_quality > 100:
            raise UsageError(f"--jpeg-quality must be <= 100, got {self.jpeg_quality}")
        if not inputs:
            return
        from geovr.shared.modelref import check_model_ref

        if self.weights:
            check_model_ref(self.weights, "--weights", "model.safetensors")
        if self.metric_depth:
            check_model_ref(self.metric_depth.removeprefix("da3:"), "--metric-depth")
