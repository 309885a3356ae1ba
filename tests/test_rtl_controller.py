# amaranth: UnusedElaboratable=no
"""The top's geometry (parameters, descriptor, buffer sizing, accumulator width), its validation,
the manifest of :func:`rtl.emit.generate` against the emitted Verilog, and lint."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

import contract
from hwsim.accelerator import Accelerator, ArrayConfig, MemoryConfig, RtlConfig
from hwsim.errors import ConfigError
from hwsim.rtl_plan import TopGeometry, top_geometry
from rtl.emit import generate
from rtl.top import LayerAccelerator, descriptor_layout

#: Amaranth-simulator tier (see pyproject.toml markers); tool tests are also marked rtl.
pytestmark = pytest.mark.amaranth

SMALL = MemoryConfig(ifmap_sram_kib=0.25, weight_sram_kib=0.5, ofmap_sram_kib=0.25)


def small(pe: str = "mac", bits: int = 8, *, rows: int = 2, cols: int = 2, lanes: int = 8,
          max_steps: int = 16, memory: MemoryConfig = SMALL, **kw) -> Accelerator:
    """A small accelerator whose top is sized for folds of ``max_steps`` steps."""
    return Accelerator(pe=pe, bits=bits, array=ArrayConfig(rows=rows, cols=cols, lanes=lanes),
                       memory=memory, rtl=RtlConfig(max_steps=max_steps), **kw)


def geometry(**kw) -> TopGeometry:
    """A valid mac geometry with some fields replaced (bypassing top_geometry's checks)."""
    return dataclasses.replace(top_geometry(small()), **kw)


def verilog_ports(path: Path, module: str) -> dict[str, int]:
    """Port name -> width as declared in ``module`` of the Verilog file (independent of the
    manifest, which is made from the Amaranth signature)."""
    text = path.read_text()
    start = re.search(rf"^module {re.escape(module)}\s*\(", text, re.MULTILINE)
    assert start, f"module {module} not in {path}"
    body = text[start.end():text.index("endmodule", start.end())]
    return {name: int(msb) + 1 if msb else 1 for _, msb, name in
            re.findall(r"^\s*(input|output)\s+(?:\[(\d+):0\]\s+)?(\w+);", body, re.MULTILINE)}


def test_descriptor_layout() -> None:
    layout = descriptor_layout(12)
    assert [name for name, _ in layout][:3] == ["in_h", "in_w", "out_h"]
    # seven sizes, six geometry fields, seven flags, then the 12-bit k_in_ch of K tiles: 127
    # bits, still two 64-bit words
    assert layout.size == 7 * 12 + 6 * 4 + 7 + 12 == 127
    assert layout["relu"].offset == 7 * 12 + 6 * 4
    assert layout["pad_low"].offset == 7 * 12 + 6 * 4 + 2
    assert layout["psum_add"].offset == 7 * 12 + 6 * 4 + 3
    assert layout["psum_write"].offset == 7 * 12 + 6 * 4 + 4
    assert layout["residual"].offset == 7 * 12 + 6 * 4 + 5
    assert layout["depthwise"].offset == 7 * 12 + 6 * 4 + 6
    assert layout["k_in_ch"].offset == 7 * 12 + 6 * 4 + 7


def test_top_shapes() -> None:
    mac = LayerAccelerator(top_geometry(small()))
    assert mac.weight_word.size == 2 * 8 and mac.out_word.size == 2 * 8
    # requantization parameters: 32-bit bias, 16-bit multiplier, 6-bit shift (S <= 62) per lane
    assert mac.param_word.size == 2 * (32 + 16 + 6)
    xnor = LayerAccelerator(top_geometry(small("xnor", 1, lanes=8)))
    # 16 words of 8 lanes: K <= 128, the dot product in [-128, 128] is 9 signed bits per lane
    assert xnor.lanes == 8 and xnor.positions == 16 * 8 and xnor.out_word.size == 2 * 9
    assert (xnor.acc_shape.width, xnor.acc_shape.signed) == (8, False)  # counts 0..128


def test_buffer_words() -> None:
    """Depths are floor(KiB * 8192 / word bits); the weight SRAM also holds one parameter word
    per min(9, max_steps) weight words."""
    acc = Accelerator(array=ArrayConfig(rows=4, cols=4), rtl=RtlConfig(max_steps=64),
                      memory=MemoryConfig(ifmap_sram_kib=1, weight_sram_kib=1, ofmap_sram_kib=2))
    geo = top_geometry(acc)
    assert geo.act_words == 1024  # 8 KiBit of 8-bit words
    assert geo.out_words == 2 * 8192 // 32  # 4 lanes of 8-bit outputs
    param_bits = 4 * (32 + 16 + 6)
    # 8192 bits / (32 + 216 / 9) bits per weight word = 146.3
    assert geo.weight_words == 146 and geo.param_words == 146 // 9 == 16
    assert geo.weight_words * 32 + geo.param_words * param_bits <= 8192
    # the fold length is automatic (rtl.max_steps 0): as long as the weight buffer holds
    auto = top_geometry(dataclasses.replace(acc, rtl=RtlConfig()))
    assert auto.max_steps == auto.weight_words < 4608


def test_acc_bits_exact_and_explicit() -> None:
    """The accumulator is exactly as wide as a ``max_steps`` fold needs; an explicit ``acc_bits``
    is honoured when it is at least that and refused, naming the field, when it is narrower."""
    # mac 8-bit: products in [-127 * 128, 128 * 128]; 16 * 16384 = 2**18 needs 19 bits + sign
    assert top_geometry(small()).acc_bits == 20
    assert top_geometry(small(max_steps=15)).acc_bits == 19  # 15 * 16384 < 2**18
    # adder 4-bit: -|x - w| >= -15, 16 * -15 = -240 fits 9 signed bits
    assert top_geometry(small("adder", 4)).acc_bits == 9
    # shift 8-bit, P = 3: |x << 3| <= 128 * 8 = 2**10; 16 * 2**10 = 2**14 needs 16 signed bits
    assert top_geometry(small("shift", 8, max_shift=3)).acc_bits == 16
    # xnor: 16 words of 8 lanes count up to 128, 8 unsigned bits
    assert top_geometry(small("xnor", 1, lanes=8)).acc_bits == 8
    assert top_geometry(small(acc_bits=20)).acc_bits == 20
    assert top_geometry(small(acc_bits=40)).acc_bits == 40
    with pytest.raises(ConfigError, match=r"^`acc_bits` of 19 cannot hold a mac fold of "
                                          r"`rtl.max_steps`=16 steps; it needs at least 20 "
                                          r"\(or lower rtl.max_steps\)$"):
        top_geometry(small(acc_bits=19))
    with pytest.raises(ConfigError, match=r"^`acc_bits` of 8 cannot hold a adder fold"):
        top_geometry(small("adder", 4, acc_bits=8))


def test_top_geometry_wrong() -> None:
    """What only the generated RTL cannot build is refused by top_geometry, naming the field."""
    with pytest.raises(ConfigError, match=r"^`array.dataflow` 'ws': the generated RTL is "
                                          r"output-stationary; use os \(--dataflow os\)$"):
        top_geometry(Accelerator(array=ArrayConfig(dataflow="ws")))
    with pytest.raises(ConfigError, match=r"^`bits` of 17: the integer quantizers and the generated "
                                          r"hardware support 2 to 16-bit operands, not 17$"):
        top_geometry(small(bits=17))
    with pytest.raises(ConfigError, match=r"^`array.lanes` must be a power of two for the generated "
                                          r"xnor top, not 6$"):
        top_geometry(small("xnor", 1, lanes=6))
    with pytest.raises(ConfigError, match=r"^`max_shift` must be at most 16 for the generated shift "
                                          r"PE, not 17$"):
        top_geometry(small("shift", max_shift=17))
    # 0.01 KiB = 81.92 bits: 2 words of 16 + 54 * 2 / 9 bits, fewer than a 16-step fold
    with pytest.raises(ConfigError, match=r"^`memory.weight_sram_kib` of 0.01 holds 2 weight words, "
                                          r"fewer than one fold of `rtl.max_steps`=16; enlarge it or "
                                          r"lower rtl.max_steps$"):
        top_geometry(small(memory=dataclasses.replace(SMALL, weight_sram_kib=0.01)))
    # 0.002 KiB = 16.4 bits: one word of two 8-bit lanes, fewer than the 2 rows of one fold
    with pytest.raises(ConfigError, match=r"^`memory.ofmap_sram_kib` of 0.002 holds 1 output words, "
                                          r"fewer than one fold of 2 rows; enlarge it$"):
        top_geometry(small(memory=dataclasses.replace(SMALL, ofmap_sram_kib=0.002)))


def test_top_wrong() -> None:
    """A hand-made geometry is checked again by the component."""
    with pytest.raises(ValueError, match=r"^`rows` must be a positive integer, not 0$"):
        LayerAccelerator(geometry(rows=0))
    with pytest.raises(ValueError, match=r"^`cols` must be a positive integer, not -1$"):
        LayerAccelerator(geometry(cols=-1))
    with pytest.raises(ValueError, match=r"^`pe` must be one of mac, adder, xnor, shift, not 'fma'$"):
        LayerAccelerator(geometry(pe="fma"))
    with pytest.raises(ValueError, match=r"^`bits` must be an integer from 2 to 16, not 17$"):
        LayerAccelerator(geometry(bits=17))
    with pytest.raises(ValueError, match=r"^`bits` must be 1 for the xnor PE, not 8$"):
        LayerAccelerator(geometry(pe="xnor", lanes=8))
    with pytest.raises(ValueError, match=r"^`lanes` must be a power of two \(1 except for xnor\), "
                                         r"not 6$"):
        LayerAccelerator(geometry(pe="xnor", bits=1, lanes=6))
    with pytest.raises(TypeError, match=r"^`act_words` must be a positive integer, not 1.5$"):
        LayerAccelerator(geometry(act_words=1.5))
    with pytest.raises(ValueError, match=r"^`weight_words` of 15 cannot hold one fold of "
                                         r"max_steps=16 steps$"):
        LayerAccelerator(geometry(weight_words=15))
    with pytest.raises(ValueError, match=r"^`out_words` of 1 cannot hold one fold of rows=2 rows$"):
        LayerAccelerator(geometry(out_words=1))
    with pytest.raises(ValueError, match=r"^`acc_bits` of 19 cannot hold a mac reduction of k=16; "
                                         r"it needs at least 20$"):
        LayerAccelerator(geometry(acc_bits=19))


@pytest.mark.parametrize("pe, bits, extra, acc_bits, signed", [
    ("mac", 8, {}, 20, True),                   # 16 * 128 * 128 = 2**18: 19 bits + sign
    ("xnor", 1, {"lanes": 8}, 8, False),        # 16 words * 8 lanes = 128: 8 unsigned bits
    ("mac", 8, {"acc_bits": 40}, 40, True),     # explicit: honoured everywhere
])
def test_manifest_consistent(tmp_path: Path, pe: str, bits: int, extra: dict, acc_bits: int,
                             signed: bool) -> None:
    """``manifest.json`` of generate (lint off) states the accumulator width the hand count
    gives and the contract computes, and every emitted module is declared with it: the PE's
    ``o_acc``/``i_acc``, the array's result row and, inside the top, the array and the output
    stage it feeds."""
    acc = small(pe, bits, **extra)
    made = generate(acc, tmp_path, lint=False)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest == made.manifest
    lanes = contract.lanes_per_pe(pe, acc.array.lanes)
    assert manifest["pe"]["acc_bits"] == acc_bits == manifest["geometry"]["acc_bits"] == made.geometry.acc_bits
    assert manifest["pe"]["acc_signed"] is signed
    if "acc_bits" not in extra:
        assert acc_bits == contract.acc_bits(pe, 16 * lanes, bits, max_shift=acc.max_shift, lanes=lanes)
    assert (manifest["pe"]["kind"], manifest["pe"]["bits"], manifest["pe"]["k"],
            manifest["pe"]["lanes"]) == (pe, bits, 16 * lanes, lanes)
    assert manifest["geometry"]["max_steps"] == manifest["pe"]["steps_per_fold_max"] == 16
    assert manifest["lint"] == {"tool": None, "result": "not run"}
    cols = acc.array.cols
    modules = manifest["modules"]
    assert set(modules) == {"pe", "array", "top", "network"}
    pe_ports = verilog_ports(tmp_path / modules["pe"]["verilog"], f"{pe}_pe")
    assert pe_ports["o_acc"] == pe_ports["i_acc"] == acc_bits
    assert modules["pe"]["ports"]["o_acc"] == {"dir": "output", "width": acc_bits}
    array_ports = verilog_ports(tmp_path / modules["array"]["verilog"], f"{pe}_array")
    assert array_ports["o_results__payload"] == cols * acc_bits
    assert modules["array"]["ports"]["o_results__payload"]["width"] == cols * acc_bits
    top_file = tmp_path / modules["top"]["verilog"]
    assert verilog_ports(top_file, rf"\{pe}_top.array")["o_results__payload"] == cols * acc_bits
    # the output stage takes the sums of K tiles: psum_bits wide (test_rtl_plan works one out)
    psum_bits = made.geometry.psum_bits
    assert psum_bits >= acc_bits and made.geometry.psum_words > 0
    assert verilog_ports(top_file, rf"\{pe}_top.output")["i_acc__payload"] == cols * psum_bits
    # the operand ports: 2 rows of activations, cols of weights, and the `last` flag
    x_bits = lanes if pe == "xnor" else bits
    assert array_ports["i_operands__payload"] == 2 * x_bits + cols * x_bits + 1
    assert verilog_ports(top_file, f"{pe}_top") == {
        port: info["width"] for port, info in modules["top"]["ports"].items()} | {"clk": 1, "rst": 1}
    net_ports = verilog_ports(tmp_path / modules["network"]["verilog"], f"{pe}_network")
    assert net_ports == {port: info["width"] for port, info in modules["network"]["ports"].items()} | {
        "clk": 1, "rst": 1}
    assert {name: net_ports[f"m_axi_{name}"] for name in ("araddr", "arlen", "rdata", "wdata", "wstrb")} == {
        "araddr": 32, "arlen": 8, "rdata": 64, "wdata": 64, "wstrb": 8}


def test_generate_wrong(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^`modules` must be a non-empty subset of \('pe', 'array', "
                                         r"'top', 'network', 'array_regs'\), not \('core',\)$"):
        generate(small(), tmp_path, modules=("core",), lint=False)
    with pytest.raises(ConfigError, match=r"^`acc_bits` of 19 cannot hold"):
        generate(small(acc_bits=19), tmp_path, lint=False)
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.rtl
@pytest.mark.parametrize("pe,bits", [("mac", 8), ("adder", 4), ("shift", 8), ("xnor", 1)])
def test_generate_top_lint(tmp_path: Path, pe: str, bits: int) -> None:
    """The top's Verilog passes ``verilator --lint-only -Wall`` with rtl.tools' waivers, and the
    manifest names every port and the descriptor fields."""
    acc = small(pe, bits, cols=3, memory=MemoryConfig(ifmap_sram_kib=0.25, weight_sram_kib=0.5,
                                                      ofmap_sram_kib=0.25))
    made = generate(acc, tmp_path, modules=("top",))
    manifest = made.manifest
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest
    assert {p.name for p in tmp_path.iterdir()} == {"manifest.json", f"{pe}_top.v"}
    assert manifest["lint"]["result"] == "clean" and set(manifest["modules"]) == {"top"}
    ports = manifest["modules"]["top"]["ports"]
    assert {"i_desc__payload", "i_acts__valid", "o_results__ready", "o_error"} <= set(ports)
    assert all(info["meaning"] for info in ports.values())
    assert manifest["descriptor"]["in_h"] == {"offset": 0, "width": 12, "signed": False}
    assert all(buf["kib"] <= 0.5 for buf in manifest["buffers"].values())
    assert made.geometry.max_steps == 16 and made.top is not None and made.top.geo == made.geometry
