"""Datapath and memory cost models (energy, area, latency, throughput) from cited technology tables.

:func:`load_technology` reads a table (``cost_models/data/*.yaml`` or a user's file);
:func:`datapath_cost` costs one PE of a kind; :mod:`cost_models.memory` costs SRAM, registers,
DRAM and vector-unit ops. A new PE kind is one module with ``acc_bits(bits, k, max_shift)`` and
``cost(tech, spec)`` plus one entry in :data:`DATAPATHS`.
"""

from __future__ import annotations

from types import ModuleType

from cost_models import adder, mac, shift, xnor
from cost_models.datapath import DEFAULT_MAX_SHIFT, PIPELINE_CYCLES, DatapathCost, DatapathSpec
from cost_models.tech import (Primitive, Technology, add_area_um2, add_energy_pj, load_technology,
                              mult_area_um2, mult_energy_pj)

DATAPATHS: dict[str, ModuleType] = {"mac": mac, "adder": adder, "xnor": xnor, "shift": shift}
PE_KINDS = tuple(DATAPATHS)

__all__ = ["PE_KINDS", "DATAPATHS", "DatapathCost", "Primitive", "Technology", "acc_bits_for",
           "add_area_um2", "add_energy_pj", "check_bits", "datapath_cost", "load_technology",
           "mult_area_um2", "mult_energy_pj"]


def check_bits(pe: str, bits: int) -> None:
    """Raise ValueError if datapath ``pe`` cannot run at operand width ``bits``."""
    if pe == "xnor":
        if bits != 1:
            raise ValueError(f"the xnor datapath works on 1-bit operands, not {bits}; use --bits 1")
    elif not 2 <= bits <= 32:
        raise ValueError(f"the {pe} datapath supports 2 to 32 bits, not {bits}")


def _datapath(pe: str) -> ModuleType:
    if pe not in DATAPATHS:
        raise ValueError(f"unknown PE kind {pe!r}; choose one of {', '.join(PE_KINDS)}")
    return DATAPATHS[pe]


def _check_int(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        noun = "a positive integer" if minimum == 1 else "a non-negative integer"
        raise ValueError(f"`{name}` must be {noun}, not {value!r}")


def datapath_cost(pe: str, tech: Technology, *, bits: int, acc_bits: int, lanes: int = 64,
                  max_shift: int = DEFAULT_MAX_SHIFT) -> DatapathCost:
    """Energy per op, area, latency and throughput of one PE of kind ``pe``.

    ``lanes`` is the XNOR word width (other kinds do one op per cycle and ignore it);
    ``max_shift`` is the largest shift P of the shift datapath (others ignore it).
    """
    module = _datapath(pe)
    check_bits(pe, bits)
    _check_int("acc_bits", acc_bits, 1)
    _check_int("lanes", lanes, 1)
    _check_int("max_shift", max_shift, 0)
    spec = DatapathSpec(bits=bits, acc_bits=acc_bits, lanes=lanes if pe == "xnor" else 1,
                        max_shift=max_shift)
    return module.cost(tech, spec)


def acc_bits_for(pe: str, bits: int, k: int, *, max_shift: int = DEFAULT_MAX_SHIFT) -> int:
    """Accumulator width so that a K-long reduction on datapath ``pe`` can never overflow.

    mac ``2b + ceil(log2 K)``; adder ``b + 1 + ceil(log2 K)``; xnor ``ceil(log2(K + 1)) + 1``;
    shift ``b + P + ceil(log2 K) + 1``. Each module's docstring derives its bound.
    """
    module = _datapath(pe)
    check_bits(pe, bits)
    _check_int("k", k, 1)
    _check_int("max_shift", max_shift, 0)
    return module.acc_bits(bits, k, max_shift)


def weight_bits_for(pe: str, bits: int, *, max_shift: int = DEFAULT_MAX_SHIFT) -> int:
    """Stored width of one weight: ``bits`` for mac/adder, 1 for xnor, the (zero, sign, shift)
    code for shift (5 bits for P = 7), which is what moves through DRAM and the weight buffer."""
    check_bits(pe, bits)
    if pe == "shift":
        return _datapath("shift").weight_code_bits(max_shift)
    return bits
