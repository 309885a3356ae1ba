"""``hwsim cosim``: run a layer or a small network through the generated RTL on Verilator.

The accelerator is resolved as for ``hwsim estimate`` and ``hwsim rtl``; the layer (``--layer``,
see :mod:`sim.spec`) is a real PyTorch layer of the accelerator's PE kind with seeded weights,
quantized by :mod:`models.quant`. A run passes when the RTL's output equals
:func:`models.intref.int_forward` bit for bit and the measured cycles, stalls aside, equal
``hwsim estimate --timing rtl``. Exit code 0 on PASS, 1 on FAIL, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from hwsim import files
from hwsim.accelerator import Accelerator
from hwsim.errors import ConfigError
from hwsim.rtl_plan import top_geometry
from hwsim_cli import options

__all__ = ["add_parser", "cmd_cosim"]

#: Stream patterns of ``--stall``: one idle input cycle in four, one back-pressured output in four.
STALL_VALID, STALL_READY = "1110", "1101"
#: ``--network --stall``: the AXI memory model's availability, busy one cycle in four.
MEMORY_PATTERN = "1110"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``cosim`` to ``hwsim``'s sub-parsers."""
    p = subparsers.add_parser("cosim", help="run a layer or a small network through the generated RTL "
                                            "(Verilator): bit-exact against PyTorch, cycle-exact against hwsim")
    options.add_accelerator_options(p)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--layer", metavar="SPEC",
                      help='one layer, e.g. "conv k=3 cin=16 cout=16 h=16 w=16 stride=1 pad=1", '
                           '"conv k=3 cin=16 cout=16 h=8 groups=16" (depthwise) or "linear cin=64 cout=10"')
    what.add_argument("--network", metavar="NAME", help="a small trained network on real test images: digits")
    p.add_argument("--seed", type=int, default=0, help="weights, statistics and input of --layer; "
                                                       "training seed of --network (default 0)")
    p.add_argument("--relu", action="store_true", help="--layer: requantize with ReLU")
    p.add_argument("--images", type=int, default=20, help="--network: test images (default 20)")
    p.add_argument("--epochs", type=int, help="--network: training epochs, cached under the build root's cache/ "
                                              "(default: the energy-accuracy report's, 30)")
    p.add_argument("--stall", action="store_true",
                   help=f"--layer: drive inputs with idle cycles (valid {STALL_VALID}...) and outputs "
                        f"with back-pressure (ready {STALL_READY}...); --network: the memory is busy "
                        f"one cycle in four ({MEMORY_PATTERN}...) instead of at full rate")
    p.add_argument("--latency", type=int, default=1,
                   help="--network: cycles from a read address to its first data beat, and from a "
                        "write to its response, of the AXI memory model (default 1)")
    p.add_argument("--waves", action="store_true", help="--layer: write an FST waveform of the run")
    p.add_argument("--activity", action="store_true",
                   help="--layer: record the waveform and report toggles per block and the PEs' "
                        "gate-level energy next to the analytic energy")
    p.add_argument("--json", metavar="F", help="write the outcome as JSON")


def _patterns(args: argparse.Namespace) -> dict[str, tuple[int, ...]]:
    if not args.stall:
        return {"valid_pattern": (1,), "ready_pattern": (1,)}
    return {"valid_pattern": tuple(map(int, STALL_VALID)), "ready_pattern": tuple(map(int, STALL_READY))}


def _title(acc: Accelerator) -> str:
    bits = f"1-bit x {acc.array.lanes} lanes" if acc.pe == "xnor" else f"{acc.bits}-bit"
    return f"{acc.pe} {acc.array.rows}x{acc.array.cols}, {bits}"


def _cycles_line(layer: Any) -> str:
    """The measured cycles against the model: equal once the stalls are taken off, or for tiles
    under stalls (a store and the next tile stalled in one cycle) between the two."""
    measured, stalls, predicted = layer.cycles, layer.stalls, layer.predicted
    stall = f" - {stalls:,} stall cycles" if stalls else ""
    if layer.cycle_exact or not layer.cycles_agree:
        sign = "=" if layer.cycle_exact else "!="
        return (f"cycles: measured {measured:,}{stall} {sign} predicted {predicted:,} "
                f"(hwsim estimate --timing rtl)")
    return (f"cycles: measured {measured:,}{stall} <= predicted {predicted:,} <= measured "
            f"(hwsim estimate --timing rtl; {layer.tiles} tiles, a store and the next tile stalled at once)")


def cmd_layer(args: argparse.Namespace, acc: Accelerator, console: Console) -> dict[str, Any]:
    if args.latency != 1:
        raise ConfigError("--latency is the network accelerator's memory latency; it works with --network")
    from hwsim_cli.activity import report as report_activity
    from sim.build import build_top
    from sim.cosim import check_fits, run_layers
    from sim.layers import check_float, quantized_layer
    from sim.spec import parse_layer

    spec = parse_layer(args.layer)
    try:
        ql = quantized_layer(acc.pe, spec, seed=args.seed, bits=acc.bits, max_shift=acc.max_shift,
                             relu=args.relu)
    except ValueError as exc:
        raise ConfigError(f"layer {args.layer!r}: {exc}") from None
    check_fits(acc, ql.q, ql.x)
    console.print(f"{_title(acc)}: {args.layer} (seed {args.seed})")
    waves = args.waves or args.activity
    with console.status("building the top with Verilator"):
        build = build_top(acc, waves=waves)
    console.print(f"build: {'reused' if build.reused else 'built'} {build.dir} ({build.build_seconds:.1f} s)")
    with console.status("simulating"):
        run = run_layers(build, [(ql.q, ql.x)], waves=waves, **_patterns(args))
    (layer,) = run.layers
    floats = check_float(ql, layer.output)
    passed = layer.bit_exact and layer.cycles_agree and not layer.error and floats.ok
    outputs = layer.expected.size
    verdict = "[bold green]PASS[/]" if passed else "[bold red]FAIL[/]"
    if layer.bit_exact:
        console.print(f"{verdict} bit-exact: {outputs:,} outputs equal models.intref.int_forward")
    else:
        console.print(f"{verdict} {layer.mismatch_count:,} of {outputs:,} outputs differ from "
                      f"models.intref.int_forward; first mismatches:")
        table = Table("position (n, channel, y, x)" if layer.expected.ndim == 4 else "position (n, channel)",
                      "expected", "got", header_style="bold")
        for position, want, got in layer.mismatches:
            table.add_row(str(tuple(position)), str(want), str(got))
        console.print(table)
    if layer.error:
        console.print("[bold red]o_error was raised[/]: a buffer overran or a fold exceeded max_steps")
    console.print(_cycles_line(layer))
    console.print(f"float layer: {floats.compared:,} outputs compared, {floats.violations} outside the "
                  f"quantization bound of sim/layers.py, max |error| {floats.max_abs_error:.4g}")
    console.print(f"simulation: {run.cycles:,} cycles in {run.sim_seconds:.2f} s = "
                  f"{run.cycles_per_second:,.0f} cycles/s ({run.wall_seconds:.1f} s with programming and checking)")
    if run.waves:
        console.print(f"waves: {run.waves}")
    activity = report_activity(run, build, acc, console) if args.activity else None
    return {"mode": "layer", "layer": args.layer, "seed": args.seed, "relu": args.relu, "activity": activity,
            "accelerator": acc.to_dict(), "passed": passed, "bit_exact": layer.bit_exact,
            "cycle_exact": layer.cycle_exact, "cycles_agree": layer.cycles_agree, "outputs": outputs,
            "mismatches": layer.mismatch_count,
            "first_mismatches": [{"position": list(map(int, p)), "expected": int(e), "got": int(g)}
                                 for p, e, g in layer.mismatches],
            "error_flag": bool(layer.error),
            "cycles": {"measured": layer.cycles, "stalls": layer.stalls, "predicted": layer.predicted},
            "float_check": {"compared": floats.compared, "violations": floats.violations,
                            "max_abs_error": floats.max_abs_error},
            "simulation": {"cycles": run.cycles, "seconds": run.sim_seconds, "wall_seconds": run.wall_seconds,
                           "cycles_per_second": run.cycles_per_second,
                           "waves": str(run.waves) if run.waves else None},
            "build": {"dir": str(build.dir), "reused": build.reused, "seconds": build.build_seconds}}


def cmd_network(args: argparse.Namespace, acc: Accelerator, console: Console) -> dict[str, Any]:
    from models.train import TrainConfig
    from sim.network import run_network

    if args.waves or args.activity:
        flag = "--waves" if args.waves else "--activity"
        raise ConfigError(f"{flag} works with --layer (a network run is many simulations); drop it")
    epochs = TrainConfig.epochs if args.epochs is None else args.epochs
    if epochs < 0:
        raise ConfigError(f"--epochs must be 0 or more, not {epochs}")
    if not 1 <= args.latency <= 10_000:
        raise ConfigError(f"--latency must be from 1 to 10000 cycles, not {args.latency}")
    pattern = tuple(map(int, MEMORY_PATTERN)) if args.stall else (1,)
    result = run_network(args.network, acc, images=args.images, seed=args.seed, epochs=epochs,
                         read_latency=args.latency, pattern=pattern,
                         status=lambda text: console.print(f"[dim]{text}[/]"))
    table = Table(title=f"{args.network} on {_title(acc)} (network accelerator: one command list, "
                        f"AXI memory latency {args.latency}), {result.images} test images",
                  header_style="bold")
    for col in ("layer", "shape", "mismatches", "top alone (model)"):
        table.add_column(col, justify="left" if col in ("layer", "shape") else "right")
    for layer in result.layers:
        table.add_row(layer.name, layer.shape, f"{layer.mismatches:,}", f"{layer.predicted:,}")
    console.print(table)
    console.print(f"by the reference (no {acc.pe} RTL): {', '.join(result.reference_stages)}")
    same = int((result.rtl_predictions == result.reference_predictions).sum())
    right = int((result.rtl_predictions == result.labels).sum())
    console.print(f"{'[bold green]PASS[/]' if result.passed else '[bold red]FAIL[/]'} predictions equal "
                  f"the integer reference's on {same} of {result.images} images "
                  f"({right} of {result.images} correct)")
    sign = "=" if result.simulated_cycles == result.sequence_predicted else (
        ">" if result.simulated_cycles > result.sequence_predicted else "<")
    busy = "" if result.memory_always_ready else " (memory always ready; it was busy 1 cycle in 4)"
    console.print(f"cycles: measured {result.simulated_cycles:,} from start to done {sign} predicted "
                  f"{result.sequence_predicted:,} (hwsim.rtl_sequence){busy}; the layer top alone, "
                  f"streamed at full rate: {result.predicted:,} (hwsim estimate --timing rtl)")
    if result.error:
        console.print("[bold red]the accelerator raised o_error[/]")
    console.print(f"simulation: {result.simulated_cycles:,} cycles in {result.sim_seconds:.2f} s = "
                  f"{result.simulated_cycles / max(result.sim_seconds, 1e-9):,.0f} cycles/s; build "
                  f"{'reused' if result.build_reused else 'built'} in {result.build_seconds:.1f} s")
    return {"mode": "network", "network": args.network, "seed": args.seed, "epochs": epochs,
            "accelerator": acc.to_dict(), "passed": result.passed, "images": result.images,
            "labels": result.labels.tolist(), "rtl_predictions": result.rtl_predictions.tolist(),
            "reference_predictions": result.reference_predictions.tolist(),
            "layers": [vars(layer) for layer in result.layers],
            "reference_stages": list(result.reference_stages),
            "cycles": {"measured": result.simulated_cycles, "predicted": result.sequence_predicted,
                       "memory_always_ready": result.memory_always_ready,
                       "as_predicted": result.cycles_as_predicted, "top_alone": result.predicted},
            "memory": {"latency": args.latency, "pattern": list(pattern)}, "error": result.error,
            "simulation": {"cycles": result.simulated_cycles, "seconds": result.sim_seconds}}


def cmd_cosim(args: argparse.Namespace) -> int:
    """Run ``hwsim cosim``; 0 on PASS, 1 on FAIL."""
    options.check_output_folder(args.json)
    console = files.console()
    acc = options.accelerator(args)
    top_geometry(acc)  # the generator's refusal (dataflow, widths, buffers) before any work
    handler = cmd_layer if args.layer is not None else cmd_network
    outcome = handler(args, acc, console)
    if args.json:
        files.write_atomic(args.json, json.dumps(outcome, indent=2) + "\n")
    return 0 if outcome["passed"] else 1
