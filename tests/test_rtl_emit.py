"""Verilog emission: all-zero memories are written without contents, others keep theirs."""

import re
from pathlib import Path

import pytest
from amaranth.back import verilog
from amaranth.hdl import Module
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from rtl.emit import emit_verilog

pytestmark = pytest.mark.amaranth


class _TwoMemories(wiring.Component):
    """A 4-word table with contents and a 64-word scratch memory of zeros, both read by address."""

    addr: In(6)
    table: Out(8)
    scratch: Out(8)

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.table = table = memory.Memory(shape=8, depth=4, init=[0x11, 0x22, 0x33, 0])
        m.submodules.scratch = scratch = memory.Memory(shape=8, depth=64, init=[])
        write = scratch.write_port()
        m.d.comb += [write.addr.eq(self.addr), write.data.eq(self.addr), write.en.eq(self.addr[0])]
        for mem, out in ((table, self.table), (scratch, self.scratch)):
            port = mem.read_port()
            m.d.comb += [port.addr.eq(self.addr), out.eq(port.data)]
        return m


def _initial_words(text: str) -> dict[str, list[str]]:
    """Memory name -> the values its ``initial`` block writes, in order."""
    words: dict[str, list[str]] = {}
    for name, value in re.findall(r"^\s+(\S+) ?\[\d+\] = \d+'h([0-9a-f]+);$", text, re.MULTILINE):
        words.setdefault(name, []).append(value)
    return words


def test_zero_memory_has_no_contents_others_keep_theirs(tmp_path: Path) -> None:
    plain = _initial_words(verilog.convert(_TwoMemories(), name="two"))
    # Amaranth alone writes both: the table's four words and the scratch memory's 64 zeros
    assert sorted(map(len, plain.values())) == [4, 64]
    emitted = emit_verilog(_TwoMemories(), "two", tmp_path).read_text()
    assert list(_initial_words(emitted).values()) == [["11", "22", "33", "00"]]
    # the scratch memory is still there, only its contents are gone
    assert re.search(r"reg \[7:0\] \\scratch\S* +\[63:0\];", emitted)
