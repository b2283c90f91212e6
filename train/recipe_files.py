"""Where training recipes live, and how a ``--config`` value resolves to a file (import-light: no torch)."""

from __future__ import annotations

from pathlib import Path

from geovr.shared.errors import UsageError

RECIPES = Path(__file__).parent / "recipes"
"""Bundled recipes: ``train/recipes/NAME.yaml``."""


def recipe_path(recipe: str) -> Path:
    """A YAML path, or the bundled recipe ``NAME``; anything else is a ``UsageError``."""
    path = Path(recipe)
    if path.is_file():
        return path
    path = RECIPES / f"{recipe}.yaml"
    if path.is_file():
        return path
    known = ", ".join(sorted(p.stem for p in RECIPES.glob("*.yaml")))
    raise UsageError(f"--config {recipe}: no such YAML file or recipe (recipes: {known})")
