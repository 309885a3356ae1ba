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
cycle. A transfer happens on a rising edge iff valid and ready. The test raises ``start`` and then
looks at ``done`` every :data:`POLL_NS`.

A "layer" of the job is one descriptor (a tile); one with ``hold`` is offered only once every
earlier one has ended (the host of :mod:`sim.cosim` holds the first tile of each model layer, so
that the layer starts on an idle top, as ``hwsim.rtl_timing`` counts it). Counts per layer (cycle 0
is the first rising edge out of reset): ``first`` and ``last``, the cycles of its descriptor
transfer and of its last result transfer -- for a layer of no result beats (a K tile that writes
partial sums) the last cycle before the top is ready for a descriptor again --, ``cycles`` from
one to the other, both included, and ``stalls`` (``stalls_first``, ``stalls_last`` the running
count at both), the cycles in that span in which an input stream the top was waiting on (the one
with ``ready`` high) had ``valid`` low, or ``o_results`` had ``valid`` high and ``ready`` low.
A tile's store runs beside the next tile (``rtl.top``), so consecutive spans overlap: a model
layer's cycles run from its first tile's ``first`` to its last tile's ``last``. While one
activity runs at a time, each stall cycle delays the top by exactly one cycle and ``cycles -
stalls`` is the full-rate count; when a store runs beside the next tile, both may stall in one
cycle, so that the full-rate count lies between ``cycles - stalls`` and ``cycles``. ``error`` is ``o_error`` sampled at each
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
#: The harness's input stream files in phase order, and the job key of each one's beats.
STREAMS = (("desc.hex", "desc"), ("params.hex", "params"), ("weights.hex", "weights"),
           ("acts.hex", "acts"), ("resid.hex", "resid"))
#: Longest valid or ready pattern the harness holds (its MAX_PATTERN).
MAX_PATTERN = 1024
#: Simulated nanoseconds (two per cycle) between two looks at ``done``: a timer costs nothing per
#: time step, unlike a value-change callback, and once done the harness's clock stops, so the
#: rest of the last wait is skipped at once.
POLL_NS = 1 << 20


def write_job(job: dict[str, Any], folder: Path) -> None:
    """The harness's input files for ``job`` in ``folder`` (see ``sim/hdl/harness.sv``)."""
    layers = job["layers"]
    valid, ready = job["valid_pattern"], job["ready_pattern"]
    (folder / "job.txt").write_text(" ".join(map(str, [job["max_cycles"], len(layers),
                                                       len(valid), *valid, len(ready), *ready])))
    (folder / "counts.txt").write_text("\n".join(f"{layer['result_beats']} {int(layer.get('hold', False))}"
                                                for layer in layers))
    for name, key in STREAMS:
        beats = [b for layer in layers for b in ([layer[key]] if key == "desc" else layer[key])]
        (folder / name).write_text("\n".join([str(len(beats)), *(f"{b:x}" for b in beats)]) + "\n")


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
    start, cpu = time.perf_counter(), time.process_time()
    dut.start.value = 1
    while dut.done.value != 1:
        await Timer(POLL_NS, unit="ns")
    record = read(job, folder, time.perf_counter() - start, time.process_time() - cpu)
    Path(job["output"]).write_text(json.dumps(record))


@cocotb.test()
async def run_job(dut: Any) -> None:
    """Run the job named by :data:`JOB_ENV` on the harness and write its output record."""
    await drive(dut, JOB_ENV, write_job, read_record)
