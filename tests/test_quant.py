"""Quantizers of models.quant: integer outputs against the float layers, within derived bounds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from contract import MULT_BITS
from models.intref import dequantize, int_forward
from models.layers import Adder2d, AdderLinear, BinaryConv2d, BinaryLinear, ShiftConv2d, ShiftLinear
from models.quant import quantize, quantize_input, quantize_mac, quantize_xnor


def random_bn(channels: int, conv: bool, seed: int) -> nn.Module:
    """Eval-mode batch norm with random statistics and affine terms, some gammas negative."""
    gen = torch.Generator().manual_seed(seed)
    bn = (nn.BatchNorm2d if conv else nn.BatchNorm1d)(channels).eval()
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1, generator=gen)
        bn.running_var.uniform_(0.5, 2, generator=gen)
        bn.weight.uniform_(-1.5, 1.5, generator=gen)
        bn.bias.uniform_(-1, 1, generator=gen)
    return bn


def bn_scale(bn: nn.Module) -> np.ndarray:
    return (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().double().numpy()


def per_channel(v: np.ndarray, ndim: int) -> np.ndarray:
    return v.reshape((1, -1) + (1,) * (ndim - 2))


@pytest.mark.parametrize("conv", [True, False])
@pytest.mark.parametrize("pe", ["mac", "adder", "shift"])
def test_dequantized_output_within_derived_bound(pe, conv):
    torch.manual_seed(5)
    classes = {"mac": (nn.Conv2d, nn.Linear), "adder": (Adder2d, AdderLinear),
               "shift": (ShiftConv2d, ShiftLinear)}[pe]
    layer = classes[0](4, 6, 3, 2, 1, groups=2, bias=True) if conv else classes[1](12, 6, bias=True)
    bn = random_bn(6, conv, seed=6)
    x = torch.randn(3, 4, 6, 6) if conv else torch.randn(5, 12)
    bits = 8
    qmax = 2 ** (bits - 1) - 1
    q = quantize(layer, bn, bits=bits, calib=x, relu=True)
    y_float = torch.relu(bn(layer(x))).detach().double().numpy()
    y = dequantize(q, int_forward(q, quantize_input(q, x)))

    k = (2 * 3 * 3) if conv else 12
    w = layer.weight.detach().double().numpy().reshape(6, -1)
    x_max = float(x.abs().max())
    s_x = x_max / qmax
    s_out = float(np.abs(y_float).max()) / qmax
    assert q.scale_in == pytest.approx(s_x if pe != "adder" else max(x_max, np.abs(w).max()) / qmax)
    assert q.out_scale == pytest.approx(s_out)
    if pe == "mac":  # |x w - x_q w_q| <= |w| e_x + |x| e_w + e_x e_w, |e_x| <= s_x/2, |e_w| <= s_w/2
        s_w = np.abs(w).max(axis=1) / qmax
        acc_err = k * (np.abs(w).max(axis=1) * s_x / 2 + x_max * s_w / 2 + s_x * s_w / 4)
        s_acc = s_x * s_w
    elif pe == "adder":  # | |x - w| - |x_q - w_q| | <= |e_x| + |e_w| <= s
        acc_err = np.full(6, k * q.scale_in)
        s_acc = np.full(6, q.scale_in)
    else:  # weights exact: only the input rounding, weighted by |w|
        acc_err = np.abs(w).sum(axis=1) * s_x / 2
        s_acc = np.full(6, s_x * 2.0 ** -layer.max_shift)
    g = np.abs(bn_scale(bn))
    # + bias rounding (half an accumulator step), then the multiplier's relative error and the
    # output rounding (half an output step); float32 evaluation of the reference adds ~1e-6.
    bound = per_channel(g * (acc_err + s_acc / 2), y.ndim)
    bound = bound + (np.abs(y_float) + bound) * 2.0 ** -(MULT_BITS - 1) + s_out / 2 + 1e-5
    assert np.all(np.abs(y - y_float) <= bound)
    assert np.all(y >= 0)


@pytest.mark.parametrize("conv", [True, False])
def test_xnor_threshold_fold_is_exact(conv):
    torch.manual_seed(8)
    layer = BinaryConv2d(4, 8, 3, 2, 1, groups=2, bias=True) if conv else BinaryLinear(20, 8, bias=True)
    bn = random_bn(8, conv, seed=9)
    with torch.no_grad():
        bn.weight[0] = 0.0  # constant channel: the sign of beta' alone
    x = torch.randn(16, 4, 7, 7) if conv else torch.randn(64, 20)
    q = quantize_xnor(layer, bn)
    assert (q.compare_sign == np.where(bn_scale(bn) < 0, -1, 1)).all()
    want = (bn(layer(x)) >= 0).numpy().astype(np.int64)  # sign(0) = +1
    got = int_forward(q, quantize_input(q, x))
    np.testing.assert_array_equal(got, want)
    assert 0.2 < got.mean() < 0.8  # both outcomes occur
    np.testing.assert_array_equal(dequantize(q, got), np.where(want == 1, 1.0, -1.0))
    raw = quantize(layer, bn, binary_out=False)
    y = dequantize(raw, int_forward(raw, quantize_input(raw, x)))
    np.testing.assert_allclose(y, bn(layer(x)).detach().numpy(), rtol=1e-5, atol=1e-5)


def test_xnor_negative_gamma_flips_compare():
    layer = BinaryLinear(3, 1)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 1.0, 1.0]]))  # alpha = 1
    bn = nn.BatchNorm1d(1).eval()
    with torch.no_grad():
        bn.weight.fill_(-2.0)
        bn.bias.fill_(1.0)
        bn.running_var.fill_(1.0 - bn.eps)  # g = -2
    # y = -2 * dot + 1 >= 0  <=>  dot <= 0.5  <=>  -dot >= -0 (T = -floor(0.5) = 0).
    q = quantize_xnor(layer, bn)
    assert q.compare_sign.tolist() == [-1] and q.threshold.tolist() == [0]
    dots = {(1, 1, 1): 3, (1, 1, 0): 1, (1, 0, 0): -1, (0, 0, 0): -3}
    for bits, dot in dots.items():
        assert int_forward(q, np.array([bits])).tolist() == [[int(-2 * dot + 1 >= 0)]]


def test_mac_weights_and_multiplier():
    layer = nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.5, -0.25, 0.1], [-2.0, 1.0, 0.0]]))
    q = quantize_mac(layer, bits=8, in_range=1.0, out_range=2.0)
    assert q.weight.tolist() == [[127, -64, 25], [-127, 64, 0]]  # round(w / (max|w_o| / 127))
    # r = s_x * s_w / s_out = (1/127) * (max|w_o|/127) / (2/127)
    r = np.array([0.5, 2.0]) / 127 / 2
    assert np.all((2 ** (MULT_BITS - 2) <= np.abs(q.multiplier)) & (np.abs(q.multiplier) < 2 ** (MULT_BITS - 1)))
    np.testing.assert_allclose(q.multiplier * 2.0 ** -q.rshift, r, rtol=2.0 ** -(MULT_BITS - 1))
    # K = 3 products in [-128 * 127, 128 * 128] = [-16256, 16384]: [-48768, 49152], 2**15 < 49152
    # < 2**16 -> 16 magnitude bits + sign = 17
    assert q.acc_bits == 17 and q.bias.tolist() == [0, 0]


def test_shift_weights_are_exact():
    layer = ShiftConv2d(2, 3, 3, max_shift=4)
    q = quantize(layer, in_range=1.0, out_range=1.0)
    np.testing.assert_array_equal(q.weight * 2.0 ** -q.shift.astype(float), layer.weight.detach().numpy())
    # K = 2 * 3 * 3 = 18 terms in [-2**(8-1+4), 2**11]: [-36864, 36864], 2**15 < 36864 < 2**16
    # -> 17 bits (b + P + ceil(log2(K + 1)) = 8 + 4 + 5)
    assert q.max_shift == 4 and q.bits_w == 2 + 3 and q.acc_bits == 17


def test_bias_clip_keeps_saturation():
    layer = nn.Linear(2, 2, bias=True)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 1.0], [1.0, -1.0]]))
        layer.bias.copy_(torch.tensor([1e6, -1e6]))  # far beyond any accumulator
    q = quantize(layer, in_range=1.0, out_range=4.0)
    assert q.bias_bits < 40
    x = np.array([[127, 127], [-128, -128], [0, 5]])
    assert int_forward(q, x).tolist() == [[127, -128]] * 3


def test_quantize_wrong():
    conv = nn.Conv2d(2, 4, 3)
    with pytest.raises(ValueError, match=r"^bits must be an integer in 2\.\.16, not 1$"):
        quantize(conv, bits=1, in_range=1.0, out_range=1.0)
    with pytest.raises(ValueError, match=r"^bits_out must be an integer in 2\.\.16, not 17$"):
        quantize(Adder2d(2, 4, 3), bits_out=17, in_range=1.0, out_range=1.0)
    with pytest.raises(ValueError, match=r"^bits must be 1 for xnor, not 8$"):
        quantize(BinaryConv2d(2, 4, 3), bits=8)
    with pytest.raises(ValueError, match=r"^give either calib or both in_range and out_range$"):
        quantize(conv, in_range=1.0)
    with pytest.raises(ValueError, match=r"^in_range must be positive and finite, not 0\.0$"):
        quantize(conv, in_range=0.0, out_range=1.0)
    with pytest.raises(ValueError, match=r"^bn must be a BatchNorm2d, not BatchNorm1d$"):
        quantize(conv, nn.BatchNorm1d(4), in_range=1.0, out_range=1.0)
    with pytest.raises(ValueError, match=r"^bn must track statistics of 4 features$"):
        quantize(conv, nn.BatchNorm2d(3), in_range=1.0, out_range=1.0)
    with pytest.raises(ValueError, match=r"^layer must be of PE kind mac, not adder$"):
        quantize_mac(Adder2d(2, 4, 3), in_range=1.0, out_range=1.0)
    with pytest.raises(ValueError, match=r"^layer must be a conv/linear of a known PE kind, not ReLU$"):
        quantize(nn.ReLU())
    bn = nn.BatchNorm2d(4).eval()
    with torch.no_grad():
        bn.weight[2] = 0.0
    with pytest.raises(ValueError, match=r"^bn weight of channel 2 is zero; fold that channel to a constant$"):
        quantize(conv, bn, in_range=1.0, out_range=1.0)
