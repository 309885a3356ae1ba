"""``hwsim cosim --activity``: switching activity per block and gate-level PE energy of a run.

The co-simulation records a waveform; :func:`report` counts its toggles per block
(:mod:`sim.activity`), replays the PEs' inputs on the PE's gate netlist (:mod:`sim.energy`) and
prints both, next to the analytic PE energy of the same operand pairs.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from cost_models.tech import load_technology
from hwsim.accelerator import Accelerator
from hwsim.errors import ConfigError
from sim.activity import block_activity, read_vcd
from sim.build import TopBuild
from sim.cosim import CosimRun
from sim.energy import pe_energy

__all__ = ["report"]


def report(run: CosimRun, build: TopBuild, acc: Accelerator, console: Console) -> dict[str, Any]:
    """Print the activity and energy tables of ``run`` (recorded with waves); return them as JSON."""
    if run.waves is None:
        raise ConfigError("--activity needs the run's waveform; it was not recorded")
    try:
        tech = load_technology(acc.tech)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    with console.status("counting toggles"):
        blocks = block_activity(read_vcd(run.waves))
    table = Table(title=f"switching activity, {run.cycles:,} cycles", header_style="bold")
    for col in ("block", "bits", "toggles", "toggles/bit/cycle"):
        table.add_column(col, justify="left" if col == "block" else "right")
    for b in blocks:
        table.add_row(b.block, f"{b.bits:,}", f"{b.toggles:,}", f"{b.rate:.4f}")
    console.print(table)
    with console.status("replaying the PEs on their gate netlist"):
        try:
            energy = pe_energy(run.waves, build.top.pe, acc.array.rows, acc.array.cols, tech,
                               build.dir / "gates")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    rows = Table(title=f"PE energy ({tech.name}), {energy.pes} PEs, {energy.ops:,} operand pairs",
                 header_style="bold")
    for col in ("", "gate-level pJ", "analytic pJ", "ratio"):
        rows.add_column(col, justify="left" if not col else "right")
    analytic_total = energy.analytic_logic_pj + energy.analytic_register_pj
    for name, gate, analytic in (("logic", energy.gate_logic_pj, energy.analytic_logic_pj),
                                 ("registers", energy.gate_register_pj, energy.analytic_register_pj),
                                 ("total", energy.gate_logic_pj + energy.gate_register_pj, analytic_total)):
        rows.add_row(name, f"{gate:,.1f}", f"{analytic:,.1f}", f"{gate / analytic:.3f}" if analytic else "-")
    console.print(rows)
    cells = ", ".join(f"{n} {g}" for g, n in sorted(energy.cells.items()))
    check = "equal the RTL's" if energy.matches else "[bold red]differ from the RTL's[/]"
    console.print(f"gate netlist of one PE: {cells}; its accumulators {check} at every edge")
    return {"blocks": [{**vars(b), "rate": b.rate} for b in blocks], "pe_energy": energy.to_dict(),
            "tech": tech.name}
