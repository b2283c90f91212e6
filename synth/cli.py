"""``geovr synth``: the synthetic corpus command (thin; heavy imports inside)."""

from pathlib import Path
from typing import Annotated

import typer


def synth(
    out: Annotated[Path, typer.Option(help="Output corpus directory.")],
    clips: Annotated[int, typer.Option(help="Number of clips (scenes) to render.")] = 4,
    seed: Annotated[int, typer.Option(help="Master seed; the corpus is a pure function of it.")] = 0,
) -> None:
    raise typer.Exit("not implemented yet")
