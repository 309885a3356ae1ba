"""The ``hwsim rtl`` commands: ``generate`` Verilog, ``synth`` it for an FPGA, ``compare`` PE kinds.

The accelerator is resolved exactly as ``hwsim estimate`` resolves it (preset, YAML config, flags),
so the hardware that is costed is the hardware that is emitted. Verilog goes to a build folder;
every file appears only after the whole step succeeded (written atomically from a scratch folder),
and tool failures become one-line :class:`~hwsim.errors.HwsimError`\\ s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from cost_models import PE_KINDS
from cost_models.fpga import TARGETS
from hwsim import cli
from hwsim.accelerator import Accelerator
from hwsim.errors import HwsimError
from hwsim.report import write_atomic

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
        cli.add_accelerator_options(p)
        p.add_argument("-o", "--output", metavar="DIR", required=out_required,
                       help="folder for the Verilog, manifest.json and synthesis products"
                            + ("" if out_required else " (default build/rtl/<pe>_<R>x<C>_<bits>b)"))
        return p

    common("generate", "write the PE, the PE array and the accelerator top as Verilog with a manifest, "
                       "and lint them",
           out_required=True)
    for name, text in (("synth", "generate, then synthesize the PE, the array and the whole top for an FPGA"),
                       ("compare", "synthesize every PE kind and print resources against mac")):
        p = common(name, text, out_required=False)
        p.add_argument("--target", choices=TARGETS, default="xc7", help="FPGA family (default xc7)")
        p.add_argument("--lut-only", action="store_true", help="keep multipliers out of DSP blocks")
        p.add_argument("--json", metavar="F", help="write the resources as JSON")
        if name == "synth":
            p.add_argument("--pnr", action="store_true", help="place and route (ice40, ecp5) for Fmax")


@contextlib.contextmanager
def _tool_errors() -> Iterator[None]:
    """Turn a missing or failing external tool into one line naming the tool and its log."""
    try:
        yield
    except RuntimeError as exc:  # rtl.emit.ToolNotFoundError is one
        raise HwsimError(str(exc).splitlines()[0].rstrip(":")) from None


def _accelerator(args: argparse.Namespace) -> Accelerator:
    acc = cli.resolve_accelerator(args)
    if acc.array.dataflow != "os":
        raise HwsimError(f"the RTL generator builds output-stationary arrays, not dataflow "
                         f"{acc.array.dataflow!r}; use --dataflow os")
    return acc


def _out_dir(args: argparse.Namespace, acc: Accelerator) -> Path:
    """``-o`` or ``build/rtl/<pe>_<R>x<C>_<bits>b``, created."""
    name = f"{acc.pe}_{acc.array.rows}x{acc.array.cols}_{acc.bits}b"
    return _make_dir(Path(args.output) if args.output else Path("build") / "rtl" / name)


def _make_dir(out: Path) -> Path:
    if out.exists() and not out.is_dir():
        raise HwsimError(f"cannot write into {str(out)!r}: it is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HwsimError(f"cannot create folder {str(out)!r}: {exc.strerror}") from None
    return out


def generate(acc: Accelerator, out: Path, *, top: bool = True) -> dict[str, Any]:
    """Emit and lint ``acc`` in a scratch folder, then move the Verilog and ``manifest.json`` into
    ``out`` atomically; return the manifest.

    Modules: the PE, the PE array and (with ``top``) the whole-layer accelerator top
    (:class:`rtl.top.LayerAccelerator`, buffers sized from ``acc.memory``). The manifest holds the
    resolved config, rtl.emit's PE/array facts, the top's buffers, descriptor and parameter
    layouts, ports with their meaning and phases (key ``top``), and the lint result.
    """
    from rtl.emit import LINT_WAIVERS, generate as emit, generate_top, lint

    with tempfile.TemporaryDirectory(dir=out, prefix=".generate.") as scratch, _tool_errors():
        manifest = emit(acc, scratch)
        if top:
            described = generate_top(acc, scratch)
            module = described.pop("top")
            manifest["modules"]["top"] = {"top": module.pop("module"), "verilog": module.pop("verilog"),
                                          "ports": described.pop("ports")}
            described.pop("accelerator")
            manifest["top"] = {**module, **described}
        for module in manifest["modules"].values():
            lint(Path(scratch) / module["verilog"], module["top"])
        manifest["accelerator"] = acc.to_dict()
        manifest["lint"] = {"tool": "verilator --lint-only -Wall", "result": "clean",
                            "waived": LINT_WAIVERS}
        for module in manifest["modules"].values():
            write_atomic(out / module["verilog"], (Path(scratch) / module["verilog"]).read_text())
    write_atomic(out / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return manifest


def _synth_modules(manifest: dict[str, Any], out: Path, target: str, *, lut_only: bool,
                   pnr: bool) -> dict[str, dict[str, Any]]:
    """Synthesize every module of a generated manifest (PE, array[, top]); resources per module."""
    from rtl.synth import synthesize

    results = {}
    with _tool_errors():
        for role, module in manifest["modules"].items():
            r = synthesize(out / module["verilog"], module["top"], target, lut_only=lut_only, pnr=pnr,
                           outdir=out / f"{module['top']}_{target}{'_lut' if lut_only else ''}")
            results[role] = ({key: r.get(key) for key in RESOURCES} | {"yosys": r["yosys"], "dir": r["dir"]}
                             | ({"pnr_skipped": r["pnr_skipped"]} if "pnr_skipped" in r else {}))
    return results


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if isinstance(value, float) else f"{value:,}"


def cmd_generate(args: argparse.Namespace, console: Console) -> int:
    acc = _accelerator(args)
    out = _out_dir(args, acc)
    manifest = generate(acc, out)
    files = ", ".join(m["verilog"] for m in manifest["modules"].values())
    top = manifest["top"]
    console.print(f"{acc.pe} {acc.array.rows}x{acc.array.cols} array, {acc.bits}-bit operands, "
                  f"{top['acc_bits']}-bit accumulators (folds up to {top['max_steps']:,} steps)")
    console.print("buffers: " + ", ".join(f"{name} {b['words']:,} x {b['word_bits']} bits ({b['kib']:.1f} KiB)"
                                          for name, b in top["buffers"].items()))
    console.print(f"wrote {files}, manifest.json to {out}; verilator lint clean; "
                  f"cycles per layer: hwsim estimate --timing rtl")
    return 0


def cmd_synth(args: argparse.Namespace, console: Console) -> int:
    if args.pnr and args.target == "xc7":
        raise HwsimError("--pnr: xc7 has no open-source place and route; use --target ice40 or ecp5 "
                         "for Fmax, or drop --pnr")
    cli.check_output_folder(args.json)
    acc = _accelerator(args)
    out = _out_dir(args, acc)
    manifest = generate(acc, out)
    with console.status(f"synthesizing for {args.target}"):
        results = _synth_modules(manifest, out, args.target, lut_only=args.lut_only, pnr=args.pnr)
    n = acc.num_pes
    table = Table(title=f"{acc.pe} {acc.array.rows}x{acc.array.cols}, {acc.bits}-bit on {args.target}"
                        f"{' (LUT-only)' if args.lut_only else ''}, {results['pe']['yosys']}",
                  header_style="bold")
    for col in ("resource", "one PE", "array", "array / PE", "accelerator top"):
        table.add_column(col, justify="left" if col == "resource" else "right")
    for key in RESOURCES:
        if key == "fmax_mhz" and not args.pnr:
            continue
        pe, arr = results["pe"][key], results["array"][key]
        per_pe = "-" if key == "fmax_mhz" or arr is None else f"{arr / n:.1f}"
        table.add_row(_LABELS[key], _fmt(pe), _fmt(arr), per_pe, _fmt(results["top"][key]))
    console.print(table)
    console.print("accelerator top: array, buffers (memory.*_sram_kib), layer controller and output stage")
    for role, r in results.items():
        if "pnr_skipped" in r:
            console.print(f"no Fmax for the {role}: it {r['pnr_skipped']}")
    if args.json:
        write_atomic(args.json, json.dumps({"accelerator": acc.to_dict(), "target": args.target,
                                            "lut_only": args.lut_only, **results}, indent=2) + "\n")
    return 0


def cmd_compare(args: argparse.Namespace, console: Console) -> int:
    from hwsim.simulate import with_pe

    cli.check_output_folder(args.json)
    base = _accelerator(args)
    out = _out_dir(args, base)
    results: dict[str, dict[str, Any]] = {}
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"synthesizing {len(PE_KINDS)} PE kinds for {args.target}", total=len(PE_KINDS))
        for kind in PE_KINDS:
            progress.update(task, description=f"{kind}: generate and synthesize for {args.target}")
            acc = with_pe(base, kind)
            manifest = generate(acc, _make_dir(out / kind), top=False)
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
        write_atomic(args.json, json.dumps({"accelerator": base.to_dict(), "target": args.target,
                                            "lut_only": args.lut_only, "kinds": results}, indent=2) + "\n")
    return 0


def cmd_rtl(args: argparse.Namespace) -> int:
    """Run ``hwsim rtl <generate|synth|compare>``."""
    console = Console()
    if not console.is_terminal:  # piped or redirected: no wrapping of lines and tables at 80 columns
        console = Console(width=180)
    handler = {"generate": cmd_generate, "synth": cmd_synth, "compare": cmd_compare}[args.rtl]
    return handler(args, console)
