"""AdderNet redistribution quantization of one layer's weights (Nie et al., NeurIPS 2022), in the
form the grouped adder hardware computes.

An adder layer computes ``-sum |x - w|``. ``|x - w|`` has no commutative law, so x and w must sit
on one scale; the shared scheme takes one scale for the whole layer, which must cover the largest
weight and leaves few levels to small kernels. Redistribution takes the paper's three steps:

1. **Clustering**: output channels (kernels) are clustered by their weight range into at most
   ``groups`` groups (1-D k-means, :func:`cluster`); each group gets its own scale, shared by its
   weights and by the activations it reads.
2. **Group scales**: the hardware restricts a group's scale to the activation scale ``s`` times
   ``2**-e`` with ``e`` in [0, E] (``E = max_align``): then the activation on the group's scale is
   ``x << e`` exactly -- an alignment shift in the PE, not a multiplier and not a second rounding
   of x (the paper requantizes x per group with arbitrary scales). ``e`` is the largest value at
   which every weight of the group still fits the ``bits``-bit grid:
   ``e = clip(floor(min_o log2(qmax * s / max|W_o|)), 0, E)`` over the group's channels ``o``.
   Clustering runs on that headroom ``log2(qmax * s / max|W_o|)`` clipped to [0, E + 1] (ranges
   outside it pick the same ``e``), i.e. on the log of the weight ranges.
3. **Lossless range clamp** of weights: kernels of alignment 0 may hold weights beyond the
   activation grid ``[-2**(b-1), qmax]``. For ``x`` inside it and ``w`` above it,
   ``|x - w| = |x - qmax| + (w - qmax)`` (likewise below), so the weight is clamped to the grid and
   the per-channel constant ``sum_k |w - clamp(w)|`` (:attr:`Redistribution.compensation`, in
   integer units) is subtracted through the requantization bias -- exact in integers. The
   fourth ingredient, the outliers clamp of activations, is the ``percentile`` calibration of
   :mod:`models.calibrate`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from contract import MAX_ALIGN_LIMIT

__all__ = ["KMEANS_ITERATIONS", "Redistribution", "cluster", "redistribute"]

#: Lloyd iterations of the 1-D k-means, at most (it stops when no label changes).
KMEANS_ITERATIONS = 100


@dataclass(frozen=True)
class Redistribution:
    """Integer weights of a grouped adder layer.

    ``labels`` is each output channel's cluster, ``align`` its alignment ``e`` (the group scale is
    ``scale_in * 2**-e``), ``weight`` the clamped integer weights on that scale and
    ``compensation`` the per-channel ``sum |w - clamp(w)|`` the clamp removed.
    """

    labels: np.ndarray
    align: np.ndarray
    weight: np.ndarray
    compensation: np.ndarray

    @property
    def groups(self) -> int:
        """Distinct group scales in use (what the hardware must align to)."""
        return len(np.unique(self.align))


def cluster(values: np.ndarray, groups: int) -> np.ndarray:
    """Deterministic 1-D k-means: a label in [0, groups) per value, label order = centroid order.

    Centroids start at the ``(i + 0.5) / groups`` quantiles; each value joins its nearest centroid
    (the lower on a tie); a cluster left empty keeps its centroid.
    """
    values = np.asarray(values, dtype=float)
    centroids = np.quantile(values, (np.arange(groups) + 0.5) / groups)
    labels = np.full(values.shape, -1)
    for _ in range(KMEANS_ITERATIONS):
        new = np.argmin(np.abs(values[:, None] - centroids[None, :]), axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
        for g in range(groups):
            if np.any(labels == g):
                centroids[g] = values[labels == g].mean()
    order = np.argsort(np.argsort(centroids, kind="stable"), kind="stable")
    return order[labels]


def redistribute(w: np.ndarray, scale_in: float, bits: int, *, groups: int,
                 max_align: int) -> Redistribution:
    """Cluster, align and clamp the float weights ``w`` (output channels first) of an adder layer
    whose activations have scale ``scale_in`` and ``bits`` bits (see the module doc)."""
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"groups must be a positive integer, not {groups!r}")
    if isinstance(max_align, bool) or not isinstance(max_align, int) \
            or not 0 <= max_align <= MAX_ALIGN_LIMIT:
        raise ValueError(f"max_align must be an integer from 0 to {MAX_ALIGN_LIMIT}, not {max_align!r}")
    qmax = (1 << (bits - 1)) - 1
    flat = w.reshape(w.shape[0], -1)
    peak = np.abs(flat).max(axis=1)
    with np.errstate(divide="ignore"):
        headroom = np.clip(np.log2(qmax * scale_in / peak), 0, max_align + 1)
    labels = cluster(headroom, min(groups, w.shape[0]))
    floor_of = {g: math.floor(headroom[labels == g].min()) for g in np.unique(labels)}
    align = np.clip([floor_of[g] for g in labels], 0, max_align).astype(np.int64)
    full = np.round(flat * np.exp2(align)[:, None] / scale_in).astype(np.int64)
    clamped = np.clip(full, -(qmax + 1), qmax)
    if np.any((clamped != full) & (align[:, None] > 0)):
        raise AssertionError("an aligned group's weights must fit the grid")  # by the choice of e
    return Redistribution(labels, align, clamped.reshape(w.shape),
                          np.abs(full - clamped).sum(axis=1))
