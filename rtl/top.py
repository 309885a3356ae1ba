"""The accelerator top: four buffers, the layer controller and its components around the array.

One layer at a time, in phases that never overlap (this version has no double buffering)::

    DESC     one beat on i_desc: the layer descriptor (:func:`descriptor_layout`)
    PARAMS   G * NT beats on i_params: per-channel output parameters, one word per output tile
    WEIGHTS  G * NT * KS beats on i_weights: one word of ``cols`` weights per (tile, step)
    ACTS     G * H * W * CW beats on i_acts: one activation word per (group, pixel, channel word)
    WALK     ``rows`` cycles: the pixel walker loads the input coordinates of the next row tile
    RUN      every fold streams through the array; results are requantized into the out buffer
             (WALK again between row tiles, hidden under the array's drain)
    FLUSH    the last fold's rows reach the out buffer
    STORE    folds * rows beats on o_results, the out buffer in write order

with ``G`` groups, ``Cg``/``Og`` input/output channels per group, ``NT = ceil(Og / cols)`` output
tiles per group, ``CW = ceil(Cg / lanes)`` channel words per pixel (``lanes`` is 1 except for xnor,
whose words pack ``lanes`` channels), ``KS = kh * kw * CW`` steps per fold and
``M = out_h * out_w`` output pixels. Folds run row tile (``rows`` pixels) outermost, then group,
then output tile; the reduction order within a fold is ``(ky, kx, channel word)``.

Buffer layouts (word addresses, written in stream order):

* activations: ``((g * H + iy) * W + ix) * CW + cw`` -- channels last, one word per ``lanes``
  channels (xnor: bit ``l`` of word ``cw`` is channel ``cw * lanes + l``, lanes past ``Cg`` are 0);
* weights: ``((g * NT + t) * KS) + (ky * kw + kx) * CW + cw``, word lane ``c`` holding the weight
  of output channel ``t * cols + c`` of group ``g`` (0 past ``Og``; xnor lanes past ``Cg`` are 1,
  so that padded lanes never agree with the 0 activation lanes);
* parameters: ``g * NT + t``, lane ``c`` for the same channel as the weights
  (:func:`rtl.requant.param_layout`);
* outputs: ``fold * rows + j`` holds row ``rows - 1 - j`` of the fold (the array drains its bottom
  row first), lane ``c`` its output channel ``t * cols + c``. Rows past ``M`` and lanes past
  ``Og`` carry don't-care values.

Components (each with its own simulator test in ``tests/test_rtl_top_parts.py``), joined with
``wiring.connect`` where the signatures match (streams, memory ports)::

    i_params/i_weights/i_acts -> Loader -> param/weight/act buffers      (rtl.buffers)
    act/weight buffers -> OperandFetch -> SystolicArray                   (rtl.im2col, rtl.array)
    SystolicArray -> ResultWriter <-> OutputStage; ResultWriter -> out buffer  (rtl.buffers, rtl.requant)
    out buffer -> StoreStream -> o_results                                (rtl.buffers)

:class:`~rtl.im2col.LayerGeometry` registers the descriptor's derived sizes and
:class:`~rtl.im2col.PixelWalker` loads each row tile's input coordinates for the fetch (im2col on
the fly, see :mod:`rtl.im2col`; positions outside the input read as 0, xnor: bit 0, i.e. -1,
counted in K, as :mod:`models.intref` defines padding). The controller, :meth:`elaborate` itself,
holds the descriptor, the FSM of the phases above and the loop nest (group, output tile, ky, kx,
channel word) that PARAMS, WEIGHTS and RUN step, and keeps the sticky error flag.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from contract import GEOMETRY_BITS
from hwsim.accelerator import Accelerator
from hwsim.rtl_plan import TopGeometry, top_geometry
from rtl.array import SystolicArray
from rtl.buffers import LoadTarget, Loader, ResultWriter, StoreStream, out_word, param_word
from rtl.im2col import (LayerGeometry, OperandFetch, PixelWalker, descriptor_layout, pe_spec,
                         weight_word)
from rtl.pe import PE_CLASSES, check_int
from rtl.requant import OutputStage, out_shape, param_layout

__all__ = ["LayerAccelerator", "descriptor_layout", "pe_spec"]


def _advance(m: Module, levels: list[tuple[Signal, Any, int]]) -> None:
    """Step a nest of counters, innermost first: each ``(counter, is_last, step)`` adds ``step``,
    or wraps to 0 when ``is_last`` and carries into the next level."""
    (counter, last, step), *outer = levels
    m.d.sync += counter.eq(Mux(last, 0, counter + step))
    if outer:
        with m.If(last):
            _advance(m, outer)


class LayerAccelerator(wiring.Component):
    """Runs one conv2d (kernel, stride, padding, groups) or linear layer per descriptor.

    Parameters
    ----------
    geo : TopGeometry
        Every parameter of the top (:func:`hwsim.rtl_plan.top_geometry` makes it from an
        Accelerator; :meth:`from_accelerator` does both): PE kind, operand width (xnor: 1; also
        the requantized output width), array ``rows x cols``, xnor ``lanes`` (a power of two),
        shift ``max_shift``, ``max_steps`` (longest fold), ``acc_bits``, ``bias_bits``,
        ``dim_bits`` and the four buffer depths in words.

    Raises TypeError for a non-TopGeometry, ValueError naming the parameter when one is out of
    range or a buffer cannot hold one fold (``weight_words < max_steps``, ``out_words < rows``).

    Members
    -------
    i_desc : In(stream.Signature(descriptor_layout(dim_bits)))
        The layer descriptor; accepted only between layers (``ready`` high in DESC).
    i_params : In(stream.Signature(ArrayLayout(param_layout, cols)))
        Output-stage parameters, one word per output tile; ``ready`` only in PARAMS.
    i_weights : In(stream.Signature(ArrayLayout(w_shape, cols)))
        Weight words; ``ready`` only in WEIGHTS.
    i_acts : In(stream.Signature(x_shape))
        Activation words; ``ready`` only in ACTS.
    o_results : Out(stream.Signature(ArrayLayout(out_shape, cols)))
        Output words in out-buffer order; ``valid`` only in STORE.
    o_error : Out(1)
        Sticky until the next descriptor: a load or the results overran a buffer (the excess was
        dropped) or the descriptor's fold is longer than ``max_steps``; the outputs are invalid.
    """

    def __init__(self, geo: TopGeometry) -> None:
        if not isinstance(geo, TopGeometry):
            raise TypeError(f"`geo` must be a TopGeometry, not {geo!r}")
        if geo.pe not in PE_CLASSES:
            raise ValueError(f"`pe` must be one of {', '.join(PE_CLASSES)}, not {geo.pe!r}")
        self.geo = geo
        self.kind = geo.pe
        self.rows = check_int("rows", geo.rows, 1)
        self.cols = check_int("cols", geo.cols, 1)
        self.max_steps = check_int("max_steps", geo.max_steps, 1)
        self.lanes = check_int("lanes", geo.lanes, 1)
        if self.lanes & (self.lanes - 1) or (geo.pe != "xnor" and self.lanes != 1):
            raise ValueError(f"`lanes` must be a power of two (1 except for xnor), not {geo.lanes!r}")
        self.dim_bits = check_int("dim_bits", geo.dim_bits, 2, 16)
        self.words = {name: check_int(name, value, 1) for name, value in geo.words.items()}
        if geo.weight_words < geo.max_steps:
            raise ValueError(f"`weight_words` of {geo.weight_words} cannot hold one fold of "
                             f"max_steps={geo.max_steps} steps")
        if geo.out_words < geo.rows:
            raise ValueError(f"`out_words` of {geo.out_words} cannot hold one fold of rows={geo.rows} rows")
        self.bits, self.max_shift = geo.bits, geo.max_shift
        self.positions = geo.positions
        self.bias_bits = check_int("bias_bits", geo.bias_bits, 1, 64)
        self.pe = pe_spec(geo)
        self.acc_shape = self.pe.acc_shape
        self.descriptor = descriptor_layout(self.dim_bits)
        self.x_shape, self.w_shape = self.pe.x_shape, self.pe.w_shape
        self.params = param_layout(geo.pe, bias_bits=self.bias_bits, positions=self.positions)
        self.out_shape = out_shape(geo.pe, bits=geo.bits, positions=self.positions)
        self.param_word, self.weight_word, self.out_word = param_word(geo), weight_word(geo), out_word(geo)
        super().__init__({
            "i_desc": In(stream.Signature(self.descriptor)),
            "i_params": In(stream.Signature(self.param_word)),
            "i_weights": In(stream.Signature(self.weight_word)),
            "i_acts": In(stream.Signature(self.x_shape)),
            "o_results": Out(stream.Signature(self.out_word)),
            "o_error": Out(1),
        })

    @classmethod
    def from_accelerator(cls, acc: Accelerator) -> LayerAccelerator:
        """The top that ``hwsim rtl generate`` emits for ``acc`` (raises ConfigError naming the
        field the generator cannot build)."""
        return cls(top_geometry(acc))

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        geo, rows, cols, lanes = self.geo, self.rows, self.cols, self.lanes
        m.submodules.array = arr = SystolicArray(rows=rows, cols=cols, pe=self.pe)
        m.submodules.geometry = geometry = LayerGeometry(geo)
        m.submodules.loader = loader = Loader(geo)
        m.submodules.walker = walker = PixelWalker(geo)
        m.submodules.fetch = fetch = OperandFetch(geo)
        m.submodules.writer = writer = ResultWriter(geo)
        m.submodules.output = out_stage = OutputStage(
            kind=self.kind, cols=cols, acc_shape=self.acc_shape, bits=self.bits,
            positions=self.positions, bias_bits=self.bias_bits)
        m.submodules.store = store = StoreStream(geo)
        mems = {name: Memory(shape=shape, depth=self.words[f"{name}_words"], init=[])
                for name, shape in (("act", self.x_shape), ("weight", self.weight_word),
                                    ("param", self.param_word), ("out", self.out_word))}
        for name, mem in mems.items():
            m.submodules[f"{name}_buf"] = mem
            if name != "out":
                wiring.connect(m, getattr(loader, f"{name}_wr"), mem.write_port())
        for name in ("i_params", "i_weights", "i_acts"):
            wiring.connect(m, wiring.flipped(getattr(self, name)), getattr(loader, name))
        for port in fetch.act_rd:
            wiring.connect(m, port, mems["act"].read_port())
        wiring.connect(m, fetch.weight_rd, mems["weight"].read_port())
        wiring.connect(m, fetch.o_operands, arr.i_operands)
        wiring.connect(m, arr.o_results, writer.i_acc)
        wiring.connect(m, writer.o_acc, out_stage.i_acc)
        wiring.connect(m, out_stage.o_y, writer.i_y)
        wiring.connect(m, writer.param_rd, mems["param"].read_port())
        wiring.connect(m, writer.out_wr, mems["out"].write_port())
        wiring.connect(m, store.out_rd, mems["out"].read_port())
        wiring.connect(m, store.o_results, wiring.flipped(self.o_results))

        d = Signal(self.descriptor)
        error = Signal()
        out_total = Signal.like(writer.o_written)  # rows the issued folds will write
        m.d.comb += [self.o_error.eq(error), geometry.i_desc.eq(d),
                     walker.i_desc.eq(d), walker.i_geo.eq(geometry.o_geo),
                     fetch.i_desc.eq(d), fetch.i_geo.eq(geometry.o_geo), fetch.i_rows.eq(walker.o_rows),
                     writer.i_desc.eq(d), out_stage.i_params.eq(writer.o_params),
                     out_stage.i_relu.eq(d.relu), out_stage.i_binary.eq(d.binary_out),
                     out_stage.i_positions.eq(geometry.o_geo.positions),
                     store.i_words.eq(out_total)]
        with m.If(loader.o_overrun | writer.o_overrun):
            m.d.sync += error.eq(1)

        # Loop nest shared by PARAMS, WEIGHTS and RUN: group, output tile, then ky, kx, channel word.
        g = Signal(self.dim_bits)
        c0 = Signal(self.dim_bits + 1)  # first output channel of the tile
        ky, kx = Signal(GEOMETRY_BITS), Signal(GEOMETRY_BITS)
        ch = Signal(self.dim_bits + 1)  # first input channel of the word
        last_c = ch + lanes >= d.in_ch
        last_kx = kx == d.kernel_w - 1
        last_ky = ky == d.kernel_h - 1
        k_wrap = last_c & last_kx & last_ky
        last_ct = c0 + cols >= d.out_ch
        last_g = g == d.groups - 1
        tile_wrap = last_ct & last_g
        load_ix, load_iy = Signal(self.dim_bits), Signal(self.dim_bits)  # ACTS: input pixel
        k_step, t_step = Signal(), Signal()
        with m.If(k_step):
            _advance(m, [(ch, last_c, lanes), (kx, last_kx, 1), (ky, last_ky, 1)])
        with m.If(t_step):
            _advance(m, [(c0, last_ct, cols), (g, last_g, 1)])
        pos = fetch.i_pos
        m.d.comb += [pos.ky.eq(ky), pos.kx.eq(kx), pos.line_end.eq(last_c & last_kx),
                     pos.fold_end.eq(k_wrap), pos.last_tile.eq(last_ct), pos.last_group.eq(last_g)]

        with m.FSM():
            with m.State("DESC"):
                m.d.comb += self.i_desc.ready.eq(1)
                with m.If(self.i_desc.valid):
                    m.d.comb += [loader.i_restart.eq(1), writer.i_clear.eq(1)]
                    m.d.sync += [d.eq(self.i_desc.payload), error.eq(0), out_total.eq(0),
                                 g.eq(0), c0.eq(0), ky.eq(0), kx.eq(0), ch.eq(0),
                                 load_ix.eq(0), load_iy.eq(0)]
                    m.next = "PARAMS"
            with m.State("PARAMS"):
                m.d.comb += loader.i_target.eq(LoadTarget.PARAMS)
                with m.If(loader.o_fire):
                    m.d.comb += t_step.eq(1)
                    with m.If(tile_wrap):
                        m.d.comb += loader.i_restart.eq(1)
                        m.next = "WEIGHTS"
            with m.State("WEIGHTS"):
                m.d.comb += loader.i_target.eq(LoadTarget.WEIGHTS)
                with m.If(loader.o_fire):
                    m.d.comb += [k_step.eq(1), t_step.eq(k_wrap)]
                    with m.If(k_wrap & tile_wrap):
                        m.d.comb += loader.i_restart.eq(1)
                        m.next = "ACTS"
            with m.State("ACTS"):
                # Loop nest (group, iy, ix, channel word): its end needs no derived size, only
                # the descriptor.
                m.d.comb += loader.i_target.eq(LoadTarget.ACTS)
                last_ix, last_iy = load_ix == d.in_w - 1, load_iy == d.in_h - 1
                with m.If(loader.o_fire):
                    _advance(m, [(ch, last_c, lanes), (load_ix, last_ix, 1), (load_iy, last_iy, 1),
                                 (g, last_g, 1)])
                    with m.If(last_c & last_ix & last_iy & last_g):
                        m.d.comb += [walker.i_start.eq(1), fetch.i_start.eq(1)]
                        with m.If(geometry.o_geo.too_long):
                            m.d.sync += error.eq(1)
                        m.next = "WALK"
            with m.State("WALK"):
                m.d.comb += walker.i_step.eq(1)
                with m.If(walker.o_last):
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += fetch.i_run.eq(1)
                with m.If(fetch.o_issue):
                    m.d.comb += [k_step.eq(1), t_step.eq(k_wrap)]
                    with m.If(k_wrap):
                        m.d.sync += out_total.eq(out_total + rows)
                    with m.If(k_wrap & tile_wrap):
                        with m.If(walker.o_more):
                            m.next = "WALK"
                        with m.Else():
                            m.next = "FLUSH"
            with m.State("FLUSH"):
                with m.If(writer.o_written == out_total):
                    m.d.comb += store.i_start.eq(1)
                    m.next = "STORE"
            with m.State("STORE"):
                m.d.comb += store.i_run.eq(1)
                with m.If(store.o_done):
                    m.next = "DESC"
        return m
