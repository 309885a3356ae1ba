"""Speed of cocotb + Verilator co-simulation of the generated top, and its cycle fidelity.

Run: ``.venv/bin/python benchmarks/cosim_speed.py [--repeat N] [--max-size 8]``. For adder and xnor tops of 8x8 and
16x16 PEs, prints the fresh Verilator build time (into a temporary root, so the build cache does
not hide it), then co-simulates ``N`` copies of a conv layer (k=3, 16 -> 16 channels, 16x16 input,
padding 1) back to back in one simulation and prints the simulated cycles, the bench loop's
seconds, simulated cycles per second, the measured cycles of one layer against
``hwsim.rtl_timing.layer_cycles``, and whether every output equals ``int_forward``.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

from hwsim.accelerator import Accelerator, ArrayConfig, MemoryConfig, RtlConfig
from sim.build import build_top
from sim.cosim import check_fits, run_layers
from sim.layers import LayerSpec, quantized_layer

LAYER = LayerSpec("conv", 16, 16, 16, 16, kernel=3, pad=1)
CONFIGS = (("adder", 8), ("adder", 16), ("xnor", 8), ("xnor", 16))
#: Buffers that hold the layer on every config: 4096 8-bit activations, the folds of every
#: output tile with their parameters, and up to 512 output words of 8 lanes.
MEMORY = MemoryConfig(ifmap_sram_kib=4, weight_sram_kib=8, ofmap_sram_kib=8)


def max_steps(acc: Accelerator) -> int:
    """The layer's fold: 3 x 3 kernel positions times its channel words (16 channels; xnor
    packs ``lanes`` channels into a word)."""
    return 9 * -(-LAYER.cin // (acc.array.lanes if acc.pe == "xnor" else 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=4, help="layers per simulation")
    parser.add_argument("--max-size", type=int, default=16,
                        help="skip arrays larger than this (8: the quick configurations only)")
    args = parser.parse_args()
    print(f"{'pe':<7}{'array':>7}{'build s':>9}{'cycles':>9}{'sim s':>8}{'cycles/s':>10}"
          f"{'layer cycles':>14}{'predicted':>11}{'equal':>7}{'bit-exact':>11}")
    for pe, size in CONFIGS:
        if size > args.max_size:
            continue
        acc = Accelerator(pe=pe, bits=1 if pe == "xnor" else 8,
                          array=ArrayConfig(rows=size, cols=size), memory=MEMORY)
        acc = dataclasses.replace(acc, rtl=RtlConfig(max_steps=max_steps(acc)))
        ql = quantized_layer(pe, LAYER, seed=0)
        check_fits(acc, ql.q, ql.x)  # before the slow build
        with tempfile.TemporaryDirectory() as root:
            build = build_top(acc, root=Path(root))
            run = run_layers(build, [(ql.q, ql.x)] * args.repeat)
        layer = run.layers[0]
        exact = all(result.bit_exact for result in run.layers)
        print(f"{pe:<7}{f'{size}x{size}':>7}{build.build_seconds:>9.1f}{run.cycles:>9}"
              f"{run.sim_seconds:>8.2f}{run.cycles_per_second:>10.0f}{layer.cycles:>14}"
              f"{layer.predicted:>11}{'yes' if layer.cycle_exact else 'NO':>7}"
              f"{'yes' if exact else 'NO':>11}")


if __name__ == "__main__":
    main()
