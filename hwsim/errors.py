"""The typed errors that the command line turns into one line and an exit code.

Library code raises a :class:`HwsimError` subclass with a message that names the bad input and
how to fix it; only the face (:func:`hwsim_cli.main`) catches them. Anything else escaping is a
bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = ["ConfigError", "DoesNotFit", "HwsimError", "ToolError"]


class HwsimError(ValueError):
    """Bad user input: unknown names, malformed configuration, impossible mappings."""


class ConfigError(HwsimError):
    """An accelerator configuration (preset, YAML, flags) with a bad or unbuildable field."""


class DoesNotFit(HwsimError):
    """A layer the generated accelerator top cannot hold (buffers, descriptor fields, fold length)."""


class ToolError(HwsimError):
    """An external tool (Verilator, Yosys, nextpnr) is missing or failed; the message names the
    fix or the log."""
