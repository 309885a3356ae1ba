"""An output-stationary systolic array of one PE kind, running one GEMM fold at a time.

``rows x cols`` PEs; PE ``(r, c)`` accumulates ``C[r, c] = sum_k f(A[r, k], B[k, c])``. Each
input beat carries one column of A (``rows`` activations) and one row of B (``cols`` weights).
Activations enter at the left edge, row ``r`` delayed by ``r`` cycles, and move one PE right per
cycle; weights enter at the top, column ``c`` delayed by ``c`` cycles, and move one PE down per
cycle, so ``A[r, k]`` meets ``B[k, c]`` in PE ``(r, c)``, in the ``r + c``-th cycle after the
beat. The beat's flags (a pair, a fold's first) reach every PE of an anti-diagonal in the same
cycle, so one delay line of them drives the PEs' ``i_add``/``i_restart``.
After the fold's last beat has reached the far corner's accumulator, the accumulators shift down
one row per transfer and leave at the bottom edge, bottom row first.

Cycles of one fold (first input transfer to last output transfer, both included, at full rate)::

    K - 1           the cycle of the last beat (the first is cycle 0)
    + (rows - 1) + (cols - 1)   skew and hops until the last beat reaches PE (rows-1, cols-1)
    + PORT_TO_ACC_CYCLES        operand register, pipeline register, accumulator
    + rows - 1                  drain: one row per cycle
    + 1                         counting both ends
    = 2 * rows + cols + K - 2 + PIPELINE_CYCLES

that is ``2 * rows + cols + K`` with the PE's two pipeline stages: PIPELINE_CYCLES more than
:func:`hwsim.dataflow.compute_cycles`'s ``2 * rows + cols + K - 2``, which charges one cycle
per PE from operand in to accumulator (no pipeline register). See :func:`fold_cycles`. The next fold's first
beat is accepted in the cycle after the last output transfer, so that is also the period.

**Fold overlap** (``overlap=True``, ``array.fold_overlap``): the folds are pipelined. Each PE has
a drain register that takes its sum in the cycle the sum is complete (``r + c + PORT_TO_ACC_CYCLES``
after the fold's last beat), while its accumulator starts the next fold; a column drains through
those registers once its bottom one is loaded (``contract.CAPTURE_CYCLES``), bottom row first, and
the columns leave deskewed. A fold's last beat is accepted no sooner than ``rows`` cycles after
the previous fold's (``ready`` low on it until then), so fold ``f`` ends at ``T_f = max(T_{f-1} +
K_f, T_{f-1} + rows)`` and its last row leaves ``2 * rows + cols + 1`` cycles after ``T_f``
(with two pipeline stages; depthwise ``rows + 4``). The results cannot be held: the consumer
must take every row (``o_results.ready`` is ignored).

**Depthwise mode** (``dw_lanes = L > 0``, ``i_dw`` high): a fold computes ``L`` channels side by
side, column ``c < L`` channel ``c`` with its own activations: each beat then also carries
``xd[r][c]`` (row ``r``'s activation of channel ``c``), and PE ``(r, c)`` takes ``xd[r][c]`` and
``w[c]`` (and the beat's flags) from one register stage at the array edge, broadcast along its
row and down its column, instead of from its left and upper neighbours: no operand is shared
between two PEs, so none can move through the array. Every PE has its fold's last term one cycle
after the last beat at the latest, before the far corner would have it in the normal mode, so
the fold's cycles are the same. Columns ``c >= L`` compute don't-care values.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from contract import PIPELINE_CYCLES
from rtl.pe import PORT_TO_ACC_CYCLES, PESpec, check_int

__all__ = ["SystolicArray", "fold_cycles", "operand_fields"]


def operand_fields(pe: PESpec, rows: int, cols: int, dw_lanes: int = 0) -> data.StructLayout:
    """One beat of the array's operand stream: ``x`` (a column of A), ``w`` (a row of B),
    ``last`` and, with ``dw_lanes``, the depthwise mode's ``xd`` (``dw_lanes`` per row)."""
    fields = {"x": data.ArrayLayout(pe.x_shape, rows), "w": data.ArrayLayout(pe.w_shape, cols), "last": 1}
    if dw_lanes:
        fields["xd"] = data.ArrayLayout(data.ArrayLayout(pe.x_shape, dw_lanes), rows)
    return data.StructLayout(fields)


def _delayed(m: Module, value: Any, cycles: int, name: str) -> Any:
    """``value`` through ``cycles`` registers (a skew or a delay line)."""
    for i in range(cycles):
        reg = Signal.like(value, name=f"{name}_d{i}")
        m.d.sync += reg.eq(value)
        value = reg
    return value


def _taps(m: Module, value: Any, cycles: int, name: str) -> list[Any]:
    """``value`` and ``value`` delayed by 1 .. ``cycles`` cycles: one delay line, every tap."""
    taps = [value]
    for i in range(cycles):
        taps.append(_delayed(m, taps[-1], 1, f"{name}{i + 1}"))
    return taps


def fold_cycles(rows: int, cols: int, k_beats: int) -> int:
    """Cycles from a fold's first input transfer to its last output transfer, both included,
    with the stream at full rate (no idle input cycles, output always ready)."""
    return (k_beats - 1) + (rows - 1) + (cols - 1) + PORT_TO_ACC_CYCLES + (rows - 1) + 1


class SystolicArray(wiring.Component):
    """``rows x cols`` output-stationary PEs made by ``pe``, one fold at a time.

    Parameters (keyword-only)
    -------------------------
    rows, cols : int
        Array size (positive).
    pe : PESpec
        The PE (e.g. ``PESpec("mac", bits=8, k=64)``); every PE is alike.
    dw_lanes : int
        Channels of the depthwise mode (0: none; else 2 to ``cols``).
    overlap : bool
        Pipeline the folds through a drain register per PE (module docstring).

    Members
    -------
    i_operands : In(stream.Signature(StructLayout({"x": ArrayLayout(x_shape, rows),
                                                   "w": ArrayLayout(w_shape, cols), "last": 1})))
        One reduction step of the fold: ``x[r] = A[r, k]``, ``w[c] = B[k, c]``; ``last`` marks the
        fold's final step; with ``dw_lanes``, ``xd[r][c]`` the depthwise mode's activations. A
        fold is at most ``pe.steps`` beats (the accumulators are sized for that). ``ready`` is
        low from the last beat until the fold's results have all left (``overlap``: on a last
        beat until ``rows`` cycles after the fold before's).
    o_results : Out(stream.Signature(ArrayLayout(acc_shape, cols)))
        The accumulators, one row per transfer: transfer ``j`` carries row ``rows - 1 - j``.
        Back-pressure holds the drain (``overlap``: ignored, every row must be taken).
    i_dw : In(1)
        With ``dw_lanes``: the fold runs in the depthwise mode (held for the whole fold).
    """

    def __init__(self, *, rows: int, cols: int, pe: PESpec, dw_lanes: int = 0, overlap: bool = False) -> None:
        self.rows = check_int("rows", rows, 1)
        self.cols = check_int("cols", cols, 1)
        if not isinstance(pe, PESpec):
            raise TypeError(f"`pe` must be a PESpec, not {pe!r}")
        self.dw_lanes = dw_lanes if dw_lanes == 0 else check_int("dw_lanes", dw_lanes, 2, cols)
        self.overlap = bool(overlap)
        self.pe = pe
        self.kind, self.steps, self.acc_shape = pe.kind, pe.steps, pe.acc_shape
        self.x_shape, self.w_shape = pe.x_shape, pe.w_shape
        super().__init__({
            "i_operands": In(stream.Signature(operand_fields(pe, rows, cols, dw_lanes))),
            "o_results": Out(stream.Signature(data.ArrayLayout(self.acc_shape, cols))),
            **({"i_dw": In(1)} if dw_lanes else {}),
        })

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        rows, cols = self.rows, self.cols
        grid = [[self.pe.build() for _ in range(cols)] for _ in range(rows)]
        for r, line in enumerate(grid):
            for c, pe in enumerate(line):
                m.submodules[f"pe_{r}_{c}"] = pe

        beat = self.i_operands
        fire = beat.valid & beat.ready
        first = Signal(init=1)  # the next beat starts a fold
        with m.If(fire):
            m.d.sync += first.eq(beat.payload.last)

        def delayed(value, cycles: int, name: str):
            return _delayed(m, value, cycles, name)

        # flags[i]: the beat's (fire, first) i cycles later; PE (r, c) has the beat's pair in its
        # pipeline register r + c + PIPELINE_CYCLES cycles after the beat
        span = rows + cols - 2 + PIPELINE_CYCLES
        flags = list(zip(_taps(m, fire, span, "valid"), _taps(m, first, span, "first")))
        for r in range(rows):
            m.d.comb += grid[r][0].i_x.eq(delayed(beat.payload.x[r], r, f"x{r}"))
        for c in range(cols):
            m.d.comb += grid[0][c].i_w.eq(delayed(beat.payload.w[c], c, f"w{c}"))

        shift = Signal()
        for r in range(rows):
            for c in range(cols):
                pe = grid[r][c]
                add, restart = flags[r + c + PIPELINE_CYCLES]
                m.d.comb += [pe.i_shift.eq(shift), pe.i_add.eq(add), pe.i_restart.eq(restart)]
                if c > 0:
                    m.d.comb += pe.i_x.eq(grid[r][c - 1].o_x)
                if r > 0:
                    up = grid[r - 1][c]
                    m.d.comb += [pe.i_w.eq(up.o_w), pe.i_acc.eq(up.o_acc)]

        if self.dw_lanes:
            self._depthwise(m, grid, flags[1 + PIPELINE_CYCLES])
        if self.overlap:
            self._overlapped_drain(m, grid, fire & beat.payload.last)
            return m
        for c in range(cols):
            m.d.comb += self.o_results.payload[c].eq(grid[rows - 1][c].o_acc)

        # Wait until the last beat is in the far corner's accumulator, then drain `rows` rows.
        settle = (rows - 1) + (cols - 1) + PORT_TO_ACC_CYCLES - 1
        count = Signal(range(max(settle, rows) + 1))
        with m.FSM():
            with m.State("LOAD"):
                m.d.comb += beat.ready.eq(1)
                with m.If(fire & beat.payload.last):
                    m.d.sync += count.eq(settle - 1)
                    m.next = "SETTLE"
            with m.State("SETTLE"):
                m.d.sync += count.eq(count - 1)
                with m.If(count == 0):
                    m.d.sync += count.eq(rows - 1)
                    m.next = "DRAIN"
            with m.State("DRAIN"):
                m.d.comb += [self.o_results.valid.eq(1), shift.eq(self.o_results.ready)]
                with m.If(self.o_results.ready):
                    m.d.sync += count.eq(count - 1)
                    with m.If(count == 0):
                        m.next = "LOAD"
        return m

    def _overlapped_drain(self, m: Module, grid: list, last: Any) -> None:
        """Fold overlap: each PE's sum goes to its drain register in the cycle it is complete (the
        ``r + c + PORT_TO_ACC_CYCLES``-th after the fold's last beat; depthwise ``1 +
        PORT_TO_ACC_CYCLES`` for all), while the accumulator starts the next fold. A column
        drains once its bottom register is loaded: row ``rows - 1 - k`` leaves in the ``k``-th
        cycle, row ``r`` taking the register above it in the first ``r`` of them (so a row
        loaded again later is never overwritten); columns leave deskewed (column ``c`` delayed
        ``cols - 1 - c`` cycles; depthwise none: all columns drain at once). A fold's last beat
        is accepted no sooner than ``rows`` cycles after the previous fold's, when every register
        it will load has been passed on."""
        rows, cols, beat = self.rows, self.cols, self.i_operands
        since = Signal(range(rows + 1), init=rows)  # cycles since a fold's last beat, saturated
        with m.If(last):
            m.d.sync += since.eq(1)
        with m.Elif(since < rows):
            m.d.sync += since.eq(since + 1)
        m.d.comb += beat.ready.eq(~beat.payload.last | (since >= rows))
        dw = self.i_dw if self.dw_lanes else None
        # PE (r, c)'s sum is complete r + c + PORT_TO_ACC_CYCLES cycles after the last beat (every
        # PE's 1 + PORT_TO_ACC_CYCLES in the depthwise mode): one delay line of ``last`` for all
        line = _taps(m, last, rows + cols + PORT_TO_ACC_CYCLES - 2, "cap")
        together = line[1 + PORT_TO_ACC_CYCLES] if dw is not None else None
        outs, actives = [], []
        for c in range(cols):
            regs = [Signal(self.acc_shape, name=f"drain_{r}_{c}") for r in range(rows)]
            # in the k-th cycle of the drain (``active``), bit r of ``shifting`` is ``k < r``: row
            # r takes the register above it
            shifting = Signal(rows, name=f"drain_shift{c}")
            active = Signal(name=f"drain_on{c}")
            wave = [line[r + c + PORT_TO_ACC_CYCLES] for r in range(rows)]
            caps = [wave[r] if dw is None else Mux(dw, together, wave[r]) for r in range(rows)]
            for r in range(rows):
                if r > 0:
                    with m.If(shifting[r]):
                        m.d.sync += regs[r].eq(regs[r - 1])
                with m.If(caps[r]):  # after the shift: a loaded row is never shifted over
                    m.d.sync += regs[r].eq(grid[r][c].o_acc)
            with m.If(caps[rows - 1]):  # the column drains from the next cycle
                m.d.sync += [active.eq(1), shifting.eq((1 << rows) - 2)]
            with m.Else():  # the last cycle is the one whose bit rows - 1 is clear
                m.d.sync += [active.eq(shifting[rows - 1]), shifting.eq(shifting << 1)]
            outs.append(regs[rows - 1])
            actives.append(active)
        for c, out in enumerate(outs):
            skewed = _delayed(m, out, cols - 1 - c, f"deskew{c}")
            m.d.comb += self.o_results.payload[c].eq(skewed if dw is None else Mux(dw, out, skewed))
        m.d.comb += self.o_results.valid.eq(actives[-1] if dw is None else Mux(dw, actives[0], actives[-1]))

    def _depthwise(self, m: Module, grid: list, flags: tuple[Any, Any]) -> None:
        """The depthwise mode's sources of PEs ``(r, c < dw_lanes)``: the beat's ``xd[r][c]`` and
        ``w[c]`` through one register stage, overriding the neighbours while ``i_dw``, and so
        ``flags``, the beat's 1 + PIPELINE_CYCLES cycles later, for every PE."""
        beat = self.i_operands.payload
        lanes = self.dw_lanes
        xd = Signal.like(beat.xd, name="xd_edge")
        w = Signal(data.ArrayLayout(self.w_shape, lanes), name="w_edge")
        m.d.sync += xd.eq(beat.xd)
        m.d.sync += [w[c].eq(beat.w[c]) for c in range(lanes)]
        with m.If(self.i_dw):
            for r in range(self.rows):
                for c in range(lanes):
                    pe = grid[r][c]
                    m.d.comb += [pe.i_x.eq(xd[r][c]), pe.i_w.eq(w[c]), pe.i_add.eq(flags[0]),
                                 pe.i_restart.eq(flags[1])]
