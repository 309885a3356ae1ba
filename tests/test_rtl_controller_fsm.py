# amaranth: UnusedElaboratable=no
"""The top's LayerController (rtl.controller) on Amaranth's simulator, its parts replaced by naive
models in the testbench (a loader firing with idle cycles, the geometry's register stages, a
walker counting pixels, a stalling fetch, a writer that finishes late, a store engine busy for a
while after each start), fed a stream of tiles: the phase order of the load side and of the run
side, the beats each load phase takes against G * NT, G * NT * KS and ceil(G * H * W * CW /
act_beat) and RESID against folds * rows, the loop-nest position of each issued step against
nested Python loops, the restarts, FLUSH waiting for the written rows and for the store engine,
the out bank handed to the store engine, K tiles that hand nothing over, the sticky error flag,
and the overlap of a tile's loads with the run of the tile before it, cycle by cycle."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pytest
from amaranth.sim import Simulator

from contract import GEOMETRY_CYCLES
from hwsim.rtl_plan import DESCRIPTOR_FIELDS, DESCRIPTOR_FLAGS, DESCRIPTOR_SIZES, TopGeometry
from rtl.buffers import LoadTarget
from rtl.controller import LayerController
from test_rtl_top_parts import desc, geometry

#: Amaranth-simulator tier (see pyproject.toml markers).
pytestmark = pytest.mark.amaranth

LOADS = {LoadTarget.PARAMS: "PARAMS", LoadTarget.WEIGHTS: "WEIGHTS", LoadTarget.ACTS: "ACTS"}
FIELDS = DESCRIPTOR_FIELDS + DESCRIPTOR_FLAGS + DESCRIPTOR_SIZES
LOADER, FETCH, RESIDS = (1, 0, 1, 1, 0), (1, 1, 0, 1, 0, 0), (1, 1, 0)  # beat / issue patterns
ALWAYS = (1,)
GEO_STAGES = 2  # act_words: valid two cycles after the load descriptor register (too_long: GEOMETRY_CYCLES)
WRITE_LAG = 4  # the writer's count reaches a fold's rows this many cycles after its last step
STORE_CYCLES = 3  # the store engine is busy three cycles after a start, free in the last
MAX_CYCLES = 5000


def full(d: dict[str, int]) -> dict[str, int]:
    """``d`` with every descriptor field (the flags and sizes it lacks: 0)."""
    return {name: d.get(name, 0) for name in FIELDS}


def sizes(geo: TopGeometry, d: dict[str, int]) -> dict[str, int]:
    """A tile's counts from its descriptor: steps per fold (KS), folds per row tile (G * NT), row
    tiles, activation words and beats, out words (folds * rows), too_long."""
    cw = math.ceil(d["in_ch"] / geo.lanes)
    ks = d["kernel_h"] * d["kernel_w"] * cw
    folds = d["groups"] * math.ceil(d["out_ch"] / geo.cols)
    row_tiles = math.ceil(d["out_h"] * d["out_w"] / geo.rows)
    act_words = d["groups"] * d["in_h"] * d["in_w"] * cw
    return {"ks": ks, "folds": folds, "row_tiles": row_tiles, "pixels": d["out_h"] * d["out_w"],
            "act_words": act_words, "act_beats": math.ceil(act_words / geo.act_beat),
            "words": row_tiles * folds * geo.rows, "too_long": int(ks > geo.max_steps)}


def nest(d: dict[str, int], lanes: int, cols: int) -> list[tuple]:
    """The fetch position of every step of a row tile, from nested loops over (group, output
    tile, ky, kx, channel word): (ky, kx, line_end, fold_end, last_tile, last_group)."""
    kh, kw, groups = d["kernel_h"], d["kernel_w"], d["groups"]
    nt, cw = math.ceil(d["out_ch"] / cols), math.ceil(d["in_ch"] / lanes)
    return [(ky, kx, int(kx == kw - 1 and c == cw - 1), int((ky, kx, c) == (kh - 1, kw - 1, cw - 1)),
             int(t == nt - 1), int(g == groups - 1))
            for g in range(groups) for t in range(nt)
            for ky in range(kh) for kx in range(kw) for c in range(cw)]


@dataclass
class Cycle:
    """One cycle as the testbench saw it: the inputs it drove, the outputs once settled."""

    load: str  # DESC, PARAMS, WEIGHTS, ACTS, HAND (i_desc.ready, o_load_target, else HAND)
    run: str  # IDLE, RESID, WALK, RUN, WAIT (o_resid, o_walk_direct, o_fetch_run, o_walk_step or
    # o_walk_swap alone), FLUSH (tracked)
    load_tile: int | None  # the tile the load side holds (DESC: the one accepted, if any)
    run_tile: int | None  # the tile the run side runs (None when IDLE)
    accept: bool
    fire: bool  # a load beat
    resid_fire: bool
    issue: bool
    step: bool  # a walker step (o_walk_step)
    swap: bool  # o_walk_swap
    overrun: bool  # the strobe of ``play``'s ``overrun`` was driven
    flush_end: bool  # FLUSH's end condition held: all rows written, store engine free or psum_write
    take: bool
    restart: bool
    store_start: bool
    pos: tuple
    store_words: int
    bank: int
    in_bank: int
    error: int
    run_error: int
    desc: dict[str, int]


class StoreEngine:
    """The store engine's model: busy ``cycles`` cycles after each start, free in the last."""

    def __init__(self, cycles: int) -> None:
        self.cycles, self.left = cycles, 0

    def free(self) -> bool:
        return self.left <= 1

    def tick(self, start: bool) -> None:
        self.left = self.cycles if start else max(0, self.left - 1)


def play(geo: TopGeometry, tiles: list[dict[str, int]], *, loads: Iterable[int] = LOADER,
         issues: Iterable[int] = FETCH, resids: Iterable[int] = RESIDS,
         store_cycles: int = STORE_CYCLES, overrun: tuple[str, int] | None = None,
         cycles: int | None = None, tail: int = 3) -> list[Cycle]:
    """Feed ``tiles`` as one descriptor stream (each valid, waiting for ``ready``, from the
    cycle after the one before is accepted) to a LayerController of ``geo`` and play its parts
    for ``cycles`` cycles, or until every tile is taken and the run side has been idle ``tail``
    cycles; return the trace.

    The parts: a loader and a residual loader firing by the patterns ``loads`` and ``resids``,
    a fetch issuing by ``issues``; the load geometry's ``act_words`` from :data:`GEO_STAGES`
    and its ``too_long`` from ``GEOMETRY_CYCLES`` cycles after the descriptor register is
    written (the tile before's until then); ``i_pixels`` the run tile's from the cycle after the take; a walker counting pixels
    and rows since the take, whose second set is full after a row tile's steps outside WALK
    until the swap; a writer whose count reaches a fold's rows :data:`WRITE_LAG` cycles
    after the fold's last step; a :class:`StoreEngine` of ``store_cycles``. ``overrun``
    ``(kind, tile)`` pulses ``i_load_overrun`` with that tile's first parameter beat (``load``)
    or last activation beat (``load_last``), ``i_write_overrun`` with its first issued step
    (``write``) or ``i_resid_overrun`` with its first residual beat (``resid``). Checked every
    cycle: ``o_store_start`` exactly when FLUSH ends without ``psum_write``, ``o_take`` only
    while the run side is idle."""
    tiles = [full(t) for t in tiles]
    info = [sizes(geo, t) for t in tiles]
    dut = LayerController(geo)
    trace: list[Cycle] = []

    async def bench(ctx: Any) -> None:
        load_it, issue_it, resid_it = (itertools.cycle(p) for p in (loads, issues, resids))
        store = StoreEngine(store_cycles)
        offered, taken = 0, 0  # descriptors accepted, tiles taken
        geo_at: list[int] = []  # per accepted tile: first cycle its act_words, too_long are valid
        walked, row, ahead = 0, 0, False  # the walker: pixels walked since the take, row of the
        # next step, its second set full
        issued: list[int] = []  # cycles of the steps issued since the take
        beats: dict[tuple[int, str], int] = {}  # (tile, phase): load beats so far
        resid_beats = 0
        run, ended, idle_for = "IDLE", False, 0
        for n in range(cycles if cycles is not None else MAX_CYCLES):
            if cycles is None and taken == len(tiles) and idle_for >= tail:
                return
            # the walker's flags first: WAIT shows only in the walker strobes that follow them
            cur = info[taken - 1] if taken else None
            ctx.set(dut.i_walk_pending, not ahead and (bool(cur) and walked < cur["pixels"] or row != 0))
            ctx.set(dut.i_walk_full, ahead)
            # the states, from the outputs that do not depend on this cycle's other inputs
            ready, target = ctx.get(dut.i_desc.ready), ctx.get(dut.o_load_target)
            assert not (ready and target != LoadTarget.NONE), n
            load = "DESC" if ready else LOADS.get(target, "HAND")
            shown = [name for name, sig in (("RESID", dut.o_resid), ("WALK", dut.o_walk_direct),
                                            ("RUN", dut.o_fetch_run)) if ctx.get(sig)]
            assert len(shown) <= 1, (n, shown)
            step, swap = bool(ctx.get(dut.o_walk_step)), bool(ctx.get(dut.o_walk_swap))
            if not shown and (step or swap):
                shown = ["WAIT"]
            if shown:
                run = shown[0]
            else:  # FLUSH and IDLE drive none: FLUSH follows RUN until its end condition held
                run = "FLUSH" if run == "RUN" or (run == "FLUSH" and not ended) else "IDLE"
            idle_for = idle_for + 1 if run == "IDLE" else 0
            valid = offered < len(tiles)  # the next descriptor waits for ready
            accept = load == "DESC" and valid
            load_tile = (offered if accept else None) if load == "DESC" else offered - 1
            run_tile = taken - 1 if run != "IDLE" else None
            cur = info[taken - 1] if taken else None
            # the parts' strobes
            fire = load in LOADS.values() and bool(next(load_it))
            resid_fire = run == "RESID" and bool(next(resid_it))
            issue = run == "RUN" and bool(next(issue_it))
            phase_beats = beats.get((load_tile, load), 0)
            last_act = fire and load == "ACTS" and phase_beats + 1 == info[load_tile]["act_beats"]
            kind, bad = overrun or (None, None)
            load_over = load_tile == bad and fire and (
                kind == "load" and load == "PARAMS" and phase_beats == 0 or kind == "load_last" and last_act)
            write_over = kind == "write" and run_tile == bad and issue and not issued
            resid_over = kind == "resid" and run_tile == bad and resid_fire and not resid_beats
            written = geo.rows * (sum(c <= n - WRITE_LAG for c in issued) // cur["ks"]) if cur else 0
            psum = bool(taken and tiles[taken - 1]["psum_write"])
            ended = run == "FLUSH" and written == cur["words"] and (psum or store.free())
            shown_geo = sum(at <= n for at in geo_at) - 1  # the tile whose sizes the geometry shows
            ctx.set(dut.i_desc.valid, valid)
            ctx.set(dut.i_desc.payload, tiles[offered] if valid else full({}))
            act_words = info[shown_geo]["act_words"] if shown_geo >= 0 else 0
            ctx.set(dut.i_act_words, act_words)
            ctx.set(dut.i_act_one_beat, act_words <= geo.act_beat)
            shown_late = sum(at - GEO_STAGES + GEOMETRY_CYCLES <= n for at in geo_at) - 1  # too_long's tile
            ctx.set(dut.i_too_long, info[shown_late]["too_long"] if shown_late >= 0 else 0)
            ctx.set(dut.i_pixels, cur["pixels"] if cur else 0)
            ctx.set(dut.i_load_fire, fire)
            ctx.set(dut.i_load_overrun, load_over)
            ctx.set(dut.i_resid_fire, resid_fire)
            ctx.set(dut.i_resid_overrun, resid_over)
            ctx.set(dut.i_fetch_issue, issue)
            ctx.set(dut.i_write_overrun, write_over)
            ctx.set(dut.i_walk_last, row == geo.rows - 1)
            ctx.set(dut.i_store_free, store.free())
            # the writer's count at the next edge unless a take clears it: the formula one cycle
            # on (its issues are all past: WRITE_LAG > 1)
            later = geo.rows * (sum(c <= n + 1 - WRITE_LAG for c in issued) // cur["ks"]) if cur else 0
            ctx.set(dut.i_written_next, later)
            pos, got = ctx.get(dut.o_pos), ctx.get(dut.o_desc)
            step, swap = bool(ctx.get(dut.o_walk_step)), bool(ctx.get(dut.o_walk_swap))  # RUN's: with the issue
            c = Cycle(load=load, run=run, load_tile=load_tile, run_tile=run_tile, accept=accept,
                      fire=fire, resid_fire=resid_fire, issue=issue, step=step, swap=swap,
                      overrun=load_over or write_over or resid_over, flush_end=ended,
                      take=bool(ctx.get(dut.o_take)), restart=bool(ctx.get(dut.o_load_restart)),
                      store_start=bool(ctx.get(dut.o_store_start)),
                      pos=(pos.ky, pos.kx, pos.line_end, pos.fold_end, pos.last_tile, pos.last_group),
                      store_words=ctx.get(dut.o_store_words), bank=ctx.get(dut.o_bank),
                      in_bank=ctx.get(dut.o_in_bank), error=ctx.get(dut.o_error),
                      run_error=ctx.get(dut.o_run_error), desc={f: getattr(got, f) for f in FIELDS})
            trace.append(c)
            assert c.store_start == (ended and not psum), (n, c)
            assert not c.take or run == "IDLE", (n, c)
            await ctx.tick()
            store.tick(c.store_start)
            if fire:
                beats[(load_tile, load)] = phase_beats + 1
            resid_beats += resid_fire
            if accept:
                geo_at.append(n + 1 + GEO_STAGES)
                offered += 1
            if c.take:
                taken, walked, row, issued, resid_beats, idle_for = taken + 1, 0, 0, [], 0, 0
                ahead = False
            elif step:
                ahead = ahead or (run != "WALK" and row == geo.rows - 1)
                walked, row = walked + 1, (row + 1) % geo.rows
            elif swap:
                ahead = False
            if issue:
                issued.append(n)
        assert cycles is not None, f"not done after {MAX_CYCLES} cycles"

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return trace


def runs(states: Iterable[str]) -> list[tuple[str, int]]:
    """Consecutive equal states merged: (state, cycles)."""
    return [(s, len(list(group))) for s, group in itertools.groupby(states)]


def cycles_of(trace: list[Cycle], what: str) -> list[int]:
    """The cycles in which the flag ``what`` (accept, take, store_start, ...) was set."""
    return [n for n, c in enumerate(trace) if getattr(c, what)]


def check_run_phases(ran: list[Cycle], rows: int, row_tiles: int, resid: bool) -> None:
    """One tile's run side: RESID (a residual tile), WALK for ``rows`` cycles (the first row tile's
    pixels), then RUN -- WAIT only after a row tile's last step, until the next row tile's walk
    is complete -- and FLUSH of :data:`WRITE_LAG` cycles; ``(row_tiles - 1) * rows`` walker steps
    outside WALK and ``row_tiles - 1`` swaps, each in a row tile's last RUN cycle or WAIT's last."""
    got = runs(c.run for c in ran)
    head = [("RESID", None)] if resid else []
    assert [s for s, _ in got[:len(head) + 1]] == [s for s, _ in head] + ["WALK"]
    assert got[len(head)] == ("WALK", rows) and got[-1] == ("FLUSH", WRITE_LAG)
    middle = [s for s, _ in got[len(head) + 1:-1]]
    assert middle[0] == "RUN" and set(middle) <= {"RUN", "WAIT"}
    assert all(a != b for a, b in zip(middle, middle[1:]))  # merged runs alternate
    assert sum(c.step for c in ran if c.run != "WALK") == (row_tiles - 1) * rows
    swaps = [n for n, c in enumerate(ran) if c.swap]
    assert len(swaps) == row_tiles - 1
    for n in swaps:  # the last step of a row tile (RUN), or the end of WAIT
        assert (ran[n].run == "RUN" and ran[n].issue) or (ran[n].run == "WAIT" and ran[n + 1].run == "RUN")


def check_hand_over(trace: list[Cycle], tiles: list[dict[str, int]]) -> None:
    """Every tile accepted and taken in order; ``o_in_bank`` flips after each take and nothing
    else, ``o_bank`` after each store start and nothing else; ``o_desc`` is 0 before the first
    take and the taken tile's descriptor from the cycle after each take to the next."""
    assert len(cycles_of(trace, "accept")) == len(cycles_of(trace, "take")) == len(tiles)
    assert trace[0].in_bank == trace[0].bank == 0
    taken = -1
    for before, now in zip(trace, trace[1:]):
        assert now.in_bank == before.in_bank ^ before.take
        assert now.bank == before.bank ^ before.store_start
        taken += before.take
        assert now.desc == (full(tiles[taken]) if taken >= 0 else full({}))


def check_takes(trace: list[Cycle]) -> list[int]:
    """Each take comes in the first cycle with the tile's loads done (the cycle after its last
    activation beat, HAND, or later), its descriptor register written ``GEOMETRY_CYCLES`` cycles before and the run
    side idle (the cycle after the FLUSH before ended); the next descriptor, always valid, is
    accepted the cycle after. Returns the take cycles."""
    accepts, takes = cycles_of(trace, "accept"), cycles_of(trace, "take")
    last_acts = [max(n for n, c in enumerate(trace) if c.fire and c.load == "ACTS" and c.load_tile == k)
                 for k in range(len(accepts))]
    idle = [0] + [n + 1 for n in cycles_of(trace, "flush_end")]
    assert takes == [max(a + 1, s + 1 + GEOMETRY_CYCLES, i) for a, s, i in zip(last_acts, accepts, idle)]
    assert accepts[1:] == [t + 1 for t in takes[:-1]]
    return takes


CASES = {
    "conv-groups": ("mac", 4, 2, desc((4, 3), (5, 3), 3, 3, groups=2, kernel=2, pad=1) | {"kernel_w": 3}),
    "xnor-lanes": ("xnor", 2, 2, desc((3, 3), (3, 3), 6, 2, kernel=3, pad=1)),
    "linear": ("mac", 2, 2, desc((1, 1), (1, 1), 5, 5)),
    # 9 pixels in 3 row tiles of 4, 2 groups x 2 output tiles: 3 * 2 * 2 * 4 = 48 residual words
    "residual": ("mac", 4, 2, desc((3, 3), (3, 3), 4, 6, groups=2, kernel=3, pad=1) | {"residual": 1}),
}


@pytest.mark.parametrize("case", CASES)
def test_tile_stream(case: str) -> None:
    """Three tiles streamed (the case, a 1x1 one, the case again), the loader, the fetch and the
    residual loader idling at times: per tile, the load side's phases DESC, PARAMS, WEIGHTS,
    ACTS (then HAND if the take comes later) and beats G * NT, G * NT * KS, ceil(G * H * W * CW
    / act_beat) with a restart at the descriptor and each phase's last beat; the run side's
    phases RESID (folds * rows beats), WALK, RUN with the next row tiles walked ahead (WAIT
    when a walk is not done) and FLUSH until the written count reaches folds * rows
    (:func:`check_run_phases`); the fetch position of every issued
    step against nested loops; the out words and the alternating bank handed to the store
    engine; each take at its earliest cycle; tile k + 1 loading while tile k runs; no error."""
    kind, rows, cols, d = CASES[case]
    geo = geometry(kind, rows, cols)
    tiles = [d, desc((1, 1), (1, 1), 1, 1), d]
    trace = play(geo, tiles)
    takes = check_takes(trace)
    check_hand_over(trace, tiles)
    for k, t in enumerate(tiles):
        want = sizes(geo, t)
        mine = [c for c in trace if c.load_tile == k]
        wait = takes[k] - max(n for n, c in enumerate(trace) if c.load_tile == k and c.fire)
        got = runs(c.load for c in mine)
        assert [s for s, _ in got] == ["DESC", "PARAMS", "WEIGHTS", "ACTS"] + ["HAND"] * (wait > 0)
        assert got[0] == ("DESC", 1) and (not wait or got[-1] == ("HAND", wait))
        beats = {p: sum(c.fire for c in mine if c.load == p) for p in LOADS.values()}
        assert beats == {"PARAMS": want["folds"], "WEIGHTS": want["folds"] * want["ks"],
                         "ACTS": math.ceil(want["act_words"] / geo.act_beat)}
        assert [c.load for c in mine if c.restart] == ["DESC", "PARAMS", "WEIGHTS", "ACTS"]
        ran = [c for c in trace if c.run_tile == k]
        resid = bool(t.get("residual"))
        check_run_phases(ran, rows, want["row_tiles"], resid)
        assert sum(c.resid_fire for c in ran) == (want["words"] if resid else 0)
        assert [c.pos for c in ran if c.issue] == nest(t, geo.lanes, cols) * want["row_tiles"]
        if k:  # this tile loads while the one before runs
            assert any(c.load in LOADS.values() and c.run_tile == k - 1 for c in mine)
    assert [(c.store_words, c.bank) for c in trace if c.store_start] == [
        (sizes(geo, t)["words"], k % 2) for k, t in enumerate(tiles)]
    assert not any(c.error or c.run_error for c in trace)


def test_overlap_timeline() -> None:
    """Three tiles streamed to a mac 2x2 controller, every part at full speed, against a
    hand-worked timeline. T0 (2x2 -> 2x2, 1 -> 2 channels; one parameter, one weight and one
    activation beat) is accepted at 0 and loaded by 3, but taken at 7 (its geometry is complete
    then: the descriptor register, written at 1, + GEOMETRY_CYCLES 6); T1 (2 channels: 2 weight
    beats) is accepted at 8, the cycle after, and loads (9-12) while T0 walks and runs (8-13;
    2 row tiles, 1 step each: WALK 8-9, RUN 10 with the second row tile's first pixel walked,
    WAIT 11-12 for its second, swapped in at 12, RUN 13), then waits in HAND (13-18) while T0
    flushes (14-17, the rows written 4 cycles after the last step); T0's store starts at 17 and
    T1 is taken at 18, the run side idle for that one cycle. T2 (10x10 -> 2x2 stride 5: 13
    activation beats, 22-34) is accepted at 19; T1 runs (2 steps per row tile, the second row
    tile walked during the first's steps 21-22, swapped in at 23) and stores at 29; after T2's
    last activation beat at 34 the run side, idle from 30, takes it in HAND at 35; T2 runs and
    stores at 45. ``o_in_bank`` flips with every take, ``o_bank`` with every store start, ``o_desc`` holds
    each tile from the cycle after its take."""
    geo = geometry("mac", 2, 2)
    t0, t1 = desc((2, 2), (2, 2), 1, 2), desc((2, 2), (2, 2), 2, 2)
    t2 = desc((10, 10), (2, 2), 1, 2, stride=5)
    tiles = [t0, t1, t2]
    trace = play(geo, tiles, loads=ALWAYS, issues=ALWAYS, cycles=47)
    assert cycles_of(trace, "accept") == [0, 8, 19]
    assert cycles_of(trace, "take") == [7, 18, 35]
    assert cycles_of(trace, "store_start") == [17, 29, 45]
    assert cycles_of(trace, "swap") == [12, 23, 40]
    assert cycles_of(trace, "restart") == [0, 1, 2, 3, 8, 9, 11, 12, 19, 20, 21, 34]
    assert runs(c.load for c in trace) == [
        ("DESC", 1), ("PARAMS", 1), ("WEIGHTS", 1), ("ACTS", 1), ("HAND", 4),  # T0, 0-7
        ("DESC", 1), ("PARAMS", 1), ("WEIGHTS", 2), ("ACTS", 1), ("HAND", 6),  # T1, 8-18
        ("DESC", 1), ("PARAMS", 1), ("WEIGHTS", 1), ("ACTS", 13), ("HAND", 1),  # T2, 19-35
        ("DESC", 11)]  # 36-46, no more descriptors
    assert runs(c.run for c in trace) == [
        ("IDLE", 8),  # 0-7
        ("WALK", 2), ("RUN", 1), ("WAIT", 2), ("RUN", 1), ("FLUSH", 4),  # T0, 8-17
        ("IDLE", 1),  # 18
        ("WALK", 2), ("RUN", 2), ("WAIT", 1), ("RUN", 2), ("FLUSH", 4),  # T1, 19-29
        ("IDLE", 6),  # 30-35
        ("WALK", 2), ("RUN", 1), ("WAIT", 2), ("RUN", 1), ("FLUSH", 4),  # T2, 36-45
        ("IDLE", 1)]  # 46
    # T1's loads beside T0's run
    assert [(c.load, c.run) for c in trace[8:14]] == [
        ("DESC", "WALK"), ("PARAMS", "WALK"), ("WEIGHTS", "RUN"), ("WEIGHTS", "WAIT"),
        ("ACTS", "WAIT"), ("HAND", "RUN")]
    assert [c.in_bank for c in trace] == [0] * 8 + [1] * 11 + [0] * 17 + [1] * 11
    assert [c.bank for c in trace] == [0] * 18 + [1] * 12 + [0] * 16 + [1] * 1
    zero = full({})
    assert [c.desc for c in trace] == [zero] * 8 + [full(t0)] * 11 + [full(t1)] * 17 + [full(t2)] * 11
    assert [(c.store_words, c.bank) for c in trace if c.store_start] == [(4, 0), (4, 1), (4, 0)]
    assert not any(c.error for c in trace)


def test_k_tiles_psum_write_skips_store() -> None:
    """Three K tiles of one layer streamed: the two with ``psum_write`` end FLUSH when the
    written count reaches folds * rows (5 row tiles x 2 output tiles x 2 rows) and hand nothing
    to the store engine -- the next tile, loaded long before, is taken the cycle after -- and
    keep bank 0; the last (``psum_add`` only) hands bank 0 and its 20 words over."""
    geo = geometry("mac", 2, 2)
    d = desc((3, 3), (3, 3), 3, 3, kernel=3, pad=1)
    flags = [{"psum_add": 0, "psum_write": 1}, {"psum_add": 1, "psum_write": 1},
             {"psum_add": 1, "psum_write": 0}]
    tiles = [d | k for k in flags]
    trace = play(geo, tiles)
    takes = check_takes(trace)
    check_hand_over(trace, tiles)
    ends = cycles_of(trace, "flush_end")
    assert takes[1:] == [e + 1 for e in ends[:2]]  # the loads waited for the run side
    for k in range(3):
        check_run_phases([c for c in trace if c.run_tile == k], geo.rows, 5, False)
    assert [(n, c.store_words, c.bank) for n, c in enumerate(trace) if c.store_start] == [(ends[2], 20, 0)]
    assert not any(c.error for c in trace)


def test_flush_waits_for_the_store_engine() -> None:
    """Three 1x1 tiles at full speed with a store engine busy 200 cycles after each start: T0 is
    taken at 7 (GEOMETRY_CYCLES 6 after its descriptor register), runs 8-10, flushes 11-14 and
    stores at 14; T1 (loaded 8-11) is taken at 15, runs 16-18 and holds FLUSH 19-214 until the
    engine's last cycle, 14 + 200; T2 is taken at 215 and stores at 414."""
    geo = geometry("mac", 2, 2)
    tiles = [desc((1, 1), (1, 1), 1, 1)] * 3
    trace = play(geo, tiles, loads=ALWAYS, issues=ALWAYS, store_cycles=200)
    assert cycles_of(trace, "take") == [7, 15, 215]
    assert cycles_of(trace, "store_start") == [14, 214, 414]
    assert runs(c.run for c in trace if c.run_tile == 1) == [("WALK", 2), ("RUN", 1), ("FLUSH", 196)]
    assert [(c.store_words, c.bank) for c in trace if c.store_start] == [(2, 0), (2, 1), (2, 0)]
    check_hand_over(trace, tiles)


@pytest.mark.parametrize("cause", ["too_long", "load", "load_last", "write", "resid"])
def test_error_sticky(cause: str) -> None:
    """Tiles A, E, B, C streamed, E failing: a fold longer than max_steps (seen at E's take), a
    load overrun with E's first parameter beat or with its last activation
    beat (the cycle before its take), a result overrun with E's first issued step, a residual
    overrun with its first residual beat. A load-side error shows on ``o_error`` from the cycle
    after the strobe -- while A runs, ``o_run_error`` low -- and goes to the run side with E's
    take; a run-side error raises both from the cycle after the strobe. Both stay until B's take
    (B's descriptor cleared the load side's before), and C is clean."""
    geo = geometry("mac", 2, 2, max_steps=8 if cause == "too_long" else 9)
    small = desc((1, 1), (1, 1), 1, 1)
    e = desc((3, 3), (1, 1), 1, 4, kernel=3) | {"residual": 1}  # 9 steps per fold, 2 output tiles
    trace = play(geo, [small, e, small, small], overrun=None if cause == "too_long" else (cause, 1))
    check_takes(trace)
    _, take_e, take_b, _ = cycles_of(trace, "take")
    if cause == "too_long":
        strobe = take_e
    else:
        [strobe] = cycles_of(trace, "overrun")
    on_load = cause in ("too_long", "load", "load_last")
    # the strobes' cycles: E's take the cycle after its last activation beat (the run side was idle)
    last_act = max(n for n, c in enumerate(trace) if c.load_tile == 1 and c.load == "ACTS" and c.fire)
    assert {"too_long": last_act + 1 == take_e, "load": strobe < take_e, "load_last": strobe + 1 == take_e,
            "write": strobe > take_e, "resid": strobe > take_e}[cause]
    raised = range(strobe + 1, take_b + 1)
    assert [n for n, c in enumerate(trace) if c.error] == list(raised)
    run_raised = range(take_e + 1, take_b + 1) if on_load else raised
    assert [n for n, c in enumerate(trace) if c.run_error] == list(run_raised)
    if cause == "load":  # E's error while A still runs
        assert any(c.error and not c.run_error and c.run_tile == 0 for c in trace)


def test_controller_wrong() -> None:
    with pytest.raises(TypeError, match=r"^`geo` must be a TopGeometry, not 3$"):
        LayerController(3)
