"""hwsim.rtl_plan: the generated top's geometry and the capacity plan, worked out by hand from the
module docstring's formulas (word widths, ``floor(KiB * 8192 / word bits)`` depths, one parameter
word per ``min(9, max_steps)`` weight words, the auto ``max_steps``), every refusal with the field
it names, and ``rtl_timing.layer_cycles`` against the closed form written out here."""

from __future__ import annotations

import dataclasses

import pytest

from hwsim.accelerator import Accelerator, ArrayConfig, MemoryConfig, RtlConfig
from hwsim.errors import ConfigError, DoesNotFit
from hwsim.rtl_plan import LayerShape, TopGeometry, act_beat, param_fields, plan, top_geometry
from hwsim.rtl_timing import layer_cycles, overlapped_total, plan_cycles
from hwsim.workload import Layer


def small(**over) -> Accelerator:
    """mac int8 on a naive 4 x 4 array (no fold overlap: each fold fills and drains) with 1 / 2 / 1
    KiB buffers, rtl defaults (max_steps auto)."""
    base = Accelerator(pe="mac", bits=8, array=ArrayConfig(rows=4, cols=4, fold_overlap=False),
                       memory=MemoryConfig(ifmap_sram_kib=1, weight_sram_kib=2, ofmap_sram_kib=1))
    return dataclasses.replace(base, **over)


# Word widths of small(): activation 8; weight 4 cols x 8 = 32; parameter lane 32 (bias) + 16
# (multiplier) + 6 (shift S in [1, 62]) = 54, word 4 x 54 = 216; output 4 x 8 = 32.
# Depths: act 1 KiB = 8192 bits / 8 = 1024. Weight SRAM 2 KiB = 16384 bits shared with one
# parameter word per 9 weight words: 16384 / (32 + 216 / 9) = 16384 / 56 = 292.57 -> 292 weight
# words; auto max_steps = min(4608, 292) = 292; parameter words 292 // 9 = 32. Out 8192 / 32 = 256.
# acc_bits for 292 int8 products: 292 * 2**14 = 4784128 in [2**22, 2**23) -> 23 bits + sign = 24.
# Partial sums hold the longest reduction a 12-bit descriptor states, 15 * 15 * 4095 = 921375
# products: 921375 * 2**14 = 15095808000 in [2**33, 2**34) -> 34 bits + sign = 35; the psum
# buffer is the ofmap KiB again at 4 x 35 bits a word: 8192 / 140 = 58.5 -> 58 words.
# An activation beat is the 64-bit bus word: 64 / 8 = 8 activations (1024 is a multiple of 8).
# Depthwise mode (array.depthwise channel_parallel, the default): min(cols 4, beat 8) = 4 channels.
SMALL = TopGeometry(pe="mac", bits=8, rows=4, cols=4, lanes=1, max_shift=7, max_steps=292,
                    acc_bits=24, bias_bits=32, dim_bits=12, act_words=1024, weight_words=292,
                    param_words=32, out_words=256, psum_words=58, act_beat=8, dw_lanes=4)


def test_top_geometry_by_hand():
    geo = top_geometry(small())
    assert geo == SMALL
    assert geo.word_bits == {"act_words": 8, "weight_words": 32, "param_words": 216, "out_words": 32}
    assert geo.positions == 292
    assert (geo.max_positions, geo.psum_bits) == (921375, 35)


def test_top_geometry_explicit_max_steps():
    # max_steps 64: the ratio stays 9, so the depths are those above; acc 64 * 2**14 = 2**20 -> 22
    geo = top_geometry(small(rtl=RtlConfig(max_steps=64)))
    assert (geo.max_steps, geo.weight_words, geo.param_words, geo.acc_bits) == (64, 292, 32, 22)
    # max_steps 4 (< 9): one parameter word per 4 weight words: 16384 / (32 + 216 / 4) = 16384 / 86
    # = 190.5 -> 190, parameters 190 // 4 = 47; acc 4 * 2**14 = 2**16 -> 18 bits
    geo = top_geometry(small(rtl=RtlConfig(max_steps=4)))
    assert (geo.max_steps, geo.weight_words, geo.param_words, geo.acc_bits) == (4, 190, 47, 18)
    # a wider bias: parameter lane 40 + 16 + 6 = 62, word 248; 16384 / (32 + 248 / 9) = 275.1
    geo = top_geometry(small(rtl=RtlConfig(bias_bits=40)))
    assert (geo.weight_words, geo.param_words, geo.max_steps, geo.bias_bits) == (275, 30, 275, 40)


def test_top_geometry_acc_bits_given():
    assert top_geometry(small(acc_bits=24)).acc_bits == 24  # exactly enough
    assert top_geometry(small(acc_bits=32)).acc_bits == 32  # wider is kept


def test_top_geometry_shift_and_xnor_by_hand():
    # shift, P = 7: weight lane = 3 bits of p + sign + zero = 5, word 20; max_steps 64:
    # 16384 / (20 + 216 / 9) = 16384 / 44 = 372.4 -> 372, params 41; acc 64 * 2**(7+7) = 2**20 -> 22
    geo = top_geometry(small(pe="shift", rtl=RtlConfig(max_steps=64)))
    assert (geo.weight_words, geo.param_words, geo.acc_bits) == (372, 41, 22)
    assert geo.word_bits["weight_words"] == 20
    # P = 3: lane 2 + 2 = 4, word 16: 16384 / 40 = 409.6 -> 409, params 45; acc 64 * 2**10 -> 18
    geo = top_geometry(small(pe="shift", max_shift=3, rtl=RtlConfig(max_steps=64)))
    assert (geo.weight_words, geo.param_words, geo.acc_bits, geo.max_shift) == (409, 45, 18, 3)
    # xnor, 2 x 2, 8 lanes, max_steps 16 -> 128 positions. Words: act 8 bits -> 8192 / 8 = 1024;
    # weight 2 x 8 = 16; parameter lane: threshold in [-129, 129] (9 bits signed) + negate = 10,
    # word 20; out lane: dot in [-128, 128] (9 bits), word 18. Weight 8192 / (16 + 20 / 9)
    # = 449.6 -> 449, params 449 // 9 = 49; out 8192 / 18 = 455.1 -> 455; the accumulator counts
    # [0, 128]: 8 bits unsigned.
    xnor = Accelerator(pe="xnor", bits=1, array=ArrayConfig(rows=2, cols=2, lanes=8),
                       memory=MemoryConfig(ifmap_sram_kib=1, weight_sram_kib=1, ofmap_sram_kib=1),
                       rtl=RtlConfig(max_steps=16))
    geo = top_geometry(xnor)
    assert (geo.lanes, geo.positions, geo.acc_bits) == (8, 128, 8)
    assert geo.words == {"act_words": 1024, "weight_words": 449, "param_words": 49, "out_words": 455}
    assert geo.word_bits == {"act_words": 8, "weight_words": 16, "param_words": 20, "out_words": 18}
    assert (geo.act_beat, geo.act_beat_bits) == (8, 64)  # eight 8-lane words a 64-bit beat


def test_act_beat_by_hand():
    # the most activation words a bus word holds, a power of two, at most the buffer's depth
    assert act_beat(64, 8, 1024) == 8 and act_beat(256, 8, 1024) == 32 and act_beat(512, 8, 1024) == 64
    assert act_beat(64, 6, 1024) == 8  # 64 // 6 = 10 -> 8
    assert act_beat(64, 16, 1024) == 4 and act_beat(64, 64, 1024) == 1  # xnor, 64 lanes
    assert act_beat(64, 128, 1024) == 1  # a word wider than the bus: one a beat
    assert act_beat(64, 8, 6) == 4  # a 6-word buffer: 4
    # top_geometry rounds the buffer down to whole beats: 0.6 KiB = 4915.2 bits / 8 = 614 -> 608
    geo = top_geometry(small(memory=MemoryConfig(ifmap_sram_kib=0.6, weight_sram_kib=2, ofmap_sram_kib=1)))
    assert (geo.act_beat, geo.act_words) == (8, 608)
    wide = top_geometry(small(rtl=RtlConfig(bus_bits=128)))
    assert (wide.act_beat, wide.act_words, wide.act_beat_bits) == (16, 1024, 128)
    assert (wide.act_beats(108), SMALL.act_beats(108), SMALL.act_beats(8)) == (7, 14, 1)


def test_param_fields_by_hand():
    assert param_fields("mac", bias_bits=32, positions=9) == {
        "bias": (32, True), "mult": (16, True), "shift": (6, False)}
    # threshold in [-(K+1), K+1] = [-577, 577]: 577 < 2**10 -> 10 bits + sign
    assert param_fields("xnor", bias_bits=32, positions=576) == {"threshold": (11, True), "negate": (1, False)}


def test_top_geometry_auto_max_steps_caps_at_4608():
    # 64 KiB weight SRAM on the 4-column int8 top: 524288 / 56 = 9362 words > 4608 -> 4608
    geo = top_geometry(small(memory=MemoryConfig(weight_sram_kib=64)))
    assert (geo.max_steps, geo.weight_words, geo.param_words) == (4608, 9362, 1040)
    # 4608 * 2**14 = 9 * 2**23 in [2**26, 2**27) -> 28 bits
    assert geo.acc_bits == 28


@pytest.mark.parametrize("kib, steps", [
    # 0.05 KiB = 409.6 bits: at 4608 steps 409.6 / 56 = 7.3 -> 7 words; a 7-step fold shares each
    # parameter word with 7 weight words: 409.6 / (32 + 216 / 7) = 6.5 -> 6 < 7; 6 steps:
    # 409.6 / (32 + 36) = 6.02 -> 6 fits
    (0.05, 6),
    # 0.035 KiB = 286.72 bits: 5 words at 4608; 5 -> 3.8, 4 -> 3.3, 3 -> 2.8 too few;
    # 2 steps: 286.72 / (32 + 108) = 2.05 -> 2 fits
    (0.035, 2),
])
def test_auto_max_steps_in_a_tiny_weight_buffer(kib, steps):
    geo = top_geometry(small(memory=MemoryConfig(ifmap_sram_kib=1, weight_sram_kib=kib, ofmap_sram_kib=1)))
    assert (geo.max_steps, geo.weight_words, geo.param_words) == (steps, steps, 1)


# --- every ConfigError of top_geometry ----------------------------------------------------------

@pytest.mark.parametrize("make, message", [
    (lambda: small(array=ArrayConfig(rows=4, cols=4, dataflow="ws")),
     r"`array\.dataflow` 'ws': the generated RTL is output-stationary; use os \(--dataflow os\)"),
    (lambda: small(bits=17),
     r"`bits` of 17: the integer quantizers and the generated hardware support 2 to 16-bit operands, not 17"),
    (lambda: small(bits=1), r"the mac datapath supports 2 to 32-bit operands, not 1"),
    (lambda: Accelerator(pe="xnor", bits=1, array=ArrayConfig(lanes=48)),
     r"`array\.lanes` must be a power of two for the generated xnor top, not 48"),
    (lambda: small(pe="shift", max_shift=17),
     r"`max_shift` must be at most 16 for the generated shift PE, not 17"),
    (lambda: small(rtl=RtlConfig(max_steps=4608)),
     r"`memory\.weight_sram_kib` of 2 holds 292 weight words, fewer than one fold of "
     r"`rtl\.max_steps`=4608; enlarge it or lower rtl\.max_steps"),
    # 64 rows; out word 4 x 8 = 32 bits; 1/16 KiB = 512 bits -> 16 words
    (lambda: small(array=ArrayConfig(rows=64, cols=4), memory=MemoryConfig(ofmap_sram_kib=0.0625)),
     r"`memory\.ofmap_sram_kib` of 0\.0625 holds 16 output words, fewer than one fold of 64 rows; enlarge it"),
    (lambda: small(acc_bits=23),
     r"`acc_bits` of 23 cannot hold a mac fold of `rtl\.max_steps`=292 steps; it needs at least 24 "
     r"\(or lower rtl\.max_steps\)"),
])
def test_top_geometry_refuses(make, message):
    with pytest.raises(ConfigError, match="^" + message + "$"):
        top_geometry(make())


def test_top_geometry_ignores_knobs_of_other_kinds():
    # lanes only matter to xnor, max_shift only to shift
    assert top_geometry(small(array=ArrayConfig(rows=4, cols=4, lanes=48, fold_overlap=False), max_shift=17)) == \
        dataclasses.replace(SMALL, max_shift=17)
    assert top_geometry(small(pe="shift", max_shift=16, rtl=RtlConfig(max_steps=8))).max_shift == 16


# --- plan ----------------------------------------------------------------------------------------

def test_plan_conv3x3_by_hand():
    # 3 -> 6 channels, 6 x 6, k3 p1: out 6 x 6; NT = ceil(6 / 4) = 2 tiles; CW = 3; KS = 9 * 3 = 27;
    # 36 pixels in ceil(36 / 4) = 9 row tiles; folds 9 * 1 * 2 = 18
    p = plan(SMALL, LayerShape(True, 3, 6, 6, 6, (3, 3), (1, 1), (1, 1)))
    assert (p.groups, p.in_ch, p.out_ch, p.out_h, p.out_w) == (1, 3, 6, 6, 6)
    assert (p.tiles, p.channel_words, p.steps, p.row_tiles, p.folds) == (2, 3, 27, 9, 18)
    # act 6 * 6 * 3 = 108; weights 2 tiles * 27; 2 parameter words; out 18 folds * 4 rows
    assert p.words(4) == {"act_words": 108, "weight_words": 54, "param_words": 2, "out_words": 72}
    assert p.descriptor() == {"in_h": 6, "in_w": 6, "out_h": 6, "out_w": 6, "in_ch": 3, "out_ch": 6,
                              "groups": 1, "kernel_h": 3, "kernel_w": 3, "stride_h": 1, "stride_w": 1,
                              "pad_h": 1, "pad_w": 1}


def test_plan_depthwise_by_hand():
    # 8 groups of 1 -> 1, 5 x 5, k3 s2 p1: out (5 + 2 - 3) // 2 + 1 = 3; 1 tile, CW 1, KS 9;
    # 9 pixels -> 3 row tiles; folds 3 * 8 * 1 = 24
    shape = LayerShape(True, 8, 8, 5, 5, (3, 3), (2, 2), (1, 1), groups=8)
    p = plan(dataclasses.replace(SMALL, dw_lanes=0), shape)  # a top without the depthwise mode
    assert (p.groups, p.in_ch, p.out_ch, p.out_h, p.out_w, p.depthwise) == (8, 1, 1, 3, 3, 0)
    assert (p.tiles, p.channel_words, p.steps, p.row_tiles, p.folds) == (1, 1, 9, 3, 24)
    # act 8 * 25 * 1 = 200; weights 8 * 9; 8 parameter words; out 24 * 4
    assert p.words(4) == {"act_words": 200, "weight_words": 72, "param_words": 8, "out_words": 96}
    # channel-parallel, 4 channels a fold: 2 fold groups of 4; 3 row tiles x 2 = 6 folds; the
    # activations channels-last over 2 x 4 slots (200 words again), 2 x 9 weight words, 2
    # parameter words, 6 x 4 out words; the descriptor states 2 groups of one channel, depthwise
    p = plan(SMALL, shape)
    assert (p.groups, p.depthwise, p.fold_groups, p.folds, p.steps) == (8, 4, 2, 6, 9)
    assert p.words(4) == {"act_words": 200, "weight_words": 18, "param_words": 2, "out_words": 24}
    assert (p.descriptor()["groups"], p.descriptor()["in_ch"], p.k_fields()["depthwise"]) == (2, 1, 1)
    # word of channel 6 at input pixel (1, 2): pixel 1 * 5 + 2 = 7, 8 slots a pixel: 7 * 8 + 6
    assert p.act_index(6, 0, 1, 2) == 62
    # lane 2 of fold group 1 is channel 4 + 2; of 6 channels, lane 3 of fold group 1 is padding
    assert p.lane_channel(1, 0, 2, 4) == 6
    six = plan(SMALL, LayerShape(True, 6, 6, 5, 5, (3, 3), groups=6))
    assert (six.lane_channel(1, 0, 1, 4), six.lane_channel(1, 0, 2, 4), six.words(4)["act_words"]) == (5, None, 200)


def test_plan_linear_by_hand():
    # 64 -> 10: a 1 x 1 conv on 1 x 1; NT = 3, CW = KS = 64, one row tile, 3 folds
    layer = Layer("fc", "linear", 64, 1, 1, 10, 1, 1)
    shape = LayerShape.of_layer(layer)
    assert shape == LayerShape(False, 64, 10)
    p = plan(SMALL, shape)
    assert (p.tiles, p.channel_words, p.steps, p.row_tiles, p.folds, p.out_h, p.out_w) == (3, 64, 64, 1, 3, 1, 1)
    assert p.words(4) == {"act_words": 64, "weight_words": 192, "param_words": 3, "out_words": 12}


def test_plan_xnor_words():
    geo = top_geometry(Accelerator(pe="xnor", bits=1, array=ArrayConfig(rows=2, cols=2, lanes=8),
                                   memory=MemoryConfig(ifmap_sram_kib=1, weight_sram_kib=1,
                                                       ofmap_sram_kib=1), rtl=RtlConfig(max_steps=16)))
    # 20 channels in words of 8 lanes: CW = 3; 1 x 1 on 3 x 3: KS = 3; NT = ceil(5 / 2) = 3;
    # 9 pixels -> 5 row tiles of 2
    p = plan(geo, LayerShape(True, 20, 5, 3, 3))
    assert (p.channel_words, p.steps, p.tiles, p.row_tiles) == (3, 3, 3, 5)
    assert p.words(2) == {"act_words": 27, "weight_words": 9, "param_words": 3, "out_words": 30}


@pytest.mark.parametrize("shape, message", [
    (LayerShape(True, 6, 4, 5, 5, groups=4), r"6 -> 4 channels do not split into 4 groups"),
    (LayerShape(True, 4, 6, 5, 5, groups=4), r"4 -> 6 channels do not split into 4 groups"),
    (LayerShape(True, 1, 1, 2, 2, (3, 3)), r"kernel 3 \(dilation 1\) is larger than the padded input 2"),
    (LayerShape(True, 1, 1, 4, 1, (1, 3), padding=(0, 0)),
     r"kernel 3 \(dilation 1\) is larger than the padded input 1"),
    (LayerShape(True, 1, 1, 4096, 1), r"`in_h` of 4096 does not fit the descriptor's 12-bit field; raise rtl\.dim_bits"),
    (LayerShape(False, 1, 4096), r"`out_ch` of 4096 does not fit the descriptor's 12-bit field; raise rtl\.dim_bits"),
    (LayerShape(True, 1, 1, 16, 16, (16, 1)), r"`kernel_h` of 16 does not fit the descriptor's 4-bit field"),
    (LayerShape(True, 1, 1, 20, 20, stride=(1, 16)), r"`stride_w` of 16 does not fit the descriptor's 4-bit field"),
    (LayerShape(True, 1, 1, 2, 2, padding=(16, 0)), r"`pad_h` of 16 does not fit the descriptor's 4-bit field"),
    # 300 channel words > max_steps 292
    (LayerShape(False, 300, 4),
     r"a fold of 300 steps exceeds rtl\.max_steps=292; raise rtl\.max_steps and memory\.weight_sram_kib"),
    # 64 channels on 5 x 5: 1600 activation words > 1024
    (LayerShape(True, 64, 4, 5, 5),
     r"layer needs 1600 act buffer words, the buffer holds 1024; enlarge memory\.ifmap_sram_kib"),
    # 100 -> 10: 3 tiles x 100 steps = 300 weight words > 292
    (LayerShape(False, 100, 10),
     r"layer needs 300 weight buffer words, the buffer holds 292; enlarge memory\.weight_sram_kib"),
    # 1 -> 132: 33 tiles, 33 weight words but 33 parameter words > 32
    (LayerShape(False, 1, 132),
     r"layer needs 33 param buffer words, the buffer holds 32; enlarge memory\.weight_sram_kib"),
    # 1 -> 4 on 32 x 32: 1024 activations fit exactly; 256 folds x 4 rows = 1024 out words > 256
    (LayerShape(True, 1, 4, 32, 32),
     r"layer needs 1024 out buffer words, the buffer holds 256; enlarge memory\.ofmap_sram_kib"),
])
def test_plan_does_not_fit(shape, message):
    with pytest.raises(DoesNotFit, match="^" + message + "$"):
        plan(SMALL, shape)


def test_plan_limits_are_inclusive():
    # exactly max_steps, exactly the buffers, a 15 kernel and 4095 channels are accepted
    assert plan(SMALL, LayerShape(False, 292, 4)).steps == 292
    # 4 channels on 16 x 16: 1024 activation words; 64 row tiles x 4 rows = 256 out words
    assert plan(SMALL, LayerShape(True, 4, 4, 16, 16)).words(4) == {
        "act_words": 1024, "weight_words": 4, "param_words": 1, "out_words": 256}
    # 32 tiles of 1 step: 32 parameter words
    assert plan(SMALL, LayerShape(False, 1, 128)).words(4)["param_words"] == 32
    assert plan(SMALL, LayerShape(True, 1, 1, 15, 15, (15, 15))).out_h == 1
    roomy = dataclasses.replace(SMALL, act_words=4096, out_words=4096)
    assert plan(roomy, LayerShape(True, 1, 1, 4095, 1)).in_h == 4095  # 2**12 - 1
    # a narrower descriptor refuses what the default one takes
    with pytest.raises(DoesNotFit, match=r"^`in_ch` of 64 does not fit the descriptor's 6-bit field"):
        plan(dataclasses.replace(SMALL, dim_bits=6), LayerShape(False, 64, 4))


# --- rtl_timing on the planned layer -------------------------------------------------------------

def test_layer_cycles_closed_form():
    # The 3x3 conv of test_plan_conv3x3_by_hand on small(): G = 1, NT = 2, KS = 27, folds 18.
    #   descriptor   1
    #   load_weights G * NT * (1 + KS) = 2 * 28 = 56
    #   load_acts    ceil(G * in_h * in_w * CW / 8) = ceil(6 * 6 * 3 / 8) = ceil(108 / 8) = 14
    #   fold         2 * rows + cols + KS - 2 + 2 pipeline = 8 + 4 + 27 = 39
    #   compute      rows + 4 + folds * fold = 4 + 4 + 18 * 39 = 710 (walk, the operand fetch's
    #                four stages: the step's addresses, the read, the register behind it, the row's)
    #   drain        4 output stages + 1 = 5
    #   store        2 + folds * rows = 2 + 72 = 74 (the read, the register behind it)
    layer = Layer("c", "conv", 3, 6, 6, 6, 6, 6, kernel=(3, 3), padding=(1, 1))
    #   hand         1 (the take the cycle after the last load beat)
    #   geometry_wait max(0, 5 - (56 + 14)) = 0
    want = {"descriptor": 1, "load_weights": 56, "load_acts": 14, "hand": 1, "geometry_wait": 0, "load_resid": 0,
            "compute": 710, "drain": 5,
            "store": 74, "total": 1 + 56 + 14 + 1 + 710 + 5 + 74, "folds": 18, "fold_cycles": 39}
    assert layer_cycles(layer, small()) == {**want, "tiles": 1}
    assert plan_cycles(SMALL, plan(SMALL, LayerShape.of_layer(layer))) == want
    # With fold overlap (the default array): n = G * NT = 2 folds a row tile, 9 row tiles, K = 27
    # >= rows, so every fold's last beat comes K = 27 after the one before (the next row tile's
    # pixels are walked, 4 cycles, while its row tile's 54 steps issue; the 4 rows' words of a
    # step, 3 channels a pixel, span at most 4 consecutive buffer words of 8: 4 of the 5 banks,
    # one cycle of service): counting from the first step's issue (0), the last fold's last
    # step is issued at 26 + 17 * 27 = 485, so its beat comes 485 after the first beat, and the
    # last row 2 * 4 + 4 + 1 = 13 later (skew, pipeline, drain register, rows), plus one: 499;
    # compute 4 + 4 + 499 = 507 -- the model's (18 - 1) * 27 + 39 = 498, the drain register's
    # cycle and the operand fetch's stages
    overlap = small(array=ArrayConfig(rows=4, cols=4))
    assert layer_cycles(layer, overlap) == {**want, "compute": 507, "total": 1 + 56 + 14 + 1 + 507 + 5 + 74,
                                            "tiles": 1}


def test_residual_layer_loads_its_shortcut():
    """The 3x3 conv above with a residual: RESID loads one out word per out buffer word, 18 folds
    x 4 rows = 72 beats, and nothing else changes; an xnor top has no residual add."""
    shape = LayerShape(True, 3, 6, 6, 6, (3, 3), (1, 1), (1, 1), residual=True)
    got = plan_cycles(SMALL, plan(SMALL, shape))
    assert (got["load_resid"], got["total"]) == (72, 1 + 56 + 14 + 1 + 72 + 710 + 5 + 74)
    assert plan(SMALL, shape).k_fields()["residual"] == 1
    xnor = dataclasses.replace(SMALL, pe="xnor", bits=1, lanes=8)
    with pytest.raises(DoesNotFit, match=r"^a residual add needs a requantizing top \(mac, adder, shift\), not xnor$"):
        plan(xnor, shape)


def test_layer_cycles_depthwise_closed_form():
    # depthwise of test_plan_depthwise_by_hand, one group per fold (array.depthwise gemm): G = 8,
    # NT = 1, KS = 9, folds 24, fold 8 + 4 + 9 = 21; activations 8 * 5 * 5 = 200 words, 25 beats of 8
    layer = Layer("d", "conv", 8, 5, 5, 8, 3, 3, kernel=(3, 3), stride=(2, 2), padding=(1, 1), groups=8)
    got = layer_cycles(layer, small(array=ArrayConfig(rows=4, cols=4, depthwise="gemm", fold_overlap=False)))
    assert got == {"descriptor": 1, "load_weights": 8 * 1 * (1 + 9), "load_acts": 25, "hand": 1,
                   "geometry_wait": 0, "load_resid": 0,
                   "compute": 4 + 4 + 24 * 21, "drain": 5, "store": 2 + 24 * 4,
                   "total": 1 + 80 + 25 + 1 + 512 + 5 + 98, "folds": 24, "fold_cycles": 21, "tiles": 1}
    # with fold overlap: 2 fold groups of 4 channels, 8 slots a pixel = one buffer word, so row
    # r reads word iy * 5 + ix in bank (iy * 5 + ix) mod 5 = ix (5 banks for 4 rows): rows of
    # one row tile on two output lines with the same ix conflict. Row tile 0 (pixels (0, 0),
    # (0, 1), (0, 2), (1, 0); ix0 = -1, 1, 3, -1): rows 0 and 3 both inside at ky, kx >= 1, 2
    # cycles at 4 of 9 steps: folds of 13, steps 1,1,1,1,2,2,1,2,2. Row tile 1 ((1, 1), (1, 2),
    # (2, 0), (2, 1); ix0 = 1, 3, -1, 1; iy0 = 1, 1, 3, 3): rows 0 and 3 at ky <= 1, folds of
    # 15. Row tile 2 (one pixel): 9. Counting from the first issue (0): the steps complete back
    # to back, a fold's last no sooner than 4 after the one before: tile 0's folds end at 13
    # and 26; its last step is issued at 23 (its issue waits while the request register holds
    # the step before: I_s = max(I_(s-1), E_(s-2)) + 1, E_15 = 22), the walk long done: swapped
    # at 23, tile 1's first issue at max(23, E_16 = 24) + 1 = 25, served from 27, its folds
    # ending at 26 + 15 = 41 and 56; its last issue at max(25 + 17, E_15 + 1 = 55) = 55, tile
    # 2's first at 56, its folds ending at 65 and 74. A one-cycle step's beat comes 4 after
    # its issue, 3 after its completion: the last beat at 77, 74 after a first one-cycle beat
    # (at 4) would be; the last row rows + 4 = 8 later (every PE's sum complete together one
    # edge register + 3 after the last beat, then the drain register and the rows, no
    # deskew): array 74 + 8 = 82; compute 4 + 4 + 82 = 90 (without the conflicts, 20 fewer)
    got = layer_cycles(layer, small(array=ArrayConfig(rows=4, cols=4)))
    assert (got["compute"], got["folds"]) == (90, 6)
    # channel-parallel (the default): 2 fold groups of 4 channels, 6 folds of the same 21 cycles
    got = layer_cycles(layer, small())
    assert got == {"descriptor": 1, "load_weights": 2 * (1 + 9), "load_acts": 25, "hand": 1, "geometry_wait": 0,
                   "load_resid": 0, "compute": 4 + 4 + 6 * 21, "drain": 5, "store": 2 + 6 * 4,
                   "total": 1 + 20 + 25 + 1 + 134 + 5 + 26, "folds": 6, "fold_cycles": 21, "tiles": 1}


def test_layer_too_large_runs_as_channel_tiles():
    # 100 -> 10 linear: 3 column tiles x 100 steps = 300 weight words > 292, so it runs as tiles of
    # output channels, a multiple of cols = 4: 8 (200 words) fits, 10 does not. Tiles 0-7 and 8-9,
    # each loading the 100 activations in ceil(100 / 8) = 13 beats:
    #   tile 0-7: NT 2, KS 100, folds 2, fold 2 * 4 + 4 + 100 - 2 + 2 = 112: 1 + 2 * 101 + 13
    #             + 1 (HAND) + (4 + 4 + 2 * 112) + 5 + (2 + 2 * 4) = 464
    #   tile 8-9: NT 1, folds 1: 1 + 101 + 13 + 1 + (4 + 4 + 112) + 5 + (2 + 4) = 247
    # Run one after another, tiles of 4, 4 and 2 channels would take 3 x 247 = 741, but with the
    # overlap they are fastest: each loads 101 + 13 = 114 beats and runs (4 + 4 + 112) + 5 = 125
    # cycles from its take, storing 2 + 4 = 6. Tile 0 is taken at 115 (the cycle after its last
    # load beat), out of FLUSH at 240; tile 1 (descriptor at 116, loads done at 230) is taken at
    # 241, out at 366; tile 2 (at 242, done at 356) taken at 367, out at 492, stored by 498: 499
    # cycles. (Tiles of 8 and 2: the first taken at 216, out at 453; the second, loaded by 331,
    # taken at 454, out at 579, stored by 585: 586.)
    got = layer_cycles(Layer("fc", "linear", 100, 1, 1, 10, 1, 1), small())
    assert (got["tiles"], got["total"], got["load_acts"], got["folds"]) == (3, 499, 39, 3)


def test_linear_over_rows_runs_as_a_1x1_conv() -> None:
    """A linear layer over 10 tokens is a 1x1 conv over a 10 x 1 input: on a 4x4 top its 10
    output pixels are ceil(10 / 4) = 3 row tiles, the activations 10 pixel words."""
    tokens = Layer(name="fc", op="linear", in_ch=8, in_h=1, in_w=1, out_ch=4, out_h=1, out_w=1,
                   batch=10, pe="mac")
    shape = LayerShape.of_layer(tokens)
    assert (shape.conv, shape.in_h, shape.in_w, shape.kernel) == (True, 10, 1, (1, 1))
    p = plan(SMALL, shape)
    assert (p.row_tiles, p.tiles, p.steps, p.words(4)["act_words"]) == (3, 1, 8, 10 * 8)


def test_buffer_without_one_word_is_refused() -> None:
    """0.0005 KiB = 4.1 bits cannot hold one 8-bit activation word (it was rounded up to one)."""
    tiny = dataclasses.replace(small(), memory=MemoryConfig(ifmap_sram_kib=0.0005, weight_sram_kib=2,
                                                            ofmap_sram_kib=1))
    with pytest.raises(ConfigError, match=r"^`memory\.ifmap_sram_kib` of 0\.0005 KiB holds no 8-bit "
                                          r"word of the generated top; enlarge it$"):
        top_geometry(tiny)


def test_store_overlaps_the_next_tile() -> None:
    """Tiles back to back (hwsim.rtl_timing.overlapped_total), worked by hand on small():
    A, the closed-form 3x3 conv (70 load beats after its descriptor, taken the cycle after the
    last, a run of 710 + 5 = 715 from the take to the end of FLUSH, S = 74), and B, a 4 -> 4
    linear layer (KS 4, one fold of 2 * 4 + 4 + 4 - 2 + 2 = 16: 6 load beats, a run of
    (4 + 4 + 16) + 5 = 29, S = 2 + 4 = 6).
      A then B: A's last load beat at 70, taken at 71, leaves FLUSH at 786 and is stored by
                860; B (descriptor at 72, loads done at 78) is taken at 787, leaves FLUSH at 816
                and waits for the engine until 860; B's last result at 866: 867 (not 904).
      B then A: B is taken at 7, leaves FLUSH at 36, stored by 42; A's descriptor at 8, loads
                done at 78, taken at 79, FLUSH left at 794, stored by 868: 869 (not 904).
      A then A: the second A (descriptor at 72, loads done at 142) is taken at 787 and leaves
                FLUSH at 1502, after the first's store (860): stored by 1576: 1577 (not 1722)."""
    a = plan(SMALL, LayerShape(True, 3, 6, 6, 6, (3, 3), (1, 1), (1, 1)))
    b = plan(SMALL, LayerShape(False, 4, 4))
    assert [plan_cycles(SMALL, p)["total"] for p in (a, b)] == [787 + 74, 37 + 6]
    assert overlapped_total(SMALL, [a, b]) == 867
    assert overlapped_total(SMALL, [b, a]) == 869
    assert overlapped_total(SMALL, [a, a]) == 1577
    assert overlapped_total(SMALL, [a]) == 861  # one tile: D + S
