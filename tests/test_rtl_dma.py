"""The network accelerator's DMA engines (rtl.dma) in the Amaranth simulator against a Python AXI4
memory with latency, several read bursts in flight and busy cycles: what is read equals the
memory's bytes cut into slots, every burst obeys the AXI rules, never more than MAX_OUTSTANDING
are in flight, each beat comes in the cycle worked out by hand, and each store mode writes
exactly the bytes worked out by hand, each write and each result taken in a plain model's cycle."""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from hwsim.rtl_sequence import MAX_BURST, MAX_OUTSTANDING
from rtl.dma import ReadDMA, StoreMode, WriteDMA, slot_bytes

pytestmark = pytest.mark.amaranth

MEM_BYTES = 3 * 4096


def _run(dut, bench) -> None:
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


class _Memory:
    """An AXI4 read slave in the bench: takes an address when ``ready_ar`` allows it, offers the
    words of each burst in order from ``latency`` cycles after its address on, one a cycle (held
    while rready is low), none in a cycle where ``ready_r`` says no; checks the AR rules (a burst
    of full-width INCR beats, within the transfer's words and its 4 KiB page, held until taken)
    and counts the bursts in flight."""

    def __init__(self, dut: ReadDMA, memory: bytes, latency: int) -> None:
        self.dut, self.memory, self.latency = dut, memory, latency
        self.queue: list[list[int]] = []  # [due cycle, next word, words left] per burst
        self.bursts: list[tuple[int, int]] = []  # (byte address, words) as issued
        self.issued: list[int] = []  # the cycle of each
        self.waiting: tuple[int, int] | None = None  # an address offered and not yet taken
        self.most = 0  # bursts in flight, at most

    def cycle(self, ctx, cycle: int, ready_ar: bool = True, ready_r: bool = True) -> list[str]:
        """Drive one cycle (before its edge); returns the handshakes of the cycle ("ar", "r")."""
        dut, events = self.dut, []
        ctx.set(dut.arready, ready_ar)
        head = self.queue[0] if self.queue else None
        offer = head is not None and head[0] <= cycle and ready_r
        ctx.set(dut.rvalid, offer)
        if offer:
            ctx.set(dut.rdata, int.from_bytes(self.memory[head[1] * 8:head[1] * 8 + 8], "little"))
            ctx.set(dut.rlast, head[2] == 1)
        if ctx.get(dut.arvalid):
            request = (ctx.get(dut.araddr), ctx.get(dut.arlen) + 1)
            assert self.waiting in (None, request)  # valid held, the address stable until taken
            self.waiting = request
            if ready_ar:
                assert ctx.get(dut.arsize) == 3 and ctx.get(dut.arburst) == 1
                self.bursts.append(request)
                self.issued.append(cycle)
                self.queue.append([cycle + self.latency, request[0] // 8, request[1]])
                self.waiting, events = None, ["ar"]
        else:
            assert self.waiting is None
        if offer and ctx.get(dut.rready):
            head[1], head[2] = head[1] + 1, head[2] - 1
            if not head[2]:
                self.queue.pop(0)
            events.append("r")
        self.most = max(self.most, len(self.queue))
        return events

    def check(self, addr: int, nbytes: int) -> None:
        """Every word of the byte range requested once, in order, in legal bursts."""
        first, last = addr // 8, (addr + nbytes - 1) // 8
        words = [w for start, n in self.bursts for w in range(start // 8, start // 8 + n)]
        assert words == list(range(first, last + 1))
        for start, n in self.bursts:
            assert n <= MAX_BURST and start // 4096 == (start + 8 * n - 1) // 4096
        assert self.most <= MAX_OUTSTANDING


def _start(ctx, dut: ReadDMA, addr: int, beats: int):
    for name, value in (("i_start", 1), ("i_addr", addr), ("i_beats", beats), ("i_target", 1)):
        ctx.set(getattr(dut, name), value)


@pytest.mark.parametrize("width, addr, beats, latency", [
    (8, 3, 37, 1), (8, 4090, 20, 3), (16, 4094, 9, 2), (64, 4096 - 24, 40, 5),
    (128, 64, 3, 1), (432, 8, 4, 4), (128, 4096 - 8, 2, 2),
    # wide beats from inside a bus word: realigned, one word more read (across a 4 KiB boundary too)
    (64, 4096 - 21, 40, 5), (64, 1, 3, 1), (128, 13, 5, 2), (432, 4093, 3, 1),
    # bursts of exactly MAX_BURST words, one word more, and the page cutting each of them
    (64, 0, 16, 1), (64, 8, 32, 2), (64, 4096 - 8 * 16, 17, 1), (64, 4096 - 8 * 15, 16, 1),
    (64, 4096 - 8 * 17, 16, 2), (16, 4096 - 8 * 3, 64, 1), (128, 4096 - 8 * 5, 9, 1),
    # more bursts than MAX_OUTSTANDING, narrow (the held word's beats back-pressure rready) and wide
    (8, 5, 700, 9), (64, 4096 - 40, 120, 30), (432, 24, 30, 12)])
def test_read_dma(width: int, addr: int, beats: int, latency: int) -> None:
    """Every beat as the memory holds it, under stalls of the address, data and beat handshakes."""
    rng = random.Random(f"{width}-{addr}")
    memory = bytes(rng.randrange(256) for _ in range(MEM_BYTES))
    slot = slot_bytes(width)
    want = [int.from_bytes(memory[addr + k * slot:addr + (k + 1) * slot], "little") & ((1 << width) - 1)
            for k in range(beats)]
    dut = ReadDMA([128, width])
    mem, got = _Memory(dut, memory, latency), []

    async def bench(ctx):
        _start(ctx, dut, addr, beats)
        await ctx.tick()
        ctx.set(dut.i_start, 0)
        for cycle in range(40 * beats + 200):
            ctx.set(dut.o_beat.ready, cycle % 7 != 2)  # the consumer stalls one cycle in seven
            # the memory takes no address one cycle in three, offers no word one in five
            mem.cycle(ctx, cycle, ready_ar=cycle % 3 != 1, ready_r=cycle % 5 != 3)
            if ctx.get(dut.o_beat.valid) and ctx.get(dut.o_beat.ready):
                got.append(ctx.get(dut.o_beat.payload) & ((1 << width) - 1))
            await ctx.tick()
        assert not ctx.get(dut.o_busy) and not mem.queue

    _run(dut, bench)
    assert got == want
    mem.check(addr, beats * slot)
    if -(-beats * slot // 8) > MAX_OUTSTANDING * MAX_BURST:
        assert mem.most == MAX_OUTSTANDING  # the stalls never keep it from filling up


@pytest.mark.parametrize("width, addr, beats, latency, beat_cycles, most", [
    # 40 words from byte 0 at latency 5: setup at 0, bursts of 16, 16 and 8 words addressed at 1,
    # 2 and 3 (three in flight); the memory answers the first at 6, then word after word: 6-45;
    # each 8-byte beat from the engine the cycle after its word, out of its register slice the
    # cycle after that: 8-47 (one burst in flight took 7-22, 28-43, 49-56)
    (64, 0, 40, 5, range(8, 48), 3),
    # 80 words at latency 20: addresses at 1-4, words 21-84; the fifth address waits for the first
    # burst's last word (36) and goes at 37, its words due at 57, after the fourth's: 85-100;
    # beats out 23-102
    (64, 0, 80, 20, range(23, 103), 4),
    # at latency 60 the fifth address (77, after the first burst's last word at 76) is the wait:
    # words 61-124, then 137-152; beats out two cycles after each
    (64, 0, 80, 60, [*range(63, 127), *range(139, 155)], 4),
    # bytes from byte 4: 36 beats in 5 words (one burst, addressed at 1); word 0 at 3 with 4 beats
    # at 4-7, every next word taken with the last beat of the one before: beats back to back 4-39
    # from the engine, 5-40 out
    (8, 4, 36, 2, range(5, 41), 1),
    # 16-byte beats across a page (byte 4096 - 48): bursts of 6 and 14 words addressed at 1, 2,
    # words at 5-24, a beat the cycle after every second word: 7, 9, ..., 25; out 8, 10, ..., 26
    (128, 4096 - 48, 10, 4, range(8, 27, 2), 2),
])
def test_read_dma_cycles(width: int, addr: int, beats: int, latency: int, beat_cycles, most: int) -> None:
    """Each beat's cycle (0: the setup cycle after the start) with a memory that takes every
    address and a consumer that takes every beat, worked out by hand; o_busy falls the cycle
    after the last beat."""
    dut = ReadDMA([128, width])
    mem, cycles = _Memory(dut, bytes(MEM_BYTES), latency), []

    async def bench(ctx):
        _start(ctx, dut, addr, beats)
        await ctx.tick()
        ctx.set(dut.i_start, 0)
        ctx.set(dut.o_beat.ready, 1)
        for cycle in range(400):
            mem.cycle(ctx, cycle)
            if ctx.get(dut.o_beat.valid):
                cycles.append(cycle)
            if cycles and not ctx.get(dut.o_busy):
                assert cycle == cycles[-1] + 1
                return
            await ctx.tick()
        raise AssertionError("o_busy never fell")

    _run(dut, bench)
    assert cycles == list(beat_cycles) and mem.most == most
    mem.check(addr, beats * slot_bytes(width))


@pytest.mark.parametrize("ahead, issued", [
    # 80 words at latency 20 alone: addresses at 1-4, the fifth after the first burst's last word
    # (36) at 37
    (0, [1, 2, 3, 4, 37]),
    # another reader's burst in flight through cycle 21 takes one of the four: the fourth address
    # waits until it is done (22); the words still stream (21-100), as the first three cover it;
    # the beats out at 23-102 either way
    (22, [1, 2, 3, 22, 37]),
])
def test_read_dma_ahead(ahead: int, issued: list[int]) -> None:
    """``i_ahead`` (the sequencer's command burst) counts toward MAX_OUTSTANDING."""
    dut = ReadDMA([128, 64])
    mem, cycles = _Memory(dut, bytes(MEM_BYTES), 20), []

    async def bench(ctx):
        _start(ctx, dut, 0, 80)
        await ctx.tick()
        ctx.set(dut.i_start, 0)
        ctx.set(dut.o_beat.ready, 1)
        for cycle in range(200):
            ctx.set(dut.i_ahead, cycle < ahead)
            mem.cycle(ctx, cycle)
            if ctx.get(dut.o_beat.valid):
                cycles.append(cycle)
            await ctx.tick()

    _run(dut, bench)
    assert mem.issued == issued and cycles == list(range(23, 103))


async def _start_store(ctx, dut: WriteDMA, **fields: int) -> None:
    """Start a store with ``fields`` (the WriteDMA's inputs by name) for one cycle."""
    for name, value in fields.items():
        ctx.set(getattr(dut, name), value)
    ctx.set(dut.i_start, 1)
    await ctx.tick()
    ctx.set(dut.i_start, 0)


def _store(mode: StoreMode, *, width: int, lane_bits: int, beats: list[int], addr: int, pstride: int,
           gstride: int, pixels: int, out_ch: int, groups: int, rows: int = 4, cols: int = 8,
           latency: int = 3) -> tuple[bytearray, int]:
    """Run a WriteDMA store into a zeroed memory; return the memory and the writes issued."""
    memory = bytearray(MEM_BYTES)
    dut = WriteDMA(width=width, rows=rows, cols=cols, lane_bits=lane_bits, dim_bits=10)
    writes = []

    async def bench(ctx):
        await _start_store(ctx, dut, i_addr=addr, i_beats=len(beats), i_mode=mode, i_pstride=pstride,
                           i_gstride=gstride, i_pixels=pixels, i_out_ch=out_ch, i_groups=groups)
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


def _store_model(mode: StoreMode, *, rows: int, cols: int, lane_bits: int, slot: int, beats: list[int],
                 addr: int, pstride: int, gstride: int, pixels: int, out_ch: int,
                 groups: int) -> list[list[tuple[int, int, int]]]:
    """The module docstring's scatter: per result beat, a write of each bus word its bytes span
    (word address, data in the strobed bytes, strobes), none for a row past ``pixels``."""
    tiles = -(-out_ch // cols)
    out = []
    for i, beat in enumerate(beats):
        if mode == StoreMode.RAW:
            start, nbytes, data, strobes = addr + i * slot, slot, beat, (1 << slot) - 1
        else:
            fold, j = divmod(i, rows)
            r, rest = divmod(fold, groups * tiles)
            g, t = divmod(rest, tiles)
            pixel = r * rows + rows - 1 - j
            if pixel >= pixels:
                out.append([])
                continue
            chan = g * gstride + t * cols
            on = [t * cols + c < out_ch for c in range(cols)]
            if mode == StoreMode.BYTES:
                start, nbytes = addr + pixel * pstride + chan, cols
                data = beat & ((1 << 8 * cols) - 1)
                strobes = sum(1 << c for c in range(cols) if on[c])
            else:
                start, nbytes = addr + pixel * pstride + chan // 8, cols // 8
                data = sum((beat >> c * lane_bits & on[c]) << c for c in range(cols))
                strobes = (1 << cols // 8) - 1
        data, strobes = data << 8 * (start % 8), strobes << start % 8
        writes = []
        for w in range(start // 8, (start + nbytes - 1) // 8 + 1):  # every word it spans, strobed or not
            s = strobes >> 8 * (w - start // 8) & 0xFF
            d = data >> 64 * (w - start // 8) & ((1 << 64) - 1)
            writes.append((8 * w, sum(d & 0xFF << 8 * b for b in range(8) if s >> b & 1), s))
        out.append(writes)
    return out


@pytest.mark.parametrize("seed", range(24))
def test_store_cycles_random(seed: int) -> None:
    """Random scatters (modes, array shapes, channels, groups, strides, pixels) under a producer
    with gaps and an AXI slave that stalls at random: every write is the model's and goes in the
    model's cycle. The model: a beat is taken in the first cycle that the producer offers it and
    the DMA holds fewer than two kept beats (a kept beat is held from the cycle after its take
    through the cycle of its last word's write); a kept beat's words are written one at a time,
    each in the first cycle the slave takes it, from the cycle after both its take and the last
    word's write of the kept beat before it."""
    rng = random.Random(seed)
    mode = [StoreMode.BYTES, StoreMode.BITS, StoreMode.RAW][seed % 3]
    rows, cols = rng.choice([1, 2, 4]), rng.choice([8, 16])
    lane_bits = 8 if mode == StoreMode.BYTES else rng.choice([1, 8, 12])
    out_ch, groups = rng.randrange(1, 3 * cols + 1), rng.randrange(1, 4)
    tiles = -(-out_ch // cols)
    row_tiles = rng.randrange(1, 4)
    pixels = rng.randrange(1, row_tiles * rows + 2)
    step = 1 if mode == StoreMode.BYTES else 8  # BITS: whole bytes
    gstride, pstride = step * rng.randrange(0, 300 // step), step * rng.randrange(0, 300 // step)
    addr = rng.randrange(0, 4000)
    beats = [rng.getrandbits(cols * lane_bits) for _ in range(row_tiles * groups * tiles * rows)]
    dut = WriteDMA(width=cols * lane_bits, rows=rows, cols=cols, lane_bits=lane_bits, dim_bits=10)
    want = _store_model(mode, rows=rows, cols=cols, lane_bits=lane_bits, slot=dut.slot, beats=beats,
                        addr=addr, pstride=pstride, gstride=gstride, pixels=pixels, out_ch=out_ch,
                        groups=groups)
    horizon = 30 * len(beats) + 50
    offered = [rng.random() < 0.7 for _ in range(horizon)]  # the producer has a beat (held once up)
    slave = [rng.random() < 0.6 for _ in range(horizon)]    # the slave takes a write
    takes, writes, model_takes, model_writes = [], [], [], []
    due, held = 0, [-1, -1]  # held: the last-write cycles of the last two kept beats
    for beat_writes in want:
        # offered: held until taken; room once the older of the two held beats is written
        taken = max(held[0] + 1, next(c for c in range(due, horizon) if offered[c]))
        model_takes.append(taken)
        due, cycle = taken + 1, max(taken, held[1])
        for write in beat_writes:
            cycle = next(c for c in range(cycle + 1, horizon) if slave[c])
            model_writes.append((cycle, *write))
        if beat_writes:
            held = [held[1], cycle]

    async def bench(ctx):
        await _start_store(ctx, dut, i_addr=addr, i_beats=len(beats), i_mode=mode, i_pstride=pstride,
                           i_gstride=gstride, i_pixels=pixels, i_out_ch=out_ch, i_groups=groups)
        responses, up = [], False
        for cycle in range(horizon):
            sent = len(takes)
            up = sent < len(beats) and (up or offered[cycle])
            ctx.set(dut.i_result.valid, up)
            ctx.set(dut.i_result.payload, beats[sent] if up else 0)
            ctx.set(dut.awready, slave[cycle])
            ctx.set(dut.wready, slave[cycle])
            ctx.set(dut.bvalid, bool(responses) and responses[0] <= cycle)
            if up and ctx.get(dut.i_result.ready):
                takes.append(cycle)
                up = False
            assert ctx.get(dut.awvalid) == ctx.get(dut.wvalid)
            if ctx.get(dut.awvalid) and slave[cycle]:
                strobes, data = ctx.get(dut.wstrb), ctx.get(dut.wdata)
                writes.append((cycle, ctx.get(dut.awaddr), sum(data & 0xFF << 8 * b for b in range(8)
                                                               if strobes >> b & 1), strobes))
                responses.append(cycle + 2)
            if ctx.get(dut.bvalid):
                responses.pop(0)
            await ctx.tick()
        assert not ctx.get(dut.o_busy)

    _run(dut, bench)
    assert writes == model_writes
    assert takes == model_takes
