"""hwsim.api: one accelerator resolution (preset, YAML diff, explicit choices) and one workload
loader whose retargeted baselines equal a fresh convert + extract."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwsim.api import resolve_accelerator, workloads
from hwsim.errors import ConfigError
from hwsim.extract import extract
from models.convert import convert
from models.registry import load_model


def test_preset_then_config_then_choices(tmp_path: Path) -> None:
    cfg = tmp_path / "a.yaml"
    cfg.write_text("pe: adder\nbits: 6\narray: {rows: 8, cols: 4}\nclock_mhz: 250\n")
    acc = resolve_accelerator(config=cfg)
    assert (acc.pe, acc.bits, acc.array.rows, acc.array.cols, acc.clock_mhz) == ("adder", 6, 8, 4, 250)
    acc = resolve_accelerator(config=cfg, bits=4, array=(2, 2), clock_mhz=100, dataflow="ws")
    assert (acc.bits, acc.array.rows, acc.array.cols, acc.clock_mhz, acc.array.dataflow) == (4, 2, 2, 100, "ws")
    assert acc.array.lanes == resolve_accelerator(pe="adder").array.lanes  # untouched: the preset's


def test_width_follows_the_kind(tmp_path: Path) -> None:
    """xnor is 1 bit; a config written for xnor taken to another kind gets 8-bit operands."""
    assert resolve_accelerator(pe="xnor").bits == 1
    cfg = tmp_path / "x.yaml"
    cfg.write_text("pe: xnor\n")
    assert resolve_accelerator(config=cfg, pe="shift").bits == 8
    assert resolve_accelerator(pe="mac").bits == 8


@pytest.mark.parametrize("kwargs, message", [
    ({"pe": "fma"}, "unknown PE kind 'fma'; choose one of mac, adder, xnor, shift"),
    ({"pe": "adder", "bits": 64}, "--bits 64: the adder datapath supports 2 to 32-bit operands, not 64"),
    ({"pe": "xnor", "bits": 4}, "--bits 4: "),
])
def test_resolve_wrong(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_accelerator(**kwargs)
    assert str(info.value).startswith(message)


def test_baseline_equals_a_fresh_conversion() -> None:
    """digits-cnn (native mac) on adder and shift: retargeted workloads equal convert + extract,
    layer by layer; the native one is the network as built."""
    got = workloads("digits-cnn", [("adder", 6), ("shift", 4), ("mac", 8)])
    net, shape, entry = load_model("digits-cnn")
    want = [extract(convert(net, "adder", input_shape=shape), shape, bits=6, name=entry.name),
            extract(convert(net, "shift", input_shape=shape), shape, bits=4, name=entry.name),
            extract(net, shape, bits=8, name=entry.name)]
    for g, w in zip(got, want, strict=True):
        assert g.layers == w.layers and g.name == w.name == "digits-cnn"
    assert [layer.pe for layer in got[0].layers if layer.is_compute] == ["mac", "adder", "adder", "mac"]


def test_xnor_targets_are_converted_afresh() -> None:
    """convert to xnor drops the ReLUs only binary layers read: retarget cannot, so xnor is fresh."""
    (got,) = workloads("digits-cnn", [("xnor", 1)], convert_all=True)
    net, shape, entry = load_model("digits-cnn")
    want = extract(convert(net, "xnor", input_shape=shape, keep_first_last=False), shape, bits=8,
                   name=entry.name)
    assert got.layers == want.layers
    assert all(layer.pe == "xnor" for layer in got.layers if layer.is_compute)


def test_unknown_model_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="nosuchnet"):
        workloads("nosuchnet", [("mac", 8)])


def test_clock_for_target_clocks_each_domain() -> None:
    """The main array at its fitted Fmax, the auxiliary arrays in their own domain at the slowest
    of theirs. The measured ecp5 PEs (calibrate_fmax.py) close the adder faster than the mac."""
    from cost_models.fpga import fmax_mhz
    from hwsim.api import array_clocks, clock_for_target
    from hwsim.workload import Layer, Workload

    acc = resolve_accelerator(pe="adder", array=(8, 8))
    net = Workload("w", (1, 3, 8, 8), (
        Layer("stem", "conv", 3, 8, 8, 8, 8, 8, kernel=(3, 3), padding=(1, 1), pe="mac"),
        Layer("body", "conv", 8, 8, 8, 8, 8, 8, pe="adder"),
    ))
    rows, cols = acc.aux_shape
    clocks = array_clocks(acc, "ecp5", net)
    assert clocks == {"adder": fmax_mhz("adder", 8, 8, 8, "ecp5"), "mac": fmax_mhz("mac", 8, rows, cols, "ecp5")}
    clocked = clock_for_target(acc, "ecp5", net)
    assert (clocked.clock_mhz, clocked.aux_clock_mhz) == (clocks["adder"], clocks["mac"])
    assert clock_for_target(acc, "ecp5").aux_clock_mhz == 0  # no auxiliary array: one domain
    assert array_clocks(acc, "ecp5") == {"adder": clocks["adder"]}  # no workload: the main array only
    assert clocks["adder"] > clocks["mac"]
    lut = array_clocks(acc, "ecp5", net, lut_only=True)
    assert lut["adder"] == clocks["adder"] and lut["mac"] < clocks["mac"]  # a LUT multiplier is slower than a DSP


def test_clock_for_target_wrong() -> None:
    from hwsim.api import clock_for_target

    with pytest.raises(ConfigError, match=r"^--target xc7: no Fmax for xc7: hwsim has place-and-route data "
                                          r"\(nextpnr\) for ecp5, ice40 only; give --clock-mhz$"):
        clock_for_target(resolve_accelerator(pe="adder"), "xc7")
