"""im2col on the fly for the accelerator top: the layer's derived geometry, the pixel walker and the
operand fetch that turns the activation and weight buffers into the array's operand stream.

Every array row ``r`` of a row tile works on one output pixel ``(oy, ox)``; the
:class:`PixelWalker` loads, one row per cycle, its input coordinates ``(iy0, ix0) = (oy * stride_h
- pad_h, ox * stride_w - pad_w)`` -- kept as the kernel window inside the input, the ``ky`` and
``kx`` for which ``(iy0 + ky, ix0 + kx)`` is inside -- and their word address ``P = ((iy0 * in_w) +
ix0) * CW`` in the group's plane (``CW`` channel words per pixel). The :class:`OperandFetch` then reads, for every
step ``(ky, kx, cw)`` of a fold, word ``gbase + P + koff`` for every row, with ``koff = (ky * in_w
+ kx) * CW + cw`` one common kernel offset and ``gbase = g * in_h * in_w * CW``; rows whose
``(iy0 + ky, ix0 + kx)`` is outside the input (or past the last pixel) read 0, as
:mod:`models.intref` defines padding. Only adders run per step; the products are the registered
:class:`LayerGeometry` of the descriptor.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import ReadPort
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from contract import GEOMETRY_BITS, act_banks
from hwsim.rtl_plan import DESCRIPTOR_FIELDS, DESCRIPTOR_FLAGS, DESCRIPTOR_SIZES, TopGeometry
from rtl.array import operand_fields
from rtl.dsp import registered_product
from rtl.pe import PESpec

__all__ = ["ACT_WORDS_CYCLES", "LayerGeometry", "OperandFetch", "PixelWalker", "act_count_bits", "act_word",
           "bank_address", "check_geometry", "descriptor_layout", "first_layout", "geometry_layout",
           "kernel_window", "mod_add", "operand_layout", "pe_spec", "phase", "phase_modulus", "position_layout",
           "residue", "row_layout", "weight_word"]


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
    CW`` (the address of output pixel (0, 0)), ``line_step = k_step + (in_w - kernel_w) * CW``
    (from a kernel row's last step to the next row's first), ``plane = in_h * in_w * CW`` (one
    group's words), ``too_long`` (``kernel_h * kernel_w * CW > max_steps``) and ``positions = C * kernel_h *
    kernel_w`` (the reduction length K of the output stage; ``C`` is ``k_in_ch``, or ``in_ch``
    when that is 0), ``act_words = groups * plane`` (the words ACTS loads), ``act_one_beat``
    (``act_words <= act_beat``: one ACTS beat), ``pixels = out_h * out_w`` and ``k_step`` (1:
    the word address step from one fold step to the next); and the :func:`phase` of each
    address and step the walker and the fetch add up (``x_step_phase`` ... ``line_step_phase``,
    :data:`_PHASED`), so that they keep their addresses' banks by modular adds, with no residue
    of an address behind a step.

    A ``depthwise`` descriptor (``G`` fold groups of one channel, :attr:`TopGeometry.dw_lanes`
    ``L``): the activations are channels-last over all ``G * L`` channel slots, so the words per
    pixel in the address steps are ``G * L`` instead of ``CW``, ``k_step`` is ``G * L`` (the next
    kernel position, same channels), ``plane`` is ``L`` (the next fold group's channels) and
    ``act_words = in_h * in_w * G * L``; a fold's steps are still ``kernel_h * kernel_w * CW``
    with ``CW = 1``."""
    addr, phases = _address(geo), range(phase_modulus(geo))
    return data.StructLayout({"x_step": addr, "y_step": addr, "origin": addr, "line_step": addr,
                              "plane": addr, "too_long": 1, "positions": range(geo.max_positions + 1),
                              "act_words": act_count_bits(geo), "act_one_beat": 1, "pixels": 2 * geo.dim_bits,
                              "k_step": addr, **{f"{name}_phase": phases for name in _PHASED}})


def row_layout(geo: TopGeometry) -> data.StructLayout:
    """One array row's output pixel: the kernel rows ``ky_lo <= ky < ky_hi`` and columns ``kx_lo
    <= kx < kx_hi`` that fall inside the input (:func:`kernel_window` of its kernel origin), the
    word address ``p`` of that origin in the group's plane, ``ok`` (0 past the layer's last pixel)
    and, with banks, ``mark``: ``(p >> lane_bits) mod B`` (from the walker's :func:`phase` of
    ``p``), from which the operand fetch tells which rows' words share a bank without the word's
    residue. All are
    worked out once per pixel by the walker, so the fetch's per-step tests are small compares."""
    window = range((1 << GEOMETRY_BITS) + 1)
    return data.StructLayout({"ky_lo": window, "ky_hi": window, "kx_lo": window, "kx_hi": window,
                              "p": _address(geo), "ok": 1, "mark": range(max(geo.act_banks, 1))})


def kernel_window(origin: Value, room: Value) -> tuple[Value, Value]:
    """The kernel offsets ``k`` (``0 <= k < 2**GEOMETRY_BITS``) with ``0 <= origin + k < size``,
    as ``[lo, hi)`` clipped to ``0 .. 2**GEOMETRY_BITS`` (an empty window when ``lo >= hi``);
    ``room`` is ``size - origin`` (the offsets left of the input's far edge; the walker keeps it
    in a register beside the origin, so no subtraction precedes the clipping)."""
    span = 1 << GEOMETRY_BITS
    origin, room = Value.cast(origin), Value.cast(room)
    lo = Mux(origin >= 0, 0, Mux(origin < -span, span, -origin))
    hi = Mux(room <= 0, 0, Mux(room >= span, span, room))
    return lo, hi


#: :class:`LayerGeometry`'s ``act_words`` is valid this many cycles after its descriptor (the
#: earliest ACTS beat's; the rest by :data:`contract.GEOMETRY_CYCLES`).
ACT_WORDS_CYCLES = 2
#: The address steps (and origin) of :func:`geometry_layout` that have a ``_phase`` field.
_PHASED = ("x_step", "y_step", "origin", "plane", "k_step", "line_step")


def phase_modulus(geo: TopGeometry) -> int:
    """``act_beat * B`` (``B`` the activation banks, 1 without): the modulus of :func:`phase`."""
    return geo.act_beat * max(geo.act_banks, 1)


def phase(geo: TopGeometry, value: Value, staged: Module | None = None) -> Value:
    """``value mod`` :func:`phase_modulus` (never negative) of a word address or step: its low
    ``lane_bits`` are the word's lane, the rest ``(value >> lane_bits) mod B``, the bank of its
    buffer word (:func:`contract.act_banks`). Phases add modulo ``act_beat * B`` as the addresses
    add, so the walker and the fetch carry them beside their addresses with :func:`mod_add` (a
    few LUT levels) instead of a :func:`residue` of each new address (a dozen). ``staged``: the
    residue's digit sum registered there (:func:`residue`; of a stable ``value``)."""
    lane_bits, value = geo.act_beat.bit_length() - 1, Value.cast(value)
    bank = residue(value >> lane_bits, geo.act_banks, staged) if geo.act_banks else Const(0, 1)
    return Cat(value[:lane_bits], bank)


def mod_add(a: Value, b: Value, modulus: int) -> Value:
    """``(a + b) mod modulus`` of ``a``, ``b`` in ``0 .. modulus - 1``: an add, a compare and a
    subtraction, no divider."""
    total = Value.cast(a) + b
    return Mux(total >= modulus, total - modulus, total)


def first_layout(geo: TopGeometry) -> data.StructLayout:
    """A tile's first pixel: the input coordinates ``iy``, ``ix`` of its kernel origin, their
    distances ``room_y = in_h - iy`` and ``room_x = in_w - ix`` to the input's far edges (the
    :func:`kernel_window`'s ``room``), their word address ``p``, its :func:`phase` and ``last``
    (it ends its output line: ``out_w`` is 1) (:class:`PixelWalker`'s ``i_first``)."""
    coord = _coord(geo)
    room = signed(coord.width + 1)
    return data.StructLayout({"iy": coord, "ix": coord, "room_y": room, "room_x": room, "p": _address(geo),
                              "phase": range(phase_modulus(geo)), "last": 1})


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
    """The descriptor's derived sizes (:func:`geometry_layout`) in five register stages.

    Each register is fed by at most one multiplier and nothing after it (computed once per
    layer, but static timing sees one cycle, and an ECP5 DSP block's product takes most of it);
    each product is a :func:`rtl.dsp.registered_product` (on ECP5 a DSP block with its output
    register on, its inputs straight from the descriptor or the stage before):
    first ``CW``, ``kernel_h * kernel_w``, ``pad_h * in_w`` (the padding rows' pixels),
    ``groups * in_h``, ``in_w * CW`` and ``pixels``; then ``act_words``, ``x_step``, ``in_w * CW``
    (a line), and the products behind ``origin`` (the padding rows' and columns' words: their sum
    is the third stage's), ``too_long``, ``positions`` and ``kernel_w * CW``; then those
    four (``line_step`` from the last), ``plane`` and ``y_step``; then the phases, each the
    :func:`residue` of a fabric copy of one register in two stages (digit sum, table). ``act_words`` multiplies
    only the low ``b`` bits of its factors (``groups * in_h`` and ``in_w * CW``; ``b`` the bits
    of the buffer's word count, so one DSP block for a buffer of up to ``2**17`` words) and sets
    bit ``2 * b`` if either factor is wider: exact for a layer that fits, past the buffer's end
    for one that does not (its ACTS overruns and raises ``o_error``). The shortest layer (one
    beat each of parameters, weights and activations) ends ACTS in the third cycle after the
    descriptor, so ``act_words`` is valid two cycles after ``i_desc`` (:data:`ACT_WORDS_CYCLES`);
    the rest is read from the take on (:data:`contract.GEOMETRY_CYCLES`, six cycles after
    ``i_desc``).

    Members
    -------
    i_desc : In(descriptor_layout(dim_bits))
        The layer descriptor, held for the whole layer.
    o_geo : Out(geometry_layout(geo))
        The derived sizes, valid one (``pixels``), two (``act_words``, ``act_one_beat``,
        ``x_step``, ``k_step``),
        three or (the phases) six cycles after ``i_desc`` changed.
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
        # the second stage's products behind origin, too_long, positions and line_step
        pad_offset, pad_cols = Signal(addr), Signal(addr)  # pad_h * in_w * CW; pad_w * CW
        fold_words, kernel_line = Signal(range(self.geo.max_positions + 1)), Signal(addr)
        reduction = Signal.like(d.in_ch)
        fold_steps = Signal(2 * GEOMETRY_BITS + dim + 1)
        times = partial(registered_product, m, platform)  # (name, a, b): a * b one cycle later
        if dw_lanes:  # a depthwise descriptor: channels-last over G * L slots (plane: 1 * L)
            slots = d.groups << (dw_lanes.bit_length() - 1)
            m.d.sync += [pixel.eq(Mux(d.depthwise, slots, words_of)), o.k_step.eq(Mux(d.depthwise, pixel, 1))]
            m.d.comb += [line_words.eq(times("line_words", d.in_w, Mux(d.depthwise, dw_lanes, words_of))),
                         o.plane.eq(times("plane", Mux(d.depthwise, 1, d.in_h),
                                          Mux(d.depthwise, dw_lanes, line)))]
        else:
            m.d.sync += pixel.eq(words_of)
            m.d.comb += [line_words.eq(times("line_words", d.in_w, words_of)),
                         o.plane.eq(times("plane", d.in_h, line)), o.k_step.eq(1)]
        over = Signal()  # a factor of act_words is wider than its low bits
        m.d.sync += [
            # first stage
            cw.eq(words_of), reduction.eq(Mux(d.k_in_ch == 0, d.in_ch, d.k_in_ch)),
            # second stage
            over.eq(lines[low:].any() | line_words[low:].any()),
            o.act_one_beat.eq(self._one_beat(lines, line_words)),
            # third stage
            o.origin.eq(-pad_offset - pad_cols), o.too_long.eq(fold_steps > self.geo.max_steps), o.positions.eq(fold_words),
            o.line_step.eq(line - kernel_line + o.k_step),
            # fourth to sixth stages: the phases of the address steps, each a residue of a copy of
            # its step in a fabric register (a DSP block's product crosses the chip to reach the
            # digit sum), the digit sum registered before the table
            *(getattr(o, f"{name}_phase").eq(phase(self.geo, self._copy(m, getattr(o, name), name), m))
              for name in _PHASED),
        ]
        m.d.comb += [
            # first stage
            lines.eq(times("lines", d.groups, d.in_h)), window.eq(times("window", d.kernel_h, d.kernel_w)),
            pad_rows.eq(times("pad_rows", d.pad_h, d.in_w)), o.pixels.eq(times("pixels", d.out_h, d.out_w)),
            # second stage
            o.act_words.eq(Cat(times("act_words", lines[:low], line_words[:low]), over)),
            line.eq(times("line", d.in_w, pixel)), o.x_step.eq(times("x_step", d.stride_w, pixel)),
            pad_offset.eq(times("pad_offset", pad_rows, pixel)), pad_cols.eq(times("pad_cols", d.pad_w, pixel)),
            fold_steps.eq(times("fold_steps", window, cw)), fold_words.eq(times("fold_words", reduction, window)),
            kernel_line.eq(times("kernel_line", d.kernel_w, pixel)),
            # third stage
            o.y_step.eq(times("y_step", d.stride_h, line)),
        ]
        return m


    @staticmethod
    def _copy(m: Module, value: Value, name: str) -> Signal:
        """``value`` a cycle later, in a fabric register of its own."""
        copy = Signal(Value.cast(value).shape(), name=f"{name}_copy")
        m.d.sync += copy.eq(value)
        return copy

    def _one_beat(self, lines: Value, line_words: Value) -> Value:
        """``lines * line_words <= act_beat`` without a product (an ECP5 DSP block's delay, or
        a multiplier in LUTs): one factor 0, or both below ``2**k`` (``k`` the bits of
        ``act_beat``) and ``lines <= act_beat // b`` for the other, ``b`` -- a function of ``2k``
        low bits beside two zero tests of the high ones."""
        beat = self.geo.act_beat
        k = beat.bit_length()
        # (a bound of all ones or more holds for any k-bit value: no compare, which lint flags)
        fits = [(line_words[:k] == b) & (lines[:k] <= beat // b if beat // b < (1 << k) - 1 else Const(1, 1))
                for b in range(1, beat + 1)]
        small = ~lines[k:].any() & ~line_words[k:].any()
        return (lines == 0) | (line_words == 0) | (small & Cat(*fits).any())


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
        ``in_h``, ``in_w``, ``out_h``, ``out_w``, ``stride_*`` and ``pad_*`` are read.
    i_geo : In(geometry_layout(geo))
        ``x_step``, ``y_step`` and their phases are read.
    i_start : In(1)
        Restart at pixel (0, 0) and row 0 (the layer's first tile), whose kernel origin
        ``i_first`` gives: the run side's descriptor and geometry are written in that cycle.
    i_first : In(first_layout(geo))
        The next tile's ``-pad_h``, ``-pad_w``, ``origin`` and its phase, read with ``i_start``.
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
        # ox + 2 and oy + 1 of the current pixel, so that the end tests are compares of registers
        ox2, oy1 = Signal(self.geo.dim_bits + 2), Signal(self.geo.dim_bits + 1)
        iy, ix = Signal(_coord(self.geo)), Signal(_coord(self.geo))
        # in_h - iy and in_w - ix, kept beside them (kernel_window's room)
        room_y, room_x = Signal(signed(len(iy) + 1), name="room_y"), Signal(signed(len(ix) + 1), name="room_x")
        p, line = Signal(_address(self.geo)), Signal(_address(self.geo))  # pixel, its line start
        row = Signal(range(rows))
        ahead = Signal.like(self.o_rows)  # the next row tile's rows
        full = self.o_full
        # registered with the counters: pixels are left (oy < out_h); the next pixel ends its line
        more, last_ox = Signal(), Signal()
        m.d.comb += [self.o_pending.eq(~full & (more | (row != 0))), self.o_last.eq(row == rows - 1)]
        # the phases of p and line (phase(p), kept beside them by modular adds)
        modulus = phase_modulus(self.geo)
        p_phase, line_phase = Signal(range(modulus)), Signal(range(modulus))
        # the current pixel's row record, once (a step writes it into one row)
        pixel = Signal(row_layout(self.geo), name="pixel")
        (ky_lo, ky_hi), (kx_lo, kx_hi) = kernel_window(iy, room_y), kernel_window(ix, room_x)
        fields = {"ky_lo": ky_lo, "ky_hi": ky_hi, "kx_lo": kx_lo, "kx_hi": kx_hi, "p": p, "ok": more,
                  "mark": p_phase >> (self.geo.act_beat.bit_length() - 1)}
        m.d.comb += [getattr(pixel, k).eq(v) for k, v in fields.items()]
        with m.If(self.i_swap):
            m.d.sync += [self.o_rows.eq(ahead), full.eq(0)]
        with m.If(self.i_start):
            first = self.i_first
            m.d.sync += [ox2.eq(2), oy1.eq(1), iy.eq(first.iy), ix.eq(first.ix), p.eq(first.p),
                         room_y.eq(first.room_y), room_x.eq(first.room_x),
                         line.eq(first.p), p_phase.eq(first.phase), line_phase.eq(first.phase),
                         row.eq(0), full.eq(0), more.eq(1), last_ox.eq(first.last)]
        with m.Elif(self.i_step):
            for r in range(rows):
                with m.If(row == r):
                    with m.If(self.i_direct):
                        m.d.sync += self.o_rows[r].eq(pixel)
                    with m.Else():
                        m.d.sync += ahead[r].eq(pixel)
            with m.If(~self.i_direct & (row == rows - 1)):
                m.d.sync += full.eq(1)
            m.d.sync += [ox2.eq(Mux(last_ox, 2, ox2 + 1)), oy1.eq(oy1 + last_ox),
                         last_ox.eq(Mux(last_ox, d.out_w == 1, ox2 == d.out_w)),
                         more.eq(Mux(last_ox, oy1 < d.out_h, more)),
                         ix.eq(Mux(last_ox, -d.pad_w, ix + d.stride_w)),
                         room_x.eq(Mux(last_ox, d.in_w + d.pad_w, room_x - d.stride_w)),
                         iy.eq(iy + Mux(last_ox, d.stride_h, 0)),
                         room_y.eq(room_y - Mux(last_ox, d.stride_h, 0)),
                         p.eq(Mux(last_ox, line + g.y_step, p + g.x_step)),
                         line.eq(line + Mux(last_ox, g.y_step, 0)),
                         row.eq(Mux(row == rows - 1, 0, row + 1))]
            next_line = mod_add(line_phase, g.y_step_phase, modulus)
            m.d.sync += [p_phase.eq(Mux(last_ox, next_line, mod_add(p_phase, g.x_step_phase, modulus))),
                         line_phase.eq(Mux(last_ox, next_line, line_phase))]
        return m


#: The registers behind the block RAMs stay flip-flops (Yosys ``keep``): Yosys 0.50 otherwise
#: folds them into the read ports, and its ABC9 then fails on the 8x8 ECP5 top (an assertion in
#: ``rtlil.cc`` while reading ABC's netlist back). They have no reset (``reset_less``): a
#: synchronous reset is a LUT between the block RAM's 5.8 ns clock-to-out and the flip-flop.
_KEPT = {"keep": 1}


def residue(value: Value, modulus: int, staged: Module | None = None) -> Value:
    """``value mod modulus`` (never negative; ``value`` signed or unsigned) for a constant odd
    ``modulus``, without a divider: with ``2**m = +-1 (mod modulus)``, the sum of the ``m``-bit
    digits of ``value`` (alternating in sign for -1; a signed value's sign bit, counted there as
    ``+2**(n-1)``, weighs ``-2**(n-1)``: ``2**n`` taken off) has the same residue and a small
    range, which a table maps to the residue (a few LUT levels for a word address). With
    ``staged``, the digit sum goes through a register of that module: the residue of a stable
    ``value`` a cycle later, the sum and the table in cycles of their own."""
    value = Value.cast(value)
    if modulus == 1:
        return Const(0, 1)
    m, sign = next((m, s) for m in range(1, modulus) for s in (1, modulus - 1) if pow(2, m, modulus) == s)
    total: Value = Const(0, 1)
    lo = hi = 0
    for j, at in enumerate(range(0, len(value), m)):
        digit = value[at:at + m]
        if sign != 1 and j % 2:
            total, lo = total - digit, lo - (1 << len(digit)) + 1
        else:
            total, hi = total + digit, hi + (1 << len(digit)) - 1
    if value.shape().signed:
        wrap = pow(2, len(value), modulus)
        total, lo = total - Mux(value[-1], wrap, 0), lo - wrap
    table = Array(Const((v + lo) % modulus, range(modulus)) for v in range(hi - lo + 1))
    index = (total - lo).as_unsigned()[:max(1, (hi - lo).bit_length())]
    if staged is not None:
        digits = Signal.like(index, name="digit_sum")
        staged.d.sync += digits.eq(index)
        index = digits
    return table[index]


def bank_address(geo: TopGeometry, index: Value) -> Value:
    """Activation buffer word ``index``'s address in its bank (:func:`contract.act_banks`: word
    ``i`` in bank ``i mod B`` -- the :func:`phase`'s bank -- at ``i >> k``)."""
    return Value.cast(index)[act_banks(geo.rows)[1]:]


class OperandFetch(wiring.Component):
    """The array's operand stream from the buffers' read ports: one beat per fold step.

    A step issued in cycle ``t`` (``i_run``, the pipeline free and its request register free)
    has its word addresses computed from the controller's position and the row tile's pixels
    and registered -- per row the activation buffer word holding the step's word, its bank and
    lane, whether the row is inside the input (rows outside read nothing and are masked to 0) --
    with the weight buffer's address; the step enters the **service stage** in ``t + 1`` (or,
    while the step before is still there, waits in the request register, so the controller
    keeps issuing). There each cycle every bank with rows waiting reads the word of its lowest
    waiting row, and every waiting row asking for that word is served by the same read: a step
    takes as many cycles as its busiest bank has distinct words (:mod:`hwsim.rtl_banks`
    counts them), one when the rows' words fall in distinct banks or share words. The step
    leaves the stage (completes) in its last service cycle ``u``; a row served in cycle ``v``
    has its bank's word in the register behind the block RAM in ``v + 2`` and, through the bank
    crossbar, in its own register in ``v + 3``, where it waits for its step's beat: the beat is
    valid in ``u + 3`` (:data:`contract.OPERAND_CYCLES` after the issue for a one-cycle step),
    each row's lane picked and the rows outside masked, the weight word read in ``u`` beside it.
    Nothing but a register follows a block RAM. Back-pressure stalls every stage at once (each
    register's enable = the pipeline free).

    Without banks (``geo.act_banks`` 0, no fold overlap) each row has its own copy of the
    buffer, read through the same stages, and every step takes one cycle.

    With fold overlap (``geo.fold_overlap``) a fold's last step completes no sooner than
    ``rows`` cycles after the fold before's, so its beat reaches the array when the array can
    take it (:class:`rtl.array.SystolicArray`, ``overlap``): the pipeline never stalls, and the
    fetch ignores ``o_operands.ready`` (the array's readiness would otherwise drive every
    stage's enable and the controller's issue in the same cycle).

    Members
    -------
    i_desc : In(descriptor_layout(dim_bits))
        ``pad_low`` is read.
    i_geo : In(geometry_layout(geo))
        ``k_step``, ``line_step``, ``plane`` and their phases are read.
    i_rows : In(ArrayLayout(row_layout(geo), rows))
        The row tile's pixels (:class:`PixelWalker`); read in the cycle a step is issued.
    i_pos : In(position_layout())
        The step to issue next (the controller's loop nest, advanced on ``o_issue``).
    i_start : In(1)
        Restart at the layer's first step (word 0 of the weights and of group 0's plane).
    i_run : In(1)
        Issue steps.
    o_issue : Out(1)
        A step is issued this cycle: ``i_pos`` must move to the next one.
    act_rd : In(ReadPort.Signature(...)).array(ports)
        One read port per activation bank (``geo.act_banks``), or per row's copy.
    weight_rd : In(ReadPort.Signature(...))
        The weight buffer's read port; the weights are read in order, one word per step.
    o_operands : Out(stream.Signature(operand_layout(geo)))
        To the array's ``i_operands``; ``last`` on each fold's last step.
    """

    def __init__(self, geo: TopGeometry) -> None:
        self.geo = check_geometry(geo)
        ports = geo.act_banks or geo.rows
        super().__init__({
            "i_desc": In(descriptor_layout(geo.dim_bits)), "i_geo": In(geometry_layout(geo)),
            "i_rows": In(data.ArrayLayout(row_layout(geo), geo.rows)),
            "i_pos": In(position_layout()),
            "i_start": In(1), "i_run": In(1), "o_issue": Out(1),
            "act_rd": In(ReadPort.Signature(addr_width=ceil_log2(geo.act_bank_words),
                                            shape=act_word(geo))).array(ports),
            "weight_rd": In(ReadPort.Signature(addr_width=ceil_log2(geo.weight_words),
                                               shape=weight_word(geo))),
            "o_operands": Out(stream.Signature(operand_layout(geo))),
        })

    def _pairs(self) -> list[tuple[int, int]]:
        """The pairs of rows ``(q, r)``, ``q < r``, whose words the service stage compares."""
        return [(q, r) for r in range(self.geo.rows) for q in range(r)] if self.geo.act_banks else []

    def _step_layout(self) -> data.StructLayout:
        """A step in the request register or the service stage: per row the bank, the address
        in it, the lane and ``inside``; the fold's ``last`` and the weight address; per pair of
        rows (:meth:`_pairs`, banked buffers) ``share`` (same bank) and ``clash`` (same bank,
        another word), compared at the issue so that the service stage starts at flip-flops."""
        geo, rows, pairs = self.geo, self.geo.rows, len(self._pairs())
        return data.StructLayout({
            "bank": data.ArrayLayout(range(geo.act_banks or rows), rows),
            "at": data.ArrayLayout(ceil_log2(geo.act_bank_words), rows),
            "lane": data.ArrayLayout(max(1, geo.act_beat.bit_length() - 1), rows),
            "inside": rows, "last": 1, "waddr": range(geo.weight_words + 1),
            "share": pairs, "clash": pairs})

    #: The fields of a step that the three stages behind the service stage carry.
    _BEAT_FIELDS = ("bank", "lane", "inside", "last")

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        geo = self.geo
        d, pos, beat, rows, banks = self.i_desc, self.i_pos, self.o_operands, geo.rows, geo.act_banks
        # the step's common offset (gbase + the kernel offset) and the group's base, with their phases
        gbase, offset = Signal(_address(geo)), Signal(_address(geo))
        modulus = phase_modulus(geo)
        g_phase, o_phase = Signal(range(modulus)), Signal(range(modulus))
        waddr = Signal(range(geo.weight_words + 1))
        lane_bits = geo.act_beat.bit_length() - 1
        index_bits = max(1, ceil_log2(geo.act_words // geo.act_beat))
        # the issued step's record, computed from the position and the row tile's pixels
        new = Signal(self._step_layout())
        # Two rows' buffer words ``(offset + p) >> lane_bits`` are ``(offset >> lane_bits) + (p >>
        # lane_bits) + carry`` (the carry out of the lane bits): mod B, the offset's phase's bank
        # plus the row's ``mark + carry`` (``mark``: the row's ``(p >> lane_bits) mod B``, from the
        # walker), so no residue of the word is behind the bank; two rows share a bank when their
        # ``mark + carry`` are equal (the offset's part cancels)
        marks = []
        for r in range(rows if banks else 0):
            row = self.i_rows[r]
            mark = Signal(range(banks), name=f"mark{r}")
            if lane_bits:
                carry = (offset[:lane_bits] + row.p[:lane_bits])[lane_bits]
                m.d.comb += mark.eq(mod_add(row.mark, carry, banks))
            else:
                m.d.comb += mark.eq(row.mark)
            marks.append(mark)
        for r in range(rows):
            row = self.i_rows[r]
            word = Signal(_address(geo), name=f"word{r}")
            index = word[lane_bits:][:index_bits]  # the buffer word (garbage outside the input)
            bank = mod_add(o_phase >> lane_bits, marks[r], banks) if banks else r
            at = bank_address(geo, index) if banks else index
            m.d.comb += [word.eq(offset + row.p), new.bank[r].eq(bank), new.at[r].eq(at),
                         new.inside[r].eq(row.ok & (pos.ky >= row.ky_lo) & (pos.ky < row.ky_hi)
                                          & (pos.kx >= row.kx_lo) & (pos.kx < row.kx_hi))]
            if lane_bits:
                m.d.comb += new.lane[r].eq(word[:lane_bits])
        m.d.comb += [new.last.eq(pos.fold_end), new.waddr.eq(waddr)]
        pair = {qr: i for i, qr in enumerate(self._pairs())}  # (q, r) -> its share/clash bit
        for (q, r), i in pair.items():
            same = marks[q] == marks[r]
            m.d.comb += [new.share[i].eq(same), new.clash[i].eq(same & (new.at[q] != new.at[r]))]

        # the request register and the service stage; ``waiting``: the service stage's rows not
        # yet served
        request, queued = Signal(self._step_layout()), Signal()
        step, busy, waiting = Signal(self._step_layout()), Signal(), Signal(rows)
        valid = Signal()  # the beat's
        # with fold overlap the array takes every beat (the spacing below): no back-pressure,
        # so that the array's ready is on no path into the fetch and the controller
        free = Const(1) if geo.fold_overlap else ~valid | beat.ready
        served = Signal(rows)
        if banks:
            # Each bank reads its lowest waiting row's word. A step's words never decrease with the
            # row (its pixels in raster order, one kernel offset), so a bank's waiting rows asking
            # for that word are those with no waiting row of another word below them in the bank:
            # the step's registered pair flags, no compare behind the address mux or completion.
            lowest = []
            for r in range(rows):
                m.d.comb += served[r].eq(waiting[r] & ~Cat(waiting[q] & step.clash[pair[q, r]]
                                                           for q in range(r)).any())
                lowest.append(Signal(name=f"lowest{r}"))  # a signal: every bank's choice reads it
                m.d.comb += lowest[r].eq(waiting[r] & ~Cat(waiting[q] & step.share[pair[q, r]]
                                                           for q in range(r)).any())
            # one row at most is a bank's lowest: an OR of masked words; a bank no waiting row
            # asks for is not read (its register's word then goes to no row), so a step reads
            # as many block RAMs as it has distinct banks, not all B every cycle
            for b, rd in enumerate(self.act_rd):
                mine = [lowest[r] & (step.bank[r] == b) for r in range(rows)]
                pick = Const(0, len(rd.addr))
                for r in range(rows):
                    pick = pick | Mux(mine[r], step.at[r], 0)
                m.d.comb += [rd.addr.eq(pick), rd.en.eq(free & Cat(*mine).any())]
        else:  # a copy per row
            for r, rd in enumerate(self.act_rd):
                m.d.comb += [rd.addr.eq(step.at[r]), rd.en.eq(free)]
            m.d.comb += served.eq(waiting)
        # with fold overlap: cycles until a fold's last step may complete, rows after the one before
        wait = Signal(range(rows))
        spaced = (wait == 0) | ~step.last if geo.fold_overlap else 1
        complete = busy & ((waiting & ~served) == 0) & spaced
        issue = self.i_run & free & ~queued
        m.d.comb += self.o_issue.eq(issue)
        with m.If(free):
            m.d.sync += waiting.eq(waiting & ~served)
            with m.If(~busy | complete):  # the service stage takes the queued step, else the issued one
                with m.If(queued):
                    m.d.sync += [step.eq(request), waiting.eq(request.inside), queued.eq(0), busy.eq(1)]
                with m.Elif(issue):
                    m.d.sync += [step.eq(new), waiting.eq(new.inside), busy.eq(1)]
                with m.Else():
                    m.d.sync += busy.eq(0)
            with m.Elif(issue):
                m.d.sync += [request.eq(new), queued.eq(1)]
            if geo.fold_overlap:
                # not cleared by i_start: the spacing holds across layers, and costs nothing
                # there (the top starts a layer once the last one's rows are written, long after
                # its last fold completed)
                m.d.sync += wait.eq(Mux(complete & step.last, rows - 1, Mux(wait == 0, 0, wait - 1)))

        # behind the service stage: the banks' words into registers, then each row's into its own
        # (two cycles after its service), the step's beat three cycles after it completes
        held = [Signal.like(rd.data, name=f"held{b}", attrs=_KEPT, reset_less=True) for b, rd in enumerate(self.act_rd)]
        weights = Signal.like(self.weight_rd.data, attrs=_KEPT, reset_less=True)
        pad = 0 if geo.pe == "xnor" else Mux(d.pad_low, 1 << (geo.bits - 1), 0)
        step_fields = self._step_layout().members
        beat_layout = data.StructLayout({k: step_fields[k] for k in self._BEAT_FIELDS})
        stages = [Signal(beat_layout, name=f"beat{i}") for i in (1, 2, 3)]
        done = [Signal(name=f"done{i}") for i in (1, 2)]
        got = [Signal(rows, name=f"served{i}") for i in (1, 2)]
        weights2 = Signal.like(weights)
        m.d.comb += [self.weight_rd.addr.eq(step.waddr), self.weight_rd.en.eq(free)]
        with m.If(free):
            m.d.sync += [getattr(stages[0], k).eq(getattr(step, k)) for k in self._BEAT_FIELDS]
            m.d.sync += [stages[1].eq(stages[0]), stages[2].eq(stages[1]),
                         done[0].eq(complete), done[1].eq(done[0]), valid.eq(done[1]),
                         got[0].eq(served), got[1].eq(got[0]),
                         weights.eq(self.weight_rd.data), weights2.eq(weights)]
            m.d.sync += [h.eq(rd.data) for h, rd in zip(held, self.act_rd)]
        out = stages[2]
        for r in range(rows):
            word = Signal.like(held[0], name=f"row{r}")  # row r's word, from its last service on
            source = Array(Value.cast(h) for h in held)[stages[1].bank[r]] if banks else held[r]
            with m.If(free & got[1][r]):
                m.d.sync += word.eq(source)
            lane = out.lane[r] if lane_bits else 0
            m.d.comb += beat.payload.x[r].eq(Mux(out.inside[r], word[lane], pad))
            if geo.dw_lanes:  # the L channels from the word's lane on (an L-aligned block)
                block = lane >> (geo.dw_lanes.bit_length() - 1) if geo.act_beat > geo.dw_lanes else 0
                for c in range(geo.dw_lanes):
                    channel = word[(block << (geo.dw_lanes.bit_length() - 1)) | c]
                    m.d.comb += beat.payload.xd[r][c].eq(Mux(out.inside[r], channel, pad))
        m.d.comb += [beat.payload.w.eq(weights2), beat.payload.last.eq(out.last), beat.valid.eq(valid)]
        # gbase and the step's common offset (one adder per row behind it) move on each issue to
        # their next values, their phases beside them: the offset steps on within a fold and
        # starts at its group's base with the next
        g = self.i_geo
        gbase_next = Mux(pos.fold_end & pos.last_tile, Mux(pos.last_group, 0, gbase + g.plane), gbase)
        g_phase_next = Mux(pos.fold_end & pos.last_tile,
                           Mux(pos.last_group, 0, mod_add(g_phase, g.plane_phase, modulus)), g_phase)
        step_phase = mod_add(o_phase, Mux(pos.line_end, g.line_step_phase, g.k_step_phase), modulus)
        with m.If(self.i_start):
            m.d.sync += [gbase.eq(0), offset.eq(0), g_phase.eq(0), o_phase.eq(0), waddr.eq(0)]
        with m.Elif(issue):
            m.d.sync += [gbase.eq(gbase_next), g_phase.eq(g_phase_next),
                         offset.eq(Mux(pos.fold_end, gbase_next, offset + Mux(pos.line_end, g.line_step, g.k_step))),
                         o_phase.eq(Mux(pos.fold_end, g_phase_next, step_phase)),
                         waddr.eq(Mux(pos.fold_end & pos.last_tile & pos.last_group, 0, waddr + 1))]
        return m
