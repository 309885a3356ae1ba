"""``hwsim sweep MODEL``: cost a network over a design space and show its Pareto fronts.

Every axis flag takes a comma-separated list (``--array 8x8,16x16``); without it the field is the
PE preset's (or ``--config``'s), as ``hwsim estimate`` has it. The points go through the result
cache (:mod:`hwsim.sweep.cache`) and a backend (:mod:`hwsim.parallel`), with a progress bar on
stderr; the per-kind fronts are printed and every file is written when the whole run succeeded.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from contract import PE_KINDS
from hwsim import accelerator as accel
from hwsim import files
from hwsim.parallel import BACKENDS, make_backend
from hwsim_cli import options

__all__ = ["add_parser", "cmd_sweep"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``sweep`` to ``hwsim``'s sub-parsers."""
    from hwsim.sweep.run import OBJECTIVES, SAMPLERS, STRATEGIES

    sw = subparsers.add_parser("sweep", help="cost a network over PE kinds, widths, arrays, buffers, DRAM "
                                             "and clocks; Pareto fronts (csv, json, png, html)")
    sw.add_argument("model", help="as for `hwsim estimate`: registry name, path/file.py:factory, "
                                  "package.module:factory, topology .csv or .onnx")
    axes = sw.add_argument_group("axes (comma-separated lists; default: the preset's or --config's value)")
    axes.add_argument("--pe", help=f"PE kinds (default {','.join(PE_KINDS)})")
    axes.add_argument("--bits", help="operand widths of mac/adder/shift, 2..32 (xnor is always 1 bit)")
    axes.add_argument("--array", metavar="RxC,...", help="array shapes, e.g. 8x8,16x16,32x32")
    axes.add_argument("--dataflow", help=f"dataflows among {','.join(accel.DATAFLOWS)}")
    axes.add_argument("--sram-kib", metavar="KIB,...", help="capacity of each per-operand SRAM in KiB")
    axes.add_argument("--dram", help="DRAM tables: ddr3, ddr4, lpddr4, lpddr5, hbm2 or YAML paths")
    axes.add_argument("--clock-mhz", metavar="MHZ,...", help="clock frequencies in MHz")
    axes.add_argument("--mapper", help=f"mappers among {','.join(accel.MAPPERS)} (search: for the config's "
                                       "schedule.objective, default energy)")
    sw.add_argument("--config", metavar="arch.yaml", help="accelerator YAML, a diff on each PE preset")
    sw.add_argument("--tech", metavar="table.yaml", help="technology table name or YAML path (default horowitz45)")
    sw.add_argument("--convert-all", action="store_true",
                    help="convert the first conv and classifier too (as for `hwsim estimate`)")
    sw.add_argument("--input-shape", type=options.shape_type, metavar="N,C,H,W",
                    help="input shape for a user's factory (N is the batch)")
    search = sw.add_argument_group("search")
    search.add_argument("--strategy", choices=STRATEGIES, default="grid",
                        help="grid: every point (default); random: --samples points of the grid; optuna: "
                             "--samples trials of an Optuna sampler")
    search.add_argument("--samples", type=options.positive_int, default=50,
                        help="random points or Optuna trials (default 50)")
    search.add_argument("--seed", type=int, default=0, help="seed of random and optuna (default 0)")
    search.add_argument("--sampler", choices=SAMPLERS, default="tpe",
                        help="Optuna sampler: tpe (multi-objective TPE, default) or nsga2")
    search.add_argument("--objective", default="energy,latency",
                        help=f"objectives to minimize, among {','.join(OBJECTIVES)} (default energy,latency)")
    search.add_argument("--max-area-mm2", type=float, metavar="MM2", help="area budget")
    search.add_argument("--max-latency-ms", type=float, metavar="MS", help="latency target")
    run = sw.add_argument_group("running")
    run.add_argument("--workers", type=options.positive_int, metavar="N",
                     help="worker processes or Ray CPUs (default: the CPUs of this machine)")
    run.add_argument("--backend", choices=BACKENDS, default="local",
                     help="local processes (default) or ray (the cluster at $RAY_ADDRESS, else a local Ray)")
    run.add_argument("--cache-dir", metavar="DIR",
                     help=f"result cache (default cache/ under ${files.BUILD_ENV}, else build; 'none' disables it)")
    run.add_argument("-o", "--output", metavar="DIR",
                     help=f"folder for the files (default sweep/MODEL under ${files.BUILD_ENV}, else build)")


def _output_dir(text: str | None, model: str) -> Path:
    """``-o``, else ``sweep/<model's name>`` under the build root."""
    if text is not None:
        return Path(text)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(model.rsplit(":", 1)[-1]).stem) or "model"
    return files.build_root() / "sweep" / stem


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run the sweep, print each PE kind's energy-latency front, write the files."""
    from hwsim.reports.render import check_out_dir
    from hwsim.sweep import output
    from hwsim.sweep.cache import Cache
    from hwsim.sweep.run import Sweep, run
    from hwsim.sweep.space import Space

    out_dir = _output_dir(args.output, args.model)
    check_out_dir(out_dir)
    space = Space.from_flags(pe=args.pe, bits=args.bits, array=args.array, dataflow=args.dataflow,
                             sram_kib=args.sram_kib, dram=args.dram, clock_mhz=args.clock_mhz,
                             mapper=args.mapper, config=args.config, tech=args.tech)
    sweep = Sweep(args.model, space, objectives=tuple(o.strip() for o in args.objective.split(",")),
                  max_area_mm2=args.max_area_mm2, max_latency_ms=args.max_latency_ms, strategy=args.strategy,
                  samples=args.samples, seed=args.seed, sampler=args.sampler, convert_all=args.convert_all,
                  input_shape=args.input_shape)
    cache_root = options.cache_dir(args.cache_dir)
    cache = Cache(cache_root / "sweep" if cache_root is not None else None)
    columns = (TextColumn("sweep {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    err = files.console(stderr=True)
    with make_backend(args.backend, args.workers) as backend, \
            Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as progress:
        task = progress.add_task(args.model, total=None)
        result = run(sweep, backend, cache, lambda done, total: progress.update(task, completed=done, total=total))
    _print_fronts(result)
    written = output.write(result, out_dir)
    console = files.console()
    console.print(f"{len(result.rows)} designs ({result.cached} from the cache) in {result.seconds:.1f} s "
                  f"on {args.backend} ({backend.workers} workers)")
    console.print(f"wrote {len(written)} files to {out_dir}: " + ", ".join(p.name for p in written))
    return 0


def _print_fronts(result) -> None:
    """Each PE kind's energy-latency front as a table (``*``: also on the objectives' front)."""
    from hwsim.sweep import output

    table = Table(title=f"{result.sweep.model}: Pareto front per PE kind (energy vs latency; "
                        f"* on the {','.join(result.sweep.objectives)} front)", header_style="bold")
    for header, _ in output.COLUMNS:
        table.add_column(header, justify="left" if header in ("PE", "array", "dataflow", "DRAM", "mapper") else "right")
    table.add_column("*")
    for row in output.front_rows(result):
        table.add_row(*output.cells(row), "*" if row["pareto"] else "")
    files.console().print(table)
