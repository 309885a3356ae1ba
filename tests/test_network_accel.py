"""The network accelerator (rtl.sequencer) under Verilator behind the AXI memory model: chains of
layers, some larger than the buffers (row and channel tiles), run from one command list on
several images, with memory latency and busy cycles; every intermediate activation region byte
for byte and the last outputs value for value against models.intref (sim.netcosim)."""

from __future__ import annotations

import dataclasses

import pytest

from hwsim.accelerator import Accelerator, ArrayConfig, MemoryConfig, RtlConfig
from hwsim.errors import DoesNotFit
from hwsim.rtl_plan import top_geometry
from hwsim.rtl_sequence import MAX_OUTSTANDING, layer_sequence_cycles
from hwsim.workload import Layer
from models.intref import int_forward
from rtl.host import tiles
from sim.build import TopBuild, build_top
from sim.layers import LayerSpec, quantized_layer
from sim.netcosim import run_chain

pytestmark = pytest.mark.rtl

MEMORY = MemoryConfig(ifmap_sram_kib=2, weight_sram_kib=8, ofmap_sram_kib=4)


def _acc(kind: str, bus_bits: int = 64) -> Accelerator:
    return Accelerator(pe=kind, bits=1 if kind == "xnor" else 8, memory=MEMORY,
                       array=ArrayConfig(rows=4, cols=8, lanes=8),
                       rtl=RtlConfig(max_steps=160, bus_bits=bus_bits))


@pytest.fixture(scope="module", params=[("adder", 64), ("xnor", 64), ("adder", 256)], ids=str)
def net(request: pytest.FixtureRequest) -> TopBuild:
    return build_top(_acc(*request.param), network=True)


def _chain(kind: str) -> tuple[list, list]:
    if kind == "xnor":
        specs = [LayerSpec("conv", 8, 16, 48, 48, kernel=3, pad=1),  # 2304 > 2048 act words
                 LayerSpec("conv", 16, 24, 48, 48, kernel=3, stride=2, pad=1),
                 LayerSpec("conv", 24, 10, 24, 24, kernel=1)]
        layers = [quantized_layer(kind, s, seed=i, binary_out=i < 2) for i, s in enumerate(specs)]
    else:
        specs = [LayerSpec("conv", 24, 16, 13, 13, kernel=3, pad=1),  # 216 > 160 steps: K tiles
                 LayerSpec("conv", 16, 12, 13, 13, kernel=3, stride=2, pad=1),
                 LayerSpec("conv", 12, 20, 7, 7, kernel=3, pad=1)]
        layers = [quantized_layer(kind, s, seed=i) for i, s in enumerate(specs)]
    x = layers[0].x
    return [ql.q for ql in layers], [x, x[:, :, ::-1, :].copy(), -x if kind != "xnor" else 1 - x]


@pytest.mark.parametrize("latency, pattern", [(1, (1,)), (5, (1,)), (20, (1,)), (9, (1, 1, 1, 0))])
def test_chain(net: TopBuild, latency: int, pattern: tuple[int, ...]) -> None:
    layers, images = _chain(net.acc.pe)
    geo = top_geometry(net.acc)
    shapes = [images[0].shape[2:]]
    counts = []
    for q in layers:
        counts.append(len(tiles(geo, q, tuple(shapes[-1]))))
        h = (shapes[-1][0] + 2 * q.padding[0] - q.kernel_size[0]) // q.stride[0] + 1
        shapes.append((h, h))
    assert max(counts) > 1  # some layer does not fit the buffers whole
    if net.acc.pe == "adder":  # and the first runs as K tiles, partial sums on chip
        assert any(t.plan.psum_write for t in tiles(geo, layers[0], tuple(shapes[0])))
        # the second as output tiles of 8 and 4 channels: a tile's STORE, after the next tile's
        # DESC, must scatter by its own descriptor's channels (the sequencer queues them)
        assert {t.channels for t in tiles(geo, layers[1], tuple(shapes[1]))} == {(0, 8), (8, 12)}
    run = run_chain(net, layers, images, read_latency=latency, write_latency=latency, pattern=pattern)
    assert run.mismatches == [0, 0, 0] and not run.error
    assert all((out == want).all() for out, want in zip(run.outputs, run.expected))
    assert run.commands == 3 * 5 * sum(counts) + 1
    assert run.reads_in_flight == MAX_OUTSTANDING  # the memory takes more: the DMA's limit holds
    if pattern == (1,):  # the model's memory is always available
        assert run.cycles == run.predicted
    else:  # a busy memory only ever delays
        assert run.cycles > run.predicted


@pytest.mark.parametrize("latency, pattern", [(17, (1,)), (9, (1, 1, 1, 0))])
def test_residual_block(net: TopBuild, latency: int, pattern: tuple[int, ...]) -> None:
    """A residual block ``conv2(conv1(x)) + x`` from one command list: conv1 (24 -> 16,
    a fold of 216 > 160 steps: K tiles) and conv2 (16 -> 24, reading conv1's scattered outputs
    by row tiles, from inside bus words) adding each image through RESID; bit-exact against
    int_forward with the residual, cycle-exact with an always-available memory. xnor: refused."""
    conv1 = quantized_layer(net.acc.pe, LayerSpec("conv", 24, 16, 12, 12, kernel=3, pad=1), seed=7)
    conv2 = quantized_layer(net.acc.pe, LayerSpec("conv", 16, 24, 12, 12, kernel=3, pad=1), seed=8)
    x = conv1.x
    images = [x, x[:, ::-1].copy()]
    if net.acc.pe == "xnor":
        with pytest.raises(DoesNotFit, match="a residual add needs a requantizing"):
            run_chain(net, [conv1.q, conv2.q], images, shortcut=1)
        return
    geo = top_geometry(net.acc)
    assert any(t.plan.psum_write for t in tiles(geo, conv1.q, (12, 12)))
    assert len(tiles(geo, conv2.q, (12, 12), residual=True)) > 1
    run = run_chain(net, [conv1.q, conv2.q], images, read_latency=latency, write_latency=latency,
                    pattern=pattern, shortcut=1)
    assert run.mismatches == [0, 0] and not run.error
    for image, out in zip(images, run.outputs):
        want = int_forward(conv2.q, int_forward(conv1.q, image), residual=image)
        assert (out == want).all()
    if pattern == (1,):
        assert run.cycles == run.predicted
    else:
        assert run.cycles > run.predicted


def test_layer_timing(net: TopBuild) -> None:
    """``hwsim estimate --timing rtl`` with ``rtl.memory_latency`` (layer_sequence_cycles of the
    workload layer, read from its shape, not from the program) is the layer's share of a
    run on the network accelerator: the run's cycles less the END command and its sampling."""
    kind, latency = net.acc.pe, 7
    spec = LayerSpec("conv", 8, 12, 40, 40, kernel=3, stride=2, pad=1)  # larger than the buffers
    ql = quantized_layer(kind, spec, seed=5, **({"binary_out": False} if kind == "xnor" else {}))
    acc = dataclasses.replace(net.acc, rtl=dataclasses.replace(net.acc.rtl, memory_latency=latency))
    layer = Layer("t", "conv", 8, 40, 40, 12, 20, 20, kernel=(3, 3), stride=(2, 2), padding=(1, 1))
    cycles = layer_sequence_cycles(layer, acc)
    assert cycles["tiles"] > 1
    run = run_chain(net, [ql.q], [ql.x], read_latency=latency, write_latency=latency)
    assert run.mismatches == [0]
    # the END alone: its address at 0, its words (two on 64 bits, else one) from the latency on,
    # COMMAND takes it the cycle after the last, DISPATCH sets o_done, seen two edges later
    end = latency + (2 if net.acc.rtl.bus_bits == 64 else 1) + 2
    assert run.cycles == cycles["total"] + end + 1
