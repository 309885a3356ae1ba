"""hwsim.rtl_banks: the activation banks' service cycles per fold, against a step-by-step count."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from contract import act_banks
from hwsim.rtl_banks import fold_costs
from hwsim.rtl_plan import LayerShape, TopGeometry, plan

# mac int8, 4 x 4 with fold overlap: 5 banks, 8 activations a buffer word, 4 depthwise lanes
BANKED = TopGeometry(pe="mac", bits=8, rows=4, cols=4, lanes=1, max_shift=7, max_steps=4096,
                     acc_bits=24, bias_bits=32, dim_bits=12, act_words=1 << 16, weight_words=4096,
                     param_words=256, out_words=4096, psum_words=0, act_beat=8, dw_lanes=4,
                     fold_overlap=True)


def stepwise(geo: TopGeometry, p) -> tuple[np.ndarray, np.ndarray]:
    """Every step's cycles by walking the rows: the words they read (module docstring's
    address), the most distinct words in one bank; fold and last-two-step sums as FoldCosts."""
    banks = act_banks(geo.rows)[0]
    kh, kw = p.kernel
    cw_count = 1 if p.depthwise else p.channel_words
    plane = p.depthwise if p.depthwise else p.in_h * p.in_w * p.channel_words
    fold = np.zeros((p.row_tiles, p.fold_groups), dtype=int)
    last = np.ones((p.row_tiles, 2), dtype=int)
    for t in range(p.row_tiles):
        for g in range(p.fold_groups):
            costs = []
            for ky in range(kh):
                for kx in range(kw):
                    for cw in range(cw_count):
                        per_bank: dict[int, set[int]] = {}
                        for r in range(geo.rows):
                            m = t * geo.rows + r
                            oy, ox = divmod(m, p.out_w)
                            iy, ix = oy * p.stride[0] - p.padding[0] + ky, ox * p.stride[1] - p.padding[1] + kx
                            if m >= p.out_h * p.out_w or not (0 <= iy < p.in_h and 0 <= ix < p.in_w):
                                continue
                            if p.depthwise:
                                word = g * plane + (iy * p.in_w + ix) * p.pixel_words
                            else:
                                word = g * plane + (iy * p.in_w + ix) * p.channel_words + cw
                            index = word // geo.act_beat
                            per_bank.setdefault(index % banks, set()).add(index)
                        costs.append(max([len(s) for s in per_bank.values()] + [1]))
            fold[t, g] = sum(costs)
            if g == p.fold_groups - 1:
                last[t, :min(2, len(costs))] = costs[::-1][:2]
    return fold, last


@pytest.mark.parametrize("shape", [
    LayerShape(True, 3, 6, 6, 6, (3, 3), (1, 1), (1, 1)),         # 3 channels: < 1 word a pixel
    LayerShape(True, 16, 4, 7, 9, (3, 3), (2, 2), (1, 1)),        # 2 words a pixel, stride 2
    LayerShape(True, 40, 8, 5, 5, (3, 3), (1, 1), (0, 0)),        # 5 words a pixel = the banks
    LayerShape(True, 12, 6, 6, 5, (1, 3), (1, 2), (0, 1), groups=3),
    LayerShape(True, 8, 8, 5, 5, (3, 3), (2, 2), (1, 1), groups=8),  # depthwise, 2 fold groups
    LayerShape(True, 24, 24, 9, 11, (5, 5), (1, 1), (2, 2), groups=24),
    LayerShape(False, 100, 10),
], ids=["c3", "s2", "pitch5", "grouped", "dw", "dw5x5", "linear"])
def test_fold_costs_equal_a_stepwise_count(shape: LayerShape) -> None:
    p = plan(BANKED, shape)
    costs = fold_costs(BANKED, p)
    assert costs is not None
    fold, last = stepwise(BANKED, p)
    assert np.array_equal(costs.fold, fold) and np.array_equal(costs.last, last)


def test_fold_costs_by_hand() -> None:
    """test_rtl_plan's depthwise 3x3 stride 2 (8 channels on 5x5): a pixel is one buffer word
    in bank ix, so rows on two output lines at one ix conflict: folds of 13, 15 and 9 cycles."""
    p = plan(BANKED, LayerShape(True, 8, 8, 5, 5, (3, 3), (2, 2), (1, 1), groups=8))
    costs = fold_costs(BANKED, p)
    assert costs.fold.tolist() == [[13, 13], [15, 15], [9, 9]]
    assert costs.last.tolist() == [[2, 2], [1, 1], [1, 1]]


def test_no_banks_no_costs() -> None:
    """A naive top (a copy per row) and a one-row top serve every step in one cycle."""
    shape = LayerShape(True, 16, 4, 7, 9, (3, 3), (2, 2), (1, 1))
    assert fold_costs(dataclasses.replace(BANKED, fold_overlap=False), plan(BANKED, shape)) is None
    one_row = dataclasses.replace(BANKED, rows=1)
    assert fold_costs(one_row, plan(one_row, shape)) is None
