"""Entry point for launchers: ``torchrun --nproc_per_node N -m geovr.train.launch --config X [a.b=v ...]``
or ``deepspeed --num_gpus N -m geovr.train.launch ...`` (``--local_rank`` is accepted and ignored:
the rank comes from the environment)."""

from __future__ import annotations

import argparse
import sys


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="geovr.train.launch")
    ap.add_argument("--config", required=True)
    ap.add_argument("--local_rank", "--local-rank", type=int, default=None)
    return ap


def main(argv: list[str] | None = None) -> None:
    args, overrides = _parser().parse_known_args(argv)
    from geovr.train.config import load_config
    from geovr.train.loop import train

    train(load_config(args.config, overrides))


if __name__ == "__main__":
    main(sys.argv[1:])
