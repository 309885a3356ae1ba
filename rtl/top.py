"""The accelerator top: buffers, the layer controller, the systolic array and the output stage.

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

The controller makes im2col addresses on the fly: each array row keeps the input coordinates
``(iy0, ix0)`` of its output pixel and their word address ``P``; every step adds one common kernel
offset. Positions outside the input read as 0 (xnor: bit 0, i.e. -1, counted in K), as
:mod:`models.intref` defines padding.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Array, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from contract import GEOMETRY_BITS
from hwsim.accelerator import Accelerator
from hwsim.rtl_plan import DESCRIPTOR_FIELDS, TopGeometry, top_geometry
from rtl.array import SystolicArray
from rtl.pe import PE_CLASSES, PESpec, check_int
from rtl.requant import OutputStage, out_shape, param_layout

__all__ = ["LayerAccelerator", "descriptor_layout", "pe_spec"]


def pe_spec(geo: TopGeometry) -> PESpec:
    """The PE of every array position of the top of ``geo``: sized for its longest fold."""
    return PESpec(geo.pe, geo.bits, geo.positions, lanes=geo.lanes, max_shift=geo.max_shift,
                  acc_bits=geo.acc_bits)


def descriptor_layout(dim_bits: int) -> data.StructLayout:
    """The layer descriptor: sizes ``unsigned(dim_bits)``, kernel/stride/padding ``unsigned(4)``.

    ``in_h``, ``in_w`` input size (a linear layer: 1, 1); ``out_h``, ``out_w`` output size;
    ``in_ch``, ``out_ch`` channels *per group*; ``groups``; ``kernel_h``, ``kernel_w``,
    ``stride_h``, ``stride_w``, ``pad_h``, ``pad_w``; ``relu`` (requantization clamps at 0);
    ``binary_out`` (xnor: emit threshold bits, else the raw dot product). Fields are packed in
    this order from bit 0 (:data:`hwsim.rtl_plan.DESCRIPTOR_FIELDS`, then the two flags).
    """
    dim, geo = unsigned(dim_bits), unsigned(GEOMETRY_BITS)
    fields = {name: geo if name.startswith(("kernel", "stride", "pad")) else dim
              for name in DESCRIPTOR_FIELDS}
    return data.StructLayout({**fields, "relu": unsigned(1), "binary_out": unsigned(1)})


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
        self.param_word = data.ArrayLayout(self.params, self.cols)
        self.weight_word = data.ArrayLayout(self.w_shape, self.cols)
        self.out_word = data.ArrayLayout(self.out_shape, self.cols)
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
        rows, cols, lanes = self.rows, self.cols, self.lanes
        m.submodules.array = arr = SystolicArray(rows=rows, cols=cols, pe=self.pe)
        m.submodules.output = out_stage = OutputStage(
            kind=self.kind, cols=cols, acc_shape=self.acc_shape, bits=self.bits,
            positions=self.positions, bias_bits=self.bias_bits)
        mems = {name: Memory(shape=shape, depth=self.words[f"{name}_words"], init=[])
                for name, shape in (("act", self.x_shape), ("weight", self.weight_word),
                                    ("param", self.param_word), ("out", self.out_word))}
        for name, mem in mems.items():
            m.submodules[f"{name}_buf"] = mem
        wr = {name: mem.write_port() for name, mem in mems.items()}
        act_rd = [mems["act"].read_port() for _ in range(rows)]
        weight_rd, param_rd, out_rd = (mems[n].read_port() for n in ("weight", "param", "out"))

        d = Signal(self.descriptor)
        error = Signal()
        m.d.comb += [self.o_error.eq(error), out_stage.i_relu.eq(d.relu),
                     out_stage.i_binary.eq(d.binary_out)]

        # Derived geometry, registered once the descriptor is in, at most one multiplier per
        # register stage (these are computed once per layer, but static timing sees one cycle).
        # The shortest layer (one beat each of parameters, weights and activations) ends ACTS in
        # the third cycle after the descriptor and starts WALK in the fourth, so what ACTS's last
        # beat reads (`origin`, `too_long`) is at most two stages deep and what WALK reads
        # (`x_step`, `y_step`) at most three; `row_skip`, `plane` and the positions from RUN on.
        abits = max(self.words["act_words"], 2).bit_length() + GEOMETRY_BITS + 2
        cw = Signal(self.dim_bits + 1)
        window = Signal(2 * GEOMETRY_BITS)  # kernel_h * kernel_w
        pad_words = Signal(signed(abits))  # pad_h * in_w + pad_w, in pixels
        line, plane, x_step, y_step, origin, row_skip = (
            Signal(signed(abits), name=n) for n in
            ("line", "plane", "x_step", "y_step", "origin", "row_skip"))
        too_long = Signal()
        shift = lanes.bit_length() - 1
        m.d.sync += [
            cw.eq((d.in_ch + lanes - 1) >> shift), window.eq(d.kernel_h * d.kernel_w),
            pad_words.eq(d.pad_h * d.in_w + d.pad_w),
            line.eq(d.in_w * cw), x_step.eq(d.stride_w * cw), origin.eq(-(pad_words * cw)),
            too_long.eq(window * cw > self.max_steps),
            plane.eq(d.in_h * line), y_step.eq(d.stride_h * line), row_skip.eq(line - d.kernel_w * cw),
            out_stage.i_positions.eq(d.in_ch * window),
        ]

        # Loop nest shared by WEIGHTS and RUN: group, output tile, then ky, kx, channel word.
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
        k_step, t_step = Signal(), Signal()
        with m.If(k_step):
            _advance(m, [(ch, last_c, lanes), (kx, last_kx, 1), (ky, last_ky, 1)])
        with m.If(t_step):
            _advance(m, [(c0, last_ct, cols), (g, last_g, 1)])

        # Loads: one address counter; a beat past the buffer sets `error` instead of writing.
        laddr = Signal(max(self.words.values()).bit_length() + 1)

        def load(stream_in: wiring.PureInterface, name: str) -> Any:
            fire = stream_in.valid & stream_in.ready
            fits = laddr < self.words[f"{name}_words"]
            m.d.comb += [stream_in.ready.eq(1), wr[name].addr.eq(laddr),
                         wr[name].data.eq(stream_in.payload), wr[name].en.eq(fire & fits)]
            with m.If(fire):
                m.d.sync += laddr.eq(laddr + 1)
                with m.If(~fits):
                    m.d.sync += error.eq(1)
            return fire

        # Pixel walker and the per-row input coordinates it loads (signed: padding is negative).
        coord = signed(self.dim_bits + GEOMETRY_BITS + 2)
        ox, oy = Signal(self.dim_bits + 1), Signal(self.dim_bits + 1)
        wiy, wix = Signal(coord), Signal(coord)
        wp, wline = Signal(signed(abits)), Signal(signed(abits))
        row_iy = Array(Signal(coord, name=f"iy{r}") for r in range(rows))
        row_ix = Array(Signal(coord, name=f"ix{r}") for r in range(rows))
        row_p = Array(Signal(signed(abits), name=f"p{r}") for r in range(rows))
        row_ok = Array(Signal(name=f"ok{r}") for r in range(rows))
        walk_row = Signal(range(rows))
        more_pixels = oy < d.out_h

        # Operand stage: the read ports' data plus a registered padding mask, held under
        # back-pressure (read enable = stage free), so the next fold's first beat waits in it.
        koff, gbase = Signal(signed(abits)), Signal(signed(abits))
        waddr = Signal(range(self.words["weight_words"] + 1))
        op_valid, op_last = Signal(), Signal()
        op_mask = Signal(rows)
        stage_free = ~op_valid | arr.i_operands.ready
        issue = Signal()
        for r in range(rows):
            iy, ix = row_iy[r] + ky, row_ix[r] + kx
            inside = row_ok[r] & (iy >= 0) & (iy < d.in_h) & (ix >= 0) & (ix < d.in_w)
            m.d.comb += [act_rd[r].addr.eq(gbase + row_p[r] + koff), act_rd[r].en.eq(stage_free),
                         arr.i_operands.payload.x[r].eq(Mux(op_mask[r], act_rd[r].data, 0))]
            with m.If(issue):
                m.d.sync += op_mask[r].eq(inside)
        m.d.comb += [weight_rd.addr.eq(waddr), weight_rd.en.eq(stage_free),
                     arr.i_operands.payload.w.eq(weight_rd.data),
                     arr.i_operands.payload.last.eq(op_last), arr.i_operands.valid.eq(op_valid)]
        with m.If(stage_free):
            m.d.sync += [op_valid.eq(issue), op_last.eq(k_wrap)]

        # Results: the array's rows through the output stage into the out buffer.
        out_ptr = Signal(range(self.words["out_words"] + 2))
        out_total = Signal.like(out_ptr)
        drain_row = Signal(range(rows))
        og, oc0 = Signal(self.dim_bits), Signal(self.dim_bits + 1)
        ptile = Signal(range(self.words["param_words"]))
        m.d.comb += [arr.o_results.ready.eq(1), out_stage.i_acc.valid.eq(arr.o_results.valid),
                     out_stage.i_acc.payload.eq(arr.o_results.payload),
                     param_rd.addr.eq(ptile), out_stage.i_params.eq(param_rd.data)]
        with m.If(arr.o_results.valid):
            m.d.sync += drain_row.eq(Mux(drain_row == rows - 1, 0, drain_row + 1))
            with m.If(drain_row == rows - 1):
                o_last_ct, o_last_g = oc0 + cols >= d.out_ch, og == d.groups - 1
                m.d.sync += [oc0.eq(Mux(o_last_ct, 0, oc0 + cols)),
                             ptile.eq(Mux(o_last_ct & o_last_g, 0, ptile + 1))]
                with m.If(o_last_ct):
                    m.d.sync += og.eq(Mux(o_last_g, 0, og + 1))
        out_fits = out_ptr < self.words["out_words"]
        m.d.comb += [wr["out"].addr.eq(out_ptr), wr["out"].data.eq(out_stage.o_y.payload),
                     wr["out"].en.eq(out_stage.o_y.valid & out_fits)]
        with m.If(out_stage.o_y.valid):
            m.d.sync += out_ptr.eq(out_ptr + 1)
            with m.If(~out_fits):
                m.d.sync += error.eq(1)

        # Store: the out buffer, read ahead into the o_results register.
        saddr = Signal.like(out_ptr)
        store_free = ~self.o_results.valid | self.o_results.ready
        m.d.comb += [out_rd.addr.eq(saddr), out_rd.en.eq(store_free),
                     self.o_results.payload.eq(out_rd.data)]

        with m.FSM():
            with m.State("DESC"):
                m.d.comb += self.i_desc.ready.eq(1)
                with m.If(self.i_desc.valid):
                    m.d.sync += [d.eq(self.i_desc.payload), error.eq(0), laddr.eq(0),
                                 g.eq(0), c0.eq(0), ky.eq(0), kx.eq(0), ch.eq(0),
                                 out_ptr.eq(0), out_total.eq(0), og.eq(0), oc0.eq(0),
                                 ptile.eq(0), drain_row.eq(0), ox.eq(0), oy.eq(0)]
                    m.next = "PARAMS"
            with m.State("PARAMS"):
                with m.If(load(self.i_params, "param")):
                    m.d.comb += t_step.eq(1)
                    with m.If(tile_wrap):
                        m.d.sync += laddr.eq(0)
                        m.next = "WEIGHTS"
            with m.State("WEIGHTS"):
                with m.If(load(self.i_weights, "weight")):
                    m.d.comb += [k_step.eq(1), t_step.eq(k_wrap)]
                    with m.If(k_wrap & tile_wrap):
                        m.d.sync += laddr.eq(0)
                        m.next = "ACTS"
            with m.State("ACTS"):
                # Loop nest (group, iy, ix, channel word) on the walker's counters, which are
                # free until WALK: its end needs no derived size, only the descriptor.
                last_ix, last_iy = ox == d.in_w - 1, oy == d.in_h - 1
                with m.If(load(self.i_acts, "act")):
                    _advance(m, [(ch, last_c, lanes), (ox, last_ix, 1), (oy, last_iy, 1), (g, last_g, 1)])
                    with m.If(last_c & last_ix & last_iy & last_g):
                        m.d.sync += [ox.eq(0), oy.eq(0), wiy.eq(-d.pad_h), wix.eq(-d.pad_w),
                                     wp.eq(origin), wline.eq(origin), walk_row.eq(0),
                                     koff.eq(0), gbase.eq(0), waddr.eq(0)]
                        with m.If(too_long):
                            m.d.sync += error.eq(1)
                        m.next = "WALK"
            with m.State("WALK"):
                last_ox = ox == d.out_w - 1
                m.d.sync += [row_iy[walk_row].eq(wiy), row_ix[walk_row].eq(wix),
                             row_p[walk_row].eq(wp), row_ok[walk_row].eq(more_pixels),
                             ox.eq(Mux(last_ox, 0, ox + 1)), oy.eq(oy + last_ox),
                             wix.eq(Mux(last_ox, -d.pad_w, wix + d.stride_w)),
                             wiy.eq(wiy + Mux(last_ox, d.stride_h, 0)),
                             wp.eq(Mux(last_ox, wline + y_step, wp + x_step)),
                             wline.eq(wline + Mux(last_ox, y_step, 0)),
                             walk_row.eq(walk_row + 1)]
                with m.If(walk_row == rows - 1):
                    m.d.sync += walk_row.eq(0)
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += issue.eq(stage_free)
                with m.If(stage_free):
                    m.d.comb += [k_step.eq(1), t_step.eq(k_wrap)]
                    m.d.sync += [koff.eq(Mux(k_wrap, 0, koff + 1 + Mux(last_c & last_kx, row_skip, 0))),
                                 waddr.eq(Mux(k_wrap & tile_wrap, 0, waddr + 1))]
                    with m.If(k_wrap):
                        m.d.sync += out_total.eq(out_total + rows)
                        with m.If(last_ct):
                            m.d.sync += gbase.eq(Mux(last_g, 0, gbase + plane))
                    with m.If(k_wrap & tile_wrap):
                        with m.If(more_pixels):
                            m.next = "WALK"
                        with m.Else():
                            m.next = "FLUSH"
            with m.State("FLUSH"):
                with m.If(out_ptr == out_total):
                    m.d.sync += saddr.eq(0)
                    m.next = "STORE"
            with m.State("STORE"):
                with m.If(store_free):
                    m.d.sync += self.o_results.valid.eq(saddr < out_total)
                    with m.If(saddr < out_total):
                        m.d.sync += saddr.eq(saddr + 1)
                with m.If(self.o_results.valid & self.o_results.ready & (saddr == out_total)):
                    m.next = "DESC"
        return m
