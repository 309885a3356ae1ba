"""One network variant per PE kind and bit width, costed by hwsim -- shared by both reports.

A variant's accelerator is the PE kind's preset, then the user's YAML (a diff on it), then the
variant's ``pe`` and ``bits``. Its workload is extracted the way ``hwsim estimate`` does it: the
layers of the PE kind at ``bits``, the other (first/last, full-precision) layers at ``bits`` too,
except for ``xnor`` where they run at 8 bits. So a variant costs exactly what
``hwsim estimate MODEL --pe PE --bits BITS [--config arch.yaml]`` reports.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from contract import HARDWARE_BITS, PE_KINDS, layer_bits as aux_bits
from hwsim import accelerator as accel
from hwsim.api import resolve_accelerator
from hwsim.errors import HwsimError
from hwsim.extract import extract
from hwsim.report import layer_row
from hwsim.simulate import Report, estimate

#: Widths of mac/adder/shift when --bits is not given (xnor: 1).
DEFAULT_BITS = (4, 8, 16)
#: The name under which all vector work (BN, activations, pooling) of a network is summed.
VECTOR_WORK = "vector work (BN, act, pool)"


@dataclass(frozen=True)
class Variant:
    """A network on one PE kind at one width, with its hwsim report and (when trained) accuracies.

    ``bits`` is the width of the PE kind's layers, ``layer_bits`` that of the other layers;
    ``scheme`` names the quantization scheme (``models.intnet.SCHEMES``; empty: not quantized),
    ``groups`` the most group scales a grouped adder layer of it uses (0: not grouped).
    Accuracies are fractions in [0, 1]; None when not measured (the big-network report).
    """

    pe: str
    bits: int
    layer_bits: int
    report: Report
    float_accuracy: float | None = None
    int_accuracy: float | None = None
    pareto: bool = False
    scheme: str = ""
    groups: int = 0

    @property
    def bits_label(self) -> str:
        return f"{self.bits}b" if self.bits == self.layer_bits else f"{self.bits}b/{self.layer_bits}b"

    @property
    def label(self) -> str:
        return f"{self.scheme or self.pe} {self.bits_label}"

    @property
    def energy_uj(self) -> float:
        return self.report.energy_uj

    def layer_energy_uj(self, depth: int | None = None) -> dict[str, float]:
        """Energy in uJ per conv/linear layer -- or per module of the first ``depth`` name parts
        (``layer1.0.conv1`` -> ``layer1`` at depth 1) -- and all vector work as one entry."""
        parts: dict[str, float] = {}
        for row in self.report.layers:
            key = ".".join(row.name.split(".")[:depth]) if row.op in ("conv", "linear") \
                else VECTOR_WORK
            parts[key] = parts.get(key, 0.0) + row.energy_pj * 1e-6
        return parts

    def to_dict(self) -> dict[str, Any]:
        """:meth:`row` plus the accelerator, the area per block and the per-layer rows."""
        return {**self.row(), "accelerator": self.report.accelerator.to_dict(),
                "area_um2": self.report.area_um2,
                "layers": [layer_row(r) for r in self.report.layers]}

    def row(self) -> dict[str, Any]:
        """Flat fields for CSV/JSON: identity, accuracies, the hwsim totals."""
        acc = self.report.accelerator
        return {"pe": self.pe, "scheme": self.scheme, "groups": self.groups, "bits": self.bits, "layer_bits": self.layer_bits,
                "float_accuracy": self.float_accuracy, "int_accuracy": self.int_accuracy,
                "pareto": self.pareto, "array": f"{acc.array.rows}x{acc.array.cols}",
                "dataflow": acc.array.dataflow, "clock_mhz": acc.clock_mhz,
                **self.report.totals()}


def parse_pes(text: str) -> tuple[str, ...]:
    """``mac,adder`` -> ("mac", "adder"); unknown or repeated kinds raise HwsimError."""
    pes = tuple(p.strip() for p in text.split(",") if p.strip())
    bad = [p for p in pes if p not in PE_KINDS]
    if bad or not pes:
        raise HwsimError(f"unknown PE kind {bad[0] if bad else text!r}; give a comma-separated "
                         f"list of {', '.join(PE_KINDS)}")
    if len(set(pes)) != len(pes):
        raise HwsimError(f"--pe lists a PE kind twice: {text!r}")
    return pes


def parse_bits(text: str | None, pes: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """Bit widths per PE kind from ``--bits``: xnor takes 1, the others the values in 2..16.

    Without ``--bits``: 1 for xnor, DEFAULT_BITS for the others. Every value given must suit some
    chosen kind and every kind must get a value.
    """
    if text is None:
        return {p: (1,) if p == "xnor" else DEFAULT_BITS for p in pes}
    try:
        values = tuple(sorted({int(v) for v in text.split(",") if v.strip()}))
    except ValueError:
        raise HwsimError(f"--bits must be a comma-separated list of integers, not {text!r}") from None
    multibit = [p for p in pes if p != "xnor"]
    for b in values:
        if b == 1 and "xnor" not in pes:
            raise HwsimError(f"{', '.join(pes)} cannot run at 1 bit (they need 2..16 bits); "
                             "1 bit is the xnor datapath: add xnor to --pe or drop 1 from --bits")
        if b != 1 and (not HARDWARE_BITS[0] <= b <= HARDWARE_BITS[1] or not multibit):
            why = "xnor runs at 1 bit only" if not multibit else "mac/adder/shift support 2..16 bits"
            raise HwsimError(f"--bits {b} is not supported by {', '.join(pes)} ({why}); "
                             "fix --bits or --pe")
    per_pe = {p: tuple(b for b in values if (b == 1) == (p == "xnor")) for p in pes}
    empty = [p for p, bits in per_pe.items() if not bits]
    if empty:
        need = "1" if empty[0] == "xnor" else "a width in 2..16"
        raise HwsimError(f"--bits {text} leaves {empty[0]} without a width; include {need}")
    return per_pe


def accelerator_for(pe: str, bits: int, config: str | Path | None = None) -> accel.Accelerator:
    """The PE kind's preset, the YAML config as a diff on it, then ``pe`` and ``bits``
    (:func:`hwsim.api.resolve_accelerator`, as the command line resolves it)."""
    return resolve_accelerator(config=config, pe=pe, bits=bits)


def cost(net: nn.Module, input_shape: tuple[int, ...], pe: str, bits: int, name: str,
         config: str | Path | None = None, *, max_align: int = 0) -> Variant:
    """Extract and estimate the already converted ``net`` as the (``pe``, ``bits``) variant;
    ``max_align`` > 0 costs a grouped adder array aligning by up to that many bits, whose adder
    weights are stored with their alignment field (:meth:`Accelerator.stored_weight_bits`)."""
    widths = aux_bits(pe, bits)
    workload = extract(net, input_shape, bits=widths, name=name)
    acc = dataclasses.replace(accelerator_for(pe, bits, config), max_align=max_align)
    return Variant(pe, bits, widths, estimate(workload, acc))


def mark_pareto(variants: Sequence[Variant]) -> list[Variant]:
    """The variants with ``pareto`` set where no other has lower-or-equal energy and
    higher-or-equal integer accuracy with one of them strict."""
    def dominated(v: Variant) -> bool:
        return any(o.energy_uj <= v.energy_uj and o.int_accuracy >= v.int_accuracy
                   and (o.energy_uj < v.energy_uj or o.int_accuracy > v.int_accuracy)
                   for o in variants)
    return [dataclasses.replace(v, pareto=not dominated(v)) for v in variants]
