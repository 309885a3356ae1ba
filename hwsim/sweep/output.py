"""What a sweep writes: the Pareto plots, the table, and the files (CSV, JSON, Markdown, HTML).

Two figures, energy against latency and energy against area, with every feasible point coloured
by PE kind, each kind's own Pareto front drawn as a step line in its colour (its points ringed),
the front of all kinds together dashed in black, and the points that break a constraint as grey
crosses. The page (:func:`hwsim.reports.render.write_bundle`: ``report.html`` self-contained
with the figures embedded, ``report.md`` beside its PNGs, ``results.json``, ``results.csv``)
carries the per-kind fronts, the front on the chosen objectives, and every point.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FuncFormatter

from hwsim.reports.plots import PE_COLORS, png
from hwsim.reports.render import Block, bullets, figure, heading, para, table, write_bundle
from hwsim.sweep.pareto import pareto_mask
from hwsim.sweep.run import OBJECTIVES, SweepResult

__all__ = ["COLUMNS", "cells", "front_rows", "pareto_plot", "write"]

#: The table's columns: header and how a row shows in it.
COLUMNS: tuple[tuple[str, Callable[[dict], str]], ...] = (
    ("PE", lambda r: r["pe"]),
    ("bits", lambda r: str(r["bits"])),
    ("array", lambda r: r["array"]),
    ("dataflow", lambda r: r["dataflow"]),
    ("SRAM KiB", lambda r: f"{r['sram_kib']:g}"),
    ("DRAM", lambda r: r["dram"]),
    ("MHz", lambda r: f"{r['clock_mhz']:g}"),
    ("mapper", lambda r: r["mapper"]),
    ("energy uJ", lambda r: f"{r['energy_uj']:,.1f}"),
    ("latency ms", lambda r: f"{r['latency_ms']:.3f}"),
    ("area mm2", lambda r: f"{r['area_mm2']:.3f}"),
    ("EDP uJ*ms", lambda r: f"{r['edp_uj_ms']:,.1f}"),
    ("util.", lambda r: f"{r['utilization']:.0%}"),
)
_AXIS_LABELS = {"latency_ms": "latency (ms, log scale)", "area_mm2": "area (mm2, log scale)"}


def cells(row: dict) -> list[str]:
    """``row`` as the table's cells (:data:`COLUMNS`)."""
    return [show(row) for _, show in COLUMNS]


def front_rows(result: SweepResult) -> list[dict]:
    """Each PE kind's energy-latency front (``pe_front``), by kind, then by latency."""
    kinds = list(dict.fromkeys(r["pe"] for r in result.rows))
    return sorted((r for r in result.rows if r["pe_front"]), key=lambda r: (kinds.index(r["pe"]), r["latency_ms"]))


def _step(ax: plt.Axes, rows: Sequence[dict], x: str, **style: object) -> np.ndarray:
    """Draw the non-dominated points of ``rows`` (not empty) in (x, energy) as a step line;
    return them, sorted by x."""
    values = np.array([[r[x], r["energy_uj"]] for r in rows])
    front = values[pareto_mask(values)]
    front = front[np.argsort(front[:, 0])]
    ax.step(front[:, 0], front[:, 1], where="post", **style)
    return front


def pareto_plot(result: SweepResult, x: str) -> bytes:
    """Energy against ``x`` (``latency_ms`` or ``area_mm2``): points by PE kind, each kind's front
    and the front of all kinds, as PNG bytes."""
    rows = [r for r in result.rows if r["feasible"]]
    fig, ax = plt.subplots(figsize=(7.5, 5))
    ax.set_xscale("log")
    ax.set_yscale("log")
    for pe in dict.fromkeys(r["pe"] for r in rows):
        kind = [r for r in rows if r["pe"] == pe]
        color = PE_COLORS[pe]
        ax.scatter([r[x] for r in kind], [r["energy_uj"] for r in kind], s=22, color=color, alpha=0.45, zorder=3)
        front = _step(ax, kind, x, color=color, linewidth=1.6, label=f"{pe} front", zorder=4)
        ax.scatter(front[:, 0], front[:, 1], s=70, color=color, edgecolors="black", linewidths=0.8, zorder=5)
    _step(ax, rows, x, color="black", linewidth=1, linestyle="--", label="front of all kinds", zorder=6)
    off = [r for r in result.rows if not r["feasible"]]
    if off:
        ax.scatter([r[x] for r in off], [r["energy_uj"] for r in off], marker="x", s=20, color="#999999",
                   label="breaks a constraint", zorder=2)
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(plain)
        axis.set_minor_formatter(plain)
    ax.tick_params(which="minor", labelsize=7)
    ax.set_xlabel(_AXIS_LABELS[x])
    ax.set_ylabel("energy per run (uJ, log scale)")
    ax.set_title(f"{result.sweep.model}: energy vs {x.split('_')[0]}, Pareto front per PE kind")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return png(fig)


def _summary(result: SweepResult) -> str:
    sweep, rows = result.sweep, result.rows
    limits = []
    if sweep.max_area_mm2 is not None:
        limits.append(f"area <= {sweep.max_area_mm2:g} mm2")
    if sweep.max_latency_ms is not None:
        limits.append(f"latency <= {sweep.max_latency_ms:g} ms")
    feasible = sum(r["feasible"] for r in rows)
    strategy = sweep.strategy if sweep.strategy == "grid" else f"{sweep.strategy} (seed {sweep.seed}" + (
        f", {sweep.sampler} sampler, {sweep.samples} trials)" if sweep.strategy == "optuna" else ")")
    return (f"**{len(rows)}** designs ({strategy}; {result.cached} from the cache) in {result.seconds:.1f} s; "
            f"objectives {', '.join(sweep.objectives)} (minimized); constraints: {', '.join(limits) or 'none'} "
            f"({feasible} designs meet them); technology `{sweep.space.tech or 'horowitz45'}`"
            + (f", config `{sweep.space.config}`" if sweep.space.config else "") + ".")


def _document(result: SweepResult) -> list[Block]:
    header = [h for h, _ in COLUMNS]
    objective = [r for r in result.rows if r["pareto"]]
    objective.sort(key=lambda r: r[OBJECTIVES[result.sweep.objectives[0]]])
    return [
        heading(f"Design-space sweep of {result.sweep.model}"),
        para(_summary(result)),
        bullets(["Each design is costed as `hwsim estimate` costs it with the same flags; energy and "
                 "latency are for one run of the network's input, area is the whole chip.",
                 "A design is on a front when no other (feasible) design has lower-or-equal values on "
                 "every axis of the front and a lower one on at least one."]),
        heading("Pareto front per PE kind: energy vs latency", 2),
        table(header, [cells(r) for r in front_rows(result)]),
        heading(f"Pareto front on the objectives ({', '.join(result.sweep.objectives)})", 2),
        table(header, [cells(r) for r in objective]),
        heading("Figures", 2),
        figure("pareto_energy_latency.png", pareto_plot(result, "latency_ms"),
               "Energy vs latency: every design coloured by PE kind, each kind's front as a step line "
               "(ringed points), the front of all kinds dashed."),
        figure("pareto_energy_area.png", pareto_plot(result, "area_mm2"),
               "Energy vs area: every design coloured by PE kind, each kind's front as a step line "
               "(ringed points), the front of all kinds dashed."),
        heading("Every design", 2),
        table([*header, "feasible", "Pareto"],
              [[*cells(r), "yes" if r["feasible"] else "no", "yes" if r["pareto"] else ""] for r in result.rows]),
    ]


def _results(result: SweepResult) -> dict:
    sweep = result.sweep
    return {"model": sweep.model, "strategy": sweep.strategy, "samples": sweep.samples, "seed": sweep.seed,
            "sampler": sweep.sampler, "objectives": list(sweep.objectives),
            "constraints": {"max_area_mm2": sweep.max_area_mm2, "max_latency_ms": sweep.max_latency_ms},
            "tech": sweep.space.tech, "config": str(sweep.space.config) if sweep.space.config else None,
            "cached": result.cached, "seconds": result.seconds, "load_seconds": result.loads,
            "points": result.rows}


def write(result: SweepResult, out_dir: Path) -> list[Path]:
    """Write the sweep's files into ``out_dir`` (created if needed); return their paths."""
    return write_bundle(out_dir, f"Sweep of {result.sweep.model}", _document(result), _results(result),
                        result.rows)
