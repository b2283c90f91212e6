"""``geovr demo``: the whole pipeline end to end on the built-in synthetic default (CPU, tiny models).

Every step is the real CLI, run as a subprocess and printed first, so the demo doubles as a
copy-paste tutorial: synth -> extract (oracle teacher; tiny random VGGT) -> verify -> show one clip (PNG) ->
synthetic QA (disjoint train / test questions) -> train (tiny Qwen3-VL, DeepSpeed ZeRO-2) -> eval (VSI-Bench format
on the exported model; its geometry heads; the VGGT store). It ends with a summary of what each step produced.
"""

from __future__ import annotations

import json
import math
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

CLIP = "synth_0000"
"""The clip the demo draws (``geovr synth`` names clips ``synth_NNNN``)."""


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
        ("render one cached clip (frames, depth, feature PCA, camera path) to a PNG",
         ["shards", "show", str(o), CLIP, "--out", str(out / f"{CLIP}.png")]),
        ("generate VSI-style spatial QA from the ground truth (half of each scene's questions held out for test)",
         ["eval", "synth-qa", "--corpus", str(c), "--out", str(out / "bench")]),
        ("train a tiny Qwen3-VL student on the oracle store + QA (DeepSpeed ZeRO-2, CPU)",
         ["train", "--config", "tiny_cpu", f"data.stores=[{o}]",
          f"data.instructions=[{out / 'bench' / 'train_conversations.jsonl'}]",
          f"run.out_dir={out / 'run'}", f"run.max_steps={train_steps}"]),
        (f"score the exported student on the held-out synthetic questions. A tiny random model trained for "
         f"{train_steps} steps cannot answer them: expect scores near 0 and n/a for question types without a "
         "scored answer; the step shows the evaluation path (prompts, generation, official scoring) end to end",
         ["eval", "vsibench", "--bench", str(out / "bench"), "--model", str(out / "run" / "export"),
          "--num-frames", "8", "--limit", "16", "--out", str(out / "vsibench")]),
        ("read out the student's own geometry heads (poses, depth, scale) against the ground truth",
         ["eval", "geometry", "--model", str(out / "run" / "export"), "--ref", str(o), "--out",
          str(out / "student_geometry.json")]),
        ("score the tiny VGGT's poses and depth against the ground truth (untrained: expect poor scores)",
         ["eval", "geometry", "--pred", str(out / "store_vggt"), "--ref", str(o), "--out",
          str(out / "geometry.json")]),
    ]


def _load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _fmt(v: object) -> str:
    return f"{v:.3f}" if isinstance(v, (int, float)) and math.isfinite(v) else "n/a"


def summary(out: Path, seconds: float) -> str:
    """What the demo produced, read back from its outputs."""
    index = _load(out / "store_oracle" / "index.json")
    metrics = [json.loads(line) for line in (out / "run" / "metrics.jsonl").read_text().splitlines()] \
        if (out / "run" / "metrics.jsonl").is_file() else []
    student = _load(out / "student_geometry.json").get("mean", {})
    vggt = _load(out / "geometry.json").get("mean", {})
    vsi = _load(out / "vsibench" / "report.json")
    train_qa = out / "bench" / "train_conversations.jsonl"
    n_train = len(train_qa.read_text().splitlines()) if train_qa.is_file() else 0
    lines = [f"\ndemo finished in {seconds:.0f} s; every output is under {out}",
             f"  store      {out / 'store_oracle'}: {index.get('num_clips', '?')} clips of oracle targets "
             f"(verified); tiny VGGT store {out / 'store_vggt'}",
             f"  picture    {out / f'{CLIP}.png'}"]
    if metrics:
        first, last = metrics[0], metrics[-1]
        terms = ", ".join(f"{k} {_fmt(first[k])} -> {_fmt(last[k])}" for k in ("camera", "depth", "scale", "distill"))
        lines.append(f"  training   {len(metrics)} steps: {terms} (first -> last step)")
    if student:
        lines.append(f"  student    heads vs ground truth: depth AbsRel {_fmt(student.get('abs_rel'))}, "
                     f"pose AUC@30 {_fmt(student.get('auc'))}, scale error {_fmt(student.get('scale_rel_err'))}")
    if vggt:
        lines.append(f"  tiny VGGT  (random weights) depth AbsRel {_fmt(vggt.get('abs_rel'))}, pose AUC@30 "
                     f"{_fmt(vggt.get('auc'))}: untrained, as expected")
    if vsi:
        lines.append(f"  VSI-Bench  {vsi.get('num_questions', '?')} held-out questions (the student trained on "
                     f"{n_train} others): overall {_fmt(vsi.get('scores', {}).get('overall'))}; expected near 0 "
                     "for a tiny random student")
    lines.append("  next       real teacher weights: docs/vggt.md; real corpora and the paper recipe: README.md")
    return "\n".join(lines)


def run_demo(out: Path, train_steps: int = 20) -> None:
    if train_steps < 1 or (out.exists() and not out.is_dir()):
        from geovr.shared.errors import UsageError

        raise UsageError(f"--train-steps must be >= 1, got {train_steps}" if train_steps < 1 else
                         f"--out {out}: exists and is not a folder")
    for stale in ("store_oracle", "store_vggt", "bench", "run", "vsibench"):  # a re-run starts clean (resumable steps
        shutil.rmtree(out / stale, ignore_errors=True)  # would otherwise reuse the previous run's outputs)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    for i, (what, args) in enumerate(steps(out, train_steps), 1):
        print(f"\n[{i}] {what}\n$ geovr {shlex.join(args)}", flush=True)
        subprocess.run([sys.executable, "-m", "geovr", *args], check=True)
    print(summary(out, time.time() - t0))
