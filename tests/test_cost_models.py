"""cost_models: hand-computed costs from the cited table, accumulator bounds, and error messages.

Expected values are written out from the published numbers (Horowitz ISSCC 2014 and the gate
entries of horowitz45.yaml) and the scaling rules stated in the module docstrings, never by calling
the code's own helpers.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import cost_models as cm
from cost_models import memory
from cost_models.xnor import popcount_full_adders

SHIPPED = Path(cm.__file__).resolve().parent / "data" / "horowitz45.yaml"
TECH = cm.load_technology("horowitz45")

# Log-log exponents through Horowitz's 8- and 32-bit points (the stated scaling rule).
ADD_E = math.log(0.1 / 0.03) / math.log(32 / 8)
ADD_A = math.log(137 / 36) / math.log(32 / 8)
MULT_E = math.log(3.1 / 0.2) / math.log(32 / 8)
MULT_A = math.log(3495 / 282) / math.log(32 / 8)
FA_PJ, XOR_PJ, MUX_PJ, DFF_PJ = 0.03 / 8, 0.001406, 0.001641, 0.003984
DFF_UM2, XOR_UM2 = 4.522, 1.596


def add_pj(bits: int) -> float:
    return 0.03 * (bits / 8) ** ADD_E


# --- technology table and primitives ---------------------------------------------------------

def test_published_points_are_exact():
    assert cm.add_energy_pj(TECH, 8) == 0.03 and cm.add_energy_pj(TECH, 32) == 0.1
    assert cm.mult_energy_pj(TECH, 8) == 0.2 and cm.mult_energy_pj(TECH, 32) == 3.1
    assert cm.add_area_um2(TECH, 32) == 137 and cm.mult_area_um2(TECH, 8) == 282
    assert dict(TECH.float_ops)["fp32_mult"].energy_pj == 3.7


def test_scaling_rule_between_and_beyond_points():
    assert cm.add_energy_pj(TECH, 16) == pytest.approx(0.03 * 2 ** ADD_E)
    assert cm.mult_energy_pj(TECH, 16) == pytest.approx(0.2 * 2 ** MULT_E)  # ~0.79 pJ, ~quadratic
    assert cm.mult_area_um2(TECH, 4) == pytest.approx(282 * 0.5 ** MULT_A)  # extrapolated below 8
    assert cm.add_area_um2(TECH, 64) == pytest.approx(137 * 2 ** ADD_A)  # extrapolated above 32
    assert 0.8 < ADD_E < 1.0 and 1.9 < MULT_E < 2.1  # the fit agrees with linear / quadratic


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 63))
def test_primitives_grow_with_bits(bits):
    for f in (cm.add_energy_pj, cm.mult_energy_pj, cm.add_area_um2, cm.mult_area_um2):
        assert 0 < f(TECH, bits) < f(TECH, bits + 1)


def test_primitives_wrong():
    with pytest.raises(ValueError, match=r"^`bits` must be a positive integer, not 0$"):
        cm.add_energy_pj(TECH, 0)


def test_sources_name_every_group():
    for key in ("add.int8", "mult.int32", "gates.dff", "sram.kib1024", "sram_area.bitcell", "leakage.logic"):
        assert key in TECH.sources
    assert "Horowitz" in SHIPPED.read_text() and "[assumption]" in TECH.sources


def test_user_table_by_path(tmp_path):
    data = yaml.safe_load(SHIPPED.read_text())
    data["name"] = "mine"
    data["leakage"]["sram"]["nw_per_um2"] = 0.5
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(data))
    tech = cm.load_technology(str(path))
    assert (tech.name, tech.path) == ("mine", str(path))
    assert (tech.leakage_logic_nw_per_um2, tech.leakage_sram_nw_per_um2) == (17.65, 0.5)
    # 100 um^2 of logic, 1000 um^2 of SRAM of which a quarter is awake, the rest at 15 % leakage
    assert cm.memory.leakage_power_nw(tech, 100.0, 1000.0, 0.25) == pytest.approx(
        100 * 17.65 + 1000 * 0.5 * (0.25 + 0.75 * 0.15))


def _bad_table(tmp_path: Path, edit) -> str:
    data = yaml.safe_load(SHIPPED.read_text())
    edit(data)
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["add"]["int8"].pop("energy_pj"), "missing key `add.int8.energy_pj`"),
    (lambda d: d.pop("gates"), "missing key `gates`"),
    (lambda d: d["add"]["int8"].update(energy_pj="abc"), "`add.int8.energy_pj` must be a positive number, not 'abc'"),
    (lambda d: d["mult"]["int32"].update(area_um2=-3495), "`mult.int32.area_um2` must be a positive number, not -3495"),
    (lambda d: d["sram"].update(width_bits=6.4), "`sram.width_bits` must be a positive integer, not 6.4"),
    (lambda d: d["add"]["int8"].update(energy=1), "unknown key `add.int8.energy`"),
    (lambda d: d.update(cache={}), "unknown key `cache`"),
    (lambda d: d.update(dram={"width_bits": 64, "energy_pj": 1950}),
     "`dram` is not part of a technology table: DRAM is its own chip, chosen with the accelerator's "
     "`memory.dram` (ddr3 is Horowitz's 1.95 nJ per 64 bits)"),
    (lambda d: d["leakage"]["logic"].pop("nw_per_um2"), "missing key `leakage.logic.nw_per_um2`"),
    (lambda d: d["add"].pop("int32"), "`add` needs at least 2 entries named `int<bits>`, found 1"),
    (lambda d: d["gates"]["xor2"].pop("source"),
     "`gates.xor2` has no `source`; every number needs one (on it or its group)"),
    (lambda d: d["sram_area"]["periphery"].update(array_efficiency=1.5),
     "`sram_area.periphery.array_efficiency` must be at most 1, not 1.5"),
    (lambda d: d["leakage"]["sram_sleep"].update(fraction=1.2),
     "`leakage.sram_sleep.fraction` must be at most 1, not 1.2"),
    (lambda d: d["leakage"].pop("sram_sleep"), "missing key `leakage.sram_sleep`"),
])
def test_load_technology_wrong(tmp_path, edit, message):
    path = _bad_table(tmp_path, edit)
    with pytest.raises(ValueError, match="^" + re.escape(f"tech table {path!r}: {message}") + "$"):
        cm.load_technology(path)


def test_load_technology_missing_file():
    with pytest.raises(ValueError, match=r"^tech table 'x\.yaml' not found; pass a shipped table name "
                                         r"\(horowitz45\) or a YAML path$"):
        cm.load_technology("x.yaml")


def test_load_technology_bad_yaml(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("name: broken\nadd: [1, 2\n")
    with pytest.raises(ValueError, match="^" + re.escape(f"tech table {str(path)!r} is not valid YAML (line 3)") + "$"):
        cm.load_technology(str(path))


# --- datapaths: hand calculations --------------------------------------------------------------

def test_mac_int8_by_hand():
    # K = 576 products in [-128 * 127, 128 * 128]: the sum reaches 576 * 2**14 = 9 * 2**20, which
    # lies in [2**23, 2**24): 24 magnitude bits + sign = 25 (and -576 * 16256 > -2**24).
    acc = 25
    dp = cm.datapath_cost("mac", TECH, bits=8, acc_bits=cm.acc_bits_for("mac", 8, 576))
    assert dp.acc_bits == acc
    assert dp.energy_pj_per_op == pytest.approx(0.2 + 0.03 * (25 / 8) ** ADD_E)
    reg_bits = 8 + 8 + 16 + 25  # x, w, product, accumulator
    assert dp.register_pj_per_op == pytest.approx(reg_bits * DFF_PJ)
    assert dp.area_um2 == pytest.approx(282 + 36 * (25 / 8) ** ADD_A + reg_bits * DFF_UM2)
    assert (dp.latency_cycles, dp.ops_per_cycle, dp.lanes) == (2, 1, 1)


def test_mac_int32_multiplier_is_horowitz():
    dp = cm.datapath_cost("mac", TECH, bits=32, acc_bits=32)
    assert dp.energy_pj_per_op == pytest.approx(3.1 + 0.1)


def test_adder_int8_by_hand():
    acc = 19  # K = 576 terms in [-255, 0]: -146880, and 2**17 <= 146880 < 2**18 -> 18 bits + sign
    dp = cm.datapath_cost("adder", TECH, bits=8, acc_bits=cm.acc_bits_for("adder", 8, 576))
    assert dp.acc_bits == acc
    # 9-bit subtract + 9 XORs (conditional negate) + 19-bit accumulate
    assert dp.energy_pj_per_op == pytest.approx(add_pj(9) + 9 * XOR_PJ + add_pj(19))
    assert dp.register_pj_per_op == pytest.approx((8 + 8 + 9 + 19) * DFF_PJ)


def test_xnor_by_hand():
    # the PE counts agreeing lanes over ceil(576 / 64) = 9 words of 64: [0, 576] unsigned,
    # 2**9 <= 576 < 2**10 -> 10 bits
    acc = 10
    dp = cm.datapath_cost("xnor", TECH, bits=1, acc_bits=cm.acc_bits_for("xnor", 1, 576, lanes=64), lanes=64)
    assert dp.acc_bits == acc
    tree = 32 * 1 + 16 * 2 + 8 * 3 + 4 * 4 + 2 * 5 + 1 * 6  # = 120 full adders
    assert dp.energy_pj_per_op == pytest.approx((64 * XOR_PJ + tree * FA_PJ + add_pj(10)) / 64)
    assert dp.register_pj_per_op == pytest.approx((64 + 64 + 7 + 10) * DFF_PJ / 64)
    assert (dp.ops_per_cycle, dp.lanes) == (64, 64)


def test_shift_int8_by_hand():
    # K = 576 terms in [-2**(8-1+7), 2**14]: +-9 * 2**20, in [2**23, 2**24) -> 24 bits + sign
    acc = 25
    dp = cm.datapath_cost("shift", TECH, bits=8, acc_bits=cm.acc_bits_for("shift", 8, 576))
    assert dp.acc_bits == acc
    # 3 mux stages x 15 bits, 15 XORs, 25-bit accumulate
    assert dp.energy_pj_per_op == pytest.approx(3 * 15 * MUX_PJ + 15 * XOR_PJ + add_pj(25))
    # x (8), the weight code (3 bits of p + sign + zero = 5), the 15-bit pipeline value, 25
    assert dp.register_pj_per_op == pytest.approx((8 + 5 + 15 + 25) * DFF_PJ)


def test_popcount_tree():
    assert [popcount_full_adders(n) for n in (1, 2, 3, 4, 64)] == [0, 1, 3, 4, 120]


@pytest.mark.parametrize("bits", [8, 16])
def test_adder_cheaper_than_mac(bits):
    mac = cm.datapath_cost("mac", TECH, bits=bits, acc_bits=cm.acc_bits_for("mac", bits, 576))
    add = cm.datapath_cost("adder", TECH, bits=bits, acc_bits=cm.acc_bits_for("adder", bits, 576))
    assert add.energy_pj_per_op < 0.5 * mac.energy_pj_per_op
    assert add.area_um2 < mac.area_um2


def test_xnor_lane_op_far_below_int8_mac():
    mac = cm.datapath_cost("mac", TECH, bits=8, acc_bits=26)
    xnor = cm.datapath_cost("xnor", TECH, bits=1, acc_bits=11, lanes=64)
    assert xnor.energy_pj_per_op < mac.energy_pj_per_op / 20


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["mac", "adder", "shift"]), st.integers(2, 31), st.integers(1, 4096))
def test_datapaths_grow_with_bits(pe, bits, k):
    small = cm.datapath_cost(pe, TECH, bits=bits, acc_bits=cm.acc_bits_for(pe, bits, k))
    large = cm.datapath_cost(pe, TECH, bits=bits + 1, acc_bits=cm.acc_bits_for(pe, bits + 1, k))
    assert small.energy_pj_per_op < large.energy_pj_per_op
    assert small.register_pj_per_op < large.register_pj_per_op
    assert small.area_um2 < large.area_um2


# --- accumulator widths against brute force ------------------------------------------------------

def _min_width(lo: int, hi: int) -> int:
    """Narrowest two's-complement width holding [lo, hi], or unsigned when lo >= 0."""
    width = 1
    if lo >= 0:
        while hi > 2 ** width - 1:
            width += 1
        return width
    while not (-(2 ** (width - 1)) <= lo and hi <= 2 ** (width - 1) - 1):
        width += 1
    return width


def _terms(pe: str, bits: int, shift: int) -> list[int]:
    """Every value one step of the reduction can add, from every pair of operands."""
    xs = range(-(2 ** (bits - 1)), 2 ** (bits - 1))
    if pe == "mac":
        return [x * w for x in xs for w in xs]
    if pe == "adder":
        return [-abs(x - w) for x in xs for w in xs]
    if pe == "xnor":
        return [0, 1]  # one lane per beat: the PE counts agreeing lanes
    return [s * x * 2 ** (shift - p) for s in (-1, 0, 1) for x in xs for p in range(shift + 1)]


@pytest.mark.parametrize("pe, bits, shift", [("mac", 2, 0), ("mac", 3, 0), ("mac", 4, 0),
                                             ("adder", 2, 0), ("adder", 4, 0), ("xnor", 1, 0),
                                             ("shift", 2, 0), ("shift", 3, 2), ("shift", 4, 3)])
def test_acc_bits_never_overflow(pe, bits, shift):
    terms = _terms(pe, bits, shift)
    for k in range(1, 18):
        width = cm.acc_bits_for(pe, bits, k, max_shift=shift)
        needed = _min_width(min(k * min(terms), 0), k * max(terms))
        assert width == needed, (k, width, needed)  # exact, not merely safe


def test_acc_bits_for_wrong():
    with pytest.raises(ValueError, match=r"^`k` must be a positive integer, not 0$"):
        cm.acc_bits_for("mac", 8, 0)
    with pytest.raises(ValueError, match=r"^`max_shift` must be an integer of at least 0, not -1$"):
        cm.acc_bits_for("shift", 8, 9, max_shift=-1)


# --- bad PE names and widths ---------------------------------------------------------------------

def test_unknown_pe_wrong():
    msg = r"^unknown PE kind 'foo'; choose one of mac, adder, xnor, shift$"
    with pytest.raises(ValueError, match=msg):
        cm.datapath_cost("foo", TECH, bits=8, acc_bits=24)
    with pytest.raises(ValueError, match=msg):
        cm.acc_bits_for("foo", 8, 9)


def test_bits_wrong():
    with pytest.raises(ValueError, match=r"^the mac datapath supports 2 to 32-bit operands, not 33$"):
        cm.datapath_cost("mac", TECH, bits=33, acc_bits=80)
    with pytest.raises(ValueError, match=r"^the shift datapath supports 2 to 32-bit operands, not 1$"):
        cm.acc_bits_for("shift", 1, 9)
    with pytest.raises(ValueError, match=r"^the xnor datapath works on 1-bit operands, not 8; use --bits 1$"):
        cm.datapath_cost("xnor", TECH, bits=8, acc_bits=11)
    with pytest.raises(ValueError, match=r"^`acc_bits` must be a positive integer, not 0$"):
        cm.datapath_cost("adder", TECH, bits=8, acc_bits=0)
    with pytest.raises(ValueError, match=r"^`lanes` must be a positive integer, not 0$"):
        cm.datapath_cost("xnor", TECH, bits=1, acc_bits=11, lanes=0)


def test_registry_matches_pe_kinds():
    assert tuple(cm.DATAPATHS) == cm.PE_KINDS == ("mac", "adder", "xnor", "shift")


# --- memory ------------------------------------------------------------------------------------

@pytest.mark.parametrize("kib, pj", [(8, 10), (32, 20), (1024, 100)])
def test_sram_reproduces_horowitz(kib, pj):
    assert memory.sram_access_energy_pj(TECH, kib, 64) == pj


def test_sram_fit_width_and_extrapolation():
    assert memory.sram_access_energy_pj(TECH, 16, 64) == pytest.approx(10 * math.sqrt(2))
    assert memory.sram_access_energy_pj(TECH, 8, 128) == pytest.approx(20)
    assert memory.sram_access_energy_pj(TECH, 2, 64) == pytest.approx(5)  # E ~ C^0.5 below 8 KiB
    assert memory.sram_area_um2(TECH, 1) == pytest.approx(8192 * 0.346 / 0.5)


def test_register_and_vector_ops():
    assert memory.register_energy_pj_per_bit(TECH) == DFF_PJ
    assert memory.vector_op_energy_pj(TECH, "max", 8) == 0.03
    assert memory.vector_op_energy_pj(TECH, "mul", 32) == 3.1
    assert memory.vector_op_energy_pj(TECH, "mac", 16) == pytest.approx(0.2 * 2 ** MULT_E + 0.1)


def test_memory_wrong():
    with pytest.raises(ValueError, match=r"^unknown vector op 'div'; choose one of add, max, compare, mul, mac$"):
        memory.vector_op_energy_pj(TECH, "div", 8)
    with pytest.raises(ValueError, match=r"^`capacity_kib` must be a positive number, not 0$"):
        memory.sram_access_energy_pj(TECH, 0, 64)
