"""DRAM generations, leakage and clock gating of idle PEs, worked by hand on a tiny design.

The design is tests/test_simulate.py's: a 4 -> 2 linear layer (8 MACs) on a 2x2 int8 MAC array
with 32-bit accumulators at 100 MHz and three 8 KiB buffers. Its mapping moves 112 DRAM bits
(4 inputs x 8 + 8 weights x 8 read, 2 outputs x 8 written) and takes 11 cycles (10 compute, 1
stall); every PE clocks 64 register bits (2 x 8 operand + 2 x 8 product + 32 accumulator) at the
flip-flop's 0.003984 pJ per bit per cycle.
"""

import dataclasses
import re

import pytest
import yaml

from cost_models import memory
from cost_models.tech import DATA_DIR
from hwsim.accelerator import Accelerator, ArrayConfig, MemoryConfig, PowerConfig, ScheduleConfig, from_dict
from hwsim.errors import ConfigError, HwsimError
from hwsim.simulate import estimate
from hwsim.workload import Layer, Workload

FC = Layer(name="fc", op="linear", in_ch=4, in_h=1, in_w=1, out_ch=2, out_h=1, out_w=1, pe="mac")
RELU = Layer(name="relu", op="act", in_ch=2, in_h=1, in_w=1, out_ch=2, out_h=1, out_w=1, detail="relu")
TINY = Accelerator(pe="mac", bits=8, acc_bits=32, clock_mhz=100,
                   array=ArrayConfig(rows=2, cols=2, dataflow="os"),
                   memory=MemoryConfig(ifmap_sram_kib=8, weight_sram_kib=8, ofmap_sram_kib=8),
                   power=PowerConfig(leakage=False, clock_gating=1.0))
WORKLOAD = Workload("fc", (1, 4), (FC,))
DFF = 0.003984
REGISTER_BITS = 64


def with_power(**changes) -> Accelerator:
    return dataclasses.replace(TINY, power=dataclasses.replace(TINY.power, **changes))


@pytest.mark.parametrize("dram, pj", [
    ("ddr3", 112 * 1950 / 64),   # Horowitz 1.95 nJ per 64 bits: 112 x 30.47 = 3412.5 pJ
    ("ddr4", 112 * 19.5),        # 2184 pJ
    ("lpddr4", 112 * 8.0),       # 896 pJ
    ("lpddr5", 112 * 5.6),       # 627.2 pJ
    ("hbm2", 112 * 3.9),         # 436.8 pJ
])
def test_dram_energy_of_a_tiny_layer_per_generation(dram, pj):
    acc = dataclasses.replace(TINY, memory=dataclasses.replace(TINY.memory, dram=dram))
    (row,) = estimate(WORKLOAD, acc).layers
    assert row.energy_dram_pj == pytest.approx(pj)


def test_default_dram_is_lpddr4_and_every_shipped_table_has_a_source():
    assert Accelerator().memory.dram == "lpddr4"
    assert memory.shipped_drams() == ("ddr3", "ddr4", "hbm2", "lpddr4", "lpddr5")
    for name in memory.shipped_drams():
        table = memory.load_dram(name)
        assert table.name == name and table.energy_pj_per_bit > 0 and table.source.startswith("energy: ")


def test_user_dram_table_by_path(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("energy:\n  pj_per_bit: 2.5\n  source: my measurement\n")
    acc = dataclasses.replace(TINY, memory=dataclasses.replace(TINY.memory, dram=str(path)))
    assert estimate(WORKLOAD, acc).layers[0].energy_dram_pj == pytest.approx(112 * 2.5)


@pytest.mark.parametrize("text, message", [
    ("energy:\n  pj_per_bit: 2.5\n", "`energy` has no `source`; every number needs one (on it or its group)"),
    ("energy:\n  pj_per_bit: 0\n  source: x\n", "`energy.pj_per_bit` must be a positive number, not 0"),
    ("name: x\n", "missing key `energy`"),
    ("energy: {pj_per_bit: 1, source: x}\nwidth_bits: 64\n", "unknown key `width_bits`"),
])
def test_dram_table_wrong(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match="^" + re.escape(f"dram table {str(path)!r}: {message}") + "$"):
        memory.load_dram(str(path))


def test_unknown_dram_is_one_line():
    acc = dataclasses.replace(TINY, memory=dataclasses.replace(TINY.memory, dram="ddr9"))
    with pytest.raises(HwsimError, match=r"^memory\.dram: dram table 'ddr9' not found; pass a shipped "
                                         r"table name \(ddr3, ddr4, hbm2, lpddr4, lpddr5\) or a YAML path$"):
        estimate(WORKLOAD, acc)


def test_leakage_of_a_tiny_design_over_its_latency():
    report = estimate(WORKLOAD, with_power(leakage=True))
    # area: MAC array 4 x (282 + 137 + 64 x 4.522) = 2833.632 um^2, the fold overlap's shadow
    # registers 4 PEs x 32 accumulator bits x 4.522 = 578.816 um^2, vector unit 2 x (36 + 282)
    # = 636 um^2, SRAM 3 x 8 KiB x 8192 x 0.346 / 0.5 = 136052.736 um^2; all at 17.65 nW/um^2:
    # 140101.184 x 17.65 = 2472785.9 nW = 2.4728 mW
    assert report.leakage_mw == pytest.approx(140101.184 * 17.65e-6)
    # over 11 cycles at 100 MHz (0.11 us): 2.4728 mW x 0.11 us = 272.01 pJ
    (row,) = report.layers
    assert row.energy_leakage_pj == pytest.approx(140101.184 * 17.65 * 11 / 100 * 1e-3)
    assert report.energy_split_uj()["leakage"] == pytest.approx(row.energy_leakage_pj * 1e-6)
    assert row.energy_pj == pytest.approx(row.energy_compute_pj + row.energy_onchip_pj
                                          + row.energy_dram_pj + row.energy_leakage_pj)
    off = estimate(WORKLOAD, TINY)
    assert off.layers[0].energy_leakage_pj == 0 and off.leakage_mw == 0


def test_sram_banks_without_data_leak_at_the_sleep_fraction():
    # Three 128 KiB SRAMs of two 64 KiB banks each; the layer's tiles (32 ifmap, 64 weight, 64
    # partial-sum bits, twice each) wake one bank of each SRAM, so half the SRAM area leaks in
    # full and half at the table's 0.15: SRAM 3 x 128 x 8192 x 0.346 / 0.5 = 2176843.776 um^2,
    # logic 2833.632 + 578.816 + 636 = 4048.448 um^2 as above, all at 17.65 nW/um^2.
    big = dataclasses.replace(with_power(leakage=True), memory=dataclasses.replace(
        TINY.memory, ifmap_sram_kib=128, weight_sram_kib=128, ofmap_sram_kib=128, sram_bank_kib=64))
    (row,) = estimate(WORKLOAD, big).layers
    assert row.cycles == 11
    nw = 17.65 * (4048.448 + 2176843.776 * (0.5 + 0.5 * 0.15))
    assert row.energy_leakage_pj == pytest.approx(nw * 11 / 100 * 1e-3)
    awake = dataclasses.replace(big, power=dataclasses.replace(big.power, sram_bank_gating=False))
    (row,) = estimate(WORKLOAD, awake).layers
    assert row.energy_leakage_pj == pytest.approx(17.65 * (4048.448 + 2176843.776) * 11 / 100 * 1e-3)


def test_a_table_without_leakage_says_so(tmp_path):
    data = yaml.safe_load((DATA_DIR / "horowitz45.yaml").read_text())
    del data["leakage"]
    path = tmp_path / "noleak.yaml"
    path.write_text(yaml.safe_dump(data))
    acc = dataclasses.replace(with_power(leakage=True), tech=str(path))
    with pytest.raises(HwsimError, match=r"^tech table 'horowitz45' has no `leakage` group; add one or "
                                         r"turn leakage off \(power\.leakage: false\)$"):
        estimate(WORKLOAD, acc)
    assert estimate(WORKLOAD, dataclasses.replace(TINY, tech=str(path))).layers[0].energy_leakage_pj == 0


def test_idle_registers_at_gating_one_and_zero():
    gated = estimate(WORKLOAD, with_power(clock_gating=1.0)).layers[0]
    ungated = estimate(WORKLOAD, with_power(clock_gating=0.0)).layers[0]
    # perfect gating charges the 8 useful ops only: 8 x 64 x 0.003984 = 2.040 pJ (plus SRAM);
    # no gating adds every idle PE-cycle: 4 PEs x 11 cycles - 8 busy = 36, x 64 x 0.003984 = 9.179 pJ
    assert ungated.energy_onchip_pj - gated.energy_onchip_pj == pytest.approx(36 * REGISTER_BITS * DFF)
    half = estimate(WORKLOAD, with_power(clock_gating=0.5)).layers[0]
    assert half.energy_onchip_pj - gated.energy_onchip_pj == pytest.approx(0.5 * 36 * REGISTER_BITS * DFF)
    assert ungated.energy_compute_pj == gated.energy_compute_pj  # logic is charged per useful op


def test_idle_array_during_vector_work():
    serial = ScheduleConfig(fusion="none")  # the ReLU after the linear layer, not hidden under it
    relu = estimate(Workload("fc", (1, 4), (FC, RELU)),
                    dataclasses.replace(with_power(clock_gating=0.0), schedule=serial)).layers[1]
    base = estimate(Workload("fc", (1, 4), (FC, RELU)), dataclasses.replace(TINY, schedule=serial)).layers[1]
    # the ReLU takes 1 cycle on the vector unit; all 4 PEs of the array idle: 4 x 64 x 0.003984 pJ
    assert relu.energy_onchip_pj - base.energy_onchip_pj == pytest.approx(4 * REGISTER_BITS * DFF)
    fused = estimate(Workload("fc", (1, 4), (FC, RELU)), with_power(clock_gating=0.0)).layers[1]
    assert fused.cycles == 0 and fused.energy_onchip_pj == 0  # in the output stage: no cycle of its own


@pytest.mark.parametrize("diff, message", [
    ({"memory": {"dram": ""}}, "`memory.dram` must be a DRAM table name or a YAML path, not ''"),
    ({"power": {"clock_gating": 1.5}}, "`power.clock_gating` must be a number from 0 to 1, not 1.5"),
    ({"power": {"clock_gating": True}}, "`power.clock_gating` must be a number from 0 to 1, not True"),
    ({"power": {"leakage": "yes"}}, "`power.leakage` must be true or false, not 'yes'"),
    ({"power": {"gating": 1}}, "unknown key `power.gating`; valid keys here: clock_gating, leakage, sram_bank_gating"),
])
def test_power_and_dram_fields_wrong(diff, message):
    with pytest.raises(ConfigError, match="^" + re.escape(message) + "$"):
        from_dict(diff)
