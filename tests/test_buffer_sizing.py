"""Bigger buffers never cost more dynamic energy (issue 15): residency keeps more tensors on chip,
tiles grow, banked SRAM keeps the energy of an access. Leakage is left out: it grows with SRAM area
(a real cost of large buffers, reported on its own).

The tiling heuristic ranks a few candidate tiles derived from the capacities, not every tile, so
a layer can land on a plan with a few more stall cycles (idle-register energy) when its buffers
grow: the property allows 0.5 % for that, far below the effects it guards (the model before
issue 15 rose 16 % from 64 KiB to 1 MiB on GhostNet)."""

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.accelerator import preset
from hwsim.api import workloads
from hwsim.errors import HwsimError
from hwsim.simulate import estimate
from hwsim.workload import Layer, Workload

SIZES_KIB = (64, 96, 128, 256, 512, 1024)


def _dynamic_uj(workload: Workload, pe: str, kib: float) -> float:
    acc = preset(pe)
    acc = dataclasses.replace(
        acc, memory=dataclasses.replace(acc.memory, ifmap_sram_kib=kib, weight_sram_kib=kib, ofmap_sram_kib=kib),
        power=dataclasses.replace(acc.power, leakage=False))
    return estimate(workload, acc).energy_uj


@st.composite
def conv_chains(draw):
    """2-4 convs in a chain (stride 1 or 2, 1x1 / 3x3, some depthwise), int8 mac."""
    size, ch = draw(st.sampled_from([14, 28, 56])), draw(st.sampled_from([16, 32, 64]))
    layers = []
    for i in range(draw(st.integers(2, 4))):
        k = draw(st.sampled_from([1, 3]))
        stride = draw(st.sampled_from([1, 1, 2]))
        depthwise = k == 3 and draw(st.booleans())
        out_ch = ch if depthwise else draw(st.sampled_from([16, 32, 64, 128, 256]))
        out = (size + 2 * (k // 2) - k) // stride + 1
        layers.append(Layer(name=f"c{i}", op="conv", in_ch=ch, in_h=size, in_w=size, out_ch=out_ch,
                            out_h=out, out_w=out, kernel=(k, k), stride=(stride, stride),
                            padding=(k // 2, k // 2), groups=ch if depthwise else 1, pe="mac"))
        size, ch = out, out_ch
    return Workload("chain", (1, layers[0].in_ch, layers[0].in_h, layers[0].in_w), tuple(layers))


@settings(max_examples=150, deadline=None)
@given(conv_chains(), st.integers(0, len(SIZES_KIB) - 2))
def test_dynamic_energy_never_rises_with_buffer_size(workload, i):
    try:
        small = _dynamic_uj(workload, "mac", SIZES_KIB[i])
    except HwsimError:  # a tile that does not fit the smaller buffers is refused, not costed
        return
    assert _dynamic_uj(workload, "mac", SIZES_KIB[i + 1]) <= small * 1.005


@pytest.mark.parametrize("model, pe", [("ghostnet", "adder"), ("resnet18", "mac"), ("mobilenetv2", "shift")])
def test_networks_dynamic_energy_falls_from_64_kib_to_1_mib(model, pe):
    (workload,) = workloads(model, [(pe, 8)])
    energies = [_dynamic_uj(workload, pe, kib) for kib in SIZES_KIB]
    assert all(b <= a * 1.005 for a, b in zip(energies, energies[1:])), energies
    assert energies[-1] <= energies[0]
