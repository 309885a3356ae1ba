"""The accelerator top: its buffers, the layer controller and its components around the array.

A tile (a layer, or a piece of one: :mod:`hwsim.rtl_plan`) passes two sides of the controller
and then the store engine, each working on a different tile at once: while the run side
computes tile ``t`` from one bank of the input buffers, the load side loads tile ``t + 1`` into
the other, and the store engine streams tile ``t - 1``'s results from the other out bank::

    load side
    DESC     one beat on i_desc: the tile's descriptor (:func:`descriptor_layout`)
    PARAMS   G * NT beats on i_params: per-channel output parameters, one word per output tile
    WEIGHTS  G * NT * KS beats on i_weights: one word of ``cols`` weights per (tile, step)
    ACTS     ceil(G * H * W * CW / act_beat) beats on i_acts: act_beat activation words a beat,
             one word per (group, pixel, channel word) in that order
    HAND     from the cycle after the last ACTS beat (HAND_CYCLES) until the run side is idle
             (and the descriptor's geometry complete, GEOMETRY_CYCLES after its register was
             written): the run side takes the tile, the input banks swap, DESC follows

    run side
    IDLE     until it takes a tile
    RESID    folds * rows beats on i_resid, a ``residual`` tile only: its shortcut, one out word
             per beat in out buffer order, into the out buffer; each row the output stage
             requantizes adds the word it then overwrites, before the clamp
    WALK     ``rows`` cycles: the pixel walker loads the input coordinates of the first row tile
    RUN      every fold streams through the array; results are requantized into the out buffer;
             meanwhile the walker loads the next row tile's pixels into its second set, swapped
             in after the row tile's last step (WAIT until that walk is complete)
    FLUSH    the last fold's rows reach the out buffer; then, once the store engine is free,
             the out bank goes to it, IDLE follows

    store engine
    (store)  folds * rows beats on o_results, the bank in write order, two read cycles first
             (none for a K tile that writes partial sums: it keeps its bank)

with ``G`` groups, ``Cg``/``Og`` input/output channels per group, ``NT = ceil(Og / cols)`` output
tiles per group, ``CW = ceil(Cg / lanes)`` channel words per pixel (``lanes`` is 1 except for xnor,
whose words pack ``lanes`` channels), ``KS = kh * kw * CW`` steps per fold and
``M = out_h * out_w`` output pixels. Folds run row tile (``rows`` pixels) outermost, then group,
then output tile; the reduction order within a fold is ``(ky, kx, channel word)``.

**Depthwise** (the ``depthwise`` flag, a top with ``dw_lanes = L``: :func:`hwsim.rtl_plan.channel_parallel`):
the descriptor's ``G`` groups are fold groups of ``L`` channels with one input and one output
channel each; fold group ``b`` runs channel ``b * L + c`` on column ``c`` (the array's depthwise
mode, :class:`rtl.array.SystolicArray`). Activations are then channels-last over all ``G * L``
channel slots, ``(iy * W + ix) * G * L + channel`` (slots past the layer's channels 0), so one
buffer word holds a fold group's channels of one pixel; weight word ``b * KS + (ky * kw + kx)``
and parameter word ``b`` hold lane ``c`` for channel ``b * L + c``, and out word lane ``c`` is
that channel.

Buffer layouts (word addresses, written in stream order):

Every buffer but the psum buffer has two banks of the depth the geometry gives (one for the
loads or the store, one for the run), so a tile uses the whole configured capacity.

* activations: ``((g * H + iy) * W + ix) * CW + cw`` -- channels last, one word per ``lanes``
  channels (xnor: bit ``l`` of word ``cw`` is channel ``cw * lanes + l``, lanes past ``Cg`` are 0),
  word ``a`` in lane ``a mod act_beat`` of buffer word ``a div act_beat`` (a beat per buffer word);
  with fold overlap buffer word ``i`` is in bank ``i mod B`` at ``i >> k``
  (:func:`contract.act_banks`: ``B`` banks of one read port each, the operand fetch serving each
  step's rows from them), else in a copy per array row;
* weights: ``((g * NT + t) * KS) + (ky * kw + kx) * CW + cw``, word lane ``c`` holding the weight
  of output channel ``t * cols + c`` of group ``g`` (0 past ``Og``; xnor lanes past ``Cg`` are 1,
  so that padded lanes never agree with the 0 activation lanes);
* parameters: ``g * NT + t``, lane ``c`` for the same channel as the weights
  (:func:`rtl.requant.param_layout`);
* outputs: ``fold * rows + j`` holds row ``rows - 1 - j`` of the fold (the array drains its bottom
  row first), lane ``c`` its output channel ``t * cols + c``. Rows past ``M`` and lanes past
  ``Og`` carry don't-care values.
* partial sums (``psum_words`` > 0): word ``fold * rows + j`` holds the raw sums of out word
  ``fold * rows + j``, ``psum_bits`` per lane.

**K tiles.** A layer whose fold exceeds ``max_steps`` runs as K tiles, one descriptor each, over
slices of its input channels (``in_ch`` the slice's), with the same groups, output tiles and rows
and so the same folds in the same order (:func:`hwsim.rtl_plan.split`): the first with
``psum_write`` (its accumulators go raw to the psum buffer; no STORE, no results), the middle ones
with ``psum_add`` and ``psum_write`` (each row plus the word at its address, written back), the
last with ``psum_add`` (the sum over the whole reduction is requantized -- bias once, here -- or
compared with ``k_in_ch * kh * kw`` as the xnor K, and stored). Padding positions count in every
slice's positions, so they count once per input channel in K, as :mod:`models.intref` defines.

Components (each with its own simulator test in ``tests/test_rtl_top_parts.py`` or
``tests/test_rtl_controller_fsm.py``), joined with ``wiring.connect`` where the signatures match
(streams, memory ports)::

    i_desc -> LayerController -> control inputs of the parts below          (rtl.controller)
    i_params/i_weights/i_acts -> Loader -> param/weight/act buffers      (rtl.buffers)
    i_resid -> Loader (the run side's) -> out buffer                      (rtl.buffers)
    act/weight buffers -> OperandFetch -> SystolicArray                   (rtl.im2col, rtl.array)
    SystolicArray -> ResultWriter <-> OutputStage; ResultWriter -> out buffer  (rtl.buffers, rtl.requant)
    ResultWriter <-> psum buffer (read two rows ahead into a register, written back)  (rtl.buffers)
    out buffer -> StoreStream -> o_results                                (rtl.buffers)

:class:`~rtl.controller.LayerController` holds the descriptors, the two FSMs of the phases above,
their loop nests (group, output tile, ky, kx, channel word) that PARAMS, WEIGHTS and RUN step,
and the sticky error flags. :class:`~rtl.im2col.LayerGeometry` registers the load side's
descriptor's derived sizes (the run side copies them with the tile) and
:class:`~rtl.im2col.PixelWalker` loads each row tile's input coordinates for the fetch (im2col on
the fly, see :mod:`rtl.im2col`; positions outside the input read as 0, xnor: bit 0, i.e. -1,
counted in K, as :mod:`models.intref` defines padding). :meth:`LayerAccelerator.elaborate` only
instantiates and connects.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from hwsim.accelerator import Accelerator
from hwsim.rtl_plan import TopGeometry, top_geometry
from rtl.array import SystolicArray
from rtl.buffers import LoadTarget, Loader, ResultWriter, StoreStream, out_word, param_word, psum_word
from rtl.controller import LayerController
from rtl.im2col import (LayerGeometry, OperandFetch, PixelWalker, act_word, bank_address, check_geometry,
                         descriptor_layout, pe_spec, weight_word)
from rtl.pe import PE_CLASSES, check_int
from rtl.requant import OutputStage, out_shape, param_layout

__all__ = ["LayerAccelerator", "descriptor_layout", "pe_spec"]


class LayerAccelerator(wiring.Component):
    """Runs one conv2d (kernel, stride, padding, groups) or linear layer per descriptor.

    Parameters
    ----------
    geo : TopGeometry
        Every parameter of the top (:func:`hwsim.rtl_plan.top_geometry` makes it from an
        Accelerator; :meth:`from_accelerator` does both): PE kind, operand width (xnor: 1; also
        the requantized output width), array ``rows x cols``, xnor ``lanes`` (a power of two),
        shift ``max_shift``, ``max_steps`` (longest fold), ``acc_bits``, ``bias_bits``,
        ``dim_bits``, the four buffer depths in words and ``psum_words`` (the psum buffer's
        depth; 0: none, the top runs no K tiles).

    Raises TypeError for a non-TopGeometry, ValueError naming the parameter when one is out of
    range or a buffer cannot hold one fold (``weight_words < max_steps``, ``out_words < rows``).

    Members
    -------
    i_desc : In(stream.Signature(descriptor_layout(dim_bits)))
        The layer descriptor; accepted only between layers (``ready`` high in DESC).
    i_params : In(stream.Signature(ArrayLayout(param_layout, cols)))
        Output-stage parameters, one word per output tile; ``ready`` only in PARAMS.
    i_weights : In(stream.Signature(ArrayLayout(w_shape, cols)))
        Weight words; ``ready`` only in WEIGHTS.
    i_acts : In(stream.Signature(ArrayLayout(x_shape, act_beat)))
        Activation words, ``act_beat`` a beat (:func:`~rtl.im2col.act_word`); ``ready`` only in ACTS.
    i_resid : In(stream.Signature(ArrayLayout(out_shape, cols)))
        A residual layer's shortcut, one out word per beat in out buffer order; ``ready`` only in
        RESID.
    o_results : Out(stream.Signature(ArrayLayout(out_shape, cols)))
        Output words in out-buffer order; ``valid`` only while the store engine streams a bank.
    o_error : Out(1)
        A load or the results overran a buffer (the excess was dropped) or the descriptor's fold
        is longer than ``max_steps``; the outputs are invalid. High from then until the next
        descriptor and, for a layer with results, until its last result beat (the store engine
        keeps it); it may then also show an error of the layer running beside that store.
    """

    def __init__(self, geo: TopGeometry) -> None:
        if not isinstance(geo, TopGeometry):
            raise TypeError(f"`geo` must be a TopGeometry, not {geo!r}")
        if geo.pe not in PE_CLASSES:
            raise ValueError(f"`pe` must be one of {', '.join(PE_CLASSES)}, not {geo.pe!r}")
        self.geo = geo
        self.kind = geo.pe
        self.rows = check_int("rows", geo.rows, 1)
        self.cols = check_int("cols", geo.cols, 1)
        self.max_steps = check_int("max_steps", geo.max_steps, 1)
        self.lanes = check_int("lanes", geo.lanes, 1)
        if self.lanes & (self.lanes - 1) or (geo.pe != "xnor" and self.lanes != 1):
            raise ValueError(f"`lanes` must be a power of two (1 except for xnor), not {geo.lanes!r}")
        self.dim_bits = check_int("dim_bits", geo.dim_bits, 2, 16)
        self.words = {name: check_int(name, value, 1) for name, value in geo.words.items()}
        check_geometry(geo)  # act_beat
        if geo.weight_words < geo.max_steps:
            raise ValueError(f"`weight_words` of {geo.weight_words} cannot hold one fold of "
                             f"max_steps={geo.max_steps} steps")
        if geo.out_words < geo.rows:
            raise ValueError(f"`out_words` of {geo.out_words} cannot hold one fold of rows={geo.rows} rows")
        self.bits, self.max_shift = geo.bits, geo.max_shift
        self.positions = geo.positions
        self.bias_bits = check_int("bias_bits", geo.bias_bits, 1, 64)
        self.pe = pe_spec(geo)
        self.acc_shape = self.pe.acc_shape
        self.descriptor = descriptor_layout(self.dim_bits)
        self.x_shape, self.w_shape = self.pe.x_shape, self.pe.w_shape
        self.params = param_layout(geo.pe, bias_bits=self.bias_bits, positions=self.positions)
        self.out_shape = out_shape(geo.pe, bits=geo.bits, positions=self.positions)
        self.param_word, self.weight_word, self.out_word = param_word(geo), weight_word(geo), out_word(geo)
        self.act_word = act_word(geo)
        super().__init__({
            "i_desc": In(stream.Signature(self.descriptor)),
            "i_params": In(stream.Signature(self.param_word)),
            "i_weights": In(stream.Signature(self.weight_word)),
            "i_acts": In(stream.Signature(self.act_word)),
            "i_resid": In(stream.Signature(self.out_word)),
            "o_results": Out(stream.Signature(self.out_word)),
            "o_error": Out(1),
        })

    @classmethod
    def from_accelerator(cls, acc: Accelerator) -> LayerAccelerator:
        """The top that ``hwsim rtl generate`` emits for ``acc`` (raises ConfigError naming the
        field the generator cannot build)."""
        return cls(top_geometry(acc))

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        geo, rows, cols = self.geo, self.rows, self.cols
        m.submodules.control = ctrl = LayerController(geo)
        m.submodules.array = arr = SystolicArray(rows=rows, cols=cols, pe=self.pe, dw_lanes=geo.dw_lanes,
                                                 overlap=geo.fold_overlap)
        m.submodules.geometry = geometry = LayerGeometry(geo)
        m.submodules.walker = walker = PixelWalker(geo)
        m.submodules.fetch = fetch = OperandFetch(geo)
        m.submodules.writer = writer = ResultWriter(geo)
        m.submodules.output = out_stage = OutputStage(
            kind=self.kind, cols=cols, acc_shape=psum_word(geo).elem_shape, bits=self.bits,
            positions=self.positions, bias_bits=self.bias_bits, max_positions=geo.max_positions)
        m.submodules.store = store = StoreStream(geo)
        m.submodules.loader = loader = Loader(geo, (LoadTarget.PARAMS, LoadTarget.WEIGHTS, LoadTarget.ACTS))
        m.submodules.resid_loader = resid_loader = Loader(geo, (LoadTarget.RESID,))
        for name in ("i_params", "i_weights", "i_acts"):
            wiring.connect(m, wiring.flipped(getattr(self, name)), getattr(loader, name))
        wiring.connect(m, wiring.flipped(self.i_resid), resid_loader.i_resid)
        self._input_banks(m, ctrl.o_in_bank, loader, fetch, writer)
        wiring.connect(m, fetch.o_operands, arr.i_operands)
        wiring.connect(m, arr.o_results, writer.i_acc)
        wiring.connect(m, writer.o_acc, out_stage.i_acc)
        wiring.connect(m, out_stage.o_y, writer.i_y)
        self._out_banks(m, ctrl, resid_loader, writer, store)
        if geo.pe != "xnor":
            m.d.comb += out_stage.i_res.eq(writer.o_res)
        if geo.dw_lanes:
            m.d.comb += arr.i_dw.eq(ctrl.o_desc.depthwise)
        if geo.psum_words:
            m.submodules.psum_buf = psum = Memory(shape=psum_word(geo), depth=geo.psum_words, init=[])
            wiring.connect(m, writer.psum_rd, psum.read_port())
            wiring.connect(m, writer.psum_wr, psum.write_port())
        wiring.connect(m, store.o_results, wiring.flipped(self.o_results))

        wiring.connect(m, wiring.flipped(self.i_desc), ctrl.i_desc)
        # the load side's geometry, and the run side's copy of it (taken with the tile)
        ld, d, sizes = ctrl.o_load_desc, ctrl.o_desc, geometry.o_geo
        run_sizes = Signal.like(sizes)
        stored_error = Signal()  # the error of the tile the store engine streams
        with m.If(ctrl.o_take):
            m.d.sync += run_sizes.eq(sizes)
        with m.If(ctrl.o_store_start):
            m.d.sync += stored_error.eq(ctrl.o_run_error)
        take = ctrl.o_take
        m.d.comb += [
            self.o_error.eq(ctrl.o_error | (store.o_busy & stored_error)),
            geometry.i_desc.eq(ld), ctrl.i_too_long.eq(sizes.too_long),
            ctrl.i_act_words.eq(sizes.act_words), ctrl.i_act_one_beat.eq(sizes.act_one_beat), ctrl.i_pixels.eq(run_sizes.pixels),
            loader.i_target.eq(ctrl.o_load_target), loader.i_restart.eq(ctrl.o_load_restart),
            ctrl.i_load_fire.eq(loader.o_fire), ctrl.i_load_overrun.eq(loader.o_overrun),
            resid_loader.i_target.eq(Mux(ctrl.o_resid, LoadTarget.RESID, LoadTarget.NONE)),
            resid_loader.i_restart.eq(take), ctrl.i_resid_fire.eq(resid_loader.o_fire),
            ctrl.i_resid_overrun.eq(resid_loader.o_overrun),
            walker.i_desc.eq(d), walker.i_geo.eq(run_sizes), walker.i_start.eq(take),
            walker.i_first.iy.eq(-ld.pad_h), walker.i_first.ix.eq(-ld.pad_w),
            walker.i_first.room_y.eq(ld.in_h + ld.pad_h), walker.i_first.room_x.eq(ld.in_w + ld.pad_w),
            walker.i_first.p.eq(sizes.origin), walker.i_first.phase.eq(sizes.origin_phase),
            walker.i_first.last.eq(ld.out_w == 1),
            walker.i_step.eq(ctrl.o_walk_step), walker.i_direct.eq(ctrl.o_walk_direct),
            walker.i_swap.eq(ctrl.o_walk_swap), ctrl.i_walk_last.eq(walker.o_last),
            ctrl.i_walk_pending.eq(walker.o_pending), ctrl.i_walk_full.eq(walker.o_full),
            fetch.i_desc.eq(d), fetch.i_geo.eq(run_sizes), fetch.i_rows.eq(walker.o_rows),
            fetch.i_start.eq(take), fetch.i_run.eq(ctrl.o_fetch_run),
            fetch.i_pos.eq(ctrl.o_pos), ctrl.i_fetch_issue.eq(fetch.o_issue),
            writer.i_desc.eq(d), writer.i_clear.eq(take), writer.i_idle.eq(ctrl.o_run_idle),
            ctrl.i_written_next.eq(writer.o_written_next), ctrl.i_write_overrun.eq(writer.o_overrun),
            out_stage.i_params.eq(writer.o_params), out_stage.i_relu.eq(d.relu),
            out_stage.i_binary.eq(d.binary_out), out_stage.i_positions.eq(run_sizes.positions),
            store.i_words.eq(ctrl.o_store_words), store.i_start.eq(ctrl.o_store_start),
            store.i_bank.eq(ctrl.o_bank), ctrl.i_store_free.eq(store.o_free),
        ]
        return m

    def _input_banks(self, m: Module, in_bank: Any, loader: Loader, fetch: OperandFetch,
                     writer: ResultWriter) -> None:
        """Two banks of the parameter, weight and activation buffers: the loads write bank
        ``in_bank``, the run reads the other one. Both banks are one memory with the bank as the
        top address bit (bank 1 from word ``2**n``, ``n`` the bits of a bank's depth), so the run
        reads its word straight from the block RAM, without a mux between the banks. One read
        port per memory: the activation buffer is ``B`` such memories with fold overlap
        (``geo.act_banks``, :func:`contract.act_banks`: word ``i`` in memory ``i mod B`` at ``i >>
        k``, so each load beat writes one memory), else one per array row, each written by every
        load beat and read by its row only (Yosys would replicate a memory per read port itself,
        but its memory_libmap runs out of memory at 16 read ports)."""
        geo = self.geo
        depth = {**self.words, "act_words": geo.act_bank_words}
        shapes = {"act": self.act_word, "weight": self.weight_word, "param": self.param_word}
        readers = {"act": list(fetch.act_rd), "weight": [fetch.weight_rd], "param": [writer.param_rd]}
        for name, shape in shapes.items():
            write, words = getattr(loader, f"{name}_wr"), depth[f"{name}_words"]
            bank = ceil_log2(words)  # the bank's address bit
            addr, writes = write.addr, [write.en] * len(readers[name])
            if name == "act" and geo.act_banks:  # word i in bank i mod B (the loader's one-hot) at i >> k
                addr = bank_address(geo, write.addr)
                writes = [write.en & loader.o_act_bank[b] for b in range(geo.act_banks)]
            for r, (port, en) in enumerate(zip(readers[name], writes)):
                label = f"{name}_buf" + (f"_{r}" if r else "")  # bank r, or row r's copy
                mem = m.submodules[label] = Memory(shape=shape, depth=(1 << bank) + words, init=[])
                wr, rd = mem.write_port(), mem.read_port()
                m.d.comb += [wr.addr.eq(Cat(addr[:bank], in_bank)), wr.data.eq(write.data),
                             wr.en.eq(en), rd.addr.eq(Cat(port.addr[:bank], ~in_bank)),
                             rd.en.eq(port.en), port.data.eq(rd.data)]

    def _out_banks(self, m: Module, ctrl: Any, loader: Loader, writer: ResultWriter, store: StoreStream) -> None:
        """The two out buffer banks: the controller's bank (``o_bank``) is written by RESID's
        loads or the writer and read by the writer (the residual, from both banks' ports); the
        other one is read by the store engine while it streams it. A bank's ports follow
        whichever side has it."""
        if self.geo.pe != "xnor":
            m.d.comb += writer.i_res_bank.eq(ctrl.o_bank)
        for b in range(2):
            mem = m.submodules[f"out_buf{b}"] = Memory(shape=self.out_word, depth=self.geo.out_words, init=[])
            wr, rd = mem.write_port(), mem.read_port()
            ours = ctrl.o_bank == b
            for name in ("addr", "data"):
                m.d.comb += getattr(wr, name).eq(Mux(loader.resid_wr.en, getattr(loader.resid_wr, name),
                                                     getattr(writer.out_wr, name)))
            m.d.comb += wr.en.eq((loader.resid_wr.en | writer.out_wr.en) & ours)
            stores, port = store.o_busy & (store.o_bank == b), getattr(store, f"out_rd{b}")
            if self.geo.pe != "xnor":
                res = getattr(writer, f"res_rd{b}")
                m.d.comb += [rd.addr.eq(Mux(stores, port.addr, res.addr)),
                             rd.en.eq(Mux(stores, port.en, res.en)), res.data.eq(rd.data)]
            else:
                m.d.comb += [rd.addr.eq(port.addr), rd.en.eq(port.en)]
            m.d.comb += port.data.eq(rd.data)
