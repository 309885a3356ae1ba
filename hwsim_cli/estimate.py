"""``hwsim estimate`` (cost a network on a PE array) and ``hwsim models`` (what can be costed)."""

from __future__ import annotations

import argparse
import dataclasses

from rich.table import Table

from contract import PE_KINDS
from cost_models.fpga import TARGETS as FPGA_TARGETS
from hwsim import files
from hwsim.accelerator import read_config, validate, with_pe
from hwsim.api import array_clocks, clock_for_target, workloads
from hwsim.errors import ConfigError
from hwsim.simulate import TIMINGS, Report
from hwsim_cli import options
from hwsim_cli.notices import warn

__all__ = ["add_parsers", "cmd_estimate", "cmd_models"]


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add ``estimate`` and ``models`` to ``hwsim``'s sub-parsers."""
    est = sub.add_parser("estimate", help="cycles, energy and area of a network on a PE array")
    est.add_argument("model", help="registry name (see `hwsim models`), path/file.py:factory, "
                                   "package.module:factory, or a SCALE-Sim topology .csv")
    options.add_accelerator_options(est, tech=True)
    est.add_argument("--target", choices=FPGA_TARGETS,
                     help="an FPGA family: also estimate FPGA resources (LUT/FF/DSP/BRAM) from synthesis-fitted "
                          "models, and clock each PE array at its fitted Fmax (ice40, ecp5; the auxiliary arrays "
                          "in a clock domain of their own) unless --clock-mhz or the config's clock_mhz is given")
    est.add_argument("--lut-only", action="store_true",
                     help="with --target: clock the arrays as LUT-only arithmetic (no DSP multipliers), as "
                          "the AdderNet FPGA comparisons do")
    est.add_argument("--compare", choices=(*PE_KINDS, "none"), metavar="PE",
                     help="also cost the network on this PE kind and print ratios "
                          "(default: mac for the other PE kinds; none to turn it off)")
    est.add_argument("--convert-all", action="store_true",
                     help="convert the first conv and classifier too (default: they stay full precision)")
    est.add_argument("--input-shape", type=options.shape_type, metavar="N,C,H,W",
                     help="input shape for a user's factory (N is the batch)")
    est.add_argument("--batch", type=options.positive_int, metavar="N",
                     help="images per run (default: the input shape's batch, 1 for the registry's networks); "
                          "totals are printed per batch and per inference, weights are read once per batch "
                          "where the schedule allows")
    est.add_argument("--timing", choices=TIMINGS, default="model",
                     help="cycle model: model (analytical, with DRAM stalls; default), scalesim (SCALE-Sim v2 "
                          "compatible compute cycles, see hwsim/dataflow.py), rtl (exact cycles of the top "
                          "`hwsim rtl generate` emits, see hwsim/rtl_timing.py)")
    est.add_argument("--scalesim", action="store_true", help="same as --timing scalesim")
    est.add_argument("--memory-latency", type=int, metavar="N",
                     help="with --timing rtl: time the network accelerator fetching everything over AXI "
                          "from a memory answering after N cycles (rtl.memory_latency; default the "
                          "config's, 0 = the layer top streamed by a host at full rate)")
    est.add_argument("--all-layers", action="store_true",
                     help="list every op in the table (default: one row per compute layer with the ops "
                          "fused into it folded in; JSON/CSV always keep every op)")
    est.add_argument("--mappings", action="store_true",
                     help="also list how each conv/linear layer was mapped: buffer tile m x k x n, loop order, "
                          "dataflow (JSON/CSV always carry them)")
    est.add_argument("--json", metavar="F", help="write the report as JSON")
    est.add_argument("--csv", metavar="F", help="write the per-layer rows and a TOTAL row as CSV")
    sub.add_parser("models", help="list the networks that can be estimated")


def cmd_estimate(args: argparse.Namespace) -> int:
    """Cost the network (and the ``--compare`` baseline), print the tables, write JSON/CSV."""
    from hwsim import report as rep
    from hwsim.simulate import estimate

    for out in (args.json, args.csv):
        options.check_output_folder(out)
    if args.scalesim and args.timing not in ("model", "scalesim"):
        raise ConfigError(f"--scalesim contradicts --timing {args.timing}; give one of them")
    timing = "scalesim" if args.scalesim else args.timing
    acc = options.accelerator(args)
    if args.memory_latency is not None:
        if timing != "rtl":
            raise ConfigError("--memory-latency is the network accelerator's; it needs --timing rtl")
        acc = dataclasses.replace(acc, rtl=dataclasses.replace(acc.rtl, memory_latency=args.memory_latency))
        validate(acc)
    compare = args.compare or ("mac" if acc.pe != "mac" else "none")
    accs = [acc] + ([with_pe(acc, compare)] if compare != "none" else [])
    fitted = args.target is not None and not _clock_given(args)
    if args.lut_only and not fitted:
        raise ConfigError("--lut-only picks the fitted clock of LUT-only arithmetic; give it with --target ice40 "
                          "or ecp5 and without a clock (--clock-mhz or the config's clock_mhz)")
    loads = workloads(args.model, [(a.pe, a.bits) for a in accs], convert_all=args.convert_all,
                      input_shape=args.input_shape, batch=args.batch)
    clocks = []
    if fitted:
        clocks = [array_clocks(a, args.target, w, lut_only=args.lut_only) for w, a in zip(loads, accs)]
        accs = [clock_for_target(a, args.target, w, lut_only=args.lut_only) for w, a in zip(loads, accs)]
    result, *rest = [estimate(w, a, timing=timing, target=args.target) for w, a in zip(loads, accs)]
    baseline = rest[0] if rest else None
    rep.print_report(result, baseline, all_layers=args.all_layers)
    if args.mappings:
        files.console().print(rep.mapping_table(result))
    for report, clock in zip((result, baseline), clocks):
        _print_clocks(report, clock, args.target)
    power = None
    if args.target is not None and result.fpga is not None:
        from hwsim_cli.power import power_table

        mhz = result.accelerator.clock_mhz  # one inference's cycles at the main clock
        power = power_table(result.fpga["total"], args.target, mhz, files.console(), title=acc.pe,
                            cycles=round(result.latency_ms * 1e3 * mhz / result.batch))
    warn(result.warnings)
    if args.json:
        rep.write_json(args.json, result, baseline, fpga_power=power)
    if args.csv:
        rep.write_csv(args.csv, result)
    return 0


def _clock_given(args: argparse.Namespace) -> bool:
    """Whether the user chose the clock (``--clock-mhz`` or the config's ``clock_mhz``)."""
    return args.clock_mhz is not None or (args.config is not None and "clock_mhz" in read_config(args.config))


def _print_clocks(report: Report, clocks: dict[str, float], target: str) -> None:
    """One line: each array's fitted Fmax and the clocks of the two domains."""
    acc = report.accelerator
    shape = {kind: "{}x{}".format(*((acc.array.rows, acc.array.cols) if kind == acc.pe else acc.aux_shape))
             + ("" if kind == acc.pe else " (aux)") for kind in clocks}
    arrays = ", ".join(f"{kind} {shape[kind]} {mhz:.1f} MHz" for kind, mhz in clocks.items())
    files.console().print(f"clock of the {acc.pe} design on {target} (place-and-route-fitted Fmax): {arrays}; "
                          f"main array, vector unit and buffers at {acc.clock_mhz:.1f} MHz"
                          + (f", auxiliary arrays in their own clock domain at {acc.aux_clock_mhz:.1f} MHz"
                             if len(clocks) > 1 else ""))


def cmd_models(args: argparse.Namespace) -> int:
    """The registry's networks, one row each."""
    from models.registry import MODELS

    table = Table(title="models (hwsim estimate NAME)", header_style="bold")
    for col in ("name", "input", "native PE", "description"):
        table.add_column(col)
    for entry in MODELS.values():
        table.add_row(entry.name, "x".join(map(str, entry.input_shape)), entry.pe, entry.description)
    console = files.console()
    console.print(table)
    console.print("Also: path/to/file.py:factory, package.module:factory, or a SCALE-Sim topology .csv")
    return 0
