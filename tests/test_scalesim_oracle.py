"""The ``scalesim=True`` compute cycles against the real SCALE-Sim v2 (PyPI ``scalesim==2.0.2``).

Each case writes a SCALE-Sim config and a topology CSV to ``tmp_path``, runs
``scalesim.scale_sim.scalesim(config=..., topology=..., save_disk_space=True, verbose=False)``
with ``run_scale(top_path=tmp_path / "out")`` and reads the per-layer "Total Cycles" and "Stall
Cycles" of ``out/<run_name>/COMPUTE_REPORT.csv`` (``scalesim.get_total_cycles()`` itself raises a
TypeError in 2.0.2). SRAMs of 4 MiB each and a user bandwidth of 1024 words/cycle keep SCALE-Sim
free of stalls, which every case asserts, so "Total Cycles" is its compute count. The hwsim side
gets buffers as large, so its tiling never cuts the reduction.

SCALE-Sim's IFMAP size already includes padding: the hwsim layer has ``padding=0``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
from dataclasses import dataclass

import pytest
from scalesim import scale_sim

from hwsim.accelerator import Accelerator, ArrayConfig, MemoryConfig
from hwsim.dataflow import compute_cycles
from hwsim.mapping import map_layer
from hwsim.topology import read_topology
from hwsim.workload import Layer

HEADER = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"

CONFIG = """\
[general]
run_name = oracle

[run_presets]
InterfaceBandwidth = USER

[architecture_presets]
ArrayHeight = {rows}
ArrayWidth = {cols}
IfmapSramSzkB = 4096
FilterSramSzkB = 4096
OfmapSramSzkB = 4096
IfmapOffset = 0
FilterOffset = 10000000
OfmapOffset = 20000000
Bandwidth = 1024
Dataflow = {dataflow}
"""

BIG = MemoryConfig(ifmap_sram_kib=4096, weight_sram_kib=4096, ofmap_sram_kib=4096)


@dataclass(frozen=True)
class Conv:
    """One SCALE-Sim topology row: IFMAP ``h x w x c`` (padding included), ``n`` filters ``r x s``."""

    name: str
    h: int
    w: int
    r: int
    s: int
    c: int
    n: int
    stride: int = 1

    @property
    def row(self) -> str:
        return f"{self.name}, {self.h}, {self.w}, {self.r}, {self.s}, {self.c}, {self.n}, {self.stride},\n"

    def layer(self, groups: int = 1, out_h: int | None = None, out_w: int | None = None) -> Layer:
        out_h = (self.h - self.r) // self.stride + 1 if out_h is None else out_h
        out_w = (self.w - self.s) // self.stride + 1 if out_w is None else out_w
        return Layer(name=self.name, op="conv", in_ch=self.c, in_h=self.h, in_w=self.w, out_ch=self.n,
                     out_h=out_h, out_w=out_w, kernel=(self.r, self.s), stride=(self.stride, self.stride),
                     groups=groups, pe="mac")


def run_scalesim(tmp_path, rows: int, cols: int, dataflow: str, topology: str) -> list[tuple[int, int]]:
    """``(total_cycles, stall_cycles)`` of every layer SCALE-Sim v2 reports for ``topology``."""
    config, topo = tmp_path / "scalesim.cfg", tmp_path / "topology.csv"
    config.write_text(CONFIG.format(rows=rows, cols=cols, dataflow=dataflow))
    topo.write_text(HEADER + topology)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        sim = scale_sim.scalesim(save_disk_space=True, verbose=False, config=str(config), topology=str(topo))
        sim.run_scale(top_path=str(tmp_path / "out"))
    with open(tmp_path / "out" / "oracle" / "COMPUTE_REPORT.csv", newline="") as report:
        body = list(csv.reader(report))[1:]
    return [(int(row[1]), int(row[2])) for row in body]


def accelerator(rows: int, cols: int, dataflow: str, memory: MemoryConfig = BIG) -> Accelerator:
    # the naive array (folds back to back, groups as GEMMs): the default-mode relations below are its
    return Accelerator(array=ArrayConfig(rows=rows, cols=cols, dataflow=dataflow, fold_overlap=False,
                                         depthwise="gemm"), memory=memory)


@pytest.fixture(autouse=True)
def _stay_in_tmp(tmp_path, monkeypatch):
    # SCALE-Sim writes only under top_path with save_disk_space=True; run in tmp_path regardless.
    monkeypatch.chdir(tmp_path)


LAYERS = [
    Conv("conv3x3s1", 10, 10, 3, 3, 4, 6),              # M = 64, K = 36, N = 6
    Conv("conv3x3s2", 13, 11, 3, 3, 3, 10, stride=2),   # M = 6 * 5, K = 27, N = 10
    Conv("conv1x1", 8, 8, 1, 1, 16, 12),                # M = 64, K = 16, N = 12
    Conv("conv3x1", 9, 8, 3, 1, 5, 9),                  # M = 7 * 8, K = 15, N = 9
    Conv("fc", 1, 1, 1, 1, 40, 10),                     # M = 1, K = 40, N = 10
]
ARRAYS = [(8, 8), (4, 4), (5, 3)]
DATAFLOWS = ["os", "ws", "is"]


@pytest.mark.parametrize("dataflow", DATAFLOWS)
@pytest.mark.parametrize("rows, cols", [pytest.param(*a, id=f"{a[0]}x{a[1]}") for a in ARRAYS])
@pytest.mark.parametrize("conv", [pytest.param(c, id=c.name) for c in LAYERS])
def test_compute_cycles_equal_scalesim(tmp_path, conv, rows, cols, dataflow):
    [(expected, stalls)] = run_scalesim(tmp_path, rows, cols, dataflow, conv.row)
    assert stalls == 0
    layer = conv.layer()
    # The same CSV read by hwsim's own importer gives the same layer.
    imported = read_topology(tmp_path / "topology.csv").layers[0]
    assert (imported.gemm, imported.kernel, imported.stride) == (layer.gemm, layer.kernel, layer.stride)
    forms = [layer]
    if conv.name == "fc":
        forms.append(Layer(name="fc", op="linear", in_ch=conv.c, in_h=1, in_w=1, out_ch=conv.n,
                           out_h=1, out_w=1, pe="mac"))
    acc = accelerator(rows, cols, dataflow)
    for form in forms:
        mapping = map_layer(form, acc, scalesim=True)
        assert mapping.compute_cycles == expected
        assert mapping.tile[1] == form.gemm[2]    # no K tiling
    # Documented relation to the default mode: it adds the OS drain (rows per fold), the PE
    # pipeline (2 per fold for os, 2 per row and fold for ws/is) and the cycle SCALE-Sim
    # subtracts per layer; with no K tiling map_layer's default count is the same.
    _, m, k, n = layer.gemm
    default = compute_cycles(m, k, n, rows, cols, dataflow, pe_pipeline=2)
    extra = default.folds * (rows + 2) if dataflow == "os" else default.folds * 2 * rows
    assert default.cycles - expected == extra + 1
    assert map_layer(layer, acc).compute_cycles == default.cycles


@pytest.mark.parametrize("dataflow", DATAFLOWS)
def test_scalesim_mode_ignores_buffer_tiling(tmp_path, dataflow):
    # Buffers of 0.05 KiB cut K = 36 into tiles of 12 (default mode pays a fill and drain per
    # tile); the SCALE-Sim count is still the whole layer's, as SCALE-Sim ignores capacity.
    conv = LAYERS[0]
    [(expected, stalls)] = run_scalesim(tmp_path, 4, 4, dataflow, conv.row)
    assert stalls == 0
    small = MemoryConfig(ifmap_sram_kib=0.05, weight_sram_kib=0.05, ofmap_sram_kib=0.05)
    tiled = map_layer(conv.layer(), accelerator(4, 4, dataflow, small), scalesim=True)
    assert tiled.tile[1] < conv.layer().gemm[2]
    assert tiled.compute_cycles == expected
    assert map_layer(conv.layer(), accelerator(4, 4, dataflow, small)).compute_cycles > expected + 1


@pytest.mark.parametrize("dataflow", DATAFLOWS)
def test_depthwise_costs_one_scalesim_layer_per_channel(tmp_path, dataflow):
    # SCALE-Sim splits a row named DP* into one single-channel layer per channel (Num Filter 1
    # each), so a depthwise layer is the sum of those layers, each less its one cycle.
    dw = Conv("DPconv", 10, 10, 3, 3, 4, 1)
    per_channel = run_scalesim(tmp_path, 4, 4, dataflow, dw.row)
    assert len(per_channel) == 4 and all(stalls == 0 for _, stalls in per_channel)
    layer = Layer(name="dw", op="conv", in_ch=4, in_h=10, in_w=10, out_ch=4, out_h=8, out_w=8,
                  kernel=(3, 3), groups=4, pe="mac")
    imported = read_topology(tmp_path / "topology.csv").layers[0]
    assert imported.gemm == layer.gemm == (4, 64, 9, 1)
    assert map_layer(layer, accelerator(4, 4, dataflow), scalesim=True).compute_cycles == sum(
        cycles for cycles, _ in per_channel)


def test_scalesim_output_size_rounds_up(tmp_path):
    # SCALE-Sim's ofmap size is ceil((ifmap - filter + stride) / stride), i.e. a partial last
    # window when (ifmap - filter) % stride != 0: a 12x12 IFMAP, 3x3 filter, stride 2 gives 6x6
    # outputs (M = 36), not the 5x5 of (12 - 3) // 2 + 1; hwsim.topology reads it the same way.
    conv = Conv("conv3x3s2odd", 12, 12, 3, 3, 2, 4, stride=2)
    [(expected, stalls)] = run_scalesim(tmp_path, 4, 4, "os", conv.row)
    assert stalls == 0
    out = math.ceil((12 - 3) / 2) + 1
    layer = conv.layer(out_h=out, out_w=out)
    imported = read_topology(tmp_path / "topology.csv").layers[0]
    assert imported.gemm == layer.gemm == (1, 36, 18, 4)
    assert map_layer(layer, accelerator(4, 4, "os"), scalesim=True).compute_cycles == expected
