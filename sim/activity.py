"""Switching activity of a co-simulation: bit toggles per signal from its VCD, summed per block.

:func:`read_vcd` streams a waveform through vcdvcd's parser (no hand-written VCD parser) and counts,
for every traced signal, the bits that change value (``popcount(old XOR new)`` per change; the
initial dump is not a toggle), the clock's rising edges (the cycles), and optionally the values
of chosen signals as the logic sees them at each rising edge (the value just before the edge's
own updates: the stimulus of :mod:`rtl.gatelevel`).

:func:`block_activity` sums the toggles of the generated top (:mod:`rtl.top`) per block, by
where a signal lives in the hierarchy:

* ``pe.operands`` / ``pe.stage1`` / ``pe.accumulator``: each PE's operand registers (``o_x``,
  ``o_w``), its pipeline register (``p*``: product, difference, shifted operand or popcount) and
  its accumulator ``o_acc``; a PE's ``i_*`` ports are the array's nets seen from inside and are
  counted once, as interconnect;
* ``interconnect``: the array's own nets between PEs (with the delay line of the pairs' flags,
  one register per anti-diagonal, :class:`rtl.array.SystolicArray`) and the wiring between the
  top's parts;
* ``buffers``: the memory ports (``*_wr__*``, ``*_rd__*``), the loader, operand fetch and store;
* ``controller``: the layer controller, the geometry registers and the pixel walker;
* ``output``: the result writer and the requantizing output stage;
* ``io``: the top's stream ports.

Amaranth's temporaries (names starting with ``$``), field views of a wider signal (names with
``[`` or ``.``), the input ports of every part (``i_*`` below the top: the parent's nets, counted
there), clock and reset are not counted: they repeat bits counted elsewhere. A net Verilator dumps
once under several names is counted once, under its deepest name that is not an input port.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from vcdvcd import VCDVCD, StreamParserCallbacks

from hwsim.errors import HwsimError

__all__ = ["BLOCKS", "BlockActivity", "Trace", "block_activity", "block_of", "read_vcd"]

#: Blocks of :func:`block_of`, in report order.
BLOCKS = ("pe.operands", "pe.stage1", "pe.accumulator", "interconnect", "buffers", "controller",
          "output", "io")
_PARTS = {"control": "controller", "geometry": "controller", "walker": "controller",
          "loader": "buffers", "fetch": "buffers", "store": "buffers",
          "writer": "output", "output": "output"}
_PE_REGISTERS = {"o_x": "pe.operands", "o_w": "pe.operands", "p": "pe.stage1", "o_acc": "pe.accumulator"}
#: The bit range Verilator appends to a vector's name, e.g. ``o_acc[21:0]`` (always with a colon:
#: a one-bit element of an array field is named ``lane[0]``, an index that is part of the name).
_RANGE = re.compile(r"\[\d+:\d+\]$")
_STREAMS = ("i_desc__", "i_params__", "i_weights__", "i_acts__", "i_resid__", "o_results__", "o_error")


@dataclass
class Trace:
    """What :func:`read_vcd` found: ``widths`` and ``toggles`` per counted signal (dotted path
    below the top module, e.g. ``array.pe_0_1.o_acc``), ``cycles`` (rising clock edges) and
    ``samples``: per requested path, its value at each rising edge."""

    widths: dict[str, int] = field(default_factory=dict)
    toggles: dict[str, int] = field(default_factory=dict)
    cycles: int = 0
    samples: dict[str, list[int]] = field(default_factory=dict)


def _int(value: str) -> int:
    """A VCD value as an integer; x and z bits (never produced by two-state Verilator) read 0."""
    return int(value.lower().replace("x", "0").replace("z", "0"), 2)


def _preferred(path: str) -> tuple[bool, int]:
    """Rank of the names of one net (Verilator gives a net one code under every name it has):
    a part's own signal over its input port, then the deepest (a PE's register over the array wire
    it drives)."""
    return not path.rpartition(".")[2].startswith("i_"), path.count(".")


class _Counter(StreamParserCallbacks):
    """vcdvcd callbacks that count toggles and sample signals while the file streams past."""

    def __init__(self, sample: Collection[str]) -> None:
        self.sample = set(sample)
        self.trace = Trace()
        self.names: dict[str, str] = {}  # id code -> counted path (its first declaration)
        self.sampled: dict[str, list[str]] = {}  # id code -> requested paths
        self.clock = ""
        self.before: dict[str, str] = {}

    def enddefinitions(self, vcd: VCDVCD, signals: list[str], cur_sig_vals: dict[str, str]) -> None:
        paths = {}  # reference -> its scope and name parts (views, temporaries, $rootio left out)
        for reference in vcd.signals:
            parts = _RANGE.sub("", reference).split(".")
            if not ("[" in parts[-1] or any(part.startswith("$") for part in parts)):
                paths[reference] = parts
        clocks = [parts[:-1] for parts in paths.values() if parts[-1] == "clk"]
        if not clocks:
            return
        top = min(clocks, key=len)  # the design's top: the outermost scope with a clock
        for reference, parts in paths.items():
            if parts[:len(top)] != top:
                continue
            dotted, name, code = ".".join(parts[len(top):]), parts[-1], vcd.references_to_ids[reference]
            if len(parts) == len(top) + 1 and name == "clk":
                self.clock = code
            if dotted in self.sample:
                self.sampled.setdefault(code, []).append(dotted)
                self.trace.samples[dotted] = []
            if name not in ("clk", "rst") and (code not in self.names
                                               or _preferred(dotted) > _preferred(self.names[code])):
                self.names[code] = dotted
        self.trace.widths = {path: int(vcd.data[code].size) for code, path in self.names.items()}
        for code, path in list(self.names.items()):
            if path.rpartition(".")[0] in self.trace.widths:  # a field of a signal counted whole
                del self.names[code], self.trace.widths[path]
        self.trace.toggles = dict.fromkeys(self.trace.widths, 0)

    def time(self, vcd: VCDVCD, time: int, cur_sig_vals: dict[str, str]) -> None:
        self.before = {code: cur_sig_vals[code] for code in self.sampled}

    def value(self, vcd: VCDVCD, time: int, value: str, identifier_code: str,
              cur_sig_vals: dict[str, str]) -> None:
        old = cur_sig_vals[identifier_code]
        if old == "x" or old == value:
            return  # the initial dump, or a repeated value
        if identifier_code == self.clock and value == "1":
            self.trace.cycles += 1
            for code, paths in self.sampled.items():
                for path in paths:
                    self.trace.samples[path].append(_int(self.before[code]))
        name = self.names.get(identifier_code)
        if name is not None:
            self.trace.toggles[name] += (_int(old) ^ _int(value)).bit_count()


def read_vcd(path: str | Path, *, sample: Collection[str] = ()) -> Trace:
    """Toggle counts of ``path`` (see the module docstring); ``sample`` names dotted paths (below
    the top module) whose values to record at every rising edge of the top's ``clk``. The top
    module is the outermost scope that declares a ``clk`` (Verilator's ``$rootio`` aside).

    Raises :class:`HwsimError` when the file is missing, is not a VCD, has no ``clk``, or lacks a
    sampled signal.
    """
    path = Path(path)
    if not path.is_file():
        raise HwsimError(f"waveform {str(path)!r} not found")
    counter = _Counter(sample)
    try:
        VCDVCD(str(path), store_tvs=False, callbacks=counter)
    except (ValueError, KeyError, IndexError, UnicodeDecodeError) as exc:
        raise HwsimError(f"waveform {str(path)!r} is not a readable VCD ({exc})") from None
    if not counter.clock:
        raise HwsimError(f"waveform {str(path)!r} has no `clk`")
    missing = sorted(set(sample) - set(counter.trace.samples))
    if missing:
        raise HwsimError(f"waveform {str(path)!r} has no signal {missing[0]!r}")
    return counter.trace


def block_of(path: str) -> str | None:
    """The block of :data:`BLOCKS` that a counted signal (dotted path below the top) belongs to,
    or None for the input ports of a part (the same nets as its parent's wires, counted there)."""
    parts = path.split(".")
    name = parts[-1]
    if len(parts) == 1:
        if name.startswith(_STREAMS):
            return "io"
        return "buffers" if "_wr__" in name or "_rd__" in name else "interconnect"
    if name.startswith("i_"):
        return None  # a part's input: the parent's net, counted there
    if parts[0] == "array":
        return "interconnect" if len(parts) == 2 else _PE_REGISTERS.get(name)
    return _PARTS.get(parts[0], "interconnect")


@dataclass(frozen=True)
class BlockActivity:
    """Toggles of one block over ``cycles``: ``bits`` counted signal bits, ``toggles`` bit changes;
    ``rate`` is toggles per bit per cycle (0.5 is random data, 1 a clock)."""

    block: str
    bits: int
    toggles: int
    cycles: int

    @property
    def rate(self) -> float:
        return self.toggles / (self.bits * self.cycles) if self.bits and self.cycles else 0.0


def block_activity(trace: Trace) -> list[BlockActivity]:
    """Per-block totals of ``trace`` in :data:`BLOCKS` order (blocks with no signal left out)."""
    bits = dict.fromkeys(BLOCKS, 0)
    toggles = dict.fromkeys(BLOCKS, 0)
    for name, width in trace.widths.items():
        block = block_of(name)
        if block is not None:
            bits[block] += width
            toggles[block] += trace.toggles[name]
    return [BlockActivity(b, bits[b], toggles[b], trace.cycles) for b in BLOCKS if bits[b]]
