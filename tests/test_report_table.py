"""The readable estimate table (hwsim.report): fused ops folded into their compute layer's row, and
the summary of where the energy and cycles go, against rows and shares worked out by hand."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from hwsim import report as rep
from hwsim.accelerator import preset
from hwsim.simulate import LayerResult, Report, estimate
from hwsim.workload import NETWORK_INPUT, Layer, Workload


def row(name: str, op: str, datapath: str, cycles: int, energies: tuple[float, float, float, float],
        input_from: str, output_to: str = "sram") -> LayerResult:
    compute, onchip, dram, leak = energies
    return LayerResult(name=name, op=op, shape="s", datapath=datapath, on_main_array=datapath == "mac",
                       ops=1000, cycles=cycles, compute_cycles=cycles, stall_cycles=0, utilization=0.5,
                       energy_compute_pj=compute, energy_onchip_pj=onchip, energy_dram_pj=dram,
                       energy_leakage_pj=leak, input_from=input_from, output_to=output_to)


#: conv1 with batch norm and ReLU fused into it, a max pool that runs on its own, a classifier on
#: the auxiliary array. Energies (compute, on-chip, DRAM, leakage) in pJ.
ROWS = (
    row("conv1", "conv", "mac", 100, (10, 20, 30, 5), "dram", "-"),
    row("bn1", "norm", "vector", 0, (1, 0, 0, 0), "fused", "-"),
    row("relu1", "act", "vector", 10, (1, 0, 0, 1), "fused", "sram"),
    row("pool", "maxpool", "vector", 50, (2, 4, 0, 1), "sram"),
    row("fc", "linear", "xnor (aux)", 40, (5, 5, 10, 2), "sram", "dram"),
)
REPORT = Report(model="hand", accelerator=preset("mac"), layers=ROWS, area_um2={}, op_counts={"macs": 0},
                params=0)


def test_fused_ops_fold_into_their_compute_layer() -> None:
    folded = rep.fold_layers(REPORT)
    assert [(r.name, r.op) for r in folded] == [("conv1", "conv+norm+act"), ("pool", "maxpool"), ("fc", "linear")]
    conv = folded[0]
    # 100 + 0 + 10 cycles; compute 10 + 1 + 1, on-chip 20, DRAM 30, leakage 5 + 0 + 1 pJ
    assert (conv.cycles, conv.energy_compute_pj, conv.energy_onchip_pj, conv.energy_dram_pj,
            conv.energy_leakage_pj) == (110, 12, 20, 30, 6)
    # the anchor's input, the group's output; the anchor's ops, datapath and utilization
    assert (conv.input_from, conv.output_to, conv.ops, conv.datapath, conv.utilization) == ("dram", "sram", 1000, "mac", 0.5)
    assert folded[1] == ROWS[3] and folded[2] == ROWS[4]


def test_summary_shares_by_hand() -> None:
    s = rep.summary(REPORT)
    # total 68 + 7 + 22 = 97 pJ: compute 12+2+5, on-chip 20+4+5, DRAM 30+10, leakage 6+1+2
    assert s["energy_share"] == pytest.approx({"compute": 19 / 97, "onchip": 29 / 97, "dram": 40 / 97,
                                               "leakage": 9 / 97})
    # the array runs conv1 (100 cycles, 65 pJ); the vector unit bn1, relu1 and pool (60, 10 pJ);
    # the auxiliary array fc (40, 22 pJ)
    assert s["units"] == {"array": {"cycles": 100, "energy_pj": 65}, "vector": {"cycles": 60, "energy_pj": 10},
                          "aux": {"cycles": 40, "energy_pj": 22}}
    assert s["top_energy"] == pytest.approx({"conv1": 68 / 97, "fc": 22 / 97, "pool": 7 / 97})
    assert list(s["top_energy"]) == ["conv1", "fc", "pool"]
    assert s["top_cycles"] == pytest.approx({"conv1": 110 / 200, "pool": 50 / 200, "fc": 40 / 200})
    assert list(s["top_cycles"]) == ["conv1", "pool", "fc"]


def test_top_lists_stop_at_five() -> None:
    many = Report(model="m", accelerator=preset("mac"), area_um2={}, op_counts={"macs": 0}, params=0,
                  layers=tuple(row(f"c{i}", "conv", "mac", i + 1, (i + 1, 0, 0, 0), "sram") for i in range(7)))
    s = rep.summary(many)
    # energies 1..7 pJ (sum 28), cycles 1..7 (sum 28): the five largest, largest first
    assert s["top_energy"] == pytest.approx({f"c{i}": (i + 1) / 28 for i in (6, 5, 4, 3, 2)})
    assert list(s["top_energy"]) == list(s["top_cycles"]) == ["c6", "c5", "c4", "c3", "c2"]


def conv(name: str, cin: int, cout: int, inputs: tuple[str, ...]) -> Layer:
    return Layer(name, "conv", cin, 8, 8, cout, 8, 8, kernel=(3, 3), padding=(1, 1), pe="mac", inputs=inputs)


def vector(name: str, op: str, ch: int, inputs: tuple[str, ...], size: int = 8) -> Layer:
    return Layer(name, op, ch, size, size, ch, size, size, inputs=inputs)


#: A residual block: conv1 -> bn1 -> relu1 -> conv2 -> add(conv2, relu1) -> global average pool
#: (a 1x1 output of an 8x8 stream: fusable) -> a generic vector op (never fuses: its own row).
BLOCK = Workload("block", (1, 8, 8, 8), (
    conv("conv1", 8, 8, (NETWORK_INPUT,)),
    vector("bn1", "norm", 8, ("conv1",)),
    vector("relu1", "act", 8, ("bn1",)),
    conv("conv2", 8, 8, ("relu1",)),
    vector("add", "add", 8, ("conv2", "relu1")),
    Layer("gap", "avgpool", 8, 8, 8, 8, 1, 1, kernel=(8, 8), inputs=("add",)),
    vector("scale", "vector", 8, ("gap",), size=1),
))


def test_estimated_block_folds_as_the_schedule_fuses() -> None:
    report = estimate(BLOCK, preset("mac"))
    folded = rep.fold_layers(report)
    assert [(r.name, r.op) for r in folded] == [("conv1", "conv+norm+act"), ("conv2", "conv+add+avgpool"),
                                                ("scale", "vector")]
    by_name = {r.name: r for r in report.layers}
    groups = {"conv1": ("conv1", "bn1", "relu1"), "conv2": ("conv2", "add", "gap"), "scale": ("scale",)}
    for r in folded:
        members = [by_name[n] for n in groups[r.name]]
        assert r.cycles == sum(m.cycles for m in members)
        assert r.energy_pj == pytest.approx(sum(m.energy_pj for m in members))
    assert sum(r.cycles for r in folded) == report.cycles


def render(report: Report, **kwargs) -> str:
    out = io.StringIO()
    rep.print_report(report, console=Console(file=out, width=250), **kwargs)
    return out.getvalue()


def test_table_folds_by_default_and_lists_every_op_on_request() -> None:
    folded, every = render(REPORT), render(REPORT, all_layers=True)
    assert "conv+norm+act" in folded and "relu1" not in folded
    assert "relu1" in every and "conv+norm+act" not in every
    # the summary: 19/97 = 20 %, 29/97 = 30 %, 40/97 = 41 %, 9/97 = 9 %; conv1 68/97 = 70 %
    assert "compute 20%, SRAM+registers 30%, DRAM 41%, leakage 9%" in folded
    assert "conv1 70%, fc 23%, pool 7%" in folded


def test_json_keeps_every_op_and_adds_the_summary() -> None:
    data = json.loads(json.dumps(rep.to_dict(REPORT)))
    assert [r["name"] for r in data["layers"]] == ["conv1", "bn1", "relu1", "pool", "fc"]
    assert data["summary"]["units"]["aux"] == {"cycles": 40, "energy_pj": 22}
