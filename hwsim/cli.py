"""The ``hwsim`` command line: the one place that composes models, cost models and the simulator.

Errors in user input become one line on stderr and exit code 2; nothing is written unless the
whole run succeeded (outputs are written atomically at the end).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from cost_models import PE_KINDS
from cost_models.fpga import TARGETS as FPGA_TARGETS
from hwsim import accelerator as accel
from hwsim import cosim_commands, rtl_commands
from hwsim.reports import add_parser as add_report_parser, cmd_report
from hwsim.errors import HwsimError
from hwsim.simulate import TIMINGS
from hwsim.workload import Workload


def _array(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    try:
        rows, cols = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"array must look like ROWSxCOLS (e.g. 16x16), not {text!r}") from None
    if rows <= 0 or cols <= 0:
        raise argparse.ArgumentTypeError(f"array rows and cols must be positive, not {text!r}")
    return rows, cols


def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(p) for p in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"input shape must look like 1,3,224,224, not {text!r}") from None
    if len(shape) < 2 or min(shape) <= 0:
        raise argparse.ArgumentTypeError(f"input shape needs positive sizes with the batch first, not {text!r}")
    return shape


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2 (no usage dump)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"hwsim: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hwsim", description="Cost and generate accelerators for multiplication-free networks.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    est = sub.add_parser("estimate", help="cycles, energy and area of a network on a PE array")
    est.add_argument("model", help="registry name (see `hwsim models`), path/file.py:factory, "
                                   "package.module:factory, or a SCALE-Sim topology .csv")
    add_accelerator_options(est)
    est.add_argument("--tech", metavar="table.yaml", help="technology table name or YAML path (default horowitz45)")
    est.add_argument("--target", choices=FPGA_TARGETS,
                     help="also estimate FPGA resources (LUT/FF/DSP/BRAM) on this family from synthesis-fitted models")
    est.add_argument("--compare", choices=(*PE_KINDS, "none"), metavar="PE",
                     help="also cost the network on this PE kind and print ratios "
                          "(default: mac for the other PE kinds; none to turn it off)")
    est.add_argument("--convert-all", action="store_true",
                     help="convert the first conv and classifier too (default: they stay full precision)")
    est.add_argument("--input-shape", type=_shape, metavar="N,C,H,W", help="input shape for a user's factory")
    est.add_argument("--timing", choices=TIMINGS, default="model",
                     help="cycle model: model (analytical, with DRAM stalls; default), scalesim (SCALE-Sim v2 "
                          "compatible compute cycles, see hwsim/dataflow.py), rtl (exact cycles of the top "
                          "`hwsim rtl generate` emits, see hwsim/rtl_timing.py)")
    est.add_argument("--scalesim", action="store_true", help="same as --timing scalesim")
    est.add_argument("--json", metavar="F", help="write the report as JSON")
    est.add_argument("--csv", metavar="F", help="write the per-layer rows and a TOTAL row as CSV")

    sub.add_parser("models", help="list the networks that can be estimated")
    rtl_commands.add_parser(sub)
    cosim_commands.add_parser(sub)
    add_report_parser(sub)
    return parser


def add_accelerator_options(parser: argparse.ArgumentParser) -> None:
    """The flags that :func:`resolve_accelerator` reads (shared by ``estimate`` and ``rtl``)."""
    parser.add_argument("--pe", choices=PE_KINDS, help="datapath of the PE array (default: the config's, else mac)")
    parser.add_argument("--bits", type=int, help="operand width (default 8; xnor is always 1)")
    parser.add_argument("--array", type=_array, metavar="RxC", help="PE array rows x cols (default 16x16)")
    parser.add_argument("--dataflow", choices=accel.DATAFLOWS, help="systolic dataflow (default os)")
    parser.add_argument("--clock-mhz", type=float, help="clock frequency in MHz (default 500)")
    parser.add_argument("--config", metavar="arch.yaml", help="accelerator YAML (see configs/)")


def resolve_accelerator(args: argparse.Namespace) -> accel.Accelerator:
    """Preset of the PE kind, then the YAML config as a diff, then command-line flags."""
    config = accel.load(args.config) if args.config else None
    pe = args.pe or (config.pe if config else "mac")
    base = accel.preset(pe)
    if config is not None:
        base = accel.load(args.config, base=base)
    changes: dict = {"pe": pe}
    if pe == "xnor" and args.bits is None:
        changes["bits"] = 1
    elif pe != "xnor" and base.bits == 1 and args.bits is None:
        changes["bits"] = 8
    if args.bits is not None:
        changes["bits"] = args.bits
    if args.clock_mhz is not None:
        changes["clock_mhz"] = args.clock_mhz
    if getattr(args, "tech", None) is not None:  # `rtl` has no technology table
        changes["tech"] = args.tech
    array = base.array
    if args.array is not None:
        array = dataclasses.replace(array, rows=args.array[0], cols=args.array[1])
    if args.dataflow is not None:
        array = dataclasses.replace(array, dataflow=args.dataflow)
    try:
        return dataclasses.replace(base, array=array, **changes)
    except HwsimError as exc:
        if args.bits is not None and "bits" in str(exc):
            raise HwsimError(f"--bits {args.bits}: {exc}") from None
        raise


def build_workload(args: argparse.Namespace, pe: str, bits: int) -> Workload:
    """Load the model named on the command line, convert it to ``pe`` and extract its layers."""
    layer_bits = 8 if pe == "xnor" else bits
    if args.model.lower().endswith(".csv"):
        from hwsim.topology import read_topology
        return read_topology(args.model, pe=pe, bits=layer_bits)
    from hwsim.extract import extract
    from models.convert import convert
    from models.registry import load_model

    net, shape, entry = load_model(args.model, input_shape=args.input_shape)
    if pe != entry.pe:
        net = convert(net, pe, input_shape=shape, keep_first_last=not args.convert_all)
    return extract(net, shape, bits=layer_bits, name=entry.name)


def check_output_folder(path: str | None) -> None:
    """Fail before any work if output file ``path`` (when given) could not be written."""
    if path and not Path(path).resolve().parent.is_dir():
        raise HwsimError(f"cannot write {path!r}: folder {str(Path(path).parent)!r} does not exist")


def cmd_estimate(args: argparse.Namespace) -> int:
    from hwsim import report as rep
    from hwsim.simulate import estimate, with_pe

    for out in (args.json, args.csv):
        check_output_folder(out)
    if args.scalesim and args.timing not in ("model", "scalesim"):
        raise HwsimError(f"--scalesim contradicts --timing {args.timing}; give one of them")
    timing = "scalesim" if args.scalesim else args.timing
    acc = resolve_accelerator(args)
    result = estimate(build_workload(args, acc.pe, acc.bits), acc, timing=timing, target=args.target)
    baseline = None
    compare = args.compare or ("mac" if acc.pe != "mac" else "none")
    if compare != "none":
        other = with_pe(acc, compare)
        baseline = estimate(build_workload(args, other.pe, other.bits), other, timing=timing,
                            target=args.target)
    rep.print_report(result, baseline)
    if args.json:
        rep.write_json(args.json, result, baseline)
    if args.csv:
        rep.write_csv(args.csv, result)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from models.registry import MODELS

    table = Table(title="models (hwsim estimate NAME)", header_style="bold")
    for col in ("name", "input", "native PE", "description"):
        table.add_column(col)
    for entry in MODELS.values():
        table.add_row(entry.name, "x".join(map(str, entry.input_shape)), entry.pe, entry.description)
    Console().print(table)
    print("Also: path/to/file.py:factory, package.module:factory, or a SCALE-Sim topology .csv")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = {"estimate": cmd_estimate, "models": cmd_models, "rtl": rtl_commands.cmd_rtl,
               "cosim": cosim_commands.cmd_cosim,
               "report": cmd_report}[args.command]
    try:
        return handler(args)
    except (HwsimError, ValueError) as exc:
        print(f"hwsim: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hwsim: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
