"""The AdderNet FPGA comparison (arXiv 2101.10015) reproduced on hwsim's own hardware.

:func:`fpga_compare` takes one architecture (array size, operand width, dataflow) and, for each
PE kind, synthesizes and places its PE array on an FPGA (Yosys, nextpnr: LUTs, FFs, carry, DSPs,
Fmax), co-simulates one real layer on the kind's whole accelerator top (Verilator: bit-exact
output, cycles, toggles per block; :mod:`sim.activity`), and combines them: FPGA power at the
placed Fmax from the resources and the measured toggle rates (:mod:`cost_models.fpga_power`),
latency = cycles / Fmax, energy per inference (the layer) = power x latency. The ASIC view is
next to it: gate-level PE energy against the analytic one (:mod:`sim.energy`) and the PE area of
the 45 nm table. Synthesis runs in a background thread while Verilator builds.

``place`` (:data:`cost_models.fpga.PLACE_MODES`) says which arrays are placed: ``all`` (a kind
whose array exceeds the device -- LUTs, FFs, DSPs, BRAMs or I/O pins -- is refused, by name),
``fitting`` (the others are synthesized only) or ``none`` (synthesis only, for arrays larger than
any device of the family, e.g. a LUT-only 16x16 mac on ecp5). An array that is not placed gets
Yosys's resources and the Fmax of the fitted model (:func:`cost_models.fpga.fmax_mhz`,
``cost_models/data/fpga_fmax.json``), and so do its latency, power and energy: every kind's
``figures`` says, per figure, whether it was measured or estimated and by what.

The paper's figures are kept here, labelled as quoted: adder vs CNN (MAC) "under the same circuit
architecture", 16 % faster, 67.6-71.4 % less logic, 47.85-77.9 % less power.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import importlib.metadata
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cost_models import datapath_cost
from cost_models.fpga import FMAX_PATH, PLACE_MODES, fmax_mhz, load_fmax_model, load_model
from cost_models.fpga_power import FpgaActivity, fpga_power
from cost_models.tech import load_technology
from hwsim.api import resolve_accelerator
from hwsim.errors import ConfigError, DoesNotFit
from rtl.emit import generate
from rtl.synth import PNR_CAPACITY, PNR_DEVICE, device_overflow, find_tools, place_and_route, synthesize
from rtl.tools import ToolFailed
from sim.activity import block_activity, read_vcd
from sim.build import build_top
from sim.cosim import check_fits, run_layers
from sim.energy import pe_energy
from sim.layers import quantized_layer
from sim.spec import parse_layer

__all__ = ["PAPER", "KindResult", "figure_sources", "fpga_compare", "predicted_overflow",
           "versus_mac"]

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
    """One PE kind: ``resources`` of the synthesized array (lut, ff, carry, dsp, bram, io) and its
    Fmax (``fmax_mhz``, placed or fitted: ``fmax_basis``, ``fmax_source``, ``fitted_fmax_mhz``),
    the co-simulated layer's ``cycles`` and correctness, the FPGA ``power`` (JSON of
    :class:`~cost_models.fpga_power.FpgaPower`) and energy of the layer, the ASIC PE energy
    (JSON of :class:`~sim.energy.PEEnergy`) and PE array area; ``figures`` maps every figure to
    ``{"basis": "measured" | "estimated", "source": ...}`` (:func:`figure_sources`) and
    ``wall_s`` the seconds of synthesis, place and route and co-simulation."""

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
    figures: dict[str, dict[str, str]]
    wall_s: dict[str, float]


def predicted_overflow(acc: Any, target: str, lut_only: bool) -> str | None:
    """Why ``acc``'s PE array surely does not fit ``target``'s device, from the fitted resource
    model (:mod:`cost_models.fpga`) before any synthesis: LUTs and FFs even at the model's largest
    error below the prediction, DSPs by Yosys's mapping rule; None when it may fit."""
    model = load_model()
    try:
        blocks = model.array(acc.pe, acc.bits, acc.array.rows, acc.array.cols, target, lanes=acc.array.lanes,
                             lut_only=lut_only)
    except ValueError:  # no calibration for this kind: Yosys will tell
        return None
    dsp = model.uses_dsp(acc.pe, acc.bits, target, lut_only=lut_only)
    total = {r: sum(b[r] for b in blocks.values()) for r in ("lut", "ff", "dsp")}
    surely = {r: total[r] * (1 - model.array_error.get((acc.pe, target, dsp, r), 0.0)) for r in ("lut", "ff")}
    over = device_overflow({**surely, "dsp": total["dsp"]}, target)
    return over and f"{over} (predicted before synthesis: the fitted resource model less its largest error)"


def _refusal(acc: Any, why: str) -> DoesNotFit:
    """The one-line refusal of ``--place all`` for ``acc``'s array, ``why`` from :func:`device_overflow`."""
    return DoesNotFit(f"the {acc.pe} {acc.array.rows}x{acc.array.cols} array {why}: use --place fitting or "
                      f"--place none (Yosys resources, fitted Fmax) or a smaller --array")


def _array_verilog(acc: Any, out: Path) -> tuple[Path, str, int]:
    """Emit ``acc``'s PE array into ``out``: its Verilog, top module and port bits (clock and
    reset included), which a standalone placement needs as I/O pins."""
    module = generate(acc, out, modules=("array",), lint=False).manifest["modules"]["array"]
    return out / module["verilog"], module["top"], sum(port["width"] for port in module["ports"].values()) + 2


def _synth(acc: Any, verilog: Path, top: str, target: str, lut_only: bool, place: str) -> dict[str, Any]:
    """The Yosys resources of ``acc``'s array (``top`` in ``verilog``) and its Fmax: placed by
    nextpnr when ``place`` allows and the array fits the device, else the fitted model's, with
    the reason (``fmax_basis``, ``fmax_source``); the fitted model's in any case
    (``fitted_fmax_mhz``, to set against the placed one); ``wall_s`` the seconds of each step."""
    fitted = fmax_mhz(acc.pe, acc.bits, acc.array.rows, acc.array.cols, target, lanes=acc.array.lanes,
                      lut_only=lut_only)
    outdir = verilog.parent / f"array_{target}"
    start = time.perf_counter()
    result = synthesize(verilog, top, target, lut_only=lut_only, outdir=outdir)
    wall = {"synthesis": time.perf_counter() - start}
    why = "--place none" if place == "none" else device_overflow(result, target)
    if why is None:
        start = time.perf_counter()
        try:
            fmax = place_and_route(outdir, target)
            why = None if fmax else "nextpnr found no clocked path"
        except ToolFailed as exc:
            if place == "all":
                raise
            fmax, why = None, str(exc)
        wall["place_and_route"] = time.perf_counter() - start
        if fmax:
            return result | {"fmax_mhz": fmax, "fmax_basis": "measured", "fitted_fmax_mhz": fitted, "wall_s": wall,
                             "fmax_source": f"nextpnr-{target} placed and routed on the "
                                            f"{PNR_CAPACITY[target]['name']} (one seed)"}
    elif place == "all":
        raise _refusal(acc, why)
    model = load_fmax_model()
    return result | {"fmax_mhz": fitted, "fmax_basis": "estimated", "fitted_fmax_mhz": fitted, "wall_s": wall,
                     "fmax_source": f"fitted model {FMAX_PATH.name} (PE delay x array factor "
                                    f"{model.array_factor[target]:.2f}; calibrated arrays within "
                                    f"{model.array_error.get(target, 0):.0%}, seeds spread up to "
                                    f"{model.spread[target]:.0%}); not placed: {why}"}


def figure_sources(synth: dict[str, Any], target: str) -> dict[str, dict[str, str]]:
    """Per figure of a :class:`KindResult`, whether it was measured or estimated and by what;
    ``synth`` is :func:`_synth`'s result."""
    fmax_basis = synth["fmax_basis"]
    at = "the placed Fmax" if fmax_basis == "measured" else "the estimated Fmax"
    tool = f"{synth['yosys']} synth_{target} of the PE array: post-synthesis cells" + (
        "" if fmax_basis == "measured" else " (not placed)")
    power = f"cost_models/fpga_power.py from the resources and co-simulated toggle rates at {at}"

    def entry(basis: str, source: str) -> dict[str, str]:
        return {"basis": basis, "source": source}

    return {**{r: entry("measured", tool) for r in ("lut", "ff", "carry", "dsp", "bram", "io")},
            "fmax_mhz": entry(fmax_basis, synth["fmax_source"]),
            "cycles": entry("measured", "Verilator co-simulation of the whole top"),
            "bit_exact": entry("measured", "Verilator co-simulation against the integer reference"),
            "latency_us": entry(fmax_basis, f"co-simulated cycles / {at}"),
            "power": entry("estimated", power),
            "energy_uj": entry("estimated", f"{power}, times the latency"),
            "dynamic_energy_uj": entry("estimated", f"{power}, times the latency"),
            "asic": entry("estimated", "gate-level toggles of the co-simulation x the 45 nm table's energy "
                                       "per toggle (sim/energy.py), next to the analytic energy"),
            "area_um2": entry("estimated", "45 nm table PE area x PEs (cost_models)")}


def _activity(waves: Path, ops: int, pes: int) -> FpgaActivity:
    blocks = [b for b in block_activity(read_vcd(waves)) if b.block in ARRAY_BLOCKS]
    rate = sum(b.toggles for b in blocks) / max(1, sum(b.bits * b.cycles for b in blocks))
    cycles = blocks[0].cycles if blocks else 1
    busy = ops / (pes * cycles)
    return FpgaActivity(rate, rate, busy, busy, "co-simulation: toggles per bit per cycle of the PEs "
                                                "and array nets; block RAMs and DSPs busy with the PEs")


def fpga_compare(kinds: Sequence[str], rows: int, cols: int, bits: int, target: str, layer: str, *,
                 seed: int, lut_only: bool, out: Path, place: str = "all",
                 status: Callable[[str], None] = lambda text: None) -> dict[str, Any]:
    """Run the comparison (see the module docstring) into folder ``out``; everything as JSON.
    Raises :class:`~hwsim.errors.HwsimError` (one line) on a bad input, an array that does not fit
    the device under ``place="all"``, a missing or failing tool."""
    if target not in PNR_DEVICE:
        raise ConfigError(f"--target must be one of {', '.join(PNR_DEVICE)} (Fmax needs place and route "
                          f"or its fitted model)")
    if place not in PLACE_MODES:
        raise ConfigError(f"--place must be one of {', '.join(PLACE_MODES)}, not {place!r}")
    spec = parse_layer(layer)
    tech = load_technology()
    accs = {k: resolve_accelerator(pe=k, bits=1 if k == "xnor" else bits, array=(rows, cols)) for k in kinds}
    if "xnor" in accs:
        xnor = accs["xnor"]
        accs["xnor"] = dataclasses.replace(xnor, array=dataclasses.replace(xnor.array, lanes=XNOR_LANES))
    layers = {}

    def refuse(acc: Any, why: str | None) -> None:
        if why and place == "all":
            raise _refusal(acc, why)

    for kind, acc in accs.items():  # every refusal before any slow work
        try:
            layers[kind] = quantized_layer(kind, spec, seed=seed, bits=acc.bits, max_shift=acc.max_shift)
        except ValueError as exc:
            raise ConfigError(f"layer {layer!r}: {exc}") from None
        check_fits(acc, layers[kind].q, layers[kind].x)
        refuse(acc, predicted_overflow(acc, target, lut_only))
    arrays: dict[str, tuple[Path, str, int]] = {}
    for kind, acc in accs.items():
        arrays[kind] = _array_verilog(acc, out / kind)
        refuse(acc, device_overflow({"io": arrays[kind][2]}, target))
    find_tools(target, pnr=place != "none")
    results: list[KindResult] = []
    tools: dict[str, str] = {}
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        synths = {k: pool.submit(_synth, acc, *arrays[k][:2], target, lut_only, place) for k, acc in accs.items()}
        cosims: dict[str, tuple[Any, ...]] = {}
        for kind, acc in accs.items():  # every co-simulation while synthesis works through the kinds
            status(f"{kind}: Verilator build and co-simulation of {layer}")
            start = time.perf_counter()
            build = build_top(acc, waves=True)
            ql = layers[kind]
            run = run_layers(build, [(ql.q, ql.x)], waves=True)
            energy = pe_energy(run.waves, build.top.pe, rows, cols, tech, build.dir / "gates")
            activity = _activity(run.waves, energy.ops, rows * cols)
            cosims[kind] = build, run, energy, activity, time.perf_counter() - start
        for kind, acc in accs.items():
            status(f"{kind}: waiting for synthesis{'' if place == 'none' else ' and place and route'} on {target}")
            synth = synths[kind].result()
            build, run, energy, activity, cosim_s = cosims[kind]
            fmax = synth["fmax_mhz"]
            power = fpga_power(synth, target, fmax, activity)
            cycles = run.layers[0].cycles
            cost = datapath_cost(kind, tech, bits=acc.bits, acc_bits=build.top.pe.acc_shape.width,
                                 lanes=build.top.pe.lanes, max_shift=build.top.pe.max_shift)
            results.append(KindResult(
                kind=kind, bits=acc.bits,
                resources={k: synth.get(k) for k in ("lut", "ff", "carry", "dsp", "bram", "io", "fmax_mhz",
                                                     "fmax_basis", "fmax_source", "fitted_fmax_mhz")},
                cycles=cycles, bit_exact=run.layers[0].bit_exact, power=power.to_dict(),
                latency_us=cycles / fmax, energy_uj=power.energy_uj(cycles),
                dynamic_energy_uj=power.total_dynamic_mw * cycles / fmax * 1e-3,
                asic=energy.to_dict(), area_um2=cost.area_um2 * rows * cols,
                figures=figure_sources(synth, target), wall_s=synth["wall_s"] | {"cosimulation": cosim_s}))
            tools["yosys"] = synth["yosys"]
    finally:  # a refusal or failure drops the kinds not yet synthesized
        pool.shutdown(cancel_futures=True)
    tools |= {name: importlib.metadata.version(pkg) for name, pkg in
              (("nextpnr", f"yowasp-nextpnr-{target}"), ("verilator", "verilator"), ("cocotb", "cocotb"),
               ("amaranth", "amaranth")) if name != "nextpnr" or place != "none"}
    return {"array": [rows, cols], "bits": bits, "target": target, "layer": layer, "seed": seed,
            "lut_only": lut_only, "place": place, "tools": tools, "paper": PAPER, "tech": tech.name,
            "kinds": [vars(r) for r in results], "versus_mac": versus_mac(results)}


def versus_mac(results: Sequence[KindResult]) -> dict[str, dict[str, float]]:
    """Per kind against mac, in percent: logic (LUT) and power saving, speed (Fmax) gain, energy
    saving; ``basis`` says which were measured on both sides and which estimated (on either);
    ``fitted_speed_gain_pct`` is the fitted Fmax model's on both sides."""
    base = next((r for r in results if r.kind == "mac"), None)
    if base is None:
        return {}

    def saving(a: float, b: float) -> float:
        return 100.0 * (1 - a / b) if b else 0.0

    def speed_basis(r: KindResult) -> str:
        both = {r.resources["fmax_basis"], base.resources["fmax_basis"]}
        return "measured" if both == {"measured"} else "estimated"

    return {r.kind: {"logic_saving_pct": saving(r.resources["lut"], base.resources["lut"]),
                     "ff_saving_pct": saving(r.resources["ff"], base.resources["ff"]),
                     "speed_gain_pct": 100.0 * (r.resources["fmax_mhz"] / base.resources["fmax_mhz"] - 1),
                     "fitted_speed_gain_pct": 100.0 * (r.resources["fitted_fmax_mhz"]
                                                       / base.resources["fitted_fmax_mhz"] - 1),
                     "dynamic_power_saving_pct": saving(r.power["total_dynamic_mw"], base.power["total_dynamic_mw"]),
                     "power_saving_pct": saving(r.power["total_mw"], base.power["total_mw"]),
                     "dynamic_energy_saving_pct": saving(r.dynamic_energy_uj, base.dynamic_energy_uj),
                     "basis": {"logic": "measured", "speed": speed_basis(r), "power": "estimated",
                               "energy": "estimated"}}
            for r in results if r.kind != "mac"}
