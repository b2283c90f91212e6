"""Read lmms-eval's VSI-Bench sample log (``--log_samples``) as geovr predictions.

lmms-eval writes one JSON line per question to ``<output>/<model>/<date>_samples_<task>.jsonl``
(``EvaluationTracker.save_results_samples``): ``doc_id`` (position in the task's dataset),
``target``, ``filtered_resps`` (the answer scored: a string, or a one-element list in older
versions), ``resps``, ``doc_hash``, ``input``, and one key per metric of the task whose value is
the scored document (``vsibench_score`` in older versions; ``vsibench_overall``,
``object_counting_mra``, ... since 2026), which carries the benchmark ``id``, ``question_type``,
``ground_truth`` and ``prediction``.
"""

from __future__ import annotations

import json
from pathlib import Path

MAX_LOG_BYTES = 1 << 30
"""Largest sample log read (VSI-Bench's 5,130 questions log to a few MB)."""


class LogError(ValueError):
    """The file is not a usable lmms-eval VSI-Bench sample log."""


def find_log(path: Path) -> Path:
    """``path`` itself, or the one ``*_samples_vsibench*.jsonl`` inside the folder ``path``."""
    if path.is_dir():
        found = sorted(p for p in path.rglob("*_samples_vsibench*.jsonl") if p.is_file())
        if len(found) != 1:
            raise LogError(f"{path}: expected one *_samples_vsibench*.jsonl lmms-eval sample log, found {len(found)}")
        return found[0]
    return path


def is_lmms_eval_log(path: Path) -> bool:
    """Whether the first record of ``path`` (file or folder) looks like an lmms-eval sample."""
    try:
        path = find_log(path)
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    rec = json.loads(line)
                    return isinstance(rec, dict) and "doc_id" in rec and ("filtered_resps" in rec or "resps" in rec)
    except (OSError, LogError, json.JSONDecodeError):
        return False
    return False


def _answer(rec: dict) -> str | None:
    resp = rec.get("filtered_resps", rec.get("resps"))
    while isinstance(resp, list) and len(resp) == 1:
        resp = resp[0]
    if resp is None or isinstance(resp, str):
        return resp
    raise LogError(f"doc_id {rec.get('doc_id')}: filtered_resps is not one answer ({type(resp).__name__})")


def _doc(rec: dict) -> dict | None:
    for v in rec.values():
        if isinstance(v, dict) and "question_type" in v and "id" in v:
            return v
    return None


def read_lmms_eval_log(path: Path, rows: list[dict]) -> dict:
    """``{id: {"id", "prediction"}}`` from the sample log at ``path`` (file or folder).

    The benchmark id comes from the scored document in the record; a record without one is matched
    by ``doc_id`` to ``rows`` (the annotation rows in file order, as lmms-eval's dataset). A record
    whose question type or ground truth differs from the annotation row is refused.
    """
    path = find_log(Path(path))
    if not path.is_file():
        raise LogError(f"{path}: no such file")
    if path.stat().st_size > MAX_LOG_BYTES:
        raise LogError(f"{path}: {path.stat().st_size} bytes, more than the {MAX_LOG_BYTES} a sample log may have")
    by_id = {r["id"]: r for r in rows}
    out: dict = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise LogError(f"{path}:{n}: not JSON ({e.msg})") from None
            if not isinstance(rec, dict) or "doc_id" not in rec:
                raise LogError(f"{path}:{n}: not an lmms-eval sample (no doc_id)")
            doc = _doc(rec)
            if doc is not None:
                qid = doc["id"]
            elif isinstance(rec["doc_id"], int) and 0 <= rec["doc_id"] < len(rows):
                qid = rows[rec["doc_id"]]["id"]
            else:
                raise LogError(f"{path}:{n}: no scored document and doc_id {rec['doc_id']!r} is not a row")
            row = by_id.get(qid)
            if row is not None and doc is not None and (
                    doc.get("question_type") != row["question_type"]
                    or str(doc.get("ground_truth")) != str(row["ground_truth"])):
                raise LogError(f"{path}:{n}: question {qid} differs from the annotations (another benchmark version?)")
            if qid in out:
                raise LogError(f"{path}:{n}: question {qid} answered twice")
            out[qid] = {"id": qid, "prediction": _answer(rec)}
    return out
