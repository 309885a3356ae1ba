"""The network accelerator's two DMA engines on the AXI4 port (:mod:`rtl.axi`).

Memory layout of a stream of ``W``-bit beats (:func:`hwsim.rtl_sequence.slot_bytes`): each beat
takes a slot of ``S`` bytes, the smallest power of two holding it when ``W <= 64`` (so ``8 / S``
beats share a bus word; an int8 activation is one byte), else ``ceil(W / 64)`` whole bus words;
beats follow each other without gaps, the bits of a beat from the slot's first byte up,
little-endian. The timing of both engines is :mod:`hwsim.rtl_sequence`'s model.

* :class:`ReadDMA` reads ``beats`` beats of one target stream from a byte address (a narrow
  stream may start at any multiple of its slot, a wide one at any byte: its words are realigned,
  each completed by the next word read) and offers them on
  ``o_beat``: a setup cycle derives the transfer's bus words from the registered request, then
  bursts of :func:`hwsim.rtl_sequence.burst_words` words, never past the transfer's last word, an
  address a cycle while fewer than :data:`hwsim.rtl_sequence.MAX_OUTSTANDING` bursts are in flight
  (a burst is in flight from its address to its last word, ``rlast``; one ID, answered in order;
  ``i_ahead`` counts another reader's burst on the port, the sequencer's command fetch).
  Buffering: the engine holds one bus word (a narrow slot's word until its last beat is taken;
  a wide beat's words, the word before when realigning) and takes the next word (``rready``) only
  when it has room, so the words of the bursts in flight wait in the slave, which holds ``rvalid``
  and ``rdata`` until ``rready`` (AXI A3.2.1): no read FIFO here, no beat dropped. The beats
  leave through a register slice (:func:`_slice`: a cycle later,
  :data:`hwsim.rtl_sequence.SLICE_CYCLES`; the stream's valid, payload and ready all
  flip-flops). With the layer top, which takes every beat in the cycle it is offered, ``rready``
  only falls while a narrow word's beats leave (one a cycle); a wide beat never stalls the read
  channel.
* :class:`WriteDMA` takes the top's result beats and writes each to memory, one single-beat write
  per bus word it touches (with byte strobes), posted: the write responses are counted and
  ``o_busy`` falls once all came back. The beats wait in a queue of two (the one being written and
  the next), so the result stream's ready is a flip-flop. Three modes (:class:`StoreMode`):
  ``RAW`` writes result beat ``i`` to slot ``i`` (the host unpacks it as :func:`rtl.host.unpack`
  does); ``BYTES`` and ``BITS`` scatter each output pixel's channels into the channels-last
  activation layout of the next layer (one byte per channel, or one bit per channel packed as xnor
  activation words), so a following layer reads them with one linear :class:`ReadDMA` transfer.

Scatter addresses: result beat ``i`` is row ``j = i mod rows`` of fold ``f = i div rows``; the
folds run row tile ``r`` outermost, then group ``g``, then output tile ``t`` (``rtl.top``); its
pixel is ``r * rows + rows - 1 - j`` (rows past the descriptor's ``out_h * out_w`` are not
written) and its lane ``c`` the channel ``t * cols + c`` of group ``g`` (lanes past ``out_ch`` are
not written in ``BYTES``; in ``BITS`` they are written as 0, the padding lanes of an xnor
activation word). The byte address of lane 0 is ``addr + pixel * pstride + (g * gstride + t *
cols)`` for ``BYTES``, and ``addr + pixel * pstride + (g * gstride + t * cols) / 8`` for ``BITS``
(``cols`` and ``gstride`` multiples of 8 there).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from hwsim.rtl_sequence import (ADDR_BITS, BOUNDARY_BYTES, BUS_BITS, MAX_BURST, MAX_OUTSTANDING, StoreMode,
                                slot_bytes)
from rtl.axi import axi4_members

__all__ = ["BEATS_BITS", "ReadDMA", "StoreMode", "WriteDMA", "slot_bytes", "times"]

#: Width of a transfer's beat count.
BEATS_BITS = 24


def _pick(values: Sequence[int | Value], index: Value) -> Value:
    """``values[index]`` (constants or values), as a mux chain."""
    out: Value | int = values[0]
    for i, v in enumerate(values[1:], 1):
        out = Mux(index == i, v, out)
    return Value.cast(out)


def times(value: Value, k: int) -> Value:
    """``value * k`` for a constant ``k >= 0`` as shifted adds and subtractions (its non-adjacent
    form: ``7 = 8 - 1``, ``24 = 16 + 8``), so Yosys makes a short adder chain of it instead of a
    DSP block behind the register (a multiplier costs ~4 ns on ECP5, an add of two terms one carry
    chain). Unsigned ``value``; the result is wide enough for every product."""
    if k < 0:
        raise ValueError(f"`k` must be a non-negative constant, not {k!r}")
    value = Value.cast(value)
    width = len(value) + max(k, 1).bit_length()
    terms, shift = [], 0
    while k:
        if k & 1:
            digit = 2 - (k & 3)  # +1 or -1: the non-adjacent form's digit
            terms.append((digit, shift))
            k -= digit
        k >>= 1
        shift += 1
    if not terms:
        return Const(0, width)
    total: Value = Const(0, width)
    for digit, at in terms:  # modulo 2**width: the product fits, so any overflow on the way cancels
        term = value.as_unsigned() << at
        total = (total + term if digit > 0 else total - term)[:width]
    return total


def _beat_counter(m: Module, start: Value, beats: Value, take: Value) -> tuple[Signal, Signal, Signal, Signal]:
    """The beats left of a transfer: loaded with ``beats`` on ``start``, one less on each
    ``take``; with ``left != 0`` and ``left == 1`` kept as registers beside it (each updated
    from the other and a compare off the handshake path), so the stream's ``valid``/``ready``
    are a gate or two, not a 24-bit reduction. Returns ``(left, any, one, any_next)``,
    ``any_next`` the value ``any`` takes at the clock edge (comb)."""
    left, any_left, one_left = Signal(BEATS_BITS, name="left"), Signal(name="any_left"), Signal(name="one_left")
    any_next = Signal(name="any_next")
    m.d.comb += any_next.eq(any_left)
    m.d.sync += any_left.eq(any_next)
    with m.If(start):
        m.d.sync += [left.eq(beats), one_left.eq(beats == 1)]
        m.d.comb += any_next.eq(beats != 0)
    with m.Elif(take):
        m.d.sync += [left.eq(left - 1), one_left.eq(left == 2)]
        m.d.comb += any_next.eq(~one_left)
    return left, any_left, one_left, any_next


def _slice(m: Module, beat: Any, out: Any) -> tuple[Signal, Signal]:
    """Offer ``beat``'s stream on ``out`` through a register slice of two entries; returns their
    flags (``out`` holds a beat; a second one waits behind it). ``out``'s valid and payload are
    flip-flops, and ``beat`` is ready exactly when the second entry is empty -- a flip-flop too --
    so neither the consumer's logic nor the engine's lies behind the other's handshake (the read
    channel's ``rready`` and the engine's counters follow the take). Each beat reaches ``out`` the
    cycle after the engine gives it; a consumer that takes every beat when offered never fills the
    second entry, so the engine runs as without the slice (its transfer ends one cycle later);
    under a stall the engine may run up to two beats ahead."""
    full, spare = Signal(name="slice_full"), Signal(name="slice_spare")
    word, waiting = Signal.like(beat.payload, name="slice_word"), Signal.like(beat.payload, name="slice_waiting")
    m.d.comb += [beat.ready.eq(~spare), out.valid.eq(full), out.payload.eq(word)]
    with m.If(~full | out.ready):  # the output entry is free at the edge: the waiting beat first
        m.d.sync += [full.eq(spare | beat.valid), word.eq(Mux(spare, waiting, beat.payload)), spare.eq(0)]
    with m.Elif(beat.valid & ~spare):
        m.d.sync += [spare.eq(1), waiting.eq(beat.payload)]
    return full, spare


def _members(names: str, bus_bits: int) -> dict[str, wiring.Member]:
    wanted = names.split()
    return {name: member for name, member in axi4_members("", bus_bits).items() if name in wanted}


class ReadDMA(wiring.Component):
    """Reads beats of one of several target streams from memory (module docstring).

    Parameters
    ----------
    widths : sequence of int
        Beat width in bits of each target (index = ``i_target``).
    bus_bits : int
        The AXI data width.

    Members
    -------
    i_start : In(1)
        Start a transfer of ``i_beats`` beats of ``i_target`` from byte ``i_addr`` (when idle).
    i_ahead : In(1)
        Another reader's burst on the port is in flight ahead of this transfer's bursts (its
        words come first and do not reach this engine): it counts toward ``MAX_OUTSTANDING``.
    o_busy : Out(1)
        A transfer is running (beats or words left, bursts in flight); low the cycle after its
        last beat.
    o_beat : Out(stream.Signature(max(widths)))
        The beats, low bits first; bits above the target's width are don't-care.
    o_rerror : Out(1)
        A read response was not OKAY since the last start (sticky).
    ar*, r* :
        The AXI4 read channels (:func:`rtl.axi.axi4_members`, without the prefix).
    """

    def __init__(self, widths: Sequence[int], bus_bits: int = BUS_BITS) -> None:
        self.widths = tuple(int(w) for w in widths)
        if not self.widths or min(self.widths) < 1:
            raise ValueError(f"`widths` must be positive beat widths, not {widths!r}")
        self.bus_bits, self.bus_bytes = bus_bits, bus_bits // 8
        self.slots = tuple(slot_bytes(w, bus_bits) for w in self.widths)
        self.wide_words = max(s // self.bus_bytes for s in self.slots) or 1
        super().__init__({
            "i_start": In(1), "i_addr": In(ADDR_BITS), "i_beats": In(BEATS_BITS),
            "i_target": In(range(len(self.widths))), "i_ahead": In(1), "o_busy": Out(1), "o_rerror": Out(1),
            "o_beat": Out(stream.Signature(max(max(self.widths), bus_bits))),
            **_members("araddr arlen arsize arburst arvalid arready rdata rresp rlast rvalid rready", bus_bits),
        })

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        # the engine's beats, offered on o_beat through a register slice (:func:`_slice`)
        beat = stream.Signature(len(self.o_beat.payload)).create(path=("beat",))
        out_full, out_spare = _slice(m, beat, self.o_beat)
        bus_bytes, bus_bits = self.bus_bytes, self.bus_bits
        size = ceil_log2(bus_bytes)  # AxSIZE of a full-width beat
        per_page = BOUNDARY_BYTES // bus_bytes
        word = Signal(ADDR_BITS - size)          # next bus word to request
        words_left = Signal(ADDR_BITS - size)    # bus words not yet requested
        bursts = Signal(range(MAX_OUTSTANDING + 1))  # bursts issued whose last word has not arrived
        take = beat.valid & beat.ready
        starting = self.i_start & ~self.o_busy
        beats_left, any_beats, last_beat, _ = _beat_counter(m, starting, self.i_beats, take)
        narrow = Signal()                              # the slot is less than a word
        log_slot = Signal(range(ceil_log2(bus_bytes) + 1))  # log2 of the slot's bytes
        per_beat = Signal(range(self.wide_words + 1))  # wide slots: bus words per beat
        lane = Signal(range(bus_bytes))
        got = Signal(range(self.wide_words + 1))       # wide: words of the beat gathered
        # a beat is in the hold: narrow, a word is held; wide, got == per_beat (kept as a register
        # beside it); one flag for both, so the beat's valid is one gate from flip-flops
        full = Signal()
        hold = Signal(self.wide_words * bus_bits)
        # a word read goes into the hold shifted down ``shift`` bytes: a wide transfer's start
        # offset in its bus word (``realign``: not 0, each word is completed by the next), a narrow
        # one's first lane until its first word arrives (then 0)
        shift, realign = Signal(range(bus_bytes), name="shift"), Signal(name="realign")
        prev, primed = Signal(bus_bits, name="prev"), Signal(name="primed")  # realigning: the word before

        # Start: latch the request (the target's slot as constants) and the transfer's span, the
        # beats times the slot -- bytes for a narrow slot (a power of two: a shift), bus words for
        # a wide one (whole words per beat) -- so that the setup cycle after it adds only the
        # first byte's offset in its word: no multiply and add in series on either cycle (the
        # start's assignments come last, below).
        addr = Signal(ADDR_BITS, name="addr")
        setup = Signal()
        log_of = _pick([ceil_log2(min(s, bus_bytes)) for s in self.slots], self.i_target)
        narrow_of, first_lane = _pick(self.slots, self.i_target) < bus_bytes, self.i_addr[:size] >> log_of
        spans = [self.i_beats << ceil_log2(s) if s < bus_bytes else times(self.i_beats, s // bus_bytes)
                 for s in self.slots]
        span = Signal(max(len(v) for v in spans), name="span")
        span_of = _pick(spans, self.i_target)
        # the bus words: ceil((first byte's offset in its word + span bytes) / bus bytes) for a
        # narrow slot, the span's words plus one when the start is inside a word for a wide one
        # (one carry chain: the small addend is picked first)
        offset = addr[:size]
        total = span + Mux(narrow, offset + (bus_bytes - 1), offset != 0)
        words = Mux(narrow, total >> size, total)
        any_words = Signal()  # words_left != 0, kept as a register beside it
        with m.If(setup):
            # beats >= 1 always span a word: any_words is any_beats
            m.d.sync += [setup.eq(0), word.eq(addr >> size),
                         words_left.eq(Mux(any_beats, words, 0)), any_words.eq(any_beats)]
        # every burst it issued has arrived before a transfer ends: no beat of it reaches the next
        m.d.comb += self.o_busy.eq(setup | any_beats | any_words | (bursts != 0) | out_full | out_spare)

        # Read address: the next burst while fewer than MAX_OUTSTANDING are in flight, of
        # length = min(words left, MAX_BURST, words to the 4 KiB boundary). Every compare is on a
        # few bits: words_left >= MAX_BURST (a power of two) is a reduction of its top bits, the
        # page only cuts a burst in its last MAX_BURST words (the word's page offset all ones
        # above the burst bits), and there the cut is ``words_left + offset > MAX_BURST`` on the
        # low bits. The next word, words left and their flag are computed for each of the three
        # cases side by side and picked after.
        burst_bits, page_bits = ceil_log2(MAX_BURST), ceil_log2(per_page)
        assert 1 << burst_bits == MAX_BURST and 1 << page_bits == per_page and per_page >= MAX_BURST
        off = word[:burst_bits]                          # the word's offset in its last MAX_BURST
        near_page = word[burst_bits:page_bits].all()     # words to the boundary <= MAX_BURST
        to_page = Signal(burst_bits + 1)
        m.d.comb += to_page.eq(MAX_BURST - off)
        big = words_left[burst_bits:].any()              # words_left >= MAX_BURST
        low = words_left[:burst_bits]                    # words_left otherwise
        reach = Signal(burst_bits + 1)
        m.d.comb += reach.eq(low + off)
        page_cut = near_page & Mux(big, off != 0, reach > MAX_BURST)  # to_page < the other two
        length = Signal(range(MAX_BURST + 1))
        m.d.comb += length.eq(Mux(page_cut, to_page, Mux(big, MAX_BURST, low)))
        m.d.comb += [self.araddr.eq(word << size), self.arlen.eq(length - 1),
                     self.arsize.eq(size), self.arburst.eq(1),
                     self.arvalid.eq(any_words & (bursts + self.i_ahead < MAX_OUTSTANDING) & ~setup)]
        issued = self.arvalid & self.arready
        with m.If(issued):
            next_page = Cat(Const(0, page_bits), word[page_bits:] + 1)
            m.d.sync += [word.eq(Mux(page_cut, next_page, Mux(big, word + MAX_BURST, word + low))),
                         words_left.eq(Mux(page_cut, words_left - to_page, Mux(big, words_left - MAX_BURST, 0))),
                         any_words.eq(page_cut | (big & (words_left != MAX_BURST)))]

        # Read data into the beat register; a burst is complete with its last word.
        accept = self.rvalid & self.rready
        m.d.sync += bursts.eq(bursts + issued - (accept & self.rlast))
        with m.If(accept & (self.rresp != 0)):
            m.d.sync += self.o_rerror.eq(1)
        lanes_per_word = Signal(range(bus_bytes + 1))
        m.d.comb += lanes_per_word.eq(bus_bytes >> log_slot)
        # narrow: the beat taken next is the word's last lane (lane == lanes_per_word - 1), a
        # register beside lane set from lane's next value, so no compare follows the take
        lane_end, lane_next = Signal(), Signal.like(lane)
        m.d.comb += lane_next.eq(Mux(starting, first_lane, lane))  # no beat is taken at a start
        per_word = Mux(starting, bus_bytes >> log_of, lanes_per_word)  # log_slot is set with it
        m.d.sync += [lane.eq(lane_next), lane_end.eq(lane_next == per_word - 1)]
        # Both kinds of target load a word read through one shifter whose amount and source are
        # registers (``arrive``: a narrow target's word, a wide one's word once realigned), and
        # only a narrow one shifts its hold down a slot per beat: each hold bit is a three-way
        # choice behind two strobes.
        arrive = accept & (primed | ~realign)
        realigned = (Cat(Mux(realign, prev, self.rdata), self.rdata) >> (shift << 3))[:bus_bits]
        with m.If(accept):
            m.d.sync += [prev.eq(self.rdata), primed.eq(1)]
        with m.If(narrow):
            word_done = take & (lane_end | last_beat)
            # the held word shifts down a slot with each beat taken: the beat is its low bits,
            # straight from the register (no lane mux between the hold and the consumer)
            m.d.comb += beat.payload.eq(hold[:bus_bits])
            with m.If(take):
                m.d.comb += lane_next.eq(lane + 1)
                m.d.sync += hold[:bus_bits].eq(hold[:bus_bits] >> (Const(8, 8) << log_slot))
            with m.If(word_done):
                m.d.comb += lane_next.eq(0)
                m.d.sync += full.eq(0)
            with m.If(accept):  # a start inside a word begins at its lane, later words at 0
                m.d.sync += [full.eq(1), shift.eq(0)]
        with m.Else():
            # realigned words: each word read after the first completes the word that starts
            # ``shift`` bytes into the one before it; the word a read goes to is decoded from
            # flip-flops (got, full), not behind a compare with per_beat
            m.d.comb += beat.payload.eq(hold)
            with m.If(take):
                m.d.sync += [got.eq(0), full.eq(0)]
            with m.If(arrive):
                m.d.sync += [got.eq(Mux(full, 1, got + 1)),
                             full.eq(Mux(full, per_beat == 1, got + 1 == per_beat))]
        # rready: room in the hold -- empty, or (narrow) its last beat leaving, or (wide) the beat
        # leaving, or (realigning) the first word -- one expression of flip-flops, no take in it
        leaving = any_beats & ~out_spare  # a held beat is taken now
        m.d.comb += self.rready.eq(~full | (leaving & (~narrow | lane_end | last_beat))
                                   | (~narrow & realign & ~primed))
        with m.If(arrive):  # narrow: got is 0
            m.d.sync += hold.word_select(Mux(full, 0, got), bus_bits).eq(realigned)
        # the start last: it never meets a take or a word read (the engine is idle), so it alone
        # picks between the registers' start and running values; the handshakes only enable them
        with m.If(starting):
            m.d.sync += [addr.eq(self.i_addr), setup.eq(1), span.eq(span_of),
                         got.eq(0), full.eq(0), narrow.eq(narrow_of),
                         shift.eq(Mux(narrow_of, first_lane << log_of, self.i_addr[:size])),
                         realign.eq(~narrow_of & (self.i_addr[:size] != 0)), primed.eq(0),
                         log_slot.eq(log_of),
                         per_beat.eq(_pick([max(1, s // bus_bytes) for s in self.slots], self.i_target)),
                         self.o_rerror.eq(0)]
        m.d.comb += beat.valid.eq(full & any_beats)  # none before a start
        return m


class WriteDMA(wiring.Component):
    """Writes the top's result beats to memory (module docstring).

    Parameters
    ----------
    width : int
        Result beat width in bits.
    rows, cols : int
        The array's size (the fold order of the result beats).
    lane_bits : int
        Bits of one output lane (``BYTES`` needs 8; ``BITS`` takes bit 0 of each lane and needs
        ``cols`` to be a multiple of 8).
    dim_bits : int
        Width of the descriptor's sizes (``i_out_ch``, ``i_groups``).
    bus_bits : int
        The AXI data width.

    Members
    -------
    i_start : In(1)
        Start storing ``i_beats`` result beats at byte ``i_addr`` in mode ``i_mode``, with
        ``i_pstride``, ``i_gstride`` and ``i_pixels`` (the valid output pixels) of the scatter;
        ``i_out_ch``/``i_groups`` (the running descriptor's) must be valid at the start and
        stable until ``o_busy`` falls.
    o_busy : Out(1)
        Beats left, a write in progress or a write response outstanding.
    i_result : In(stream.Signature(width))
        The top's ``o_results``; ready while beats are left and the queue has room (fewer than
        two kept beats not yet written).
    o_werror : Out(1)
        A write response was not OKAY since the last start (sticky).
    aw*, w*, b* :
        The AXI4 write channels (:func:`rtl.axi.axi4_members`, without the prefix).
    """

    def __init__(self, *, width: int, rows: int, cols: int, lane_bits: int, dim_bits: int,
                 bus_bits: int = BUS_BITS) -> None:
        self.width, self.rows, self.cols, self.lane_bits = width, rows, cols, lane_bits
        self.bus_bits, self.bus_bytes = bus_bits, bus_bits // 8
        self.slot = slot_bytes(width, bus_bits)
        self.max_bytes = max(self.slot, cols)
        super().__init__({
            "i_start": In(1), "i_addr": In(ADDR_BITS), "i_beats": In(BEATS_BITS),
            "i_mode": In(StoreMode), "i_pstride": In(ADDR_BITS), "i_gstride": In(16),
            "i_pixels": In(16), "i_out_ch": In(dim_bits), "i_groups": In(dim_bits),
            "o_busy": Out(1), "o_werror": Out(1),
            "i_result": In(stream.Signature(width)),
            **_members("awaddr awlen awsize awburst awvalid awready wdata wstrb wlast wvalid wready "
                       "bresp bvalid bready", bus_bits),
        })

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        rows, cols, res = self.rows, self.cols, self.i_result
        bus_bytes, bus_bits = self.bus_bytes, self.bus_bits
        size = ceil_log2(bus_bytes)
        mode = Signal(StoreMode)
        take = res.valid & res.ready
        starting = self.i_start & ~self.o_busy
        _, any_beats, _, any_next = _beat_counter(m, starting, self.i_beats, take)
        # The scatter's byte addresses are registers, each one adder from the next: the row tile's
        # top pixel row (tile_top), plus the group's channel offset (group_addr), plus the tile's
        # (fold_addr), minus a pixel stride per row (byte_addr, the beat's). The beat's address,
        # its lanes' flags and its pixel's keep flag are set on each take to their values for the
        # next beat, worked out from registers only (below): the take (the stream's valid and a
        # ready flip-flop) is only their enable. Channel steps in bytes (BITS: a bit per channel,
        # ``gstep`` and the tile's eighths; cols and gstride are multiples of 8 there).
        pstride, gstep = Signal(ADDR_BITS), Signal(16)
        tile_top, tile_step = Signal(ADDR_BITS), Signal(ADDR_BITS)
        group_addr, fold_addr, byte_addr = Signal(ADDR_BITS), Signal(ADDR_BITS), Signal(ADDR_BITS)
        # pixels and channels as what is left of their bounds, so that each flag for the next beat
        # is a compare with a constant: pixels - the row's pixel (the row is kept while > 0),
        # pixels - the row tile's top row's pixel, out_ch - the channel of the fold's lane 0
        pix_left, tile_left = Signal(signed(18)), Signal(signed(18))
        ch_left = Signal(len(self.i_out_ch))
        j = Signal(range(rows))
        j_last = Signal()  # j == rows - 1, a register beside j (no compare behind the take)
        g = Signal(len(self.i_groups))
        keep = Signal()  # pix_left > 0; 1 in RAW
        lane_on = [Signal(name=f"lane_on{c}") for c in range(cols)]  # ch_left > c
        outstanding = Signal(16)

        # The kept beats wait in a queue of two entries (the one being written, its head, and
        # the next), each as taken: its bytes and byte mask, its first byte's offset in its bus
        # word, that word, its bus words and whether that is one. The head is rotated into place
        # on the way out (wdata, wstrb), not on the way in: the result beat comes straight from
        # the out buffer's block RAM, the shifter would follow its read. A beat is taken while
        # the queue has room, so that ready is a flip-flop and the take advances the scatter's
        # registers off the AXI handshake, which only moves the head (its word count, the read
        # pointer, the queue's flags).
        entry = data.StructLayout({"bytes": self.max_bytes * 8, "mask": self.max_bytes, "at": size,
                                   "first": ADDR_BITS - size, "words": range(self.max_bytes // bus_bytes + 3),
                                   "one": 1})
        queue = [Signal(entry, name=f"queue{i}") for i in range(2)]
        head_at, tail_at = Signal(name="head_at"), Signal(name="tail_at")
        head = Signal(entry)
        m.d.comb += head.eq(Mux(head_at, queue[1], queue[0]))
        span = (self.max_bytes + bus_bytes) * 8
        placed, strobes = Signal(span), Signal(span // 8)
        m.d.comb += [placed.eq(head.bytes << (head.at * 8)), strobes.eq(head.mask << head.at)]
        k = Signal.like(head.words)
        k_last = Signal()  # k == the head's words - 1, kept as a register beside k
        aw_done, w_done = Signal(), Signal()
        # the queue's length, and whether a head is being written (a register beside it)
        length, writing = Signal(range(3)), Signal()

        # One single-beat write per bus word, address and data offered together.
        m.d.comb += [self.awaddr.eq((head.first + k) << size), self.awlen.eq(0), self.awsize.eq(size),
                     self.awburst.eq(1), self.awvalid.eq(writing & ~aw_done),
                     self.wdata.eq(placed.word_select(k, bus_bits)),
                     self.wstrb.eq(strobes.word_select(k, bus_bytes)), self.wlast.eq(1),
                     self.wvalid.eq(writing & ~w_done), self.bready.eq(1)]
        aw_now = aw_done | (self.awvalid & self.awready)
        w_now = w_done | (self.wvalid & self.wready)
        pop = writing & k_last & aw_now & w_now  # the head's last word is written
        push = Signal()  # a kept beat is taken into the tail (below)
        incoming = Signal(entry)  # the beat taken, as queued
        length_next = Signal.like(length)
        m.d.comb += length_next.eq(length + push - pop)
        m.d.sync += [length.eq(length_next), writing.eq(length_next != 0)]
        with m.If(push):
            m.d.sync += tail_at.eq(~tail_at)
        for i, slot in enumerate(queue):
            with m.If(push & (tail_at == i)):
                m.d.sync += slot.eq(incoming)
        with m.If(writing):
            m.d.sync += [aw_done.eq(aw_now), w_done.eq(w_now)]
            with m.If(aw_now & w_now):
                m.d.sync += [k.eq(k + 1), aw_done.eq(0), w_done.eq(0), k_last.eq(k + 2 == head.words)]
        # the next head: the entry behind the head, or the beat taken now into an empty queue
        # (or into one whose head leaves)
        with m.If(pop):
            m.d.sync += [head_at.eq(~head_at), k.eq(0),
                         k_last.eq(Mux(length == 2, Mux(head_at, queue[0].one, queue[1].one), incoming.one))]
        with m.Elif(~writing):
            m.d.sync += [k.eq(0), k_last.eq(incoming.one)]
        # ready while beats are left and the queue has room: registers, set from their next values
        ready = Signal()
        m.d.sync += ready.eq(any_next & (length_next != 2))
        m.d.comb += res.ready.eq(ready)
        # Bytes, strobes and words of the taken beat.
        lanes = res.payload

        def at_fold_end(value: Value, name: str) -> Value:
            # ``value`` of registers set only at a start or a fold's last row, wanted only at a
            # fold's last row: registered when a tile lasts more than one beat (rows > 1), as
            # that row's take comes at least a cycle after they change
            if rows == 1:
                return value
            late = Signal(len(value), name=name)
            m.d.sync += late.eq(value)
            return late

        # the fold's tile is the last of its group, the group the last; the next tile's, group's
        # and row tile's top row; the next tile's lanes and whether its top row (or the next row
        # tile's) is kept
        last_tile = at_fold_end(ch_left <= cols, "last_tile")
        last_group = at_fold_end(g == self.i_groups - 1, "last_group")
        tile_next = at_fold_end((tile_top + tile_step)[:ADDR_BITS], "tile_next")
        group_step = at_fold_end((group_addr + gstep)[:ADDR_BITS], "group_step")
        tile_bytes = Mux(mode == StoreMode.BITS, cols // 8, cols)
        fold_step = at_fold_end((fold_addr + tile_bytes)[:ADDR_BITS], "fold_step")
        lanes_next = [at_fold_end(ch_left > cols + c, f"lane_next{c}") for c in range(cols)]
        keep_tile = at_fold_end(tile_left > 0, "keep_tile")
        keep_next_tile = at_fold_end(tile_left > rows, "keep_next_tile")
        value, mask, count = incoming.bytes, incoming.mask, incoming.words  # count: the words it touches

        def spans(nbytes: int) -> Value:  # a table of the address's offset in its word
            return _pick([(o + nbytes + bus_bytes - 1) >> size for o in range(bus_bytes)], byte_addr[:size])

        with m.Switch(mode):
            with m.Case(StoreMode.RAW):
                m.d.comb += [value.eq(lanes), mask.eq((1 << self.slot) - 1), count.eq(spans(self.slot))]
            with m.Case(StoreMode.BYTES):
                m.d.comb += [value.eq(lanes[:cols * 8] if self.lane_bits == 8 else 0),
                             mask.eq(Cat(*lane_on)), count.eq(spans(cols))]
            with m.Case(StoreMode.BITS):
                bits = [lanes[c * self.lane_bits] & lane_on[c] for c in range(cols)]
                m.d.comb += [value.eq(Cat(*bits)), mask.eq((1 << max(1, cols // 8)) - 1),
                             count.eq(spans(max(1, cols // 8)))]
        m.d.comb += [incoming.at.eq(byte_addr[:size]), incoming.first.eq(byte_addr >> size),
                     incoming.one.eq(count == 1), push.eq(take & keep)]
        with m.If(take):
            # Next beat: the next row up, or the next fold's top row (the next tile, the next
            # group's first tile, the next row tile's first fold).
            with m.If(mode == StoreMode.RAW):
                m.d.sync += byte_addr.eq(byte_addr + self.slot)
            with m.Elif(j_last):
                group_next = Mux(last_group, tile_next, group_step)
                fold_next = Mux(last_tile, group_next, fold_step)
                next_tile = last_tile & last_group
                m.d.sync += [j.eq(0), j_last.eq(rows == 1), ch_left.eq(Mux(last_tile, self.i_out_ch, ch_left - cols)),
                             fold_addr.eq(fold_next), byte_addr.eq(fold_next),
                             pix_left.eq(Mux(next_tile, tile_left - rows, tile_left)),
                             keep.eq(Mux(next_tile, keep_next_tile, keep_tile)),
                             *(on.eq(Mux(last_tile, c < self.i_out_ch, lanes_next[c]))
                               for c, on in enumerate(lane_on))]
                with m.If(last_tile):
                    m.d.sync += [g.eq(Mux(last_group, 0, g + 1)), group_addr.eq(group_next)]
                with m.If(last_tile & last_group):
                    m.d.sync += [tile_top.eq(tile_next), tile_left.eq(tile_left - rows)]
            with m.Else():
                m.d.sync += [j.eq(j + 1), j_last.eq(j == rows - 2), byte_addr.eq(byte_addr - pstride),
                             pix_left.eq(pix_left + 1), keep.eq(~pix_left[-1])]  # pix_left + 1 > 0: its sign

        # A start after the take's updates: the two never coincide (no beat is ready before a
        # start), and so the registers' input picks between start and scatter values by the start
        # alone; the take, the handshake, is only their enable.
        with m.If(starting):
            top = self.i_addr + times(self.i_pstride, rows - 1)
            m.d.sync += [mode.eq(self.i_mode), pstride.eq(self.i_pstride),
                         gstep.eq(Mux(self.i_mode == StoreMode.BITS, self.i_gstride >> 3, self.i_gstride)),
                         tile_step.eq(times(self.i_pstride, rows)), j.eq(0), j_last.eq(rows == 1), g.eq(0),
                         tile_left.eq(self.i_pixels - (rows - 1)), pix_left.eq(self.i_pixels - (rows - 1)),
                         ch_left.eq(self.i_out_ch),
                         tile_top.eq(top), group_addr.eq(top), fold_addr.eq(top),
                         byte_addr.eq(Mux(self.i_mode == StoreMode.RAW, self.i_addr, top)),
                         keep.eq((self.i_mode == StoreMode.RAW) | (rows - 1 < self.i_pixels)),
                         *(on.eq(c < self.i_out_ch) for c, on in enumerate(lane_on)),
                         self.o_werror.eq(0)]

        sent = self.awvalid & self.awready
        back = self.bvalid & self.bready
        # the count and whether it is not zero, a register beside it: o_busy (and the start behind
        # it, which resets the scatter's registers) is an OR of flip-flops; the flag's next value
        # is picked by the handshakes from compares of the count's register, so no adder and no
        # 16-bit reduction follow the AXI handshake
        unanswered = Signal()
        m.d.sync += outstanding.eq(outstanding + sent - back)
        with m.If(sent & ~back):
            m.d.sync += unanswered.eq(1)
        with m.Elif(back & ~sent):
            m.d.sync += unanswered.eq(outstanding != 1)
        with m.If(back & (self.bresp != 0)):
            m.d.sync += self.o_werror.eq(1)
        m.d.comb += self.o_busy.eq(any_beats | writing | unanswered)
        return m
