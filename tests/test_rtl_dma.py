"""The network accelerator's DMA engines (rtl.dma) in the Amaranth simulator against a Python AXI4
memory with latency and busy cycles: what is read equals the memory's bytes cut into slots, every
burst obeys the AXI rules, and each store mode writes exactly the bytes worked out by hand."""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from rtl.dma import ReadDMA, StoreMode, WriteDMA, slot_bytes

pytestmark = pytest.mark.amaranth

MEM_BYTES = 3 * 4096


def _run(dut, bench) -> None:
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("width, addr, beats, latency", [
    (8, 3, 37, 1), (8, 4090, 20, 3), (16, 4094, 9, 2), (64, 4096 - 24, 40, 5),
    (128, 64, 3, 1), (432, 8, 4, 4), (128, 4096 - 8, 2, 2),
    # wide beats from inside a bus word: realigned, one word more read (across a 4 KiB boundary too)
    (64, 4096 - 21, 40, 5), (64, 1, 3, 1), (128, 13, 5, 2), (432, 4093, 3, 1),
    # bursts of exactly MAX_BURST words, one word more, and the page cutting each of them
    (64, 0, 16, 1), (64, 8, 32, 2), (64, 4096 - 8 * 16, 17, 1), (64, 4096 - 8 * 15, 16, 1),
    (64, 4096 - 8 * 17, 16, 2), (16, 4096 - 8 * 3, 64, 1), (128, 4096 - 8 * 5, 9, 1)])
def test_read_dma(width: int, addr: int, beats: int, latency: int) -> None:
    rng = random.Random(f"{width}-{addr}")
    memory = bytes(rng.randrange(256) for _ in range(MEM_BYTES))
    slot = slot_bytes(width)
    want = [int.from_bytes(memory[addr + k * slot:addr + (k + 1) * slot], "little") & ((1 << width) - 1)
            for k in range(beats)]
    dut = ReadDMA([128, width])
    got, bursts = [], []

    async def bench(ctx):
        ctx.set(dut.i_start, 1)
        ctx.set(dut.i_addr, addr)
        ctx.set(dut.i_beats, beats)
        ctx.set(dut.i_target, 1)
        await ctx.tick()
        ctx.set(dut.i_start, 0)
        queue, wait = [], 0
        for cycle in range(40 * beats + 200):
            busy = cycle % 5 == 3  # the memory stalls one cycle in five
            ctx.set(dut.arready, not queue)
            ctx.set(dut.o_beat.ready, cycle % 7 != 2)  # and so does the consumer
            offer = bool(queue) and wait == 0 and not busy
            ctx.set(dut.rvalid, offer)
            if offer:
                ctx.set(dut.rdata, int.from_bytes(memory[queue[0] * 8:queue[0] * 8 + 8], "little"))
                ctx.set(dut.rlast, len(queue) == 1)
            if ctx.get(dut.o_beat.valid) and ctx.get(dut.o_beat.ready):
                got.append(ctx.get(dut.o_beat.payload) & ((1 << width) - 1))
            if ctx.get(dut.arvalid) and not queue:
                start, length = ctx.get(dut.araddr), ctx.get(dut.arlen) + 1
                assert ctx.get(dut.arsize) == 3 and ctx.get(dut.arburst) == 1
                bursts.append((start, length))
                queue, wait = list(range(start // 8, start // 8 + length)), latency
            elif offer and ctx.get(dut.rready):
                queue.pop(0)
            elif queue and wait:
                wait -= 1
            await ctx.tick()
        assert not ctx.get(dut.o_busy)

    _run(dut, bench)
    assert got == want
    first, last = addr // 8, (addr + beats * slot - 1) // 8
    assert [w for start, n in bursts for w in range(start // 8, start // 8 + n)] == list(range(first, last + 1))
    for start, n in bursts:
        assert n <= 16 and start // 4096 == (start + 8 * n - 1) // 4096


def _store(mode: StoreMode, *, width: int, lane_bits: int, beats: list[int], addr: int, pstride: int,
           gstride: int, pixels: int, out_ch: int, groups: int, rows: int = 4, cols: int = 8,
           latency: int = 3) -> tuple[bytearray, int]:
    """Run a WriteDMA store into a zeroed memory; return the memory and the writes issued."""
    memory = bytearray(MEM_BYTES)
    dut = WriteDMA(width=width, rows=rows, cols=cols, lane_bits=lane_bits, dim_bits=10)
    writes = []

    async def bench(ctx):
        for name, value in (("i_addr", addr), ("i_beats", len(beats)), ("i_mode", mode), ("i_pstride", pstride),
                            ("i_gstride", gstride), ("i_pixels", pixels), ("i_out_ch", out_ch),
                            ("i_groups", groups), ("i_start", 1)):
            ctx.set(getattr(dut, name), value)
        await ctx.tick()
        ctx.set(dut.i_start, 0)
        sent, responses, pending_aw, pending_w = 0, [], [], []
        for cycle in range(20 * len(beats) + 100):
            if sent == len(beats) and not ctx.get(dut.o_busy):
                break
            busy = cycle % 4 == 1
            ctx.set(dut.awready, not busy)
            ctx.set(dut.wready, not busy)
            ctx.set(dut.bvalid, bool(responses) and responses[0] <= cycle)
            ctx.set(dut.i_result.valid, sent < len(beats))
            if sent < len(beats):
                ctx.set(dut.i_result.payload, beats[sent])
            if ctx.get(dut.i_result.valid) and ctx.get(dut.i_result.ready):
                sent += 1
            if ctx.get(dut.awvalid) and not busy:
                assert ctx.get(dut.awlen) == 0 and ctx.get(dut.awsize) == 3
                pending_aw.append(ctx.get(dut.awaddr))
            if ctx.get(dut.wvalid) and not busy:
                pending_w.append((ctx.get(dut.wdata), ctx.get(dut.wstrb)))
            while pending_aw and pending_w:
                where, (data, strobes) = pending_aw.pop(0), pending_w.pop(0)
                writes.append(where)
                for b in range(8):
                    if strobes >> b & 1:
                        memory[where + b] = data >> (8 * b) & 0xFF
                responses.append(cycle + latency)
            if ctx.get(dut.bvalid) and ctx.get(dut.bready):
                responses.pop(0)
            await ctx.tick()
        assert not ctx.get(dut.o_busy) and not responses

    _run(dut, bench)
    return memory, len(writes)


def test_store_bytes_scatter() -> None:
    """12 channels (two output tiles of 8, the second half empty), 10 pixels (three row tiles of 4,
    the last half empty), pixel stride 16 at byte 1003: fold f = (row tile r, tile t), its row j
    is pixel 4r + 3 - j; lane c is channel 8t + c."""
    rng = random.Random(1)
    beats = [rng.getrandbits(64) for _ in range(3 * 2 * 4)]
    memory, _ = _store(StoreMode.BYTES, width=64, lane_bits=8, beats=beats, addr=1003, pstride=16,
                       gstride=0, pixels=10, out_ch=12, groups=1)
    want = bytearray(MEM_BYTES)
    for i, beat in enumerate(beats):
        fold, j = divmod(i, 4)
        r, t = divmod(fold, 2)
        pixel = 4 * r + 3 - j
        for c in range(8):
            if pixel < 10 and 8 * t + c < 12:
                want[1003 + 16 * pixel + 8 * t + c] = beat >> (8 * c) & 0xFF
    assert memory == want


def test_store_bits_groups() -> None:
    """Packed bits of lane bit 0 (lanes 12 bits wide), two groups of 8 channels 64 bits apart,
    pixel stride 24 bytes: group g's channel byte is at g * 64 / 8."""
    rng = random.Random(2)
    beats = [rng.getrandbits(96) for _ in range(2 * 2 * 4)]  # 2 row tiles x 2 groups x 4 rows
    memory, _ = _store(StoreMode.BITS, width=96, lane_bits=12, beats=beats, addr=64, pstride=24,
                       gstride=64, pixels=7, out_ch=8, groups=2)
    want = bytearray(MEM_BYTES)
    for i, beat in enumerate(beats):
        fold, j = divmod(i, 4)
        r, g = divmod(fold, 2)
        pixel = 4 * r + 3 - j
        if pixel < 7:
            want[64 + 24 * pixel + 8 * g] = sum((beat >> (12 * c) & 1) << c for c in range(8))
    assert memory == want


def test_store_raw() -> None:
    """RAW: beat i in slot i (16 bytes for 96 bits), whatever the pixel count."""
    beats = [random.Random(3).getrandbits(96) for _ in range(5)]
    memory, writes = _store(StoreMode.RAW, width=96, lane_bits=12, beats=beats, addr=256, pstride=0,
                            gstride=0, pixels=0, out_ch=8, groups=1)
    want = bytearray(MEM_BYTES)
    for i, beat in enumerate(beats):
        want[256 + 16 * i:256 + 16 * i + 16] = beat.to_bytes(16, "little")
    assert memory == want and writes == 10
