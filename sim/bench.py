"""The cocotb bench run inside Verilator: hands a job of layer programs to the HDL harness, collects
what it measured.

The host (:mod:`sim.cosim`) writes a job file and names it in the environment variable
:data:`JOB_ENV`. The job lists, per layer, the descriptor and the parameter, weight and activation
beats (payloads as ints) and the number of result beats, plus the valid pattern of the inputs, the
ready pattern of the results and a cycle budget. The bench writes the result beats and counts to the
job's ``output`` path (JSON).

Every beat is driven by the harness ``sim/hdl/harness.sv`` around the top, so no Python runs per
cycle: :func:`write_job` puts the job into the harness's files (the streams as hex words, the
patterns and the result beats per layer), the test raises ``start``, sleeps until ``done`` and
:func:`read_record` turns the harness's files back into the output record. The harness offers
every layer's beats of a stream in turn whenever the valid pattern allows (the top takes each
stream only in its phase, so the order desc, params, weights, acts follows from the top's ready);
valid and ready patterns are indexed by the cycle, as for a driver that advances its pattern every
cycle. A transfer happens on a rising edge iff valid and ready. The test sets the harness's
``burst`` (:func:`burst_cycles`), raises ``start`` and then looks at ``done`` every
:data:`POLL_NS`; when the clock has ``paused`` after a burst (``sim/hdl/clock.sv``) it resumes it
by toggling ``start``. The output record also holds ``resumed``, how often it did.

A "layer" of the job is one descriptor (a tile); one with ``hold`` is offered only once every
earlier one has ended (the host of :mod:`sim.cosim` holds the first tile of each model layer, so
that the layer starts on an idle top, as ``hwsim.rtl_timing`` counts it). Counts per layer (cycle 0
is the first rising edge out of reset): ``first`` and ``last``, the cycles of its descriptor
transfer and of its last result transfer -- for a layer of no result beats (a K tile that writes
partial sums) the last cycle before the top is ready for a descriptor again, the cycle the run
side takes it (the storing K tile that follows ends the model layer) --, ``cycles`` from
one to the other, both included, and ``stalls`` (``stalls_first``, ``stalls_last`` the running
count at both), the cycles in that span in which an input stream the top was waiting on (the one
with ``ready`` high) had ``valid`` low, or ``o_results`` had ``valid`` high and ``ready`` low.
A tile loads beside the run of the one before and stores beside the next (``rtl.top``), so
consecutive spans overlap: a model layer's cycles run from its first tile's ``first`` to its last
tile's ``last``. While one activity runs at a time, each stall cycle delays the top by exactly
one cycle and ``cycles - stalls`` is the full-rate count; when activities run side by side, both
may stall in one cycle, or a stall may fall in a cycle the top waits anyway, so that the
full-rate count lies between ``cycles - stalls`` and ``cycles``. ``error`` is ``o_error`` sampled at each
result transfer of the layer (a layer of no results: at its end). ``finished`` counts the layers
that ended. ``cycles`` of the record is the cycles run (the last transfer's plus one, or the
budget on a timeout); ``seconds`` the wall time of the harness's run and
``cpu_seconds`` the simulator process's CPU time in it (what a loaded machine does not inflate).

This module is imported by cocotb inside the simulator; it only needs cocotb and the standard
library.
"""

from __future__ import annotations

import json
from collections.abc import Callable
import os
import time
from pathlib import Path
from typing import Any

import cocotb
from cocotb.triggers import Timer

#: Environment variable holding the path of the job file.
JOB_ENV = "HWSIM_COSIM_JOB"
#: The harness's input stream files in phase order, the job key of each one's beats and the
#: harness parameter that holds its width.
STREAMS = (("desc.bin", "desc", "W_DESC"), ("params.bin", "params", "W_PARAMS"),
           ("weights.bin", "weights", "W_WEIGHTS"), ("acts.bin", "acts", "W_ACTS"),
           ("resid.bin", "resid", "W_RESID"))
#: Longest valid or ready pattern the harness holds (its MAX_PATTERN).
MAX_PATTERN = 1024
#: Simulated nanoseconds between two looks at ``done``: a timer costs nothing per time step,
#: unlike a value-change callback. The clock's bursts take no simulated time, so each look comes
#: right after one; with waves (two nanoseconds per cycle) the harness's clock stops once done, so
#: the rest of the last wait is skipped at once.
POLL_NS = 1 << 20
#: Environment variable that may set the cycles of one burst of the harness's clock (see
#: :data:`BURST_CYCLES`; tests make it small to exercise the pauses).
BURST_ENV = "HWSIM_COSIM_BURST"
#: Cycles the harness runs within one evaluation of the model before its clock pauses until the
#: bench resumes it (``sim/hdl/clock.sv``): Verilator's ``--converge-limit`` (``2**31 - 1``, see
#: :mod:`sim.build`) bounds the clock's edges, two per cycle, in one evaluation.
BURST_CYCLES = 1 << 29


def burst_cycles() -> int:
    """The cycles of one burst: :data:`BURST_ENV` if set, else :data:`BURST_CYCLES`."""
    value = os.environ.get(BURST_ENV)
    if value is None:
        return BURST_CYCLES
    if not value.isdigit() or not 1 <= int(value) <= BURST_CYCLES:
        raise ValueError(f"{BURST_ENV}={value!r}: give 1 to {BURST_CYCLES} cycles")
    return int(value)


def write_job(job: dict[str, Any], folder: Path, widths: dict[str, int]) -> None:
    """The harness's input files for ``job`` in ``folder`` (see ``sim/hdl/harness.sv``), with the
    harness's stream ``widths`` (bits by parameter name, see :data:`STREAMS`)."""
    layers = job["layers"]
    valid, ready = job["valid_pattern"], job["ready_pattern"]
    (folder / "job.txt").write_text(" ".join(map(str, [job["max_cycles"], len(layers),
                                                       len(valid), *valid, len(ready), *ready])))
    (folder / "counts.txt").write_text("\n".join(f"{layer['result_beats']} {int(layer.get('hold', False))}"
                                                for layer in layers))
    for name, key, width in STREAMS:
        beats = [b for layer in layers for b in ([layer[key]] if key == "desc" else layer[key])]
        if max(beats, default=0) >> widths[width]:
            raise ValueError(f"{key}: a beat is wider than the stream's {widths[width]} bits")
        size = -(-widths[width] // 8)
        (folder / name).write_bytes(len(beats).to_bytes(4, "big")
                                    + b"".join(b.to_bytes(size, "big") for b in beats))


def read_record(job: dict[str, Any], folder: Path, seconds: float, cpu_seconds: float) -> dict[str, Any]:
    """The output record (see the module docstring) from the harness's files in ``folder``."""
    words = [int(line, 16) for line in (folder / "results.hex").read_text().split()]
    firsts, lasts, end = {}, {}, (0, 0)
    for line in (folder / "records.txt").read_text().splitlines():
        kind, *values = line.split()
        numbers = tuple(int(v) for v in values)
        if kind == "D":
            firsts[numbers[0]] = numbers[1:]
        elif kind == "L":
            lasts[numbers[0]] = numbers[1:]
        else:
            end = numbers
    beats, start = [], 0
    for layer in job["layers"]:
        beats.append(words[start:start + layer["result_beats"]])
        start += layer["result_beats"]
    layers = []
    for index, out in enumerate(beats):
        if index not in lasts:
            break
        (first, s_first), (last, s_last, error) = firsts[index], lasts[index]
        layers.append({"beats": out, "error": bool(error), "cycles": last - first + 1,
                       "stalls": s_last - s_first, "first": first, "last": last,
                       "stalls_first": s_first, "stalls_last": s_last})
    return {"layers": layers, "received": [len(out) for out in beats], "finished": len(layers),
            "timeout": bool(end[1]),
            "cycles": end[0], "seconds": seconds, "cpu_seconds": cpu_seconds}


async def drive(dut: Any, job_env: str, write: Callable[[dict[str, Any], Path], None],
                read: Callable[[dict[str, Any], Path, float, float], dict[str, Any]]) -> None:
    """The job named by ``job_env``: ``write`` its harness files, raise ``start``, sleep until
    ``done``, write the record ``read`` makes (wall and CPU seconds of the run) to its ``output``."""
    job = json.loads(Path(os.environ[job_env]).read_text())
    folder = Path.cwd()
    write(job, folder)
    dut.burst.value = burst_cycles()
    start, cpu = time.perf_counter(), time.process_time()
    dut.start.value = 1
    resumed = 0
    while dut.done.value != 1:
        await Timer(POLL_NS, unit="ns")
        if dut.paused.value == 1 and dut.done.value != 1:  # a burst ended: resume the clock
            dut.start.value = 1 - int(dut.start.value)
            resumed += 1
    record = {**read(job, folder, time.perf_counter() - start, time.process_time() - cpu),
              "resumed": resumed}
    Path(job["output"]).write_text(json.dumps(record))


@cocotb.test()
async def run_job(dut: Any) -> None:
    """Run the job named by :data:`JOB_ENV` on the harness and write its output record."""
    widths = {width: int(getattr(dut, width).value) for _, _, width in STREAMS}
    await drive(dut, JOB_ENV, lambda job, folder: write_job(job, folder, widths), read_record)
