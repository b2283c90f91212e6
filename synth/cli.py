"""``geovr synth``: the synthetic corpus command (thin; heavy imports inside)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def synth(
    out: Annotated[Path, typer.Option(help="Output corpus directory.")],
    clips: Annotated[int, typer.Option(help="Number of clips (scenes) to render.")] = 4,
    seed: Annotated[int, typer.Option(help="Master seed; the corpus is a pure function of it.")] = 0,
    frames: Annotated[int, typer.Option(help="Frames per clip.")] = 32,
    fps: Annotated[int, typer.Option(help="Frame rate of the mp4 files.")] = 8,
    height: Annotated[int, typer.Option(help="Frame height in pixels (even).")] = 168,
    width: Annotated[int, typer.Option(help="Frame width in pixels (even).")] = 224,
    overwrite: Annotated[bool, typer.Option(help="Allow writing into a non-empty output directory.")] = False,
) -> None:
    if out.exists() and not out.is_dir():
        raise typer.BadParameter(f"{out} exists and is not a directory", param_hint="--out")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise typer.BadParameter(f"{out} is not empty (pass --overwrite to write into it)", param_hint="--out")
    from geovr.synth import SynthConfig, render_corpus

    cfg = SynthConfig(clips=clips, seed=seed, frames=frames, fps=fps, height=height, width=width)
    try:
        cfg.validate()
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    manifest = render_corpus(out, cfg)
    typer.echo(f"wrote {clips} clips; manifest {manifest}")
