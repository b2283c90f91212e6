"""The training input pipeline: this rank's micro-batches, prepared for the student in DataLoader
worker processes so the accelerator never waits on store reads, JPEG decoding, feature decoding
or the processor.

Micro-batch ``k`` (counted from the step the run starts or resumes at) is a pure function of
``(step, micro, rank, world, grad_accum, seed)`` through ``TrainData.position``, and the DataLoader
keeps order, so a run yields the same samples with or without workers and resumes exactly.
"""

from __future__ import annotations

import os
from typing import Any

from geovr.train.config import DataConfig


class PreparedSamples:
    """Map-style dataset: index ``k`` -> prepared sample of (``start_step + k // accum``, ``k % accum``)."""

    def __init__(self, cfg: DataConfig, seed: int, adapter: Any, frame_mode: str, start_step: int, max_steps: int,
                 rank: int, world: int, accum: int, data: Any = None) -> None:
        """``adapter``: the student's ``StudentAdapter`` (holds the processor)."""
        self.cfg, self.seed, self.adapter, self.frame_mode = cfg, seed, adapter, frame_mode
        self.start, self.max_steps, self.rank, self.world, self.accum = start_step, max_steps, rank, world, accum
        self._data, self._pid = data, os.getpid()
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
        return prepare_sample(self.adapter, data.sample(pos), self.frame_mode)


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
