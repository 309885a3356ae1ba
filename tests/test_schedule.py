"""Tensor residency and output-stage fusion (hwsim/schedule.py), worked by hand.

Most cases are small hand-built workloads on 8x8 feature maps at 8 bits, so a tensor of C
channels is C x 64 x 8 = 512 C bits, and the activation storage is set with
``schedule.activation_kib`` (1 KiB = 8192 bits). The rules used for the expected values (module
docstring of hwsim/schedule.py): a tensor is stored when a layer reads it other than as its
stream or nobody reads it; stored tensors are placed in production order, each taking
``min(size, free)`` bits from its producer's group to its last reader; the rest is written to
DRAM once and read back by every reader; the network input and outputs always cross DRAM.
Depth-first bands (``schedule.depth_first``) have their own cases at the end; elsewhere tensors
are kept whole.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim import api, schedule
from hwsim.accelerator import PowerConfig, ScheduleConfig, preset
from hwsim.errors import HwsimError
from hwsim.mapping import Flow, Mapping, map_layer
from hwsim.simulate import estimate
from hwsim.workload import NETWORK_INPUT, Layer, Workload

IN = (NETWORK_INPUT,)
BASE = preset("mac")  # 16x16 OS, int8, three 64 KiB SRAMs


def conv(name: str, cin: int, cout: int, inputs: tuple[str, ...] | None, *, hw: int = 8,
         batch: int = 1) -> Layer:
    """A 1x1 mac conv on ``hw x hw`` maps: one buffer tile at these sizes, so every tensor moves once."""
    return Layer(name=name, op="conv", in_ch=cin, in_h=hw, in_w=hw, out_ch=cout, out_h=hw, out_w=hw,
                 pe="mac", batch=batch, inputs=inputs)


def vec(name: str, op: str, ch: int, inputs: tuple[str, ...], *, hw: int = 8, out_hw: int | None = None) -> Layer:
    out_hw = hw if out_hw is None else out_hw
    kernel = (hw // out_hw,) * 2
    return Layer(name=name, op=op, in_ch=ch, in_h=hw, in_w=hw, out_ch=ch, out_h=out_hw, out_w=out_hw,
                 kernel=kernel, inputs=inputs)


def acc(weight_kib: float = 64.0, **sched) -> object:
    """The preset with these schedule fields; tensors stay whole (``depth_first`` off) unless asked."""
    sched.setdefault("depth_first", False)
    return dataclasses.replace(BASE, schedule=ScheduleConfig(**sched),
                               memory=dataclasses.replace(BASE.memory, weight_sram_kib=weight_kib))


def plan(layers: list[Layer], accel, input_shape: tuple[int, ...] = (1, 4, 8, 8)):
    return schedule.plan(Workload("t", input_shape, tuple(layers)), accel)


def placements(places) -> list[tuple[str, str]]:
    return [(p.input_from, p.output_to) for p in places]


def activation_dram_bits(layers: list[Layer], accel, input_shape: tuple[int, ...] = (1, 4, 8, 8)) -> int:
    """Activation bits moved to and from DRAM, as the mapping charges them under the plan."""
    flows, _ = plan(layers, accel, input_shape)
    total = 0
    for layer, flow in zip(layers, flows):
        m = map_layer(layer, accel.array_for(layer.pe), flow=flow)
        total += m.dram_read_bits["ifmap"] + m.dram_write_bits["ofmap"]
    return total


# -- chains -------------------------------------------------------------------------------------

CHAIN = [conv("c1", 4, 8, IN), conv("c2", 8, 8, ("c1",)), conv("c3", 8, 4, ("c2",))]


def test_chain_that_fits_stays_on_chip():
    # 1 KiB = 8192 bits. c1's output (4096) lives from c1 to c2; c2's (4096) from c2 to c3: at
    # c2 both are held, 8192 bits, exactly the storage. c3's output is the network's: DRAM.
    flows, places = plan(CHAIN, acc(activation_kib=1))
    assert [(f.in_dram, f.out_dram_bits, f.out_sram_bits) for f in flows] == [
        (1.0, 0, 4096), (0.0, 0, 4096), (0.0, 2048, 0)]
    assert placements(places) == [("dram", "sram"), ("sram", "sram"), ("sram", "dram")]
    # storage taken while each runs: c1's output; c1's and c2's; c2's (c3's goes to DRAM)
    assert [p.held_bits for p in places] == [4096, 8192, 4096]
    # activation DRAM: the network input (4 x 512) read once and the output (4 x 512) written once
    assert activation_dram_bits(CHAIN, acc(activation_kib=1)) == 2048 + 2048


def test_inputs_none_reads_the_layer_before():
    as_chain = [dataclasses.replace(layer, inputs=None) for layer in CHAIN]
    assert plan(as_chain, acc(activation_kib=1)) == plan(CHAIN, acc(activation_kib=1))


def test_chain_that_spills_writes_once_and_each_reader_reads_back():
    # 0.75 KiB = 6144 bits. c1 -> c2 -> (c3, c4): c1's 4096 bits fit (steps 0-1); c2's tensor
    # lives from step 1 (c1's still held) to step 3 (its last reader c4): room 6144 - 4096 = 2048,
    # so 2048 stay and 2048 spill: written once by c2, read back by c3 and by c4.
    layers = [conv("c1", 4, 8, IN), conv("c2", 8, 8, ("c1",)), conv("c3", 8, 2, ("c2",)),
              conv("c4", 8, 2, ("c2",))]
    flows, places = plan(layers, acc(activation_kib=0.75))
    assert (flows[1].out_sram_bits, flows[1].out_dram_bits) == (2048, 2048)
    assert flows[2].in_dram == flows[3].in_dram == 0.5
    assert placements(places) == [("dram", "sram"), ("sram", "sram+dram"), ("sram+dram", "dram"),
                                  ("sram+dram", "dram")]
    m3 = map_layer(layers[2], BASE, flow=flows[2])
    assert m3.dram_read_bits["ifmap"] == 2048 and m3.dram_write_bits["ofmap"] == 1024
    # input 2048 + spill written 2048 + read twice 2 x 2048 + two 1024-bit outputs
    assert activation_dram_bits(layers, acc(activation_kib=0.75)) == 2048 + 2048 + 4096 + 2048


def test_far_reader_holds_its_room_over_the_whole_interval():
    # 0.5 KiB = 4096 bits. a (2048) is read by d three steps later; b (4096) and c (2048) are made
    # in between. a: 2048 on chip for steps 0-3; b (steps 1-2): room 2048 -> half spills; c (steps
    # 2-3): a and b's half fill the storage at step 2 -> all of it spills. d reads a from SRAM and
    # c from DRAM: half of its input.
    layers = [conv("a", 4, 4, IN), conv("b", 4, 8, IN), conv("c", 8, 4, ("b",)), conv("d", 8, 4, ("a", "c"))]
    flows, places = plan(layers, acc(activation_kib=0.5))
    assert [(f.out_sram_bits, f.out_dram_bits) for f in flows] == [(2048, 0), (2048, 2048), (0, 2048), (0, 2048)]
    assert flows[3].in_dram == 0.5
    assert places[3].input_from == "sram+dram"
    # storage taken: a; a and b's kept half; the same (c keeps nothing); a alone (d's is an output)
    assert [p.held_bits for p in places] == [2048, 4096, 4096, 2048]
    # once d has run, a's room is free again: at step 4 only d (2048) is held, so e (4096) keeps
    # 2048 bits on chip (with a still held it would keep none)
    e_after = layers + [conv("e", 4, 8, ("d",)), conv("f", 8, 4, ("e",))]
    flows, _ = plan(e_after, acc(activation_kib=0.5))
    assert (flows[3].out_sram_bits, flows[4].out_sram_bits) == (2048, 2048)


# -- a residual block ---------------------------------------------------------------------------

RESIDUAL = [
    conv("stem", 4, 8, IN), vec("relu0", "act", 8, ("stem",)),
    conv("b1", 8, 8, ("relu0",)), vec("b1n", "norm", 8, ("b1",)), vec("b1r", "act", 8, ("b1n",)),
    conv("b2", 8, 8, ("b1r",)), vec("b2n", "norm", 8, ("b2",)),
    vec("add", "add", 8, ("b2n", "relu0")),  # the stream b2n, the skip relu0 from storage
    vec("relu", "act", 8, ("add",)),
]


def test_residual_block_holds_the_skip_and_fuses_the_add():
    # 1 KiB = 8192 bits. Stored: relu0 (read by b1 and, as the skip, by add: steps 0-7, 4096
    # bits), b1r (read by b2: steps 2-5, room 8192 - 4096 = 4096, fits) and relu (the output).
    # Groups: stem+relu0, b1+b1n+b1r, b2+b2n+add+relu; the add's anchor is b2, not b2n before it.
    flows, places = plan(RESIDUAL, acc(activation_kib=1))
    assert [f.stage for f in flows] == ["own", "fused", "own", "fused", "fused", "own", "fused", "fused", "fused"]
    assert (flows[0].out_sram_bits, flows[0].out_dram_bits) == (4096, 0)
    assert (flows[2].in_dram, flows[2].out_sram_bits) == (0.0, 4096)
    assert (flows[5].in_dram, flows[5].out_sram_bits, flows[5].out_dram_bits) == (0.0, 0, 4096)
    assert (flows[7].side_in_bits, flows[7].in_dram) == (4096, 0.0)  # the skip, all from SRAM
    assert placements(places) == [
        ("dram", "fused"), ("fused", "sram"), ("sram", "fused"), ("fused", "fused"), ("fused", "sram"),
        ("sram", "fused"), ("fused", "fused"), ("fused+sram", "fused"), ("fused", "dram")]
    # DRAM (DDR3, 1950 pJ per 64 bits): input 2048 + output 4096 activation bits, and every weight
    # once: (4x8 + 8x8 + 8x8) x 8 = 1280 bits
    ddr3 = dataclasses.replace(acc(activation_kib=1), power=PowerConfig(leakage=False),
                               memory=dataclasses.replace(BASE.memory, dram="ddr3"))
    report = estimate(Workload("res", (1, 4, 8, 8), tuple(RESIDUAL)), ddr3)
    assert report.energy_split_uj()["dram"] * 1e6 == pytest.approx((2048 + 4096 + 1280) * 1950 / 64)


def test_residual_skip_that_spills_is_read_back_by_the_add():
    # 0.25 KiB = 2048 bits: half of relu0 stays (2048), half spills; b1r (steps 2-5) finds no
    # room and spills whole. The add reads its 4096-bit skip half from SRAM, half from DRAM.
    flows, places = plan(RESIDUAL, acc(activation_kib=0.25))
    assert (flows[0].out_sram_bits, flows[0].out_dram_bits) == (2048, 2048)
    assert (flows[2].out_sram_bits, flows[2].out_dram_bits) == (0, 4096)
    assert (flows[7].side_in_bits, flows[7].in_dram) == (4096, 0.5)
    assert places[7].input_from == "fused+sram+dram" and places[5].input_from == "dram"
    assert map_layer(RESIDUAL[7], BASE, flow=flows[7]).dram_read_bits["ifmap"] == 2048
    # input 2048; relu0: 2048 written, read back by b1 and add; b1r: 4096 written, read by b2;
    # output 4096
    assert activation_dram_bits(RESIDUAL, acc(activation_kib=0.25)) == 2048 + 3 * 2048 + 2 * 4096 + 4096


def test_layerwise_sends_every_stored_tensor_round_trip():
    # relu0 written and read by b1 and add; b1r written and read by b2; input and output
    flows, places = plan(RESIDUAL, acc(residency="layerwise"))
    assert flows[7].in_dram == 1.0 and placements(places)[1] == ("fused", "dram")
    assert activation_dram_bits(RESIDUAL, acc(residency="layerwise")) == 2048 + 3 * 4096 + 2 * 4096 + 4096


def test_no_fusion_and_layerwise_is_the_per_layer_round_trip():
    # act/norm run serially on the producer's buffer; the add runs on its own and reads both
    # inputs from DRAM: input 2048; relu0, b1r, b2n and the output written (4 x 4096); b1 and
    # b2 read 4096 each, the add 8192
    naive = acc(residency="layerwise", fusion="none")
    flows, _ = plan(RESIDUAL, naive)
    assert [f.stage for f in flows] == ["own", "serial", "own", "serial", "serial", "own", "serial", "own", "serial"]
    assert activation_dram_bits(RESIDUAL, naive) == 2048 + 4 * 4096 + 2 * 4096 + 8192
    for layer, flow in zip(RESIDUAL, flows):  # the mapping's own per-layer round trip
        assert map_layer(layer, naive, flow=flow) == map_layer(layer, naive)



def test_no_fusion_act_off_the_stream_runs_on_its_own():
    # an act reading a tensor other than the one just made cannot ride the producer's buffer: it
    # reads its input (stem's 4096 bits) from DRAM and writes its own output
    layers = [conv("stem", 4, 8, IN), conv("c", 8, 8, ("stem",)), vec("late", "act", 8, ("stem",))]
    naive = acc(residency="layerwise", fusion="none")
    flows, _ = plan(layers, naive)
    assert flows[2].stage == "own"
    m = map_layer(layers[2], naive, flow=flows[2])
    assert (m.dram_read_bits["ifmap"], m.dram_write_bits["ofmap"]) == (4096, 4096)


def test_group_with_two_stored_tensors_writes_both():
    # c0 -> n0 -> a0 is one group; n0 (the pre-activation) is read later by c2, a0 by c1: both
    # stored, both written by the anchor c0. 0.5 KiB = 4096 bits: n0 (placed first, steps 0-4)
    # fits; a0 (steps 0-3) finds no room and spills. c1's and c2's outputs leave the network.
    layers = [conv("c0", 4, 8, IN), vec("n0", "norm", 8, ("c0",)), vec("a0", "act", 8, ("n0",)),
              conv("c1", 8, 8, ("a0",)), conv("c2", 8, 4, ("n0",))]
    flows, places = plan(layers, acc(activation_kib=0.5))
    assert (flows[0].out_sram_bits, flows[0].out_dram_bits) == (4096, 4096)
    assert placements(places) == [("dram", "fused"), ("fused", "sram"), ("fused", "dram"), ("dram", "dram"),
                                  ("sram", "dram")]
    m0 = map_layer(layers[0], BASE, flow=flows[0])
    assert m0.dram_write_bits["ofmap"] == 4096


def test_network_input_as_a_skip_is_read_from_dram():
    # the add reads c's output as its stream and the network input (4 x 64 x 8 = 2048 bits) as
    # its skip, from DRAM: a second read of the input after c's
    layers = [conv("c", 4, 4, IN), vec("add", "add", 4, ("c", NETWORK_INPUT))]
    flows, places = plan(layers, acc())
    assert (flows[1].stage, flows[1].side_in_bits, flows[1].in_dram) == ("fused", 2048, 1.0)
    assert places[1].input_from == "fused+dram"
    assert activation_dram_bits(layers, acc()) == 2048 + 2048 + 2048  # input twice, output once

# -- concatenation and squeeze-excite -----------------------------------------------------------

def test_concatenation_two_producers_one_consumer():
    # 0.25 KiB = 2048 bits. a and b (2048 each) both read the network input and are read by c
    # (their concatenation). a fills the storage until c has run; b spills whole. c reads half of
    # its 8-channel input from DRAM.
    layers = [conv("a", 4, 4, IN), conv("b", 4, 4, IN), conv("c", 8, 8, ("a", "b"))]
    flows, places = plan(layers, acc(activation_kib=0.25))
    assert [(f.out_sram_bits, f.out_dram_bits) for f in flows] == [(2048, 0), (0, 2048), (0, 4096)]
    assert flows[2].in_dram == 0.5
    assert placements(places) == [("dram", "sram"), ("dram", "dram"), ("sram+dram", "dram")]
    assert map_layer(layers[2], BASE, flow=flows[2]).dram_read_bits["ifmap"] == 2048
    # the network input read by a and by b; b written and read back; c's output written
    assert activation_dram_bits(layers, acc(activation_kib=0.25)) == 2 * 2048 + 2 * 2048 + 4096


SE = [
    conv("x", 4, 8, IN),
    vec("pool", "avgpool", 8, ("x",), out_hw=1),  # global average of the stream: fuses
    conv("fc1", 8, 2, ("pool",), hw=1), vec("r", "act", 2, ("fc1",), hw=1),
    conv("fc2", 2, 8, ("r",), hw=1), vec("gate", "act", 8, ("fc2",), hw=1),
    vec("mul", "mul", 8, ("x", "gate")),  # the 1x1 gate broadcast over x: does not fuse
]


def test_squeeze_excite_multiply_is_not_fused():
    flows, places = plan(SE, acc())
    assert [f.stage for f in flows] == ["own", "fused", "own", "fused", "own", "fused", "own"]
    # x (4096 bits) is read by the pool as its stream and by the multiply from storage: stored
    assert flows[0].out_sram_bits == 4096 + 64  # x, and the pooled 8 values the pool's stage made
    assert places[0].output_to == "sram" and placements(places)[6] == ("sram", "dram")
    assert map_layer(SE[6], BASE, flow=flows[6]).dram_read_bits["ifmap"] == 0


def test_multiply_by_an_earlier_gate_fuses_on_the_full_size_stream():
    # gate first, then x: the multiply's stream is x (8x8), the 1x1 gate is its side input
    layers = SE[:6] + [conv("y", 8, 8, ("x",)), vec("mul", "mul", 8, ("y", "gate"))]
    flows, places = plan(layers, acc())
    assert flows[7].stage == "fused" and flows[7].side_in_bits == 64
    assert places[7].input_from == "fused+sram"


# -- weights and batch --------------------------------------------------------------------------

def test_weights_on_chip_when_they_fit():
    # weights: (4x8 + 8x8 + 8x8) x 8 bits = 1280 bits = 0.15625 KiB
    for kib, on_chip in ((64, True), (0.15625, True), (0.125, False)):
        accel = acc(weight_kib=kib, weights_on_chip=True)
        flows, _ = plan(RESIDUAL, accel)
        assert all(f.weights_dram is not on_chip for f in flows)
        weight_dram = sum(map_layer(layer, accel, flow=f).dram_read_bits["weight"]
                          for layer, f in zip(RESIDUAL, flows))
        assert weight_dram == (0 if on_chip else 1280)
    assert all(f.weights_dram for f in plan(RESIDUAL, acc())[0])  # the option is off by default


def test_batch_reads_weights_once_and_scales_activations():
    # batch 2: c1's output is 2 x 4096 = 8192 bits, fits 1 KiB exactly; batch 4: 16384, half spills.
    # Each layer's 4x8 / 8x4 weights (256 bits) are read once for the whole batch.
    for batch, resident in ((2, 8192), (4, 8192)):
        layers = [conv("c1", 4, 8, IN, batch=batch), conv("c2", 8, 4, ("c1",), batch=batch)]
        accel = acc(activation_kib=1)
        flows, _ = plan(layers, accel, (batch, 4, 8, 8))
        assert flows[0].out_sram_bits == resident
        assert flows[1].in_dram == 1 - resident / (batch * 4096)
        mappings = [map_layer(layer, accel, flow=f) for layer, f in zip(layers, flows)]
        assert [m.dram_read_bits["weight"] for m in mappings] == [256, 256]
        assert mappings[0].dram_read_bits["ifmap"] == batch * 2048  # the input, at every image


# -- the cycles of a fused group ----------------------------------------------------------------

def _mapping(cycles: int) -> Mapping:
    empty = {"ifmap": 0, "weight": 0, "ofmap": 0}
    return Mapping(cycles, 0, 1, 1.0, (0, 0, 0), dict(empty), dict(empty), dict(empty), dict(empty))


def test_fused_cycles_hide_under_the_anchor():
    # anchor 100 cycles; fused 30, 50, 40 share the vector unit: 30 and 80 hide, 120 shows 20;
    # a new group starts from its own anchor (10 cycles; fused 15 shows 5); serial ones keep theirs
    stages = ["own", "fused", "fused", "fused", "own", "fused", "serial"]
    cycles = [100, 30, 50, 40, 10, 15, 7]
    out = schedule.overlap([_mapping(c) for c in cycles], [Flow(stage=s) for s in stages])
    assert [m.compute_cycles for m in out] == [100, 0, 0, 20, 10, 5, 7]


# -- errors -------------------------------------------------------------------------------------

@pytest.mark.parametrize("inputs", [("nope",), ("c2",)])  # unknown, and a layer that comes later
def test_unknown_input_is_named(inputs):
    layers = [conv("c1", 4, 8, inputs), conv("c2", 8, 8, ("c1",))]
    with pytest.raises(HwsimError, match=r"^layer 'c1' reads '(nope|c2)', which is no layer before it$"):
        plan(layers, acc())


# -- real networks ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def resnet18() -> Workload:
    return api.workloads("resnet18", [("mac", 8)])[0]


# residual adds per network, from the papers' architecture tables: ResNet-18 2+2+2+2 basic blocks,
# ResNet-50 3+4+6+3 bottlenecks, ResNet-20 3x3 blocks, MobileNetV2 the stride-1 repeats of its
# bottlenecks (1+2+3+2+2), Bi-Real Net a real shortcut around each of its 16 binary convs
@pytest.mark.parametrize("name, pe, adds", [("resnet18", "mac", 8), ("resnet50", "mac", 16), ("resnet20", "mac", 9),
                                            ("mobilenetv2", "mac", 10), ("birealnet18", "xnor", 16)])
def test_every_residual_add_fuses_and_reads_its_skip(name, pe, adds):
    workload = api.workloads(name, [(pe, 1 if pe == "xnor" else 8)])[0]
    layers = workload.layers
    flows, places = schedule.plan(workload, preset(pe))
    index = {layer.name: i for i, layer in enumerate(layers)}
    found = [i for i, layer in enumerate(layers) if layer.op == "add"]
    assert len(found) == adds
    for i in found:
        (skip,) = [index[n] for n in layers[i].inputs if index[n] != i - 1]
        assert flows[i].stage == "fused" and places[i].input_from.startswith("fused+")
        assert flows[i].side_in_bits == layers[skip].out_elems * layers[skip].act_bits


def stored_bits(layers: tuple[Layer, ...] | list[Layer]) -> int:
    """Bits of the tensors that must be stored, by the rule restated on names: read by a
    conv/linear, read by a layer other than the one right after it, or read by nothing (all
    vector readers right after the producer here fuse)."""
    readers: dict[str, list[int]] = {}
    for i, layer in enumerate(layers):
        for name in layer.inputs:
            readers.setdefault(name, []).append(i)
    return sum(layer.out_elems * layer.act_bits for j, layer in enumerate(layers)
               if not readers.get(layer.name)
               or any(layers[i].is_compute or i != j + 1 for i in readers[layer.name]))


def test_resnet18_every_stored_tensor_is_written(resnet18):
    # nothing dropped: the anchors write exactly the stored tensors, to SRAM or DRAM
    for accel in (acc(), acc(activation_kib=1024), acc(residency="layerwise")):
        flows, _ = schedule.plan(resnet18, accel)
        assert sum(f.out_dram_bits + f.out_sram_bits for f in flows) == stored_bits(resnet18.layers)


def test_resnet18_at_one_mib_moves_only_the_compulsory_activations(resnet18):
    # everything ResNet-18 holds at once fits 1 MiB: DRAM sees the 3x224x224 image and the 1000 logits
    assert activation_dram_bits(list(resnet18.layers), acc(activation_kib=1024),
                                resnet18.input_shape) == (3 * 224 * 224 + 1000) * 8


def test_resnet18_resident_below_layerwise_and_monotone(resnet18):
    layers = list(resnet18.layers)
    layerwise = activation_dram_bits(layers, acc(residency="layerwise"), resnet18.input_shape)
    traffic = [activation_dram_bits(layers, acc(activation_kib=kib), resnet18.input_shape)
               for kib in (64, 128, 256, 512, 1024)]
    assert traffic == sorted(traffic, reverse=True) and traffic[0] < layerwise


# -- properties ---------------------------------------------------------------------------------

@st.composite
def dags(draw) -> list[Layer]:
    """Random data-flow graphs on 8x8 maps: 1x1 convs reading one to three earlier tensors, and
    acts and adds on the tensor just made (they fuse), an add's other input any earlier tensor
    of the same channels."""
    layers: list[Layer] = []
    for i in range(draw(st.integers(2, 10))):
        names = [layer.name for layer in layers]
        kind = draw(st.sampled_from(["conv", "conv", "act", "add"])) if i else "conv"
        if kind != "conv":
            ch = layers[-1].out_ch
            skips = [layer.name for layer in layers[:-1] if layer.out_ch == ch]
            if kind == "add" and skips:
                layers.append(vec(f"l{i}", "add", ch, (names[-1], draw(st.sampled_from(skips)))))
            else:
                layers.append(vec(f"l{i}", "act", ch, (names[-1],)))
            continue
        sources = (tuple(draw(st.lists(st.sampled_from(names), min_size=1, max_size=min(3, i), unique=True)))
                   if i else IN)
        cin = sum(layer.out_ch for layer in layers if layer.name in sources) or 4
        layers.append(conv(f"l{i}", cin, draw(st.sampled_from([1, 2, 3, 5, 8])), sources))
    return layers


@settings(max_examples=80, deadline=None)
@given(dags(), st.lists(st.integers(1, 64), min_size=2, max_size=4, unique=True))
def test_resident_never_above_layerwise_nor_rising_with_storage(layers, sixteenths):
    layerwise = activation_dram_bits(layers, acc(residency="layerwise"))
    traffic = [activation_dram_bits(layers, acc(activation_kib=s / 16)) for s in sorted(sixteenths)]
    assert max(traffic) <= layerwise
    assert traffic == sorted(traffic, reverse=True)
    flows, _ = plan(layers, acc(activation_kib=sixteenths[0] / 16))  # every stored tensor written once
    assert sum(f.out_sram_bits + f.out_dram_bits for f in flows) == stored_bits(layers)


def test_ghostnet_adds_fuse_and_squeeze_excite_multiplies_do_not():
    # GhostNet 1.0x (Han et al., CVPR 2020, Table 1): 16 bottlenecks, each ending in a residual
    # add; 7 of them with squeeze-excite, whose global average pool reads its stream (fused) and
    # whose multiply broadcasts a 1x1 gate (not fused); one more global pool before the classifier
    workload = api.workloads("ghostnet", [("mac", 8)])[0]
    flows, places = schedule.plan(workload, BASE)
    kinds: dict[tuple[str, str], int] = {}
    for layer, flow in zip(workload.layers, flows):
        if layer.op in ("add", "mul", "avgpool"):
            kinds[layer.op, flow.stage] = kinds.get((layer.op, flow.stage), 0) + 1
    assert kinds == {("add", "fused"): 16, ("mul", "own"): 7, ("avgpool", "fused"): 8}
    for layer, place in zip(workload.layers, places):
        if layer.op == "mul":
            assert "fused" not in place.input_from


def test_onnx_graph_edges_drive_the_same_schedule(tmp_path):
    """An ONNX residual block (hwsim/onnx_import.py records the edges) plans as the hand-built one:
    x -> conv1 -> relu1 -> conv2 -> add(conv2, relu1) -> relu2."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    from hwsim.onnx_import import read_onnx

    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1"),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2"),
             helper.make_node("Add", ["c2", "r1"], ["s"], name="add"),
             helper.make_node("Relu", ["s"], ["y"], name="relu2")]
    weights = [numpy_helper.from_array(np.ones(shape, np.float32), name)
               for name, shape in (("w1", (8, 4, 1, 1)), ("w2", (8, 8, 1, 1)))]
    graph = helper.make_graph(nodes, "res", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 8, 8])],
                              initializer=weights)
    path = tmp_path / "res.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    workload = read_onnx(path)
    assert [layer.inputs for layer in workload.layers] == [
        (NETWORK_INPUT,), ("conv1",), ("relu1",), ("conv2", "relu1"), ("add",)]
    # 1 KiB: relu1 (4096 bits, steps 0-3) stays on chip for conv2 and the add; relu2 is the output
    flows, places = schedule.plan(workload, acc(activation_kib=1))
    assert [f.stage for f in flows] == ["own", "fused", "own", "fused", "fused"]
    assert (flows[0].out_sram_bits, flows[2].out_dram_bits) == (4096, 4096)
    assert (flows[3].side_in_bits, flows[3].in_dram) == (4096, 0.0)
    assert placements(places) == [("dram", "fused"), ("fused", "sram"), ("sram", "fused"),
                                  ("fused+sram", "fused"), ("fused", "dram")]


def conv3(name: str, cin: int, cout: int, inputs: tuple[str, ...]) -> Layer:
    """A 3x3 pad-1 mac conv on 8x8 maps (weights cin * cout * 9 * 8 bits)."""
    return Layer(name=name, op="conv", in_ch=cin, in_h=8, in_w=8, out_ch=cout, out_h=8, out_w=8, kernel=(3, 3),
                 padding=(1, 1), pe="mac", inputs=inputs)


DEEP = [conv3("c1", 4, 16, IN), conv3("c2", 16, 16, ("c1",)), conv3("c3", 16, 4, ("c2",))]


def test_depth_first_keeps_bands_of_rows():
    # 1 KiB = 8192 bits of storage. c1's and c2's outputs are 16 x 8 x 8 x 8 = 8192 bits each.
    # Whole tensors: c1's fills the storage while c2 runs, so c2's spills (written once, read once
    # by c3): 2 x 8192 DRAM bits besides the input (4 x 512 = 2048) and the output (2048).
    whole = acc(activation_kib=1, depth_first=False)
    assert activation_dram_bits(DEEP, whole) == 2048 + 2048 + 2 * 8192
    # Depth first, one output row of a 3x3 reader needs 3 rows of its input, plus one row being
    # written: 4 of 8 rows, 16 x 4 x 8 x 8 = 4096 bits each; both bands fit the 8192 bits.
    assert activation_dram_bits(DEEP, acc(activation_kib=1, depth_first=True)) == 2048 + 2048
    _, places = plan(DEEP, acc(activation_kib=1, depth_first=True))
    assert placements(places) == [("dram", "sram"), ("sram", "sram"), ("sram", "dram")]


def test_depth_first_needs_the_weights_of_its_layers_on_chip():
    # Each band runs every layer once, so their weights must all stay in the weight SRAM:
    # c1 + c2 = (4 + 16) x 16 x 9 x 8 = 23040 bits > 2.5 KiB = 20480; c2 + c3 likewise. Whole
    # tensors then, as without depth first.
    assert activation_dram_bits(DEEP, acc(weight_kib=2.5, activation_kib=1, depth_first=True)) == \
        2048 + 2048 + 2 * 8192


def test_depth_first_band_grows_with_strides_on_the_way():
    # c1's output is read by c3 (a skip) past c2, a 3x3 stride-2 conv: one output row of c3
    # (3x3, on c2's 4x4 output) needs 3 rows of c2's output, (3 - 1) * 2 + 3 = 7 rows of c1's:
    # with the row being written, all 8 rows = the whole 8192-bit tensor.
    c2 = Layer(name="c2", op="conv", in_ch=16, in_h=8, in_w=8, out_ch=16, out_h=4, out_w=4, kernel=(3, 3),
               stride=(2, 2), padding=(1, 1), pe="mac", inputs=("c1",))
    c3 = Layer(name="c3", op="conv", in_ch=32, in_h=4, in_w=4, out_ch=4, out_h=4, out_w=4, kernel=(3, 3),
               padding=(1, 1), pe="mac", inputs=("c2", "c1"))
    layers = [DEEP[0], c2, c3]
    assert schedule._band_bits(tuple(layers), 0, 0, 2, BASE) == 8192
    # A linear reader cannot take rows: no band.
    fc = Layer(name="fc", op="linear", in_ch=16 * 64, in_h=1, in_w=1, out_ch=10, out_h=1, out_w=1, pe="mac",
               inputs=("c1",))
    assert schedule._band_bits((DEEP[0], fc), 0, 0, 1, BASE) is None
