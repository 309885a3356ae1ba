"""The whole-network integer forward against the float forward, with a derived error bound."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from models import intnet
from contract import MULT_BITS
from models.layers import BinaryConv2d
from models.networks.digits import digits_cnn
from models.quant import _fold
from models.convert import convert


def _net(pe: str, seed: int = 0) -> nn.Module:
    """A digits CNN variant with non-trivial BN statistics (random weights, eval mode)."""
    torch.manual_seed(seed)
    net = convert(digits_cnn(), pe, input_shape=(1, 1, 8, 8))
    with torch.no_grad():
        for bn in (m for m in net.modules() if isinstance(m, nn.BatchNorm2d)):
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.1, 0.1)
    if pe == "adder":  # adder outputs are large negative sums; put BN where they live
        x = torch.rand(64, 1, 8, 8)
        net.train()
        with torch.no_grad():
            for bn in (m for m in net.modules() if isinstance(m, nn.BatchNorm2d)):
                bn.momentum = None
            net(x)
    return net.eval()


def _bound(net: nn.Module, inet: intnet.IntNet) -> float:
    """Worst-case |integer - float| of the logits, propagated layer by layer.

    For a layer ``y = act(g * z + h)`` with input error ``E`` (inputs within ``X`` in magnitude),
    ``|dz|`` is at most ``||W_o||_1 E + K (s_w / 2) (X + E)`` for mac (weights rounded to ``s_w``),
    ``K (E + s / 2)`` for adder (``|x - w|`` is 1-Lipschitz in both), ``||W_o||_1 E`` for shift
    (exact weights). Requantization adds ``|g| s_acc / 2`` (bias rounded), half an output step
    (rounding) and the multiplier's relative error ``2**-(MULT_BITS-2)`` of the output; ReLU and
    saturation to a calibrated range do not increase it. Average pooling adds half a step.
    """
    modules = dict(net.named_modules())
    error = inet.layers[0].scale_in / 2
    for stage in inet.stages:
        if stage.op == "avgpool":
            error += _step_before(inet, stage) / 2
            continue
        if stage.op != "layer":
            continue
        q, layer = stage.q, modules[stage.name]
        bn_name = stage.name[:-1] + "1" if stage.name.startswith("features") else None
        g, _ = _fold(layer, modules[bn_name] if bn_name else None)
        w = layer.weight.detach().double().numpy().reshape(q.out_channels, -1)
        l1, k = np.abs(w).sum(axis=1), q.reduction
        x_max = q.input_range[1] * q.scale_in
        if q.pe == "mac":
            s_w = np.abs(w).max(axis=1) / q.input_range[1]
            dz = l1 * error + k * s_w / 2 * (x_max + error)
            s_acc = q.scale_in * s_w
        elif q.pe == "adder":
            dz = k * (error + q.scale_in / 2)
            s_acc = q.scale_in
        else:
            dz = l1 * error
            s_acc = q.scale_in * 2.0 ** -q.max_shift
        step = q.out_scale[0]
        out_max = step * (1 << (q.bits_out - 1))
        error = float(np.max(np.abs(g) * dz + np.abs(g) * s_acc / 2) + step / 2
                      + out_max * 2.0 ** -(MULT_BITS - 2))
    return error


def _step_before(inet: intnet.IntNet, pool: intnet.Stage) -> float:
    """The output step of the layer that feeds ``pool``."""
    before = inet.stages[:inet.stages.index(pool)]
    return [s.q for s in before if s.op == "layer"][-1].out_scale[0]


@pytest.mark.parametrize("pe", ["mac", "adder", "shift"])
@pytest.mark.parametrize("bits", [8, 16])
def test_integer_logits_match_float_within_derived_bound(pe, bits):
    net = _net(pe)
    x = torch.rand(64, 1, 8, 8)
    inet = intnet.build(net, x, bits=bits)
    with torch.no_grad():
        ref = net(x).double().numpy()
    logits = inet.logits(x)
    assert np.abs(logits - ref).max() <= _bound(net, inet)
    assert np.corrcoef(logits.ravel(), ref.ravel())[0, 1] > 0.99  # not vacuous: same logits


def test_xnor_network_runs_binary_layers_as_bits():
    net = _net("xnor")
    x = torch.rand(32, 1, 8, 8)
    inet = intnet.build(net, x, bits=8)
    ops = [(s.op, s.q.pe if s.q is not None else None) for s in inet.stages]
    assert ops == [("layer", "mac"), ("sign", None), ("layer", "xnor"), ("layer", "xnor"),
                   ("layer", "mac"), ("avgpool", None), ("flatten", None), ("layer", "mac")]
    assert inet.stages[2].q.binary_out and not inet.stages[3].q.binary_out
    with torch.no_grad():  # random weights leave small logit margins: most, not all, agree
        agree = (inet.logits(x).argmax(1) == net(x).argmax(1).numpy()).mean()
    assert agree >= 0.75


class _Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1)
        self.fc = nn.Linear(64, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc((self.conv(x) + x).flatten(1))


def test_build_wrong():
    with pytest.raises(ValueError, match=r"^_Residual is not a chain of layers \(module 'fc' does not take"):
        intnet.build(_Residual(), torch.rand(4, 1, 8, 8))
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Sigmoid(), nn.Flatten(), nn.Linear(72, 2))
    with pytest.raises(ValueError, match=r"^module '1' \(Sigmoid\) has no integer form here"):
        intnet.build(net, torch.rand(4, 1, 8, 8))
    binary_relu = nn.Sequential(nn.Conv2d(1, 4, 3), BinaryConv2d(4, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                                BinaryConv2d(4, 4, 1), nn.Flatten(), nn.Linear(64, 2)).eval()
    with pytest.raises(ValueError, match=r"^1: a ReLU before a binary layer makes every sign \+1; remove it"):
        intnet.build(binary_relu, torch.rand(4, 1, 8, 8))
