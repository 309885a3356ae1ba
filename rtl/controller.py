"""The accelerator top's layer controller: the descriptor registers, the load and run FSMs, their
loop nests and the sticky error flags (the phases are listed in :mod:`rtl.top`).

:class:`LayerController` holds no buffer and no datapath: it takes the descriptor stream and the
strobes of the top's components (:mod:`rtl.buffers`, :mod:`rtl.im2col`) and drives their control
inputs. Each side has a loop nest, ``(group, output tile)`` outer and ``(ky, kx, channel word)``
inner: the load side's is stepped by PARAMS (per beat: the outer levels) and WEIGHTS (per beat:
all levels), the run side's by RESID (the outer levels, per row tile) and RUN (per issued step:
all levels, the fetch's :func:`~rtl.im2col.position_layout`); ACTS counts the activation words
its beats carry.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from contract import GEOMETRY_BITS, GEOMETRY_CYCLES
from hwsim.rtl_plan import TopGeometry
from rtl.buffers import LoadTarget
from rtl.im2col import ACT_WORDS_CYCLES, act_count_bits, check_geometry, descriptor_layout, position_layout

__all__ = ["LayerController"]


class LayerController(wiring.Component):
    """Sequences tiles through two FSMs, so that a tile loads while the one before it runs.

    The load side takes a descriptor and loads the tile's parameters, weights and activations
    into the input bank ``o_in_bank`` (DESC, PARAMS, WEIGHTS, ACTS), then waits (HAND, from the
    cycle after the last ACTS beat: :data:`~contract.HAND_CYCLES`) until the run side is idle and
    the descriptor's geometry is complete (:data:`~contract.GEOMETRY_CYCLES` after its register
    was written); in that cycle, ``o_take``, the run side takes the tile -- the descriptor, the
    loop ends and the error flag go over, the input bank flips -- and the load side takes the
    next descriptor. The take is a gate of flip-flops (HAND's, the run side's IDLE, the age's
    flag): the read DMA's beat handshake reaches none of the registers it starts.

    The run side (IDLE, RESID for a ``residual`` tile, WALK for the first row tile, RUN, FLUSH)
    runs the tile from the other input bank into out bank ``o_bank``. While RUN issues a row
    tile's folds the walker loads the next row tile's pixels into its second set; after the row
    tile's last step that set is swapped in, at once if it is complete, else once it is (WAIT). FLUSH ends once the last row is
    written and the store engine is free: it hands the out bank to the store engine, which
    streams it while the next tile runs into the other bank; a descriptor with ``psum_write`` (a
    K tile whose sums go to the psum buffer) has no results, hands nothing over and keeps the bank.

    Members
    -------
    i_desc : In(stream.Signature(descriptor_layout(dim_bits)))
        The top's descriptor stream; ``ready`` only in DESC.
    o_load_desc : Out(descriptor_layout(dim_bits))
        The load side's descriptor (to :class:`~rtl.im2col.LayerGeometry`), held until the next.
    o_desc : Out(descriptor_layout(dim_bits))
        The run side's descriptor, from ``o_take`` until the next take.
    i_too_long, i_act_words, i_act_one_beat : In(...)
        The load side geometry's ``too_long`` (read with the take), ``act_words`` (ACTS ends
        with the beat that carries the last of them; a layer larger than the buffer counts past
        the buffer's end, so that its overrun raises ``o_error``, after which the top must be
        reset) and ``act_one_beat`` (they fit one beat).
    i_pixels : In(2 * dim_bits)
        The run side geometry's ``pixels`` (``out_h * out_w``): RESID counts ``folds * rows``
        beats with it.
    o_error : Out(1)
        Either side's error: an overrun strobe (sticky on the load side until the next
        descriptor, then on the run side until the next take), or ``i_too_long`` at the take (on
        the run side from then).
    o_run_error : Out(1)
        The run side's: the error of the tile that runs (the store engine keeps it).
    o_load_target : Out(LoadTarget)
        PARAMS, WEIGHTS, ACTS in those phases, else NONE (the load side's
        :class:`~rtl.buffers.Loader`).
    o_load_restart : Out(1)
        With the descriptor and each load phase's last beat: the next phase starts at word 0.
    i_load_fire, i_load_overrun : In(1)
        The loader's ``o_fire`` (one beat; the phases count them) and ``o_overrun``.
    o_in_bank : Out(1)
        The input bank the loads write; the run side reads the other one. Flips with ``o_take``.
    o_take : Out(1)
        The run side takes the loaded tile (the top copies its geometry; the walker, the fetch,
        the result writer and the residual loader restart).
    o_run_idle : Out(1)
        The run side is idle (IDLE: every row of its last tile written, none arriving until the
        next take, which comes in such a cycle); decoded from the FSM's state register.
    o_resid : Out(1)
        In RESID (the residual loader's target).
    i_resid_fire, i_resid_overrun : In(1)
        The residual loader's ``o_fire`` and ``o_overrun``.
    i_written_next : In(range(out_words + 2))
        The writer's ``o_written_next``: FLUSH ends when its ``o_written`` reaches the rows of
        every issued fold (an equality registered from both's next values).
    i_write_overrun : In(1)
        The writer's ``o_overrun``.
    o_walk_step, o_walk_direct, o_walk_swap : Out(1)
        :class:`~rtl.im2col.PixelWalker`'s ``i_step`` (in WALK; in RUN and WAIT while it has a
        row to load ahead), ``i_direct`` (in WALK) and ``i_swap``.
    i_walk_last, i_walk_pending, i_walk_full : In(1)
        The walker's ``o_last`` (WALK ends with this step), ``o_pending`` and ``o_full`` (read
        at the end of a row tile's last fold: swap, WAIT, or FLUSH when neither).
    o_fetch_run : Out(1)
        In RUN (:class:`~rtl.im2col.OperandFetch`'s ``i_run``).
    i_fetch_issue : In(1)
        The fetch's ``o_issue``: ``o_pos`` moves to the next step.
    o_pos : Out(position_layout())
        The run side's loop nest step, to the fetch's ``i_pos``.
    o_store_words : Out(range(out_words + 2))
        Rows of the folds issued since the take (``folds * rows``), to the store's ``i_words``.
    o_store_start : Out(1)
        The end of FLUSH (unless ``psum_write``): the store engine
        (:class:`~rtl.buffers.StoreStream`) takes bank ``o_bank`` and ``o_store_words``.
    i_store_free : In(1)
        The store engine's ``o_free``: FLUSH waits for it.
    o_bank : Out(1)
        The out bank the writer and RESID write; it flips with every ``o_store_start``.
    """

    def __init__(self, geo: TopGeometry) -> None:
        self.geo = check_geometry(geo)
        written = range(geo.out_words + 2)
        desc = descriptor_layout(geo.dim_bits)
        super().__init__({
            "i_desc": In(stream.Signature(desc)), "o_load_desc": Out(desc), "o_desc": Out(desc),
            "i_too_long": In(1), "i_act_words": In(act_count_bits(geo)), "i_act_one_beat": In(1),
            "i_pixels": In(2 * geo.dim_bits), "o_error": Out(1), "o_run_error": Out(1),
            "o_load_target": Out(LoadTarget), "o_load_restart": Out(1),
            "i_load_fire": In(1), "i_load_overrun": In(1), "o_in_bank": Out(1), "o_take": Out(1), "o_run_idle": Out(1),
            "o_resid": Out(1), "i_resid_fire": In(1), "i_resid_overrun": In(1),
            "i_written_next": In(written), "i_write_overrun": In(1),
            "o_walk_step": Out(1), "o_walk_direct": Out(1), "o_walk_swap": Out(1),
            "i_walk_last": In(1), "i_walk_pending": In(1), "i_walk_full": In(1),
            "o_fetch_run": Out(1), "i_fetch_issue": In(1), "o_pos": Out(position_layout()),
            "o_store_words": Out(written), "o_store_start": Out(1), "i_store_free": In(1),
            "o_bank": Out(1),
        })

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        p = self.i_desc.payload
        # Each counter's last value, registered with the descriptor (off the step's critical
        # path): a level ends on one compare, not an adder and a compare. Whether its first step
        # is already its last is one compare of the field with a constant (no subtraction
        # between the descriptor beat and the nest's flags). The run side copies the load
        # side's with the take.
        geo = self.geo
        ends = {"ch": p.in_ch - geo.lanes, "kx": p.kernel_w - 1, "ky": p.kernel_h - 1,
                "c0": p.out_ch - geo.cols, "g": p.groups - 1}
        # per level: its first step is its last; its second is (each a compare with a constant)
        firsts = {"ch": p.in_ch <= geo.lanes, "kx": p.kernel_w == 1, "ky": p.kernel_h == 1,
                  "c0": p.out_ch <= geo.cols, "g": p.groups == 1}
        seconds = {"ch": p.in_ch <= 2 * geo.lanes, "kx": p.kernel_w == 2, "ky": p.kernel_h == 2,
                   "c0": p.out_ch <= 2 * geo.cols, "g": p.groups == 2}
        load_end = {name: Signal(value.shape(), name=f"load_{name}_end") for name, value in ends.items()}
        load_first = {name: Signal(name=f"load_{name}_first") for name in ends}
        load_second = {name: Signal(name=f"load_{name}_second") for name in ends}
        run_end = {name: Signal(value.shape(), name=f"{name}_end") for name, value in ends.items()}
        load_nest, run_nest = _Nest(m, geo, load_end, "load_"), _Nest(m, geo, run_end, "")
        load_error, run_error = Signal(), self.o_run_error
        load_failed = Signal()  # the load side's error including this cycle's strobes
        m.d.comb += [load_failed.eq(load_error | self.i_load_overrun), self.o_error.eq(load_error | run_error)]
        m.d.sync += load_error.eq(load_failed)
        with m.If(self.i_resid_overrun | self.i_write_overrun):
            m.d.sync += run_error.eq(1)

        run_idle = self.o_run_idle
        age = Signal(range(GEOMETRY_CYCLES + 1))  # cycles since the load descriptor was written
        aged = Signal()  # age == GEOMETRY_CYCLES, a register beside it
        with m.If(age < GEOMETRY_CYCLES):
            m.d.sync += [age.eq(age + 1), aged.eq(age + 1 == GEOMETRY_CYCLES)]
        loaded = Signal.like(self.i_act_words)  # ACTS: activation words after this beat
        ahead = Signal(len(loaded) + 1)  # `loaded + act_beat`, a register: no adder before the compare
        # `loaded >= i_act_words` a cycle late, off the take's path (ACTS's beats can come back
        # to back, so it follows the beat): exact from the second cycle after `i_act_words` is
        # valid (ACT_WORDS_CYCLES + 1, before the take's earliest, GEOMETRY_CYCLES); only a first
        # ACTS beat a cycle sooner (one beat each of parameters and weights at once) ends ACTS by
        # the geometry's flag that the words fit that one beat
        late_last, fired = Signal(), Signal()
        m.d.sync += late_last.eq(Mux(fired, ahead >= self.i_act_words, loaded >= self.i_act_words))
        last_beat = Mux(age == ACT_WORDS_CYCLES, self.i_act_one_beat, late_last)
        handing = Signal()  # in HAND, a register beside the state
        take = self.o_take
        m.d.comb += take.eq(handing & run_idle & aged)
        with m.If(take):
            m.d.sync += [self.o_desc.eq(self.o_load_desc), self.o_in_bank.eq(~self.o_in_bank),
                         run_error.eq(load_error | self.i_too_long), handing.eq(0)]
            m.d.sync += [run_end[name].eq(load_end[name]) for name in ends]
            run_nest.reset(load_first, load_second)
        fire, nest = self.i_load_fire, load_nest
        # the phase's stream (o_load_target) and the descriptor's ready are registers set with
        # the state, not decoded from it: the read DMA's beat handshake goes through them
        target, desc_ready = self.o_load_target, Signal(init=1)
        m.d.comb += self.i_desc.ready.eq(desc_ready)
        with m.FSM(name="load"):
            with m.State("DESC"):  # desc_ready: in DESC
                with m.If(self.i_desc.valid):
                    m.d.comb += self.o_load_restart.eq(1)
                    m.d.sync += [desc_ready.eq(0), target.eq(LoadTarget.PARAMS)]
                    m.d.sync += [load_end[name].eq(value) for name, value in ends.items()]
                    m.d.sync += [load_first[name].eq(value) for name, value in firsts.items()]
                    m.d.sync += [load_second[name].eq(value) for name, value in seconds.items()]
                    m.d.sync += [self.o_load_desc.eq(p), load_error.eq(0), age.eq(0), aged.eq(0),
                                 loaded.eq(geo.act_beat), ahead.eq(2 * geo.act_beat)]
                    nest.reset(firsts, seconds)
                    m.next = "PARAMS"
            with m.State("PARAMS"):
                with m.If(fire):
                    m.d.comb += nest.t_step.eq(1)
                    with m.If(nest.tile_wrap):
                        m.d.comb += self.o_load_restart.eq(1)
                        m.d.sync += target.eq(LoadTarget.WEIGHTS)
                        m.next = "WEIGHTS"
            with m.State("WEIGHTS"):
                with m.If(fire):
                    m.d.comb += [nest.k_step.eq(1), nest.t_step.eq(nest.k_wrap)]
                    with m.If(nest.k_wrap & nest.tile_wrap):
                        m.d.comb += self.o_load_restart.eq(1)
                        m.d.sync += target.eq(LoadTarget.ACTS)
                        m.next = "ACTS"
            with m.State("ACTS"):
                # act_beat words a beat: the last beat carries the tile's last word
                m.d.comb += fired.eq(fire)
                with m.If(fire):
                    m.d.sync += [loaded.eq(ahead), ahead.eq(ahead[:len(loaded)] + geo.act_beat)]
                    with m.If(last_beat):
                        m.d.comb += self.o_load_restart.eq(1)
                        m.d.sync += [target.eq(LoadTarget.NONE), handing.eq(1)]
                        m.next = "HAND"
            with m.State("HAND"):
                with m.If(take):
                    m.d.sync += desc_ready.eq(1)
                    m.next = "DESC"
        self._run(m, run_nest, run_idle)
        return m

    def _run(self, m: Module, nest: _Nest, idle: Signal) -> None:
        """The run side's FSM (class docstring)."""
        geo, d = self.geo, self.o_desc
        out_total = self.o_store_words
        # RESID: the pixels up to the fold's last (``pix0 + rows`` of the fold's first pixel
        # ``pix0``, a register: no adder before the compare), the row
        pix_end, row = Signal(2 * geo.dim_bits + 1), Signal(range(geo.rows))
        # whether the writer's count equals out_total, a register: FLUSH's end (and the store's
        # start behind it) follows from flip-flops. Its next value is picked by the late strobes
        # (the take clears both counts: equal; a fold's last issue adds rows to out_total) from
        # compares of the writer's next count with the candidates.
        all_written, more = Signal(), Signal()  # more: a fold's last step is issued this cycle
        grown = (out_total + geo.rows)[:len(out_total)]
        written = self.i_written_next  # the writer's next count unless the take clears it
        m.d.sync += [out_total.eq(Mux(self.o_take, 0, Mux(more, grown, out_total))),
                     all_written.eq(self.o_take | Mux(more, written == grown, written == out_total))]
        with m.If(self.o_take):
            m.d.sync += [pix_end.eq(geo.rows), row.eq(0)]
        pos = self.o_pos
        m.d.comb += [pos.ky.eq(nest.ky), pos.kx.eq(nest.kx), pos.line_end.eq(nest.line_end),
                     pos.fold_end.eq(nest.k_wrap), pos.last_tile.eq(nest.last_ct),
                     pos.last_group.eq(nest.last_g)]
        with m.FSM(name="run"):
            with m.State("IDLE"):
                m.d.comb += idle.eq(1)
                with m.If(self.o_take):
                    m.next = "WALK"
                    with m.If(self.o_load_desc.residual):
                        m.d.sync += self.o_resid.eq(1)  # a register: in RESID
                        m.next = "RESID"
            with m.State("RESID"):
                # one out word per (row tile, group, output tile, row): the folds' order
                last_row, last_pix = row == geo.rows - 1, pix_end >= self.i_pixels
                with m.If(self.i_resid_fire):
                    m.d.sync += row.eq(Mux(last_row, 0, row + 1))
                    with m.If(last_row):
                        m.d.comb += nest.t_step.eq(1)
                        with m.If(nest.tile_wrap):
                            m.d.sync += pix_end.eq(pix_end + geo.rows)
                            with m.If(last_pix):
                                m.d.sync += self.o_resid.eq(0)
                                m.next = "WALK"
            with m.State("WALK"):
                m.d.comb += [self.o_walk_step.eq(1), self.o_walk_direct.eq(1)]
                with m.If(self.i_walk_last):
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += [self.o_fetch_run.eq(1), self.o_walk_step.eq(self.i_walk_pending)]
                with m.If(self.i_fetch_issue):
                    m.d.comb += [nest.k_step.eq(1), nest.t_step.eq(nest.k_wrap)]
                    with m.If(nest.k_wrap):
                        m.d.comb += more.eq(1)
                    with m.If(nest.k_wrap & nest.tile_wrap):
                        with m.If(self.i_walk_full):
                            m.d.comb += self.o_walk_swap.eq(1)
                        with m.Elif(self.i_walk_pending):
                            m.next = "WAIT"
                        with m.Else():
                            m.next = "FLUSH"
            with m.State("WAIT"):  # the next row tile's walk is not complete yet
                m.d.comb += self.o_walk_step.eq(self.i_walk_pending)
                with m.If(self.i_walk_full):
                    m.d.comb += self.o_walk_swap.eq(1)
                    m.next = "RUN"
            with m.State("FLUSH"):
                with m.If(all_written):
                    with m.If(d.psum_write):
                        m.next = "IDLE"
                    with m.Elif(self.i_store_free):
                        m.d.comb += self.o_store_start.eq(1)
                        m.d.sync += self.o_bank.eq(~self.o_bank)
                        m.next = "IDLE"


class _Nest:
    """One side's loop nest, ``(group, output tile)`` outer and ``(ky, kx, channel word)``
    inner, against the ``end`` registers: ``k_step``/``t_step`` (comb strobes) step the inner
    and outer levels; ``reset`` (called under the condition that resets it) returns it to the
    first step. Whether a counter is at its end is a register, and so is whether it will be
    after one more step (compared from the counter two steps on, beside the step): a step
    moves the second flag into the first, so no adder or compare follows the step strobes (the
    load side's come from the read DMA's handshake). The conjunctions of those flags that the
    fetch and the FSMs read (``line_end``, ``k_wrap``, ``tile_wrap``) are registers too, so the
    step, the fetch's issue and the walker's swap that follow from them start at flip-flops;
    every flag's value after a step is worked out from registers and the strobe only picks it
    (a gate after the strobe, which comes late: the handshake, the fetch's issue)."""

    #: Each level's counter, its end test (``>=`` for the channel counters, else ``==``).
    _AT_END = {"ch": True, "kx": False, "ky": False, "c0": True, "g": False}

    def __init__(self, m: Module, geo: TopGeometry, end: dict[str, Signal], prefix: str) -> None:
        self.g = Signal(geo.dim_bits, name=f"{prefix}g")
        self.c0 = Signal(geo.dim_bits + 1, name=f"{prefix}c0")  # first output channel of the tile
        self.ky = Signal(GEOMETRY_BITS, name=f"{prefix}ky")
        self.kx = Signal(GEOMETRY_BITS, name=f"{prefix}kx")
        self.ch = Signal(geo.dim_bits + 1, name=f"{prefix}ch")  # first input channel of the word
        self.k_step, self.t_step = Signal(name=f"{prefix}k_step"), Signal(name=f"{prefix}t_step")
        self._last = {name: Signal(name=f"{prefix}last_{name}") for name in self._AT_END}
        self._last2 = {name: Signal(name=f"{prefix}last2_{name}") for name in self._AT_END}
        self._next = {name: Signal(name=f"{prefix}next_last_{name}") for name in self._AT_END}  # comb
        self._m = m
        # Each level's flag after a step of its strobe, from registers only, the strobe picking
        # it last (the step strobes come late: the read DMA's handshake, the fetch's issue).
        # A level steps when the levels inside it are at their ends (its carry): it adds its
        # step, or wraps to 0 at its end.
        stepped = {}
        for strobe, levels in ((self.k_step, [("ch", geo.lanes), ("kx", 1), ("ky", 1)]),
                               (self.t_step, [("c0", geo.cols), ("g", 1)])):
            carry = Const(1)
            for name, step in levels:
                counter, last, last2, stop = getattr(self, name), self._last[name], self._last2[name], end[name]
                stepped[name] = Mux(carry, Mux(last, self._at_end(name, 0, stop), last2), last)
                m.d.comb += self._next[name].eq(Mux(strobe, stepped[name], last))  # unless reset
                with m.If(strobe & carry):
                    m.d.sync += [counter.eq(Mux(last, 0, counter + step)),
                                 last2.eq(Mux(last, self._at_end(name, step, stop),
                                              self._at_end(name, counter + 2 * step, stop)))]
                carry = carry & last
        m.d.sync += [last.eq(self._next[name]) for name, last in self._last.items()]
        self.line_end, self.k_wrap = Signal(name=f"{prefix}line_end"), Signal(name=f"{prefix}k_wrap")
        self.tile_wrap = Signal(name=f"{prefix}tile_wrap")
        (line_then, k_then, tile_then), (line_now, k_now, tile_now) = self._wraps(stepped), self._wraps(self._last)
        m.d.sync += [self.line_end.eq(Mux(self.k_step, line_then, line_now)),
                     self.k_wrap.eq(Mux(self.k_step, k_then, k_now)),
                     self.tile_wrap.eq(Mux(self.t_step, tile_then, tile_now))]
        self.last_ct, self.last_g = self._last["c0"], self._last["g"]

    def _at_end(self, name: str, value: Any, end: Any) -> Any:
        return value >= end if self._AT_END[name] else value == end

    @staticmethod
    def _wraps(last: dict[str, Any]) -> tuple[Any, Any, Any]:
        """``line_end``, ``k_wrap`` and ``tile_wrap`` of the levels' end flags ``last``."""
        return last["ch"] & last["kx"], last["ch"] & last["kx"] & last["ky"], last["c0"] & last["g"]

    def reset(self, first: dict[str, Any], second: dict[str, Any]) -> None:
        """Return to the first step; ``first[name]``/``second[name]``: whether that level's
        first/second step is its last (at the end the end register will hold)."""
        self._m.d.sync += [getattr(self, name).eq(0) for name in self._AT_END]
        self._m.d.sync += [self._last2[name].eq(second[name]) for name in self._AT_END]
        self._m.d.comb += [self._next[name].eq(first[name]) for name in self._AT_END]
        self._m.d.sync += [flag.eq(value) for flag, value in
                           zip((self.line_end, self.k_wrap, self.tile_wrap), self._wraps(first))]
