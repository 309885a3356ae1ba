"""Wall time of the whole `hwsim estimate ghostnet --pe adder` command against bare `import torch`.

Run: ``.venv/bin/python benchmarks/cli_speed.py [--repeat N]``. Both are fresh processes on this
machine, one unmeasured warm-up each (so .pyc compilation is not counted), then the median of
``N`` runs (default 3): ``python -c "import torch"`` with this interpreter, and the ``hwsim``
console script next to it. Prints both times and the command's ratio to torch's against the
1.5x goal (issue 9: torch's import is the floor every run pays, everything else is hwsim's).
Then, in this process, ghostnet's extraction: the first call (which pays any lazy import it
triggers, as the command does) and the median of later calls, and ``retarget`` of the adder
workload to the mac baseline, the step that replaces a second build, convert and extract.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

GOAL_RATIO = 1.5
COMMAND = ("estimate", "ghostnet", "--pe", "adder")


def _wall_s(argv: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return elapsed


def _median_s(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    hwsim = Path(sys.executable).with_name("hwsim")
    if not hwsim.is_file():
        raise SystemExit(f"no hwsim console script next to {sys.executable}; pip install -e . first")
    runs = {"import torch": [sys.executable, "-c", "import torch"],
            "hwsim " + " ".join(COMMAND): [str(hwsim), *COMMAND]}
    medians = {}
    for label, argv in runs.items():
        _wall_s(argv)
        medians[label] = statistics.median(_wall_s(argv) for _ in range(args.repeat))
    torch_s, command_s = medians.values()
    for label, seconds in medians.items():
        print(f"{label:<38}{seconds:>8.2f} s  (median of {args.repeat})")
    ratio = command_s / torch_s
    verdict = "meets" if ratio <= GOAL_RATIO else "misses"
    print(f"{'ratio':<38}{ratio:>8.2f} x  ({verdict} the {GOAL_RATIO}x goal)")

    from hwsim.extract import extract, retarget
    from models.convert import convert
    from models.registry import load_model

    net, shape, _ = load_model("ghostnet")
    start = time.perf_counter()
    extract(net, shape, name="ghostnet")
    first_s = time.perf_counter() - start
    warm_s = _median_s(lambda: extract(net, shape, name="ghostnet"), 5)
    adder = extract(convert(net, "adder", input_shape=shape), shape, name="ghostnet")
    retarget_s = _median_s(lambda: retarget(adder, "mac", 8), 5)
    print(f"{'in-process extract ghostnet, first':<38}{first_s * 1e3:>8.1f} ms")
    print(f"{'in-process extract ghostnet, median':<38}{warm_s * 1e3:>8.1f} ms")
    print(f"{'in-process retarget adder -> mac':<38}{retarget_s * 1e3:>8.1f} ms")


if __name__ == "__main__":
    main()
