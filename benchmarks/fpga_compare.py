"""The AdderNet FPGA comparison end to end: ``hwsim report fpga-compare`` with its wall time.

Runs the command on a fresh build folder (Verilator builds, synthesis and placement all included)
and prints its tables, the wall time and whether it met the issue's budget (a 4x4 array in under
15 minutes on 2 cores). The full-size run does not fit the LFE5U-85F (a LUT-only 16x16 mac is
86,470 LUTs; every standalone 16x16 array has more ports than the package has pins), so it is
synthesized only (Fmax, power and energy estimated; see ``--place`` of the command), 24-27 min on 2
shared cores: ``-- --array 16x16 --place none --layer "conv k=3 cin=16 cout=16 h=8 w=8 pad=1"``.

Run: ``.venv/bin/python benchmarks/run.py fpga_compare [-- --array 16x16 --place none --target ecp5]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from hwsim.files import BUILD_ENV
from hwsim_cli import main as hwsim

#: Seconds the issue allows a 4x4 comparison.
BUDGET_4X4_S = 15 * 60


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--array", default="4x4", help="PE array (default 4x4)")
    parser.add_argument("--target", default="ecp5", help="ecp5 or ice40 (default ecp5)")
    parser.add_argument("--place", default="all", help="all, fitting or none (default all)")
    parser.add_argument("--pe", default="mac,adder,xnor,shift", help="PE kinds (default all)")
    parser.add_argument("--layer", help="the co-simulated layer (default: the command's)")
    parser.add_argument("-o", "--output", help="folder for the report (default: a temporary one)")
    args = parser.parse_args(argv)
    layer = ["--layer", args.layer] if args.layer else []
    with tempfile.TemporaryDirectory(prefix="fpga-compare-") as scratch:
        os.environ[BUILD_ENV] = os.path.join(scratch, "build")
        out = args.output or os.path.join(scratch, "report")
        start = time.perf_counter()
        code = hwsim(["report", "fpga-compare", "--array", args.array, "--target", args.target, "--place", args.place,
                      "--pe", args.pe, *layer, "-o", out])
        seconds = time.perf_counter() - start
    budget = f" (budget {BUDGET_4X4_S / 60:.0f} min: {'met' if seconds < BUDGET_4X4_S else 'MISSED'})" \
        if args.array == "4x4" else ""
    print(f"fpga-compare {args.array} ({args.pe}, --place {args.place}) on {args.target}: {seconds / 60:.1f} min "
          f"from a cold build folder{budget}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
