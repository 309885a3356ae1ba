"""``hwsim report energy-accuracy``: what each datapath costs and what it keeps.

For every PE kind the same small network is trained on real data (:mod:`models.train`, cached),
quantized at each bit width by each of the kind's schemes (:data:`models.intnet.SCHEMES`:
``adder-shared`` vs ``adder-grouped``, signed vs unsigned ReLU wires, ...; optionally after a
short quantization-aware fine-tune, :mod:`models.qat`) and scored twice on the held-out test split -- with the float forward
and with the whole-network integer reference forward (:mod:`models.intnet`, built on
:mod:`models.intref`), so the quantization loss is visible -- and costed with hwsim on the chosen
accelerator (:mod:`hwsim.reports.variants`). The result is a Markdown and an HTML report with
plots, and the same numbers as JSON and CSV.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn

from contract import layer_bits as aux_bits
from hwsim.errors import HwsimError
from hwsim.parallel import make_backend
from hwsim.reports import plots
from hwsim.reports.render import Block, bullets, figure, heading, para, table, write_bundle
from hwsim.reports.variants import (Variant, accelerator_for, cost, mark_pareto, parse_bits,
                                    parse_pes)
from models import intnet
from models.calibrate import CALIBRATIONS
from models.data import Split, load_data
from models.networks.digits import digits_cnn
from models.qat import finetune
from models.train import TrainConfig, accuracy, train_cached

#: Networks small enough to train here, by registry name: factory(num_classes) -> module.
TRAINABLE = {"digits-cnn": digits_cnn}
#: Training images used to calibrate the integer ranges (the first ones of the training split).
CALIB_IMAGES = 512
#: Calibration of the integer ranges unless chosen (the best at 4 bits on digits, README).
DEFAULT_CALIBRATION = "mse"
#: Groups of the ``adder-grouped`` scheme unless chosen.
DEFAULT_GROUPS = 4


@dataclass(frozen=True)
class Quantization:
    """How every variant is quantized: the calibration method (and percentile), the groups of
    the grouped adder, and the epochs of the quantization-aware fine-tune (0: none)."""

    calibration: str = DEFAULT_CALIBRATION
    percentile: float = 99.99
    groups: int = DEFAULT_GROUPS
    qat_epochs: int = 0

    def scheme(self, name: str) -> intnet.Scheme:
        """The :class:`models.intnet.Scheme` of the scheme called ``name`` with these choices."""
        scheme = intnet.SCHEMES[name][1]
        return dataclasses.replace(scheme, method=self.calibration, percentile=self.percentile,
                                   adder_groups=self.groups if scheme.adder_groups else 0)


def parse_schemes(text: str | None, pes: tuple[str, ...]) -> tuple[str, ...]:
    """``--schemes``: names of :data:`models.intnet.SCHEMES` of the chosen PE kinds (None: all)."""
    known = tuple(n for n, (pe, _) in intnet.SCHEMES.items() if pe in pes)
    if text is None:
        return known
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    bad = [n for n in names if n not in known]
    if bad or not names:
        raise HwsimError(f"unknown scheme {bad[0] if bad else text!r} for --pe {','.join(pes)}; "
                         f"choose from {', '.join(known)}")
    return names


@dataclass(frozen=True)
class EnergyAccuracy:
    """The outcome of one run: the variants (with Pareto flags) and how they were obtained."""

    model: str
    data: Split
    config: TrainConfig
    variants: list[Variant]
    quantization: Quantization = field(default_factory=Quantization)
    cached: dict[str, bool] = field(default_factory=dict)
    train_seconds: dict[str, float] = field(default_factory=dict)
    checkpoint: str | None = None


def _load_checkpoint(path: str, base: nn.Module, model: str) -> dict[str, torch.Tensor]:
    """A state_dict that fits ``base``, or a HwsimError naming the mismatch."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise HwsimError(f"checkpoint {path!r} not found; check the path") from None
    except Exception as exc:  # torch raises many types for files that are not checkpoints
        raise HwsimError(f"cannot read checkpoint {path!r} ({type(exc).__name__}); save it with "
                         "torch.save(model.state_dict(), path)") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise HwsimError(f"checkpoint {path!r} is not a state_dict; save it with "
                         "torch.save(model.state_dict(), path)")
    try:
        base.load_state_dict(state)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split("\n\t")[1:2]).strip() or str(exc).splitlines()[0]
        raise HwsimError(f"checkpoint {path!r} does not fit {model} ({detail}); give the "
                         f"state_dict of the same architecture") from None
    return state


def _base_network(model: str, data: Split, seed: int) -> nn.Module:
    """The untrained float network for ``data``'s classes, initialised from ``seed``."""
    if model not in TRAINABLE:
        raise HwsimError(f"model {model!r} cannot be trained here; choose one of "
                         f"{', '.join(TRAINABLE)}, or use `hwsim report network {model}` for "
                         "estimates with published accuracies")
    torch.manual_seed(seed)
    net = TRAINABLE[model](num_classes=len(data.classes))
    first = next(m for m in net.modules() if isinstance(m, nn.Conv2d))
    channels = data.x_train.shape[1]
    if channels != first.in_channels:
        raise HwsimError(f"data {data.name!r} has {channels}-channel images but {model} takes "
                         f"{first.in_channels}-channel images")
    return net


def run(*, model: str = "digits-cnn", pes: str = "mac,adder,xnor,shift", bits: str | None = None,
        data: str | None = None, checkpoint: str | None = None, config: str | None = None,
        epochs: int = TrainConfig.epochs, seed: int = TrainConfig.seed,
        cache_dir: Path | None = Path("build/cache"), console: Console | None = None,
        workers: int = 1, backend: str = "local", schemes: str | None = None,
        quantization: Quantization = Quantization()) -> EnergyAccuracy:
    """Train, quantize, evaluate and cost every (PE kind, bits) variant; nothing is written.

    Arguments are the command line's; ``cache_dir`` None trains afresh. Each PE kind is one task
    of the backend (:func:`hwsim.parallel.make_backend`: ``workers`` local processes, 1 in this
    process, or Ray); training is seeded and single-threaded, so every backend gives the same
    variants. Bad input raises HwsimError with a one-line message.
    """
    kinds = parse_pes(pes)
    widths = parse_bits(bits, kinds)
    if epochs < 0:
        raise HwsimError(f"--epochs must be 0 or more, not {epochs}")
    names = parse_schemes(schemes, kinds)
    quant = quantization
    if quant.calibration not in CALIBRATIONS or not 50 <= quant.percentile <= 100:
        raise HwsimError(f"--calibration must be one of {', '.join(CALIBRATIONS)} and --percentile "
                         f"in 50..100, not {quant.calibration!r} and {quant.percentile!r}")
    if quant.groups < 1 or quant.qat_epochs < 0:
        raise HwsimError(f"--groups must be 1 or more and --qat-epochs 0 or more, not "
                         f"{quant.groups} and {quant.qat_epochs}")
    try:
        split = load_data(data)
    except ValueError as exc:
        raise HwsimError(str(exc)) from None
    base = _base_network(model, split, seed)
    init = _load_checkpoint(checkpoint, base, model) if checkpoint else None
    if config is not None:  # read it now, so a bad file fails before the training
        accelerator_for(kinds[0], widths[kinds[0]][0], config)
    train_config = TrainConfig(epochs=epochs, seed=seed)
    jobs = [_KindJob(pe, widths[pe], model, base, split, train_config, cache_dir, init, config,
                     tuple(n for n in names if intnet.SCHEMES[n][0] == pe), quant) for pe in kinds]
    done: dict[str, list[Variant]] = {}
    cached: dict[str, bool] = {}
    seconds: dict[str, float] = {}
    console = console or Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[status]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress, \
            make_backend(backend, workers) as pool:
        tasks = {pe: progress.add_task(f"train {pe:5s}", total=max(epochs, 1), status="") for pe in kinds}

        def on_epoch(pe: str, epoch: int, loss: float) -> None:
            progress.update(tasks[pe], completed=epoch, status=f"loss {loss:.3f}")

        # training progress per epoch when the kinds run here; per kind when they run in workers
        task_fn = functools.partial(_kind_variants, on_epoch=on_epoch) if pool.in_process else _kind_variants
        for i, (made, from_cache, secs) in pool.map(task_fn, jobs):
            pe = kinds[i]
            done[pe], cached[pe], seconds[pe] = made, from_cache, secs
            progress.update(tasks[pe], completed=max(epochs, 1), status=(
                f"{'cached, ' if from_cache else ''}float {made[0].float_accuracy:.1%}, integer "
                + ", ".join(f"{v.label} {v.int_accuracy:.1%}" for v in made)))
    variants = [v for pe in kinds for v in done[pe]]
    return EnergyAccuracy(model, split, train_config, mark_pareto(variants), quant, cached,
                          seconds, checkpoint)


@dataclass(frozen=True)
class _KindJob:
    """What one backend task needs to train, quantize, evaluate and cost one PE kind's variants."""

    pe: str
    widths: tuple[int, ...]
    model: str
    base: nn.Module
    split: Split
    config: TrainConfig
    cache_dir: Path | None
    init: dict[str, torch.Tensor] | None
    accel_config: str | None
    schemes: tuple[str, ...]
    quant: Quantization


def _kind_variants(job: _KindJob, on_epoch: Callable[[str, int, float], None] | None = None,
                   ) -> tuple[list[Variant], bool, float]:
    """The variants of ``job.pe`` at each width, whether its training came from the cache, and the
    training's seconds (a backend task: module level, so that it pickles)."""
    start = time.perf_counter()
    net, cached = train_cached(job.base, job.pe, job.split, job.config, job.cache_dir, job.init,
                               progress=None if on_epoch is None else functools.partial(on_epoch, job.pe))
    seconds = time.perf_counter() - start
    split = job.split
    float_acc = accuracy(net, split.x_test, split.y_test)
    calib = split.x_train[:CALIB_IMAGES]
    variants = []
    for name in job.schemes:
        scheme = job.quant.scheme(name)
        for b in job.widths:
            layer_bits = aux_bits(job.pe, b)
            tuned = net if not job.quant.qat_epochs or job.pe == "xnor" else finetune(
                net, job.pe, split, calib, bits=layer_bits, scheme=scheme,
                epochs=job.quant.qat_epochs, seed=job.config.seed)
            int_net = intnet.build(tuned, calib, bits=layer_bits, scheme=scheme)
            # the hardware aligns only as far as the clustered groups need
            align = max((int(q.align.max()) for q in int_net.layers if q.align is not None),
                        default=0)
            variant = cost(net, split.input_shape, job.pe, b, job.model, job.accel_config,
                           max_align=align)
            variants.append(Variant(job.pe, b, layer_bits, variant.report, float_acc,
                                    int_net.accuracy(split.x_test, split.y_test), scheme=name,
                                    groups=max((len(set(q.align.tolist())) for q in int_net.layers
                                                if q.align is not None), default=0)))
    return variants, cached, seconds


def _fmt_energy(uj: float) -> str:
    return f"{uj * 1e3:,.1f} nJ" if uj < 1 else f"{uj:,.2f} uJ"


def _results(result: EnergyAccuracy) -> dict[str, Any]:
    split = result.data
    return {
        "model": result.model,
        "data": {"name": split.name, "train_images": len(split.y_train),
                 "test_images": len(split.y_test), "classes": list(split.classes),
                 "input_shape": list(split.input_shape), "sha256": split.digest},
        "training": {"epochs": result.config.epochs, "seed": result.config.seed,
                     "checkpoint": result.checkpoint, "cached": result.cached,
                     "seconds": result.train_seconds},
        "quantization": dataclasses.asdict(result.quantization),
        "variants": [v.to_dict() for v in result.variants],
    }


def _document(result: EnergyAccuracy) -> list[Block]:
    split, variants = result.data, result.variants
    acc = variants[0].report.accelerator
    mac8 = next((v for v in variants if v.pe == "mac" and v.bits == 8), None)
    header = ["PE", "bits", "float acc.", "integer acc.", "quant. loss", "energy / inference",
              "compute", "on-chip", "DRAM", "latency", "area", "Pareto"]
    if mac8 is not None:
        header.insert(6, "vs mac 8b")
    rows = []
    for v in variants:
        t, split_uj = v.report.totals(), v.report.energy_split_uj()
        row = [v.scheme or v.pe, v.bits_label, f"{v.float_accuracy:.2%}", f"{v.int_accuracy:.2%}",
               f"{round(100 * (v.float_accuracy - v.int_accuracy), 2) + 0.0:+.2f} pt", _fmt_energy(v.energy_uj),
               *(_fmt_energy(split_uj[k]) for k in ("compute", "onchip", "dram")),
               f"{t['latency_ms'] * 1e3:,.1f} us", f"{t['area_mm2']:.3f} mm2",
               "yes" if v.pareto else ""]
        if mac8 is not None:
            row.insert(6, f"{v.energy_uj / mac8.energy_uj:.2f}x")
        rows.append(row)
    source = (f"checkpoint `{result.checkpoint}`, fine-tuned {result.config.epochs} epochs"
              if result.checkpoint else f"trained from scratch, {result.config.epochs} epochs")
    return [
        heading(f"Energy and accuracy of {result.model} per datapath"),
        para(f"Data: **{split.name}**, {len(split.y_train)} training and {len(split.y_test)} "
             f"held-out test images of shape {'x'.join(map(str, split.input_shape[1:]))}, "
             f"{len(split.classes)} classes (fixed stratified split). Each PE kind's network is "
             f"{source} with seed {result.config.seed}; the first convolution and the classifier "
             "stay full-precision MAC, as in the AdderNet, BNN and DeepShift papers."),
        para(f"Hardware: {acc.array.rows}x{acc.array.cols} PE array, "
             f"{acc.array.dataflow} dataflow, {acc.clock_mhz:g} MHz, technology `{acc.tech}`, "
             f"SRAM {acc.memory.ifmap_sram_kib:g}/{acc.memory.weight_sram_kib:g}/"
             f"{acc.memory.ofmap_sram_kib:g} KiB (ifmap/weight/ofmap); the main array is of the "
             "variant's PE kind, the full-precision layers run on an auxiliary MAC array."),
        table(header, rows),
        bullets([
            "**float acc.**: the trained network's float forward; **integer acc.**: the "
            "whole-network integer reference forward (`models/intnet.py` over `models/intref.py`, "
            "the arithmetic the RTL is held to bit for bit), BN folded, calibrated on "
            f"{min(CALIB_IMAGES, len(split.y_train))} training images.",
            "Quantization per scheme: per-channel weights (mac), one scale shared by "
            "activations and weights (adder-shared), AdderNet redistribution -- clustered groups "
            "on power-of-two-aligned scales, lossless weight clamp (adder-grouped, at most "
            f"{result.quantization.groups} groups; the PE aligns x to each weight's group; "
            + _groups_used(variants) + "), "
            "exact power-of-two weights (shift; -pow2: power-of-two activation scales), sign bits "
            "with BN as a threshold (xnor; its full-precision layers at 8 bits, written "
            "`1b/8b`); -unsigned and adder-grouped: ReLU wires on all 2^b levels (offset); "
            f"ranges by {result.quantization.calibration} calibration"
            + (f", after a {result.quantization.qat_epochs}-epoch quantization-aware fine-tune"
               if result.quantization.qat_epochs else ", post-training") + ".",
            "Energy, latency and area from hwsim (`hwsim estimate` on the same network and "
            "accelerator gives the same figures, leakage included). Pareto: no other "
            "variant has lower-or-equal energy and higher-or-equal integer accuracy.",
        ]),
        heading("Figures", 2),
        figure("accuracy_energy.png", plots.accuracy_energy(variants),
               "Integer accuracy (filled) and float accuracy (hollow) vs energy per inference; "
               "dashed: Pareto front."),
        figure("layer_energy.png", plots.layer_energy(variants),
               "Energy per inference split by layer."),
        figure("energy_split.png", plots.energy_split(variants),
               "Energy per inference split into compute, on-chip memory and DRAM."),
    ]


def _groups_used(variants: list[Variant]) -> str:
    """How many group scales the adder-grouped variants' layers used, at most, per width."""
    used = {v.bits: v.groups for v in variants if v.groups}
    if not used:
        return "no grouped variant here"
    return "group scales used: " + ", ".join(f"{b}b {g}" for b, g in sorted(used.items())) + \
        " -- the hardware is built and costed for the alignments used"


def write(result: EnergyAccuracy, out_dir: Path) -> list[Path]:
    """Render and write the report files of ``result`` into ``out_dir``."""
    return write_bundle(out_dir, f"Energy and accuracy of {result.model}", _document(result),
                        _results(result), [v.row() for v in result.variants])
