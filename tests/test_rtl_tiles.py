"""Layers too large for the generated top, run as tiles (hwsim.rtl_plan.split,
hwsim.rtl_timing.tile_layer, rtl.host.tile_programs / assemble), without hardware: the row, channel
and group cuts worked by hand, the chosen tiling against a brute force over every tiling, and the
tiles' outputs -- each tile computed as the top computes it, emulated with numpy -- assembled and
compared with models.intref.int_forward of the whole layer. The top itself runs tiles in
tests/test_cosim.py (Verilator)."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest

from hwsim.accelerator import Accelerator, ArrayConfig, MemoryConfig, RtlConfig
from hwsim.errors import DoesNotFit
from hwsim.rtl_plan import LayerShape, split, top_geometry
from hwsim.rtl_timing import tile_layer, tiles_cycles
from models.intref import int_forward
from rtl import host
from sim.layers import LayerSpec, quantized_layer

#: 4x4 int8 top with 1/4 KiB of activations (256 words), 1 KiB of weights, 1/2 KiB of outputs.
SMALL = MemoryConfig(ifmap_sram_kib=0.25, weight_sram_kib=1, ofmap_sram_kib=0.5)


def geometry(pe: str = "mac", memory: MemoryConfig = SMALL, max_steps: int = 0):
    return top_geometry(Accelerator(pe=pe, bits=1 if pe == "xnor" else 8, memory=memory,
                                    array=ArrayConfig(rows=4, cols=4, lanes=8, fold_overlap=False),
                                    rtl=RtlConfig(max_steps=max_steps)))


def test_row_tiles_by_hand_stride_two():
    # 3x3, stride 2, pad 1 on 11 input rows: 6 output rows. Tiles of 2 output rows:
    #   rows 0-1: input rows -1..3 -> 0..3 (4 rows, top padding 1)
    #   rows 2-3: input rows  3..7         (5 rows, no padding)
    #   rows 4-5: input rows  7..11 -> 7..10 (4 rows; row 11 is the bottom padding)
    shape = LayerShape(True, 2, 4, 11, 5, (3, 3), (2, 2), (1, 1))
    tiles = split(geometry(), shape, 1, 4, 2)
    assert [(t.rows, t.in_rows, t.shape.in_h, t.shape.padding, t.shape.out_h) for t in tiles] == [
        ((0, 2), (0, 4), 4, (1, 1), 2), ((2, 4), (3, 8), 5, (0, 1), 2), ((4, 6), (7, 11), 4, (0, 1), 2)]
    assert all(t.plan.out_w == 3 and t.plan.out_h == 2 for t in tiles)


def test_channel_and_group_tiles_by_hand():
    # 6 groups of 2 -> 10 channels each; tiles of 4 groups and 8 channels: groups 0-3 and 4-5,
    # channels 0-7 and 8-9 of each: four tiles, groups outermost
    shape = LayerShape(True, 12, 60, 3, 3, (1, 1), (1, 1), (0, 0), 6)
    tiles = split(geometry(), shape, 4, 8, 3)
    assert [(t.groups, t.channels, t.shape.in_ch, t.shape.out_ch, t.shape.groups) for t in tiles] == [
        ((0, 4), (0, 8), 8, 32, 4), ((0, 4), (8, 10), 8, 8, 4), ((4, 6), (0, 8), 4, 16, 2), ((4, 6), (8, 10), 4, 4, 2)]


def test_k_tiles_by_hand():
    # 2 groups of 10 -> 4 channels, 3x3 pad 1 on 4x4: a fold of 9 x 10 = 90 steps; max_steps 27
    # takes 3 channels a K tile: ceil(10 / 3) = 4 K tiles, as equal as can be: 3, 3, 2, 2. Tiles
    # of one group, 4 channels and all 4 rows: per group its 4 K tiles back to back, the first
    # writing psums, the middle two adding and writing, the last adding and storing with K over
    # all 10 channels
    shape = LayerShape(True, 20, 8, 4, 4, (3, 3), (1, 1), (1, 1), 2)
    tiles = split(geometry(max_steps=27), shape, 1, 4, 4, 4)
    slices = [(0, 3), (3, 6), (6, 8), (8, 10)]
    flags = [(False, True), (True, True), (True, True), (True, False)]
    assert [(t.groups, t.channels, t.rows, t.in_channels, t.shape.in_ch, t.shape.k_in_ch,
             (t.plan.psum_add, t.plan.psum_write)) for t in tiles] == [
        ((g, g + 1), (0, 4), (0, 4), c, c[1] - c[0], 10, f) for g in range(2) for c, f in zip(slices, flags)]
    # the same folds in every K tile of an output tile: 4 row tiles x 1 output tile
    assert {(t.plan.folds, t.plan.steps) for t in tiles} == {(4, 27), (4, 18)}
    assert [t.plan.positions for t in tiles if t.plan.stores] == [90, 90]
    # on the top, the fewest K tiles that fit, and no more cuts than the buffers need
    assert tile_layer(geometry(max_steps=27), shape) == tuple(tiles)


def _every_tiling(geo, shape):
    """Total cycles of every tiling that fits, by brute force over all cuts."""
    per_group = shape.out_ch // shape.groups
    out_h = shape.out_h or (shape.in_h + 2 * shape.padding[0] - shape.kernel[0]) // shape.stride[0] + 1
    found = {}
    for g in range(1, shape.groups + 1):
        for c in [*range(4, per_group, 4), per_group]:
            for r in range(1, out_h + 1):
                try:
                    found[(g, c, r)] = tiles_cycles(geo, split(geo, shape, g, c, r))["total"]
                except DoesNotFit:
                    pass
    return found


@pytest.mark.parametrize("shape", [
    LayerShape(True, 8, 10, 12, 9, (3, 3), (1, 1), (1, 1)),      # rows (act buffer)
    LayerShape(True, 4, 24, 6, 6, (3, 3), (2, 2), (1, 1)),       # channels (weights) and rows
    LayerShape(True, 12, 12, 9, 9, (3, 3), (1, 1), (1, 1), 12),  # depthwise: groups and rows
    LayerShape(False, 60, 30),                                    # linear: channels
])
def test_tile_layer_is_the_fastest_tiling(shape):
    geo = geometry()
    every = _every_tiling(geo, shape)
    assert every, "some tiling fits"
    chosen = tile_layer(geo, shape)
    assert len(chosen) > 1  # none of these fits whole
    assert tiles_cycles(geo, chosen)["total"] == min(every.values())


def test_smallest_tile_too_large_names_the_reduction():
    # 3x3 over 200 channels: a fold of 1800 steps, more than max_steps 64. It runs as K tiles of at
    # most 7 channels (63 steps), ceil(200 / 7) = 29 of them, as equal as can be: 200 = 26 * 7 +
    # 3 * 6; without a psum buffer, or with a fold shorter than the kernel's 9 positions, no cut
    # helps
    shape = LayerShape(True, 200, 8, 4, 4, (3, 3), (1, 1), (1, 1))
    assert max(t.plan.steps for t in tile_layer(geometry(max_steps=64), shape)) == 63
    assert {t.in_channels for t in tile_layer(geometry(max_steps=64), shape)} == {
        (7 * k, 7 * k + 7) for k in range(26)} | {(182, 188), (188, 194), (194, 200)}
    none = dataclasses.replace(geometry(max_steps=64), psum_words=0)
    with pytest.raises(DoesNotFit, match=r"^a fold of 1800 steps exceeds rtl\.max_steps=64, and the top's "
                                         r"psum buffer of 0 words holds no fold of K tiles; raise "
                                         r"rtl\.max_steps and memory\.weight_sram_kib, or enlarge "
                                         r"memory\.ofmap_sram_kib$"):
        tile_layer(none, shape)
    with pytest.raises(DoesNotFit, match=r"^a fold of 1800 steps exceeds rtl\.max_steps=8, and a K tile of "
                                         r"one channel word is 9 steps; raise rtl\.max_steps and "
                                         r"memory\.weight_sram_kib$"):
        tile_layer(geometry(max_steps=8), shape)


def _as_the_top_runs(part, x, out_h: int) -> np.ndarray:
    """A tile as the top computes it: its top padding kept, rows past its last input row read as
    the padding value, exactly ``out_h`` output rows (numpy: pad explicitly, then no padding)."""
    (ph, pw), (kh, _), (sh, _) = part.padding, part.kernel_size, part.stride
    below = max(0, (out_h - 1) * sh + kh - ph - x.shape[2])
    xp = np.pad(x, ((0, 0), (0, 0), (ph, below), (0, 0)), constant_values=part.zero_in)
    flat = dataclasses.replace(part, padding=(0, pw))
    return int_forward(flat, xp)[:, :, :out_h, :]


def _random_spec(rng: random.Random) -> LayerSpec:
    groups = rng.choice((1, 1, 3))
    kernel = rng.choice((1, 3))
    return LayerSpec("conv", groups * rng.randint(1, 6), groups * rng.randint(1, 9), rng.randint(8, 16),
                     rng.randint(kernel, 10), kernel=kernel, stride=rng.randint(1, 2),
                     pad=rng.randint(0, kernel // 2), groups=groups)


@pytest.mark.parametrize("pe", ["mac", "adder", "shift", "xnor"])
def test_assembled_tiles_equal_the_whole_layer(pe):
    """Random convs (and a linear layer) on a top too small for them: every tile computed as the
    top computes it, assembled, equals int_forward of the whole layer, bit for bit."""
    rng = random.Random(f"tiles-{pe}")
    # 256 activation words (xnor: 64), so a tile of three input rows of up to 10 pixels of up to 6
    # channels (xnor: one 8-lane word) always fits, and a whole layer mostly does not
    tiny = MemoryConfig(ifmap_sram_kib=0.25 if pe != "xnor" else 0.0625, weight_sram_kib=1,
                        ofmap_sram_kib=0.25)
    geo = geometry(pe, tiny)
    specs = [_random_spec(rng) for _ in range(6)] + [LayerSpec("linear", 70, 30)]
    tiled = 0
    for seed, spec in enumerate(specs):
        ql = quantized_layer(pe, spec, seed=seed)
        q, x = ql.q, ql.x
        tiles = host.tiles(geo, q, tuple(x.shape[2:]) if q.conv else (1, 1))
        tiled += len(tiles) > 1
        parts = []
        for tile in tiles:
            part, xt = host._tile_layer(q, x, tile)
            parts.append((tile, _as_the_top_runs(part, xt, tile.shape.out_h) if q.conv else int_forward(part, xt)))
        np.testing.assert_array_equal(host.assemble(q, parts), int_forward(q, x), err_msg=str(spec))
    assert tiled >= 4  # most of them did not fit whole


def _patches(part, x, out_h: int) -> np.ndarray:
    """im2col of a tile as the top reads it: ``(G, Cg * kh * kw, pixels)``, its top padding
    kept, rows past its last input row and the side padding read as the padding value (a linear
    layer: one pixel)."""
    if not part.conv:
        return x.reshape(1, -1, 1).astype(np.int64)
    (ph, pw), (kh, kw), (sh, sw) = part.padding, part.kernel_size, part.stride
    below = max(0, (out_h - 1) * sh + kh - ph - x.shape[2])
    xp = np.pad(x[0].astype(np.int64), ((0, 0), (ph, below), (pw, pw)), constant_values=part.zero_in)
    out_w = (x.shape[3] + 2 * pw - kw) // sw + 1
    cols = np.stack([xp[:, oy * sh:oy * sh + kh, ox * sw:ox * sw + kw].reshape(-1)
                     for oy in range(out_h) for ox in range(out_w)], axis=1)
    return cols.reshape(part.groups, -1, cols.shape[1])


def _accumulators(part, x, out_h: int) -> np.ndarray:
    """What the array's accumulators hold after a tile's folds, ``(O, pixels)``, per PE kind:
    mac sum x * w; adder -sum |(x << e) - w|; shift sum x * (s << (P - p)); xnor the count of
    agreeing bits (the PE's count, before the output stage makes a dot of it)."""
    cols = _patches(part, x, out_h)
    per_group = part.out_channels // part.groups
    w = part.weight.astype(np.int64).reshape(part.groups, per_group, -1)
    out = []
    for g in range(part.groups):
        for o in range(per_group):
            wv, xv = w[g, o][:, None], cols[g]
            if part.pe == "mac":
                out.append((xv * wv).sum(axis=0))
            elif part.pe == "adder":
                e = 0 if part.align is None else int(part.align[g * per_group + o])
                out.append(-np.abs((xv << e) - wv).sum(axis=0))
            elif part.pe == "shift":
                p = part.shift.astype(np.int64).reshape(w.shape)[g, o][:, None]
                out.append((xv * (wv << (part.max_shift - p))).sum(axis=0))
            else:
                out.append((xv == wv).sum(axis=0))
    return np.array(out)


def _output_stage(q, acc: np.ndarray, positions: int) -> np.ndarray:
    """The top's output stage on the summed accumulators, ``positions`` the xnor K."""
    if q.pe == "xnor":
        dot = 2 * acc - positions
        if not q.binary_out:
            return dot
        return (q.compare_sign[:, None] * dot >= q.threshold[:, None]).astype(np.int64)
    m, s, b = q.multiplier[:, None], q.rshift[:, None], q.bias[:, None]
    y = np.clip(((acc + b) * m + (np.int64(1) << (s - 1))) >> s, -(1 << (q.bits_out - 1)),
                (1 << (q.bits_out - 1)) - 1)
    return np.maximum(y, 0) if q.relu else y


def _k_spec(rng: random.Random, pe: str) -> LayerSpec:
    """A conv whose fold exceeds max_steps 20 (8 lanes for xnor; xnor K at most 254)."""
    groups = rng.choice((1, 2))
    kernel = rng.choice((1, 3, 3))
    if pe == "xnor":
        per_group = rng.randint(17, 28) if kernel == 3 else rng.randint(161, 250)
    else:
        per_group = rng.randint(3, 9) if kernel == 3 else rng.randint(21, 60)
    return LayerSpec("conv", groups * per_group, groups * rng.randint(1, 6), rng.randint(3, 7),
                     rng.randint(kernel, 6), kernel=kernel, stride=rng.randint(1, 2),
                     pad=rng.randint(0, kernel // 2), groups=groups)


@pytest.mark.parametrize("pe", ["mac", "adder", "shift", "xnor"])
def test_k_tiles_emulated_equal_the_whole_layer(pe):
    """Random convs (grouped and not) and a linear layer whose folds exceed max_steps, run as K
    tiles (plus row/channel tiles where the buffers need them): every K tile's accumulators
    computed as the array computes them (numpy), summed in order through the psum flags (the
    first writes, the middle ones add and write, the last adds), the last put through the output
    stage with the whole layer's K, assembled: equal to int_forward of the whole layer."""
    rng = random.Random(f"ktiles-{pe}")
    geo = geometry(pe, MemoryConfig(ifmap_sram_kib=0.5, weight_sram_kib=2, ofmap_sram_kib=0.5), max_steps=20)
    specs = [_k_spec(rng, pe) for _ in range(5)] + [LayerSpec("linear", 200 if pe == "xnor" else 70, 9)]
    for seed, spec in enumerate(specs):
        ql = quantized_layer(pe, spec, seed=seed)
        q, x = ql.q, ql.x
        tiles = host.tiles(geo, q, tuple(x.shape[2:]) if q.conv else (1, 1))
        k_tiles = sum(1 for t in tiles if t.plan.stores)
        assert len(tiles) > k_tiles, str(spec)  # K tiles it is
        parts, psum = [], None
        for tile in tiles:
            part, xt = host._tile_layer(q, x, tile)
            acc = _accumulators(part, xt, tile.shape.out_h)
            p = tile.plan
            assert p.steps <= geo.max_steps
            assert (p.psum_add, p.psum_write) == ((psum is not None), not p.stores)
            psum = acc + psum if p.psum_add else acc
            if p.stores:
                assert p.positions == q.reduction and p.k_in_ch == q.in_channels // q.groups
                y = _output_stage(part, psum, p.positions)
                parts.append((tile, y.reshape(1, -1, tile.shape.out_h, y.shape[1] // tile.shape.out_h)
                              if q.conv else y.reshape(1, -1)))
                psum = None
        np.testing.assert_array_equal(host.assemble(q, parts), int_forward(q, x), err_msg=str(spec))
