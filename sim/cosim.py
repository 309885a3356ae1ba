"""The host side of co-simulation: program layers, run the Verilator bench once, check everything.

:func:`run_layers` turns integer layers into beats with :func:`rtl.host.tile_programs` (a layer
too large for the buffers becomes the tiles of :func:`hwsim.rtl_timing.tile_layer`, one descriptor
each), streams all of them back to back through one simulation of a :class:`~sim.build.TopBuild`
(:mod:`sim.bench`), unpacks and assembles the results with :func:`rtl.host.unpack` and
:func:`rtl.host.assemble` and holds each layer to two independent references: its output to
:func:`models.intref.int_forward` of the whole layer (bit for bit) and its cycles, its tiles'
from its first descriptor to its last result, to :func:`hwsim.rtl_timing.tiles_cycles`
(``cycles - stalls == predicted``; under stalls a bound, :attr:`LayerResult.cycles_agree`).
Each layer starts on an idle top: its first descriptor waits until the layer before has ended
(as a host that reads a layer's outputs before the next one would); inside a layer each tile's
store runs beside the next tile (``rtl.top``). A K tile that writes partial sums returns
nothing; its span ends with its drain (:mod:`sim.bench`).
:func:`check_fits` raises the same error as programming would, without building anything (it is
:func:`rtl.host.tiles` on :func:`hwsim.rtl_plan.top_geometry`), for a command line to call before
a slow build.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwsim.accelerator import Accelerator
from hwsim.errors import DoesNotFit, HwsimError
from hwsim.rtl_plan import Tile, TopGeometry, top_geometry
from hwsim.rtl_timing import tiles_cycles
from models.intref import QLayer, int_forward
from rtl.host import assemble, tile_programs, tiles, unpack
from rtl.tools import ToolFailed
from sim.bench import JOB_ENV, MAX_PATTERN
from sim.build import TopBuild, verilator_env

__all__ = ["KEPT_MISMATCHES", "CosimRun", "LayerResult", "check_fits", "check_pattern", "run_layers", "simulate"]

#: Mismatches kept per layer (all are counted).
KEPT_MISMATCHES = 10


@dataclass(frozen=True)
class LayerResult:
    """One co-simulated layer.

    ``output`` is the RTL's integer output, ``expected`` that of ``int_forward``; ``mismatches``
    the first :data:`KEPT_MISMATCHES` differing elements as ``(position, expected, got)`` of
    ``mismatch_count``. ``cycles`` run from the first tile's descriptor transfer to the last
    tile's last result transfer, both included; ``stalls`` of them were the bench's idle inputs or
    back-pressure (see :mod:`sim.bench`); ``predicted`` is ``tiles_cycles(...)["total"]`` of its
    ``tiles``. ``error`` is the top's ``o_error`` flag.
    """

    output: np.ndarray
    expected: np.ndarray
    mismatches: list[tuple[tuple[int, ...], int, int]]
    mismatch_count: int
    cycles: int
    stalls: int
    predicted: int
    error: bool
    tiles: int = 1

    @property
    def bit_exact(self) -> bool:
        return self.mismatch_count == 0

    @property
    def cycle_exact(self) -> bool:
        """``cycles - stalls == predicted``: every stall cycle cost one cycle."""
        return self.cycles - self.stalls == self.predicted

    @property
    def cycles_agree(self) -> bool:
        """Exact, or -- under stalls, where a stall may fall in a cycle the top waits anyway (a
        tile's loads beside the run of the one before, a store beside the next tile, the wait
        for the descriptor's geometry; :mod:`sim.bench`) -- ``cycles - stalls <= predicted <=
        cycles``."""
        if self.cycle_exact:
            return True
        return self.stalls > 0 and self.cycles - self.stalls <= self.predicted <= self.cycles


@dataclass(frozen=True)
class CosimRun:
    """All layers of one simulation, its simulated cycles (reset excluded) and timings.

    ``wall_seconds`` covers programming, the simulator process and checking;
    ``cycles_per_second`` is ``cycles`` over the harness's run time (``sim_seconds``), and
    ``cycles_per_cpu_second`` over the simulator's CPU time in it (``sim_cpu_seconds``; on a
    loaded machine the fairer figure).
    ``waves`` is the VCD file when recorded.
    """

    layers: list[LayerResult]
    cycles: int
    wall_seconds: float
    sim_seconds: float
    sim_cpu_seconds: float
    waves: Path | None

    @property
    def cycles_per_second(self) -> float:
        return self.cycles / self.sim_seconds if self.sim_seconds > 0 else 0.0

    @property
    def cycles_per_cpu_second(self) -> float:
        return self.cycles / self.sim_cpu_seconds if self.sim_cpu_seconds > 0 else 0.0


def check_fits(target: Accelerator | TopGeometry, q: QLayer, x: np.ndarray,
               residual: bool = False) -> tuple[Tile, ...]:
    """The tiles ``q`` on input ``x`` (adding a shortcut with ``residual``) runs as on ``target``
    (an Accelerator, or the geometry of an already made top; one tile when it fits whole); pure,
    nothing is emitted or compiled.

    Raises :class:`~hwsim.errors.DoesNotFit` naming what is too large and the fix, and
    :class:`~hwsim.errors.ConfigError` when no top can be generated for the accelerator.
    """
    geo = target if isinstance(target, TopGeometry) else top_geometry(target)
    try:
        return tiles(geo, q, tuple(x.shape[2:]) if q.conv else (1, 1), residual)
    except DoesNotFit as exc:
        raise DoesNotFit(f"layer does not fit: {exc}") from None


def check_pattern(name: str, pattern: Sequence[int]) -> list[int]:
    values = list(pattern)
    if not values or any(v not in (0, 1) for v in values) or 1 not in values:
        raise HwsimError(f"`{name}` must be a non-empty sequence of 0/1 with at least one 1, "
                         f"not {pattern!r}")
    if len(values) > MAX_PATTERN:
        raise HwsimError(f"`{name}` has {len(values)} entries; the harness holds {MAX_PATTERN}")
    return values


def _mismatches(expected: np.ndarray, got: np.ndarray) -> tuple[list[tuple[tuple[int, ...], int, int]], int]:
    where = np.argwhere(expected != got)
    kept = [(tuple(int(i) for i in pos), int(expected[tuple(pos)]), int(got[tuple(pos)]))
            for pos in where[:KEPT_MISMATCHES]]
    return kept, len(where)


def simulate(build: TopBuild, job: dict[str, Any], run_dir: Path, waves: bool, *,
             bench: str = "sim.bench", job_env: str = JOB_ENV) -> dict[str, Any]:
    """Run the cocotb module ``bench`` (:mod:`sim.bench`, or :mod:`sim.netbench` for a network
    build) on ``job`` (its path in ``job_env``) in ``run_dir``; return its output record."""
    from cocotb_tools.runner import get_runner

    job_path, out_path, log = run_dir / "job.json", run_dir / "result.json", run_dir / "sim.log"
    job_path.write_text(json.dumps({**job, "output": str(out_path)}))
    with verilator_env():
        runner = get_runner("verilator")
        try:
            runner.test(test_module=bench, hdl_toplevel=build.harness_module,
                        hdl_toplevel_lang="verilog", build_dir=build.sim_dir, test_dir=run_dir,
                        extra_env={job_env: str(job_path)}, waves=waves, log_file=log,
                        results_xml=str(run_dir / "results.xml"))
        except (RuntimeError, SystemExit) as exc:
            raise ToolFailed(f"simulation of {build.module} failed ({exc}); see {log}") from None
    if not out_path.exists():
        raise ToolFailed(f"simulation of {build.module} wrote no results; see {log}")
    return json.loads(out_path.read_text())


def run_layers(build: TopBuild, layers: list[tuple[QLayer, np.ndarray]], *,
               valid_pattern: Sequence[int] = (1,), ready_pattern: Sequence[int] = (1,),
               waves: bool = False, residuals: Sequence[np.ndarray | None] | None = None) -> CosimRun:
    """Co-simulate ``layers`` (integer layer, integer input) back to back on ``build``;
    ``residuals`` gives each layer's shortcut (``int_forward``'s ``residual``; None: none).

    Inputs are valid following ``valid_pattern`` and results accepted following
    ``ready_pattern`` (both cycled; ``(1,)`` is full rate). ``waves`` records a VCD (the build
    must have been made with ``waves=True``). Raises :class:`HwsimError` before simulating when a
    layer does not fit or an argument is bad, ToolFailed naming the log when the simulation
    fails or stalls beyond its cycle budget.
    """
    start = time.perf_counter()
    valid, ready = check_pattern("valid_pattern", valid_pattern), check_pattern("ready_pattern", ready_pattern)
    if waves and not build.waves:
        raise HwsimError("waveforms need a top built with waves=True; rebuild it with waves")
    if not layers:
        raise HwsimError("no layers to co-simulate; give at least one")
    shortcuts = list(residuals) if residuals is not None else [None] * len(layers)
    if len(shortcuts) != len(layers):
        raise HwsimError(f"{len(shortcuts)} residuals for {len(layers)} layers; give one (or None) per layer")
    for index, ((q, x), r) in enumerate(zip(layers, shortcuts)):
        try:
            check_fits(build.top.geo, q, x, r is not None)
        except DoesNotFit as exc:
            raise DoesNotFit(f"layer {index}: {exc}") from None
    tiled = [tile_programs(build.top, q, x, r) for (q, x), r in zip(layers, shortcuts)]
    progs = [prog for layer in tiled for _, _, prog in layer]
    predicted = [tiles_cycles(build.top.geo, [t for t, _, _ in layer])["total"] for layer in tiled]
    # Every idle pattern cycle can delay a transfer by one cycle; allow four times that.
    stretch = max(len(valid) / sum(valid), len(ready) / sum(ready))
    holds = [index == 0 for layer in tiled for index in range(len(layer))]  # a layer on an idle top
    job = {"layers": [{"desc": p.descriptor, "params": p.params, "weights": p.weights, "acts": p.acts,
                       "resid": p.resid, "result_beats": p.result_beats, "hold": hold}
                      for p, hold in zip(progs, holds)],
           "valid_pattern": valid, "ready_pattern": ready,
           "max_cycles": int(4 * stretch * sum(predicted)) + 1000}
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=build.dir))
    try:
        record = simulate(build, job, run_dir, waves)
    finally:
        if not waves:
            shutil.rmtree(run_dir, ignore_errors=True)
    if record["timeout"]:
        index = record["finished"]  # the first descriptor that did not end
        layer, tile = next((i, index - sum(map(len, tiled[:i]))) for i in range(len(tiled))
                           if index < sum(map(len, tiled[:i + 1])))
        where = f" (tile {tile} of {len(tiled[layer])})" if len(tiled[layer]) > 1 else ""
        raise ToolFailed(f"simulation stopped after {record['cycles']} cycles: layer {layer}{where} "
                         f"returned {record['received'][index]} of {progs[index].result_beats} result beats")
    results, outs = [], iter(record["layers"])
    for (q, x), r, layer, want in zip(layers, shortcuts, tiled, predicted):
        done = [(tile, part, prog, next(outs)) for tile, part, prog in layer]
        got = assemble(q, [(tile, unpack(build.top, part, prog, out["beats"]))
                           for tile, part, prog, out in done if prog.result_beats])
        expected = int_forward(q, x, residual=r)
        kept, count = _mismatches(expected, got)
        first, last = done[0][3], done[-1][3]  # a tile's store overlaps the next tile: span the layer
        results.append(LayerResult(output=got, expected=expected, mismatches=kept, mismatch_count=count,
                                   cycles=last["last"] - first["first"] + 1,
                                   stalls=last["stalls_last"] - first["stalls_first"], predicted=want,
                                   error=any(out["error"] for *_, out in done), tiles=len(done)))
    return CosimRun(layers=results, cycles=record["cycles"], sim_seconds=record["seconds"],
                    sim_cpu_seconds=record["cpu_seconds"],
                    wall_seconds=time.perf_counter() - start,
                    waves=run_dir / "dump.vcd" if waves else None)
