"""DRAM bytes per inference and per MAC under the schedule, against the compulsory minimum and Eyeriss.

Run: ``.venv/bin/python benchmarks/dram_traffic.py [--models resnet18,ghostnet,mobilenetv2]``.

For each network on the preset 16x16 int8 MAC accelerator (three 64 KiB SRAMs), prints the DRAM
bytes per inference, split into weights and activations (inputs read, outputs written, re-reads
of the tiling included), and per MAC, for ``schedule.residency: layerwise`` (every stored tensor
to DRAM and back) and ``resident`` with activation storage from 64 KiB to 1 MiB, at batch 1 and
at batch 4 (Eyeriss's AlexNet batch). Ratios are to the compulsory minimum (every weight read once
per batch, the network input read once, the network outputs written once) and to Eyeriss
(Chen et al., JSSC 2017: 0.0029 DRAM accesses per MAC for AlexNet's conv layers at batch
4 and 0.0035 for VGG-16's at batch 3, in 16-bit words: 0.0058 and 0.0070 bytes per MAC).
The ``x AlexNet`` / ``x VGG-16`` columns compare bytes (the physical traffic); hwsim's words are
8 bits, so its bytes per MAC are also its accesses per MAC, and the ratio of accesses is twice
the ratio shown.
"""

from __future__ import annotations

import argparse
import dataclasses
import math

from hwsim import api, schedule
from hwsim.accelerator import Accelerator, ScheduleConfig
from hwsim.mapping import map_layer
from hwsim.workload import NETWORK_INPUT, Workload

#: Eyeriss (JSSC 2017) DRAM accesses per MAC of 16-bit words, conv layers.
EYERISS = {"AlexNet b4": 0.0029, "VGG-16 b3": 0.0035}
EYERISS_WORD_BYTES = 2
STORAGE_KIB = (64, 128, 256, 512, 1024)


def traffic_bytes(workload: Workload, acc: Accelerator) -> tuple[float, float]:
    """Weight and activation DRAM bytes of one run of ``workload`` (the whole batch) on ``acc``."""
    flows, _ = schedule.plan(workload, acc)
    weights = activations = 0
    for layer, flow in zip(workload.layers, flows):
        m = map_layer(layer, acc.array_for(layer.pe), flow=flow)
        weights += m.dram_read_bits["weight"]
        activations += m.dram_read_bits["ifmap"] + m.dram_write_bits["ofmap"]
    return weights / 8, activations / 8


def compulsory_bytes(workload: Workload) -> tuple[float, float]:
    """Weights once, and the network input read once plus every tensor no layer reads written once."""
    layers = workload.layers
    read = {name for layer in layers for name in (layer.inputs or ())}
    read |= {layers[i - 1].name for i, layer in enumerate(layers) if layer.inputs is None and i}
    weights = sum(layer.weight_elems * layer.weight_bits for layer in layers) / 8
    first = next(layer for layer in layers if layer.inputs is None or NETWORK_INPUT in layer.inputs)
    outputs = sum(layer.out_elems * layer.act_bits for layer in layers if layer.name not in read)
    return weights, (math.prod(workload.input_shape) * first.act_bits + outputs) / 8


def _row(label: str, weights: float, acts: float, macs: int, floor: float) -> str:
    total = weights + acts
    per_mac = total / macs
    return (f"  {label:<22}{weights / 1e6:>9.3f}{acts / 1e6:>9.3f}{total / 1e6:>9.3f}"
            f"{per_mac:>10.4f}{total / floor:>9.2f}"
            + "".join(f"{per_mac / (v * EYERISS_WORD_BYTES):>11.2f}" for v in EYERISS.values()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet18,ghostnet,mobilenetv2")
    args = parser.parse_args()
    base = api.resolve_accelerator(pe="mac")
    eyeriss = ", ".join(f"{k} {v * EYERISS_WORD_BYTES:.4f} B/MAC" for k, v in EYERISS.items())
    print(f"DRAM per inference (MB = 1e6 bytes) on the preset 16x16 int8 MAC accelerator; Eyeriss: {eyeriss}")
    header = (f"  {'schedule':<22}{'weights':>9}{'acts':>9}{'total':>9}{'B/MAC':>10}{'x floor':>9}"
              + "".join(f"{'x ' + k.split()[0]:>11}" for k in EYERISS))
    for name in args.models.split(","):
        for batch in (1, 4):
            workload = api.workloads(name, [("mac", 8)], batch=batch)[0]
            macs = workload.macs // batch
            w_floor, a_floor = compulsory_bytes(workload)
            floor = (w_floor + a_floor) / batch
            print(f"\n{name}, batch {batch}: {macs / 1e6:.1f} M MAC per inference; compulsory "
                  f"{w_floor / batch / 1e6:.3f} MB weights + {a_floor / batch / 1e6:.3f} MB input/output "
                  f"= {floor / 1e6:.3f} MB, {floor / macs:.4f} B/MAC")
            print(header)
            runs = [("layerwise", ScheduleConfig(residency="layerwise"))]
            runs += [(f"resident {kib:>4} KiB", ScheduleConfig(activation_kib=kib)) for kib in STORAGE_KIB]
            for label, cfg in runs:
                weights, acts = traffic_bytes(workload, dataclasses.replace(base, schedule=cfg))
                print(_row(label, weights / batch, acts / batch, macs, floor))


if __name__ == "__main__":
    main()
