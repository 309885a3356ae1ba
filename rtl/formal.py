"""Formal property harnesses of the accelerator top's stream and memory interfaces, and of the
network accelerator's read DMA on its AXI4 port (:class:`ReadDMAHarness`).

A harness closes one generated block (built from a :class:`~hwsim.rtl_plan.TopGeometry`) into a
design without ports for SymbiYosys (:mod:`rtl.formal_sby` writes and runs it): the harness drives
every input of the block with free values (``AnySeq``), states what the block's environment
promises as ``Assume`` and what the block promises as ``Assert``. The properties:

* **stream rules** (:func:`stream_rules`, ``amaranth.lib.stream``): a source holds ``valid`` until
  ``ready`` and keeps its payload stable while ``valid & ~ready`` -- asserted on every output
  stream of the block, assumed on its inputs;
* **no beat dropped or duplicated**: the beats a block takes or gives are counted against what
  the descriptor implies (:func:`hwsim.rtl_plan.plan`'s words: params, weights, activation
  beats, residual words, and ``folds * rows`` results), or against word addresses (beat ``n`` goes to, or comes from, word
  ``n``);
* **no buffer overflow or underflow**: every memory write is below the buffer's depth, loads and
  results past a buffer's end are flagged and dropped, stores read only written words, and a
  layer that fits (every descriptor :func:`~hwsim.rtl_plan.plan` accepts) never raises ``o_error``;
* **liveness, bounded**: with an eager environment (inputs always valid, results always ready)
  every layer ends with its last result beat exactly at :func:`hwsim.rtl_timing.plan_cycles`'s
  total, and the controller is back in DESC.

The top's host sends, layer after layer, any of a list of plans: the shapes within an
:class:`Envelope` that :func:`~hwsim.rtl_plan.plan` accepts (:func:`layer_cases`), or the few of
them that exercise every loop level and geometry option (:func:`covering_cases`: the SMT cost
grows fast with the number of cases). Their beat counts and cycles come from the same plan, so
no formula is restated here.

Blocks whose proof needs a hidden register (a counter the ports do not show) are elaborated by
the harness itself and the register is found by name (:func:`_registers`), so that an
invariant can tie it to what the harness counts and k-induction closes.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from amaranth.asserts import AnySeq
from amaranth.hdl import (Assert, Assume, Cat, Cover, Elaboratable, Fragment, Module, Mux, ResetSignal,
                          Signal, Value)
from amaranth.lib import data, stream
from amaranth.lib.memory import ReadPort
from amaranth.utils import ceil_log2

from hwsim.errors import DoesNotFit
from hwsim.rtl_plan import LayerPlan, LayerShape, TopGeometry, plan
from hwsim.rtl_sequence import ADDR_BITS, BOUNDARY_BYTES, MAX_BURST, MAX_OUTSTANDING
from hwsim.rtl_timing import plan_cycles
from rtl.array import SystolicArray
from rtl.buffers import LoadTarget, Loader, ResultWriter, StoreStream
from rtl.dma import ReadDMA, slot_bytes
from rtl.im2col import OperandFetch, check_geometry, pe_spec
from rtl.top import LayerAccelerator

__all__ = ["ArrayHarness", "Envelope", "FetchHarness", "LoaderHarness", "ReadDMAHarness", "StoreHarness",
           "TopHarness", "WriterHarness", "covering_cases", "layer_cases", "stream_rules"]


def _free(m: Module, *values: Any) -> None:
    """Drive each of ``values`` with a fresh unconstrained value every cycle."""
    for value in values:
        value = Value.cast(value)
        m.d.comb += value.eq(AnySeq(value.shape()))


def _closed(m: Module) -> None:
    """The harness never resets: registers start at their init values (the BMC's first state)."""
    m.d.comb += Assume(~ResetSignal())


def stream_rules(m: Module, port: stream.Interface, check: Any, name: str, *,
                 payload: bool = True) -> None:
    """``check`` (``Assert`` or ``Assume``) the source's rules on ``port``: a beat offered and
    not taken is offered again next cycle (with the same payload, unless ``payload`` is False)."""
    stalled = Signal(name=f"{name}_stalled")
    m.d.sync += stalled.eq(port.valid & ~port.ready)
    with m.If(stalled):
        m.d.comb += check(port.valid, f"{name}: valid dropped before ready")
    if payload:
        held = Signal(Value.cast(port.payload).shape(), name=f"{name}_held")
        m.d.sync += held.eq(port.payload)
        with m.If(stalled):
            m.d.comb += check(Value.cast(port.payload) == held, f"{name}: payload changed while stalled")


def _source(m: Module, port: stream.Interface, name: str, *, eager: bool = False,
            payload: Any = None) -> None:
    """The environment drives ``port`` into the block: free beats (``payload``, else a free
    payload) obeying the stream rules; ``eager``: a beat is always offered."""
    _free(m, port.valid)
    if payload is None:
        _free(m, port.payload)
    else:
        m.d.comb += Value.cast(port.payload).eq(payload)
    stream_rules(m, port, Assume, name)
    if eager:
        m.d.comb += Assume(port.valid)


def _sink(m: Module, port: stream.Interface, name: str, *, eager: bool = False,
          payload: bool = True) -> None:
    """The environment takes ``port`` out of the block, ready when it likes (``eager``: always);
    the block must obey the stream rules (``payload``: :func:`stream_rules`)."""
    _free(m, port.ready)
    stream_rules(m, port, Assert, name, payload=payload)
    if eager:
        m.d.comb += Assume(port.ready)


def _any_memory(m: Module, port: ReadPort.Signature) -> None:
    """A synchronous read port onto a memory of arbitrary, even changing, contents: the data
    changes only in a cycle after ``en``."""
    with m.If(port.en):
        m.d.sync += Value.cast(port.data).eq(AnySeq(Value.cast(port.data).shape()))


def _elaborated(m: Module, name: str, block: Elaboratable) -> Fragment:
    """Elaborate ``block`` as submodule ``name`` of ``m``: its fragment is the white-box handle
    on registers and parts the block keeps to itself (:func:`_registers`, :func:`_part`), with
    the block's code left as it is."""
    fragment = Fragment.get(block, platform=None)
    m.submodules[name] = fragment
    return fragment


def _registers(fragment: Fragment) -> dict[str, Signal]:
    """The registers ``fragment`` itself assigns, by name: what an invariant ties a hidden
    counter to (so that an induction closes) or a read address is checked on."""
    return {signal.name: signal for statement in fragment.statements.get("sync", ())
            for signal in statement._lhs_signals()}


def _part(fragment: Fragment, name: str) -> tuple[Any, Fragment]:
    """The component a block instantiated as submodule ``name``, and its fragment."""
    sub = fragment.find_subfragment(name)
    return sub.origins[0], sub


def _in_state(fsm_state: Signal, name: str) -> Value:
    """``fsm_state`` (an ``m.FSM``'s state register) is in state ``name``."""
    code = 0
    while not fsm_state.decoder(code).startswith(f"{name}/"):  # raises past the last state
        code += 1
    return fsm_state == code


def _counter(m: Module, name: str, limit: int, step: Any, clear: Any) -> Signal:
    """Beats since ``clear`` (which takes priority), counting ``step`` up to ``limit``."""
    count = Signal(range(limit + 1), name=name)
    with m.If(clear):
        m.d.sync += count.eq(0)
    with m.Elif(step & (count < limit)):
        m.d.sync += count.eq(count + 1)
    return count


@dataclass(frozen=True)
class Envelope:
    """The layer shapes a top harness may be sent: every conv within these bounds (totals over
    groups) that :func:`~hwsim.rtl_plan.plan` accepts; a linear layer is the 1x1 case."""

    size: int = 2
    channels: int = 3
    groups: int = 2
    kernel: int = 2
    stride: int = 2
    pad: int = 1

    def shapes(self) -> Iterable[LayerShape]:
        span = range(1, self.size + 1), range(1, self.kernel + 1), range(1, self.stride + 1)
        for (in_h, in_w), (kh, kw), (sh, sw), ph, pw, groups, cin, cout in itertools.product(
                itertools.product(span[0], repeat=2), itertools.product(span[1], repeat=2),
                itertools.product(span[2], repeat=2), range(self.pad + 1), range(self.pad + 1),
                range(1, self.groups + 1), range(1, self.channels + 1), range(1, self.channels + 1)):
            yield LayerShape(True, cin * groups, cout * groups, in_h, in_w, (kh, kw), (sh, sw),
                             (ph, pw), groups)


def layer_cases(geo: TopGeometry, envelope: Envelope) -> list[LayerPlan]:
    """Every distinct plan of :meth:`Envelope.shapes` that fits ``geo``, in a stable order."""
    cases: dict[tuple[int, ...], LayerPlan] = {}
    for shape in envelope.shapes():
        try:
            p = plan(geo, shape)
        except DoesNotFit:
            continue
        cases.setdefault(tuple(p.descriptor().values()), p)
    return list(cases.values())


def _features(p: LayerPlan) -> set[str]:
    """The loop-nest levels and geometry options a plan exercises (more than one of each, or
    nonzero)."""
    counts = {"groups": p.groups, "tiles": p.tiles, "row_tiles": p.row_tiles,
              "channel_words": p.channel_words, "kernel_h": p.kernel[0], "kernel_w": p.kernel[1],
              "stride_h": p.stride[0], "stride_w": p.stride[1], "pad_h": p.padding[0] + 1,
              "pad_w": p.padding[1] + 1, "in_h": p.in_h, "in_w": p.in_w, "out_w": p.out_w}
    return {name for name, count in counts.items() if count > 1}


def covering_cases(cases: list[LayerPlan], count: int) -> list[LayerPlan]:
    """At most ``count`` of ``cases`` that together exercise every feature any of them has
    (:func:`_features`), greedily: each pick adds the most features not yet exercised."""
    chosen: list[LayerPlan] = []
    missing = set().union(*map(_features, cases))
    while missing and len(chosen) < count:
        best = max(cases, key=lambda p: len(_features(p) & missing))
        chosen.append(best)
        missing -= _features(best)
    return chosen


class TopHarness(Elaboratable):
    """The whole :class:`~rtl.top.LayerAccelerator` under a host that sends layers of ``cases``.

    The host offers a descriptor only once the last layer's results are all out (the top would
    take it while the last layer runs and stores; this harness checks one layer at a time, and
    ``overlap`` tiles back to back). Asserted: ``o_results`` holds ``valid`` until ``ready``; per layer, the
    params, weights, acts, residual and result beats never exceed the plan's words, come phase
    after phase (params, weights, acts, resid, results; the cases have no residual, so none is
    taken), and all have been taken or given when the next layer starts; ``o_error`` stays low;
    every issued step reads a loaded weight word and every accumulator row a loaded parameter
    word. With ``eager`` (every input valid as soon as allowed, results always ready) also: the
    layer's last result beat comes at :func:`~hwsim.rtl_timing.plan_cycles`'s total, counted
    from the descriptor, and no layer lasts longer. Covered: a layer of each case completes.
    With ``overlap`` (eager host only) a descriptor is always offered, so that the top loads a
    tile while earlier ones run and store: each tile's load beats are checked as above between
    its descriptor and the next, its results against a queue of the tiles in flight (never more
    than three with results due), ``o_error`` stays low; covered: a descriptor taken while two
    earlier tiles' results are due.
    """

    #: The counted streams, in the order a layer takes or gives them, with the plan's words.
    PHASES = (("params", "i_params", "param_words"), ("weights", "i_weights", "weight_words"),
              ("acts", "i_acts", "act_words"), ("resid", "i_resid", "resid_words"),
              ("results", "o_results", "out_words"))

    #: Tiles whose results may be pending at once in ``overlap`` mode (store, run, loads; the
    #: fourth slot would only fill if the top took a tile too early: asserted never).
    IN_FLIGHT = 4

    def __init__(self, geo: TopGeometry, cases: list[LayerPlan], *, eager: bool = False,
                 overlap: bool = False) -> None:
        if not cases:
            raise ValueError("`cases` is empty: no layer of the envelope fits the top")
        if overlap and not eager:
            raise ValueError("`overlap` needs the eager host")
        self.geo, self.cases, self.eager, self.overlap = check_geometry(geo), cases, eager, overlap
        self.top = LayerAccelerator(geo)

    def _expected(self, p: LayerPlan) -> dict[str, int]:
        words = {**p.words(self.geo.rows), "resid_words": p.resid_words(self.geo.rows)}
        counts = {name: words[key] for name, _, key in self.PHASES}
        counts["acts"] = self.geo.act_beats(counts["acts"])
        return {**counts, "cycles": plan_cycles(self.geo, p)["total"]}

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        top = self.top
        fragment = _elaborated(m, "top", top)
        _closed(m)
        table = [self._expected(p) for p in self.cases]
        expect_layout = data.StructLayout({name: range(max(t[name] for t in table) + 1)
                                           for name in table[0]})
        pick, desc = Signal(range(len(self.cases)), name="pick"), Signal(top.descriptor)
        offered = Signal(expect_layout)
        _free(m, pick, desc.relu, desc.binary_out, desc.pad_low)
        m.d.comb += Assume(pick < len(self.cases))
        with m.Switch(pick):
            for i, (p, expect) in enumerate(zip(self.cases, table)):
                with m.Case(i):
                    m.d.comb += [getattr(desc, name).eq(v) for name, v in p.descriptor().items()]
                    m.d.comb += [getattr(offered, name).eq(v) for name, v in expect.items()]
        # the host sends a descriptor once the last layer's results are all out (a layer's
        # store overlaps the next layer otherwise; this harness checks layers one by one)
        _source(m, top.i_desc, "i_desc", payload=desc)
        for _, port, _ in self.PHASES[:-1]:
            _source(m, getattr(top, port), port, eager=self.eager)
        # The payload rule is StoreStream's (StoreHarness, for any buffer contents): left out
        # here, so that no assertion reaches the datapath and Yosys drops it from the model.
        _sink(m, top.o_results, "o_results", eager=self.eager, payload=False)

        new = top.i_desc.valid & top.i_desc.ready
        expect, started = Signal(expect_layout), Signal()
        with m.If(new):
            m.d.sync += [expect.eq(offered), started.eq(1)]
        if self.overlap:
            return self._overlapped(m, table, new, offered, expect, started)
        complete = Signal()  # the last layer's results are all out (or none was sent)
        counts = self._counted(m, self.PHASES, table, new, expect)
        ends = [counts[name] == getattr(expect, name) for name, _, _ in self.PHASES]
        # buffer reads of the layer's words only (all loaded by RUN): the weight word of every
        # issued step, the parameter word of every accumulator row
        fetch, fetch_fragment = _part(fragment, "fetch")
        writer, _ = _part(fragment, "writer")
        with m.If(fetch.o_issue):
            m.d.comb += Assert(_registers(fetch_fragment)["waddr"] < expect.weights,
                               "a weight word read past the loaded ones")
        with m.If(writer.i_acc.valid):
            m.d.comb += Assert(writer.param_rd.addr < expect.params,
                               "a parameter word read past the loaded ones")
        m.d.comb += complete.eq(~started | (counts["results"] == expect.results))
        m.d.comb += Assume(~top.i_desc.valid | complete)
        if self.eager:
            m.d.comb += Assume(top.i_desc.valid == complete)
        with m.If(new & started):
            m.d.comb += Assert(Cat(*ends).all(), "a beat is missing when the next layer starts")
        m.d.comb += Assert(~top.o_error, "o_error raised by a layer that fits")

        done = Signal(range(len(self.cases)), name="done")  # the case of the last layer
        with m.If(new):
            m.d.sync += done.eq(pick)
        for i in range(len(self.cases)):
            m.d.comb += Cover(started & complete & top.i_desc.ready & (done == i))
        if self.eager:
            timer = Signal(range(max(t["cycles"] for t in table) + 2), name="timer")
            m.d.sync += timer.eq(timer + 1)
            with m.If(new):
                m.d.sync += timer.eq(1)
            last = top.o_results.valid & top.o_results.ready & (counts["results"] + 1 == expect.results)
            with m.If(started & ~complete):
                m.d.comb += Assert(timer < expect.cycles, "a layer outlasts plan_cycles")
            with m.If(last):
                m.d.comb += Assert(timer + 1 == expect.cycles,
                                   "the last result beat is not at plan_cycles' total")
        return m


    def _counted(self, m: Module, phases: tuple, table: list[dict[str, int]], new: Value,
                 expect: Value) -> dict[str, Signal]:
        """Beats of each of ``phases`` since the last descriptor, asserted never past the plan's
        count and in phase order (none before every beat of the phase before was taken)."""
        counts = {}
        for (name, port, _), before in zip(phases, (None, *phases[:-1])):
            beat = getattr(self.top, port)
            fire = beat.valid & beat.ready
            count = counts[name] = _counter(m, f"{name}_beats", max(t[name] for t in table), fire, new)
            total = getattr(expect, name)
            m.d.comb += Assert(count <= total, f"{name}: more beats than the descriptor implies")
            with m.If(fire):
                m.d.comb += Assert(count < total, f"{name}: a beat past the descriptor's last")
                if before:
                    m.d.comb += Assert(counts[before[0]] == getattr(expect, before[0]),
                                       f"{name}: a beat before every {before[0]} beat was taken")
        return counts

    def _overlapped(self, m: Module, table: list[dict[str, int]], new: Value,
                    offered: Value, expect: Value, started: Value) -> Module:
        """``overlap`` mode: a descriptor always offered, so tiles load while earlier ones run
        and store. Each tile's loads are counted from its descriptor to the next as above; its
        results, which come after later descriptors, against a queue of the tiles in flight."""
        top = self.top
        counts = self._counted(m, self.PHASES[:-1], table, new, expect)
        with m.If(new & started):
            m.d.comb += Assert(Cat(*(counts[name] == getattr(expect, name) for name, _, _ in self.PHASES[:-1])).all(),
                               "a load beat is missing when the next tile's descriptor is taken")
        # the results: tile after tile, each its plan's count, from a queue pushed at each
        # descriptor; a tile without results (psum_write) leaves the queue as it reaches its head
        depth, most = self.IN_FLIGHT, max(t["results"] for t in table)
        queue = [Signal(range(most + 1), name=f"queue{i}") for i in range(depth)]
        queued = Signal(range(depth + 1), name="queued")
        given = Signal(range(most + 1), name="results_beats")
        res = top.o_results
        beat = res.valid & res.ready
        head_done = (queued > 0) & ((queue[0] == 0) | (beat & (given + 1 == queue[0])))
        with m.If(beat):
            m.d.comb += Assert((queued > 0) & (given < queue[0]), "results: a beat past its tile's last")
            m.d.sync += given.eq(given + 1)
        with m.If(head_done):
            m.d.sync += given.eq(0)
        shifted = [Mux(head_done, queue[i + 1], queue[i]) for i in range(depth - 1)] + [queue[-1]]
        level = Signal.like(queued)
        m.d.comb += level.eq(queued - head_done)
        for i in range(depth):
            m.d.sync += queue[i].eq(Mux(new & (level == i), offered.results, shifted[i]))
        m.d.sync += queued.eq(level + new)
        with m.If(new):
            m.d.comb += Assert(level < depth - 1, "a fourth tile taken with three tiles' results pending")
        m.d.comb += [Assume(top.i_desc.valid), Assert(~top.o_error, "o_error raised by tiles that fit")]
        # the overlap is reachable: a descriptor taken while two earlier tiles' results are due
        m.d.comb += Cover(new & (level >= 2))
        return m


class _BlockHarness(Elaboratable):
    """A harness around ``block``, one component of the top of ``geo``."""

    def __init__(self, geo: TopGeometry, block: Elaboratable) -> None:
        self.geo, self.block = check_geometry(geo), block

    def _open(self) -> tuple[Module, dict[str, Signal]]:
        """The harness's module, closed (:func:`_closed`), with the block inside, and the
        block's registers (:func:`_registers`)."""
        m = Module()
        registers = _registers(_elaborated(m, "block", self.block))
        _closed(m)
        return m, registers


class LoaderHarness(_BlockHarness):
    """:class:`~rtl.buffers.Loader` under free targets, restarts and load streams.

    Asserted: only the target stream is ready and ``o_fire`` is its transfer; the ``n``-th beat
    since a restart is written to word ``n`` with its payload while ``n`` is below the buffer's
    depth, and flagged by ``o_overrun`` and not written from there on; no write reaches past a
    buffer's depth; with banks, ``o_act_bank`` is the address's bank, one-hot.
    """

    def __init__(self, geo: TopGeometry) -> None:
        super().__init__(geo, Loader(geo))

    def elaborate(self, platform: Any) -> Module:
        m, registers = self._open()
        ld, addr = self.block, registers["addr"]
        _free(m, ld.i_target, ld.i_restart)
        geo = self.geo
        act_depth = geo.act_words // geo.act_beat
        beats = _counter(m, "beats", max(geo.param_words, geo.weight_words, act_depth, geo.out_words),
                         ld.o_fire, ld.i_restart)
        m.d.comb += Assert(addr == beats, "the write address is not the beats since the restart")
        if geo.act_banks:  # and its bank, one-hot (contract.act_banks)
            m.d.comb += Assert(ld.o_act_bank == (1 << (addr % geo.act_banks)), "o_act_bank is not addr's bank")
        for name, flag in registers.items():  # the registered `addr >= depth` flags
            if name.startswith("full_"):
                m.d.comb += Assert(flag == (addr >= int(name[len("full_"):])), f"{name} is not addr >= depth")
        for target, name, port, depth in (
                (LoadTarget.PARAMS, "i_params", ld.param_wr, self.geo.param_words),
                (LoadTarget.WEIGHTS, "i_weights", ld.weight_wr, self.geo.weight_words),
                (LoadTarget.ACTS, "i_acts", ld.act_wr, act_depth),
                (LoadTarget.RESID, "i_resid", ld.resid_wr, geo.out_words)):
            beat = getattr(ld, name)
            _source(m, beat, name)
            chosen = ld.i_target == target
            m.d.comb += [Assert(beat.ready == chosen, f"{name}: ready without being the target"),
                         Assert(~port.en | (port.addr < depth), f"{name}: write past the buffer")]
            with m.If(chosen):
                m.d.comb += Assert(ld.o_fire == beat.valid, f"{name}: o_fire is not its transfer")
                with m.If(beat.valid & (beats < depth)):
                    m.d.comb += Assert(port.en & (port.addr == beats) & ~ld.o_overrun
                                       & (Value.cast(port.data) == Value.cast(beat.payload)),
                                       f"{name}: beat n not written to word n")
                with m.If(beat.valid & (beats >= depth)):
                    m.d.comb += Assert(~port.en & ld.o_overrun, f"{name}: overrun not flagged")
            with m.Else():
                m.d.comb += Assert(~port.en, f"{name}: written while not the target")
        return m


class StoreHarness(_BlockHarness):
    """:class:`~rtl.buffers.StoreStream`, the store engine, started whenever it is free (also in
    the cycle a store ends) with any word count and bank, reading two banks whose word ``i``
    is ``i`` (bank 0) and ``i + out_words`` (bank 1).

    Asserted: the stream rules on ``o_results``; beat ``n`` of a store carries word ``n`` of its
    bank and ``n < words`` (no beat dropped, duplicated or read past the written words); ``o_done``
    comes with beat ``words - 1``; ``o_free`` is ``o_done`` or idle; nothing is offered between stores;
    the read-ahead address is the word after those offered and read, its "words left" flag says
    whether it is below the count; ``o_bank`` is the store's.
    """

    def __init__(self, geo: TopGeometry) -> None:
        super().__init__(geo, StoreStream(geo))

    def elaborate(self, platform: Any) -> Module:
        m, registers = self._open()
        st, addr = self.block, registers["addr"]
        res, ports = st.o_results, (st.out_rd0, st.out_rd1)
        _sink(m, res, "o_results")
        for b, port in enumerate(ports):  # word i of bank b holds i + b * out_words
            with m.If(port.en):
                m.d.sync += Value.cast(port.data).eq(port.addr + b * self.geo.out_words)
        words, bank, go = Signal.like(st.i_words), Signal(), Signal()
        _free(m, go, words, bank)
        m.d.comb += [Assume(~go | ((words >= 1) & (words <= self.geo.out_words))),
                     st.i_start.eq(go & st.o_free), st.i_words.eq(words), st.i_bank.eq(bank)]
        held, held_bank = Signal.like(st.i_words), Signal()
        with m.If(st.i_start):
            m.d.sync += [held.eq(words), held_bank.eq(bank)]
        fire = res.valid & res.ready
        beats = _counter(m, "beats", self.geo.out_words, fire, st.i_start)
        m.d.comb += Assert(st.o_free == (~st.o_busy | st.o_done), "o_free is not idle-or-ending")
        base = Mux(held_bank, self.geo.out_words, 0)  # the store's bank's first word's value
        with m.If(res.valid):
            m.d.comb += [Assert(Value.cast(res.payload) == beats + base,
                                "o_results: beat n is not word n of its bank"),
                         Assert(beats < held, "o_results: a word past the written ones"),
                         Assert(st.o_done == (res.ready & (beats + 1 == held)),
                                "o_done is not the last beat")]
        with m.If(st.o_busy):
            m.d.comb += [Assert(addr == beats + res.valid + registers["read"],
                                "read-ahead address is not the word after those in flight"),
                         Assert(~registers["read"] | (Value.cast(Mux(held_bank, ports[1].data, ports[0].data))
                                                      == beats + res.valid + base),
                                "the word being read is not the one after the offered one"),
                         Assert((held >= 1) & (held <= self.geo.out_words) & (beats <= held) & (addr <= held),
                                "the store's words left the harness's range"),
                         Assert(st.o_bank == held_bank, "o_bank is not the store's bank"),
                         Assert(registers["words"] == held, "the engine's word count is not the store's"),
                         Assert(registers["more"] == (addr < held), "the engine's words-left flag is wrong")]
        with m.Else():
            m.d.comb += Assert(~res.valid, "o_results: a beat outside a store")
        return m


class WriterHarness(_BlockHarness):
    """:class:`~rtl.buffers.ResultWriter` under free accumulator and output rows, between clears
    (a layer each), with a descriptor that changes only after a clear and whose ``groups *
    ceil(out_ch / cols)`` parameter words fit the buffer.

    Asserted: row ``n`` since the clear is written to word ``n`` with its payload while ``n`` is
    below the out buffer's depth, and flagged by ``o_overrun`` and not written from there on; no
    write reaches past the depth; every accumulator row reads a loaded parameter word (below
    ``groups * ceil(out_ch / cols)``; only with ``params``: its induction needs the writer's
    group register, which the harness cannot name, so it is checked by BMC). Assumed: fewer than
    ``2**len(o_written)`` rows per layer -- ``o_written`` wraps past that and the excess rows
    would be written over word 0 on with ``o_overrun`` low (``o_error`` is already set by then).
    With a psum buffer (its contents arbitrary): under ``psum_write`` the output rows write no out
    word, and accumulator row ``n`` since the clear is written, as the sum the writer hands the
    output stage, to psum word ``n`` while ``n`` is below the psum depth, flagged from there on;
    no psum write without a row under ``psum_write`` or past the depth; the psum read port is two
    rows ahead (word ``n + 1`` before row ``n`` arrives, ``n + 2`` while it does: the writer
    holds word ``n`` in a register) and reads word 0 with the clear. Assumed, as the top's
    controller drives them: the clear comes in an ``i_idle`` cycle, and no row arrives in one
    nor after one until the next clear.
    """

    def __init__(self, geo: TopGeometry, *, params: bool = False) -> None:
        super().__init__(geo, ResultWriter(geo))
        self.params = params

    def elaborate(self, platform: Any) -> Module:
        m, registers = self._open()
        wr, geo = self.block, self.geo
        _free(m, wr.i_clear, wr.i_idle, wr.i_acc.valid, wr.i_acc.payload, wr.i_y.valid, wr.i_y.payload)
        _any_memory(m, wr.param_rd)
        # the run side's idle spell: it takes the clear, and no row arrives in it nor after it
        # until the clear (``parked``: an idle cycle since the last clear)
        parked = Signal()
        with m.If(wr.i_clear):
            m.d.sync += parked.eq(0)
        with m.Elif(wr.i_idle):
            m.d.sync += parked.eq(1)
        m.d.comb += Assume((~wr.i_clear | wr.i_idle) & ~((wr.i_idle | parked) & wr.i_acc.valid))
        desc, loaded = Signal.like(wr.i_desc), Signal.like(wr.i_desc)
        _free(m, loaded)
        with m.If(wr.i_clear):
            m.d.sync += desc.eq(loaded)
        m.d.comb += wr.i_desc.eq(desc)
        def tiles(d: Any) -> Value:
            return (d.out_ch + geo.cols - 1) // geo.cols

        params = Signal(range(geo.param_words + 1))
        m.d.comb += [params.eq(desc.groups * tiles(desc)),
                     Assume((loaded.groups >= 1) & (loaded.out_ch >= 1)
                            & (loaded.groups * tiles(loaded) <= geo.param_words))]
        out, y = wr.out_wr, wr.i_y
        to_out = ~desc.psum_write if geo.psum_words else 1
        psum_overrun = self._psum(m, registers, desc) if geo.psum_words else 0
        rows = _counter(m, "rows", geo.out_words, y.valid, wr.i_clear)
        m.d.comb += Assume(~y.valid | (wr.o_written < (1 << len(wr.o_written)) - 1))
        m.d.comb += Assert(~out.en | (out.addr < geo.out_words), "o_written: write past the buffer")
        with m.If(rows < geo.out_words):
            m.d.comb += Assert(wr.o_written == rows, "o_written is not the rows since the clear")
        with m.Else():
            m.d.comb += Assert(wr.o_written >= geo.out_words, "o_written fell back into the buffer")
        with m.If(y.valid & (rows < geo.out_words) & to_out):
            m.d.comb += Assert(out.en & (wr.o_overrun == psum_overrun)
                               & (Value.cast(out.data) == Value.cast(y.payload)),
                               "row n not written to word n")
        with m.If(y.valid & (rows >= geo.out_words) & to_out):
            m.d.comb += Assert(~out.en & wr.o_overrun, "overrun row not flagged")
        with m.If(~to_out):
            m.d.comb += Assert(~out.en, "a psum_write row written to the out buffer")
        if self.params:
            with m.If(~wr.i_clear & (desc.groups >= 1)):
                m.d.comb += Assert(wr.param_rd.addr < params, "a parameter word read past the loaded ones")
        return m


    def _psum(self, m: Module, registers: dict[str, Signal], desc: Any) -> Value:
        """The psum properties (class docstring); returns the strobe of a psum row overrun."""
        wr, geo = self.block, self.geo
        _any_memory(m, wr.psum_rd)
        acc, pw = wr.i_acc, wr.psum_wr
        arrivals = _counter(m, "arrivals", geo.psum_words, acc.valid, wr.i_clear)
        arrived = registers["arrived"]
        with m.If(arrivals < geo.psum_words):  # the invariant that closes the induction
            m.d.comb += Assert(arrived == arrivals, "the writer's row count is not the rows since the clear")
        with m.Else():
            m.d.comb += Assert(arrived >= geo.psum_words, "the writer's row count fell back into the buffer")
        m.d.comb += Assert((registers["arrived_plus1"] == arrived + 1) & (registers["arrived_plus2"] == arrived + 2),
                           "the read-ahead addresses are not the row count's")
        m.d.comb += Assert(~pw.en | ((pw.addr < geo.psum_words) & acc.valid & desc.psum_write),
                           "a psum write past the buffer or without a psum row")
        with m.If(wr.i_clear):
            m.d.comb += Assert(wr.psum_rd.addr == 0, "word 0 not read with the clear")
        with m.Elif(~wr.i_idle & (arrivals + acc.valid + 1 < geo.psum_words)):
            m.d.comb += Assert(wr.psum_rd.addr == arrivals + acc.valid + 1, "the psum read is not two rows ahead")
        fits = arrivals < geo.psum_words
        with m.If(acc.valid & desc.psum_write & fits):
            m.d.comb += Assert(pw.en & (pw.addr == arrivals)
                               & (Value.cast(pw.data) == Value.cast(wr.o_acc.payload)),
                               "psum row n not written to word n")
        with m.If(acc.valid & desc.psum_write & ~fits):
            m.d.comb += Assert(~pw.en & wr.o_overrun, "psum overrun row not flagged")
        return acc.valid & desc.psum_write & ~fits


class FetchHarness(_BlockHarness):
    """:class:`~rtl.im2col.OperandFetch` under free control inputs and buffers of arbitrary
    contents. Asserted: a step is issued only under ``i_run``; on ``o_operands`` (the array's
    input) the stream rules under a free consumer, or, with fold overlap (where the fetch
    ignores ready), that every beat is one the overlapped array takes: a fold's last beat no
    sooner than ``rows`` cycles after the one before (:class:`~rtl.array.SystolicArray`'s
    ready)."""

    def __init__(self, geo: TopGeometry) -> None:
        super().__init__(geo, OperandFetch(geo))

    def elaborate(self, platform: Any) -> Module:
        m, _ = self._open()
        f = self.block
        _free(m, f.i_desc, f.i_geo, f.i_rows, f.i_pos, f.i_start, f.i_run)
        for port in (*f.act_rd, f.weight_rd):
            _any_memory(m, port)
        beat, rows = f.o_operands, self.geo.rows
        if self.geo.fold_overlap:
            since = Signal(range(rows + 1), init=rows)  # cycles since a fold's last beat, saturated
            last = beat.valid & beat.payload.last
            m.d.sync += since.eq(Mux(last, 1, Mux(since < rows, since + 1, since)))
            m.d.comb += [beat.ready.eq(1),
                         Assert(~last | (since >= rows), "o_operands: a fold's last beat the array refuses")]
        else:
            _sink(m, beat, "o_operands")
        m.d.comb += Assert(~f.o_issue | f.i_run, "a step issued without i_run")
        return m


class ArrayHarness(_BlockHarness):
    """:class:`~rtl.array.SystolicArray` under free operand beats (folds of at most the PE's
    steps) and a free results consumer.

    Asserted: the stream rules on ``o_results``; each fold gives exactly ``rows`` result rows
    (none before its last operand beat, none extra) and the array takes no operand beat while a
    fold's rows are still to leave.
    """

    def __init__(self, geo: TopGeometry) -> None:
        self.spec = pe_spec(geo)
        super().__init__(geo, SystolicArray(rows=geo.rows, cols=geo.cols, pe=self.spec))

    def elaborate(self, platform: Any) -> Module:
        m, hidden = self._open()
        arr = self.block
        beat, res, rows = arr.i_operands, arr.o_results, self.geo.rows
        _source(m, beat, "i_operands")
        _sink(m, res, "o_results")
        taken = beat.valid & beat.ready
        closing = taken & beat.payload.last
        steps = _counter(m, "steps", self.spec.steps, taken, closing)
        m.d.comb += Assume(~taken | (steps < self.spec.steps) | beat.payload.last)
        pending = Signal()
        given = _counter(m, "rows_given", rows, res.valid & res.ready, closing)
        with m.If(closing):
            m.d.sync += pending.eq(1)
        with m.If(res.valid & res.ready & (given == rows - 1)):
            m.d.sync += pending.eq(0)
        m.d.comb += [Assert(~res.valid | (pending & (given < rows)), "o_results: a row outside a fold"),
                     Assert(~beat.ready | ~pending, "i_operands: ready before the fold's rows left")]
        # what ties the array's drain counter to the rows given (the induction's invariant)
        state, count = hidden["fsm_state"], hidden["count"]
        with m.If(_in_state(state, "SETTLE")):
            m.d.comb += Assert(pending & (given == 0), "SETTLE outside a fold")
        with m.If(_in_state(state, "DRAIN")):
            m.d.comb += Assert(count + given == rows - 1, "the drain count is not the rows left")
        return m


class ReadDMAHarness(Elaboratable):
    """:class:`~rtl.dma.ReadDMA` on a 64-bit bus with a wide (64-bit, from any byte: realigned)
    and a narrow (16-bit) target, started whenever it is idle with transfers of fewer than
    ``max_beats`` beats, behind an AXI4 read slave that takes addresses and offers words when it
    likes (holding ``rvalid`` and the word until ``rready``), answers the bursts in order, and
    whose byte at address ``b`` is ``b mod 256``.

    Asserted: ``arvalid`` held until ``arready`` with the request stable; every burst full-width
    INCR, at most :data:`~hwsim.rtl_sequence.MAX_BURST` words, within its 4 KiB page, starting at
    the word after the last one requested (the transfer's words in order, none twice) and never
    past its last word; never more than :data:`~hwsim.rtl_sequence.MAX_OUTSTANDING` bursts in
    flight; no address outside a transfer; the stream rules on ``o_beat``; beat ``n`` holds the
    bytes of slot ``n`` (no beat dropped, duplicated or reordered); when ``o_busy`` falls every
    beat was given and every requested word arrived. The engine's registers (the request, the
    words and beats left, the bursts in flight, the held word, its lane and the realigning word)
    are tied to the harness's counts (the beats the engine gave: those given out and the up to
    two its register slice holds), so that k-induction closes. Covered: ``MAX_OUTSTANDING``
    bursts in flight with words left to request, a burst issued after ``MAX_OUTSTANDING``, and a
    transfer of each target ending.
    """

    #: The targets' beat widths (slots of 8 and 2 bytes; target 1 is the narrow one).
    WIDTHS = (64, 16)

    def __init__(self, max_beats: int = 96) -> None:
        self.max_beats = max_beats
        self.dma = ReadDMA(self.WIDTHS, bus_bits=64)

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        dma = self.dma
        r = _registers(_elaborated(m, "dma", dma))
        _closed(m)
        beat = dma.o_beat
        slots = [slot_bytes(w, 64) for w in self.WIDTHS]
        max_words = self.max_beats * max(slots) // 8 + 1

        # The transfer as started (latched), and the harness's counts since then.
        addr, beats = Signal(ADDR_BITS, name="addr"), Signal(range(self.max_beats), name="beats")
        target = Signal(range(len(self.WIDTHS)), name="target")
        _free(m, dma.i_start, dma.i_addr, dma.i_beats, dma.i_target, dma.arready, dma.rvalid, beat.ready)
        m.d.comb += [dma.rresp.eq(0), dma.i_ahead.eq(0),  # no other reader on the port
                     Assume(dma.i_beats < self.max_beats),
                     Assume(dma.i_target < len(self.WIDTHS)),
                     *(Assume((dma.i_target != t) | (dma.i_addr[:ceil_log2(s)] == 0))  # on a slot
                       for t, s in enumerate(slots) if s < 8)]
        starting = dma.i_start & ~dma.o_busy
        with m.If(starting):
            m.d.sync += [addr.eq(dma.i_addr), beats.eq(dma.i_beats), target.eq(dma.i_target)]

        def times_slot(n: Value) -> Value:  # n slots in bytes; slots are powers of two: shifts
            return Mux(target == 1, n << ceil_log2(slots[1]), n << ceil_log2(slots[0]))

        total = Signal(range(max_words + 1))  # the transfer's bus words
        m.d.comb += total.eq(Mux(beats == 0, 0, (addr[:3] + times_slot(beats) + 7) >> 3))
        received = _counter(m, "received", max_words, dma.rvalid & dma.rready, starting)
        given = _counter(m, "given", self.max_beats, beat.valid & beat.ready, starting)

        # Read address channel.
        length = dma.arlen + 1
        issued = dma.arvalid & dma.arready
        requested = Signal(range(max_words + MAX_BURST + 1))  # words requested since the start
        with m.If(starting):
            m.d.sync += requested.eq(0)
        with m.Elif(issued):
            m.d.sync += requested.eq(requested + length)
        request = Cat(dma.araddr, dma.arlen, dma.arsize, dma.arburst)
        waiting, held = Signal(), Signal.like(request)
        m.d.sync += [waiting.eq(dma.arvalid & ~dma.arready), held.eq(request)]
        with m.If(waiting):
            m.d.comb += Assert(dma.arvalid & (request == held), "ar: request dropped or changed before arready")
        first = (addr[3:] + requested)[:ADDR_BITS - 3]  # the next word to request (modulo 4 GiB)
        page_end = (dma.araddr >> 12 << 12) + BOUNDARY_BYTES
        with m.If(dma.arvalid):
            m.d.comb += [Assert((dma.arsize == 3) & (dma.arburst == 1), "ar: not a full-width INCR burst"),
                         Assert(length <= MAX_BURST, "ar: a burst longer than MAX_BURST"),
                         Assert(dma.araddr[3:] == first, "ar: not the word after the last one requested"),
                         Assert(dma.araddr[:3] == 0, "ar: an address inside a word"),
                         Assert(dma.araddr + 8 * length <= page_end, "ar: a burst across 4 KiB"),
                         Assert(requested + length <= total, "ar: a word past the transfer's end")]

        # Bursts in flight (their cumulative ends, in order: the slave's rlast).
        ends = [Signal.like(requested, name=f"end{i}") for i in range(MAX_OUTSTANDING)]
        flight = Signal(range(MAX_OUTSTANDING + 2))
        done_burst = dma.rvalid & dma.rready & dma.rlast
        m.d.sync += flight.eq(flight + issued - done_burst)
        m.d.comb += Assert(flight <= MAX_OUTSTANDING, "more than MAX_OUTSTANDING bursts in flight")
        with m.If(done_burst):  # shift the ring down
            m.d.sync += [ends[i].eq(ends[i + 1]) for i in range(MAX_OUTSTANDING - 1)]
        with m.If(issued):
            slot_at = flight - done_burst
            for i, end in enumerate(ends):
                with m.If(slot_at == i):
                    m.d.sync += end.eq(requested + length)

        # Read data channel: word w holds bytes 8w .. 8w + 7, each its address mod 256.
        word = addr[3:8] + received[:5]  # its low bits: those of its bytes
        m.d.comb += [dma.rdata.eq(Cat(*[(word << 3 | i)[:8] for i in range(8)])),
                     dma.rlast.eq(received + 1 == ends[0]),
                     Assume(~dma.rvalid | (flight != 0))]
        r_stalled = Signal()
        m.d.sync += r_stalled.eq(dma.rvalid & ~dma.rready)
        with m.If(r_stalled):
            m.d.comb += Assume(dma.rvalid)

        # The beats: slot n's bytes, as many as started.
        stream_rules(m, beat, Assert, "o_beat")
        at = (addr[:8] + times_slot(given))[:8]  # the low byte of slot n's address
        for t, (width, s) in enumerate(zip(self.WIDTHS, slots)):
            with m.If(beat.valid & (target == t)):
                m.d.comb += Assert(beat.payload[:width] == Cat(*[(at + i)[:8] for i in range(s)]),
                                   f"o_beat: beat n of target {t} is not slot n")
        with m.If(beat.valid):
            m.d.comb += Assert(given < beats, "o_beat: more beats than started")
        busy = Signal()
        m.d.sync += busy.eq(dma.o_busy)
        with m.If(busy & ~dma.o_busy):
            m.d.comb += Assert((given == beats) & (received == total) & (requested == total) & (flight == 0),
                               "o_busy fell before every beat and word")
        with m.If(~dma.o_busy):
            m.d.comb += Assert(~dma.arvalid & ~beat.valid & (flight == 0),
                               "an address, a burst or a beat outside a transfer")

        # What ties the engine's registers to the harness's counts (the induction's invariant);
        # the engine has given the beats given out and those its register slice holds: the output
        # entry's is beat ``given`` (asserted above), the one behind it the next
        taken = given + r["slice_full"] + r["slice_spare"]
        m.d.comb += Assert(r["slice_full"] | ~r["slice_spare"], "a beat waits behind an empty output entry")
        after = (at + times_slot(1))[:8]
        for t, (width, s) in enumerate(zip(self.WIDTHS, slots)):
            with m.If(r["slice_spare"] & (target == t)):
                m.d.comb += Assert(r["slice_waiting"][:width] == Cat(*[(after + i)[:8] for i in range(s)]),
                                   f"the register slice: the beat after beat n of target {t} is not slot n + 1")
        m.d.comb += [Assert((r["bursts"] == flight) & (r["addr"] == addr)
                            & (r["span"] == Mux(target == 1, beats << ceil_log2(slots[1]), beats * (slots[0] // 8)))
                            & (r["narrow"] == (target == 1)) & (~r["narrow"] | (r["log_slot"] == 1))
                            & (r["realign"] == ((target == 0) & (addr[:3] != 0)))
                            & (r["shift"] == Mux(target == 0, addr[:3], Mux(r["full"], 0, r["lane"] << 1)))
                            & (~r["narrow"] | ((r["got"] == 0) & ~addr[0])),
                            "the transfer's registers"),
                     Assert((r["left"] == beats - taken) & (r["any_left"] == (r["left"] != 0))
                            & (r["one_left"] == (r["left"] == 1)) & (beats < self.max_beats) & (taken <= beats)
                            & (received <= requested),
                            "the beats left")]
        with m.If(r["setup"]):
            m.d.comb += Assert((requested == 0) & (received == 0) & (given == 0) & (flight == 0), "setup")
        with m.Else():
            m.d.comb += Assert((r["word"] == first) & (r["words_left"] == total - requested)
                               & (r["any_words"] == (r["words_left"] != 0)), "the words left to request")
        with m.If(flight == 0):
            m.d.comb += Assert(received == requested, "a word outside a burst")
        for i, end in enumerate(ends):
            with m.If(flight == i + 1):
                m.d.comb += Assert(end == requested, "the last burst's end")
            with m.If(flight > i):
                before = received if i == 0 else ends[i - 1]
                m.d.comb += Assert((end > before) & (end - before <= MAX_BURST), "a burst's end")

        def word_bytes(w: Value) -> Value:  # the bytes of word w (its low bits)
            return Cat(*[(w << 3 | i)[:8] for i in range(8)])

        with m.If(r["any_left"]):
            m.d.comb += Assert(r["per_beat"] == 1, "a beat's words")
            with m.If(r["narrow"]):
                pos = addr[:3] + (taken << 1)  # the next beat's byte, from the first word's start
                m.d.comb += Assert((r["lane"] == pos[1:3]) & (received == (pos >> 3) + r["full"])
                                   & (r["full"] | (received == 0) | (r["lane"] == 0)),  # only the first word: a lane
                                   "the held word's lane")
                with m.If(r["full"]):  # shifted down a slot per beat taken: the lane's slot at bit 0
                    up = r["lane"] << 4  # the slots already taken, whose room above is don't-care
                    held = word_bytes(addr[3:8] + received[:5] - 1)
                    m.d.comb += Assert((r["hold"][:64] << up)[:64] == (held >> up << up)[:64], "the held word")
            with m.Else():
                ahead = r["realign"] & r["primed"]  # realigned: the word read ahead
                m.d.comb += Assert((received == taken + r["got"] + ahead) & (r["got"] <= 1)
                                   & (r["full"] == (r["got"] == 1)) & (r["primed"] == (received != 0)),
                                   "the wide beat's words")
                with m.If(r["got"] == 1):  # the beat after the held one, if any
                    gathered = (addr[:8] + times_slot(taken))[:8]
                    m.d.comb += Assert(r["hold"] == Cat(*[(gathered + i)[:8] for i in range(8)]), "the gathered beat")
                with m.If(ahead):
                    m.d.comb += Assert(r["prev"] == word_bytes(addr[3:8] + received[:5] - 1), "the word before")
        with m.Else():
            m.d.comb += Assert((r["got"] == 0) & ~r["full"] & (received == total) & (requested == total),
                               "a word held, left or in flight after the last beat")

        bursts = _counter(m, "bursts", MAX_OUTSTANDING + 1, issued, starting)
        m.d.comb += [Cover((flight == MAX_OUTSTANDING) & (requested < total)),
                     Cover(bursts == MAX_OUTSTANDING + 1)]
        for t in range(len(self.WIDTHS)):
            m.d.comb += Cover(busy & ~dma.o_busy & (target == t) & (beats >= 2))
        return m
