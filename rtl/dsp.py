"""Registered products: ``a * b`` one cycle later, and that product as an ECP5 DSP block.

Yosys 0.50's ``synth_ecp5`` maps ``*`` to a MULT18X18D with all its registers bypassed: it packs
no register into an ECP5 DSP block (``synth_xilinx`` packs AREG/BREG/PREG into DSP48E1), so a
product between fabric registers is flip-flop, routing, the block's multiplier, routing,
flip-flop. A 17x16 signed product alone on an LFE5U-85F (nextpnr 0.11): 144 MHz so; 188 MHz
with the block's output register as the product's register; 521 MHz with its input registers
on too. Inside the network accelerator the first takes about 8.5 ns (115-117 MHz). Input
registers would take the register of the stage before, whose logic then ends at the block:
in the output stage (``rtl.requant``), a block RAM read and the ``acc + B`` adder into them took
11.7 ns, slower than the product itself, so a :class:`Product` uses the output register only.

:class:`Product` elaborates as a plain Amaranth ``*`` behind a register (the Amaranth simulator,
Verilator, xc7/ice40 synthesis, ``lut_only``) or, elaborated for :data:`ECP5`
(:func:`rtl.emit.generate` with ``dsp="ecp5"``; Amaranth hands the platform to every
submodule), as a MULT18X18D whose output register is that register: the same cycles either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amaranth.hdl import ClockSignal, Const, Elaboratable, Instance, Module, ResetSignal, Shape, Signal, Value, ValueLike
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.tracer import get_src_loc

__all__ = ["DSP_FAMILIES", "ECP5", "DSPPlatform", "Product", "dsp_family", "dsp_platform", "registered_product"]

#: DSP families :class:`Product` has a primitive elaboration for.
DSP_FAMILIES = ("ecp5",)

#: MULT18X18D's operand width: 18-bit two's complement (SIGNEDA/SIGNEDB 1) or unsigned.
_WIDTH = 18
#: Narrowest operand Yosys's ``synth_ecp5`` puts in a DSP block (``mul2dsp`` ``DSP_*_MINWIDTH``):
#: a narrower product stays in LUTs, so a :class:`Product` does too (the same DSP count).
_MIN_WIDTH = 2


@dataclass(frozen=True)
class DSPPlatform:
    """The platform :meth:`Product.elaborate` sees when elaborated for ``family``'s DSP blocks
    (passed to ``verilog.convert``)."""

    family: str

    def cell(self, name: str, *, src_loc: tuple[str, int], **ports: Any) -> Elaboratable:
        """The primitive ``name`` with ``ports`` (``Instance`` keywords: ``p_``, ``i_``, ``o_``),
        made at ``src_loc``; a test substitutes a behavioural model here."""
        return Instance(name, src_loc=src_loc, **ports)


#: Elaborate :class:`Product` as an ECP5 MULT18X18D.
ECP5 = DSPPlatform("ecp5")


def dsp_platform(dsp: str | None) -> DSPPlatform | None:
    """The platform of DSP family ``dsp`` (None: the generic elaboration)."""
    if dsp is not None and dsp not in DSP_FAMILIES:
        raise ValueError(f"`dsp` must be one of {', '.join(DSP_FAMILIES)} or None, not {dsp!r}")
    return None if dsp is None else DSPPlatform(dsp)


def dsp_family(target: str, *, lut_only: bool) -> str | None:
    """The DSP family to generate for when synthesizing for ``target``: ``ecp5`` unless LUT-only
    (instantiated blocks would stay in), None (the generic products) for every other target."""
    return target if target in DSP_FAMILIES and not lut_only else None


class Product(wiring.Component):
    """``o_p = i_a * i_b``, registered: one cycle after the operands.

    The result has Amaranth's product shape: ``a + b`` bits, signed if either operand is. On
    :data:`ECP5` with both operands 2 to 18 bits wide, a MULT18X18D with its output register on,
    clocked by ``sync`` and reset with it; otherwise (any other platform, or an operand Yosys
    would not put in one block) ``*`` and a register.

    Members
    -------
    i_a : In(a_shape)
    i_b : In(b_shape)
    o_p : Out(Shape(a + b, signed))
    """

    def __init__(self, a_shape: Shape, b_shape: Shape, *, src_loc_at: int = 0) -> None:
        # the multiplier's source line is the caller's: where rtl.synth.dsp_sources counts its block
        self.src_loc = get_src_loc(src_loc_at)
        a, b = Shape.cast(a_shape), Shape.cast(b_shape)
        super().__init__({"i_a": In(a), "i_b": In(b),
                          "o_p": Out(Shape(a.width + b.width, a.signed or b.signed))})

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        if isinstance(platform, DSPPlatform) and platform.family == "ecp5" and all(
                _MIN_WIDTH <= len(v) <= _WIDTH for v in (self.i_a, self.i_b)):
            m.submodules.dsp = platform.cell("MULT18X18D", src_loc=self.src_loc, **self._mult18x18d(m))
            return m
        p = self.i_a * self.i_b
        p.src_loc = self.src_loc
        m.d.sync += self.o_p.eq(p)
        return m

    def _mult18x18d(self, m: Module) -> dict[str, Any]:
        """MULT18X18D's ``Instance`` keywords: each operand extended to 18 bits by its sign (and
        SIGNEDA/SIGNEDB set) or by zeros, ``o_p`` the low bits of P behind the output register,
        which CLK0, CE0 and RST0 drive (Lattice FPGA-TN-02205, the ECP5 sysDSP usage guide)."""
        ports: dict[str, Any] = {"p_REG_OUTPUT_CLK": "CLK0"}
        for port, value in (("A", self.i_a), ("B", self.i_b)):
            signed = value.shape().signed
            wide = Signal(Shape(_WIDTH, signed), name=port.lower())
            m.d.comb += wide.eq(value)
            ports |= {f"i_{port}{k}": wide[k] for k in range(_WIDTH)}
            ports[f"i_SIGNED{port}"] = Const(int(signed), 1)
        product = Signal(2 * _WIDTH, name="p")
        m.d.comb += self.o_p.eq(product[:len(self.o_p)])
        return ports | {f"o_P{k}": product[k] for k in range(2 * _WIDTH)} | {
            "i_SOURCEA": Const(0, 1), "i_SOURCEB": Const(0, 1), "i_CLK0": ClockSignal("sync"),
            "i_CE0": Const(1, 1), "i_RST0": ResetSignal("sync")}


def registered_product(m: Module, name: str, a: ValueLike, b: ValueLike) -> Value:
    """``a * b`` one cycle later: a :class:`Product` added to ``m`` as submodule ``name``."""
    a, b = Value.cast(a), Value.cast(b)
    m.submodules[name] = unit = Product(a.shape(), b.shape(), src_loc_at=1)
    m.d.comb += [unit.i_a.eq(a), unit.i_b.eq(b)]
    return unit.o_p
