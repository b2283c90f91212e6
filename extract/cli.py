"""``geovr extract``: stage one command (thin; heavy imports inside)."""

import typer


def extract() -> None:
    raise typer.Exit("not implemented yet")
