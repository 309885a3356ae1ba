"""Shift PE (DeepShift-style): ``acc += s * x * 2^-p`` with s in {-1, 0, +1} and p in [0, P].

The arithmetic stays exact in fixed point with P fractional bits: ``x * 2^-p`` is ``x << (P - p)``
in units of ``2^-P``, a ``(b + P)``-bit value. Per cycle:

* a logarithmic barrel shifter of ``S = ceil(log2(P + 1))`` stages of 2:1 muxes, each stage as wide
  as the ``b + P``-bit output (a slight overcount for the early, narrower stages);
* the sign: conditional negation of the ``b + P`` bits (XOR per bit, +1 as carry-in); s = 0
  gates the operand to zero, which is not costed;
* one ``A``-bit accumulator add::

    energy_pj_per_op = S * (b + P) * E_mux + (b + P) * E_xor + E_add(A)
    register bits    = b (x) + weight code (contract.weight_code_bits) + (b + P) (pipeline) + A
    area_um2         = the same blocks' areas + register bits * A_dff

Accumulator width ``A`` (:func:`contract.acc_bits`): each term lies in ``[-2^(b-1+P), 2^(b-1+P)]``
(``-x`` for ``x = -2^(b-1)`` reaches the positive end), so K terms need exactly
``b + P + ceil(log2(K + 1))`` signed bits.
"""

from __future__ import annotations

from contract import weight_code_bits
from cost_models.datapath import DatapathCost, DatapathSpec, adder, assemble, clog2, conditional_negate, gates
from cost_models.tech import Technology


def cost(tech: Technology, spec: DatapathSpec) -> DatapathCost:
    """One shift PE at ``spec.bits``, shifts up to ``spec.max_shift``, ``spec.acc_bits`` accumulator."""
    wide = spec.bits + spec.max_shift
    stages = clog2(spec.max_shift + 1)
    logic = [gates(tech, "mux2", stages * wide), conditional_negate(tech, wide), adder(tech, spec.acc_bits)]
    register_bits = spec.bits + weight_code_bits(spec.max_shift) + wide + spec.acc_bits
    return assemble("shift", tech, spec, logic=logic, register_bits=register_bits)
