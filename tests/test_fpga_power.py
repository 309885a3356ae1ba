"""FPGA power (cost_models.fpga_power) worked by hand from the coefficients of
cost_models/data/power/fpga.yaml, and the calibrated activity factors of a technology table."""

from __future__ import annotations

from pathlib import Path

import pytest

from cost_models import datapath_cost
from cost_models.fpga_power import FpgaActivity, fpga_power, load_power_table
from cost_models.tech import DATA_DIR, load_technology


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
])
def test_fpga_compare_bad_input_is_one_line(cli, tmp_path: Path, argv: list[str], message: str) -> None:
    code, out, err = cli("report", "fpga-compare", "-o", str(tmp_path / "out"), *argv)
    assert code == 2 and message in err and "Traceback" not in err
