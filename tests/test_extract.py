"""Workload extraction from nn.Modules: shapes, hyper-parameters, functional ops, warnings, errors."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hwsim.errors import HwsimError
from hwsim.extract import extract


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)) + x)


def small_net():
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        Residual(), nn.MaxPool2d(2), nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.1), nn.Linear(8, 10),
    )


def test_layers_and_shapes():
    wl = extract(small_net(), (1, 3, 16, 16))
    ops = [(layer.name, layer.op) for layer in wl.layers]
    assert ops == [
        ("0", "conv"), ("1", "norm"), ("2", "act"),
        ("3.conv", "conv"), ("3.bn", "norm"), ("3.add1", "add"), ("3.relu1", "act"),
        ("4", "maxpool"), ("5", "conv"), ("6", "avgpool"), ("9", "linear"),
    ]
    first = wl.layers[0]
    # 16x16 input, k3 s2 p1 -> 8x8; MACs = 8*8 * (3*3*3) * 8
    assert (first.out_h, first.out_w, first.stride, first.padding) == (8, 8, (2, 2), (1, 1))
    assert first.macs == 64 * 27 * 8 and first.pe == "mac" and first.bias
    dw = wl.layers[8]
    assert (dw.groups, dw.in_h, dw.out_h, dw.macs) == (8, 4, 4, 8 * 16 * 9)
    pool = wl.layers[7]
    assert (pool.kernel, pool.out_h) == ((2, 2), 4)
    gap = wl.layers[9]
    assert (gap.kernel, gap.out_h) == ((4, 4), 1)
    assert wl.layers[5].detail == "add, 2 tensor inputs"
    fc = wl.layers[10]
    assert (fc.in_ch, fc.out_ch, fc.macs) == (8, 10, 80)


def test_params_all_accounted():
    net = small_net()
    wl = extract(net, (1, 3, 16, 16))
    assert wl.params == sum(p.numel() for p in net.parameters())
    assert wl.warnings == ()


def test_bits_given_to_layers():
    wl = extract(small_net(), (1, 3, 16, 16), bits=4)
    assert {layer.act_bits for layer in wl.layers} == {4}


def test_weights_untouched_and_mode_restored():
    net = small_net().train()
    before = [p.clone() for p in net.parameters()]
    extract(net, (1, 3, 16, 16))
    assert net.training
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))


class Functional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(4, 3, 3, 3))
        self.proj = nn.Parameter(torch.zeros(4, 4))

    def forward(self, x):
        y = F.conv2d(x, self.w, None, 1, 1)
        y = torch.cumsum(y, dim=1)
        return y.flatten(1) @ self.proj.repeat(4, 1)


def test_functional_gemms_and_unknown_functions():
    wl = extract(Functional(), (2, 3, 2, 2))
    conv, cums, mm = wl.layers
    assert (conv.op, conv.kernel, conv.padding, conv.batch, conv.macs) == ("conv", (3, 3), (1, 1), 2, 2 * 4 * 27 * 4)
    assert cums.op == "vector" and cums.out_elems == 2 * 16
    # (2, 16) @ (16, 4): M=2, K=16, N=4
    assert (mm.op, mm.gemm) == ("linear", (1, 2, 16, 4))
    assert "torch function 'cumsum' has no cost model" in wl.warnings[0]
    # the parameters a functional GEMM reads are its weights: all 124 are in the workload
    assert (conv.params, mm.params, len(wl.warnings)) == (108, 16, 1)


def test_value_dependent_forward():
    class NeedsValues(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            if x.sum().item() > 1e9:  # values exist: the pass runs on real (zero) tensors
                return x
            return self.fc(x)

    wl = extract(NeedsValues(), (3, 4))
    assert [layer.op for layer in wl.layers] == ["linear"]  # 0-d reductions are control, not layers
    assert wl.layers[-1].gemm == (1, 3, 4, 2)


def test_fallback_when_stand_in_outputs_fail():
    class NeedsRealOutputs(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 2)
            nn.init.ones_(self.fc.bias)

        def forward(self, x):
            y = self.fc(x)
            if int(torch.count_nonzero(y)) < y.numel():  # the shape pass's stand-in: all zeros
                raise RuntimeError("zero activations")
            return torch.sigmoid(y)

    wl = extract(NeedsRealOutputs(), (3, 4))
    assert [(layer.op, layer.detail) for layer in wl.layers] == [("linear", "Linear"), ("act", "sigmoid")]
    assert wl.warnings == ()


def test_extraction_does_not_import_dynamo():
    """Meta tensors would: their Python shape kernels import torch._dynamo and sympy (1.3 s) on
    first use. (``import torch`` itself already loads torch.fx.)"""
    code = ("import sys; from hwsim.extract import extract; from models.registry import load_model; "
            "net, shape, _ = load_model('ghostnet'); extract(net, shape); "
            "print(sorted(m for m in ('torch._dynamo', 'sympy') if m in sys.modules))")
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(root), os.environ.get("PYTHONPATH"))))}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]"


def test_extract_wrong():
    with pytest.raises(HwsimError, match=r"^expected a torch.nn.Module, got int$"):
        extract(3, (1, 3, 8, 8))
    with pytest.raises(HwsimError, match=r"^input shape must be positive integers with the batch first, not \(1, 0, 8\)$"):
        extract(small_net(), (1, 0, 8))
    with pytest.raises(HwsimError, match=r"^forward pass on input shape \(1, 4, 16, 16\) failed: RuntimeError: .*$"):
        extract(small_net(), (1, 4, 16, 16))
    with pytest.raises(HwsimError, match=r"^network 'Sequential' has no conv or linear layer to map$"):
        extract(nn.Sequential(nn.ReLU()), (1, 4))


class WeightWork(nn.Module):
    """Work on parameters alone (normalising a weight) happens once, offline; an unused branch of
    activations is kept (only straight-through surrogates are dropped)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(4, 3))

    def forward(self, x):
        w = self.w / self.w.norm(dim=1, keepdim=True)
        unused = torch.sigmoid(x)  # noqa: F841  (computed, never read: still costed)
        return F.linear(x, w)


def test_weight_preprocessing_is_offline_and_unread_work_kept():
    wl = extract(WeightWork(), (2, 3))
    assert [(layer.op, layer.detail) for layer in wl.layers] == [("act", "sigmoid"), ("linear", "linear")]
    assert wl.layers[1].params == 12 and wl.warnings == ()
