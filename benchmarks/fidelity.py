"""Issue 15's fidelity targets, measured: energy split, cycles, utilization, area and datapath / MAC
ratios of the preset accelerators, in the default model and with every issue-15 knob at its naive
setting.

Run: ``.venv/bin/python benchmarks/fidelity.py [--only ghostnet,resnet18]``. Prints, per network and
mode, the datapath kind and its MAC baseline side by side (energy per inference split into compute,
on-chip SRAM + registers, DRAM and leakage; cycles; utilization of the compute layers; chip area),
the ratios, the chip-only ratio (energy without DRAM) and the checks of the issue:

* GhostNet int8 batch 1: adder/MAC energy <= 0.95 and chip-only <= 0.85, adder chip smaller than
  the MAC chip, utilization >= 25 %, energy (dynamic, and with leakage) from 64 KiB to 1 MiB buffers;
* ResNet-18: ``os`` and ``ws`` utilization >= 80 %, stalls < 3 % of cycles;
* shift/MAC on ResNet-18 next to a MAC baseline whose weights are stored as the shift codes' 5
  bits (the weight-width effect apart from the datapath effect); xnor/MAC on Bi-Real-18.

"naive" sets ``array.fold_overlap: false``, ``array.depthwise: gemm``, ``schedule.residency:
layerwise``, ``schedule.fusion: none``, ``memory.dram: ddr3``, ``memory.sram_bank_kib: 0``,
``power.leakage: false``, ``power.clock_gating: 1.0``, ``power.sram_bank_gating: false``: the knobs of the model before issue 15
(its im2col-sized tiles and partial-sum round trips are gone for good, so this is not the old
model's number; those are quoted in the issue and in the notes).
"""

from __future__ import annotations

import argparse
import dataclasses

import contract
from hwsim.accelerator import Accelerator, preset, with_pe
from hwsim.api import workloads
from hwsim.simulate import Report, estimate
from hwsim.workload import Workload

NETWORKS = (("ghostnet", "adder"), ("resnet18", "adder"), ("resnet18", "shift"), ("mobilenetv2", "adder"),
            ("birealnet18", "xnor"))
BUFFERS_KIB = (64, 128, 256, 512, 1024)


def naive(acc: Accelerator) -> Accelerator:
    """``acc`` with every issue-15 knob at the setting that reproduces the model before it."""
    return dataclasses.replace(
        acc,
        array=dataclasses.replace(acc.array, fold_overlap=False, depthwise="gemm"),
        schedule=dataclasses.replace(acc.schedule, residency="layerwise", fusion="none"),
        memory=dataclasses.replace(acc.memory, dram="ddr3", sram_bank_kib=0),
        power=dataclasses.replace(acc.power, leakage=False, clock_gating=1.0, sram_bank_gating=False))


def buffers(acc: Accelerator, kib: float) -> Accelerator:
    mem = dataclasses.replace(acc.memory, ifmap_sram_kib=kib, weight_sram_kib=kib, ofmap_sram_kib=kib)
    return dataclasses.replace(acc, memory=mem)


def chip_uj(report: Report) -> float:
    return report.energy_uj - report.energy_split_uj()["dram"]


def stall_share(report: Report) -> float:
    return sum(r.stall_cycles for r in report.layers) / report.cycles


def row(label: str, r: Report) -> str:
    split = r.energy_split_uj()
    return (f"  {label:<22}{r.energy_uj:>10.1f}{split['compute']:>9.1f}{split['onchip']:>9.1f}{split['dram']:>9.1f}"
            f"{split['leakage']:>9.1f}{r.cycles:>12,}{r.utilization:>7.1%}{stall_share(r):>7.1%}"
            f"{sum(r.area_um2.values()) * 1e-6:>8.3f}")


def with_weight_bits(workload: Workload, bits: int) -> Workload:
    """``workload`` with the weights of its array layers stored at ``bits`` (the MAC baseline
    that moves shift-code-wide weights)."""
    layers = tuple(dataclasses.replace(layer, weight_bits=bits) if layer.is_compute and layer.pe == "mac"
                   and layer.act_bits == 8 else layer for layer in workload.layers)
    return dataclasses.replace(workload, layers=layers)


def compare(network: str, pe: str) -> None:
    acc = preset(pe)
    work, base = workloads(network, [(pe, acc.bits), ("mac", 8)])
    print(f"\n{network}: {pe} vs mac, preset 16x16 int8 (xnor 1 bit, 64 lanes)")
    print(f"  {'':<22}{'uJ':>10}{'compute':>9}{'on-chip':>9}{'DRAM':>9}{'leak':>9}{'cycles':>12}"
          f"{'util':>7}{'stall':>7}{'mm2':>8}")
    for mode, make in (("default", lambda a: a), ("naive knobs", naive)):
        mine, theirs = estimate(work, make(acc)), estimate(base, make(with_pe(acc, "mac")))
        print(row(f"{pe} {mode}", mine))
        print(row(f"mac {mode}", theirs))
        print(f"  {'ratio':<22}{mine.energy_uj / theirs.energy_uj:>10.3f}   chip-only "
              f"{chip_uj(mine) / chip_uj(theirs):.3f}   cycles {mine.cycles / theirs.cycles:.3f}   area "
              f"{sum(mine.area_um2.values()) / sum(theirs.area_um2.values()):.3f}")
    if pe == "shift":
        code = contract.weight_code_bits(acc.max_shift)
        narrow = estimate(with_weight_bits(base, code), with_pe(acc, "mac"))
        mine = estimate(work, acc)
        print(row(f"mac, {code}-bit weights", narrow))
        print(f"  shift / mac({code}-bit weights) {mine.energy_uj / narrow.energy_uj:.3f}: the datapath "
              f"effect; mac({code}-bit) / mac(8-bit) "
              f"{narrow.energy_uj / estimate(base, with_pe(acc, 'mac')).energy_uj:.3f}: the weight width")
    if network == "ghostnet" or (network, pe) == ("resnet18", "adder"):
        dyn = [estimate(work, dataclasses.replace(buffers(acc, k), power=dataclasses.replace(
            acc.power, leakage=False))).energy_uj for k in BUFFERS_KIB]
        full = [estimate(work, buffers(acc, k)).energy_uj for k in BUFFERS_KIB]
        print(f"  {pe} buffers {'/'.join(map(str, BUFFERS_KIB))} KiB each: dynamic uJ "
              f"{', '.join(f'{e:.1f}' for e in dyn)}; with leakage {', '.join(f'{e:.1f}' for e in full)}")
    if network == "resnet18" and pe == "adder":
        for dataflow in ("os", "ws"):
            r = estimate(base, dataclasses.replace(preset("mac"), array=dataclasses.replace(
                preset("mac").array, dataflow=dataflow)))
            print(f"  mac {dataflow}: utilization {r.utilization:.1%}, stalls {stall_share(r):.2%} of "
                  f"{r.cycles:,} cycles")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated networks (default: all)")
    args = parser.parse_args()
    wanted = set(args.only.split(",")) if args.only else None
    for network, pe in NETWORKS:
        if wanted is None or network in wanted:
            compare(network, pe)


if __name__ == "__main__":
    main()
