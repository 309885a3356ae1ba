"""Energy, cycles and area of whole layers, hand-calculated from the Horowitz 45 nm table.

Table values used (cost_models/data/horowitz45.yaml): int8 mult 0.2 pJ / 282 um^2, int32 add
0.1 pJ / 137 um^2, int8 add 0.03 pJ, flip-flop 0.003984 pJ per bit per cycle / 4.522 um^2,
SRAM 10 pJ per 64-bit access at 8 KiB, SRAM bit cell 0.346 um^2 at array efficiency 0.5; DRAM
1950 pJ per 64 bits (cost_models/data/dram/ddr3.yaml).
"""

import dataclasses
import re

import pytest

import cost_models as cm

from hwsim.accelerator import Accelerator, ArrayConfig, MemoryConfig, PowerConfig, RtlConfig, ScheduleConfig, with_pe
from hwsim.errors import ConfigError, HwsimError
from hwsim.simulate import estimate
from hwsim.workload import Layer, Workload

FC = Layer(name="fc", op="linear", in_ch=4, in_h=1, in_w=1, out_ch=2, out_h=1, out_w=1, pe="mac")
RELU = Layer(name="relu", op="act", in_ch=2, in_h=1, in_w=1, out_ch=2, out_h=1, out_w=1, detail="relu")
# The hand-worked cases below price DRAM at Horowitz's DDR3 figure and leave out leakage and
# idle-register clocking (perfect gating), the model they were written for; tests/test_memory_tech.py
# works those terms by hand.
SMALL = Accelerator(pe="mac", bits=8, acc_bits=32, clock_mhz=100,
                    array=ArrayConfig(rows=2, cols=2, dataflow="os", fold_overlap=False, depthwise="gemm"),
                    memory=MemoryConfig(ifmap_sram_kib=8, weight_sram_kib=8, ofmap_sram_kib=8, dram="ddr3"),
                    power=PowerConfig(leakage=False, clock_gating=1.0))
DFF = 0.003984
DRAM_PER_BIT = 1950 / 64
SRAM_PER_BIT = 10 / 64


def test_linear_layer_energy_by_hand():
    report = estimate(Workload("fc", (1, 4), (FC,)), SMALL)
    (row,) = report.layers
    assert row.ops == 8 and row.datapath == "mac" and row.on_main_array
    # logic: 8 MACs x (int8 mult 0.2 + 32-bit accumulate 0.1) = 2.4 pJ
    assert row.energy_compute_pj == pytest.approx(8 * (0.2 + 0.1))
    # registers: 8 ops x (2*8 operand + 2*8 product + 32 accumulator bits) x 0.003984 pJ
    registers = 8 * 64 * DFF
    # SRAM bits: ifmap 32 filled + 32 read, weights 64 + 64; the whole K in one fold leaves no
    # partial sum in the ofmap buffer, the 2 int8 outputs are staged there for DRAM: 16 + 16
    # -> 224 bits at 10 pJ / 64 bits
    assert row.energy_onchip_pj == pytest.approx(registers + 224 * SRAM_PER_BIT)
    # DRAM: 4 inputs x 8 + 8 weights x 8 read, 2 outputs x 8 written = 112 bits
    assert row.energy_dram_pj == pytest.approx(112 * DRAM_PER_BIT)
    # OS, one fold: skew R+C-2 = 2, K = 4, PE pipeline 2, drain R = 2 -> 10 cycles; 112 DRAM bits
    # at 12.8 GB/s / 100 MHz = 1024 bits per cycle: the first load and last store stall 1 cycle
    assert (row.compute_cycles, row.stall_cycles, row.cycles) == (10, 1, 11)
    # utilization: 8 MACs over 4 PEs x 10 cycles
    assert row.utilization == pytest.approx(8 / 40)
    assert report.latency_ms == pytest.approx(11 / 100e3)


def test_vector_layer_energy_by_hand():
    report = estimate(Workload("fc", (1, 4), (FC, RELU)), SMALL)
    relu = report.layers[1]
    assert relu.datapath == "vector" and relu.ops == 2
    assert relu.energy_compute_pj == pytest.approx(2 * 0.03)  # one int8 compare per element
    assert relu.energy_dram_pj == 0  # fused into the producer's output stage
    # 2 elements on cols = 2 lanes: 1 cycle, hidden under the linear layer's 10; no SRAM pass
    assert (relu.cycles, relu.energy_onchip_pj) == (0, 0)
    assert (relu.input_from, relu.output_to) == ("fused", "dram")  # the network output
    fc = report.layers[0]
    assert (fc.input_from, fc.output_to) == ("dram", "fused")
    assert fc.energy_dram_pj == pytest.approx(112 * DRAM_PER_BIT)  # relu's output written by fc's stage


def test_vector_layer_serial_mode_by_hand():
    naive = dataclasses.replace(SMALL, schedule=ScheduleConfig(residency="layerwise", fusion="none"))
    relu = estimate(Workload("fc", (1, 4), (FC, RELU)), naive).layers[1]
    # one SRAM read and write of its 2 x 8-bit tensor after the producer, its full cycle
    assert relu.cycles == 1
    assert relu.energy_onchip_pj == pytest.approx(2 * 16 * SRAM_PER_BIT)


def test_area_by_hand():
    report = estimate(Workload("fc", (1, 4), (FC,)), SMALL)
    pe = 282 + 137 + 64 * 4.522  # int8 mult + 32-bit add + 64 register bits
    assert report.area_um2["mac array"] == pytest.approx(4 * pe)
    assert report.area_um2["sram"] == pytest.approx(3 * 8 * 8192 * 0.346 / 0.5)
    # vector unit: 2 lanes of (int8 add 36 + int8 mult 282)
    assert report.area_um2["vector unit"] == pytest.approx(2 * (36 + 282))


def test_aux_datapath_is_costed_on_its_own_kind():
    conv = Layer(name="c", op="conv", in_ch=4, in_h=4, in_w=4, out_ch=4, out_h=4, out_w=4,
                 kernel=(3, 3), padding=(1, 1), pe="adder")
    wl = Workload("mixed", (1, 4, 4, 4), (dataclasses.replace(conv, name="first", pe="mac"), conv))
    report = estimate(wl, dataclasses.replace(SMALL, pe="adder"))
    first, second = report.layers
    assert (first.datapath, first.on_main_array) == ("mac (aux)", False)
    assert (second.datapath, second.on_main_array) == ("adder", True)
    assert set(report.area_um2) == {"adder array", "mac aux array", "vector unit", "sram"}
    # the same GEMM costs less logic energy on the adder datapath than on the MAC one
    assert second.energy_compute_pj < first.energy_compute_pj


def test_xnor_pays_for_whole_lane_words():
    layer = Layer(name="b", op="conv", in_ch=10, in_h=4, in_w=4, out_ch=4, out_h=4, out_w=4,
                  kernel=(3, 3), padding=(1, 1), pe="xnor", act_bits=1, weight_bits=1)
    acc = Accelerator(pe="xnor", bits=1, array=ArrayConfig(rows=2, cols=2, lanes=64))
    row = estimate(Workload("b", (1, 10, 4, 4), (layer,)), acc).layers[0]
    # K = 10*3*3 = 90 binary lanes -> 2 words of 64: 16 pixels x 4 channels x 128 lane-ops
    # performed, of which 16 x 4 x 90 are useful (the reported ops)
    # the accumulator counts agreeing lanes over the 128 positions of 2 words: 0..128 -> 8 bits
    dp = cm.datapath_cost("xnor", cm.load_technology(), bits=1, acc_bits=8, lanes=64)
    assert row.ops == 16 * 4 * 90
    assert row.energy_compute_pj == pytest.approx(16 * 4 * 128 * dp.energy_pj_per_op)


def test_with_pe():
    assert with_pe(SMALL, "xnor").bits == 1
    assert with_pe(with_pe(SMALL, "xnor"), "adder").bits == 8
    assert with_pe(dataclasses.replace(SMALL, bits=4), "shift").bits == 4


def test_rtl_timing_takes_the_generated_tops_cycles():
    """--timing rtl: conv k3 p1, 2 -> 3 channels on 4x4, adder 2x2 array (CW=2, KS=18, NT=2,
    M=16, 16 folds of 2*2+2+18-2+2 = 24 cycles): descriptor 1, weights 2*(1+18) = 38, acts
    16*2 = 32 words in 4 beats of 8, HAND 1, compute 2+4+16*24 = 390 (walk, the operand fetch's
    four stages, folds), drain 5, store 2+16*2 = 34 -> 473 cycles. The ReLU has no
    RTL: it keeps the model's cycles and the report says so."""
    conv = Layer(name="conv", op="conv", in_ch=2, in_h=4, in_w=4, out_ch=3, out_h=4, out_w=4,
                 kernel=(3, 3), padding=(1, 1), pe="adder")
    acc = dataclasses.replace(SMALL, pe="adder")
    model = estimate(Workload("c", (1, 2, 4, 4), (conv, RELU)), acc)
    rtl = estimate(Workload("c", (1, 2, 4, 4), (conv, RELU)), acc, timing="rtl")
    assert rtl.layers[0].cycles == 473 and rtl.layers[0].compute_cycles == 390
    assert rtl.layers[1].cycles == model.layers[1].cycles
    assert rtl.layers[0].energy_pj == model.layers[0].energy_pj
    assert rtl.timing == "rtl" and any("keep the analytical model's cycles" in w for w in rtl.warnings)
    # the note sets the top against the model: its 473 - 390 = 83 cycles outside compute where
    # the model moves DRAM data (12.8 GB/s at 100 MHz = 128 B/cycle) under compute; SMALL's array
    # has neither fold overlap nor the depthwise mode, so no other cause is named
    m = model.layers[0]
    assert [(r.cycles_from, r.note) for r in rtl.layers] == [
        ("rtl", f"rtl 473 vs model {m.cycles:,} cycles: transfers 83 outside compute, one buffer word a "
                f"cycle, a tile's loads beside the run before it and its store beside the run after "
                f"(model: DRAM at 128 B/cycle under compute, {m.stall_cycles} stall), compute 390 vs "
                f"{m.compute_cycles}"),
        ("model", "no RTL: runs on the vector unit, not the adder array")]
    assert any(w.startswith("--timing rtl: the 1 layer the generated top runs take 473 cycles on it against "
                            f"{m.cycles} in the model") for w in rtl.warnings)


def test_rtl_timing_keeps_the_model_for_layers_that_do_not_fit():
    """A top sized for 8-step folds cannot run the 18-step conv, not even as K tiles (one channel
    of its 3x3 kernel is 9 steps): the conv keeps the model's cycles and one warning names it,
    the reason and the fix."""
    conv = Layer(name="conv", op="conv", in_ch=2, in_h=4, in_w=4, out_ch=3, out_h=4, out_w=4,
                 kernel=(3, 3), padding=(1, 1), pe="adder")
    acc = dataclasses.replace(SMALL, pe="adder", rtl=RtlConfig(max_steps=8))
    model = estimate(Workload("c", (1, 2, 4, 4), (conv, RELU)), acc)
    rtl = estimate(Workload("c", (1, 2, 4, 4), (conv, RELU)), acc, timing="rtl")
    assert [r.cycles for r in rtl.layers] == [r.cycles for r in model.layers]
    assert rtl.layers[0].cycles_from == "model"
    assert rtl.layers[0].note == ("does not fit the generated top: a fold of 18 steps exceeds "
                                  "rtl.max_steps=8, and a K tile of one channel word is 9 steps; "
                                  "raise rtl.max_steps and memory.weight_sram_kib")
    (unfit,) = [w for w in rtl.warnings if "do not fit" in w]
    assert unfit == ("--timing rtl: 1 adder layers do not fit the generated top and keep the "
                     "analytical model's cycles (e.g. 'conv': a fold of 18 steps exceeds "
                     "rtl.max_steps=8, and a K tile of one channel word is 9 steps; raise "
                     "rtl.max_steps and memory.weight_sram_kib)")


@pytest.mark.parametrize("timing, acc, message", [
    ("fast", SMALL, "unknown timing 'fast'; choose one of model, scalesim, rtl"),
    ("rtl", dataclasses.replace(SMALL, array=ArrayConfig(rows=2, cols=2, dataflow="ws")),
     "--timing rtl: `array.dataflow` 'ws': the generated RTL is output-stationary; use os (--dataflow os)"),
    ("rtl", dataclasses.replace(SMALL, pe="adder", bits=20),
     "--timing rtl: `bits` of 20: the integer quantizers and the generated hardware support 2 "
     "to 16-bit operands, not 20"),
])
def test_timing_wrong(timing, acc, message):
    with pytest.raises(HwsimError, match=f"^{re.escape(message)}$"):
        estimate(Workload("fc", (1, 4), (FC,)), acc, timing=timing)


def test_narrow_acc_bits_is_priced_and_named():
    """acc_bits 8 cannot hold 4 int8 products: (-128)**2 * 4 = 2**16 is one past the 17-bit signed
    maximum, so the sums need 18 bits; costed at 8, and said."""
    narrow = dataclasses.replace(SMALL, acc_bits=8)
    report = estimate(Workload("fc", (1, 4), (FC,)), narrow)
    assert report.warnings == ("`acc_bits` of 8 cannot hold the sums of 1 layers (e.g. 'fc' needs 18); "
                               "they are costed at 8 bits, which would overflow: raise acc_bits or "
                               "set it to 0 (exact per layer)",)
    assert estimate(Workload("fc", (1, 4), (FC,)), SMALL).warnings == ()


def test_aux_layers_run_on_the_small_aux_array():
    """On an adder 2x2 accelerator the mac FC runs on the default auxiliary array, ceil(2/4) x 2
    = 1 x 2: M = 1, N = 2 is one fold of 2*1 + 2 + 4 - 2 + 2 = 8 cycles (skew, K = 4, pipeline,
    drain) (10 on the 2x2 main array); its area is 2 mac PEs. A 2 x 1 aux array would need 2
    column folds of 2*2 + 1 + 4 - 2 + 2 = 9 cycles = 18."""
    adder = dataclasses.replace(SMALL, pe="adder")
    report = estimate(Workload("fc", (1, 4), (FC,)), adder)
    (row,) = report.layers
    assert row.datapath == "mac (aux)" and row.compute_cycles == 8
    mac_pe = cm.datapath_cost("mac", cm.load_technology(), bits=8, acc_bits=32).area_um2
    assert report.area_um2["mac aux array"] == pytest.approx(2 * mac_pe)
    big = dataclasses.replace(adder, array=dataclasses.replace(adder.array, aux_rows=2, aux_cols=2))
    assert estimate(Workload("fc", (1, 4), (FC,)), big).layers[0].compute_cycles == 10
    tall = dataclasses.replace(adder, array=dataclasses.replace(adder.array, aux_rows=2, aux_cols=1))
    assert estimate(Workload("fc", (1, 4), (FC,)), tall).layers[0].compute_cycles == 18
    with pytest.raises(ConfigError, match=r"^`array.aux_cols` must be a positive integer, not -1$"):
        dataclasses.replace(adder, array=dataclasses.replace(adder.array, aux_cols=-1))


def test_depthwise_mode_adds_its_input_delivery_area():
    """A 2x2 mac array running a 3x3 depthwise conv channel-parallel carries, per PE, an 8-bit
    input register and 8 2:1 muxes, and per column a 2 + 3 - 1 = 4-tap 8-bit shift register:
    8 * (4 * (4.522 + 1.862) + 2 * 4 * 4.522) um^2 (NanGate DFF_X1 and MUX2_X1, the table's gates)."""
    dw = Layer(name="dw", op="conv", in_ch=4, in_h=6, in_w=6, out_ch=4, out_h=6, out_w=6, kernel=(3, 3),
               padding=(1, 1), groups=4, pe="mac")
    parallel = dataclasses.replace(SMALL, array=dataclasses.replace(SMALL.array, depthwise="channel_parallel"))
    area = estimate(Workload("dw", (1, 4, 6, 6), (dw,)), parallel).area_um2
    assert area["depthwise delivery"] == pytest.approx(8 * (4 * (4.522 + 1.862) + 2 * 4 * 4.522))
    assert "depthwise delivery" not in estimate(Workload("dw", (1, 4, 6, 6), (dw,)), SMALL).area_um2
    assert "depthwise delivery" not in estimate(Workload("fc", (1, 4), (FC,)), parallel).area_um2


def test_auxiliary_arrays_in_their_own_clock_domain():
    """aux_clock_mhz: the mac FC on the adder design's auxiliary array runs at 50 MHz while the
    main clock is 100: its 8 compute cycles (see the test above) plus its DRAM stall at
    12.8 GB/s / 50 MHz = 2048 bits per cycle (112 bits: the first load and last store, 1 cycle)
    take 9 / 50 MHz; the ReLU fused into its output stage is on the main clock, its 1 vector
    cycle hidden under the FC."""
    adder = dataclasses.replace(SMALL, pe="adder", aux_clock_mhz=50)
    report = estimate(Workload("fc", (1, 4), (FC, RELU)), adder)
    fc, relu = report.layers
    assert (fc.clock_mhz, fc.cycles, relu.clock_mhz, relu.cycles) == (50, 9, 100, 0)
    assert report.latency_ms == pytest.approx(9 / 50e3)
    assert estimate(Workload("fc", (1, 4), (FC, RELU)), SMALL).latency_ms == pytest.approx(11 / 100e3)
    with pytest.raises(ConfigError, match=r"^`aux_clock_mhz` must be a non-negative number, not -1$"):
        dataclasses.replace(adder, aux_clock_mhz=-1)


def test_global_buffer_is_one_sram_and_refused_by_the_rtl():
    """A 96 KiB global buffer is one SRAM of 96 KiB (0.346 um^2 cells at 50 % efficiency); the
    generated top keeps one buffer per operand and says so."""
    from hwsim.rtl_plan import top_geometry

    shared = dataclasses.replace(SMALL, memory=dataclasses.replace(SMALL.memory, global_buffer_kib=96))
    area = estimate(Workload("fc", (1, 4), (FC,)), shared).area_um2
    assert area["sram"] == pytest.approx(96 * 8192 * 0.346 / 0.5)
    with pytest.raises(ConfigError, match=r"^`memory.global_buffer_kib`: the generated top has one buffer per "):
        top_geometry(shared)
