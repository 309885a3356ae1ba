"""Speed and cycle fidelity of the network accelerator's co-simulation (AXI memory, one start).

Run: ``.venv/bin/python benchmarks/run.py network_cosim [-- --images 8 --latencies 1,30]``.
For adder and xnor (8 lanes) 8x8 arrays with small buffers (2 KiB activations, 8 KiB weights,
4 KiB outputs, so the layers run as tiles), builds the network accelerator fresh (into a
temporary root: the build cache does not hide the time; wall and CPU seconds of the compiler
processes), then runs a three-layer chain (3x3 conv 16 -> 32 on 16x16, 3x3 conv 32 -> 32 stride 2,
1x1 conv 32 -> 16) on ``--images`` inputs from one command list at each memory latency, and prints
the commands, the simulated cycles against :func:`hwsim.rtl_sequence.sequence_cycles`, the layer
top alone (:func:`hwsim.rtl_timing.tiles_cycles`, a host streaming at full rate), simulated
cycles per wall and per CPU second, and whether every byte and output equals the reference.

Measured 2026-12-06 (load average 3.4-3.5), 8 images, final design of the session (the write
DMA takes a beat a cycle, the read DMA has a setup cycle):

=========  =========  ========  ====================  ===============  ======================
top        build      latency   cycles (= predicted)  top alone        cycles/s (per CPU s)
=========  =========  ========  ====================  ===============  ======================
adder 8x8  25.4 s     1         622,032 (801 cmds)    606,928 (1.02x)  690 k (710 k)
adder 8x8             30        859,973               (1.42x)          719 k (730 k)
xnor 8x8   23.3 s     1         97,160 (241 cmds)     93,504 (1.04x)   687 k (689 k)
xnor 8x8              30        117,493               (1.26x)          707 k (707 k)
=========  =========  ========  ====================  ===============  ======================

The same after the harness's clock moved to bursts of delta cycles (``sim/hdl/clock.sv``),
measured at a load average of 7.7 to 10 (the wall figures suffer from the load, the CPU figures
much less); the cycles are unchanged:

=========  ===================  ========  ====================  ========================
top        build (CPU s)        latency   cycles (= predicted)  cycles/s (per CPU s)
=========  ===================  ========  ====================  ========================
adder 8x8  51.0 s (22.7)        1         622,032               233 k (1061 k)
adder 8x8                       30        859,973               242 k (1096 k)
xnor 8x8   68.9 s (23.7)        1         97,160                644 k (1058 k)
xnor 8x8                        30        117,493               691 k (1100 k)
=========  ===================  ========  ====================  ========================

After a bus word of activations per beat, the two out banks with the store engine and each tile's
STORE after the next tile's loads (the same day, 16:53 UTC, load average 0.1-1.0): 36 % fewer cycles
for adder at latency 1 (20 % for xnor), still equal to the model, every byte exact:

=========  ===================  ========  ====================  ===============  ======================
top        build (CPU s)        latency   cycles (= predicted)  top alone        cycles/s (per CPU s)
=========  ===================  ========  ====================  ===============  ======================
adder 8x8  14.5 s (21.3)        1         398,648 (801 cmds)    383,688 (1.04x)  891 k (891 k)
adder 8x8                       30        635,317               (1.66x)          959 k (959 k)
xnor 8x8   15.3 s (23.9)        1         75,728 (241 cmds)     72,424 (1.05x)   838 k (838 k)
xnor 8x8                        30        93,157                (1.29x)          749 k (749 k)
=========  ===================  ========  ====================  ===============  ======================

After the inputs were double-buffered (a tile loads while the one before runs; tilings chosen by
their overlapped total, which now favours more, smaller output tiles: 1,161 commands for adder)
and the sequencer's store queue (later the same day, 19:04 UTC, load average 3.1-3.6; wall figures
halved by the load): 23 % fewer cycles again for adder at latency 1, 17 % at 30; still equal to
the model, every byte exact:

=========  ===================  ========  ====================  ===============  ======================
top        build (CPU s)        latency   cycles (= predicted)  top alone        cycles/s (per CPU s)
=========  ===================  ========  ====================  ===============  ======================
adder 8x8  45.4 s (26.3)        1         307,896 (1161 cmds)   290,632 (1.06x)  436 k (768 k)
adder 8x8                       30        527,717               (1.82x)          428 k (862 k)
xnor 8x8   45.0 s (25.7)        1         72,072 (321 cmds)     69,680 (1.03x)   402 k (817 k)
xnor 8x8                        30        83,957                (1.20x)          424 k (852 k)
=========  ===================  ========  ====================  ===============  ======================
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from hwsim.accelerator import Accelerator, ArrayConfig, MemoryConfig, RtlConfig
from hwsim.rtl_plan import top_geometry
from hwsim.rtl_timing import tiles_cycles
from rtl.host import tiles
from sim.build import build_top
from sim.layers import LayerSpec, quantized_layer
from sim.netcosim import run_chain

MEMORY = MemoryConfig(ifmap_sram_kib=2, weight_sram_kib=8, ofmap_sram_kib=4)
SPECS = (LayerSpec("conv", 16, 32, 16, 16, kernel=3, pad=1),
         LayerSpec("conv", 32, 32, 16, 16, kernel=3, stride=2, pad=1),
         LayerSpec("conv", 32, 16, 8, 8, kernel=1))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(kind: str, images: int, latencies: list[int]) -> None:
    acc = Accelerator(pe=kind, bits=1 if kind == "xnor" else 8, memory=MEMORY,
                      array=ArrayConfig(rows=8, cols=8, lanes=8), rtl=RtlConfig(max_steps=288))
    layers = [quantized_layer(kind, spec, seed=i, **({"binary_out": i < 2} if kind == "xnor" else {}))
              for i, spec in enumerate(SPECS)]
    qs = [ql.q for ql in layers]
    inputs = [layers[0].x[:, :, ::1 if i % 2 == 0 else -1, :].copy() for i in range(images)]
    with tempfile.TemporaryDirectory(prefix="netbench-") as root:
        cpu = _children_cpu()
        start = time.perf_counter()
        build = build_top(acc, network=True, root=Path(root))
        wall, cpu = time.perf_counter() - start, _children_cpu() - cpu
        geo, shape, alone = top_geometry(acc), (16, 16), 0
        for q in qs:
            alone += tiles_cycles(geo, tiles(geo, q, shape))["total"]
            shape = ((shape[0] + 2 * q.padding[0] - q.kernel_size[0]) // q.stride[0] + 1,) * 2
        print(f"{kind} 8x8 network accelerator: build {wall:.1f} s ({cpu:.1f} CPU s), load "
              f"{os.getloadavg()[0]:.1f}")
        for latency in latencies:
            r = run_chain(build, qs, inputs, read_latency=latency, write_latency=latency)
            print(f"  latency {latency:>3}: {r.commands} commands, {r.cycles:,} cycles "
                  f"{'==' if r.cycles == r.predicted else '!='} predicted {r.predicted:,}; layer top alone "
                  f"{alone * images:,} ({r.cycles / (alone * images):.2f}x); {r.cycles_per_second:,.0f} "
                  f"cycles/s ({r.cycles / max(r.sim_cpu_seconds, 1e-9):,.0f} per CPU s); "
                  f"{'bit-exact' if r.bit_exact else f'MISMATCHES {r.mismatches}'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--latencies", default="1,30")
    parser.add_argument("--kinds", default="adder,xnor")
    args = parser.parse_args()
    for kind in args.kinds.split(","):
        run(kind, args.images, [int(v) for v in args.latencies.split(",")])


if __name__ == "__main__":
    main()
