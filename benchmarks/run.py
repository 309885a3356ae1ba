"""The one entry command of hwsim's benchmarks: run them by name, or the quick ones all together.

Run: ``.venv/bin/python benchmarks/run.py [NAME ...] [-- ARGS]`` (``--list`` names them). With no
NAME it runs the quick set (:data:`QUICK`, a few minutes); the long ones (synthesis, place and
route, co-simulation, peers installed apart) run only when named. ARGS after ``--`` go to every
benchmark named. Each benchmark is a script of this folder, run in its own process with this
interpreter, and prints its own ratios and absolute figures; the exit code is the first failure's.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: Benchmarks of the quick set, in order (minutes on a 2-core machine).
QUICK = ("estimate_speed", "cli_speed", "fidelity", "dram_traffic", "sweep", "mapper")
#: Scripts that are drivers of another benchmark, not benchmarks.
HELPERS = ("zigzag_driver",)


def benchmarks() -> dict[str, str]:
    """Every benchmark script of this folder by name, with the first line of its docstring."""
    found = {}
    for path in sorted(HERE.glob("*.py")):
        name = path.stem
        if name == "run" or name in HELPERS:
            continue
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        found[name] = doc.splitlines()[0] if doc else ""
    return found


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (default: the quick set)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    known = benchmarks()
    if args.list:
        for name, line in known.items():
            print(f"{name:<22}{'(quick) ' if name in QUICK else ''}{line}")
        return 0
    unknown = [name for name in args.names if name not in known]
    if unknown:
        print(f"run.py: unknown benchmark {unknown[0]!r}; choose from {', '.join(known)}", file=sys.stderr)
        return 2
    status = 0
    for name in args.names or QUICK:
        print(f"\n=== {name}: {known[name]}", flush=True)
        code = subprocess.call([sys.executable, str(HERE / f"{name}.py"), *extra])
        status = status or code
    return status


if __name__ == "__main__":
    sys.exit(main())
