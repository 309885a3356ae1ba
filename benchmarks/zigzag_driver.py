"""Run ZigZag on one ONNX workload and write its per-layer results as plain JSON.

This file is our own driver for ``benchmarks/peer_zigzag.py``; it runs in ZigZag's own virtual
environment (``zigzag-dse``, ``onnx``, ``six``), never in hwsim's, and imports nothing of hwsim:

    ZVENV/bin/python benchmarks/zigzag_driver.py MODEL.onnx HW.yaml MAP.yaml OUT.json \
        [--opt energy] [--lpf-limit 6] [--dump DIR]

For every Conv/Gemm layer it records ZigZag's chosen mapping (spatial unrolling, temporal loop
order per operand and memory level), its latency terms (``ideal_temporal_cycle``, stall/slack,
on-loading, off-loading, ``latency_total2``), the MAC energy, the energy of every memory level per
operand and the bits moved at every level (word accesses x the level's ``bandwidth_max``, which is
what ZigZag prices), plus the wall and CPU time of the API call.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
import time


def _cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _four_way(value) -> dict[str, float]:
    """A ZigZag FourWayDataMoving as a dict (reads to low / writes from low / reads to high / writes from high)."""
    keys = ("rd_out_to_low", "wr_in_by_low", "rd_out_to_high", "wr_in_by_high")
    data = getattr(value, "data", None)
    if isinstance(data, dict):
        return {str(getattr(k, "value", k)): float(v) for k, v in data.items()}
    if all(hasattr(value, k) for k in keys):
        return {k: float(getattr(value, k)) for k in keys}
    try:
        return {"total": float(value)}
    except (TypeError, ValueError):
        return {"repr": str(value)}


def _operand_key(op) -> str:
    return str(getattr(op, "name", op)).split(".")[-1]


def _level(lvl) -> dict:
    inst = getattr(lvl, "memory_instance", lvl)
    out = {"name": str(getattr(inst, "name", lvl))}
    for key in ("r_bw", "w_bw", "r_cost", "w_cost", "size"):
        try:
            out[key] = float(getattr(inst, key))
        except (AttributeError, TypeError, ValueError):
            pass
    return out


def _layer_record(cme) -> dict:
    layer = cme.layer
    dims = {str(k).split(".")[-1]: int(v) for k, v in layer.layer_dim_sizes.items()}
    levels: dict[str, list[dict]] = {}  # per memory operand (I1, I2, O), innermost level first
    for op, mem_levels in cme.mem_hierarchy_dict.items():
        levels[_operand_key(op)] = [_level(lvl) for lvl in mem_levels]
    raw_links = getattr(cme.memory_operand_links, "data", cme.memory_operand_links)
    links = {_operand_key(k): _operand_key(v) for k, v in raw_links.items()} if hasattr(raw_links, "items") else {}
    energy: dict[str, list[dict]] = {}
    for op, per_level in cme.mem_energy_breakdown_further.items():
        energy[_operand_key(op)] = [_four_way(v) for v in per_level]
    words: dict[str, list[dict]] = {}
    for op, per_level in cme.memory_word_access.items():
        words[_operand_key(op)] = [_four_way(v) for v in per_level]
    spatial = str(getattr(cme.spatial_mapping_int, "mapping_dict_origin", cme.spatial_mapping_int))
    temporal = {}
    tm = getattr(cme.temporal_mapping, "mapping_dic_stationary", None)
    if isinstance(tm, dict):
        for op, per_level in tm.items():
            temporal[_operand_key(op)] = [[(str(d).split(".")[-1], float(s)) for d, s in lvl] for lvl in per_level]
    return {
        "name": str(getattr(layer, "name", "")),
        "id": int(getattr(layer, "id", -1)),
        "type": str(getattr(layer, "type", "")),
        "dims": dims,
        "macs": int(layer.total_mac_count),
        "precision": {_operand_key(k): int(v) for k, v in layer.operand_precision.items()}
        if hasattr(layer.operand_precision, "items") else str(layer.operand_precision),
        "latency_total2": float(cme.latency_total2),
        "ideal_cycle": float(cme.ideal_cycle),
        "ideal_temporal_cycle": float(cme.ideal_temporal_cycle),
        "stall_slack_comb": float(cme.stall_slack_comb),
        "onloading": float(cme.data_onloading_cycle),
        "offloading": float(cme.data_offloading_cycle),
        "systolic_drain": float(getattr(cme, "systolic_drain_cycle", 0.0) or 0.0),
        "mac_energy": float(cme.mac_energy),
        "energy_total": float(cme.energy_total),
        "mem_energy_by_operand_level": energy,
        "word_access_by_operand_level": words,
        "levels": levels,
        "memory_operand_links": links,
        "spatial_mapping": spatial,
        "temporal_mapping": temporal,
        "temporal_mapping_str": str(cme.temporal_mapping),
        "mac_spatial_utilization": float(cme.mac_spatial_utilization),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("onnx")
    parser.add_argument("hardware")
    parser.add_argument("mapping")
    parser.add_argument("out")
    parser.add_argument("--opt", default="energy", choices=("energy", "latency", "EDP"))
    parser.add_argument("--lpf-limit", type=int, default=6)
    parser.add_argument("--dump", default=None, help="ZigZag's own output folder (default: next to OUT)")
    parser.add_argument("--from-pickle", default=None,
                        help="re-extract OUT from the CME pickle of an earlier run instead of running ZigZag")
    args = parser.parse_args()
    if args.from_pickle:
        import pickle

        with open(args.from_pickle, "rb") as fh:
            cmes = pickle.load(fh)
        layers = [_layer_record(cme) for cme in cmes]
        with open(args.out, "w") as fh:
            json.dump({"zigzag_version": _version(), "opt": args.opt, "lpf_limit": args.lpf_limit,
                       "energy_total_pj": sum(r["energy_total"] for r in layers),
                       "latency_total_cycles": sum(r["latency_total2"] for r in layers),
                       "timing": {"import_wall_s": 0.0, "import_cpu_s": 0.0, "run_wall_s": 0.0, "run_cpu_s": 0.0,
                                  "note": "re-extracted from a pickle; run time not recorded"},
                       "layers": layers}, fh, indent=1)
        return 0
    logging.disable(logging.WARNING)  # ZigZag logs every layer at INFO; keep warnings quiet too
    wall0, cpu0 = time.perf_counter(), _cpu_s()
    from zigzag import api  # noqa: E402 (timed: importing ZigZag is part of its cost)

    wall_import, cpu_import = time.perf_counter() - wall0, _cpu_s() - cpu0
    dump = args.dump or os.path.splitext(args.out)[0] + "_dump"
    wall1, cpu1 = time.perf_counter(), _cpu_s()
    energy, latency, cmes = api.get_hardware_performance_zigzag(
        workload=args.onnx, accelerator=args.hardware, mapping=args.mapping, opt=args.opt,
        dump_folder=dump, pickle_filename=os.path.join(dump, "cmes.pickle"), lpf_limit=args.lpf_limit,
        loma_show_progress_bar=False)
    wall_run, cpu_run = time.perf_counter() - wall1, _cpu_s() - cpu1
    layers = [_layer_record(cme) for cme, _extra in cmes[0][1]]
    result = {
        "zigzag_version": _version(),
        "opt": args.opt, "lpf_limit": args.lpf_limit,
        "energy_total_pj": float(energy), "latency_total_cycles": float(latency),
        "timing": {"import_wall_s": wall_import, "import_cpu_s": cpu_import,
                   "run_wall_s": wall_run, "run_cpu_s": cpu_run},
        "layers": layers,
    }
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=1)
    print(f"zigzag: {len(layers)} layers, {energy:.4g} pJ, {latency:.4g} cycles, "
          f"{wall_run:.1f} s wall / {cpu_run:.1f} s CPU", file=sys.stderr)
    return 0


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("zigzag-dse")
    except Exception:  # noqa: BLE001
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
