"""The training input pipeline: this rank's micro-batches, prepared for the student in DataLoader
worker processes so the accelerator never waits on store reads, JPEG decoding, feature decoding
or the processor.

Micro-batch ``k`` (counted from the step the run starts or resumes at) is a pure function of
``(step, micro, rank, world, grad_accum, seed)`` through ``TrainData.position``, and the DataLoader
keeps order, so a run yields the same samples with or without workers and resumes exactly.

With ``data.max_tokens`` a prepared sample's text after the video is cut to fit (``fit_max_tokens``);
a sample whose video block alone does not fit is replaced by the item at the same position of the next
epoch's order (then the one after, ...), and each prepared sample carries ``data_meta``
(``{"skipped": items replaced, "truncated": 0 or 1}``) for the trainer's counters.
"""

from __future__ import annotations

import os
from typing import Any

from geovr.train.config import DataConfig

MAX_REPLACEMENTS = 100
"""Items tried in a row for one slot before the run stops (every one too long for ``data.max_tokens``)."""


def _protected_ids(adapter: Any) -> set[int]:
    """Token ids that close the video block or are geovr placeholders: never cut, nor anything before them."""
    processor = adapter.processor
    end = getattr(processor, "vision_end_token_id", None) or processor.tokenizer.convert_tokens_to_ids("<|vision_end|>")
    return {int(end), int(adapter.camera_id), int(adapter.scale_id)}


def fit_max_tokens(prepared: dict, max_tokens: int, protected: set[int]) -> tuple[dict | None, bool]:
    """Cut ``prepared`` (``prepare_sample`` output, batch of 1) to ``max_tokens`` tokens by dropping text from the
    end, never the video block (up to its last ``protected`` token). Returns ``(sample, truncated)``, or
    ``(None, False)`` when the video block alone is longer than ``max_tokens``.

    Every sequence-aligned tensor is cut: ``labels`` and each input whose last dimension is the sequence length
    (``input_ids``, ``attention_mask``, ``mm_token_type_ids``, position ids), except pixel values and grids.
    """
    import torch

    ids = prepared["inputs"]["input_ids"][0]
    n = int(ids.shape[0])
    if max_tokens <= 0 or n <= max_tokens:
        return prepared, False
    hits = torch.isin(ids, torch.tensor(sorted(protected), dtype=ids.dtype)).nonzero()
    keep_from = int(hits.max()) + 1 if len(hits) else 0
    if keep_from > max_tokens:
        return None, False
    inputs = {}
    for k, v in prepared["inputs"].items():
        seq = torch.is_tensor(v) and v.dim() >= 2 and v.shape[-1] == n and not k.startswith("pixel_values") \
            and not k.endswith("grid_thw")
        inputs[k] = v[..., :max_tokens] if seq else v
    return {**prepared, "inputs": inputs, "labels": prepared["labels"][..., :max_tokens]}, True


class PreparedSamples:
    """Map-style dataset: index ``k`` -> prepared sample of (``start_step + k // accum``, ``k % accum``)."""

    def __init__(self, cfg: DataConfig, seed: int, adapter: Any, frame_mode: str, start_step: int, max_steps: int,
                 rank: int, world: int, accum: int, data: Any = None) -> None:
        """``adapter``: the student's ``StudentAdapter`` (holds the processor)."""
        self.cfg, self.seed, self.adapter, self.frame_mode = cfg, seed, adapter, frame_mode
        self.start, self.max_steps, self.rank, self.world, self.accum = start_step, max_steps, rank, world, accum
        self._data, self._pid = data, os.getpid()
        self._protected = _protected_ids(adapter) if cfg.max_tokens > 0 else set()
        self._teacher_dim = getattr(data, "teacher_dim", 0)
        self._bad = dict(getattr(data, "bad", {}))

    def __len__(self) -> int:
        return max(self.max_steps - self.start, 0) * self.accum

    def __getstate__(self) -> dict:  # spawn-started workers: reopen the stores there, do not pickle readers
        return {**self.__dict__, "_data": None}

    def _reader(self) -> Any:
        from geovr.train.data import TrainData

        if self._data is None or self._pid != os.getpid():  # each worker opens its own store readers
            self._data, self._pid = TrainData(self.cfg, self.seed, check=False), os.getpid()
            self._data.teacher_dim, self._data.bad = self._teacher_dim, dict(self._bad)  # the main process's checks
        return self._data

    def __getitem__(self, k: int) -> dict:
        from geovr.train.student.collate import prepare_sample

        data = self._reader()
        step, micro = self.start + k // self.accum, k % self.accum
        pos = data.position(step, micro, self.rank, self.world, self.accum)
        for skipped in range(MAX_REPLACEMENTS):
            prepared = prepare_sample(self.adapter, data.sample(pos + skipped * len(data)), self.frame_mode)
            prepared, truncated = fit_max_tokens(prepared, self.cfg.max_tokens, self._protected)
            if prepared is not None:
                return {**prepared, "data_meta": {"skipped": skipped, "truncated": int(truncated)}}
        raise RuntimeError(f"{MAX_REPLACEMENTS} items in a row have a video longer than data.max_tokens="
                           f"{self.cfg.max_tokens} tokens: raise it, or lower the frames' pixel budget")


def _identity(sample: dict) -> dict:
    return sample


def sample_loader(samples: PreparedSamples, workers: int, prefetch: int = 2):
    """An ordered ``DataLoader`` over ``samples`` (one prepared sample per item; 0 workers = in process)."""
    import torch

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # the processor's tokenizer runs in forked workers
    from geovr.shared.proc import die_with_parent

    return torch.utils.data.DataLoader(samples, batch_size=None, shuffle=False, num_workers=workers,
                                       collate_fn=_identity, prefetch_factor=prefetch if workers else None,
                                       persistent_workers=False, worker_init_fn=die_with_parent if workers else None)
