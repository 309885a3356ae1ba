"""XNOR-popcount PE: L binary lanes per cycle, ``acc += popcount(XNOR(x, w))`` over L-bit words.

Per cycle: L XNOR gates, a popcount adder tree over the L one-bit results, and one ``A``-bit
accumulator add. The tree adds pairs level by level: level j (j = 1, 2, ...) has
``floor(n_(j-1) / 2)`` adders of j-bit inputs, each j full-adder cells, with ``n_0 = L`` and
``n_j = ceil(n_(j-1) / 2)`` values left after it. So L - 1 adders in all and

    FA(L) = sum_j j * floor(n_(j-1) / 2)      (L = 64: 32*1 + 16*2 + 8*3 + 4*4 + 2*5 + 1*6 = 120)

full-adder cells. (A carry-save counter needs fewer, about L; the adder tree is the simple,
conservative choice.) Per cycle::

    energy per cycle = L * E_xor + FA(L) * E_fa + E_add(A);   energy_pj_per_op = that / L
    register bits    = 2L (x, w words) + bit_length(L) (popcount pipeline register) + A
    register_pj_per_op = register bits * E_dff / L;   ops_per_cycle = L

Accumulator width ``A`` (:func:`contract.acc_bits`): the PE counts agreeing lanes over
``ceil(K / L)`` whole words, ``[0, ceil(K / L) * L]`` unsigned; the output stage turns the count
into ``dot = 2 * count - K``.
"""

from __future__ import annotations

from cost_models.datapath import DatapathCost, DatapathSpec, adder, assemble, gates
from cost_models.tech import Technology


def popcount_full_adders(lanes: int) -> int:
    """Full-adder cells of a pairwise adder tree that counts the ones among ``lanes`` bits."""
    total, values, width = 0, lanes, 1
    while values > 1:
        total += width * (values // 2)
        values = (values + 1) // 2
        width += 1
    return total


def cost(tech: Technology, spec: DatapathSpec) -> DatapathCost:
    """One XNOR PE of ``spec.lanes`` lanes with a ``spec.acc_bits`` accumulator."""
    lanes = spec.lanes
    logic = [gates(tech, "xor2", lanes), gates(tech, "full_adder", popcount_full_adders(lanes)),
             adder(tech, spec.acc_bits)]
    register_bits = 2 * lanes + lanes.bit_length() + spec.acc_bits
    return assemble("xnor", tech, spec, logic=logic, register_bits=register_bits, ops_per_cycle=lanes)
