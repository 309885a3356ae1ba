"""contract: the integer rules every layer shares, against brute force and hand calculations.

The accumulator ranges are checked against an exhaustive enumeration of operand values (every
k-tuple for the smallest cases, the exact k-fold sumset of the per-beat terms for the others);
the widths against the narrowest two's-complement (or unsigned) width found by counting up; and
every consumer of the rule (the generated PE's shape, the cost model, the integer reference, the
accelerator's partial-sum width) against one closed form written out here.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import contract
import cost_models as cm
from contract import ContractError
from hwsim.accelerator import Accelerator, ArrayConfig
from models.intref import layer_acc_bits
from rtl.pe import PESpec, shift_weight_layout


# --- golden helpers (independent of the contract's own arithmetic) -----------------------------

def narrowest(lo: int, hi: int) -> tuple[int, bool]:
    """Count up to the narrowest width holding [lo, hi]: unsigned when lo >= 0, else signed."""
    width = 1
    if lo >= 0:
        while hi > 2 ** width - 1:
            width += 1
        return width, False
    while not (-(2 ** (width - 1)) <= lo and hi <= 2 ** (width - 1) - 1):
        width += 1
    return width, True


def operands(bits: int) -> range:
    return range(-(2 ** (bits - 1)), 2 ** (bits - 1))


def beat_terms(pe: str, bits: int, p_max: int) -> np.ndarray:
    """Every value one beat can add, from every operand combination, as the semantics state it."""
    xs = operands(bits)
    if pe == "mac":
        vals = [x * w for x in xs for w in xs]
    elif pe == "adder":
        vals = [-abs(x - w) for x in xs for w in xs]
    else:  # shift: s * (x << (P - p)), s in {-1, 0, 1}, p in [0, P]
        vals = [s * (x << (p_max - p)) for s in (-1, 0, 1) for x in xs for p in range(p_max + 1)]
    return np.unique(np.array(vals, dtype=np.int64))


def sumset_extremes(terms: np.ndarray, k: int) -> tuple[int, int]:
    """min and max of every reachable k-term sum: the exact k-fold sumset, built by enumeration."""
    reach = terms
    for _ in range(k - 1):
        reach = np.unique(np.add.outer(reach, terms))
    return int(reach.min()), int(reach.max())


def direct_extremes(pe: str, bits: int, p_max: int, k: int) -> tuple[int, int]:
    """min and max over every k-tuple of operand combinations (no sumset shortcut)."""
    xs = operands(bits)
    if pe == "mac":
        beats = [x * w for x in xs for w in xs]
    elif pe == "adder":
        beats = [-abs(x - w) for x in xs for w in xs]
    else:
        beats = [s * x * 2 ** (p_max - p) for s in (-1, 0, 1) for x in xs for p in range(p_max + 1)]
    sums = [sum(t) for t in itertools.product(beats, repeat=k)]
    return min(sums), max(sums)


# --- (a) brute force ------------------------------------------------------------------------------

@pytest.mark.parametrize("pe, bits, p_max", [("mac", 2, 0), ("adder", 2, 0), ("shift", 2, 0),
                                             ("shift", 2, 2)])
def test_acc_range_every_operand_tuple(pe, bits, p_max):
    for k in (1, 2, 3):
        lo, hi = direct_extremes(pe, bits, p_max, k)
        assert contract.acc_range(pe, k, bits, max_shift=p_max) == (lo, hi), k
        assert contract.acc_bits(pe, k, bits, max_shift=p_max) == narrowest(lo, hi)[0], k


@pytest.mark.parametrize("pe, bits, p_max", [
    ("mac", 2, 0), ("mac", 3, 0), ("mac", 4, 0),
    ("adder", 2, 0), ("adder", 3, 0), ("adder", 4, 0),
    ("shift", 2, 0), ("shift", 3, 2), ("shift", 4, 3), ("shift", 4, 7),
])
def test_acc_bits_is_the_narrowest_width_of_the_true_range(pe, bits, p_max):
    terms = beat_terms(pe, bits, p_max)
    for k in range(1, 10):
        lo, hi = sumset_extremes(terms, k)
        assert contract.acc_range(pe, k, bits, max_shift=p_max) == (lo, hi), k
        width, signed = narrowest(lo, hi)
        assert signed  # every kind but xnor reaches a negative sum
        assert contract.acc_bits(pe, k, bits, max_shift=p_max) == width, k
        assert contract.range_width(lo, hi) == (width, True)


def test_term_range_by_hand():
    # 8-bit products over the full range: (-128) * 127 = -16256, (-128) * (-128) = 16384
    assert contract.term_range("mac", 8) == (-16256, 16384)
    assert contract.term_range("adder", 8) == (-255, 0)  # |-128 - 127| = 255
    assert contract.term_range("shift", 8, max_shift=7) == (-2 ** 14, 2 ** 14)  # 128 << 7
    assert contract.term_range("shift", 4, max_shift=0) == (-8, 8)
    assert contract.term_range("xnor", 1, lanes=64) == (0, 64)


@pytest.mark.parametrize("lanes", [1, 2, 4, 8])
def test_xnor_count_width_by_enumeration(lanes):
    """The PE counts agreeing lanes over ceil(k / L) words; padded lanes hold 0 in x and w."""
    for k in range(1, 9):
        padded = -(-k // lanes) * lanes
        codes = np.arange(2 ** k, dtype=np.int64)  # every k-bit x (and w), zero-padded above
        agree = ~(codes[:, None] ^ codes[None, :]) & ((1 << padded) - 1)
        counts = np.array([bin(int(v)).count("1") for v in np.unique(agree)])
        lo, hi = int(counts.min()), int(counts.max())
        assert (lo, hi) == (padded - k, padded)  # the padding always agrees
        assert contract.acc_range("xnor", k, 1, lanes=lanes) == (0, hi)
        assert contract.acc_bits("xnor", k, 1, lanes=lanes) == narrowest(0, hi)[0] == narrowest(lo, hi)[0]
        assert contract.steps("xnor", k, lanes) == padded // lanes


def test_dot_bits_by_enumeration():
    for k in range(1, 9):
        codes = np.arange(2 ** k)
        diff = codes[:, None] ^ codes[None, :]
        dots = {k - 2 * bin(int(v)).count("1") for v in np.unique(diff)}
        assert (min(dots), max(dots)) == (-k, k)
        assert contract.dot_bits(k) == narrowest(-k, k)[0]
    assert contract.dot_bits(1024) == 12  # [-1024, 1024]: 1024 = 2**10 needs 11 bits + sign


def test_range_width_by_hand():
    assert contract.range_width(0, 0) == (1, False)
    assert contract.range_width(0, 255) == (8, False)
    assert contract.range_width(0, 256) == (9, False)
    assert contract.range_width(-1, 0) == (1, True)
    assert contract.range_width(-128, 127) == (8, True)
    assert contract.range_width(-129, 0) == (9, True)
    assert contract.range_width(-128, 128) == (9, True)
    with pytest.raises(ContractError, match=r"^empty range \[1, 0\]$"):
        contract.range_width(1, 0)


# --- (b) every consumer has the one width ------------------------------------------------------

def closed_form(pe: str, bits: int, k: int, p_max: int) -> int:
    """The widths written out: mac k * 2**(2b-2) is the largest magnitude (the negative end is
    k * 2**(b-1) * (2**(b-1) - 1), smaller); adder [-k (2**b - 1), 0]; shift +-k * 2**(b-1+P)."""
    if pe == "mac":
        return (k * 2 ** (2 * bits - 2)).bit_length() + 1
    if pe == "adder":
        return (k * (2 ** bits - 1) - 1).bit_length() + 1
    return (k * 2 ** (bits - 1 + p_max)).bit_length() + 1


@pytest.mark.parametrize("pe", ["mac", "adder", "shift"])
@pytest.mark.parametrize("bits", [2, 4, 8, 16])
@pytest.mark.parametrize("k", [1, 9, 576, 4608])
def test_one_accumulator_width_everywhere(pe, bits, k):
    for p_max in ((7, 3) if pe == "shift" else (7,)):
        want = closed_form(pe, bits, k, p_max)
        shape = PESpec(pe, bits, k, max_shift=p_max).acc_shape
        assert (shape.width, shape.signed) == (want, True)
        assert contract.acc_bits(pe, k, bits, max_shift=p_max) == want
        assert cm.acc_bits_for(pe, bits, k, max_shift=p_max) == want
        assert layer_acc_bits(pe, k, bits, max_shift=p_max) == want
        acc = Accelerator(pe=pe, bits=bits, max_shift=p_max)
        assert acc.psum_bits(pe, bits, k) == want


@pytest.mark.parametrize("lanes", [1, 8, 64])
@pytest.mark.parametrize("k", [1, 9, 70, 576, 4608])
def test_one_xnor_width_everywhere(lanes, k):
    count = -(-k // lanes) * lanes  # agreeing lanes over whole words, unsigned
    shape = PESpec("xnor", 1, k, lanes=lanes).acc_shape
    assert (shape.width, shape.signed) == (count.bit_length(), False)
    assert contract.acc_bits("xnor", k, 1, lanes=lanes) == count.bit_length()
    assert cm.acc_bits_for("xnor", 1, k, lanes=lanes) == count.bit_length()
    acc = Accelerator(pe="xnor", bits=1, array=ArrayConfig(lanes=lanes))
    assert acc.psum_bits("xnor", 1, k) == count.bit_length()
    # the integer reference keeps the dot product in [-K, K]
    assert layer_acc_bits("xnor", k, 1) == k.bit_length() + 1


def test_hand_widths_of_common_layers():
    assert contract.acc_bits("mac", 9, 8) == 19  # 9 * 2**14 = 147456 in [2**17, 2**18): 18 + sign
    assert contract.acc_bits("mac", 8, 8) == 19  # 8 * 2**14 = 2**17 exactly: 18 + sign
    assert contract.acc_bits("mac", 4608, 8) == 28  # 4608 * 2**14 = 9 * 2**23 in [2**26, 2**27)
    assert contract.acc_bits("adder", 9, 8) == 13  # -9 * 255 = -2295, 2**11 < 2295 <= 2**12
    assert contract.acc_bits("shift", 9, 8) == 19  # 9 * 2**(7 + 7) as for mac
    assert contract.acc_bits("xnor", 4608, 1, lanes=64) == 13  # 4608 in [2**12, 2**13), unsigned


# --- weight codes, steps, widths of kinds -------------------------------------------------------

def test_weight_code_bits():
    assert contract.weight_code_bits(7) == 5  # p in [0, 7]: 3 bits, + sign + zero flag
    assert contract.shift_field_bits(0) == 1  # even P = 0 keeps a (constant) 1-bit field
    assert [contract.shift_field_bits(p) for p in (1, 2, 3, 4, 15, 16)] == [1, 2, 2, 3, 4, 5]
    assert contract.weight_code_bits(16) == 7
    assert cm.weight_bits_for("shift", 8, max_shift=7) == 5 and cm.weight_bits_for("mac", 6) == 6
    assert shift_weight_layout(7).size == 5


def test_steps_lanes_and_kind_bits():
    assert contract.steps("xnor", 70, 64) == 2 and contract.steps("xnor", 64, 64) == 1
    assert contract.steps("mac", 70, 64) == 70  # lanes only apply to xnor
    assert contract.lanes_per_pe("xnor", 32) == 32 and contract.lanes_per_pe("adder", 32) == 1
    assert [contract.kind_bits(pe, 1) for pe in contract.PE_KINDS] == [8, 8, 1, 8]
    assert [contract.kind_bits(pe, 4) for pe in contract.PE_KINDS] == [4, 4, 1, 4]
    assert contract.layer_bits("xnor", 1) == 8 and contract.layer_bits("shift", 6) == 6
    assert contract.check_bits("mac", 32) == 32 and contract.check_bits("xnor", 1) == 1
    assert contract.check_bits("mac", 16, hardware=True) == 16


# --- conv_out_size -------------------------------------------------------------------------------

@pytest.mark.parametrize("args, out", [
    ((32, 3, 1, 1), 32),        # (32 + 2 - 3) // 1 + 1
    ((32, 3, 2, 1), 16),        # (32 + 2 - 3) // 2 + 1 = 15 + 1
    ((224, 7, 2, 3), 112),      # ResNet stem: (224 + 6 - 7) // 2 + 1 = 111 + 1
    ((7, 3, 2, 0, 2), 2),       # dilation 2: span 2 * 2 + 1 = 5, (7 - 5) // 2 + 1
    ((5, 3, 1, 0, 2), 1),       # span 5 on 5
    ((5, 3, 1, 2, 2), 5),       # 'same' padding for dilation 2: (5 + 4 - 5) // 1 + 1
    ((1, 1), 1),
])
def test_conv_out_size_by_hand(args, out):
    assert contract.conv_out_size(*args) == out


def test_conv_out_size_wrong():
    with pytest.raises(ContractError, match=r"^kernel 3 \(dilation 2\) is larger than the padded input 4$"):
        contract.conv_out_size(4, 3, 1, 0, 2)
    with pytest.raises(ContractError, match=r"^kernel 5 \(dilation 1\) is larger than the padded input 4$"):
        contract.conv_out_size(2, 5, 1, 1)
    with pytest.raises(ContractError, match=r"^`stride` must be a positive integer, not 0$"):
        contract.conv_out_size(8, 3, 0)
    with pytest.raises(ContractError, match=r"^`kernel` must be a positive integer, not 0$"):
        contract.conv_out_size(8, 0)
    with pytest.raises(ContractError, match=r"^`dilation` must be a positive integer, not 0$"):
        contract.conv_out_size(8, 3, 1, 0, 0)
    with pytest.raises(ContractError, match=r"^`padding` must be an integer of at least 0, not -1$"):
        contract.conv_out_size(8, 3, 1, -1)
    with pytest.raises(ContractError, match=r"^`size` must be a positive integer, not 0$"):
        contract.conv_out_size(0, 1)


# --- (c) errors name the argument ---------------------------------------------------------------

KIND = r"^unknown PE kind 'fpu'; choose one of mac, adder, xnor, shift$"


@pytest.mark.parametrize("call", [
    lambda: contract.acc_bits("fpu", 9, 8),
    lambda: contract.acc_range("fpu", 9, 8),
    lambda: contract.term_range("fpu", 8),
    lambda: contract.check_bits("fpu", 8),
    lambda: contract.kind_bits("fpu", 8),
    lambda: contract.layer_bits("fpu", 8),
    lambda: contract.lanes_per_pe("fpu", 1),
    lambda: contract.steps("fpu", 9),
    lambda: contract.acc_bits(None, 9, 8),
])
def test_bad_pe_kind(call):
    with pytest.raises(ContractError, match=KIND.replace("'fpu'", "(?:'fpu'|None)")):
        call()


@pytest.mark.parametrize("pe, bits, hardware, message", [
    ("mac", 1, False, r"the mac datapath supports 2 to 32-bit operands, not 1"),
    ("adder", 33, False, r"the adder datapath supports 2 to 32-bit operands, not 33"),
    ("shift", 8.0, False, r"the shift datapath supports 2 to 32-bit operands, not 8\.0"),
    ("mac", True, False, r"the mac datapath supports 2 to 32-bit operands, not True"),
    ("mac", 17, True, r"the integer quantizers and the generated hardware support 2 to 16-bit operands, not 17"),
    ("shift", 1, True, r"the integer quantizers and the generated hardware support 2 to 16-bit operands, not 1"),
    ("xnor", 8, False, r"the xnor datapath works on 1-bit operands, not 8; use --bits 1"),
    ("xnor", True, False, r"the xnor datapath works on 1-bit operands, not True; use --bits 1"),
])
def test_bits_out_of_range(pe, bits, hardware, message):
    with pytest.raises(ContractError, match="^" + message + "$"):
        contract.check_bits(pe, bits, hardware=hardware)
    if not hardware:  # the accumulator rule refuses the same widths
        with pytest.raises(ContractError, match="^" + message + "$"):
            contract.acc_bits(pe, 9, bits)


@pytest.mark.parametrize("call, message", [
    (lambda: contract.acc_bits("mac", 0, 8), r"`k` must be a positive integer, not 0"),
    (lambda: contract.acc_bits("xnor", -3, 1, lanes=64), r"`k` must be a positive integer, not -3"),
    (lambda: contract.acc_bits("adder", 2.5, 8), r"`k` must be a positive integer, not 2\.5"),
    (lambda: contract.acc_range("shift", 0, 8), r"`k` must be a positive integer, not 0"),
    (lambda: contract.steps("mac", 0), r"`k` must be a positive integer, not 0"),
    (lambda: contract.dot_bits(0), r"`k` must be a positive integer, not 0"),
    (lambda: contract.acc_bits("xnor", 9, 1, lanes=0), r"`lanes` must be a positive integer, not 0"),
    (lambda: contract.acc_bits("shift", 9, 8, max_shift=-1), r"`max_shift` must be an integer of at least 0, not -1"),
    (lambda: contract.weight_code_bits(-1), r"`max_shift` must be an integer of at least 0, not -1"),
])
def test_argument_errors_name_the_argument(call, message):
    with pytest.raises(ContractError, match="^" + message + "$"):
        call()


def test_contract_error_is_a_value_error():
    # callers that catch ValueError (the cost models' users, the quantizers) keep working
    with pytest.raises(ValueError):
        contract.acc_bits("mac", 9, 40)


@pytest.mark.parametrize("pe, bits, max_shift, want", [
    ("xnor", 1, 7, (1, 1)),       # binary activations and weights
    ("xnor", 8, 7, (1, 1)),       # an xnor layer in an 8-bit network is still binary
    ("mac", 6, 7, (6, 6)),
    ("adder", 4, 7, (4, 4)),
    ("shift", 8, 7, (8, 5)),      # 3 bits of p in [0, 7], sign, zero flag
    ("shift", 8, 0, (8, 3)),      # p = 0 still takes one bit
    ("shift", 4, 16, (4, 7)),     # 5 bits of p in [0, 16]
])
def test_operand_bits(pe: str, bits: int, max_shift: int, want: tuple[int, int]) -> None:
    assert contract.operand_bits(pe, bits, max_shift=max_shift) == want


def test_operand_bits_wrong() -> None:
    with pytest.raises(contract.ContractError, match=r"^the mac datapath supports 2 to 32-bit operands, not 1$"):
        contract.operand_bits("mac", 1)


def test_act_banks_by_hand() -> None:
    """The smallest prime above the rows, and the largest ``k`` with ``2**k <= B``; one row, one bank."""
    assert [contract.act_banks(r) for r in (1, 2, 3, 4, 8, 16, 32)] == [
        (1, 0), (3, 1), (5, 2), (5, 2), (11, 3), (17, 4), (37, 5)]
    # no two buffer words share a bank and an address there: (i mod B, i >> k) is one-to-one
    banks, k = contract.act_banks(8)
    assert len({(i % banks, i >> k) for i in range(1000)}) == 1000
    with pytest.raises(ContractError, match=r"^`rows` must be a positive integer, not 0$"):
        contract.act_banks(0)
