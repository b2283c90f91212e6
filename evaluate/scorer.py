"""VSI-Bench scoring with the official semantics (vision-x-nyu/thinking-in-space ``utils.py``).

Three scorings (``SCORINGS``), each a reference implementation's semantics (edge cases in docs/eval.md):

- ``official`` (the default, what published numbers use):
  ``fuzzy_matching(pred) = pred.split(' ')[0].rstrip('.').strip()``; multiple choice (MCA):
  case-insensitive exact match of that token with the ground-truth string as given (not stripped);
  numerical (NA): ``float()`` of that token, 0 on failure; Mean Relative Accuracy over the 10
  thresholds ``linspace(0.50, 0.95, 10)`` with ``|pred - gt| / gt <= 1 - theta`` (``<=`` as in the
  code); per raw ``question_type`` means; relative direction = unweighted mean of its levels;
  overall = unweighted mean of the task scores, x 100.
- ``lmms-eval``: upstream lmms-eval's ``vsibench`` task: as official, but NA answers are parsed with
  its ``extract_number`` (the first number, digits or English number words, anywhere in the answer).
- ``geovr-paper``: the GeoVR paper's ``metric_result.py``: MCA compares the answer's first character;
  NA takes ``float()`` of the whole answer and counts ``|pred - gt| / gt < 1 - theta`` (strict) over
  ``theta = round(0.5 + 0.05 i, 2)``; relative direction pools its three levels; overall = sum of
  the 8 task scores / 8 (a task without questions counts 0).

Where a reference crashes the choice is ours (docs/eval.md): numerical ground truth 0 scores 1 for
an exact 0 and 0 otherwise (the paper's rule); a missing prediction (None) scores as an empty
answer; with only some relative-direction levels present the task is the mean of those present.
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

SCORINGS = ("official", "lmms-eval", "geovr-paper")
"""Answer parsing and aggregation rules (see the module docstring)."""

_NUMBER_WORDS = {w: i for i, w in enumerate(
    ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
     "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"])}
_NUMBER_WORDS.update({"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
                      "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000})
_DIGITS_RE = re.compile(r"-?\d+(?:\.\d+)?")
_WORD_RE = re.compile(r"[a-z]+")
PAPER_THRESHOLDS = tuple(round(0.5 + i * 0.05, 2) for i in range(10))
"""theta of the GeoVR paper's MRA (``metric_result.py``), compared with a strict ``<``."""


def fuzzy_matching(pred: str) -> str:
    """First space-delimited token with trailing dots removed (official)."""
    return pred.split(" ")[0].rstrip(".").strip()


def to_float(text: object) -> float | None:
    """``float(text)`` or None (official ``to_float``)."""
    try:
        return float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _words_value(words: list[str]) -> float:
    total, current = 0, 0
    for w in words:
        v = _NUMBER_WORDS[w]
        if v == 100:
            current = max(current, 1) * 100
        elif v == 1000:
            total, current = total + max(current, 1) * 1000, 0
        else:
            current += v
    return float(total + current)


def extract_number(text: str | None) -> float | None:
    """lmms-eval's NA parser: the first number in the (lower-cased) answer, or None.

    A number is a digit token ``-?\\d+(\\.\\d+)?`` or a run of English number words (``and``
    allowed inside the run: "three hundred and twenty-one" = 321); whichever starts first wins.
    """
    s = "" if text is None else str(text).strip().lower()
    if not s:
        return None
    digits = _DIGITS_RE.search(s)
    run: list[str] = []
    run_start = None
    for m in _WORD_RE.finditer(s):
        w = m.group(0)
        if run_start is None:
            if w in _NUMBER_WORDS:
                run_start, run = m.start(), [w]
        elif w in _NUMBER_WORDS:
            run.append(w)
        elif w != "and":
            break
    if digits is not None and (run_start is None or digits.start() < run_start):
        return float(digits.group(0))
    return _words_value(run) if run_start is not None else None


def mean_relative_accuracy(pred: float, gt: float) -> float:
    """MRA = mean over theta of ``1[|pred - gt| / gt <= 1 - theta]`` (official, float rounding included).

    Any ``pred`` (``inf`` too) against a negative ``gt`` passes every threshold, as in the official
    code; NaN passes none. ``gt == 0`` (the official code divides by zero): 1 for ``pred == 0``, else 0.
    """
    if gt == 0:
        return float(pred == 0)
    with np.errstate(invalid="ignore"):
        rel = abs(pred - gt) / gt  # exactly the official abs_dist_norm
        return float(np.mean(rel <= 1 - MRA_THRESHOLDS))


def _paper_mra(pred: float, gt: float) -> float:
    if gt == 0:
        return float(pred == 0)
    rel = abs(pred - gt) / gt
    return sum(rel < 1.0 - t for t in PAPER_THRESHOLDS) / 10.0


def score_answer(question_type: str, pred: str | None, gt: object, lenient: bool = False,
                 scoring: str = "official") -> float:
    """Score one answer in [0, 1] (``lenient=True`` is ``scoring="lmms-eval"``)."""
    if scoring not in SCORINGS:
        raise ValueError(f"scoring {scoring!r} not in {SCORINGS}")
    scoring = "lmms-eval" if lenient else scoring
    pred = "" if pred is None else str(pred)
    if question_type in MCA_TYPES:
        if scoring == "geovr-paper":
            return float(pred[:1].strip() == str(gt).strip())
        return float(fuzzy_matching(pred).lower() == str(gt).lower())
    if question_type in NA_TYPES:
        if scoring == "geovr-paper":
            value, target = to_float(pred), to_float(gt)
            return 0.0 if value is None or target is None else _paper_mra(value, target)
        value = extract_number(pred) if scoring == "lmms-eval" else to_float(fuzzy_matching(pred))
        target = to_float(gt)
        return 0.0 if value is None or target is None else mean_relative_accuracy(value, target)
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
    """Unweighted mean of the task scores that have questions (``geovr-paper``: their sum / 8)."""
    n_invalid_gt: int
    """Numerical rows whose ground truth is 0 or not a number (see the module docstring)."""
    n_no_prediction: int = 0
    """Rows whose prediction is missing (None), scored as an empty answer."""
    scoring: str = "official"
    """Which of :data:`SCORINGS` produced the scores."""


def aggregate(rows: Iterable[dict], lenient: bool = False, scoring: str = "official") -> Report:
    """Aggregate rows with ``question_type``, ``prediction`` and ``ground_truth`` keys."""
    scoring = "lmms-eval" if lenient else scoring
    per: dict[str, list[float]] = defaultdict(list)
    invalid = missing = 0
    for r in rows:
        qt = r["question_type"]
        if qt in NA_TYPES and to_float(r["ground_truth"]) in (None, 0.0):
            invalid += 1
        missing += r.get("prediction") is None
        per[qt].append(score_answer(qt, r.get("prediction"), r["ground_truth"], scoring=scoring))
    raw = {qt: 100.0 * float(np.mean(v)) for qt, v in per.items()}
    tasks: dict[str, float] = {}
    for name, types in TASKS:
        if scoring == "geovr-paper":  # one category pooled over the direction levels
            pooled = [x for t in types for x in per.get(t, [])]
            tasks[name] = 100.0 * float(np.mean(pooled)) if pooled else float("nan")
            continue
        present = [raw[t] for t in types if t in raw]
        tasks[name] = float(np.mean(present)) if present else float("nan")
    scored = [v for v in tasks.values() if not math.isnan(v)]
    if scoring == "geovr-paper":
        overall = float(sum(scored) / len(TASKS))
    else:
        overall = float(np.mean(scored)) if scored else float("nan")
    return Report(tasks, raw, {k: len(v) for k, v in per.items()}, overall, invalid, missing, scoring)


LMMS_EVAL_KEYS = (
    ("vsibench_overall", None),
    ("obj_appearance_order_accuracy", "appr_order"),
    ("object_abs_distance_mra", "abs_dist"),
    ("object_counting_mra", "obj_count"),
    ("object_rel_distance_accuracy", "rel_dist"),
    ("object_size_estimation_mra", "obj_size"),
    ("room_size_estimation_mra", "room_size"),
    ("route_planning_accuracy", "route_plan"),
    ("object_rel_direction_accuracy", "rel_dir"),
)
"""The metrics lmms-eval's ``vsibench`` task prints, in its order, with the geovr task each one is."""


def lmms_eval_metrics(report: Report) -> dict[str, float]:
    """``report`` under lmms-eval's printed names and scale: fractions in [0, 1] rounded to 6 places
    (a task without questions reads 0.0, as lmms-eval's ``.get(..., 0.0)``)."""
    out = {}
    for key, task in LMMS_EVAL_KEYS:
        v = report.overall if task is None else report.tasks[task]
        out[key] = round(0.0 if math.isnan(v) else v / 100.0, 6)
    return out


def format_table(report: Report) -> str:
    """A plain-text per-task table."""
    lines = [f"{'task':<12} {'score':>7}", "-" * 20]
    lines += [f"{k:<12} {v:>7.2f}" for k, v in report.tasks.items()]
    lines += ["-" * 20, f"{'overall':<12} {report.overall:>7.2f}"]
    return "\n".join(lines)
