"""LUTs, FFs and Fmax per PE kind from real synthesis (Yosys) and place and route (nextpnr).

    python benchmarks/rtl_resources.py [--k 576] [--lanes 64] [--no-fmax] [--array 4]

Every PE is 8-bit (xnor: 1-bit, ``--lanes`` lanes, also shown per lane) and sized for ``--k``
reduction positions; mac is synthesized LUT-only (``-nodsp``) so that the comparison is of logic.
Fmax is nextpnr-ice40 on an HX8K (ct256) for one PE and for a ``--array`` square array; a design
with more ports than the package has pins (xnor at 64 lanes) is placed at 16 lanes instead.
Build products go to ``build/rtl/bench``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rtl.array import SystolicArray  # noqa: E402
from rtl.emit import emit_verilog  # noqa: E402
from rtl.pe import PESpec  # noqa: E402
from rtl.synth import synthesize  # noqa: E402

KINDS = ("mac", "adder", "shift", "xnor")
PNR_LANES = 16


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=576, help="reduction length the PEs are sized for")
    parser.add_argument("--lanes", type=int, default=64, help="xnor lanes per PE")
    parser.add_argument("--array", type=int, default=4, help="rows = cols of the array placed (0: none)")
    parser.add_argument("--no-fmax", action="store_true", help="skip nextpnr")
    args = parser.parse_args(argv)
    out = ROOT / "build" / "rtl" / "bench"

    def make(kind: str, lanes: int) -> PESpec:
        return PESpec(kind, 1 if kind == "xnor" else 8, args.k, lanes=lanes)

    rows = []
    for kind in KINDS:
        pe = make(kind, args.lanes).build()
        acc = f"{pe.acc_shape.width}{'s' if pe.acc_shape.signed else 'u'}"
        path = emit_verilog(pe, f"{kind}_pe", out)
        row = {"kind": kind, "acc": acc}
        for target in ("xc7", "ice40"):
            r = synthesize(path, f"{kind}_pe", target, lut_only=True)
            row[target] = r
        if kind == "mac":
            row["xc7_dsp"] = synthesize(path, "mac_pe", "xc7", lut_only=False)
        if not args.no_fmax:
            lanes = min(args.lanes, PNR_LANES)
            pnr_path = path if kind != "xnor" or lanes == args.lanes else \
                emit_verilog(make(kind, lanes).build(), f"xnor{lanes}_pe", out)
            row["fmax_pe"] = synthesize(pnr_path, pnr_path.stem, "ice40", lut_only=True,
                                        pnr=True, outdir=out / f"{pnr_path.stem}_ice40_pnr")["fmax_mhz"]
            if args.array:
                n = args.array
                arr = SystolicArray(rows=n, cols=n, pe=make(kind, lanes))
                apath = emit_verilog(arr, f"{kind}_array{n}", out)
                r = synthesize(apath, apath.stem, "ice40", lut_only=True, pnr=True,
                               outdir=out / f"{apath.stem}_ice40_pnr")
                row["array"] = r
        rows.append(row)

    print(f"Per PE, 8-bit operands (xnor 1-bit x {args.lanes} lanes), K = {args.k}, LUT-only; "
          f"{rows[0]['xc7']['yosys']}, synth_xilinx -family xc7 -nodsp / synth_ice40")
    head = f"{'kind':6} {'acc':>4} | {'xc7 LUT':>7} {'FF':>4} {'CARRY4':>6} {'MUXF':>4} | " \
           f"{'ice40 LUT':>9} {'FF':>4} {'CARRY':>5} | {'LUT vs mac':>15} | {'Fmax PE':>7}"
    print(head)
    print("-" * len(head))
    mac = rows[0]
    for row in rows:
        x, i = row["xc7"], row["ice40"]
        ratio = f"{x['lut'] / mac['xc7']['lut']:.1%} / {i['lut'] / mac['ice40']['lut']:.1%}"
        fmax = f"{row['fmax_pe']:.0f}" if "fmax_pe" in row else "-"
        print(f"{row['kind']:6} {row['acc']:>4} | {x['lut']:7} {x['ff']:4} {x['carry']:6} {x['mux']:4} | "
              f"{i['lut']:9} {i['ff']:4} {i['carry']:5} | {ratio:>15} | {fmax:>7}")
        if row["kind"] == "xnor":
            n = args.lanes
            print(f"{'/lane':6} {'':>4} | {x['lut'] / n:7.2f} {x['ff'] / n:4.1f} {'':6} {'':4} | "
                  f"{i['lut'] / n:9.2f} {i['ff'] / n:4.1f} {'':5} |")
    d = mac["xc7_dsp"]
    print(f"(mac with DSPs on xc7: {d['lut']} LUT, {d['ff']} FF, {d['dsp']} DSP48E1)")
    if not args.no_fmax:
        print(f"Fmax: nextpnr-ice40 --hx8k --package ct256 (MHz); xnor placed at {min(args.lanes, PNR_LANES)} lanes")
        if args.array:
            n = args.array
            print(f"\n{n}x{n} array on ice40 (incl. skew registers and drain control), LUT-only:")
            for row in rows:
                a = row["array"]
                print(f"{row['kind']:6} LUT {a['lut']:6} ({a['lut'] / n / n:7.1f}/PE)  FF {a['ff']:5} "
                      f"({a['ff'] / n / n:6.1f}/PE)  Fmax {a['fmax_mhz']:.0f} MHz")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
