"""``geovr extract``: stage one command, its flags built from ``ExtractConfig`` (thin; heavy imports inside).

Every flag is a field of :class:`geovr.extract.config.ExtractConfig` (defaults and help live there
only); ``--plan`` and ``--finalize`` are the command's own modes.
"""

from __future__ import annotations

import inspect
from typing import Any

import typer

from geovr.extract.config import ExtractConfig
from geovr.shared.cliconfig import config_command, config_from_dict
from geovr.shared.errors import UsageError


def _extract(raw: dict[str, Any], plan_only: bool = False, finalize: bool = False) -> None:
    """Run the teacher once over a video corpus and cache its targets in a sharded store.

    Exit codes: 0 all clips stored; 1 some clips failed (listed, recorded in clips.parquet); 2 bad usage
    (flags, corpus manifest, another job already writing this rank into --out); 3 environment (disk full,
    missing package, hub unreachable; finished shards are kept, rerun to resume); 4 the output folder holds
    an incompatible or damaged store.
    """
    if not raw.get("out"):
        raise UsageError("--out is required")
    if finalize:
        from pathlib import Path

        from geovr.shared.stores import finalize_store

        if "://" not in str(raw["out"]) and not (Path(raw["out"]) / "header.json").is_file():
            raise UsageError(f"--out {raw['out']}: no such store folder to finalise" if not Path(raw["out"]).is_dir()
                             else f"--out {raw['out']}: no store there to finalise (no header.json)")
        m = finalize_store(raw["out"])
        typer.echo(f"finalized {raw['out']}: {m.num_clips} clips, {m.num_failed} failed, {len(m.shards)} shards")
        return
    if not raw.get("corpus"):
        raise UsageError("--corpus is required (unless --finalize)")
    cfg: ExtractConfig = config_from_dict(ExtractConfig, raw, "extract")
    cfg.validate(inputs=not plan_only)  # every check that needs no model, before any model loads
    if plan_only:
        from geovr.extract.corpus import read_corpus
        from geovr.extract.plan import plan_for

        read_corpus(cfg.corpus)
        typer.echo(plan_for(cfg))
        return
    from geovr.extract.runner import rank_from_env, run_extract, summary

    r, w = rank_from_env(cfg.rank, cfg.world_size)
    result = run_extract(cfg)
    typer.echo(summary(result))
    if w == 1:
        from geovr.shared.stores import finalize_store

        m = finalize_store(cfg.out)
        typer.echo(f"store {cfg.out}: {m.num_clips} clips stored, {m.num_failed} failed overall")
    else:
        typer.echo(f"rank {r}/{w} done; run `geovr extract --finalize --out {cfg.out}` after all ranks finish")
    raise typer.Exit(1 if result.failed else 0)


def _mode(name: str, flag: str, text: str) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=bool,
                             default=typer.Option(False, flag, help=text))


extract = config_command(
    ExtractConfig, _extract,
    rename={"format": "--format"},
    extra=[_mode("plan_only", "--plan", "Print the storage estimate and exit (reads only the corpus)."),
           _mode("finalize", "--finalize", "Only merge all ranks' shards into index.json (needs only --out).")],
)
