"""The sum and min tree of proportional prioritized replay (Schaul et al., 2016): sampling by priority
mass and the smallest priority (the largest importance weight) in O(log n)."""

from __future__ import annotations

import numpy as np


class SegmentTree:
    """A complete binary tree over `size` leaves holding sums and minima, updated in batches."""

    def __init__(self, size: int):
        self.leaves = 1 << max(1, (size - 1).bit_length())
        self.sum = np.zeros(2 * self.leaves)
        self.min = np.full(2 * self.leaves, np.inf)

    def set(self, index: np.ndarray, value: np.ndarray, min_value: np.ndarray) -> None:
        node = np.asarray(index) + self.leaves
        self.sum[node], self.min[node] = value, min_value
        node = np.unique(node // 2)
        while node[0] >= 1:
            self.sum[node] = self.sum[2 * node] + self.sum[2 * node + 1]
            self.min[node] = np.minimum(self.min[2 * node], self.min[2 * node + 1])
            if node[0] == 1:
                break
            node = np.unique(node // 2)

    @property
    def total(self) -> float:
        return float(self.sum[1])

    def find_prefix(self, mass: np.ndarray) -> np.ndarray:
        """The leaf i with sum(leaves < i) <= mass < sum(leaves <= i), for each mass."""
        node = np.ones(len(mass), dtype=np.int64)
        mass = mass.copy()
        while node[0] < self.leaves:
            left = 2 * node
            go_right = mass >= self.sum[left]
            mass -= np.where(go_right, self.sum[left], 0.0)
            node = left + go_right
        return node - self.leaves
