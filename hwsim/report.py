"""Render a :class:`~hwsim.simulate.Report` as a terminal table, JSON or CSV with the same fields.

Files are written atomically (temporary file in the target folder, then rename), so an
interrupted or failed run never leaves a half-written or clobbered output behind.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from hwsim import files
from hwsim.files import write_atomic
from hwsim.simulate import LayerResult, Report

#: Per-layer fields, in table/CSV column order.
LAYER_FIELDS = ("name", "op", "shape", "datapath", "ops", "cycles", "stall_cycles", "utilization",
                "energy_compute_pj", "energy_onchip_pj", "energy_dram_pj", "energy_leakage_pj", "energy_pj",
                "cycles_from", "note", "input_from", "output_to", "tile_m", "tile_k", "tile_n", "loop_order",
                "dataflow")

#: Short forms of :class:`hwsim.schedule.Placement` labels for the table's ``in>out`` column.
_SHORT = {"sram": "S", "dram": "D", "fused": "F", "sram+dram": "SD", "fused+sram": "FS", "fused+dram": "FD",
          "fused+sram+dram": "FSD", "-": "-"}


#: Energy terms of a row, as :meth:`Report.energy_split_uj` names them.
_TERMS = ("compute", "onchip", "dram", "leakage")
#: Fields of :class:`LayerResult` that a folded row sums over its group.
_SUMMED = ("cycles", "compute_cycles", "stall_cycles", *(f"energy_{t}_pj" for t in _TERMS))
#: How many layers the summary's top lists name.
TOP_N = 5


def layer_row(row: LayerResult) -> dict[str, Any]:
    return {f: getattr(row, f) for f in LAYER_FIELDS}


def fold_layers(report: Report) -> tuple[LayerResult, ...]:
    """One row per compute layer with the vector layers fused into its output stage folded in.

    A layer whose input comes ``fused`` from the layer before it (:class:`hwsim.schedule.Placement`)
    joins that layer's row: ``op`` lists every op (``conv+norm+act``), cycles, stalls and energies
    are summed (a fused layer's cycles are only what exceeds its anchor's, so the sum is the
    group's time), ``ops``, ``utilization``, ``shape`` and ``datapath`` stay the anchor's, and
    ``output_to`` becomes the group's last layer's. Vector layers that run on their own keep their
    own row. Cycles and energies add up to the report's totals.
    """
    groups: list[list[LayerResult]] = []
    for r in report.layers:
        if groups and "fused" in r.input_from.split("+"):
            groups[-1].append(r)
        else:
            groups.append([r])
    return tuple(g[0] if len(g) == 1 else dataclasses.replace(
        g[0], op="+".join(r.op for r in g), output_to=g[-1].output_to,
        **{f: sum(getattr(r, f) for r in g) for f in _SUMMED}) for g in groups)


def unit_of(row: LayerResult) -> str:
    """Which unit a row ran on: ``array`` (the main PE array), ``aux`` (an auxiliary array) or
    ``vector`` (the vector unit)."""
    return "array" if row.on_main_array else "vector" if row.datapath == "vector" else "aux"


def summary(report: Report) -> dict[str, Any]:
    """Where the energy and the cycles go, for the table and the JSON ``summary``.

    ``energy_share``: each energy term's share of the total; ``units``: cycles and energy (pJ,
    the whole batch) of the main ``array``, the ``aux`` arrays and the ``vector`` unit, each row
    counted on the unit it ran on (a fused vector layer's exposed cycles and its energy on the
    vector unit); ``top_energy`` / ``top_cycles``: the :data:`TOP_N` largest rows of
    :func:`fold_layers`, name -> share, largest first.
    """
    total = report.energy_uj * 1e6
    split = report.energy_split_uj()
    units = {u: {"cycles": 0, "energy_pj": 0.0} for u in ("array", "aux", "vector")}
    for r in report.layers:
        units[unit_of(r)]["cycles"] += r.cycles
        units[unit_of(r)]["energy_pj"] += r.energy_pj
    folded = fold_layers(report)
    cycles = report.cycles

    def top(key: str, whole: float) -> dict[str, float]:
        best = sorted(folded, key=lambda r: getattr(r, key), reverse=True)[:TOP_N]
        return {r.name: getattr(r, key) / whole if whole else 0.0 for r in best}

    return {"energy_share": {t: (split[t] * 1e6 / total if total else 0.0) for t in _TERMS},
            "units": units, "top_energy": top("energy_pj", total), "top_cycles": top("cycles", cycles)}


def ratios(report: Report, baseline: Report) -> dict[str, float]:
    """``report / baseline`` for energy (total and split), latency and area (both reports cost
    the same batch, so per batch and per inference ratios are the same)."""
    mine, base = report.totals(), baseline.totals()
    keys = ("energy_uj", *(f"energy_{k}_uj" for k in report.energy_split_uj()), "latency_ms", "area_mm2")
    return {k: (mine[k] / base[k] if base[k] else float("nan")) for k in keys}


def to_dict(report: Report, baseline: Report | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "model": report.model,
        "accelerator": report.accelerator.to_dict(),
        "timing": report.timing,
        "layers": [layer_row(r) for r in report.layers],
        "totals": report.totals(),
        "area_um2": report.area_um2,
        "op_counts": report.op_counts,
        "warnings": list(report.warnings),
        "summary": summary(report),
    }
    if report.fpga is not None:
        data["fpga"] = {"target": report.fpga_target, **report.fpga}
    if baseline is not None:
        data["compare"] = {"baseline": to_dict(baseline), "ratios": ratios(report, baseline)}
    return data


def to_csv(report: Report) -> str:
    """One row per layer, a ``TOTAL`` row (the whole batch) and, for a batch of more than one,
    a ``PER_INFERENCE`` row (ops and energies / batch); columns as :data:`LAYER_FIELDS`."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=LAYER_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in report.layers:
        writer.writerow(layer_row(row))
    totals = report.totals()
    ops = sum(r.ops for r in report.layers)
    energies = {f"energy_{k}_pj": v * 1e6 for k, v in report.energy_split_uj().items()}
    energies["energy_pj"] = totals["energy_uj"] * 1e6
    writer.writerow({
        "name": "TOTAL", "op": "", "shape": "", "datapath": report.accelerator.pe,
        "ops": ops, "cycles": totals["cycles"],
        "stall_cycles": sum(r.stall_cycles for r in report.layers), "utilization": totals["utilization"],
        **energies, "note": f"batch of {report.batch}" if report.batch > 1 else "",
    })
    if report.batch > 1:
        writer.writerow({"name": "PER_INFERENCE", "datapath": report.accelerator.pe,
                         "ops": ops / report.batch, **{k: v / report.batch for k, v in energies.items()}})
    return buf.getvalue()


def write_json(path: str | Path, report: Report, baseline: Report | None = None, *,
               fpga_power: dict[str, Any] | None = None) -> None:
    """The report as JSON (:func:`to_dict`), with ``fpga_power`` (``hwsim estimate --target``'s power
    figures) next to the FPGA resources when given."""
    data = to_dict(report, baseline)
    if fpga_power is not None:
        data["fpga_power"] = fpga_power
    write_atomic(path, json.dumps(data, indent=2) + "\n")


def write_csv(path: str | Path, report: Report) -> None:
    write_atomic(path, to_csv(report))


def _si(value: float, unit: str = "") -> str:
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.2f}{prefix}{unit}"
    return f"{value:.3g}{unit}"


def _energy(pj: float) -> str:
    """pJ to a readable unit."""
    for scale, unit in ((1e6, "uJ"), (1e3, "nJ")):
        if pj >= scale:
            return f"{pj / scale:.2f} {unit}"
    return f"{pj:.1f} pJ"


def layer_table(report: Report, *, all_layers: bool = False) -> Table:
    """One row per compute layer with its fused ops folded in (:func:`fold_layers`), or every
    layer of the report with ``all_layers``."""
    acc = report.accelerator
    table = Table(title=f"{report.model} on {acc.pe} {acc.array.rows}x{acc.array.cols} "
                        f"{acc.array.dataflow}, {acc.bits}-bit, {acc.clock_mhz:g} MHz, {report.timing} cycles",
                  show_lines=False, header_style="bold")
    for col, justify in (("layer", "left"), ("type", "left"), ("shape", "left"), ("ops", "right"),
                         ("datapath", "left"), ("in>out", "left"), ("cycles", "right"), ("util", "right"),
                         ("E compute", "right"), ("E on-chip", "right"), ("E DRAM", "right"),
                         ("E leak", "right")):
        table.add_column(col, justify=justify)
    for r in report.layers if all_layers else fold_layers(report):
        mark = "*" if r.cycles_from != report.timing else ""
        where = f"{_SHORT.get(r.input_from, r.input_from)}>{_SHORT.get(r.output_to, r.output_to)}"
        table.add_row(r.name, r.op, r.shape, _si(r.ops), r.datapath, where, f"{r.cycles:,}{mark}",
                      f"{r.utilization:.0%}", _energy(r.energy_compute_pj), _energy(r.energy_onchip_pj),
                      _energy(r.energy_dram_pj), _energy(r.energy_leakage_pj))
    return table


def mapping_table(report: Report) -> Table:
    """How each compute layer was mapped (``estimate --mappings``): its buffer tile, loop order and
    dataflow, with its cycles and energy."""
    sch = report.accelerator.schedule
    chosen = f"search for the least {sch.objective}" if sch.mapper == "search" else "the heuristic"
    table = Table(title=f"mapping per layer ({chosen}); tile m x k x n of the GEMM, loops outer to inner",
                  header_style="bold")
    for col, justify in (("layer", "left"), ("shape", "left"), ("tile m x k x n", "right"), ("loops", "left"),
                         ("dataflow", "left"), ("cycles", "right"), ("energy", "right")):
        table.add_column(col, justify=justify)
    for r in report.layers:
        if r.dataflow:
            table.add_row(r.name, r.shape, f"{r.tile_m} x {r.tile_k} x {r.tile_n}", r.loop_order, r.dataflow,
                          f"{r.cycles:,}", _energy(r.energy_pj))
    return table


def summary_table(report: Report) -> Table:
    """:func:`summary` as a few lines: the energy split, the units, the top layers."""
    s = summary(report)
    table = Table(title="where the energy and cycles go", header_style="bold", show_header=False)
    table.add_column("what")
    table.add_column("", overflow="fold")
    share = s["energy_share"]
    table.add_row("energy", f"compute {share['compute']:.0%}, SRAM+registers {share['onchip']:.0%}, "
                            f"DRAM {share['dram']:.0%}, leakage {share['leakage']:.0%}")
    cycles, energy = report.cycles, report.energy_uj * 1e6
    for unit, label in (("array", f"{report.accelerator.pe} array"), ("aux", "aux arrays"),
                        ("vector", "vector unit")):
        u = s["units"][unit]
        if u["cycles"] or u["energy_pj"]:
            table.add_row(label, f"{u['cycles']:,} cycles ({u['cycles'] / cycles if cycles else 0:.0%}), "
                                 f"{_energy(u['energy_pj'])} ({u['energy_pj'] / energy if energy else 0:.0%})")
    for key, label in (("top_energy", "top energy"), ("top_cycles", "top cycles")):
        table.add_row(label, ", ".join(f"{name} {v:.0%}" for name, v in s[key].items()))
    return table


def _uj(value: float) -> str:
    return f"{value:,.1f} uJ"


def _table_totals(report: Report) -> dict[str, float]:
    totals = report.totals()
    return {**totals, "macs_per_inference": totals["macs"] / report.batch, "clock_mhz": report.accelerator.clock_mhz}


def totals_table(report: Report, baseline: Report | None = None) -> Table:
    t = _table_totals(report)
    table = Table(title="totals", header_style="bold")
    table.add_column("metric")
    table.add_column(report.accelerator.pe, justify="right")
    if baseline is not None:
        table.add_column(baseline.accelerator.pe, justify="right")
        table.add_column("ratio", justify="right")
    b = _table_totals(baseline) if baseline is not None else {}
    # Energies and their split per inference; with a batch, cycles, latency and energy of the
    # whole batch are given too, labelled as such.
    per_batch = report.batch > 1
    batch = f" (batch of {report.batch})" if per_batch else ""
    rows = (("MACs" + (" / inference" if per_batch else ""), "macs_per_inference", _si),
            ("params", "params", _si), ("cycles" + batch, "cycles", lambda v: f"{v:,.0f}"),
            ("latency" + batch, "latency_ms", lambda v: f"{v:.3f} ms"),
            ("inferences/s", "inferences_per_s", lambda v: f"{v:,.1f}"),
            ("utilization", "utilization", lambda v: f"{v:.1%}"),
            *((("energy" + batch, "energy_uj", _uj),) if per_batch else ()),
            ("energy / inference", "energy_per_inference_uj", _uj),
            ("  compute", "energy_compute_per_inference_uj", _uj),
            ("  on-chip (SRAM+reg)", "energy_onchip_per_inference_uj", _uj),
            ("  DRAM", "energy_dram_per_inference_uj", _uj),
            ("  leakage", "energy_leakage_per_inference_uj", _uj),
            ("leakage power", "leakage_mw", lambda v: f"{v:,.2f} mW"),
            ("area", "area_mm2", lambda v: f"{v:.3f} mm2"), ("clock", "clock_mhz", lambda v: f"{v:,.1f} MHz"))
    for label, key, fmt in rows:
        cells = [label, fmt(t[key])]
        if baseline is not None:
            cells += [fmt(b[key]), f"{t[key] / b[key]:.3f}x" if b[key] else "-"]
        table.add_row(*cells)
    for key in ("bops", "flops", "ops"):
        if key in report.op_counts:
            cells = [key.upper() if key != "ops" else "OPs (BOPs/64+FLOPs)", _si(report.op_counts[key])]
            if baseline is not None:
                cells += ["", ""]
            table.add_row(*cells)
    return table


def fpga_table(report: Report, baseline: Report | None = None) -> Table:
    """FPGA resources by block, with the baseline's totals and ratios when there is one."""
    fpga = report.fpga
    assert fpga is not None
    base = baseline.fpga["total"] if baseline is not None and baseline.fpga is not None else None
    table = Table(title=f"FPGA resources on {report.fpga_target} (synthesis-fitted model)", header_style="bold")
    blocks = [b for b in fpga if b != "total"]
    table.add_column("resource")
    for col in (*blocks, "total", *((f"{baseline.accelerator.pe} total", "ratio") if base else ())):
        table.add_column(col, justify="right")
    for key, label in (("lut", "LUTs"), ("ff", "FFs"), ("carry", "carry cells"), ("dsp", "DSPs"),
                       ("bram", "BRAMs")):
        cells = [label, *(f"{fpga[b][key]:,.0f}" for b in (*blocks, "total"))]
        if base:
            cells += [f"{base[key]:,.0f}", f"{fpga['total'][key] / base[key]:.3f}x" if base[key] else "-"]
        table.add_row(*cells)
    return table


def print_report(report: Report, baseline: Report | None = None, console: Console | None = None, *,
                 all_layers: bool = False) -> None:
    """The layer table (folded, or every layer with ``all_layers``), the summary, the totals (with
    ratios to ``baseline``), area and FPGA tables on ``console``; ``report.warnings`` are the
    caller's to show (the CLI puts them on stderr)."""
    if console is None:
        console = files.console()
    console.print(layer_table(report, all_layers=all_layers))
    if not all_layers:
        console.print("each row is a compute layer with the ops fused into its output stage (conv+norm+act); "
                      "--all-layers lists every op")
    console.print("in>out: where each layer's input came from and its output went: S on-chip SRAM, "
                  "D DRAM, F fused (the producer's output stream, never stored)")
    kept = sum(r.cycles_from != report.timing for r in report.layers)
    if kept:
        console.print(f"* {kept} layers keep the analytical model's cycles (no {report.timing} cycles "
                      f"for them; the JSON/CSV `note` says why)")
    console.print(summary_table(report))
    console.print(totals_table(report, baseline))
    area = ", ".join(f"{k} {v * 1e-6:.3f} mm2" for k, v in report.area_um2.items())
    console.print(f"area: {area}")
    power = report.accelerator.power
    console.print(f"DRAM: {report.accelerator.memory.dram}; leakage: {'on' if power.leakage else 'off'}; "
                  f"clock gating of idle PEs: {power.clock_gating:g}")
    if report.fpga is not None:
        console.print(fpga_table(report, baseline))
    aux = sorted({r.datapath for r in report.layers if r.datapath.endswith("(aux)")})
    if aux:
        rows, cols = report.accelerator.aux_shape
        console.print(f"note: layers on {', '.join(aux)} need a datapath other than {report.accelerator.pe}; "
                      f"they run on a {rows}x{cols} auxiliary array of that kind (array.aux_rows, aux_cols)")
