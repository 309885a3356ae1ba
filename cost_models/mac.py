"""Multiply-accumulate PE: ``acc += x * w`` on signed ``b``-bit operands.

Per cycle one ``b x b`` multiplier and one ``A``-bit accumulator adder switch::

    energy_pj_per_op = E_mult(b) + E_add(A)
    register bits    = 2b (x, w operands) + 2b (product pipeline register) + A (accumulator)
    area_um2         = A_mult(b) + A_add(A) + register bits * A_dff

Accumulator width: a product of two signed b-bit values lies in
``[-2^(b-1) * (2^(b-1) - 1), 2^(2b-2)]``, so K of them sum to at most ``K * 2^(2b-2)`` in magnitude,
which fits ``2b + ceil(log2 K)`` signed bits (``2^(2b-1+ceil(log2 K)) > K * 2^(2b-2)``). The exact
minimum is ``2b - 1 + ceil(log2(K + 1))``: the formula spends at most one spare bit, and needs
none when K is a power of two (``(-2^(b-1))^2`` summed K times).
"""

from __future__ import annotations

from cost_models.datapath import DatapathCost, DatapathSpec, adder, assemble, clog2, multiplier
from cost_models.tech import Technology


def acc_bits(bits: int, k: int, max_shift: int) -> int:
    """Accumulator width that a K-long reduction cannot overflow (``max_shift`` is unused)."""
    return 2 * bits + clog2(k)


def cost(tech: Technology, spec: DatapathSpec) -> DatapathCost:
    """One MAC PE at ``spec.bits`` with a ``spec.acc_bits`` accumulator."""
    b, acc = spec.bits, spec.acc_bits
    return assemble("mac", tech, spec, logic=[multiplier(tech, b), adder(tech, acc)],
                    register_bits=2 * b + 2 * b + acc)
