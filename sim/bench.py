"""The cocotb bench run inside Verilator: streams layer programs through the top, collects results.

The host (:mod:`sim.cosim`) writes a job file and names it in the environment variable
:data:`JOB_ENV`. The job lists, per layer, the descriptor and the parameter, weight and activation
beats (payloads as ints) and the number of result beats, plus the valid pattern of the inputs, the
ready pattern of the results and a cycle budget. The bench writes the result beats and counts to the
job's ``output`` path (JSON).

Structure: one :class:`StreamDriver` per input stream (each holds every layer's beats of its stream
and offers them whenever its valid pattern allows -- the top takes each stream only in its phase,
so the order desc, params, weights, acts follows from the top's ready), one :class:`ResultMonitor`
on ``o_results``, and :class:`Bench` which clocks them. For speed all of them run from one loop
that wakes once per cycle, on the falling clock edge: the top's registers are settled there, so
``ready`` (a function of the top's state only, see :mod:`rtl.top`) and ``o_results.valid`` (a
register) are sampled once, and the inputs written then are what the next rising edge registers.
A transfer is decided at that point: it happens on the next rising edge iff valid and ready.

Counts per layer: ``cycles`` from the rising edge of the descriptor transfer to that of the last
result transfer, both included (``hwsim.rtl_timing.layer_cycles``'s ``total``), and ``stalls``,
the cycles in that span in which the stream the top was waiting on (the one with ``ready`` high)
had ``valid`` low, or ``o_results`` had ``valid`` high and ``ready`` low. Each such cycle delays
the top by exactly one cycle, so ``cycles - stalls`` is the full-rate count. ``error`` is
``o_error`` sampled at each result transfer of the layer.

This module is imported by cocotb inside the simulator; it only needs cocotb and the standard
library.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from pathlib import Path
from typing import Any

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

#: Environment variable holding the path of the job file.
JOB_ENV = "HWSIM_COSIM_JOB"
#: Input streams in phase order, and the job key of each one's beats.
STREAMS = (("i_desc", "desc"), ("i_params", "params"), ("i_weights", "weights"),
           ("i_acts", "acts"))
RESET_CYCLES = 2


class StreamDriver:
    """Offers the beats of one input stream, valid following ``pattern`` (cycled).

    ``transfers`` holds the cycle of every completed transfer, in order.
    """

    def __init__(self, dut: Any, name: str, beats: list[int], pattern: list[int]) -> None:
        self.name = name
        self.payload = getattr(dut, f"{name}__payload")
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.beats = beats
        self.next = 0
        self.shown = 0  # index of the beat on the payload bus
        self.pattern = itertools.cycle(pattern)
        self.driven_valid = 0
        self.transfers: list[int] = []

    @property
    def done(self) -> bool:
        return self.next == len(self.beats)

    def step(self, cycle: int) -> bool:
        """Drive this cycle's valid/payload; return whether the top waits on a low valid (stall)."""
        if self.next != self.shown:  # the beat on the bus went in on the last rising edge
            if self.done:
                self.valid.value = self.driven_valid = 0
                self.shown = self.next
                return False
            self.payload.value = self.beats[self.next]
            self.shown = self.next
        elif self.done:
            return False
        ready = self.ready.value == 1
        valid = next(self.pattern)
        if valid != self.driven_valid:
            self.valid.value = self.driven_valid = valid
        if valid and ready:
            self.transfers.append(cycle)
            self.next += 1
        return ready and not valid

    def start(self) -> None:
        if self.beats:
            self.payload.value = self.beats[0]


class ResultMonitor:
    """Accepts ``o_results`` with ready following ``pattern`` and files the beats per layer.

    ``counts[i]`` result beats belong to layer ``i``; ``beats``, ``last`` (cycle of the layer's last
    transfer) and ``errors`` (``o_error`` at its transfers) are filled in layer order.
    """

    def __init__(self, dut: Any, counts: list[int], pattern: list[int]) -> None:
        self.payload, self.valid = dut.o_results__payload, dut.o_results__valid
        self.ready, self.error = dut.o_results__ready, dut.o_error
        self.counts = counts
        self.pattern = itertools.cycle(pattern)
        self.driven_ready = 0
        self.beats: list[list[int]] = [[] for _ in counts]
        self.errors = [0] * len(counts)
        self.last: list[int] = []

    @property
    def done(self) -> bool:
        return len(self.last) == len(self.counts)

    def step(self, cycle: int) -> bool:
        """Drive this cycle's ready and take a transfer; return whether the top stalls on it."""
        ready = next(self.pattern)
        if ready != self.driven_ready:
            self.ready.value = self.driven_ready = ready
        if self.valid.value != 1:
            return False
        if not ready:
            return True
        layer = len(self.last)
        if layer == len(self.counts):
            raise AssertionError(f"result beat at cycle {cycle} after the last layer's results")
        self.beats[layer].append(self.payload.value.to_unsigned())
        self.errors[layer] |= int(self.error.value == 1)
        if len(self.beats[layer]) == self.counts[layer]:
            self.last.append(cycle)
        return False


class Bench:
    """Clock, reset, the four drivers and the monitor; :meth:`run` returns the output record."""

    def __init__(self, dut: Any, job: dict[str, Any]) -> None:
        self.dut = dut
        self.job = job
        layers = job["layers"]
        self.drivers = [StreamDriver(dut, port, [b for layer in layers for b in
                                                 ([layer[key]] if key == "desc" else layer[key])],
                                     job["valid_pattern"])
                        for port, key in STREAMS]
        self.monitor = ResultMonitor(dut, [layer["result_beats"] for layer in layers],
                                     job["ready_pattern"])

    async def reset(self) -> None:
        self.dut.rst.value = 1
        for port, _ in STREAMS:
            getattr(self.dut, f"{port}__valid").value = 0
        self.dut.o_results__ready.value = 0
        for _ in range(RESET_CYCLES):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0

    async def run(self) -> dict[str, Any]:
        Clock(self.dut.clk, 2, unit="ns").start()
        await self.reset()
        for driver in self.drivers:
            driver.start()
        falling = FallingEdge(self.dut.clk)
        budget = self.job["max_cycles"]
        desc = self.drivers[0]
        stalls = 0
        stalls_at_desc: list[int] = []
        stalls_at_last: list[int] = []
        cycle = 0
        start = time.perf_counter()
        while not self.monitor.done and cycle < budget:
            await falling
            described = len(desc.transfers)
            for driver in self.drivers:
                stalls += driver.step(cycle)
            if len(desc.transfers) > described:
                stalls_at_desc.append(stalls)
            finished = len(self.monitor.last)
            stalls += self.monitor.step(cycle)
            if len(self.monitor.last) > finished:
                stalls_at_last.append(stalls)
            cycle += 1
        seconds = time.perf_counter() - start
        layers = [{"beats": beats, "error": error,
                   "cycles": last - first + 1, "stalls": s_last - s_first}
                  for beats, error, first, last, s_first, s_last in zip(
                      self.monitor.beats, self.monitor.errors, desc.transfers, self.monitor.last,
                      stalls_at_desc, stalls_at_last)]
        received = [len(beats) for beats in self.monitor.beats]
        return {"layers": layers, "received": received, "timeout": not self.monitor.done,
                "cycles": cycle, "seconds": seconds}


@cocotb.test()
async def run_job(dut: Any) -> None:
    """Run the job named by :data:`JOB_ENV` and write its output record."""
    job = json.loads(Path(os.environ[JOB_ENV]).read_text())
    record = await Bench(dut, job).run()
    Path(job["output"]).write_text(json.dumps(record))
