"""Multiplication-free layers, one per PE kind, and the registry that maps PE kinds to layers.

Every layer subclasses :class:`torch.nn.Conv2d` or :class:`torch.nn.Linear`, so shape attributes
(``kernel_size``, ``stride``, ``padding``, ``groups``, ``in_channels`` ...) mean what they mean in
torch, and carries a class attribute ``pe_kind`` naming the datapath that computes it:

* ``adder`` -- :class:`Adder2d`, :class:`AdderLinear`: ``y = -sum |x - w|`` (AdderNet, Chen et al.,
  CVPR 2020), with its full-precision weight gradient, HardTanh input gradient and adaptive
  learning-rate scaling.
* ``xnor`` -- :class:`BinaryConv2d`, :class:`BinaryLinear`: sign activations times sign weights,
  scaled per output channel by ``alpha = mean |W|`` (XNOR-Net / Bi-Real style).
* ``shift`` -- :class:`ShiftConv2d`, :class:`ShiftLinear`: weights ``s * 2**-p`` learned as a sign
  ``s`` and a shift ``p`` (DeepShift-PS).
* ``mac`` -- plain :class:`torch.nn.Conv2d` / :class:`torch.nn.Linear`.

Dilation other than 1 and padding modes other than zeros are not part of the hardware contract;
the layers here do not take them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from contract import DEFAULT_MAX_SHIFT, conv_out_size

__all__ = [
    "PE_LAYERS", "Adder2d", "AdderLinear", "BinaryConv2d", "BinaryLinear", "ShiftConv2d",
    "ShiftLinear", "binary_sign", "geometry", "make_like", "pe_kind_of", "round_ste",
]

# Elements of the |x - w| broadcast materialised at once by the adder forward and backward.
_CHUNK_ELEMENTS = 1 << 24


def _unfold(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """im2col of an NCHW input: (N, groups, Cg*kh*kw, L) with L output positions (zero padding)."""
    cols = F.unfold(x, conv.kernel_size, padding=conv.padding, stride=conv.stride)
    return cols.reshape(x.shape[0], conv.groups, -1, cols.shape[-1])


def _out_hw(x: torch.Tensor, conv: nn.Conv2d) -> tuple[int, int]:
    (kh, kw), (sh, sw), (ph, pw) = conv.kernel_size, conv.stride, conv.padding
    return conv_out_size(x.shape[2], kh, sh, ph), conv_out_size(x.shape[3], kw, sw, pw)


def _chunks(cols: torch.Tensor, w: torch.Tensor) -> list[slice]:
    """Slices over output channels that keep each (N, G, o, K, L) broadcast near _CHUNK_ELEMENTS."""
    step = max(1, _CHUNK_ELEMENTS // max(1, cols.numel()))
    return [slice(i, i + step) for i in range(0, w.shape[1], step)]


class _AdderFunction(torch.autograd.Function):
    """``y[n,g,o,l] = -sum_k |x[n,g,k,l] - w[g,o,k]|`` with the AdderNet gradients.

    Backward: ``dy/dw = x - w`` (full precision, not its sign), then the whole weight gradient is
    rescaled to norm ``eta * sqrt(numel(w))`` (adaptive learning rate); ``dy/dx = HardTanh(w - x)``.
    """

    @staticmethod
    def forward(ctx, cols: torch.Tensor, w: torch.Tensor, eta: float) -> torch.Tensor:
        ctx.save_for_backward(cols, w)
        ctx.eta = eta
        out = cols.new_empty(cols.shape[0], w.shape[0], w.shape[1], cols.shape[-1])
        for part in _chunks(cols, w):
            diff = cols[:, :, None] - w[None, :, part, :, None]
            out[:, :, part] = -diff.abs().sum(dim=3)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        cols, w = ctx.saved_tensors
        # sum_{n,l} grad * (x - w), without materialising the broadcast.
        grad_w = torch.einsum("ngol,ngkl->gok", grad, cols) - w * grad.sum(dim=(0, 3))[..., None]
        norm = grad_w.norm().clamp_min(torch.finfo(grad_w.dtype).tiny)
        grad_w = grad_w * (ctx.eta * math.sqrt(w.numel()) / norm)
        grad_x = torch.zeros_like(cols)
        for part in _chunks(cols, w):
            ht = (w[None, :, part, :, None] - cols[:, :, None]).clamp(-1.0, 1.0)
            grad_x += (grad[:, :, part, None] * ht).sum(dim=2)
        return grad_x, grad_w, None


class _AdderMixin:
    pe_kind = "adder"

    def _adder(self, cols: torch.Tensor, groups: int) -> torch.Tensor:
        w = self.weight.reshape(groups, self.weight.shape[0] // groups, -1)
        return _AdderFunction.apply(cols, w, self.eta)


class Adder2d(_AdderMixin, nn.Conv2d):
    """AdderNet convolution: ``y = -sum |x - w|`` over each receptive field (zero padding).

    ``eta`` is the adaptive learning-rate coefficient: the weight gradient is rescaled to
    ``eta * sqrt(numel(W)) / ||grad_W||_2`` times itself, as in Chen et al. (CVPR 2020).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                 groups: int = 1, bias: bool = False, *, eta: float = 0.2) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, groups=groups,
                         bias=bias)
        self.eta = eta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self._adder(_unfold(x, self), self.groups).reshape(x.shape[0], self.out_channels,
                                                               *_out_hw(x, self))
        return y if self.bias is None else y + self.bias[:, None, None]


class AdderLinear(_AdderMixin, nn.Linear):
    """AdderNet fully connected layer: ``y_o = -sum_i |x_i - w_oi|``; gradients as :class:`Adder2d`."""

    def __init__(self, in_features: int, out_features: int, bias: bool = False, *,
                 eta: float = 0.2) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self.eta = eta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, 1, self.in_features, 1)
        y = self._adder(flat, 1).reshape(*x.shape[:-1], self.out_features)
        return y if self.bias is None else y + self.bias


class _BinarySign(torch.autograd.Function):
    """sign with sign(0) = +1; gradient passes where ``|x| <= 1`` (clipped straight-through)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


def binary_sign(x: torch.Tensor, clip: bool = True) -> torch.Tensor:
    """Binarize to {-1, +1} with sign(0) = +1 and a straight-through gradient.

    ``clip=True`` (activations) passes the gradient only where ``|x| <= 1``; ``clip=False``
    (weights) passes it unchanged.
    """
    if clip:
        return _BinarySign.apply(x)
    return x + (torch.where(x >= 0, 1.0, -1.0).to(x.dtype) - x).detach()


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Round to the nearest integer (half to even, as torch.round) with identity gradient."""
    return x + (torch.round(x) - x).detach()


class _BinaryMixin:
    pe_kind = "xnor"

    def _binary_weight(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Sign weights and alpha = mean |W| per output channel, shaped to broadcast over W."""
        w = self.weight
        alpha = w.abs().reshape(w.shape[0], -1).mean(dim=1)
        return binary_sign(w, clip=False), alpha


class BinaryConv2d(_BinaryMixin, nn.Conv2d):
    """XNOR convolution: ``y = alpha_o * conv(sign(x), sign(W)) + b``, ``alpha_o = mean |W_o|``.

    sign(0) = +1. Padding convention: padded positions hold **-1** (bit 0 in the packed XNOR
    datapath), because a binary datapath has no zero; every receptive field therefore counts all
    ``Cg*kh*kw`` positions.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                 groups: int = 1, bias: bool = False) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, groups=groups,
                         bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ph, pw = self.padding
        xb = F.pad(binary_sign(x), (pw, pw, ph, ph), value=-1.0)
        wb, alpha = self._binary_weight()
        y = F.conv2d(xb, wb, None, self.stride, 0, 1, self.groups) * alpha[:, None, None]
        return y if self.bias is None else y + self.bias[:, None, None]


class BinaryLinear(_BinaryMixin, nn.Linear):
    """XNOR fully connected layer: ``y = alpha_o * (sign(x) . sign(W_o)) + b``, sign(0) = +1."""

    def __init__(self, in_features: int, out_features: int, bias: bool = False) -> None:
        super().__init__(in_features, out_features, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        wb, alpha = self._binary_weight()
        return F.linear(binary_sign(x), wb * alpha[:, None], self.bias)


def _sign_shift_of(w: torch.Tensor, max_shift: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest ``s * 2**-p`` (nearest in log2, p in [0, max_shift]) to ``w``; 0 below 2**-(P+1)."""
    mag = w.abs()
    p = torch.round(-torch.log2(mag.clamp_min(2.0 ** -(max_shift + 1)))).clamp(0, max_shift)
    s = torch.where(mag < 2.0 ** -(max_shift + 1), torch.zeros_like(w), torch.sign(w))
    return s, p


class _ShiftMixin:
    """Weights ``w = round(s) * 2**-round(p)``, ``s`` clamped to [-1, 1] and ``p`` to [0, P].

    ``sign`` and ``shift`` are the real-valued parameters (DeepShift-PS); rounding uses a
    straight-through estimator, so both learn. ``weight`` is the effective, rounded weight.
    """

    pe_kind = "shift"

    def _split_weight(self, max_shift: int) -> None:
        if not isinstance(max_shift, int) or max_shift < 0:
            raise ValueError(f"max_shift must be a non-negative integer, not {max_shift!r}")
        self.max_shift = max_shift
        w = self._parameters.pop("weight").detach()
        s, p = _sign_shift_of(w, max_shift)
        self.sign = nn.Parameter(s)
        self.shift = nn.Parameter(p)

    def set_weight(self, w: torch.Tensor) -> None:
        """Set ``sign`` and ``shift`` to the nearest power of two of the real weights ``w``."""
        s, p = _sign_shift_of(w.detach().to(self.sign), self.max_shift)
        with torch.no_grad():
            self.sign.copy_(s)
            self.shift.copy_(p)

    def __getattr__(self, name: str) -> object:
        # nn.Module resolves parameters here too; before _split_weight, "weight" is still one.
        params = self.__dict__["_parameters"]
        if name == "weight" and "sign" in params:
            s = round_ste(params["sign"].clamp(-1, 1))
            p = round_ste(params["shift"].clamp(0, self.max_shift))
            return s * torch.exp2(-p)
        return super().__getattr__(name)


class ShiftConv2d(_ShiftMixin, nn.Conv2d):
    """Shift convolution (DeepShift-PS): weights ``s * 2**-p``, ``s`` in {-1, 0, 1}, ``p`` in [0, P].

    ``max_shift`` is P. The initial weights are the nearest powers of two of torch's default init.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                 groups: int = 1, bias: bool = False, *, max_shift: int = DEFAULT_MAX_SHIFT) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, groups=groups,
                         bias=bias)
        self._split_weight(max_shift)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, 1, self.groups)


class ShiftLinear(_ShiftMixin, nn.Linear):
    """Shift fully connected layer: weights ``s * 2**-p`` as :class:`ShiftConv2d`."""

    def __init__(self, in_features: int, out_features: int, bias: bool = False, *,
                 max_shift: int = DEFAULT_MAX_SHIFT) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self._split_weight(max_shift)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


PE_LAYERS: dict[str, tuple[type[nn.Conv2d], type[nn.Linear]]] = {
    "mac": (nn.Conv2d, nn.Linear),
    "adder": (Adder2d, AdderLinear),
    "xnor": (BinaryConv2d, BinaryLinear),
    "shift": (ShiftConv2d, ShiftLinear),
}


def pe_kind_of(module: nn.Module) -> str | None:
    """The PE kind that computes ``module``: its ``pe_kind``, "mac" for plain conv/linear, else None."""
    kind = getattr(type(module), "pe_kind", None)
    if kind is not None:
        return kind
    return "mac" if isinstance(module, (nn.Conv2d, nn.Linear)) else None


def geometry(module: nn.Module) -> dict[str, object]:
    """Shape hyper-parameters of a conv/linear ``module`` as the hardware sees them.

    Keys: ``conv`` (bool), ``in_channels``, ``out_channels``, ``kernel_size``, ``stride``,
    ``padding`` (int pairs) and ``groups``; a linear layer is a 1x1 convolution on a 1x1 input.
    Raises ValueError for other modules and for dilation or padding modes the hardware lacks.
    """
    if isinstance(module, nn.Conv2d):
        if module.dilation != (1, 1) or module.padding_mode != "zeros" or isinstance(module.padding, str):
            raise ValueError("module must use dilation 1 and numeric zero padding")
        return dict(conv=True, in_channels=module.in_channels, out_channels=module.out_channels,
                    kernel_size=tuple(module.kernel_size), stride=tuple(module.stride),
                    padding=tuple(module.padding), groups=module.groups)
    if isinstance(module, nn.Linear):
        return dict(conv=False, in_channels=module.in_features, out_channels=module.out_features,
                    kernel_size=(1, 1), stride=(1, 1), padding=(0, 0), groups=1)
    raise ValueError(f"module must be a Conv2d or Linear, not {type(module).__name__}")


def make_like(module: nn.Module, pe: str) -> nn.Module:
    """A layer of kind ``pe`` with the shape of the conv/linear ``module``, initialised from it.

    Weights and bias are copied (for ``xnor`` the sign and alpha then derive from them, for
    ``shift`` they are rounded to the nearest power of two).
    """
    if pe not in PE_LAYERS:
        raise ValueError(f"pe must be one of {', '.join(PE_LAYERS)}, not {pe!r}")
    geo = geometry(module)
    conv_cls, linear_cls = PE_LAYERS[pe]
    has_bias = module.bias is not None
    if geo["conv"]:
        layer = conv_cls(geo["in_channels"], geo["out_channels"], geo["kernel_size"], geo["stride"],
                         geo["padding"], groups=geo["groups"], bias=has_bias)
    else:
        layer = linear_cls(geo["in_channels"], geo["out_channels"], bias=has_bias)
    layer = layer.to(device=module.weight.device, dtype=module.weight.dtype)
    with torch.no_grad():
        if isinstance(layer, _ShiftMixin):
            layer.set_weight(module.weight)
        else:
            layer.weight.copy_(module.weight)
        if has_bias:
            layer.bias.copy_(module.bias)
    return layer
