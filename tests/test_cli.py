"""The hwsim command line: outputs and one-line errors for every kind of bad input."""

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hwsim_cli import main

ROOT = Path(__file__).resolve().parent.parent


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_estimate_prints_layers_totals_and_baseline(capsys):
    code, out, err = run(capsys, "estimate", "digits-cnn", "--pe", "adder", "--array", "4x4")
    assert code == 0 and err == ""
    assert "digits-cnn on adder 4x4 os, 8-bit" in out
    assert "mac (aux)" in out  # first conv and classifier stay full precision
    for metric in ("latency", "inferences/s", "energy / inference", "DRAM", "area", "ratio"):
        assert metric in out


def test_json_and_csv_carry_the_table_fields(capsys, tmp_path):
    js, cs = tmp_path / "r.json", tmp_path / "r.csv"
    code, _, _ = run(capsys, "estimate", "resnet20", "--pe", "shift", "--json", str(js), "--csv", str(cs))
    assert code == 0
    data = json.loads(js.read_text())
    rows = list(csv.DictReader(cs.read_text().splitlines()))
    assert len(rows) == len(data["layers"]) + 1 and rows[-1]["name"] == "TOTAL"
    assert set(rows[0]) == set(data["layers"][0])
    assert int(rows[-1]["cycles"]) == data["totals"]["cycles"] == sum(r["cycles"] for r in data["layers"])
    # the layers' energy adds up to the total, and the total to its split
    total_pj = sum(r["energy_pj"] for r in data["layers"])
    assert data["totals"]["energy_uj"] == pytest.approx(total_pj * 1e-6)
    split = sum(data["totals"][f"energy_{k}_uj"] for k in ("compute", "onchip", "dram", "leakage"))
    assert split == pytest.approx(data["totals"]["energy_uj"])
    assert data["compare"]["baseline"]["accelerator"]["pe"] == "mac"
    assert data["compare"]["ratios"]["energy_uj"] == pytest.approx(
        data["totals"]["energy_uj"] / data["compare"]["baseline"]["totals"]["energy_uj"])
    assert data["accelerator"]["pe"] == "shift" and data["op_counts"]["macs"] == data["totals"]["macs"]


def test_binary_network_reports_bops(capsys, tmp_path):
    js = tmp_path / "b.json"
    code, out, _ = run(capsys, "estimate", "birealnet18", "--pe", "xnor", "--compare", "none", "--json", str(js))
    counts = json.loads(js.read_text())["op_counts"]
    assert code == 0 and "BOPS" in out
    assert counts["ops"] == pytest.approx(counts["bops"] / 64 + counts["flops"])


def test_config_file_and_flags(capsys, tmp_path):
    js = tmp_path / "c.json"
    code, _, _ = run(capsys, "estimate", "digits-cnn", "--config", str(ROOT / "configs" / "xnor-32x32.yaml"),
                     "--dataflow", "os", "--compare", "none", "--json", str(js))
    acc = json.loads(js.read_text())["accelerator"]
    assert code == 0
    assert (acc["pe"], acc["bits"], acc["array"]["rows"], acc["array"]["dataflow"]) == ("xnor", 1, 32, "os")


def test_scalesim_topology(capsys, tmp_path):
    topo = tmp_path / "t.csv"
    topo.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
                    "c1, 10, 10, 3, 3, 4, 8, 1,\n")
    code, out, _ = run(capsys, "estimate", str(topo), "--pe", "mac", "--scalesim")
    assert code == 0 and "c1" in out


def test_rtl_timing_in_json(capsys, tmp_path):
    """3x3 conv, 2 -> 3 channels, 4x4 in, 2x2 out on a 2x2 mac array: KS=18, NT=2, 2 row tiles,
    4 folds; 32 activations in 4 beats of 8 (the 64-bit bus word). The array pipelines its folds
    (the default): their last steps issued 18 apart (the second row tile's pixels walked
    meanwhile), the last at 17 + 3 * 18 = 71 after the first step's issue, so its beat as far
    after the first beat, and the last row 2*2 + 2 + 1 = 7 later, plus one: 79 (the two rows'
    words of a step, 2 activations a pixel, are one or two consecutive buffer words: distinct
    banks, every step served in one cycle); the first row tile's walk and the operand fetch's 4
    cycles before, HAND's cycle after the loads: 1 + 2*(1+18) + 4 + 1 + (2+4+79) + 5 + (2+4*2) =
    144 cycles."""
    topo = tmp_path / "t.csv"
    topo.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
                    "c1, 4, 4, 3, 3, 2, 3, 1,\n")
    js = tmp_path / "r.json"
    code, out, _ = run(capsys, "estimate", str(topo), "--pe", "mac", "--array", "2x2", "--timing", "rtl",
                       "--json", str(js))
    data = json.loads(js.read_text())
    assert code == 0 and "rtl cycles" in out
    assert data["timing"] == "rtl" and data["totals"]["cycles"] == 144


def test_models_lists_registry(capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0
    for name in ("ghostnet", "resnet18", "resnet50", "mobilenetv2", "resnet20", "vgg-small", "birealnet18", "digits-cnn"):
        assert name in out


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("argv, message", [
    (["foo"], r"unknown model 'foo'; choose one of ghostnet, .*"),
    (["digits-cnn", "--pe", "foo"], r"argument --pe: invalid choice: 'foo' \(choose from 'mac', 'adder', 'xnor', 'shift'\)"),
    (["digits-cnn", "--pe", "xnor", "--bits", "8"], r"--bits 8: the xnor datapath works on 1-bit operands, not 8; use --bits 1"),
    (["digits-cnn", "--pe", "adder", "--bits", "64"], r"--bits 64: the adder datapath supports 2 to 32-bit operands, not 64"),
    (["digits-cnn", "--array", "0x4"], r"argument --array: array rows and cols must be positive, not '0x4'"),
    (["digits-cnn", "--array=-2x4"], r"argument --array: array rows and cols must be positive, not '-2x4'"),
    (["digits-cnn", "--array", "4by4"], r"argument --array: array must look like ROWSxCOLS \(e\.g\. 16x16\), not '4by4'"),
    (["digits-cnn", "--config", "nope.yaml"], r"accelerator config 'nope\.yaml' not found; check the path"),
    (["digits-cnn", "--tech", "nope.yaml"], r"tech table 'nope\.yaml' not found; pass a shipped table name \(horowitz45\) or a YAML path"),
    (["nofile.py:make"], r"model file 'nofile\.py' does not exist"),
    (["digits-cnn", "--scalesim", "--timing", "rtl"], r"--scalesim contradicts --timing rtl; give one of them"),
    (["digits-cnn", "--timing", "rtl", "--dataflow", "ws"],
     r"--timing rtl: `array.dataflow` 'ws': the generated RTL is output-stationary; use os \(--dataflow os\)"),
    (["digits-cnn", "--json", "/nonexistent/x.json"], r"cannot write '/nonexistent/x\.json': folder '/nonexistent' does not exist"),
])
def test_estimate_wrong(capsys, argv, message):
    try:
        code = main(["estimate", *argv])
    except SystemExit as exc:  # argparse rejects flags before main's own handler runs
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert re.fullmatch("hwsim: error: " + message + "\n", err), err


@pytest.mark.parametrize("name, text, message", [
    ("tiny.yaml", "memory:\n  weight_sram_kib: 0.01\n",
     r"layer 'features\.0\.0': weight buffer of 0\.01 KiB cannot hold one 1x16 weight tile \(0\.016 KiB\); raise memory\.weight_sram_kib"),
    ("bad.yaml", "array: [rows: 4\n", r"accelerator config '.*bad\.yaml' is not valid YAML at line 2"),
    ("key.yaml", "arary:\n  rows: 4\n", r".*key\.yaml: unknown key `arary`; valid keys here: acc_bits, array, aux_clock_mhz, bits, clock_mhz, max_align, max_shift, memory, pe, power, rtl, schedule, tech"),
    ("neg.yaml", "array:\n  rows: -1\n", r".*neg\.yaml: `array\.rows` must be a positive integer, not -1"),
])
def test_config_wrong(capsys, tmp_path, name, text, message):
    code, _, err = run(capsys, "estimate", "digits-cnn", "--config", write(tmp_path, name, text))
    assert code == 2
    assert re.fullmatch("hwsim: error: " + message + "\n", err), err


def test_factory_not_a_module(capsys, tmp_path):
    path = write(tmp_path, "net.py", "def make():\n    return 3\n")
    code, _, err = run(capsys, "estimate", f"{path}:make")
    assert code == 2
    assert err == f"hwsim: error: factory '{path}:make' returned int, not a torch.nn.Module\n"


def test_users_factory_with_input_shape(capsys, tmp_path):
    path = write(tmp_path, "mine.py", "import torch.nn as nn\n\ndef build():\n"
                 "    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 10))\n")
    code, out, err = run(capsys, "estimate", f"{path}:build", "--input-shape", "1,3,8,8", "--pe", "adder", "--convert-all")
    assert code == 0, err
    assert "mac (aux)" not in out  # --convert-all: every conv/linear on the adder array


def test_failed_run_leaves_existing_output_alone(capsys, tmp_path):
    out = tmp_path / "keep.json"
    out.write_text("previous")
    code, _, _ = run(capsys, "estimate", "digits-cnn", "--bits", "99", "--json", str(out))
    assert code == 2 and out.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.json"]


def test_console_script_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "hwsim_cli", "estimate", "nosuchnet"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("hwsim: error: unknown model 'nosuchnet'") and "Traceback" not in proc.stderr


def test_outputs_have_ordinary_permissions(capsys, tmp_path):
    out = tmp_path / "r.csv"
    run(capsys, "estimate", "digits-cnn", "--compare", "none", "--csv", str(out))
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


def test_warnings_on_stderr_once(cli) -> None:
    """Tables on stdout, each warning once on stderr (so a pipe of stdout carries no warning)."""
    code, out, err = cli("estimate", "digits-cnn", "--pe", "adder", "--timing", "rtl", "--compare", "none")
    assert code == 0 and "warning" not in out
    lines = err.splitlines()
    assert lines and all(line.startswith("warning: --timing rtl: ") for line in lines)
    assert len(lines) == len(set(lines))
    assert "layers do not run on the adder array" in err


def test_target_clocks_each_kind_at_its_fmax(capsys, tmp_path):
    """--target ecp5: the adder design and its mac baseline each run at their own array's fitted
    Fmax (no auxiliary array with --convert-all), so latency = cycles / that clock; --clock-mhz
    overrides."""
    from hwsim.api import clock_for_target, resolve_accelerator, workloads

    js = tmp_path / "r.json"
    code, out, _ = run(capsys, "estimate", "digits-cnn", "--pe", "adder", "--array", "4x4", "--target", "ecp5",
                       "--convert-all", "--json", str(js))
    assert code == 0 and "clock of the adder design on ecp5" in out and "clock of the mac design on ecp5" in out
    data = json.loads(js.read_text())
    base = data["compare"]["baseline"]
    adder, mac = (resolve_accelerator(pe=pe, array=(4, 4)) for pe in ("adder", "mac"))
    loads = workloads("digits-cnn", [("adder", 8), ("mac", 8)], convert_all=True)
    assert data["accelerator"]["clock_mhz"] == clock_for_target(adder, "ecp5", loads[0]).clock_mhz
    assert base["accelerator"]["clock_mhz"] == clock_for_target(mac, "ecp5", loads[1]).clock_mhz
    for rep in (data, base):
        assert rep["totals"]["latency_ms"] == pytest.approx(rep["totals"]["cycles"] / rep["accelerator"]["clock_mhz"] / 1e3)
    assert data["accelerator"]["clock_mhz"] > base["accelerator"]["clock_mhz"]  # the adder closes faster
    code, _, _ = run(capsys, "estimate", "digits-cnn", "--pe", "adder", "--target", "ecp5", "--clock-mhz", "100",
                     "--json", str(js))
    data = json.loads(js.read_text())
    assert code == 0 and data["accelerator"]["clock_mhz"] == data["compare"]["baseline"]["accelerator"]["clock_mhz"] == 100
    # the FPGA power of the design at that clock, and the energy of one inference's cycles
    power = data["fpga_power"]
    assert (power["target"], power["freq_mhz"]) == ("ecp5", 100)
    assert power["cycles"] == round(data["totals"]["latency_ms"] * 1e3 * 100)
    assert power["energy_uj"] == pytest.approx(power["total_mw"] * power["cycles"] / 100 * 1e-3)


@pytest.mark.parametrize("argv, message", [
    (["--target", "xc7"], "--target xc7: no Fmax for xc7: hwsim has place-and-route data (nextpnr) for ecp5, "
                          "ice40 only; give --clock-mhz"),
    (["--lut-only"], "--lut-only picks the fitted clock of LUT-only arithmetic; give it with --target ice40 or "
                     "ecp5 and without a clock (--clock-mhz or the config's clock_mhz)"),
    (["--lut-only", "--target", "ecp5", "--clock-mhz", "100"],
     "--lut-only picks the fitted clock of LUT-only arithmetic; give it with --target ice40 or "
     "ecp5 and without a clock (--clock-mhz or the config's clock_mhz)"),
])
def test_target_clock_wrong(capsys, argv, message):
    code, out, err = run(capsys, "estimate", "digits-cnn", "--pe", "adder", *argv)
    assert code == 2 and err == f"hwsim: error: {message}\n"


def test_table_folds_fused_ops_unless_all_layers(capsys):
    _, folded, _ = run(capsys, "estimate", "resnet20", "--pe", "adder", "--compare", "none")
    _, every, _ = run(capsys, "estimate", "resnet20", "--pe", "adder", "--compare", "none", "--all-layers")
    # every conv carries its batch norm folded into its row
    assert "conv+norm" in folded and "conv+norm" not in every
    assert "where the energy and cycles go" in folded and len(folded.splitlines()) < len(every.splitlines())


def test_config_clock_wins_over_the_fitted_one(capsys, tmp_path):
    js = tmp_path / "r.json"
    code, _, _ = run(capsys, "estimate", "digits-cnn", "--pe", "adder", "--compare", "none", "--target", "xc7",
                     "--config", write(tmp_path, "a.yaml", "clock_mhz: 200\n"), "--json", str(js))
    assert code == 0 and json.loads(js.read_text())["accelerator"]["clock_mhz"] == 200
