"""One layer on an accelerator: hand-worked cycles, traffic, stalls, errors and properties."""

import dataclasses

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hwsim.accelerator import Accelerator, ArrayConfig, MemoryConfig
from hwsim.errors import HwsimError
from hwsim.mapping import map_layer
from hwsim.workload import Layer

# 3x3 conv, 4 -> 8 channels, 6x6 input, pad 1: M = 36 pixels, K = 4*3*3 = 36, N = 8.
CONV = Layer(name="conv", op="conv", in_ch=4, in_h=6, in_w=6, out_ch=8, out_h=6, out_w=6,
             kernel=(3, 3), padding=(1, 1), pe="mac")


def array4(dataflow="os", *, overlap=False, depthwise="gemm", **memory):
    # acc_bits fixed at 32 so the hand-worked partial-sum traffic below uses 32-bit words; the
    # naive array (no fold overlap, depthwise as GEMMs) unless a test says otherwise
    return Accelerator(acc_bits=32, array=ArrayConfig(rows=4, cols=4, dataflow=dataflow, fold_overlap=overlap,
                                                      depthwise=depthwise),
                       memory=MemoryConfig(**memory))


def test_conv_everything_fits():
    mapping = map_layer(CONV, array4())
    # OS folds: ceil(36/4) = 9 row folds x ceil(8/4) = 2 col folds = 18; per fold
    # 2*4 + 4 + 36 - 2 = 46, plus the PE's 2 pipeline stages = 48 -> 864 cycles. One tile holds
    # the whole layer.
    assert (mapping.folds, mapping.compute_cycles, mapping.tile) == (18, 864, (36, 36, 8))
    # Useful MACs 36*36*8 = 10368 of 16 PEs * 864 cycles.
    assert mapping.utilization == pytest.approx(10368 / (16 * 864))
    # SRAM demand: im2col ifmap 36*36 once per col fold (2), weights 36*8 once per row fold (9),
    # 8 bits each. The whole K runs in one fold, so no partial sum passes the ofmap buffer; the
    # 36*8 outputs are staged there at 8 bits on their way to DRAM (one write, one read).
    assert mapping.sram_read_bits == {"ifmap": 36 * 36 * 2 * 8, "weight": 36 * 8 * 9 * 8, "ofmap": 288 * 8}
    # DRAM: the real input 4*6*6*8 = 1152 bits, weights 288*8 = 2304, outputs 8*36*8 = 2304.
    assert mapping.dram_read_bits == {"ifmap": 1152, "weight": 2304, "ofmap": 0}
    assert mapping.dram_write_bits == {"ifmap": 0, "weight": 0, "ofmap": 2304}
    assert mapping.sram_write_bits == {"ifmap": 1152, "weight": 2304, "ofmap": 288 * 8}
    # 12.8 GB/s at 500 MHz = 25.6 B = 204.8 bits per cycle. A single tile of 18 folds: the first
    # fold's share of its load (3456 / 18 = 192 bits) comes before compute, the last fold's share
    # of its outputs (2304 / 18 = 128 bits) after: 320 / 204.8 = 1.56 -> 2 cycles; the rest moves
    # during the 864 compute cycles.
    assert mapping.stall_cycles == 2
    assert mapping.total_cycles == 866


def test_conv_tile_holds_raw_rows_not_im2col():
    # Weight buffer 0.2 KiB = 1638 bits: 36 x nt x 8 bits -> nt = 4 (not 8).
    # Ifmap buffer 1 KiB = 8192 bits. The im2col view of all 36 pixels is 36 x 36 x 8 = 10368
    # bits and would not fit (m_tile 28), but the walker reads raw rows: the whole 4x6x6 input
    # is 1152 bits, so one tile covers M and the input is read from DRAM once.
    mapping = map_layer(CONV, array4(ifmap_sram_kib=1, weight_sram_kib=0.2, dram_bandwidth_gbps=0.5))
    assert mapping.tile == (36, 36, 4)
    assert mapping.dram_read_bits == {"ifmap": 1152, "weight": 2304, "ofmap": 0}
    assert mapping.compute_cycles == 864  # tiles are whole folds: same schedule
    # 0.5 GB/s at 500 MHz = 8 bits per cycle. Two tiles (n0, n1) of 9 folds * 48 = 432 cycles.
    # Exposed: the first fold's share of n0's load, (input 1152 + weights 36*4*8 = 1152) / 9 =
    # 256 bits -> 32 cycles, and the last fold's share of n1's outputs, 36*4*8 / 9 = 128 bits
    # -> 16. While n0 computes, the rest of its load (2048) and n1's weights (1152) move: 400
    # cycles < 432; while n1 computes, n0's outputs (1152) and the rest of its own (1024): 272.
    assert mapping.stall_cycles == 32 + 16


def test_dilated_conv_reads_the_rows_its_taps_land_on():
    # 3x3, dilation 2, stride 2 on 1 x 9 x 9: the taps span 5 rows, 3 output rows (0, 2, 4 times
    # 2). Output row o reads rows 2o, 2o + 2, 2o + 4: the even rows 0-8, five of nine, and the
    # same five columns: 25 pixels x 8 bits from DRAM; the GEMM keeps K = 9 taps (M = 9, N = 2).
    dilated = Layer(name="d", op="conv", in_ch=1, in_h=9, in_w=9, out_ch=2, out_h=3, out_w=3,
                    kernel=(3, 3), stride=(2, 2), dilation=(2, 2), pe="mac")
    assert dilated.extent == (5, 5) and dilated.gemm == (1, 9, 9, 2)
    assert map_layer(dilated, array4()).dram_read_bits["ifmap"] == 25 * 8
    # undilated, the same stride reads rows 0-6 of a 7 x 7 input: all 49 pixels
    plain = dataclasses.replace(dilated, in_h=7, in_w=7, dilation=(1, 1))
    assert map_layer(plain, array4()).dram_read_bits["ifmap"] == 49 * 8


def test_raw_row_tile_of_a_band_of_pixels():
    # Ifmap buffer 0.1 KiB = 819 bits holds neither the whole input (1152) nor a 4-pixel im2col
    # tile (4 x 36 x 8 = 1152). 12 pixels are two whole output rows of the 6-wide map: 2 + 3 - 1
    # = 4 input rows of 6 pixels x 4 channels x 8 bits = 768 bits. 8 or 16 pixels would start
    # mid-row and span 3 or 4 output rows, 5 or 6 input rows = 960 or 1152 bits > 819.
    mapping = map_layer(CONV, array4(ifmap_sram_kib=0.1, weight_sram_kib=0.2))
    assert mapping.tile == (12, 36, 4)
    # Weights (2304 bits) do not fit their 1638-bit buffer whole, the input does not fit its own:
    # N outer reads the input once per weight tile (2 x 1152) and the weights once (2304); M outer
    # would read the weights once per pixel tile (9 x 2304).
    assert mapping.dram_read_bits == {"ifmap": 2 * 1152, "weight": 2304, "ofmap": 0}


def test_conv_reduction_split_when_full_k_does_not_fit():
    # Weight buffer 0.125 KiB = 1024 bits cannot hold 36 x 4 x 8 = 1152: K is cut into 1024 / 32
    # = 32 (+ 4); n_tile = 1024 // (32*8) = 4; m_tile = 36. Partial sums stay in the ofmap buffer.
    mapping = map_layer(CONV, array4(weight_sram_kib=0.125))
    assert mapping.tile == (36, 32, 4)
    # Per n tile: 9 folds * (2*4 + 4 + 32 - 2 + 2 pipeline = 44) + 9 * (8 + 4 + 4 - 2 + 2 = 16)
    # = 540; 2 n tiles.
    assert mapping.compute_cycles == 1080
    assert mapping.folds == 9 * 2 * 2
    # K innermost, N outer: the whole input (1152 bits) stays in the 64 KiB ifmap buffer while
    # the weight tiles pass, so it is read once; each weight tile is read once.
    assert mapping.dram_read_bits == {"ifmap": 1152, "weight": 2304, "ofmap": 0}
    # The first K tile's partial sums go to the ofmap buffer and come back for the second (one
    # write and one read per output at 32 bits); then the 288 outputs are staged at 8 bits.
    assert mapping.sram_write_bits["ofmap"] == mapping.sram_read_bits["ofmap"] == 288 * 32 + 288 * 8


def test_partial_sums_take_the_exact_accumulator_width():
    # acc_bits 0: the partial sums are as wide as the PE's accumulator for K = 36 int8 products in
    # [-128 * 127, 128 * 128]: at most 36 * 2**14 = 589824, in [2**19, 2**20) -> 20 bits + sign.
    acc = Accelerator(array=ArrayConfig(rows=4, cols=4), memory=MemoryConfig(weight_sram_kib=0.125))
    mapping = map_layer(CONV, acc)
    assert mapping.tile == (36, 32, 4)  # the same split as with 32-bit partial sums
    assert mapping.sram_write_bits["ofmap"] == mapping.sram_read_bits["ofmap"] == 288 * 21 + 288 * 8


def test_ws_partial_sums_per_row_fold():
    # WS on 4x4: K = 36 on rows (9 row folds), N = 8 on cols (2 col folds), M = 36 streams.
    # Per fold 2*4 + 4 + 36 - 2 = 46, plus 2 pipeline stages in each of the 4 PEs a partial sum
    # passes = 54 -> 18 * 54 = 972. The partial sums of the first 8 row folds are written to the
    # ofmap buffer and read back by the next (288 * 8 each way, 32 bits); the last fold's 288
    # outputs are staged at 8 bits on their way to DRAM.
    mapping = map_layer(CONV, array4("ws"))
    assert mapping.compute_cycles == 972
    assert mapping.sram_read_bits == {"ifmap": 36 * 36 * 2 * 8, "weight": 36 * 8 * 8,
                                      "ofmap": 288 * 8 * 32 + 288 * 8}
    assert mapping.sram_write_bits["ofmap"] == 288 * 8 * 32 + 288 * 8
    # SCALE-Sim mode: single-cycle PEs, 18 * 46 minus its one cycle.
    assert map_layer(CONV, array4("ws"), scalesim=True).compute_cycles == 827


def test_scalesim_mode_drops_os_drain():
    # SCALE-Sim OS per fold 4 + 4 + 36 - 2 = 42, 18 folds = 756, minus 1.
    assert map_layer(CONV, array4(), scalesim=True).compute_cycles == 755


def test_depthwise_uses_one_column():
    dw = Layer(name="dw", op="conv", in_ch=8, in_h=6, in_w=6, out_ch=8, out_h=6, out_w=6,
               kernel=(3, 3), padding=(1, 1), groups=8, pe="mac")
    mapping = map_layer(dw, array4())
    # 8 groups of M = 36, K = 9, N = 1: 9 row folds x 1 col fold each, 2*4 + 4 + 9 - 2 + 2 = 21
    # cycles per fold -> 8 * 9 * 21 = 1512. In a fold 4 PEs (one column) work 9 of 21 cycles:
    # 4*9 / (16*21) = 9/84.
    assert (mapping.folds, mapping.compute_cycles) == (72, 1512)
    assert mapping.utilization == pytest.approx(9 / 84)
    assert mapping.dram_read_bits == {"ifmap": 8 * 36 * 8, "weight": 8 * 9 * 8, "ofmap": 0}


DW = Layer(name="dw", op="conv", in_ch=8, in_h=6, in_w=6, out_ch=8, out_h=6, out_w=6,
           kernel=(3, 3), padding=(1, 1), groups=8, pe="mac")


def test_depthwise_channel_parallel():
    # The 8 channels side by side on the columns: one GEMM M = 36, K = 9, N = 8 with per-column
    # inputs: 9 row folds x 2 col folds of 2*4 + 4 + 9 - 2 + 2 = 21 cycles -> 378 (GEMM mode 1512).
    mapping = map_layer(DW, array4(depthwise="channel_parallel"))
    assert (mapping.folds, mapping.compute_cycles) == (18, 378)
    assert mapping.utilization == pytest.approx(8 * 36 * 9 / (16 * 378))
    # Pipelined folds: 17 * max(K = 9, rows = 4) + 21.
    assert map_layer(DW, array4(depthwise="channel_parallel", overlap=True)).compute_cycles == 17 * 9 + 21
    # A fold is 4 output pixels of one channel; each of the 3 kernel rows shifts 4 + 3 - 1 = 6
    # input pixels through the column's tap register: 9 folds * 3 * 6 = 162 reads per channel,
    # 8 channels at 8 bits (GEMM mode reads the 36 x 9 im2col of each channel: 2592 per channel).
    assert mapping.sram_read_bits["ifmap"] == 8 * 162 * 8
    # The weights (9 per channel) are read once per row fold; DRAM traffic is the same.
    assert mapping.sram_read_bits["weight"] == 9 * 8 * 9 * 8
    assert mapping.dram_read_bits == {"ifmap": 8 * 36 * 8, "weight": 8 * 9 * 8, "ofmap": 0}


def test_depthwise_channel_parallel_needs_os_or_ws():
    # An input-stationary array holds a block of one channel's inputs: groups stay GEMMs.
    assert map_layer(DW, array4("is", depthwise="channel_parallel")) == map_layer(DW, array4("is"))


def test_xnor_lanes():
    fc = Layer(name="fc", op="linear", in_ch=100, in_h=1, in_w=1, out_ch=4, out_h=1, out_w=1,
               pe="xnor", act_bits=1, weight_bits=1)
    acc = Accelerator(pe="xnor", bits=1, array=ArrayConfig(rows=2, cols=2, lanes=64, fold_overlap=False))
    mapping = map_layer(fc, acc)
    # K = 100 binary lanes -> ceil(100/64) = 2 words. M = 1, N = 4: 1 x 2 folds of
    # 2*2 + 2 + 2 - 2 + 2 pipeline = 8 cycles -> 16. Useful 400 binary MACs of 4 PEs * 64 lanes
    # * 16 cycles. Pipelined folds: the second starts max(T = 2, rows = 2) cycles after the first.
    assert map_layer(fc, dataclasses.replace(acc, array=dataclasses.replace(acc.array, fold_overlap=True))
                     ).compute_cycles == 2 + 8
    assert mapping.compute_cycles == 16
    assert mapping.utilization == pytest.approx(400 / (4 * 64 * 16))
    assert mapping.tile == (1, 100, 4)
    # SRAM reads in 64-bit words: ifmap 1*2 words per col fold (2) -> 256 bits; weights 2*4 words once.
    assert mapping.sram_read_bits["ifmap"] == 256
    assert mapping.sram_read_bits["weight"] == 512
    assert mapping.dram_read_bits == {"ifmap": 100, "weight": 400, "ofmap": 0}


def test_maxpool_reads_dram():
    pool = Layer(name="pool", op="maxpool", in_ch=8, in_h=4, in_w=4, out_ch=8, out_h=2, out_w=2,
                 kernel=(2, 2), stride=(2, 2))
    mapping = map_layer(pool, array4())
    # 8*2*2 = 32 outputs * 4 window elements = 128 ops on 4 lanes -> 32 cycles.
    # DRAM: 128 input elements in (1024 bits), 32 out (256 bits): 1280 / 204.8 -> 7 cycles < 32.
    assert (mapping.compute_cycles, mapping.stall_cycles, mapping.utilization) == (32, 0, 1.0)
    assert mapping.dram_read_bits == {"ifmap": 1024, "weight": 0, "ofmap": 0}
    assert mapping.dram_write_bits == {"ifmap": 0, "weight": 0, "ofmap": 256}
    assert mapping.sram_read_bits == {"ifmap": 1024, "weight": 0, "ofmap": 256}


def test_add_reads_two_inputs_and_stalls():
    add = Layer(name="add", op="add", in_ch=8, in_h=4, in_w=4, out_ch=8, out_h=4, out_w=4)
    mapping = map_layer(add, array4(dram_bandwidth_gbps=0.5))
    # 128 ops / 4 lanes = 32 cycles; DRAM 2*128*8 in + 128*8 out = 3072 bits at 8 per cycle
    # = 384 cycles -> 352 stall cycles.
    assert (mapping.compute_cycles, mapping.stall_cycles) == (32, 352)
    assert mapping.dram_read_bits["ifmap"] == 2048


def test_activation_is_fused():
    relu = Layer(name="relu", op="act", in_ch=8, in_h=4, in_w=4, out_ch=8, out_h=4, out_w=4, detail="relu")
    mapping = map_layer(relu, array4())
    assert (mapping.compute_cycles, mapping.stall_cycles) == (32, 0)
    assert sum(mapping.dram_read_bits.values()) + sum(mapping.dram_write_bits.values()) == 0
    assert mapping.sram_read_bits["ofmap"] == mapping.sram_write_bits["ofmap"] == 1024


def test_name_is_not_part_of_the_result():
    renamed = Layer(**{**vars(CONV), "name": "other"})
    assert map_layer(renamed, array4()) == map_layer(CONV, array4())


def test_ofmap_buffer_too_small():
    with pytest.raises(HwsimError, match=r"^layer 'conv': ofmap buffer of 0\.05 KiB cannot hold one 4x4 tile "
                                         r"of 32-bit partial sums \(0\.062 KiB\); raise memory\.ofmap_sram_kib$"):
        map_layer(CONV, array4(ofmap_sram_kib=0.05))


def test_weight_buffer_too_small():
    # WS keeps a rows x cols block of weights: 32 x 32 x 8 bits = 1 KiB.
    big = Layer(name="conv1", op="conv", in_ch=64, in_h=8, in_w=8, out_ch=64, out_h=8, out_w=8,
                kernel=(3, 3), padding=(1, 1), pe="mac")
    acc = Accelerator(array=ArrayConfig(rows=32, cols=32, dataflow="ws"), memory=MemoryConfig(weight_sram_kib=0.5))
    with pytest.raises(HwsimError, match=r"^layer 'conv1': weight buffer of 0\.5 KiB cannot hold one 32x32 "
                                         r"weight tile \(1\.0 KiB\); raise memory\.weight_sram_kib$"):
        map_layer(big, acc)


def test_bad_groups():
    bad = Layer(name="g", op="conv", in_ch=6, in_h=4, in_w=4, out_ch=6, out_h=4, out_w=4, groups=4, pe="mac")
    with pytest.raises(HwsimError, match=r"^layer 'g': groups=4 must divide in_ch=6 and out_ch=6$"):
        map_layer(bad, array4())


def test_unknown_vector_op():
    bad = Layer(name="s", op="softmax", in_ch=4, in_h=1, in_w=1, out_ch=4, out_h=1, out_w=1)
    with pytest.raises(HwsimError, match=r"^layer 's': unknown op 'softmax'; expected one of conv, linear, "):
        map_layer(bad, array4())


@st.composite
def conv_layers(draw):
    groups = draw(st.sampled_from([1, 1, 2, 4]))
    cin, cout = groups * draw(st.integers(1, 16)), groups * draw(st.integers(1, 16))
    kernel, stride = draw(st.sampled_from([1, 3, 5])), draw(st.sampled_from([1, 2]))
    size = draw(st.integers(kernel, 20))
    out = (size - kernel) // stride + 1
    pe = draw(st.sampled_from(["mac", "adder", "xnor", "shift"]))
    bits = 1 if pe == "xnor" else draw(st.sampled_from([4, 8, 16]))
    return Layer(name="l", op="conv", in_ch=cin, in_h=size, in_w=size, out_ch=cout, out_h=out, out_w=out,
                 kernel=(kernel, kernel), stride=(stride, stride), groups=groups, pe=pe,
                 act_bits=bits, weight_bits=bits)


@settings(max_examples=150, deadline=None)
@given(conv_layers(), st.integers(1, 16), st.integers(1, 16), st.sampled_from(["os", "ws", "is"]),
       st.sampled_from([8, 64]), st.sampled_from([0.5, 4.0, 64.0]), st.sampled_from([0.1, 12.8]),
       st.booleans())
def test_mapping_properties(layer, rows, cols, dataflow, lanes, kib, gbps, scalesim):
    acc = Accelerator(array=ArrayConfig(rows=rows, cols=cols, dataflow=dataflow, lanes=lanes),
                      memory=MemoryConfig(ifmap_sram_kib=kib, weight_sram_kib=kib, ofmap_sram_kib=kib,
                                          dram_bandwidth_gbps=gbps))
    try:
        mapping = map_layer(layer, acc, scalesim=scalesim)
    except HwsimError as exc:
        assert "buffer of" in str(exc)
        assume(False)
    per_cycle = rows * cols * (lanes if layer.pe == "xnor" else 1)
    assert mapping.total_cycles >= layer.macs / per_cycle - (layer.groups if scalesim else 0)
    assert 0 < mapping.utilization <= 1
    assert mapping.stall_cycles >= 0
    # Every tensor crosses the DRAM interface at least once: of the input, the rows and columns
    # some kernel tap reads (no padding here), counted by enumeration.
    rows = {oy * layer.stride[0] + ky for oy in range(layer.out_h) for ky in range(layer.kernel[0])}
    cols = {ox * layer.stride[1] + kx for ox in range(layer.out_w) for kx in range(layer.kernel[1])}
    used = layer.in_ch * len(rows & set(range(layer.in_h))) * len(cols & set(range(layer.in_w)))
    assert mapping.dram_read_bits["ifmap"] >= used * layer.act_bits
    assert mapping.dram_read_bits["weight"] >= layer.weight_elems * layer.weight_bits
    assert mapping.dram_write_bits["ofmap"] == layer.out_elems * layer.act_bits
    m_tile, k_tile, n_tile = mapping.tile
    # (n_tile counts the channels of all groups side by side when the depthwise mode maps them so)
    assert 0 < m_tile <= layer.gemm[1] and 0 < k_tile <= layer.gemm[2] and 0 < n_tile <= layer.out_ch


def test_global_buffer_shares_its_room_among_the_tiles():
    # One 1.6 KiB = 13107-bit SRAM for all operands: the whole layer's tiles, input 1152 + weights
    # 2304 + 288 32-bit partial sums 9216 = 12672 bits, fit together, though a third of it each
    # (4369 bits) would not hold the partial sums.
    shared = array4(global_buffer_kib=1.6)
    assert map_layer(CONV, shared).tile == (36, 36, 8)
    # 1.5 KiB = 12288 bits < 12672: 32 of the 36 pixels per tile, partial sums 32 x 8 x 32 = 8192
    # + weights 2304 + input 1152 (32 pixels still span all 6 input rows) = 11648 bits (half the
    # filters, 36 x 4, would fit too, with a smaller tile at the same traffic). The weights stay
    # beside the input across both pixel tiles: everything is read once.
    mapping = map_layer(CONV, array4(global_buffer_kib=1.5))
    assert mapping.tile == (32, 36, 8)
    assert mapping.dram_read_bits == {"ifmap": 1152, "weight": 2304, "ofmap": 0}
    # The smallest tile, 4 pixels x 1 tap x 4 filters: 32 + 32 + 512 bits > 0.05 KiB = 409 bits.
    with pytest.raises(HwsimError, match=r"global buffer of 0\.05 KiB cannot hold one fold's tiles \(ifmap "):
        map_layer(CONV, array4(global_buffer_kib=0.05))


def test_grouped_adder_weights_carry_their_alignment_through_memory():
    # max_align 3: each adder weight stores its group's alignment (0..3, 2 bits) next to its 8 bits,
    # so CONV's 288 weights move 288 x 10 bits; without alignment they take 8
    adder = dataclasses.replace(CONV, pe="adder")
    acc = dataclasses.replace(array4(), pe="adder", max_align=3)
    assert map_layer(adder, acc).dram_read_bits["weight"] == 288 * 10
    assert map_layer(adder, dataclasses.replace(acc, max_align=0)).dram_read_bits["weight"] == 288 * 8
