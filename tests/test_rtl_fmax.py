"""The network accelerator fits the ECP5 device and package (its placement and Fmax are measured
by the README's ``hwsim rtl synth ... --pnr --network`` command, not here: nextpnr's routing of
it took 114 s on one revision and 358 s on the next, too erratic for CI; the top's placement is
``tests/test_rtl_commands.py``'s), and where the requantization multipliers go (xc7 DSP blocks by
default, LUTs with ``lut_only``; ECP5's DSP blocks in that placed top).

Marked ``rtl``: they run Yosys."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from hwsim.accelerator import ArrayConfig, MemoryConfig, RtlConfig, preset
from rtl.emit import generate
from rtl.synth import device_overflow, synthesize

pytestmark = pytest.mark.rtl

#: A 2x2 top with buffers of a few block RAMs: small enough to synthesize in seconds.
SMALL = dict(array=ArrayConfig(rows=2, cols=2), bits=4,
             memory=MemoryConfig(ifmap_sram_kib=0.25, weight_sram_kib=0.5, ofmap_sram_kib=0.25),
             rtl=RtlConfig(max_steps=16))


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory):
    acc = dataclasses.replace(preset("adder"), **SMALL)
    return generate(acc, tmp_path_factory.mktemp("fmax"), modules=("top", "network"), lint=False)


def test_network_accelerator_fits_the_ecp5(small) -> None:
    """The network accelerator's ports (the AXI4 master, ~200 pins at 64 bits) fit the
    LFE5U-85F's 365 I/O, unlike the layer top's streams, and so do its cells: nothing stops its
    placement (:func:`rtl.synth.device_overflow`)."""
    net = synthesize(small.verilog("network"), "adder_network", "ecp5", timeout=600)
    assert 100 < net["io"] < 365
    assert device_overflow(net, "ecp5") is None and net["bram"] > 0 and net["dsp"] > 0


def test_requant_multipliers_in_dsps_unless_lut_only(small, tmp_path: Path) -> None:
    """An adder top's only multipliers are the output stage's (one per column) and the
    descriptor's sizes (rtl.im2col): by default the output stage's are DSP blocks, with
    ``lut_only`` there is no DSP at all. On xc7; ECP5's DSP blocks are checked by
    ``tests/test_rtl_commands.py``'s placed top (the same ``-nodsp`` flag would be tested twice)."""
    dsp = synthesize(small.verilog("top"), "adder_top", "xc7", outdir=tmp_path / "dsp", timeout=300)
    assert dsp["cells"].get("DSP48E1", 0) == dsp["dsp"] > 0
    assert dsp["dsp_sources"]["rtl/requant.py"] >= 2  # at least one per column
    lut = synthesize(small.verilog("top"), "adder_top", "xc7", lut_only=True, outdir=tmp_path / "lut", timeout=300)
    assert lut["dsp"] == 0 and lut["dsp_sources"] == {}
    assert lut["lut"] > dsp["lut"]  # the multipliers went into LUTs
