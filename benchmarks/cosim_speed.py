"""Speed of cocotb + Verilator co-simulation of the generated top, and its cycle fidelity.

Run: ``.venv/bin/python benchmarks/cosim_speed.py [--min-cycles N] [--max-size 8] [--baseline REV]``.
For each PE kind at 8x8 PEs and adder and xnor at 16x16 (xnor with the default 64 lanes), prints
the fresh Verilator build time (into a temporary root, so the build cache does not hide it; wall
and CPU seconds, the CPU of every compiler process included), then co-simulates copies of a conv
layer (k=3, 16 -> 16 channels, 16x16 input, padding 1) back to back in one simulation, at least
``N`` cycles, and prints the simulated cycles, the harness's run seconds, simulated cycles per
wall second and per CPU second of the simulator, the measured cycles of one layer against
``hwsim.rtl_timing.layer_cycles``, and whether every output equals ``int_forward``. The machine's
load average is printed with every row: the wall figures of a loaded machine understate the
speed, the CPU figures do not.

``--baseline REV`` first runs this benchmark as it was at git revision ``REV`` (its own code, in a
temporary export of that revision), e.g. the last revision with the per-beat cocotb bench, for the
old-vs-new comparison.

Measured 2026-12-06 on this 2-core machine shared with other sessions: ``--baseline 99cd661
--max-size 8`` at load average 3.4-5.5 (old = the per-beat cocotb bench of that revision), then
the new path alone at load 0.6-1.4. Build: wall seconds (CPU seconds of every compiler process;
more than the wall when make runs two at once); speed: simulated cycles per wall second (per CPU
second of the simulator):

===========  ================  ==============================  ==============================
top          old, load 4-5     new, load 3.4-5.5               new, load 0.6-1.4
===========  ================  ==============================  ==============================
adder 8x8    60.6 s, 26.5 k    35.5 s (27.7), 690 k (698 k)    14.5 s (23.3), 712 k (712 k)
mac 8x8      --                40.4 s (25.9), 480 k (723 k)    14.1 s (23.2), 732 k (732 k)
shift 8x8    --                51.1 s (30.8), 328 k (668 k)    14.4 s (23.3), 683 k (683 k)
xnor 8x8     287.1 s, 10.6 k   86.0 s (35.1), 167 k (235 k)    24.8 s (27.6), 232 k (232 k)
adder 16x16  --                --                              24.2 s (34.3), 343 k (343 k)
xnor 16x16   --                --                              69.8 s (58.0), 57.9 k (57.9 k)
===========  ================  ==============================  ==============================

(xnor with the default 64 lanes. An earlier old-path run at load 5-6: adder 8x8 build 106 s,
19.3 k c/s.) Where the new path's time goes (perf, adder 8x8, unloaded): about 52 % of the
simulator process's CPU is the top's own evaluation (about 1.05 us per cycle, so the model
alone stays under 1 M cycles/s on this CPU), 18 % Verilator's scheduler and cocotb's
per-time-step loop, the rest start-up and reading back.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from hwsim.accelerator import Accelerator, ArrayConfig, MemoryConfig, RtlConfig
from sim.build import build_top
from sim.cosim import check_fits, run_layers
from sim.layers import LayerSpec, quantized_layer

LAYER = LayerSpec("conv", 16, 16, 16, 16, kernel=3, pad=1)
CONFIGS = (("adder", 8), ("mac", 8), ("shift", 8), ("xnor", 8), ("adder", 16), ("xnor", 16))
#: Buffers that hold the layer on every config: 4096 8-bit activations, the folds of every
#: output tile with their parameters, and up to 512 output words of 8 lanes.
MEMORY = MemoryConfig(ifmap_sram_kib=4, weight_sram_kib=8, ofmap_sram_kib=8)
REPO = Path(__file__).resolve().parents[1]


def max_steps(acc: Accelerator) -> int:
    """The layer's fold: 3 x 3 kernel positions times its channel words (16 channels; xnor
    packs ``lanes`` channels into a word)."""
    return 9 * -(-LAYER.cin // (acc.array.lanes if acc.pe == "xnor" else 1))


def children_cpu() -> float:
    """CPU seconds of every finished child process so far (compilers and simulators)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def load() -> str:
    return "/".join(f"{value:.1f}" for value in os.getloadavg())


def baseline(rev: str, max_size: int) -> None:
    """Run this benchmark as of git revision ``rev`` from a temporary export of it."""
    with tempfile.TemporaryDirectory() as tree:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", rev], check=True,
                                 capture_output=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tree, filter="data")
        print(f"baseline {rev} (load {load()}):", flush=True)
        subprocess.run([sys.executable, "benchmarks/cosim_speed.py", "--max-size", str(max_size)],
                       cwd=tree, env={**os.environ, "PYTHONPATH": tree}, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-cycles", type=int, default=1_000_000,
                        help="simulate at least this many cycles per configuration")
    parser.add_argument("--max-size", type=int, default=16,
                        help="skip arrays larger than this (8: the quick configurations only)")
    parser.add_argument("--baseline", metavar="REV", help="first run this benchmark at git revision REV")
    args = parser.parse_args()
    if args.baseline:
        baseline(args.baseline, args.max_size)
    print(f"{'pe':<7}{'array':>6}{'build s':>9}{'cpu s':>7}{'cycles':>9}{'sim s':>7}{'cycles/s':>10}"
          f"{'cyc/cpu s':>11}{'layer':>7}{'predicted':>10}{'equal':>6}{'exact':>6}  load 1/5/15 min")
    for pe, size in CONFIGS:
        if size > args.max_size:
            continue
        acc = Accelerator(pe=pe, bits=1 if pe == "xnor" else 8,
                          array=ArrayConfig(rows=size, cols=size), memory=MEMORY)
        acc = dataclasses.replace(acc, rtl=RtlConfig(max_steps=max_steps(acc)))
        ql = quantized_layer(pe, LAYER, seed=0)
        check_fits(acc, ql.q, ql.x)  # before the slow build
        with tempfile.TemporaryDirectory() as root:
            cpu = children_cpu()
            build = build_top(acc, root=Path(root))
            build_cpu = children_cpu() - cpu
            first = run_layers(build, [(ql.q, ql.x)])
            repeat = -(-args.min_cycles // first.layers[0].predicted)
            run = run_layers(build, [(ql.q, ql.x)] * repeat)
        layer = run.layers[0]
        exact = all(result.bit_exact for result in run.layers)
        print(f"{pe:<7}{f'{size}x{size}':>6}{build.build_seconds:>9.1f}{build_cpu:>7.1f}{run.cycles:>9}"
              f"{run.sim_seconds:>7.2f}{run.cycles_per_second:>10.0f}{run.cycles_per_cpu_second:>11.0f}"
              f"{layer.cycles:>7}{layer.predicted:>10}{'yes' if layer.cycle_exact else 'NO':>6}"
              f"{'yes' if exact else 'NO':>6}  {load()}", flush=True)


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"total {time.perf_counter() - start:.0f} s")
