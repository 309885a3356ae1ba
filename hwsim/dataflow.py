"""Compute cycles of a GEMM on a ``rows x cols`` systolic array, in closed form.

A GEMM ``(M x K) @ (K x N)`` is laid onto the array as SCALE-Sim v2 does it: two of its
dimensions are spatial (one on the rows, ``Sr``, one on the columns, ``Sc``) and the third
streams through the array in time (``T``):

========  ===========  ===========  ==========  ==========================================
dataflow  rows (Sr)    cols (Sc)    time (T)    stationary in the PEs during a fold
========  ===========  ===========  ==========  ==========================================
``os``    M (pixels)   N (filters)  K           the ``rows x cols`` output accumulators
``ws``    K            N (filters)  M           a ``rows x cols`` block of weights
``is``    K            M (pixels)   N           a ``rows x cols`` block of inputs
========  ===========  ===========  ==========  ==========================================

A GEMM larger than the array is cut into ``folds = ceil(Sr / rows) * ceil(Sc / cols)`` array-
sized pieces that run back to back (``groups`` equal GEMMs, e.g. the groups of a depthwise
convolution, simply multiply the folds). Every fold costs the *physical* array, not only the PEs
it uses: operands and results cross all ``rows`` and ``cols`` PEs whatever the GEMM's size.

Default mode (physically complete)
----------------------------------
The microarchitecture: operands enter at the left and top edges, skewed by one cycle per row and
column, and move one PE per cycle; results leave at the bottom edge. Per fold:

* ``os``: ``rows + cols - 2`` cycles of skew until PE ``(rows-1, cols-1)`` sees its first operand
  pair, ``T = K`` reduction cycles, then ``rows`` cycles to shift the ``rows x cols`` accumulators
  out through the bottom edge: ``2*rows + cols + K - 2``.
* ``ws``: ``rows`` cycles to shift the weight block in from the top, then ``T = M`` input rows
  stream in with skew; the last partial sum leaves the bottom of the last column
  ``M + rows + cols - 2`` cycles after the first input entered: ``2*rows + cols + M - 2``.
* ``is``: the same with the input block preloaded and ``T = N`` weight rows streaming:
  ``2*rows + cols + N - 2``.

So every dataflow costs ``2*rows + cols + T - 2`` per fold (the closed form of the SCALE-Sim
paper, Samajdar et al., ISPASS 2020), and without overlap (``overlap=False``, the naive array and
the generated RTL top) ``cycles = folds * (2*rows + cols + T - 2)``: the fill of fold ``i + 1``
waits for the drain of fold ``i``.

With ``overlap=True`` the folds are pipelined as in a TPU- or Gemmini-style array: every PE has
a second (shadow) register for the value that changes between folds -- the accumulator that
drains (``os``) or the stationary weight/input that preloads (``ws``/``is``) -- so fold ``i + 1``
streams in right behind fold ``i``. A fold then occupies the array for ``max(T, rows)`` cycles
(the ``rows``-cycle drain or preload through the shadow registers must finish before they are
needed again) and skew, pipeline and the last drain are paid once:
``cycles = (folds - 1) * max(T, rows) + one fold``.

SCALE-Sim v2 mode (``scalesim=True``)
-------------------------------------
Equal to the compute cycles SCALE-Sim v2 reports for the same GEMM, array and dataflow with
stall-free memory. Its compute units build per-fold demand matrices with one row per cycle,
then the memory model turns the row count into cycles:

* ``scalesim/compute/systolic_compute_os.py`` (``create_ifmap_demand_mat``,
  ``create_filter_demand_mat``, ``create_ofmap_demand_mat``): per fold ``T`` operand rows plus
  ``cols - 1`` (ifmap) or ``rows - 1`` (filter) gap rows, then ``skew_matrix`` adds
  ``width - 1`` rows, so ``rows + cols + K - 2`` rows per fold. The ``rows`` cycles of output
  drain that its paper counts (``2*Sr + Sc + T - 2``) are missing from the OS count.
* ``systolic_compute_ws.py`` / ``systolic_compute_is.py`` (``create_ifmap_demand_mat`` and
  ``create_filter_demand_mat`` respectively): a ``rows``-row weight (input) load prefix, ``T``
  rows, ``cols - 1`` drain rows, skewed by ``rows - 1``: ``2*rows + cols + T - 2`` per fold,
  the same as the default mode.
* ``scalesim/memory/double_buffered_scratchpad_mem.py``
  (``double_buffered_scratchpad.service_memory_requests``): demand row ``i`` is issued at cycle
  ``i`` (plus stalls) and ``total_cycles`` is the cycle of the *last* ofmap row, i.e. the row
  count minus one; ``single_layer_sim.calc_report_data`` reports it via
  ``get_total_compute_cycles``. This subtracts one cycle per layer (not per fold).

Hence ``os``: ``folds * (rows + cols + K - 2) - 1``; ``ws``/``is``:
``folds * (2*rows + cols + T - 2) - 1``. SCALE-Sim runs one GEMM per layer: a depthwise layer
(a topology row named ``DP...``, ``topology_utils.topologies.load_arrays_conv``) is split into
one single-channel layer per channel, each with its own ``- 1``, and a grouped convolution can
only be written as one row per group. So ``groups`` equal GEMMs cost ``groups`` times one
group's count: the ``- 1`` is taken once per group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hwsim.errors import HwsimError

#: GEMM dimension (``"m"``, ``"k"``, ``"n"``) on the array rows, the array columns, and streamed
#: in time, per dataflow.
LAYOUT: dict[str, tuple[str, str, str]] = {"os": ("m", "n", "k"), "ws": ("k", "n", "m"), "is": ("k", "m", "n")}


@dataclass(frozen=True)
class Schedule:
    """How ``groups`` equal GEMMs run on the array: fold count and the cycles of one fold.

    One fold is ``load_cycles`` (preloading the stationary block; 0 for ``os``), ``skew_cycles``
    (``rows + cols - 2``, operands reaching the far corner), ``stream_cycles`` (``T``) and
    ``drain_cycles`` (shifting ``os`` accumulators out; 0 otherwise) and ``pipeline_cycles``
    (the PE pipeline, see :func:`compute_cycles`). ``cycles`` is all folds back to back, minus
    SCALE-Sim's one cycle per group in ``scalesim`` mode.
    """

    dataflow: str
    rows: int
    cols: int
    sr: int
    sc: int
    groups: int
    row_folds: int
    col_folds: int
    load_cycles: int
    skew_cycles: int
    stream_cycles: int
    drain_cycles: int
    pipeline_cycles: int
    scalesim: bool
    overlap: bool = False

    @property
    def folds(self) -> int:
        return self.groups * self.row_folds * self.col_folds

    @property
    def fold_cycles(self) -> int:
        return self.load_cycles + self.skew_cycles + self.stream_cycles + self.drain_cycles + self.pipeline_cycles

    @property
    def period_cycles(self) -> int:
        """Cycles between the starts of two folds: a whole fold, or ``max(T, rows)`` pipelined."""
        return max(self.stream_cycles, self.rows) if self.overlap else self.fold_cycles

    @property
    def cycles(self) -> int:
        if self.overlap:
            return (self.folds - 1) * self.period_cycles + self.fold_cycles
        return self.folds * self.fold_cycles - (self.groups if self.scalesim else 0)


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise HwsimError(f"`{name}` must be a positive integer, not {value!r}")


def compute_cycles(m: int, k: int, n: int, rows: int, cols: int, dataflow: str, *,
                   groups: int = 1, pe_pipeline: int = 0, scalesim: bool = False,
                   overlap: bool = False) -> Schedule:
    """Schedule of ``groups`` GEMMs ``(m x k) @ (k x n)`` on a ``rows x cols`` array.

    Per fold (``T`` is ``k``, ``m``, ``n`` for ``os``, ``ws``, ``is``):

    * default: ``2*rows + cols + T - 2`` for every dataflow (``os``: skew ``rows + cols - 2``,
      ``T``, drain ``rows``; ``ws``/``is``: preload ``rows``, skew, ``T``);
    * ``scalesim``: ``rows + cols + T - 2`` for ``os`` (no drain), ``2*rows + cols + T - 2`` for
      ``ws``/``is``; minus one cycle per group (SCALE-Sim runs each group as its own layer).

    ``pe_pipeline`` is the number of pipeline registers between a PE's operand registers and its
    accumulator (``cost_models.PIPELINE_CYCLES``; 0 for the single-cycle PE of the papers). The
    default mode adds them once per fold for ``os`` (the last accumulator settles that much later;
    measured on the generated RTL: a fold is ``2*rows + cols + K`` with 2 pipeline stages) and once
    per row for ``ws``/``is``, where partial sums pass through every PE of a column. SCALE-Sim
    mode ignores it (SCALE-Sim's PEs are single-cycle).

    ``cycles = groups * ceil(Sr / rows) * ceil(Sc / cols) * per_fold`` (``- groups`` in
    ``scalesim`` mode); with ``overlap`` (default mode only) the folds are pipelined:
    ``(folds - 1) * max(T, rows) + per_fold``. See the module docstring for where each SCALE-Sim term comes from. Raises
    :class:`HwsimError` on a non-positive size or an unknown dataflow.
    """
    sizes = (m, k, n, rows, cols, groups)
    if not all(type(v) is int and v > 0 for v in sizes):
        _check_positive(m=m, k=k, n=n, rows=rows, cols=cols, groups=groups)
    if type(pe_pipeline) is not int or pe_pipeline < 0:
        raise HwsimError(f"`pe_pipeline` must be a non-negative integer, not {pe_pipeline!r}")
    if dataflow not in LAYOUT:
        raise HwsimError(f"`dataflow` must be one of {', '.join(LAYOUT)}, not {dataflow!r}")
    extent = {"m": m, "k": k, "n": n}
    on_rows, on_cols, in_time = (extent[d] for d in LAYOUT[dataflow])
    output_stationary = dataflow == "os"
    return Schedule(
        dataflow=dataflow, rows=rows, cols=cols, sr=on_rows, sc=on_cols, groups=groups,
        row_folds=math.ceil(on_rows / rows), col_folds=math.ceil(on_cols / cols),
        load_cycles=0 if output_stationary else rows,
        skew_cycles=rows + cols - 2,
        stream_cycles=in_time,
        drain_cycles=rows if output_stationary and not scalesim else 0,
        pipeline_cycles=0 if scalesim else pe_pipeline * (1 if output_stationary else rows),
        scalesim=scalesim,
        overlap=overlap and not scalesim,
    )
