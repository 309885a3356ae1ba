"""The search mapper: exhaustive search on tiny layers, never worse than the fixed mapper, a
hand-worked win, and its config fields."""

import csv
import dataclasses
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cost_models import load_technology, memory
from hwsim import api
from hwsim.accelerator import Accelerator, ArrayConfig, MemoryConfig, PowerConfig, ScheduleConfig, from_dict
from hwsim.errors import ConfigError, HwsimError
from hwsim.mapper import rank, search_layer
from hwsim.mapping import Flow, GemmMapper, map_layer
from hwsim.simulate import estimate
from hwsim.workload import Layer, Workload

# 3x3 conv, 4 -> 8 channels, 6x6 input, pad 1: M = 36 pixels, K = 36, N = 8.
CONV = Layer(name="conv", op="conv", in_ch=4, in_h=6, in_w=6, out_ch=8, out_h=6, out_w=6,
             kernel=(3, 3), padding=(1, 1), pe="mac")
# 1x1 conv, 6 -> 10 channels, 5x5 input: M = 25, K = 6, N = 10 (nothing a multiple of 4).
ODD = Layer(name="odd", op="conv", in_ch=6, in_h=5, in_w=5, out_ch=10, out_h=5, out_w=5, pe="mac")


def tiny(dataflows=("os", "ws", "is"), **memory_kib):
    return Accelerator(acc_bits=32, array=ArrayConfig(rows=4, cols=4, dataflow=dataflows[0], dataflows=dataflows),
                       memory=MemoryConfig(**memory_kib))


def traffic_price(m):
    """A price of our own (any price non-decreasing in cycles and bits will do): DRAM bits cost
    20, SRAM bits 1, a cycle 3, a bit of buffer tile 0.01 (as leakage of awake banks would)."""
    return (20 * (sum(m.dram_read_bits.values()) + sum(m.dram_write_bits.values()))
            + sum(m.sram_read_bits.values()) + sum(m.sram_write_bits.values())
            + 3 * m.total_cycles + 0.01 * sum(m.tile_bits.values()))


def smallest_per_piece_count(extent, unit):
    """Of the tiles a dimension may take (multiples of ``unit``, and ``extent``), those with no
    smaller tile cutting the dimension into as many pieces."""
    tiles = sorted({*range(unit, extent + 1, unit), extent})
    pieces = [-(-extent // t) for t in tiles]
    return [t for i, t in enumerate(tiles) if pieces[i] not in pieces[:i]]


def brute_force(layer, acc, objective):
    """The best rank over every candidate the mapper documents: every dataflow allowed, every tile
    size of the grid that fits, every loop order whose partial sums fit, and the fixed mapper's plan."""
    best = None
    for dataflow in acc.array.dataflows:
        gemm = GemmMapper(layer, dataclasses.replace(acc, array=dataclasses.replace(acc.array, dataflow=dataflow)),
                          Flow())
        plans = [gemm.choose()]
        grids = [smallest_per_piece_count(gemm.extent[d], gemm.unit[d]) for d in "mkn"]
        for mt, kt, nt in itertools.product(*grids):
            if gemm.fits({"m": mt, "k": kt, "n": nt}):
                plans += [gemm.plan({"m": mt, "k": kt, "n": nt}, order) for order in itertools.permutations("mnk")]
        for plan in plans:
            if gemm.holds_psums(plan):
                m = gemm.mapping(plan)
                score = rank(objective, traffic_price(m), m.total_cycles)
                best = score if best is None else min(best, score)
    return best


@pytest.mark.parametrize("layer,memory_kib", [
    (CONV, {}),  # everything fits: one tile
    (CONV, {"ifmap_sram_kib": 0.3, "weight_sram_kib": 0.1, "ofmap_sram_kib": 0.5}),  # tiling forced
    (ODD, {"ifmap_sram_kib": 0.05, "weight_sram_kib": 0.02, "ofmap_sram_kib": 0.2}),
    (CONV, {"global_buffer_kib": 1.0}),
])
@pytest.mark.parametrize("objective", ["energy", "latency", "edp"])
def test_search_equals_exhaustive_search(layer, memory_kib, objective):
    acc = tiny(**memory_kib)
    found = search_layer(layer, acc, Flow(), traffic_price, objective=objective)
    assert rank(objective, traffic_price(found), found.total_cycles) == brute_force(layer, acc, objective)


def _one_layer(layer, acc, **schedule):
    acc = dataclasses.replace(acc, schedule=dataclasses.replace(acc.schedule, **schedule))
    (row,) = estimate(Workload("one", (1, layer.in_ch, layer.in_h, layer.in_w), (layer,)), acc).layers
    return row


@settings(max_examples=25, deadline=None)
@given(in_ch=st.integers(1, 24), out_ch=st.integers(1, 40), side=st.integers(1, 12), kernel=st.sampled_from([1, 3]),
       stride=st.sampled_from([1, 2]), kib=st.sampled_from([0.25, 0.5, 1, 4, 64]),
       dataflows=st.sampled_from([("os",), ("ws",), ("is", "os"), ("os", "ws", "is")]),
       objective=st.sampled_from(["energy", "latency", "edp"]))
def test_search_never_loses_to_the_heuristic(in_ch, out_ch, side, kernel, stride, kib, dataflows, objective):
    out = (side + 2 * (kernel // 2) - kernel) // stride + 1
    layer = Layer(name="l", op="conv", in_ch=in_ch, in_h=side, in_w=side, out_ch=out_ch, out_h=out, out_w=out,
                  kernel=(kernel, kernel), stride=(stride, stride), padding=(kernel // 2,) * 2, pe="mac")
    acc = Accelerator(array=ArrayConfig(rows=4, cols=8, dataflow=dataflows[0], dataflows=dataflows),
                      memory=MemoryConfig(ifmap_sram_kib=kib, weight_sram_kib=kib, ofmap_sram_kib=kib))
    try:
        fixed = _one_layer(layer, acc)
    except HwsimError:  # a buffer too small for any tile: nothing to compare
        return
    searched = _one_layer(layer, acc, mapper="search", objective=objective)
    assert (rank(objective, searched.energy_pj, searched.cycles)
            <= rank(objective, fixed.energy_pj, fixed.cycles))


@pytest.mark.parametrize("model", ["resnet18", "ghostnet"])
def test_search_lowers_every_layer_of_the_networks(model):
    (workload,) = api.workloads(model, [("mac", 8)])
    acc = api.resolve_accelerator(pe="mac")
    fixed = estimate(workload, acc)
    searched = estimate(workload, api.resolve_accelerator(pe="mac", mapper="search"))
    for a, b in zip(fixed.layers, searched.layers):
        if a.op in ("conv", "linear"):
            assert b.energy_pj <= a.energy_pj * (1 + 1e-12), a.name
    assert searched.energy_uj < fixed.energy_uj


def test_a_flexible_array_takes_the_dataflow_without_partial_sums():
    # A matrix-vector product, M = 1, K = 64, N = 64, on a 4x4 array whose fixed dataflow is ws.
    # ws lays K on the rows: 16 row folds, so the partial sums of 15 of them pass the ofmap
    # buffer (written and read back): 2 x 15 x 64 outputs x 32 bits = 61440 bits. os streams K
    # in time through the accumulators: no partial sums. Everything else is the same bits: the
    # input (64 x 8 bits) read once per column fold (16) in both, the weights (64 x 64 x 8) once
    # (ws: one M tile; os: one row fold), DRAM traffic compulsory in both (all fits), the same
    # 64 outputs staged in the ofmap buffer. With leakage off and perfect clock gating the cycles
    # cost nothing, so the search (os) saves exactly the partial-sum traffic at the ofmap SRAM's
    # energy per bit (a 64 KiB bank of 64-bit words from the technology table).
    fc = Layer(name="fc", op="linear", in_ch=64, in_h=1, in_w=1, out_ch=64, out_h=1, out_w=1, pe="mac")
    acc = Accelerator(acc_bits=32, array=ArrayConfig(rows=4, cols=4, dataflow="ws", dataflows=("ws", "os")),
                      power=PowerConfig(leakage=False, clock_gating=1.0))
    fixed, searched = _one_layer(fc, acc), _one_layer(fc, acc, mapper="search")
    assert (fixed.dataflow, searched.dataflow) == ("ws", "os")
    pj_per_bit = memory.sram_access_energy_pj(load_technology("horowitz45"), 64, 64) / 64
    assert fixed.energy_pj - searched.energy_pj == pytest.approx(2 * 15 * 64 * 32 * pj_per_bit)
    assert map_layer(fc, acc).dataflow == "ws"  # the fixed mapper keeps array.dataflow


@pytest.mark.parametrize("change,field", [
    ({"schedule": {"mapper": "greedy"}}, "`schedule.mapper`"),
    ({"schedule": {"objective": "power"}}, "`schedule.objective`"),
    ({"array": {"dataflows": ["os", "rs"]}}, "`array.dataflows`"),
    ({"array": {"dataflows": ["os", "os"]}}, "`array.dataflows`"),
    ({"array": {"dataflows": "os"}}, "`array.dataflows`"),
    ({"array": {"dataflow": "is", "dataflows": ["os", "ws"]}}, "must include `array.dataflow`"),
])
def test_config_errors_name_the_field(change, field):
    with pytest.raises(ConfigError, match=field.replace("`", "`").replace(".", r"\.")):
        from_dict(change)


def test_config_and_flags_select_the_search():
    acc = from_dict({"array": {"dataflows": ["ws", "os"], "dataflow": "os"},
                     "schedule": {"mapper": "search", "objective": "edp"}})
    assert acc.array.dataflows == ("ws", "os") and hash(acc)  # a YAML list becomes a tuple
    assert (acc.schedule.mapper, acc.schedule.objective) == ("search", "edp")
    flags = api.resolve_accelerator(pe="mac", mapper="search", objective="latency")
    assert flags.schedule == ScheduleConfig(mapper="search", objective="latency")
    with pytest.raises(ConfigError, match="--timing rtl .* schedule.mapper: heuristic"):
        estimate(Workload("one", (1, 4, 6, 6), (CONV,)), flags, timing="rtl")


def test_estimate_reports_the_mapping_of_each_layer(capsys, tmp_path):
    from hwsim_cli import main

    path = tmp_path / "r.csv"
    assert main(["estimate", "digits-cnn", "--array", "4x4", "--mapper", "search", "--objective", "edp",
                 "--mappings", "--csv", str(path)]) == 0
    out = capsys.readouterr().out
    assert "mapping per layer (search for the least edp)" in out
    rows = [r for r in csv.DictReader(path.read_text().splitlines()) if r["op"] in ("conv", "linear")]
    for r in rows:  # a buffer tile within the GEMM, a loop order of m, k, n, the only dataflow
        assert sorted(r["loop_order"]) == ["k", "m", "n"] and r["dataflow"] == "os"
        assert min(int(r["tile_m"]), int(r["tile_k"]), int(r["tile_n"])) >= 1
    with pytest.raises(SystemExit) as exit_:
        main(["estimate", "digits-cnn", "--mapper", "greedy"])
    assert exit_.value.code == 2 and "invalid choice: 'greedy'" in capsys.readouterr().err


def test_a_flexible_array_pays_for_the_depthwise_mode_of_its_other_dataflows():
    # An input-stationary array has no channel-parallel depthwise mode; one that can also run os
    # has it (the search may map a depthwise conv there), so its area counts the delivery.
    dw = Layer(name="dw", op="conv", in_ch=8, in_h=6, in_w=6, out_ch=8, out_h=6, out_w=6, kernel=(3, 3),
               padding=(1, 1), groups=8, pe="mac")
    net = Workload("dw", (1, 8, 6, 6), (dw,))
    fixed = Accelerator(array=ArrayConfig(rows=4, cols=4, dataflow="is"))
    flexible = dataclasses.replace(fixed, array=dataclasses.replace(fixed.array, dataflows=("is", "os")))
    assert "depthwise delivery" not in estimate(net, fixed).area_um2
    assert "depthwise delivery" in estimate(net, flexible).area_um2
