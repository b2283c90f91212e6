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
