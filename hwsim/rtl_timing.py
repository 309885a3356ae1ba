"""Exact cycles of one layer on the generated accelerator top (``rtl.top.LayerAccelerator``).

The top runs a layer in phases, at full stream rate (every input beat valid when ready, the
result consumer always ready) with no idle cycle between phases; a tile's loads run beside the
tile before it and its store beside the tile after it (below). With ``G``
groups, ``Cg``/``Og`` channels per group, ``NT = ceil(Og / cols)``, ``CW = ceil(Cg / lanes)``
(``lanes`` is 1 except for xnor), ``KS = kh * kw * CW`` steps per fold, ``M = out_h * out_w`` and
``folds = ceil(M / rows) * G * NT``, counted from the descriptor beat to the last result beat,
both included (a depthwise layer run channel-parallel, :func:`hwsim.rtl_plan.channel_parallel`:
``G`` is its fold groups of ``L`` channels, ``NT = CW = 1``, and its activations are
``in_h * in_w * G * L`` words)::

    descriptor    = 1
    load_weights  = G * NT * (1 + KS)          one parameter word and KS weight words per tile
    load_acts     = ceil(G * in_h * in_w * CW / act_beat)   activation words, act_beat a beat
    hand          = HAND_CYCLES                the run side takes the tile in the cycle after
                                               its last load beat at the earliest (HAND)
    geometry_wait = max(0, GEOMETRY_CYCLES - loads)      and no earlier than the descriptor's
                                               geometry is complete (``loads`` the parameter,
                                               weight and act beats; only a tile of under five
                                               beats waits: two cycles with one beat each)
    load_resid    = folds * rows (a layer with ``residual``, else 0): the shortcut's out words
    compute       = rows + 4 + folds * fold    pixel walk of the first row tile, the operand
                                               fetch's four cycles (``OPERAND_CYCLES``: the
                                               step's addresses, the buffers' read, the register
                                               behind them, each row's register), then the
                                               folds back to back (fold overlap: below)
    drain         = OUTPUT_LATENCY + 1         output stage, then the last row's write
    store         = 2 + folds * rows           the out buffer's read and the register behind
                                               it (``FETCH_CYCLES``), then every row
    total         = the sum

**Fold overlap** (``array.fold_overlap``, the default; :mod:`rtl.array`): the array pipelines
its folds, so ``compute = rows + 4 + array`` with ``array`` the cycles from the first operand beat
(of a first step served in one cycle) to the last result row. The activation buffer is then
``B`` banks (:func:`contract.act_banks`), and the fetch serves a step in as many cycles ``c``
as its busiest bank has distinct words (:mod:`hwsim.rtl_banks`; 1 when the rows' words fall in
distinct banks, as for ``rows`` consecutive pixels of a pitch not a multiple of ``B``). Steps
are served back to back, each beat 3 cycles after its step's service completes; a fold's last
step completes no sooner than ``rows`` after the fold before's (the array takes a fold's last
beat only then; the fetch holds the step, so its pipeline never stalls). The controller issues
a step the cycle after the one before unless the request register still holds that one, and
the next row tile's first step the cycle after the swap: with the row tile's last issue, or
when the walk of the next row tile's ``rows`` pixels (from the swap before) completes, if
later. Without conflicts (every ``c = 1``), with ``n = G * NT`` folds per row tile, ``RT`` row
tiles and ``P = max(KS, rows)``: if ``n * P > rows`` the walk hides and every fold's last step
comes ``P`` after the one before, the last at ``(KS - 1) + (folds - 1) * P``; else (``n = 1``,
``KS <= rows``) a row tile takes ``rows + 1`` cycles, the last at ``(RT - 1) * (rows + 1) + KS -
1``; with conflicts a fold's ``KS`` becomes its service cycles (:func:`_row_tile` has the
recurrence). The last row leaves ``2 * rows + cols - 2 + PIPELINE_CYCLES + CAPTURE_CYCLES``
after the last beat (depthwise: ``rows + 1 + PIPELINE_CYCLES + CAPTURE_CYCLES``, every PE's sum
complete at once), plus one.
The analytic model (:func:`hwsim.dataflow.compute_cycles` with ``overlap``) has no walk and no
drain register: ``(folds - 1) * P + fold``.

Without it, ``fold = 2 * rows + cols + KS - 2 + PIPELINE_CYCLES`` is :func:`hwsim.dataflow.compute_cycles`'s
output-stationary fold with the PE pipeline (reused, not restated): the controller adds no cycle
per fold or per tile -- the next fold's first operands wait in the operand register while the
array drains, and the walk of the next row tile (``rows`` cycles) hides under that drain.

A layer too large for the buffers runs as tiles (:func:`hwsim.rtl_plan.split`), one descriptor
after another, through the top's three stages: the load side, the run side and the store
engine. Tile ``t`` (descriptor at ``s_t``) is ready to be taken at ``a_t = s_t + load_weights +
load_acts + hand + geometry_wait``; the run side takes it at ``h_t = max(a_t, e_{t-1} + 1)`` (the run
side is idle the cycle after the tile before left FLUSH at ``e_{t-1}``) and the next
descriptor comes at ``h_t + 1``; its FLUSH ends at ``F_t = h_t + load_resid + compute + drain``,
and a storing tile hands its bank to the store engine at ``e_t = max(F_t, H_s + S_s)`` (``s``
the last storing tile before it: the engine takes a new bank in the cycle its last word
leaves), its store ending at ``e_t + S_t``; a tile that stores nothing leaves FLUSH at ``e_t =
F_t``. A layer's cycles run from its first descriptor (on an idle top) to its last result:
:func:`overlapped_total`. One tile: the sum above. :func:`tile_layer` picks, of the tilings
that fit, the one with the fewest of those cycles, its tiles in the order they run -- every group
count ``ceil(G / k)`` (channel-parallel depthwise: whole fold groups), every multiple of ``cols`` output channels per group, and for each pair
the most output rows that fit (fit is monotone in the rows: more rows load more input and write
more output, never less).

A layer whose fold is longer than ``max_steps`` (and only such a layer) also runs as K tiles:
each output tile's reduction cut into ``n`` input-channel slices
(:func:`hwsim.rtl_plan.k_slices`), the fewest for which a tiling fits, starting from
``ceil(CW / floor(max_steps / (kh * kw)))``; for each ``n`` the fastest tiling as above. Every K tile pays the phases above, except that one
which writes partial sums (all but the last) stores nothing: ``store = 0``, and its span ends with
its drain (its FLUSH; the storing K tile after it ends the layer)::

    K tile writing psums = descriptor + load_weights + load_acts + compute + drain
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from contract import (CAPTURE_CYCLES, DESCRIPTOR_CYCLES, FETCH_CYCLES, GEOMETRY_CYCLES, HAND_CYCLES, OPERAND_CYCLES,
                      OUTPUT_LATENCY, PIPELINE_CYCLES, conv_out_size)
from hwsim.accelerator import Accelerator
from hwsim.dataflow import compute_cycles
from hwsim.errors import HwsimError
from hwsim.errors import DoesNotFit
from hwsim.rtl_banks import fold_costs
from hwsim.rtl_plan import (LayerPlan, LayerShape, Tile, TopGeometry, channel_parallel, plan, split,
                            top_geometry)
from hwsim.workload import Layer

__all__ = ["layer_cycles", "overlapped_total", "plan_cycles", "tile_layer", "tiles_cycles"]


def plan_cycles(geo: TopGeometry, p: LayerPlan) -> dict[str, int]:
    """Cycles of each phase of the planned layer ``p`` on the top ``geo``, and their ``total``.

    Keys: ``descriptor``, ``load_weights``, ``load_acts``, ``hand``, ``geometry_wait``, ``load_resid``, ``compute``,
    ``drain``, ``store``
    (0 for a K tile that writes partial sums), ``total``, plus ``folds`` and ``fold_cycles`` (see
    the module docstring for the formula).
    """
    schedule = compute_cycles(p.out_h * p.out_w, p.steps, p.out_ch, geo.rows, geo.cols, "os",
                              groups=p.fold_groups, pe_pipeline=PIPELINE_CYCLES)
    array = _overlapped_array(geo, p) if geo.fold_overlap else schedule.cycles
    words = p.words(geo.rows)
    loads = words["param_words"] + words["weight_words"] + geo.act_beats(words["act_words"])
    phases = {
        "descriptor": DESCRIPTOR_CYCLES,
        "load_weights": words["param_words"] + words["weight_words"],
        "load_acts": geo.act_beats(words["act_words"]),
        "hand": HAND_CYCLES,
        "geometry_wait": max(0, GEOMETRY_CYCLES - loads),
        "load_resid": p.resid_words(geo.rows),
        "compute": geo.rows + OPERAND_CYCLES + array,
        "drain": OUTPUT_LATENCY + 1,
        "store": FETCH_CYCLES + schedule.folds * geo.rows if p.stores else 0,
    }
    return {**phases, "total": sum(phases.values()), "folds": schedule.folds,
            "fold_cycles": schedule.fold_cycles}


def _overlapped_array(geo: TopGeometry, p: LayerPlan) -> int:
    """Cycles from a layer's first operand beat (of a first step served in one cycle) to its
    last result row on an array with fold overlap (module docstring): the row tiles'
    recurrence, in service completions, with each fold's service cycles
    (:func:`hwsim.rtl_banks.fold_costs`); without bank conflicts it is followed until its state
    relative to the last completion repeats, then extended by whole row tiles."""
    rows, k, row_tiles = geo.rows, p.steps, p.row_tiles
    costs = fold_costs(geo, p)
    # cycle 0: the first step's issue. State: first issue of the row tile, the cycle the walk of
    # the row tile after it starts, the last completion of the row tile before (None: none)
    issue, walk, end = 0, 0, None
    seen: dict[tuple[int, int], tuple[int, int]] = {}
    done = 0
    while done < row_tiles:
        if costs is None and end is not None:
            key = (issue - end, walk - end)
            if key in seen and row_tiles - done > 1:  # periodic from here: jump whole periods
                first, at = seen[key]
                period, span = done - first, end - at
                jumps = (row_tiles - done - 1) // period
                issue, walk, end, done = issue + jumps * span, walk + jumps * span, end + jumps * span, done + jumps * period
                seen.clear()
            seen[key] = (done, end)
        if costs is None:
            folds, last = [k] * p.fold_groups, (1, 1)
        else:
            folds, last = costs.fold[done].tolist(), costs.last[done].tolist()
        issue, walk, end = _row_tile(rows, k, p.tiles, folds, last, issue, walk, end)
        done += 1
    if p.depthwise:  # every PE's sum complete together, no deskew
        tail = 1 + PIPELINE_CYCLES + 1 + CAPTURE_CYCLES + rows - 1
    else:
        tail = (rows - 1) + (geo.cols - 1) + PIPELINE_CYCLES + 1 + CAPTURE_CYCLES + rows - 1
    assert end is not None
    return end + tail


def _row_tile(rows: int, k: int, tiles: int, folds: list[int], last: tuple[int, int], issue: int, walk: int,
              before: int | None) -> tuple[int, int, int]:
    """One row tile of the overlapped recurrence (module docstring): its first step issued at
    ``issue``, the walk of the next row tile's pixels from ``walk``, the row tile before's last
    step completed at ``before``; ``folds`` the service cycles of a fold of each fold group
    (``tiles`` folds each), ``last`` those of its last fold's last two steps. Returns the next
    row tile's first issue, its walk start and this row tile's last completion.

    A step issued at ``I`` enters the service stage at ``max(I, E') + 1`` (``E'`` the step
    before's completion) and completes ``c - 1`` cycles later, a fold's last step no sooner than
    ``rows`` after the fold before's last; the controller issues a step the cycle after the one
    before, unless the request register still holds that one: ``I_s = max(I_{s-1}, E_{s-2}) + 1``.
    Within a row tile the service stage never waits for an issue, so a fold's last step
    completes ``max(C, rows)`` after the fold before's (``C`` its service cycles)."""
    n, steps = len(folds) * tiles, len(folds) * tiles * k
    spans = [max(c, rows) for c in folds]
    start = issue if before is None else max(issue, before)  # the cycle before the first service
    first = start + folds[0] if before is None else max(start + folds[0], before + rows)
    # the last three folds' last completions, the last fold's last
    ends = [first + sum(spans) * tiles - spans[0]]
    for fold in (n - 1, n - 2)[:max(0, min(2, n - 1))]:  # back through folds >= 1
        ends.insert(0, ends[0] - spans[fold // tiles])

    def completion(back: int) -> int | None:
        """Completion of the row tile's step ``steps - 1 - back`` (``back < steps``)."""
        if 0 < back < k:  # a step of the last fold before its last
            return (ends[-2] if n >= 2 else start) + folds[-1] - sum(last[:back])
        return ends[-1 - back // k]  # a fold's last step (back <= 2: a multiple of k here)

    third = completion(2) if steps >= 3 else before  # the step two before the last
    swap_issue = issue + steps - 1 if third is None or steps == 1 else max(issue + steps - 1, third + 1)
    full = walk + rows  # the next row tile's pixels all walked (the walker shows it from then)
    swap = swap_issue if full <= swap_issue else full
    second = completion(1) if steps >= 2 else before  # the step before the last
    nxt = swap + 1 if second is None else max(swap, second) + 1
    return nxt, swap + 1, ends[-1]


def tiles_cycles(geo: TopGeometry, tiles: Sequence[Tile]) -> dict[str, int]:
    """:func:`plan_cycles` of each tile, summed key by key, ``tiles`` (how many) and, when all
    tiles' folds are equally long, ``fold_cycles``; ``total`` is the tiles run in order with
    each store beside the next tile (:func:`overlapped_total`)."""
    return {**_summed(geo, Counter(t.plan for t in tiles)), "total": overlapped_total(geo, [t.plan for t in tiles])}


def overlapped_total(geo: TopGeometry, plans: Sequence[LayerPlan]) -> int:
    """Cycles of ``plans`` run back to back on an idle top, from the first descriptor to the last
    result (module docstring): each tile is taken by the run side once its loads are done and
    the run side is idle, its descriptor's successor comes the cycle after, and each storing
    tile hands its bank to the store engine at the end of its FLUSH, once the engine is free."""
    start = 0  # this tile's descriptor cycle
    run_free, store_free, last = 0, 0, 0  # the run side idle from; the store engine free from
    known: dict[LayerPlan, dict[str, int]] = {}  # plans repeat: tiles of one shape
    for p in plans:
        phases = known.get(p) or known.setdefault(p, plan_cycles(geo, p))
        loaded = start + phases["load_weights"] + phases["load_acts"] + phases["hand"] + phases["geometry_wait"]
        take = max(loaded, run_free)
        flush = take + phases["load_resid"] + phases["compute"] + phases["drain"]  # FLUSH's last cycle
        if p.stores:
            handoff = max(flush, store_free)
            store_free = last = handoff + phases["store"]
        else:
            handoff, last = flush, max(last, flush)
        run_free, start = handoff + 1, take + 1
    return last + 1


def _summed(geo: TopGeometry, plans: Counter[LayerPlan]) -> dict[str, int]:
    """Phases summed over ``plans`` (with their counts); ``fold_cycles`` when all folds are alike."""
    total: dict[str, int] = {}
    folds = set()
    for p, count in plans.items():
        phases = plan_cycles(geo, p)
        folds.add(phases.pop("fold_cycles"))
        for key, value in phases.items():
            total[key] = total.get(key, 0) + count * value
    return {**total, **({"fold_cycles": folds.pop()} if len(folds) == 1 else {}), "tiles": sum(plans.values())}


def tile_layer(geo: TopGeometry, shape: LayerShape) -> tuple[Tile, ...]:
    """The tiles the host runs ``shape`` as on ``geo``: the whole layer if it fits, else the
    fitting tiling with the fewest cycles (module docstring). Raises :class:`DoesNotFit` when not
    even one group, ``cols`` channels and one output row fit (a fold longer than
    ``rtl.max_steps``, a descriptor field too wide, a buffer smaller than one row's input)."""
    key = (geo, shape)
    if key not in _TILINGS:
        _TILINGS[key] = tuple(split(geo, shape, *_choose(geo, shape)))
    return _TILINGS[key]


_TILINGS: dict[tuple[TopGeometry, LayerShape], tuple[Tile, ...]] = {}


def _cycles(geo: TopGeometry, shape: LayerShape, groups: int, channels: int, rows: int,
            k_tiles: int) -> int | None:
    """Total cycles of the tiling, run in order with the overlap (:func:`overlapped_total`), or
    None if one of its tiles does not fit."""
    try:
        tiles = split(geo, shape, groups, channels, rows, k_tiles)
    except DoesNotFit:
        return None
    return overlapped_total(geo, [t.plan for t in tiles])


def _fewest_k_tiles(geo: TopGeometry, shape: LayerShape) -> int:
    """The fewest K tiles whose folds fit ``max_steps`` (1: the whole reduction fits); raises
    :class:`DoesNotFit` when one channel word of the kernel is longer than a fold, or when the
    reduction needs K tiles the top cannot keep (no psum buffer, too many positions)."""
    window = shape.kernel[0] * shape.kernel[1]
    words = -(-(shape.in_ch // shape.groups) // geo.lanes)
    if window * words <= geo.max_steps:
        return 1
    fold = f"a fold of {window * words} steps exceeds rtl.max_steps={geo.max_steps}"
    if window > geo.max_steps:
        raise DoesNotFit(f"{fold}, and a K tile of one channel word is {window} steps; raise "
                         f"rtl.max_steps and memory.weight_sram_kib")
    if geo.psum_words < geo.rows:
        raise DoesNotFit(f"{fold}, and the top's psum buffer of {geo.psum_words} words holds no fold of "
                         f"K tiles; raise rtl.max_steps and memory.weight_sram_kib, or enlarge "
                         f"memory.ofmap_sram_kib")
    per_slice = geo.max_steps // window
    return -(-words // per_slice)


def _group_counts(geo: TopGeometry, shape: LayerShape) -> list[int]:
    """The groups per tile a tiling may take, most first: ``ceil(G / k)``, or for a depthwise
    layer run channel-parallel whole blocks of ``L`` channels (``L * ceil(ceil(G / L) / k)``)."""
    groups, lanes = shape.groups, channel_parallel(geo, shape) or 1
    blocks = -(-groups // lanes)
    return sorted({min(groups, lanes * -(-blocks // k)) for k in range(1, blocks + 1)}, reverse=True)


def _choose(geo: TopGeometry, shape: LayerShape) -> tuple[int, int, int, int]:
    """``(groups, channels, rows, k_tiles)`` per tile of the fastest tiling that fits, with the
    fewest K tiles for which one fits (module docstring)."""
    groups, per_group = shape.groups, shape.out_ch // shape.groups
    rows_all = shape.out_h or conv_out_size(shape.in_h, shape.kernel[0], shape.stride[0], shape.padding[0])
    fewest = _fewest_k_tiles(geo, shape)
    reason: DoesNotFit | None = None
    if fewest == 1:
        try:
            plan(geo, shape)
            return groups, per_group, rows_all, 1
        except DoesNotFit as exc:
            reason = exc
    else:
        whole = (shape.in_ch // shape.groups) * shape.kernel[0] * shape.kernel[1]
        if whole > geo.max_positions:
            raise DoesNotFit(f"a reduction of {whole} positions exceeds the {geo.max_positions} the top's "
                             f"outputs hold; raise rtl.max_steps")
    words = -(-(shape.in_ch // shape.groups) // geo.lanes)
    smallest = min(per_group, geo.cols)
    for k_tiles in range(fewest, words + 1 if fewest > 1 else 2):  # K tiles only for long folds
        if k_tiles > fewest and _cycles(geo, shape, 1, smallest, 1, k_tiles) is None:
            continue  # not even the smallest tile fits: no tiling does
        best: tuple[int, tuple[int, int, int, int]] | None = None
        for g in _group_counts(geo, shape):
            for c in sorted({per_group, *range(geo.cols, per_group, geo.cols)}, reverse=True):
                lo, hi, found = 1, rows_all, None
                while lo <= hi:  # the most rows that fit
                    mid = (lo + hi) // 2
                    cycles = _cycles(geo, shape, g, c, mid, k_tiles)
                    if cycles is None:
                        hi = mid - 1
                    else:
                        found, lo = (cycles, (g, c, mid, k_tiles)), mid + 1
                if found is not None and (best is None or found[0] < best[0]):
                    best = found
        if best is not None:
            return best[1]
    try:
        split(geo, shape, 1, smallest, 1, fewest)
    except DoesNotFit as exc:
        if reason is not None and str(exc) == str(reason):  # what no cut changes (a descriptor field)
            raise reason from None
        lead = f"{reason}; not even" if reason is not None else "not even"
        raise DoesNotFit(f"{lead} a tile of one group, {smallest} output channels and "
                         f"one output row fits: {exc}") from None
    raise AssertionError("the smallest tile fits, so a tiling does")  # pragma: no cover


def layer_cycles(layer: Layer, acc: Accelerator) -> dict[str, int]:
    """:func:`tiles_cycles` of workload ``layer`` on the top generated for ``acc``, tiled as
    :func:`tile_layer` does: the layer top streamed by a host (the network accelerator's are
    :func:`hwsim.rtl_sequence.layer_sequence_cycles`).

    Raises :class:`HwsimError` if ``layer`` is not a conv or linear layer,
    :class:`~hwsim.errors.DoesNotFit` (naming the fix) if the top cannot run it, and
    :class:`~hwsim.errors.ConfigError` if no top can be generated for ``acc``.
    """
    if not layer.is_compute:
        raise HwsimError(f"layer {layer.name!r} ({layer.op}) does not run on the PE array")
    geo = top_geometry(acc)
    return tiles_cycles(geo, tile_layer(geo, LayerShape.of_layer(layer)))
