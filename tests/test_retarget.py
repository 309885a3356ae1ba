"""``retarget`` against a fresh convert + extract, layer by layer and field by field.

The pairs are the ones the CLI builds: a network estimated on PE kind X and its ``mac`` baseline
(X -> mac), and a ``mac`` run compared with another kind (mac -> X, ``--compare``). "Fresh" is
what the CLI's ``build_workload`` does: the network as built when the kind is its native one,
else ``convert``; then ``extract`` at the array's width, or 8 bits for an xnor array.
"""

from __future__ import annotations

import dataclasses
from functools import cache

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hwsim.errors import HwsimError
from contract import XNOR_AUX_BITS
from hwsim.extract import extract, retarget
from hwsim.workload import Layer, Workload
from models.convert import convert
from models.layers import ShiftConv2d
from models.registry import MODELS, load_model

NETWORKS = ("ghostnet", "resnet20", "resnet18", "birealnet18")
#: (kind, array width) of each side of a CLI pair; the mac side of an xnor run is 8 bits wide,
#: as ``hwsim.simulate.with_pe`` makes it, the others keep the width.
PAIRS = [(("adder", 6), ("mac", 6)), (("shift", 8), ("mac", 8)), (("xnor", 1), ("mac", 8)),
         (("mac", 6), ("adder", 6)), (("mac", 8), ("shift", 8)), (("mac", 8), ("xnor", 1))]


@cache
def _network(name: str) -> tuple[nn.Module, tuple[int, ...]]:
    net, shape, _ = load_model(name)
    return net, shape


@cache
def fresh(name: str, pe: str, bits: int, keep_first_last: bool = True, convert_native: bool = False) -> Workload:
    """The CLI's workload of registry network ``name`` on a ``pe`` array of width ``bits``
    (``convert_native``: convert even to the native kind, as ``retarget`` does)."""
    net, shape = _network(name)
    if pe != MODELS[name].pe or convert_native:
        net = convert(net, pe, input_shape=shape, keep_first_last=keep_first_last)
    return extract(net, shape, bits=XNOR_AUX_BITS if pe == "xnor" else bits, name=name)


@cache
def relus_dropped_for_xnor(name: str) -> frozenset[str]:
    """Names of the ReLU modules that ``convert(net, "xnor")`` replaces by Identity."""
    net, shape = _network(name)
    binary = dict(convert(net, "xnor", input_shape=shape).named_modules())
    return frozenset(n for n, m in net.named_modules()
                     if isinstance(m, nn.ReLU) and type(binary[n]) is nn.Identity)


def assert_same_layers(got: Workload, want: Workload) -> None:
    """Equal workloads; on failure name the first layer and the fields that differ."""
    assert [layer.name for layer in got.layers] == [layer.name for layer in want.layers]
    for a, b in zip(got.layers, want.layers):
        diff = {f.name: (getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(Layer)
                if getattr(a, f.name) != getattr(b, f.name)}
        assert not diff, f"layer {a.name}: (retarget, fresh) {diff}"
    assert (got.name, got.input_shape, got.warnings) == (want.name, want.input_shape, want.warnings)


@pytest.mark.parametrize("name", NETWORKS)
@pytest.mark.parametrize(("source", "target"), PAIRS, ids=[f"{a[0]}-{b[0]}" for a, b in PAIRS])
def test_retarget_equals_convert_and_extract(name: str, source: tuple[str, int], target: tuple[str, int]) -> None:
    (pe_a, bits_a), (pe_b, bits_b) = source, target
    got = retarget(fresh(name, pe_a, bits_a), pe_b, bits_b)
    # Bi-Real Net on xnor, its own kind, is not converted by the CLI; retarget gives the
    # conversion (see test_native_kind_of_a_mixed_network for the difference).
    want = fresh(name, pe_b, bits_b, convert_native=(name, pe_b) == ("birealnet18", "xnor"))
    dropped = relus_dropped_for_xnor(name)
    if pe_b == "xnor":  # convert drops ReLUs that only binary layers read; retarget keeps them
        assert {l.name for l in got.layers} - {l.name for l in want.layers} == dropped
        got = got.without(dropped)
    if pe_a == "xnor":  # ... and cannot bring them back from an xnor conversion
        assert {l.name for l in want.layers} - {l.name for l in got.layers} == dropped
        want = want.without(dropped)
    assert_same_layers(got, want)
    assert got.macs == fresh(name, pe_b, bits_b).macs and got.params == fresh(name, pe_b, bits_b).params
    assert got.macs_by_pe() != fresh(name, pe_a, bits_a).macs_by_pe()  # something was retargeted


def test_retarget_convert_all() -> None:
    """``--convert-all``: no layer stays mac, and back to mac every layer is mac again."""
    adder = fresh("resnet20", "adder", 8, keep_first_last=False)
    assert set(adder.macs_by_pe()) == {"adder"}
    assert_same_layers(retarget(adder, "mac", 8, keep_first_last=False), fresh("resnet20", "mac", 8))
    assert_same_layers(retarget(fresh("resnet20", "mac", 8), "shift", 4, keep_first_last=False),
                       fresh("resnet20", "shift", 4, keep_first_last=False))


def test_dropped_relus_are_exactly_the_ones_before_binary_layers() -> None:
    """The documented difference, pinned: ReLUs whose output only binary convs read."""
    assert relus_dropped_for_xnor("ghostnet") == {
        n for n, m in _network("ghostnet")[0].named_modules() if n.endswith("gate.2")}  # SE, into a 1x1
    assert relus_dropped_for_xnor("resnet20") == {f"stages.{i}.body.0.2" for i in range(9)}
    # ResNet-18 also loses the block-output ReLUs that feed a downsampling block's two convs.
    assert relus_dropped_for_xnor("resnet18") == (
        {f"stages.{i}.body.0.2" for i in range(8)} | {f"stages.{i}.relu" for i in (1, 3, 5)})
    assert relus_dropped_for_xnor("birealnet18") == frozenset()
    assert all(l.op == "act" and l.detail == "relu" for l in fresh("ghostnet", "mac", 8).layers
               if l.name in relus_dropped_for_xnor("ghostnet"))


def test_native_kind_of_a_mixed_network() -> None:
    """The CLI does not convert Bi-Real Net to xnor, its own kind: its real 1x1 shortcut convs stay
    mac there, while ``retarget`` (a conversion) makes them xnor; nothing else differs."""
    got = retarget(fresh("birealnet18", "mac", 8), "xnor", 1)
    native = fresh("birealnet18", "xnor", 1)
    differ = [a.name for a, b in zip(got.layers, native.layers) if a != b]
    shortcuts = [l.name for l in native.layers if l.pe == "mac" and ".shortcut." in l.name]
    assert differ == shortcuts and len(shortcuts) == 3
    for name in shortcuts:
        a, b = (next(l for l in w.layers if l.name == name) for w in (got, native))
        assert (a.pe, a.act_bits, a.weight_bits, a.detail) == ("xnor", 1, 1, "BinaryConv2d")
        assert dataclasses.replace(a, pe="mac", act_bits=8, weight_bits=8, detail="Conv2d") == b


class MixedNet(nn.Module):
    """A module conv, a shift conv with its own ``max_shift``, a functional conv and a matmul."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Conv2d(3, 4, 3, padding=1)
        self.shift = ShiftConv2d(4, 4, 3, padding=1, max_shift=3)
        self.w = nn.Parameter(torch.zeros(4, 4, 1, 1))
        self.last = nn.Linear(16, 5)
        self.proj = nn.Parameter(torch.zeros(5, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv2d(torch.relu(self.shift(self.first(x))), self.w)
        return self.last(y.flatten(1)) @ self.proj


@pytest.mark.parametrize(("pe", "bits"), [("shift", 4), ("adder", 5), ("xnor", 1), ("mac", 3)])
def test_functional_layers_and_own_shift_code(pe: str, bits: int) -> None:
    """Functional conv/matmul stay mac (convert touches modules only); a shift layer that stays
    shift keeps the code width of its own ``max_shift`` (3: 4 bits, not 5 for the default 7)."""
    net, shape = MixedNet(), (1, 3, 2, 2)
    source = extract(net, shape, bits=8)
    want = extract(convert(net, pe, input_shape=shape), shape, bits=XNOR_AUX_BITS if pe == "xnor" else bits)
    got = retarget(source, pe, bits)
    assert_same_layers(got, want)
    assert [l.pe for l in got.layers if l.is_compute] == ["mac", pe, "mac", "mac", "mac"]
    if pe == "shift":
        assert [l.weight_bits for l in got.layers if l.pe == "shift"] == [4]


def test_retarget_wrong() -> None:
    workload = fresh("resnet20", "mac", 8)
    with pytest.raises(HwsimError, match=r"^unknown PE kind 'fpu'; choose one of mac, adder, xnor, shift$"):
        retarget(workload, "fpu", 8)
    with pytest.raises(ValueError, match=r"^the adder datapath supports 2 to 32.*, not 40$"):
        retarget(workload, "adder", 40)
