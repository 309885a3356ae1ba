"""The network accelerator's memory rules and exact cycles (``rtl.sequencer``; pure Python).

One definition of the rules the RTL (:mod:`rtl.axi`, :mod:`rtl.dma`, :mod:`rtl.sequencer`), the
host (:mod:`rtl.netprog`) and this cycle model share: the bus (:data:`BUS_BYTES`), the burst rule
(:func:`burst_words`), the beat slots (:func:`slot_bytes`), the command ops and store modes, and
the :class:`Command` list.

:func:`sequence_cycles` counts the cycles of a command list, from the rising edge that takes
``i_start`` (edge 0) to the first rising edge that samples ``o_done`` high (the END's DISPATCH
sets the register at its edge; it is sampled one edge later), with a memory that takes a read
address in any cycle (at least :data:`MAX_OUTSTANDING` in flight), answers the bursts in order,
each from ``latency`` cycles after its address or after the burst before, whichever is later,
one word a cycle, and acknowledges each write ``write_latency`` cycles after its data, always
available. The sequencer runs one command at a time, so the count is a sum of spans, each
derived from the RTL's registers, the next command's fetch overlapping each:

* every command: its address goes out in the cycle after the command before was dispatched (the
  first: the cycle after the start), its bus words (two on a 64-bit bus, else one) from
  ``latency`` cycles later; ``COMMAND`` takes it from the cycle after its last word, once the
  command before is done, ``DISPATCH`` follows, and the command's transfer starts the cycle
  after; ``END``'s ``DISPATCH`` raises ``o_done``;
* a read transfer (:func:`read_span`): the next command's words come first on the read channel
  and its burst counts toward :data:`MAX_OUTSTANDING`; a setup cycle, then bursts of
  :func:`burst_words` words, the first address the cycle after the setup, each next one the
  cycle after the one before, but not before the cycle after the last word of the burst
  :data:`MAX_OUTSTANDING` before it arrived; a narrow slot's word is taken as its last beat
  leaves (the memory holds the next), a wide beat is offered the cycle after its last word (from
  an address inside a bus word: one word more is read, and each word of the beat is complete
  when the word after it arrived); each beat reaches the top the cycle after (the DMA's output
  register slice) and the transfer ends the cycle after its last beat is taken (its ``o_busy``
  is registered) -- the layer top takes every beat in the cycle it is offered, since its load
  phases wait on the DMA;
* the top (``rtl.top``): the run side takes a tile in the cycle after its last ACTS beat
  (:data:`contract.HAND_CYCLES`), or the cycle after the tile before left FLUSH, or the
  geometry's wait, whichever is last
  (:func:`hwsim.rtl_timing.overlapped_total` without the memory); the load side takes the next
  descriptor from the cycle after the take -- a DESC read earlier waits; a RESID is dispatched
  from the cycle after the take; FLUSH ends ``compute + drain`` cycles
  (:func:`hwsim.rtl_timing.plan_cycles`) after the take, or after the last RESID beat; a tile
  hands its bank to the store engine then, or once the engine has given the last result of the
  store before (the cycle that result is taken);
* a store (:func:`store_span`): the store engine offers the tile's first result three cycles after
  the hand-over and the next one the cycle after each is taken; the write DMA queues up to two
  kept beats (one being written) and takes a beat whenever the queue has room (the older beat's
  last word is written by the cycle before), writes each bus word a beat touches in the cycles
  after its take and the beat before's last word (address and data together, one a cycle; a
  beat a cycle when each fits one word), skips a scattered row past the layer's pixels in the
  take cycle, and is done the cycle after both its last beat and the last write response
  (``write_latency`` after the last word);
* a K tile that writes partial sums (``hwsim.rtl_plan``) stores nothing: its STORE is empty.

The commands of a tile's store may come after the next tile's loads (:func:`pipelined`, as
``rtl.netprog`` and :func:`layer_commands` order them): the model then follows each tile from
its DESC (which carries its plan) to its STORE.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from typing import TYPE_CHECKING

from contract import FETCH_CYCLES, GEOMETRY_CYCLES, HAND_CYCLES
from hwsim.errors import ConfigError
from hwsim.rtl_plan import LayerPlan, LayerShape, Tile, TopGeometry, descriptor_bits, top_geometry
from hwsim.rtl_timing import plan_cycles, tile_layer

if TYPE_CHECKING:
    from hwsim.accelerator import Accelerator
    from hwsim.workload import Layer

__all__ = ["ADDR_BITS", "BOUNDARY_BYTES", "BUS_BITS", "BUS_BYTES", "COMMAND_BYTES", "MAX_BURST",
           "MAX_OUTSTANDING", "PAGE_BYTES", "SLICE_CYCLES", "Command", "Op", "StoreMode", "beat_widths",
           "burst_words", "layer_commands", "layer_sequence_cycles", "pipelined", "read_span", "sequence_cycles", "slot_bytes",
           "store_span", "tiles_sequence_cycles"]

#: Default data bus width (``rtl.bus_bits``): one 64-bit beat per cycle (a Zynq HP port, a DDR3
#: x64 DIMM); 128, 256 and 512 are built too.
BUS_BITS = 64
BUS_BYTES = BUS_BITS // 8
#: Byte address width.
ADDR_BITS = 32
#: Longest read burst issued (AXI4 allows 256 INCR beats; 16 keeps AXI3 slaves working too).
MAX_BURST = 16
#: Cycles a read beat spends in the read DMA's output register slice (``rtl.dma``).
SLICE_CYCLES = 1

#: Read bursts the read DMA keeps in flight (addresses issued, last word not yet arrived; one AXI
#: ID, so in order). A burst's address goes out the cycle after the last word of the burst this
#: many before it arrived, so a long read streams at a word a cycle while the memory latency is
#: at most ``(MAX_OUTSTANDING - 1) * MAX_BURST`` cycles (48: a DDR controller behind an
#: interconnect answers in some 10 to 40); more only costs slave acceptance and counter bits.
MAX_OUTSTANDING = 4
#: A burst never crosses an address that is a multiple of this (AXI A3.4.1).
BOUNDARY_BYTES = 4096
#: Bytes of one command in memory (two 64-bit words).
COMMAND_BYTES = 16
#: Every region the host lays out starts on a page of this many bytes (``rtl.netprog``).
PAGE_BYTES = BOUNDARY_BYTES


class Op(enum.IntEnum):
    """A command's operation; the read ops are also the read DMA's targets (0: the command)."""

    END = 0
    DESC = 1
    PARAMS = 2
    WEIGHTS = 3
    ACTS = 4
    RESID = 5
    STORE = 6


class StoreMode(enum.IntEnum):
    """How the write DMA places result beats (``rtl.dma``)."""

    RAW = 0
    BYTES = 1
    BITS = 2


def burst_words(word_addr: int, words_left: int, bus_bytes: int = BUS_BYTES) -> int:
    """Words of the next read burst from bus word ``word_addr`` with ``words_left`` to read: at
    most :data:`MAX_BURST`, and none past the next 4 KiB boundary."""
    per_page = BOUNDARY_BYTES // bus_bytes
    return min(MAX_BURST, words_left, per_page - word_addr % per_page)


def slot_bytes(width: int, bus_bits: int = BUS_BITS) -> int:
    """Bytes a ``width``-bit beat takes in memory: the smallest power of two holding it up to a
    bus word (so ``bus bytes / slot`` beats share a word), else whole bus words."""
    if width <= bus_bits:
        return 1 << max(0, (-(-width // 8) - 1).bit_length())
    return -(-width // bus_bits) * (bus_bits // 8)


@dataclass(frozen=True)
class Command:
    """One command (``rtl.sequencer``). A ``DESC`` carries the ``plan`` of its tile (for the cycle
    model: its compute time and whether it stores), a ``STORE`` that of the tile whose results it
    stores (its fold order)."""

    op: Op
    beats: int = 0
    addr: int = 0
    mode: StoreMode = StoreMode.RAW
    pstride: int = 0
    gstride: int = 0
    pixels: int = 0
    plan: LayerPlan | None = None


def read_span(addr: int, beats: int, slot: int, latency: int, bus_bytes: int = BUS_BYTES,
              ahead: int | None = None) -> tuple[int, int]:
    """Cycles of a read transfer from its first cycle to the sequencer's next ``COMMAND``
    (exclusive), and the offset of its last beat (-1 without beats); ``ahead``: the cycle the
    last word of a burst in flight ahead of the transfer's (the next command's) is taken, which
    counts toward :data:`MAX_OUTSTANDING`. See the module docstring."""
    if beats == 0:
        return 2, -1  # the setup cycle, then o_busy low
    first_word = addr // bus_bytes
    if slot < bus_bytes:
        per_word = bus_bytes // slot
        lane0 = addr % bus_bytes // slot
        counts, left, lane = [], beats, lane0
        while left:
            counts.append(min(per_word - lane, left))
            left -= counts[-1]
            lane = 0
    else:
        counts = [0] * (beats * slot // bus_bytes)  # a beat completes on its slot's last word
        for b in range(beats):
            counts[(b + 1) * slot // bus_bytes - 1] = 1
        if addr % bus_bytes:  # realigned: each word is completed by the next one read
            counts.insert(0, 0)
    # each burst's address the cycle after the one before (the first after the setup cycle), once
    # fewer than MAX_OUTSTANDING are in flight; its words from `latency` after it, in order
    last_beat, issue, taken, word, i = -1, 0, 0 if ahead is None else ahead, first_word, 0
    ends: list[int] = [] if ahead is None else [ahead]  # the cycle each burst's last word was taken
    while i < len(counts):
        n = burst_words(word, len(counts) - i, bus_bytes)
        issue = max(issue + 1, ends[-MAX_OUTSTANDING] + 1 if len(ends) >= MAX_OUTSTANDING else 0)
        offered = max(issue + latency, taken + 1)
        for _ in range(n):
            if slot < bus_bytes:
                taken = max(offered, last_beat)  # held word empty, or its last beat leaving
                last_beat = taken + counts[i]
            else:
                taken = offered
                last_beat = taken + 1 if counts[i] else last_beat
            offered, i = taken + 1, i + 1
        ends.append(taken)
        word += n
    last_beat += SLICE_CYCLES  # the output register slice
    return last_beat + 2, last_beat


def _beat_words(geo: TopGeometry, cmd: Command, result_slot: int, index: int) -> int:
    """Bus words the write DMA writes for result beat ``index`` of ``cmd`` (0: skipped)."""
    rows, cols, bus = geo.rows, geo.cols, geo.bus_bits // 8
    if cmd.mode == StoreMode.RAW:
        start, size = cmd.addr + index * result_slot, result_slot
    else:
        p = cmd.plan
        fold, j = divmod(index, rows)
        row_tile, rest = divmod(fold, p.groups * p.tiles)
        g, t = divmod(rest, p.tiles)
        pixel = row_tile * rows + rows - 1 - j
        if pixel >= cmd.pixels:
            return 0
        chan = g * cmd.gstride + t * cols
        bits = cmd.mode == StoreMode.BITS
        start = cmd.addr + pixel * cmd.pstride + (chan >> 3 if bits else chan)
        size = max(1, cols // 8) if bits else cols
    return (start % bus + size + bus - 1) // bus


def store_span(geo: TopGeometry, cmd: Command, result_slot: int, first_result: int,
               write_latency: int) -> tuple[int, int]:
    """Cycles of a store from its first cycle (0) to the next ``COMMAND`` (exclusive), the top's
    first result offered at ``first_result`` (relative; may be before 0), and the cycle its last
    result is taken (-1 without results)."""
    offered, last_take, last_write = first_result, -1, None
    # the last-word cycles of the last two kept beats (the queue; empty before the store's first
    # cycle, 0, which is the earliest take)
    held = [max(first_result, 0) - 1] * 2
    for index in range(cmd.beats):
        taken = max(held[0] + 1, offered)  # room in the queue: the older one is written
        words = _beat_words(geo, cmd, result_slot, index)
        last_take, offered = taken, taken + 1
        if words:  # written one word a cycle after its take and the beat before
            last_write = max(taken, held[1]) + words
            held = [held[1], last_write]
    done = last_take + 1
    if last_write is not None:
        done = max(done, last_write + write_latency + 1)
    return done + 1, last_take


@dataclass
class _Tile:
    """A tile as the model follows it through the top: its plan (from its DESC), the cycles the
    top took its descriptor and the run side took the tile, the cycle its FLUSH ends, and the
    cycle it hands its bank to the store engine."""

    plan: LayerPlan
    desc: int = 0
    take: int = 0
    flush: int = 0
    handoff: int | None = None

    def hand_over(self, engine_free: int) -> int:
        """The hand-over cycle: the end of FLUSH, or later when the store engine is still busy
        (fixed the first time it is asked: the engine only frees later)."""
        if self.handoff is None:
            self.handoff = max(self.flush, engine_free)
        return self.handoff

    def run_free(self, engine_free: int) -> int:
        """The first cycle the run side is idle after this tile."""
        return (self.hand_over(engine_free) if self.plan.stores else self.flush) + 1


def sequence_cycles(geo: TopGeometry, commands: Sequence[Command], widths: dict[Op, int],
                    result_bits: int, *, latency: int = 1, write_latency: int = 1) -> int:
    """Cycles of ``commands`` (module docstring), the command list at address 0 (its alignment
    matters on a bus wider than a command); ``widths`` are the beat widths of the five read
    targets, ``result_bits`` that of a result beat. Each DESC carries its tile's ``plan``."""
    bus = geo.bus_bits // 8
    words = max(1, COMMAND_BYTES // bus)  # a command's bus words
    tiles: list[_Tile] = []  # DESC'ed, in order
    stored = 0  # tiles whose STORE the list has run
    engine_free = 0  # the store engine takes a bank from this cycle (its last word's take)
    asked, free = 0, 0  # the cycle the command's address goes out, the cycle COMMAND is entered
    for cmd in commands:
        # COMMAND takes it once its words are in, DISPATCH; its transfer runs from t on
        t = max(free, asked + latency + words) + 2
        if cmd.op == Op.END:
            return t + 1
        if cmd.op == Op.RESID:  # DISPATCH waits for the run side's RESID, from the take on
            t = max(t, tiles[-1].take + 2)
        asked = t  # the next command's address, the transfer's first cycle
        if cmd.op == Op.STORE:
            tile = tiles[stored]
            stored += 1
            first = tile.hand_over(engine_free) + FETCH_CYCLES + 1 if tile.plan.stores else 0
            span, last_take = store_span(geo, cmd, slot_bytes(result_bits, geo.bus_bits), first - t,
                                         write_latency)
            if tile.plan.stores:
                engine_free = t + last_take
            free = t + span
            continue
        span, last = read_span(cmd.addr, cmd.beats, slot_bytes(widths[cmd.op], geo.bus_bits), latency, bus,
                               ahead=latency + words - 1)
        if cmd.op == Op.DESC:
            if tiles:  # the load side takes it the cycle after the run side took the last tile
                ready = tiles[-1].take + 1
                if last < ready - t:  # the beat waits for the top
                    span, last = ready - t + 2, ready - t
            tiles.append(_Tile(cmd.plan, desc=t + last))
        if cmd.op in (Op.ACTS, Op.RESID):
            tile = tiles[-1]
            phases = plan_cycles(geo, tile.plan)
            if cmd.op == Op.ACTS:  # the loads are done: the run side takes the tile once idle
                before = tiles[-2].run_free(engine_free) if len(tiles) > 1 else 0
                tile.take = max(t + last + HAND_CYCLES, tile.desc + GEOMETRY_CYCLES + 1, before)
            # RUN follows the take, or the residual's last beat
            tile.flush = max(tile.take, t + last) + phases["compute"] + phases["drain"]
        free = t + span
    raise ValueError("the command list has no END")


def beat_widths(geo: TopGeometry) -> tuple[dict[Op, int], int]:
    """Beat widths (bits) of the five read targets of the top of ``geo``, and of a result beat."""
    words = geo.word_bits
    return ({Op.DESC: descriptor_bits(geo.dim_bits), Op.PARAMS: words["param_words"],
             Op.WEIGHTS: words["weight_words"], Op.ACTS: geo.act_beat_bits, Op.RESID: words["out_words"]},
            words["out_words"])


def pipelined(tiles: Sequence[tuple[list[Command], Command]]) -> list[Command]:
    """Each tile's loads and STORE in the order that overlaps a store with the next tile: the
    loads of tile ``t + 1`` before the STORE of tile ``t`` (the top runs ``t + 1`` while the
    write DMA stores ``t``'s bank)."""
    out: list[Command] = []
    for t, (loads, _) in enumerate(tiles):
        out += loads
        if t:
            out.append(tiles[t - 1][1])
    return out + [tiles[-1][1]] if tiles else out


def layer_commands(geo: TopGeometry, tiles: Sequence[Tile]) -> list[Command]:
    """The commands of one layer run alone: per tile DESC, PARAMS, WEIGHTS, ACTS (and RESID, a
    residual tile's shortcut) from regions the host laid out (each on its own page) and a raw
    STORE, as ``rtl.netprog`` lays out a chain's first and last layer, :func:`pipelined`; no END."""
    widths, result_bits = beat_widths(geo)
    pages, per_tile = 0, []

    def region(beats: int, width: int) -> int:
        nonlocal pages
        start = pages * PAGE_BYTES
        pages += max(1, -(-beats * slot_bytes(width, geo.bus_bits) // PAGE_BYTES))
        return start

    for tile in tiles:
        p = tile.plan
        words = p.words(geo.rows)
        beats = {Op.DESC: 1, Op.PARAMS: words["param_words"], Op.WEIGHTS: words["weight_words"],
                 Op.ACTS: geo.act_beats(words["act_words"])}
        if p.residual:
            beats[Op.RESID] = p.resid_words(geo.rows)
        loads = [Command(op, beats=n, addr=region(n, widths[op]), plan=p if op == Op.DESC else None)
                 for op, n in beats.items()]
        stored = p.folds * geo.rows if p.stores else 0
        per_tile.append((loads, Command(Op.STORE, beats=stored, addr=region(stored, result_bits), plan=p)))
    return pipelined(per_tile)


def tiles_sequence_cycles(geo: TopGeometry, tiles: Sequence[Tile], latency: int) -> dict[str, int]:
    """Cycles of a layer's tiles on the network accelerator (:func:`layer_commands`, memory
    latency ``latency`` for reads and write responses, without the END that closes a run):
    ``total``, and ``compute`` (the layer top's compute phases, :func:`hwsim.rtl_timing.plan_cycles`)."""
    widths, result_bits = beat_widths(geo)
    commands = [*layer_commands(geo, tiles), Command(Op.END)]
    end = sequence_cycles(geo, [Command(Op.END)], widths, result_bits, latency=latency)
    total = sequence_cycles(geo, commands, widths, result_bits, latency=latency, write_latency=latency) - end
    return {"total": total, "compute": sum(plan_cycles(geo, t.plan)["compute"] for t in tiles),
            "tiles": len(tiles)}


def layer_sequence_cycles(layer: Layer, acc: Accelerator) -> dict[str, int]:
    """:func:`tiles_sequence_cycles` of workload ``layer`` tiled as
    :func:`hwsim.rtl_timing.tile_layer` does, at ``acc.rtl.memory_latency`` (at least 1).

    Raises :class:`~hwsim.errors.DoesNotFit` (naming the fix) if the top cannot run it,
    :class:`~hwsim.errors.ConfigError` if no top can be generated for ``acc``."""
    if acc.rtl.memory_latency < 1:
        raise ConfigError("the network accelerator's cycles need rtl.memory_latency of 1 or more")
    geo = top_geometry(acc)
    return tiles_sequence_cycles(geo, tile_layer(geo, LayerShape.of_layer(layer)), acc.rtl.memory_latency)
