# amaranth: UnusedElaboratable=no
"""The top's parameters, descriptor and buffer sizing, and its generated Verilog (lint)."""

from __future__ import annotations

import json

import pytest

from hwsim.accelerator import Accelerator, ArrayConfig, MemoryConfig
from rtl.emit import generate_top, lint
from rtl.requant import MULT_BITS, RSHIFT_MAX
from rtl.top import LayerAccelerator, buffer_words, descriptor_layout

SIZES = {"act_words": 64, "weight_words": 64, "param_words": 8, "out_words": 64}


def top(**kw) -> LayerAccelerator:
    args = {"pe": "mac", "bits": 8, "rows": 2, "cols": 2, "max_steps": 16, **SIZES, **kw}
    return LayerAccelerator(**args)


def test_descriptor_layout() -> None:
    layout = descriptor_layout(12)
    assert [name for name, _ in layout][:3] == ["in_h", "in_w", "out_h"]
    assert layout.size == 7 * 12 + 6 * 4 + 2
    assert layout["relu"].offset == 7 * 12 + 6 * 4


def test_intref_constants() -> None:
    from models.intref import MULT_BITS as REF_MULT_BITS
    assert MULT_BITS == REF_MULT_BITS and RSHIFT_MAX == 62


def test_top_shapes() -> None:
    mac = top()
    assert mac.weight_word.size == 16 and mac.out_word.size == 16
    xnor = top(pe="xnor", bits=1, lanes=8)
    assert xnor.lanes == 8 and xnor.positions == 16 * 8 and xnor.out_word.size == 2 * 9


def test_buffer_words() -> None:
    acc = Accelerator(array=ArrayConfig(rows=4, cols=4),
                      memory=MemoryConfig(ifmap_sram_kib=1, weight_sram_kib=1, ofmap_sram_kib=2))
    words = buffer_words(acc, max_steps=64)
    assert words["act_words"] == 1024  # 8 KiBit of 8-bit words
    assert words["out_words"] == 2 * 8192 // 32
    param_bits = 4 * (32 + 16 + 6)
    assert words["weight_words"] * 32 + words["param_words"] * param_bits <= 8192
    assert words["param_words"] == words["weight_words"] // 9


def test_top_wrong() -> None:
    with pytest.raises(ValueError, match=r"^`rows` must be a positive integer, not 0$"):
        top(rows=0)
    with pytest.raises(ValueError, match=r"^`cols` must be a positive integer, not -1$"):
        top(cols=-1)
    with pytest.raises(ValueError, match=r"^`pe` must be one of mac, adder, shift, xnor, not 'fma'$"):
        top(pe="fma")
    with pytest.raises(ValueError, match=r"^`bits` must be an integer from 2 to 16, not 17$"):
        top(bits=17)
    with pytest.raises(ValueError, match=r"^`bits` must be 1 for the xnor PE, not 8$"):
        top(pe="xnor", bits=8)
    with pytest.raises(ValueError, match=r"^`lanes` must be a power of two, not 6$"):
        top(pe="xnor", bits=1, lanes=6)
    with pytest.raises(TypeError, match=r"^`act_words` must be a positive integer, not 1.5$"):
        top(act_words=1.5)
    with pytest.raises(ValueError, match=r"^`weight_words` of 15 cannot hold one fold of "
                                         r"max_steps=16 steps$"):
        top(weight_words=15)
    with pytest.raises(ValueError, match=r"^`out_words` of 1 cannot hold one fold of rows=2 rows$"):
        top(out_words=1)


@pytest.mark.rtl
@pytest.mark.parametrize("pe,bits", [("mac", 8), ("adder", 4), ("shift", 8), ("xnor", 1)])
def test_generate_top_lint(tmp_path, pe: str, bits: int) -> None:
    """The top's Verilog passes ``verilator --lint-only -Wall`` with rtl.emit's waivers, and the
    manifest names every port and the descriptor fields."""
    acc = Accelerator(pe=pe, bits=bits, array=ArrayConfig(rows=2, cols=3, lanes=8),
                      memory=MemoryConfig(ifmap_sram_kib=0.25, weight_sram_kib=0.5,
                                          ofmap_sram_kib=0.25))
    manifest = generate_top(acc, tmp_path, max_steps=16)
    lint(tmp_path / f"{pe}_top.v", f"{pe}_top")
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest
    assert {"i_desc__payload", "i_acts__valid", "o_results__ready", "o_error"} <= set(manifest["ports"])
    assert manifest["descriptor"]["in_h"] == {"offset": 0, "width": 12, "signed": False}
    assert all(buf["kib"] <= 0.5 for buf in manifest["buffers"].values())
