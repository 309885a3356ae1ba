"""Every topology file of a SCALE-Sim v2 checkout, read by SCALE-Sim's own parser and by hwsim.

Run: ``.venv/bin/python benchmarks/scalesim_topologies.py PATH/TO/scale-sim-v2``. For each
``topologies/**/*.csv`` it loads the file with ``scalesim.topology_utils`` (GEMM ``mnk`` mode for
files under a ``*mnk*`` folder, as SCALE-Sim's configs do) and with :func:`hwsim.topology.read_topology`,
and compares the GEMM (M, K, N) of every layer. Prints the files each reads, how many agree,
every file SCALE-Sim reads that hwsim does not (the goal is none), and hwsim's reason for each
file it refuses.
"""

from __future__ import annotations

import argparse
import contextlib
import io
from pathlib import Path

from scalesim.topology_utils import topologies

from hwsim.errors import HwsimError
from hwsim.topology import read_topology


def scalesim_gemms(path: Path) -> list[tuple[int, int, int]] | None:
    """(M, K, N) per layer as SCALE-Sim reads ``path``, or None when its parser fails."""
    topo = topologies()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            topo.load_arrays(str(path), mnk_inputs="mnk" in str(path.parent).lower())
            topo.topo_calc_hyperparams()
    except (ValueError, IndexError, AssertionError):
        return None
    return [(oh * ow, window, arr[6])
            for arr, (oh, ow, _, window) in zip(topo.topo_arrays, topo.layers_calculated_hyperparams)]


def hwsim_gemms(path: Path) -> list[tuple[int, int, int]] | str:
    try:
        layers = read_topology(path).layers
    except HwsimError as exc:
        return str(exc)
    return [(m, k, n) for layer in layers for _ in range(layer.gemm[0]) for _, m, k, n in [layer.gemm]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", type=Path, help="a SCALE-Sim v2 source tree (with topologies/)")
    args = parser.parse_args()
    files = sorted((args.checkout / "topologies").rglob("*.csv"))
    if not files:
        parser.error(f"no topologies/**/*.csv under {args.checkout}")
    theirs_ok = ours_ok = equal = 0
    for path in files:
        theirs, ours = scalesim_gemms(path), hwsim_gemms(path)
        name = path.relative_to(args.checkout)
        theirs_ok += theirs is not None
        ours_ok += not isinstance(ours, str)
        if theirs is not None and isinstance(ours, str):
            print(f"MISSED  {name}: {ours}")
        elif theirs is not None and ours != theirs:
            print(f"DIFFERS {name}: SCALE-Sim {theirs[:2]}..., hwsim {ours[:2]}...")
        elif theirs is not None:
            equal += 1
        elif isinstance(ours, str):
            print(f"neither {name}: {ours}")
    print(f"{len(files)} files: SCALE-Sim reads {theirs_ok}, hwsim reads {ours_ok}; "
          f"of SCALE-Sim's {theirs_ok}, hwsim gives the same GEMMs for {equal} "
          f"({equal / max(theirs_ok, 1):.0%})")


if __name__ == "__main__":
    main()
