"""The whole-network integer forward: the network-level counterpart of :mod:`models.intref`.

:func:`build` turns a trained float network whose leaf modules form a chain (each takes the
previous one's output: conv/linear [+ BN] [+ ReLU], pooling, flatten, identity, dropout -- the
small networks trained here; residual networks are not chains) into an :class:`IntNet`, a list of
integer stages run by :meth:`IntNet.forward`:

* every conv/linear with the BN and ReLU that follow it is one :class:`~models.intref.QLayer`
  (:func:`models.quant.quantize`: BN folded, per-channel weights for mac, one shared scale for
  adder, power-of-two weights for shift, threshold compare for xnor), computed by
  :func:`models.intref.int_forward` -- the one definition of the arithmetic;
* activations between layers are signed ``bits``-bit integers on one scale per wire: the
  producer requantizes straight onto the scale its consumer reads (for an adder consumer that scale
  also covers its weights, as the shared-scale scheme needs), so no rescaling happens in between;
* ranges are calibrated on a float batch at the input and after each layer's ReLU (or BN), by the
  :class:`Scheme`'s method (:mod:`models.calibrate`: max, percentile, MSE; the wire into a shift
  layer optionally on a power-of-two scale); the classifier's output range is always max ``|y|``;
* adder layers take the shared scale or, with ``Scheme.adder_groups``, AdderNet redistribution
  (:mod:`models.redistribute`), and then the wire into them need not cover their weights;
* with ``Scheme.unsigned`` a ReLU wire is unsigned -- ``[0, range]`` on all ``2**bits`` levels
  (twice the levels of a signed wire whose negative half a ReLU never uses), stored offset by
  ``-2**(bits-1)`` so that the producer's saturation is its ReLU; a mac or shift consumer removes
  the offset exactly in its bias, a grouped adder needs nothing (``|x - w| = |(x - c) - (w - c)|``);
  convolution padding is the integer of real 0 (:attr:`~models.intref.QLayer.zero_in`);
* average pooling over ``k`` positions is ``floor((2 * sum + k) / (2 * k))`` (the mean rounded
  half up) on the same scale; max pooling and flatten are exact; padding in pooling is not
  supported;
* a binary layer's input is the sign of the integer before it: bit ``x >= 0`` (1 means +1); a
  binary layer feeding another one outputs bits (BN + sign as a threshold); the last binary layer
  outputs its raw ``dot``, which BN (+ ReLU) requantizes to ``bits`` through an identity depthwise
  1x1 MAC QLayer with weight ``alpha`` -- intref's own requantization stage;
* the classifier's output is requantized to 16 bits, so the argmax is not decided by ties of a
  coarse output grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from models.calibrate import calibrate, check_method
from models.intref import QLayer, dequantize, int_forward
from models.layers import pe_kind_of
from models.quant import DEFAULT_MAX_ALIGN, quantize, quantize_input, quantize_mac, quantize_xnor

__all__ = ["LOGIT_BITS", "SCHEMES", "IntNet", "Scheme", "Stage", "build", "run_stage"]

LOGIT_BITS = 16
_SKIP = (nn.Identity, nn.Dropout)
_POOLS = (nn.AvgPool2d, nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


@dataclass(frozen=True)
class Scheme:
    """How a network is quantized: the calibration ``method`` (with its ``percentile``), the
    adder layers' groups (0: the one shared scale) and largest alignment, whether the wire
    into a shift layer has a power-of-two scale (``pow2_shift``) and whether ReLU wires are
    ``unsigned`` (offset by ``-2**(bits-1)``; not into a shared-scale adder)."""

    method: str = "max"
    percentile: float = 99.99
    adder_groups: int = 0
    max_align: int = DEFAULT_MAX_ALIGN
    pow2_shift: bool = False
    unsigned: bool = False

    def __post_init__(self) -> None:
        check_method(self.method, self.percentile)


#: Named quantization schemes per PE kind, as reports list them (calibration set by the caller).
SCHEMES: dict[str, tuple[str, Scheme]] = {
    "mac": ("mac", Scheme()),
    "mac-unsigned": ("mac", Scheme(unsigned=True)),
    "adder-shared": ("adder", Scheme()),
    "adder-grouped": ("adder", Scheme(adder_groups=4, unsigned=True)),
    "xnor": ("xnor", Scheme()),
    "shift": ("shift", Scheme()),
    "shift-unsigned": ("shift", Scheme(unsigned=True)),
    "shift-pow2": ("shift", Scheme(unsigned=True, pow2_shift=True)),
}


@dataclass(frozen=True)
class Stage:
    """One integer step: ``layer`` (int_forward of ``q``), ``sign`` (int -> bits ``x >= 0``),
    ``avgpool``/``maxpool`` over ``kernel`` with ``stride``, or ``flatten``."""

    op: str
    name: str
    q: QLayer | None = None
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)


def _pool(x: np.ndarray, stage: Stage) -> np.ndarray:
    (kh, kw), (sh, sw) = stage.kernel, stage.stride
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    if stage.op == "maxpool":
        return win.max(axis=(4, 5))
    k = kh * kw
    return (2 * win.sum(axis=(4, 5), dtype=np.int64) + k) // (2 * k)


def run_stage(stage: Stage, y: np.ndarray) -> np.ndarray:
    """The integer output of one stage for its integer input ``y``."""
    if stage.op == "layer":
        return int_forward(stage.q, y)
    if stage.op == "sign":
        return (y >= 0).astype(np.int64)
    if stage.op == "flatten":
        return y.reshape(y.shape[0], -1)
    return _pool(y, stage)


@dataclass(frozen=True)
class IntNet:
    """An integer network: the stages in order; ``bits`` is the width of non-binary layers."""

    stages: tuple[Stage, ...]
    bits: int

    @property
    def layers(self) -> tuple[QLayer, ...]:
        return tuple(s.q for s in self.stages if s.op == "layer")

    def forward(self, x: torch.Tensor | np.ndarray) -> np.ndarray:
        """Integer output of the last layer for real inputs ``x`` (quantized by the first layer)."""
        y = quantize_input(self.layers[0], x)
        for stage in self.stages:
            y = run_stage(stage, y)
        return y

    def logits(self, x: torch.Tensor | np.ndarray) -> np.ndarray:
        """Real-valued outputs: the integer output dequantized."""
        return dequantize(self.layers[-1], self.forward(x))

    def accuracy(self, x: torch.Tensor, y: torch.Tensor, batch: int = 512) -> float:
        """Top-1 accuracy of the integer forward on ``x`` against labels ``y``."""
        hits = sum(int((self.logits(x[i:i + batch]).argmax(axis=1) == y[i:i + batch].numpy()).sum())
                   for i in range(0, len(y), batch))
        return hits / len(y)


@dataclass
class _Unit:
    """A conv/linear with its BN and ReLU, and its calibration tensors (input, final output)."""

    name: str
    layer: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    bn: nn.Module | None = None
    relu: bool = False

    @property
    def pe(self) -> str:
        return pe_kind_of(self.layer)


def _trace(net: nn.Module, calib: torch.Tensor) -> list[tuple[str, nn.Module, torch.Tensor, torch.Tensor]]:
    """Leaf calls ``(name, module, input, output)`` of one eval forward; raise unless a chain."""
    names = {id(m): n for n, m in net.named_modules()}
    calls: list[tuple[str, nn.Module, torch.Tensor, torch.Tensor]] = []
    leaves = [m for m in net.modules() if not list(m.children())]

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        calls.append((names[id(module)], module, inputs[0], output))

    handles = [m.register_forward_hook(hook) for m in leaves]
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            out = net(calib)
    finally:
        net.train(was_training)
        for h in handles:
            h.remove()
    previous = calib
    for name, _, x, y in calls:
        if x is not previous:
            raise ValueError(f"{type(net).__name__} is not a chain of layers (module {name!r} does "
                             "not take the previous module's output); the integer network handles "
                             "sequential networks only")
        previous = y
    if previous is not out:
        raise ValueError(f"{type(net).__name__}'s output is not its last module's output; the "
                         "integer network handles sequential networks only")
    return calls


def _group(calls: list[tuple[str, nn.Module, torch.Tensor, torch.Tensor]]) -> list[object]:
    """Fuse each conv/linear with the BN and ReLU after it; keep pooling and flatten."""
    items: list[object] = []
    for name, module, x, y in calls:
        last = items[-1] if items else None
        if pe_kind_of(module) is not None:
            items.append(_Unit(name, module, x, y))
        elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d)) and isinstance(last, _Unit) \
                and last.bn is None and not last.relu:
            last.bn, last.y = module, y
        elif isinstance(module, nn.ReLU) and isinstance(last, _Unit) and not last.relu:
            last.relu, last.y = True, y
        elif isinstance(module, _POOLS + (nn.Flatten,)):
            items.append((name, module, x, y))
        elif not isinstance(module, _SKIP):
            raise ValueError(f"module {name!r} ({type(module).__name__}) has no integer form here; "
                             "supported: conv/linear [+ BN] [+ ReLU], pooling, flatten, identity")
    return items


def _pool_stage(name: str, module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Stage:
    if isinstance(module, nn.Flatten):
        return Stage("flatten", name)
    op = "maxpool" if isinstance(module, (nn.MaxPool2d, nn.AdaptiveMaxPool2d)) else "avgpool"
    (h, w), (oh, ow) = x.shape[2:], y.shape[2:]
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        if h % oh or w % ow:
            raise ValueError(f"{name}: adaptive pooling from {h}x{w} to {oh}x{ow} has uneven windows")
        kernel = stride = (h // oh, w // ow)
    else:
        pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
        if pair(module.padding) != (0, 0) or module.ceil_mode:
            raise ValueError(f"{name}: pooling with padding or ceil_mode has no integer form here")
        kernel, stride = pair(module.kernel_size), pair(module.stride or module.kernel_size)
    return Stage(op, name, kernel=kernel, stride=stride)


def _tail_requant(unit: _Unit, q: QLayer, bits: int, out_range: float) -> Stage:
    """BN (+ ReLU) of a binary layer's raw dot as an identity depthwise 1x1 MAC QLayer."""
    if not q.conv:
        raise ValueError(f"{unit.name}: a binary linear layer must feed another binary layer")
    c = q.out_channels
    alpha = unit.layer.weight.detach().abs().reshape(c, -1).mean(dim=1)
    scale = nn.Conv2d(c, c, 1, groups=c, bias=unit.layer.bias is not None).double()
    with torch.no_grad():
        scale.weight.copy_(alpha.reshape(c, 1, 1, 1))
        if unit.layer.bias is not None:
            scale.bias.copy_(unit.layer.bias)
    dot_max = (1 << (q.acc_bits - 1)) - 1  # in_range = dot_max on acc_bits gives scale_in 1
    return Stage("layer", f"{unit.name}.requant",
                 quantize_mac(scale, unit.bn, bits=q.acc_bits, bits_out=bits, in_range=dot_max,
                              out_range=out_range, relu=unit.relu))


def build(net: nn.Module, calib: torch.Tensor, *, bits: int = 8,
          scheme: Scheme | None = None) -> IntNet:
    """The integer network of ``net`` (eval mode), calibrated on the float batch ``calib``.

    Non-binary layers compute on ``bits``-bit operands (xnor layers on 1 bit), quantized by
    ``scheme`` (None: the default :class:`Scheme`); the classifier outputs ``LOGIT_BITS``. Raises ValueError for networks that are not
    chains of supported modules.
    """
    scheme = scheme or Scheme()
    items = _group(_trace(net, calib))
    units = [item for item in items if isinstance(item, _Unit)]
    if not units:
        raise ValueError(f"{type(net).__name__} has no conv or linear layer")
    peak = lambda t: max(float(t.abs().max()), 1e-8)  # noqa: E731
    # With scheme.unsigned a ReLU wire is [0, range] on all 2**bits levels, stored offset by
    # -2**(bits-1) (quant.quantize_mac/adder/shift; a shared-scale adder keeps signed wires).
    unsigned = [scheme.unsigned and i > 0 and units[i - 1].relu and units[i - 1].pe != "xnor"
                and unit.pe != "xnor" and (unit.pe != "adder" or bool(scheme.adder_groups))
                for i, unit in enumerate(units)]
    wires = [calibrate(t, bits + flag, scheme.method, percentile=scheme.percentile,
                       pow2=scheme.pow2_shift and unit.pe == "shift")
             for t, unit, flag in zip([units[0].x] + [u.y for u in units[:-1]], units, unsigned)]
    for i, unit in enumerate(units):
        if unit.pe == "adder" and not scheme.adder_groups:  # the wire must cover the weights too
            wires[i] = max(wires[i], float(unit.layer.weight.detach().abs().max()))
    stages: list[Stage] = []
    binary = units[0].pe == "xnor"  # whether the current activation is bits
    for item in items:
        if not isinstance(item, _Unit):
            stages.append(_pool_stage(*item))
            continue
        i = units.index(item)
        nxt = units[i + 1] if i + 1 < len(units) else None
        last = nxt is None
        out_range = wires[i + 1] if nxt is not None and nxt.pe != "xnor" else peak(item.y)
        out_bits = LOGIT_BITS if last else bits
        if item.pe == "xnor":
            if not binary:
                stages.append(Stage("sign", f"{item.name}.sign"))
            feeds_binary = nxt is not None and nxt.pe == "xnor"
            if feeds_binary and item.relu:
                raise ValueError(f"{item.name}: a ReLU before a binary layer makes every sign +1; "
                                 "remove it (models.train.variant does)")
            q = quantize_xnor(item.layer, item.bn, binary_out=feeds_binary)
            stages.append(Stage("layer", item.name, q))
            if not feeds_binary:
                stages.append(_tail_requant(item, q, out_bits, out_range))
            binary = feeds_binary
        else:
            if binary:
                raise ValueError(f"{item.name}: binary outputs can only feed binary layers")
            extra = dict(groups=scheme.adder_groups, max_align=scheme.max_align) \
                if item.pe == "adder" else {}
            q = quantize(item.layer, item.bn, bits=bits, bits_out=out_bits, in_range=wires[i],
                         out_range=out_range, relu=item.relu,
                         unsigned_in=unsigned[i], unsigned_out=not last and unsigned[i + 1], **extra)
            stages.append(Stage("layer", item.name, q))
    return IntNet(tuple(stages), bits)
