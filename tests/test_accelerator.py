"""The accelerator description: presets, YAML loading, validation messages."""

import dataclasses
from pathlib import Path

import pytest

from hwsim.accelerator import Accelerator, ArrayConfig, load, preset
from hwsim.errors import HwsimError

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def test_preset_per_pe_kind():
    assert preset("adder").pe == "adder" and preset("adder").bits == 8
    assert preset("xnor").bits == 1
    assert preset("mac").num_pes == 256


def test_preset_wrong():
    with pytest.raises(HwsimError, match=r"^unknown PE kind 'foo'; choose one of mac, adder, xnor, shift$"):
        preset("foo")


def test_shipped_configs_load():
    adder = load(CONFIGS / "adder-16x16.yaml")
    assert (adder.pe, adder.array.rows, adder.array.dataflow) == ("adder", 16, "os")
    xnor = load(CONFIGS / "xnor-32x32.yaml")
    assert (xnor.array.rows, xnor.array.dataflow, xnor.memory.weight_sram_kib) == (32, "ws", 128)
    assert xnor.memory.ifmap_sram_kib == 64  # default kept for fields the file leaves out


def test_yaml_is_a_diff_on_base(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text("array:\n  rows: 8\n")
    acc = load(path, base=preset("shift"))
    assert (acc.pe, acc.array.rows, acc.array.cols) == ("shift", 8, 16)


def test_dram_bytes_per_cycle():
    # 12.8 GB/s at 500 MHz = 12.8e9 / 500e6 = 25.6 bytes per cycle
    assert Accelerator().dram_bytes_per_cycle == pytest.approx(25.6)


@pytest.mark.parametrize("text, message", [
    ("colour: red\n", r"unknown key `colour`; valid keys here: acc_bits, array, bits, clock_mhz, memory, pe, tech"),
    ("array:\n  rowz: 4\n", r"unknown key `array.rowz`; valid keys here: cols, dataflow, lanes, rows, vector_lanes"),
    ("array:\n  rows: 0\n", r"`array.rows` must be a positive integer, not 0"),
    ("array:\n  rows: -4\n", r"`array.rows` must be a positive integer, not -4"),
    ("array:\n  dataflow: diagonal\n", r"`array.dataflow` must be one of os, ws, is, not 'diagonal'"),
    ("memory:\n  weight_sram_kib: -1\n", r"`memory.weight_sram_kib` must be a positive number, not -1"),
    ("memory: 5\n", r"`memory` must be a mapping of its fields, not 5"),
    ("pe: adder\nbits: 64\n", r"the adder datapath supports 2 to 32 bits, not 64"),
    ("pe: xnor\nbits: 8\n", r"the xnor datapath works on 1-bit operands, not 8; use --bits 1"),
    ("clock_mhz: fast\n", r"`clock_mhz` must be a positive number, not 'fast'"),
])
def test_yaml_wrong(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(HwsimError, match="^" + str(path).replace(".", r"\.") + ": " + message + "$"):
        load(path)


def test_yaml_malformed(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("array: [rows: 4\n")
    with pytest.raises(HwsimError, match=r"^accelerator config '.*bad\.yaml' is not valid YAML at line 2$"):
        load(path)


def test_yaml_not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(HwsimError, match=r"^.*list\.yaml: an accelerator config must be a mapping of fields, not list$"):
        load(path)


def test_missing_config():
    with pytest.raises(HwsimError, match=r"^accelerator config 'nope\.yaml' not found; check the path$"):
        load("nope.yaml")


def test_replace_revalidates():
    with pytest.raises(HwsimError, match=r"^`array.cols` must be a positive integer, not 0$"):
        dataclasses.replace(preset("mac"), array=ArrayConfig(cols=0))
