"""``geovr extract``: stage one command (thin; heavy imports inside)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def extract(
    out: Annotated[Path, typer.Option(help="Target store folder (resumed if it exists).")],
    corpus: Annotated[Path, typer.Option(help="Corpus manifest (.parquet/.jsonl).")] = None,  # type: ignore[assignment]
    teacher: Annotated[str, typer.Option(help="Teacher: vggt | oracle | da3 (Depth Anything 3, optional package).")] = "vggt",
    weights: Annotated[str, typer.Option(help="Teacher weights: VGGT .pt/.safetensors or hub id; DA3 folder or hub "
                                         "id (e.g. depth-anything/DA3-LARGE).")] = "",
    random_init: Annotated[bool, typer.Option("--random-init", help="Run the teacher (vggt, da3) with seeded random "
                                              "weights (tests, demos; recorded in the store header).")] = False,
    vggt_config: Annotated[str, typer.Option(help="VGGT architecture preset: vggt_1b | tiny.")] = "vggt_1b",
    metric_depth: Annotated[str, typer.Option(help="Metric depth model for the scale of clips without ground truth: "
                                                    "da3:depth-anything/DA3METRIC-LARGE (the paper's; needs the "
                                                    "depth-anything-3 package) or a transformers folder / hub id, "
                                                    "e.g. depth-anything/Depth-Anything-V2-Metric-Indoor-Large-hf.")] = "",
    scale_from: Annotated[str, typer.Option(help="Scale source: auto | ground_truth | metric_teacher | none.")] = "auto",
    fmt: Annotated[str, typer.Option("--format", help="Store format: zarr | wds.")] = "zarr",
    preset: Annotated[str, typer.Option(help="Storage preset: paper | compact | compact-pca.")] = "paper",
    fps: Annotated[float, typer.Option(help="Sampling rate (frames/s).")] = 2.0,
    num_frames: Annotated[int, typer.Option(help="Fixed frames per clip (overrides --fps).")] = 0,
    min_frames: Annotated[int, typer.Option(help="Fewest frames per clip.")] = 4,
    max_frames: Annotated[int, typer.Option(help="Most frames per clip.")] = 32,
    index_rule: Annotated[str, typer.Option(help="Which frames: uniform (bin centres) | linspace (the Qwen3-VL "
                                                  "processor's, the paper's).")] = "uniform",
    even: Annotated[bool, typer.Option("--even/--no-even", help="Round the frame count down to even.")] = True,
    longest_edge: Annotated[int, typer.Option(help="Teacher input longest edge (px); 0 = the mode's default "
                                                    "(504 stretch/center_crop, 518 vggt_crop).")] = 0,
    teacher_mode: Annotated[str, typer.Option(help="Teacher input from the student frames: stretch (paper) | "
                                                    "center_crop | vggt_crop.")] = "stretch",
    student_tokens: Annotated[int, typer.Option(help="Student pixel budget: merged tokens per frame at "
                                                      "--max-frames frames (paper: 300).")] = 300,
    student_patch: Annotated[int, typer.Option(help="Student merged patch in px: 32 Qwen3-VL, 28 Qwen2.5-VL.")] = 32,
    student_budget: Annotated[str, typer.Option(help="clip: budget shared by the clip's frames (Qwen3-VL) | "
                                                      "frame: per frame (Qwen2.5-VL).")] = "clip",
    clips_per_shard: Annotated[int, typer.Option(help="Clips per shard.")] = 16,
    workers: Annotated[int, typer.Option(help="Decoding workers.")] = 2,
    device: Annotated[str, typer.Option(help="Teacher device (default: cuda if available).")] = "",
    rank: Annotated[int, typer.Option(help="This rank (default: RANK / SLURM_PROCID / 0).")] = None,  # type: ignore[assignment]
    world_size: Annotated[int, typer.Option(help="Ranks (default: WORLD_SIZE / SLURM_NTASKS / 1).")] = None,  # type: ignore[assignment]
    plan_only: Annotated[bool, typer.Option("--plan", help="Print the storage estimate and exit.")] = False,
    finalize: Annotated[bool, typer.Option("--finalize", help="Only merge all ranks' shards into index.json.")] = False,
) -> None:
    """Run the teacher once over a video corpus and cache its targets in a sharded store.

    Exit codes: 0 all clips stored; 1 some clips failed (listed, recorded in clips.parquet); 2 bad usage
    (flags, corpus manifest, another job already writing this rank into --out); 3 environment (disk full,
    missing package, hub unreachable; finished shards are kept, rerun to resume); 4 the output folder holds
    an incompatible or damaged store.
    """
    if finalize:
        from geovr.shared.stores import finalize_store

        m = finalize_store(out)
        typer.echo(f"finalized {out}: {m.num_clips} clips, {m.num_failed} failed, {len(m.shards)} shards")
        raise typer.Exit(0)
    if corpus is None:
        raise typer.BadParameter("--corpus is required (unless --finalize)")
    if teacher in ("vggt", "da3") and not plan_only and bool(weights) == random_init:
        msg = ("--weights and --random-init exclude each other" if weights else
               f"--teacher {teacher} needs --weights (a checkpoint file, folder or hub id); pass --random-init "
               "to run an untrained teacher on purpose")
        typer.echo(f"error: {msg}", err=True)
        raise typer.Exit(2)
    from geovr.extract.runner import PRESETS, ExtractConfig, rank_from_env, run_extract, summary
    from geovr.shared.sampling import SamplingConfig

    try:
        sampling = SamplingConfig(fps=fps, num_frames=num_frames, min_frames=min_frames, max_frames=max_frames,
                                  index_rule=index_rule, even=even, longest_edge=longest_edge, teacher_mode=teacher_mode, student_tokens=student_tokens,
                                  student_patch=student_patch, student_budget=student_budget)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if plan_only:
        from geovr.extract.plan import plan

        channels = 1024 if (teacher == "vggt" and vggt_config == "vggt_1b") else 64
        if preset not in PRESETS:
            raise typer.BadParameter(f"unknown preset {preset!r}; known: {sorted(PRESETS)}")
        typer.echo(plan(str(corpus), sampling, channels, 4, 2, PRESETS[preset]["dtype"],
                        PRESETS[preset]["depth_downsample"], PRESETS[preset]["pca_dims"]))
        raise typer.Exit(0)
    r, w = rank_from_env(rank, world_size)
    kwargs: dict = {}
    if teacher in ("vggt", "da3"):
        kwargs = {"weights": weights or None, "random_init": random_init}
        if teacher == "vggt":
            kwargs["config"] = vggt_config
        if device:
            kwargs["device"] = device
    cfg = ExtractConfig(corpus=str(corpus), out=str(out), teacher=teacher, teacher_kwargs=kwargs, format=fmt,
                        preset=preset, sampling=sampling, metric_depth=metric_depth, scale_from=scale_from,
                        clips_per_shard=clips_per_shard, workers=workers, rank=r, world_size=w)
    result = run_extract(cfg)
    typer.echo(summary(result))
    if w == 1:
        from geovr.shared.stores import finalize_store

        m = finalize_store(out)
        typer.echo(f"store {out}: {m.num_clips} clips stored, {m.num_failed} failed overall")
    else:
        typer.echo(f"rank {r}/{w} done; run `geovr extract --finalize --out {out}` after all ranks finish")
    raise typer.Exit(1 if result.failed else 0)
