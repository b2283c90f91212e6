"""Deterministic per-epoch item order with O(1) amortised cost per sample.

``EpochOrder(seed, n)[position]`` is item ``perm(seed, position // n)[position % n]`` where
``perm(seed, e) = np.random.default_rng([seed, e]).permutation(n)`` — the same order geovr has
always used, so checkpoints of earlier runs resume onto the same samples. The permutation of an
epoch is built once (O(n), ~10 ms at 590k items) and cached; a sample then costs one array look-up.
Only the ``keep`` most recently used epochs are held (``n`` int64 each), so memory stays bounded
and positions that straddle an epoch boundary (ranks, accumulation) do not rebuild.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

__all__ = ["EpochOrder", "epoch_permutation"]


def epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order of epoch ``epoch``: a permutation of ``[0, n)`` that depends only on ``(seed, epoch, n)``."""
    return np.random.default_rng([int(seed), int(epoch)]).permutation(n)


class EpochOrder:
    """Maps a global sample position to an item index, caching the permutation of recent epochs."""

    def __init__(self, seed: int, n: int, keep: int = 2) -> None:
        if n <= 0:
            raise ValueError(f"EpochOrder needs at least one item, got n={n}")
        if seed < 0:
            raise ValueError(f"seed must be >= 0 (numpy seeds are non-negative), got {seed}")
        self.seed = int(seed)
        self.n = int(n)
        self.keep = max(1, int(keep))
        self._perms: OrderedDict[int, np.ndarray] = OrderedDict()

    def _perm(self, epoch: int) -> np.ndarray:
        perm = self._perms.get(epoch)
        if perm is None:
            perm = epoch_permutation(self.seed, epoch, self.n)
            self._perms[epoch] = perm
            while len(self._perms) > self.keep:
                self._perms.popitem(last=False)
        else:
            self._perms.move_to_end(epoch)
        return perm

    def __getitem__(self, position: int) -> int:
        if position < 0:
            raise IndexError(f"sample position must be >= 0, got {position}")
        epoch, offset = divmod(int(position), self.n)
        return int(self._perm(epoch)[offset])
