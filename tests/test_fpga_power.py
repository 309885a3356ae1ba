"""FPGA power (cost_models.fpga_power) worked by hand from the coefficients of
cost_models/data/power/fpga.yaml, the calibrated activity factors of a technology table, and the
FPGA comparison (sim.compare): its refusals, its measured/estimated labels, a 2x2 run."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest

from cost_models import datapath_cost
from cost_models.fpga import fmax_mhz
from cost_models.fpga_power import FpgaActivity, fpga_power, load_power_table
from cost_models.tech import DATA_DIR, load_technology
from rtl.synth import PNR_CAPACITY, device_overflow, run_tool
from rtl.tools import ToolFailed
from sim.compare import KindResult, figure_sources, versus_mac


def test_ecp5_power_by_hand() -> None:
    # ecp5: 1.1 V, LUT net 60 fF, clock pin 6 fF, static 60 mW. Per cycle at toggle rate 0.5:
    # 100 LUTs * 0.5 * 60 fF * 1.21 / 2 = 1.815 pJ; 10 FFs * (6 fF * 1.21 + 0.5 * 36.3 fJ) = 0.2541 pJ
    # -> at 100 MHz: 0.1815 mW + 0.02541 mW.
    half = FpgaActivity(0.5, 0.5, 0.0, 0.0, "test")
    p = fpga_power({"lut": 100, "ff": 10, "carry": 0, "bram": 0, "dsp": 0}, "ecp5", 100.0, half)
    assert p.dynamic_mw["lut"] == pytest.approx(0.1815)
    assert p.dynamic_mw["ff"] == pytest.approx(0.02541)
    assert p.total_mw == pytest.approx(60.0 + 0.1815 + 0.02541)
    assert p.energy_uj(1000) == pytest.approx(p.total_mw * 10e-6 * 1e3)  # 1000 cycles = 10 us


def test_every_coefficient_has_a_source() -> None:
    table = load_power_table()
    assert table["default_toggle_rate"] == 0.125  # XPE's default
    for family in ("ice40", "ecp5", "xc7"):
        assert table[family]["vdd_v"] > 0 and table[family]["static_mw"] > 0


def test_power_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="`target` must be one of"):
        fpga_power({"lut": 1}, "stratix", 100.0)
    with pytest.raises(ValueError, match="positive frequency"):
        fpga_power({"lut": 1}, "ecp5", 0.0)


def test_activity_suffix_scales_the_logic_energy(tmp_path: Path) -> None:
    table = (DATA_DIR / "horowitz45.yaml").read_text().split("\nactivity:")[0]
    path = tmp_path / "t.yaml"
    path.write_text(table + "\nactivity:\n  source: test\n  adder: {factor: 2.0, zero_factor: 0.5}\n")
    plain, scaled = load_technology(str(path)), load_technology(f"{path}+activity")
    assert scaled.activity_factor("adder") == 2.0 and scaled.activity_factor("adder", zero=True) == 0.5
    a = datapath_cost("adder", plain, bits=8, acc_bits=20)
    b = datapath_cost("adder", scaled, bits=8, acc_bits=20)
    assert b.energy_pj_per_op == pytest.approx(2.0 * a.energy_pj_per_op)
    assert b.register_pj_per_op == a.register_pj_per_op  # registers are not scaled
    assert datapath_cost("mac", scaled, bits=8, acc_bits=20).energy_pj_per_op == pytest.approx(
        datapath_cost("mac", plain, bits=8, acc_bits=20).energy_pj_per_op)  # no mac entry: 1.0
    path.write_text(table)
    with pytest.raises(ValueError, match="no `activity` group"):
        load_technology(f"{path}+activity")


@pytest.mark.parametrize(("argv", "message"), [
    (["--pe", "mac,conv"], "--pe must name PE kinds"),
    (["--layer", "pool k=2"], "unknown operation 'pool'"),
    (["--target", "xc7"], "invalid choice: 'xc7'"),
    (["--place", "some"], "invalid choice: 'some'"),
    # refused by name before any synthesis: 256 MULT18X18D, and a LUT-only mac far beyond the HX8K
    (["--array", "16x16", "--pe", "adder,mac", "--dsp"], "the mac 16x16 array needs 256 DSPs, more than the "
                                                         "LFE5U-85F holds (156)"),
    (["--array", "16x16", "--pe", "mac", "--target", "ice40"], "more than the iCE40-HX8K holds (7,680, 7,680)"),
])
def test_fpga_compare_bad_input_is_one_line(cli, tmp_path: Path, argv: list[str], message: str) -> None:
    code, out, err = cli("report", "fpga-compare", "-o", str(tmp_path / "out"), *argv)
    assert code == 2 and message in err and "Traceback" not in err


@pytest.mark.amaranth
def test_fpga_compare_refuses_too_many_pins(cli, tmp_path: Path) -> None:
    # an 8x8 adder array fits the HX8K's logic but not its pins; found from the emitted ports
    code, out, err = cli("report", "fpga-compare", "--array", "8x8", "--pe", "adder", "--target", "ice40",
                         "-o", str(tmp_path / "out"))
    assert code == 2 and "Traceback" not in err
    assert "the adder 8x8 array needs 311 I/O pins, more than the iCE40-HX8K holds (206)" in err


def test_device_overflow_names_the_device() -> None:
    fits = {"lut": 83_640, "ff": 100, "bram": 0, "dsp": 156, "io": 365}
    assert device_overflow(fits, "ecp5") is None
    assert device_overflow(fits | {"lut": 85_120, "dsp": 256}, "ecp5") == (
        "needs 85,120 LUTs, 256 DSPs, more than the LFE5U-85F holds (83,640, 156)")
    assert device_overflow({"io": 599}, "ecp5") == "needs 599 I/O pins, more than the LFE5U-85F holds (365)"


def test_failed_tool_gives_its_error_line(tmp_path: Path) -> None:
    # nextpnr ends with "0 warnings, 1 error"; the gist is its ERROR line
    script = "print('Info: packing'); print('ERROR: Unable to place cell io'); print('0 warnings, 1 error'); exit(1)"
    with pytest.raises(ToolFailed, match=r"^nextpnr failed \(log: .*out.txt\): ERROR: Unable to place cell io$"):
        run_tool([sys.executable, "-c", script], tmp_path / "out.txt", "nextpnr")


def _kind(kind: str, lut: int, fmax: float, basis: str, dynamic_mw: float) -> KindResult:
    synth = {"yosys": "Yosys 0.50", "fmax_basis": basis, "fmax_source": "test"}
    return KindResult(kind=kind, bits=8, resources={"lut": lut, "ff": 10, "fmax_mhz": fmax, "fmax_basis": basis,
                                                         "fitted_fmax_mhz": 2 * fmax},
                      cycles=100, bit_exact=True, power={"total_dynamic_mw": dynamic_mw, "total_mw": 60 + dynamic_mw},
                      latency_us=100 / fmax, energy_uj=0.0, dynamic_energy_uj=dynamic_mw * 100 / fmax * 1e-3,
                      asic={}, area_um2=0.0, figures=figure_sources(synth, "ecp5"), wall_s={})


def test_every_figure_says_measured_or_estimated() -> None:
    placed = figure_sources({"yosys": "Yosys 0.50", "fmax_basis": "measured", "fmax_source": "nextpnr"}, "ecp5")
    fitted = figure_sources({"yosys": "Yosys 0.50", "fmax_basis": "estimated", "fmax_source": "fitted"}, "ecp5")
    fields = {f.name for f in dataclasses.fields(KindResult)} - {"kind", "bits", "resources", "figures", "wall_s"}
    assert fields | {"lut", "ff", "carry", "dsp", "bram", "io", "fmax_mhz"} == set(placed) == set(fitted)
    assert {v["basis"] for v in placed.values()} | {v["basis"] for v in fitted.values()} == {"measured", "estimated"}
    assert placed["fmax_mhz"]["basis"] == placed["latency_us"]["basis"] == "measured"
    assert fitted["fmax_mhz"]["basis"] == fitted["latency_us"]["basis"] == "estimated"
    assert fitted["lut"]["basis"] == "measured" and "not placed" in fitted["lut"]["source"]
    assert placed["power"]["basis"] == "estimated"  # a model from resources, whatever the Fmax


def test_versus_mac_by_hand_and_its_basis() -> None:
    mac = _kind("mac", 1000, 100.0, "estimated", 4.0)
    placed, fitted = _kind("adder", 250, 150.0, "measured", 1.0), _kind("shift", 500, 120.0, "estimated", 2.0)
    vs = versus_mac([mac, placed, fitted])
    assert vs["adder"]["logic_saving_pct"] == pytest.approx(75.0)
    assert vs["adder"]["speed_gain_pct"] == pytest.approx(50.0)
    assert vs["adder"]["fitted_speed_gain_pct"] == pytest.approx(50.0)
    assert vs["adder"]["dynamic_power_saving_pct"] == pytest.approx(75.0)
    assert vs["adder"]["dynamic_energy_saving_pct"] == pytest.approx(100 * (1 - (1 / 150) / (4 / 100)))
    # a placed adder against an estimated mac is still an estimated speed gain
    assert vs["adder"]["basis"] == vs["shift"]["basis"] == {"logic": "measured", "speed": "estimated",
                                                            "power": "estimated", "energy": "estimated"}
    both = versus_mac([dataclasses.replace(mac, resources=mac.resources | {"fmax_basis": "measured"}), placed])
    assert both["adder"]["basis"]["speed"] == "measured"


@pytest.mark.rtl
@pytest.mark.parametrize("place", ["none", "all"])
def test_fpga_compare_2x2(cli, tmp_path: Path, place: str) -> None:
    """Synthesis only (fitted Fmax, estimated) and placed (nextpnr's Fmax, measured), 2x2 mac and adder."""
    out = tmp_path / "out"
    code, stdout, err = cli("report", "fpga-compare", "--array", "2x2", "--pe", "mac,adder", "--place", place,
                            "--layer", "conv k=1 cin=2 cout=2 h=2 w=2", "-o", str(out))
    assert code == 0, err
    result = json.loads((out / "fpga_compare.json").read_text())
    placed = place == "all"
    basis = "measured" if placed else "estimated"
    assert result["place"] == place and ("nextpnr" in result["tools"]) == placed
    for kind in result["kinds"]:
        r = kind["resources"]
        assert kind["bit_exact"] and r["lut"] > 0 and r["io"] < PNR_CAPACITY["ecp5"]["io"]
        assert kind["figures"]["lut"]["basis"] == "measured"
        assert kind["figures"]["fmax_mhz"]["basis"] == kind["figures"]["latency_us"]["basis"] == basis
        assert kind["figures"]["power"]["basis"] == "estimated"
        assert r["fitted_fmax_mhz"] == pytest.approx(fmax_mhz(kind["kind"], 8, 2, 2, "ecp5", lut_only=True))
        assert ("nextpnr" if placed else "fpga_fmax.json") in r["fmax_source"]
        assert placed or r["fmax_mhz"] == r["fitted_fmax_mhz"]
        assert set(kind["wall_s"]) == {"synthesis", "cosimulation"} | ({"place_and_route"} if placed else set())
    assert result["versus_mac"]["adder"]["basis"]["speed"] == basis
    assert ("estimated: not placed" in stdout) != placed
