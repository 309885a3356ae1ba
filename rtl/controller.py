"""The accelerator top's layer controller: the descriptor register, the phase FSM, the loop nest
and the sticky error flag (the phases are listed in :mod:`rtl.top`).

:class:`LayerController` holds no buffer and no datapath: it takes the descriptor stream and the
strobes of the top's components (:mod:`rtl.buffers`, :mod:`rtl.im2col`) and drives their control
inputs. One loop nest, ``(group, output tile)`` outer and ``(ky, kx, channel word)`` inner, is
stepped by PARAMS (per beat: the outer levels), WEIGHTS (per beat: all levels) and RUN (per
issued step: all levels, the fetch's :func:`~rtl.im2col.position_layout`); ACTS counts the
activation words its beats carry.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from contract import GEOMETRY_BITS
from hwsim.rtl_plan import TopGeometry
from rtl.buffers import LoadTarget
from rtl.im2col import check_geometry, descriptor_layout, position_layout

__all__ = ["LayerController"]


def _advance(m: Module, levels: list[tuple[Signal, Any, int]]) -> None:
    """Step a nest of counters, innermost first: each ``(counter, is_last, step)`` adds ``step``,
    or wraps to 0 when ``is_last`` and carries into the next level."""
    (counter, last, step), *outer = levels
    m.d.sync += counter.eq(Mux(last, 0, counter + step))
    if outer:
        with m.If(last):
            _advance(m, outer)


class LayerController(wiring.Component):
    """Sequences one layer per descriptor: DESC, PARAMS, WEIGHTS, ACTS, RESID (``residual``
    only), (WALK, RUN) per row tile, FLUSH, then DESC again. FLUSH ends once the last row is
    written and the store engine is free: it hands the out bank to the store engine, which
    streams it while the next layer loads and runs into the other bank; a descriptor with
    ``psum_write`` (a K tile whose sums go to the psum buffer) has no results, hands nothing over
    and keeps the bank.

    Members
    -------
    i_desc : In(stream.Signature(descriptor_layout(dim_bits)))
        The top's descriptor stream; ``ready`` only in DESC.
    o_desc : Out(descriptor_layout(dim_bits))
        The accepted descriptor, held until the next one.
    i_too_long : In(1)
        :class:`~rtl.im2col.LayerGeometry`'s ``too_long``, read with ACTS's last beat.
    i_act_words : In(4 * dim_bits + 1)
        Its ``act_words``: ACTS ends with the beat that carries the last of them.
    i_pixels : In(2 * dim_bits)
        Its ``pixels`` (``out_h * out_w``): RESID counts ``folds * rows`` beats with it.
    o_error : Out(1)
        Sticky until the next descriptor: an overrun strobe, or ``i_too_long`` at the end of ACTS.
    o_load_target : Out(LoadTarget)
        PARAMS, WEIGHTS, ACTS, RESID in those phases, else NONE (:class:`~rtl.buffers.Loader`).
    o_load_restart : Out(1)
        With the descriptor and each load phase's last beat: the next phase starts at word 0.
    i_load_fire, i_load_overrun : In(1)
        The loader's ``o_fire`` (one beat; the phases count them) and ``o_overrun``.
    o_write_clear : Out(1)
        With the descriptor (:class:`~rtl.buffers.ResultWriter`'s ``i_clear``).
    i_written : In(range(out_words + 2))
        The writer's ``o_written``: FLUSH ends when it reaches the rows of every issued fold.
    i_write_overrun : In(1)
        The writer's ``o_overrun``.
    o_walk_start : Out(1)
        With ACTS's last beat: the walker and the fetch restart at the layer's first step.
    o_walk_step : Out(1)
        In WALK (:class:`~rtl.im2col.PixelWalker`'s ``i_step``).
    i_walk_last, i_walk_more : In(1)
        The walker's ``o_last`` (WALK ends with this step) and ``o_more`` (read at the end of a
        row tile's last fold: WALK again, else FLUSH).
    o_fetch_run : Out(1)
        In RUN (:class:`~rtl.im2col.OperandFetch`'s ``i_run``).
    i_fetch_issue : In(1)
        The fetch's ``o_issue``: ``o_pos`` moves to the next step.
    o_pos : Out(position_layout())
        The loop nest's step, to the fetch's ``i_pos``.
    o_store_words : Out(range(out_words + 2))
        Rows of the folds issued since the descriptor (``folds * rows``), to the store's
        ``i_words``.
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
        super().__init__({
            "i_desc": In(stream.Signature(descriptor_layout(geo.dim_bits))),
            "o_desc": Out(descriptor_layout(geo.dim_bits)),
            "i_too_long": In(1), "i_act_words": In(4 * geo.dim_bits + 1),
            "i_pixels": In(2 * geo.dim_bits), "o_error": Out(1),
            "o_load_target": Out(LoadTarget), "o_load_restart": Out(1),
            "i_load_fire": In(1), "i_load_overrun": In(1),
            "o_write_clear": Out(1), "i_written": In(written), "i_write_overrun": In(1),
            "o_walk_start": Out(1), "o_walk_step": Out(1), "i_walk_last": In(1), "i_walk_more": In(1),
            "o_fetch_run": Out(1), "i_fetch_issue": In(1), "o_pos": Out(position_layout()),
            "o_store_words": Out(written), "o_store_start": Out(1), "i_store_free": In(1),
            "o_bank": Out(1),
        })

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        geo, d, error = self.geo, self.o_desc, self.o_error
        lanes, cols = geo.lanes, geo.cols
        out_total = self.o_store_words
        with m.If(self.i_load_overrun | self.i_write_overrun):
            m.d.sync += error.eq(1)

        # Each counter's last value, registered with the descriptor (off the step's critical
        # path): a level ends on one compare, not an adder and a compare.
        p = self.i_desc.payload
        ends = {"ch": p.in_ch - lanes, "kx": p.kernel_w - 1, "ky": p.kernel_h - 1,
                "c0": p.out_ch - cols, "g": p.groups - 1}
        end = {name: Signal(value.shape(), name=f"{name}_end") for name, value in ends.items()}
        g = Signal(geo.dim_bits)
        c0 = Signal(geo.dim_bits + 1)  # first output channel of the tile
        ky, kx = Signal(GEOMETRY_BITS), Signal(GEOMETRY_BITS)
        ch = Signal(geo.dim_bits + 1)  # first input channel of the word
        last_c = ch >= end["ch"]
        last_kx = kx == end["kx"]
        last_ky = ky == end["ky"]
        k_wrap = last_c & last_kx & last_ky
        last_ct = c0 >= end["c0"]
        last_g = g == end["g"]
        tile_wrap = last_ct & last_g
        loaded = Signal.like(self.i_act_words)  # ACTS: activation words after this beat
        pix0, row = Signal(2 * geo.dim_bits + 1), Signal(range(geo.rows))  # RESID: fold's pixels, row
        k_step, t_step = Signal(), Signal()
        with m.If(k_step):
            _advance(m, [(ch, last_c, lanes), (kx, last_kx, 1), (ky, last_ky, 1)])
        with m.If(t_step):
            _advance(m, [(c0, last_ct, cols), (g, last_g, 1)])
        pos, fire = self.o_pos, self.i_load_fire
        m.d.comb += [pos.ky.eq(ky), pos.kx.eq(kx), pos.line_end.eq(last_c & last_kx),
                     pos.fold_end.eq(k_wrap), pos.last_tile.eq(last_ct), pos.last_group.eq(last_g)]

        with m.FSM():
            with m.State("DESC"):
                m.d.comb += self.i_desc.ready.eq(1)
                with m.If(self.i_desc.valid):
                    m.d.comb += [self.o_load_restart.eq(1), self.o_write_clear.eq(1)]
                    m.d.sync += [end[name].eq(value) for name, value in ends.items()]
                    m.d.sync += [d.eq(p), error.eq(0), out_total.eq(0),
                                 g.eq(0), c0.eq(0), ky.eq(0), kx.eq(0), ch.eq(0),
                                 loaded.eq(geo.act_beat), pix0.eq(0), row.eq(0)]
                    m.next = "PARAMS"
            with m.State("PARAMS"):
                m.d.comb += self.o_load_target.eq(LoadTarget.PARAMS)
                with m.If(fire):
                    m.d.comb += t_step.eq(1)
                    with m.If(tile_wrap):
                        m.d.comb += self.o_load_restart.eq(1)
                        m.next = "WEIGHTS"
            with m.State("WEIGHTS"):
                m.d.comb += self.o_load_target.eq(LoadTarget.WEIGHTS)
                with m.If(fire):
                    m.d.comb += [k_step.eq(1), t_step.eq(k_wrap)]
                    with m.If(k_wrap & tile_wrap):
                        m.d.comb += self.o_load_restart.eq(1)
                        m.next = "ACTS"
            with m.State("ACTS"):
                # act_beat words a beat: the last beat carries the layer's last word
                m.d.comb += self.o_load_target.eq(LoadTarget.ACTS)
                with m.If(fire):
                    m.d.sync += loaded.eq(loaded + geo.act_beat)
                    with m.If(loaded >= self.i_act_words):
                        m.d.comb += [self.o_walk_start.eq(1), self.o_load_restart.eq(1)]
                        with m.If(self.i_too_long):
                            m.d.sync += error.eq(1)
                        m.next = "WALK"
                        with m.If(d.residual):
                            m.next = "RESID"
            with m.State("RESID"):
                # one out word per (row tile, group, output tile, row): the folds' order
                m.d.comb += self.o_load_target.eq(LoadTarget.RESID)
                last_row, last_pix = row == geo.rows - 1, pix0 + geo.rows >= self.i_pixels
                with m.If(fire):
                    _advance(m, [(row, last_row, 1), (c0, last_ct, cols), (g, last_g, 1),
                                 (pix0, last_pix, geo.rows)])
                    with m.If(last_row & last_ct & last_g & last_pix):
                        m.next = "WALK"
            with m.State("WALK"):
                m.d.comb += self.o_walk_step.eq(1)
                with m.If(self.i_walk_last):
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += self.o_fetch_run.eq(1)
                with m.If(self.i_fetch_issue):
                    m.d.comb += [k_step.eq(1), t_step.eq(k_wrap)]
                    with m.If(k_wrap):
                        m.d.sync += out_total.eq(out_total + geo.rows)
                    with m.If(k_wrap & tile_wrap):
                        with m.If(self.i_walk_more):
                            m.next = "WALK"
                        with m.Else():
                            m.next = "FLUSH"
            with m.State("FLUSH"):
                with m.If(self.i_written == out_total):
                    with m.If(d.psum_write):
                        m.next = "DESC"
                    with m.Elif(self.i_store_free):
                        m.d.comb += self.o_store_start.eq(1)
                        m.d.sync += self.o_bank.eq(~self.o_bank)
                        m.next = "DESC"
        return m
