"""``geovr shards ...``: store tools (thin; heavy imports inside)."""

import typer

app = typer.Typer(no_args_is_help=True)
