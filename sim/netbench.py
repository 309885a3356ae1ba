"""The cocotb bench of the network accelerator: hands a memory image to the AXI harness, runs it.

The host (:mod:`sim.netcosim`) writes a job file named by :data:`JOB_ENV`: the memory image
(bus words), the command list's address, the memory's read and write latency and its
availability pattern, a cycle budget and the ``output`` path. :func:`write_job` turns it into the
harness's files (``sim/hdl/axi_harness.sv``), the test raises ``start`` and sleeps until
``done``; the output record (JSON) holds the memory after the run, the cycles from start to
``o_done``, ``timeout``, ``error`` (the accelerator's ``o_error``), ``reads`` (the most read
bursts in flight at once), the wall and CPU seconds.
Imported by cocotb inside the simulator: cocotb and the standard library only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cocotb

from sim.bench import drive

#: Environment variable holding the path of the job file.
JOB_ENV = "HWSIM_NETWORK_JOB"


def write_job(job: dict[str, Any], folder: Path) -> None:
    """The harness's input files for ``job`` in ``folder``."""
    words, pattern = job["memory"], job["pattern"]
    (folder / "job.txt").write_text(" ".join(map(str, [
        job["max_cycles"], job["base"], job["read_latency"], job["write_latency"], len(words),
        len(pattern), *pattern])))
    digits = job["bus_bits"] // 4
    (folder / "mem.hex").write_text("".join(f"{w:0{digits}x}\n" for w in words))


def read_record(folder: Path, seconds: float, cpu_seconds: float) -> dict[str, Any]:
    """The output record from the harness's files in ``folder``."""
    words = [int(line, 16) for line in (folder / "mem_out.hex").read_text().split()
             if not line.startswith("//")]
    _, cycles, timeout, error, reads = (folder / "records.txt").read_text().split()
    return {"memory": words, "cycles": int(cycles), "timeout": bool(int(timeout)),
            "error": bool(int(error)), "reads": int(reads), "seconds": seconds, "cpu_seconds": cpu_seconds}


@cocotb.test()
async def run_job(dut: Any) -> None:
    """Run the job named by :data:`JOB_ENV` on the harness and write its output record."""
    await drive(dut, JOB_ENV, write_job, lambda job, folder, seconds, cpu: read_record(folder, seconds, cpu))
