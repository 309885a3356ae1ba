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

from contract import DESCRIPTOR_CYCLES, FETCH_CYCLES, OUTPUT_LATENCY, PIPELINE_CYCLES
from hwsim.accelerator import Accelerator
from hwsim.dataflow import compute_cycles
from hwsim.errors import HwsimError
from hwsim.rtl_plan import LayerPlan, LayerShape, TopGeometry, plan, top_geometry
from hwsim.workload import Layer

__all__ = ["layer_cycles", "plan_cycles"]


def plan_cycles(geo: TopGeometry, p: LayerPlan) -> dict[str, int]:
    """Cycles of each phase of the planned layer ``p`` on the top ``geo``, and their ``total``.

    Keys: ``descriptor``, ``load_weights``, ``load_acts``, ``compute``, ``drain``, ``store``,
    ``total``, plus ``folds`` and ``fold_cycles`` (see the module docstring for the formula).
    """
    schedule = compute_cycles(p.out_h * p.out_w, p.steps, p.out_ch, geo.rows, geo.cols, "os",
                              groups=p.groups, pe_pipeline=PIPELINE_CYCLES)
    words = p.words(geo.rows)
    phases = {
        "descriptor": DESCRIPTOR_CYCLES,
        "load_weights": words["param_words"] + words["weight_words"],
        "load_acts": words["act_words"],
        "compute": geo.rows + FETCH_CYCLES + schedule.cycles,
        "drain": OUTPUT_LATENCY + 1,
        "store": FETCH_CYCLES + schedule.folds * geo.rows,
    }
    return {**phases, "total": sum(phases.values()), "folds": schedule.folds,
            "fold_cycles": schedule.fold_cycles}


def layer_cycles(layer: Layer, acc: Accelerator) -> dict[str, int]:
    """:func:`plan_cycles` of workload ``layer`` on the top generated for ``acc``.

    Raises :class:`HwsimError` if ``layer`` is not a conv or linear layer,
    :class:`~hwsim.errors.DoesNotFit` (naming the fix) if the top cannot run it, and
    :class:`~hwsim.errors.ConfigError` if no top can be generated for ``acc``.
    """
    if not layer.is_compute:
        raise HwsimError(f"layer {layer.name!r} ({layer.op}) does not run on the PE array")
    geo = top_geometry(acc)
    return plan_cycles(geo, plan(geo, LayerShape.of_layer(layer)))
