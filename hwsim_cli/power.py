"""FPGA power lines shared by ``hwsim rtl synth --power`` and ``hwsim estimate --target``.

:func:`power_table` prints the :func:`cost_models.fpga_power.fpga_power` breakdown of a design's
resources at its clock (the placed Fmax when known) and returns it as JSON.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from cost_models.fpga_power import FpgaActivity, fpga_power
from hwsim.errors import ConfigError

__all__ = ["power_table"]


def power_table(resources: dict[str, Any], target: str, freq_mhz: float, console: Console, *,
                title: str, cycles: int | None = None,
                activity: FpgaActivity | None = None) -> dict[str, Any]:
    """Print the power of ``resources`` on ``target`` at ``freq_mhz`` (and the energy of ``cycles``
    cycles, e.g. one inference); return the figures as JSON."""
    try:
        power = fpga_power(resources, target, freq_mhz, activity)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    table = Table(title=f"{title}: power on {power.device} at {freq_mhz:.1f} MHz", header_style="bold")
    table.add_column("part")
    table.add_column("mW", justify="right")
    for key, mw in power.dynamic_mw.items():
        if mw:
            table.add_row(f"dynamic: {key}", f"{mw:.3f}")
    table.add_row("dynamic", f"{power.total_dynamic_mw:.3f}")
    table.add_row("static (whole device)", f"{power.static_mw:.1f}")
    table.add_row("total", f"{power.total_mw:.2f}")
    console.print(table)
    out = power.to_dict()
    line = f"activity: {power.activity.source}"
    if cycles is not None:
        out["cycles"] = cycles
        out["energy_uj"] = power.energy_uj(cycles)
        out["dynamic_energy_uj"] = power.total_dynamic_mw * cycles / freq_mhz * 1e-3
        line += (f"; {cycles:,} cycles: {out['energy_uj']:.3f} uJ "
                 f"({out['dynamic_energy_uj']:.3f} uJ dynamic)")
    console.print(line + "; coefficients: cost_models/data/power/fpga.yaml (cited or marked assumptions)")
    return out
