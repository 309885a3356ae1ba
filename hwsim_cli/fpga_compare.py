"""``hwsim report fpga-compare``: the AdderNet paper's FPGA comparison on hwsim's own hardware.

Prints one table per PE kind (resources, Fmax, cycles, power, energy per inference, ASIC PE
energy) and the savings against mac next to the paper's quoted ranges; writes
``fpga_compare.json`` (every figure, measured or estimated, the tool versions) and
``fpga_compare.png`` into ``-o``. The work is :func:`sim.compare.fpga_compare`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from contract import PE_KINDS
from cost_models.fpga import PLACE_MODES
from hwsim import files
from hwsim.errors import ConfigError
from hwsim_cli import options

__all__ = ["add_parser", "run"]


def add_parser(kinds: argparse._SubParsersAction) -> None:
    """Add ``fpga-compare`` to ``hwsim report``'s sub-parsers."""
    p = kinds.add_parser("fpga-compare", help="synthesize, place and co-simulate every PE kind on one "
                                              "architecture: LUT, FF, Fmax, power and energy vs mac, "
                                              "next to the AdderNet paper's quoted ranges")
    p.add_argument("--array", type=options.array_type, default=(4, 4), metavar="RxC",
                   help="PE array (default 4x4; 16x16 does not fit the LFE5U-85F: --place none, about 25 min)")
    p.add_argument("--bits", type=int, default=8, help="operand width of mac, adder, shift (default 8)")
    p.add_argument("--target", choices=("ecp5", "ice40"), default="ecp5", help="FPGA family (default ecp5)")
    p.add_argument("--pe", default=",".join(PE_KINDS), help="comma-separated PE kinds (default all)")
    p.add_argument("--layer", default="conv k=3 cin=8 cout=8 h=8 w=8 pad=1",
                   help='the layer co-simulated on every kind (default "conv k=3 cin=8 cout=8 h=8 w=8 pad=1")')
    p.add_argument("--seed", type=int, default=0, help="weights and input of the layer (default 0)")
    p.add_argument("--dsp", action="store_true", help="let multipliers use DSP blocks (default: LUT-only, "
                                                      "the paper's logic comparison)")
    p.add_argument("--place", choices=PLACE_MODES, default="all",
                   help="which arrays nextpnr places: all (default; an array larger than the device is "
                        "refused, naming it), fitting (the others synthesized only) or none (synthesis "
                        "only); an array not placed gets Yosys's LUT/FF/DSP/BRAM and the fitted Fmax "
                        "(cost_models/data/fpga_fmax.json), and its latency, power and energy are marked "
                        "estimated in the table and the JSON")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the JSON, plot and builds")


def _table(result: dict[str, Any], console: Console) -> None:
    estimated = [k for k in result["kinds"] if k["resources"]["fmax_basis"] != "measured"]
    mark = "*"  # an Fmax (and what follows from it) estimated, not placed
    table = Table(title=f"{result['array'][0]}x{result['array'][1]} arrays on {result['target']}, "
                        f"{result['layer']}" + (f" ({mark} estimated: not placed)" if estimated else ""),
                  header_style="bold")
    cols = ("PE", "LUT", "FF", "carry", "DSP", "Fmax MHz", "cycles", "latency us", "dyn mW", "total mW",
            "dyn uJ", "PE pJ gate", "PE pJ analytic", "area mm2")
    for col in cols:
        table.add_column(col, justify="left" if col == "PE" else "right")
    for k in result["kinds"]:
        r, p, a = k["resources"], k["power"], k["asic"]
        m = mark if k in estimated else ""
        table.add_row(k["kind"] + ("" if k["bit_exact"] else " (NOT bit-exact)"), f"{r['lut']:,}",
                      f"{r['ff']:,}", f"{r['carry']:,}", f"{r['dsp']}", f"{r['fmax_mhz']:.1f}{m}",
                      f"{k['cycles']:,}", f"{k['latency_us']:.2f}{m}", f"{p['total_dynamic_mw']:.2f}{m}",
                      f"{p['total_mw']:.1f}{m}", f"{k['dynamic_energy_uj']:.4f}{m}",
                      f"{a['gate_logic_pj'] + a['gate_register_pj']:,.0f}",
                      f"{a['analytic_logic_pj'] + a['analytic_register_pj']:,.0f}", f"{k['area_um2'] / 1e6:.4f}")
    console.print(table)
    for k in estimated:
        console.print(f"{k['kind']}{mark}: Fmax from the {k['resources']['fmax_source']}")
    console.print("power: cost_models/fpga_power.py (resources x co-simulated toggle rates), an estimate for "
                  "every kind; LUT/FF/carry/DSP from Yosys")
    paper = result["paper"]
    vs = Table(title="against mac (hwsim) and the paper's adder-vs-CNN ranges (quoted)", header_style="bold")
    for col in ("PE", "logic saving %", "speed gain %", "fitted model's speed gain %", "dynamic power saving %",
                "total power saving %", "dynamic energy saving %"):
        vs.add_column(col, justify="left" if col == "PE" else "right")
    for kind, v in result["versus_mac"].items():
        m = mark if v["basis"]["speed"] != "measured" else ""
        vs.add_row(kind, f"{v['logic_saving_pct']:.1f}", f"{v['speed_gain_pct']:+.1f}{m}",
                   f"{v['fitted_speed_gain_pct']:+.1f}{mark}", f"{v['dynamic_power_saving_pct']:.1f}{m}",
                   f"{v['power_saving_pct']:.1f}{m}", f"{v['dynamic_energy_saving_pct']:.1f}{m}")
    lo_hi = "{:g}-{:g}".format
    vs.add_row("paper (adder)", lo_hi(*paper["logic_saving_pct"]), f"+{paper['speed_gain_pct'][0]:g}", "-",
               lo_hi(*paper["power_saving_pct"]), "-", "-")
    console.print(vs)
    console.print(f"paper: {paper['source']}; tools: "
                  + ", ".join(f"{k} {v}" for k, v in result["tools"].items()))


def _plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = ("logic_saving_pct", "speed_gain_pct", "dynamic_power_saving_pct")
    kinds = list(result["versus_mac"])
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / (len(kinds) + 1)
    for i, kind in enumerate(kinds):
        ax.bar([m + i * width for m in range(len(metrics))],
               [result["versus_mac"][kind][m] for m in metrics], width, label=f"{kind} (hwsim)")
    paper = result["paper"]
    for m, key in enumerate(("logic_saving_pct", "speed_gain_pct", "power_saving_pct")):
        lo, hi = paper[key]
        ax.bar(m + len(kinds) * width, hi - lo or 0.5, width, bottom=lo, color="grey", label="paper (quoted)" if m == 0 else None)
    ax.set_xticks([m + width * len(kinds) / 2 for m in range(len(metrics))],
                  ["logic (LUT) saving", "speed (Fmax) gain", "dynamic power saving"])
    ax.set_ylabel("% against mac")
    ax.axhline(0, color="black", linewidth=0.5)
    ax.legend(fontsize=8)
    estimated = any(v["basis"]["speed"] != "measured" for v in result["versus_mac"].values())
    ax.set_title(f"{result['array'][0]}x{result['array'][1]} on {result['target']}"
                 + (" (Fmax, power: estimated, not placed)" if estimated else " (power: estimated)"))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(args: argparse.Namespace) -> list[Path]:
    """Run ``hwsim report fpga-compare``; the files written."""
    from sim.compare import fpga_compare

    kinds = [k.strip() for k in args.pe.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in PE_KINDS]
    if unknown or not kinds:
        raise ConfigError(f"--pe must name PE kinds among {', '.join(PE_KINDS)}, not {args.pe!r}")
    console = files.console()
    out = Path(args.output)
    rows, cols = args.array
    result = fpga_compare(kinds, rows, cols, args.bits, args.target, args.layer, seed=args.seed,
                          lut_only=not args.dsp, out=out, place=args.place,
                          status=lambda text: console.print(f"[dim]{text}[/]"))
    _table(result, console)
    written = [out / "fpga_compare.json"]
    files.write_atomic(written[0], json.dumps(result, indent=2, default=float) + "\n")
    if result["versus_mac"]:
        written.append(out / "fpga_compare.png")
        _plot(result, written[-1])
    return written
