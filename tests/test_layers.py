"""The float layers of models.layers against naive loop models and hand-computed gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from models.layers import (PE_LAYERS, Adder2d, AdderLinear, BinaryConv2d, BinaryLinear,
                           ShiftConv2d, ShiftLinear, binary_sign, make_like, pe_kind_of)

# (in, out, kernel, stride, padding, groups): plain, strided+padded+grouped, depthwise.
GEOMETRIES = [(3, 4, 3, 1, 0, 1), (4, 6, 3, 2, 1, 2), (4, 4, 3, 1, 1, 4), (2, 3, 2, 2, 1, 1)]


def naive_conv(x: np.ndarray, w: np.ndarray, stride: int, pad: int, groups: int, term,
               pad_value: float = 0.0) -> np.ndarray:
    """``y[n,o,i,j] = sum term(x_patch, w[o])`` by explicit loops over every position."""
    n, c, h, wd = x.shape
    o_ch, cg, k, _ = w.shape
    og = o_ch // groups
    ho, wo = (h + 2 * pad - k) // stride + 1, (wd + 2 * pad - k) // stride + 1
    y = np.zeros((n, o_ch, ho, wo))
    for b in range(n):
        for o in range(o_ch):
            g = o // og
            for i in range(ho):
                for j in range(wo):
                    total = 0.0
                    for ci in range(cg):
                        for ki in range(k):
                            for kj in range(k):
                                r, s = i * stride + ki - pad, j * stride + kj - pad
                                inside = 0 <= r < h and 0 <= s < wd
                                v = x[b, g * cg + ci, r, s] if inside else pad_value
                                total += term(v, w[o, ci, ki, kj])
                    y[b, o, i, j] = total
    return y


def sgn(v: float) -> float:
    return 1.0 if v >= 0 else -1.0


@pytest.mark.parametrize("cin,cout,k,stride,pad,groups", GEOMETRIES)
def test_adder2d_forward(cin, cout, k, stride, pad, groups):
    torch.manual_seed(0)
    layer = Adder2d(cin, cout, k, stride, pad, groups, bias=True)
    x = torch.randn(2, cin, 5, 5)
    want = naive_conv(x.numpy(), layer.weight.detach().numpy(), stride, pad, groups,
                      lambda a, b: -abs(a - b)) + layer.bias.detach().numpy()[:, None, None]
    np.testing.assert_allclose(layer(x).detach().numpy(), want, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("cin,cout,k,stride,pad,groups", GEOMETRIES)
def test_binary_conv2d_forward(cin, cout, k, stride, pad, groups):
    torch.manual_seed(1)
    layer = BinaryConv2d(cin, cout, k, stride, pad, groups)
    x = torch.randn(2, cin, 5, 5)
    x[0, 0, 0, 0] = 0.0  # sign(0) = +1
    w = layer.weight.detach().numpy()
    alpha = np.abs(w).reshape(cout, -1).mean(axis=1)
    dots = naive_conv(x.numpy(), w, stride, pad, groups, lambda a, b: sgn(a) * sgn(b), pad_value=-1.0)
    np.testing.assert_allclose(layer(x).detach().numpy(), dots * alpha[:, None, None], rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("cin,cout,k,stride,pad,groups", GEOMETRIES)
def test_shift_conv2d_forward(cin, cout, k, stride, pad, groups):
    torch.manual_seed(2)
    layer = ShiftConv2d(cin, cout, k, stride, pad, groups, max_shift=5)
    x = torch.randn(2, cin, 5, 5)
    s = layer.sign.detach().numpy()
    p = layer.shift.detach().numpy()
    assert set(np.unique(s)) <= {-1.0, 0.0, 1.0} and set(np.unique(p)) <= set(range(6))
    want = naive_conv(x.numpy(), s * 2.0 ** -p, stride, pad, groups, lambda a, b: a * b)
    np.testing.assert_allclose(layer(x).detach().numpy(), want, rtol=1e-5, atol=1e-5)


def test_linear_forwards():
    torch.manual_seed(3)
    x = torch.randn(3, 5)
    xn = x.numpy()
    adder = AdderLinear(5, 4)
    w = adder.weight.detach().numpy()
    want = [[-sum(abs(xn[n, i] - w[o, i]) for i in range(5)) for o in range(4)] for n in range(3)]
    np.testing.assert_allclose(adder(x).detach().numpy(), want, rtol=1e-5)
    binary = BinaryLinear(5, 4, bias=True)
    w = binary.weight.detach().numpy()
    b = binary.bias.detach().numpy()
    want = [[np.abs(w[o]).mean() * sum(sgn(xn[n, i]) * sgn(w[o, i]) for i in range(5)) + b[o]
             for o in range(4)] for n in range(3)]
    np.testing.assert_allclose(binary(x).detach().numpy(), want, rtol=1e-5, atol=1e-6)
    shift = ShiftLinear(5, 4)
    w = (shift.sign * 2.0 ** -shift.shift).detach().numpy()
    want = [[sum(xn[n, i] * w[o, i] for i in range(5)) for o in range(4)] for n in range(3)]
    np.testing.assert_allclose(shift(x).detach().numpy(), want, rtol=1e-5, atol=1e-6)
    assert adder(torch.randn(2, 3, 5)).shape == (2, 3, 4)


def test_adder_backward_hand_computed():
    layer = AdderLinear(2, 1)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -1.0]]))
    x = torch.tensor([[0.5, 3.0]], requires_grad=True)
    y = layer(x)
    assert y.item() == -(0.5 + 4.0)
    y.backward()
    raw = torch.tensor([[0.5 - 1.0, 3.0 + 1.0]])  # x - w, not its sign
    scaled = raw * 0.2 * math.sqrt(2) / math.sqrt(0.25 + 16.0)
    torch.testing.assert_close(layer.weight.grad, scaled)
    torch.testing.assert_close(x.grad, torch.tensor([[0.5, -1.0]]))  # clamp(w - x, -1, 1)


def test_adder2d_backward_matches_loops_and_adaptive_scale():
    torch.manual_seed(4)
    layer = Adder2d(2, 4, 3, 2, 1, groups=2, eta=0.5)
    x = torch.randn(1, 2, 5, 5, requires_grad=True)
    up = torch.randn(1, 4, 3, 3)
    (layer(x) * up).sum().backward()
    xn, w, g = x.detach().numpy(), layer.weight.detach().numpy(), up.numpy()
    xp = np.pad(xn, ((0, 0), (0, 0), (1, 1), (1, 1)))
    grad_w = np.zeros_like(w)
    grad_xp = np.zeros_like(xp)
    for o in range(4):
        for i in range(3):
            for j in range(3):
                for kr in range(3):
                    for kc in range(3):
                        r, c, ch = 2 * i + kr, 2 * j + kc, o // 2
                        grad_w[o, 0, kr, kc] += g[0, o, i, j] * (xp[0, ch, r, c] - w[o, 0, kr, kc])
                        ht = min(1.0, max(-1.0, w[o, 0, kr, kc] - xp[0, ch, r, c]))
                        grad_xp[0, ch, r, c] += g[0, o, i, j] * ht
    grad_w *= 0.5 * math.sqrt(w.size) / np.linalg.norm(grad_w)
    np.testing.assert_allclose(layer.weight.grad.numpy(), grad_w, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), grad_xp[:, :, 1:-1, 1:-1], rtol=1e-4, atol=1e-6)
    assert layer.weight.grad.norm().item() == pytest.approx(0.5 * math.sqrt(w.size), rel=1e-5)


def test_binary_sign_ste():
    x = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0], requires_grad=True)
    y = binary_sign(x)
    assert y.tolist() == [-1, -1, -1, 1, 1, 1, 1]
    y.sum().backward()
    assert x.grad.tolist() == [0, 1, 1, 1, 1, 1, 0]
    w = torch.tensor([-2.0, 0.0, 3.0], requires_grad=True)
    wb = binary_sign(w, clip=False)
    assert wb.tolist() == [-1, 1, 1]
    (wb * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert w.grad.tolist() == [1, 2, 3]


def test_binary_layer_gradients_reach_input_and_weight():
    layer = BinaryLinear(2, 1)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.5, -1.5]]))
    x = torch.tensor([[0.3, -4.0]], requires_grad=True)
    layer(x).sum().backward()
    # y = alpha * (sign(x) . sign(w)), alpha = 1: dy/dx = alpha * sign(w), clipped where |x| > 1.
    assert x.grad.tolist() == [[1.0, 0.0]]
    # dy/dw = alpha * sign(x) (pass-through) + dot * d(alpha)/dw = sign(x) + 2 * sign(w) / 2.
    assert layer.weight.grad.tolist() == [[2.0, -2.0]]


def test_shift_ste_hand_picked():
    layer = ShiftLinear(4, 1, max_shift=7)
    with torch.no_grad():
        layer.sign.copy_(torch.tensor([[0.6, -0.4, 0.2, -1.7]]))
        layer.shift.copy_(torch.tensor([[1.4, 2.6, 0.0, 9.0]]))
    w = layer.weight
    assert w.tolist() == [[0.5, 0.0, 0.0, -(2.0 ** -7)]]
    w.sum().backward()
    # d/ds = 2**-p through round (identity) and clamp (zero outside [-1, 1]).
    assert layer.sign.grad.tolist() == [[0.5, 0.125, 1.0, 0.0]]
    # d/dp = -ln2 * s * 2**-p; zero where s rounds to 0 and where p is clamped at P.
    torch.testing.assert_close(layer.shift.grad, torch.tensor([[-math.log(2) * 0.5, 0.0, 0.0, 0.0]]))
    assert [n for n, _ in layer.named_parameters()] == ["sign", "shift"]


def test_pe_kind_of_and_registry():
    assert pe_kind_of(nn.Conv2d(1, 1, 1)) == "mac"
    assert pe_kind_of(nn.Linear(1, 1)) == "mac"
    assert pe_kind_of(Adder2d(1, 1, 1)) == "adder"
    assert pe_kind_of(BinaryLinear(1, 1)) == "xnor"
    assert pe_kind_of(ShiftConv2d(1, 1, 1)) == "shift"
    assert pe_kind_of(nn.ReLU()) is None
    for pe, (conv, linear) in PE_LAYERS.items():
        assert issubclass(conv, nn.Conv2d) and issubclass(linear, nn.Linear)
        assert pe_kind_of(conv(1, 1, 1)) == pe == pe_kind_of(linear(1, 1))


@pytest.mark.parametrize("pe", list(PE_LAYERS))
def test_make_like_conv(pe):
    src = nn.Conv2d(4, 6, 3, 2, 1, groups=2, bias=True)
    layer = make_like(src, pe)
    assert pe_kind_of(layer) == pe
    assert (layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding,
            layer.groups) == (4, 6, (3, 3), (2, 2), (1, 1), 2)
    assert torch.equal(layer.bias, src.bias)
    if pe != "shift":
        assert torch.equal(layer.weight, src.weight)
    x = torch.randn(1, 4, 5, 5)
    assert layer(x).shape == src(x).shape


def test_make_like_shift_rounds_to_nearest_power_of_two():
    src = nn.Linear(4, 1)
    with torch.no_grad():
        src.weight.copy_(torch.tensor([[0.3, -0.05, 0.001, 1.5]]))
    layer = make_like(src, "shift")
    assert layer.weight.tolist() == [[0.25, -0.0625, 0.0, 1.0]]


def test_make_like_wrong():
    with pytest.raises(ValueError, match=r"^pe must be one of mac, adder, xnor, shift, not 'fpu'$"):
        make_like(nn.Linear(2, 2), "fpu")
    with pytest.raises(ValueError, match=r"^module must be a Conv2d or Linear, not ReLU$"):
        make_like(nn.ReLU(), "adder")
    with pytest.raises(ValueError, match=r"^module must use dilation 1 and numeric zero padding$"):
        make_like(nn.Conv2d(2, 2, 3, dilation=2), "adder")


def test_layers_run_on_meta_tensors():
    for conv, _ in PE_LAYERS.values():
        layer = conv(4, 8, 3, 2, 1).to("meta")
        assert layer(torch.empty(2, 4, 9, 9, device="meta")).shape == (2, 8, 5, 5)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(-3, 3, allow_nan=False, width=32), min_size=1, max_size=8),
       st.lists(st.floats(-3, 3, allow_nan=False, width=32), min_size=1, max_size=8))
def test_adder_linear_property(xs, ws):
    """-sum|x - w| is never positive and is 0 exactly when x == w."""
    k = min(len(xs), len(ws))
    layer = AdderLinear(k, 1)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([ws[:k]]))
    y = layer(torch.tensor([xs[:k]])).item()
    assert y <= 0.0
    assert layer(torch.tensor([ws[:k]])).item() == 0.0
    assert y == pytest.approx(-sum(abs(a - b) for a, b in zip(xs[:k], ws[:k])), rel=1e-5, abs=1e-5)
