"""Integer quantization of one float layer (with an optional batch norm to fold) per PE kind.

Each quantizer returns a :class:`~models.intref.QLayer` whose integer semantics and widths are
stated in :mod:`models.intref`. The choices made here (how scales are picked) are not part of that
contract, but they fix how well the integers approximate the float layer:

* activations are symmetric signed ``bits``-bit: ``x = x_int * scale_in`` with
  ``scale_in = in_range / (2**(bits-1) - 1)``; outputs likewise with ``out_range`` and ``bits_out``.
  Ranges come either from the caller or from a calibration batch (max |x| in, max |y| out).
  A ReLU output may instead be unsigned (``unsigned_out``, and ``unsigned_in`` of its consumer):
  ``[0, range]`` on all ``2**bits`` levels, ``x = (x_int - zero_in) * scale_in`` with
  ``zero_in = -2**(bits-1)``, the zero point removed exactly in the consumer's bias (mac, shift)
  or not at all (grouped adder: ``|x - w|`` is translation invariant).
* mac: per-output-channel symmetric ``bits``-bit weights, ``s_w[o] = max|W_o| / (2**(bits-1) - 1)``.
* adder: one shared scale for x and w, ``s = max(in_range, max|W|) / (2**(bits-1) - 1)``, so
  ``|x - w|`` is meaningful in integers (Wang et al., AdderNet minimalist hardware); or, with
  ``groups``, AdderNet redistribution (:mod:`models.redistribute`): x keeps its scale, each group
  of output channels has the scale ``s * 2**-e`` and weights are clamped to x's grid losslessly.
* shift: weights are already ``s * 2**-p`` and are taken exactly (``bits_w`` counts the stored
  2-bit ``s`` plus the bits of ``p``); the accumulator scale is ``scale_in * 2**-P``.
* xnor: bits ``W >= 0`` and ``x >= 0`` (sign(0) = +1). The float layer is
  ``y = g * alpha * dot + h`` after folding its bias and BN; ``sign(y)`` becomes a threshold on
  ``dot`` (the comparison flips when ``g * alpha < 0``).

Batch norm (eval statistics) folds as ``g = gamma / sqrt(var + eps)``, ``h = g * (b - mean) + beta``
so that the float output is ``g * z + h`` with ``z`` the bias-free layer output. For mac/adder/shift
the real requantization factor ``r[o] = g[o] * s_acc[o] / scale_out`` becomes ``M[o] * 2**-S[o]``
with ``2**(MULT_BITS-2) <= |M| < 2**(MULT_BITS-1)``, and ``B[o] = round(h[o] / (g[o] * s_acc[o]))``
is clipped to the smallest magnitude that still saturates the output in the same way.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from contract import HARDWARE_BITS, MULT_BITS, RSHIFT_MAX, RSHIFT_MIN, align_field_bits, weight_code_bits
from models.intref import QLayer, layer_acc_bits
from models.layers import geometry, pe_kind_of
from models.redistribute import redistribute

__all__ = ["DEFAULT_MAX_ALIGN", "QUANTIZERS", "quantize", "quantize_adder", "quantize_input", "quantize_mac",
           "quantize_shift", "quantize_xnor"]


#: Largest group alignment ``e`` of the grouped adder unless given: group scales down to 1/8 of
#: the activation scale, a 2-bit alignment field per weight.
DEFAULT_MAX_ALIGN = 3


def _qmax(bits: int) -> int:
    return (1 << (bits - 1)) - 1


def _input_grid(in_range: float, bits: int, unsigned_in: bool) -> tuple[float, int]:
    """``(scale_in, zero_in)``: ``[-in_range, in_range]`` on the signed grid, or with
    ``unsigned_in`` ``[0, in_range]`` on all ``2**bits`` levels stored offset by ``-2**(bits-1)``."""
    if unsigned_in:
        return in_range / ((1 << bits) - 1), -(1 << (bits - 1))
    return in_range / _qmax(bits), 0


def _zero_offset(w_acc: np.ndarray, zero_in: int) -> np.ndarray:
    """Per-channel accumulator offset that removes an input zero point from a linear layer:
    ``sum_k w (x - z) = acc - z * sum_k w`` with ``w_acc`` the weights in accumulator units."""
    return -zero_in * w_acc.reshape(w_acc.shape[0], -1).sum(axis=1)


def _check_bits(name: str, bits: object) -> int:
    lo, hi = HARDWARE_BITS
    if not isinstance(bits, int) or isinstance(bits, bool) or not lo <= bits <= hi:
        raise ValueError(f"{name} must be an integer in {lo}..{hi}, not {bits!r}")
    return bits


def _check_layer(layer: nn.Module, pe: str, bn: nn.Module | None) -> dict[str, object]:
    kind = pe_kind_of(layer)
    if kind != pe:
        raise ValueError(f"layer must be of PE kind {pe}, not {kind or type(layer).__name__}")
    geo = geometry(layer)
    if bn is not None:
        bn_type = nn.BatchNorm2d if geo["conv"] else nn.BatchNorm1d
        if type(bn) is not bn_type:
            raise ValueError(f"bn must be a {bn_type.__name__}, not {type(bn).__name__}")
        if bn.num_features != geo["out_channels"] or bn.running_var is None:
            raise ValueError(f"bn must track statistics of {geo['out_channels']} features")
    return geo


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().double().numpy()


def _fold(layer: nn.Module, bn: nn.Module | None) -> tuple[np.ndarray, np.ndarray]:
    """(g, h) such that layer-then-bn is ``g * z + h`` per channel, ``z`` the bias-free output."""
    out = geometry(layer)["out_channels"]
    b = _numpy(layer.bias) if layer.bias is not None else np.zeros(out)
    if bn is None:
        return np.ones(out), b
    g = 1.0 / np.sqrt(_numpy(bn.running_var + bn.eps))
    if bn.weight is not None:
        g = g * _numpy(bn.weight)
    beta = _numpy(bn.bias) if bn.bias is not None else np.zeros(out)
    return g, g * (b - _numpy(bn.running_mean)) + beta


def _float_out(layer: nn.Module, bn: nn.Module | None, x: torch.Tensor, relu: bool) -> torch.Tensor:
    with torch.no_grad():
        y = layer(x)
        if bn is not None:
            y = F.batch_norm(y, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0,
                             bn.eps)
        return y.relu() if relu else y


def _ranges(layer: nn.Module, bn: nn.Module | None, calib: torch.Tensor | None,
            in_range: float | None, out_range: float | None, relu: bool) -> tuple[float, float]:
    """Input and output ranges: given, or max |x| and max |y| of a calibration batch."""
    if calib is not None:
        in_range = float(calib.abs().max())
        out_range = float(_float_out(layer, bn, calib, relu).abs().max())
    elif in_range is None or out_range is None:
        raise ValueError("give either calib or both in_range and out_range")
    for name, value in (("in_range", in_range), ("out_range", out_range)):
        if not value > 0 or not math.isfinite(value):
            raise ValueError(f"{name} must be positive and finite, not {value!r}")
    return in_range, out_range


def _multiplier(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Signed ``M`` and shift ``S`` with ``M * 2**-S ~= r``, ``2**(MULT_BITS-2) <= |M| < 2**(MULT_BITS-1)``."""
    mag = np.abs(r)
    s = (MULT_BITS - 2) - np.floor(np.log2(mag))
    m = np.round(mag * np.exp2(s))
    top = m >= 1 << (MULT_BITS - 1)  # rounded up to the next power of two
    m[top] /= 2
    s[top] -= 1
    bad = np.flatnonzero((s < RSHIFT_MIN) | (s > RSHIFT_MAX))
    if bad.size:
        raise ValueError(f"requantization factor {r[bad[0]]:.3g} of channel {bad[0]} is out of range")
    return (np.sign(r) * m).astype(np.int64), s.astype(np.int64)


def _requantized(geo: dict[str, object], layer: nn.Module, bn: nn.Module | None,
                 s_acc: np.ndarray, acc_width: int, *, bits_out: int, out_range: float,
                 relu: bool, offset: np.ndarray | int = 0, unsigned_out: bool = False,
                 **fields: object) -> QLayer:
    """A mac/adder/shift QLayer: the requantization stage derived from the accumulator scale;
    ``offset`` (accumulator units, per channel) is added to the bias exactly. ``unsigned_out``
    (with ``relu``): the output grid is ``[0, out_range]`` in ``2**bits_out`` levels stored
    offset by ``-2**(bits_out-1)``, so the saturation at the bottom of the signed range is the
    ReLU (the QLayer's ``relu`` is then False)."""
    g, h = _fold(layer, bn)
    zero = np.flatnonzero(g == 0)
    if zero.size:
        raise ValueError(f"bn weight of channel {zero[0]} is zero; fold that channel to a constant")
    if unsigned_out and not relu:
        raise ValueError("unsigned_out needs relu: only a ReLU output is non-negative")
    zero_out = -(1 << (bits_out - 1)) if unsigned_out else 0
    scale_out = out_range / ((1 << bits_out) - 1 if unsigned_out else _qmax(bits_out))
    m, s = _multiplier(g * s_acc / scale_out)
    # Beyond +-limit, (acc + B) * M * 2**-S exceeds the output range for every acc: same saturation.
    limit = (1 << (acc_width - 1)) + np.ceil((_qmax(bits_out) + 2) * np.exp2(s) / np.abs(m))
    bias = np.clip(np.round((h + zero_out * scale_out) / (g * s_acc)) + offset,
                   -limit, limit).astype(np.int64)
    bias_width = int(np.abs(bias).max()).bit_length() + 1
    if max(acc_width, bias_width) + 1 + MULT_BITS > 63:
        raise ValueError(f"requantization needs more than 63 bits (bias of {bias_width} bits)")
    out = geo["out_channels"]
    return QLayer(**geo, **fields, bits_out=bits_out, acc_bits=acc_width, bias_bits=bias_width,
                  relu=relu and not unsigned_out, binary_out=False,
                  out_scale=np.full(out, scale_out), out_offset=np.full(out, -zero_out * scale_out),
                  multiplier=m, rshift=s, bias=bias)


def quantize_mac(layer: nn.Module, bn: nn.Module | None = None, *, bits: int = 8,
                 bits_out: int | None = None, calib: torch.Tensor | None = None,
                 in_range: float | None = None, out_range: float | None = None,
                 relu: bool = False, unsigned_out: bool = False, unsigned_in: bool = False) -> QLayer:
    """Quantize a plain conv/linear: signed activations, per-channel symmetric weights.

    ``unsigned_in``: the input is a ReLU output on ``[0, in_range]`` stored offset by
    ``-2**(bits-1)`` (its producer's ``unsigned_out``); the offset is removed exactly in the bias.
    """
    geo = _check_layer(layer, "mac", bn)
    bits = _check_bits("bits", bits)
    bits_out = _check_bits("bits_out", bits if bits_out is None else bits_out)
    in_range, out_range = _ranges(layer, bn, calib, in_range, out_range, relu)
    w = _numpy(layer.weight)
    peak = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
    s_w = np.where(peak > 0, peak, 1.0) / _qmax(bits)
    w_int = np.round(w / s_w.reshape(-1, *[1] * (w.ndim - 1))).astype(np.int64)
    scale_in, zero_in = _input_grid(in_range, bits, unsigned_in)
    k = geo["in_channels"] // geo["groups"] * math.prod(geo["kernel_size"])
    return _requantized(geo, layer, bn, scale_in * s_w, layer_acc_bits("mac", k, bits),
                        bits_out=bits_out, out_range=out_range, relu=relu,
                        unsigned_out=unsigned_out, offset=_zero_offset(w_int, zero_in), pe="mac",
                        bits_in=bits, bits_w=bits, max_shift=0, scale_in=scale_in,
                        zero_in=zero_in, weight=w_int)


def quantize_adder(layer: nn.Module, bn: nn.Module | None = None, *, bits: int = 8,
                   bits_out: int | None = None, calib: torch.Tensor | None = None,
                   in_range: float | None = None, out_range: float | None = None,
                   relu: bool = False, unsigned_out: bool = False, groups: int = 0,
                   max_align: int = DEFAULT_MAX_ALIGN, unsigned_in: bool = False) -> QLayer:
    """Quantize an adder layer on shared scales.

    ``groups`` 0: one scale for input and weights covering both (the shared scheme). ``groups``
    >= 1: redistribution (:mod:`models.redistribute`) -- the input keeps its scale, channels are
    clustered into at most ``groups`` groups of scale ``scale_in * 2**-e``, ``e <= max_align``,
    and the weights beyond the input grid are clamped losslessly (compensated in the bias).
    ``unsigned_in`` (grouped only): the input is a ReLU output in ``[0, in_range]`` stored offset
    by ``-2**(bits-1)`` (``unsigned_out`` of its producer); since ``|x - w| = |(x - c) - (w - c)|``
    the weights move by the same ``c = 2**(bits-1) * scale_in`` and the layer is unchanged.
    """
    geo = _check_layer(layer, "adder", bn)
    bits = _check_bits("bits", bits)
    bits_out = _check_bits("bits_out", bits if bits_out is None else bits_out)
    in_range, out_range = _ranges(layer, bn, calib, in_range, out_range, relu)
    w = _numpy(layer.weight)
    k = geo["in_channels"] // geo["groups"] * math.prod(geo["kernel_size"])
    out = dict(bits_out=bits_out, out_range=out_range, relu=relu, unsigned_out=unsigned_out,
               pe="adder", bits_in=bits, max_shift=0)
    if groups == 0:
        if unsigned_in:
            raise ValueError("unsigned_in needs the grouped scheme (groups >= 1)")
        scale = max(in_range, float(np.abs(w).max())) / _qmax(bits)
        return _requantized(geo, layer, bn, np.full(geo["out_channels"], scale),
                            layer_acc_bits("adder", k, bits), **out, bits_w=bits,
                            scale_in=scale, weight=np.round(w / scale).astype(np.int64))
    scale, zero_in = _input_grid(in_range, bits, unsigned_in)
    red = redistribute(w + zero_in * scale, scale, bits, groups=groups, max_align=max_align)
    return _requantized(geo, layer, bn, scale * np.exp2(-red.align),
                        layer_acc_bits("adder", k, bits, max_align=max_align),
                        **out, offset=-red.compensation, bits_w=bits + align_field_bits(max_align),
                        scale_in=scale, zero_in=zero_in, weight=red.weight, align=red.align,
                        max_align=max_align)


def quantize_shift(layer: nn.Module, bn: nn.Module | None = None, *, bits: int = 8,
                   bits_out: int | None = None, calib: torch.Tensor | None = None,
                   in_range: float | None = None, out_range: float | None = None,
                   relu: bool = False, unsigned_out: bool = False, unsigned_in: bool = False) -> QLayer:
    """Quantize a shift layer: fixed-point activations, the layer's exact (s, p) weights;
    ``unsigned_in`` as for :func:`quantize_mac`."""
    geo = _check_layer(layer, "shift", bn)
    bits = _check_bits("bits", bits)
    bits_out = _check_bits("bits_out", bits if bits_out is None else bits_out)
    in_range, out_range = _ranges(layer, bn, calib, in_range, out_range, relu)
    big_p = layer.max_shift
    sign = np.round(np.clip(_numpy(layer.sign), -1, 1)).astype(np.int64)
    shift = np.round(np.clip(_numpy(layer.shift), 0, big_p)).astype(np.int64)
    scale_in, zero_in = _input_grid(in_range, bits, unsigned_in)
    k = geo["in_channels"] // geo["groups"] * math.prod(geo["kernel_size"])
    return _requantized(geo, layer, bn, np.full(geo["out_channels"], scale_in * 2.0 ** -big_p),
                        layer_acc_bits("shift", k, bits, max_shift=big_p), bits_out=bits_out,
                        out_range=out_range, relu=relu, unsigned_out=unsigned_out,
                        offset=_zero_offset(sign << (big_p - shift), zero_in), pe="shift",
                        bits_in=bits, bits_w=weight_code_bits(big_p), max_shift=big_p,
                        scale_in=scale_in, zero_in=zero_in, weight=sign, shift=shift)


def quantize_xnor(layer: nn.Module, bn: nn.Module | None = None, *, bits: int = 1,
                  binary_out: bool = True) -> QLayer:
    """Quantize a binary layer: bits for x and W; BN + sign as a per-channel threshold compare.

    With ``binary_out`` the output is the next layer's bits, ``bit = (c * dot >= T)``; otherwise
    the raw ``dot`` (for the last binary layer), dequantized with ``g * alpha`` and ``h``.
    """
    geo = _check_layer(layer, "xnor", bn)
    if bits != 1:
        raise ValueError(f"bits must be 1 for xnor, not {bits!r}")
    w = _numpy(layer.weight)
    alpha = np.abs(w.reshape(w.shape[0], -1)).mean(axis=1)
    g, h = _fold(layer, bn)
    c = g * alpha
    k = geo["in_channels"] // geo["groups"] * math.prod(geo["kernel_size"])
    dot_width = layer_acc_bits("xnor", k, 1)
    common = dict(geo, pe="xnor", bits_in=1, bits_w=1, acc_bits=dot_width, bias_bits=0,
                  max_shift=0, relu=False, binary_out=binary_out, scale_in=1.0,
                  weight=(w >= 0).astype(np.int64))
    if not binary_out:
        return QLayer(**common, bits_out=dot_width, out_scale=c, out_offset=h)
    # g * alpha * dot + h >= 0  <=>  dot >= -h/c if c > 0,  dot <= -h/c i.e. -dot >= h/c if c < 0.
    with np.errstate(divide="ignore", invalid="ignore"):
        t = -h / c
    compare = np.where(c < 0, -1, 1).astype(np.int64)
    threshold = np.where(c > 0, np.ceil(t), -np.floor(t))
    threshold = np.where(c == 0, np.where(h >= 0, -(k + 1), k + 1), threshold)
    threshold = np.clip(threshold, -(k + 1), k + 1).astype(np.int64)
    out = geo["out_channels"]
    return QLayer(**common, bits_out=1, out_scale=np.full(out, 2.0), out_offset=np.full(out, -1.0),
                  threshold=threshold, compare_sign=compare)


QUANTIZERS: dict[str, Callable[..., QLayer]] = {
    "mac": quantize_mac, "adder": quantize_adder, "shift": quantize_shift, "xnor": quantize_xnor,
}


def quantize(layer: nn.Module, bn: nn.Module | None = None, **options: object) -> QLayer:
    """Quantize ``layer`` (and fold ``bn``) with the quantizer of its PE kind; see QUANTIZERS."""
    kind = pe_kind_of(layer)
    if kind not in QUANTIZERS:
        raise ValueError(f"layer must be a conv/linear of a known PE kind, not {type(layer).__name__}")
    return QUANTIZERS[kind](layer, bn, **options)


def quantize_input(q: QLayer, x: torch.Tensor | np.ndarray) -> np.ndarray:
    """The integer input of ``q`` for real ``x``: bits ``x >= 0`` for xnor, else the nearest
    integer of ``x / scale_in`` plus ``zero_in``, clipped to the signed ``bits_in`` range."""
    x = x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, float)
    if q.pe == "xnor":
        return (x >= 0).astype(np.int64)
    lo, hi = q.input_range
    return np.clip(np.round(x / q.scale_in) + q.zero_in, lo, hi).astype(np.int64)
