"""Pareto fronts: the points no other point beats on every objective (all minimized).

A point is dominated when another is lower-or-equal on every objective and lower on one; equal
points do not dominate each other, so duplicates of a front point are all on the front.
"""

from __future__ import annotations

import numpy as np

__all__ = ["pareto_mask"]


def pareto_mask(values: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``values`` (n points x k objectives, minimized).

    Rows are visited in lexicographic order, where a point's dominators all come before it, and
    each is compared with the front kept so far only: a dominated dominator is itself dominated
    by a front point, so the front is enough (O(n log n + n * front * k)).
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"values must be a 2-D array (points x objectives), not {values.ndim}-D")
    order = np.lexsort(values.T[::-1])
    front: list[int] = []
    mask = np.zeros(len(values), dtype=bool)
    for i in order:
        if front:
            kept = values[front]
            if np.any(np.all(kept <= values[i], axis=1) & np.any(kept < values[i], axis=1)):
                continue
        front.append(i)
        mask[i] = True
    return mask
