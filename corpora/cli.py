"""``geovr corpus ...``: bring real data in (thin; heavy imports inside each command).

Exit codes: 0 everything in; 1 done, but some videos / rows / frames were left out (listed);
2 bad usage or unreadable input (one ``error: ...`` line, nothing written).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True)


def _fail(e: Exception) -> None:
    typer.secho(f"error: {e}", err=True, fg="red")
    raise typer.Exit(2)


@app.command("from-instructions")
def from_instructions(
    instructions: Annotated[list[Path], typer.Argument(help="Instruction files: JSON Lines (VSI-590K) or a JSON "
                                                            "array (VLM-3R), detected from the content.")],
    video_root: Annotated[Path, typer.Option(help="Folder the rows' relative video paths resolve against.")],
    out: Annotated[Path, typer.Option(help="Output folder: corpus.jsonl, instructions/*.jsonl, "
                                           "missing_videos.tsv, summary.json.")],
    gt_root: Annotated[Path, typer.Option(help="Ground-truth root (from `geovr corpus import-*`): "
                                               "<gt-root>/<video path without suffix>/ becomes the clip's gt_dir.")
                       ] = None,  # type: ignore[assignment]
    fps: Annotated[float, typer.Option(help="Sampling rate `geovr extract` will use (frames/s).")] = 2.0,
    min_frames: Annotated[int, typer.Option(help="Fewest frames per clip (shorter videos are left out).")] = 4,
    max_frames: Annotated[int, typer.Option(help="Most frames per clip.")] = 32,
    preset: Annotated[str, typer.Option(help="Storage preset of the estimate: paper | compact | compact-pca.")
                      ] = "paper",
    probe: Annotated[bool, typer.Option(help="Probe every video with PyAV (durations, readability, the estimate).")
                     ] = True,
    workers: Annotated[int, typer.Option(help="Threads probing videos.")] = 4,
) -> None:
    """Instruction files + a video root -> a corpus manifest with one row per unique clip, and the instruction
    files rewritten with those clip ids (so `geovr train` joins them exactly). Missing videos are listed and left out.
    """
    from geovr.corpora.from_instructions import CorpusFromInstructions, format_summary, run
    from geovr.corpora.instructions import InstructionError
    from geovr.extract.runner import PRESETS
    from geovr.shared.sampling import SamplingConfig

    if preset not in PRESETS:
        _fail(ValueError(f"unknown preset {preset!r}; known: {sorted(PRESETS)}"))
    if out.exists() and not out.is_dir():
        _fail(ValueError(f"--out {out}: exists and is not a folder"))
    try:
        sampling = SamplingConfig(fps=fps, min_frames=min_frames, max_frames=max_frames)
        rep = run(CorpusFromInstructions(instructions=list(instructions), video_root=video_root, out=out,
                                         gt_root=gt_root, sampling=sampling, probe=probe, workers=workers))
    except (InstructionError, ValueError, OSError) as e:
        _fail(e)
        return
    typer.echo(format_summary(rep))
    if probe and rep.clips:
        from geovr.extract.plan import plan

        p = PRESETS[preset]
        typer.echo(f"storage estimate (`geovr extract --plan`, VGGT-1B, preset {preset}):")
        typer.echo(plan(str(rep.manifest), sampling, 1024, 4, 2, p["dtype"], p["depth_downsample"], p["pca_dims"]))
    raise typer.Exit(1 if rep.left_out or rep.bad_rows else 0)


def _check_sources(paths: list[Path], what: str) -> None:
    """A named source that is not a folder is a usage mistake (exit 2), found before anything is imported."""
    for p in paths:
        if not p.is_dir():
            _fail(ValueError(f"{p}: no such {what} folder"))


def _report_imports(results: list, failures: list[tuple[Path, str]], out: Path) -> None:
    for r in results:
        state = "already imported" if r.skipped else "imported"
        typer.echo(f"{state} {r.video.relative_to(out)} -> {r.clip_id}: {r.frames} frames at {r.fps:g} fps, "
                   f"gt {r.gt_dir.relative_to(out)}, {len(r.dropped)} source frames dropped")
        reasons: dict[str, int] = {}
        for _, why in r.dropped:
            reasons[why] = reasons.get(why, 0) + 1
        for why, n in sorted(reasons.items()):
            typer.echo(f"  dropped {n}: {why} (all listed in {r.gt_dir.relative_to(out)}/import.json)")
    for path, why in failures:
        typer.secho(f"FAILED {path}: {why}", err=True, fg="red")
    if results:
        typer.echo(f"manifest: {out / 'corpus.jsonl'}")
    raise typer.Exit(1 if failures else 0)


@app.command("import-scannet")
def import_scannet_cmd(
    scenes: Annotated[list[Path], typer.Argument(help="Scene folders exported by ScanNet's SensReader "
                                                      "(color/, depth/, pose/, intrinsic/); folder name = scene id.")],
    out: Annotated[Path, typer.Option(help="Output root: videos/scannet/<scene>.mp4, gt/scannet/<scene>/, "
                                           "corpus.jsonl.")],
    width: Annotated[int, typer.Option(help="Width of the written frames (colour resized, depth registered).")] = 640,
    every: Annotated[int, typer.Option(help="Keep source frames whose number is a multiple of this.")] = 1,
    fps: Annotated[float, typer.Option(help="Capture rate of the source frames (ScanNet: 30).")] = 30.0,
    overwrite: Annotated[bool, typer.Option(help="Re-import scenes already imported.")] = False,
) -> None:
    """Import ScanNet scenes (colour, depth in mm, camera-to-world poses, intrinsics) as clips with ground truth."""
    from geovr.corpora.scannet import import_scannet

    _check_sources(scenes, "scene")
    if every < 1 or width < 1:
        _fail(ValueError(f"--every and --width must be >= 1, got {every} and {width}"))
    results, failures = [], []
    for s in scenes:
        try:
            results.append(import_scannet(s, out, width=width, every=every, fps=fps, overwrite=overwrite))
        except (ValueError, OSError) as e:
            failures.append((s, str(e)))
    _report_imports(results, failures, out)


@app.command("import-arkitscenes")
def import_arkitscenes_cmd(
    videos: Annotated[list[Path], typer.Argument(help="ARKitScenes video folders (<video_id>/ or <video_id>_frames/ "
                                                      "with lowres_wide, lowres_depth, lowres_wide_intrinsics, "
                                                      "lowres_wide.traj).")],
    out: Annotated[Path, typer.Option(help="Output root: videos/arkitscenes/<video_id>.mp4, gt/arkitscenes/<video_id>/, "
                                           "corpus.jsonl.")],
    width: Annotated[int, typer.Option(help="Width of the written frames (0 = the source's, 256).")] = 0,
    every: Annotated[int, typer.Option(help="Keep every n-th frame.")] = 1,
    max_dt: Annotated[float, typer.Option(help="Largest frame-to-trajectory timestamp gap (s).")] = 0.005,
    min_confidence: Annotated[int, typer.Option(help="Zero depth whose confidence/ value is below this (0-2; "
                                                     "-1 = keep all).")] = -1,
    overwrite: Annotated[bool, typer.Option(help="Re-import videos already imported.")] = False,
) -> None:
    """Import ARKitScenes low-resolution frames (RGB, LiDAR depth in mm, .traj poses, .pincam intrinsics)."""
    from geovr.corpora.arkitscenes import import_arkitscenes

    _check_sources(videos, "video")
    if every < 1 or width < 0:
        _fail(ValueError(f"--every must be >= 1 and --width >= 0, got {every} and {width}"))
    results, failures = [], []
    for v in videos:
        try:
            results.append(import_arkitscenes(v, out, width=width or None, every=every, max_dt=max_dt,
                                              min_confidence=None if min_confidence < 0 else min_confidence,
                                              overwrite=overwrite))
        except (ValueError, OSError) as e:
            failures.append((v, str(e)))
    _report_imports(results, failures, out)
