"""VSI-Bench scorer inputs whose outcomes under the reference scorers are in tests/data/vsi_golden.json.

The golden outcomes were produced once, outside the repository, by running the official scorer
(vision-x-nyu/thinking-in-space ``lmms_eval/tasks/vsibench/utils.py`` @51e089c) and upstream
lmms-eval's (``EvolvingLMMs-Lab/lmms-eval`` @75571cfe) on exactly these inputs; a crash is recorded
as ``"crash: <ExceptionType>"``. Only the numbers are kept. ``random_rows()`` must stay stable.
"""

from __future__ import annotations

import numpy as np

EDGE_CASES = [
    # (question_type, prediction, ground_truth)
    ("object_rel_distance", "A", " A"),
    ("object_rel_distance", "A", "A "),
    ("object_rel_distance", "A", "a"),
    ("object_rel_distance", "A.", "A"),
    ("object_rel_distance", "", "A"),
    ("object_rel_distance", None, "A"),
    ("object_abs_distance", "inf", "-2"),
    ("object_abs_distance", "-inf", "-2"),
    ("object_abs_distance", "inf", "2"),
    ("object_abs_distance", "nan", "2"),
    ("object_abs_distance", "3", "-2"),
    ("object_abs_distance", "3", "0"),
    ("object_abs_distance", "0", "0"),
    ("object_counting", None, "3"),
    ("object_counting", "3", "abc"),
    ("object_counting", None, "abc"),
    ("object_abs_distance", "3.5", " 3.5 "),
    ("object_abs_distance", "3.5 meters", "3.5"),
    ("object_abs_distance", "3.5m", "3.5"),
    ("object_counting", "three", "3"),
    ("object_counting", "There are 3 chairs", "3"),
    ("object_size_estimation", "1e3", "1000"),
    ("object_counting", "twenty-one", "21"),
    ("object_counting", "3.", "3"),
    ("room_size_estimation", "2.1", "2"),
    ("room_size_estimation", "3", "2"),
]

QUESTION_TYPES = [
    "object_counting", "object_abs_distance", "object_size_estimation", "room_size_estimation",
    "object_rel_distance", "object_rel_direction_easy", "object_rel_direction_medium",
    "object_rel_direction_hard", "route_planning", "obj_appearance_order",
]
NA = set(QUESTION_TYPES[:4])


def random_rows(seed: int = 0, n: int = 300) -> list[dict]:
    """Benchmark rows (every question type) with answers in the formats models produce."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        qt = QUESTION_TYPES[i % len(QUESTION_TYPES)] if i < 20 else QUESTION_TYPES[int(rng.integers(10))]
        if qt in NA:
            gt = float(np.round(rng.uniform(0.5, 20.0), 1))
            guess = gt * float(rng.choice([1.0, rng.uniform(0.3, 1.8)]))
            fmt = int(rng.integers(5))
            pred = [f"{guess:.2f}", f"{guess:.1f} meters", f"About {guess:.1f}", f"{guess:.0f}.", "unsure"][fmt]
            gt_s = f"{gt:g}"
        else:
            opts = ["A", "B", "C", "D"][: int(rng.integers(2, 5))]
            gt_s = str(rng.choice(opts))
            pick = str(rng.choice(opts))
            fmt = int(rng.integers(4))
            pred = [pick, f"{pick}.", f"{pick}. Left", f"The answer is {pick}"][fmt]
        rows.append({"id": 1000 + i, "dataset": "scannet", "scene_name": f"scene{i % 7:04d}_00",
                     "question_type": qt, "question": f"q{i}?", "ground_truth": gt_s,
                     "options": None if qt in NA else [f"{o}. x" for o in "ABCD"], "prediction": pred})
    return rows
