"""rtl.dsp.registered_product: the generic product and its ECP5 MULT18X18D wiring give the same
numbers in the same cycles. Yosys ships no simulation model of MULT18X18D (its ``cells_sim.v`` has none),
so :class:`Mult18x18dModel` models the subset the product uses, from Lattice's ECP5 sysDSP
usage guide (FPGA-TN-02205), and :data:`MODEL` substitutes it for the primitive: the Amaranth
simulator then runs the ECP5 elaboration (also of rtl.requant's output stage and rtl.im2col's
layer geometry: tests/test_rtl_requant.py, tests/test_rtl_top_parts.py). The synthesized ECP5
output stage has the blocks with their output register on (``rtl`` tier)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from amaranth.back import rtlil
from amaranth.hdl import (Cat, ClockSignal, Const, Elaboratable, Fragment, Module, Mux, ResetSignal, Shape, Signal,
                          signed, unsigned)
from amaranth.sim import Simulator

from rtl.dsp import ECP5, DSPPlatform, dsp_family, registered_product
from rtl.emit import BehindRegisters, emit_verilog
from rtl.requant import OutputStage
from rtl.synth import synthesize
from rtl.tools import lint

class Mult18x18dModel(Elaboratable):
    """MULT18X18D as :func:`rtl.dsp.registered_product` uses it: ``P = A * B`` over 18-bit A and B, each
    two's complement where SIGNEDA/SIGNEDB is 1, else unsigned (P is 36 bits), P behind the
    output register (``REG_OUTPUT_CLK`` ``CLK0``): clocked by CLK0 when CE0, cleared by RST0
    (RESETMODE SYNC, the default). Anything else it is given (the shift inputs SOURCEA/B, other
    registers or clocks, ports it does not know) fails the test."""

    def __init__(self, **ports: Any) -> None:
        known = ({f"i_{p}{k}" for p in "AB" for k in range(18)} | {f"o_P{k}" for k in range(36)}
                 | {"i_SIGNEDA", "i_SIGNEDB", "i_SOURCEA", "i_SOURCEB", "i_CLK0", "i_CE0", "i_RST0"}
                 | {"p_REG_OUTPUT_CLK"})
        assert set(ports) <= known, set(ports) - known
        assert ports["p_REG_OUTPUT_CLK"] == "CLK0"
        clock, reset = ports["i_CLK0"], ports["i_RST0"]
        assert isinstance(clock, ClockSignal) and clock.domain == "sync"
        assert isinstance(reset, ResetSignal) and reset.domain == "sync"
        assert all(_constant(ports[f"i_SOURCE{p}"]) == 0 for p in "AB")  # A and B from the ports
        self.ports = ports

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        ports = self.ports
        a, b = (Cat(*(ports[f"i_{p}{k}"] for k in range(18))) for p in "AB")
        product = Signal(signed(36), name="p")
        with m.If(ports["i_RST0"]):
            m.d.sync += product.eq(0)
        with m.Elif(ports["i_CE0"]):
            m.d.sync += product.eq(Mux(ports["i_SIGNEDA"], a.as_signed(), a) * Mux(ports["i_SIGNEDB"], b.as_signed(), b))
        m.d.comb += [ports[f"o_P{k}"].eq(product[k]) for k in range(36)]
        return m


def _constant(value: Any) -> int | None:
    """The value of a constant port, None for a signal."""
    return value.value if isinstance(value, Const) else None


class _ModelPlatform(DSPPlatform):
    """:data:`rtl.dsp.ECP5` with :class:`Mult18x18dModel` for the primitive."""

    def cell(self, name: str, *, src_loc: tuple[str, int], **ports: Any) -> Elaboratable:
        assert name == "MULT18X18D"
        return Mult18x18dModel(**ports)


#: The ECP5 elaboration, simulated.
MODEL = _ModelPlatform("ecp5")


class Multiplier(Elaboratable):
    """``o_p``: :func:`rtl.dsp.registered_product` of ``i_a`` and ``i_b``."""

    def __init__(self, a_shape: Shape, b_shape: Shape) -> None:
        self.i_a, self.i_b = Signal(a_shape), Signal(b_shape)
        self.o_p = Signal(Shape(a_shape.width + b_shape.width, a_shape.signed or b_shape.signed))

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        m.d.comb += self.o_p.eq(registered_product(m, platform, "p", self.i_a, self.i_b))
        return m


def simulate(dut: Elaboratable, bench: Any, platform: DSPPlatform | None) -> None:
    """Run testbench ``bench`` on ``dut`` elaborated for ``platform``."""
    sim = Simulator(Fragment.get(dut, platform))
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def operands(shape: Shape, rng: np.random.Generator, n: int) -> list[int]:
    """The extremes of ``shape``, values around 0, then ``n`` random values."""
    lo, hi = (-(1 << (shape.width - 1)), (1 << (shape.width - 1)) - 1) if shape.signed else (0, (1 << shape.width) - 1)
    return [lo, hi, lo + 1, hi - 1, 0, 1, *([-1] if shape.signed else [])] + rng.integers(lo, hi + 1, n).tolist()


@pytest.mark.amaranth
@pytest.mark.parametrize("platform", [None, MODEL], ids=["generic", "ecp5"])
@pytest.mark.parametrize("a_shape, b_shape", [
    (unsigned(17), signed(16)), (signed(16), signed(16)),  # rtl.requant's two halves
    (signed(18), signed(18)), (unsigned(18), signed(18)), (unsigned(18), unsigned(18)),
    (unsigned(9), unsigned(12)),  # a geometry product of rtl.im2col
])
def test_product_is_the_product_a_cycle_later(a_shape: Shape, b_shape: Shape, platform: DSPPlatform | None) -> None:
    """Every pair of operand extremes (the most negative times itself: 2**34 needs all of P),
    then random pairs, one a cycle: ``o_p`` is each product exactly one cycle later."""
    rng = np.random.default_rng(a_shape.width * 100 + b_shape.width)
    a_values, b_values = operands(a_shape, rng, 0), operands(b_shape, rng, 0)
    pairs = [(a, b) for a in a_values for b in b_values]
    pairs += zip(operands(a_shape, rng, 60)[len(a_values):], operands(b_shape, rng, 60)[len(b_values):])
    dut = Multiplier(a_shape, b_shape)

    async def bench(ctx):
        for a, b in pairs:
            ctx.set(dut.i_a, a)
            ctx.set(dut.i_b, b)
            await ctx.tick()
            assert ctx.get(dut.o_p) == a * b, (a, b)

    simulate(dut, bench, platform)


@pytest.mark.amaranth
def test_only_block_sized_products_become_blocks() -> None:
    """On ECP5, a product of two 2- to 18-bit operands is a MULT18X18D with its output register
    on; a wider or 1-bit operand stays ``*`` (Yosys splits or keeps it in LUTs); every other
    platform gets ``*``."""
    def text(a: Shape, b: Shape, platform: DSPPlatform | None) -> str:
        dut = Multiplier(a, b)
        return rtlil.convert(dut, name="p", platform=platform, ports=[dut.i_a, dut.i_b, dut.o_p])

    for a, b in [(unsigned(17), signed(16)), (unsigned(2), unsigned(18))]:
        blocked = text(a, b, ECP5)
        assert blocked.count("MULT18X18D") == 1 and 'parameter \\REG_OUTPUT_CLK "CLK0"' in blocked
        assert "REG_INPUT" not in blocked
    for a, b, platform in [(signed(19), signed(16), ECP5), (unsigned(1), unsigned(16), ECP5),
                           (unsigned(17), signed(16), None)]:
        assert "MULT18X18D" not in text(a, b, platform)


def test_dsp_blocks_only_for_ecp5_with_dsps() -> None:
    assert dsp_family("ecp5", lut_only=False) == "ecp5"
    assert dsp_family("ecp5", lut_only=True) is None  # instantiated blocks would stay in
    assert dsp_family("xc7", lut_only=False) is None and dsp_family("ice40", lut_only=False) is None


@pytest.mark.rtl
def test_ecp5_output_stage_has_registered_blocks(tmp_path: Path) -> None:
    """One column of rtl.requant's output stage emitted for ECP5 (behind registers, for its
    stream's constant ``ready``): Verilator lints it against Yosys's blackboxes, and synthesized
    it has its two partial products as MULT18X18D blocks with the output register on, counted
    for rtl/requant.py."""
    stage = OutputStage(kind="mac", cols=1, acc_shape=signed(20), bits=8, positions=9, bias_bits=32)
    path = emit_verilog(BehindRegisters(stage), "stage", tmp_path, dsp="ecp5")
    lint(path, "stage", primitives_of="ecp5")
    result = synthesize(path, "stage", "ecp5", outdir=tmp_path / "ecp5", timeout=300)
    assert result["dsp"] == 2 and result["dsp_sources"] == {"rtl/requant.py": 2}
    netlist = json.loads((Path(result["dir"]) / "netlist.json").read_text())
    blocks = [cell for cell in netlist["modules"]["stage"]["cells"].values() if cell["type"] == "MULT18X18D"]
    assert len(blocks) == 2
    for block in blocks:
        registers = {name: value for name, value in block["parameters"].items() if name.endswith("_CLK")}
        assert registers == {"REG_OUTPUT_CLK": "CLK0"}
    # a LUT-only run would keep the instantiated blocks: refused, before Yosys runs
    with pytest.raises(ValueError, match=r"^stage\.v instantiates ECP5 DSP blocks \(generated with dsp='ecp5'\), "
                                         r"which a LUT-only run would keep; generate it without dsp for --lut-only$"):
        synthesize(path, "stage", "ecp5", lut_only=True, outdir=tmp_path / "lut")
    assert not (tmp_path / "lut").exists()
