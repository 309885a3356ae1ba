"""Gate-level netlists of generated blocks and their zero-delay, bit-parallel simulation.

:func:`synthesize_gates` runs Yosys on emitted Verilog to a generic gate library whose cells are
the technology table's primitives: ``$fa`` full adders (recovered by ``extract_fa``), XOR/XNOR,
MUX, the two-input AND/OR family, inverters and plain rising-edge flip-flops (``dfflegalize``
turns enables and synchronous resets into gates). :data:`CELL_GATE` names the table gate each
cell is charged as (:mod:`cost_models.activity`).

:class:`GateSim` compiles the netlist into one Python function and simulates it cycle by cycle on
``lanes`` independent copies at once: every net is an integer whose bit ``i`` is its value in copy
``i`` (e.g. every PE of an array, each fed its own stimulus). It counts the toggles of every cell
output (zero delay: functional toggles, no glitches) and returns the values of the output ports
as they were at each clock edge, so a run can be checked against the RTL it came from.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rtl.synth import find_tools, run_tool
from rtl.tools import ToolFailed

__all__ = ["CELL_GATE", "GateRun", "GateSim", "Netlist", "synthesize_gates"]

#: Yosys cell type -> technology table gate it is charged as.
CELL_GATE = {"$fa": "full_adder", "$_XOR_": "xor2", "$_XNOR_": "xor2", "$_MUX_": "mux2",
             "$_AND_": "and2", "$_NAND_": "and2", "$_OR_": "and2", "$_NOR_": "and2",
             "$_ANDNOT_": "and2", "$_ORNOT_": "and2", "$_NOT_": "inv", "$_DFF_P_": "dff"}

#: Python expression of each combinational cell's outputs (``m`` is the all-lanes mask).
_EXPR = {"$_XOR_": {"Y": "{A} ^ {B}"}, "$_XNOR_": {"Y": "~({A} ^ {B}) & m"},
         "$_MUX_": {"Y": "({B} & {S}) | ({A} & ~{S})"}, "$_AND_": {"Y": "{A} & {B}"},
         "$_NAND_": {"Y": "~({A} & {B}) & m"}, "$_OR_": {"Y": "{A} | {B}"},
         "$_NOR_": {"Y": "~({A} | {B}) & m"}, "$_ANDNOT_": {"Y": "{A} & ~{B}"},
         "$_ORNOT_": {"Y": "({A} | ~{B}) & m"}, "$_NOT_": {"Y": "~{A} & m"},
         "$fa": {"Y": "{A} ^ {B} ^ {C}", "X": "({A} & {B}) | ({A} & {C}) | ({B} & {C})"}}

_SCRIPT = """read_verilog {verilog}
synth -flatten -top {top} -noabc
dfflegalize -cell $_DFF_P_ 01
abc -g AND,NAND,OR,NOR,XOR,XNOR,ANDNOT,ORNOT,MUX
extract_fa
opt_clean
tee -q -o stat.json stat -json
write_json gates.json
"""


@dataclass(frozen=True)
class Netlist:
    """A flattened gate netlist: ``ports`` maps a port name to (direction, net ids, LSB first);
    ``cells`` lists (type, connections) with Yosys' net ids (``"0"``/``"1"`` are constants)."""

    top: str
    ports: dict[str, tuple[str, list[int | str]]]
    cells: list[tuple[str, dict[str, list[int | str]]]]

    @classmethod
    def from_json(cls, path: str | Path, top: str) -> Netlist:
        module = json.loads(Path(path).read_text())["modules"][top]
        ports = {name: (p["direction"], p["bits"]) for name, p in module["ports"].items()}
        cells = [(c["type"], c["connections"]) for c in module["cells"].values()]
        unknown = sorted({t for t, _ in cells} - set(CELL_GATE))
        if unknown:
            raise ToolFailed(f"gate netlist of {top} has cells outside the generic library: {unknown}")
        return cls(top, ports, cells)

    def counts(self) -> dict[str, int]:
        """Cells per technology gate."""
        out: dict[str, int] = {}
        for kind, _ in self.cells:
            out[CELL_GATE[kind]] = out.get(CELL_GATE[kind], 0) + 1
        return out


def synthesize_gates(verilog: str | Path, top: str, outdir: str | Path) -> Netlist:
    """Yosys ``verilog`` (top module ``top``) to the generic gate library in ``outdir`` (script,
    log, ``stat.json`` and ``gates.json`` kept). Raises ToolNotFoundError without Yosys,
    ToolFailed naming the log when it fails."""
    yosys = find_tools("ice40")["yosys"]
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    verilog = Path(verilog)
    if verilog.resolve() != (outdir / verilog.name).resolve():
        shutil.copy(verilog, outdir / verilog.name)
    (outdir / "gates.ys").write_text(_SCRIPT.format(verilog=verilog.name, top=top))
    run_tool([yosys, "-q", "-l", "gates.log", "-s", "gates.ys"], outdir / "gates.out",
             f"Yosys gate mapping of {top}")
    return Netlist.from_json(outdir / "gates.json", top)


@dataclass(frozen=True)
class GateRun:
    """A simulation: ``cycles`` clock edges of ``lanes`` copies; ``toggles`` per technology gate
    (output bit changes summed over lanes; ``dff`` counts Q changes); ``flops`` flip-flops per
    copy; ``outputs`` per output port, per cycle, the per-lane values before that edge."""

    cycles: int
    lanes: int
    toggles: dict[str, int]
    flops: int
    outputs: dict[str, np.ndarray]


class GateSim:
    """A :class:`Netlist` compiled for bit-parallel simulation (see the module docstring)."""

    def __init__(self, netlist: Netlist) -> None:
        self.netlist = netlist
        index: dict[int | str, int] = {"0": 0, "1": 1, "x": 0, "z": 0}

        def net(bit: int | str) -> int:
            if bit not in index:
                index[bit] = len(index) - 2  # after the constants 0 and 1 (x and z read 0)
            return index[bit]

        self.inputs = {name: [net(b) for b in bits] for name, (d, bits) in netlist.ports.items()
                       if d == "input"}
        self.outputs = {name: [net(b) for b in bits] for name, (d, bits) in netlist.ports.items()
                        if d == "output"}
        flops = [(net(c["D"][0]), net(c["Q"][0])) for kind, c in netlist.cells if kind == "$_DFF_P_"]
        comb = [(kind, c) for kind, c in netlist.cells if kind != "$_DFF_P_"]
        ready = {0, 1, *(n for bits in self.inputs.values() for n in bits), *(q for _, q in flops)}
        lines, driven = [], {}
        pending = comb
        while pending:  # topological order: a cell once all its inputs are known
            later = []
            for kind, conn in pending:
                ins = {p: net(conn[p][0]) for p in conn if p in "ABCS"}
                if all(n in ready for n in ins.values()):
                    for port, expr in _EXPR[kind].items():
                        out = net(conn[port][0])
                        lines.append(f"    v[{out}] = " + expr.format(**{p: f"v[{n}]" for p, n in ins.items()}))
                        ready.add(out)
                        driven[out] = CELL_GATE[kind]
                else:
                    later.append((kind, conn))
            if len(later) == len(pending):
                raise ToolFailed(f"gate netlist of {netlist.top} has a combinational loop")
            pending = later
        source = "def comb(v, m):\n" + ("\n".join(lines) or "    pass") + "\n"
        scope: dict[str, Any] = {}
        exec(compile(source, f"<gates of {netlist.top}>", "exec"), scope)  # noqa: S102 -- our own netlist
        self._comb = scope["comb"]
        self.flops = flops
        self.size = len(index) - 2
        gates = sorted(set(driven.values()))
        self._groups = {g: np.array([n for n, k in driven.items() if k == g]) for g in gates}
        self._q = np.array([q for _, q in flops], dtype=int)

    def run(self, stimulus: Mapping[str, np.ndarray], *, watch: Sequence[str] = ()) -> GateRun:
        """Simulate ``stimulus``: per input port, an integer array ``(cycles, lanes)`` of the values
        at each clock edge (ports left out are held at 0, e.g. reset); record the output ports
        named in ``watch``. Flip-flops start at 0."""
        arrays = {name: np.asarray(a, dtype=object) for name, a in stimulus.items()}
        unknown = sorted(set(arrays) - set(self.inputs))
        if unknown:
            raise ValueError(f"{self.netlist.top} has no input port {unknown[0]!r}")
        shapes = {a.shape for a in arrays.values()}
        if len(shapes) != 1 or len(next(iter(shapes))) != 2:
            raise ValueError("every stimulus must be one (cycles, lanes) array of the same shape")
        cycles, lanes = next(iter(shapes))
        packed = {name: [_pack(arrays[name], bit) for bit in range(len(nets))]
                  for name, nets in self.inputs.items() if name in arrays}
        mask = (1 << lanes) - 1
        v = [0] * self.size
        v[1] = mask
        prev = list(v)
        counts = np.zeros(self.size, dtype=np.int64)
        missing = sorted(set(watch) - set(self.outputs))
        if missing:
            raise ValueError(f"{self.netlist.top} has no output port {missing[0]!r}")
        outs = {name: np.zeros((cycles, lanes), dtype=object) for name in watch}
        for t in range(cycles):
            for name, bits in packed.items():
                for n, column in zip(self.inputs[name], bits):
                    v[n] = column[t]
            self._comb(v, mask)
            for name in watch:
                outs[name][t] = _unpack([v[n] for n in self.outputs[name]], lanes)
            for n in range(2, self.size):
                if v[n] != prev[n]:
                    counts[n] += (v[n] ^ prev[n]).bit_count()
            prev = list(v)
            for d, q in self.flops:
                v[q] = v[d]
        for n in self._q:  # the last edge's Q changes
            counts[n] += (v[n] ^ prev[n]).bit_count()
        toggles = {g: int(counts[nets].sum()) for g, nets in self._groups.items()}
        toggles["dff"] = int(counts[self._q].sum()) if len(self._q) else 0
        return GateRun(cycles=cycles, lanes=lanes, toggles=toggles, flops=len(self.flops),
                       outputs={k: a.astype(np.int64) for k, a in outs.items()})


def _pack(values: np.ndarray, bit: int) -> list[int]:
    """Per cycle, bit ``bit`` of every lane's value packed into one integer (lane i -> bit i)."""
    bits = ((values >> bit) & 1).astype(np.uint8)
    packed = np.packbits(bits, axis=1, bitorder="little")
    return [int.from_bytes(row.tobytes(), "little") for row in packed]


def _unpack(words: Sequence[int], lanes: int) -> list[int]:
    """Inverse of :func:`_pack` for one cycle: per lane, the unsigned value of the port bits."""
    return [sum(((w >> lane) & 1) << bit for bit, w in enumerate(words)) for lane in range(lanes)]
