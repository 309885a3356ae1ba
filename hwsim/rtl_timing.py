"""Exact cycles of one layer on the generated accelerator top (``rtl.top.LayerAccelerator``).

The top runs a layer in phases that never overlap, at full stream rate (every input beat valid
when ready, the result consumer always ready) with no idle cycle between phases. With ``G``
groups, ``Cg``/``Og`` channels per group, ``NT = ceil(Og / cols)``, ``CW = ceil(Cg / lanes)``
(``lanes`` is 1 except for xnor), ``KS = kh * kw * CW`` steps per fold, ``M = out_h * out_w`` and
``folds = ceil(M / rows) * G * NT``, counted from the descriptor beat to the last result beat,
both included::

    descriptor    = 1
    load_weights  = G * NT * (1 + KS)          one parameter word and KS weight words per tile
    load_acts     = G * in_h * in_w * CW
    compute       = rows + 1 + folds * fold    pixel walk of the first row tile, the buffers'
                                               read cycle, then the folds back to back
    drain         = OUTPUT_LATENCY + 1         output stage, then the last row's write
    store         = 1 + folds * rows           the out buffer's read cycle, then every row
    total         = the sum

``fold = 2 * rows + cols + KS - 2 + PIPELINE_CYCLES`` is :func:`hwsim.dataflow.compute_cycles`'s
output-stationary fold with the PE pipeline (reused, not restated): the controller adds no cycle
per fold or per tile -- the next fold's first operands wait in the operand register while the
array drains, and the walk of the next row tile (``rows`` cycles) hides under that drain.
"""

from __future__ import annotations

import math

from cost_models import PIPELINE_CYCLES
from hwsim.accelerator import Accelerator
from hwsim.dataflow import compute_cycles
from hwsim.errors import HwsimError
from hwsim.workload import Layer

__all__ = ["DESCRIPTOR_CYCLES", "FETCH_CYCLES", "OUTPUT_LATENCY", "layer_cycles"]

#: The descriptor beat.
DESCRIPTOR_CYCLES = 1
#: A synchronous buffer read: before the first operand beat and before the first result beat.
FETCH_CYCLES = 1
#: Register stages of the output stage (requantization / threshold), ``rtl.requant.OUTPUT_LATENCY``.
OUTPUT_LATENCY = 3


def layer_cycles(layer: Layer, acc: Accelerator) -> dict[str, int]:
    """Cycles of each phase of ``layer`` on the top generated for ``acc``, and their ``total``.

    Keys: ``descriptor``, ``load_weights``, ``load_acts``, ``compute``, ``drain``, ``store``,
    ``total``, plus ``folds`` and ``fold_cycles`` (see the module docstring for the formula).
    Raises :class:`HwsimError` if ``layer`` is not a conv or linear layer.
    """
    if not layer.is_compute:
        raise HwsimError(f"layer {layer.name!r} ({layer.op}) does not run on the PE array")
    groups, m, _, n = layer.gemm
    rows, cols = acc.array.rows, acc.array.cols
    lanes = acc.array.lanes if acc.pe == "xnor" else 1
    words = math.ceil(layer.in_ch // groups / lanes)
    steps = layer.kernel[0] * layer.kernel[1] * words
    schedule = compute_cycles(m, steps, n, rows, cols, "os", groups=groups,
                              pe_pipeline=PIPELINE_CYCLES)
    tiles = groups * schedule.col_folds
    phases = {
        "descriptor": DESCRIPTOR_CYCLES,
        "load_weights": tiles * (1 + steps),
        "load_acts": groups * layer.in_h * layer.in_w * words,
        "compute": rows + FETCH_CYCLES + schedule.cycles,
        "drain": OUTPUT_LATENCY + 1,
        "store": FETCH_CYCLES + schedule.folds * rows,
    }
    return {**phases, "total": sum(phases.values()), "folds": schedule.folds,
            "fold_cycles": schedule.fold_cycles}
