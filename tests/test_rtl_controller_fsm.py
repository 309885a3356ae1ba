# amaranth: UnusedElaboratable=no
"""The top's LayerController (rtl.controller) on Amaranth's simulator, its parts replaced by naive
models in the testbench (a loader firing with idle cycles, a walker counting pixels, a stalling
fetch, a writer that finishes late, a store engine busy for a while after each start): the phase
order, the hand-over of each layer's out bank to the store engine, the beats each load phase takes
against G * NT, G * NT * KS and ceil(G * H * W * CW / act_beat), the loop-nest position in WEIGHTS and RUN against
nested Python loops, FLUSH waiting for the written rows, the sticky error flag, and the return to
DESC for the next layer."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import pytest
from amaranth.sim import Simulator

from hwsim.rtl_plan import TopGeometry
from rtl.buffers import LoadTarget
from rtl.controller import LayerController
from test_rtl_top_parts import desc, geometry

#: Amaranth-simulator tier (see pyproject.toml markers).
pytestmark = pytest.mark.amaranth

LOADS = {LoadTarget.PARAMS: "PARAMS", LoadTarget.WEIGHTS: "WEIGHTS", LoadTarget.ACTS: "ACTS",
         LoadTarget.RESID: "RESID"}
FLUSH_HOLD = 3  # cycles the written count stays one row short in FLUSH
STORE_CYCLES = 3  # the store engine is busy three cycles after a start, free in the last
MAX_CYCLES = 5000  # a layer of these tests takes < 2000


@dataclass
class Trace:
    """What one layer did, cycle by cycle, as the testbench saw it."""

    phases: list[list[Any]] = field(default_factory=list)  # [phase, cycles], merged runs
    beats: dict[str, int] = field(default_factory=dict)  # load beats per phase
    restarts: list[str] = field(default_factory=list)  # phase of each o_load_restart
    handovers: list[tuple[int, int, int]] = field(default_factory=list)  # (FLUSH cycle, words, bank)
    weight_pos: list[tuple] = field(default_factory=list)  # o_pos at each weight beat
    run_pos: list[tuple] = field(default_factory=list)  # o_pos at each issued step
    store_words: int = -1
    errors: list[tuple[str, int]] = field(default_factory=list)  # (phase, o_error) per cycle


def nest(d: dict[str, int], lanes: int, cols: int) -> list[tuple]:
    """The fetch position of every step of a row tile, from nested loops over (group, output
    tile, ky, kx, channel word): (ky, kx, line_end, fold_end, last_tile, last_group)."""
    kh, kw, groups = d["kernel_h"], d["kernel_w"], d["groups"]
    nt, cw = math.ceil(d["out_ch"] / cols), math.ceil(d["in_ch"] / lanes)
    return [(ky, kx, int(kx == kw - 1 and c == cw - 1), int((ky, kx, c) == (kh - 1, kw - 1, cw - 1)),
             int(t == nt - 1), int(g == groups - 1))
            for g in range(groups) for t in range(nt)
            for ky in range(kh) for kx in range(kw) for c in range(cw)]


def phase_of(ctx: Any, dut: LayerController) -> str:
    """The FSM state as the outputs show it (FLUSH drives none of them)."""
    shown = {"DESC": ctx.get(dut.i_desc.ready), "WALK": ctx.get(dut.o_walk_step),
             "RUN": ctx.get(dut.o_fetch_run)}
    target = ctx.get(dut.o_load_target)
    shown |= {name: target == t for t, name in LOADS.items()}
    on = [name for name, v in shown.items() if v]
    assert len(on) <= 1, on
    return on[0] if on else "FLUSH"


class StoreEngine:
    """The store engine's model: busy ``cycles`` cycles after each start, free in the last."""

    def __init__(self, cycles: int = STORE_CYCLES) -> None:
        self.cycles, self.left = cycles, 0

    def free(self) -> bool:
        return self.left <= 1

    def tick(self, start: bool) -> None:
        self.left = self.cycles if start else max(0, self.left - 1)


async def run_layer(ctx: Any, dut: LayerController, d: dict[str, int],
                    overrun: str | None = None, store: StoreEngine | None = None) -> Trace:
    """Feed ``d`` and play the parts until the controller is back in DESC, the store engine
    (``store``, one per test) running beside; ``i_too_long`` is
    ``kh * kw * CW > max_steps``, ``i_act_words`` ``G * H * W * CW``; ``overrun`` pulses ``i_load_overrun`` with the first parameter
    beat (``"load"``) or ``i_write_overrun`` with the first issued step (``"write"``)."""
    geo, trace = dut.geo, Trace()
    store = store if store is not None else StoreEngine()
    steps = d["kernel_h"] * d["kernel_w"] * math.ceil(d["in_ch"] / geo.lanes)
    pixels = d["out_h"] * d["out_w"]
    loaded, row = 0, 0  # the walker: pixels loaded since the start, row of the next step
    beat_valid, issue_ready = itertools.cycle([1, 0, 1, 1, 0]), itertools.cycle([1, 1, 0, 1, 0, 0])
    ctx.set(dut.i_desc.payload, d)
    ctx.set(dut.i_desc.valid, 1)
    ctx.set(dut.i_too_long, steps > geo.max_steps)
    ctx.set(dut.i_act_words, d["groups"] * d["in_h"] * d["in_w"] * math.ceil(d["in_ch"] / geo.lanes))
    ctx.set(dut.i_pixels, d["out_h"] * d["out_w"])
    for cycle in range(MAX_CYCLES):
        phase = phase_of(ctx, dut)
        if phase == "DESC" and cycle:
            return trace
        if trace.phases and trace.phases[-1][0] == phase:
            trace.phases[-1][1] += 1
        else:
            trace.phases.append([phase, 1])
        cycles = trace.phases[-1][1]
        trace.errors.append((phase, ctx.get(dut.o_error)))
        fire = int(phase in LOADS.values() and next(beat_valid))
        issue = int(phase == "RUN" and next(issue_ready))
        ctx.set(dut.i_load_fire, fire)
        ctx.set(dut.i_load_overrun, int(overrun == "load" and fire and not trace.beats))
        ctx.set(dut.i_fetch_issue, issue)
        ctx.set(dut.i_write_overrun, int(overrun == "write" and issue and not trace.run_pos))
        ctx.set(dut.i_walk_last, row == geo.rows - 1)
        ctx.set(dut.i_walk_more, loaded < pixels)
        ctx.set(dut.i_store_free, free := store.free())
        handover = False
        if phase == "FLUSH":
            trace.store_words = total = ctx.get(dut.o_store_words)
            ctx.set(dut.i_written, total - int(cycles <= FLUSH_HOLD))
            handover = cycles > FLUSH_HOLD and not d.get("psum_write") and free
            if handover:
                trace.handovers.append((cycles, total, ctx.get(dut.o_bank)))
        assert ctx.get(dut.o_store_start) == handover
        store.tick(handover)
        if fire:
            trace.beats[phase] = trace.beats.get(phase, 0) + 1
        pos = ctx.get(dut.o_pos)
        pos = (pos.ky, pos.kx, pos.line_end, pos.fold_end, pos.last_tile, pos.last_group)
        if phase == "WEIGHTS" and fire:
            trace.weight_pos.append(pos)
        if issue:
            trace.run_pos.append(pos)
        if ctx.get(dut.o_load_restart):
            trace.restarts.append(phase)
        assert ctx.get(dut.o_write_clear) == (phase == "DESC")
        start, step = ctx.get(dut.o_walk_start), ctx.get(dut.o_walk_step)
        await ctx.tick()
        ctx.set(dut.i_desc.valid, 0)
        if phase == "DESC":
            got = ctx.get(dut.o_desc)
            assert {name: getattr(got, name) for name in d} == d
        if start:
            loaded, row = 0, 0
        elif step:
            loaded, row = loaded + 1, (row + 1) % geo.rows
    raise AssertionError(f"not back in DESC after {MAX_CYCLES} cycles: {trace.phases}")


def simulate(geo: TopGeometry, bench: Any) -> None:
    """Run the async ``bench(ctx, dut)`` on a LayerController of ``geo``."""
    dut = LayerController(geo)

    async def testbench(ctx: Any) -> None:
        await bench(ctx, dut)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()


CASES = {
    "conv-groups": ("mac", 4, 2, desc((4, 3), (5, 3), 3, 3, groups=2, kernel=2, pad=1) | {"kernel_w": 3}),
    "xnor-lanes": ("xnor", 2, 2, desc((3, 3), (3, 3), 6, 2, kernel=3, pad=1)),
    "linear": ("mac", 2, 2, desc((1, 1), (1, 1), 5, 5)),
    # 9 pixels in 3 row tiles of 4, 2 groups x 2 output tiles: 3 * 2 * 2 * 4 = 48 residual words
    "residual": ("mac", 4, 2, desc((3, 3), (3, 3), 4, 6, groups=2, kernel=3, pad=1) | {"residual": 1}),
}


@pytest.mark.parametrize("case", CASES)
def test_layer_sequence(case: str) -> None:
    """Two layers back to back (the second repeats the first after a 1x1 layer in between): the
    phases in order with WALK ``rows`` cycles per row tile, each load phase's beats, the restarts,
    the loop-nest position of every weight beat and issued step against nested loops, FLUSH
    until the written count reaches folds * rows, then the bank (alternating) and the words
    handed to the store engine and the next descriptor at once, and no error."""
    kind, rows, cols, d = CASES[case]
    geo = geometry(kind, rows, cols)
    lanes = geo.lanes
    small = desc((1, 1), (1, 1), 1, 1)

    def expect(d: dict[str, int]) -> dict[str, Any]:
        groups, nt = d["groups"], math.ceil(d["out_ch"] / cols)
        cw = math.ceil(d["in_ch"] / lanes)
        ks = d["kernel_h"] * d["kernel_w"] * cw
        tiles = math.ceil(d["out_h"] * d["out_w"] / rows)
        steps = nest(d, lanes, cols)
        assert len(steps) == groups * nt * ks
        resid = {"RESID": tiles * groups * nt * rows} if d.get("residual") else {}
        return {"beats": {"PARAMS": groups * nt, "WEIGHTS": groups * nt * ks,
                          "ACTS": math.ceil(groups * d["in_h"] * d["in_w"] * cw / geo.act_beat), **resid},
                "order": ["DESC", "PARAMS", "WEIGHTS", "ACTS", *resid] + ["WALK", "RUN"] * tiles
                + ["FLUSH"],
                "walk": [rows] * tiles, "weight_pos": steps, "run_pos": steps * tiles,
                "store_words": tiles * groups * nt * rows}

    async def bench(ctx, dut):
        store = StoreEngine()
        for index, layer in enumerate((d, small, d)):
            trace = await run_layer(ctx, dut, layer, store=store)
            want = expect(layer)
            assert [p for p, _ in trace.phases] == want["order"]
            assert [n for p, n in trace.phases if p == "WALK"] == want["walk"]
            assert dict(trace.phases)["FLUSH"] == FLUSH_HOLD + 1
            assert trace.handovers == [(FLUSH_HOLD + 1, want["store_words"], index % 2)]
            assert trace.beats == want["beats"]
            assert trace.restarts == ["DESC", "PARAMS", "WEIGHTS", "ACTS"]  # RESID starts at word 0
            assert trace.weight_pos == want["weight_pos"]
            assert trace.run_pos == want["run_pos"]
            assert trace.store_words == want["store_words"]
            assert not any(e for _, e in trace.errors)

    simulate(geo, bench)


def test_k_tiles_psum_write_skips_store() -> None:
    """Three K tiles of one layer back to back: the two with ``psum_write`` go from FLUSH (held
    until the written count reaches folds * rows, as always) straight back to DESC, handing
    nothing to the store engine; the last (``psum_add`` only) hands its bank over. The loads and
    the run are those of any layer."""
    geo = geometry("mac", 2, 2)
    d = desc((3, 3), (3, 3), 3, 3, kernel=3, pad=1)
    flags = [{"psum_add": 0, "psum_write": 1}, {"psum_add": 1, "psum_write": 1},
             {"psum_add": 1, "psum_write": 0}]

    async def bench(ctx, dut):
        store = StoreEngine()
        for k in flags:
            trace = await run_layer(ctx, dut, d | k, store=store)
            assert [p for p, _ in trace.phases] == ["DESC", "PARAMS", "WEIGHTS", "ACTS"] + ["WALK", "RUN"] * 5 + ["FLUSH"]
            assert dict(trace.phases)["FLUSH"] == FLUSH_HOLD + 1
            assert trace.store_words == 5 * 2 * 2  # 5 row tiles x 2 output tiles x 2 rows
            # only the last hands its bank (0: the K tiles before it kept it) to the store engine
            assert trace.handovers == ([] if k["psum_write"] else [(FLUSH_HOLD + 1, 20, 0)])
            assert not any(e for _, e in trace.errors)

    simulate(geo, bench)


def test_flush_waits_for_the_store_engine() -> None:
    """A store engine still busy with the last layer's bank holds FLUSH: the hand-over comes in
    the engine's last cycle (its last word leaves), not before."""
    geo = geometry("mac", 2, 2)
    d = desc((1, 1), (1, 1), 1, 1)  # a short layer: its FLUSH comes long before 200 cycles

    async def bench(ctx, dut):
        store = StoreEngine(200)
        first = await run_layer(ctx, dut, d, store=store)
        second = await run_layer(ctx, dut, d, store=store)
        assert first.handovers == [(FLUSH_HOLD + 1, 2, 0)]
        since = sum(n for _, n in second.phases) - dict(second.phases)["FLUSH"]  # cycles before FLUSH
        # the engine started the cycle after the first hand-over and is free in its 200th cycle
        assert second.handovers == [(200 - since, 2, 1)] and 200 - since > FLUSH_HOLD + 1

    simulate(geo, bench)


@pytest.mark.parametrize("cause", ["too_long", "load", "write"])
def test_error_sticky(cause: str) -> None:
    """A fold longer than max_steps (seen with ACTS's last beat), a load overrun (the first
    parameter beat) or a result overrun (the first issued step) raises ``o_error`` from the next
    cycle to the end of the layer; the next descriptor clears it."""
    geo = geometry("mac", 2, 2, max_steps=8 if cause == "too_long" else 9)
    d = desc((3, 3), (1, 1), 1, 4, kernel=3)  # 9 steps per fold, 2 output tiles
    raised_in = {"too_long": "WALK", "load": "PARAMS", "write": "RUN"}[cause]

    async def bench(ctx, dut):
        trace = await run_layer(ctx, dut, d, overrun=None if cause == "too_long" else cause)
        first = next(i for i, (_, e) in enumerate(trace.errors) if e)
        assert trace.errors[first][0] == raised_in
        assert all(e for _, e in trace.errors[first:])
        if cause == "load":
            assert trace.errors[first - 1] == ("PARAMS", 0)  # one beat before
        clean = await run_layer(ctx, dut, desc((1, 1), (1, 1), 1, 1))
        assert clean.errors[0] == ("DESC", 1)  # until the descriptor is taken
        assert not any(e for _, e in clean.errors[1:])

    simulate(geo, bench)


def test_controller_wrong() -> None:
    with pytest.raises(TypeError, match=r"^`geo` must be a TopGeometry, not 3$"):
        LayerController(3)
