"""The ``hwsim`` command line: the one face of hwsim, and the only package that imports all others.

``estimate`` and ``models`` (:mod:`hwsim_cli.estimate`), ``rtl`` (:mod:`hwsim_cli.rtl`), ``cosim``
(:mod:`hwsim_cli.cosim`), ``report`` (:mod:`hwsim_cli.report`) and ``sweep`` (:mod:`hwsim_cli.sweep`).
:func:`main` is the one error boundary: a :class:`~hwsim.errors.HwsimError` or
:class:`~contract.ContractError` (bad input, a layer that does not fit, a missing or failing tool)
becomes one line on stderr and exit code 2; anything else is a bug and keeps its traceback.
Outputs are written atomically at the end, so a failed run leaves nothing half-written. Warnings
go to stderr, each once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from contract import ContractError
from hwsim.errors import HwsimError
from hwsim_cli import cosim, estimate, options, report, rtl, sweep

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``hwsim`` parser with every sub-command."""
    parser = options.Parser(prog="hwsim",
                            description="Cost and generate accelerators for multiplication-free networks.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=options.Parser)
    estimate.add_parsers(sub)
    rtl.add_parser(sub)
    cosim.add_parser(sub)
    report.add_parser(sub)
    sweep.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``hwsim ARGV``; return the exit code (0 ok, 1 a co-simulation FAIL, 2 bad input)."""
    args = build_parser().parse_args(argv)
    handler = {"estimate": estimate.cmd_estimate, "models": estimate.cmd_models, "rtl": rtl.cmd_rtl,
               "cosim": cosim.cmd_cosim, "report": report.cmd_report,
               "sweep": sweep.cmd_sweep}[args.command]
    try:
        return handler(args)
    except (HwsimError, ContractError) as exc:
        print(f"hwsim: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hwsim: interrupted", file=sys.stderr)
        return 130
