"""VSI-Bench scorer: official semantics at the edges."""

import math

import pytest

from geovr.evaluate.scorer import (
    MRA_THRESHOLDS,
    aggregate,
    extract_number,
    fuzzy_matching,
    mean_relative_accuracy,
    score_answer,
)


def test_ten_thresholds_from_half_to_095():
    assert len(MRA_THRESHOLDS) == 10
    assert MRA_THRESHOLDS[0] == pytest.approx(0.5) and MRA_THRESHOLDS[-1] == pytest.approx(0.95)


@pytest.mark.parametrize(
    ("pred", "gt", "expected"),
    [
        (2.0, 2.0, 1.0),  # exact
        (2.4, 2.0, 0.7),  # rel 0.2 passes theta <= 0.80: 7 of 10
        (3.0, 2.0, 0.1),  # rel 0.5 passes only theta = 0.5 (<=, as the official code)
        (3.02, 2.0, 0.0),  # rel 0.51 passes none
        (1.0, 4.0, 0.0),  # rel 0.75
        (4.0, 0.0, 0.0),  # gt = 0: undefined, scores 0
        (float("inf"), 2.0, 0.0),
    ],
)
def test_mra_threshold_edges(pred, gt, expected):
    assert mean_relative_accuracy(pred, gt) == pytest.approx(expected)


def test_mra_relative_error_exactly_at_a_threshold_passes_it():
    # |2.1 - 2| / 2 and 1 - 0.95 round to the same double: `<=` counts it (the paper's `<` would not)
    assert mean_relative_accuracy(2.1, 2.0) == pytest.approx(1.0)
    assert mean_relative_accuracy(2.2, 2.0) == pytest.approx(0.9)
    assert mean_relative_accuracy(2.2000001, 2.0) == pytest.approx(0.8)


@pytest.mark.parametrize(
    ("pred", "score"),
    [("A", 1), ("A.", 1), ("a", 1), ("A. Back", 1), ("(A)", 0), ("A)", 0), ("Answer: A", 0), ("B", 0), ("", 0)],
)
def test_multiple_choice_formats(pred, score):
    assert score_answer("object_rel_distance", pred, "A") == score


@pytest.mark.parametrize(
    ("pred", "strict", "lenient"),
    [("3.5", 1.0, 1.0), ("3.5 meters", 1.0, 1.0), ("3.5m", 0.0, 1.0), ("three", 0.0, 0.8),
     ("about 3.5", 0.0, 1.0), ("", 0.0, 0.0)],
)
def test_numerical_formats_strict_vs_lenient(pred, strict, lenient):
    assert score_answer("object_abs_distance", pred, "3.5") == strict
    assert score_answer("object_abs_distance", pred, "3.5", lenient=True) == lenient


def test_lenient_number_words():
    assert extract_number("There are three chairs") == 3.0
    assert extract_number("twenty-one") == 21.0
    assert extract_number("no number") is None
    assert fuzzy_matching("4. ") == "4"


def test_aggregation_macro_over_tasks_and_rel_direction_levels():
    rows = [
        # rel direction: easy 1/1, medium 0/2, hard 1/1 -> (100 + 0 + 100) / 3, not 2/4 = 50
        {"question_type": "object_rel_direction_easy", "prediction": "A", "ground_truth": "A"},
        {"question_type": "object_rel_direction_medium", "prediction": "B", "ground_truth": "A"},
        {"question_type": "object_rel_direction_medium", "prediction": "B", "ground_truth": "C"},
        {"question_type": "object_rel_direction_hard", "prediction": "D", "ground_truth": "D"},
        {"question_type": "object_counting", "prediction": "4", "ground_truth": "4"},
        {"question_type": "object_counting", "prediction": "", "ground_truth": "4"},
    ]
    rep = aggregate(rows)
    assert rep.tasks["rel_dir"] == pytest.approx(200 / 3)
    assert rep.tasks["obj_count"] == pytest.approx(50.0)
    assert math.isnan(rep.tasks["route_plan"])
    assert rep.overall == pytest.approx((200 / 3 + 50) / 2)
    assert rep.counts["object_rel_direction_medium"] == 2


def test_unknown_question_type_is_refused():
    with pytest.raises(ValueError, match="unknown VSI-Bench question_type"):
        score_answer("object_colour", "A", "A")
