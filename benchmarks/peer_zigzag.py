"""hwsim side by side with ZigZag (zigzag-dse) on the same workload and matched hardware (issue 15).

Run (from the repository root; ZigZag lives in its own virtual environment, see below):

    .venv/bin/python benchmarks/peer_zigzag.py --zigzag-python /work/zvenv/bin/python
    .venv/bin/python benchmarks/peer_zigzag.py --models resnet18,mobilenetv2 --rerun

ZigZag is installed once, outside the repository:
``python3 -m venv /work/zvenv && /work/zvenv/bin/pip install zigzag-dse onnx six`` (zigzag-dse
3.9.1 imports ``six`` without declaring it). ``--zigzag-python`` (or ``$ZIGZAG_PYTHON``) names its
interpreter; ``benchmarks/zigzag_driver.py`` (our own code) is what runs there.

What it does, per network (a registry name: ``resnet18``, ``mobilenetv2``, ...):

1. The matched hardware, derived from hwsim's own preset and tables through its API (nothing
   copied by hand): a 16x16 int8 MAC array, output stationary; three SRAMs (ifmap, weight, ofmap)
   of the preset's size and port width; the DRAM's bandwidth per cycle (rounded down to whole
   bits, the same in both tools: hwsim's ``dram_bandwidth_gbps`` is set to it) and its pJ/bit
   (``memory.dram``); the MAC energy per op (the MAC-weighted mean of hwsim's per-layer datapath
   costs, so ZigZag's ``unit_energy x MACs`` is then rescaled per layer to hwsim's exact value);
   the PE registers at the flip-flop energy per bit (operands 8 bit, partial sums at hwsim's
   accumulator width, written into the ONNX as ZigZag's ``output_size``).
2. ZigZag: ONNX export of hwsim's registry network (``torch.onnx.export(..., dynamo=False)``,
   batch norm folded), the accelerator and mapping YAML written to ``build/peer_zigzag/``, then
   ``zigzag_driver.py`` under ``nice`` (LOMA, ``--opt energy``, ``--lpf-limit 6``, spatial
   mapping ``--zz-spatial``: ``os`` = K16 on D1 x OX16 on D2, the closest fixed twin of hwsim's
   output-stationary array; ``osmix`` = K16 x (OX4 x OY4), pixels in two dimensions as hwsim
   flattens OY*OX; ``ws`` = C16 x K16; ``free`` = ZigZag's own spatial search; with ``os`` and
   ``osmix`` depthwise convs unroll the group G in place of K, as hwsim's depthwise mode). Results
   are cached in ``build/peer_zigzag/zz_<model>_<key>.json`` keyed by every input; ``--rerun``
   runs ZigZag again.
3. hwsim through its Python API (``hwsim.api``, ``hwsim.simulate.estimate``) in two modes:
   ``layerwise`` (``schedule.residency: layerwise``: every stored tensor through DRAM, ZigZag's own
   layer-by-layer model: the apples-to-apples mode) and ``default`` (hwsim's defaults: tensor
   residency, fusion, leakage, clock gating). The per-operand DRAM traffic is not in hwsim's
   Report, so the script replays the schedule and mapping of each layer
   (``hwsim.schedule.plan``, ``hwsim.mapping.map_layer``) and checks that the replay's DRAM bits
   give the Report's DRAM energy.
4. Prints per layer and in total: cycles (stalls included), utilization (MACs / (PEs x cycles),
   the same definition for both), DRAM traffic (I / W / O), energy split (MAC / PE registers /
   SRAM / DRAM) and hwsim/ZigZag ratios, with every difference above 25 % flagged ``!``; for the
   flagged layers ZigZag's chosen mapping (spatial unrolling, loops kept at the DRAM level, partial
   sums spilled) next to hwsim's buffer tile. Energies compared exclude what ZigZag does not model
   (hwsim's leakage and idle-register clocking), shown apart. Timing of both tools (wall and CPU)
   at the end. Everything is written to ``build/peer_zigzag/results.json``.

5. With ``--mappers``: hwsim's two mappers against ZigZag's (LOMA, ``--opt``) per layer: the
   layerwise mode with leakage off and perfect clock gating (``power.leakage: false``,
   ``power.clock_gating: 1``), so that hwsim's energy is exactly the terms ZigZag models (MAC,
   PE registers, SRAM, DRAM), costed with ``schedule.mapper: heuristic`` and ``search`` (objective
   ``--opt``: energy, latency or edp); energy and cycles of each, the mapping each chose (hwsim: buffer
   tile m x k x n, loop order; ZigZag: the loops it keeps at the DRAM level) and the time each
   took for the network (hwsim: one ``estimate()``; ZigZag: its API call, possibly cached).

Only conv and linear layers are compared: ZigZag costs nothing else (hwsim's vector layers are
summed below each table).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "peer_zigzag"
DRIVER = Path(__file__).resolve().parent / "zigzag_driver.py"
INSTALL = ("python3 -m venv /work/zvenv && /work/zvenv/bin/pip install zigzag-dse onnx six, then pass "
           "--zigzag-python /work/zvenv/bin/python (or set ZIGZAG_PYTHON)")
FLAG = 0.25  # relative difference above which a ratio is flagged
MODES = ("layerwise", "serial", "default")
DEFAULT_MODES = "layerwise,serial,default"
MODE_LABELS = {
    "layerwise": "hwsim `schedule.residency: layerwise` (every stored tensor through DRAM; apples to apples)",
    "default": "hwsim defaults (residency + output-stage fusion; leakage and idle clocking shown apart)",
    "serial": "hwsim `residency: layerwise` + `fusion: none` (also pooling/adds on their own, as ZigZag)",
}
SPATIAL = {
    "os": {"D1": ["K, 16"], "D2": ["OX, 16"]},
    "osmix": {"D1": ["K, 16"], "D2": ["OX, 4", "OY, 4"]},
    "ws": {"D1": ["C, 16"], "D2": ["K, 16"]},
    "free": None,
}


class BenchError(Exception):
    """A one-line error for the user."""


# --------------------------------------------------------------------------------------------
# timing helpers


def _cpu_self() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _cpu_children() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


class Timer:
    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = _cpu_self()

    def done(self) -> dict[str, float]:
        return {"wall_s": time.perf_counter() - self.wall, "cpu_s": _cpu_self() - self.cpu}


# --------------------------------------------------------------------------------------------
# hwsim side


def matched_accelerator(mode: str, dataflow: str):
    """hwsim's mac preset on a 16x16 array, DRAM bandwidth rounded down to whole bits per cycle
    (ZigZag's port width), the schedule of ``mode``."""
    from hwsim import api

    acc = api.resolve_accelerator(pe="mac", bits=8, array=(16, 16), dataflow=dataflow)
    bits_per_cycle = math.floor(acc.dram_bytes_per_cycle * 8 + 1e-9)
    gbps = bits_per_cycle / 8 * acc.clock_mhz / 1e3
    acc = dataclasses.replace(acc, memory=dataclasses.replace(acc.memory, dram_bandwidth_gbps=gbps))
    if mode in ("layerwise", "serial"):
        acc = dataclasses.replace(acc, schedule=dataclasses.replace(acc.schedule, residency="layerwise"))
    if mode == "serial":
        acc = dataclasses.replace(acc, schedule=dataclasses.replace(acc.schedule, fusion="none"))
    return acc


def hw_tables(acc) -> dict[str, Any]:
    """The per-bit and per-op energies hwsim prices this accelerator with (read through its API)."""
    import cost_models as cm
    from cost_models import memory

    tech = cm.load_technology(acc.tech)
    mem = acc.memory
    width = mem.sram_width_bits
    sram_kib = {"ifmap": mem.ifmap_sram_kib, "weight": mem.weight_sram_kib, "ofmap": mem.ofmap_sram_kib}
    return {
        "tech": acc.tech,
        "dram": mem.dram,
        "sram_kib": sram_kib,
        "sram_width_bits": width,
        "sram_pj_per_bit": {o: memory.sram_access_energy_pj(tech, kib, width) / width for o, kib in sram_kib.items()},
        "dram_pj_per_bit": memory.load_dram(mem.dram).energy_pj_per_bit,
        "reg_pj_per_bit": memory.register_energy_pj_per_bit(tech),
        "dram_bits_per_cycle": round(acc.dram_bytes_per_cycle * 8, 6),
        "clock_mhz": acc.clock_mhz,
        "rows": acc.array.rows, "cols": acc.array.cols, "bits": acc.bits,
    }


def _datapath(acc, layer):
    import cost_models as cm

    tech = cm.load_technology(acc.tech)
    return cm.datapath_cost(layer.pe, tech, bits=layer.act_bits, acc_bits=acc.psum_bits(layer.pe, layer.act_bits,
                                                                                        layer.gemm[2]),
                            lanes=acc.array.lanes, max_shift=acc.max_shift)


def run_hwsim(workload, acc, tables) -> dict[str, Any]:
    """Estimate ``workload`` on ``acc``; per compute layer: cycles, traffic per operand, energy split."""
    from hwsim import simulate

    t = Timer()
    report = simulate.estimate(workload, acc)
    timing = t.done()
    replay_note = ""
    try:  # per-operand traffic: replay what estimate() does (the Report keeps only energies)
        from hwsim import mapping as hmap
        from hwsim import schedule

        flows, _places = schedule.plan(workload, acc)
        mappings = [hmap.map_layer(layer, acc.array_for(layer.pe), flow=flow)
                    for layer, flow in zip(workload.layers, flows)]
    except Exception as exc:  # noqa: BLE001 - the API moves under us; fall back to totals only
        mappings = [None] * len(workload.layers)
        replay_note = f"per-operand replay failed ({type(exc).__name__}: {exc}); DRAM totals from energy only"
    rows, vector = [], {"layers": 0, "cycles": 0, "energy_uj": 0.0, "dram_uj": 0.0, "dram_bytes": 0.0}
    dram_pj = tables["dram_pj_per_bit"]
    for layer, row, mp in zip(workload.layers, report.layers, mappings):
        if not layer.is_compute:
            vector["layers"] += 1
            vector["cycles"] += row.cycles
            vector["energy_uj"] += row.energy_pj * 1e-6
            vector["dram_uj"] += row.energy_dram_pj * 1e-6
            vector["dram_bytes"] += row.energy_dram_pj / dram_pj / 8
            continue
        dp = _datapath(acc, layer)
        reg = row.ops * dp.register_pj_per_op
        dram_bytes = {"I": None, "W": None, "O": None}
        sram = None
        tile = None
        check = None
        if mp is not None:
            dram_bytes = {"I": mp.dram_read_bits.get("ifmap", 0) / 8, "W": mp.dram_read_bits.get("weight", 0) / 8,
                          "O": (mp.dram_write_bits.get("ofmap", 0) + mp.dram_read_bits.get("ofmap", 0)) / 8}
            bits = sum(mp.dram_read_bits.values()) + sum(mp.dram_write_bits.values())
            check = abs(bits * dram_pj - row.energy_dram_pj) <= 1e-6 * max(1.0, row.energy_dram_pj)
            sram = sum((mp.sram_read_bits.get(o, 0) + mp.sram_write_bits.get(o, 0)) * tables["sram_pj_per_bit"][o]
                       for o in ("ifmap", "weight", "ofmap"))
            tile = list(mp.tile)
            if not check:
                replay_note = replay_note or f"replayed DRAM bits of {layer.name} disagree with the Report"
        if sram is None:
            sram = row.energy_onchip_pj - reg
        rows.append({
            "name": layer.name, "shape": layer.shape, "macs": layer.macs, "gemm": list(layer.gemm),
            "psum_bits": acc.psum_bits(layer.pe, layer.act_bits, layer.gemm[2]),
            "cycles": row.cycles, "compute_cycles": row.compute_cycles, "stall_cycles": row.stall_cycles,
            "hw_utilization": row.utilization, "tile": tile,
            "in_elems": layer.in_elems, "out_elems": layer.out_elems, "weight_elems": layer.weight_elems,
            "dram_bytes": dram_bytes, "dram_total_bytes": row.energy_dram_pj / dram_pj / 8,
            "input_from": row.input_from, "output_to": row.output_to,
            "energy_pj": {"mac": row.energy_compute_pj, "reg": reg, "sram": sram, "dram": row.energy_dram_pj,
                          "idle_reg": row.energy_onchip_pj - reg - sram, "leakage": row.energy_leakage_pj},
        })
    return {"rows": rows, "vector": vector, "totals": report.totals(), "timing": timing,
            "replay_note": replay_note, "schedule": dataclasses.asdict(acc.schedule),
            "power": dataclasses.asdict(acc.power)}


# --------------------------------------------------------------------------------------------
# ZigZag side: ONNX, accelerator and mapping files, the driver


def export_onnx(model: str, compute_layers, acc, path: Path) -> dict[str, float]:
    """Export hwsim's registry network to ONNX (BN folded), shapes inferred, and give every
    Conv/Gemm node ZigZag's precision attributes: 8-bit operands, partial sums at hwsim's
    accumulator width for that layer."""
    import onnx
    import torch

    from models.registry import load_model

    t = Timer()
    net, shape, _entry = load_model(model)
    net.eval()
    tmp = path.with_suffix(".raw.onnx")
    with torch.no_grad():
        torch.onnx.export(net, torch.zeros(shape), str(tmp), dynamo=False, opset_version=13,
                          do_constant_folding=True)
    proto = onnx.shape_inference.infer_shapes(onnx.load(str(tmp)))
    # Shape inference loses the batch behind subgraphs it cannot fold (ResNet-20's padded
    # shortcut); ZigZag reads an unknown dimension as 0, so give the batch back.
    for info in list(proto.graph.value_info) + list(proto.graph.output):
        dims = info.type.tensor_type.shape.dim
        if len(dims) and not dims[0].dim_value:
            dims[0].dim_value = shape[0]
    gemms = [n for n in proto.graph.node if n.op_type in ("Conv", "Gemm", "MatMul")]
    if len(gemms) != len(compute_layers):
        raise BenchError(f"{model}: ONNX has {len(gemms)} Conv/Gemm nodes, hwsim {len(compute_layers)} compute layers")
    for node, layer in zip(gemms, compute_layers):
        for key, value in (("act_size", layer.act_bits), ("weight_size", layer.weight_bits),
                           ("output_size", acc.psum_bits(layer.pe, layer.act_bits, layer.gemm[2]))):
            node.attribute.append(onnx.helper.make_attribute(key, int(value)))
    onnx.save(proto, str(path))
    tmp.unlink()
    # ZigZag names a layer after its ONNX node and may cost them in another (topological) order
    names_path(path).write_text(json.dumps({n.name: layer.name for n, layer in zip(gemms, compute_layers)}, indent=1))
    return t.done()


def names_path(onnx_path: Path) -> Path:
    return onnx_path.with_suffix(".names.json")


def zigzag_files(tables: dict[str, Any], unit_energy: float, max_psum: int, spatial: str,
                 folder: Path, grouped: list[str] = ()) -> tuple[Path, Path]:
    """ZigZag's accelerator and mapping YAML for the matched hardware. ``grouped``: ONNX names of
    grouped (depthwise) convs; with an output-stationary mapping they unroll the group G where
    the others unroll K (one output channel per column, as hwsim's depthwise mode maps them),
    since K is 1 per group."""
    import yaml

    reg = tables["reg_pj_per_bit"]
    sram = tables["sram_pj_per_bit"]
    dram_bw = int(math.floor(tables["dram_bits_per_cycle"]))
    sram_bw = 1024  # hwsim puts no bandwidth limit on its SRAMs; ZigZag needs one: ample for 16x16

    def port(name, kind, bw_min, bw_max, alloc):
        return {"name": name, "type": kind, "bandwidth_min": bw_min, "bandwidth_max": bw_max, "allocation": alloc}

    def reg_level(op, bits):
        return {"size": bits, "r_cost": bits * reg, "w_cost": bits * reg, "area": 0, "latency": 1,
                "operands": [op], "ports": [port("r_port_1", "read", 1, bits, [f"{op}, tl"]),
                                            port("w_port_1", "write", 1, bits, [f"{op}, fh"])],
                "served_dimensions": []}

    def sram_level(op, which):
        return {"size": int(tables["sram_kib"][which] * 8192), "r_cost": sram_bw * sram[which],
                "w_cost": sram_bw * sram[which], "area": 0, "latency": 1, "operands": [op],
                "ports": [port("r_port_1", "read", tables["sram_width_bits"], sram_bw, [f"{op}, tl"]),
                          port("w_port_1", "write", tables["sram_width_bits"], sram_bw, [f"{op}, fh"])],
                "served_dimensions": ["D1", "D2"]}

    reg_o = {"size": max_psum, "r_cost": max_psum * reg, "w_cost": max_psum * reg, "area": 0, "latency": 1,
             "operands": ["O"],
             "ports": [port("r_port_1", "read", 1, max_psum, ["O, tl"]),
                       port("r_port_2", "read", 1, max_psum, ["O, th"]),
                       port("w_port_1", "write", 1, max_psum, ["O, fh"]),
                       port("w_port_2", "write", 1, max_psum, ["O, fl"])],
             "served_dimensions": []}
    sram_o = sram_level("O", "ofmap")
    sram_o["ports"] = [port("r_port_1", "read", tables["sram_width_bits"], sram_bw, ["O, tl", "O, th"]),
                       port("w_port_1", "write", tables["sram_width_bits"], sram_bw, ["O, fh", "O, fl"])]
    dram_cost = dram_bw * tables["dram_pj_per_bit"]
    hw = {
        "name": "hwsim_matched",
        "memories": {
            "reg_I": reg_level("I1", tables["bits"]),
            "reg_W": reg_level("I2", tables["bits"]),
            "reg_O": reg_o,
            "sram_I": sram_level("I1", "ifmap"),
            "sram_W": sram_level("I2", "weight"),
            "sram_O": sram_o,
            "dram": {"size": 10**10, "r_cost": dram_cost, "w_cost": dram_cost, "area": 0, "latency": 1,
                     "operands": ["I1", "I2", "O"],
                     "ports": [port("rw_port_1", "read_write", 8, dram_bw,
                                    ["I1, fh", "I1, tl", "I2, fh", "I2, tl", "O, fh", "O, tl", "O, fl", "O, th"])],
                     "served_dimensions": ["D1", "D2"]},
        },
        "operational_array": {"unit_energy": round(unit_energy, 9), "unit_area": 1, "dimensions": ["D1", "D2"],
                              "sizes": [tables["rows"], tables["cols"]]},
    }
    entry: dict[str, Any] = {"name": "default", "memory_operand_links": {"O": "O", "W": "I2", "I": "I1"}}
    if SPATIAL[spatial] is not None:
        entry["spatial_mapping"] = {d: list(v) for d, v in SPATIAL[spatial].items()}
    mapping = [entry]
    if spatial.startswith("os"):
        for name in grouped:
            dw = {d: [v.replace("K,", "G,") for v in vs] for d, vs in SPATIAL[spatial].items()}
            mapping.append({"name": name, "memory_operand_links": entry["memory_operand_links"], "spatial_mapping": dw})
    folder.mkdir(parents=True, exist_ok=True)
    hw_path, map_path = folder / "zz_hardware.yaml", folder / f"zz_mapping_{spatial}.yaml"
    hw_path.write_text(yaml.safe_dump(hw, sort_keys=False))
    map_path.write_text(yaml.safe_dump(mapping, sort_keys=False))
    return hw_path, map_path


def find_zigzag(option: str | None) -> str:
    exe = option or os.environ.get("ZIGZAG_PYTHON")
    if not exe:
        raise BenchError(f"ZigZag's Python not given; install it with: {INSTALL}")
    path = shutil.which(exe) or exe
    if not Path(path).exists():
        raise BenchError(f"ZigZag's Python {exe!r} not found; install it with: {INSTALL}")
    probe = subprocess.run([path, "-c", "import zigzag.api, onnx"], capture_output=True, text=True)
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        raise BenchError(f"{path} cannot import ZigZag ({last}); install it with: {INSTALL}")
    return path


def run_zigzag(zpy: str, onnx_path: Path, hw_path: Path, map_path: Path, out: Path, lpf: int, opt: str,
               nice: int) -> dict[str, Any]:
    cmd = ["nice", "-n", str(nice), zpy, str(DRIVER), str(onnx_path), str(hw_path), str(map_path), str(out),
           "--opt", opt, "--lpf-limit", str(lpf)]
    print(f"  running ZigZag (minutes): {' '.join(cmd)}", file=sys.stderr, flush=True)
    wall, cpu = time.perf_counter(), _cpu_children()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    outer = {"wall_s": time.perf_counter() - wall, "cpu_s": _cpu_children() - cpu}
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise BenchError(f"ZigZag failed on {onnx_path.name}: {tail}")
    data = json.loads(out.read_text())
    data["timing"]["process_wall_s"] = outer["wall_s"]
    data["timing"]["process_cpu_s"] = outer["cpu_s"]
    out.write_text(json.dumps(data, indent=1))
    return data


def _short_spatial(text: str) -> str:
    """``{O: [[], [(K, 16), (OX, 14)], ...], ...}`` -> ``K16 OX14`` (the unrolling, as every operand sees it)."""
    import re

    seen = dict.fromkeys(f"{d}{float(n):g}" for d, n in re.findall(r"\((\w+), ([\d.]+)\)", text))
    return " ".join(seen) or text


def zz_layer(rec: dict[str, Any], tables: dict[str, Any]) -> dict[str, Any]:
    """Cycles, DRAM bytes per operand and energy split of one ZigZag layer record."""
    energy = {"reg": 0.0, "sram": 0.0, "dram": 0.0}
    dram_bytes = {"I": 0.0, "W": 0.0, "O": 0.0}
    psum_dram_reads = 0.0
    links = rec.get("memory_operand_links") or {"I": "I1", "W": "I2", "O": "O"}
    for op, per_level in rec["mem_energy_by_operand_level"].items():
        levels = rec["levels"].get(links.get(op, op), [])
        for i, moves in enumerate(per_level):
            name = levels[i]["name"] if i < len(levels) else ("reg" if i == 0 else "sram" if i == 1 else "dram")
            pj = sum(v for k, v in moves.items() if k != "repr")
            kind = "reg" if name.startswith("reg") else "dram" if name.startswith("dram") else "sram"
            energy[kind] += pj
            if kind == "dram":
                dram_bytes[op] += pj / tables["dram_pj_per_bit"] / 8
                if op == "O":  # partial sums read back from DRAM = spilled
                    psum_dram_reads += moves.get("rd_out_to_low", 0.0) / tables["dram_pj_per_bit"] / 8
    dram_temporal = {}
    for op, per_level in rec.get("temporal_mapping", {}).items():
        if per_level:
            top = per_level[-1]
            dram_temporal[op] = " ".join(f"{d}{int(s) if float(s).is_integer() else s}" for d, s in top) or "-"
    return {
        "name": rec["name"], "macs": rec["macs"], "dims": rec["dims"],
        "cycles": rec["latency_total2"], "ideal_temporal": rec["ideal_temporal_cycle"],
        "stall": rec["latency_total2"] - rec["ideal_temporal_cycle"],
        "dram_bytes": dram_bytes, "psum_dram_read_bytes": psum_dram_reads,
        "energy_pj": {"mac_zigzag": rec["mac_energy"], **energy},
        "spatial": _short_spatial(rec["spatial_mapping"]), "spatial_util": rec["mac_spatial_utilization"],
        "dram_loops": dram_temporal, "temporal": rec.get("temporal_mapping_str", ""),
    }


# --------------------------------------------------------------------------------------------
# comparison and printing


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return None
    if b == 0:
        return None if a == 0 else math.inf
    return a / b


def _fmt_ratio(r: float | None) -> str:
    if r is None:
        return "-"
    flag = "!" if abs(r - 1) > FLAG else " "
    return f"{r:.2f}{flag}" if r != math.inf else "inf!"


def _si(x: float | None, unit: str = "") -> str:
    if x is None:
        return "-"
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.2f}{suffix}{unit}"
    return f"{x:.0f}{unit}"


def compare(hw: dict[str, Any], zz: list[dict[str, Any]], pes: int) -> dict[str, Any]:
    rows = []
    tot = {k: 0.0 for k in ("macs", "hw_cycles", "zz_cycles", "hw_stall", "zz_stall")}
    tot.update({f"{s}_{k}": 0.0 for s in ("hw", "zz") for k in ("I", "W", "O", "mac", "reg", "sram", "dram")})
    tot["hw_excluded"] = 0.0
    for h, z in zip(hw["rows"], zz):
        if h["macs"] != z["macs"]:
            raise BenchError(f"layer {h['name']}: hwsim {h['macs']} MACs, ZigZag {z['macs']} ({z['name']})")
        e_h = h["energy_pj"]
        # ZigZag's MAC energy is unit_energy x MACs: rescale it to hwsim's exact per-layer MAC energy
        e_z = {"mac": e_h["mac"], "reg": z["energy_pj"]["reg"], "sram": z["energy_pj"]["sram"],
               "dram": z["energy_pj"]["dram"]}
        hw_e = sum(e_h[k] for k in ("mac", "reg", "sram", "dram"))
        zz_e = sum(e_z.values())
        hw_dram = h["dram_total_bytes"]
        zz_dram = sum(z["dram_bytes"].values())
        r = {
            "name": h["name"], "shape": h["shape"], "macs": h["macs"],
            "hw_cycles": h["cycles"], "zz_cycles": z["cycles"], "hw_stall": h["stall_cycles"], "zz_stall": z["stall"],
            "hw_util": h["macs"] / (pes * h["cycles"]), "zz_util": h["macs"] / (pes * z["cycles"]),
            "hw_dram": h["dram_bytes"], "zz_dram": z["dram_bytes"], "hw_dram_total": hw_dram, "zz_dram_total": zz_dram,
            "hw_energy": {k: e_h[k] for k in ("mac", "reg", "sram", "dram")}, "zz_energy": e_z,
            "hw_energy_total": hw_e, "zz_energy_total": zz_e,
            "hw_excluded_pj": e_h["idle_reg"] + e_h["leakage"],
            "ratio": {"cycles": _ratio(h["cycles"], z["cycles"]), "dram": _ratio(hw_dram, zz_dram),
                      "energy": _ratio(hw_e, zz_e)},
            "zz_spatial": z["spatial"], "zz_spatial_util": z["spatial_util"], "zz_dram_loops": z["dram_loops"],
            "zz_psum_dram_read_bytes": z["psum_dram_read_bytes"], "zz_temporal": z["temporal"],
            "hw_tile": h["tile"], "hw_input_from": h["input_from"], "hw_output_to": h["output_to"],
            "in_bytes": h["in_elems"], "out_bytes": h["out_elems"], "weight_bytes": h["weight_elems"],
        }
        r["flagged"] = [k for k, v in r["ratio"].items() if v is not None and abs(v - 1) > FLAG]
        rows.append(r)
        tot["macs"] += h["macs"]
        tot["hw_cycles"] += h["cycles"]
        tot["zz_cycles"] += z["cycles"]
        tot["hw_stall"] += h["stall_cycles"]
        tot["zz_stall"] += z["stall"]
        for op in ("I", "W", "O"):
            tot[f"hw_{op}"] += h["dram_bytes"][op] or 0.0
            tot[f"zz_{op}"] += z["dram_bytes"][op]
        for k in ("mac", "reg", "sram", "dram"):
            tot[f"hw_{k}"] += e_h[k]
            tot[f"zz_{k}"] += e_z[k]
        tot["hw_excluded"] += r["hw_excluded_pj"]
    hw_e = sum(tot[f"hw_{k}"] for k in ("mac", "reg", "sram", "dram"))
    zz_e = sum(tot[f"zz_{k}"] for k in ("mac", "reg", "sram", "dram"))
    hw_d = sum(r["hw_dram_total"] for r in rows)
    zz_d = sum(tot[f"zz_{o}"] for o in ("I", "W", "O"))
    totals = {**tot, "hw_energy": hw_e, "zz_energy": zz_e, "hw_dram_bytes": hw_d, "zz_dram_bytes": zz_d,
              "hw_util": tot["macs"] / (pes * tot["hw_cycles"]), "zz_util": tot["macs"] / (pes * tot["zz_cycles"]),
              "ratio": {"cycles": _ratio(tot["hw_cycles"], tot["zz_cycles"]), "dram": _ratio(hw_d, zz_d),
                        "energy": _ratio(hw_e, zz_e),
                        **{f"energy_{k}": _ratio(tot[f"hw_{k}"], tot[f"zz_{k}"]) for k in ("mac", "reg", "sram", "dram")},
                        **{f"dram_{o}": _ratio(tot[f"hw_{o}"], tot[f"zz_{o}"]) for o in ("I", "W", "O")}}}
    return {"rows": rows, "totals": totals}


def _dram3(d: dict[str, float | None]) -> str:
    return "/".join(_si(d[o]) for o in ("I", "W", "O"))


def print_comparison(title: str, cmp: dict[str, Any], hw: dict[str, Any]) -> None:
    print(f"\n### {title}\n")
    print("| layer | shape | MACs | cycles hw / zz (stall) | ratio | util hw / zz | DRAM B hw (I/W/O) | "
          "DRAM B zz (I/W/O) | ratio | energy uJ hw / zz | ratio | hw MAC/reg/SRAM/DRAM uJ | zz MAC/reg/SRAM/DRAM uJ |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in cmp["rows"]:
        split = lambda e: "/".join(f"{e[k] * 1e-6:.1f}" for k in ("mac", "reg", "sram", "dram"))  # noqa: E731
        print(f"| {r['name']} | {r['shape']} | {_si(r['macs'])} | {_si(r['hw_cycles'])} ({_si(r['hw_stall'])}) / "
              f"{_si(r['zz_cycles'])} ({_si(r['zz_stall'])}) | {_fmt_ratio(r['ratio']['cycles'])} | "
              f"{r['hw_util']:.0%} / {r['zz_util']:.0%} | {_dram3(r['hw_dram'])} | {_dram3(r['zz_dram'])} | "
              f"{_fmt_ratio(r['ratio']['dram'])} | {r['hw_energy_total'] * 1e-6:.1f} / {r['zz_energy_total'] * 1e-6:.1f} | "
              f"{_fmt_ratio(r['ratio']['energy'])} | {split(r['hw_energy'])} | {split(r['zz_energy'])} |")
    t = cmp["totals"]
    print(f"\n**Totals over {len(cmp['rows'])} conv/linear layers** (ratios hwsim/ZigZag; `!` = differs by more "
          f"than {FLAG:.0%})\n")
    print("| metric | hwsim | ZigZag | hwsim/ZigZag |\n|---|---|---|---|")
    rt = t["ratio"]
    print(f"| cycles (stalls included) | {t['hw_cycles']:,.0f} | {t['zz_cycles']:,.0f} | {_fmt_ratio(rt['cycles'])} |")
    print(f"| stall cycles (hw: DRAM; zz: latency_total2 - ideal temporal) | {t['hw_stall']:,.0f} | "
          f"{t['zz_stall']:,.0f} | {_fmt_ratio(_ratio(t['hw_stall'], t['zz_stall']))} |")
    print(f"| utilization MACs/(PEs x cycles) | {t['hw_util']:.1%} | {t['zz_util']:.1%} | "
          f"{_fmt_ratio(_ratio(t['hw_util'], t['zz_util']))} |")
    print(f"| DRAM traffic MB | {t['hw_dram_bytes'] * 1e-6:.2f} | {t['zz_dram_bytes'] * 1e-6:.2f} | {_fmt_ratio(rt['dram'])} |")
    for o, label in (("I", "input"), ("W", "weights"), ("O", "output")):
        print(f"| DRAM {label} MB | {t[f'hw_{o}'] * 1e-6:.2f} | {t[f'zz_{o}'] * 1e-6:.2f} | {_fmt_ratio(rt[f'dram_{o}'])} |")
    for k, label in (("mac", "MAC (zz rescaled to hwsim's)"), ("reg", "PE registers"), ("sram", "SRAM"), ("dram", "DRAM")):
        print(f"| energy {label} uJ | {t[f'hw_{k}'] * 1e-6:.1f} | {t[f'zz_{k}'] * 1e-6:.1f} | "
              f"{_fmt_ratio(rt[f'energy_{k}'])} |")
    print(f"| energy total uJ | {t['hw_energy'] * 1e-6:.1f} | {t['zz_energy'] * 1e-6:.1f} | {_fmt_ratio(rt['energy'])} |")
    v = hw["vector"]
    print(f"\nNot compared: hwsim's idle-register clocking + leakage on these layers {t['hw_excluded'] * 1e-6:.1f} uJ; "
          f"hwsim's {v['layers']} vector layers {v['cycles']:,} cycles, {v['energy_uj']:.1f} uJ "
          f"({v['dram_uj']:.1f} uJ DRAM, {v['dram_bytes'] * 1e-6:.2f} MB). hwsim whole network: "
          f"{hw['totals']['cycles']:,} cycles, {hw['totals']['energy_uj']:.1f} uJ.")
    if hw["replay_note"]:
        print(f"Note: {hw['replay_note']}")


def print_flagged(cmp: dict[str, Any]) -> None:
    flagged = [r for r in cmp["rows"] if r["flagged"]]
    if not flagged:
        return
    print("\nFlagged layers: ZigZag's mapping next to hwsim's tile (hwsim tile = m_tile, k_tile, n_tile of its "
          "im2col GEMM buffer tile)\n")
    print("| layer | flagged | zz spatial (util) | zz loops at DRAM level (I; W; O) | zz psums read back from DRAM | "
          "hw tile | hw in/out | hw DRAM I,W re-read vs tensor | zz DRAM I,W vs tensor |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in flagged:
        loops = "; ".join(r["zz_dram_loops"].get(o, "-") for o in ("I", "W", "O"))
        rere = lambda d: (f"{(d['I'] or 0) / r['in_bytes']:.2f}x, {(d['W'] or 0) / r['weight_bytes']:.2f}x")  # noqa: E731
        print(f"| {r['name']} | {','.join(r['flagged'])} | {r['zz_spatial']} ({r['zz_spatial_util']:.0%}) | {loops} | "
              f"{_si(r['zz_psum_dram_read_bytes'], 'B')} | {r['hw_tile']} | {r['hw_input_from']} -> {r['hw_output_to']} | "
              f"{rere(r['hw_dram'])} | {rere(r['zz_dram'])} |")


def mapper_comparison(workload, acc, zz: list[dict[str, Any]], zz_timing: dict[str, float], opt: str) -> dict:
    """hwsim's heuristic and search mappers next to ZigZag's mapper, per compute layer (``--mappers``).

    ``acc`` is the layerwise matched accelerator; leakage and idle-register clocking are turned off
    so that hwsim prices what ZigZag prices; ZigZag's MAC energy is rescaled to hwsim's as in
    :func:`compare`."""
    from hwsim import simulate

    acc = dataclasses.replace(acc, power=dataclasses.replace(acc.power, leakage=False, clock_gating=1.0))
    runs = {}
    for mapper in ("heuristic", "search"):
        chosen = dataclasses.replace(acc, schedule=dataclasses.replace(acc.schedule, mapper=mapper,
                                                                      objective=opt.lower()))
        t = Timer()
        report = simulate.estimate(workload, chosen)
        runs[mapper] = {"report": report, "timing": t.done()}
    rows = []
    heuristic_rows = [r for r in runs["heuristic"]["report"].layers if r.op in ("conv", "linear")]
    search_rows = [r for r in runs["search"]["report"].layers if r.op in ("conv", "linear")]
    for h, s, z in zip(heuristic_rows, search_rows, zz):
        zz_pj = h.energy_compute_pj + sum(z["energy_pj"][k] for k in ("reg", "sram", "dram"))
        rows.append({"name": h.name, "shape": h.shape,
                     **{f"{key}_{what}": getattr(row, attr) for key, row in (("heuristic", h), ("search", s))
                        for what, attr in (("pj", "energy_pj"), ("cycles", "cycles"))},
                     **{f"{key}_mapping": f"{row.tile_m}x{row.tile_k}x{row.tile_n} {row.loop_order} {row.dataflow}"
                        for key, row in (("heuristic", h), ("search", s))},
                     "zigzag_pj": zz_pj, "zigzag_cycles": z["cycles"],
                     "zigzag_mapping": f"{z['spatial']}; DRAM loops I: {z['dram_loops'].get('I', '-')}, "
                                       f"W: {z['dram_loops'].get('W', '-')}"})
    totals = {f"{k}_{what}": sum(r[f"{k}_{what}"] for r in rows) for k in ("heuristic", "search", "zigzag")
              for what in ("pj", "cycles")}
    return {"rows": rows, "totals": totals, "timing": {"heuristic": runs["heuristic"]["timing"],
                                                       "search": runs["search"]["timing"], "zigzag": zz_timing},
            "opt": opt}


def print_mappers(model: str, cmp: dict[str, Any]) -> None:
    print(f"\n### {model}: mappers, hwsim heuristic vs hwsim search vs ZigZag LOMA (objective {cmp['opt']}; "
          "layerwise, leakage off, perfect clock gating: the energy ZigZag models)\n")
    print("| layer | heuristic uJ | search uJ | ZigZag uJ | search/heur | search/ZigZag | heuristic cycles | "
          "search cycles | ZigZag cycles | heuristic tile, loops | search tile, loops | ZigZag spatial; DRAM loops |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in cmp["rows"]:
        print(f"| {r['name']} | {r['heuristic_pj'] * 1e-6:.2f} | {r['search_pj'] * 1e-6:.2f} | "
              f"{r['zigzag_pj'] * 1e-6:.2f} | {_fmt_ratio(_ratio(r['search_pj'], r['heuristic_pj']))} | "
              f"{_fmt_ratio(_ratio(r['search_pj'], r['zigzag_pj']))} | {r['heuristic_cycles']:,} | "
              f"{r['search_cycles']:,} | {r['zigzag_cycles']:,.0f} | {r['heuristic_mapping']} | {r['search_mapping']} | "
              f"{r['zigzag_mapping']} |")
    t = cmp["totals"]
    print(f"| **total** | {t['heuristic_pj'] * 1e-6:.1f} | {t['search_pj'] * 1e-6:.1f} | {t['zigzag_pj'] * 1e-6:.1f} | "
          f"{_fmt_ratio(_ratio(t['search_pj'], t['heuristic_pj']))} | {_fmt_ratio(_ratio(t['search_pj'], t['zigzag_pj']))} | "
          f"{t['heuristic_cycles']:,} | {t['search_cycles']:,} | {t['zigzag_cycles']:,.0f} | | | |")
    tm = cmp["timing"]
    print(f"\nMapping time for the network: hwsim heuristic {tm['heuristic']['wall_s']:.2f} s "
          f"(CPU {tm['heuristic']['cpu_s']:.2f} s), hwsim search {tm['search']['wall_s']:.2f} s "
          f"(CPU {tm['search']['cpu_s']:.2f} s), ZigZag {tm['zigzag']['run_wall_s']:.1f} s "
          f"(CPU {tm['zigzag']['run_cpu_s']:.1f} s, under nice).")


def print_ratio_summary(model: str, per_mode: dict[str, dict[str, Any]]) -> None:
    """One compact table: hwsim/ZigZag ratios of cycles, DRAM traffic and energy per layer, every mode."""
    modes = list(per_mode)
    print(f"\n### {model}: hwsim/ZigZag per layer, all hwsim modes (cycles / DRAM traffic / energy)\n")
    print("| layer | " + " | ".join(f"{m}: cycles | DRAM | energy" for m in modes) + " |")
    print("|---|" + "---|---|---|" * len(modes))
    rows = [c["rows"] for c in per_mode.values()]
    for i, first in enumerate(rows[0]):
        cells = []
        for r in (mode_rows[i] for mode_rows in rows):
            cells += [_fmt_ratio(r["ratio"][k]) for k in ("cycles", "dram", "energy")]
        print(f"| {first['name']} | " + " | ".join(cells) + " |")
    cells = []
    for c in per_mode.values():
        cells += [_fmt_ratio(c["totals"]["ratio"][k]) for k in ("cycles", "dram", "energy")]
    print("| **total** | " + " | ".join(cells) + " |")


def print_timing(model: str, imp: dict, extract: dict, estimates: dict[str, dict], export: dict | None,
                 zt: dict, cached: bool) -> None:
    print(f"\nTiming, {model} (this machine, shared; ZigZag under nice)\n")
    print("| step | wall s | CPU s |\n|---|---|---|")
    print(f"| hwsim: import torch + hwsim | {imp['wall_s']:.2f} | {imp['cpu_s']:.2f} |")
    print(f"| hwsim: workload extraction (build + trace) | {extract['wall_s']:.2f} | {extract['cpu_s']:.2f} |")
    for mode, t in estimates.items():
        print(f"| hwsim: estimate(), {mode} | {t['wall_s']:.3f} | {t['cpu_s']:.3f} |")
    if export:
        print(f"| ZigZag input: ONNX export (hwsim's venv) | {export['wall_s']:.2f} | {export['cpu_s']:.2f} |")
    else:
        print("| ZigZag input: ONNX export | cached | cached |")
    when = " (cached run)" if cached else ""
    print(f"| ZigZag: import zigzag.api{when} | {zt['import_wall_s']:.2f} | {zt['import_cpu_s']:.2f} |")
    print(f"| ZigZag: get_hardware_performance_zigzag{when} | {zt['run_wall_s']:.1f} | {zt['run_cpu_s']:.1f} |")
    if "process_wall_s" in zt:
        print(f"| ZigZag: whole driver process{when} | {zt['process_wall_s']:.1f} | {zt['process_cpu_s']:.1f} |")
    est = next(iter(estimates.values()))
    hw_all = imp["cpu_s"] + extract["cpu_s"] + est["cpu_s"]
    zz_all = zt.get("process_cpu_s", zt["import_cpu_s"] + zt["run_cpu_s"]) + (export["cpu_s"] if export else 0.0)
    if zt["run_cpu_s"] > 0:
        print(f"\nCPU, ZigZag / hwsim: costing step {zt['run_cpu_s'] / max(est['cpu_s'], 1e-9):,.0f}x "
              f"(ZigZag's API call vs one estimate()); end to end {zz_all / max(hw_all, 1e-9):.0f}x "
              f"(ZigZag {'export + ' if export else ''}process vs hwsim import + extraction + one estimate()).")


# --------------------------------------------------------------------------------------------


def _key(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else json.dumps(p, sort_keys=True, default=str).encode())
    return h.hexdigest()[:12]


def _onnx_key(path: Path) -> bytes:
    """The ONNX graph without its weight values (ZigZag reads shapes only; the export's weights are
    whatever the registry initialises)."""
    import onnx

    proto = onnx.load(str(path))
    for init in proto.graph.initializer:
        for field in ("raw_data", "float_data", "int64_data", "int32_data", "double_data"):
            init.ClearField(field)
    proto.ClearField("producer_version")
    return proto.SerializeToString(deterministic=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet18,mobilenetv2",
                        help="comma-separated registry networks (default resnet18,mobilenetv2; ghostnet: ~15 min of ZigZag)")
    parser.add_argument("--zigzag-python", default=None, help="ZigZag venv's python (default $ZIGZAG_PYTHON)")
    parser.add_argument("--rerun", action="store_true", help="run ZigZag (and the ONNX export) again, ignoring the cache")
    parser.add_argument("--zz-spatial", choices=tuple(SPATIAL), default="os",
                        help="ZigZag spatial mapping: os = K16 x OX16 (default), osmix = K16 x (OX4 OY4), "
                             "ws = C16 x K16, free = its own search")
    parser.add_argument("--dataflow", choices=("os", "ws"), default=None,
                        help="hwsim dataflow (default: os, or ws with --zz-spatial ws)")
    parser.add_argument("--lpf-limit", type=int, default=6, help="ZigZag LOMA lpf_limit (default 6, ZigZag's)")
    parser.add_argument("--opt", choices=("energy", "latency", "EDP"), default="energy")
    parser.add_argument("--nice", type=int, default=10)
    parser.add_argument("--modes", default=DEFAULT_MODES,
                        help=f"hwsim modes, comma-separated from {', '.join(MODES)} (default {DEFAULT_MODES})")
    parser.add_argument("--out", default=str(BUILD), help="build folder (default build/peer_zigzag)")
    parser.add_argument("--mappers", action="store_true",
                        help="also compare hwsim's heuristic and search mappers with ZigZag's, per layer, on the "
                             "energy ZigZag models (see step 5 above)")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in modes:
        if m not in MODES:
            raise BenchError(f"unknown hwsim mode {m!r}; choose from {', '.join(MODES)}")
    zpy = find_zigzag(args.zigzag_python)
    dataflow = args.dataflow or ("ws" if args.zz_spatial == "ws" else "os")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_import = Timer()
    import torch  # noqa: F401 - timed: hwsim's extraction needs it

    from models import registry as _registry  # noqa: F401
    from hwsim import api, simulate  # noqa: F401

    import_timing = t_import.done()
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "hwsim", "cost_models", "models",
                            "contract"], capture_output=True, text=True).stdout.split()[1::2]
    commit = head.stdout.strip() + (f"+uncommitted({','.join(dirty)})" if dirty else "")
    results: dict[str, Any] = {"hwsim_commit": commit, "zigzag_python": zpy, "models": {},
                               "hwsim_import": import_timing, "flag_threshold": FLAG,
                               "zz_spatial": args.zz_spatial, "dataflow": dataflow}
    print(f"# hwsim vs ZigZag: matched hardware (hwsim {results['hwsim_commit']}, ZigZag spatial "
          f"{args.zz_spatial}, hwsim dataflow {dataflow})")
    for model in models:
        accs = {m: matched_accelerator(m, dataflow) for m in modes}
        base = accs[modes[0]]
        tables = hw_tables(base)
        t = Timer()
        try:
            (workload,) = api.workloads(model, [("mac", 8)])
        except Exception as exc:  # noqa: BLE001
            raise BenchError(f"{model}: {exc}") from None
        extract_timing = t.done()
        compute = [layer for layer in workload.layers if layer.is_compute]
        # ZigZag's inputs
        onnx_path = out / f"{model}.onnx"
        export_timing = None
        if args.rerun or not onnx_path.exists() or not names_path(onnx_path).exists():
            print(f"  exporting {model} to ONNX", file=sys.stderr, flush=True)
            export_timing = export_onnx(model, compute, base, onnx_path)
        macs = sum(layer.macs for layer in compute)
        mac_pj = sum(_datapath(base, layer).energy_pj_per_op * layer.macs for layer in compute) / macs
        max_psum = max(base.psum_bits(layer.pe, layer.act_bits, layer.gemm[2]) for layer in compute)
        to_hwsim = json.loads(names_path(onnx_path).read_text())
        grouped_layers = {layer.name for layer in compute if layer.groups > 1}
        grouped = [node for node, name in to_hwsim.items() if name in grouped_layers]
        hw_path, map_path = zigzag_files(tables, mac_pj, max_psum, args.zz_spatial, out, grouped)
        key = _key(_onnx_key(onnx_path), hw_path.read_text(), map_path.read_text(), args.lpf_limit, args.opt)
        zz_path = out / f"zz_{model}_{args.zz_spatial}_{key}.json"
        if args.rerun or not zz_path.exists():
            zz_raw = run_zigzag(zpy, onnx_path, hw_path, map_path, zz_path, args.lpf_limit, args.opt, args.nice)
            cached = False
        else:
            zz_raw = json.loads(zz_path.read_text())
            cached = True
        if len(zz_raw["layers"]) != len(compute):
            raise BenchError(f"{model}: ZigZag costed {len(zz_raw['layers'])} layers, hwsim has {len(compute)} "
                             "conv/linear layers")
        by_name = {to_hwsim.get(rec["name"], rec["name"]): zz_layer(rec, tables) for rec in zz_raw["layers"]}
        missing = [layer.name for layer in compute if layer.name not in by_name]
        if missing:
            raise BenchError(f"{model}: no ZigZag layer for hwsim layer {missing[0]!r} (ONNX names do not match)")
        zz = [by_name[layer.name] for layer in compute]
        entry: dict[str, Any] = {"tables": tables, "zigzag_unit_energy_pj": mac_pj, "zigzag_file": str(zz_path),
                                 "zigzag_cached": cached, "zigzag_timing": zz_raw["timing"],
                                 "zigzag_version": zz_raw.get("zigzag_version"), "onnx_export": export_timing,
                                 "hwsim_extract": extract_timing, "modes": {}}
        print(f"\n## {model}: {len(compute)} conv/linear layers, {macs:,} MACs; matched: {tables['rows']}x"
              f"{tables['cols']} int{tables['bits']} MAC, SRAM {tables['sram_kib']['ifmap']:g}/"
              f"{tables['sram_kib']['weight']:g}/{tables['sram_kib']['ofmap']:g} KiB x {tables['sram_width_bits']}-bit "
              f"({', '.join(f'{v:.4f}' for v in tables['sram_pj_per_bit'].values())} pJ/bit), DRAM "
              f"{tables['dram']} {tables['dram_pj_per_bit']:.3f} pJ/bit at {tables['dram_bits_per_cycle']:g} bit/cycle, "
              f"MAC {mac_pj:.4f} pJ (weighted mean), FF {tables['reg_pj_per_bit']:.6f} pJ/bit; ZigZag "
              f"{entry['zigzag_version']} LOMA lpf {args.lpf_limit}, opt {args.opt}"
              + (" (cached)" if cached else ""))
        print(f"hwsim array: {dataclasses.asdict(base.array)}; power: {dataclasses.asdict(base.power)}; schedules: "
              + "; ".join(f"{m} {dataclasses.asdict(a.schedule)}" for m, a in accs.items()))
        entry["hwsim_array"] = dataclasses.asdict(base.array)
        for mode in modes:
            hw = run_hwsim(workload, accs[mode], tables)
            cmp = compare(hw, zz, tables["rows"] * tables["cols"])
            print_comparison(f"{model}, {MODE_LABELS[mode]} vs ZigZag {args.zz_spatial}", cmp, hw)
            print_flagged(cmp)
            entry["modes"][mode] = {"hwsim": hw, "comparison": cmp}
        zt = zz_raw["timing"]
        print_ratio_summary(model, {m: entry["modes"][m]["comparison"] for m in modes})
        if args.mappers:
            entry["mappers"] = mapper_comparison(workload, matched_accelerator("layerwise", dataflow), zz,
                                                 zz_raw["timing"], args.opt)
            print_mappers(model, entry["mappers"])
        print_timing(model, import_timing, extract_timing, {m: entry["modes"][m]["hwsim"]["timing"] for m in modes},
                     export_timing, zz_raw["timing"], cached)
        results["models"][model] = entry
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    print(f"\nwrote {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
