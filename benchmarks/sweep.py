"""Wall time of issue 14's GhostNet sweep: cold, from the cache, and on Ray (same results).

Run: ``.venv/bin/python benchmarks/sweep.py [--workers N]``. Each run is the ``hwsim`` console
script in a fresh process (imports included), with ``$HWSIM_BUILD_DIR`` a new temporary folder:

1. ``hwsim sweep ghostnet --pe mac,adder,xnor,shift --array 8x8,16x16,32x32 --bits 4,8
   --sram-kib 32,128,512 --workers N`` (default 2) on an empty cache: goal < 120 s;
2. the same again, every point from the cache: goal < 10 s;
3. the same with ``--backend ray`` on another empty cache (a local Ray instance of N CPUs,
   started and stopped by the command): its ``results.json`` points must equal the local run's.

Prints each time against its goal and the per-kind energy-latency front of the cold run; exits 1
when a goal is missed or Ray's points differ.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

AXES = ("--pe", "mac,adder,xnor,shift", "--array", "8x8,16x16,32x32", "--bits", "4,8", "--sram-kib", "32,128,512")
GOALS_S = {"cold": 120.0, "cached": 10.0}


def _sweep(build: Path, out: Path, *extra: str) -> tuple[float, list[dict], str]:
    """Run the sweep into ``out``; its wall time, points and printed output."""
    hwsim = Path(sys.executable).with_name("hwsim")
    argv = [str(hwsim), "sweep", "ghostnet", *AXES, "-o", str(out), *extra]
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "HWSIM_BUILD_DIR": str(build)})
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return seconds, json.loads((out / "results.json").read_text())["points"], done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    workers = ("--workers", str(args.workers))
    status = 0
    with tempfile.TemporaryDirectory() as tmp:
        build = Path(tmp)
        cold_s, cold, table = _sweep(build, build / "cold", *workers)
        cached_s, cached, again = _sweep(build, build / "cached", *workers)
        times = {"cold": cold_s, "cached": cached_s}
        print(table)
        hits = re.search(r"\d+ designs \((\d+) from the cache\)", again)
        print(f"second run: {hits.group(1) if hits else '?'} of {len(cold)} designs from the cache "
              "(fewer: a source file of the cost model changed between the runs)")
        for name, seconds in times.items():
            goal = GOALS_S[name]
            verdict = "meets" if seconds < goal else "MISSES"
            status = status or int(seconds >= goal)
            print(f"{name:<8}{seconds:>8.1f} s  ({verdict} the < {goal:g} s goal; {seconds / goal:.0%} of it, "
                  f"{goal / seconds:.1f}x under)")
        status = status or int(cached != cold)
        try:
            import ray  # noqa: F401
        except ImportError:
            print("ray      not installed (pip install 'hwsim[ray]'): skipped")
            return status
        ray_s, on_ray, _ = _sweep(build, build / "ray", *workers, "--backend", "ray", "--cache-dir",
                                  str(build / "ray-cache"))
        same = on_ray == cold
        status = status or int(not same)
        print(f"{'ray':<8}{ray_s:>8.1f} s  (cold, Ray instance started by the command; points "
              f"{'identical to' if same else 'DIFFER from'} the local run's)")
    return status


if __name__ == "__main__":
    sys.exit(main())
