"""im2col on the fly for the accelerator top: the layer's derived geometry, the pixel walker and the
operand fetch that turns the activation and weight buffers into the array's operand stream.

Every array row ``r`` of a row tile works on one output pixel ``(oy, ox)``; the
:class:`PixelWalker` loads, one row per cycle, its input coordinates ``(iy0, ix0) = (oy * stride_h
- pad_h, ox * stride_w - pad_w)`` and their word address ``P = ((iy0 * in_w) + ix0) * CW`` in the
group's plane (``CW`` channel words per pixel). The :class:`OperandFetch` then reads, for every
step ``(ky, kx, cw)`` of a fold, word ``gbase + P + koff`` for every row, with ``koff = (ky * in_w
+ kx) * CW + cw`` one common kernel offset and ``gbase = g * in_h * in_w * CW``; rows whose
``(iy0 + ky, ix0 + kx)`` is outside the input (or past the last pixel) read 0, as
:mod:`models.intref` defines padding. Only adders run per step; the products are the registered
:class:`LayerGeometry` of the descriptor.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import ReadPort
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from contract import GEOMETRY_BITS
from hwsim.rtl_plan import DESCRIPTOR_FIELDS, DESCRIPTOR_FLAGS, DESCRIPTOR_SIZES, TopGeometry
from rtl.array import operand_fields
from rtl.pe import PESpec

__all__ = ["LayerGeometry", "OperandFetch", "PixelWalker", "act_count_bits", "act_word", "check_geometry",
           "descriptor_layout",
           "first_layout", "geometry_layout", "operand_layout", "pe_spec", "position_layout", "row_layout",
           "weight_word"]


def pe_spec(geo: TopGeometry) -> PESpec:
    """The PE of every array position of the top of ``geo``: sized for its longest fold."""
    return PESpec(geo.pe, geo.bits, geo.positions, lanes=geo.lanes, max_shift=geo.max_shift,
                  acc_bits=geo.acc_bits, max_align=geo.max_align)


def descriptor_layout(dim_bits: int) -> data.StructLayout:
    """The layer descriptor: sizes ``unsigned(dim_bits)``, kernel/stride/padding ``unsigned(4)``.

    ``in_h``, ``in_w`` input size (a linear layer: 1, 1); ``out_h``, ``out_w`` output size;
    ``in_ch``, ``out_ch`` channels *per group*; ``groups``; ``kernel_h``, ``kernel_w``,
    ``stride_h``, ``stride_w``, ``pad_h``, ``pad_w``; ``relu`` (requantization clamps at 0);
    ``binary_out`` (xnor: emit threshold bits, else the raw dot product); ``pad_low`` (padding
    reads ``-2**(bits-1)``, the integer of real 0 of an unsigned, offset input -- ``zero_in`` of
    models.intref -- instead of 0); then for K tiles (a reduction cut into input-channel slices,
    :func:`hwsim.rtl_plan.split`): ``psum_add`` (the result writer adds the psum buffer's word at
    each row's out buffer address), ``psum_write`` (it writes the raw sums to the psum buffer and
    the layer stores no results), ``k_in_ch`` (``unsigned(dim_bits)``: input channels per group of
    the whole reduction, whose positions the xnor output stage counts in K; 0: ``in_ch``). Fields
    are packed in this order from bit 0 (:data:`hwsim.rtl_plan.DESCRIPTOR_FIELDS`, then
    :data:`~hwsim.rtl_plan.DESCRIPTOR_FLAGS`, then :data:`~hwsim.rtl_plan.DESCRIPTOR_SIZES`; their
    width is :func:`hwsim.rtl_plan.descriptor_bits`); a descriptor with the last three 0 is a
    whole layer, as before K tiles. ``residual`` (mac/adder/shift): after ACTS the top loads
    ``folds * rows`` out words of a shortcut into the out buffer (RESID) and adds each to its
    output before the clamp.
    """
    dim, geo = unsigned(dim_bits), unsigned(GEOMETRY_BITS)
    fields = {name: geo if name.startswith(("kernel", "stride", "pad")) else dim
              for name in DESCRIPTOR_FIELDS}
    return data.StructLayout({**fields, **{flag: unsigned(1) for flag in DESCRIPTOR_FLAGS},
                              **{size: dim for size in DESCRIPTOR_SIZES}})


def _address(geo: TopGeometry) -> signed:
    """Activation word addresses and offsets, signed (padding makes them negative) with room for
    a kernel offset past the buffer."""
    return signed(max(geo.act_words, 2).bit_length() + GEOMETRY_BITS + 2)


def _act_factor_bits(geo: TopGeometry) -> int:
    """Bits of each factor of :class:`LayerGeometry`'s ``act_words`` product: those of the
    activation buffer's word count, so a layer that fits has factors this wide."""
    return geo.act_words.bit_length()


def act_count_bits(geo: TopGeometry) -> int:
    """Width of :class:`LayerGeometry`'s ``act_words``: the product of two factors, and a bit above."""
    return 2 * _act_factor_bits(geo) + 1


def _coord(geo: TopGeometry) -> signed:
    """Input coordinates: an output coordinate times a stride, minus the padding."""
    return signed(geo.dim_bits + GEOMETRY_BITS + 2)


def geometry_layout(geo: TopGeometry) -> data.StructLayout:
    """What :class:`LayerGeometry` derives from a descriptor (``CW`` channel words per pixel):
    ``x_step = stride_w * CW`` and ``y_step = stride_h * in_w * CW`` (word address steps from one
    output pixel to the next along a line and down a line), ``origin = -(pad_h * in_w + pad_w) *
    CW`` (the address of output pixel (0, 0)), ``row_skip = (in_w - kernel_w) * CW`` (from the end
    of a kernel row to the start of the next), ``plane = in_h * in_w * CW`` (one group's words),
    ``too_long`` (``kernel_h * kernel_w * CW > max_steps``) and ``positions = C * kernel_h *
    kernel_w`` (the reduction length K of the output stage; ``C`` is ``k_in_ch``, or ``in_ch``
    when that is 0), ``act_words = groups * plane`` (the words ACTS loads), ``pixels =
    out_h * out_w`` and ``k_step`` (1: the word address step from one fold step to the next).

    A ``depthwise`` descriptor (``G`` fold groups of one channel, :attr:`TopGeometry.dw_lanes`
    ``L``): the activations are channels-last over all ``G * L`` channel slots, so the words per
    pixel in the address steps are ``G * L`` instead of ``CW``, ``k_step`` is ``G * L`` (the next
    kernel position, same channels), ``plane`` is ``L`` (the next fold group's channels) and
    ``act_words = in_h * in_w * G * L``; a fold's steps are still ``kernel_h * kernel_w * CW``
    with ``CW = 1``."""
    addr = _address(geo)
    return data.StructLayout({"x_step": addr, "y_step": addr, "origin": addr, "row_skip": addr,
                              "plane": addr, "too_long": 1, "positions": range(geo.max_positions + 1),
                              "act_words": act_count_bits(geo), "pixels": 2 * geo.dim_bits,
                              "k_step": addr})


def row_layout(geo: TopGeometry) -> data.StructLayout:
    """One array row's output pixel: input coordinates ``iy``, ``ix`` of its kernel origin, their
    word address ``p`` in the group's plane, ``ok`` (0 past the layer's last pixel)."""
    coord = _coord(geo)
    return data.StructLayout({"iy": coord, "ix": coord, "p": _address(geo), "ok": 1})


def first_layout(geo: TopGeometry) -> data.StructLayout:
    """A tile's first pixel: the input coordinates ``iy``, ``ix`` of its kernel origin, their
    word address ``p`` and ``last`` (it ends its output line: ``out_w`` is 1)
    (:class:`PixelWalker`'s ``i_first``)."""
    coord = _coord(geo)
    return data.StructLayout({"iy": coord, "ix": coord, "p": _address(geo), "last": 1})


def position_layout() -> data.StructLayout:
    """Where the controller's loop nest is: kernel position ``ky``, ``kx``; ``line_end`` (the last
    channel word of a kernel row), ``fold_end`` (the fold's last step), ``last_tile`` (the group's
    last output tile), ``last_group``."""
    return data.StructLayout({"ky": GEOMETRY_BITS, "kx": GEOMETRY_BITS, "line_end": 1,
                              "fold_end": 1, "last_tile": 1, "last_group": 1})


def weight_word(geo: TopGeometry) -> data.ArrayLayout:
    """One weight buffer word: the weights of ``cols`` output channels for one step."""
    return data.ArrayLayout(pe_spec(geo).w_shape, geo.cols)


def act_word(geo: TopGeometry) -> data.ArrayLayout:
    """One ``i_acts`` beat and one activation buffer word: ``act_beat`` activation words, word
    ``a`` of the layer's stream in lane ``a mod act_beat`` of buffer word ``a div act_beat``."""
    return data.ArrayLayout(pe_spec(geo).x_shape, geo.act_beat)


def operand_layout(geo: TopGeometry) -> data.StructLayout:
    """One beat of :class:`rtl.array.SystolicArray`'s ``i_operands`` on the top of ``geo``."""
    return operand_fields(pe_spec(geo), geo.rows, geo.cols, geo.dw_lanes)


def check_geometry(geo: Any) -> TopGeometry:
    """``geo`` if it is a TopGeometry, else TypeError."""
    if not isinstance(geo, TopGeometry):
        raise TypeError(f"`geo` must be a TopGeometry, not {geo!r}")
    beat = geo.act_beat
    if beat < 1 or beat & (beat - 1) or geo.act_words % beat:
        raise ValueError(f"`act_beat` must be a power of two dividing act_words={geo.act_words}, "
                         f"not {beat!r}")
    return geo


class LayerGeometry(wiring.Component):
    """The descriptor's derived sizes (:func:`geometry_layout`) in three register stages.

    Each register is fed by at most one multiplier and nothing after it (computed once per
    layer, but static timing sees one cycle, and an ECP5 DSP block's product takes most of it):
    first ``CW``, ``kernel_h * kernel_w``, ``pad_h * in_w`` (the padding rows' pixels),
    ``groups * in_h``, ``in_w * CW`` and ``pixels``; then ``act_words``, ``x_step``, ``in_w * CW``
    (a line), and the products behind ``origin`` (the padding rows' and columns' words: their sum
    is the third stage's), ``too_long``, ``positions`` and ``row_skip``; then those four,
    ``plane`` and ``y_step``. ``act_words`` multiplies only the low ``b`` bits of its factors (``groups *
    in_h`` and ``in_w * CW``; ``b`` the bits of the buffer's word count, so one DSP block for a
    buffer of up to ``2**17`` words) and sets bit ``2 * b`` if either factor is wider: exact for
    a layer that fits, past the buffer's end for one that does not (its ACTS overruns and raises
    ``o_error``). The shortest layer (one beat each of parameters, weights and activations)
    ends ACTS in the third cycle after the descriptor, so ``act_words`` is valid two cycles
    after ``i_desc``; the rest is read from the take on (:data:`contract.GEOMETRY_CYCLES`, three
    cycles after ``i_desc``).

    Members
    -------
    i_desc : In(descriptor_layout(dim_bits))
        The layer descriptor, held for the whole layer.
    o_geo : Out(geometry_layout(geo))
        The derived sizes, valid one (``pixels``), two (``act_words``, ``x_step``, ``k_step``)
        or three cycles after ``i_desc`` changed.
    """

    def __init__(self, geo: TopGeometry) -> None:
        self.geo = check_geometry(geo)
        super().__init__({"i_desc": In(descriptor_layout(geo.dim_bits)),
                          "o_geo": Out(geometry_layout(geo))})

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        d, o, addr = self.i_desc, self.o_geo, _address(self.geo)
        lanes = self.geo.lanes
        cw = Signal(self.geo.dim_bits + 1)
        window = Signal(2 * GEOMETRY_BITS)
        pad_rows = Signal(addr)  # pad_h * in_w, in pixels
        line = Signal(addr)  # in_w * CW
        dim, low = self.geo.dim_bits, _act_factor_bits(self.geo)
        lines, line_words = Signal(2 * dim), Signal(2 * dim + 1)  # groups * in_h; in_w * CW
        words_of = (d.in_ch + lanes - 1) >> (lanes.bit_length() - 1)
        dw_lanes = self.geo.dw_lanes
        pixel = Signal(addr)  # words per input pixel in the address steps
        # the second stage's products behind origin, too_long, positions and row_skip
        pad_offset, pad_cols = Signal(addr), Signal(addr)  # pad_h * in_w * CW; pad_w * CW
        fold_words, kernel_line = Signal(range(self.geo.max_positions + 1)), Signal(addr)
        reduction = Signal.like(d.in_ch)
        fold_steps = Signal(2 * GEOMETRY_BITS + dim + 1)
        if dw_lanes:  # a depthwise descriptor: channels-last over G * L slots
            slots = d.groups << (dw_lanes.bit_length() - 1)
            m.d.sync += [pixel.eq(Mux(d.depthwise, slots, words_of)),
                         line_words.eq(d.in_w * Mux(d.depthwise, dw_lanes, words_of)),
                         o.k_step.eq(Mux(d.depthwise, pixel, 1)),
                         o.plane.eq(Mux(d.depthwise, dw_lanes, d.in_h * line))]
        else:
            m.d.sync += [pixel.eq(words_of), line_words.eq(d.in_w * words_of), o.plane.eq(d.in_h * line)]
            m.d.comb += o.k_step.eq(1)
        m.d.sync += [
            # first stage
            cw.eq(words_of), lines.eq(d.groups * d.in_h), window.eq(d.kernel_h * d.kernel_w),
            pad_rows.eq(d.pad_h * d.in_w), o.pixels.eq(d.out_h * d.out_w),
            reduction.eq(Mux(d.k_in_ch == 0, d.in_ch, d.k_in_ch)),
            # second stage
            o.act_words.eq(Cat(lines[:low] * line_words[:low], lines[low:].any() | line_words[low:].any())),
            line.eq(d.in_w * pixel), o.x_step.eq(d.stride_w * pixel),
            pad_offset.eq(pad_rows * pixel), pad_cols.eq(d.pad_w * pixel),
            fold_steps.eq(window * cw), fold_words.eq(reduction * window), kernel_line.eq(d.kernel_w * pixel),
            # third stage
            o.origin.eq(-pad_offset - pad_cols), o.too_long.eq(fold_steps > self.geo.max_steps), o.positions.eq(fold_words),
            o.y_step.eq(d.stride_h * line), o.row_skip.eq(line - kernel_line),
        ]
        return m


class PixelWalker(wiring.Component):
    """Loads the output pixels of the next row tile into the array rows, one row per step.

    Pixels go in raster order (``ox`` fastest) from ``(0, 0)``; row ``r`` of the ``t``-th tile gets
    pixel ``t * rows + r``. Only adders: the address steps come from :class:`LayerGeometry`.
    A step writes the rows the fetch reads (``o_rows``) with ``i_direct`` (a layer's first row
    tile), else a second set: the walk of the next row tile runs while the fetch issues the
    current one's folds, and ``i_swap`` moves the complete set to ``o_rows`` in one cycle.

    Members
    -------
    i_desc : In(descriptor_layout(dim_bits))
        ``out_h``, ``out_w``, ``stride_*`` and ``pad_*`` are read.
    i_geo : In(geometry_layout(geo))
        ``x_step``, ``y_step`` and ``origin`` are read.
    i_start : In(1)
        Restart at pixel (0, 0) and row 0 (the layer's first tile), whose kernel origin
        ``i_first`` gives: the run side's descriptor and geometry are written in that cycle.
    i_first : In(first_layout(geo))
        The next tile's ``-pad_h``, ``-pad_w`` and ``origin``, read with ``i_start``.
    i_step : In(1)
        Load the next row (ignored with ``i_start``); after the tile's last row, the next step
        loads row 0 of the next tile.
    i_direct : In(1)
        The step writes ``o_rows`` (else the second set).
    i_swap : In(1)
        ``o_rows`` takes the second set (only when ``o_full``; never with a step).
    o_rows : Out(ArrayLayout(row_layout(geo), rows))
        Row ``r``'s pixel, written by the step that loads row ``r`` (``i_direct``) or by the swap.
    o_pending : Out(1)
        A step would load a row of a further row tile: the second set is not full and pixels
        are left, or a tile is partly loaded (its rows past the layer's last pixel have ``ok`` 0).
    o_full : Out(1)
        The second set holds a whole row tile (from the cycle after its last row's step to the swap).
    o_last : Out(1)
        The next step loads the tile's last row.
    """

    def __init__(self, geo: TopGeometry) -> None:
        self.geo = check_geometry(geo)
        super().__init__({
            "i_desc": In(descriptor_layout(geo.dim_bits)), "i_geo": In(geometry_layout(geo)),
            "i_start": In(1), "i_first": In(first_layout(geo)), "i_step": In(1),
            "i_direct": In(1), "i_swap": In(1),
            "o_rows": Out(data.ArrayLayout(row_layout(geo), geo.rows)),
            "o_pending": Out(1), "o_full": Out(1), "o_last": Out(1),
        })

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        d, g, rows = self.i_desc, self.i_geo, self.geo.rows
        ox, oy = Signal(self.geo.dim_bits + 1), Signal(self.geo.dim_bits + 1)
        iy, ix = Signal(_coord(self.geo)), Signal(_coord(self.geo))
        p, line = Signal(_address(self.geo)), Signal(_address(self.geo))  # pixel, its line start
        row = Signal(range(rows))
        ahead = Signal.like(self.o_rows)  # the next row tile's rows
        full = self.o_full
        # registered with the counters: pixels are left (oy < out_h); the next pixel ends its line
        more, last_ox = Signal(), Signal()
        m.d.comb += [self.o_pending.eq(~full & (more | (row != 0))), self.o_last.eq(row == rows - 1)]
        with m.If(self.i_swap):
            m.d.sync += [self.o_rows.eq(ahead), full.eq(0)]
        with m.If(self.i_start):
            first = self.i_first
            m.d.sync += [ox.eq(0), oy.eq(0), iy.eq(first.iy), ix.eq(first.ix), p.eq(first.p),
                         line.eq(first.p), row.eq(0), full.eq(0), more.eq(1), last_ox.eq(first.last)]
        with m.Elif(self.i_step):
            for r in range(rows):
                with m.If(row == r):
                    pixel = {"iy": iy, "ix": ix, "p": p, "ok": more}
                    with m.If(self.i_direct):
                        m.d.sync += [getattr(self.o_rows[r], k).eq(v) for k, v in pixel.items()]
                    with m.Else():
                        m.d.sync += [getattr(ahead[r], k).eq(v) for k, v in pixel.items()]
            with m.If(~self.i_direct & (row == rows - 1)):
                m.d.sync += full.eq(1)
            m.d.sync += [ox.eq(Mux(last_ox, 0, ox + 1)), oy.eq(oy + last_ox),
                         last_ox.eq(Mux(last_ox, d.out_w == 1, ox + 2 == d.out_w)),
                         more.eq(Mux(last_ox, oy + 1 < d.out_h, more)),
                         ix.eq(Mux(last_ox, -d.pad_w, ix + d.stride_w)),
                         iy.eq(iy + Mux(last_ox, d.stride_h, 0)),
                         p.eq(Mux(last_ox, line + g.y_step, p + g.x_step)),
                         line.eq(line + Mux(last_ox, g.y_step, 0)),
                         row.eq(Mux(row == rows - 1, 0, row + 1))]
        return m


#: The registers behind the block RAMs stay flip-flops (Yosys ``keep``): Yosys 0.50 otherwise
#: folds them into the read ports, and its ABC9 then fails on the 8x8 ECP5 top (an assertion in
#: ``rtlil.cc`` while reading ABC's netlist back).
_KEPT = {"keep": 1}


class OperandFetch(wiring.Component):
    """The array's operand stream from the buffers' read ports: one beat per fold step.

    A step issued in cycle ``t`` (``i_run``, the pipeline free and, with fold overlap, the fold
    spacing met) reads the weight word and, for every row, the activation word of
    :func:`row_layout`'s pixel at kernel offset ``(ky, kx)`` and the step's channel word (the
    buffer word holding it, :func:`act_word`); in ``t + 1`` the words go from the block RAMs
    straight into registers, and in ``t + 2`` the beat is valid
    (:data:`contract.OPERAND_CYCLES`), each row's lane picked from its register and the rows
    outside the input masked to 0 (nothing but a register after a block RAM: on ECP5 its
    clock-to-output alone is most of a cycle). Back-pressure stalls both stages and the read
    ports together (read enable = the pipeline free), so the next fold's first beat waits here
    while a naive array drains.

    With fold overlap (``geo.fold_overlap``) a fold's last step is issued no sooner than
    ``rows`` cycles after the fold before's, so its beat reaches the array when the array can
    take it (:class:`rtl.array.SystolicArray`, ``overlap``) and the pipeline never stalls.

    Members
    -------
    i_desc : In(descriptor_layout(dim_bits))
        ``in_h`` and ``in_w`` are read.
    i_geo : In(geometry_layout(geo))
        ``row_skip`` and ``plane`` are read.
    i_rows : In(ArrayLayout(row_layout(geo), rows))
        The row tile's pixels (:class:`PixelWalker`); stable while its folds are issued.
    i_pos : In(position_layout())
        The step to issue next (the controller's loop nest, advanced on ``o_issue``).
    i_start : In(1)
        Restart at the layer's first step (word 0 of the weights and of group 0's plane).
    i_run : In(1)
        Issue steps.
    o_issue : Out(1)
        A step is issued this cycle: ``i_pos`` must move to the next one.
    act_rd : In(ReadPort.Signature(...)).array(rows)
        One activation buffer read port per row.
    weight_rd : In(ReadPort.Signature(...))
        The weight buffer's read port; the weights are read in order, one word per step.
    o_operands : Out(stream.Signature(operand_layout(geo)))
        To the array's ``i_operands``; ``last`` on each fold's last step.
    """

    def __init__(self, geo: TopGeometry) -> None:
        self.geo = check_geometry(geo)
        super().__init__({
            "i_desc": In(descriptor_layout(geo.dim_bits)), "i_geo": In(geometry_layout(geo)),
            "i_rows": In(data.ArrayLayout(row_layout(geo), geo.rows)),
            "i_pos": In(position_layout()),
            "i_start": In(1), "i_run": In(1), "o_issue": Out(1),
            "act_rd": In(ReadPort.Signature(addr_width=ceil_log2(geo.act_words // geo.act_beat),
                                            shape=act_word(geo))).array(geo.rows),
            "weight_rd": In(ReadPort.Signature(addr_width=ceil_log2(geo.weight_words),
                                               shape=weight_word(geo))),
            "o_operands": Out(stream.Signature(operand_layout(geo))),
        })

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        d, pos, beat, rows = self.i_desc, self.i_pos, self.o_operands, self.geo.rows
        koff, gbase = Signal(_address(self.geo)), Signal(_address(self.geo))
        waddr = Signal(range(self.geo.weight_words + 1))
        # stage 1: issued, the block RAMs read; stage 2 (the beat): their words in registers
        read, read_last, read_mask = Signal(), Signal(), Signal(rows)
        valid, last, mask = Signal(), Signal(), Signal(rows)
        free = ~valid | beat.ready
        # with fold overlap: cycles until a fold's last step may issue, rows after the one before
        wait = Signal(range(rows))
        issue = self.i_run & free & ((wait == 0) | ~pos.fold_end)
        m.d.comb += self.o_issue.eq(issue)
        if self.geo.fold_overlap:
            m.d.sync += wait.eq(Mux(issue & pos.fold_end, rows - 1, Mux(wait == 0, 0, wait - 1)))
            with m.If(self.i_start):
                m.d.sync += wait.eq(0)
        # the padding value: 0, or with pad_low the most negative activation (not for xnor bits)
        pad = 0 if self.geo.pe == "xnor" else Mux(d.pad_low, 1 << (self.geo.bits - 1), 0)
        lane_bits = self.geo.act_beat.bit_length() - 1
        for r, rd in enumerate(self.act_rd):
            row = self.i_rows[r]
            iy, ix = row.iy + pos.ky, row.ix + pos.kx
            inside = row.ok & (iy >= 0) & (iy < d.in_h) & (ix >= 0) & (ix < d.in_w)
            word = Signal(_address(self.geo), name=f"word{r}")
            held = Signal.like(rd.data, name=f"held{r}", attrs=_KEPT)  # the row's buffer word, in stage 2
            picked = held[0]
            if lane_bits:  # the lane of the word being read, along both stages
                read_lane, lane = Signal(lane_bits, name=f"read_lane{r}"), Signal(lane_bits, name=f"lane{r}")
                with m.If(free):
                    m.d.sync += [read_lane.eq(word[:lane_bits]), lane.eq(read_lane)]
                picked = held[lane]
            m.d.comb += [word.eq(gbase + row.p + koff), rd.addr.eq(word >> lane_bits), rd.en.eq(free),
                         beat.payload.x[r].eq(Mux(mask[r], picked, pad))]
            if self.geo.dw_lanes:  # the L channels from the word's lane on (an L-aligned block)
                block = lane >> (self.geo.dw_lanes.bit_length() - 1) if self.geo.act_beat > self.geo.dw_lanes else 0
                for c in range(self.geo.dw_lanes):
                    channel = held[(block << (self.geo.dw_lanes.bit_length() - 1)) | c]
                    m.d.comb += beat.payload.xd[r][c].eq(Mux(mask[r], channel, pad))
            with m.If(free):
                m.d.sync += [read_mask[r].eq(inside), mask[r].eq(read_mask[r]), held.eq(rd.data)]
        weights = Signal.like(self.weight_rd.data, attrs=_KEPT)
        m.d.comb += [self.weight_rd.addr.eq(waddr), self.weight_rd.en.eq(free),
                     beat.payload.w.eq(weights), beat.payload.last.eq(last), beat.valid.eq(valid)]
        with m.If(free):
            m.d.sync += [read.eq(issue), read_last.eq(pos.fold_end), valid.eq(read), last.eq(read_last),
                         weights.eq(self.weight_rd.data)]
        with m.If(self.i_start):
            m.d.sync += [koff.eq(0), gbase.eq(0), waddr.eq(0)]
        with m.Elif(issue):
            m.d.sync += [
                koff.eq(Mux(pos.fold_end, 0, koff + self.i_geo.k_step + Mux(pos.line_end, self.i_geo.row_skip, 0))),
                waddr.eq(Mux(pos.fold_end & pos.last_tile & pos.last_group, 0, waddr + 1))]
            with m.If(pos.fold_end & pos.last_tile):
                m.d.sync += gbase.eq(Mux(pos.last_group, 0, gbase + self.i_geo.plane))
        return m
