"""Co-simulate a chain of layers on the network accelerator: one start, everything from memory.

:func:`run_chain` lays the chain out with :func:`rtl.netprog.chain_program`, runs the command
list once on a network build (:func:`sim.build.build_top` with ``network=True``: the
:class:`~rtl.sequencer.NetworkAccelerator` behind an AXI4 memory model with the given latencies
and availability pattern, :mod:`sim.netbench`) and checks what the memory holds afterwards
against :func:`models.intref.int_forward`: every region between two layers byte for byte
against the reference output packed in the consumer's activation layout (so the scatter of every
tile is checked, not only the end result), and the last layer's unpacked outputs value for value.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwsim.errors import HwsimError

from hwsim.rtl_sequence import StoreMode, beat_widths, sequence_cycles
from rtl.host import QLayerLike
from rtl.netprog import ChainProgram, Region, chain_program, read_outputs
from rtl.tools import ToolFailed
from sim.build import MEM_BYTES, TopBuild
from sim.cosim import check_pattern, simulate
from sim.netbench import JOB_ENV

__all__ = ["ChainRun", "region_bytes", "run_chain"]


@dataclass(frozen=True)
class ChainRun:
    """One run of a chain on every image: the last layer's outputs per image, the references,
    mismatching bytes of each intermediate region and values of each output (summed over the
    images, per layer), the cycles from start to done and those
    :func:`hwsim.rtl_sequence.sequence_cycles` predicts for an always available memory (equal
    when the run's memory was), the error flag, the most read bursts in flight at once and
    timings."""

    outputs: list[np.ndarray]
    expected: list[np.ndarray]
    mismatches: list[int]
    cycles: int
    predicted: int
    error: bool
    reads_in_flight: int
    commands: int
    image_bytes: int
    sim_seconds: float
    sim_cpu_seconds: float
    wall_seconds: float

    @property
    def bit_exact(self) -> bool:
        return not any(self.mismatches)

    @property
    def cycles_per_second(self) -> float:
        return self.cycles / self.sim_seconds if self.sim_seconds > 0 else 0.0


def region_bytes(y: np.ndarray, region: Region, mode: StoreMode) -> bytes:
    """``y`` (``(1, C, H, W)`` or ``(1, C)``) in the activation layout of ``region`` (channels
    last, ``pstride`` bytes per pixel; ``BITS``: bit ``c`` of a pixel is channel ``c``)."""
    pixels = y.reshape(y.shape[1], -1).T  # (pixels, channels)
    out = bytearray(region.pixels * region.pstride)
    for p, chans in enumerate(pixels):
        if mode == StoreMode.BITS:
            value = sum(int(b & 1) << c for c, b in enumerate(chans))
            out[p * region.pstride:(p + 1) * region.pstride] = value.to_bytes(region.pstride, "little")
        else:
            out[p * region.pstride:p * region.pstride + len(chans)] = bytes(int(v) & 0xFF for v in chans)
    return bytes(out)


def run_chain(build: TopBuild, layers: Sequence[QLayerLike], images: Sequence[np.ndarray], *,
              read_latency: int = 1, write_latency: int = 1, pattern: Sequence[int] = (1,),
              shortcut: int | None = None) -> ChainRun:
    """Run ``layers`` as a chain on every input of ``images`` in one simulation of ``build``
    (layer ``shortcut``, if given, adding the image as its residual: :func:`rtl.netprog.chain_program`).

    The memory answers reads ``read_latency`` cycles after the address and acknowledges writes
    ``write_latency`` cycles after the data; it is available in the cycles where ``pattern``
    (cycled) is 1. Raises DoesNotFit naming a layer the sequencer cannot chain, HwsimError for a
    bad argument or an image too large for the harness memory, ToolFailed when the simulation
    fails or runs past its cycle budget.
    """
    start = time.perf_counter()
    if not build.network:
        raise HwsimError("run_chain needs a network build (build_top(..., network=True))")
    for name, value in (("read_latency", read_latency), ("write_latency", write_latency)):
        if not 1 <= value <= 10_000:
            raise HwsimError(f"`{name}` must be from 1 to 10000 cycles, not {value!r}")
    avail = check_pattern("pattern", pattern)
    top = build.top
    prog: ChainProgram = chain_program(top, layers, images, shortcut)
    bus_bytes = top.geo.bus_bits // 8
    words = prog.image.words(bus_bytes)
    if len(words) * bus_bytes > MEM_BYTES:
        raise HwsimError(f"the program needs {len(words) * bus_bytes} bytes; the harness memory holds {MEM_BYTES}")
    stretch = len(avail) / sum(avail)
    widths, result_bits = beat_widths(top.geo)  # the model's widths, not read from the RTL
    predicted = sequence_cycles(top.geo, prog.commands, widths, result_bits,
                                latency=read_latency, write_latency=write_latency)
    budget = int(4 * stretch * predicted) + 10_000
    job = {"memory": words, "bus_bits": top.geo.bus_bits, "base": prog.base, "read_latency": read_latency,
           "write_latency": write_latency, "pattern": avail, "max_cycles": budget}
    run_dir = Path(tempfile.mkdtemp(prefix="net-", dir=build.dir))
    try:
        record = simulate(build, job, run_dir, False, bench="sim.netbench", job_env=JOB_ENV)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    if record["timeout"]:
        raise ToolFailed(f"the network accelerator did not finish within {record['cycles']} cycles")
    memory = b"".join(int(w).to_bytes(bus_bytes, "little") for w in record["memory"])
    mismatches = [0] * len(layers)
    outputs = []
    for i, expected in enumerate(prog.expected):
        for l, region in enumerate(prog.regions[i]):
            mode = StoreMode.BITS if top.kind == "xnor" else StoreMode.BYTES
            want = region_bytes(expected[l], region, mode)
            got = memory[region.addr:region.addr + len(want)]
            mismatches[l] += sum(a != b for a, b in zip(want, got))
        out = read_outputs(top, layers[-1], memory, prog.stores[i])
        mismatches[-1] += int((out != expected[-1]).sum())
        outputs.append(out)
    return ChainRun(outputs=outputs, expected=[e[-1] for e in prog.expected], mismatches=mismatches,
                    cycles=record["cycles"], predicted=predicted, error=record["error"],
                    reads_in_flight=record["reads"], commands=len(prog.commands),
                    image_bytes=len(prog.image.data), sim_seconds=record["seconds"],
                    sim_cpu_seconds=record["cpu_seconds"], wall_seconds=time.perf_counter() - start)
