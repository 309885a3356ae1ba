"""``hwsim report network MODEL``: energy, latency and area of a big network per PE kind and width.

These networks cannot be trained here, so accuracy is not measured: the report quotes the
published top-1 accuracies of the variants that the literature reports, each with its citation
and marked "quoted, not reproduced". Only figures we are sure of are listed; DeepShift's
ImageNet numbers are left out because the versions of its results table disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwsim.errors import HwsimError
from hwsim.reports import plots
from hwsim.reports.render import Block, bullets, figure, heading, para, table, write_bundle
from hwsim.reports.variants import Variant, cost, parse_bits, parse_pes
from models.convert import convert
from models.registry import MODELS, load_model

_ADDERNET = ("Chen et al., AdderNet: Do We Really Need Multiplications in Deep Learning?, "
             "CVPR 2020, ImageNet results table")


@dataclass(frozen=True)
class Published:
    """A top-1 ImageNet accuracy (%) that a paper reports for a network on one PE kind."""

    model: str
    pe: str
    top1: float
    citation: str


PUBLISHED = (
    Published("resnet18", "mac", 69.8, _ADDERNET + " (CNN baseline)"),
    Published("resnet18", "adder", 67.0, _ADDERNET),
    Published("resnet18", "xnor", 51.2, "Rastegari et al., XNOR-Net, ECCV 2016 (ResNet-18, binary "
              "weights and inputs, first and last layers full precision)"),
    Published("resnet50", "mac", 76.2, _ADDERNET + " (CNN baseline)"),
    Published("resnet50", "adder", 74.9, _ADDERNET),
    Published("birealnet18", "xnor", 56.4, "Liu et al., Bi-Real Net, ECCV 2018"),
    Published("ghostnet", "mac", 73.9, "Han et al., GhostNet: More Features from Cheap "
              "Operations, CVPR 2020, Table 7 (GhostNet 1.0x)"),
    Published("mobilenetv2", "mac", 72.0, "Sandler et al., MobileNetV2, CVPR 2018, Table 4 (1.0x)"),
)


@dataclass(frozen=True)
class NetworkReport:
    """Every (PE kind, bits) variant of one registry network, and the quoted accuracies."""

    model: str
    description: str
    variants: list[Variant]
    published: list[Published]


def run(model: str, *, pes: str = "mac,adder,xnor,shift", bits: str | None = None,
        config: str | None = None) -> NetworkReport:
    """Cost ``model`` on every chosen PE kind and width (estimates only, nothing written)."""
    if model not in MODELS:
        raise HwsimError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    kinds = parse_pes(pes)
    widths = parse_bits(bits, kinds)
    net, shape, entry = load_model(model)
    variants = []
    for pe in kinds:
        converted = net if pe == entry.pe else convert(net, pe, input_shape=shape)
        variants.extend(cost(converted, shape, pe, b, entry.name, config) for b in widths[pe])
    published = [p for p in PUBLISHED if p.model == model and p.pe in kinds]
    return NetworkReport(model, entry.description, variants, published)


def _document(result: NetworkReport) -> list[Block]:
    variants = result.variants
    acc = variants[0].report.accelerator
    base = next((v for v in variants if v.pe == "mac" and v.bits == 8), None)
    rows = []
    for v in variants:
        t, split = v.report.totals(), v.report.energy_split_uj()
        rows.append([v.pe, v.bits_label, f"{t['energy_uj']:,.1f} uJ",
                     f"{t['energy_uj'] / base.energy_uj:.2f}x" if base else "-",
                     *(f"{split[k]:,.1f} uJ" for k in ("compute", "onchip", "dram")),
                     f"{t['latency_ms']:,.2f} ms", f"{t['area_mm2']:.3f} mm2"])
    quoted = [[p.pe, f"{p.top1:.1f}%", p.citation] for p in result.published]
    blocks = [
        heading(f"{result.model}: energy, latency and area per datapath"),
        para(f"{result.description}. Estimates from hwsim on a {acc.array.rows}x{acc.array.cols} "
             f"{acc.array.dataflow} array at {acc.clock_mhz:g} MHz, technology `{acc.tech}`; the "
             "first convolution and the classifier stay full-precision MAC (auxiliary array). "
             "Accuracy is not measured here."),
        table(["PE", "bits", "energy / inference", "vs mac 8b", "compute", "on-chip", "DRAM",
               "latency", "area"], rows),
        heading("Published accuracy (quoted, not reproduced)", 2),
    ]
    if quoted:
        blocks += [table(["PE", "ImageNet top-1", "source"], quoted),
                   para("These figures are quoted from the papers, for the papers' own training "
                        "recipes and quantization; hwsim did not reproduce them.")]
    else:
        blocks.append(para("No published accuracy of these variants is quoted here."))
    blocks += [
        bullets(["Energy split: compute = datapath logic; on-chip = SRAM and PE registers; "
                 "DRAM = every bit moved off chip. Leakage is not modelled."]),
        heading("Figures", 2),
        figure("layer_energy.png", plots.layer_energy(variants), "Energy per inference split by layer."),
        figure("energy_split.png", plots.energy_split(variants),
               "Energy per inference split into compute, on-chip memory and DRAM."),
    ]
    return blocks


def _results(result: NetworkReport) -> dict[str, Any]:
    return {"model": result.model,
            "published": [{"pe": p.pe, "top1": p.top1, "citation": p.citation,
                           "status": "quoted, not reproduced"} for p in result.published],
            "variants": [v.to_dict() for v in result.variants]}


def write(result: NetworkReport, out_dir: Path) -> list[Path]:
    """Render and write the report files of ``result`` into ``out_dir``."""
    return write_bundle(out_dir, f"{result.model} per datapath", _document(result),
                        _results(result), [v.row() for v in result.variants])
