"""The package dependency rule of docs/architecture.md holds.

``shared`` imports neither stage; ``extract``, ``train`` and ``evaluate`` import ``shared``;
``evaluate`` may import ``train``; ``corpora`` may import ``shared`` and ``extract``; no stage
imports another otherwise, and nothing imports ``corpora``. Checked two ways: every
import statement of every module (function-local ones included, relative ones resolved), and what
importing each package really loads into ``sys.modules`` (a fresh interpreter per package).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import geovr

ROOT = Path(geovr.__file__).resolve().parent.parent
FOLDERS = {"shared": "shared", "extract": "extract", "train": "train", "evaluate": "evaluate", "corpora": "corpora"}
STAGES = ("extract", "train", "evaluate")

ALLOWED = {
    "shared": set(),
    "extract": {"shared"},
    "train": {"shared"},
    "evaluate": {"shared", "train"},
    "corpora": {"shared", "extract"},
}
"""Which geovr packages each package may import (``synth`` is handled by ``SYNTH_USERS``)."""

SYNTH_USERS = ("geovr.extract.teachers.oracle", "geovr.evaluate.synth_qa")
"""The only package modules that may import ``geovr.synth`` (besides tests and the demo)."""


def _module_name(pkg: str, path: Path) -> str:
    rel = path.relative_to(ROOT / FOLDERS[pkg]).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(["geovr", pkg, *parts])


def _imports(pkg: str, path: Path) -> set[str]:
    """Absolute names of every ``geovr.*`` module imported anywhere in ``path``."""
    mod = _module_name(pkg, path)
    is_pkg = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = mod.split(".")
                base = base[: len(base) - node.level + (1 if is_pkg else 0)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.add(name)
            if name in ("geovr", *(f"geovr.{p}" for p in (*FOLDERS, "synth"))):
                found |= {f"{name}.{a.name}" for a in node.names}
    return {n for n in found if n == "geovr" or n.startswith("geovr.")}


def _top(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else None


def _violations(pkg: str, path: Path) -> list[str]:
    mod = _module_name(pkg, path)
    bad = []
    for name in sorted(_imports(pkg, path)):
        top = _top(name)
        if top == pkg or top is None:
            continue
        if top == "synth":
            if not mod.startswith(SYNTH_USERS):
                bad.append(f"{mod} imports {name}")
        elif top in FOLDERS and top not in ALLOWED[pkg]:
            bad.append(f"{mod} imports {name}")
    return bad


@pytest.mark.parametrize("pkg", list(FOLDERS))
def test_import_statements_follow_rule(pkg):
    files = sorted((ROOT / FOLDERS[pkg]).rglob("*.py"))
    assert files
    bad = [v for f in files for v in _violations(pkg, f)]
    assert not bad, "\n".join(bad)


def test_stages_use_shared():
    for pkg in STAGES:
        names = {n for f in (ROOT / FOLDERS[pkg]).rglob("*.py") for n in _imports(pkg, f)}
        assert any(_top(n) == "shared" for n in names), pkg


def test_checker_sees_lazy_and_relative_imports(tmp_path, monkeypatch):
    """The scan would catch the old ``evaluate -> extract.video`` (a function-local import)."""
    fake = tmp_path / "shared"
    fake.mkdir()
    (fake / "a.py").write_text("def f():\n    from geovr.extract.video import read_frames\n")
    (fake / "b.py").write_text("from ..train import config\n")
    (fake / "c.py").write_text("from . import geometry\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert _violations("shared", fake / "a.py") == ["geovr.shared.a imports geovr.extract.video"]
    assert _violations("shared", fake / "b.py") == ["geovr.shared.b imports geovr.train",
                                                    "geovr.shared.b imports geovr.train.config"]
    assert _violations("shared", fake / "c.py") == []


_PROBE = """
import importlib, json, pkgutil, sys
pkg = importlib.import_module("geovr." + sys.argv[1])
if sys.argv[1] == "shared":
    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        importlib.import_module(m.name)
print(json.dumps(sorted({n.split(".")[1] for n in sys.modules if n.startswith("geovr.") and n.count(".") >= 1})))
"""


@pytest.mark.parametrize("pkg", list(FOLDERS))
def test_importing_package_loads_only_allowed(pkg):
    """``import geovr.<pkg>`` (and, for ``shared``, every one of its modules) loads no forbidden package."""
    out = subprocess.run([sys.executable, "-c", _PROBE, pkg], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    loaded = set(json.loads(out.strip().splitlines()[-1])) - {pkg}
    assert loaded <= ALLOWED[pkg], f"geovr.{pkg} loads {sorted(loaded - ALLOWED[pkg])}"
