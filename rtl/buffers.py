"""The accelerator top's buffer traffic outside the array: the loads, the result writer and the store.

* :class:`Loader` writes the parameter, weight and activation streams into their buffers, one
  phase at a time, in stream order from word 0, and flags beats past a buffer's end;
* :class:`ResultWriter` takes the array's accumulator rows through the
  :class:`~rtl.requant.OutputStage` (handing it each output tile's parameters) into the out buffer,
  for a K tile adding the psum buffer's partial sums to them or writing them there;
* :class:`StoreStream` streams a bank of the out buffer onto the results port by itself (the
  store engine), while the next layer runs into the other bank.

Each connects to its buffers through Amaranth memory port signatures
(``wiring.connect(m, writer.out_wr, memory.write_port())``).
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Cat, Module, Mux, Shape, Signal, Value
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import ReadPort, WritePort
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from contract import OUTPUT_LATENCY
from hwsim.rtl_plan import TopGeometry
from rtl.im2col import act_word, check_geometry, descriptor_layout, pe_spec, weight_word
from rtl.requant import out_shape, param_layout

__all__ = ["LoadTarget", "Loader", "ResultWriter", "StoreStream", "out_word", "param_word", "psum_word"]


class LoadTarget(enum.Enum, shape=3):
    """The stream a :class:`Loader` takes (``NONE``: none is ready)."""

    NONE = 0
    PARAMS = 1
    WEIGHTS = 2
    ACTS = 3
    RESID = 4


def param_word(geo: TopGeometry) -> data.ArrayLayout:
    """One parameter buffer word: the output stage's parameters of ``cols`` channels."""
    return data.ArrayLayout(param_layout(geo.pe, bias_bits=geo.bias_bits, positions=geo.positions),
                            geo.cols)


def out_word(geo: TopGeometry) -> data.ArrayLayout:
    """One out buffer word: ``cols`` outputs of one pixel."""
    return data.ArrayLayout(out_shape(geo.pe, bits=geo.bits, positions=geo.positions), geo.cols)


def psum_word(geo: TopGeometry) -> data.ArrayLayout:
    """One psum buffer word, and one row of sums into the output stage: ``cols`` partial sums of
    :attr:`~hwsim.rtl_plan.TopGeometry.psum_bits` (xnor: unsigned counts; else signed)."""
    return data.ArrayLayout(Shape(geo.psum_bits, signed=geo.pe != "xnor"), geo.cols)


def _write(depth: int, shape: Any) -> In:
    return In(WritePort.Signature(addr_width=ceil_log2(depth), shape=shape))


def _read(depth: int, shape: Any) -> In:
    return In(ReadPort.Signature(addr_width=ceil_log2(depth), shape=shape))


class Loader(wiring.Component):
    """Load streams into their buffers through one address counter.

    Parameters
    ----------
    geo : TopGeometry
    targets : tuple of LoadTarget
        The streams this loader takes (default all four); the top has one for the loads
        (PARAMS, WEIGHTS, ACTS) and one for RESID, so that a tile's residual loads beside the
        next tile's inputs.

    Members
    -------
    i_params, i_weights, i_acts, i_resid : In(stream.Signature(...))
        The top's load streams of ``targets`` (payloads as their buffers' words; an activation
        beat is :func:`~rtl.im2col.act_word`, a residual beat an out word); only the one
        ``i_target`` names is ready, always.
    param_wr, weight_wr, act_wr, resid_wr : In(WritePort.Signature(...))
        The buffers' write ports of ``targets`` (the residual goes to the out buffer).
    i_target : In(LoadTarget)
        The stream to take (NONE, or one of ``targets``).
    i_restart : In(1)
        The next beat goes to word 0 (takes priority over this cycle's beat's increment).
    o_fire : Out(1)
        A beat is transferred this cycle.
    o_overrun : Out(1)
        That beat is past its buffer's end: it is dropped.
    o_act_bank : Out(B)
        With ACTS on a banked activation buffer (``geo.act_banks`` B): the bank of the address
        counter's word, one-hot (word ``i`` in bank ``i mod B``, :func:`contract.act_banks`),
        a register rotated with each increment, so no residue is behind a bank's write enable.
    """

    #: Each target's stream, write port, buffer word and depth in words.
    _PORTS = {LoadTarget.PARAMS: ("i_params", "param_wr", param_word, lambda g: g.param_words),
              LoadTarget.WEIGHTS: ("i_weights", "weight_wr", weight_word, lambda g: g.weight_words),
              LoadTarget.ACTS: ("i_acts", "act_wr", act_word, lambda g: g.act_words // g.act_beat),
              LoadTarget.RESID: ("i_resid", "resid_wr", out_word, lambda g: g.out_words)}

    def __init__(self, geo: TopGeometry, targets: tuple[LoadTarget, ...] = tuple(_PORTS)) -> None:
        self.geo = check_geometry(geo)
        if not targets or not set(targets) <= set(self._PORTS):
            raise ValueError(f"`targets` must be load targets other than NONE, not {targets!r}")
        self.targets = tuple(targets)
        members: dict[str, Any] = {}
        for target in self.targets:
            stream_name, port, word, depth = self._PORTS[target]
            members[stream_name] = In(stream.Signature(word(geo)))
            members[port] = _write(depth(geo), word(geo))
        if geo.act_banks and LoadTarget.ACTS in self.targets:
            members["o_act_bank"] = Out(geo.act_banks, init=1)
        super().__init__({**members, "i_target": In(LoadTarget), "i_restart": In(1),
                          "o_fire": Out(1), "o_overrun": Out(1)})

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        targets = [(target, getattr(self, self._PORTS[target][0]), getattr(self, self._PORTS[target][1]),
                    self._PORTS[target][3](self.geo)) for target in self.targets]
        # The address stops at the deepest buffer's depth: however many beats overrun, none wraps
        # back into a buffer (rtl.formal's loader proof).
        last = max(depth for *_, depth in targets)
        addr = Signal(range(last + 1))
        # full[depth]: addr >= depth, registered (no compare between the address and a write
        # enable); set with the increment that reaches depth, cleared with i_restart
        full = {depth: Signal(name=f"full_{depth}") for depth in sorted({depth for *_, depth in targets})}
        for target, beat, port, depth in targets:
            fire, fits = beat.valid & (self.i_target == target), ~full[depth]
            m.d.comb += [beat.ready.eq(self.i_target == target), port.addr.eq(addr),
                         port.data.eq(beat.payload), port.en.eq(fire & fits)]
            with m.If(fire):
                m.d.comb += [self.o_fire.eq(1), self.o_overrun.eq(~fits)]
        bank = getattr(self, "o_act_bank", None)
        with m.If(self.i_restart):
            m.d.sync += [addr.eq(0), *(flag.eq(0) for flag in full.values())]
            if bank is not None:
                m.d.sync += bank.eq(1)
        with m.Elif(self.o_fire & ~full[last]):
            m.d.sync += [addr.eq(addr + 1), *(flag.eq(flag | (addr == depth - 1)) for depth, flag in full.items())]
            if bank is not None:
                m.d.sync += bank.eq(Cat(bank[-1], bank[:-1]))
        return m


class ResultWriter(wiring.Component):
    """The array's accumulator rows through the output stage into the out buffer, in arrival order.

    Sits around the :class:`~rtl.requant.OutputStage`: hands it each row with its output tile's
    parameter word and writes the rows it returns. Row ``j`` of the ``f``-th fold goes to word
    ``f * rows + j``, requantized with parameter word ``f mod (groups * NT)`` (the folds of a row
    tile run group by group, ``NT = ceil(out_ch / cols)`` output tiles each). With four rows
    or more the word comes from a register, not from the block RAM's data (whose clock-to-out,
    5.6 ns on ECP5, would precede the output stage's bias add): the port reads the next fold's
    word every cycle into a second register, which the first takes with a fold's last row
    (ready in time: a fold's rows arrive in ``rows >= 4`` cycles, and the next word is read from
    the fold's third cycle on, its address from the fold's tile flags registered a cycle after
    the counters); word 0 is read in the cycle after ``i_clear`` (the top flips its input banks
    with it) and goes through the second register into the first (the block RAM's data into one
    register only, placed beside it), so a layer's first row may arrive four cycles after
    ``i_clear`` (it comes many more: WALK, the fetch). With up to
    three rows the word is read in the cycle of the fold before's last row (with fold overlap
    the next fold's rows may follow at once), at an address registered the cycle before (with
    two rows a fold's tile is still), and goes from the port's data to the output stage.

    With a psum buffer (``psum_words`` > 0), the ``a``-th row to arrive is the partial sum at
    psum word ``a`` (the same address as its out word). The word is in a register when the row
    arrives, rows back to back included: the read port is addressed two rows ahead (the word
    after the next row's, or the one after that while a row arrives; word 0 while the run side
    is idle, as in the cycle of ``i_clear``, which the register takes in the next cycle, so a
    layer's first row arrives two cycles after ``i_clear`` at the earliest). With ``psum_add``
    the word is added to the row (widened to ``psum_bits``) on its way to the output stage, and
    with ``psum_write`` that sum is written back to word ``a`` in the same cycle
    (read-modify-write at one row a cycle: the read of word ``a + 2`` never meets the write of
    word ``a``) and the output stage's rows are counted but not written to the out buffer.

    The residual (``residual``, not xnor) comes from a register likewise: the out buffer's word
    that the row leaving the output stage overwrites, read two cycles before
    (:meth:`_residual`; the output stage's rows leave :data:`contract.OUTPUT_LATENCY` cycles after
    they enter, in order).

    Members
    -------
    i_acc : In(stream.Signature(ArrayLayout(acc_shape, cols)))
        The array's ``o_results``; always ready.
    o_acc : Out(stream.Signature(psum_word(geo), always_ready=True))
        Those rows (plus the partial sums with ``psum_add``), to the output stage's ``i_acc``.
    o_params : Out(param_word(geo))
        Their parameters, to the output stage's ``i_params``.
    i_y : In(stream.Signature(out_word(geo), always_ready=True))
        The output stage's ``o_y``.
    param_rd : In(ReadPort.Signature(...))
        The parameter buffer's read port.
    out_wr : In(WritePort.Signature(...))
        The out buffer's write port.
    psum_rd, psum_wr : In(ReadPort.Signature(...)), In(WritePort.Signature(...))
        The psum buffer's ports (only with ``psum_words`` > 0).
    res_rd0, res_rd1 : In(ReadPort.Signature(...))
        Read ports of the out buffer's two banks, read every cycle at one address: the word the
        row leaving the output stage two cycles later overwrites; not for xnor. (The top hands
        a bank's port to the store engine while it stores that bank.)
    i_res_bank : In(1)
        The bank the rows go to (the residual's), stable while rows are in flight.
    o_res : Out(ArrayLayout(out_shape, cols))
        With ``residual``, the word the row leaving the output stage in this cycle overwrites
        (the residual the loader put there, written at least three cycles before), from one
        register per bank, for the output stage's ``i_res``; else 0.
    i_desc : In(descriptor_layout(dim_bits))
        ``out_ch``, ``groups``, ``psum_add``, ``psum_write`` and ``residual`` are read.
    i_clear : In(1)
        Start a layer: the next row goes to word 0 with parameter word 0. Comes in an
        ``i_idle`` cycle.
    i_idle : In(1)
        No row arrives, nor any before the next ``i_clear`` (the run side is idle): the psum
        port reads word 0, the word that the register takes after ``i_clear``.
    o_written : Out(range(out_words + 2))
        Rows out of the output stage since ``i_clear`` (written, dropped, or with ``psum_write``
        counted only).
    o_written_next : Out(range(out_words + 2))
        The value ``o_written`` takes at the clock edge unless ``i_clear`` clears it (so that the
        controller's end test is a register, with no path from the clear).
    o_overrun : Out(1)
        A row past the out (or, with ``psum_write``, the psum) buffer's end is dropped this cycle.
    """

    def __init__(self, geo: TopGeometry) -> None:
        self.geo = check_geometry(geo)
        acc_row = data.ArrayLayout(pe_spec(geo).acc_shape, geo.cols)
        psum = {"psum_rd": _read(geo.psum_words, psum_word(geo)),
                "psum_wr": _write(geo.psum_words, psum_word(geo))} if geo.psum_words else {}
        if geo.pe != "xnor":
            psum |= {"res_rd0": _read(geo.out_words, out_word(geo)), "res_rd1": _read(geo.out_words, out_word(geo)),
                     "i_res_bank": In(1), "o_res": Out(out_word(geo))}
        super().__init__({
            "i_acc": In(stream.Signature(acc_row)),
            "o_acc": Out(stream.Signature(psum_word(geo), always_ready=True)),
            "o_params": Out(param_word(geo)),
            "i_y": In(stream.Signature(out_word(geo), always_ready=True)),
            "param_rd": _read(geo.param_words, param_word(geo)),
            "out_wr": _write(geo.out_words, out_word(geo)),
            **psum,
            "i_desc": In(descriptor_layout(geo.dim_bits)),
            "i_clear": In(1), "i_idle": In(1),
            "o_written": Out(range(geo.out_words + 2)), "o_written_next": Out(range(geo.out_words + 2)),
            "o_overrun": Out(1),
        })

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        geo, d, acc = self.geo, self.i_desc, self.i_acc
        rows, cols = geo.rows, geo.cols
        row = Signal(range(rows))
        group, c0 = Signal(geo.dim_bits), Signal(geo.dim_bits + 1)  # the fold's tile
        ptile = Signal(range(geo.param_words))
        last_tile, last_group = c0 + cols >= d.out_ch, group == d.groups - 1
        fold_end = acc.valid & (row == rows - 1)
        m.d.comb += [acc.ready.eq(1), self.o_acc.valid.eq(acc.valid)]
        cleared = Signal()  # i_clear a cycle late: word 0 read with (or after) it is on the port
        m.d.sync += cleared.eq(self.i_clear)
        if rows >= 4:  # the next fold's word read ahead into `upcoming`, taken with a fold's end
            # its address from registers: the fold's tile flags a cycle after the counters
            ends = Signal(name="tiles_end")  # last_tile & last_group, registered
            m.d.sync += ends.eq(last_tile & last_group)
            next_ptile = Mux(ends, 0, ptile + 1)
            # (`upcoming` without a reset, as every register right behind a block RAM: a reset is
            # a LUT between the RAM's 5.8 ns clock-to-out and the flip-flop on ECP5)
            current, upcoming = Signal(param_word(geo)), Signal(param_word(geo), reset_less=True)
            # word 0 is read in the cycle after i_clear (the top's input bank flips with it), is
            # on the port's data in the next one and in `upcoming` in the one after (fill): the
            # block RAM's data goes into `upcoming` alone, which the placer keeps beside it
            filling, fill = Signal(), Signal()
            m.d.sync += [filling.eq(cleared), fill.eq(filling), upcoming.eq(self.param_rd.data)]
            m.d.comb += [self.param_rd.addr.eq(Mux(cleared, 0, next_ptile)), self.o_params.eq(current)]
            with m.If(fill | fold_end):
                m.d.sync += current.eq(upcoming)
        else:
            following = Mux(last_tile & last_group, 0, ptile + 1)
            if rows > 1:  # the next fold's word, registered: a fold's tile changes rows cycles apart
                next_ptile = Signal.like(ptile, name="next_ptile")
                m.d.sync += next_ptile.eq(following)
            else:
                next_ptile = following
            # the next fold's parameter word is read in its last row's cycle: with fold overlap
            # the next fold's first row may follow at once
            m.d.comb += [self.param_rd.addr.eq(Mux(fold_end, next_ptile, ptile)),
                         self.o_params.eq(self.param_rd.data)]
        if rows > 1:  # the tile flags registered for the counters' own steps: a fold's tile changes
            # rows cycles apart, and its first fold ends two cycles after i_clear at the earliest
            flags = Signal(2, name="tile_flags")
            m.d.sync += flags.eq(Cat(last_tile, last_group))
            last_tile, last_group = flags[0], flags[1]
        with m.If(acc.valid):
            m.d.sync += row.eq(Mux(row == rows - 1, 0, row + 1))
            with m.If(row == rows - 1):
                m.d.sync += [c0.eq(Mux(last_tile, 0, c0 + cols)), ptile.eq(next_ptile)]
                with m.If(last_tile):
                    m.d.sync += group.eq(Mux(last_group, 0, group + 1))
        if geo.psum_words:
            psum_overrun = self._psum(m, cleared)
        else:
            psum_overrun = 0
            m.d.comb += self.o_acc.payload.eq(acc.payload)
        written, y = self.o_written, self.i_y
        fits = written < geo.out_words
        to_out = ~d.psum_write if geo.psum_words else 1
        m.d.comb += [self.out_wr.addr.eq(written), self.out_wr.data.eq(y.payload),
                     self.out_wr.en.eq(y.valid & fits & to_out),
                     self.o_overrun.eq((y.valid & ~fits & to_out) | psum_overrun)]
        m.d.comb += self.o_written_next.eq(written + y.valid)
        m.d.sync += written.eq(Mux(self.i_clear, 0, self.o_written_next))
        if geo.pe != "xnor":
            self._residual(m)
        with m.If(self.i_clear):
            m.d.sync += [row.eq(0), group.eq(0), c0.eq(0), ptile.eq(0)]
        return m

    def _residual(self, m: Module) -> None:
        """The residual read two rows ahead into a register: ``o_res`` in the cycle a row leaves
        the output stage is the word that row overwrites, from a register (no read port's data
        in the residual add).

        ``ahead`` is the word the row leaving the output stage two cycles later writes (its
        ``written`` then): rows leave :data:`contract.OUTPUT_LATENCY` cycles after they enter,
        so the rows of the next two cycles are already in the stage, and ``ahead`` counts them
        as they enter (``i_acc.valid`` delayed by ``OUTPUT_LATENCY - 2``). Both banks' ports
        read word ``ahead`` every cycle and a register per bank takes its data (no logic between
        a port's data and its register; the bank and ``residual`` pick after them), so
        ``o_res`` follows the out buffer with three cycles' delay: a word the loader writes
        (RESID, before WALK) is seen by every row after, and no row's read meets an earlier
        row's write (the read of word ``a`` happens two cycles before row ``a``'s write, after
        row ``a - 1``'s)."""
        valid = self.i_acc.valid
        for i in range(OUTPUT_LATENCY - 2):
            delayed = Signal(name=f"res_valid_d{i}")
            m.d.sync += delayed.eq(valid)
            valid = delayed
        ahead = Signal(range(self.geo.out_words + 2))  # `written` two cycles on (0 with i_clear)
        with m.If(self.i_clear):
            m.d.sync += ahead.eq(0)
        with m.Elif(valid):
            m.d.sync += ahead.eq(ahead + 1)
        words = []
        for b, port in enumerate((self.res_rd0, self.res_rd1)):
            word = Signal.like(port.data, name=f"res{b}", reset_less=True)
            m.d.comb += [port.addr.eq(ahead), port.en.eq(1)]
            m.d.sync += word.eq(port.data)
            words.append(word)
        m.d.comb += self.o_res.eq(Mux(self.i_desc.residual, Mux(self.i_res_bank, words[1], words[0]), 0))

    def _psum(self, m: Module, cleared: Value) -> Any:
        """The psum read-ahead, the sums to the output stage and the psum write-back; returns the
        overrun strobe of a write past the buffer.

        The word of the row arriving is in a register (``psum``), not on the port's data: the
        port reads one word further ahead, ``arrived + 1`` (``arrived + 2`` while a row arrives),
        so its data is always the next row's word, which the register takes as a row arrives.
        In the cycle after ``i_clear`` (``cleared``) the register takes word 0, read while the
        run side is idle (``i_idle``; so the take behind ``i_clear`` is on no path to the port's
        address): the first row may arrive from the second cycle after ``i_clear`` on. The
        read of word ``a + 2`` beside the write of word ``a`` never meets it; each word is read
        (two cycles before its row at the latest) before its row writes it back."""
        geo, d, acc = self.geo, self.i_desc, self.i_acc
        arrived = Signal(range(geo.psum_words + 2))  # rows arrived since i_clear: the psum address
        # arrived + 1 and + 2 as registers beside it, so a row's valid only picks the read address
        ahead = [Signal(range(geo.psum_words + 4), name=f"arrived_plus{k}", init=k) for k in (1, 2)]
        # the arriving row's partial sums as read: the block RAM's data straight into a register
        # (no reset, no mask: psum_add masks after it)
        psum = Signal(psum_word(geo), reset_less=True)
        m.d.comb += [self.psum_rd.addr.eq(Mux(self.i_idle, 0, Mux(acc.valid, ahead[1], ahead[0]))),
                     self.psum_rd.en.eq(1)]
        with m.If(acc.valid | cleared):
            m.d.sync += psum.eq(self.psum_rd.data)
        for c in range(geo.cols):
            m.d.comb += self.o_acc.payload[c].eq(acc.payload[c] + Mux(d.psum_add, psum[c], 0))
        fits = arrived < geo.psum_words
        m.d.comb += [self.psum_wr.addr.eq(arrived), self.psum_wr.data.eq(self.o_acc.payload),
                     self.psum_wr.en.eq(acc.valid & d.psum_write & fits)]
        with m.If(self.i_clear):
            m.d.sync += [arrived.eq(0), ahead[0].eq(1), ahead[1].eq(2)]
        with m.Elif(acc.valid & (arrived <= geo.psum_words)):
            m.d.sync += [arrived.eq(arrived + 1), ahead[0].eq(ahead[0] + 1), ahead[1].eq(ahead[1] + 1)]
        return acc.valid & d.psum_write & ~fits


class StoreStream(wiring.Component):
    """The store engine: streams the out buffer's words ``0 .. words - 1`` of one bank onto
    ``o_results`` by itself, read ahead (:data:`contract.FETCH_CYCLES`: the read, then a register
    right behind the block RAM; then one word per ready cycle), while the controller runs the
    next layer into the other bank. Back-pressure holds both stages and the read ports. Each
    bank's port has its register, and ``o_bank`` picks between the registers: no multiplexer
    between a block RAM's data (5-6 ns clock-to-out on ECP5) and its register.

    Members
    -------
    out_rd0, out_rd1 : In(ReadPort.Signature(...))
        Read ports of the out buffer's two banks, read at one address (the top gives bank
        ``o_bank``'s to the engine while it stores that bank; the other one's data is not used).
    i_words : In(range(out_words + 2)), i_bank : In(1)
        Words to store and the bank holding them; taken with ``i_start``.
    i_start : In(1)
        Start a store at word 0 (only while ``o_free``; a store may start in the cycle the last
        one ends).
    o_results : Out(stream.Signature(out_word(geo)))
        The words in address order.
    o_done : Out(1)
        The last word is transferred this cycle.
    o_busy, o_free : Out(1)
        A store is running; no store is running, or it ends this cycle (``o_done``).
    o_bank : Out(1)
        The bank the current (or last) store reads.
    """

    def __init__(self, geo: TopGeometry) -> None:
        self.geo = check_geometry(geo)
        super().__init__({
            "out_rd0": _read(geo.out_words, out_word(geo)), "out_rd1": _read(geo.out_words, out_word(geo)),
            "i_words": In(range(geo.out_words + 2)), "i_bank": In(1), "i_start": In(1),
            "o_results": Out(stream.Signature(out_word(geo))), "o_done": Out(1),
            "o_busy": Out(1), "o_free": Out(1), "o_bank": Out(1),
        })

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        res = self.o_results
        addr = Signal(range(self.geo.out_words + 2))  # named: rtl.formal ties it to the beats
        words = Signal.like(self.i_words)
        free = ~res.valid | res.ready
        more = Signal()  # addr < words, registered with addr (named: rtl.formal checks it)
        read = Signal()  # a word is being read (the first stage; named: rtl.formal)
        # behind each bank's block RAM, kept flip-flops for the reason rtl.im2col gives at its
        # fetch registers
        ports = (self.out_rd0, self.out_rd1)
        words_read = [Signal.like(port.data, name=f"word{b}", attrs={"keep": 1}, reset_less=True)
                      for b, port in enumerate(ports)]
        m.d.comb += [*(port.addr.eq(addr) for port in ports), *(port.en.eq(free) for port in ports),
                     res.payload.eq(Mux(self.o_bank, words_read[1], words_read[0])),
                     self.o_done.eq(res.valid & res.ready & ~read & ~more),  # ~more: addr == words
                     self.o_free.eq(~self.o_busy | self.o_done)]
        with m.If(self.i_start):
            m.d.sync += [addr.eq(0), words.eq(self.i_words), self.o_bank.eq(self.i_bank),
                         self.o_busy.eq(1), res.valid.eq(0), read.eq(0), more.eq(self.i_words != 0)]
        with m.Else():
            with m.If(self.o_busy & free):
                m.d.sync += [read.eq(more), res.valid.eq(read),
                             *(word.eq(port.data) for word, port in zip(words_read, ports))]
                with m.If(more):
                    m.d.sync += [addr.eq(addr + 1), more.eq(addr + 1 < words)]
            with m.If(self.o_done):
                m.d.sync += self.o_busy.eq(0)
        return m
