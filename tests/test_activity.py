"""Toggle counting (sim.activity), gate-level simulation (rtl.gatelevel) and energy per toggle
(cost_models.activity), each pinned on a circuit small enough to count by hand.

The circuit: a 4-bit adder with a registered 5-bit sum, ``s <= a + b``, fed
``(a, b) = (0, 0), (1, 0), (3, 1), (15, 15), (0, 0)`` and clocked once more (6 rising edges).
Hand count: ``a`` 0->1->3->15->0 flips 1 + 1 + 2 + 4 = 8 bits; ``b`` 0->0->1->15->0 flips
0 + 1 + 3 + 4 = 8; ``s`` 0->1->4->30->0 (00000, 00001, 00100, 11110, 00000) flips 1 + 2 + 3 + 4 = 10.
At the six edges ``s`` reads 0, 0, 1, 4, 30, 0 (the register lags its inputs by one edge).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cost_models.activity import GATE_OUTPUTS, random_toggles, toggle_energy
from cost_models.tech import load_technology
from hwsim.errors import HwsimError
from sim.activity import Trace, block_activity, block_of, read_vcd

SEQUENCE = [(0, 0), (1, 0), (3, 1), (15, 15), (0, 0)]
EDGES = len(SEQUENCE) + 1
S_AT_EDGES = [0, 0, 1, 4, 30, 0]


def _adder():
    from amaranth.hdl import Module
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    class RegisteredAdder(wiring.Component):
        def __init__(self) -> None:
            super().__init__({"a": In(4), "b": In(4), "s": Out(5)})

        def elaborate(self, platform):
            m = Module()
            m.d.sync += self.s.eq(self.a + self.b)
            return m

    return RegisteredAdder()


@pytest.mark.amaranth
def test_toggles_of_a_registered_adder_counted_by_hand(tmp_path: Path) -> None:
    from amaranth.sim import Simulator

    dut = _adder()
    sim = Simulator(dut)
    sim.add_clock(1e-6)

    async def bench(ctx):
        for a, b in SEQUENCE:
            ctx.set(dut.a, a)
            ctx.set(dut.b, b)
            await ctx.tick()
        await ctx.tick()

    sim.add_testbench(bench)
    with sim.write_vcd(str(tmp_path / "adder.vcd")):
        sim.run()
    trace = read_vcd(tmp_path / "adder.vcd", sample=["a", "s"])
    assert trace.toggles == {"a": 8, "b": 8, "s": 10}
    assert trace.cycles == EDGES
    assert trace.samples["a"] == [0, 1, 3, 15, 0, 0]
    assert trace.samples["s"] == S_AT_EDGES


@pytest.mark.rtl
def test_gate_level_adder_reproduces_the_hand_count(tmp_path: Path) -> None:
    from rtl.emit import emit_verilog
    from rtl.gatelevel import GateSim, synthesize_gates

    netlist = synthesize_gates(emit_verilog(_adder(), "adder", tmp_path), "adder", tmp_path)
    assert netlist.counts()["dff"] == 5
    a = np.array([[a, a] for a, _ in SEQUENCE] + [[0, 0]])  # two lanes, the same stream
    b = np.array([[b, b] for _, b in SEQUENCE] + [[0, 0]])
    run = GateSim(netlist).run({"a": a, "b": b}, watch=["s"])
    assert run.cycles == EDGES and run.lanes == 2
    assert run.outputs["s"][:, 0].tolist() == S_AT_EDGES
    assert run.outputs["s"][:, 1].tolist() == S_AT_EDGES
    assert run.toggles["dff"] == 2 * 10  # the sum register's 10 flips in each lane


def test_random_toggles_from_truth_tables() -> None:
    # by hand: an output that is 1 with probability p toggles with probability 2 p (1 - p)
    assert random_toggles(GATE_OUTPUTS["full_adder"]) == 1.0  # sum and carry, p = 1/2 each
    assert random_toggles(GATE_OUTPUTS["xor2"]) == 0.5
    assert random_toggles(GATE_OUTPUTS["and2"]) == 0.375  # p = 1/4
    assert random_toggles(GATE_OUTPUTS["mux2"]) == 0.5


def test_energy_per_toggle_matches_the_table_on_random_data() -> None:
    tech = load_technology()
    energy = toggle_energy(tech)
    assert energy.per_toggle_pj["full_adder"] == pytest.approx(0.00375)  # 0.00375 pJ / 1.0 toggle
    assert energy.per_toggle_pj["xor2"] == pytest.approx(0.001406 / 0.5)
    # a flip-flop at random data (half the cycles toggle) costs the table's gates.dff per cycle
    assert energy.dff_clock_pj + 0.5 * energy.per_toggle_pj["dff"] == pytest.approx(0.003984)


def test_blocks_of_the_top() -> None:
    assert block_of("array.pe_1_2.o_acc") == "pe.accumulator"
    assert block_of("array.pe_0_0.p") == "pe.stage1"
    assert block_of("array.pe_0_0.o_x") == "pe.operands"
    assert block_of("array.pe_0_0.i_x") is None  # the array's net, counted there
    assert block_of("array.o_acc") == "interconnect"
    assert block_of("weight_rd__data") == "buffers"
    assert block_of("control.fsm_state") == "controller"
    assert block_of("output.o_y__payload") == "output"
    assert block_of("i_acts__payload") == "io"


#: Verilator's dump of a struct signal ``beat`` with an array field ``lane`` of two one-bit
#: elements: the whole (3 bits), the field (``beat.lane [1:0]``) and each element, whose name
#: ends in an index (``beat.lane[0]``), not a bit range.
STRUCT_VCD = """$scope module top $end
$var wire 1 ! clk $end
$var wire 3 " beat [2:0] $end
$var wire 2 # beat.lane [1:0] $end
$var wire 1 $ beat.lane[0] $end
$var wire 1 % beat.lane[1] $end
$var wire 1 & beat.last $end
$upscope $end
$enddefinitions $end
#0
0!
b000 "
b00 #
0$
0%
0&
#1
1!
b111 "
b11 #
1$
1%
1&
"""


def test_struct_fields_and_elements_counted_once(tmp_path: Path) -> None:
    """The struct counts whole (its 3 bits flipped once each); its fields and their one-bit
    elements are views of it, not signals of their own."""
    (tmp_path / "struct.vcd").write_text(STRUCT_VCD)
    trace = read_vcd(tmp_path / "struct.vcd")
    assert trace.toggles == {"beat": 3} and trace.widths == {"beat": 3} and trace.cycles == 1


def test_bad_waveform_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(HwsimError, match="not found"):
        read_vcd(tmp_path / "missing.vcd")
    (tmp_path / "noclk.vcd").write_text("$scope module top $end\n$var wire 1 ! a $end\n$upscope $end\n"
                                        "$enddefinitions $end\n#0\n0!\n#1\n1!\n")
    with pytest.raises(HwsimError, match="no `clk`"):
        read_vcd(tmp_path / "noclk.vcd")
    assert block_activity(Trace()) == []
