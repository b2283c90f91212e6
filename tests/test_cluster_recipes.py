"""docs/cluster.md recipes parse and dry-run: the SLURM extraction array job (``--plan`` on a tiny
corpus) and the multi-node training launch (stub srun/scontrol/torchrun check the launch and load
the config with its overrides)."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "cluster.md"


def recipe(name: str) -> str:
    blocks = re.findall(r"```bash\n(.*?)```", DOC.read_text(), flags=re.S)
    found = [b for b in blocks if f"# geovr-recipe: {name}\n" in b]
    assert len(found) == 1, f"docs/cluster.md must hold exactly one '{name}' bash block"
    return found[0]


def _script(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    p.chmod(p.stat().st_mode | stat.S_IEXEC)
    return p


@pytest.mark.parametrize("name", ["extract", "train"])
def test_recipe_parses(name, tmp_path):
    p = _script(tmp_path, f"{name}.sbatch", recipe(name))
    res = subprocess.run(["bash", "-n", str(p)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "#SBATCH" in p.read_text()


def test_extract_array_job_dry_run(synth_corpus, tmp_path):
    p = _script(tmp_path, "extract.sbatch", recipe("extract"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _script(bin_dir, "geovr", f"#!/bin/bash\nexec {sys.executable} -m geovr \"$@\"\n")  # this checkout's geovr
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SLURM_ARRAY_TASK_ID": "3",
           "SLURM_ARRAY_TASK_COUNT": "16", "SLURM_CPUS_PER_TASK": "2",
           "CORPUS": str(synth_corpus / "corpus.parquet"), "OUT": str(tmp_path / "store"), "EXTRA": "--plan"}
    res = subprocess.run(["bash", "-x", str(p)], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "--rank 3 --world-size 16" in res.stderr  # the array index/count reach geovr
    assert "GB" in res.stdout or "MB" in res.stdout, res.stdout  # the storage plan was printed
    assert not (tmp_path / "store").exists()  # a dry run writes nothing


STUB_TORCHRUN = """#!{py}
import json, sys
args = sys.argv[1:]
i = args.index("-m")
launcher, prog = args[:i], args[i + 2:]
assert args[i + 1] == "geovr.train.launch", args
if "--node_rank=0" not in launcher:  # same command on every node; load the config once
    print(json.dumps({{"launcher": launcher}}))
    sys.exit(0)
from geovr.train.launch import _parser
ns, overrides = _parser().parse_known_args(prog)
from geovr.train.config import load_config
cfg = load_config(ns.config, overrides)
print(json.dumps({{"launcher": launcher, "stores": cfg.data.stores, "out_dir": cfg.run.out_dir,
                   "grad_accum": cfg.optim.grad_accum, "resume": cfg.run.resume}}))
"""


def test_train_multinode_dry_run(tmp_path):
    p = _script(tmp_path, "train.sbatch", recipe("train"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _script(bin_dir, "scontrol", "#!/bin/bash\nprintf 'gpu-a01\\ngpu-a02\\n'\n")
    # srun: run the command once per node, as SLURM would, with that node's SLURM_NODEID
    _script(bin_dir, "srun", "#!/bin/bash\nwhile [[ $1 == --* ]]; do shift; done\n"
            "for n in 0 1; do SLURM_NODEID=$n \"$@\" || exit 1; done\n")
    _script(bin_dir, "torchrun", STUB_TORCHRUN.format(py=sys.executable))
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SLURM_NNODES": "2", "SLURM_JOB_ID": "77",
           "SLURM_JOB_NODELIST": "gpu-a[01-02]", "GPUS_PER_NODE": "4", "STORE": "s3://bucket/store",
           "QA": str(tmp_path / "qa.jsonl"), "RUN_DIR": str(tmp_path / "run")}
    res = subprocess.run(["bash", str(p)], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    import json

    runs = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert len(runs) == 2
    for node, r in enumerate(runs):
        assert f"--node_rank={node}" in r["launcher"] and "--nnodes=2" in r["launcher"]
        assert "--nproc_per_node=4" in r["launcher"] and "--rdzv_endpoint=gpu-a01:29533" in r["launcher"]
    r = runs[0]
    assert r["stores"] == ["s3://bucket/store"] and r["out_dir"] == str(tmp_path / "run")
    assert r["grad_accum"] == 4 and r["resume"] is True  # 2 nodes x 4 GPUs x 4 = 32 clips per step
