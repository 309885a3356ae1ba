"""How Fmax and critical paths are read and shown, without the tools: rtl.synth.critical_path on a
nextpnr report, rtl.synth.dsp_sources on a Yosys netlist, the ``hwsim rtl synth --pnr`` lines
(the top's and the network accelerator's Fmax against the array's) and rtl.dma.times."""

from __future__ import annotations

from pathlib import Path

import pytest
from amaranth.hdl import Const

from hwsim_cli.rtl import _dsp_line, fmax_lines, fmax_ratios
from rtl.dma import times
from rtl.synth import critical_path, dsp_sources

ROOT = Path(__file__).resolve().parents[1]


def _seg(kind: str, delay: float, cell: str, port_from: str, port_to: str, **extra) -> dict:
    return {"type": kind, "delay": delay, "from": {"cell": cell, "port": port_from},
            "to": {"cell": cell, "port": port_to}, **extra}


#: A path as nextpnr-ecp5 0.x writes it in ``--report``: a block RAM read, a LUT, a carry chain
#: of three cells (one logic level: its hops enter through FCI), a LUT, a flip-flop.
REPORT = {"critical_paths": [
    {"from": "<async>", "to": "posedge clk", "path": [_seg("source", 0, "i_x$tr_io", "O", "O"),
                                                      _seg("routing", 20.0, "i_x$tr_io", "O", "A")]},
    {"from": "posedge clk", "to": "posedge clk", "path": [
        _seg("clk-to-q", 5.83, "top.out_buf0.0.0", "DOB6", "DOB6"),
        _seg("routing", 1.76, "top.out_buf0.0.0", "DOB6", "C", net="n1",
             sources=["/share/ecp5/cells_map.v:108.23-108.24"]),
        _seg("logic", 0.24, "lut_a", "C", "F"),
        _seg("routing", 1.40, "lut_a", "F", "A", net="n2", sources=[f"{ROOT}/rtl/requant.py:165.3-165.9"]),
        _seg("logic", 0.45, "ccu.slice[0]", "A", "FCO"),
        _seg("routing", 0.0, "ccu.slice[0]", "FCO", "FCI"),
        _seg("logic", 0.07, "ccu.slice[2]", "FCI", "FCO"),
        _seg("routing", 0.0, "ccu.slice[2]", "FCO", "FCI"),
        _seg("logic", 0.44, "ccu.slice[4]", "FCI", "F"),
        _seg("routing", 0.93, "ccu.slice[4]", "F", "D", net="n3",
             sources=[f"{ROOT}/rtl/requant.py:165.3-165.9|{ROOT}/rtl/top.py:264.1-264.2", "adder_top.v:4980.1-4980.5"]),
        _seg("logic", 0.24, "lut_b", "D", "F"),
        _seg("routing", 0.13, "lut_b", "F", "DI", net="n4",  # a memory port's address: Amaranth's line
             sources=[f"{ROOT}/.venv/lib/python3.11/site-packages/amaranth/lib/memory.py:240.13-240.40"]),
        _seg("setup", 0.0, "$auto$ff.cc:266:slice$8751", "DI", "DI")]},
], "fmax": {}}

#: The Yosys netlist of the same design: the capturing flip-flop drives the public net
#: ``output.q0`` (bit 3), a hidden one too; two MULT18X18D from the output stage, one from
#: im2col, one without a project source.
NETLIST = {"modules": {"adder_top": {
    "cells": {"$auto$ff.cc:266:slice$8751": {"type": "TRELLIS_FF", "connections": {"Q": [42], "DI": [7]}},
              "top.out_buf0.0.0": {"type": "DP16KD", "connections": {}},
              "m0": {"type": "MULT18X18D", "attributes": {"src": f"{ROOT}/rtl/requant.py:150|/share/mul2dsp.v:148.7"}},
              "m1": {"type": "MULT18X18D", "attributes": {"src": f"{ROOT}/rtl/requant.py:150"}},
              "m2": {"type": "MULT18X18D", "attributes": {"src": f"{ROOT}/rtl/im2col.py:178"}},
              "m3": {"type": "MULT18X18D", "attributes": {}},
              "lut": {"type": "LUT4", "attributes": {"src": f"{ROOT}/rtl/requant.py:150"}}},
    "netnames": {"$abc$1$hidden": {"hide_name": 1, "bits": [42]},
                 "output.q0": {"hide_name": 0, "bits": [40, 41, 42, 43]}},
}}}


def test_critical_path_sums_the_register_to_register_path_and_names_its_ends() -> None:
    path = critical_path(REPORT, NETLIST, "adder_top")
    assert path == {
        "delay_ns": 11.49, "logic_ns": 7.27, "routing_ns": 4.22,
        # a LUT, the carry chain once (its FCI hops continue it), a LUT
        "levels": 3,
        "from": "top.out_buf0.0.0 (DP16KD)", "to": "output.q0[2] (TRELLIS_FF)",
        # project lines in path order, once each; the tools' library, installed packages (also in a
        # virtual environment inside the project) and the generated Verilog dropped
        "sources": ["rtl/requant.py:165", "rtl/top.py:264"]}
    # without the netlist: the placed cells' names
    assert critical_path(REPORT)["to"] == "$auto$ff.cc:266:slice$8751"


def test_critical_path_is_none_without_a_clocked_path() -> None:
    only_io = {"critical_paths": REPORT["critical_paths"][:1]}
    assert critical_path(only_io) is None and critical_path({}) is None


def test_dsp_sources_counts_dsp_cells_per_source_file() -> None:
    assert dsp_sources(NETLIST, "ecp5") == {"other": 1, "rtl/im2col.py": 1, "rtl/requant.py": 2}
    assert dsp_sources(NETLIST, "xc7") == {}  # no DSP48E1 here


RESULTS = {"pe": {"fmax_mhz": 173.6}, "array": {"fmax_mhz": 156.6, "critical_path": None},
           "top": {"fmax_mhz": 77.0, "critical_path": critical_path(REPORT, NETLIST, "adder_top"),
                   "dsp_sources": {"rtl/im2col.py": 16, "rtl/requant.py": 4}},
           "network": {"fmax_mhz": None, "dsp_sources": {}}}


def test_fmax_lines_give_the_top_against_the_array_and_the_critical_paths() -> None:
    lines = fmax_lines(RESULTS)
    assert lines[0] == "accelerator top: Fmax 77.0 MHz = 0.49 x the Fmax of the array (156.6 MHz)"
    # the network accelerator was not placed: no ratio for it
    assert lines[1] == ("critical path of the accelerator top: top.out_buf0.0.0 (DP16KD) -> output.q0[2] "
                        "(TRELLIS_FF), 3 logic levels, 11.49 ns (7.27 in cells, 4.22 routing) through "
                        "rtl/requant.py:165, rtl/top.py:264")
    assert len(lines) == 2
    assert fmax_ratios(RESULTS) == {"top": 0.492}
    assert _dsp_line(RESULTS) == "DSPs by source: top rtl/im2col.py 16, rtl/requant.py 4"
    assert _dsp_line({"pe": {"dsp_sources": {}}}) is None
    # placed out of context (--ooc): said after the ratio
    ooc = {role: {**r, "out_of_context": True} for role, r in RESULTS.items()}
    assert fmax_lines(ooc)[0] == ("accelerator top: Fmax 77.0 MHz = 0.49 x the Fmax of the array (156.6 MHz), "
                                  "placed out of context")


@pytest.mark.parametrize("k", [0, 1, 2, 3, 5, 7, 8, 15, 16, 24, 45, 255, 4095])
def test_times_is_the_product_for_every_operand(k: int) -> None:
    from amaranth.sim import Simulator
    from amaranth.hdl import Module, Signal

    m = Module()
    value = Signal(12)
    product = times(value, k)
    out = Signal(len(product))
    m.d.comb += out.eq(product)
    assert len(product) >= (4095 * k).bit_length()

    async def bench(ctx):
        for v in (0, 1, 2, 3, 1000, 2047, 2048, 4095):
            ctx.set(value, v)
            assert ctx.get(out) == v * k, (v, k)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


def test_times_refuses_a_negative_constant() -> None:
    with pytest.raises(ValueError, match=r"^`k` must be a non-negative constant, not -3$"):
        times(Const(5, 4), -3)


def test_behind_registers_shifts_the_inputs_in_and_xors_the_outputs_out() -> None:
    """rtl.emit.BehindRegisters: the inner component's inputs are the last bits shifted in on
    ``i_serial`` (first input's bit 0 the newest), and ``o_xor`` is, a fixed number of cycles
    later, the parity of all its outputs: every path inside runs register to register, and no
    logic can be optimized away."""
    from amaranth.hdl import Module
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out
    from amaranth.sim import Simulator
    from rtl.emit import BehindRegisters

    class Adder(wiring.Component):
        def __init__(self) -> None:
            super().__init__({"a": In(3), "b": In(3), "s": Out(4), "t": Out(6)})

        def elaborate(self, platform):
            m = Module()
            m.d.comb += [self.s.eq(self.a + self.b), self.t.eq(self.a * self.b)]
            return m

    inner = Adder()
    dut = BehindRegisters(inner)
    seen: list[tuple[int, int]] = []

    async def bench(ctx):
        bits = [1, 0, 1, 1, 0, 1, 1, 1, 0, 0, 1, 0, 1, 1]
        parities = []
        for i, bit in enumerate(bits):
            ctx.set(dut.i_serial, bit)
            await ctx.tick()
            chain = bits[:i + 1][::-1] + [0] * 6  # newest first
            a = chain[0] | chain[1] << 1 | chain[2] << 2
            b = chain[3] | chain[4] << 1 | chain[5] << 2
            assert (ctx.get(inner.a), ctx.get(inner.b)) == (a, b)
            parities.append(bin((a + b) | (a * b) << 4).count("1") & 1)  # s, then t
            seen.append((ctx.get(dut.o_xor), i))
        # 10 output bits: the output registers, one level of 4-input XORs (3), one more (1), o_xor
        latency = 4
        assert [x for x, i in seen[latency:]] == parities[:len(parities) - latency]

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def test_the_array_behind_registers_is_the_reference_when_the_array_was_not_placed() -> None:
    results = {"array": {"fmax_mhz": None, "pnr_skipped": "needs 565 I/O pins, more than the LFE5U-85F holds (365)"},
               "array_regs": {"fmax_mhz": 120.0}, "network": {"fmax_mhz": 90.0}}
    assert fmax_lines(results) == ["network accelerator: Fmax 90.0 MHz = 0.75 x the Fmax of the array behind "
                                   "registers (120.0 MHz)"]
    assert fmax_ratios(results) == {"network": 0.75}
    assert fmax_lines({"array": {"fmax_mhz": None}, "top": {"fmax_mhz": 80.0}}) == []
