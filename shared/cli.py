"""``geovr shards ...``: store tools (thin; heavy imports inside each command)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True)


def _fail(e: Exception) -> None:
    typer.secho(f"error: {e}", err=True, fg="red")
    raise typer.Exit(2)


@app.command("info")
def info(store: Annotated[str, typer.Argument(help="Store folder or URL (memory://, s3://, gs://, https://).")]) -> None:
    """Summary of a finalised store: format, teacher, clips ok/failed, shards, bytes, targets."""
    from geovr.shared.safety import StoreError
    from geovr.shared.shards.info import format_summary, store_summary

    try:
        typer.echo(format_summary(store_summary(store)))
    except StoreError as e:
        _fail(e)


@app.command("verify")
def verify(
    store: Annotated[str, typer.Argument(help="Store folder or URL.")],
    no_hash: Annotated[bool, typer.Option("--no-hash", help="Only check presence and sizes (fast).")] = False,
) -> None:
    """Recompute hashes and counts; list missing, truncated, corrupted and unknown files. Exit 1 on any problem."""
    from geovr.shared.stores.verify import verify_store

    problems = verify_store(store, hashes=not no_hash)
    for p in problems:
        typer.echo(f"PROBLEM {p}")
    if problems:
        typer.secho(f"{len(problems)} problem(s) in {store}", err=True, fg="red")
        raise typer.Exit(1)
    typer.echo(f"OK {store}")


def _transfer(src: str, dst: str) -> None:
    from geovr.shared.safety import StoreError
    from geovr.shared.shards.transfer import transfer_store

    try:
        rep = transfer_store(src, dst)
    except (StoreError, OSError) as e:
        _fail(e)
        return
    typer.echo(f"{len(rep.copied)} file(s) copied ({rep.bytes_copied} bytes), {len(rep.skipped)} already present")


@app.command("publish")
def publish(
    store: Annotated[str, typer.Argument(help="Local finalised store.")],
    url: Annotated[str, typer.Argument(help="Destination URL (s3://, gs://, memory://, or a folder).")],
) -> None:
    """Upload a store: resumable, hash-checked, index.json last."""
    _transfer(store, url)


@app.command("pull")
def pull(
    url: Annotated[str, typer.Argument(help="Source store URL.")],
    dest: Annotated[str, typer.Argument(help="Local destination folder.")],
) -> None:
    """Download a store: every name and hash checked, copied into a temporary sibling folder, verified, then
    renamed onto DEST (absent or empty; a folder holding another store is refused). Resumable."""
    _transfer(url, dest)


@app.command("merge")
def merge(
    out: Annotated[str, typer.Argument(help="New output store folder (must be empty or absent).")],
    stores: Annotated[list[str], typer.Argument(help="Finalised input stores.")],
) -> None:
    """Combine stores from several runs/ranks; refuses incompatible headers or duplicate clips."""
    from geovr.shared.safety import StoreError
    from geovr.shared.shards.merge import merge_stores

    try:
        m = merge_stores(out, stores)
    except (StoreError, ValueError) as e:
        _fail(e)
        return
    typer.echo(f"merged {len(stores)} store(s) into {out}: {m.num_clips} clips, {len(m.shards)} shards")


@app.command("show")
def show(
    store: Annotated[str, typer.Argument(help="Store folder or URL.")],
    clip: Annotated[str, typer.Argument(help="Clip id, e.g. scene0001/00000.")],
    out: Annotated[Path, typer.Option("--out", help="PNG to write.")] = Path("clip.png"),
    layer: Annotated[int | None, typer.Option(help="Feature layer for the PCA panel (default: first).")] = None,
    frames: Annotated[int, typer.Option(help="Frames to show.")] = 4,
    width: Annotated[int, typer.Option(help="PNG width in pixels.")] = 1200,
    height: Annotated[int, typer.Option(help="PNG height in pixels.")] = 800,
) -> None:
    """Render frames, depth, a feature PCA and the camera trajectory of one clip to a PNG."""
    from geovr.shared.safety import StoreError
    from geovr.shared.shards.show import render_clip
    from geovr.shared.stores import StoreReader

    try:
        reader = StoreReader(store)
        render_clip(reader[clip], reader.header.features.dtype, str(out), layer, frames, (width, height))
    except (StoreError, KeyError, ValueError) as e:
        _fail(e)
        return
    typer.echo(f"wrote {out}")
