"""rtl.requant.OutputStage alone against models.intref's output stage, over the whole parameter
ranges the contract allows (32-bit bias, 16-bit signed multiplier, every shift 1..62, residuals,
relu, xnor thresholds both ways), with bubbles: each row comes out exactly
contract.OUTPUT_LATENCY cycles after it went in."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from amaranth.hdl import signed

from contract import OUTPUT_LATENCY, RSHIFT_MAX, RSHIFT_MIN
from models.intref import _output_stage
from rtl.dsp import DSPPlatform
from rtl.requant import OutputStage
from test_rtl_dsp import MODEL, simulate

pytestmark = pytest.mark.amaranth

COLS, ACC_BITS, BITS, POSITIONS, BIAS_BITS = 3, 20, 8, 576, 32


def run(stage: OutputStage, rows: list[dict[str, np.ndarray]], relu: int = 0, binary: int = 0,
        positions: int = POSITIONS, platform: DSPPlatform | None = None) -> list[list[int]]:
    """Feed ``rows`` (acc, params, res per row) with a bubble after every third; the outputs in
    order, each checked to leave OUTPUT_LATENCY cycles after its row. ``platform``: the
    products' elaboration (rtl.dsp)."""
    got: list[list[int]] = []

    async def bench(ctx):
        ctx.set(stage.i_relu, relu)
        ctx.set(stage.i_binary, binary)
        ctx.set(stage.i_positions, positions)
        schedule = [i for i in range(len(rows)) for _ in ((0,) if i % 3 else (0, 1))]  # rows with bubbles
        fed: list[int | None] = []
        for cycle in range(len(schedule) * 2 + OUTPUT_LATENCY + 2):
            i = schedule[cycle] if cycle < len(schedule) and (cycle == 0 or schedule[cycle] != schedule[cycle - 1]) \
                else None
            fed.append(i)
            if i is not None:
                ctx.set(stage.i_acc.payload, [int(v) for v in rows[i]["acc"]])
                ctx.set(stage.i_params, [{k: int(v[c]) for k, v in rows[i]["params"].items()} for c in range(COLS)])
            ctx.set(stage.i_acc.valid, i is not None)
            back = fed[cycle - OUTPUT_LATENCY] if cycle >= OUTPUT_LATENCY else None
            if back is not None and "res" in rows[back]:
                ctx.set(stage.i_res, [int(v) for v in rows[back]["res"]])
            valid, payload = ctx.get(stage.o_y.valid), ctx.get(stage.o_y.payload)
            assert bool(valid) == (back is not None), f"cycle {cycle}: valid {valid}, want row {back}"
            if valid:
                got.append([int(v) for v in payload])
            await ctx.tick()

    simulate(stage, bench, platform)
    return got


def requant_layer(bias: np.ndarray, mult: np.ndarray, shift: np.ndarray, relu: int) -> SimpleNamespace:
    """The fields of a QLayer that models.intref's output stage reads."""
    return SimpleNamespace(pe="mac", bits_out=BITS, relu=bool(relu), bias=bias.astype(np.int64),
                           multiplier=mult.astype(np.int64), rshift=shift.astype(np.int64))


@pytest.mark.parametrize("platform", [None, MODEL], ids=["generic", "ecp5"])
@pytest.mark.parametrize("relu", [0, 1])
def test_requantize_matches_intref_over_the_whole_parameter_range(relu: int, platform: DSPPlatform | None) -> None:
    """Also with the partial products in (modelled) ECP5 DSP blocks: same outputs, same cycles."""
    rng = np.random.default_rng(11 + relu)
    stage = OutputStage(kind="mac", cols=COLS, acc_shape=signed(ACC_BITS), bits=BITS, positions=POSITIONS,
                        bias_bits=BIAS_BITS)
    rows, want = [], []
    for n in range(60):
        acc = rng.integers(-(1 << (ACC_BITS - 1)), 1 << (ACC_BITS - 1), size=COLS)
        bias = rng.integers(-(1 << (BIAS_BITS - 1)), 1 << (BIAS_BITS - 1), size=COLS)
        if n % 2:  # small biases too, so that the outputs are not all clamped
            bias = rng.integers(-1000, 1000, size=COLS)
        mult = rng.integers(-(1 << 15), 1 << 15, size=COLS)
        shift = rng.integers(RSHIFT_MIN, RSHIFT_MAX + 1, size=COLS)
        if n % 3 == 0:  # shifts that keep the product near the output range
            shift = rng.integers(18, 30, size=COLS)
        res = rng.integers(-(1 << (BITS - 1)), 1 << (BITS - 1), size=COLS) * (n % 4 != 1)
        rows.append({"acc": acc, "params": {"bias": bias, "mult": mult, "shift": shift}, "res": res})
        q = requant_layer(bias, mult, shift, relu)
        want.append(_output_stage(q, acc[:, None], res[:, None])[:, 0].tolist())
    corner = [(1 << (ACC_BITS - 1)) - 1, -(1 << (ACC_BITS - 1)), 0]
    for shift in (RSHIFT_MIN, 2, 17, 40, RSHIFT_MAX):  # the extremes of every field
        bias = np.array([(1 << (BIAS_BITS - 1)) - 1, -(1 << (BIAS_BITS - 1)), 0])
        mult = np.array([-(1 << 15), (1 << 15) - 1, 1])
        res = np.array([-(1 << (BITS - 1)), (1 << (BITS - 1)) - 1, 0])
        rows.append({"acc": np.array(corner), "params": {"bias": bias, "mult": mult, "shift": np.full(COLS, shift)},
                     "res": res})
        want.append(_output_stage(requant_layer(bias, mult, np.full(COLS, shift), relu),
                                  np.array(corner)[:, None], res[:, None])[:, 0].tolist())
    assert run(stage, rows, relu=relu, platform=platform) == want


@pytest.mark.parametrize("binary", [0, 1])
def test_xnor_compare_matches_intref(binary: int) -> None:
    rng = np.random.default_rng(5 + binary)
    positions = 300
    stage = OutputStage(kind="xnor", cols=COLS, acc_shape=signed(12), bits=1, positions=POSITIONS,
                        bias_bits=BIAS_BITS)
    rows, want = [], []
    for n in range(60):
        acc = rng.integers(0, positions + 1, size=COLS)
        threshold = rng.integers(-positions - 1, positions + 2, size=COLS)
        negate = rng.integers(0, 2, size=COLS)
        if n % 2:  # the compare's edges: c * dot exactly at the threshold, one off either side
            threshold = np.where(negate, -1, 1) * (2 * acc - positions) + rng.integers(-1, 2, size=COLS)
        rows.append({"acc": acc, "params": {"threshold": threshold, "negate": negate}})
        dot = 2 * acc - positions
        want.append(((np.where(negate, -1, 1) * dot >= threshold).astype(int) if binary else dot).tolist())
    assert run(stage, rows, binary=binary, positions=positions) == want
