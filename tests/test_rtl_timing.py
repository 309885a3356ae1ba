"""hwsim.rtl_timing: the closed form, written out by hand for small layers (the RTL is held to it
in test_rtl_top)."""

from __future__ import annotations

import pytest

from hwsim.accelerator import Accelerator, ArrayConfig, MemoryConfig, RtlConfig
from hwsim.errors import ConfigError, DoesNotFit, HwsimError
from hwsim.rtl_timing import layer_cycles
from hwsim.workload import Layer


def acc(pe: str = "mac", rows: int = 2, cols: int = 2, lanes: int = 64, depthwise: str = "channel_parallel",
        overlap: bool = False) -> Accelerator:
    """A top on a ``rows x cols`` array, naive (each fold fills and drains) unless ``overlap``."""
    return Accelerator(pe=pe, bits=1 if pe == "xnor" else 8,
                       array=ArrayConfig(rows=rows, cols=cols, lanes=lanes, depthwise=depthwise,
                                         fold_overlap=overlap))


def test_layer_cycles_conv3x3() -> None:
    # 3x5x5 -> 5x5x5, k3 p1 on 2x2: KS = 27, NT = 3, 13 row tiles, 39 folds of 2*2+2+27 = 33;
    # 75 activations, 8 a beat (the 64-bit bus word): 10 beats.
    layer = Layer("c", "conv", 3, 5, 5, 5, 5, 5, kernel=(3, 3), padding=(1, 1))
    got = layer_cycles(layer, acc())
    # hand: 1 (the take the cycle after the last load beat); geometry_wait: 0 (94 load beats,
    # more than the geometry's 5 cycles); compute: the first row tile's walk (2), the operand
    # fetch's four stages (4: the step's addresses, the read, the register behind the block RAM,
    # the row's register), the folds
    assert got == {"descriptor": 1, "load_weights": 3 * 28, "load_acts": 10, "hand": 1, "geometry_wait": 0,
                   "load_resid": 0, "compute": 2 + 4 + 39 * 33, "drain": 5, "store": 2 + 39 * 2,
                   "total": 1 + 84 + 10 + 1 + 1293 + 5 + 80, "folds": 39, "fold_cycles": 33, "tiles": 1}


def test_layer_cycles_depthwise_xnor_linear() -> None:
    dw = Layer("d", "conv", 4, 6, 6, 4, 3, 3, kernel=(3, 3), stride=(2, 2), padding=(1, 1), groups=4)
    got = layer_cycles(dw, acc(rows=4, cols=4, depthwise="gemm"))
    # one group per fold: KS = 9, NT = 1, 3 row tiles of 4 pixels; fold = 8 + 4 + 9; 144
    # activations in 18 beats; HAND's cycle
    assert (got["folds"], got["fold_cycles"], got["load_weights"], got["load_acts"]) == (12, 21, 40, 18)
    assert got["total"] == 1 + 40 + 18 + 1 + (4 + 4 + 12 * 21) + 5 + (2 + 12 * 4)
    # channel-parallel (the default): the 4 channels side by side on the 4 columns, one fold per
    # row tile: 3 folds, one parameter and 9 weight words; the same 36 pixels x 4 channel slots
    got = layer_cycles(dw, acc(rows=4, cols=4))
    assert (got["folds"], got["fold_cycles"], got["load_weights"], got["load_acts"]) == (3, 21, 10, 18)
    assert got["total"] == 1 + 10 + 18 + 1 + (4 + 4 + 3 * 21) + 5 + (2 + 3 * 4)
    # xnor: 70 channels in words of 64 lanes -> 2 words per pixel, KS = 2; a 64-bit word a beat
    fc = Layer("f", "linear", 70, 1, 1, 3, 1, 1)
    got = layer_cycles(fc, acc("xnor"))
    assert (got["load_acts"], got["fold_cycles"], got["folds"]) == (2, 2 * 2 + 2 + 2, 2)


def test_layer_cycles_fold_overlap_walk_not_hidden() -> None:
    # 1 -> 2 channels 1x1 on 4x4, 2x2 array with fold overlap: one fold of one step per row
    # tile, 8 row tiles. Counting issues from the first step's (0), each beat 4 cycles after
    # its issue (the two rows' pixels are one buffer word: one cycle of service): the next row
    # tile's 2 pixels are walked in 0-1 (the walker shows them complete at 2) and swapped in at
    # 2, its step issued at 3 (completing at 4 >= 1 + rows): a row tile every rows + 1 = 3
    # cycles, the last issue at 7 * 3 = 21, so the last beat 21 after the first and the last
    # row 1 + 1 + 2 + 1 + 1 + 1 = 7 after that, plus one: array 29; compute = walk 2 + fetch 4
    # + 29 = 35 (the analytic model: 7 * max(1, 2) + 7 = 21); after the four load beats (a
    # parameter, a weight and two of the 16 activations, 8 a beat), HAND's cycle and a wait of 2
    # for the geometry's 6 cycles
    layer = Layer("c", "conv", 1, 4, 4, 2, 4, 4)
    got = layer_cycles(layer, acc(overlap=True))
    assert (got["folds"], got["compute"], got["load_acts"], got["hand"], got["geometry_wait"]) == (8, 35, 2, 1, 2)
    assert got["total"] == 1 + (1 + 1) + 2 + 1 + 2 + 35 + 5 + (2 + 8 * 2)


def test_layer_too_large_runs_as_row_tiles() -> None:
    # An ifmap buffer of 1/16 KiB = 512 bits holds 64 8-bit words; the 3x5x5 input needs 75, so the
    # 3x3 pad-1 conv runs as row tiles. Output rows r0..r1-1 read input rows r0 - 1 .. r1 clipped
    # to the input (the clipped row is padding: the top one kept as the tile's padding, the bottom
    # one read as zeros past the tile's last row), 15 words a row. Three rows: rows 0-2 read 0-3
    # (60 words, 8 beats of 8) and rows 3-4 read 2-4 (45, 6 beats); four rows would read 0-4 (75).
    # 2x2 array, KS 27, fold 2 * 2 + 2 + 27 - 2 + 2 = 33, one column tile:
    #   rows 0-2: 15 pixels, 8 folds: 1 + 28 + 8 + 1 + (2 + 4 + 8 * 33) + 5 + (2 + 8 * 2) = 331
    #   rows 3-4: 10 pixels, 5 folds: 1 + 28 + 6 + 1 + (2 + 4 + 5 * 33) + 5 + (2 + 5 * 2) = 224
    # The run side takes tile 0 the cycle after its last load beat (36), at 37, and leaves its
    # FLUSH at 37 + 275 = 312; tile 1's descriptor comes at 38, its 34 loads end at 72 and wait;
    # the run side takes it at 313, leaves FLUSH at 313 + 176 = 489 (tile 0's store, 312 + 18 =
    # 330, is long over) and stores it by 489 + 12 = 501: 502 cycles.
    tiny = Accelerator(array=ArrayConfig(rows=2, cols=2, fold_overlap=False), memory=MemoryConfig(ifmap_sram_kib=0.0625))
    wide = Layer("w", "conv", 3, 5, 5, 2, 5, 5, kernel=(3, 3), padding=(1, 1))
    got = layer_cycles(wide, tiny)
    assert (got["tiles"], got["load_acts"], got["total"]) == (2, 8 + 6, 502)


def test_layer_cycles_k_tiles() -> None:
    # 600 channels x 3x3 = 5400 steps per fold, more than the 4608 the default top is sized for:
    # K tiles of at most 4608 // 9 = 512 channels, ceil(600 / 512) = 2 of 300 channels, 2700
    # steps each. 3x3 output on a 2x2 array: 5 row tiles, one output tile, 5 folds of
    # 2 * 2 + 2 + 2700 - 2 + 2 = 2706 cycles; 10 psum words. Each K tile loads one parameter
    # word, 2700 weight words and 3 * 3 * 300 = 2700 activation words in ceil(2700 / 8) = 338 beats:
    #   first (writes psums, stores nothing): 1 + 2701 + 338 + 1 + (2 + 4 + 5 * 2706) + 5 = 16582
    #   last (adds psums, stores 5 folds x 2 rows): 16582 + (2 + 10) = 16594
    # Overlapped: the first's run (13541 cycles from the take at 3040, the cycle after its last
    # load beat) leaves FLUSH at 16581; the last's loads end at 3041 + 3039 = 6080 and wait;
    # taken at 16582, FLUSH left at 16582 + 13541 = 30123, stored by 30123 + 12 = 30135: 30136
    # cycles.
    big = Layer("b", "conv", 600, 3, 3, 2, 3, 3, kernel=(3, 3), padding=(1, 1))
    got = layer_cycles(big, acc())
    assert got == {"descriptor": 2, "load_weights": 2 * 2701, "load_acts": 2 * 338, "load_resid": 0,
                   "compute": 2 * 13536, "drain": 10, "store": 12, "total": 30136, "hand": 2, "geometry_wait": 0,
                   "folds": 10, "fold_cycles": 2706, "tiles": 2}


def test_layer_cycles_k_tiles_and_channel_tiles() -> None:
    # A linear layer of 300 inputs and 6 outputs on a 2x2 top whose folds are 100 steps and whose
    # ofmap SRAM is 1/64 KiB = 128 bits: out buffer 128 / 16 = 8 words; the psum buffer holds
    # K = 15 * 15 * 4095 products, 2**14 * 921375 -> 35 bits, 2 x 35 a word: 128 / 70 -> 1 word,
    # fewer than one fold of 2 rows: no K tiles
    small = Accelerator(array=ArrayConfig(rows=2, cols=2, fold_overlap=False), memory=MemoryConfig(ofmap_sram_kib=1 / 64),
                        rtl=RtlConfig(max_steps=100))
    fc = Layer("f", "linear", 300, 1, 1, 6, 1, 1)
    with pytest.raises(DoesNotFit, match=r"^a fold of 300 steps exceeds rtl\.max_steps=100, and the top's "
                                         r"psum buffer of 1 words holds no fold of K tiles; "):
        layer_cycles(fc, small)
    # with 1/16 KiB = 512 bits: psum 512 / 70 -> 7 words, out 512 / 16 = 32. K tiles of 100
    # inputs (3), folds of 2 * 2 + 2 + 100 - 2 + 2 = 106 cycles. Run in order, the overlap makes
    # the smallest output tiles fastest: 3 tiles of 2 channels (one fold each) x 3 K tiles. Each
    # K tile loads 1 parameter word, 100 weight words and 100 activations (13 beats of 8): 114
    # beats after its descriptor and HAND's cycle, shorter than its run of (2 + 4 + 106) + 5 =
    # 117, so the tiles follow the runs: the first is taken at 115, every next one the cycle
    # after the one before left FLUSH, 118 cycles later (its loads and HAND, from the cycle after
    # the take, are done two cycles before): the ninth at 115 + 8 * 118 = 1059, out of FLUSH at
    # 1059 + 117 = 1176, stored (2 + 2) by 1180: 1181 cycles. (Three output tiles of 3 folds
    # each, the K tiles' loads under the runs, take 1315.)
    roomy = Accelerator(array=ArrayConfig(rows=2, cols=2, fold_overlap=False), memory=MemoryConfig(ofmap_sram_kib=1 / 16),
                        rtl=RtlConfig(max_steps=100))
    got = layer_cycles(fc, roomy)
    assert (got["tiles"], got["folds"], got["fold_cycles"], got["store"]) == (9, 9, 106, 12)
    assert got["total"] == 1181


def test_layer_cycles_wrong() -> None:
    pool = Layer("p", "maxpool", 4, 4, 4, 4, 2, 2, kernel=(2, 2))
    with pytest.raises(HwsimError, match=r"^layer 'p' \(maxpool\) does not run on the PE array$"):
        layer_cycles(pool, acc())
    wide = Layer("w", "conv", 3, 5, 5, 2, 5, 5, kernel=(3, 3), padding=(1, 1))
    with pytest.raises(ConfigError, match=r"^`array\.dataflow` 'ws': "):
        layer_cycles(wide, Accelerator(array=ArrayConfig(rows=2, cols=2, dataflow="ws")))
