# amaranth: UnusedElaboratable=no
"""The components of the accelerator top (rtl.im2col, rtl.buffers), each on Amaranth's simulator
against a naive model: the derived geometry against its formulas, the pixel walker against a loop
over output pixels, the operand fetch against a direct im2col of a numpy input, the loader, the
result writer (requantized in numpy) and the store against plain lists, with idle cycles and
back-pressure where the component has them."""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from amaranth.hdl import Fragment, Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.sim import Simulator

from contract import GEOMETRY_CYCLES, act_banks
from hwsim.rtl_plan import TopGeometry, top_geometry
from rtl.buffers import LoadTarget, Loader, ResultWriter, StoreStream
from rtl.dsp import DSPPlatform
from rtl.im2col import LayerGeometry, OperandFetch, PixelWalker, kernel_window, residue
from rtl.requant import OutputStage
from test_rtl_dsp import MODEL
from test_rtl_top import accelerator

#: Amaranth-simulator tier (see pyproject.toml markers).
pytestmark = pytest.mark.amaranth


def geometry(kind: str = "mac", rows: int = 2, cols: int = 2, **words: int) -> TopGeometry:
    """The small test top's geometry, buffer depths replaced by ``words``."""
    return dataclasses.replace(top_geometry(accelerator(kind, rows, cols)), **words)


def desc(in_hw: tuple[int, int], out_hw: tuple[int, int], in_ch: int, out_ch: int, groups: int = 1,
         kernel: int = 1, stride: int = 1, pad: int = 0, relu: int = 0) -> dict[str, int]:
    """A descriptor (square kernel, stride and padding)."""
    return {"in_h": in_hw[0], "in_w": in_hw[1], "out_h": out_hw[0], "out_w": out_hw[1],
            "in_ch": in_ch, "out_ch": out_ch, "groups": groups, "kernel_h": kernel,
            "kernel_w": kernel, "stride_h": stride, "stride_w": stride, "pad_h": pad,
            "pad_w": pad, "relu": relu, "binary_out": 0}


def simulate(dut: Any, bench: Callable, memories: Sequence[tuple[Any, int, list]] = (),
             around: Callable[[Module], None] | None = None, platform: DSPPlatform | None = None) -> None:
    """Run ``bench`` on ``dut`` with a real Memory of ``(depth, init)`` behind each read-port
    member (an array member: all its ports on one memory) and what ``around`` adds, elaborated
    for ``platform`` (rtl.dsp)."""
    m = Module()
    m.submodules.dut = dut
    if around:
        around(m)
    for i, (member, depth, init) in enumerate(memories):
        ports = member if isinstance(member, list) else [member]
        mem = Memory(shape=ports[0].signature.shape, depth=depth, init=init)
        m.submodules[f"mem{i}"] = mem
        for port in ports:
            wiring.connect(m, port, mem.read_port())
    sim = Simulator(Fragment.get(m, platform))
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def act_memories(dut: OperandFetch, geo: TopGeometry, words: list) -> list[tuple[Any, int, list]]:
    """The activation buffer words ``words`` behind the fetch's read ports: in bank ``i mod B``
    at ``i >> k`` (:func:`contract.act_banks`), or one copy read by every row."""
    if not geo.act_banks:
        return [(list(dut.act_rd), geo.act_words // geo.act_beat, words)]
    banks, shift = act_banks(geo.rows)
    memories = []
    for b, port in enumerate(dut.act_rd):
        init = [[0] * geo.act_beat for _ in range(geo.act_bank_words)]
        for i, word in enumerate(words):
            if i % banks == b:
                init[i >> shift] = word
        memories.append((port, geo.act_bank_words, init))
    return memories


#: The sizes of :func:`naive_geometry` that have a phase.
PHASED = ("x_step", "y_step", "origin", "plane", "k_step", "line_step")


def phases_of(geo: TopGeometry) -> int:
    """The modulus of an address's phase on ``geo``: ``act_beat`` lanes times ``B`` banks (one
    without), so that ``a mod`` it gives both ``a``'s lane and its buffer word's bank."""
    return geo.act_beat * (geo.act_banks or 1)


def naive_geometry(d: dict[str, int], lanes: int, max_steps: int, dw_lanes: int = 0,
                   phases: int = 1, act_beat: int = 1) -> dict[str, int]:
    """The derived sizes by their formulas (``act_one_beat``: the activation words fit one beat of
    ``act_beat``), and the address steps' phases modulo ``phases``; a
    ``depthwise`` descriptor's ``G`` fold groups of ``dw_lanes`` channel slots: ``G * dw_lanes``
    words a pixel, the next kernel position ``G * dw_lanes`` words on, the next fold group
    ``dw_lanes``."""
    cw = math.ceil(d["in_ch"] / lanes)
    window = d["kernel_h"] * d["kernel_w"]
    dw = d.get("depthwise", 0)
    pixel = d["groups"] * dw_lanes if dw else cw
    k_step = pixel if dw else 1
    sizes = {"x_step": d["stride_w"] * pixel, "y_step": d["stride_h"] * d["in_w"] * pixel,
             "origin": -(d["pad_h"] * d["in_w"] + d["pad_w"]) * pixel,
             "line_step": (d["in_w"] - d["kernel_w"]) * pixel + k_step,
             "plane": dw_lanes if dw else d["in_h"] * d["in_w"] * cw,
             "too_long": int(window * cw > max_steps), "positions": d["in_ch"] * window,
             "act_words": d["in_h"] * d["in_w"] * pixel * (1 if dw else d["groups"]),
             "k_step": k_step}
    sizes["act_one_beat"] = int(sizes["act_words"] <= act_beat)
    return sizes | {f"{k}_phase": sizes[k] % phases for k in PHASED}


@pytest.mark.parametrize("platform", [None, MODEL], ids=["generic", "ecp5"])
@pytest.mark.parametrize("kind", ["mac", "xnor"])
def test_layer_geometry(kind: str, platform: DSPPlatform | None) -> None:
    """Each derived size equals its formula (also of a depthwise descriptor): act_words, x_step,
    pixels and k_step two cycles after the descriptor (ACTS's last beat may read act_words), the
    rest three, the phases :data:`contract.GEOMETRY_CYCLES` (six: the take). Also with the products
    in (modelled) ECP5 DSP blocks."""
    geo = geometry(kind, cols=4)
    assert geo.dw_lanes == (0 if kind == "xnor" else 4)
    dut = LayerGeometry(geo)
    quarter = geo.lanes * geo.act_beat // 4  # channels of act_beat / 4 words a pixel
    cases = [desc((5, 7), (3, 4), 6, 3, kernel=3, stride=2, pad=1, groups=2),
             desc((1, 1), (1, 1), 9, 2), desc((4, 4), (4, 4), 30, 2, kernel=3, pad=1),
             # 2 x 2 pixels of act_beat / 4 words: one beat exactly; one channel more: two
             desc((2, 2), (2, 2), quarter, 2), desc((2, 2), (2, 2), quarter + 1, 2)]
    if geo.dw_lanes:  # 3 fold groups of 4 channels (12 slots a pixel), 3x3 s2 p1
        cases.append({**desc((5, 7), (3, 4), 1, 1, groups=3, kernel=3, stride=2, pad=1), "depthwise": 1})

    async def bench(ctx):
        for d in cases:
            want = naive_geometry(d, geo.lanes, geo.max_steps, geo.dw_lanes, phases_of(geo), geo.act_beat)
            if want["too_long"]:  # the layer is refused; its K need not fit
                del want["positions"]
            ctx.set(dut.i_desc, d)
            await ctx.tick().repeat(2)
            early = [k for k in ("x_step", "act_words", "act_one_beat", "k_step") if k in want]
            assert {k: ctx.get(getattr(dut.o_geo, k)) for k in early} == {k: want[k] for k in early}
            await ctx.tick()
            sizes = [k for k in want if not k.endswith("_phase")]
            assert {k: ctx.get(getattr(dut.o_geo, k)) for k in sizes} == {k: want[k] for k in sizes}
            await ctx.tick().repeat(GEOMETRY_CYCLES - 3)
            assert {k: ctx.get(getattr(dut.o_geo, k)) for k in want} == want

    simulate(dut, bench, platform=platform)


def test_layer_geometry_counts_an_oversized_layer_past_the_buffer() -> None:
    """``act_words`` is a short product of the factors' low bits: exact for a layer that fits
    64 activation words (4 x 4 x 4; 1 x 64 x 1), and past the buffer's end -- so ACTS overruns
    it and raises the error -- for one that does not, also when a factor's low bits alone
    would count a small layer (3 x 128 x 2: 768 words, low 7 bits of 256 are 0)."""
    dut = LayerGeometry(geometry("mac", act_words=64))
    cases = [(desc((4, 4), (4, 4), 4, 2), 64), (desc((1, 64), (1, 64), 1, 2), 64),
             (desc((3, 128), (3, 128), 2, 2), None), (desc((3, 100), (3, 100), 2, 2), None),
             (desc((200, 300), (200, 300), 5, 2), None)]

    async def bench(ctx):
        for d, words in cases:
            ctx.set(dut.i_desc, d)
            await ctx.tick().repeat(2)
            got = ctx.get(dut.o_geo.act_words)
            assert got == words if words is not None else got > 64, (d, got)

    simulate(dut, bench)


def naive_pixels(d: dict[str, int], cw: int, rows: int) -> list[list[tuple[int, int, int, int]]]:
    """Per row tile, each row's (iy, ix, p, ok): a loop over the output pixels; rows past the
    last pixel have ok 0 (their coordinates are don't-care, None)."""
    pixels = [(oy * d["stride_h"] - d["pad_h"], ox * d["stride_w"] - d["pad_w"])
              for oy in range(d["out_h"]) for ox in range(d["out_w"])]
    tiles = []
    for t in range(math.ceil(len(pixels) / rows)):
        tile = []
        for m in range(t * rows, (t + 1) * rows):
            if m < len(pixels):
                iy, ix = pixels[m]
                tile.append((iy, ix, (iy * d["in_w"] + ix) * cw, 1))
            else:
                tile.append(None)
        tiles.append(tile)
    return tiles


async def start(ctx, dut, d: dict[str, int], max_steps: int) -> None:
    """Present descriptor ``d`` and its naive geometry, and pulse ``i_start`` for one cycle (a
    walker's first pixel from ``i_first``: the descriptor and geometry only follow the start,
    as the run side's registers do the take)."""
    geometry_of_d = naive_geometry(d, 1, max_steps, phases=phases_of(dut.geo))
    if hasattr(dut, "i_first"):
        ctx.set(dut.i_first, {"iy": -d["pad_h"], "ix": -d["pad_w"], "room_y": d["in_h"] + d["pad_h"],
                              "room_x": d["in_w"] + d["pad_w"], "p": geometry_of_d["origin"],
                              "phase": geometry_of_d["origin_phase"], "last": int(d["out_w"] == 1)})
    ctx.set(dut.i_start, 1)
    await ctx.tick()
    ctx.set(dut.i_start, 0)
    ctx.set(dut.i_desc, d)
    ctx.set(dut.i_geo, geometry_of_d)


@pytest.mark.parametrize("d", [desc((5, 5), (3, 3), 3, 2, kernel=3, stride=2, pad=1),
                               desc((4, 7), (2, 5), 2, 2, kernel=3),
                               # 3x1 kernel, stride 2x1, padding 0x1: each axis its own
                               desc((7, 6), (3, 8), 2, 2, kernel=3) | {"kernel_w": 1, "stride_h": 2, "pad_w": 1}],
                         ids=["s2-p1", "s1", "rect"])
def test_pixel_walker(d: dict[str, int]) -> None:
    """Tile after tile with idle cycles between steps, every step writing the rows directly:
    every row's coordinates and address, the last-row flag before each tile's last step and
    ``o_pending`` after each tile (pixels left)."""
    geo = geometry(rows=4)
    dut = PixelWalker(geo)
    want = naive_pixels(d, d["in_ch"], geo.rows)  # mac: one word per channel

    async def bench(ctx):
        await start(ctx, dut, d, geo.max_steps)
        idle = itertools.cycle([0, 1, 0, 0, 2])
        ctx.set(dut.i_direct, 1)
        for t, tile in enumerate(want):
            for r in range(geo.rows):
                assert ctx.get(dut.o_last) == (r == geo.rows - 1)
                ctx.set(dut.i_step, 1)
                await ctx.tick()
                ctx.set(dut.i_step, 0)
                if gap := next(idle):
                    await ctx.tick().repeat(gap)  # the rows are held while idle
            check_rows(ctx, dut, tile)
            assert ctx.get(dut.o_pending) == (t + 1 < len(want)) and not ctx.get(dut.o_full)

    simulate(dut, bench)


def check_rows(ctx: Any, dut: PixelWalker, tile: list) -> None:
    """``o_rows`` holds ``tile`` (rows past the last pixel: ``ok`` 0), each with its kernel
    window and ``mark`` (:func:`fetch_row`)."""
    for r, row in enumerate(tile):
        got = ctx.get(dut.o_rows[r])
        assert got.ok == (row is not None)
        if row is not None:
            fields = ("ky_lo", "ky_hi", "kx_lo", "kx_hi", "p", "ok", "mark")
            assert {f: getattr(got, f) for f in fields} == fetch_row(dut.geo, input_size(ctx, dut), *row)


def test_pixel_walker_ahead() -> None:
    """The first row tile walked directly, every later one into the second set while the rows
    of the one before stay on ``o_rows`` (idle cycles between steps): ``o_pending`` until the
    set is full, ``o_full`` from the cycle after its last step until the swap, which puts it
    on ``o_rows``; after the last tile nothing is pending."""
    geo = geometry(rows=4)
    d = desc((5, 5), (3, 3), 3, 2, kernel=3, stride=2, pad=1)  # 9 pixels: 3 tiles, the last of 1
    dut = PixelWalker(geo)
    want = naive_pixels(d, d["in_ch"], geo.rows)

    async def bench(ctx):
        await start(ctx, dut, d, geo.max_steps)
        ctx.set(dut.i_direct, 1)
        ctx.set(dut.i_step, 1)
        await ctx.tick().repeat(geo.rows)
        ctx.set(dut.i_step, 0)
        ctx.set(dut.i_direct, 0)
        check_rows(ctx, dut, want[0])
        idle = itertools.cycle([1, 0, 2])
        for t in range(1, len(want)):
            for r in range(geo.rows):
                assert ctx.get(dut.o_pending) and not ctx.get(dut.o_full)
                ctx.set(dut.i_step, 1)
                await ctx.tick()
                ctx.set(dut.i_step, 0)
                if gap := next(idle):
                    await ctx.tick().repeat(gap)
                check_rows(ctx, dut, want[t - 1])  # the fetch's rows are untouched
            assert ctx.get(dut.o_full) and not ctx.get(dut.o_pending)
            ctx.set(dut.i_swap, 1)
            await ctx.tick()
            ctx.set(dut.i_swap, 0)
            check_rows(ctx, dut, want[t])
            assert not ctx.get(dut.o_full)
        assert not ctx.get(dut.o_pending)

    simulate(dut, bench)


def input_size(ctx: Any, dut: Any) -> tuple[int, int]:
    """The input's ``(in_h, in_w)`` on ``dut``'s descriptor."""
    return ctx.get(dut.i_desc.in_h), ctx.get(dut.i_desc.in_w)


def fetch_row(geo: Any, size: tuple[int, int], iy: int, ix: int, p: int, ok: int) -> dict:
    """An ``i_rows`` entry of the fetch for kernel origin ``(iy, ix)`` of an ``in_h x in_w`` input
    (``size``): the kernel offsets ``k < 16`` with ``0 <= iy + k < in_h`` (and for x) as ``[lo,
    hi)``, the pixel's address, ``ok`` and, with banks, ``mark``: the bank of buffer word ``p //
    act_beat`` (floor: ``p`` is negative left of the input)."""
    (y_lo, y_hi), (x_lo, x_hi) = ((min(max(0, -o), 16), min(max(0, n - o), 16)) for o, n in zip((iy, ix), size))
    return {"ky_lo": y_lo, "ky_hi": y_hi, "kx_lo": x_lo, "kx_hi": x_hi, "p": p, "ok": ok,
            "mark": (p // geo.act_beat) % geo.act_banks if geo.act_banks else 0}


async def drive_fetch(ctx: Any, dut: OperandFetch, tiles: list, steps: list[tuple[int, dict]],
                      readies: list[int], take: Callable) -> list:
    """Issue ``steps`` (each its row tile's index into ``tiles`` and its ``i_pos``) through the
    fetch while its consumer is ready by the pattern ``readies``; every beat taken, as
    ``take(payload)``."""
    got, issued = [], 0
    for ready in itertools.cycle(readies):
        if len(got) == len(steps):
            break
        if issued < len(steps):
            tile, pos = steps[issued]
            for r, row in enumerate(tiles[tile]):
                ctx.set(dut.i_rows[r], fetch_row(dut.geo, input_size(ctx, dut), *(row or (0, 0, 0, 0))))
            ctx.set(dut.i_pos, pos)
        ctx.set(dut.i_run, issued < len(steps))
        ctx.set(dut.o_operands.ready, ready)
        _, _, issue, valid, beat = await ctx.tick().sample(
            dut.o_issue, dut.o_operands.valid, dut.o_operands.payload)
        issued += issue
        if valid and ready:
            got.append(take(beat))
    return got


def test_operand_fetch_spaces_fold_ends() -> None:
    """With fold overlap a fold's last beat comes no sooner than ``rows`` cycles after the fold
    before's (the array takes a last beat only then), the other beats as they come: on a 4-row
    top, folds of 1 and 3 steps end every 4 cycles, folds of 6 steps every 6 (the padding rows
    read nothing, so every step takes one cycle)."""
    geo = dataclasses.replace(geometry(rows=4, cols=2), fold_overlap=True)
    dut = OperandFetch(geo)

    async def bench(ctx):
        ctx.set(dut.o_operands.ready, 1)
        for k, spacing in ((1, 4), (3, 4), (6, 6)):
            ctx.set(dut.i_start, 1)
            await ctx.tick()
            ctx.set(dut.i_start, 0)
            ctx.set(dut.i_run, 1)
            ends, step, cycle = [], 0, 0
            while len(ends) < 4:
                end = int(step % k == k - 1)
                ctx.set(dut.i_pos, {"ky": 0, "kx": 0, "line_end": end, "fold_end": end, "last_tile": 1,
                                    "last_group": 1})
                _, _, issue, valid, last = await ctx.tick().sample(
                    dut.o_issue, dut.o_operands.valid, dut.o_operands.payload.last)
                step += issue
                ends += [cycle] * (valid & last)
                cycle += 1
            ctx.set(dut.i_run, 0)
            for _ in range(12):  # drain
                await ctx.tick()
            assert [c - ends[0] for c in ends] == [0, spacing, 2 * spacing, 3 * spacing], k

    simulate(dut, bench, [*act_memories(dut, geo, []), (dut.weight_rd, geo.weight_words, [])])


@pytest.mark.parametrize("modulus", [3, 5, 7, 11, 17, 37])
def test_residue_is_the_modulo(modulus: int) -> None:
    """The bank of a buffer word without a divider equals ``i % modulus`` for every 11-bit ``i``."""
    value = Signal(11)
    m = Module()
    out = Signal(range(modulus))
    m.d.comb += out.eq(residue(value, modulus))

    async def bench(ctx):
        got = []
        for i in range(1 << 11):
            ctx.set(value, i)
            got.append(ctx.get(out))
        assert got == [i % modulus for i in range(1 << 11)]

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


def test_kernel_window_is_the_offsets_inside() -> None:
    """``kernel_window(origin, size - origin)``: exactly the offsets ``k`` in 0..15 with ``0 <=
    origin + k < size``, for origins far left of the input to past its end and sizes 1..40."""
    origin, size = Signal(signed(10)), Signal(8)
    lo, hi = kernel_window(origin, size - origin)
    m = Module()
    got_lo, got_hi = Signal(5), Signal(5)
    m.d.comb += [got_lo.eq(lo), got_hi.eq(hi)]

    async def bench(ctx):
        for n in (1, 2, 3, 15, 16, 17, 40):
            for o in range(-20, 45):
                ctx.set(origin, o)
                ctx.set(size, n)
                window = range(ctx.get(got_lo), ctx.get(got_hi))
                assert [k for k in range(16) if k in window] == [k for k in range(16) if 0 <= o + k < n], (o, n)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("modulus", [5, 17])
def test_residue_of_a_signed_value(modulus: int) -> None:
    """A signed 9-bit value (a pixel address left of the input, with padding): the residue is
    Python's ``v % modulus`` (never negative) for every value."""
    value = Signal(signed(9))
    m = Module()
    out = Signal(range(modulus))
    m.d.comb += out.eq(residue(value, modulus))

    async def bench(ctx):
        got = []
        for v in range(-256, 256):
            ctx.set(value, v)
            got.append(ctx.get(out))
        assert got == [v % modulus for v in range(-256, 256)]

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


def test_operand_fetch_serves_bank_conflicts() -> None:
    """On a 4-row top (5 banks, buffer word ``i`` in bank ``i mod 5``, 8 activations a word) a
    step whose rows read activations 0, 40, 80 and 8 (+ the channel word) -- buffer words 0, 5,
    10 in bank 0 and 1 in bank 1 -- is served in 3 cycles, one of rows reading 0-3 (one word,
    broadcast) in 1: a fold of 8 channel words of each, back to back, gives beats 3 cycles
    apart, then 1, each row's activation the one at its address. Only the banks a step's rows
    ask for are read: 4 reads a step of the first tile (banks 0 and 1, then bank 0 twice), one
    a step of the second while its rows share word 0 (channel words 0-4), two (words 0 and 1)
    after: 8 * 4 + 5 + 3 * 2 = 43 reads, where reading every bank every cycle would be 5 a
    cycle."""
    geo = dataclasses.replace(geometry(rows=4, cols=2), fold_overlap=True)
    assert (geo.act_banks, geo.act_beat) == (5, 8)
    acts = list(range(-64, 64))  # activation a is a - 64
    dut = OperandFetch(geo)
    tiles = [(0, 40, 80, 8), (0, 1, 2, 3)]
    d = desc((1, 16), (1, 4), 8, 2)

    async def bench(ctx):
        await start(ctx, dut, d, geo.max_steps)
        ctx.set(dut.o_operands.ready, 1)
        beats, issued, cycle, reads = [], 0, 0, 0
        while len(beats) < 16:
            tile, cw = divmod(min(issued, 15), 8)
            for r, p in enumerate(tiles[tile]):
                ctx.set(dut.i_rows[r], fetch_row(geo, (1, 16), 0, 0, p, 1))
            ctx.set(dut.i_pos, {"ky": 0, "kx": 0, "line_end": int(cw == 7), "fold_end": int(cw == 7),
                                "last_tile": 1, "last_group": 1})
            ctx.set(dut.i_run, int(issued < 16))
            _, _, issue, valid, x, *enables = await ctx.tick().sample(
                dut.o_issue, dut.o_operands.valid, dut.o_operands.payload.x, *(rd.en for rd in dut.act_rd))
            issued += issue
            reads += sum(enables)
            if valid:
                beats.append((cycle, [int(v) for v in x]))
            cycle += 1
        assert [b[0] - a[0] for a, b in zip(beats, beats[1:])] == [3] * 7 + [1] * 8
        assert reads == 8 * 4 + 5 + 3 * 2
        assert [x for _, x in beats] == [[acts[p + cw] for p in tiles[t]] for t in range(2) for cw in range(8)]

    simulate(dut, bench, [*act_memories(dut, geo, [acts[i:i + 8] for i in range(0, len(acts), 8)]),
                          (dut.weight_rd, geo.weight_words, [])])


#: The consumer's ready pattern per fetch: the banked fetch of a fold-overlapped top has an
#: array that takes every beat (it ignores ready); the per-row copies' fetch is back-pressured.
READIES = {True: [1], False: [1, 0, 1, 1, 0, 0]}


@pytest.mark.parametrize("overlap", [True, False], ids=["banks", "copies"])
def test_operand_fetch_depthwise(overlap: bool) -> None:
    """A depthwise descriptor (6 channels, 3x3 pad 1, fold groups of L = 4 on a 2x4 top, two
    fold groups per 8-word buffer word; banked, or per-row copies under a stalling consumer):
    ``xd[r][c]`` of every beat is
    channel ``4 * fold group + c`` of row ``r``'s im2col position (0 where padded, past the last
    pixel or in the padding slots of channels 6 and 7), the weight word of its (fold group, step)
    and ``last`` per fold."""
    geo = dataclasses.replace(geometry(rows=2, cols=4), fold_overlap=overlap)
    lanes = geo.dw_lanes
    assert (lanes, geo.act_beat) == (4, 8)
    rng = np.random.default_rng(5)
    channels, h, w, k, groups = 6, 3, 3, 3, 2  # two fold groups: 8 channel slots a pixel
    d = {**desc((h, w), (h, w), 1, 1, groups=groups, kernel=k, pad=1), "depthwise": 1}
    x = rng.integers(-128, 128, size=(h, w, channels))
    slots = np.zeros((h, w, groups * lanes), dtype=np.int64)
    slots[..., :channels] = x
    flat = [int(v) for v in slots.reshape(-1)]  # channels last over the slots
    act_init = [flat[i:i + geo.act_beat] for i in range(0, len(flat), geo.act_beat)]
    weight_init = [[i, -i, 2 * i, 3] for i in range(groups * k * k)]
    tiles = naive_pixels(d, groups * lanes, geo.rows)
    schedule = [(tile, g, ky, kx) for tile in range(len(tiles)) for g in range(groups)
                for ky in range(k) for kx in range(k)]

    def expected(tile, g, ky, kx):
        xd = []
        for row in tiles[tile]:
            iy, ix = (row[0] + ky, row[1] + kx) if row else (-1, -1)
            inside = 0 <= iy < h and 0 <= ix < w
            xd.append([int(slots[iy, ix, g * lanes + c]) if inside else 0 for c in range(lanes)])
        return xd, weight_init[g * k * k + ky * k + kx], (ky, kx) == (k - 1, k - 1)

    dut = OperandFetch(geo)

    async def bench(ctx):
        ctx.set(dut.i_start, 1)
        await ctx.tick()
        ctx.set(dut.i_start, 0)
        ctx.set(dut.i_desc, d)
        ctx.set(dut.i_geo, naive_geometry(d, 1, geo.max_steps, lanes, phases_of(geo)))
        steps = [(tile, {"ky": ky, "kx": kx, "line_end": int(kx == k - 1), "fold_end": int(kx == ky == k - 1),
                         "last_tile": 1, "last_group": int(g == groups - 1)}) for tile, g, ky, kx in schedule]
        got = await drive_fetch(ctx, dut, tiles, steps, READIES[overlap], lambda beat: (
            [[int(v) for v in row] for row in beat.xd], [int(v) for v in beat.w], bool(beat.last)))
        assert got == [expected(*s) for s in schedule]

    simulate(dut, bench, [*act_memories(dut, geo, act_init),
                          (dut.weight_rd, geo.weight_words, weight_init)])


@pytest.mark.parametrize("overlap", [True, False], ids=["banks", "copies"])
def test_operand_fetch(overlap: bool) -> None:
    """Two groups, two output tiles and two row tiles of a 3x3 stride-1 pad-1 conv (banked, or
    per-row copies under a stalling consumer): every beat equals a direct im2col of the numpy input (0 where padded or
    past the last pixel), the weight word of its (group, tile, step) and ``last`` per fold."""
    geo = dataclasses.replace(geometry(rows=4, cols=2), fold_overlap=overlap)  # 6 pixels: the
    # second row tile has 2 rows past the last
    rng = np.random.default_rng(3)
    groups, h, w, cin, k = 2, 3, 2, 2, 3
    d = desc((h, w), (h, w), cin, 3, groups=groups, kernel=k, pad=1)
    x = rng.integers(-128, 128, size=(groups, h, w, cin))
    flat = [int(v) for v in x.reshape(-1)]  # channels last: ((g * H + iy) * W + ix) * CW + cw
    beat = geo.act_beat  # 8 words a buffer word: word a in lane a % 8 of buffer word a // 8
    assert beat == 8
    act_init = [(flat[i:i + beat] + [0] * beat)[:beat] for i in range(0, len(flat), beat)]
    nt, steps = 2, k * k * cin  # ceil(3 / cols) output tiles; steps per fold
    weight_init = [[i, -i] for i in range(groups * nt * steps)]
    tiles = naive_pixels(d, cin, geo.rows)
    schedule = [(tile, g, t, ky, kx, c) for tile in range(len(tiles)) for g in range(groups)
                for t in range(nt) for ky in range(k) for kx in range(k) for c in range(cin)]

    def expected(tile, g, t, ky, kx, c):
        xs = []
        for row in tiles[tile]:
            iy, ix = (row[0] + ky, row[1] + kx) if row else (-1, -1)
            xs.append(int(x[g, iy, ix, c]) if 0 <= iy < h and 0 <= ix < w else 0)
        word = (g * nt + t) * steps + (ky * k + kx) * cin + c
        return xs, weight_init[word], (ky, kx, c) == (k - 1, k - 1, cin - 1)

    dut = OperandFetch(geo)

    async def bench(ctx):
        await start(ctx, dut, d, geo.max_steps)
        steps = [(tile, {"ky": ky, "kx": kx, "line_end": int(kx == k - 1 and c == cin - 1),
                         "fold_end": int(kx == ky == k - 1 and c == cin - 1),
                         "last_tile": int(t == nt - 1), "last_group": int(g == groups - 1)})
                 for tile, g, t, ky, kx, c in schedule]
        got = await drive_fetch(ctx, dut, tiles, steps, READIES[overlap], lambda beat: (
            [int(v) for v in beat.x], [int(v) for v in beat.w], bool(beat.last)))
        assert got == [expected(*s) for s in schedule]

    simulate(dut, bench, [*act_memories(dut, geo, act_init),
                          (dut.weight_rd, geo.weight_words, weight_init)])


def test_loader() -> None:
    """Three phases with idle input cycles: only the named stream is ready; each buffer gets its
    beats from word 0 in order, and the beats past a buffer's end are dropped and flagged; each
    activation write comes with its word's bank (word mod 3), one-hot."""
    geo = geometry(act_words=8, act_beat=4)  # two buffer words of four activations
    dut = Loader(geo)
    phases = {"param": (LoadTarget.PARAMS, [[{"bias": i, "mult": 2 * i, "shift": 3}] * geo.cols
                                              for i in range(3)]),
              "weight": (LoadTarget.WEIGHTS, [[i, -i] for i in range(4)]),
              "act": (LoadTarget.ACTS, [[4 * i + lane - 8 for lane in range(4)] for i in range(4)])}
    streams = {name: getattr(dut, f"i_{name}s") for name in phases}
    ports = {name: getattr(dut, f"{name}_wr") for name in phases}
    written: dict[str, dict[int, Any]] = {name: {} for name in phases}

    async def bench(ctx):
        overruns, valid = 0, itertools.cycle([1, 0, 1, 1, 0])
        for name, (target, beats) in phases.items():
            ctx.set(dut.i_restart, 1)
            await ctx.tick()
            ctx.set(dut.i_restart, 0)
            ctx.set(dut.i_target, target)
            port = streams[name]
            for beat in beats:
                ctx.set(port.payload, beat)
                while True:
                    ctx.set(port.valid, v := next(valid))
                    _, _, bank, *got = await ctx.tick().sample(
                        dut.o_act_bank, *[s.ready for s in streams.values()], dut.o_overrun,
                        *[x for p in ports.values() for x in (p.en, p.addr, p.data)])
                    readies, (overrun, *wr) = got[:3], got[3:]
                    if wr[-3]:  # an activation written: its word's bank, one-hot
                        assert bank == 1 << (wr[-2] % geo.act_banks)
                    assert readies == [int(s is port) for s in streams.values()]
                    overruns += overrun
                    for key, (en, addr, data) in zip(ports, zip(*[iter(wr)] * 3)):
                        if en:
                            written[key][addr] = data
                    if v:
                        break
            ctx.set(port.valid, 0)
        assert overruns == 2  # activation beats 2 and 3 of a 2-word buffer

    simulate(dut, bench)
    assert {a: [{k: getattr(p, k) for k in ("bias", "mult", "shift")} for p in w]
            for a, w in written["param"].items()} == dict(enumerate(phases["param"][1]))
    assert {a: [int(v) for v in w] for a, w in written["weight"].items()} == (
        dict(enumerate(phases["weight"][1])))
    assert {a: [int(v) for v in w] for a, w in written["act"].items()} == dict(enumerate(phases["act"][1][:2]))


def test_loader_targets() -> None:
    """A loader of some targets has only their streams and write ports (the top's run side has
    one of RESID alone, beside the loads); none, or NONE, is refused."""
    geo = geometry()
    resid = Loader(geo, (LoadTarget.RESID,))
    assert hasattr(resid, "i_resid") and hasattr(resid, "resid_wr")
    assert not any(hasattr(resid, name) for name in ("i_params", "i_weights", "i_acts", "act_wr"))
    loads = Loader(geo, (LoadTarget.PARAMS, LoadTarget.WEIGHTS, LoadTarget.ACTS))
    assert hasattr(loads, "i_acts") and not hasattr(loads, "i_resid")
    for bad in ((), (LoadTarget.NONE,)):
        with pytest.raises(ValueError, match=r"^`targets` must be load targets other than NONE"):
            Loader(geo, bad)


def requantize(acc: np.ndarray, bias: np.ndarray, mult: np.ndarray, shift: np.ndarray,
               relu: bool, bits: int = 8) -> np.ndarray:
    """models.intref's requantization of one row, written out: clamp of the rounded product."""
    y = ((acc + bias) * mult + (1 << (shift - 1))) >> shift
    y = np.clip(y, -(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    return np.maximum(y, 0) if relu else y


@pytest.mark.parametrize("relu", [0, 1])
def test_result_writer(relu: int) -> None:
    """Five folds of 2 rows (2 groups x 2 output tiles: tile pointer wraps) with idle cycles,
    through a real OutputStage into a 9-word out buffer: word ``f * rows + j`` is row ``j`` of
    fold ``f`` requantized with tile ``f mod 4``'s parameters; the tenth row is dropped and
    flagged."""
    geo = geometry(out_words=9, psum_words=0)  # no psum buffer: the writer of whole layers
    rng = np.random.default_rng(relu)
    folds, tiles = 5, 4
    bias = rng.integers(-500, 500, size=(tiles, geo.cols))
    mult = rng.integers(1, 3000, size=(tiles, geo.cols))
    shift = rng.integers(8, 14, size=(tiles, geo.cols))
    params = [[{"bias": int(b), "mult": int(m), "shift": int(s)} for b, m, s in zip(*p)]
              for p in zip(bias, mult, shift)]
    acc = rng.integers(-3000, 3000, size=(folds, geo.rows, geo.cols))
    want = [requantize(acc[f, j], bias[f % tiles], mult[f % tiles], shift[f % tiles], bool(relu))
            for f in range(folds) for j in range(geo.rows)]
    dut = ResultWriter(geo)
    stage = OutputStage(kind="mac", cols=geo.cols, acc_shape=dut.i_acc.payload.shape().elem_shape,
                        bits=geo.bits, positions=geo.positions, bias_bits=geo.bias_bits)
    written: dict[int, list[int]] = {}

    def around(m: Module) -> None:
        m.submodules.stage = stage
        wiring.connect(m, dut.o_acc, stage.i_acc)
        wiring.connect(m, stage.o_y, dut.i_y)
        m.d.comb += [stage.i_params.eq(dut.o_params), stage.i_relu.eq(relu)]

    async def bench(ctx):
        ctx.set(dut.i_desc, desc((1, 1), (1, 1), 4, 3, groups=2))
        ctx.set(dut.i_clear, 1)
        ctx.set(dut.i_idle, 1)
        await ctx.tick()
        ctx.set(dut.i_clear, 0)
        ctx.set(dut.i_idle, 0)
        rows, overruns = [row for fold in acc for row in fold], 0
        for cycle in range(len(rows) * 5):
            feed = cycle % 4 == 0 and cycle // 4 < len(rows)  # a row every fourth cycle
            if feed:
                ctx.set(dut.i_acc.payload, [int(v) for v in rows[cycle // 4]])
            ctx.set(dut.i_acc.valid, feed)
            _, _, ready, en, addr, data, overrun = await ctx.tick().sample(
                dut.i_acc.ready, dut.out_wr.en, dut.out_wr.addr, dut.out_wr.data, dut.o_overrun)
            assert ready
            overruns += overrun
            if en:
                written[addr] = [int(v) for v in data]
        assert overruns == 1 and ctx.get(dut.o_written) == folds * geo.rows

    simulate(dut, bench, [(dut.param_rd, geo.param_words, params)], around)
    assert written == {i: [int(v) for v in row] for i, row in enumerate(want[:9])}


def test_result_writer_psum() -> None:
    """Three K tiles of one output tile (3 folds of 2 rows, 2 output tiles) through one writer, a
    real psum buffer and OutputStage: the first writes its rows to the psum buffer, back to back
    (one row a cycle), the second adds and writes them, rows back to back and with idle cycles
    between them, the first from the second cycle after ``i_clear`` (the writer's psum register
    takes word 0 in the first, then the word after each arriving row's), the third adds them
    and requantizes the sums -- wider than the array's accumulators -- into the out buffer. The
    psum tiles write no out word; a seventh psum row is dropped and flagged. The psum buffer
    starts with stale sums (a layer before), which the first tile (no psum_add) must not add."""
    geo = geometry(out_words=9, psum_words=6)
    rng = np.random.default_rng(7)
    tiles, n = 2, 6
    top = (1 << (geo.acc_bits - 1)) - 1
    parts = rng.integers(top // 2, top, size=(3, n, geo.cols)) * rng.choice([-1, 1], size=(3, n, geo.cols))
    bias = rng.integers(-500, 500, size=(tiles, geo.cols))
    mult = rng.integers(1 << 14, 1 << 15, size=(tiles, geo.cols))
    shift = rng.integers(30, 34, size=(tiles, geo.cols))
    params = [[{"bias": int(b), "mult": int(m), "shift": int(s)} for b, m, s in zip(*p)]
              for p in zip(bias, mult, shift)]
    total = parts.sum(axis=0)
    assert np.abs(total).max() > top  # the sums need the psum width
    want = {i: [int(v) for v in requantize(total[i], bias[(i // 2) % tiles], mult[(i // 2) % tiles],
                                           shift[(i // 2) % tiles], False)] for i in range(n)}
    dut = ResultWriter(geo)
    stage = OutputStage(kind="mac", cols=geo.cols, acc_shape=dut.o_acc.payload.shape().elem_shape,
                        bits=geo.bits, positions=geo.positions, bias_bits=geo.bias_bits)
    stale = [[(top // 2 + 1000 * w + c) * (-1) ** c for c in range(geo.cols)] for w in range(geo.psum_words)]
    psum = Memory(shape=dut.psum_rd.signature.shape, depth=geo.psum_words, init=stale)

    def around(m: Module) -> None:
        m.submodules.stage, m.submodules.psum = stage, psum
        wiring.connect(m, dut.o_acc, stage.i_acc)
        wiring.connect(m, stage.o_y, dut.i_y)
        wiring.connect(m, dut.psum_rd, psum.read_port())
        wiring.connect(m, dut.psum_wr, psum.write_port())
        m.d.comb += stage.i_params.eq(dut.o_params)

    written: dict[int, list[int]] = {}

    async def bench(ctx):
        overruns = []
        for k, (add, write, pattern) in enumerate([(0, 1, [1]), (1, 1, [1, 1, 1, 0, 1, 0, 0]), (1, 0, [1, 0])]):
            ctx.set(dut.i_desc, {**desc((1, 1), (1, 1), 4, 4), "psum_add": add, "psum_write": write})
            ctx.set(dut.i_clear, 1)
            ctx.set(dut.i_idle, 1)
            await ctx.tick()
            ctx.set(dut.i_clear, 0)
            ctx.set(dut.i_idle, 0)
            await ctx.tick()  # the parameter word's read (in the top, the loads lie between)
            rows = [*parts[k], parts[k][0]] if k == 0 else list(parts[k])  # a seventh row
            overrun = 0
            feeds = [i for i, f in enumerate(itertools.islice(itertools.cycle(pattern), 8 * len(rows))) if f]
            for cycle in range(feeds[len(rows) - 1] + 8):
                feed = cycle in feeds[:len(rows)]
                if feed:
                    ctx.set(dut.i_acc.payload, [int(v) for v in rows[feeds.index(cycle)]])
                ctx.set(dut.i_acc.valid, feed)
                _, _, en, addr, data, flag = await ctx.tick().sample(
                    dut.out_wr.en, dut.out_wr.addr, dut.out_wr.data, dut.o_overrun)
                overrun += flag
                if en:
                    assert not write, "a psum tile wrote the out buffer"
                    written[addr] = [int(v) for v in data]
            overruns.append(overrun)
            assert ctx.get(dut.o_written) == len(rows)
        assert overruns == [1, 0, 0]

    simulate(dut, bench, [(dut.param_rd, geo.param_words, params)], around)
    assert written == want


def test_result_writer_residual() -> None:
    """A residual tile through the writer and a real OutputStage into out bank 1 (holding an
    earlier tile's words; bank 0 holds others): its shortcut is written into the bank after
    ``i_clear`` (as RESID's loads follow the take), word ``i`` as late as the writer allows, in
    the cycle row ``i`` enters the output stage (three cycles before it leaves); 7 rows, back
    to back and with idle cycles. Each out word is the row's requantization plus the word it
    overwrites, clamped to the 8-bit range (``models.intref``); with ``residual`` off the
    residual is 0."""
    rng = np.random.default_rng(3)
    geo, n, lo, hi = geometry(out_words=8, psum_words=0), 7, -128, 127
    bias = rng.integers(-500, 500, size=geo.cols)
    mult = rng.integers(20, 70, size=geo.cols)
    shift = rng.integers(12, 14, size=geo.cols)
    params = [[{"bias": int(b), "mult": int(m), "shift": int(s)} for b, m, s in zip(bias, mult, shift)]]
    acc = rng.integers(-3000, 3000, size=(n, geo.cols))
    shortcut = rng.integers(lo, hi + 1, size=(n, geo.cols))
    shortcut[0] = [hi, lo]  # a clamp at each end (with most rows' own values)
    stale = [[lo, hi]] * geo.out_words  # the earlier tile's words
    feeds = [0, 1, 2, 4, 5, 8, 9]  # the cycles the rows arrive (after i_clear's)
    q = ((acc + bias) * mult + (1 << (shift - 1))) >> shift  # the rows' requantization
    assert np.abs(q).max() < 64 and len({tuple(r) for r in shortcut}) == n  # every residual shows

    for residual in (1, 0):
        dut = ResultWriter(geo)
        stage = OutputStage(kind="mac", cols=geo.cols, acc_shape=dut.o_acc.payload.shape().elem_shape,
                            bits=geo.bits, positions=geo.positions, bias_bits=geo.bias_bits)
        out = Memory(shape=dut.out_wr.signature.shape, depth=geo.out_words, init=stale)
        other = Memory(shape=dut.out_wr.signature.shape, depth=geo.out_words, init=shortcut[::-1].tolist())
        load = out.write_port()  # the run side's loader (RESID)
        written: dict[int, list[int]] = {}

        def around(m: Module, dut=dut, stage=stage, out=out, other=other) -> None:
            m.submodules.stage, m.submodules.out, m.submodules.other = stage, out, other
            wiring.connect(m, dut.o_acc, stage.i_acc)
            wiring.connect(m, stage.o_y, dut.i_y)
            wiring.connect(m, dut.out_wr, out.write_port())
            wiring.connect(m, dut.res_rd1, out.read_port())  # bank 1; bank 0 reads a stale tile
            wiring.connect(m, dut.res_rd0, other.read_port())
            m.d.comb += [stage.i_params.eq(dut.o_params), stage.i_res.eq(dut.o_res), dut.i_res_bank.eq(1)]

        async def bench(ctx, dut=dut, load=load, written=written, residual=residual):
            ctx.set(dut.i_desc, {**desc((1, 1), (1, 1), 4, 2), "residual": residual})
            ctx.set(dut.i_clear, 1)
            ctx.set(dut.i_idle, 1)
            await ctx.tick()
            ctx.set(dut.i_clear, 0)
            ctx.set(dut.i_idle, 0)
            for cycle in range(feeds[-1] + 8):
                feed = cycle in feeds
                ctx.set(load.en, feed)  # shortcut word i with row i
                ctx.set(dut.i_acc.valid, feed)
                if feed:
                    i = feeds.index(cycle)
                    ctx.set(load.addr, i)
                    ctx.set(load.data, [int(v) for v in shortcut[i]])
                    ctx.set(dut.i_acc.payload, [int(v) for v in acc[i]])
                _, _, en, addr, data = await ctx.tick().sample(dut.out_wr.en, dut.out_wr.addr, dut.out_wr.data)
                if en:
                    written[addr] = [int(v) for v in data]

        simulate(dut, bench, [(dut.param_rd, geo.param_words, params)], around)
        assert written == {i: [int(v) for v in np.clip(q[i] + residual * shortcut[i], lo, hi)] for i in range(n)}


def test_store_stream() -> None:
    """Two stores of the store engine under a stalling consumer: the first 7 words of bank 1 in
    order, the engine busy from the start to the last word, ``o_done`` and ``o_free`` with the
    last transfer only; a second store of bank 0 started in that very cycle (4 words) follows;
    nothing valid once it ends, and ``o_bank`` as given."""
    geo = geometry()
    dut = StoreStream(geo)
    banks = [[[i, -i] for i in range(10)], [[i + 20, 3 - i] for i in range(10)]]

    async def bench(ctx):
        ctx.set(dut.i_words, 7)
        ctx.set(dut.i_bank, 1)
        ctx.set(dut.i_start, 1)
        await ctx.tick()
        ctx.set(dut.i_start, 0)
        got, done_at, second = [], [], False
        for ready in itertools.cycle([0, 1, 1, 0, 1]):
            ctx.set(dut.o_results.ready, ready)
            busy, free, done = ctx.get(dut.o_busy), ctx.get(dut.o_free), ctx.get(dut.o_done)
            assert busy and free == done and ctx.get(dut.o_bank) == (0 if second else 1)
            if done and not second:  # the first store ends: start the second in this cycle
                ctx.set(dut.i_words, 4)
                ctx.set(dut.i_bank, 0)
                ctx.set(dut.i_start, 1)
                second = True
            _, _, valid, data = await ctx.tick().sample(dut.o_results.valid, dut.o_results.payload)
            ctx.set(dut.i_start, 0)
            if valid and ready:
                got.append([int(v) for v in data])
            if done:
                done_at.append(len(got))
                if len(done_at) == 2:
                    break
        assert got == banks[1][:7] + banks[0][:4] and done_at == [7, 11]
        for _ in range(3):
            _, _, valid, busy = await ctx.tick().sample(dut.o_results.valid, dut.o_busy)
            assert not valid and not busy

    simulate(dut, bench, [(dut.out_rd0, geo.out_words, banks[0]), (dut.out_rd1, geo.out_words, banks[1])])


@pytest.mark.parametrize("part", [LayerGeometry, PixelWalker, OperandFetch, Loader, ResultWriter,
                                  StoreStream])
def test_parts_wrong(part: type) -> None:
    with pytest.raises(TypeError, match=r"^`geo` must be a TopGeometry, not Accelerator\("):
        part(accelerator("mac"))
