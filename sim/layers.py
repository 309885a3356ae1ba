"""Real quantized layers to co-simulate, and the float reference they are checked against.

A :class:`LayerSpec` names one layer shape; :func:`quantized_layer` builds the float PyTorch layer
of a PE kind with seeded random weights, a batch norm with random statistics and a random input,
and quantizes all three with :mod:`models.quant`. The integer layer and input go to the RTL (and to
:func:`models.intref.int_forward`, the bit-exact reference); :func:`float_output` and
:func:`check_float` compare the dequantized integer output with the float layer it came from.

The float tolerance of :func:`check_float`, per output channel ``o`` of a mac/adder/shift layer::

    |dequantize(y) - float| <= out_scale + |g_o| * E_o

``out_scale`` (one output LSB) covers rounding the output (half an LSB) plus rounding the
requantization multiplier (relative ``2**-(MULT_BITS-1)``) and the bias (half an accumulator unit),
both far below half an LSB. ``g_o`` is the batch-norm scale and ``E_o`` the worst case of rounding
the operands (every input to half an input step ``dx``, every weight to half a weight step
``dw``), summed over the ``K`` reduction positions: mac ``dx * sum|W_o| + dw * K * max|x|``
(``|wx - w'x'| <= |w| |x - x'| + |x'| |w - w'|``); adder ``K * (dx + dw)`` (``||x - w| - |x' - w'|| <=
|x - x'| + |w - w'|``); shift ``dx * sum|W_o|`` (its weights are exact). The calibration batch is
the input itself, so nothing clips. This is a bound, not a fit: a wrong channel, pixel or scale
exceeds it by orders of magnitude.

xnor is exact up to float32 rounding: with ``binary_out`` the output bit is the sign of the float
pre-activation, compared wherever that lies farther than ``XNOR_MARGIN`` of the output range from
0; the raw dot product dequantizes to the float output within ``XNOR_MARGIN`` of its range.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from contract import DEFAULT_MAX_SHIFT, PE_KINDS
from models.intref import QLayer, dequantize
from models.layers import PE_LAYERS
from models.quant import quantize, quantize_input

__all__ = ["XNOR_MARGIN", "FloatCheck", "LayerSpec", "QuantizedLayer", "check_float",
           "float_layer", "float_output", "quantized", "quantized_layer"]

#: Relative float32 rounding margin of the xnor checks (a fraction of the output range).
XNOR_MARGIN = 1e-4

OPS = ("conv", "linear")


@dataclass(frozen=True)
class LayerSpec:
    """One layer shape: conv (kernel/stride/pad/groups over an h x w input) or linear (h = w = 1).

    Raises ValueError naming the field when ``op`` is unknown, a size is not a positive integer
    (``pad`` may be 0), the channels do not divide into ``groups``, a linear layer has a spatial
    size or conv geometry, or the kernel is larger than the padded input.
    """

    op: str  # "conv" or "linear"
    cin: int
    cout: int
    h: int = 1
    w: int = 1
    kernel: int = 1
    stride: int = 1
    pad: int = 0
    groups: int = 1

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"`op` must be one of {', '.join(OPS)}, not {self.op!r}")
        for name in ("cin", "cout", "h", "w", "kernel", "stride", "pad", "groups"):
            value, low = getattr(self, name), 0 if name == "pad" else 1
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                noun = "a non-negative" if low == 0 else "a positive"
                raise ValueError(f"`{name}` must be {noun} integer, not {value!r}")
        for name in ("cin", "cout"):
            if getattr(self, name) % self.groups:
                raise ValueError(f"`{name}` of {getattr(self, name)} is not divisible by "
                                 f"groups={self.groups}")
        if self.op == "linear" and (self.h, self.w, self.kernel, self.stride, self.pad,
                                    self.groups) != (1, 1, 1, 1, 0, 1):
            raise ValueError("a linear layer has h = w = kernel = stride = groups = 1 and pad = 0")
        if self.kernel > min(self.h, self.w) + 2 * self.pad:
            raise ValueError(f"kernel {self.kernel} is larger than the padded input "
                             f"{self.h + 2 * self.pad}x{self.w + 2 * self.pad}")


@dataclass(frozen=True)
class QuantizedLayer:
    """A quantized layer with its integer input (``x``: (1, C, H, W) or (1, C)) and the float
    layer, batch norm and float input it was quantized from."""

    q: QLayer
    x: np.ndarray
    module: nn.Module
    bn: nn.Module
    x_float: torch.Tensor = field(repr=False)


def float_layer(pe: str, spec: LayerSpec, *, max_shift: int = DEFAULT_MAX_SHIFT) -> nn.Module:
    """The float conv/linear of PE kind ``pe`` with ``spec``'s shape and torch's default init
    (drawn from torch's global generator; shift: weights ``s * 2**-p``, ``p <= max_shift``)."""
    if pe not in PE_KINDS:
        raise ValueError(f"`pe` must be one of {', '.join(PE_KINDS)}, not {pe!r}")
    conv_cls, linear_cls = PE_LAYERS[pe]
    extra = {"max_shift": max_shift} if pe == "shift" else {}
    if spec.op == "linear":
        return linear_cls(spec.cin, spec.cout, **extra)
    return conv_cls(spec.cin, spec.cout, spec.kernel, bias=pe != "adder", stride=spec.stride,
                    padding=spec.pad, groups=spec.groups, **extra)


def quantized_layer(pe: str, spec: LayerSpec, *, seed: int, bits: int = 8, max_shift: int = DEFAULT_MAX_SHIFT,
                    relu: bool = False, binary_out: bool = True, **options: object) -> QuantizedLayer:
    """A float layer of kind ``pe`` and shape ``spec`` with a batch norm and an input, all drawn
    from ``seed``, quantized to ``bits`` (mac/adder/shift; xnor is 1-bit) with the input as the
    calibration batch.

    ``relu`` clamps the output (mac/adder/shift); ``binary_out`` makes an xnor layer emit sign
    bits rather than the raw dot product (ignored by the other kinds); ``options`` go to the
    quantizer (e.g. the grouped adder's ``groups``, ``max_align``; ``unsigned_in`` also makes the
    input non-negative, a ReLU output). Raises ValueError for an unknown ``pe`` or ``relu`` on
    xnor (a binary layer's activation is its sign).
    """
    if pe not in PE_KINDS:
        raise ValueError(f"`pe` must be one of {', '.join(PE_KINDS)}, not {pe!r}")
    if relu and pe == "xnor":
        raise ValueError("`relu` applies to mac, adder and shift layers, not xnor")
    torch.manual_seed(seed)
    module = float_layer(pe, spec, max_shift=max_shift).eval()
    conv = spec.op == "conv"
    bn = (nn.BatchNorm2d if conv else nn.BatchNorm1d)(spec.cout).eval()
    with torch.no_grad():
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        # xnor: negative BN scales too, which flip the threshold compare.
        bn.weight.uniform_(-1.5, 1.5) if pe == "xnor" else bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    x_float = torch.randn(1, spec.cin, spec.h, spec.w) if conv else torch.randn(1, spec.cin)
    if options.get("unsigned_in"):
        x_float = x_float.abs()
    if pe == "xnor":
        q = quantize(module, bn, binary_out=binary_out)
    else:
        q = quantize(module, bn, bits=bits, calib=x_float, relu=relu, **options)
    return QuantizedLayer(q=q, x=quantize_input(q, x_float), module=module, bn=bn, x_float=x_float)


def quantized(kind: str, conv: bool, cin: int, cout: int, hw: int, seed: int, *,
              binary_out: bool = True, relu: bool = False, max_shift: int = DEFAULT_MAX_SHIFT, kernel: int = 1,
              stride: int = 1, padding: int = 0, groups: int = 1) -> tuple[QLayer, np.ndarray]:
    """``(q, x)`` of :func:`quantized_layer` for a square ``hw x hw`` input (linear: ``hw`` = 1)."""
    spec = LayerSpec("conv" if conv else "linear", cin, cout, hw, hw, kernel, stride, padding,
                     groups)
    ql = quantized_layer(kind, spec, seed=seed, max_shift=max_shift, relu=relu,
                         binary_out=binary_out)
    return ql.q, ql.x


def float_output(ql: QuantizedLayer) -> np.ndarray:
    """The float layer, then its batch norm (eval statistics), then ReLU if quantized with one,
    on the float input; xnor: the pre-activation whose sign a ``binary_out`` layer emits."""
    with torch.no_grad():
        y = ql.bn(ql.module(ql.x_float))
        return (y.relu() if ql.q.relu else y).double().numpy()


@dataclass(frozen=True)
class FloatCheck:
    """Result of :func:`check_float`: elements outside the tolerance and the largest error."""

    violations: int
    compared: int
    max_abs_error: float

    @property
    def ok(self) -> bool:
        return self.violations == 0


def _operand_bound(ql: QuantizedLayer) -> np.ndarray:
    """``E_o`` of the module docstring: worst-case operand rounding per output channel."""
    q = ql.q
    k = q.reduction
    w = ql.module.weight.detach().double().numpy().reshape(q.out_channels, -1)
    dx = q.scale_in / 2
    if q.pe == "mac":
        dw = np.abs(w).max(axis=1) / ((1 << (q.bits_w - 1)) - 1) / 2
        return dx * np.abs(w).sum(axis=1) + dw * k * float(ql.x_float.abs().max())
    if q.pe == "adder":
        return np.full(q.out_channels, k * 2 * dx)  # x and w share one scale
    return dx * np.abs(w).sum(axis=1)


def check_float(ql: QuantizedLayer, y: np.ndarray) -> FloatCheck:
    """Compare the integer output ``y`` of ``ql`` (dequantized) with :func:`float_output` under
    the tolerance stated in the module docstring."""
    ref = float_output(ql)
    got = dequantize(ql.q, y)
    shape = (1, -1, 1, 1) if ref.ndim == 4 else (1, -1)
    span = float(np.abs(ref).max()) or 1.0
    if ql.q.pe == "xnor" and ql.q.binary_out:
        mask = np.abs(ref) > XNOR_MARGIN * span
        err = np.abs(got - np.where(ref >= 0, 1.0, -1.0))[mask]  # 0 where the signs agree, else 2
        return FloatCheck(int((err > 0).sum()), int(mask.sum()), float(err.max(initial=0.0)))
    if ql.q.pe == "xnor":
        tol = np.full_like(ref, XNOR_MARGIN * span)
    else:
        g = (ql.bn.weight / torch.sqrt(ql.bn.running_var + ql.bn.eps)).detach().double().numpy()
        tol = np.broadcast_to((ql.q.out_scale + np.abs(g) * _operand_bound(ql)).reshape(shape),
                              ref.shape)
    err = np.abs(got - ref)
    return FloatCheck(int((err > tol).sum()), int(err.size), float(err.max()))
