"""Run a sweep: pick points (grid, random or an Optuna sampler), cost them through the cache
and a backend, flag the feasible and the Pareto-optimal ones.

Each point is costed as ``hwsim estimate`` costs it (:meth:`Space.accelerator`, then
:func:`hwsim.simulate.estimate`). Every (PE kind, width) workload is loaded once per run with one
call of :func:`hwsim.api.workloads` for all the targets that miss the cache; the points that
miss go to the backend in chunks of one workload and several accelerators, so a workload is
pickled once per chunk, not once per point.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from hwsim.accelerator import Accelerator
from hwsim.api import workloads
from hwsim.errors import ConfigError, HwsimError
from hwsim.parallel import Backend
from hwsim.sweep.cache import Cache, point_key, recipe_key, workload_fingerprint
from hwsim.sweep.pareto import pareto_mask
from hwsim.sweep.space import AXES, Point, Space
from hwsim.workload import Workload

__all__ = ["OBJECTIVES", "SAMPLERS", "STRATEGIES", "Sweep", "SweepResult", "cost_chunk", "run"]

#: Objective names (``--objective``) and the row field each minimizes.
OBJECTIVES = {"energy": "energy_uj", "latency": "latency_ms", "area": "area_mm2", "edp": "edp_uj_ms"}
STRATEGIES = ("grid", "random", "optuna")
#: Optuna samplers (``--sampler``), both multi-objective and constraint-aware.
SAMPLERS = ("tpe", "nsga2")
#: Chunks per worker: enough to balance uneven chunks, few enough to pickle each workload rarely.
CHUNKS_PER_WORKER = 4
#: The totals a row keeps (see :meth:`hwsim.simulate.Report.totals`).
TOTALS = ("energy_uj", "latency_ms", "area_mm2", "cycles", "utilization", "energy_compute_uj",
          "energy_onchip_uj", "energy_dram_uj", "energy_leakage_uj", "leakage_mw", "macs")

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Sweep:
    """What to sweep and how. ``objectives`` are keys of :data:`OBJECTIVES` (all minimized);
    ``max_area_mm2`` / ``max_latency_ms`` are constraints (None: none); ``samples`` is the number
    of random points or Optuna trials; ``convert_all`` and ``input_shape`` go to
    :func:`hwsim.api.workloads` as ``hwsim estimate`` passes them."""

    model: str
    space: Space
    objectives: tuple[str, ...] = ("energy", "latency")
    max_area_mm2: float | None = None
    max_latency_ms: float | None = None
    strategy: str = "grid"
    samples: int = 50
    seed: int = 0
    sampler: str = "tpe"
    convert_all: bool = False
    input_shape: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        bad = [o for o in self.objectives if o not in OBJECTIVES]
        if bad or not self.objectives or len(set(self.objectives)) != len(self.objectives):
            raise ConfigError(f"--objective takes distinct names among {', '.join(OBJECTIVES)}, not "
                              f"{','.join(self.objectives)!r}")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"unknown strategy {self.strategy!r}; choose one of {', '.join(STRATEGIES)}")
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"unknown sampler {self.sampler!r}; choose one of {', '.join(SAMPLERS)}")
        if self.samples < 1:
            raise ConfigError(f"--samples must be 1 or more, not {self.samples}")
        for flag, limit in (("--max-area-mm2", self.max_area_mm2), ("--max-latency-ms", self.max_latency_ms)):
            if limit is not None and not 0 < limit < math.inf:
                raise ConfigError(f"{flag} must be a positive number, not {limit!r}; no design meets it")

    def violations(self, row: dict) -> dict[str, float]:
        """How far ``row`` exceeds each constraint given (<= 0: met), by the row field it bounds."""
        return {name: row[name] - limit for name, limit in (("area_mm2", self.max_area_mm2),
                                                            ("latency_ms", self.max_latency_ms))
                if limit is not None}


@dataclass(frozen=True)
class SweepResult:
    """One row per distinct point, in the order first costed: the point's resolved fields, its
    totals (:data:`TOTALS`, for the input's batch as ``hwsim estimate`` reports them), ``edp_uj_ms``,
    ``feasible`` (meets the constraints), ``pareto`` (feasible and non-dominated on the
    objectives) and ``pe_front`` (feasible and non-dominated in energy and latency among its PE
    kind's feasible points). ``cached``: points served by the cache; ``loads``: seconds of each
    workload load, by its targets (``mac8,adder4``)."""

    sweep: Sweep
    rows: list[dict]
    cached: int
    seconds: float
    loads: dict[str, float] = field(default_factory=dict)


def cost_chunk(task: tuple[Workload, Sequence[Accelerator]]) -> list[dict]:
    """The totals of one workload on each accelerator (a backend task; module level to pickle)."""
    from hwsim.simulate import estimate

    workload, accs = task
    return [estimate(workload, acc).totals() for acc in accs]


def _row(acc: Accelerator, totals: dict) -> dict:
    """A result row: the accelerator's swept fields, then the totals and the EDP."""
    mem = acc.memory
    row = {"pe": acc.pe, "bits": acc.bits, "array": f"{acc.array.rows}x{acc.array.cols}",
           "dataflow": acc.array.dataflow, "sram_kib": mem.global_buffer_kib or mem.ifmap_sram_kib,
           "dram": mem.dram, "clock_mhz": acc.clock_mhz, "mapper": acc.schedule.mapper}
    row.update({name: totals[name] for name in TOTALS})
    row["edp_uj_ms"] = totals["energy_uj"] * totals["latency_ms"]
    return row


class _Evaluator:
    """Costs points, each once: from the cache when it has them, else on the backend."""

    def __init__(self, sweep: Sweep, backend: Backend, cache: Cache, progress: Progress) -> None:
        self.sweep, self.backend, self.cache, self.progress = sweep, backend, cache, progress
        self.rows: dict[Point, dict] = {}
        self.order: list[Point] = []  # distinct points in the order first asked for
        self.cached = 0
        self._loaded: dict[tuple[str, int], Workload] = {}
        self._prints: dict[tuple[str, int], str] = {}
        self.load_seconds: dict[str, float] = {}

    def _recipe(self, target: tuple[str, int]) -> str | None:
        return recipe_key(self.sweep.model, *target, convert_all=self.sweep.convert_all,
                          input_shape=self.sweep.input_shape)

    def _fingerprint(self, target: tuple[str, int]) -> str | None:
        if target not in self._prints:
            found = self.cache.fingerprint(self._recipe(target))
            if found is None:
                return None
            self._prints[target] = found
        return self._prints[target]

    def _load(self, targets: list[tuple[str, int]]) -> None:
        """Load the workloads of ``targets`` (one network trace for all) and note their prints."""
        targets = [t for t in dict.fromkeys(targets) if t not in self._loaded]
        if not targets:
            return
        start = time.perf_counter()
        made = workloads(self.sweep.model, targets, convert_all=self.sweep.convert_all,
                         input_shape=self.sweep.input_shape)
        self.load_seconds[",".join(f"{pe}{bits}" for pe, bits in targets)] = time.perf_counter() - start
        for target, workload in zip(targets, made):
            self._loaded[target] = workload
            self._prints[target] = workload_fingerprint(workload)
            self.cache.put_fingerprint(self._recipe(target), self._prints[target])

    def evaluate(self, points: Sequence[Point]) -> list[dict]:
        """The rows of ``points`` (repeats allowed), costing those not yet known."""
        space = self.sweep.space
        new = [p for p in dict.fromkeys(points) if p not in self.rows]
        self.order += new
        accs = {p: space.accelerator(p) for p in new}
        targets = {p: (acc.pe, acc.bits) for p, acc in accs.items()}
        todo = self._from_cache(new, accs, targets)
        self._load([targets[p] for p in todo if self._fingerprint(targets[p]) is None])
        todo = self._from_cache(todo, accs, targets)
        self._load([targets[p] for p in todo])
        by_target: dict[tuple[str, int], list[Point]] = {}
        for p in todo:
            by_target.setdefault(targets[p], []).append(p)
        size = max(1, math.ceil(len(todo) / (self.backend.workers * CHUNKS_PER_WORKER)))
        chunks = [group[i:i + size] for group in by_target.values() for i in range(0, len(group), size)]
        tasks = [(self._loaded[targets[chunk[0]]], tuple(accs[p] for p in chunk)) for chunk in chunks]
        for i, results in self.backend.map(cost_chunk, tasks):
            for p, totals in zip(chunks[i], results):
                self.cache.put_totals(point_key(self._prints[targets[p]], accs[p]), totals)
                self.rows[p] = _row(accs[p], totals)
            self.progress(len(chunks[i]))
        self.progress(len(points) - len(new))
        return [self.rows[p] for p in points]

    def _from_cache(self, points: list[Point], accs: dict[Point, Accelerator],
                    targets: dict[Point, tuple[str, int]]) -> list[Point]:
        """Fill the rows the cache has (of points whose workload print is known); the rest."""
        missing = []
        for p in points:
            found = self._fingerprint(targets[p])
            totals = self.cache.totals(point_key(found, accs[p])) if found is not None else None
            if totals is None:
                missing.append(p)
            else:
                self.rows[p] = _row(accs[p], totals)
                self.cached += 1
                self.progress(1)
        return missing


def _optuna(sweep: Sweep, evaluator: _Evaluator, batch: int) -> None:
    """Ask Optuna's sampler for ``sweep.samples`` trials, ``batch`` at a time (one backend round
    each), and tell it the objectives and the constraint violations."""
    try:
        import optuna
    except ImportError:
        raise ConfigError("--strategy optuna needs Optuna, which is not installed; pip install 'optuna>=5'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = (optuna.samplers.TPESampler(seed=sweep.seed) if sweep.sampler == "tpe"
               else optuna.samplers.NSGAIISampler(seed=sweep.seed))
    study = optuna.create_study(directions=["minimize"] * len(sweep.objectives), sampler=sampler)
    space, told = sweep.space, 0
    choices = {name: [_label(v) for v in getattr(space, name)] for name in list(AXES)[2:]}
    widths = sorted({b for pe in space.pe for b in space.widths(pe) if b is not None})
    while told < sweep.samples:
        trials = [study.ask() for _ in range(min(batch, sweep.samples - told))]
        points = []
        for trial in trials:
            pe = trial.suggest_categorical("pe", space.pe) if len(space.pe) > 1 else space.pe[0]
            bits = trial.suggest_categorical("bits", widths) if len(widths) > 1 else (widths or [None])[0]
            values = {name: getattr(space, name)[labels.index(trial.suggest_categorical(name, labels))]
                      if len(labels) > 1 else getattr(space, name)[0] for name, labels in choices.items()}
            points.append(Point(pe, None if pe == "xnor" else bits, **values))
        for trial, row in zip(trials, evaluator.evaluate(points)):
            for name, excess in sweep.violations(row).items():  # the samplers read them (Optuna 5)
                trial.set_constraint(name, excess)
            study.tell(trial, [row[OBJECTIVES[o]] for o in sweep.objectives])
        told += len(trials)


def _label(value: object) -> str | int | float | None:
    """An axis value as an Optuna categorical choice (an array shape as ``RxC``)."""
    return "{}x{}".format(*value) if isinstance(value, tuple) else value


def _flag(rows: list[dict], sweep: Sweep) -> None:
    """Set ``feasible``, ``pareto`` and ``pe_front`` on every row (see :class:`SweepResult`)."""
    for row in rows:
        row["feasible"] = all(v <= 0 for v in sweep.violations(row).values())
        row["pareto"] = row["pe_front"] = False
    feasible = [r for r in rows if r["feasible"]]
    if not feasible:
        best = {name: min(r[name] for r in rows) for name in ("area_mm2", "latency_ms")}
        raise HwsimError(f"no design of the {len(rows)} swept meets the constraints (smallest area "
                         f"{best['area_mm2']:.3g} mm2, lowest latency {best['latency_ms']:.3g} ms); "
                         "relax --max-area-mm2 / --max-latency-ms or widen the axes")
    objectives = [OBJECTIVES[o] for o in sweep.objectives]
    for row, on in zip(feasible, pareto_mask(np.array([[r[k] for k in objectives] for r in feasible]))):
        row["pareto"] = bool(on)
    for pe in dict.fromkeys(r["pe"] for r in feasible):
        kind = [r for r in feasible if r["pe"] == pe]
        for row, on in zip(kind, pareto_mask(np.array([[r["energy_uj"], r["latency_ms"]] for r in kind]))):
            row["pe_front"] = bool(on)


def run(sweep: Sweep, backend: Backend, cache: Cache, progress: Callable[[int, int], None] | None = None,
        ) -> SweepResult:
    """Cost the sweep's points; ``progress(done, total)`` is called as points finish.

    Raises HwsimError when no point meets the constraints (naming the best area and latency).
    """
    start = time.perf_counter()
    if sweep.strategy == "grid":
        points = sweep.space.grid()
    elif sweep.strategy == "random":
        points = sweep.space.random(sweep.samples, sweep.seed)
    else:
        points = []
    total = len(points) or sweep.samples
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None and n:
            progress(done, total)

    if progress is not None:
        progress(0, total)
    evaluator = _Evaluator(sweep, backend, cache, advance)
    if points:
        evaluator.evaluate(points)
    else:
        _optuna(sweep, evaluator, max(backend.workers, 1))
    rows = [dict(evaluator.rows[p]) for p in evaluator.order]
    _flag(rows, sweep)
    return SweepResult(sweep, rows, evaluator.cached, time.perf_counter() - start, evaluator.load_seconds)
