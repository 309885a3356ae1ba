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
"""

from __future__ import annotations

from cost_models.datapath import DatapathCost, DatapathSpec, adder, assemble, conditional_negate
from cost_models.tech import Technology


def cost(tech: Technology, spec: DatapathSpec) -> DatapathCost:
    """One adder PE at ``spec.bits`` with a ``spec.acc_bits`` accumulator."""
    b, acc = spec.bits, spec.acc_bits
    logic = [adder(tech, b + 1), conditional_negate(tech, b + 1), adder(tech, acc)]
    return assemble("adder", tech, spec, logic=logic, register_bits=2 * b + (b + 1) + acc)
