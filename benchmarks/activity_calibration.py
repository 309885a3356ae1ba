"""Activity-based vs analytic PE energy per PE kind on real layers; calibrated factors; value dependence.

For every PE kind a 4x4 top is built with waveforms and five seeded PyTorch layers
(:mod:`sim.layers`) are co-simulated one by one; each run's PEs are replayed on the PE's gate
netlist (:func:`sim.energy.pe_energy`). The first three layers calibrate the kind's activity
factor (gate-level logic energy over analytic logic energy, summed), the last two are held out:
the calibrated analytic energy (factor x analytic) is compared with their gate-level energy.
Then the value dependence, on the gate netlist alone (no Verilator): 16 PEs, 2,000 cycles of
synthetic operand streams -- random, zero activations, 75 % zero activations, small |x - w|
(adder), sign agreement (xnor: every lane agrees, half agree, none agree).

Prints the tables and the ``activity:`` group for ``cost_models/data/horowitz45.yaml``; writes
everything as JSON (``--json``). About 6 minutes on 2 cores (four Verilator builds).

Run: ``.venv/bin/python benchmarks/run.py activity_calibration [-- --json out.json]``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path

import numpy as np

from contract import PIPELINE_CYCLES
from cost_models.tech import load_technology
from hwsim.api import resolve_accelerator
from hwsim.files import build_root
from models.intref import QLayer
from rtl.gatelevel import GateSim
from rtl.pe import PESpec, encode_shift_weight
from sim.build import build_top
from sim.cosim import run_layers
from sim.energy import gate_netlist, pe_energy, spec_energy
from sim.layers import quantized_layer
from sim.spec import parse_layer

KINDS = ("mac", "adder", "shift", "xnor")
#: Calibration layers, then held-out layers.
CALIBRATE = ("conv k=3 cin=4 cout=4 h=6 w=6 pad=1", "conv k=3 cin=8 cout=4 h=6 w=6 pad=1",
             "conv k=1 cin=16 cout=8 h=4 w=4")
HELD_OUT = ("linear cin=32 cout=8", "conv k=3 cin=4 cout=8 h=6 w=6 pad=1 stride=2")
XNOR_LAYERS = {  # binary layers pack channels into lanes: wider channel counts
    "conv k=3 cin=4 cout=4 h=6 w=6 pad=1": "conv k=3 cin=64 cout=4 h=6 w=6 pad=1",
    "conv k=3 cin=8 cout=4 h=6 w=6 pad=1": "conv k=3 cin=128 cout=4 h=6 w=6 pad=1",
    "conv k=1 cin=16 cout=8 h=4 w=4": "conv k=1 cin=256 cout=8 h=4 w=4",
    "linear cin=32 cout=8": "linear cin=512 cout=8",
    "conv k=3 cin=4 cout=8 h=6 w=6 pad=1 stride=2": "conv k=3 cin=64 cout=8 h=6 w=6 pad=1 stride=2",
}
ARRAY = (4, 4)
#: The stream whose energy ratio is the zero-activation factor: zero activations against weights
#: drawn from the calibration layers (the adder's |0 - w| depends on how large real weights are).
ZERO_STREAM = "zero activations, layer weights"
SEED = 0


def weight_codes(q: QLayer) -> np.ndarray:
    """The weights of ``q`` as the PE's weight port sees them (shift: the codes of s and p)."""
    if q.pe != "shift":
        return q.weight.ravel()
    return np.array([encode_shift_weight(int(s), int(p) if s else 0, q.max_shift)
                     for s, p in zip(q.weight.ravel(), q.shift.ravel())])


def layer_runs(kind: str, tech) -> tuple[list[dict], np.ndarray]:
    """Co-simulate the five layers on a 4x4 ``kind`` top; their PE energies, and the calibration
    layers' weights (port values)."""
    acc = resolve_accelerator(pe=kind, bits=1 if kind == "xnor" else 8, array=ARRAY)
    build = build_top(acc, waves=True)
    out, weights = [], []
    for text in CALIBRATE + HELD_OUT:
        layer = XNOR_LAYERS[text] if kind == "xnor" else text
        ql = quantized_layer(kind, parse_layer(layer), seed=SEED, bits=acc.bits, max_shift=acc.max_shift)
        run = run_layers(build, [(ql.q, ql.x)], waves=True)
        energy = pe_energy(run.waves, build.top.pe, *ARRAY, tech, build.dir / "gates")
        out.append({"layer": layer, "held_out": text in HELD_OUT, "bit_exact": run.layers[0].bit_exact,
                    **energy.to_dict()})
        if text in CALIBRATE:
            weights.append(weight_codes(ql.q))
    return out, np.concatenate(weights)


def streams(kind: str, spec: PESpec, cycles: int, lanes: int, rng: np.random.Generator,
            layer_weights: np.ndarray) -> dict[str, dict]:
    """Synthetic operand streams (``i_x``, ``i_w`` as ``(cycles, lanes)`` port bits) by name;
    ``layer_weights`` are real weights (port values) to draw from."""
    if kind == "xnor":
        full = (1 << spec.lanes) - 1
        weights = 1 << np.arange(spec.lanes, dtype=object)
        w, half = ((rng.integers(0, 2, (cycles, lanes, spec.lanes)) * weights).sum(axis=-1)
                   for _ in range(2))
        return {"random": {"i_x": half, "i_w": w}, "all lanes agree": {"i_x": w, "i_w": w},
                "no lane agrees": {"i_x": w ^ full, "i_w": w}}
    lo, hi = -(1 << (spec.bits - 1)) + 1, 1 << (spec.bits - 1)
    x = rng.integers(lo, hi, (cycles, lanes))
    sparse = np.where(rng.random((cycles, lanes)) < 0.75, 0, x)
    if kind == "shift":
        codes = np.array([encode_shift_weight(int(s), int(p), spec.max_shift)
                          for s, p in zip(rng.choice([-1, 0, 1], cycles * lanes),
                                          rng.integers(0, spec.max_shift + 1, cycles * lanes))])
        w = codes.reshape(cycles, lanes)
    else:
        w = rng.integers(lo, hi, (cycles, lanes))
    mask = (1 << spec.bits) - 1
    cases = {"random": (x, w), "zero activations": (np.zeros_like(x), w),
             ZERO_STREAM: (np.zeros_like(x), rng.choice(layer_weights, (cycles, lanes))),
             "75% zero activations": (sparse, w)}
    if kind == "adder":
        near = np.clip(w + rng.integers(-2, 3, w.shape), lo, hi - 1)
        cases["small |x - w| (<= 2)"] = (near, w)
    return {name: {"i_x": xs & mask, "i_w": ws if kind == "shift" else ws & mask}
            for name, (xs, ws) in cases.items()}


def value_dependence(kind: str, tech, folder: Path, layer_weights: np.ndarray, cycles: int = 2000,
                     lanes: int = 16) -> list[dict]:
    """Logic energy per op of the synthetic streams on the gate netlist of a ``kind`` PE."""
    spec = PESpec(kind, 1 if kind == "xnor" else 8, 36, lanes=64)
    netlist = gate_netlist(spec, folder)
    sim = GateSim(netlist)
    rows = []
    for name, ports in streams(kind, spec, cycles, lanes, np.random.default_rng(SEED), layer_weights).items():
        # every cycle a pair; a pair's flags PIPELINE_CYCLES after its operands
        restart = (np.arange(cycles)[:, None] - PIPELINE_CYCLES) % 36 == 0
        stimulus = {**ports, "i_add": np.ones((cycles, lanes), dtype=int),
                    "i_restart": restart * np.ones((1, lanes), dtype=int)}
        run = sim.run(stimulus)
        energy = spec_energy(spec, run, tech, ops=cycles * lanes, zero_ops=0, cells=netlist.counts())
        rows.append({"pe": kind, "stream": name, "logic_ratio": energy.logic_ratio,
                     "gate_logic_pj_per_op": energy.gate_logic_pj / energy.ops,
                     "analytic_logic_pj_per_op": energy.analytic_logic_pj / energy.ops})
    return rows


def calibrate(runs: list[dict], zero_factor: float) -> dict:
    """The factor of operand pairs with a nonzero activation, fitted on the calibration layers with
    ``zero_factor`` (measured on a zero-activation stream) for the others; each layer's prediction
    ``E_op * (factor * nonzero + zero_factor * zero)`` against its gate-level energy."""
    def per_op(r: dict) -> float:
        return r["analytic_logic_pj"] / r["ops"]

    cal = [r for r in runs if not r["held_out"]]
    zero = sum(per_op(r) * r["zero_ops"] for r in cal)
    factor = ((sum(r["gate_logic_pj"] for r in cal) - zero_factor * zero)
              / sum(per_op(r) * (r["ops"] - r["zero_ops"]) for r in cal))
    errors = [{"layer": r["layer"], "held_out": r["held_out"],
               "error": per_op(r) * (factor * (r["ops"] - r["zero_ops"]) + zero_factor * r["zero_ops"])
               / r["gate_logic_pj"] - 1} for r in runs]
    return {"factor": factor, "zero_factor": zero_factor, "errors": errors,
            "held_out": [e for e in errors if e["held_out"]]}


def yaml_entries(report: dict) -> str:
    """The per-kind entries of the technology table's ``activity`` group, with their provenance."""
    lines = []
    for kind, k in report["kinds"].items():
        held = ", ".join(f"{h['layer']} {h['error']:+.1%}" for h in k["held_out"])
        cal = "; ".join(r["layer"] for r in k["layers"] if not r["held_out"])
        lines += [f"  {kind}:", f"    factor: {k['factor']:.3f}", f"    zero_factor: {k['zero_factor']:.3f}",
                  "    assumption: true", "    source: >-",
                  f"      calibrated {report['date']} by benchmarks/activity_calibration.py on a "
                  f"{report['array'][0]}x{report['array'][1]} array,",
                  f"      seed-{report['seed']} PyTorch layers of sim/layers.py (default Kaiming-uniform "
                  "weights, standard-normal input,",
                  f"      8-bit quantized; xnor binary): {cal}. Held out: {held}."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="F", help="write every figure as JSON")
    parser.add_argument("--kinds", default=",".join(KINDS), help="PE kinds (default all)")
    args = parser.parse_args(argv)
    tech = load_technology()
    start = time.perf_counter()
    report: dict = {"date": datetime.date.today().isoformat(), "seed": SEED, "array": list(ARRAY),
                    "calibrate": list(CALIBRATE), "held_out": list(HELD_OUT), "kinds": {}}
    for kind in args.kinds.split(","):
        runs, layer_weights = layer_runs(kind, tech)
        print(f"\n{kind}: layer, zero operand pairs, gate/analytic logic, gate/analytic total, "
              f"netlist = RTL")
        for r in runs:
            tag = "held out" if r["held_out"] else "calibrate"
            print(f"  {r['layer']:<48} {r['zero_ops'] / r['ops']:5.1%}  {r['logic_ratio']:.3f}  "
                  f"{r['total_ratio']:.3f}  {r['matches']}  ({tag})")
        deps = value_dependence(kind, tech, build_root() / "gates" / kind, layer_weights)
        zero = next((d["logic_ratio"] for d in deps if d["stream"] == ZERO_STREAM), None)
        cal = calibrate(runs, 1.0 if zero is None else zero)
        if zero is None:  # xnor: binary activations have no zero, one factor serves
            cal["zero_factor"] = cal["factor"]
        print(f"  factor {cal['factor']:.3f} (zero activations {cal['zero_factor']:.3f}); held out: "
              + ", ".join(f"{h['layer']}: {h['error']:+.1%}" for h in cal["held_out"]))
        for d in deps:
            print(f"  value dependence  {d['stream']:<24} gate/analytic logic {d['logic_ratio']:.3f} "
                  f"({d['gate_logic_pj_per_op']:.4f} vs {d['analytic_logic_pj_per_op']:.4f} pJ/op)")
        report["kinds"][kind] = {"layers": runs, **cal, "value_dependence": deps}
    report["seconds"] = time.perf_counter() - start
    print(f"\n{report['seconds']:.0f} s; the entries of `activity:` in cost_models/data/horowitz45.yaml:")
    print(yaml_entries(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=float) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
