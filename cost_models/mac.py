"""Multiply-accumulate PE: ``acc += x * w`` on signed ``b``-bit operands.

Per cycle one ``b x b`` multiplier and one ``A``-bit accumulator adder switch::

    energy_pj_per_op = E_mult(b) + E_add(A)
    register bits    = 2b (x, w operands) + 2b (product pipeline register) + A (accumulator)
    area_um2         = A_mult(b) + A_add(A) + register bits * A_dff

Accumulator width ``A`` (:func:`contract.acc_bits`): a product of two signed b-bit values lies in
``[-2^(b-1) * (2^(b-1) - 1), 2^(2b-2)]``, so K of them need the narrowest signed width holding
``[-K * 2^(b-1) * (2^(b-1) - 1), K * 2^(2b-2)]``: 19 bits for b = 8 and K = 8 or 9.
"""

from __future__ import annotations

from cost_models.datapath import DatapathCost, DatapathSpec, adder, assemble, multiplier
from cost_models.tech import Technology


def cost(tech: Technology, spec: DatapathSpec) -> DatapathCost:
    """One MAC PE at ``spec.bits`` with a ``spec.acc_bits`` accumulator."""
    b, acc = spec.bits, spec.acc_bits
    return assemble("mac", tech, spec, logic=[multiplier(tech, b), adder(tech, acc)],
                    register_bits=2 * b + 2 * b + acc)
