"""Memory hierarchy energy and area: SRAM buffers, PE registers, DRAM, and vector-unit ops.

SRAM access energy vs capacity is a piecewise power law through the table's points (Horowitz:
10, 20, 100 pJ per 64-bit read at 8 KiB, 32 KiB, 1 MiB), i.e. ``E ~ C^0.5`` from 8 to 32 KiB and
``E ~ C^0.464`` from 32 KiB to 1 MiB; below 8 KiB and above 1 MiB the nearest segment's law is
extrapolated. Energy scales linearly with the access width relative to the table's width
(assumption: CACTI shows bit-line and sense-amplifier energy growing with the bits read while the
decoder is shared, so linear scaling slightly overestimates wide ports). Writes cost as reads.

SRAM area is ``capacity * 8192 bits * bitcell area / array efficiency`` (both from the table).
Leakage is not modelled.
"""

from __future__ import annotations

from cost_models.tech import Technology, add_energy_pj, loglog_interp, mult_energy_pj

VECTOR_OPS = ("add", "max", "compare", "mul", "mac")


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"`{name}` must be a positive number, not {value!r}")
    return value


def sram_access_energy_pj(tech: Technology, capacity_kib: float, width_bits: int) -> float:
    """Energy of one read or write of ``width_bits`` bits to an SRAM of ``capacity_kib`` KiB."""
    per_table_width = loglog_interp(tech.sram_read_pj, _positive("capacity_kib", capacity_kib))
    return per_table_width * _positive("width_bits", width_bits) / tech.sram_width_bits


def sram_area_um2(tech: Technology, capacity_kib: float) -> float:
    """Area of an SRAM macro of ``capacity_kib`` KiB, periphery included."""
    bits = _positive("capacity_kib", capacity_kib) * 8192
    return bits * tech.sram_bitcell_um2 / tech.sram_array_efficiency


def register_energy_pj_per_bit(tech: Technology) -> float:
    """Energy of one flip-flop bit per clock cycle."""
    return tech.gate("dff").energy_pj


def dram_energy_pj_per_bit(tech: Technology) -> float:
    """Energy of moving one bit to or from DRAM (the table's access energy / its width)."""
    return tech.dram_pj / tech.dram_width_bits


def vector_op_energy_pj(tech: Technology, op: str, bits: int) -> float:
    """Energy of one element op of the vector unit on ``bits``-bit operands.

    ``add``, ``max`` and ``compare`` are one ``bits``-wide adder (max and compare subtract and
    look at the sign); ``mul`` is one multiplier; ``mac`` (e.g. a folded batch norm ``x * a + c``)
    is a multiplier plus an adder as wide as the ``2 * bits``-bit product.
    """
    if op in ("add", "max", "compare"):
        return add_energy_pj(tech, bits)
    if op == "mul":
        return mult_energy_pj(tech, bits)
    if op == "mac":
        return mult_energy_pj(tech, bits) + add_energy_pj(tech, 2 * bits)
    raise ValueError(f"unknown vector op {op!r}; choose one of {', '.join(VECTOR_OPS)}")
