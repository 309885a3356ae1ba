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

from hwsim.accelerator import Accelerator, ArrayConfig
from hwsim.rtl_timing import FETCH_CYCLES, layer_cycles
from models.intref import int_forward
from rtl.host import LayerProgram, plan, program, unpack
from rtl.top import LayerAccelerator
from sim import layers
from sim.cosim import hw_layer

MAX_SHIFT = 5
LANES = 4

quantized = functools.partial(layers.quantized, max_shift=MAX_SHIFT)


def make_top(kind: str, rows: int = 2, cols: int = 2, **words: int) -> LayerAccelerator:
    sizes = {"act_words": 256, "weight_words": 256, "param_words": 32, "out_words": 256, **words}
    return LayerAccelerator(pe=kind, bits=1 if kind == "xnor" else 8, rows=rows, cols=cols,
                            lanes=LANES, max_shift=MAX_SHIFT, max_steps=64, **sizes)


def accelerator(top: LayerAccelerator) -> Accelerator:
    return Accelerator(pe=top.kind, bits=top.bits,
                       array=ArrayConfig(rows=top.rows, cols=top.cols, lanes=top.lanes))


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
                payload = port.payload if attr == "i_acts" else port.payload.as_value()
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
    "mac-3x3-s1-p1": ("mac", True, 3, 5, 5, {"kernel": 3, "padding": 1}, (2, 2)),
    "mac-3x3-s2": ("mac", True, 2, 3, 7, {"kernel": 3, "stride": 2}, (4, 4)),
    "mac-dw-3x3-p1": ("mac", True, 3, 3, 4, {"kernel": 3, "padding": 1, "groups": 3}, (2, 2)),
    "mac-g2-s2-p1": ("mac", True, 4, 6, 5, {"kernel": 3, "stride": 2, "padding": 1, "groups": 2},
                     (2, 2)),
    "mac-linear": ("mac", False, 7, 5, 1, {}, (2, 2)),
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
    top = make_top(kind, rows, cols)
    prog = program(top, q, x)
    (run,) = run_layers(top, [prog])
    np.testing.assert_array_equal(unpack(top, q, prog, run.beats), int_forward(q, x))
    assert not run.error
    want = layer_cycles(hw_layer(prog, conv), accelerator(top))
    assert run.first["desc"] == 0
    assert run.last["params"] + len(prog.weights) == run.last["weights"]
    assert run.last["weights"] + 1 == want["descriptor"] + want["load_weights"]
    assert run.last["acts"] - run.last["weights"] == want["load_acts"]
    assert run.first["store"] - run.last["acts"] == want["compute"] + want["drain"] + FETCH_CYCLES + 1
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
    """A layer that overruns the activation buffer (host check bypassed) raises ``o_error``."""
    q, x = quantized("mac", True, 2, 2, 4, seed=1)
    prog = program(make_top("mac"), q, x)
    top = make_top("mac", act_words=len(prog.acts) - 1)
    (run,) = run_layers(top, [prog])
    assert run.error


def test_top_plan_wrong() -> None:
    q, x = quantized("mac", True, 3, 5, 5, seed=2, kernel=3, padding=1)
    with pytest.raises(ValueError, match=r"^layer needs 75 act buffer words, the buffer holds 74$"):
        plan(make_top("mac", act_words=74), q, (5, 5))
    with pytest.raises(ValueError, match=r"^layer needs 78 out buffer words, the buffer holds 77$"):
        plan(make_top("mac", out_words=77), q, (5, 5))
    with pytest.raises(ValueError, match=r"^layer is of PE kind mac, the accelerator of adder$"):
        plan(make_top("adder"), q, (5, 5))
    with pytest.raises(ValueError, match=r"^a fold of 27 steps exceeds max_steps=16$"):
        plan(LayerAccelerator(pe="mac", bits=8, rows=2, cols=2, max_steps=16, act_words=256,
                              weight_words=256, param_words=8, out_words=256), q, (5, 5))
    with pytest.raises(ValueError, match=r"^`in_h` of 4096 does not fit the descriptor's 12-bit field$"):
        plan(make_top("mac"), q, (4096, 5))
