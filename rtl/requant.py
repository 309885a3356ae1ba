"""The output stage: one accumulator row in, one row of layer outputs out, per-channel parameters.

Per column (output channel) ``o``, bit-exact with :mod:`models.intref`'s output stage:

* ``mac``, ``adder``, ``shift`` (requantization): ``y = clamp(((acc + B) * M + 2**(S-1)) >> S + r)``
  to the signed ``bits`` range (``r`` the residual, 0 without one), then ``max(y, 0)`` if ``relu``;
* ``xnor``: ``dot = 2 * acc - K`` (``acc`` is the XNOR PE's count of agreeing lanes, ``K`` the
  layer's binary positions); with ``binary`` the bit ``c * dot >= T`` (``c = -1`` where
  ``negate``: ``dot <= -T``), else the raw ``dot`` (the last binary layer).

Four register stages (:data:`contract.OUTPUT_LATENCY`), at most one DSP-sized multiplier or one
long carry chain each: ``acc + B`` (xnor: ``dot`` and the compare's bound), then the product's
two halves (the low 17 bits of ``acc + B`` and the rest, each times ``M``: one 18x18 DSP block
each for a sum of up to 34 bits; xnor: the compare or the raw dot), then their sum, then ``u = p
>> (S-1)`` saturated to ``bits + 2`` bits (xnor: plain delays); the residual add and the clamp
after the last register are a ``bits + 3``-bit add and a few gates
(:meth:`OutputStage._requantize`), as the residual comes in that cycle (the top's result writer
reads it ahead into a register). The partial products come from :func:`rtl.dsp.registered_product`
(on ECP5 DSP blocks with their output register on). The output row is valid four cycles after the
accumulator row.
Everything stays bit-exact
with :mod:`models.intref` (``tests/test_rtl_requant.py`` over the whole parameter ranges).
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from contract import OUTPUT_LATENCY, PE_KINDS, dot_bits
from hwsim.rtl_plan import param_fields
from rtl.dsp import registered_product
from rtl.pe import check_int

__all__ = ["OutputStage", "out_shape", "param_layout"]


def param_layout(kind: str, *, bias_bits: int, positions: int) -> data.StructLayout:
    """Per-channel parameters of the output stage of PE kind ``kind``, the fields and widths of
    :func:`hwsim.rtl_plan.param_fields`: requantization ``bias`` (B, accumulator units), ``mult``
    (M), ``shift`` (S); xnor ``threshold`` (T) and ``negate`` (1 where c = -1)."""
    return data.StructLayout({name: Shape(width, is_signed) for name, (width, is_signed)
                              in param_fields(kind, bias_bits=bias_bits, positions=positions).items()})


def out_shape(kind: str, *, bits: int, positions: int) -> Shape:
    """One output: signed ``bits`` (requantization) or the xnor dot of ``positions`` positions."""
    return signed(dot_bits(positions)) if kind == "xnor" else signed(bits)


#: Bits of the low partial product's multiplicand: unsigned 17 bits are an 18x18 DSP's signed input.
_PART_BITS = 17
#: Product bits per flag of the saturation test (:meth:`OutputStage._requantize`): 4 bits and
#: their 4 mask bits are two LUT4 levels after the adder.
_CHUNK = 4


class OutputStage(wiring.Component):
    """Requantization (mac/adder/shift) or threshold compare (xnor) of ``cols`` accumulators.

    Parameters (keyword-only)
    -------------------------
    kind : str
        PE kind of the accumulators.
    cols : int
        Accumulators per row.
    acc_shape : Shape
        Shape of one accumulator (the array's ``acc_shape``).
    bits : int
        Signed output width of requantization (ignored for xnor).
    positions : int
        Most binary positions K of an xnor fold (sizes ``dot`` and ``threshold``).
    max_positions : int or None
        Most positions K of a whole xnor layer, K tiles summed (sizes ``i_positions``; None:
        ``positions``). Its dot must fit the ``dot`` of ``positions``.
    bias_bits : int
        Width of the requantization bias.

    Members
    -------
    i_acc : In(stream.Signature(ArrayLayout(acc_shape, cols), always_ready=True))
        One row of accumulators, column ``o`` for output channel ``o`` of the current tile.
    i_params : In(ArrayLayout(param_layout(...), cols))
        The per-channel parameters of those channels; sampled with ``i_acc.valid``.
    i_relu : In(1)
        Requantization clamps negative outputs to 0. Must be stable while rows are in flight.
    i_binary : In(1)
        xnor: emit the threshold bit (0/1), else the raw ``dot``. Stable like ``i_relu``.
    i_positions : In(unsigned)
        xnor: the layer's K. Stable like ``i_relu``.
    i_res : In(ArrayLayout(out_shape, cols))
        Requantization: the residual added before the clamp (:mod:`models.intref`), sampled with
        ``o_y.valid`` (the row's residual, 0 for none). Unused by xnor.
    o_y : Out(stream.Signature(ArrayLayout(out_shape, cols), always_ready=True))
        The output row, :data:`contract.OUTPUT_LATENCY` cycles after its ``i_acc`` row.

    Raises TypeError/ValueError naming a bad parameter.
    """

    def __init__(self, *, kind: str, cols: int, acc_shape: Shape, bits: int, positions: int,
                 bias_bits: int, max_positions: int | None = None) -> None:
        if kind not in PE_KINDS:
            raise ValueError(f"`kind` must be one of {', '.join(PE_KINDS)}, not {kind!r}")
        self.kind = kind
        self.cols = check_int("cols", cols, 1)
        self.acc_shape = Shape.cast(acc_shape)
        self.bits = check_int("bits", bits, 1, 64)
        self.positions = check_int("positions", positions, 1)
        self.max_positions = check_int("max_positions", positions if max_positions is None else max_positions,
                                       positions)
        self.bias_bits = check_int("bias_bits", bias_bits, 1, 64)
        self.params = param_layout(kind, bias_bits=bias_bits, positions=positions)
        self.out_shape = out_shape(kind, bits=bits, positions=positions)
        super().__init__({
            "i_acc": In(stream.Signature(data.ArrayLayout(self.acc_shape, cols), always_ready=True)),
            "i_params": In(data.ArrayLayout(self.params, cols)),
            "i_relu": In(1), "i_binary": In(1),
            "i_positions": In(range(self.max_positions + 1)),
            "i_res": In(data.ArrayLayout(self.out_shape, cols)),
            "o_y": Out(stream.Signature(data.ArrayLayout(self.out_shape, cols), always_ready=True)),
        })

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        valid = [Signal(name=f"valid{n}") for n in range(1, OUTPUT_LATENCY)]
        m.d.sync += [a.eq(b) for a, b in zip([*valid, self.o_y.valid], [self.i_acc.valid, *valid])]
        for o in range(self.cols):
            acc, par, y = self.i_acc.payload[o], self.i_params[o], self.o_y.payload[o]
            if self.kind == "xnor":
                self._compare(m, o, acc, par, y)
            else:
                self._requantize(m, platform, o, acc, par, y)
        return m

    def _compare(self, m: Module, o: int, acc, par, y) -> None:
        """xnor: stage 1 ``dot`` (one subtraction after the accumulator) and, from the
        parameters alone, the threshold the compare takes: ``c * dot >= T`` is ``dot >= T``, or
        ``dot <= -T`` where ``negate``; stage 2 that compare, stages 3 and 4 delays."""
        dot = Signal(self.out_shape, name=f"dot{o}")
        bound = Signal(signed(len(par.threshold) + 1), name=f"t{o}")  # T, or -T where negate
        negate = Signal(name=f"neg{o}")
        m.d.sync += [dot.eq((acc << 1) - self.i_positions), negate.eq(par.negate),
                     bound.eq(Mux(par.negate, -par.threshold, par.threshold))]
        picked, delayed = Signal.like(y, name=f"y{o}"), Signal.like(y, name=f"yd{o}")
        m.d.sync += [picked.eq(Mux(self.i_binary, Mux(negate, dot <= bound, dot >= bound), dot)),
                     delayed.eq(picked), y.eq(delayed)]

    def _requantize(self, m: Module, platform: Any, o: int, acc, par, y) -> None:
        """``clamp(((acc + B) * M + 2**(S-1)) >> S + r)`` in four short stages.

        The rounding ``(p + 2**(S-1)) >> S`` equals ``(u + 1) >> 1`` with ``u = p >> (S-1)``
        (floor division twice), so no adder runs over the whole product. Stage 3 keeps only
        ``u`` saturated to ``bits + 2`` signed bits: with ``|r| <= 2**(bits-1)`` any ``u``
        beyond that range clamps to the same output (its ``q`` is past the output range by more
        than any residual), so the residual add and the clamp after the last register are a
        ``bits + 3``-bit add and a few gates on its top bits. Stage 1 also registers ``S - 1``
        (``S >= 1``, :data:`contract.RSHIFT_MIN`); stage 2 the two partial products (the sum's
        low 17 bits, unsigned, and its signed rest, each times ``M``) and, beside them, the mask
        of the product bits that must all equal its sign for ``u`` to fit; stage 3 their sum
        and, for every :data:`_CHUNK` bits of it, whether its masked bits are all 1 and whether
        any is 1 (two gates after the adder), so stage 4 is the window's barrel shifter beside
        a reduction of those few flags."""
        bits = self.bits
        total = Signal(signed(max(self.acc_shape.width, self.bias_bits) + 1), name=f"sum{o}")
        mult = Signal.like(par.mult, name=f"m{o}")
        less1 = Signal.like(par.shift, name=f"s1_{o}")  # S - 1
        m.d.sync += [total.eq(acc + par.bias), mult.eq(par.mult), less1.eq(par.shift - 1)]
        width = len(total) + len(mult)
        low = min(_PART_BITS, len(total) - 1)
        low_part = registered_product(m, platform, f"pl{o}", total[:low], mult)  # unsigned low bits x M
        high_part = registered_product(m, platform, f"ph{o}", total[low:].as_signed(), mult)
        less2 = Signal.like(less1, name=f"s2_{o}")
        outside = Signal(width, name=f"mask{o}")  # the product bits above u's bits + 2 window
        m.d.sync += [less2.eq(less1),
                     outside.eq((Const((1 << width) - 1, width) << (less1 + bits + 1))[:width])]  # k >= S + bits
        product = Signal(signed(width), name=f"p{o}")
        less3 = Signal.like(less1, name=f"s3_{o}")
        whole = Signal(signed(width), name=f"whole{o}")  # the product, combinational
        m.d.comb += whole.eq((high_part << low) + low_part)
        m.d.sync += [product.eq(whole), less3.eq(less2)]
        # per chunk of the product: its masked bits all 1 (``ones``), any of them 1 (``some``)
        chunks = range(0, width, _CHUNK)
        ones = Signal(len(chunks), name=f"ones{o}")
        some = Signal(len(chunks), name=f"some{o}")
        m.d.sync += [ones.eq(Cat(*((whole[k:k + _CHUNK] | ~outside[k:k + _CHUNK]).all() for k in chunks))),
                     some.eq(Cat(*((whole[k:k + _CHUNK] & outside[k:k + _CHUNK]).any() for k in chunks)))]
        sign = product[-1]
        fits = Mux(sign, ones.all(), ~some.any())  # every masked bit equals the sign
        limit = 1 << (bits + 1)
        u = Signal(signed(bits + 2), name=f"u{o}")  # (p >> (S-1)) saturated to bits + 2 bits
        m.d.sync += u.eq(Mux(fits, (product >> less3)[:bits + 2].as_signed(), Mux(sign, -limit, limit - 1)))
        # floor((u + 1) / 2) + r == (u + 2r + 1) >> 1; z lies in [-3 * 2**(bits-1), 3 * 2**(bits-1))
        z = Signal(signed(bits + 2), name=f"z{o}")
        m.d.comb += z.eq((u + Cat(Const(1, 1), self.i_res[o]).as_signed()) >> 1)
        top = z[bits - 1:bits + 1]  # z >= 2**(bits-1) or z < -2**(bits-1) shows in these two bits
        negative = z[-1]
        over = ~negative & top.any()
        under = negative & (self.i_relu | ~top.all())
        hi, floor = (1 << (bits - 1)) - 1, Mux(self.i_relu, 0, -(1 << (bits - 1)))
        m.d.comb += y.eq(Mux(over, hi, Mux(under, floor, z[:bits].as_signed())))
