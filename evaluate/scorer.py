"""VSI-Bench scoring with the official semantics (vision-x-nyu/thinking-in-space ``utils.py``).

Strict mode (the default, what published numbers use):

- ``fuzzy_matching(pred) = pred.split(' ')[0].rstrip('.').strip()``;
- multiple choice (MCA): case-insensitive exact match of that token with the letter;
- numerical (NA): ``float()`` of that token, 0 on failure; Mean Relative Accuracy over the 10
  thresholds ``linspace(0.50, 0.95, 10)`` with ``|pred - gt| / gt <= 1 - theta`` (``<=`` as in the code);
- per raw ``question_type`` means; relative direction = unweighted mean of its three levels;
  overall = unweighted mean of the 8 task scores, x 100.

Lenient mode mirrors upstream lmms-eval's ``extract_number`` (first number token or English
number word) for NA answers; it is reported separately and never mixed with strict scores.
``gt == 0`` on a numerical question has no defined relative error: such a row scores 0 and is
counted in ``n_invalid_gt`` (the official code would divide by zero).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

MCA_TYPES = (
    "object_rel_direction_easy",
    "object_rel_direction_medium",
    "object_rel_direction_hard",
    "object_rel_distance",
    "route_planning",
    "obj_appearance_order",
)
"""Raw question types answered with an option letter."""
NA_TYPES = ("object_abs_distance", "object_counting", "object_size_estimation", "room_size_estimation")
"""Raw question types answered with a number."""
TASKS = (
    ("obj_count", ("object_counting",)),
    ("abs_dist", ("object_abs_distance",)),
    ("obj_size", ("object_size_estimation",)),
    ("room_size", ("room_size_estimation",)),
    ("rel_dist", ("object_rel_distance",)),
    ("rel_dir", ("object_rel_direction_easy", "object_rel_direction_medium", "object_rel_direction_hard")),
    ("route_plan", ("route_planning",)),
    ("appr_order", ("obj_appearance_order",)),
)
"""The 8 reported tasks in the official table order, each with its raw question types."""
MRA_THRESHOLDS = np.linspace(0.5, 0.95, int((0.95 - 0.5) / 0.05 + 2))
"""Confidence thresholds theta of Mean Relative Accuracy (10 points, as the official int() gives)."""

_NUM_WORDS = {
    w: i
    for i, w in enumerate(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"]
    )
}
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_NUMBER_RE = re.compile(r"-?\d+(?:\.\d+)?|[a-z]+(?:-[a-z]+)?", re.IGNORECASE)


def fuzzy_matching(pred: str) -> str:
    """First space-delimited token with trailing dots removed (official)."""
    return pred.split(" ")[0].rstrip(".").strip()


def to_float(text: str) -> float | None:
    """``float(text)`` or None (official ``to_float``)."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def extract_number(text: str) -> float | None:
    """Lenient parser: the first digit run (``-?\\d+(\\.\\d+)?``) or English number word, whichever comes first."""
    for m in _NUMBER_RE.finditer(text.lower()):
        tok = m.group(0)
        if tok[0].isdigit() or tok[0] == "-":
            return float(tok)
        if tok in _NUM_WORDS:
            return float(_NUM_WORDS[tok])
        if "-" in tok:
            tens, _, unit = tok.partition("-")
            if tens in _TENS and unit in _NUM_WORDS and _NUM_WORDS[unit] < 10:
                return float(_TENS[tens] + _NUM_WORDS[unit])
        if tok in _TENS:
            return float(_TENS[tok])
    return None


def mean_relative_accuracy(pred: float, gt: float) -> float:
    """MRA = mean over theta of ``1[|pred - gt| / gt <= 1 - theta]``; 0 for gt == 0 or non-finite pred."""
    if gt == 0 or not math.isfinite(pred):
        return 0.0
    rel = abs(pred - gt) / gt  # exactly the official abs_dist_norm, float rounding included
    return float(np.mean(rel <= 1 - MRA_THRESHOLDS))


def score_answer(question_type: str, pred: str, gt: str, lenient: bool = False) -> float:
    """Score one answer in [0, 1]."""
    pred = pred or ""
    if question_type in MCA_TYPES:
        return float(fuzzy_matching(pred).lower() == str(gt).strip().lower())
    if question_type in NA_TYPES:
        value = extract_number(pred) if lenient else to_float(fuzzy_matching(pred))
        return 0.0 if value is None else mean_relative_accuracy(value, float(gt))
    raise ValueError(f"unknown VSI-Bench question_type {question_type!r}")


@dataclass
class Report:
    """Aggregated scores (all in [0, 100])."""

    tasks: dict[str, float]
    """Task name (official order) -> score; NaN when the split has no question of that task."""
    raw: dict[str, float]
    """Raw question_type -> score."""
    counts: dict[str, int]
    """Raw question_type -> number of questions."""
    overall: float
    """Unweighted mean of the task scores that have questions."""
    n_invalid_gt: int
    """Numerical rows with gt == 0 (scored 0)."""


def aggregate(rows: Iterable[dict], lenient: bool = False) -> Report:
    """Aggregate rows with ``question_type``, ``prediction`` and ``ground_truth`` keys."""
    per: dict[str, list[float]] = defaultdict(list)
    invalid = 0
    for r in rows:
        qt = r["question_type"]
        if qt in NA_TYPES and float(r["ground_truth"]) == 0:
            invalid += 1
        per[qt].append(score_answer(qt, r.get("prediction") or "", r["ground_truth"], lenient))
    raw = {qt: 100.0 * float(np.mean(v)) for qt, v in per.items()}
    tasks: dict[str, float] = {}
    for name, types in TASKS:
        present = [raw[t] for t in types if t in raw]
        tasks[name] = float(np.mean(present)) if present else float("nan")
    scored = [v for v in tasks.values() if not math.isnan(v)]
    overall = float(np.mean(scored)) if scored else float("nan")
    return Report(tasks, raw, {k: len(v) for k, v in per.items()}, overall, invalid)


def format_table(report: Report) -> str:
    """A plain-text per-task table."""
    lines = [f"{'task':<12} {'score':>7}", "-" * 20]
    def cell(v: float) -> str:
        return f"{v:>7.2f}" if math.isfinite(v) else f"{'n/a':>7}"

    lines += [f"{k:<12} {cell(v)}" for k, v in report.tasks.items()]
    lines += ["-" * 20, f"{'overall':<12} {cell(report.overall)}"]
    if any(not math.isfinite(v) for v in report.tasks.values()):
        lines.append("n/a: no question of that type was scored")
    return "\n".join(lines)
