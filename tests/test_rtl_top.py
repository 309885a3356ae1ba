# amaranth: UnusedElaboratable=no
"""The accelerator top on Amaranth's simulator: whole layers of every PE kind, bit-exact against
models.intref.int_forward, and cycle-exact against hwsim.rtl_timing.layer_cycles."""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np
import pytest
from amaranth.sim import Simulator

from contract import FETCH_CYCLES
from hwsim.accelerator import Accelerator, ArrayConfig, MemoryConfig, RtlConfig
from hwsim.errors import DoesNotFit
from hwsim.rtl_plan import top_geometry
from hwsim.rtl_timing import layer_cycles, plan_cycles, tiles_cycles
from hwsim.workload import Layer
from models.intref import int_forward
from rtl.host import LayerProgram, assemble, plan, program, tile_programs, unpack
from rtl.top import LayerAccelerator
from sim import layers

#: Amaranth-simulator tier (see pyproject.toml markers); tool tests are also marked rtl.
pytestmark = pytest.mark.amaranth

MAX_SHIFT = 5
LANES = 4
MAX_STEPS = 64

quantized = functools.partial(layers.quantized, max_shift=MAX_SHIFT)


def accelerator(kind: str, rows: int = 2, cols: int = 2, *, max_steps: int = MAX_STEPS,
                **kib: float) -> Accelerator:
    """A small top: 1 KiB buffers unless ``ifmap``/``weight``/``ofmap`` say otherwise."""
    sizes = {"ifmap": 1.0, "weight": 1.0, "ofmap": 1.0, **kib}
    return Accelerator(pe=kind, bits=1 if kind == "xnor" else 8, max_shift=MAX_SHIFT,
                       array=ArrayConfig(rows=rows, cols=cols, lanes=LANES),
                       memory=MemoryConfig(**{f"{name}_sram_kib": v for name, v in sizes.items()}),
                       rtl=RtlConfig(max_steps=max_steps))


def make_top(kind: str, rows: int = 2, cols: int = 2, **kib: float) -> LayerAccelerator:
    return LayerAccelerator(top_geometry(accelerator(kind, rows, cols, **kib)))


def workload_layer(conv: bool, cin: int, cout: int, hw: int, kernel: int = 1, stride: int = 1,
                   padding: int = 0, groups: int = 1) -> Layer:
    """The workload layer of a case, its output size by the textbook formula."""
    if not conv:
        return Layer("fc", "linear", cin, 1, 1, cout, 1, 1)
    out = (hw + 2 * padding - kernel) // stride + 1
    return Layer("conv", "conv", cin, hw, hw, cout, out, out, kernel=(kernel, kernel),
                 stride=(stride, stride), padding=(padding, padding), groups=groups)


@dataclass
class Run:
    beats: list[int]
    first: dict[str, int]  # cycle of each stream's first transfer
    last: dict[str, int]   # ... and of its last
    error: int


def run_layers(top: LayerAccelerator, progs: list[LayerProgram], *, valid_pattern=(1,),
               ready_pattern=(1,)) -> list[Run]:
    """Stream every program through ``top`` (layer after layer) and collect each one's results."""
    runs = [Run([], {}, {}, 0) for _ in progs]
    loads = [("desc", "i_desc", lambda p: [p.descriptor]), ("params", "i_params", lambda p: p.params),
             ("weights", "i_weights", lambda p: p.weights), ("acts", "i_acts", lambda p: p.acts)]

    async def producer(ctx):
        cycle = 0
        for run, prog in zip(runs, progs):
            for name, attr, beats in loads:
                port = getattr(top, attr)
                payload = port.payload.as_value()
                for beat in beats(prog):
                    ctx.set(payload, beat)
                    for valid in itertools.cycle(valid_pattern):
                        ctx.set(port.valid, valid)
                        _, _, ready = await ctx.tick().sample(port.ready)
                        cycle += 1
                        if valid and ready:
                            run.first.setdefault(name, cycle - 1)
                            run.last[name] = cycle - 1
                            break
                ctx.set(port.valid, 0)

    async def consumer(ctx):
        cycle = 0
        for run, prog in zip(runs, progs):
            for ready in itertools.cycle(ready_pattern):
                if len(run.beats) == prog.result_beats:
                    break
                ctx.set(top.o_results.ready, ready)
                _, _, valid, data, error = await ctx.tick().sample(
                    top.o_results.valid, top.o_results.payload.as_value(), top.o_error)
                cycle += 1
                if valid and ready:
                    run.beats.append(int(data))
                    run.first.setdefault("store", cycle - 1)
                    run.last["store"] = cycle - 1
                    run.error |= error
        ctx.set(top.o_results.ready, 0)

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(producer, background=True)
    sim.add_testbench(consumer)
    sim.run()
    return runs


#: (kind, conv, in_ch, out_ch, in size, geometry, rows x cols): every kind on 1x1, 3x3 s1 p1, 3x3
#: s2, depthwise (mac, adder), grouped (mac, xnor), linear; channel and pixel counts not multiples of the array.
CASES = {
    "mac-1x1": ("mac", True, 3, 4, 4, {}, (2, 2)),
    # one step per row tile: the walk of the next row tile's pixels is not done by its last
    # step (WAIT), and the folds' last beats are the array's rows apart
    "mac-1x1-one-step": ("mac", True, 1, 2, 4, {}, (2, 2)),
    "adder-1x1-one-step-3x2": ("adder", True, 1, 2, 5, {}, (3, 2)),
    "mac-3x3-s1-p1": ("mac", True, 3, 5, 5, {"kernel": 3, "padding": 1}, (2, 2)),
    "mac-3x3-s2": ("mac", True, 2, 3, 7, {"kernel": 3, "stride": 2}, (4, 4)),
    "mac-dw-3x3-p1": ("mac", True, 3, 3, 4, {"kernel": 3, "padding": 1, "groups": 3}, (2, 2)),
    "mac-g2-s2-p1": ("mac", True, 4, 6, 5, {"kernel": 3, "stride": 2, "padding": 1, "groups": 2},
                     (2, 2)),
    "mac-linear": ("mac", False, 7, 5, 1, {}, (2, 2)),
    # depthwise, channel-parallel (dw_lanes L = min(cols, 8-word beat) rounded down to a power of
    # two): 10 channels on 4 columns are fold groups of 4, 4 and 2, two fold groups a buffer word;
    # 5 on 3 columns are fold groups of 2 (L = 2); a 5x5 kernel on 4 columns, one fold group
    "mac-dw-3x3-p1-4x4": ("mac", True, 10, 10, 5, {"kernel": 3, "padding": 1, "groups": 10}, (4, 4)),
    "shift-dw-3x3-s2": ("shift", True, 5, 5, 6, {"kernel": 3, "stride": 2, "groups": 5}, (3, 3)),
    "adder-dw-5x5-p2": ("adder", True, 4, 4, 6, {"kernel": 5, "padding": 2, "groups": 4}, (2, 4)),
    # a depth multiplier of 2 is not depthwise: one group per fold
    "mac-dw-x2": ("mac", True, 3, 6, 4, {"kernel": 3, "padding": 1, "groups": 3}, (2, 4)),
    "adder-1x1": ("adder", True, 3, 3, 3, {}, (2, 2)),
    "adder-3x3-s1-p1": ("adder", True, 2, 3, 4, {"kernel": 3, "padding": 1}, (2, 2)),
    "adder-dw-3x3-s2-p1": ("adder", True, 2, 2, 5, {"kernel": 3, "stride": 2, "padding": 1,
                                                     "groups": 2}, (2, 2)),
    "adder-linear": ("adder", False, 6, 3, 1, {}, (2, 2)),
    "shift-3x3-s2-p1": ("shift", True, 3, 3, 5, {"kernel": 3, "stride": 2, "padding": 1}, (2, 2)),
    "shift-linear": ("shift", False, 5, 5, 1, {}, (2, 2)),
    "xnor-3x3-p1": ("xnor", True, 6, 3, 4, {"kernel": 3, "padding": 1}, (2, 2)),
    "xnor-3x3-s2": ("xnor", True, 5, 4, 5, {"kernel": 3, "stride": 2}, (2, 2)),
    "xnor-g2-1x1": ("xnor", True, 10, 4, 3, {"groups": 2}, (2, 2)),
    "xnor-linear-raw": ("xnor", False, 9, 3, 1, {}, (2, 2)),
    # one beat each of parameters, weights and activations: ACTS ends 3 cycles after the descriptor
    "xnor-linear-tiny": ("xnor", False, 3, 2, 1, {}, (2, 2)),
    "mac-linear-tiny": ("mac", False, 1, 2, 1, {}, (2, 2)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_top_layer(case: str) -> None:
    """One layer: outputs equal int_forward; measured phases and total equal layer_cycles."""
    kind, conv, cin, cout, hw, geo, (rows, cols) = CASES[case]
    q, x = quantized(kind, conv, cin, cout, hw, seed=len(case), binary_out=not case.endswith("raw"),
                     **geo)
    acc = accelerator(kind, rows, cols)
    top = LayerAccelerator.from_accelerator(acc)  # what `hwsim rtl generate` emits for acc
    assert top.geo == top_geometry(acc)
    prog = program(top, q, x)
    (run,) = run_layers(top, [prog])
    np.testing.assert_array_equal(unpack(top, q, prog, run.beats), int_forward(q, x))
    assert not run.error
    want = layer_cycles(workload_layer(conv, cin, cout, hw, **geo), acc)
    assert run.first["desc"] == 0
    assert run.last["params"] + len(prog.weights) == run.last["weights"]
    assert run.last["weights"] + 1 == want["descriptor"] + want["load_weights"]
    assert run.last["acts"] - run.last["weights"] == want["load_acts"]
    assert run.first["store"] - run.last["acts"] == (want["hand"] + want["geometry_wait"] + want["compute"]
                                                     + want["drain"] + FETCH_CYCLES + 1)
    assert run.last["store"] + 1 == want["total"]


def test_top_relu_backpressure_back_to_back() -> None:
    """Two layers on one top with idle input cycles and a stalling consumer: same outputs."""
    top = make_top("mac", 2, 3)
    layers = [quantized("mac", True, 3, 4, 4, seed=5, relu=True, kernel=3, padding=1),
              quantized("mac", False, 5, 4, 1, seed=6)]
    progs = [program(top, q, x) for q, x in layers]
    runs = run_layers(top, progs, valid_pattern=(1, 0, 1), ready_pattern=(0, 1, 1, 0))
    for (q, x), prog, run in zip(layers, progs, runs):
        np.testing.assert_array_equal(unpack(top, q, prog, run.beats), int_forward(q, x))
    assert (unpack(top, layers[0][0], progs[0], runs[0].beats) == 0).any()  # relu clamped some


def test_top_error_flag() -> None:
    """A layer that overruns the activation buffer (host check bypassed) raises ``o_error``; the
    same layer on a buffer of exactly its size does not."""
    q, x = quantized("mac", True, 2, 2, 4, seed=1)
    prog = program(make_top("mac"), q, x)
    assert len(prog.acts) == 4 * 4 * 2 // 8  # one 8-bit word per pixel and channel, 8 a beat
    # 32 words: the layer's; 31: rounded down to whole beats, 24 words, one beat short
    for words, held, error in ((32, 32, False), (31, 24, True)):
        top = make_top("mac", ifmap=words * 8 / 8192)
        assert top.geo.act_words == held
        (run,) = run_layers(top, [prog])
        assert bool(run.error) is error


def test_top_geometry_of_small_accelerator() -> None:
    """The buffer depths follow the KiB: 1 KiB of 8-bit activations is 1024 words, of 2 lanes x
    8-bit outputs 512 words; the top takes a TopGeometry, not the Accelerator itself."""
    acc = accelerator("mac")
    top = LayerAccelerator(top_geometry(acc))
    assert (top.rows, top.cols, top.max_steps, top.bits) == (2, 2, MAX_STEPS, 8)
    assert top.geo.act_words == 1024 and top.geo.out_words == 512
    with pytest.raises(TypeError, match=r"^`geo` must be a TopGeometry, not Accelerator\("):
        LayerAccelerator(acc)


def test_top_plan_wrong() -> None:
    q, x = quantized("mac", True, 3, 5, 5, seed=2, kernel=3, padding=1)
    # 5 x 5 pixels x 3 channels = 75 activation words; 13 row tiles x 3 channel tiles x 2 rows = 78
    # output words (8-bit activations, 74 rounded down to whole beats of 8: 72; 2 lanes of 8-bit outputs)
    geo = top_geometry(accelerator("mac", ifmap=74 * 8 / 8192))
    with pytest.raises(DoesNotFit, match=r"^layer needs 75 act buffer words, the buffer holds 72; "
                                         r"enlarge memory.ifmap_sram_kib$"):
        plan(geo, q, (5, 5))
    geo = top_geometry(accelerator("mac", ofmap=77 * 16 / 8192))
    with pytest.raises(DoesNotFit, match=r"^layer needs 78 out buffer words, the buffer holds 77; "
                                         r"enlarge memory.ofmap_sram_kib$"):
        plan(geo, q, (5, 5))
    assert plan(top_geometry(accelerator("mac", ifmap=80 * 8 / 8192, ofmap=78 * 16 / 8192)), q,
                (5, 5)).folds == 39  # 75 words need 80: ten whole beats
    with pytest.raises(DoesNotFit, match=r"^layer is of PE kind mac, the accelerator of adder$"):
        plan(top_geometry(accelerator("adder")), q, (5, 5))
    with pytest.raises(DoesNotFit, match=r"^a fold of 27 steps exceeds rtl.max_steps=16; "
                                         r"raise rtl.max_steps and memory.weight_sram_kib$"):
        plan(top_geometry(accelerator("mac", max_steps=16)), q, (5, 5))
    with pytest.raises(DoesNotFit, match=r"^`in_h` of 4096 does not fit the descriptor's 12-bit "
                                         r"field; raise rtl.dim_bits$"):
        plan(top_geometry(accelerator("mac")), q, (4096, 5))


@pytest.mark.parametrize("kind", ["mac", "xnor"])
def test_top_k_tiles(kind: str) -> None:
    """A layer whose fold exceeds max_steps 16, as K tiles back to back on one top (2 output
    channels, one output tile; mac: 3x3 over 3 channels, 27 steps -> 3 K tiles of one channel;
    xnor: 3x3 over 2 words of 4 lanes, 18 steps -> 2 K tiles of one word): the psum tiles return nothing, the assembled outputs equal
    int_forward; tile 0 is taken by the idle run side in the cycle after its last ACTS beat
    (HAND) and tile 1's descriptor follows at once (its loads overlap tile 0's run); tile ``t + 1``'s descriptor
    comes the cycle after tile ``t`` is taken, i.e. once tile ``t - 1``'s FLUSH is over (its
    loads, shorter than that run, wait in HAND)."""
    cin = 3 if kind == "mac" else 7
    q, x = quantized(kind, True, cin, 2, 4, seed=11, kernel=3, padding=1)  # one output tile
    top = LayerAccelerator.from_accelerator(accelerator(kind, max_steps=16))
    progs = tile_programs(top, q, x)
    assert [prog.result_beats == 0 for *_, prog in progs] == [True] * (len(progs) - 1) + [False]
    assert len(progs) == (3 if kind == "mac" else 2)
    runs = run_layers(top, [prog for *_, prog in progs])
    outs = [(tile, unpack(top, part, prog, run.beats)) for (tile, part, prog), run in zip(progs, runs)
            if prog.result_beats]
    np.testing.assert_array_equal(assemble(q, outs), int_forward(q, x))
    starts = [run.first["desc"] for run in runs]
    spans = [plan_cycles(top.geo, tile.plan) for tile, *_ in progs]
    # a tile's loads: its descriptor, parameter, weight and activation beats and HAND's cycle
    # (no geometry wait)
    loads = [s["descriptor"] + s["load_weights"] + s["load_acts"] + s["hand"] for s in spans]
    assert not any(s["geometry_wait"] for s in spans)
    assert starts[1] == starts[0] + loads[0]
    for t in range(1, len(runs) - 1):  # a psum tile's span ends with its FLUSH's last cycle
        assert starts[t] + loads[t] < starts[t - 1] + spans[t - 1]["total"]
        assert starts[t + 1] == starts[t - 1] + spans[t - 1]["total"] + 1
    # the last tile is taken the cycle after the one before it ends its FLUSH (that one was
    # taken in the cycle before the last descriptor), then runs and stores
    take = starts[-1] - 1 + spans[-2]["total"] - loads[-2] + 1
    assert runs[-1].last["store"] == take + spans[-1]["total"] - loads[-1]
    assert runs[-1].last["store"] + 1 == tiles_cycles(top.geo, [tile for tile, *_ in progs])["total"]
    assert not any(run.error for run in runs)


def test_top_store_overlaps_the_next_tile() -> None:
    """A layer as row tiles on a top whose ifmap holds 56 activation words (3x3 pad-1 conv, 3 -> 4
    channels, 6x6 input: 3 x 6 = 18 words an input row): tile 1's descriptor comes two cycles
    after tile 0's last ACTS beat (the idle run side takes tile 0 between, in HAND), and every
    later tile's before the previous tile's last result (its loads overlap the run of the tile
    before, its run the store of the one before that); the outputs equal int_forward and the
    layer's cycles, first descriptor to last result, equal tiles_cycles's overlapped total --
    fewer than the tiles' spans summed."""
    q, x = quantized("mac", True, 3, 4, 6, seed=13, kernel=3, padding=1)
    top = make_top("mac", ifmap=56 / 1024)
    progs = tile_programs(top, q, x)
    assert len(progs) >= 3 and all(prog.result_beats for *_, prog in progs)
    runs = run_layers(top, [prog for *_, prog in progs])
    outs = [(tile, unpack(top, part, prog, run.beats)) for (tile, part, prog), run in zip(progs, runs)]
    np.testing.assert_array_equal(assemble(q, outs), int_forward(q, x))
    tiles = [tile for tile, *_ in progs]
    spans = [plan_cycles(top.geo, t.plan) for t in tiles]
    first = spans[0]
    assert runs[1].first["desc"] == first["descriptor"] + first["load_weights"] + first["load_acts"] + first["hand"]
    for run, after, span in zip(runs, runs[1:], spans):
        assert after.first["desc"] < run.last["store"] - span["store"]
    total = runs[-1].last["store"] + 1
    assert total == tiles_cycles(top.geo, tiles)["total"] < sum(s["total"] for s in spans)
