# amaranth: UnusedElaboratable=no
"""Low-bit quantization (issue 13): AdderNet redistribution against a naive reimplementation of
the paper's steps, calibration, unsigned (offset) ReLU wires, the grouped adder's integer form
against float, its widths and cost, the grouped AdderPE on Amaranth's simulator, and a 4-bit
grouped adder layer and a 4-bit shift layer co-simulated on Verilator (bit- and cycle-exact)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from torch import nn

import contract
import cost_models as cm
from hwsim.accelerator import Accelerator, ArrayConfig, MemoryConfig, RtlConfig
from hwsim.errors import HwsimError
from hwsim.reports import energy_accuracy
from hwsim.rtl_timing import layer_cycles
from hwsim.workload import Layer
from models.calibrate import calibrate, quant_error
from models.intnet import Scheme
from models.intref import int_forward
from models.quant import quantize_adder, quantize_input, quantize_mac, quantize_shift
from models.redistribute import cluster, redistribute
from sim.layers import LayerSpec, QuantizedLayer, check_float, float_layer

BITS = 4


def naive_redistribution(w: np.ndarray, scale: float, bits: int, groups: int, max_align: int):
    """The paper's steps written out plainly, one channel and one weight at a time: k-means on
    the log2 headroom of each kernel's range (clipped to [0, E + 1]) from quantile seeds, each
    cluster's alignment from its widest kernel, the weights rounded on ``scale / 2**e`` and
    clamped to the activation grid with the clamped-off distance summed per channel."""
    qmax = 2 ** (bits - 1) - 1
    rows = [list(r) for r in w.reshape(w.shape[0], -1)]
    head = []
    for r in rows:
        peak = max(abs(v) for v in r)
        head.append(max_align + 1.0 if peak == 0 else min(max(math.log2(qmax * scale / peak), 0.0),
                                                          max_align + 1.0))
    cent = list(np.quantile(head, [(g + 0.5) / groups for g in range(groups)]))
    label = [-1] * len(head)
    for _ in range(100):
        new = [min(range(groups), key=lambda g: (abs(h - cent[g]), g)) for h in head]
        if new == label:
            break
        label = new
        for g in range(groups):
            members = [h for h, lab in zip(head, label) if lab == g]
            if members:
                cent[g] = sum(members) / len(members)
    align, weights, comp = [], [], []
    for o, r in enumerate(rows):
        e = min(max(math.floor(min(h for h, lab in zip(head, label) if lab == label[o])), 0), max_align)
        full = [round(v * 2 ** e / scale) for v in r]
        clamped = [min(max(v, -qmax - 1), qmax) for v in full]
        align.append(e)
        weights.append(clamped)
        comp.append(sum(abs(a - b) for a, b in zip(full, clamped)))
    return np.array(align), np.array(weights).reshape(w.shape), np.array(comp)


def test_redistribution_matches_naive_steps() -> None:
    # four kinds of kernel: beyond the activation range (clamped), ~1/3, ~1/6 and ~1/20 of it
    scale = 1.0 / 7  # activations in [-8/7, 1]
    w = np.array([[2.5, -1.75, 0.1, 0.9],     # clamps at 7 and -8 (2.5 -> 17.5, -1.75 -> -12.25)
                  [0.33, -0.2, 0.05, 0.0],    # e = 1
                  [0.3, 0.1, -0.31, 0.2],     # e = 1
                  [0.16, -0.12, 0.02, 0.0],   # e = 2
                  [0.05, 0.01, -0.04, 0.03],  # e = 4 -> clipped to E = 3
                  [0.0, 0.0, 0.0, 0.0]])      # no range: the largest headroom
    for groups, expected in ((3, [0, 0, 0, 2, 3, 3]), (4, [0, 1, 1, 2, 3, 3])):
        red = redistribute(w, scale, BITS, groups=groups, max_align=3)
        align, weight, comp = naive_redistribution(w, scale, BITS, groups, 3)
        np.testing.assert_array_equal(red.align, align)
        np.testing.assert_array_equal(red.weight, weight)
        np.testing.assert_array_equal(red.compensation, comp)
        assert list(red.align) == expected and red.groups == groups
    # 3 groups: the ~1/3 kernels share the clamped kernel's scale; 4 give them 2x finer weights
    assert list(red.weight[1]) == [5, -3, 1, 0] and list(red.weight[4]) == [3, 1, -2, 2]
    assert list(red.weight[0]) == [7, -8, 1, 6] and red.compensation[0] == (18 - 7) + (12 - 8)
    # the clamp is lossless: |x - w| = |x - clamp(w)| + |w - clamp(w)| for every x on the grid
    full = np.round(w[0] / scale).astype(int)
    for x in range(-8, 8):
        assert np.abs(x - full).sum() == np.abs(x - red.weight[0]).sum() + red.compensation[0]


def test_cluster_is_deterministic_and_ordered() -> None:
    values = np.array([0.1, 3.0, 0.2, 2.9, 1.5, 0.15])
    labels = cluster(values, 3)
    assert list(labels) == [0, 2, 0, 2, 1, 0]
    assert list(cluster(values, 1)) == [0] * 6


def test_calibration_methods() -> None:
    v = np.concatenate([np.linspace(-1, 1, 10001), [40.0]])  # one outlier
    assert calibrate(v, BITS, "max") == 40.0
    assert calibrate(v, BITS, "percentile", percentile=99.9) == pytest.approx(1.0, abs=0.01)
    err = {m: quant_error(np.abs(v), calibrate(v, BITS, m, percentile=99.9) / 7, BITS)
           for m in ("max", "percentile", "mse")}
    assert err["mse"] <= min(err["max"], err["percentile"])  # the outlier costs the clamp too
    pow2 = calibrate(v, BITS, "mse", pow2=True) / 7
    assert pow2 == 2.0 ** round(math.log2(pow2))
    assert calibrate(np.zeros(5), BITS, "mse") == 1.0  # a dead wire keeps a usable scale
    with pytest.raises(ValueError, match="calibration must be one of max, percentile, mse"):
        calibrate(v, BITS, "minmax")
    with pytest.raises(ValueError, match="Scheme|calibration"):
        Scheme(method="median")


def _grouped_adder(seed: int, relu: bool = True) -> QuantizedLayer:
    """A 4-bit grouped adder conv whose kernels span four weight ranges, on a ReLU input."""
    spec = LayerSpec("conv", 4, 8, 5, 5, kernel=3, pad=1)
    torch.manual_seed(seed)
    module = float_layer("adder", spec).eval()
    bn = nn.BatchNorm2d(8).eval()
    x = torch.randn(1, 4, 5, 5).abs()
    with torch.no_grad():  # kernels around mid-range with four spreads: several group scales
        spread = torch.tensor([4.0, 4.0, 1.0, 1.0, 0.4, 0.4, 0.2, 0.2]).reshape(-1, 1, 1, 1)
        module.weight.mul_(spread).add_(x.max() / 2)  # centre the (large negative) adder outputs, as training would
        y = module(x)
        bn.running_mean.copy_(y.mean(dim=(0, 2, 3)))
        bn.running_var.copy_(y.var(dim=(0, 2, 3)))
        bn.weight.uniform_(0.5, 1.5)
    q = quantize_adder(module, bn, bits=BITS, calib=x, relu=relu, groups=4, max_align=3,
                       unsigned_in=True)
    return QuantizedLayer(q=q, x=quantize_input(q, x), module=module, bn=bn, x_float=x)


def test_grouped_adder_integer_vs_float() -> None:
    ql = _grouped_adder(0)
    assert len(set(ql.q.align.tolist())) >= 2 and ql.q.zero_in == -8  # several groups, offset input
    check = check_float(ql, int_forward(ql.q, ql.x))  # sim.layers' stated tolerance
    assert check.ok, check


@pytest.mark.parametrize("pe", ["mac", "shift"])
def test_unsigned_input_is_exact(pe: str) -> None:
    """An offset (unsigned) input computes exactly what the same weights compute on the plain
    unsigned integers (one bit wider) with the zero-point term left in the bias; and the layer
    stays within sim.layers' float tolerance, padding (real 0 = integer -8) included."""
    spec = LayerSpec("conv", 3, 4, 4, 4, kernel=3, pad=1)
    torch.manual_seed(1)
    module = float_layer(pe, spec).eval()
    bn = nn.BatchNorm2d(4).eval()
    x = torch.randn(1, 3, 4, 4).abs()
    q = (quantize_mac if pe == "mac" else quantize_shift)(module, bn, bits=BITS, calib=x,
                                                          unsigned_in=True)
    xi = quantize_input(q, x)
    w_acc = q.weight if pe == "mac" else q.weight << (q.max_shift - q.shift)
    plain = dataclasses.replace(q, bits_in=BITS + 1, zero_in=0,
                                bias=q.bias + q.zero_in * w_acc.reshape(4, -1).sum(axis=1))
    assert q.zero_in == -8 and xi.min() >= -8 and (xi - q.zero_in).max() <= 15
    np.testing.assert_array_equal(int_forward(q, xi)[..., 1:-1, 1:-1],
                                  int_forward(plain, xi - q.zero_in)[..., 1:-1, 1:-1])
    assert check_float(QuantizedLayer(q=q, x=xi, module=module, bn=bn, x_float=x),
                       int_forward(q, xi)).ok


def test_grouped_widths_and_cost() -> None:
    assert contract.term_range("adder", 4, max_align=3) == (-(8 * 9 - 1), 0)
    assert contract.operand_bits("adder", 4, max_align=3) == (4, 6)
    tech = cm.load_technology("horowitz45")
    costs = [cm.datapath_cost("adder", tech, bits=4, max_align=e,
                              acc_bits=cm.acc_bits_for("adder", 4, 288, max_align=e)) for e in (0, 3)]
    assert costs[1].energy_pj_per_op > costs[0].energy_pj_per_op
    assert costs[1].area_um2 > costs[0].area_um2
    assert Accelerator(pe="adder", bits=4, max_align=3).psum_bits("adder", 4, 288) == costs[1].acc_bits


def test_energy_accuracy_options_wrong() -> None:
    with pytest.raises(HwsimError, match="unknown scheme 'adder-grouped' for --pe mac"):
        energy_accuracy.run(pes="mac", schemes="adder-grouped", cache_dir=None)
    with pytest.raises(HwsimError, match="--calibration must be one of max, percentile, mse"):
        energy_accuracy.run(pes="mac", cache_dir=None,
                            quantization=energy_accuracy.Quantization(calibration="kl"))


@pytest.mark.amaranth
def test_grouped_adder_pe() -> None:
    from amaranth.sim import Simulator

    from contract import PIPELINE_CYCLES
    from rtl.pe import PORT_TO_ACC_CYCLES, AdderPE, encode_adder_weight

    rng = np.random.default_rng(3)
    pe = AdderPE(bits=BITS, k=6, max_align=3)
    x, w, e = rng.integers(-8, 8, 6), rng.integers(-8, 8, 6), rng.integers(0, 4, 6)
    got: list[int] = []

    async def bench(ctx):
        for i in range(6 + PIPELINE_CYCLES):  # each pair's flags PIPELINE_CYCLES after it
            if i < 6:
                ctx.set(pe.i_x, int(x[i]))
                ctx.set(pe.i_w.as_value(), encode_adder_weight(int(w[i]), int(e[i]), BITS, 3))
            ctx.set(pe.i_add, i >= PIPELINE_CYCLES)
            ctx.set(pe.i_restart, i == PIPELINE_CYCLES)
            await ctx.tick()
        ctx.set(pe.i_add, 0)
        await ctx.tick().repeat(PORT_TO_ACC_CYCLES - PIPELINE_CYCLES)
        got.append(ctx.get(pe.o_acc))

    sim = Simulator(pe)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert got == [-int(np.abs((x << e) - w).sum())]


def _cosim_accelerator(pe: str, max_align: int = 0) -> Accelerator:
    return Accelerator(pe=pe, bits=BITS, max_align=max_align, array=ArrayConfig(rows=4, cols=4),
                       memory=MemoryConfig(ifmap_sram_kib=1, weight_sram_kib=2, ofmap_sram_kib=1),
                       rtl=RtlConfig(max_steps=48))


def _predicted(acc: Accelerator, ql: QuantizedLayer) -> int:
    q = ql.q
    h, w = ql.x.shape[2:]
    (kh, kw), (sh, sw), (ph, pw) = q.kernel_size, q.stride, q.padding
    layer = Layer("t", "conv", q.in_channels, h, w, q.out_channels, (h + 2 * ph - kh) // sh + 1,
                  (w + 2 * pw - kw) // sw + 1, kernel=(kh, kw), stride=(sh, sw), padding=(ph, pw))
    return layer_cycles(layer, acc)["total"]


def _shift_layer(seed: int) -> QuantizedLayer:
    """A 4-bit shift conv on an unsigned (offset) ReLU input, padding included."""
    spec = LayerSpec("conv", 4, 6, 5, 5, kernel=3, pad=1)
    torch.manual_seed(seed)
    module = float_layer("shift", spec).eval()
    bn = nn.BatchNorm2d(6).eval()
    x = torch.randn(1, 4, 5, 5).abs()
    q = quantize_shift(module, bn, bits=BITS, calib=x, relu=True, unsigned_in=True)
    return QuantizedLayer(q=q, x=quantize_input(q, x), module=module, bn=bn, x_float=x)


@pytest.mark.rtl
@pytest.mark.parametrize("pe", ["adder", "shift"])
def test_cosim_4bit(pe: str) -> None:
    from sim.build import build_top
    from sim.cosim import run_layers

    acc = _cosim_accelerator(pe, max_align=3 if pe == "adder" else 0)
    ql = _grouped_adder(5) if pe == "adder" else _shift_layer(5)
    run = run_layers(build_top(acc), [(ql.q, ql.x)])
    result = run.layers[0]
    np.testing.assert_array_equal(result.output, int_forward(ql.q, ql.x))
    assert result.mismatch_count == 0 and not result.error
    assert result.cycles - result.stalls == _predicted(acc, ql)
    assert check_float(ql, result.output).ok


def test_qat_finetune_leaves_a_plain_network() -> None:
    """One fine-tune epoch changes the copy's weights, not the original's, and leaves no hook
    or parametrization behind (the integer network is built from plain modules)."""
    from torch.nn.utils import parametrize

    from models.convert import convert
    from models.data import load_data
    from models.networks.digits import digits_cnn
    from models.qat import finetune

    data = load_data(None)
    torch.manual_seed(0)
    net = convert(digits_cnn(), "mac", input_shape=data.input_shape).eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    tuned = finetune(net, "mac", data, data.x_train[:64], bits=BITS,
                     scheme=Scheme(unsigned=True), epochs=1)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert any(not torch.equal(before[k], v) for k, v in tuned.state_dict().items())
    assert not any(parametrize.is_parametrized(m) or m._forward_pre_hooks for m in tuned.modules())
