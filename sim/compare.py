"""The AdderNet FPGA comparison (arXiv 2101.10015) reproduced on hwsim's own hardware.

:func:`fpga_compare` takes one architecture (array size, operand width, dataflow) and, for each
PE kind, synthesizes and places its PE array on an FPGA (Yosys, nextpnr: LUTs, FFs, carry, DSPs,
Fmax), co-simulates one real layer on the kind's whole accelerator top (Verilator: bit-exact
output, cycles, toggles per block; :mod:`sim.activity`), and combines them: FPGA power at the
placed Fmax from the resources and the measured toggle rates (:mod:`cost_models.fpga_power`),
latency = cycles / Fmax, energy per inference (the layer) = power x latency. The ASIC view is
next to it: gate-level PE energy against the analytic one (:mod:`sim.energy`) and the PE area of
the 45 nm table. Synthesis runs in a background thread while Verilator builds.

The paper's figures are kept here, labelled as quoted: adder vs CNN (MAC) "under the same circuit
architecture", 16 % faster, 67.6-71.4 % less logic, 47.85-77.9 % less power.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import importlib.metadata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cost_models import datapath_cost
from cost_models.fpga import fmax_mhz
from cost_models.fpga_power import FpgaActivity, fpga_power
from cost_models.tech import load_technology
from hwsim.api import resolve_accelerator
from hwsim.errors import ConfigError
from rtl.emit import generate
from rtl.synth import PNR_DEVICE, find_tools, synthesize
from rtl.tools import ToolFailed
from sim.activity import block_activity, read_vcd
from sim.build import build_top
from sim.cosim import check_fits, run_layers
from sim.energy import pe_energy
from sim.layers import quantized_layer
from sim.spec import parse_layer

__all__ = ["PAPER", "KindResult", "fpga_compare"]

#: The seed paper's FPGA result, adder vs MAC, as quoted in its abstract (percent).
PAPER = {"source": "H. Zhang et al., AdderNet and its minimalist hardware design for energy-efficient "
                   "artificial intelligence, arXiv 2101.10015 (abstract)",
         "speed_gain_pct": (16.0, 16.0), "logic_saving_pct": (67.6, 71.4), "power_saving_pct": (47.85, 77.9)}
#: Lanes of the xnor array: 64-lane words need more I/O than a standalone 4x4 array can place
#: (as in benchmarks/calibrate_fmax.py).
XNOR_LANES = 8
#: Blocks whose toggle rate stands for the synthesized array's logic (sim.activity.BLOCKS).
ARRAY_BLOCKS = ("pe.operands", "pe.stage1", "pe.accumulator", "interconnect")


@dataclass(frozen=True)
class KindResult:
    """One PE kind: ``resources`` of the placed array (lut, ff, carry, dsp, bram, fmax_mhz),
    the co-simulated layer's ``cycles`` and correctness, the FPGA ``power`` (JSON of
    :class:`~cost_models.fpga_power.FpgaPower`) and energy of the layer, the ASIC PE energy
    (JSON of :class:`~sim.energy.PEEnergy`) and PE array area."""

    kind: str
    bits: int
    resources: dict[str, Any]
    cycles: int
    bit_exact: bool
    power: dict[str, Any]
    latency_us: float
    energy_uj: float
    dynamic_energy_uj: float
    asic: dict[str, Any]
    area_um2: float


def _synth(acc: Any, out: Path, target: str, lut_only: bool) -> dict[str, Any]:
    """The array's resources and placed Fmax; when placement fails, Yosys' resources and the
    fitted Fmax (:func:`cost_models.fpga.fmax_mhz`), with the reason."""
    gen = generate(acc, out, modules=("array",), lint=False)
    module = gen.manifest["modules"]["array"]
    verilog, top, outdir = out / module["verilog"], module["top"], out / f"array_{target}"
    try:
        result = synthesize(verilog, top, target, lut_only=lut_only, pnr=True, outdir=outdir)
    except ToolFailed as exc:
        result = synthesize(verilog, top, target, lut_only=lut_only, outdir=outdir) | {"pnr_skipped": str(exc)}
    if result.get("fmax_mhz"):
        return result | {"fmax_source": "nextpnr"}
    fitted = fmax_mhz(acc.pe, acc.bits, acc.array.rows, acc.array.cols, target, lanes=acc.array.lanes,
                      lut_only=lut_only)
    return result | {"fmax_mhz": fitted, "fmax_source": "fitted model (not placed: "
                                                        f"{result.get('pnr_skipped', 'no Fmax')})"}


def _activity(waves: Path, ops: int, pes: int) -> FpgaActivity:
    blocks = [b for b in block_activity(read_vcd(waves)) if b.block in ARRAY_BLOCKS]
    rate = sum(b.toggles for b in blocks) / max(1, sum(b.bits * b.cycles for b in blocks))
    cycles = blocks[0].cycles if blocks else 1
    busy = ops / (pes * cycles)
    return FpgaActivity(rate, rate, busy, busy, "co-simulation: toggles per bit per cycle of the PEs "
                                                "and array nets; block RAMs and DSPs busy with the PEs")


def fpga_compare(kinds: Sequence[str], rows: int, cols: int, bits: int, target: str, layer: str, *,
                 seed: int, lut_only: bool, out: Path,
                 status: Callable[[str], None] = lambda text: None) -> dict[str, Any]:
    """Run the comparison (see the module docstring) into folder ``out``; everything as JSON."""
    if target not in PNR_DEVICE:
        raise ConfigError(f"--target must be one of {', '.join(PNR_DEVICE)} (Fmax needs place and route)")
    find_tools(target, pnr=True)
    spec = parse_layer(layer)
    tech = load_technology()
    accs = {k: resolve_accelerator(pe=k, bits=1 if k == "xnor" else bits, array=(rows, cols)) for k in kinds}
    if "xnor" in accs:
        xnor = accs["xnor"]
        accs["xnor"] = dataclasses.replace(xnor, array=dataclasses.replace(xnor.array, lanes=XNOR_LANES))
    layers = {}
    for kind, acc in accs.items():  # every refusal before any slow work
        try:
            layers[kind] = quantized_layer(kind, spec, seed=seed, bits=acc.bits, max_shift=acc.max_shift)
        except ValueError as exc:
            raise ConfigError(f"layer {layer!r}: {exc}") from None
        check_fits(acc, layers[kind].q, layers[kind].x)
    results: list[KindResult] = []
    tools: dict[str, str] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        synths = {k: pool.submit(_synth, acc, out / k, target, lut_only) for k, acc in accs.items()}
        for kind, acc in accs.items():
            status(f"{kind}: Verilator build and co-simulation of {layer}")
            build = build_top(acc, waves=True)
            ql = layers[kind]
            run = run_layers(build, [(ql.q, ql.x)], waves=True)
            energy = pe_energy(run.waves, build.top.pe, rows, cols, tech, build.dir / "gates")
            activity = _activity(run.waves, energy.ops, rows * cols)
            status(f"{kind}: waiting for synthesis and place and route on {target}")
            synth = synths[kind].result()
            fmax = synth["fmax_mhz"]
            power = fpga_power(synth, target, fmax, activity)
            cycles = run.layers[0].cycles
            cost = datapath_cost(kind, tech, bits=acc.bits, acc_bits=build.top.pe.acc_shape.width,
                                 lanes=build.top.pe.lanes, max_shift=build.top.pe.max_shift)
            results.append(KindResult(
                kind=kind, bits=acc.bits,
                resources={k: synth.get(k) for k in ("lut", "ff", "carry", "dsp", "bram", "fmax_mhz",
                                                     "fmax_source")},
                cycles=cycles, bit_exact=run.layers[0].bit_exact, power=power.to_dict(),
                latency_us=cycles / fmax, energy_uj=power.energy_uj(cycles),
                dynamic_energy_uj=power.total_dynamic_mw * cycles / fmax * 1e-3,
                asic=energy.to_dict(), area_um2=cost.area_um2 * rows * cols))
            tools["yosys"] = synth["yosys"]
    tools |= {name: importlib.metadata.version(pkg) for name, pkg in
              (("nextpnr", f"yowasp-nextpnr-{target}"), ("verilator", "verilator"), ("cocotb", "cocotb"),
               ("amaranth", "amaranth"))}
    return {"array": [rows, cols], "bits": bits, "target": target, "layer": layer, "seed": seed,
            "lut_only": lut_only, "tools": tools, "paper": PAPER, "tech": tech.name,
            "kinds": [vars(r) for r in results], "versus_mac": versus_mac(results)}


def versus_mac(results: Sequence[KindResult]) -> dict[str, dict[str, float]]:
    """Per kind against mac, in percent: logic (LUT) and power saving, speed (Fmax) gain, energy saving."""
    base = next((r for r in results if r.kind == "mac"), None)
    if base is None:
        return {}

    def saving(a: float, b: float) -> float:
        return 100.0 * (1 - a / b) if b else 0.0

    return {r.kind: {"logic_saving_pct": saving(r.resources["lut"], base.resources["lut"]),
                     "ff_saving_pct": saving(r.resources["ff"], base.resources["ff"]),
                     "speed_gain_pct": 100.0 * (r.resources["fmax_mhz"] / base.resources["fmax_mhz"] - 1),
                     "dynamic_power_saving_pct": saving(r.power["total_dynamic_mw"], base.power["total_dynamic_mw"]),
                     "power_saving_pct": saving(r.power["total_mw"], base.power["total_mw"]),
                     "dynamic_energy_saving_pct": saving(r.dynamic_energy_uj, base.dynamic_energy_uj)}
            for r in results if r.kind != "mac"}
