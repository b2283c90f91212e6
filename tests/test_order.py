"""Sample order: O(1) per sample, same order as the per-position permutation, exact on resume."""

from __future__ import annotations

import numpy as np
import pytest

from geovr.train import order as order_mod
from geovr.train.order import EpochOrder


def reference(seed: int, n: int, position: int) -> int:
    return int(np.random.default_rng([seed, position // n]).permutation(n)[position % n])


def test_order_matches_reference_and_builds_each_epoch_once(monkeypatch) -> None:
    calls: list[int] = []
    real = order_mod.epoch_permutation

    def counting(seed, epoch, n):
        calls.append(epoch)
        return real(seed, epoch, n)

    monkeypatch.setattr(order_mod, "epoch_permutation", counting)
    n, seed = 37, 5
    o = EpochOrder(seed, n)
    got = [o[p] for p in range(3 * n)]
    assert got == [reference(seed, n, p) for p in range(3 * n)]
    assert calls == [0, 1, 2]  # one O(n) build per epoch, then O(1) look-ups
    for e in range(3):  # every epoch is a permutation
        assert sorted(got[e * n:(e + 1) * n]) == list(range(n))
    assert got[:n] != got[n:2 * n]  # epochs reshuffle


def test_order_depends_only_on_seed_and_position() -> None:
    n = 50
    a, b = EpochOrder(1, n), EpochOrder(1, n)
    positions = [123, 7, 149, 0, 51, 99, 100]  # any access pattern (resume, ranks straddling epochs)
    assert [a[p] for p in positions] == [reference(1, n, p) for p in positions]
    assert [b[p] for p in reversed(positions)] == [reference(1, n, p) for p in reversed(positions)]
    assert [EpochOrder(2, n)[p] for p in range(n)] != [a[p] for p in range(n)]
    assert len(a._perms) <= a.keep
    with pytest.raises(IndexError):
        a[-1]
    with pytest.raises(ValueError):
        EpochOrder(0, 0)
