"""The network accelerator: the layer top behind a sequencer that runs a command list from memory.

:class:`NetworkAccelerator` wraps :class:`rtl.top.LayerAccelerator` with an AXI4 master
(:mod:`rtl.axi`) and two DMA engines (:mod:`rtl.dma`). Started with the byte address of a
command list, it executes one :data:`COMMAND_BYTES`-byte command at a time, to the end, until an
``END`` command, and fetches each command while the one before runs: the sequencer reads it
itself, one burst at ``pc`` whose address goes out the cycle after the command before is
dispatched (while the read DMA is idle or in its setup cycle, so its words come first on the
read channel; the burst counts toward the DMA's ``MAX_OUTSTANDING``), into a register that the
next ``COMMAND`` cycle takes:

=======  ======================================================================================
op       meaning
=======  ======================================================================================
END      stop; ``o_done`` rises and stays high until the next ``i_start``
DESC     read ``beats`` descriptors from ``addr`` into the top (one per layer or tile)
PARAMS   read ``beats`` parameter words from ``addr`` into the top
WEIGHTS  read ``beats`` weight words from ``addr`` into the top
ACTS     read ``beats`` activation beats from ``addr`` into the top (a wide beat from any byte)
RESID    read ``beats`` residual words (out words, in out buffer order) from ``addr`` into the top
STORE    write ``beats`` result beats of the top from ``addr`` on, in ``mode``
         (:class:`rtl.dma.StoreMode`) with ``pstride``, ``gstride`` and ``pixels``
=======  ======================================================================================

Command layout (little-endian, bit 0 first): ``op`` [3:0], ``mode`` [5:4], ``beats`` [31:8],
``addr`` [63:32], ``pstride`` [95:64], ``gstride`` [111:96], ``pixels`` [127:112]
(:func:`command_layout`; the ops, the modes and the :class:`~hwsim.rtl_sequence.Command`
list are :mod:`hwsim.rtl_sequence`'s, which also times them; :mod:`rtl.netprog` writes them). A layer is the five commands DESC,
PARAMS, WEIGHTS, ACTS, STORE (the order the top takes its streams in; a residual layer's RESID
before its STORE); a ``STORE`` in ``BYTES``
or ``BITS`` mode writes the outputs where the next layer's ``ACTS`` reads them, so a network's
activations never pass through the host. A command's transfer ends before the next command is
dispatched, but the top works beside the sequencer: :mod:`rtl.netprog` puts each tile's STORE after
the next tile's loads, so the top loads a tile while it runs the one before and the write DMA
stores the bank of the one before that (the top's store engine). A DESC waits for the top's
load side (free once the run side took the tile before); a RESID is dispatched only once the
run side has taken its tile (``i_resid`` ready), so that its read never holds the bus while the
run side still works on the tile before.

The control port is plain signals (``i_start`` pulse, ``i_base``, ``o_busy``, ``o_done``,
``o_error``); an AXI4-Lite register wrapper for a CPU is not generated. ``o_error`` is sticky
until the next start: the top's ``o_error``, a read or write response other than OKAY, or an
unknown op (which also stops the sequencer).
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Module, Mux, Signal, Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from hwsim.rtl_plan import TopGeometry
from hwsim.rtl_sequence import ADDR_BITS, COMMAND_BYTES, Op
from rtl.axi import axi4_members
from rtl.dma import BEATS_BITS, ReadDMA, WriteDMA
from rtl.top import LayerAccelerator

__all__ = ["COMMAND_BYTES", "NetworkAccelerator", "Op", "command_layout"]

def command_layout() -> data.StructLayout:
    """One command (module docstring)."""
    return data.StructLayout({"op": 4, "mode": 2, "pad": 2, "beats": BEATS_BITS,
                              "addr": ADDR_BITS, "pstride": ADDR_BITS, "gstride": 16, "pixels": 16})


class NetworkAccelerator(wiring.Component):
    """The sequencer, the DMA engines and the layer top of ``geo`` (module docstring).

    Members
    -------
    i_start : In(1)
        Start the command list at byte ``i_base`` (taken when not busy).
    i_base : In(32)
    o_busy, o_done, o_error : Out(1)
    m_axi_* :
        The AXI4 master port (:func:`rtl.axi.axi4_members`).
    """

    def __init__(self, geo: TopGeometry) -> None:
        self.top = LayerAccelerator(geo)
        self.geo = geo
        top = self.top
        self.widths = {Op.DESC: len(Value.cast(top.i_desc.payload)),
                       Op.PARAMS: len(Value.cast(top.i_params.payload)),
                       Op.WEIGHTS: len(Value.cast(top.i_weights.payload)),
                       Op.ACTS: len(Value.cast(top.i_acts.payload)),
                       Op.RESID: len(Value.cast(top.i_resid.payload))}
        self.result_bits = len(Value.cast(top.o_results.payload))
        self.lane_bits = top.out_shape.width
        super().__init__({"i_start": In(1), "i_base": In(ADDR_BITS), "o_busy": Out(1),
                          "o_done": Out(1), "o_error": Out(1), **axi4_members(data_bits=geo.bus_bits)})

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        top, geo = self.top, self.geo
        m.submodules.top = top
        layout = command_layout()
        reads = (Op.DESC, Op.PARAMS, Op.WEIGHTS, Op.ACTS, Op.RESID)  # the read DMA's targets op - 1
        assert [op.value for op in reads] == list(range(1, len(reads) + 1))
        m.submodules.reader = rd = ReadDMA([self.widths[op] for op in reads], bus_bits=geo.bus_bits)
        m.submodules.writer = wr = WriteDMA(width=self.result_bits, rows=geo.rows, cols=geo.cols,
                                            lane_bits=self.lane_bits, dim_bits=geo.dim_bits,
                                            bus_bits=geo.bus_bits)
        # The command fetch: one burst of the command's bus words at pc, issued by the sequencer
        # itself ahead of the read DMA's bursts (it is asked for only while the DMA is idle or in
        # its setup cycle, so its words are the next ones on the read channel).
        pc = Signal(ADDR_BITS)
        size = ceil_log2(geo.bus_bits // 8)
        cmd_words = max(1, COMMAND_BYTES * 8 // geo.bus_bits)
        asking, left = Signal(), Signal(range(cmd_words + 1))  # the command's address; words due
        fetched, have = Signal(layout.size), Signal()          # the next command, and its flag
        m.d.comb += [self.m_axi_araddr.eq(Mux(asking, pc >> size << size, rd.araddr)),
                     self.m_axi_arlen.eq(Mux(asking, cmd_words - 1, rd.arlen)),
                     self.m_axi_arsize.eq(rd.arsize), self.m_axi_arburst.eq(rd.arburst),
                     self.m_axi_arvalid.eq(asking | rd.arvalid), rd.arready.eq(self.m_axi_arready & ~asking),
                     rd.i_ahead.eq(asking | (left != 0)),
                     rd.rvalid.eq(self.m_axi_rvalid & (left == 0)), self.m_axi_rready.eq((left != 0) | rd.rready)]
        for name in ("rdata", "rresp", "rlast"):
            m.d.comb += getattr(rd, name).eq(getattr(self, f"m_axi_{name}"))
        with m.If(asking & self.m_axi_arready):
            m.d.sync += [asking.eq(0), left.eq(cmd_words)]
        command_word = (left != 0) & self.m_axi_rvalid
        with m.If(command_word):
            m.d.sync += left.eq(left - 1)
            rdata = self.m_axi_rdata
            if cmd_words > 1:
                m.d.sync += fetched.word_select((cmd_words - left).as_unsigned(), geo.bus_bits).eq(rdata)
            elif geo.bus_bits > layout.size:  # the command's lane of the bus word
                m.d.sync += fetched.eq(rdata.word_select(pc[ceil_log2(COMMAND_BYTES):size], layout.size))
            else:
                m.d.sync += fetched.eq(rdata)
            with m.If(left == 1):
                m.d.sync += have.eq(1)
            with m.If(self.m_axi_rresp != 0):
                m.d.sync += self.o_error.eq(1)
        for name in ("awaddr", "awlen", "awsize", "awburst", "awvalid", "wdata", "wstrb", "wlast",
                     "wvalid", "bready"):
            m.d.comb += getattr(self, f"m_axi_{name}").eq(getattr(wr, name))
        for name in ("awready", "wready", "bresp", "bvalid"):
            m.d.comb += getattr(wr, name).eq(getattr(self, f"m_axi_{name}"))

        cmd = Signal(layout)
        target = Signal.like(rd.i_target, name="target")  # the read DMA's target, cmd.op - 1: a register
        out_ch, groups = Signal(geo.dim_bits), Signal(geo.dim_bits)
        beat = rd.o_beat
        streams = {Op.DESC: top.i_desc, Op.PARAMS: top.i_params, Op.WEIGHTS: top.i_weights,
                   Op.ACTS: top.i_acts, Op.RESID: top.i_resid}
        # which stream the read DMA feeds (one-hot, bit op): a register set when READ is entered
        # and cleared when it is left, so a beat's valid and ready pass one gate here, not the FSM's
        # state decoder. The results go to the write DMA ungated: it is ready only while a STORE's
        # beats are left, and WRITE lasts until they are all written.
        route = Signal(len(reads) + 1)
        for op, stream in streams.items():
            routed = route[op.value]
            m.d.comb += [stream.valid.eq(beat.valid & routed),
                         stream.payload.eq(beat.payload[:self.widths[op]])]
            with m.If(routed):
                m.d.comb += beat.ready.eq(stream.ready)
        m.d.comb += [wr.i_result.payload.eq(top.o_results.payload),
                     wr.i_result.valid.eq(top.o_results.valid), top.o_results.ready.eq(wr.i_result.ready)]
        # The write DMA scatters a tile's results by its descriptor's out_ch and groups. A tile's
        # STORE comes after the next tile's DESC (rtl.netprog), so the descriptors read and not
        # yet stored wait in a queue of two; each STORE takes the oldest.
        desc = top.descriptor(beat.payload[:self.widths[Op.DESC]])
        queued = Signal(range(3))
        later_out_ch, later_groups = Signal(geo.dim_bits), Signal(geo.dim_bits)
        with m.If(top.i_desc.valid & top.i_desc.ready):
            with m.If(queued == 0):
                m.d.sync += [out_ch.eq(desc.out_ch), groups.eq(desc.groups), queued.eq(1)]
            with m.Else():  # a third before a STORE replaces the second (no list does that)
                m.d.sync += [later_out_ch.eq(desc.out_ch), later_groups.eq(desc.groups), queued.eq(2)]
        m.d.comb += [wr.i_out_ch.eq(out_ch), wr.i_groups.eq(groups),
                     wr.i_addr.eq(cmd.addr), wr.i_beats.eq(cmd.beats), wr.i_mode.eq(cmd.mode),
                     wr.i_pstride.eq(cmd.pstride), wr.i_gstride.eq(cmd.gstride),
                     wr.i_pixels.eq(cmd.pixels), rd.i_target.eq(target)]
        with m.If(top.o_error | rd.o_rerror | wr.o_werror):
            m.d.sync += self.o_error.eq(1)

        # The DMAs' start strobes are flip-flops: the command's kind is registered as COMMAND takes
        # it, and the flag cleared as DISPATCH starts the transfer (DISPATCH's state decode is on
        # no path into the DMAs' start logic; a residual's read also waits for the top's RESID);
        # the request fields are the command register's.
        read_now, store_now = Signal(name="read_now"), Signal(name="store_now")
        m.d.comb += [rd.i_start.eq(read_now & ((cmd.op != Op.RESID) | top.i_resid.ready)), rd.i_addr.eq(cmd.addr),
                     rd.i_beats.eq(cmd.beats), wr.i_start.eq(store_now)]
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.i_start):
                    m.d.sync += [pc.eq(self.i_base), asking.eq(1), self.o_done.eq(0), self.o_error.eq(0)]
                    m.next = "COMMAND"
            with m.State("COMMAND"):  # take the fetched command; the next one is asked for on dispatch
                m.d.comb += self.o_busy.eq(1)
                with m.If(have):
                    op = Value.cast(layout(fetched).op)
                    m.d.sync += [cmd.eq(fetched), target.eq(op - 1), have.eq(0), pc.eq(pc + COMMAND_BYTES),
                                 read_now.eq(op.matches(*(r.value for r in reads))), store_now.eq(op == Op.STORE)]
                    m.next = "DISPATCH"
            with m.State("DISPATCH"):
                m.d.comb += self.o_busy.eq(1)
                with m.Switch(cmd.op):
                    with m.Case(Op.END):
                        m.d.sync += self.o_done.eq(1)
                        m.next = "IDLE"
                    with m.Case(*reads):
                        # a residual is read once the top's run side takes it (it has taken
                        # the tile): its beats never wait on the bus for the previous tile's run
                        with m.If((cmd.op != Op.RESID) | top.i_resid.ready):
                            m.d.sync += [route.eq(1 << cmd.op), asking.eq(1), read_now.eq(0)]  # started
                            m.next = "READ"
                    with m.Case(Op.STORE):  # started (store_now)
                        m.d.sync += [asking.eq(1), store_now.eq(0)]
                        m.next = "WRITE"
                    with m.Default():
                        m.d.sync += [self.o_error.eq(1), self.o_done.eq(1)]
                        m.next = "IDLE"
            with m.State("READ"):
                m.d.comb += self.o_busy.eq(1)
                with m.If(~rd.o_busy):
                    m.d.sync += route.eq(0)
                    m.next = "COMMAND"
            with m.State("WRITE"):
                m.d.comb += self.o_busy.eq(1)
                with m.If(~wr.o_busy):  # that tile is stored: the next one's descriptor moves up
                    m.d.sync += [out_ch.eq(later_out_ch), groups.eq(later_groups),
                                 queued.eq(Mux(queued == 0, 0, queued - 1))]
                    m.next = "COMMAND"
        return m
