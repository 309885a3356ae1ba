"""The search mapper against the fixed heuristic: energy, latency, EDP and search time per network.

Run: ``.venv/bin/python benchmarks/mapper.py [--models resnet18,ghostnet,resnet50] [--pe mac]``
(or ``benchmarks/run.py mapper``). For each network on the PE kind's preset accelerator (16x16
output-stationary, 64 KiB buffers) it estimates the network with ``schedule.mapper: heuristic`` and
with ``search`` for each objective (energy, EDP), and on a flexible array (``array.dataflows: [os,
ws, is]``), and prints energy, latency and EDP, their ratios to the heuristic (below 1: the search
gains), the number of layers whose mapping changed, and the wall time of each estimate (the
search's per-estimate memo starts empty; the goal for the whole of ResNet-50 is 30 s). A ratio
above 1 on the objective searched would be a bug: the script exits non-zero.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

from hwsim import api
from hwsim.mapping import clear_cache
from hwsim.simulate import Report, estimate

GOAL_S = 30.0


def _timed(workload, acc) -> tuple[Report, float]:
    clear_cache()
    start = time.perf_counter()
    report = estimate(workload, acc)
    return report, time.perf_counter() - start


def _changed(a: Report, b: Report) -> int:
    return sum((r.tile_m, r.tile_k, r.tile_n, r.loop_order, r.dataflow) != (s.tile_m, s.tile_k, s.tile_n,
                                                                         s.loop_order, s.dataflow)
               for r, s in zip(a.layers, b.layers) if r.dataflow)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet18,ghostnet,resnet50")
    parser.add_argument("--pe", default="mac")
    args = parser.parse_args()
    status = 0
    print(f"{'network':<10}{'mapper':<26}{'energy uJ':>11}{'latency ms':>12}{'EDP uJ*ms':>12}{'E ratio':>9}"
          f"{'lat ratio':>10}{'EDP ratio':>10}{'changed':>9}{'time s':>8}")
    for model in args.models.split(","):
        (workload,) = api.workloads(model, [(args.pe, 8)])
        base = api.resolve_accelerator(pe=args.pe)
        flexible = dataclasses.replace(base, array=dataclasses.replace(base.array, dataflows=("os", "ws", "is")))
        fixed, fixed_s = _timed(workload, base)
        f_e, f_l = fixed.energy_uj, fixed.latency_ms
        print(f"{model:<10}{'heuristic':<26}{f_e:>11.1f}{f_l:>12.3f}{f_e * f_l:>12.1f}{1:>9.4f}{1:>10.4f}{1:>10.4f}"
              f"{0:>9}{fixed_s:>8.2f}")
        for label, acc, objective in (("search energy", base, "energy"), ("search edp", base, "edp"),
                                      ("search edp, os/ws/is", flexible, "edp")):
            acc = dataclasses.replace(acc, schedule=dataclasses.replace(acc.schedule, mapper="search",
                                                                        objective=objective))
            found, seconds = _timed(workload, acc)
            e, lat = found.energy_uj, found.latency_ms
            ratios = {"energy": e / f_e, "latency": lat / f_l, "edp": e * lat / (f_e * f_l)}
            print(f"{'':<10}{label:<26}{e:>11.1f}{lat:>12.3f}{e * lat:>12.1f}{ratios['energy']:>9.4f}"
                  f"{ratios['latency']:>10.4f}{ratios['edp']:>10.4f}{_changed(fixed, found):>9}{seconds:>8.2f}"
                  + (f"  ({seconds / GOAL_S:.2f}x the {GOAL_S:g} s goal)" if model == "resnet50" else ""))
            if ratios[objective] > 1 + 1e-9:
                print(f"  error: the search raised {objective} on {model}", file=sys.stderr)
                status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
