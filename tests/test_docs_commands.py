"""Every ``geovr`` command in README.md and docs/ runs as written: the subcommand exists, every flag it uses
is one of that command's flags, training overrides are keys of the recipe's config, and the repository paths
the docs name exist. The full demo (the README's first command) runs only with ``-m slow``."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "manifests" / "README.md"]


def _fenced_commands() -> list[tuple[str, list[str]]]:
    """``(where, argv after 'geovr')`` of every geovr command in a fenced bash block (continuations joined)."""
    out = []
    for doc in DOCS:
        text = doc.read_text()
        for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
            for line in block.replace("\\\n", " ").splitlines():
                line = line.split(" #")[0].strip()
                for part in re.split(r"&&|;", line):
                    try:
                        words = shlex.split(part.replace("...", ""))
                    except ValueError:  # a quote spanning lines (bash -c '...'): the words, quotes dropped
                        words = part.replace("...", "").replace("'", " ").replace('"', " ").split()
                    if "-m" in words and "geovr" in words[words.index("-m") + 1:words.index("-m") + 2]:
                        words = words[words.index("-m") + 1:]
                    if words and words[0] == "geovr":
                        out.append((f"{doc.name}: {part.strip()[:60]}", words[1:]))
    return out


COMMANDS = _fenced_commands()


def _command(argv: list[str]):
    """The click command an argv names, and the argv left after its name."""
    import typer.main

    from geovr.cli import app

    cmd = typer.main.get_command(app)
    rest = list(argv)
    while rest and hasattr(cmd, "commands") and rest[0] in cmd.commands:
        cmd = cmd.commands[rest.pop(0)]
    return cmd, rest


def test_the_docs_show_the_main_commands():
    shown = {" ".join(a[:2]) if a[0] in ("eval", "shards") else a[0] for _, a in COMMANDS}
    assert {"demo", "extract", "train", "shards verify", "shards publish", "eval vsibench", "eval geometry"} <= shown


@pytest.mark.parametrize("where,argv", COMMANDS, ids=[w for w, _ in COMMANDS])
def test_documented_command_and_flags_exist(where, argv):
    cmd, rest = _command(argv)
    assert not hasattr(cmd, "commands"), f"{where}: {argv[:2]} is a group, not a command"
    flags = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
    used = [w.split("=")[0] for w in rest if w.startswith("--")]
    unknown = [f for f in used if f not in flags]
    assert not unknown, f"{where}: unknown flag(s) {unknown} of geovr {' '.join(argv[:2])}"
    from conftest import run_geovr

    prefix = argv[: len(argv) - len(rest)]
    res = run_geovr(*prefix, "--help")
    assert res.exit_code == 0, res
    if cmd.name == "train":  # overrides and recipe resolve (no stores needed)
        from geovr.train.config import load_config

        recipe = rest[rest.index("--config") + 1]
        load_config(recipe, [w for w in rest if "=" in w and not w.startswith("--")])


def test_repository_paths_named_in_the_docs_exist():
    named = set()
    for doc in DOCS:
        named |= set(re.findall(r"`((?:docs|manifests|benchmarks|train/recipes|tests|\.ci)/[\w./-]*)`", doc.read_text()))
        named |= set(re.findall(r"python (benchmarks/[\w.]+\.py)", doc.read_text()))
    missing = sorted(p for p in named if not (ROOT / p.rstrip("/")).exists())
    assert named and not missing, missing


@pytest.mark.slow
def test_readme_demo_runs_end_to_end(tmp_path):
    res = subprocess.run([sys.executable, "-m", "geovr", "demo", "--out", str(tmp_path / "demo")],
                         capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "demo finished" in res.stdout and (tmp_path / "demo" / "synth_0000.png").is_file()
    import json

    report = (tmp_path / "demo" / "vsibench" / "report.json").read_text()
    json.loads(report, parse_constant=lambda c: pytest.fail(f"bare {c} in report.json"))
    test_ids = {json.loads(x)["id"] for x in (tmp_path / "demo" / "bench" / "test.jsonl").read_text().splitlines()}
    train = (tmp_path / "demo" / "bench" / "train_conversations.jsonl").read_text().splitlines()
    assert not test_ids & {int(json.loads(x)["id"].split("_")[1]) for x in train}
