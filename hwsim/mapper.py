"""The search mapper (``schedule.mapper: search``): per compute layer, the buffer tiling, loop order
and dataflow of least energy, latency or EDP (``schedule.objective``).

The fixed mapper (:meth:`hwsim.mapping.GemmMapper.choose`: least DRAM traffic, then fewest cycles)
stays the default; it is fast but blind to what a tile costs besides DRAM. The search prices
every candidate with the report's own per-layer energy (``price``: the caller's pricing of a
:class:`~hwsim.mapping.Mapping`, :func:`hwsim.simulate.estimate` passes its ``_cost_layer``), and
costs each candidate with the same traffic, stall and capacity formulas as the fixed mapper
(:class:`~hwsim.mapping.GemmMapper`), so the two differ only in which plan they pick.

Candidates
----------
* dataflow: each of ``array.dataflows`` (a flexible array; default only ``array.dataflow``), each
  with its own spatial unrolling (:data:`hwsim.dataflow.LAYOUT`: which GEMM dimensions lie on the
  rows and the columns) and, for grouped convs, its own depthwise mode;
* tile sizes along ``m``, ``k``, ``n``: for every number of pieces, the smallest tile that cuts the
  dimension into that many (:meth:`~hwsim.mapping.GemmMapper.tile_grid`: a multiple of the array
  side along a spatial dimension, anything along the streamed one; the divisors of the extent
  where they exist), every combination that fits the buffers;
* loop orders: all six orders of the ``m``, ``k``, ``n`` buffer loops (orders that differ only in
  where single-tile loops sit are one). With the reduction loop outside ``m`` or ``n`` the ofmap
  buffer holds every partial sum the inner loops leave open; a plan whose partial sums it cannot
  hold is refused (partial sums never go to DRAM);
* the fixed mapper's own plan, so the search never does worse than it.

Objective and pruning
---------------------
``energy`` ranks by (energy, cycles), ``latency`` by (cycles, energy), ``edp`` by (energy x cycles,
energy); a candidate replaces the best only when strictly better, so ties keep the fixed mapper's
plan. Every tile size first gets a lower bound valid for all its loop orders
(:meth:`~hwsim.mapping.GemmMapper.mapping` with ``bound``: each input read from DRAM once, no
stalls, the compute cycles and on-chip traffic of those tiles, priced like any mapping); sizes are
tried in increasing bound, and the search stops at the first bound no better than the best found.
Within a size, a loop order's stalls (the costliest formula) are worked out only when the order
without them would still win.
The result is what an exhaustive search over the candidates gives (``tests/test_mapper.py``).
The objective is the layer's own cost: a fused vector layer's cycles hidden under the layer
(:func:`hwsim.schedule.overlap`) are not part of it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from itertools import permutations

from hwsim.accelerator import OBJECTIVES, Accelerator
from hwsim.errors import HwsimError
from hwsim.mapping import Flow, GemmMapper, Mapping, Plan
from hwsim.workload import Layer

#: The energy in pJ that the report gives a layer mapped as the argument says.
Price = Callable[[Mapping], float]
_Rank = tuple[float, float]


def rank(objective: str, energy_pj: float, cycles: int) -> _Rank:
    """What ``objective`` minimises, as a tuple compared in order (the second breaks ties)."""
    if objective == "energy":
        return energy_pj, cycles
    if objective == "latency":
        return cycles, energy_pj
    if objective == "edp":
        return energy_pj * cycles, energy_pj
    raise HwsimError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")


def search_layer(layer: Layer, acc: Accelerator, flow: Flow, price: Price, *, objective: str = "energy",
                 scalesim: bool = False) -> Mapping:
    """The mapping of compute ``layer`` on ``acc`` (tensors where ``flow`` says) that minimises
    ``objective`` over the candidates of the module docstring, each priced by ``price``.

    Raises :class:`HwsimError` naming the layer when no allowed dataflow can map it.
    """
    best: tuple[_Rank, Mapping] | None = None
    failure = None
    for dataflow in acc.array.dataflows or (acc.array.dataflow,):
        flexible = dataclasses.replace(acc, array=dataclasses.replace(acc.array, dataflow=dataflow))
        try:
            gemm = GemmMapper(layer, flexible, flow)
            first = gemm.choose()
        except HwsimError as exc:
            failure = failure or exc
            continue
        best = _search(gemm, first, lambda m: rank(objective, price(m), m.total_cycles), scalesim, best)
    if best is None:
        raise HwsimError(f"layer {layer.name!r}: {failure}")
    return best[1]


def _search(gemm: GemmMapper, first: Plan, ranked: Callable[[Mapping], _Rank], scalesim: bool,
            best: tuple[_Rank, Mapping] | None) -> tuple[_Rank, Mapping]:
    """The best of ``best`` and the candidates of one dataflow, starting from its fixed plan."""
    mapped = gemm.mapping(first, scalesim)
    if best is None or ranked(mapped) < best[0]:
        best = ranked(mapped), mapped
    def bounded(sizes: Iterable[dict[str, int]], bound: str) -> list[tuple[_Rank, dict[str, int]]]:
        found = [(ranked(gemm.mapping(gemm.plan(size, _MNK), scalesim, bound=bound)), size) for size in sizes]
        return sorted((item for item in found if item[0] < best[0]), key=lambda item: item[0])

    for row_bound, widest in bounded(_rows(gemm), "k"):
        if row_bound >= best[0]:
            break
        for bound, size in bounded(({**widest, "k": kt} for kt in gemm.tile_grid("k") if kt <= widest["k"]), "size"):
            if bound >= best[0]:
                break
            for plan in orders(gemm, size):
                if gemm.holds_psums(plan) and ranked(gemm.mapping(plan, scalesim, bound="plan")) < best[0]:
                    mapped = gemm.mapping(plan, scalesim)
                    score = ranked(mapped)
                    if score < best[0]:
                        best = score, mapped
    return best


_MNK = ("m", "n", "k")


def _rows(gemm: GemmMapper) -> Iterator[dict[str, int]]:
    """Per ``m x n`` tile of the grid, the size with the longest reduction tile of the grid that
    fits the buffers (when one does). A tile that fits still fits with a shorter reduction, so the
    sizes that fit are these and every shorter ``k`` tile of the grid."""
    ks = gemm.tile_grid("k")
    for mt in gemm.tile_grid("m"):
        for nt in gemm.tile_grid("n"):
            lo, hi = 0, len(ks)  # the first k (largest first) that fits lies in [lo, hi]
            while lo < hi:
                mid = (lo + hi) // 2
                if gemm.fits({"m": mt, "k": ks[mid], "n": nt}):
                    hi = mid
                else:
                    lo = mid + 1
            if lo < len(ks):
                yield {"m": mt, "k": ks[lo], "n": nt}


def orders(gemm: GemmMapper, size: dict[str, int]) -> list[Plan]:
    """The plans of ``size`` in every loop order, one per order of the loops with more than one
    tile (single-tile loops are placed innermost, ``m`` before ``n`` before ``k``)."""
    plans = {}
    for order in permutations("mnk"):
        plan = gemm.plan(size, order)
        rest = tuple(d for d in "mnk" if d not in plan.moving)
        plans.setdefault(plan.moving, gemm.plan(size, plan.moving + rest))
    return list(plans.values())
