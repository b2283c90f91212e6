"""``geovr eval ...``: evaluation commands, their flags built from ``geovr.evaluate.config`` (thin; heavy
imports inside)."""

from __future__ import annotations

import inspect
import math
from typing import Any

import typer

from geovr.evaluate.config import GeometryConfig, SynthQAConfig, VSIBenchConfig
from geovr.shared.cliconfig import config_command, config_from_dict

app = typer.Typer(no_args_is_help=True)


def _vsibench(raw: dict[str, Any], predictions: str = "") -> None:
    """Answer and score VSI-Bench-format questions (resumable; writes a table and report.json)."""
    from geovr.evaluate.vsibench import run

    cfg: VSIBenchConfig = config_from_dict(VSIBenchConfig, raw, "eval vsibench")
    cfg.validate(predictions)
    run(cfg, predictions=predictions)


def _synth_qa(raw: dict[str, Any]) -> None:
    """Generate VSI-style spatial questions from the synthetic corpus's ground truth (disjoint train/test)."""
    cfg: SynthQAConfig = config_from_dict(SynthQAConfig, raw, "eval synth-qa")
    cfg.validate()
    from geovr.evaluate.synth_qa import generate

    path = generate(cfg.corpus_dir(), cfg.out, cfg.seed, cfg.test_fraction)
    typer.echo(f"wrote {path} (test questions) and {path.parent / 'train_conversations.jsonl'} (training questions)")


def _geometry(raw: dict[str, Any]) -> None:
    """Pose RRA/RTA/AUC, depth AbsRel/delta1 and metric-scale error of a store (--pred) or of a
    trained student's heads (--model) against a reference store (VGGT's pose protocol: pose
    metrics pooled over all frame pairs; per-clip means as <key>_clip_mean)."""
    cfg: GeometryConfig = config_from_dict(GeometryConfig, raw, "eval geometry")
    cfg.validate()
    from geovr.evaluate.geometry_eval import compare_stores, write_report

    if cfg.model:
        from geovr.evaluate.student_readout import readout_metrics

        report = readout_metrics(cfg.model, cfg.ref, cfg.how(), cfg.threshold, cfg.max_clips or None)
    else:
        report = compare_stores(cfg.pred, cfg.ref, cfg.how(), cfg.threshold)
    write_report(report, cfg.out)
    for k, v in report["mean"].items():
        typer.echo(f"{k:<14} {f'{v:.4f}' if v is not None and math.isfinite(v) else 'n/a'}")
    typer.echo(f"wrote {cfg.out}")


app.command("vsibench")(config_command(
    VSIBenchConfig, _vsibench,
    rename={"bench_dir": "--bench", "out_dir": "--out", "num_frames": ("--num-frames", "--frames"),
            "attn_implementation": "--attn"},
    extra=[inspect.Parameter("predictions", inspect.Parameter.KEYWORD_ONLY, annotation=str, default=typer.Option(
        "", "--predictions", help="Score these answers instead of running a model: a JSONL of {id, prediction}, "
        "or lmms-eval's vsibench sample log (--log_samples; file or folder)."))],
))
app.command("synth-qa")(config_command(SynthQAConfig, _synth_qa))
app.command("geometry")(config_command(GeometryConfig, _geometry))
