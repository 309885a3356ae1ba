"""The host's side of :class:`~rtl.top.LayerAccelerator`: a layer's beats in, its outputs back.

:func:`program` turns an integer layer (a :class:`QLayerLike`: the fields of ``models.intref.QLayer``;
rtl does not import models) and its input into the descriptor and the parameter, weight and
activation beats in the buffer layouts of :mod:`rtl.top`; :func:`unpack` turns the result beats
into the array :func:`models.intref.int_forward` returns. Batch 1. A layer too large for the
buffers runs as the tiles of :func:`hwsim.rtl_timing.tile_layer`: :func:`tile_programs` gives each
tile's beats (the tile's groups, output channels, input rows and -- for K tiles -- input channels
cut out of the layer and its input) and :func:`assemble` puts the tiles' outputs back in place. A
K tile that writes partial sums returns no results (``result_beats`` 0); the last K tile of each
output tile returns that tile's outputs over the whole reduction.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from amaranth.hdl import Const, Shape

from hwsim.errors import DoesNotFit
from hwsim.rtl_plan import LayerPlan, LayerShape, Tile, TopGeometry, plan as plan_shape
from hwsim.rtl_timing import tile_layer
from rtl.pe import encode_adder_weight, encode_shift_weight
from rtl.top import LayerAccelerator

__all__ = ["LayerProgram", "QLayerLike", "assemble", "layer_shape", "plan", "program", "tile_programs",
           "tiles", "unpack"]

#: Fields of an integer layer with one entry per output channel, cut with the channels of a tile.
PER_CHANNEL = ("weight", "shift", "multiplier", "rshift", "bias", "threshold", "compare_sign", "align",
               "out_scale", "out_offset")


class QLayerLike(Protocol):
    """The fields of ``models.intref.QLayer`` that the host reads (rtl does not import models)."""

    pe: str
    conv: bool
    in_channels: int
    out_channels: int
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    groups: int
    bits_in: int
    bits_out: int
    max_shift: int
    max_align: int
    zero_in: int
    relu: bool
    binary_out: bool
    weight: np.ndarray
    shift: np.ndarray | None
    align: np.ndarray | None
    multiplier: np.ndarray | None
    rshift: np.ndarray | None
    bias: np.ndarray | None
    threshold: np.ndarray | None
    compare_sign: np.ndarray | None


@dataclass(frozen=True)
class LayerProgram:
    """The beats of one layer: ``descriptor``, then ``params``, ``weights``, ``acts`` and ``resid``
    (a residual layer's shortcut, else none), each an int holding the payload bits;
    ``result_beats`` words come back on ``o_results`` (0 for a K tile that writes partial sums)."""

    plan: LayerPlan
    descriptor: int
    params: list[int]
    weights: list[int]
    acts: list[int]
    result_beats: int
    resid: list[int] = dataclasses.field(default_factory=list)


def layer_shape(q: QLayerLike, in_hw: tuple[int, int] = (1, 1), out_h: int = 0,
                residual: bool = False) -> LayerShape:
    """The :class:`~hwsim.rtl_plan.LayerShape` of integer layer ``q`` on an ``in_hw`` input
    (``out_h``: a row tile's output rows, 0 for the conv formula's; ``residual``: it adds a
    shortcut)."""
    if not q.conv:
        return LayerShape(False, q.in_channels, q.out_channels, residual=residual)
    return LayerShape(True, q.in_channels, q.out_channels, *in_hw, tuple(q.kernel_size),
                      tuple(q.stride), tuple(q.padding), q.groups, out_h, residual=residual)


def tiles(geo: TopGeometry, q: QLayerLike, in_hw: tuple[int, int] = (1, 1),
          residual: bool = False) -> tuple[Tile, ...]:
    """The tiles layer ``q`` runs as on ``geo`` (one when it fits whole); raises
    :class:`~hwsim.errors.DoesNotFit` like :func:`plan` when not even the smallest tile fits."""
    _check_kind(geo, q)
    return tile_layer(geo, layer_shape(q, in_hw, residual=residual))


def plan(geo: TopGeometry, q: QLayerLike, in_hw: tuple[int, int] = (1, 1), out_h: int = 0) -> LayerPlan:
    """The :class:`~hwsim.rtl_plan.LayerPlan` of layer ``q`` with input size ``in_hw`` on the
    top of ``geo`` (pure: nothing is built, so a command can call it before a slow build).

    Raises :class:`~hwsim.errors.DoesNotFit` naming the first mismatch: PE kind or widths other
    than the accelerator's, then what :func:`hwsim.rtl_plan.plan` finds too large.
    """
    _check_kind(geo, q)
    return plan_shape(geo, layer_shape(q, in_hw, out_h))


def _check_kind(geo: TopGeometry, q: QLayerLike) -> None:
    """Raise :class:`DoesNotFit` naming the first of ``q``'s PE kind and widths that the top's are not."""
    if q.pe != geo.pe:
        raise DoesNotFit(f"layer is of PE kind {q.pe}, the accelerator of {geo.pe}")
    if q.pe != "xnor" and q.bits_in != geo.bits:
        raise DoesNotFit(f"layer has {q.bits_in}-bit inputs, the accelerator {geo.bits}-bit")
    if q.pe != "xnor" and q.bits_out != geo.bits:
        raise DoesNotFit(f"layer has {q.bits_out}-bit outputs, the accelerator {geo.bits}-bit")
    if q.pe == "shift" and q.max_shift != geo.max_shift:
        raise DoesNotFit(f"layer has max_shift={q.max_shift}, the accelerator {geo.max_shift}")
    used = 0 if q.align is None else int(max(q.align, default=0))
    if q.pe == "adder" and used > geo.max_align:
        raise DoesNotFit(f"layer aligns groups by up to {used} bits, the accelerator by "
                         f"{geo.max_align}; raise max_align")
    if q.pe != "xnor" and q.zero_in not in (0, -(1 << (q.bits_in - 1))):
        raise DoesNotFit(f"layer input zero point {q.zero_in}: the top pads with 0 or "
                         f"{-(1 << (q.bits_in - 1))} only")

def _pack(values: list[int], width: int) -> int:
    mask = (1 << width) - 1
    return sum((int(v) & mask) << (i * width) for i, v in enumerate(values))


def _bits(values: np.ndarray) -> int:
    return sum(int(b) << i for i, b in enumerate(values))


def program(top: LayerAccelerator, q: QLayerLike, x: np.ndarray, out_h: int = 0,
            shape: LayerShape | None = None, residual: np.ndarray | None = None) -> LayerProgram:
    """All beats of layer ``q`` on input ``x`` (``(1, C, H, W)`` or ``(1, C)``), computing
    ``out_h`` output rows (0: all); see :func:`plan`. ``shape`` (a tile's, K flags included)
    replaces the shape read from ``q`` and ``x``. ``residual`` (the output's shape, as
    ``int_forward`` takes it) is the shortcut the layer adds; a ``shape`` with ``residual``
    needs it, one without refuses it."""
    if shape is None:
        shape = layer_shape(q, tuple(x.shape[2:]) if q.conv else (1, 1), out_h, residual is not None)
    _check_kind(top.geo, q)
    p = plan_shape(top.geo, shape)
    if p.residual != (residual is not None):
        raise ValueError("a residual layer needs its shortcut tensor, and only a residual layer takes one")
    lanes, cols = top.lanes, top.cols
    xnor = q.pe == "xnor"
    w = q.weight.reshape(q.out_channels, p.in_ch, *p.kernel)
    sh = None if q.shift is None else q.shift.reshape(w.shape)
    img = x.reshape(p.groups, p.in_ch, p.in_h, p.in_w)

    params, weights = [], []
    elem_w = Shape.cast(top.w_shape).width
    for g in range(p.fold_groups):
        for t in range(p.tiles):
            outs = [p.lane_channel(g, t, c, cols) for c in range(cols)]
            params.append(Const.cast(top.param_word.const([_param(q, o, top) if o is not None else {}
                                                           for o in outs])).value)
            for ky in range(p.kernel[0]):
                for kx in range(p.kernel[1]):
                    for cw in range(p.channel_words):
                        lane = []
                        for o in outs:
                            if o is None:
                                lane.append(0)
                                continue
                            if xnor:
                                chans = [w[o, c, ky, kx] if c < p.in_ch else 1
                                         for c in range(cw * lanes, (cw + 1) * lanes)]
                                lane.append(_bits(np.array(chans)))
                            elif q.pe == "shift":
                                lane.append(encode_shift_weight(int(w[o, cw, ky, kx]),
                                                                int(sh[o, cw, ky, kx]), top.max_shift))
                            elif top.geo.max_align:
                                align = 0 if q.align is None else int(q.align[o])
                                lane.append(encode_adder_weight(int(w[o, cw, ky, kx]), align,
                                                                top.bits, top.geo.max_align))
                            else:
                                lane.append(int(w[o, cw, ky, kx]))
                        weights.append(_pack(lane, elem_w))
    acts = [0] * p.words(top.rows)["act_words"]  # channel slots past the groups (depthwise) stay 0
    for g in range(p.groups):
        for iy in range(p.in_h):
            for ix in range(p.in_w):
                for cw in range(p.channel_words):
                    if xnor:
                        value = _bits(img[g, cw * lanes:(cw + 1) * lanes, iy, ix])
                    else:
                        value = int(img[g, cw, iy, ix]) & ((1 << top.bits) - 1)
                    acts[p.act_index(g, cw, iy, ix)] = value
    beat = top.geo.act_beat
    acts = [_pack(acts[k:k + beat], Shape.cast(top.x_shape).width) for k in range(0, len(acts), beat)]
    fields = {**p.descriptor(), **p.k_fields(), "relu": int(bool(q.relu)), "binary_out": int(bool(q.binary_out)),
              "pad_low": int(q.pe != "xnor" and q.zero_in != 0)}
    return LayerProgram(plan=p, descriptor=Const.cast(top.descriptor.const(fields)).value,
                        params=params, weights=weights, acts=acts,
                        result_beats=p.folds * top.rows if p.stores else 0,
                        resid=[] if residual is None else _resid_beats(top, p, residual))


def _resid_beats(top: LayerAccelerator, p: LayerPlan, r: np.ndarray) -> list[int]:
    """The shortcut ``r`` as out words in out buffer order (:func:`unpack`'s order; rows past the
    layer's pixels and lanes past its channels 0)."""
    pixels = p.out_h * p.out_w
    flat = r.reshape(p.groups * p.out_ch, -1)
    if flat.shape[1] != pixels:
        raise ValueError(f"residual must have {pixels} pixels per channel, not {flat.shape[1]}")
    width = Shape.cast(top.out_shape).width
    beats = []
    for fold in range(p.folds):
        row_tile, rest = divmod(fold, p.fold_groups * p.tiles)
        g, t = divmod(rest, p.tiles)
        outs = [p.lane_channel(g, t, c, top.cols) for c in range(top.cols)]
        for j in range(top.rows):
            pixel = row_tile * top.rows + top.rows - 1 - j
            lanes = [int(flat[o, pixel]) if pixel < pixels and o is not None else 0 for o in outs]
            beats.append(_pack(lanes, width))
    return beats


def _param(q: QLayerLike, o: int, top: LayerAccelerator) -> dict[str, int]:
    if q.pe == "xnor":
        if not q.binary_out:
            return {}
        return {"threshold": int(q.threshold[o]), "negate": int(q.compare_sign[o] < 0)}
    bias = int(q.bias[o])
    if not -(1 << (top.bias_bits - 1)) <= bias < 1 << (top.bias_bits - 1):
        raise DoesNotFit(f"bias {bias} of channel {o} does not fit {top.bias_bits} bits; raise rtl.bias_bits")
    return {"bias": bias, "mult": int(q.multiplier[o]), "shift": int(q.rshift[o])}


def unpack(top: LayerAccelerator, q: QLayerLike, prog: LayerProgram, beats: list[int]) -> np.ndarray:
    """The layer output (as ``int_forward``: ``(1, O, out_h, out_w)`` or ``(1, O)``) from the
    ``prog.result_beats`` result words, discarding rows past M and lanes past the channels."""
    p = prog.plan
    if len(beats) != prog.result_beats:
        raise ValueError(f"expected {prog.result_beats} result beats, not {len(beats)}")
    pixels = p.out_h * p.out_w
    y = np.zeros((p.groups * p.out_ch, pixels), dtype=np.int64)
    for index, word in enumerate(beats):
        fold, j = divmod(index, top.rows)
        row_tile, rest = divmod(fold, p.fold_groups * p.tiles)
        g, t = divmod(rest, p.tiles)
        pixel = row_tile * top.rows + top.rows - 1 - j
        values = top.out_word.from_bits(word)
        for c in range(top.cols):
            o = p.lane_channel(g, t, c, top.cols)
            if pixel < pixels and o is not None:
                y[o, pixel] = values[c]
    return y.reshape(1, -1, p.out_h, p.out_w) if q.conv else y.reshape(1, -1)


def _tile_layer(q: QLayerLike, x: np.ndarray, tile: Tile) -> tuple[QLayerLike, np.ndarray]:
    """The layer a tile runs and its input: the tile's output channels of each of its groups, its
    input channels (a K tile's slice) of each of its groups, its input rows and its top padding."""
    cin = q.in_channels // q.groups
    g0, g1 = tile.groups
    c0, c1 = tile.in_channels if tile.in_channels != (0, 0) else (0, cin)
    index = _channels(q, tile)
    cut = {name: getattr(q, name)[index] for name in PER_CHANNEL if getattr(q, name, None) is not None}
    for name in ("weight", "shift"):  # (O, Cg, ...) or (O, C): the slice of the input channels
        if name in cut:
            cut[name] = cut[name][:, c0:c1]
    part = dataclasses.replace(q, in_channels=tile.shape.in_ch, out_channels=tile.shape.out_ch,
                               groups=tile.shape.groups, padding=tile.shape.padding, **cut)
    inputs = np.array([g * cin + c for g in range(g0, g1) for c in range(c0, c1)], dtype=np.int64)
    if not q.conv:
        return part, x[:, inputs]
    (i0, i1) = tile.in_rows
    return part, x[:, inputs, i0:i1, :]


def tile_programs(top: LayerAccelerator, q: QLayerLike, x: np.ndarray,
                  residual: np.ndarray | None = None) -> list[tuple[Tile, QLayerLike, LayerProgram]]:
    """Each tile of layer ``q`` on input ``x`` (:func:`tiles`) with the layer it runs and its
    beats; ``residual`` (the output's shape) is the shortcut the layer adds, each tile its part
    (a K tiled layer's last K tile)."""
    out = []
    for tile in tiles(top.geo, q, tuple(x.shape[2:]) if q.conv else (1, 1), residual is not None):
        part, xt = _tile_layer(q, x, tile)
        rt = None
        if tile.plan.residual:
            rt = residual[:, _channels(q, tile)]
            if q.conv:
                rt = rt[:, :, tile.rows[0]:tile.rows[1], :]
        out.append((tile, part, program(top, part, xt, shape=tile.shape, residual=rt)))
    return out


def assemble(q: QLayerLike, parts: list[tuple[Tile, np.ndarray]]) -> np.ndarray:
    """The layer output (as ``int_forward``) from the output (as :func:`unpack` gives it) of each
    tile that stores results (K tiles writing partial sums are left out)."""
    parts = [(tile, out) for tile, out in parts if tile.plan.stores]
    first = parts[0][1]
    if not q.conv:
        y = np.zeros((1, q.out_channels), dtype=first.dtype)
    else:
        rows = max(t.rows[1] for t, _ in parts)
        y = np.zeros((1, q.out_channels, rows, first.shape[3]), dtype=first.dtype)
    for tile, out in parts:
        r0, r1 = tile.rows
        if q.conv:
            y[:, _channels(q, tile), r0:r1, :] = out
        else:
            y[:, _channels(q, tile)] = out
    return y


def _channels(q: QLayerLike, tile: Tile) -> np.ndarray:
    """The layer's output channels a tile computes, in the tile's order (group-major)."""
    per_group = q.out_channels // q.groups
    (g0, g1), (o0, o1) = tile.groups, tile.channels
    return np.array([g * per_group + o for g in range(g0, g1) for o in range(o0, o1)])
