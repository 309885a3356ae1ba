"""Compute cycles of a GEMM on a systolic array: hand-worked counts and properties."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.dataflow import compute_cycles
from hwsim.errors import HwsimError

# -- SCALE-Sim v2 mode: counts derived by hand from scale-sim-v2's code -----------------------
# Lines per fold are the rows of the skewed demand matrices (skew_matrix adds width - 1 rows);
# double_buffered_scratchpad.service_memory_requests reports the cycle of the last line, i.e.
# total lines - 1.


def test_scalesim_os_4x3x2_on_2x2():
    # systolic_compute_os: Sr = M = 4, Sc = N = 2, T = K = 3 -> 2 row folds x 1 col fold.
    # ifmap demand per fold: T + (cols - 1) = 4 rows, skewed over 2 columns -> 4 + 1 = 5 lines.
    # 2 folds -> 10 lines -> last line at cycle 9.
    assert compute_cycles(4, 3, 2, 2, 2, "os", scalesim=True).cycles == 9


def test_scalesim_ws_4x3x2_on_2x2():
    # systolic_compute_ws: Sr = K = 3, Sc = N = 2, T = M = 4 -> 2 row folds x 1 col fold.
    # ifmap demand per fold: rows (2, weight load) + T (4) + cols - 1 (1) = 7 rows, skewed over
    # 2 columns -> 8 lines. 2 folds -> 16 lines -> 15.
    assert compute_cycles(4, 3, 2, 2, 2, "ws", scalesim=True).cycles == 15


def test_scalesim_is_4x3x2_on_2x2():
    # systolic_compute_is: Sr = K = 3, Sc = M = 4, T = N = 2 -> 2 row folds x 2 col folds.
    # filter demand per fold: rows (2) + T (2) + cols - 1 (1) = 5 rows, skew +1 -> 6 lines.
    # 4 folds -> 24 lines -> 23.
    assert compute_cycles(4, 3, 2, 2, 2, "is", scalesim=True).cycles == 23


def test_scalesim_os_conv_on_4x4():
    # Topology row: ifmap 5x5, filter 3x3, 2 channels, 3 filters, stride 1 -> 3x3 ofmap.
    # operand_matrix: M = 9 pixels, K = 3*3*2 = 18, N = 3. Row folds ceil(9/4) = 3, col folds 1.
    # Per fold 4 + 4 + 18 - 2 = 24 lines; 3 folds = 72 lines -> 71.
    assert compute_cycles(9, 18, 3, 4, 4, "os", scalesim=True).cycles == 71


def test_scalesim_ws_on_8x8():
    # M = 100, K = 20, N = 10: row folds ceil(20/8) = 3, col folds ceil(10/8) = 2 -> 6 folds.
    # Per fold 2*8 + 8 + 100 - 2 = 122 lines; 6 * 122 = 732 lines -> 731.
    assert compute_cycles(100, 20, 10, 8, 8, "ws", scalesim=True).cycles == 731


# -- Default (physically complete) mode: worked by hand -----------------------------------------


def test_os_one_fold_on_2x2():
    # M = 2, K = 3, N = 2 fills the array once. PE(0,0) sees operand pairs in cycles 0..2,
    # PE(1,1) (skew 1 + 1) in cycles 2..4: 5 cycles of compute; the 2 rows of accumulators then
    # shift out of the bottom edge in cycles 5 and 6 -> 7 = 2*2 + 2 + 3 - 2.
    sched = compute_cycles(2, 3, 2, 2, 2, "os")
    assert (sched.folds, sched.load_cycles, sched.skew_cycles, sched.stream_cycles, sched.drain_cycles) \
        == (1, 0, 2, 3, 2)
    assert sched.cycles == 7


def test_ws_one_fold_on_2x2():
    # K = 2 rows x N = 2 cols of weights: 2 cycles to shift them in. Input m enters row i at
    # cycle m + i and reaches PE(i, j) at m + i + j; the sum of input m leaves PE(1, j) at
    # m + 1 + j, the last (m = 2, j = 1) at cycle 4 -> 5 cycles. 2 + 5 = 7.
    assert compute_cycles(3, 2, 2, 2, 2, "ws").cycles == 7


def test_is_two_col_folds_on_2x2():
    # IS: rows <- K = 2, cols <- M = 3 (2 col folds), N = 4 weight rows stream.
    # Per fold: preload 2 + skew 2 + 4 = 8; 2 folds -> 16.
    assert compute_cycles(3, 2, 4, 2, 2, "is").cycles == 16


def test_os_four_folds_on_4x4():
    # M = 5 -> 2 row folds, N = 6 -> 2 col folds; per fold 2*4 + 4 + 4 - 2 = 14 -> 4 * 14 = 56.
    sched = compute_cycles(5, 4, 6, 4, 4, "os")
    assert (sched.row_folds, sched.col_folds, sched.fold_cycles, sched.cycles) == (2, 2, 14, 56)


def test_groups_run_back_to_back():
    # 3 GEMMs of 1x1x1 on a 1x1 OS array: 1 MAC + 1 drain cycle each -> 6. SCALE-Sim runs each
    # group as its own single-channel layer of 1 row, reported as 1 - 1 = 0 cycles: 3 x 0.
    assert compute_cycles(1, 1, 1, 1, 1, "os", groups=3).cycles == 6
    assert compute_cycles(1, 1, 1, 1, 1, "os", groups=3, scalesim=True).cycles == 0


@pytest.mark.parametrize("args", [(0, 1, 1, 1, 1, "os"), (1, 1, 1, -2, 1, "ws"), (1, 1.5, 1, 1, 1, "is")])
def test_compute_cycles_wrong_size(args):
    with pytest.raises(HwsimError, match=r"^`\w+` must be a positive integer, not -?[\d.]+$"):
        compute_cycles(*args)


def test_compute_cycles_wrong_dataflow():
    with pytest.raises(HwsimError, match=r"^`dataflow` must be one of os, ws, is, not 'rs'$"):
        compute_cycles(1, 1, 1, 1, 1, "rs")


# -- Properties -----------------------------------------------------------------------------------

dims = st.integers(1, 300)
sides = st.integers(1, 32)
dataflows = st.sampled_from(["os", "ws", "is"])


@settings(max_examples=100, deadline=None)
@given(dims, dims, dims, sides, sides, dataflows)
def test_cycles_at_least_the_ideal(m, k, n, rows, cols, dataflow):
    ideal = math.ceil(m * k * n / (rows * cols))
    assert compute_cycles(m, k, n, rows, cols, dataflow).cycles >= ideal
    # SCALE-Sim's final "- 1" can undercut the ideal by one cycle (a 1x1 array, no skew).
    assert compute_cycles(m, k, n, rows, cols, dataflow, scalesim=True).cycles >= ideal - 1


@settings(max_examples=100, deadline=None)
@given(dims, dims, dims, sides, sides, dataflows)
def test_scalesim_differs_only_by_os_drain_and_one_cycle(m, k, n, rows, cols, dataflow):
    default = compute_cycles(m, k, n, rows, cols, dataflow)
    scalesim = compute_cycles(m, k, n, rows, cols, dataflow, scalesim=True)
    drain = default.folds * rows if dataflow == "os" else 0
    assert default.cycles - scalesim.cycles == drain + 1


@settings(max_examples=100, deadline=None)
@given(dims, dims, dims, sides, sides, st.integers(0, 8), st.integers(0, 8), dataflows)
def test_bigger_array_never_more_folds_or_stream_cycles(m, k, n, rows, cols, more_rows, more_cols, dataflow):
    small = compute_cycles(m, k, n, rows, cols, dataflow)
    big = compute_cycles(m, k, n, rows + more_rows, cols + more_cols, dataflow)
    assert big.folds <= small.folds
    assert big.folds * big.stream_cycles <= small.folds * small.stream_cycles


def test_bigger_array_can_cost_more_cycles():
    # Fill and drain cross the whole physical array: a 1x1x1 GEMM takes 2 cycles on 1x1 but
    # 2*2 + 2 + 1 - 2 = 5 on 2x2. Plain monotonicity in the array size does not hold.
    assert compute_cycles(1, 1, 1, 1, 1, "os").cycles == 2
    assert compute_cycles(1, 1, 1, 2, 2, "os").cycles == 5


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.integers(1, 300), sides, sides,
       st.integers(1, 4), st.integers(1, 4), dataflows, st.booleans())
def test_scaling_array_to_fit_exactly_never_costs_more(fr, fc, t, rows, cols, a, b, dataflow, scalesim):
    # What does hold: scaling the array by integer factors (a, b) when the spatial GEMM extents
    # are multiples of the new sides (no partial folds) never increases cycles.
    sr, sc = fr * rows * a, fc * cols * b
    extent = {"os": (sr, t, sc), "ws": (t, sr, sc), "is": (sc, sr, t)}[dataflow]
    small = compute_cycles(*extent, rows, cols, dataflow, scalesim=scalesim)
    big = compute_cycles(*extent, rows * a, cols * b, dataflow, scalesim=scalesim)
    assert big.cycles <= small.cycles


def test_pe_pipeline_per_dataflow():
    # 4x4 array, M=K=N=4: one fold. os adds the 2 pipeline stages once (the last accumulator
    # settles 2 cycles later): 2*4 + 4 + 4 - 2 + 2 = 16. ws/is add them in each of the 4 PEs a
    # partial sum passes down a column: 14 + 2*4 = 22. SCALE-Sim mode ignores them.
    assert compute_cycles(4, 4, 4, 4, 4, "os", pe_pipeline=2).cycles == 16
    assert compute_cycles(4, 4, 4, 4, 4, "ws", pe_pipeline=2).cycles == 22
    assert compute_cycles(4, 4, 4, 4, 4, "is", pe_pipeline=2).cycles == 22
    assert compute_cycles(4, 4, 4, 4, 4, "os", pe_pipeline=2, scalesim=True).cycles == 4 + 4 + 4 - 2 - 1


def test_pe_pipeline_wrong():
    with pytest.raises(HwsimError, match=r"^`pe_pipeline` must be a non-negative integer, not -1$"):
        compute_cycles(1, 1, 1, 1, 1, "os", pe_pipeline=-1)
