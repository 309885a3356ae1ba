"""Batch: totals per batch and per inference, weights read once per batch, ``--batch`` as the
input shape's batch dimension.

The design is tests/test_memory_tech.py's tiny one (2x2 MAC array, three 8 KiB buffers, 100 MHz,
Horowitz DDR3 at 1950 pJ per 64 bits, no leakage, perfect gating) on a 4 -> 2 linear layer.
"""

import csv
import dataclasses
import json

import pytest

from hwsim.accelerator import MemoryConfig
from hwsim.report import to_csv, totals_table
from hwsim.simulate import estimate
from hwsim.workload import Workload
from hwsim_cli import main
from tests.test_memory_tech import FC, TINY

ACC = dataclasses.replace(TINY, memory=MemoryConfig(ifmap_sram_kib=8, weight_sram_kib=8, ofmap_sram_kib=8,
                                                    dram="ddr3"))
DRAM_PER_BIT = 1950 / 64
FC8 = dataclasses.replace(FC, batch=8)
BATCH8 = Workload("fc", (8, 4), (FC8,))


def test_batch_of_eight_amortizes_the_weights():
    one, eight = estimate(Workload("fc", (1, 4), (FC,)), ACC), estimate(BATCH8, ACC)
    # batch 1: 4 x 8 input + 8 x 8 weight bits read, 2 x 8 output bits written = 112 bits;
    # batch 8: 8 x 32 inputs + 64 weights (read once, all fit the 8 KiB buffer) + 8 x 16 outputs
    # = 448 bits, 56 per inference: the weights' 64 bits are shared by the 8 images
    assert one.layers[0].energy_dram_pj == pytest.approx(112 * DRAM_PER_BIT)
    assert eight.layers[0].energy_dram_pj == pytest.approx(448 * DRAM_PER_BIT)
    totals = eight.totals()
    assert (eight.batch, totals["batch"]) == (8, 8)
    assert totals["energy_dram_per_inference_uj"] == pytest.approx(56 * DRAM_PER_BIT * 1e-6)
    assert totals["energy_per_inference_uj"] == pytest.approx(totals["energy_uj"] / 8)
    # throughput counts images: 8 inferences per batch latency
    assert totals["inferences_per_s"] == pytest.approx(8 * 1e3 / totals["latency_ms"])
    assert one.totals()["inferences_per_s"] == pytest.approx(1e3 / one.totals()["latency_ms"])


def test_batch_labels_in_the_table_and_csv():
    report = estimate(BATCH8, ACC)
    labels = [cell for cell in totals_table(report).columns[0].cells]
    assert labels[:8] == ["MACs / inference", "params", "cycles (batch of 8)", "latency (batch of 8)",
                          "inferences/s", "utilization", "energy (batch of 8)", "energy / inference"]
    energy = list(totals_table(report).columns[1].cells)
    assert energy[6] == f"{report.energy_uj:,.1f} uJ" and energy[7] == f"{report.energy_uj / 8:,.1f} uJ"
    rows = list(csv.DictReader(to_csv(report).splitlines()))
    total, per = rows[-2], rows[-1]
    assert (total["name"], total["note"], per["name"]) == ("TOTAL", "batch of 8", "PER_INFERENCE")
    assert float(per["energy_pj"]) == pytest.approx(float(total["energy_pj"]) / 8)
    assert float(per["ops"]) == 8 * 4 * 2 / 8  # 64 MACs in the batch, 8 per image
    single = [c for c in totals_table(estimate(Workload("fc", (1, 4), (FC,)), ACC)).columns[0].cells]
    assert "energy / inference" in single and not any("batch" in c for c in single)


def run(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse rejects flags before main's own handler runs
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_batch_flag_is_the_input_shape_batch(capsys, tmp_path):
    flag, shape = tmp_path / "flag.json", tmp_path / "shape.json"
    assert run(capsys, "estimate", "digits-cnn", "--batch", "8", "--json", str(flag))[0] == 0
    code, out, _ = run(capsys, "estimate", "digits-cnn", "--input-shape", "8,1,8,8", "--json", str(shape))
    assert code == 0 and "energy (batch of 8)" in out and "energy / inference" in out
    a, b = json.loads(flag.read_text()), json.loads(shape.read_text())
    assert a["totals"] == b["totals"] and a["totals"]["batch"] == 8


@pytest.mark.parametrize("argv, message", [
    (("--batch", "8", "--input-shape", "4,1,8,8"),
     "--batch 8 contradicts the batch 4 of --input-shape 4,1,8,8; give one of them"),
    (("--batch", "0"), "argument --batch: must be a positive integer, not '0'"),
])
def test_batch_wrong(capsys, argv, message):
    code, _, err = run(capsys, "estimate", "digits-cnn", *argv)
    assert code == 2 and err == f"hwsim: error: {message}\n"


def test_topology_has_no_batch(capsys, tmp_path):
    topo = tmp_path / "t.csv"
    topo.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
                    "Num Filter, Strides,\nconv1, 8, 8, 3, 3, 4, 8, 1,\n")
    code, _, err = run(capsys, "estimate", str(topo), "--batch", "4")
    assert code == 2 and err == "hwsim: error: --batch 4: a SCALE-Sim topology has no batch dimension\n"
