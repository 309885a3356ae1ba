"""Shared pieces of the datapath models: the result type, circuit blocks and the PE assembler.

Each datapath module (``mac``, ``adder``, ``xnor``, ``shift``) lists the logic blocks one PE
activates per cycle and the register bits it clocks, and :func:`assemble` turns them into a
:class:`DatapathCost`. Conventions shared by all four:

* every register bit is a flip-flop clocked every cycle (``gates.dff``), whether or not it changes;
* the PE keeps its operands in registers (so a systolic array can forward them) and has one
  pipeline register between the first arithmetic stage and the accumulator, so operand-in to
  accumulator-updated takes :data:`contract.PIPELINE_CYCLES` cycles;
* accumulators are as wide as :func:`contract.acc_bits` (the exact range, as the RTL builds them);
* a conditional negation ``s ? -v : v`` costs one XOR per bit: the ``+1`` of the two's complement
  enters as the accumulator adder's carry-in, so no separate incrementer is needed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from contract import DEFAULT_MAX_SHIFT, PIPELINE_CYCLES
from cost_models.tech import Primitive, Technology, add_area_um2, add_energy_pj, mult_area_um2, mult_energy_pj


@dataclass(frozen=True)
class DatapathCost:
    """Cost of one PE of a datapath kind.

    ``energy_pj_per_op`` is the logic energy of one MAC-equivalent op (xnor: one binary lane op,
    i.e. the PE's per-cycle energy divided by ``lanes``); ``register_pj_per_op`` is the energy of
    the PE's own registers per op, kept apart so reports can split compute from on-chip storage;
    ``area_um2`` is one PE including its registers; ``latency_cycles`` is the pipeline depth from
    operand in to accumulator updated; ``ops_per_cycle`` is 1, or ``lanes`` for xnor.
    """

    pe: str
    bits: int
    acc_bits: int
    lanes: int
    energy_pj_per_op: float
    register_pj_per_op: float
    area_um2: float
    latency_cycles: int
    ops_per_cycle: int


@dataclass(frozen=True)
class DatapathSpec:
    """What a datapath module is asked to cost: operand and accumulator widths, XNOR lanes, the
    largest shift ``P`` of the shift datapath and the largest group alignment ``E`` of the
    grouped adder (each module reads only what it needs)."""

    bits: int
    acc_bits: int
    lanes: int = 1
    max_shift: int = DEFAULT_MAX_SHIFT
    max_align: int = 0


def clog2(n: int) -> int:
    """ceil(log2(n)) for n >= 1, exactly (no floating point)."""
    return (n - 1).bit_length()


def adder(tech: Technology, bits: int) -> Primitive:
    """A ``bits``-wide integer adder, also used as a subtractor: ``a - b = a + ~b + 1`` needs only
    carry-in 1 and ``~b``, and the models feed it pre-inverted operands (weights are stored
    inverted; the accumulators take the XOR output of :func:`conditional_negate`)."""
    return Primitive(add_energy_pj(tech, bits), add_area_um2(tech, bits))


def multiplier(tech: Technology, bits: int) -> Primitive:
    """A ``bits`` x ``bits`` integer multiplier."""
    return Primitive(mult_energy_pj(tech, bits), mult_area_um2(tech, bits))


def gates(tech: Technology, name: str, count: int) -> Primitive:
    """``count`` gates of one kind (``full_adder``, ``xor2``, ``mux2``), all active each cycle."""
    gate = tech.gate(name)
    return Primitive(count * gate.energy_pj, count * gate.area_um2)


def conditional_negate(tech: Technology, bits: int) -> Primitive:
    """``s ? -v : v`` on ``bits`` bits: one XOR per bit, the +1 as the next adder's carry-in."""
    return gates(tech, "xor2", bits)


def assemble(pe: str, tech: Technology, spec: DatapathSpec, *, logic: Iterable[Primitive],
             register_bits: int, ops_per_cycle: int = 1) -> DatapathCost:
    """Sum the blocks one PE activates per cycle and its registers into a per-op cost; the logic
    energy is scaled by the table's calibrated activity factor when it was loaded to apply it."""
    blocks = list(logic)
    dff = tech.gate("dff")
    energy = math.fsum(b.energy_pj for b in blocks) * tech.logic_scale(pe)
    area = math.fsum(b.area_um2 for b in blocks) + register_bits * dff.area_um2
    return DatapathCost(
        pe=pe, bits=spec.bits, acc_bits=spec.acc_bits, lanes=ops_per_cycle,
        energy_pj_per_op=energy / ops_per_cycle,
        register_pj_per_op=register_bits * dff.energy_pj / ops_per_cycle,
        area_um2=area, latency_cycles=PIPELINE_CYCLES, ops_per_cycle=ops_per_cycle,
    )
