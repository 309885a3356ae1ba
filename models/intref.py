"""The integer reference forward: the one definition of what each PE kind computes, bit for bit.

The RTL, the cycle model's widths and the co-simulation benches are all held to :func:`int_forward`.
A layer is described by a :class:`QLayer` (made by :mod:`models.quant`); the input is an int array,
NCHW for convolutions, NC for fully connected layers. A convolution has kernel (kh, kw), stride,
padding and groups; ``K = Cg * kh * kw`` is the number of reduction positions of
one output (``Cg = C / groups``; a fully connected layer has ``K = C``). ``clog2(K) = ceil(log2 K)``.

Accumulation, per PE kind (``x`` input, ``w`` weight, sums over the K positions). The accumulator
width ``acc_bits`` of mac, adder and shift layers is :func:`contract.acc_bits`, the exact range of
K terms over the full two's-complement operand range, which is the width the generated PE has:

* ``mac``: ``x`` signed ``bits_in``-bit, ``w`` signed ``bits_w``-bit symmetric (never -2**(bits_w-1)),
  ``acc += x * w``. Padding value ``zero_in``, the integer of real 0 (see adder).
* ``adder``: ``x`` and ``w`` signed ``bits``-bit on one shared scale, ``acc -= |x - w|``, with
  ``|x - w| <= 2**bits - 1``. Padding value ``zero_in``, the integer of real 0: 0, or
  ``-2**(bits-1)`` for an unsigned (offset) ReLU input. Grouped (redistribution, ``align`` set): output
  channel ``o`` belongs to a group whose scale is ``scale_in * 2**-e[o]``, ``e[o]`` in
  [0, ``max_align``]; x is put on it exactly, ``acc -= |(x << e[o]) - w|``, a term of up to
  ``2**(bits-1) * (2**E + 1) - 1`` (:func:`contract.term_range`); ``acc`` is in units of the
  group's scale, which the channel's requantization multiplier absorbs.
* ``shift``: ``x`` signed ``bits_in``-bit fixed point, ``w = s * 2**-p`` with ``s`` in {-1, 0, 1},
  ``p`` in [0, P]. The product is kept exact with P extra fractional bits:
  ``acc += s * (x << (P - p))``, so ``acc`` is in units of ``2**-P`` times the input scale; a term
  reaches ``+2**(bits_in-1+P)`` (``s = -1``, most negative ``x``). Padding value ``zero_in``.
* ``xnor``: ``x`` and ``w`` are bits (1 means +1, 0 means -1); padded positions are bit 0 (-1), so
  every output counts all K positions: ``dot = K - 2 * popcount(x XOR w)``, in [-K, K]; the
  layer's ``acc_bits`` is that of the dot, :func:`contract.dot_bits` (the PE itself counts
  agreeing lanes, ``dot = 2 * count - K`` in the output stage).

Output stage:

* ``mac``, ``adder``, ``shift`` requantize per output channel ``o`` with a signed ``MULT_BITS``-bit
  multiplier ``M[o]``, a right shift ``S[o]`` in [RSHIFT_MIN, RSHIFT_MAX] = [1, 62] and an integer bias ``B[o]`` in accumulator
  units (``bias_bits`` signed bits; it can start the accumulator):
  ``y = clamp(((acc + B) * M + 2**(S-1)) >> S, -2**(bits_out-1), 2**(bits_out-1) - 1)`` where
  ``>>`` is the arithmetic shift, i.e. round half up (towards +inf); then ``y = max(y, 0)`` if
  ``relu``. ``acc + B`` needs ``max(acc_bits, bias_bits) + 1`` bits and the product that many plus
  ``MULT_BITS`` -- at most 63, so int64 never overflows.
* ``xnor`` with ``binary_out``: batch norm and sign fold to ``bit = (c[o] * dot >= T[o])`` with
  ``c[o]`` in {-1, +1} (``compare_sign``, -1 where the folded BN scale is negative, which flips the
  comparison) and ``T[o]`` in [-K-1, K+1] (``threshold``). The output is the next layer's bits.
* ``xnor`` without ``binary_out`` (last binary layer): the raw ``dot``.

**Residual add** (a ResNet block's ``relu(bn(conv(h)) + x)``), mac/adder/shift only: the shortcut
``r`` is a signed ``bits_out``-bit integer on the output's own scale (its producer requantized
onto it), added before the clamp: ``y = clamp(q + r)``, then ``max(y, 0)`` if ``relu``, with
``q`` the rounded, shifted product above. One rounding, one saturation, as the fused add of an
accelerator's output stage does it.

Dequantize an output with ``y_int * out_scale[o] + out_offset[o]`` (see :func:`dequantize`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from contract import DEFAULT_MAX_SHIFT, acc_bits, conv_out_size, dot_bits

__all__ = ["QLayer", "dequantize", "int_forward", "layer_acc_bits"]


def layer_acc_bits(pe: str, reduction: int, bits_in: int, max_shift: int = DEFAULT_MAX_SHIFT,
                   max_align: int = 0) -> int:
    """``acc_bits`` of a layer of kind ``pe`` with ``reduction`` positions (see the module doc):
    the PE accumulator's :func:`contract.acc_bits`, or the xnor dot's :func:`contract.dot_bits`."""
    if pe == "xnor":
        return dot_bits(reduction)
    return acc_bits(pe, reduction, bits_in, max_shift=max_shift, max_align=max_align)


@dataclass(frozen=True)
class QLayer:
    """An integer layer: geometry, integer parameters, widths and the scales to leave the integers.

    ``weight`` is (O, Cg, kh, kw) for a convolution, (O, C) for a linear layer: integers for
    mac/adder, the sign ``s`` for shift (with ``shift`` holding ``p``), bits 0/1 for xnor; a
    grouped adder has ``align`` (length O, each in [0, ``max_align``]).
    ``multiplier``, ``rshift``, ``bias`` (length O) are set for mac/adder/shift; ``threshold``
    and ``compare_sign`` for xnor with ``binary_out``; unused fields are None. Input integers
    stand for ``(x_int - zero_in) * scale_in`` (xnor: bit 1 for x >= 0).
    """

    pe: str
    conv: bool
    in_channels: int
    out_channels: int
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    groups: int
    bits_in: int
    bits_w: int
    bits_out: int
    acc_bits: int
    bias_bits: int
    max_shift: int
    relu: bool
    binary_out: bool
    scale_in: float
    weight: np.ndarray
    out_scale: np.ndarray
    out_offset: np.ndarray
    shift: np.ndarray | None = None
    multiplier: np.ndarray | None = None
    rshift: np.ndarray | None = None
    bias: np.ndarray | None = None
    threshold: np.ndarray | None = None
    compare_sign: np.ndarray | None = None
    align: np.ndarray | None = None
    max_align: int = 0
    zero_in: int = 0

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, np.ndarray):
                value.flags.writeable = False

    @property
    def reduction(self) -> int:
        """K, the number of reduction positions per output (padding included)."""
        return self.in_channels // self.groups * self.kernel_size[0] * self.kernel_size[1]

    @property
    def input_range(self) -> tuple[int, int]:
        """Smallest and largest legal input integer."""
        if self.pe == "xnor":
            return 0, 1
        return -(1 << (self.bits_in - 1)), (1 << (self.bits_in - 1)) - 1


def _check_input(q: QLayer, x: np.ndarray) -> None:
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "iu":
        kind = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise ValueError(f"input must be an integer numpy array, not {kind}")
    expected = (x.ndim == 4 and x.shape[1] == q.in_channels) if q.conv else \
        (x.ndim == 2 and x.shape[1] == q.in_channels)
    if not expected:
        want = f"(N, {q.in_channels}, H, W)" if q.conv else f"(N, {q.in_channels})"
        raise ValueError(f"input must have shape {want}, not {tuple(x.shape)}")
    if q.conv and any(x.shape[2 + i] + 2 * q.padding[i] < q.kernel_size[i] for i in range(2)):
        raise ValueError(f"input of spatial size {tuple(x.shape[2:])} is smaller than the kernel")
    lo, hi = q.input_range
    if x.size and (x.min() < lo or x.max() > hi):
        raise ValueError(f"input values must lie in [{lo}, {hi}], not [{x.min()}, {x.max()}]")


def _columns(q: QLayer, x: np.ndarray) -> np.ndarray:
    """im2col: (N, groups, K, L) int64 with L output positions; padding ``zero_in`` (xnor: bit 0 = -1)."""
    x = x.astype(np.int64)
    if not q.conv:
        return x[:, None, :, None]
    (kh, kw), (sh, sw), (ph, pw) = q.kernel_size, q.stride, q.padding
    # the integer of real 0 (zero_in; xnor: bit 0 is -1), see the module doc
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=q.zero_in)
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    n, c, ho, wo = win.shape[:4]
    win = win.reshape(n, q.groups, c // q.groups, ho * wo, kh * kw)
    return win.transpose(0, 1, 2, 4, 3).reshape(n, q.groups, -1, ho * wo)


def _pairwise(cols: np.ndarray, w: np.ndarray, op: np.ufunc,
              align: np.ndarray | None = None) -> np.ndarray:
    """``sum_k op(x[n,g,k,l] << align[g,o], w[g,o,k])`` -> (N, G, Og, L), one output channel at
    a time (``align`` None: no shift)."""
    out = np.empty((cols.shape[0], w.shape[0], w.shape[1], cols.shape[3]), dtype=np.int64)
    for o in range(w.shape[1]):
        x = cols if align is None else cols << align[None, :, o, None, None]
        out[:, :, o] = op(x, w[None, :, o, :, None]).sum(axis=2)
    return out


def _accumulate(q: QLayer, cols: np.ndarray) -> np.ndarray:
    """The accumulator of every output, (N, G, Og, L) int64, as stated per kind in the module doc."""
    w = q.weight.astype(np.int64).reshape(q.groups, q.out_channels // q.groups, -1)
    if q.pe == "mac":
        return w[None] @ cols
    if q.pe == "adder":
        align = None if q.align is None else q.align.astype(np.int64).reshape(w.shape[:2])
        return -_pairwise(cols, w, lambda a, b: np.abs(a - b), align)
    if q.pe == "shift":
        # s * (x << (P - p)) == x * (s << (P - p)) exactly in integers.
        p = q.shift.astype(np.int64).reshape(w.shape)
        return (w << (q.max_shift - p))[None] @ cols
    return q.reduction - 2 * _pairwise(cols, w, np.bitwise_xor)


def _output_stage(q: QLayer, acc: np.ndarray, residual: np.ndarray | int = 0) -> np.ndarray:
    """Requantize (mac/adder/shift) or threshold-compare (xnor), per channel on axis 1; the
    residual is added before the clamp."""
    if q.pe == "xnor":
        if not q.binary_out:
            return acc
        c, t = q.compare_sign[:, None], q.threshold[:, None]
        return (c * acc >= t).astype(np.int64)
    m, s, b = q.multiplier[:, None], q.rshift[:, None], q.bias[:, None]
    y = (((acc + b) * m + (np.int64(1) << (s - 1))) >> s) + residual
    y = np.clip(y, -(1 << (q.bits_out - 1)), (1 << (q.bits_out - 1)) - 1)
    return np.maximum(y, 0) if q.relu else y


def int_forward(q: QLayer, x: np.ndarray, residual: np.ndarray | None = None) -> np.ndarray:
    """The integer output of layer ``q`` for integer input ``x`` (int64; NCHW or NC), with the
    shortcut ``residual`` (the output's shape, signed ``bits_out``-bit) added in the output stage
    when given (module docstring).

    Raises ValueError naming the problem if ``x`` is not an integer array of the layer's input
    shape or holds values outside the input range, or ``residual`` is not one of the output's
    shape and range or the layer does not requantize (xnor).
    """
    _check_input(q, x)
    acc = _accumulate(q, _columns(q, x))
    n = x.shape[0]
    acc = acc.reshape(n, q.out_channels, -1)
    if q.conv:
        (kh, kw), (sh, sw), (ph, pw) = q.kernel_size, q.stride, q.padding
        shape = (n, q.out_channels, conv_out_size(x.shape[2], kh, sh, ph), conv_out_size(x.shape[3], kw, sw, pw))
    else:
        shape = (n, q.out_channels)
    res = 0 if residual is None else _check_residual(q, residual, shape).reshape(acc.shape)
    return _output_stage(q, acc, res).reshape(shape)


def _check_residual(q: QLayer, r: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if q.pe == "xnor":
        raise ValueError("a residual add needs a requantizing layer (mac, adder, shift), not xnor")
    if not isinstance(r, np.ndarray) or r.dtype.kind not in "iu":
        raise ValueError(f"residual must be an integer numpy array, not {getattr(r, 'dtype', type(r).__name__)}")
    if r.shape != shape:
        raise ValueError(f"residual must have the output's shape {shape}, not {tuple(r.shape)}")
    lo, hi = -(1 << (q.bits_out - 1)), (1 << (q.bits_out - 1)) - 1
    if r.size and (r.min() < lo or r.max() > hi):
        raise ValueError(f"residual values must lie in [{lo}, {hi}], not [{r.min()}, {r.max()}]")
    return r.astype(np.int64)


def dequantize(q: QLayer, y: np.ndarray) -> np.ndarray:
    """Real values of an integer output of ``q``: ``y * out_scale[o] + out_offset[o]``."""
    shape = (1, -1, 1, 1) if y.ndim == 4 else (1, -1)
    return y * q.out_scale.reshape(shape) + q.out_offset.reshape(shape)
