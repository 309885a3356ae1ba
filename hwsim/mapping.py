"""Map one :class:`~hwsim.workload.Layer` onto an :class:`~hwsim.accelerator.Accelerator`.

The result, a :class:`Mapping`, holds the cycles (compute and DRAM stalls), the buffer tile and
the bits moved at each memory level. Everything is a closed form over at most a few dozen
representative tiles, so a whole network maps in milliseconds.

Compute layers (``conv``, ``linear``)
-------------------------------------
Each group is its own GEMM ``(M x K) @ (K x N)`` (:attr:`Layer.gemm`), run back to back on the
array with the dataflow of :mod:`hwsim.dataflow` (pipelined folds with ``array.fold_overlap``).
With ``array.depthwise: channel_parallel`` a grouped conv with fewer filters per group than
``cols`` is one GEMM with the groups side by side on the columns (``N = groups * filters``), each
column fed its own channel. An XNOR PE reduces ``array.lanes`` binary lanes per cycle, so its
reduction length is ``ceil(K / lanes)`` words of ``lanes`` bits.

*Buffer tiles.* An ifmap tile is the raw input rows its ``m_tile`` output pixels read, halo
included, of the channels its ``k_tile`` covers (:meth:`GemmMapper.ifmap_tile_bits`: what the
on-the-fly im2col walker holds, or the im2col view when that is smaller); ``k_tile x n_tile``
weights (``acc.stored_weight_bits(...)``) and ``m_tile x n_tile`` partial sums of ``acc.psum_bits(...)`` bits
(the accumulator width) in the ofmap buffer, so partial sums never go to DRAM. A dimension that
the array maps spatially is tiled in multiples of the array side (tiles never cut a fold); one
that streams in time (``K`` for ``os``, ``M`` for ``ws``, ``N`` for ``is``) may be cut anywhere,
at the price of one more fill and drain per tile. ``k_tile`` is the whole ``K`` whenever a
one-fold tile with the whole ``K`` fits, otherwise the largest that does; the reduction loop is
then innermost. Tile shapes tried: ``n_tile`` as large as the buffers allow, then ``m_tile``; the
other way round; and each of them cut into equal pieces; in both loop orders (N outer: a weight
tile stays while the ifmap tiles stream past; M outer: the reverse). An operand is re-read from
DRAM once per iteration of an outer loop that does not index it, unless its data for all the
loops inside fits its buffer whole (:meth:`GemmMapper.resident`). The least DRAM traffic wins,
then the fewest cycles (DRAM stalls included), then the largest tile. That is the fixed mapper;
``schedule.mapper: search`` (:mod:`hwsim.mapper`) prices other tiles and loop orders with the same
formulas, including the reduction loop outside ``m`` or ``n``: the ofmap buffer then holds every
partial sum the loops inside it leave open (:meth:`GemmMapper.held_bits`), or the plan is refused.

*Traffic.* DRAM: the input pixels the conv reads (``in_ch`` x the rows and columns some tap
touches, not the im2col copy) times the passes the loop order needs (halo rows shared by
neighbouring tiles are not re-read), the weights likewise, and the outputs written once at
``act_bits``. SRAM reads are what the array demands, as SCALE-Sim counts it: an operand slice is
read again for every fold along a dimension it does not depend on (``os``: ifmap once per column
fold, weights once per row fold; ``ws``: ifmap once per column fold, weights once per ``M`` tile;
``is``: weights once per column fold, inputs once per ``N`` tile); channel-parallel, the ifmap
through the tap registers (:meth:`GemmMapper.ifmap_reads`). Partial sums pass the ofmap buffer
(a write and a read) once per fold along ``K`` but the last; the outputs leave through the output
stage into activation storage, or are staged in the ofmap buffer (a write and a read) on their
way to DRAM. DRAM fills count as SRAM writes.

*Stalls* (per tile, one DRAM channel of ``acc.dram_bytes_per_cycle``): while tile ``t``
computes, the inputs of tile ``t + 1`` and the outputs of tile ``t - 1`` move, and any excess
over tile ``t``'s compute cycles stalls the array. The array consumes a tile fold by fold, so
only the first fold's share of the first tile (its inputs over its folds) loads before compute
starts, the rest of it moves during the first tile; likewise only the last fold's share of the
last tile's outputs is written after compute ends.

Vector layers
-------------
``ceil(vector_ops / vector_lanes)`` cycles. ``act``/``norm`` are fused into the producer's output
stage: no DRAM traffic, one SRAM read and write of the tensor. Pooling and ``vector`` read their
input from DRAM, ``add``/``mul`` two inputs of ``in_elems`` each; all write their output. DRAM
stalls are per layer: ``max(0, dram_cycles - compute_cycles)``.

``scalesim=True`` only replaces ``compute_cycles`` by SCALE-Sim v2's count for the whole layer
(which ignores buffer capacity); stalls and utilization stay those of the physical schedule.
"""

from __future__ import annotations

import math
import functools
from dataclasses import dataclass, field
from types import MappingProxyType

from contract import PIPELINE_CYCLES, lanes_per_pe
from hwsim.accelerator import Accelerator
from hwsim.dataflow import LAYOUT, Schedule, compute_cycles
from hwsim.errors import HwsimError
from hwsim.workload import VECTOR_OPS, Layer


_OPERANDS = ("ifmap", "weight", "ofmap")
#: The GEMM dimensions indexing each operand.
_DIMS = {"ifmap": ("m", "k"), "weight": ("k", "n"), "ofmap": ("m", "n")}
_FUSED = ("act", "norm")
_TWO_INPUTS = ("add", "mul")


#: Where a layer runs: on its own (``own``), in its producer's output stage (``fused``), or as the
#: naive mode's act/norm on the producer's output buffer (``serial``: one SRAM pass, no DRAM).
STAGES = ("own", "fused", "serial")


@dataclass(frozen=True)
class Flow:
    """Where one layer's tensors live, as :func:`hwsim.schedule.plan` decides.

    ``in_dram``: the fraction of the input bits it reads from storage that come from DRAM (the
    rest is on chip); ``side_in_bits``: for a fused layer, the bits of its inputs other than the
    stream (a residual's skip); ``out_dram_bits``: bits of stored output it writes to DRAM (None:
    its whole output); ``out_sram_bits``: bits of stored output it writes once into on-chip
    activation storage; ``weights_dram``: weights come from DRAM (False: held on chip).
    ``Flow()`` is the per-layer round trip (act/norm: ``stage="serial"``).
    """

    in_dram: float = 1.0
    side_in_bits: int = 0
    out_dram_bits: int | None = None
    out_sram_bits: int = 0
    weights_dram: bool = True
    stage: str = "own"


@dataclass(frozen=True)
class Mapping:
    """Cycles and memory traffic of one layer; bit counts are keyed ``ifmap``/``weight``/``ofmap``.

    ``compute_cycles``: the array (or vector unit) busy, fill and drain included, all folds and
    groups. ``stall_cycles``: extra cycles waiting for DRAM. ``utilization``: useful ops over the
    PE-slot capacity (PEs x lanes) of the physical compute cycles, in ``(0, 1]``. ``tile``: the
    buffer tile ``(m_tile, k_tile, n_tile)`` (``(0, 0, 0)`` for vector layers); ``tile_bits``: the
    bits one tile of each operand takes in its buffer (empty for vector layers); with the reduction
    loop outside ``m`` or ``n`` the ofmap entry is every partial sum held across it. ``dataflow``
    and ``loop_order`` (the buffer loops outer to inner, e.g. ``nmk``): how the layer was mapped
    (empty for vector layers). The bit dictionaries are read-only views: memoised mappings are
    shared by every layer of the same shape.
    """

    compute_cycles: int
    stall_cycles: int
    folds: int
    utilization: float
    tile: tuple[int, int, int]
    sram_read_bits: dict[str, int]
    sram_write_bits: dict[str, int]
    dram_read_bits: dict[str, int]
    dram_write_bits: dict[str, int]
    tile_bits: dict[str, int] = field(default_factory=dict)
    dataflow: str = ""
    loop_order: str = ""

    def __post_init__(self) -> None:
        for name in _BIT_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, MappingProxyType):
                object.__setattr__(self, name, MappingProxyType(value))

    @property
    def total_cycles(self) -> int:
        return self.compute_cycles + self.stall_cycles


def map_layer(layer: Layer, acc: Accelerator, *, scalesim: bool = False, flow: Flow | None = None) -> Mapping:
    """Cycles and traffic of ``layer`` on ``acc`` with its tensors where ``flow`` says (None: the
    per-layer round trip); raises :class:`HwsimError` if it cannot map.

    Results are memoised by layer shape, accelerator and flow (networks repeat their blocks) and
    shared (their bit dictionaries are read-only).
    """
    if flow is None:
        flow = Flow(stage="serial") if layer.op in _FUSED else Flow()
    key = (layer_key(layer), acc, scalesim, flow)
    mapped = _CACHE.get(key)
    if mapped is None:
        try:
            mapped = (GemmMapper(layer, acc, flow).map(scalesim) if layer.is_compute
                      else _map_vector(layer, acc, flow))
        except HwsimError as exc:
            raise HwsimError(f"layer {layer.name!r}: {exc}") from None
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.clear()
        _CACHE[key] = mapped
    return mapped


_BIT_FIELDS = ("sram_read_bits", "sram_write_bits", "dram_read_bits", "dram_write_bits", "tile_bits")


def layer_key(layer: Layer) -> tuple:
    """What a layer's mapping depends on: every field but its name and its inputs' names."""
    return tuple(v for f, v in vars(layer).items() if f not in ("name", "inputs"))


_CACHE: dict[tuple, Mapping] = {}
_CACHE_SIZE = 4096


def clear_cache() -> None:
    """Forget memoised mappings (benchmarks use it to time a cold estimate)."""
    _CACHE.clear()


def _bits(**values: int) -> dict[str, int]:
    return {op: values.get(op, 0) for op in _OPERANDS}


def _kib(bits: int) -> str:
    kib = bits / 8192
    return f"{kib:.1f}" if kib >= 0.1 else f"{kib:.2g}"


def _largest(extent: int, unit: int, limit: int) -> int:
    """Largest tile of ``extent`` that is ``extent`` itself or a multiple of ``unit``, <= ``limit``."""
    return extent if limit >= extent else limit // unit * unit


def _pieces(extent: int, tile: int) -> list[tuple[int, int]]:
    """``(size, count)`` of the tiles cutting ``extent``: full tiles, then the remainder."""
    full, rest = divmod(extent, tile)
    return [(tile, full)] + ([(rest, 1)] if rest else [])


def _representatives(count: int) -> list[tuple[int, int]]:
    """``(index, multiplicity)`` standing for ``0 .. count-1``: the ends, one interior index.

    A tile's stall term depends on its neighbours only through "first", "last" and "next is last"
    along each loop, so all interior indices have the same term.
    """
    ends = sorted({0, count - 2, count - 1} & set(range(count)))
    interior = count - len(ends)
    return [(i, 1) for i in ends] + ([(1, interior)] if interior else [])


@dataclass(frozen=True)
class Plan:
    """A buffer tiling: tile sizes and tile counts over ``m``, ``k``, ``n``, and the loop order."""

    size: dict[str, int]
    count: dict[str, int]
    order: tuple[str, str, str]

    @functools.cached_property
    def moving(self) -> tuple[str, ...]:
        """The loops of ``order`` with more than one tile (the others do not move anything)."""
        return tuple(d for d in self.order if self.count[d] > 1)

    def inside(self, loop: str, extent: dict[str, int]) -> dict[str, int]:
        """Extents of the data that the loops inside ``loop`` touch: whole along the moving
        loops inside it, one tile along the others."""
        inner = self.moving[self.moving.index(loop) + 1:] if loop in self.moving else ()
        return {d: extent[d] if d in inner else self.size[d] for d in "mkn"}


class GemmMapper:
    """The GEMM of one compute layer on one accelerator, and the costs of tiling it."""

    def __init__(self, layer: Layer, acc: Accelerator, flow: Flow) -> None:
        if layer.groups <= 0 or layer.in_ch % layer.groups or layer.out_ch % layer.groups:
            raise HwsimError(f"groups={layer.groups} must divide in_ch={layer.in_ch} "
                             f"and out_ch={layer.out_ch}")
        groups, m, k, n = layer.gemm
        if min(m, k, n) <= 0:
            raise HwsimError(f"empty GEMM (M={m}, K={k}, N={n}); check its shape")
        if layer.act_bits <= 0 or layer.weight_bits <= 0:
            raise HwsimError(f"act_bits and weight_bits must be positive, "
                             f"not {layer.act_bits} and {layer.weight_bits}")
        arr = acc.array
        self.layer, self.acc = layer, acc
        self.rows, self.cols, self.dataflow = arr.rows, arr.cols, arr.dataflow
        self.overlap = arr.fold_overlap
        self.lanes = lanes_per_pe(layer.pe, arr.lanes)
        # Depthwise mode: the groups side by side on the columns, each column its own input.
        self.channel_parallel = uses_channel_parallel(layer, acc)
        self.n_per_group = n
        if self.channel_parallel:
            groups, n = 1, groups * n
        self.groups = groups
        self.dims = {**_DIMS, "ifmap": ("m", "k", "n") if self.channel_parallel else ("m", "k")}
        self.extent = {"m": m, "k": math.ceil(k / self.lanes), "n": n}
        self.psum_bits = acc.psum_bits(layer.pe, layer.act_bits, k)
        weight_bits = acc.stored_weight_bits(layer.pe, layer.weight_bits)
        self.word_bits = {"ifmap": layer.act_bits * self.lanes, "weight": weight_bits * self.lanes,
                          "ofmap": self.psum_bits}
        # DRAM footprint of one group: the input pixels the conv reads (not the im2col view, not
        # the pixels a stride skips), the weights and the outputs, as far as not held on chip.
        out = layer.out_elems * layer.act_bits if flow.out_dram_bits is None else flow.out_dram_bits
        self.dram = {"ifmap": _input_bits(layer) * flow.in_dram / groups,
                     "weight": layer.weight_elems * weight_bits / groups if flow.weights_dram else 0,
                     "ofmap": out / groups}
        self.out_sram_bits = flow.out_sram_bits
        on_rows, on_cols, _ = LAYOUT[self.dataflow]
        self.side = {on_rows: self.rows, on_cols: self.cols}
        self.unit = {d: self.side.get(d, 1) for d in "mkn"}
        self._schedules: dict[tuple[int, int, int], Schedule] = {}
        self._fits: dict[tuple[int, int, int], bool] = {}
        self._capacity = {op: int(acc.sram_kib(op) * 8192) for op in _OPERANDS}
        self.shared = acc.memory.global_buffer_kib > 0  # one SRAM for the three operands' tiles
        # Constants of the raw-row ifmap tile (see ifmap_tile_bits): rows and columns the taps span.
        kh, kw = layer.extent
        self._cin, self._k_elems, self._macs = layer.in_ch // layer.groups, k, layer.macs
        self._rows_out = layer.batch * layer.out_h
        self._raw_rows = layer.batch * _used(layer.in_h, layer.out_h, kh, layer.stride[0])
        self._row_bits = _used(layer.in_w, layer.out_w, kw, layer.stride[1]) * layer.act_bits
        self._stalls: dict[tuple, int] = {}

    # -- per-tile costs ------------------------------------------------------------------------

    def tile_schedule(self, mt: int, kt: int, nt: int) -> Schedule:
        """Default-mode schedule of one ``mt x kt x nt`` tile of one group."""
        key = (mt, kt, nt)
        if key not in self._schedules:
            self._schedules[key] = compute_cycles(mt, kt, nt, self.rows, self.cols, self.dataflow,
                                                  pe_pipeline=PIPELINE_CYCLES, overlap=self.overlap)
        return self._schedules[key]

    def tile_compute(self, mt: int, kt: int, nt: int) -> int:
        """Cycles the array spends on one tile: all its folds, or with overlapped folds their
        periods only (the one fill and drain of the layer is added by :meth:`plan_compute`)."""
        sched = self.tile_schedule(mt, kt, nt)
        return sched.folds * sched.period_cycles if self.overlap else sched.cycles

    def plan_compute(self, size: dict[str, int]) -> int:
        """Default-mode cycles of all tiles of all groups."""
        e, s = self.extent, size
        busy = self.groups * sum(mc * kc * nc * self.tile_compute(mp, kp, np_)
                                 for mp, mc in _pieces(e["m"], s["m"])
                                 for kp, kc in _pieces(e["k"], s["k"])
                                 for np_, nc in _pieces(e["n"], s["n"]))
        if not self.overlap:
            return busy
        first = self.tile_schedule(s["m"], s["k"], s["n"])
        return busy + first.fold_cycles - first.period_cycles

    def resident(self, plan: Plan, op: str) -> set[str]:
        """Loops of ``plan`` that do not index ``op`` and leave it in its buffer: the data of
        ``op`` that the loops inside one of them touch fits the buffer whole, so it is loaded on
        the loop's first iteration and reused on the others."""
        return {d for d in plan.moving if d not in self.dims[op]
                and self.tile_bits(op, plan.inside(d, self.extent)) <= self.capacity(op, plan)}

    def held_bits(self, op: str, plan: Plan) -> int:
        """Bits of buffer ``op`` takes under ``plan``: one tile, or for the ofmap with the reduction
        loop outside ``m`` or ``n`` every partial sum the loops inside it leave open."""
        if op == "ofmap" and "k" in plan.moving:
            return self.tile_bits(op, plan.inside("k", self.extent))
        return self.tile_bits(op, plan.size)

    def holds_psums(self, plan: Plan) -> bool:
        """Whether the ofmap buffer holds the partial sums ``plan``'s loop order leaves open (they
        never go to DRAM: a plan whose partial sums do not fit is refused)."""
        return self.held_bits("ofmap", plan) <= self.capacity("ofmap", plan)

    def dram_passes(self, plan: Plan) -> dict[str, int]:
        """How often each input tensor is read from DRAM under ``plan``'s loop order.

        A tile stays in its buffer while only loops that do not index it advance, so the tensor
        is re-read once per iteration of the non-indexing loops outside the innermost loop that
        indexes it (counting only loops with more than one tile), unless it stays resident across
        such a loop (:meth:`resident`).
        """
        count, moving = plan.count, plan.moving
        passes = {}
        for op in ("ifmap", "weight"):
            dims = self.dims[op]
            last = max((i for i, d in enumerate(moving) if d in dims), default=-1)
            kept = self.resident(plan, op)
            passes[op] = math.prod(count[d] for d in moving[:last + 1] if d not in dims and d not in kept)
        return passes

    def dram_read(self, plan: Plan) -> int:
        passes = self.dram_passes(plan)
        return sum(self.dram[op] * passes[op] for op in ("ifmap", "weight"))

    # -- choosing the tiling -------------------------------------------------------------------

    def ifmap_tile_bits(self, size: dict[str, int]) -> int:
        """Bits of ifmap buffer an ``m x k (x n)`` tile needs: the raw input rows its output
        pixels read, halo included, of the channels its reduction (or, channel-parallel, its
        columns) covers, as the on-the-fly im2col walker reads them -- or the im2col view when
        that is smaller (a strided 1x1 conv loads only the pixels it uses)."""
        layer = self.layer
        taps = layer.kernel[0] * layer.kernel[1]
        kh = layer.extent[0]
        mt = size["m"]
        if self.channel_parallel:
            channels = -(-size["n"] // self.n_per_group) * self._cin
            im2col = mt * taps * channels * layer.act_bits
        else:
            k_elems = min(self._k_elems, size["k"] * self.lanes)
            channels = min(self._cin, -(-k_elems // taps))
            im2col = mt * size["k"] * self.word_bits["ifmap"]
        rows_out = self._rows_out
        if mt < self.extent["m"]:
            rows_out = min(rows_out, -(-mt // layer.out_w) + (1 if mt % layer.out_w else 0))
        sh = layer.stride[0]
        raw_rows = min(self._raw_rows, rows_out * min(kh, sh) + max(0, kh - sh))
        return min(raw_rows * self._row_bits * channels, im2col)

    def tile_bits(self, op: str, size: dict[str, int]) -> int:
        if op == "ifmap":
            return self.ifmap_tile_bits(size)
        return math.prod(size[d] for d in self.dims[op]) * self.word_bits[op]

    def capacity(self, op: str, plan: Plan | None = None) -> int:
        """Bits of SRAM operand ``op`` may use: its buffer, or in a shared global buffer what the
        other operands' tiles (:meth:`held_bits`) of ``plan`` leave."""
        if not self.shared or plan is None:
            return self._capacity[op]
        return self._capacity[op] - sum(self.held_bits(other, plan) for other in _OPERANDS if other != op)

    def fits(self, size: dict[str, int]) -> bool:
        key = (size["m"], size["k"], size["n"])
        found = self._fits.get(key)
        if found is None:
            cap, wb = self._capacity, self.word_bits
            if self.shared:
                found = self._fits[key] = sum(self.tile_bits(op, size) for op in _OPERANDS) <= cap["ifmap"]
                return found
            found = self._fits[key] = (
                key[1] * key[2] * wb["weight"] <= cap["weight"] and key[0] * key[2] * wb["ofmap"] <= cap["ofmap"]
                and self.ifmap_tile_bits(size) <= cap["ifmap"])
        return found

    def largest(self, dim: str, size: dict[str, int]) -> int:
        """The largest tile along ``dim`` (``extent`` or a multiple of the array side) with which
        ``size`` still fits every buffer; ``size[dim]`` itself is assumed to fit."""
        extent, unit = self.extent[dim], self.unit[dim]
        if self.fits({**size, dim: extent}):
            return extent
        lo, hi = max(1, size[dim] // unit), extent // unit  # multiples of unit: lo fits, hi may not
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.fits({**size, dim: mid * unit}):
                lo = mid
            else:
                hi = mid - 1
        return lo * unit

    def balanced(self, dim: str, tile: int) -> int:
        """The smallest tile along ``dim`` (a multiple of the array side) that cuts it into as few
        pieces as ``tile`` does: equal pieces instead of full ones and a short remainder."""
        return min(tile, self.cut(dim, -(-self.extent[dim] // tile)))

    def cut(self, dim: str, pieces: int) -> int:
        """The smallest tile along ``dim`` (``extent``, or a multiple of the array side) that cuts it
        into at most ``pieces`` pieces."""
        extent, unit = self.extent[dim], self.unit[dim]
        return extent if pieces <= 1 else min(extent, -(-extent // pieces // unit) * unit)

    def tile_grid(self, dim: str) -> list[int]:
        """Every tile along ``dim`` that is the smallest for its number of pieces (:meth:`cut`):
        the divisors of the extent (in array sides) where they exist, else the nearly equal cuts;
        largest first."""
        extent, unit = self.extent[dim], self.unit[dim]
        return sorted({self.cut(dim, p) for p in range(1, -(-extent // unit) + 1)}, reverse=True)

    def reduction_tile(self, m0: int, n0: int) -> int:
        """``K`` if a one-fold tile with the whole reduction fits, else the largest that does.

        Raises :class:`HwsimError` naming the first buffer that cannot hold even the smallest tile.
        """
        k = self.extent["k"]
        smallest = {"m": m0, "k": min(k, self.unit["k"]), "n": n0}
        if self.shared and not self.fits(smallest):
            need = " + ".join(f"{op} {_kib(self.tile_bits(op, smallest))}" for op in _OPERANDS)
            raise HwsimError(f"global buffer of {self.acc.memory.global_buffer_kib:g} KiB cannot hold one "
                             f"fold's tiles ({need} KiB); raise memory.global_buffer_kib")
        for op in _OPERANDS:
            need = self.tile_bits(op, smallest)
            if need > self.capacity(op):
                shape = "x".join(str(smallest[d] * (self.lanes if d == "k" else 1)) for d in self.dims[op])
                what = (f"one {shape} tile of {self.psum_bits}-bit partial sums" if op == "ofmap"
                        else f"one {shape} {op} tile")
                kib = getattr(self.acc.memory, f"{op}_sram_kib")
                raise HwsimError(f"{op} buffer of {kib:g} KiB cannot hold "
                                 f"{what} ({_kib(need)} KiB); raise memory.{op}_sram_kib")
        return self.largest("k", smallest)

    def plan(self, size: dict[str, int], order: tuple[str, ...]) -> Plan:
        """The tiling of the GEMM into tiles of ``size`` visited in loop ``order`` (outer first)."""
        return Plan(size, {d: -(-self.extent[d] // size[d]) for d in "mkn"}, order)

    def choose(self) -> Plan:
        """The tiling with the least DRAM traffic, then the fewest cycles (stalls included), then the
        largest tile."""
        unit, extent = self.unit, self.extent
        m0, n0 = min(extent["m"], unit["m"]), min(extent["n"], unit["n"])
        kt = self.reduction_tile(m0, n0)
        shapes = set()
        nt = self.largest("n", {"m": m0, "k": kt, "n": n0})
        shapes.add((self.largest("m", {"m": m0, "k": kt, "n": nt}), nt))
        mt = self.largest("m", {"m": m0, "k": kt, "n": n0})
        shapes.add((mt, self.largest("n", {"m": mt, "k": kt, "n": n0})))
        shapes |= {(self.balanced("m", mt), self.balanced("n", nt)) for mt, nt in shapes}
        plans = {}
        for mt, nt in sorted(shapes):
            for order in (("n", "m", "k"), ("m", "n", "k")):  # the same plan when m or n is one tile
                plan = self.plan({"m": mt, "k": kt, "n": nt}, order)
                plans.setdefault((mt, nt, plan.moving), plan)
        traffic = {key: self.dram_read(plan) for key, plan in plans.items()}
        least = min(traffic.values())
        # Among the least-traffic plans, fewest cycles: compute cycles bound the total from below,
        # so stalls are worked out only for plans that can still win.
        best, best_key = None, None
        for compute, key in sorted((self.plan_compute(plans[key].size), key) for key in plans
                                   if traffic[key] == least):
            rank = (compute, -key[0] * key[1])
            if best is not None and rank >= best:
                break
            total = (compute + self.stall_cycles(plans[key]), -key[0] * key[1])
            if best is None or total < best:
                best, best_key = total, key
        return plans[best_key]

    # -- stalls ----------------------------------------------------------------------------------

    def stall_cycles(self, plan: Plan) -> int:
        """DRAM stalls of the double-buffered tile pipeline (see the module docstring), memoised
        per plan (:meth:`choose` ranks by them, :meth:`map` reports them)."""
        key = (tuple(plan.size.values()), plan.order)
        if key not in self._stalls:
            self._stalls[key] = self._stall_cycles(plan)
        return self._stalls[key]

    def _stall_cycles(self, plan: Plan) -> int:
        """Loop levels are ``(groups, *plan.order)``; a tile is a tuple of one index per level."""
        count, size, extent = plan.count, plan.size, self.extent
        levels = ("g", *plan.order)
        n = (self.groups, *(count[d] for d in plan.order))
        full = (1, *(size[d] for d in plan.order))
        last = (1, *(extent[d] - (count[d] - 1) * size[d] for d in plan.order))
        # Per operand: the levels indexing it, its DRAM bits per unit of tile volume, and the
        # levels that must all be at their first iteration for its tile to be (re)loaded: those
        # inside the innermost moving level that indexes it (groups index every operand), and
        # the outer ones it stays resident across.
        terms = []
        for op in _OPERANDS:
            uses = tuple(j for j in (1, 2, 3) if levels[j] in self.dims[op])
            moving = [j for j in range(4) if n[j] > 1 and (j == 0 or j in uses)]
            kept = self.resident(plan, op) if op != "ofmap" else set()
            reload = tuple(sorted({*range(max(moving, default=-1) + 1, 4),
                                   *(levels.index(d) for d in kept)}))
            terms.append((uses, self.dram[op] / math.prod(extent[d] for d in self.dims[op]), reload))
        inputs, (out_uses, out_unit, _) = terms[:2], terms[2]
        k_level = levels.index("k")
        at_mkn = tuple(levels.index(d) for d in "mkn")

        def volume(uses: tuple[int, ...], at: tuple[int, ...]) -> int:
            v = 1
            for j in uses:
                v *= last[j] if at[j] == top[j] else full[j]
            return v

        def load(at: tuple[int, ...]) -> float:
            bits = 0.0
            for uses, unit, reload in inputs:
                if not any(at[j] for j in reload):
                    bits += unit * volume(uses, at)
            return bits

        def write(at: tuple[int, ...]) -> float:
            return out_unit * volume(out_uses, at) if at[k_level] == top[k_level] else 0.0

        top = tuple(c - 1 for c in n)
        bits_per_cycle = self.acc.dram_bytes_per_cycle * 8
        first, final = (0, 0, 0, 0), top
        first_folds, last_folds = (self.tile_schedule(*[(last if at[j] == top[j] else full)[j] for j in at_mkn]).folds
                                   for at in (first, final))
        stalled = load(first) / first_folds + write(final) / last_folds
        combos = [((), 1)]
        for count_j in n:
            combos = [(at + (i,), mult * m) for at, mult in combos for i, m in _representatives(count_j)]
        for at, mult in combos:
            moved = 0.0
            # The next tile advances the innermost level not at its end and resets the inner ones;
            # the previous tile steps back the innermost level not at its start, inner ones at end.
            for j in (3, 2, 1, 0):
                if at[j] < top[j]:
                    moved += load(at[:j] + (at[j] + 1,) + (0, 0, 0)[j:])
                    break
            for j in (3, 2, 1, 0):
                if at[j] > 0:
                    moved += write(at[:j] + (at[j] - 1,) + top[j + 1:])
                    break
            if at == first:  # the rest of the first tile streams in under its own folds
                moved += load(first) * (1 - 1 / first_folds)
            if at == final:
                moved += write(final) * (1 - 1 / last_folds)
            excess = moved - bits_per_cycle * self.tile_compute(
                *[last[j] if at[j] == top[j] else full[j] for j in at_mkn])
            if excess > 0:
                stalled += mult * excess
        return max(0, math.ceil(stalled / bits_per_cycle - 1e-9))

    # -- the mapping -----------------------------------------------------------------------------

    def ifmap_reads(self, folds: dict[str, int]) -> int:
        """SRAM bits of ifmap the array demands. A GEMM reads its im2col tile once per column fold.
        Channel-parallel, a column's channel comes through a ``kw``-tap shift register per kernel
        row: a fold of ``m_f`` output pixels reads ``(m_f - 1) * stride + kw`` input pixels per
        kernel row and input channel, one segment per fold (at least one per output row)."""
        if not self.channel_parallel:
            return self.groups * self.extent["m"] * self.extent["k"] * self.word_bits["ifmap"] * folds["n"]
        layer = self.layer
        kh, kw = layer.kernel[0], layer.extent[1]  # kernel rows read, columns the taps span
        m = self.extent["m"]
        segments = min(m, max(layer.batch * layer.out_h, -(-m // self.rows) if self.dataflow == "os" else 0))
        pixels = (m - segments) * layer.stride[1] + segments * kw
        return layer.out_ch * (layer.in_ch // layer.groups) * kh * pixels * layer.act_bits

    def map(self, scalesim: bool = False) -> Mapping:
        """The fixed mapper: :meth:`choose`'s plan."""
        return self.mapping(self.choose(), scalesim)

    def mapping(self, plan: Plan, scalesim: bool = False, *, bound: str = "") -> Mapping:
        """Cycles and traffic of ``plan``, or lower bounds that :mod:`hwsim.mapper` prunes with, each
        weaker than the one before: ``bound="plan"``, without the stalls; ``"size"``, for every loop
        order of the plan's tile sizes: also each input read from DRAM once and the ofmap buffer
        holding one tile; ``"k"``, for every reduction tile up to the plan's too: the compute
        cycles of the whole reduction but for one fold's fill (:meth:`plan_compute`: more pieces
        never take fewer cycles, but a first tile shorter than ``rows`` overlaps its fill by up to
        ``rows``), the partial sums of the plan's (longest) reduction tile and the buffer tiles
        of the shortest."""
        g, (m, k, n) = self.groups, (self.extent[d] for d in "mkn")
        physical = self.plan_compute(plan.size)
        tile = plan.size
        if bound == "k":
            whole = self.plan_compute({**plan.size, "k": k}) - (self.rows if self.overlap else 0)
            physical = max(1, min(physical, whole))
            tile = {**plan.size, "k": min(k, self.unit["k"])}
        if scalesim:  # SCALE-Sim's count of the layer as written: one GEMM per group
            g0, m0, k0, n0 = self.layer.gemm
            reported = compute_cycles(m0, math.ceil(k0 / self.lanes), n0, self.rows, self.cols, self.dataflow,
                                      groups=g0, scalesim=True).cycles
        else:
            reported = physical
        # Array folds along each GEMM dimension: spatial ones cut by the array, streamed by tiles.
        count = plan.count
        folds = {d: math.ceil(self.extent[d] / self.side[d]) if d in self.side else count[d] for d in "mkn"}
        wb = self.word_bits
        # Partial sums leave the array once per fold along K; all but the last pass through the
        # ofmap buffer (a write, then a read to continue). The outputs leave through the output
        # stage: into activation storage, or staged in the ofmap buffer on their way to DRAM.
        psums = g * m * n * wb["ofmap"] * (folds["k"] - 1)
        out_dram = round(g * self.dram["ofmap"])
        passes = {"ifmap": 1, "weight": 1} if bound in ("size", "k") else self.dram_passes(plan)
        dram_in = {op: round(g * self.dram[op] * passes[op]) for op in ("ifmap", "weight")}
        return Mapping(
            compute_cycles=reported,
            stall_cycles=0 if bound else self.stall_cycles(plan),
            folds=g * folds["m"] * folds["k"] * folds["n"],
            utilization=self._macs / (self.rows * self.cols * self.lanes * physical),
            tile=(plan.size["m"], min(plan.size["k"] * self.lanes, self._k_elems), plan.size["n"]),
            sram_read_bits=_bits(ifmap=self.ifmap_reads(folds),
                                 weight=g * k * n * wb["weight"] * folds["m"], ofmap=psums + out_dram),
            sram_write_bits=_bits(ifmap=dram_in["ifmap"] + self.out_sram_bits, weight=dram_in["weight"],
                                  ofmap=psums + out_dram),
            dram_read_bits=_bits(**dram_in),
            dram_write_bits=_bits(ofmap=out_dram),
            tile_bits={op: self.tile_bits(op, tile) if bound in ("size", "k") else self.held_bits(op, plan)
                       for op in _OPERANDS},
            dataflow=self.dataflow, loop_order="".join(plan.order),
        )


def uses_channel_parallel(layer: Layer, acc: Accelerator, dataflow: str | None = None) -> bool:
    """Whether compute ``layer`` runs in the depthwise mode of ``acc``'s array (in ``dataflow``, by
    default the array's): a grouped conv with fewer filters per group than columns, on an ``os``
    or ``ws`` array with the mode on."""
    arr = acc.array
    groups, _, _, n = layer.gemm
    return (arr.depthwise == "channel_parallel" and groups > 1 and n < arr.cols
            and (dataflow or arr.dataflow) != "is")


def _used(size: int, out: int, kernel: int, stride: int, dilation: int = 1) -> int:
    """Input rows (columns) of ``size`` that ``out`` output rows with this kernel (its span, for
    ``dilation`` 1), stride and dilation read: all of them unless the stride skips some
    (``kernel < stride``); dilated, the rows some tap lands on, counted."""
    if dilation == 1:
        return min(size, out * min(kernel, stride) + max(0, kernel - stride))
    return min(size, len({o * stride + tap * dilation for o in range(out) for tap in range(kernel)}))


def _input_bits(layer: Layer) -> int:
    """Bits of the input a compute layer reads: every channel of the rows and columns it uses."""
    used = [_used(size, out, k if d == 1 else taps, s, d) for size, out, k, taps, s, d in
            zip((layer.in_h, layer.in_w), (layer.out_h, layer.out_w), layer.extent, layer.kernel,
                layer.stride, layer.dilation)]
    return layer.batch * layer.in_ch * used[0] * used[1] * layer.act_bits


def _map_vector(layer: Layer, acc: Accelerator, flow: Flow) -> Mapping:
    """Vector work: element ops on ``acc.vector_lanes`` lanes, its tensors where ``flow`` says."""
    if layer.op not in VECTOR_OPS:
        raise HwsimError(f"unknown op {layer.op!r}; "
                         f"expected one of conv, linear, {', '.join(VECTOR_OPS)}")
    ops = layer.vector_ops
    if ops <= 0 or layer.act_bits <= 0:
        raise HwsimError(f"{layer.op} needs a non-empty output and positive "
                         f"act_bits; got {layer.out_elems} elements at {layer.act_bits} bits")
    lanes = acc.vector_lanes
    compute = math.ceil(ops / lanes)
    out = layer.out_elems * layer.act_bits
    utilization = ops / (lanes * compute)
    if flow.stage == "serial":
        return Mapping(compute_cycles=compute, stall_cycles=0, folds=0, utilization=utilization,
                       tile=(0, 0, 0), sram_read_bits=_bits(ofmap=out), sram_write_bits=_bits(ofmap=out),
                       dram_read_bits=_bits(), dram_write_bits=_bits())
    if flow.stage == "fused":  # the stream is free; side inputs come from storage
        side, out, out_buffer = flow.side_in_bits, 0, 0
        reads = side
    else:
        side = (2 if layer.op in _TWO_INPUTS else 1) * layer.in_elems * layer.act_bits
        reads = side // layer.in_elems * ops if layer.in_elems else 0
        out_buffer = out
        out = out if flow.out_dram_bits is None else flow.out_dram_bits
    dram_in = round(side * flow.in_dram)
    dram_cycles = math.ceil((dram_in + out) / (acc.dram_bytes_per_cycle * 8) - 1e-9)
    return Mapping(
        compute_cycles=compute, stall_cycles=max(0, dram_cycles - compute), folds=0,
        utilization=utilization, tile=(0, 0, 0),
        sram_read_bits=_bits(ifmap=reads, ofmap=out),
        sram_write_bits=_bits(ifmap=dram_in, ofmap=out_buffer),
        dram_read_bits=_bits(ifmap=dram_in), dram_write_bits=_bits(ofmap=out),
    )
