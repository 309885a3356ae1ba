"""Processing elements, one :class:`ProcessingElement` subclass per PE kind (mac, adder, shift, xnor).

All four share one structure and one port shape; a kind only states its operand shapes, the range
of one accumulation term, and its two arithmetic stages::

    i_x, i_w
        |  (operand registers; also drive o_x, o_w for systolic forwarding)
        v
    stage 1: ``first_stage(x, w)``        mac: x * w        adder: (x << e) - w
        |                                 shift: x << (P - p) and the sign   xnor: popcount(XNOR)
        v  (pipeline register)
    stage 2: if ``i_add``: ``acc <= (i_restart ? 0 : acc) + addend + carry``
                                      with ``addend, carry = second_stage(p)``
                                      (adder and shift fold their conditional negation in here)

so the pipeline is two stages deep after the operand registers, :data:`contract.PIPELINE_CYCLES`:
an operand pair presented on ``i_x``/``i_w`` in cycle ``t`` is in the operand registers in cycle
``t + 1``, in the pipeline register in cycle ``t + 2`` -- where ``i_add`` (and ``i_restart``)
say whether it is a pair to add -- and has been added into ``o_acc`` in cycle ``t + 3``
(:data:`PORT_TO_ACC_CYCLES`). The flags are not piped through the PE: in an array every PE on
one anti-diagonal sees a pair in the same cycle, so :class:`rtl.array.SystolicArray` keeps one
delay line of them for all PEs (the flag registers of each PE would be copies of one another).

Shapes are pure functions of the parameters: a :class:`PESpec` (kind, widths, ``k``) gives the
operand and accumulator shapes without building anything, and builds the PE on demand. Overflow
cannot happen silently: the accumulator is :func:`contract.acc_bits` wide for ``k`` reduction
positions (the exact range of :func:`contract.term_range` summed over the steps) and a too small
``acc_bits`` raises ValueError. A PE accumulates at most :attr:`PESpec.steps` operand pairs
after ``i_restart`` (``k``, or ``ceil(k / lanes)`` words for xnor); the driver (the array's
controller) guarantees that bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amaranth.hdl import Cat, Const, Module, Mux, Shape, ShapeLike, Signal, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

import contract
from contract import (DEFAULT_MAX_SHIFT, HARDWARE_BITS, MAX_ALIGN_LIMIT, MAX_SHIFT_LIMIT, PE_KINDS,
                      PIPELINE_CYCLES)

__all__ = ["PE_CLASSES", "PORT_TO_ACC_CYCLES", "AdderPE", "MacPE", "PESpec", "ProcessingElement",
           "ShiftPE", "XnorPE", "adder_weight_layout", "check_int", "encode_adder_weight",
           "encode_shift_weight", "range_shape", "shift_weight_layout"]

#: Clock edges from an operand pair on the input ports to its term being in ``o_acc``.
PORT_TO_ACC_CYCLES = PIPELINE_CYCLES + 1


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
    return Shape(*contract.range_width(lo, hi))


def shift_weight_layout(max_shift: int) -> data.StructLayout:
    """Layout of one shift weight code: ``shift`` (p), ``sign`` (1 is negative), ``zero`` (s = 0).

    :func:`contract.weight_code_bits` bits, p in the low field. Codes with ``p > P`` are outside
    the contract.
    """
    return data.StructLayout({"shift": unsigned(contract.shift_field_bits(max_shift)),
                              "sign": unsigned(1), "zero": unsigned(1)})


def adder_weight_layout(bits: int, max_align: int) -> data.StructLayout:
    """Layout of one grouped adder weight: ``value`` (signed ``bits``) in the low field, then its
    group's alignment ``align`` (:func:`contract.align_field_bits` of ``max_align``)."""
    return data.StructLayout({"value": signed(bits),
                              "align": unsigned(contract.align_field_bits(max_align))})


def encode_adder_weight(value: int, align: int, bits: int, max_align: int) -> int:
    """The integer code of a grouped adder weight ``value`` of a group aligned by ``align``."""
    check_int("value", value, -(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    check_int("align", align, 0, max_align)
    return (value & ((1 << bits) - 1)) | (align << bits)


@dataclass(frozen=True)
class PESpec:
    """What one PE is, checked on entry; shapes are computed, nothing is built until :meth:`build`.

    ``kind`` is a PE kind; ``bits`` the operand width (xnor: 1); ``k`` the reduction positions
    the accumulator is sized for; ``lanes`` the binary lanes per beat (xnor only; ignored
    otherwise); ``max_shift`` the largest weight shift P (shift only); ``max_align`` the largest
    group alignment E of a grouped adder (adder only; 0 is the shared scale); ``acc_bits`` the
    accumulator width, None for :func:`contract.acc_bits`. Raises TypeError for a non-integer,
    ValueError for a value out of range, naming the parameter.
    """

    kind: str
    bits: int
    k: int
    lanes: int = 1
    max_shift: int = DEFAULT_MAX_SHIFT
    acc_bits: int | None = None
    max_align: int = 0

    def __post_init__(self) -> None:
        if self.kind not in PE_KINDS:
            raise ValueError(f"`pe` must be one of {', '.join(PE_CLASSES)}, not {self.kind!r}")
        if self.kind == "xnor":
            if isinstance(self.bits, bool) or not isinstance(self.bits, int):
                raise TypeError(f"`bits` must be 1 for the xnor PE, not {self.bits!r}")
            if self.bits != 1:
                raise ValueError(f"`bits` must be 1 for the xnor PE, not {self.bits!r}")
            check_int("lanes", self.lanes, 1)
        else:
            check_int("bits", self.bits, *HARDWARE_BITS)
            object.__setattr__(self, "lanes", 1)
        check_int("k", self.k, 1)
        if self.kind == "shift":
            check_int("max_shift", self.max_shift, 0, MAX_SHIFT_LIMIT)
        check_int("max_align", self.max_align, 0, MAX_ALIGN_LIMIT if self.kind == "adder" else 0,
                  what=" (only a grouped adder aligns)")
        if self.acc_bits is not None:
            check_int("acc_bits", self.acc_bits, 1)
            need = self._exact().width
            if self.acc_bits < need:
                raise ValueError(f"`acc_bits` of {self.acc_bits} cannot hold a {self.kind} reduction of "
                                 f"k={self.k}; it needs at least {need}")

    def _exact(self) -> Shape:
        return range_shape(*contract.acc_range(self.kind, self.k, self.bits, max_shift=self.max_shift,
                                               lanes=self.lanes, max_align=self.max_align))

    @property
    def steps(self) -> int:
        """Most valid operand pairs one accumulation may take."""
        return contract.steps(self.kind, self.k, self.lanes)

    @property
    def x_shape(self) -> ShapeLike:
        return unsigned(self.lanes) if self.kind == "xnor" else signed(self.bits)

    @property
    def w_shape(self) -> ShapeLike:
        if self.kind == "xnor":
            return unsigned(self.lanes)
        if self.kind == "adder" and self.max_align:
            return adder_weight_layout(self.bits, self.max_align)
        return shift_weight_layout(self.max_shift) if self.kind == "shift" else signed(self.bits)

    @property
    def acc_shape(self) -> Shape:
        exact = self._exact()
        return exact if self.acc_bits is None else Shape(self.acc_bits, exact.signed)

    def build(self) -> ProcessingElement:
        """The PE component of this spec."""
        extra: dict[str, Any] = {"xnor": {"lanes": self.lanes}, "shift": {"max_shift": self.max_shift},
                                 "adder": {"max_align": self.max_align}}.get(self.kind, {})
        return PE_CLASSES[self.kind](bits=self.bits, k=self.k, acc_bits=self.acc_bits, **extra)


def _popcount(bits: Value) -> Value:
    """Number of ones of ``bits``: a balanced tree of pairwise adders (the cost model's tree)."""
    level = [bit for bit in bits]
    while len(level) > 1:
        pairs = [level[i] + level[i + 1] for i in range(0, len(level) - 1, 2)]
        level = pairs + level[len(pairs) * 2:]
    return level[0]


def _negate_if(value: Value, negate: Value) -> tuple[Value, Value]:
    """``negate ? -value : value`` as an addend and a carry-in: one XOR per bit, no incrementer."""
    # replicate(), not a select of all-ones: Yosys maps the select into 8 more LUT6 per PE on xc7
    return (value.as_unsigned() ^ negate.replicate(len(value))).as_signed(), negate


class ProcessingElement(wiring.Component):
    """One PE: accumulate ``k`` terms ``f(x, w)`` of one kind, forward operands, shift out the sum.

    Each kind's constructor takes keyword-only ``bits``, ``k`` (the reduction length the PE is
    sized for; binary positions for xnor), ``acc_bits`` (None: :func:`contract.acc_bits`) and its
    own parameters (xnor ``lanes``, shift ``max_shift``), and checks them through :class:`PESpec`.

    Attributes
    ----------
    spec : PESpec
        The parameters; ``x_shape``, ``w_shape``, ``acc_shape`` and ``steps`` are its shapes.

    Members
    -------
    i_x, i_w : In(x_shape), In(w_shape)
        Activation and weight operand, registered every cycle.
    o_x, o_w : Out
        The operand registers: the inputs one cycle later, for the right (x) and lower (w)
        neighbour of a systolic array.
    i_add : In(1)
        The pipeline register holds an operand pair to accumulate: the pair presented on
        ``i_x``/``i_w`` :data:`contract.PIPELINE_CYCLES` cycles before.
    i_restart : In(1)
        With ``i_add``: that pair starts a new accumulation (the accumulator is overwritten, not
        added to). Ignored without ``i_add``.
    i_shift : In(1)
        Drain: the accumulator loads ``i_acc`` this cycle. Must not coincide with ``i_add``.
    i_acc : In(acc_shape)
        The value shifted in on ``i_shift`` (the ``o_acc`` of the PE above in an array).
    o_acc : Out(acc_shape)
        The accumulator: the sum of the terms of the current accumulation. After the last pair
        of an accumulation is presented in cycle ``t``, ``o_acc`` holds the full sum from cycle
        ``t + PORT_TO_ACC_CYCLES`` until the next accumulation's first term or a shift.
    """

    kind: str = ""

    def __init__(self, spec: PESpec) -> None:
        self.spec = spec
        self.k, self.bits, self.steps = spec.k, spec.bits, spec.steps
        self.x_shape, self.w_shape, self.acc_shape = spec.x_shape, spec.w_shape, spec.acc_shape
        super().__init__({
            "i_x": In(self.x_shape), "i_w": In(self.w_shape),
            "o_x": Out(self.x_shape), "o_w": Out(self.w_shape),
            "i_add": In(1), "i_restart": In(1),
            "i_shift": In(1), "i_acc": In(self.acc_shape),
            "o_acc": Out(self.acc_shape),
        })

    def first_stage(self, x: Value, w: Value) -> Value:
        """Stage-1 arithmetic on the operand registers; its result is the pipeline register."""
        raise NotImplementedError

    def second_stage(self, p: Value) -> tuple[Value, Value]:
        """Addend and 1-bit carry-in that stage 2 adds to the accumulator (default: ``p``, 0)."""
        return p, Const(0, 1)

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        m.d.sync += [self.o_x.eq(self.i_x), self.o_w.eq(self.i_w)]
        stage1 = self.first_stage(self.o_x, self.o_w)
        p = Signal.like(stage1, name="p")
        m.d.sync += p.eq(stage1)

        addend, carry = self.second_stage(p)
        base = Mux(self.i_restart, 0, self.o_acc)
        with m.If(self.i_shift):
            m.d.sync += self.o_acc.eq(self.i_acc)
        with m.Elif(self.i_add):
            m.d.sync += self.o_acc.eq(base + addend + carry)
        return m


class MacPE(ProcessingElement):
    """Multiply-accumulate PE: ``acc += x * w`` on signed ``bits``-bit operands.

    The term range covers the full two's-complement range of both operands, including
    ``w = -2**(bits-1)`` that models.intref's symmetric weights never use.
    """

    kind = "mac"

    def __init__(self, *, bits: int = 8, k: int, acc_bits: int | None = None) -> None:
        super().__init__(PESpec("mac", bits, k, acc_bits=acc_bits))

    def first_stage(self, x: Value, w: Value) -> Value:
        return x * w


class AdderPE(ProcessingElement):
    """AdderNet PE: ``acc -= |x - w|`` on signed ``bits``-bit operands, no multiplier.

    Stage 1 subtracts (``d = x - w``, ``bits + 1`` bits); stage 2 adds ``-|d|`` as
    ``(d XOR ~sign) + ~sign`` into the accumulator adder (conditional negation, cost_models.adder).
    With ``max_align`` E > 0 (grouped, redistribution quantization) the weight port carries
    :func:`adder_weight_layout` and stage 1 first aligns the activation to the weight's group,
    ``d = (x << align) - w`` (a barrel shifter of ``align_field_bits(E)`` levels, ``d`` of
    ``bits + E + 1`` bits); ``o_acc`` is then in units of the group's scale.
    """

    kind = "adder"

    def __init__(self, *, bits: int = 8, k: int, acc_bits: int | None = None,
                 max_align: int = 0) -> None:
        super().__init__(PESpec("adder", bits, k, acc_bits=acc_bits, max_align=max_align))
        self.max_align = max_align

    def first_stage(self, x: Value, w: Value) -> Value:
        if not self.max_align:
            return x - w
        return (x << w.align) - w.value

    def second_stage(self, p: Value) -> tuple[Value, Value]:
        return _negate_if(p, ~p[-1])


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

    def __init__(self, *, bits: int = 8, max_shift: int = DEFAULT_MAX_SHIFT, k: int,
                 acc_bits: int | None = None) -> None:
        super().__init__(PESpec("shift", bits, k, max_shift=max_shift, acc_bits=acc_bits))
        self.max_shift = max_shift

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
        super().__init__(PESpec("xnor", bits, k, lanes=lanes, acc_bits=acc_bits))
        self.lanes = lanes

    def first_stage(self, x: Value, w: Value) -> Value:
        return _popcount(~(x ^ w))


#: PE kind name -> component class.
PE_CLASSES: dict[str, type[ProcessingElement]] = {
    "mac": MacPE, "adder": AdderPE, "xnor": XnorPE, "shift": ShiftPE}
