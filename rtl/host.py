"""The host's side of :class:`~rtl.top.LayerAccelerator`: a layer's beats in, its outputs back.

:func:`program` turns an integer layer (any object with the fields of ``models.intref.QLayer``;
rtl does not import models) and its input into the descriptor and the parameter, weight and
activation beats in the buffer layouts of :mod:`rtl.top`; :func:`unpack` turns the result beats
into the array :func:`models.intref.int_forward` returns. Batch 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from amaranth.hdl import Const, Shape

from rtl.pe import encode_shift_weight
from rtl.top import GEOMETRY_BITS, LayerAccelerator

__all__ = ["LayerPlan", "LayerProgram", "plan", "program", "unpack"]


@dataclass(frozen=True)
class LayerPlan:
    """Geometry of one layer on one accelerator (names as in :mod:`rtl.top`)."""

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
        """Buffer words the layer needs, keyed like the accelerator's ``*_words`` parameters."""
        tiles = self.groups * self.tiles
        return {"act_words": self.groups * self.in_h * self.in_w * self.channel_words,
                "weight_words": tiles * self.steps, "param_words": tiles,
                "out_words": self.folds * rows}


@dataclass(frozen=True)
class LayerProgram:
    """The beats of one layer: ``descriptor``, then ``params``, ``weights``, ``acts``, each an int
    holding the payload bits; ``result_beats`` words come back on ``o_results``."""

    plan: LayerPlan
    descriptor: int
    params: list[int]
    weights: list[int]
    acts: list[int]
    result_beats: int


def plan(top: LayerAccelerator, q: Any, in_hw: tuple[int, int] = (1, 1)) -> LayerPlan:
    """The :class:`LayerPlan` of layer ``q`` with input size ``in_hw`` on ``top``.

    Raises ValueError naming the first mismatch: PE kind or widths other than the accelerator's,
    a descriptor field too wide, a fold longer than ``max_steps``, a buffer too small.
    """
    if q.pe != top.kind:
        raise ValueError(f"layer is of PE kind {q.pe}, the accelerator of {top.kind}")
    if q.pe != "xnor" and q.bits_in != top.bits:
        raise ValueError(f"layer has {q.bits_in}-bit inputs, the accelerator {top.bits}-bit")
    if q.pe != "xnor" and q.bits_out != top.bits:
        raise ValueError(f"layer has {q.bits_out}-bit outputs, the accelerator {top.bits}-bit")
    if q.pe == "shift" and q.max_shift != top.max_shift:
        raise ValueError(f"layer has max_shift={q.max_shift}, the accelerator {top.max_shift}")
    kernel = tuple(q.kernel_size) if q.conv else (1, 1)
    stride = tuple(q.stride) if q.conv else (1, 1)
    padding = tuple(q.padding) if q.conv else (0, 0)
    in_h, in_w = in_hw if q.conv else (1, 1)
    out_h = (in_h + 2 * padding[0] - kernel[0]) // stride[0] + 1
    out_w = (in_w + 2 * padding[1] - kernel[1]) // stride[1] + 1
    groups = q.groups if q.conv else 1
    in_ch, out_ch = q.in_channels // groups, q.out_channels // groups
    fields = {"in_h": in_h, "in_w": in_w, "out_h": out_h, "out_w": out_w, "in_ch": in_ch,
              "out_ch": out_ch, "groups": groups}
    fields.update(zip(("kernel_h", "kernel_w", "stride_h", "stride_w", "pad_h", "pad_w"),
                      kernel + stride + padding))
    for name, value in fields.items():
        width = GEOMETRY_BITS if name.startswith(("kernel", "stride", "pad")) else top.dim_bits
        if value >= 1 << width:
            raise ValueError(f"`{name}` of {value} does not fit the descriptor's {width}-bit field")
    words = math.ceil(in_ch / top.lanes)
    result = LayerPlan(groups=groups, in_ch=in_ch, out_ch=out_ch, in_h=in_h, in_w=in_w,
                       out_h=out_h, out_w=out_w, kernel=kernel, stride=stride, padding=padding,
                       tiles=math.ceil(out_ch / top.cols), channel_words=words,
                       steps=kernel[0] * kernel[1] * words,
                       row_tiles=math.ceil(out_h * out_w / top.rows))
    if result.steps > top.max_steps:
        raise ValueError(f"a fold of {result.steps} steps exceeds max_steps={top.max_steps}")
    for name, need in result.words(top.rows).items():
        if need > top.words[name]:
            raise ValueError(f"layer needs {need} {name.replace('_words', '')} buffer words, "
                             f"the buffer holds {top.words[name]}")
    return result


def _pack(values: list[int], width: int) -> int:
    mask = (1 << width) - 1
    return sum((int(v) & mask) << (i * width) for i, v in enumerate(values))


def _bits(values: np.ndarray) -> int:
    return sum(int(b) << i for i, b in enumerate(values))


def program(top: LayerAccelerator, q: Any, x: np.ndarray) -> LayerProgram:
    """All beats of layer ``q`` on input ``x`` (``(1, C, H, W)`` or ``(1, C)``); see :func:`plan`."""
    p = plan(top, q, tuple(x.shape[2:]) if q.conv else (1, 1))
    lanes, cols = top.lanes, top.cols
    xnor = q.pe == "xnor"
    w = q.weight.reshape(q.out_channels, p.in_ch, *p.kernel)
    sh = None if q.shift is None else q.shift.reshape(w.shape)
    img = x.reshape(p.groups, p.in_ch, p.in_h, p.in_w)

    def channel(o: int) -> int | None:
        return o if o < p.out_ch else None

    params, weights = [], []
    elem_w = Shape.cast(top.w_shape).width
    for g in range(p.groups):
        for t in range(p.tiles):
            outs = [channel(t * cols + c) for c in range(cols)]
            params.append(Const.cast(top.param_word.const([_param(q, g * p.out_ch + o, top)
                                                           if o is not None else {} for o in outs])).value)
            for ky in range(p.kernel[0]):
                for kx in range(p.kernel[1]):
                    for cw in range(p.channel_words):
                        lane = []
                        for o in outs:
                            if o is None:
                                lane.append(0)
                                continue
                            o = g * p.out_ch + o
                            if xnor:
                                chans = [w[o, c, ky, kx] if c < p.in_ch else 1
                                         for c in range(cw * lanes, (cw + 1) * lanes)]
                                lane.append(_bits(np.array(chans)))
                            elif q.pe == "shift":
                                lane.append(encode_shift_weight(int(w[o, cw, ky, kx]),
                                                                int(sh[o, cw, ky, kx]), top.max_shift))
                            else:
                                lane.append(int(w[o, cw, ky, kx]))
                        weights.append(_pack(lane, elem_w))
    acts = []
    for g in range(p.groups):
        for iy in range(p.in_h):
            for ix in range(p.in_w):
                for cw in range(p.channel_words):
                    if xnor:
                        chans = img[g, cw * lanes:(cw + 1) * lanes, iy, ix]
                        acts.append(_bits(chans))
                    else:
                        acts.append(int(img[g, cw, iy, ix]) & ((1 << top.bits) - 1))
    fields = {"in_h": p.in_h, "in_w": p.in_w, "out_h": p.out_h, "out_w": p.out_w,
              "in_ch": p.in_ch, "out_ch": p.out_ch, "groups": p.groups,
              "kernel_h": p.kernel[0], "kernel_w": p.kernel[1], "stride_h": p.stride[0],
              "stride_w": p.stride[1], "pad_h": p.padding[0], "pad_w": p.padding[1],
              "relu": int(bool(q.relu)), "binary_out": int(bool(q.binary_out))}
    return LayerProgram(plan=p, descriptor=Const.cast(top.descriptor.const(fields)).value,
                        params=params, weights=weights, acts=acts,
                        result_beats=p.folds * top.rows)


def _param(q: Any, o: int, top: LayerAccelerator) -> dict[str, int]:
    if q.pe == "xnor":
        if not q.binary_out:
            return {}
        return {"threshold": int(q.threshold[o]), "negate": int(q.compare_sign[o] < 0)}
    bias = int(q.bias[o])
    if not -(1 << (top.output.bias_bits - 1)) <= bias < 1 << (top.output.bias_bits - 1):
        raise ValueError(f"bias {bias} of channel {o} does not fit {top.output.bias_bits} bits")
    return {"bias": bias, "mult": int(q.multiplier[o]), "shift": int(q.rshift[o])}


def unpack(top: LayerAccelerator, q: Any, prog: LayerProgram, beats: list[int]) -> np.ndarray:
    """The layer output (as ``int_forward``: ``(1, O, out_h, out_w)`` or ``(1, O)``) from the
    ``prog.result_beats`` result words, discarding rows past M and lanes past the channels."""
    p = prog.plan
    if len(beats) != prog.result_beats:
        raise ValueError(f"expected {prog.result_beats} result beats, not {len(beats)}")
    pixels = p.out_h * p.out_w
    y = np.zeros((p.groups * p.out_ch, pixels), dtype=np.int64)
    for index, word in enumerate(beats):
        fold, j = divmod(index, top.rows)
        row_tile, rest = divmod(fold, p.groups * p.tiles)
        g, t = divmod(rest, p.tiles)
        pixel = row_tile * top.rows + top.rows - 1 - j
        values = top.out_word.from_bits(word)
        for c in range(top.cols):
            o = t * top.cols + c
            if pixel < pixels and o < p.out_ch:
                y[g * p.out_ch + o, pixel] = values[c]
    return y.reshape(1, -1, p.out_h, p.out_w) if q.conv else y.reshape(1, -1)
