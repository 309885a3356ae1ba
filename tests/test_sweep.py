"""``hwsim sweep``: Pareto fronts against brute force, the grid, the cache, constraints, Optuna,
the Ray backend against the local one, the files and the command line's one-line errors.

Sweeps here run on ``digits-cnn`` (traced in a fraction of a second); timings of the GhostNet
sweep of issue 14 are in ``benchmarks/sweep.py``.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import sys

import numpy as np
import pytest

from cost_models.tech import DATA_DIR
from hwsim.errors import ConfigError, HwsimError
from hwsim.parallel import Local, make_backend
from hwsim.sweep import run as sweep_run
from hwsim.sweep.cache import Cache
from hwsim.sweep.pareto import pareto_mask
from hwsim.sweep.run import Sweep, run
from hwsim.sweep.space import Space

MODEL = "digits-cnn"
PNG = b"\x89PNG\r\n\x1a\n"


def brute_force_front(values: np.ndarray) -> np.ndarray:
    """Non-dominated rows by comparing every pair (the definition, written out)."""
    n = len(values)
    keep = np.ones(n, dtype=bool)
    for i in range(n):
        for j in range(n):
            if np.all(values[j] <= values[i]) and np.any(values[j] < values[i]):
                keep[i] = False
    return keep


def test_pareto_front_of_hand_made_points():
    points = np.array([[1, 9], [2, 7], [3, 8], [4, 4], [4, 4], [6, 3], [7, 3], [9, 1], [5, 5], [10, 10]])
    expected = [True, True, False, True, True, True, False, True, False, False]
    assert pareto_mask(points).tolist() == expected
    assert brute_force_front(points).tolist() == expected


@pytest.mark.parametrize("seed, objectives", [(0, 2), (1, 3), (2, 1)])
def test_pareto_front_equals_brute_force(seed, objectives):
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 12, size=(150, objectives)).astype(float)  # many ties and duplicates
    assert np.array_equal(pareto_mask(values), brute_force_front(values))


def test_grid_expands_to_the_right_count():
    space = Space.from_flags(pe="mac,adder,xnor,shift", array="8x8,16x16,32x32", bits="4,8", sram_kib="32,128,512")
    points = space.grid()
    assert len(points) == (3 * 2 + 1) * 3 * 3 == 63  # xnor is 1 bit: no bits axis
    assert len(set(points)) == 63 and {p.bits for p in points if p.pe == "xnor"} == {None}
    assert len(Space.from_flags(pe="mac", dataflow="os,ws,is", clock_mhz="200,500", dram="ddr4,lpddr4",
                                mapper="heuristic,search").grid()) == 24
    picked = space.random(10, seed=3)
    assert len(set(picked)) == 10 and set(picked) <= set(points) and picked == space.random(10, seed=3)
    assert space.random(100, seed=3) == points


@pytest.mark.parametrize("flags, message", [
    ({"pe": "mac,foo"}, "--pe: unknown PE kind 'foo'"),
    ({"array": "16x"}, "--array: malformed array '16x'"),
    ({"array": "0x4"}, "--array: malformed array '0x4'"),
    ({"bits": "1", "pe": "mac"}, "--bits 1 is the xnor datapath's width"),
    ({"bits": "99"}, "--bits 99:"),
    ({"sram_kib": "-2"}, "--sram-kib takes positive numbers"),
    ({"dram": "ddr9"}, "dram table 'ddr9' not found"),
    ({"array": "8x8,8x8"}, "--array lists a value twice"),
    ({"mapper": "greedy"}, "--mapper: unknown value 'greedy'"),
])
def test_bad_axes_name_the_flag(flags, message):
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        Space.from_flags(**flags)


@pytest.fixture
def cache(tmp_path):
    return Cache(tmp_path / "cache")


def small(**kwargs) -> Sweep:
    flags = {"pe": "mac,adder,xnor", "bits": "4,8", "array": "4x4,8x8", **kwargs.pop("flags", {})}
    return Sweep(MODEL, Space.from_flags(**flags), **kwargs)


def test_points_equal_hwsim_estimate(cli, tmp_path, cache):
    with Local(1) as backend:
        rows = run(small(flags={"sram_kib": "16,64", "dram": "ddr4"}), backend, cache).rows
        rows += run(small(flags={"pe": "mac", "bits": "8", "array": "4x4", "dram": "ddr4", "mapper": "search"}),
                    backend, cache).rows
    rows = {(r["pe"], r["bits"], r["array"], r["sram_kib"], r["mapper"]): r for r in rows}
    for pe, bits, array, sram, mapper in (("adder", 4, "8x8", 16.0, "heuristic"), ("xnor", 1, "4x4", 64.0, "heuristic"),
                                          ("mac", 8, "4x4", 16.0, "heuristic"), ("mac", 8, "4x4", 64.0, "search")):
        out = tmp_path / f"{pe}.json"
        flags = ["--bits", str(bits)] if pe != "xnor" else []
        code, _, err = cli("estimate", MODEL, "--pe", pe, *flags, "--array", array, "--sram-kib", f"{sram:g}",
                           "--dram", "ddr4", "--mapper", mapper, "--compare", "none", "--json", str(out))
        assert code == 0, err
        totals = json.loads(out.read_text())["totals"]
        row = rows[(pe, bits, array, sram, mapper)]
        assert (row["energy_uj"], row["cycles"], row["area_mm2"]) == (
            totals["energy_uj"], totals["cycles"], totals["area_mm2"])


def test_cache_hit_is_identical_and_loads_nothing(cache, monkeypatch):
    with Local(1) as backend:
        first = run(small(), backend, cache)
        monkeypatch.setattr(sweep_run, "workloads", lambda *a, **k: pytest.fail("a cached sweep loaded a workload"))
        again = run(small(), backend, cache)
    assert first.cached == 0 and again.cached == len(again.rows) == 10
    assert again.rows == first.rows


def test_cache_recomputes_when_the_accelerator_or_tech_changes(cache, tmp_path):
    table = tmp_path / "tech.yaml"
    shutil.copy(DATA_DIR / "horowitz45.yaml", table)
    with Local(1) as backend:
        base = run(small(flags={"tech": str(table)}), backend, cache)
        wider = run(small(flags={"tech": str(table), "array": "4x4,8x8,16x16"}), backend, cache)
        assert (wider.cached, len(wider.rows)) == (10, 15)  # only the new array is costed
        clocked = run(small(flags={"tech": str(table), "clock_mhz": "400"}), backend, cache)
        assert clocked.cached == 0
        table.write_text(table.read_text() + "\n# an edit that changes no number\n")
        retouched = run(small(flags={"tech": str(table)}), backend, cache)
    assert retouched.cached == 0 and retouched.rows == base.rows  # content changed, numbers did not


def test_constraints_filter_and_impossible_ones_fail(cache):
    with Local(1) as backend:
        free = run(small(), backend, cache)
        areas = sorted(r["area_mm2"] for r in free.rows)
        limit = areas[len(areas) // 2]
        bound = run(small(max_area_mm2=limit), backend, cache)
        for row in bound.rows:
            assert row["feasible"] == (row["area_mm2"] <= limit)
            assert not row["pareto"] or row["feasible"]
        assert any(r["pareto"] for r in bound.rows)
        with pytest.raises(HwsimError, match="no design of the 10 swept meets the constraints"):
            run(small(max_area_mm2=areas[0] / 2), backend, cache)
    with pytest.raises(ConfigError, match="--max-latency-ms must be a positive number"):
        small(max_latency_ms=-1.0)


def test_pareto_flags_match_brute_force(cache):
    with Local(1) as backend:
        result = run(small(objectives=("energy", "latency", "area")), backend, cache)
    values = np.array([[r["energy_uj"], r["latency_ms"], r["area_mm2"]] for r in result.rows])
    assert [r["pareto"] for r in result.rows] == brute_force_front(values).tolist()
    for pe in ("mac", "adder", "xnor"):
        kind = [r for r in result.rows if r["pe"] == pe]
        front = brute_force_front(np.array([[r["energy_uj"], r["latency_ms"]] for r in kind]))
        assert [r["pe_front"] for r in kind] == front.tolist()


def test_optuna_tpe_is_seeded_and_respects_constraints(cache):
    sweep = small(strategy="optuna", samples=12, seed=1, flags={"sram_kib": "16,64"})
    with Local(2) as backend:
        first = run(sweep, backend, cache)
        again = run(sweep, backend, cache)
    assert again.rows == first.rows and 1 <= len(first.rows) <= 12
    assert any(r["pareto"] for r in first.rows)
    nsga = small(strategy="optuna", sampler="nsga2", samples=6, max_latency_ms=1e3)
    with Local(1) as backend:
        assert all(r["feasible"] for r in run(nsga, backend, cache).rows)


def test_local_processes_equal_one_process(cache, tmp_path):
    with Local(1) as one, Local(2) as two:
        serial = run(small(), one, Cache(None))
        pooled = run(small(), two, Cache(tmp_path / "other"))
    assert pooled.rows == serial.rows


def test_ray_backend_equals_local(cli, tmp_path):
    """The sweep and the energy-accuracy report's variants on a local Ray instance, against the
    local backend (in this process)."""
    ray = pytest.importorskip("ray")
    report = ("report", "energy-accuracy", "--pe", "mac,shift", "--bits", "8", "--epochs", "0", "--cache-dir", "none")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with make_backend("ray", 2) as backend:
            remote = run(small(), backend, Cache(None))
        assert ray.is_initialized()  # the test's instance is left as it was found
        code, _, err = cli(*report, "--backend", "ray", "--workers", "2", "-o", str(tmp_path / "ray"))
        assert code == 0, err
    finally:
        ray.shutdown()
    with Local(1) as backend:
        local = run(small(), backend, Cache(None))
    assert remote.rows == local.rows
    code, _, err = cli(*report, "-o", str(tmp_path / "local"))
    assert code == 0, err
    variants = [json.loads((tmp_path / name / "results.json").read_text())["variants"] for name in ("ray", "local")]
    assert variants[0] == variants[1] and list(dict.fromkeys(v["pe"] for v in variants[0])) == ["mac", "shift"]


def test_cli_writes_tables_and_files(cli, tmp_path):
    out = tmp_path / "out"
    argv = ("sweep", MODEL, "--pe", "mac,xnor", "--array", "4x4,8x8", "--sram-kib", "16,64", "--workers", "1",
            "--cache-dir", str(tmp_path / "cache"), "-o", str(out))
    code, stdout, err = cli(*argv)
    assert code == 0, err
    assert "Pareto front per PE kind" in stdout and "8 designs (0 from the cache)" in stdout
    names = {p.name for p in out.iterdir()}
    assert names == {"report.md", "report.html", "results.json", "results.csv", "pareto_energy_latency.png",
                     "pareto_energy_area.png"}
    rows = list(csv.DictReader((out / "results.csv").read_text().splitlines()))
    data = json.loads((out / "results.json").read_text())
    assert len(rows) == len(data["points"]) == 8
    assert [float(r["energy_uj"]) for r in rows] == [p["energy_uj"] for p in data["points"]]
    page = (out / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 2 and "http" not in page
    assert (out / "pareto_energy_latency.png").read_bytes().startswith(PNG)
    code, stdout, _ = cli(*argv)
    assert code == 0 and "8 designs (8 from the cache)" in stdout


@pytest.mark.parametrize("argv, message", [
    (["--pe", "mac,tpu"], "--pe: unknown PE kind 'tpu'"),
    (["--array", "8by8"], "--array: malformed array '8by8'"),
    (["--max-area-mm2", "0"], "--max-area-mm2 must be a positive number"),
    (["--max-area-mm2", "1e-9"], "no design of the 4 swept meets the constraints"),
    (["--objective", "energy,power"], "--objective takes distinct names"),
])
def test_cli_errors_are_one_line(cli, tmp_path, argv, message):
    code, _, err = cli("sweep", MODEL, "--pe", "mac", "--array", "4x4,8x8", "--sram-kib", "16,64", "--workers", "1",
                       "--cache-dir", "none", "-o", str(tmp_path / "out"), *argv)
    assert code == 2 and err.startswith("hwsim: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_cli_without_ray_is_one_line(cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    code, _, err = cli("sweep", MODEL, "--pe", "mac", "--backend", "ray", "-o", str(tmp_path / "out"))
    assert code == 2 and err == ("hwsim: error: --backend ray needs Ray, which is not installed; "
                                 "pip install 'hwsim[ray]' (or use --backend local)\n")
