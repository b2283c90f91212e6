"""``geovr train``: stage two command (thin; heavy imports inside)."""

import typer


def train() -> None:
    raise typer.Exit("not implemented yet")
