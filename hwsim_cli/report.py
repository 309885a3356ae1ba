"""The ``hwsim report`` command line: ``energy-accuracy``, ``network`` and ``fpga-compare``.

:func:`add_parser` adds the ``report`` command to the ``hwsim`` sub-parsers; :func:`cmd_report`
runs it. Every output is written only after the whole run succeeded.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from contract import PE_KINDS
from hwsim import files
from hwsim.parallel import BACKENDS
from hwsim_cli import fpga_compare, options


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``report energy-accuracy`` and ``report network`` to ``hwsim``'s sub-parsers."""
    report = subparsers.add_parser("report", help="energy-accuracy and per-network reports (md, html, json, csv, png)")
    kinds = report.add_subparsers(dest="report", required=True, parser_class=type(report))
    pe_help = f"comma-separated PE kinds (default {','.join(PE_KINDS)})"
    bits_help = ("comma-separated bit widths: xnor takes 1, mac/adder/shift the values in 2..16 "
                 "(default: 1 for xnor, 4,8,16 for the others)")

    ea = kinds.add_parser("energy-accuracy", help="train, quantize, evaluate and cost a small "
                                                  "network per PE kind")
    ea.add_argument("--model", default="digits-cnn", help="network to train (default digits-cnn)")
    ea.add_argument("--pe", default="mac,adder,xnor,shift", help=pe_help)
    ea.add_argument("--bits", help=bits_help)
    ea.add_argument("--data", metavar="PATH", help="an .npz with arrays x (N,H,W or N,C,H,W) and y "
                    "(N,), or a folder of class subfolders of images (default: scikit-learn digits)")
    ea.add_argument("--checkpoint", metavar="PATH", help="state_dict of the float network to start "
                    "every variant from (fine-tuned for --epochs; 0 evaluates it as it is)")
    ea.add_argument("--config", metavar="arch.yaml", help="accelerator YAML (a diff on each PE preset)")
    ea.add_argument("--epochs", type=int, default=30, help="training epochs per PE kind (default 30)")
    ea.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    ea.add_argument("--cache-dir", metavar="DIR",
                    help=f"trained-weight cache (default cache/ under ${files.BUILD_ENV}, else build; "
                         "'none' disables it)")
    ea.add_argument("--workers", type=options.positive_int, default=1, metavar="N",
                    help="PE kinds trained at once: local processes or Ray CPUs (default 1, in this process)")
    ea.add_argument("--backend", choices=BACKENDS, default="local",
                    help="local processes (default) or ray (the cluster at $RAY_ADDRESS, else a local Ray)")
    ea.add_argument("--schemes", metavar="LIST", help="quantization schemes to compare, e.g. "
                    "adder-shared,adder-grouped (default: every scheme of the chosen PE kinds: mac, "
                    "mac-unsigned, adder-shared, adder-grouped, xnor, shift, shift-unsigned, shift-pow2)")
    ea.add_argument("--calibration", default="mse", metavar="METHOD",
                    help="range calibration: max, percentile or mse (default mse)")
    ea.add_argument("--percentile", type=float, default=99.99,
                    help="percentile of |x| for --calibration percentile (default 99.99)")
    ea.add_argument("--groups", type=int, default=4, metavar="N",
                    help="most weight groups of adder-grouped (default 4)")
    ea.add_argument("--qat-epochs", type=int, default=0, metavar="N",
                    help="quantization-aware fine-tune epochs per variant before quantizing (default 0: "
                         "post-training quantization only)")
    ea.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the report files")

    net = kinds.add_parser("network", help="energy, latency and area per PE kind and width of a "
                                           "registry network, with published accuracies")
    net.add_argument("model", help="registry name, e.g. resnet18 (see `hwsim models`)")
    net.add_argument("--pe", default=",".join(PE_KINDS), help=pe_help)
    net.add_argument("--bits", help=bits_help)
    net.add_argument("--config", metavar="arch.yaml", help="accelerator YAML (a diff on each PE preset)")
    net.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the report files")
    fpga_compare.add_parser(kinds)
    return report


def cmd_report(args: argparse.Namespace) -> int:
    """Run ``hwsim report ...``; print where the files went."""
    from hwsim.reports import energy_accuracy, network
    from hwsim.reports.render import check_out_dir

    out_dir = Path(args.output)
    check_out_dir(out_dir)
    if args.report == "energy-accuracy":
        result = energy_accuracy.run(
            model=args.model, pes=args.pe, bits=args.bits, data=args.data,
            checkpoint=args.checkpoint, config=args.config, epochs=args.epochs, seed=args.seed,
            cache_dir=options.cache_dir(args.cache_dir), workers=args.workers, backend=args.backend,
            schemes=args.schemes, quantization=energy_accuracy.Quantization(
                args.calibration, args.percentile, args.groups, args.qat_epochs))
        written = energy_accuracy.write(result, out_dir)
    elif args.report == "fpga-compare":
        written = fpga_compare.run(args)
    else:
        written = network.write(network.run(args.model, pes=args.pe, bits=args.bits,
                                            config=args.config), out_dir)
    files.console().print(f"wrote {len(written)} files to {out_dir}: "
                    + ", ".join(p.name for p in written))
    return 0
