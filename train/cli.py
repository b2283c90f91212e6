"""``geovr train``: stage two command (thin; heavy imports inside).

The recipe (YAML) plus ``section.key=value`` overrides is the one typed config
(:class:`geovr.train.config.TrainConfig`); the flags here only choose the recipe and the launcher.
Before DeepSpeed or any model starts, the config is resolved and the stores are opened and checked
against it (sampling contract, QA clip ids), so a mistake ends in one ``error:`` line (exit 2).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer


def check_run(cfg) -> None:  # noqa: ANN001  (TrainConfig; imported lazily)
    """Every check of a resolved config that needs no model: the stores open, their sampling matches the
    recipe, every QA row names a stored clip (raises ``UsageError`` / ``StoreError``)."""
    from geovr.train.data import TrainData

    TrainData(cfg.data, cfg.run.seed)


def train(
    config: Annotated[str, typer.Option(help="Recipe name (train/recipes: tiny_cpu, paper_qwen3vl_2b, paper_qwen3vl_4b, "
                                             "paper_qwen35_2b) or YAML path.")],
    overrides: Annotated[list[str] | None, typer.Argument(help="section.key=value overrides, e.g. run.max_steps=5 "
                                                               "(quote lists in zsh: 'data.stores=[a,b]').")] = None,
    nproc: Annotated[int, typer.Option(help="Processes on this node (>1 re-launches under torchrun).")] = 1,
    nnodes: Annotated[int, typer.Option(help="Nodes (multi-node: run this on every node).")] = 1,
    node_rank: Annotated[int, typer.Option(help="This node's rank.")] = 0,
    master_addr: Annotated[str, typer.Option(help="Rendezvous address.")] = "127.0.0.1",
    master_port: Annotated[int, typer.Option(help="Rendezvous port.")] = 29533,
    resume: Annotated[bool, typer.Option(help="Continue from the latest checkpoint.")] = False,
) -> None:
    """Train the student against cached targets under DeepSpeed ZeRO (resolved config saved per checkpoint)."""
    from geovr.train.recipe_files import recipe_path

    recipe_path(config)  # a wrong name fails before torch is imported
    for flag, value, low in (("--nproc", nproc, 1), ("--nnodes", nnodes, 1), ("--node-rank", node_rank, 0)):
        if value < low:
            from geovr.shared.errors import UsageError

            raise UsageError(f"{flag} must be >= {low}, got {value}")
    from geovr.train.config import load_config

    ov = list(overrides or []) + (["run.resume=true"] if resume else [])
    from geovr.train.config import check_config

    cfg = load_config(config, ov)
    check_config(cfg, nproc * nnodes)  # e.g. a global batch the world size does not divide
    check_run(cfg)
    if nproc > 1 or nnodes > 1:
        import os
        import sys

        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", f"--nnodes={nnodes}",
               f"--node_rank={node_rank}", f"--master_addr={master_addr}", f"--master_port={master_port}",
               "-m", "geovr.train.launch", "--config", config, *ov]
        os.execv(sys.executable, cmd)
    from geovr.train.loop import train as run

    typer.echo(json.dumps(run(cfg)))
