"""Argument types and the options every hardware command shares (``estimate``, ``rtl``, ``cosim``).

The accelerator flags are read by :func:`accelerator` through :func:`hwsim.api.resolve_accelerator`,
so every command resolves the same hardware from the same flags.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from contract import PE_KINDS
from hwsim import accelerator as accel
from hwsim import files
from hwsim.api import resolve_accelerator
from hwsim.errors import ConfigError

__all__ = ["Parser", "accelerator", "add_accelerator_options", "array_type", "cache_dir", "check_output_folder",
           "positive_float", "positive_int", "shape_type"]


class Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2 (no usage dump)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"hwsim: error: {message}\n")


def array_type(text: str) -> tuple[int, int]:
    """``RxC`` (e.g. ``16x16``) as ``(rows, cols)``."""
    parts = text.lower().split("x")
    try:
        rows, cols = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"array must look like ROWSxCOLS (e.g. 16x16), not {text!r}") from None
    if rows <= 0 or cols <= 0:
        raise argparse.ArgumentTypeError(f"array rows and cols must be positive, not {text!r}")
    return rows, cols


def shape_type(text: str) -> tuple[int, ...]:
    """``N,C,H,W`` (or ``NxCxHxW``) as a tuple, batch first."""
    try:
        shape = tuple(int(p) for p in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"input shape must look like 1,3,224,224, not {text!r}") from None
    if len(shape) < 2 or min(shape) <= 0:
        raise argparse.ArgumentTypeError(f"input shape needs positive sizes with the batch first, not {text!r}")
    return shape


def positive_int(text: str) -> int:
    """A positive integer (``--batch``)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}")
    return value


def positive_float(text: str) -> float:
    """A positive finite number (``--sram-kib``)."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text!r}")
    return value


def add_accelerator_options(parser: argparse.ArgumentParser, *, tech: bool = False) -> None:
    """The flags :func:`accelerator` reads; ``tech`` adds ``--tech`` and the other flags only the
    costing commands read (``--dram``, ``--sram-kib``, ``--mapper``, ``--objective``)."""
    parser.add_argument("--pe", choices=PE_KINDS, help="datapath of the PE array (default: the config's, else mac)")
    parser.add_argument("--bits", type=int, help="operand width (default 8; xnor is always 1)")
    parser.add_argument("--array", type=array_type, metavar="RxC", help="PE array rows x cols (default 16x16)")
    parser.add_argument("--dataflow", choices=accel.DATAFLOWS, help="systolic dataflow (default os)")
    parser.add_argument("--clock-mhz", type=float,
                        help="clock frequency in MHz (default 500; `estimate --target ice40|ecp5`: each design's fitted Fmax)")
    parser.add_argument("--config", metavar="arch.yaml", help="accelerator YAML (see configs/)")
    if tech:
        parser.add_argument("--tech", metavar="table.yaml",
                            help="technology table name or YAML path (default horowitz45)")
        parser.add_argument("--dram", metavar="table.yaml",
                            help="DRAM generation: ddr3, ddr4, lpddr4, lpddr5, hbm2 or a YAML path "
                                 "(default: the config's memory.dram, else lpddr4)")
        parser.add_argument("--sram-kib", type=positive_float, metavar="KIB",
                            help="capacity of each per-operand SRAM (ifmap, weight, ofmap) in KiB (default 64)")
        parser.add_argument("--mapper", choices=accel.MAPPERS,
                            help="heuristic: the fast fixed tiling (least DRAM traffic, then fewest cycles); "
                                 "search: tile sizes, loop order and dataflow (of array.dataflows) searched per "
                                 "layer for --objective (default: the config's schedule.mapper, else heuristic)")
        parser.add_argument("--objective", choices=accel.OBJECTIVES,
                            help="what --mapper search minimises: energy, latency or edp "
                                 "(default: the config's schedule.objective, else energy)")


def accelerator(args: argparse.Namespace) -> accel.Accelerator:
    """The accelerator the flags of :func:`add_accelerator_options` describe."""
    return resolve_accelerator(config=args.config, pe=args.pe, bits=args.bits, array=args.array,
                               dataflow=args.dataflow, clock_mhz=args.clock_mhz,
                               tech=getattr(args, "tech", None), dram=getattr(args, "dram", None),
                               sram_kib=getattr(args, "sram_kib", None), mapper=getattr(args, "mapper", None),
                               objective=getattr(args, "objective", None))


def cache_dir(text: str | None) -> Path | None:
    """``--cache-dir``: None for ``none`` (no cache), else the folder (default ``cache/`` under
    :func:`hwsim.files.build_root`)."""
    if text == "none":
        return None
    return files.build_root() / "cache" if text is None else Path(text)


def check_output_folder(path: str | None) -> None:
    """Fail before any work if output file ``path`` (when given) could not be written."""
    if path and not Path(path).resolve().parent.is_dir():
        raise ConfigError(f"cannot write {path!r}: folder {str(Path(path).parent)!r} does not exist")
