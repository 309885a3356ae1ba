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

Measured 2026-12-06 on this 2-core machine shared with two other sessions, ``--baseline 30eaaa5``
(old = the harness with its clock in time, ``--timing``, and text streams; new = the clock in
bursts of delta cycles, ``sim/hdl/clock.sv``, and binary streams read with ``$fread``), old and
new run one after the other, at a load average of 6 to 10 throughout. Build: wall seconds (CPU
seconds of every compiler process; make runs two at once); speed: simulated cycles per wall
second (per CPU second of the simulator). At such a load the wall figures say more about the
other sessions than about the simulator; the CPU figures are the comparison:

===========  ==================  ==================  ==================  ==================
top          old build           old speed           new build           new speed
===========  ==================  ==================  ==================  ==================
adder 8x8    93.2 s (29.3)       116 k (559 k)       80.7 s (26.7)       531 k (1079 k)
mac 8x8      96.1 s (29.7)       155 k (700 k)       60.6 s (26.3)       430 k (1049 k)
shift 8x8    96.0 s (29.7)       159 k (627 k)       71.3 s (26.7)       218 k (996 k)
xnor 8x8     138.8 s (35.2)      71.8 k (216 k)      102.3 s (31.8)      87.4 k (265 k)
adder 16x16  130.6 s (44.9)      97.9 k (296 k)      142.0 s (39.8)      267 k (401 k)
xnor 16x16   395.1 s (72.6)      18.1 k (58.7 k)     225.0 s (62.9)      14.1 k (60.2 k)
===========  ==================  ==================  ==================  ==================

Then ``--baseline 30eaaa5 --max-size 8`` once more as the load fell (4.0 to 7.2):

===========  ==================  ==================  ==================  ==================
top          old build           old speed           new build           new speed
===========  ==================  ==================  ==================  ==================
adder 8x8    26.7 s (25.2)       666 k (679 k)       38.5 s (21.7)       773 k (1136 k)
mac 8x8      42.4 s (25.7)       501 k (713 k)       37.3 s (21.3)       719 k (1134 k)
shift 8x8    40.9 s (25.1)       434 k (662 k)       37.9 s (22.4)       705 k (1010 k)
xnor 8x8     56.7 s (27.9)       155 k (234 k)       53.8 s (26.6)       169 k (270 k)
===========  ==================  ==================  ==================  ==================

During the work, at a load of 1.6 to 2.3, the adder 8x8 ran at 686 k cycles per wall second
(693 k per CPU second) on the old path and at 1050 k (1051 k) with the delta clock alone (the
binary streams added about 3 % more, measured alternating with the text ones at load 7). So an
adder 8x8 reaches 1 M cycles per second of wall time on a quiet machine, and per CPU second at
every load measured here (1.05 to 1.14 M; mac 1.05 to 1.13 M, shift 1.0 M); at a load of 6 to 10
on two cores the process gets well under one core and the wall figure drops with it. The xnor
8x8 build takes 27 to 32 CPU seconds (old 28 to 35): 54 s of wall time at a load of 5 to 7 and
102 s at 7 to 10 (old 57 s and 139 s), so it exceeds 90 s only on a machine this loaded; the
xnor 16x16 rows differ in wall time by the load alone (60 k against 59 k per CPU second).

Where the time goes (perf, adder 8x8): in the old path about 52 % of the simulator process was
the top's own evaluation and 18 % Verilator's timing scheduler and cocotb's loop, which ran
twice per cycle; with the delta clock the scheduler and cocotb's loop run once per burst (2**29
cycles), and about 90 % of the simulator process is the top's evaluation (the rest: reading the
streams, the harness's counting, start-up), so the model itself, about 0.85 us per cycle for
an adder 8x8 on this CPU, is the limit now. An xnor 8x8 (64 lanes) takes about 3.7 us per cycle,
nearly all of it in its model, so the scheduler's share was small there and the gain (+15 %) is
too. Tried without a gain beyond the noise (adder 8x8, 1.02 to 1.07 M cycles per
CPU second against 1.05 M): the model's C++ at ``OPT_FAST=-O3``, ``-march=native``, one C++ file
instead of ``--output-split``, ``--x-initial fast``.

The same evening (16:55 UTC, load 1.2-1.5), ``--baseline 5640398`` (the delta-clock branch) against
main with the bus-word activation beats, the residual add, the two out banks and one activation
copy per row (the benchmark's layer now takes 12,081 cycles, not 15,665): adder 8x8 1,091 k ->
1,009 k cycles per wall second, mac 1,145 k -> 1,012 k, shift 1,004 k -> 872 k, xnor 267 k ->
266 k; builds 13-24 s -> 15-27 s. The top's model got 7-13 % slower per cycle (the lane
multiplexers of the operand fetch and the out-bank multiplexers); an adder 8x8 stays at about 1 M
cycles per second (a first run at load 1.0 gave 864 k).

After the inputs were double-buffered (two banks of every buffer, two controller FSMs; later the
same day, 18:53-19:10 UTC, load 3.0-3.7, so per CPU second is the figure to read): ``--baseline
7980471`` (the session's start) against the two banks with both banks read every cycle, then
with the idle bank's read enable off (the final design):

===========  ==================  ==================  ==================  ==================
top          start build         start speed         both banks read     idle bank not read
===========  ==================  ==================  ==================  ==================
adder 8x8    47.0 s (28.2)       459 k (921 k)       432 k (793 k)       469 k (938 k)
mac 8x8      46.6 s (27.4)       485 k (972 k)       424 k (863 k)       470 k (1011 k)
shift 8x8    49.4 s (28.5)       498 k (923 k)       461 k (867 k)       314 k (628 k) *
xnor 8x8     67.2 s (30.3)       128 k (258 k)       129 k (259 k)       263 k (264 k)
===========  ==================  ==================  ==================  ==================

(builds of the final design 47-52 s wall, 26-31 CPU s; * the shift row ran while a Yosys job
took the other core, its 3.2 s of simulation against 2.0-2.2 s in the other runs.) Reading the
bank the run does not use cost 9-14 % per cycle; without it the model is as fast as before the
banks, at about 1 M cycles per CPU second for the adder and mac 8x8.

With the banked activation buffer (main at afe4861, 2026-12-07 10:11-10:14 UTC, load 1.6-2.3,
``--max-size 8``; every layer cycle-exact and bit-exact):

===========  ==================  ==================
top          build               speed
===========  ==================  ==================
adder 8x8    28.9 s (26.9)       800 k (802 k)
mac 8x8      28.3 s (26.6)       772 k (778 k)
shift 8x8    22.4 s (27.4)       717 k (717 k)
xnor 8x8     36.9 s (32.2)       205 k (206 k)
===========  ==================  ==================

The model got about a quarter slower per cycle than with a copy per row (adder 1.05 M -> 0.80 M
per CPU second): the banks' crossbar (each row's B:1 choice of a 64-bit word), the step's
record through the request register, the service stage and three beat stages, the residues --
logic the model evaluates every cycle. So the adder 8x8 is now below the 1 M cycles per second
of the issue. Tried on it (two runs each, 0.70-0.82 M against 0.75-0.81 M as built): the C++ at
``OPT_FAST=-Os``, ``-O1`` (0.66-0.68 M: slower) and ``-O3``, ``--inline-mult 100000``, and
``--threads 2`` (21-57 k: the threads synchronise at every delta cycle of the clock); not reading
the banks no row asks for (now the design's: fewer block RAM reads) stayed within the noise too.
``perf`` puts the harness process's time in the model's code, spread over thousands of
straight-line blocks with no hot spot.

Tried later (main at 638f923, adder 8x8, 95 layers, 0.71-0.75 M as built at load 0.9): the
fetch's 179-bit step record as one signal per field (each a native word to Verilator): 0.68-0.73
M, no change; GCC profile-guided optimisation of the model (``-fprofile-generate``, a training
run, ``-fprofile-use``): 0.61-0.85 M against 0.55-0.68 M at a load of 2, within the noise and a
second build, not adopted. ``perf``: 82 % of the simulator process is the model's
``nba_sequent`` functions, which run once per cycle (on the rising edge only, checked in the
generated ``_eval_nba``); the array's PEs and drains are about half of the signals they touch
and the fetch a quarter: the model is bound by the design's size per cycle, not by the harness.

Then the design was made leaner per cycle, without a cycle or a result changing (2026-12-07,
main fd1af3b and 71816bd, quiet machine, load 0.3-1.5). Where the time went came from a
``--prof-cfuncs`` build under ``perf`` (Verilator names each function by its Verilog line, so
the samples add up per module: PEs 35 %, the array's own registers 21 %, fetch 13 %, controller
9 %, output stage 6 %) and from counting the Verilog each source line emits. Steps, adder 8x8,
95 layers per run (``/tmp`` A/B script, build kept, runs alternating with the start revision's):

* the drains' capture signals: one delay line of the fold's last beat for every anti-diagonal
  instead of a chain per row and a register per PE (108 registers -> 18 for 8x8), and a shift
  mask instead of a ``count < r`` compare per drain register: 0.79 M -> 0.89 M;
* the requantization's range mask as one shift of ones (``Cat`` of a compare per product bit
  was 1,176 Verilog statements for 8 lanes): -> 0.97 M;
* the walker's pixel record built once (it was built inside the loop over rows: 8 copies), the
  three beat stages behind the fetch carrying only the fields read there: ~0.99 M;
* the pairs' flags on one delay line per array, read by every PE of an anti-diagonal, instead of
  four flag registers in each PE (Yosys merged them in synthesis anyway: the calibrated arrays'
  FFs changed by 0.1 %): -> 1.02-1.06 M.

The adder and shift PEs' conditional negation and the requantization's sign test as a select
of all-ones instead of ``replicate()`` (which Verilator turns into a bit-by-bit expression) were
in these steps and taken out again: Yosys maps the select into 8 more LUTs per adder PE on xc7
(45 -> 53 at 8 bits, k = 64; ecp5 equal), for a gain within the noise (A/B of the two at load
1.2-1.7: 0.69-0.87 M with the select, 0.67-0.95 M without). Resetting fewer
registers (the PE's data registers reset-less), Yosys ``opt`` or ``flatten; opt``
on the Verilog before Verilator (0.63 M: Yosys's netlist style is slower to simulate than
Amaranth's), a signal for the fetch's per-row ``lowest`` flag and a clock enable on the
depthwise edge registers changed nothing measurable. At the end, A/B on one quiet machine
(cycles per CPU second, 3 runs each of 95 layers): adder 0.76-0.78 M -> 1.02-1.06 M, mac
0.61-0.78 M -> 0.90-1.00 M, shift 0.66-0.72 M -> 0.86-0.91 M; and this benchmark
(``--max-size 8 --baseline ff41a77``, one run each, 16:20 UTC, load 1.3-1.6):

===========  ==================  ==================  ==================  ==================
top          before build        before speed        after build         after speed
===========  ==================  ==================  ==================  ==================
adder 8x8    22.3 s (33.5)       619 k (619 k)       16.3 s (24.8)       949 k (949 k)
mac 8x8      21.4 s (30.0)       789 k (789 k)       20.4 s (31.7)       796 k (797 k)
shift 8x8    22.3 s (31.2)       700 k (700 k)       17.4 s (26.1)       890 k (890 k)
xnor 8x8     36.5 s (38.2)       201 k (201 k)       29.4 s (31.6)       228 k (228 k)
===========  ==================  ==================  ==================  ==================

(one 1.3 s run of the mac each: the A/B runs above put it at +28 %, as the shift.)
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
