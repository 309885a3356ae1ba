"""Reports that compose training, the integer reference and hwsim: ``hwsim report ...``."""

from hwsim.reports.commands import add_parser, cmd_report

__all__ = ["add_parser", "cmd_report"]
