"""``geovr eval ...``: evaluation commands (thin; heavy imports inside)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True)


@app.command("vsibench")
def vsibench(
    bench: Annotated[Path, typer.Option(help="Benchmark folder: test.parquet/test.jsonl + {dataset}/{scene}.mp4.")],
    model: Annotated[str, typer.Option(help="Model folder or hub id (any transformers Qwen-VL / geovr export).")] = "",
    out: Annotated[Path, typer.Option(help="Output folder for predictions.jsonl and report.json.")] = Path(
        "vsibench_out"
    ),
    predictions: Annotated[str, typer.Option(help="Score these answers instead: a JSONL of {id, prediction}, or "
                                                  "lmms-eval's vsibench sample log (--log_samples; file or folder).")] = "",
    annotations: Annotated[str, typer.Option(help="Annotation file (default: test.parquet/jsonl in --bench).")] = "",
    split: Annotated[str, typer.Option(help="full | debiased (rows with pruned == False).")] = "full",
    protocol: Annotated[str, typer.Option(help="Protocol preset: official | lmms-eval | geovr-paper (frames, "
                                               "prompts, decoding, scoring; all written to report.json).")] = "official",
    frames: Annotated[int, typer.Option(help="Frames sampled uniformly per video (0 = the protocol's).")] = 0,
    seed: Annotated[int, typer.Option(help="Seed of sampled decoding (-1 = the protocol's).")] = -1,
    max_new_tokens: Annotated[int, typer.Option(help="Generation length limit (0 = the protocol's).")] = 0,
    batch_size: Annotated[int, typer.Option(help="Questions per generate() call.")] = 4,
    dtype: Annotated[str, typer.Option(help="auto | bf16 | fp16 | fp32.")] = "auto",
    attn: Annotated[str, typer.Option(help="Attention implementation.")] = "sdpa",
    limit: Annotated[int, typer.Option(help="Only the first N questions (0 = all).")] = 0,
    lenient: Annotated[bool, typer.Option(help="Also report lmms-eval's lenient number parsing.")] = False,
) -> None:
    """Answer and score VSI-Bench-format questions (resumable; writes a table and report.json)."""
    from geovr.evaluate.protocols import resolve
    from geovr.evaluate.vsibench import VSIBenchConfig, run

    try:
        resolve(protocol, frames, None if seed < 0 else seed, max_new_tokens)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    cfg = VSIBenchConfig(
        bench_dir=str(bench), model=model, out_dir=str(out), annotations=annotations, split=split,
        protocol=protocol, num_frames=frames, seed=None if seed < 0 else seed, max_new_tokens=max_new_tokens,
        batch_size=batch_size, dtype=dtype,
        attn_implementation=attn, limit=limit, lenient=lenient,
    )
    run(cfg, predictions=predictions)


@app.command("synth-qa")
def synth_qa(
    corpus: Annotated[Path, typer.Option(help="Synthetic corpus folder written by `geovr synth`.")],
    out: Annotated[Path, typer.Option(help="Output benchmark folder (VSI-Bench format).")],
    seed: Annotated[int, typer.Option(help="Seed for option order and sampling.")] = 0,
) -> None:
    """Generate VSI-style spatial questions from the synthetic corpus's ground truth."""
    from geovr.evaluate.synth_qa import generate

    path = generate(corpus, out, seed)
    typer.echo(f"wrote {path}")


@app.command("geometry")
def geometry(
    ref: Annotated[Path, typer.Option(help="Reference store (e.g. oracle ground truth, or the teacher's targets).")],
    pred: Annotated[Path, typer.Option(help="Target store to score (e.g. another teacher's).")] = None,  # type: ignore[assignment]
    model: Annotated[Path, typer.Option(help="Or: a `geovr train` export folder; its heads are read out on "
                                              "the clips of --ref.")] = None,  # type: ignore[assignment]
    max_clips: Annotated[int, typer.Option(help="Score only the first N clips of --ref (--model only; 0 = all).")] = 0,
    out: Annotated[Path, typer.Option(help="JSON report path.")] = Path("geometry_report.json"),
    alignment: Annotated[str, typer.Option(help="Depth alignment: none | median | lstsq (scale) | affine "
                                                "(scale and shift).")] = "median",
    depth_space: Annotated[str, typer.Option(help="Fit the alignment on depth or disparity (1/depth).")] = "depth",
    depth_per: Annotated[str, typer.Option(help="One alignment per clip (video depth) or per frame "
                                                "(per-image protocol).")] = "clip",
    threshold: Annotated[float, typer.Option(help="Pose threshold in degrees for RRA/RTA/AUC.")] = 30.0,
) -> None:
    """Pose RRA/RTA/AUC, depth AbsRel/delta1 and metric-scale error of a store (--pred) or of a
    trained student's heads (--model) against a reference store (VGGT's pose protocol: pose
    metrics pooled over all frame pairs; per-clip means as <key>_clip_mean)."""
    from geovr.evaluate.geometry_eval import compare_stores, write_report
    from geovr.evaluate.geometry_metrics import DepthAlign

    if (pred is None) == (model is None):
        raise typer.BadParameter("give exactly one of --pred STORE or --model EXPORT")
    try:
        how = DepthAlign(alignment, depth_space, depth_per)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    if model is not None:
        from geovr.evaluate.student_readout import readout_metrics

        report = readout_metrics(str(model), str(ref), how, threshold, max_clips or None)
    else:
        report = compare_stores(str(pred), str(ref), how, threshold)
    write_report(report, out)
    for k, v in report["mean"].items():
        typer.echo(f"{k:<14} {v:.4f}")
