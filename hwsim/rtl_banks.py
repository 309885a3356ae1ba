"""Bank conflicts of the generated top's activation buffer: the service cycles of every fold.

With fold overlap the activation buffer is ``B`` banks (:func:`contract.act_banks`: buffer word
``i`` in bank ``i mod B``), one read port each, and the operand fetch
(:class:`rtl.im2col.OperandFetch`) serves a step's rows in as many cycles as its busiest bank
has distinct words among the rows inside the input (at least one). Row ``r`` of row tile ``t``
reads, at step ``(ky, kx, cw)`` of fold group ``g``, activation word ``g * plane + ((iy0 + ky) *
in_w + ix0 + kx) * PW + cw * ks`` (``PW`` words per pixel; ``ks`` 1, or ``PW`` depthwise) of
buffer word ``word div act_beat``.

Adding a common offset ``A * q`` to every row's word (``A`` the act beat) adds ``q`` to every
buffer word: the same words stay equal and the banks rotate, so a step's cycles depend only
on the row tile, ``(ky, kx)`` and the offset's residue mod ``A`` -- that is what is counted,
then weighted by how often each residue occurs among a fold's ``(g, cw)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.rtl_plan import LayerPlan, TopGeometry

__all__ = ["FoldCosts", "fold_costs"]


@dataclass(frozen=True)
class FoldCosts:
    """Service cycles of a layer's folds on a banked top.

    ``fold[t, g]``: the cycles of every step of a fold of row tile ``t`` and fold group ``g``
    summed (each of its output tiles' folds alike); ``last[t, j]``: the cycles of step ``KS - 1
    - j`` (``j`` 0 and 1) of row tile ``t``'s last fold (group ``G - 1``), 1 where the fold has
    no such step."""

    fold: np.ndarray
    last: np.ndarray


def _distinct_per_bank(index: np.ndarray, banks: int) -> np.ndarray:
    """Per row of ``index`` (buffer words, -1 where the row reads nothing): the most distinct
    words in one bank, at least 1."""
    words = np.sort(index, axis=1)
    first = np.ones_like(words, dtype=bool)
    first[:, 1:] = words[:, 1:] != words[:, :-1]
    first &= words >= 0
    tiles = np.broadcast_to(np.arange(len(words))[:, None], words.shape)
    counts = np.bincount((tiles * banks + words % banks)[first], minlength=len(words) * banks)
    return np.maximum(counts.reshape(len(words), banks).max(axis=1), 1)


def fold_costs(geo: TopGeometry, p: LayerPlan) -> FoldCosts | None:
    """The service cycles of ``p``'s folds on ``geo`` (module docstring); None when every step
    takes one cycle (no banks, or one row)."""
    banks = geo.act_banks
    if banks <= 1:
        return None
    rows, beat = geo.rows, geo.act_beat
    kh, kw = p.kernel
    sh, sw = p.stride
    ph, pw = p.padding
    pixel = p.pixel_words
    cw_count, cw_step = (1, pixel) if p.depthwise else (p.channel_words, 1)
    plane = p.depthwise if p.depthwise else p.in_h * p.in_w * p.channel_words
    m = np.arange(p.row_tiles * rows).reshape(p.row_tiles, rows)
    ok = m < p.out_h * p.out_w
    iy0, ix0 = (m // p.out_w) * sh - ph, (m % p.out_w) * sw - pw
    residues = min(beat, (p.fold_groups - 1) * plane + (cw_count - 1) * cw_step + 1)
    # cost[t, ky, kx, rho]: a step whose common offset has residue rho
    cost = np.empty((p.row_tiles, kh, kw, residues), dtype=np.int64)
    for ky in range(kh):
        for kx in range(kw):
            iy, ix = iy0 + ky, ix0 + kx
            inside = ok & (iy >= 0) & (iy < p.in_h) & (ix >= 0) & (ix < p.in_w)
            word = (iy * p.in_w + ix) * pixel
            for rho in range(residues):
                cost[:, ky, kx, rho] = _distinct_per_bank(np.where(inside, (word + rho) // beat, -1), banks)
    # how often each residue is a step's offset in a fold of group g: offsets g * plane + cw * ks
    groups = np.arange(p.fold_groups)
    offsets = (groups[:, None] * plane + np.arange(cw_count)[None, :] * cw_step) % beat
    weights = np.zeros((p.fold_groups, residues), dtype=np.int64)
    np.add.at(weights, (np.repeat(groups, cw_count), offsets.ravel()), 1)
    fold = cost.sum(axis=(1, 2)) @ weights.T
    last = np.ones((p.row_tiles, 2), dtype=np.int64)
    for j in range(min(2, p.steps)):
        s = p.steps - 1 - j
        ky, kx, cw = s // (kw * cw_count), s // cw_count % kw, s % cw_count
        last[:, j] = cost[:, ky, kx, ((p.fold_groups - 1) * plane + cw * cw_step) % beat]
    return FoldCosts(fold, last)
