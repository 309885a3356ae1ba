"""The network accelerator's memory formats, by hand: beat slots, the burst rule, command bytes,
the image's alignment and the chain refusals (pure Python)."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.accelerator import Accelerator, ArrayConfig, MemoryConfig, RtlConfig
from hwsim.errors import DoesNotFit
from hwsim.rtl_plan import top_geometry
from hwsim.rtl_sequence import (Command, Op, StoreMode, burst_words, pipelined, read_span, sequence_cycles,
                                 slot_bytes, store_span)
from rtl.netprog import MemoryImage, Region, chain_program, command, pack_beats
from rtl.top import LayerAccelerator
from sim.layers import LayerSpec, quantized_layer
from sim.netcosim import region_bytes


@pytest.mark.parametrize("width, slot", [(1, 1), (8, 1), (9, 2), (16, 2), (17, 4), (33, 8), (64, 8),
                                         (65, 16), (111, 16), (128, 16), (432, 56)])
def test_slot_bytes(width: int, slot: int) -> None:
    assert slot_bytes(width) == slot


@pytest.mark.parametrize("word, left, want", [(0, 100, 16), (0, 3, 3), (510, 100, 2), (511, 1, 1),
                                              (512, 40, 16), (1000, 30, 16), (1020, 30, 4)])
def test_burst_words(word: int, left: int, want: int) -> None:
    """At most 16 beats, never across a 4 KiB page (512 words of 8 bytes)."""
    assert burst_words(word, left) == want


def test_command_bytes() -> None:
    """STORE BYTES, 5 beats at 0x1000, pstride 16, gstride 3, 81 pixels, bit by bit."""
    raw = command(Command(Op.STORE, beats=5, addr=0x1000, mode=StoreMode.BYTES, pstride=16, gstride=3,
                          pixels=81))
    assert len(raw) == 16
    value = int.from_bytes(raw, "little")
    assert value & 0xF == 6 and (value >> 4) & 3 == 1 and (value >> 8) & 0xFFFFFF == 5
    assert (value >> 32) & 0xFFFFFFFF == 0x1000 and (value >> 64) & 0xFFFFFFFF == 16
    assert (value >> 96) & 0xFFFF == 3 and value >> 112 == 81
    assert command(Command(Op.END)) == bytes(16)


def test_memory_image_and_packing() -> None:
    img = MemoryImage()
    assert img.put(b"\x01\x02\x03") == 0
    assert img.put(b"\xff") == 4096  # every region starts on a page
    words = img.words()
    assert len(words) == 513 and words[0] == 0x030201 and words[512] == 0xFF and not any(words[1:512])
    assert pack_beats([0x1, 0x2345], 16) == b"\x01\x00\x45\x23"
    assert pack_beats([1 << 64 | 7], 65) == (7).to_bytes(8, "little") + (1).to_bytes(8, "little")


def test_region_bytes_layouts() -> None:
    """Channels last: BYTES one byte per channel (two's complement), BITS bit c = channel c."""
    y = np.array([[[[1, -1]], [[2, 127]]]])  # (1, C=2, H=1, W=2)
    assert region_bytes(y, Region(0, 2, 2), StoreMode.BYTES) == bytes([1, 2, 255, 127])
    bits = np.array([[[[1, 0]], [[1, 1]], [[0, 1]]]])  # 3 channels, 2 pixels
    assert region_bytes(bits, Region(0, 8, 2), StoreMode.BITS) == bytes([0b011, 0, 0, 0, 0, 0, 0, 0,
                                                                        0b110, 0, 0, 0, 0, 0, 0, 0])


def _top(kind: str, cols: int = 8) -> LayerAccelerator:
    acc = Accelerator(pe=kind, bits=1 if kind == "xnor" else 8, array=ArrayConfig(rows=4, cols=cols, lanes=8),
                      memory=MemoryConfig(ifmap_sram_kib=2, weight_sram_kib=8, ofmap_sram_kib=4),
                      rtl=RtlConfig(max_steps=160))
    return LayerAccelerator(top_geometry(acc))


def test_chain_commands() -> None:
    """Two layers, two images: five commands per tile, shared weights, one END; the second layer
    reads where the first one's STORE wrote."""
    a = quantized_layer("adder", LayerSpec("conv", 3, 8, 6, 6, kernel=3, pad=1), seed=1)
    b = quantized_layer("adder", LayerSpec("conv", 8, 4, 6, 6, kernel=1), seed=2)
    prog = chain_program(_top("adder"), [a.q, b.q], [a.x, a.x])
    assert len(prog.commands) == 2 * 2 * 5 + 1  # both layers fit whole: one tile each
    raw = bytes(prog.image.data[prog.base:prog.base + 16 * len(prog.commands)])
    cmds = [int.from_bytes(raw[i:i + 16], "little") for i in range(0, len(raw), 16)]
    ops = [c & 0xF for c in cmds]
    assert ops == [1, 2, 3, 4, 6] * 4 + [0]
    addr = [(c >> 32) & 0xFFFFFFFF for c in cmds]
    assert addr[0:3] == addr[10:13]  # the second image reuses descriptors, params and weights
    store, acts = cmds[4], cmds[8]
    assert (store >> 4) & 3 == StoreMode.BYTES.value and (store >> 64) & 0xFFFFFFFF == 8  # 8 channels
    assert (store >> 112) == 36 and addr[4] == addr[8] == prog.regions[0][0].addr
    # the second layer's input: 36 pixels x 8 channels = 288 bytes, 36 beats of 8 activations
    assert (acts >> 8) & 0xFFFFFF == 36 * 8 // 8


def test_chain_refusals() -> None:
    a = quantized_layer("xnor", LayerSpec("conv", 8, 8, 5, 5, kernel=3, pad=1), seed=1)
    b = quantized_layer("xnor", LayerSpec("conv", 8, 8, 5, 5, kernel=3, pad=1), seed=2)
    with pytest.raises(DoesNotFit, match="cols a multiple of 8, not 4; use e.g. --array 4x8"):
        chain_program(_top("xnor", cols=4), [a.q, b.q], [a.x])
    c = quantized_layer("adder", LayerSpec("conv", 4, 4, 5, 5, kernel=3, pad=1), seed=1)
    d = quantized_layer("adder", LayerSpec("conv", 4, 4, 5, 5, kernel=3, pad=1, groups=2), seed=2)
    with pytest.raises(DoesNotFit, match="only into dense layers; the consumer has 2 groups"):
        chain_program(_top("adder"), [c.q, d.q], [c.x])
    e = quantized_layer("adder", LayerSpec("linear", 100, 4), seed=3)
    with pytest.raises(DoesNotFit, match="flatten of a multi-pixel map"):
        chain_program(_top("adder"), [c.q, e.q], [c.x])


@pytest.mark.parametrize("addr, beats, slot, latency, span", [
    # setup at 0, AR at 1, words at 2-4, the engine's beats at 3-5, out of its register slice at
    # 4-6, o_busy low at 7, COMMAND at 8
    (0, 3, 8, 1, 8),
    (0, 10, 1, 2, 16),    # bytes: word 1 at 3, engine beats 4-11; word 2 taken with beat 11, 12-13; out 5-14
    (5, 3, 1, 1, 8),      # starts at lane 5: one word at 2, engine beats 3-5, out 4-6
    (4080, 4, 8, 3, 11),  # a 4 KiB boundary splits the burst: AR at 1 and 2, words at 4, 5 and 6, 7; out 5-8
    (0, 2, 16, 1, 9),     # 16-byte beats: words at 2-5, each beat the cycle after its second word (4, 6); out 5, 7
    (0, 0, 8, 4, 2),      # the setup cycle only
    (3, 3, 8, 1, 9),      # a wide beat at byte 3: four words at 2-5, each completes the one before: out 5-7
    (4085, 2, 8, 3, 10),  # realigned across 4 KiB: words 510, 511 at 4, 5 (AR 1); word 512 at 6 (AR 2): out 7, 8
    # 40 words, bursts of 16, 16, 8 with AR at 1, 2, 3: words back to back at 6-45, out 8-47
    (0, 40, 8, 5, 49),
    (0, 40, 8, 1, 45),    # the same at latency 1: words at 2-41, out 4-43
    # 40 bytes (5 words, one burst at 1): word 1 at 6, each next word with the last beat of the one
    # before (8 beats a word): engine beats 7-46, out 8-47
    (0, 40, 1, 5, 49),
    # five bursts of 16 at latency 20: AR at 1-4, words at 21-84; the fifth AR waits for the first
    # burst's last word (36), goes at 37, its words at 57 on wait for the fourth's: 85-100, out 23-102
    (0, 80, 8, 20, 104),
    # at latency 60 the fifth waits for the memory: words 61-124, the fifth AR at 77, its words at
    # 137-152; the last beat out at 154
    (0, 80, 8, 60, 156),
])
def test_read_span(addr: int, beats: int, slot: int, latency: int, span: int) -> None:
    assert read_span(addr, beats, slot, latency)[0] == span


def test_read_span_behind_a_command() -> None:
    """The next command's two words (64-bit bus) go first and its burst counts toward the four."""
    # latency 1, the command's words at 1, 2: the transfer's AR at 1, its words at 3-5, out 5-7
    assert read_span(0, 3, 8, 1, ahead=2) == (9, 7)
    # latency 20, the command's words at 20, 21: ARs at 1-3, the fourth waits for the command's
    # last word (AR at 22), the fifth for the first burst's (37, AR at 38); words 22-101, the
    # last beat out at 103 (one cycle later than alone: the command's second word)
    assert read_span(0, 80, 8, 20, ahead=21) == (105, 103)


def test_store_span_and_sequence_by_hand() -> None:
    geo = top_geometry(Accelerator(pe="adder", bits=8, array=ArrayConfig(rows=4, cols=8),
                                   memory=MemoryConfig(ifmap_sram_kib=2, weight_sram_kib=8, ofmap_sram_kib=4),
                                   rtl=RtlConfig(max_steps=160)))
    # RAW, two 8-byte beats, the first result at 5: taken at 5 (written at 6) and at 6 with that
    # write (written at 7), its response at 9, o_busy low at 10, COMMAND at 11.
    assert store_span(geo, Command(Op.STORE, beats=2), 8, 5, 2) == (11, 6)  # the last taken at 6
    # RAW, three 16-byte beats (two words each), the first result at 5: beat 0 taken at 5,
    # written at 6, 7; beat 1 taken at 6 into the queue's second entry, written at 8, 9; beat 2
    # waits for room (beat 0 is held through 7): taken at 8, written at 10, 11; the last response
    # at 13, o_busy low at 14, COMMAND at 15.
    assert store_span(geo, Command(Op.STORE, beats=3), 16, 5, 2) == (15, 8)
    # The first result offered before the store starts (-3): taken at 0, the store's first
    # cycle, written at 1; the second taken at 1, written at 2; its response at 4, o_busy low
    # at 5, COMMAND at 6.
    assert store_span(geo, Command(Op.STORE, beats=2), 8, -3, 2) == (6, 1)
    # A lone descriptor (16-byte slot) and END at latency 1: the DESC command's address at 0, its
    # words at 1, 2, COMMAND takes it at 3, DISPATCH at 4; from 5 the descriptor's read (setup)
    # and END's address; END's words at 6, 7; the descriptor's address at 6, its words at 8, 9
    # (after END's), the engine's beat at 10, out of the slice at 11, o_busy low at 12; COMMAND
    # takes END at 13, DISPATCH at 14 sets o_done, seen at 16.
    widths = {Op.DESC: 111, Op.PARAMS: 8, Op.WEIGHTS: 64, Op.ACTS: 8}
    assert sequence_cycles(geo, [Command(Op.DESC, beats=1), Command(Op.END)], widths, 64) == 16


def test_pipelined_order() -> None:
    """Each tile's STORE after the next tile's loads; the last STORE at the end."""
    tiles = [([Command(Op.DESC, addr=t), Command(Op.ACTS, addr=t)], Command(Op.STORE, addr=t)) for t in range(3)]
    got = [(c.op.name, c.addr) for c in pipelined(tiles)]
    assert got == [("DESC", 0), ("ACTS", 0), ("DESC", 1), ("ACTS", 1), ("STORE", 0),
                   ("DESC", 2), ("ACTS", 2), ("STORE", 1), ("STORE", 2)]
    assert pipelined([]) == []
