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

import math
from typing import Any

from amaranth.hdl import Array, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwsim.accelerator import Accelerator
from rtl.array import SystolicArray
from rtl.emit import pe_factory
from rtl.pe import PE_CLASSES, check_int
from rtl.requant import OutputStage

__all__ = ["GEOMETRY_BITS", "LayerAccelerator", "buffer_words", "descriptor_layout"]

#: Width of the kernel, stride and padding fields of the descriptor.
GEOMETRY_BITS = 4


def descriptor_layout(dim_bits: int) -> data.StructLayout:
    """The layer descriptor: sizes ``unsigned(dim_bits)``, kernel/stride/padding ``unsigned(4)``.

    ``in_h``, ``in_w`` input size (a linear layer: 1, 1); ``out_h``, ``out_w`` output size;
    ``in_ch``, ``out_ch`` channels *per group*; ``groups``; ``kernel_h``, ``kernel_w``,
    ``stride_h``, ``stride_w``, ``pad_h``, ``pad_w``; ``relu`` (requantization clamps at 0);
    ``binary_out`` (xnor: emit threshold bits, else the raw dot product). Fields are packed in
    this order from bit 0.
    """
    dim, geo = unsigned(dim_bits), unsigned(GEOMETRY_BITS)
    return data.StructLayout({
        "in_h": dim, "in_w": dim, "out_h": dim, "out_w": dim,
        "in_ch": dim, "out_ch": dim, "groups": dim,
        "kernel_h": geo, "kernel_w": geo, "stride_h": geo, "stride_w": geo,
        "pad_h": geo, "pad_w": geo, "relu": unsigned(1), "binary_out": unsigned(1)})


def _advance(m: Module, levels: list[tuple[Signal, Any, int]]) -> None:
    """Step a nest of counters, innermost first: each ``(counter, is_last, step)`` adds ``step``,
    or wraps to 0 when ``is_last`` and carries into the next level."""
    (counter, last, step), *outer = levels
    m.d.sync += counter.eq(Mux(last, 0, counter + step))
    if outer:
        with m.If(last):
            _advance(m, outer)


def buffer_words(acc: Accelerator, *, max_steps: int) -> dict[str, int]:
    """Depths (words) of the four buffers of ``acc`` from its SRAM capacities in KiB.

    An activation word is one operand (xnor: ``lanes`` bits); a weight word ``cols`` weights; an
    output word ``cols`` outputs. The weight SRAM also holds the per-channel parameters: one
    parameter word per ``max(1, min(9, max_steps))`` weight words (a 3x3 depthwise tile has 9
    steps, the shortest of common layers).
    """
    probe = LayerAccelerator.shapes(acc.pe, bits=acc.bits, cols=acc.array.cols,
                                    lanes=acc.array.lanes, max_steps=max_steps)
    mem = acc.memory

    ratio = min(9, max_steps)

    def words(kib: float, width: float) -> int:
        return max(1, math.floor(kib * 8192 / width))

    weight_words = words(mem.weight_sram_kib, probe["weight"] + probe["params"] / ratio)
    return {"act_words": words(mem.ifmap_sram_kib, probe["act"]),
            "weight_words": weight_words,
            "param_words": max(1, weight_words // ratio),
            "out_words": words(mem.ofmap_sram_kib, probe["out"])}


class LayerAccelerator(wiring.Component):
    """Runs one conv2d (kernel, stride, padding, groups) or linear layer per descriptor.

    Parameters (keyword-only)
    -------------------------
    pe : str
        PE kind: ``mac``, ``adder``, ``shift`` or ``xnor``.
    bits : int
        Operand width (xnor: 1) and, for requantization, the output width.
    rows, cols : int
        Array size.
    lanes : int
        xnor: binary lanes per PE and channels per activation word (a power of two).
    max_shift : int
        shift: largest weight exponent P.
    max_steps : int
        Longest fold (``KS``) the accumulators are sized for.
    act_words, weight_words, param_words, out_words : int
        Buffer depths in words (see :func:`buffer_words`).
    bias_bits : int
        Width of the requantization bias B.
    dim_bits : int
        Width of the descriptor's size fields.

    Raises ValueError (TypeError for a non-integer) naming the parameter when it is out of range,
    or when a buffer cannot hold one fold (``weight_words < max_steps``, ``out_words < rows``).

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

    def __init__(self, *, pe: str, bits: int, rows: int, cols: int, lanes: int = 64,
                 max_shift: int = 7, max_steps: int, act_words: int, weight_words: int,
                 param_words: int, out_words: int, bias_bits: int = 32, dim_bits: int = 12) -> None:
        silenced, self._MustUse__silence = self._MustUse__silence, True  # a rejected parameter
        # must not also warn "never used"; the caller's own setting comes back at the end
        if pe not in PE_CLASSES:
            raise ValueError(f"`pe` must be one of {', '.join(PE_CLASSES)}, not {pe!r}")
        self.kind = pe
        self.rows = check_int("rows", rows, 1)
        self.cols = check_int("cols", cols, 1)
        self.max_steps = check_int("max_steps", max_steps, 1)
        self.lanes = check_int("lanes", lanes, 1) if pe == "xnor" else 1
        if self.lanes & (self.lanes - 1):
            raise ValueError(f"`lanes` must be a power of two, not {lanes!r}")
        self.dim_bits = check_int("dim_bits", dim_bits, 2, 16)
        self.words = {name: check_int(name, value, 1) for name, value in (
            ("act_words", act_words), ("weight_words", weight_words),
            ("param_words", param_words), ("out_words", out_words))}
        if weight_words < max_steps:
            raise ValueError(f"`weight_words` of {weight_words} cannot hold one fold of "
                             f"max_steps={max_steps} steps")
        if out_words < rows:
            raise ValueError(f"`out_words` of {out_words} cannot hold one fold of rows={rows} rows")
        self._pe = pe_factory(pe, bits=bits, k=max_steps * self.lanes, lanes=self.lanes,
                              max_shift=max_shift)
        self.bits, self.max_shift = bits, max_shift
        self.positions = max_steps * self.lanes
        self.bias_bits = bias_bits
        # Probes read for their shapes (elaborate() builds its own), silenced at once so that
        # a parameter rejected by the next one does not also warn "never used".
        self.array = self._make_array()
        self.array._MustUse__silence = True
        self.output = self._make_output()
        self.output._MustUse__silence = True
        self.descriptor = descriptor_layout(dim_bits)
        self.x_shape, self.w_shape = self.array.x_shape, self.array.w_shape
        self.param_word = data.ArrayLayout(self.output.params, cols)
        self.weight_word = data.ArrayLayout(self.w_shape, cols)
        self.out_word = data.ArrayLayout(self.output.out_shape, cols)
        super().__init__({
            "i_desc": In(stream.Signature(self.descriptor)),
            "i_params": In(stream.Signature(self.param_word)),
            "i_weights": In(stream.Signature(self.weight_word)),
            "i_acts": In(stream.Signature(self.x_shape)),
            "o_results": Out(stream.Signature(self.out_word)),
            "o_error": Out(1),
        })
        self._MustUse__silence = silenced

    def _make_array(self) -> SystolicArray:
        return SystolicArray(rows=self.rows, cols=self.cols, pe=self._pe)

    def _make_output(self) -> OutputStage:
        return OutputStage(kind=self.kind, cols=self.cols, acc_shape=self.array.acc_shape,
                           bits=self.bits, positions=self.positions, bias_bits=self.bias_bits)

    @staticmethod
    def shapes(pe: str, *, bits: int, cols: int, lanes: int, max_steps: int) -> dict[str, int]:
        """Bit widths of one activation, weight, parameter and output word of such a top."""
        top = LayerAccelerator(pe=pe, bits=bits, rows=1, cols=cols, lanes=lanes,
                               max_steps=max_steps, act_words=1, weight_words=max_steps,
                               param_words=1, out_words=1)
        top._MustUse__silence = True  # only read for its shapes
        return {"act": Shape.cast(top.x_shape).width, "weight": top.weight_word.size,
                "params": top.param_word.size, "out": top.out_word.size}

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        rows, cols, lanes = self.rows, self.cols, self.lanes
        m.submodules.array = arr = self._make_array()
        m.submodules.output = out_stage = self._make_output()
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
