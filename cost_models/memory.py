"""Memory hierarchy energy and area: SRAM buffers, PE registers, DRAM, and vector-unit ops.

SRAM access energy vs capacity is a piecewise power law through the table's points (Horowitz:
10, 20, 100 pJ per 64-bit read at 8 KiB, 32 KiB, 1 MiB), i.e. ``E ~ C^0.5`` from 8 to 32 KiB and
``E ~ C^0.464`` from 32 KiB to 1 MiB; below 8 KiB and above 1 MiB the nearest segment's law is
extrapolated. Energy scales linearly with the access width relative to the table's width
(assumption: CACTI shows bit-line and sense-amplifier energy growing with the bits read while the
decoder is shared, so linear scaling slightly overestimates wide ports). Writes cost as reads.

SRAM area is ``capacity * 8192 bits * bitcell area / array efficiency`` (both from the table).

DRAM is its own chip with its own tables (``cost_models/data/dram/*.yaml``, one per generation:
ddr3, ddr4, lpddr4, lpddr5, hbm2): one energy per bit moved, core and interface together, whatever
the access pattern. Leakage is static power per um^2 of logic and of SRAM macro (the technology
table's ``leakage`` group), drawn for as long as the chip runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from cost_models.tech import (DATA_DIR, Technology, _Checker, add_energy_pj, loglog_interp,
                              mult_energy_pj, read_table, shipped_tables)

DRAM_DIR = DATA_DIR / "dram"

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


@dataclass(frozen=True)
class Dram:
    """A DRAM generation: energy per bit moved to or from it, with the number's source."""

    name: str
    path: str
    description: str
    energy_pj_per_bit: float
    source: str


def shipped_drams() -> tuple[str, ...]:
    """Names of the DRAM tables in ``cost_models/data/dram``."""
    return shipped_tables(DRAM_DIR)


def load_dram(name_or_path: str) -> Dram:
    """A shipped DRAM table by name (``"lpddr4"``) or a user's YAML file by path, validated:
    top-level ``name``, ``description`` and ``energy: {pj_per_bit, source, assumption}``.
    Raises ValueError with one line naming the file and the bad key."""
    data, label, path = read_table(name_or_path, "dram", DRAM_DIR)
    check = _Checker(label, "dram")
    if not isinstance(data, dict):
        raise check.fail("must be a YAML mapping with an `energy` group")
    for key in data:
        if key not in ("name", "description", "energy"):
            raise check.fail(f"unknown key `{key}`")
    if "energy" not in data:
        raise check.fail("missing key `energy`")
    energy = check.entry(data["energy"], "energy", ("pj_per_bit",), None)["pj_per_bit"]
    return Dram(name=str(data.get("name", path.stem)), path=str(path),
                description=str(data.get("description", "")), energy_pj_per_bit=energy,
                source=check.sources[0])


def leakage_power_nw(tech: Technology, logic_um2: float, sram_um2: float, sram_awake: float = 1.0) -> float:
    """Static power of ``logic_um2`` of logic and ``sram_um2`` of SRAM macros, in nW, with the
    fraction ``sram_awake`` of the SRAM leaking in full and the rest in its low-leakage state (the
    table's ``leakage.sram_sleep.fraction`` of full leakage).

    Raises ValueError when the table has no ``leakage`` group."""
    if tech.leakage_logic_nw_per_um2 is None or tech.leakage_sram_nw_per_um2 is None:
        raise ValueError(f"tech table {tech.name!r} has no `leakage` group; add one or turn "
                         "leakage off (power.leakage: false)")
    sram_share = sram_awake + (1.0 - sram_awake) * tech.sram_sleep_fraction
    return logic_um2 * tech.leakage_logic_nw_per_um2 + sram_um2 * tech.leakage_sram_nw_per_um2 * sram_share


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
