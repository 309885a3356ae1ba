"""Registered products: ``a * b`` one cycle later, and that product as an ECP5 DSP block.

Yosys 0.50's ``synth_ecp5`` maps ``*`` to a MULT18X18D with all its registers bypassed: it packs
no register into an ECP5 DSP block (``synth_xilinx`` packs AREG/BREG/PREG into DSP48E1), so a
product between fabric registers is flip-flop, routing, the block's multiplier, routing,
flip-flop. A 17x16 signed product alone on an LFE5U-85F (nextpnr 0.11): 144 MHz so; 188 MHz
with the block's output register as the product's register; 521 MHz with its input registers
on too. Inside the network accelerator the first takes about 8.5 ns (115-117 MHz). Input
registers would take the register of the stage before, whose logic then ends at the block:
in the output stage (``rtl.requant``), a block RAM read and the ``acc + B`` adder into them took
11.7 ns, slower than the product itself, so :func:`registered_product` uses the output register
only. Placed alone behind registers, the layer geometry (``rtl.im2col``) then goes from 119 to
134 MHz (its slowest product path 8.38 -> 7.47 ns, now one block's register into the next block).

:func:`registered_product` is a plain Amaranth ``*`` behind a register (the Amaranth simulator,
Verilator, xc7/ice40 synthesis, ``lut_only``) or, in a module elaborated for :data:`ECP5`
(:func:`rtl.emit.generate` with ``dsp="ecp5"``; Amaranth hands the platform to every
submodule's ``elaborate``), a MULT18X18D whose output register is that register: the same
cycles either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amaranth.hdl import ClockSignal, Const, Elaboratable, Instance, Module, ResetSignal, Shape, Signal, Value, ValueLike
from amaranth.tracer import get_src_loc

__all__ = ["DSP_FAMILIES", "ECP5", "DSPPlatform", "dsp_family", "dsp_platform", "registered_product"]

#: DSP families :func:`registered_product` has a primitive for.
DSP_FAMILIES = ("ecp5",)

#: MULT18X18D's operand width: 18-bit two's complement (SIGNEDA/SIGNEDB 1) or unsigned.
_WIDTH = 18
#: Narrowest operand Yosys's ``synth_ecp5`` puts in a DSP block (``mul2dsp`` ``DSP_*_MINWIDTH``):
#: a narrower product stays in LUTs, so :func:`registered_product`'s does too (the same DSP count).
_MIN_WIDTH = 2


@dataclass(frozen=True)
class DSPPlatform:
    """The platform of a design whose products are ``family``'s DSP blocks (passed to
    ``verilog.convert``, read by :func:`registered_product`)."""

    family: str

    def cell(self, name: str, *, src_loc: tuple[str, int], **ports: Any) -> Elaboratable:
        """The primitive ``name`` with ``ports`` (``Instance`` keywords: ``p_``, ``i_``, ``o_``),
        made at ``src_loc``; a test substitutes a behavioural model here."""
        return Instance(name, src_loc=src_loc, **ports)


#: Products as ECP5 MULT18X18D blocks.
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


def registered_product(m: Module, platform: Any, name: str, a: ValueLike, b: ValueLike) -> Value:
    """``a * b`` one cycle later, in ``m`` (elaborated for ``platform``): the register ``name``.

    The result has Amaranth's product shape: ``a + b`` bits, signed if either operand is. For
    :data:`ECP5` with both operands 2 to 18 bits wide, a MULT18X18D with its output register on,
    clocked by ``sync`` and reset with it; otherwise (any other platform, or an operand Yosys
    would not put in one block) ``*`` and a register. A function, not a component: a module
    boundary around the product keeps ``synth_xilinx`` (which keeps the hierarchy) from packing
    the caller's operand registers into the DSP48E1 (+196 flip-flops on the adder 4x4 top).
    Both carry the caller's source line, where :func:`rtl.synth.dsp_sources` counts the block.
    """
    a, b = Value.cast(a), Value.cast(b)
    src_loc = get_src_loc()
    p = Signal(Shape(len(a) + len(b), a.shape().signed or b.shape().signed), name=name, src_loc_at=1)
    if isinstance(platform, DSPPlatform) and platform.family == "ecp5" and all(
            _MIN_WIDTH <= len(v) <= _WIDTH for v in (a, b)):
        ports = _mult18x18d(m, name, a, b, p)
        m.submodules[f"{name}_dsp"] = platform.cell("MULT18X18D", src_loc=src_loc, **ports)
    else:
        product = a * b
        product.src_loc = src_loc
        m.d.sync += p.eq(product)
    return p


def _mult18x18d(m: Module, name: str, a: Value, b: Value, p: Signal) -> dict[str, Any]:
    """MULT18X18D's ``Instance`` keywords for ``p = a * b``: each operand extended to 18 bits by
    its sign (and SIGNEDA/SIGNEDB set) or by zeros, ``p`` the low bits of P behind the output
    register, which CLK0, CE0 and RST0 drive (Lattice FPGA-TN-02205, the ECP5 sysDSP usage guide)."""
    ports: dict[str, Any] = {"p_REG_OUTPUT_CLK": "CLK0"}
    for port, value in (("A", a), ("B", b)):
        signed = value.shape().signed
        wide = Signal(Shape(_WIDTH, signed), name=f"{name}_{port.lower()}")
        m.d.comb += wide.eq(value)
        ports |= {f"i_{port}{k}": wide[k] for k in range(_WIDTH)}
        ports[f"i_SIGNED{port}"] = Const(int(signed), 1)
    full = Signal(2 * _WIDTH, name=f"{name}_p")
    m.d.comb += p.eq(full[:len(p)])
    return ports | {f"o_P{k}": full[k] for k in range(2 * _WIDTH)} | {
        "i_SOURCEA": Const(0, 1), "i_SOURCEB": Const(0, 1), "i_CLK0": ClockSignal("sync"),
        "i_CE0": Const(1, 1), "i_RST0": ResetSignal("sync")}
