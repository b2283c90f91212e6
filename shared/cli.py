"""``geovr shards ...``: store tools (thin; heavy imports inside each command).

Errors propagate to ``geovr.cli.main``, which maps them to exit codes: a path that is no finalised store
is bad usage (2), a store that fails its checks is an integrity error (4), a missing optional package
for a remote URL is an environment problem (3).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True)


@app.command("info")
def info(
    store: Annotated[str, typer.Argument(help="Store folder or URL (memory://, s3://, gs://, https://).")],
    clips: Annotated[bool, typer.Option("--clips", help="List the stored clip ids (one a line) instead.")] = False,
) -> None:
    """Summary of a finalised store: format, teacher, clips ok/failed, shards, bytes, targets."""
    if clips:
        from geovr.shared.stores import StoreReader

        reader = StoreReader(store)
        for cid in reader.clip_ids:
            typer.echo(cid)
        for cid, why in reader.failures.items():
            typer.echo(f"{cid}\tFAILED: {why}")
        return
    from geovr.shared.shards.info import format_summary, store_summary

    typer.echo(format_summary(store_summary(store)))


@app.command("verify")
def verify(
    store: Annotated[str, typer.Argument(help="Store folder or URL.")],
    no_hash: Annotated[bool, typer.Option("--no-hash", help="Only check presence and sizes (fast).")] = False,
) -> None:
    """Recompute hashes and counts; list missing, truncated, corrupted and unknown files. Exit 4 on any problem."""
    from geovr.shared.stores.fsio import resolve
    from geovr.shared.stores.verify import load_manifest, verify_store

    fs, root, _ = resolve(store)
    if not fs.exists(f"{root}/index.json"):
        load_manifest(fs, root)  # raises NotFinalizedError naming the problem (exit 2)

    problems = verify_store(store, hashes=not no_hash)
    for p in problems:
        typer.echo(f"PROBLEM {p}")
    if problems:
        typer.echo(f"error: {len(problems)} problem(s) in {store}", err=True)
        raise typer.Exit(4)
    typer.echo(f"OK {store}")


def _transfer(src: str, dst: str) -> None:
    from geovr.shared.shards.transfer import transfer_store

    rep = transfer_store(src, dst)
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
    from geovr.shared.shards.merge import merge_stores

    m = merge_stores(out, stores)
    typer.echo(f"merged {len(stores)} store(s) into {out}: {m.num_clips} clips, {len(m.shards)} shards")


@app.command("show")
def show(
    store: Annotated[str, typer.Argument(help="Store folder or URL.")],
    clip: Annotated[str, typer.Argument(help="Clip id, e.g. synth_0000 (list them: geovr shards info STORE --clips).")],
    out: Annotated[Path, typer.Option("--out", help="PNG file to write.")] = Path("clip.png"),
    layer: Annotated[int | None, typer.Option(help="Feature layer for the PCA panel (default: first).")] = None,
    frames: Annotated[int, typer.Option("--num-frames", "--frames", help="Frames to show.")] = 4,
    width: Annotated[int, typer.Option(help="PNG width in pixels.")] = 1200,
    height: Annotated[int, typer.Option(help="PNG height in pixels.")] = 800,
) -> None:
    """Render frames, depth, a feature PCA and the camera trajectory of one clip to a PNG."""
    from geovr.shared.errors import UsageError
    from geovr.shared.shards.show import render_clip
    from geovr.shared.stores import StoreReader

    for flag, value in (("--num-frames", frames), ("--width", width), ("--height", height)):
        if value < 1:
            raise UsageError(f"{flag} must be >= 1, got {value}")
    if out.is_dir() or not out.parent.is_dir():
        raise UsageError(f"--out {out}: " + ("is a folder; name a PNG file" if out.is_dir() else
                                             f"folder {out.parent} does not exist"))
    reader = StoreReader(store)
    if clip not in reader.clip_ids:
        why = f" (extraction failed: {reader.failures[clip]})" if clip in reader.failures else ""
        raise UsageError(f"clip {clip} is not stored in {store}{why}; list the ids with "
                         f"`geovr shards info {store} --clips`")
    try:
        render_clip(reader[clip], reader.header.features.dtype, str(out), layer, frames, (width, height))
    except ValueError as e:  # e.g. a --layer the store does not have
        raise UsageError(str(e)) from e
    typer.echo(f"wrote {out}")
