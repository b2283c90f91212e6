"""Typed configs of the ``geovr eval`` commands (their flags are built from them; import-light, no numpy).

Each config's ``validate()`` makes every check that needs no model (names, ranges, user-named
inputs), so a mistake ends in one ``error:`` line before anything loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from geovr.shared.errors import UsageError

SPLITS = ("full", "debiased")
"""``full``: every row; ``debiased``: rows with ``pruned == False`` (VSI-Bench-Debiased)."""
DTYPES = ("auto", "bf16", "fp16", "fp32")
"""Model dtypes."""
ALIGNMENTS = ("none", "median", "lstsq", "affine")
"""Depth alignment modes (``geovr.evaluate.geometry_metrics.DepthAlign``)."""


def _one_of(flag: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise UsageError(f"{flag} {value!r} is not one of: {', '.join(allowed)}")


@dataclass
class VSIBenchConfig:
    """One VSI-Bench evaluation run."""

    bench_dir: str
    """Benchmark folder: test.parquet or test.jsonl plus {dataset}/{scene_name}.mp4 videos."""
    model: str = ""
    """Model folder or hub id (any transformers Qwen-VL, or a geovr export); not needed with --predictions."""
    out_dir: str = "vsibench_out"
    """Output folder for predictions.jsonl and report.json (created once the inputs are checked)."""
    annotations: str = ""
    """Annotation file (default: test.parquet or test.jsonl in the benchmark folder)."""
    split: str = "full"
    """full | debiased (rows with pruned == False)."""
    protocol: str = "official"
    """Protocol preset: official | lmms-eval | geovr-paper (frames, prompts, decoding, scoring; all written to
    report.json)."""
    num_frames: int = 0
    """Frames per video, sampled uniformly (16/32/64/128 in the literature); 0 = the protocol's."""
    seed: int | None = None
    """Seed of sampled decoding (unset = the protocol's)."""
    batch_size: int = 4
    """Questions per generate() call."""
    max_new_tokens: int = 0
    """Generation length limit in tokens (0 = the protocol's)."""
    dtype: str = "auto"
    """auto (bf16 on GPU, fp32 on CPU) | bf16 | fp16 | fp32."""
    attn_implementation: str = "sdpa"
    """transformers attention backend: sdpa | flash_attention_2 | eager."""
    limit: int = 0
    """Evaluate only the first N questions (0 = all)."""
    lenient: bool = False
    """Also report lmms-eval's lenient number parsing (labelled separately)."""

    def __post_init__(self) -> None:
        if self.seed is not None and self.seed < 0:  # -1 meant "the protocol's" before the flag could be unset
            self.seed = None

    def validate(self, predictions: str = "") -> None:
        """Checks before any model loads (``predictions``: score that file instead of running the model)."""
        _one_of("--split", self.split, SPLITS)
        _one_of("--dtype", self.dtype, DTYPES)
        from geovr.evaluate.protocols import resolve

        try:
            resolve(self.protocol, self.num_frames, self.seed, self.max_new_tokens)
        except ValueError as exc:
            raise UsageError(f"--protocol: {exc}") from exc
        for flag, value, low in (("--num-frames", self.num_frames, 0), ("--batch-size", self.batch_size, 1),
                                 ("--max-new-tokens", self.max_new_tokens, 0)):
            if value < low:
                raise UsageError(f"{flag} must be >= {low}, got {value}")
        if self.limit < 0:
            raise UsageError(f"--limit must be >= 0, got {self.limit}")
        root = Path(self.bench_dir)
        if not root.is_dir():
            raise UsageError(f"--bench {root}: no such folder")
        if self.annotations and not Path(self.annotations).is_file():
            raise UsageError(f"--annotations {self.annotations}: no such file")
        if not self.annotations and not any((root / n).is_file() for n in ("test.parquet", "test.jsonl")):
            raise UsageError(f"--bench {root}: no test.parquet or test.jsonl (pass --annotations)")
        if predictions:
            if not Path(predictions).exists():
                raise UsageError(f"--predictions {predictions}: no such file or folder")
            return
        if not self.model:
            raise UsageError("give --model to run inference, or --predictions FILE to score existing answers")
        from geovr.shared.modelref import check_model_ref

        check_model_ref(self.model, "--model")
        if Path(self.model).is_dir() and not (Path(self.model) / "config.json").is_file():
            raise UsageError(f"--model {self.model}: no config.json there (not a transformers model or geovr export)")


@dataclass
class SynthQAConfig:
    """Synthetic VSI-style questions from a synthetic corpus's ground truth."""

    corpus: str
    """Synthetic corpus written by `geovr synth`: its folder or its corpus.parquet."""
    out: str
    """Output benchmark folder (VSI-Bench format: test.jsonl/parquet, videos, train_conversations.jsonl)."""
    seed: int = 0
    """Seed for option order, sampling and the train/test split."""
    test_fraction: float = 0.5
    """Share of each scene's questions held out for test.jsonl; the rest go to train_conversations.jsonl
    (the two sets are disjoint)."""

    def corpus_dir(self) -> Path:
        """The corpus folder (``corpus`` may name the folder or its manifest)."""
        p = Path(self.corpus)
        return p.parent if p.is_file() else p

    def validate(self) -> None:
        if not (self.corpus_dir() / "corpus.parquet").is_file():
            raise UsageError(f"--corpus {self.corpus}: no synthetic corpus (corpus.parquet) there; run `geovr synth`")
        if not 0.0 < self.test_fraction < 1.0:
            raise UsageError(f"--test-fraction must be in (0, 1), got {self.test_fraction}")
        if Path(self.out).exists() and not Path(self.out).is_dir():
            raise UsageError(f"--out {self.out}: exists and is not a folder")


@dataclass
class GeometryConfig:
    """Pose / depth / metric-scale scores of a store or of a trained student's heads against a reference store."""

    ref: str
    """Reference store (e.g. oracle ground truth, or the teacher's targets)."""
    pred: str = ""
    """Target store to score (e.g. another teacher's); give this or --model."""
    model: str = ""
    """Or: a `geovr train` export folder; its heads are read out on the clips of --ref."""
    max_clips: int = 0
    """Score only the first N clips of --ref (--model only; 0 = all)."""
    out: str = "geometry_report.json"
    """Output JSON report file."""
    alignment: str = "median"
    """Depth alignment: none | median | lstsq (scale) | affine (scale and shift)."""
    depth_space: str = "depth"
    """Fit the alignment on depth or disparity (1/depth)."""
    depth_per: str = "clip"
    """One alignment per clip (video depth) or per frame (per-image protocol)."""
    threshold: float = 30.0
    """Pose threshold in degrees for RRA/RTA/AUC."""

    def how(self):  # noqa: ANN201  (DepthAlign; imported lazily)
        """The depth alignment (``geovr.evaluate.geometry_metrics.DepthAlign``)."""
        from geovr.evaluate.geometry_metrics import DepthAlign

        try:
            return DepthAlign(self.alignment, self.depth_space, self.depth_per)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc

    def validate(self) -> None:
        if bool(self.pred) == bool(self.model):
            raise UsageError("give exactly one of --pred STORE or --model EXPORT")
        _one_of("--alignment", self.alignment, ALIGNMENTS)
        self.how()
        for flag, path in (("--ref", self.ref), ("--pred", self.pred), ("--model", self.model)):
            if path and "://" not in path and not Path(path).exists():
                raise UsageError(f"{flag} {path}: no such folder")
        if self.threshold <= 0:
            raise UsageError(f"--threshold must be > 0, got {self.threshold}")
        if self.max_clips < 0:
            raise UsageError(f"--max-clips must be >= 0 (0 = all), got {self.max_clips}")
        if self.model and "://" not in self.model and not (Path(self.model) / "geovr_heads" / "heads.json").is_file():
            raise UsageError(f"--model {self.model}: not a `geovr train` export (no geovr_heads/heads.json)")
        if Path(self.out).is_dir() or not Path(self.out).parent.is_dir():
            raise UsageError(f"--out {self.out}: " + ("is a folder; name a JSON file" if Path(self.out).is_dir() else
                                                      f"folder {Path(self.out).parent} does not exist"))
