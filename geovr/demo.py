"""``geovr demo``: the whole pipeline end to end on the built-in synthetic default (CPU, tiny models).

Every step is the real CLI, run as a subprocess and printed first, so the demo doubles as a
copy-paste tutorial: synth -> extract (oracle teacher; tiny random VGGT) -> verify -> synthetic QA -> train (tiny
Qwen3-VL, DeepSpeed ZeRO-2) -> eval (VSI-Bench format on the exported model; its geometry heads; the VGGT store).
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path


def steps(out: Path, train_steps: int) -> list[tuple[str, list[str]]]:
    """The demo's commands, in order (``geovr`` is ``python -m geovr``)."""
    c, o = out / "corpus", out / "store_oracle"
    return [
        ("render a 4-clip synthetic corpus with exact ground truth",
         ["synth", "--out", str(c), "--clips", "4", "--seed", "0", "--frames", "16", "--overwrite"]),
        ("cache oracle (ground-truth) targets in a Zarr store",
         ["extract", "--corpus", str(c / "corpus.parquet"), "--teacher", "oracle", "--out", str(o),
          "--format", "zarr", "--num-frames", "8", "--student-tokens", "300", "--teacher-mode", "stretch",
          "--longest-edge", "112", "--workers", "0"]),
        ("cache a tiny random VGGT's targets in a WebDataset store (real weights: --weights)",
         ["extract", "--corpus", str(c / "corpus.parquet"), "--teacher", "vggt", "--vggt-config", "tiny", "--random-init",
          "--out", str(out / "store_vggt"), "--format", "wds", "--num-frames", "8", "--longest-edge", "112",
          "--workers", "0"]),
        ("verify the shared store's hashes", ["shards", "verify", str(o)]),
        ("generate VSI-style spatial QA from the ground truth", ["eval", "synth-qa", "--corpus", str(c), "--out",
                                                                str(out / "bench")]),
        ("train a tiny Qwen3-VL student on the oracle store + QA (DeepSpeed ZeRO-2, CPU)",
         ["train", "--config", "tiny_cpu", f"data.stores=[{o}]",
          f"data.instructions=[{out / 'bench' / 'train_conversations.jsonl'}]",
          f"run.out_dir={out / 'run'}", f"run.max_steps={train_steps}"]),
        ("score the exported student on the synthetic benchmark",
         ["eval", "vsibench", "--bench", str(out / "bench"), "--model", str(out / "run" / "export"),
          "--frames", "8", "--limit", "16", "--out", str(out / "vsibench")]),
        ("read out the student's own geometry heads (poses, depth, scale) against the ground truth",
         ["eval", "geometry", "--model", str(out / "run" / "export"), "--ref", str(o), "--out",
          str(out / "student_geometry.json")]),
        ("score the tiny VGGT's poses and depth against the ground truth (untrained: expect poor scores)",
         ["eval", "geometry", "--pred", str(out / "store_vggt"), "--ref", str(o), "--out",
          str(out / "geometry.json")]),
    ]


def run_demo(out: Path, train_steps: int = 20) -> None:
    for stale in ("store_oracle", "store_vggt", "bench", "run", "vsibench"):  # a re-run starts clean (resumable steps
        shutil.rmtree(out / stale, ignore_errors=True)  # would otherwise reuse the previous run's outputs)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    for i, (what, args) in enumerate(steps(out, train_steps), 1):
        print(f"\n[{i}] {what}\n$ geovr {shlex.join(args)}", flush=True)
        subprocess.run([sys.executable, "-m", "geovr", *args], check=True)
    print(f"\ndemo finished in {time.time() - t0:.0f} s; outputs under {out}")
