"""The integer reference forward against a naive loop golden model and hand-computed cases."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract import MULT_BITS
from models.intref import QLayer, int_forward, layer_acc_bits


def make_q(pe: str, weight: np.ndarray, *, conv: bool = True, stride: int = 1, padding: int = 0,
           groups: int = 1, bits: int = 8, bits_out: int = 8, max_shift: int = 0, relu: bool = False,
           binary_out: bool = True, **arrays: np.ndarray) -> QLayer:
    """A hand-built QLayer; per-channel arrays default to an identity requantization (x 1)."""
    out = weight.shape[0]
    cin = weight.shape[1] * groups
    kernel = weight.shape[2:] if conv else (1, 1)
    if pe != "xnor":
        arrays.setdefault("multiplier", np.full(out, 1 << (MULT_BITS - 2)))
        arrays.setdefault("rshift", np.full(out, MULT_BITS - 2))
        arrays.setdefault("bias", np.zeros(out, dtype=np.int64))
    elif binary_out:
        arrays.setdefault("threshold", np.zeros(out, dtype=np.int64))
        arrays.setdefault("compare_sign", np.ones(out, dtype=np.int64))
    return QLayer(pe=pe, conv=conv, in_channels=cin, out_channels=out, kernel_size=tuple(kernel),
                  stride=(stride, stride), padding=(padding, padding), groups=groups,
                  bits_in=1 if pe == "xnor" else bits, bits_w=bits, bits_out=bits_out,
                  acc_bits=0, bias_bits=0, max_shift=max_shift, relu=relu, binary_out=binary_out,
                  scale_in=1.0, weight=np.asarray(weight), out_scale=np.ones(out),
                  out_offset=np.zeros(out), **arrays)


def golden(q: QLayer, x: np.ndarray) -> np.ndarray:
    """Python-int loops: one output at a time, straight from the written semantics."""
    if not q.conv:
        x = x[:, :, None, None]
    n, _, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = q.kernel_size, q.stride, q.padding
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    og, cg = q.out_channels // q.groups, q.in_channels // q.groups
    wt = q.weight.reshape(q.out_channels, cg, kh, kw)
    y = np.zeros((n, q.out_channels, ho, wo), dtype=np.int64)
    for b in range(n):
        for o in range(q.out_channels):
            for i in range(ho):
                for j in range(wo):
                    acc = 0
                    for ci in range(cg):
                        for ki in range(kh):
                            for kj in range(kw):
                                r, c = i * sh + ki - ph, j * sw + kj - pw
                                v = int(x[b, (o // og) * cg + ci, r, c]) if 0 <= r < h and 0 <= c < w else 0
                                wv = int(wt[o, ci, ki, kj])
                                if q.pe == "mac":
                                    acc += v * wv
                                elif q.pe == "adder":
                                    acc -= abs(v - wv)
                                elif q.pe == "shift":
                                    p = int(q.shift.reshape(wt.shape)[o, ci, ki, kj])
                                    acc += wv * v * 2 ** (q.max_shift - p)
                                else:
                                    acc += (2 * v - 1) * (2 * wv - 1)  # +-1 products
                    y[b, o, i, j] = requantize(q, o, acc)
    return y if q.conv else y[:, :, 0, 0]


def requantize(q: QLayer, o: int, acc: int) -> int:
    if q.pe == "xnor":
        return (int(q.compare_sign[o]) * acc >= int(q.threshold[o])) if q.binary_out else acc
    real = Fraction((acc + int(q.bias[o])) * int(q.multiplier[o]), 2 ** int(q.rshift[o]))
    y = min(max(math.floor(real + Fraction(1, 2)), -2 ** (q.bits_out - 1)), 2 ** (q.bits_out - 1) - 1)
    return max(y, 0) if q.relu else y


def test_mac_1x1_hand():
    q = make_q("mac", np.array([[[[2]], [[1]], [[-1]]]]), bias=np.array([10]),
               multiplier=np.array([1 << 14]), rshift=np.array([15]))
    x = np.array([3, -2, 5]).reshape(1, 3, 1, 1)
    # acc = 6 - 2 - 5 = -1; (acc + 10) / 2 = 4.5 rounds half up to 5.
    assert int_forward(q, x).tolist() == [[[[5]]]]


def test_adder_1x1_hand():
    q = make_q("adder", np.array([[1, 1, 1]]), conv=False, multiplier=np.array([1 << 14]),
               rshift=np.array([15]))
    # acc = -(|3-1| + |-2-1| + |5-1|) = -9; -9 / 2 = -4.5 rounds half up to -4.
    assert int_forward(q, np.array([[3, -2, 5]])).tolist() == [[-4]]


def test_shift_1x1_hand():
    q = make_q("shift", np.array([[1, -1, 0]]), conv=False, max_shift=2, shift=np.array([[0, 1, 2]]),
               multiplier=np.array([1 << 14]), rshift=np.array([16]))
    # acc = (3 << 2) - (-2 << 1) + 0 = 16 units of 2**-2, i.e. 3 * 1 + (-2) * (-1/2) = 4.
    assert int_forward(q, np.array([[3, -2, 5]])).tolist() == [[4]]


def test_xnor_1x1_hand():
    w = np.array([[1, 1, 0], [1, 1, 0], [1, 1, 0]])
    x = np.array([[1, 0, 1]])  # +1, -1, +1 against +1, +1, -1: dot = 1 - 1 - 1 = -1
    q = make_q("xnor", w, conv=False, threshold=np.array([-1, 0, 1]), compare_sign=np.array([1, 1, -1]))
    assert int_forward(q, x).tolist() == [[1, 0, 1]]  # -1 >= -1, -1 >= 0, 1 >= 1
    assert int_forward(make_q("xnor", w, conv=False, binary_out=False), x).tolist() == [[-1, -1, -1]]


def test_xnor_padding_is_minus_one():
    # One +1 pixel, 3x3 kernel of -1, padding 1: 8 padded (-1)(-1) = +8, centre (+1)(-1) = -1.
    q = make_q("xnor", np.zeros((1, 1, 3, 3), dtype=np.int64), padding=1, binary_out=False)
    assert int_forward(q, np.ones((1, 1, 1, 1), dtype=np.int64)).tolist() == [[[[7]]]]


def test_relu_and_clamp():
    q = make_q("mac", np.array([[1]]), conv=False, bits_out=4, relu=True)
    assert int_forward(q, np.array([[-5], [3], [100]])).tolist() == [[0], [3], [7]]
    q = make_q("mac", np.array([[1]]), conv=False, bits_out=4)
    assert int_forward(q, np.array([[-100], [100]])).tolist() == [[-8], [7]]


def test_residual_added_before_the_clamp():
    """``y = clamp(q + r)``, then ReLU: one rounding, one saturation (hand-worked, 4-bit outputs)."""
    q = make_q("adder", np.array([[1]]), conv=False, bits_out=4, multiplier=np.array([1 << 14]),
               rshift=np.array([15]))
    # acc = -|x - 1|: x = 4 -> -3 -> -1.5 rounds half up to -1; + r = 5 -> 4
    # x = 1 -> 0 -> 0; + 7 -> 7 (no saturation yet); x = -6 -> -7 -> -3.5 -> -3; + (-8) = -11 -> -8
    x, r = np.array([[4], [1], [-6]]), np.array([[5], [7], [-8]])
    assert int_forward(q, x, residual=r).tolist() == [[4], [7], [-8]]
    relu = make_q("adder", np.array([[1]]), conv=False, bits_out=4, relu=True, multiplier=np.array([1 << 14]),
                  rshift=np.array([15]))
    # q = -1 + 0 -> -1 -> ReLU 0 (the add comes first: -1 + 2 = 1 survives the ReLU)
    assert int_forward(relu, np.array([[4], [4]]), residual=np.array([[0], [2]])).tolist() == [[0], [1]]
    # a product past the range is not clamped before the add: 12 + (-8) = 4 (clamping first: 7 - 8 = -1)
    big = make_q("mac", np.array([[1]]), conv=False, bits_out=4)
    assert int_forward(big, np.array([[12]]), residual=np.array([[-8]])).tolist() == [[4]]


def test_residual_wrong():
    q = make_q("mac", np.ones((2, 1, 1, 1), dtype=np.int64), bits_out=4)
    x = np.zeros((1, 1, 2, 2), dtype=np.int64)
    with pytest.raises(ValueError, match=r"^residual must have the output's shape \(1, 2, 2, 2\), not \(1, 2, 2\)$"):
        int_forward(q, x, residual=np.zeros((1, 2, 2), dtype=np.int64))
    with pytest.raises(ValueError, match=r"^residual values must lie in \[-8, 7\], not \[8, 8\]$"):
        int_forward(q, x, residual=np.full((1, 2, 2, 2), 8))
    with pytest.raises(ValueError, match=r"^residual must be an integer numpy array, not float64$"):
        int_forward(q, x, residual=np.zeros((1, 2, 2, 2)))
    xnor = make_q("xnor", np.ones((1, 1, 1, 1), dtype=np.int64))
    with pytest.raises(ValueError, match=r"^a residual add needs a requantizing layer \(mac, adder, shift\), not xnor$"):
        int_forward(xnor, np.ones((1, 1, 1, 1), dtype=np.int64), residual=np.zeros((1, 1, 1, 1), dtype=np.int64))


# (x, w, p): the largest |acc| per kind, for 8-bit operands and K = 1024, and the stated width:
# the PE takes any two's-complement operand (the quantizer never emits w = -128, the PE may see it).
EXTREMES = {
    # x * w = (-128) * (-128) = 2**14; K terms: 2**24 -> 25 magnitude bits + sign = 26
    "mac": (-128, -128, 0, 26),
    # -|x - w| = -|-128 - 127| = -255; K terms: -261120, and 2**17 < 261120 <= 2**18 -> 19 bits
    "adder": (-128, 127, 0, 19),
    # s * (x << (P - p)) = -1 * (-128 << 7) = 2**14; K terms: 2**24 -> 26 bits
    "shift": (-128, -1, 0, 26),
}


@pytest.mark.parametrize("pe", sorted(EXTREMES))
def test_extreme_values_fit_stated_width(pe):
    k, bits, big_p = 1024, 8, 7 if pe == "shift" else 0
    xv, wv, p, width = EXTREMES[pe]
    assert layer_acc_bits(pe, k, bits, max_shift=big_p) == width
    per_term = {"mac": xv * wv, "adder": -abs(xv - wv), "shift": wv * xv * 2 ** (big_p - p)}[pe]
    acc = k * per_term
    assert -(2 ** (width - 1)) <= acc <= 2 ** (width - 1) - 1
    assert not -(2 ** (width - 2)) <= acc <= 2 ** (width - 2) - 1  # one bit fewer would overflow
    # Read the exact accumulator back through the output stage: y = acc * 2**-(width - 16).
    extra = {"shift": np.full((1, k), p)} if pe == "shift" else {}
    q = make_q(pe, np.full((1, k), wv), conv=False, bits=bits, bits_out=16, max_shift=big_p,
               rshift=np.array([MULT_BITS - 2 + width - 16]), **extra)
    y = int_forward(q, np.full((1, k), xv))
    assert y.tolist() == [[acc >> (width - 16)]] and y.dtype == np.int64


def test_xnor_extremes():
    k = 1024
    assert layer_acc_bits("xnor", k, 1) == 12  # dot in [-1024, 1024]: 1024 = 2**10 -> 11 bits + sign
    q = make_q("xnor", np.zeros((1, k), dtype=np.int64), conv=False, binary_out=False)
    assert int_forward(q, np.zeros((1, k), dtype=np.int64)).tolist() == [[k]]
    assert int_forward(q, np.ones((1, k), dtype=np.int64)).tolist() == [[-k]]


@st.composite
def layers_and_inputs(draw):
    pe = draw(st.sampled_from(["mac", "adder", "shift", "xnor"]))
    conv = draw(st.booleans())
    groups = draw(st.sampled_from([1, 2])) if conv else 1
    cg, og = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    k = draw(st.integers(1, 3)) if conv else 1
    bits = 1 if pe == "xnor" else draw(st.integers(2, 8))
    lo, hi = (0, 1) if pe == "xnor" else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    wshape = (og * groups, cg, k, k) if conv else (og, cg)
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    weight = rng.integers(lo if pe != "shift" else -1, (hi if pe != "shift" else 1) + 1, wshape)
    out = wshape[0]
    arrays = {}
    if pe == "shift":
        arrays["shift"] = rng.integers(0, 4, wshape)
    if pe == "xnor":
        arrays["threshold"] = rng.integers(-4, 5, out)
        arrays["compare_sign"] = rng.choice([-1, 1], out)
    else:
        arrays["multiplier"] = rng.choice([-1, 1], out) * rng.integers(1 << 14, 1 << 15, out)
        arrays["rshift"] = rng.integers(10, 20, out)
        arrays["bias"] = rng.integers(-50, 51, out)
    q = make_q(pe, weight, conv=conv, stride=draw(st.integers(1, 2)) if conv else 1,
               padding=draw(st.integers(0, 1)) if conv else 0, groups=groups, bits=max(bits, 2),
               bits_out=draw(st.integers(2, 8)), max_shift=3 if pe == "shift" else 0,
               relu=draw(st.booleans()), binary_out=draw(st.booleans()), **arrays)
    side = draw(st.integers(k, 5))
    xshape = (2, cg * groups, side, side) if conv else (2, cg)
    return q, rng.integers(lo, hi + 1, xshape)


@settings(max_examples=60, deadline=None)
@given(layers_and_inputs())
def test_int_forward_matches_golden(case):
    q, x = case
    np.testing.assert_array_equal(int_forward(q, x), golden(q, x))


def test_depthwise_strided_matches_golden():
    rng = np.random.default_rng(7)
    q = make_q("mac", rng.integers(-127, 128, (4, 1, 3, 3)), stride=2, padding=1, groups=4,
               rshift=np.full(4, 18))
    x = rng.integers(-128, 128, (2, 4, 7, 6))
    y = int_forward(q, x)
    assert y.shape == (2, 4, 4, 3)
    np.testing.assert_array_equal(y, golden(q, x))


def test_int_forward_wrong():
    q = make_q("mac", np.ones((16, 8, 3, 3), dtype=np.int64))
    with pytest.raises(ValueError, match=r"^input must have shape \(N, 8, H, W\), not \(1, 16, 5, 5\)$"):
        int_forward(q, np.zeros((1, 16, 5, 5), dtype=np.int64))
    with pytest.raises(ValueError, match=r"^input must be an integer numpy array, not float32$"):
        int_forward(q, np.zeros((1, 8, 5, 5), dtype=np.float32))
    with pytest.raises(ValueError, match=r"^input must be an integer numpy array, not list$"):
        int_forward(q, [[1]])
    with pytest.raises(ValueError, match=r"^input values must lie in \[-128, 127\], not \[128, 128\]$"):
        int_forward(q, np.full((1, 8, 5, 5), 128))
    with pytest.raises(ValueError, match=r"^input of spatial size \(2, 5\) is smaller than the kernel$"):
        int_forward(q, np.zeros((1, 8, 2, 5), dtype=np.int64))
    linear = make_q("xnor", np.ones((4, 3), dtype=np.int64), conv=False)
    with pytest.raises(ValueError, match=r"^input must have shape \(N, 3\), not \(2, 3, 1\)$"):
        int_forward(linear, np.zeros((2, 3, 1), dtype=np.int64))
    with pytest.raises(ValueError, match=r"^input values must lie in \[0, 1\], not \[-1, 1\]$"):
        int_forward(linear, np.array([[1, -1, 0], [0, 0, 1]]))


def test_acc_bits_wrong():
    with pytest.raises(ValueError, match=r"^unknown PE kind 'fpu'; choose one of mac, adder, xnor, shift$"):
        layer_acc_bits("fpu", 9, 8)
    with pytest.raises(ValueError, match=r"^`k` must be a positive integer, not 0$"):
        layer_acc_bits("mac", 0, 8)
    with pytest.raises(ValueError, match=r"^`k` must be a positive integer, not 0$"):
        layer_acc_bits("xnor", 0, 1)
