"""VSI-Bench evaluation of any transformers checkpoint (base Qwen-VL or a geovr export).

Reads the benchmark's published files from a local folder (``test.parquet`` / ``test.jsonl`` or a
given file; videos at ``{dataset}/{scene_name}.mp4``), samples frames uniformly exactly as the
protocol's reference code (``np.linspace(0, N - 1, k)``, truncated or rounded), asks and decodes as the chosen protocol
(:mod:`geovr.evaluate.protocols`: official, lmms-eval or geovr-paper), appends every answer to
``predictions.jsonl`` as soon as it is produced (a restart skips answered ids), then scores with
:mod:`geovr.evaluate.scorer` and writes ``report.json`` with every protocol setting. ``--predictions``
scores existing answers: geovr's ``{id, prediction}`` JSONL or lmms-eval's VSI-Bench sample log.
"""

from __future__ import annotations

import json
import platform
import zlib
from dataclasses import asdict
from pathlib import Path

import numpy as np

from geovr.evaluate.config import SPLITS, VSIBenchConfig  # noqa: F401  (re-exported)
from geovr.evaluate.lmms_log import is_lmms_eval_log, read_lmms_eval_log
from geovr.evaluate.prompts import build_prompt
from geovr.evaluate.protocols import Protocol, resolve
from geovr.evaluate.scorer import aggregate, format_table, lmms_eval_metrics
from geovr.shared.errors import UsageError
from geovr.shared.jsonio import dumps_strict
from geovr.shared.video_meta import video_metadata


def protocol_of(cfg: VSIBenchConfig) -> Protocol:
    """The protocol preset of ``cfg`` with its overrides applied."""
    return resolve(cfg.protocol, cfg.num_frames, cfg.seed, cfg.max_new_tokens)


def _batch_seed(seed: int, ids: list) -> int:
    """Seed of one batch: from the run's seed and the batch's question ids (same batch, same draw)."""
    return zlib.crc32(json.dumps([seed, [str(i) for i in ids]]).encode())


def load_rows(cfg: VSIBenchConfig) -> list[dict]:
    """Benchmark rows of the chosen split, in file order."""
    from geovr.shared.tables import read_rows

    root = Path(cfg.bench_dir)
    path = Path(cfg.annotations) if cfg.annotations else next(
        (p for p in (root / "test.parquet", root / "test.jsonl") if p.is_file()), None
    )
    if path is None or not path.is_file():
        raise FileNotFoundError(f"{root}: no test.parquet or test.jsonl (pass --annotations)")
    if path.suffix == ".parquet":
        rows = read_rows(path)
    else:
        rows = []
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise UsageError(f"{path}:{n}: not valid JSON Lines ({exc})") from exc
    for n, r in enumerate(rows, 1):  # what scoring needs (asking also needs dataset, scene_name, question)
        if not isinstance(r, dict) or not {"id", "question_type", "ground_truth"} <= set(r):
            raise UsageError(f"{path}: row {n} is not a VSI-Bench question (needs id, question_type, ground_truth)")
    if cfg.split not in SPLITS:
        raise ValueError(f"split {cfg.split!r} not in {SPLITS}")
    if cfg.split == "debiased":
        if any("pruned" not in r for r in rows):
            raise ValueError(f"{path}: split 'debiased' needs a 'pruned' column (the 2026 release has it)")
        rows = [r for r in rows if not r["pruned"]]
    return rows[: cfg.limit] if cfg.limit else rows


def sample_video(path: Path, proto: Protocol) -> tuple[np.ndarray, np.ndarray, float]:
    """``(frames [k, H, W, 3] uint8, source indices [k] (``proto.frame_indices``), source fps)``.

    Decodes only the sampled frames (VSI-Bench videos run for minutes).
    """
    from geovr.shared.video import count_frames, read_frames

    if not path.is_file():
        raise FileNotFoundError(f"{path}: video not found")
    count, fps = count_frames(path)
    idx = proto.frame_indices(count)
    return read_frames(path, idx), idx, fps


def configure_processor(processor, proto: Protocol) -> None:
    """Set the protocol's video budget on ``processor`` and keep the budget a whole-clip pixel ceiling.

    transformers releases after the paper's (5.5.0) add ``cap_pixels_per_frame`` to the Qwen3-VL video
    processor and announce it as the future default; it would floor each frame at ``1.05 * shortest_edge``
    (the whole clip's minimum), which at the paper's 128 frames lifts the 384-token frame ceiling to 537.
    geovr turns it off wherever it exists, so every transformers version resizes like the paper's.
    Qwen2.5-VL's video processor reads ``size`` per frame, so it gets the per-frame budget as it is.
    """
    from transformers import Qwen2VLVideoProcessor

    vp = getattr(processor, "video_processor", None)
    if vp is None:
        return
    size = proto.video_size(per_clip=not isinstance(vp, Qwen2VLVideoProcessor))
    if size is not None:
        vp.size = size
    if hasattr(vp, "cap_pixels_per_frame"):
        vp.cap_pixels_per_frame = False


def _read_done(path: Path) -> dict:
    done = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
                done[rec["id"]] = rec
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # a torn last line from a crash (or not an object): that question is asked again
    return done


def _drop_torn_tail(path: Path) -> None:
    """Cut a partial last line left by a crash, so appended answers start on a line of their own."""
    if not path.is_file():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])


def predict(cfg: VSIBenchConfig, rows: list[dict], pred_path: Path) -> None:
    """Answer every row not yet in ``pred_path`` (appending, flushed per batch)."""
    import torch
    from tqdm import tqdm
    from transformers import AutoModelForImageTextToText, AutoProcessor, set_seed

    proto = protocol_of(cfg)
    _drop_torn_tail(pred_path)
    done = _read_done(pred_path)
    todo = [r for r in rows if r["id"] not in done]
    if not todo:
        return
    cuda = torch.cuda.is_available()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}.get(
        cfg.dtype, torch.bfloat16 if cuda else torch.float32
    )
    model = AutoModelForImageTextToText.from_pretrained(
        cfg.model, dtype=dtype, attn_implementation=cfg.attn_implementation
    ).to("cuda" if cuda else "cpu").eval()
    processor = AutoProcessor.from_pretrained(cfg.model)
    processor.tokenizer.padding_side = "left"
    configure_processor(processor, proto)
    root = Path(cfg.bench_dir)
    with open(pred_path, "a") as out, tqdm(total=len(todo), desc="vsibench", unit="q") as bar:
        for start in range(0, len(todo), cfg.batch_size):
            batch = todo[start : start + cfg.batch_size]
            sampled = [sample_video(root / r["dataset"] / f"{r['scene_name']}.mp4", proto) for r in batch]
            videos = [v for v, _, _ in sampled]
            meta = [video_metadata(idx / fps, len(idx) * fps / max(int(idx[-1]) + 1, 1)) for _, idx, fps in sampled]
            thinking = {} if proto.enable_thinking is None else {"enable_thinking": proto.enable_thinking}
            texts = [
                processor.apply_chat_template(
                    [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": build_prompt(r, proto.prompt_style)}]}],
                    tokenize=False, add_generation_prompt=True, **thinking,
                )
                for r in batch
            ]
            inputs = processor(text=texts, videos=videos, video_metadata=meta, do_sample_frames=False, padding=True,
                               return_tensors="pt")
            inputs = inputs.to(model.device)
            if proto.do_sample:
                set_seed(_batch_seed(proto.seed if proto.seed is not None else 0, [r["id"] for r in batch]))
            with torch.inference_mode():
                gen = model.generate(**inputs, **proto.generate_kwargs())
            answers = processor.batch_decode(gen[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
            for r, a in zip(batch, answers, strict=True):
                out.write(json.dumps({"id": r["id"], "prediction": a.strip()}) + "\n")
            out.flush()
            bar.update(len(batch))


def score(cfg: VSIBenchConfig, rows: list[dict], pred_path: Path) -> dict:
    """Join predictions to rows, score, print the table and write ``report.json``."""
    import torch
    import transformers

    import geovr

    proto = protocol_of(cfg)
    lmms_log = is_lmms_eval_log(pred_path)
    preds = read_lmms_eval_log(pred_path, rows) if lmms_log else _read_done(pred_path)
    missing = [r["id"] for r in rows if r["id"] not in preds]
    if missing:
        raise UsageError(f"{pred_path}: {len(missing)} questions have no prediction (first ids: {missing[:5]}); "
                         "expected JSON Lines of {id, prediction} or an lmms-eval sample log")
    joined = [{**r, "prediction": preds[r["id"]]["prediction"]} for r in rows]
    strict = aggregate(joined, scoring=proto.scoring)
    lmms = lmms_eval_metrics(aggregate(joined, scoring="lmms-eval"))
    report = {
        "config": asdict(cfg),
        "protocol": {**asdict(proto), "video_size": proto.video_size(), "generate_kwargs": proto.generate_kwargs()},
        "predictions_format": "lmms-eval sample log" if lmms_log else "geovr jsonl",
        "num_questions": len(rows),
        "scores": asdict(strict),
        "lmms_eval_metrics": lmms,
        "versions": {"geovr": geovr.__version__, "torch": torch.__version__,
                     "transformers": transformers.__version__, "python": platform.python_version()},
    }
    if cfg.lenient:
        report["scores_lenient_lmms_eval"] = asdict(aggregate(joined, lenient=True))
    Path(cfg.out_dir, "report.json").write_text(dumps_strict(report, indent=2))
    print(f"protocol {proto.name} (scoring {proto.scoring}, {proto.num_frames} frames"
          + (f", overrides: {', '.join(proto.overrides)}" if proto.overrides else "") + ")")
    print(format_table(strict))
    print("lmms-eval metrics (its extract_number parsing, fractions):")
    for k, v in lmms.items():
        print(f"  {k:<32} {v:.6f}")
    return report


def run(cfg: VSIBenchConfig, predictions: str = "") -> dict:
    """Predict (unless ``predictions`` is given) and score; returns the report dict."""
    cfg.validate(predictions)  # before the output folder exists and before any model loads
    rows = load_rows(cfg)
    Path(cfg.out_dir).mkdir(parents=True, exist_ok=True)
    if predictions:
        return score(cfg, rows, Path(predictions))
    pred_path = Path(cfg.out_dir) / "predictions.jsonl"
    predict(cfg, rows, pred_path)
    return score(cfg, rows, pred_path)
