"""Synthetic stroke images for model tests: a few white bars on black."""

from __future__ import annotations

import torch


def random_bars(n: int, size: int, seed: int = 0, width: int = 4, margin: int = 4) -> torch.Tensor:
    """Float (n, 1, size, size) in [0, 1], white ink on black: per image three bars ``width`` px
    thick and ``size // 3`` long, each horizontal or vertical at random, starting at a random row
    and column in [margin, size // 2). Deterministic in ``seed``."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 1, size, size)
    for i in range(n):
        for _ in range(3):
            r, c = torch.randint(margin, size // 2, (2,), generator=g).tolist()
            if torch.rand(1, generator=g).item() < 0.5:
                x[i, 0, r : r + width, c : c + size // 3] = 1.0
            else:
                x[i, 0, r : r + size // 3, c : c + width] = 1.0
    return x
