"""Speed of `hwsim estimate` on ResNet-50 and GhostNet, model construction excluded.

Run: ``.venv/bin/python benchmarks/estimate_speed.py [--repeat N]`` (or ``benchmarks/run.py estimate_speed``). Prints, per network and PE kind, the median
wall time of workload extraction (one shape-only forward pass) and of the estimate proper (mapping
and costing every layer, with the mapping memo cleared each time, as in a fresh ``hwsim`` process),
their sum, and the ratio to the 50 ms goal.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from hwsim.accelerator import preset
from hwsim.extract import extract
from hwsim.mapping import clear_cache
from hwsim.simulate import estimate
from models.convert import convert
from models.registry import load_model

GOAL_MS = 50.0


def _median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm caches (technology table, torch dispatch)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    print(f"{'network':<12}{'pe':<7}{'layers':>7}{'extract ms':>12}{'estimate ms':>13}{'total ms':>10}{'vs 50 ms':>10}")
    for name in ("resnet50", "ghostnet"):
        net, shape, entry = load_model(name)
        for pe in ("mac", "adder"):
            model = net if pe == entry.pe else convert(net, pe, input_shape=shape)
            acc = preset(pe)
            workload = extract(model, shape, name=name)
            t_extract = _median_ms(lambda: extract(model, shape, name=name), args.repeat)
            t_estimate = _median_ms(lambda: (clear_cache(), estimate(workload, acc)), args.repeat)
            total = t_extract + t_estimate
            print(f"{name:<12}{pe:<7}{len(workload.layers):>7}{t_extract:>12.2f}{t_estimate:>13.2f}"
                  f"{total:>10.2f}{total / GOAL_MS:>9.2f}x")


if __name__ == "__main__":
    main()
