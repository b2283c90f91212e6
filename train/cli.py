"""``geovr train``: stage two command (thin; heavy imports inside)."""

from __future__ import annotations

from typing import Annotated

import typer


def train(
    config: Annotated[str, typer.Option(help="Recipe name (train/recipes: tiny_cpu, paper_qwen3vl_2b, paper_qwen3vl_4b) or YAML path.")],
    overrides: Annotated[list[str] | None, typer.Argument(help="section.key=value overrides, e.g. run.max_steps=5.")] = None,
    nproc: Annotated[int, typer.Option(help="Processes on this node (>1 re-launches under torchrun).")] = 1,
    nnodes: Annotated[int, typer.Option(help="Nodes (multi-node: run this on every node).")] = 1,
    node_rank: Annotated[int, typer.Option(help="This node's rank.")] = 0,
    master_addr: Annotated[str, typer.Option(help="Rendezvous address.")] = "127.0.0.1",
    master_port: Annotated[int, typer.Option(help="Rendezvous port.")] = 29533,
    resume: Annotated[bool, typer.Option(help="Continue from the latest checkpoint.")] = False,
) -> None:
    """Train the student against cached targets under DeepSpeed ZeRO (resolved config saved per checkpoint)."""
    ov = list(overrides or []) + (["run.resume=true"] if resume else [])
    from geovr.train.config import ConfigError, check_config, load_config

    try:  # usage mistakes (unknown/renamed keys, a global batch the world size does not divide) before any launch
        cfg = load_config(config, ov)
        check_config(cfg, nproc * nnodes)
    except (ConfigError, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if nproc > 1 or nnodes > 1:
        import os
        import sys

        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", f"--nnodes={nnodes}",
               f"--node_rank={node_rank}", f"--master_addr={master_addr}", f"--master_port={master_port}",
               "-m", "geovr.train.launch", "--config", config, *ov]
        os.execv(sys.executable, cmd)
    from geovr.train.loop import train as run

    last = run(cfg)
    typer.echo(json.dumps(last) if (json := __import__("json")) else "")
