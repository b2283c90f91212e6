"""VSI-Bench-style spatial questions generated from the synthetic corpus's exact ground truth.

Writes the VSI-Bench file format (``test.jsonl`` + ``test.parquet`` with ``id, dataset,
scene_name, question_type, question, ground_truth, options, pruned``; videos at
``{dataset}/{scene_name}.mp4``) so ``geovr eval vsibench`` runs fully offline, and a LLaVA-style
``train_conversations.jsonl`` (clip ids + conversations) that ``geovr train`` can use as QA.

Question types generated: object_counting, object_abs_distance (centre to centre, metres),
object_size_estimation (longest dimension, cm), room_size_estimation (floor area, m²),
object_rel_distance, object_rel_direction_{easy,medium,hard}, obj_appearance_order.
route_planning is not generated (the synthetic rooms have no navigable layout to describe).
Only objects visible in at least one frame are asked about; distance and direction questions
only use classes that occur once in the room, so the referent is unambiguous.
"""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import numpy as np

from geovr.evaluate.prompts import build_prompt

DATASET = "geovr_synth"
"""The ``dataset`` column of generated rows (also the video sub-folder)."""
LETTERS = "ABCD"


def _options(rng: np.random.Generator, correct: str, distractors: list[str]) -> tuple[list[str], str]:
    choices = [correct, *distractors][:4]
    order = rng.permutation(len(choices))
    opts = [choices[i] for i in order]
    return [f"{LETTERS[i]}. {o}" for i, o in enumerate(opts)], LETTERS[opts.index(correct)]


def _direction(standing: np.ndarray, facing: np.ndarray, target: np.ndarray, level: str) -> str:
    """Where ``target`` lies for an observer at ``standing`` looking at ``facing`` (world z up, top view)."""
    fwd = facing[:2] - standing[:2]
    vec = target[:2] - standing[:2]
    right = float(fwd[0] * vec[1] - fwd[1] * vec[0]) < 0  # z-up: negative cross product = clockwise = right
    front = float(np.dot(fwd, vec)) > 0
    side = "right" if right else "left"
    if level == "easy":
        return side
    if level == "medium":
        return side if front else "back"
    return f"{'front' if front else 'back'}-{side}"


def questions_for_scene(scene, clip_id: str, rng: np.random.Generator) -> list[dict]:  # noqa: C901
    """All question rows for one synthetic scene (``geovr.synth.scene.Scene``)."""
    visible = [o for o, f in zip(scene.objects, scene.first_visible_frame, strict=False) if f is not None]
    first = {o.index: scene.first_visible_frame[o.index] for o in visible}
    classes: dict[str, list] = {}
    for o in visible:
        classes.setdefault(o.cls, []).append(o)
    unique = [v[0] for v in classes.values() if len(v) == 1]
    rows: list[dict] = []

    def add(qt: str, q: str, gt, options: list[str] | None = None) -> None:
        rows.append({"dataset": DATASET, "scene_name": clip_id, "question_type": qt, "question": q,
                     "ground_truth": str(gt), "options": options, "pruned": False})

    for cls, objs in sorted(classes.items()):
        add("object_counting", f"How many {cls}(s) are in this room?", len(objs))
    for o in unique:
        add("object_size_estimation", f"What is the length of the longest dimension (length, width, or height) "
            f"of the {o.cls}, measured in centimeters?", int(round(max(o.size) * 100)))
    add("room_size_estimation", "What is the size of this room (in square meters)? If multiple rooms are shown, "
        "estimate the size of the combined space.", round(scene.room.floor_area_m2, 1))
    centre = {o.index: np.asarray(o.center) for o in visible}
    for a, b in itertools.combinations(unique, 2):
        d = float(np.linalg.norm(centre[a.index] - centre[b.index]))
        add("object_abs_distance", f"What is the distance between the centres of the {a.cls} and the {b.cls} "
            "(in meters)?", round(d, 2))
    for target in unique:
        others = [o for o in unique if o is not target]
        if len(others) < 2:
            break
        cand = [others[i] for i in rng.permutation(len(others))[:4]]
        dists = [float(np.linalg.norm(centre[c.index] - centre[target.index])) for c in cand]
        if sorted(dists)[0] * 1.15 > sorted(dists)[1]:
            continue  # ambiguous: the two closest are within 15 %
        best = cand[int(np.argmin(dists))].cls
        opts, letter = _options(rng, best, [c.cls for c in cand if c.cls != best])
        add("object_rel_distance", f"Which of these objects ({', '.join(c.cls for c in cand)}) is the closest "
            f"to the {target.cls}?", letter, opts)
    answers = {"easy": ["left", "right"], "medium": ["left", "right", "back"],
               "hard": ["front-left", "front-right", "back-left", "back-right"]}
    for a, b, c in itertools.islice(itertools.permutations(unique, 3), 6):
        for level, choices in answers.items():
            ans = _direction(centre[a.index], centre[b.index], centre[c.index], level)
            opts, letter = _options(rng, ans, [x for x in choices if x != ans])
            add(f"object_rel_direction_{level}", f"If I am standing by the {a.cls} and facing the {b.cls}, is the "
                f"{c.cls} to my {' or '.join(choices)}?", letter, opts)
    ordered = sorted(unique, key=lambda o: first[o.index])
    trios = [t for t in itertools.combinations(ordered, 3) if len({first[o.index] for o in t}) == 3]
    if trios:
        trio = trios[int(rng.integers(len(trios)))]
        correct = ", ".join(o.cls for o in trio)
        perms = [", ".join(o.cls for o in p) for p in itertools.permutations(trio)][1:]
        distract = [perms[i] for i in rng.permutation(len(perms))[:3]]
        opts, letter = _options(rng, correct, distract)
        names = ", ".join(sorted(o.cls for o in trio))
        add("obj_appearance_order", "What will be the first-time appearance order of the following "
            f"categories in the video: {names}?", letter, opts)
    return rows


def generate(corpus_dir: str | Path, out_dir: str | Path, seed: int = 0, test_fraction: float = 0.5) -> Path:
    """Write the synthetic benchmark under ``out_dir``; return the ``test.jsonl`` path.

    Each scene's questions are split at random: ``test_fraction`` of them go to ``test.jsonl`` /
    ``test.parquet`` (scored by ``geovr eval vsibench``), the rest to ``train_conversations.jsonl``
    (LLaVA-style rows for ``geovr train``); no question is in both.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from geovr.shared.tables import read_rows
    from geovr.synth.scene import load_scene

    corpus_dir, out_dir = Path(corpus_dir), Path(out_dir)
    manifest = corpus_dir / "corpus.parquet"
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest}: no corpus manifest (run `geovr synth` first)")
    table = read_rows(manifest)
    rng = np.random.default_rng(seed)
    rows: list[dict] = []
    train: list[dict] = []
    (out_dir / DATASET).mkdir(parents=True, exist_ok=True)
    for rec in table:
        scene = load_scene(corpus_dir / rec["gt_dir"])
        qs = questions_for_scene(scene, rec["clip_id"], rng)
        held = set(rng.permutation(len(qs))[: max(1, round(test_fraction * len(qs)))].tolist()) if qs else set()
        rows += [q for i, q in enumerate(qs) if i in held]
        train += [q for i, q in enumerate(qs) if i not in held]
        shutil.copyfile(corpus_dir / rec["uri"], out_dir / DATASET / f"{rec['clip_id']}.mp4")
    for i, r in enumerate(rows + train):
        r["id"] = i
    with open(out_dir / "test.jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    pq.write_table(pa.Table.from_pylist(rows), out_dir / "test.parquet")
    with open(out_dir / "train_conversations.jsonl", "w") as f:
        for r in train:
            conv = [{"from": "human", "value": "<image>\n" + build_prompt(r)}, {"from": "gpt", "value": r["ground_truth"]}]
            f.write(json.dumps({"id": f"synthqa_{r['id']}", "clip_id": r["scene_name"], "conversations": conv}) + "\n")
    return out_dir / "test.jsonl"
