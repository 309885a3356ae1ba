"""Processing elements, one :class:`ProcessingElement` subclass per PE kind (mac, adder, shift, xnor).

All four share one structure and one port shape; a kind only states its operand shapes, the range
of one accumulation term, and its two arithmetic stages::

    i_x, i_w, i_valid, i_first
        |  (operand registers; also drive o_x, o_w, o_valid, o_first for systolic forwarding)
        v
    stage 1: ``first_stage(x, w)``        mac: x * w        adder: x - w
        |                                 shift: x << (P - p) and the sign   xnor: popcount(XNOR)
        v  (pipeline register)
    stage 2: ``acc <= (first ? 0 : acc) + addend + carry``   with ``addend, carry = second_stage(p)``
                                      (adder and shift fold their conditional negation in here)

so the pipeline is two stages deep after the operand registers, as in
:data:`cost_models.datapath.PIPELINE_CYCLES`: an operand pair presented on ``i_x``/``i_w`` with
``i_valid`` in cycle ``t`` is in the operand registers in cycle ``t + 1``, in the pipeline register
in cycle ``t + 2`` and has been added into ``o_acc`` in cycle ``t + 3``
(:data:`PORT_TO_ACC_CYCLES`).

Overflow cannot happen silently: the accumulator is sized at construction for ``k`` reduction
positions from the exact range of one term (:meth:`ProcessingElement.term_range`) and a too small
``acc_bits`` raises ValueError. A PE accumulates at most :attr:`ProcessingElement.steps` valid
operand pairs after ``i_first`` (``k``, or ``ceil(k / lanes)`` words for xnor); the driver (the
array's controller) guarantees that bound.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from amaranth.hdl import Cat, Const, Module, Mux, Shape, ShapeLike, Signal, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["PE_CLASSES", "PEFactory", "PIPELINE_CYCLES", "PORT_TO_ACC_CYCLES", "AdderPE", "MacPE",
           "ProcessingElement", "ShiftPE", "XnorPE", "check_int", "encode_shift_weight", "range_shape",
           "shift_weight_layout"]

#: Register stages between the operand registers and the accumulator (cost_models' count).
PIPELINE_CYCLES = 2
#: Clock edges from an operand pair on the input ports to its term being in ``o_acc``.
PORT_TO_ACC_CYCLES = PIPELINE_CYCLES + 1

MAX_BITS = 16
MAX_SHIFT = 16


def check_int(name: str, value: Any, lo: int, hi: int | None = None, *, what: str = "") -> int:
    """Return ``value`` if it is an int in [lo, hi]; else raise TypeError/ValueError naming it."""
    if hi is None:
        noun = "a positive integer" if lo == 1 else f"an integer of at least {lo}"
    else:
        noun = f"an integer from {lo} to {hi}"
    message = f"`{name}` must be {noun}{what}, not {value!r}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(message)
    if value < lo or (hi is not None and value > hi):
        raise ValueError(message)
    return value


def range_shape(lo: int, hi: int) -> Shape:
    """The narrowest shape holding every integer in ``[lo, hi]`` (signed iff ``lo < 0``)."""
    if lo < 0:
        return signed(max((-lo - 1).bit_length(), hi.bit_length()) + 1)
    return unsigned(max(hi.bit_length(), 1))


def _popcount(bits: Value) -> Value:
    """Number of ones of ``bits``: a balanced tree of pairwise adders (the cost model's tree)."""
    level = [bit for bit in bits]
    while len(level) > 1:
        pairs = [level[i] + level[i + 1] for i in range(0, len(level) - 1, 2)]
        level = pairs + level[len(pairs) * 2:]
    return level[0]


def _negate_if(value: Value, negate: Value) -> tuple[Value, Value]:
    """``negate ? -value : value`` as an addend and a carry-in: one XOR per bit, no incrementer."""
    return (value.as_unsigned() ^ negate.replicate(len(value))).as_signed(), negate


class ProcessingElement(wiring.Component):
    """One PE: accumulate ``k`` terms ``f(x, w)`` of one kind, forward operands, shift out the sum.

    Parameters (keyword-only, shared by all kinds)
    ----------------------------------------------
    k : int
        Reduction length this PE is sized for (binary positions for xnor).
    acc_bits : int or None
        Accumulator width; None takes the narrowest width that holds any sum of ``k`` terms.
        ValueError if it is narrower than that.

    Attributes
    ----------
    x_shape, w_shape, acc_shape : Shape or Layout
        Shapes of the operands and of the accumulator.
    steps : int
        Most valid operand pairs one accumulation may take.

    Members
    -------
    i_x, i_w : In(x_shape), In(w_shape)
        Activation and weight operand; sampled when ``i_valid``.
    i_valid : In(1)
        ``i_x``, ``i_w`` and ``i_first`` hold an operand pair this cycle.
    i_first : In(1)
        With ``i_valid``: this pair starts a new accumulation (the accumulator is overwritten, not
        added to). Ignored without ``i_valid``.
    o_x, o_w, o_valid, o_first : Out
        The operand registers: the inputs one cycle later, for the right (x, valid, first) and
        lower (w) neighbour of a systolic array.
    i_shift : In(1)
        Drain: the accumulator loads ``i_acc`` this cycle. Must not coincide with a valid pair
        reaching the accumulator (``PORT_TO_ACC_CYCLES - 1`` cycles after it was presented).
    i_acc : In(acc_shape)
        The value shifted in on ``i_shift`` (the ``o_acc`` of the PE above in an array).
    o_acc : Out(acc_shape)
        The accumulator: the sum of the terms of the current accumulation. After the last pair
        of an accumulation is presented in cycle ``t``, ``o_acc`` holds the full sum from cycle
        ``t + PORT_TO_ACC_CYCLES`` until the next accumulation's first term or a shift.
    """

    kind: str = ""

    def __init__(self, *, k: int, acc_bits: int | None = None) -> None:
        self.k = check_int("k", k, 1)
        lo, hi = self.term_range()
        need = range_shape(min(self.steps * lo, 0), max(self.steps * hi, 0))
        if acc_bits is None:
            self.acc_shape = need
        else:
            check_int("acc_bits", acc_bits, 1)
            if acc_bits < need.width:
                raise ValueError(f"`acc_bits` of {acc_bits} cannot hold a {self.kind} reduction of "
                                 f"k={k}; it needs at least {need.width}")
            self.acc_shape = Shape(acc_bits, need.signed)
        super().__init__({
            "i_x": In(self.x_shape), "i_w": In(self.w_shape),
            "i_valid": In(1), "i_first": In(1),
            "o_x": Out(self.x_shape), "o_w": Out(self.w_shape),
            "o_valid": Out(1), "o_first": Out(1),
            "i_shift": In(1), "i_acc": In(self.acc_shape),
            "o_acc": Out(self.acc_shape),
        })

    @property
    def steps(self) -> int:
        return self.k

    @property
    def x_shape(self) -> ShapeLike:
        return signed(self.bits)

    @property
    def w_shape(self) -> ShapeLike:
        return signed(self.bits)

    def term_range(self) -> tuple[int, int]:
        """Smallest and largest value one step adds to the accumulator, over all operands."""
        raise NotImplementedError

    def first_stage(self, x: Value, w: Value) -> Value:
        """Stage-1 arithmetic on the operand registers; its result is the pipeline register."""
        raise NotImplementedError

    def second_stage(self, p: Value) -> tuple[Value, Value]:
        """Addend and 1-bit carry-in that stage 2 adds to the accumulator (default: ``p``, 0)."""
        return p, Const(0, 1)

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        m.d.sync += [
            self.o_x.eq(self.i_x), self.o_w.eq(self.i_w),
            self.o_valid.eq(self.i_valid), self.o_first.eq(self.i_first),
        ]
        stage1 = self.first_stage(self.o_x, self.o_w)
        p = Signal.like(stage1, name="p")
        p_valid = Signal()
        p_first = Signal()
        m.d.sync += [p.eq(stage1), p_valid.eq(self.o_valid), p_first.eq(self.o_first)]

        addend, carry = self.second_stage(p)
        base = Mux(p_first, 0, self.o_acc)
        with m.If(self.i_shift):
            m.d.sync += self.o_acc.eq(self.i_acc)
        with m.Elif(p_valid):
            m.d.sync += self.o_acc.eq(base + addend + carry)
        return m


def _check_bits(bits: Any) -> int:
    return check_int("bits", bits, 2, MAX_BITS)


class MacPE(ProcessingElement):
    """Multiply-accumulate PE: ``acc += x * w`` on signed ``bits``-bit operands.

    The term range covers the full two's-complement range of both operands, including
    ``w = -2**(bits-1)`` that models.intref's symmetric weights never use.
    """

    kind = "mac"

    def __init__(self, *, bits: int = 8, k: int, acc_bits: int | None = None) -> None:
        self.bits = _check_bits(bits)
        super().__init__(k=k, acc_bits=acc_bits)

    def term_range(self) -> tuple[int, int]:
        half = 1 << (self.bits - 1)
        return -half * (half - 1), half * half

    def first_stage(self, x: Value, w: Value) -> Value:
        return x * w


class AdderPE(ProcessingElement):
    """AdderNet PE: ``acc -= |x - w|`` on signed ``bits``-bit operands, no multiplier.

    Stage 1 subtracts (``d = x - w``, ``bits + 1`` bits); stage 2 adds ``-|d|`` as
    ``(d XOR ~sign) + ~sign`` into the accumulator adder (conditional negation, cost_models.adder).
    """

    kind = "adder"

    def __init__(self, *, bits: int = 8, k: int, acc_bits: int | None = None) -> None:
        self.bits = _check_bits(bits)
        super().__init__(k=k, acc_bits=acc_bits)

    def term_range(self) -> tuple[int, int]:
        return -((1 << self.bits) - 1), 0

    def first_stage(self, x: Value, w: Value) -> Value:
        return x - w

    def second_stage(self, p: Value) -> tuple[Value, Value]:
        return _negate_if(p, ~p[-1])


def shift_weight_layout(max_shift: int) -> data.StructLayout:
    """Layout of one shift weight code: ``shift`` (p), ``sign`` (1 is negative), ``zero`` (s = 0).

    ``2 + ceil(log2(P + 1))`` bits, as ``cost_models.weight_bits_for("shift", ...)``; p is the
    low field. Codes with ``p > P`` are outside the contract.
    """
    return data.StructLayout({"shift": unsigned(max(max_shift.bit_length(), 1)),
                              "sign": unsigned(1), "zero": unsigned(1)})


def encode_shift_weight(s: int, p: int, max_shift: int) -> int:
    """The integer code of the weight ``s * 2**-p`` (``s`` in {-1, 0, 1}, ``p`` in [0, P])."""
    if s not in (-1, 0, 1):
        raise ValueError(f"`s` must be -1, 0 or 1, not {s!r}")
    check_int("p", p, 0, max_shift)
    width = shift_weight_layout(max_shift)["shift"].width
    return p | (int(s < 0) << width) | (int(s == 0) << (width + 1))


class ShiftPE(ProcessingElement):
    """Shift PE: ``acc += s * (x << (P - p))`` exactly, ``x`` signed ``bits``-bit, ``P = max_shift``.

    The weight port carries the code of :func:`shift_weight_layout`. ``o_acc`` is in units of
    ``2**-P`` times the input scale (models.intref). Stage 1 is the barrel shifter (``x << P``
    shifted right by p, exact since the low P bits are zero) gated to zero by ``zero``; stage 2
    negates by ``sign`` inside the accumulator adder.
    """

    kind = "shift"

    def __init__(self, *, bits: int = 8, max_shift: int = 7, k: int,
                 acc_bits: int | None = None) -> None:
        self.bits = _check_bits(bits)
        self.max_shift = check_int("max_shift", max_shift, 0, MAX_SHIFT)
        super().__init__(k=k, acc_bits=acc_bits)

    @property
    def w_shape(self) -> ShapeLike:
        return shift_weight_layout(self.max_shift)

    def term_range(self) -> tuple[int, int]:
        top = 1 << (self.bits - 1 + self.max_shift)
        return -top, top

    def first_stage(self, x: Value, w: Value) -> Value:
        shifted = x.shift_left(self.max_shift) >> w.shift
        return Cat(Mux(w.zero, 0, shifted), w.sign & ~w.zero)

    def second_stage(self, p: Value) -> tuple[Value, Value]:
        return _negate_if(p[:-1], p[-1])


class XnorPE(ProcessingElement):
    """XNOR-popcount PE: ``lanes`` binary lanes per cycle, ``acc += popcount(XNOR(x, w))``.

    Bits are {-1, +1} values with 1 meaning +1 (models.intref). ``o_acc`` is the raw count
    ``P`` of agreeing lanes; the binary dot product is ``dot = 2 * P - K`` where K counts the
    real positions. Lanes that pad the last word must disagree (e.g. x = 0, w = 1) so they add
    nothing to P. The accumulator holds ``ceil(k / lanes) * lanes``, so even wrong padding cannot
    overflow it.
    """

    kind = "xnor"

    def __init__(self, *, bits: int = 1, lanes: int = 64, k: int,
                 acc_bits: int | None = None) -> None:
        if isinstance(bits, bool) or not isinstance(bits, int):
            raise TypeError(f"`bits` must be 1 for the xnor PE, not {bits!r}")
        if bits != 1:
            raise ValueError(f"`bits` must be 1 for the xnor PE, not {bits!r}")
        self.bits = bits
        self.lanes = check_int("lanes", lanes, 1)
        super().__init__(k=k, acc_bits=acc_bits)

    @property
    def steps(self) -> int:
        return math.ceil(self.k / self.lanes)

    @property
    def x_shape(self) -> ShapeLike:
        return unsigned(self.lanes)

    @property
    def w_shape(self) -> ShapeLike:
        return unsigned(self.lanes)

    def term_range(self) -> tuple[int, int]:
        return 0, self.lanes

    def first_stage(self, x: Value, w: Value) -> Value:
        return _popcount(~(x ^ w))


#: PE kind name -> component class.
PE_CLASSES: dict[str, type[ProcessingElement]] = {
    "mac": MacPE, "adder": AdderPE, "shift": ShiftPE, "xnor": XnorPE}

PEFactory = Callable[[], ProcessingElement]
