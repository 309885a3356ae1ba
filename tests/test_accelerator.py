"""The accelerator description: presets, YAML loading, validation messages."""

import dataclasses
import json
from pathlib import Path

import pytest

from hwsim.accelerator import Accelerator, ArrayConfig, RtlConfig, from_dict, load, preset, with_pe
from hwsim.errors import ConfigError, HwsimError

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
    ("colour: red\n", r"unknown key `colour`; valid keys here: acc_bits, array, aux_clock_mhz, bits, clock_mhz, max_align, max_shift, memory, pe, power, rtl, schedule, tech"),
    ("rtl:\n  depth: 4\n", r"unknown key `rtl.depth`; valid keys here: bias_bits, bus_bits, dim_bits, max_steps, memory_latency"),
    ("rtl:\n  dim_bits: 17\n", r"`rtl.dim_bits` must be an integer from 2 to 16, not 17"),
    ("rtl:\n  max_steps: -1\n", r"`rtl.max_steps` must be a non-negative integer, not -1"),
    ("rtl:\n  bias_bits: 0\n", r"`rtl.bias_bits` must be a positive integer, not 0"),
    ("pe: shift\nmax_shift: -2\n", r"`max_shift` must be a non-negative integer, not -2"),
    ("array:\n  rowz: 4\n", r"unknown key `array.rowz`; valid keys here: aux_cols, aux_rows, cols, dataflow, dataflows, depthwise, fold_overlap, lanes, rows, vector_lanes"),
    ("array:\n  rows: 0\n", r"`array.rows` must be a positive integer, not 0"),
    ("array:\n  rows: -4\n", r"`array.rows` must be a positive integer, not -4"),
    ("array:\n  dataflow: diagonal\n", r"`array.dataflow` must be one of os, ws, is, not 'diagonal'"),
    ("memory:\n  weight_sram_kib: -1\n", r"`memory.weight_sram_kib` must be a positive number, not -1"),
    ("memory: 5\n", r"`memory` must be a mapping of its fields, not 5"),
    ("pe: adder\nbits: 64\n", r"the adder datapath supports 2 to 32-bit operands, not 64"),
    ("pe: xnor\nbits: 8\n", r"the xnor datapath works on 1-bit operands, not 8; use --bits 1"),
    ("clock_mhz: fast\n", r"`clock_mhz` must be a positive number, not 'fast'"),
])
def test_yaml_wrong(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="^" + str(path).replace(".", r"\.") + ": " + message + "$"):
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


def test_rtl_group_defaults_and_yaml(tmp_path):
    acc = Accelerator()
    assert (acc.rtl.max_steps, acc.rtl.bias_bits, acc.rtl.dim_bits, acc.max_shift) == (0, 32, 12, 7)
    path = tmp_path / "r.yaml"
    path.write_text("max_shift: 4\nrtl:\n  max_steps: 72\n")
    acc = load(path, base=preset("shift"))
    assert (acc.max_shift, acc.rtl) == (4, RtlConfig(max_steps=72, bias_bits=32, dim_bits=12))
    # a diff merges the group field by field
    acc = from_dict({"rtl": {"dim_bits": 8}}, base=acc)
    assert acc.rtl == RtlConfig(max_steps=72, bias_bits=32, dim_bits=8)


def test_with_pe_moves_bits():
    assert with_pe(preset("mac"), "xnor").bits == 1
    assert with_pe(preset("xnor"), "adder").bits == 8  # leaving xnor's 1 bit: the 8-bit aux width
    moved = with_pe(Accelerator(bits=4, array=ArrayConfig(rows=4)), "shift")
    assert (moved.pe, moved.bits, moved.array.rows) == ("shift", 4, 4)


def test_psum_bits_by_hand():
    acc = Accelerator()
    # mac 8-bit, K = 9: 9 * 128 * 128 = 147456 in [2**17, 2**18) -> 18 bits + sign
    assert acc.psum_bits("mac", 8, 9) == 19
    # adder 8-bit, K = 9: [-9 * 255, 0] = [-2295, 0], 2**11 < 2295 < 2**12 -> 12 + sign
    assert acc.psum_bits("adder", 8, 9) == 13
    # shift 8-bit, P = 7, K = 9: +-9 * 2**14 = +-147456 -> 18 bits + sign;
    # P = 2: +-9 * 2**9 = +-4608, in [2**12, 2**13) -> 13 bits + sign
    assert acc.psum_bits("shift", 8, 9) == 19
    assert dataclasses.replace(acc, pe="shift", max_shift=2).psum_bits("shift", 8, 9) == 14
    # xnor, 64 lanes, K = 100: ceil(100 / 64) = 2 words -> count in [0, 128] -> 8 bits unsigned
    assert preset("xnor").psum_bits("xnor", 1, 100) == 8
    assert Accelerator(acc_bits=24).psum_bits("mac", 8, 4608) == 24  # a fixed width wins


def test_with_pe_and_preset_errors_are_config_errors():
    with pytest.raises(ConfigError, match=r"^unknown PE kind 'fpu'; choose one of mac, adder, xnor, shift$"):
        preset("fpu")
    with pytest.raises(ConfigError, match=r"^unknown PE kind 'fpu'; choose one of mac, adder, xnor, shift$"):
        with_pe(preset("mac"), "fpu")
    with pytest.raises(ConfigError, match=r"^`pe` must be one of mac, adder, xnor, shift, not 'fpu'$"):
        Accelerator(pe="fpu")


def test_to_dict_is_what_json_gives_back_and_reads_back_equal():
    # a flexible array's dataflows are a tuple in the Accelerator and a list in JSON and YAML
    acc = Accelerator(array=ArrayConfig(dataflow="os", dataflows=("os", "ws")))
    data = acc.to_dict()
    assert data["array"]["dataflows"] == ["os", "ws"]
    assert json.loads(json.dumps(data)) == data
    assert from_dict(data) == acc
