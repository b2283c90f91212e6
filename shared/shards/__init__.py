"""Library side of ``geovr shards`` (one module per verb; the typer layer is ``geovr.shared.cli``)."""
