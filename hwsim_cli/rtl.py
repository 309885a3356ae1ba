"""``hwsim rtl generate|synth|compare``: emit the accelerator as Verilog, synthesize it, compare PE kinds.

The accelerator is resolved exactly as ``hwsim estimate`` resolves it (preset, YAML config, flags),
so the hardware that is costed is the hardware that is emitted; :func:`rtl.emit.generate` writes
every file only after the whole step succeeded. Output goes to ``-o`` or to
``rtl/<pe>_<R>x<C>_<bits>b`` under :func:`hwsim.files.build_root`.
"""

from __future__ import annotations

import argparse
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from contract import PE_KINDS
from cost_models.fpga import TARGETS
from hwsim import files
from hwsim.accelerator import Accelerator, with_pe
from hwsim.errors import ConfigError, HwsimError
from hwsim_cli import options

__all__ = ["add_parser", "cmd_rtl"]

#: Resources shown per synthesis, in table and JSON order.
RESOURCES = ("lut", "ff", "carry", "mux", "dsp", "bram", "fmax_mhz")
_LABELS = {"lut": "LUTs", "ff": "FFs", "carry": "carry cells", "mux": "wide muxes", "dsp": "DSPs",
           "bram": "BRAMs", "fmax_mhz": "Fmax (MHz)"}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``rtl generate|synth|compare`` to ``hwsim``'s sub-parsers."""
    rtl = subparsers.add_parser("rtl", help="emit the accelerator as Verilog, synthesize it, compare PE kinds")
    sub = rtl.add_subparsers(dest="rtl", required=True, parser_class=type(rtl))

    def common(name: str, text: str, *, out_required: bool) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=text)
        options.add_accelerator_options(p)
        p.add_argument("-o", "--output", metavar="DIR", required=out_required,
                       help="folder for the Verilog, manifest.json and synthesis products"
                            + ("" if out_required else
                               f" (default rtl/<pe>_<R>x<C>_<bits>b under ${files.BUILD_ENV}, else build)"))
        return p

    common("generate", "write the PE, the PE array and the accelerator top as Verilog with a manifest, "
                       "and lint them",
           out_required=True)
    for name, text in (("synth", "generate, then synthesize the PE, the array and the whole top (and with "
                                 "--network the network accelerator) for an FPGA"),
                       ("compare", "synthesize every PE kind and print resources against mac")):
        p = common(name, text, out_required=False)
        p.add_argument("--target", choices=TARGETS, default="xc7", help="FPGA family (default xc7)")
        p.add_argument("--lut-only", action="store_true", help="keep multipliers out of DSP blocks")
        p.add_argument("--json", metavar="F", help="write the resources as JSON")
        if name == "synth":
            p.add_argument("--pnr", action="store_true",
                           help="place and route (ice40, ecp5) for Fmax: each placed module's Fmax, the top's "
                                "and the network accelerator's as a ratio of the array's, and critical paths")
            p.add_argument("--ooc", action="store_true",
                           help="with --pnr on ecp5: place out of context, as a core inside a larger design "
                                "(no I/O buffers; the ports are not pins at the die's edge)")
            p.add_argument("--sram-kib", type=options.positive_float, metavar="KIB",
                           help="capacity of each per-operand buffer (ifmap, weight, ofmap) in KiB, e.g. 2 "
                                "so that the network accelerator fits an LFE5U-85F (default: the config's, "
                                "else 64)")
            p.add_argument("--jobs", type=_jobs, metavar="N",
                           help="tool runs (Yosys, nextpnr) at a time (default: the machine's cores)")
            p.add_argument("--network", action="store_true",
                           help="also the network accelerator (the top behind the command sequencer, DMA "
                                "engines and AXI4 master, rtl/sequencer.py)")
            p.add_argument("--power", action="store_true",
                           help="the top's power (mW) at the placed Fmax (else --clock-mhz) and energy per "
                                "cycle, from cost_models/data/power/fpga.yaml at the XPE default toggle rate")


def _jobs(text: str) -> int:
    """``--jobs``: a positive integer."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text!r}")
    return value


def _out_dir(args: argparse.Namespace, acc: Accelerator) -> Path:
    """``-o`` or ``<build root>/rtl/<pe>_<R>x<C>_<bits>b``, created."""
    name = f"{acc.pe}_{acc.array.rows}x{acc.array.cols}_{acc.bits}b"
    return _make_dir(Path(args.output) if args.output else files.build_root() / "rtl" / name)


def _make_dir(out: Path) -> Path:
    if out.exists() and not out.is_dir():
        raise HwsimError(f"cannot write into {str(out)!r}: it is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HwsimError(f"cannot create folder {str(out)!r}: {exc.strerror}") from None
    return out


def _synth_modules(manifest: dict[str, Any], out: Path, target: str, *, lut_only: bool,
                   pnr: bool, ooc: bool = False, jobs: int | None = None) -> dict[str, dict[str, Any]]:
    """Synthesize every module of a generated manifest (PE, array[, top]); resources per module
    (with ``io`` port bits, ``dsp_sources`` and, placed, ``critical_path``: rtl.synth).

    The modules' Yosys (and nextpnr) runs are independent: they run side by side, ``jobs`` at a
    time (default: as many as the machine has cores), the largest Verilog first, so the command
    takes about as long as its slowest module instead of the sum of all."""
    from rtl.synth import synthesize

    modules = manifest["modules"]

    def run(role: str) -> dict[str, Any]:
        module = modules[role]
        r = synthesize(out / module["verilog"], module["top"], target, lut_only=lut_only, pnr=pnr, ooc=ooc,
                       outdir=out / f"{module['top']}_{target}{'_lut' if lut_only else ''}")
        return ({key: r.get(key) for key in RESOURCES}
                | {key: r[key] for key in ("io", "memories", "dsp_sources", "seconds", "yosys", "dir")}
                | {key: r[key] for key in ("pnr_skipped", "critical_path", "out_of_context") if key in r})

    largest_first = sorted(modules, key=lambda role: -(out / modules[role]["verilog"]).stat().st_size)
    with ThreadPoolExecutor(max_workers=min(len(modules), jobs or os.cpu_count() or 1)) as pool:
        futures = {role: pool.submit(run, role) for role in largest_first}
        try:
            return {role: futures[role].result() for role in modules}
        except BaseException:
            for future in futures.values():  # the runs not started yet; those under way finish
                future.cancel()
            raise


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if isinstance(value, float) else f"{value:,}"


#: How the synth command says where Yosys put a memory (kinds of rtl.synth.memory_mapping).
_MEMORY_PLACES = {"bram": "in block RAM", "lutram": "in LUT RAM", "logic": "flattened into logic",
                  "rom": "(case-statement ROM) in logic", "other": "in other cells"}


def _memory_line(memories: dict[str, dict[str, Any]]) -> str:
    """E.g. ``act_buf (256), out_buf (32) in block RAM; control.$auto$proc_rom... (case-statement
    ROM) in logic``, with the block RAM cells of each memory."""
    kinds: dict[str, list[str]] = {}
    for name, where in memories.items():
        kinds.setdefault(where["kind"], []).append(name + (f" ({where['blocks']:,})" if "blocks" in where else ""))
    return "; ".join(f"{', '.join(names)} {_MEMORY_PLACES[kind]}" for kind, names in kinds.items())


#: How the Fmax lines name each module of ``hwsim rtl synth``.
_MODULE_NAMES = {"pe": "one PE", "array": "array", "top": "accelerator top", "network": "network accelerator",
                 "array_regs": "array behind registers"}


def _reference(results: dict[str, dict[str, Any]]) -> tuple[str, float] | tuple[None, None]:
    """The array Fmax the top is measured against: the array placed alone, else (its ports
    outnumber the pins) the array behind registers (rtl.emit.BehindRegisters); (None, None)
    when neither was placed."""
    for role in ("array", "array_regs"):
        fmax = results.get(role, {}).get("fmax_mhz")
        if fmax:
            return role, fmax
    return None, None


def fmax_lines(results: dict[str, dict[str, Any]]) -> list[str]:
    """What ``--pnr`` adds below the table: the Fmax of the top and of the network accelerator
    against the array's, the array being the reference (the issue's goal: the whole design at
    >= 80 % of it), e.g. ``accelerator top: Fmax 75.8 MHz = 0.45 x the Fmax of the array
    (169.1 MHz)``, then the critical path of each placed module (:func:`rtl.synth.critical_path`);
    ``, placed out of context`` after the ratio when they were (``--ooc``)."""
    lines = []
    reference, array = _reference(results)
    ooc = ", placed out of context" if any(r.get("out_of_context") for r in results.values()) else ""
    for role in ("top", "network"):
        fmax = results.get(role, {}).get("fmax_mhz")
        if fmax and array:
            lines.append(f"{_MODULE_NAMES[role]}: Fmax {fmax:.1f} MHz = {fmax / array:.2f} x the Fmax of the "
                         f"{_MODULE_NAMES[reference]} ({array:.1f} MHz){ooc}")
    for role, r in results.items():
        path = r.get("critical_path")
        if path:
            through = f" through {', '.join(path['sources'])}" if path["sources"] else ""
            lines.append(f"critical path of the {_MODULE_NAMES.get(role, role)}: {path['from']} -> {path['to']}, "
                         f"{path['levels']} logic levels, {path['delay_ns']:.2f} ns ({path['logic_ns']:.2f} in "
                         f"cells, {path['routing_ns']:.2f} routing){through}")
    return lines


def fmax_ratios(results: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Fmax of the top and the network accelerator over the array's (:func:`_reference`), for
    those placed."""
    _, array = _reference(results)
    return {role: round(results[role]["fmax_mhz"] / array, 3) for role in ("top", "network")
            if array and results.get(role, {}).get("fmax_mhz")}


def _dsp_line(results: dict[str, dict[str, Any]]) -> str | None:
    """``DSPs by source: top rtl/im2col.py 16, rtl/requant.py 16; ...``: where the multipliers
    went (none when no module has a DSP)."""
    parts = [f"{role} {', '.join(f'{src} {n}' for src, n in r['dsp_sources'].items())}"
             for role, r in results.items() if r.get("dsp_sources")]
    return f"DSPs by source: {'; '.join(parts)}" if parts else None


def _time_line(results: dict[str, dict[str, Any]], *, side_by_side: bool = True) -> str:
    """``wall time: pe yosys 4 s (1 s CPU), array yosys 42 s (10 s CPU) + nextpnr 9 s, ...``: the
    wall seconds of each module's tools and Yosys's CPU seconds (the wall time grows with the
    machine's load, the CPU time hardly); ``side_by_side`` says how the modules ran."""
    def tools(seconds: dict[str, float]) -> str:
        yosys = f"yosys {seconds['yosys']:.0f} s" + (f" ({seconds['yosys_cpu']:.0f} s CPU)"
                                                     if "yosys_cpu" in seconds else "")
        return yosys + (f" + nextpnr {seconds['nextpnr']:.0f} s" if "nextpnr" in seconds else "")

    return "wall time: " + ", ".join(f"{role} {tools(r['seconds'])}" for role, r in results.items()) + \
        (" (run side by side)" if side_by_side else " (one at a time)")


def cmd_generate(args: argparse.Namespace, console: Console) -> int:
    from rtl.emit import generate

    acc = options.accelerator(args)
    out = _out_dir(args, acc)
    made = generate(acc, out)
    manifest, geo = made.manifest, made.geometry
    written = ", ".join(m["verilog"] for m in manifest["modules"].values())
    console.print(f"{acc.pe} {geo.rows}x{geo.cols} array, {geo.bits}-bit operands, "
                  f"{geo.acc_bits}-bit accumulators (folds up to {geo.max_steps:,} steps)")
    console.print("buffers: " + ", ".join(f"{name} {b['words']:,} x {b['word_bits']} bits ({b['kib']:.1f} KiB)"
                                          for name, b in manifest["buffers"].items()))
    console.print(f"wrote {written}, manifest.json to {out}; verilator lint clean; "
                  f"cycles per layer: hwsim estimate --timing rtl")
    return 0


def cmd_synth(args: argparse.Namespace, console: Console) -> int:
    from rtl.dsp import dsp_family
    from rtl.emit import array_pins, generate
    from rtl.synth import PNR_CAPACITY, find_tools

    if args.pnr and args.target == "xc7":
        raise ConfigError("--pnr: xc7 has no open-source place and route; use --target ice40 or ecp5 "
                          "for Fmax, or drop --pnr")
    if args.ooc and not (args.pnr and args.target == "ecp5"):
        raise ConfigError("--ooc places out of context with nextpnr-ecp5: add --pnr --target ecp5, or drop --ooc")
    options.check_output_folder(args.json)
    acc = options.accelerator(args)
    find_tools(args.target, pnr=args.pnr)  # a missing tool is reported before the slow steps
    out = _out_dir(args, acc)
    # an array whose ports outnumber the device's pins is also placed behind registers, for the
    # Fmax the top is compared with
    behind = ("array_regs",) if (args.pnr and not args.ooc
                                 and array_pins(acc) > PNR_CAPACITY[args.target]["io"]) else ()
    # ECP5: the products' registers in the DSP blocks, which Yosys does not do itself (rtl.dsp)
    manifest = generate(acc, out, modules=("pe", "array", "top") + (("network",) if args.network else ())
                        + behind, dsp=dsp_family(args.target, lut_only=args.lut_only)).manifest
    with console.status(f"synthesizing for {args.target}"):
        results = _synth_modules(manifest, out, args.target, lut_only=args.lut_only, pnr=args.pnr,
                                 ooc=args.ooc, jobs=args.jobs)
    n = acc.num_pes
    table = Table(title=f"{acc.pe} {acc.array.rows}x{acc.array.cols}, {acc.bits}-bit on {args.target}"
                        f"{' (LUT-only)' if args.lut_only else ''}, {results['pe']['yosys']}",
                  header_style="bold")
    extras = [role for role in ("network", "array_regs") if role in results]
    for col in ("resource", "one PE", "array", "array / PE", "accelerator top") + tuple(
            _MODULE_NAMES[role] for role in extras):
        table.add_column(col, justify="left" if col == "resource" else "right")
    for key in RESOURCES:
        if key == "fmax_mhz" and not args.pnr:
            continue
        pe, arr = results["pe"][key], results["array"][key]
        per_pe = "-" if key == "fmax_mhz" or arr is None else f"{arr / n:.1f}"
        table.add_row(_LABELS[key], _fmt(pe), _fmt(arr), per_pe, _fmt(results["top"][key]),
                      *(_fmt(results[role][key]) for role in extras))
    console.print(table)
    console.print("accelerator top: array, buffers (memory.*_sram_kib), layer controller and output stage"
                  + ("; network accelerator: the top, the command sequencer, two DMA engines and the AXI4 "
                     "master" if args.network else ""))
    for role, r in results.items():
        if r["memories"]:
            console.print(f"{role} memories: {_memory_line(r['memories'])}", markup=False, highlight=False,
                          soft_wrap=True)
    dsps = _dsp_line(results)
    if dsps:
        console.print(dsps, markup=False, highlight=False)
    for role, r in results.items():
        if "pnr_skipped" in r:
            console.print(f"no Fmax for the {role}: it {r['pnr_skipped']}")
    for line in fmax_lines(results):
        console.print(line, markup=False, highlight=False)
    console.print(_time_line(results, side_by_side=args.jobs != 1))
    power = None
    if args.power:
        from hwsim_cli.power import power_table

        freq = results["top"].get("fmax_mhz") or acc.clock_mhz
        power = power_table(results["top"], args.target, freq, console, title="accelerator top", cycles=1000)
    if args.json:
        files.write_atomic(args.json, json.dumps({"accelerator": acc.to_dict(), "target": args.target,
                                                  "lut_only": args.lut_only, **results,
                                                  "fmax_vs_array": fmax_ratios(results), "power": power},
                                                 indent=2) + "\n")
    return 0


def cmd_compare(args: argparse.Namespace, console: Console) -> int:
    from rtl.emit import generate
    from rtl.synth import find_tools

    options.check_output_folder(args.json)
    base = options.accelerator(args)
    find_tools(args.target)
    out = _out_dir(args, base)
    results: dict[str, dict[str, Any]] = {}
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"synthesizing {len(PE_KINDS)} PE kinds for {args.target}", total=len(PE_KINDS))
        for kind in PE_KINDS:
            progress.update(task, description=f"{kind}: generate and synthesize for {args.target}")
            acc = with_pe(base, kind)
            manifest = generate(acc, _make_dir(out / kind), modules=("pe", "array")).manifest
            results[kind] = {"bits": acc.bits, **_synth_modules(manifest, out / kind, args.target,
                                                                lut_only=args.lut_only, pnr=False)}
            progress.advance(task)
    rows, cols = base.array.rows, base.array.cols
    table = Table(title=f"PE kinds on {args.target}{' (LUT-only)' if args.lut_only else ''}, "
                        f"{rows}x{cols} array, {results['mac']['pe']['yosys']}", header_style="bold")
    for col in ("PE", "bits", "PE LUT", "PE FF", "PE DSP", "array LUT", "array FF", "array DSP",
                "LUT vs mac", "FF vs mac"):
        table.add_column(col, justify="left" if col == "PE" else "right")
    mac = results["mac"]["array"]

    def ratio(key: str, r: dict[str, Any]) -> str:
        return f"{r[key] / mac[key]:.2f}x" if mac[key] else "-"

    for kind, r in results.items():
        bits = f"1 x {base.array.lanes}" if kind == "xnor" else str(r["bits"])
        table.add_row(kind, bits, *(_fmt(r[m][k]) for m in ("pe", "array") for k in ("lut", "ff", "dsp")),
                      ratio("lut", r["array"]), ratio("ff", r["array"]))
    console.print(table)
    console.print("ratios are of whole arrays (PEs, skew registers and control) against mac")
    if args.json:
        files.write_atomic(args.json, json.dumps({"accelerator": base.to_dict(), "target": args.target,
                                                  "lut_only": args.lut_only, "kinds": results}, indent=2) + "\n")
    return 0


def cmd_rtl(args: argparse.Namespace) -> int:
    """Run ``hwsim rtl <generate|synth|compare>``."""
    handler = {"generate": cmd_generate, "synth": cmd_synth, "compare": cmd_compare}[args.rtl]
    return handler(args, files.console())
