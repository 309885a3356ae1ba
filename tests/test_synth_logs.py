"""rtl.synth without the tools: its Yosys scripts, its readings of Yosys logs and netlists (where
each memory went, block RAM cells per memory, time per pass) and its tool timeout."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from rtl.synth import count_blocks, last_pass, memory_mapping, pass_times, run_tool, yosys_script
from rtl.tools import ToolFailed

#: Lines as synth_ecp5 (flattened), synth_xilinx (hierarchy kept) and synth_ice40 write them.
LIBMAP_LOG = r"""
2.26. Executing MEMORY_LIBMAP pass (mapping memories to cells).
using FF mapping for memory adder_top.$flatten\control.$auto$proc_rom.cc:155:do_switch$5916
mapping memory adder_top.act_buf via $__ECP5_DP16KD_
mapping memory adder_top.psum_buf via $__ECP5_PDPW16KD_
mapping memory adder_top.fifo via $__TRELLIS_DPR16X4_
mapping memory adder_top.store.out via $__XILINX_BLOCKRAM_SDP_
mapping memory adder_top.lut via $__XILINX_LUTRAM_SP_
mapping memory other.mem via $__ICE40_RAM4K_
using FF mapping for memory adder_top.control.$auto$proc_rom.cc:155:do_switch$6787
mapping memory adder_top.odd via $__VENDOR_THING_
using FF mapping for memory adder_top.act_buf_copy
"""


def test_yosys_script_runs_synth_without_autoname_on_lattice_targets() -> None:
    ecp5 = yosys_script("t.v", "t", "ecp5", lut_only=False).splitlines()
    assert ecp5 == ["read_verilog t.v", "synth_ecp5 -top t -run :check", "hierarchy -check", "check -noinit",
                    "blackbox =A:whitebox", "tee -q -o stat.json stat -json", "write_json netlist.json"]
    assert yosys_script("t.v", "t", "ice40", lut_only=False).splitlines()[1] == "synth_ice40 -top t -dsp -run :check"
    assert yosys_script("t.v", "t", "ecp5", lut_only=True).splitlines()[1] == "synth_ecp5 -top t -nodsp -run :check"
    # synth_xilinx has no autoname: it runs whole
    assert yosys_script("t.v", "t", "xc7", lut_only=True).splitlines() == [
        "read_verilog t.v", "synth_xilinx -family xc7 -top t -nodsp", "tee -q -o stat.json stat -json",
        "write_json netlist.json"]


def test_memory_mapping_names_each_memory_and_where_it_went() -> None:
    assert memory_mapping(LIBMAP_LOG, "adder_top") == {
        "$flatten\\control.$auto$proc_rom.cc:155:do_switch$5916": {"kind": "rom", "cell": ""},
        "act_buf": {"kind": "bram", "cell": "$__ECP5_DP16KD_"},
        "psum_buf": {"kind": "bram", "cell": "$__ECP5_PDPW16KD_"},
        "fifo": {"kind": "lutram", "cell": "$__TRELLIS_DPR16X4_"},
        "store.out": {"kind": "bram", "cell": "$__XILINX_BLOCKRAM_SDP_"},
        "lut": {"kind": "lutram", "cell": "$__XILINX_LUTRAM_SP_"},
        "other.mem": {"kind": "bram", "cell": "$__ICE40_RAM4K_"},  # not below the top: full name
        "control.$auto$proc_rom.cc:155:do_switch$6787": {"kind": "rom", "cell": ""},
        "act_buf_copy": {"kind": "logic", "cell": ""},
        "odd": {"kind": "other", "cell": "$__VENDOR_THING_"},
    }
    assert memory_mapping("2.26. Executing MEMORY_LIBMAP pass (mapping memories to cells).\n", "t") == {}


def test_count_blocks_counts_each_memorys_block_ram_cells() -> None:
    netlist = {"modules": {
        "t": {"cells": {"act_buf.0.0": {"type": "DP16KD"}, "act_buf.7.1": {"type": "DP16KD"},
                        "act_buffer.0.0": {"type": "DP16KD"},  # another memory's, by its name
                        "act_buf.mux": {"type": "LUT4"}, "weight_buf.0.0": {"type": "DP16KD"}}},
        "t.store": {"cells": {"out.0.0.genblk1.lower": {"type": "DP16KD"},
                              "out.0.0.genblk1.upper": {"type": "DP16KD"}}},
        "other": {"cells": {"act_buf.0.0": {"type": "DP16KD"}}},  # not below the top
    }}
    memories = {"act_buf": {"kind": "bram", "cell": "$__ECP5_DP16KD_"},
                "weight_buf": {"kind": "bram", "cell": "$__ECP5_DP16KD_"},
                "store.out": {"kind": "bram", "cell": "$__ECP5_DP16KD_"},
                "rom": {"kind": "rom", "cell": ""}}
    assert count_blocks(netlist, memories, "t", "ecp5") == {"act_buf": 2, "weight_buf": 1, "store.out": 2}
    # an xc7 netlist counts RAMB18E1/RAMB36E1, not ECP5's cells
    assert count_blocks(netlist, memories, "t", "xc7") == {"act_buf": 0, "weight_buf": 0, "store.out": 0}


def test_last_pass_is_where_a_run_died() -> None:
    log = ("2.24.10. Executing MEMORY_COLLECT pass (generating $mem cells).\n\n"
           "2.25. Executing OPT_CLEAN pass (remove unused cells and wires).\n"
           "Finding unused cells or wires in module \\adder_top..\n\n"
           "2.26. Executing MEMORY_LIBMAP pass (mapping memories to cells).\n")
    assert last_pass(log) == "MEMORY_LIBMAP" and last_pass("no passes\n") is None


def test_run_tool_names_an_out_of_memory_abort(tmp_path: Path) -> None:
    """The 16x16 tops with the preset buffers ended so in Yosys 0.50 (yowasp): the gist is the
    bad_alloc, not the WebAssembly trap printed after it."""
    script = ("import sys; print('libc++abi: bad_alloc was thrown in -fno-exceptions mode'); "
              "print('    wasm trap: wasm `unreachable` instruction executed'); sys.exit(1)")
    with pytest.raises(ToolFailed, match=r"^yosys failed \(log: .*\): out of memory \(libc\+\+abi: bad_alloc was "
                                         r"thrown in -fno-exceptions mode\)$"):
        run_tool([sys.executable, "-c", script], tmp_path / "y.out", "yosys")


def test_pass_times_reads_the_detailed_table_slowest_first() -> None:
    log = ("End of script. Logfile hash: e4a0c29f3e, CPU: user 0.49s system 0.00s\n"
           "Yosys 0.50 (git sha1 b5170e139, ccache clang 18.1.3 -O3 -flto -flto)\n"
           "Time spent:\n"
           "   23%     1 calls   17.250 sec abc9_exe\n"
           "   73%    20 calls   52.000 sec read_verilog\n"
           "   15%    30 calls   11.100 sec opt_clean\n"
           "    0%     1 calls    0.000 sec wbflip\n")
    assert pass_times(log) == [("read_verilog", 20, 52.0), ("abc9_exe", 1, 17.25), ("opt_clean", 30, 11.1),
                               ("wbflip", 1, 0.0)]
    # without -d Yosys writes a one-line summary, which is not read
    assert pass_times("Time spent: 23% 1x abc9_exe (17 sec), 15% 30x opt_clean (11 sec), ...\n") == []


def test_run_tool_kills_a_run_past_its_timeout(tmp_path: Path) -> None:
    log = tmp_path / "slow.out"
    code = "import sys, time; print('started', flush=True); time.sleep(30)"
    start = time.monotonic()
    with pytest.raises(ToolFailed, match=r"^sleeper did not finish in 0\.5 s \(killed; log: .*slow\.out\)$"):
        run_tool([sys.executable, "-c", code], log, "sleeper", timeout=0.5)
    assert log.read_text() == "started\n" and time.monotonic() - start < 10


def test_run_tool_returns_the_tools_cpu_time_not_the_wall_time(tmp_path: Path) -> None:
    log = tmp_path / "out.txt"
    busy = "import time; t = time.process_time(); exec('while time.process_time() - t < 0.4: pass'); print('busy')"
    assert run_tool([sys.executable, "-c", busy], log, "busy", timeout=60) >= 0.4 and log.read_text() == "busy\n"
    assert run_tool([sys.executable, "-c", "import time; time.sleep(1)"], log, "idle") < 0.5
