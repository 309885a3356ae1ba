"""What the generated accelerator top is, and whether a layer fits it: pure Python, no hardware built.

:func:`top_geometry` turns an :class:`~hwsim.accelerator.Accelerator` into the
:class:`TopGeometry` of the top that ``hwsim rtl generate`` emits (``rtl.top.LayerAccelerator`` is
built from it and nothing else): operand and word widths, accumulator width, the longest fold,
the four buffer depths. It is also the RTL's validation: an accelerator the generator cannot
build is refused here with the field named. :func:`plan` is the one capacity rule: the
:class:`LayerPlan` of a layer on that top (tiles, steps, buffer words) or :class:`DoesNotFit`
naming what is too large. ``hwsim.rtl_timing`` (the cycle model), ``rtl.host`` (the beats) and
``sim`` all use these two functions.

Word widths (bits), with ``L`` lanes per PE (xnor; 1 otherwise) and ``K_max = max_steps * L``:

* activation word: ``L`` (xnor) or ``bits``; ``act_beat`` of them make one ``i_acts`` beat and one
  activation buffer word (:func:`act_beat`: as many as one bus word holds, a power of two);
* weight lane: ``L`` (xnor), the shift-weight code (:func:`contract.weight_code_bits`) or ``bits``;
* parameter lane: ``bias_bits + MULT_BITS + RSHIFT_BITS`` (requantization) or, for xnor, a
  threshold holding ``[-K_max - 1, K_max + 1]`` and a negate bit (:func:`param_fields`);
* output lane: ``bits``, or for xnor the dot product of ``K_max`` positions.

Buffer depths come from ``memory.*_sram_kib``: ``floor(KiB * 8192 / word bits)``. The weight SRAM
also holds the parameters, one parameter word per ``min(9, max_steps)`` weight words (a 3x3
depthwise tile has 9 steps, the shortest of common layers).

**Depthwise layers** (:func:`channel_parallel`): a top generated with ``array.depthwise:
channel_parallel`` (mac, adder, shift) runs a depthwise layer ``dw_lanes`` channels a fold, one
per column: the largest power of two at most ``cols`` and ``act_beat`` (one activation buffer
word holds a fold's channels of one pixel, channels last), so a 16-column int8 top on the 64-bit
bus runs 8 (the analytic model maps ``cols``: the report's note says so).

**Partial sums (K tiles).** A layer whose fold is longer than ``max_steps`` runs as K tiles over
slices of its input channels (:func:`split`); their sums wait in the top's psum buffer, one word of
``cols`` accumulators per out buffer word. Its depth ``psum_words`` is the ofmap SRAM's capacity
at the psum word width, ``floor(ofmap_sram_kib * 8192 / (cols * psum_bits))``: the analytic model
keeps a layer's partial sums inside its ofmap buffer, so the RTL gets that same capacity again,
beside the out buffer, as the on-chip memory that holds them (the top has ``2 x ofmap_sram_kib``
of output-side SRAM). A psum accumulator is wider than the PE's (which holds one fold): it holds
the longest reduction the top accepts, :attr:`TopGeometry.max_positions` positions -- the longest
the descriptor can state (a 15 x 15 kernel over ``2**dim_bits - 1`` channels), and for xnor also
no more than the out word's dot and the threshold field hold -- so no layer overflows it.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

import contract
from contract import GEOMETRY_BITS, MULT_BITS, RSHIFT_BITS
from hwsim.errors import ConfigError, DoesNotFit

if TYPE_CHECKING:
    from hwsim.accelerator import Accelerator
    from hwsim.workload import Layer

__all__ = ["DEFAULT_MAX_STEPS", "DESCRIPTOR_FIELDS", "DESCRIPTOR_FLAGS", "DESCRIPTOR_SIZES", "LayerPlan",
           "LayerShape", "Tile", "TopGeometry", "act_beat", "channel_parallel", "descriptor_bits", "k_slices", "param_fields", "plan", "split",
           "tile_shapes", "top_geometry"]

#: Longest fold (beats) the top is sized for unless configured: a 3 x 3 kernel over 512 channel
#: words, the longest reduction of ResNet-18/50 (shorter when the weight buffer holds fewer words).
DEFAULT_MAX_STEPS = 4608
#: Parameter words per weight word are sized for folds this short (a 3x3 depthwise tile).
_PARAM_RATIO_STEPS = 9
#: The descriptor's fields in bit order: sizes of ``dim_bits``, then the 4-bit geometry, then flags.
DESCRIPTOR_FIELDS = ("in_h", "in_w", "out_h", "out_w", "in_ch", "out_ch", "groups",
                     "kernel_h", "kernel_w", "stride_h", "stride_w", "pad_h", "pad_w")
#: The descriptor's one-bit flags, after :data:`DESCRIPTOR_FIELDS` (``rtl.im2col.descriptor_layout``).
DESCRIPTOR_FLAGS = ("relu", "binary_out", "pad_low", "psum_add", "psum_write", "residual", "depthwise")
#: The descriptor's sizes of ``dim_bits`` after the flags (the K tiles' whole reduction).
DESCRIPTOR_SIZES = ("k_in_ch",)


def descriptor_bits(dim_bits: int) -> int:
    """Width of the descriptor (``rtl.im2col.descriptor_layout``): sizes of ``dim_bits``, the
    kernel/stride/padding geometry of ``GEOMETRY_BITS``, one bit per flag."""
    geometry = sum(name.startswith(("kernel", "stride", "pad")) for name in DESCRIPTOR_FIELDS)
    sizes = len(DESCRIPTOR_FIELDS) - geometry + len(DESCRIPTOR_SIZES)
    return sizes * dim_bits + geometry * GEOMETRY_BITS + len(DESCRIPTOR_FLAGS)


def param_fields(pe: str, *, bias_bits: int, positions: int) -> dict[str, tuple[int, bool]]:
    """Per-channel output-stage parameters as ``name -> (width, signed)``, low field first.

    Requantization (mac, adder, shift): ``bias`` B, ``mult`` M, ``shift`` S. xnor: ``threshold``
    T in ``[-positions - 1, positions + 1]`` and ``negate`` (1 where the compare flips).
    """
    if pe == "xnor":
        return {"threshold": contract.range_width(-positions - 1, positions + 1), "negate": (1, False)}
    return {"bias": (bias_bits, True), "mult": (MULT_BITS, True), "shift": (RSHIFT_BITS, False)}


@dataclass(frozen=True)
class TopGeometry:
    """Every parameter of one generated top; :func:`top_geometry` makes it from an Accelerator.

    ``lanes`` is the binary lanes per PE (1 except xnor); ``max_steps`` the longest fold;
    ``acc_bits`` the width of every PE accumulator; ``*_words`` the buffer depths; ``max_align``
    the largest group alignment of a grouped adder (0: none); ``psum_words`` the depth of the
    partial-sum buffer (0: none, no K tiles; see the module docstring); ``bus_bits`` the network
    accelerator's AXI data width; ``act_beat`` the activation words per ``i_acts`` beat and per
    activation buffer word (a power of two dividing ``act_words``; :func:`act_beat`);
    ``dw_lanes`` the channels a depthwise fold runs side by side on the columns (0: no depthwise
    mode; :func:`channel_parallel`); ``fold_overlap`` the array pipelines its folds (a drain
    register per PE, ``array.fold_overlap``).
    """

    pe: str
    bits: int
    rows: int
    cols: int
    lanes: int
    max_shift: int
    max_steps: int
    acc_bits: int
    bias_bits: int
    dim_bits: int
    act_words: int
    weight_words: int
    param_words: int
    out_words: int
    max_align: int = 0
    psum_words: int = 0
    bus_bits: int = 64
    act_beat: int = 1
    dw_lanes: int = 0
    fold_overlap: bool = False

    @property
    def positions(self) -> int:
        """Most reduction positions of one fold (xnor: binary positions)."""
        return self.max_steps * self.lanes

    @property
    def max_positions(self) -> int:
        """Most reduction positions of a whole layer (K tiles summed): :attr:`positions` without
        a psum buffer, else what the descriptor can state, for xnor no more than the out word's
        dot and the threshold field hold."""
        if not self.psum_words:
            return self.positions
        most = _descriptor_positions(self.dim_bits)
        if self.pe == "xnor":
            dot = contract.dot_bits(self.positions)
            threshold = param_fields("xnor", bias_bits=self.bias_bits, positions=self.positions)["threshold"][0]
            most = min(most, (1 << (dot - 1)) - 1, (1 << (threshold - 1)) - 2)
        return max(most, self.positions)

    @property
    def psum_bits(self) -> int:
        """Width of one partial sum (and of the sums the output stage takes): the accumulator of
        :attr:`max_positions` positions (``acc_bits`` without a psum buffer)."""
        if not self.psum_words:
            return self.acc_bits
        return max(self.acc_bits, _psum_bits(self.pe, self.bits, self.lanes, self.max_shift, self.max_align,
                                             self.max_positions))

    @property
    def act_banks(self) -> int:
        """Banks of the activation buffer (:func:`contract.act_banks`, one read port each) with
        fold overlap; 0 without it: a copy per row, each read by its row alone (the naive array
        stalls the fetch between folds, and the model counts no bank conflicts into those stalls)."""
        return contract.act_banks(self.rows)[0] if self.fold_overlap else 0

    @property
    def act_bank_words(self) -> int:
        """Words of one activation bank (of one copy without banks), per input bank."""
        words = self.act_words // self.act_beat
        return ((words - 1) >> contract.act_banks(self.rows)[1]) + 1 if self.act_banks else words

    @property
    def act_beat_bits(self) -> int:
        """Width of one ``i_acts`` beat (and activation buffer word): ``act_beat`` words."""
        return self.act_beat * self.word_bits["act_words"]

    def act_beats(self, words: int) -> int:
        """``i_acts`` beats that carry ``words`` activation words (the last beat padded)."""
        return -(-words // self.act_beat)

    @property
    def words(self) -> dict[str, int]:
        return {"act_words": self.act_words, "weight_words": self.weight_words,
                "param_words": self.param_words, "out_words": self.out_words}

    @property
    def word_bits(self) -> dict[str, int]:
        """Bits of one word of each buffer, keyed like :attr:`words`."""
        return _word_bits(self.pe, self.bits, self.cols, self.lanes, self.max_shift,
                          self.bias_bits, self.positions, self.max_align)


def _word_bits(pe: str, bits: int, cols: int, lanes: int, max_shift: int, bias_bits: int,
               positions: int, max_align: int) -> dict[str, int]:
    xnor = pe == "xnor"
    weight = contract.operand_bits(pe, bits, max_shift=max_shift, max_align=max_align)[1] * lanes
    param = sum(w for w, _ in param_fields(pe, bias_bits=bias_bits, positions=positions).values())
    out = contract.dot_bits(positions) if xnor else bits
    return {"act_words": lanes if xnor else bits, "weight_words": cols * weight,
            "param_words": cols * param, "out_words": cols * out}


def _descriptor_positions(dim_bits: int) -> int:
    """The longest reduction a descriptor states: a 15 x 15 kernel over ``2**dim_bits - 1``
    channels per group."""
    return ((1 << GEOMETRY_BITS) - 1) ** 2 * ((1 << dim_bits) - 1)


def _psum_bits(pe: str, bits: int, lanes: int, max_shift: int, max_align: int, positions: int) -> int:
    """Width of a partial sum of ``positions`` positions: xnor counts agreeing lanes (unsigned,
    padded lanes never agree), the other kinds :func:`contract.acc_bits`."""
    if pe == "xnor":
        return positions.bit_length()
    return contract.acc_bits(pe, positions, bits, max_shift=max_shift, max_align=max_align)


def _depths(acc: Accelerator, lanes: int, max_steps: int) -> dict[str, int]:
    mem = acc.memory
    width = _word_bits(acc.pe, acc.bits, acc.array.cols, lanes, acc.max_shift, acc.rtl.bias_bits,
                       max_steps * lanes, acc.max_align)
    ratio = min(_PARAM_RATIO_STEPS, max_steps)

    def depth(field: str, bits: float) -> int:
        kib = getattr(mem, field)
        words = math.floor(kib * 8192 / bits)
        if words < 1:
            raise ConfigError(f"`memory.{field}` of {kib} KiB holds no {math.ceil(bits)}-bit word "
                              f"of the generated top; enlarge it")
        return words

    weight = depth("weight_sram_kib", width["weight_words"] + width["param_words"] / ratio)
    return {"act_words": depth("ifmap_sram_kib", width["act_words"]), "weight_words": weight,
            "param_words": max(1, weight // ratio),
            "out_words": depth("ofmap_sram_kib", width["out_words"])}


def act_beat(bus_bits: int, word_bits: int, act_words: int) -> int:
    """Activation words per ``i_acts`` beat: the most whose beat still fits one bus word, a power
    of two (the operand fetch splits a word address into buffer word and lane by bits), at most
    the buffer's depth in words. One bus word a cycle is then one beat a cycle: the activation
    load runs at the memory's rate instead of one word a cycle."""
    most = max(1, min(bus_bits // word_bits, act_words))
    return 1 << (most.bit_length() - 1)


def top_geometry(acc: Accelerator) -> TopGeometry:
    """The top that the generator builds for ``acc``; raises :class:`ConfigError` naming the
    field when it cannot build one (operand width, dataflow, lanes, a buffer smaller than one
    fold, an ``acc_bits`` too narrow for ``rtl.max_steps``)."""
    if acc.array.dataflow != "os":
        raise ConfigError(f"`array.dataflow` {acc.array.dataflow!r}: the generated RTL is "
                          f"output-stationary; use os (--dataflow os)")
    if acc.memory.global_buffer_kib:
        raise ConfigError("`memory.global_buffer_kib`: the generated top has one buffer per operand; "
                          "set it to 0 and size memory.ifmap_sram_kib, weight_sram_kib, ofmap_sram_kib")
    try:
        contract.check_bits(acc.pe, acc.bits, hardware=True)
    except contract.ContractError as exc:
        raise ConfigError(f"`bits` of {acc.bits}: {exc}") from None
    lanes = contract.lanes_per_pe(acc.pe, acc.array.lanes)
    if lanes & (lanes - 1):
        raise ConfigError(f"`array.lanes` must be a power of two for the generated xnor top, not {lanes}")
    if acc.pe == "shift" and acc.max_shift > contract.MAX_SHIFT_LIMIT:
        raise ConfigError(f"`max_shift` must be at most {contract.MAX_SHIFT_LIMIT} for the generated "
                          f"shift PE, not {acc.max_shift}")
    max_steps = acc.rtl.max_steps
    if max_steps == 0:
        max_steps = min(DEFAULT_MAX_STEPS, _depths(acc, lanes, DEFAULT_MAX_STEPS)["weight_words"])
        # below 9 steps a fold shares its parameter word with fewer weight words, so the depth
        # shrinks with max_steps: take the longest fold that still fits
        while max_steps > 1 and _depths(acc, lanes, max_steps)["weight_words"] < max_steps:
            max_steps -= 1
    words = _depths(acc, lanes, max_steps)
    if words["weight_words"] < max_steps:
        raise ConfigError(f"`memory.weight_sram_kib` of {acc.memory.weight_sram_kib} holds "
                          f"{words['weight_words']} weight words, fewer than one fold of "
                          f"`rtl.max_steps`={max_steps}; enlarge it or lower rtl.max_steps")
    if words["out_words"] < acc.array.rows:
        raise ConfigError(f"`memory.ofmap_sram_kib` of {acc.memory.ofmap_sram_kib} holds "
                          f"{words['out_words']} output words, fewer than one fold of "
                          f"{acc.array.rows} rows; enlarge it")
    need = contract.acc_bits(acc.pe, max_steps * lanes, acc.bits, max_shift=acc.max_shift, lanes=lanes,
                             max_align=acc.max_align)
    if acc.acc_bits and acc.acc_bits < need:
        raise ConfigError(f"`acc_bits` of {acc.acc_bits} cannot hold a {acc.pe} fold of "
                          f"`rtl.max_steps`={max_steps} steps; it needs at least {need} "
                          f"(or lower rtl.max_steps)")
    geo = TopGeometry(pe=acc.pe, bits=acc.bits, rows=acc.array.rows, cols=acc.array.cols,
                      lanes=lanes, max_shift=acc.max_shift, max_align=acc.max_align,
                      max_steps=max_steps,
                      acc_bits=acc.acc_bits or need, bias_bits=acc.rtl.bias_bits,
                      dim_bits=acc.rtl.dim_bits, psum_words=1, bus_bits=acc.rtl.bus_bits,
                      fold_overlap=acc.array.fold_overlap, **words)
    beat = act_beat(acc.rtl.bus_bits, geo.word_bits["act_words"], geo.act_words)
    geo = dataclasses.replace(geo, act_beat=beat, act_words=geo.act_words // beat * beat)
    if acc.array.depthwise == "channel_parallel" and acc.pe != "xnor":
        lanes = min(geo.cols, beat)
        geo = dataclasses.replace(geo, dw_lanes=1 << (lanes.bit_length() - 1) if lanes > 1 else 0)
    # the psum buffer: the ofmap SRAM's capacity again, at the psum word width (module docstring)
    return dataclasses.replace(geo, psum_words=math.floor(acc.memory.ofmap_sram_kib * 8192
                                                          / (geo.cols * geo.psum_bits)))


@dataclass(frozen=True)
class LayerShape:
    """A conv or linear layer as the top sees it: totals of channels, input size, kernel,
    stride, padding and groups (a linear layer is a 1x1 conv on a 1x1 input). ``out_h`` (0: the
    conv formula's) lets a row tile (:mod:`hwsim.rtl_tiles`) run fewer output rows than its input
    and top padding would give: the walker never reaches the rows below them.

    A K tile (:func:`split`) is told its slice's ``in_ch`` and carries the partial-sum flags:
    ``psum_add`` (add the psum buffer's sums), ``psum_write`` (write the sums there, store
    nothing) and ``k_in_ch`` (the whole reduction's input channels per group, whose positions the
    xnor output stage counts; 0: this shape's own). ``residual``: the outputs add a shortcut
    tensor before the clamp (``models.intref``; the top loads it in out buffer order); a K tiled
    layer adds it in its last K tile only."""

    conv: bool
    in_ch: int
    out_ch: int
    in_h: int = 1
    in_w: int = 1
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    groups: int = 1
    out_h: int = 0
    k_in_ch: int = 0
    psum_add: bool = False
    psum_write: bool = False
    residual: bool = False

    @classmethod
    def of_layer(cls, layer: Layer) -> LayerShape:
        """The shape of a workload layer (a conv or linear). A linear layer over ``batch`` > 1 rows
        (tokens) runs as the 1x1 conv it is, over a ``batch`` x 1 input: one row per pixel."""
        if tuple(layer.dilation) != (1, 1):
            raise DoesNotFit(f"a dilation of {layer.dilation[0]}x{layer.dilation[1]}: the generated top's "
                             "walker reads adjacent taps only (run it on the model's cycles)")
        if layer.op == "linear":
            if layer.batch > 1:
                return cls(True, layer.in_ch, layer.out_ch, layer.batch, 1)
            return cls(False, layer.in_ch, layer.out_ch)
        return cls(True, layer.in_ch, layer.out_ch, layer.in_h, layer.in_w, tuple(layer.kernel),
                   tuple(layer.stride), tuple(layer.padding), layer.groups)


@dataclass(frozen=True)
class LayerPlan:
    """One layer on one top (names as in ``rtl.top``): channels *per group*, sizes, ``tiles``
    output tiles of ``cols`` channels per group, ``channel_words`` per pixel, ``steps`` per fold
    and ``row_tiles`` of ``rows`` output pixels; the partial-sum flags and ``k_in_ch`` as
    :class:`LayerShape` has them (``k_in_ch`` 0 unless a K tile), and ``residual``.

    ``depthwise`` (0: off) is the ``L`` channels of a depthwise layer that one fold runs side by
    side, channel ``b * L + c`` on column ``c`` of fold group ``b`` (:func:`channel_parallel`):
    the descriptor then states ``ceil(groups / L)`` groups of one channel and the ``depthwise``
    flag, and the activations are channels-last over the layer's channels, ``L``-aligned."""

    groups: int
    in_ch: int
    out_ch: int
    in_h: int
    in_w: int
    out_h: int
    out_w: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    tiles: int
    channel_words: int
    steps: int
    row_tiles: int
    k_in_ch: int = 0
    psum_add: bool = False
    psum_write: bool = False
    residual: bool = False
    depthwise: int = 0

    @property
    def fold_groups(self) -> int:
        """Groups of folds per row tile: the groups, or blocks of ``depthwise`` of them."""
        return -(-self.groups // self.depthwise) if self.depthwise else self.groups

    @property
    def folds(self) -> int:
        return self.row_tiles * self.fold_groups * self.tiles

    @property
    def pixel_words(self) -> int:
        """Activation words per input pixel of one group (of all channels, depthwise)."""
        return self.fold_groups * self.depthwise if self.depthwise else self.channel_words

    def act_index(self, group: int, word: int, iy: int, ix: int) -> int:
        """The activation word (in stream order) of channel word ``word`` of ``group`` at input
        pixel ``(iy, ix)``: group-major, or channels-last over all groups when depthwise."""
        pixel = iy * self.in_w + ix
        if self.depthwise:
            return pixel * self.pixel_words + group
        return (group * self.in_h * self.in_w + pixel) * self.channel_words + word

    def lane_channel(self, fold_group: int, tile: int, lane: int, cols: int) -> int | None:
        """The layer output channel (group-major index) that lane ``lane`` of output tile
        ``tile`` of fold group ``fold_group`` holds, None for a padding lane."""
        if self.depthwise:
            channel = fold_group * self.depthwise + lane
            return channel if lane < self.depthwise and channel < self.groups else None
        o = tile * cols + lane
        return fold_group * self.out_ch + o if o < self.out_ch else None

    @property
    def stores(self) -> bool:
        """The layer's results leave the top (no ``psum_write``)."""
        return not self.psum_write

    @property
    def positions(self) -> int:
        """K of the output stage: the whole reduction's positions per output."""
        return (self.k_in_ch or self.in_ch) * self.kernel[0] * self.kernel[1]

    def psum_words(self, rows: int) -> int:
        """Psum buffer words the layer reads or writes (0 without the partial-sum flags)."""
        return self.folds * rows if self.psum_add or self.psum_write else 0

    def words(self, rows: int) -> dict[str, int]:
        """Buffer words the layer needs, keyed like :attr:`TopGeometry.words`."""
        tiles = self.fold_groups * self.tiles
        planes = 1 if self.depthwise else self.groups
        return {"act_words": planes * self.in_h * self.in_w * self.pixel_words,
                "weight_words": tiles * self.steps, "param_words": tiles,
                "out_words": self.folds * rows}

    def descriptor(self) -> dict[str, int]:
        """The descriptor's geometry fields (:data:`DESCRIPTOR_FIELDS`)."""
        return dict(zip(DESCRIPTOR_FIELDS, (self.in_h, self.in_w, self.out_h, self.out_w, self.in_ch,
                                            self.out_ch, self.fold_groups, *self.kernel, *self.stride,
                                            *self.padding)))

    def k_fields(self) -> dict[str, int]:
        """The descriptor's K-tile fields (``psum_add``, ``psum_write``, ``k_in_ch``), ``residual``
        and ``depthwise``."""
        return {"psum_add": int(self.psum_add), "psum_write": int(self.psum_write), "k_in_ch": self.k_in_ch,
                "residual": int(self.residual), "depthwise": int(bool(self.depthwise))}

    def resid_words(self, rows: int) -> int:
        """Residual words the layer loads (one per out buffer word; 0 without ``residual``)."""
        return self.folds * rows if self.residual else 0


def channel_parallel(geo: TopGeometry, shape: LayerShape) -> int:
    """The channels a fold of ``shape`` runs side by side in the top's depthwise mode
    (``geo.dw_lanes``), or 0: a depthwise layer (more than one group, one input and one output
    channel each) on a top built with that mode (``array.depthwise: channel_parallel``, not
    xnor). Other grouped layers run one group per fold."""
    per_group = (shape.in_ch // shape.groups, shape.out_ch // shape.groups)
    if geo.dw_lanes and shape.groups > 1 and per_group == (1, 1) and not shape.k_in_ch:
        return geo.dw_lanes
    return 0


def plan(geo: TopGeometry, shape: LayerShape) -> LayerPlan:
    """The :class:`LayerPlan` of ``shape`` on ``geo``; raises :class:`DoesNotFit` naming the
    first field, fold or buffer that is too large, and the fix."""
    groups = shape.groups
    if shape.in_ch % groups or shape.out_ch % groups:
        raise DoesNotFit(f"{shape.in_ch} -> {shape.out_ch} channels do not split into {groups} groups")
    try:
        out_h = shape.out_h or contract.conv_out_size(shape.in_h, shape.kernel[0], shape.stride[0],
                                                      shape.padding[0])
        out_w = contract.conv_out_size(shape.in_w, shape.kernel[1], shape.stride[1], shape.padding[1])
    except contract.ContractError as exc:
        raise DoesNotFit(str(exc)) from None
    in_ch, out_ch = shape.in_ch // groups, shape.out_ch // groups
    channel_words = math.ceil(in_ch / geo.lanes)
    result = LayerPlan(groups=groups, in_ch=in_ch, out_ch=out_ch, in_h=shape.in_h, in_w=shape.in_w,
                       out_h=out_h, out_w=out_w, kernel=shape.kernel, stride=shape.stride,
                       padding=shape.padding, tiles=math.ceil(out_ch / geo.cols),
                       channel_words=channel_words,
                       steps=shape.kernel[0] * shape.kernel[1] * channel_words,
                       row_tiles=math.ceil(out_h * out_w / geo.rows), k_in_ch=shape.k_in_ch,
                       psum_add=shape.psum_add, psum_write=shape.psum_write, residual=shape.residual,
                       depthwise=channel_parallel(geo, shape))
    if shape.residual and geo.pe == "xnor":
        raise DoesNotFit("a residual add needs a requantizing top (mac, adder, shift), not xnor")
    for name, value in {**result.descriptor(), "k_in_ch": result.k_in_ch}.items():
        width = GEOMETRY_BITS if name.startswith(("kernel", "stride", "pad")) else geo.dim_bits
        if value >= 1 << width:
            fix = "" if width == GEOMETRY_BITS else "; raise rtl.dim_bits"
            raise DoesNotFit(f"`{name}` of {value} does not fit the descriptor's {width}-bit field{fix}")
    if result.steps > geo.max_steps:
        raise DoesNotFit(f"a fold of {result.steps} steps exceeds rtl.max_steps={geo.max_steps}; "
                         f"raise rtl.max_steps and memory.weight_sram_kib")
    if result.positions > geo.max_positions:
        raise DoesNotFit(f"a reduction of {result.positions} positions exceeds the {geo.max_positions} "
                         f"the top's outputs hold; raise rtl.max_steps")
    psum = result.psum_words(geo.rows)
    if psum > geo.psum_words:
        raise DoesNotFit(f"layer needs {psum} psum buffer words, the buffer holds {geo.psum_words}; "
                         f"enlarge memory.ofmap_sram_kib")
    for name, need in result.words(geo.rows).items():
        if need > geo.words[name]:
            what = name.replace("_words", "")
            kib = {"act": "ifmap", "weight": "weight", "param": "weight", "out": "ofmap"}[what]
            raise DoesNotFit(f"layer needs {need} {what} buffer words, the buffer holds "
                             f"{geo.words[name]}; enlarge memory.{kib}_sram_kib")
    return result


@dataclass(frozen=True)
class Tile:
    """One descriptor's share of a layer too large for the top, a layer of its own: groups
    ``[g0, g1)``, output channels ``[o0, o1)`` of each of them, output rows ``[r0, r1)``, reading
    input rows ``[i0, i1)`` and input channels ``in_channels`` ``[c0, c1)`` of each group (all of
    them unless the layer runs as K tiles); ``shape`` is what the top is told, ``plan`` its plan.
    A K tile with ``plan.psum_write`` returns no results."""

    groups: tuple[int, int]
    channels: tuple[int, int]
    rows: tuple[int, int]
    in_rows: tuple[int, int]
    shape: LayerShape
    plan: LayerPlan
    in_channels: tuple[int, int] = (0, 0)


def _row_parts(shape: LayerShape, rows: int) -> list[tuple[int, int, int, int, LayerShape]]:
    """``(r0, r1, i0, i1, shape)`` of each row tile of ``rows`` output rows (see :func:`split`)."""
    kh, sh, (ph, pw) = shape.kernel[0], shape.stride[0], shape.padding
    out_h = shape.out_h or contract.conv_out_size(shape.in_h, kh, sh, ph)
    if rows >= out_h:
        return [(0, out_h, 0, shape.in_h, dataclasses.replace(shape, out_h=out_h))]
    parts = []
    for r0 in range(0, out_h, rows):
        r1 = min(out_h, r0 + rows)
        top = r0 * sh - ph
        i0, i1 = max(0, top), min(shape.in_h, (r1 - 1) * sh - ph + kh)
        parts.append((r0, r1, i0, i1, dataclasses.replace(shape, in_h=i1 - i0, padding=(max(0, -top), pw),
                                                         out_h=r1 - r0)))
    return parts


def _narrowed(shape: LayerShape, groups: int, channels: int) -> LayerShape:
    """``shape`` with ``groups`` of its groups and ``channels`` output channels in each."""
    return dataclasses.replace(shape, in_ch=groups * (shape.in_ch // shape.groups), out_ch=groups * channels,
                               groups=groups)


def k_slices(geo: TopGeometry, shape: LayerShape, count: int) -> list[tuple[int, int]]:
    """The input channels ``[c0, c1)`` per group of each of ``count`` K tiles: the group's channel
    words cut into ``count`` slices as equal as can be (the longer first), ``lanes`` channels a
    word (the last slice ends at the group's last channel)."""
    per_group = shape.in_ch // shape.groups
    words = math.ceil(per_group / geo.lanes)
    if not 1 <= count <= words:
        raise ValueError(f"`count` must be from 1 to {words} K tiles, not {count!r}")
    cuts, start = [], 0
    for index in range(count):
        size = words // count + (index < words % count)
        cuts.append((start * geo.lanes, min(per_group, (start + size) * geo.lanes)))
        start += size
    return cuts


def _k_parts(geo: TopGeometry, shape: LayerShape, count: int) -> list[tuple[tuple[int, int], LayerShape]]:
    """Each K tile of ``shape`` (one output tile's, in order) as ``(input channels, shape)``: the
    slice's channels, the first writing partial sums, the middle ones adding and writing them,
    the last adding them and storing results over the whole reduction (``k_in_ch``)."""
    if count == 1:
        return [((0, shape.in_ch // shape.groups), shape)]
    per_group = shape.in_ch // shape.groups
    return [((c0, c1), dataclasses.replace(shape, in_ch=shape.groups * (c1 - c0), k_in_ch=per_group,
                                           psum_add=index > 0, psum_write=index < count - 1,
                                           residual=shape.residual and index == count - 1))
            for index, (c0, c1) in enumerate(k_slices(geo, shape, count))]


def _sizes(total: int, size: int) -> Counter[int]:
    """How many chunks of each size cutting ``total`` into chunks of ``size`` makes."""
    sizes = Counter({size: total // size})
    if total % size:
        sizes[total % size] += 1
    return sizes


def tile_shapes(geo: TopGeometry, shape: LayerShape, groups: int, channels: int, rows: int,
                k_tiles: int = 1) -> Counter[LayerShape]:
    """The distinct tile shapes of :func:`split` with how many tiles have each (no plan made)."""
    per_group = shape.out_ch // shape.groups
    found: Counter[LayerShape] = Counter()
    rows_of = Counter(part for *_, part in _row_parts(shape, rows))
    for g, g_count in _sizes(shape.groups, groups).items():
        for c, c_count in _sizes(per_group, channels).items():
            for part, r_count in rows_of.items():
                for _, k_part in _k_parts(geo, _narrowed(part, g, c), k_tiles):
                    found[k_part] += g_count * c_count * r_count
    return found


def split(geo: TopGeometry, shape: LayerShape, groups: int, channels: int, rows: int,
          k_tiles: int = 1) -> list[Tile]:
    """``shape`` cut into tiles of ``groups`` groups, ``channels`` output channels per group (a
    multiple of ``geo.cols`` unless it is all of them), ``rows`` output rows and ``k_tiles`` K
    tiles (:func:`k_slices`), groups outermost, then channels, then rows, K tiles innermost: the
    K tiles of one output tile run back to back with the same folds in the same order, so that
    a fold's partial sums sit at its out buffer address. A row tile loads the input rows its
    output rows read, halo included: from ``r0 * stride - pad`` (below 0: the tile keeps that
    much top padding) to ``(r1 - 1) * stride - pad + kh`` (beyond ``in_h``: the walker reads
    zeros past a tile's last row, the bottom padding); its descriptor's ``out_h`` is ``r1 - r0``.
    Raises :class:`DoesNotFit` when a tile does not fit (:func:`plan`)."""
    per_group = shape.out_ch // shape.groups
    plans = {part: plan(geo, part) for part in tile_shapes(geo, shape, groups, channels, rows, k_tiles)}
    parts = _row_parts(shape, rows)
    tiles = []
    for g0 in range(0, shape.groups, groups):
        g1 = min(shape.groups, g0 + groups)
        for o0 in range(0, per_group, channels):
            o1 = min(per_group, o0 + channels)
            for r0, r1, i0, i1, part in parts:
                for k_channels, k_part in _k_parts(geo, _narrowed(part, g1 - g0, o1 - o0), k_tiles):
                    tiles.append(Tile((g0, g1), (o0, o1), (r0, r1), (i0, i1), k_part, plans[k_part], k_channels))
    return tiles
