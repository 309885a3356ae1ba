"""Datapath and memory cost models (energy, area, latency, throughput) from cited technology tables.

:func:`load_technology` reads a table (``cost_models/data/*.yaml`` or a user's file);
:func:`datapath_cost` costs one PE of a kind; :mod:`cost_models.memory` costs SRAM, registers,
DRAM and vector-unit ops. Widths, limits and latencies come from :mod:`contract`, the rules the
RTL and the integer reference share. A new PE kind is one module with ``cost(tech, spec)`` plus
one entry in :data:`DATAPATHS` (and its rules in :mod:`contract`).
"""

from __future__ import annotations

from types import ModuleType

import contract
from contract import DEFAULT_MAX_SHIFT, PE_KINDS, PIPELINE_CYCLES
from cost_models import adder, mac, shift, xnor
from cost_models.datapath import DatapathCost, DatapathSpec
from cost_models.tech import (Primitive, Technology, add_area_um2, add_energy_pj, load_technology,
                              mult_area_um2, mult_energy_pj)

DATAPATHS: dict[str, ModuleType] = {"mac": mac, "adder": adder, "xnor": xnor, "shift": shift}
assert tuple(DATAPATHS) == PE_KINDS, "one cost module per contract.PE_KINDS, in its order"

__all__ = ["DATAPATHS", "DEFAULT_MAX_SHIFT", "PE_KINDS", "PIPELINE_CYCLES", "DatapathCost",
           "Primitive", "Technology", "acc_bits_for", "add_area_um2", "add_energy_pj", "check_bits",
           "datapath_cost", "load_technology", "mult_area_um2", "mult_energy_pj", "weight_bits_for"]


def check_bits(pe: str, bits: int) -> None:
    """Raise ValueError if datapath ``pe`` cannot be costed at operand width ``bits``
    (:data:`contract.MODEL_BITS`; xnor: 1)."""
    contract.check_bits(pe, bits)


def _check_int(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        noun = "a positive integer" if minimum == 1 else "a non-negative integer"
        raise ValueError(f"`{name}` must be {noun}, not {value!r}")


def datapath_cost(pe: str, tech: Technology, *, bits: int, acc_bits: int, lanes: int = 64,
                  max_shift: int = DEFAULT_MAX_SHIFT, max_align: int = 0) -> DatapathCost:
    """Energy per op, area, latency and throughput of one PE of kind ``pe``.

    ``lanes`` is the XNOR word width (other kinds do one op per cycle and ignore it);
    ``max_shift`` is the largest shift P of the shift datapath, ``max_align`` the largest group
    alignment E of the grouped adder (others ignore them).
    """
    check_bits(pe, bits)
    _check_int("acc_bits", acc_bits, 1)
    _check_int("lanes", lanes, 1)
    _check_int("max_shift", max_shift, 0)
    contract.align_field_bits(max_align)  # raises unless 0 <= max_align <= MAX_ALIGN_LIMIT
    spec = DatapathSpec(bits=bits, acc_bits=acc_bits, lanes=contract.lanes_per_pe(pe, lanes),
                        max_shift=max_shift, max_align=max_align if pe == "adder" else 0)
    return DATAPATHS[pe].cost(tech, spec)


def acc_bits_for(pe: str, bits: int, k: int, *, max_shift: int = DEFAULT_MAX_SHIFT,
                 lanes: int = 1, max_align: int = 0) -> int:
    """Accumulator width of a PE of kind ``pe`` that a ``k``-long reduction can never overflow:
    :func:`contract.acc_bits`, the width the generated PE has (xnor: ``lanes`` per beat)."""
    check_bits(pe, bits)
    return contract.acc_bits(pe, k, bits, max_shift=max_shift, lanes=lanes, max_align=max_align)


def weight_bits_for(pe: str, bits: int, *, max_shift: int = DEFAULT_MAX_SHIFT,
                    max_align: int = 0) -> int:
    """Stored width of one weight: ``bits`` for mac/adder (plus the group alignment of a grouped
    adder), 1 for xnor, the (zero, sign, shift) code of :func:`contract.weight_code_bits` for
    shift, which is what moves through DRAM and the weight buffer (:func:`contract.operand_bits`)."""
    check_bits(pe, bits)
    return contract.operand_bits(pe, bits, max_shift=max_shift, max_align=max_align)[1]
