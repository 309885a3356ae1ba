"""Multiplication-free layers written by others, recognised by what they compute; every op costed.

The layer classes here are our own, written the way the papers' public code writes them (an
AdderNet ``unfold``/``abs``/``sum`` conv inside an autograd Function, a Bi-Real sign-STE conv
with per-channel scaling and its piecewise-polynomial activation, DeepShift-PS/-Q shift convs, a
Brevitas-style quantized conv read duck-typed) -- not the project's ``models.layers``. Op counts
are checked against hand counts and ``torch.utils.flop_counter`` (2 flops per MAC).
"""

from __future__ import annotations


import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

import hwsim
from hwsim.accelerator import preset
from hwsim.api import workloads
from hwsim.errors import DoesNotFit, HwsimError
from hwsim.extract import extract, retarget
from hwsim.rtl_plan import LayerShape
from hwsim.simulate import estimate
from models.convert import convert
from models.layers import Adder2d


# --- third-party-style layers ------------------------------------------------------------------
class _NegL1(torch.autograd.Function):
    """``-sum_k |w[o,k] - x[k,l]|`` with AdderNet's full-precision and HardTanh gradients."""

    @staticmethod
    def forward(ctx, w_col: torch.Tensor, x_col: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(w_col, x_col)
        return -(w_col.unsqueeze(2) - x_col.unsqueeze(0)).abs().sum(1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w_col, x_col = ctx.saved_tensors
        diff = x_col.unsqueeze(0) - w_col.unsqueeze(2)
        return (diff * grad.unsqueeze(1)).sum(2), (-diff.clamp(-1, 1) * grad.unsqueeze(1)).sum(0)


class PatchL1Conv(nn.Module):
    """Adder conv in the authors' style: im2col of the batch folded into channels, outer
    difference with the filters, abs, sum over the patch, negated."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, padding: int = 0) -> None:
        super().__init__()
        self.stride, self.padding = stride, padding
        self.filters = nn.Parameter(torch.randn(cout, cin, k, k))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        cout, _, k, _ = self.filters.shape
        oh = (h - k + 2 * self.padding) // self.stride + 1
        ow = (w - k + 2 * self.padding) // self.stride + 1
        cols = F.unfold(x.view(1, -1, h, w), k, padding=self.padding, stride=self.stride)
        cols = cols.view(n, -1, oh * ow).permute(1, 2, 0).contiguous().view(cols.shape[1] // n, -1)
        out = _NegL1.apply(self.filters.view(cout, -1), cols)
        return out.view(cout, oh, ow, n).permute(3, 0, 1, 2).contiguous()


class SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return torch.sign(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


class PolySign(nn.Module):
    """Bi-Real's activation: forward sign, backward through a piecewise polynomial."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hard = torch.sign(x)
        m1, m2, m3 = (x < -1).float(), (x < 0).float(), (x < 1).float()
        o1 = -1 * m1 + (x * x + 2 * x) * (1 - m1)
        o2 = o1 * m2 + (-x * x + 2 * x) * (1 - m2)
        o3 = o2 * m3 + 1 * (1 - m3)
        return hard.detach() - o3.detach() + o3


class ScaledSignConv(nn.Module):
    """Bi-Real-style binary conv: sign weights scaled by mean |w| per output channel, an STE."""

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, padding: int = 1) -> None:
        super().__init__()
        self.stride, self.padding = stride, padding
        self.real = nn.Parameter(torch.randn(cout * cin * k * k, 1) * 1e-3)
        self.shape = (cout, cin, k, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        real = self.real.view(self.shape)
        scale = real.abs().mean(dim=(1, 2, 3), keepdim=True).detach()
        hard = scale * torch.sign(real)
        soft = torch.clamp(real, -1, 1)
        return F.conv2d(x, hard.detach() - soft.detach() + soft, stride=self.stride, padding=self.padding)


class WhereSignLinear(nn.Module):
    """A binary linear layer with ``where(x >= 0, 1, -1)`` signs and a custom-Function weight sign."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(torch.where(x >= 0, 1.0, -1.0), SignSTE.apply(self.weight))


class ShiftSignConv(nn.Module):
    """DeepShift-PS style: learned ``shift`` and ``sign``, weight ``2**round(shift) * sign``."""

    def __init__(self, cin: int, cout: int, k: int = 3, padding: int = 1) -> None:
        super().__init__()
        self.padding = padding
        self.shift = nn.Parameter(torch.randint(-6, 0, (cout, cin, k, k)).float())
        self.sign = nn.Parameter(torch.randn(cout, cin, k, k))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sign = torch.sign(torch.round(self.sign.clamp(-1, 1)))
        return F.conv2d(x, 2 ** self.shift.round() * sign, padding=self.padding)


class RoundLog2Linear(nn.Module):
    """DeepShift-Q style: real weights rounded to ``sign * 2**round(log2 |w|)`` in the forward."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin))
        self.bias = nn.Parameter(torch.zeros(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.sign(self.weight) * torch.pow(2.0, torch.round(torch.log2(self.weight.abs())))
        return F.linear(x, w, self.bias)


class _BitWidth(nn.Module):
    def __init__(self, bits: int) -> None:
        super().__init__()
        self.bits = bits

    def bit_width(self) -> torch.Tensor:
        return torch.tensor(float(self.bits))


class QuantConv2d(nn.Conv2d):
    """Brevitas-style: a Conv2d with a weight quantizer proxy that reports its width."""

    def __init__(self, *args: object, weight_bit_width: int, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.weight_quant = _BitWidth(weight_bit_width)

    def quant_weight_bit_width(self) -> torch.Tensor:
        return self.weight_quant.bit_width()


class QuantReLU(nn.Module):
    """Brevitas-style activation quantizer: its output width from ``act_quant.bit_width()``."""

    def __init__(self, bit_width: int) -> None:
        super().__init__()
        self.act_quant = _BitWidth(bit_width)
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        levels = 2 ** self.act_quant.bits - 1
        return torch.round(torch.clamp(x / self.scale, 0, 1) * levels) / levels * self.scale


# --- recognition -------------------------------------------------------------------------------
def conv_macs(cin: int, cout: int, k: int, oh: int, ow: int, groups: int = 1) -> int:
    return oh * ow * cout * (cin // groups) * k * k


def test_patch_l1_conv_is_one_adder_conv() -> None:
    layer = PatchL1Conv(16, 32, 3, stride=2, padding=1).eval()
    x = torch.randn(1, 16, 12, 12)
    reference = Adder2d(16, 32, 3, stride=2, padding=1)
    with torch.no_grad():
        reference.weight.copy_(layer.filters)
        assert torch.allclose(layer(x), reference(x), atol=1e-4)  # it really is an adder conv
    wl = extract(layer, (1, 16, 12, 12))
    (conv,) = wl.layers
    assert (conv.name, conv.op, conv.pe) == ("PatchL1Conv", "conv", "adder")
    assert (conv.in_ch, conv.out_ch, conv.kernel, conv.stride, conv.padding, conv.out_h) == \
        (16, 32, (3, 3), (2, 2), (1, 1), 6)
    assert conv.macs == conv_macs(16, 32, 3, 6, 6) and conv.params == 32 * 16 * 9
    assert wl.warnings == ()
    (batched,) = extract(layer, (3, 16, 12, 12)).layers  # the batch the authors fold into channels
    assert (batched.op, batched.in_ch, batched.batch, batched.groups) == ("conv", 16, 3, 1)
    assert batched.macs == 3 * conv.macs


def test_l1_norm_and_cdist_are_adder_layers() -> None:
    class Norm(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.centres = nn.Parameter(torch.randn(10, 8))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            by_norm = -torch.norm(x[:, None, :] - self.centres[None], p=1, dim=2)
            by_cdist = -torch.cdist(x, self.centres, p=1)
            return by_norm + by_cdist

    wl = extract(Norm(), (5, 8))
    adders = [l for l in wl.layers if l.is_compute]
    assert [(l.pe, l.op, l.gemm) for l in adders] == [("adder", "linear", (1, 5, 8, 10))] * 2
    assert wl.params == 80 and wl.warnings == ()


def test_sign_ste_conv_with_polynomial_activation_is_xnor() -> None:
    net = nn.Sequential(nn.BatchNorm2d(8), PolySign(), ScaledSignConv(8, 16))
    wl = extract(net, (1, 8, 10, 10))
    assert [(l.name, l.op, l.pe) for l in wl.layers] == [
        ("0", "norm", None), ("1.sign1", "act", None), ("2", "conv", "xnor")]
    conv = wl.layers[-1]
    assert (conv.act_bits, conv.weight_bits, conv.macs) == (1, 1, conv_macs(8, 16, 3, 10, 10))
    assert conv.params == 16 * 8 * 9 and conv.inputs == ("1.sign1",)
    assert wl.warnings == ()  # the surrogate's compares and products are gone, not costed


def test_where_sign_and_custom_function_are_binary() -> None:
    wl = extract(WhereSignLinear(32, 4), (3, 32))
    linear = next(l for l in wl.layers if l.is_compute)
    assert (linear.pe, linear.gemm, linear.params) == ("xnor", (1, 3, 32, 4), 128)


def test_binary_weights_on_real_inputs_stay_mac() -> None:
    wl = extract(ScaledSignConv(4, 4), (1, 4, 6, 6))
    assert [l.pe for l in wl.layers] == ["mac"]


@pytest.mark.parametrize(("layer", "shape", "macs", "params"), [
    (ShiftSignConv(8, 8), (1, 8, 6, 6), conv_macs(8, 8, 3, 6, 6), 2 * 8 * 8 * 9),
    (RoundLog2Linear(12, 5), (2, 12), 2 * 12 * 5, 12 * 5 + 5)])
def test_power_of_two_weights_are_shift(layer: nn.Module, shape: tuple[int, ...], macs: int, params: int) -> None:
    wl = extract(layer, shape)
    assert [(l.op, l.pe) for l in wl.layers] == [("conv" if len(shape) == 4 else "linear", "shift")]
    assert (wl.macs, wl.params, wl.warnings) == (macs, params, ())


def test_exponent_not_rounded_is_not_shift() -> None:
    class RealExp(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.log_w = nn.Parameter(torch.randn(4, 6))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.linear(x, torch.exp2(self.log_w))

    assert [l.pe for l in extract(RealExp(), (1, 6)).layers] == ["mac"]


def test_brevitas_style_widths() -> None:
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), QuantReLU(4),
                        QuantConv2d(8, 8, 3, padding=1, weight_bit_width=2), QuantReLU(1),
                        QuantConv2d(8, 8, 1, weight_bit_width=1))
    wl = extract(net, (1, 3, 8, 8))
    rows = [(l.op, l.pe, l.act_bits, l.weight_bits) for l in wl.layers]
    assert rows == [("conv", "mac", 8, 8), ("act", None, 8, 8), ("conv", "mac", 4, 2),
                    ("act", None, 8, 8), ("conv", "xnor", 1, 1)]
    assert wl.params == sum(p.numel() for p in net.parameters()) and wl.warnings == ()


# --- costed on its datapath, and the ratios are real ---------------------------------------------
class ThirdPartyNet(nn.Module):
    """A small CIFAR net of one kind of third-party layer between a real stem and classifier."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.bn0 = nn.BatchNorm2d(16)
        make = {"adder": lambda: PatchL1Conv(16, 16, 3, padding=1), "xnor": lambda: ScaledSignConv(16, 16),
                "shift": lambda: ShiftSignConv(16, 16)}[kind]
        self.body = nn.ModuleList(make() for _ in range(4))
        self.norms = nn.ModuleList(nn.BatchNorm2d(16) for _ in range(4))
        self.sign = PolySign()
        self.down = nn.Conv2d(16, 32, 1, stride=2)  # the authors' real-valued downsample
        self.fc = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn0(self.stem(x))
        for conv, norm in zip(self.body, self.norms):
            x = x + norm(conv(self.sign(x) if self.kind == "xnor" else x))
        return self.fc(self.down(x).mean((2, 3)))


@pytest.mark.parametrize("kind", ["adder", "xnor", "shift"])
def test_third_party_net_costed_on_its_datapath(kind: str) -> None:
    net = ThirdPartyNet(kind)
    wl = extract(net, (1, 3, 32, 32), bits=8)
    body = [l for l in wl.layers if l.name.startswith("body.")]
    assert [l.pe for l in body] == [kind] * 4 and {l.macs for l in body} == {conv_macs(16, 16, 3, 32, 32)}
    assert [l.pe for l in wl.layers if l.name in ("stem", "down", "fc")] == ["mac"] * 3
    assert wl.params == sum(p.numel() for p in net.parameters()) and wl.warnings == ()
    report = estimate(wl, preset(kind))
    assert {r.datapath for r in report.layers if r.name.startswith("body.")} == {kind}
    baseline = estimate(retarget(wl, "mac", 8), preset("mac"))
    assert [l.pe for l in retarget(wl, "mac", 8).layers if l.is_compute] == ["mac"] * 7
    ratio = report.energy_uj / baseline.energy_uj
    assert ratio < 0.99, f"{kind}/mac energy ratio {ratio:.3f}"


def test_workloads_respect_the_authors_choices(tmp_path) -> None:
    """The CLI path: a binary net's real downsample stays mac on xnor; on mac everything is mac;
    on adder only the binary layers change."""
    source = tmp_path / "thirdparty_net.py"
    source.write_text(f"import sys; sys.path.insert(0, {str(__import__('pathlib').Path(__file__).parent)!r})\n"
                      "from test_recognise import ThirdPartyNet\n"
                      "def net():\n    return ThirdPartyNet('xnor'), (1, 3, 32, 32)\n")
    on_xnor, on_mac, on_adder = workloads(f"{source}:net", [("xnor", 1), ("mac", 8), ("adder", 8)])
    kinds = lambda wl: {l.name: l.pe for l in wl.layers if l.is_compute}  # noqa: E731
    assert kinds(on_xnor) == {"stem": "mac", **{f"body.{i}": "xnor" for i in range(4)}, "down": "mac", "fc": "mac"}
    assert set(kinds(on_mac).values()) == {"mac"}
    assert kinds(on_adder) == {**kinds(on_xnor), **{f"body.{i}": "adder" for i in range(4)}}


def test_convert_as_written_keeps_real_layers() -> None:
    from models.networks.birealnet import birealnet18

    net = birealnet18()
    kinds = lambda m: [type(c).__name__ for c in m.modules() if isinstance(c, (nn.Conv2d, nn.Linear))]  # noqa: E731
    before = kinds(net)
    assert kinds(convert(net, "xnor", as_written=True)) == before
    after = kinds(convert(net, "adder", as_written=True))
    assert [a for a, b in zip(after, before) if b == "BinaryConv2d"] == ["Adder2d"] * 16
    assert [a for a, b in zip(after, before) if b != "BinaryConv2d"] == [b for b in before if b != "BinaryConv2d"]


# --- registration and unknown modules -------------------------------------------------------------
class OpaqueKernel(nn.Module):
    """A layer whose arithmetic happens where the tracer cannot see it (a compiled kernel)."""

    def __init__(self) -> None:
        super().__init__()
        self.kernel = nn.Parameter(torch.randn(8, 4, 3, 3))
        self.step = 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(x.shape[0], 8, (x.shape[2] - 1) // 2 + 1, (x.shape[3] - 1) // 2 + 1)


def test_unknown_module_with_parameters_is_named_then_registered() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 1), OpaqueKernel())
    wl = extract(net, (1, 3, 9, 9))
    assert wl.warnings == (
        "288 parameters of OpaqueKernel module '1' are used by no costed layer (not in the workload); "
        "if OpaqueKernel computes a conv or linear layer, register it: "
        "hwsim.register_layer(OpaqueKernel, kind='adder'|'xnor'|'shift'|'mac')",)
    hwsim.register_layer(OpaqueKernel, kind="adder", weight="kernel", stride="step")
    try:
        wl = extract(net, (1, 3, 9, 9))
    finally:
        hwsim.unregister_layer(OpaqueKernel)
    layer = wl.layers[-1]
    assert (layer.name, layer.pe, layer.stride, layer.padding, layer.out_h) == ("1", "adder", (2, 2), (1, 1), 5)
    assert layer.macs == conv_macs(4, 8, 3, 5, 5) and wl.warnings == ()


def register_opaque() -> None:
    """What a package's ``hwsim.layers`` entry point does."""
    hwsim.register_layer(OpaqueKernel, kind="shift", weight="kernel", stride="step")


def test_entry_point_registers_when_parameters_are_unaccounted(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import EntryPoint

    import hwsim.recognise as recognise

    point = EntryPoint(name="opaque", value=f"{__name__}:register_opaque", group="hwsim.layers")
    monkeypatch.setattr(recognise, "entry_points", lambda group: [point] if group == "hwsim.layers" else [])
    monkeypatch.setattr(recognise, "_LOADED", [])
    try:
        plain = extract(nn.Sequential(nn.Conv2d(3, 4, 1)), (1, 3, 9, 9))  # nothing unaccounted: not read
        assert recognise._LOADED == [] and plain.warnings == ()
        wl = extract(nn.Sequential(nn.Conv2d(3, 4, 1), OpaqueKernel()), (1, 3, 9, 9))
    finally:
        hwsim.unregister_layer(OpaqueKernel)
    assert (wl.layers[-1].pe, wl.layers[-1].macs, wl.warnings) == ("shift", conv_macs(4, 8, 3, 5, 5), ())


def test_register_layer_errors() -> None:
    with pytest.raises(HwsimError, match=r"^register_layer\(OpaqueKernel\): unknown PE kind 'fma'; "
                                         r"choose one of mac, adder, xnor, shift$"):
        hwsim.register_layer(OpaqueKernel, kind="fma")
    with pytest.raises(HwsimError, match=r"^register_layer needs an nn.Module subclass, not 3$"):
        hwsim.register_layer(3, kind="mac")


# --- every op costed: hand counts and torch's flop counter -----------------------------------------
def flops(net: nn.Module, *inputs: torch.Tensor) -> int:
    """torch's count, with autograd on and the math attention kernel: the fused inference
    kernels (native multi-head attention, CPU flash attention) are invisible to the counter."""
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        net(*inputs)
    return counter.get_total_flops()


def unrolled_rnn_flops(net: nn.RNNBase, x: torch.Tensor) -> int:
    """torch's count of the recurrence written out step by step with ``F.linear`` (the counter
    does not see inside ``aten::lstm``/``gru``/``rnn``); gate arithmetic is not a GEMM."""
    steps, batch, _ = x.shape
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        inputs = x
        for layer in range(net.num_layers):
            outs = []
            for suffix in ("", "_reverse")[: 1 + net.bidirectional]:
                w_ih, w_hh = getattr(net, f"weight_ih_l{layer}{suffix}"), getattr(net, f"weight_hh_l{layer}{suffix}")
                h = x.new_zeros(batch, net.hidden_size)
                for t in range(steps):
                    F.linear(inputs[t], w_ih)
                    F.linear(h, w_hh)
                outs.append(x.new_zeros(steps, batch, net.hidden_size))
            inputs = torch.cat(outs, dim=2)
    return counter.get_total_flops()


def test_multihead_attention() -> None:
    n, q_len, k_len, e, heads = 2, 5, 7, 16, 4

    class Cross(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = nn.MultiheadAttention(e, heads, batch_first=True)
            self.memory = nn.Parameter(torch.randn(1, k_len, e))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.attn(x, self.memory.expand(x.shape[0], -1, -1), self.memory.expand(x.shape[0], -1, -1))[0]

    net = Cross().eval()
    wl = extract(net, (n, q_len, e))
    hand = n * q_len * e * e + 2 * n * k_len * e * e + 2 * n * q_len * k_len * e + n * q_len * e * e
    assert wl.macs == hand and 2 * hand == flops(net, torch.randn(n, q_len, e))
    parts = {l.name.split(".")[-1]: l for l in wl.layers}
    assert (parts["qk"].gemm, parts["av"].gemm) == ((n * heads, q_len, e // heads, k_len),
                                                    (n * heads, q_len, k_len, e // heads))
    assert parts["softmax"].vector_ops == n * heads * q_len * k_len
    assert wl.params == sum(p.numel() for p in net.parameters()) and wl.warnings == ()


@pytest.mark.parametrize(("cls", "gates"), [(nn.LSTM, 4), (nn.GRU, 3), (nn.RNN, 1)])
def test_recurrent_layers_all_gates_steps_directions_layers(cls: type, gates: int) -> None:
    steps, batch, inputs, hidden = 6, 3, 8, 12
    net = cls(inputs, hidden, num_layers=2, bidirectional=True).eval()
    wl = extract(net, (steps, batch, inputs))
    per_step = gates * hidden * ((inputs + hidden) + (2 * hidden + hidden))  # layer 0 + layer 1
    hand = steps * batch * 2 * per_step
    assert wl.macs == hand == unrolled_rnn_flops(net, torch.randn(steps, batch, inputs)) // 2
    assert wl.params == sum(p.numel() for p in net.parameters()) and wl.warnings == ()
    assert len([l for l in wl.layers if l.is_compute]) == 2 * 2 * 2
    if cls is nn.LSTM:  # per step and unit: 3 sigmoids, 2 tanh, 3 products, 5 sums
        by_detail = {l.detail: l.vector_ops for l in wl.layers if l.name.startswith("LSTM.l0.")}
        assert by_detail["lstm: gate sigmoid"] == steps * batch * 3 * hidden
        assert by_detail["lstm: gate tanh"] == steps * batch * 2 * hidden
        assert by_detail["lstm: gate mul"] == steps * batch * 3 * hidden


def test_lstm_cell_and_hidden_state_use() -> None:
    class Tagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(8, 16, batch_first=True)
            self.head = nn.Parameter(torch.randn(16, 4))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            _, (h, _) = self.lstm(x)
            return h[-1] @ self.head

    wl = extract(Tagger(), (2, 5, 8))
    assert wl.macs == 2 * 5 * 4 * 16 * (8 + 16) + 2 * 16 * 4
    assert wl.layers[-1].inputs == (wl.layers[-2].name,) and wl.layers[-1].params == 64


@pytest.mark.parametrize(("net", "shape", "hand"), [
    (nn.Conv1d(4, 8, 5, stride=2, padding=2, groups=2), (1, 4, 32), 16 * 8 * 2 * 5),
    (nn.Conv3d(2, 4, 3, padding=1), (1, 2, 4, 6, 6), 4 * 6 * 6 * 4 * 2 * 27),
    (nn.ConvTranspose1d(6, 4, 4, stride=2, padding=1), (1, 6, 10), 10 * 6 * 4 * 4),
    (nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1), (1, 8, 5, 5), 25 * 8 * 4 * 16),
    (nn.ConvTranspose2d(8, 4, 3, stride=2, groups=2), (2, 8, 5, 5), 2 * 25 * 8 * 2 * 9),
    (nn.Conv2d(8, 8, 3, padding=2, dilation=2), (1, 8, 16, 16), 256 * 8 * 8 * 9),
])
def test_convolutions_of_every_shape(net: nn.Module, shape: tuple[int, ...], hand: int) -> None:
    wl = extract(net, shape)
    assert wl.macs == hand == flops(net, torch.randn(shape)) // 2
    assert wl.params == sum(p.numel() for p in net.parameters()) and wl.warnings == ()
    functional = lambda x: getattr(F, type(net).__name__.lower().replace("convtranspose", "conv_transpose"))(  # noqa: E731
        x, net.weight, net.bias, net.stride, net.padding, *(
            (net.output_padding, net.groups, net.dilation) if "Transpose" in type(net).__name__
            else (net.dilation, net.groups)))

    class Functional(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return functional(x)

    assert extract(Functional(), shape).macs == hand


def test_dilated_conv_on_every_kind_or_refused_by_name() -> None:
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=2, dilation=2),
                        nn.Conv2d(8, 8, 3, padding=1), nn.Flatten(), nn.Linear(8 * 64, 10))
    built = extract(net, (1, 3, 8, 8))
    # the dilation is recorded (its taps span 5 rows and columns), the others have none
    assert [layer.dilation for layer in built.layers if layer.op == "conv"] == [(1, 1), (2, 2), (1, 1)]
    assert built.layers[1].extent == (5, 5)
    # the generated top's walker has no dilation: --timing rtl keeps the model's cycles for it
    with pytest.raises(DoesNotFit, match=r"^a dilation of 2x2: the generated top's walker reads adjacent taps only"):
        LayerShape.of_layer(built.layers[1])
    for pe in ("adder", "shift"):
        moved = retarget(built, pe, 8)
        assert moved.layers[1].pe == pe and moved.macs == built.macs
        assert estimate(moved, preset(pe)).energy_uj > 0
    with pytest.raises(ValueError, match=r"^layer '1' \(Conv2d\) cannot become xnor: module must use dilation 1"):
        convert(net, "xnor", input_shape=(1, 3, 8, 8))


def test_grouped_linear_einsum_and_batched_matmul() -> None:
    class Grouped(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.randn(4, 6, 5))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.einsum("bgi,goi->bgo", x, self.weight)
            return torch.bmm(y.transpose(0, 1), y.permute(1, 2, 0))  # (4, 3, 6) @ (4, 6, 3)

    net = Grouped()
    wl = extract(net, (3, 4, 5))
    grouped, bmm = wl.layers
    assert (grouped.op, grouped.gemm, grouped.params) == ("linear", (4, 3, 5, 6), 120)
    assert bmm.gemm == (4, 3, 6, 3)
    assert wl.macs == 3 * 4 * 5 * 6 + 4 * 3 * 6 * 3 == flops(net, torch.randn(3, 4, 5)) // 2


def test_scaled_dot_product_attention_by_hand() -> None:
    class Sdpa(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            q = x.view(2, 3, 10, 8)
            return F.scaled_dot_product_attention(q, q, q)

    wl = extract(Sdpa(), (2, 30, 8))
    assert wl.macs == 2 * (2 * 3 * 10 * 8 * 10) == flops(Sdpa(), torch.randn(2, 30, 8)) // 2


def test_data_movement_is_free_and_bilinear_is_arithmetic() -> None:
    class Upsampler(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(4, 16, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = F.pixel_shuffle(self.conv(x), 2).permute(0, 1, 3, 2)
            y = F.interpolate(y, scale_factor=2, mode="nearest")
            return F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)

    wl = extract(Upsampler(), (1, 4, 5, 5))
    conv, bilinear = wl.layers
    assert conv.op == "conv" and bilinear.detail.startswith("interpolate bilinear")
    assert bilinear.vector_ops == 4 * (4 * 40 * 40) and wl.warnings == ()


# --- the networks, written the way their authors write them --------------------------------
class AdderBlock(nn.Module):
    """AdderNet ResNet-20 basic block: two adder convs, their downsample an adder 1x1 conv."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = PatchL1Conv(cin, cout, 3, stride, 1), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = PatchL1Conv(cout, cout, 3, 1, 1), nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.downsample = None if stride == 1 and cin == cout else nn.Sequential(
            PatchL1Conv(cin, cout, 1, stride), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class BiRealBlock(nn.Module):
    """Bi-Real Net basic block: sign activation, one binary 3x3 conv, BN, a real shortcut
    (average pool, real 1x1 conv, BN) where the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.binary_activation, self.binary_conv = PolySign(), ScaledSignConv(cin, cout, 3, stride, 1)
        self.bn1 = nn.BatchNorm2d(cout)
        self.downsample = None if stride == 1 and cin == cout else nn.Sequential(
            nn.AvgPool2d(stride), nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn1(self.binary_conv(self.binary_activation(x)))
        return out + (x if self.downsample is None else self.downsample(x))


class ShiftBlock(AdderBlock):
    """DeepShift-PS ResNet-20 block: the convs are sign/shift convs, the shortcut option A."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        nn.Module.__init__(self)
        self.conv1, self.bn1 = ShiftStrideConv(cin, cout, stride), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = ShiftStrideConv(cout, cout, 1), nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.pad = cout - cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        if self.pad:  # option A: subsample and zero-pad the channels
            x = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad // 2, self.pad // 2))
        return self.relu(out + x)


class ShiftStrideConv(ShiftSignConv):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__(cin, cout)
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sign = torch.sign(torch.round(self.sign.clamp(-1, 1)))
        return F.conv2d(x, 2 ** self.shift.round() * sign, stride=self.stride, padding=1)


class CifarResNet20(nn.Module):
    def __init__(self, block: type) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)
        widths = [16] * 3 + [32] * 3 + [64] * 3
        self.blocks = nn.Sequential(*(block(16 if i == 0 else widths[i - 1], w, 2 if i in (3, 6) else 1)
                                      for i, w in enumerate(widths)))
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.blocks(F.relu(self.bn1(self.conv1(x)))).mean((2, 3)))


class BiReal18(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.MaxPool2d(3, 2, 1))
        widths = [64] * 4 + [128] * 4 + [256] * 4 + [512] * 4
        self.blocks = nn.Sequential(*(BiRealBlock(64 if i == 0 else widths[i - 1], w,
                                                  2 if i in (4, 8, 12) else 1) for i, w in enumerate(widths)))
        self.fc = nn.Linear(512, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.blocks(self.stem(x)).mean((2, 3)))


#: ResNet-20 on CIFAR by hand: stage 1 six 16->16 3x3 convs at 32x32; stages 2 and 3 a strided
#: 3x3 conv, five more, and (AdderNet) a strided 1x1 downsample, at 16x16 and 8x8.
RESNET20_BODY = (6 * 16 * 16 * 9 * 1024 + 16 * 32 * 9 * 256 + 5 * 32 * 32 * 9 * 256
                 + 32 * 64 * 9 * 64 + 5 * 64 * 64 * 9 * 64)
RESNET20_DOWNSAMPLE = 16 * 32 * 256 + 32 * 64 * 64
RESNET20_ENDS = 3 * 16 * 9 * 1024 + 64 * 10


@pytest.mark.parametrize(("block", "kind", "body"), [
    (AdderBlock, "adder", RESNET20_BODY + RESNET20_DOWNSAMPLE), (ShiftBlock, "shift", RESNET20_BODY)])
def test_authors_resnet20(block: type, kind: str, body: int) -> None:
    """AdderNet ResNet-20 (40.4 M adds + 0.44 M MACs: the issue's 40.8 M) and DeepShift-PS
    ResNet-20, costed on their datapaths; their MAC twins cost more."""
    torch.manual_seed(0)
    net = CifarResNet20(block)
    wl = extract(net, (1, 3, 32, 32))
    assert wl.macs_by_pe() == {kind: body, "mac": RESNET20_ENDS}
    assert wl.params == sum(p.numel() for p in net.parameters()) and wl.warnings == ()
    own = estimate(wl, preset(kind))
    twin = estimate(retarget(wl, "mac", 8), preset("mac"))
    assert own.energy_uj < 0.9 * twin.energy_uj


def test_authors_bireal18_matches_published_counts() -> None:
    """Bi-Real-18 from sign-STE convs and real shortcuts: Liu et al. (ECCV 2018, Table 4)."""
    wl = extract(BiReal18(), (1, 3, 224, 224))
    counts = wl.binary_op_counts()
    assert counts["bops"] == pytest.approx(1.68e9, rel=0.02)
    assert counts["flops"] == pytest.approx(1.39e8, rel=0.02)
    assert counts["ops"] == pytest.approx(1.63e8, rel=0.02)
    shortcut = [l for l in wl.layers if l.name.endswith("downsample.1")]
    assert [l.pe for l in shortcut] == ["mac"] * 3
    on_xnor = workloads_of(wl, "xnor")
    assert [l.pe for l in on_xnor.layers if l.name.endswith("downsample.1")] == ["mac"] * 3


def workloads_of(wl, pe: str):
    """What the CLI costs on ``pe`` for a traced network (as written, or retargeted)."""
    written = {l.pe for l in wl.layers if l.is_compute} - {"mac"}
    return wl if written == {pe} else retarget(wl, pe, 8)


def test_transformer_encoder_vit_every_mac() -> None:
    """A small ViT from nn.TransformerEncoder: every MAC torch counts, every parameter (the class
    token too, which reaches the encoder through a concatenation)."""
    class ViT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.patch = nn.Conv2d(3, 64, 8, 8)
            self.cls = nn.Parameter(torch.zeros(1, 1, 64))
            self.pos = nn.Parameter(torch.zeros(1, 17, 64))
            layer = nn.TransformerEncoderLayer(64, 4, 128, batch_first=True, norm_first=True)
            self.enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
            self.head = nn.Linear(64, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            tokens = self.patch(x).flatten(2).transpose(1, 2)
            tokens = torch.cat([self.cls.expand(x.shape[0], -1, -1), tokens], 1) + self.pos
            return self.head(self.enc(tokens)[:, 0])

    net = ViT().eval()
    wl = extract(net, (1, 3, 32, 32))
    per_layer = 4 * 17 * 64 * 64 + 2 * 17 * 17 * 64 + 2 * 17 * 64 * 128
    assert wl.macs == 16 * 3 * 64 * 64 + 2 * per_layer + 64 * 10 == flops(net, torch.randn(1, 3, 32, 32)) // 2
    assert wl.params == sum(p.numel() for p in net.parameters()) and wl.warnings == ()


class BinarizeConv2d(nn.Conv2d):
    """IR-Net-style: a Conv2d subclass that balances, signs and scales its weight and signs its
    input in its own forward."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight - self.weight.mean(dim=(1, 2, 3), keepdim=True)
        scale = w.abs().mean(dim=(1, 2, 3), keepdim=True)
        bw = scale * SignSTE.apply(w)
        return F.conv2d(SignSTE.apply(x), bw, self.bias, self.stride, self.padding, self.dilation, self.groups)


class StandardisedConv2d(nn.Conv2d):
    """A real-valued Conv2d subclass with its own forward (weight standardisation)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = (self.weight - self.weight.mean(dim=(1, 2, 3), keepdim=True)) / self.weight.std(dim=(1, 2, 3), keepdim=True)
        return F.conv2d(x, w, self.bias, self.stride, self.padding)


def test_conv2d_subclasses_with_their_own_forward() -> None:
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), BinarizeConv2d(8, 8, 3, padding=1),
                        StandardisedConv2d(8, 8, 3, padding=1), nn.Flatten(), nn.Linear(8 * 36, 10))
    wl = extract(net, (1, 3, 6, 6))
    rows = [(l.name, l.pe, l.detail) for l in wl.layers if l.is_compute]
    assert rows == [("0", "mac", "Conv2d"), ("1", "xnor", "BinarizeConv2d (conv2d)"),
                    ("2", "mac", "StandardisedConv2d"), ("4", "mac", "Linear")]
    assert wl.params == sum(p.numel() for p in net.parameters()) and wl.warnings == ()
    # the real-valued subclass converts as a Conv2d does; the binary one is the authors' layer
    assert [l.pe for l in retarget(wl, "adder", 8).layers if l.is_compute] == ["mac", "adder", "mac", "mac"]


@pytest.mark.parametrize(("cls", "gates"), [(nn.LSTMCell, 4), (nn.GRUCell, 3), (nn.RNNCell, 1)])
def test_recurrent_cells(cls: type, gates: int) -> None:
    class Subclassed(cls):  # a subclass keeps its gate count
        pass

    net = Subclassed(10, 6)
    wl = extract(net, (4, 10))
    assert wl.macs == 4 * gates * 6 * (10 + 6) and wl.params == sum(p.numel() for p in net.parameters())


class LearnableBias(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bias.expand_as(x)


class ReActBlock(nn.Module):
    """ReActNet-A block: shifted sign, binary 3x3 conv, RPReLU, shifted sign, binary 1x1 conv
    (two of them, concatenated, where the width doubles)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.stride, self.double = stride, cout != cin
        self.move11, self.sign = LearnableBias(cin), PolySign()
        self.binary_3x3, self.bn1 = ScaledSignConv(cin, cin, 3, stride, 1), nn.BatchNorm2d(cin)
        self.pooling = nn.AvgPool2d(2, 2)
        self.rprelu1 = nn.Sequential(LearnableBias(cin), nn.PReLU(cin), LearnableBias(cin))
        self.move21 = LearnableBias(cin)
        self.pw = nn.ModuleList(ScaledSignConv(cin, cin, 1, 1, 0) for _ in range(1 + self.double))
        self.bn2 = nn.ModuleList(nn.BatchNorm2d(cin) for _ in range(1 + self.double))
        self.rprelu2 = nn.Sequential(LearnableBias(cout), nn.PReLU(cout), LearnableBias(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out1 = self.bn1(self.binary_3x3(self.sign(self.move11(x))))
        out1 = self.rprelu1((self.pooling(x) if self.stride == 2 else x) + out1)
        signs = self.sign(self.move21(out1))
        out2 = torch.cat([bn(pw(signs)) + out1 for pw, bn in zip(self.pw, self.bn2)], dim=1)
        return self.rprelu2(out2)


class ReActNetA(nn.Module):
    widths = [32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024]

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32))
        w = self.widths
        self.blocks = nn.Sequential(*(ReActBlock(w[i - 1], w[i], 2 if w[i] != w[i - 1] and w[i] != 64 else 1)
                                      for i in range(1, len(w))))
        self.fc = nn.Linear(1024, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.blocks(self.stem(x)).mean((2, 3)))


def test_authors_reactnet_a_matches_published_counts() -> None:
    """ReActNet-A (Liu et al., ECCV 2020, Table: BOPs 4.82e9, FLOPs 0.12e8, OPs 0.87e8)."""
    net = ReActNetA()
    wl = extract(net, (1, 3, 224, 224))
    counts = wl.binary_op_counts()
    assert counts["bops"] == pytest.approx(4.82e9, rel=0.02)
    assert counts["flops"] == pytest.approx(0.12e8, rel=0.02)
    assert counts["ops"] == pytest.approx(0.87e8, rel=0.02)
    assert wl.params == sum(p.numel() for p in net.parameters()) and wl.warnings == ()


def test_shapes_that_do_not_broadcast_fail_as_in_torch() -> None:
    class Bad(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.randn(3, 5))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (x[:, None] - self.w[None]).abs().sum(2)

    with pytest.raises(HwsimError, match=r"^forward pass on input shape \(2, 4\) failed: RuntimeError: "
                                         r"shapes \[2, 1, 4\] and \[1, 3, 5\] do not broadcast$"):
        extract(Bad(), (2, 4))


def test_dilated_conv_refused_on_xnor_by_the_cli_path(tmp_path) -> None:
    source = tmp_path / "dilated.py"
    source.write_text("import torch.nn as nn\n"
                      "def net():\n"
                      "    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=2, dilation=2),\n"
                      "                         nn.Conv2d(8, 8, 3, padding=1), nn.Flatten(), nn.Linear(512, 10)), (1, 3, 8, 8)\n")
    with pytest.raises(HwsimError, match=r"^--pe xnor: layer '1' \(Conv2d\) cannot become xnor: module must use "
                                         r"dilation 1"):
        workloads(f"{source}:net", [("xnor", 1)])
    (adder,) = workloads(f"{source}:net", [("adder", 8)])
    assert [l.pe for l in adder.layers if l.is_compute] == ["mac", "adder", "adder", "mac"]
