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

* activation word: ``L`` (xnor) or ``bits``;
* weight lane: ``L`` (xnor), the shift-weight code (:func:`contract.weight_code_bits`) or ``bits``;
* parameter lane: ``bias_bits + MULT_BITS + RSHIFT_BITS`` (requantization) or, for xnor, a
  threshold holding ``[-K_max - 1, K_max + 1]`` and a negate bit (:func:`param_fields`);
* output lane: ``bits``, or for xnor the dot product of ``K_max`` positions.

Buffer depths come from ``memory.*_sram_kib``: ``floor(KiB * 8192 / word bits)``. The weight SRAM
also holds the parameters, one parameter word per ``min(9, max_steps)`` weight words (a 3x3
depthwise tile has 9 steps, the shortest of common layers).
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

__all__ = ["DEFAULT_MAX_STEPS", "DESCRIPTOR_FIELDS", "DESCRIPTOR_FLAGS", "LayerPlan", "LayerShape", "Tile", "TopGeometry",
           "descriptor_bits", "param_fields", "plan", "split", "tile_shapes", "top_geometry"]

#: Longest fold (beats) the top is sized for unless configured: a 3 x 3 kernel over 512 channel
#: words, the longest reduction of ResNet-18/50 (shorter when the weight buffer holds fewer words).
DEFAULT_MAX_STEPS = 4608
#: Parameter words per weight word are sized for folds this short (a 3x3 depthwise tile).
_PARAM_RATIO_STEPS = 9
#: The descriptor's fields in bit order: sizes of ``dim_bits``, then the 4-bit geometry, then flags.
DESCRIPTOR_FIELDS = ("in_h", "in_w", "out_h", "out_w", "in_ch", "out_ch", "groups",
                     "kernel_h", "kernel_w", "stride_h", "stride_w", "pad_h", "pad_w")
#: The descriptor's one-bit flags, after :data:`DESCRIPTOR_FIELDS` (``rtl.im2col.descriptor_layout``).
DESCRIPTOR_FLAGS = ("relu", "binary_out", "pad_low")


def descriptor_bits(dim_bits: int) -> int:
    """Width of the descriptor (``rtl.im2col.descriptor_layout``): sizes of ``dim_bits``, the
    kernel/stride/padding geometry of ``GEOMETRY_BITS``, one bit per flag."""
    geometry = sum(name.startswith(("kernel", "stride", "pad")) for name in DESCRIPTOR_FIELDS)
    return (len(DESCRIPTOR_FIELDS) - geometry) * dim_bits + geometry * GEOMETRY_BITS + len(DESCRIPTOR_FLAGS)


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
    the largest group alignment of a grouped adder (0: none); ``bus_bits`` the network
    accelerator's AXI data width.
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
    bus_bits: int = 64

    @property
    def positions(self) -> int:
        """Most reduction positions of one fold (xnor: binary positions)."""
        return self.max_steps * self.lanes

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
    return TopGeometry(pe=acc.pe, bits=acc.bits, rows=acc.array.rows, cols=acc.array.cols,
                       lanes=lanes, max_shift=acc.max_shift, max_align=acc.max_align,
                       max_steps=max_steps,
                       acc_bits=acc.acc_bits or need, bias_bits=acc.rtl.bias_bits,
                       dim_bits=acc.rtl.dim_bits, bus_bits=acc.rtl.bus_bits, **words)


@dataclass(frozen=True)
class LayerShape:
    """A conv or linear layer as the top sees it: totals of channels, input size, kernel,
    stride, padding and groups (a linear layer is a 1x1 conv on a 1x1 input). ``out_h`` (0: the
    conv formula's) lets a row tile (:mod:`hwsim.rtl_tiles`) run fewer output rows than its input
    and top padding would give: the walker never reaches the rows below them."""

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
    and ``row_tiles`` of ``rows`` output pixels."""

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

    @property
    def folds(self) -> int:
        return self.row_tiles * self.groups * self.tiles

    def words(self, rows: int) -> dict[str, int]:
        """Buffer words the layer needs, keyed like :attr:`TopGeometry.words`."""
        tiles = self.groups * self.tiles
        return {"act_words": self.groups * self.in_h * self.in_w * self.channel_words,
                "weight_words": tiles * self.steps, "param_words": tiles,
                "out_words": self.folds * rows}

    def descriptor(self) -> dict[str, int]:
        """The descriptor's geometry fields (:data:`DESCRIPTOR_FIELDS`)."""
        return dict(zip(DESCRIPTOR_FIELDS, (self.in_h, self.in_w, self.out_h, self.out_w, self.in_ch,
                                            self.out_ch, self.groups, *self.kernel, *self.stride,
                                            *self.padding)))


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
                       row_tiles=math.ceil(out_h * out_w / geo.rows))
    for name, value in result.descriptor().items():
        width = GEOMETRY_BITS if name.startswith(("kernel", "stride", "pad")) else geo.dim_bits
        if value >= 1 << width:
            fix = "" if width == GEOMETRY_BITS else "; raise rtl.dim_bits"
            raise DoesNotFit(f"`{name}` of {value} does not fit the descriptor's {width}-bit field{fix}")
    if result.steps > geo.max_steps:
        raise DoesNotFit(f"a fold of {result.steps} steps exceeds rtl.max_steps={geo.max_steps}; "
                         f"raise rtl.max_steps and memory.weight_sram_kib")
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
    input rows ``[i0, i1)``; ``shape`` is what the top is told, ``plan`` its plan."""

    groups: tuple[int, int]
    channels: tuple[int, int]
    rows: tuple[int, int]
    in_rows: tuple[int, int]
    shape: LayerShape
    plan: LayerPlan


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


def _sizes(total: int, size: int) -> Counter[int]:
    """How many chunks of each size cutting ``total`` into chunks of ``size`` makes."""
    sizes = Counter({size: total // size})
    if total % size:
        sizes[total % size] += 1
    return sizes


def tile_shapes(shape: LayerShape, groups: int, channels: int, rows: int) -> Counter[LayerShape]:
    """The distinct tile shapes of :func:`split` with how many tiles have each (no plan made)."""
    per_group = shape.out_ch // shape.groups
    found: Counter[LayerShape] = Counter()
    rows_of = Counter(part for *_, part in _row_parts(shape, rows))
    for g, g_count in _sizes(shape.groups, groups).items():
        for c, c_count in _sizes(per_group, channels).items():
            for part, r_count in rows_of.items():
                found[_narrowed(part, g, c)] += g_count * c_count * r_count
    return found


def split(geo: TopGeometry, shape: LayerShape, groups: int, channels: int, rows: int) -> list[Tile]:
    """``shape`` cut into tiles of ``groups`` groups, ``channels`` output channels per group (a
    multiple of ``geo.cols`` unless it is all of them) and ``rows`` output rows, groups outermost,
    then channels, then rows. A row tile loads the input rows its output rows read, halo
    included: from ``r0 * stride - pad`` (below 0: the tile keeps that much top padding) to
    ``(r1 - 1) * stride - pad + kh`` (beyond ``in_h``: the walker reads zeros past a tile's last
    row, the bottom padding); its descriptor's ``out_h`` is ``r1 - r0``. Raises
    :class:`DoesNotFit` when a tile does not fit (:func:`plan`)."""
    per_group = shape.out_ch // shape.groups
    plans = {part: plan(geo, part) for part in tile_shapes(shape, groups, channels, rows)}
    parts = _row_parts(shape, rows)
    tiles = []
    for g0 in range(0, shape.groups, groups):
        g1 = min(shape.groups, g0 + groups)
        for o0 in range(0, per_group, channels):
            o1 = min(per_group, o0 + channels)
            for r0, r1, i0, i1, part in parts:
                part = _narrowed(part, g1 - g0, o1 - o0)
                tiles.append(Tile((g0, g1), (o0, o1), (r0, r1), (i0, i1), part, plans[part]))
    return tiles
