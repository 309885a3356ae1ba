"""PE energy from the generated hardware's own switching, next to the analytic energy.

:func:`pe_energy` takes a co-simulation's waveform (:func:`sim.activity.read_vcd`) and replays
what every PE of the array saw at each clock edge (its ``i_*`` ports) on the gate netlist of that
same PE (:mod:`rtl.gatelevel`, all PEs as parallel lanes). The netlist must reproduce the RTL:
its accumulator is compared with the waveform's ``o_acc`` at every edge of every PE. Toggles
times energy per toggle (:mod:`cost_models.activity`) give the activity-based energy; the
analytic one is :func:`cost_models.datapath_cost`'s per-op logic energy times the valid operand
pairs the PEs took, and its register energy per PE-cycle times the cycles. Their ratio on the
logic is the PE kind's activity factor (1.0 would be random data).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from contract import PIPELINE_CYCLES
from cost_models import datapath_cost
from cost_models.activity import toggle_energy
from cost_models.tech import Technology
from rtl.emit import emit_verilog
from rtl.gatelevel import GateRun, GateSim, Netlist, synthesize_gates
from rtl.pe import PESpec
from sim.activity import Trace, read_vcd

__all__ = ["PE_PORTS", "PEEnergy", "gate_netlist", "pe_energy", "pe_stimulus", "spec_energy"]

#: The PE inputs replayed on the netlist.
PE_PORTS = ("i_x", "i_w", "i_add", "i_restart", "i_shift", "i_acc")


@dataclass(frozen=True)
class PEEnergy:
    """PE energy of one run over ``cycles`` edges of ``pes`` PEs that took ``ops`` valid operand
    pairs (xnor: words of ``lanes`` binary ops), ``zero_ops`` of them with a zero activation (rows
    of the array past the layer's pixels are fed zeros; xnor has no zero). ``gate_*_pj`` are
    activity-based (logic: every
    combinational cell; registers: the flip-flops' clock and toggles), ``analytic_*_pj`` the cost
    model's; ``toggles`` per gate; ``matches`` tells whether the netlist's accumulators equalled the
    RTL's at every edge."""

    pe: str
    pes: int
    cycles: int
    ops: int
    zero_ops: int
    lanes: int
    gate_logic_pj: float
    gate_register_pj: float
    analytic_logic_pj: float
    analytic_register_pj: float
    toggles: dict[str, int]
    cells: dict[str, int]
    matches: bool

    @property
    def logic_ratio(self) -> float:
        """Activity-based over analytic logic energy: the activity factor of this data."""
        return self.gate_logic_pj / self.analytic_logic_pj if self.analytic_logic_pj else 0.0

    @property
    def total_ratio(self) -> float:
        analytic = self.analytic_logic_pj + self.analytic_register_pj
        return (self.gate_logic_pj + self.gate_register_pj) / analytic if analytic else 0.0

    def to_dict(self) -> dict[str, object]:
        return {**{k: getattr(self, k) for k in self.__dataclass_fields__},
                "logic_ratio": self.logic_ratio, "total_ratio": self.total_ratio}


def gate_netlist(spec: PESpec, folder: Path) -> Netlist:
    """The gate netlist of ``spec``'s PE, made in ``folder`` or reused from it."""
    if (folder / "gates.json").exists():
        return Netlist.from_json(folder / "gates.json", "pe")
    folder.mkdir(parents=True, exist_ok=True)
    return synthesize_gates(emit_verilog(spec.build(), "pe", folder), "pe", folder)


def spec_energy(spec: PESpec, run: GateRun, tech: Technology, *, ops: int, zero_ops: int,
                cells: dict[str, int], matches: bool = True) -> PEEnergy:
    """:class:`PEEnergy` of a gate-level ``run`` of ``spec``'s PE (``cells`` per gate) in which
    the PEs took ``ops`` valid operand pairs, ``zero_ops`` of them with a zero activation."""
    energy = toggle_energy(tech)
    cost = datapath_cost(spec.kind, tech, bits=spec.bits, acc_bits=spec.acc_shape.width,
                         lanes=spec.lanes, max_shift=spec.max_shift)
    logic = sum(n * energy.per_toggle_pj[g] for g, n in run.toggles.items() if g != "dff")
    registers = (run.toggles.get("dff", 0) * energy.per_toggle_pj["dff"]
                 + run.flops * run.lanes * run.cycles * energy.dff_clock_pj)
    return PEEnergy(pe=spec.kind, pes=run.lanes, cycles=run.cycles, ops=ops, zero_ops=zero_ops,
                    lanes=cost.ops_per_cycle,
                    gate_logic_pj=logic, gate_register_pj=registers,
                    analytic_logic_pj=ops * cost.energy_pj_per_op * cost.ops_per_cycle,
                    analytic_register_pj=run.cycles * run.lanes * cost.register_pj_per_op * cost.ops_per_cycle,
                    toggles=dict(run.toggles), cells=cells, matches=matches)


def pe_stimulus(trace: Trace, rows: int, cols: int) -> dict[str, np.ndarray]:
    """Per PE port, the ``(cycles, rows * cols)`` values the waveform's PEs saw at each edge."""
    return {port: np.array([trace.samples[f"array.pe_{r}_{c}.{port}"] for r in range(rows)
                            for c in range(cols)], dtype=object).T
            for port in (*PE_PORTS, "o_acc")}


def pe_energy(waves: str | Path, spec: PESpec, rows: int, cols: int, tech: Technology,
              folder: Path) -> PEEnergy:
    """Activity-based and analytic PE energy of the co-simulation recorded in ``waves`` on a
    ``rows x cols`` array of ``spec`` PEs (gate netlist made or reused in ``folder``)."""
    netlist = gate_netlist(spec, folder)
    names = [f"array.pe_{r}_{c}.{p}" for r in range(rows) for c in range(cols) for p in (*PE_PORTS, "o_acc")]
    stimulus = pe_stimulus(read_vcd(waves, sample=names), rows, cols)
    expected = stimulus.pop("o_acc")
    run = GateSim(netlist).run(stimulus, watch=["o_acc"])
    matches = bool(np.array_equal(run.outputs["o_acc"], expected.astype(np.int64)))
    added = stimulus["i_add"] == 1
    # a pair's activation was on i_x PIPELINE_CYCLES edges before the pair is added
    x = stimulus["i_x"][:len(added) - PIPELINE_CYCLES]
    zeros = 0 if spec.kind == "xnor" else int((added[PIPELINE_CYCLES:] & (x == 0)).sum())
    return spec_energy(spec, run, tech, ops=int(added.sum()), zero_ops=zeros, cells=netlist.counts(),
                       matches=matches)
