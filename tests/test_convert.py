"""convert(): first/last layer policy, full conversion, originals untouched, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models.convert import convert
from models.layers import PE_LAYERS, pe_kind_of
from models.networks.birealnet import birealnet18
from models.networks.digits import digits_cnn
from models.networks.resnet import resnet20

CIFAR = (1, 3, 32, 32)
KINDS = [pe for pe in PE_LAYERS if pe != "mac"]


def kinds(net: nn.Module) -> list[str]:
    """PE kind of every conv/linear layer in registration order."""
    return [k for k in map(pe_kind_of, net.modules()) if k is not None]


@pytest.fixture(scope="module")
def net() -> nn.Module:
    return resnet20().eval()


@pytest.fixture(scope="module")
def bireal() -> nn.Module:
    return birealnet18().eval()


@pytest.mark.parametrize("pe", KINDS)
def test_convert_keeps_first_and_last(net: nn.Module, pe: str) -> None:
    converted = convert(net, pe, input_shape=CIFAR)
    found = kinds(converted)
    assert found[0] == found[-1] == "mac"  # stem conv and classifier
    assert found[1:-1] == [pe] * (len(found) - 2)
    assert isinstance(converted.stem[0], PE_LAYERS["mac"][0]) and type(converted.fc) is nn.Linear
    with torch.no_grad():
        assert converted(torch.randn(CIFAR)).shape == (1, 10)


@pytest.mark.parametrize("pe", KINDS)
def test_convert_all(net: nn.Module, pe: str) -> None:
    converted = convert(net, pe, keep_first_last=False)
    assert kinds(converted) == [pe] * len(kinds(net))
    assert isinstance(converted.stem[0], PE_LAYERS[pe][0]) and isinstance(converted.fc, PE_LAYERS[pe][1])
    with torch.no_grad():
        assert converted(torch.randn(CIFAR)).shape == (1, 10)


def test_convert_leaves_original_untouched(net: nn.Module) -> None:
    before = {k: v.clone() for k, v in net.state_dict().items()}
    layers = list(net.modules())
    converted = convert(net, "adder", input_shape=CIFAR)
    assert converted is not net
    assert list(net.modules()) == layers
    assert set(kinds(net)) == {"mac"}
    after = net.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_convert_binary_network_to_adder(bireal: nn.Module) -> None:
    """Any kind converts: Bi-Real's xnor convs and its real 1x1 convs all become adder."""
    found = kinds(convert(bireal, "adder", input_shape=(1, 3, 224, 224)))
    assert found[0] == found[-1] == "mac"
    assert found[1:-1] == ["adder"] * 19  # 16 binary 3x3 + 3 real 1x1 downsample convs


def test_convert_to_mac_makes_binary_network_real(bireal: nn.Module) -> None:
    assert set(kinds(convert(bireal, "mac", keep_first_last=False))) == {"mac"}


class ClassifierFirst(nn.Module):
    """Registers its layers in the reverse of the order it runs them."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 2)
        self.middle = nn.Conv2d(4, 8, 3, padding=1)
        self.first = nn.Conv2d(1, 4, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.middle(self.first(x))).flatten(1))


def test_first_and_last_follow_execution_order() -> None:
    converted = convert(ClassifierFirst(), "shift", input_shape=(1, 1, 8, 8))
    assert [pe_kind_of(converted.fc), pe_kind_of(converted.middle), pe_kind_of(converted.first)] == \
        ["mac", "shift", "mac"]


def test_shared_layer_stays_shared() -> None:
    conv = nn.Conv2d(4, 4, 3, padding=1)
    net = nn.Sequential(nn.Conv2d(1, 4, 1), conv, conv, nn.Flatten(), nn.Linear(64, 2))
    converted = convert(net, "adder", input_shape=(1, 1, 4, 4))
    assert converted[1] is converted[2] and pe_kind_of(converted[1]) == "adder"


def test_convert_unknown_kind(net: nn.Module) -> None:
    with pytest.raises(ValueError, match=r"^unknown PE kind 'foo'; choose one of mac, adder, xnor, shift$"):
        convert(net, "foo", input_shape=CIFAR)


def test_convert_needs_input_shape(net: nn.Module) -> None:
    with pytest.raises(ValueError, match=r"^input_shape is needed to find the first and last layers; "
                                         r"pass input_shape=\(1, C, H, W\) or keep_first_last=False$"):
        convert(net, "adder")


def test_convert_without_layers() -> None:
    with pytest.raises(ValueError, match=r"^ReLU has no conv or linear layer to convert$"):
        convert(nn.ReLU(), "adder", keep_first_last=False)


def test_xnor_variant_drops_relus_that_feed_binary_layers():
    net = convert(digits_cnn(), "xnor", input_shape=(1, 1, 8, 8))
    kinds = [type(m).__name__ for m in net.features.modules() if not list(m.children())]
    assert kinds == ["Conv2d", "BatchNorm2d", "Identity", "BinaryConv2d", "BatchNorm2d", "Identity",
                     "BinaryConv2d", "BatchNorm2d", "ReLU"]
    assert type(convert(digits_cnn(), "adder", input_shape=(1, 1, 8, 8)).features[1][2]) is nn.ReLU
