"""The report figures as PNG bytes (matplotlib, Agg backend; no window, no global style change).

Each function takes :class:`~hwsim.reports.variants.Variant` rows and returns the PNG file's
bytes, so the caller decides where (and whether) to write them.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

if TYPE_CHECKING:  # variants imports torch; the sweep's figures (PE_COLORS, png) do without it
    from hwsim.reports.variants import Variant

#: One colour per PE kind, the same in every figure.
PE_COLORS = {"mac": "#595959", "adder": "#1f77b4", "shift": "#2ca02c", "xnor": "#d62728"}
SPLIT_COLORS = {"compute": "#4c72b0", "onchip": "#dd8452", "dram": "#8c8c8c", "leakage": "#937860"}
#: Largest number of layer groups drawn in the per-layer figure (deeper names are merged).
MAX_LAYER_GROUPS = 20
SPLIT_LABELS = {"compute": "compute", "onchip": "on-chip (SRAM + registers)", "dram": "DRAM",
                "leakage": "leakage"}


def png(fig: Figure) -> bytes:
    """The PNG bytes of ``fig`` (120 dpi, tight), which is closed."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def accuracy_energy(variants: Sequence[Variant]) -> bytes:
    """Integer-reference accuracy against energy per inference; the Pareto front as a step line."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for pe in PE_COLORS:
        rows = [v for v in variants if v.pe == pe]
        if not rows:
            continue
        ax.scatter([v.energy_uj for v in rows], [100 * v.int_accuracy for v in rows], s=50,
                   color=PE_COLORS[pe], label=f"{pe} (integer)", zorder=3)
        ax.scatter([v.energy_uj for v in rows], [100 * v.float_accuracy for v in rows], s=50,
                   facecolors="none", edgecolors=PE_COLORS[pe], zorder=3)
        for v in rows:
            ax.annotate(v.bits_label, (v.energy_uj, 100 * v.int_accuracy), xytext=(5, -10),
                        textcoords="offset points", fontsize=8, color=PE_COLORS[pe])
    front = sorted((v for v in variants if v.pareto), key=lambda v: v.energy_uj)
    if front:
        ax.step([v.energy_uj for v in front], [100 * v.int_accuracy for v in front], where="post",
                color="black", linewidth=1, linestyle="--", label="Pareto front", zorder=2)
        ax.scatter([v.energy_uj for v in front], [100 * v.int_accuracy for v in front], s=140,
                   facecolors="none", edgecolors="black", linewidths=1, zorder=4)
    ax.scatter([], [], facecolors="none", edgecolors="black", label="float (same network)")
    ax.set_xscale("log")
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(plain)
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel("energy per inference (uJ, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Accuracy vs energy per inference")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return png(fig)


def _stacked(ax: plt.Axes, labels: list[str], parts: dict[str, list[float]], colors: list) -> None:
    bottom = [0.0] * len(labels)
    for (name, values), color in zip(parts.items(), colors):
        ax.bar(labels, values, bottom=bottom, label=name, color=color, edgecolor="white", linewidth=0.5)
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.tick_params(axis="x", labelrotation=45)
    for tick in ax.get_xticklabels():
        tick.set_horizontalalignment("right")
    ax.grid(True, axis="y", alpha=0.3)


def layer_energy(variants: Sequence[Variant]) -> bytes:
    """Energy per inference of each variant, stacked by conv/linear layer (vector work summed);
    a deep network's layers are grouped by module name so that at most MAX_LAYER_GROUPS remain."""
    from hwsim.reports.variants import VECTOR_WORK

    for depth in (None, 3, 2, 1):  # the finest naming that keeps the legend readable
        names: list[str] = []
        for v in variants:
            names += [n for n in v.layer_energy_uj(depth) if n not in names]
        if len(names) <= MAX_LAYER_GROUPS:
            break
    names.sort(key=lambda name: name == VECTOR_WORK)  # vector work on top, layers in order below
    parts = {name: [v.layer_energy_uj(depth).get(name, 0.0) for v in variants] for name in names}
    cmap = plt.get_cmap("tab20")
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(variants) + 3), 4.5))
    _stacked(ax, [v.label for v in variants], parts, [cmap(i % 20) for i in range(len(names))])
    ax.set_ylabel("energy per inference (uJ)")
    ax.set_title("Energy per layer")
    ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left", title="layer", title_fontsize=8)
    return png(fig)


def energy_split(variants: Sequence[Variant]) -> bytes:
    """Energy per inference of each variant split into compute, on-chip memory and DRAM."""
    parts = {SPLIT_LABELS[k]: [v.report.energy_split_uj()[k] for v in variants] for k in SPLIT_LABELS}
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(variants) + 3), 4.5))
    _stacked(ax, [v.label for v in variants], parts, list(SPLIT_COLORS.values()))
    ax.set_ylabel("energy per inference (uJ)")
    ax.set_title("Energy split: compute / on-chip / DRAM")
    ax.legend(fontsize=8, bbox_to_anchor=(1.01, 1), loc="upper left")
    return png(fig)
