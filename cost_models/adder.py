"""AdderNet PE: ``acc -= |x - w|`` on signed ``b``-bit operands on one shared scale.

Stage 1 subtracts, ``d = x - w`` on ``b + 1`` bits (the difference of two b-bit values needs one
more bit). Stage 2 takes the absolute value by conditional negation and subtracts it from the
accumulator in one adder: ``acc - |d|`` is ``acc + ~d + 1`` when ``d >= 0`` and ``acc + d`` when
``d < 0``, i.e. ``acc + (d XOR ~sign) + ~sign`` -- ``b + 1`` XOR gates and the adder's carry-in,
with no separate incrementer or second subtractor::

    energy_pj_per_op = E_add(b + 1) + (b + 1) * E_xor + E_add(A)
    register bits    = 2b (x, w operands) + (b + 1) (d pipeline register) + A (accumulator)
    area_um2         = A_add(b + 1) + (b + 1) * A_xor + A_add(A) + register bits * A_dff

Accumulator width ``A`` (:func:`contract.acc_bits`): ``|x - w| <= 2^b - 1``, so the sum of K
terms lies in ``[-K (2^b - 1), 0]``, the narrowest signed width holding it (at most
``b + 1 + ceil(log2 K)`` bits).

Grouped (AdderNet redistribution, ``E = max_align > 0``): each weight carries its group's
alignment ``e`` in ``F = ceil(log2(E + 1))`` bits and stage 1 computes ``(x << e) - w``: a barrel
shifter of ``F`` levels of 2:1 muxes as wide as its ``b + E``-bit output, then the subtractor,
negation and pipeline register on ``b + E + 1`` bits; ``A`` grows by about ``E`` bits
(:func:`contract.term_range`)::

    energy_pj_per_op = F (b + E) E_mux + E_add(b + E + 1) + (b + E + 1) E_xor + E_add(A)
    register bits    = b (x) + (b + F) (w and e) + (b + E + 1) + A
"""

from __future__ import annotations

from contract import align_field_bits
from cost_models.datapath import DatapathCost, DatapathSpec, adder, assemble, conditional_negate, gates
from cost_models.tech import Technology


def cost(tech: Technology, spec: DatapathSpec) -> DatapathCost:
    """One adder PE at ``spec.bits`` with a ``spec.acc_bits`` accumulator, grouped when
    ``spec.max_align`` > 0."""
    b, acc, e = spec.bits, spec.acc_bits, spec.max_align
    field = align_field_bits(e)
    diff = b + e + 1
    logic = [gates(tech, "mux2", field * (b + e)), adder(tech, diff), conditional_negate(tech, diff),
             adder(tech, acc)]
    return assemble("adder", tech, spec, logic=logic, register_bits=2 * b + field + diff + acc)
